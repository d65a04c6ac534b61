/* policy/graph.c — builds the flow graph of a pipeline (see graph.h).
 *
 * The per-stage verdicts come from pol_check, the function the gate's rules
 * are written in, so the graph can never tell a different story than a run;
 * this file only adds what pol_check does not keep: the nodes and edges with
 * both bounds, where each bound and clearance comes from, the locality
 * reasons in words, and the one static configuration check (a stage cleared
 * above its endpoint). Sizes are small (stages × placeholders), so lookups
 * are linear. */
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
    [POL_WHY_NETWORK] = "declared local, in a trusted network",
    [POL_WHY_DECLARED_CLOUD] = "declared cloud",
    [POL_WHY_NOT_DECLARED] = "not declared",
    [POL_WHY_MODEL_COLON_CLOUD] = "model name ends in :cloud",
    [POL_WHY_MODEL_DASH_CLOUD] = "model name ends in -cloud",
    [POL_WHY_PUBLIC_REFUSED] = "declared local but public address (refused)",
    [POL_WHY_UNRESOLVED_REFUSED] = "declared local but host did not resolve (refused)",
    [POL_WHY_TRUSTED] = "declared local, listed in trusted_hosts",
    [POL_WHY_PRIVATE_REFUSED] = "declared local but private address in no trusted network "
                                "(refused)",
};

static const char *const clr_words[] = {
    [POL_CLR_STAGE] = "stage",
    [POL_CLR_ENDPOINT] = "endpoint",
    [POL_CLR_DEFAULT_LOCAL] = "default for local",
    [POL_CLR_DEFAULT_CLOUD] = "default for cloud",
    [POL_CLR_LOCALITY_REFUSED] = "locality refused",
    [POL_CLR_CLOUD_MODEL] = "cloud model on a local endpoint",
};

static const char *const bound_words[] = {
    [POL_BOUND_FIELD] = "field",
    [POL_BOUND_SOURCE_DEFAULT] = "source default",
    [POL_BOUND_STAGE_OUTPUT] = "stage output",
    [POL_BOUND_UNKNOWN] = "unknown",
    [POL_BOUND_NONE] = "none",
    [POL_BOUND_RULES] = "path rules",
    [POL_BOUND_DETECTORS] = "detectors",
    [POL_BOUND_DECLASSIFIED] = "declassified",
    [POL_BOUND_TOOL] = "tool",
    [POL_BOUND_REROUTE] = "reroute",
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
               : f->addr_kind == POL_ADDR_PRIVATE  ? POL_WHY_PRIVATE_REFUSED
                                                   : POL_WHY_PUBLIC_REFUSED;
    if (f->addr_kind == POL_ADDR_TRUSTED)
        return POL_WHY_TRUSTED;
    return f->addr_kind == POL_ADDR_NETWORK ? POL_WHY_NETWORK : POL_WHY_LOOPBACK;
}

static void endpoints_init(struct pol_graph *g, const struct pol_endpoint_fact *facts)
{
    const struct pipeline *p = g->p;
    g->endpoints = bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*g->endpoints));
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct pol_endpoint_fact *f = &facts[i];
        struct pol_graph_endpoint *e = &g->endpoints[i];
        e->name = p->endpoints[i].name;
        e->host_name = pipe_host_name(&p->endpoints[i]);
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

/* The host of ep's pool that decides the pool's locality (pol_pool_worst). */
static size_t pool_worst(const struct pol_graph *g, size_t ep)
{
    const struct pipe_endpoint *e = &g->p->endpoints[ep];
    for (size_t h = 0; e->n_pool > 1 && h < e->n_pool; h++)
        if (!g->endpoints[e->pool + h].local)
            return e->pool + h;
    return ep;
}

static enum pol_locality_why stage_why(const struct pol_graph *g, size_t i)
{
    const struct pipe_stage *s = &g->p->stages[i];
    const struct pol_graph_endpoint *e = &g->endpoints[pool_worst(g, s->endpoint)];
    if (!e->local || !pol_model_is_cloud(s->model))
        return e->why;
    const char *tag = strrchr(s->model, ':');
    return tag && strcasecmp(tag + 1, "cloud") == 0 ? POL_WHY_MODEL_COLON_CLOUD
                                                    : POL_WHY_MODEL_DASH_CLOUD;
}

/* Mirrors the branches of pol_stage_clearance_facts to name the one that
 * decided: a cloud model on a local endpoint is capped at the bottom label
 * whatever the stage declares. */
static enum pol_clearance_from stage_clearance_from(const struct pol_graph *g, size_t i)
{
    const struct pipe_stage *s = &g->p->stages[i];
    const struct pol_graph_endpoint *e = &g->endpoints[s->endpoint];
    if (e->declared_local && !e->local)
        return POL_CLR_LOCALITY_REFUSED;
    if (e->local && pol_model_is_cloud(s->model))
        return POL_CLR_CLOUD_MODEL;
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
        st->input_detect = rep[i].input_detect;
        st->output = rep[i].output;
        st->output_detect = rep[i].output_detect;
        st->guarded = rep[i].guarded;
        st->declassified = rep[i].declassified;
        st->flow_ok = rep[i].ok;
        memcpy(st->reason, rep[i].reason, sizeof(st->reason));
        memcpy(st->note, rep[i].note, sizeof(st->note));
        st->over_endpoint = pol_stage_over_endpoint(p, i);
        if (st->over_endpoint)
            bh_str_put(st->conflict, sizeof(st->conflict),
                       "declares clearance %s above its endpoint '%s' (%s, %s)",
                       pol_label_name(p, s->clearance), p->endpoints[s->endpoint].name,
                       pol_label_name(p, g->endpoints[s->endpoint].clearance),
                       pol_clearance_from_words(g->endpoints[s->endpoint].clearance_from));
        st->ok = st->flow_ok && !st->over_endpoint;
        if (!st->ok)
            st->note[0] = '\0'; /* a refused stage does not run: nothing to note */
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

/* Where a read's declared bound comes from when it is not a stage's output. */
static enum pol_bound_from field_from(const struct pipeline *p, size_t stage, const char *name)
{
    const char *src = pol_read_source(p, stage, name);
    int l = src ? pipe_source_field_label(p, src) : -1;
    if (l < 0)
        return POL_BOUND_UNKNOWN;
    if (pol_field_bound(p, stage, src, NULL) > l)
        return POL_BOUND_RULES;
    /* The loader keeps one label per field (its own, else the source's):
     * equal to the default reads as the default. */
    return l == p->source.label ? POL_BOUND_SOURCE_DEFAULT : POL_BOUND_FIELD;
}

static size_t node_find(const struct pol_graph *g, enum pol_node_kind kind, const char *name)
{
    for (size_t i = g->p->n_stages; i < g->n_nodes; i++)
        if (g->nodes[i].kind == kind && strcmp(g->nodes[i].name, name) == 0)
            return i;
    return (size_t)-1;
}

static struct pol_graph_node *node_new(struct builder *b)
{
    struct pol_graph *g = b->g;
    g->nodes = bh_xgrow(g->nodes, &b->cap_nodes, g->n_nodes + 1, sizeof(*g->nodes));
    memset(&g->nodes[g->n_nodes], 0, sizeof(g->nodes[0]));
    return &g->nodes[g->n_nodes++];
}

/* The node of a field read by stage `stage`; its label is the bound of its
 * first read (a for_each element has the same one in every stage that
 * provides it). */
static size_t field_node(struct builder *b, size_t stage, const char *name)
{
    struct pol_graph *g = b->g;
    size_t at = node_find(g, POL_NODE_FIELD, name);
    if (at != (size_t)-1)
        return at;
    struct pol_graph_node *n = node_new(b);
    n->kind = POL_NODE_FIELD;
    n->name = name;
    n->label = pol_field_bound(g->p, stage, name, NULL);
    n->label_detect = pol_label_join(g->p, n->label, g->detect_top);
    n->bound_from = field_from(g->p, stage, name);
    return g->n_nodes - 1;
}

static size_t tool_node(struct builder *b, const char *tool)
{
    struct pol_graph *g = b->g;
    char *name = bh_xasprintf("tool:%s", tool);
    size_t at = node_find(g, POL_NODE_TOOL, name);
    if (at != (size_t)-1) {
        free(name);
        return at;
    }
    struct pol_graph_node *n = node_new(b);
    n->kind = POL_NODE_TOOL;
    n->name = name; /* owned: freed by pol_graph_release */
    n->label = pol_tool_bound(g->p, tool);
    n->label_detect = pol_tool_bound_detect(g->p, tool);
    n->bound_from = POL_BOUND_TOOL;
    return g->n_nodes - 1;
}

static int edge_exists(const struct pol_graph *g, const struct pol_graph_edge *e)
{
    for (size_t k = 0; k < g->n_edges; k++) {
        const struct pol_graph_edge *x = &g->edges[k];
        if (x->from != e->from || x->to != e->to)
            continue;
        if (e->kind == POL_EDGE_AFTER) /* any edge already orders the two */
            return 1;
        if (x->kind == e->kind &&
            (x->via == e->via || (x->via && e->via && strcmp(x->via, e->via) == 0)))
            return 1;
    }
    return 0;
}

static void edge_add(struct builder *b, const struct pol_graph_edge *e)
{
    struct pol_graph *g = b->g;
    if (edge_exists(g, e))
        return;
    g->edges = bh_xgrow(g->edges, &b->cap_edges, g->n_edges + 1, sizeof(*g->edges));
    g->edges[g->n_edges++] = *e;
}

/* A data edge into stage i, with both bounds and the verdict of each. */
static void data_edge(struct builder *b, size_t from, size_t i, const char *via, int bound,
                      enum pol_bound_from bound_from, int detect, enum pol_bound_from detect_from)
{
    const struct pol_graph_stage *st = &b->g->stages[i];
    struct pol_graph_edge e = {.from = from,
                               .to = i,
                               .kind = POL_EDGE_DATA,
                               .data = 1,
                               .via = via,
                               .bound = bound,
                               .bound_from = bound_from,
                               .bound_detect = detect,
                               .detect_from = detect_from,
                               .ok = bound <= st->clearance,
                               .ok_detect = detect <= st->clearance};
    edge_add(b, &e);
}

static void read_edge(struct builder *b, size_t i, const char *name)
{
    struct pol_graph *g = b->g;
    long up = pol_read_upstream(g->p, i, name);
    if (up >= 0) {
        const struct pol_graph_stage *u = &g->stages[up];
        data_edge(b, (size_t)up, i, name, u->output,
                  u->declassified ? POL_BOUND_DECLASSIFIED : POL_BOUND_STAGE_OUTPUT,
                  u->output_detect, POL_BOUND_STAGE_OUTPUT);
        return;
    }
    size_t n = field_node(b, i, name);
    int bound = pol_field_bound(g->p, i, name, NULL);
    int detect = pol_label_join(g->p, bound, g->detect_top);
    enum pol_bound_from from = field_from(g->p, i, name);
    data_edge(b, n, i, name, bound, from, detect, detect > bound ? POL_BOUND_DETECTORS : from);
}

static void reroute_edge(struct builder *b, size_t i)
{
    struct pol_graph *g = b->g;
    const struct pipe_stage *s = &g->p->stages[i];
    long t = s->reroute;
    if (s->on_sensitive != PIPE_ONS_REROUTE || t < 0 || (size_t)t >= g->p->n_stages ||
        (size_t)t == i)
        return;
    const struct pol_graph_stage *o = &g->stages[i], *tg = &g->stages[t];
    int ok = o->input_detect <= tg->clearance && (!o->local || tg->local);
    struct pol_graph_edge e = {.from = i,
                               .to = (size_t)t,
                               .kind = POL_EDGE_REROUTE,
                               .bound = o->input,
                               .bound_from = POL_BOUND_REROUTE,
                               .bound_detect = o->input_detect,
                               .detect_from = POL_BOUND_REROUTE,
                               .ok = ok,
                               .ok_detect = ok};
    edge_add(b, &e);
}

static void stage_edges(struct builder *b, size_t i)
{
    struct pol_graph *g = b->g;
    const struct pipe_stage *s = &g->p->stages[i];
    size_t n = 0;
    const char **reads = pol_stage_reads(g->p, i, &n);
    for (size_t k = 0; k < n; k++)
        read_edge(b, i, reads[k]);
    free(reads);
    for (size_t k = 0; k < s->n_tools; k++) {
        size_t t = tool_node(b, s->tools[k]);
        const struct pol_graph_node *tn = &g->nodes[t];
        data_edge(b, t, i, s->tools[k], tn->label, POL_BOUND_TOOL, tn->label_detect,
                  tn->label_detect > tn->label ? POL_BOUND_DETECTORS : POL_BOUND_TOOL);
    }
    for (size_t d = 0; d < s->n_deps; d++) {
        struct pol_graph_edge e = {.from = s->deps[d],
                                   .to = i,
                                   .kind = POL_EDGE_AFTER,
                                   .bound = -1,
                                   .bound_from = POL_BOUND_NONE,
                                   .bound_detect = -1,
                                   .detect_from = POL_BOUND_NONE,
                                   .ok = 1,
                                   .ok_detect = 1};
        edge_add(b, &e);
    }
    reroute_edge(b, i);
}

static void edges_init(struct pol_graph *g)
{
    struct builder b = {.g = g};
    const struct pipeline *p = g->p;
    g->n_nodes = p->n_stages;
    b.cap_nodes = p->n_stages + 8;
    g->nodes = bh_xcalloc(b.cap_nodes, sizeof(*g->nodes));
    for (size_t i = 0; i < p->n_stages; i++)
        g->nodes[i] = (struct pol_graph_node){.kind = POL_NODE_STAGE,
                                              .name = p->stages[i].name,
                                              .stage = i,
                                              .label = g->stages[i].input,
                                              .label_detect = g->stages[i].input_detect,
                                              .bound_from = POL_BOUND_STAGE_OUTPUT};
    for (size_t k = 0; k < p->n_stages; k++)
        stage_edges(&b, p->order[k]);
}

static void detectors_init(struct pol_graph *g)
{
    size_t n = pol_detectors_enabled(g->p, NULL, NULL, 0);
    g->detectors = bh_xcalloc(n ? n : 1, sizeof(*g->detectors));
    g->detector_labels = bh_xcalloc(n ? n : 1, sizeof(*g->detector_labels));
    g->n_detectors = pol_detectors_enabled(g->p, g->detectors, g->detector_labels, n);
    g->detect_top = pol_detectors_top(g->p);
}

void pol_graph_init(struct pol_graph *g, const struct pipeline *p,
                    const struct pol_endpoint_fact *facts)
{
    memset(g, 0, sizeof(*g));
    g->p = p;
    detectors_init(g);
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
    for (size_t i = 0; g->nodes && i < g->n_nodes; i++)
        if (g->nodes[i].kind == POL_NODE_TOOL)
            free((char *)g->nodes[i].name);
    free(g->endpoints);
    free(g->nodes);
    free(g->edges);
    free(g->stages);
    free(g->detectors);
    free(g->detector_labels);
    memset(g, 0, sizeof(*g));
}
