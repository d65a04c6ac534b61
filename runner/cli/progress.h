/* cli/progress.h — how far a run has got, for people: a live block of lines
 * on a terminal, plain lines in a CI log, and the same table for `bulkhead
 * status` from the state database. */
#ifndef CLI_PROGRESS_H
#define CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct eng_progress;

/* One line of the table: one stage. */
struct cli_stage_row {
    const char *name;
    size_t total, done, failed, withheld, in_flight, cached;
    size_t skipped;        /* as the pipeline declares: shown only when there are some */
    size_t reused;         /* done by an earlier attempt (in done; not in the ETA's rate) */
    int64_t output_tokens; /* of replies a model gave (tokens/s) */
    int64_t active_ms;     /* how long the stage has been running, or ran */
    int ended;             /* no task of it is left: no ETA, "ended" */
    const char *endpoint;  /* where it runs, or NULL */
    const char *model;     /* the model last seen answering there, or NULL */
};

/* Formats r into buf: name padded to name_width, done/total, in flight, ETA
 * (remaining tasks at the rate of those ended so far), failures, cached,
 * tokens/s, endpoint and model. No newline. Returns buf. */
const char *cli_progress_row(const struct cli_stage_row *r, int name_width, char *buf, size_t size);

enum cli_progress_mode {
    CLI_PROGRESS_OFF = 0,   /* --quiet */
    CLI_PROGRESS_LIVE = 1,  /* a terminal: a block of lines redrawn in place */
    CLI_PROGRESS_PLAIN = 2, /* a log: a line every CLI_PROGRESS_PLAIN_MS and per stage end */
};
#define CLI_PROGRESS_PLAIN_MS 10000

/* The mode for f: LIVE when it is a terminal (and TERM is not "dumb"),
 * PLAIN otherwise, OFF when quiet. */
int cli_progress_mode(FILE *f, int quiet);

struct cli_progress;
/* A display writing to f (borrowed) in mode; NULL for CLI_PROGRESS_OFF. */
struct cli_progress *cli_progress_new(FILE *f, int mode);
/* Leaves what was drawn last on the screen. NULL is fine. */
void cli_progress_free(struct cli_progress *pr);

/* An eng_progress_fn: ud is the struct cli_progress. */
void cli_progress_update(void *ud, const struct eng_progress *p);
/* An eng_say_fn: prints line above a live block (which is drawn again below
 * it), or simply as a line. */
void cli_progress_say(void *ud, const char *line);

#endif
