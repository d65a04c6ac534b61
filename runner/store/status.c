/* store/status.c — a run's progress, counted by SQLite from the task rows:
 * the counts can never disagree with the rows the reports read. One GROUP BY
 * per call; statements are prepared per call (status runs once, and keeping
 * them in the store's statement cache would hold read snapshots open). */
#include "store/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st, struct bh_err *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : store_sqlerr(s, rc, err);
}

int store_run_info(struct store *s, int64_t run_id, struct store_run_info *out, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    int rc = prepare(s,
                     "SELECT pipeline, started, COALESCE(finished, ''), status FROM runs"
                     " WHERE id = ?1",
                     &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    rc = store_step(s, st, err);
    if (rc == 1) {
        out->id = run_id;
        out->pipeline = bh_xstrdup(store_col_text(st, 0));
        out->started = bh_xstrdup(store_col_text(st, 1));
        out->finished = bh_xstrdup(store_col_text(st, 2));
        out->status = bh_xstrdup(store_col_text(st, 3));
    } else if (rc == 0) {
        rc = bh_err_set(err, BH_ENOTFOUND,
                        "no run %lld in state database %s — 'bulkhead report "
                        "--format jsonl' without --run shows the latest",
                        (long long)run_id, s->path);
    }
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

void store_run_info_release(struct store_run_info *r)
{
    if (!r)
        return;
    free(r->pipeline);
    free(r->started);
    free(r->finished);
    free(r->status);
    memset(r, 0, sizeof(*r));
}

/* States are the store_state numbers; a place is named only when it is one. */
static const char stage_sql[] =
    "SELECT stage, COUNT(*), SUM(state = 0), SUM(state = 1), SUM(state = 2), SUM(state = 3),"
    " SUM(state = 4), SUM(state = 5), SUM(cached),"
    " SUM(CASE WHEN cached THEN 0 ELSE prompt_tokens END),"
    " SUM(CASE WHEN cached THEN 0 ELSE output_tokens END), 0,"
    " CASE WHEN COUNT(DISTINCT NULLIF(endpoint, '')) = 1 THEN MAX(endpoint) ELSE '' END,"
    " CASE WHEN COUNT(DISTINCT NULLIF(model, '')) = 1 THEN MAX(model) ELSE '' END,"
    " GROUP_CONCAT(DISTINCT NULLIF(endpoint, ''))"
    " FROM tasks WHERE run_id = ?1 GROUP BY stage ORDER BY MIN(id)";

/* Each task's [started, finished) in ms since the epoch, a running task's up
 * to now, by stage and start. */
static const char spans_sql[] =
    "SELECT stage, CAST(ROUND((julianday(started) - 2440587.5) * 86400000.0) AS INTEGER),"
    " CAST(ROUND((julianday(COALESCE(finished, 'now')) - 2440587.5) * 86400000.0) AS INTEGER)"
    " FROM tasks WHERE run_id = ?1 AND started IS NOT NULL AND started <> ''"
    " ORDER BY stage, started";

/* Adds [a, b) to the merged spans of one stage: tasks that overlap count once,
 * and the time between them (a crash and its resume, a wait) not at all. */
struct spans {
    int64_t total, a, b; /* total of the closed spans; the open one is [a, b) */
    int open;
};

static void spans_add(struct spans *s, int64_t a, int64_t b)
{
    if (b < a)
        b = a;
    if (s->open && a <= s->b) {
        s->b = b > s->b ? b : s->b;
        return;
    }
    if (s->open)
        s->total += s->b - s->a;
    s->a = a, s->b = b, s->open = 1;
}

static int64_t spans_end(struct spans *s)
{
    int64_t t = s->total + (s->open ? s->b - s->a : 0);
    *s = (struct spans){0};
    return t;
}

static void active_set(struct store_stage_count *v, size_t n, const char *stage, int64_t ms)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].stage, stage) == 0)
            v[i].active_ms = ms;
}

/* Sets active_ms of every stage in v from its tasks' spans. */
static int stage_active(struct store *s, int64_t run_id, struct store_stage_count *v, size_t n,
                        struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    struct spans sp = {0};
    char *cur = NULL;
    int rc = prepare(s, spans_sql, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    while ((rc = store_step(s, st, err)) == 1) {
        const char *stage = store_col_text(st, 0);
        if (cur && strcmp(cur, stage) != 0) {
            active_set(v, n, cur, spans_end(&sp));
            free(cur);
            cur = NULL;
        }
        if (!cur)
            cur = bh_xstrdup(stage);
        spans_add(&sp, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
    }
    if (cur)
        active_set(v, n, cur, spans_end(&sp));
    free(cur);
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Several places that are hosts of one endpoint pool ("gpus#1,gpus#3":
 * NAME#K, one NAME) are one place: *endpoint becomes them, sorted. A
 * reroute's two endpoints stay "" (several places). */
static void pool_hosts(char **endpoint, const char *list)
{
    size_t n = 1, prefix = strcspn(list, "#");
    for (const char *c = list; *c; c++)
        n += *c == ',';
    if (n < 2 || !list[prefix])
        return;
    char *copy = bh_xstrdup(list), **v = bh_xcalloc(n, sizeof(*v)), *save = NULL;
    size_t k = 0, len = 0;
    int one_pool = 1;
    for (char *h = strtok_r(copy, ",", &save); h && k < n; h = strtok_r(NULL, ",", &save)) {
        one_pool &= strncmp(h, list, prefix + 1) == 0 &&
                    strspn(h + prefix + 1, "0123456789") == strlen(h + prefix + 1);
        v[k++] = h;
        len += strlen(h) + 1;
    }
    if (one_pool && k == n) {
        qsort(v, k, sizeof(*v), by_name);
        char *out = bh_xcalloc(len + 1, 1);
        for (size_t i = 0; i < k; i++)
            snprintf(out + strlen(out), len + 1 - strlen(out), "%s%s", i ? "," : "", v[i]);
        free(*endpoint);
        *endpoint = out;
    }
    free(v);
    free(copy);
}

static void stage_read(sqlite3_stmt *st, struct store_stage_count *c)
{
    int64_t *num[] = {&c->total,         &c->pending,       &c->running,  &c->done,
                      &c->failed,        &c->withheld,      &c->skipped,  &c->cached,
                      &c->prompt_tokens, &c->output_tokens, &c->active_ms};
    c->stage = bh_xstrdup(store_col_text(st, 0));
    for (size_t i = 0; i < BH_NELEM(num); i++)
        *num[i] = sqlite3_column_int64(st, 1 + (int)i);
    c->endpoint = bh_xstrdup(store_col_text(st, 12));
    c->model = bh_xstrdup(store_col_text(st, 13));
    if (!c->endpoint[0])
        pool_hosts(&c->endpoint, store_col_text(st, 14));
}

int store_stage_counts(struct store *s, int64_t run_id, struct store_stage_count **out, size_t *n,
                       struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    struct store_stage_count *v = NULL;
    size_t count = 0, cap = 0;
    int rc = prepare(s, stage_sql, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    while ((rc = store_step(s, st, err)) == 1) {
        v = bh_xgrow(v, &cap, count + 1, sizeof(*v));
        memset(&v[count], 0, sizeof(*v));
        stage_read(st, &v[count++]);
    }
    sqlite3_finalize(st);
    if (rc >= 0)
        rc = stage_active(s, run_id, v, count, err);
    if (rc < 0) {
        store_stage_counts_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

void store_stage_counts_free(struct store_stage_count *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].stage);
        free(v[i].endpoint);
        free(v[i].model);
    }
    free(v);
}
