/* util/bh_str.c — see header. */
#include "bh_str.h"
#include "bh_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

unsigned bh_str_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 255;
    unsigned row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > 255 ? 255 : row[lb];
}

const char *bh_str_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    unsigned best_d = 255;
    for (size_t i = 0; i < n; i++) {
        unsigned d = bh_str_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    size_t len = strlen(word);
    if (best && best_d > 0 && (best_d <= 2 || best_d <= len / 3))
        return best;
    return NULL;
}

char *bh_str_join(const char *const *items, size_t n)
{
    struct bh_buf b;
    bh_buf_init(&b, 0);
    if (n == 0)
        bh_buf_puts(&b, "(none)");
    for (size_t i = 0; i < n; i++)
        bh_buf_printf(&b, "%s%s", i ? ", " : "", items[i]);
    return bh_buf_detach(&b);
}

int bh_str_endswith(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

void bh_str_put(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}
