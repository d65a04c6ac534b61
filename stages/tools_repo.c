/* stages/tools_repo.c — what each built-in tool reads: files and folders of
 * the head commit, the commit graph, and the item's diff. The repository is
 * read through sources/src_repo.h, from the object database only, so a
 * checkout in any state, a bare mirror or a working tree full of local edits
 * gives the same answers, and no path the model names can reach the file
 * system: every lookup is in a git tree.
 *
 * Results are built line by line into a capped buffer; a list that hits its
 * cap stops where it is and says so, rather than growing with the
 * repository. The walk over a whole tree (grep) skips binary files and
 * files over STAGE_TOOL_FILE_MAX, counting them, so a vendored blob cannot
 * make one call search gigabytes; each such file still joins the result's
 * label (binary: top; large: scanned by the detectors up to their cap, top
 * past it), since being left out is something the answer says about it. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/pipeline.h"
#include "detect/detect.h"
#include "policy/label.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "sources/src_repo.h"
#include "stages/tools_int.h"
#include "util/bh_err.h"
#include "util/bh_glob.h"
#include "util/bh_xmalloc.h"

/* Lines of files are shown up to this many bytes each. */
#define LINE_SHOW_MAX 2000

/* A folder argument without its trailing '/', "" for the root. Owned. */
static char *dir_norm(const char *dir)
{
    if (!dir || strcmp(dir, ".") == 0)
        return bh_xstrdup("");
    size_t n = strlen(dir);
    while (n > 0 && dir[n - 1] == '/')
        n--;
    return bh_xstrndup(dir, n);
}

/* ---- read_file ------------------------------------------------------------ */

/* The text file at path in the head tree into *b: 0, or -1 with r saying
 * why not. */
static int blob_at(struct stage_tools *t, const char *path, struct src_repo_blob *b,
                   struct stage_tool_result *r)
{
    const char *why = stage_tool_path_problem(path, 0);
    if (why) {
        stage_tool_result_error(r, STAGE_TOOL_MALFORMED, "read_file: %s", why);
        return -1;
    }
    enum src_repo_kind kind = SRC_REPO_NONE;
    struct bh_err err = {0};
    int rc = src_repo_read(t->repo, path, b, &kind, &err);
    if (rc == BH_ENOTFOUND && kind == SRC_REPO_NONE)
        stage_tool_result_tree_error(t, r,
                                     "there is no file '%s' at the pull request's head "
                                     "commit — list_files shows the files there are",
                                     path);
    else if (rc == BH_ENOTFOUND && kind == SRC_REPO_DIR)
        stage_tool_result_tree_error(t, r,
                                     "'%s' is a folder — list_files with dir \"%s\" "
                                     "lists it",
                                     path, path);
    else if (rc == BH_ENOTFOUND)
        stage_tool_result_tree_error(t, r,
                                     "'%s' is a submodule: its files are in another "
                                     "repository",
                                     path);
    else if (rc < 0)
        stage_tool_result_tree_error(t, r, "%s", err.msg);
    if (rc == 0 && b->binary) {
        stage_tool_result_tree_error(t, r, "'%s' is a binary file (%llu bytes): it is not shown",
                                     path, (unsigned long long)b->size);
        /* Its size and that it is binary come from its content, which no
         * detector can vouch for: the file's label (top). */
        const char *said = NULL;
        int l = stage_tool_file_label(t, path, b, &said);
        stage_tool_result_depends(t, r, l, said);
        src_repo_blob_release(b);
        rc = -1;
    }
    return rc == 0 ? 0 : -1;
}

static long lines_of(const char *data, size_t size)
{
    long n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n + (size > 0 && data[size - 1] != '\n');
}

/* Shows lines [from, to] of data, numbered; *last gets the last line shown. */
static void lines_show(struct stage_tool_out *o, const char *data, size_t size, long from, long to,
                       long *last)
{
    long no = 1;
    *last = from - 1;
    for (size_t at = 0; at < size && no <= to; no++) {
        const char *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        if (no >= from) {
            int cut = len > LINE_SHOW_MAX;
            if (stage_tool_out_printf(o, "%ld: %.*s%s\n", no, (int)(cut ? LINE_SHOW_MAX : len),
                                      data + at, cut ? " [line cut]" : ""))
                return;
            *last = no;
        }
        at += len + 1;
    }
}

void stage_tool_read_file(struct stage_tools *t, const struct stage_tool_args *a,
                          struct stage_tool_result *r)
{
    const char *path = a->str[0];
    long from = a->has[1] ? a->num[1] : 1, to = a->has[2] ? a->num[2] : -1;
    if (from < 1 || (a->has[2] && to < from)) {
        stage_tool_result_error(r, STAGE_TOOL_MALFORMED,
                                "read_file: start_line must be 1 or "
                                "more and end_line at least start_line (got %ld and %ld)",
                                from, to);
        return;
    }
    struct src_repo_blob b;
    if (blob_at(t, path, &b, r))
        return;
    const char *data = b.data;
    size_t size = b.size;
    long n = lines_of(data, size), last = 0;
    const char *why = NULL;
    if (to < 0 || to > n)
        to = n;
    if (n > 0 && from > n) {
        stage_tool_result_tree_error(t, r, "'%s' has %ld lines: start_line %ld is past its end",
                                     path, n, from);
        int l = stage_tool_file_label(t, path, &b, &why);
        stage_tool_result_depends(t, r, l, why);
    } else {
        struct stage_tool_out o;
        char note[160] = "";
        stage_tool_out_init(&o, t->max);
        /* Whatever lines are asked for, they are the file's: lines 2-6 of a
         * key file are the key without the line a detector knows it by. */
        int l = stage_tool_file_label(t, path, &b, &why);
        stage_tool_out_depends(t, &o, l, why);
        stage_tool_out_part(&o, path);
        if (n)
            stage_tool_out_printf(&o, "%s, lines %ld-%ld of %ld:\n", path, from, to, n);
        else
            stage_tool_out_printf(&o, "%s is empty\n", path);
        lines_show(&o, data, size, from, to, &last);
        if (o.truncated)
            snprintf(note, sizeof(note),
                     "[cut at %zu bytes after line %ld: read on with "
                     "start_line %ld]",
                     t->max, last, last + 1);
        stage_tool_result_ok(t, &o, "pr.diff", note[0] ? note : NULL, r);
    }
    src_repo_blob_release(&b);
}

/* ---- tree walks ----------------------------------------------------------- */

/* 0 when dir ("" the root) is a folder of the head tree, else -1 with r
 * saying why not. */
static int dir_check(struct stage_tools *t, const char *tool, const char *dir,
                     struct stage_tool_result *r)
{
    if (!dir[0])
        return 0;
    const char *why = stage_tool_path_problem(dir, 1);
    if (why) {
        stage_tool_result_error(r, STAGE_TOOL_MALFORMED, "%s: %s", tool, why);
        return -1;
    }
    if (src_repo_kind_at(t->repo, dir) == SRC_REPO_DIR)
        return 0;
    stage_tool_result_tree_error(t, r,
                                 "there is no folder '%s' at the pull request's head "
                                 "commit — list_files without dir shows every file",
                                 dir);
    return -1;
}

struct walk {
    struct stage_tools *t;
    struct stage_tool_out *o;
    const char *glob;                  /* NULL: every file */
    regex_t re;                        /* grep */
    size_t shown;                      /* paths (list_files) or lines (grep) */
    size_t matched, searched, skipped; /* grep: files */
    int stop;
};

/* 1 when e is a file the glob takes. */
static int walk_takes(const struct walk *w, const struct src_repo_entry *e)
{
    return e->kind == SRC_REPO_FILE && (!w->glob || bh_glob_match(w->glob, e->path));
}

/* ---- list_files ------------------------------------------------------------ */

static int list_cb(struct src_repo *repo, const struct src_repo_entry *e, void *payload)
{
    struct walk *w = payload;
    (void)repo;
    if (!walk_takes(w, e))
        return 0;
    if (w->shown == STAGE_TOOL_LIST_MAX || stage_tool_out_printf(w->o, "%s\n", e->path)) {
        w->o->truncated = 1;
        w->stop = 1;
    } else {
        w->shown++;
    }
    return w->stop ? -1 : 0;
}

void stage_tool_list_files(struct stage_tools *t, const struct stage_tool_args *a,
                           struct stage_tool_result *r)
{
    const char *bad = a->has[1] ? bh_glob_problem(a->str[1]) : NULL;
    if (bad) {
        stage_tool_result_error(r, STAGE_TOOL_MALFORMED, "list_files: the glob: %s", bad);
        return;
    }
    char *dir = dir_norm(a->has[0] ? a->str[0] : NULL);
    if (dir_check(t, "list_files", dir, r) == 0) {
        struct stage_tool_out o;
        struct walk w = {.t = t, .o = &o, .glob = a->has[1] ? a->str[1] : NULL};
        stage_tool_out_init(&o, t->max);
        /* A listing, cut or filtered, is computed from the tree's paths. */
        const char *why = NULL;
        int l = stage_tool_tree_label(t, &why);
        stage_tool_out_depends(t, &o, l, why);
        src_repo_walk(t->repo, dir, list_cb, &w);
        char note[160];
        if (o.truncated)
            snprintf(note, sizeof(note),
                     "[cut after %zu paths: narrow the listing with dir or "
                     "glob]",
                     w.shown);
        else
            snprintf(note, sizeof(note), "(%zu files)", w.shown);
        stage_tool_result_ok(t, &o, "pr.files", note, r);
    }
    free(dir);
}

/* ---- grep ----------------------------------------------------------------- */

static void grep_blob(struct walk *w, const char *path, const char *data, size_t size)
{
    size_t no = 0;
    int hit = 0;
    for (size_t at = 0; at < size && !w->stop;) {
        const char *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        regmatch_t m[1] = {{0, (regoff_t)len}};
        no++;
        if (regexec(&w->re, data + at, 1, m, REG_STARTEND) == 0) {
            int cut = len > LINE_SHOW_MAX;
            if (w->shown == STAGE_TOOL_GREP_LINES ||
                stage_tool_out_printf(w->o, "%s:%zu: %.*s%s\n", path, no,
                                      (int)(cut ? LINE_SHOW_MAX : len), data + at,
                                      cut ? " [line cut]" : "")) {
                w->o->truncated = 1;
                w->stop = 1;
                break;
            }
            w->shown++;
            hit = 1;
        }
        at += len + 1;
    }
    w->matched += hit;
}

static int grep_cb(struct src_repo *repo, const struct src_repo_entry *e, void *payload)
{
    struct walk *w = payload;
    struct src_repo_blob b = {0};
    struct bh_err err = {0};
    if (!walk_takes(w, e))
        return 0;
    int read = src_repo_entry_read(repo, e, &b, &err) == 0;
    /* Every file the search looked at counts whole, matched or not, shown
     * or not: "no match", a line cut before the match, and a file left out
     * as binary all say something of its content. */
    const char *why = NULL;
    int l = stage_tool_file_label(w->t, e->path, read ? &b : NULL, &why);
    stage_tool_out_depends(w->t, w->o, l, why);
    if (!read || b.binary || b.size > STAGE_TOOL_FILE_MAX) {
        w->skipped++;
    } else {
        w->searched++;
        stage_tool_out_part(w->o, e->path);
        grep_blob(w, e->path, b.data, b.size);
    }
    src_repo_blob_release(&b);
    return w->stop ? -1 : 0;
}

static void grep_note(const struct walk *w, char *note, size_t size)
{
    char skipped[96] = "";
    if (w->skipped)
        snprintf(skipped, sizeof(skipped), "; %zu binary or over %zu KiB not searched", w->skipped,
                 STAGE_TOOL_FILE_MAX >> 10);
    if (w->stop)
        snprintf(note, size,
                 "[stopped after %zu matching lines: narrow the search with "
                 "path_glob or a longer pattern]",
                 w->shown);
    else if (w->shown)
        snprintf(note, size, "(%zu matching lines in %zu files; %zu files searched%s)", w->shown,
                 w->matched, w->searched, skipped);
    else
        snprintf(note, size, "(no line matches; %zu files searched%s)", w->searched, skipped);
}

void stage_tool_grep(struct stage_tools *t, const struct stage_tool_args *a,
                     struct stage_tool_result *r)
{
    const char *bad = a->has[1] ? bh_glob_problem(a->str[1]) : NULL;
    if (bad) {
        stage_tool_result_error(r, STAGE_TOOL_MALFORMED, "grep: the path_glob: %s", bad);
        return;
    }
    struct stage_tool_out o;
    struct walk w = {.t = t, .o = &o, .glob = a->has[1] ? a->str[1] : NULL};
    int rc = regcomp(&w.re, a->str[0], REG_EXTENDED);
    if (rc) {
        char why[160];
        regerror(rc, &w.re, why, sizeof(why));
        stage_tool_result_error(r, STAGE_TOOL_FAILED,
                                "grep: the pattern does not compile as a "
                                "POSIX extended regular expression: %s",
                                why);
        return;
    }
    stage_tool_out_init(&o, t->max);
    const char *why = NULL;
    int l = stage_tool_tree_label(t, &why); /* which files path_glob took */
    stage_tool_out_depends(t, &o, l, why);
    src_repo_walk(t->repo, "", grep_cb, &w);
    regfree(&w.re);
    char note[256];
    grep_note(&w, note, sizeof(note));
    stage_tool_result_ok(t, &o, "pr.diff", note, r);
}

/* ---- git_log -------------------------------------------------------------- */

static int log_line(struct stage_tool_out *o, const struct src_repo_commit *c)
{
    char date[16] = "?";
    time_t when = (time_t)c->time;
    struct tm tm;
    if (gmtime_r(&when, &tm))
        strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    return stage_tool_out_printf(o, "%.10s %s %s: %s\n", c->id, date, c->author ? c->author : "?",
                                 c->summary ? c->summary : "");
}

/* A log being shown: its lines into o, and the whole message of every
 * commit shown, which its title line is cut from, into msgs (capped: past
 * the cap the label is top). */
struct log_show {
    struct stage_tool_out *o;
    struct bh_buf msgs;
    int over;
    size_t shown, n;
};

static int log_cb(const struct src_repo_commit *c, void *payload)
{
    struct log_show *l = payload;
    if (log_line(l->o, c))
        return 1;
    if (!l->over && bh_buf_printf(&l->msgs, "%s\n", c->message ? c->message : "") != 0)
        l->over = 1;
    return ++l->shown == l->n;
}

static size_t log_walk(struct stage_tools *t, struct stage_tool_out *o, const char *path, long n,
                       int *msgs_label, char *msgs_why)
{
    struct log_show l = {.o = o, .n = (size_t)n};
    bh_buf_init(&l.msgs, DET_MAX_BYTES);
    src_repo_log(t->repo, path, STAGE_TOOL_LOG_WALK, log_cb, &l);
    *msgs_label = stage_tool_text_label(t, "git_log",
                                        l.over        ? NULL
                                        : l.msgs.data ? l.msgs.data
                                                      : "",
                                        l.msgs.len, "the messages of the commits shown", msgs_why);
    bh_buf_release(&l.msgs);
    return l.shown;
}

void stage_tool_git_log(struct stage_tools *t, const struct stage_tool_args *a,
                        struct stage_tool_result *r)
{
    long n = a->has[1] ? a->num[1] : STAGE_TOOL_LOG_DEFAULT;
    const char *why = a->has[0] ? stage_tool_path_problem(a->str[0], 1) : NULL;
    if (why || n < 1) {
        stage_tool_result_error(r, STAGE_TOOL_MALFORMED, "git_log: %s",
                                why ? why : "n must be 1 or more");
        return;
    }
    char *path = dir_norm(a->has[0] ? a->str[0] : NULL);
    char note[160] = "";
    struct stage_tool_out o;
    stage_tool_out_init(&o, t->max);
    int msgs_label = 0;
    char msgs_why[STAGE_TOOL_WHY] = "";
    size_t shown = log_walk(t, &o, path, n > STAGE_TOOL_LOG_MAX ? STAGE_TOOL_LOG_MAX : n,
                            &msgs_label, msgs_why);
    stage_tool_out_depends(t, &o, msgs_label, msgs_why);
    if (n > STAGE_TOOL_LOG_MAX)
        snprintf(note, sizeof(note), "(at most %d commits are shown)", STAGE_TOOL_LOG_MAX);
    else if (shown == 0)
        snprintf(note, sizeof(note), "(no commit found%s%s)", path[0] ? " that changed " : "",
                 path);
    stage_tool_result_ok(t, &o, "git_log", note[0] ? note : NULL, r);
    free(path);
}

/* ---- diff ----------------------------------------------------------------- */

static const struct src_part *diff_part(const struct src_field *f, const char *path)
{
    for (size_t i = 0; i < f->n_parts; i++)
        if (strcmp(f->parts[i].path, path) == 0)
            return &f->parts[i];
    return NULL;
}

/* The parts of f, each as a part of o, until the cap. */
static void diff_copy(struct stage_tool_out *o, const struct src_field *f,
                      const struct src_part *only)
{
    for (size_t i = 0; i < f->n_parts; i++) {
        const struct src_part *p = &f->parts[i];
        if (only && p != only)
            continue;
        stage_tool_out_part_of(o, p);
        if (stage_tool_out_put(o, f->value + p->offset, p->length))
            break;
    }
}

/* What a diff result depends on, labelled as the engine labels pr.diff and
 * each.diff: the whole field, or one file's part on its own (copied whole,
 * so whatever the part records of the paths it touches goes with it). */
static int diff_label(struct stage_tools *t, const struct src_field *f, const struct src_part *only,
                      char *why)
{
    struct pol_value v;
    if (only) {
        struct src_part one = *only;
        one.offset = 0;
        pol_label_value(t->lab, "pr.diff", pipe_source_field_label(t->p, "pr.diff"),
                        f->value + only->offset, only->length, &one, 1, NULL, &v);
    } else {
        pol_label_field(t->lab, f, &v);
    }
    int label = v.label;
    stage_tool_why(t, &v, "the pull request's diff", why);
    pol_value_release(&v);
    return label;
}

/* The label of the list of paths the diff has a part for: what "the pull
 * request does not change X" depends on. */
static int diff_paths_label(struct stage_tools *t, const struct src_field *f, char *why)
{
    struct bh_buf b;
    int over = 0;
    bh_buf_init(&b, DET_MAX_BYTES);
    for (size_t i = 0; i < f->n_parts && !over; i++)
        over = bh_buf_printf(&b, "%s\n", f->parts[i].path) != 0;
    int label = stage_tool_text_label(t, "pr.files",
                                      over     ? NULL
                                      : b.data ? b.data
                                               : "",
                                      b.len, "the paths the diff changes", why);
    bh_buf_release(&b);
    return label;
}

void stage_tool_diff(struct stage_tools *t, const struct stage_tool_args *a,
                     struct stage_tool_result *r)
{
    const struct src_field *f = t->diff;
    const char *path = a->has[0] ? a->str[0] : NULL;
    const char *why = path ? stage_tool_path_problem(path, 0) : NULL;
    const struct src_part *only = NULL;
    char words[STAGE_TOOL_WHY] = "";
    if (why) {
        stage_tool_result_error(r, STAGE_TOOL_MALFORMED, "diff: %s", why);
        return;
    }
    if (!f || !f->value) {
        stage_tool_result_tree_error(t, r, "the pull request's diff is not available%s%s",
                                     f && f->error ? ": " : "", f && f->error ? f->error : "");
        if (f) { /* why it could not be read (its size) is about its content: unknown, top */
            int l = diff_label(t, f, NULL, words);
            stage_tool_result_depends(t, r, l, words);
        }
        return;
    }
    if (path && !(only = diff_part(f, path))) {
        stage_tool_result_tree_error(t, r,
                                     "the pull request does not change '%s' — diff "
                                     "without a path shows every file it changes",
                                     path);
        int l = diff_paths_label(t, f, words);
        stage_tool_result_depends(t, r, l, words);
        return;
    }
    struct stage_tool_out o;
    char note[160] = "";
    stage_tool_out_init(&o, t->max);
    int l = diff_label(t, f, only, words); /* a cut diff too: all of it */
    stage_tool_out_depends(t, &o, l, words);
    diff_copy(&o, f, only);
    if (o.truncated)
        snprintf(note, sizeof(note),
                 "[cut at %zu bytes: ask for one file with diff and its "
                 "path]",
                 t->max);
    else if (f->n_parts == 0)
        snprintf(note, sizeof(note), "(the pull request changes nothing)");
    stage_tool_result_ok(t, &o, "pr.diff", note[0] ? note : NULL, r);
}
