/* tests/unit/test_status.c — what `bulkhead status` reads: a run's tasks
 * counted per stage by state, in the order stages first got a task, with
 * tokens of live replies only and where the tasks ran; the run itself, and
 * the error for a run that is not there. */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/status.h"
#include "store/store.h"
#include "store/store_int.h" /* the database handle: the test sets task times itself */
#include "util/bh_err.h"

struct fx {
    char dir[64];
    struct store *s;
    int64_t run;
    struct bh_err err;
};

static int setup(void **state)
{
    static struct fx f;
    int resumed = 0;
    memset(&f, 0, sizeof(f));
    snprintf(f.dir, sizeof(f.dir), "/tmp/bh-status.XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    assert_int_equal(store_open(&f.s, f.dir, &f.err), 0);
    assert_int_equal(store_run_open(f.s, "key", "review", &f.run, &resumed, &f.err), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    store_free(f->s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    return system(cmd);
}

/* A task of item in stage, finished in state (pending when state is 0). */
static void task(struct fx *f, const char *item, const char *stage, int state, int cached,
                 const char *endpoint)
{
    int64_t item_id = 0, id = 0;
    assert_int_equal(store_item_put(f->s, f->run, item, &item_id, &f->err), 0);
    assert_int_equal(store_task_put(f->s, f->run, item_id, stage, NULL, &id, &f->err), 0);
    if (state == STORE_PENDING)
        return;
    assert_int_equal(store_task_set_running(f->s, id, &f->err), 0);
    if (state == STORE_RUNNING)
        return;
    struct store_result r = {.state = state,
                             .output = "x",
                             .label = "internal",
                             .endpoint = endpoint,
                             .model = "m",
                             .cached = cached,
                             .prompt_tokens = 100,
                             .output_tokens = 10};
    assert_int_equal(store_task_finish(f->s, id, &r, &f->err), 0);
}

static void status_counts_tasks_per_stage_in_run_order(void **state)
{
    struct fx *f = *state;
    struct store_stage_count *v = NULL;
    size_t n = 0;
    task(f, "pr-1", "plan", STORE_DONE, 0, "cloud");
    task(f, "pr-1", "review", STORE_DONE, 1, "gpu");
    task(f, "pr-2", "plan", STORE_DONE, 1, "cloud");
    task(f, "pr-2", "review", STORE_FAILED, 0, "gpu");
    task(f, "pr-3", "plan", STORE_WITHHELD, 0, "cloud");
    task(f, "pr-3", "review", STORE_RUNNING, 0, "");
    task(f, "pr-4", "plan", STORE_PENDING, 0, "");
    task(f, "pr-4", "review", STORE_DONE, 0, "local-twin");
    assert_int_equal(store_stage_counts(f->s, f->run, &v, &n, &f->err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].stage, "plan");
    assert_int_equal(v[0].total, 4);
    assert_int_equal(v[0].done, 2);
    assert_int_equal(v[0].withheld, 1);
    assert_int_equal(v[0].pending, 1);
    assert_int_equal(v[0].cached, 1);
    assert_int_equal(v[0].output_tokens, 20); /* the cached answer cost no tokens */
    assert_int_equal(v[0].prompt_tokens, 200);
    assert_string_equal(v[0].endpoint, "cloud");
    assert_string_equal(v[1].stage, "review");
    assert_int_equal(v[1].done, 2);
    assert_int_equal(v[1].failed, 1);
    assert_int_equal(v[1].running, 1);
    assert_string_equal(v[1].endpoint, ""); /* gpu and local-twin: several places */
    assert_string_equal(v[1].model, "m");
    assert_true(v[1].active_ms >= 0);
    store_stage_counts_free(v, n);
}

/* A stage's time is the union of its tasks' spans, to the millisecond: two
 * overlapping tasks count once, and the gap between an attempt and its resume
 * not at all (it used to be last finish minus first start, in whole seconds). */
static void status_stage_time_leaves_out_idle_gaps(void **state)
{
    struct fx *f = *state;
    struct store_stage_count *v = NULL;
    size_t n = 0;
    task(f, "pr-1", "review", STORE_DONE, 0, "gpu");
    task(f, "pr-2", "review", STORE_DONE, 0, "gpu");
    task(f, "pr-3", "review", STORE_DONE, 0, "gpu");
    task(f, "pr-4", "review", STORE_PENDING, 0, "");
    static const char *const times =
        "UPDATE tasks SET started = '2026-01-01T00:00:00.000Z', finished = '2026-01-01T00:00:01.500Z'"
        " WHERE item_id = (SELECT id FROM items WHERE key = 'pr-1');"
        "UPDATE tasks SET started = '2026-01-01T00:00:01.000Z', finished = '2026-01-01T00:00:02.000Z'"
        " WHERE item_id = (SELECT id FROM items WHERE key = 'pr-2');"
        /* a crash, and the resume an hour later */
        "UPDATE tasks SET started = '2026-01-01T01:00:10.000Z', finished = '2026-01-01T01:00:10.250Z'"
        " WHERE item_id = (SELECT id FROM items WHERE key = 'pr-3');";
    assert_int_equal(sqlite3_exec(f->s->db, times, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(store_stage_counts(f->s, f->run, &v, &n, &f->err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].active_ms, 2000 + 250);
    store_stage_counts_free(v, n);
}

static void status_of_a_run_without_tasks_is_empty(void **state)
{
    struct fx *f = *state;
    struct store_stage_count *v = NULL;
    size_t n = 7;
    assert_int_equal(store_stage_counts(f->s, f->run, &v, &n, &f->err), 0);
    assert_int_equal(n, 0);
    store_stage_counts_free(v, n);
}

static void status_reads_the_run_and_names_a_missing_one(void **state)
{
    struct fx *f = *state;
    struct store_run_info r;
    assert_int_equal(store_run_finish(f->s, f->run, "ok", &f->err), 0);
    assert_int_equal(store_run_info(f->s, f->run, &r, &f->err), 0);
    assert_string_equal(r.pipeline, "review");
    assert_string_equal(r.status, "ok");
    assert_int_equal(strlen(r.started), 24); /* 2026-12-07T01:02:03.456Z */
    assert_int_equal(strlen(r.finished), 24);
    store_run_info_release(&r);
    assert_int_equal(store_run_info(f->s, 99, &r, &f->err), BH_ENOTFOUND);
    assert_non_null(strstr(f->err.msg, "no run 99 in state database"));
    assert_null(r.pipeline);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(status_counts_tasks_per_stage_in_run_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(status_of_a_run_without_tasks_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(status_stage_time_leaves_out_idle_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(status_reads_the_run_and_names_a_missing_one, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
