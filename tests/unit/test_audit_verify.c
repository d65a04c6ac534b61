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
    struct bh_err err = {0};
    char *labels[] = {"public", "internal", "confidential"};
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
    struct bh_err err = {0};
    struct store_audit a = {.run_id = run_id,
                            .item = "i",
                            .stage = "summary",
                            .endpoint = "cloud",
                            .locality = "cloud",
                            .model = "m",
                            .label = label,
                            .clearance = clearance,
                            .decision = decision,
                            .payload_sha256 = "00"};
    assert_int_equal(store_audit_append(st, &a, &err), 0);
}

static void append_reason(const char *decision, const char *reason)
{
    struct bh_err err = {0};
    struct store_audit a = {.run_id = run_id,
                            .item = "i",
                            .stage = "review",
                            .endpoint = "gpu-box",
                            .locality = "local",
                            .model = "mybot",
                            .label = "confidential",
                            .clearance = "confidential",
                            .decision = decision,
                            .reason = reason,
                            .payload_sha256 = "00"};
    assert_int_equal(store_audit_append(st, &a, &err), 0);
}

struct seen {
    int64_t seq[4];
    size_t n;
};

static void on_breach(void *ud, const struct store_audit *r)
{
    struct seen *s = ud;
    if (s->n < 4)
        s->seq[s->n] = r->seq;
    s->n++;
}

static void labels_round_trip(void **state)
{
    (void)state;
    char **l;
    size_t n;
    struct bh_err err = {0};
    assert_int_equal(store_run_labels(st, run_id, &l, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(l[2], "confidential");
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
    char *bad[] = {"a\nb"};
    assert_int_equal(store_run_set_labels(st, run_id, bad, 1, &err), BH_EINVAL);
}

static void verify_passes_allowed_within_and_refused_above(void **state)
{
    (void)state;
    struct bh_err err = {0};
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
    struct bh_err err = {0};
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
    struct bh_err err = {0};
    int64_t n = 0;
    append("allow", "secret", "internal");
    assert_int_equal(egr_audit_verify(st, &n, &err), BH_EPOLICY);
    assert_non_null(strstr(err.msg, "audit record 1 allowed a request with label 'secret'"));
}

static void verify_accepts_a_cached_answer_within_clearance(void **state)
{
    (void)state;
    struct bh_err err = {0};
    int64_t n = 0;
    append("cached", "internal", "internal");
    append("cached", "public", "confidential");
    assert_int_equal(egr_audit_verify(st, &n, &err), 0);
    assert_int_equal(n, 2);
}

static void verify_names_a_cached_answer_above_clearance(void **state)
{
    (void)state;
    struct bh_err err = {0};
    int64_t n = 0;
    append("allow", "internal", "internal");
    append("cached", "confidential", "internal");
    assert_int_equal(egr_audit_verify(st, &n, &err), BH_EPOLICY);
    assert_string_equal(err.msg, "audit record 2 answered a request labelled confidential from "
                                 "the response cache for stage 'summary' (cloud, endpoint "
                                 "'cloud') whose clearance is internal");
}

static void verify_fails_on_breach_records_old_and_new(void **state)
{
    (void)state;
    struct bh_err err = {0};
    int64_t n = 0;
    size_t breaches = 0;
    struct seen seen = {0};
    append("allow", "internal", "internal");
    append_reason("breach", "the reply says the server forwarded the request to 'x'");
    append_reason("refuse", "static check: not a breach, a refusal");
    append_reason("refuse", "breach: what earlier versions wrote");
    assert_int_equal(egr_audit_verify_each(st, &n, &breaches, on_breach, &seen, &err), BH_EPOLICY);
    assert_int_equal(n, 4);
    assert_int_equal(breaches, 2);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.seq[0], 2);
    assert_int_equal(seen.seq[1], 4);
    assert_non_null(strstr(err.msg, "the audit log holds 2 breach records (the first is "
                                    "record 2): data went where it should not have"));
    bh_err_clear(&err);
    assert_int_equal(egr_audit_verify(st, &n, &err), BH_EPOLICY);
}

static void verify_reports_a_broken_chain_before_breaches(void **state)
{
    (void)state;
    struct bh_err err = {0};
    int64_t n = 0;
    size_t breaches = 7;
    append_reason("breach", "forwarded");
    append("allow", "internal", "internal");
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "sqlite3 '%s/state.db' \"UPDATE audit SET reason = 'x' WHERE "
             "seq = 1\"",
             dir);
    if (system(cmd) != 0)
        skip();
    assert_int_equal(egr_audit_verify_each(st, &n, &breaches, NULL, NULL, &err), BH_EPOLICY);
    assert_int_equal(breaches, 0);
    assert_non_null(strstr(err.msg, "hash does not match its contents"));
}

static void is_breach_reads_the_decision_and_the_old_prefix(void **state)
{
    (void)state;
    struct store_audit r = {.decision = "breach", .reason = ""};
    assert_true(egr_audit_is_breach(&r));
    r.decision = "refuse";
    r.reason = "breach: x";
    assert_true(egr_audit_is_breach(&r));
    r.reason = "label confidential exceeds clearance internal";
    assert_false(egr_audit_is_breach(&r));
    r.decision = "allow";
    r.reason = "breach: in an allowed record means nothing";
    assert_false(egr_audit_is_breach(&r));
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
        cmocka_unit_test_setup_teardown(verify_fails_on_breach_records_old_and_new, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(verify_reports_a_broken_chain_before_breaches, setup,
                                        teardown),
        cmocka_unit_test(is_breach_reads_the_decision_and_the_old_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
