/* tests/unit/test_render.c — prompt rendering joins the labels of what it
 * substitutes, and fails closed on a missing value or an oversize prompt. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "stages/render.h"
#include "util/bh_err.h"

static char *labels[] = {"public", "internal", "confidential", "restricted"};
static struct pipeline pipe4 = {.labels = labels, .n_labels = 4};

static int lookup(void *ud, const char *field, const char **value, int *label, struct bh_err *err)
{
    (void)ud;
    if (strcmp(field, "pr.title") == 0) {
        *value = "Fix parser";
        *label = 1;
        return 0;
    }
    if (strcmp(field, "pr.diff") == 0) {
        *value = "+int x;";
        *label = 2;
        return 0;
    }
    if (strcmp(field, "odd") == 0) {
        *value = "?";
        *label = -1;
        return 0;
    }
    return bh_err_set(err, BH_ENOTFOUND, "not in this test");
}

static struct pipe_tpl_part lit(const char *s)
{
    return (struct pipe_tpl_part){.text = (char *)s};
}

static struct pipe_tpl_part fld(const char *s, int line)
{
    return (struct pipe_tpl_part){.is_field = 1, .text = (char *)s, .line = line, .col = 3};
}

static void render_substitutes_and_joins_labels(void **state)
{
    (void)state;
    struct pipe_tpl_part parts[] = {lit("T: "), fld("pr.title", 1), lit("\nD: "),
                                    fld("pr.diff", 2)};
    struct pipe_tpl t = {.file = "p.md", .parts = parts, .n_parts = 4};
    char *out = NULL;
    int label = -5;
    struct bh_err err = {0};
    assert_int_equal(stage_render(&pipe4, &t, lookup, NULL, 0, &out, &label, &err), 0);
    assert_string_equal(out, "T: Fix parser\nD: +int x;");
    assert_int_equal(label, 2);
    free(out);
    t.n_parts = 2;
    assert_int_equal(stage_render(&pipe4, &t, lookup, NULL, 0, &out, &label, &err), 0);
    assert_int_equal(label, 1);
    free(out);
    t.n_parts = 1; /* the author's text alone is public */
    assert_int_equal(stage_render(&pipe4, &t, lookup, NULL, 0, &out, &label, &err), 0);
    assert_int_equal(label, 0);
    free(out);
}

static void render_unknown_label_is_top(void **state)
{
    (void)state;
    struct pipe_tpl_part parts[] = {fld("odd", 1)};
    struct pipe_tpl t = {.file = "p.md", .parts = parts, .n_parts = 1};
    char *out = NULL;
    int label = 0;
    struct bh_err err = {0};
    assert_int_equal(stage_render(&pipe4, &t, lookup, NULL, 0, &out, &label, &err), 0);
    assert_int_equal(label, 3);
    free(out);
}

static void render_fails_on_missing_value_with_position(void **state)
{
    (void)state;
    struct pipe_tpl_part parts[] = {lit("x"), fld("plan.output", 4)};
    struct pipe_tpl t = {.file = "p.md", .parts = parts, .n_parts = 2};
    char *out = NULL;
    int label = 0;
    struct bh_err err = {0};
    char buf[512];
    assert_int_equal(stage_render(&pipe4, &t, lookup, NULL, 0, &out, &label, &err), BH_ENOTFOUND);
    assert_null(out);
    assert_string_equal(bh_err_format(&err, buf, sizeof(buf)),
                        "p.md:4:3: no value for {{plan.output}}: not in this test");
}

static void render_caps_the_prompt(void **state)
{
    (void)state;
    struct pipe_tpl_part parts[] = {lit("0123456789"), fld("pr.title", 1)};
    struct pipe_tpl t = {.file = "p.md", .parts = parts, .n_parts = 2};
    char *out = NULL;
    int label = 0;
    struct bh_err err = {0};
    assert_int_equal(stage_render(&pipe4, &t, lookup, NULL, 12, &out, &label, &err), BH_ETOOBIG);
    assert_null(out);
    assert_non_null(strstr(err.msg, "exceeds 12 bytes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(render_substitutes_and_joins_labels),
        cmocka_unit_test(render_unknown_label_is_top),
        cmocka_unit_test(render_fails_on_missing_value_with_position),
        cmocka_unit_test(render_caps_the_prompt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
