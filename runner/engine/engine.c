/* engine/engine.c — the run loop and the task state machine.
 *
 * One thread, one loop: schedule what is ready, then let net_step drive the
 * transfers and deliver completions, which come back here through
 * eng_task_done / eng_task_fail. Every state change is written to the store
 * before the loop goes on, so a dependant never starts on an output that
 * could still be lost, and a crashed run resumes where it stopped.
 *
 * Scheduling walks stages in topological order and items in order inside a
 * stage, so tasks of one stage (one model) go out together; per-endpoint
 * slots (max_concurrency) bound what is in flight. Deeper model-aware
 * scheduling (preload, unload, overlap) builds on this walk. */
#include "engine/engine.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "egress/egress.h"
#include "net/net.h"
#include "pipeline/pipeline.h"
#include "policy/label.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

struct eng_task {
    struct eng *e;
    size_t item, stage;
    int64_t id;
    int state;             /* STORE_* */
    char *output;          /* when done */
    int label;             /* of output */
    int attempts;          /* started in this run */
    long retry_at;         /* monotonic ms of the next attempt, 0 when not waiting */
};

struct eng {
    const struct eng_opts *o;
    struct eng_summary *sum;
    struct eng_task *tasks;        /* [item * n_stages + stage] */
    size_t n_tasks;
    size_t *busy;                  /* in flight per endpoint (waiting retries included) */
    size_t *cap;                   /* lowered slots after back-pressure, 0: none */
    long *cap_until;               /* monotonic ms when the lowered cap ends */
    size_t in_flight;
    size_t waiting;                /* tasks waiting for a retry */
    uint32_t rng;                  /* jitter */
    size_t finished;               /* tasks that reached an end state in this attempt */
    int fatal;                     /* the store failed: stop scheduling */
    struct bh_err fatal_err;
    struct pol_labeller *lab;      /* the pipeline's rules and detectors */
    struct pol_value *labels;      /* [item * n_fields]: source fields, labelled on first use */
    unsigned char *labelled;       /* per item: its fields are labelled */
};

/* A task of a standby stage (a reroute target): it never runs on its own,
 * so it is neither stored nor counted; dependants do not wait for it. */
#define ENG_STANDBY 100

static volatile sig_atomic_t stop_requested;

void eng_request_stop(void)
{
    if (stop_requested < 2)
        stop_requested++;
}

int eng_stop_requested(void)
{
    return stop_requested;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct eng_task *task_at(struct eng *e, size_t item, size_t stage)
{
    return &e->tasks[item * e->o->p->n_stages + stage];
}

/* Creates (or finds) every task in the store. */
static int tasks_put(struct eng *e, struct bh_err *err)
{
    const struct eng_opts *o = e->o;
    /* One transaction for all rows: one disk sync, not one per task. */
    int rc = store_batch_begin(o->store, err);
    for (size_t i = 0; rc == 0 && i < o->n_items; i++) {
        int64_t item_id;
        rc = store_item_put(o->store, o->run_id, o->items[i].key, &item_id, err);
        for (size_t s = 0; rc == 0 && s < o->p->n_stages; s++) {
            struct eng_task *t = task_at(e, i, s);
            *t = (struct eng_task){ .e = e, .item = i, .stage = s, .label = -1 };
            if (o->p->stages[s].standby) {
                t->state = ENG_STANDBY;
                continue;
            }
            rc = store_task_put(o->store, o->run_id, item_id, o->p->stages[s].name, &t->id, err);
        }
    }
    if (rc == 0)
        rc = store_batch_commit(o->store, err);
    return rc; /* on error the batch is rolled back when the store is freed */
}

static int by_id(const void *a, const void *b)
{
    const struct eng_task *x = *(struct eng_task *const *)a, *y = *(struct eng_task *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Takes states and outputs left by an earlier attempt of this run. */
static int tasks_resume(struct eng *e, struct bh_err *err)
{
    struct store_task *st = NULL;
    size_t n = 0;
    int rc = store_tasks_list(e->o->store, e->o->run_id, &st, &n, err);
    if (rc)
        return rc;
    struct eng_task **idx = bh_xcalloc(e->n_tasks, sizeof(*idx));
    for (size_t i = 0; i < e->n_tasks; i++)
        idx[i] = &e->tasks[i];
    qsort(idx, e->n_tasks, sizeof(*idx), by_id);
    for (size_t i = 0; i < n; i++) {
        struct eng_task key = { .id = st[i].id }, *kp = &key;
        struct eng_task **hit = bsearch(&kp, idx, e->n_tasks, sizeof(*idx), by_id);
        if (!hit || st[i].state != STORE_DONE)
            continue; /* failed and withheld tasks are tried again */
        (*hit)->state = STORE_DONE;
        (*hit)->output = bh_xstrdup(st[i].output ? st[i].output : "");
        (*hit)->label = pipe_label_find(e->o->p, st[i].label ? st[i].label : "");
        e->sum->reused++;
    }
    free(idx);
    store_tasks_free(st, n);
    return 0;
}

/* An end state reached in this attempt: recorded, counted, slot freed. */
static void task_end(struct eng_task *t, const struct store_result *r, int was_running)
{
    struct eng *e = t->e;
    const struct pipe_stage *s = &e->o->p->stages[t->stage];
    struct bh_err err = { 0 };
    if (store_task_finish(e->o->store, t->id, r, &err) && !e->fatal) {
        e->fatal = 1;
        e->fatal_err = err;
    }
    t->state = r->state;
    if (was_running) {
        e->busy[s->endpoint]--;
        e->in_flight--;
    }
    e->finished++;
    if (r->state == STORE_DONE)
        e->sum->done++;
    else if (r->state == STORE_WITHHELD)
        e->sum->withheld++;
    else
        e->sum->failed++;
    if (e->o->verbose || r->state != STORE_DONE)
        fprintf(stderr, "bulkhead: %s %s: %s%s%s\n", e->o->items[t->item].key, s->name,
                store_state_name(r->state), r->error ? ": " : "", r->error ? r->error : "");
}

/* Where the task ran: its own stage's endpoint and model, or for a rerouted
 * task the target's (the report must say where the data went). */
static void result_where(const struct eng_task *t, size_t stage, struct store_result *r)
{
    const struct pipeline *p = t->e->o->p;
    const struct pipe_stage *s = &p->stages[stage];
    r->endpoint = p->endpoints[s->endpoint].name;
    r->locality = egr_stage_local(t->e->o->gate, stage) ? "local" : "cloud";
    r->model = s->model;
}

void eng_task_done(struct eng_task *t, const char *output, int label,
                   const struct eng_metrics *m)
{
    struct store_result r = { .state = STORE_DONE, .output = output,
                              .label = pol_label_name(t->e->o->p, label) };
    result_where(t, m && m->rerouted ? m->via : t->stage, &r);
    if (m) {
        r.prompt_tokens = m->prompt_tokens;
        r.output_tokens = m->output_tokens;
        r.load_ns = m->load_ns;
        r.total_ns = m->total_ns;
        r.answered_by = m->answered_by;
    }
    t->output = bh_xstrdup(output);
    t->label = label;
    task_end(t, &r, 1);
}

static void fail_with(struct eng_task *t, const struct bh_err *err, int was_running)
{
    char msg[1024];
    struct store_result r = { .state = err->code == BH_EPOLICY ? STORE_WITHHELD : STORE_FAILED,
                              .error = bh_err_format(err, msg, sizeof(msg)) };
    result_where(t, t->stage, &r);
    task_end(t, &r, was_running);
}

void eng_task_fail(struct eng_task *t, const struct bh_err *err)
{
    fail_with(t, err, 1);
}

/* A dependency that ended without output decides this task's fate. */
static int deps_blocked(struct eng_task *t, int *ready)
{
    const struct pipe_stage *s = &t->e->o->p->stages[t->stage];
    *ready = 1;
    for (size_t k = 0; k < s->n_deps; k++) {
        struct eng_task *d = task_at(t->e, t->item, s->deps[k]);
        if (d->state == ENG_STANDBY)
            continue;
        if (d->state == STORE_FAILED || d->state == STORE_WITHHELD) {
            struct bh_err err = { 0 };
            bh_err_set(&err, d->state == STORE_WITHHELD ? BH_EPOLICY : BH_EINVAL,
                       "not run: stage '%s' %s for this item",
                       t->e->o->p->stages[d->stage].name, store_state_name(d->state));
            fail_with(t, &err, 0);
            return 1;
        }
        if (d->state != STORE_DONE)
            *ready = 0;
    }
    return 0;
}

static void attempt(struct eng_task *t);

static void task_start(struct eng_task *t)
{
    struct eng *e = t->e;
    const struct pipe_stage *s = &e->o->p->stages[t->stage];
    struct bh_err err = { 0 };
    if (store_task_set_running(e->o->store, t->id, &err)) {
        e->fatal = 1;
        e->fatal_err = err;
        return;
    }
    t->state = STORE_RUNNING;
    e->busy[s->endpoint]++;
    e->in_flight++;
    attempt(t);
}

/* One attempt of a running task (the first, or a retry). */
static void attempt(struct eng_task *t)
{
    struct bh_err err = { 0 };
    t->attempts++;
    t->retry_at = 0;
    if (t->e->o->kind->start(t, &err))
        eng_task_fail(t, &err);
}

int eng_task_attempt(const struct eng_task *t)
{
    return t->attempts;
}

static uint32_t jitter(struct eng *e)
{
    uint32_t x = e->rng ? e->rng : 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return e->rng = x;
}

void eng_task_retry(struct eng_task *t, long retry_after_ms, int backpressure,
                    const struct bh_err *err)
{
    struct eng *e = t->e;
    const struct pipe_endpoint *ep_cfg = &e->o->p->endpoints[e->o->p->stages[t->stage].endpoint];
    int max = ep_cfg->max_attempts > 0 ? ep_cfg->max_attempts : 1;
    if (t->attempts >= max || retry_after_ms > ENG_MAX_RETRY_WAIT_MS ||
        stop_requested) {
        struct bh_err final = *err;
        if (retry_after_ms > ENG_MAX_RETRY_WAIT_MS)
            bh_err_prefix(&final, "the server asks to wait %ld s, longer than bulkhead waits: ",
                          retry_after_ms / 1000);
        else if (t->attempts > 1)
            bh_err_prefix(&final, "after %d attempts: ", t->attempts);
        eng_task_fail(t, &final);
        return;
    }
    /* 0.5 s, 1 s, 2 s ... up to 30 s, each between half and all of it. */
    long base = 500L << (t->attempts - 1 < 6 ? t->attempts - 1 : 6);
    long delay = base / 2 + (long)(jitter(e) % (uint32_t)(base / 2 + 1));
    if (delay > 30000)
        delay = 30000;
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    size_t ep = e->o->p->stages[t->stage].endpoint;
    if (backpressure && e->busy[ep] > 1) {
        e->cap[ep] = e->busy[ep] - 1;
        e->cap_until[ep] = now_ms() + 30000;
    }
    t->retry_at = now_ms() + delay;
    e->waiting++;
    e->sum->retries++;
    fprintf(stderr, "bulkhead: %s %s: attempt %d failed, retrying in %.1f s: %s\n",
            e->o->items[t->item].key, e->o->p->stages[t->stage].name, t->attempts,
            (double)delay / 1000, err->msg);
}

/* Starts the retries that are due; returns the ms until the next one (-1: none). */
static long retries_due(struct eng *e)
{
    long next = -1, now = now_ms();
    for (size_t i = 0; e->waiting && i < e->n_tasks; i++) {
        struct eng_task *t = &e->tasks[i];
        if (!t->retry_at)
            continue;
        if (t->retry_at <= now) {
            e->waiting--;
            attempt(t);
        } else if (next < 0 || t->retry_at - now < next) {
            next = t->retry_at - now;
        }
    }
    return next;
}

/* The endpoint's slots: its max_concurrency, lowered for a while after the
 * server pushed back. */
static size_t slots_of(struct eng *e, size_t ep)
{
    int mc = e->o->p->endpoints[ep].max_concurrency;
    size_t slots = mc > 0 ? (size_t)mc : 1;
    if (e->cap[ep] && now_ms() < e->cap_until[ep] && e->cap[ep] < slots)
        return e->cap[ep];
    e->cap[ep] = 0;
    return slots;
}

/* Starts every ready task that has a free slot; ends tasks whose inputs failed. */
static void schedule(struct eng *e)
{
    const struct pipeline *p = e->o->p;
    for (size_t k = 0; k < p->n_stages && !e->fatal && !stop_requested; k++) {
        size_t s = p->order[k];
        size_t ep = p->stages[s].endpoint;
        size_t slots = slots_of(e, ep);
        if (p->stages[s].standby)
            continue;
        for (size_t i = 0; i < e->o->n_items && !e->fatal; i++) {
            struct eng_task *t = task_at(e, i, s);
            int ready;
            if (t->state != STORE_PENDING || deps_blocked(t, &ready) || !ready)
                continue;
            if (e->busy[ep] >= slots)
                break;
            task_start(t);
        }
    }
}

static int loop(struct eng *e, struct bh_err *err)
{
    for (;;) {
        long next = retries_due(e);
        schedule(e);
        if (e->fatal)
            break;
        if (e->in_flight == 0)
            break; /* nothing running and nothing could start */
        if (stop_requested > 1)
            break; /* second signal: abandon what is in flight */
        int wait = next >= 0 && next < 250 ? (int)next : 250;
        if (net_in_flight(e->o->net) == 0 && next > 0) {
            /* Only retries are waiting: sleep until the first is due. */
            struct timespec ts = { wait / 1000, (long)(wait % 1000) * 1000000 };
            nanosleep(&ts, NULL);
            continue;
        }
        int rc = net_step(e->o->net, wait, err);
        if (rc)
            return rc;
    }
    if (e->fatal) {
        *err = e->fatal_err;
        return err->code ? err->code : BH_EIO;
    }
    e->sum->interrupted = stop_requested != 0;
    return 0;
}

int eng_run(const struct eng_opts *o, struct eng_summary *sum, struct bh_err *err)
{
    struct eng e = { .o = o, .sum = sum };
    memset(sum, 0, sizeof(*sum));
    e.n_tasks = o->n_items * o->p->n_stages;
    sum->tasks = e.n_tasks;
    for (size_t s = 0; s < o->p->n_stages; s++)
        sum->tasks -= o->p->stages[s].standby ? o->n_items : 0;
    e.tasks = bh_xcalloc(e.n_tasks, sizeof(*e.tasks));
    e.busy = bh_xcalloc(o->p->n_endpoints, sizeof(*e.busy));
    e.cap = bh_xcalloc(o->p->n_endpoints, sizeof(*e.cap));
    e.cap_until = bh_xcalloc(o->p->n_endpoints, sizeof(*e.cap_until));
    e.rng = (uint32_t)now_ms() ^ ((uint32_t)getpid() << 16);
    e.labels = bh_xcalloc(o->n_items * o->p->source.n_fields + 1, sizeof(*e.labels));
    e.labelled = bh_xcalloc(o->n_items + 1, 1);
    int rc = pol_labeller_new(&e.lab, o->p, err);
    if (rc == 0)
        rc = tasks_put(&e, err);
    if (rc == 0)
        rc = tasks_resume(&e, err);
    if (rc == 0)
        rc = loop(&e, err);
    for (size_t i = 0; i < e.n_tasks; i++)
        free(e.tasks[i].output);
    free(e.tasks);
    for (size_t i = 0; i < o->n_items * o->p->source.n_fields; i++)
        pol_value_release(&e.labels[i]);
    free(e.labels);
    free(e.labelled);
    pol_labeller_free(e.lab);
    free(e.busy);
    free(e.cap);
    free(e.cap_until);
    return rc;
}

const struct pipeline *eng_task_pipeline(const struct eng_task *t)
{
    return t->e->o->p;
}

size_t eng_task_stage(const struct eng_task *t)
{
    return t->stage;
}

const char *eng_task_item(const struct eng_task *t)
{
    return t->e->o->items[t->item].key;
}

const struct pol_labeller *eng_task_labeller(const struct eng_task *t)
{
    return t->e->lab;
}

struct egr_gate *eng_task_gate(const struct eng_task *t)
{
    return t->e->o->gate;
}

/* The label of a source field of an item with its rules and detectors
 * applied, computed once per item (a scan costs as much as the value). */
static int field_label(struct eng *e, size_t item, const char *field)
{
    const struct pipeline *p = e->o->p;
    struct pol_value *v = &e->labels[item * p->source.n_fields];
    if (!e->labelled[item]) {
        for (size_t i = 0; i < p->source.n_fields; i++) {
            const struct src_field *f = src_item_find(&e->o->items[item], p->source.fields[i]);
            struct src_field none = { p->source.fields[i], NULL, 0, "the source gave no value",
                                      NULL, 0 };
            pol_label_field(e->lab, f ? f : &none, &v[i]);
        }
        e->labelled[item] = 1;
    }
    for (size_t i = 0; i < p->source.n_fields; i++)
        if (strcmp(p->source.fields[i], field) == 0)
            return v[i].label;
    return -1; /* unknown means top */
}

int eng_task_lookup(void *task, const char *field, const char **value, int *label,
                    struct bh_err *err)
{
    struct eng_task *t = task;
    const struct pipeline *p = t->e->o->p;
    const struct src_field *f = src_item_find(&t->e->o->items[t->item], field);
    if (f && !f->value)
        return bh_err_set(err, BH_ETOOBIG, "%s", f->error ? f->error : "the source has no value");
    if (f) {
        *value = f->value;
        *label = field_label(t->e, t->item, field);
        return 0;
    }
    const char *dot = strrchr(field, '.');
    if (!dot || strcmp(dot, ".output") != 0)
        return bh_err_set(err, BH_ENOTFOUND, "the source has no such field");
    for (size_t s = 0; s < p->n_stages; s++) {
        size_t n = strlen(p->stages[s].name);
        if ((size_t)(dot - field) != n || strncmp(field, p->stages[s].name, n) != 0)
            continue;
        struct eng_task *d = task_at(t->e, t->item, s);
        if (d->state != STORE_DONE)
            return bh_err_set(err, BH_EINTERNAL, "stage '%s' has not finished", p->stages[s].name);
        *value = d->output;
        *label = d->label;
        return 0;
    }
    return bh_err_set(err, BH_ENOTFOUND, "no stage of that name");
}
