/* tests/unit/test_src_files.c — src_files over small folders built in a
 * temporary directory, one fresh folder per test so that no test sees
 * another's files. Content hashes are checked against sha256sum, not against
 * our own hashing, and a canary outside the folder proves that links are
 * never followed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sources/src_files.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CANARY "BULKHEAD-CANARY-outside-root"

static struct {
    char tmp[64];
    char root[160]; /* the current test's folder */
    int seq;
} fx;

struct listing {
    struct src_item *items;
    size_t n;
    struct src_note *notes;
    size_t n_notes;
};

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

/* A new empty folder for this test; returns its path (fx.root). */
static const char *fresh_root(void)
{
    snprintf(fx.root, sizeof(fx.root), "%s/t%d", fx.tmp, ++fx.seq);
    assert_int_equal(mkdir(fx.root, 0755), 0);
    return fx.root;
}

/* Writes len bytes to root/rel, making its folders. */
static void put_bytes(const char *rel, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", fx.root, rel);
    for (char *p = path + strlen(fx.root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void put(const char *rel, const char *text)
{
    put_bytes(rel, text, strlen(text));
}

static void list_opts(const struct src_files_opts *o, struct listing *l)
{
    struct bh_err err = {0};
    memset(l, 0, sizeof(*l));
    int rc = src_files_list(&l->items, &l->n, &l->notes, &l->n_notes, o, &err);
    if (rc)
        bh_err_print(&err, stderr);
    assert_int_equal(rc, 0);
}

static void list_root(struct listing *l)
{
    struct src_files_opts o = SRC_FILES_OPTS_INIT;
    o.root = fx.root;
    list_opts(&o, l);
}

static void listing_free(struct listing *l)
{
    src_items_free(l->items, l->n);
    src_notes_free(l->notes, l->n_notes);
}

static const struct src_item *item_of(const struct listing *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return &l->items[i];
    return NULL;
}

/* The note about path, or NULL. */
static const char *why_of(const struct listing *l, const char *path)
{
    for (size_t i = 0; i < l->n_notes; i++)
        if (strcmp(l->notes[i].path, path) == 0)
            return l->notes[i].why;
    return NULL;
}

static void assert_keys(const struct listing *l, const char *const *want, size_t n)
{
    for (size_t i = 0; i < l->n && i < n; i++)
        assert_string_equal(l->items[i].key, want[i]);
    assert_int_equal(l->n, n);
}

/* sha256sum of root/rel. */
static void sha_of(const char *rel, char out[65])
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sha256sum '%s/%s'", fx.root, rel);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, 65, p));
    assert_int_equal(pclose(p), 0);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/bh-src-files-XXXXXX");
    return mkdtemp(fx.tmp) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (fx.tmp[0])
        sh("chmod -R u+rwx '%s'; rm -rf '%s'", fx.tmp, fx.tmp);
    return 0;
}

/* --- listing ------------------------------------------------------------- */

static void src_files_lists_nested_files_in_byte_order_of_whole_paths(void **state)
{
    (void)state;
    fresh_root();
    put("b.md", "b\n");
    put("a/z.txt", "z\n");
    put("a-c.txt", "a-c\n");
    put("a/b/deep.md", "deep\n");
    put("A.txt", "upper\n");
    /* '-' sorts before '/', so a per-folder sort would get a-c.txt wrong. */
    static const char *const want[] = {"A.txt", "a-c.txt", "a/b/deep.md", "a/z.txt", "b.md"};
    struct listing l, again;
    list_root(&l);
    assert_keys(&l, want, 5);
    assert_null(l.notes);
    assert_int_equal(l.n_notes, 0);
    list_root(&again);
    for (size_t i = 0; i < l.n; i++) {
        assert_string_equal(again.items[i].key, l.items[i].key);
        assert_string_equal(again.items[i].version, l.items[i].version);
    }
    listing_free(&l);
    listing_free(&again);
}

static void src_files_item_has_path_text_size_and_one_part(void **state)
{
    (void)state;
    static const char text[] = "# Notes\n\nCafé au lait — 3 €\n";
    fresh_root();
    put("notes/today.md", text);
    struct listing l;
    list_root(&l);
    assert_int_equal(l.n, 1);
    const struct src_item *it = &l.items[0];
    assert_string_equal(it->key, "notes/today.md");
    assert_int_equal(it->n_fields, 3);
    assert_int_equal(src_files_n_fields, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(it->fields[i].name, src_files_fields[i]);
    assert_string_equal(src_files_fields[0], "doc.path");
    assert_string_equal(src_files_fields[1], "doc.text");
    assert_string_equal(src_files_fields[2], "doc.size");
    const struct src_field *t = src_item_find(it, "doc.text");
    assert_string_equal(t->value, text);
    assert_int_equal(t->len, strlen(text));
    assert_int_equal(t->n_parts, 1);
    assert_string_equal(t->parts[0].path, "notes/today.md");
    assert_int_equal(t->parts[0].offset, 0);
    assert_int_equal(t->parts[0].length, strlen(text));
    const struct src_field *p = src_item_find(it, "doc.path");
    assert_string_equal(p->value, "notes/today.md");
    assert_int_equal(p->len, strlen("notes/today.md"));
    assert_null(p->parts);
    char size[32];
    snprintf(size, sizeof(size), "%zu", strlen(text));
    assert_string_equal(src_item_field(it, "doc.size"), size);
    assert_int_equal(src_item_find(it, "doc.size")->len, strlen(size));
    char sha[65];
    sha_of("notes/today.md", sha);
    assert_string_equal(it->version, sha);
    listing_free(&l);
}

static void src_files_empty_file_is_an_item_with_empty_text(void **state)
{
    (void)state;
    fresh_root();
    put("empty.txt", "");
    struct listing l;
    list_root(&l);
    assert_int_equal(l.n, 1);
    const struct src_field *t = src_item_find(&l.items[0], "doc.text");
    assert_non_null(t->value);
    assert_string_equal(t->value, "");
    assert_int_equal(t->len, 0);
    assert_int_equal(t->n_parts, 1);
    assert_int_equal(t->parts[0].length, 0);
    assert_string_equal(src_item_field(&l.items[0], "doc.size"), "0");
    assert_string_equal(l.items[0].version,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    listing_free(&l);
}

static void src_files_empty_folder_gives_no_items_and_no_notes(void **state)
{
    (void)state;
    fresh_root();
    struct src_item *items = (struct src_item *)&fx; /* must be overwritten */
    struct src_note *notes = (struct src_note *)&fx;
    size_t n = 9, n_notes = 9;
    struct bh_err err = {0};
    struct src_files_opts o = SRC_FILES_OPTS_INIT;
    o.root = fx.root;
    assert_int_equal(src_files_list(&items, &n, &notes, &n_notes, &o, &err), 0);
    assert_null(items);
    assert_int_equal(n, 0);
    assert_null(notes);
    assert_int_equal(n_notes, 0);
}

static void src_files_version_follows_the_content_only(void **state)
{
    (void)state;
    fresh_root();
    put("a.txt", "one\n");
    put("b.txt", "two\n");
    struct listing before, after;
    list_root(&before);
    assert_string_not_equal(before.items[0].version, before.items[1].version);
    put("a.txt", "one, edited\n");
    put("b.txt", "one\n"); /* b now holds what a held */
    list_root(&after);
    assert_string_not_equal(after.items[0].version, before.items[0].version);
    assert_string_equal(after.items[1].version, before.items[0].version);
    assert_string_equal(after.items[0].key, "a.txt");
    listing_free(&before);
    listing_free(&after);
}

/* --- include and exclude ------------------------------------------------- */

static void src_files_include_and_exclude_select_files(void **state)
{
    (void)state;
    fresh_root();
    put("readme.md", "r\n");
    put("notes/a.md", "a\n");
    put("notes/a.txt", "t\n");
    put("drafts/wip.md", "w\n");
    put("notes/old.md", "o\n");
    static const char *const inc[] = {"**/*.md"};
    static const char *const exc[] = {"drafts/**", "old.md"};
    struct src_files_opts o = {fx.root, inc, 1, exc, 2, 0};
    struct listing l;
    list_opts(&o, &l);
    static const char *const want[] = {"notes/a.md", "readme.md"};
    assert_keys(&l, want, 2);
    assert_int_equal(l.n_notes, 0); /* left out on purpose: nothing to say */
    listing_free(&l);
}

static void src_files_excluded_folder_is_not_entered(void **state)
{
    (void)state;
    fresh_root();
    put("keep.txt", "k\n");
    put("vendor/lib/x.txt", "x\n");
    put_bytes("vendor/blob.bin",
              "\x7f"
              "ELF\0\0",
              6);
    assert_int_equal(sh("ln -s /nonexistent '%s/vendor/dangling'", fx.root), 0);
    static const char *const exc[] = {"vendor"};
    struct src_files_opts o = {fx.root, NULL, 0, exc, 1, 0};
    struct listing l;
    list_opts(&o, &l);
    static const char *const want[] = {"keep.txt"};
    assert_keys(&l, want, 1);
    /* Not even the binary file or the link inside it is looked at. */
    assert_int_equal(l.n_notes, 0);
    listing_free(&l);
}

static void src_files_git_folder_is_skipped_silently(void **state)
{
    (void)state;
    fresh_root();
    put("doc.md", "d\n");
    put(".git/HEAD", "ref: refs/heads/main\n");
    put(".git/objects/ab/cdef", "\x01\x02");
    put("sub/.git", "gitdir: ../.git/modules/sub\n"); /* a file, not the folder */
    put(".github/ci.yml", "on: push\n");
    struct listing l;
    list_root(&l);
    static const char *const want[] = {".github/ci.yml", "doc.md", "sub/.git"};
    assert_keys(&l, want, 3);
    assert_int_equal(l.n_notes, 0);
    listing_free(&l);
}

static void src_files_malformed_glob_is_an_error(void **state)
{
    (void)state;
    fresh_root();
    static const char *const inc[] = {"docs/[ab"};
    struct src_files_opts o = {fx.root, inc, 1, NULL, 0, 0};
    struct src_item *items = NULL;
    struct src_note *notes = NULL;
    size_t n = 0, n_notes = 0;
    struct bh_err err = {0};
    assert_int_equal(src_files_list(&items, &n, &notes, &n_notes, &o, &err), BH_EINVAL);
    assert_non_null(strstr(err.msg, "include glob 'docs/[ab': unclosed '['"));
    static const char *const exc[] = {"a/**b"};
    struct src_files_opts o2 = {fx.root, NULL, 0, exc, 1, 0};
    assert_int_equal(src_files_list(&items, &n, &notes, &n_notes, &o2, &err), BH_EINVAL);
    assert_non_null(strstr(err.msg, "exclude glob 'a/**b'"));
    assert_null(items);
}

/* --- files that are skipped with a note ---------------------------------- */

static void src_files_nul_anywhere_is_binary_with_its_offset(void **state)
{
    (void)state;
    static char late[9000];
    fresh_root();
    put_bytes("logo.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    /* A NUL after the first 8 KiB of otherwise clean text is binary too: a
     * template would render the text cut at the NUL. */
    memset(late, 'a', sizeof(late));
    late[8192] = '\0';
    put_bytes("late-nul.txt", late, sizeof(late));
    struct listing l;
    list_root(&l);
    assert_string_equal(why_of(&l, "logo.png"), "binary: a NUL byte at offset 8");
    assert_null(item_of(&l, "logo.png"));
    assert_string_equal(why_of(&l, "late-nul.txt"), "binary: a NUL byte at offset 8192");
    assert_null(item_of(&l, "late-nul.txt"));
    listing_free(&l);
}

/* Text that is not UTF-8 is kept, decoded lossily (one U+FFFD per maximal
 * ill-formed subpart), with a note naming the first bad offset. */
static void src_files_invalid_utf8_is_decoded_with_a_note(void **state)
{
    (void)state;
#define R "\xef\xbf\xbd"
    static const struct {
        const char *name, *bytes, *text;
        const char *why; /* NULL: a valid document */
    } cases[] = {
        {"latin1.txt", "caf\xe9 au lait", "caf" R " au lait",
         "not UTF-8 text (first invalid byte at offset 3): read with 1 U+FFFD replacements"},
        {"overlong.txt", "ab\xc0\xaf", "ab" R R,
         "not UTF-8 text (first invalid byte at offset 2): read with 2 U+FFFD replacements"},
        {"surrogate.txt", "\xed\xa0\x80", R R R,
         "not UTF-8 text (first invalid byte at offset 0): read with 3 U+FFFD replacements"},
        {"too-high.txt", "x\xf4\x90\x80\x80", "x" R R R R,
         "not UTF-8 text (first invalid byte at offset 1): read with 4 U+FFFD replacements"},
        {"cut.txt", "end \xe2\x82", "end " R,
         "not UTF-8 text (first invalid byte at offset 4): read with 1 U+FFFD replacements"},
        {"stray.txt", "a\x80", "a" R,
         "not UTF-8 text (first invalid byte at offset 1): read with 1 U+FFFD replacements"},
        {"good.txt",
         "\xef\xbb\xbf"
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
         "\xef\xbb\xbf"
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
         NULL},
    };
#undef R
    size_t n = BH_NELEM(cases);
    fresh_root();
    for (size_t i = 0; i < n; i++)
        put(cases[i].name, cases[i].bytes);
    struct listing l;
    list_root(&l);
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++) {
        const char *why = why_of(&l, cases[i].name);
        if (cases[i].why)
            assert_string_equal(why, cases[i].why);
        else
            assert_null(why);
        const struct src_item *it = item_of(&l, cases[i].name);
        assert_string_equal(src_item_field(it, "doc.text"), cases[i].text);
        assert_int_equal(src_item_find(it, "doc.text")->len, strlen(cases[i].text));
        assert_int_equal(src_item_find(it, "doc.text")->parts[0].length, strlen(cases[i].text));
    }
    listing_free(&l);
}

static void src_files_cap_is_inclusive_and_larger_files_are_noted(void **state)
{
    (void)state;
    fresh_root();
    put("fits.txt", "0123456789");
    put("over.txt", "0123456789A");
    struct src_files_opts o = {fx.root, NULL, 0, NULL, 0, 10};
    struct listing l;
    list_opts(&o, &l);
    static const char *const want[] = {"fits.txt"};
    assert_keys(&l, want, 1);
    assert_int_equal(l.n_notes, 1);
    assert_string_equal(why_of(&l, "over.txt"),
                        "larger than max_bytes (11 bytes, the cap is 10) — raise max_bytes or "
                        "exclude it");
    listing_free(&l);
}

static void src_files_default_cap_is_one_mib(void **state)
{
    (void)state;
    fresh_root();
    char *big = malloc(SRC_FILES_DEFAULT_MAX + 1);
    assert_non_null(big);
    memset(big, 'x', SRC_FILES_DEFAULT_MAX + 1);
    put_bytes("at-cap.txt", big, SRC_FILES_DEFAULT_MAX);
    put_bytes("over-cap.txt", big, SRC_FILES_DEFAULT_MAX + 1);
    free(big);
    struct listing l;
    list_root(&l);
    static const char *const want[] = {"at-cap.txt"};
    assert_keys(&l, want, 1);
    assert_non_null(strstr(why_of(&l, "over-cap.txt"), "(1048577 bytes, the cap is 1048576)"));
    listing_free(&l);
}

static void src_files_symlinks_are_never_followed(void **state)
{
    (void)state;
    char outside[200];
    snprintf(outside, sizeof(outside), "%s/outside-%d", fx.tmp, fx.seq + 1);
    assert_int_equal(sh("mkdir -p '%s' && echo " CANARY " > '%s/secret.txt'", outside, outside), 0);
    fresh_root();
    put("real.txt", "real\n");
    assert_int_equal(sh("cd '%s' && ln -s '%s/secret.txt' link.txt && ln -s '%s' linkdir && "
                        "ln -s real.txt inside.txt && ln -s /nonexistent dangling.txt",
                        fx.root, outside, outside),
                     0);
    struct listing l;
    list_root(&l);
    static const char *const want[] = {"real.txt"};
    assert_keys(&l, want, 1);
    for (size_t i = 0; i < l.n; i++)
        assert_null(strstr(src_item_field(&l.items[i], "doc.text"), CANARY));
    static const char *const links[] = {"dangling.txt", "inside.txt", "link.txt", "linkdir"};
    assert_int_equal(l.n_notes, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(l.notes[i].path, links[i]); /* sorted by path */
        assert_string_equal(l.notes[i].why, "symbolic link, not followed");
    }
    listing_free(&l);
}

static void src_files_excluded_symlink_gets_no_note(void **state)
{
    (void)state;
    fresh_root();
    put("a.md", "a\n");
    assert_int_equal(sh("ln -s a.md '%s/b.txt'", fx.root), 0);
    static const char *const inc[] = {"*.md"};
    struct src_files_opts o = {fx.root, inc, 1, NULL, 0, 0};
    struct listing l;
    list_opts(&o, &l);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.n_notes, 0);
    listing_free(&l);
}

static void src_files_named_pipe_is_noted_not_opened(void **state)
{
    (void)state;
    fresh_root();
    put("a.txt", "a\n");
    /* Opening a FIFO for reading would block forever with no writer. */
    assert_int_equal(sh("mkfifo '%s/queue'", fx.root), 0);
    struct listing l;
    list_root(&l);
    assert_int_equal(l.n, 1);
    assert_string_equal(why_of(&l, "queue"), "named pipe, not read");
    listing_free(&l);
}

/* A control byte in a name leaves the file out; a name that is not UTF-8 is
 * read as text (U+FFFD), noted with its bytes escaped; two names that read
 * the same keep the first. */
static void src_files_name_that_is_not_text_is_noted_escaped(void **state)
{
    (void)state;
    fresh_root();
    put("bad\nname.txt", "x\n");
    put("caf\xe9/inner.txt", "y\n");
    put("ok-\xc3\xa9.txt", "z\n");
    put("tw\xe8.txt", "first\n");
    put("tw\xe9.txt", "second\n");
    struct listing l;
    list_root(&l);
    static const char *const want[] = {"caf\xef\xbf\xbd/inner.txt", "ok-\xc3\xa9.txt",
                                       "tw\xef\xbf\xbd.txt"};
    assert_keys(&l, want, 3);
    assert_string_equal(src_item_field(&l.items[0], "doc.path"), want[0]);
    assert_string_equal(src_item_find(&l.items[0], "doc.text")->parts[0].path, want[0]);
    /* The one kept is the same every time (ordered by content), either may be it. */
    const char *kept = src_item_field(&l.items[2], "doc.text");
    assert_true(strcmp(kept, "first\n") == 0 || strcmp(kept, "second\n") == 0);
    assert_string_equal(why_of(&l, "bad\\012name.txt"),
                        "file name holds a control character, not read");
    assert_string_equal(why_of(&l, "caf\\351/inner.txt"),
                        "file name is not UTF-8: read as 'caf\xef\xbf\xbd/inner.txt' (U+FFFD for "
                        "each invalid byte)");
    assert_true(why_of(&l, "tw\\350.txt") || why_of(&l, "tw\\351.txt"));
    assert_string_equal(why_of(&l, "tw\xef\xbf\xbd.txt"),
                        "its name read as text is the same as another file's, not read — rename "
                        "one of them");
    listing_free(&l);
}

static void src_files_folders_deeper_than_the_cap_are_noted(void **state)
{
    (void)state;
    char rel[4 * (SRC_FILES_MAX_DEPTH + 2)] = "";
    fresh_root();
    for (int i = 0; i < SRC_FILES_MAX_DEPTH; i++)
        strcat(rel, "d/");
    char file[sizeof(rel) + 16];
    snprintf(file, sizeof(file), "%sleaf.txt", rel);
    put(file, "deepest that is read\n");
    snprintf(file, sizeof(file), "%sd/too-deep.txt", rel);
    put(file, "never read\n");
    struct listing l;
    list_root(&l);
    assert_int_equal(l.n, 1);
    snprintf(file, sizeof(file), "%sleaf.txt", rel);
    assert_string_equal(l.items[0].key, file);
    assert_int_equal(l.n_notes, 1);
    snprintf(file, sizeof(file), "%sd", rel);
    assert_string_equal(l.notes[0].path, file);
    assert_string_equal(l.notes[0].why, "nested deeper than 64 folders, not entered");
    listing_free(&l);
}

static void src_files_unreadable_file_is_noted(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip(); /* root reads files whatever their mode */
    fresh_root();
    put("open.txt", "o\n");
    put("closed.txt", "c\n");
    assert_int_equal(sh("chmod 000 '%s/closed.txt'", fx.root), 0);
    struct listing l;
    list_root(&l);
    assert_int_equal(l.n, 1);
    assert_string_equal(why_of(&l, "closed.txt"), "cannot open: Permission denied");
    listing_free(&l);
}

static void src_files_unreadable_folder_is_an_error_naming_it(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip(); /* root reads folders whatever their mode */
    fresh_root();
    put("locked/a.txt", "a\n");
    assert_int_equal(sh("chmod 000 '%s/locked'", fx.root), 0);
    struct src_item *items = NULL;
    struct src_note *notes = NULL;
    size_t n = 0, n_notes = 0;
    struct bh_err err = {0};
    struct src_files_opts o = {fx.root, NULL, 0, NULL, 0, 0};
    assert_int_equal(src_files_list(&items, &n, &notes, &n_notes, &o, &err), BH_EIO);
    assert_non_null(strstr(err.msg, "cannot open 'locked': Permission denied"));
    assert_non_null(strstr(err.msg, "exclude it"));
    static const char *const exc[] = {"locked"};
    o.exclude = exc;
    o.n_exclude = 1;
    assert_int_equal(src_files_list(&items, &n, &notes, &n_notes, &o, &err), 0);
    assert_int_equal(n, 0);
}

/* --- the sample folder ---------------------------------------------------- */

/* ctest sets BH_SOURCE_DIR; run by hand, the tree this file sits in.
 * redirect is appended to the command ("" or "2>/dev/null"). */
static int make_docs(const char *dir, const char *redirect)
{
    const char *src = getenv("BH_SOURCE_DIR");
    const char *self = __FILE__, *cut = strstr(self, "/tests/unit/");
    if (src)
        return sh("bash '%s/fixtures/make-docs.sh' '%s' %s", src, dir, redirect);
    return sh("bash '%.*s/fixtures/make-docs.sh' '%s' %s", cut ? (int)(cut - self) : 1,
              cut ? self : ".", dir, redirect);
}

static void src_files_sample_folder_lists_as_the_documents_pipeline_expects(void **state)
{
    (void)state;
    char dir[200];
    snprintf(dir, sizeof(dir), "%s/sample-docs", fx.tmp);
    assert_int_equal(make_docs(dir, ""), 0);
    /* The source part of pipelines/documents.json. */
    static const char *const inc[] = {"**/*.md", "**/*.txt", "**/*.csv", "**/*.json"};
    static const char *const exc[] = {"drafts/**"};
    struct src_files_opts o = {dir, inc, 4, exc, 1, 262144};
    struct listing l;
    list_opts(&o, &l);
    static const char *const want[] = {
        "README.md",
        "config/backup-settings.json",
        "data/office-inventory.csv",
        "hr/personnel-notes-employee-0117.md",
        "hr/salary-review-2024.csv",
        "letters/customer-letter-0042.txt",
        "letters/supplier-reminder.md",
        "notes/meeting-2024-03-12.md",
        "notes/reading-list.txt",
        "notes/roadmap.md",
        "public/faq.md",
        "public/press-release-2024-05.md",
        "public/press-release-2024-09.md",
    };
    assert_keys(&l, want, BH_NELEM(want));
    assert_int_equal(l.n_notes, 2);
    assert_string_equal(why_of(&l, "letters/scan-0042.txt"), "binary: a NUL byte at offset 15");
    assert_non_null(strstr(why_of(&l, "notes/meeting-transcript.txt"), "the cap is 262144"));
    /* What the detectors are meant to find is there, as committed. */
    assert_non_null(strstr(src_item_field(item_of(&l, "config/backup-settings.json"), "doc.text"),
                           "AKIAIOSFODNN7EXAMPLE"));
    assert_non_null(
        strstr(src_item_field(item_of(&l, "letters/customer-letter-0042.txt"), "doc.text"),
               "GB82 WEST 1234 5698 7654 32"));
    listing_free(&l);
    /* The script refuses to overwrite a folder it already filled. */
    assert_int_equal(make_docs(dir, "2>/dev/null"), 1);
}

/* --- errors -------------------------------------------------------------- */

static void src_files_missing_root_is_not_found(void **state)
{
    (void)state;
    char path[200];
    snprintf(path, sizeof(path), "%s/no-such-folder", fx.tmp);
    struct src_item *items = NULL;
    struct src_note *notes = NULL;
    size_t n = 0, n_notes = 0;
    struct bh_err err = {0};
    struct src_files_opts o = {path, NULL, 0, NULL, 0, 0};
    assert_int_equal(src_files_list(&items, &n, &notes, &n_notes, &o, &err), BH_ENOTFOUND);
    char want[300];
    snprintf(want, sizeof(want),
             "documents folder '%s' does not exist — pass the folder that holds the documents",
             path);
    assert_string_equal(err.msg, want);
    assert_null(items);
    assert_null(notes);
}

static void src_files_root_that_is_a_file_is_not_found(void **state)
{
    (void)state;
    fresh_root();
    put("file.txt", "f\n");
    char path[200];
    snprintf(path, sizeof(path), "%s/file.txt", fx.root);
    struct src_item *items = NULL;
    struct src_note *notes = NULL;
    size_t n = 0, n_notes = 0;
    struct bh_err err = {0};
    struct src_files_opts o = {path, NULL, 0, NULL, 0, 0};
    assert_int_equal(src_files_list(&items, &n, &notes, &n_notes, &o, &err), BH_ENOTFOUND);
    char want[300];
    snprintf(want, sizeof(want),
             "documents folder '%s' is not a folder — pass the folder that holds the documents, "
             "not a file",
             path);
    assert_string_equal(err.msg, want);
}

static void src_files_root_may_be_a_link_to_a_folder(void **state)
{
    (void)state;
    fresh_root();
    put("a.txt", "a\n");
    char link[200];
    snprintf(link, sizeof(link), "%s-link", fx.root);
    assert_int_equal(sh("ln -s '%s' '%s'", fx.root, link), 0);
    struct src_files_opts o = {link, NULL, 0, NULL, 0, 0};
    struct listing l;
    list_opts(&o, &l);
    static const char *const want[] = {"a.txt"};
    assert_keys(&l, want, 1);
    listing_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(src_files_lists_nested_files_in_byte_order_of_whole_paths),
        cmocka_unit_test(src_files_item_has_path_text_size_and_one_part),
        cmocka_unit_test(src_files_empty_file_is_an_item_with_empty_text),
        cmocka_unit_test(src_files_empty_folder_gives_no_items_and_no_notes),
        cmocka_unit_test(src_files_version_follows_the_content_only),
        cmocka_unit_test(src_files_include_and_exclude_select_files),
        cmocka_unit_test(src_files_excluded_folder_is_not_entered),
        cmocka_unit_test(src_files_git_folder_is_skipped_silently),
        cmocka_unit_test(src_files_malformed_glob_is_an_error),
        cmocka_unit_test(src_files_nul_anywhere_is_binary_with_its_offset),
        cmocka_unit_test(src_files_invalid_utf8_is_decoded_with_a_note),
        cmocka_unit_test(src_files_cap_is_inclusive_and_larger_files_are_noted),
        cmocka_unit_test(src_files_default_cap_is_one_mib),
        cmocka_unit_test(src_files_symlinks_are_never_followed),
        cmocka_unit_test(src_files_excluded_symlink_gets_no_note),
        cmocka_unit_test(src_files_named_pipe_is_noted_not_opened),
        cmocka_unit_test(src_files_name_that_is_not_text_is_noted_escaped),
        cmocka_unit_test(src_files_folders_deeper_than_the_cap_are_noted),
        cmocka_unit_test(src_files_unreadable_file_is_noted),
        cmocka_unit_test(src_files_unreadable_folder_is_an_error_naming_it),
        cmocka_unit_test(src_files_sample_folder_lists_as_the_documents_pipeline_expects),
        cmocka_unit_test(src_files_missing_root_is_not_found),
        cmocka_unit_test(src_files_root_that_is_a_file_is_not_found),
        cmocka_unit_test(src_files_root_may_be_a_link_to_a_folder),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
