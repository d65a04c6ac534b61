/* test_ollama.c — the provider table and the Ollama dialect: request bodies
 * parsed back with jansson, and replies fed whole, byte by byte and in random
 * chunkings, which must all give the same result. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "prov_feed.h"
#include "providers/prov.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

#define CHUNK1                                                                                     \
    "{\"model\":\"qwen3:8b\",\"created_at\":\"2025-07-07T20:22:19.1Z\","                           \
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\n"
#define CHUNK2                                                                                     \
    "{\"model\":\"qwen3:8b\",\"created_at\":\"2025-07-07T20:22:19.2Z\","                           \
    "\"message\":{\"role\":\"assistant\",\"content\":\"lo\"},\"done\":false}\n"
#define FINAL                                                                                      \
    "{\"model\":\"qwen3:8b\",\"created_at\":\"2025-07-07T20:22:19.3Z\","                           \
    "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"                         \
    "\"done_reason\":\"stop\",\"total_duration\":182242375,\"load_duration\":41295167,"            \
    "\"prompt_eval_count\":169,\"prompt_eval_duration\":24573166,\"eval_count\":15,"               \
    "\"eval_duration\":115959084}\n"
#define STREAM3 CHUNK1 CHUNK2 FINAL

#define SINGLE                                                                                     \
    "{\"model\":\"qwen3:8b\",\"created_at\":\"2025-07-07T20:22:19.3Z\","                           \
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hello there\"},\"done\":true,"              \
    "\"done_reason\":\"length\",\"total_duration\":5,\"load_duration\":4,"                         \
    "\"prompt_eval_count\":3,\"eval_count\":2}"

/* Feeds body in the chunking asked for, then finishes with status. */
static void run(const char *body, size_t len, long status, size_t max, enum prov_chunking how,
                uint32_t seed, struct prov_outcome *out)
{
    pf_run("ollama", body, len, status, max, how, seed, out);
}

/* ---- the provider table ---- */

static void provider_table_finds_each_dialect_and_only_known_names(void **state)
{
    (void)state;
    static const struct {
        const char *name, *path;
        enum prov_auth auth;
        const char *header; /* the first static header, or NULL */
    } want[] = {
        {"ollama", "/api/chat", PROV_AUTH_BEARER, NULL},
        {"openai", "/v1/chat/completions", PROV_AUTH_BEARER, NULL},
        {"anthropic", "/v1/messages", PROV_AUTH_X_API_KEY, "anthropic-version: 2023-06-01"},
    };
    assert_int_equal(prov_n_names, 3);
    for (size_t i = 0; i < 3; i++) {
        const struct prov_ops *o = prov_find(want[i].name);
        assert_non_null(o);
        assert_string_equal(o->name, want[i].name);
        assert_string_equal(o->chat_path, want[i].path);
        assert_int_equal(o->auth_style, want[i].auth);
        const char *h = o->headers ? o->headers[0] : NULL;
        if (want[i].header)
            assert_string_equal(h, want[i].header);
        else
            assert_null(h);
        assert_string_equal(prov_names[i], want[i].name);
    }
    assert_null(prov_find("Ollama"));
    assert_null(prov_find("claude"));
    assert_null(prov_find(NULL));
    for (size_t i = 0; i < prov_n_names; i++) {
        assert_non_null(prov_find(prov_names[i]));
        assert_string_equal(prov_find(prov_names[i])->name, prov_names[i]);
    }
}

/* The pipeline language accepts exactly the providers that exist. */
static void pipeline_providers_are_the_implemented_ones(void **state)
{
    (void)state;
    size_t n = 0;
    const char *const *names = pipe_provider_names(&n);
    assert_int_equal(n, prov_n_names);
    for (size_t i = 0; i < n; i++)
        assert_non_null(prov_find(names[i]));
}

static void reply_release_frees_and_zeroes(void **state)
{
    (void)state;
    struct prov_reply r = {0};
    r.content = strdup("x");
    r.done_reason = strdup("stop");
    r.error = strdup("e");
    r.remote_host = strdup("h");
    r.total_ns = 7;
    prov_reply_release(&r);
    assert_null(r.content);
    assert_null(r.remote_host);
    assert_int_equal(r.total_ns, 0);
    prov_reply_release(&r); /* twice is fine */
    prov_reply_release(NULL);
}

/* ---- streams that succeed ---- */

struct ok_case {
    const char *name;
    const char *body;
    const char *content;
    const char *done_reason; /* NULL: absent */
    int64_t prompt_tokens, output_tokens, load_ns, total_ns;
    const char *remote_host; /* NULL: absent */
};

static const struct ok_case ok_cases[] = {
    {"three chunks", STREAM3, "Hello", "stop", 169, 15, 41295167, 182242375, NULL},
    {"single object, no newline", SINGLE, "Hello there", "length", 3, 2, 4, 5, NULL},
    {"single object, newline", SINGLE "\n", "Hello there", "length", 3, 2, 4, 5, NULL},
    {"metrics absent", "{\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"done\":true}\n",
     "hi", NULL, 0, 0, 0, 0, NULL},
    {"metrics that are not counts read as 0",
     "{\"done\":true,\"eval_count\":-3,\"prompt_eval_count\":\"12\",\"total_duration\":1.5,"
     "\"load_duration\":null}",
     "", NULL, 0, 0, 0, 0, NULL},
    {"blank and CRLF lines ignored", "\n" CHUNK1 "\n\r\n  \n" CHUNK2 "\r\n\n" FINAL "\n\n", "Hello",
     "stop", 169, 15, 41295167, 182242375, NULL},
    {"unicode escapes decode to UTF-8",
     "{\"message\":{\"content\":\"caf\\u00e9 \\ud83d\\ude00 \\u003cb\\u003e\"},\"done\":false}\n"
     "{\"done\":true,\"done_reason\":\"stop\"}\n",
     "caf\xc3\xa9 \xf0\x9f\x98\x80 <b>", "stop", 0, 0, 0, 0, NULL},
    {"raw UTF-8 and escaped newline in content",
     "{\"message\":{\"content\":\"a\\nb \xc3\xa9\\\"q\\\"\"},\"done\":true}", "a\nb \xc3\xa9\"q\"",
     NULL, 0, 0, 0, 0, NULL},
    {"preload reply has empty content",
     "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
     "\"done_reason\":\"load\",\"done\":true}",
     "", "load", 0, 0, 0, 0, NULL},
    {"remote host is reported",
     "{\"message\":{\"content\":\"x\"},\"remote_host\":\"https://ollama.com:443\","
     "\"remote_model\":\"gpt-oss:120b\",\"done\":false}\n{\"done\":true}\n",
     "x", NULL, 0, 0, 0, 0, "https://ollama.com:443"},
};

static void check_ok(const struct ok_case *c, const struct prov_outcome *o, const char *how)
{
    if (o->rc != 0)
        fail_msg("%s (%s): rc %d: %s", c->name, how, o->rc, o->err.msg);
    assert_non_null(o->r.content);
    assert_string_equal(o->r.content, c->content);
    assert_int_equal(o->r.done, 1);
    if (c->done_reason)
        assert_string_equal(o->r.done_reason, c->done_reason);
    else
        assert_null(o->r.done_reason);
    assert_int_equal(o->r.prompt_tokens, c->prompt_tokens);
    assert_int_equal(o->r.output_tokens, c->output_tokens);
    assert_int_equal(o->r.load_ns, c->load_ns);
    assert_int_equal(o->r.total_ns, c->total_ns);
    assert_null(o->r.error);
    if (c->remote_host)
        assert_string_equal(o->r.remote_host, c->remote_host);
    else
        assert_null(o->r.remote_host);
}

static void stream_cases_give_the_same_reply_in_any_chunking(void **state)
{
    (void)state;
    for (size_t i = 0; i < BH_NELEM(ok_cases); i++) {
        const struct ok_case *c = &ok_cases[i];
        struct prov_outcome o;
        static const char *const hows[] = {"whole", "bytes", "random"};
        for (uint32_t k = 0; k < 22; k++) {
            enum prov_chunking how = k < 2 ? (enum prov_chunking)k : PF_RANDOM;
            run(c->body, strlen(c->body), 200, 1 << 20, how, 0x9e3779b9u + k, &o);
            check_ok(c, &o, hows[how]);
            prov_reply_release(&o.r);
        }
    }
}

static void three_chunk_stream_survives_200_random_chunkings(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    for (int i = 0; i < 200; i++) {
        struct prov_outcome o;
        run(STREAM3, strlen(STREAM3), 200, 0, PF_RANDOM, pf_rng_next(&seed), &o);
        check_ok(&ok_cases[0], &o, "random");
        prov_reply_release(&o.r);
    }
}

/* ---- streams that fail ---- */

struct bad_case {
    const char *name;
    const char *body;
    long status;
    size_t max; /* 0: 1 MiB */
    int rc;
    int at_feed;             /* 1: stream_feed must report it (a cap) */
    const char *msg[3];      /* substrings the message must hold */
    const char *server_text; /* r.error, or NULL */
};

static const struct bad_case bad_cases[] = {
    {"mid-stream error line",
     CHUNK1 "{\"error\":\"llama runner process has terminated: "
            "signal: killed\"}\n",
     200,
     0,
     BH_EREPLY,
     0,
     {"the server reported an error mid-stream: llama runner process has terminated"},
     "llama runner process has terminated: signal: killed"},
    {"stream cut before done",
     CHUNK1 CHUNK2,
     200,
     0,
     BH_EREPLY,
     0,
     {"the reply ended before its final chunk (connection cut?)"},
     NULL},
    {"stream cut inside a line",
     CHUNK1 "{\"model\":\"q",
     200,
     0,
     BH_EREPLY,
     0,
     {"the reply ended in the middle of line 2 (connection cut?)"},
     NULL},
    {"incomplete line that did end",
     CHUNK1 "{\"model\":\"q\n" FINAL,
     200,
     0,
     BH_EREPLY,
     0,
     {"invalid JSON in the reply at line 2"},
     NULL},
    {"NUL in content",
     "{\"message\":{\"content\":\"a\\u0000b\"},\"done\":true}\n",
     200,
     0,
     BH_EREPLY,
     0,
     {"NUL character (\\u0000) at line 1"},
     NULL},
    {"empty 200 body", "", 200, 0, BH_EREPLY, 0, {"ended before its final chunk"}, NULL},
    {"invalid JSON names its line",
     CHUNK1 "\n"
            "{\"message\":oops}\n" FINAL,
     200,
     0,
     BH_EREPLY,
     0,
     {"invalid JSON in the reply at line 3", "'ollama' API"},
     NULL},
    {"not an object",
     "[1,2]\n",
     200,
     0,
     BH_EREPLY,
     0,
     {"line 1 of the reply is not a JSON object"},
     NULL},
    {"content not a string",
     "{\"message\":{\"content\":5},\"done\":true}\n",
     200,
     0,
     BH_EREPLY,
     0,
     {"'message.content' at line 1"},
     NULL},
    {"404 model not found",
     "{\"error\":\"model 'llama9' not found\"}",
     404,
     0,
     BH_EREPLY,
     0,
     {"model not found (server said: model 'llama9' not found)", "run \"ollama pull llama9\""},
     "model 'llama9' not found"},
    {"404 from the scheduler",
     "{\"error\":\"model \\\"qwen3:8b\\\" not found, try pulling it "
     "first\"}\n",
     404,
     0,
     BH_EREPLY,
     0,
     {"ollama pull qwen3:8b\" on that machine"},
     NULL},
    {"404 with a name that is not a model name",
     "{\"error\":\"model 'a; rm -rf ~' not found\"}",
     404,
     0,
     BH_EREPLY,
     0,
     {"ollama pull <model>"},
     NULL},
    {"404 page of a wrong url",
     "404 page not found",
     404,
     0,
     BH_EREPLY,
     0,
     {"HTTP 404: 404 page not found", "base URL"},
     "404 page not found"},
    {"400",
     "{\"error\":\"model is required\"}",
     400,
     0,
     BH_EREPLY,
     0,
     {"the server rejected the request (400): model is required"},
     NULL},
    {"401",
     "{\"error\":\"unauthorized\",\"signin_url\":\"https://ollama.com/connect\"}",
     401,
     0,
     BH_EREPLY,
     0,
     {"not authorized (401): unauthorized", "api_key_env"},
     NULL},
    {"403 with an empty body",
     "",
     403,
     0,
     BH_EREPLY,
     0,
     {"not authorized (403): (empty body)"},
     "(empty body)"},
    {"429",
     "{\"error\":\"too many requests\"}",
     429,
     0,
     BH_EREPLY,
     0,
     {"rate limited (429): too many requests"},
     NULL},
    {"500",
     "{\"error\":\"llama runner process has terminated\"}",
     500,
     0,
     BH_EREPLY,
     0,
     {"the server failed (500): llama runner process has terminated"},
     NULL},
    {"503 busy",
     "{\"error\":\"server busy, please try again.  maximum pending requests "
     "exceeded\"}",
     503,
     0,
     BH_EREPLY,
     0,
     {"server busy (503): server busy, please try again", "max_concurrency"},
     NULL},
    {"502 HTML page is not reported as invalid JSON",
     "<html>\n<body>bad gateway</body>\n</html>\n",
     502,
     0,
     BH_EREPLY,
     0,
     {"HTTP 502: <html> <body>bad gateway</body> </html>"},
     NULL},
    {"error object with a message",
     "{\"error\":{\"message\":\"quota\"}}",
     429,
     0,
     BH_EREPLY,
     0,
     {"rate limited (429): quota"},
     "quota"},
    {"reply cap", STREAM3, 200, 4, BH_ETOOBIG, 1, {"the reply exceeds 4 bytes"}, NULL},
};

static void check_bad(const struct bad_case *c, const struct prov_outcome *o,
                      enum prov_chunking how)
{
    if (o->rc != c->rc)
        fail_msg("%s (chunking %d): rc %d, want %d: %s", c->name, how, o->rc, c->rc, o->err.msg);
    assert_int_equal(o->at_feed, c->at_feed);
    assert_int_equal(o->err.code, c->rc);
    for (size_t j = 0; j < 3 && c->msg[j]; j++)
        if (!strstr(o->err.msg, c->msg[j]))
            fail_msg("%s: message '%s' lacks '%s'", c->name, o->err.msg, c->msg[j]);
    assert_null(o->r.content);
    if (c->server_text)
        assert_string_equal(o->r.error, c->server_text);
}

static void failing_streams_give_their_errors_in_any_chunking(void **state)
{
    (void)state;
    for (size_t i = 0; i < BH_NELEM(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        for (uint32_t k = 0; k < 12u; k++) {
            enum prov_chunking how = k < 2 ? (enum prov_chunking)k : PF_RANDOM;
            struct prov_outcome o;
            run(c->body, strlen(c->body), c->status, c->max ? c->max : 1 << 20, how, 77 + k, &o);
            check_bad(c, &o, how);
            prov_reply_release(&o.r);
        }
    }
}

/* What a retry could fix and what it could not. */
static void failures_say_whether_a_retry_may_help(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        long status;
        int transient;
    } cases[] = {
        {CHUNK1, 200, 1},                           /* no final chunk */
        {CHUNK1 "{\"model\":\"q\",\"mess", 200, 1}, /* cut mid-line */
        {"{\"error\":\"server busy, please try again.\"}", 503, 1},
        {"{\"error\":\"boom\"}", 500, 0}, /* the same request fails the same way */
        {"{\"error\":\"bad gateway\"}", 502, 1},
        {"{\"error\":{\"message\":\"slow down\"}}", 429, 1},
        {"{\"error\":\"model 'x' not found\"}", 404, 0},
        {"{\"error\":\"bad\"}", 400, 0},
        {CHUNK1 "not json\n" FINAL, 200, 0}, /* invalid JSON */
        {CHUNK1 "{\"error\":\"an error was encountered\"}\n", 200, 0},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct prov_outcome o;
        run(cases[i].body, strlen(cases[i].body), cases[i].status, 1 << 20, PF_WHOLE, 1, &o);
        assert_int_equal(o.rc, BH_EREPLY);
        if (o.r.transient != cases[i].transient)
            fail_msg("case %zu (%s): transient %d, want %d", i, o.err.msg, o.r.transient,
                     cases[i].transient);
        prov_reply_release(&o.r);
    }
}

static void overlong_line_fails_the_feed(void **state)
{
    (void)state;
    size_t n = 200 << 10; /* more than 6 × 1 + 64 KiB, without a newline */
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    struct prov_outcome o;
    run(big, n, 200, 1, PF_WHOLE, 0, &o);
    assert_int_equal(o.rc, BH_ETOOBIG);
    assert_true(o.at_feed);
    assert_non_null(strstr(o.err.msg, "a line of the reply exceeds"));
    free(big);
}

static void server_text_is_capped_and_cleaned(void **state)
{
    (void)state;
    char body[6000];
    int n = snprintf(body, sizeof(body), "{\"error\":\"\\u001b[31mred\\u0007 ");
    memset(body + n, 'a', 5000);
    snprintf(body + n + 5000, sizeof(body) - (size_t)n - 5000, "\"}");
    struct prov_outcome o;
    run(body, strlen(body), 500, 0, PF_WHOLE, 0, &o);
    assert_int_equal(o.rc, BH_EREPLY);
    assert_null(strchr(o.err.msg, '\x1b'));
    assert_null(strchr(o.err.msg, '\a'));
    assert_non_null(strstr(o.err.msg, "the server failed (500): "));
    assert_non_null(strstr(o.err.msg, "[31mred  aaa"));
    assert_non_null(strstr(o.err.msg, "aaa..."));
    assert_true(strlen(o.r.error) < 200);
    assert_non_null(strstr(o.err.msg, "the server's log")); /* the hint survived the cap */
    prov_reply_release(&o.r);
}

static void cut_text_keeps_whole_utf8_characters(void **state)
{
    (void)state;
    /* 2-byte characters, so a byte cap would land inside one at some point */
    char body[2000] = "{\"error\":\"";
    for (int i = 0; i < 300; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "\"}");
    static const long statuses[] = {200, 500}; /* mid-stream and HTTP error paths */
    for (size_t k = 0; k < 2; k++) {
        long status = statuses[k];
        struct prov_outcome o;
        run(body, strlen(body), status, 0, PF_WHOLE, 0, &o);
        const char *e = strstr(o.r.error, "...");
        assert_non_null(e);
        size_t n = (size_t)(e - o.r.error);
        assert_int_equal(n % 2, 0);
        for (size_t i = 0; i < n; i += 2)
            assert_memory_equal(o.r.error + i, "\xc3\xa9", 2);
        prov_reply_release(&o.r);
    }
}

static void freeing_a_half_fed_stream_frees_everything(void **state)
{
    (void)state;
    const struct prov_ops *ops = prov_find("ollama");
    struct prov_stream *s = ops->stream_new(0);
    struct bh_err err = {0};
    static const char part[] = CHUNK1 "{\"error\":\"x\"}\n{\"mod";
    assert_int_equal(ops->stream_feed(s, part, sizeof(part) - 1, &err), 0);
    ops->stream_free(s); /* Asan's leak check sees the rest */
    ops->stream_free(NULL);
}

/* ---- request bodies ---- */

static json_t *body_of(const struct prov_chat *c)
{
    char *body = NULL;
    size_t len = 0;
    struct bh_err err = {0};
    if (prov_find("ollama")->chat_body(c, &body, &len, &err))
        fail_msg("chat_body: %s", err.msg);
    assert_int_equal(len, strlen(body));
    assert_null(strchr(body, '\n'));   /* compact: one line */
    assert_null(strstr(body, "\": ")); /* compact: no space after ':' */
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j)
        fail_msg("body is not JSON: %s: %s", je.text, body);
    free(body);
    return j;
}

static void chat_body_round_trips_messages(void **state)
{
    (void)state;
    static const struct prov_msg msgs[] = {
        {.role = "system", .content = "You are \"terse\".\nAnswer in one line."},
        {.role = "user",
         .content = "caf\xc3\xa9 \xf0\x9f\x98\x80 tab\there \\ back\x01slash </script>"},
        {.role = "assistant", .content = ""},
    };
    struct prov_chat c = {.model = "qwen3:8b", .msgs = msgs, .n_msgs = 3, .stream = 1};
    json_t *j = body_of(&c);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "qwen3:8b");
    assert_true(json_is_true(json_object_get(j, "stream")));
    json_t *arr = json_object_get(j, "messages");
    assert_int_equal(json_array_size(arr), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(arr, i);
        assert_int_equal(json_object_size(m), 2);
        assert_string_equal(json_string_value(json_object_get(m, "role")), msgs[i].role);
        assert_string_equal(json_string_value(json_object_get(m, "content")), msgs[i].content);
    }
    json_decref(j);
}

static void chat_body_without_stream_says_false_and_empty_messages_is_preload(void **state)
{
    (void)state;
    struct prov_chat c = {.model = "m", .msgs = NULL, .n_msgs = 0, .stream = 0};
    json_t *j = body_of(&c);
    assert_true(json_is_false(json_object_get(j, "stream")));
    assert_true(json_is_array(json_object_get(j, "messages")));
    assert_int_equal(json_array_size(json_object_get(j, "messages")), 0);
    assert_int_equal(json_object_size(j), 3);
    json_decref(j);
}

static void chat_body_refuses_invalid_utf8_and_missing_model(void **state)
{
    (void)state;
    static const struct {
        const char *model, *content, *msg;
    } cases[] = {
        {"m", "ok \xff no", "the content of message 2 is not valid UTF-8 (byte 3)"},
        {"m", "\xe0\x80\xaf overlong", "the content of message 2 is not valid UTF-8 (byte 0)"},
        {"m", "\xed\xa0\x80 surrogate", "the content of message 2 is not valid UTF-8 (byte 0)"},
        {"m", "cut \xe2\x82", "the content of message 2 is not valid UTF-8 (byte 4)"},
        {"bad\xfe", "x", "the model name is not valid UTF-8 (byte 3)"},
        {"", "x", "no model name given"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        const struct prov_msg msgs[] = {{.role = "system", .content = "fine"},
                                        {.role = "user", .content = cases[i].content}};
        struct prov_chat c = {.model = cases[i].model, .msgs = msgs, .n_msgs = 2, .stream = 1};
        char *body = (char *)"untouched";
        size_t len = 99;
        struct bh_err err = {0};
        assert_int_equal(prov_find("ollama")->chat_body(&c, &body, &len, &err), BH_EINVAL);
        assert_int_equal(err.code, BH_EINVAL);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
        assert_string_equal(body, "untouched");
        assert_int_equal(len, 99);
    }
}

/* ---- tool calls, thinking, model ---- */

#define CALL_CHUNK                                                                                 \
    "{\"model\":\"qwen3:8b\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":"   \
    "\"Need the order.\",\"tool_calls\":[{\"id\":\"call_k3j9x0aa\",\"function\":{\"index\":0,"     \
    "\"name\":\"lookup_order\",\"arguments\":{\"order_id\":\"A17\",\"opts\":{\"deep\":[1,"         \
    "\"\\u00e9\"]}}}},{\"function\":{\"name\":\"now\",\"arguments\":{}}}]},\"done\":false}\n"
#define CALL_FINAL                                                                                 \
    "{\"model\":\"qwen3:8b\",\"message\":{\"content\":\"\"},\"done\":true,\"done_reason\":"        \
    "\"stop\"}\n"

static void tool_calls_thinking_and_model_in_any_chunking(void **state)
{
    (void)state;
    static const char body[] = CALL_CHUNK
        "{\"message\":{\"thinking\":\" Done.\",\"tool_calls\":[{\"id\":\"call_2\",\"function\":"
        "{\"index\":0,\"name\":\"weather\",\"arguments\":{\"city\":\"Oslo\"}}}]},\"done\":false}"
        "\n" CALL_FINAL;
    uint32_t seed = 4242;
    for (int k = 0; k < 202; k++) {
        enum prov_chunking how = k < 2 ? (enum prov_chunking)k : PF_RANDOM;
        struct prov_outcome o;
        run(body, strlen(body), 200, 0, how, pf_rng_next(&seed), &o);
        if (o.rc)
            fail_msg("rc %d: %s", o.rc, o.err.msg);
        assert_string_equal(o.r.model, "qwen3:8b");
        assert_string_equal(o.r.thinking, "Need the order. Done.");
        assert_string_equal(o.r.content, "");
        assert_int_equal(o.r.n_tool_calls, 3);
        assert_string_equal(o.r.tool_calls[0].id, "call_k3j9x0aa");
        assert_string_equal(o.r.tool_calls[0].name, "lookup_order");
        assert_string_equal(o.r.tool_calls[0].arguments_json,
                            "{\"order_id\":\"A17\",\"opts\":{\"deep\":[1,\"\xc3\xa9\"]}}");
        assert_null(o.r.tool_calls[1].id); /* servers before 0.12.10 send none */
        assert_string_equal(o.r.tool_calls[1].name, "now");
        assert_string_equal(o.r.tool_calls[1].arguments_json, "{}");
        assert_string_equal(o.r.tool_calls[2].name, "weather"); /* index 0 again: a new call */
        assert_string_equal(o.r.tool_calls[2].arguments_json, "{\"city\":\"Oslo\"}");
        prov_reply_release(&o.r);
    }
}

static void malformed_tool_calls_are_reply_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"{\"message\":{\"tool_calls\":{}},\"done\":true}\n",
         "'message.tool_calls' at line 1 of the reply is not an array"},
        {"{\"message\":{\"tool_calls\":[{\"function\":{\"arguments\":{}}}]},\"done\":true}\n",
         "a tool call at line 1 of the reply has no function name"},
        {"{\"message\":{\"thinking\":7},\"done\":true}\n",
         "'message.thinking' at line 1 of the reply is not a string"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct prov_outcome o;
        run(cases[i].body, strlen(cases[i].body), 200, 0, PF_BYTES, 0, &o);
        assert_int_equal(o.rc, BH_EREPLY);
        if (!strstr(o.err.msg, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, o.err.msg, cases[i].msg);
        assert_null(o.r.tool_calls);
        prov_reply_release(&o.r);
    }
}

/* Arguments that are not a JSON object (an array; a string that does not
 * parse, from a server that sends them OpenAI-style) are the model's
 * mistake, not the reply's: the call is kept with NULL arguments. */
static void malformed_arguments_keep_the_call_without_them(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":[1]}}]},"
        "\"done\":true}\n",
        "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":"
        "\"}}]},\"done\":true}\n",
    };
    for (size_t i = 0; i < 2; i++) {
        struct prov_outcome o;
        run(bodies[i], strlen(bodies[i]), 200, 0, PF_BYTES, 0, &o);
        assert_int_equal(o.rc, 0);
        assert_int_equal(o.r.n_tool_calls, 1);
        assert_string_equal(o.r.tool_calls[0].name, "f");
        assert_null(o.r.tool_calls[0].arguments_json);
        prov_reply_release(&o.r);
    }
}

static void reply_release_frees_tool_calls(void **state)
{
    (void)state;
    struct prov_reply r = {0};
    r.tool_calls = calloc(2, sizeof(*r.tool_calls));
    r.n_tool_calls = 2;
    r.tool_calls[0].id = strdup("a");
    r.tool_calls[0].name = strdup("f");
    r.tool_calls[0].arguments_json = strdup("{}");
    r.tool_calls[1].name = strdup("g");
    r.thinking = strdup("t");
    r.model = strdup("m");
    prov_reply_release(&r); /* Asan's leak check sees what is left */
    assert_null(r.tool_calls);
    assert_int_equal(r.n_tool_calls, 0);
    assert_null(r.model);
}

static void chat_body_sends_options_keep_alive_format_think_truncate_tools(void **state)
{
    (void)state;
    static const char tools[] =
        "[{\"type\":\"function\",\"function\":{\"name\":\"lookup_order\",\"description\":\"Find\","
        "\"parameters\":{\"type\":\"object\"}}}]";
    static const struct prov_msg msgs[] = {{.role = "user", .content = "hi"}};
    struct prov_chat c = {.model = "m",
                          .msgs = msgs,
                          .n_msgs = 1,
                          .stream = 1,
                          .options_json = "{\"num_ctx\":8192,\"temperature\":0,\"seed\":42}",
                          .keep_alive = "10m",
                          .format_json = "json",
                          .think = PROV_THINK_OFF,
                          .truncate_off = 1,
                          .tools_json = tools,
                          .max_tokens = 512,
                          .num_ctx = 32768}; /* the options' own num_ctx wins */
    json_t *j = body_of(&c);
    json_t *opts = json_object_get(j, "options");
    assert_int_equal(json_integer_value(json_object_get(opts, "num_ctx")), 8192);
    assert_int_equal(json_integer_value(json_object_get(opts, "seed")), 42);
    assert_int_equal(json_integer_value(json_object_get(opts, "num_predict")), 512);
    assert_string_equal(json_string_value(json_object_get(j, "keep_alive")), "10m");
    assert_string_equal(json_string_value(json_object_get(j, "format")), "json");
    assert_true(json_is_false(json_object_get(j, "think")));
    assert_true(json_is_false(json_object_get(j, "truncate")));
    json_t *t = json_array_get(json_object_get(j, "tools"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "function"), "name")),
                        "lookup_order");
    json_decref(j);

    /* whole seconds as a number; a schema as an object; num_predict given wins */
    c.keep_alive = "-1";
    c.format_json = "{\"type\":\"object\"}";
    c.think = PROV_THINK_ON;
    c.truncate_off = 0;
    c.options_json = "{\"num_predict\":7}";
    j = body_of(&c);
    assert_true(json_is_integer(json_object_get(j, "keep_alive")));
    assert_int_equal(json_integer_value(json_object_get(j, "keep_alive")), -1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "format"), "type")),
                        "object");
    assert_true(json_is_true(json_object_get(j, "think")));
    assert_null(json_object_get(j, "truncate"));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "options"), "num_predict")), 7);
    /* options without num_ctx get the one bulkhead chose (from /api/show) */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "options"), "num_ctx")),
                     32768);
    json_decref(j);
    c.options_json = NULL;
    c.max_tokens = 0;
    j = body_of(&c);
    assert_int_equal(json_object_size(json_object_get(j, "options")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "options"), "num_ctx")),
                     32768);
    json_decref(j);
    c.num_ctx = 0;
    j = body_of(&c);
    assert_null(json_object_get(j, "options"));
    json_decref(j);
}

static void chat_body_sends_tool_history_with_arguments_as_objects(void **state)
{
    (void)state;
    static const struct prov_tool_call calls[] = {
        {"call_k3j9x0aa", "lookup_order", "{\"order_id\":\"A17\"}"}};
    static const struct prov_msg msgs[] = {
        {.role = "user", .content = "Status of order A17?"},
        {.role = "assistant", .content = "", .tool_calls = calls, .n_tool_calls = 1},
        {.role = "tool",
         .content = "{\"status\":\"shipped\"}",
         .tool_name = "lookup_order",
         .tool_call_id = "call_k3j9x0aa"},
    };
    struct prov_chat c = {.model = "m", .msgs = msgs, .n_msgs = 3};
    json_t *j = body_of(&c);
    json_t *arr = json_object_get(j, "messages");
    json_t *tc = json_array_get(json_object_get(json_array_get(arr, 1), "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(tc, "id")), "call_k3j9x0aa");
    json_t *f = json_object_get(tc, "function");
    assert_string_equal(json_string_value(json_object_get(f, "name")), "lookup_order");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(f, "arguments"), "order_id")), "A17");
    json_t *tool = json_array_get(arr, 2);
    assert_string_equal(json_string_value(json_object_get(tool, "tool_name")), "lookup_order");
    assert_string_equal(json_string_value(json_object_get(tool, "tool_call_id")), "call_k3j9x0aa");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(provider_table_finds_each_dialect_and_only_known_names),
        cmocka_unit_test(pipeline_providers_are_the_implemented_ones),
        cmocka_unit_test(reply_release_frees_and_zeroes),
        cmocka_unit_test(stream_cases_give_the_same_reply_in_any_chunking),
        cmocka_unit_test(three_chunk_stream_survives_200_random_chunkings),
        cmocka_unit_test(failing_streams_give_their_errors_in_any_chunking),
        cmocka_unit_test(failures_say_whether_a_retry_may_help),
        cmocka_unit_test(overlong_line_fails_the_feed),
        cmocka_unit_test(server_text_is_capped_and_cleaned),
        cmocka_unit_test(cut_text_keeps_whole_utf8_characters),
        cmocka_unit_test(freeing_a_half_fed_stream_frees_everything),
        cmocka_unit_test(chat_body_round_trips_messages),
        cmocka_unit_test(chat_body_without_stream_says_false_and_empty_messages_is_preload),
        cmocka_unit_test(chat_body_refuses_invalid_utf8_and_missing_model),
        cmocka_unit_test(tool_calls_thinking_and_model_in_any_chunking),
        cmocka_unit_test(malformed_tool_calls_are_reply_errors),
        cmocka_unit_test(malformed_arguments_keep_the_call_without_them),
        cmocka_unit_test(reply_release_frees_tool_calls),
        cmocka_unit_test(chat_body_sends_options_keep_alive_format_think_truncate_tools),
        cmocka_unit_test(chat_body_sends_tool_history_with_arguments_as_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
