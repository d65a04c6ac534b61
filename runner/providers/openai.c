/* providers/openai.c — the OpenAI chat-completions dialect: POST
 * /v1/chat/completions, spoken by OpenAI and by most local servers (Ollama's
 * /v1, llama-server, vLLM).
 *
 * Request: the same table of body parts as ollama.c. The option vocabulary
 * is Ollama's (the pipeline has one); the parts map what has an equivalent
 * (num_predict -> max_tokens, ...) and leave the rest out. Tool-call
 * arguments travel as a JSON string here, not an object.
 *
 * Reply: the first non-blank byte decides the framing. "data:", "event:",
 * ':' ... is an SSE stream (sse.c) of chat.completion.chunk objects ending in
 * "data: [DONE]"; anything else ('{' of a non-streamed reply or an error
 * object, '<' of a proxy's error page) is buffered whole and parsed at
 * finish, when the HTTP status says what it means. Tool-call deltas are
 * merged by index, except that a fragment bringing a new id under an index
 * already used starts a new call: Ollama's /v1 sent every call as index 0
 * (ollama#15457), each delta a whole call, and merging by index alone would
 * glue distinct calls together. A stream without [DONE] failed: Ollama's /v1
 * ends a stream that way when the runner dies. */
#include "providers/prov.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/wire.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define NUMBER ((1u << JSON_INTEGER) | (1u << JSON_REAL))
#define INTEGER (1u << JSON_INTEGER)
#define STOP ((1u << JSON_STRING) | (1u << JSON_ARRAY))

struct prov_stream {
    struct prov_acc a;
    struct prov_body body;
    size_t events;           /* events seen, for messages */
    int64_t n_prompt, n_ctx; /* llama-server's exceed_context_size_error: the prompt's
                                tokens and the server's context; 0 when not told */
};

/* ---- request ---- */

static int put_call(json_t *arr, const struct prov_tool_call *tc, size_t i, size_t k,
                    struct bh_err *err)
{
    char what[96];
    json_t *o = json_object(), *f = json_object();
    int rc = prov_json_push(arr, o, err);
    if (rc == 0)
        rc = prov_json_set(o, "function", f, err);
    else
        json_decref(f);
    if (rc == 0 && !tc->id)
        return bh_err_set(err, BH_EINVAL,
                          "tool call %zu of message %zu has no id — the 'openai' provider "
                          "links results to calls by id",
                          k + 1, i + 1);
    snprintf(what, sizeof(what), "the id of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0)
        rc = prov_json_str(o, "id", tc->id, what, err);
    if (rc == 0)
        rc = prov_json_set(o, "type", json_string("function"), err);
    snprintf(what, sizeof(what), "the name of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0)
        rc = prov_json_str(f, "name", tc->name ? tc->name : "", what, err);
    snprintf(what, sizeof(what), "the arguments of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0)
        rc = prov_json_str(f, "arguments", tc->arguments_json ? tc->arguments_json : "{}", what,
                           err);
    return rc;
}

/* Text content; null when an assistant message only carries calls. */
static int put_content(json_t *o, const struct prov_msg *m, size_t i, struct bh_err *err)
{
    char what[64];
    if (m->n_tool_calls && (!m->content || !m->content[0]))
        return prov_json_set(o, "content", json_null(), err);
    return prov_json_str(o, "content", m->content ? m->content : "",
                         prov_msg_what(what, sizeof(what), "content", i), err);
}

static int put_message(json_t *arr, const struct prov_msg *m, size_t i, struct bh_err *err)
{
    char what[64];
    const char *role = m->role ? m->role : "";
    json_t *o = json_object();
    int rc = prov_json_push(arr, o, err);
    if (rc == 0)
        rc = prov_json_str(o, "role", role, prov_msg_what(what, sizeof(what), "role", i), err);
    if (rc == 0)
        rc = put_content(o, m, i, err);
    if (rc == 0 && strcmp(role, "tool") == 0 && !m->tool_call_id)
        return bh_err_set(err, BH_EINVAL,
                          "message %zu is a tool result without tool_call_id — the 'openai' "
                          "provider links results to calls by id",
                          i + 1);
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

/* Usage comes in its own last chunk only when asked for. */
static int put_stream(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    int rc = prov_json_set(root, "stream", json_boolean(c->stream), err);
    if (rc || !c->stream)
        return rc;
    json_t *so = json_object();
    rc = prov_json_set(root, "stream_options", so, err);
    return rc ? rc : prov_json_set(so, "include_usage", json_true(), err);
}

/* max_tokens, else a positive num_predict (Ollama's -1 means no limit). */
static int put_options(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    static const struct {
        const char *from, *to;
        unsigned types;
    } map[] = {
        {"temperature", "temperature", NUMBER},
        {"top_p", "top_p", NUMBER},
        {"seed", "seed", INTEGER},
        {"stop", "stop", STOP},
    };
    json_t *opts = NULL;
    int rc = prov_options_parse(c, &opts, err);
    for (size_t i = 0; rc == 0 && i < BH_NELEM(map); i++)
        rc = prov_option_copy(root, map[i].to, opts, map[i].from, map[i].types, err);
    json_t *np = json_object_get(opts, "num_predict");
    json_int_t max = c->max_tokens > 0     ? c->max_tokens
                     : json_is_integer(np) ? json_integer_value(np)
                                           : 0;
    if (rc == 0 && max > 0)
        rc = prov_json_set(root, "max_tokens", json_integer(max), err);
    json_decref(opts);
    return rc;
}

/* OpenAI wants a name for a schema ([a-zA-Z0-9_-]{1,64}): the schema's own
 * title when it is one, else "response". */
static json_t *schema_name(json_t *schema)
{
    json_t *t = json_object_get(schema, "title");
    const char *s = json_string_value(t);
    if (s && s[0] && strlen(s) <= 64 &&
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == strlen(s))
        return json_string(s);
    return json_string("response");
}

static int put_format(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *schema = NULL, *rf, *js;
    if (!c->format_json)
        return 0;
    rf = json_object();
    int rc = prov_json_set(root, "response_format", rf, err);
    if (rc == 0 && prov_format_is_json(c->format_json))
        return prov_json_set(rf, "type", json_string("json_object"), err);
    if (rc == 0)
        rc = prov_json_parse(c->format_json, "the format (\"json\" or a JSON schema)", JSON_OBJECT,
                             &schema, err);
    if (rc)
        return rc;
    js = json_object();
    rc = prov_json_set(rf, "type", json_string("json_schema"), err);
    if (rc == 0)
        rc = prov_json_set(rf, "json_schema", js, err);
    else
        json_decref(js);
    if (rc == 0)
        rc = prov_json_set(js, "name", schema_name(schema), err);
    if (rc == 0)
        return prov_json_set(js, "schema", schema, err);
    json_decref(schema);
    return rc;
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
    prov_part_model, put_messages, put_stream, put_options, put_format, put_tools,
};

static int chat_body(const struct prov_chat *c, char **body, size_t *len, struct bh_err *err)
{
    return prov_body_build(body_parts, BH_NELEM(body_parts), c, body, len, err);
}

/* ---- reply ---- */

static struct prov_stream *stream_new(size_t max)
{
    struct prov_stream *s = bh_xcalloc(1, sizeof(*s));
    prov_acc_init(&s->a, "openai", max);
    prov_body_init(&s->body, s->a.max);
    return s;
}

static void stream_free(struct prov_stream *s)
{
    if (!s)
        return;
    prov_acc_release(&s->a);
    prov_body_release(&s->body);
    free(s);
}

static struct prov_pcall *last_call(struct prov_acc *a, long index)
{
    for (size_t i = a->n_calls; i-- > 0;)
        if (a->calls[i].index == index)
            return &a->calls[i];
    return NULL;
}

/* One entry of delta.tool_calls (whole: message.tool_calls of a non-stream
 * reply, where every entry is a call of its own). */
static int take_call(struct prov_stream *s, json_t *tc, size_t k, int whole)
{
    json_t *jidx = json_object_get(tc, "index"), *f = json_object_get(tc, "function");
    long index = json_is_integer(jidx) ? (long)json_integer_value(jidx) : (long)k;
    const char *id = json_string_value(json_object_get(tc, "id"));
    struct prov_pcall *c = whole ? NULL : last_call(&s->a, index);
    int fresh = !c || (id && id[0] && c->id && strcmp(c->id, id) != 0);
    if (fresh && !(c = prov_acc_call(&s->a, index, 1)))
        return s->a.err.code;
    if (!c->id)
        prov_acc_str(&c->id, json_object_get(tc, "id"));
    if (!c->name)
        prov_acc_str(&c->name, json_object_get(f, "name"));
    json_t *args = json_object_get(f, "arguments");
    if (json_is_string(args))
        return prov_acc_call_args(&s->a, c, json_string_value(args), json_string_length(args));
    if (!args || json_is_null(args))
        return 0;
    char *text = bh_json_dump(args, JSON_COMPACT | JSON_ENCODE_ANY); /* an object, off-spec */
    int rc = prov_acc_call_args(&s->a, c, text ? text : "", text ? strlen(text) : 0);
    free(text);
    return rc;
}

/* The first choice's delta (stream) or message (whole). */
static int take_choice(struct prov_stream *s, json_t *ch, const char *where, int whole)
{
    json_t *d = json_object_get(ch, whole ? "message" : "delta");
    json_t *calls = json_object_get(d, "tool_calls");
    const char *field = whole ? "choices[0].message.content" : "choices[0].delta.content";
    int rc = prov_acc_text(&s->a, 0, json_object_get(d, "content"), field, where);
    json_t *why = json_object_get(d, "reasoning");
    if (!why || json_is_null(why))
        why = json_object_get(d, "reasoning_content");
    if (rc == 0)
        rc = prov_acc_text(&s->a, 1, why, "reasoning", where);
    for (size_t k = 0; rc == 0 && k < json_array_size(calls); k++)
        rc = take_call(s, json_array_get(calls, k), k, whole);
    prov_acc_str(&s->a.r.done_reason, json_object_get(ch, "finish_reason"));
    return rc;
}

/* A chunk or a whole reply. Only choice 0 is read: bulkhead asks for one. */
static int take_object(struct prov_stream *s, json_t *o, const char *where, int whole)
{
    json_t *usage = json_object_get(o, "usage"), *choices = json_object_get(o, "choices");
    json_t *e = json_object_get(o, "error");
    prov_acc_count(&s->n_prompt, json_object_get(e, "n_prompt_tokens"));
    prov_acc_count(&s->n_ctx, json_object_get(e, "n_ctx"));
    if (prov_acc_server_error(&s->a, o))
        return prov_acc_keep(&s->a, BH_EREPLY, "the server reported an error%s: %s",
                             whole ? "" : " mid-stream", s->a.r.error);
    if (!s->a.r.model)
        prov_acc_str(&s->a.r.model, json_object_get(o, "model"));
    prov_acc_count(&s->a.r.prompt_tokens, json_object_get(usage, "prompt_tokens"));
    prov_acc_count(&s->a.r.output_tokens, json_object_get(usage, "completion_tokens"));
    if (choices && !json_is_array(choices))
        return prov_acc_keep(&s->a, BH_EREPLY,
                             "'choices' %s of the reply is not an array — check that the "
                             "endpoint speaks the 'openai' API",
                             where);
    for (size_t i = 0; i < json_array_size(choices); i++) {
        json_t *ch = json_array_get(choices, i), *ix = json_object_get(ch, "index");
        if (!json_is_integer(ix) || json_integer_value(ix) == 0)
            return take_choice(s, ch, where, whole);
    }
    return 0;
}

static int on_event(void *ud, const char *event, const char *data, size_t len, struct bh_err *err)
{
    struct prov_stream *s = ud;
    json_error_t je;
    char where[48];
    (void)event; /* OpenAI names no events */
    s->events++;
    if (s->a.err.code || s->a.r.done)
        return 0;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        s->a.r.done = 1;
        return 0;
    }
    snprintf(where, sizeof(where), "in event %zu", s->events);
    json_t *o = json_loadb(data, len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(o))
        prov_acc_keep(&s->a, BH_EREPLY,
                      "event %zu of the reply stream is not a JSON object (%s) — check that "
                      "the endpoint speaks the 'openai' API",
                      s->events, o ? "another JSON value" : "invalid JSON");
    else
        take_object(s, o, where, 0);
    json_decref(o);
    return s->a.err.code == BH_ETOOBIG ? prov_acc_copy_err(&s->a, err) : 0;
}

static int stream_feed(struct prov_stream *s, const char *data, size_t len, struct bh_err *err)
{
    return prov_body_feed(&s->body, &s->a, data, len, on_event, s, err);
}

/* A reply that was not SSE: a whole chat.completion, or an error object. */
static void parse_whole(struct prov_stream *s)
{
    json_error_t je;
    if (s->a.err.code || s->body.framing != PROV_WHOLE)
        return;
    json_t *o = json_loadb(s->body.whole.data, s->body.whole.len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(o))
        prov_acc_keep(&s->a, BH_EREPLY,
                      "the reply is neither an event stream nor a JSON object — check that "
                      "the endpoint speaks the 'openai' API");
    else if (take_object(s, o, "in the reply", 1) == 0 && !s->a.err.code) {
        if (json_is_array(json_object_get(o, "choices")))
            s->a.r.done = 1;
        else
            prov_acc_keep(&s->a, BH_EREPLY,
                          "the reply has no 'choices' — check that the endpoint speaks the "
                          "'openai' API");
    }
    json_decref(o);
}

static const struct prov_http_rule http_rules[] = {
    {400, "context_length_exceeded", "the prompt is too long for the model",
     " — shorten the input (or split it), or use a model with a larger context"},
    {400, NULL, "the server rejected the request", " — check the stage's options and tools"},
    {401, NULL, "not authorized",
     " — check that the endpoint's api_key_env names a variable holding a valid key"},
    {403, NULL, "forbidden", " — check that the key in api_key_env may use this model"},
    {404, "model_not_found", "model not found",
     " — check the stage's model against the server's list (GET /v1/models)"},
    {404, NULL, "not found",
     " — check the endpoint's url: it is the server's base URL without /v1, bulkhead "
     "appends /v1/chat/completions"},
    {429, "insufficient_quota", "quota exhausted",
     " — waiting will not help: check the account's plan and billing"},
    {429, NULL, "rate limited",
     " — lower max_concurrency or max_requests_per_minute if it keeps happening"},
    {500, NULL, "the server failed",
     " — not retried (the same request fails the same way): the server's log has the details"},
    {502, NULL, "bad gateway",
     " — the proxy in front of the server got no answer from it: "
     "check that the server runs"},
    {503, NULL, "server overloaded or unavailable",
     " — lower max_concurrency if it keeps happening"},
    {504, NULL, "the server timed out",
     " — the proxy in front of it gave up waiting: a slow model load or a long prompt"},
};

/* Servers other than OpenAI say the same things in other words. */
static void classify(struct prov_acc *a, long status)
{
    const char *t = a->r.error ? a->r.error : "";
    if (status == 400 && (strcmp(a->etype, "exceed_context_size_error") == 0 ||
                          strstr(t, "context length") || strstr(t, "maximum context")))
        snprintf(a->ecode, sizeof(a->ecode), "context_length_exceeded");
    if (status == 404 && strstr(t, "model") && strstr(t, "not found"))
        snprintf(a->ecode, sizeof(a->ecode), "model_not_found");
}

static int stream_finish(struct prov_stream *s, long status, struct prov_reply *r,
                         struct bh_err *err)
{
    memset(r, 0, sizeof(*r));
    prov_body_end(&s->body, &s->a, on_event, s);
    parse_whole(s);
    if (status == 400 && s->n_ctx > 0 && s->n_prompt > 0) {
        /* llama-server counts for us: say its numbers and its knob. */
        char text[PROV_TEXT_MAX + 4];
        prov_acc_http_text(&s->a, text, sizeof(text));
        free(r->error);
        r->error = bh_xstrdup(text);
        return bh_err_set(err, BH_EREPLY,
                          "the prompt is too long for the model (400): %s — "
                          "%lld prompt tokens, context (n_ctx) %lld: raise the server's context "
                          "(llama-server -c / --ctx-size) or shorten the input (or split it)",
                          text, (long long)s->n_prompt, (long long)s->n_ctx);
    }
    if (status < 200 || status > 299) {
        classify(&s->a, status);
        return prov_acc_http_error(&s->a, status, http_rules, BH_NELEM(http_rules), r, err);
    }
    return prov_acc_end(&s->a, "its final 'data: [DONE]'", r, err);
}

static const char *const no_headers[] = {NULL};

const struct prov_ops prov_openai = {
    .name = "openai",
    .chat_path = "/v1/chat/completions",
    .headers = no_headers,
    .auth_style = PROV_AUTH_BEARER,
    .chat_body = chat_body,
    .stream_new = stream_new,
    .stream_feed = stream_feed,
    .stream_finish = stream_finish,
    .stream_free = stream_free,
};
