/* policy/norm.c — text as the declassify guards compare it (see norm.h).
 *
 * libutf8proc does the Unicode part (its tables, never ours): NFKC with
 * case folding and default-ignorable characters stripped. utf8proc_NFKC_Casefold
 * itself reads up to a NUL and refuses invalid UTF-8, and a model's reply or
 * an input may hold both, so the same options are passed to utf8proc_map with
 * an explicit length, after invalid bytes were made U+FFFD. The look-alike
 * table afterwards is deliberately small: the letters a reply can use to
 * spell a Latin token so that it still reads the same to a person. */
#include "policy/norm.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "util/bh_err.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* Lower-case look-alikes (case folding ran first) and what they stand for. */
static const struct {
    int32_t cp;
    char ascii;
} lookalikes[] = {
    {0x0430, 'a'}, {0x0435, 'e'}, {0x043e, 'o'}, {0x0440, 'p'}, {0x0441, 'c'}, {0x0445, 'x'},
    {0x0443, 'y'}, {0x0456, 'i'}, {0x0458, 'j'}, {0x0455, 's'}, {0x043a, 'k'}, {0x043c, 'm'},
    {0x043d, 'h'}, {0x0442, 't'}, {0x0432, 'b'}, {0x0501, 'd'}, {0x04bb, 'h'}, {0x03b1, 'a'},
    {0x03bf, 'o'}, {0x03c1, 'p'}, {0x03bd, 'v'}, {0x03b9, 'i'}, {0x03ba, 'k'}, {0x03c4, 't'},
    {0x03c5, 'u'}, {0x03c7, 'x'}, {0x03b5, 'e'}, {0x03b2, 'b'}, {0x03b7, 'n'},
};

static int zero_width(int32_t cp)
{
    return (cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 || cp == 0xfeff || cp == 0x00ad;
}

/* The ASCII byte cp stands for, or 0 when it stands for itself. */
static char ascii_for(int32_t cp)
{
    if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212)
        return '-';
    for (size_t i = 0; i < BH_NELEM(lookalikes); i++)
        if (lookalikes[i].cp == cp)
            return lookalikes[i].ascii;
    return 0;
}

/* Drops the zero-width characters and maps dashes and look-alikes, in place
 * (never longer: a code point becomes at most itself). */
static size_t lookalikes_map(uint8_t *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        int32_t cp = 0;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0)
            k = 1; /* the library's own output: cannot happen; keep the byte */
        char a = k > 1 ? ascii_for(cp) : 0;
        if (k > 1 && zero_width(cp)) {
            /* dropped */
        } else if (a) {
            s[o++] = (uint8_t)a;
        } else {
            memmove(s + o, s + i, (size_t)k);
            o += (size_t)k;
        }
        i += (size_t)k;
    }
    return o;
}

int pol_norm_text(const char *s, size_t len, size_t max, char **out, size_t *out_len)
{
    size_t n = 0;
    if (len > (SIZE_MAX - 1) / 3 || len > (size_t)PTRDIFF_MAX / 3)
        return BH_ETOOBIG;
    /* utf8proc refuses ill-formed text whole: each maximal subpart becomes U+FFFD first. */
    uint8_t *valid = (uint8_t *)bh_utf8_lossy_dup(s, len, &n, NULL), *dst = NULL;
    utf8proc_ssize_t got = utf8proc_map(valid, (utf8proc_ssize_t)n, &dst,
                                        UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                                            UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    free(valid);
    if (got < 0) /* out of memory too: the caller keeps the label, which fails closed */
        return got == UTF8PROC_ERROR_OVERFLOW ? BH_ETOOBIG : BH_EINTERNAL;
    size_t m = lookalikes_map(dst, (size_t)got);
    if (m > max) {
        free(dst);
        return BH_ETOOBIG;
    }
    dst[m] = '\0';
    *out = (char *)dst;
    *out_len = m;
    return 0;
}

unsigned char pol_norm_fold(unsigned char c)
{
    switch (c) {
    case '0': return 'o';
    case '1':
    case 'i': return 'l';
    case '5': return 's';
    default: return c;
    }
}
