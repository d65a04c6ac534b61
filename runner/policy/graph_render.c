/* policy/graph_render.c — the flow graph as text (for people at a
 * terminal), JSON (for tools; the schema is documented in pipelines/README.md
 * and only grows), Graphviz dot (for a picture) and Markdown (a data-flow
 * statement for a privacy review).
 *
 * Every renderer reads only the graph and the stage declarations it
 * summarises (on_sensitive, declassify, for_each), never the network facts
 * or the verdict logic, so the four can never disagree with each other or
 * with the verdict. JSON is written by hand (jansson stays inside pipeline/);
 * strings pass through one escaper per output language. Output depends only
 * on the graph: the same pipeline gives the same bytes. */
#include "policy/graph.h"

#include <string.h>

#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "util/bh_str.h"
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

static void js(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", f);
        else if (*c < 0x20)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* `, "key": ` then the value's writer. */
static void jk(FILE *f, const char *key)
{
    fprintf(f, ", \"%s\": ", key);
}

static void js_label(FILE *f, const struct pol_graph *g, int l)
{
    if (l < 0)
        fputs("null", f);
    else
        js(f, label(g, l));
}

static void js_bool(FILE *f, int b)
{
    fputs(b ? "true" : "false", f);
}

static void json_endpoint(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_endpoint *e = &g->endpoints[i];
    fputs("    {\"name\": ", f);
    js(f, e->host_name);
    jk(f, "url");
    js(f, e->url);
    jk(f, "host");
    js(f, e->host);
    fprintf(f, ", \"port\": %d, \"address\": ", e->port);
    js(f, e->addr);
    fprintf(f, ", \"declared_local\": %s, \"local\": %s, \"locality_reason\": ",
            e->declared_local ? "true" : "false", e->local ? "true" : "false");
    js(f, pol_locality_words(e->why));
    jk(f, "evidence");
    js(f, e->evidence);
    jk(f, "clearance");
    js_label(f, g, e->clearance);
    jk(f, "clearance_from");
    js(f, pol_clearance_from_words(e->clearance_from));
    fprintf(f, "}%s\n", i + 1 < g->p->n_endpoints ? "," : "");
}

static void json_declassify(FILE *f, const struct pol_graph *g, const struct pipe_declassify *d)
{
    if (!d->enabled) {
        fputs("null", f);
        return;
    }
    fputs("{\"to\": ", f);
    js_label(f, g, d->to);
    fprintf(f,
            ", \"no_verbatim_tokens\": %d, \"no_rare_tokens\": %s, \"detectors\": %s, "
            "\"redact\": [%s%s%s], \"max_chars\": %ld}",
            d->no_verbatim_tokens, d->no_rare_tokens ? "true" : "false",
            d->detectors ? "true" : "false", d->redact_code ? "\"code\"" : "",
            d->redact_code && d->redact_paths ? ", " : "", d->redact_paths ? "\"paths\"" : "",
            d->max_chars);
}

/* What the stage declares beyond its endpoint and model. */
static void json_stage_decl(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pipe_stage *s = pstage(g, i);
    long t = reroute_of(g, i);
    jk(f, "kind");
    js(f, kind_name(s));
    jk(f, "scope");
    js(f, s->scope == PIPE_SCOPE_BATCH ? "batch" : "item");
    jk(f, "for_each");
    if (s->for_each)
        js(f, s->for_each);
    else
        fputs("null", f);
    fputs(", \"tools\": [", f);
    for (size_t k = 0; k < s->n_tools; k++) {
        fputs(k ? ", " : "", f);
        js(f, s->tools[k]);
    }
    fputs("], \"on_sensitive\": ", f);
    js(f, ons_name(s));
    jk(f, "reroute");
    if (t >= 0)
        js(f, pstage(g, (size_t)t)->name);
    else
        fputs("null", f);
    jk(f, "standby");
    js_bool(f, standby_for(g, i) >= 0);
    jk(f, "declassify");
    json_declassify(f, g, &s->declassify);
}

static void json_stage(FILE *f, const struct pol_graph *g, size_t i, int last)
{
    const struct pol_graph_stage *st = &g->stages[i];
    fputs("    {\"name\": ", f);
    js(f, pstage(g, i)->name);
    jk(f, "endpoint");
    js(f, stage_ep(g, i)->name);
    jk(f, "model");
    js(f, pstage(g, i)->model);
    fprintf(f, ", \"local\": %s, \"locality_reason\": ", st->local ? "true" : "false");
    js(f, pol_locality_words(st->why));
    jk(f, "declared_clearance");
    js_label(f, g, pstage(g, i)->clearance);
    jk(f, "clearance");
    js_label(f, g, st->clearance);
    jk(f, "clearance_from");
    js(f, pol_clearance_from_words(st->clearance_from));
    json_stage_decl(f, g, i);
    jk(f, "input");
    js_label(f, g, st->input);
    jk(f, "input_detect");
    js_label(f, g, st->input_detect);
    jk(f, "output");
    js_label(f, g, st->output);
    jk(f, "output_detect");
    js_label(f, g, st->output_detect);
    fprintf(f, ", \"declassified\": %s, \"guarded\": %s, \"ok\": %s, \"refusals\": [",
            st->declassified ? "true" : "false", st->guarded ? "true" : "false",
            st->ok ? "true" : "false");
    if (!st->flow_ok)
        js(f, st->reason);
    if (st->over_endpoint) {
        fputs(st->flow_ok ? "" : ", ", f);
        js(f, st->conflict);
    }
    fputs("], \"notes\": [", f);
    if (st->note[0])
        js(f, st->note);
    fprintf(f, "]}%s\n", last ? "" : ",");
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

static void json_edge(FILE *f, const struct pol_graph *g, size_t k)
{
    const struct pol_graph_edge *e = &g->edges[k];
    const struct pol_graph_node *n = &g->nodes[e->from];
    fputs("    {\"from\": ", f);
    js(f, n->name);
    jk(f, "from_kind");
    js(f, node_kind_words[n->kind]);
    jk(f, "to");
    js(f, g->nodes[e->to].name);
    jk(f, "kind");
    js(f, edge_kind_words[e->kind]);
    jk(f, "via");
    if (e->via)
        js(f, e->via);
    else
        fputs("null", f);
    fprintf(f, ", \"data\": %s, \"bound\": ", e->data ? "true" : "false");
    js_label(f, g, e->bound);
    jk(f, "bound_from");
    js(f, pol_bound_from_words(e->bound_from));
    jk(f, "bound_detect");
    js_label(f, g, e->bound_detect);
    jk(f, "bound_detect_from");
    js(f, pol_bound_from_words(e->detect_from));
    fprintf(f, ", \"ok\": %s, \"ok_detect\": %s}%s\n", e->ok ? "true" : "false",
            e->ok_detect ? "true" : "false", k + 1 < g->n_edges ? "," : "");
}

/* Field and tool nodes: "fields" and "tools". */
static void json_nodes(FILE *f, const struct pol_graph *g, enum pol_node_kind kind, const char *key)
{
    int any = 0;
    fprintf(f, "  \"%s\": [\n", key);
    for (size_t i = g->p->n_stages; i < g->n_nodes; i++) {
        const struct pol_graph_node *n = &g->nodes[i];
        if (n->kind != kind)
            continue;
        fputs(any ? ",\n    {\"name\": " : "    {\"name\": ", f);
        js(f, kind == POL_NODE_TOOL ? n->name + strlen("tool:") : n->name);
        if (kind == POL_NODE_TOOL) {
            jk(f, "as");
            js(f, pol_tool_source(n->name + strlen("tool:")));
        }
        jk(f, "label");
        js_label(f, g, n->label);
        jk(f, "label_from");
        js(f, pol_bound_from_words(n->bound_from));
        jk(f, "label_detect");
        js_label(f, g, n->label_detect);
        fputc('}', f);
        any = 1;
    }
    fputs(any ? "\n  ],\n" : "  ],\n", f);
}

static void json_labelling(FILE *f, const struct pol_graph *g)
{
    const struct pipe_source *s = &g->p->source;
    fputs("  \"rules\": [", f);
    for (size_t i = 0; i < s->n_rules; i++) {
        fputs(i ? ", {\"path\": " : "{\"path\": ", f);
        js(f, s->rules[i].glob);
        jk(f, "label");
        js_label(f, g, s->rules[i].label);
        fputc('}', f);
    }
    fputs("],\n  \"detectors\": {\"ids\": [", f);
    for (size_t i = 0; i < g->n_detectors; i++) {
        fputs(i ? ", " : "", f);
        js(f, g->detectors[i]);
    }
    fputs("], \"label\": ", f);
    js_label(f, g, g->n_detectors ? g->detect_top : -1);
    fputs("},\n", f);
}

static void json_verdict(FILE *f, const struct pol_graph *g)
{
    fprintf(f, "  \"verdict\": {\"ok\": %s, \"refused\": [", g->n_refused ? "false" : "true");
    int any = 0;
    for (size_t k = 0; k < g->p->n_stages; k++) {
        size_t i = g->p->order[k];
        if (g->stages[i].ok)
            continue;
        fputs(any ? ", " : "", f);
        js(f, pstage(g, i)->name);
        any = 1;
    }
    fputs("], \"noted\": [", f);
    any = 0;
    for (size_t k = 0; k < g->p->n_stages; k++) {
        size_t i = g->p->order[k];
        if (!g->stages[i].note[0])
            continue;
        fputs(any ? ", " : "", f);
        js(f, pstage(g, i)->name);
        any = 1;
    }
    fputs("]}\n", f);
}

static void render_json(FILE *f, const struct pol_graph *g)
{
    const struct pipeline *p = g->p;
    fputs("{\n  \"schema\": \"bulkhead-check/1\",\n  \"pipeline\": {\"name\": ", f);
    js(f, p->name);
    jk(f, "file");
    js(f, p->file);
    fputs("},\n  \"labels\": [", f);
    for (size_t i = 0; i < p->n_labels; i++) {
        fputs(i ? ", " : "", f);
        js(f, p->labels[i]);
    }
    fputs("],\n", f);
    json_labelling(f, g);
    fputs("  \"endpoints\": [\n", f);
    for (size_t i = 0; i < p->n_endpoints; i++)
        json_endpoint(f, g, i);
    fputs("  ],\n", f);
    json_nodes(f, g, POL_NODE_FIELD, "fields");
    json_nodes(f, g, POL_NODE_TOOL, "tools");
    fputs("  \"stages\": [\n", f);
    for (size_t k = 0; k < p->n_stages; k++)
        json_stage(f, g, p->order[k], k + 1 == p->n_stages);
    fputs("  ],\n  \"edges\": [\n", f);
    for (size_t k = 0; k < g->n_edges; k++)
        json_edge(f, g, k);
    fputs("  ],\n", f);
    json_verdict(f, g);
    fputs("}\n", f);
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
