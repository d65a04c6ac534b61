/* policy/graph_render.c — the flow graph as text (for people at a
 * terminal), JSON (for tools; the schema is documented in pipelines/README.md
 * and only grows), Graphviz dot (for a picture) and Markdown (a data-flow
 * statement for a privacy review).
 *
 * Every renderer reads only the graph, never the pipeline's raw facts, so the
 * four can never disagree with each other or with the verdict. JSON is
 * written by hand (jansson stays inside pipeline/); strings pass through one
 * escaper per output language. */
#include "policy/graph.h"

#include <string.h>

#include "pipeline/pipeline.h"
#include "policy/policy.h"

static const char *const format_names[] = {
    [POL_FORMAT_TEXT] = "text",
    [POL_FORMAT_JSON] = "json",
    [POL_FORMAT_DOT] = "dot",
    [POL_FORMAT_MD] = "md",
};
#define N_FORMATS (sizeof(format_names) / sizeof(format_names[0]))

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

/* --- text ------------------------------------------------------------------ */

static void text_edge(FILE *f, const struct pol_graph *g, const struct pol_graph_edge *e)
{
    const struct pol_graph_node *n = &g->nodes[e->from];
    fprintf(f, "  %-12s        ", "");
    if (!e->data) {
        fprintf(f, "after %s (ordering only, no data)\n", n->name);
        return;
    }
    fprintf(f, "reads %s%s (%s) from ", n->name, n->kind == POL_NODE_STAGE ? ".output" : "",
            label(g, e->bound));
    if (e->bound_from == POL_BOUND_STAGE_OUTPUT)
        fprintf(f, "the output of stage %s", n->name);
    else if (e->bound_from == POL_BOUND_UNKNOWN)
        fprintf(f, "nothing known: counts as the top label");
    else
        fprintf(f, "the %s", e->bound_from == POL_BOUND_FIELD ? "field's declared label"
                                                               : "source default");
    fprintf(f, "%s\n", e->ok ? "" : " — above its clearance");
}

static void text_stage(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_stage *st = &g->stages[i];
    fprintf(f, "  %-12s %-6s endpoint %s, model %s, clearance %s (%s)\n", pstage(g, i)->name,
            st->local ? "local" : "cloud", stage_ep(g, i)->name, pstage(g, i)->model,
            label(g, st->clearance), pol_clearance_from_words(st->clearance_from));
    fprintf(f, "  %-12s        locality: %s\n", "", pol_locality_words(st->why));
    for (size_t k = 0; k < g->n_edges; k++)
        if (g->edges[k].to == i)
            text_edge(f, g, &g->edges[k]);
    fprintf(f, "  %-12s        input %s: %s\n", "", label(g, st->input),
            st->ok ? "ok" : "REFUSED");
    if (st->over_endpoint)
        fprintf(f, "  %-12s        %s\n", "", st->conflict);
}

static void render_text(FILE *f, const struct pol_graph *g)
{
    const struct pipeline *p = g->p;
    fprintf(f, "pipeline '%s' (%s)\nlabels:", p->name, p->file);
    for (size_t i = 0; i < p->n_labels; i++)
        fprintf(f, "%s %s", i ? " <" : "", p->labels[i]);
    fprintf(f, "\nendpoints:\n");
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct pol_graph_endpoint *e = &g->endpoints[i];
        fprintf(f, "  %-12s %-6s %s (%s)\n", e->name, e->local ? "local" : "cloud", e->url,
                e->evidence);
        fprintf(f, "  %-12s        locality: %s; clearance %s (%s)\n", "",
                pol_locality_words(e->why), label(g, e->clearance),
                pol_clearance_from_words(e->clearance_from));
    }
    fprintf(f, "stages (in run order):\n");
    for (size_t k = 0; k < p->n_stages; k++)
        text_stage(f, g, p->order[k]);
    fprintf(f, "check: %s\n", g->n_refused ? "REFUSED — see the stages marked above"
                                           : "ok — no stage can receive data above its clearance");
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

static void js_label(FILE *f, const struct pol_graph *g, int l)
{
    if (l < 0)
        fputs("null", f);
    else
        js(f, label(g, l));
}

static void json_endpoint(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_endpoint *e = &g->endpoints[i];
    fputs("    {\"name\": ", f);
    js(f, e->name);
    fputs(", \"url\": ", f);
    js(f, e->url);
    fputs(", \"host\": ", f);
    js(f, e->host);
    fprintf(f, ", \"port\": %d, \"address\": ", e->port);
    js(f, e->addr);
    fprintf(f, ", \"declared_local\": %s, \"local\": %s, \"locality_reason\": ",
            e->declared_local ? "true" : "false", e->local ? "true" : "false");
    js(f, pol_locality_words(e->why));
    fputs(", \"evidence\": ", f);
    js(f, e->evidence);
    fputs(", \"clearance\": ", f);
    js_label(f, g, e->clearance);
    fputs(", \"clearance_from\": ", f);
    js(f, pol_clearance_from_words(e->clearance_from));
    fprintf(f, "}%s\n", i + 1 < g->p->n_endpoints ? "," : "");
}

static void json_stage(FILE *f, const struct pol_graph *g, size_t i, int last)
{
    const struct pol_graph_stage *st = &g->stages[i];
    fputs("    {\"name\": ", f);
    js(f, pstage(g, i)->name);
    fputs(", \"endpoint\": ", f);
    js(f, stage_ep(g, i)->name);
    fputs(", \"model\": ", f);
    js(f, pstage(g, i)->model);
    fprintf(f, ", \"local\": %s, \"locality_reason\": ", st->local ? "true" : "false");
    js(f, pol_locality_words(st->why));
    fputs(", \"declared_clearance\": ", f);
    js_label(f, g, pstage(g, i)->clearance);
    fputs(", \"clearance\": ", f);
    js_label(f, g, st->clearance);
    fputs(", \"clearance_from\": ", f);
    js(f, pol_clearance_from_words(st->clearance_from));
    fputs(", \"input\": ", f);
    js_label(f, g, st->input);
    fprintf(f, ", \"ok\": %s, \"refusals\": [", st->ok ? "true" : "false");
    if (!st->flow_ok)
        js(f, st->reason);
    if (st->over_endpoint) {
        fputs(st->flow_ok ? "" : ", ", f);
        js(f, st->conflict);
    }
    fprintf(f, "]}%s\n", last ? "" : ",");
}

static void json_edge(FILE *f, const struct pol_graph *g, size_t k)
{
    const struct pol_graph_edge *e = &g->edges[k];
    const struct pol_graph_node *n = &g->nodes[e->from];
    fputs("    {\"from\": ", f);
    js(f, n->name);
    fputs(", \"from_kind\": ", f);
    js(f, n->kind == POL_NODE_STAGE ? "stage" : "field");
    fputs(", \"to\": ", f);
    js(f, g->nodes[e->to].name);
    fprintf(f, ", \"data\": %s, \"bound\": ", e->data ? "true" : "false");
    js_label(f, g, e->bound);
    fputs(", \"bound_from\": ", f);
    js(f, pol_bound_from_words(e->bound_from));
    fprintf(f, ", \"ok\": %s}%s\n", e->ok ? "true" : "false", k + 1 < g->n_edges ? "," : "");
}

static void json_fields(FILE *f, const struct pol_graph *g)
{
    int any = 0;
    fputs("  \"fields\": [\n", f);
    for (size_t i = g->p->n_stages; i < g->n_nodes; i++) {
        fputs(any ? ",\n    {\"name\": " : "    {\"name\": ", f);
        js(f, g->nodes[i].name);
        fputs(", \"label\": ", f);
        js_label(f, g, g->nodes[i].label);
        fputs(", \"label_from\": ", f);
        js(f, pol_bound_from_words(g->nodes[i].bound_from));
        fputc('}', f);
        any = 1;
    }
    fputs(any ? "\n  ],\n" : "  ],\n", f);
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
    fputs("]}\n", f);
}

static void render_json(FILE *f, const struct pol_graph *g)
{
    const struct pipeline *p = g->p;
    fputs("{\n  \"schema\": \"bulkhead-check/1\",\n  \"pipeline\": {\"name\": ", f);
    js(f, p->name);
    fputs(", \"file\": ", f);
    js(f, p->file);
    fputs("},\n  \"labels\": [", f);
    for (size_t i = 0; i < p->n_labels; i++) {
        fputs(i ? ", " : "", f);
        js(f, p->labels[i]);
    }
    fputs("],\n  \"endpoints\": [\n", f);
    for (size_t i = 0; i < p->n_endpoints; i++)
        json_endpoint(f, g, i);
    fputs("  ],\n", f);
    json_fields(f, g);
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

static void dot_stage(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_stage *st = &g->stages[i];
    char text[512];
    snprintf(text, sizeof(text), "%s\n%s @ %s\nclearance %s, input %s", pstage(g, i)->name,
             pstage(g, i)->model, stage_ep(g, i)->name, label(g, st->clearance),
             label(g, st->input));
    fputs("    ", f);
    dq(f, "s:", pstage(g, i)->name);
    fputs(" [label=", f);
    dq(f, "", text);
    fprintf(f, "%s];\n", st->ok ? "" : ", color=red, fontcolor=red");
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
    dq(f, n->kind == POL_NODE_STAGE ? "s:" : "f:", n->name);
    fputs(" -> ", f);
    dq(f, "s:", g->nodes[e->to].name);
    if (!e->data)
        fputs(" [label=\"after\", style=dashed]", f);
    else
        fprintf(f, " [label=\"%s\"%s]", label(g, e->bound), e->ok ? "" : ", color=red, fontcolor=red");
    fputs(";\n", f);
}

static void render_dot(FILE *f, const struct pol_graph *g)
{
    fputs("digraph ", f);
    dq(f, "", g->p->name);
    fputs(" {\n  rankdir=LR;\n  node [shape=box];\n  subgraph cluster_source {\n", f);
    fputs("    label=\"source\";\n", f);
    for (size_t i = g->p->n_stages; i < g->n_nodes; i++) {
        char text[256];
        snprintf(text, sizeof(text), "%s\n%s", g->nodes[i].name, label(g, g->nodes[i].label));
        fputs("    ", f);
        dq(f, "f:", g->nodes[i].name);
        fputs(" [shape=note, label=", f);
        dq(f, "", text);
        fputs("];\n", f);
    }
    fputs("  }\n", f);
    dot_cluster(f, g, 1);
    dot_cluster(f, g, 0);
    for (size_t k = 0; k < g->n_edges; k++)
        dot_edge(f, g, &g->edges[k]);
    fputs("}\n", f);
}

/* --- Markdown ------------------------------------------------------------------ */

/* "pr.title, pr.files, review.output": what the stage's template reads. */
static void md_reads(FILE *f, const struct pol_graph *g, size_t i)
{
    int any = 0;
    for (size_t k = 0; k < g->n_edges; k++) {
        if (g->edges[k].to != i || !g->edges[k].data)
            continue;
        const struct pol_graph_node *n = &g->nodes[g->edges[k].from];
        fprintf(f, "%s%s%s", any ? ", " : "", n->name,
                n->kind == POL_NODE_STAGE ? ".output" : "");
        any = 1;
    }
    fputs(any ? "" : "nothing from the source", f);
}

static void md_where(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_endpoint *e = stage_ep(g, i);
    fprintf(f, "%s endpoint '%s' at %s (model %s", g->stages[i].local ? "local" : "cloud",
            e->name, e->host[0] ? e->host : e->url, pstage(g, i)->model);
    if (!g->stages[i].local)
        fprintf(f, "; %s", pol_locality_words(g->stages[i].why));
    fputs(")", f);
}

static void md_stage(FILE *f, const struct pol_graph *g, size_t i)
{
    const struct pol_graph_stage *st = &g->stages[i];
    fprintf(f, "- Stage %s %s ", pstage(g, i)->name,
            !st->ok ? "would send" : st->local ? "reads" : "sends");
    md_reads(f, g, i);
    fprintf(f, " (%s) %s ", label(g, st->input), st->local ? "on" : "to");
    md_where(f, g, i);
    fprintf(f, ", cleared for %s (%s)", label(g, st->clearance),
            pol_clearance_from_words(st->clearance_from));
    if (!st->flow_ok)
        fprintf(f, ": refused, it %s", st->reason);
    if (st->over_endpoint)
        fprintf(f, "%s the stage %s", st->flow_ok ? ": refused," : "; and", st->conflict);
    fputs(".\n", f);
}

/* "No confidential or restricted data leaves the machine." */
static void md_claim(FILE *f, const struct pol_graph *g, int max_out)
{
    const struct pipeline *p = g->p;
    if (max_out < 0) {
        fputs("Nothing leaves the machine: every stage runs on a verified local endpoint.\n", f);
        return;
    }
    if (max_out + 1 >= (int)p->n_labels) {
        fprintf(f, "Data labelled up to %s leaves the machine.\n", label(g, max_out));
        return;
    }
    fputs("No ", f);
    for (int l = max_out + 1; l < (int)p->n_labels; l++)
        fprintf(f, "%s%s", l == max_out + 1 ? "" : l + 1 == (int)p->n_labels ? " or " : ", ",
                p->labels[l]);
    fputs(" data leaves the machine.\n", f);
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

static void render_md(FILE *f, const struct pol_graph *g)
{
    const struct pipeline *p = g->p;
    int max_out = -1;
    for (size_t i = 0; i < p->n_stages; i++)
        if (!g->stages[i].local && g->stages[i].ok && g->stages[i].input > max_out)
            max_out = g->stages[i].input;
    fprintf(f, "# Data flow of pipeline '%s'\n\nGenerated by `bulkhead check --format md` from "
               "%s. Labels, lowest first: ", p->name, p->file);
    for (size_t i = 0; i < p->n_labels; i++)
        fprintf(f, "%s%s", i ? " < " : "", p->labels[i]);
    fputs(".\n", f);
    md_section(f, g, 0, "What leaves the machine");
    md_section(f, g, 1, "What stays on the machine");
    fputs("\n## Verdict\n\n", f);
    if (g->n_refused)
        fprintf(f, "The check refuses this pipeline (%zu stage%s marked refused above): it does "
                   "not run as written, and nothing is sent.\n",
                g->n_refused, g->n_refused == 1 ? "" : "s");
    else
        md_claim(f, g, max_out);
    fputs("No redaction or declassification is declared: labels are never lowered on the "
          "way.\n", f);
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
