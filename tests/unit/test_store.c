/* tests/unit/test_store.c — the state database: folder and file modes, runs
 * that resume after a crash, idempotent puts, task results that round-trip,
 * the audit chain and the ways it breaks, and the errors users see. The test
 * opens the database with sqlite3 directly to tamper with it as an attacker
 * (or a stray process) would. */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

struct fx {
    char base[64]; /* the mkdtemp folder, removed after each test */
    char *dir;     /* base/nested/.bulkhead: the state folder */
    char *db;      /* dir/state.db */
    struct store *s;
    struct bh_err err;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = bh_xcalloc(1, sizeof(*f));
    strcpy(f->base, "/tmp/bh-store-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    f->dir = bh_xasprintf("%s/nested/.bulkhead", f->base);
    f->db = bh_xasprintf("%s/state.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_free(f->s);
    nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f->dir);
    free(f->db);
    free(f);
    return 0;
}

static void open_ok(struct fx *f)
{
    int rc = store_open(&f->s, f->dir, &f->err);
    if (rc)
        fail_msg("store_open: %s", f->err.msg);
}

static void reopen(struct fx *f)
{
    store_free(f->s);
    f->s = NULL;
    open_ok(f);
}

/* Runs sql on the database through a connection of its own. */
static void raw_exec(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    sqlite3_close(h);
}

/* The first column of the first row of sql, as text (caller frees). */
static char *raw_text(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        out = bh_xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

static void assert_raw(const char *db, const char *sql, const char *want)
{
    char *got = raw_text(db, sql);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static int64_t run_new(struct fx *f, const char *key)
{
    int64_t id = 0;
    int resumed = -1;
    assert_int_equal(store_run_open(f->s, key, "review", &id, &resumed, &f->err), 0);
    assert_int_equal(resumed, 0);
    return id;
}

static int64_t task_new(struct fx *f, int64_t run, const char *item, const char *stage)
{
    int64_t item_id = 0, task_id = 0;
    assert_int_equal(store_item_put(f->s, run, item, &item_id, &f->err), 0);
    assert_int_equal(store_task_put(f->s, run, item_id, stage, NULL, &task_id, &f->err), 0);
    return task_id;
}

/* ---- opening --------------------------------------------------------- */

static void open_creates_private_folder_and_database_in_wal_mode(void **state)
{
    struct fx *f = *state;
    struct stat st;
    open_ok(f);
    assert_int_equal(stat(f->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(f->db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_raw(f->db, "PRAGMA journal_mode", "wal");
    assert_raw(f->db, "PRAGMA user_version", "5");
    reopen(f); /* an existing database opens as it is */
    assert_raw(f->db, "PRAGMA user_version", "5");
}

static void open_refuses_newer_schema_naming_the_version(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    store_free(f->s);
    f->s = NULL;
    raw_exec(f->db, "PRAGMA user_version = 99");
    assert_int_equal(store_open(&f->s, f->dir, &f->err), BH_EINVAL);
    assert_null(f->s);
    char *want = bh_xasprintf("state database %s has schema version 99, this bulkhead knows "
                              "up to 5: upgrade bulkhead or use another --state",
                              f->db);
    assert_string_equal(f->err.msg, want);
    free(want);
}

static void open_rejects_a_file_that_is_not_a_database(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    store_free(f->s);
    f->s = NULL;
    char *wal = bh_xasprintf("%s-wal", f->db);
    remove(wal);
    free(wal);
    FILE *fp = fopen(f->db, "w");
    assert_non_null(fp);
    for (int i = 0; i < 64; i++)
        fputs("this is not an sqlite database, just text. ", fp);
    fclose(fp);
    assert_int_equal(store_open(&f->s, f->dir, &f->err), BH_EIO);
    char *want = bh_xasprintf("state database %s: file is not a database: move the file "
                              "away or use another --state",
                              f->db);
    assert_string_equal(f->err.msg, want);
    free(want);
}

static void open_fails_when_the_folder_is_a_file(void **state)
{
    struct fx *f = *state;
    char *file = bh_xasprintf("%s/plain", f->base);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    char *dir = bh_xasprintf("%s/sub", file);
    assert_int_equal(store_open(&f->s, dir, &f->err), BH_EIO);
    char *want = bh_xasprintf("cannot create state folder '%s': Not a directory: check the "
                              "path and its permissions, or use another --state",
                              file);
    assert_string_equal(f->err.msg, want);
    free(want);
    free(dir);
    free(file);
}

static void write_while_another_process_holds_the_lock_says_so(void **state)
{
    struct fx *f = *state;
    sqlite3 *other = NULL;
    int64_t id = 0;
    int resumed = 0;
    open_ok(f);
    assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    store_set_busy_timeout(f->s, 0);
    assert_int_equal(store_run_open(f->s, "k", "review", &id, &resumed, &f->err), BH_EIO);
    char *want = bh_xasprintf("state database %s is locked by another process (waited 0 ms): "
                              "if another bulkhead is running with this --state, wait for it "
                              "to finish or use another --state",
                              f->db);
    assert_string_equal(f->err.msg, want);
    free(want);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    /* The failed attempt left no transaction behind. */
    assert_int_equal(store_run_open(f->s, "k", "review", &id, &resumed, &f->err), 0);
    assert_int_equal(resumed, 0);
}

/* ---- runs, items, tasks ---------------------------------------------- */

static void run_open_same_key_resumes_and_new_key_starts_a_run(void **state)
{
    struct fx *f = *state;
    int64_t again = 0, other = 0;
    int resumed = 0;
    open_ok(f);
    int64_t id = run_new(f, "key-a");
    assert_int_equal(store_run_open(f->s, "key-a", "review", &again, &resumed, &f->err), 0);
    assert_int_equal(again, id);
    assert_int_equal(resumed, 1);
    assert_int_equal(store_run_open(f->s, "key-b", "review", &other, &resumed, &f->err), 0);
    assert_int_equal(resumed, 0);
    assert_true(other != id);
}

static void run_latest_is_the_newest_run_and_notfound_when_none(void **state)
{
    struct fx *f = *state;
    int64_t latest = -1, id = 0;
    int resumed = 0;
    open_ok(f);
    assert_int_equal(store_run_latest(f->s, &latest, &f->err), BH_ENOTFOUND);
    assert_int_equal(latest, -1);
    int64_t a = run_new(f, "a");
    int64_t b = run_new(f, "b");
    assert_int_equal(store_run_open(f->s, "a", "review", &id, &resumed, &f->err), 0);
    assert_int_equal(store_run_latest(f->s, &latest, &f->err), 0);
    assert_int_equal(latest, b);
    assert_true(latest != a);
}

static void run_finish_records_status_and_unknown_run_is_notfound(void **state)
{
    struct fx *f = *state;
    open_ok(f);
    int64_t id = run_new(f, "a");
    assert_int_equal(store_run_finish(f->s, id, "refused", &f->err), 0);
    assert_raw(f->db, "SELECT status || ':' || (finished IS NOT NULL) FROM runs", "refused:1");
    assert_int_equal(store_run_finish(f->s, id + 100, "ok", &f->err), BH_ENOTFOUND);
}

static void item_and_task_put_are_idempotent(void **state)
{
    struct fx *f = *state;
    int64_t i1 = 0, i2 = 0, i3 = 0, t1 = 0, t2 = 0, t3 = 0;
    open_ok(f);
    int64_t run = run_new(f, "r1");
    int64_t run2 = run_new(f, "r2");
    assert_int_equal(store_item_put(f->s, run, "pr-7", &i1, &f->err), 0);
    assert_int_equal(store_item_put(f->s, run, "pr-7", &i2, &f->err), 0);
    assert_int_equal(i1, i2);
    assert_int_equal(store_item_put(f->s, run2, "pr-7", &i3, &f->err), 0);
    assert_true(i3 != i1); /* items belong to their run */
    assert_int_equal(store_task_put(f->s, run, i1, "review", NULL, &t1, &f->err), 0);
    assert_int_equal(store_task_put(f->s, run, i1, "review", "", &t2, &f->err), 0);
    assert_int_equal(t1, t2); /* NULL and "" are both "no element" */
    assert_int_equal(store_task_put(f->s, run, i1, "summary", NULL, &t3, &f->err), 0);
    assert_true(t3 != t1);
    assert_raw(f->db, "SELECT count(*) FROM tasks", "2");
    assert_raw(f->db, "SELECT group_concat(state) FROM tasks", "0,0");
}

static void task_put_makes_a_task_per_element(void **state)
{
    struct fx *f = *state;
    int64_t item = 0, whole = 0, a = 0, b = 0, a2 = 0;
    struct store_task *t = NULL;
    size_t n = 0;
    open_ok(f);
    int64_t run = run_new(f, "r");
    assert_int_equal(store_item_put(f->s, run, "pr-1", &item, &f->err), 0);
    assert_int_equal(store_task_put(f->s, run, item, "review", NULL, &whole, &f->err), 0);
    assert_int_equal(store_task_put(f->s, run, item, "review", "src/a.c", &a, &f->err), 0);
    assert_int_equal(store_task_put(f->s, run, item, "review", "src/b.c", &b, &f->err), 0);
    assert_int_equal(store_task_put(f->s, run, item, "review", "src/a.c", &a2, &f->err), 0);
    assert_int_equal(a, a2);
    assert_true(a != b && a != whole && b != whole);
    assert_int_equal(store_tasks_list(f->s, run, &t, &n, &f->err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(t[0].element, "");
    assert_string_equal(t[1].element, "src/a.c");
    assert_string_equal(t[2].element, "src/b.c");
    store_tasks_free(t, n);
    /* A stand-in row goes once the elements exist; dropping it twice is fine. */
    assert_int_equal(store_task_drop(f->s, whole, &f->err), 0);
    assert_int_equal(store_task_drop(f->s, whole, &f->err), 0);
    assert_raw(f->db, "SELECT group_concat(element, '|') FROM tasks", "src/a.c|src/b.c");
}

/* A state folder written by the bulkhead before elements (schema 1): it
 * opens, its tasks keep their ids and results, and a resumed run can add
 * element tasks next to them. */
static void schema_1_state_migrates_keeping_its_tasks(void **state)
{
    struct fx *f = *state;
    char *mk = bh_xasprintf("mkdir -p '%s'", f->dir);
    assert_int_equal(system(mk), 0);
    free(mk);
    raw_exec(f->db,
             "CREATE TABLE runs (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,"
             " pipeline TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,"
             " status TEXT NOT NULL DEFAULT 'running', labels TEXT NOT NULL DEFAULT '');"
             "CREATE TABLE items (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES"
             " runs(id), key TEXT NOT NULL, UNIQUE (run_id, key));"
             "CREATE TABLE tasks (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES"
             " runs(id), item_id INTEGER NOT NULL REFERENCES items(id), stage TEXT NOT NULL,"
             " state INTEGER NOT NULL DEFAULT 0, output TEXT NOT NULL DEFAULT '',"
             " label TEXT NOT NULL DEFAULT '', endpoint TEXT NOT NULL DEFAULT '',"
             " locality TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',"
             " error TEXT NOT NULL DEFAULT '', answered_by TEXT NOT NULL DEFAULT '',"
             " prompt_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL"
             " DEFAULT 0, load_ns INTEGER NOT NULL DEFAULT 0, total_ns INTEGER NOT NULL"
             " DEFAULT 0, started TEXT, finished TEXT, UNIQUE (item_id, stage));"
             "CREATE INDEX tasks_by_run ON tasks (run_id, state);"
             "CREATE TABLE audit (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, run_id INTEGER"
             " NOT NULL, item TEXT NOT NULL, stage TEXT NOT NULL, endpoint TEXT NOT NULL,"
             " url TEXT NOT NULL, locality TEXT NOT NULL, model TEXT NOT NULL, label TEXT NOT"
             " NULL, clearance TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL,"
             " payload_sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, prev_hash TEXT NOT NULL,"
             " hash TEXT NOT NULL);"
             "INSERT INTO runs VALUES (7, 'old-key', 'review', 'x', NULL, 'running', '');"
             "INSERT INTO items VALUES (3, 7, 'pr-1');"
             "INSERT INTO tasks (id, run_id, item_id, stage, state, output, label, model)"
             " VALUES (41, 7, 3, 'review', 2, 'kept reply', 'internal', 'm');"
             "PRAGMA user_version = 1;");
    open_ok(f);
    assert_raw(f->db, "PRAGMA user_version", "5");
    int64_t run = 0, item = 0, id = 0, elem = 0;
    int resumed = 0;
    assert_int_equal(store_run_open(f->s, "old-key", "review", &run, &resumed, &f->err), 0);
    assert_int_equal(resumed, 1);
    assert_int_equal(run, 7);
    assert_int_equal(store_item_put(f->s, run, "pr-1", &item, &f->err), 0);
    assert_int_equal(store_task_put(f->s, run, item, "review", NULL, &id, &f->err), 0);
    assert_int_equal(id, 41); /* found, not made again */
    char **fs = NULL;
    size_t nfs = 9;
    assert_int_equal(store_run_findings(f->s, run, &fs, &nfs, &f->err), 0);
    assert_int_equal(nfs, 0); /* an old run has no findings stages */
    assert_int_equal(store_task_put(f->s, run, item, "review", "0", &elem, &f->err), 0);
    assert_true(elem != 41);
    struct store_task *t = NULL;
    size_t n = 0;
    assert_int_equal(store_tasks_list(f->s, run, &t, &n, &f->err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].state, STORE_DONE);
    assert_string_equal(t[0].output, "kept reply");
    assert_string_equal(t[0].label, "internal");
    assert_string_equal(t[0].element, "");
    assert_string_equal(t[1].element, "0");
    store_tasks_free(t, n);
    assert_raw(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'tasks_by_run'", "1");
}

static void reopened_run_resets_running_tasks_and_keeps_done_ones(void **state)
{
    struct fx *f = *state;
    struct store_task *t = NULL;
    size_t n = 0;
    int64_t id = 0;
    int resumed = 0;
    open_ok(f);
    int64_t run = run_new(f, "r");
    int64_t done = task_new(f, run, "pr-1", "review");
    int64_t crashed = task_new(f, run, "pr-2", "review");
    struct store_result r = {.state = STORE_DONE, .output = "looks fine", .model = "m"};
    assert_int_equal(store_task_set_running(f->s, done, &f->err), 0);
    assert_int_equal(store_task_finish(f->s, done, &r, &f->err), 0);
    assert_int_equal(store_task_set_running(f->s, crashed, &f->err), 0);
    reopen(f); /* the process died with pr-2 running */
    assert_int_equal(store_run_open(f->s, "r", "review", &id, &resumed, &f->err), 0);
    assert_int_equal(resumed, 1);
    assert_int_equal(id, run);
    assert_int_equal(store_tasks_list(f->s, run, &t, &n, &f->err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].id, done);
    assert_int_equal(t[0].state, STORE_DONE);
    assert_string_equal(t[0].output, "looks fine");
    assert_int_equal(t[1].id, crashed);
    assert_int_equal(t[1].state, STORE_PENDING);
    store_tasks_free(t, n);
}

static void task_finish_round_trips_every_field(void **state)
{
    struct fx *f = *state;
    struct store_task *t = NULL;
    size_t n = 0;
    open_ok(f);
    int64_t run = run_new(f, "r");
    int64_t id = task_new(f, run, "pr-9", "review");
    struct store_result r = {
        .state = STORE_DONE,
        .output = "reply",
        .label = "confidential",
        .endpoint = "gpu-box",
        .locality = "local",
        .model = "qwen3:8b",
        .error = "none really",
        .answered_by = "qwen3:8b-q4",
        .note = "prompt filled the context",
        .cached = 1,
        .prompt_tokens = 1234,
        .output_tokens = 56,
        .load_ns = 7000000001LL,
        .total_ns = 9000000002LL,
    };
    assert_int_equal(store_task_finish(f->s, id, &r, &f->err), 0);
    assert_int_equal(store_tasks_list(f->s, run, &t, &n, &f->err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].id, id);
    assert_string_equal(t[0].item_key, "pr-9");
    assert_string_equal(t[0].stage, "review");
    assert_int_equal(t[0].state, STORE_DONE);
    assert_string_equal(t[0].output, "reply");
    assert_string_equal(t[0].label, "confidential");
    assert_string_equal(t[0].endpoint, "gpu-box");
    assert_string_equal(t[0].locality, "local");
    assert_string_equal(t[0].model, "qwen3:8b");
    assert_string_equal(t[0].error, "none really");
    assert_string_equal(t[0].answered_by, "qwen3:8b-q4");
    assert_string_equal(t[0].note, "prompt filled the context");
    assert_int_equal(t[0].cached, 1);
    assert_int_equal(t[0].prompt_tokens, 1234);
    assert_int_equal(t[0].output_tokens, 56);
    assert_int_equal(t[0].load_ns, 7000000001LL);
    assert_int_equal(t[0].total_ns, 9000000002LL);
    store_tasks_free(t, n);
}

static void task_finish_null_strings_read_back_empty(void **state)
{
    struct fx *f = *state;
    struct store_task *t = NULL;
    size_t n = 0;
    open_ok(f);
    int64_t run = run_new(f, "r");
    int64_t id = task_new(f, run, "pr-1", "review");
    struct store_result r = {.state = STORE_WITHHELD, .error = "refused: confidential"};
    assert_int_equal(store_task_finish(f->s, id, &r, &f->err), 0);
    assert_int_equal(store_tasks_list(f->s, run, &t, &n, &f->err), 0);
    assert_int_equal(t[0].state, STORE_WITHHELD);
    assert_string_equal(t[0].error, "refused: confidential");
    assert_non_null(t[0].output);
    assert_string_equal(t[0].output, "");
    assert_string_equal(t[0].model, "");
    store_tasks_free(t, n);
    assert_int_equal(store_task_finish(f->s, id + 50, &r, &f->err), BH_ENOTFOUND);
    assert_int_equal(store_task_set_running(f->s, id + 50, &f->err), BH_ENOTFOUND);
}

static void tasks_list_orders_by_item_then_task(void **state)
{
    struct fx *f = *state;
    struct store_task *t = NULL;
    size_t n = 0;
    open_ok(f);
    int64_t run = run_new(f, "r");
    int64_t other = run_new(f, "other");
    int64_t a1 = task_new(f, run, "a", "one");
    int64_t b1 = task_new(f, run, "b", "one");
    int64_t a2 = task_new(f, run, "a", "two"); /* created after b's task */
    task_new(f, other, "a", "one");            /* another run's: not listed */
    assert_int_equal(store_tasks_list(f->s, run, &t, &n, &f->err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(t[0].id, a1);
    assert_int_equal(t[1].id, a2);
    assert_string_equal(t[1].item_key, "a");
    assert_string_equal(t[1].stage, "two");
    assert_int_equal(t[2].id, b1);
    store_tasks_free(t, n);
}

static void state_names_cover_every_state(void **state)
{
    (void)state;
    assert_string_equal(store_state_name(STORE_PENDING), "pending");
    assert_string_equal(store_state_name(STORE_RUNNING), "running");
    assert_string_equal(store_state_name(STORE_DONE), "done");
    assert_string_equal(store_state_name(STORE_FAILED), "failed");
    assert_string_equal(store_state_name(STORE_WITHHELD), "withheld");
    assert_string_equal(store_state_name(STORE_SKIPPED), "skipped");
    assert_string_equal(store_state_name(6), "unknown");
    assert_string_equal(store_state_name(-1), "unknown");
}

static void batch_commits_all_at_once_and_free_rolls_back(void **state)
{
    struct fx *f = *state;
    int64_t item = 0;
    open_ok(f);
    int64_t run = run_new(f, "r");
    assert_int_equal(store_batch_commit(f->s, &f->err), BH_EINTERNAL);
    assert_int_equal(store_batch_begin(f->s, &f->err), 0);
    assert_int_equal(store_batch_begin(f->s, &f->err), BH_EINTERNAL);
    task_new(f, run, "pr-1", "review");
    assert_raw(f->db, "SELECT count(*) FROM tasks", "0"); /* not visible yet */
    assert_int_equal(store_batch_commit(f->s, &f->err), 0);
    assert_raw(f->db, "SELECT count(*) FROM tasks", "1");
    assert_int_equal(store_batch_begin(f->s, &f->err), 0);
    assert_int_equal(store_item_put(f->s, run, "pr-2", &item, &f->err), 0);
    reopen(f); /* freed with the batch open */
    assert_raw(f->db, "SELECT count(*) FROM items", "1");
}

/* ---- audit ----------------------------------------------------------- */

static void append_five(struct fx *f, struct store_audit out[5])
{
    static const char *const models[] = {"m1", "m2", "m3", "m4", "m5"};
    for (int i = 0; i < 5; i++) {
        struct store_audit r = {
            .run_id = 1,
            .item = "pr-1",
            .stage = "review",
            .endpoint = "cloud",
            .url = "https://api.example.com/v1",
            .locality = "cloud",
            .model = models[i],
            .label = "internal",
            .clearance = "internal",
            .decision = i == 3 ? "refuse" : "allow",
            .reason = i == 3 ? "above" : NULL,
            .payload_sha256 = "ab12",
            .bytes = 100 + i,
        };
        assert_int_equal(store_audit_append(f->s, &r, &f->err), 0);
        out[i] = r;
    }
}

static void audit_appends_chain_and_verify(void **state)
{
    struct fx *f = *state;
    struct store_audit r[5];
    int64_t n = 0;
    open_ok(f);
    append_five(f, r);
    assert_string_equal(r[0].prev_hash,
                        "0000000000000000000000000000000000000000000000000000000000000000");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].seq, i + 1);
        assert_int_equal(strlen(r[i].hash), 64);
        assert_int_equal(strlen(r[i].time), 24); /* 2026-11-24T12:00:00.123Z */
        assert_int_equal(r[i].time[10], 'T');
        assert_int_equal(r[i].time[19], '.');
        assert_int_equal(r[i].time[23], 'Z');
        if (i > 0)
            assert_string_equal(r[i].prev_hash, r[i - 1].hash);
    }
    assert_string_not_equal(r[0].hash, r[1].hash);
    assert_int_equal(store_audit_verify_chain(f->s, &n, &f->err), 0);
    assert_int_equal(n, 5);
    reopen(f); /* the chain goes on across processes */
    struct store_audit more = {.decision = "allow"};
    assert_int_equal(store_audit_append(f->s, &more, &f->err), 0);
    assert_int_equal(more.seq, 6);
    assert_string_equal(more.prev_hash, r[4].hash);
    assert_int_equal(store_audit_verify_chain(f->s, &n, &f->err), 0);
    assert_int_equal(n, 6);
}

static void audit_verify_of_an_empty_log_counts_zero(void **state)
{
    struct fx *f = *state;
    int64_t n = -1;
    open_ok(f);
    assert_int_equal(store_audit_verify_chain(f->s, &n, &f->err), 0);
    assert_int_equal(n, 0);
}

static void audit_verify_names_an_altered_record(void **state)
{
    struct fx *f = *state;
    struct store_audit r[5];
    int64_t n = 0;
    open_ok(f);
    append_five(f, r);
    raw_exec(f->db, "UPDATE audit SET model = 'x' WHERE seq = 3");
    assert_int_equal(store_audit_verify_chain(f->s, &n, &f->err), BH_EINVAL);
    assert_string_equal(f->err.msg, "audit record 3: hash does not match its contents — the "
                                    "audit log was altered");
}

/* Every column is covered by the hash: changing any one of them in record 3
 * is caught at record 3. */
static void audit_verify_catches_a_change_to_any_column(void **state)
{
    static const char *const changes[] = {
        "time = '2020-01-01T00:00:00Z'",
        "run_id = 2",
        "item = 'pr-2'",
        "stage = 'x'",
        "endpoint = 'x'",
        "url = 'x'",
        "locality = 'local'",
        "model = 'x'",
        "label = 'public'",
        "clearance = 'restricted'",
        "decision = 'refuse'",
        "reason = 'x'",
        "payload_sha256 = 'cd34'",
        "bytes = 1",
        "prev_hash = hash",
        "hash = prev_hash",
    };
    struct fx *f = *state;
    struct store_audit r[5];
    int64_t n = 0;
    open_ok(f);
    append_five(f, r);
    for (size_t i = 0; i < BH_NELEM(changes); i++) {
        char *sql = bh_xasprintf("UPDATE audit SET %s WHERE seq = 3", changes[i]);
        sqlite3 *h = NULL;
        assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
        int rc = store_audit_verify_chain(f->s, &n, &f->err);
        if (rc != BH_EINVAL || !strstr(f->err.msg, "audit record 3: hash does not match"))
            fail_msg("changing %s went unnoticed (%d: %s)", changes[i], rc, f->err.msg);
        /* Put record 3 back from the copy append returned, then check again. */
        sqlite3_stmt *st = NULL;
        assert_int_equal(
            sqlite3_prepare_v2(
                h,
                "UPDATE audit SET time = ?1, run_id = 1, item = 'pr-1', stage = 'review',"
                " endpoint = 'cloud', url = 'https://api.example.com/v1', locality = 'cloud',"
                " model = 'm3', label = 'internal', clearance = 'internal', decision = 'allow',"
                " reason = '', payload_sha256 = 'ab12', bytes = 102, prev_hash = ?2, hash = ?3"
                " WHERE seq = 3",
                -1, &st, NULL),
            SQLITE_OK);
        sqlite3_bind_text(st, 1, r[2].time, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r[2].prev_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r[2].hash, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        sqlite3_close(h);
        free(sql);
        assert_int_equal(store_audit_verify_chain(f->s, &n, &f->err), 0);
    }
}

static void audit_verify_names_the_record_after_a_removed_one(void **state)
{
    struct fx *f = *state;
    struct store_audit r[5];
    int64_t n = 0;
    open_ok(f);
    append_five(f, r);
    raw_exec(f->db, "DELETE FROM audit WHERE seq = 2");
    assert_int_equal(store_audit_verify_chain(f->s, &n, &f->err), BH_EINVAL);
    assert_string_equal(f->err.msg, "audit record 3 does not chain to record 1 — a record "
                                    "between them was removed or altered");
}

static void audit_verify_catches_removed_first_records(void **state)
{
    struct fx *f = *state;
    struct store_audit r[5];
    int64_t n = 0;
    open_ok(f);
    append_five(f, r);
    raw_exec(f->db, "DELETE FROM audit WHERE seq = 1");
    assert_int_equal(store_audit_verify_chain(f->s, &n, &f->err), BH_EINVAL);
    assert_string_equal(f->err.msg, "audit record 2 does not chain to the start of the log — "
                                    "earlier records were removed");
}

static void audit_verify_catches_a_padded_hash(void **state)
{
    struct fx *f = *state;
    struct store_audit r[5];
    int64_t n = 0;
    open_ok(f);
    append_five(f, r);
    /* Too long for the record's fixed field: must not be truncated back to
     * the original and pass. */
    raw_exec(f->db, "UPDATE audit SET prev_hash = prev_hash || 'ff' WHERE seq = 4");
    assert_int_equal(store_audit_verify_chain(f->s, &n, &f->err), BH_EINVAL);
    assert_non_null(strstr(f->err.msg, "audit record 4: "));
}

struct seen {
    int64_t seqs[8];
    char models[8][8];
    int n, stop_at;
};

static int collect(void *ud, const struct store_audit *r)
{
    struct seen *s = ud;
    s->seqs[s->n] = r->seq;
    snprintf(s->models[s->n], sizeof(s->models[0]), "%s", r->model);
    s->n++;
    return s->n == s->stop_at ? 42 : 0;
}

static void audit_each_visits_in_order_and_stops_on_nonzero(void **state)
{
    struct fx *f = *state;
    struct store_audit r[5];
    struct seen all = {.stop_at = -1}, some = {.stop_at = 2};
    open_ok(f);
    append_five(f, r);
    assert_int_equal(store_audit_each(f->s, collect, &all, &f->err), 0);
    assert_int_equal(all.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(all.seqs[i], i + 1);
    assert_string_equal(all.models[2], "m3");
    assert_int_equal(store_audit_each(f->s, collect, &some, &f->err), 42);
    assert_int_equal(some.n, 2);
}

static int check_fields(void *ud, const struct store_audit *r)
{
    const struct store_audit *want = ud;
    if (r->seq != 4)
        return 0;
    assert_string_equal(r->time, want->time);
    assert_int_equal(r->run_id, 1);
    assert_string_equal(r->item, "pr-1");
    assert_string_equal(r->stage, "review");
    assert_string_equal(r->endpoint, "cloud");
    assert_string_equal(r->url, "https://api.example.com/v1");
    assert_string_equal(r->locality, "cloud");
    assert_string_equal(r->model, "m4");
    assert_string_equal(r->label, "internal");
    assert_string_equal(r->clearance, "internal");
    assert_string_equal(r->decision, "refuse");
    assert_string_equal(r->reason, "above");
    assert_string_equal(r->payload_sha256, "ab12");
    assert_int_equal(r->bytes, 103);
    assert_string_equal(r->prev_hash, want->prev_hash);
    assert_string_equal(r->hash, want->hash);
    return 1;
}

static void audit_records_read_back_every_field(void **state)
{
    struct fx *f = *state;
    struct store_audit r[5];
    open_ok(f);
    append_five(f, r);
    assert_int_equal(store_audit_each(f->s, check_fields, &r[3], &f->err), 1);
}

static void run_findings_stages_round_trip_and_refuse_a_newline(void **state)
{
    struct fx *f = *state;
    int64_t id = 0;
    int resumed = 0;
    open_ok(f);
    assert_int_equal(store_run_open(f->s, "k", "review", &id, &resumed, &f->err), 0);
    char *stages[] = {"review", "lint-file"};
    assert_int_equal(store_run_set_findings(f->s, id, stages, 2, &f->err), 0);
    char **got = NULL;
    size_t n = 0;
    assert_int_equal(store_run_findings(f->s, id, &got, &n, &f->err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(got[0], "review");
    assert_string_equal(got[1], "lint-file");
    for (size_t i = 0; i < n; i++)
        free(got[i]);
    free(got);
    char *bad[] = {"a\nb"};
    assert_int_equal(store_run_set_findings(f->s, id, bad, 1, &f->err), BH_EINVAL);
    assert_string_equal(f->err.msg, "stage 'a\nb' holds a newline");
    assert_int_equal(store_run_findings(f->s, id + 1, &got, &n, &f->err), BH_ENOTFOUND);
}

static void shard_key_round_trips_and_parse_refuses_other_keys(void **state)
{
    (void)state;
    char *key = store_shard_key("abc", 1, 4), *base = NULL;
    unsigned i = 0, n = 0;
    assert_string_equal(key, "abc/shard-1-of-4");
    assert_int_equal(store_shard_key_parse(key, &base, &i, &n), 1);
    assert_string_equal(base, "abc");
    assert_int_equal(i, 1);
    assert_int_equal(n, 4);
    free(base);
    free(key);
    const char *not_shards[] = {"abc",
                                "abc/shard-4-of-4",
                                "abc/shard-1-of-0",
                                "abc/shard-1-of-4x",
                                "abc/shard-1-of-4:retired:3",
                                "abc/shard--1-of-4"};
    for (size_t k = 0; k < sizeof(not_shards) / sizeof(not_shards[0]); k++)
        assert_int_equal(store_shard_key_parse(not_shards[k], &base, &i, &n), 0);
}

/* A shard state in base/NAME: run "KEY/shard-I-of-N" with one done task and
 * two audit records. */
static struct store *shard_make(struct fx *f, const char *name, unsigned i, unsigned n,
                                const char *key, const char *item)
{
    struct store *s = NULL;
    char *dir = bh_xasprintf("%s/%s", f->base, name), *run = store_shard_key(key, i, n);
    int64_t id = 0, item_id = 0, task = 0;
    int resumed = 0;
    char *labels[] = {"public", "internal"};
    struct store_result r = {.state = STORE_DONE, .output = item, .label = "internal"};
    struct store_audit a = {.item = item,
                            .stage = "review",
                            .label = "internal",
                            .clearance = "internal",
                            .decision = "allow"};
    assert_int_equal(store_open(&s, dir, &f->err), 0);
    assert_int_equal(store_run_open(s, run, "review", &id, &resumed, &f->err), 0);
    assert_int_equal(store_run_set_labels(s, id, labels, 2, &f->err), 0);
    assert_int_equal(store_item_put(s, id, item, &item_id, &f->err), 0);
    assert_int_equal(store_task_put(s, id, item_id, "review", NULL, &task, &f->err), 0);
    assert_int_equal(store_task_finish(s, task, &r, &f->err), 0);
    a.run_id = id;
    assert_int_equal(store_audit_append(s, &a, &f->err), 0);
    assert_int_equal(store_audit_append(s, &a, &f->err), 0);
    free(dir);
    free(run);
    return s;
}

static void merge_copies_tasks_and_links_each_shard_chain(void **state)
{
    struct fx *f = *state;
    struct store *a = shard_make(f, "s0", 0, 2, "K", "refs/pull/1/head");
    struct store *b = shard_make(f, "s1", 1, 2, "K", "refs/pull/2/head");
    struct store_shard sh[] = {{b, "s1"}, {a, "s0"}};
    struct store_task *t = NULL;
    size_t n = 0, merged = 0;
    int64_t run = 0, records = 0;
    open_ok(f);
    assert_int_equal(store_merge(f->s, sh, 2, &f->err), 0);
    assert_int_equal(store_run_latest(f->s, &run, &f->err), 0);
    assert_int_equal(store_run_merged(f->s, run, &merged, &f->err), 0);
    assert_int_equal(merged, 2);
    assert_int_equal(store_tasks_list(f->s, run, &t, &n, &f->err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].item_key, "refs/pull/1/head"); /* shard 0 first */
    assert_string_equal(t[1].output, "refs/pull/2/head");
    store_tasks_free(t, n);
    assert_int_equal(store_audit_verify_chain(f->s, &records, &f->err), 0);
    assert_int_equal(records, 2); /* the two merge records */
    raw_exec(f->db, "UPDATE audit_merged SET stage = 'other' WHERE seq = 2 AND link = 2");
    assert_int_equal(store_audit_verify_chain(f->s, &records, &f->err), BH_EINVAL);
    assert_non_null(strstr(f->err.msg, "audit record 2 links the audit log of a merged shard "
                                       "(shard 1/2 merged from 's1' (its run 1)); in it, audit "
                                       "record 2: hash does not match its contents"));
    store_free(a);
    store_free(b);
}

static void merge_refuses_a_missing_shard_and_shards_of_other_runs(void **state)
{
    struct fx *f = *state;
    /* Each item in the shard its key hashes to (store_shard_of), as run makes it. */
    struct store *a = shard_make(f, "s0", 0, 3, "K", "refs/pull/3/head");
    struct store *b = shard_make(f, "s1", 1, 3, "other", "refs/pull/2/head");
    struct store *c = shard_make(f, "s2", 2, 3, "K", "refs/pull/1/head");
    struct store_shard missing[] = {{a, "s0"}, {c, "s2"}}, other[] = {{a, "s0"}, {b, "s1"}};
    open_ok(f);
    assert_int_equal(store_merge(f->s, missing, 2, &f->err), BH_EINVAL);
    assert_string_equal(f->err.msg, "shard 1/3 is missing (2 of 3 states given): give the state "
                                    "of every shard, or run the missing shard first");
    assert_int_equal(store_merge(f->s, other, 2, &f->err), BH_EINVAL);
    assert_non_null(strstr(f->err.msg, "are shards of different runs"));
    int64_t run = 0;
    assert_int_equal(store_run_latest(f->s, &run, &f->err), BH_ENOTFOUND); /* nothing written */
    store_free(a);
    store_free(b);
    store_free(c);
}

/* A state whose item hashes to another shard (relabelled, or made by another
 * split) is refused, even when every task would be there once. */
static void merge_refuses_an_item_in_the_wrong_shard(void **state)
{
    struct fx *f = *state;
    struct store *a = shard_make(f, "s0", 0, 2, "K", "refs/pull/2/head"); /* hashes to 1 */
    struct store *b = shard_make(f, "s1", 1, 2, "K", "refs/pull/1/head"); /* hashes to 0 */
    struct store_shard sh[] = {{a, "s0"}, {b, "s1"}};
    open_ok(f);
    assert_int_equal(store_merge(f->s, sh, 2, &f->err), BH_EINVAL);
    assert_non_null(strstr(f->err.msg, "state 's0' (shard 0/2) holds item 'refs/pull/2/head', "
                                       "which hashes to shard 1/2"));
    int64_t run = 0;
    assert_int_equal(store_run_latest(f->s, &run, &f->err), BH_ENOTFOUND); /* nothing written */
    store_free(a);
    store_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(open_creates_private_folder_and_database_in_wal_mode),
        T(open_refuses_newer_schema_naming_the_version),
        T(open_rejects_a_file_that_is_not_a_database),
        T(open_fails_when_the_folder_is_a_file),
        T(write_while_another_process_holds_the_lock_says_so),
        T(run_open_same_key_resumes_and_new_key_starts_a_run),
        T(run_latest_is_the_newest_run_and_notfound_when_none),
        T(run_finish_records_status_and_unknown_run_is_notfound),
        T(item_and_task_put_are_idempotent),
        T(task_put_makes_a_task_per_element),
        T(schema_1_state_migrates_keeping_its_tasks),
        T(run_findings_stages_round_trip_and_refuse_a_newline),
        T(reopened_run_resets_running_tasks_and_keeps_done_ones),
        T(task_finish_round_trips_every_field),
        T(task_finish_null_strings_read_back_empty),
        T(tasks_list_orders_by_item_then_task),
        T(state_names_cover_every_state),
        T(batch_commits_all_at_once_and_free_rolls_back),
        T(audit_appends_chain_and_verify),
        T(audit_verify_of_an_empty_log_counts_zero),
        T(audit_verify_names_an_altered_record),
        T(audit_verify_catches_a_change_to_any_column),
        T(audit_verify_names_the_record_after_a_removed_one),
        T(audit_verify_catches_removed_first_records),
        T(audit_verify_catches_a_padded_hash),
        T(audit_each_visits_in_order_and_stops_on_nonzero),
        T(audit_records_read_back_every_field),
        T(shard_key_round_trips_and_parse_refuses_other_keys),
        T(merge_copies_tasks_and_links_each_shard_chain),
        T(merge_refuses_a_missing_shard_and_shards_of_other_runs),
        T(merge_refuses_an_item_in_the_wrong_shard),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
