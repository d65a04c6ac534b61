/* engine/sched.c — what starts when: the scheduler on the run's one loop.
 *
 * Each pass walks the cells in stage order, then item order (so a task's
 * inputs are settled before it is looked at), and lists the ready tasks per
 * endpoint. It walks only the cells still pending (a per-stage list that
 * drops a cell once it has ended), so its cost follows the work left. A ready task is routed once:
 * the stage kind says which stage's endpoint and model will answer it (its own, or an on_sensitive
 * reroute target), and the task holds a slot of that endpoint.
 *
 * Tasks are grouped by (endpoint, model, num_ctx): a different num_ctx makes
 * Ollama load the model again, so it is another group. A cloud endpoint, or
 * one that serves a single group, simply gets its ready tasks in walk order
 * up to its slots (and its max_requests_per_minute). A local Ollama endpoint
 * that serves several groups pays a model load at every switch, so it keeps
 * serving the group it switched to ("cur") while that group has ready work
 * or work that will become ready without another group of the endpoint
 * running first ("soon": its inputs wait on other endpoints only). Only then
 * does it switch, to a group passed over at ENG_SCHED_MAX_PASSES switches
 * first (no stage starves), else to a loaded one, else to the one whose tasks
 * come first in the walk. Waiting for soon work is bounded: when the
 * endpoint has been idle for twice the longest load seen while another group
 * has ready work, it switches. A group whose model the server forwards to
 * the cloud loads nothing there: its tasks take free slots at any time.
 *
 * Residency: learnt from /api/ps at the start (or max_loaded_models), then
 * kept from what the scheduler itself does. Before loading a model into a
 * full server it unloads (keep_alive 0) a loaded model that no remaining
 * task of the run needs, and waits for that; when the group it serves has
 * nothing left to start and the server has room, it preloads the next group
 * (empty prompt, the stage's keep_alive and num_ctx) while the last requests
 * run. Every such request goes through the gate and is audited.
 *
 * A pool (a local endpoint with several hosts, pipeline.h) has a group per
 * host for each of its models, whose residency and running tasks are that
 * host's; ready, soon and later are counted once, on the group of the first
 * host (home). Its ready tasks are listed unplaced and each is placed on a
 * host as it starts (serve_pool): a host keeps the model it serves while
 * that has ready work, else takes one it holds, else one no host serves,
 * else a share of the model with the most work left when the work saved is
 * worth a load (worth_spreading); it preloads what it will take next. Down
 * hosts get nothing; a task that leaves one comes back unplaced (engine.c).
 *
 * Trade-off taken: "soon" counts cells, not tasks, and a task of a stage
 * that may reroute counts for its own stage's group until it is ready (its
 * route depends on its inputs' labels). Both only make a switch come
 * earlier or later, never wrong. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "engine/engine_int.h"
#include "pipeline/pipeline.h"
#include "providers/manage.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

/* Switches a group with ready tasks may be passed over before it is served. */
#define ENG_SCHED_MAX_PASSES 2
/* The least idle time before leaving a group that still has soon work. */
#define ENG_SCHED_IDLE_MIN_MS 500L
#define PS_MAX ((size_t)1 << 20)

struct group {
    size_t ep;
    const char *model; /* borrowed from the pipeline */
    long num_ctx;
    const char *keep_alive;    /* the first of its stages' that sets one, or NULL */
    uint64_t bit;              /* its bit in a cell's need (groups past 63 share one) */
    uint64_t others;           /* the bits of the other groups on its endpoint */
    size_t ready, soon, later; /* this pass */
    size_t running;            /* kept up to date by started/ended */
    size_t first;              /* this pass: walk position of its first ready task */
    unsigned passed;           /* switches that passed it over while it had ready tasks */
    int loads;                 /* its model is loaded on the endpoint's machine (not a cloud
                                  model the server forwards): the model policy applies */
    int resident;              /* believed loaded on its endpoint */
    uint64_t used;             /* when it was last loaded or served, for the LRU */
    size_t home;               /* on a pool: the group on the pool's first host, which counts
                                  ready, soon and later for every host (itself there) */
    size_t hosts_at;           /* a home group on a pool: the group of host 1 (hosts 1.. follow) */
    size_t cursor;             /* serve_pool: where its next ready task may be in the list */
};

struct ep_state {
    int policy; /* local ollama, several groups: model-aware */
    int max_loaded;
    long cur;                /* the group served, -1 before the first */
    size_t unloading;        /* unloads in flight: loads wait for them */
    size_t manage;           /* preloads, unloads and ps in flight */
    long idle_since;         /* ms when it last ran nothing, 0 while busy */
    struct eng_task **ready; /* this pass, in walk order */
    size_t n_ready, cap_ready;
    long *starts; /* max_requests_per_minute: a ring of start times */
    size_t rpm, n_starts, head;
    size_t head_nl; /* serve_pool: where the next task of a model that loads nowhere may be */
    size_t loads;   /* models the scheduler had it load (a preload, or a request's load) */
};

struct call;

struct eng_sched {
    struct group *groups;
    size_t n_groups;
    size_t *group_of;     /* per stage */
    struct ep_state *eps; /* per endpoint */
    uint64_t *need;       /* per cell: the groups that must run before it is ready */
    size_t **pending;     /* per stage of item scope: the items whose cell is still
                             pending, in item order (an ended cell never is again) */
    size_t *n_pending;
    uint64_t tick;
    long load_ms;     /* the longest load a reply reported */
    long task_ms_sum; /* how long finished tasks ran, for a pool's spread estimate */
    size_t n_timed;
    struct call *calls; /* model management in flight */
};

/* A model-management request in flight. It outlives the run when the run
 * ends first (s is then NULL) and frees itself when its reply comes. */
struct call {
    struct eng_sched *s;
    struct eng *e;
    size_t ep;
    long group; /* -1 for ps */
    int kind;
    struct prov_doc *doc; /* ps: the reply */
    struct call *prev, *next;
};

/* ---- groups ----------------------------------------------------------- */

static long group_find(const struct eng_sched *s, size_t ep, const char *model, long num_ctx)
{
    for (size_t g = 0; g < s->n_groups; g++)
        if (s->groups[g].ep == ep && s->groups[g].num_ctx == num_ctx &&
            strcmp(s->groups[g].model, model) == 0)
            return (long)g;
    return -1;
}

/* On a pool, each home group gets a group per other host of the pool, with
 * the home's bit and model: residency and running tasks are per host. */
static void host_groups_make(struct eng_sched *s, const struct pipeline *p)
{
    size_t n_home = s->n_groups;
    for (size_t g = 0; g < n_home; g++) {
        const struct pipe_endpoint *pe = &p->endpoints[s->groups[g].ep];
        s->groups[g].home = g;
        if (pe->n_pool < 2)
            continue;
        s->groups[g].hosts_at = s->n_groups;
        for (size_t h = 1; h < pe->n_pool; h++) {
            struct group *c = &s->groups[s->n_groups++];
            *c = s->groups[g];
            c->ep = pe->pool + h;
            c->home = g;
            c->hosts_at = 0;
        }
    }
}

static void groups_make(struct eng_sched *s, const struct pipeline *p)
{
    size_t hosts = 1;
    for (size_t i = 0; i < p->n_endpoints; i++)
        hosts = p->endpoints[i].n_pool > hosts ? p->endpoints[i].n_pool : hosts;
    s->groups = bh_xcalloc(p->n_stages * hosts + 1, sizeof(*s->groups));
    s->group_of = bh_xcalloc(p->n_stages + 1, sizeof(*s->group_of));
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *st = &p->stages[i];
        long g = group_find(s, st->endpoint, st->model, st->num_ctx);
        if (g < 0) {
            g = (long)s->n_groups++;
            s->groups[g] = (struct group){.ep = st->endpoint,
                                          .model = st->model,
                                          .num_ctx = st->num_ctx,
                                          .bit = (uint64_t)1 << (g < 63 ? g : 63)};
        }
        if (!s->groups[g].keep_alive)
            s->groups[g].keep_alive = st->keep_alive;
        s->group_of[i] = (size_t)g;
    }
    for (size_t g = 0; g < s->n_groups; g++)
        for (size_t h = 0; h < s->n_groups; h++)
            if (h != g && s->groups[h].ep == s->groups[g].ep)
                s->groups[g].others |= s->groups[h].bit & ~s->groups[g].bit;
    host_groups_make(s, p);
}

/* The group of a home group on host ep of its pool. */
static size_t group_on(const struct eng_sched *s, size_t g, size_t ep)
{
    const struct group *home = &s->groups[g];
    return ep == home->ep ? g : home->hosts_at + (ep - home->ep) - 1;
}

static size_t group_of_task(const struct eng_sched *s, const struct eng_task *t)
{
    size_t g = s->group_of[t->routed ? t->via : t->stage];
    return t->placed ? group_on(s, g, t->host) : g;
}

/* The groups of ep whose model loads there. */
static size_t groups_on(const struct eng_sched *s, size_t ep)
{
    size_t n = 0;
    for (size_t g = 0; g < s->n_groups; g++)
        n += s->groups[g].ep == ep && s->groups[g].loads;
    return n;
}

/* Some task of the run still needs g's model (on a pool: on any host). */
static int needed(const struct eng_sched *s, const struct group *g)
{
    const struct group *h = &s->groups[g->home];
    return h->ready || g->running || h->soon || h->later;
}

static size_t loaded_on(const struct eng_sched *s, size_t ep)
{
    size_t n = 0;
    for (size_t g = 0; g < s->n_groups; g++)
        n += s->groups[g].ep == ep && s->groups[g].resident;
    return n;
}

/* Believed loaded from now on; past max_loaded the server evicts, and the
 * least recently used is what it would evict. */
static void mark_loaded(struct eng_sched *s, size_t g)
{
    struct group *gr = &s->groups[g];
    s->eps[gr->ep].loads += !gr->resident;
    gr->resident = 1;
    gr->used = ++s->tick;
    while (loaded_on(s, gr->ep) > (size_t)s->eps[gr->ep].max_loaded) {
        struct group *lru = NULL;
        for (size_t h = 0; h < s->n_groups; h++) {
            struct group *c = &s->groups[h];
            if (c->ep == gr->ep && c->resident && c != gr && (!lru || c->used < lru->used))
                lru = c;
        }
        if (!lru)
            break;
        lru->resident = 0;
    }
}

/* ---- model management ------------------------------------------------ */

static void call_unlink(struct call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->s)
        c->s->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static int call_data(void *ud, const char *data, size_t len)
{
    struct call *c = ud;
    struct bh_err err = {0};
    return c->doc && prov_doc_feed(c->doc, data, len, &err) ? 1 : 0;
}

/* One model /api/ps listed as loaded on ep: the group it is, if any, is resident. */
static void ps_learn_one(struct eng_sched *s, size_t ep, const char *name, int64_t ctx)
{
    for (size_t g = 0; g < s->n_groups; g++) {
        struct group *gr = &s->groups[g];
        if (gr->ep == ep && prov_model_name_eq(gr->model, name) &&
            (gr->num_ctx == 0 || gr->num_ctx == ctx))
            gr->resident = 1;
    }
}

/* Unless the pipeline says, the server holds as many models as it had
 * loaded (local ones), at least 1. */
static void ps_learn_count(struct eng_sched *s, const struct pipeline *p, size_t ep, size_t local)
{
    if (p->endpoints[ep].max_loaded_models == 0)
        s->eps[ep].max_loaded = local > 1 ? (int)(local < 64 ? local : 64) : 1;
}

/* /api/ps: the loaded models that are groups of the endpoint, and how many
 * the server holds. */
static void ps_learn(struct eng_sched *s, const struct pipeline *p, size_t ep,
                     const struct prov_models *m)
{
    size_t local = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (prov_model_is_remote(&m->v[i]))
            continue;
        local++;
        ps_learn_one(s, ep, m->v[i].name, m->v[i].context_length);
    }
    ps_learn_count(s, p, ep, local);
}

/* The same from what the pre-run probe asked (the gate keeps it): 1 when it
 * did, so the endpoint is not asked again. */
static int ps_known(struct eng_sched *s, const struct eng *e, size_t ep)
{
    const struct egr_loaded *v = NULL;
    size_t n = 0, local = 0;
    if (!egr_endpoint_loaded(e->o->gate, ep, &v, &n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].remote)
            continue;
        local++;
        ps_learn_one(s, ep, v[i].name, v[i].context_length);
    }
    ps_learn_count(s, e->o->p, ep, local);
    return 1;
}

static const char *const kind_what[] = {
    [EGR_MANAGE_PS] = "list loaded models",
    [EGR_MANAGE_PRELOAD] = "preload",
    [EGR_MANAGE_UNLOAD] = "unload",
};

/* Not fatal: the tasks' own requests load their model, or fail and say why. */
static void call_warn(const struct call *c, const struct egr_result *r, const struct bh_err *err)
{
    char model[300] = "", why[600];
    if (c->group >= 0)
        snprintf(model, sizeof(model), " of model '%s'", c->s->groups[c->group].model);
    if (r->error[0] || err->msg[0])
        snprintf(why, sizeof(why), "%s", r->error[0] ? r->error : err->msg);
    else
        snprintf(why, sizeof(why), "HTTP %ld", r->status);
    /* Through the progress display, which would otherwise draw over it. */
    eng_say(c->e,
            "bulkhead: warning: endpoint '%s': %s%s failed: %s (the tasks go on; "
            "their requests load what they need)",
            pipe_host_name(&c->e->o->p->endpoints[c->ep]), kind_what[c->kind], model, why);
}

static void call_settle(struct call *c, const struct egr_result *r)
{
    struct eng_sched *s = c->s;
    struct ep_state *es = &s->eps[c->ep];
    struct prov_models m = {0};
    struct bh_err err = {0};
    es->manage--;
    if (c->kind == EGR_MANAGE_UNLOAD)
        es->unloading--;
    int rc = r->code ? r->code : r->status / 100 != 2 ? BH_EREPLY : 0;
    if (c->kind == EGR_MANAGE_PS && rc == 0 &&
        (rc = prov_models_finish(c->doc, r->status, &m, &err)) == 0)
        ps_learn(s, c->e->o->p, c->ep, &m);
    prov_models_release(&m);
    if (rc == 0)
        return;
    if (c->kind == EGR_MANAGE_PRELOAD)
        s->groups[c->group].resident = 0;
    call_warn(c, r, &err);
}

static void call_done(void *ud, const struct egr_result *r)
{
    struct call *c = ud;
    if (c->s) {
        call_settle(c, r);
        call_unlink(c);
    }
    prov_doc_free(c->doc);
    free(c);
}

/* Sends one request through the gate; 0 when it went. */
static int manage_send(struct eng *e, size_t ep, long group, int kind)
{
    struct eng_sched *s = e->sched;
    struct call *c = bh_xcalloc(1, sizeof(*c));
    *c = (struct call){.s = s,
                       .e = e,
                       .ep = ep,
                       .group = group,
                       .kind = kind,
                       .doc = kind == EGR_MANAGE_PS ? prov_doc_new(PS_MAX) : NULL};
    const struct group *gr = group >= 0 ? &s->groups[group] : NULL;
    struct egr_manage_req r = {.endpoint = ep,
                               .kind = kind,
                               .model = gr ? gr->model : NULL,
                               .keep_alive = gr ? gr->keep_alive : NULL,
                               .num_ctx = gr ? gr->num_ctx : 0,
                               .max_reply = PS_MAX,
                               .on_data = call_data,
                               .on_done = call_done,
                               .ud = c};
    struct bh_err err = {0};
    if (egr_send_manage(e->o->gate, &r, &err)) {
        eng_say(e, "bulkhead: warning: %s", err.msg);
        prov_doc_free(c->doc);
        free(c);
        return -1;
    }
    c->next = s->calls;
    if (s->calls)
        s->calls->prev = c;
    s->calls = c;
    s->eps[ep].manage++;
    s->eps[ep].unloading += kind == EGR_MANAGE_UNLOAD;
    return 0;
}

/* A loaded group of ep that no remaining task needs, least recent first. */
static long idle_victim(const struct eng_sched *s, size_t ep, size_t keep)
{
    long v = -1;
    for (size_t g = 0; g < s->n_groups; g++) {
        const struct group *c = &s->groups[g];
        if (c->ep == ep && g != keep && c->resident && !needed(s, c) &&
            (v < 0 || c->used < s->groups[v].used))
            v = (long)g;
    }
    return v;
}

/* Before g is loaded into a full server: 1 when an unload was sent (g waits
 * for it), 0 when g may load (room, or the server evicts on its own). */
static int make_room(struct eng *e, size_t g)
{
    struct eng_sched *s = e->sched;
    size_t ep = s->groups[g].ep;
    if (loaded_on(s, ep) < (size_t)s->eps[ep].max_loaded)
        return 0;
    long v = idle_victim(s, ep, g);
    if (v < 0)
        return 0;
    s->groups[v].resident = 0;
    return manage_send(e, ep, v, EGR_MANAGE_UNLOAD) == 0;
}

/* ---- the walk: ready tasks, and what each group still has coming ----- */

static int ended(int state)
{
    return state != STORE_PENDING && state != STORE_RUNNING;
}

/* The groups an unfinished cell's own tasks run in. */
static uint64_t cell_bits(const struct eng_sched *s, const struct eng_cell *c)
{
    if (!c->made || c->n_tasks == 0)
        return s->groups[s->group_of[c->stage]].bit;
    uint64_t b = 0;
    for (size_t i = 0; i < c->n_tasks; i++)
        if (!ended(c->tasks[i]->state))
            b |= s->groups[group_of_task(s, c->tasks[i])].bit;
    return b;
}

/* What must run before c is ready: the groups of its unfinished inputs and
 * of what they wait for (inputs come earlier in the walk). */
static void cell_need(struct eng *e, struct eng_cell *c)
{
    struct eng_sched *s = e->sched;
    const struct pipeline *p = e->o->p;
    const struct pipe_stage *st = &p->stages[c->stage];
    int batch = c->item == ENG_BATCH;
    uint64_t need = 0;
    for (size_t k = 0; k < st->n_deps; k++) {
        const struct pipe_stage *d = &p->stages[st->deps[k]];
        size_t n = batch && d->scope == PIPE_SCOPE_ITEM ? e->o->n_items : 1;
        for (size_t i = 0; i < n && !d->standby; i++) {
            const struct eng_cell *dc = eng_cell_at(e, batch ? i : c->item, st->deps[k]);
            if (dc->state == STORE_PENDING)
                need |= cell_bits(s, dc) | s->need[dc - e->cells];
        }
    }
    s->need[c - e->cells] = need;
}

/* The kind's route, asked once per task; values it looked up are dropped
 * (start looks them up again) so a waiting task holds no rendered input. */
static void route(struct eng_task *t)
{
    struct eng *e = t->e;
    size_t via = t->stage;
    if (e->o->kind->route) {
        struct bh_err err = {0};
        if (e->o->kind->route(t, &via, &err) || via >= e->o->p->n_stages)
            via = t->stage;
        eng_task_vals_release(t);
    }
    t->via = via;
    t->routed = 1;
}

/* eng_cell_step's start: lists the task as ready instead of starting it. */
static int collect(struct eng_task *t)
{
    struct eng_sched *s = t->e->sched;
    if (!t->routed)
        route(t);
    struct ep_state *es = &s->eps[eng_task_endpoint(t)];
    struct group *g = &s->groups[group_of_task(s, t)];
    if (g->ready++ == 0)
        g->first = es->n_ready;
    es->ready = bh_xgrow(es->ready, &es->cap_ready, es->n_ready + 1, sizeof(*es->ready));
    es->ready[es->n_ready++] = t;
    return 0;
}

static void visit(struct eng *e, struct eng_cell *c)
{
    struct eng_sched *s = e->sched;
    eng_cell_step(e, c, collect);
    if (c->state != STORE_PENDING)
        return;
    cell_need(e, c);
    if (c->reusable >= 0)
        return; /* ready: its tasks were collected */
    struct group *g = &s->groups[s->group_of[c->stage]];
    if (s->need[c - e->cells] & g->others)
        g->later++;
    else
        g->soon++;
}

/* Visits the stage's pending cells in item order and drops those that have
 * ended: visiting an ended cell does nothing, so a pass costs what is still
 * to do, not the whole batch. */
static void walk_stage(struct eng *e, size_t st)
{
    struct eng_sched *s = e->sched;
    size_t *v = s->pending[st], keep = 0;
    for (size_t j = 0; j < s->n_pending[st]; j++) {
        struct eng_cell *c = eng_cell_at(e, v[j], st);
        if (!e->fatal)
            visit(e, c);
        if (c->state == STORE_PENDING)
            v[keep++] = v[j];
    }
    s->n_pending[st] = keep;
}

static void walk(struct eng *e)
{
    const struct pipeline *p = e->o->p;
    struct eng_sched *s = e->sched;
    for (size_t g = 0; g < s->n_groups; g++)
        s->groups[g].ready = s->groups[g].soon = s->groups[g].later = 0;
    for (size_t ep = 0; ep < p->n_endpoints; ep++)
        s->eps[ep].n_ready = 0;
    for (size_t k = 0; k < p->n_stages && !e->fatal; k++) {
        size_t st = p->order[k];
        if (p->stages[st].standby)
            continue;
        if (p->stages[st].scope == PIPE_SCOPE_BATCH)
            visit(e, eng_cell_at(e, 0, st));
        else
            walk_stage(e, st);
    }
}

static void pending_make(struct eng *e)
{
    struct eng_sched *s = e->sched;
    size_t ns = e->o->p->n_stages, ni = e->o->n_items;
    s->pending = bh_xcalloc(ns + 1, sizeof(*s->pending));
    s->n_pending = bh_xcalloc(ns + 1, sizeof(*s->n_pending));
    for (size_t st = 0; st < ns; st++) {
        if (e->o->p->stages[st].scope == PIPE_SCOPE_BATCH)
            continue;
        s->pending[st] = bh_xcalloc(ni + 1, sizeof(**s->pending));
        for (size_t i = 0; i < ni; i++)
            if (eng_cell_at(e, i, st)->state == STORE_PENDING)
                s->pending[st][s->n_pending[st]++] = i;
    }
}

/* ---- starting tasks --------------------------------------------------- */

/* ms until the endpoint's rate limit lets one more start: 0 now. */
static long rate_wait(const struct ep_state *es, long now)
{
    if (!es->rpm || es->n_starts < es->rpm)
        return 0;
    long at = es->starts[es->head] + 60000;
    return at > now ? at - now : 0;
}

static void rate_note(struct ep_state *es, long now)
{
    if (!es->rpm)
        return;
    if (es->n_starts < es->rpm) {
        es->starts[(es->head + es->n_starts++) % es->rpm] = now;
        return;
    }
    es->starts[es->head] = now;
    es->head = (es->head + 1) % es->rpm;
}

#define ANY_GROUP (-1L)
#define NO_LOADS (-2L) /* the groups whose model does not load on the endpoint */

static int in_group(const struct eng_sched *s, const struct eng_task *t, long g)
{
    size_t tg = group_of_task(s, t);
    return g == ANY_GROUP || (g == NO_LOADS ? !s->groups[tg].loads : tg == (size_t)g);
}

/* Starts the endpoint's ready tasks of group g (or ANY_GROUP, NO_LOADS) in
 * walk order while it has slots. Returns the rate limit's wait, or -1. */
static long start_ready(struct eng *e, size_t ep, long g)
{
    struct eng_sched *s = e->sched;
    struct ep_state *es = &s->eps[ep];
    for (size_t i = 0; i < es->n_ready && !e->fatal; i++) {
        struct eng_task *t = es->ready[i];
        if (t->state != STORE_PENDING || !in_group(s, t, g))
            continue;
        if (e->busy[ep] >= eng_slots(e, ep))
            return -1;
        long now = eng_now_ms(), wait = rate_wait(es, now);
        if (wait > 0)
            return wait;
        rate_note(es, now);
        s->groups[group_of_task(s, t)].ready--;
        eng_task_start(t);
    }
    return -1;
}

/* ---- the policy of a local endpoint with several models ---------------- */

static long idle_limit(const struct eng_sched *s)
{
    return 2 * s->load_ms > ENG_SCHED_IDLE_MIN_MS ? 2 * s->load_ms : ENG_SCHED_IDLE_MIN_MS;
}

/* Whether cur should keep the endpoint although it has no ready task. */
static int hold(struct eng *e, size_t ep, const struct group *cur)
{
    struct ep_state *es = &e->sched->eps[ep];
    if (!cur->soon || e->in_flight == 0)
        return 0; /* nothing coming, or nothing running that could make it come */
    long now = eng_now_ms();
    if (e->busy[ep] > 0 || !es->idle_since)
        return 1;
    return now - es->idle_since < idle_limit(e->sched);
}

/* The next group with ready tasks besides cur: one passed over too often,
 * else a loaded one, else the first in the walk. -1: none. */
static long pick(const struct eng_sched *s, size_t ep, long cur)
{
    long best = -1;
    int best_rank = -1;
    for (size_t g = 0; g < s->n_groups; g++) {
        const struct group *c = &s->groups[g];
        if (c->ep != ep || (long)g == cur || !c->ready || !c->loads)
            continue;
        int rank = c->passed >= ENG_SCHED_MAX_PASSES ? 2 : c->resident ? 1 : 0;
        if (rank > best_rank || (rank == best_rank && c->first < s->groups[best].first)) {
            best = (long)g;
            best_rank = rank;
        }
    }
    return best;
}

/* The group to serve now (switching when cur is done), or -1 to wait. */
static long choose(struct eng *e, size_t ep)
{
    struct eng_sched *s = e->sched;
    struct ep_state *es = &s->eps[ep];
    if (es->cur >= 0 && (s->groups[es->cur].ready || hold(e, ep, &s->groups[es->cur])))
        return s->groups[es->cur].ready ? es->cur : -1;
    long next = pick(s, ep, es->cur);
    if (next < 0)
        return -1;
    for (size_t g = 0; g < s->n_groups; g++)
        if (s->groups[g].ep == ep && (long)g != next && s->groups[g].ready)
            s->groups[g].passed++;
    s->groups[next].passed = 0;
    es->cur = next;
    return next;
}

/* What to load next while cur's last requests run: cur itself when its
 * tasks wait for a slot, else the group after it once cur has nothing more
 * to start. -1: nothing. */
static long preload_target(const struct eng_sched *s, size_t ep)
{
    const struct ep_state *es = &s->eps[ep];
    if (es->cur < 0)
        return -1;
    const struct group *cur = &s->groups[es->cur];
    if (cur->ready)
        return cur->resident ? -1 : es->cur;
    if (cur->soon)
        return -1;
    long next = pick(s, ep, es->cur);
    for (size_t g = 0; next < 0 && g < s->n_groups; g++)
        if (s->groups[g].ep == ep && (long)g != es->cur && s->groups[g].soon && s->groups[g].loads)
            next = (long)g;
    return next >= 0 && !s->groups[next].resident ? next : -1;
}

/* Preloads the target when the server has room or can be given some by
 * unloading a model nothing needs (then the preload waits a pass). */
static void preload(struct eng *e, size_t ep)
{
    struct eng_sched *s = e->sched;
    long g = preload_target(s, ep);
    if (g < 0 || s->eps[ep].manage)
        return;
    if (loaded_on(s, ep) >= (size_t)s->eps[ep].max_loaded) {
        make_room(e, (size_t)g);
        return;
    }
    if (manage_send(e, ep, g, EGR_MANAGE_PRELOAD) == 0)
        mark_loaded(s, (size_t)g);
}

static long serve_models(struct eng *e, size_t ep)
{
    struct eng_sched *s = e->sched;
    struct ep_state *es = &s->eps[ep];
    long wake = start_ready(e, ep, NO_LOADS);
    if (es->unloading)
        return wake; /* a load waits for the room an unload makes */
    long g = choose(e, ep);
    if (g >= 0 && s->groups[g].ready && e->busy[ep] < eng_slots(e, ep)) {
        if (!s->groups[g].resident && make_room(e, (size_t)g))
            return -1;
        if (!s->groups[g].resident)
            mark_loaded(s, (size_t)g);
        s->groups[g].used = ++s->tick;
        long w = start_ready(e, ep, g);
        wake = w >= 0 && (wake < 0 || w < wake) ? w : wake;
    }
    preload(e, ep);
    return wake;
}

/* ---- a pool: tasks placed on hosts with model affinity ----------------- */

/* Live hosts of the pool at first (not h) that serve home group g now. */
static size_t servers(struct eng *e, size_t first, size_t g, size_t h)
{
    const struct pipe_endpoint *pe = &e->o->p->endpoints[first];
    size_t n = 0;
    for (size_t k = first; k < first + pe->n_pool; k++)
        n += k != h && !eng_host_down(e, k) && e->sched->eps[k].cur == (long)g;
    return n;
}

/* Whether one more host on g (n hosts serve it) shortens the run: the work
 * left, spread over one more host, saves more than the load it costs.
 * Before any task has finished, more than two rounds of work left is. */
static int worth_spreading(struct eng *e, size_t g, size_t n, size_t h)
{
    const struct eng_sched *s = e->sched;
    const struct group *c = &s->groups[g];
    double left = (double)(c->ready + c->soon + c->later), slots = (double)eng_slots(e, h);
    if (!s->n_timed)
        return left > 2.0 * slots * (double)n;
    double task_ms = (double)s->task_ms_sum / (double)s->n_timed;
    return left * task_ms > (double)s->load_ms * slots * (double)n * (double)(n + 1);
}

/* The home group host h serves next: the one it serves while that has
 * ready work (affinity), or none while work for it is soon to come; else a
 * model it holds, else one no host serves, else the one with the most work
 * left per host if spreading it shortens the run. -1: h waits. */
static long pool_pick(struct eng *e, size_t first, size_t h, int commit)
{
    struct eng_sched *s = e->sched;
    struct ep_state *hs = &s->eps[h];
    if (hs->cur >= 0 && s->groups[hs->cur].ready)
        return hs->cur;
    if (hs->cur >= 0 && hold(e, h, &s->groups[hs->cur]))
        return -1;
    long best = -1;
    double best_score = -1;
    for (size_t g = 0; g < s->n_groups; g++) {
        const struct group *c = &s->groups[g];
        if (c->ep != first || c->home != g || !c->ready || !c->loads)
            continue;
        size_t n = servers(e, first, g, h);
        int rank = s->groups[group_on(s, g, h)].resident ? 3 : n == 0 ? 2 : 1;
        if (rank == 1 && !worth_spreading(e, g, n, h))
            continue;
        double score = rank * 1e12 + (double)(c->ready + c->soon + c->later) / (double)(n + 1);
        if (score > best_score) {
            best = (long)g;
            best_score = score;
        }
    }
    if (commit && best >= 0)
        hs->cur = best;
    return best;
}

/* Starts the next ready task of home group g (NO_LOADS: of any group whose
 * model does not load) on host h. 0 when there was none. */
static int place_next(struct eng *e, size_t first, long g, size_t h)
{
    struct eng_sched *s = e->sched;
    struct ep_state *es = &s->eps[first];
    size_t *at = g >= 0 ? &s->groups[g].cursor : &es->head_nl;
    for (; *at < es->n_ready; (*at)++) {
        struct eng_task *t = es->ready[*at];
        if (t->state != STORE_PENDING || t->placed || !in_group(s, t, g))
            continue;
        s->groups[group_of_task(s, t)].ready--;
        t->placed = 1;
        t->host = h;
        rate_note(&s->eps[h], eng_now_ms());
        eng_task_start(t);
        return 1;
    }
    return 0;
}

/* Fills host h's free slots: tasks whose model loads nowhere first, then
 * the group pool_pick gives it (loading it, or making room first). Returns
 * the rate limit's wait, or -1. */
static long pool_host(struct eng *e, size_t first, size_t h)
{
    struct eng_sched *s = e->sched;
    while (!e->fatal && e->busy[h] < eng_slots(e, h) && !eng_host_down(e, h)) {
        long wait = rate_wait(&s->eps[h], eng_now_ms());
        if (wait > 0)
            return wait;
        if (place_next(e, first, NO_LOADS, h))
            continue;
        if (s->eps[h].unloading)
            return -1; /* a load waits for the room an unload makes */
        long g = pool_pick(e, first, h, 1);
        if (g < 0)
            return -1;
        size_t hg = group_on(s, (size_t)g, h);
        if (!s->groups[hg].resident && make_room(e, hg))
            return -1;
        if (!s->groups[hg].resident)
            mark_loaded(s, hg);
        s->groups[hg].used = ++s->tick;
        if (!place_next(e, first, g, h))
            return -1;
    }
    return -1;
}

/* While h runs the last tasks of its group, loads what it picks next. */
static void pool_preload(struct eng *e, size_t first, size_t h)
{
    struct eng_sched *s = e->sched;
    long cur = s->eps[h].cur;
    if (eng_host_down(e, h) || cur < 0 || s->groups[cur].ready || s->groups[cur].soon ||
        s->eps[h].manage || !s->eps[h].policy)
        return;
    long g = pool_pick(e, first, h, 0);
    if (g < 0 || g == cur)
        return;
    size_t hg = group_on(s, (size_t)g, h);
    if (s->groups[hg].resident)
        return;
    if (loaded_on(s, h) >= (size_t)s->eps[h].max_loaded) {
        make_room(e, hg);
        return;
    }
    if (manage_send(e, h, (long)hg, EGR_MANAGE_PRELOAD) == 0) {
        mark_loaded(s, hg);
        s->eps[h].cur = g; /* it will serve what it loaded */
    }
}

/* The pool whose first host is first: its ready tasks (listed at first,
 * unplaced) are placed host by host. With every host down they start
 * unplaced and fail at once, as on a single endpoint. */
static long serve_pool(struct eng *e, size_t first)
{
    struct eng_sched *s = e->sched;
    const struct pipe_endpoint *pe = &e->o->p->endpoints[first];
    if (eng_pool_live(e, first, -1) < 0)
        return start_ready(e, first, ANY_GROUP);
    s->eps[first].head_nl = 0;
    for (size_t g = 0; g < s->n_groups; g++)
        s->groups[g].cursor = s->groups[g].first;
    long wake = -1;
    for (size_t h = first; h < first + pe->n_pool && !e->fatal; h++) {
        long w = pool_host(e, first, h);
        wake = w >= 0 && (wake < 0 || w < wake) ? w : wake;
    }
    for (size_t h = first; h < first + pe->n_pool && !e->fatal; h++)
        pool_preload(e, first, h);
    return wake;
}

/* ---- the pass --------------------------------------------------------- */

static void idle_note(struct eng *e, size_t ep)
{
    struct ep_state *es = &e->sched->eps[ep];
    if (e->busy[ep] > 0)
        es->idle_since = 0;
    else if (!es->idle_since)
        es->idle_since = eng_now_ms();
}

/* ENG_ORDER_NAIVE: when nothing runs, the first ready task of the lowest
 * item (a batch task last). */
static void start_naive(struct eng *e)
{
    struct eng_task *first = NULL;
    if (e->in_flight)
        return;
    for (size_t ep = 0; ep < e->o->p->n_endpoints; ep++) {
        struct ep_state *es = &e->sched->eps[ep];
        for (size_t i = 0; i < es->n_ready; i++)
            if (!first || es->ready[i]->item < first->item)
                first = es->ready[i];
    }
    if (first) {
        e->sched->groups[group_of_task(e->sched, first)].ready--;
        eng_task_start(first);
    }
}

long eng_schedule(struct eng *e)
{
    long wake = -1;
    if (eng_stop_requested() || e->fatal)
        return -1;
    walk(e);
    if (e->o->order == ENG_ORDER_NAIVE) {
        start_naive(e);
        return -1;
    }
    for (size_t ep = 0; ep < e->o->p->n_endpoints && !e->fatal; ep++) {
        struct ep_state *es = &e->sched->eps[ep];
        const struct pipe_endpoint *pe = &e->o->p->endpoints[ep];
        idle_note(e, ep);
        if (pe->n_pool > 1 && pe->host > 0)
            continue; /* served with its pool's first host */
        long w = pe->n_pool > 1 ? serve_pool(e, ep)
                 : es->policy   ? serve_models(e, ep)
                                : start_ready(e, ep, ANY_GROUP);
        if (w >= 0 && (wake < 0 || w < wake))
            wake = w;
        for (size_t h = ep; h < ep + (pe->n_pool > 1 ? pe->n_pool : 1); h++)
            idle_note(e, h);
    }
    return wake;
}

/* ---- the run ---------------------------------------------------------- */

/* Local Ollama with several groups: the model policy applies. */
static int wants_policy(const struct eng *e, size_t ep)
{
    const struct pipe_endpoint *pe = &e->o->p->endpoints[ep];
    return egr_endpoint_info(e->o->gate, ep)->local && strcmp(pe->provider, "ollama") == 0 &&
           groups_on(e->sched, ep) > 1;
}

/* What every policy endpoint has loaded: from the pre-run probe, else asked
 * (/api/ps), waiting for the answers. */
static void learn_loaded(struct eng *e)
{
    struct eng_sched *s = e->sched;
    int asked = 0;
    for (size_t ep = 0; ep < e->o->p->n_endpoints; ep++)
        if (s->eps[ep].policy && !ps_known(s, e, ep))
            asked |= manage_send(e, ep, -1, EGR_MANAGE_PS) == 0;
    while (asked && eng_sched_busy(e)) {
        struct bh_err err = {0};
        if (egr_step(e->o->gate, 250, &err))
            break;
    }
}

void eng_sched_new(struct eng *e)
{
    const struct pipeline *p = e->o->p;
    struct eng_sched *s = bh_xcalloc(1, sizeof(*s));
    e->sched = s;
    groups_make(s, p);
    for (size_t st = 0; st < p->n_stages; st++)
        s->groups[s->group_of[st]].loads |= egr_stage_local(e->o->gate, st);
    for (size_t g = 0; g < s->n_groups; g++)
        s->groups[g].loads = s->groups[s->groups[g].home].loads;
    s->eps = bh_xcalloc(p->n_endpoints + 1, sizeof(*s->eps));
    s->need = bh_xcalloc(e->n_cells + 1, sizeof(*s->need));
    pending_make(e);
    for (size_t ep = 0; ep < p->n_endpoints; ep++) {
        struct ep_state *es = &s->eps[ep];
        int declared = p->endpoints[ep].max_loaded_models;
        *es = (struct ep_state){.policy = wants_policy(e, ep),
                                .cur = -1,
                                .max_loaded = declared > 0 ? declared : 1,
                                .rpm = (size_t)p->endpoints[ep].max_requests_per_minute};
        es->starts = es->rpm ? bh_xcalloc(es->rpm, sizeof(*es->starts)) : NULL;
    }
    if (!eng_stop_requested() && e->o->order != ENG_ORDER_NAIVE)
        learn_loaded(e);
}

/* "pool 'gpus': model loads per host: gpus#1 1, gpus#2 1, gpus#3 2". */
static void loads_say(const struct eng *e, size_t first)
{
    const struct pipeline *p = e->o->p;
    const struct pipe_endpoint *pe = &p->endpoints[first];
    char line[1024];
    size_t used = (size_t)snprintf(line, sizeof(line),
                                   "bulkhead: pool '%s': model loads per host:", pe->name);
    for (size_t h = first; h < first + pe->n_pool && used < sizeof(line); h++)
        used +=
            (size_t)snprintf(line + used, sizeof(line) - used, "%s %s %zu", h == first ? "" : ",",
                             pipe_host_name(&p->endpoints[h]), e->sched->eps[h].loads);
    eng_say(e, "%s", line);
}

void eng_sched_free(struct eng *e)
{
    struct eng_sched *s = e->sched;
    if (!s)
        return;
    for (size_t ep = 0; ep < e->o->p->n_endpoints; ep++) {
        const struct pipe_endpoint *pe = &e->o->p->endpoints[ep];
        size_t loads = 0;
        for (size_t h = ep; pe->n_pool > 1 && pe->host == 0 && h < ep + pe->n_pool; h++)
            loads += s->eps[h].loads;
        if (loads)
            loads_say(e, ep);
    }
    for (struct call *c = s->calls; c; c = c->next)
        c->s = NULL; /* its reply may still come: it frees itself then */
    for (size_t ep = 0; ep < e->o->p->n_endpoints; ep++) {
        free(s->eps[ep].ready);
        free(s->eps[ep].starts);
    }
    free(s->eps);
    free(s->groups);
    free(s->group_of);
    free(s->need);
    for (size_t st = 0; st < e->o->p->n_stages; st++)
        free(s->pending[st]);
    free(s->pending);
    free(s->n_pending);
    free(s);
    e->sched = NULL;
}

int eng_sched_busy(const struct eng *e)
{
    return e->sched && e->sched->calls != NULL;
}

void eng_sched_started(struct eng *e, const struct eng_task *t)
{
    e->sched->groups[group_of_task(e->sched, t)].running++;
}

void eng_sched_ended(struct eng *e, const struct eng_task *t)
{
    struct eng_sched *s = e->sched;
    s->groups[group_of_task(s, t)].running--;
    if (ended(t->state) && t->started_ms) {
        s->task_ms_sum += eng_now_ms() - t->started_ms;
        s->n_timed++;
    }
}

void eng_sched_load_seen(struct eng *e, int64_t load_ns)
{
    long ms = (long)(load_ns / 1000000);
    if (e->sched && ms > e->sched->load_ms)
        e->sched->load_ms = ms;
}
