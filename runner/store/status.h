/* store/status.h — what `bulkhead status` reads: a run and its tasks counted
 * per stage. Read-only, and cheap enough to ask while a run is going on (the
 * database is WAL: a reader never waits for the runner, nor it for a reader).
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef STORE_STATUS_H
#define STORE_STATUS_H

#include <stddef.h>
#include <stdint.h>

struct bh_err;
struct store;

/* A run as recorded. Strings owned (store_run_info_release); finished is ""
 * while the run goes on. */
struct store_run_info {
    int64_t id;
    char *pipeline, *started, *finished, *status;
};
/* BH_ENOTFOUND naming the run when there is none with this id. */
int store_run_info(struct store *s, int64_t run_id, struct store_run_info *out, struct bh_err *err);
void store_run_info_release(struct store_run_info *r); /* NULL is fine */

/* One stage's tasks of a run, by state. */
struct store_stage_count {
    char *stage; /* owned */
    int64_t total, pending, running, done, failed, withheld;
    int64_t skipped; /* withheld as the pipeline declares (on_sensitive skip) */
    int64_t cached;  /* done from the response cache */
    int64_t prompt_tokens, output_tokens; /* of replies a model gave (cached ones left out) */
    int64_t active_ms;                    /* the time its tasks ran (a task running now: up to
                                             now), overlapping tasks once, the gaps between them
                                             (a crash before its resume) not at all; 0 before any */
    char *endpoint, *model;               /* where its tasks ran; "" when nowhere yet, or in
                                             several places (a reroute); the hosts of one
                                             endpoint pool, "gpus#1,gpus#3", are one place;
                                             owned */
};
/* Every stage that has tasks in the run, in the order its first task was
 * made (the order stages run in). *out owned: store_stage_counts_free. */
int store_stage_counts(struct store *s, int64_t run_id, struct store_stage_count **out, size_t *n,
                       struct bh_err *err);
void store_stage_counts_free(struct store_stage_count *v, size_t n);

#endif
