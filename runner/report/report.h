/* report/report.h — the results of a run, read back from the store and
 * written for people (md: a pull-request comment), for programs (jsonl), for
 * code scanning (sarif: SARIF 2.1.0), for test dashboards (junit) and for
 * GitHub's review API (github-review). A report never looks complete when it
 * is not: failed and withheld tasks are listed with their reasons.
 * Findings are the outputs of the stages the run recorded as findings stages
 * (store_run_findings), read with findings/findings.h.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef REP_REPORT_H
#define REP_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct bh_err;
struct store;

struct rep_opts {
    const char *format;    /* see rep_format_known */
    int fail_on;           /* enum stage_severity: findings at or above it are failures
                              (junit) and counted in md; -1: none is */
    size_t max_bytes;      /* md: 0, or a cap on the report (a comment box has one): task
                              outputs give way (from the last one back), then the table of
                              tasks, then the findings table; a line says what went */
    const char *clearance; /* NULL: every output (local use). A label of the run: outputs
                              (and findings) of tasks labelled above it are left out, the
                              task shown withheld with its label; a failed task's message
                              (it may quote a reply) is left out too: a report that leaves
                              the machine is egress (rep_run_clear) */
};
#define REP_OPTS_INIT                                                                              \
    {                                                                                              \
        "md", -1, 0, NULL                                                                          \
    }

/* Formats: "md" (alias "markdown"), "jsonl", "sarif", "junit", "github-review". */
int rep_format_known(const char *format);
/* "md, jsonl, sarif, junit, github-review": for messages. */
const char *rep_format_list(void);

int rep_write(struct store *s, int64_t run_id, const struct rep_opts *o, FILE *out,
              struct bh_err *err);

/* Writes to path through a temporary file renamed into place. */
int rep_write_file(struct store *s, int64_t run_id, const struct rep_opts *o, const char *path,
                   struct bh_err *err);

/* What a run came to, for exit codes. */
struct rep_outcome {
    size_t tasks, done, failed, withheld, unfinished;
    size_t skipped;     /* withheld as the pipeline declares (on_sensitive skip): by design */
    size_t findings[5]; /* per enum stage_severity */
    int max_severity;   /* the highest finding's, or -1 without findings */
    size_t unreadable;  /* done findings tasks whose stored output does not read */
};
int rep_outcome(struct store *s, int64_t run_id, struct rep_outcome *out, struct bh_err *err);

/* GitHub Actions workflow commands, one per finding: "::error file=P,line=N,
 * endLine=M,title=RULE::MESSAGE" (error for high and critical, warning for
 * medium, notice for low and info), escaped as GitHub's toolkit escapes them.
 * clearance as in rep_opts: NULL every finding, else only those of tasks
 * labelled at or below it (a job log leaves the machine too). */
int rep_annotations(struct store *s, int64_t run_id, const char *clearance, FILE *out,
                    struct bh_err *err);

/* One line per stage whose tasks were answered by another model than they
 * asked for (the server's own aliasing aside: ":latest", bulkhead's ":local"),
 * each after prefix, head before the first: "review: asked qwen2.5-coder:14b,
 * answered by stories260K (40 of 40 tasks)". Nothing when every reply came
 * from the model asked. */
int rep_models_print(struct store *s, int64_t run_id, const char *head, const char *prefix,
                     FILE *out, struct bh_err *err);

#endif
