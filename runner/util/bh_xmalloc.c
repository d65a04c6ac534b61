/* util/bh_xmalloc.c — see header. */
#include "bh_xmalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "bulkhead: out of memory allocating %zu bytes\n", n);
    abort();
}

void *bh_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *bh_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *bh_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

void *bh_xgrow(void *p, size_t *count, size_t need, size_t size)
{
    if (need <= *count)
        return p;
    size_t n = *count ? *count : 4;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            oom(SIZE_MAX);
        n *= 2;
    }
    if (size && n > SIZE_MAX / size)
        oom(SIZE_MAX);
    p = bh_xrealloc(p, n * size);
    memset((char *)p + *count * size, 0, (n - *count) * size);
    *count = n;
    return p;
}

char *bh_xstrdup(const char *s)
{
    return s ? bh_xstrndup(s, strlen(s)) : NULL;
}

char *bh_xstrndup(const char *s, size_t n)
{
    char *p = bh_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *bh_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    char *p = bh_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
