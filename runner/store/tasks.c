/* store/tasks.c — runs, items and tasks: the work list a run resumes from.
 *
 * A task's state moves pending → running → done/failed/withheld; a crash
 * leaves rows "running", so reopening a run puts them back to pending (the
 * work was never committed as finished, so redoing it loses nothing).
 * Puts look up before inserting: on a resumed run nothing is written, and
 * with synchronous=FULL every write costs a disk sync. */
#include "store/store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* A one-row lookup of an id: 1 found (*id set), 0 not found, < 0 error. */
static int id_lookup(struct store *s, sqlite3_stmt *st, int64_t *id, struct bh_err *err)
{
    int rc = store_step(s, st, err);
    if (rc == 1)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc;
}

/* Runs a write statement to its end; BH_ENOTFOUND naming what when it
 * changed no row. */
static int write_one(struct store *s, sqlite3_stmt *st, const char *what, int64_t id,
                     struct bh_err *err)
{
    int rc = store_step(s, st, err);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    if (sqlite3_changes(s->db) == 0)
        return bh_err_set(err, BH_ENOTFOUND, "state database %s: no %s with id %lld", s->path, what,
                          (long long)id);
    return 0;
}

/* ---- runs ------------------------------------------------------------ */

static int run_find(struct store *s, const char *key, int64_t *id, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, Q_RUN_FIND, "SELECT id FROM runs WHERE key = ?1", &st, err);
    if (rc)
        return rc;
    if ((rc = store_bind_text(st, 1, key)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    return id_lookup(s, st, id, err);
}

static int run_insert(struct store *s, const char *key, const char *pipeline, int64_t *id,
                      struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    char now[32];
    store_now(now);
    int rc = store_stmt(s, Q_RUN_INSERT,
                        "INSERT INTO runs (key, pipeline, started, status)"
                        " VALUES (?1, ?2, ?3, 'running')",
                        &st, err);
    if (rc)
        return rc;
    if ((rc = store_bind_text(st, 1, key)) != SQLITE_OK ||
        (rc = store_bind_text(st, 2, pipeline)) != SQLITE_OK ||
        (rc = store_bind_text(st, 3, now)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    rc = store_step(s, st, err);
    sqlite3_reset(st);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

/* A crash left some tasks running: they were never finished, so they are
 * pending again. The run itself is running again until store_run_finish. */
static int run_resume(struct store *s, int64_t id, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, Q_RUN_RESET_TASKS,
                        "UPDATE tasks SET state = ?2, started = NULL"
                        " WHERE run_id = ?1 AND state = ?3",
                        &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, STORE_PENDING);
    sqlite3_bind_int(st, 3, STORE_RUNNING);
    rc = store_step(s, st, err);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    rc = store_stmt(s, Q_RUN_RESUME,
                    "UPDATE runs SET status = 'running', finished = NULL WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return write_one(s, st, "run", id, err);
}

int store_run_open(struct store *s, const char *run_key, const char *pipeline_name, int64_t *run_id,
                   int *resumed, struct bh_err *err)
{
    int64_t id = 0;
    int rc = store_tx_begin(s, err);
    if (rc)
        return rc;
    int found = run_find(s, run_key, &id, err);
    if (found == 1)
        rc = run_resume(s, id, err);
    else if (found == 0)
        rc = run_insert(s, run_key, pipeline_name, &id, err);
    else
        rc = found;
    rc = store_tx_end(s, rc, err);
    if (rc == 0) {
        *run_id = id;
        *resumed = found == 1;
    }
    return rc;
}

int store_run_retire(struct store *s, const char *run_key, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, Q_RUN_RETIRE,
                        "UPDATE runs SET key = key || ':retired:' || id WHERE key = ?1", &st, err);
    if (rc)
        return rc;
    if ((rc = store_bind_text(st, 1, run_key)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlerr(s, rc, err);
}

int store_run_finish(struct store *s, int64_t run_id, const char *status, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    char now[32];
    store_now(now);
    int rc = store_stmt(s, Q_RUN_FINISH, "UPDATE runs SET status = ?2, finished = ?3 WHERE id = ?1",
                        &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    if ((rc = store_bind_text(st, 2, status)) != SQLITE_OK ||
        (rc = store_bind_text(st, 3, now)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    return write_one(s, st, "run", run_id, err);
}

/* A run's list column (labels, findings stages): lines joined by newlines. */
struct lines_col {
    enum store_q set_slot, get_slot;
    const char *set_sql, *get_sql;
    const char *what; /* "label", "stage" */
};

static const struct lines_col labels_col = {Q_RUN_SET_LABELS, Q_RUN_LABELS,
                                            "UPDATE runs SET labels = ?2 WHERE id = ?1",
                                            "SELECT labels FROM runs WHERE id = ?1", "label"};
static const struct lines_col findings_col = {Q_RUN_SET_FINDINGS, Q_RUN_FINDINGS,
                                              "UPDATE runs SET findings = ?2 WHERE id = ?1",
                                              "SELECT findings FROM runs WHERE id = ?1", "stage"};

static int lines_set(struct store *s, const struct lines_col *c, int64_t run_id, char *const *v,
                     size_t n, struct bh_err *err)
{
    struct bh_buf b;
    bh_buf_init(&b, 0);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strchr(v[i], '\n'))
            rc = bh_err_set(err, BH_EINVAL, "%s '%s' holds a newline", c->what, v[i]);
        else
            rc = bh_buf_printf(&b, "%s%s", i ? "\n" : "", v[i]);
    }
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = store_stmt(s, c->set_slot, c->set_sql, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, run_id);
        int src = store_bind_text(st, 2, b.data ? b.data : "");
        rc = src != SQLITE_OK ? store_sqlerr(s, src, err) : write_one(s, st, "run", run_id, err);
    }
    bh_buf_release(&b);
    return rc;
}

static int lines_get(struct store *s, const struct lines_col *c, int64_t run_id, char ***v,
                     size_t *n, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    *v = NULL;
    *n = 0;
    int rc = store_stmt(s, c->get_slot, c->get_sql, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    rc = store_step(s, st, err);
    if (rc == 0)
        rc = bh_err_set(err, BH_ENOTFOUND, "state database %s: no run with id %lld", s->path,
                        (long long)run_id);
    size_t cap = 0;
    for (const char *p = rc == 1 ? store_col_text(st, 0) : ""; *p;) {
        size_t len = strcspn(p, "\n");
        *v = bh_xgrow(*v, &cap, *n + 1, sizeof(**v));
        (*v)[(*n)++] = bh_xstrndup(p, len);
        p += len + (p[len] == '\n');
    }
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

int store_run_set_labels(struct store *s, int64_t run_id, char *const *labels, size_t n,
                         struct bh_err *err)
{
    return lines_set(s, &labels_col, run_id, labels, n, err);
}

int store_run_labels(struct store *s, int64_t run_id, char ***labels, size_t *n, struct bh_err *err)
{
    return lines_get(s, &labels_col, run_id, labels, n, err);
}

int store_run_set_findings(struct store *s, int64_t run_id, char *const *stages, size_t n,
                           struct bh_err *err)
{
    return lines_set(s, &findings_col, run_id, stages, n, err);
}

int store_run_findings(struct store *s, int64_t run_id, char ***stages, size_t *n,
                       struct bh_err *err)
{
    return lines_get(s, &findings_col, run_id, stages, n, err);
}

int store_run_latest(struct store *s, int64_t *run_id, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    /* By id, not by the started text: two runs can start in the same second. */
    int rc = store_stmt(s, Q_RUN_LATEST,
                        "SELECT id FROM runs WHERE key NOT LIKE 'models:%'"
                        " ORDER BY id DESC LIMIT 1",
                        &st, err);
    if (rc == 0)
        rc = id_lookup(s, st, run_id, err);
    if (rc == 0)
        return bh_err_set(err, BH_ENOTFOUND,
                          "state database %s holds no run yet: start one with 'bulkhead run'",
                          s->path);
    return rc < 0 ? rc : 0;
}

/* ---- items and tasks ------------------------------------------------- */

static int item_find(struct store *s, int64_t run_id, const char *key, int64_t *id,
                     struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc =
        store_stmt(s, Q_ITEM_FIND, "SELECT id FROM items WHERE run_id = ?1 AND key = ?2", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    if ((rc = store_bind_text(st, 2, key)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    return id_lookup(s, st, id, err);
}

int store_item_put(struct store *s, int64_t run_id, const char *key, int64_t *item_id,
                   struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = item_find(s, run_id, key, item_id, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    /* DO NOTHING, then look up again: another writer may have won the race. */
    rc = store_stmt(s, Q_ITEM_INSERT,
                    "INSERT INTO items (run_id, key) VALUES (?1, ?2)"
                    " ON CONFLICT (run_id, key) DO NOTHING",
                    &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    if ((rc = store_bind_text(st, 2, key)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    rc = store_step(s, st, err);
    sqlite3_reset(st);
    if (rc == 0)
        rc = item_find(s, run_id, key, item_id, err);
    if (rc == 0)
        return bh_err_set(err, BH_EINTERNAL, "state database %s: item '%s' vanished", s->path, key);
    return rc < 0 ? rc : 0;
}

static int task_find(struct store *s, int64_t run_id, int64_t item_id, const char *stage,
                     const char *element, int64_t *id, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, Q_TASK_FIND,
                        "SELECT id FROM tasks WHERE run_id = ?1 AND item_id = ?2 AND stage = ?3"
                        " AND element = ?4",
                        &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, item_id);
    if ((rc = store_bind_text(st, 3, stage)) != SQLITE_OK ||
        (rc = store_bind_text(st, 4, element)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    return id_lookup(s, st, id, err);
}

int store_task_put(struct store *s, int64_t run_id, int64_t item_id, const char *stage,
                   const char *element, int64_t *task_id, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = task_find(s, run_id, item_id, stage, element, task_id, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = store_stmt(s, Q_TASK_INSERT,
                    "INSERT INTO tasks (run_id, item_id, stage, element, state)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)"
                    " ON CONFLICT (run_id, item_id, stage, element) DO NOTHING",
                    &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, item_id);
    sqlite3_bind_int(st, 5, STORE_PENDING);
    if ((rc = store_bind_text(st, 3, stage)) != SQLITE_OK ||
        (rc = store_bind_text(st, 4, element)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    rc = store_step(s, st, err);
    sqlite3_reset(st);
    if (rc == 0)
        rc = task_find(s, run_id, item_id, stage, element, task_id, err);
    if (rc == 0)
        return bh_err_set(err, BH_EINTERNAL, "state database %s: task '%s' vanished", s->path,
                          stage);
    return rc < 0 ? rc : 0;
}

int store_task_drop(struct store *s, int64_t task_id, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, Q_TASK_DROP, "DELETE FROM tasks WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, task_id);
    rc = store_step(s, st, err);
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

int store_task_set_running(struct store *s, int64_t task_id, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    char now[32];
    store_now(now);
    int rc = store_stmt(s, Q_TASK_RUNNING,
                        "UPDATE tasks SET state = ?2, started = ?3 WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, task_id);
    sqlite3_bind_int(st, 2, STORE_RUNNING);
    if ((rc = store_bind_text(st, 3, now)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    /* Not synced: a task found running on resume goes back to pending, as
     * one that was never marked would be; its request's audit record and
     * its result, both synced, are what must not be lost. */
    if ((rc = store_step_unsynced(s, st, err)) < 0)
        return rc;
    if (sqlite3_changes(s->db) == 0)
        return bh_err_set(err, BH_ENOTFOUND, "state database %s: no task with id %lld", s->path,
                          (long long)task_id);
    return 0;
}

static int finish_bind(sqlite3_stmt *st, int64_t task_id, const struct store_result *r,
                       const char *now)
{
    const char *text[] = {r->output, r->label, r->endpoint, r->locality, r->model, r->error};
    const int64_t num[] = {r->prompt_tokens, r->output_tokens, r->load_ns, r->total_ns};
    int rc = sqlite3_bind_int64(st, 1, task_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, r->state);
    for (int i = 0; rc == SQLITE_OK && i < 6; i++)
        rc = store_bind_text(st, 3 + i, text[i]);
    for (int i = 0; rc == SQLITE_OK && i < 4; i++)
        rc = sqlite3_bind_int64(st, 9 + i, num[i]);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 13, now);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 14, r->answered_by);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 15, r->note);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 16, r->cached != 0);
    return rc;
}

/* One UPDATE is one transaction; in autocommit mode with synchronous=FULL it
 * is on disk when the step returns. */
int store_task_finish(struct store *s, int64_t task_id, const struct store_result *r,
                      struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    char now[32];
    if (r->state != STORE_DONE && r->state != STORE_FAILED && r->state != STORE_WITHHELD &&
        r->state != STORE_SKIPPED)
        return bh_err_set(err, BH_EINTERNAL, "task %lld finished in state %d", (long long)task_id,
                          r->state);
    store_now(now);
    int rc = store_stmt(s, Q_TASK_FINISH,
                        "UPDATE tasks SET state = ?2, output = ?3, label = ?4, endpoint = ?5,"
                        " locality = ?6, model = ?7, error = ?8, prompt_tokens = ?9,"
                        " output_tokens = ?10, load_ns = ?11, total_ns = ?12, finished = ?13,"
                        " answered_by = ?14, note = ?15, cached = ?16"
                        " WHERE id = ?1",
                        &st, err);
    if (rc)
        return rc;
    if ((rc = finish_bind(st, task_id, r, now)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    return write_one(s, st, "task", task_id, err);
}

/* ---- listing --------------------------------------------------------- */

static void task_read(sqlite3_stmt *st, struct store_task *t)
{
    char **text[] = {&t->item_key, &t->stage, &t->output, &t->label,       &t->endpoint,
                     &t->locality, &t->model, &t->error,  &t->answered_by, &t->element};
    int64_t *num[] = {&t->prompt_tokens, &t->output_tokens, &t->load_ns, &t->total_ns};
    t->id = sqlite3_column_int64(st, 0);
    t->item_id = sqlite3_column_int64(st, 1);
    t->state = sqlite3_column_int(st, 2);
    for (int i = 0; i < 8; i++)
        *text[i] = bh_xstrdup(store_col_text(st, 3 + i));
    for (int i = 0; i < 4; i++)
        *num[i] = sqlite3_column_int64(st, 11 + i);
    *text[8] = bh_xstrdup(store_col_text(st, 15));
    *text[9] = bh_xstrdup(store_col_text(st, 16));
    t->note = bh_xstrdup(store_col_text(st, 17));
    t->cached = sqlite3_column_int(st, 18);
}

int store_tasks_list(struct store *s, int64_t run_id, struct store_task **out, size_t *n,
                     struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    struct store_task *v = NULL;
    size_t count = 0, cap = 0;
    int rc = store_stmt(s, Q_TASK_LIST,
                        "SELECT t.id, t.item_id, t.state, i.key, t.stage, t.output, t.label,"
                        " t.endpoint, t.locality, t.model, t.error, t.prompt_tokens,"
                        " t.output_tokens, t.load_ns, t.total_ns, t.answered_by, t.element,"
                        " t.note, t.cached"
                        " FROM tasks t JOIN items i ON i.id = t.item_id"
                        " WHERE t.run_id = ?1 ORDER BY t.item_id, t.id",
                        &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    while ((rc = store_step(s, st, err)) == 1) {
        v = bh_xgrow(v, &cap, count + 1, sizeof(*v));
        task_read(st, &v[count++]);
    }
    sqlite3_reset(st);
    if (rc < 0) {
        store_tasks_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

void store_tasks_free(struct store_task *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        char *text[] = {t[i].item_key,    t[i].stage,    t[i].output, t[i].label,
                        t[i].endpoint,    t[i].locality, t[i].model,  t[i].error,
                        t[i].answered_by, t[i].element,  t[i].note};
        for (size_t k = 0; k < BH_NELEM(text); k++)
            free(text[k]);
    }
    free(t);
}
