/* store/store.h — durable run state in SQLite (WAL), under a state folder
 * (default .bulkhead/): runs, items, tasks with their results, and the
 * hash-chained audit log. One process, one thread writes.
 * Completion of a task is committed before store_task_finish returns, so a
 * crash after it never loses finished work.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stdint.h>
#include <stddef.h>

struct bh_err;
struct store;

enum store_state {
    STORE_PENDING = 0,
    STORE_RUNNING = 1,
    STORE_DONE = 2,
    STORE_FAILED = 3,
    STORE_WITHHELD = 4, /* refused by policy; the reason is in error */
    STORE_SKIPPED = 5,  /* withheld as the pipeline declares (on_sensitive "skip", or an
                           input that was): by design, not a refusal; reason in error */
};

/* "pending", "running", "done", "failed", "withheld", "skipped". */
const char *store_state_name(int state);

/* Opens (creating if needed) DIR/state.db; creates DIR too. */
int store_open(struct store **out, const char *dir, struct bh_err *err);
void store_free(struct store *s); /* NULL is fine */

/* Takes DIR/run.lock (an advisory flock held until store_free), so that two
 * runs never work on one state folder at once: a second would send running
 * tasks back to pending and redo them. Readers (report, audit) do not lock.
 * BH_EINVAL naming the folder when another process holds it. */
int store_lock_runner(struct store *s, struct bh_err *err);

/* How long a write waits for another process's lock before failing with a
 * "locked by another process" error (default 5000 ms; 0 fails at once). */
void store_set_busy_timeout(struct store *s, int ms);

/* Groups many writes (the store_item_put and store_task_put of a whole run)
 * into one transaction: one disk sync instead of one per row. Inside a batch
 * the "committed on return" promises below hold only once store_batch_commit
 * returns 0. A failed write inside a batch undoes only itself. store_free
 * with a batch open rolls the batch back. BH_EINTERNAL for begin inside a
 * batch or commit outside one. */
int store_batch_begin(struct store *s, struct bh_err *err);
int store_batch_commit(struct store *s, struct bh_err *err);
/* 1 while a batch is open (a writer that would open its own writes into it
 * instead, and is committed with it). */
int store_batch_open(const struct store *s);

/* --fresh: the run with this key (if any) keeps its tasks, results and audit
 * records but gives up the key (it becomes "KEY:retired:ID"), so that the
 * next store_run_open starts a new run. */
int store_run_retire(struct store *s, const char *run_key, struct bh_err *err);

/* Finds the run with this key or creates it. A found run is resumed: its
 * running tasks go back to pending and *resumed is 1. */
int store_run_open(struct store *s, const char *run_key, const char *pipeline_name, int64_t *run_id,
                   int *resumed, struct bh_err *err);
/* Records the run's end: status "ok", "failed", "refused", ... */
int store_run_finish(struct store *s, int64_t run_id, const char *status, struct bh_err *err);
/* The run's label lattice, lowest first (what audit verification compares
 * labels with). Stored joined by newlines: a label holding a newline cannot
 * be kept (BH_EINVAL). */
int store_run_set_labels(struct store *s, int64_t run_id, char *const *labels, size_t n,
                         struct bh_err *err);
/* Reads them back into *labels (owned: free each and the array); *n = 0 when
 * the run recorded none. */
int store_run_labels(struct store *s, int64_t run_id, char ***labels, size_t *n,
                     struct bh_err *err);
/* The stages of the run whose outputs are findings (output format
 * "findings"), as the reports need to know; stored and read back like the
 * labels. A run made before this was kept reads back none. */
int store_run_set_findings(struct store *s, int64_t run_id, char *const *stages, size_t n,
                           struct bh_err *err);
int store_run_findings(struct store *s, int64_t run_id, char ***stages, size_t *n,
                       struct bh_err *err);
/* The most recently started (created) run, leaving out the audit-only runs of
 * `bulkhead models` (keys starting with "models:"); resuming does not make a
 * run the latest. BH_ENOTFOUND when there is none. */
int store_run_latest(struct store *s, int64_t *run_id, struct bh_err *err);

/* Idempotent: returns the existing item with this key in this run. */
int store_item_put(struct store *s, int64_t run_id, const char *key, int64_t *item_id,
                   struct bh_err *err);
/* Idempotent: returns the existing task for (item, stage, element). element
 * names a for_each element ("src/main.c", "0") or a part of a fold; NULL or ""
 * for a task without one. New tasks are pending. */
int store_task_put(struct store *s, int64_t run_id, int64_t item_id, const char *stage,
                   const char *element, int64_t *task_id, struct bh_err *err);
/* Removes a task row (a stand-in for a fan-out whose elements now exist).
 * Removing a task that is not there is not an error. */
int store_task_drop(struct store *s, int64_t task_id, struct bh_err *err);
int store_task_set_running(struct store *s, int64_t task_id, struct bh_err *err);

/* What a finished task produced. Strings may be NULL. */
struct store_result {
    int state;          /* STORE_DONE, STORE_FAILED, STORE_WITHHELD or STORE_SKIPPED */
    const char *output; /* the model's reply (done) */
    const char *label;  /* label name of the output */
    const char *endpoint, *locality, *model;
    const char *answered_by; /* the model the reply named (may differ from model) */
    const char *error;       /* failed/withheld/skipped: the message shown to the user */
    const char *note;        /* done: a warning that goes with the output, e.g. the
                                prompt filled the context window */
    int cached;              /* done: answered from the response cache, nothing sent */
    int64_t prompt_tokens, output_tokens, load_ns, total_ns;
};
/* Writes the result and the new state in one transaction, committed on return. */
int store_task_finish(struct store *s, int64_t task_id, const struct store_result *r,
                      struct bh_err *err);

/* A task row as read back. All strings owned by the array (store_tasks_free);
 * never NULL: a NULL written by store_task_finish reads back as "". */
struct store_task {
    int64_t id, item_id;
    char *item_key, *stage;
    char *element; /* "" for a task without one */
    int state;
    char *output, *label, *endpoint, *locality, *model, *error, *answered_by;
    char *note;
    int cached;
    int64_t prompt_tokens, output_tokens, load_ns, total_ns;
};
/* Every task of the run, ordered by item id then task id (tasks created
 * later, such as the elements of a fan-out, come after their item's others). */
int store_tasks_list(struct store *s, int64_t run_id, struct store_task **out, size_t *n,
                     struct bh_err *err);
void store_tasks_free(struct store_task *t, size_t n);

/* One audit record: an egress attempt (allowed or refused). Strings may be NULL
 * (stored as empty). Never a payload, never a secret: only its hash and size. */
struct store_audit {
    int64_t seq;   /* filled on read */
    char time[32]; /* filled by append (UTC, RFC 3339) */
    int64_t run_id;
    const char *item, *stage, *endpoint, *url, *locality, *model;
    const char *label, *clearance;
    const char *decision; /* "allow", "refuse", "cached", "declassify", "keep" or "breach" */
    const char *reason;
    const char *payload_sha256;
    int64_t bytes;
    char prev_hash[65], hash[65]; /* filled by append / on read */
};
/* Appends r, chaining it: hash = SHA-256(prev_hash and every field). Committed on return. */
int store_audit_append(struct store *s, struct store_audit *r, struct bh_err *err);

/* Calls fn for each record in order (strings valid during the call only).
 * A non-zero return from fn stops the walk and is returned. */
typedef int (*store_audit_fn)(void *ud, const struct store_audit *r);
int store_audit_each(struct store *s, store_audit_fn fn, void *ud, struct bh_err *err);

/* Recomputes the chain. On a break, BH_EINVAL with the record's seq in the message.
 * A merge record (decision "merge", written by store_audit_link) is checked
 * with the chain it links: that chain is recomputed from its start, and it
 * must hold exactly the record's bytes records and end with the hash in its
 * payload_sha256. */
int store_audit_verify_chain(struct store *s, int64_t *n_records, struct bh_err *err);

/* Links the whole audit chain of from (a shard's state) into into's: one
 * merge record in into's chain, for run run_id, whose payload_sha256 is
 * from's newest hash and bytes its number of records, reason the given
 * text; from's records are copied as they are (seq, hashes) beside into's
 * chain, under that record. from's chain is recomputed first: BH_EINVAL
 * naming the record where it breaks. Inside a batch, nothing is committed
 * before the batch. */
int store_audit_link(struct store *into, struct store *from, int64_t run_id, const char *reason,
                     struct bh_err *err);

/* Calls fn for each record the merge record with this seq links, in order
 * (none when it links none). Strings valid during the call only. */
int store_audit_each_linked(struct store *s, int64_t link, store_audit_fn fn, void *ud,
                            struct bh_err *err);

/* ---- shards (store/merge.c) ---- */

/* The run key of shard index of count of the run whose key is base
 * ("BASE/shard-I-of-N"). Owned by the caller. */
char *store_shard_key(const char *base, unsigned index, unsigned count);
/* 1 when key is a shard's run key: *base (owned), *index, *count set; else 0. */
int store_shard_key_parse(const char *key, char **base, unsigned *index, unsigned *count);
/* The shard (0..n-1) a work item falls in: the first 8 bytes of the SHA-256
 * of its key, big-endian, modulo n, so every machine splits a batch the
 * same way whatever order it lists the items in, and merge can check that
 * a shard holds only its own items. n > 0. */
unsigned store_shard_of(const char *key, unsigned n);

/* One shard's state, opened by the caller, and its folder for messages. */
struct store_shard {
    struct store *s;
    const char *name;
};
/* Merges the latest run of each shard state into into (a new state): a run
 * under the shards' common base key with their labels and findings stages,
 * every task once (copied with its result), and each shard's audit chain
 * linked by a merge record (store_audit_link), in shard order, all in one
 * transaction. BH_EINVAL with a message naming the states when a state's
 * latest run is not a shard's, the shards are of different runs, one is
 * given twice or missing, a shard has unfinished tasks, two shards ended
 * one task differently, a shard's audit chain is broken, or into already
 * holds the run. The caller verifies each shard's audit beyond its chain. */
int store_merge(struct store *into, const struct store_shard *shards, size_t n, struct bh_err *err);
/* How many shards were merged into the run (0: the run is no merge). */
int store_run_merged(struct store *s, int64_t run_id, size_t *n_shards, struct bh_err *err);

#endif
