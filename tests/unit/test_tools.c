/* tests/unit/test_tools.c — the built-in tools of agent stages over a real
 * repository built by fixtures/make-repo.sh (six PRs, each diff with a
 * random canary). The working tree is then edited and given an untracked
 * file, and a secret file is put next to the repository: the tools must see
 * only the head commit of the PR asked for, never the disk. Labels come from
 * a hand-built pipeline: pr.title and pr.files internal, pr.diff
 * confidential, docs/ internal and *.pem restricted by rule. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pipeline/pipeline.h"
#include "policy/label.h"
#include "sources/src_git.h"
#include "stages/tools.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

#define NPR 6

enum { PUB, INT, CONF, RESTR };

static char *labels[] = {"public", "internal", "confidential", "restricted"};
static char *fields[] = {"pr.title", "pr.files", "pr.diff"};

static struct {
    char tmp[64];
    char repo[128];
    char canary[NPR][64];
    struct src_item *items;
    size_t n;
    struct pipeline p;
    int field_labels[3];
    struct pipe_rule rules[2];
    struct pol_labeller *lab;
    struct stage_tools *open[NPR + 1]; /* by PR number; [0] the latin1 test ref */
} fx;

/* A pipeline like fx.p without path rules (every file is pr.diff's
 * confidential, whatever its name: only the detectors can tell a key), with
 * custom detectors for a path and for a word in a commit message body. */
static struct {
    struct pipeline p;
    struct pipe_custom_detector custom[2];
    struct pol_labeller *lab;
} nr;

static int sh(const char *fmt, ...) BH_PRINTF(1, 2);

static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int make_repo(const char *dir, int prs)
{
    const char *src = getenv("BH_SOURCE_DIR");
    const char *self = __FILE__, *cut = strstr(self, "/tests/unit/");
    if (src)
        return sh("bash '%s/fixtures/make-repo.sh' '%s' --prs %d >/dev/null", src, dir, prs);
    return sh("bash '%.*s/fixtures/make-repo.sh' '%s' --prs %d >/dev/null",
              cut ? (int)(cut - self) : 1, cut ? self : ".", dir, prs);
}

static int read_canaries(void)
{
    char path[160];
    snprintf(path, sizeof(path), "%s.canaries", fx.repo);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    for (int i = 0; i < NPR; i++) {
        if (!fgets(fx.canary[i], sizeof(fx.canary[i]), f))
            break;
        fx.canary[i][strcspn(fx.canary[i], "\n")] = '\0';
    }
    fclose(f);
    return 0;
}

static void pipeline_init(void)
{
    fx.p.labels = labels;
    fx.p.n_labels = 4;
    fx.p.name = "t";
    fx.p.file = "t.json";
    fx.p.source.kind = "git";
    fx.p.source.label = CONF;
    fx.p.source.fields = fields;
    fx.p.source.n_fields = 3;
    fx.field_labels[0] = INT;
    fx.field_labels[1] = INT;
    fx.field_labels[2] = CONF;
    fx.p.source.field_labels = fx.field_labels;
    fx.rules[0] = (struct pipe_rule){"docs/**", INT, 1, 1};
    fx.rules[1] = (struct pipe_rule){"**/*.pem", RESTR, 2, 1};
    fx.p.source.rules = fx.rules;
    fx.p.source.n_rules = 2;
}

/* Local edits the tools must never see: a changed tracked file, an untracked
 * file, a secret beside the repository, and a commit with a byte that is not
 * UTF-8 (and a file of 300 lines) under a test ref, and on top of it a commit
 * whose message body (not its title) holds a marker, under another. */
static int disk_dirty(void)
{
    return sh("cd '%s' && echo 'WORKTREE-ONLY-EDIT' >>src/main.c && "
              "echo 'UNTRACKED-FILE' >untracked.txt && echo 'OUTSIDE-SECRET' >../secret.txt && "
              "git checkout -q -b latin1 && printf 'caf\\351 au lait\\n' >latin1.txt && "
              "seq 1 300 >many.txt && git add latin1.txt many.txt && "
              "git -c user.name=t -c user.email=t@x.invalid commit -q -m latin1 && "
              "git update-ref refs/test/latin1 HEAD && "
              "git -c user.name=t -c user.email=t@x.invalid commit -q --allow-empty "
              "-m 'Rotate the keys' -m 'The old one was ROTATED-42.' && "
              "git update-ref refs/test/rotated HEAD && git checkout -q main",
              fx.repo);
}

static int group_setup(void **state)
{
    (void)state;
    struct bh_err err = {0};
    snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/bh-tools-XXXXXX");
    if (!mkdtemp(fx.tmp))
        return -1;
    snprintf(fx.repo, sizeof(fx.repo), "%s/repo", fx.tmp);
    if (make_repo(fx.repo, NPR) != 0 || read_canaries() != 0 || disk_dirty() != 0) {
        fprintf(stderr, "test_tools: fixtures/make-repo.sh failed; set BH_SOURCE_DIR\n");
        return -1;
    }
    struct src_git_opts o = {.repo = fx.repo};
    if (src_git_list(&fx.items, &fx.n, &o, &err) != 0) {
        bh_err_print(&err, stderr);
        return -1;
    }
    pipeline_init();
    return pol_labeller_new(&fx.lab, &fx.p, &err) == 0 && fx.n == NPR ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i <= NPR; i++)
        stage_tools_free(fx.open[i]);
    pol_labeller_free(fx.lab);
    pol_labeller_free(nr.lab);
    src_items_free(fx.items, fx.n);
    if (fx.tmp[0])
        sh("rm -rf '%s'", fx.tmp);
    return 0;
}

/* The tools of PR n (0: the latin1 ref), opened once. */
static struct stage_tools *pr(int n)
{
    if (fx.open[n])
        return fx.open[n];
    struct bh_err err = {0};
    const struct src_item *it = n ? &fx.items[n - 1] : NULL;
    struct stage_tools_opts o = {.repo = fx.repo,
                                 .head = it ? strstr(it->version, "..") + 2 : "refs/test/latin1",
                                 .diff = it ? src_item_find(it, "pr.diff") : NULL,
                                 .lab = fx.lab};
    int rc = stage_tools_open(&fx.open[n], &o, &err);
    if (rc)
        bh_err_print(&err, stderr);
    assert_int_equal(rc, 0);
    return fx.open[n];
}

/* Calls a tool; the result is the caller's to release. */
static struct stage_tool_result call(int n, const char *tool, const char *args)
{
    struct stage_tool_result r;
    stage_tools_call(pr(n), tool, args, &r);
    assert_non_null(r.text);
    return r;
}

static void has(const char *text, const char *what)
{
    if (!strstr(text, what))
        fail_msg("'%s' not in:\n%s", what, text);
}

static void lacks(const char *text, const char *what)
{
    if (strstr(text, what))
        fail_msg("'%s' unexpectedly in:\n%s", what, text);
}

/* ---- read_file ---------------------------------------------------------- */

static void read_file_reads_the_pr_head_commit_not_the_disk(void **state)
{
    (void)state;
    struct stage_tool_result r = call(1, "read_file", "{\"path\":\"src/parser.c\"}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, fx.canary[0]); /* PR 1's change, not main's file */
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
    r = call(1, "read_file", "{\"path\":\"src/main.c\"}");
    lacks(r.text, "WORKTREE-ONLY-EDIT");
    stage_tool_result_release(&r);
    r = call(1, "read_file", "{\"path\":\"untracked.txt\"}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "error: there is no file 'untracked.txt' at the pull request's head commit");
    assert_int_equal(r.label, INT); /* says something of the tree: as list_files */
    stage_tool_result_release(&r);
}

static void read_file_numbers_lines_and_honours_a_range(void **state)
{
    (void)state;
    struct stage_tool_result r =
        call(2, "read_file", "{\"path\":\"src/parser.h\",\"start_line\":2,\"end_line\":\"3\"}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, "src/parser.h, lines 2-3 of ");
    has(r.text, "\n2: #define PARSER_H\n3: \n");
    lacks(r.text, "1: #ifndef");
    lacks(r.text, "4: ");
    assert_false(r.truncated);
    stage_tool_result_release(&r);
    r = call(2, "read_file", "{\"path\":\"src/parser.h\",\"start_line\":999}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "start_line 999 is past its end");
    stage_tool_result_release(&r);
    r = call(2, "read_file", "{\"path\":\"src/parser.h\",\"start_line\":3,\"end_line\":2}");
    assert_int_equal(r.status, STAGE_TOOL_MALFORMED);
    stage_tool_result_release(&r);
}

static void read_file_refuses_paths_outside_the_tree(void **state)
{
    (void)state;
    const char *bad[] = {"{\"path\":\"../secret.txt\"}",
                         "{\"path\":\"/etc/passwd\"}",
                         "{\"path\":\"src/../../secret.txt\"}",
                         "{\"path\":\"./src/main.c\"}",
                         "{\"path\":\"\"}",
                         "{\"path\":\"src//main.c\"}"};
    for (size_t i = 0; i < BH_NELEM(bad); i++) {
        struct stage_tool_result r = call(1, "read_file", bad[i]);
        assert_int_equal(r.status, STAGE_TOOL_MALFORMED);
        assert_int_equal(r.label, PUB); /* it only repeats the call */
        has(r.text, "error: read_file: ");
        lacks(r.text, "OUTSIDE-SECRET");
        lacks(r.text, "root:");
        stage_tool_result_release(&r);
    }
}

static void read_file_labels_by_path_rules_and_detectors(void **state)
{
    (void)state;
    struct stage_tool_result r = call(3, "read_file", "{\"path\":\"deploy/staging.pem\"}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, "BEGIN PRIVATE KEY");
    assert_int_equal(r.label, RESTR); /* the *.pem rule, and the private-key detector */
    stage_tool_result_release(&r);
    r = call(3, "read_file", "{\"path\":\"docs/usage.md\"}");
    assert_int_equal(r.label, INT); /* the docs rule lowers pr.diff's confidential */
    stage_tool_result_release(&r);
    r = call(3, "read_file", "{\"path\":\"src/main.c\"}");
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
}

static void read_file_of_a_folder_or_binary_is_an_error(void **state)
{
    (void)state;
    struct stage_tool_result r = call(5, "read_file", "{\"path\":\"src\"}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "'src' is a folder — list_files with dir \"src\" lists it");
    stage_tool_result_release(&r);
    r = call(5, "read_file", "{\"path\":\"assets/logo.bin\"}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "'assets/logo.bin' is a binary file (");
    lacks(r.text, "PNG");
    stage_tool_result_release(&r);
}

static void read_file_is_capped_and_says_where_to_read_on(void **state)
{
    (void)state;
    struct bh_err err = {0};
    struct stage_tools *t = NULL;
    struct stage_tools_opts o = {.repo = fx.repo, .head = "main", .lab = fx.lab, .max_result = 120};
    assert_int_equal(stage_tools_open(&t, &o, &err), 0);
    struct stage_tool_result r;
    stage_tools_call(t, "read_file", "{\"path\":\"src/parser.c\"}", &r);
    assert_int_equal(r.status, STAGE_TOOL_OK);
    assert_true(r.truncated);
    has(r.text, "[cut at 120 bytes after line ");
    has(r.text, ": read on with start_line ");
    assert_true(strlen(r.text) < 120 + 100);
    stage_tool_result_release(&r);
    stage_tools_free(t);
}

static void invalid_utf8_in_a_file_becomes_question_marks(void **state)
{
    (void)state;
    struct stage_tool_result r = call(0, "read_file", "{\"path\":\"latin1.txt\"}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, "1: caf? au lait");
    stage_tool_result_release(&r);
}

/* ---- list_files ------------------------------------------------------------ */

static void list_files_lists_the_head_tree_by_dir_and_glob(void **state)
{
    (void)state;
    struct stage_tool_result r = call(3, "list_files", "{}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, "deploy/staging.pem\n");
    has(r.text, "src/parser.c\n");
    lacks(r.text, "untracked.txt");
    lacks(r.text, "latin1.txt");    /* another commit's file */
    assert_int_equal(r.label, INT); /* as pr.files: names, not contents */
    stage_tool_result_release(&r);
    r = call(3, "list_files", "{\"dir\":\"src/\"}");
    has(r.text, "src/main.c\n");
    lacks(r.text, "docs/");
    lacks(r.text, "README");
    stage_tool_result_release(&r);
    r = call(3, "list_files", "{\"glob\":\"*.md\"}");
    has(r.text, "docs/design.md\ndocs/usage.md\n");
    has(r.text, "(2 files)");
    stage_tool_result_release(&r);
    r = call(3, "list_files", "{\"dir\":\"nope\"}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "there is no folder 'nope'");
    stage_tool_result_release(&r);
    r = call(3, "list_files", "{\"glob\":\"[a\"}");
    assert_int_equal(r.status, STAGE_TOOL_MALFORMED);
    stage_tool_result_release(&r);
}

/* ---- grep ------------------------------------------------------------------ */

static void grep_finds_lines_with_path_and_number(void **state)
{
    (void)state;
    struct stage_tool_result r = call(1, "grep", "{\"pattern\":\"BULKHEAD-CANARY-[0-9]+\"}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, "src/parser.c:");
    has(r.text, fx.canary[0]);
    has(r.text, "(1 matching lines in 1 files;");
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
    r = call(1, "grep", "{\"pattern\":\"^Only\",\"path_glob\":\"docs/**\"}");
    has(r.text, "docs/usage.md:");
    assert_int_equal(r.label, INT); /* only docs/ was searched */
    stage_tool_result_release(&r);
}

static void grep_label_joins_every_file_searched(void **state)
{
    (void)state;
    /* Nothing matches, but the .pem was searched: "not in there" is about it. */
    struct stage_tool_result r = call(3, "grep", "{\"pattern\":\"no-such-text-anywhere\"}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, "(no line matches; ");
    assert_int_equal(r.label, RESTR);
    stage_tool_result_release(&r);
    r = call(3, "grep", "{\"pattern\":\"no-such-text-anywhere\",\"path_glob\":\"*.c\"}");
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
}

static void grep_is_capped_and_rejects_bad_patterns(void **state)
{
    (void)state;
    struct stage_tool_result r = call(0, "grep", "{\"pattern\":\"\"}"); /* every line */
    assert_int_equal(r.status, STAGE_TOOL_OK);
    assert_true(r.truncated);
    has(r.text, "[stopped after 200 matching lines: narrow the search");
    stage_tool_result_release(&r);
    r = call(6, "grep", "{\"pattern\":\"(unclosed\"}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "error: grep: the pattern does not compile");
    stage_tool_result_release(&r);
}

/* ---- git_log --------------------------------------------------------------- */

static void git_log_lists_commits_from_the_head(void **state)
{
    (void)state;
    struct stage_tool_result r = call(1, "git_log", "{\"n\":2}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, " Bulkhead Fixture: Accept spaces after an operator in the parser\n");
    has(r.text, "Skip leading whitespace in expressions"); /* PR 1's base */
    assert_int_equal(r.label, INT);                        /* pr.title joined with pr.files */
    stage_tool_result_release(&r);
    r = call(6, "git_log", "{\"path\":\"docs\"}");
    has(r.text, "Document the line limit and build with debug info");
    has(r.text, "Document usage and design");
    lacks(r.text, "Add expression parser");
    stage_tool_result_release(&r);
    r = call(6, "git_log", "{\"n\":0}");
    assert_int_equal(r.status, STAGE_TOOL_MALFORMED);
    stage_tool_result_release(&r);
}

/* ---- diff ------------------------------------------------------------------ */

static void diff_shows_the_pr_or_one_file(void **state)
{
    (void)state;
    struct stage_tool_result r = call(3, "diff", "{}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    has(r.text, fx.canary[2]);
    has(r.text, "BEGIN PRIVATE KEY");
    assert_int_equal(r.label, RESTR);
    stage_tool_result_release(&r);
    r = call(3, "diff", "{\"path\":\"src/main.c\"}");
    has(r.text, fx.canary[2]);
    lacks(r.text, "PRIVATE KEY");
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
    r = call(3, "diff", "{\"path\":\"README\"}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "the pull request does not change 'README'");
    stage_tool_result_release(&r);
}

static void diff_without_a_diff_says_so(void **state)
{
    (void)state;
    struct stage_tool_result r = call(0, "diff", "{}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "the pull request's diff is not available");
    stage_tool_result_release(&r);
}

/* ---- what a result depends on ---------------------------------------------- */

static struct stage_tools *no_rules(const char *head, const struct src_field *diff)
{
    struct bh_err err = {0};
    if (!nr.lab) {
        nr.p = fx.p;
        nr.p.source.rules = NULL;
        nr.p.source.n_rules = 0;
        nr.custom[0] = (struct pipe_custom_detector){"deploy-path", "deploy/[a-z]+\\.pem", CONF};
        nr.custom[1] = (struct pipe_custom_detector){"rotated", "ROTATED-[0-9]+", RESTR};
        nr.p.source.custom = nr.custom;
        nr.p.source.n_custom = 2;
        assert_int_equal(pol_labeller_new(&nr.lab, &nr.p, &err), 0);
    }
    struct stage_tools *t = NULL;
    struct stage_tools_opts o = {.repo = fx.repo, .head = head, .diff = diff, .lab = nr.lab};
    assert_int_equal(stage_tools_open(&t, &o, &err), 0);
    return t;
}

static struct stage_tool_result call_on(struct stage_tools *t, const char *tool, const char *args)
{
    struct stage_tool_result r;
    stage_tools_call(t, tool, args, &r);
    assert_non_null(r.text);
    return r;
}

static const char *head_of(int n)
{
    return strstr(fx.items[n - 1].version, "..") + 2;
}

/* Lines 2-4 of a key file are the key without the line the private-key
 * detector knows it by: the result is labelled by the whole file. */
static void a_slice_of_a_pem_is_labelled_by_the_whole_file(void **state)
{
    (void)state;
    struct stage_tool_result r = call(3, "read_file",
                                      "{\"path\":\"deploy/staging.pem\","
                                      "\"start_line\":2,\"end_line\":4}");
    assert_int_equal(r.status, STAGE_TOOL_OK);
    lacks(r.text, "BEGIN PRIVATE KEY");
    assert_int_equal(r.label, RESTR); /* the *.pem rule */
    stage_tool_result_release(&r);
    struct stage_tools *t = no_rules(head_of(3), NULL);
    r = call_on(t, "read_file",
                "{\"path\":\"deploy/staging.pem\",\"start_line\":2,"
                "\"end_line\":4}");
    lacks(r.text, "BEGIN PRIVATE KEY");
    assert_int_equal(r.label, RESTR); /* no rule: the detector, over the whole file */
    assert_string_equal(r.why, "detector private-key (restricted) at line 1 of "
                               "deploy/staging.pem");
    stage_tool_result_release(&r);
    r = call_on(t, "read_file", "{\"path\":\"deploy/staging.pem\",\"start_line\":99}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    has(r.text, "is past its end"); /* its length is about the key file too */
    assert_int_equal(r.label, RESTR);
    stage_tool_result_release(&r);
    r = call_on(t, "read_file", "{\"path\":\"src/main.c\",\"start_line\":1,\"end_line\":1}");
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
    stage_tools_free(t);
}

/* "No line matches" is an answer about every file searched. */
static void grep_without_a_match_over_a_key_is_restricted(void **state)
{
    (void)state;
    struct stage_tools *t = no_rules(head_of(3), NULL);
    struct stage_tool_result r = call_on(t, "grep", "{\"pattern\":\"no-such-text-anywhere\"}");
    has(r.text, "(no line matches; ");
    assert_int_equal(r.label, RESTR);
    stage_tool_result_release(&r);
    r = call_on(t, "grep", "{\"pattern\":\"^[A-Za-z0-9+/]{40,}={0,2}$\"}");
    has(r.text, "deploy/staging.pem:2: "); /* the key body, without its BEGIN line */
    lacks(r.text, "BEGIN PRIVATE KEY");
    assert_int_equal(r.label, RESTR);
    stage_tool_result_release(&r);
    r = call_on(t, "grep", "{\"pattern\":\"no-such-text-anywhere\",\"path_glob\":\"src/**\"}");
    assert_int_equal(r.label, CONF); /* the key file was not searched */
    stage_tool_result_release(&r);
    stage_tools_free(t);
}

/* A binary file cannot be scanned: reading it, or a grep that passes over
 * it, is the top label (unknown means top); a path_glob that leaves it out
 * is not. */
static void a_binary_file_is_top(void **state)
{
    (void)state;
    struct stage_tool_result r = call(5, "read_file", "{\"path\":\"assets/logo.bin\"}");
    assert_int_equal(r.status, STAGE_TOOL_FAILED);
    assert_int_equal(r.label, RESTR);
    assert_string_equal(r.why, "assets/logo.bin: unscanned, so restricted: a binary file: its "
                               "content is not scanned");
    stage_tool_result_release(&r);
    r = call(5, "grep", "{\"pattern\":\"no-such-text-anywhere\"}");
    has(r.text, "1 binary or over 1024 KiB not searched");
    assert_int_equal(r.label, RESTR);
    stage_tool_result_release(&r);
    r = call(5, "grep", "{\"pattern\":\"no-such-text-anywhere\",\"path_glob\":\"src/**\"}");
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
}

/* A listing of one folder, or "there is no file", is computed from every
 * path of the tree; git_log's titles are cut from whole messages; a diff
 * of one file is labelled as that file's part, the whole diff as pr.diff. */
static void listings_logs_and_diffs_are_labelled_by_what_they_read(void **state)
{
    (void)state;
    const struct src_field *d3 = src_item_find(&fx.items[2], "pr.diff");
    struct stage_tools *t = no_rules(head_of(3), d3);
    struct stage_tool_result r = call_on(t, "list_files", "{\"dir\":\"src\"}");
    lacks(r.text, "deploy/");
    assert_int_equal(r.label, CONF); /* the tree holds deploy/staging.pem */
    has(r.why, "the paths of the head tree: detector deploy-path (confidential)");
    stage_tool_result_release(&r);
    r = call_on(t, "read_file", "{\"path\":\"deploy/other.pem\"}");
    has(r.text, "there is no file 'deploy/other.pem'");
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
    r = call_on(t, "diff", "{\"path\":\"src/main.c\"}");
    assert_int_equal(r.label, CONF);
    stage_tool_result_release(&r);
    r = call_on(t, "diff", "{\"path\":\"README\"}");
    has(r.text, "does not change 'README'");
    assert_int_equal(r.label, CONF); /* the diff's paths name the .pem */
    stage_tool_result_release(&r);
    r = call_on(t, "diff", "{}");
    assert_int_equal(r.label, RESTR);
    stage_tool_result_release(&r);
    stage_tools_free(t);
    t = no_rules("refs/test/rotated", NULL);
    r = call_on(t, "git_log", "{\"n\":1}");
    has(r.text, "Rotate the keys");
    lacks(r.text, "ROTATED-");
    assert_int_equal(r.label, RESTR); /* the message's body holds what the title is cut from */
    has(r.why, "detector rotated (restricted)");
    stage_tool_result_release(&r);
    r = call_on(t, "git_log", "{\"n\":1,\"path\":\"src\"}"); /* not that commit */
    assert_int_equal(r.label, INT);
    stage_tool_result_release(&r);
    stage_tools_free(t);
}

/* ---- calls ----------------------------------------------------------------- */

static void malformed_calls_are_results_not_failures(void **state)
{
    (void)state;
    static const struct {
        const char *tool, *args, *says;
    } cases[] = {
        {"shell", "{\"cmd\":\"id\"}", "there is no tool 'shell' (tools: read_file"},
        {"read_file", "[\"src/main.c\"]", "the arguments of read_file must be a JSON object"},
        {"read_file", "{\"path\": \"src/main.c\"", "invalid JSON"},
        {"read_file", "{}", "read_file needs the argument 'path' (a string)"},
        {"read_file", "{\"file\":\"x\",\"path\":\"x\"}",
         "read_file has no argument 'file' "
         "(its arguments: path, start_line, "
         "end_line)"},
        {"read_file", "{\"path\":5}", "argument 'path' of read_file must be a string"},
        {"git_log", "{\"n\":\"ten\"}", "argument 'n' of git_log must be a whole number"},
        {"grep", NULL,
         "the arguments of grep must be a JSON object, e.g. {\"pattern\": ...}: "
         "what was sent is not one"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct stage_tool_result r = call(1, cases[i].tool, cases[i].args);
        assert_int_equal(r.status, STAGE_TOOL_MALFORMED);
        assert_int_equal(r.label, PUB);
        has(r.text, cases[i].says);
        stage_tool_result_release(&r);
    }
}

static void tools_json_describes_the_named_tools(void **state)
{
    (void)state;
    const char *names[] = {"read_file", "nope", "grep"};
    char *j = stage_tools_json(names, 3);
    assert_non_null(j);
    has(j, "{\"type\":\"function\",\"function\":{\"name\":\"read_file\"");
    has(j, "\"required\":[\"path\"]");
    has(j, "\"name\":\"grep\"");
    has(j, "\"start_line\":{\"type\":\"integer\"");
    lacks(j, "nope");
    lacks(j, "list_files");
    free(j);
    assert_null(stage_tools_json(names + 1, 1));
    assert_true(stage_tool_known("diff"));
    assert_false(stage_tool_known("shell"));
}

static void open_names_what_it_cannot_find(void **state)
{
    (void)state;
    struct bh_err err = {0};
    struct stage_tools *t = NULL;
    struct stage_tools_opts o = {.repo = fx.repo, .head = "0123456789abcdef", .lab = fx.lab};
    assert_int_equal(stage_tools_open(&t, &o, &err), BH_ENOTFOUND);
    has(err.msg, "cannot find commit '0123456789abcdef' for the tools");
    assert_null(t);
    o.repo = "/nonexistent/repo";
    assert_int_equal(stage_tools_open(&t, &o, &err), BH_ENOTFOUND);
    has(err.msg, "repository '/nonexistent/repo': cannot open it for the tools");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_file_reads_the_pr_head_commit_not_the_disk),
        cmocka_unit_test(read_file_numbers_lines_and_honours_a_range),
        cmocka_unit_test(read_file_refuses_paths_outside_the_tree),
        cmocka_unit_test(read_file_labels_by_path_rules_and_detectors),
        cmocka_unit_test(read_file_of_a_folder_or_binary_is_an_error),
        cmocka_unit_test(read_file_is_capped_and_says_where_to_read_on),
        cmocka_unit_test(invalid_utf8_in_a_file_becomes_question_marks),
        cmocka_unit_test(list_files_lists_the_head_tree_by_dir_and_glob),
        cmocka_unit_test(grep_finds_lines_with_path_and_number),
        cmocka_unit_test(grep_label_joins_every_file_searched),
        cmocka_unit_test(a_slice_of_a_pem_is_labelled_by_the_whole_file),
        cmocka_unit_test(grep_without_a_match_over_a_key_is_restricted),
        cmocka_unit_test(a_binary_file_is_top),
        cmocka_unit_test(listings_logs_and_diffs_are_labelled_by_what_they_read),
        cmocka_unit_test(grep_is_capped_and_rejects_bad_patterns),
        cmocka_unit_test(git_log_lists_commits_from_the_head),
        cmocka_unit_test(diff_shows_the_pr_or_one_file),
        cmocka_unit_test(diff_without_a_diff_says_so),
        cmocka_unit_test(malformed_calls_are_results_not_failures),
        cmocka_unit_test(tools_json_describes_the_named_tools),
        cmocka_unit_test(open_names_what_it_cannot_find),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
