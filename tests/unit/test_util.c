/* tests/unit/test_util.c — errors, capped buffers, hashing, suggestions,
 * UTF-8 and the checked JSON layer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "util/bh_buf.h"
#include "util/bh_cidr.h"
#include "util/bh_err.h"
#include "util/bh_glob.h"
#include "util/bh_json.h"
#include "util/bh_utf8.h"
#include "util/bh_hash.h"
#include "util/bh_invariant.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

static void err_format_has_every_known_part(void **state)
{
    (void)state;
    struct bh_err e = {0};
    char buf[1024];
    bh_err_at(&e, "p.json", 14, 9, "stages.review.endpoint");
    bh_err_set(&e, BH_EINVAL, "unknown endpoint '%s'", "gpu-bx");
    assert_string_equal(bh_err_format(&e, buf, sizeof(buf)),
                        "p.json:14:9: stages.review.endpoint: unknown endpoint 'gpu-bx'");
    bh_err_clear(&e);
    bh_err_set(&e, BH_EIO, "disk full");
    assert_string_equal(bh_err_format(&e, buf, sizeof(buf)), "disk full");
    bh_err_at(&e, "f", 3, 0, NULL);
    assert_string_equal(bh_err_format(&e, buf, sizeof(buf)), "f:3: disk full");
}

static void err_prefix_keeps_the_message_and_truncates_safely(void **state)
{
    (void)state;
    struct bh_err e = {0};
    bh_err_set(&e, BH_ENET, "connection refused");
    bh_err_prefix(&e, "in stage '%s': ", "review");
    assert_string_equal(e.msg, "in stage 'review': connection refused");
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bh_err_set(&e, BH_ENET, "%s", big);
    bh_err_prefix(&e, "p: ");
    assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
    assert_memory_equal(e.msg, "p: xxx", 6);
    assert_int_equal(bh_err_set(NULL, BH_EIO, "x"), BH_EIO);
}

static void buf_refuses_past_its_cap_and_stays_intact(void **state)
{
    (void)state;
    struct bh_buf b;
    bh_buf_init(&b, 10);
    assert_int_equal(bh_buf_puts(&b, "hello"), 0);
    assert_int_equal(bh_buf_puts(&b, "world"), 0);
    assert_int_equal(bh_buf_puts(&b, "!"), BH_ETOOBIG);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(bh_buf_printf(&b, "%d", 1), BH_ETOOBIG);
    bh_buf_consume(&b, 5);
    assert_string_equal(b.data, "world");
    assert_int_equal(bh_buf_printf(&b, "%03d", 7), 0);
    assert_string_equal(b.data, "world007");
    char *s = bh_buf_detach(&b);
    assert_string_equal(s, "world007");
    assert_null(b.data);
    free(s);
    bh_buf_init(&b, 4);
    s = bh_buf_detach(&b); /* never appended: still a string */
    assert_string_equal(s, "");
    free(s);
}

static void sha256_matches_known_vectors(void **state)
{
    (void)state;
    char hex[BH_SHA256_HEX];
    bh_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    bh_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void sha256_fields_are_unambiguous(void **state)
{
    (void)state;
    char a[BH_SHA256_HEX], b[BH_SHA256_HEX];
    struct bh_sha256 *h = bh_sha256_new();
    bh_sha256_field(h, "ab");
    bh_sha256_field(h, "c");
    bh_sha256_final(h, a);
    h = bh_sha256_new();
    bh_sha256_field(h, "a");
    bh_sha256_field(h, "bc");
    bh_sha256_final(h, b);
    assert_string_not_equal(a, b);
}

static void suggest_finds_typos_only(void **state)
{
    (void)state;
    const char *keys[] = {"endpoint", "model", "prompt", "after", "clearance"};
    assert_string_equal(bh_str_suggest("enpoint", keys, 5), "endpoint");
    assert_string_equal(bh_str_suggest("modle", keys, 5), "model");
    assert_null(bh_str_suggest("temperature", keys, 5));
    assert_null(bh_str_suggest("model", keys, 5)); /* exact: nothing to suggest */
    assert_int_equal(bh_str_distance("kitten", "sitting"), 3);
    char *j = bh_str_join(keys, 2);
    assert_string_equal(j, "endpoint, model");
    free(j);
    j = bh_str_join(keys, 0);
    assert_string_equal(j, "(none)");
    free(j);
    assert_true(bh_str_endswith("a-cloud", "-cloud"));
    assert_false(bh_str_endswith("cloud", "-cloud"));
}

static void xgrow_zeroes_new_elements(void **state)
{
    (void)state;
    size_t cap = 0;
    int *v = bh_xgrow(NULL, &cap, 3, sizeof(int));
    assert_true(cap >= 3);
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(v[i], 0);
    v[0] = 7;
    size_t old = cap;
    v = bh_xgrow(v, &cap, old + 1, sizeof(int));
    assert_int_equal(v[0], 7);
    assert_int_equal(v[old], 0);
    free(v);
}

static void glob_matches_segments_stars_and_sets(void **state)
{
    (void)state;
    static const struct {
        const char *glob, *path;
        int match;
    } cases[] = {
        {"docs/**", "docs/a.md", 1},
        {"docs/**", "docs/x/y/z.md", 1},
        {"docs/**", "doc/a.md", 0},
        {"docs/**", "src/docs/a.md", 0},
        {"**/*.pem", "key.pem", 1},
        {"**/*.pem", "a/b/key.pem", 1},
        {"**/*.pem", "a/b/key.pem.txt", 0},
        {"*.pem", "deep/er/key.pem", 1},
        {"*.pem", "key.PEM", 0},
        {"src/*.c", "src/a.c", 1},
        {"src/*.c", "src/x/a.c", 0},
        {"src/**/test_*.c", "src/test_a.c", 1},
        {"src/**/test_*.c", "src/u/v/test_b.c", 1},
        {"src/**/test_*.c", "src/u/b.c", 0},
        {"a?c", "abc", 1},
        {"a?c", "a/c", 0},
        {"x/a?c", "x/ac", 0},
        {"[abc].txt", "b.txt", 1},
        {"[!abc].txt", "b.txt", 0},
        {"[a-c]x", "cx", 1},
        {"[a-c]x", "dx", 0},
        {"\\*.md", "*.md", 1},
        {"\\*.md", "a.md", 0},
        {"**", "anything/at/all", 1},
        {"secrets/**/*", "secrets/a", 1},
        {"*", "", 1},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++)
        if (bh_glob_match(cases[i].glob, cases[i].path) != cases[i].match)
            fail_msg("glob \"%s\" on \"%s\": expected %d", cases[i].glob, cases[i].path,
                     cases[i].match);
}

static void glob_problems_are_named_and_never_match(void **state)
{
    (void)state;
    assert_null(bh_glob_problem("docs/**/*.md"));
    assert_null(bh_glob_problem("[]]x"));
    assert_non_null(bh_glob_problem(""));
    assert_non_null(strstr(bh_glob_problem("a**/b"), "whole path segment"));
    assert_non_null(strstr(bh_glob_problem("**b"), "whole path segment"));
    assert_non_null(strstr(bh_glob_problem("[abc"), "unclosed"));
    assert_non_null(strstr(bh_glob_problem("a\\"), "trailing"));
    assert_non_null(strstr(bh_glob_problem("/etc/*"), "leading"));
    assert_int_equal(bh_glob_match("[abc", "[abc"), 0);
    assert_int_equal(bh_glob_match(NULL, "x"), 0);
}

/* One parser for every CIDR block of the tree: the loader's verdicts and the
 * gate's matches come from here. */
static void cidr_parses_and_matches_blocks(void **state)
{
    static const struct {
        const char *block;
        int status;
    } parse[] = {
        {"10.8.0.0/16", BH_CIDR_OK},       {"10.8.1.0/16", BH_CIDR_OK},
        {"fd00::/8", BH_CIDR_OK},          {"10.0.0.1/32", BH_CIDR_OK},
        {"::1/128", BH_CIDR_OK},           {"10.8.0.0/33", BH_CIDR_PREFIX},
        {"fd00::/129", BH_CIDR_PREFIX},    {"0.0.0.0/0", BH_CIDR_EVERYTHING},
        {"::/0", BH_CIDR_EVERYTHING},      {"10.8.0.0", BH_CIDR_SYNTAX},
        {"10.8/16", BH_CIDR_SYNTAX},       {"10.8.0.0/", BH_CIDR_SYNTAX},
        {"10.8.0.0/1x", BH_CIDR_SYNTAX},   {"10.8.0.0/-1", BH_CIDR_SYNTAX},
        {"10.8.0.0/0016", BH_CIDR_SYNTAX}, {"10.8.0.0/16 ", BH_CIDR_SYNTAX},
        {"[fd00::]/8", BH_CIDR_SYNTAX},    {"/8", BH_CIDR_SYNTAX},
        {"gpu.lan/8", BH_CIDR_SYNTAX},     {"", BH_CIDR_SYNTAX},
    };
    (void)state;
    struct bh_cidr c;
    for (size_t i = 0; i < BH_NELEM(parse); i++)
        if (bh_cidr_parse(&c, parse[i].block) != parse[i].status)
            fail_msg("bh_cidr_parse(\"%s\") should be %d", parse[i].block, parse[i].status);
    assert_int_equal(bh_cidr_parse(&c, NULL), BH_CIDR_SYNTAX);
    assert_int_equal(bh_cidr_parse(&c, "10.8.0.0/40"), BH_CIDR_PREFIX);
    assert_int_equal(c.v4, 1); /* so that the message names the IPv4 range */
    assert_int_equal(bh_cidr_parse(&c, "10.8.0.0/16"), BH_CIDR_OK);
    assert_true(bh_cidr_contains(&c, "10.8.255.1"));
    assert_true(bh_cidr_contains(&c, "::ffff:10.8.0.1")); /* IPv4-mapped: the same address */
    assert_false(bh_cidr_contains(&c, "10.9.0.1"));
    assert_false(bh_cidr_contains(&c, "::a08:1")); /* IPv4-compatible is not mapped */
    assert_false(bh_cidr_contains(&c, "gpu.lan"));
    assert_false(bh_cidr_contains(&c, NULL));
    assert_int_equal(bh_cidr_parse(&c, "fc00::/7"), BH_CIDR_OK);
    assert_true(bh_cidr_contains(&c, "fd12::1"));
    assert_true(bh_cidr_contains(&c, "fc00::"));
    assert_false(bh_cidr_contains(&c, "fe80::1"));
    assert_false(bh_cidr_contains(&c, "10.8.0.1"));
    char out[64];
    bh_cidr_suggest("10.1.2.7", out, sizeof(out));
    assert_string_equal(out, "10.1.2.0/24");
    bh_cidr_suggest("::ffff:192.168.5.9", out, sizeof(out));
    assert_string_equal(out, "192.168.5.0/24");
    bh_cidr_suggest("fd12:3456:789a:1::5", out, sizeof(out));
    assert_string_equal(out, "fd12:3456:789a:1::/64");
    bh_cidr_suggest("nonsense", out, sizeof(out));
    assert_string_equal(out, "");
}

/* The invariant holds: nothing happens. It does not, in a child process:
 * exit 70 and the message, in every build (NDEBUG or not). */
static void invariant_exits_70_with_the_message(void **state)
{
    (void)state;
    BH_INVARIANT(1 + 1 == 2, "arithmetic");
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        BH_INVARIANT(1 + 1 == 3, "a label above its clearance was about to leave");
        _exit(0);
    }
    close(fd[1]);
    char buf[256] = "";
    ssize_t n = read(fd[0], buf, sizeof(buf) - 1);
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 70);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "bulkhead: internal error: a label above its clearance was "
                                "about to leave at unit/test_util.c:"));
}

/* Each maximal subpart of an ill-formed sequence becomes one U+FFFD (the
 * Unicode standard's practice, table 3-8), valid text passes untouched. */
static void utf8_lossy_replaces_maximal_subparts(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        size_t replaced;
    } cases[] = {
        {"caf\xC3\xA9", "caf\xC3\xA9", 0}, /* valid é */
        {"caf\xE9", "caf\xEF\xBF\xBD", 1}, /* Latin-1 é */
        {"\xE9t\xE9", "\xEF\xBF\xBDt\xEF\xBF\xBD", 2},
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD", 2},                 /* overlong '/': two */
        {"\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 3}, /* overlong */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 3}, /* surrogate */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 4},
        {"\xE2\x82x", "\xEF\xBF\xBDx", 1},           /* truncated: one for the prefix */
        {"\xF0\x9F\x98", "\xEF\xBF\xBD", 1},         /* truncated at the end */
        {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80", 0}, /* U+1F600 */
        {"\xF5", "\xEF\xBF\xBD", 1},
        {"", "", 0},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        size_t n = strlen(cases[i].in), len = 0, replaced = 0;
        char *got = bh_utf8_lossy_dup(cases[i].in, n, &len, &replaced);
        if (strcmp(got, cases[i].out) != 0 || replaced != cases[i].replaced)
            fail_msg("case %zu: %zu replaced", i, replaced);
        assert_int_equal(len, strlen(cases[i].out));
        assert_int_equal(bh_utf8_valid(got, len), 1);
        assert_int_equal(bh_utf8_valid(cases[i].in, n), cases[i].replaced == 0);
        free(got);
    }
    assert_int_equal(bh_utf8_invalid_at("ab\xE9", 3), 2);
}

/* The encoder round-trips through the validator at each length's edges;
 * the character count skips continuation bytes only. */
static void utf8_put_and_count_agree_with_the_validator(void **state)
{
    (void)state;
    static const unsigned cps[] = {0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF};
    static const size_t lens[] = {1, 1, 2, 2, 3, 3, 4, 4};
    for (size_t i = 0; i < BH_NELEM(cps); i++) {
        char out[4];
        size_t n = bh_utf8_put(out, cps[i]);
        assert_int_equal(n, lens[i]);
        assert_int_equal(bh_utf8_valid(out, n), 1);
        assert_int_equal(bh_utf8_count(out, n), 1);
        for (size_t k = 1; k < n; k++)
            assert_true(bh_utf8_cont((unsigned char)out[k]));
    }
    assert_int_equal(bh_utf8_count("caf\xC3\xA9 \xE9", 7), 6); /* a stray byte counts once */
}

/* jansson refuses text that is not UTF-8 by returning NULL or -1; unchecked,
 * the member just goes missing. bh_json_set reports it and latches it. */
static void json_set_reports_a_refused_value_and_latches_it(void **state)
{
    (void)state;
    json_t *o = json_object(), *a = json_array();
    int bad = 0;
    assert_int_equal(bh_json_set(o, "ok", json_string("fine"), &bad), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(bh_json_set(o, "text", json_string("caf\xE9"), &bad), BH_EINVAL);
    assert_int_equal(bad, 1);
    assert_null(json_object_get(o, "text"));
    bad = 0;
    assert_int_equal(bh_json_set(o, "k\xFF", json_true(), &bad), BH_EINVAL); /* the key */
    assert_int_equal(bad, 1);
    assert_int_equal(bh_json_set(o, "after", json_integer(1), &bad), 0);
    assert_int_equal(bad, 1); /* a later success does not clear it */
    assert_int_equal(bh_json_push(a, json_string("\xC0\xAF"), NULL), BH_EINVAL);
    assert_int_equal(bh_json_push(a, json_null(), NULL), 0);
    assert_int_equal(json_array_size(a), 1);
    assert_int_equal(bh_json_set(o, "list", a, NULL), 0);

    char *text = bh_json_dump(o, JSON_COMPACT);
    assert_string_equal(text, "{\"ok\":\"fine\",\"after\":1,\"list\":[null]}");
    struct bh_buf b;
    bh_buf_init(&b, strlen(text) + 1);
    assert_int_equal(bh_json_dump_buf(&b, o, JSON_COMPACT), 0);
    assert_string_equal(b.data, text);
    bh_buf_release(&b);
    bh_buf_init(&b, 8);
    assert_int_equal(bh_json_dump_buf(&b, o, JSON_COMPACT), BH_ETOOBIG);
    bh_buf_release(&b);
    assert_null(bh_json_dump(NULL, 0));
    assert_int_equal(bh_json_dump_buf(&b, NULL, 0), BH_EINVAL);
    free(text);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(err_format_has_every_known_part),
        cmocka_unit_test(cidr_parses_and_matches_blocks),
        cmocka_unit_test(invariant_exits_70_with_the_message),
        cmocka_unit_test(err_prefix_keeps_the_message_and_truncates_safely),
        cmocka_unit_test(buf_refuses_past_its_cap_and_stays_intact),
        cmocka_unit_test(sha256_matches_known_vectors),
        cmocka_unit_test(sha256_fields_are_unambiguous),
        cmocka_unit_test(suggest_finds_typos_only),
        cmocka_unit_test(xgrow_zeroes_new_elements),
        cmocka_unit_test(glob_matches_segments_stars_and_sets),
        cmocka_unit_test(glob_problems_are_named_and_never_match),
        cmocka_unit_test(utf8_lossy_replaces_maximal_subparts),
        cmocka_unit_test(utf8_put_and_count_agree_with_the_validator),
        cmocka_unit_test(json_set_reports_a_refused_value_and_latches_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
