/* tests/unit/test_policy_prop.c — the static proof against a brute force.
 *
 * Generates random pipelines (seeded, so a failure is reproducible: the
 * message names the case) as hand-built struct pipeline values: 1..8 stages
 * in a random DAG with a random run order, random reads of source fields,
 * of upstream outputs and of names that mean nothing, random labels (2..5 of
 * them), clearances, declared and verified localities and cloud model names.
 * pol_check and the flow graph must refuse exactly the stages that an
 * independent reference refuses. The reference enumerates every path from a
 * source field to a stage and recomputes clearances from the documented rules
 * (pipelines/README.md, "Labels and clearances"); it calls no policy code. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "policy/graph.h"
#include "policy/policy.h"

enum { MAX_ST = 8, MAX_EP = 3, MAX_PARTS = 5, N_FIELDS = 6, N_CASES = 2000 };

static char *label_names[] = { "l0", "l1", "l2", "l3", "l4" };
static char *field_names[N_FIELDS] = { "pr.a", "pr.b", "pr.c", "pr.d", "pr.e", "pr.f" };
static const char *stage_names[MAX_ST] = { "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7" };
static const char *models[] = { "qwen:7b", "gpt-oss:120b-cloud", "kimi:cloud", "glm:CLOUD",
                                "mybot-cloud", "cloudy:7b", "llama3" };

struct gen {
    struct pipeline p;
    int field_labels[N_FIELDS];
    struct pipe_endpoint ep[MAX_EP];
    int verified[MAX_EP];
    struct pipe_stage st[MAX_ST];
    struct pipe_tpl_part parts[MAX_ST][MAX_PARTS];
    char part_text[MAX_ST][MAX_PARTS][32];
    size_t deps[MAX_ST][MAX_ST];
    size_t order[MAX_ST];
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static int maybe_label(int top)
{
    return rnd(3) == 0 ? -1 : (int)rnd((uint32_t)top + 1);
}

static void add_dep(struct gen *g, size_t s, size_t d)
{
    for (size_t k = 0; k < g->st[s].n_deps; k++)
        if (g->deps[s][k] == d)
            return;
    g->deps[s][g->st[s].n_deps++] = d;
}

/* One placeholder or literal of stage s, which sits at position pos of the order. */
static void gen_part(struct gen *g, size_t s, size_t pos, size_t k)
{
    struct pipe_tpl_part *part = &g->parts[s][k];
    char *text = g->part_text[s][k];
    uint32_t what = rnd(10);
    part->is_field = 1;
    if (what < 5) {
        snprintf(text, 32, "%s", field_names[rnd(N_FIELDS)]);
    } else if (what < 8 && pos > 0) {
        size_t up = g->order[rnd((uint32_t)pos)];
        snprintf(text, 32, "%s.output", stage_names[up]);
        add_dep(g, s, up);
    } else if (what == 8) {
        snprintf(text, 32, rnd(2) ? "pr.mystery" : "nosuch.output");
    } else {
        part->is_field = 0;
        snprintf(text, 32, "literal text ");
    }
    part->text = text;
}

static void gen_stage(struct gen *g, size_t s, size_t pos, int top)
{
    g->st[s] = (struct pipe_stage){ .name = (char *)stage_names[s],
                                    .endpoint = rnd((uint32_t)g->p.n_endpoints),
                                    .model = (char *)models[rnd(sizeof(models) / sizeof(*models))],
                                    .clearance = maybe_label(top),
                                    .tpl = { .parts = g->parts[s], .n_parts = rnd(MAX_PARTS + 1) },
                                    .deps = g->deps[s] };
    for (size_t k = 0; k < g->st[s].tpl.n_parts; k++)
        gen_part(g, s, pos, k);
    if (pos > 0 && rnd(3) == 0)
        add_dep(g, s, g->order[rnd((uint32_t)pos)]); /* an `after` */
}

static void gen_pipeline(struct gen *g)
{
    memset(g, 0, sizeof(*g));
    size_t n_labels = 2 + rnd(4), n_ep = 1 + rnd(MAX_EP), n_st = 1 + rnd(MAX_ST);
    int top = (int)n_labels - 1;
    for (size_t i = 0; i < N_FIELDS; i++)
        g->field_labels[i] = (int)rnd((uint32_t)n_labels);
    g->p = (struct pipeline){ .name = "prop", .file = "prop.json", .labels = label_names,
                              .n_labels = n_labels, .endpoints = g->ep, .n_endpoints = n_ep,
                              .stages = g->st, .n_stages = n_st, .order = g->order,
                              .source = { .kind = "git", .label = (int)rnd((uint32_t)n_labels),
                                          .fields = field_names,
                                          .field_labels = g->field_labels,
                                          .n_fields = N_FIELDS } };
    for (size_t i = 0; i < n_ep; i++) {
        g->ep[i] = (struct pipe_endpoint){ .name = "ep", .url = "http://x", .declared_local =
                                               (int)rnd(2), .clearance = maybe_label(top) };
        g->verified[i] = g->ep[i].declared_local && rnd(4) != 0;
    }
    for (size_t i = 0; i < n_st; i++) /* a random run order: a shuffle */
        g->order[i] = i;
    for (size_t i = n_st; i > 1; i--) {
        size_t j = rnd((uint32_t)i), t = g->order[i - 1];
        g->order[i - 1] = g->order[j];
        g->order[j] = t;
    }
    for (size_t k = 0; k < n_st; k++)
        gen_stage(g, g->order[k], k, top);
}

/* --- the reference -------------------------------------------------------- */

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

static int ref_clearance(const struct gen *g, size_t s)
{
    const struct pipe_stage *st = &g->st[s];
    const struct pipe_endpoint *e = &g->ep[st->endpoint];
    int verified = g->verified[st->endpoint], top = (int)g->p.n_labels - 1;
    if (e->declared_local && !verified)
        return -2;  /* a local claim the network refutes: nothing at all */
    if (verified && ref_is_cloud_model(st->model))
        return st->clearance >= 0 ? st->clearance : 0;  /* only the stage's word */
    int cap = e->clearance >= 0 ? e->clearance : verified ? top : 0;
    int want = st->clearance >= 0 ? st->clearance : cap;
    return want < cap ? want : cap;
}

static int ref_over_endpoint(const struct gen *g, size_t s)
{
    const struct pipe_endpoint *e = &g->ep[g->st[s].endpoint];
    int conf = e->clearance >= 0 ? e->clearance : e->declared_local ? (int)g->p.n_labels - 1 : 0;
    return g->st[s].clearance > conf;
}

static long ref_stage_named(const struct gen *g, const char *text)
{
    for (size_t i = 0; i < g->p.n_stages; i++) {
        char want[40];
        snprintf(want, sizeof(want), "%s.output", stage_names[i]);
        if (strcmp(text, want) == 0)
            return (long)i;
    }
    return -1;
}

/* Walks every path backwards from stage s to a source; *max is the highest
 * label found at the start of any of them. Returns the number of paths. */
static size_t ref_paths(const struct gen *g, size_t s, int *max)
{
    size_t paths = 0;
    int top = (int)g->p.n_labels - 1;
    for (size_t k = 0; k < g->st[s].tpl.n_parts; k++) {
        const struct pipe_tpl_part *part = &g->st[s].tpl.parts[k];
        if (!part->is_field)
            continue;
        int l = top; /* a name that means nothing counts as the top */
        for (size_t f = 0; f < N_FIELDS; f++)
            if (strcmp(part->text, field_names[f]) == 0)
                l = g->field_labels[f];
        long up = ref_stage_named(g, part->text);
        if (up >= 0) {
            paths += ref_paths(g, (size_t)up, max);
            continue;
        }
        if (l > *max)
            *max = l;
        paths++;
    }
    return paths;
}

static int ref_input(const struct gen *g, size_t s)
{
    int max = 0; /* a stage that reads nothing receives the bottom label */
    ref_paths(g, s, &max);
    return max;
}

/* --- the property ----------------------------------------------------------- */

/* Returns 1 when the reference refuses some stage. */
static int check_one(const struct gen *g, int n)
{
    struct pol_stage_report rep[MAX_ST];
    size_t bad = pol_check(&g->p, g->verified, rep);
    size_t ref_bad = 0, ref_graph_bad = 0;
    struct pol_endpoint_fact facts[MAX_EP];
    for (size_t i = 0; i < g->p.n_endpoints; i++)
        facts[i] = (struct pol_endpoint_fact){ .local = g->verified[i],
                                               .addr_kind = POL_ADDR_LOOPBACK };
    struct pol_graph graph;
    pol_graph_init(&graph, &g->p, facts);
    for (size_t s = 0; s < g->p.n_stages; s++) {
        int in = ref_input(g, s), clr = ref_clearance(g, s);
        int refused = in > clr, over = ref_over_endpoint(g, s);
        if (rep[s].input != in || rep[s].clearance != clr || rep[s].ok == refused ||
            graph.stages[s].ok == (refused || over))
            fail_msg("case %d stage %zu: input %d/%d clearance %d/%d ok %d/%d graph ok %d/%d", n,
                     s, rep[s].input, in, rep[s].clearance, clr, rep[s].ok, !refused,
                     graph.stages[s].ok, !(refused || over));
        ref_bad += refused;
        ref_graph_bad += refused || over;
    }
    for (size_t k = 0; k < graph.n_edges; k++) {
        const struct pol_graph_edge *e = &graph.edges[k];
        const struct pol_graph_node *from = &graph.nodes[e->from];
        if (e->data && from->kind == POL_NODE_STAGE)
            assert_int_equal(e->bound, ref_input(g, from->stage));
        if (!e->ok) /* a refused edge always means a refused target */
            assert_false(graph.stages[e->to].flow_ok);
    }
    assert_int_equal(bad, ref_bad);
    assert_int_equal(graph.n_refused, ref_graph_bad);
    pol_graph_release(&graph);
    return ref_bad > 0;
}

static void check_refuses_exactly_what_brute_force_refuses(void **state)
{
    (void)state;
    static struct gen g;
    size_t refused = 0, accepted = 0;
    rng_state = 0x9e3779b97f4a7c15u;
    for (int n = 0; n < N_CASES; n++) {
        gen_pipeline(&g);
        if (check_one(&g, n))
            refused++;
        else
            accepted++;
    }
    /* The generator must exercise both verdicts, or the property says little. */
    assert_true(refused > N_CASES / 10);
    assert_true(accepted > N_CASES / 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_refuses_exactly_what_brute_force_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
