/* tests/unit/test_src_repo.c — src_repo over a small repository made here
 * with git: two commits, a text file, a binary file, a folder and a
 * submodule entry, so that each kind a path can name, each walk order and
 * each log filter has one case whose answer is known exactly. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sources/src_repo.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static struct {
    char tmp[64];
    char repo[128];
    char first[SRC_REPO_ID_LEN + 1]; /* the first commit, which did not touch dir/ */
} fx;

/* Runs a shell command in the fixture repository; returns its exit status. */
static int git_sh(const char *cmd)
{
    char line[2048];
    snprintf(line, sizeof(line),
             "cd '%s' && export GIT_AUTHOR_NAME=Ann GIT_AUTHOR_EMAIL=a@example.org "
             "GIT_COMMITTER_NAME=Ann GIT_COMMITTER_EMAIL=a@example.org && (%s) >/dev/null 2>&1",
             fx.repo, cmd);
    int rc = system(line);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/bh-src-repo.XXXXXX");
    if (!mkdtemp(fx.tmp))
        return -1;
    snprintf(fx.repo, sizeof(fx.repo), "%s/repo", fx.tmp);
    char mk[256];
    snprintf(mk, sizeof(mk), "mkdir '%s'", fx.repo);
    if (system(mk) != 0)
        return -1;
    if (git_sh("git init -q -b main . && printf 'one\\ntwo\\n' >a.txt && printf 'x\\0y' >bin.dat "
               "&& git add a.txt bin.dat && GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' "
               "GIT_COMMITTER_DATE='2024-01-01T00:00:00Z' git commit -q -m 'first: files' "
               "-m 'the body of the first'") != 0)
        return -1;
    FILE *p = NULL;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse HEAD", fx.repo);
    if (!(p = popen(cmd, "r")) || !fgets(fx.first, sizeof(fx.first), p))
        return -1;
    pclose(p);
    return git_sh(
        "mkdir dir && printf 'bee\\n' >dir/b.txt && git add dir && "
        "git update-index --add --cacheinfo 160000,$(git rev-parse HEAD),sub && "
        "GIT_AUTHOR_DATE='2024-02-01T00:00:00Z' GIT_COMMITTER_DATE='2024-02-01T00:00:00Z' "
        "git commit -q -m 'second: a folder'");
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static struct src_repo *open_head(void)
{
    struct src_repo *r = NULL;
    struct bh_err err = {0};
    assert_int_equal(src_repo_open(&r, fx.repo, "HEAD", "the tests", &err), 0);
    return r;
}

static void src_repo_open_names_the_repository_the_commit_and_the_user(void **state)
{
    (void)state;
    struct src_repo *r = NULL;
    struct bh_err err = {0};
    assert_int_equal(src_repo_open(&r, "/nonexistent/repo", "HEAD", "the tests", &err),
                     BH_ENOTFOUND);
    assert_non_null(
        strstr(err.msg, "repository '/nonexistent/repo': cannot open it for the tests"));
    assert_null(r);
    memset(&err, 0, sizeof(err));
    assert_int_equal(src_repo_open(&r, fx.repo, "no-such-rev", "the tests", &err), BH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "cannot find commit 'no-such-rev' for the tests"));
    src_repo_free(NULL);
}

static void src_repo_read_gives_a_files_bytes_and_what_else_a_path_names(void **state)
{
    (void)state;
    struct src_repo *r = open_head();
    struct src_repo_blob b;
    enum src_repo_kind kind = SRC_REPO_FILE;
    struct bh_err err = {0};
    assert_int_equal(src_repo_read(r, "a.txt", &b, &kind, &err), 0);
    assert_int_equal(b.size, 8);
    assert_memory_equal(b.data, "one\ntwo\n", 8);
    assert_false(b.binary);
    src_repo_blob_release(&b);
    assert_null(b.data);
    assert_int_equal(src_repo_read(r, "bin.dat", &b, NULL, &err), 0);
    assert_true(b.binary);
    assert_int_equal(b.size, 3);
    src_repo_blob_release(&b);
    assert_int_equal(src_repo_read(r, "dir", &b, &kind, &err), BH_ENOTFOUND);
    assert_int_equal(kind, SRC_REPO_DIR);
    assert_int_equal(src_repo_read(r, "sub", &b, &kind, &err), BH_ENOTFOUND);
    assert_int_equal(kind, SRC_REPO_SUBMODULE);
    assert_int_equal(src_repo_read(r, "nope.txt", &b, &kind, &err), BH_ENOTFOUND);
    assert_int_equal(kind, SRC_REPO_NONE);
    assert_int_equal(src_repo_kind_at(r, ""), SRC_REPO_DIR);
    assert_int_equal(src_repo_kind_at(r, "dir/b.txt"), SRC_REPO_FILE);
    assert_int_equal(src_repo_kind_at(r, "dir/none"), SRC_REPO_NONE);
    src_repo_free(r);
}

static void src_repo_read_at_an_older_commit_sees_that_commits_tree(void **state)
{
    (void)state;
    struct src_repo *r = NULL;
    struct bh_err err = {0};
    assert_int_equal(src_repo_open(&r, fx.repo, fx.first, "the tests", &err), 0);
    assert_int_equal(src_repo_kind_at(r, "dir"), SRC_REPO_NONE);
    assert_int_equal(src_repo_kind_at(r, "a.txt"), SRC_REPO_FILE);
    src_repo_free(r);
}

/* Collects "<path>:<kind>[=<content>]\n" for each entry. */
static int collect(struct src_repo *r, const struct src_repo_entry *e, void *payload)
{
    struct bh_buf *b = payload;
    bh_buf_printf(b, "%s:%d", e->path, (int)e->kind);
    if (e->kind == SRC_REPO_FILE && strstr(e->path, ".txt")) {
        struct src_repo_blob blob;
        struct bh_err err = {0};
        assert_int_equal(src_repo_entry_read(r, e, &blob, &err), 0);
        bh_buf_printf(b, "=%.*s", (int)blob.size, blob.data);
        src_repo_blob_release(&blob);
    }
    bh_buf_puts(b, "|");
    return 0;
}

static int stop_at_dir(struct src_repo *r, const struct src_repo_entry *e, void *payload)
{
    (void)r;
    ++*(int *)payload;
    return e->kind == SRC_REPO_DIR ? 7 : 0;
}

static void src_repo_walk_goes_depth_first_with_paths_from_the_root(void **state)
{
    (void)state;
    struct src_repo *r = open_head();
    struct bh_buf b;
    bh_buf_init(&b, 0);
    assert_int_equal(src_repo_walk(r, "", collect, &b), 0);
    assert_string_equal(b.data, "a.txt:1=one\ntwo\n|bin.dat:1|dir:2|dir/b.txt:1=bee\n|sub:3|");
    bh_buf_reset(&b);
    assert_int_equal(src_repo_walk(r, "dir", collect, &b), 0);
    assert_string_equal(b.data, "dir/b.txt:1=bee\n|");
    assert_int_equal(src_repo_walk(r, "a.txt", collect, &b), BH_ENOTFOUND);
    assert_int_equal(src_repo_walk(r, "missing", collect, &b), BH_ENOTFOUND);
    int seen = 0;
    assert_int_equal(src_repo_walk(r, "", stop_at_dir, &seen), 7);
    assert_int_equal(seen, 3);
    bh_buf_release(&b);
    src_repo_free(r);
}

static int log_collect(const struct src_repo_commit *c, void *payload)
{
    struct bh_buf *b = payload;
    bh_buf_printf(b, "%lld %s %s [%s]|", c->time, c->author ? c->author : "?",
                  c->summary ? c->summary : "", c->message ? c->message : "");
    assert_int_equal(strlen(c->id), SRC_REPO_ID_LEN);
    return 0;
}

static int log_stop(const struct src_repo_commit *c, void *payload)
{
    (void)c;
    ++*(int *)payload;
    return 1;
}

static void src_repo_log_lists_newest_first_and_filters_by_path(void **state)
{
    (void)state;
    struct src_repo *r = open_head();
    struct bh_buf b;
    bh_buf_init(&b, 0);
    assert_int_equal(src_repo_log(r, "", 100, log_collect, &b), 2);
    assert_string_equal(b.data, "1706745600 Ann second: a folder [second: a folder\n]|"
                                "1704067200 Ann first: files [first: files\n\nthe body of the "
                                "first\n]|");
    bh_buf_reset(&b);
    assert_int_equal(src_repo_log(r, "dir", 100, log_collect, &b), 2);
    assert_non_null(strstr(b.data, "second: a folder"));
    assert_null(strstr(b.data, "first: files"));
    bh_buf_reset(&b);
    assert_int_equal(src_repo_log(r, "a.txt", 100, log_collect, &b), 2);
    assert_null(strstr(b.data, "second"));
    assert_non_null(strstr(b.data, "first: files"));
    int calls = 0;
    assert_int_equal(src_repo_log(r, "", 100, log_stop, &calls), 1);
    assert_int_equal(calls, 1);
    assert_int_equal(src_repo_log(r, "a.txt", 1, log_stop, &calls), 1);
    assert_int_equal(calls, 1); /* the newest commit did not touch a.txt; the walk ends there */
    bh_buf_release(&b);
    src_repo_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(src_repo_open_names_the_repository_the_commit_and_the_user),
        cmocka_unit_test(src_repo_read_gives_a_files_bytes_and_what_else_a_path_names),
        cmocka_unit_test(src_repo_read_at_an_older_commit_sees_that_commits_tree),
        cmocka_unit_test(src_repo_walk_goes_depth_first_with_paths_from_the_root),
        cmocka_unit_test(src_repo_log_lists_newest_first_and_filters_by_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
