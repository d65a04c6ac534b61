/* tests/unit/test_policy_prop.c — the static proof against a brute force.
 *
 * Generates random pipelines (seeded per case, so a failure names the seed
 * and the case and dumps the pipeline) as hand-built struct pipeline values:
 * 1..8 stages in a random DAG with a random run order; 2..5 labels drawn
 * from names the built-in detectors use ("restricted" may be missing or sit
 * anywhere); git source fields with random labels, path rules that may lower
 * or raise, detectors all/off/named plus custom ones; stages with system and
 * user templates reading source fields, upstream outputs, for_each elements
 * (pr.files or an upstream output) and names that mean nothing; agent stages
 * with tools; on_sensitive fail/skip/reroute (to standby stages that do or do
 * not go toward more privacy); declassify; clearances, declared, verified and
 * remote localities and cloud model names.
 *
 * pol_check_facts and the flow graph must give, per stage, exactly what an
 * independent reference computes from pipelines/README.md ("Labels and
 * clearances" and "The static bounds check proves"). The reference calls no
 * policy code except the built-in detector table (det_all: data): it
 * walks every path from a source (field, rule, detector, tool) to each
 * stage through the reads and reroutes, capping each path at every stage it
 * passes, and applies the refusal rules. Exponential, which is fine for 8
 * stages, and it shares no structure with a topological pass.
 *
 * Where the README leaves a choice, the reference follows the headers:
 * pol_check's ok leaves a clearance above the endpoint's to the graph
 * (policy.h), which refuses it; a reroute to itself or to no stage (refused)
 * joins the top label into the output (unknown means top).
 *
 * BH_PROP_SEED=S and BH_PROP_CASE=N replay one case; every mismatch is listed
 * (up to MAX_REPORTS) before the test fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "detect/detect.h"
#include "policy/graph.h"
#include "policy/policy.h"
#include "util/bh_util.h"

enum {
    MAX_ST = 8,
    MAX_EP = 3,
    MAX_USER = 5,
    MAX_SYS = 2,
    MAX_PARTS = MAX_USER + MAX_SYS,
    N_FIELDS = 6,
    N_TOOLS = 5,
    MAX_RULES = 3,
    MAX_DET = 3,
    MAX_CUSTOM = 2,
    N_CASES = 3000,
    MAX_REPORTS = 12,
};
enum { F_REF = 1, F_TITLE = 2, F_FILES = 3, F_DIFF = 5 }; /* indices into field_names */
enum { DECL, DET };                                       /* the two bounds */
#define NO_CAP 1000                                       /* above every label */

static char *label_pool[] = {"public", "internal", "confidential", "restricted", "secret", "l5"};
static char *field_names[N_FIELDS] = {"pr.number", "pr.ref",   "pr.title",
                                      "pr.files",  "pr.stats", "pr.diff"};
static char *tool_names[N_TOOLS] = {"read_file", "list_files", "grep", "git_log", "diff"};
static char *globs[] = {"docs/**", "**/*.pem", "*.md", "src/**/*.c"};
static const char *stage_names[MAX_ST] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"};
static const char *models[] = {"qwen:7b",
                               "cloudy:7b",
                               "llama3",
                               "cloud", /* local first */
                               "gpt-oss:120b-cloud",
                               "kimi:cloud",
                               "glm:CLOUD",
                               "mybot-cloud"};
static const char *each_names[] = {"each.path", "each.status", "each.diff", "each"};
static const char *const ons_names[] = {"fail", "skip", "reroute"};

struct gen {
    struct pipeline p;
    int tame; /* verified local endpoints and models, few declarations:
                 without such cases nearly every pipeline is refused */
    char *labels[5];
    int field_labels[N_FIELDS];
    struct pipe_rule rules[MAX_RULES];
    char *det_names[MAX_DET];
    struct pipe_custom_detector custom[MAX_CUSTOM];
    struct pipe_endpoint ep[MAX_EP];
    int verified[MAX_EP];
    int remote[MAX_ST]; /* the server lists the stage's model as a cloud stub */
    struct pipe_stage st[MAX_ST];
    struct pipe_tpl_part parts[MAX_ST][MAX_PARTS]; /* system parts first, then user */
    char part_text[MAX_ST][MAX_PARTS][24];
    char *reads[MAX_ST][MAX_PARTS];
    char *tools[MAX_ST][N_TOOLS];
    char for_each[MAX_ST][16];
    size_t deps[MAX_ST][MAX_ST];
    size_t order[MAX_ST];
};

/* What the reference expects of one stage. */
struct ref_stage {
    int local, clearance, over;
    int bound[2]; /* input bound: DECL, DET */
    int out[2];   /* output bound */
    int guarded, declassified;
    int flow_ok; /* pol_check's verdict: every rule but the endpoint's (policy.h) */
    int ok;      /* not refused by check: flow_ok and not over its endpoint */
    int why_flow, why_tool, why_reroute; /* which refusal rules fired (for the dump) */
};

struct ref {
    const struct gen *g;
    int dtop;        /* the highest label the enabled detectors raise to, 0 when none */
    int clr[MAX_ST]; /* effective clearances, needed before the walk (caps) */
    int local[MAX_ST];
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static uint64_t case_seed(uint64_t seed, int n) /* splitmix64: cases independent */
{
    uint64_t z = seed + 0x9e3779b97f4a7c15u * (uint64_t)(n + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return z ? z : 1;
}

static int top_of(const struct gen *g)
{
    return (int)g->p.n_labels - 1;
}

static int maybe_label(const struct gen *g)
{
    if (g->tame)
        return rnd(4) == 0 ? (int)rnd((uint32_t)g->p.n_labels) : -1;
    return rnd(3) == 0 ? -1 : (int)rnd((uint32_t)g->p.n_labels);
}

/* --- the generator ------------------------------------------------------------ */

static void add_dep(struct gen *g, size_t s, size_t d)
{
    for (size_t k = 0; k < g->st[s].n_deps; k++)
        if (g->deps[s][k] == d)
            return;
    g->deps[s][g->st[s].n_deps++] = d;
}

/* 2..5 distinct names in a random order: sometimes the default list. */
static void gen_labels(struct gen *g)
{
    size_t n = 2 + rnd(4), pool = BH_NELEM(label_pool);
    char *shuffled[BH_NELEM(label_pool)];
    memcpy(shuffled, label_pool, sizeof(shuffled));
    if (rnd(3) != 0)
        for (size_t i = pool; i > 1; i--) {
            size_t j = rnd((uint32_t)i);
            char *t = shuffled[i - 1];
            shuffled[i - 1] = shuffled[j];
            shuffled[j] = t;
        }
    memcpy(g->labels, shuffled, n * sizeof(*g->labels));
    g->p.labels = g->labels;
    g->p.n_labels = n;
}

/* Rules that may lower or raise; detectors all (unset), off ([]), or some
 * built-in ids and groups with custom ones. */
static void gen_source(struct gen *g)
{
    struct pipe_source *src = &g->p.source;
    size_t n_det = 0;
    const struct det_detector *table = det_all(&n_det);
    *src = (struct pipe_source){.kind = "git",
                                .label = (int)rnd((uint32_t)g->p.n_labels),
                                .fields = field_names,
                                .field_labels = g->field_labels,
                                .n_fields = N_FIELDS,
                                .rules = g->rules,
                                .n_rules = rnd(MAX_RULES + 1),
                                .detectors = g->det_names,
                                .custom = g->custom};
    for (size_t i = 0; i < N_FIELDS; i++)
        g->field_labels[i] = rnd(4) == 0 ? src->label : (int)rnd((uint32_t)g->p.n_labels);
    for (size_t i = 0; i < src->n_rules; i++)
        g->rules[i] =
            (struct pipe_rule){.glob = globs[rnd(4)], .label = (int)rnd((uint32_t)g->p.n_labels)};
    uint32_t how = rnd(4);
    if (how == 0) {
        src->detectors = NULL; /* not given: every built-in detector */
        return;
    }
    src->detectors_set = 1;
    if (how == 1)
        return; /* "detectors": [] */
    src->n_detectors = rnd(MAX_DET + 1);
    for (size_t i = 0; i < src->n_detectors; i++) {
        const struct det_detector *d = &table[rnd((uint32_t)n_det)];
        g->det_names[i] = (char *)(rnd(2) ? d->id : d->group);
    }
    src->n_custom = rnd(MAX_CUSTOM + 1);
    for (size_t i = 0; i < src->n_custom; i++)
        g->custom[i] = (struct pipe_custom_detector){.id = i ? "custom-b" : "custom-a",
                                                     .regex = "ticket-[0-9]+",
                                                     .label = (int)rnd((uint32_t)g->p.n_labels)};
}

/* An element name for stage s: mostly the ones its for_each provides, now and
 * then one it does not (which names nothing: top). */
static const char *each_name(const struct pipe_stage *st)
{
    if (st->for_each && rnd(5) != 0)
        return st->for_each_stage >= 0 ? "each" : each_names[rnd(3)];
    return each_names[rnd(4)];
}

/* Part k of stage s (at position pos of the order): a placeholder or a literal. */
static void gen_part(struct gen *g, size_t s, size_t pos, size_t k)
{
    struct pipe_tpl_part *part = &g->parts[s][k];
    char *text = g->part_text[s][k];
    uint32_t what = rnd(12);
    *part = (struct pipe_tpl_part){.is_field = 1, .text = text, .line = 1, .col = 1};
    if (what < 5) {
        snprintf(text, 24, "%s", field_names[what == 4 ? F_DIFF : rnd(N_FIELDS)]);
    } else if (what < 8 && pos > 0) {
        size_t up = g->order[rnd((uint32_t)pos)];
        snprintf(text, 24, "%s.output", stage_names[up]);
        add_dep(g, s, up);
    } else if (what == 8 && (g->st[s].for_each || rnd(3) == 0)) {
        snprintf(text, 24, "%s", each_name(&g->st[s]));
    } else if (what == 9 && !g->tame) {
        snprintf(text, 24, "%s", rnd(2) ? "pr.mystery" : "nosuch.output");
    } else {
        part->is_field = 0;
        snprintf(text, 24, "literal text ");
    }
}

/* s->reads: every distinct placeholder, system first, in order of first appearance. */
static void set_reads(struct gen *g, size_t s)
{
    struct pipe_stage *st = &g->st[s];
    size_t total = st->system.n_parts + st->tpl.n_parts;
    st->reads = g->reads[s];
    st->n_reads = 0;
    for (size_t k = 0; k < total; k++) {
        if (!g->parts[s][k].is_field)
            continue;
        size_t r = 0;
        while (r < st->n_reads && strcmp(st->reads[r], g->parts[s][k].text) != 0)
            r++;
        if (r == st->n_reads)
            st->reads[st->n_reads++] = g->parts[s][k].text;
    }
}

/* kind, scope, for_each, tools, on_sensitive (reroute targets come later), declassify. */
static void gen_stage_shape(struct gen *g, size_t s, size_t pos)
{
    struct pipe_stage *st = &g->st[s];
    uint32_t kind = rnd(8), fe = rnd(6), ons = rnd(4);
    st->kind = kind < 2 ? PIPE_KIND_AGENT : kind == 2 ? PIPE_KIND_REDUCE : PIPE_KIND_CHAT;
    st->scope = st->kind == PIPE_KIND_REDUCE || rnd(6) == 0 ? PIPE_SCOPE_BATCH : PIPE_SCOPE_ITEM;
    st->for_each_stage = -1;
    if (st->scope == PIPE_SCOPE_ITEM && fe == 0) {
        snprintf(g->for_each[s], sizeof(g->for_each[s]), "pr.files");
        st->for_each = g->for_each[s];
    } else if (st->scope == PIPE_SCOPE_ITEM && fe == 1 && pos > 0) {
        size_t up = g->order[rnd((uint32_t)pos)];
        snprintf(g->for_each[s], sizeof(g->for_each[s]), "%s.output", stage_names[up]);
        st->for_each = g->for_each[s];
        st->for_each_stage = (long)up;
        add_dep(g, s, up);
    }
    st->tools = g->tools[s];
    for (size_t t = 0; st->kind == PIPE_KIND_AGENT && t < N_TOOLS; t++)
        if (rnd(3) == 0)
            st->tools[st->n_tools++] = tool_names[t];
    st->on_sensitive = ons == 0 ? PIPE_ONS_SKIP : ons == 1 ? PIPE_ONS_REROUTE : PIPE_ONS_FAIL;
    st->reroute = -1;
    if (rnd(4) == 0)
        st->declassify = (struct pipe_declassify){.enabled = 1,
                                                  .to = (int)rnd((uint32_t)g->p.n_labels),
                                                  .no_verbatim_tokens = 8,
                                                  .detectors = 1};
}

static void gen_stage(struct gen *g, size_t s, size_t pos)
{
    struct pipe_stage *st = &g->st[s];
    *st = (struct pipe_stage){.name = (char *)stage_names[s],
                              .endpoint = rnd((uint32_t)g->p.n_endpoints),
                              .model = (char *)models[rnd(g->tame ? 4 : 8)],
                              .clearance = maybe_label(g),
                              .deps = g->deps[s]};
    gen_stage_shape(g, s, pos);
    st->system = (struct pipe_tpl){.parts = g->parts[s], .n_parts = rnd(MAX_SYS + 1)};
    st->tpl =
        (struct pipe_tpl){.parts = g->parts[s] + st->system.n_parts, .n_parts = rnd(MAX_USER + 1)};
    for (size_t k = 0; k < st->system.n_parts + st->tpl.n_parts; k++)
        gen_part(g, s, pos, k);
    set_reads(g, s);
    if (pos > 0 && rnd(3) == 0)
        add_dep(g, s, g->order[rnd((uint32_t)pos)]); /* an `after` */
    g->remote[s] = !g->tame && rnd(8) == 0;
}

/* 1 when a's bounds depend on b's: through reads, for_each and reroutes. */
static int depends(const struct gen *g, size_t a, size_t b)
{
    if (a == b)
        return 1;
    for (size_t k = 0; k < g->st[a].n_deps; k++)
        if (depends(g, g->st[a].deps[k], b))
            return 1;
    long t = g->st[a].reroute;
    return t >= 0 && (size_t)t != a && depends(g, (size_t)t, b);
}

/* Reroute targets: any stage that does not depend on the rerouting one (it
 * runs in its place, so it cannot wait for it), before or after it in the
 * run order; valid or not toward privacy, the reference decides. */
static void gen_reroutes(struct gen *g)
{
    for (size_t s = 0; s < g->p.n_stages; s++) {
        struct pipe_stage *st = &g->st[s];
        size_t cand[MAX_ST], n = 0;
        if (st->on_sensitive != PIPE_ONS_REROUTE)
            continue;
        if (!g->tame && rnd(12) == 0) { /* refused: to itself, or to no stage */
            st->reroute = rnd(2) ? (long)s : -1;
            st->standby = st->reroute >= 0;
            continue;
        }
        for (size_t t = 0; t < g->p.n_stages; t++)
            if (!depends(g, t, s))
                cand[n++] = t;
        if (n == 0) {
            st->on_sensitive = PIPE_ONS_SKIP;
            continue;
        }
        st->reroute = (long)cand[rnd((uint32_t)n)];
        g->st[st->reroute].standby = 1;
    }
}

static void gen_pipeline(struct gen *g)
{
    memset(g, 0, sizeof(*g));
    g->p = (struct pipeline){.name = "prop",
                             .file = "prop.json",
                             .endpoints = g->ep,
                             .n_endpoints = 1 + rnd(MAX_EP),
                             .stages = g->st,
                             .n_stages = 1 + rnd(MAX_ST),
                             .order = g->order};
    g->tame = rnd(2);
    gen_labels(g);
    gen_source(g);
    for (size_t i = 0; i < g->p.n_endpoints; i++) {
        g->ep[i] = (struct pipe_endpoint){.name = "ep",
                                          .url = "http://x",
                                          .declared_local = g->tame || rnd(2),
                                          .clearance = maybe_label(g)};
        g->verified[i] = g->ep[i].declared_local && (g->tame || rnd(4) != 0);
    }
    size_t n_st = g->p.n_stages;
    for (size_t i = 0; i < n_st; i++) /* a random run order: a shuffle */
        g->order[i] = i;
    for (size_t i = n_st; i > 1; i--) {
        size_t j = rnd((uint32_t)i), t = g->order[i - 1];
        g->order[i - 1] = g->order[j];
        g->order[j] = t;
    }
    for (size_t k = 0; k < n_st; k++)
        gen_stage(g, g->order[k], k);
    gen_reroutes(g);
}

/* --- the reference: locality and clearance -------------------------------------- */

static int ref_is_cloud_model(const char *m)
{
    char low[64];
    size_t n = strlen(m);
    for (size_t i = 0; i <= n && i < sizeof(low); i++)
        low[i] = (char)tolower((unsigned char)m[i]);
    const char *colon = strrchr(low, ':');
    return (colon && strcmp(colon, ":cloud") == 0) ||
           (n >= 6 && strcmp(low + n - 6, "-cloud") == 0);
}

static int ref_clearance(const struct gen *g, size_t s, int remote)
{
    const struct pipe_stage *st = &g->st[s];
    const struct pipe_endpoint *e = &g->ep[st->endpoint];
    int verified = g->verified[st->endpoint];
    if (e->declared_local && !verified)
        return POL_NOTHING; /* a local claim the network refutes: nothing at all */
    if (verified && (ref_is_cloud_model(st->model) || remote))
        return 0; /* a cloud destination nobody declared: the bottom, whatever the stage says */
    int cap = e->clearance >= 0 ? e->clearance : verified ? top_of(g) : 0;
    int want = st->clearance >= 0 ? st->clearance : cap;
    return want < cap ? want : cap;
}

static int ref_over_endpoint(const struct gen *g, size_t s)
{
    const struct pipe_endpoint *e = &g->ep[g->st[s].endpoint];
    int conf = e->clearance >= 0 ? e->clearance : e->declared_local ? top_of(g) : 0;
    return g->st[s].clearance > conf;
}

/* --- the reference: sources and their two bounds -------------------------------- */

static int max_i(int a, int b)
{
    return a > b ? a : b;
}

static int min_i(int a, int b)
{
    return a < b ? a : b;
}

static int ref_label_named(const struct gen *g, const char *name)
{
    for (size_t i = 0; i < g->p.n_labels; i++)
        if (strcmp(g->labels[i], name) == 0)
            return (int)i;
    return -1;
}

/* A built-in detector is enabled when no list was given, or the list names
 * its id or its group. */
static int ref_detector_enabled(const struct gen *g, const struct det_detector *d)
{
    const struct pipe_source *src = &g->p.source;
    if (!src->detectors_set)
        return 1;
    for (size_t i = 0; i < src->n_detectors; i++)
        if (strcmp(src->detectors[i], d->id) == 0 || strcmp(src->detectors[i], d->group) == 0)
            return 1;
    return 0;
}

static int ref_detectors_top(const struct gen *g)
{
    size_t n = 0;
    const struct det_detector *table = det_all(&n);
    int top = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ref_detector_enabled(g, &table[i]))
            continue;
        int l = ref_label_named(g, table[i].label);
        top = max_i(top, l >= 0 ? l : top_of(g));
    }
    for (size_t i = 0; i < g->p.source.n_custom; i++)
        top = max_i(top, g->p.source.custom[i].label);
    return top;
}

static int ref_field(const struct gen *g, size_t f)
{
    return g->field_labels[f];
}

/* A content field: its label joined with every rule's (an unknown file may
 * match any rule or none). */
static int ref_content(const struct gen *g, size_t f)
{
    int l = ref_field(g, f);
    for (size_t i = 0; i < g->p.source.n_rules; i++)
        l = max_i(l, g->p.source.rules[i].label);
    return l;
}

/* The stage a placeholder of stage s reads the output of, or -1. */
static long ref_upstream(const struct gen *g, size_t s, const char *text)
{
    if (strcmp(text, "each") == 0)
        return g->st[s].for_each_stage;
    for (size_t i = 0; i < g->p.n_stages; i++) {
        char want[40];
        snprintf(want, sizeof(want), "%s.output", stage_names[i]);
        if (strcmp(text, want) == 0)
            return (long)i;
    }
    return -1;
}

/* The declared bound of a placeholder that is not a stage's output. */
static int ref_leaf_declared(const struct gen *g, size_t s, const char *text)
{
    const char *fe = g->st[s].for_each;
    int files = fe && strcmp(fe, "pr.files") == 0;
    if (files && (strcmp(text, "each.path") == 0 || strcmp(text, "each.status") == 0))
        return ref_field(g, F_FILES);
    if (files && strcmp(text, "each.diff") == 0)
        return ref_content(g, F_DIFF);
    for (size_t f = 0; f < N_FIELDS; f++)
        if (strcmp(text, field_names[f]) == 0)
            return f == F_DIFF ? ref_content(g, f) : ref_field(g, f);
    return top_of(g); /* a name that means nothing: unknown means top */
}

static int ref_tool_declared(const struct gen *g, const char *tool)
{
    if (strcmp(tool, "list_files") == 0)
        return ref_field(g, F_FILES);
    if (strcmp(tool, "git_log") == 0)
        return max_i(ref_field(g, F_TITLE), ref_field(g, F_FILES));
    return ref_content(g, F_DIFF); /* read_file, grep, diff */
}

static int ref_tier(const struct ref *r, int declared, int tier)
{
    return tier == DET ? max_i(declared, r->dtop) : declared;
}

/* A tool's bound in a tier: read_file and grep are labelled by whole files
 * at run time, and a binary one cannot be scanned, so with detectors they
 * can bring the top label. */
static int ref_tool_tier(const struct ref *r, const char *tool, int tier)
{
    if (tier == DET && (strcmp(tool, "read_file") == 0 || strcmp(tool, "grep") == 0))
        return top_of(r->g);
    return ref_tier(r, ref_tool_declared(r->g, tool), tier);
}

/* --- the reference: every path ----------------------------------------------------- */

static int walk_output(const struct ref *r, size_t x, int cap, int tier);

/* The highest label any path brings into stage x's prompt or conversation,
 * each path capped at cap. Distinct placeholders only (the join is idempotent;
 * it keeps the walk from multiplying by repeated reads). */
static int walk_input(const struct ref *r, size_t x, int cap, int tier)
{
    const struct gen *g = r->g;
    const struct pipe_stage *st = &g->st[x];
    size_t total = st->system.n_parts + st->tpl.n_parts;
    int best = 0; /* a stage that reads nothing receives the bottom label */
    for (size_t k = 0; k < total; k++) {
        const struct pipe_tpl_part *part = &g->parts[x][k];
        int seen = 0;
        for (size_t j = 0; j < k && part->is_field; j++)
            seen |= g->parts[x][j].is_field && strcmp(g->parts[x][j].text, part->text) == 0;
        if (!part->is_field || seen)
            continue;
        long up = ref_upstream(g, x, part->text);
        int v = up >= 0 ? walk_output(r, (size_t)up, cap, tier)
                        : min_i(ref_tier(r, ref_leaf_declared(g, x, part->text), tier), cap);
        best = max_i(best, v);
        /* A batch stage heads each item's value with the item's key, which is
         * the text of pr.ref (README, "Item keys and template text"). */
        if (st->scope == PIPE_SCOPE_BATCH && (up < 0 || g->st[up].scope == PIPE_SCOPE_ITEM))
            best = max_i(best, min_i(ref_tier(r, ref_field(g, F_REF), tier), cap));
    }
    for (size_t t = 0; t < st->n_tools; t++)
        best = max_i(best, min_i(ref_tool_tier(r, st->tools[t], tier), cap));
    return best;
}

/* 1 when stage x reroutes to another stage. A reroute to itself or to no
 * stage is refused; its target's output is unknown, so it joins the top
 * label (the README leaves it open; unknown means top, and fail closed). */
static int ref_reroutes_elsewhere(const struct gen *g, size_t x)
{
    const struct pipe_stage *st = &g->st[x];
    return st->on_sensitive == PIPE_ONS_REROUTE && st->reroute >= 0 && (size_t)st->reroute != x;
}

/* The cap rule 1 puts on what stage x contributes itself: its clearance
 * ("a stage never runs on an input above its clearance"), the bottom when
 * its clearance is nothing ("never runs at all"); a reroute target still
 * joins in (rule 2). */
static int ref_own_cap(const struct ref *r, size_t x, int cap)
{
    if (r->clr[x] == POL_NOTHING)
        return 0;
    return min_i(cap, r->clr[x]);
}

/* The highest label any path brings into stage x's output: its input capped
 * (rule 1), joined with its reroute target's output (2), then lowered to
 * declassify.to (3).
 * declassify lowers the declared bound only ("at run time a guard that fails
 * keeps the input's label, so the detector output bound ... keeps it too"). */
static int walk_output(const struct ref *r, size_t x, int cap, int tier)
{
    const struct pipe_stage *st = &r->g->st[x];
    int dcap = st->declassify.enabled && tier == DECL ? min_i(cap, st->declassify.to) : cap;
    int best = walk_input(r, x, ref_own_cap(r, x, dcap), tier);
    if (ref_reroutes_elsewhere(r->g, x))
        best = max_i(best, walk_output(r, (size_t)st->reroute, dcap, tier));
    else if (st->on_sensitive == PIPE_ONS_REROUTE)
        best = max_i(best, min_i(top_of(r->g), dcap));
    return best;
}

/* The declared output bound of stage s before its own declassify. */
static int ref_output_undeclassified(const struct ref *r, size_t s)
{
    const struct pipe_stage *st = &r->g->st[s];
    int own = walk_input(r, s, ref_own_cap(r, s, NO_CAP), DECL);
    if (!ref_reroutes_elsewhere(r->g, s))
        return st->on_sensitive == PIPE_ONS_REROUTE ? top_of(r->g) : own;
    return max_i(own, walk_output(r, (size_t)st->reroute, NO_CAP, DECL));
}

/* --- the reference: verdicts -------------------------------------------------------- */

static void ref_init(struct ref *r, const struct gen *g, const int *remote)
{
    r->g = g;
    r->dtop = ref_detectors_top(g);
    for (size_t s = 0; s < g->p.n_stages; s++) {
        const struct pipe_stage *st = &g->st[s];
        r->clr[s] = ref_clearance(g, s, remote[s]);
        r->local[s] = g->verified[st->endpoint] && !ref_is_cloud_model(st->model) && !remote[s];
    }
}

static void ref_stage(const struct ref *r, size_t s, struct ref_stage *out)
{
    const struct pipe_stage *st = &r->g->st[s];
    *out = (struct ref_stage){.local = r->local[s],
                              .clearance = r->clr[s],
                              .over = ref_over_endpoint(r->g, s),
                              .guarded = st->on_sensitive != PIPE_ONS_FAIL};
    for (int tier = DECL; tier <= DET; tier++) {
        out->bound[tier] = walk_input(r, s, NO_CAP, tier);
        out->out[tier] = walk_output(r, s, NO_CAP, tier);
    }
    out->declassified =
        st->declassify.enabled && st->declassify.to < ref_output_undeclassified(r, s);
    out->why_flow = !out->guarded && out->bound[DECL] > out->clearance;
    for (size_t t = 0; t < st->n_tools; t++)
        out->why_tool |= ref_tool_declared(r->g, st->tools[t]) > out->clearance;
    if (ref_reroutes_elsewhere(r->g, s)) {
        size_t t = (size_t)st->reroute;
        out->why_reroute = r->clr[t] < out->bound[DET] || (r->local[s] && !r->local[t]);
    } else {
        out->why_reroute = st->on_sensitive == PIPE_ONS_REROUTE; /* to itself or nothing */
    }
    out->flow_ok = !(out->why_flow || out->why_tool || out->why_reroute);
    out->ok = out->flow_ok && !out->over;
}

/* --- reporting ------------------------------------------------------------------------ */

static uint64_t run_seed;
static int cur_case, cur_dumped;
static size_t n_mismatch;

static const char *lbl(const struct gen *g, int l)
{
    if (l == POL_NOTHING)
        return "nothing";
    return l >= 0 && (size_t)l < g->p.n_labels ? g->labels[l] : "?";
}

static void dump_source(const struct gen *g)
{
    const struct pipe_source *src = &g->p.source;
    print_message("  labels:");
    for (size_t i = 0; i < g->p.n_labels; i++)
        print_message(" %s", g->labels[i]);
    print_message("\n  source label %s; fields:", lbl(g, src->label));
    for (size_t f = 0; f < N_FIELDS; f++)
        print_message(" %s=%s", field_names[f], lbl(g, g->field_labels[f]));
    print_message("\n  rules:");
    for (size_t i = 0; i < src->n_rules; i++)
        print_message(" %s=%s", src->rules[i].glob, lbl(g, src->rules[i].label));
    print_message("\n  detectors: %s", src->detectors_set ? "[" : "all built-in");
    for (size_t i = 0; src->detectors_set && i < src->n_detectors; i++)
        print_message(" %s", src->detectors[i]);
    for (size_t i = 0; i < src->n_custom; i++)
        print_message(" %s=%s", src->custom[i].id, lbl(g, src->custom[i].label));
    print_message("%s\n", src->detectors_set ? " ]" : "");
    for (size_t i = 0; i < g->p.n_endpoints; i++)
        print_message("  endpoint %zu: declared %s, verified %d, clearance %s\n", i,
                      g->ep[i].declared_local ? "local" : "cloud", g->verified[i],
                      g->ep[i].clearance >= 0 ? lbl(g, g->ep[i].clearance) : "-");
}

static void dump_stage(const struct gen *g, size_t s)
{
    const struct pipe_stage *st = &g->st[s];
    print_message("  %s: endpoint %zu model %s remote %d clearance %s kind %d scope %d "
                  "for_each %s on_sensitive %s",
                  st->name, st->endpoint, st->model, g->remote[s],
                  st->clearance >= 0 ? lbl(g, st->clearance) : "-", (int)st->kind, (int)st->scope,
                  st->for_each ? st->for_each : "-", ons_names[st->on_sensitive]);
    if (st->reroute >= 0)
        print_message(":%s", stage_names[st->reroute]);
    print_message("%s declassify %s\n    system/user %zu/%zu reads:", st->standby ? " standby" : "",
                  st->declassify.enabled ? lbl(g, st->declassify.to) : "-", st->system.n_parts,
                  st->tpl.n_parts);
    for (size_t k = 0; k < st->n_reads; k++)
        print_message(" %s", st->reads[k]);
    print_message("; tools:");
    for (size_t k = 0; k < st->n_tools; k++)
        print_message(" %s", st->tools[k]);
    print_message("; deps:");
    for (size_t k = 0; k < st->n_deps; k++)
        print_message(" %s", stage_names[st->deps[k]]);
    print_message("\n");
}

static void dump_case(const struct gen *g)
{
    print_message("case %d of seed %#llx (replay: BH_PROP_SEED=%#llx BH_PROP_CASE=%d):\n", cur_case,
                  (unsigned long long)run_seed, (unsigned long long)run_seed, cur_case);
    dump_source(g);
    print_message("  run order:");
    for (size_t k = 0; k < g->p.n_stages; k++)
        print_message(" %s", stage_names[g->order[k]]);
    print_message("\n");
    for (size_t s = 0; s < g->p.n_stages; s++)
        dump_stage(g, s);
}

/* Records a mismatch (the first MAX_REPORTS are printed with their case). */
static void expect_label(const struct gen *g, const char *where, size_t s, const char *what,
                         int got, int want)
{
    if (got == want)
        return;
    if (n_mismatch++ >= MAX_REPORTS)
        return;
    if (!cur_dumped)
        dump_case(g);
    cur_dumped = 1;
    print_message("MISMATCH seed %#llx case %d %s stage %s: %s expected %s (%d) got %s (%d)\n",
                  (unsigned long long)run_seed, cur_case, where, stage_names[s], what, lbl(g, want),
                  want, lbl(g, got), got);
}

static void expect_flag(const struct gen *g, const char *where, size_t s, const char *what, int got,
                        int want)
{
    if (!!got == !!want)
        return;
    if (n_mismatch++ >= MAX_REPORTS)
        return;
    if (!cur_dumped)
        dump_case(g);
    cur_dumped = 1;
    print_message("MISMATCH seed %#llx case %d %s stage %s: %s expected %d got %d\n",
                  (unsigned long long)run_seed, cur_case, where, stage_names[s], what, !!want,
                  !!got);
}

/* --- the property ------------------------------------------------------------------- */

struct stats {
    size_t cases_refused, cases_accepted;
    size_t flow, tool, reroute_bad, reroute_ok, over, guarded_noted, detect_above, declassified,
        rules_raise, nothing;
};

/* A refusal has a reason; a bound above the clearance that is not refused is
 * noted (README: "check notes it", "likewise noted, not refused"). */
static void expect_text(const struct gen *g, const char *w, size_t s, int ok,
                        const struct ref_stage *want, const char *reason, const char *note)
{
    if (!ok)
        expect_flag(g, w, s, "a reason when refused", reason[0] != '\0', 1);
    if (ok && want->ok && want->bound[DET] > want->clearance)
        expect_flag(g, w, s, "a note for a bound above the clearance", note[0] != '\0', 1);
}

static void check_report(const struct gen *g, size_t s, const struct pol_stage_report *rep,
                         const struct ref_stage *want)
{
    const char *w = "pol_check";
    expect_flag(g, w, s, "local", rep->local, want->local);
    expect_label(g, w, s, "clearance", rep->clearance, want->clearance);
    expect_label(g, w, s, "input", rep->input, want->bound[DECL]);
    expect_label(g, w, s, "input_detect", rep->input_detect, want->bound[DET]);
    expect_label(g, w, s, "output", rep->output, want->out[DECL]);
    expect_label(g, w, s, "output_detect", rep->output_detect, want->out[DET]);
    expect_flag(g, w, s, "guarded", rep->guarded, want->guarded);
    expect_flag(g, w, s, "declassified", rep->declassified, want->declassified);
    expect_flag(g, w, s, "ok", rep->ok, want->flow_ok);
    expect_text(g, w, s, rep->ok, want, rep->reason, rep->note);
}

/* A data edge into stage `to` reads `via` (a placeholder or a tool): the
 * node it comes from and both bounds. */
static void check_data_edge(const struct gen *g, const struct ref *r, const struct ref_stage *want,
                            const struct pol_graph *graph, const struct pol_graph_edge *e)
{
    const struct pol_graph_node *from = &graph->nodes[e->from];
    size_t to = graph->nodes[e->to].stage;
    const char *via = e->via ? e->via : "(no via)";
    int is_tool = 0, bound[2];
    for (size_t t = 0; t < g->st[to].n_tools; t++)
        is_tool |= strcmp(via, g->st[to].tools[t]) == 0;
    long up = is_tool ? -1 : ref_upstream(g, to, via);
    for (int tier = DECL; tier <= DET; tier++)
        bound[tier] = is_tool   ? ref_tool_tier(r, via, tier)
                      : up >= 0 ? want[up].out[tier]
                                : ref_tier(r, ref_leaf_declared(g, to, via), tier);
    expect_flag(g, "graph edge from a stage node", to, via, from->kind == POL_NODE_STAGE, up >= 0);
    expect_flag(g, "graph edge from a tool node", to, via, from->kind == POL_NODE_TOOL, is_tool);
    if (up >= 0)
        expect_flag(g, "graph edge from the stage read", to, via, from->stage == (size_t)up, 1);
    expect_label(g, "graph edge bound", to, via, e->bound, bound[DECL]);
    expect_label(g, "graph edge bound_detect", to, via, e->bound_detect, bound[DET]);
    expect_flag(g, "graph edge ok", to, via, e->ok, e->bound <= want[to].clearance);
    expect_flag(g, "graph edge ok_detect", to, via, e->ok_detect,
                e->bound_detect <= want[to].clearance);
}

/* A reroute edge: the origin's input bounds, ok when the target may take them. */
static void check_reroute_edge(const struct gen *g, const struct ref_stage *want,
                               const struct pol_graph *graph, const struct pol_graph_edge *e)
{
    size_t origin = graph->nodes[e->from].stage, to = graph->nodes[e->to].stage;
    expect_flag(g, "graph reroute edge", origin, "from a stage node",
                graph->nodes[e->from].kind == POL_NODE_STAGE, 1);
    expect_flag(
        g, "graph reroute edge", origin, "from a rerouting stage to its target",
        g->st[origin].on_sensitive == PIPE_ONS_REROUTE && (size_t)g->st[origin].reroute == to, 1);
    expect_label(g, "graph reroute edge", origin, "bound", e->bound, want[origin].bound[DECL]);
    expect_label(g, "graph reroute edge", origin, "bound_detect", e->bound_detect,
                 want[origin].bound[DET]);
    expect_flag(g, "graph reroute edge", origin, "ok", e->ok, !want[origin].why_reroute);
}

/* Every distinct read and every tool of a stage has exactly one data edge;
 * a rerouting stage has one reroute edge. */
static void check_edge_counts(const struct gen *g, const struct pol_graph *graph, size_t s)
{
    const struct pipe_stage *st = &g->st[s];
    size_t data = 0, reroutes = 0;
    for (size_t k = 0; k < graph->n_edges; k++) {
        const struct pol_graph_edge *e = &graph->edges[k];
        if (e->kind == POL_EDGE_DATA && graph->nodes[e->to].stage == s)
            data++;
        if (e->kind == POL_EDGE_REROUTE && graph->nodes[e->from].stage == s)
            reroutes++;
    }
    expect_label(g, "graph", s, "data edges (reads and tools)", (int)data,
                 (int)(st->n_reads + st->n_tools));
    if (st->reroute != (long)s) /* a reroute to itself may or may not be drawn */
        expect_label(g, "graph", s, "reroute edges", (int)reroutes, st->reroute >= 0);
}

static void check_graph_stage(const struct gen *g, const struct pol_graph_stage *gs, size_t s,
                              const struct ref_stage *want)
{
    const char *w = "graph";
    expect_flag(g, w, s, "local", gs->local, want->local);
    expect_label(g, w, s, "clearance", gs->clearance, want->clearance);
    expect_label(g, w, s, "input", gs->input, want->bound[DECL]);
    expect_label(g, w, s, "input_detect", gs->input_detect, want->bound[DET]);
    expect_label(g, w, s, "output", gs->output, want->out[DECL]);
    expect_label(g, w, s, "output_detect", gs->output_detect, want->out[DET]);
    expect_flag(g, w, s, "guarded", gs->guarded, want->guarded);
    expect_flag(g, w, s, "declassified", gs->declassified, want->declassified);
    expect_flag(g, w, s, "flow_ok", gs->flow_ok, want->flow_ok);
    expect_flag(g, w, s, "over_endpoint", gs->over_endpoint, want->over);
    expect_flag(g, w, s, "ok", gs->ok, want->ok);
    expect_text(g, w, s, gs->ok, want, gs->reason[0] ? gs->reason : gs->conflict, gs->note);
    if (gs->over_endpoint)
        expect_flag(g, w, s, "a conflict when over its endpoint", gs->conflict[0] != '\0', 1);
}

static void check_graph(const struct gen *g, const struct ref *r, const struct ref_stage *want)
{
    struct pol_endpoint_fact facts[MAX_EP];
    for (size_t i = 0; i < g->p.n_endpoints; i++)
        facts[i] = (struct pol_endpoint_fact){.local = g->verified[i],
                                              .declared_cloud = !g->ep[i].declared_local,
                                              .addr_kind = g->verified[i] ? POL_ADDR_LOOPBACK
                                                                          : POL_ADDR_PUBLIC};
    struct pol_graph graph;
    pol_graph_init(&graph, &g->p, facts);
    size_t refused = 0;
    for (size_t s = 0; s < g->p.n_stages; s++) {
        check_graph_stage(g, &graph.stages[s], s, &want[s]);
        check_edge_counts(g, &graph, s);
        refused += !want[s].ok;
    }
    for (size_t k = 0; k < graph.n_edges; k++) {
        const struct pol_graph_edge *e = &graph.edges[k];
        if (e->kind == POL_EDGE_DATA)
            check_data_edge(g, r, want, &graph, e);
        else if (e->kind == POL_EDGE_REROUTE)
            check_reroute_edge(g, want, &graph, e);
    }
    expect_label(g, "graph", 0, "n_refused", (int)graph.n_refused, (int)refused);
    expect_label(g, "graph", 0, "detect_top", graph.detect_top, r->dtop);
    pol_graph_release(&graph);
}

static void count_stats(const struct gen *g, const struct ref_stage *want, struct stats *st)
{
    int any = 0;
    for (size_t s = 0; s < g->p.n_stages; s++) {
        const struct ref_stage *w = &want[s];
        any |= !w->ok;
        st->flow += w->why_flow;
        st->tool += w->why_tool;
        st->over += w->over;
        st->reroute_bad += w->why_reroute;
        st->reroute_ok += g->st[s].on_sensitive == PIPE_ONS_REROUTE && !w->why_reroute;
        st->guarded_noted += w->ok && w->guarded && w->bound[DECL] > w->clearance;
        st->detect_above += w->ok && w->bound[DECL] <= w->clearance && w->bound[DET] > w->clearance;
        st->declassified += w->declassified;
        st->nothing += w->clearance == POL_NOTHING;
    }
    st->rules_raise += ref_content(g, F_DIFF) > ref_field(g, F_DIFF);
    if (any)
        st->cases_refused++;
    else
        st->cases_accepted++;
}

static void check_one(const struct gen *g, struct stats *stats)
{
    static const int no_remote[MAX_ST];
    struct pol_stage_report rep[MAX_ST];
    struct ref_stage want[MAX_ST], want_graph[MAX_ST];
    struct ref r, r_graph;
    int with_facts = rnd(2);
    const int *remote = with_facts ? g->remote : no_remote;
    memset(rep, 0, sizeof(rep));
    size_t bad = with_facts ? pol_check_facts(&g->p, g->verified, g->remote, rep)
                            : pol_check(&g->p, g->verified, rep);
    ref_init(&r, g, remote);
    ref_init(&r_graph, g, no_remote); /* the graph knows nothing of remote models */
    size_t ref_bad = 0; /* pol_check leaves the clearance over the endpoint's to the graph */
    for (size_t s = 0; s < g->p.n_stages; s++) {
        ref_stage(&r, s, &want[s]);
        ref_stage(&r_graph, s, &want_graph[s]);
        check_report(g, s, &rep[s], &want[s]);
        ref_bad += !want[s].flow_ok;
    }
    expect_label(g, "pol_check count", 0, "refused", (int)bad, (int)ref_bad);
    check_graph(g, &r_graph, want_graph);
    count_stats(g, want, stats);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void print_stats(const struct stats *st)
{
    print_message("cases refused %zu accepted %zu; stages: flow %zu tool %zu over %zu "
                  "reroute bad %zu ok %zu, guarded above %zu, detector-only above %zu, "
                  "declassified %zu, nothing %zu; rules raise %zu\n",
                  st->cases_refused, st->cases_accepted, st->flow, st->tool, st->over,
                  st->reroute_bad, st->reroute_ok, st->guarded_noted, st->detect_above,
                  st->declassified, st->nothing, st->rules_raise);
}

static void check_refuses_exactly_what_brute_force_refuses(void **state)
{
    (void)state;
    static struct gen g;
    struct stats stats = {0};
    run_seed = env_u64("BH_PROP_SEED", 0x9e3779b97f4a7c15u);
    int only = getenv("BH_PROP_CASE") ? (int)env_u64("BH_PROP_CASE", 0) : -1;
    for (int n = only >= 0 ? only : 0; n < (only >= 0 ? only + 1 : N_CASES); n++) {
        rng_state = case_seed(run_seed, n);
        cur_case = n;
        cur_dumped = 0;
        gen_pipeline(&g);
        check_one(&g, &stats);
    }
    print_stats(&stats);
    if (n_mismatch > 0)
        fail_msg("%zu mismatches with the reference (the first %d are listed above)", n_mismatch,
                 MAX_REPORTS);
    if (only >= 0)
        return;
    /* The generator must exercise every rule both ways, or the property says little. */
    assert_true(stats.cases_refused > N_CASES / 10);
    assert_true(stats.cases_accepted > N_CASES / 10);
    assert_true(stats.flow > 50 && stats.tool > 50 && stats.over > 50);
    assert_true(stats.reroute_bad > 50 && stats.reroute_ok > 50);
    assert_true(stats.guarded_noted > 50 && stats.detect_above > 50);
    assert_true(stats.declassified > 50 && stats.nothing > 50 && stats.rules_raise > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_refuses_exactly_what_brute_force_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
