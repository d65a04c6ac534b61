/* store/store_int.h — private to the store module: the struct behind the
 * opaque handle and the helpers store.c and audit.c share. SQLite never
 * leaves this folder. */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "store/store.h"

/* One slot per cached prepared statement. The SQL text lives next to the
 * code that uses it; the slot only says where the prepared form is kept. */
enum store_q {
    Q_RUN_FIND,
    Q_RUN_INSERT,
    Q_RUN_RESUME,
    Q_RUN_RESET_TASKS,
    Q_RUN_FINISH,
    Q_RUN_RETIRE,
    Q_RUN_LATEST,
    Q_RUN_SET_LABELS,
    Q_RUN_LABELS,
    Q_RUN_SET_FINDINGS,
    Q_RUN_FINDINGS,
    Q_ITEM_FIND,
    Q_ITEM_INSERT,
    Q_TASK_FIND,
    Q_TASK_INSERT,
    Q_TASK_RUNNING,
    Q_TASK_FINISH,
    Q_TASK_LIST,
    Q_TASK_DROP,
    Q_AUDIT_LAST,
    Q_AUDIT_INSERT,
    Q_AUDIT_ALL,
    Q_AUDIT_LINKED,
    Q_AUDIT_LINK_INSERT,
    Q_CACHE_PUT,
    Q_CACHE_GET,
    Q_CACHE_HIT,
    Q_CACHE_DROP,
    Q_CACHE_STATS,
    Q_CACHE_PRUNE,
    Q__COUNT
};

struct store {
    sqlite3 *db;
    char *path;                /* DIR/state.db, for messages */
    int busy_ms;               /* how long to wait for another process's lock */
    int batch;                 /* 1 while store_batch_begin's transaction is open */
    int tx_savepoint;          /* the open store_tx_begin is a savepoint in a batch */
    int lock_fd;               /* DIR/run.lock held by store_lock_runner, or -1 */
    sqlite3_stmt *q[Q__COUNT]; /* prepared on first use, finalized by store_free */
};

/* Translates SQLite's last error on s->db (rc is the failing call's result)
 * into err, naming the database. Returns BH_EIO. */
int store_sqlerr(struct store *s, int rc, struct bh_err *err);

/* The cached statement for slot (prepared from sql on first use), reset and
 * with its bindings cleared. Borrowed; valid until store_free. */
int store_stmt(struct store *s, enum store_q slot, const char *sql, sqlite3_stmt **out,
               struct bh_err *err);

/* Steps st: 1 for a row, 0 when done, a negative BH_E* code (err set) on
 * failure. The caller resets st when it is finished with the rows. */
int store_step(struct store *s, sqlite3_stmt *st, struct bh_err *err);

/* One write statement committed without a disk sync of its own (then
 * reset): for rows whose loss in a power cut costs redoing work, never
 * losing it — a cache entry, a task marked running (which a resume puts back
 * to pending anyway). 0 or a negative BH_E* code. */
int store_step_unsynced(struct store *s, sqlite3_stmt *st, struct bh_err *err);

/* Binds s, or "" for NULL: optional strings are stored as empty text. The
 * string must outlive the step (SQLITE_STATIC). Returns an SQLite code. */
int store_bind_text(sqlite3_stmt *st, int idx, const char *s);

/* A column as text, "" for NULL. Borrowed until the next step or reset. */
const char *store_col_text(sqlite3_stmt *st, int col);

/* A write transaction: BEGIN IMMEDIATE, or a savepoint inside a batch.
 * end commits when rc is 0 and rolls back otherwise; it returns rc, or the
 * commit's error. */
int store_tx_begin(struct store *s, struct bh_err *err);
int store_tx_end(struct store *s, int rc, struct bh_err *err);

/* The current UTC time as RFC 3339 with milliseconds: 2026-11-24T12:00:00.123Z. */
void store_now(char out[32]);

#endif
