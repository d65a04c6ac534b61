/* policy/rare.c — the no_rare_tokens guard (see rare.h).
 *
 * The keys (folded letters and digits) of every unit of the inputs above the
 * target go into one open-addressing table, each with the first input that
 * holds it; the inputs at or below the target then mark the keys they hold
 * too; last, each unit of the output is looked up, and only a hit that no
 * lower input marked is classified (the classes cost more than a lookup).
 * Keys are compared byte for byte, so a hash collision can neither invent
 * nor excuse a leak. Memory follows the inputs above the target (at most 8
 * units per part of a token); time is linear in all the texts, and in the
 * output times 59 for the pieces of spelled-out runs. Keys shorter than 6
 * characters are never rare and are not stored; keys are cut at 256
 * characters on both sides alike. */
#include "policy/rare.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/norm.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define KEY_MIN 6 /* the shortest rare unit: a 6-digit number */
#define KEY_MAX 256
#define SPAN_MAX 8     /* parts in one unit */
#define RUN_MIN 4      /* single characters that make a spelled-out run */
#define RUN_GAP 3      /* separators between two of them, at most */
#define RUN_PIECE 64   /* the longest piece of a run looked up */
#define KEY_LEN_MIN 12 /* a key-like unit: the prefix and enough after it */
#define MIXED_MIN 8
#define MIXED_SWITCHES 3
#define MIXED_BITS 2.5

static const char *const key_prefixes[] = {
    "akia",        "asia",   "ghp_",  "gho_",     "ghu_",     "ghs_",     "ghr_",
    "github_pat_", "glpat-", "sk-",   "sk_live_", "sk_test_", "rk_live_", "xoxa-",
    "xoxb-",       "xoxp-",  "xoxr-", "xoxs-",    "aiza",     "eyj",
};

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_letter(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_an(int c)
{
    return is_digit(c) || is_letter(c);
}

static int is_tok(int c)
{
    return is_an(c) || c == '_' || c == '-';
}

/* Shannon entropy, bits per character, of the letters and digits of u. */
static double entropy(const char *u, size_t n, size_t an)
{
    size_t count[256] = {0};
    double h = 0;
    for (size_t i = 0; i < n; i++)
        if (is_an((unsigned char)u[i]))
            count[(unsigned char)u[i] | (is_letter((unsigned char)u[i]) ? 0x20 : 0)]++;
    for (size_t c = 0; c < 256; c++)
        if (count[c]) {
            double p = (double)count[c] / (double)an;
            h -= p * log2(p);
        }
    return h;
}

static int key_like(const char *u, size_t n)
{
    if (n < KEY_LEN_MIN)
        return 0;
    for (size_t i = 0; i < BH_NELEM(key_prefixes); i++) {
        size_t k = strlen(key_prefixes[i]), m = 0;
        while (m < k && (is_letter((unsigned char)u[m]) ? u[m] | 0x20 : u[m]) == key_prefixes[i][m])
            m++;
        if (m == k)
            return 1;
    }
    return 0;
}

int pol_rare_class(const char *u, size_t n)
{
    size_t an = 0, letters = 0, digits = 0, run = 0, longest = 0, switches = 0;
    int prev = 0; /* 0 none, 1 letter, 2 digit */
    if (key_like(u, n))
        return POL_RARE_KEY;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)u[i], kind = is_letter(c) ? 1 : is_digit(c) ? 2 : 0;
        run = kind == 2 ? run + 1 : 0;
        longest = run > longest ? run : longest;
        if (kind == 0)
            continue;
        an++;
        letters += kind == 1;
        digits += kind == 2;
        switches += prev && prev != kind;
        prev = kind;
    }
    if (an >= MIXED_MIN && letters && digits && switches >= MIXED_SWITCHES &&
        entropy(u, n, an) >= MIXED_BITS)
        return POL_RARE_MIXED;
    return longest >= 6 ? POL_RARE_NUMBER : POL_RARE_NONE;
}

const char *pol_rare_class_name(int cls)
{
    static const char *const names[] = {"", "key-like", "number", "high-entropy"};
    return cls > 0 && cls < 4 ? names[cls] : "";
}

/* ---- the table of keys ---- */

struct entry {
    uint64_t hash;
    size_t off, len; /* in keys */
    size_t input;    /* the first input above the target that holds it */
    int used, low;   /* low: an input at or below the target holds it too */
};

struct table {
    struct entry *e;
    size_t mask, n;
    char *keys;
    size_t keys_len, keys_cap;
};

static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static struct entry *table_find(const struct table *t, const char *k, size_t n, uint64_t h)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        struct entry *e = &t->e[i];
        if (!e->used || (e->hash == h && e->len == n && memcmp(t->keys + e->off, k, n) == 0))
            return e;
    }
}

static void table_grow(struct table *t)
{
    struct table old = *t;
    size_t slots = old.e ? 2 * (old.mask + 1) : 1024;
    t->e = bh_xcalloc(slots, sizeof(*t->e));
    t->mask = slots - 1;
    for (size_t i = 0; old.e && i <= old.mask; i++)
        if (old.e[i].used)
            *table_find(t, old.keys + old.e[i].off, old.e[i].len, old.e[i].hash) = old.e[i];
    free(old.e);
}

static void table_add(struct table *t, const char *k, size_t n, size_t input)
{
    uint64_t h = key_hash(k, n);
    if (!t->e || (t->n + 1) * 10 > (t->mask + 1) * 7)
        table_grow(t);
    struct entry *e = table_find(t, k, n, h);
    if (e->used)
        return;
    t->keys = bh_xgrow(t->keys, &t->keys_cap, t->keys_len + n, 1);
    memcpy(t->keys + t->keys_len, k, n);
    *e = (struct entry){h, t->keys_len, n, input, 1, 0};
    t->keys_len += n;
    t->n++;
}

/* ---- units ---- */

enum side { HIGH, LOW, OUT };

struct walk {
    struct table *t;
    enum side side;
    size_t input;   /* HIGH: the input's index */
    int found, cls; /* OUT: a leak, its class */
    size_t from;    /* OUT: the input it came from */
    size_t *parts;  /* start, end offsets of the current token's parts */
    size_t parts_cap;
    char *run; /* the current spelled-out run's characters */
    size_t run_cap;
    char key[KEY_MAX];
};

/* One unit: u[0..n) as written, k[0..kn) its key. */
static void unit_visit(struct walk *w, const char *u, size_t n, const char *k, size_t kn)
{
    if (kn < KEY_MIN || w->found)
        return;
    if (w->side == HIGH) {
        table_add(w->t, k, kn, w->input);
        return;
    }
    if (!w->t->e)
        return;
    struct entry *e = table_find(w->t, k, kn, key_hash(k, kn));
    if (!e->used)
        return;
    if (w->side == LOW)
        e->low = 1;
    else if (!e->low && (w->cls = pol_rare_class(u, n)) != POL_RARE_NONE) {
        w->found = 1;
        w->from = e->input;
    }
}

/* The units of one token s[a..b): every run of up to SPAN_MAX parts. */
static void token_units(struct walk *w, const char *s, size_t a, size_t b)
{
    size_t np = 0;
    for (size_t i = a; i < b;) {
        while (i < b && (s[i] == '-' || s[i] == '_'))
            i++;
        size_t st = i;
        while (i < b && is_an((unsigned char)s[i]))
            i++;
        if (i > st) {
            w->parts = bh_xgrow(w->parts, &w->parts_cap, 2 * np + 2, sizeof(*w->parts));
            w->parts[2 * np] = st;
            w->parts[2 * np + 1] = i;
            np++;
        }
    }
    for (size_t i = 0; i < np; i++) {
        size_t kn = 0;
        for (size_t j = i; j < np && j < i + SPAN_MAX && kn < KEY_MAX; j++) {
            for (size_t p = w->parts[2 * j]; p < w->parts[2 * j + 1] && kn < KEY_MAX; p++)
                w->key[kn++] = (char)pol_norm_fold((unsigned char)s[p]);
            unit_visit(w, s + w->parts[2 * i], w->parts[2 * j + 1] - w->parts[2 * i], w->key, kn);
        }
    }
}

/* A letter or digit with no letter or digit beside it. */
static int alone(const char *s, size_t len, size_t i)
{
    return is_an((unsigned char)s[i]) && (i == 0 || !is_an((unsigned char)s[i - 1])) &&
           (i + 1 == len || !is_an((unsigned char)s[i + 1]));
}

static void run_push(struct walk *w, size_t *m, char c)
{
    w->run = bh_xgrow(w->run, &w->run_cap, *m + 1, 1);
    w->run[(*m)++] = c;
}

/* The spelled-out run of single characters starting at the lone one at i:
 * its characters into w->run (*m of them), and where it ends. */
static size_t run_collect(struct walk *w, const char *s, size_t len, size_t i, size_t *m)
{
    size_t end = i + 1;
    *m = 0;
    run_push(w, m, s[i]);
    for (size_t j = i + 1; j < len && j <= end + RUN_GAP; j++) {
        if (is_an((unsigned char)s[j]) && !alone(s, len, j))
            break;
        if (!alone(s, len, j))
            continue;
        run_push(w, m, s[j]);
        end = j + 1;
    }
    return end;
}

static void run_units(struct walk *w, const char *r, size_t m)
{
    char k[RUN_PIECE];
    if (w->side != OUT || m <= RUN_PIECE) {
        size_t kn = m < KEY_MAX ? m : KEY_MAX;
        for (size_t p = 0; p < kn; p++)
            w->key[p] = (char)pol_norm_fold((unsigned char)r[p]);
        unit_visit(w, r, m, w->key, kn);
    }
    for (size_t i = 0; w->side == OUT && i + KEY_MIN <= m; i++) {
        size_t kn = 0;
        for (size_t p = i; p < m && kn < RUN_PIECE; p++) {
            k[kn++] = (char)pol_norm_fold((unsigned char)r[p]);
            if (kn >= KEY_MIN && !(i == 0 && p + 1 == m && m <= RUN_PIECE))
                unit_visit(w, r + i, kn, k, kn);
        }
    }
}

/* Every unit of s[0..len): tokens and their spans, then spelled-out runs. */
static void text_units(struct walk *w, const char *s, size_t len)
{
    for (size_t i = 0; i < len && !w->found;) {
        if (!is_tok((unsigned char)s[i])) {
            i++;
            continue;
        }
        size_t a = i;
        while (i < len && is_tok((unsigned char)s[i]))
            i++;
        token_units(w, s, a, i);
    }
    for (size_t i = 0; i < len && !w->found;) {
        size_t m = 0, end = alone(s, len, i) ? run_collect(w, s, len, i, &m) : i + 1;
        if (m >= RUN_MIN)
            run_units(w, w->run, m);
        i = end;
    }
}

int pol_rare_find(const struct pol_decl_input *in, size_t n_in, int to, const char *out,
                  size_t out_len, size_t *input, int *cls)
{
    struct table t = {0};
    struct walk *w = bh_xcalloc(1, sizeof(*w));
    w->t = &t;
    for (int pass = HIGH; pass <= LOW; pass++)
        for (size_t i = 0; i < n_in; i++)
            if ((in[i].label > to) == (pass == HIGH)) {
                w->side = (enum side)pass;
                w->input = i;
                text_units(w, in[i].text, in[i].len);
            }
    w->side = OUT;
    if (t.n)
        text_units(w, out, out_len);
    int found = w->found;
    if (found) {
        *input = w->from;
        *cls = w->cls;
    }
    free(w->parts);
    free(w->run);
    free(w);
    free(t.e);
    free(t.keys);
    return found;
}
