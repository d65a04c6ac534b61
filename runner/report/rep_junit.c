/* report/rep_junit.c — JUnit XML for test dashboards (GitLab's test
 * reports, GitHub test-report actions). A test suite per work item (batch
 * tasks under "(batch)"), a test case per task (stage, and element when it
 * has one). A failure per task with findings at or above --fail-on (none
 * without it), an error per failed or unfinished task, skipped for a task
 * withheld by policy. Findings below the threshold go to system-out.
 * Text from models and repositories is escaped for XML 1.0: the five
 * entities, control characters that XML cannot hold dropped, bytes that are
 * not UTF-8 replaced, so the file always parses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/rep_int.h"
#include "util/bh_utf8.h"

/* One validator for the tree: an overlong form or a surrogate, which an XML
 * parser refuses, never reaches the file (a copy of its own once let them
 * through). */
void rep_xml_text(FILE *out, const char *s)
{
    const char *p = s ? s : "";
    size_t left = strlen(p);
    while (left) {
        int ok;
        size_t n = bh_utf8_seq(p, left, &ok);
        unsigned char c = (unsigned char)*p;
        if (!ok)
            fputs("\xEF\xBF\xBD", out);
        else if (c == '&')
            fputs("&amp;", out);
        else if (c == '<')
            fputs("&lt;", out);
        else if (c == '>')
            fputs("&gt;", out);
        else if (c == '"')
            fputs("&quot;", out);
        else if (c == '\'')
            fputs("&apos;", out);
        else if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
            fwrite(p, 1, n, out);
        p += n;
        left -= n;
    }
}

struct counts {
    size_t tests, failures, errors, skipped;
};

static size_t findings_at(const struct rep_run *r, size_t i, int at_or_above)
{
    size_t n = 0;
    for (size_t k = 0; k < r->f[i].n; k++)
        n += (r->fail_on >= 0 && r->f[i].v[k].severity >= r->fail_on) == at_or_above;
    return n;
}

static void count(const struct rep_run *r, size_t i, struct counts *c)
{
    int st = r->t[i].state;
    c->tests++;
    c->skipped += st == STORE_WITHHELD || st == STORE_SKIPPED;
    c->errors += st == STORE_FAILED || st == STORE_PENDING || st == STORE_RUNNING ||
                 (st == STORE_DONE && r->unreadable[i]);
    c->failures += st == STORE_DONE && findings_at(r, i, 1) > 0;
}

static void finding_lines(FILE *out, const struct rep_run *r, size_t i, int at_or_above)
{
    for (size_t k = 0; k < r->f[i].n; k++) {
        const struct stage_finding *f = &r->f[i].v[k];
        if ((r->fail_on >= 0 && f->severity >= r->fail_on) != at_or_above)
            continue;
        fprintf(out, "%s ", stage_severity_name(f->severity));
        rep_xml_text(out, f->path);
        if (f->end_line != f->line)
            fprintf(out, ":%ld-%ld [", f->line, f->end_line);
        else
            fprintf(out, ":%ld [", f->line);
        rep_xml_text(out, rep_rule(r, i, k));
        fputs("] ", out);
        rep_xml_text(out, f->message);
        if (f->suggestion[0]) {
            fputs("\n  suggestion: ", out);
            rep_xml_text(out, f->suggestion);
        }
        fputc('\n', out);
    }
}

static void testcase_body(FILE *out, const struct rep_run *r, size_t i)
{
    const struct store_task *t = &r->t[i];
    size_t above = findings_at(r, i, 1);
    if (t->state == STORE_WITHHELD || t->state == STORE_SKIPPED) {
        /* Withheld by the report's own clearance: the message says so itself. */
        int by_report = strncmp(t->error, "withheld from this report", 25) == 0;
        fputs(by_report                   ? "      <skipped message=\""
              : t->state == STORE_SKIPPED ? "      <skipped message=\"skipped as the pipeline "
                                            "declares: "
                                          : "      <skipped message=\"withheld by policy: ",
              out);
        rep_xml_text(out, t->error);
        fputs("\"/>\n", out);
    } else if (t->state != STORE_DONE || r->unreadable[i]) {
        const char *why = r->unreadable[i] ? r->unreadable[i]
                          : t->error[0]    ? t->error
                                           : "not run yet";
        fprintf(out, "      <error type=\"%s\" message=\"", store_state_name(t->state));
        rep_xml_text(out, why);
        fputs("\"/>\n", out);
    } else if (above) {
        fprintf(out, "      <failure type=\"%s\" message=\"%zu finding%s at or above %s\">",
                stage_severity_name(r->fail_on), above, above == 1 ? "" : "s",
                stage_severity_name(r->fail_on));
        finding_lines(out, r, i, 1);
        fputs("</failure>\n", out);
    }
    if (t->state == STORE_DONE && findings_at(r, i, 0)) {
        fputs("      <system-out>", out);
        finding_lines(out, r, i, 0);
        fputs("</system-out>\n", out);
    }
}

/* The answering model is part of the result: said on every task of a stage
 * answered by another model than it asked for, with the stage's count. */
struct diffs {
    struct rep_model_diff *v;
    size_t n;
};

static void testcase_model(FILE *out, const struct rep_run *r, size_t i, const struct diffs *d)
{
    const struct rep_model_diff *mine = rep_model_diff_of(d->v, d->n, &r->t[i]);
    char line[600];
    if (!mine)
        return;
    rep_model_diff_text(mine, line, sizeof(line));
    fputs("      <system-err>answered by another model than asked: ", out);
    rep_xml_text(out, line);
    fputs("</system-err>\n", out);
}

static void testcase(FILE *out, const struct rep_run *r, size_t i, const struct diffs *d)
{
    const struct store_task *t = &r->t[i];
    fputs("    <testcase classname=\"", out);
    rep_xml_text(out, t->item_key);
    fputs("\" name=\"", out);
    rep_xml_text(out, t->stage);
    if (t->element[0]) {
        fputs(" · ", out);
        rep_xml_text(out, t->element);
    }
    fprintf(out, "\" time=\"%.3f\">\n", (double)t->total_ns / 1e9);
    testcase_body(out, r, i);
    testcase_model(out, r, i, d);
    fputs("    </testcase>\n", out);
}

/* Tasks are ordered by item: a suite is a run of tasks with one item key. */
static size_t suite(FILE *out, const struct rep_run *r, size_t first, const struct diffs *d)
{
    size_t end = first;
    struct counts c = {0};
    while (end < r->n && strcmp(r->t[end].item_key, r->t[first].item_key) == 0)
        count(r, end++, &c);
    fputs("  <testsuite name=\"", out);
    rep_xml_text(out, r->t[first].item_key);
    fprintf(out, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\">\n", c.tests,
            c.failures, c.errors, c.skipped);
    for (size_t i = first; i < end; i++)
        testcase(out, r, i, d);
    fputs("  </testsuite>\n", out);
    return end;
}

void rep_junit(FILE *out, const struct rep_run *r)
{
    struct counts c = {0};
    for (size_t i = 0; i < r->n; i++)
        count(r, i, &c);
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites name=\"bulkhead run %lld\" tests=\"%zu\" failures=\"%zu\" "
            "errors=\"%zu\" skipped=\"%zu\">\n",
            (long long)r->id, c.tests, c.failures, c.errors, c.skipped);
    struct diffs d = {NULL, 0};
    d.n = rep_run_model_diffs(r, &d.v);
    for (size_t i = 0; i < r->n;)
        i = suite(out, r, i, &d);
    free(d.v);
    fputs("</testsuites>\n", out);
}
