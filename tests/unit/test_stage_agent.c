/* tests/unit/test_stage_agent.c — the agent stage kind (stages/agent.c)
 * through the engine, over a repository made by fixtures/make-repo.sh, its
 * tools reading the pull request's head commit, and a scripted Ollama on
 * 127.0.0.1 that calls them (tests/helpers/stage_fixture.h). What a broken
 * loop would get wrong: tool results not sent back, the conversation's label
 * not raised by what the tools read (the gate must refuse the step that would
 * carry a restricted file), no end to a model that keeps calling tools. */
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

/* pr.title internal, pr.files internal, the rest confidential; *.pem
 * restricted. The stage may get confidential. @ST@: extra keys of the stage. */
static const char pipeline_tpl[] =
    "{ \"version\": 1, \"name\": \"stage-agent\",\n"
    "  \"endpoints\": { \"box\": { \"provider\": \"ollama\", \"url\": \"@URL@\",\n"
    "                            \"locality\": \"local\", \"max_attempts\": 1 } },\n"
    "  \"source\": { \"kind\": \"git\", \"label\": \"confidential\",\n"
    "              \"fields\": { \"pr.title\": \"internal\", \"pr.files\": \"internal\" },\n"
    "              \"rules\": [ { \"path\": \"**/*.pem\", \"label\": \"restricted\" } ] },\n"
    "  \"stages\": {\n"
    "    \"agent\": { \"endpoint\": \"box\", \"model\": \"m\", \"kind\": \"agent\",\n"
    "               \"clearance\": \"confidential\",\n"
    "               \"tools\": [\"read_file\", \"list_files\"],\n"
    "               \"user\": \"Review {{pr.title}}\" @ST@ } } }\n";

/* Three pull requests: 1 changes src/parser.c, 3 adds deploy/staging.pem. */
static char repo[96];

static int group_setup(void **state)
{
    (void)state;
    stage_fixture_make_repo(repo, sizeof(repo), 3);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    stage_fixture_remove_repo(repo);
    return 0;
}

static void start(struct stage_fx *f, const char *st, const char *pull)
{
    char *json = stage_fx_subst(pipeline_tpl, "@ST@", st);
    stage_fixture_start(f, &(struct stage_fx_opts){.pipeline = json, .repo = repo, .pulls = pull});
    free(json);
    assert_int_equal(f->n_items, 1);
}

/* The canary make-repo.sh put in pull request n's diff. */
static void canary_of(const struct stage_fx *f, int n, char *out, size_t size)
{
    char path[128];
    snprintf(path, sizeof(path), "%s.canaries", f->repo);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    for (int i = 1; i <= n; i++)
        assert_non_null(fgets(out, (int)size, fp));
    fclose(fp);
    out[strcspn(out, "\n")] = '\0';
    assert_true(strlen(out) > 20);
}

/* list_files, then read_file, then an answer: three requests, each carrying
 * the results so far; the output is labelled with everything read. */
static void agent_calls_tools_over_several_turns(void **state)
{
    struct stage_fx f;
    char canary[64];
    (void)state;
    start(&f, "", "refs/pull/1/head");
    canary_of(&f, 1, canary, sizeof(canary));
    stage_fx_tool_reply(&f, "m", "list_files", "{}");
    stage_fx_tool_reply(&f, "m", "read_file", "{\"path\": \"src/parser.c\"}");
    stage_fx_reply(&f, "m", "The parser change is fine.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, "refs/pull/1/head", "agent");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "The parser change is fine.");
    assert_string_equal(t->label, "confidential"); /* raised by the file read */
    assert_int_equal(t->prompt_tokens, 33);        /* three requests' tokens */
    assert_int_equal(mini_httpd_requests(f.http), 3);
    char *first = stage_fx_body(&f, 0), *second = stage_fx_body(&f, 1),
         *third = stage_fx_body(&f, 2);
    stage_fx_contains(first, "\"tools\":[");
    stage_fx_contains(first, "\"name\":\"read_file\"");
    assert_null(strstr(first, "\"name\":\"grep\"")); /* only the granted tools are offered */
    stage_fx_contains(second, "\"role\":\"tool\"");
    stage_fx_contains(second, "src/parser.c");
    assert_null(strstr(second, canary)); /* a file list shows no content */
    stage_fx_contains(third, canary);    /* the head commit's parser.c, sent back */
    free(first);
    free(second);
    free(third);
    assert_int_equal(f.n_audit, 3);
    assert_string_equal(f.audit[0].label, "internal"); /* the title alone */
    assert_string_equal(f.audit[1].label, "internal"); /* and the file list */
    assert_string_equal(f.audit[2].label, "confidential");
    assert_int_equal(stage_fx_audited(&f, "allow"), 3);
    stage_fixture_stop(&f);
}

/* The model reads a restricted file: the next request would carry it, and
 * the gate refuses it. The task is withheld, the refusal audited, and the
 * key never reaches the server. */
static void agent_tool_result_above_the_clearance_stops_the_agent(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "refs/pull/3/head");
    stage_fx_tool_reply(&f, "m", "read_file", "{\"path\": \"deploy/staging.pem\"}");
    stage_fx_reply(&f, "m", "must never be asked for", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(mini_httpd_requests(f.http), 1);
    assert_int_equal(mini_httpd_script_left(f.http), 1);
    const struct store_task *t = stage_fx_task(&f, "refs/pull/3/head", "agent");
    assert_int_equal(t->state, STORE_WITHHELD);
    assert_string_equal(t->output, "");
    stage_fx_contains(t->error, "agent stage 'agent', request 2 (the conversation is restricted "
                                "with its tool results; raised by the result of read_file: ");
    stage_fx_contains(t->error, "refused to send data labelled restricted");
    assert_int_equal(f.n_audit, 2);
    assert_string_equal(f.audit[0].decision, "allow");
    assert_string_equal(f.audit[1].decision, "refuse");
    assert_string_equal(f.audit[1].label, "restricted");
    assert_string_equal(f.audit[1].clearance, "confidential");
    char *first = stage_fx_body(&f, 0);
    assert_null(strstr(first, "PRIVATE KEY"));
    free(first);
    stage_fixture_stop(&f);
}

/* A model that never stops calling tools ends at max_steps. */
static void agent_fails_at_the_turn_limit(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, ", \"max_steps\": 2", "refs/pull/1/head");
    stage_fx_tool_reply(&f, "m", "list_files", "{}");
    stage_fx_tool_reply(&f, "m", "list_files", "{}");
    stage_fx_tool_reply(&f, "m", "list_files", "{}");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(mini_httpd_requests(f.http), 2);
    const struct store_task *t = stage_fx_task(&f, "refs/pull/1/head", "agent");
    assert_int_equal(t->state, STORE_FAILED);
    stage_fx_contains(t->error, "agent stage 'agent' did not finish in 2 steps: the model still "
                                "called tools after its last allowed request");
    stage_fixture_stop(&f);
}

/* A tool the stage was not granted is answered as an error, not run; the
 * model may then answer. Three such calls fail the task. */
static void agent_answers_an_ungranted_tool_with_an_error(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "refs/pull/1/head");
    stage_fx_tool_reply(&f, "m", "grep", "{\"pattern\": \"x\"}");
    stage_fx_reply(&f, "m", "Done without grep.", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    const struct store_task *t = stage_fx_task(&f, "refs/pull/1/head", "agent");
    assert_int_equal(t->state, STORE_DONE);
    assert_string_equal(t->output, "Done without grep.");
    assert_string_equal(t->label, "internal"); /* the error read nothing */
    char *second = stage_fx_body(&f, 1);
    stage_fx_contains(second, "error: tool 'grep' is not granted to this stage (its tools: "
                              "read_file, list_files)");
    free(second);
    stage_fixture_stop(&f);
}

static void agent_fails_after_too_many_malformed_calls(void **state)
{
    struct stage_fx f;
    (void)state;
    start(&f, "", "refs/pull/1/head");
    for (int i = 0; i < 4; i++)
        stage_fx_tool_reply(&f, "m", "rm_rf", "{}");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(mini_httpd_requests(f.http), 3);
    const struct store_task *t = stage_fx_task(&f, "refs/pull/1/head", "agent");
    assert_int_equal(t->state, STORE_FAILED);
    stage_fx_contains(t->error, "agent stage 'agent': the model made 3 malformed tool calls (the "
                                "last: error: there is no tool 'rm_rf'");
    stage_fixture_stop(&f);
}

/* Tools read one pull request of the bound repository: a task without one
 * fails before anything is sent. */
static void agent_with_tools_needs_a_pull_request(void **state)
{
    char *json = stage_fx_subst(pipeline_tpl, "@ST@", "");
    struct stage_fx f;
    (void)state;
    stage_fixture_start(&f, &(struct stage_fx_opts){.pipeline = json, .n_items = 1});
    free(json);
    stage_fx_reply(&f, "m", "must never be asked for", "stop");
    assert_int_equal(stage_fixture_run(&f, 0), 0);
    assert_int_equal(mini_httpd_requests(f.http), 0);
    const struct store_task *t = stage_fx_task(&f, "refs/pull/1/head", "agent");
    assert_int_equal(t->state, STORE_FAILED);
    assert_string_equal(t->error, "agent stage 'agent': its tools read one pull request, and "
                                  "task 'refs/pull/1/head' has none — give the stage \"scope\": "
                                  "\"item\" over a git source, or remove \"tools\"");
    assert_int_equal(f.n_audit, 0);
    stage_fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agent_calls_tools_over_several_turns),
        cmocka_unit_test(agent_tool_result_above_the_clearance_stops_the_agent),
        cmocka_unit_test(agent_fails_at_the_turn_limit),
        cmocka_unit_test(agent_answers_an_ungranted_tool_with_an_error),
        cmocka_unit_test(agent_fails_after_too_many_malformed_calls),
        cmocka_unit_test(agent_with_tools_needs_a_pull_request),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
