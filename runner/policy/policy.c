/* policy/policy.c — labels, stage locality and clearance, the static flow
 * check. Pure computation over the loaded pipeline, shared by `check` (which
 * proves the pipeline before a run) and by the egress gate (which applies the
 * same rules to every request), so that the two can never disagree.
 *
 * Labels are indices into pipeline.labels, lowest first; -1 is "unknown",
 * which joins to the top label (unknown means top); POL_NOTHING is a
 * clearance below every label, compared as a number and never joined.
 *
 * The check keeps two upper bounds per value (README, "The static bounds
 * check proves"): the declared one (labels and path rules: refused when it
 * is above a clearance under on_sensitive fail) and the detector one (what
 * a detector hit could raise it to: noted, left to on_sensitive at run
 * time). Stages are evaluated in run order, but on demand: a stage's reroute
 * target may come later in the file, and its output bound is needed first.
 * The trade-off: a little recursion (at most one frame per stage) instead
 * of a second ordering that the loader would have to provide. */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pipeline/pipeline.h"
#include "detect/detect.h"
#include "policy/label.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

static int top(const struct pipeline *p)
{
    return (int)p->n_labels - 1;
}

int pol_model_is_cloud(const char *model)
{
    if (!model)
        return 0;
    const char *tag = strrchr(model, ':');
    if (tag && strcasecmp(tag + 1, "cloud") == 0)
        return 1;
    size_t n = strlen(model);
    return n >= 6 && strcasecmp(model + n - 6, "-cloud") == 0;
}

int pol_label_join(const struct pipeline *p, int a, int b)
{
    if (a < 0 || b < 0 || a > top(p) || b > top(p))
        return top(p);
    return a > b ? a : b;
}

const char *pol_label_name(const struct pipeline *p, int label)
{
    if (label == POL_NOTHING)
        return "nothing";
    if (label < 0 || label > top(p))
        return "?";
    return p->labels[label];
}

int pol_stage_local(const struct pipeline *p, size_t stage, int endpoint_local)
{
    return pol_stage_local_facts(p, stage, endpoint_local, 0);
}

int pol_stage_local_facts(const struct pipeline *p, size_t stage, int endpoint_local,
                          int model_remote)
{
    return endpoint_local && !model_remote && !pol_model_is_cloud(p->stages[stage].model);
}

/* The most an endpoint may receive given what the gate verified of it. */
static int endpoint_clearance(const struct pipeline *p, const struct pipe_endpoint *e,
                              int endpoint_local)
{
    if (e->declared_local && !endpoint_local)
        return POL_NOTHING; /* claimed local, evidence says otherwise: nothing goes there */
    if (e->clearance >= 0)
        return e->clearance;
    return endpoint_local ? top(p) : 0;
}

int pol_endpoint_clearance(const struct pipeline *p, size_t endpoint, int endpoint_local)
{
    return endpoint_clearance(p, &p->endpoints[endpoint], endpoint_local);
}

int pol_stage_clearance(const struct pipeline *p, size_t stage, int endpoint_local)
{
    return pol_stage_clearance_facts(p, stage, endpoint_local, 0);
}

int pol_stage_clearance_facts(const struct pipeline *p, size_t stage, int endpoint_local,
                              int model_remote)
{
    const struct pipe_stage *s = &p->stages[stage];
    const struct pipe_endpoint *e = &p->endpoints[s->endpoint];
    int cap = endpoint_clearance(p, e, endpoint_local);
    /* The endpoint's trust is trust in the machine; a model that Ollama
     * forwards elsewhere (a cloud name or a stub) is a cloud destination
     * nobody declared, so it gets the bottom label. The stage's own
     * clearance was written for the machine and may only lower that. */
    if (endpoint_local && !pol_stage_local_facts(p, stage, endpoint_local, model_remote))
        cap = 0;
    int want = s->clearance >= 0 ? s->clearance : cap;
    return want < cap ? want : cap;
}

/* --- detectors ------------------------------------------------------------ */

/* A label index as a bound: anything out of range is unknown, which is top. */
static int norm(const struct pipeline *p, int l)
{
    return l < 0 || l > top(p) ? top(p) : l;
}

int pol_detector_label(const struct pipeline *p, const struct det_detector *d)
{
    int l = d && d->label ? pipe_label_find(p, d->label) : -1;
    return l >= 0 ? l : top(p);
}

/* The enabled detectors, without duplicates (a group and one of its ids). */
struct enabled {
    const char **ids;
    int *labels;
    size_t n;
};

static void enabled_add(struct enabled *e, const char *id, int label)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->ids[i], id) == 0)
            return;
    e->ids[e->n] = id;
    e->labels[e->n++] = label;
}

/* A name from `detectors`: an id or a group. One that does not resolve (the
 * loader refuses it; a pipeline built by hand may not) counts as top. */
static void enabled_name(const struct pipeline *p, struct enabled *e, const char *name,
                         size_t n_all)
{
    const struct det_detector **found = bh_xcalloc(n_all ? n_all : 1, sizeof(*found));
    size_t n = 0;
    if (!name || det_resolve(name, found, n_all, &n, NULL) != 0 || n == 0)
        enabled_add(e, name ? name : "?", top(p));
    for (size_t k = 0; k < n && k < n_all; k++)
        enabled_add(e, found[k]->id, pol_detector_label(p, found[k]));
    free(found);
}

static void enabled_collect(const struct pipeline *p, struct enabled *e)
{
    const struct pipe_source *s = &p->source;
    size_t n_all = 0;
    const struct det_detector *all = det_all(&n_all);
    size_t room = n_all + s->n_detectors + s->n_custom + 1;
    e->ids = bh_xcalloc(room, sizeof(*e->ids));
    e->labels = bh_xcalloc(room, sizeof(*e->labels));
    e->n = 0;
    if (!s->detectors_set) {
        for (size_t i = 0; i < n_all; i++)
            enabled_add(e, all[i].id, pol_detector_label(p, &all[i]));
    } else {
        for (size_t i = 0; i < s->n_detectors; i++)
            enabled_name(p, e, s->detectors[i], n_all);
    }
    for (size_t i = 0; i < s->n_custom; i++)
        enabled_add(e, s->custom[i].id ? s->custom[i].id : "?", norm(p, s->custom[i].label));
}

size_t pol_detectors_enabled(const struct pipeline *p, const char **ids, int *labels, size_t cap)
{
    struct enabled e;
    enabled_collect(p, &e);
    for (size_t i = 0; i < e.n && i < cap; i++) {
        if (ids)
            ids[i] = e.ids[i];
        if (labels)
            labels[i] = e.labels[i];
    }
    free(e.ids);
    free(e.labels);
    return e.n;
}

int pol_detectors_top(const struct pipeline *p)
{
    struct enabled e;
    enabled_collect(p, &e);
    int l = 0; /* no detector: the two bounds are equal */
    for (size_t i = 0; i < e.n; i++)
        l = pol_label_join(p, l, e.labels[i]);
    free(e.ids);
    free(e.labels);
    return l;
}

/* --- the bound of one read (README, "The static bounds check proves") ----- */

/* A source field's declared label with the path rules applied: a content
 * field may hold any file, and an unknown file may match any rule, so every
 * rule label joins in. -1 when the source has no such field. */
static int source_bound(const struct pipeline *p, const char *field)
{
    int l = pipe_source_field_label(p, field);
    if (l < 0)
        return -1;
    l = norm(p, l);
    if (pipe_field_is_content(field))
        for (size_t i = 0; i < p->source.n_rules; i++)
            l = pol_label_join(p, l, p->source.rules[i].label);
    return l;
}

/* The stage whose output a placeholder names ("plan.output"), or -1. */
static long output_stage(const struct pipeline *p, const char *field)
{
    const char *dot = field ? strrchr(field, '.') : NULL;
    if (!dot || strcmp(dot, ".output") != 0 || pipe_source_field_label(p, field) >= 0)
        return -1;
    size_t n = (size_t)(dot - field);
    for (size_t s = 0; s < p->n_stages; s++)
        if (strlen(p->stages[s].name) == n && strncmp(field, p->stages[s].name, n) == 0)
            return (long)s;
    return -1;
}

/* A for_each element field of stage s: returns the source field it is part
 * of ("each.diff" → "pr.diff", "each.path" → the list "pr.files"), or NULL
 * with *up set to the stage whose output `each` is an element of. NULL and
 * -1 when s's for_each does not provide the field. */
static const char *each_source(const struct pipeline *p, size_t s, const char *field, long *up)
{
    *up = -1;
    const struct pipe_stage *st = s < p->n_stages ? &p->stages[s] : NULL;
    if (!st || !st->for_each || strncmp(field, "each", 4) != 0)
        return NULL;
    size_t n = 0;
    const char *const *names = pipe_for_each_fields(st->for_each, &n);
    int provided = 0;
    for (size_t i = 0; i < n; i++)
        provided |= strcmp(names[i], field) == 0;
    if (!provided)
        return NULL;
    if (strcmp(field, "each") == 0) {
        *up = st->for_each_stage >= 0 ? st->for_each_stage : output_stage(p, st->for_each);
        return NULL;
    }
    return strcmp(field, "each.diff") == 0 ? "pr.diff" : st->for_each;
}

/* The stage whose output the read carries (S.output, or `each` of a
 * for_each over S.output), or -1. */
static long read_upstream(const struct pipeline *p, size_t s, const char *field)
{
    long up = -1;
    if (pipe_source_field_label(p, field) >= 0 || each_source(p, s, field, &up))
        return -1;
    if (up < 0)
        up = output_stage(p, field);
    return up >= 0 && (size_t)up < p->n_stages ? up : -1;
}

const char *pol_read_source(const struct pipeline *p, size_t stage, const char *field)
{
    long up = -1;
    if (!field)
        return NULL;
    if (pipe_source_field_label(p, field) >= 0)
        return field;
    return each_source(p, stage, field, &up);
}

/* Whether batch stage `stage` reads, among reads[0..n), a value per item (a
 * source field, an item-scope stage's output, or a name that means nothing:
 * unknown, so counted). */
static int names_items(const struct pipeline *p, size_t stage, const char **reads, size_t n)
{
    if (p->stages[stage].scope != PIPE_SCOPE_BATCH)
        return 0;
    for (size_t i = 0; i < n; i++) {
        long up = read_upstream(p, stage, reads[i]);
        if (up < 0 || p->stages[up].scope == PIPE_SCOPE_ITEM)
            return 1;
    }
    return 0;
}

int pol_stage_names_items(const struct pipeline *p, size_t stage)
{
    size_t n = 0;
    const char **reads = pol_stage_reads(p, stage, &n);
    int yes = names_items(p, stage, reads, n);
    free(reads);
    return yes;
}

long pol_read_upstream(const struct pipeline *p, size_t stage, const char *field)
{
    return field ? read_upstream(p, stage, field) : -1;
}

/* One tier of the bound of a read: outputs are that tier's output bounds,
 * det the detectors' label (0 for the declared tier). */
static int bound_of(const struct pipeline *p, size_t s, const char *field, const int *outputs,
                    int det)
{
    if (!field)
        return top(p);
    int l = source_bound(p, field);
    if (l >= 0)
        return pol_label_join(p, l, det);
    long up = -1;
    const char *part_of = each_source(p, s, field, &up);
    if (part_of)
        return pol_label_join(p, source_bound(p, part_of), det); /* -1: top */
    up = read_upstream(p, s, field);
    if (up >= 0)
        return outputs ? norm(p, outputs[up]) : top(p);
    return top(p); /* unknown means top */
}

int pol_field_bound(const struct pipeline *p, size_t stage, const char *field, const int *outputs)
{
    return bound_of(p, stage, field, outputs, 0);
}

int pol_field_bound_detect(const struct pipeline *p, size_t stage, const char *field,
                           const int *outputs_detect)
{
    return bound_of(p, stage, field, outputs_detect, pol_detectors_top(p));
}

/* What each tool returns, as the source fields that bound it. */
static const struct {
    const char *name, *a, *b, *words;
    int files; /* labelled by whole files of the tree, which may be binary (unscanned) */
} tool_sources[] = {
    {"read_file", "pr.diff", NULL, "pr.diff", 1},
    {"grep", "pr.diff", NULL, "pr.diff", 1},
    {"diff", "pr.diff", NULL, "pr.diff", 0},
    {"list_files", "pr.files", NULL, "pr.files", 0},
    {"git_log", "pr.title", "pr.files", "pr.title and pr.files", 0},
};
#define N_TOOL_SOURCES BH_NELEM(tool_sources)

static long tool_find(const char *tool)
{
    for (size_t i = 0; tool && i < N_TOOL_SOURCES; i++)
        if (strcmp(tool, tool_sources[i].name) == 0)
            return (long)i;
    return -1;
}

int pol_tool_bound(const struct pipeline *p, const char *tool)
{
    long t = tool_find(tool);
    if (t < 0)
        return top(p);
    int b = tool_sources[t].b ? source_bound(p, tool_sources[t].b) : 0;
    return pol_label_join(p, source_bound(p, tool_sources[t].a), b); /* -1: top */
}

int pol_tool_bound_detect(const struct pipeline *p, const char *tool)
{
    long t = tool_find(tool);
    if (t < 0 || tool_sources[t].files)
        return top(p);
    return pol_label_join(p, pol_tool_bound(p, tool), pol_detectors_top(p));
}

const char *pol_tool_source(const char *tool)
{
    long t = tool_find(tool);
    return t < 0 ? "unknown" : tool_sources[t].words;
}

static size_t reads_add(const char **out, size_t n, const char *field)
{
    if (!field)
        return n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(out[i], field) == 0)
            return n;
    out[n] = field;
    return n + 1;
}

static size_t reads_add_tpl(const char **out, size_t n, const struct pipe_tpl *t)
{
    for (size_t i = 0; i < t->n_parts; i++)
        if (t->parts[i].is_field)
            n = reads_add(out, n, t->parts[i].text);
    return n;
}

const char **pol_stage_reads(const struct pipeline *p, size_t stage, size_t *n)
{
    const struct pipe_stage *s = &p->stages[stage];
    size_t room = s->n_reads + s->system.n_parts + s->tpl.n_parts;
    *n = 0;
    if (room == 0)
        return NULL;
    const char **out = bh_xcalloc(room, sizeof(*out));
    for (size_t i = 0; i < s->n_reads; i++)
        *n = reads_add(out, *n, s->reads[i]);
    *n = reads_add_tpl(out, *n, &s->system);
    *n = reads_add_tpl(out, *n, &s->tpl);
    if (*n == 0) {
        free(out);
        out = NULL;
    }
    return out;
}

/* --- the check ------------------------------------------------------------ */

struct chk {
    const struct pipeline *p;
    struct pol_stage_report *out;
    int *od, *ot;             /* output bounds per stage: declared, detector (top until known) */
    unsigned char *state;     /* 0 not yet, 1 being computed (a cycle reads top), 2 done */
    int det;                  /* the enabled detectors' highest label */
    struct pol_labeller *lab; /* scans template text; NULL when it could not be built */
};

/* What a stage reads, in both tiers, and what carries the highest of each. */
struct input {
    int decl, det;
    const char *why_decl; /* the first read at the declared bound (NULL: reads nothing) */
    const char *why_det;  /* the first read or tool at the detector bound */
    int det_tool;         /* why_det is a tool */
    size_t n_det_over;    /* reads and tools whose detector bound is above the clearance */
    const char *tool;     /* the granted tool with the highest declared bound, or NULL */
    int tool_decl;
};

static void input_add(struct input *in, const char *what, int decl, int det, int clr, int is_tool)
{
    if (!is_tool && (!in->why_decl || decl > in->decl)) {
        in->decl = decl;
        in->why_decl = what;
    }
    if (is_tool && (!in->tool || decl > in->tool_decl)) {
        in->tool_decl = decl;
        in->tool = what;
    }
    if (!in->why_det || det > in->det) {
        in->det = det;
        in->why_det = what;
        in->det_tool = is_tool;
    }
    in->n_det_over += det > clr;
}

/* What a detector finds in the stage's own template text (system, user). */
static int template_text_label(const struct pol_labeller *l, const struct pipe_stage *s)
{
    struct pol_value a, b;
    pol_label_template(l, &s->system, &a);
    pol_label_template(l, &s->tpl, &b);
    int label = a.label > b.label ? a.label : b.label;
    pol_value_release(&a);
    pol_value_release(&b);
    return label;
}

/* The input bounds: the join over every read and every granted tool; a
 * stage that reads nothing has the bottom label. */
static void stage_input(const struct chk *c, size_t i, const char **reads, size_t n,
                        struct input *in)
{
    const struct pipeline *p = c->p;
    const struct pipe_stage *s = &p->stages[i];
    int clr = c->out[i].clearance;
    memset(in, 0, sizeof(*in));
    for (size_t k = 0; k < n; k++)
        input_add(in, reads[k], bound_of(p, i, reads[k], c->od, 0),
                  bound_of(p, i, reads[k], c->ot, c->det), clr, 0);
    /* Template text is fixed, so a detector hit in it is a declared fact,
     * not a run-time possibility; a labeller that could not be built: top. */
    int text = c->lab ? template_text_label(c->lab, s) : top(p);
    if (text > 0)
        input_add(in, "its prompt template's text (a detector hit)", text, text, clr, 0);
    if (names_items(p, i, reads, n)) { /* each value under its item's key */
        const char *key = pipe_source_key_field(p->source.kind);
        input_add(in, key ? key : "the item keys", bound_of(p, i, key, c->od, 0),
                  bound_of(p, i, key, c->ot, c->det), clr, 0);
    }
    int decl = in->decl;
    for (size_t k = 0; k < s->n_tools; k++) {
        int b = pol_tool_bound(p, s->tools[k]);
        input_add(in, s->tools[k], b, pol_tool_bound_detect(p, s->tools[k]), clr, 1);
        decl = pol_label_join(p, decl, b);
    }
    in->decl = decl; /* why_decl still names the highest read: a tool is refused on its own */
}

static const char *label_of(const struct chk *c, int l)
{
    return pol_label_name(c->p, l);
}

/* A refusal for what the stage reads, with on_sensitive fail. */
static void refuse_reads(const struct chk *c, size_t i, const struct input *in)
{
    struct pol_stage_report *r = &c->out[i];
    const struct pipe_stage *s = &c->p->stages[i];
    const char *what = in->why_decl ? in->why_decl : "its prompt";
    if (r->clearance == POL_NOTHING) {
        bh_str_put(
            r->reason, sizeof(r->reason),
            "reads %s (%s) but may receive nothing at all: its endpoint '%s' is declared "
            "local and did not verify — trust its network (trusted_networks) if it is yours, "
            "point it at a local address, or declare it cloud",
            what, label_of(c, in->decl), c->p->endpoints[s->endpoint].name);
        return;
    }
    bh_str_put(r->reason, sizeof(r->reason),
               "reads %s (%s), above its clearance %s — every item would be refused: run it "
               "where %s may go, read less, or set on_sensitive skip or reroute:STAGE if only "
               "some items are that sensitive",
               what, label_of(c, in->decl), label_of(c, r->clearance), label_of(c, in->decl));
}

static void refuse_tool(const struct chk *c, size_t i, const struct input *in)
{
    struct pol_stage_report *r = &c->out[i];
    bh_str_put(r->reason, sizeof(r->reason),
               "is granted tool %s, which returns %s (%s), above its clearance %s — on_sensitive "
               "does not cover tools: remove the grant or run the stage where %s may go",
               in->tool, pol_tool_source(in->tool), label_of(c, in->tool_decl),
               label_of(c, r->clearance), label_of(c, in->tool_decl));
}

/* 1 (and the reason) when on_sensitive reroute does not go toward more
 * privacy: the target must take everything the stage may turn away. */
static int reroute_bad(const struct chk *c, size_t i, const struct input *in, char *buf,
                       size_t size)
{
    const struct pipeline *p = c->p;
    const struct pol_stage_report *r = &c->out[i];
    long t = p->stages[i].reroute;
    if (t < 0 || (size_t)t >= p->n_stages || (size_t)t == i) {
        bh_str_put(buf, size,
                   "sets on_sensitive reroute but %s — write \"reroute:STAGE\" naming a local "
                   "stage cleared for %s",
                   (size_t)t == i ? "reroutes to itself" : "names no stage to reroute to",
                   label_of(c, in->det));
        return 1;
    }
    const struct pol_stage_report *rt = &c->out[t];
    if (r->local && !rt->local) {
        bh_str_put(buf, size,
                   "reroutes to cloud stage %s — a local stage may only reroute to a local "
                   "one (toward more privacy): reroute to a local stage",
                   p->stages[t].name);
        return 1;
    }
    if (rt->clearance >= in->det)
        return 0;
    bh_str_put(buf, size,
               "reroutes to stage %s, cleared only for %s, but what it turns away may be %s "
               "(%s%s) — reroute to a stage cleared for %s",
               p->stages[t].name, label_of(c, rt->clearance), label_of(c, in->det),
               in->why_det ? in->why_det : "its prompt",
               in->det > in->decl ? ", with a detector hit" : "", label_of(c, in->det));
    return 1;
}

/* What on_sensitive does with an item above the clearance, in words. */
static void action_words(const struct chk *c, size_t i, char *buf, size_t size)
{
    const struct pipe_stage *s = &c->p->stages[i];
    long t = s->reroute;
    if (s->on_sensitive == PIPE_ONS_SKIP)
        bh_str_put(buf, size, "on_sensitive skip withholds that item");
    else if (s->on_sensitive == PIPE_ONS_REROUTE && t >= 0 && (size_t)t < c->p->n_stages)
        bh_str_put(buf, size, "on_sensitive reroute runs stage %s instead for that item",
                   c->p->stages[t].name);
    else
        bh_str_put(buf, size,
                   "on_sensitive fail refuses that item (exit 3) — set skip or "
                   "reroute:STAGE to handle it");
}

/* The note of a stage that is not refused: what can happen at run time. */
static void stage_note(const struct chk *c, size_t i, const struct input *in)
{
    const struct pipeline *p = c->p;
    struct pol_stage_report *r = &c->out[i];
    char act[160], what[200];
    action_words(c, i, act, sizeof(act));
    if (r->guarded && r->input > r->clearance) {
        bh_str_put(r->note, sizeof(r->note), "reads %s (%s), above its clearance %s: %s",
                   in->why_decl ? in->why_decl : "its prompt", label_of(c, r->input),
                   label_of(c, r->clearance), act);
        return;
    }
    if (r->input_detect <= r->clearance)
        return;
    char more[48] = "";
    if (in->n_det_over > 1)
        bh_str_put(more, sizeof(more), " (or %zu more of its inputs)", in->n_det_over - 1);
    long up = in->det_tool ? -1 : read_upstream(p, i, in->why_det);
    if (in->det_tool) {
        bh_str_put(r->note, sizeof(r->note),
                   "a detector hit in what tool %s returns may raise the conversation to %s, "
                   "above its clearance %s: the gate refuses that request and the task fails "
                   "(on_sensitive does not cover tools)",
                   in->why_det, label_of(c, r->input_detect), label_of(c, r->clearance));
        return;
    }
    if (up >= 0)
        bh_str_put(what, sizeof(what), "%s%s may carry %s at run time (a detector hit upstream%s)",
                   in->why_det, more, label_of(c, r->input_detect),
                   c->out[up].declassified ? " or a failed declassify guard" : "");
    else
        bh_str_put(what, sizeof(what), "a detector hit in %s%s may raise the prompt to %s",
                   in->why_det, more, label_of(c, r->input_detect));
    bh_str_put(r->note, sizeof(r->note), "%s, above its clearance %s: %s", what,
               label_of(c, r->clearance), act);
}

static void stage_verdict(struct chk *c, size_t i, const struct input *in)
{
    const struct pipe_stage *s = &c->p->stages[i];
    struct pol_stage_report *r = &c->out[i];
    unsigned why = 0;
    if (in->tool && in->tool_decl > r->clearance)
        why |= POL_REFUSED_TOOL; /* on_sensitive cannot reroute a conversation halfway */
    if (!r->guarded && r->input > r->clearance)
        why |= POL_REFUSED_INPUT;
    char rr[sizeof(r->reason)];
    if (s->on_sensitive == PIPE_ONS_REROUTE && reroute_bad(c, i, in, rr, sizeof(rr)))
        why |= POL_REFUSED_REROUTE;
    if (why & POL_REFUSED_TOOL)
        refuse_tool(c, i, in);
    else if (why & POL_REFUSED_INPUT)
        refuse_reads(c, i, in);
    else if (why & POL_REFUSED_REROUTE)
        memcpy(r->reason, rr, sizeof(r->reason));
    r->refused = why;
    r->ok = !why;
    if (r->ok)
        stage_note(c, i, in);
}

/* An output capped at a clearance; a stage that may receive nothing never
 * runs, so its output is the bottom label. */
static int capped(int l, int clearance)
{
    return clearance < 0 ? 0 : l < clearance ? l : clearance;
}

static void stage_outputs(struct chk *c, size_t i)
{
    const struct pipeline *p = c->p;
    const struct pipe_stage *s = &p->stages[i];
    struct pol_stage_report *r = &c->out[i];
    /* A stage never runs on input above its clearance (fail and skip turn it
     * away, reroute sends it to the target), so its own output is capped. */
    int od = capped(r->input, r->clearance), ot = capped(r->input_detect, r->clearance);
    if (s->on_sensitive == PIPE_ONS_REROUTE) {
        /* The dependants of a rerouted item read what the target wrote. */
        long t = s->reroute;
        int valid = t >= 0 && (size_t)t < p->n_stages && (size_t)t != i;
        od = pol_label_join(p, od, valid ? c->od[t] : -1);
        ot = pol_label_join(p, ot, valid ? c->ot[t] : -1);
    }
    /* Declassification lowers the declared tier only: a guard that fails at
     * run time keeps the input's label, and that is what the detector tier
     * (the exceptions a run must handle) has to cover. */
    if (s->declassify.enabled && s->declassify.to >= 0 && s->declassify.to < od) {
        od = s->declassify.to;
        r->declassified = 1;
    }
    r->output = c->od[i] = od;
    r->output_detect = c->ot[i] = ot;
}

static void stage_eval(struct chk *c, size_t i)
{
    const struct pipeline *p = c->p;
    const struct pipe_stage *s = &p->stages[i];
    if (c->state[i])
        return; /* done, or in a cycle: its outputs read as top meanwhile */
    c->state[i] = 1;
    size_t n = 0;
    const char **reads = pol_stage_reads(p, i, &n);
    for (size_t k = 0; k < n; k++) {
        long up = read_upstream(p, i, reads[k]);
        if (up >= 0)
            stage_eval(c, (size_t)up);
    }
    if (s->on_sensitive == PIPE_ONS_REROUTE && s->reroute >= 0 && (size_t)s->reroute < p->n_stages)
        stage_eval(c, (size_t)s->reroute); /* a standby stage may come later in the order */
    struct input in;
    stage_input(c, i, reads, n, &in);
    free(reads);
    struct pol_stage_report *r = &c->out[i];
    r->input = in.decl;
    r->input_detect = in.det;
    r->guarded = s->on_sensitive == PIPE_ONS_SKIP || s->on_sensitive == PIPE_ONS_REROUTE;
    stage_verdict(c, i, &in);
    stage_outputs(c, i);
    c->state[i] = 2;
}

size_t pol_check(const struct pipeline *p, const int *endpoint_local, struct pol_stage_report *out)
{
    return pol_check_facts(p, endpoint_local, NULL, out);
}

size_t pol_pool_worst(const struct pipeline *p, size_t ep, const int *local)
{
    const struct pipe_endpoint *e = &p->endpoints[ep];
    for (size_t h = 0; e->n_pool > 1 && h < e->n_pool; h++)
        if (!local[e->pool + h])
            return e->pool + h;
    return ep;
}

size_t pol_check_facts(const struct pipeline *p, const int *endpoint_local, const int *stage_remote,
                       struct pol_stage_report *out)
{
    size_t n = p->n_stages ? p->n_stages : 1;
    struct chk c = {.p = p,
                    .out = out,
                    .od = bh_xcalloc(n, sizeof(int)),
                    .ot = bh_xcalloc(n, sizeof(int)),
                    .state = bh_xcalloc(n, 1),
                    .det = pol_detectors_top(p)};
    struct bh_err lerr = {0};
    if (pol_labeller_new(&c.lab, p, &lerr))
        c.lab = NULL; /* the loader resolved every detector: only a hand-built pipeline */
    memset(out, 0, p->n_stages * sizeof(*out));
    /* Locality and clearance first: a reroute check reads its target's. */
    for (size_t i = 0; i < p->n_stages; i++) {
        int el = endpoint_local[pol_pool_worst(p, p->stages[i].endpoint, endpoint_local)];
        int remote = stage_remote ? stage_remote[i] : 0;
        out[i].local = pol_stage_local_facts(p, i, el, remote);
        out[i].clearance = pol_stage_clearance_facts(p, i, el, remote);
        c.od[i] = c.ot[i] = top(p);
    }
    for (size_t k = 0; k < p->n_stages; k++)
        stage_eval(&c, p->order ? p->order[k] : k);
    size_t bad = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        stage_eval(&c, i); /* a stage the order left out is still checked */
        bad += !out[i].ok;
    }
    free(c.od);
    free(c.ot);
    free(c.state);
    pol_labeller_free(c.lab);
    return bad;
}
