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
#include "engine/engine_int.h"
#include "pipeline/pipeline.h"
#include "sources/src_git.h"
#include "stages/render.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
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
    struct egr_gate *gate;
    int64_t run_id;
    struct src_item *items; /* 3, freed with src_items_free */
    /* What the fake kind saw and does. */
    char log[64][32];
    size_t n_log;
    char fail_item[32], fail_stage[8];
    int fail_code;
    int retry_attempts; /* fail_item/fail_stage asks for a retry on attempts up to this */
    int unreachable;    /* every task's request reaches no server */
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

static void item_fields(struct src_item *it, int n)
{
    static const char *names[] = {"pr.title", "pr.diff"};
    it->n_fields = 2;
    it->fields = bh_xcalloc(2, sizeof(*it->fields));
    for (size_t i = 0; i < 2; i++) {
        it->fields[i].name = bh_xstrdup(names[i]);
        it->fields[i].value = bh_xasprintf("%s of %d", names[i], n);
    }
}

static void item_init(struct src_item *it, int n)
{
    it->key = bh_xasprintf("refs/pull/%d/head", n);
    it->version = bh_xstrdup("x..y");
    item_fields(it, n);
}

static int setup_json(void **state, const char *json)
{
    struct fx *f = bh_xcalloc(1, sizeof(*f));
    struct bh_err err = {0};
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-engine.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    write_file(f->dir, "a.md", "title {{pr.title}}");
    write_file(f->dir, "b.md", "{{a.output}} diff {{pr.diff}}");
    write_file(f->dir, "c.md", "{{b.output}}");
    write_file(f->dir, "p.json", json);
    char path[128], state_dir[128];
    snprintf(path, sizeof(path), "%s/p.json", f->dir);
    snprintf(state_dir, sizeof(state_dir), "%s/state", f->dir);
    if (pipe_load(&f->p, path, NULL, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(store_open(&f->store, state_dir, &err), 0);
    int resumed;
    assert_int_equal(store_run_open(f->store, "k", "engine-test", &f->run_id, &resumed, &err), 0);
    assert_int_equal(egr_new(&f->gate, f->p, f->store, f->run_id, &err), 0);
    f->items = bh_xcalloc(3, sizeof(*f->items));
    for (int i = 0; i < 3; i++)
        item_init(&f->items[i], i + 1);
    *state = cur = f;
    return 0;
}

static int setup(void **state)
{
    return setup_json(state, pipeline_json);
}

static int teardown(void **state)
{
    struct fx *f = *state;
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
    if (cur->unreachable) {
        struct bh_err e = {0};
        bh_err_set(&e, BH_ENET, "connection refused");
        eng_task_retry(t, &(struct eng_retry){.retry_after_ms = 1, .unreachable = 1}, &e);
        return 0;
    }
    if (chosen && eng_task_attempt(t) <= cur->retry_attempts) {
        struct bh_err e = {0};
        bh_err_set(&e, BH_ENET, "flaky");
        eng_task_retry(t, &(struct eng_retry){.retry_after_ms = 1},
                       &e); /* 1 ms: the backoff decides */
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

static const struct eng_kind fake_kind = {"fake", fake_start, NULL};

static int run(struct fx *f, struct eng_summary *sum)
{
    struct bh_err err = {0};
    struct eng_opts o = {.p = f->p,
                         .store = f->store,
                         .run_id = f->run_id,
                         .gate = f->gate,
                         .items = f->items,
                         .n_items = 3,
                         .kind = &fake_kind};
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
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    const struct store_task *c2 = task(t, n, "refs/pull/2/head", "c");
    assert_string_equal(c2->output, "c(b(a(pr.title of 2)))");
    assert_string_equal(c2->label, "confidential"); /* b read the diff; c inherits */
    assert_string_equal(task(t, n, "refs/pull/2/head", "a")->label, "internal");
    assert_string_equal(c2->locality, "local");
    assert_string_equal(c2->endpoint, "box");
    store_tasks_free(t, n);
}

/* A source that reads an item's fields only when asked (as git's does),
 * counting the reads. */
struct lazy_src {
    size_t loads, unloads;
};

static int lazy_load(void *ud, struct src_item *it)
{
    struct lazy_src *ls = ud;
    int n = 0;
    if (it->fields)
        return 0;
    assert_int_equal(sscanf(it->key, "refs/pull/%d/head", &n), 1);
    item_fields(it, n);
    ls->loads++;
    return 1;
}

static void lazy_unload(void *ud, struct src_item *it)
{
    struct lazy_src *ls = ud;
    src_item_unload(it);
    ls->unloads++;
}

static void engine_holds_fields_of_at_most_its_slots_of_items(void **state)
{
    struct fx *f = *state;
    struct lazy_src ls = {0};
    struct eng_loader loader = {lazy_load, lazy_unload, &ls};
    for (int i = 0; i < 3; i++) {
        f->items[i].lazy = 1;
        src_item_unload(&f->items[i]);
    }
    struct bh_err err = {0};
    struct eng_summary sum;
    struct eng_opts o = {.p = f->p,
                         .store = f->store,
                         .run_id = f->run_id,
                         .gate = f->gate,
                         .items = f->items,
                         .n_items = 3,
                         .loader = &loader,
                         .kind = &fake_kind};
    f->n_log = 0;
    assert_int_equal(eng_run(&o, &sum, &err), 0);
    assert_int_equal(sum.done, 9);
    /* Three items with stages that wait for each other, two slots: a third
     * item's fields never join two others' (held ones make this 3). */
    assert_true(sum.items_loaded_max >= 1 && sum.items_loaded_max <= 2);
    assert_int_equal(sum.item_loads, ls.loads);
    assert_true(ls.loads >= 3);
    assert_int_equal(ls.unloads, ls.loads); /* every item is freed when its last cell ends */
    for (int i = 0; i < 3; i++)
        assert_null(f->items[i].fields);
    struct store_task *t;
    size_t n;
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    /* Read again, a field is the same text with the same label. */
    const struct store_task *c2 = task(t, n, "refs/pull/2/head", "c");
    assert_string_equal(c2->output, "c(b(a(pr.title of 2)))");
    assert_string_equal(c2->label, "confidential");
    assert_string_equal(task(t, n, "refs/pull/3/head", "a")->label, "internal");
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
    struct bh_err err = {0};
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
    struct bh_err err = {0};
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

    f->retry_attempts =
        3; /* the default max_attempts: never fine: give up after the last attempt */
    snprintf(f->fail_item, sizeof(f->fail_item), "refs/pull/2/head");
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
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

/* A server that nobody answers for: after ENG_DOWN_AFTER requests in a row
 * reached nothing the endpoint is down, and every task left fails at once
 * with one reason instead of each trying (and retrying) in turn. */
static void engine_dead_endpoint_fails_the_rest_at_once(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    f->unreachable = 1;
    assert_int_equal(run(f, &sum), 0);
    assert_int_equal(sum.done, 0);
    assert_int_equal(sum.failed, 9);
    assert_true(f->n_log <= ENG_DOWN_AFTER); /* 9 tasks with 3 attempts each would be 27 */
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    const char *why = task(t, n, "refs/pull/3/head", "a")->error;
    assert_non_null(strstr(why, "not run: endpoint '"));
    assert_non_null(strstr(why, "is down since "));
    assert_non_null(strstr(why, "(connection refused) — start it and run the same command again"));
    store_tasks_free(t, n);

    /* A resume tries the endpoint again, and it answers now. */
    f->unreachable = 0;
    f->n_log = 0;
    assert_int_equal(run(f, &sum), 0);
    assert_int_equal(sum.done, 9);
}

/* ---- progress snapshots and messages ------------------------------- */

struct watch {
    size_t calls, finals;
    char ended[8][8]; /* stage names in the order they were reported ended */
    size_t n_ended;
    struct eng_stage_progress last[3]; /* the final snapshot's stages */
    size_t n_last;
    char said[4][160];
    size_t n_said;
};

static void watch_progress(void *ud, const struct eng_progress *p)
{
    struct watch *w = ud;
    w->calls++;
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].ended_now && w->n_ended < 8)
            snprintf(w->ended[w->n_ended++], sizeof(w->ended[0]), "%s", p->stages[i].name);
    if (!p->final)
        return;
    w->finals++;
    w->n_last = p->n_stages < 3 ? p->n_stages : 3;
    memcpy(w->last, p->stages, w->n_last * sizeof(*p->stages));
}

static void watch_say(void *ud, const char *line)
{
    struct watch *w = ud;
    if (w->n_said < 4)
        snprintf(w->said[w->n_said++], sizeof(w->said[0]), "%s", line);
}

static int run_watched(struct fx *f, struct eng_summary *sum, struct watch *w)
{
    struct bh_err err = {0};
    struct eng_opts o = {.p = f->p,
                         .store = f->store,
                         .run_id = f->run_id,
                         .gate = f->gate,
                         .items = f->items,
                         .n_items = 3,
                         .kind = &fake_kind,
                         .progress = watch_progress,
                         .say = watch_say,
                         .ud = w};
    memset(w, 0, sizeof(*w));
    f->n_log = 0;
    return eng_run(&o, sum, &err);
}

static void engine_reports_each_stage_end_once_and_a_final_snapshot(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    struct watch w;
    snprintf(f->fail_item, sizeof(f->fail_item), "refs/pull/2/head");
    snprintf(f->fail_stage, sizeof(f->fail_stage), "a");
    f->fail_code = BH_ENET;
    assert_int_equal(run_watched(f, &sum, &w), 0);
    assert_int_equal(w.finals, 1);
    assert_int_equal(w.n_ended, 3);
    assert_string_equal(w.ended[0], "a"); /* run order: c reads b's output */
    assert_string_equal(w.ended[1], "b");
    assert_string_equal(w.ended[2], "c");
    assert_int_equal(w.n_last, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(w.last[i].total, 3);
        assert_int_equal(w.last[i].done, 2);
        assert_int_equal(w.last[i].failed, 1);
        assert_int_equal(w.last[i].in_flight, 0);
        assert_true(w.last[i].ended);
    }
    /* The failures went to the display, not around it. */
    assert_int_equal(w.n_said, 3);
    assert_string_equal(w.said[0], "bulkhead: refs/pull/2/head a: failed: told to fail");

    /* Resumed: what an earlier attempt finished counts as done and reused. */
    f->fail_item[0] = '\0';
    assert_int_equal(run_watched(f, &sum, &w), 0);
    assert_int_equal(w.last[0].done, 3);
    assert_int_equal(w.last[0].reused, 2);
    assert_int_equal(w.n_said, 0);
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

/* ---- fan-outs, batch stages and folds -------------------------------- */

static const char fan_json[] =
    "{ \"version\": 1, \"name\": \"fan-test\",\n"
    "  \"endpoints\": { \"box\": { \"provider\": \"ollama\", \"url\": \"http://127.0.0.1:9\",\n"
    "                            \"locality\": \"local\", \"max_concurrency\": 3 } },\n"
    "  \"source\": { \"kind\": \"git\", \"label\": \"confidential\",\n"
    "              \"fields\": { \"pr.title\": \"internal\", \"pr.files\": \"internal\",\n"
    "                          \"pr.ref\": \"internal\" },\n"
    "              \"rules\": [ { \"path\": \"docs/**\", \"label\": \"public\" } ] },\n"
    "  \"stages\": {\n"
    "    \"files\": { \"endpoint\": \"box\", \"model\": \"m\", \"for_each\": \"pr.files\",\n"
    "               \"user\": \"{{each.status}} {{each.path}}: {{each.diff}}\" },\n"
    "    \"sum\": { \"endpoint\": \"box\", \"model\": \"m\", \"user\": \"{{files.output}}\" },\n"
    "    \"plan\": { \"endpoint\": \"box\", \"model\": \"m\", \"output\": { \"format\": \"json\" },\n"
    "              \"user\": \"plan {{pr.title}}\" },\n"
    "    \"each\": { \"endpoint\": \"box\", \"model\": \"m\", \"for_each\": \"plan.output\",\n"
    "              \"user\": \"elem {{each}}\" },\n"
    "    \"digest\": { \"endpoint\": \"box\", \"model\": \"m\", \"scope\": \"batch\",\n"
    "                \"user\": \"digest {{sum.output}}\" },\n"
    "    \"fold\": { \"endpoint\": \"box\", \"model\": \"m\", \"kind\": \"reduce\", \"max_items\": 2,\n"
    "              \"user\": \"fold {{pr.title}}\" } } }\n";

#define FAN_ITEMS 3

/* What the render kind saw: "item stage element|prompt". */
struct fan {
    char dir[64];
    struct pipeline *p;
    struct store *store;
    struct egr_gate *gate;
    int64_t run_id;
    struct src_item items[FAN_ITEMS];
    char *log[256];
    size_t n_log;
    const char *plan_reply[FAN_ITEMS]; /* the planner's reply per item */
    char fail[64];                     /* "item stage element" that fails (BH_ENET) */
    int fail_code;
};

static struct fan *fcur;

static void field_set(struct src_field *f, const char *name, const char *value)
{
    f->name = bh_xstrdup(name);
    f->value = bh_xstrdup(value);
    f->len = strlen(value);
}

/* A pull request changing docs/a.md (public by the rule) and src/b.c, or
 * for n == 2 also renaming src/old.c to src/new.c. */
static void fan_item(struct src_item *it, int n)
{
    static const char *const paths[] = {"docs/a.md", "src/b.c", "src/new.c"};
    char diff[512] = "", files[256] = "";
    size_t count = n == 2 ? 3 : 2, off[3], len[3];
    it->key = bh_xasprintf("refs/pull/%d/head", n);
    it->version = bh_xstrdup("x..y");
    for (size_t i = 0; i < count; i++) {
        off[i] = strlen(diff);
        snprintf(diff + off[i], sizeof(diff) - off[i], "diff %s\n+line %d of %s\n", paths[i], n,
                 paths[i]);
        len[i] = strlen(diff) - off[i];
        snprintf(files + strlen(files), sizeof(files) - strlen(files), "%s%s\n",
                 i == 2 ? "R\tsrc/old.c -> " : "M\t", paths[i]);
    }
    it->n_fields = 3;
    it->fields = bh_xcalloc(3, sizeof(*it->fields));
    char title[32];
    snprintf(title, sizeof(title), "title %d", n);
    field_set(&it->fields[0], "pr.title", title);
    field_set(&it->fields[1], "pr.files", files);
    field_set(&it->fields[2], "pr.diff", diff);
    it->fields[2].parts = bh_xcalloc(count, sizeof(*it->fields[2].parts));
    it->fields[2].n_parts = count;
    for (size_t i = 0; i < count; i++)
        it->fields[2].parts[i] =
            (struct src_part){.path = bh_xstrdup(paths[i]), .offset = off[i], .length = len[i]};
}

static int fan_setup(void **state)
{
    struct fan *f = bh_xcalloc(1, sizeof(*f));
    struct bh_err err = {0};
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-engine.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    write_file(f->dir, "p.json", fan_json);
    char path[128], state_dir[128];
    snprintf(path, sizeof(path), "%s/p.json", f->dir);
    snprintf(state_dir, sizeof(state_dir), "%s/state", f->dir);
    if (pipe_load(&f->p, path, NULL, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(store_open(&f->store, state_dir, &err), 0);
    int resumed;
    assert_int_equal(store_run_open(f->store, "k", "fan-test", &f->run_id, &resumed, &err), 0);
    assert_int_equal(egr_new(&f->gate, f->p, f->store, f->run_id, &err), 0);
    for (int i = 0; i < FAN_ITEMS; i++) {
        fan_item(&f->items[i], i + 1);
        f->plan_reply[i] = "[\"x\", {\"k\": [1, 2]}]";
    }
    *state = fcur = f;
    return 0;
}

static void fan_log_clear(struct fan *f)
{
    for (size_t i = 0; i < f->n_log; i++)
        free(f->log[i]);
    f->n_log = 0;
}

static int fan_teardown(void **state)
{
    struct fan *f = *state;
    fan_log_clear(f);
    egr_free(f->gate);
    store_free(f->store);
    pipe_free(f->p);
    for (int i = 0; i < FAN_ITEMS; i++) { /* embedded items: src_items_free would free the array */
        free(f->items[i].key);
        free(f->items[i].version);
        for (size_t k = 0; k < f->items[i].n_fields; k++) {
            struct src_field *fl = &f->items[i].fields[k];
            for (size_t j = 0; j < fl->n_parts; j++)
                free(fl->parts[j].path);
            free(fl->parts);
            free(fl->name);
            free(fl->value);
        }
        free(f->items[i].fields);
    }
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* The render kind: renders the stage's template through the engine's
 * lookup and answers at once: the planner with its scripted reply, every
 * other stage with "<stage>[<prompt>]", at the prompt's label. */
static int render_start(struct eng_task *t, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[eng_task_stage(t)];
    char who[128], *prompt = NULL;
    int label = 0;
    snprintf(who, sizeof(who), "%s %s %s", eng_task_item(t), s->name,
             eng_task_element(t) ? eng_task_element(t) : "-");
    int rc = stage_render(p, &s->tpl, eng_task_lookup, t, 1 << 20, &prompt, &label, err);
    if (rc)
        return rc;
    fcur->log[fcur->n_log++] = bh_xasprintf("%s|%s", who, prompt);
    if (strcmp(who, fcur->fail) == 0) {
        free(prompt);
        return bh_err_set(err, fcur->fail_code ? fcur->fail_code : BH_ENET, "told to fail");
    }
    char *out = NULL;
    if (strcmp(s->name, "plan") == 0)
        out = bh_xstrdup(fcur->plan_reply[eng_task_item(t)[10] - '1']);
    else
        out = bh_xasprintf("%s[%s]", s->name, prompt);
    eng_task_done(t, out, label, NULL);
    free(out);
    free(prompt);
    return 0;
}

static const struct eng_kind render_kind = {"render", render_start, NULL};

static int fan_run(struct fan *f, struct eng_summary *sum)
{
    struct bh_err err = {0};
    struct eng_opts o = {.p = f->p,
                         .store = f->store,
                         .run_id = f->run_id,
                         .gate = f->gate,
                         .items = f->items,
                         .n_items = FAN_ITEMS,
                         .kind = &render_kind};
    fan_log_clear(f);
    int rc = eng_run(&o, sum, &err);
    if (rc)
        print_error("eng_run: %s\n", err.msg);
    return rc;
}

/* The prompt a task was sent, or NULL when it did not run in the last run. */
static const char *prompt_of(const struct fan *f, const char *who)
{
    size_t n = strlen(who);
    for (size_t i = 0; i < f->n_log; i++)
        if (strncmp(f->log[i], who, n) == 0 && f->log[i][n] == '|')
            return f->log[i] + n + 1;
    return NULL;
}

static const struct store_task *row(const struct store_task *t, size_t n, const char *item,
                                    const char *stage, const char *element)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].item_key, item) == 0 && strcmp(t[i].stage, stage) == 0 &&
            strcmp(t[i].element, element) == 0)
            return &t[i];
    fail_msg("no task %s %s '%s'", item, stage, element);
    return NULL;
}

static size_t rows_of(const struct store_task *t, size_t n, const char *stage)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += strcmp(t[i].stage, stage) == 0;
    return count;
}

static void fanout_runs_a_task_per_file_with_its_part_of_the_diff(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    assert_int_equal(fan_run(f, &sum), 0);
    assert_int_equal(sum.failed + sum.withheld, 0);
    /* Per item: 2 or 3 files, sum, plan, 2 elements; a digest; a fold of 2 + 1 parts. */
    assert_int_equal(sum.tasks, (2 + 3 + 2) + 3 * 4 + 1 + 3);
    assert_int_equal(sum.done, sum.tasks);
    assert_string_equal(prompt_of(f, "refs/pull/1/head files docs/a.md"),
                        "M docs/a.md: diff docs/a.md\n+line 1 of docs/a.md\n");
    assert_string_equal(prompt_of(f, "refs/pull/2/head files src/new.c"),
                        "R src/new.c: diff src/new.c\n+line 2 of src/new.c\n");
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_int_equal(rows_of(t, n, "files"), 7);
    /* each.diff is labelled per file: the docs rule lowers its part only;
     * each.path and each.status carry pr.files's label. */
    assert_string_equal(row(t, n, "refs/pull/1/head", "files", "docs/a.md")->label, "internal");
    assert_string_equal(row(t, n, "refs/pull/1/head", "files", "src/b.c")->label, "confidential");
    store_tasks_free(t, n);
}

static void fanout_output_joins_elements_under_their_keys(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    assert_int_equal(fan_run(f, &sum), 0);
    const char *p = prompt_of(f, "refs/pull/1/head sum -");
    assert_non_null(p);
    assert_string_equal(p, "### docs/a.md\nfiles[M docs/a.md: diff docs/a.md\n+line 1 of "
                           "docs/a.md\n]\n### src/b.c\nfiles[M src/b.c: diff src/b.c\n+line 1 "
                           "of src/b.c\n]\n");
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_string_equal(row(t, n, "refs/pull/1/head", "sum", "")->label, "confidential");
    store_tasks_free(t, n);
}

static void fanout_file_without_a_diff_part_fails_that_task_and_its_dependants(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    /* pr.files names a file the diff has no part for. */
    struct src_field *files = &f->items[0].fields[1];
    free(files->value);
    files->value = bh_xstrdup("M\tdocs/a.md\nA\tsrc/ghost.c\n");
    files->len = strlen(files->value);
    assert_int_equal(fan_run(f, &sum), 0);
    assert_null(prompt_of(f, "refs/pull/1/head files src/ghost.c")); /* never sent */
    assert_non_null(prompt_of(f, "refs/pull/1/head files docs/a.md"));
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    const struct store_task *ghost = row(t, n, "refs/pull/1/head", "files", "src/ghost.c");
    assert_int_equal(ghost->state, STORE_FAILED);
    assert_non_null(strstr(ghost->error, "no value for {{each.diff}}: pr.diff has no part for "
                                         "'src/ghost.c'"));
    assert_string_equal(row(t, n, "refs/pull/1/head", "sum", "")->error,
                        "not run: stage 'files' failed for this item");
    assert_int_equal(row(t, n, "refs/pull/2/head", "sum", "")->state, STORE_DONE);
    store_tasks_free(t, n);
}

static void fanout_over_a_json_reply_runs_a_task_per_element(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    f->plan_reply[1] = "{\"not\": \"a list\"}";
    f->plan_reply[2] = "[]";
    assert_int_equal(fan_run(f, &sum), 0);
    assert_string_equal(prompt_of(f, "refs/pull/1/head each 0"), "elem x"); /* verbatim */
    assert_string_equal(prompt_of(f, "refs/pull/1/head each 1"), "elem {\"k\":[1,2]}");
    assert_null(prompt_of(f, "refs/pull/1/head each 2"));
    assert_null(prompt_of(f, "refs/pull/2/head each 0"));
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    /* Not an array: the item's fan-out fails, saying what it found. */
    const struct store_task *bad = row(t, n, "refs/pull/2/head", "each", "");
    assert_int_equal(bad->state, STORE_FAILED);
    assert_string_equal(bad->error, "for_each: the output of stage 'plan' is a JSON object, not "
                                    "a JSON array: have its prompt ask for a JSON array of the "
                                    "elements");
    assert_null(strstr(bad->error, "not\": \"a list")); /* never the reply's text */
    /* An empty array: no task at all. */
    assert_int_equal(rows_of(t, n, "each"), 2 + 1);
    assert_int_equal(row(t, n, "refs/pull/1/head", "each", "1")->state, STORE_DONE);
    store_tasks_free(t, n);
}

static void batch_reads_every_item_and_names_those_without_output(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    snprintf(f->fail, sizeof(f->fail), "refs/pull/2/head files src/b.c");
    f->fail_code = BH_EPOLICY;
    assert_int_equal(fan_run(f, &sum), 0);
    size_t digests = 0;
    for (size_t i = 0; i < f->n_log; i++)
        digests += strncmp(f->log[i], "(batch) digest -|", 17) == 0;
    assert_int_equal(digests, 1);
    const char *p = prompt_of(f, "(batch) digest -");
    assert_non_null(p);
    assert_non_null(strstr(p, "digest ## refs/pull/1/head\nsum[### docs/a.md\n"));
    assert_non_null(strstr(p, "\n## refs/pull/3/head\nsum["));
    assert_null(strstr(p, "## refs/pull/2/head"));
    assert_non_null(strstr(p, "(not available: refs/pull/2/head — withheld)\n"));
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_int_equal(row(t, n, "refs/pull/2/head", "sum", "")->state, STORE_WITHHELD);
    const struct store_task *d = row(t, n, "(batch)", "digest", "");
    assert_int_equal(d->state, STORE_DONE);
    assert_string_equal(d->label, "confidential");
    for (const struct store_task *r = d; r < t + n; r++) /* the batch comes after every item */
        assert_string_equal(r->item_key, "(batch)");
    store_tasks_free(t, n);
}

static void batch_without_any_input_does_not_run(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    /* Every item's file task withheld: no sum anywhere. */
    struct src_field saved[FAN_ITEMS];
    for (int i = 0; i < FAN_ITEMS; i++) {
        saved[i] = f->items[i].fields[1];
        f->items[i].fields[1].value = bh_xstrdup("A\tsrc/ghost.c\n");
        f->items[i].fields[1].len = strlen(f->items[i].fields[1].value);
    }
    assert_int_equal(fan_run(f, &sum), 0);
    for (int i = 0; i < FAN_ITEMS; i++) {
        free(f->items[i].fields[1].value);
        f->items[i].fields[1] = saved[i];
    }
    assert_null(prompt_of(f, "(batch) digest -"));
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    const struct store_task *d = row(t, n, "(batch)", "digest", "");
    assert_int_equal(d->state, STORE_FAILED);
    assert_string_equal(d->error, "not run: no work item produced what this stage reads "
                                  "(3 failed, 0 withheld)");
    store_tasks_free(t, n);
}

static void reduce_folds_in_rounds_of_max_items(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    assert_int_equal(fan_run(f, &sum), 0);
    assert_string_equal(prompt_of(f, "(batch) fold round 1 part 1"),
                        "fold ## refs/pull/1/head\ntitle 1\n## refs/pull/2/head\ntitle 2\n");
    assert_string_equal(prompt_of(f, "(batch) fold round 1 part 2"),
                        "fold ## refs/pull/3/head\ntitle 3\n");
    assert_string_equal(prompt_of(f, "(batch) fold round 2 part 1"),
                        "fold ## part 1\nfold[fold ## refs/pull/1/head\ntitle 1\n## "
                        "refs/pull/2/head\ntitle 2\n]\n## part 2\nfold[fold ## refs/pull/3/head"
                        "\ntitle 3\n]\n");
    assert_null(prompt_of(f, "(batch) fold round 3 part 1"));
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_int_equal(rows_of(t, n, "fold"), 3);
    assert_string_equal(row(t, n, "(batch)", "fold", "round 2 part 1")->label, "internal");
    store_tasks_free(t, n);
}

/* Labels join through a fold: the part holding the one item whose title a
 * detector raises to restricted is restricted, the other part keeps the
 * title's own label, and the round that folds both is restricted. */
static void reduce_over_one_restricted_item_is_restricted(void **state)
{
    struct fan *f = *state;
    struct src_field *title = &f->items[2].fields[0];
    free(title->value);
    /* a private key's armour line, split so no scanner takes this file for one */
    title->value = bh_xstrdup("title 3 -----BEGIN RSA PRIV"
                              "ATE KEY-----");
    title->len = strlen(title->value);
    struct eng_summary sum;
    assert_int_equal(fan_run(f, &sum), 0);
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_string_equal(row(t, n, "(batch)", "fold", "round 1 part 1")->label, "internal");
    assert_string_equal(row(t, n, "(batch)", "fold", "round 1 part 2")->label, "restricted");
    assert_string_equal(row(t, n, "(batch)", "fold", "round 2 part 1")->label, "restricted");
    store_tasks_free(t, n);
}

static void resume_redoes_only_unfinished_elements(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    snprintf(f->fail, sizeof(f->fail), "refs/pull/3/head each 1");
    assert_int_equal(fan_run(f, &sum), 0);
    assert_int_equal(sum.failed, 1);
    size_t first = sum.done;
    f->fail[0] = '\0';
    assert_int_equal(fan_run(f, &sum), 0);
    /* The plan is not asked again: its stored reply makes the same elements. */
    assert_int_equal(f->n_log, 1);
    assert_non_null(prompt_of(f, "refs/pull/3/head each 1"));
    assert_int_equal(sum.reused, first);
    assert_int_equal(sum.done, 1);
    assert_int_equal(sum.tasks, first + 1);
}

static void resume_redoes_a_batch_that_read_a_partial_run(void **state)
{
    struct fan *f = *state;
    struct eng_summary sum;
    snprintf(f->fail, sizeof(f->fail), "refs/pull/2/head sum -");
    assert_int_equal(fan_run(f, &sum), 0);
    assert_non_null(strstr(prompt_of(f, "(batch) digest -"), "(not available: refs/pull/2/head"));
    f->fail[0] = '\0';
    assert_int_equal(fan_run(f, &sum), 0);
    /* sum of item 2 ran, and the digest again: now it has every item. */
    assert_int_equal(f->n_log, 2);
    const char *p = prompt_of(f, "(batch) digest -");
    assert_non_null(p);
    assert_non_null(strstr(p, "## refs/pull/2/head\n"));
    assert_null(strstr(p, "not available"));
}

/* ---- the lists a fan-out runs over ------------------------------------ */

static void files_list_gives_new_paths_statuses_and_unique_keys(void **state)
{
    (void)state;
    struct eng_elem *v = NULL;
    size_t n = 0;
    eng_elems_from_files("M\tsrc/a.c\nR\tsrc/old.c -> src/new.c\nD\tgone.txt\n\nM\tsrc/a.c", &v,
                         &n);
    assert_int_equal(n, 4);
    const char *want[][3] = {{"src/a.c", "src/a.c", "M"},
                             {"src/new.c", "src/new.c", "R"},
                             {"gone.txt", "gone.txt", "D"},
                             {"src/a.c (2)", "src/a.c", "M"}};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].key, want[i][0]);
        assert_string_equal(v[i].value, want[i][1]);
        assert_string_equal(v[i].status, want[i][2]);
    }
    eng_elems_free(v, n);
    eng_elems_from_files("", &v, &n);
    assert_int_equal(n, 0);
    eng_elems_free(v, n);
}

static void json_reply_gives_elements_or_says_what_it_found(void **state)
{
    (void)state;
    static const struct {
        const char *reply;
        size_t n;
        const char *last; /* the last element's text, or the error message */
    } cases[] = {
        {"[\"a b\", 2, {\"k\": [1, 2]}, null]", 4, "null"},
        {"  [\"only\"]\n", 1, "only"},
        {"```json\n[\"fenced\", \"too\"]\n```\n", 2, "too"},
        {"[]", 0, NULL},
        {"{\"k\": 1}", 0,
         "for_each: the output of stage 'plan' is a JSON object, not a JSON "
         "array: have its prompt ask for a JSON array of the elements"},
        {"\"a\"", 0,
         "for_each: the output of stage 'plan' is a JSON string, not a JSON "
         "array: have its prompt ask for a JSON array of the elements"},
        {"Sure! [1, 2", 0,
         "for_each: the output of stage 'plan' is not JSON (line 1, column "
         "4): have its prompt ask for a JSON array of the elements"},
        {"", 0,
         "for_each: the output of stage 'plan' is not JSON (line 1, column 0): have "
         "its prompt ask for a JSON array of the elements"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct eng_elem *v = NULL;
        size_t n = 99;
        struct bh_err err = {0};
        int rc = eng_elems_from_json(cases[i].reply, "plan", &v, &n, &err);
        if (cases[i].n || !cases[i].last) {
            assert_int_equal(rc, 0);
            assert_int_equal(n, cases[i].n);
            if (n) {
                assert_string_equal(v[n - 1].value, cases[i].last);
                assert_string_equal(v[n - 1].key, n == 4 ? "3" : n == 2 ? "1" : "0");
            }
            eng_elems_free(v, n);
        } else {
            assert_int_equal(rc, BH_EREPLY);
            assert_string_equal(err.msg, cases[i].last);
        }
    }
}

static void json_reply_over_the_element_cap_is_refused(void **state)
{
    (void)state;
    size_t len = (size_t)ENG_MAX_ELEMENTS * 2 + 8;
    char *reply = bh_xmalloc(len);
    char *p = reply;
    *p++ = '[';
    for (int i = 0; i <= ENG_MAX_ELEMENTS; i++) {
        *p++ = '0';
        *p++ = i < ENG_MAX_ELEMENTS ? ',' : ']';
    }
    *p = '\0';
    struct eng_elem *v = NULL;
    size_t n = 0;
    struct bh_err err = {0};
    assert_int_equal(eng_elems_from_json(reply, "plan", &v, &n, &err), BH_ETOOBIG);
    assert_string_equal(err.msg, "for_each: the output of stage 'plan' has 10001 elements, "
                                 "more than bulkhead runs in one fan-out (10000)");
    free(reply);
}

/* ---- routes: a rerouted task holds its target endpoint's slot ---------- */

static const char reroute_json[] =
    "{ \"version\": 1, \"name\": \"engine-test\",\n"
    "  \"endpoints\": { \"box\": { \"provider\": \"ollama\", \"url\": \"http://127.0.0.1:9\",\n"
    "                            \"locality\": \"local\", \"max_concurrency\": 2 },\n"
    "                 \"far\": { \"provider\": \"ollama\", \"url\": \"http://127.0.0.1:9\",\n"
    "                          \"locality\": \"cloud\", \"clearance\": \"internal\",\n"
    "                          \"max_concurrency\": 1 } },\n"
    "  \"source\": { \"kind\": \"git\", \"label\": \"confidential\",\n"
    "              \"fields\": { \"pr.title\": \"internal\" } },\n"
    "  \"stages\": {\n"
    "    \"a\": { \"endpoint\": \"far\", \"model\": \"big\", \"prompt\": \"a.md\",\n"
    "           \"on_sensitive\": \"reroute:al\" },\n"
    "    \"al\": { \"endpoint\": \"box\", \"model\": \"small\", \"prompt\": \"a.md\" },\n"
    "    \"b\": { \"endpoint\": \"box\", \"model\": \"m\", \"prompt\": \"b.md\" },\n"
    "    \"c\": { \"endpoint\": \"box\", \"model\": \"m\", \"prompt\": \"c.md\" } } }\n";

static int reroute_setup(void **state)
{
    return setup_json(state, reroute_json);
}

/* Every item but the second is "sensitive": a goes to al instead. */
static int route_some(struct eng_task *t, size_t *via, struct bh_err *err)
{
    (void)err;
    const struct pipeline *p = eng_task_pipeline(t);
    size_t s = eng_task_stage(t);
    *via = s;
    if (p->stages[s].reroute >= 0 && strcmp(eng_task_item(t), "refs/pull/2/head") != 0)
        *via = (size_t)p->stages[s].reroute;
    return 0;
}

/* Logs "<n>/head <stage> box=<busy> far=<busy>" as the task starts; answers at once. */
static int slots_start(struct eng_task *t, struct bh_err *err)
{
    (void)err;
    const struct pipeline *p = eng_task_pipeline(t);
    size_t s = eng_task_stage(t);
    snprintf(cur->log[cur->n_log++], sizeof(cur->log[0]), "%s %s %zu %zu", eng_task_item(t) + 10,
             p->stages[s].name, t->e->busy[0], t->e->busy[1]);
    struct eng_metrics m = {.rerouted = t->via != s, .via = t->via};
    eng_task_done(t, "ok", 1, &m);
    return 0;
}

static const struct eng_kind slots_kind = {"slots", slots_start, route_some};

static void rerouted_task_holds_a_slot_of_its_target_endpoint(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    struct bh_err err = {0};
    struct eng_opts o = {.p = f->p,
                         .store = f->store,
                         .run_id = f->run_id,
                         .gate = f->gate,
                         .items = f->items,
                         .n_items = 3,
                         .kind = &slots_kind};
    f->n_log = 0;
    assert_int_equal(eng_run(&o, &sum, &err), 0);
    assert_int_equal(sum.done, 9);
    /* busy counts per endpoint (box, far) while the task starts: its own slot only. */
    assert_true(logged(f, "1/head a 1 0")); /* rerouted to al on box */
    assert_true(logged(f, "2/head a 0 1")); /* planned where its stage says */
    assert_true(logged(f, "3/head a 1 0"));
    struct store_task *t;
    size_t n;
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_string_equal(task(t, n, "refs/pull/1/head", "a")->endpoint, "box");
    assert_string_equal(task(t, n, "refs/pull/1/head", "a")->model, "small");
    assert_string_equal(task(t, n, "refs/pull/2/head", "a")->endpoint, "far");
    store_tasks_free(t, n);
}

/* ---- endpoint pools ------------------------------------------------------ */

static const char pool_json[] =
    "{ \"version\": 1, \"name\": \"engine-test\",\n"
    "  \"endpoints\": { \"box\": { \"provider\": \"ollama\", \"locality\": \"local\",\n"
    "                            \"max_concurrency\": 1, \"max_attempts\": 2,\n"
    "                            \"urls\": [\"http://127.0.0.1:9\", \"http://127.0.0.1:10\",\n"
    "                                     \"http://127.0.0.1:11\"] },\n"
    "                 \"far\": { \"provider\": \"ollama\", \"url\": \"http://127.0.0.1:12\",\n"
    "                          \"locality\": \"cloud\" } },\n"
    "  \"source\": { \"kind\": \"git\", \"label\": \"confidential\",\n"
    "              \"fields\": { \"pr.title\": \"internal\" } },\n"
    "  \"stages\": {\n"
    "    \"a\": { \"endpoint\": \"box\", \"model\": \"m\", \"prompt\": \"a.md\" },\n"
    "    \"b\": { \"endpoint\": \"box\", \"model\": \"m\", \"prompt\": \"a.md\" },\n"
    "    \"c\": { \"endpoint\": \"box\", \"model\": \"m\", \"prompt\": \"a.md\" } } }\n";

static int pool_setup(void **state)
{
    return setup_json(state, pool_json);
}

/* Hosts are endpoints 0, 1, 2 (box#1..3). A host in dead_hosts reaches no
 * server; else host 0 answers each task's second attempt (the first is
 * flaky: it keeps host 0 busy, so the others get work) and the others at
 * once. Logs "<host> <stage>" per attempt. */
static unsigned dead_hosts; /* bit h: host h reaches no server */

static int pool_start(struct eng_task *t, struct bh_err *err)
{
    (void)err;
    size_t h = eng_task_host(t);
    const struct pipeline *p = eng_task_pipeline(t);
    assert_true(h < 3); /* never the cloud endpoint */
    if (cur->n_log < BH_NELEM(cur->log))
        snprintf(cur->log[cur->n_log++], sizeof(cur->log[0]), "%zu %s", h,
                 p->stages[eng_task_stage(t)].name);
    struct bh_err e = {0};
    if (dead_hosts & (1u << h)) {
        bh_err_set(&e, BH_ENET, "connection refused");
        eng_task_retry(t, &(struct eng_retry){.retry_after_ms = 1, .unreachable = 1}, &e);
        return 0;
    }
    if (h == 0 && eng_task_attempt(t) == 1) {
        bh_err_set(&e, BH_ENET, "flaky");
        eng_task_retry(t, &(struct eng_retry){.retry_after_ms = 1}, &e);
        return 0;
    }
    eng_task_done(t, "ok", 0, NULL);
    return 0;
}

static const struct eng_kind pool_kind = {"pool", pool_start, NULL};

static char pool_said[4][400];
static size_t n_pool_said;

static void pool_say(void *ud, const char *line)
{
    (void)ud;
    if (strstr(line, "is down") && n_pool_said < BH_NELEM(pool_said))
        snprintf(pool_said[n_pool_said++], sizeof(pool_said[0]), "%s", line);
}

static int pool_run(struct fx *f, struct eng_summary *sum)
{
    struct bh_err err = {0};
    struct eng_opts o = {.p = f->p,
                         .store = f->store,
                         .run_id = f->run_id,
                         .gate = f->gate,
                         .items = f->items,
                         .n_items = 3,
                         .kind = &pool_kind,
                         .say = pool_say};
    f->n_log = 0;
    n_pool_said = 0;
    return eng_run(&o, sum, &err);
}

/* A host that reaches no server is drained into the rest of its pool: its
 * tasks end done on the other hosts, none on it, none anywhere else. */
static void pool_drains_a_dead_host_into_the_other_hosts(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    dead_hosts = 1u << 1;
    assert_int_equal(pool_run(f, &sum), 0);
    assert_int_equal(sum.done, 9);
    assert_int_equal(sum.failed, 0);
    size_t on_dead = 0;
    for (size_t i = 0; i < f->n_log; i++)
        on_dead += f->log[i][0] == '1';
    assert_true(on_dead >= 1 && on_dead <= ENG_DOWN_AFTER);
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(strcmp(t[i].endpoint, "box#1") == 0 || strcmp(t[i].endpoint, "box#3") == 0);
    store_tasks_free(t, n);
    if (on_dead == ENG_DOWN_AFTER) { /* it went down: said once, naming host and pool */
        assert_int_equal(n_pool_said, 1);
        assert_non_null(strstr(pool_said[0], "host 'box#2' of pool 'box' is down"));
        assert_non_null(strstr(pool_said[0], "never elsewhere"));
    }
}

/* Only when every host of the pool is down do its tasks fail, as on one
 * endpoint; a resume tries every host again. */
static void pool_fails_only_when_every_host_is_down(void **state)
{
    struct fx *f = *state;
    struct eng_summary sum;
    dead_hosts = 7;
    assert_int_equal(pool_run(f, &sum), 0);
    assert_int_equal(sum.done, 0);
    assert_int_equal(sum.failed, 9);
    assert_true(f->n_log <= 3 * ENG_DOWN_AFTER);
    struct store_task *t;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_tasks_list(f->store, f->run_id, &t, &n, &err), 0);
    assert_non_null(strstr(task(t, n, "refs/pull/3/head", "c")->error, "is down since"));
    store_tasks_free(t, n);
    dead_hosts = 0;
    assert_int_equal(pool_run(f, &sum), 0);
    assert_int_equal(sum.done, 9);
}

/* The split is SHA-256 of the key, first 8 bytes big-endian, modulo n: the
 * values below come from Python's hashlib, so another implementation of the
 * same rule (a script that plans shards) agrees with it. */
static void item_shard_is_the_key_hash_modulo_the_count(void **state)
{
    (void)state;
    assert_int_equal(store_shard_of("refs/pull/1/head", 4), 0);
    assert_int_equal(store_shard_of("refs/pull/1/head", 1024), 152);
    assert_int_equal(store_shard_of("refs/pull/1/head", 7), 4);
    assert_int_equal(store_shard_of("docs/a.md", 4), 2);
    assert_int_equal(store_shard_of("docs/a.md", 1024), 90);
    assert_int_equal(store_shard_of("", 1024), 20);
    assert_int_equal(store_shard_of("docs/a.md", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(engine_runs_every_task_after_its_inputs, setup, teardown),
        cmocka_unit_test(item_shard_is_the_key_hash_modulo_the_count),
        cmocka_unit_test_setup_teardown(engine_holds_fields_of_at_most_its_slots_of_items, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(engine_failure_stops_only_that_items_dependants, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(engine_refusal_withholds_dependants, setup, teardown),
        cmocka_unit_test_setup_teardown(engine_reports_each_stage_end_once_and_a_final_snapshot,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(engine_dead_endpoint_fails_the_rest_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(engine_retries_a_transient_failure_then_gives_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(fanout_runs_a_task_per_file_with_its_part_of_the_diff,
                                        fan_setup, fan_teardown),
        cmocka_unit_test_setup_teardown(fanout_output_joins_elements_under_their_keys, fan_setup,
                                        fan_teardown),
        cmocka_unit_test_setup_teardown(
            fanout_file_without_a_diff_part_fails_that_task_and_its_dependants, fan_setup,
            fan_teardown),
        cmocka_unit_test_setup_teardown(fanout_over_a_json_reply_runs_a_task_per_element, fan_setup,
                                        fan_teardown),
        cmocka_unit_test_setup_teardown(batch_reads_every_item_and_names_those_without_output,
                                        fan_setup, fan_teardown),
        cmocka_unit_test_setup_teardown(batch_without_any_input_does_not_run, fan_setup,
                                        fan_teardown),
        cmocka_unit_test_setup_teardown(reduce_folds_in_rounds_of_max_items, fan_setup,
                                        fan_teardown),
        cmocka_unit_test_setup_teardown(reduce_over_one_restricted_item_is_restricted, fan_setup,
                                        fan_teardown),
        cmocka_unit_test_setup_teardown(resume_redoes_only_unfinished_elements, fan_setup,
                                        fan_teardown),
        cmocka_unit_test_setup_teardown(resume_redoes_a_batch_that_read_a_partial_run, fan_setup,
                                        fan_teardown),
        cmocka_unit_test(files_list_gives_new_paths_statuses_and_unique_keys),
        cmocka_unit_test(json_reply_gives_elements_or_says_what_it_found),
        cmocka_unit_test(json_reply_over_the_element_cap_is_refused),
        cmocka_unit_test_setup_teardown(rerouted_task_holds_a_slot_of_its_target_endpoint,
                                        reroute_setup, teardown),
        /* Last: the stop request is process-wide and cannot be taken back. */
        cmocka_unit_test_setup_teardown(pool_drains_a_dead_host_into_the_other_hosts, pool_setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pool_fails_only_when_every_host_is_down, pool_setup,
                                        teardown),
        /* last: the stop request it makes stays for the process */
        cmocka_unit_test_setup_teardown(engine_stop_request_starts_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
