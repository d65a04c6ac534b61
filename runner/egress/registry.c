/* egress/registry.c — the gate's registry of endpoint facts: what egr_new
 * verified and pinned per endpoint (locality, the pinned addresses), and
 * what was learnt of the servers since (cloud stubs, loaded models, whether
 * ":local" is honoured, each stage's model facts), with the stage's
 * effective locality and clearance computed from them. It decides nothing:
 * egress.c compares labels with these facts and audits; keeping the facts
 * apart means the decision reads one place and nothing here can send.
 *
 * The facts only ever make a stage less trusted: a stub mark is never
 * taken back, and an endpoint's locality is fixed once verified. */
#include "egress/registry.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

static void loaded_clear(struct egr_loaded_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int egr_registry_init(struct egr_registry *r, const struct pipeline *p, struct bh_err *err)
{
    size_t n_eps = p->n_endpoints ? p->n_endpoints : 1, n_st = p->n_stages ? p->n_stages : 1;
    memset(r, 0, sizeof(*r));
    r->p = p;
    r->eps = bh_xcalloc(n_eps, sizeof(*r->eps));
    r->remote = bh_xcalloc(n_st, sizeof(*r->remote));
    r->wire = bh_xcalloc(n_st, sizeof(*r->wire));
    r->facts = bh_xcalloc(n_st, sizeof(*r->facts));
    for (size_t i = 0; i < p->n_stages; i++)
        r->facts[i] = (struct egr_model_facts)EGR_MODEL_FACTS_INIT;
    r->local_suffix = bh_xcalloc(n_eps, sizeof(*r->local_suffix));
    r->loaded = bh_xcalloc(n_eps, sizeof(*r->loaded));
    for (size_t i = 0; i < p->n_endpoints; i++) {
        int rc = egr_endpoint_verify_pipe(p, i, &r->eps[i], err);
        if (rc < 0) {
            bh_err_prefix(err, "endpoint '%s': ", pipe_host_name(&p->endpoints[i]));
            return rc;
        }
    }
    return 0;
}

void egr_registry_release(struct egr_registry *r)
{
    if (!r->p)
        return;
    for (size_t i = 0; r->remote && i < r->p->n_stages; i++)
        free(r->remote[i]);
    for (size_t i = 0; r->wire && i < r->p->n_stages; i++)
        free(r->wire[i]);
    free(r->remote);
    free(r->wire);
    free(r->facts);
    for (size_t i = 0; r->loaded && i < r->p->n_endpoints; i++)
        loaded_clear(&r->loaded[i]);
    free(r->loaded);
    free(r->local_suffix);
    free(r->eps);
    egr_first_contact_free(r->fc);
    memset(r, 0, sizeof(*r));
}

const struct egr_endpoint *egr_endpoint_info(const struct egr_gate *g, size_t endpoint)
{
    const struct egr_registry *r = egr_gate_registry_const(g);
    return endpoint < r->p->n_endpoints ? &r->eps[endpoint] : NULL;
}

void egr_stage_mark_remote(struct egr_gate *g, size_t stage, const char *remote_host)
{
    struct egr_registry *r = egr_gate_registry(g);
    assert(stage < r->p->n_stages);
    free(r->remote[stage]);
    r->remote[stage] = bh_xstrdup(remote_host ? remote_host : "");
}

int egr_model_name_eq(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    int ta = strchr(sa ? sa : a, ':') != NULL, tb = strchr(sb ? sb : b, ':') != NULL;
    if (ta == tb)
        return strcasecmp(a, b) == 0;
    const char *t = ta ? a : b, *u = ta ? b : a;
    size_t nt = ta ? na : nb, nu = ta ? nb : na;
    return nt == nu + 7 && strncasecmp(t, u, nu) == 0 && strcasecmp(t + nu, ":latest") == 0;
}

/* 1 when endpoints a and b are hosts of one pool (or the same endpoint). */
static int same_pool(const struct pipeline *p, size_t a, size_t b)
{
    const struct pipe_endpoint *ea = &p->endpoints[a], *eb = &p->endpoints[b];
    return a == b || (ea->n_pool > 1 && eb->n_pool > 1 && ea->pool == eb->pool);
}

/* A pool is as local as its least local host (pol_pool_worst): a stage
 * on a pool with one host that is not verified local is not local. */
static int pool_local(const struct egr_registry *r, size_t ep)
{
    const struct pipe_endpoint *e = &r->p->endpoints[ep];
    int local = r->eps[ep].local;
    for (size_t h = 0; e->n_pool > 1 && h < e->n_pool; h++)
        local &= r->eps[e->pool + h].local;
    return local;
}

int egr_pool_local(const struct egr_gate *g, size_t endpoint)
{
    return pool_local(egr_gate_registry_const(g), endpoint);
}

int egr_pool_has(const struct egr_gate *g, size_t endpoint, size_t host)
{
    const struct egr_registry *r = egr_gate_registry_const(g);
    return host < r->p->n_endpoints && same_pool(r->p, endpoint, host);
}

size_t egr_model_mark_remote(struct egr_gate *g, size_t endpoint, const char *model,
                             const char *remote_host)
{
    struct egr_registry *r = egr_gate_registry(g);
    size_t marked = 0;
    for (size_t i = 0; i < r->p->n_stages; i++) {
        const struct pipe_stage *st = &r->p->stages[i];
        if (!same_pool(r->p, st->endpoint, endpoint) || !egr_model_name_eq(st->model, model))
            continue;
        marked += r->remote[i] == NULL;
        if (!r->remote[i])
            egr_stage_mark_remote(g, i, remote_host);
    }
    return marked;
}

const char *egr_stage_remote(const struct egr_gate *g, size_t stage)
{
    const struct egr_registry *r = egr_gate_registry_const(g);
    return stage < r->p->n_stages ? r->remote[stage] : NULL;
}

int egr_stage_local(const struct egr_gate *g, size_t stage)
{
    const struct egr_registry *r = egr_gate_registry_const(g);
    assert(stage < r->p->n_stages);
    const struct pipe_stage *st = &r->p->stages[stage];
    return pol_stage_local_facts(r->p, stage, pool_local(r, st->endpoint),
                                 r->remote[stage] != NULL);
}

int egr_stage_clearance(const struct egr_gate *g, size_t stage)
{
    const struct egr_registry *r = egr_gate_registry_const(g);
    assert(stage < r->p->n_stages);
    const struct pipe_stage *st = &r->p->stages[stage];
    return pol_stage_clearance_facts(r->p, stage, pool_local(r, st->endpoint),
                                     r->remote[stage] != NULL);
}

/* --- facts found online ---------------------------------------------------------- */

void egr_stage_set_facts(struct egr_gate *g, size_t stage, const struct egr_model_facts *f)
{
    struct egr_registry *r = egr_gate_registry(g);
    assert(stage < r->p->n_stages);
    r->facts[stage] = *f;
}

const struct egr_model_facts *egr_stage_facts(const struct egr_gate *g, size_t stage)
{
    const struct egr_registry *r = egr_gate_registry_const(g);
    assert(stage < r->p->n_stages);
    return &r->facts[stage];
}

long egr_stage_num_ctx(const struct egr_gate *g, size_t stage)
{
    const struct egr_registry *r = egr_gate_registry_const(g);
    assert(stage < r->p->n_stages);
    long own = r->p->stages[stage].num_ctx;
    return own > 0 ? own : r->facts[stage].num_ctx;
}

void egr_endpoint_set_loaded(struct egr_gate *g, size_t endpoint, const struct egr_loaded *v,
                             size_t n)
{
    struct egr_registry *r = egr_gate_registry(g);
    assert(endpoint < r->p->n_endpoints);
    struct egr_loaded_list *l = &r->loaded[endpoint];
    loaded_clear(l);
    l->known = 1;
    l->v = bh_xcalloc(n ? n : 1, sizeof(*l->v));
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        l->v[i] = v[i];
        l->v[i].name = bh_xstrdup(v[i].name ? v[i].name : "");
    }
}

int egr_endpoint_loaded(const struct egr_gate *g, size_t endpoint, const struct egr_loaded **v,
                        size_t *n)
{
    const struct egr_registry *r = egr_gate_registry_const(g);
    if (endpoint >= r->p->n_endpoints || !r->loaded[endpoint].known)
        return 0;
    *v = r->loaded[endpoint].v;
    *n = r->loaded[endpoint].n;
    return 1;
}

void egr_endpoint_set_local_suffix(struct egr_gate *g, size_t endpoint, int honoured)
{
    struct egr_registry *r = egr_gate_registry(g);
    assert(endpoint < r->p->n_endpoints);
    r->local_suffix[endpoint] = honoured != 0;
}

/* A name that already says where it runs: ":local", or a cloud name. */
static int has_source_suffix(const char *model)
{
    size_t n = strlen(model);
    return pol_model_is_cloud(model) || (n >= 6 && strcasecmp(model + n - 6, ":local") == 0);
}

/* The suffix asks the server itself to refuse a stub, so that a stub made
 * after bulkhead looked at /api/tags still never receives the prompt. The
 * name is made once and kept: tasks in flight hold it. */
const char *egr_stage_model(struct egr_gate *g, size_t stage)
{
    struct egr_registry *r = egr_gate_registry(g);
    assert(stage < r->p->n_stages);
    return egr_stage_model_on(g, stage, r->p->stages[stage].endpoint);
}

const char *egr_stage_model_on(struct egr_gate *g, size_t stage, size_t host)
{
    struct egr_registry *r = egr_gate_registry(g);
    assert(stage < r->p->n_stages && host < r->p->n_endpoints);
    const struct pipe_stage *st = &r->p->stages[stage];
    const struct pipe_endpoint *e = &r->p->endpoints[host];
    if (!r->local_suffix[host] || e->enforce_local == PIPE_ENFORCE_OFF ||
        has_source_suffix(st->model) || !egr_stage_local(g, stage))
        return st->model;
    if (!r->wire[stage])
        r->wire[stage] = bh_xasprintf("%s:local", st->model);
    return r->wire[stage];
}
