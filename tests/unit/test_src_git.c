/* tests/unit/test_src_git.c — src_git over real repositories built by
 * fixtures/make-repo.sh. The group setup builds one six-PR repository and
 * lists it once; tests that need odd refs add them under their own ref
 * namespaces, so the default listing stays as the fixture made it. Each PR's
 * diff carries a random canary, so a diff taken from the wrong commits (or a
 * PR mixed up with another) shows as a missing or foreign canary. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sources/src_git.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define NPR 6

static struct {
    char tmp[64];
    char repo[128];
    char canary[NPR][64];
    struct src_item *items;
    size_t n;
} fx;

/* Runs a shell command; returns its exit status. */
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

/* First line of a shell command's output, without the newline. */
static void sh_line(char *out, size_t size, const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    out[0] = '\0';
    if (fgets(out, (int)size, p))
        out[strcspn(out, "\n")] = '\0';
    assert_int_equal(pclose(p), 0);
}

/* ctest sets BH_SOURCE_DIR; run by hand, the tree this file sits in. */
static int make_repo(const char *dir, int prs)
{
    const char *src = getenv("BH_SOURCE_DIR");
    const char *self = __FILE__, *cut = strstr(self, "/tests/unit/");
    if (src)
        return sh("bash '%s/fixtures/make-repo.sh' '%s' --prs %d >/dev/null", src, dir, prs);
    return sh("bash '%.*s/fixtures/make-repo.sh' '%s' --prs %d >/dev/null",
              cut ? (int)(cut - self) : 1, cut ? self : ".", dir, prs);
}

static void read_canaries(void)
{
    char path[160];
    snprintf(path, sizeof(path), "%s.canaries", fx.repo);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    for (int i = 0; i < NPR; i++) {
        assert_non_null(fgets(fx.canary[i], sizeof(fx.canary[i]), f));
        fx.canary[i][strcspn(fx.canary[i], "\n")] = '\0';
    }
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    struct bh_err err = {0};
    snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/bh-src-git-XXXXXX");
    if (!mkdtemp(fx.tmp))
        return -1;
    snprintf(fx.repo, sizeof(fx.repo), "%s/repo", fx.tmp);
    if (make_repo(fx.repo, NPR) != 0) {
        fprintf(stderr, "test_src_git: fixtures/make-repo.sh failed; set BH_SOURCE_DIR\n");
        return -1;
    }
    read_canaries();
    struct src_git_opts o = {.repo = fx.repo};
    if (src_git_list(&fx.items, &fx.n, &o, &err) != 0) {
        bh_err_print(&err, stderr);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    src_items_free(fx.items, fx.n);
    if (fx.tmp[0])
        sh("rm -rf '%s'", fx.tmp);
    return 0;
}

static const struct src_item *pr(int number)
{
    assert_true(number >= 1 && (size_t)number <= fx.n);
    return &fx.items[number - 1];
}

/* 1 when text holds line as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

static void list_ok(const struct src_git_opts *o, struct src_item **items, size_t *n)
{
    struct bh_err err = {0};
    int rc = src_git_list(items, n, o, &err);
    if (rc)
        bh_err_print(&err, stderr);
    assert_int_equal(rc, 0);
}

static void src_git_lists_six_prs_ordered_by_number(void **state)
{
    (void)state;
    assert_int_equal(fx.n, NPR);
    for (int i = 1; i <= NPR; i++) {
        char ref[64], num[16];
        snprintf(ref, sizeof(ref), "refs/pull/%d/head", i);
        snprintf(num, sizeof(num), "%d", i);
        assert_string_equal(pr(i)->key, ref);
        assert_string_equal(src_item_field(pr(i), "pr.ref"), ref);
        assert_string_equal(src_item_field(pr(i), "pr.number"), num);
    }
}

static void src_git_items_have_the_six_fields_in_order(void **state)
{
    (void)state;
    static const char *const want[] = {"pr.number", "pr.ref",   "pr.title",
                                       "pr.files",  "pr.stats", "pr.diff"};
    assert_int_equal(src_git_n_fields, 6);
    for (size_t f = 0; f < 6; f++)
        assert_string_equal(src_git_fields[f], want[f]);
    for (int i = 1; i <= NPR; i++) {
        assert_int_equal(pr(i)->n_fields, 6);
        for (size_t f = 0; f < 6; f++) {
            assert_string_equal(pr(i)->fields[f].name, want[f]);
            assert_non_null(pr(i)->fields[f].value);
        }
    }
    assert_null(src_item_field(pr(1), "pr.body"));
}

static void src_git_version_is_merge_base_and_head(void **state)
{
    (void)state;
    for (int i = 1; i <= NPR; i++) {
        char cmd[512], mb[64], head[64], want[160];
        snprintf(cmd, sizeof(cmd), "git -C '%s' merge-base main refs/pull/%d/head", fx.repo, i);
        sh_line(mb, sizeof(mb), cmd);
        snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse refs/pull/%d/head", fx.repo, i);
        sh_line(head, sizeof(head), cmd);
        snprintf(want, sizeof(want), "%s..%s", mb, head);
        assert_string_equal(pr(i)->version, want);
    }
    /* PRs branch from different commits of main, not all from its tip. */
    size_t distinct = 0;
    for (int i = 1; i <= NPR; i++) {
        int seen = 0;
        for (int j = 1; j < i; j++)
            seen |= strncmp(pr(i)->version, pr(j)->version, 40) == 0;
        distinct += !seen;
    }
    assert_true(distinct >= 3);
}

static void src_git_each_diff_holds_its_own_canary_only(void **state)
{
    (void)state;
    for (int i = 1; i <= NPR; i++) {
        const char *diff = src_item_field(pr(i), "pr.diff");
        for (int j = 1; j <= NPR; j++) {
            if (i == j)
                assert_non_null(strstr(diff, fx.canary[j - 1]));
            else
                assert_null(strstr(diff, fx.canary[j - 1]));
        }
    }
}

static void src_git_diff_is_a_unified_patch(void **state)
{
    (void)state;
    const char *diff = src_item_field(pr(1), "pr.diff");
    assert_true(strncmp(diff, "diff --git a/src/parser.c b/src/parser.c\n", 41) == 0);
    assert_true(has_line(diff, "--- a/src/parser.c"));
    assert_true(has_line(diff, "+++ b/src/parser.c"));
    assert_true(has_line(diff, "-        long v = strtol(s + 1, &end, 10);"));
    assert_true(has_line(diff, "+        const char *t = skip_space(s + 1);"));
    assert_true(has_line(diff, "         acc = op == '+' ? acc + v : acc - v;"));
}

static void src_git_docs_pr_lists_only_docs_files(void **state)
{
    (void)state;
    const char *files = src_item_field(pr(2), "pr.files");
    assert_string_equal(files, "M\tdocs/design.md\nM\tdocs/usage.md\n");
}

static void src_git_rename_pr_lists_rename_and_delete(void **state)
{
    (void)state;
    const char *files = src_item_field(pr(4), "pr.files");
    assert_true(has_line(files, "R\tsrc/util.c -> src/strutil.c"));
    assert_true(has_line(files, "D\tsrc/legacy.c"));
    assert_true(has_line(files, "M\tsrc/util.h"));
    assert_null(strstr(files, "A\tsrc/strutil.c"));
    assert_non_null(strstr(src_item_field(pr(4), "pr.diff"), "rename from src/util.c\n"));
}

static void src_git_binary_pr_diff_has_no_binary_content(void **state)
{
    (void)state;
    const char *diff = src_item_field(pr(5), "pr.diff");
    assert_true(has_line(src_item_field(pr(5), "pr.files"), "A\tassets/logo.bin"));
    assert_non_null(strstr(diff, "Binary files /dev/null and b/assets/logo.bin differ\n"));
    /* The asset starts with "\x89PNG\0" and holds control bytes; the text
     * around it is UTF-8 without any. */
    for (const unsigned char *p = (const unsigned char *)diff; *p; p++)
        assert_true(*p == '\n' || *p == '\t' || (*p >= 0x20 && *p != 0x7f));
    assert_null(strstr(diff, "PNG"));
    assert_null(strstr(diff, "IEND"));
    assert_non_null(strstr(diff, fx.canary[4]));
}

static void src_git_pem_pr_lists_the_key_file(void **state)
{
    (void)state;
    assert_true(has_line(src_item_field(pr(3), "pr.files"), "A\tdeploy/staging.pem"));
    assert_non_null(strstr(src_item_field(pr(3), "pr.diff"), "+-----BEGIN PRIVATE KEY-----\n"));
}

static void src_git_stats_use_the_fixed_format(void **state)
{
    (void)state;
    /* Always plural and all three parts, unlike git's --shortstat. */
    assert_string_equal(src_item_field(pr(2), "pr.stats"),
                        "2 files changed, 6 insertions(+), 1 deletions(-)");
    assert_string_equal(src_item_field(pr(4), "pr.stats"),
                        "4 files changed, 3 insertions(+), 12 deletions(-)");
    assert_string_equal(src_item_field(pr(6), "pr.stats"),
                        "5 files changed, 9 insertions(+), 2 deletions(-)");
}

static void src_git_titles_are_head_summaries_without_canaries(void **state)
{
    (void)state;
    assert_string_equal(src_item_field(pr(1), "pr.title"),
                        "Accept spaces after an operator in the parser");
    /* The multi-commit PR is titled by its head commit. */
    assert_string_equal(src_item_field(pr(6), "pr.title"),
                        "Document the line limit and build with debug info");
    for (int i = 1; i <= NPR; i++) {
        const char *title = src_item_field(pr(i), "pr.title");
        assert_true(strlen(title) > 0);
        assert_null(strstr(title, "BULKHEAD-CANARY"));
    }
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The parts of f cover its value from the first byte to the last, in order,
 * without gaps or overlap; each starts a file's header and names its path
 * (prefix "a/" for a deleted file, "b/" otherwise). */
static void assert_parts_cover(const struct src_field *f)
{
    size_t at = 0;
    assert_non_null(f->value);
    assert_int_equal(f->len, strlen(f->value));
    assert_true(f->n_parts > 0);
    for (size_t i = 0; i < f->n_parts; i++) {
        const struct src_part *p = &f->parts[i];
        assert_int_equal(p->offset, at);
        assert_true(p->length > 0);
        at += p->length;
        char *text = strndup(f->value + p->offset, p->length);
        char b_path[256], a_path[256];
        snprintf(b_path, sizeof(b_path), " b/%s\n", p->path);
        snprintf(a_path, sizeof(a_path), "diff --git a/%s ", p->path);
        assert_true(starts_with(text, "diff --git a/"));
        /* The header is the part's first line: it must be about this path. */
        const char *eol = strchr(text, '\n');
        assert_non_null(eol);
        assert_true(starts_with(text, a_path) ||
                    strncmp(eol - strlen(b_path) + 1, b_path, strlen(b_path)) == 0);
        /* No second file header inside one part. */
        assert_null(strstr(text + 1, "\ndiff --git "));
        free(text);
    }
    assert_int_equal(at, f->len);
}

static void assert_part_paths(const struct src_field *f, const char *const *want, size_t n)
{
    assert_int_equal(f->n_parts, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(f->parts[i].path, want[i]);
}

/* The text of part i, as a new string. */
static char *part_text(const struct src_field *f, size_t i)
{
    return strndup(f->value + f->parts[i].offset, f->parts[i].length);
}

static void src_git_diff_parts_cover_each_diff_exactly(void **state)
{
    (void)state;
    for (int i = 1; i <= NPR; i++) {
        const struct src_field *f = src_item_find(pr(i), "pr.diff");
        assert_parts_cover(f);
        /* One part per file: as many as pr.files has lines. */
        const char *files = src_item_field(pr(i), "pr.files");
        size_t lines = 0;
        for (const char *p = files; *p; p++)
            lines += *p == '\n';
        assert_int_equal(f->n_parts, lines);
    }
}

static void src_git_multi_file_diff_has_a_part_per_file_in_diff_order(void **state)
{
    (void)state;
    static const char *const want[] = {"Makefile", "docs/usage.md", "src/main.c", "src/parser.c",
                                       "src/parser.h"};
    const struct src_field *f = src_item_find(pr(6), "pr.diff");
    assert_part_paths(f, want, 5);
    /* The canary line is in src/parser.c's part, and only there. */
    for (size_t i = 0; i < f->n_parts; i++) {
        char *text = part_text(f, i);
        assert_int_equal(strstr(text, fx.canary[5]) != NULL, i == 3);
        free(text);
    }
}

static void src_git_rename_part_has_the_new_path_and_delete_the_old(void **state)
{
    (void)state;
    static const char *const want[] = {"Makefile", "src/legacy.c", "src/strutil.c", "src/util.h"};
    const struct src_field *f = src_item_find(pr(4), "pr.diff");
    assert_part_paths(f, want, 4);
    char *deleted = part_text(f, 1), *renamed = part_text(f, 2);
    assert_true(
        starts_with(deleted, "diff --git a/src/legacy.c b/src/legacy.c\ndeleted file mode"));
    assert_true(starts_with(renamed, "diff --git a/src/util.c b/src/strutil.c\n"));
    assert_non_null(strstr(renamed, "rename from src/util.c\nrename to src/strutil.c\n"));
    free(deleted);
    free(renamed);
}

static void src_git_binary_file_has_its_own_part(void **state)
{
    (void)state;
    static const char *const want[] = {"README", "assets/logo.bin", "src/main.c"};
    const struct src_field *f = src_item_find(pr(5), "pr.diff");
    assert_part_paths(f, want, 3);
    char *bin = part_text(f, 1);
    assert_true(starts_with(bin, "diff --git a/assets/logo.bin b/assets/logo.bin\n"));
    assert_true(bh_str_endswith(bin, "Binary files /dev/null and b/assets/logo.bin differ\n"));
    free(bin);
}

/* ---- renames, copies and whole files ---------------------------------- */

/* Builds, once, a base "movebase" (main plus conf/app.txt of ten lines and
 * conf/big.txt of about 150 KB) and refs/moves/N/head off it:
 *   1  git mv conf/app.txt docs/app.txt, one line of ten changed (a rename);
 *   2  the same move with eight lines of ten changed (below git's 50%);
 *   3  one line of conf/big.txt changed (a small diff of a large file). */
static void moves_make(void)
{
    static int made;
    if (made++)
        return;
    assert_int_equal(
        sh("set -e; w='%s/moves'; git clone -q '%s' \"$w\"; cd \"$w\"; "
           "c() { git add -A; git -c user.name=t -c user.email=t@t commit -q -m \"$1\"; }; "
           "mkdir -p conf docs; for i in 1 2 3 4 5 6 7 8 9 10; do "
           "echo \"setting $i of the application = value $i\"; done >conf/app.txt; "
           "for i in $(seq 1 3000); do echo \"line $i of a large file, long enough\"; done "
           ">conf/big.txt; c base; b=$(git rev-parse HEAD); git push -q origin HEAD:refs/heads/movebase; "
           "git checkout -q -b m1; git mv conf/app.txt docs/app.txt; "
           "sed -i 's/value 5/value five/' docs/app.txt; c m1; "
           "git push -q origin HEAD:refs/moves/1/head; "
           "git checkout -q -b m2 $b; "
           "git mv conf/app.txt docs/app.txt; sed -i '2,9s/value/VALUE CHANGED/' docs/app.txt; "
           "c m2; git push -q origin HEAD:refs/moves/2/head; "
           "git checkout -q -b m3 $b; sed -i 's/^line 1500 of/LINE 1500 OF/' "
           "conf/big.txt; c m3; git push -q origin HEAD:refs/moves/3/head",
           fx.tmp, fx.repo),
        0);
}

static void moves_list(size_t max_diff, struct src_item **items, size_t *n)
{
    moves_make();
    struct src_git_opts o = {
        .repo = fx.repo, .pulls = "refs/moves/*", .base = "movebase", .max_diff = max_diff};
    list_ok(&o, items, n);
    assert_int_equal(*n, 3);
}

static void src_git_rename_part_carries_both_paths_and_whole_files(void **state)
{
    (void)state;
    struct src_item *items = NULL;
    size_t n = 0;
    moves_list(0, &items, &n);
    assert_string_equal(src_item_field(&items[0], "pr.files"), "R\tconf/app.txt -> docs/app.txt\n");
    const struct src_field *d = src_item_find(&items[0], "pr.diff");
    assert_int_equal(d->n_parts, 1);
    assert_string_equal(d->parts[0].path, "docs/app.txt");
    assert_string_equal(d->parts[0].old_path, "conf/app.txt");
    /* The diff shows a hunk; the whole files before and after are there. */
    const struct src_whole *w = d->parts[0].whole;
    assert_non_null(w);
    assert_null(w->unread);
    assert_int_equal(w->old_len, strlen(w->old_text));
    assert_non_null(strstr(w->old_text, "setting 1 of the application = value 1\n"));
    assert_non_null(strstr(w->old_text, "= value 5\n"));
    assert_non_null(strstr(w->new_text, "= value five\n"));
    assert_non_null(strstr(w->old_text, "= value 10\n"));
    assert_null(strstr(d->value, "= value 10\n")); /* past the hunk's context */
    src_items_free(items, n);
}

static void src_git_rename_below_gits_threshold_is_a_delete_and_an_add(void **state)
{
    (void)state;
    struct src_item *items = NULL;
    size_t n = 0;
    moves_list(0, &items, &n);
    /* git itself does not pair it either. */
    assert_int_equal(sh("cd '%s' && git diff --name-status -M movebase refs/moves/2/head | "
                        "grep -q '^R'",
                        fx.repo),
                     1);
    assert_string_equal(src_item_field(&items[1], "pr.files"),
                        "D\tconf/app.txt\nA\tdocs/app.txt\n");
    const struct src_field *d = src_item_find(&items[1], "pr.diff");
    assert_int_equal(d->n_parts, 2);
    /* Each side is its own part with one path, and shows the whole file. */
    for (size_t i = 0; i < 2; i++) {
        assert_null(d->parts[i].old_path);
        assert_null(d->parts[i].whole);
    }
    assert_string_equal(d->parts[0].path, "conf/app.txt");
    src_items_free(items, n);
}

static void src_git_added_and_deleted_files_have_no_whole_files(void **state)
{
    (void)state;
    /* PR 4: a rename without a change (no content shown), a deletion and
     * modifications; PR 5 adds a binary. */
    const struct src_field *d = src_item_find(pr(4), "pr.diff");
    for (size_t i = 0; i < d->n_parts; i++) {
        int shows_all = strcmp(d->parts[i].path, "src/legacy.c") == 0 ||
                        strcmp(d->parts[i].path, "src/strutil.c") == 0;
        assert_int_equal(d->parts[i].whole == NULL, shows_all);
        assert_int_equal(d->parts[i].old_path != NULL,
                         strcmp(d->parts[i].path, "src/strutil.c") == 0);
    }
    d = src_item_find(pr(5), "pr.diff");
    assert_string_equal(d->parts[1].path, "assets/logo.bin");
    assert_null(d->parts[1].whole);
}

static void src_git_whole_files_past_the_cap_are_unread(void **state)
{
    (void)state;
    struct src_item *items = NULL;
    size_t n = 0;
    moves_list(0, &items, &n);
    const struct src_field *d = src_item_find(&items[2], "pr.diff");
    assert_non_null(d->parts[0].whole);
    assert_null(d->parts[0].whole->unread);
    assert_true(d->parts[0].whole->old_len > 100000);
    src_items_free(items, n);
    /* The diff fits in 20 000 bytes, the two whole files do not. */
    moves_list(20000, &items, &n);
    d = src_item_find(&items[2], "pr.diff");
    assert_non_null(d->value);
    const struct src_whole *w = d->parts[0].whole;
    assert_non_null(w);
    assert_null(w->old_text);
    assert_null(w->new_text);
    assert_non_null(strstr(w->unread, "the whole of 'conf/big.txt' is past the cap of 20000"));
    assert_non_null(strstr(w->unread, "raise --max-diff"));
    src_items_free(items, n);
}

static void src_git_files_line_path_gives_both_paths_of_a_move(void **state)
{
    (void)state;
    static const struct {
        const char *line, *path, *old;
    } cases[] = {
        {"R\tsecrets/prod.key -> docs/notes.txt", "docs/notes.txt", "secrets/prod.key"},
        {"C\ta.txt -> b.txt", "b.txt", "a.txt"},
        {"M\tsrc/x.c", "src/x.c", NULL},
        {"A\tname -> with arrow", "with arrow", NULL},
        /* found by fuzz_diff (corpus/diff/name-ends-in-arrow): the file had no element */
        {"A\tends in -> ", "ends in -> ", NULL},
        {"R\ta -> b -> ", "b -> ", "a"},
        {"D\tgone", "gone", NULL},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        size_t len = 0, old_len = 99;
        const char *old = "x";
        const char *p =
            src_git_files_line_path(cases[i].line, strlen(cases[i].line), &len, &old, &old_len);
        assert_int_equal(len, strlen(cases[i].path));
        assert_memory_equal(p, cases[i].path, len);
        if (cases[i].old) {
            assert_int_equal(old_len, strlen(cases[i].old));
            assert_memory_equal(old, cases[i].old, old_len);
        } else {
            assert_null(old);
            assert_int_equal(old_len, 0);
        }
    }
}

static void src_git_fields_have_their_length_and_only_the_diff_has_parts(void **state)
{
    (void)state;
    for (int i = 1; i <= NPR; i++) {
        for (size_t k = 0; k < pr(i)->n_fields; k++) {
            const struct src_field *f = &pr(i)->fields[k];
            assert_int_equal(f->len, strlen(f->value));
            if (strcmp(f->name, "pr.diff") != 0) {
                assert_null(f->parts);
                assert_int_equal(f->n_parts, 0);
            }
        }
    }
}

static void src_git_glob_matching_nothing_gives_no_items(void **state)
{
    (void)state;
    struct src_item *items = (struct src_item *)&fx; /* must be overwritten */
    size_t n = 99;
    struct src_git_opts o = {.repo = fx.repo, .pulls = "refs/nothing/*"};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 0);
    assert_null(items);
}

static void src_git_bad_base_error_names_the_base(void **state)
{
    (void)state;
    struct src_item *items = NULL;
    size_t n = 0;
    struct bh_err err = {0};
    struct src_git_opts o = {.repo = fx.repo, .base = "no-such-branch"};
    assert_int_equal(src_git_list(&items, &n, &o, &err), BH_ENOTFOUND);
    assert_int_equal(err.code, BH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "cannot resolve base 'no-such-branch'"));
    assert_non_null(strstr(err.msg, fx.repo));
    assert_non_null(strstr(err.msg, "pass --base REF"));
    assert_null(items);
}

static void src_git_diff_over_the_cap_fails_only_that_field(void **state)
{
    (void)state;
    struct src_item *items = NULL;
    size_t n = 0;
    struct src_git_opts o = {.repo = fx.repo, .max_diff = 100};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 6);
    const struct src_field *f = src_item_find(&items[0], "pr.diff");
    assert_non_null(f);
    assert_null(f->value); /* every sample diff is longer than 100 bytes */
    assert_int_equal(f->len, 0);
    assert_null(f->parts);
    assert_int_equal(f->n_parts, 0);
    assert_non_null(strstr(f->error, "'refs/pull/1/head'"));
    assert_non_null(strstr(f->error, "cap of 100 bytes"));
    assert_null(src_item_field(&items[0], "pr.diff"));
    /* The rest of the item, and the other items, are intact. */
    assert_string_equal(src_item_field(&items[0], "pr.title"), src_item_field(pr(1), "pr.title"));
    assert_string_equal(src_item_field(&items[5], "pr.files"), src_item_field(pr(6), "pr.files"));
    assert_null(src_item_find(&items[0], "pr.nothing"));
    src_items_free(items, n);
}

static void src_git_cap_is_inclusive_of_a_diff_that_fits(void **state)
{
    (void)state;
    struct src_item *items = NULL;
    size_t n = 0;
    size_t len = strlen(src_item_field(pr(1), "pr.diff"));
    struct src_git_opts o = {.repo = fx.repo, .pulls = "refs/pull/1/head", .max_diff = len};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 1);
    assert_string_equal(src_item_field(&items[0], "pr.diff"), src_item_field(pr(1), "pr.diff"));
    assert_parts_cover(src_item_find(&items[0], "pr.diff"));
    src_items_free(items, n);
    o.max_diff = len - 1;
    list_ok(&o, &items, &n);
    assert_null(src_item_field(&items[0], "pr.diff"));
    assert_non_null(src_item_find(&items[0], "pr.diff")->error);
    src_items_free(items, n);
}

static void src_git_not_a_repository_is_an_error(void **state)
{
    (void)state;
    struct src_item *items = NULL;
    size_t n = 0;
    struct bh_err err = {0};
    struct src_git_opts o = {.repo = fx.tmp};
    assert_true(src_git_list(&items, &n, &o, &err) < 0);
    assert_non_null(strstr(err.msg, fx.tmp));
    assert_non_null(strstr(err.msg, "cannot open"));
}

/* One item that cannot be read fails that item only: it keeps its names,
 * its content fields carry the reason, the others are listed as usual. */
static void assert_failed_item(const struct src_item *it, const char *key, const char *why)
{
    assert_string_equal(it->key, key);
    assert_string_equal(src_item_field(it, "pr.ref"), key);
    assert_non_null(src_item_field(it, "pr.number"));
    const char *content[] = {"pr.files", "pr.stats", "pr.diff"};
    for (size_t i = 0; i < 3; i++) {
        const struct src_field *f = src_item_find(it, content[i]);
        assert_null(f->value);
        assert_non_null(strstr(f->error, why));
    }
    assert_non_null(strstr(it->note, why));
    assert_false(it->empty);
}

static void src_git_ref_that_is_not_a_commit_fails_that_item(void **state)
{
    (void)state;
    assert_int_equal(
        sh("cd '%s' && git update-ref refs/odd/7/head \"$(git hash-object -w README)\" && "
           "git update-ref refs/odd/8/head main",
           fx.repo),
        0);
    struct src_item *items = NULL;
    size_t n = 0;
    struct src_git_opts o = {.repo = fx.repo, .pulls = "refs/odd/*"};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 2);
    assert_failed_item(&items[0], "refs/odd/7/head",
                       "ref 'refs/odd/7/head' does not point to a commit");
    assert_string_equal(src_item_field(&items[0], "pr.number"), "7");
    assert_null(src_item_field(&items[0], "pr.title"));
    /* refs/odd/8/head is main itself: listed, readable, its diff empty. */
    assert_non_null(src_item_field(&items[1], "pr.diff"));
    assert_true(items[1].empty);
    assert_null(items[1].note);
    src_items_free(items, n);
}

static void src_git_unrelated_history_fails_that_item(void **state)
{
    (void)state;
    assert_int_equal(sh("cd '%s' && t=$(git hash-object -t tree -w /dev/null) && "
                        "c=$(GIT_AUTHOR_NAME=x GIT_AUTHOR_EMAIL=x@x GIT_COMMITTER_NAME=x "
                        "GIT_COMMITTER_EMAIL=x@x git commit-tree -m orphan $t) && "
                        "git update-ref refs/orphan/1/head $c",
                        fx.repo),
                     0);
    struct src_item *items = NULL;
    size_t n = 0;
    struct src_git_opts o = {.repo = fx.repo, .pulls = "refs/orphan/*"};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 1);
    assert_failed_item(&items[0], "refs/orphan/1/head",
                       "'refs/orphan/1/head' shares no history with base 'main'");
    assert_string_equal(src_item_field(&items[0], "pr.title"), "orphan");
    src_items_free(items, n);
}

static void src_git_pulls_several_globs_once_each_minus_exclude(void **state)
{
    (void)state;
    struct src_item *items = NULL;
    size_t n = 0;
    const char *more[] = {"refs/pull/2/*", "refs/pull/1/head"};
    const char *ex[] = {"refs/pull/3*", "*/5/*"};
    struct src_git_opts o = {.repo = fx.repo,
                             .pulls = "refs/pull/[1-4]/head",
                             .more_pulls = more,
                             .n_more_pulls = 2,
                             .exclude = ex,
                             .n_exclude = 2};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].key, "refs/pull/1/head");
    assert_string_equal(items[1].key, "refs/pull/2/head");
    assert_string_equal(items[2].key, "refs/pull/4/head");
    src_items_free(items, n);
}

static void src_git_latin1_is_decoded_lossily_with_a_note(void **state)
{
    (void)state;
    assert_int_equal(
        sh("cd '%s' && export GIT_INDEX_FILE='%s/latin.index' && git read-tree main && "
           "b=$(printf 'caf\\351 cr\\350me\\n' | git hash-object -w --stdin) && "
           "git update-index --add --cacheinfo \"100644,$b,$(printf 'caf\\351.txt')\" && "
           /* git commit-tree would re-encode a Latin-1 message: write it raw */
           "c=$(printf 'tree %%s\\nparent %%s\\nauthor x <x@x> 0 +0000\\ncommitter x <x@x> 0 "
           "+0000\\n\\nd\\351j\\340\\n' $(git write-tree) $(git rev-parse main) | "
           "git hash-object -t commit -w --stdin) && git update-ref refs/latin/1/head $c",
           fx.repo, fx.tmp),
        0);
    struct src_item *items = NULL;
    size_t n = 0;
    struct src_git_opts o = {.repo = fx.repo, .pulls = "refs/latin/*"};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 1);
    assert_string_equal(src_item_field(&items[0], "pr.files"), "A\tcaf\xEF\xBF\xBD.txt\n");
    assert_string_equal(src_item_field(&items[0], "pr.title"), "d\xEF\xBF\xBDj\xEF\xBF\xBD");
    const struct src_field *d = src_item_find(&items[0], "pr.diff");
    assert_true(bh_utf8_valid(d->value, d->len));
    assert_non_null(strstr(d->value, "+caf\xEF\xBF\xBD cr\xEF\xBF\xBDme\n"));
    assert_string_equal(d->parts[0].path, "caf\xEF\xBF\xBD.txt");
    assert_int_equal(d->parts[0].length, d->len);
    assert_non_null(strstr(items[0].note, "'caf\xEF\xBF\xBD.txt'"));
    assert_non_null(strstr(items[0].note, "the title"));
    src_items_free(items, n);
}

static void src_git_quotes_file_names_with_control_characters(void **state)
{
    (void)state;
    /* A file name holding a newline must not forge a second line of pr.files. */
    assert_int_equal(
        sh("cd '%s' && export GIT_INDEX_FILE='%s/evil.index' && git read-tree main && "
           "b=$(git hash-object -w README) && "
           "git update-index --add --cacheinfo \"100644,$b,$(printf 'x\\nD\\t\"q')\" && "
           "c=$(GIT_AUTHOR_NAME=x GIT_AUTHOR_EMAIL=x@x GIT_COMMITTER_NAME=x "
           "GIT_COMMITTER_EMAIL=x@x git commit-tree -p main -m evil $(git write-tree)) && "
           "git update-ref refs/evil/1/head $c",
           fx.repo, fx.tmp),
        0);
    struct src_item *items = NULL;
    size_t n = 0;
    struct src_git_opts o = {.repo = fx.repo, .pulls = "refs/evil/*"};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 1);
    assert_string_equal(src_item_field(&items[0], "pr.files"), "A\t\"x\\nD\\t\\\"q\"\n");
    /* The part's path is the file's real name (rules match names, not quotes). */
    const struct src_field *d = src_item_find(&items[0], "pr.diff");
    assert_int_equal(d->n_parts, 1);
    assert_string_equal(d->parts[0].path, "x\nD\t\"q");
    assert_int_equal(d->parts[0].length, d->len);
    src_items_free(items, n);
}

static void src_git_orders_numerically_then_unnumbered_by_name(void **state)
{
    (void)state;
    assert_int_equal(sh("cd '%s' && for r in 10 9 0100 b a; do "
                        "git update-ref refs/sorted/$r/head refs/pull/1/head || exit 1; done",
                        fx.repo),
                     0);
    struct src_item *items = NULL;
    size_t n = 0;
    struct src_git_opts o = {.repo = fx.repo, .pulls = "refs/sorted/*"};
    list_ok(&o, &items, &n);
    static const char *const want[] = {"9", "10", "0100", "", ""};
    static const char *const keys[] = {"refs/sorted/9/head", "refs/sorted/10/head",
                                       "refs/sorted/0100/head", "refs/sorted/a/head",
                                       "refs/sorted/b/head"};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(items[i].key, keys[i]);
        assert_string_equal(src_item_field(&items[i], "pr.number"), want[i]);
        assert_string_equal(src_item_field(&items[i], "pr.diff"), src_item_field(pr(1), "pr.diff"));
    }
    src_items_free(items, n);
}

static void src_git_bare_mirror_gives_the_same_items(void **state)
{
    (void)state;
    char bare[160];
    snprintf(bare, sizeof(bare), "%s/mirror.git", fx.tmp);
    assert_int_equal(sh("git clone -q --mirror '%s' '%s'", fx.repo, bare), 0);
    struct src_item *items = NULL;
    size_t n = 0;
    struct src_git_opts o = {.repo = bare};
    list_ok(&o, &items, &n);
    assert_int_equal(n, NPR);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(items[i].version, fx.items[i].version);
        assert_string_equal(src_item_field(&items[i], "pr.diff"),
                            src_item_field(&fx.items[i], "pr.diff"));
    }
    src_items_free(items, n);
}

static void src_git_prs_option_builds_that_many_refs(void **state)
{
    (void)state;
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/three", fx.tmp);
    assert_int_equal(make_repo(dir, 3), 0);
    struct src_item *items = NULL;
    size_t n = 0;
    struct src_git_opts o = {.repo = dir};
    list_ok(&o, &items, &n);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].key, "refs/pull/1/head");
    assert_string_equal(items[2].key, "refs/pull/3/head");
    /* Kinds 1..3 in order: the third adds the key file. */
    assert_true(has_line(src_item_field(&items[2], "pr.files"), "A\tdeploy/staging.pem"));
    src_items_free(items, n);
}

static void src_git_make_repo_refuses_a_non_empty_dir(void **state)
{
    (void)state;
    const char *src = getenv("BH_SOURCE_DIR");
    assert_int_equal(sh("bash '%s/fixtures/make-repo.sh' '%s' 2>&1 | "
                        "grep -q \"'%s' exists and is not empty — pass a new or empty directory\"",
                        src ? src : ".", fx.repo, fx.repo),
                     0);
    assert_int_not_equal(
        sh("bash '%s/fixtures/make-repo.sh' '%s' 2>/dev/null", src ? src : ".", fx.repo), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(src_git_lists_six_prs_ordered_by_number),
        cmocka_unit_test(src_git_items_have_the_six_fields_in_order),
        cmocka_unit_test(src_git_version_is_merge_base_and_head),
        cmocka_unit_test(src_git_each_diff_holds_its_own_canary_only),
        cmocka_unit_test(src_git_diff_is_a_unified_patch),
        cmocka_unit_test(src_git_docs_pr_lists_only_docs_files),
        cmocka_unit_test(src_git_rename_pr_lists_rename_and_delete),
        cmocka_unit_test(src_git_binary_pr_diff_has_no_binary_content),
        cmocka_unit_test(src_git_pem_pr_lists_the_key_file),
        cmocka_unit_test(src_git_stats_use_the_fixed_format),
        cmocka_unit_test(src_git_titles_are_head_summaries_without_canaries),
        cmocka_unit_test(src_git_diff_parts_cover_each_diff_exactly),
        cmocka_unit_test(src_git_multi_file_diff_has_a_part_per_file_in_diff_order),
        cmocka_unit_test(src_git_rename_part_has_the_new_path_and_delete_the_old),
        cmocka_unit_test(src_git_binary_file_has_its_own_part),
        cmocka_unit_test(src_git_rename_part_carries_both_paths_and_whole_files),
        cmocka_unit_test(src_git_rename_below_gits_threshold_is_a_delete_and_an_add),
        cmocka_unit_test(src_git_added_and_deleted_files_have_no_whole_files),
        cmocka_unit_test(src_git_whole_files_past_the_cap_are_unread),
        cmocka_unit_test(src_git_files_line_path_gives_both_paths_of_a_move),
        cmocka_unit_test(src_git_fields_have_their_length_and_only_the_diff_has_parts),
        cmocka_unit_test(src_git_glob_matching_nothing_gives_no_items),
        cmocka_unit_test(src_git_bad_base_error_names_the_base),
        cmocka_unit_test(src_git_diff_over_the_cap_fails_only_that_field),
        cmocka_unit_test(src_git_cap_is_inclusive_of_a_diff_that_fits),
        cmocka_unit_test(src_git_not_a_repository_is_an_error),
        cmocka_unit_test(src_git_ref_that_is_not_a_commit_fails_that_item),
        cmocka_unit_test(src_git_unrelated_history_fails_that_item),
        cmocka_unit_test(src_git_pulls_several_globs_once_each_minus_exclude),
        cmocka_unit_test(src_git_latin1_is_decoded_lossily_with_a_note),
        cmocka_unit_test(src_git_quotes_file_names_with_control_characters),
        cmocka_unit_test(src_git_orders_numerically_then_unnumbered_by_name),
        cmocka_unit_test(src_git_bare_mirror_gives_the_same_items),
        cmocka_unit_test(src_git_prs_option_builds_that_many_refs),
        cmocka_unit_test(src_git_make_repo_refuses_a_non_empty_dir),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
