/* policy/declassify.c — the guards of `declassify` (see declassify.h).
 *
 * Redaction rewrites the output pass by pass into a capped buffer (secrets,
 * then code, then paths, then secrets again), each pass one linear walk.
 *
 * The no_verbatim guard indexes the OUTPUT, not the inputs: the output's
 * shingles (runs of N tokens) go into an open-addressing table of 64-bit
 * hashes, deduplicated by comparing tokens, and each input is then streamed
 * through a ring of its last N tokens with a rolling polynomial hash, marking
 * the table entries it holds. Memory follows the output (usually the small
 * side) and time is linear in the output plus the inputs. Collisions are
 * handled asymmetrically, on purpose:
 * - a hash hit from an input above the target marks the shingle without
 *   comparing tokens: a collision can only invent a leak, so it errs on the
 *   safe side (the output keeps its label);
 * - a hash hit from an input at or below the target would EXCUSE a shingle,
 *   so it counts only after the tokens compare equal: a collision (even one
 *   a hostile reply was crafted to produce) can never hide a leak.
 * Inputs above the target are streamed first, so the below side compares
 * only shingles already marked, each at most once when it matches.
 *
 * Both comparing guards (no_verbatim, no_rare_tokens: policy/rare.c) read
 * normalised copies of the output and of every input (policy/norm.c), made
 * once per call and only when some input is above the target; the stored
 * output stays as the model wrote it (redacted). Tokens hash and compare
 * through pol_norm_fold, so 0/o, 1/l/i and 5/s are one character to them. */
#include "policy/declassify.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "detect/detect.h"
#include "policy/label.h"
#include "policy/norm.h"
#include "policy/policy.h"
#include "policy/rare.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* Secret redaction repeats while a scan still finds a secret. A marker
 * cannot be part of one ("redacted" is a placeholder word to the detectors,
 * and the brackets end every key and token), so the second scan finds
 * nothing; a third finding one would be a detector bug (BH_EINTERNAL). */
#define SECRET_ROUNDS 3

struct text {
    char *s; /* owned, NUL-terminated */
    size_t len;
};

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int is_alnum(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Runs one redaction pass over *t into a buffer capped at the scan cap, and
 * replaces *t with the result. */
typedef int (*redact_fn)(const char *s, size_t len, struct bh_buf *b, size_t *count);

static int text_pass(struct text *t, redact_fn fn, size_t *count)
{
    struct bh_buf b;
    bh_buf_init(&b, DET_MAX_BYTES);
    int rc = fn(t->s, t->len, &b, count);
    if (rc != 0) {
        bh_buf_release(&b);
        return rc;
    }
    free(t->s);
    t->len = b.len;
    t->s = bh_buf_detach(&b);
    return 0;
}

/* ---- secrets ---- */

/* Replaces each secret hit (sorted by offset) with "[redacted: ID]"; a hit
 * overlapping the one before widens that one's span instead. */
static int secrets_replace(const struct text *t, const struct det_hit *h, size_t n,
                           struct bh_buf *b, size_t *count)
{
    size_t cur = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t end = h[i].offset + h[i].length;
        if (!h[i].detector->secret)
            continue;
        if (h[i].offset < cur) {
            cur = end > cur ? end : cur;
            continue;
        }
        rc = bh_buf_append(b, t->s + cur, h[i].offset - cur);
        if (rc == 0)
            rc = bh_buf_printf(b, "[redacted: %s]", h[i].detector->id);
        cur = end;
        (*count)++;
    }
    return rc ? rc : bh_buf_append(b, t->s + cur, t->len - cur);
}

static int has_secret(const struct det_hit *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].detector->secret)
            return 1;
    return 0;
}

/* Scans *t and redacts its secrets until a scan finds none (or the rounds
 * run out); gives the last scan's hits, for the detectors guard. */
static int secrets_settle(const struct pol_labeller *l, struct text *t, struct det_hit **hits,
                          size_t *n_hits, size_t *count)
{
    for (int round = 0;; round++) {
        int rc = pol_labeller_scan(l, t->s, t->len, hits, n_hits);
        if (rc != 0 || !has_secret(*hits, *n_hits))
            return rc;
        if (round == SECRET_ROUNDS)
            return BH_EINTERNAL;
        struct bh_buf b;
        bh_buf_init(&b, DET_MAX_BYTES);
        rc = secrets_replace(t, *hits, *n_hits, &b, count);
        det_hits_free(*hits);
        *hits = NULL;
        *n_hits = 0;
        if (rc != 0) {
            bh_buf_release(&b);
            return rc;
        }
        free(t->s);
        t->len = b.len;
        t->s = bh_buf_detach(&b);
    }
}

/* ---- code ---- */

struct line {
    const char *s;
    size_t len;  /* without the '\n' */
    size_t next; /* offset of the following line */
};

static struct line line_at(const char *s, size_t len, size_t pos)
{
    const char *nl = memchr(s + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - s) : len;
    return (struct line){s + pos, end - pos, nl ? end + 1 : len};
}

static int line_blank(struct line l)
{
    for (size_t i = 0; i < l.len; i++)
        if (!is_ws((unsigned char)l.s[i]))
            return 0;
    return 1;
}

/* Leading spaces, when fewer than 4 (a fence or list marker may have them). */
static size_t line_lead(struct line l)
{
    size_t i = 0;
    while (i < l.len && i < 4 && l.s[i] == ' ')
        i++;
    return i;
}

static int line_indented(struct line l)
{
    size_t i = line_lead(l);
    return !line_blank(l) && (i == 4 || (i < l.len && l.s[i] == '\t'));
}

static size_t run_of(struct line l, size_t i, char c)
{
    size_t n = 0;
    while (i + n < l.len && l.s[i + n] == c)
        n++;
    return n;
}

/* A fence opens: 3+ backticks (info string without backticks, as CommonMark
 * says, so that ```inline``` is no fence) or 3+ tildes. */
static int fence_open(struct line l, char *ch, size_t *n)
{
    size_t i = line_lead(l);
    if (i == 4 || i == l.len || (l.s[i] != '`' && l.s[i] != '~'))
        return 0;
    *ch = l.s[i];
    *n = run_of(l, i, *ch);
    if (*n < 3)
        return 0;
    return *ch == '~' || !memchr(l.s + i + *n, '`', l.len - i - *n);
}

static int fence_close(struct line l, char ch, size_t n)
{
    size_t i = line_lead(l);
    if (i == 4)
        return 0;
    size_t k = run_of(l, i, ch);
    struct line rest = {l.s + i + k, l.len - i - k, 0};
    return k >= n && line_blank(rest);
}

static int list_item(struct line l)
{
    size_t i = line_lead(l);
    if (i < l.len && (l.s[i] == '-' || l.s[i] == '*' || l.s[i] == '+'))
        return i + 1 == l.len || l.s[i + 1] == ' ' || l.s[i + 1] == '\t';
    size_t d = 0;
    while (i + d < l.len && d < 10 && l.s[i + d] >= '0' && l.s[i + d] <= '9')
        d++;
    if (d == 0 || i + d == l.len || (l.s[i + d] != '.' && l.s[i + d] != ')'))
        return 0;
    return i + d + 1 == l.len || l.s[i + d + 1] == ' ' || l.s[i + d + 1] == '\t';
}

/* Where the fenced block opening at `first` ends (after its closing line). */
static size_t fence_end(const char *s, size_t len, struct line first, char ch, size_t n)
{
    for (size_t pos = first.next; pos < len;) {
        struct line l = line_at(s, len, pos);
        if (fence_close(l, ch, n))
            return l.next;
        pos = l.next;
    }
    return len;
}

/* Where the indented block starting at pos ends: after its last indented
 * line; blank lines inside stay in it, blank lines after it do not. */
static size_t indent_end(const char *s, size_t len, size_t pos)
{
    size_t end = pos;
    while (pos < len) {
        struct line l = line_at(s, len, pos);
        if (line_indented(l))
            end = l.next;
        else if (!line_blank(l))
            break;
        pos = l.next;
    }
    return end;
}

static int code_marker(const char *s, size_t end, struct bh_buf *b, size_t *count)
{
    (*count)++;
    return bh_buf_puts(b, s[end - 1] == '\n' ? "[code removed]\n" : "[code removed]");
}

static int code_redact(const char *s, size_t len, struct bh_buf *b, size_t *count)
{
    int prev_blank = 1, in_list = 0, rc = 0;
    for (size_t pos = 0; rc == 0 && pos < len;) {
        struct line l = line_at(s, len, pos);
        char ch = 0;
        size_t n = 0, end = 0;
        if (fence_open(l, &ch, &n))
            end = fence_end(s, len, l, ch, n);
        else if (prev_blank && !in_list && line_indented(l))
            end = indent_end(s, len, pos);
        if (end) {
            rc = code_marker(s, end, b, count);
            pos = end;
            prev_blank = 1; /* a code block is no paragraph: code may follow it */
            continue;
        }
        rc = bh_buf_append(b, l.s, l.next - pos);
        prev_blank = line_blank(l);
        if (!prev_blank && !line_indented(l))
            in_list = list_item(l); /* indented lines below an item continue it */
        pos = l.next;
    }
    return rc;
}

/* ---- paths ---- */

static const char *const src_exts[] = {
    "c",     "h",   "cc",    "cpp",  "cxx",  "hpp", "hh",     "py",   "pyi", "js",    "mjs",
    "cjs",   "jsx", "ts",    "tsx",  "go",   "rs",  "java",   "kt",   "kts", "scala", "rb",
    "php",   "cs",  "swift", "m",    "mm",   "sh",  "bash",   "zsh",  "ps1", "pl",    "pm",
    "lua",   "r",   "sql",   "json", "yaml", "yml", "toml",   "ini",  "cfg", "conf",  "xml",
    "html",  "htm", "css",   "scss", "md",   "rst", "txt",    "lock", "mk",  "cmake", "gradle",
    "proto", "tf",  "env",   "pem",  "key",  "vue", "svelte", "dart", "ex",  "exs",   "erl",
    "hs",    "ml",  "clj",   "zig",  "nim",  "sol", "ipynb",  "csv",  "log", "patch", "diff",
};

static int ext_known(const char *e, size_t n)
{
    for (size_t i = 0; i < BH_NELEM(src_exts); i++) {
        size_t k = 0;
        while (k < n && src_exts[i][k] && (e[k] | 0x20) == src_exts[i][k])
            k++;
        if (k == n && !src_exts[i][k])
            return 1;
    }
    return 0;
}

/* A '/' with something beside it, or NAME.EXT (before a ":12" suffix). */
static int word_is_path(const char *w, size_t n)
{
    if (memchr(w, '/', n)) {
        for (size_t i = 0; i < n; i++)
            if (is_alnum((unsigned char)w[i]))
                return 1;
        return 0;
    }
    const char *colon = memchr(w, ':', n);
    if (colon)
        n = (size_t)(colon - w);
    size_t dot = n;
    while (dot > 0 && w[dot - 1] != '.')
        dot--;
    if (dot < 2 || dot == n)
        return 0; /* no dot, nothing before it, or nothing after it */
    for (size_t i = 0; i + 1 < dot; i++) {
        int c = (unsigned char)w[i];
        if (!is_alnum(c) && c != '_' && c != '-' && c != '.')
            return 0;
    }
    return ext_known(w + dot, n - dot);
}

static int in_set(const char *set, char c)
{
    return c != '\0' && strchr(set, c) != NULL;
}

static int paths_redact(const char *s, size_t len, struct bh_buf *b, size_t *count)
{
    int rc = 0;
    for (size_t pos = 0; rc == 0 && pos < len;) {
        size_t ws = pos, we = 0, cs = 0, ce = 0;
        while (ws < len && is_ws((unsigned char)s[ws]))
            ws++;
        for (we = ws; we < len && !is_ws((unsigned char)s[we]);)
            we++;
        for (cs = ws; cs < we && in_set("\"'`([{<*", s[cs]);)
            cs++;
        for (ce = we; ce > cs && in_set("\"'`)]}>*.,;:!?", s[ce - 1]);)
            ce--;
        if (ce > cs && word_is_path(s + cs, ce - cs)) {
            rc = bh_buf_append(b, s + pos, cs - pos);
            rc = rc ? rc : bh_buf_puts(b, "[path]");
            rc = rc ? rc : bh_buf_append(b, s + ce, we - ce);
            (*count)++;
        } else {
            rc = bh_buf_append(b, s + pos, we - pos);
        }
        pos = we;
    }
    return rc;
}

/* ---- no_verbatim ---- */

struct tok {
    size_t off, len;
};

static int is_word(int c)
{
    return is_alnum(c) || c == '_' || c >= 0x80;
}

/* The next token at or after *pos: a run of word bytes or one other byte. */
static int tok_next(const char *s, size_t len, size_t *pos, struct tok *t)
{
    size_t i = *pos;
    while (i < len && is_ws((unsigned char)s[i]))
        i++;
    if (i == len)
        return 0;
    size_t j = i + 1;
    if (is_word((unsigned char)s[i]))
        while (j < len && is_word((unsigned char)s[j]))
            j++;
    *t = (struct tok){i, j - i};
    *pos = j;
    return 1;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t tok_hash(const char *s, struct tok t)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then mixed */
    for (size_t i = 0; i < t.len; i++)
        h = (h ^ pol_norm_fold((unsigned char)s[t.off + i])) * 0x100000001b3ULL;
    return mix64(h ^ t.len);
}

#define ROLL_BASE 0x9e3779b97f4a7c15ULL /* odd, so multiplying is a bijection mod 2^64 */

/* Positions in the output fit 32 bits: it is at most DET_MAX_BYTES
 * (redaction writes into a buffer capped there). Small entries matter: the
 * table is walked at random, so its size is its cost once caches overflow. */
#define BELOW 0x80000000u /* mark: an input at or below the target holds it (compared) */
#define ABOVE 0x7fffffffu /* mark: 1 + the first input above the target holding it */

struct shingle {
    uint64_t hash;
    uint32_t pos1; /* 1 + the output token it starts at; 0: a free slot (calloc'd) */
    uint32_t mark; /* BELOW | ABOVE bits; 0: seen in no input */
};

struct otok {
    uint32_t off, len;
};

struct verb {
    const char *out;
    struct otok *ot; /* the output's tokens */
    size_t n_ot, n;
    uint64_t bpow; /* ROLL_BASE^(n-1): what the token leaving a window weighed */
    struct shingle *tab;
    size_t mask;
    uint32_t *at; /* at[p]: the table slot of the shingle starting at token p */
};

static struct tok out_tok(const struct verb *v, size_t p)
{
    return (struct tok){v->ot[p].off, v->ot[p].len};
}

/* Tokens compare as pol_norm_fold reads them (0/o, 1/l/i, 5/s), as they hash. */
static int tok_same(const char *a, struct tok x, const char *b, struct tok y)
{
    if (x.len != y.len)
        return 0;
    for (size_t i = 0; i < x.len; i++)
        if (pol_norm_fold((unsigned char)a[x.off + i]) !=
            pol_norm_fold((unsigned char)b[y.off + i]))
            return 0;
    return 1;
}

static uint32_t out_slot(struct verb *v, uint64_t h, size_t p)
{
    uint32_t i = (uint32_t)(mix64(h) & v->mask);
    for (; v->tab[i].pos1; i = (i + 1) & v->mask) {
        size_t q = v->tab[i].pos1 - 1, k = 0;
        if (v->tab[i].hash != h)
            continue;
        while (k < v->n && tok_same(v->out, out_tok(v, q + k), v->out, out_tok(v, p + k)))
            k++;
        if (k == v->n)
            return i;
    }
    v->tab[i] = (struct shingle){h, (uint32_t)p + 1, 0};
    return i;
}

static void out_index(struct verb *v, const char *out, size_t len)
{
    size_t cap = 0, pos = 0, n_sh = 0, slots = 16;
    struct tok t;
    v->out = out;
    while (tok_next(out, len, &pos, &t)) {
        v->ot = bh_xgrow(v->ot, &cap, v->n_ot + 1, sizeof(*v->ot));
        v->ot[v->n_ot++] = (struct otok){(uint32_t)t.off, (uint32_t)t.len};
    }
    if (v->n_ot < v->n)
        return;
    n_sh = v->n_ot - v->n + 1;
    while (slots / 10 * 7 < n_sh) /* load at most 0.7 */
        slots <<= 1;
    v->tab = bh_xcalloc(slots, sizeof(*v->tab));
    v->mask = slots - 1;
    v->at = bh_xmalloc(n_sh * sizeof(*v->at));
    uint64_t h = 0;
    for (size_t p = 0; p < v->n_ot; p++) {
        if (p >= v->n)
            h -= tok_hash(out, out_tok(v, p - v->n)) * v->bpow;
        h = h * ROLL_BASE + tok_hash(out, out_tok(v, p));
        if (p + 1 >= v->n)
            v->at[p + 1 - v->n] = out_slot(v, h, p + 1 - v->n);
    }
}

/* The input's last n tokens, oldest at slot `head`. */
struct ring {
    struct tok *t;
    uint64_t *h;
    size_t head;
};

static int ring_same(const struct verb *v, const struct ring *r, const char *in, size_t p)
{
    for (size_t k = 0; k < v->n; k++)
        if (!tok_same(v->out, out_tok(v, p + k), in, r->t[(r->head + k) % v->n]))
            return 0;
    return 1;
}

static void in_match(struct verb *v, const struct ring *r, const char *in, uint64_t h, size_t idx,
                     int above)
{
    uint32_t id = idx + 1 < ABOVE ? (uint32_t)(idx + 1) : ABOVE;
    for (size_t i = (size_t)mix64(h) & v->mask; v->tab[i].pos1; i = (i + 1) & v->mask) {
        struct shingle *e = &v->tab[i];
        if (e->hash != h)
            continue;
        if (above && !(e->mark & ABOVE))
            e->mark |= id; /* unconfirmed: a collision only fails the guard */
        else if (!above && (e->mark & ABOVE) && !(e->mark & BELOW) &&
                 ring_same(v, r, in, e->pos1 - 1))
            e->mark |= BELOW;
    }
}

static void in_stream(struct verb *v, struct ring *r, const struct pol_decl_input *x, size_t idx,
                      int above)
{
    size_t pos = 0, count = 0;
    uint64_t h = 0;
    struct tok t;
    while (tok_next(x->text, x->len, &pos, &t)) {
        size_t slot = count % v->n;
        uint64_t th = tok_hash(x->text, t);
        if (count >= v->n)
            h -= r->h[slot] * v->bpow;
        h = h * ROLL_BASE + th;
        r->t[slot] = t;
        r->h[slot] = th;
        r->head = ++count % v->n;
        if (count >= v->n)
            in_match(v, r, x->text, h, idx, above);
    }
}

/* The longest run of output tokens made of leaking shingles: its length in
 * tokens (0: none) and the input it came from. */
static size_t leak_longest(const struct verb *v, size_t *input)
{
    size_t best = 0, run = 0, from = 0;
    for (size_t p = 0; v->at && p + v->n <= v->n_ot; p++) {
        const struct shingle *e = &v->tab[v->at[p]];
        if (!(e->mark & ABOVE) || (e->mark & BELOW)) {
            run = 0;
            continue;
        }
        from = run++ ? from : (e->mark & ABOVE) - 1;
        if (run > best) {
            best = run;
            *input = from;
        }
    }
    return best ? best + v->n - 1 : 0;
}

/* Streams the inputs above `to`, then (if anything was marked) those at or
 * below it; returns the longest leak in tokens (0: none). */
static size_t verbatim_leak(const struct pipe_declassify *d, const struct text *out,
                            const struct pol_decl_input *in, size_t n_in, size_t *input)
{
    struct verb v = {0};
    size_t n_above = 0;
    for (size_t i = 0; i < n_in; i++)
        n_above += in[i].label > d->to;
    if (n_above == 0)
        return 0; /* nothing to leak: spare the index */
    v.n = (size_t)d->no_verbatim_tokens;
    v.bpow = 1;
    for (size_t k = 1; k < v.n; k++)
        v.bpow *= ROLL_BASE;
    out_index(&v, out->s, out->len);
    struct ring r = {bh_xcalloc(v.n, sizeof(*r.t)), bh_xcalloc(v.n, sizeof(*r.h)), 0};
    for (int pass = 1; v.at && pass >= 0; pass--)
        for (size_t i = 0; i < n_in; i++)
            if ((in[i].label > d->to) == pass)
                in_stream(&v, &r, &in[i], i, pass);
    size_t leak = leak_longest(&v, input);
    free(r.t);
    free(r.h);
    free(v.ot);
    free(v.tab);
    free(v.at);
    return leak;
}

/* ---- the guards ---- */

/* One call's state. */
struct job {
    const struct pol_labeller *l;
    const struct pipe_declassify *d;
    const struct pol_decl_input *in;
    size_t n_in;
    struct text t;        /* the output, redacted pass by pass */
    struct det_hit *hits; /* the final text's detector hits (no secret among them) */
    size_t n_hits;
    struct pol_decl_result *res;
};

static void input_name(const struct pol_decl_input *in, size_t i, char *buf, size_t size)
{
    if (in[i].name)
        snprintf(buf, size, "%s", in[i].name);
    else
        snprintf(buf, size, "input %zu", i + 1);
}

static void fail(struct pol_decl_result *res, const char *guard)
{
    res->passed = 0;
    res->failed = guard;
}

/* The first hit whose detector raises above the target: a hit at or below it
 * (a private address in an output declassified to internal) is no leak. */
static const struct det_hit *hit_above(const struct job *j, const struct pipeline *p, int to)
{
    for (size_t i = 0; i < j->n_hits; i++)
        if (pol_detector_label(p, j->hits[i].detector) > to)
            return &j->hits[i];
    return NULL;
}

/* The output and the inputs as the comparing guards read them (policy/norm.h). */
struct views {
    struct text out;
    struct pol_decl_input *in;
    int active; /* 0: no input above the target, or neither guard on: nothing made */
};

/* Normalised texts can grow (NFKC expands some characters); past this the
 * output is not compared and so not declassified. */
#define NORM_MAX ((size_t)1 << 30)

static int views_make(const struct job *j, struct views *v)
{
    size_t n_above = 0;
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < j->n_in; i++)
        n_above += j->in[i].label > j->d->to;
    if (n_above == 0 || (j->d->no_verbatim_tokens <= 0 && !j->d->no_rare_tokens))
        return 0;
    v->active = 1;
    v->in = bh_xcalloc(j->n_in ? j->n_in : 1, sizeof(*v->in));
    int rc = pol_norm_text(j->t.s, j->t.len, NORM_MAX, &v->out.s, &v->out.len);
    for (size_t i = 0; rc == 0 && i < j->n_in; i++) {
        char *s = NULL;
        v->in[i] = j->in[i];
        rc = pol_norm_text(j->in[i].text, j->in[i].len, NORM_MAX, &s, &v->in[i].len);
        v->in[i].text = s;
    }
    return rc;
}

static void views_release(struct views *v, size_t n_in)
{
    for (size_t i = 0; v->in && i < n_in; i++)
        free((char *)v->in[i].text);
    free(v->in);
    free(v->out.s);
}

static int guard_verbatim(const struct job *j, const struct views *v, const struct pipeline *p)
{
    size_t input = 0, leak = 0;
    char name[96];
    if (!v->active || j->d->no_verbatim_tokens <= 0 ||
        !(leak = verbatim_leak(j->d, &v->out, v->in, j->n_in, &input)))
        return 0;
    input_name(j->in, input, name, sizeof(name));
    snprintf(j->res->detail, sizeof(j->res->detail),
             "a run of %zu tokens is shared with %s "
             "(%s) and with no input at or below %s",
             leak, name, pol_label_name(p, j->in[input].label), pol_label_name(p, j->d->to));
    fail(j->res, "no_verbatim");
    return 1;
}

static int guard_rare(const struct job *j, const struct views *v, const struct pipeline *p)
{
    size_t input = 0;
    int cls = 0;
    char name[96];
    if (!v->active || !j->d->no_rare_tokens ||
        !pol_rare_find(v->in, j->n_in, j->d->to, v->out.s, v->out.len, &input, &cls))
        return 0;
    input_name(j->in, input, name, sizeof(name));
    snprintf(j->res->detail, sizeof(j->res->detail),
             "a rare token (%s) is copied from %s (%s), "
             "and no input at or below %s holds it",
             pol_rare_class_name(cls), name, pol_label_name(p, j->in[input].label),
             pol_label_name(p, j->d->to));
    fail(j->res, "no_rare_tokens");
    return 1;
}

/* The guards in order; the first that fails decides (res->detail says why). */
static void guards_decide(struct job *j, const struct views *v, int in_label)
{
    const struct pipeline *p = pol_labeller_pipeline(j->l);
    const struct det_hit *h = NULL;
    const struct pipe_declassify *d = j->d;
    struct pol_decl_result *res = j->res;
    if (guard_verbatim(j, v, p) || guard_rare(j, v, p))
        return;
    if (d->detectors && (h = hit_above(j, p, d->to)) != NULL) {
        snprintf(res->detail, sizeof(res->detail),
                 "detector %s (%s) matched at line %zu of "
                 "the redacted output%s",
                 h->detector->id, pol_label_name(p, pol_detector_label(p, h->detector)), h->line,
                 h + 1 < j->hits + j->n_hits ? ", with more hits after it" : "");
        fail(res, "detectors");
    } else if (d->max_chars > 0 && j->t.len > (size_t)d->max_chars) {
        snprintf(res->detail, sizeof(res->detail),
                 "the redacted output is %zu bytes, over "
                 "max_chars %ld",
                 j->t.len, d->max_chars);
        fail(res, "max_chars");
    } else {
        res->passed = 1;
        res->label = d->to < in_label ? d->to : in_label;
    }
}

/* Normalises, then decides; a text that cannot be normalised decides
 * nothing (the caller keeps the label). */
static int guards_run(struct job *j, int in_label)
{
    struct views v;
    int rc = views_make(j, &v);
    if (rc == 0)
        guards_decide(j, &v, in_label);
    views_release(&v, j->n_in);
    return rc;
}

/* Secrets, then code and paths as declared, then secrets again (the joins a
 * removal makes could complete one); j->hits are the final text's. */
static int redact_all(struct job *j)
{
    struct pol_decl_result *res = j->res;
    int rc = secrets_settle(j->l, &j->t, &j->hits, &j->n_hits, &res->redacted_secrets);
    if (rc != 0 || (!j->d->redact_code && !j->d->redact_paths))
        return rc;
    det_hits_free(j->hits);
    j->hits = NULL;
    j->n_hits = 0;
    if (j->d->redact_code)
        rc = text_pass(&j->t, code_redact, &res->redacted_code);
    if (rc == 0 && j->d->redact_paths)
        rc = text_pass(&j->t, paths_redact, &res->redacted_paths);
    return rc ? rc : secrets_settle(j->l, &j->t, &j->hits, &j->n_hits, &res->redacted_secrets);
}

int pol_declassify(const struct pol_labeller *l, const struct pipe_declassify *d, int in_label,
                   const char *out, size_t out_len, const struct pol_decl_input *in, size_t n_in,
                   struct pol_decl_result *res, struct bh_err *err)
{
    assert(l && d && d->enabled && res && (out || out_len == 0) && (in || n_in == 0));
    memset(res, 0, sizeof(*res));
    res->label = in_label;
    if (out_len > DET_MAX_BYTES)
        return bh_err_set(err, BH_ETOOBIG,
                          "the output (%zu bytes) is over the %zu-byte scan "
                          "cap, so its secrets cannot be redacted nor the output declassified "
                          "— ask for a shorter reply (options.num_predict)",
                          out_len, (size_t)DET_MAX_BYTES);
    struct job j = {l, d, in, n_in, {bh_xmalloc(out_len + 1), out_len}, NULL, 0, res};
    if (out_len)
        memcpy(j.t.s, out, out_len);
    j.t.s[out_len] = '\0';
    int rc = redact_all(&j);
    if (rc == 0)
        rc = guards_run(&j, in_label);
    det_hits_free(j.hits);
    if (rc != 0) {
        free(j.t.s);
        pol_decl_result_release(res);
        return bh_err_set(err, rc,
                          "the output could not be scanned after redaction, nor "
                          "compared with the inputs (over the %zu-byte cap, a normalised "
                          "text too large, or a detector failed), so it cannot be "
                          "declassified — ask for a shorter reply (options.num_predict)",
                          (size_t)DET_MAX_BYTES);
    }
    res->output = j.t.s;
    res->len = j.t.len;
    return 0;
}

void pol_decl_result_release(struct pol_decl_result *r)
{
    if (!r)
        return;
    free(r->output);
    memset(r, 0, sizeof(*r));
}
