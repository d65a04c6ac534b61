/* providers/anthropic.c — the Anthropic messages dialect: POST /v1/messages.
 *
 * Request: the same table of body parts as ollama.c, but the history has to
 * be reshaped: system messages go to the top-level "system" (joined with a
 * blank line), tool results become tool_result blocks at the head of a user
 * turn, assistant calls become tool_use blocks, and consecutive messages that
 * land in the same role are merged into one turn (the API wants turns to
 * alternate, and a tool result and the user text after it are one turn).
 * max_tokens is required there, so it always has a value.
 *
 * Reply: SSE with named events (a table maps names to handlers; ping and
 * names it does not know are ignored, as the API's versioning policy asks),
 * or a whole message object when not streamed; the framing is sniffed as in
 * openai.c (wire.c). A tool_use block's input arrives as partial_json
 * fragments keyed by the block index and is parsed at content_block_stop.
 * The stream ends with message_stop; without it the reply was cut. */
#include "providers/prov.h"

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

#define NUMBER ((1u << JSON_INTEGER) | (1u << JSON_REAL))
#define INTEGER (1u << JSON_INTEGER)

struct prov_stream {
    struct prov_acc a;
    struct prov_body body;
    size_t events; /* events seen, for messages */
};

/* ---- request ---- */

static int put_max_tokens(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *opts = NULL;
    int rc = prov_options_parse(c, &opts, err);
    json_t *np = json_object_get(opts, "num_predict");
    json_int_t max = c->max_tokens > 0                                   ? c->max_tokens
                     : json_is_integer(np) && json_integer_value(np) > 0 ? json_integer_value(np)
                                                                         : PROV_DEFAULT_MAX_TOKENS;
    json_decref(opts);
    return rc ? rc : prov_json_set(root, "max_tokens", json_integer(max), err);
}

static int put_system(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    struct bh_buf b;
    char what[64];
    int rc = 0;
    bh_buf_init(&b, PROV_BODY_MAX);
    for (size_t i = 0; rc == 0 && i < c->n_msgs; i++) {
        const struct prov_msg *m = &c->msgs[i];
        const char *text = m->content ? m->content : "";
        if (!m->role || strcmp(m->role, "system") != 0)
            continue;
        rc = prov_utf8_check(text, prov_msg_what(what, sizeof(what), "content", i), err);
        if (rc == 0 && ((b.len && bh_buf_puts(&b, "\n\n")) || bh_buf_puts(&b, text)))
            rc = bh_err_set(err, BH_ETOOBIG, "the system prompt exceeds %zu bytes",
                            (size_t)PROV_BODY_MAX);
    }
    if (rc == 0 && b.len)
        rc = prov_json_str(root, "system", b.data, "the system prompt", err);
    bh_buf_release(&b);
    return rc;
}

/* A turn being assembled: tool results first, then text and tool_use. */
struct turn {
    const char *role; /* "user", "assistant", or NULL when empty */
    json_t *content;
    size_t n_results;
};

static json_t *block(const char *type)
{
    json_t *b = json_object();
    if (b && bh_json_set(b, "type", json_string(type), NULL)) {
        json_decref(b);
        return NULL;
    }
    return b;
}

static int flush(json_t *msgs, struct turn *t, struct bh_err *err)
{
    int rc = 0;
    if (t->role && json_array_size(t->content)) {
        json_t *m = json_object();
        rc = prov_json_push(msgs, m, err);
        if (rc == 0)
            rc = prov_json_set(m, "role", json_string(t->role), err);
        if (rc == 0)
            rc = prov_json_set(m, "content", json_incref(t->content), err);
    }
    json_decref(t->content);
    memset(t, 0, sizeof(*t));
    return rc;
}

static int add_result(struct turn *t, const struct prov_msg *m, size_t i, struct bh_err *err)
{
    char what[64];
    if (!m->tool_call_id)
        return bh_err_set(err, BH_EINVAL,
                          "message %zu is a tool result without tool_call_id — the "
                          "'anthropic' provider links results to calls by id",
                          i + 1);
    json_t *b = block("tool_result");
    if (!b || json_array_insert_new(t->content, t->n_results++, b))
        return bh_err_set(err, BH_EINTERNAL, "cannot build the request body (out of memory)");
    int rc = prov_json_str(b, "tool_use_id", m->tool_call_id,
                           prov_msg_what(what, sizeof(what), "tool_call_id", i), err);
    return rc ? rc
              : prov_json_str(b, "content", m->content ? m->content : "",
                              prov_msg_what(what, sizeof(what), "content", i), err);
}

static int add_tool_use(struct turn *t, const struct prov_tool_call *tc, size_t i, size_t k,
                        struct bh_err *err)
{
    char what[96];
    json_t *b = block("tool_use"), *input = NULL;
    int rc = prov_json_push(t->content, b, err);
    if (rc == 0 && !tc->id)
        return bh_err_set(err, BH_EINVAL,
                          "tool call %zu of message %zu has no id — the 'anthropic' provider "
                          "links results to calls by id",
                          k + 1, i + 1);
    snprintf(what, sizeof(what), "the id of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0)
        rc = prov_json_str(b, "id", tc->id, what, err);
    snprintf(what, sizeof(what), "the name of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0)
        rc = prov_json_str(b, "name", tc->name ? tc->name : "", what, err);
    snprintf(what, sizeof(what), "the arguments of tool call %zu of message %zu", k + 1, i + 1);
    if (rc == 0)
        rc = prov_json_parse(tc->arguments_json ? tc->arguments_json : "{}", what, JSON_OBJECT,
                             &input, err);
    return rc ? rc : prov_json_set(b, "input", input, err);
}

/* Text (the API refuses empty text blocks, so none is sent) and calls. */
static int add_text_and_calls(struct turn *t, const struct prov_msg *m, size_t i,
                              struct bh_err *err)
{
    char what[64];
    int rc = 0;
    if (m->content && m->content[0]) {
        json_t *b = block("text");
        rc = prov_json_push(t->content, b, err);
        if (rc == 0)
            rc = prov_json_str(b, "text", m->content,
                               prov_msg_what(what, sizeof(what), "content", i), err);
    }
    for (size_t k = 0; rc == 0 && k < m->n_tool_calls; k++)
        rc = add_tool_use(t, &m->tool_calls[k], i, k, err);
    return rc;
}

static const char *turn_role(const char *role)
{
    if (strcmp(role, "user") == 0 || strcmp(role, "tool") == 0)
        return "user";
    return strcmp(role, "assistant") == 0 ? "assistant" : NULL;
}

static int add_message(json_t *msgs, struct turn *t, const struct prov_msg *m, size_t i,
                       struct bh_err *err)
{
    const char *role = m->role ? m->role : "";
    const char *want = turn_role(role);
    int rc = 0;
    if (strcmp(role, "system") == 0)
        return 0; /* top-level: put_system */
    if (!want)
        return bh_err_set(err, BH_EINVAL,
                          "message %zu has role '%s' — the 'anthropic' provider knows system, "
                          "user, assistant, tool",
                          i + 1, role);
    if (t->role && strcmp(t->role, want) != 0)
        rc = flush(msgs, t, err);
    if (rc == 0 && !t->role) {
        t->role = want;
        t->content = json_array();
    }
    if (rc == 0)
        rc =
            strcmp(role, "tool") == 0 ? add_result(t, m, i, err) : add_text_and_calls(t, m, i, err);
    return rc;
}

static int put_messages(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *msgs = json_array();
    struct turn t = {0};
    int rc = prov_json_set(root, "messages", msgs, err);
    for (size_t i = 0; rc == 0 && i < c->n_msgs; i++)
        rc = add_message(msgs, &t, &c->msgs[i], i, err);
    int rc2 = flush(msgs, &t, err);
    return rc ? rc : rc2;
}

static int put_stream(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    return prov_json_set(root, "stream", json_boolean(c->stream), err);
}

/* stop may be one string in Ollama's vocabulary; stop_sequences is a list. */
static int put_options(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    static const struct {
        const char *from, *to;
        unsigned types;
    } map[] = {
        {"temperature", "temperature", NUMBER},
        {"top_p", "top_p", NUMBER},
        {"top_k", "top_k", INTEGER},
        {"stop", "stop_sequences", 1u << JSON_ARRAY},
    };
    json_t *opts = NULL;
    int rc = prov_options_parse(c, &opts, err);
    json_t *stop = json_object_get(opts, "stop");
    if (rc == 0 && json_is_string(stop))
        rc = prov_json_set(opts, "stop", json_pack("[O]", stop), err);
    for (size_t i = 0; rc == 0 && i < BH_NELEM(map); i++)
        rc = prov_option_copy(root, map[i].to, opts, map[i].from, map[i].types, err);
    json_decref(opts);
    return rc;
}

static int put_format(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    (void)root;
    if (!c->format_json)
        return 0;
    return bh_err_set(err, BH_EINVAL,
                      "the 'anthropic' provider has no JSON output mode — leave out 'format' "
                      "for this stage and ask for JSON in the prompt");
}

/* {"type":"function","function":{name,description,parameters}} ->
 * {name, description, input_schema}. */
static int put_tools(json_t *root, const struct prov_chat *c, struct bh_err *err)
{
    json_t *tools = NULL, *out;
    int rc = prov_tools_parse(c, &tools, err);
    if (rc || !tools)
        return rc;
    out = json_array();
    rc = prov_json_set(root, "tools", out, err);
    for (size_t i = 0; rc == 0 && i < json_array_size(tools); i++) {
        json_t *f = json_object_get(json_array_get(tools, i), "function");
        json_t *params = json_object_get(f, "parameters"),
               *desc = json_object_get(f, "description");
        json_t *t = json_pack("{s:O}", "name", json_object_get(f, "name"));
        rc = prov_json_push(out, t, err);
        if (rc == 0 && json_is_string(desc))
            rc = prov_json_set(t, "description", json_incref(desc), err);
        if (rc == 0)
            rc = prov_json_set(t, "input_schema",
                               json_is_object(params) ? json_incref(params)
                                                      : json_pack("{s:s}", "type", "object"),
                               err);
    }
    json_decref(tools);
    return rc;
}

static const prov_part_fn body_parts[] = {
    prov_part_model, put_max_tokens, put_system, put_messages,
    put_stream,      put_options,    put_format, put_tools,
};

static int chat_body(const struct prov_chat *c, char **body, size_t *len, struct bh_err *err)
{
    return prov_body_build(body_parts, BH_NELEM(body_parts), c, body, len, err);
}

/* ---- reply ---- */

static struct prov_stream *stream_new(size_t max)
{
    struct prov_stream *s = bh_xcalloc(1, sizeof(*s));
    prov_acc_init(&s->a, "anthropic", max);
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

static int not_anthropic(struct prov_stream *s, const char *what)
{
    return prov_acc_keep(&s->a, BH_EREPLY,
                         "%s in event %zu of the reply stream — check that the endpoint speaks "
                         "the 'anthropic' API",
                         what, s->events);
}

/* The usage of message_start and of a whole message. Cached input is
 * counted apart by the API; the prompt's size is the sum. */
static void take_usage(struct prov_stream *s, json_t *u)
{
    static const char *const inputs[] = {"input_tokens", "cache_creation_input_tokens",
                                         "cache_read_input_tokens"};
    int64_t sum = 0;
    for (size_t i = 0; i < BH_NELEM(inputs); i++) {
        int64_t n = 0;
        prov_acc_count(&n, json_object_get(u, inputs[i]));
        sum = n > INT64_MAX - sum ? INT64_MAX : sum + n; /* a hostile count must not overflow */
    }
    if (sum)
        s->a.r.prompt_tokens = sum;
    prov_acc_count(&s->a.r.output_tokens, json_object_get(u, "output_tokens"));
}

static int on_message_start(struct prov_stream *s, json_t *o, const char *where)
{
    json_t *m = json_object_get(o, "message");
    (void)where;
    prov_acc_str(&s->a.r.model, json_object_get(m, "model"));
    take_usage(s, json_object_get(m, "usage"));
    return 0;
}

static int block_index(struct prov_stream *s, json_t *o, long *index)
{
    json_t *ix = json_object_get(o, "index");
    if (!json_is_integer(ix) || json_integer_value(ix) < 0)
        return not_anthropic(s, "a content block without an index");
    *index = (long)json_integer_value(ix);
    return 0;
}

/* A tool_use block's input when given whole (a non-streamed reply, or a
 * start that is not the usual {}). */
static int seed_input(struct prov_stream *s, struct prov_pcall *c, json_t *input)
{
    if (!input || (json_is_object(input) && json_object_size(input) == 0))
        return 0;
    char *text = bh_json_dump(input, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc = prov_acc_call_args(&s->a, c, text ? text : "", text ? strlen(text) : 0);
    free(text);
    return rc;
}

/* text, thinking and tool_use blocks; others (redacted_thinking, server
 * tools) carry nothing bulkhead uses. */
static int take_block(struct prov_stream *s, json_t *b, long index, const char *where)
{
    const char *type = json_string_value(json_object_get(b, "type"));
    if (!type)
        return not_anthropic(s, "a content block without a type");
    if (strcmp(type, "text") == 0)
        return prov_acc_text(&s->a, 0, json_object_get(b, "text"), "text", where);
    if (strcmp(type, "thinking") == 0)
        return prov_acc_text(&s->a, 1, json_object_get(b, "thinking"), "thinking", where);
    if (strcmp(type, "tool_use") != 0)
        return 0;
    struct prov_pcall *c = prov_acc_call(&s->a, index, 1);
    if (!c)
        return s->a.err.code;
    prov_acc_str(&c->id, json_object_get(b, "id"));
    prov_acc_str(&c->name, json_object_get(b, "name"));
    return seed_input(s, c, json_object_get(b, "input"));
}

static int on_block_start(struct prov_stream *s, json_t *o, const char *where)
{
    long index;
    int rc = block_index(s, o, &index);
    return rc ? rc : take_block(s, json_object_get(o, "content_block"), index, where);
}

static struct prov_pcall *find_call(struct prov_acc *a, long index)
{
    for (size_t i = a->n_calls; i-- > 0;)
        if (a->calls[i].index == index)
            return &a->calls[i];
    return NULL;
}

static int on_block_delta(struct prov_stream *s, json_t *o, const char *where)
{
    long index;
    int rc = block_index(s, o, &index);
    json_t *d = json_object_get(o, "delta");
    const char *type = json_string_value(json_object_get(d, "type"));
    if (rc || !type)
        return rc;
    if (strcmp(type, "text_delta") == 0)
        return prov_acc_text(&s->a, 0, json_object_get(d, "text"), "delta.text", where);
    if (strcmp(type, "thinking_delta") == 0)
        return prov_acc_text(&s->a, 1, json_object_get(d, "thinking"), "delta.thinking", where);
    if (strcmp(type, "input_json_delta") != 0)
        return 0; /* signature_delta: bulkhead does not send thinking back */
    struct prov_pcall *c = find_call(&s->a, index);
    json_t *part = json_object_get(d, "partial_json");
    if (!c || c->closed)
        return not_anthropic(s, "input_json_delta for a block that is not an open tool_use");
    if (!json_is_string(part))
        return not_anthropic(s, "input_json_delta without partial_json");
    return prov_acc_call_args(&s->a, c, json_string_value(part), json_string_length(part));
}

static int on_block_stop(struct prov_stream *s, json_t *o, const char *where)
{
    long index;
    (void)where;
    int rc = block_index(s, o, &index);
    struct prov_pcall *c = rc ? NULL : find_call(&s->a, index);
    return c ? prov_acc_call_close(&s->a, c) : rc;
}

static int on_message_delta(struct prov_stream *s, json_t *o, const char *where)
{
    (void)where;
    prov_acc_str(&s->a.r.done_reason, json_object_get(json_object_get(o, "delta"), "stop_reason"));
    /* cumulative, so the last one is the count */
    prov_acc_count(&s->a.r.output_tokens,
                   json_object_get(json_object_get(o, "usage"), "output_tokens"));
    return 0;
}

static int on_message_stop(struct prov_stream *s, json_t *o, const char *where)
{
    (void)o, (void)where;
    s->a.r.done = 1;
    return 0;
}

/* What a server error means for the user, by its type. */
static const char *error_hint(const char *type)
{
    if (strcmp(type, "overloaded_error") == 0)
        return " — the service is overloaded (not your quota)";
    if (strcmp(type, "rate_limit_error") == 0)
        return " — rate limited: lower max_concurrency if it keeps happening";
    return " — retry; if it keeps happening, check the provider's status page";
}

static int on_error(struct prov_stream *s, json_t *o, const char *where)
{
    (void)where;
    if (!prov_acc_server_error(&s->a, o))
        return not_anthropic(s, "an error event without an error");
    return prov_acc_keep(&s->a, BH_EREPLY, "the server reported an error mid-stream (%s): %s%s",
                         s->a.etype[0] ? s->a.etype : "unknown", s->a.r.error,
                         error_hint(s->a.etype));
}

typedef int (*event_fn)(struct prov_stream *s, json_t *o, const char *where);

static const struct event_rule {
    const char *name;
    event_fn fn;
} events[] = {
    {"message_start", on_message_start},
    {"content_block_start", on_block_start},
    {"content_block_delta", on_block_delta},
    {"content_block_stop", on_block_stop},
    {"message_delta", on_message_delta},
    {"message_stop", on_message_stop},
    {"error", on_error},
};

static int on_event(void *ud, const char *event, const char *data, size_t len, struct bh_err *err)
{
    struct prov_stream *s = ud;
    json_error_t je;
    char where[48];
    s->events++;
    if (s->a.err.code || s->a.r.done)
        return 0;
    snprintf(where, sizeof(where), "in event %zu", s->events);
    json_t *o = json_loadb(data, len, JSON_ALLOW_NUL, &je);
    /* the data's type repeats the event's name; it stands in when unnamed */
    const char *name =
        strcmp(event, "message") ? event : json_string_value(json_object_get(o, "type"));
    if (!json_is_object(o))
        not_anthropic(s, o ? "data that is not a JSON object" : "invalid JSON");
    for (size_t i = 0; name && json_is_object(o) && i < BH_NELEM(events); i++)
        if (strcmp(name, events[i].name) == 0) {
            events[i].fn(s, o, where);
            break;
        }
    json_decref(o);
    return s->a.err.code == BH_ETOOBIG ? prov_acc_copy_err(&s->a, err) : 0;
}

static int stream_feed(struct prov_stream *s, const char *data, size_t len, struct bh_err *err)
{
    return prov_body_feed(&s->body, &s->a, data, len, on_event, s, err);
}

/* A non-streamed message: the same blocks, given whole. */
static void take_message(struct prov_stream *s, json_t *o)
{
    json_t *content = json_object_get(o, "content");
    for (size_t i = 0; !s->a.err.code && i < json_array_size(content); i++)
        take_block(s, json_array_get(content, i), (long)i, "in the reply");
    prov_acc_str(&s->a.r.model, json_object_get(o, "model"));
    prov_acc_str(&s->a.r.done_reason, json_object_get(o, "stop_reason"));
    take_usage(s, json_object_get(o, "usage"));
    if (!json_is_array(content))
        not_anthropic(s, "a message without a content array");
    s->a.r.done = 1;
}

static void parse_whole(struct prov_stream *s)
{
    json_error_t je;
    if (s->a.err.code || s->body.framing != PROV_WHOLE)
        return;
    json_t *o = json_loadb(s->body.whole.data, s->body.whole.len, JSON_ALLOW_NUL, &je);
    const char *type = json_string_value(json_object_get(o, "type"));
    if (prov_acc_server_error(&s->a, o))
        prov_acc_keep(&s->a, BH_EREPLY, "the server reported an error (%s): %s%s",
                      s->a.etype[0] ? s->a.etype : "unknown", s->a.r.error, error_hint(s->a.etype));
    else if (type && strcmp(type, "message") == 0)
        take_message(s, o);
    else
        prov_acc_keep(&s->a, BH_EREPLY,
                      "the reply is neither an event stream nor a message — check that the "
                      "endpoint speaks the 'anthropic' API");
    json_decref(o);
}

static const struct prov_http_rule http_rules[] = {
    {400, "prompt_too_long", "the prompt is too long for the model",
     " — shorten the input (or split it)"},
    {400, NULL, "the server rejected the request", " — check the stage's options and tools"},
    {401, NULL, "not authorized",
     " — check that the endpoint's api_key_env names a variable holding a valid key"},
    {402, NULL, "billing problem", " — check the account's plan and billing"},
    {403, NULL, "forbidden", " — check that the key in api_key_env may use this model"},
    {404, NULL, "not found",
     " — check the stage's model name, and the endpoint's url: the base URL without /v1, "
     "bulkhead appends /v1/messages"},
    {413, NULL, "the request is too large", " — shorten the input"},
    {429, NULL, "rate limited", " — lower max_concurrency if it keeps happening"},
    {500, NULL, "the server failed",
     " — not retried (the same request fails the same way); retry later by running the same "
     "command again"},
    {504, NULL, "the server timed out", " — a long prompt or a busy service"},
    {529, NULL, "the service is overloaded", " — not your quota"},
};

static int stream_finish(struct prov_stream *s, long status, struct prov_reply *r,
                         struct bh_err *err)
{
    memset(r, 0, sizeof(*r));
    prov_body_end(&s->body, &s->a, on_event, s);
    parse_whole(s);
    if (status < 200 || status > 299) {
        if (status == 400 && s->a.r.error && strstr(s->a.r.error, "prompt is too long"))
            snprintf(s->a.ecode, sizeof(s->a.ecode), "prompt_too_long");
        return prov_acc_http_error(&s->a, status, http_rules, BH_NELEM(http_rules), r, err);
    }
    return prov_acc_end(&s->a, "its final event (message_stop)", r, err);
}

static const char *const headers[] = {"anthropic-version: 2023-06-01", NULL};

const struct prov_ops prov_anthropic = {
    .name = "anthropic",
    .chat_path = "/v1/messages",
    .headers = headers,
    .auth_style = PROV_AUTH_X_API_KEY,
    .chat_body = chat_body,
    .stream_new = stream_new,
    .stream_feed = stream_feed,
    .stream_finish = stream_finish,
    .stream_free = stream_free,
};
