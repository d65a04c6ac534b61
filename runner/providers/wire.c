/* providers/wire.c — the parts every dialect shares, so that a fix to UTF-8
 * checking, message cleaning, caps or tool-call assembly lands in all three.
 *
 * The accumulator (struct prov_acc) is the common reply under construction:
 * parsers push text, counts and call fragments into it as they arrive and
 * keep the first error (sticky: later ones are its consequences); at the end
 * prov_acc_end checks completeness and moves everything into the caller's
 * struct prov_reply. Caps fail at once (the caller can abort the transfer);
 * other errors wait for the HTTP status, as prov.h explains. */
#include "providers/wire.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bh_json.h"
#include "util/bh_utf8.h"
#include "util/bh_xmalloc.h"

#define LINE_SLACK ((size_t)64 << 10)

/* ---- text ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void prov_clean_into(char *out, size_t size, const char *p, size_t n)
{
    size_t o = 0;
    while (n && is_space(*p))
        p++, n--;
    while (n && is_space(p[n - 1]))
        n--;
    while (n) {
        int ok;
        size_t k = bh_utf8_seq(p, n, &ok);
        size_t w = ok ? k : 1;
        if (o + w + 4 > size && !(o + n < size)) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (ok && k == 1 && ((unsigned char)*p < 0x20 || *p == 0x7f))
            out[o] = ' ';
        else if (ok)
            memcpy(out + o, p, k);
        else
            out[o] = '?';
        o += w, p += w, n -= w;
    }
    out[o] = '\0';
}

char *prov_clean_dup(const char *p, size_t n)
{
    char buf[PROV_TEXT_MAX + 4];
    prov_clean_into(buf, sizeof(buf), p, n);
    return bh_xstrdup(buf);
}

size_t prov_wire_cap(size_t max)
{
    if (max > (SIZE_MAX / 2 - LINE_SLACK) / 6)
        return SIZE_MAX / 2;
    return max * 6 + LINE_SLACK;
}

/* ---- request ---- */

static int oom(struct bh_err *err)
{
    return bh_err_set(err, BH_EINTERNAL, "cannot build the request body (out of memory)");
}

int prov_json_set(json_t *obj, const char *key, json_t *v, struct bh_err *err)
{
    return bh_json_set(obj, key, v, NULL) ? oom(err) : 0;
}

int prov_json_push(json_t *arr, json_t *v, struct bh_err *err)
{
    return bh_json_push(arr, v, NULL) ? oom(err) : 0;
}

int prov_utf8_check(const char *s, const char *what, struct bh_err *err)
{
    size_t n = strlen(s), bad = bh_utf8_invalid_at(s, n);
    if (bad < n)
        return bh_err_set(err, BH_EINVAL,
                          "%s is not valid UTF-8 (byte %zu) — leave binary "
                          "data out of prompts or encode it first",
                          what, bad);
    return 0;
}

int prov_json_str(json_t *obj, const char *key, const char *s, const char *what, struct bh_err *err)
{
    int rc = prov_utf8_check(s, what, err);
    return rc ? rc : prov_json_set(obj, key, json_string_nocheck(s), err);
}

static const char *type_name(json_type t)
{
    return t == JSON_OBJECT ? "a JSON object" : t == JSON_ARRAY ? "a JSON array" : "JSON";
}

int prov_json_parse(const char *text, const char *what, json_type want, json_t **out,
                    struct bh_err *err)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        char why[96];
        prov_clean_into(why, sizeof(why), je.text, strlen(je.text));
        return bh_err_set(err, BH_EINVAL, "%s is not valid JSON (column %d: %s) — it must be %s",
                          what, je.column, why, type_name(want));
    }
    if (json_typeof(v) != want) {
        json_decref(v);
        return bh_err_set(err, BH_EINVAL, "%s must be %s", what, type_name(want));
    }
    *out = v;
    return 0;
}

int prov_body_build(const prov_part_fn *parts, size_t n, const struct prov_chat *c, char **body,
                    size_t *len, struct bh_err *err)
{
    json_t *root = json_object();
    struct bh_buf b;
    int rc = 0;
    bh_buf_init(&b, PROV_BODY_MAX);
    if (!root)
        return oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = parts[i](root, c, err);
    if (rc == 0 && bh_json_dump_buf(&b, root, JSON_COMPACT))
        rc = bh_err_set(err, BH_ETOOBIG, "the request body exceeds %zu bytes — shorten the prompt",
                        (size_t)PROV_BODY_MAX);
    if (rc == 0) {
        *len = b.len;
        *body = bh_buf_detach(&b);
    }
    bh_buf_release(&b);
    json_decref(root);
    return rc;
}

int prov_part_model(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    if (!c->model || !c->model[0])
        return bh_err_set(err, BH_EINVAL, "no model name given — set the stage's 'model'");
    return prov_json_str(root, "model", c->model, "the model name", err);
}

static int tool_ok(json_t *t)
{
    json_t *f = json_object_get(t, "function");
    return json_is_object(t) && json_is_string(json_object_get(t, "type")) &&
           strcmp(json_string_value(json_object_get(t, "type")), "function") == 0 &&
           json_is_object(f) && json_is_string(json_object_get(f, "name")) &&
           json_string_length(json_object_get(f, "name")) > 0;
}

int prov_tools_parse(const struct prov_chat *c, json_t **out, struct bh_err *err)
{
    json_t *arr = NULL;
    *out = NULL;
    if (!c->tools_json)
        return 0;
    int rc = prov_json_parse(c->tools_json, "the tools", JSON_ARRAY, &arr, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (tool_ok(json_array_get(arr, i)))
            continue;
        json_decref(arr);
        return bh_err_set(err, BH_EINVAL,
                          "tool %zu is not {\"type\":\"function\",\"function\":{\"name\":..., "
                          "\"description\":..., \"parameters\":{...}}} — fix the tool list",
                          i + 1);
    }
    *out = arr;
    return 0;
}

int prov_options_parse(const struct prov_chat *c, json_t **out, struct bh_err *err)
{
    *out = NULL;
    if (!c->options_json)
        return 0;
    return prov_json_parse(c->options_json, "the options", JSON_OBJECT, out, err);
}

int prov_option_copy(json_t *root, const char *to, json_t *opts, const char *from, unsigned types,
                     struct bh_err *err)
{
    json_t *v = json_object_get(opts, from);
    if (!v)
        return 0;
    if (!(types & (1u << json_typeof(v))))
        return bh_err_set(err, BH_EINVAL, "option '%s' has the wrong type for this provider", from);
    return prov_json_set(root, to, json_deep_copy(v), err);
}

int prov_format_is_json(const char *format_json)
{
    return format_json &&
           (strcmp(format_json, "json") == 0 || strcmp(format_json, "\"json\"") == 0);
}

const char *prov_msg_what(char *buf, size_t size, const char *field, size_t i)
{
    snprintf(buf, size, "the %s of message %zu", field, i + 1);
    return buf;
}

/* ---- reply ---- */

void prov_acc_init(struct prov_acc *a, const char *dialect, size_t max)
{
    memset(a, 0, sizeof(*a));
    a->dialect = dialect;
    a->max = max ? max : BH_BUF_DEFAULT_MAX;
    bh_buf_init(&a->content, a->max);
    bh_buf_init(&a->thinking, a->max);
}

static void pcall_release(struct prov_pcall *c)
{
    free(c->id);
    free(c->name);
    bh_buf_release(&c->args);
}

void prov_acc_release(struct prov_acc *a)
{
    bh_buf_release(&a->content);
    bh_buf_release(&a->thinking);
    prov_reply_release(&a->r);
    for (size_t i = 0; i < a->n_calls; i++)
        pcall_release(&a->calls[i]);
    free(a->calls);
    a->calls = NULL;
    a->n_calls = a->cap_calls = 0;
}

int prov_acc_keep(struct prov_acc *a, int code, const char *fmt, ...)
{
    if (a->err.code)
        return a->err.code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err.msg, sizeof(a->err.msg), fmt, ap);
    va_end(ap);
    a->err.code = code;
    return code;
}

int prov_acc_copy_err(const struct prov_acc *a, struct bh_err *err)
{
    return bh_err_set(err, a->err.code, "%s", a->err.msg);
}

void prov_acc_head(struct prov_acc *a, const char *data, size_t len)
{
    size_t n = sizeof(a->head) - a->head_len;
    if (n > len)
        n = len;
    memcpy(a->head + a->head_len, data, n);
    a->head_len += n;
}

int prov_acc_text(struct prov_acc *a, int thinking, json_t *v, const char *field, const char *where)
{
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return prov_acc_keep(a, BH_EREPLY,
                             "'%s' %s of the reply is not a string — check that the endpoint "
                             "speaks the '%s' API",
                             field, where, a->dialect);
    /* Parsed with JSON_ALLOW_NUL so this says what is wrong; a NUL cannot live
     * in the C string the reply becomes, and dropping it would be silent. */
    if (memchr(json_string_value(v), '\0', json_string_length(v)))
        return prov_acc_keep(a, BH_EREPLY,
                             "the reply holds a NUL character (\\u0000) %s — bulkhead "
                             "keeps replies as text",
                             where);
    if (bh_buf_append(thinking ? &a->thinking : &a->content, json_string_value(v),
                      json_string_length(v)))
        return prov_acc_keep(a, BH_ETOOBIG,
                             "the reply%s exceeds %zu bytes — ask the model for a shorter "
                             "answer (or it may be looping)",
                             thinking ? "'s thinking" : "", a->max);
    return 0;
}

void prov_acc_str(char **dst, json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return;
    free(*dst);
    *dst = prov_clean_dup(json_string_value(v), json_string_length(v));
}

void prov_acc_count(int64_t *dst, json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        *dst = (int64_t)json_integer_value(v);
}

static void kind_into(char *out, size_t size, json_t *v)
{
    if (json_is_string(v))
        prov_clean_into(out, size, json_string_value(v), json_string_length(v));
}

int prov_acc_server_error(struct prov_acc *a, json_t *o)
{
    json_t *e = json_object_get(o, "error");
    if (!e || json_is_null(e))
        return 0;
    if (json_is_object(e)) {
        kind_into(a->etype, sizeof(a->etype), json_object_get(e, "type"));
        kind_into(a->ecode, sizeof(a->ecode), json_object_get(e, "code"));
        if (json_is_string(json_object_get(e, "message")))
            e = json_object_get(e, "message");
    }
    free(a->r.error);
    if (json_is_string(e)) {
        a->r.error = prov_clean_dup(json_string_value(e), json_string_length(e));
    } else {
        char *d = bh_json_dump(e, JSON_COMPACT | JSON_ENCODE_ANY);
        a->r.error = prov_clean_dup(d ? d : "", d ? strlen(d) : 0);
        free(d);
    }
    return 1;
}

struct prov_pcall *prov_acc_call(struct prov_acc *a, long index, int fresh)
{
    for (size_t i = a->n_calls; !fresh && i-- > 0;)
        if (a->calls[i].index == index)
            return &a->calls[i];
    if (a->n_calls >= PROV_CALLS_MAX) {
        prov_acc_keep(a, BH_ETOOBIG,
                      "the reply has more than %d tool calls — the model may be looping",
                      PROV_CALLS_MAX);
        return NULL;
    }
    a->calls = bh_xgrow(a->calls, &a->cap_calls, a->n_calls + 1, sizeof(*a->calls));
    struct prov_pcall *c = &a->calls[a->n_calls++];
    memset(c, 0, sizeof(*c));
    c->index = index;
    bh_buf_init(&c->args, a->max);
    return c;
}

int prov_acc_call_args(struct prov_acc *a, struct prov_pcall *c, const char *p, size_t n)
{
    if (bh_buf_append(&c->args, p, n))
        return prov_acc_keep(a, BH_ETOOBIG,
                             "the arguments of tool call '%s' exceed %zu bytes — the model "
                             "may be looping",
                             c->name ? c->name : "?", a->max);
    return 0;
}

int prov_acc_call_close(struct prov_acc *a, struct prov_pcall *c)
{
    json_error_t je;
    const char *name = c->name ? c->name : "(unnamed)";
    if (c->closed)
        return 0;
    size_t n = c->args.len, i = 0;
    while (i < n && is_space(c->args.data[i]))
        i++;
    json_t *v = i == n ? json_object() : json_loadb(c->args.data, n, 0, &je);
    if (!json_is_object(v)) {
        /* The model wrote a malformed call: kept and flagged (arguments
         * NULL in the reply), so the agent loop can tell the model instead of
         * losing the whole reply. */
        json_decref(v);
        v = json_object();
        c->malformed = 1;
    }
    char *text = bh_json_dump(v, JSON_COMPACT);
    json_decref(v);
    bh_buf_reset(&c->args);
    int rc = text && !bh_buf_puts(&c->args, text) ? 0 : -1;
    free(text);
    if (rc)
        return prov_acc_keep(a, BH_ETOOBIG, "the arguments of tool call '%s' exceed %zu bytes",
                             name, a->max);
    c->closed = 1;
    return 0;
}

void prov_acc_http_text(const struct prov_acc *a, char *text, size_t size)
{
    if (a->r.error)
        snprintf(text, size, "%s", a->r.error);
    else
        prov_clean_into(text, size, a->head, a->head_len);
    if (!text[0])
        snprintf(text, size, "(empty body)");
}

static int kind_is(const struct prov_acc *a, const char *kind)
{
    return !kind || strcmp(a->etype, kind) == 0 || strcmp(a->ecode, kind) == 0;
}

/* Statuses that describe the server's state, not the request: waiting can
 * change them. A 500 is the server failing on this very request (a template
 * it cannot render, a malformed body, a crash on this input): the same bytes
 * fail the same way, so it is not retried. */
static int transient_status(long status)
{
    return status == 408 || status == 429 || status == 502 || status == 503 || status == 504 ||
           status == 529;
}

int prov_acc_http_error(const struct prov_acc *a, long status, const struct prov_http_rule *rules,
                        size_t n, struct prov_reply *r, struct bh_err *err)
{
    char text[PROV_TEXT_MAX + 4];
    prov_acc_http_text(a, text, sizeof(text));
    free(r->error);
    r->error = bh_xstrdup(text);
    /* A spent quota answers 429 too, and waiting does not refill it. */
    r->transient = transient_status(status) && !kind_is(a, "insufficient_quota") &&
                   !kind_is(a, "enforced_spend_limit_reached");
    for (size_t i = 0; i < n; i++)
        if ((rules[i].status == 0 || rules[i].status == status) && kind_is(a, rules[i].kind))
            return bh_err_set(err, BH_EREPLY, "%s (%ld): %s%s", rules[i].what, status, text,
                              rules[i].hint);
    return bh_err_set(err, BH_EREPLY, "HTTP %ld: %s", status, text);
}

/* Moves the assembled calls into r. */
static void move_calls(struct prov_acc *a, struct prov_reply *r)
{
    if (!a->n_calls)
        return;
    r->tool_calls = bh_xcalloc(a->n_calls, sizeof(*r->tool_calls));
    for (size_t i = 0; i < a->n_calls; i++) {
        struct prov_pcall *c = &a->calls[i];
        r->tool_calls[i].id = c->id;
        r->tool_calls[i].name = c->name ? c->name : bh_xstrdup("");
        /* NULL for a malformed call: the sign, and read as "{}" when sent back */
        r->tool_calls[i].arguments_json = c->malformed ? NULL : bh_buf_detach(&c->args);
        c->id = c->name = NULL;
    }
    r->n_tool_calls = a->n_calls;
}

int prov_acc_end(struct prov_acc *a, const char *final, struct prov_reply *r, struct bh_err *err)
{
    memset(r, 0, sizeof(*r));
    int cut = !a->err.code && !a->r.done;
    if (cut)
        prov_acc_keep(a, BH_EREPLY,
                      "the reply ended before %s (connection cut?) — retry; if it keeps "
                      "happening, check the server's log",
                      final);
    for (size_t i = 0; !a->err.code && i < a->n_calls; i++)
        prov_acc_call_close(a, &a->calls[i]);
    if (a->err.code) {
        r->error = a->r.error;
        a->r.error = NULL;
        r->transient = cut || a->r.transient;
        return prov_acc_copy_err(a, err);
    }
    *r = a->r;
    memset(&a->r, 0, sizeof(a->r));
    r->content = bh_buf_detach(&a->content);
    r->thinking = a->thinking.len ? bh_buf_detach(&a->thinking) : NULL;
    move_calls(a, r);
    return 0;
}

/* ---- framing ---- */

void prov_body_init(struct prov_body *b, size_t max)
{
    size_t event_max = prov_wire_cap(max ? max : BH_BUF_DEFAULT_MAX);
    memset(b, 0, sizeof(*b));
    b->sse = prov_sse_new(event_max, event_max > SIZE_MAX / 64 ? SIZE_MAX : event_max * 64);
    bh_buf_init(&b->whole, event_max);
}

void prov_body_release(struct prov_body *b)
{
    prov_sse_free(b->sse);
    bh_buf_release(&b->whole);
    memset(b, 0, sizeof(*b));
}

int prov_body_feed(struct prov_body *b, struct prov_acc *a, const char *data, size_t len,
                   prov_sse_fn fn, void *ud, struct bh_err *err)
{
    if (a->err.code == BH_ETOOBIG)
        return prov_acc_copy_err(a, err);
    prov_acc_head(a, data, len);
    if (b->framing == PROV_UNDECIDED) {
        while (len && is_space(*data))
            data++, len--;
        if (!len)
            return 0;
        b->framing = strchr("de:ir", *data) ? PROV_SSE : PROV_WHOLE;
    }
    if (b->framing == PROV_WHOLE) {
        if (!bh_buf_append(&b->whole, data, len))
            return 0;
        prov_acc_keep(a, BH_ETOOBIG,
                      "the reply exceeds %zu bytes — check that the endpoint speaks the '%s' "
                      "API",
                      b->whole.max, a->dialect);
        return prov_acc_copy_err(a, err);
    }
    struct bh_err e = {0};
    int rc = prov_sse_feed(b->sse, data, len, fn, ud, &e);
    if (rc) {
        prov_acc_keep(a, rc, "%s", e.msg);
        return prov_acc_copy_err(a, err);
    }
    return 0;
}

void prov_body_end(struct prov_body *b, struct prov_acc *a, prov_sse_fn fn, void *ud)
{
    struct bh_err e = {0};
    int cut = 0;
    if (b->framing == PROV_SSE && !a->err.code && prov_sse_finish(b->sse, fn, ud, &cut, &e))
        prov_acc_keep(a, e.code, "%s", e.msg);
}
