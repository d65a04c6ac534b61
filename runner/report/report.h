/* report/report.h — the results of a run, read back from the store and
 * written as Markdown (for people) or JSON Lines (for programs). A report
 * never looks complete when it is not: failed and withheld tasks are listed
 * with their reasons.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef REP_REPORT_H
#define REP_REPORT_H

#include <stdint.h>
#include <stdio.h>

struct bh_err;
struct store;

/* Formats: "md" (alias "markdown") and "jsonl". */
int rep_format_known(const char *format);

int rep_write(struct store *s, int64_t run_id, const char *format, FILE *out,
              struct bh_err *err);

/* Writes to path through a temporary file renamed into place. */
int rep_write_file(struct store *s, int64_t run_id, const char *format, const char *path,
                   struct bh_err *err);

#endif
