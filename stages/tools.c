/* stages/tools.c — the tool table of agent stages: one row per tool drives
 * the JSON schema sent to the model, the checks of a call's arguments and
 * the dispatch, so what the model is told and what is enforced cannot drift.
 * Also here: the result builder (caps, UTF-8, per-file parts) and labelling
 * through policy/label.h, the one place values get labels. A result is
 * labelled by what it was computed from — whole files, the tree's paths —
 * not by the slice it shows, since answers about hidden bytes (a line range,
 * a match or its absence) add up to the bytes. Whole-file labels cost a
 * detector scan of each file a tool touches; they are cached per path for
 * the life of the tools (one commit, one task), so a series of greps over a
 * large tree scans each file once.
 *
 * A call never fails the task by itself: whatever is wrong with it becomes
 * a result the model reads (status MALFORMED or FAILED), and the agent loop
 * decides how many of those it tolerates. The model may be following
 * instructions planted in the code it reads, so the arguments are treated
 * as hostile: paths are looked up in the tree only, never on disk. */
#include "stages/tools.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "detect/detect.h"
#include "policy/label.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "sources/src_repo.h"
#include "stages/tools_int.h"
#include "util/bh_invariant.h"
#include "util/bh_json.h"
#include "util/bh_str.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

enum arg_type { ARG_STRING, ARG_INT };

struct arg_spec {
    const char *name;
    enum arg_type type;
    int required;
    const char *description;
};

typedef void (*tool_fn)(struct stage_tools *t, const struct stage_tool_args *a,
                        struct stage_tool_result *r);

struct tool_def {
    const char *name;
    const char *description;
    struct arg_spec args[TOOL_MAX_ARGS];
    size_t n_args;
    tool_fn run;
};

static const struct tool_def tools[] = {
    {"read_file",
     "Read a file of the repository at the pull request's head commit, with line numbers. "
     "Long files are cut at 64 KiB: read on with start_line.",
     {{"path", ARG_STRING, 1, "the file's path from the repository root, e.g. src/main.c"},
      {"start_line", ARG_INT, 0, "first line to show (1-based; default 1)"},
      {"end_line", ARG_INT, 0, "last line to show (default: the end of the file)"}},
     3,
     stage_tool_read_file},
    {"list_files",
     "List the files of the repository at the pull request's head commit (at most 2000 paths).",
     {{"dir", ARG_STRING, 0, "a folder to list (default: the whole repository)"},
      {"glob", ARG_STRING, 0, "only paths matching this glob, e.g. **/*.c or *.md"}},
     2,
     stage_tool_list_files},
    {"grep",
     "Search the repository's files at the pull request's head commit for lines matching a "
     "POSIX extended regular expression (at most 200 lines).",
     {{"pattern", ARG_STRING, 1, "a POSIX extended regular expression, e.g. parse_[a-z]+"},
      {"path_glob", ARG_STRING, 0, "only files matching this glob, e.g. src/**/*.c"}},
     2,
     stage_tool_grep},
    {"git_log",
     "List recent commits reachable from the pull request's head: id, date, author and title.",
     {{"path", ARG_STRING, 0, "only commits that changed this file or folder"},
      {"n", ARG_INT, 0, "how many commits (default 10, at most 50)"}},
     2,
     stage_tool_git_log},
    {"diff",
     "Show the pull request's diff (what it changes), or only one file's part of it.",
     {{"path", ARG_STRING, 0, "a changed file's path, e.g. src/parser.c"}},
     1,
     stage_tool_diff},
};

#define N_TOOLS BH_NELEM(tools)

static const struct tool_def *tool_find(const char *name)
{
    for (size_t i = 0; name && i < N_TOOLS; i++)
        if (strcmp(tools[i].name, name) == 0)
            return &tools[i];
    return NULL;
}

int stage_tool_known(const char *name)
{
    return tool_find(name) != NULL;
}

/* ---- opening ------------------------------------------------------------ */

int stage_tools_open(struct stage_tools **out, const struct stage_tools_opts *o, struct bh_err *err)
{
    struct src_repo *repo = NULL;
    int rc = src_repo_open(&repo, o->repo, o->head, "the tools", err);
    if (rc)
        return rc;
    struct stage_tools *t = bh_xcalloc(1, sizeof(*t));
    t->repo = repo;
    t->diff = o->diff;
    t->lab = o->lab;
    t->p = pol_labeller_pipeline(o->lab);
    t->max = o->max_result ? o->max_result : STAGE_TOOL_RESULT_MAX;
    t->tree_label = -1;
    *out = t;
    return 0;
}

void stage_tools_free(struct stage_tools *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap_files; i++) {
        free(t->files[i].path);
        free(t->files[i].why);
    }
    free(t->files);
    src_repo_free(t->repo);
    free(t);
}

/* The declared label a result starts from: a field's, or for git_log the
 * join of pr.title and pr.files (the README's bounds table). */
static int declared_of(const struct pipeline *p, const char *field)
{
    if (strcmp(field, "git_log") == 0)
        return pol_label_join(p, pipe_source_field_label(p, "pr.title"),
                              pipe_source_field_label(p, "pr.files"));
    return pipe_source_field_label(p, field);
}

/* ---- labels of what a result depends on ------------------------------------ */

/* A result says something of every byte it was computed from, not only of
 * the bytes it shows: lines 2-6 of a key file are its key, and "no line
 * matches" is an answer about each file searched. So results are labelled
 * by whole files and whole path lists, through the one labeller. */

/* What decided v's label, in words: the first reason at its label (a rule,
 * a detector with its file and line, why it was unscanned), else the
 * declared label; `what` names the subject when the reason names no file. */
static void value_why(const struct pipeline *p, const struct pol_value *v, const char *what,
                      char *buf, size_t size)
{
    char r[STAGE_TOOL_WHY] = "";
    for (size_t i = 0; i < v->n_reasons && !r[0]; i++) {
        struct pol_reason one = v->reasons[i];
        if (one.label != v->label)
            continue;
        one.in_diff = 0; /* a file read whole, not its diff */
        pol_reason_format(p, &one, r, sizeof(r));
        if (one.path)
            what = NULL;
    }
    if (!r[0])
        snprintf(r, sizeof(r), "declared %s", pol_label_name(p, v->label));
    snprintf(buf, size, "%s%s%s", what ? what : "", what ? ": " : "", r);
}

static size_t path_hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static struct stage_file_label *file_slot(struct stage_tools *t, const char *path)
{
    size_t mask = t->cap_files - 1, i = path_hash(path) & mask;
    while (t->files[i].path && strcmp(t->files[i].path, path) != 0)
        i = (i + 1) & mask;
    return &t->files[i];
}

/* Keeps the table at most half full, so a probe always ends at a hole. */
static void files_grow(struct stage_tools *t)
{
    struct stage_file_label *old = t->files;
    size_t old_cap = t->cap_files;
    t->cap_files = old_cap ? old_cap * 2 : 64;
    t->files = bh_xcalloc(t->cap_files, sizeof(*t->files));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].path)
            *file_slot(t, old[i].path) = old[i];
    free(old);
}

static int file_label_of(struct stage_tools *t, const char *path, const struct src_repo_blob *b,
                         char **out_why)
{
    const char *why = !b          ? "the file could not be read"
                      : b->binary ? "a binary file: its content is not scanned"
                                  : NULL;
    size_t size = b ? b->size : 0;
    struct src_part whole = {.path = (char *)path, .offset = 0, .length = size};
    struct pol_value v;
    pol_label_value(t->lab, "pr.diff", declared_of(t->p, "pr.diff"), why ? NULL : b->data, size,
                    &whole, 1, why, &v);
    int label = v.label;
    char words[STAGE_TOOL_WHY];
    value_why(t->p, &v, path, words, sizeof(words));
    *out_why = bh_xstrdup(words);
    pol_value_release(&v);
    return label;
}

int stage_tool_file_label(struct stage_tools *t, const char *path, const struct src_repo_blob *b,
                          const char **why)
{
    if (2 * (t->n_files + 1) > t->cap_files)
        files_grow(t);
    struct stage_file_label *slot = file_slot(t, path);
    if (!slot->path) {
        slot->label = file_label_of(t, path, b, &slot->why);
        slot->path = bh_xstrdup(path);
        t->n_files++;
    }
    if (why)
        *why = slot->why;
    return slot->label;
}

static int tree_paths_cb(struct src_repo *r, const struct src_repo_entry *e, void *payload)
{
    struct bh_buf *b = payload;
    (void)r;
    if (bh_buf_printf(b, "%s\n", e->path) != 0)
        return -1; /* over the detectors' cap: unscanned */
    return 0;
}

int stage_tool_tree_label(struct stage_tools *t, const char **why)
{
    if (why)
        *why = t->tree_why;
    if (t->tree_label >= 0)
        return t->tree_label;
    struct bh_buf b;
    struct pol_value v;
    bh_buf_init(&b, DET_MAX_BYTES);
    int rc = src_repo_walk(t->repo, "", tree_paths_cb, &b);
    pol_label_value(t->lab, "pr.files", declared_of(t->p, "pr.files"),
                    rc == 0 ? (b.data ? b.data : "") : NULL, b.len, NULL, 0,
                    "the head tree's paths could not be listed whole", &v);
    t->tree_label = v.label;
    value_why(t->p, &v, "the paths of the head tree", t->tree_why, sizeof(t->tree_why));
    pol_value_release(&v);
    bh_buf_release(&b);
    return t->tree_label;
}

int stage_tool_text_label(struct stage_tools *t, const char *field, const char *text, size_t len,
                          const char *what, char *why)
{
    struct pol_value v;
    const char *name = strcmp(field, "git_log") == 0 ? "pr.title" : field;
    pol_label_value(t->lab, name, declared_of(t->p, field), text, len, NULL, 0, "too large to scan",
                    &v);
    int label = v.label;
    if (why)
        value_why(t->p, &v, what, why, STAGE_TOOL_WHY);
    pol_value_release(&v);
    return label;
}

/* Keeps the words of the first thing at the highest label. */
static void why_join(const struct pipeline *p, int *label, char *why, int with, const char *w)
{
    if (with > *label || why[0] == '\0')
        bh_str_put(why, STAGE_TOOL_WHY, "%s", w ? w : "");
    *label = pol_label_join(p, *label, with);
}

void stage_tool_why(struct stage_tools *t, const struct pol_value *v, const char *what, char *why)
{
    value_why(t->p, v, what, why, STAGE_TOOL_WHY);
}

void stage_tool_out_depends(struct stage_tools *t, struct stage_tool_out *o, int label,
                            const char *why)
{
    why_join(t->p, &o->depends, o->why, label, why);
}

void stage_tool_result_depends(struct stage_tools *t, struct stage_tool_result *r, int label,
                               const char *why)
{
    why_join(t->p, &r->label, r->why, label, why);
}

/* ---- results ------------------------------------------------------------ */

void stage_tool_result_release(struct stage_tool_result *r)
{
    if (!r)
        return;
    free(r->text);
    memset(r, 0, sizeof(*r));
}

void stage_tool_out_init(struct stage_tool_out *o, size_t max)
{
    memset(o, 0, sizeof(*o));
    o->max = max;
    bh_buf_init(&o->b, max + 1); /* the cap is ours: the buffer never refuses below it */
}

void stage_tool_out_release(struct stage_tool_out *o)
{
    bh_buf_release(&o->b);
    for (size_t i = 0; i < o->n_parts; i++) {
        free(o->parts[i].path);
        free(o->parts[i].old_path);
    }
    free(o->parts);
    memset(o, 0, sizeof(*o));
}

int stage_tool_out_put(struct stage_tool_out *o, const char *p, size_t n)
{
    if (o->truncated)
        return 1;
    size_t room = o->max - o->b.len;
    if (n > room) {
        n = room; /* a character cut in two becomes '?' when the text is finished */
        o->truncated = 1;
    }
    bh_buf_append(&o->b, p, n);
    return o->truncated;
}

int stage_tool_out_printf(struct stage_tool_out *o, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = bh_xmalloc(n < 0 ? 1 : (size_t)n + 1);
    n = n < 0 ? 0 : vsnprintf(s, (size_t)n + 1, fmt, aq);
    va_end(aq);
    if (!o->truncated && (size_t)n > o->max - o->b.len)
        o->truncated = 1; /* whole lines or nothing: a listing never ends in half a path */
    if (!o->truncated)
        bh_buf_append(&o->b, s, (size_t)n);
    free(s);
    return o->truncated;
}

void stage_tool_out_part(struct stage_tool_out *o, const char *path)
{
    o->parts = bh_xgrow(o->parts, &o->cap_parts, o->n_parts + 1, sizeof(*o->parts));
    o->parts[o->n_parts++] = (struct src_part){.path = bh_xstrdup(path), .offset = o->b.len};
}

void stage_tool_out_part_of(struct stage_tool_out *o, const struct src_part *from)
{
    stage_tool_out_part(o, from->path);
    struct src_part *p = &o->parts[o->n_parts - 1];
    p->old_path = from->old_path ? bh_xstrdup(from->old_path) : NULL;
    p->whole = from->whole;
}

/* Each part ends where the next begins, the last at the end of the text. */
static void parts_close(struct stage_tool_out *o)
{
    for (size_t i = 0; i < o->n_parts; i++) {
        size_t end = i + 1 < o->n_parts ? o->parts[i + 1].offset : o->b.len;
        o->parts[i].length = end - o->parts[i].offset;
    }
}

/* Every request body must be UTF-8 and every value a C string: a byte that
 * is not part of a valid character, and a NUL, become '?' (same length, so
 * the parts stay where they are). */
static void text_fix(char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int ok = 0;
        size_t k = s[i] ? bh_utf8_seq(s + i, n - i, &ok) : 0;
        if (!ok) {
            s[i++] = '?';
            continue;
        }
        i += k;
    }
}

void stage_tool_result_ok(struct stage_tools *t, struct stage_tool_out *o, const char *field,
                          const char *note, struct stage_tool_result *r)
{
    struct pol_value v;
    text_fix(o->b.data ? o->b.data : (char *)"", o->b.len);
    parts_close(o);
    const char *name = strcmp(field, "git_log") == 0 ? "pr.title" : field;
    pol_label_value(t->lab, name, declared_of(t->p, field), o->b.data ? o->b.data : "", o->b.len,
                    o->parts, o->n_parts, NULL, &v);
    memset(r, 0, sizeof(*r));
    r->label = v.label;
    value_why(t->p, &v, "the text shown", r->why, sizeof(r->why));
    stage_tool_result_depends(t, r, o->depends, o->why);
    r->truncated = o->truncated;
    pol_value_release(&v);
    r->text = bh_buf_detach(&o->b);
    stage_tool_out_release(o);
    if (note) { /* always shown, past the cap: it is ours, a line or two */
        char *text = bh_xasprintf("%s%s%s", r->text, r->text[0] ? "\n" : "", note);
        free(r->text);
        r->text = text;
    }
}

void stage_tool_result_error(struct stage_tool_result *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->text = bh_xasprintf("error: %s", msg);
    text_fix(r->text, strlen(r->text)); /* it may quote the model's own bytes */
}

void stage_tool_result_tree_error(struct stage_tools *t, struct stage_tool_result *r,
                                  const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    stage_tool_result_error(r, STAGE_TOOL_FAILED, "%s", msg);
    struct pol_value v;
    pol_label_value(t->lab, "pr.files", declared_of(t->p, "pr.files"), r->text, strlen(r->text),
                    NULL, 0, NULL, &v);
    r->label = v.label;
    value_why(t->p, &v, "the answer", r->why, sizeof(r->why));
    pol_value_release(&v);
    const char *why = NULL;
    int tree = stage_tool_tree_label(t, &why);
    stage_tool_result_depends(t, r, tree, why);
}

const char *stage_tool_path_problem(const char *path, int dir)
{
    if (!path[0])
        return dir ? NULL : "the path is empty";
    if (path[0] == '/')
        return "absolute paths are not allowed: give the path from the repository root, "
               "e.g. src/main.c";
    if (dir && strcmp(path, ".") == 0)
        return NULL;
    for (const char *s = path; *s;) {
        size_t n = strcspn(s, "/");
        if (n == 0 && s[n] == '/')
            return "the path has an empty segment ('//')";
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return "'.' and '..' segments are not allowed: give the path from the repository "
                   "root, e.g. src/main.c";
        s += n;
        if (*s == '/')
            s++;
    }
    return NULL;
}

/* ---- arguments ---------------------------------------------------------- */

static const char *type_name(enum arg_type t)
{
    return t == ARG_STRING ? "a string" : "a whole number";
}

/* A whole number given as a JSON integer, an integral real or a string of
 * digits (small models often quote numbers). */
static int int_of(json_t *v, long *out)
{
    if (json_is_integer(v)) {
        *out = (long)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) == (double)(long)json_real_value(v)) {
        *out = (long)json_real_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    char *end = NULL;
    if (!s || !s[0] || strlen(s) > 9)
        return -1;
    *out = strtol(s, &end, 10);
    return *end ? -1 : 0;
}

static int arg_take(const struct tool_def *d, size_t i, json_t *v, struct stage_tool_args *a,
                    struct stage_tool_result *r)
{
    const struct arg_spec *s = &d->args[i];
    if (json_is_null(v))
        return 0; /* an optional argument sent as null is absent */
    if (s->type == ARG_STRING && json_is_string(v))
        a->str[i] = json_string_value(v);
    else if (s->type != ARG_INT || int_of(v, &a->num[i]) != 0) {
        stage_tool_result_error(r, STAGE_TOOL_MALFORMED, "argument '%s' of %s must be %s", s->name,
                                d->name, type_name(s->type));
        return -1;
    }
    a->has[i] = 1;
    return 0;
}

static int arg_index(const struct tool_def *d, const char *key)
{
    for (size_t i = 0; i < d->n_args; i++)
        if (strcmp(d->args[i].name, key) == 0)
            return (int)i;
    return -1;
}

static void arg_names(const struct tool_def *d, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < d->n_args; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? ", " : "", d->args[i].name);
}

static int args_check(const struct tool_def *d, json_t *obj, struct stage_tool_args *a,
                      struct stage_tool_result *r)
{
    const char *key;
    json_t *v;
    char names[128];
    arg_names(d, names, sizeof(names));
    json_object_foreach(obj, key, v)
    {
        int i = arg_index(d, key);
        if (i < 0) {
            stage_tool_result_error(r, STAGE_TOOL_MALFORMED,
                                    "%s has no argument '%.64s' (its "
                                    "arguments: %s)",
                                    d->name, key, names);
            return -1;
        }
        if (arg_take(d, (size_t)i, v, a, r))
            return -1;
    }
    for (size_t i = 0; i < d->n_args; i++)
        if (d->args[i].required && !a->has[i]) {
            stage_tool_result_error(r, STAGE_TOOL_MALFORMED, "%s needs the argument '%s' (%s)",
                                    d->name, d->args[i].name, type_name(d->args[i].type));
            return -1;
        }
    return 0;
}

void stage_tools_call(struct stage_tools *t, const char *name, const char *arguments_json,
                      struct stage_tool_result *out)
{
    const struct tool_def *d = tool_find(name);
    if (!d) {
        stage_tool_result_error(out, STAGE_TOOL_MALFORMED,
                                "there is no tool '%.64s' (tools: "
                                "read_file, list_files, grep, git_log, diff)",
                                name ? name : "");
        return;
    }
    if (!arguments_json) { /* the provider found the model's arguments malformed */
        stage_tool_result_error(out, STAGE_TOOL_MALFORMED,
                                "the arguments of %s must be a JSON "
                                "object, e.g. {\"%s\": ...}: what was sent is not one",
                                d->name, d->args[0].name);
        return;
    }
    json_error_t je;
    json_t *obj = json_loads(arguments_json, JSON_REJECT_DUPLICATES, &je);
    struct stage_tool_args a;
    memset(&a, 0, sizeof(a));
    if (!json_is_object(obj))
        stage_tool_result_error(out, STAGE_TOOL_MALFORMED,
                                "the arguments of %s must be a JSON "
                                "object, e.g. {\"%s\": ...}%s%s",
                                d->name, d->args[0].name,
                                obj ? "" : " — invalid JSON: ", obj ? "" : je.text);
    else if (args_check(d, obj, &a, out) == 0)
        d->run(t, &a, out);
    json_decref(obj);
}

/* ---- schema ------------------------------------------------------------- */

static json_t *parameters_of(const struct tool_def *d, int *bad)
{
    json_t *props = json_object(), *required = json_array();
    for (size_t i = 0; i < d->n_args; i++) {
        const struct arg_spec *s = &d->args[i];
        bh_json_set(props, s->name,
                    json_pack("{s:s, s:s}", "type", s->type == ARG_STRING ? "string" : "integer",
                              "description", s->description),
                    bad);
        if (s->required)
            bh_json_push(required, json_string(s->name), bad);
    }
    return json_pack("{s:s, s:o, s:o}", "type", "object", "properties", props, "required",
                     required);
}

char *stage_tools_json(const char *const *names, size_t n)
{
    json_t *arr = json_array();
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tool_def *d = tool_find(names[i]);
        if (d)
            bh_json_push(arr,
                         json_pack("{s:s, s:{s:s, s:s, s:o}}", "type", "function", "function",
                                   "name", d->name, "description", d->description, "parameters",
                                   parameters_of(d, &bad)),
                         &bad);
    }
    /* The table is ours and ASCII: a tool missing from what the model is
     * told would be a bug, not an input to handle. */
    BH_INVARIANT(!bad, "every granted tool's definition can be written as JSON");
    size_t made = json_array_size(arr);
    char *out = made ? bh_json_dump(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (made && !out)
        abort(); /* out of memory */
    return out;
}
