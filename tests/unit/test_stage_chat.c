/* tests/unit/test_stage_chat.c — the chat stage kind and what every kind
 * shares (stages/chat.c, kinds.c, stage.c, output.c, render.c), driven
 * through the engine as `run` drives them: a real gate and store, and a
 * scripted Ollama on 127.0.0.1 (tests/helpers/stage_fixture.h). Each case
 * asserts what a broken kind would get wrong: the exact output, label and
 * state stored, the reason given, what the server received (its request
 * count shows a refusal sent nothing) and what the audit log says. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mini_httpd.h"
#include "stage_fixture.h"
#include "store/store.h"

#define PR1 "refs/pull/1/head"

/* One local Ollama endpoint and one stage reading the title (internal) and
 * the diff (confidential, the source's label). @EP@ and @ST@ are replaced by
 * extra keys of the endpoint and the stage. */
static const char pipeline_tpl[] =
    "{ \"version\": 1, \"name\": \"stage-chat\",\n"
    "  \"endpoints\": { \"box\": { \"provider\": \"ollama\", \"url\": \"@URL@\",\n"
    "                            \"locality\": \"local\", \"max_attempts\": 1 @EP@ } },\n"
    "  \"source\": { \"kind\": \"git\", \"label\": \"confidential\",\n"
    "              \"fields\": { \"pr.title\": \"internal\" } },\n"
    "  \"stages\": {\n"
    "    \"review\": { \"endpoint\": \"box\", \"model\": \"m\",\n"
    "                \"user\": \"Review {{pr.title}}: {{pr.diff}}\" @ST@ } } }\n";

/* Starts f over pipeline_tpl with the endpoint's and the stage's extra keys
 * (each "" or starting with a comma), one pull request, and files. */
static void start(struct stage_fx *f, const char *ep, const char *st, const char *const *files)
{
    char *a = stage_fx_subst(pipeline_tpl, "@EP@", ep);
    char *b = stage_fx_subst(a, "@ST@", st);
    stage_fixture_start(f, &(struct stage_fx_opts){.pipeline = b, .files = files, .n_items = 1});
    free(a);
    free(b);
}

/* Requests to /api/chat (a run with several models on a local endpoint also
 * asks /api/ps which are loaded). */
static size_t chat_requests(struct stage_fx *f)
{
    size_t n = 0;
    struct mini_req r;
    for (size_t i = 0; mini_httpd_request(f->http, i, &r) == 0; i++) {
        n += strcmp(r.path, "/api/chat") == 0;
        mini_req_release(&r);
    }
    return n;
}

/* The body of the k-th request to /api/chat. Owned. */
static char *chat_body(struct stage_fx *f, size_t k)
{
    struct mini_req r;
    for (size_t i = 0; mini_httpd_request(f->http, i, &r) == 0; i++) {
        if (strcmp(r.path, "/api/chat") == 0 && k-- == 0)
            return r.body;
        mini_req_release(&r);
    }
    fail_msg("the server saw no chat request %zu", k);
    return NULL;
}

/* ---- a reply stored ------------------------------------------------------ */

static void chat_stores_the_reply_with_the_prompts_label(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "", NULL);
    stage_fx_reply(&f, "m", "Looks fine.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(f.sum.done, 1);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "Looks fine.");
    assert_string_equal(t->label, "confidential"); /* the join of internal and confidential */
    assert_string_equal(t->answered_by, "m");
    assert_string_equal(t->endpoint, "box");
    assert_int_equal(t->prompt_tokens, 11);
    assert_int_equal(t->output_tokens, 7);
    assert_int_equal(t->cached, 0);
    assert_int_equal(mini_httpd_requests(f.http), 1);
    struct mini_req r;
    assert_int_equal(mini_httpd_request(f.http, 0, &r), 0);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/api/chat");
    stage_fx_contains(r.body, "\"model\":\"m\"");
    stage_fx_contains(r.body, "\"content\":\"Review Title 1: diff of 1\"");
    mini_req_release(&r);
    assert_int_equal(f.n_audit, 1);
    assert_string_equal(f.audit[0].decision, "allow");
    assert_string_equal(f.audit[0].stage, "review");
    assert_string_equal(f.audit[0].label, "confidential");
    stage_fixture_stop(&f);
}

/* A prompt's label is the join of what it reads: the title alone is
 * internal, a template that reads nothing is the bottom label. */
static void chat_label_is_the_join_of_what_the_prompt_reads(void **state)
{
    static const char json[] =
        "{ \"version\": 1, \"name\": \"stage-labels\",\n"
        "  \"endpoints\": { \"box\": { \"provider\": \"ollama\", \"url\": \"@URL@\",\n"
        "                            \"locality\": \"local\", \"max_concurrency\": 1 } },\n"
        "  \"source\": { \"kind\": \"git\", \"label\": \"confidential\",\n"
        "              \"fields\": { \"pr.title\": \"internal\" } },\n"
        "  \"stages\": {\n"
        "    \"title\": { \"endpoint\": \"box\", \"model\": \"m\", \"user\": \"T {{pr.title}}\" },\n"
        "    \"plain\": { \"endpoint\": \"box\", \"model\": \"m\", \"user\": \"Say hi\",\n"
        "               \"after\": [\"title\"] } } }\n";
    struct stage_fx f;
    (void)state;
    stage_fixture_start(&f, &(struct stage_fx_opts){.pipeline = json, .n_items = 1});
    stage_fx_reply(&f, "m", "first", "stop");
    stage_fx_reply(&f, "m", "second", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "title");
    assert_string_equal(t->output, "first");
    assert_string_equal(t->label, "internal");
    t = stage_fx_task(&f, PR1, "plain");
    assert_string_equal(t->output, "second");
    assert_string_equal(t->label, "public");
    char *b = stage_fx_body(&f, 1);
    stage_fx_contains(b, "\"content\":\"Say hi\"");
    free(b);
    stage_fixture_stop(&f);
}

/* ---- cut replies ----------------------------------------------------------- */

static void chat_fails_a_reply_cut_for_length(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "", NULL);
    stage_fx_reply(&f, "m", "The first half of a rev", "length");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(f.sum.failed, 1);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_FAILED);
    assert_string_equal(t->output, "");
    stage_fx_contains(t->error, "endpoint 'box' (http://127.0.0.1:");
    stage_fx_contains(t->error, "model 'm': the server cut the reply (done_reason \"length\" "
                                "after 7 output tokens) — raise the stage's output limit");
    stage_fx_contains(t->error, "or set \"on_truncated\": \"keep\" to keep cut replies");
    assert_int_equal(mini_httpd_requests(f.http), 1); /* not asked again */
    stage_fixture_stop(&f);
}

static void chat_keeps_a_cut_reply_when_the_stage_says_so(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"on_truncated\": \"keep\"", NULL);
    stage_fx_reply(&f, "m", "The first half of a rev", "length");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "The first half of a rev");
    assert_string_equal(t->note, "the server cut the reply (done_reason \"length\" after 7 "
                                 "output tokens); kept as the stage says (on_truncated: keep)");
    stage_fixture_stop(&f);
}

/* ---- which model answered -------------------------------------------------- */

static void chat_expect_model_exact_fails_another_model(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, ", \"expect_model\": \"exact\"", "", NULL);
    stage_fx_reply(&f, "other:7b", "From another model.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_FAILED);
    stage_fx_contains(t->error, "model 'm': asked for model 'm', answered by 'other:7b', and "
                                "endpoint 'box' says \"expect_model\": \"exact\"");
    assert_string_equal(t->output, "");
    stage_fixture_stop(&f);
}

/* "m" and "M:latest" are one model as Ollama names them. */
static void chat_expect_model_exact_takes_the_same_model_named_otherwise(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, ", \"expect_model\": \"exact\"", "", NULL);
    stage_fx_reply(&f, "M:latest", "Same model.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "Same model.");
    assert_string_equal(t->answered_by, "M:latest");
    stage_fixture_stop(&f);
}

static void chat_expect_model_any_keeps_another_model_and_names_it(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "", NULL);
    stage_fx_reply(&f, "other:7b", "From another model.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->model, "m");
    assert_string_equal(t->answered_by, "other:7b");
    stage_fixture_stop(&f);
}

/* ---- the response cache ---------------------------------------------------- */

/* The same request in a new run is answered from the cache: nothing is
 * sent (the server would answer 500: no scripted reply is left), the
 * answer is audited as cached, and the task says so. */
static void chat_answers_the_same_request_from_the_cache(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "", NULL);
    stage_fx_reply(&f, "m", "Cached answer.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(stage_fx_task(&f, PR1, "review")->cached, 0);
    assert_int_equal(stage_fixture_run(&f, 1), 0);
    assert_int_equal(mini_httpd_requests(f.http), 1);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "Cached answer.");
    assert_string_equal(t->label, "confidential");
    assert_string_equal(t->answered_by, "m");
    assert_int_equal(t->cached, 1);
    assert_int_equal(stage_fx_audited(&f, "allow"), 1);
    assert_int_equal(stage_fx_audited(&f, "cached"), 1);
    assert_string_equal(f.audit[1].decision, "cached");
    assert_string_equal(f.audit[1].label, "confidential");
    stage_fixture_stop(&f);
}

/* A cut reply that failed its task is not kept: the next run asks again. */
static void chat_does_not_cache_a_failed_reply(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "", NULL);
    stage_fx_reply(&f, "m", "cut", "length");
    stage_fx_reply(&f, "m", "Whole.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(stage_fixture_run(&f, 1), 0);
    assert_int_equal(mini_httpd_requests(f.http), 2);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_string_equal(t->output, "Whole.");
    assert_int_equal(t->cached, 0);
    assert_int_equal(stage_fx_audited(&f, "cached"), 0);
    stage_fixture_stop(&f);
}

/* ---- checked output: a schema ---------------------------------------------- */

static const char *const schema_files[] = {
    "schema.json",
    "{ \"type\": \"object\", \"required\": [\"ok\"],\n"
    "  \"properties\": { \"ok\": { \"type\": \"boolean\" } } }\n",
    NULL};

static void chat_schema_output_fails_after_asking_again_once(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"output\": { \"schema\": \"schema.json\" }", schema_files);
    stage_fx_reply(&f, "m", "{\"ok\": 3}", "stop");
    stage_fx_reply(&f, "m", "{\"fine\": true}", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_FAILED);
    stage_fx_contains(t->error, "model 'm': reply does not follow the output schema "
                                "'schema.json': $: \"ok\" is required; asked again once");
    assert_int_equal(mini_httpd_requests(f.http), 2);
    /* The schema went with both requests; the second one says what was wrong
     * with the first reply, which it carries. */
    char *first = stage_fx_body(&f, 0), *second = stage_fx_body(&f, 1);
    stage_fx_contains(first, "\"format\":{\"properties\":{\"ok\":{\"type\":\"boolean\"}}");
    stage_fx_contains(second, "Your reply does not follow the output schema 'schema.json': $.ok: "
                              "expected a boolean");
    stage_fx_contains(second, "\"content\":\"{\\\"ok\\\": 3}\"");
    free(first);
    free(second);
    assert_int_equal(stage_fx_audited(&f, "allow"), 2);
    stage_fixture_stop(&f);
}

static void chat_schema_output_stores_the_json_without_its_fence(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"output\": { \"schema\": \"schema.json\" }", schema_files);
    stage_fx_reply(&f, "m", "not json at all", "stop");
    stage_fx_reply(&f, "m", "```json\n{\"ok\": true}\n```", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "{\"ok\":true}");
    assert_int_equal(t->prompt_tokens, 22); /* both requests counted */
    assert_int_equal(t->output_tokens, 14);
    stage_fixture_stop(&f);
}

/* A cut reply of a checked stage is never valid, and not asked for again. */
static void chat_schema_output_cut_is_not_asked_again(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"on_truncated\": \"keep\", \"output\": { \"schema\": \"schema.json\" }",
          schema_files);
    stage_fx_reply(&f, "m", "{\"ok\": tr", "length");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_FAILED);
    stage_fx_contains(t->error, "the server cut the reply for length, so it is incomplete: reply "
                                "does not follow the output schema 'schema.json'");
    assert_int_equal(mini_httpd_requests(f.http), 1);
    stage_fixture_stop(&f);
}

/* ---- refusals -------------------------------------------------------------- */

/* The prompt reads the diff (confidential); the stage may get internal:
 * the gate refuses and audits, and nothing reaches the server. */
static void chat_refuses_a_prompt_above_the_clearance(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"clearance\": \"internal\"", NULL);
    stage_fx_reply(&f, "m", "must never be asked for", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(mini_httpd_requests(f.http), 0);
    assert_int_equal(mini_httpd_connections(f.http), 0);
    assert_int_equal(f.sum.withheld, 1);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_WITHHELD);
    assert_string_equal(t->output, "");
    assert_int_equal(f.n_audit, 1);
    assert_string_equal(f.audit[0].decision, "refuse");
    assert_string_equal(f.audit[0].label, "confidential");
    assert_string_equal(f.audit[0].clearance, "internal");
    stage_fixture_stop(&f);
}

static void chat_on_sensitive_skip_withholds_as_declared(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"clearance\": \"internal\", \"on_sensitive\": \"skip\"", NULL);
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(mini_httpd_requests(f.http), 0);
    assert_int_equal(f.sum.skipped, 1);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_SKIPPED);
    stage_fx_contains(t->error, "the prompt is confidential, above the stage's clearance internal: "
                                "skipped as the pipeline declares (on_sensitive: skip)");
    assert_int_equal(f.n_audit, 1);
    assert_string_equal(f.audit[0].decision, "refuse");
    assert_string_equal(f.audit[0].reason,
                        "on_sensitive skip: label confidential above clearance internal");
    stage_fixture_stop(&f);
}

/* A reply that says the server forwarded the request (a cloud stub on the
 * local box) is a breach for a confidential prompt: audited, withheld, and
 * its output discarded. */
static void chat_reply_forwarded_off_the_machine_is_a_breach(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "", NULL);
    mini_httpd_script(f.http, "/api/chat", 200, "application/x-ndjson",
                      "{\"model\":\"m\",\"remote_host\":\"https://ollama.com:443\","
                      "\"message\":{\"role\":\"assistant\",\"content\":\"from afar\"},"
                      "\"done\":false}\n"
                      "{\"model\":\"m\",\"done\":true,\"done_reason\":\"stop\"}\n");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_WITHHELD);
    assert_string_equal(t->output, "");
    stage_fx_contains(t->error, "the server forwarded this request to 'https://ollama.com:443' "
                                "(the model is a cloud stub): its output is discarded");
    assert_int_equal(stage_fx_audited(&f, "allow"), 1);
    assert_int_equal(stage_fx_audited(&f, "breach"), 1);
    stage_fixture_stop(&f);
}

/* ---- declassify ------------------------------------------------------------ */

/* A reply whose guards pass is stored at the declared label, audited with
 * what was redacted; one that quotes its confidential input keeps the
 * prompt's label, audited as kept with the guard that failed. */
static void chat_declassify_lowers_only_a_reply_that_passes_the_guards(void **state)
{
    static const char st[] = ", \"declassify\": { \"to\": \"internal\" }";
    char *a = stage_fx_subst(pipeline_tpl, "@EP@", ""), *json = stage_fx_subst(a, "@ST@", st);
    struct stage_fx f;
    (void)state;
    stage_fixture_start(
        &f, &(struct stage_fx_opts){.pipeline = json,
                                    .n_items = 1,
                                    .diff = "+static int frobnicate_widget(struct widget *w)\n"});
    free(a);
    free(json);
    stage_fx_reply(&f, "m", "Looks fine to me.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "Looks fine to me.");
    assert_string_equal(t->label, "internal");
    assert_int_equal(f.n_audit, 2);
    assert_string_equal(f.audit[1].decision, "declassify");
    assert_string_equal(f.audit[1].reason, "from confidential to internal: guards passed; "
                                           "redacted 0 code blocks, 0 paths, 0 secrets");

    /* The same stage, a reply that quotes the diff: kept confidential. (The
     * request is the same: not from the cache, which holds the first reply.) */
    f.no_cache = 1;
    stage_fx_reply(&f, "m", "It adds static int frobnicate_widget(struct widget *w) and is fine.",
                   "stop");
    assert_int_equal(stage_fixture_run(&f, 1), 0);
    t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->label, "confidential");
    assert_int_equal(stage_fx_audited(&f, "keep"), 1);
    assert_string_equal(f.audit[f.n_audit - 1].reason,
                        "kept at confidential: guard no_verbatim failed: a run of 9 tokens is "
                        "shared with pr.diff (confidential) and with no input at or below "
                        "internal (redacted 0 secrets)");
    stage_fixture_stop(&f);
}

/* ---- on_sensitive reroute (kinds.c) -------------------------------------------- */

/* The stage may get internal and reroutes what is above it to its twin: the
 * twin's prompt and model answer the task, nothing goes to the stage's own
 * model, and the refusal of the origin is audited naming the twin. */
static void chat_reroute_sends_the_prompt_to_the_twin_stage(void **state)
{
    static const char json[] =
        "{ \"version\": 1, \"name\": \"stage-reroute\",\n"
        "  \"endpoints\": { \"box\": { \"provider\": \"ollama\", \"url\": \"@URL@\",\n"
        "                            \"locality\": \"local\", \"max_attempts\": 1 } },\n"
        "  \"source\": { \"kind\": \"git\", \"label\": \"confidential\",\n"
        "              \"fields\": { \"pr.title\": \"internal\" } },\n"
        "  \"stages\": {\n"
        "    \"plan\": { \"endpoint\": \"box\", \"model\": \"m\", \"clearance\": \"internal\",\n"
        "              \"on_sensitive\": \"reroute:twin\", \"user\": \"P {{pr.diff}}\" },\n"
        "    \"twin\": { \"endpoint\": \"box\", \"model\": \"m2\", \"user\": \"T {{pr.diff}}\" } } }\n";
    struct stage_fx f;
    (void)state;
    stage_fixture_start(&f, &(struct stage_fx_opts){.pipeline = json, .n_items = 1});
    stage_fx_reply(&f, "m2", "one", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(chat_requests(&f), 1);
    char *b = chat_body(&f, 0);
    stage_fx_contains(b, "\"model\":\"m2\"");
    stage_fx_contains(b, "\"content\":\"T diff of 1\""); /* the twin's prompt, not "P ..." */
    free(b);
    const struct store_task *plan = stage_fx_task(&f, PR1, "plan");
    assert_int_equal(f.n_tasks, 1); /* a reroute target has no tasks of its own */
    assert_int_equal(plan->state, STORE_DONE);
    assert_string_equal(plan->output, "one");
    assert_string_equal(plan->label, "confidential");
    assert_string_equal(plan->model, "m2");
    assert_string_equal(plan->answered_by, "m2");
    assert_int_equal(stage_fx_audited(&f, "refuse"), 1);
    for (size_t i = 0; i < f.n_audit; i++)
        if (strcmp(f.audit[i].decision, "refuse") == 0) {
            assert_string_equal(f.audit[i].stage, "plan");
            assert_string_equal(f.audit[i].reason,
                                "on_sensitive reroute: label confidential above clearance "
                                "internal, sent to stage 'twin' instead");
        }
    stage_fixture_stop(&f);
}

/* ---- checked output: findings ---------------------------------------------- */

/* Findings are asked for with an instruction after the user message (and
 * Ollama's JSON mode), and stored in their fixed form, whatever the key
 * order and spacing of the reply; a bad severity is sent back once. */
static void chat_findings_are_stored_in_their_fixed_form(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"output\": { \"format\": \"findings\" }", NULL);
    stage_fx_reply(&f, "m",
                   "[{\"severity\": \"urgent\", \"path\": \"a.c\", \"line\": 3, "
                   "\"message\": \"m\"}]",
                   "stop");
    stage_fx_reply(&f, "m",
                   "[ {\"message\": \"off by one\", \"line\": 3, \"path\": \"a.c\", "
                   "\"severity\": \"high\"} ]",
                   "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "[{\"path\":\"a.c\",\"line\":3,\"severity\":\"high\","
                                   "\"message\":\"off by one\"}]");
    char *first = stage_fx_body(&f, 0), *second = stage_fx_body(&f, 1);
    stage_fx_contains(first, "\"format\":");
    stage_fx_contains(first, "\"content\":\"Review Title 1: diff of 1"); /* then the instruction */
    assert_null(strstr(first, "\"content\":\"Review Title 1: diff of 1\""));
    stage_fx_contains(second, "Your reply is not valid findings: $[0].severity: expected one of");
    free(first);
    free(second);
    stage_fixture_stop(&f);
}

/* ---- the context window (stage.c) ------------------------------------------ */

/* A prompt estimated (bytes / 4) above options.num_ctx fails before
 * anything is sent: a model must never silently lose its start. */
static void chat_prompt_over_num_ctx_fails_before_sending(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"options\": { \"num_ctx\": 5 }", NULL);
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(mini_httpd_requests(f.http), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_FAILED);
    /* "Review Title 1: diff of 1" */
    stage_fx_contains(t->error, "the prompt is about 6 tokens (25 bytes), more than the stage's "
                                "options.num_ctx 5 of model 'm' — raise num_ctx (within the "
                                "model's context length, see 'ollama show m')");
    assert_int_equal(f.n_audit, 0);
    stage_fixture_stop(&f);
}

/* A reply whose prompt filled the window is kept, with a note that says so. */
static void chat_reply_that_filled_the_window_is_kept_with_a_note(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", ", \"options\": { \"num_ctx\": 8 }", NULL);
    stage_fx_reply(&f, "m", "Fine.", "stop"); /* prompt_eval_count 11 */
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, PR1, "review");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "Fine.");
    assert_string_equal(t->note, "the prompt used 11 tokens, the whole context window (num_ctx 8): "
                                 "the server may have cut it; raise options.num_ctx");
    char *b = stage_fx_body(&f, 0);
    stage_fx_contains(b, "\"num_ctx\":8");
    free(b);
    stage_fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_stores_the_reply_with_the_prompts_label),
        cmocka_unit_test(chat_label_is_the_join_of_what_the_prompt_reads),
        cmocka_unit_test(chat_fails_a_reply_cut_for_length),
        cmocka_unit_test(chat_keeps_a_cut_reply_when_the_stage_says_so),
        cmocka_unit_test(chat_expect_model_exact_fails_another_model),
        cmocka_unit_test(chat_expect_model_exact_takes_the_same_model_named_otherwise),
        cmocka_unit_test(chat_expect_model_any_keeps_another_model_and_names_it),
        cmocka_unit_test(chat_answers_the_same_request_from_the_cache),
        cmocka_unit_test(chat_does_not_cache_a_failed_reply),
        cmocka_unit_test(chat_schema_output_fails_after_asking_again_once),
        cmocka_unit_test(chat_schema_output_stores_the_json_without_its_fence),
        cmocka_unit_test(chat_schema_output_cut_is_not_asked_again),
        cmocka_unit_test(chat_findings_are_stored_in_their_fixed_form),
        cmocka_unit_test(chat_prompt_over_num_ctx_fails_before_sending),
        cmocka_unit_test(chat_reply_that_filled_the_window_is_kept_with_a_note),
        cmocka_unit_test(chat_refuses_a_prompt_above_the_clearance),
        cmocka_unit_test(chat_on_sensitive_skip_withholds_as_declared),
        cmocka_unit_test(chat_reply_forwarded_off_the_machine_is_a_breach),
        cmocka_unit_test(chat_declassify_lowers_only_a_reply_that_passes_the_guards),
        cmocka_unit_test(chat_reroute_sends_the_prompt_to_the_twin_stage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
