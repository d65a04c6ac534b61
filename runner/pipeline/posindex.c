/* pipeline/posindex.c — a small JSON scanner that records the line and column
 * of every value under its JSON path.
 *
 * Why a second scanner: jansson gives positions only for syntax errors, and a
 * message like "stages.review.model: expected a string" is far more useful
 * with the line it is on. The loader runs this after jansson accepted the
 * text, so the scanner can be forgiving: it never allocates per character,
 * decodes only keys (values are skipped), and on anything unexpected stops
 * and keeps what it has (positions then read as unknown, never as wrong).
 * Lookups are linear: they happen only when reporting an error. */
#include "pipeline/posindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bh_utf8.h"
#include "util/bh_xmalloc.h"

#define MAX_DEPTH 2048 /* jansson's own nesting limit */

struct pipe_posindex {
    struct pipe_pos *v;
    size_t n, cap;
    int complete;
};

struct scan {
    const char *s;
    size_t len, i;
    int line;
    int chars; /* characters before s[i] on this line */
    char path[PIPE_PATH_MAX];
    size_t plen;
    struct pipe_posindex *ix;
};

/* Where a value starts, and where its key started (0 when none). */
struct at {
    int line, col, key_line, key_col;
};

static int plain_key(const char *key, size_t klen)
{
    if (klen == 0)
        return 0;
    for (size_t i = 0; i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

size_t pipe_path_key(char *buf, size_t size, size_t len, const char *key, size_t klen)
{
    int plain = plain_key(key, klen);
    size_t extra = plain ? (len ? 1 : 0) + klen : klen + 4; /* .key or ["key"] */
    if (len >= size || extra >= size - len)
        return (size_t)-1;
    char *p = buf + len;
    if (plain && len)
        *p++ = '.';
    if (!plain) {
        memcpy(p, "[\"", 2);
        p += 2;
    }
    memcpy(p, key, klen);
    p += klen;
    if (!plain) {
        memcpy(p, "\"]", 2);
        p += 2;
    }
    *p = '\0';
    return (size_t)(p - buf);
}

size_t pipe_path_index(char *buf, size_t size, size_t len, size_t i)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", i);
    if (n < 0 || len >= size || (size_t)n >= size - len)
        return (size_t)-1;
    memcpy(buf + len, tmp, (size_t)n + 1);
    return len + (size_t)n;
}

static void record(struct scan *sc, const struct at *at)
{
    struct pipe_posindex *ix = sc->ix;
    if (ix->n == ix->cap)
        ix->v = bh_xgrow(ix->v, &ix->cap, ix->n + 1, sizeof(*ix->v));
    ix->v[ix->n++] = (struct pipe_pos){bh_xstrndup(sc->path, sc->plen), at->line, at->col,
                                       at->key_line, at->key_col};
}

static int peek(const struct scan *sc)
{
    return sc->i < sc->len ? (unsigned char)sc->s[sc->i] : -1;
}

/* Consumes one byte. A UTF-8 continuation byte does not start a column. */
static void advance(struct scan *sc)
{
    unsigned char c = (unsigned char)sc->s[sc->i++];
    if (c == '\n') {
        sc->line++;
        sc->chars = 0;
    } else if (!bh_utf8_cont(c)) {
        sc->chars++;
    }
}

static void skip_ws(struct scan *sc)
{
    for (int c = peek(sc); c == ' ' || c == '\t' || c == '\n' || c == '\r'; c = peek(sc))
        advance(sc);
}

static int hex4(struct scan *sc, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int c = peek(sc);
        if (c >= '0' && c <= '9')
            v = v * 16 + (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v = v * 16 + (unsigned)((c | 0x20) - 'a' + 10);
        else
            return -1;
        advance(sc);
    }
    *out = v;
    return 0;
}

/* After a backslash and 'u': one code point, joining a surrogate pair. */
static int unicode_escape(struct scan *sc, unsigned *cp)
{
    if (hex4(sc, cp))
        return -1;
    if (*cp < 0xD800 || *cp > 0xDBFF)
        return 0;
    unsigned lo = 0;
    if (peek(sc) != '\\')
        return 0;
    advance(sc);
    if (peek(sc) != 'u')
        return -1;
    advance(sc);
    if (hex4(sc, &lo))
        return -1;
    if (lo >= 0xDC00 && lo <= 0xDFFF)
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    return 0;
}

/* One escape after the backslash, decoded into out[0..4). */
static int escape(struct scan *sc, char *out, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    int c = peek(sc);
    if (c < 0)
        return -1;
    advance(sc);
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit) {
        out[0] = to[hit - from];
        *n = 1;
        return 0;
    }
    unsigned cp = 0;
    if (c != 'u' || unicode_escape(sc, &cp))
        return -1;
    *n = bh_utf8_put(out, cp);
    return 0;
}

/* A string at s[i] == '"'. Decodes into out (cap bytes) when out is not NULL;
 * *olen is (size_t)-1 when it did not fit. */
static int string(struct scan *sc, char *out, size_t cap, size_t *olen)
{
    size_t n = 0;
    advance(sc);
    for (;;) {
        int c = peek(sc);
        char tmp[4];
        size_t k = 1;
        if (c < 0)
            return -1;
        if (c == '"')
            break;
        tmp[0] = (char)c;
        advance(sc);
        if (c == '\\' && escape(sc, tmp, &k))
            return -1;
        if (!out || n == (size_t)-1)
            continue;
        if (k > cap - n) {
            n = (size_t)-1; /* too long to be a recorded key: the member is skipped */
            continue;
        }
        memcpy(out + n, tmp, k);
        n += k;
    }
    advance(sc);
    if (olen)
        *olen = n;
    return 0;
}

static int value(struct scan *sc, struct at at, int depth, int recording);

/* Characters of numbers, true, false and null. */
static int literal_char(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '+' || c == '-' || c == '.' ||
           c == 'E';
}

static struct at here(const struct scan *sc)
{
    return (struct at){sc->line, sc->chars + 1, 0, 0};
}

/* Scans a value with the path extended to nl bytes, then restores the path.
 * nl is (size_t)-1 when the path would be too long: nothing below is recorded. */
static int descend(struct scan *sc, size_t nl, struct at at, int depth, int recording)
{
    size_t saved = sc->plen;
    int rec = recording && nl != (size_t)-1;
    if (rec)
        sc->plen = nl;
    int rc = value(sc, at, depth + 1, rec);
    sc->plen = saved;
    sc->path[saved] = '\0';
    return rc;
}

/* One "key": value member. */
static int member(struct scan *sc, int depth, int recording)
{
    char key[PIPE_PATH_MAX];
    size_t klen = 0;
    struct at kat = here(sc);
    if (peek(sc) != '"' || string(sc, key, sizeof(key), &klen))
        return -1;
    skip_ws(sc);
    if (peek(sc) != ':')
        return -1;
    advance(sc);
    skip_ws(sc);
    struct at vat = {sc->line, sc->chars + 1, kat.line, kat.col};
    size_t nl = klen;
    if (klen != (size_t)-1)
        nl = pipe_path_key(sc->path, sizeof(sc->path), sc->plen, key, klen);
    return descend(sc, nl, vat, depth, recording);
}

/* Members of an object or elements of an array, after the opening bracket. */
static int container(struct scan *sc, int close, int depth, int recording)
{
    skip_ws(sc);
    if (peek(sc) == close) {
        advance(sc);
        return 0;
    }
    for (size_t i = 0;; i++) {
        skip_ws(sc);
        int rc = 0;
        if (close == '}') {
            rc = member(sc, depth, recording);
        } else {
            size_t nl = pipe_path_index(sc->path, sizeof(sc->path), sc->plen, i);
            rc = descend(sc, nl, here(sc), depth, recording);
        }
        skip_ws(sc);
        int c = peek(sc);
        if (rc || (c != ',' && c != close))
            return -1;
        advance(sc);
        if (c == close)
            return 0;
    }
}

static int value(struct scan *sc, struct at at, int depth, int recording)
{
    if (depth > MAX_DEPTH)
        return -1;
    if (recording)
        record(sc, &at);
    int c = peek(sc);
    if (c == '{' || c == '[') {
        advance(sc);
        return container(sc, c == '{' ? '}' : ']', depth, recording);
    }
    if (c == '"')
        return string(sc, NULL, 0, NULL);
    size_t start = sc->i;
    while (literal_char(peek(sc)))
        advance(sc);
    return sc->i > start ? 0 : -1;
}

struct pipe_posindex *pipe_posindex_new(void)
{
    struct pipe_posindex *ix = bh_xcalloc(1, sizeof(*ix));
    ix->complete = 1;
    return ix;
}

void pipe_posindex_add(struct pipe_posindex *ix, const struct pipe_pos *pos)
{
    if (ix->n == ix->cap)
        ix->v = bh_xgrow(ix->v, &ix->cap, ix->n + 1, sizeof(*ix->v));
    ix->v[ix->n] = *pos;
    ix->v[ix->n++].path = bh_xstrdup(pos->path);
}

struct pipe_posindex *pipe_posindex_build(const char *text, size_t len)
{
    struct pipe_posindex *ix = bh_xcalloc(1, sizeof(*ix));
    struct scan sc = {.s = text, .len = len, .line = 1, .ix = ix};
    sc.path[0] = '\0';
    skip_ws(&sc);
    int rc = value(&sc, here(&sc), 0, 1);
    skip_ws(&sc);
    ix->complete = rc == 0 && sc.i == sc.len;
    return ix;
}

void pipe_posindex_free(struct pipe_posindex *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n; i++)
        free(ix->v[i].path);
    free(ix->v);
    free(ix);
}

int pipe_posindex_complete(const struct pipe_posindex *ix)
{
    return ix && ix->complete;
}

const struct pipe_pos *pipe_posindex_get(const struct pipe_posindex *ix, const char *path)
{
    for (size_t i = 0; ix && i < ix->n; i++)
        if (strcmp(ix->v[i].path, path) == 0)
            return &ix->v[i];
    return NULL;
}

size_t pipe_posindex_count(const struct pipe_posindex *ix)
{
    return ix ? ix->n : 0;
}
