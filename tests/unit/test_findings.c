/* tests/unit/test_findings.c — the findings format and the output schema
 * check: what a model's reply must look like, the exact messages for the
 * ways it can be wrong, and the stored form. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "findings/findings.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

struct bad_case {
    const char *reply;
    const char *msg;
};

static void findings_reject_bad_replies_naming_the_place(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"I found nothing", "the reply is not JSON (line 1, column 1)"},
        {"{\"issues\": []}", "$: expected an array, found an object"},
        {"[{\"path\":\"a.c\",\"line\":1,\"severity\":\"high\",\"message\":\"m\"},"
         " {\"path\":\"a.c\",\"line\":2,\"severity\":\"high\",\"message\":\"m\"},"
         " {\"path\":\"a.c\",\"line\":3,\"severity\":\"severe\",\"message\":\"m\"}]",
         "$[2].severity: expected one of info, low, medium, high, critical"},
        {"[{\"path\":\"a.c\",\"severity\":\"high\",\"message\":\"m\"}]",
         "$[0]: \"line\" is required"},
        {"[{\"path\":\"a.c\",\"line\":\"12\",\"severity\":\"high\",\"message\":\"m\"}]",
         "$[0].line: expected an integer, found a string"},
        {"[{\"path\":\"a.c\",\"line\":0,\"severity\":\"high\",\"message\":\"m\"}]",
         "$[0].line: expected at least 1"},
        {"[{\"path\":\"a.c\",\"line\":1.5,\"severity\":\"high\",\"message\":\"m\"}]",
         "$[0].line: expected an integer, found a number"},
        {"[{\"path\":\"a.c\",\"line\":1,\"severity\":\"high\",\"message\":\"\"}]",
         "$[0].message: expected at least 1 character"},
        {"[{\"path\":\"a.c\",\"line\":9,\"end_line\":3,\"severity\":\"low\",\"message\":\"m\"}]",
         "$[0].end_line: expected at least line (9)"},
        {"[{\"path\":\"/etc/passwd\",\"line\":1,\"severity\":\"low\",\"message\":\"m\"}]",
         "$[0].path: expected a path relative to the repository root (no leading /, no ..)"},
        {"[{\"path\":\"src/../../x\",\"line\":1,\"severity\":\"low\",\"message\":\"m\"}]",
         "$[0].path: expected a path relative to the repository root (no leading /, no ..)"},
        {"{\"findings\": [{\"path\":\"a.c\",\"line\":1,\"message\":\"m\"}]}",
         "$.findings[0]: \"severity\" is required"},
        {"[\"a.c:12 is wrong\"]", "$[0]: expected an object, found a string"},
        {"[{\"path\":\"a.c\",\"line\":1e300,\"severity\":\"low\",\"message\":\"m\"}]",
         "$[0].line: expected at most 100000000"}, /* found by fuzz_findings */
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct stage_findings f = {0};
        struct bh_err err = {0};
        int rc = stage_findings_parse(cases[i].reply, &f, &err);
        if (rc != BH_EREPLY || strcmp(err.msg, cases[i].msg) != 0)
            print_error("case %zu: rc %d, message '%s'\n", i, rc, err.msg);
        assert_int_equal(rc, BH_EREPLY);
        assert_string_equal(err.msg, cases[i].msg);
        assert_null(f.v);
    }
}

static void findings_messages_never_quote_the_reply(void **state)
{
    (void)state;
    struct stage_findings f = {0};
    struct bh_err err = {0};
    assert_int_equal(stage_findings_parse("[{\"path\":\"a.c\",\"line\":1,\"severity\":"
                                          "\"SECRET-VALUE\",\"message\":\"m\"}]",
                                          &f, &err),
                     BH_EREPLY);
    assert_null(strstr(err.msg, "SECRET-VALUE"));
}

static void findings_read_the_array_the_object_and_a_fence(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "[{\"path\":\"src/a.c\",\"line\":3,\"end_line\":5,\"severity\":\"high\",\"rule\":\"r1\","
        "\"message\":\"bad\",\"suggestion\":\"fix\"},"
        "{\"path\":\"b.py\",\"line\":7,\"severity\":\"info\",\"message\":\"note\"}]",
        "{\"findings\":[{\"severity\":\"high\",\"line\":3,\"end_line\":5,\"path\":\"src/a.c\","
        "\"suggestion\":\"fix\",\"rule\":\"r1\",\"message\":\"bad\"},"
        "{\"path\":\"b.py\",\"line\":7.0,\"severity\":\"info\",\"message\":\"note\","
        "\"confidence\":0.9}]}",
        "```json\n[{\"path\":\"src/a.c\",\"line\":3,\"end_line\":5,\"severity\":\"high\","
        "\"rule\":\"r1\",\"message\":\"bad\",\"suggestion\":\"fix\"},"
        "{\"path\":\"b.py\",\"line\":7,\"end_line\":7,\"severity\":\"info\",\"message\":\"note\","
        "\"rule\":\"\"}]\n```\n",
    };
    const char *stored = "[{\"path\":\"src/a.c\",\"line\":3,\"end_line\":5,\"severity\":\"high\","
                         "\"rule\":\"r1\",\"message\":\"bad\",\"suggestion\":\"fix\"},"
                         "{\"path\":\"b.py\",\"line\":7,\"severity\":\"info\",\"message\":"
                         "\"note\"}]";
    for (size_t i = 0; i < BH_NELEM(replies); i++) {
        struct stage_findings f = {0};
        struct bh_err err = {0};
        assert_int_equal(stage_findings_parse(replies[i], &f, &err), 0);
        assert_int_equal(f.n, 2);
        assert_string_equal(f.v[0].path, "src/a.c");
        assert_int_equal(f.v[0].line, 3);
        assert_int_equal(f.v[0].end_line, 5);
        assert_int_equal(f.v[0].severity, STAGE_SEV_HIGH);
        assert_int_equal(f.v[1].end_line, 7); /* none given: the line */
        assert_string_equal(f.v[1].rule, "");
        char *json = stage_findings_json(&f);
        assert_string_equal(json, stored);
        free(json);
        stage_findings_release(&f);
    }
}

static void findings_empty_array_is_no_findings(void **state)
{
    (void)state;
    struct stage_findings f = {0};
    assert_int_equal(stage_findings_parse(" []\n", &f, NULL), 0);
    assert_int_equal(f.n, 0);
    char *json = stage_findings_json(&f);
    assert_string_equal(json, "[]");
    free(json);
    stage_findings_release(&f);
}

static void findings_more_than_the_cap_are_refused(void **state)
{
    (void)state;
    size_t n = STAGE_FINDINGS_MAX + 1;
    const char *one = "{\"path\":\"a\",\"line\":1,\"severity\":\"low\",\"message\":\"m\"},";
    char *text = calloc(1, n * strlen(one) + 3);
    strcpy(text, "[");
    for (size_t i = 0; i < n; i++)
        strcat(text, one);
    strcpy(text + strlen(text) - 1, "]");
    struct stage_findings f = {0};
    struct bh_err err = {0};
    assert_int_equal(stage_findings_parse(text, &f, &err), BH_EREPLY);
    assert_string_equal(err.msg, "$: expected at most 1000 elements");
    free(text);
}

static void severities_are_ordered_and_named(void **state)
{
    (void)state;
    assert_int_equal(stage_severity_find("critical"), STAGE_SEV_CRITICAL);
    assert_int_equal(stage_severity_find("info"), STAGE_SEV_INFO);
    assert_int_equal(stage_severity_find("High"), -1);
    assert_true(STAGE_SEV_HIGH > STAGE_SEV_MEDIUM);
    assert_string_equal(stage_severity_name(STAGE_SEV_LOW), "low");
    assert_string_equal(stage_severity_name(9), "?");
}

static void findings_are_asked_for_in_each_providers_way(void **state)
{
    (void)state;
    const char *fmt = NULL, *ins = NULL;
    stage_findings_ask("ollama", &fmt, &ins);
    assert_non_null(fmt);
    assert_true(strncmp(fmt, "{\"type\":\"array\"", 15) == 0);
    assert_non_null(strstr(ins, "JSON array of findings"));
    stage_findings_ask("openai", &fmt, &ins);
    assert_true(strncmp(fmt, "{\"type\":\"object\"", 16) == 0); /* its root must be an object */
    assert_non_null(strstr(ins, "{\"findings\": [...]}"));
    stage_findings_ask("anthropic", &fmt, &ins);
    assert_null(fmt); /* no schema mode: the instruction is all it gets */
    assert_non_null(strstr(ins, "severity is one of info, low, medium, high, critical"));
}

static void schema_check_follows_the_keywords(void **state)
{
    (void)state;
    const char *schema =
        "{\"type\":\"object\",\"required\":[\"files\"],\"additionalProperties\":false,"
        "\"properties\":{\"files\":{\"type\":\"array\",\"minItems\":1,\"items\":"
        "{\"type\":\"string\",\"maxLength\":5}},\"mode\":{\"enum\":[\"fast\",1,null]},"
        "\"n\":{\"type\":[\"integer\",\"null\"],\"maximum\":10},\"k\":{\"const\":\"x\"},"
        "\"odd key\":{\"type\":\"boolean\"}}}";
    static const struct bad_case cases[] = {
        {"[]", "$: expected an object, found an array"},
        {"{}", "$: \"files\" is required"},
        {"{\"files\":[]}", "$.files: expected at least 1 element"},
        {"{\"files\":[\"ab\",\"abcdef\"]}", "$.files[1]: expected at most 5 characters"},
        {"{\"files\":[\"a\"],\"mode\":\"slow\"}", "$.mode: expected one of fast, 1, null"},
        {"{\"files\":[\"a\"],\"n\":\"3\"}",
         "$.n: expected one of the types integer, null, found a string"},
        {"{\"files\":[\"a\"],\"n\":11}", "$.n: expected at most 10"},
        {"{\"files\":[\"a\"],\"k\":\"y\"}", "$.k: expected x"},
        {"{\"files\":[\"a\"],\"odd key\":1}",
         "$[\"odd key\"]: expected a boolean, found an integer"},
        {"{\"files\":[\"a\"],\"other\":1}",
         "$: has a key the schema does not allow (allowed: files, mode, n, k, odd key)"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        char *stored = NULL;
        struct bh_err err = {0};
        int rc = stage_schema_check(schema, cases[i].reply, &stored, &err);
        if (rc != BH_EREPLY || strcmp(err.msg, cases[i].msg) != 0)
            print_error("case %zu: rc %d, message '%s'\n", i, rc, err.msg);
        assert_int_equal(rc, BH_EREPLY);
        assert_string_equal(err.msg, cases[i].msg);
        assert_null(stored);
    }
    char *stored = NULL;
    assert_int_equal(
        stage_schema_check(schema, "```\n{ \"files\": [\"a\"], \"n\": null }\n```", &stored, NULL),
        0);
    assert_string_equal(stored, "{\"files\":[\"a\"],\"n\":null}");
    free(stored);
}

static void schema_check_refuses_a_schema_that_is_not_json(void **state)
{
    (void)state;
    char *stored = NULL;
    struct bh_err err = {0};
    assert_int_equal(stage_schema_check("{nope", "{}", &stored, &err), BH_EINVAL);
    assert_non_null(strstr(err.msg, "the output schema is not JSON"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(findings_reject_bad_replies_naming_the_place),
        cmocka_unit_test(findings_messages_never_quote_the_reply),
        cmocka_unit_test(findings_read_the_array_the_object_and_a_fence),
        cmocka_unit_test(findings_empty_array_is_no_findings),
        cmocka_unit_test(findings_more_than_the_cap_are_refused),
        cmocka_unit_test(severities_are_ordered_and_named),
        cmocka_unit_test(findings_are_asked_for_in_each_providers_way),
        cmocka_unit_test(schema_check_follows_the_keywords),
        cmocka_unit_test(schema_check_refuses_a_schema_that_is_not_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
