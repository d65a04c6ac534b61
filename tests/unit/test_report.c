/* tests/unit/test_report.c — the report formats over a state database made
 * here: a run with done (with and without findings), failed, withheld and
 * unfinished tasks. Counts, escaping and completeness, format by format. */
#define _GNU_SOURCE /* mkdtemp, open_memstream */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report.h"
#include "findings/findings.h"
#include "report/rep_int.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

struct fx {
    char dir[64];
    struct store *s;
    int64_t run;
};

static const char high_findings[] =
    "[{\"path\":\"src/a.c\",\"line\":3,\"end_line\":5,\"severity\":\"high\",\"rule\":\"r1\","
    "\"message\":\"a | b\\n<script>x</script> [link](http://x)\"},"
    "{\"path\":\"src/b.c\",\"line\":9,\"severity\":\"low\",\"message\":\"minor\"}]";

static void task(struct fx *f, const char *item, const char *stage, int state, const char *text)
{
    int64_t item_id = 0, id = 0;
    struct bh_err err = {0};
    assert_int_equal(store_item_put(f->s, f->run, item, &item_id, &err), 0);
    assert_int_equal(store_task_put(f->s, f->run, item_id, stage, NULL, &id, &err), 0);
    if (state == STORE_PENDING)
        return;
    struct store_result r = {.state = state,
                             .label = "internal",
                             .endpoint = "gpu-box",
                             .locality = "local",
                             .model = "m:7b"};
    if (state == STORE_DONE)
        r.output = text;
    else
        r.error = text;
    assert_int_equal(store_task_finish(f->s, id, &r, &err), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct bh_err err = {0};
    int resumed = 0;
    strcpy(f->dir, "/tmp/bh-report-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(store_open(&f->s, f->dir, &err), 0);
    assert_int_equal(store_run_open(f->s, "k", "p", &f->run, &resumed, &err), 0);
    char *stages[] = {"review"};
    assert_int_equal(store_run_set_findings(f->s, f->run, stages, 1, &err), 0);
    task(f, "refs/pull/1/head", "review", STORE_DONE, high_findings);
    task(f, "refs/pull/1/head", "summary", STORE_DONE, "all **fine**");
    task(f, "refs/pull/2/head", "review", STORE_FAILED, "model down <&>\"' \x01 \xff end");
    task(f, "refs/pull/2/head", "summary", STORE_WITHHELD, "label confidential above internal");
    task(f, "refs/pull/3/head", "review", STORE_PENDING, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_free(f->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static char *report_capped(struct fx *f, const char *format, int fail_on, size_t max_bytes)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    struct rep_opts o = {format, fail_on, max_bytes, NULL};
    struct bh_err err = {0};
    assert_int_equal(rep_write(f->s, f->run, &o, out, &err), 0);
    fclose(out);
    return buf;
}

static char *report(struct fx *f, const char *format, int fail_on)
{
    return report_capped(f, format, fail_on, 0);
}

/* A comment box has a size limit: under --max-bytes the summary and the
 * tables stay whole, task outputs are left out from the last one back, and a
 * line says how many and where to find them. */
static void md_under_a_cap_leaves_out_outputs_and_says_so(void **state)
{
    struct fx *f = *state;
    char *full = report(f, "md", -1);
    size_t cap = strlen(full) - 1;
    char *cut = report_capped(f, "md", -1, cap);
    assert_true(strlen(cut) <= cap);
    assert_non_null(strstr(cut, "Left out to keep this report under"));
    assert_non_null(strstr(cut, "`bulkhead report --format jsonl` has everything"));
    assert_null(strstr(full, "Left out to keep"));
    /* everything before the first task's section is the same */
    const char *first = strstr(full, "\n## ");
    assert_non_null(first);
    assert_memory_equal(full, cut, (size_t)(first - full));
    free(cut);
    /* Smaller still: the tables give way too, and the line says so; the
     * summary and where each stage ran stay. */
    cut = report_capped(f, "md", -1, 1000);
    assert_true(strlen(full) > 1000);
    assert_true(strlen(cut) <= 1000);
    assert_non_null(strstr(cut, "findings do not fit in this comment"));
    assert_non_null(strstr(cut, "the findings table, the table of tasks, the outputs of"));
    assert_memory_equal(full, cut, 20); /* the summary's first line */
    free(full);
    free(cut);
}

static void junit_counts_failures_errors_and_skipped(void **state)
{
    char *x = report(*state, "junit", STAGE_SEV_HIGH);
    assert_non_null(strstr(x, "<testsuites name=\"bulkhead run 1\" tests=\"5\" failures=\"1\" "
                              "errors=\"2\" skipped=\"1\">"));
    assert_non_null(strstr(x, "<testsuite name=\"refs/pull/2/head\" tests=\"2\" failures=\"0\" "
                              "errors=\"1\" skipped=\"1\">"));
    assert_non_null(strstr(x, "<skipped message=\"withheld by policy: label confidential"));
    assert_non_null(strstr(x, "<error type=\"pending\" message=\"not run yet\"/>"));
    /* below the threshold: not a failure, but shown */
    assert_non_null(strstr(x, "<system-out>low src/b.c:9 [review] minor\n</system-out>"));
    free(x);
    x = report(*state, "junit", -1); /* without --fail-on nothing fails */
    assert_non_null(strstr(x, "tests=\"5\" failures=\"0\" errors=\"2\" skipped=\"1\""));
    free(x);
}

static void junit_escapes_xml_and_replaces_what_xml_cannot_hold(void **state)
{
    char *x = report(*state, "junit", -1);
    assert_non_null(
        strstr(x, "message=\"model down &lt;&amp;&gt;&quot;&apos;  \xEF\xBF\xBD end\""));
    assert_null(strchr(x, '\x01'));
    free(x);
}

/* The JUnit writer once had its own UTF-8 check, which let through what
 * XML parsers refuse: overlong forms, surrogates, code points past
 * U+10FFFF and leads F5..F7. Each ill-formed byte run is now one U+FFFD. */
static void junit_text_replaces_overlongs_and_surrogates(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"a\xE0\x80\xAF"
         "b",
         "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
         "b"}, /* overlong '/' */
        {"a\xED\xA0\x80"
         "b",
         "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
         "b"},                                                                    /* U+D800 */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* U+110000 */
        {"\xF5\x80", "\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xE2\x82", "\xEF\xBF\xBD"}, /* cut short: one maximal subpart */
        {"\xE2\x82\xAC <&>", "\xE2\x82\xAC &lt;&amp;&gt;"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        rep_xml_text(out, cases[i].in);
        fclose(out);
        assert_string_equal(buf, cases[i].want);
        free(buf);
    }
}

static void md_escapes_findings_and_lists_what_did_not_run(void **state)
{
    char *m = report(*state, "md", STAGE_SEV_HIGH);
    assert_non_null(strstr(m,
                           "| high | src/a.c:3–5 | r1 | a \\| b<br>&lt;script&gt;x&lt;/script&gt; "
                           "\\[link\\](http://x) | review |"));
    assert_non_null(strstr(m, "2 findings: 1 high, 1 low — 1 at or above high (--fail-on)"));
    assert_non_null(strstr(m, "**This report is incomplete**"));
    assert_non_null(strstr(m,
                           "| refs/pull/2/head | summary |  | withheld | label confidential above "
                           "internal |"));
    assert_non_null(strstr(m, "| refs/pull/3/head | review |  | pending | not run yet |"));
    assert_non_null(strstr(m, "2 findings (in the table above)"));
    assert_non_null(strstr(m, "all **fine**")); /* a text output renders as written */
    free(m);
}

static void sarif_is_incomplete_when_tasks_did_not_finish(void **state)
{
    char *s = report(*state, "sarif", -1);
    assert_non_null(strstr(s, "\"executionSuccessful\": false"));
    assert_non_null(strstr(s, "stage 'review' on 'refs/pull/3/head': pending: not run"));
    assert_non_null(strstr(s, "\"level\": \"warning\"")); /* the withheld one */
    assert_non_null(strstr(s, "\"ruleId\": \"r1\""));
    assert_non_null(strstr(s, "\"ruleId\": \"review\"")); /* no rule: the stage's name */
    free(s);
}

static void outcome_counts_states_and_findings(void **state)
{
    struct fx *f = *state;
    struct rep_outcome o;
    struct bh_err err = {0};
    assert_int_equal(rep_outcome(f->s, f->run, &o, &err), 0);
    assert_int_equal(o.tasks, 5);
    assert_int_equal(o.done, 2);
    assert_int_equal(o.failed, 1);
    assert_int_equal(o.withheld, 1);
    assert_int_equal(o.unfinished, 1);
    assert_int_equal(o.findings[STAGE_SEV_HIGH], 1);
    assert_int_equal(o.findings[STAGE_SEV_LOW], 1);
    assert_int_equal(o.max_severity, STAGE_SEV_HIGH);
}

static void annotations_escape_data_and_properties(void **state)
{
    struct fx *f = *state;
    struct bh_err err = {0};
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_int_equal(rep_annotations(f->s, f->run, NULL, out, &err), 0);
    fclose(out);
    assert_string_equal(buf, "::error file=src/a.c,line=3,endLine=5,title=r1::high: a | "
                             "b%0A<script>x</script> [link](http://x)\n"
                             "::notice file=src/b.c,line=9,endLine=9,title=review::low: minor\n");
    free(buf);
}

static void unknown_format_is_refused(void **state)
{
    struct fx *f = *state;
    struct rep_opts o = {"xml", -1, 0, NULL};
    struct bh_err err = {0};
    assert_int_equal(rep_write(f->s, f->run, &o, stdout, &err), BH_EINVAL);
    assert_string_equal(err.msg, "unknown report format 'xml' (known: md, jsonl, sarif, junit, "
                                 "github-review)");
    assert_true(rep_format_known("markdown"));
    assert_false(rep_format_known("SARIF"));
}

static char *report_cleared(struct fx *f, const char *format, const char *clearance, int want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    struct rep_opts o = {format, -1, 0, clearance};
    struct bh_err err = {0};
    char *labels[] = {"public", "internal", "confidential"};
    assert_int_equal(store_run_set_labels(f->s, f->run, labels, 3, &err), 0);
    assert_int_equal(rep_write(f->s, f->run, &o, out, &err), want);
    if (want)
        assert_non_null(strstr(err.msg, "--clearance: 'secret' is not a label of run 1 (its "
                                        "labels: public, internal, confidential)"));
    fclose(out);
    return buf;
}

/* Outputs are egress too: at public every task here (internal) is held
 * back, named with its label; a failed task's message (it may quote a
 * reply) too; a policy refusal's message is bulkhead's own and stays. */
static void report_clearance_holds_back_what_is_above_it(void **state)
{
    struct fx *f = *state;
    const char *formats[] = {"md", "jsonl", "sarif", "junit", "github-review"};
    for (size_t i = 0; i < BH_NELEM(formats); i++) {
        char *r = report_cleared(f, formats[i], "public", 0);
        assert_null(strstr(r, "fine"));
        assert_null(strstr(r, "minor"));
        assert_null(strstr(r, "model down"));
        assert_non_null(strstr(r, "withheld from this report: the output is labelled internal, "
                                  "above the report"));
        free(r);
    }
    char *md = report_cleared(f, "md", "public", 0);
    assert_non_null(strstr(md, "label confidential above internal"));
    assert_non_null(strstr(md, "failed; the message is left out of this report (clearance "
                               "public): it may quote the model"));
    free(md);
    char *all = report_cleared(f, "md", "internal", 0);
    assert_non_null(strstr(all, "fine"));
    assert_non_null(strstr(all, "model down"));
    assert_null(strstr(all, "withheld from this report"));
    free(all);
    free(report_cleared(f, "md", "secret", BH_EINVAL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(report_clearance_holds_back_what_is_above_it, setup,
                                        teardown),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(junit_counts_failures_errors_and_skipped),
        T(junit_escapes_xml_and_replaces_what_xml_cannot_hold),
        T(junit_text_replaces_overlongs_and_surrogates),
        T(md_escapes_findings_and_lists_what_did_not_run),
        T(md_under_a_cap_leaves_out_outputs_and_says_so),
        T(sarif_is_incomplete_when_tasks_did_not_finish),
        T(outcome_counts_states_and_findings),
        T(annotations_escape_data_and_properties),
        T(unknown_format_is_refused),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
