/* providers/ollama.c — the Ollama native dialect: POST /api/chat.
 *
 * Request: a jansson object built part by part from a table of body_part
 * functions and dumped compact into a capped buffer; options, keep_alive,
 * format, think, truncate and tools are one function and one row each, and
 * a part whose field is unset adds nothing (a plain request stays
 * {"model","messages","stream"}).
 *
 * Reply: NDJSON (stream:true), a single object (stream:false) and an error
 * object behind a non-2xx status all go through one line parser: bytes are
 * split on '\n', each complete line is one JSON object, and a last line
 * without its '\n' is parsed at finish. The parser does not know the HTTP
 * status while it is fed, so errors whose meaning depends on it (invalid
 * JSON, {"error":...}) are kept and decided at finish; only caps fail a feed,
 * so the caller can stop a runaway transfer early. Tool calls arrive whole
 * (arguments as an object), one call per entry, so each is a new call.
 *
 * Every text from the server that reaches a message is cleaned of control
 * characters and capped (wire.c): a hostile server can neither flood the
 * message nor drive the user's terminal. */
#include "providers/prov.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/wire.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

struct prov_stream {
    struct bh_buf line; /* the partial line carried between feeds */
    struct prov_acc a;  /* the reply as it arrives */
    size_t lineno;      /* lines seen so far, empty ones included */
};

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- request ---- */

/* {"id"?, "function":{"name","arguments":{...}}}: arguments as an object. */
static int put_call(json_t *arr, const struct prov_tool_call *tc, size_t i, size_t k,
                    struct bh_err *err)
{
    char what[96];
    json_t *o = json_object(), *f = json_object(), *args = NULL;
    int rc = prov_json_push(arr, o, err);
    if (rc == 0)
        rc = prov_json_set(o, "function", f, err);
    else
        json_decref(f);
    snprintf(what, sizeof(what), "the id of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0 && tc->id)
        rc = prov_json_str(o, "id", tc->id, what, err);
    snprintf(what, sizeof(what), "the name of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0)
        rc = prov_json_str(f, "name", tc->name ? tc->name : "", what, err);
    snprintf(what, sizeof(what), "the arguments of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0)
        rc = prov_json_parse(tc->arguments_json ? tc->arguments_json : "{}", what, JSON_OBJECT,
                             &args, err);
    if (rc == 0)
        rc = prov_json_set(f, "arguments", args, err);
    return rc;
}

static int put_message(json_t *arr, const struct prov_msg *m, size_t i, struct bh_err *err)
{
    char what[64];
    json_t *o = json_object();
    int rc = prov_json_push(arr, o, err);
    if (rc == 0)
        rc = prov_json_str(o, "role", m->role ? m->role : "",
                           prov_msg_what(what, sizeof(what), "role", i), err);
    if (rc == 0)
        rc = prov_json_str(o, "content", m->content ? m->content : "",
                           prov_msg_what(what, sizeof(what), "content", i), err);
    if (rc == 0 && m->tool_name)
        rc = prov_json_str(o, "tool_name", m->tool_name,
                           prov_msg_what(what, sizeof(what), "tool_name", i), err);
    if (rc == 0 && m->tool_call_id)
        rc = prov_json_str(o, "tool_call_id", m->tool_call_id,
                           prov_msg_what(what, sizeof(what), "tool_call_id", i), err);
    if (rc == 0 && m->n_tool_calls) {
        json_t *calls = json_array();
        rc = prov_json_set(o, "tool_calls", calls, err);
        for (size_t k = 0; rc == 0 && k < m->n_tool_calls; k++)
            rc = put_call(calls, &m->tool_calls[k], i, k, err);
    }
    return rc;
}

static int put_messages(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *arr = json_array();
    int rc = prov_json_set(root, "messages", arr, err);
    for (size_t i = 0; rc == 0 && i < c->n_msgs; i++)
        rc = put_message(arr, &c->msgs[i], i, err);
    return rc;
}

static int put_stream(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    return prov_json_set(root, "stream", json_boolean(c->stream), err);
}

/* key = n in opts (made when NULL) unless opts has key already. */
static int option_default(json_t **opts, const char *key, int64_t n, struct bh_err *err)
{
    if (n <= 0 || json_object_get(*opts, key))
        return 0;
    if (!*opts)
        *opts = json_object();
    return prov_json_set(*opts, key, json_integer(n), err);
}

/* options as given; max_tokens fills num_predict and num_ctx num_ctx when the
 * options lack them. */
static int put_options(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *opts = NULL;
    int rc = prov_options_parse(c, &opts, err);
    if (rc)
        return rc;
    rc = option_default(&opts, "num_predict", c->max_tokens, err);
    if (rc == 0)
        rc = option_default(&opts, "num_ctx", c->num_ctx, err);
    if (rc == 0 && opts)
        return prov_json_set(root, "options", opts, err);
    json_decref(opts);
    return rc;
}

/* Whole seconds go as a number: Ollama refuses a unitless duration string. */
static int put_keep_alive(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    const char *k = c->keep_alive, *p = k;
    if (!k)
        return 0;
    p += *p == '-';
    if (*p && strspn(p, "0123456789") == strlen(p)) {
        errno = 0;
        long long n = strtoll(k, NULL, 10);
        if (errno == 0)
            return prov_json_set(root, "keep_alive", json_integer(n), err);
    }
    return prov_json_str(root, "keep_alive", k, "keep_alive", err);
}

static int put_format(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *schema = NULL;
    if (!c->format_json)
        return 0;
    if (prov_format_is_json(c->format_json))
        return prov_json_set(root, "format", json_string("json"), err);
    int rc = prov_json_parse(c->format_json, "the format (\"json\" or a JSON schema)", JSON_OBJECT,
                             &schema, err);
    return rc ? rc : prov_json_set(root, "format", schema, err);
}

static int put_think(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    if (c->think == PROV_THINK_UNSET)
        return 0;
    return prov_json_set(root, "think", json_boolean(c->think == PROV_THINK_ON), err);
}

static int put_truncate(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    return c->truncate_off ? prov_json_set(root, "truncate", json_false(), err) : 0;
}

static int put_tools(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *tools = NULL;
    int rc = prov_tools_parse(c, &tools, err);
    if (rc || !tools)
        return rc;
    return prov_json_set(root, "tools", tools, err);
}

static const prov_part_fn body_parts[] = {
    prov_part_model, put_messages, put_stream,   put_options, put_keep_alive,
    put_format,      put_think,    put_truncate, put_tools,
};

static int chat_body(const struct prov_chat *c, char **body, size_t *len, struct bh_err *err)
{
    return prov_body_build(body_parts, BH_NELEM(body_parts), c, body, len, err);
}

/* ---- reply ---- */

static struct prov_stream *stream_new(size_t max)
{
    struct prov_stream *s = bh_xcalloc(1, sizeof(*s));
    prov_acc_init(&s->a, "ollama", max);
    bh_buf_init(&s->line, prov_wire_cap(s->a.max));
    return s;
}

static void stream_free(struct prov_stream *s)
{
    if (!s)
        return;
    bh_buf_release(&s->line);
    prov_acc_release(&s->a);
    free(s);
}

/* {"error": "..."}: on a 200 stream the server failed after it began; behind
 * a non-2xx status it is the reason for the status (decided at finish). */
static int take_error(struct prov_stream *s, json_t *o)
{
    if (!prov_acc_server_error(&s->a, o))
        return 0;
    return prov_acc_keep(&s->a, BH_EREPLY, "the server reported an error mid-stream: %s",
                         s->a.r.error);
}

/* "<subject> at line N of the reply <problem> — check ..."; subject may be "". */
static int not_ollama(struct prov_stream *s, const char *subject, const char *problem)
{
    return prov_acc_keep(&s->a, BH_EREPLY,
                         "%s%sline %zu of the reply %s — check that the endpoint speaks the "
                         "'ollama' API",
                         subject, subject[0] ? " at " : "", s->lineno, problem);
}

/* One entry of message.tool_calls: a whole call, so always a new one. */
static int take_call(struct prov_stream *s, json_t *tc)
{
    json_t *f = json_object_get(tc, "function");
    json_t *name = json_object_get(f, "name");
    if (!json_is_string(name) || !json_string_length(name))
        return not_ollama(s, "a tool call", "has no function name");
    struct prov_pcall *c = prov_acc_call(&s->a, -1, 1);
    if (!c)
        return s->a.err.code;
    prov_acc_str(&c->id, json_object_get(tc, "id"));
    prov_acc_str(&c->name, name);
    json_t *args = json_object_get(f, "arguments");
    if (json_is_string(args)) /* a server that sent it OpenAI-style */
        return prov_acc_call_args(&s->a, c, json_string_value(args), json_string_length(args));
    char *text = args ? bh_json_dump(args, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int rc = prov_acc_call_args(&s->a, c, text ? text : "{}", text ? strlen(text) : 2);
    free(text);
    return rc ? rc : prov_acc_call_close(&s->a, c);
}

static int take_message(struct prov_stream *s, json_t *o)
{
    json_t *m = json_object_get(o, "message");
    if (!m || json_is_null(m))
        return 0;
    if (!json_is_object(m))
        return not_ollama(s, "'message'", "is not an object");
    char where[48];
    snprintf(where, sizeof(where), "at line %zu", s->lineno);
    json_t *calls = json_object_get(m, "tool_calls");
    if (calls && !json_is_null(calls) && !json_is_array(calls))
        return not_ollama(s, "'message.tool_calls'", "is not an array");
    int rc = prov_acc_text(&s->a, 0, json_object_get(m, "content"), "message.content", where);
    if (rc == 0)
        rc = prov_acc_text(&s->a, 1, json_object_get(m, "thinking"), "message.thinking", where);
    for (size_t i = 0; rc == 0 && i < json_array_size(calls); i++)
        rc = take_call(s, json_array_get(calls, i));
    return rc;
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

/* model and remote_host on any chunk, and the final chunk's reason and
 * metrics. Ollama leaves out every metric that is 0, so absent means 0. */
static void take_final(struct prov_stream *s, json_t *o)
{
    struct prov_reply *r = &s->a.r;
    if (!r->remote_host)
        prov_acc_str(&r->remote_host, json_object_get(o, "remote_host"));
    if (!r->model)
        prov_acc_str(&r->model, json_object_get(o, "model"));
    if (!json_is_true(json_object_get(o, "done")))
        return;
    r->done = 1;
    prov_acc_str(&r->done_reason, json_object_get(o, "done_reason"));
    for (size_t i = 0; i < BH_NELEM(metrics); i++) {
        json_t *v = json_object_get(o, metrics[i].key);
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
        *(int64_t *)(void *)((char *)r + metrics[i].off) = n > 0 ? (int64_t)n : 0;
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
        prov_acc_keep(&s->a, BH_EREPLY,
                      "the reply ended in the middle of line %zu (connection cut?) — "
                      "retry; if it keeps happening, check the server's log",
                      s->lineno);
        s->a.r.transient = 1; /* a cut, like a missing final chunk */
        return;
    }
    if (!o) {
        char why[96];
        prov_clean_into(why, sizeof(why), je.text, strlen(je.text));
        prov_acc_keep(&s->a, BH_EREPLY,
                      "invalid JSON in the reply at line %zu, column %d: %s — check that "
                      "the endpoint speaks the 'ollama' API",
                      s->lineno, je.column, why);
        return;
    }
    if (!json_is_object(o))
        not_ollama(s, "", "is not a JSON object");
    else if (!take_error(s, o) && !take_message(s, o))
        take_final(s, o);
    json_decref(o);
}

static int stream_feed(struct prov_stream *s, const char *data, size_t len, struct bh_err *err)
{
    prov_acc_head(&s->a, data, len);
    while (len && !s->a.err.code) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        if (bh_buf_append(&s->line, data, n)) {
            prov_acc_keep(&s->a, BH_ETOOBIG,
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
    return s->a.err.code == BH_ETOOBIG ? prov_acc_copy_err(&s->a, err) : 0;
}

static const struct prov_http_rule http_rules[] = {
    {400, NULL, "the server rejected the request", ""},
    {401, NULL, "not authorized", " — check the endpoint's api_key_env"},
    {403, NULL, "not authorized", " — check the endpoint's api_key_env"},
    {429, NULL, "rate limited", " — lower max_concurrency if it keeps happening"},
    {500, NULL, "the server failed",
     " — not retried (the same request fails the same way): the server's log has the details"},
    {503, NULL, "server busy", " — lower max_concurrency if it keeps happening"},
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

static int not_found(const struct prov_stream *s, struct prov_reply *r, struct bh_err *err)
{
    char model[128], text[PROV_TEXT_MAX + 4];
    prov_acc_http_text(&s->a, text, sizeof(text));
    r->error = bh_xstrdup(text);
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

static int stream_finish(struct prov_stream *s, long status, struct prov_reply *r,
                         struct bh_err *err)
{
    memset(r, 0, sizeof(*r));
    if (s->line.len && !s->a.err.code) {
        s->lineno++;
        parse_line(s, s->line.data, s->line.len, 1);
        bh_buf_reset(&s->line);
    }
    if (status == 404)
        return not_found(s, r, err);
    if (status < 200 || status > 299)
        return prov_acc_http_error(&s->a, status, http_rules, BH_NELEM(http_rules), r, err);
    return prov_acc_end(&s->a, "its final chunk", r, err);
}

const struct prov_ops prov_ollama = {
    .name = "ollama",
    .chat_path = "/api/chat",
    .headers = NULL,
    .auth_style = PROV_AUTH_BEARER,
    .chat_body = chat_body,
    .stream_new = stream_new,
    .stream_feed = stream_feed,
    .stream_finish = stream_finish,
    .stream_free = stream_free,
};
