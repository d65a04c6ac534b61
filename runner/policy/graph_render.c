/* policy/graph_render.c — the flow graph as text (for people at a
 * terminal), JSON (for tools; the schema is documented in pipelines/README.md
 * and only grows), Graphviz dot (for a picture) and Markdown (a data-flow
 * statement for a privacy review).
 *
 * Every renderer reads only the graph and the stage declarations it
 * summarises (on_sensitive, declassify, for_each), never the network facts
 * or the verdict logic, so the four can never disagree with each other or
 * with the verdict. JSON is built as a jansson tree (checked through
 * util/bh_json) and written by jansson, a line per node and edge; the text
 * formats pass their strings through one escaper per output language. Output depends only
 * on the graph: the same pipeline gives the same bytes. */
#include "policy/graph.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "util/bh_invariant.h"
#include "util/bh_json.h"
#include "util/bh_str.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"

static const char *const format_names[] = {
    [POL_FORMAT_TEXT] = "text",
    [POL_FORMAT_JSON] = "json",
    [POL_FORMAT_DOT] = "dot",
    [POL_FORMAT_MD] = "md",
};
#define N_FORMATS BH_NELEM(format_names)

int pol_format_find(const char *name)
{
    for (size_t i = 0; name && i < N_FORMATS; i++)
        if (strcmp(name, format_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *pol_format_names(void)
{
    return "text, json, dot, md";
}

static const char *label(const struct pol_graph *g, int l)
{
    return pol_label_name(g->p, l);
}

static const struct pipe_stage *pstage(const struct pol_graph *g, size_t i)
{
    return &g->p->stages[i];
}

static const struct pol_graph_endpoint *stage_ep(const struct pol_graph *g, size_t i)
{
    return &g->endpoints[pstage(g, i)->endpoint];
}

static const char *const ons_words[] = {
    [PIPE_ONS_FAIL] = "fail",
    [PIPE_ONS_SKIP] = "skip",
    [PIPE_ONS_REROUTE] = "reroute",
};
static const char *const kind_words[] = {
    [PIPE_KIND_CHAT] = "chat",
    [PIPE_KIND_AGENT] = "agent",
    [PIPE_KIND_REDUCE] = "reduce",
};

static const char *ons_name(const struct pipe_stage *s)
{
    return (unsigned)s->on_sensitive < 3 ? ons_words[s->on_sensitive] : "fail";
}

static const char *kind_name(const struct pipe_stage *s)
{
    return (unsigned)s->kind < 3 ? kind_words[s->kind] : "chat";
}

/* The stage a stage reroutes to, or -1. */
static long reroute_of(const struct pol_graph *g, size_t i)
{
    const struct pipe_stage *s = pstage(g, i);
    if (s->on_sensitive != PIPE_ONS_REROUTE || s->reroute < 0 ||
        (size_t)s->reroute >= g->p->n_stages)
        return -1;
    return s->reroute;
}

/* The first stage (in run order) that reroutes to stage i, or -1. */
static long standby_for(const struct pol_graph *g, size_t i)
{
    for (size_t k = 0; k < g->p->n_stages; k++)
        if (reroute_of(g, g->p->order[k]) == (long)i && g->p->order[k] != i)
            return (long)g->p->order[k];
    return -1;
}

/* "no run of 8 tokens copied from its input, no rare token copied from it, no
 * detector hit, code removed":
 * the guards of a declassification, in words. */
static void guards_words(const struct pipe_declassify *d, char *buf, size_t size)
{
    char tokens[64] = "", chars[48] = "";
    if (d->no_verbatim_tokens > 0)
        bh_str_put(tokens, sizeof(tokens), "no run of %d tokens copied from its input, ",
                   d->no_verbatim_tokens);
    if (d->max_chars > 0)
        bh_str_put(chars, sizeof(chars), ", at most %ld characters", d->max_chars);
    bh_str_put(buf, size, "%s%s%s%s%s%s", tokens,
               d->no_rare_tokens ? "no rare token copied from it, " : "",
               d->detectors ? "no detector hit" : "detector hits allowed",
               d->redact_code ? ", code removed first" : "",
               d->redact_paths ? ", file paths replaced first" : "", chars);
}

/* Where a bound comes from, in words, for the text format. */
static void from_words(const struct pol_graph *g, const struct pol_graph_edge *e, char *buf,
                       size_t size)
{
    const struct pol_graph_node *n = &g->nodes[e->from];
    switch (e->bound_from) {
    case POL_BOUND_FIELD: bh_str_put(buf, size, "the field's declared label"); break;
    case POL_BOUND_SOURCE_DEFAULT: bh_str_put(buf, size, "the source default"); break;
    case POL_BOUND_RULES:
        bh_str_put(buf, size, "the field's label joined with every path rule");
        break;
    case POL_BOUND_STAGE_OUTPUT: bh_str_put(buf, size, "the output of stage %s", n->name); break;
    case POL_BOUND_DECLASSIFIED:
        bh_str_put(buf, size, "the output of stage %s, declassified", n->name);
        break;
    case POL_BOUND_TOOL:
        bh_str_put(buf, size, "what the tool returns: as %s", pol_tool_source(e->via));
        break;
    default: bh_str_put(buf, size, "nothing known: counts as the top label"); break;
    }
}

/* --- text ------------------------------------------------------------------ */

#define TEXT_INDENT "                      "

static void text_edge(FILE *f, const struct pol_graph *g, const struct pol_graph_edge *e)
{
    const struct pol_graph_node *n = &g->nodes[e->from];
    if (e->kind == POL_EDGE_AFTER) {
        fprintf(f, TEXT_INDENT "after %s (ordering only, no data)\n", n->name);
        return;
    }
    if (e->kind != POL_EDGE_DATA)
        return; /* a reroute is shown with its origin's on_sensitive */
    char from[160];
    from_words(g, e, from, sizeof(from));
    fprintf(f, TEXT_INDENT "%s %s: %s (%s); with detectors %s%s\n",
            n->kind == POL_NODE_TOOL ? "tool" : "reads", e->via, label(g, e->bound), from,
            label(g, e->bound_detect),
            !e->ok          ? " — above its clearance"
            : !e->ok_detect ? " — above its clearance when a detector hits"
                            : "");
}

static void text_runs(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pipe_stage *s = pstage(g, i);
    long origin = standby_for(g, i);
    if (s->kind != PIPE_KIND_CHAT || s->scope != PIPE_SCOPE_ITEM || s->for_each)
        fprintf(f, TEXT_INDENT "runs: kind %s, scope %s%s%s\n", kind_name(s),
                s->scope == PIPE_SCOPE_BATCH ? "batch (over every item)" : "item",
                s->for_each ? ", a task per element of " : "", s->for_each ? s->for_each : "");
    if (origin >= 0)
        fprintf(f,
                TEXT_INDENT "standby: runs only in place of stage %s, for items above its "
                            "clearance\n",
                pstage(g, (size_t)origin)->name);
}

static void text_policy(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pipe_stage *s = pstage(g, i);
    long t = reroute_of(g, i);
    if (t >= 0)
        fprintf(f, TEXT_INDENT "on_sensitive: reroute to stage %s (%s, clearance %s)\n",
                pstage(g, (size_t)t)->name, g->stages[t].local ? "local" : "cloud",
                label(g, g->stages[t].clearance));
    else
        fprintf(f, TEXT_INDENT "on_sensitive: %s%s\n", ons_name(s),
                s->on_sensitive == PIPE_ONS_SKIP      ? " (an item above its clearance is withheld)"
                : s->on_sensitive == PIPE_ONS_REROUTE ? " (no valid target)"
                                                      : " (an item above its clearance is "
                                                        "refused, exit 3)");
    if (!s->declassify.enabled) {
        fprintf(f, TEXT_INDENT "declassify: none\n");
        return;
    }
    char guards[256];
    guards_words(&s->declassify, guards, sizeof(guards));
    fprintf(f, TEXT_INDENT "declassify: to %s when its guards pass (%s)\n",
            label(g, s->declassify.to), guards);
}

static void text_stage(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_stage *st = &g->stages[i];
    fprintf(f, "  %-12s %-6s endpoint %s, model %s, clearance %s (%s)\n", pstage(g, i)->name,
            st->local ? "local" : "cloud", stage_ep(g, i)->name, pstage(g, i)->model,
            label(g, st->clearance), pol_clearance_from_words(st->clearance_from));
    fprintf(f, TEXT_INDENT "locality: %s\n", pol_locality_words(st->why));
    text_runs(f, g, i);
    text_policy(f, g, i);
    for (size_t k = 0; k < g->n_edges; k++)
        if (g->edges[k].to == i)
            text_edge(f, g, &g->edges[k]);
    fprintf(f, TEXT_INDENT "input %s (with detectors %s), output %s%s (with detectors %s): %s\n",
            label(g, st->input), label(g, st->input_detect), label(g, st->output),
            st->declassified ? ", declassified" : "", label(g, st->output_detect),
            st->ok ? "ok" : "REFUSED");
    if (!st->flow_ok)
        fprintf(f, TEXT_INDENT "refused: %s\n", st->reason);
    if (st->over_endpoint)
        fprintf(f, TEXT_INDENT "refused: %s\n", st->conflict);
    if (st->note[0])
        fprintf(f, TEXT_INDENT "note: %s\n", st->note);
}

static void text_labelling(FILE *f, const struct pol_graph *g)
{
    const struct pipe_source *s = &g->p->source;
    fputs("path rules:", f);
    for (size_t i = 0; i < s->n_rules; i++)
        fprintf(f, "%s %s → %s", i ? ";" : "", s->rules[i].glob, label(g, s->rules[i].label));
    fputs(s->n_rules ? "\n" : " none\n", f);
    fputs("detectors:", f);
    for (size_t i = 0; i < g->n_detectors; i++)
        fprintf(f, "%s %s", i ? "," : "", g->detectors[i]);
    if (g->n_detectors)
        fprintf(f, " (a hit raises a value up to %s)\n", label(g, g->detect_top));
    else
        fputs(" none (the detector bounds equal the declared ones)\n", f);
}

static size_t n_notes(const struct pol_graph *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->p->n_stages; i++)
        n += g->stages[i].note[0] != '\0';
    return n;
}

static void render_text(FILE *f, const struct pol_graph *g)
{
    const struct pipeline *p = g->p;
    fprintf(f, "pipeline '%s' (%s)\nlabels:", p->name, p->file);
    for (size_t i = 0; i < p->n_labels; i++)
        fprintf(f, "%s %s", i ? " <" : "", p->labels[i]);
    fputc('\n', f);
    text_labelling(f, g);
    fprintf(f, "endpoints:\n");
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct pol_graph_endpoint *e = &g->endpoints[i];
        fprintf(f, "  %-12s %-6s %s (%s)\n", e->host_name, e->local ? "local" : "cloud", e->url,
                e->evidence);
        fprintf(f, TEXT_INDENT "locality: %s; clearance %s (%s)\n", pol_locality_words(e->why),
                label(g, e->clearance), pol_clearance_from_words(e->clearance_from));
    }
    fprintf(f, "stages (in run order):\n");
    for (size_t k = 0; k < p->n_stages; k++)
        text_stage(f, g, p->order[k]);
    size_t notes = n_notes(g);
    if (g->n_refused)
        fputs("check: REFUSED — see the stages marked above\n", f);
    else if (notes)
        fprintf(f,
                "check: ok — no stage can receive data above its clearance; %zu note%s above "
                "say%s what on_sensitive does at run time\n",
                notes, notes == 1 ? "" : "s", notes == 1 ? "s" : "");
    else
        fputs("check: ok — no stage can receive data above its clearance\n", f);
}

/* --- JSON ------------------------------------------------------------------ */

/* A string value; NULL as "" (the schema's strings are never null unless it
 * says so). Text that is not UTF-8 (a file name from the command line) is
 * decoded lossily: jansson refuses it, and the graph must still be written. */
static json_t *jstr(const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (!v) {
        char *t = bh_utf8_lossy_dup(s, strlen(s), NULL, NULL);
        v = json_string(t);
        free(t);
    }
    return v;
}

/* A string that may be absent: null then. */
static json_t *jopt(const char *s)
{
    return s ? jstr(s) : json_null();
}

static json_t *jlabel(const struct pol_graph *g, int l)
{
    return l < 0 ? json_null() : jstr(label(g, l));
}

static json_t *jstrs(const char *const *v, size_t n, int *bad)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        bh_json_push(a, jstr(v[i]), bad);
    return a;
}

static json_t *json_endpoint(const struct pol_graph *g, size_t i, int *bad)
{
    const struct pol_graph_endpoint *e = &g->endpoints[i];
    json_t *o = json_object();
    bh_json_set(o, "name", jstr(e->host_name), bad);
    bh_json_set(o, "url", jstr(e->url), bad);
    bh_json_set(o, "host", jstr(e->host), bad);
    bh_json_set(o, "port", json_integer(e->port), bad);
    bh_json_set(o, "address", jstr(e->addr), bad);
    bh_json_set(o, "declared_local", json_boolean(e->declared_local), bad);
    bh_json_set(o, "local", json_boolean(e->local), bad);
    bh_json_set(o, "locality_reason", jstr(pol_locality_words(e->why)), bad);
    bh_json_set(o, "evidence", jstr(e->evidence), bad);
    bh_json_set(o, "clearance", jlabel(g, e->clearance), bad);
    bh_json_set(o, "clearance_from", jstr(pol_clearance_from_words(e->clearance_from)), bad);
    return o;
}

static json_t *json_declassify(const struct pol_graph *g, const struct pipe_declassify *d, int *bad)
{
    if (!d->enabled)
        return json_null();
    json_t *o = json_object(), *redact = json_array();
    if (d->redact_code)
        bh_json_push(redact, json_string("code"), bad);
    if (d->redact_paths)
        bh_json_push(redact, json_string("paths"), bad);
    bh_json_set(o, "to", jlabel(g, d->to), bad);
    bh_json_set(o, "no_verbatim_tokens", json_integer(d->no_verbatim_tokens), bad);
    bh_json_set(o, "no_rare_tokens", json_boolean(d->no_rare_tokens), bad);
    bh_json_set(o, "detectors", json_boolean(d->detectors), bad);
    bh_json_set(o, "redact", redact, bad);
    bh_json_set(o, "max_chars", json_integer(d->max_chars), bad);
    return o;
}

/* What the stage declares beyond its endpoint and model, set on o. */
static void json_stage_decl(json_t *o, const struct pol_graph *g, size_t i, int *bad)
{
    const struct pipe_stage *s = pstage(g, i);
    long t = reroute_of(g, i);
    bh_json_set(o, "kind", jstr(kind_name(s)), bad);
    bh_json_set(o, "scope", jstr(s->scope == PIPE_SCOPE_BATCH ? "batch" : "item"), bad);
    bh_json_set(o, "for_each", jopt(s->for_each), bad);
    bh_json_set(o, "tools", jstrs((const char *const *)s->tools, s->n_tools, bad), bad);
    bh_json_set(o, "on_sensitive", jstr(ons_name(s)), bad);
    bh_json_set(o, "reroute", t >= 0 ? jstr(pstage(g, (size_t)t)->name) : json_null(), bad);
    bh_json_set(o, "standby", json_boolean(standby_for(g, i) >= 0), bad);
    bh_json_set(o, "declassify", json_declassify(g, &s->declassify, bad), bad);
}

/* What the check found for the stage, set on o. */
static void json_stage_flow(json_t *o, const struct pol_graph *g, size_t i, int *bad)
{
    const struct pol_graph_stage *st = &g->stages[i];
    json_t *refusals = json_array(), *notes = json_array();
    if (!st->flow_ok)
        bh_json_push(refusals, jstr(st->reason), bad);
    if (st->over_endpoint)
        bh_json_push(refusals, jstr(st->conflict), bad);
    if (st->note[0])
        bh_json_push(notes, jstr(st->note), bad);
    bh_json_set(o, "input", jlabel(g, st->input), bad);
    bh_json_set(o, "input_detect", jlabel(g, st->input_detect), bad);
    bh_json_set(o, "output", jlabel(g, st->output), bad);
    bh_json_set(o, "output_detect", jlabel(g, st->output_detect), bad);
    bh_json_set(o, "declassified", json_boolean(st->declassified), bad);
    bh_json_set(o, "guarded", json_boolean(st->guarded), bad);
    bh_json_set(o, "ok", json_boolean(st->ok), bad);
    bh_json_set(o, "refusals", refusals, bad);
    bh_json_set(o, "notes", notes, bad);
}

static json_t *json_stage(const struct pol_graph *g, size_t i, int *bad)
{
    const struct pol_graph_stage *st = &g->stages[i];
    json_t *o = json_object();
    bh_json_set(o, "name", jstr(pstage(g, i)->name), bad);
    bh_json_set(o, "endpoint", jstr(stage_ep(g, i)->name), bad);
    bh_json_set(o, "model", jstr(pstage(g, i)->model), bad);
    bh_json_set(o, "local", json_boolean(st->local), bad);
    bh_json_set(o, "locality_reason", jstr(pol_locality_words(st->why)), bad);
    bh_json_set(o, "declared_clearance", jlabel(g, pstage(g, i)->clearance), bad);
    bh_json_set(o, "clearance", jlabel(g, st->clearance), bad);
    bh_json_set(o, "clearance_from", jstr(pol_clearance_from_words(st->clearance_from)), bad);
    json_stage_decl(o, g, i, bad);
    json_stage_flow(o, g, i, bad);
    return o;
}

static const char *const edge_kind_words[] = {
    [POL_EDGE_DATA] = "data",
    [POL_EDGE_AFTER] = "after",
    [POL_EDGE_REROUTE] = "reroute",
};
static const char *const node_kind_words[] = {
    [POL_NODE_STAGE] = "stage",
    [POL_NODE_FIELD] = "field",
    [POL_NODE_TOOL] = "tool",
};

static json_t *json_edge(const struct pol_graph *g, size_t k, int *bad)
{
    const struct pol_graph_edge *e = &g->edges[k];
    const struct pol_graph_node *n = &g->nodes[e->from];
    json_t *o = json_object();
    bh_json_set(o, "from", jstr(n->name), bad);
    bh_json_set(o, "from_kind", jstr(node_kind_words[n->kind]), bad);
    bh_json_set(o, "to", jstr(g->nodes[e->to].name), bad);
    bh_json_set(o, "kind", jstr(edge_kind_words[e->kind]), bad);
    bh_json_set(o, "via", jopt(e->via), bad);
    bh_json_set(o, "data", json_boolean(e->data), bad);
    bh_json_set(o, "bound", jlabel(g, e->bound), bad);
    bh_json_set(o, "bound_from", jstr(pol_bound_from_words(e->bound_from)), bad);
    bh_json_set(o, "bound_detect", jlabel(g, e->bound_detect), bad);
    bh_json_set(o, "bound_detect_from", jstr(pol_bound_from_words(e->detect_from)), bad);
    bh_json_set(o, "ok", json_boolean(e->ok), bad);
    bh_json_set(o, "ok_detect", json_boolean(e->ok_detect), bad);
    return o;
}

/* Field or tool nodes (the "fields" and "tools" members). */
static json_t *json_nodes(const struct pol_graph *g, enum pol_node_kind kind, int *bad)
{
    json_t *a = json_array();
    for (size_t i = g->p->n_stages; i < g->n_nodes; i++) {
        const struct pol_graph_node *n = &g->nodes[i];
        if (n->kind != kind)
            continue;
        const char *name = kind == POL_NODE_TOOL ? n->name + strlen("tool:") : n->name;
        json_t *o = json_object();
        bh_json_set(o, "name", jstr(name), bad);
        if (kind == POL_NODE_TOOL)
            bh_json_set(o, "as", jstr(pol_tool_source(name)), bad);
        bh_json_set(o, "label", jlabel(g, n->label), bad);
        bh_json_set(o, "label_from", jstr(pol_bound_from_words(n->bound_from)), bad);
        bh_json_set(o, "label_detect", jlabel(g, n->label_detect), bad);
        bh_json_push(a, o, bad);
    }
    return a;
}

/* The path rules and the detectors (the "rules" and "detectors" members). */
static void json_labelling(json_t *doc, const struct pol_graph *g, int *bad)
{
    const struct pipe_source *s = &g->p->source;
    json_t *rules = json_array(), *det = json_object();
    for (size_t i = 0; i < s->n_rules; i++) {
        json_t *r = json_object();
        bh_json_set(r, "path", jstr(s->rules[i].glob), bad);
        bh_json_set(r, "label", jlabel(g, s->rules[i].label), bad);
        bh_json_push(rules, r, bad);
    }
    bh_json_set(det, "ids", jstrs(g->detectors, g->n_detectors, bad), bad);
    bh_json_set(det, "label", jlabel(g, g->n_detectors ? g->detect_top : -1), bad);
    bh_json_set(doc, "rules", rules, bad);
    bh_json_set(doc, "detectors", det, bad);
}

static json_t *json_verdict(const struct pol_graph *g, int *bad)
{
    json_t *o = json_object(), *refused = json_array(), *noted = json_array();
    for (size_t k = 0; k < g->p->n_stages; k++) {
        size_t i = g->p->order[k];
        if (!g->stages[i].ok)
            bh_json_push(refused, jstr(pstage(g, i)->name), bad);
        if (g->stages[i].note[0])
            bh_json_push(noted, jstr(pstage(g, i)->name), bad);
    }
    bh_json_set(o, "ok", json_boolean(!g->n_refused), bad);
    bh_json_set(o, "refused", refused, bad);
    bh_json_set(o, "noted", noted, bad);
    return o;
}

/* The graph as one JSON document, its members in the schema's order. */
static json_t *json_graph(const struct pol_graph *g, int *bad)
{
    const struct pipeline *p = g->p;
    json_t *doc = json_object(), *pipe = json_object(), *eps = json_array(), *stages = json_array(),
           *edges = json_array();
    bh_json_set(pipe, "name", jstr(p->name), bad);
    bh_json_set(pipe, "file", jstr(p->file), bad);
    for (size_t i = 0; i < p->n_endpoints; i++)
        bh_json_push(eps, json_endpoint(g, i, bad), bad);
    for (size_t k = 0; k < p->n_stages; k++)
        bh_json_push(stages, json_stage(g, p->order[k], bad), bad);
    for (size_t k = 0; k < g->n_edges; k++)
        bh_json_push(edges, json_edge(g, k, bad), bad);
    bh_json_set(doc, "schema", json_string("bulkhead-check/1"), bad);
    bh_json_set(doc, "pipeline", pipe, bad);
    bh_json_set(doc, "labels", jstrs((const char *const *)p->labels, p->n_labels, bad), bad);
    json_labelling(doc, g, bad);
    bh_json_set(doc, "endpoints", eps, bad);
    bh_json_set(doc, "fields", json_nodes(g, POL_NODE_FIELD, bad), bad);
    bh_json_set(doc, "tools", json_nodes(g, POL_NODE_TOOL, bad), bad);
    bh_json_set(doc, "stages", stages, bad);
    bh_json_set(doc, "edges", edges, bad);
    bh_json_set(doc, "verdict", json_verdict(g, bad), bad);
    return doc;
}

/* The members written one entry per line (the graph's nodes and edges, so
 * that a diff of two graphs shows the entry that changed); every other
 * member, and each entry, is written on one line. */
static int one_per_line(const char *key)
{
    static const char *const keys[] = {"endpoints", "fields", "tools", "stages", "edges"};
    for (size_t i = 0; i < BH_NELEM(keys); i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* doc in the layout above: jansson writes each value (flags 0: one line, ", "
 * and ": " between parts); only the line breaks are placed here. The keys
 * are this file's own ASCII names. */
static void write_graph(FILE *f, json_t *doc)
{
    const char *key = NULL;
    json_t *v = NULL;
    int first = 1;
    fputc('{', f);
    json_object_foreach(doc, key, v)
    {
        fprintf(f, "%s\n  \"%s\": ", first ? "" : ",", key);
        first = 0;
        if (!one_per_line(key) || !json_is_array(v)) {
            bh_json_dump_file(f, v, JSON_ENCODE_ANY);
            continue;
        }
        size_t i = 0;
        json_t *e = NULL;
        fputs("[\n", f);
        json_array_foreach(v, i, e)
        {
            fputs(i ? ",\n    " : "    ", f);
            bh_json_dump_file(f, e, 0);
        }
        fputs(json_array_size(v) ? "\n  ]" : "  ]", f);
    }
    fputs("\n}\n", f);
}

json_t *pol_graph_json(const struct pol_graph *g)
{
    int bad = 0;
    json_t *doc = json_graph(g, &bad);
    /* Every string is UTF-8 by now (jstr), so only a failed allocation is left. */
    BH_INVARIANT(!bad, "the flow graph's JSON document is built whole");
    return doc;
}

void pol_graph_write_json(FILE *f, json_t *doc)
{
    write_graph(f, doc);
}

static void render_json(FILE *f, const struct pol_graph *g)
{
    json_t *doc = pol_graph_json(g);
    write_graph(f, doc);
    json_decref(doc);
}

/* --- dot -------------------------------------------------------------------- */

/* A dot quoted string: quotes and backslashes escaped, newlines as \n. */
static void dq(FILE *f, const char *prefix, const char *s)
{
    fprintf(f, "\"%s", prefix);
    for (const char *c = s ? s : ""; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', f);
        if (*c == '\n')
            fputs("\\n", f);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* The node id: "s:STAGE", "f:FIELD", or the tool node's own "tool:NAME". */
static void dot_id(FILE *f, const struct pol_graph_node *n)
{
    dq(f, n->kind == POL_NODE_STAGE ? "s:" : n->kind == POL_NODE_FIELD ? "f:" : "", n->name);
}

/* "internal" when both bounds agree, else "internal / restricted". */
static void bounds_words(const struct pol_graph *g, int bound, int detect, char *buf, size_t size)
{
    if (bound == detect)
        bh_str_put(buf, size, "%s", label(g, bound));
    else
        bh_str_put(buf, size, "%s / %s", label(g, bound), label(g, detect));
}

static void dot_stage(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_stage *st = &g->stages[i];
    const struct pipe_stage *s = pstage(g, i);
    char text[640], in[96], decl[96] = "";
    long t = reroute_of(g, i);
    bounds_words(g, st->input, st->input_detect, in, sizeof(in));
    if (s->declassify.enabled)
        bh_str_put(decl, sizeof(decl), "\ndeclassify to %s", label(g, s->declassify.to));
    bh_str_put(text, sizeof(text), "%s\n%s @ %s\nclearance %s, input %s\non_sensitive %s%s%s%s",
               s->name, s->model, stage_ep(g, i)->name, label(g, st->clearance), in, ons_name(s),
               t >= 0 ? ":" : "", t >= 0 ? pstage(g, (size_t)t)->name : "", decl);
    fputs("    ", f);
    dq(f, "s:", s->name);
    fputs(" [label=", f);
    dq(f, "", text);
    fprintf(f, "%s%s];\n", standby_for(g, i) >= 0 ? ", style=dashed" : "",
            st->ok ? "" : ", color=red, fontcolor=red");
}

static void dot_cluster(FILE *f, const struct pol_graph *g, int local)
{
    fprintf(f, "  subgraph cluster_%s {\n    label=\"%s\";\n", local ? "local" : "cloud",
            local ? "local (stays on the machine)" : "cloud (leaves the machine)");
    for (size_t k = 0; k < g->p->n_stages; k++)
        if (g->stages[g->p->order[k]].local == local)
            dot_stage(f, g, g->p->order[k]);
    fputs("  }\n", f);
}

static void dot_edge(FILE *f, const struct pol_graph *g, const struct pol_graph_edge *e)
{
    const struct pol_graph_node *n = &g->nodes[e->from];
    fputs("  ", f);
    dot_id(f, n);
    fputs(" -> ", f);
    dot_id(f, &g->nodes[e->to]);
    const char *bad = ", color=red, fontcolor=red";
    if (e->kind == POL_EDGE_AFTER) {
        fputs(" [label=\"after\", style=dashed];\n", f);
        return;
    }
    if (e->kind == POL_EDGE_REROUTE) {
        fprintf(f, " [label=\"reroute\", style=bold%s];\n", e->ok ? ", color=blue" : bad);
        return;
    }
    char b[128], text[160];
    bounds_words(g, e->bound, e->bound_detect, b, sizeof(b));
    /* A stage's output read as a for_each element: say so on the edge. */
    int each = n->kind == POL_NODE_STAGE && e->via && strcmp(e->via, "each") == 0;
    bh_str_put(text, sizeof(text), "%s%s%s", each ? "each: " : "",
               e->bound_from == POL_BOUND_DECLASSIFIED ? "declassified: " : "", b);
    fputs(" [label=", f);
    dq(f, "", text);
    fprintf(f, "%s];\n", !e->ok ? bad : !e->ok_detect ? ", color=orange, fontcolor=orange" : "");
}

static void dot_sources(FILE *f, const struct pol_graph *g)
{
    fputs("  subgraph cluster_source {\n    label=\"source\";\n", f);
    for (size_t i = g->p->n_stages; i < g->n_nodes; i++) {
        const struct pol_graph_node *n = &g->nodes[i];
        char text[256], b[96];
        bounds_words(g, n->label, n->label_detect, b, sizeof(b));
        bh_str_put(text, sizeof(text), "%s\n%s", n->name, b);
        fputs("    ", f);
        dot_id(f, n);
        fprintf(f, " [shape=%s, label=", n->kind == POL_NODE_TOOL ? "component" : "note");
        dq(f, "", text);
        fputs("];\n", f);
    }
    fputs("  }\n", f);
}

static void render_dot(FILE *f, const struct pol_graph *g)
{
    fputs("digraph ", f);
    dq(f, "", g->p->name);
    fputs(" {\n  rankdir=LR;\n  node [shape=box];\n", f);
    dot_sources(f, g);
    dot_cluster(f, g, 1);
    dot_cluster(f, g, 0);
    for (size_t k = 0; k < g->n_edges; k++)
        dot_edge(f, g, &g->edges[k]);
    fputs("}\n", f);
}

/* --- Markdown ------------------------------------------------------------------ */

/* "pr.title, pr.files, review.output and the tools read_file, grep":
 * what the stage reads. */
static void md_reads(FILE *f, const struct pol_graph *g, size_t i)
{
    int any = 0;
    size_t tools = 0;
    for (size_t k = 0; k < g->n_edges; k++) {
        const struct pol_graph_edge *e = &g->edges[k];
        if (e->to != i || e->kind != POL_EDGE_DATA)
            continue;
        if (g->nodes[e->from].kind == POL_NODE_TOOL) {
            tools++;
            continue;
        }
        fprintf(f, "%s%s", any ? ", " : "", e->via);
        any = 1;
    }
    if (!tools) {
        fputs(any ? "" : "nothing from the source", f);
        return;
    }
    fprintf(f, "%swhat the tool%s ", any ? " and " : "", tools == 1 ? "" : "s");
    size_t n = 0;
    for (size_t k = 0; k < g->n_edges; k++) {
        const struct pol_graph_edge *e = &g->edges[k];
        if (e->to == i && e->kind == POL_EDGE_DATA && g->nodes[e->from].kind == POL_NODE_TOOL)
            fprintf(f, "%s%s", n++ ? ", " : "", e->via);
    }
    fputs(tools == 1 ? " returns" : " return", f);
}

static void md_where(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_endpoint *e = stage_ep(g, i);
    fprintf(f, "%s endpoint '%s' at %s (model %s", g->stages[i].local ? "local" : "cloud", e->name,
            e->host[0] ? e->host : e->url, pstage(g, i)->model);
    if (!g->stages[i].local)
        fprintf(f, "; %s", pol_locality_words(g->stages[i].why));
    fputs(")", f);
}

/* What happens to an item too sensitive for the stage, in plain words. */
static void md_turned_away(FILE *f, const struct pol_graph *g, size_t i)
{
    long t = reroute_of(g, i);
    const struct pipe_stage *s = pstage(g, i);
    if (t >= 0)
        fprintf(f, "such an item goes to stage %s on %s endpoint '%s' instead.",
                pstage(g, (size_t)t)->name, g->stages[t].local ? "local" : "cloud",
                stage_ep(g, (size_t)t)->name);
    else if (s->on_sensitive == PIPE_ONS_SKIP)
        fputs("such an item is withheld from it, and the report says so.", f);
    else
        fputs("such an item is refused before anything is sent, and the run exits 3.", f);
}

static int md_tool_overrun(const struct pol_graph *g, size_t i)
{
    for (size_t k = 0; k < g->n_edges; k++)
        if (g->edges[k].to == i && g->edges[k].kind == POL_EDGE_DATA &&
            g->nodes[g->edges[k].from].kind == POL_NODE_TOOL && !g->edges[k].ok_detect)
            return 1;
    return 0;
}

static int md_reads_declassified(const struct pol_graph *g, size_t i)
{
    for (size_t k = 0; k < g->n_edges; k++)
        if (g->edges[k].to == i && g->edges[k].kind == POL_EDGE_DATA &&
            g->edges[k].bound_from == POL_BOUND_DECLASSIFIED)
            return 1;
    return 0;
}

/* The run-time part: what on_sensitive does with what may be above the clearance. */
static void md_runtime(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_stage *st = &g->stages[i];
    if (!st->ok)
        return;
    if (st->guarded && st->input > st->clearance) {
        fprintf(f, " Some items are labelled above %s (up to %s): ", label(g, st->clearance),
                label(g, st->input));
        md_turned_away(f, g, i);
    } else if (md_tool_overrun(g, i)) {
        fprintf(f,
                " A detector hit in what a tool returns can raise the conversation to %s, "
                "above its clearance: the request is refused and the task fails.",
                label(g, st->input_detect));
    } else if (st->input_detect > st->clearance) {
        fprintf(f,
                " What it reads can be labelled up to %s at run time (%s), above its "
                "clearance: ",
                label(g, st->input_detect),
                md_reads_declassified(g, i) ? "when a detector finds something, or a declassify "
                                              "guard upstream fails"
                                            : "when a detector finds something");
        md_turned_away(f, g, i);
    }
}

static void md_stage(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_stage *st = &g->stages[i];
    long origin = standby_for(g, i);
    fprintf(f, "- Stage %s ", pstage(g, i)->name);
    if (origin >= 0)
        fprintf(f, "(runs only in place of stage %s, for items too sensitive for it) ",
                pstage(g, (size_t)origin)->name);
    fputs(!st->ok ? "would send " : st->local ? "reads " : "sends ", f);
    md_reads(f, g, i);
    fprintf(f, " (%s) %s ", label(g, st->input), st->local ? "on" : "to");
    md_where(f, g, i);
    fprintf(f, ", cleared for %s (%s)", label(g, st->clearance),
            pol_clearance_from_words(st->clearance_from));
    if (!st->flow_ok)
        fprintf(f, ": refused, it %s", st->reason);
    if (st->over_endpoint)
        fprintf(f, "%s the stage %s", st->flow_ok ? ": refused," : "; and", st->conflict);
    fputs(".", f);
    md_runtime(f, g, i);
    fputs("\n", f);
}

/* What the static proof allows off the machine, said as what it is: a
 * consequence of the assumptions listed after it (md_assumptions), never an
 * unconditional promise. */
static void md_claim(FILE *f, const struct pol_graph *g, int any_cloud, int max_out)
{
    const struct pipeline *p = g->p;
    if (!any_cloud) {
        fputs("If the assumptions below hold, nothing leaves the machine: every stage runs on "
              "an endpoint verified local.\n",
              f);
        return;
    }
    if (max_out < 0) {
        fputs("If the assumptions below hold, no data leaves the machine: no stage off the "
              "machine may receive anything.\n",
              f);
        return;
    }
    if (max_out + 1 >= (int)p->n_labels) {
        fprintf(f, "Data labelled up to %s leaves the machine.\n", label(g, max_out));
        return;
    }
    fputs("If the assumptions below hold, no ", f);
    for (int l = max_out + 1; l < (int)p->n_labels; l++)
        fprintf(f, "%s%s",
                l == max_out + 1            ? ""
                : l + 1 == (int)p->n_labels ? " or "
                                            : ", ",
                p->labels[l]);
    fputs(" data leaves the machine.\n", f);
}

/* The most a stage off the machine can be sent: what it reads, capped by
 * the clearance the gate applies. -1: nothing. */
static int md_sent(const struct pol_graph_stage *st)
{
    if (st->clearance < 0)
        return -1;
    return st->input_detect < st->clearance ? st->input_detect : st->clearance;
}

/* Per stage off the machine: the bound, where it comes from, and what
 * on_sensitive does with an item above it (the gate's facts, stage by stage). */
static void md_cloud_bounds(FILE *f, const struct pol_graph *g)
{
    for (size_t k = 0; k < g->p->n_stages; k++) {
        size_t i = g->p->order[k];
        const struct pol_graph_stage *st = &g->stages[i];
        if (st->local || !st->ok)
            continue;
        int sent = md_sent(st);
        fprintf(f, "- Stage %s (cloud endpoint '%s', model %s): ", pstage(g, i)->name,
                stage_ep(g, i)->name, pstage(g, i)->model);
        if (sent < 0) {
            fputs("nothing.\n", f);
            continue;
        }
        fprintf(f,
                "up to %s (clearance %s; it reads data declared up to %s, up to %s when a "
                "detector finds something)",
                label(g, sent), label(g, st->clearance), label(g, st->input),
                label(g, st->input_detect));
        if (st->input_detect > st->clearance) {
            fputs("; an item can be labelled above its clearance, and ", f);
            md_turned_away(f, g, i);
        } else {
            fputs(".", f);
        }
        fputs("\n", f);
    }
}

/* A verified local endpoint that some stage runs on: what its locality rests on. */
static void md_assume_endpoint(FILE *f, const struct pol_graph *g, size_t ep)
{
    const struct pol_graph_endpoint *e = &g->endpoints[ep];
    const char *at = e->host[0] ? e->host : e->url;
    if (e->why == POL_WHY_TRUSTED)
        fprintf(f,
                "- Endpoint '%s' at %s is yours: it counts as local because trusted_hosts "
                "vouches for it, which bulkhead cannot check.\n",
                e->name, at);
    else if (e->why == POL_WHY_NETWORK)
        fprintf(f,
                "- Endpoint '%s' at %s is yours: it counts as local because its address "
                "lies in a network that trusted_networks or BULKHEAD_TRUSTED_NETWORKS "
                "names, which bulkhead cannot check; a private address alone proves "
                "nothing.\n",
                e->name, at);
    else
        fprintf(f,
                "- Endpoint '%s' at %s is this machine: its address is loopback (checked "
                "now; a run checks it again and pins it).\n",
                e->name, at);
}

/* "qwen2.5-coder:14b, qwen2.5-coder:7b": the models local stages use on ep. */
static void md_local_models(FILE *f, const struct pol_graph *g, size_t ep)
{
    size_t n = 0;
    for (size_t k = 0; k < g->p->n_stages; k++) {
        size_t i = g->p->order[k];
        if (pstage(g, i)->endpoint != ep || !g->stages[i].local)
            continue;
        int seen = 0;
        for (size_t j = 0; j < k && !seen; j++) {
            size_t o = g->p->order[j];
            seen = pstage(g, o)->endpoint == ep && g->stages[o].local &&
                   strcmp(pstage(g, o)->model, pstage(g, i)->model) == 0;
        }
        if (!seen)
            fprintf(f, "%s%s", n++ ? ", " : "", pstage(g, i)->model);
    }
}

static int md_ep_has_local_stage(const struct pol_graph *g, size_t ep)
{
    for (size_t i = 0; i < g->p->n_stages; i++)
        if (pstage(g, i)->endpoint == ep && g->stages[i].local)
            return 1;
    return 0;
}

/* What the statement rests on and the static check cannot prove. */
static void md_assumptions(FILE *f, const struct pol_graph *g, int any_cloud)
{
    fputs("\nThis rests on assumptions that the file alone cannot prove:\n\n", f);
    for (size_t ep = 0; ep < g->p->n_endpoints; ep++) {
        if (!md_ep_has_local_stage(g, ep))
            continue;
        md_assume_endpoint(f, g, ep);
        fprintf(f, "- The server at '%s' does not forward ", g->endpoints[ep].name);
        md_local_models(f, g, ep);
        fputs(" off the machine (an Ollama cloud stub under a local name): verified only by "
              "`check --online`, and at run time by the probe before the first labelled "
              "request and the server's own enforcement (enforce_local); a forward found "
              "afterwards is a breach record that fails `audit verify`.\n",
              f);
    }
    if (any_cloud)
        fputs("- The labels declared for the source's fields and paths are right: a value "
              "above its declared label is raised only when a detector recognises it (keys, "
              "tokens, addresses, numbers: patterns, not meaning).\n",
              f);
    for (size_t k = 0; k < g->p->n_stages; k++) {
        size_t i = g->p->order[k];
        const struct pipe_declassify *d = &pstage(g, i)->declassify;
        if (d->enabled)
            fprintf(f,
                    "- Declassification of %s to %s relies on its guards: a paraphrase, a "
                    "translation or an encoding of its input is not caught.\n",
                    pstage(g, i)->name, label(g, d->to));
    }
    fputs("- Reports are egress too: a report posted or uploaded holds every output unless "
          "rendered with `--clearance` (the CI templates pass internal).\n",
          f);
}

static void md_section(FILE *f, const struct pol_graph *g, int local, const char *title)
{
    fprintf(f, "\n## %s\n\n", title);
    int any = 0;
    for (size_t k = 0; k < g->p->n_stages; k++) {
        size_t i = g->p->order[k];
        if (g->stages[i].local != local)
            continue;
        md_stage(f, g, i);
        any = 1;
    }
    if (!any)
        fputs(local ? "No stage runs on this machine.\n" : "No stage sends data off the machine.\n",
              f);
}

static void md_labelling(FILE *f, const struct pol_graph *g)
{
    const struct pipe_source *s = &g->p->source;
    fputs("\n## How data is labelled\n\n- Every field carries the label the pipeline declares "
          "for it",
          f);
    fprintf(f, " (a field it does not list: %s).\n", label(g, s->label));
    if (s->n_rules) {
        fputs("- Path rules label files by their path:", f);
        for (size_t i = 0; i < s->n_rules; i++)
            fprintf(f, "%s `%s` is %s", i ? ";" : "", s->rules[i].glob,
                    label(g, s->rules[i].label));
        fputs(". A diff or a document may hold any file, so it counts at the highest of these "
              "and its own label.\n",
              f);
    } else {
        fputs("- No path rules are declared.\n", f);
    }
    if (!g->n_detectors) {
        fputs("- No content detectors are enabled.\n", f);
        return;
    }
    fputs("- Content detectors (", f);
    for (size_t i = 0; i < g->n_detectors; i++)
        fprintf(f, "%s%s", i ? ", " : "", g->detectors[i]);
    fprintf(f, ") scan every value; a hit raises the value's label, up to %s.\n",
            label(g, g->detect_top));
}

/* Declassifications, and which stages off the machine read their outputs. */
static void md_declassify(FILE *f, const struct pol_graph *g)
{
    int any = 0;
    fputs("\n## Redaction and declassification\n\n", f);
    for (size_t k = 0; k < g->p->n_stages; k++) {
        size_t i = g->p->order[k];
        const struct pipe_declassify *d = &pstage(g, i)->declassify;
        if (!d->enabled)
            continue;
        char guards[256];
        guards_words(d, guards, sizeof(guards));
        fprintf(f,
                "- The output of stage %s is declassified to %s when its guards pass (%s). "
                "When a guard fails, the output keeps its label (up to %s), and every stage "
                "that reads it applies its own on_sensitive.\n",
                pstage(g, i)->name, label(g, d->to), guards, label(g, g->stages[i].output_detect));
        any = 1;
    }
    if (!any)
        fputs("No redaction or declassification is declared: labels are never lowered on the "
              "way.\n",
              f);
}

/* A claim about labels must say when a label was lowered on the way out. */
static void md_declassified_out(FILE *f, const struct pol_graph *g)
{
    int any = 0;
    for (size_t k = 0; k < g->n_edges; k++) {
        const struct pol_graph_edge *e = &g->edges[k];
        const struct pol_graph_stage *to = &g->stages[g->nodes[e->to].stage];
        if (e->kind != POL_EDGE_DATA || e->bound_from != POL_BOUND_DECLASSIFIED || to->local ||
            !to->ok)
            continue;
        fputs(any++ ? "" : "\n", f);
        fprintf(f,
                "Stage %s sends %s at its declassified label %s: what the model wrote from "
                "data labelled up to %s, after the guards above.\n",
                g->nodes[e->to].name, e->via, label(g, e->bound),
                label(g, g->stages[g->nodes[e->from].stage].input_detect));
    }
}

static void render_md(FILE *f, const struct pol_graph *g)
{
    const struct pipeline *p = g->p;
    int max_out = -1, any_cloud = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pol_graph_stage *st = &g->stages[i];
        if (st->local || !st->ok)
            continue;
        /* The gate never lets more than the clearance through. */
        int sent = md_sent(st);
        any_cloud = 1;
        max_out = sent > max_out ? sent : max_out;
    }
    fprintf(f,
            "# Data flow of pipeline '%s'\n\nGenerated by `bulkhead check --format md` from "
            "%s. Labels, lowest first: ",
            p->name, p->file);
    for (size_t i = 0; i < p->n_labels; i++)
        fprintf(f, "%s%s", i ? " < " : "", p->labels[i]);
    fputs(".\n", f);
    md_labelling(f, g);
    md_section(f, g, 0, "What leaves the machine");
    md_section(f, g, 1, "What stays on the machine");
    md_declassify(f, g);
    fputs("\n## Verdict\n\n", f);
    if (g->n_refused) {
        fprintf(f,
                "The check refuses this pipeline (%zu stage%s marked refused above): it does "
                "not run as written, and nothing is sent.\n",
                g->n_refused, g->n_refused == 1 ? "" : "s");
        return;
    }
    md_claim(f, g, any_cloud, max_out);
    if (any_cloud) {
        fputs("\nThe most each stage off the machine can be sent, as the gate enforces it:\n\n", f);
        md_cloud_bounds(f, g);
    }
    md_declassified_out(f, g);
    md_assumptions(f, g, any_cloud);
}

void pol_graph_render(FILE *f, const struct pol_graph *g, enum pol_format fmt)
{
    switch (fmt) {
    case POL_FORMAT_TEXT: render_text(f, g); break;
    case POL_FORMAT_JSON: render_json(f, g); break;
    case POL_FORMAT_DOT: render_dot(f, g); break;
    case POL_FORMAT_MD: render_md(f, g); break;
    }
}
