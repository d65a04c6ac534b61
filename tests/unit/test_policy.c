/* tests/unit/test_policy.c — stage locality, clearances and the static flow
 * check over hand-built pipelines (no file, no network). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "pipeline/pipeline.h"
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
    assert_int_equal(pol_stage_clearance(&f.p, 1, 0), PUB);    /* declared local, not verified */
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
