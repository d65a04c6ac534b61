/* test_openai.c — the OpenAI chat-completions dialect: SSE and whole replies
 * fed whole, byte by byte and in 200 random chunkings, which must all give
 * the same reply or the same error; error bodies per status; request bodies
 * parsed back with jansson. Fixtures follow llm-apis.md section 2 and the
 * Ollama /v1 variants of section 1.10. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prov_feed.h"
#include "providers/prov.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

#define CHUNK(delta, finish)                                                                       \
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1735689600,"    \
    "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish      \
    "}],\"usage\":null}\n\n"
#define USAGE(p, c)                                                                                \
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1735689600,"    \
    "\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":" #p ",\"completion_tokens\":" #c \
    ",\"total_tokens\":99}}\n\n"
#define DONE "data: [DONE]\n\n"

#define TEXT_STREAM                                                                                \
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")                                     \
    ": keep-alive\n\n" CHUNK("{\"content\":\"Hel\"}", "null")                                      \
        CHUNK("{\"content\":\"lo \\u00e9\"}", "null") CHUNK("{}", "\"stop\"") USAGE(12, 3) DONE

#define CALL_FIRST(i, id, name)                                                                    \
    CHUNK("{\"tool_calls\":[{\"index\":" #i ",\"id\":\"" id "\",\"type\":\"function\","            \
          "\"function\":{\"name\":\"" name "\",\"arguments\":\"\"}}]}",                            \
          "null")
#define CALL_ARGS(i, args)                                                                         \
    CHUNK("{\"tool_calls\":[{\"index\":" #i ",\"function\":{\"arguments\":\"" args "\"}}]}", "nul" \
                                                                                             "l")

/* One chunk per line, as the server sends them: clang-format joins macro calls
 * that have no separator and never settles on a layout for them. */
/* clang-format off */
#define TOOL_STREAM                                                                                \
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")                                     \
    CALL_FIRST(0, "call_abc", "lookup_order")                                                      \
    CALL_ARGS(0, "{\\\"order_")                                                                    \
    CALL_ARGS(0, "id\\\":\\\"A17\\\"}")                                                            \
    CHUNK("{}", "\"tool_calls\"")                                                                  \
    USAGE(82, 17)                                                                                  \
    DONE

#define PARALLEL_STREAM                                                                            \
    CALL_FIRST(0, "call_a", "lookup_order")                                                        \
    CALL_FIRST(1, "call_b", "weather")                                                             \
    CALL_ARGS(1, "{\\\"city\\\":")                                                                 \
    CALL_ARGS(0, "{\\\"order_id\\\":")                                                             \
    CALL_ARGS(0, "\\\"A1\\\"}")                                                                    \
    CALL_ARGS(1, "\\\"Oslo\\\"}")                                                                  \
    CHUNK("{}", "\"tool_calls\"")                                                                  \
    DONE
/* clang-format on */

/* Ollama /v1 before the fix of ollama#15457: each delta a whole call, all index 0. */
#define OLLAMA_V1_STREAM                                                                           \
    CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":"    \
          "{\"name\":\"lookup_order\",\"arguments\":\"{\\\"order_id\\\":\\\"A17\\\"}\"}}]}",       \
          "null")                                                                                  \
    CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_2\",\"type\":\"function\",\"function\":"    \
          "{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]}",               \
          "null")                                                                                  \
    CHUNK("{}", "\"tool_calls\"") DONE

#define REASONING_STREAM                                                                           \
    CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"reasoning\":\"Let me \"}", "null")           \
    CHUNK("{\"reasoning\":\"think.\"}", "null")                                                    \
    CHUNK("{\"content\":\"42\"}", "null") CHUNK("{}", "\"length\"") DONE

#define WHOLE_TOOLS                                                                                \
    "{\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion\",\"created\":1735689600,"           \
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_x\",\"choices\":[{"          \
    "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null,"           \
    "\"tool_calls\":[{\"id\":\"call_abc\",\"type\":\"function\",\"function\":{\"name\":"           \
    "\"lookup_order\",\"arguments\":\"{\\\"order_id\\\":\\\"A17\\\"}\"}}]},\"logprobs\":null,"     \
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":82,\"completion_tokens\":17," \
    "\"total_tokens\":99}}"

#define WHOLE_TEXT                                                                                 \
    "{\"model\":\"qwen3:8b\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","       \
    "\"content\":\"Hi there\",\"reasoning\":\"greet\"},\"finish_reason\":\"stop\"}],"              \
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n"

static void run(const char *body, size_t len, long status, size_t max, enum prov_chunking how,
                uint32_t seed, struct prov_outcome *out)
{
    pf_run("openai", body, len, status, max, how, seed, out);
}

/* ---- replies that succeed ---- */

struct call {
    const char *id, *name, *args;
};

struct ok_case {
    const char *name;
    const char *body;
    const char *content, *thinking, *model, *done_reason;
    int64_t prompt_tokens, output_tokens;
    struct call calls[3];
};

static const struct ok_case ok_cases[] = {
    {"text stream with keep-alive", TEXT_STREAM, "Hello \xc3\xa9", NULL, "m", "stop", 12, 3, {{0}}},
    {"tool call fragments by index",
     TOOL_STREAM,
     "",
     NULL,
     "m",
     "tool_calls",
     82,
     17,
     {{"call_abc", "lookup_order", "{\"order_id\":\"A17\"}"}}},
    {"two calls interleaved",
     PARALLEL_STREAM,
     "",
     NULL,
     "m",
     "tool_calls",
     0,
     0,
     {{"call_a", "lookup_order", "{\"order_id\":\"A1\"}"},
      {"call_b", "weather", "{\"city\":\"Oslo\"}"}}},
    {"ollama /v1: whole calls all at index 0",
     OLLAMA_V1_STREAM,
     "",
     NULL,
     "m",
     "tool_calls",
     0,
     0,
     {{"call_1", "lookup_order", "{\"order_id\":\"A17\"}"},
      {"call_2", "weather", "{\"city\":\"Oslo\"}"}}},
    {"reasoning is thinking", REASONING_STREAM, "42", "Let me think.", "m", "length", 0, 0, {{0}}},
    {"CRLF stream",
     "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\n\r\n"
     "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n"
     "data: [DONE]\r\n\r\n",
     "a",
     NULL,
     "m",
     "stop",
     0,
     0,
     {{0}}},
    {"a second choice is ignored",
     "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"no\"}},{\"index\":0,\"delta\":"
     "{\"content\":\"yes\"}}]}\n\ndata: [DONE]\n\n",
     "yes",
     NULL,
     NULL,
     NULL,
     0,
     0,
     {{0}}},
    {"whole reply with a tool call",
     WHOLE_TOOLS,
     "",
     NULL,
     "gpt-4o-mini-2024-07-18",
     "tool_calls",
     82,
     17,
     {{"call_abc", "lookup_order", "{\"order_id\":\"A17\"}"}}},
    {"whole reply with text", WHOLE_TEXT, "Hi there", "greet", "qwen3:8b", "stop", 5, 2, {{0}}},
    {"empty arguments read as {}",
     CALL_FIRST(0, "call_x", "now") CHUNK("{}", "\"tool_calls\"") DONE,
     "",
     NULL,
     "m",
     "tool_calls",
     0,
     0,
     {{"call_x", "now", "{}"}}},
};

static void check_ok(const struct ok_case *c, const struct prov_outcome *o, int how)
{
    if (o->rc != 0)
        fail_msg("%s (chunking %d): rc %d: %s", c->name, how, o->rc, o->err.msg);
    assert_string_equal(o->r.content, c->content);
    assert_int_equal(o->r.done, 1);
    if (c->thinking)
        assert_string_equal(o->r.thinking, c->thinking);
    else
        assert_null(o->r.thinking);
    if (c->model)
        assert_string_equal(o->r.model, c->model);
    else
        assert_null(o->r.model);
    if (c->done_reason)
        assert_string_equal(o->r.done_reason, c->done_reason);
    else
        assert_null(o->r.done_reason);
    assert_int_equal(o->r.prompt_tokens, c->prompt_tokens);
    assert_int_equal(o->r.output_tokens, c->output_tokens);
    size_t n = 0;
    while (n < 3 && c->calls[n].name)
        n++;
    assert_int_equal(o->r.n_tool_calls, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(o->r.tool_calls[i].id, c->calls[i].id);
        assert_string_equal(o->r.tool_calls[i].name, c->calls[i].name);
        assert_string_equal(o->r.tool_calls[i].arguments_json, c->calls[i].args);
    }
    assert_null(o->r.error);
}

static void replies_are_the_same_whole_bytewise_and_in_200_random_chunkings(void **state)
{
    (void)state;
    for (size_t i = 0; i < BH_NELEM(ok_cases); i++) {
        const struct ok_case *c = &ok_cases[i];
        uint32_t seed = 0xa11ce000u + (uint32_t)i;
        for (int k = 0; k < 202; k++) {
            enum prov_chunking how = k < 2 ? (enum prov_chunking)k : PF_RANDOM;
            struct prov_outcome o;
            run(c->body, strlen(c->body), 200, 1 << 20, how, pf_rng_next(&seed), &o);
            check_ok(c, &o, how);
            prov_reply_release(&o.r);
        }
    }
}

/* ---- replies that fail ---- */

struct bad_case {
    const char *name;
    const char *body;
    long status;
    size_t max; /* 0: 1 MiB */
    int rc;
    int at_feed;
    const char *msg[3];
    const char *server_text;
};

#define ERR(msg, type, code)                                                                       \
    "{\"error\":{\"message\":\"" msg "\",\"type\":\"" type "\",\"param\":null,\"code\":" code "}}"

static const struct bad_case bad_cases[] = {
    {"stream without [DONE]",
     CHUNK("{\"content\":\"Hel\"}", "null") CHUNK("{}", "\"stop\""),
     200,
     0,
     BH_EREPLY,
     0,
     {"the reply ended before its final 'data: [DONE]' (connection cut?)"},
     NULL},
    {"stream cut inside an event",
     CHUNK("{\"content\":\"Hel\"}", "null") "data: {\"cho",
     200,
     0,
     BH_EREPLY,
     0,
     {"ended before its final 'data: [DONE]'"},
     NULL},
    {"empty 200 body", "", 200, 0, BH_EREPLY, 0, {"ended before its final 'data: [DONE]'"}, NULL},
    {"error event mid-stream",
     CHUNK("{\"content\":\"Hel\"}", "null") "data: " ERR("boom", "server_error",
                                                         "null") "\n\n" DONE,
     200,
     0,
     BH_EREPLY,
     0,
     {"the server reported an error mid-stream: boom"},
     "boom"},
    {"an event that is not JSON",
     CHUNK("{\"content\":\"a\"}", "null") "data: {oops\n\n" DONE,
     200,
     0,
     BH_EREPLY,
     0,
     {"event 2 of the reply stream is not a JSON object (invalid JSON)", "'openai' API"},
     NULL},
    {"content that is not a string",
     CHUNK("{\"content\":7}", "null") DONE,
     200,
     0,
     BH_EREPLY,
     0,
     {"'choices[0].delta.content' in event 1 of the reply is not a string"},
     NULL},
    {"a NUL in content",
     CHUNK("{\"content\":\"a\\u0000\"}", "null") DONE,
     200,
     0,
     BH_EREPLY,
     0,
     {"NUL character (\\u0000) in event 1"},
     NULL},
    {"an HTML page behind 200",
     "<html>hi</html>",
     200,
     0,
     BH_EREPLY,
     0,
     {"neither an event stream nor a JSON object"},
     NULL},
    {"a whole reply without choices",
     "{\"model\":\"m\"}",
     200,
     0,
     BH_EREPLY,
     0,
     {"no 'choices'"},
     NULL},
    {"401 bad key",
     ERR("Incorrect API key provided: sk-...", "invalid_request_error", "\"invalid_api_key\""),
     401,
     0,
     BH_EREPLY,
     0,
     {"not authorized (401): Incorrect API key provided", "api_key_env names a variable"},
     "Incorrect API key provided: sk-..."},
    {"429 rate limit",
     ERR("Rate limit reached for requests", "requests", "\"rate_limit_exceeded\""),
     429,
     0,
     BH_EREPLY,
     0,
     {"rate limited (429): Rate limit reached", "lower max_concurrency"},
     NULL},
    {"429 quota",
     ERR("You exceeded your current quota", "insufficient_quota", "\"insufficient_quota\""),
     429,
     0,
     BH_EREPLY,
     0,
     {"quota exhausted (429)", "waiting will not help"},
     NULL},
    {"400 context length",
     ERR("This model's maximum context length is 8192 tokens", "invalid_request_error",
         "\"context_length_exceeded\""),
     400,
     0,
     BH_EREPLY,
     0,
     {"the prompt is too long for the model (400): This model's maximum", "shorten the input"},
     NULL},
    {"400 context length from llama-server",
     "{\"error\":{\"code\":400,\"message\":\"request (9000 tokens) exceeds the available context "
     "size\","
     "\"type\":\"exceed_context_size_error\",\"n_prompt_tokens\":9000,\"n_ctx\":4096}}",
     400,
     0,
     BH_EREPLY,
     0,
     {"the prompt is too long for the model (400)", "9000 prompt tokens, context (n_ctx) 4096",
      "llama-server -c"},
     NULL},
    {"400 other",
     ERR("Invalid value for 'temperature'", "invalid_request_error", "null"),
     400,
     0,
     BH_EREPLY,
     0,
     {"the server rejected the request (400): Invalid value for 'temperature'"},
     NULL},
    {"404 model",
     ERR("The model `gpt-9` does not exist", "invalid_request_error", "\"model_not_found\""),
     404,
     0,
     BH_EREPLY,
     0,
     {"model not found (404): The model `gpt-9` does not exist", "GET /v1/models"},
     NULL},
    {"404 model from ollama /v1",
     ERR("model \\\"qwen9\\\" not found, try pulling it first", "api_error", "null"),
     404,
     0,
     BH_EREPLY,
     0,
     {"model not found (404)"},
     NULL},
    {"404 page of a wrong url",
     "404 page not found",
     404,
     0,
     BH_EREPLY,
     0,
     {"not found (404): 404 page not found", "appends /v1/chat/completions"},
     "404 page not found"},
    {"503 HTML page",
     "<html><body>Service Unavailable</body></html>",
     503,
     0,
     BH_EREPLY,
     0,
     {"server overloaded or unavailable (503): <html><body>Service Unavailable",
      "lower max_concurrency"},
     NULL},
    {"500 empty body",
     "",
     500,
     0,
     BH_EREPLY,
     0,
     {"the server failed (500): (empty body)"},
     "(empty body)"},
    {"418 unknown status",
     ERR("teapot", "x", "null"),
     418,
     0,
     BH_EREPLY,
     0,
     {"HTTP 418: teapot"},
     NULL},
    {"content cap", TEXT_STREAM, 200, 4, BH_ETOOBIG, 1, {"the reply exceeds 4 bytes"}, NULL},
    {"thinking cap",
     REASONING_STREAM,
     200,
     8,
     BH_ETOOBIG,
     1,
     {"the reply's thinking exceeds 8 bytes"},
     NULL},
    {"arguments cap",
     TOOL_STREAM,
     200,
     10,
     BH_ETOOBIG,
     1,
     {"the arguments of tool call 'lookup_order' exceed 10 bytes"},
     NULL},
};

static void check_bad(const struct bad_case *c, const struct prov_outcome *o, int how)
{
    if (o->rc != c->rc)
        fail_msg("%s (chunking %d): rc %d, want %d: %s", c->name, how, o->rc, c->rc, o->err.msg);
    assert_int_equal(o->at_feed, c->at_feed);
    for (size_t j = 0; j < 3 && c->msg[j]; j++)
        if (!strstr(o->err.msg, c->msg[j]))
            fail_msg("%s: message '%s' lacks '%s'", c->name, o->err.msg, c->msg[j]);
    assert_null(o->r.content);
    assert_null(o->r.tool_calls);
    if (c->server_text)
        assert_string_equal(o->r.error, c->server_text);
}

static void failing_replies_give_their_errors_in_any_chunking(void **state)
{
    (void)state;
    for (size_t i = 0; i < BH_NELEM(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        uint32_t seed = 0xbad00000u + (uint32_t)i;
        for (int k = 0; k < 202; k++) {
            enum prov_chunking how = k < 2 ? (enum prov_chunking)k : PF_RANDOM;
            struct prov_outcome o;
            run(c->body, strlen(c->body), c->status, c->max ? c->max : 1 << 20, how,
                pf_rng_next(&seed), &o);
            check_bad(c, &o, how);
            prov_reply_release(&o.r);
        }
    }
}

static void a_spent_quota_is_not_worth_a_retry_but_a_rate_limit_is(void **state)
{
    (void)state;
    static const char quota[] = "{\"error\":{\"message\":\"You exceeded your current quota\","
                                "\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}";
    static const char rate[] = "{\"error\":{\"message\":\"Rate limit reached\","
                               "\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}";
    struct prov_outcome o;
    run(quota, strlen(quota), 429, 1 << 20, PF_WHOLE, 1, &o);
    assert_int_equal(o.rc, BH_EREPLY);
    assert_int_equal(o.r.transient, 0);
    prov_reply_release(&o.r);
    run(rate, strlen(rate), 429, 1 << 20, PF_WHOLE, 1, &o);
    assert_int_equal(o.rc, BH_EREPLY);
    assert_int_equal(o.r.transient, 1);
    prov_reply_release(&o.r);
    static const char cut[] = "data: {\"choices\":[]}\n\n"; /* no [DONE] */
    run(cut, strlen(cut), 200, 1 << 20, PF_WHOLE, 1, &o);
    assert_int_equal(o.rc, BH_EREPLY);
    assert_int_equal(o.r.transient, 1);
    prov_reply_release(&o.r);
}

static void an_overlong_event_fails_the_feed(void **state)
{
    (void)state;
    size_t n = 200 << 10; /* past 6 x 1 + 64 KiB without a line end */
    char *big = malloc(n);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', n - 6);
    struct prov_outcome o;
    run(big, n, 200, 1, PF_WHOLE, 0, &o);
    assert_int_equal(o.rc, BH_ETOOBIG);
    assert_true(o.at_feed);
    assert_non_null(strstr(o.err.msg, "a line of the event stream exceeds"));
    free(big);
}

static void events_after_done_are_ignored(void **state)
{
    (void)state;
    static const char body[] = CHUNK("{\"content\":\"a\"}", "null")
        DONE CHUNK("{\"content\":\"b\"}", "null") "data: {oops\n\n";
    struct prov_outcome o;
    run(body, strlen(body), 200, 0, PF_WHOLE, 0, &o);
    assert_int_equal(o.rc, 0);
    assert_string_equal(o.r.content, "a");
    prov_reply_release(&o.r);
}

/* A model's malformed call does not fail the reply: the call is kept with
 * NULL arguments (the agent loop tells the model), and goes back as "{}". */
static void malformed_arguments_keep_the_call_without_them(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        CALL_FIRST(0, "call_abc", "lookup_order") CALL_ARGS(0, "{\\\"order_")
            CHUNK("{}", "\"tool_calls\"") DONE,
        CALL_FIRST(0, "call_abc", "lookup_order") CALL_ARGS(0, "[1]") DONE,
    };
    for (size_t i = 0; i < 2; i++) {
        for (int how = PF_WHOLE; how <= PF_BYTES; how++) {
            struct prov_outcome o;
            run(bodies[i], strlen(bodies[i]), 200, 0, (enum prov_chunking)how, 0, &o);
            assert_int_equal(o.rc, 0);
            assert_int_equal(o.r.n_tool_calls, 1);
            assert_string_equal(o.r.tool_calls[0].name, "lookup_order");
            assert_string_equal(o.r.tool_calls[0].id, "call_abc");
            assert_null(o.r.tool_calls[0].arguments_json);
            struct prov_msg m = {
                .role = "assistant", .tool_calls = o.r.tool_calls, .n_tool_calls = 1};
            struct prov_chat c = {.model = "m", .msgs = &m, .n_msgs = 1};
            char *body = NULL;
            size_t len = 0;
            struct bh_err err = {0};
            assert_int_equal(prov_openai.chat_body(&c, &body, &len, &err), 0);
            assert_non_null(strstr(body, "\"arguments\":\"{}\""));
            free(body);
            prov_reply_release(&o.r);
        }
    }
}

/* ---- request bodies ---- */

static json_t *body_of(const struct prov_chat *c)
{
    char *body = NULL;
    size_t len = 0;
    struct bh_err err = {0};
    if (prov_find("openai")->chat_body(c, &body, &len, &err))
        fail_msg("chat_body: %s", err.msg);
    assert_int_equal(len, strlen(body));
    assert_null(strchr(body, '\n'));
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j)
        fail_msg("body is not JSON: %s: %s", je.text, body);
    free(body);
    return j;
}

static const char *str_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("'%s' is not a string", key);
    return json_string_value(v);
}

static const struct prov_tool_call history_calls[] = {
    {"call_abc", "lookup_order", "{\"order_id\":\"A17\"}"},
};

static const struct prov_msg history[] = {
    {.role = "system", .content = "You are terse."},
    {.role = "user", .content = "Status of order A17?"},
    {.role = "assistant", .content = "", .tool_calls = history_calls, .n_tool_calls = 1},
    {.role = "tool",
     .content = "{\"status\":\"shipped\"}",
     .tool_call_id = "call_abc",
     .tool_name = "lookup_order"},
};

static void body_sends_history_with_arguments_as_a_string(void **state)
{
    (void)state;
    struct prov_chat c = {.model = "gpt-4o-mini", .msgs = history, .n_msgs = 4, .stream = 1};
    json_t *j = body_of(&c);
    json_t *msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(str_at(json_array_get(msgs, 0), "role"), "system");
    assert_string_equal(str_at(json_array_get(msgs, 1), "content"), "Status of order A17?");
    json_t *a = json_array_get(msgs, 2);
    assert_true(json_is_null(json_object_get(a, "content")));
    json_t *tc = json_array_get(json_object_get(a, "tool_calls"), 0);
    assert_string_equal(str_at(tc, "id"), "call_abc");
    assert_string_equal(str_at(tc, "type"), "function");
    json_t *f = json_object_get(tc, "function");
    assert_string_equal(str_at(f, "name"), "lookup_order");
    assert_string_equal(str_at(f, "arguments"), "{\"order_id\":\"A17\"}"); /* a string */
    json_t *t = json_array_get(msgs, 3);
    assert_string_equal(str_at(t, "role"), "tool");
    assert_string_equal(str_at(t, "tool_call_id"), "call_abc");
    assert_string_equal(str_at(t, "content"), "{\"status\":\"shipped\"}");
    assert_true(json_is_true(json_object_get(j, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
    json_decref(j);
}

static void body_without_stream_has_no_stream_options_and_only_set_fields(void **state)
{
    (void)state;
    struct prov_chat c = {.model = "m", .msgs = history + 1, .n_msgs = 1};
    json_t *j = body_of(&c);
    assert_true(json_is_false(json_object_get(j, "stream")));
    assert_int_equal(json_object_size(j), 3); /* model, messages, stream */
    assert_int_equal(json_object_size(json_array_get(json_object_get(j, "messages"), 0)), 2);
    json_decref(j);
}

static void body_maps_options_and_leaves_out_the_rest(void **state)
{
    (void)state;
    struct prov_chat c = {.model = "m",
                          .msgs = history + 1,
                          .n_msgs = 1,
                          .options_json = "{\"temperature\":0,\"top_p\":0.5,\"seed\":42,"
                                          "\"num_predict\":512,\"stop\":[\"END\"],\"num_ctx\":8192,"
                                          "\"top_k\":3}",
                          .keep_alive = "10m",
                          .think = PROV_THINK_ON,
                          .truncate_off = 1};
    json_t *j = body_of(&c);
    assert_int_equal(json_integer_value(json_object_get(j, "temperature")), 0);
    assert_true(json_real_value(json_object_get(j, "top_p")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(j, "seed")), 42);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 512);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "stop"), 0)), "END");
    static const char *const absent[] = {"num_ctx",    "top_k", "options", "num_predict",
                                         "keep_alive", "think", "truncate"};
    for (size_t i = 0; i < BH_NELEM(absent); i++)
        if (json_object_get(j, absent[i]))
            fail_msg("'%s' should not be sent", absent[i]);
    json_decref(j);

    c.max_tokens = 64; /* wins over num_predict */
    j = body_of(&c);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 64);
    json_decref(j);

    c.max_tokens = 0;
    c.options_json = "{\"num_predict\":-1}"; /* Ollama's "no limit" */
    j = body_of(&c);
    assert_null(json_object_get(j, "max_tokens"));
    json_decref(j);
}

static void body_maps_format_and_passes_tools(void **state)
{
    (void)state;
    static const char tools[] =
        "[{\"type\":\"function\",\"function\":{\"name\":\"lookup_order\",\"description\":\"Find\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"order_id\":{\"type\":\"string\"}}}}}"
        "]";
    struct prov_chat c = {
        .model = "m", .msgs = history + 1, .n_msgs = 1, .format_json = "json", .tools_json = tools};
    json_t *j = body_of(&c);
    assert_string_equal(str_at(json_object_get(j, "response_format"), "type"), "json_object");
    json_t *t = json_array_get(json_object_get(j, "tools"), 0);
    assert_string_equal(str_at(json_object_get(t, "function"), "name"), "lookup_order");
    assert_non_null(json_object_get(json_object_get(t, "function"), "parameters"));
    json_decref(j);

    c.format_json = "{\"title\":\"verdict\",\"type\":\"object\",\"properties\":{\"ok\":{\"type\":"
                    "\"boolean\"}}}";
    j = body_of(&c);
    json_t *rf = json_object_get(j, "response_format");
    assert_string_equal(str_at(rf, "type"), "json_schema");
    assert_string_equal(str_at(json_object_get(rf, "json_schema"), "name"), "verdict");
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    assert_string_equal(str_at(schema, "type"), "object");
    json_decref(j);

    c.format_json = "\"json\"";
    j = body_of(&c);
    assert_string_equal(str_at(json_object_get(j, "response_format"), "type"), "json_object");
    json_decref(j);
}

static void body_refuses_what_it_cannot_send(void **state)
{
    (void)state;
    static const struct prov_tool_call no_id[] = {{NULL, "f", "{}"}};
    static const struct prov_msg tool_without_id[] = {{.role = "tool", .content = "x"}};
    static const struct prov_msg call_without_id[] = {
        {.role = "assistant", .tool_calls = no_id, .n_tool_calls = 1}};
    static const struct prov_msg user[] = {{.role = "user", .content = "hi"}};
    static const struct {
        const struct prov_msg *msgs;
        const char *options, *tools, *format, *msg;
    } cases[] = {
        {tool_without_id, NULL, NULL, NULL, "message 1 is a tool result without tool_call_id"},
        {call_without_id, NULL, NULL, NULL, "tool call 1 of message 1 has no id"},
        {user, "{\"temperature\":", NULL, NULL, "the options is not valid JSON"},
        {user, "[1]", NULL, NULL, "the options must be a JSON object"},
        {user, "{\"temperature\":\"hot\"}", NULL, NULL, "option 'temperature' has the wrong type"},
        {user, NULL, "{}", NULL, "the tools must be a JSON array"},
        {user, NULL, "[{\"type\":\"function\",\"function\":{}}]", NULL,
         "tool 1 is not {\"type\":\"function\""},
        {user, NULL, NULL, "[]", "the format (\"json\" or a JSON schema) must be a JSON object"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct prov_chat c = {.model = "m",
                              .msgs = cases[i].msgs,
                              .n_msgs = 1,
                              .options_json = cases[i].options,
                              .tools_json = cases[i].tools,
                              .format_json = cases[i].format};
        char *body = NULL;
        size_t len = 0;
        struct bh_err err = {0};
        assert_int_equal(prov_find("openai")->chat_body(&c, &body, &len, &err), BH_EINVAL);
        assert_null(body);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
    }
}

/* A reply's calls go back as they came: the agent loop's round trip. */
static void reply_calls_round_trip_into_the_next_request(void **state)
{
    (void)state;
    struct prov_outcome o;
    run(TOOL_STREAM, strlen(TOOL_STREAM), 200, 0, PF_WHOLE, 0, &o);
    assert_int_equal(o.rc, 0);
    struct prov_msg msgs[] = {
        {.role = "assistant",
         .content = o.r.content,
         .tool_calls = o.r.tool_calls,
         .n_tool_calls = o.r.n_tool_calls},
        {.role = "tool", .content = "ok", .tool_call_id = o.r.tool_calls[0].id},
    };
    struct prov_chat c = {.model = "m", .msgs = msgs, .n_msgs = 2};
    json_t *j = body_of(&c);
    json_t *m = json_array_get(json_object_get(j, "messages"), 0);
    json_t *f = json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "function");
    assert_string_equal(str_at(f, "arguments"), "{\"order_id\":\"A17\"}");
    assert_string_equal(str_at(json_array_get(json_object_get(j, "messages"), 1), "tool_call_id"),
                        "call_abc");
    json_decref(j);
    prov_reply_release(&o.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replies_are_the_same_whole_bytewise_and_in_200_random_chunkings),
        cmocka_unit_test(failing_replies_give_their_errors_in_any_chunking),
        cmocka_unit_test(a_spent_quota_is_not_worth_a_retry_but_a_rate_limit_is),
        cmocka_unit_test(an_overlong_event_fails_the_feed),
        cmocka_unit_test(events_after_done_are_ignored),
        cmocka_unit_test(malformed_arguments_keep_the_call_without_them),
        cmocka_unit_test(body_sends_history_with_arguments_as_a_string),
        cmocka_unit_test(body_without_stream_has_no_stream_options_and_only_set_fields),
        cmocka_unit_test(body_maps_options_and_leaves_out_the_rest),
        cmocka_unit_test(body_maps_format_and_passes_tools),
        cmocka_unit_test(body_refuses_what_it_cannot_send),
        cmocka_unit_test(reply_calls_round_trip_into_the_next_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
