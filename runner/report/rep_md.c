/* report/rep_md.c — the Markdown report: a pull-request comment. First what
 * a reviewer needs (the summary, the findings table, where each stage ran
 * and what did not run), then every task with its output. Everything that
 * came from a model or a repository goes through rep_md_text when it sits in
 * a table or a summary line: a reply must not be able to break the table,
 * post a link or inject HTML into the comment. A text stage's output is
 * shown as written (it is the review, and is meant to render). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/rep_int.h"
#include "util/bh_util.h"

static const char *str(const char *s)
{
    return s ? s : "";
}

void rep_md_text(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '\r':
            if (s[1] == '\n')
                s++;
            /* fall through */
        case '\n': fputs("<br>", out); break;
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '\\':
        case '`':
        case '*':
        case '_':
        case '[':
        case ']':
        case '|':
        case '~':
        case '#':
        case '!':
            fputc('\\', out);
            fputc(*s, out);
            break;
        default: fputc(*s, out);
        }
    }
}

void rep_md_summary(FILE *out, const struct rep_run *r)
{
    struct rep_outcome o;
    rep_run_outcome(r, &o);
    fprintf(out, "# bulkhead report — run %lld\n\n", (long long)r->id);
    fprintf(out,
            "%zu tasks: %zu done, %zu failed, %zu withheld by policy, %zu skipped as the "
            "pipeline declares, %zu not finished\n\n",
            o.tasks, o.done, o.failed, o.withheld, o.skipped, o.unfinished);
    if (o.done + o.skipped != o.tasks)
        fprintf(out, "**This report is incomplete**: the tasks that are not done are listed "
                     "below with the reason.\n\n");
    else if (o.skipped)
        fprintf(out,
                "Every task ran except %zu that the pipeline withholds by design "
                "(`on_sensitive: skip`), listed below with the reason.\n\n",
                o.skipped);
}

static void findings_counts(FILE *out, const struct rep_run *r)
{
    struct rep_outcome o;
    rep_run_outcome(r, &o);
    size_t total = 0, above = 0;
    for (int s = 0; s < STAGE_SEV_COUNT; s++) {
        total += o.findings[s];
        above += r->fail_on >= 0 && s >= r->fail_on ? o.findings[s] : 0;
    }
    fprintf(out, "%zu finding%s", total, total == 1 ? "" : "s");
    const char *sep = ": ";
    for (int s = STAGE_SEV_COUNT - 1; s >= 0; s--)
        if (o.findings[s]) {
            fprintf(out, "%s%zu %s", sep, o.findings[s], stage_severity_name(s));
            sep = ", ";
        }
    if (r->fail_on >= 0)
        fprintf(out, " — %zu at or above %s (--fail-on)", above, stage_severity_name(r->fail_on));
    fprintf(out, "\n\n");
}

static void finding_row(FILE *out, const struct rep_run *r, size_t i, size_t k)
{
    const struct stage_finding *f = &r->f[i].v[k];
    fprintf(out, "| %s | ", stage_severity_name(f->severity));
    rep_md_text(out, f->path);
    if (f->end_line != f->line)
        fprintf(out, ":%ld–%ld | ", f->line, f->end_line);
    else
        fprintf(out, ":%ld | ", f->line);
    rep_md_text(out, rep_rule(r, i, k));
    fputs(" | ", out);
    rep_md_text(out, f->message);
    if (f->suggestion[0]) {
        fputs("<br>**Suggestion:** ", out);
        rep_md_text(out, f->suggestion);
    }
    fputs(" | ", out);
    rep_md_text(out, r->t[i].stage);
    fputs(" |\n", out);
}

/* Most severe first; within a severity, in task order. */
static void md_findings(FILE *out, const struct rep_run *r)
{
    fprintf(out, "## Findings\n\n");
    findings_counts(out, r);
    struct rep_outcome o;
    rep_run_outcome(r, &o);
    if (o.max_severity < 0)
        return;
    fprintf(out, "| severity | where | rule | finding | stage |\n|---|---|---|---|---|\n");
    for (int s = STAGE_SEV_COUNT - 1; s >= 0; s--)
        for (size_t i = 0; i < r->n; i++)
            for (size_t k = 0; k < r->f[i].n; k++)
                if (r->f[i].v[k].severity == s)
                    finding_row(out, r, i, k);
    fputc('\n', out);
}

static int same_place(const struct store_task *a, const struct store_task *b)
{
    return strcmp(a->stage, b->stage) == 0 && strcmp(a->endpoint, b->endpoint) == 0 &&
           strcmp(a->locality, b->locality) == 0 && strcmp(a->model, b->model) == 0;
}

/* The answering model is part of the result: said per stage, under the
 * table that names the models asked for. */
static void md_models(FILE *out, const struct rep_run *r)
{
    struct rep_model_diff *d = NULL;
    size_t n = rep_run_model_diffs(r, &d);
    if (n)
        fprintf(out, "**Answered by another model than the stage asked for:**\n\n");
    for (size_t i = 0; i < n; i++) {
        char line[600];
        rep_model_diff_text(&d[i], line, sizeof(line));
        fputs("- ", out);
        rep_md_text(out, line);
        fputc('\n', out);
    }
    if (n)
        fputc('\n', out);
    free(d);
}

void rep_md_where(FILE *out, const struct rep_run *r)
{
    fprintf(out, "## Where each stage ran\n\n| stage | where | endpoint | model | tasks |\n"
                 "|---|---|---|---|---|\n");
    for (size_t i = 0; i < r->n; i++) {
        const struct store_task *t = &r->t[i];
        size_t first = 0, count = 0;
        while (first < i && !(r->t[first].endpoint[0] && same_place(&r->t[first], t)))
            first++;
        if (!t->endpoint[0] || first < i)
            continue; /* not sent anywhere, or counted at its first task */
        for (size_t k = i; k < r->n; k++)
            count += same_place(&r->t[k], t);
        fputs("| ", out);
        rep_md_text(out, t->stage);
        fprintf(out, " | %s | ", t->locality);
        rep_md_text(out, t->endpoint);
        fputs(" | ", out);
        rep_md_text(out, t->model);
        fprintf(out, " | %zu |\n", count);
    }
    fputc('\n', out);
    md_models(out, r);
}

void rep_md_not_done(FILE *out, const struct rep_run *r)
{
    int any = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct store_task *t = &r->t[i];
        if (t->state == STORE_DONE && !r->unreadable[i])
            continue;
        if (!any++)
            fprintf(out, "## Withheld, failed and not finished\n\n"
                         "| item | stage | element | state | reason |\n|---|---|---|---|---|\n");
        const char *cells[] = {t->item_key, t->stage, t->element};
        for (size_t c = 0; c < 3; c++) {
            fputs("| ", out);
            rep_md_text(out, cells[c]);
            fputc(' ', out);
        }
        fprintf(out, "| %s | ", store_state_name(t->state));
        rep_md_text(out, r->unreadable[i] ? r->unreadable[i]
                         : t->error[0]    ? t->error
                                          : "not run yet");
        fputs(" |\n", out);
    }
    if (any)
        fputc('\n', out);
}

static void md_tasks_table(FILE *out, const struct rep_run *r)
{
    fprintf(out, "## Tasks\n\n| item | stage | element | state | ran on | locality | model | "
                 "label |\n|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < r->n; i++) {
        const struct store_task *t = &r->t[i];
        const char *cells[] = {t->item_key, t->stage,    t->element, store_state_name(t->state),
                               t->endpoint, t->locality, t->model,   t->label};
        for (size_t c = 0; c < BH_NELEM(cells); c++) {
            fputs("| ", out);
            rep_md_text(out, cells[c]);
            fputc(' ', out);
        }
        fputs("|\n", out);
    }
}

static void md_task(FILE *out, const struct rep_run *r, size_t i)
{
    const struct store_task *t = &r->t[i], *prev = i ? &r->t[i - 1] : NULL;
    if (!prev || strcmp(str(prev->item_key), str(t->item_key)) != 0)
        fprintf(out, "\n## %s\n", str(t->item_key));
    fprintf(out, "\n### %s%s%s — %s", str(t->stage), t->element[0] ? " · " : "", str(t->element),
            store_state_name(t->state));
    if (t->endpoint[0])
        fprintf(out, " · %s on %s (%s)", str(t->model), t->endpoint, str(t->locality));
    if (t->label[0])
        fprintf(out, " · label %s", t->label);
    if (rep_task_answered_other(t))
        fprintf(out, " · **answered by %s**", t->answered_by);
    if (t->cached)
        fprintf(out, " · from the cache");
    fprintf(out, "\n\n");
    if (t->note[0])
        fprintf(out, "> **note:** %s\n\n", t->note);
    if (t->state != STORE_DONE)
        fprintf(out, "> %s\n", t->error[0] ? t->error : "not run yet");
    else if (r->findings_stage[i] && !r->unreadable[i])
        fprintf(out, "%zu finding%s (in the table above)\n", r->f[i].n, r->f[i].n == 1 ? "" : "s");
    else
        fprintf(out, "%s\n", str(t->output));
}

/* Text written by fn into memory (owned), its length in *len. */
static char *md_capture(void (*fn)(FILE *, const struct rep_run *, size_t), const struct rep_run *r,
                        size_t i, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        abort(); /* out of memory: as bh_xmalloc does */
    fn(f, r, i);
    fclose(f);
    return buf;
}

static void part_summary(FILE *out, const struct rep_run *r, size_t unused)
{
    (void)unused;
    rep_md_summary(out, r);
}

static void part_findings(FILE *out, const struct rep_run *r, size_t unused)
{
    (void)unused;
    if (rep_run_has_findings(r))
        md_findings(out, r);
}

static void part_where(FILE *out, const struct rep_run *r, size_t unused)
{
    (void)unused;
    rep_md_where(out, r);
    rep_md_not_done(out, r);
}

static void part_tasks(FILE *out, const struct rep_run *r, size_t unused)
{
    (void)unused;
    md_tasks_table(out, r);
}

/* Room kept for the lines that say what was left out. */
#define MD_CUT_NOTE 400

struct md_part {
    char *text;
    size_t len;
    int kept;
};

static size_t findings_count(const struct rep_run *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->findings_stage[i] && !r->unreadable[i])
            n += r->f[i].n;
    return n;
}

/* Under a cap, what gives way, in this order: task outputs (from the last
 * one back), the table of tasks, the findings table. The summary and where
 * each stage ran always stay; a line at the end says what was left out. */
void rep_md(FILE *out, const struct rep_run *r, size_t max_bytes)
{
    size_t budget = !max_bytes ? (size_t)-1 : max_bytes > MD_CUT_NOTE ? max_bytes - MD_CUT_NOTE : 0;
    struct md_part s, f, w, t;
    s.text = md_capture(part_summary, r, 0, &s.len);
    f.text = md_capture(part_findings, r, 0, &f.len);
    w.text = md_capture(part_where, r, 0, &w.len);
    t.text = md_capture(part_tasks, r, 0, &t.len);
    size_t used = s.len + w.len;
    f.kept = used + f.len <= budget;
    used += f.kept ? f.len : 0;
    t.kept = used + t.len <= budget;
    used += t.kept ? t.len : 0;
    fwrite(s.text, 1, s.len, out);
    if (f.kept)
        fwrite(f.text, 1, f.len, out);
    else
        fprintf(out,
                "*%zu findings do not fit in this comment: the SARIF and jsonl reports "
                "have them.*\n\n",
                findings_count(r));
    fwrite(w.text, 1, w.len, out);
    if (t.kept)
        fwrite(t.text, 1, t.len, out);
    size_t i = 0;
    for (; i < r->n; i++) {
        size_t len = 0;
        char *task = md_capture(md_task, r, i, &len);
        int fits = used + len <= budget;
        if (fits) {
            fwrite(task, 1, len, out);
            used += len;
        }
        free(task);
        if (!fits)
            break;
    }
    if (i < r->n || !t.kept || !f.kept)
        fprintf(out,
                "\n*Left out to keep this report under %zu bytes:%s%s the outputs of %zu "
                "of %zu tasks — `bulkhead report --format jsonl` has everything.*\n",
                max_bytes, f.kept ? "" : " the findings table,",
                t.kept ? "" : " the table of tasks,", r->n - i, r->n);
    free(s.text);
    free(f.text);
    free(w.text);
    free(t.text);
}
