/* engine/snapshot.c — progress snapshots for a live display, and where the
 * engine's messages go.
 *
 * Counts come from the tasks themselves (one pass over the tasks of this
 * attempt per snapshot, every ENG_PROGRESS_MS at most), so they can never
 * drift from the state machine; only what a task does not keep (tokens,
 * cached answers, which model answered on an endpoint) is added up as tasks
 * end. A stage has ended when none of its cells is open any more; cells
 * never reopen, so a cursor per stage skips the cells already seen ended and
 * the check costs O(cells) over the whole run, not per snapshot. */
#include "engine/engine_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/pipeline.h"
#include "store/store.h"
#include "util/bh_xmalloc.h"

struct eng_prog {
    long start_ms, last_ms;
    size_t last_ended;               /* tasks ended at the last look for stage ends */
    struct eng_stage_progress *st;   /* per stage, by pipeline index */
    struct eng_stage_progress *view; /* in run order: what the callback gets */
    struct eng_endpoint_progress *ep;
    char **last_model; /* per endpoint, owned */
    size_t *cursor;    /* per stage: the first item cell that may be open */
    long *first_ms;    /* per stage: its first task's start, 0 before */
};

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void eng_prog_init(struct eng *e)
{
    const struct pipeline *p = e->o->p;
    if (!e->o->progress)
        return;
    struct eng_prog *g = bh_xcalloc(1, sizeof(*g));
    size_t ns = p->n_stages ? p->n_stages : 1, ne = p->n_endpoints ? p->n_endpoints : 1;
    g->start_ms = g->last_ms = now_ms();
    g->st = bh_xcalloc(ns, sizeof(*g->st));
    g->view = bh_xcalloc(ns, sizeof(*g->view));
    g->ep = bh_xcalloc(ne, sizeof(*g->ep));
    g->last_model = bh_xcalloc(ne, sizeof(*g->last_model));
    g->cursor = bh_xcalloc(ns, sizeof(*g->cursor));
    g->first_ms = bh_xcalloc(ns, sizeof(*g->first_ms));
    for (size_t s = 0; s < p->n_stages; s++)
        g->st[s] = (struct eng_stage_progress){.name = p->stages[s].name,
                                               .stage = s,
                                               .endpoint = p->stages[s].endpoint,
                                               .standby = p->stages[s].standby,
                                               .ended = p->stages[s].standby};
    for (size_t i = 0; i < p->n_endpoints; i++)
        g->ep[i].name =
            p->endpoints[i].name; /* a stage row names its endpoint (a pool by its name) */
    e->prog = g;
}

void eng_prog_release(struct eng *e)
{
    struct eng_prog *g = e->prog;
    if (!g)
        return;
    for (size_t i = 0; i < e->o->p->n_endpoints; i++)
        free(g->last_model[i]);
    free(g->last_model);
    free(g->st);
    free(g->view);
    free(g->ep);
    free(g->cursor);
    free(g->first_ms);
    free(g);
    e->prog = NULL;
}

void eng_prog_started(struct eng *e, const struct eng_task *t)
{
    if (e->prog && !e->prog->first_ms[t->stage])
        e->prog->first_ms[t->stage] = now_ms();
}

void eng_prog_done(struct eng *e, const struct eng_task *t, const struct eng_metrics *m)
{
    struct eng_prog *g = e->prog;
    if (!g || !m)
        return;
    struct eng_stage_progress *s = &g->st[t->stage];
    if (m->cached) {
        s->cached++;
        return; /* nothing was asked of a model */
    }
    s->prompt_tokens += m->prompt_tokens;
    s->output_tokens += m->output_tokens;
    const struct pipe_stage *via = &e->o->p->stages[m->rerouted ? m->via : t->stage];
    free(g->last_model[via->endpoint]);
    g->last_model[via->endpoint] = bh_xstrdup(m->answered_by ? m->answered_by : via->model);
}

/* 1 while a cell of stage s may still run something. */
static int stage_open(struct eng *e, size_t s)
{
    struct eng_prog *g = e->prog;
    if (e->o->p->stages[s].scope == PIPE_SCOPE_BATCH)
        return eng_cell_at(e, 0, s)->state == STORE_PENDING;
    while (g->cursor[s] < e->o->n_items && eng_cell_at(e, g->cursor[s], s)->state != STORE_PENDING)
        g->cursor[s]++;
    return g->cursor[s] < e->o->n_items;
}

/* Marks the stages that ended since the last look; 1 when one did. */
static int stages_ended(struct eng *e, long now)
{
    struct eng_prog *g = e->prog;
    int any = 0;
    for (size_t s = 0; s < e->o->p->n_stages; s++) {
        struct eng_stage_progress *st = &g->st[s];
        if (st->ended || stage_open(e, s))
            continue;
        st->ended = st->ended_now = any = 1;
        st->active_ms = g->first_ms[s] ? now - g->first_ms[s] : 0;
    }
    return any;
}

static void tasks_count(struct eng *e)
{
    struct eng_stage_progress *v = e->prog->st;
    for (size_t s = 0; s < e->o->p->n_stages; s++)
        v[s].total = v[s].done = v[s].failed = v[s].withheld = v[s].skipped = v[s].in_flight =
            v[s].reused = 0;
    for (size_t i = 0; i < e->n_all; i++) {
        const struct eng_task *t = e->all[i];
        struct eng_stage_progress *s = &v[t->stage];
        if (t->state == ENG_STANDBY)
            continue;
        s->total++;
        s->done += t->state == STORE_DONE;
        s->reused += t->state == STORE_DONE && t->reused;
        s->failed += t->state == STORE_FAILED;
        s->withheld += t->state == STORE_WITHHELD;
        s->skipped += t->state == STORE_SKIPPED;
        s->in_flight += t->state == STORE_RUNNING;
    }
}

static void snapshot_send(struct eng *e, long now, int final)
{
    struct eng_prog *g = e->prog;
    const struct pipeline *p = e->o->p;
    tasks_count(e);
    for (size_t k = 0; k < p->n_stages; k++) {
        size_t s = p->order[k];
        if (!g->st[s].ended && g->first_ms[s])
            g->st[s].active_ms = now - g->first_ms[s];
        g->view[k] = g->st[s];
    }
    for (size_t i = 0; i < p->n_endpoints; i++) {
        g->ep[i].in_flight = e->busy[i];
        g->ep[i].last_model = g->last_model[i];
    }
    struct eng_progress snap = {.elapsed_ms = now - g->start_ms,
                                .stages = g->view,
                                .n_stages = p->n_stages,
                                .endpoints = g->ep,
                                .n_endpoints = p->n_endpoints,
                                .final = final};
    e->o->progress(e->o->ud, &snap);
    for (size_t s = 0; s < p->n_stages; s++)
        g->st[s].ended_now = 0;
    g->last_ms = now;
}

void eng_prog_tick(struct eng *e, int final)
{
    struct eng_prog *g = e->prog;
    if (!g)
        return;
    long now = now_ms();
    size_t ended = e->sum->done + e->sum->failed + e->sum->withheld + e->sum->skipped;
    int due = final || now - g->last_ms >= ENG_PROGRESS_MS;
    if (!due && ended == g->last_ended)
        return;
    g->last_ended = ended;
    if (stages_ended(e, now) || due)
        snapshot_send(e, now, final);
}

/* ---- messages -------------------------------------------------------- */

static void say_v(const struct eng *e, const char *fmt, va_list ap) BH_PRINTF(2, 0);

static void say_v(const struct eng *e, const char *fmt, va_list ap)
{
    char line[2048];
    vsnprintf(line, sizeof(line), fmt, ap);
    if (e->o->say)
        e->o->say(e->o->ud, line);
    else
        fprintf(stderr, "%s\n", line);
}

void eng_say(const struct eng *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say_v(e, fmt, ap);
    va_end(ap);
}

void eng_task_warn(const struct eng_task *t, const char *fmt, ...)
{
    char msg[1024], name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    eng_say(t->e, "bulkhead: %s: warning: %s", eng_task_name(t, name, sizeof(name)), msg);
}
