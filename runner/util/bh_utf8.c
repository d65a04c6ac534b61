/* util/bh_utf8.c — see header. */
#include "util/bh_utf8.h"

#include "util/bh_buf.h"
#include "util/bh_xmalloc.h"

#define REPLACEMENT "\xEF\xBF\xBD"

size_t bh_utf8_seq(const char *p, size_t n, int *ok)
{
    const unsigned char *s = (const unsigned char *)p;
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    *ok = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, lo = c == 0xE0 ? 0xA0 : lo, hi = c == 0xED ? 0x9F : hi;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, lo = c == 0xF0 ? 0x90 : lo, hi = c == 0xF4 ? 0x8F : hi;
    else {
        *ok = 0; /* a stray continuation byte, C0, C1, F5..FF: never a lead */
        return 1;
    }
    /* The second byte's range is what rules out overlongs, surrogates and
     * code points past U+10FFFF; the maximal subpart stops before the first
     * byte that cannot continue, which then starts the next sequence. */
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi)
        for (i = 2; i < len && i < n && s[i] >= 0x80 && s[i] <= 0xBF; i++)
            ;
    if (i < len)
        *ok = 0;
    return i;
}

size_t bh_utf8_invalid_at(const char *s, size_t n)
{
    size_t i = 0;
    int ok = 1;
    while (i < n) {
        size_t k = bh_utf8_seq(s + i, n - i, &ok);
        if (!ok)
            return i;
        i += k;
    }
    return n;
}

int bh_utf8_valid(const char *s, size_t n)
{
    return bh_utf8_invalid_at(s, n) == n;
}

int bh_utf8_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t bh_utf8_count(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += !bh_utf8_cont((unsigned char)s[i]);
    return chars;
}

size_t bh_utf8_put(char out[4], unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int bh_utf8_lossy(struct bh_buf *b, const char *s, size_t n, size_t *replaced)
{
    size_t i = 0;
    while (i < n) {
        size_t good = bh_utf8_invalid_at(s + i, n - i);
        int ok, rc = bh_buf_append(b, s + i, good);
        if (rc)
            return rc;
        i += good;
        if (i == n)
            break;
        i += bh_utf8_seq(s + i, n - i, &ok);
        if ((rc = bh_buf_append(b, REPLACEMENT, 3)) != 0)
            return rc;
        if (replaced)
            (*replaced)++;
    }
    return 0;
}

char *bh_utf8_lossy_dup(const char *s, size_t n, size_t *len, size_t *replaced)
{
    struct bh_buf b;
    /* At most three bytes for each input byte: the cap cannot be hit. */
    bh_buf_init(&b, n * 3 + 1);
    (void)bh_utf8_lossy(&b, s, n, replaced);
    size_t got = b.len;
    if (len)
        *len = got;
    /* Exact size: keys and paths are kept per item, and a buffer starts at
     * 256 bytes. */
    return bh_xrealloc(bh_buf_detach(&b), got + 1);
}
