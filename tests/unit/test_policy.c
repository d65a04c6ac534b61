/* tests/unit/test_policy.c — stage locality, clearances and the static flow
 * check over hand-built pipelines (no file, no network): one test per rule of
 * the README's bounds table, per refusal and per note ("The static bounds
 * check proves"), and the graph and its four renderings. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "detect/detect.h"
#include "policy/graph.h"
#include "policy/policy.h"

enum { PUB, INT, CONF, RESTR };
static char *labels[] = {"public", "internal", "confidential", "restricted"};
static char *fields[] = {"pr.title", "pr.diff"};
static int field_labels[] = {INT, CONF};

/* A pipeline of up to 3 stages: plan reads pr.title, review reads pr.diff and
 * plan.output, summary reads review.output. Endpoints: 0 local, 1 cloud. */
struct fixture {
    struct pipeline p;
    struct pipe_endpoint ep[2];
    struct pipe_stage st[3];
    struct pipe_tpl_part parts[3][2];
    size_t deps[3][1];
    size_t order[3];
};

static void field(struct pipe_tpl_part *part, const char *name)
{
    *part = (struct pipe_tpl_part){.is_field = 1, .text = (char *)name, .line = 1, .col = 1};
}

static void build(struct fixture *f, size_t plan_ep, size_t review_ep, size_t summary_ep)
{
    memset(f, 0, sizeof(*f));
    f->ep[0] = (struct pipe_endpoint){.name = "gpu", .declared_local = 1, .clearance = -1};
    f->ep[1] = (struct pipe_endpoint){.name = "cloud", .clearance = INT};
    const char *names[] = {"plan", "review", "summary"};
    size_t eps[] = {plan_ep, review_ep, summary_ep};
    for (size_t i = 0; i < 3; i++) {
        f->st[i] = (struct pipe_stage){.name = (char *)names[i],
                                       .endpoint = eps[i],
                                       .model = "qwen2.5-coder:7b",
                                       .clearance = -1,
                                       .tpl = {.parts = f->parts[i], .n_parts = 1}};
        f->order[i] = i;
    }
    field(&f->parts[0][0], "pr.title");
    field(&f->parts[1][0], "pr.diff");
    field(&f->parts[1][1], "plan.output");
    f->st[1].tpl.n_parts = 2;
    field(&f->parts[2][0], "review.output");
    f->deps[1][0] = 0;
    f->deps[2][0] = 1;
    f->st[1].deps = f->deps[1];
    f->st[1].n_deps = 1;
    f->st[2].deps = f->deps[2];
    f->st[2].n_deps = 1;
    f->p = (struct pipeline){.name = "t",
                             .labels = labels,
                             .n_labels = 4,
                             .endpoints = f->ep,
                             .n_endpoints = 2,
                             .stages = f->st,
                             .n_stages = 3,
                             .order = f->order,
                             .source = {.kind = "git",
                                        .label = CONF,
                                        .fields = fields,
                                        .field_labels = field_labels,
                                        .n_fields = 2}};
}

static void cloud_model_names_are_recognised(void **state)
{
    (void)state;
    assert_true(pol_model_is_cloud("gpt-oss:20b-cloud"));
    assert_true(pol_model_is_cloud("kimi-k2:1t:cloud"));
    assert_true(pol_model_is_cloud("glm-5:CLOUD"));
    assert_true(pol_model_is_cloud("mybot-cloud"));
    assert_false(pol_model_is_cloud("qwen2.5-coder:7b"));
    assert_false(pol_model_is_cloud("cloudy:7b"));
    assert_false(pol_model_is_cloud("cloud"));
    assert_false(pol_model_is_cloud(NULL));
}

static void join_takes_the_higher_and_unknown_is_top(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, 1, 0, 0);
    assert_int_equal(pol_label_join(&f.p, PUB, CONF), CONF);
    assert_int_equal(pol_label_join(&f.p, INT, PUB), INT);
    assert_int_equal(pol_label_join(&f.p, -1, PUB), RESTR);
    assert_int_equal(pol_label_join(&f.p, PUB, 99), RESTR);
    assert_string_equal(pol_label_name(&f.p, CONF), "confidential");
    assert_string_equal(pol_label_name(&f.p, 9), "?");
}

static void clearance_defaults_follow_locality(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, 1, 0, 0);
    assert_int_equal(pol_stage_clearance(&f.p, 1, 1), RESTR);       /* verified local: top */
    assert_int_equal(pol_stage_clearance(&f.p, 1, 0), POL_NOTHING); /* declared local, refuted */
    assert_string_equal(pol_label_name(&f.p, POL_NOTHING), "nothing");
    assert_int_equal(pol_stage_clearance(&f.p, 0, 0), INT); /* cloud, declared internal */
    f.ep[0].clearance = CONF;
    f.st[1].clearance = RESTR; /* above its endpoint: capped */
    assert_int_equal(pol_stage_clearance(&f.p, 1, 1), CONF);
    f.st[1].clearance = PUB;
    assert_int_equal(pol_stage_clearance(&f.p, 1, 1), PUB);
}

static void cloud_model_on_local_endpoint_is_cloud(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, 1, 0, 0);
    f.st[1].model = "gpt-oss:20b-cloud";
    assert_false(pol_stage_local(&f.p, 1, 1));
    assert_int_equal(pol_stage_clearance(&f.p, 1, 1), PUB);
    f.st[1].clearance = CONF; /* a stage's own word never raises a cloud destination */
    assert_int_equal(pol_stage_clearance(&f.p, 1, 1), PUB);
    assert_true(pol_stage_local(&f.p, 2, 1));
    /* A stub found online: the same bottom cap, whatever the stage declares. */
    f.st[2].clearance = CONF;
    assert_int_equal(pol_stage_clearance_facts(&f.p, 2, 1, 0), CONF);
    assert_int_equal(pol_stage_clearance_facts(&f.p, 2, 1, 1), PUB);
    assert_false(pol_stage_local_facts(&f.p, 2, 1, 1));
}

static void check_passes_the_private_split(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, 1, 0, 0);
    int local[] = {1, 0};
    struct pol_stage_report r[3];
    assert_int_equal(pol_check(&f.p, local, r), 0);
    assert_int_equal(r[0].input, INT);
    assert_false(r[0].local);
    assert_int_equal(r[1].input, CONF);
    assert_int_equal(r[2].input, CONF); /* the review's output carries its prompt's label */
    assert_true(r[2].ok && r[2].local);
}

static void check_refuses_diff_and_review_to_cloud(void **state)
{
    (void)state;
    struct fixture f;
    int local[] = {1, 0};
    struct pol_stage_report r[3];
    build(&f, 1, 0, 1);
    assert_int_equal(pol_check(&f.p, local, r), 1);
    assert_false(r[2].ok);
    assert_non_null(strstr(r[2].reason, "review.output (confidential)"));
    build(&f, 1, 1, 0);
    assert_int_equal(pol_check(&f.p, local, r), 1);
    assert_false(r[1].ok);
    assert_non_null(strstr(r[1].reason, "pr.diff"));
    /* A local endpoint that did not verify: everything it reads above public is refused. */
    build(&f, 1, 0, 0);
    int unverified[] = {0, 0};
    assert_int_equal(pol_check(&f.p, unverified, r), 2);
}

static void unknown_field_counts_as_top(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, 1, 0, 0);
    field(&f.parts[0][0], "pr.mystery");
    int local[] = {1, 0};
    struct pol_stage_report r[3];
    assert_int_equal(pol_check(&f.p, local, r), 1);
    assert_int_equal(r[0].input, RESTR);
}

static void graph_of(struct pol_graph *g, const struct fixture *f, int gpu_local,
                     enum pol_addr_kind kind)
{
    struct pol_endpoint_fact facts[2] = {
        {.local = gpu_local, .addr_kind = kind, .host = "127.0.0.1", .addr = "127.0.0.1"},
        {.local = 0, .addr_kind = POL_ADDR_PUBLIC, .declared_cloud = 1, .host = "ollama.com"},
    };
    pol_graph_init(g, &f->p, facts);
}

static void graph_names_locality_reasons_and_clearance_sources(void **state)
{
    (void)state;
    struct fixture f;
    struct pol_graph g;
    build(&f, 1, 0, 0);
    f.st[2].model = "glm-5:cloud";
    graph_of(&g, &f, 1, POL_ADDR_NETWORK);
    assert_string_equal(pol_locality_words(g.stages[0].why), "declared cloud");
    assert_string_equal(pol_clearance_from_words(g.stages[0].clearance_from), "endpoint");
    assert_string_equal(pol_locality_words(g.stages[1].why),
                        "declared local, in a trusted network");
    assert_string_equal(pol_clearance_from_words(g.stages[1].clearance_from), "default for local");
    assert_string_equal(pol_locality_words(g.stages[2].why), "model name ends in :cloud");
    assert_string_equal(pol_clearance_from_words(g.stages[2].clearance_from),
                        "cloud model on a local endpoint");
    pol_graph_release(&g);
    graph_of(&g, &f, 0, POL_ADDR_UNRESOLVED);
    assert_string_equal(pol_locality_words(g.stages[1].why),
                        "declared local but host did not resolve (refused)");
    assert_string_equal(pol_clearance_from_words(g.stages[1].clearance_from), "locality refused");
    assert_int_equal(g.stages[1].clearance, POL_NOTHING); /* refused: nothing goes there */
    pol_graph_release(&g);
    graph_of(&g, &f, 0, POL_ADDR_PUBLIC);
    assert_string_equal(pol_locality_words(g.stages[1].why),
                        "declared local but public address (refused)");
    pol_graph_release(&g);
    graph_of(&g, &f, 0, POL_ADDR_PRIVATE);
    assert_string_equal(pol_locality_words(g.stages[1].why),
                        "declared local but private address in no trusted network (refused)");
    assert_int_equal(g.stages[1].clearance, POL_NOTHING);
    pol_graph_release(&g);
}

static void graph_edges_carry_bounds_and_after_carries_no_data(void **state)
{
    (void)state;
    struct fixture f;
    struct pol_graph g;
    build(&f, 1, 0, 0);
    size_t summary_deps[] = {1, 0}; /* reads review.output; after plan */
    f.st[2].deps = summary_deps;
    f.st[2].n_deps = 2;
    graph_of(&g, &f, 1, POL_ADDR_LOOPBACK);
    int seen_after = 0, seen_output = 0, seen_diff = 0;
    for (size_t k = 0; k < g.n_edges; k++) {
        const struct pol_graph_edge *e = &g.edges[k];
        const char *from = g.nodes[e->from].name, *to = g.nodes[e->to].name;
        if (strcmp(from, "plan") == 0 && strcmp(to, "summary") == 0) {
            seen_after = !e->data && e->bound == -1 && e->bound_from == POL_BOUND_NONE;
        } else if (strcmp(from, "review") == 0 && strcmp(to, "summary") == 0) {
            seen_output = e->data && e->bound == CONF && e->bound_from == POL_BOUND_STAGE_OUTPUT;
        } else if (strcmp(from, "pr.diff") == 0) {
            seen_diff = e->bound == CONF && e->bound_from == POL_BOUND_SOURCE_DEFAULT;
        }
    }
    assert_true(seen_after && seen_output && seen_diff);
    assert_int_equal(g.n_edges,
                     5); /* title→plan, diff→review, plan→review, review→summary, after */
    pol_graph_release(&g);
}

static void graph_refuses_stage_cleared_above_its_endpoint(void **state)
{
    (void)state;
    struct fixture f;
    struct pol_graph g;
    build(&f, 1, 0, 0);
    f.st[0].clearance = CONF; /* the cloud endpoint is cleared for internal only */
    assert_true(pol_stage_over_endpoint(&f.p, 0));
    assert_false(pol_stage_over_endpoint(&f.p, 1));
    graph_of(&g, &f, 1, POL_ADDR_LOOPBACK);
    assert_true(g.stages[0].flow_ok); /* the gate caps it: nothing leaks */
    assert_false(g.stages[0].ok);     /* but the mistake is reported */
    assert_int_equal(g.n_refused, 1);
    assert_string_equal(g.stages[0].conflict,
                        "declares clearance confidential above its endpoint 'cloud' "
                        "(internal, endpoint)");
    pol_graph_release(&g);
    f.st[1].clearance = RESTR; /* a local endpoint defaults to the top: fine */
    f.st[0].clearance = INT;
    graph_of(&g, &f, 1, POL_ADDR_LOOPBACK);
    assert_int_equal(g.n_refused, 0);
    pol_graph_release(&g);
}

static char *render(const struct pol_graph *g, enum pol_format fmt)
{
    char *text = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&text, &n);
    pol_graph_render(m, g, fmt);
    fclose(m);
    return text;
}

static void graph_json_escapes_names_and_md_states_what_leaves(void **state)
{
    (void)state;
    struct fixture f;
    struct pol_graph g;
    build(&f, 1, 0, 0);
    f.p.name = "a \"quoted\" name";
    graph_of(&g, &f, 1, POL_ADDR_LOOPBACK);
    char *json = render(&g, POL_FORMAT_JSON);
    assert_non_null(strstr(json, "\"name\": \"a \\\"quoted\\\" name\""));
    /* No "detectors" key: every built-in is on, so the cloud planner has a note. */
    assert_non_null(strstr(json, "\"verdict\": {\"ok\": true, \"refused\": [], \"noted\": "
                                 "[\"plan\"]}"));
    char *md = render(&g, POL_FORMAT_MD);
    assert_non_null(strstr(md, "- Stage plan sends pr.title (internal) to cloud endpoint 'cloud' "
                               "at ollama.com (model qwen2.5-coder:7b; declared cloud)"));
    assert_non_null(strstr(md, "If the assumptions below hold, no confidential or restricted "
                               "data leaves the machine."));
    char *dot = render(&g, POL_FORMAT_DOT);
    assert_non_null(strstr(dot, "\"s:plan\" -> \"s:review\" [label=\"internal\"];"));
    assert_int_equal(pol_format_find("md"), POL_FORMAT_MD);
    assert_int_equal(pol_format_find("yaml"), -1);
    free(json);
    free(md);
    free(dot);
    pol_graph_release(&g);
}

/* --- the full language: a world of up to 5 stages -------------------------- */

/* Fields pr.title (internal), pr.files (internal), pr.diff (confidential, the
 * source's label). Endpoints: 0 "gpu" local (top), 1 "cloud" cleared for
 * internal, 2 "gpu-conf" local cleared for confidential, 3 "cloud-conf" cloud
 * cleared for confidential. Detectors are off unless a test turns them on, so
 * every bound is what the test sets up. */
#define W_STAGES 5
struct world {
    struct pipeline p;
    struct pipe_endpoint ep[4];
    struct pipe_stage st[W_STAGES];
    char *reads[W_STAGES][4];
    char *tools[W_STAGES][3];
    size_t order[W_STAGES];
    char *fields[3];
    int field_labels[3];
    struct pipe_rule rules[4];
    char *detectors[2];
    struct pipe_custom_detector custom[1];
    int local[4];
    struct pol_stage_report r[W_STAGES];
};

static const char *const stage_names[W_STAGES] = {"plan", "plan-local", "review", "summary",
                                                  "extra"};

static void world(struct world *w, size_t n_stages)
{
    memset(w, 0, sizeof(*w));
    w->ep[0] = (struct pipe_endpoint){.name = "gpu", .declared_local = 1, .clearance = -1};
    w->ep[1] = (struct pipe_endpoint){.name = "cloud", .clearance = INT};
    w->ep[2] = (struct pipe_endpoint){.name = "gpu-conf", .declared_local = 1, .clearance = CONF};
    w->ep[3] = (struct pipe_endpoint){.name = "cloud-conf", .clearance = CONF};
    w->local[0] = w->local[2] = 1;
    for (size_t i = 0; i < n_stages; i++) {
        w->st[i] = (struct pipe_stage){.name = (char *)stage_names[i],
                                       .model = "m:7b",
                                       .clearance = -1,
                                       .for_each_stage = -1,
                                       .reroute = -1,
                                       .reads = w->reads[i],
                                       .tools = w->tools[i]};
        w->order[i] = i;
    }
    w->fields[0] = "pr.title";
    w->fields[1] = "pr.files";
    w->fields[2] = "pr.diff";
    w->field_labels[0] = w->field_labels[1] = INT;
    w->field_labels[2] = CONF;
    w->p = (struct pipeline){.name = "w",
                             .file = "w.json",
                             .labels = labels,
                             .n_labels = 4,
                             .endpoints = w->ep,
                             .n_endpoints = 4,
                             .stages = w->st,
                             .n_stages = n_stages,
                             .order = w->order,
                             .source = {.kind = "git",
                                        .label = CONF,
                                        .fields = w->fields,
                                        .field_labels = w->field_labels,
                                        .n_fields = 3,
                                        .rules = w->rules,
                                        .detectors = w->detectors,
                                        .detectors_set = 1,
                                        .custom = w->custom}};
}

/* Stage i reads the NULL-terminated fields. */
static void reads(struct world *w, size_t i, ...)
{
    va_list ap;
    va_start(ap, i);
    const char *f;
    while ((f = va_arg(ap, const char *)) != NULL)
        w->reads[i][w->st[i].n_reads++] = (char *)f;
    va_end(ap);
}

static void tool(struct world *w, size_t i, const char *name)
{
    w->st[i].kind = PIPE_KIND_AGENT;
    w->tools[i][w->st[i].n_tools++] = (char *)name;
}

static void rule(struct world *w, const char *glob, int label)
{
    w->rules[w->p.source.n_rules++] = (struct pipe_rule){.glob = (char *)glob, .label = label};
}

static void detectors_all(struct world *w)
{
    w->p.source.detectors_set = 0; /* no "detectors" key: every built-in */
}

static void reroute(struct world *w, size_t from, size_t to)
{
    w->st[from].on_sensitive = PIPE_ONS_REROUTE;
    w->st[from].reroute = (long)to;
    w->st[to].standby = 1;
}

static size_t run_check(struct world *w)
{
    return pol_check(&w->p, w->local, w->r);
}

static void has(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("expected \"%s\" in \"%s\"", part, text);
}

/* README table, row 1: a source field's declared bound is its label; a
 * content field joins every rule label, even one that lowers some files. */
static void content_field_joins_every_rule_label(void **state)
{
    (void)state;
    struct world w;
    world(&w, 1);
    rule(&w, "docs/**", PUB);
    assert_int_equal(pol_field_bound(&w.p, 0, "pr.diff", NULL), CONF); /* a rule never lowers */
    rule(&w, "**/*.pem", RESTR);
    assert_int_equal(pol_field_bound(&w.p, 0, "pr.diff", NULL), RESTR);
    assert_int_equal(pol_field_bound(&w.p, 0, "pr.title", NULL), INT); /* not a content field */
    assert_int_equal(pol_field_bound(&w.p, 0, "pr.files", NULL), INT);
    assert_int_equal(pol_field_bound_detect(&w.p, 0, "pr.title", NULL), INT); /* detectors off */
}

/* Detector column: the declared bound joined with the enabled detectors. */
static void detector_bound_joins_the_enabled_detectors(void **state)
{
    (void)state;
    struct world w;
    world(&w, 1);
    assert_int_equal(pol_detectors_top(&w.p), PUB); /* "detectors": [] */
    detectors_all(&w);
    assert_int_equal(pol_detectors_top(&w.p), RESTR);
    assert_int_equal(pol_field_bound_detect(&w.p, 0, "pr.title", NULL), RESTR);
    w.p.source.detectors_set = 1;
    w.detectors[0] = "email";
    w.p.source.n_detectors = 1;
    assert_int_equal(pol_detectors_top(&w.p), CONF);
    assert_int_equal(pol_field_bound_detect(&w.p, 0, "pr.title", NULL), CONF);
    w.detectors[0] = "internal-ip";
    assert_int_equal(pol_detectors_top(&w.p), INT);
    w.custom[0] = (struct pipe_custom_detector){.id = "ticket", .regex = "T-[0-9]+", .label = CONF};
    w.p.source.n_custom = 1; /* a custom detector raises to its own label */
    assert_int_equal(pol_detectors_top(&w.p), CONF);
    w.detectors[0] = "no-such-detector"; /* unknown means top */
    assert_int_equal(pol_detectors_top(&w.p), RESTR);
}

static void builtin_detector_label_is_its_name_or_the_top(void **state)
{
    (void)state;
    struct world w;
    world(&w, 1);
    const struct det_detector *email = det_find("email");
    assert_non_null(email);
    assert_int_equal(pol_detector_label(&w.p, email), CONF);
    static char *three[] = {"low", "mid", "high"}; /* no "confidential": the top */
    w.p.labels = three;
    w.p.n_labels = 3;
    assert_int_equal(pol_detector_label(&w.p, email), 2);
    const char *ids[32];
    int lab[32];
    detectors_all(&w);
    size_t n = pol_detectors_enabled(&w.p, ids, lab, 32);
    size_t n_all = 0;
    det_all(&n_all);
    assert_int_equal(n, n_all);
    assert_string_equal(ids[0], "private-key");
}

/* Rows each.path/each.status and each.diff, and what a stage without that
 * for_each reads under the same names (nothing known: top). */
static void for_each_file_fields_take_pr_files_and_pr_diff_bounds(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    rule(&w, "**/*.key", RESTR);
    w.st[0].for_each = "pr.files";
    w.field_labels[1] = PUB; /* pr.files */
    assert_int_equal(pol_field_bound(&w.p, 0, "each.path", NULL), PUB);
    assert_int_equal(pol_field_bound(&w.p, 0, "each.status", NULL), PUB);
    assert_int_equal(pol_field_bound(&w.p, 0, "each.diff", NULL),
                     pol_field_bound(&w.p, 0, "pr.diff", NULL));
    assert_int_equal(pol_field_bound(&w.p, 0, "each.diff", NULL), RESTR);
    assert_int_equal(pol_field_bound(&w.p, 1, "each.path", NULL), RESTR); /* no for_each */
    reads(&w, 0, "each.path", NULL);
    w.st[0].endpoint = 1; /* cloud, internal: a public path may go */
    assert_int_equal(run_check(&w), 0);
    assert_int_equal(w.r[0].input, PUB);
}

/* Row `each` of a for_each over S.output: S's output bounds, both tiers. */
static void for_each_stage_output_element_takes_its_output_bounds(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    detectors_all(&w);
    reads(&w, 0, "pr.files", NULL);
    w.st[0].endpoint = 2; /* local, confidential */
    w.st[1].for_each = "plan.output";
    w.st[1].for_each_stage = 0;
    reads(&w, 1, "each", NULL);
    run_check(&w);
    assert_int_equal(w.r[0].output, INT);
    assert_int_equal(w.r[0].output_detect, CONF); /* capped at its clearance */
    assert_int_equal(w.r[1].input, INT);
    assert_int_equal(w.r[1].input_detect, CONF);
    int outs[2] = {PUB, PUB};
    assert_int_equal(pol_field_bound(&w.p, 1, "each", outs), PUB);
    assert_int_equal(pol_field_bound(&w.p, 1, "each", NULL), RESTR); /* unknown outputs: top */
}

/* Row S.output, rule 1 of the output bound: capped at the clearance. */
static void output_is_capped_at_the_clearance(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    reads(&w, 0, "pr.diff", NULL);
    w.st[0].endpoint = 1;
    w.st[0].on_sensitive = PIPE_ONS_SKIP;
    reads(&w, 1, "plan.output", NULL);
    w.st[1].endpoint = 1;
    assert_int_equal(run_check(&w), 0);
    assert_int_equal(w.r[0].input, CONF);
    assert_int_equal(w.r[0].output, INT); /* a skipped item produces no output */
    assert_int_equal(w.r[1].input, INT);
    assert_true(w.r[1].ok);
}

/* Row "a tool result": each tool as its source fields; unknown tools top. */
static void tool_results_are_bounded_by_their_sources(void **state)
{
    (void)state;
    struct world w;
    world(&w, 1);
    w.field_labels[0] = CONF; /* pr.title */
    w.field_labels[1] = PUB;  /* pr.files */
    w.field_labels[2] = INT;  /* pr.diff */
    rule(&w, "docs/**", INT);
    assert_int_equal(pol_tool_bound(&w.p, "read_file"), INT);
    assert_int_equal(pol_tool_bound(&w.p, "grep"), INT);
    assert_int_equal(pol_tool_bound(&w.p, "diff"), INT);
    assert_int_equal(pol_tool_bound(&w.p, "list_files"), PUB);
    assert_int_equal(pol_tool_bound(&w.p, "git_log"), CONF);
    assert_int_equal(pol_tool_bound(&w.p, "shell"), RESTR);
    assert_int_equal(pol_tool_bound_detect(&w.p, "diff"), INT); /* no detectors */
    assert_int_equal(pol_tool_bound_detect(&w.p, "list_files"), PUB);
    /* read_file and grep are labelled by whole files, and a binary one is
     * unscanned: top, detectors or not. */
    assert_int_equal(pol_tool_bound_detect(&w.p, "read_file"), RESTR);
    assert_int_equal(pol_tool_bound_detect(&w.p, "grep"), RESTR);
    assert_int_equal(pol_tool_bound_detect(&w.p, "shell"), RESTR);
    rule(&w, "**/*.pem", RESTR); /* read_file may open any file: the rules join in */
    assert_int_equal(pol_tool_bound(&w.p, "read_file"), RESTR);
    /* grep searches every file, matched or not; diff may show any of them */
    assert_int_equal(pol_tool_bound(&w.p, "grep"), RESTR);
    assert_int_equal(pol_tool_bound(&w.p, "diff"), RESTR);
    assert_int_equal(pol_tool_bound(&w.p, "list_files"), PUB); /* names, not contents */
    assert_string_equal(pol_tool_source("git_log"), "pr.title and pr.files");
    tool(&w, 0, "list_files");
    w.st[0].endpoint = 1;
    assert_int_equal(run_check(&w), 0);
    assert_int_equal(w.r[0].input, PUB); /* a granted tool joins the input */
    tool(&w, 0, "git_log");
    assert_int_equal(run_check(&w), 1);
    assert_int_equal(w.r[0].input, CONF);
}

/* Rows "anything else" and "reads nothing". */
static void unknown_reads_are_top_and_no_reads_are_bottom(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    reads(&w, 1, "pr.mystery", NULL);
    w.st[0].endpoint = w.st[1].endpoint = 1;
    assert_int_equal(run_check(&w), 1);
    assert_true(w.r[0].ok);
    assert_int_equal(w.r[0].input, PUB);
    assert_int_equal(w.r[0].output, PUB);
    assert_false(w.r[1].ok);
    assert_int_equal(w.r[1].input, RESTR);
    assert_int_equal(w.r[1].input_detect, RESTR);
}

/* The loader fills reads; a hand-built stage may fill only its templates:
 * both count, the system message too. */
static void reads_and_template_placeholders_both_count(void **state)
{
    (void)state;
    struct world w;
    world(&w, 1);
    struct pipe_tpl_part sys = {.is_field = 1, .text = "pr.diff"};
    reads(&w, 0, "pr.title", NULL);
    w.st[0].system = (struct pipe_tpl){.parts = &sys, .n_parts = 1};
    w.st[0].endpoint = 1;
    size_t n = 0;
    const char **r = pol_stage_reads(&w.p, 0, &n);
    assert_int_equal(n, 2);
    assert_string_equal(r[0], "pr.title");
    assert_string_equal(r[1], "pr.diff");
    free(r);
    assert_int_equal(run_check(&w), 1);
    has(w.r[0].reason, "reads pr.diff (confidential)");
}

/* Output rule 2: reroute joins the target's output, uncapped. */
static void reroute_output_joins_the_target_output(void **state)
{
    (void)state;
    struct world w;
    world(&w, 3);
    reads(&w, 0, "pr.title", NULL);
    w.st[0].endpoint = 1;
    reads(&w, 1, "pr.title", "pr.diff", NULL);
    reroute(&w, 0, 1);
    reads(&w, 2, "plan.output", NULL);
    w.order[0] = 0; /* the standby stage comes after its origin in the order */
    w.order[1] = 2;
    w.order[2] = 1;
    assert_int_equal(run_check(&w), 0);
    assert_int_equal(w.r[0].input, INT);
    assert_int_equal(w.r[1].output, CONF);
    assert_int_equal(w.r[0].output, CONF); /* what plan-local wrote flows on */
    assert_int_equal(w.r[2].input, CONF);
}

/* Output rule 3: declassify lowers the declared bound the dependants read;
 * the detector tier keeps the input's label (a guard may fail). */
static void declassify_lowers_the_dependants_declared_input(void **state)
{
    (void)state;
    struct world w;
    world(&w, 4);
    w.st[0].n_reads = 0;
    reads(&w, 2, "pr.diff", NULL);
    w.st[2].declassify =
        (struct pipe_declassify){.enabled = 1, .to = INT, .no_verbatim_tokens = 8, .detectors = 1};
    reads(&w, 3, "review.output", NULL);
    w.st[3].endpoint = 1;
    assert_int_equal(run_check(&w), 0);
    assert_int_equal(w.r[2].input, CONF);
    assert_int_equal(w.r[2].output, INT);
    assert_true(w.r[2].declassified);
    assert_int_equal(w.r[2].output_detect, CONF);
    assert_int_equal(w.r[3].input, INT);
    assert_int_equal(w.r[3].input_detect, CONF);
    has(w.r[3].note, "review.output may carry confidential");
    has(w.r[3].note, "a failed declassify guard");
    w.st[2].declassify.to = RESTR; /* never raised by a declassification */
    run_check(&w);
    assert_int_equal(w.r[2].output, CONF);
    assert_false(w.r[2].declassified);
    assert_false(w.r[3].ok);
}

/* A stage that may receive nothing never runs: its output is the bottom. */
static void nothing_clearance_gives_a_bottom_output(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    w.local[0] = 0; /* "gpu" declared local, did not verify */
    reads(&w, 0, "pr.diff", NULL);
    w.st[0].on_sensitive = PIPE_ONS_SKIP;
    reads(&w, 1, "plan.output", NULL);
    w.st[1].endpoint = 1;
    assert_int_equal(run_check(&w), 0);
    assert_int_equal(w.r[0].clearance, POL_NOTHING);
    assert_int_equal(w.r[0].output, PUB);
    assert_int_equal(w.r[0].output_detect, PUB);
    assert_int_equal(w.r[1].input, PUB);
    has(w.r[0].note, "above its clearance nothing");
    w.st[0].on_sensitive = PIPE_ONS_FAIL;
    w.st[0].n_reads = 0; /* even a stage reading nothing gets nothing */
    assert_int_equal(run_check(&w), 1);
    has(w.r[0].reason, "may receive nothing at all: its endpoint 'gpu' is declared local");
}

/* Refusal 1: the declared input above the clearance with on_sensitive fail,
 * and the same stage with skip (a note, not a refusal). */
static void declared_overrun_is_refused_under_fail_and_noted_under_skip(void **state)
{
    (void)state;
    struct world w;
    world(&w, 1);
    reads(&w, 0, "pr.title", "pr.diff", NULL);
    w.st[0].endpoint = 1;
    assert_int_equal(run_check(&w), 1);
    assert_false(w.r[0].guarded);
    has(w.r[0].reason, "reads pr.diff (confidential), above its clearance internal");
    has(w.r[0].reason, "set on_sensitive skip or reroute:STAGE");
    assert_string_equal(w.r[0].note, "");
    w.st[0].on_sensitive = PIPE_ONS_SKIP;
    assert_int_equal(run_check(&w), 0);
    assert_true(w.r[0].guarded);
    assert_string_equal(w.r[0].note, "reads pr.diff (confidential), above its clearance "
                                     "internal: on_sensitive skip withholds that item");
}

/* The README's planner: docs-only diffs are internal by a rule, but a rule
 * never lowers the static bound, so the planner needs reroute. */
static void docs_rule_planner_needs_a_reroute(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    detectors_all(&w);
    rule(&w, "docs/**", INT);
    reads(&w, 0, "pr.title", "pr.diff", NULL);
    w.st[0].endpoint = 1;
    reads(&w, 1, "pr.title", "pr.diff", NULL);
    assert_int_equal(run_check(&w), 1);
    assert_false(w.r[0].ok);
    has(w.r[0].reason, "reads pr.diff (confidential), above its clearance internal");
    reroute(&w, 0, 1);
    assert_int_equal(run_check(&w), 0);
    assert_true(w.r[0].ok && w.r[1].ok);
    assert_true(w.r[0].guarded);
    assert_int_equal(w.r[0].input, CONF);
    assert_int_equal(w.r[0].input_detect, RESTR);
    assert_string_equal(w.r[0].note, "reads pr.diff (confidential), above its clearance internal: "
                                     "on_sensitive reroute runs stage plan-local instead for "
                                     "that item");
}

/* Refusal 2: a tool above the clearance, whatever on_sensitive says. */
static void tool_grant_above_clearance_is_refused(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    tool(&w, 0, "list_files");
    tool(&w, 0, "read_file");
    w.st[0].endpoint = 1;
    w.st[0].on_sensitive = PIPE_ONS_SKIP;
    assert_int_equal(run_check(&w), 1);
    assert_false(w.r[0].ok);
    assert_string_equal(w.r[0].reason,
                        "is granted tool read_file, which returns pr.diff (confidential), above "
                        "its clearance internal — on_sensitive does not cover tools: remove the "
                        "grant or run the stage where confidential may go");
    reroute(&w, 0, 1);
    assert_int_equal(run_check(&w), 1);
    has(w.r[0].reason, "is granted tool read_file");
}

/* Refusal 4a: a local stage may only reroute to a local one. */
static void reroute_from_local_to_cloud_is_refused(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    reads(&w, 0, "pr.title", NULL);
    w.st[0].endpoint = 2; /* local, confidential */
    w.st[1].endpoint = 3; /* cloud, confidential: clearance enough, locality not */
    reroute(&w, 0, 1);
    assert_int_equal(run_check(&w), 1);
    assert_false(w.r[0].ok);
    assert_true(w.r[1].ok);
    assert_string_equal(w.r[0].reason, "reroutes to cloud stage plan-local — a local stage may "
                                       "only reroute to a local one (toward more privacy): "
                                       "reroute to a local stage");
    w.st[1].endpoint = 0;
    assert_int_equal(run_check(&w), 0);
}

/* Refusal 4b: the target must take the origin's detector input bound. */
static void reroute_target_below_the_detector_bound_is_refused(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    reads(&w, 0, "pr.title", NULL);
    w.st[0].endpoint = 1;
    w.st[1].endpoint = 2; /* local, confidential */
    reroute(&w, 0, 1);
    assert_int_equal(run_check(&w), 0); /* detectors off: internal fits */
    detectors_all(&w);
    assert_int_equal(run_check(&w), 1);
    assert_string_equal(w.r[0].reason, "reroutes to stage plan-local, cleared only for "
                                       "confidential, but what it turns away may be restricted "
                                       "(pr.title, with a detector hit) — reroute to a stage "
                                       "cleared for restricted");
    w.st[1].endpoint = 0;
    assert_int_equal(run_check(&w), 0);
    w.st[0].reroute = 0; /* to itself */
    assert_int_equal(run_check(&w), 1);
    has(w.r[0].reason, "reroutes to itself");
    w.st[0].reroute = -1;
    assert_int_equal(run_check(&w), 1);
    has(w.r[0].reason, "names no stage to reroute to");
}

/* "T itself is checked like every stage." */
static void standby_stage_is_checked_like_any_stage(void **state)
{
    (void)state;
    struct world w;
    world(&w, 2);
    reads(&w, 0, "pr.title", NULL);
    w.st[0].endpoint = 1;
    w.st[1].endpoint = 3; /* cloud, confidential: a cloud origin may reroute to it */
    reads(&w, 1, "pr.title", "pr.diff", NULL);
    reroute(&w, 0, 1);
    assert_int_equal(run_check(&w), 0);
    w.st[1].clearance = INT; /* still takes what plan turns away, but not its own pr.diff */
    assert_int_equal(run_check(&w), 1);
    assert_true(w.r[0].ok);
    assert_false(w.r[1].ok);
    has(w.r[1].reason, "reads pr.diff (confidential), above its clearance internal");
}

/* A detector bound above the clearance is a note, never a refusal. */
static void detector_overrun_is_only_a_note(void **state)
{
    (void)state;
    struct world w;
    world(&w, 1);
    reads(&w, 0, "pr.title", "pr.files", NULL);
    w.st[0].endpoint = 1;
    assert_int_equal(run_check(&w), 0);
    assert_string_equal(w.r[0].note, "");
    detectors_all(&w);
    assert_int_equal(run_check(&w), 0);
    assert_true(w.r[0].ok);
    assert_int_equal(w.r[0].input, INT);
    assert_int_equal(w.r[0].input_detect, RESTR);
    assert_int_equal(w.r[0].output_detect, INT); /* fail: such an item makes no output */
    assert_string_equal(w.r[0].note, "a detector hit in pr.title (or 1 more of its inputs) may "
                                     "raise the prompt to restricted, above its clearance "
                                     "internal: on_sensitive fail refuses that item (exit 3) — "
                                     "set skip or reroute:STAGE to handle it");
}

static void detector_overrun_in_a_tool_is_noted_as_a_failed_task(void **state)
{
    (void)state;
    struct world w;
    world(&w, 1);
    detectors_all(&w);
    tool(&w, 0, "list_files");
    w.st[0].endpoint = 1;
    assert_int_equal(run_check(&w), 0);
    has(w.r[0].note, "a detector hit in what tool list_files returns may raise the conversation "
                     "to restricted");
    has(w.r[0].note, "the task fails (on_sensitive does not cover tools)");
}

/* --- the graph of the full language ---------------------------------------- */

static void graph_world(struct pol_graph *g, const struct world *w)
{
    struct pol_endpoint_fact facts[4] = {
        {.local = 1, .addr_kind = POL_ADDR_LOOPBACK, .host = "127.0.0.1"},
        {.addr_kind = POL_ADDR_PUBLIC, .declared_cloud = 1, .host = "ollama.com"},
        {.local = 1, .addr_kind = POL_ADDR_NETWORK, .host = "10.0.0.5"},
        {.addr_kind = POL_ADDR_PUBLIC, .declared_cloud = 1, .host = "api.example"},
    };
    pol_graph_init(g, &w->p, facts);
}

/* plan (cloud) reroutes to plan-local; review (local agent, for_each
 * pr.files) reads each.path and each.diff, may call read_file, and
 * declassifies to internal; summary (cloud) reads review.output. */
static void review_world(struct world *w)
{
    world(w, 4);
    detectors_all(w);
    rule(w, "**/*.pem", RESTR);
    reads(w, 0, "pr.title", NULL);
    w->st[0].endpoint = 1;
    reads(w, 1, "pr.title", NULL);
    reroute(w, 0, 1);
    w->st[2].for_each = "pr.files";
    reads(w, 2, "each.path", "each.diff", "plan.output", NULL);
    tool(w, 2, "read_file");
    w->st[2].declassify = (struct pipe_declassify){.enabled = 1,
                                                   .to = INT,
                                                   .no_verbatim_tokens = 8,
                                                   .no_rare_tokens = 1,
                                                   .detectors = 1,
                                                   .redact_code = 1};
    reads(w, 3, "review.output", NULL);
    w->st[3].endpoint = 1;
    static size_t deps2[] = {0}, deps3[] = {2};
    w->st[2].deps = deps2;
    w->st[2].n_deps = 1;
    w->st[3].deps = deps3;
    w->st[3].n_deps = 1;
}

static const struct pol_graph_edge *edge_via(const struct pol_graph *g, const char *to,
                                             const char *via, enum pol_edge_kind kind)
{
    for (size_t k = 0; k < g->n_edges; k++) {
        const struct pol_graph_edge *e = &g->edges[k];
        if (e->kind == kind && strcmp(g->nodes[e->to].name, to) == 0 &&
            (!via || (e->via && strcmp(e->via, via) == 0)))
            return e;
    }
    fail_msg("no %d edge into %s via %s", (int)kind, to, via ? via : "-");
    return NULL;
}

static void graph_has_each_fields_tools_reroute_and_both_bounds(void **state)
{
    (void)state;
    struct world w;
    struct pol_graph g;
    review_world(&w);
    graph_world(&g, &w);
    assert_int_equal(g.n_refused, 0);
    const struct pol_graph_edge *e = edge_via(&g, "review", "each.diff", POL_EDGE_DATA);
    assert_int_equal(e->bound, RESTR);
    assert_string_equal(pol_bound_from_words(e->bound_from), "path rules");
    e = edge_via(&g, "review", "each.path", POL_EDGE_DATA);
    assert_int_equal(e->bound, INT);
    assert_int_equal(e->bound_detect, RESTR);
    assert_string_equal(pol_bound_from_words(e->detect_from), "detectors");
    assert_int_equal(g.nodes[e->from].kind, POL_NODE_FIELD);
    e = edge_via(&g, "review", "read_file", POL_EDGE_DATA);
    assert_int_equal(g.nodes[e->from].kind, POL_NODE_TOOL);
    assert_string_equal(g.nodes[e->from].name, "tool:read_file");
    assert_string_equal(pol_bound_from_words(e->bound_from), "tool");
    e = edge_via(&g, "summary", "review.output", POL_EDGE_DATA);
    assert_int_equal(e->bound, INT);
    assert_int_equal(e->bound_detect, RESTR);
    assert_string_equal(pol_bound_from_words(e->bound_from), "declassified");
    assert_true(e->ok && !e->ok_detect);
    e = edge_via(&g, "plan-local", NULL, POL_EDGE_REROUTE);
    assert_string_equal(g.nodes[e->from].name, "plan");
    assert_int_equal(e->bound_detect, RESTR);
    assert_true(e->ok);
    e = edge_via(&g, "review", "plan.output", POL_EDGE_DATA);
    assert_int_equal(e->bound, INT); /* plan's output joined with plan-local's */
    assert_string_equal(g.stages[3].note,
                        "review.output may carry restricted at run time (a detector hit "
                        "upstream or a failed declassify guard), above its clearance internal: "
                        "on_sensitive fail refuses that item (exit 3) — set skip or "
                        "reroute:STAGE to handle it");
    pol_graph_release(&g);
}

static char *render_world(const struct world *w, enum pol_format fmt)
{
    struct pol_graph g;
    graph_world(&g, w);
    char *out = render(&g, fmt);
    pol_graph_release(&g);
    return out;
}

static void graph_renderings_state_bounds_policy_and_notes(void **state)
{
    (void)state;
    struct world w;
    review_world(&w);
    char *text = render_world(&w, POL_FORMAT_TEXT);
    has(text, "on_sensitive: reroute to stage plan-local (local, clearance restricted)");
    has(text, "declassify: to internal when its guards pass (no run of 8 tokens copied from "
              "its input, no rare token copied from it, no detector hit, code removed first)");
    has(text, "reads pr.title: internal (the field's declared label); with detectors restricted");
    has(text, "tool read_file: restricted (what the tool returns: as pr.diff); with detectors "
              "restricted");
    has(text, "reads review.output: internal (the output of stage review, declassified); with "
              "detectors restricted — above its clearance when a detector hits");
    has(text, "standby: runs only in place of stage plan");
    has(text, "runs: kind agent, scope item, a task per element of pr.files");
    has(text, "note: a detector hit in pr.title may raise the prompt to restricted");
    char *json = render_world(&w, POL_FORMAT_JSON);
    has(json, "\"rules\": [{\"path\": \"**/*.pem\", \"label\": \"restricted\"}]");
    has(json, "\"declassify\": {\"to\": \"internal\", \"no_verbatim_tokens\": 8, "
              "\"no_rare_tokens\": true, \"detectors\": true, \"redact\": [\"code\"], "
              "\"max_chars\": 0}");
    has(json, "{\"from\": \"plan\", \"from_kind\": \"stage\", \"to\": \"plan-local\", \"kind\": "
              "\"reroute\", \"via\": null, \"data\": false, \"bound\": \"internal\", "
              "\"bound_from\": \"reroute\", \"bound_detect\": \"restricted\"");
    has(json, "{\"name\": \"read_file\", \"as\": \"pr.diff\", \"label\": \"restricted\"");
    has(json, "\"noted\": [\"plan\", \"summary\"]");
    char *dot = render_world(&w, POL_FORMAT_DOT);
    has(dot, "\"s:plan\" -> \"s:plan-local\" [label=\"reroute\", style=bold, color=blue];");
    has(dot, "\"tool:read_file\" -> \"s:review\" [label=\"restricted\"];");
    has(dot, "\"s:review\" -> \"s:summary\" [label=\"declassified: internal / restricted\", "
             "color=orange");
    char *md = render_world(&w, POL_FORMAT_MD);
    has(md, "- Stage plan sends pr.title (internal) to cloud endpoint 'cloud' at ollama.com "
            "(model m:7b; declared cloud), cleared for internal (endpoint). What it reads can be "
            "labelled up to restricted at run time (when a detector finds something), above its "
            "clearance: such an item goes to stage plan-local on local endpoint 'gpu' instead.");
    has(md, "(when a detector finds something, or a declassify guard upstream fails), above its "
            "clearance: such an item is refused before anything is sent, and the run exits 3.");
    has(md, "- Stage review reads each.path, each.diff, plan.output and what the tool read_file "
            "returns (restricted) on local endpoint 'gpu'");
    has(md, "The output of stage review is declassified to internal when its guards pass");
    has(md, "If the assumptions below hold, no confidential or restricted data leaves the "
            "machine.");
    has(md, "Stage summary sends review.output at its declassified label internal");
    /* The statement lists what it rests on instead of promising. */
    has(md, "This rests on assumptions that the file alone cannot prove:");
    has(md, "- The server at 'gpu' does not forward ");
    has(md, "- Declassification of review to internal relies on its guards: a paraphrase, a "
            "translation or an encoding of its input is not caught.");
    char *again = render_world(&w, POL_FORMAT_MD);
    assert_string_equal(md, again); /* deterministic */
    free(text);
    free(json);
    free(dot);
    free(md);
    free(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cloud_model_names_are_recognised),
        cmocka_unit_test(join_takes_the_higher_and_unknown_is_top),
        cmocka_unit_test(clearance_defaults_follow_locality),
        cmocka_unit_test(cloud_model_on_local_endpoint_is_cloud),
        cmocka_unit_test(check_passes_the_private_split),
        cmocka_unit_test(check_refuses_diff_and_review_to_cloud),
        cmocka_unit_test(unknown_field_counts_as_top),
        cmocka_unit_test(graph_names_locality_reasons_and_clearance_sources),
        cmocka_unit_test(graph_edges_carry_bounds_and_after_carries_no_data),
        cmocka_unit_test(graph_refuses_stage_cleared_above_its_endpoint),
        cmocka_unit_test(graph_json_escapes_names_and_md_states_what_leaves),
        cmocka_unit_test(content_field_joins_every_rule_label),
        cmocka_unit_test(detector_bound_joins_the_enabled_detectors),
        cmocka_unit_test(builtin_detector_label_is_its_name_or_the_top),
        cmocka_unit_test(for_each_file_fields_take_pr_files_and_pr_diff_bounds),
        cmocka_unit_test(for_each_stage_output_element_takes_its_output_bounds),
        cmocka_unit_test(output_is_capped_at_the_clearance),
        cmocka_unit_test(tool_results_are_bounded_by_their_sources),
        cmocka_unit_test(unknown_reads_are_top_and_no_reads_are_bottom),
        cmocka_unit_test(reads_and_template_placeholders_both_count),
        cmocka_unit_test(reroute_output_joins_the_target_output),
        cmocka_unit_test(declassify_lowers_the_dependants_declared_input),
        cmocka_unit_test(nothing_clearance_gives_a_bottom_output),
        cmocka_unit_test(declared_overrun_is_refused_under_fail_and_noted_under_skip),
        cmocka_unit_test(docs_rule_planner_needs_a_reroute),
        cmocka_unit_test(tool_grant_above_clearance_is_refused),
        cmocka_unit_test(reroute_from_local_to_cloud_is_refused),
        cmocka_unit_test(reroute_target_below_the_detector_bound_is_refused),
        cmocka_unit_test(standby_stage_is_checked_like_any_stage),
        cmocka_unit_test(detector_overrun_is_only_a_note),
        cmocka_unit_test(detector_overrun_in_a_tool_is_noted_as_a_failed_task),
        cmocka_unit_test(graph_has_each_fields_tools_reroute_and_both_bounds),
        cmocka_unit_test(graph_renderings_state_bounds_policy_and_notes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
