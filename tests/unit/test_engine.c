/* tests/unit/test_engine.c — the run loop and the task state machine, with a
 * stage kind that answers at once (no network): dependency order, failure and
 * refusal propagation, labels through outputs, and resume without redoing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egress/egress.h"
#include "engine/engine.h"
#include "net/net.h"
#include "pipeline/pipeline.h"
#include "sources/src_git.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

static const char pipeline_json[] =
    "{ \"version\": 1, \"name\": \"engine-test\",\n"
    "  \"endpoints\": { \"box\": { \"provider\": \"ollama\", \"url\": \"http://127.0.0.1:9\",\n"
    "                            \"locality\": \"local\", \"max_concurrency\": 2 } },\n"
    "  \"source\": { \"kind\": \"git\", \"label\": \"confidential\",\n"
    "              \"fields\": { \"pr.title\": \"internal\" } },\n"
    "  \"stages\": {\n"
    "    \"a\": { \"endpoint\": \"box\", \"model\": \"m\", \"prompt\": \"a.md\" },\n"
    "    \"b\": { \"endpoint\": \"box\", \"model\": \"m\", \"prompt\": \"b.md\", \"after\": [\"a\"] },\n"
    "    \"c\": { \"endpoint\": \"box\", \"model\": \"m\", \"prompt\": \"c.md\" } } }\n";

struct fx {
    char dir[64];
    struct pipeline *p;
    struct store *store;
    struct net *net;
    struct egr_gate *gate;
    int64_t run_id;
    struct src_item *items;   /* 3, freed with src_items_free */
    /* What the fake kind saw and does. */
    char log[64][32];
    size_t n_log;
    char fail_item[32], fail_stage[8];
    int fail_code;
    int retry_attempts;   /* fail_item/fail_stage asks for a retry on attempts up to this */
};

static struct fx *cur;

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void item_init(struct src_item *it, int n)
{
    static const char *names[] = { "pr.title", "pr.diff" };
    it->key = bh_xasprintf("refs/pull/%d/head", n);
    it->version = bh_xstrdup("x..y");
    it->n_fields = 2;
    it->fields = bh_xcalloc(2, sizeof(*it->fields));
    for (size_t i = 0; i < 2; i++) {
        it->fields[i].name = bh_xstrdup(names[i]);
        it->fields[i].value = bh_xasprintf("%s of %d", names[i], n);
    }
}

static int setup(void **state)
{
    struct fx *f = bh_xcalloc(1, sizeof(*f));
    struct bh_err err = { 0 };
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-engine.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    write_file(f->dir, "a.md", "title {{pr.title}}");
    write_file(f->dir, "b.md", "{{a.output}} diff {{pr.diff}}");
    write_file(f->dir, "c.md", "{{b.output}}");
    write_file(f->dir, "p.json", pipeline_json);
    char path[128], state_dir[128];
    snprintf(path, sizeof(path), "%s/p.json", f->dir);
    snprintf(state_dir, sizeof(state_dir), "%s/state", f->dir);
    assert_int_equal(pipe_load(&f->p, path, NULL, &err), 0);
    assert_int_equal(store_open(&f->store, state_dir, &err), 0);
    int resumed;
    assert_int_equal(store_run_open(f->store, "k", "engine-test", &f->run_id, &resumed, &err), 0);
    assert_int_equal(net_new(&f->net, &err), 0);
    assert_int_equal(egr_new(&f->gate, f->p, f->net, f->store, f->run_id, &err), 0);
    f->items = bh_xcalloc(3, sizeof(*f->items));
    for (int i = 0; i < 3; i++)
        item_init(&f->items[i], i + 1);
    *state = cur = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    net_free(f->net);
    egr_free(f->gate);
    store_free(f->store);
    pipe_free(f->p);
    src_items_free(f->items, 3);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* The fake kind: renders nothing, answers "<stage>(<inputs>)" at once. */
static int fake_start(struct eng_task *t, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const char *stage = p->stages[eng_task_stage(t)].name;
    const char *item = eng_task_item(t);
    snprintf(cur->log[cur->n_log++], sizeof(cur->log[0]), "%s %c", item + 10, stage[0]);
    int chosen = strcmp(item, cur->fail_item) == 0 && strcmp(stage, cur->fail_stage) == 0;
    if (chosen && eng_task_attempt(t) <= cur->retry_attempts) {
        struct bh_err e = { 0 };
        bh_err_set(&e, BH_ENET, "flaky");
        eng_task_retry(t, 1, 0, &e); /* ask for 1 ms: the backoff decides */
        return 0;
    }
    if (chosen && cur->fail_code)
        return bh_err_set(err, cur->fail_code, "told to fail");
    const char *in = NULL;
    int label = 0;
    char field[16], out[256];
    snprintf(field, sizeof(field), "%s.output", stage[0] == 'b' ? "a" : "b");
    if (stage[0] == 'a' && eng_task_lookup(t, "pr.title", &in, &label, err))
        return err->code;
    if (stage[0] != 'a' && eng_task_lookup(t, field, &in, &label, err))
        return err->code;
    if (stage[0] == 'b') {
        const char *diff;
        int dl;
        if (eng_task_lookup(t, "pr.diff", &diff, &dl, err))
            return err->code;
        label = dl > label ? dl : label;
    }
    snprintf(out, sizeof(out), "%s(%s)", stage, in);
    eng_task_done(t, out, label, NULL);
    return 0;
}

static const struct eng_kind fake_kind = { "fake", fake_start };

static int run(struct fx *f, struct eng_summary *sum)
{
    struct bh_err err = { 0 };
    struct eng_opts o = { .p = f->p, .store = f->store, .run_id = f->run_id, .gate = f->gate,
                          .net = f->net, .items = f->items, .n_items = 3, .kind = &fake_kind };
    f->n_log = 0;
    return eng_run(&o, sum, &err);
}

static size_t logged(const struct fx *f, const char *entry)
{
    for (size_t i = 0; i < f->n_log; i++)
        if (strcmp(f->log[i], entry) == 0)
            return i + 1;
    return 0;
}

static const struct store_task *task(const struct store_task *t, size_t n, const char *item,
                                     const char *stage)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].item_key, item) == 0 && strcmp(t[i].stage, stage) == 0)
            return &t[i];
    fail_msg("no task %s %s", item, stage);
    return NULL;
}

static void engine_runs_every_task_after_its_inputs(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    assert_int_equal(run(f, &sum), 0);
    assert_int_equal(sum.tasks, 9);
    assert_int_equal(sum.done, 9);
    assert_int_equal(f->n_log, 9);
    for (int i = 1; i <= 3; i++) {
        char a[32], b[32], c[32];
        snprintf(a, sizeof(a), "%d/head a", i);
        snprintf(b, sizeof(b), "%d/head b", i);
        snprintf(c, sizeof(c), "%d/head c", i);
        assert_true(logged(f, a) && logged(f, a) < logged(f, b));
        assert_true(logged(f, b) < logged(f, c)); /* c reads b.output: an implicit edge */
    }
    struct store_task *t;
    size_t n;
    struct bh_err err = { 0 };
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    const struct store_task *c2 = task(t, n, "refs/pull/2/head", "c");
    assert_string_equal(c2->output, "c(b(a(pr.title of 2)))");
    assert_string_equal(c2->label, "confidential"); /* b read the diff; c inherits */
    assert_string_equal(task(t, n, "refs/pull/2/head", "a")->label, "internal");
    assert_string_equal(c2->locality, "local");
    assert_string_equal(c2->endpoint, "box");
    store_tasks_free(t, n);
}

static void engine_failure_stops_only_that_items_dependants(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    snprintf(f->fail_item, sizeof(f->fail_item), "refs/pull/2/head");
    snprintf(f->fail_stage, sizeof(f->fail_stage), "a");
    f->fail_code = BH_ENET;
    assert_int_equal(run(f, &sum), 0);
    assert_int_equal(sum.done, 6);
    assert_int_equal(sum.failed, 3);
    assert_false(logged(f, "2/head b")); /* never started */
    struct store_task *t;
    size_t n;
    struct bh_err err = { 0 };
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_string_equal(task(t, n, "refs/pull/2/head", "a")->error, "told to fail");
    assert_string_equal(task(t, n, "refs/pull/2/head", "b")->error,
                        "not run: stage 'a' failed for this item");
    assert_string_equal(task(t, n, "refs/pull/2/head", "c")->error,
                        "not run: stage 'b' failed for this item");
    store_tasks_free(t, n);

    /* The same run again: only the three unfinished tasks start. */
    f->fail_item[0] = '\0';
    assert_int_equal(run(f, &sum), 0);
    assert_int_equal(sum.reused, 6);
    assert_int_equal(sum.done, 3);
    assert_int_equal(f->n_log, 3);
    assert_true(logged(f, "2/head a") && logged(f, "2/head b") && logged(f, "2/head c"));
}

static void engine_refusal_withholds_dependants(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    snprintf(f->fail_item, sizeof(f->fail_item), "refs/pull/3/head");
    snprintf(f->fail_stage, sizeof(f->fail_stage), "b");
    f->fail_code = BH_EPOLICY;
    assert_int_equal(run(f, &sum), 0);
    assert_int_equal(sum.withheld, 2); /* b refused, c withheld because of it */
    assert_int_equal(sum.done, 7);
    struct store_task *t;
    size_t n;
    struct bh_err err = { 0 };
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_int_equal(task(t, n, "refs/pull/3/head", "c")->state, STORE_WITHHELD);
    assert_string_equal(task(t, n, "refs/pull/3/head", "c")->error,
                        "not run: stage 'b' withheld for this item");
    store_tasks_free(t, n);
}

static void engine_retries_a_transient_failure_then_gives_up(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    snprintf(f->fail_item, sizeof(f->fail_item), "refs/pull/1/head");
    snprintf(f->fail_stage, sizeof(f->fail_stage), "a");
    f->retry_attempts = 2; /* flaky twice, then fine */
    assert_int_equal(run(f, &sum), 0);
    assert_int_equal(sum.done, 9);
    assert_int_equal(sum.retries, 2);
    assert_int_equal(f->n_log, 11); /* 9 tasks, two of them twice more */

    f->retry_attempts = 3; /* the default max_attempts: never fine: give up after the last attempt */
    snprintf(f->fail_item, sizeof(f->fail_item), "refs/pull/2/head");
    struct store_task *t;
    size_t n;
    struct bh_err err = { 0 };
    /* A fresh run key, so nothing is reused. */
    int resumed;
    assert_int_equal(store_run_open(f->store, "k2", "engine-test", &f->run_id, &resumed, &err), 0);
    assert_int_equal(run(f, &sum), 0);
    assert_int_equal(sum.failed, 3);
    assert_int_equal(sum.retries, 2);
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_string_equal(task(t, n, "refs/pull/2/head", "a")->error, "after 3 attempts: flaky");
    store_tasks_free(t, n);
}

static void engine_stop_request_starts_nothing(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    eng_request_stop();
    assert_int_equal(run(f, &sum), 0);
    assert_true(sum.interrupted);
    assert_int_equal(f->n_log, 0);
    assert_int_equal(sum.done, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(engine_runs_every_task_after_its_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(engine_failure_stops_only_that_items_dependants, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(engine_refusal_withholds_dependants, setup, teardown),
        cmocka_unit_test_setup_teardown(engine_retries_a_transient_failure_then_gives_up, setup,
                                        teardown),
        /* Last: the stop request is process-wide and cannot be taken back. */
        cmocka_unit_test_setup_teardown(engine_stop_request_starts_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
