/* providers/ollama.c — the Ollama native dialect: POST /api/chat.
 *
 * Request: a jansson object built part by part from a table of body_part
 * functions and dumped compact into a capped buffer; options, keep_alive or
 * format are one more function and one more row.
 *
 * Reply: NDJSON (stream:true), a single object (stream:false) and an error
 * object behind a non-2xx status all go through one line parser: bytes are
 * split on '\n', each complete line is one JSON object, and a last line
 * without its '\n' is parsed at finish. The parser does not know the HTTP
 * status while it is fed, so errors whose meaning depends on it (invalid
 * JSON, {"error":...}) are kept and decided at finish; only caps fail a feed,
 * so the caller can stop a runaway transfer early.
 *
 * Every text from the server that reaches a message is cleaned of control
 * characters and capped: a hostile server can neither flood the message nor
 * drive the user's terminal. */
#include "providers/prov.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

/* A JSON-escaped string can be 6 times its decoded size (Go's encoder sends
 * "<" as "\u003c"), plus the envelope of one chunk. */
#define LINE_SLACK ((size_t)64 << 10)
#define BODY_MAX ((size_t)256 << 20) /* request body; prompts are capped lower upstream */
#define TEXT_MAX 160                 /* server text quoted in a message */
#define HEAD_MAX 256                 /* body bytes kept for non-JSON error pages */

struct prov_stream {
    struct bh_buf line;    /* the partial line carried between feeds */
    struct bh_buf content; /* message.content of every chunk, concatenated */
    struct prov_reply acc; /* everything but content, as it arrives */
    size_t max;
    size_t lineno;       /* lines seen so far, empty ones included */
    char head[HEAD_MAX]; /* the first body bytes, for error pages that are not JSON */
    size_t head_len;
    int rc; /* the first error; sticky, later ones are its consequences */
    struct bh_err err;
};

/* ---- text helpers ---- */

/* Length of the valid UTF-8 character at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_char(const unsigned char *p, size_t n)
{
    unsigned c = p[0], cp, min;
    size_t k;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        k = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        k = 2, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n <= k)
        return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((p[j] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k + 1;
}

/* Offset of the first byte that is not valid UTF-8, or n. */
static size_t utf8_bad(const char *s, size_t n)
{
    size_t i = 0, k;
    while (i < n && (k = utf8_char((const unsigned char *)s + i, n - i)) != 0)
        i += k;
    return i;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copies server text into out for a message: trimmed, control characters
 * become spaces, bytes that are not UTF-8 become '?', and a text too long is
 * cut at a character boundary and ends in "...". */
static void clean_into(char *out, size_t size, const char *p, size_t n)
{
    size_t o = 0;
    while (n && is_space(*p))
        p++, n--;
    while (n && is_space(p[n - 1]))
        n--;
    while (n) {
        size_t k = utf8_char((const unsigned char *)p, n);
        size_t w = k ? k : 1;
        if (o + w + 4 > size && !(o + n < size)) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (k == 1 && ((unsigned char)*p < 0x20 || *p == 0x7f))
            out[o] = ' ';
        else if (k)
            memcpy(out + o, p, k);
        else
            out[o] = '?';
        o += w, p += w, n -= w;
    }
    out[o] = '\0';
}

static char *clean_dup(const char *p, size_t n)
{
    char buf[TEXT_MAX + 4];
    clean_into(buf, sizeof(buf), p, n);
    return bh_xstrdup(buf);
}

/* ---- request ---- */

static int set_or_oom(json_t *obj, const char *key, json_t *v, struct bh_err *err)
{
    if (json_object_set_new(obj, key, v))
        return bh_err_set(err, BH_EINTERNAL, "cannot build the request body (out of memory)");
    return 0;
}

static int put_string(json_t *obj, const char *key, const char *s, const char *what,
                      struct bh_err *err)
{
    size_t n = strlen(s), bad = utf8_bad(s, n);
    if (bad < n)
        return bh_err_set(err, BH_EINVAL,
                          "%s is not valid UTF-8 (byte %zu) — leave binary "
                          "data out of prompts or encode it first",
                          what, bad);
    return set_or_oom(obj, key, json_stringn(s, n), err);
}

/* One part of the request body. */
typedef int (*body_part_fn)(json_t *root, const struct prov_chat *c, struct bh_err *err);

static int put_model(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    if (!c->model || !c->model[0])
        return bh_err_set(err, BH_EINVAL, "no model name given — set the stage's 'model'");
    return put_string(root, "model", c->model, "the model name", err);
}

static int put_messages(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *arr = json_array();
    int rc = set_or_oom(root, "messages", arr, err);
    for (size_t i = 0; rc == 0 && i < c->n_msgs; i++) {
        const struct prov_msg *m = &c->msgs[i];
        json_t *o = json_object();
        char what[64];
        if (json_array_append_new(arr, o))
            return bh_err_set(err, BH_EINTERNAL, "cannot build the request body (out of memory)");
        snprintf(what, sizeof(what), "the role of message %zu", i + 1);
        rc = put_string(o, "role", m->role, what, err);
        snprintf(what, sizeof(what), "the content of message %zu", i + 1);
        if (rc == 0)
            rc = put_string(o, "content", m->content, what, err);
    }
    return rc;
}

static int put_stream(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    return set_or_oom(root, "stream", json_boolean(c->stream), err);
}

static const body_part_fn body_parts[] = {put_model, put_messages, put_stream};

static int dump_to_buf(const char *buf, size_t size, void *data)
{
    return bh_buf_append(data, buf, size) ? -1 : 0;
}

static int chat_body(const struct prov_chat *c, char **body, size_t *len, struct bh_err *err)
{
    json_t *root = json_object();
    struct bh_buf b;
    int rc = 0;
    bh_buf_init(&b, BODY_MAX);
    if (!root)
        return bh_err_set(err, BH_EINTERNAL, "cannot build the request body (out of memory)");
    for (size_t i = 0; rc == 0 && i < sizeof(body_parts) / sizeof(body_parts[0]); i++)
        rc = body_parts[i](root, c, err);
    if (rc == 0 && json_dump_callback(root, dump_to_buf, &b, JSON_COMPACT))
        rc = bh_err_set(err, BH_ETOOBIG, "the request body exceeds %zu bytes — shorten the prompt",
                        (size_t)BODY_MAX);
    if (rc == 0) {
        *len = b.len;
        *body = bh_buf_detach(&b);
    }
    bh_buf_release(&b);
    json_decref(root);
    return rc;
}

/* ---- reply ---- */

static size_t line_cap(size_t max)
{
    if (max > (SIZE_MAX / 2 - LINE_SLACK) / 6)
        return SIZE_MAX / 2;
    return max * 6 + LINE_SLACK;
}

static struct prov_stream *stream_new(size_t max)
{
    struct prov_stream *s = bh_xcalloc(1, sizeof(*s));
    s->max = max ? max : BH_BUF_DEFAULT_MAX;
    bh_buf_init(&s->content, s->max);
    bh_buf_init(&s->line, line_cap(s->max));
    return s;
}

static void stream_free(struct prov_stream *s)
{
    if (!s)
        return;
    bh_buf_release(&s->line);
    bh_buf_release(&s->content);
    prov_reply_release(&s->acc);
    free(s);
}

/* Records the first error of the stream; returns its code. */
static int keep(struct prov_stream *s, int code, const char *fmt, ...) BH_PRINTF(3, 4);
static int keep(struct prov_stream *s, int code, const char *fmt, ...)
{
    if (s->rc)
        return s->rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err.msg, sizeof(s->err.msg), fmt, ap);
    va_end(ap);
    s->err.code = s->rc = code;
    return code;
}

static int copy_err(const struct prov_stream *s, struct bh_err *err)
{
    return bh_err_set(err, s->rc, "%s", s->err.msg);
}

/* {"error": "..."}: on a 200 stream the server failed after it began; behind
 * a non-2xx status it is the reason for the status (decided at finish). */
static int take_error(struct prov_stream *s, json_t *o)
{
    json_t *e = json_object_get(o, "error");
    if (!e || json_is_null(e))
        return 0;
    if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
        e = json_object_get(e, "message");
    if (json_is_string(e)) {
        s->acc.error = clean_dup(json_string_value(e), json_string_length(e));
    } else {
        char *d = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
        s->acc.error = clean_dup(d ? d : "", d ? strlen(d) : 0);
        free(d);
    }
    return keep(s, BH_EREPLY, "the server reported an error mid-stream: %s", s->acc.error);
}

static int take_content(struct prov_stream *s, json_t *o)
{
    json_t *m = json_object_get(o, "message");
    if (!m || json_is_null(m))
        return 0;
    if (!json_is_object(m))
        return keep(s, BH_EREPLY,
                    "'message' at line %zu of the reply is not an object — "
                    "check that the endpoint speaks the 'ollama' API",
                    s->lineno);
    json_t *c = json_object_get(m, "content");
    if (!c || json_is_null(c))
        return 0;
    if (!json_is_string(c))
        return keep(s, BH_EREPLY,
                    "'message.content' at line %zu of the reply is not a string "
                    "— check that the endpoint speaks the 'ollama' API",
                    s->lineno);
    /* Parsed with JSON_ALLOW_NUL so this says what is wrong; a NUL cannot live
     * in the C string the reply becomes, and dropping it would be silent. */
    if (memchr(json_string_value(c), '\0', json_string_length(c)))
        return keep(s, BH_EREPLY,
                    "the reply holds a NUL character (\\u0000) at line %zu — "
                    "bulkhead keeps replies as text",
                    s->lineno);
    if (bh_buf_append(&s->content, json_string_value(c), json_string_length(c)))
        return keep(s, BH_ETOOBIG,
                    "the reply exceeds %zu bytes — ask the model for a shorter "
                    "answer (or it may be looping)",
                    s->max);
    return 0;
}

static const struct metric {
    const char *key;
    size_t off;
} metrics[] = {
    {"prompt_eval_count", offsetof(struct prov_reply, prompt_tokens)},
    {"eval_count", offsetof(struct prov_reply, output_tokens)},
    {"load_duration", offsetof(struct prov_reply, load_ns)},
    {"total_duration", offsetof(struct prov_reply, total_ns)},
};

/* remote_host on any chunk, and the final chunk's reason and metrics. Ollama
 * leaves out every metric that is 0, so absent means 0. */
static void take_final(struct prov_stream *s, json_t *o)
{
    json_t *h = json_object_get(o, "remote_host");
    if (json_is_string(h) && json_string_length(h) && !s->acc.remote_host)
        s->acc.remote_host = clean_dup(json_string_value(h), json_string_length(h));
    if (!json_is_true(json_object_get(o, "done")))
        return;
    s->acc.done = 1;
    json_t *why = json_object_get(o, "done_reason");
    if (json_is_string(why)) {
        free(s->acc.done_reason);
        s->acc.done_reason = clean_dup(json_string_value(why), json_string_length(why));
    }
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
        json_t *v = json_object_get(o, metrics[i].key);
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
        *(int64_t *)(void *)((char *)&s->acc + metrics[i].off) = n > 0 ? (int64_t)n : 0;
    }
}

/* last: the line had no '\n' (the end of the body). */
static void parse_line(struct prov_stream *s, const char *p, size_t n, int last)
{
    json_error_t je;
    while (n && is_space(p[n - 1]))
        n--;
    if (n == 0)
        return; /* blank lines carry nothing; tolerate them */
    json_t *o = json_loadb(p, n, JSON_ALLOW_NUL, &je);
    if (!o && last && json_error_code(&je) == json_error_premature_end_of_input) {
        keep(s, BH_EREPLY,
             "the reply ended in the middle of line %zu (connection cut?) — "
             "retry; if it keeps happening, check the server's log",
             s->lineno);
        return;
    }
    if (!o) {
        char why[96];
        clean_into(why, sizeof(why), je.text, strlen(je.text));
        keep(s, BH_EREPLY,
             "invalid JSON in the reply at line %zu, column %d: %s — check that "
             "the endpoint speaks the 'ollama' API",
             s->lineno, je.column, why);
        return;
    }
    if (!json_is_object(o))
        keep(s, BH_EREPLY,
             "line %zu of the reply is not a JSON object — check that the "
             "endpoint speaks the 'ollama' API",
             s->lineno);
    else if (!take_error(s, o) && !take_content(s, o))
        take_final(s, o);
    json_decref(o);
}

static void keep_head(struct prov_stream *s, const char *data, size_t len)
{
    size_t n = sizeof(s->head) - s->head_len;
    if (n > len)
        n = len;
    memcpy(s->head + s->head_len, data, n);
    s->head_len += n;
}

static int stream_feed(struct prov_stream *s, const char *data, size_t len, struct bh_err *err)
{
    keep_head(s, data, len);
    while (len && !s->rc) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        if (bh_buf_append(&s->line, data, n)) {
            keep(s, BH_ETOOBIG,
                 "a line of the reply exceeds %zu bytes — check that the "
                 "endpoint speaks the 'ollama' API",
                 s->line.max);
            break;
        }
        if (!nl)
            break;
        s->lineno++;
        parse_line(s, s->line.data, s->line.len, 0);
        bh_buf_reset(&s->line);
        data += n + 1;
        len -= n + 1;
    }
    return s->rc == BH_ETOOBIG ? copy_err(s, err) : 0;
}

static const struct http_rule {
    long status;
    const char *what;
    const char *hint;
} http_rules[] = {
    {400, "the server rejected the request", ""},
    {401, "not authorized", " — check the endpoint's api_key_env"},
    {403, "not authorized", " — check the endpoint's api_key_env"},
    {429, "rate limited", " — lower max_concurrency or retry later"},
    {500, "the server failed", " — the server's log has the details"},
    {503, "server busy", " — lower max_concurrency or retry later"},
};

/* The model name in "model 'x' not found" or "model \"x\" not found, ...",
 * only when it looks like a model name (it is printed as a command). */
static int quoted_model(const char *text, char *out, size_t size)
{
    const char *p = strstr(text, "model ");
    if (!p || (p[6] != '\'' && p[6] != '"'))
        return 0;
    const char *b = p + 7, *e = strchr(b, p[6]);
    if (!e || e == b || (size_t)(e - b) >= size)
        return 0;
    for (const char *q = b; q < e; q++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-", *q))
            return 0;
    memcpy(out, b, (size_t)(e - b));
    out[e - b] = '\0';
    return 1;
}

static int not_found(const char *text, struct bh_err *err)
{
    char model[128];
    if (!strstr(text, "not found") || !strstr(text, "model"))
        return bh_err_set(err, BH_EREPLY,
                          "HTTP 404: %s — check the endpoint's url: it is the "
                          "server's base URL, bulkhead appends /api/chat",
                          text);
    if (quoted_model(text, model, sizeof(model)))
        return bh_err_set(err, BH_EREPLY,
                          "model not found (server said: %s) — run \"ollama "
                          "pull %s\" on that machine",
                          text, model);
    return bh_err_set(err, BH_EREPLY,
                      "model not found (server said: %s) — run \"ollama pull "
                      "<model>\" on that machine",
                      text);
}

static int http_error(struct prov_stream *s, long status, struct prov_reply *r, struct bh_err *err)
{
    char text[TEXT_MAX + 4];
    if (s->acc.error)
        snprintf(text, sizeof(text), "%s", s->acc.error);
    else
        clean_into(text, sizeof(text), s->head, s->head_len);
    if (!text[0])
        snprintf(text, sizeof(text), "(empty body)");
    r->error = bh_xstrdup(text);
    if (status == 404)
        return not_found(text, err);
    for (size_t i = 0; i < sizeof(http_rules) / sizeof(http_rules[0]); i++)
        if (http_rules[i].status == status)
            return bh_err_set(err, BH_EREPLY, "%s (%ld): %s%s", http_rules[i].what, status, text,
                              http_rules[i].hint);
    return bh_err_set(err, BH_EREPLY, "HTTP %ld: %s", status, text);
}

static int stream_finish(struct prov_stream *s, long status, struct prov_reply *r,
                         struct bh_err *err)
{
    memset(r, 0, sizeof(*r));
    if (s->line.len && !s->rc) {
        s->lineno++;
        parse_line(s, s->line.data, s->line.len, 1);
        bh_buf_reset(&s->line);
    }
    if (status < 200 || status > 299)
        return http_error(s, status, r, err);
    if (s->rc) {
        r->error = s->acc.error;
        s->acc.error = NULL;
        return copy_err(s, err);
    }
    if (!s->acc.done)
        return bh_err_set(err, BH_EREPLY,
                          "the reply ended before its final chunk (connection "
                          "cut?) — retry; if it keeps happening, check the server's log");
    *r = s->acc;
    memset(&s->acc, 0, sizeof(s->acc));
    r->content = bh_buf_detach(&s->content);
    return 0;
}

const struct prov_ops prov_ollama = {
    .name = "ollama",
    .chat_path = "/api/chat",
    .chat_body = chat_body,
    .stream_new = stream_new,
    .stream_feed = stream_feed,
    .stream_finish = stream_finish,
    .stream_free = stream_free,
};
