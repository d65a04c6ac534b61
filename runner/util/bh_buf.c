/* util/bh_buf.c — see header. */
#include "bh_buf.h"
#include "bh_xmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bh_buf_init(struct bh_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : BH_BUF_DEFAULT_MAX;
}

void bh_buf_release(struct bh_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void bh_buf_reset(struct bh_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int reserve(struct bh_buf *b, size_t n)
{
    size_t max = b->max ? b->max : BH_BUF_DEFAULT_MAX;
    if (n > max || b->len > max - n)
        return BH_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    b->data = bh_xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int bh_buf_append(struct bh_buf *b, const void *p, size_t n)
{
    if (reserve(b, n))
        return BH_ETOOBIG;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int bh_buf_puts(struct bh_buf *b, const char *s)
{
    return bh_buf_append(b, s, strlen(s));
}

int bh_buf_printf(struct bh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return BH_EINTERNAL;
    if (reserve(b, (size_t)n))
        return BH_ETOOBIG;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void bh_buf_consume(struct bh_buf *b, size_t n)
{
    if (n >= b->len) {
        bh_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *bh_buf_detach(struct bh_buf *b)
{
    char *p = b->data ? b->data : bh_xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
