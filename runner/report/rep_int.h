/* report/rep_int.h — private to the report module: a run as the writers
 * see it (its tasks, and the findings of each findings task) and the
 * writers themselves, one file per format. */
#ifndef REP_INT_H
#define REP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "findings/findings.h"
#include "store/store.h"

struct rep_run {
    int64_t id;
    struct store_task *t;
    size_t n;
    int *findings_stage;      /* per task: 1 when its stage's output is findings */
    struct stage_findings *f; /* per task: its findings (done findings tasks) */
    char **unreadable;        /* per task: why its stored findings do not read, or NULL */
    int fail_on;              /* enum stage_severity, or -1 */
};

int rep_run_load(struct store *s, int64_t run_id, int fail_on, struct rep_run *r,
                 struct bh_err *err);
void rep_run_release(struct rep_run *r);
/* Holds back from r what may not leave at clearance (a label of the run;
 * BH_EINVAL naming the run's labels otherwise): a done task labelled above
 * it (a label the run does not know counts as the top) loses its output and
 * findings and becomes withheld, its error saying so with both labels; a
 * failed task whose label is unknown or above it loses its message, which
 * may quote the model's reply. Only ever removes. */
int rep_run_clear(struct store *s, struct rep_run *r, const char *clearance, struct bh_err *err);
void rep_run_outcome(const struct rep_run *r, struct rep_outcome *o);
/* 1 when the run has at least one findings stage. */
int rep_run_has_findings(const struct rep_run *r);
/* The rule a finding is reported under: its own, else its stage's name. */
const char *rep_rule(const struct rep_run *r, size_t task, size_t finding);

/* A stage whose tasks were answered by another model than they asked for
 * (rep_models.c). Strings are borrowed from the run's tasks. */
struct rep_model_diff {
    const char *stage, *asked, *answered;
    size_t n;  /* tasks of the stage that asked `asked` and were answered by `answered` */
    size_t of; /* tasks of the stage that asked `asked` and were answered at all */
};
/* 1 when task t was answered by another model than it asked for. */
int rep_task_answered_other(const struct store_task *t);
/* Every (stage, asked, answered) that differs, in task order, into *out (owned,
 * NULL when none); returns how many. */
size_t rep_run_model_diffs(const struct rep_run *r, struct rep_model_diff **out);
/* The difference task t is part of, or NULL. */
const struct rep_model_diff *rep_model_diff_of(const struct rep_model_diff *d, size_t n,
                                               const struct store_task *t);
/* "review: asked qwen2.5-coder:14b, answered by stories260K (40 of 40 tasks)" */
void rep_model_diff_text(const struct rep_model_diff *d, char *buf, size_t size);

/* Writes s (NULL as "") as XML 1.0 attribute or element text: the five
 * entities, control characters other than tab and newlines dropped, each
 * maximal subpart of ill-formed UTF-8 as U+FFFD (bh_utf8_seq decides). */
void rep_xml_text(FILE *out, const char *s);

/* The JSON writers build through util/bh_json.h (bh_json_set, bh_json_push:
 * every jansson result checked, a failure latched in a bad flag); a writer
 * that sees it set fails loudly. rep_run_load makes every stored string valid
 * UTF-8, so a failure there is a bug.
 * BH_EINTERNAL naming the format and run: "cannot build the <what>: ...". */
int rep_json_failed(const struct rep_run *r, const char *what, struct bh_err *err);

/* The writers. Each returns 0 or a negative BH_E* code (the JSON builders
 * fail when a value cannot be built, see bh_json_set; a write error is
 * checked by the caller). */
void rep_md(FILE *out, const struct rep_run *r, size_t max_bytes);
int rep_jsonl(FILE *out, const struct rep_run *r, struct bh_err *err);
int rep_sarif(FILE *out, const struct rep_run *r, struct bh_err *err);
void rep_junit(FILE *out, const struct rep_run *r);
int rep_github_review(FILE *out, const struct rep_run *r, struct bh_err *err);
void rep_github_annotations(FILE *out, const struct rep_run *r);

/* Shared by md and github-review: */
/* s as the text of a Markdown table cell or paragraph: Markdown's active
 * characters escaped, HTML disarmed, line breaks as <br>. */
void rep_md_text(FILE *out, const char *s);
void rep_md_summary(FILE *out, const struct rep_run *r);
void rep_md_where(FILE *out, const struct rep_run *r);
void rep_md_not_done(FILE *out, const struct rep_run *r);

#endif
