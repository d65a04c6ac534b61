/* detect/detect.c — the built-in content detectors and the scan that runs
 * them.
 *
 * Each detector is a row of a static table: id, group, label name, secret
 * flag and a hand-written matcher. No regex engine: the matchers are small
 * scanners, so their cost is visibly linear (every candidate start does a
 * bounded amount of work, or consumes what it reads), they never allocate,
 * and they read only data[0..len), so NUL bytes and invalid UTF-8 are just
 * bytes. The trade-off is precision over recall: a detector prefers a near
 * miss (a weak password, a lowercase IBAN) to raising the label of ordinary
 * code, because a label raised for nothing pushes work off the cloud for
 * nothing; what matters most (keys, tokens) has exact formats.
 *
 * A hit carries offset, length and line only, never the text. */
#include "detect/detect.h"

#include <stdlib.h>
#include <string.h>

#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define DEFAULT_MAX_HITS 4096

/* ---- byte classes (ASCII only: any other byte is "other") ---- */

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}
static int is_upper(int c)
{
    return c >= 'A' && c <= 'Z';
}
static int is_lower(int c)
{
    return c >= 'a' && c <= 'z';
}
static int is_alpha(int c)
{
    return is_upper(c) || is_lower(c);
}
static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}
static int is_word(int c)
{
    return is_alnum(c) || c == '_';
}
static int is_upper_digit(int c)
{
    return is_upper(c) || is_digit(c);
}
static int is_b64url(int c)
{
    return is_alnum(c) || c == '_' || c == '-';
}
static int is_slack(int c)
{
    return is_alnum(c) || c == '-';
}
static int is_aws_secret(int c)
{
    return is_alnum(c) || c == '/' || c == '+';
}
static int is_space(int c)
{
    return c == ' ' || c == '\t';
}

/* The byte at i, or 0 outside the buffer (0 is "other" to every class). */
static int at(const char *d, size_t len, size_t i)
{
    return i < len ? (unsigned char)d[i] : 0;
}

static int before(const char *d, size_t i)
{
    return i > 0 ? (unsigned char)d[i - 1] : 0;
}

/* Count of bytes of class cls from i, stopping after max + 1 (so a caller
 * can tell "exactly max" from "longer"): bounded work per candidate. */
static size_t span_of(const char *d, size_t len, size_t i, int (*cls)(int), size_t max)
{
    size_t n = 0;
    while (n <= max && cls(at(d, len, i + n)))
        n++;
    return n;
}

static int has_at(const char *d, size_t len, size_t i, const char *lit)
{
    size_t n = strlen(lit);
    return i <= len && len - i >= n && memcmp(d + i, lit, n) == 0;
}

/* First occurrence of lit at or after from, or len. Linear for a short
 * literal: memchr on its first byte, then a bounded compare. */
static size_t find(const char *d, size_t len, size_t from, const char *lit)
{
    while (from < len) {
        const char *p = memchr(d + from, lit[0], len - from);
        if (!p)
            return len;
        from = (size_t)(p - d);
        if (has_at(d, len, from, lit))
            return from;
        from++;
    }
    return len;
}

static int found(struct det_span *out, size_t start, size_t end)
{
    out->offset = start;
    out->length = end - start;
    return 1;
}

/* ---- prefixed tokens: AWS key ids, GitHub, GitLab, Slack, Google ---- */

struct tok_rule {
    const char *prefix;
    int (*cls)(int); /* body bytes */
    size_t min, max; /* body length */
    int digit_first; /* body must start with a digit (Slack) */
};

static size_t distinct_bytes(const char *s, size_t n)
{
    unsigned char seen[256] = {0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        k += !seen[(unsigned char)s[i]];
        seen[(unsigned char)s[i]] = 1;
    }
    return k;
}

/* A prefix at a word start, a body of min..max bytes of cls, then a byte
 * that could not continue the token. */
static int tok_at(const char *d, size_t len, size_t i, const struct tok_rule *r, size_t *end)
{
    if (!has_at(d, len, i, r->prefix))
        return 0;
    size_t b = i + strlen(r->prefix);
    size_t n = span_of(d, len, b, r->cls, r->max);
    if (n < r->min || n > r->max || is_word(at(d, len, b + n)) || r->cls(at(d, len, b + n)))
        return 0;
    if (r->digit_first && !is_digit(at(d, len, b)))
        return 0;
    if (n >= 16 && distinct_bytes(d + b, n) < 6)
        return 0; /* ghp_xxxx…, AKIA0000…: documentation, not a key */
    *end = b + n;
    return 1;
}

static int match_tokens(const struct tok_rule *rules, size_t n_rules, const char *d, size_t len,
                        size_t from, struct det_span *out)
{
    for (size_t i = from; i < len; i++) {
        if (is_word(before(d, i)) || before(d, i) == '-')
            continue;
        for (size_t r = 0; r < n_rules; r++) {
            size_t end = 0;
            if ((unsigned char)d[i] == (unsigned char)rules[r].prefix[0] &&
                tok_at(d, len, i, &rules[r], &end))
                return found(out, i, end);
        }
    }
    return 0;
}

static int match_aws_key(const void *ctx, const char *d, size_t len, size_t from,
                         struct det_span *out)
{
    static const struct tok_rule rules[] = {
        {"AKIA", is_upper_digit, 16, 16, 0},
        {"ASIA", is_upper_digit, 16, 16, 0},
    };
    (void)ctx;
    return match_tokens(rules, 2, d, len, from, out);
}

static int match_github(const void *ctx, const char *d, size_t len, size_t from,
                        struct det_span *out)
{
    static const struct tok_rule rules[] = {
        {"ghp_", is_alnum, 36, 36, 0}, {"gho_", is_alnum, 36, 36, 0},
        {"ghu_", is_alnum, 36, 36, 0}, {"ghs_", is_alnum, 36, 36, 0},
        {"ghr_", is_alnum, 36, 36, 0}, {"github_pat_", is_word, 82, 82, 0},
    };
    (void)ctx;
    return match_tokens(rules, BH_NELEM(rules), d, len, from, out);
}

static int match_gitlab(const void *ctx, const char *d, size_t len, size_t from,
                        struct det_span *out)
{
    static const struct tok_rule rules[] = {{"glpat-", is_b64url, 20, 20, 0}};
    (void)ctx;
    return match_tokens(rules, 1, d, len, from, out);
}

static int match_slack(const void *ctx, const char *d, size_t len, size_t from,
                       struct det_span *out)
{
    static const struct tok_rule rules[] = {
        {"xoxb-", is_slack, 10, 255, 1}, {"xoxp-", is_slack, 10, 255, 1},
        {"xoxa-", is_slack, 10, 255, 1}, {"xoxr-", is_slack, 10, 255, 1},
        {"xoxs-", is_slack, 10, 255, 1},
    };
    (void)ctx;
    return match_tokens(rules, BH_NELEM(rules), d, len, from, out);
}

static int match_google(const void *ctx, const char *d, size_t len, size_t from,
                        struct det_span *out)
{
    static const struct tok_rule rules[] = {{"AIza", is_b64url, 35, 35, 0}};
    (void)ctx;
    return match_tokens(rules, 1, d, len, from, out);
}

/* ---- PEM private keys ---- */

/* After "-----BEGIN ": a label of capitals ending in PRIVATE KEY (or PGP's
 * PRIVATE KEY BLOCK), then "-----". Returns the end of the header or 0. */
static size_t pem_header_end(const char *d, size_t len, size_t i)
{
    size_t n = 0;
    while (n <= 48 && (is_upper_digit(at(d, len, i + n)) || at(d, len, i + n) == ' '))
        n++;
    if (n > 48 || !has_at(d, len, i + n, "-----"))
        return 0;
    static const char *const tails[] = {"PRIVATE KEY", "PRIVATE KEY BLOCK"};
    for (size_t t = 0; t < 2; t++) {
        size_t tn = strlen(tails[t]);
        if (n < tn)
            continue;
        int word_start = n == tn || d[i + n - tn - 1] == ' ';
        if (word_start && memcmp(d + i + n - tn, tails[t], tn) == 0)
            return i + n + 5;
    }
    return 0;
}

/* Bytes a key body may hold: base64, padding, line breaks (also escaped as
 * \n inside a string), diff markers, and the Proc-Type/DEK-Info headers of
 * an encrypted key. A space only indents or follows ':', so prose that
 * mentions a header is not swallowed. */
static int pem_body_byte(const char *d, size_t len, size_t k)
{
    int c = at(d, len, k);
    if (c == ' ' || c == '\t')
        return k > 0 && (before(d, k) == '\n' || before(d, k) == ' ' || before(d, k) == ':');
    return is_alnum(c) || c == '+' || c == '/' || c == '=' || c == '\n' || c == '\r' || c == '\\' ||
           c == ':' || c == ',' || c == '-';
}

/* The key body after the header, through the END line when there is one:
 * the span covers what must be redacted, also for a key cut short. */
static size_t pem_body_end(const char *d, size_t len, size_t k)
{
    while (k < len) {
        if (has_at(d, len, k, "-----")) {
            size_t e = 0;
            if (has_at(d, len, k, "-----END ") && (e = pem_header_end(d, len, k + 9)) != 0)
                return e;
            break;
        }
        if (!pem_body_byte(d, len, k))
            break;
        k++;
    }
    while (k > 0 && (d[k - 1] == '\n' || d[k - 1] == '\r' || is_space(d[k - 1])))
        k--;
    return k;
}

static int match_pem(const void *ctx, const char *d, size_t len, size_t from, struct det_span *out)
{
    (void)ctx;
    for (size_t i = find(d, len, from, "-----BEGIN "); i < len;
         i = find(d, len, i + 1, "-----BEGIN ")) {
        size_t h = pem_header_end(d, len, i + 11);
        if (h)
            return found(out, i, pem_body_end(d, len, h));
    }
    return 0;
}

/* ---- assignments: `key = value`, `key: "value"`, `"key": "value"` ---- */

#define KEY_MAX 64
#define VALUE_MAX 256

static int is_key_byte(int c)
{
    return is_word(c) || c == '-' || c == '.';
}

/* The key lowercased without '_', '-', '.' (so apiKey, api_key, API-KEY
 * agree) into norm[KEY_MAX + 1]; returns its length. */
static size_t key_norm(const char *k, size_t n, char *norm)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)k[i];
        if (c == '_' || c == '-' || c == '.')
            continue;
        norm[m++] = (char)(is_upper(c) ? c - 'A' + 'a' : c);
    }
    norm[m] = '\0';
    return m;
}

static int key_ends_with(const char *k, size_t n, const char *const *names, size_t n_names)
{
    char norm[KEY_MAX + 1];
    size_t m = key_norm(k, n, norm);
    for (size_t i = 0; i < n_names; i++)
        if (bh_str_endswith(norm, names[i]) && m >= strlen(names[i]))
            return 1;
    return 0;
}

static int key_is_secret(const char *k, size_t n)
{
    static const char *const names[] = {"password", "passwd", "secret", "token", "apikey"};
    return key_ends_with(k, n, names, BH_NELEM(names));
}

static int key_is_aws_secret(const char *k, size_t n)
{
    static const char *const names[] = {"secretaccesskey", "awssecretkey", "awssecret"};
    return key_ends_with(k, n, names, BH_NELEM(names));
}

/* After the key: an optional closing quote, then = : := or =>, never ==
 * (a comparison) or :: (a scope). Returns where the value may start, or 0. */
static size_t assign_sep(const char *d, size_t len, size_t j)
{
    if (at(d, len, j) == '"' || at(d, len, j) == '\'')
        j++;
    while (is_space(at(d, len, j)))
        j++;
    int c = at(d, len, j), c2 = at(d, len, j + 1);
    if (c == '=' && c2 != '=')
        j += c2 == '>' ? 2 : 1;
    else if (c == ':' && c2 != ':')
        j += c2 == '=' ? 2 : 1;
    else
        return 0;
    while (is_space(at(d, len, j)))
        j++;
    return j;
}

static int ends_unquoted(int c)
{
    return c == 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' ||
           c == '`' || c == ',' || c == ';' || c == ')' || c == ']' || c == '}' || c == '&';
}

/* The value at j: inside quotes on one line, or an unquoted run. *quoted
 * says which. Returns 0 when there is none or it is longer than VALUE_MAX. */
static int assign_value(const char *d, size_t len, size_t j, struct det_span *v, int *quoted)
{
    int q = at(d, len, j);
    size_t n = 0;
    *quoted = q == '"' || q == '\'' || q == '`';
    if (*quoted) {
        while (n <= VALUE_MAX && at(d, len, j + 1 + n) != q && at(d, len, j + 1 + n) != '\n' &&
               j + 1 + n < len)
            n++;
        if (n > VALUE_MAX || at(d, len, j + 1 + n) != q)
            return 0;
        v->offset = j + 1;
    } else {
        while (n <= VALUE_MAX && !ends_unquoted(at(d, len, j + n)))
            n++;
        if (n > VALUE_MAX)
            return 0;
        v->offset = j;
    }
    v->length = n;
    return n > 0;
}

typedef int (*key_fn)(const char *k, size_t n);
typedef int (*value_fn)(const char *v, size_t n, int quoted);

/* The next assignment at or after from whose key passes key_ok and whose
 * value passes value_ok; the span is the value (what a redaction removes). */
static int match_assign(const char *d, size_t len, size_t from, key_fn key_ok, value_fn value_ok,
                        struct det_span *out)
{
    size_t i = from;
    while (i < len) {
        if (!is_key_byte((unsigned char)d[i]) || is_key_byte(before(d, i))) {
            i++;
            continue;
        }
        size_t e = i;
        while (e < len && is_key_byte((unsigned char)d[e]))
            e++;
        size_t j = e - i <= KEY_MAX && key_ok(d + i, e - i) ? assign_sep(d, len, e) : 0;
        struct det_span v = {0, 0};
        int quoted = 0;
        if (j && assign_value(d, len, j, &v, &quoted) && value_ok(d + v.offset, v.length, quoted))
            return found(out, v.offset, v.offset + v.length);
        i = e;
    }
    return 0;
}

static int aws_secret_value(const char *v, size_t n, int quoted)
{
    (void)quoted;
    if (n != 40)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_aws_secret((unsigned char)v[i]))
            return 0;
    return 1;
}

static int match_aws_secret(const void *ctx, const char *d, size_t len, size_t from,
                            struct det_span *out)
{
    (void)ctx;
    return match_assign(d, len, from, key_is_aws_secret, aws_secret_value, out);
}

/* log2 for x > 0 without libm: scale into [1, 2), then the atanh series
 * (converges fast there: y <= 1/3). */
static double log2_pos(double x)
{
    int e = 0;
    while (x >= 2.0) {
        x /= 2.0;
        e++;
    }
    while (x < 1.0) {
        x *= 2.0;
        e--;
    }
    double y = (x - 1.0) / (x + 1.0), y2 = y * y, term = y, sum = 0.0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= y2;
    }
    return e + 2.0 * sum / 0.69314718055994530942;
}

/* Shannon entropy in bits per byte. */
static double entropy(const char *v, size_t n)
{
    size_t count[256] = {0};
    for (size_t i = 0; i < n; i++)
        count[(unsigned char)v[i]]++;
    double h = 0.0;
    for (size_t c = 0; c < 256; c++)
        if (count[c])
            h -= (double)count[c] / (double)n * log2_pos((double)count[c] / (double)n);
    return h;
}

static int contains_ci(const char *v, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    for (size_t i = 0; i + m <= n; i++) {
        size_t k = 0;
        while (k < m && ((unsigned char)v[i + k] | 0x20) == (unsigned char)lit[k])
            k++;
        if (k == m)
            return 1;
    }
    return 0;
}

/* Placeholders and references, not values: changeme, xxxx, ****, <...>,
 * ${VAR}, $VAR, %(name)s, {{ template }}. */
static int is_placeholder(const char *v, size_t n)
{
    static const char *const words[] = {
        "changeme", "change_me", "change-me", "example", "placeholder", "your", "dummy", "redacted",
        "xxxx",     "****",      "....",      "todo",    "fixme",       "{{",   "${",    "%("};
    if (v[0] == '$' || v[0] == '%' || (v[0] == '<' && v[n - 1] == '>'))
        return 1;
    for (size_t i = 0; i < BH_NELEM(words); i++)
        if (contains_ci(v, n, words[i]))
            return 1;
    return 0;
}

/* A value that is code or a name, not a secret: a call or index
 * (os.environ["X"], getpass()), a member (it->second, a::b), a dotted
 * reference (self.token; quoted only when lowercase, like the message key
 * "auth.token.expired"), or an identifier with no digit (new_password,
 * "challengePassword"). */
static int is_reference(const char *v, size_t n, int quoted)
{
    int dot = 0, digit = 0, upper = 0, ident = 1;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)v[i];
        if (!quoted && (c == '(' || c == '[' || c == '{' || c == '<'))
            return 1;
        if ((c == '-' && at(v, n, i + 1) == '>') || (c == ':' && at(v, n, i + 1) == ':'))
            return 1;
        dot |= c == '.';
        digit |= is_digit(c);
        upper |= is_upper(c);
        ident &= is_word(c) || c == '.';
    }
    return ident && (!digit || (dot && (!quoted || !upper)));
}

/* A sentence ("Password used to generate key") or a plain path
 * ("/dev/urandom"): text about a secret, not one. */
static int is_text(const char *v, size_t n)
{
    size_t spaces = 0;
    int words = 1, path = v[0] == '/';
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)v[i];
        spaces += c == ' ';
        words &= is_alpha(c) || c == ' ' || c == '.' || c == ',' || c == '\'' || c == '!' ||
                 c == '?' || c == '-';
        path &= is_lower(c) || is_digit(c) || c == '_' || c == '.' || c == '/' || c == '-';
    }
    return (spaces >= 2 && words) || path;
}

static int secret_value(const char *v, size_t n, int quoted)
{
    if (n < 8 || is_placeholder(v, n) || is_reference(v, n, quoted) || is_text(v, n))
        return 0;
    return entropy(v, n) >= 3.0;
}

static int match_secret_assign(const void *ctx, const char *d, size_t len, size_t from,
                               struct det_span *out)
{
    (void)ctx;
    return match_assign(d, len, from, key_is_secret, secret_value, out);
}

/* ---- JWT ---- */

static int b64url_value(int c)
{
    if (is_upper(c))
        return c - 'A';
    if (is_lower(c))
        return c - 'a' + 26;
    if (is_digit(c))
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decodes base64url s[0..n) (no padding) into out[0..cap); returns the
 * bytes written. Stops at the first byte outside the alphabet. */
static size_t b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            break;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o;
}

/* A JWT header is a JSON object whose first member is "alg" or "typ". */
static int jwt_header(const char *s, size_t n)
{
    unsigned char h[6];
    size_t m = b64url_decode(s, n < 8 ? n : 8, h, sizeof(h));
    return m == 6 && (memcmp(h, "{\"alg\"", 6) == 0 || memcmp(h, "{\"typ\"", 6) == 0);
}

/* header.payload.signature (signature may be empty for alg "none"), and the
 * two more segments of an encrypted token when they follow. */
static size_t jwt_end(const char *d, size_t len, size_t i)
{
    size_t n1 = span_of(d, len, i, is_b64url, (size_t)-2);
    if (n1 < 8 || !jwt_header(d + i, n1) || at(d, len, i + n1) != '.')
        return 0;
    size_t j = i + n1 + 1, n2 = span_of(d, len, j, is_b64url, (size_t)-2);
    if (n2 < 2 || at(d, len, j + n2) != '.')
        return 0;
    j += n2 + 1;
    j += span_of(d, len, j, is_b64url, (size_t)-2);
    for (int extra = 0; extra < 2 && at(d, len, j) == '.' && is_b64url(at(d, len, j + 1)); extra++)
        j += 1 + span_of(d, len, j + 1, is_b64url, (size_t)-2);
    return j;
}

static int match_jwt(const void *ctx, const char *d, size_t len, size_t from, struct det_span *out)
{
    (void)ctx;
    for (size_t i = find(d, len, from, "eyJ"); i < len; i = find(d, len, i + 1, "eyJ")) {
        if (is_b64url(before(d, i)) || before(d, i) == '.')
            continue;
        size_t e = jwt_end(d, len, i);
        if (e)
            return found(out, i, e);
    }
    return 0;
}

/* ---- e-mail addresses ---- */

static int is_local_byte(int c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* Domain labels after '@' at j: two or more, a TLD of 2+ letters, no label
 * starting or ending with '-'. Returns the end, or 0. */
static size_t email_domain_end(const char *d, size_t len, size_t j)
{
    size_t labels = 0, start = j, tld = 0;
    for (;;) {
        size_t n = span_of(d, len, j, is_slack, 63);
        if (n == 0 || n > 63 || d[j] == '-' || d[j + n - 1] == '-')
            return 0;
        tld = n;
        labels++;
        j += n;
        if (at(d, len, j) != '.' || !is_alnum(at(d, len, j + 1)) || j - start > 253)
            break;
        j++;
    }
    for (size_t k = j - tld; k < j; k++)
        if (!is_alpha((unsigned char)d[k]))
            return 0;
    return labels >= 2 && tld >= 2 && j - start <= 253 ? j : 0;
}

/* Last labels that are file or unit suffixes, not top-level domains. */
static int tld_excluded(const char *t, size_t n)
{
    static const char *const ext[] = {
        "service", "socket", "timer", "target", "mount", "automount", "slice", "scope",
        "swap",    "device", "path",  "header", "png",   "jpg",       "jpeg",  "gif",
        "svg",     "webp",   "ico",   "css",    "js",    "json",      "yaml",  "yml",
        "xml",     "html",   "htm",   "txt",    "log",   "tar",       "gz",    "xz",
        "zip",     "lock",   "conf",  "cfg",    "ini",   "bak",       "tmp",   "localdomain",
    };
    for (size_t i = 0; i < BH_NELEM(ext); i++) {
        size_t k = 0;
        while (k < n && ext[i][k] && (t[k] | 0x20) == ext[i][k])
            k++;
        if (k == n && !ext[i][k])
            return 1;
    }
    return 0;
}

/* Not an address: icon@2x.png (a retina asset), git@host:org/repo (scp),
 * backup@daily.service (a systemd unit). */
static int email_excluded(const char *d, size_t len, size_t dom, size_t end)
{
    if (is_digit(at(d, len, dom)) && at(d, len, dom + 1) == 'x' && at(d, len, dom + 2) == '.')
        return 1;
    size_t t = end;
    while (t > dom && d[t - 1] != '.')
        t--;
    if (tld_excluded(d + t, end - t))
        return 1;
    int c = at(d, len, end + 1);
    return at(d, len, end) == ':' && c != 0 && !is_space(c) && c != '\n' && !is_digit(c);
}

static int email_at(const char *d, size_t len, size_t from, size_t a, struct det_span *out)
{
    size_t s = a;
    while (s > from && a - s <= 64 && is_local_byte((unsigned char)d[s - 1]))
        s--;
    if (s == a || a - s > 64 || is_local_byte(before(d, s)))
        return 0;
    if (d[s] == '.' || d[a - 1] == '.')
        return 0;
    size_t e = email_domain_end(d, len, a + 1);
    if (!e || is_word(at(d, len, e)) || at(d, len, e) == '@' || email_excluded(d, len, a + 1, e))
        return 0;
    return found(out, s, e);
}

static int match_email(const void *ctx, const char *d, size_t len, size_t from,
                       struct det_span *out)
{
    (void)ctx;
    for (size_t a = find(d, len, from, "@"); a < len; a = find(d, len, a + 1, "@"))
        if (email_at(d, len, from, a, out))
            return 1;
    return 0;
}

/* ---- numbers in groups: card numbers and IBANs share the walk ---- */

/* A number may start here: not inside a word, a decimal or a dashed id. */
static int number_start(const char *d, size_t i)
{
    int p = before(d, i);
    if (is_word(p) || p == '.')
        return 0;
    return !(p == '-' && i >= 2 && is_alnum((unsigned char)d[i - 2]));
}

/* A number may end here: not followed by more of a word or by a decimal. */
static int number_end(const char *d, size_t len, size_t e)
{
    int c = at(d, len, e);
    return !is_word(c) && !(c == '.' && is_digit(at(d, len, e + 1)));
}

/* ---- card numbers ---- */

static int luhn_ok(const unsigned char *dig, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = dig[n - 1 - i];
        if (i % 2 == 1)
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    return sum % 10 == 0;
}

/* Known issuer prefixes with their lengths: Visa, Mastercard (51-55 and
 * 2221-2720), American Express, Discover. */
static int iin_ok(const unsigned char *g, size_t n)
{
    unsigned p2 = g[0] * 10u + g[1], p4 = p2 * 100u + g[2] * 10u + g[3];
    if (g[0] == 4)
        return n == 13 || n == 16 || n == 19;
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
        return n == 16;
    if (p2 == 34 || p2 == 37)
        return n == 15;
    if (p4 == 6011 || p2 == 65)
        return n >= 16 && n <= 19;
    return 0;
}

struct groups {
    unsigned char dig[20]; /* the digits or characters read */
    size_t ends[8];        /* byte end of each group */
    size_t count[8];       /* characters read by the end of each group */
    size_t n;              /* groups read */
};

/* Card digits from i: one run of 13-19, or a first group of 4 then groups of
 * 3-6 joined by one space or one dash (the same all along). */
static void card_groups(const char *d, size_t len, size_t i, struct groups *g)
{
    size_t j = i, got = 0;
    int sep = 0;
    g->n = 0;
    while (g->n < 8) {
        size_t n = span_of(d, len, j, is_digit, 19);
        int first = g->n == 0;
        if (got + n > 19 || (first && n != 4 && (n < 13 || n > 19)) || (!first && (n < 3 || n > 6)))
            break;
        for (size_t k = 0; k < n; k++)
            g->dig[got + k] = (unsigned char)(d[j + k] - '0');
        got += n;
        j += n;
        g->ends[g->n] = j;
        g->count[g->n++] = got;
        int c = at(d, len, j);
        if ((c != ' ' && c != '-') || (sep && c != sep) || !is_digit(at(d, len, j + 1)) || n > 6)
            break;
        sep = c;
        j++;
    }
}

static int card_at(const char *d, size_t len, size_t i, size_t *end)
{
    struct groups g;
    card_groups(d, len, i, &g);
    for (size_t k = g.n; k-- > 0;) {
        size_t n = g.count[k];
        if (n >= 13 && number_end(d, len, g.ends[k]) && iin_ok(g.dig, n) && luhn_ok(g.dig, n)) {
            *end = g.ends[k];
            return 1;
        }
    }
    return 0;
}

static int match_card(const void *ctx, const char *d, size_t len, size_t from, struct det_span *out)
{
    (void)ctx;
    for (size_t i = from; i < len; i++) {
        size_t end = 0;
        if (is_digit((unsigned char)d[i]) && number_start(d, i) && card_at(d, len, i, &end))
            return found(out, i, end);
    }
    return 0;
}

/* ---- IBAN ---- */

struct iban_len {
    char cc[3];
    unsigned char len;
};

/* Lengths from the IBAN registry for the countries we know; any other
 * country code may be 15..34 characters. */
static const struct iban_len iban_lens[] = {
    {"AT", 20}, {"BE", 16}, {"BG", 22}, {"CH", 21}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18},
    {"EE", 20}, {"ES", 24}, {"FI", 18}, {"FR", 27}, {"GB", 22}, {"GR", 27}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IT", 27}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MT", 31},
    {"NL", 18}, {"NO", 15}, {"PL", 28}, {"PT", 25}, {"RO", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24},
};

/* The other countries that issue IBANs (hex fingerprints such as
 * "FB27 CF2D 2160 94DF" pass mod-97 one time in 97: the code must exist). */
static const char iban_others[] =
    "AD AE AL AZ BA BH BI BR BY CR DJ DO EG FK FO GE GI GL GT IL IQ IS JO KW KZ LB LC LY "
    "MD ME MK MN MR MU NI OM PK PS QA RS RU SA SC SD SM SO ST SV TL TN TR UA VA VG XK YE";

static int iban_len_ok(const unsigned char *cc, size_t n)
{
    for (size_t i = 0; i < BH_NELEM(iban_lens); i++)
        if (iban_lens[i].cc[0] == cc[0] && iban_lens[i].cc[1] == cc[1])
            return n == iban_lens[i].len;
    for (size_t i = 0; i + 1 < sizeof(iban_others); i += 3)
        if (iban_others[i] == cc[0] && iban_others[i + 1] == cc[1])
            return n >= 15 && n <= 34;
    return 0;
}

/* ISO 13616: move the first four characters to the end, letters count as
 * 10..35, and the whole number is 1 mod 97. */
static int iban_mod97_ok(const unsigned char *s, size_t n)
{
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        int c = s[(k + 4) % n];
        if (is_digit(c))
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
    }
    return rem == 1;
}

/* IBAN characters from i: one run, or groups of four joined by one space
 * (the printed form) with a last group of 1-4. */
static void iban_groups(const char *d, size_t len, size_t i, struct groups *g, unsigned char *s)
{
    size_t j = i, got = 0;
    g->n = 0;
    while (g->n < 8 && got < 34) {
        size_t n = span_of(d, len, j, is_upper_digit, 34);
        if (got + n > 34 || (g->n > 0 && n > 4))
            break;
        memcpy(s + got, d + j, n);
        got += n;
        j += n;
        g->ends[g->n] = j;
        g->count[g->n++] = got;
        if (n != 4 || at(d, len, j) != ' ' || !is_upper_digit(at(d, len, j + 1)))
            break;
        j++;
    }
}

static int iban_at(const char *d, size_t len, size_t i, size_t *end)
{
    if (!is_upper(at(d, len, i)) || !is_upper(at(d, len, i + 1)) || !is_digit(at(d, len, i + 2)) ||
        !is_digit(at(d, len, i + 3)))
        return 0;
    struct groups g;
    unsigned char s[40];
    iban_groups(d, len, i, &g, s);
    for (size_t k = g.n; k-- > 0;) {
        size_t n = g.count[k];
        if (iban_len_ok(s, n) && number_end(d, len, g.ends[k]) && iban_mod97_ok(s, n)) {
            *end = g.ends[k];
            return 1;
        }
    }
    return 0;
}

static int match_iban(const void *ctx, const char *d, size_t len, size_t from, struct det_span *out)
{
    (void)ctx;
    for (size_t i = from; i + 4 < len; i++) {
        size_t end = 0;
        if (is_upper((unsigned char)d[i]) && number_start(d, i) && iban_at(d, len, i, &end))
            return found(out, i, end);
    }
    return 0;
}

/* ---- US social security numbers ---- */

static unsigned digits_value(const char *d, size_t i, size_t n)
{
    unsigned v = 0;
    for (size_t k = 0; k < n; k++)
        v = v * 10 + (unsigned)(d[i + k] - '0');
    return v;
}

/* AAA-GG-SSSS, dashes only; area 000, 666 and 900-999, group 00, serial 0000
 * were never issued, and two numbers are famous published samples. */
static int ssn_at(const char *d, size_t len, size_t i)
{
    static const char shape[] = "ddd-dd-dddd";
    for (size_t k = 0; k < 11; k++) {
        int c = at(d, len, i + k);
        if (shape[k] == 'd' ? !is_digit(c) : c != '-')
            return 0;
    }
    int next = at(d, len, i + 11);
    if (is_word(next) || ((next == '-' || next == '.') && is_digit(at(d, len, i + 12))))
        return 0;
    unsigned area = digits_value(d, i, 3), group = digits_value(d, i + 4, 2);
    unsigned serial = digits_value(d, i + 7, 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
        return 0;
    return !(area == 78 && group == 5 && serial == 1120) &&
           !(area == 219 && group == 9 && serial == 9999);
}

static int match_ssn(const void *ctx, const char *d, size_t len, size_t from, struct det_span *out)
{
    (void)ctx;
    for (size_t i = from; i + 11 <= len; i++)
        if (is_digit((unsigned char)d[i]) && number_start(d, i) && ssn_at(d, len, i))
            return found(out, i, i + 11);
    return 0;
}

/* ---- IPv4 addresses in private ranges ---- */

/* One octet at *j: 0-255 with no leading zero. */
static int octet(const char *d, size_t len, size_t *j, unsigned *v)
{
    size_t n = span_of(d, len, *j, is_digit, 3);
    if (n == 0 || n > 3 || (n > 1 && d[*j] == '0'))
        return 0;
    *v = digits_value(d, *j, n);
    *j += n;
    return *v <= 255;
}

static int ipv4_at(const char *d, size_t len, size_t i, size_t *end)
{
    unsigned o[4] = {0, 0, 0, 0};
    size_t j = i;
    for (int k = 0; k < 4; k++) {
        if ((k > 0 && at(d, len, j++) != '.') || !octet(d, len, &j, &o[k]))
            return 0;
    }
    int next = at(d, len, j);
    if (is_word(next) || (next == '.' && is_digit(at(d, len, j + 1))))
        return 0;
    *end = j;
    return o[0] == 10 || (o[0] == 172 && o[1] >= 16 && o[1] <= 31) || (o[0] == 192 && o[1] == 168);
}

static int match_ipv4(const void *ctx, const char *d, size_t len, size_t from, struct det_span *out)
{
    (void)ctx;
    for (size_t i = from; i < len; i++) {
        size_t end = 0;
        if (is_digit((unsigned char)d[i]) && !is_word(before(d, i)) && before(d, i) != '.' &&
            ipv4_at(d, len, i, &end))
            return found(out, i, end);
    }
    return 0;
}

/* ---- the table ---- */

static const struct det_detector detectors[] = {
    {"private-key", "private-key", "restricted", 1, match_pem, NULL},
    {"aws-access-key", "cloud-keys", "restricted", 1, match_aws_key, NULL},
    {"aws-secret-key", "cloud-keys", "restricted", 1, match_aws_secret, NULL},
    {"google-api-key", "cloud-keys", "restricted", 1, match_google, NULL},
    {"github-token", "tokens", "restricted", 1, match_github, NULL},
    {"gitlab-token", "tokens", "restricted", 1, match_gitlab, NULL},
    {"slack-token", "tokens", "restricted", 1, match_slack, NULL},
    {"jwt", "tokens", "restricted", 1, match_jwt, NULL},
    {"secret-assignment", "tokens", "restricted", 1, match_secret_assign, NULL},
    {"email", "email", "confidential", 0, match_email, NULL},
    {"card", "card", "confidential", 0, match_card, NULL},
    {"iban", "iban", "confidential", 0, match_iban, NULL},
    {"us-ssn", "ssn", "confidential", 0, match_ssn, NULL},
    {"private-ipv4", "internal-ip", "internal", 0, match_ipv4, NULL},
};

#define N_DETECTORS BH_NELEM(detectors)

const struct det_detector *det_all(size_t *n)
{
    *n = N_DETECTORS;
    return detectors;
}

const struct det_detector *det_find(const char *id)
{
    for (size_t i = 0; id && i < N_DETECTORS; i++)
        if (strcmp(detectors[i].id, id) == 0)
            return &detectors[i];
    return NULL;
}

size_t det_group(const char *group, const struct det_detector **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; group && i < N_DETECTORS; i++) {
        if (strcmp(detectors[i].group, group) != 0)
            continue;
        if (n < cap)
            out[n] = &detectors[i];
        n++;
    }
    return n;
}

/* Group names once each, in table order, then every id: the names a
 * pipeline may use, for the message and the did-you-mean. */
static size_t known_names(const char **names, size_t *n_groups)
{
    size_t n = 0;
    for (size_t i = 0; i < N_DETECTORS; i++)
        if (i == 0 || strcmp(detectors[i].group, detectors[i - 1].group) != 0)
            names[n++] = detectors[i].group;
    *n_groups = n;
    for (size_t i = 0; i < N_DETECTORS; i++)
        names[n++] = detectors[i].id;
    return n;
}

int det_resolve(const char *name, const struct det_detector **out, size_t cap, size_t *n,
                struct bh_err *err)
{
    const struct det_detector *one = det_find(name);
    if (one) {
        if (cap > 0)
            out[0] = one;
        *n = 1;
        return 0;
    }
    *n = det_group(name, out, cap);
    if (*n > 0)
        return 0;
    const char *names[2 * N_DETECTORS];
    size_t n_groups = 0, n_names = known_names(names, &n_groups);
    char *groups = bh_str_join(names, n_groups);
    const char *hint = bh_str_suggest(name ? name : "", names, n_names);
    int rc = bh_err_set(err, BH_ENOTFOUND,
                        "unknown detector '%s' (known groups: %s; or a detector id such as "
                        "'aws-access-key')%s%s%s",
                        name ? name : "", groups, hint ? " — did you mean '" : "", hint ? hint : "",
                        hint ? "'?" : "");
    free(groups);
    return rc;
}

/* ---- the scan ---- */

struct pending {
    struct det_hit hit;
    size_t order; /* index of the detector in the enabled list */
};

static int pending_cmp(const void *a, const void *b)
{
    const struct pending *x = a, *y = b;
    if (x->hit.offset != y->hit.offset)
        return x->hit.offset < y->hit.offset ? -1 : 1;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return 0;
}

/* Runs one detector over the whole buffer, appending to *p. Returns 0, or
 * BH_ETOOBIG once the hits exceed max_hits. */
static int run_detector(const char *d, size_t len, const struct det_detector *det, size_t order,
                        struct pending **p, size_t *n, size_t *cap, size_t max_hits)
{
    struct det_span s = {0, 0};
    for (size_t from = 0; from < len && det->match(det->ctx, d, len, from, &s);) {
        if (s.offset < from || s.length == 0 || s.offset + s.length > len)
            return BH_EINTERNAL; /* a matcher broke its contract: no silent miss */
        if (*n == max_hits)
            return BH_ETOOBIG;
        *p = bh_xgrow(*p, cap, *n + 1, sizeof(**p));
        (*p)[(*n)++] = (struct pending){{det, s.offset, s.length, 0}, order};
        from = s.offset + s.length;
    }
    return 0;
}

/* Lines by one walk over the sorted hits: linear in len + hits. */
static void number_lines(const char *d, struct pending *p, size_t n)
{
    size_t pos = 0, line = 1;
    for (size_t i = 0; i < n; i++) {
        for (; pos < p[i].hit.offset; pos++)
            line += d[pos] == '\n';
        p[i].hit.line = line;
    }
}

int det_scan_opts(const char *data, size_t len, const struct det_opts *opts, struct det_hit **hits,
                  size_t *n_hits)
{
    size_t max_bytes = opts->max_bytes ? opts->max_bytes : DET_MAX_BYTES;
    size_t max_hits = opts->max_hits ? opts->max_hits : DEFAULT_MAX_HITS;
    size_t n_det = opts->enabled ? opts->n_enabled : N_DETECTORS;
    struct pending *p = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (len > max_bytes)
        return BH_ETOOBIG;
    for (size_t k = 0; k < n_det && rc == 0; k++) {
        const struct det_detector *det = opts->enabled ? opts->enabled[k] : &detectors[k];
        rc = run_detector(data, len, det, k, &p, &n, &cap, max_hits);
    }
    if (rc == 0 && n > 0) {
        qsort(p, n, sizeof(*p), pending_cmp);
        number_lines(data, p, n);
        *hits = bh_xmalloc(n * sizeof(**hits));
        for (size_t i = 0; i < n; i++)
            (*hits)[i] = p[i].hit;
    } else if (rc == 0) {
        *hits = NULL;
    }
    if (rc == 0)
        *n_hits = n;
    free(p);
    return rc;
}

int det_scan(const char *data, size_t len, const struct det_detector *const *enabled,
             size_t n_enabled, struct det_hit **hits, size_t *n_hits, size_t max_hits)
{
    struct det_opts o = DET_OPTS_INIT;
    o.enabled = enabled;
    o.n_enabled = n_enabled;
    o.max_hits = max_hits;
    return det_scan_opts(data, len, &o, hits, n_hits);
}

void det_hits_free(struct det_hit *hits)
{
    free(hits);
}
