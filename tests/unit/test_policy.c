/* tests/unit/test_policy.c — stage locality, clearances and the static flow
 * check over hand-built pipelines (no file, no network). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "policy/graph.h"
#include "policy/policy.h"

enum { PUB, INT, CONF, RESTR };
static char *labels[] = { "public", "internal", "confidential", "restricted" };
static char *fields[] = { "pr.title", "pr.diff" };
static int field_labels[] = { INT, CONF };

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
    *part = (struct pipe_tpl_part){ .is_field = 1, .text = (char *)name, .line = 1, .col = 1 };
}

static void build(struct fixture *f, size_t plan_ep, size_t review_ep, size_t summary_ep)
{
    memset(f, 0, sizeof(*f));
    f->ep[0] = (struct pipe_endpoint){ .name = "gpu", .declared_local = 1, .clearance = -1 };
    f->ep[1] = (struct pipe_endpoint){ .name = "cloud", .clearance = INT };
    const char *names[] = { "plan", "review", "summary" };
    size_t eps[] = { plan_ep, review_ep, summary_ep };
    for (size_t i = 0; i < 3; i++) {
        f->st[i] = (struct pipe_stage){ .name = (char *)names[i], .endpoint = eps[i],
                                        .model = "qwen2.5-coder:7b", .clearance = -1,
                                        .tpl = { .parts = f->parts[i], .n_parts = 1 } };
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
    f->p = (struct pipeline){ .name = "t", .labels = labels, .n_labels = 4,
                              .endpoints = f->ep, .n_endpoints = 2, .stages = f->st,
                              .n_stages = 3, .order = f->order,
                              .source = { .kind = "git", .label = CONF, .fields = fields,
                                          .field_labels = field_labels, .n_fields = 2 } };
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
    assert_int_equal(pol_stage_clearance(&f.p, 1, 1), RESTR);  /* verified local: top */
    assert_int_equal(pol_stage_clearance(&f.p, 1, 0), POL_NOTHING); /* declared local, refuted */
    assert_string_equal(pol_label_name(&f.p, POL_NOTHING), "nothing");
    assert_int_equal(pol_stage_clearance(&f.p, 0, 0), INT);    /* cloud, declared internal */
    f.ep[0].clearance = CONF;
    f.st[1].clearance = RESTR;                                 /* above its endpoint: capped */
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
    f.st[1].clearance = INT; /* only the stage's own word raises it */
    assert_int_equal(pol_stage_clearance(&f.p, 1, 1), INT);
    assert_true(pol_stage_local(&f.p, 2, 1));
}

static void check_passes_the_private_split(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, 1, 0, 0);
    int local[] = { 1, 0 };
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
    int local[] = { 1, 0 };
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
    int unverified[] = { 0, 0 };
    assert_int_equal(pol_check(&f.p, unverified, r), 2);
}

static void unknown_field_counts_as_top(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, 1, 0, 0);
    field(&f.parts[0][0], "pr.mystery");
    int local[] = { 1, 0 };
    struct pol_stage_report r[3];
    assert_int_equal(pol_check(&f.p, local, r), 1);
    assert_int_equal(r[0].input, RESTR);
}

static void graph_of(struct pol_graph *g, const struct fixture *f, int gpu_local,
                     enum pol_addr_kind kind)
{
    struct pol_endpoint_fact facts[2] = {
        { .local = gpu_local, .addr_kind = kind, .host = "127.0.0.1", .addr = "127.0.0.1" },
        { .local = 0, .addr_kind = POL_ADDR_PUBLIC, .declared_cloud = 1, .host = "ollama.com" },
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
    graph_of(&g, &f, 1, POL_ADDR_PRIVATE);
    assert_string_equal(pol_locality_words(g.stages[0].why), "declared cloud");
    assert_string_equal(pol_clearance_from_words(g.stages[0].clearance_from), "endpoint");
    assert_string_equal(pol_locality_words(g.stages[1].why), "declared local, private address");
    assert_string_equal(pol_clearance_from_words(g.stages[1].clearance_from), "default for local");
    assert_string_equal(pol_locality_words(g.stages[2].why), "model name ends in :cloud");
    assert_string_equal(pol_clearance_from_words(g.stages[2].clearance_from), "default for cloud");
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
}

static void graph_edges_carry_bounds_and_after_carries_no_data(void **state)
{
    (void)state;
    struct fixture f;
    struct pol_graph g;
    build(&f, 1, 0, 0);
    size_t summary_deps[] = { 1, 0 }; /* reads review.output; after plan */
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
    assert_int_equal(g.n_edges, 5); /* title→plan, diff→review, plan→review, review→summary, after */
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
    assert_non_null(strstr(json, "\"verdict\": {\"ok\": true, \"refused\": []}"));
    char *md = render(&g, POL_FORMAT_MD);
    assert_non_null(strstr(md, "- Stage plan sends pr.title (internal) to cloud endpoint 'cloud' "
                               "at ollama.com (model qwen2.5-coder:7b; declared cloud)"));
    assert_non_null(strstr(md, "No confidential or restricted data leaves the machine."));
    char *dot = render(&g, POL_FORMAT_DOT);
    assert_non_null(strstr(dot, "\"s:plan\" -> \"s:review\" [label=\"internal\"];"));
    assert_int_equal(pol_format_find("md"), POL_FORMAT_MD);
    assert_int_equal(pol_format_find("yaml"), -1);
    free(json);
    free(md);
    free(dot);
    pol_graph_release(&g);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
