/* test_anthropic.c — the Anthropic messages dialect: named-event streams and
 * whole messages fed whole, byte by byte and in 200 random chunkings, which
 * must all give the same reply or error; error bodies per status; request
 * bodies parsed back with jansson (system top-level, tool_result blocks,
 * merged turns). Fixtures follow llm-apis.md section 3. */
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

#define EV(name, data) "event: " name "\ndata: " data "\n\n"

#define START                                                                                      \
    EV("message_start",                                                                            \
       "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XYZ\",\"type\":\"message\","       \
       "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":"    \
       "null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":410,\"output_tokens\":1}}}")
#define BLOCK_START(i, block)                                                                      \
    EV("content_block_start",                                                                      \
       "{\"type\":\"content_block_start\",\"index\":" #i ",\"content_block\":" block "}")
#define DELTA(i, delta)                                                                            \
    EV("content_block_delta",                                                                      \
       "{\"type\":\"content_block_delta\",\"index\":" #i ",\"delta\":" delta "}")
#define TEXT(i, t) DELTA(i, "{\"type\":\"text_delta\",\"text\":\"" t "\"}")
#define JSON_PART(i, t) DELTA(i, "{\"type\":\"input_json_delta\",\"partial_json\":\"" t "\"}")
#define BLOCK_STOP(i) EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":" #i "}")
#define MSG_DELTA(reason, out)                                                                     \
    EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" reason         \
                        "\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":" #out "}}")
#define STOP EV("message_stop", "{\"type\":\"message_stop\"}")
#define PING EV("ping", "{\"type\":\"ping\"}")
#define TOOL_USE(id, name)                                                                         \
    "{\"type\":\"tool_use\",\"id\":\"" id "\",\"name\":\"" name "\",\"input\":{}}"

/* The stream of llm-apis.md 3.3. */
#define TOOL_STREAM                                                                                \
    START BLOCK_START(0, "{\"type\":\"text\",\"text\":\"\"}") PING TEXT(0, "Let me check.")        \
        BLOCK_STOP(0) BLOCK_START(1, TOOL_USE("toolu_01A", "lookup_order"))                        \
            JSON_PART(1, "{\\\"order_id\\\": \\\"A1") JSON_PART(1, "7\\\"}") BLOCK_STOP(1)         \
                MSG_DELTA("tool_use", 58) STOP

#define THINKING_STREAM                                                                            \
    START BLOCK_START(0, "{\"type\":\"thinking\",\"thinking\":\"\"}")                              \
        DELTA(0, "{\"type\":\"thinking_delta\",\"thinking\":\"Hmm, \"}")                           \
            DELTA(0, "{\"type\":\"thinking_delta\",\"thinking\":\"easy.\"}")                       \
                DELTA(0, "{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAh==\"}")          \
                    BLOCK_STOP(0) BLOCK_START(1, "{\"type\":\"text\",\"text\":\"\"}") TEXT(1, "4") \
                        TEXT(1, "2") BLOCK_STOP(1) MSG_DELTA("end_turn", 20)                       \
                            MSG_DELTA("end_turn", 25) STOP

#define WHOLE_MESSAGE                                                                              \
    "{\"id\":\"msg_01XYZ\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"                 \
    "\"claude-sonnet-4-5\",\"content\":[{\"type\":\"text\",\"text\":\"Let me check.\"},"           \
    "{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"lookup_order\",\"input\":"             \
    "{\"order_id\":\"A17\"}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":"      \
    "{\"input_tokens\":410,\"output_tokens\":58,\"cache_creation_input_tokens\":0,"                \
    "\"cache_read_input_tokens\":0}}"

#define ERROR_BODY(type, msg)                                                                      \
    "{\"type\":\"error\",\"error\":{\"type\":\"" type "\",\"message\":\"" msg "\"},"               \
    "\"request_id\":\"req_011C\"}"

static void run(const char *body, size_t len, long status, size_t max, enum prov_chunking how,
                uint32_t seed, struct prov_outcome *out)
{
    pf_run("anthropic", body, len, status, max, how, seed, out);
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
    struct call calls[2];
};

static const struct ok_case ok_cases[] = {
    {"text then a tool_use in fragments",
     TOOL_STREAM,
     "Let me check.",
     NULL,
     "claude-sonnet-4-5",
     "tool_use",
     410,
     58,
     {{"toolu_01A", "lookup_order", "{\"order_id\":\"A17\"}"}}},
    {"thinking, signature ignored, cumulative output tokens",
     THINKING_STREAM,
     "42",
     "Hmm, easy.",
     "claude-sonnet-4-5",
     "end_turn",
     410,
     25,
     {{0}}},
    {"tool_use with no input and an empty fragment",
     START BLOCK_START(0, TOOL_USE("toolu_1", "now")) JSON_PART(0, "") BLOCK_STOP(0)
         MSG_DELTA("tool_use", 3) STOP,
     "",
     NULL,
     "claude-sonnet-4-5",
     "tool_use",
     410,
     3,
     {{"toolu_1", "now", "{}"}}},
    {"two tool_use blocks",
     START BLOCK_START(0, TOOL_USE("toolu_1", "a")) JSON_PART(0, "{\\\"x\\\":1}") BLOCK_STOP(0)
         BLOCK_START(1, TOOL_USE("toolu_2", "b")) JSON_PART(1, "{\\\"y\\\":") JSON_PART(1, "[1,2]}")
             BLOCK_STOP(1) MSG_DELTA("tool_use", 9) STOP,
     "",
     NULL,
     "claude-sonnet-4-5",
     "tool_use",
     410,
     9,
     {{"toolu_1", "a", "{\"x\":1}"}, {"toolu_2", "b", "{\"y\":[1,2]}"}}},
    {"unknown events and blocks are ignored",
     START EV("future_event", "{\"type\":\"future_event\",\"x\":1}")
         BLOCK_START(0, "{\"type\":\"redacted_thinking\",\"data\":\"abc\"}") BLOCK_STOP(0)
             BLOCK_START(1, "{\"type\":\"text\",\"text\":\"\"}") TEXT(1, "ok")
                 DELTA(1, "{\"type\":\"future_delta\",\"v\":1}") BLOCK_STOP(1)
                     PING MSG_DELTA("end_turn", 2) STOP,
     "ok",
     NULL,
     "claude-sonnet-4-5",
     "end_turn",
     410,
     2,
     {{0}}},
    {"events without event lines",
     "data: "
     "{\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n"
     "data: "
     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
     "\"x\"}}\n\n"
     "data: {\"type\":\"message_stop\"}\n\n",
     "x",
     NULL,
     "m",
     NULL,
     3,
     0,
     {{0}}},
    {"CRLF stream",
     "event: message_start\r\ndata: "
     "{\"type\":\"message_start\",\"message\":{\"model\":\"m\"}}\r\n\r\n"
     "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
     "{\"type\":\"text_delta\",\"text\":\"y\"}}\r\n\r\nevent: message_stop\r\ndata: {\"type\":"
     "\"message_stop\"}\r\n\r\n",
     "y",
     NULL,
     "m",
     NULL,
     0,
     0,
     {{0}}},
    {"cached input counts in the prompt",
     EV("message_start", "{\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":"
                         "{\"input_tokens\":10,\"cache_creation_input_tokens\":100,"
                         "\"cache_read_input_tokens\":1000,\"output_tokens\":1}}}") STOP,
     "",
     NULL,
     "m",
     NULL,
     1110,
     1,
     {{0}}},
    {"whole message",
     WHOLE_MESSAGE,
     "Let me check.",
     NULL,
     "claude-sonnet-4-5",
     "tool_use",
     410,
     58,
     {{"toolu_01A", "lookup_order", "{\"order_id\":\"A17\"}"}}},
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
    assert_string_equal(o->r.model, c->model);
    if (c->done_reason)
        assert_string_equal(o->r.done_reason, c->done_reason);
    else
        assert_null(o->r.done_reason);
    assert_int_equal(o->r.prompt_tokens, c->prompt_tokens);
    assert_int_equal(o->r.output_tokens, c->output_tokens);
    size_t n = 0;
    while (n < 2 && c->calls[n].name)
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
        uint32_t seed = 0xc1a0de00u + (uint32_t)i;
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
    size_t max;
    int rc;
    int at_feed;
    const char *msg[3];
    const char *server_text;
};

static const struct bad_case bad_cases[] = {
    {"stream without message_stop",
     START TEXT(0, "Hel") MSG_DELTA("end_turn", 2),
     200,
     0,
     BH_EREPLY,
     0,
     {"the reply ended before its final event (message_stop) (connection cut?)"},
     NULL},
    {"stream cut inside an event",
     START "event: content_block_delta\ndata: {\"ty",
     200,
     0,
     BH_EREPLY,
     0,
     {"ended before its final event (message_stop)"},
     NULL},
    {"error event mid-stream",
     START TEXT(0, "Hel") EV("error", ERROR_BODY("overloaded_error", "Overloaded")) STOP,
     200,
     0,
     BH_EREPLY,
     0,
     {"the server reported an error mid-stream (overloaded_error): Overloaded", "(not your quota)"},
     "Overloaded"},
    {"input_json_delta for a block never started",
     START JSON_PART(3, "{}") STOP,
     200,
     0,
     BH_EREPLY,
     0,
     {"input_json_delta for a block that is not an open tool_use in event 2"},
     NULL},
    {"a block without an index",
     START EV("content_block_delta", "{\"type\":\"content_block_delta\",\"delta\":{}}") STOP,
     200,
     0,
     BH_EREPLY,
     0,
     {"a content block without an index in event 2", "'anthropic' API"},
     NULL},
    {"invalid JSON in an event",
     START "event: message_delta\ndata: {oops\n\n" STOP,
     200,
     0,
     BH_EREPLY,
     0,
     {"invalid JSON in event 2 of the reply stream"},
     NULL},
    {"a NUL in text",
     START TEXT(0, "a\\u0000") STOP,
     200,
     0,
     BH_EREPLY,
     0,
     {"NUL character (\\u0000) in event 2"},
     NULL},
    {"an HTML page behind 200",
     "<html>hi</html>",
     200,
     0,
     BH_EREPLY,
     0,
     {"neither an event stream nor a message"},
     NULL},
    {"error object behind 200",
     ERROR_BODY("api_error", "Internal server error"),
     200,
     0,
     BH_EREPLY,
     0,
     {"the server reported an error (api_error): Internal server error"},
     NULL},
    {"529 overloaded",
     ERROR_BODY("overloaded_error", "Overloaded"),
     529,
     0,
     BH_EREPLY,
     0,
     {"the service is overloaded (529): Overloaded", "not your quota"},
     "Overloaded"},
    {"401",
     ERROR_BODY("authentication_error", "invalid x-api-key"),
     401,
     0,
     BH_EREPLY,
     0,
     {"not authorized (401): invalid x-api-key", "api_key_env"},
     NULL},
    {"429",
     ERROR_BODY("rate_limit_error", "Number of request tokens has exceeded your rate limit"),
     429,
     0,
     BH_EREPLY,
     0,
     {"rate limited (429): Number of request tokens", "lower max_concurrency"},
     NULL},
    {"400 prompt too long",
     ERROR_BODY("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
     400,
     0,
     BH_EREPLY,
     0,
     {"the prompt is too long for the model (400): prompt is too long"},
     NULL},
    {"400 other",
     ERROR_BODY("invalid_request_error", "max_tokens: Field required"),
     400,
     0,
     BH_EREPLY,
     0,
     {"the server rejected the request (400): max_tokens: Field required"},
     NULL},
    {"402",
     ERROR_BODY("billing_error", "credit balance too low"),
     402,
     0,
     BH_EREPLY,
     0,
     {"billing problem (402)"},
     NULL},
    {"404",
     ERROR_BODY("not_found_error", "model: claude-9"),
     404,
     0,
     BH_EREPLY,
     0,
     {"not found (404): model: claude-9", "appends /v1/messages"},
     NULL},
    {"413 from the proxy",
     "<html>Request Entity Too Large</html>",
     413,
     0,
     BH_EREPLY,
     0,
     {"the request is too large (413): <html>Request Entity Too Large</html>"},
     NULL},
    {"500",
     ERROR_BODY("api_error", "Internal server error"),
     500,
     0,
     BH_EREPLY,
     0,
     {"the server failed (500): Internal server error"},
     NULL},
    {"text cap", TOOL_STREAM, 200, 5, BH_ETOOBIG, 1, {"the reply exceeds 5 bytes"}, NULL},
    {"input cap",
     START BLOCK_START(0, TOOL_USE("t", "f")) JSON_PART(0, "{\\\"aaaaaaaaaa\\\":1}") STOP,
     200,
     8,
     BH_ETOOBIG,
     1,
     {"the arguments of tool call 'f' exceed 8 bytes"},
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
        uint32_t seed = 0xdead0000u + (uint32_t)i;
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

/* ---- request bodies ---- */

static json_t *body_of(const struct prov_chat *c)
{
    char *body = NULL;
    size_t len = 0;
    struct bh_err err = {0};
    if (prov_find("anthropic")->chat_body(c, &body, &len, &err))
        fail_msg("chat_body: %s", err.msg);
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

static const struct prov_tool_call calls[] = {
    {"toolu_1", "lookup_order", "{\"order_id\":\"A17\"}"},
    {"toolu_2", "weather", "{\"city\":\"Oslo\"}"},
};

static const struct prov_msg history[] = {
    {.role = "system", .content = "You are terse."},
    {.role = "user", .content = "Status of order A17, and the weather?"},
    {.role = "assistant", .content = "Checking.", .tool_calls = calls, .n_tool_calls = 2},
    {.role = "tool", .content = "{\"status\":\"shipped\"}", .tool_call_id = "toolu_1"},
    {.role = "tool", .content = "sunny", .tool_call_id = "toolu_2", .tool_name = "weather"},
    {.role = "user", .content = "Thanks. Be brief."},
    {.role = "system", .content = "Answer in English."},
};

/* A model's malformed call does not fail the reply: the tool_use is kept with
 * NULL arguments (the agent loop tells the model), and goes back as {}. */
static void malformed_input_keeps_the_call_without_it(void **state)
{
    (void)state;
    static const char body[] = START BLOCK_START(1, TOOL_USE("toolu_01A", "lookup_order"))
        JSON_PART(1, "{\\\"order_id\\\": \\\"A1") BLOCK_STOP(1) STOP;
    for (int how = PF_WHOLE; how <= PF_BYTES; how++) {
        struct prov_outcome o;
        run(body, strlen(body), 200, 0, (enum prov_chunking)how, 0, &o);
        assert_int_equal(o.rc, 0);
        assert_int_equal(o.r.n_tool_calls, 1);
        assert_string_equal(o.r.tool_calls[0].id, "toolu_01A");
        assert_null(o.r.tool_calls[0].arguments_json);
        struct prov_msg m[] = {
            {.role = "user", .content = "hi"},
            {.role = "assistant", .tool_calls = o.r.tool_calls, .n_tool_calls = 1}};
        struct prov_chat c = {.model = "m", .msgs = m, .n_msgs = 2};
        char *out = NULL;
        size_t len = 0;
        struct bh_err err = {0};
        assert_int_equal(prov_anthropic.chat_body(&c, &out, &len, &err), 0);
        assert_non_null(strstr(out, "\"input\":{}"));
        free(out);
        prov_reply_release(&o.r);
    }
}

static void body_puts_system_on_top_and_tool_results_in_one_user_turn(void **state)
{
    (void)state;
    struct prov_chat c = {.model = "claude-sonnet-4-5", .msgs = history, .n_msgs = 7, .stream = 1};
    json_t *j = body_of(&c);
    assert_string_equal(str_at(j, "system"), "You are terse.\n\nAnswer in English.");
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), PROV_DEFAULT_MAX_TOKENS);
    assert_true(json_is_true(json_object_get(j, "stream")));
    json_t *msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 3); /* user, assistant, user */

    json_t *u = json_array_get(msgs, 0);
    assert_string_equal(str_at(u, "role"), "user");
    assert_string_equal(str_at(json_array_get(json_object_get(u, "content"), 0), "text"),
                        "Status of order A17, and the weather?");

    json_t *a = json_array_get(msgs, 1), *ac = json_object_get(a, "content");
    assert_string_equal(str_at(a, "role"), "assistant");
    assert_int_equal(json_array_size(ac), 3);
    assert_string_equal(str_at(json_array_get(ac, 0), "type"), "text");
    json_t *use = json_array_get(ac, 1);
    assert_string_equal(str_at(use, "type"), "tool_use");
    assert_string_equal(str_at(use, "id"), "toolu_1");
    assert_string_equal(str_at(use, "name"), "lookup_order");
    assert_string_equal(str_at(json_object_get(use, "input"), "order_id"), "A17"); /* an object */

    json_t *r = json_array_get(msgs, 2), *rc = json_object_get(r, "content");
    assert_string_equal(str_at(r, "role"), "user");
    assert_int_equal(json_array_size(rc), 3); /* both results, then the text */
    static const char *const ids[] = {"toolu_1", "toolu_2"};
    for (size_t i = 0; i < 2; i++) {
        json_t *b = json_array_get(rc, i);
        assert_string_equal(str_at(b, "type"), "tool_result");
        assert_string_equal(str_at(b, "tool_use_id"), ids[i]);
    }
    assert_string_equal(str_at(json_array_get(rc, 0), "content"), "{\"status\":\"shipped\"}");
    assert_string_equal(str_at(json_array_get(rc, 2), "text"), "Thanks. Be brief.");
    json_decref(j);
}

static void body_max_tokens_options_and_tools(void **state)
{
    (void)state;
    static const char tools[] =
        "[{\"type\":\"function\",\"function\":{\"name\":\"lookup_order\",\"description\":\"Find\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"order_id\":{\"type\":\"string\"}}}}}"
        ","
        "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]";
    struct prov_chat c = {.model = "m",
                          .msgs = history + 1,
                          .n_msgs = 1,
                          .options_json = "{\"temperature\":0.2,\"top_p\":0.9,\"top_k\":5,"
                                          "\"num_predict\":300,\"stop\":\"END\",\"seed\":7,"
                                          "\"num_ctx\":8192}",
                          .tools_json = tools,
                          .keep_alive = "5m",
                          .think = PROV_THINK_OFF};
    json_t *j = body_of(&c);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 300);
    assert_true(json_real_value(json_object_get(j, "temperature")) == 0.2);
    assert_int_equal(json_integer_value(json_object_get(j, "top_k")), 5);
    json_t *stops = json_object_get(j, "stop_sequences");
    assert_int_equal(json_array_size(stops), 1);
    assert_string_equal(json_string_value(json_array_get(stops, 0)), "END");
    static const char *const absent[] = {"seed",       "num_ctx", "stop",  "options",
                                         "keep_alive", "think",   "system"};
    for (size_t i = 0; i < BH_NELEM(absent); i++)
        if (json_object_get(j, absent[i]))
            fail_msg("'%s' should not be sent", absent[i]);
    json_t *t0 = json_array_get(json_object_get(j, "tools"), 0);
    assert_string_equal(str_at(t0, "name"), "lookup_order");
    assert_string_equal(str_at(t0, "description"), "Find");
    assert_non_null(json_object_get(json_object_get(t0, "input_schema"), "properties"));
    assert_null(json_object_get(t0, "function"));
    json_t *t1 = json_array_get(json_object_get(j, "tools"), 1);
    assert_string_equal(str_at(json_object_get(t1, "input_schema"), "type"), "object");
    json_decref(j);

    c.max_tokens = 99;
    j = body_of(&c);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 99);
    json_decref(j);
}

static void body_refuses_what_it_cannot_send(void **state)
{
    (void)state;
    static const struct prov_tool_call no_id[] = {{NULL, "f", "{}"}};
    static const struct prov_tool_call bad_args[] = {{"t1", "f", "[1]"}};
    static const struct prov_msg user[] = {{.role = "user", .content = "hi"}};
    static const struct prov_msg developer[] = {{.role = "developer", .content = "hi"}};
    static const struct prov_msg tool_without_id[] = {{.role = "tool", .content = "x"}};
    static const struct prov_msg call_without_id[] = {
        {.role = "assistant", .tool_calls = no_id, .n_tool_calls = 1}};
    static const struct prov_msg call_bad_args[] = {
        {.role = "assistant", .tool_calls = bad_args, .n_tool_calls = 1}};
    static const struct prov_msg bad_system[] = {{.role = "system", .content = "ok \xff"}};
    static const struct {
        const struct prov_msg *msgs;
        const char *format, *msg;
    } cases[] = {
        {user, "json", "the 'anthropic' provider has no JSON output mode"},
        {user, "{\"type\":\"object\"}", "leave out 'format'"},
        {developer, NULL,
         "message 1 has role 'developer' — the 'anthropic' provider knows system, user, assistant, "
         "tool"},
        {tool_without_id, NULL, "message 1 is a tool result without tool_call_id"},
        {call_without_id, NULL, "tool call 1 of message 1 has no id"},
        {call_bad_args, NULL, "the arguments of tool call 1 of message 1 must be a JSON object"},
        {bad_system, NULL, "the content of message 1 is not valid UTF-8 (byte 3)"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct prov_chat c = {
            .model = "m", .msgs = cases[i].msgs, .n_msgs = 1, .format_json = cases[i].format};
        char *body = NULL;
        size_t len = 0;
        struct bh_err err = {0};
        assert_int_equal(prov_find("anthropic")->chat_body(&c, &body, &len, &err), BH_EINVAL);
        assert_null(body);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replies_are_the_same_whole_bytewise_and_in_200_random_chunkings),
        cmocka_unit_test(failing_replies_give_their_errors_in_any_chunking),
        cmocka_unit_test(malformed_input_keeps_the_call_without_it),
        cmocka_unit_test(body_puts_system_on_top_and_tool_results_in_one_user_turn),
        cmocka_unit_test(body_max_tokens_options_and_tools),
        cmocka_unit_test(body_refuses_what_it_cannot_send),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
