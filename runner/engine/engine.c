/* engine/engine.c — the run loop and the task state machine.
 *
 * One thread, one loop: schedule what is ready, then let egr_step (the gate's
 * network loop) drive the transfers and deliver completions, which come back
 * here through eng_task_done / eng_task_fail. Every state change is written to the store
 * before the loop goes on, inside the gate's group commit (egress.h): the
 * next egr_step commits it before any queued request leaves, so a
 * dependant's request never leaves on an output that could still be lost,
 * and a crashed run resumes where its last commit left it.
 *
 * What starts when is sched.c's: it walks the cells in stage order, then
 * item order, and keeps each local endpoint on one model while it has work.
 * A task holds a slot of the endpoint that answers it (a rerouted task, its
 * target's) from its start to its end, retries included; on a pool, of the
 * host it was placed on. A pool's host that goes down is drained: its tasks
 * go back among the pool's ready tasks and run on the other hosts, never on
 * another endpoint; only with every host down do they fail. */
#include "engine/engine.h"

#include "engine/engine_int.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/label.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_hash.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

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

long eng_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct eng_cell *eng_cell_at(struct eng *e, size_t item, size_t stage)
{
    size_t ns = e->o->p->n_stages;
    if (e->o->p->stages[stage].scope == PIPE_SCOPE_BATCH)
        return &e->cells[e->o->n_items * ns + stage];
    return &e->cells[item * ns + stage];
}

size_t eng_task_endpoint(const struct eng_task *t)
{
    if (t->placed)
        return t->host;
    return t->e->o->p->stages[t->routed ? t->via : t->stage].endpoint;
}

size_t eng_task_host(const struct eng_task *t)
{
    return eng_task_endpoint(t);
}

int eng_host_down(const struct eng *e, size_t ep)
{
    return e->down[ep].since[0] != '\0';
}

long eng_pool_live(const struct eng *e, size_t ep, long except)
{
    const struct pipe_endpoint *pe = &e->o->p->endpoints[ep];
    size_t first = pe->n_pool > 1 ? pe->pool : ep, n = pe->n_pool > 1 ? pe->n_pool : 1;
    long best = -1;
    for (size_t h = first; h < first + n; h++)
        if ((long)h != except && !eng_host_down(e, h) && (best < 0 || e->busy[h] < e->busy[best]))
            best = (long)h;
    return best;
}

void eng_fatal(struct eng *e, const struct bh_err *err)
{
    if (e->fatal)
        return;
    e->fatal = 1;
    e->fatal_err = *err;
}

const char *eng_task_name(const struct eng_task *t, char *buf, size_t size)
{
    snprintf(buf, size, "%s %s%s%s", eng_task_item(t), t->e->o->p->stages[t->stage].name,
             t->element ? " " : "", t->element ? t->element : "");
    return buf;
}

/* An end state reached in this attempt: recorded, counted, slot freed. */
static void task_end(struct eng_task *t, const struct store_result *r, int was_running)
{
    struct eng *e = t->e;
    struct bh_err err = {0};
    char name[512];
    if (store_task_finish(e->o->store, t->id, r, &err))
        eng_fatal(e, &err);
    t->state = r->state;
    eng_task_vals_release(t);
    if (was_running) {
        e->busy[eng_task_endpoint(t)]--;
        e->in_flight--;
        eng_item_unpin(e, t->item);
        eng_sched_ended(e, t);
    }
    if (r->state == STORE_DONE)
        e->sum->done++;
    else if (r->state == STORE_WITHHELD)
        e->sum->withheld++;
    else if (r->state == STORE_SKIPPED)
        e->sum->skipped++;
    else
        e->sum->failed++;
    if (e->o->verbose || (r->state != STORE_DONE && !t->quiet))
        eng_say(e, "bulkhead: %s: %s%s%s", eng_task_name(t, name, sizeof(name)),
                store_state_name(r->state), r->error ? ": " : "", r->error ? r->error : "");
}

/* Where the task ran: its own stage's endpoint and model, or for a rerouted
 * task the target's (the report must say where the data went). */
static void result_where(const struct eng_task *t, size_t stage, struct store_result *r)
{
    const struct pipeline *p = t->e->o->p;
    const struct pipe_stage *s = &p->stages[stage];
    size_t host = eng_task_endpoint(t);
    /* The host that answered, when the task was placed on this stage's pool. */
    r->endpoint = pipe_host_name(&p->endpoints[pipe_stage_on(p, stage, host) ? host : s->endpoint]);
    r->locality = egr_stage_local(t->e->o->gate, stage) ? "local" : "cloud";
    r->model = s->model;
}

void eng_task_done(struct eng_task *t, const char *output, int label, const struct eng_metrics *m)
{
    struct store_result r = {
        .state = STORE_DONE, .output = output, .label = pol_label_name(t->e->o->p, label)};
    result_where(t, m && m->rerouted ? m->via : t->stage, &r);
    t->e->down[eng_task_endpoint(t)].in_row = 0; /* a server answered */
    if (m) {
        eng_sched_load_seen(t->e, m->load_ns);
        r.prompt_tokens = m->prompt_tokens;
        r.output_tokens = m->output_tokens;
        r.load_ns = m->load_ns;
        r.total_ns = m->total_ns;
        r.answered_by = m->answered_by;
        r.cached = m->cached;
        r.note = m->note;
    }
    t->output = bh_xstrdup(output);
    t->label = label;
    eng_prog_done(t->e, t, m);
    task_end(t, &r, 1);
}

static void fail_with(struct eng_task *t, const struct bh_err *err, int was_running)
{
    struct bh_err broken;
    if (egr_audit_broken(t->e->o->gate, &broken))
        eng_fatal(t->e, &broken); /* nothing more may be decided: the run stops here */
    char msg[1024];
    struct store_result r = {.state = err->code == BH_EPOLICY ? STORE_WITHHELD
                                      : err->code == BH_ESKIP ? STORE_SKIPPED
                                                              : STORE_FAILED,
                             .error = bh_err_format(err, msg, sizeof(msg))};
    result_where(t, t->stage, &r);
    task_end(t, &r, was_running);
}

void eng_task_fail(struct eng_task *t, const struct bh_err *err)
{
    fail_with(t, err, 1);
}

void eng_task_end_unstarted(struct eng_task *t, const struct bh_err *err)
{
    fail_with(t, err, 0);
}

static void attempt(struct eng_task *t);

/* A running task leaving a host that failed goes back among its pool's
 * ready tasks (never to another endpoint), unplaced: the scheduler places
 * it again with model affinity (a host that serves its model takes it
 * without a load), as a first attempt, since the host failed, not the
 * request. Its row stays running until it starts again (a crash meanwhile
 * resumes it as pending). 0 when no other host of the pool is up (or the
 * endpoint is no pool): then it fails as on a single endpoint. */
static int moves(struct eng_task *t)
{
    struct eng *e = t->e;
    size_t from = eng_task_endpoint(t);
    if (!t->placed || eng_pool_live(e, from, (long)from) < 0 ||
        t->moves >= e->o->p->endpoints[from].n_pool)
        return 0;
    t->moves++;
    eng_sched_ended(e, t);
    e->busy[from]--;
    e->in_flight--;
    t->retry_at = 0; /* off the wait list already: the callers take it off (wait_take) */
    t->placed = 0;
    t->attempts = 0;
    t->state = STORE_PENDING;
    return 1;
}

/* The task's endpoint is down: it ends without a request, and without a line
 * of its own (the endpoint's message said it once); on a pool it moves to a
 * live host instead while there is one. */
static int fails_down(struct eng_task *t, int was_running)
{
    const struct eng_down *d = &t->e->down[eng_task_endpoint(t)];
    if (!d->since[0])
        return 0;
    if (was_running && moves(t))
        return 1;
    struct bh_err err = {0};
    bh_err_set(&err, BH_ENET,
               "not run: endpoint '%s' is down since %s UTC (%s) — start it and "
               "run the same command again to resume",
               pipe_host_name(&t->e->o->p->endpoints[eng_task_endpoint(t)]), d->since, d->why);
    t->quiet = 1;
    fail_with(t, &err, was_running);
    return 1;
}

void eng_task_start(struct eng_task *t)
{
    struct eng *e = t->e;
    struct bh_err err = {0};
    if (fails_down(t, 0))
        return;
    if (store_task_set_running(e->o->store, t->id, &err)) {
        eng_fatal(e, &err);
        return;
    }
    t->state = STORE_RUNNING;
    t->started_ms = eng_now_ms();
    e->busy[eng_task_endpoint(t)]++;
    e->in_flight++;
    eng_item_pin(e, t->item);
    eng_prog_started(e, t);
    eng_sched_started(e, t);
    attempt(t);
}

/* One attempt of a running task (the first, or a retry). */
static void attempt(struct eng_task *t)
{
    struct bh_err err = {0};
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

/* Orders waiting tasks as they were made (their store rows). */
static int by_row(const void *a, const void *b)
{
    const struct eng_task *x = *(struct eng_task *const *)a, *y = *(struct eng_task *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Takes the tasks waiting to retry at ep off the wait list, in the order
 * they were made; *n how many (free the array). */
static struct eng_task **wait_take(struct eng *e, size_t ep, size_t *n)
{
    size_t kept = 0;
    struct eng_task **taken = bh_xcalloc(e->waiting + 1, sizeof(*taken));
    *n = 0;
    for (size_t i = 0; i < e->waiting; i++) {
        struct eng_task *w = e->wait[i];
        if (eng_task_endpoint(w) == ep)
            taken[(*n)++] = w;
        else
            e->wait[kept++] = w;
    }
    e->waiting = kept;
    if (*n > 1)
        qsort(taken, *n, sizeof(*taken), by_row);
    return taken;
}

/* Puts t back on the wait list (its retry_at kept). */
static void wait_put(struct eng *e, struct eng_task *t)
{
    e->wait = bh_xgrow(e->wait, &e->cap_wait, e->waiting + 1, sizeof(*e->wait));
    e->wait[e->waiting++] = t;
}

/* A host of a pool that went down while another host of the pool is up is
 * drained: said once, and its tasks waiting to retry move to the live hosts
 * (the scheduler places no new task on it). 0 when ep is no pool or no
 * host of it is up: then its tasks fail as on a single endpoint. */
static int pool_drain(struct eng *e, size_t ep)
{
    const struct pipe_endpoint *pe = &e->o->p->endpoints[ep];
    if (pe->n_pool < 2 || eng_pool_live(e, ep, -1) < 0)
        return 0;
    size_t live = 0, moved = 0, n = 0;
    for (size_t h = pe->pool; h < pe->pool + pe->n_pool; h++)
        live += !eng_host_down(e, h);
    struct eng_task **taken = wait_take(e, ep, &n);
    for (size_t i = 0; i < n; i++) {
        long at = taken[i]->retry_at;
        taken[i]->retry_at = 0;
        if (moves(taken[i])) {
            moved++;
        } else { /* moved through every host already: it waits here, and fails when due */
            taken[i]->retry_at = at;
            wait_put(e, taken[i]);
        }
    }
    free(taken);
    eng_say(
        e,
        "bulkhead: host '%s' of pool '%s' is down: %d requests in a row reached no server "
        "(%s); drained: its tasks go to the %zu other host%s of the pool (%zu placed again now), "
        "never elsewhere — a resume tries it again",
        pipe_host_name(pe), pe->name, ENG_DOWN_AFTER, e->down[ep].why, live, live == 1 ? "" : "s",
        moved);
    return 1;
}

/* One more request that reached no server at ep: the third in a row marks it
 * down, says so once, and ends the tasks waiting to retry there (a pool's
 * host is drained into the rest of its pool instead). */
static void unreachable(struct eng *e, size_t ep, const struct bh_err *err)
{
    struct eng_down *d = &e->down[ep];
    if (d->since[0] || ++d->in_row < ENG_DOWN_AFTER)
        return;
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || !strftime(d->since, sizeof(d->since), "%H:%M:%S", &tm))
        snprintf(d->since, sizeof(d->since), "?");
    bh_str_put(d->why, sizeof(d->why), "%s", err->msg);
    if (pool_drain(e, ep))
        return;
    size_t left = 0;
    for (size_t i = 0; i < e->n_all; i++)
        left += e->all[i]->state == STORE_PENDING && eng_task_endpoint(e->all[i]) == ep;
    eng_say(
        e,
        "bulkhead: endpoint '%s' is down: %d requests in a row reached no server (%s); "
        "its tasks fail now without trying (%zu not started yet) — start it and run the same command "
        "again to resume: finished work is kept",
        pipe_host_name(&e->o->p->endpoints[ep]), ENG_DOWN_AFTER, err->msg, left);
    size_t n = 0;
    struct eng_task **taken = wait_take(e, ep, &n);
    for (size_t i = 0; i < n; i++) {
        taken[i]->retry_at = 0;
        fails_down(taken[i], 1);
    }
    free(taken);
}

void eng_task_retry(struct eng_task *t, const struct eng_retry *how, const struct bh_err *err)
{
    struct eng *e = t->e;
    size_t ep = eng_task_endpoint(t);
    const struct pipe_endpoint *ep_cfg = &e->o->p->endpoints[ep];
    int max = ep_cfg->max_attempts > 0 ? ep_cfg->max_attempts : 1;
    long retry_after_ms = how->retry_after_ms;
    if (how->unreachable)
        unreachable(e, ep, err);
    if (fails_down(t, 1))
        return;
    char name[512];
    /* Its tries on this host are used up: on a pool, another host of the
     * same pool tries it (a host killed mid-reply cuts the stream first, so
     * it may not be down yet). */
    if (t->attempts >= max && retry_after_ms <= ENG_MAX_RETRY_WAIT_MS && !stop_requested &&
        moves(t)) {
        eng_say(e,
                "bulkhead: %s: attempts at '%s' used up: placed again on another host of pool '%s'",
                eng_task_name(t, name, sizeof(name)), pipe_host_name(ep_cfg), ep_cfg->name);
        return;
    }
    if (t->attempts >= max || retry_after_ms > ENG_MAX_RETRY_WAIT_MS || stop_requested) {
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
    if (how->backpressure && e->busy[ep] > 1) {
        e->cap[ep] = e->busy[ep] - 1;
        e->cap_until[ep] = eng_now_ms() + 30000;
    }
    t->retry_at = eng_now_ms() + delay;
    wait_put(e, t);
    e->sum->retries++;
    eng_say(e, "bulkhead: %s: attempt %d failed, retrying in %.1f s: %s",
            eng_task_name(t, name, sizeof(name)), t->attempts, (double)delay / 1000, err->msg);
}

/* Starts the retries that are due, in the order the tasks were made (their
 * rows), as a walk over every task did; returns the ms until the next one
 * (-1: none). Walks the waiting tasks only. The due ones leave the list
 * before any starts: an attempt may wait again. */
static long retries_due(struct eng *e)
{
    long next = -1, now = eng_now_ms();
    size_t n_due = 0, cap_due = 0, kept = 0;
    struct eng_task **due = NULL;
    for (size_t i = 0; i < e->waiting; i++) {
        struct eng_task *t = e->wait[i];
        if (t->retry_at <= now) {
            due = bh_xgrow(due, &cap_due, n_due + 1, sizeof(*due));
            due[n_due++] = t;
            continue;
        }
        if (next < 0 || t->retry_at - now < next)
            next = t->retry_at - now;
        e->wait[kept++] = t;
    }
    e->waiting = kept;
    if (n_due > 1)
        qsort(due, n_due, sizeof(*due), by_row);
    for (size_t i = 0; i < n_due; i++) {
        due[i]->retry_at = 0;
        if (!fails_down(due[i], 1)) /* its endpoint may go down on an earlier one's attempt */
            attempt(due[i]);
    }
    free(due);
    return next;
}

size_t eng_slots(struct eng *e, size_t ep)
{
    int mc = e->o->p->endpoints[ep].max_concurrency;
    size_t slots = mc > 0 ? (size_t)mc : 1;
    if (e->cap[ep] && eng_now_ms() < e->cap_until[ep] && e->cap[ep] < slots)
        return e->cap[ep];
    e->cap[ep] = 0;
    return slots;
}

static size_t ended_count(const struct eng *e)
{
    return e->sum->done + e->sum->failed + e->sum->withheld + e->sum->skipped;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Nothing in flight: the run is over unless a pass ended tasks without
 * sending anything (their dependants may now start) or a rate limit holds
 * ready tasks back (then it sleeps until one may go). 1 to go on. */
static int idle_turn(struct eng *e, size_t ended_before, long wake)
{
    if (ended_count(e) != ended_before)
        return 1;
    if (wake < 0 || stop_requested)
        return 0;
    sleep_ms(wake < 250 ? wake : 250);
    return 1;
}

static int loop(struct eng *e, struct bh_err *err)
{
    for (;;) {
        long next = retries_due(e);
        size_t ended_before = ended_count(e);
        long wake = eng_schedule(e);
        eng_prog_tick(e, 0);
        struct bh_err broken;
        if (egr_audit_broken(e->o->gate, &broken))
            eng_fatal(e, &broken); /* an audit write failed, wherever it was */
        if (e->fatal) {
            /* Stop at once, but let each task in flight end (failed) and free
             * what it holds: nothing new starts, the gate sends nothing more. */
            egr_abort_all(e->o->gate, "abandoned: the run stopped on an earlier error");
            break;
        }
        if (e->in_flight == 0 && !eng_sched_busy(e)) {
            if (idle_turn(e, ended_before, wake))
                continue;
            break; /* nothing running and nothing could start */
        }
        if (stop_requested > 1)
            break; /* second signal: abandon what is in flight */
        if (wake >= 0 && (next < 0 || wake < next))
            next = wake;
        int wait = next >= 0 && next < 250 ? (int)next : 250;
        if (egr_in_flight(e->o->gate) == 0 && next > 0) {
            /* Only timers are waiting: sleep until the first is due, with
             * what finished so far committed (egr_step sends nothing here). */
            int rc = egr_step(e->o->gate, 0, err);
            if (rc && !egr_audit_broken(e->o->gate, NULL))
                return rc;
            sleep_ms(wait);
            continue;
        }
        int rc = egr_step(e->o->gate, wait, err);
        if (rc && !egr_audit_broken(e->o->gate, NULL))
            return rc; /* a failed commit stops the run above, letting each task end */
    }
    if (e->fatal) {
        *err = e->fatal_err;
        return err->code ? err->code : BH_EIO;
    }
    e->sum->interrupted = stop_requested != 0;
    return 0;
}

/* The loop inside the gate's group commit: task finishes and audit records
 * are synced once per network turn instead of once each; the last group is
 * committed before the run's end is written. A group that cannot be opened
 * costs only speed. */
static int group_run(struct eng *e, struct bh_err *err)
{
    struct bh_err gerr = {0};
    (void)egr_group_begin(e->o->gate, &gerr);
    int rc = loop(e, err);
    int grc = egr_group_end(e->o->gate, &gerr);
    if (rc == 0 && grc < 0) {
        *err = gerr;
        rc = grc;
    }
    return rc;
}

int eng_run(const struct eng_opts *o, struct eng_summary *sum, struct bh_err *err)
{
    struct eng e = {.o = o, .sum = sum};
    memset(sum, 0, sizeof(*sum));
    e.busy = bh_xcalloc(o->p->n_endpoints, sizeof(*e.busy));
    e.cap = bh_xcalloc(o->p->n_endpoints, sizeof(*e.cap));
    e.cap_until = bh_xcalloc(o->p->n_endpoints, sizeof(*e.cap_until));
    e.down = bh_xcalloc(o->p->n_endpoints, sizeof(*e.down));
    e.rng = (uint32_t)eng_now_ms() ^ ((uint32_t)getpid() << 16);
    e.labels = bh_xcalloc(o->n_items * o->p->source.n_fields + 1, sizeof(*e.labels));
    e.labelled = bh_xcalloc(o->n_items + 1, 1);
    e.key_labels = bh_xcalloc(o->n_items + 1, sizeof(*e.key_labels));
    eng_items_init(&e);
    int rc = pol_labeller_new(&e.lab, o->p, err);
    if (rc == 0)
        rc = eng_cells_init(&e, err);
    eng_prog_init(&e);
    if (rc == 0) {
        eng_sched_new(&e);
        rc = group_run(&e, err);
        eng_prog_tick(&e, 1);
    }
    eng_sched_free(&e);
    eng_prog_release(&e);
    sum->tasks = eng_cells_count(&e);
    eng_cells_release(&e);
    eng_items_release(&e);
    free(e.labels);
    free(e.labelled);
    free(e.key_labels);
    pol_labeller_free(e.lab);
    free(e.busy);
    free(e.cap);
    free(e.cap_until);
    free(e.down);
    free(e.wait);
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
    return t->item == ENG_BATCH ? ENG_BATCH_KEY : t->e->o->items[t->item].key;
}

const char *eng_task_element(const struct eng_task *t)
{
    return t->element;
}

const struct pol_labeller *eng_task_labeller(const struct eng_task *t)
{
    return t->e->lab;
}

struct egr_gate *eng_task_gate(const struct eng_task *t)
{
    return t->e->o->gate;
}

const struct src_item *eng_task_source(struct eng_task *t)
{
    return t->item == ENG_BATCH ? NULL : eng_item_need(t->e, t->item);
}

struct store *eng_task_cache(const struct eng_task *t)
{
    return t->e->o->no_cache ? NULL : t->e->o->store;
}
