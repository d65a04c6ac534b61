/* tests/unit/test_audit_verify.c — audit verification re-checks the gate's
 * rule on every allowed record, against the labels of the record's run, on
 * top of the hash chain. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "store/store.h"
#include "util/bh_err.h"

static char dir[64];
static struct store *st;
static int64_t run_id;

static int setup(void **state)
{
    (void)state;
    struct bh_err err = { 0 };
    char *labels[] = { "public", "internal", "confidential" };
    int resumed;
    snprintf(dir, sizeof(dir), "/tmp/bh-auditv.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(&st, dir, &err), 0);
    assert_int_equal(store_run_open(st, "k", "p", &run_id, &resumed, &err), 0);
    assert_int_equal(store_run_set_labels(st, run_id, labels, 3, &err), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    store_free(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static void append(const char *decision, const char *label, const char *clearance)
{
    struct bh_err err = { 0 };
    struct store_audit a = { .run_id = run_id, .item = "i", .stage = "summary",
                             .endpoint = "cloud", .locality = "cloud", .model = "m",
                             .label = label, .clearance = clearance, .decision = decision,
                             .payload_sha256 = "00" };
    assert_int_equal(store_audit_append(st, &a, &err), 0);
}

static void labels_round_trip(void **state)
{
    (void)state;
    char **l;
    size_t n;
    struct bh_err err = { 0 };
    assert_int_equal(store_run_labels(st, run_id, &l, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(l[2], "confidential");
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
    char *bad[] = { "a\nb" };
    assert_int_equal(store_run_set_labels(st, run_id, bad, 1, &err), BH_EINVAL);
}

static void verify_passes_allowed_within_and_refused_above(void **state)
{
    (void)state;
    struct bh_err err = { 0 };
    int64_t n = 0;
    append("allow", "internal", "internal");
    append("allow", "public", "confidential");
    append("refuse", "confidential", "internal"); /* refused: fine whatever the labels */
    assert_int_equal(egr_audit_verify(st, &n, &err), 0);
    assert_int_equal(n, 3);
}

static void verify_names_an_allowed_breach(void **state)
{
    (void)state;
    struct bh_err err = { 0 };
    int64_t n = 0;
    append("allow", "internal", "internal");
    append("allow", "confidential", "internal"); /* what a buggy gate would write */
    assert_int_equal(egr_audit_verify(st, &n, &err), BH_EPOLICY);
    assert_string_equal(err.msg, "audit record 2 allowed data labelled confidential to stage "
                                 "'summary' (cloud, endpoint 'cloud') whose clearance is internal");
}

static void verify_names_an_unknown_label(void **state)
{
    (void)state;
    struct bh_err err = { 0 };
    int64_t n = 0;
    append("allow", "secret", "internal");
    assert_int_equal(egr_audit_verify(st, &n, &err), BH_EPOLICY);
    assert_non_null(strstr(err.msg, "audit record 1 allowed a request with label 'secret'"));
}

static void verify_accepts_a_cached_answer_within_clearance(void **state)
{
    (void)state;
    struct bh_err err = { 0 };
    int64_t n = 0;
    append("cached", "internal", "internal");
    append("cached", "public", "confidential");
    assert_int_equal(egr_audit_verify(st, &n, &err), 0);
    assert_int_equal(n, 2);
}

static void verify_names_a_cached_answer_above_clearance(void **state)
{
    (void)state;
    struct bh_err err = { 0 };
    int64_t n = 0;
    append("allow", "internal", "internal");
    append("cached", "confidential", "internal");
    assert_int_equal(egr_audit_verify(st, &n, &err), BH_EPOLICY);
    assert_string_equal(err.msg, "audit record 2 answered a request labelled confidential from "
                                 "the response cache for stage 'summary' (cloud, endpoint "
                                 "'cloud') whose clearance is internal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(labels_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_passes_allowed_within_and_refused_above, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(verify_names_an_allowed_breach, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_names_an_unknown_label, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_accepts_a_cached_answer_within_clearance, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(verify_names_a_cached_answer_above_clearance, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
