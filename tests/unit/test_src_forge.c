/* tests/unit/test_src_forge.c — the forge list parser: both shapes, the
 * values a forge may leave null, and a table of malformed lists, each with
 * the JSON path (or line and column) and the words its message must hold. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sources/src_forge.h"
#include "sources/src_git.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

#include <stdlib.h>
#include <string.h>

#define OID1 "1111111111111111111111111111111111111111"
#define OID2 "abcdefABCDEF0123456789abcdefABCDEF012345"

static struct src_forge_pr *parse_ok(const char *text, size_t *n)
{
    struct src_forge_pr *prs = NULL;
    struct bh_err err = {0};
    int rc = src_forge_parse(&prs, n, text, strlen(text), "prs.json", &err);
    if (rc != 0)
        fail_msg("unexpected error: %s: %s", err.path, err.msg);
    return prs;
}

static void gh_list_gives_every_field_and_the_pull_ref(void **state)
{
    (void)state;
    size_t n = 0;
    struct src_forge_pr *prs =
        parse_ok("[{\"number\": 12, \"title\": \"Fix\", \"body\": \"b\\r\\nody\","
                 " \"author\": {\"login\": \"octocat\", \"is_bot\": false},"
                 " \"labels\": [{\"name\": \"bug\", \"color\": \"x\"}, {\"name\": \"ui\"}],"
                 " \"isDraft\": true, \"headRefOid\": \"" OID1 "\", \"baseRefName\": \"dev\","
                 " \"headRefName\": \"fix\"}]",
                 &n);
    assert_int_equal(n, 1);
    assert_string_equal(prs[0].key, "refs/pull/12/head");
    assert_string_equal(prs[0].number, "12");
    assert_string_equal(prs[0].title, "Fix");
    assert_string_equal(prs[0].body, "b\r\nody");
    assert_string_equal(prs[0].author, "octocat");
    assert_string_equal(prs[0].labels, "bug,ui");
    assert_int_equal(prs[0].draft, 1);
    assert_string_equal(prs[0].head, OID1);
    assert_string_equal(prs[0].base, "dev");
    src_forge_prs_free(prs, n);
}

static void gitlab_list_gives_every_field_and_the_merge_request_ref(void **state)
{
    (void)state;
    size_t n = 0;
    struct src_forge_pr *prs = parse_ok(
        "[{\"iid\": 3, \"title\": \"T\", \"description\": null, \"author\": null,"
        " \"labels\": [\"a\", {\"name\": \"b\"}], \"work_in_progress\": false,"
        " \"sha\": \"" OID2 "\", \"target_branch\": \"main\"},"
        " {\"iid\": 4, \"title\": \"U\", \"description\": \"d\", \"author\": {\"username\": \"bob\"},"
        " \"labels\": [], \"draft\": true, \"sha\": \"" OID1 "\", \"target_branch\": \"main\"}]",
        &n);
    assert_int_equal(n, 2);
    assert_string_equal(prs[0].key, "refs/merge-requests/3/head");
    assert_string_equal(prs[0].body, "");   /* null: no description */
    assert_string_equal(prs[0].author, ""); /* null: a deleted account */
    assert_string_equal(prs[0].labels, "a,b");
    assert_int_equal(prs[0].draft, 0);
    assert_string_equal(prs[1].author, "bob");
    assert_string_equal(prs[1].labels, "");
    assert_int_equal(prs[1].draft, 1);
    src_forge_prs_free(prs, n);
}

static void an_empty_list_is_no_pull_request(void **state)
{
    (void)state;
    size_t n = 7;
    struct src_forge_pr *prs = parse_ok(" [ ]\n", &n);
    assert_null(prs);
    assert_int_equal(n, 0);
}

#define GH_OK(extra)                                                                               \
    "[{\"number\": 1, \"title\": \"t\", \"body\": \"\", \"author\": {\"login\": \"a\"},"           \
    " \"labels\": [], \"isDraft\": false, \"headRefOid\": \"" OID1 "\","                           \
    " \"baseRefName\": \"main\"" extra "}"

static const struct {
    const char *text;
    int line; /* 0: a value error, with path */
    const char *path;
    const char *words;
} bad[] = {
    {"[{\"number\": 1,\n  \"title\": }]", 2, "", "not valid JSON"},
    {"{\"number\": 1}", 0, "$", "expected an array of pull requests, got an object"},
    {"[{\"id\": 1}]", 0, "[0]", "\"iid\" and \"sha\""},
    {"[3]", 0, "[0]", "got an integer"},
    {GH_OK("") ", 5]", 0, "[1]", "expected an object (one pull request), got an integer"},
    {"[{\"number\": \"1\"}]", 0, "[0].number", "a positive integer), got a string"},
    {"[{\"number\": 0}]", 0, "[0].number", "got a number below 1"},
    {"[{\"number\": 1, \"headRefOid\": \"" OID1 "\"}]", 0, "[0].title",
     "expected a string, got nothing (the key is missing)"},
    {"[{\"number\": 1, \"title\": \"t\", \"body\": 2}]", 0, "[0].body", "a string or null"},
    {"[{\"number\": 1, \"title\": \"t\", \"body\": \"\", \"author\": \"a\"}]", 0, "[0].author",
     "an object with \"login\""},
    {"[{\"number\": 1, \"title\": \"t\", \"body\": \"\", \"author\": {\"login\": \"a\"},"
     " \"labels\": [{\"color\": \"x\"}]}]",
     0, "[0].labels[0]", "a label name"},
    {"[{\"number\": 1, \"title\": \"t\", \"body\": \"\", \"author\": {\"login\": \"a\"},"
     " \"labels\": [], \"isDraft\": \"no\"}]",
     0, "[0].isDraft", "true or false"},
    {"[{\"number\": 1, \"title\": \"t\", \"body\": \"\", \"author\": {\"login\": \"a\"},"
     " \"labels\": [], \"isDraft\": false, \"headRefOid\": \"main\"}]",
     0, "[0].headRefOid", "a commit id (40 hex digits), got another string"},
    {"[{\"number\": 1, \"title\": \"t\", \"body\": \"\", \"author\": {\"login\": \"a\"},"
     " \"labels\": [], \"isDraft\": false, \"headRefOid\": \"" OID1 "\"}]",
     0, "[0].baseRefName", "gh pr list --state open --json"},
    {"[{\"iid\": 1, \"title\": \"t\", \"description\": \"\", \"author\": {\"login\": \"a\"}}]", 0,
     "[0].author", "an object with \"username\""},
    {"[{\"iid\": 1, \"title\": \"t\", \"description\": \"\", \"author\": null, \"labels\": [],"
     " \"sha\": \"" OID1 "\"}]",
     0, "[0].draft", "merge_requests?state=opened"},
    {"[{\"number\": 1, \"number\": 2}]", 1, "", "duplicate"},
};

static void malformed_lists_name_the_place_and_what_was_expected(void **state)
{
    (void)state;
    for (size_t i = 0; i < BH_NELEM(bad); i++) {
        struct src_forge_pr *prs = NULL;
        size_t n = 0;
        struct bh_err err = {0};
        int rc = src_forge_parse(&prs, &n, bad[i].text, strlen(bad[i].text), "prs.json", &err);
        if (rc != BH_EINVAL || strcmp(err.file, "prs.json") != 0 || err.line != bad[i].line ||
            strcmp(err.path, bad[i].path) != 0 || !strstr(err.msg, bad[i].words))
            fail_msg("case %zu: rc %d, %s:%d: %s: %s", i, rc, err.file, err.line, err.path,
                     err.msg);
        assert_null(prs);
    }
}

static void ref_based_items_get_the_forge_fields_empty(void **state)
{
    (void)state;
    struct src_item *it = calloc(1, sizeof(*it));
    assert_non_null(it);
    src_forge_pad(it, 1);
    assert_int_equal(it->n_fields, src_forge_n_fields);
    for (size_t i = 0; i < src_forge_n_fields; i++)
        assert_string_equal(src_item_field(it, src_forge_fields[i]), "");
    src_forge_pad(it, 1); /* twice adds nothing */
    assert_int_equal(it->n_fields, src_forge_n_fields);
    src_items_free(it, 1);
}

static void a_missing_list_file_is_not_found(void **state)
{
    (void)state;
    struct src_forge_opts o = {.file = "/nonexistent/prs.json", .repo = "."};
    struct src_item *items = NULL;
    struct src_note *notes = NULL;
    size_t n = 0, n_notes = 0;
    struct bh_err err = {0};
    assert_int_equal(src_forge_list(&items, &n, &notes, &n_notes, &o, &err), BH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "cannot open the pull request list '/nonexistent/prs.json'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gh_list_gives_every_field_and_the_pull_ref),
        cmocka_unit_test(gitlab_list_gives_every_field_and_the_merge_request_ref),
        cmocka_unit_test(an_empty_list_is_no_pull_request),
        cmocka_unit_test(malformed_lists_name_the_place_and_what_was_expected),
        cmocka_unit_test(ref_based_items_get_the_forge_fields_empty),
        cmocka_unit_test(a_missing_list_file_is_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
