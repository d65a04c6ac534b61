/* policy/graph.c — builds the flow graph of a pipeline (see graph.h).
 *
 * The per-stage verdicts come from pol_check, the function the gate's rules
 * are written in, so the graph can never tell a different story than a run;
 * this file only adds what pol_check does not keep: the edges with their
 * bounds, where each bound and clearance comes from, the locality reasons in
 * words, and the one static configuration check (a stage cleared above its
 * endpoint). Sizes are small (stages × placeholders), so lookups are linear. */
#include "policy/graph.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

static const char *const why_words[] = {
    [POL_WHY_LOOPBACK] = "declared local, loopback address",
    [POL_WHY_PRIVATE] = "declared local, private address",
    [POL_WHY_DECLARED_CLOUD] = "declared cloud",
    [POL_WHY_NOT_DECLARED] = "not declared",
    [POL_WHY_MODEL_COLON_CLOUD] = "model name ends in :cloud",
    [POL_WHY_MODEL_DASH_CLOUD] = "model name ends in -cloud",
    [POL_WHY_PUBLIC_REFUSED] = "declared local but public address (refused)",
    [POL_WHY_UNRESOLVED_REFUSED] = "declared local but host did not resolve (refused)",
};

static const char *const clr_words[] = {
    [POL_CLR_STAGE] = "stage",
    [POL_CLR_ENDPOINT] = "endpoint",
    [POL_CLR_DEFAULT_LOCAL] = "default for local",
    [POL_CLR_DEFAULT_CLOUD] = "default for cloud",
    [POL_CLR_LOCALITY_REFUSED] = "locality refused",
};

static const char *const bound_words[] = {
    [POL_BOUND_FIELD] = "field",
    [POL_BOUND_SOURCE_DEFAULT] = "source default",
    [POL_BOUND_STAGE_OUTPUT] = "stage output",
    [POL_BOUND_UNKNOWN] = "unknown",
    [POL_BOUND_NONE] = "none",
};

const char *pol_locality_words(enum pol_locality_why why)
{
    return why_words[why];
}

const char *pol_clearance_from_words(enum pol_clearance_from from)
{
    return clr_words[from];
}

const char *pol_bound_from_words(enum pol_bound_from from)
{
    return bound_words[from];
}

/* --- endpoints and stages ------------------------------------------------ */

static int top(const struct pipeline *p)
{
    return (int)p->n_labels - 1;
}

/* The endpoint's clearance as configured, before any network evidence. */
static int configured_clearance(const struct pipeline *p, const struct pipe_endpoint *e,
                                 enum pol_clearance_from *from)
{
    if (e->clearance >= 0) {
        *from = POL_CLR_ENDPOINT;
        return e->clearance;
    }
    *from = e->declared_local ? POL_CLR_DEFAULT_LOCAL : POL_CLR_DEFAULT_CLOUD;
    return e->declared_local ? top(p) : 0;
}

int pol_stage_over_endpoint(const struct pipeline *p, size_t stage)
{
    const struct pipe_stage *s = &p->stages[stage];
    enum pol_clearance_from from;
    return s->clearance >= 0 &&
           s->clearance > configured_clearance(p, &p->endpoints[s->endpoint], &from);
}

static enum pol_locality_why endpoint_why(const struct pipe_endpoint *e,
                                          const struct pol_endpoint_fact *f)
{
    if (!e->declared_local)
        return f->declared_cloud ? POL_WHY_DECLARED_CLOUD : POL_WHY_NOT_DECLARED;
    if (!f->local)
        return f->addr_kind == POL_ADDR_UNRESOLVED ? POL_WHY_UNRESOLVED_REFUSED
                                                   : POL_WHY_PUBLIC_REFUSED;
    return f->addr_kind == POL_ADDR_PRIVATE ? POL_WHY_PRIVATE : POL_WHY_LOOPBACK;
}

static void endpoints_init(struct pol_graph *g, const struct pol_endpoint_fact *facts)
{
    const struct pipeline *p = g->p;
    g->endpoints = bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*g->endpoints));
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct pol_endpoint_fact *f = &facts[i];
        struct pol_graph_endpoint *e = &g->endpoints[i];
        e->name = p->endpoints[i].name;
        e->url = p->endpoints[i].url;
        e->host = bh_xstrdup(f->host ? f->host : "");
        e->addr = bh_xstrdup(f->addr ? f->addr : "");
        e->evidence = bh_xstrdup(f->evidence ? f->evidence : "");
        e->port = f->port;
        e->declared_local = p->endpoints[i].declared_local;
        e->local = e->declared_local && f->local;
        e->why = endpoint_why(&p->endpoints[i], f);
        e->clearance = configured_clearance(p, &p->endpoints[i], &e->clearance_from);
    }
}

static enum pol_locality_why stage_why(const struct pol_graph *g, size_t i)
{
    const struct pipe_stage *s = &g->p->stages[i];
    const struct pol_graph_endpoint *e = &g->endpoints[s->endpoint];
    if (!e->local || !pol_model_is_cloud(s->model))
        return e->why;
    const char *tag = strrchr(s->model, ':');
    return tag && strcasecmp(tag + 1, "cloud") == 0 ? POL_WHY_MODEL_COLON_CLOUD
                                                    : POL_WHY_MODEL_DASH_CLOUD;
}

/* Mirrors the branches of pol_stage_clearance to name the one that decided. */
static enum pol_clearance_from stage_clearance_from(const struct pol_graph *g, size_t i)
{
    const struct pipe_stage *s = &g->p->stages[i];
    const struct pol_graph_endpoint *e = &g->endpoints[s->endpoint];
    if (e->declared_local && !e->local)
        return POL_CLR_LOCALITY_REFUSED;
    if (e->local && pol_model_is_cloud(s->model))
        return s->clearance >= 0 ? POL_CLR_STAGE : POL_CLR_DEFAULT_CLOUD;
    if (s->clearance >= 0 && s->clearance <= e->clearance)
        return POL_CLR_STAGE;
    return e->clearance_from;
}

static void stages_init(struct pol_graph *g)
{
    const struct pipeline *p = g->p;
    size_t n = p->n_stages ? p->n_stages : 1;
    struct pol_stage_report *rep = bh_xcalloc(n, sizeof(*rep));
    int *local = bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*local));
    for (size_t i = 0; i < p->n_endpoints; i++)
        local[i] = g->endpoints[i].local;
    pol_check(p, local, rep);
    g->stages = bh_xcalloc(n, sizeof(*g->stages));
    for (size_t i = 0; i < p->n_stages; i++) {
        struct pol_graph_stage *st = &g->stages[i];
        const struct pipe_stage *s = &p->stages[i];
        st->local = rep[i].local;
        st->why = stage_why(g, i);
        st->clearance = rep[i].clearance;
        st->clearance_from = stage_clearance_from(g, i);
        st->input = rep[i].input;
        st->flow_ok = rep[i].ok;
        memcpy(st->reason, rep[i].reason, sizeof(st->reason));
        st->over_endpoint = pol_stage_over_endpoint(p, i);
        if (st->over_endpoint)
            bh_str_put(st->conflict, sizeof(st->conflict),
                       "declares clearance %s above its endpoint '%s' (%s, %s)",
                       pol_label_name(p, s->clearance), p->endpoints[s->endpoint].name,
                       pol_label_name(p, g->endpoints[s->endpoint].clearance),
                       pol_clearance_from_words(g->endpoints[s->endpoint].clearance_from));
        st->ok = st->flow_ok && !st->over_endpoint;
        g->n_refused += !st->ok;
    }
    free(local);
    free(rep);
}

/* --- nodes and edges ------------------------------------------------------ */

struct builder {
    struct pol_graph *g;
    size_t cap_nodes, cap_edges;
};

static size_t field_node(struct builder *b, const char *name)
{
    struct pol_graph *g = b->g;
    for (size_t i = g->p->n_stages; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return i;
    g->nodes = bh_xgrow(g->nodes, &b->cap_nodes, g->n_nodes + 1, sizeof(*g->nodes));
    struct pol_graph_node *n = &g->nodes[g->n_nodes];
    int l = pipe_source_field_label(g->p, name);
    *n = (struct pol_graph_node){ .kind = POL_NODE_FIELD, .name = name, .label = l };
    if (l < 0) {
        n->label = top(g->p);
        n->bound_from = POL_BOUND_UNKNOWN;
    } else {
        /* The loader keeps one label per field (its own, else the source's):
         * equal to the default reads as the default. */
        n->bound_from = l == g->p->source.label ? POL_BOUND_SOURCE_DEFAULT : POL_BOUND_FIELD;
    }
    return g->n_nodes++;
}

/* The stage whose output a placeholder names, or -1. */
static long output_of(const struct pipeline *p, const char *field)
{
    const char *dot = strrchr(field, '.');
    if (!dot || strcmp(dot, ".output") != 0 || pipe_source_field_label(p, field) >= 0)
        return -1;
    for (size_t s = 0; s < p->n_stages; s++)
        if (strlen(p->stages[s].name) == (size_t)(dot - field) &&
            strncmp(field, p->stages[s].name, (size_t)(dot - field)) == 0)
            return (long)s;
    return -1;
}

static void edge_add(struct builder *b, size_t from, size_t to, int data)
{
    struct pol_graph *g = b->g;
    for (size_t k = 0; k < g->n_edges; k++)
        if (g->edges[k].from == from && g->edges[k].to == to)
            return;
    g->edges = bh_xgrow(g->edges, &b->cap_edges, g->n_edges + 1, sizeof(*g->edges));
    struct pol_graph_edge *e = &g->edges[g->n_edges++];
    const struct pol_graph_node *src = &g->nodes[from];
    *e = (struct pol_graph_edge){ .from = from, .to = to, .data = data, .bound = -1,
                                  .bound_from = POL_BOUND_NONE, .ok = 1 };
    if (!data)
        return;
    e->bound = src->label;
    e->bound_from = src->bound_from;
    e->ok = e->bound <= g->stages[to].clearance;
}

static void stage_edges(struct builder *b, size_t i)
{
    struct pol_graph *g = b->g;
    const struct pipe_stage *s = &g->p->stages[i];
    for (size_t k = 0; k < s->tpl.n_parts; k++) {
        if (!s->tpl.parts[k].is_field)
            continue;
        long up = output_of(g->p, s->tpl.parts[k].text);
        edge_add(b, up >= 0 ? (size_t)up : field_node(b, s->tpl.parts[k].text), i, 1);
    }
    for (size_t d = 0; d < s->n_deps; d++)
        edge_add(b, s->deps[d], i, 0);
}

static void edges_init(struct pol_graph *g)
{
    struct builder b = { .g = g };
    const struct pipeline *p = g->p;
    g->n_nodes = p->n_stages;
    b.cap_nodes = p->n_stages + 8;
    g->nodes = bh_xcalloc(b.cap_nodes, sizeof(*g->nodes));
    for (size_t i = 0; i < p->n_stages; i++)
        g->nodes[i] = (struct pol_graph_node){ .kind = POL_NODE_STAGE, .name = p->stages[i].name,
                                               .stage = i, .label = g->stages[i].input,
                                               .bound_from = POL_BOUND_STAGE_OUTPUT };
    for (size_t k = 0; k < p->n_stages; k++)
        stage_edges(&b, p->order[k]);
}

void pol_graph_init(struct pol_graph *g, const struct pipeline *p,
                    const struct pol_endpoint_fact *facts)
{
    memset(g, 0, sizeof(*g));
    g->p = p;
    endpoints_init(g, facts);
    stages_init(g);
    edges_init(g);
}

void pol_graph_release(struct pol_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->endpoints && i < g->p->n_endpoints; i++) {
        free(g->endpoints[i].host);
        free(g->endpoints[i].addr);
        free(g->endpoints[i].evidence);
    }
    free(g->endpoints);
    free(g->nodes);
    free(g->edges);
    free(g->stages);
    memset(g, 0, sizeof(*g));
}
