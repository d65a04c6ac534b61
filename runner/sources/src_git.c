/* sources/src_git.c — pull requests of a git repository as work items.
 *
 * Everything is read from the object database with libgit2: the working tree
 * is never looked at, so a checkout in any state (or a bare mirror) gives the
 * same items. For each ref matching the glob we diff the merge base of base
 * and head to head — what `git diff base...head` shows, i.e. what the PR
 * itself changes, not what main moved on to since it branched.
 *
 * One bad PR never stops the others: a ref that is not a commit, a head that
 * shares no history with base, an object libgit2 cannot read, a file list or
 * diff over the cap — each fails THAT item only. It is still listed (a
 * listing that silently left a PR out would look complete when it is not),
 * with what could be read (number, ref, title) and every content field
 * carrying the reason as its error, so the tasks that read them fail with it
 * and the rest of the batch runs. Only the repository and the base fail the
 * whole listing. Ref names are collected first and processed after the
 * iteration, so no libgit2 work happens inside its callback and the order
 * (by PR number) does not depend on the refdb.
 *
 * Text is text: diff lines, paths and titles that are not UTF-8 (a Latin-1
 * file name) are decoded lossily as they are appended (bh_utf8_lossy), so the
 * parts' offsets stay exact, and the item's note names what was replaced.
 *
 * pr.diff carries parts, one per file, so path rules and detector hits can
 * be placed in the file they are about; they are cut where the printer moves
 * to the next delta, which keeps them exact without re-parsing the text.
 *
 * Listing and reading are two steps (src_git_index, src_loader_load): a run
 * must know every item's key and version before it starts, but reads an
 * item's diff only when a task needs it. The listing peels each ref and
 * finds its merge base (an empty diff is equal trees, no diff made); a
 * load reads the commits the version names, never the ref again, so a
 * field freed and read again is the same text. src_git_list does both at
 * once.
 *
 * libgit2 is initialised and shut down once per call (per loader); it
 * refcounts, so this nests with any other user in the process and leaves
 * nothing behind. */
#include "sources/src_git.h"

#include "sources/src_forge.h"
#include "sources/src_libgit2.h"

#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PULLS "refs/pull/*/head"
#define DEFAULT_BASE "main"
#define DEFAULT_MAX_DIFF ((size_t)4 << 20)
/* libgit2 caches the trees and commits it reads with the repository (the
 * process-wide cap, 256 MiB by default, is far above what a run should
 * hold): a loader that kept one repository open for a whole run would keep
 * every pull request's trees. It opens the repository again after this many
 * loads, which drops them; within a window the base's trees, which every
 * diff reads, stay cached. */
#define LOADER_REOPEN 64

enum { F_NUMBER, F_REF, F_TITLE, F_FILES, F_STATS, F_DIFF, F_COUNT };

const char *const src_git_fields[] = {
    [F_NUMBER] = "pr.number", [F_REF] = "pr.ref",     [F_TITLE] = "pr.title",
    [F_FILES] = "pr.files",   [F_STATS] = "pr.stats", [F_DIFF] = "pr.diff",
};
const size_t src_git_n_fields = BH_NELEM(src_git_fields);
_Static_assert(BH_NELEM(src_git_fields) == F_COUNT, "src_git_fields and the F_ enum disagree");

struct names {
    char **v;
    size_t n, cap;
};

/* What every step needs: the open repository, the resolved base and what the
 * user called things, for messages. */
struct ctx {
    const char *path;
    const char *base_name;
    size_t max_diff;
    git_repository *repo;
    git_oid base;
    int head_rev;       /* items come from one revision (--range), not refs */
    int forge_pad;      /* src_git_opts.forge_pad */
    struct names lossy; /* the current item's paths with invalid UTF-8 (names or text) */
    int lossy_title;    /* ... and whether its title had some */
    struct bh_err *err;
};

static int code_of(int git_rc)
{
    return git_rc == GIT_ENOTFOUND ? BH_ENOTFOUND : BH_EIO;
}

/* --- opening ----------------------------------------------------------- */

static int ctx_open(struct ctx *c)
{
    /* NO_SEARCH: a path inside some other repository must not silently open
     * that one — item keys are only stable within the repository named. */
    int rc = git_repository_open_ext(&c->repo, c->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (rc < 0)
        return bh_err_set(c->err, code_of(rc),
                          "repository '%s': cannot open: %s — pass the path of a git repository",
                          c->path, src_git_msg());
    git_commit *base = NULL;
    rc = src_git_commit_at(&base, c->repo, c->base_name);
    if (rc == 0)
        git_oid_cpy(&c->base, git_commit_id(base));
    git_commit_free(base);
    if (rc < 0)
        return bh_err_set(c->err, BH_ENOTFOUND,
                          "repository '%s': cannot resolve base '%s': %s — pass --base REF",
                          c->path, c->base_name, src_git_msg());
    return 0;
}

/* --- refs, ordered by PR number ------------------------------------------ */

static int collect_ref(const char *name, void *payload)
{
    struct names *ns = payload;
    ns->v = bh_xgrow(ns->v, &ns->cap, ns->n + 1, sizeof(*ns->v));
    ns->v[ns->n++] = bh_xstrdup(name);
    return 0;
}

static void names_release(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

/* The first path component made only of digits, or NULL; *len its length. */
static const char *ref_number(const char *name, size_t *len)
{
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n > 0 && strspn(p, "0123456789") == n) {
            *len = n;
            return p;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    *len = 0;
    return NULL;
}

/* Compares decimal digit strings of any length without converting them, so
 * a 30-digit ref component cannot overflow anything. */
static int cmp_digits(const char *a, size_t la, const char *b, size_t lb)
{
    while (la > 1 && *a == '0')
        a++, la--;
    while (lb > 1 && *b == '0')
        b++, lb--;
    if (la != lb)
        return la < lb ? -1 : 1;
    return memcmp(a, b, la);
}

/* A listed ref and, when it points at an object directly, that object:
 * the listing reads each ref once (10,000 loose refs are 10,000 files). */
struct ref_entry {
    char *name;
    git_oid id;
    int direct;
};

struct refs {
    struct ref_entry *v;
    size_t n, cap;
};

static void refs_add(struct refs *rs, const char *name, const git_oid *id)
{
    rs->v = bh_xgrow(rs->v, &rs->cap, rs->n + 1, sizeof(*rs->v));
    rs->v[rs->n] = (struct ref_entry){.name = bh_xstrdup(name), .direct = id != NULL};
    if (id)
        git_oid_cpy(&rs->v[rs->n].id, id);
    rs->n++;
}

static void refs_release(struct refs *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].name);
    free(rs->v);
}

static int cmp_refs(const void *pa, const void *pb)
{
    const char *a = ((const struct ref_entry *)pa)->name;
    const char *b = ((const struct ref_entry *)pb)->name;
    size_t la, lb;
    const char *na = ref_number(a, &la), *nb = ref_number(b, &lb);
    if (na && nb) {
        int d = cmp_digits(na, la, nb, lb);
        if (d)
            return d;
    } else if (na || nb) {
        return na ? -1 : 1;
    }
    return strcmp(a, b);
}

/* fnmatch without flags, as libgit2 matches the --pulls globs: '*' also
 * crosses '/', so "refs/pull/12*" leaves out refs/pull/12/head and 120.. */
static int excluded(const struct src_git_opts *o, const char *name)
{
    for (size_t i = 0; i < o->n_exclude; i++)
        if (fnmatch(o->exclude[i], name, 0) == 0)
            return 1;
    return 0;
}

static int refs_glob(struct ctx *c, const char *glob, struct refs *rs)
{
    git_reference_iterator *iter = NULL;
    git_reference *ref = NULL;
    int rc = git_reference_iterator_glob_new(&iter, c->repo, glob);
    while (rc == 0 && (rc = git_reference_next(&ref, iter)) == 0) {
        int direct = git_reference_type(ref) == GIT_REFERENCE_DIRECT;
        refs_add(rs, git_reference_name(ref), direct ? git_reference_target(ref) : NULL);
        git_reference_free(ref);
    }
    git_reference_iterator_free(iter);
    if (rc < 0 && rc != GIT_ITEROVER)
        return bh_err_set(c->err, BH_EIO, "repository '%s': cannot list refs '%s': %s", c->path,
                          glob, src_git_msg());
    return 0;
}

/* The refs matching any of the globs and none of the exclusions, each once,
 * by PR number. Equal names sort next to each other, so dropping repeats
 * after the sort is enough. */
static int refs_list(struct ctx *c, const struct src_git_opts *o, struct refs *rs)
{
    int rc = refs_glob(c, o->pulls ? o->pulls : DEFAULT_PULLS, rs);
    for (size_t i = 0; rc == 0 && i < o->n_more_pulls; i++)
        rc = refs_glob(c, o->more_pulls[i], rs);
    if (rc)
        return rc;
    if (rs->n > 1)
        qsort(rs->v, rs->n, sizeof(*rs->v), cmp_refs);
    size_t kept = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const char *name = rs->v[i].name;
        if ((kept > 0 && strcmp(rs->v[kept - 1].name, name) == 0) || excluded(o, name))
            free(rs->v[i].name);
        else
            rs->v[kept++] = rs->v[i];
    }
    rs->n = kept;
    return 0;
}

/* --- one PR ------------------------------------------------------------ */

/* A revision given on the command line (--range): anything git rev-parse takes. */
static int peel_revision(struct ctx *c, const char *rev, git_commit **out)
{
    if (src_git_commit_at(out, c->repo, rev) < 0)
        return bh_err_set(c->err, BH_ENOTFOUND,
                          "repository '%s': cannot resolve '%s' to a commit: %s — give "
                          "--range BASE..HEAD with revisions of this repository (in CI, fetch "
                          "the base branch first)",
                          c->path, rev, src_git_msg());
    return 0;
}

/* The commit a listed ref points at: through the object the listing saw
 * (a commit, or a tag of one), else (a symbolic ref) by looking it up. */
static int peel_head(struct ctx *c, const struct ref_entry *re, git_commit **out)
{
    const char *refname = re->name;
    if (c->head_rev)
        return peel_revision(c, refname, out);
    git_reference *ref = NULL;
    git_object *target = NULL, *obj = NULL;
    int rc = re->direct ? git_object_lookup(&target, c->repo, &re->id, GIT_OBJECT_ANY)
                        : git_reference_lookup(&ref, c->repo, refname);
    if (rc == 0 && re->direct)
        rc = git_object_peel(&obj, target, GIT_OBJECT_COMMIT);
    else if (rc == 0)
        rc = git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT);
    git_object_free(target);
    git_reference_free(ref);
    if (rc < 0)
        return bh_err_set(c->err, BH_EINVAL,
                          "repository '%s': ref '%s' does not point to a commit: %s — "
                          "narrow --pulls to refs of pull request heads",
                          c->path, refname, src_git_msg());
    *out = (git_commit *)obj;
    return 0;
}

static int tree_of(struct ctx *c, const git_oid *id, git_tree **out)
{
    git_commit *commit = NULL;
    int rc = git_commit_lookup(&commit, c->repo, id);
    if (rc == 0)
        rc = git_commit_tree(out, commit);
    git_commit_free(commit);
    return rc;
}

/* Pairs renames as git does by default (see src_git.h). Every field is set:
 * a zero makes libgit2 read diff.renameLimit from the repository's config,
 * and an unset flag diff.renames, so a repository could turn pairing off or
 * down. The _INIT macro trips -Wmissing-field-initializers. Whatever pairs,
 * pr.diff as a whole keeps the label of what moved: a paired move's part is
 * labelled by both paths, an unpaired one is a delete (every line, labelled
 * by the old path) and an add. The add's own part (each.diff) is labelled by
 * its new path and its content only, as a copy's is: pairing more (copies,
 * or copies from unmodified files) would cost a comparison with every file
 * of the tree per pull request. */
static int find_renames(git_diff *diff)
{
    git_diff_find_options fo;
    int rc = git_diff_find_options_init(&fo, GIT_DIFF_FIND_OPTIONS_VERSION);
    fo.flags = GIT_DIFF_FIND_RENAMES | GIT_DIFF_FIND_DONT_IGNORE_WHITESPACE;
    fo.rename_threshold = 50; /* git -M: 50% */
    fo.rename_from_rewrite_threshold = 50;
    fo.copy_threshold = 50; /* unused: copies are not looked for, as in git */
    fo.break_rewrite_threshold = 60;
    fo.rename_limit = 1000; /* git's diff.renameLimit default */
    return rc == 0 ? git_diff_find_similar(diff, &fo) : rc;
}
/* A failed diff, in the words every step of it uses. */
static int diff_error(struct ctx *c, const char *refname, int git_rc)
{
    return bh_err_set(c->err, code_of(git_rc), "repository '%s': cannot diff '%s' against '%s': %s",
                      c->path, refname, c->base_name, src_git_msg());
}

/* The merge base of base and head into *mb. */
static int merge_base(struct ctx *c, const char *refname, const git_oid *head, git_oid *mb)
{
    int rc = git_merge_base(mb, c->repo, &c->base, head);
    if (rc == GIT_ENOTFOUND)
        return bh_err_set(c->err, BH_EINVAL,
                          "repository '%s': ref '%s' shares no history with base '%s' — "
                          "pass --base REF naming the branch it was made from",
                          c->path, refname, c->base_name);
    return rc < 0 ? diff_error(c, refname, rc) : 0;
}

/* The diff from the merge base mb to head, renames found. */
static int pr_diff(struct ctx *c, const char *refname, const git_oid *mb, const git_oid *head,
                   git_diff **out)
{
    git_tree *old_tree = NULL, *new_tree = NULL;
    int rc = tree_of(c, mb, &old_tree);
    if (rc == 0)
        rc = tree_of(c, head, &new_tree);
    if (rc == 0)
        rc = git_diff_tree_to_tree(out, c->repo, old_tree, new_tree, NULL);
    git_tree_free(old_tree);
    git_tree_free(new_tree);
    if (rc == 0)
        rc = find_renames(*out);
    return rc < 0 ? diff_error(c, refname, rc) : 0;
}

/* Appends text; a NUL byte becomes '?' because every value is a C string and
 * a NUL would silently cut it short. Text diffs only hold NULs when
 * attributes force a binary file to be diffed as text. Invalid UTF-8 becomes
 * U+FFFD, counted in *replaced. */
static int append_text(struct bh_buf *b, const char *p, size_t n, size_t *replaced)
{
    const char *nul;
    while (n > 0 && (nul = memchr(p, '\0', n)) != NULL) {
        size_t k = (size_t)(nul - p);
        if (bh_utf8_lossy(b, p, k, replaced) || bh_buf_append(b, "?", 1))
            return BH_ETOOBIG;
        p += k + 1;
        n -= k + 1;
    }
    return bh_utf8_lossy(b, p, n, replaced);
}

/* Records that path (of the current item) held bytes that are not UTF-8. */
static void lossy_note(struct ctx *c, const char *path)
{
    for (size_t i = 0; i < c->lossy.n; i++)
        if (strcmp(c->lossy.v[i], path) == 0)
            return;
    collect_ref(path, &c->lossy);
}

/* A path as text: its invalid UTF-8 replaced, and noted. Owned. */
static char *path_text(struct ctx *c, const char *path)
{
    size_t replaced = 0;
    char *t = bh_utf8_lossy_dup(path, strlen(path), NULL, &replaced);
    if (replaced)
        lossy_note(c, t);
    return t;
}

/* Pairs of a letter and the control byte "\\<letter>" stands for. */
#define NAMED_ESCAPES "a\ab\bt\tn\nv\vf\fr\r"

/* Appends a path, C-quoted like git does when it holds a control character,
 * a quote or a backslash: a newline in a file name must not forge a line of
 * pr.files. */
static int append_quoted(struct bh_buf *b, const char *path)
{
    int quote = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        quote |= *p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\';
    if (!quote)
        return bh_buf_puts(b, path);
    int rc = bh_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)path; *p && !rc; p++) {
        const char *named = *p < 0x20 ? strchr(NAMED_ESCAPES, *p) : NULL;
        if (*p == '"' || *p == '\\')
            rc = bh_buf_printf(b, "\\%c", *p);
        else if (named)
            rc = bh_buf_printf(b, "\\%c", named[-1]);
        else if (*p < 0x20 || *p == 0x7f)
            rc = bh_buf_printf(b, "\\%03o", *p);
        else
            rc = bh_buf_append(b, p, 1);
    }
    return rc ? rc : bh_buf_puts(b, "\"");
}

/* append_quoted over the path with invalid UTF-8 replaced (files_text notes it). */
static int append_path(struct bh_buf *b, const char *raw)
{
    char *path = bh_utf8_lossy_dup(raw, strlen(raw), NULL, NULL);
    int rc = append_quoted(b, path);
    free(path);
    return rc;
}

/* Returns 0, or non-zero past the cap. */
static int append_delta(struct bh_buf *b, const git_diff_delta *d)
{
    switch (d->status) {
    case GIT_DELTA_ADDED: return bh_buf_puts(b, "A\t") || append_path(b, d->new_file.path);
    case GIT_DELTA_DELETED: return bh_buf_puts(b, "D\t") || append_path(b, d->old_file.path);
    case GIT_DELTA_RENAMED:
    case GIT_DELTA_COPIED:
        return bh_buf_puts(b, d->status == GIT_DELTA_RENAMED ? "R\t" : "C\t") ||
               append_path(b, d->old_file.path) || bh_buf_puts(b, " -> ") ||
               append_path(b, d->new_file.path);
    default: /* modified; a type change is a modification of the path too */
        return bh_buf_puts(b, "M\t") || append_path(b, d->new_file.path);
    }
}

static int too_big(struct ctx *c, const char *refname, const char *what)
{
    return bh_err_set(c->err, BH_ETOOBIG,
                      "repository '%s': pull request '%s': %s is larger than the cap of %zu bytes "
                      "— raise --max-diff or leave the pull request out",
                      c->path, refname, what, c->max_diff);
}

/* The file list is never longer than the diff's headers, which name each
 * path at least twice, so the diff's cap bounds it as well. */
static int files_text(struct ctx *c, const char *refname, git_diff *diff, char **out)
{
    struct bh_buf b;
    bh_buf_init(&b, c->max_diff);
    size_t n = git_diff_num_deltas(diff);
    for (size_t i = 0; i < n; i++) {
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        if (append_delta(&b, d) || bh_buf_puts(&b, "\n")) {
            bh_buf_release(&b);
            return too_big(c, refname, "the file list");
        }
        free(path_text(c, d->old_file.path));
        free(path_text(c, d->new_file.path));
    }
    *out = bh_buf_detach(&b);
    return 0;
}

static int stats_text(struct ctx *c, const char *refname, git_diff *diff, char **out)
{
    git_diff_stats *st = NULL;
    if (git_diff_get_stats(&st, diff) < 0)
        return bh_err_set(c->err, BH_EIO, "repository '%s': cannot count changes of '%s': %s",
                          c->path, refname, src_git_msg());
    *out = bh_xasprintf("%zu files changed, %zu insertions(+), %zu deletions(-)",
                        git_diff_stats_files_changed(st), git_diff_stats_insertions(st),
                        git_diff_stats_deletions(st));
    git_diff_stats_free(st);
    return 0;
}

/* git_diff_print hands back whatever the callback returned, which could
 * collide with a libgit2 code; the flag says for sure that the cap was hit.
 * It emits each file's lines together, header first, so a change of delta
 * is where the next file's part begins. */
struct sink {
    struct ctx *c;
    struct bh_buf buf;
    int over;
    const git_diff_delta *delta; /* the file the last line was about */
    struct src_part *parts;
    const git_diff_delta **deltas; /* each part's file, for reading its whole files */
    size_t n_parts, cap_parts, cap_deltas;
};

/* The path a file's part is about: a deleted file's old path, otherwise
 * (renames too) the new one — the path that pr.files names last. */
static const char *delta_path(const git_diff_delta *d)
{
    return d->status == GIT_DELTA_DELETED ? d->old_file.path : d->new_file.path;
}

/* The path a rename or copy came from, or NULL: the part is about both. */
static const char *delta_old_path(const git_diff_delta *d)
{
    int moved = d->status == GIT_DELTA_RENAMED || d->status == GIT_DELTA_COPIED;
    return moved && strcmp(d->old_file.path, d->new_file.path) != 0 ? d->old_file.path : NULL;
}

/* Part paths are decoded as pr.files writes them, so the two still agree. */
static void part_begin(struct sink *s, const git_diff_delta *d)
{
    const char *old = delta_old_path(d);
    s->parts = bh_xgrow(s->parts, &s->cap_parts, s->n_parts + 1, sizeof(*s->parts));
    s->deltas = bh_xgrow(s->deltas, &s->cap_deltas, s->n_parts + 1, sizeof(*s->deltas));
    s->deltas[s->n_parts] = d;
    s->parts[s->n_parts++] = (struct src_part){.path = path_text(s->c, delta_path(d)),
                                               .offset = s->buf.len,
                                               .old_path = old ? path_text(s->c, old) : NULL};
    s->delta = d;
}

/* Each part ends where the next begins, the last at the end of the text,
 * so the parts cover the value without gaps or overlap. */
static void parts_close(struct sink *s)
{
    for (size_t i = 0; i < s->n_parts; i++) {
        size_t end = i + 1 < s->n_parts ? s->parts[i + 1].offset : s->buf.len;
        s->parts[i].length = end - s->parts[i].offset;
    }
}

static void whole_free(struct src_whole *w)
{
    if (!w)
        return;
    free(w->old_text);
    free(w->new_text);
    free(w->unread);
    free(w);
}

static void parts_free(struct src_part *parts, size_t n)
{
    for (size_t i = 0; parts && i < n; i++) {
        free(parts[i].path);
        free(parts[i].old_path);
        whole_free(parts[i].whole);
    }
    free(parts);
}

static int print_line(const git_diff_delta *d, const git_diff_hunk *h, const git_diff_line *l,
                      void *payload)
{
    struct sink *s = payload;
    (void)h;
    if (d != s->delta)
        part_begin(s, d);
    /* Only these origins leave their marker out of content. */
    if (l->origin == GIT_DIFF_LINE_CONTEXT || l->origin == GIT_DIFF_LINE_ADDITION ||
        l->origin == GIT_DIFF_LINE_DELETION) {
        char o = (char)l->origin;
        s->over = bh_buf_append(&s->buf, &o, 1) != 0;
    }
    size_t replaced = 0;
    if (!s->over)
        s->over = append_text(&s->buf, l->content, l->content_len, &replaced) != 0;
    if (replaced)
        lossy_note(s->c, s->parts[s->n_parts - 1].path);
    return s->over ? GIT_EUSER : 0;
}

/* --- whole files, for detectors ----------------------------------------- */

/* A part shows less than its files when it is a modified, renamed or copied
 * text file whose content changed: only hunks. An added or deleted file
 * shows every line, a binary one none (git prints "Binary files ... differ"),
 * an unchanged blob (a pure rename, a mode change) no content at all. */
static int needs_whole(const git_diff_delta *d)
{
    if (d->status != GIT_DELTA_MODIFIED && d->status != GIT_DELTA_RENAMED &&
        d->status != GIT_DELTA_COPIED && d->status != GIT_DELTA_TYPECHANGE)
        return 0;
    return !(d->flags & GIT_DIFF_FLAG_BINARY) && !git_oid_equal(&d->old_file.id, &d->new_file.id);
}

/* One side of a file into *text (NUL-terminated, *len bytes), charged to
 * *budget; a submodule or an absent side is empty. Returns 0, or -1 with *why
 * (owned) set. */
static int side_read(struct ctx *c, const git_diff_file *f, size_t *budget, char **text,
                     size_t *len, char **why)
{
    git_blob *blob = NULL;
    if (f->mode == GIT_FILEMODE_COMMIT || git_oid_is_zero(&f->id)) {
        *text = bh_xstrdup("");
        return 0;
    }
    if (git_blob_lookup(&blob, c->repo, &f->id) < 0) {
        *why = bh_xasprintf("cannot read the whole of '%s' to scan it: %s", f->path, src_git_msg());
        return -1;
    }
    git_object_size_t size = git_blob_rawsize(blob);
    if (size > *budget) {
        *why = bh_xasprintf("the whole of '%s' is past the cap of %zu bytes on the whole files "
                            "of a pull request — raise --max-diff to scan it",
                            f->path, c->max_diff);
        git_blob_free(blob);
        return -1;
    }
    *budget -= (size_t)size;
    *len = (size_t)size;
    *text = bh_xmalloc((size_t)size + 1);
    memcpy(*text, git_blob_rawcontent(blob), (size_t)size);
    (*text)[size] = '\0';
    git_blob_free(blob);
    return 0;
}

/* Gives each part that shows only hunks its whole files. The budget is the
 * diff's cap, per pull request; a file past it or that cannot be read is
 * unread (its part is top), the other parts and pull requests unaffected. */
static void wholes_read(struct ctx *c, struct sink *s)
{
    size_t budget = c->max_diff;
    for (size_t i = 0; i < s->n_parts; i++) {
        const git_diff_delta *d = s->deltas[i];
        if (!needs_whole(d))
            continue;
        struct src_whole *w = bh_xcalloc(1, sizeof(*w));
        if (side_read(c, &d->old_file, &budget, &w->old_text, &w->old_len, &w->unread) ||
            side_read(c, &d->new_file, &budget, &w->new_text, &w->new_len, &w->unread)) {
            free(w->old_text);
            free(w->new_text);
            *w = (struct src_whole){.unread = w->unread};
        }
        s->parts[i].whole = w;
    }
}

/* Fills f's value, len and parts (one per file, in diff order). */
static int diff_text(struct ctx *c, const char *refname, git_diff *diff, struct src_field *f)
{
    struct sink s = {.c = c};
    bh_buf_init(&s.buf, c->max_diff);
    int rc = git_diff_print(diff, GIT_DIFF_FORMAT_PATCH, print_line, &s);
    if (rc < 0) {
        bh_buf_release(&s.buf);
        parts_free(s.parts, s.n_parts);
        free(s.deltas);
        if (s.over)
            return too_big(c, refname, "the diff");
        return bh_err_set(c->err, BH_EIO, "repository '%s': cannot print the diff of '%s': %s",
                          c->path, refname, src_git_msg());
    }
    parts_close(&s);
    wholes_read(c, &s);
    free(s.deltas);
    f->len = s.buf.len;
    f->value = bh_buf_detach(&s.buf);
    f->parts = s.parts;
    f->n_parts = s.n_parts;
    return 0;
}
/* Takes values; the diff field arrives whole (value, parts or error). */
static void fields_set(struct src_item *it, char **values, const struct src_field *diff)
{
    it->fields = bh_xcalloc(F_COUNT, sizeof(*it->fields));
    it->n_fields = F_COUNT;
    for (size_t i = 0; i < F_COUNT; i++) {
        struct src_field *f = &it->fields[i];
        if (i == F_DIFF)
            *f = *diff;
        else
            *f = (struct src_field){.value = values[i], .len = values[i] ? strlen(values[i]) : 0};
        f->name = bh_xstrdup(src_git_fields[i]);
    }
}

/* The item's note, unless it has one: a lazy item read again says the
 * same, and keeps what it said the first time. Takes note. */
static void note_set(struct src_item *it, char *note)
{
    if (it->note)
        free(note);
    else
        it->note = note;
}

/* The pull request number a CI job runs for, from its environment. */
static const char *ci_number(size_t *len)
{
    const char *iid = getenv("CI_MERGE_REQUEST_IID"); /* GitLab */
    if (iid && iid[0] && strspn(iid, "0123456789") == strlen(iid)) {
        *len = strlen(iid);
        return iid;
    }
    const char *ref = getenv("GITHUB_REF"); /* "refs/pull/123/merge" */
    return ref && strncmp(ref, "refs/pull/", 10) == 0 ? ref_number(ref, len) : NULL;
}

/* The title as text, noted when it was not UTF-8. Owned. */
static char *title_text(struct ctx *c, git_commit *head)
{
    const char *t = head ? git_commit_summary(head) : NULL;
    size_t replaced = 0;
    char *v = bh_utf8_lossy_dup(t ? t : "", t ? strlen(t) : 0, NULL, &replaced);
    c->lossy_title |= replaced > 0;
    return v;
}

/* What can be read of any item: number, ref (as text) and title. */
static void item_names(struct ctx *c, const char *refname, git_commit *head, char **v)
{
    size_t len;
    const char *num = c->head_rev ? ci_number(&len) : ref_number(refname, &len);
    v[F_NUMBER] = num ? bh_xstrndup(num, len) : bh_xstrdup("");
    v[F_REF] = bh_utf8_lossy_dup(refname, strlen(refname), NULL, NULL);
    v[F_TITLE] = head ? title_text(c, head) : NULL;
}

/* The item's note when some of its text was not UTF-8: which paths (at most
 * five named) and whether the title. */
static char *lossy_text(struct ctx *c, const char *refname)
{
    if (c->lossy.n == 0 && !c->lossy_title)
        return NULL;
    struct bh_buf b;
    bh_buf_init(&b, 0);
    (void)bh_buf_printf(&b, "pull request '%s': bytes that are not UTF-8 shown as U+FFFD in ",
                        refname);
    for (size_t i = 0; i < c->lossy.n && i < 5; i++)
        (void)bh_buf_printf(&b, "%s'%s'", i ? ", " : "", c->lossy.v[i]);
    if (c->lossy.n > 5)
        (void)bh_buf_printf(&b, " and %zu more paths", c->lossy.n - 5);
    if (c->lossy_title)
        (void)bh_buf_printf(&b, "%sthe title", c->lossy.n ? " and " : "");
    return bh_buf_detach(&b);
}

/* The fields of an item that could not be read (see the file's comment):
 * the names that can be read, every other field without a value and with
 * c->err's message as its error, and the message as the item's note. */
static void fields_fail(struct ctx *c, const char *refname, git_commit *head, struct src_item *it)
{
    char *v[F_COUNT] = {0};
    item_names(c, refname, head, v);
    fields_set(it, v, &(struct src_field){0});
    for (size_t i = 0; i < F_COUNT; i++)
        if (!it->fields[i].value)
            it->fields[i].error = bh_xstrdup(c->err->msg);
    note_set(it, bh_xstrdup(c->err->msg));
}

/* A listed item that could not be read: failed fields, and a version that
 * says so. */
static void item_fail(struct ctx *c, const char *refname, git_commit *head, struct src_item *it)
{
    char a[GIT_OID_HEXSZ + 1];
    it->key = bh_utf8_lossy_dup(refname, strlen(refname), NULL, NULL);
    it->version = bh_xasprintf("unreadable:%s",
                               head ? git_oid_tostr(a, sizeof(a), git_commit_id(head)) : refname);
    fields_fail(c, refname, head, it);
}

/* The fields of the pull request from mb to head, and the note on text
 * that is not UTF-8. */
static int fields_read(struct ctx *c, const char *refname, git_commit *head, const git_oid *mb,
                       struct src_item *it)
{
    git_diff *diff = NULL;
    char *v[F_COUNT] = {0};
    struct src_field df = {0};
    int rc = pr_diff(c, refname, mb, git_commit_id(head), &diff);
    if (rc == 0)
        rc = files_text(c, refname, diff, &v[F_FILES]);
    if (rc == 0)
        rc = stats_text(c, refname, diff, &v[F_STATS]);
    if (rc == 0 && (rc = diff_text(c, refname, diff, &df)) == BH_ETOOBIG) {
        /* Only the diff is over the cap: the file list and stats still
         * serve the tasks that read them. */
        df.error = bh_xstrdup(c->err->msg);
        rc = 0;
    }
    if (rc == 0) {
        item_names(c, refname, head, v);
        fields_set(it, v, &df);
        note_set(it, lossy_text(c, v[F_REF]));
    } else {
        for (size_t i = 0; i < F_COUNT; i++)
            free(v[i]);
    }
    git_diff_free(diff);
    return rc;
}

static void lossy_reset(struct ctx *c)
{
    names_release(&c->lossy);
    c->lossy = (struct names){0};
    c->lossy_title = 0;
}

/* What a run must know of a readable pull request before it starts: key,
 * version, and whether its diff is empty (equal trees need no diff). */
static int index_set(struct ctx *c, const char *refname, git_commit *head, const git_oid *mb,
                     struct src_item *it)
{
    git_commit *base = NULL;
    char a[GIT_OID_HEXSZ + 1], b[GIT_OID_HEXSZ + 1];
    int rc = git_commit_lookup(&base, c->repo, mb);
    if (rc < 0)
        return diff_error(c, refname, rc);
    it->key = bh_utf8_lossy_dup(refname, strlen(refname), NULL, NULL);
    it->version = bh_xasprintf("%s..%s", git_oid_tostr(a, sizeof(a), mb),
                               git_oid_tostr(b, sizeof(b), git_commit_id(head)));
    it->empty = git_oid_equal(git_commit_tree_id(base), git_commit_tree_id(head));
    it->lazy = 1;
    it->ref = bh_xstrdup(refname);
    git_commit_free(base);
    return 0;
}

/* Never fails: an item that cannot be listed is listed failed (item_fail). */
static void item_index(struct ctx *c, const struct ref_entry *re, struct src_item *it)
{
    const char *refname = re->name;
    git_commit *head = NULL;
    git_oid mb;
    lossy_reset(c);
    if (peel_head(c, re, &head) != 0 || merge_base(c, refname, git_commit_id(head), &mb) != 0 ||
        index_set(c, refname, head, &mb, it) != 0) {
        item_fail(c, refname, head, it);
        if (c->forge_pad)
            src_forge_pad(it, 1);
    }
    git_commit_free(head);
}

/* The merge base and head a lazy item's version names. */
static int version_oids(struct ctx *c, const struct src_item *it, git_oid *mb, git_oid *head)
{
    const char *v = it->version;
    if (strlen(v) != 2 * GIT_OID_HEXSZ + 2 || strncmp(v + GIT_OID_HEXSZ, "..", 2) != 0 ||
        git_oid_fromstrn(mb, v, GIT_OID_HEXSZ) < 0 ||
        git_oid_fromstrn(head, v + GIT_OID_HEXSZ + 2, GIT_OID_HEXSZ) < 0)
        return bh_err_set(c->err, BH_EINTERNAL, "pull request '%s': version '%s' names no commits",
                          it->key, v);
    return 0;
}

/* Reads a lazy item's fields from the commits its version names (never
 * the ref again: it may have moved since the listing). Returns 0, or the
 * error its fields now carry. */
static int item_load(struct ctx *c, struct src_item *it)
{
    git_oid mb, id;
    git_commit *head = NULL;
    lossy_reset(c);
    int rc = version_oids(c, it, &mb, &id);
    if (rc == 0 && (rc = git_commit_lookup(&head, c->repo, &id)) < 0)
        rc = bh_err_set(c->err, code_of(rc), "repository '%s': cannot read the head of '%s': %s",
                        c->path, it->ref, src_git_msg());
    if (rc == 0)
        rc = fields_read(c, it->ref, head, &mb, it);
    if (rc)
        fields_fail(c, it->ref, head, it);
    if (c->forge_pad)
        src_forge_pad(it, 1);
    git_commit_free(head);
    lossy_reset(c);
    return rc;
}

/* --- public ------------------------------------------------------------ */

static void fields_free(struct src_field *fields, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        free(fields[j].name);
        free(fields[j].value);
        free(fields[j].error);
        parts_free(fields[j].parts, fields[j].n_parts);
    }
    free(fields);
}

struct src_loader {
    struct ctx c;
    struct bh_err err; /* the load's failure, which the item's fields carry */
    char *path, *base_name;
    size_t loads; /* since the repository was opened */
};

/* Opens the repository again (see LOADER_REOPEN). When it cannot be, the
 * old handle stays: its cache costs memory, not correctness. */
static void loader_reopen(struct src_loader *l)
{
    git_repository *repo = NULL;
    if (git_repository_open_ext(&repo, l->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
        return;
    git_repository_free(l->c.repo);
    l->c.repo = repo;
    l->loads = 0;
}

/* Opens the repository and lists the items (item_index) into *out. */
static int index_all(struct ctx *c, const struct src_git_opts *opts, struct src_item **out,
                     size_t *n)
{
    struct refs refs = {0};
    int rc = ctx_open(c);
    if (rc == 0 && opts->head)
        refs_add(&refs, opts->head, NULL);
    else if (rc == 0)
        rc = refs_list(c, opts, &refs);
    *out = NULL;
    *n = 0;
    if (rc == 0 && refs.n > 0)
        *out = bh_xcalloc(refs.n, sizeof(**out));
    for (size_t i = 0; rc == 0 && i < refs.n; i++)
        item_index(c, &refs.v[i], &(*out)[(*n)++]);
    lossy_reset(c);
    refs_release(&refs);
    return rc;
}

int src_git_index(struct src_item **out, size_t *n, struct src_loader **loader,
                  const struct src_git_opts *opts, struct bh_err *err)
{
    if (git_libgit2_init() < 0)
        return bh_err_set(err, BH_EINTERNAL, "cannot initialise libgit2: %s", src_git_msg());
    struct src_loader *l = bh_xcalloc(1, sizeof(*l));
    l->path = bh_xstrdup(opts->repo ? opts->repo : ".");
    l->base_name = bh_xstrdup(opts->base ? opts->base : DEFAULT_BASE);
    l->c = (struct ctx){.path = l->path,
                        .base_name = l->base_name,
                        .max_diff = opts->max_diff ? opts->max_diff : DEFAULT_MAX_DIFF,
                        .head_rev = opts->head != NULL,
                        .forge_pad = opts->forge_pad,
                        .err = err};
    struct src_item *items = NULL;
    size_t made = 0;
    int rc = index_all(&l->c, opts, &items, &made);
    l->c.err = &l->err; /* from here on, failures are an item's, in its fields */
    if (rc) {
        src_items_free(items, made);
        src_loader_free(l);
        return rc;
    }
    loader_reopen(l); /* without the commits the listing cached */
    *out = items;
    *n = made;
    *loader = l;
    return 0;
}

int src_loader_load(struct src_loader *l, struct src_item *it)
{
    if (!l || !it->lazy || it->fields)
        return 0;
    if (++l->loads > LOADER_REOPEN)
        loader_reopen(l);
    (void)item_load(&l->c, it);
    return 1;
}

void src_loader_free(struct src_loader *l)
{
    if (!l)
        return;
    names_release(&l->c.lossy);
    git_repository_free(l->c.repo);
    free(l->path);
    free(l->base_name);
    free(l);
    git_libgit2_shutdown();
}

void src_item_unload(struct src_item *it)
{
    if (!it->lazy)
        return;
    fields_free(it->fields, it->n_fields);
    it->fields = NULL;
    it->n_fields = 0;
}

int src_git_list(struct src_item **out, size_t *n, const struct src_git_opts *opts,
                 struct bh_err *err)
{
    struct ctx c = {
        .path = opts->repo ? opts->repo : ".",
        .base_name = opts->base ? opts->base : DEFAULT_BASE,
        .max_diff = opts->max_diff ? opts->max_diff : DEFAULT_MAX_DIFF,
        .head_rev = opts->head != NULL,
        .forge_pad = opts->forge_pad,
        .err = err,
    };
    struct src_item *items = NULL;
    size_t made = 0;
    if (git_libgit2_init() < 0)
        return bh_err_set(err, BH_EINTERNAL, "cannot initialise libgit2: %s", src_git_msg());
    int rc = index_all(&c, opts, &items, &made);
    for (size_t i = 0; rc == 0 && i < made; i++) {
        struct src_item *it = &items[i];
        if (it->lazy && item_load(&c, it) != 0) {
            /* Read with the list, an item that cannot be read says so in
             * its version, as it always did. */
            char *v = bh_xasprintf("unreadable:%s", strstr(it->version, "..") + 2);
            free(it->version);
            it->version = v;
            it->empty = 0;
        }
        it->lazy = 0;
    }
    if (rc == 0) {
        *out = items;
        *n = made;
        items = NULL;
    }
    src_items_free(items, made);
    git_repository_free(c.repo);
    git_libgit2_shutdown();
    return rc;
}

void src_item_release(struct src_item *it)
{
    fields_free(it->fields, it->n_fields);
    free(it->key);
    free(it->version);
    free(it->note);
    free(it->ref);
    memset(it, 0, sizeof(*it));
}

void src_items_free(struct src_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        src_item_release(&items[i]);
    free(items);
}

const struct src_field *src_item_find(const struct src_item *item, const char *name)
{
    if (!item || !name)
        return NULL;
    for (size_t i = 0; i < item->n_fields; i++)
        if (strcmp(item->fields[i].name, name) == 0)
            return &item->fields[i];
    return NULL;
}

const char *src_item_field(const struct src_item *item, const char *name)
{
    const struct src_field *f = src_item_find(item, name);
    return f ? f->value : NULL;
}

const char *src_git_files_line_path(const char *line, size_t n, size_t *len, const char **old,
                                    size_t *old_len)
{
    const char *tab = memchr(line, '\t', n);
    const char *first = tab ? tab + 1 : line, *start = first, *end = line + n;
    /* A " -> " that ends the line is part of the name: no path is empty, and
     * an empty one would drop the file from a for_each over pr.files. */
    for (const char *a = start; a + 4 < end; a++)
        if (memcmp(a, " -> ", 4) == 0)
            start = a + 4;
    /* Only a rename or copy line has an old path; " -> " in another line is
     * part of a file name, and the path after it then matches no part of the
     * diff: unknown, so top, where the callers look the part up. */
    int moved = tab && tab - line == 1 && (line[0] == 'R' || line[0] == 'C') && start != first;
    if (old) {
        *old = moved ? first : NULL;
        *old_len = moved ? (size_t)(start - 4 - first) : 0;
    }
    *len = (size_t)(end - start);
    return start;
}
