/* store/store.c — the connection: creating the state folder and database,
 * the pragmas that make finished work durable, the schema and its
 * migrations, and the statement/transaction helpers tasks.c and audit.c use.
 *
 * Durability over speed: WAL with synchronous=FULL syncs the log on every
 * commit, so a task reported finished survives a power cut; callers that
 * write many rows at once group them with store_batch_begin/commit (a run
 * sits in one batch that the gate commits once per network turn, before any
 * request audited in it leaves: egress.h), and
 * writes whose loss only means redoing work skip their own sync
 * (store_step_unsynced: a task marked running, a cache entry).
 * The folder is 0700 and the file 0600 because tasks hold model outputs about
 * private code; we create the file ourselves since SQLite would use 0644, and
 * its -wal and -shm files copy the database file's mode. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define BUSY_MS_DEFAULT 5000

/* The schema, one entry per version step: migrations[v] takes version v to
 * v + 1 and sets user_version itself, so the step commits as one unit. */
static const char *const migrations[] = {
    "CREATE TABLE runs ("
    " id INTEGER PRIMARY KEY,"
    " key TEXT NOT NULL UNIQUE,"
    " pipeline TEXT NOT NULL,"
    " started TEXT NOT NULL,"
    " finished TEXT,"
    " status TEXT NOT NULL DEFAULT 'running',"
    " labels TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE items ("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(id),"
    " key TEXT NOT NULL,"
    " UNIQUE (run_id, key));"
    "CREATE TABLE tasks ("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(id),"
    " item_id INTEGER NOT NULL REFERENCES items(id),"
    " stage TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " output TEXT NOT NULL DEFAULT '', label TEXT NOT NULL DEFAULT '',"
    " endpoint TEXT NOT NULL DEFAULT '', locality TEXT NOT NULL DEFAULT '',"
    " model TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',"
    " answered_by TEXT NOT NULL DEFAULT '',"
    " prompt_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,"
    " load_ns INTEGER NOT NULL DEFAULT 0, total_ns INTEGER NOT NULL DEFAULT 0,"
    " started TEXT, finished TEXT,"
    " UNIQUE (item_id, stage));"
    "CREATE INDEX tasks_by_run ON tasks (run_id, state);"
    /* No foreign key on audit.run_id: a refusal can be audited before any
     * run exists, and the log must outlive whatever it describes. */
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY,"
    " time TEXT NOT NULL, run_id INTEGER NOT NULL,"
    " item TEXT NOT NULL, stage TEXT NOT NULL, endpoint TEXT NOT NULL, url TEXT NOT NULL,"
    " locality TEXT NOT NULL, model TEXT NOT NULL, label TEXT NOT NULL,"
    " clearance TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL,"
    " payload_sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    "PRAGMA user_version = 1;",
    /* 1 -> 2: a task per for_each element (element '' for a task without
     * one). SQLite cannot change a UNIQUE constraint in place: the table is
     * copied. Old rows keep their ids, so a resumed run finds them. */
    "CREATE TABLE tasks_v2 ("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(id),"
    " item_id INTEGER NOT NULL REFERENCES items(id),"
    " stage TEXT NOT NULL,"
    " element TEXT NOT NULL DEFAULT '',"
    " state INTEGER NOT NULL DEFAULT 0,"
    " output TEXT NOT NULL DEFAULT '', label TEXT NOT NULL DEFAULT '',"
    " endpoint TEXT NOT NULL DEFAULT '', locality TEXT NOT NULL DEFAULT '',"
    " model TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',"
    " answered_by TEXT NOT NULL DEFAULT '',"
    " prompt_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,"
    " load_ns INTEGER NOT NULL DEFAULT 0, total_ns INTEGER NOT NULL DEFAULT 0,"
    " started TEXT, finished TEXT,"
    " UNIQUE (run_id, item_id, stage, element));"
    "INSERT INTO tasks_v2 (id, run_id, item_id, stage, state, output, label, endpoint,"
    " locality, model, error, answered_by, prompt_tokens, output_tokens, load_ns, total_ns,"
    " started, finished)"
    " SELECT id, run_id, item_id, stage, state, output, label, endpoint, locality, model,"
    " error, answered_by, prompt_tokens, output_tokens, load_ns, total_ns, started, finished"
    " FROM tasks;"
    "DROP TABLE tasks;"
    "ALTER TABLE tasks_v2 RENAME TO tasks;"
    "CREATE INDEX tasks_by_run ON tasks (run_id, state);"
    "PRAGMA user_version = 2;",
    /* 2 -> 3: a result answered from the response cache (nothing was sent),
     * and a note on a result the user should look at twice (a prompt that
     * reached the context window). */
    "ALTER TABLE tasks ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN note TEXT NOT NULL DEFAULT '';"
    "PRAGMA user_version = 3;",
    /* 3 -> 4: the stages whose outputs are findings, so that reports read
     * them without the pipeline file. */
    "ALTER TABLE runs ADD COLUMN findings TEXT NOT NULL DEFAULT '';"
    "PRAGMA user_version = 4;",
    /* 4 -> 5: the response cache (store/cache.c). Kept across runs: a reply
     * found by its request's hash, whichever run asked first. */
    "CREATE TABLE cache ("
    " key TEXT PRIMARY KEY,"
    " value BLOB NOT NULL,"
    " label TEXT NOT NULL DEFAULT '',"
    " raw_bytes INTEGER NOT NULL, stored_bytes INTEGER NOT NULL,"
    " created INTEGER NOT NULL, last_used INTEGER NOT NULL,"
    " hits INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX cache_by_last_used ON cache (last_used);"
    "PRAGMA user_version = 5;",
};
#define SCHEMA_VERSION ((int)(BH_NELEM(migrations)))

static const char *const state_names[] = {
    [STORE_PENDING] = "pending", [STORE_RUNNING] = "running",   [STORE_DONE] = "done",
    [STORE_FAILED] = "failed",   [STORE_WITHHELD] = "withheld", [STORE_SKIPPED] = "skipped",
};

const char *store_state_name(int state)
{
    if (state < 0 || state >= (int)(BH_NELEM(state_names)))
        return "unknown";
    return state_names[state];
}

/* ---- errors and statement helpers ------------------------------------ */

/* What the user can do about the errors that are not bugs. */
static const char *sql_hint(int primary)
{
    switch (primary) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return ": move the file away or use another --state";
    case SQLITE_FULL: return ": free some disk space and run again (finished work is kept)";
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM: return ": check the folder's permissions or use another --state";
    default: return "";
    }
}

int store_sqlerr(struct store *s, int rc, struct bh_err *err)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        return bh_err_set(err, BH_EIO,
                          "state database %s is locked by another process (waited %d ms): "
                          "if another bulkhead is running with this --state, wait for it to "
                          "finish or use another --state",
                          s->path, s->busy_ms);
    return bh_err_set(err, BH_EIO, "state database %s: %s%s", s->path,
                      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), sql_hint(primary));
}

int store_stmt(struct store *s, enum store_q slot, const char *sql, sqlite3_stmt **out,
               struct bh_err *err)
{
    sqlite3_stmt *st = s->q[slot];
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        *out = st;
        return 0;
    }
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    s->q[slot] = st;
    *out = st;
    return 0;
}

int store_step(struct store *s, sqlite3_stmt *st, struct bh_err *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    int code = store_sqlerr(s, rc, err);
    sqlite3_reset(st);
    return code;
}

int store_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    return sqlite3_bind_text(st, idx, s ? s : "", -1, SQLITE_STATIC);
}

const char *store_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

static int exec(struct store *s, const char *sql, struct bh_err *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store_sqlerr(s, rc, err);
}

/* IMMEDIATE takes the write lock up front: a read-then-write transaction
 * started DEFERRED can fail with SQLITE_BUSY at the write, past any wait. */
int store_tx_begin(struct store *s, struct bh_err *err)
{
    /* Inside a batch that SQLite has not rolled back: nest as a savepoint. */
    s->tx_savepoint = s->batch && !sqlite3_get_autocommit(s->db);
    return exec(s, s->tx_savepoint ? "SAVEPOINT bh" : "BEGIN IMMEDIATE", err);
}

int store_tx_end(struct store *s, int rc, struct bh_err *err)
{
    if (rc == 0)
        rc = exec(s, s->tx_savepoint ? "RELEASE bh" : "COMMIT", err);
    if (rc == 0)
        return 0;
    /* err already says what failed; the rollback's own error would hide it.
     * If SQLite already rolled everything back these fail harmlessly. */
    sqlite3_exec(s->db, s->tx_savepoint ? "ROLLBACK TO bh; RELEASE bh" : "ROLLBACK", NULL, NULL,
                 NULL);
    return rc;
}

/* Milliseconds: a task of a fast model takes less than a second, and status
 * adds task durations up (whole seconds made its tokens/s wrong). SQLite's
 * date functions read the fraction and the Z. */
void store_now(char out[32])
{
    struct timespec ts = {0, 0};
    struct tm tm;
    char sec[24];
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm) ||
        !strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(sec, sizeof(sec), "1970-01-01T00:00:00");
    snprintf(out, 32, "%.19s.%03dZ", sec, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* ---- opening --------------------------------------------------------- */

static int mkdir_one(const char *path, struct bh_err *err)
{
    struct stat st;
    if (mkdir(path, 0700) == 0)
        return 0;
    int e = errno;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return bh_err_set(err, BH_EIO,
                      "cannot create state folder '%s': %s: check the path and its "
                      "permissions, or use another --state",
                      path, strerror(e == EEXIST ? ENOTDIR : e));
}

/* mkdir -p: every missing component is created 0700; existing folders are
 * left as they are (they are the user's). */
static int mkdir_p(const char *dir, struct bh_err *err)
{
    char *p = bh_xstrdup(dir);
    int rc = 0;
    for (char *c = p + 1; *c && rc == 0; c++) {
        if (*c != '/' || c[-1] == '/')
            continue;
        *c = '\0';
        rc = mkdir_one(p, err);
        *c = '/';
    }
    if (rc == 0)
        rc = mkdir_one(p, err);
    free(p);
    return rc;
}

/* Creates the file 0600 if it is missing, so SQLite never creates it 0644. */
static int file_create(const struct store *s, struct bh_err *err)
{
    int fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return bh_err_set(err, BH_EIO,
                          "state database %s: cannot open: %s: check the folder's "
                          "permissions or use another --state",
                          s->path, strerror(errno));
    close(fd);
    return 0;
}

static int version_read(struct store *s, int *version, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    rc = store_step(s, st, err);
    if (rc == 1)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

static int version_check(const struct store *s, int version, struct bh_err *err)
{
    if (version <= SCHEMA_VERSION && version >= 0)
        return 0;
    return bh_err_set(err, BH_EINVAL,
                      "state database %s has schema version %d, this bulkhead knows up to %d: "
                      "upgrade bulkhead or use another --state",
                      s->path, version, SCHEMA_VERSION);
}

/* Brings the schema to SCHEMA_VERSION. The version is read again inside the
 * write transaction because another process may have migrated meanwhile. */
static int schema_migrate(struct store *s, struct bh_err *err)
{
    int version = 0;
    int rc = version_read(s, &version, err);
    if (rc == 0)
        rc = version_check(s, version, err);
    if (rc || version == SCHEMA_VERSION)
        return rc;
    rc = store_tx_begin(s, err);
    if (rc)
        return rc;
    rc = version_read(s, &version, err);
    if (rc == 0)
        rc = version_check(s, version, err);
    for (int v = version; rc == 0 && v < SCHEMA_VERSION; v++)
        rc = exec(s, migrations[v], err);
    return store_tx_end(s, rc, err);
}

static int db_open(struct store *s, struct bh_err *err)
{
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->busy_ms);
    rc = exec(s, "PRAGMA foreign_keys = ON", err);
    if (rc == 0)
        rc = exec(s, "PRAGMA journal_mode = WAL", err);
    if (rc == 0)
        rc = exec(s, "PRAGMA synchronous = FULL", err);
    if (rc == 0)
        rc = schema_migrate(s, err);
    return rc;
}

int store_open(struct store **out, const char *dir, struct bh_err *err)
{
    struct store *s = bh_xcalloc(1, sizeof(*s));
    size_t n = strlen(dir);
    s->busy_ms = BUSY_MS_DEFAULT;
    s->lock_fd = -1;
    s->path = bh_xasprintf("%s%sstate.db", dir, n && dir[n - 1] == '/' ? "" : "/");
    int rc = n ? mkdir_p(dir, err)
               : bh_err_set(err, BH_EINVAL, "the state folder is empty: give --state a folder");
    if (rc == 0)
        rc = file_create(s, err);
    if (rc == 0)
        rc = db_open(s, err);
    if (rc) {
        store_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void store_free(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(s->q[i]);
    /* Closing rolls back a batch still open; the last connection to close
     * checkpoints the WAL into the database file. */
    sqlite3_close(s->db);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    free(s->path);
    free(s);
}

/* ---- the runner lock ------------------------------------------------- */

int store_lock_runner(struct store *s, struct bh_err *err)
{
    if (s->lock_fd >= 0)
        return 0;
    size_t n = strlen(s->path) - strlen("state.db");
    char *lock = bh_xasprintf("%.*srun.lock", (int)n, s->path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        rc = bh_err_set(err, BH_EIO, "cannot open '%s': %s", lock, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = bh_err_set(err, BH_EINVAL,
                        "another bulkhead run is using the state in '%.*s': wait for it to "
                        "finish or use another --state",
                        (int)(n ? n - 1 : 0), s->path);
        close(fd);
    } else {
        s->lock_fd = fd;
    }
    free(lock);
    return rc;
}

void store_set_busy_timeout(struct store *s, int ms)
{
    s->busy_ms = ms < 0 ? 0 : ms;
    sqlite3_busy_timeout(s->db, s->busy_ms);
}

/* SQLite's synchronous is a setting of the connection, not of a statement:
 * lowered around this one write (outside a batch, whose commit decides). In
 * WAL mode a write that did not sync is still ordered before every later
 * one, so the next synced commit takes it to disk too; what a power loss
 * (not a crash of the process) can lose is only what came after the last
 * synced commit. */
int store_step_unsynced(struct store *s, sqlite3_stmt *st, struct bh_err *err)
{
    int inner = s->batch;
    if (!inner)
        sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    int rc = store_step(s, st, err);
    sqlite3_reset(st);
    if (!inner)
        sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    return rc < 0 ? rc : 0;
}

/* ---- batches --------------------------------------------------------- */

int store_batch_begin(struct store *s, struct bh_err *err)
{
    if (s->batch)
        return bh_err_set(err, BH_EINTERNAL, "state database %s: a batch is already open", s->path);
    int rc = exec(s, "BEGIN IMMEDIATE", err);
    if (rc == 0)
        s->batch = 1;
    return rc;
}

int store_batch_open(const struct store *s)
{
    return s->batch;
}

int store_batch_commit(struct store *s, struct bh_err *err)
{
    if (!s->batch)
        return bh_err_set(err, BH_EINTERNAL, "state database %s: no batch is open", s->path);
    s->batch = 0;
    /* SQLite rolls a whole transaction back on some errors (disk full, I/O). */
    if (sqlite3_get_autocommit(s->db))
        return bh_err_set(err, BH_EIO,
                          "state database %s: a batch of writes was rolled back after an "
                          "earlier error: run again to redo it",
                          s->path);
    int rc = exec(s, "COMMIT", err);
    if (rc)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
