/* stages/tools_int.h — private to the tools: the open repository, the
 * parsed arguments of a call, and the result builder shared by tools.c (the
 * table, argument checks, labels) and tools_repo.c (what each tool reads).
 * The repository is read through sources/src_repo.h; the result's parts
 * stay inside these two files. */
#ifndef STAGE_TOOLS_INT_H
#define STAGE_TOOLS_INT_H

#include <stddef.h>

#include "stages/tools.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"

struct pipeline;
struct src_part;
struct src_repo;
struct src_repo_blob;

/* The label of one file of the head tree, whole (see stage_tool_file_label). */
struct stage_file_label {
    char *path; /* NULL: an empty slot */
    int label;
    char *why; /* what decided it, in words */
};

struct stage_tools {
    struct src_repo *repo; /* at the head commit */
    const struct src_field *diff;
    const struct pol_labeller *lab;
    const struct pipeline *p;
    size_t max; /* bytes of one result */
    /* Labels of whole files by path, an open-addressing table: the tools
     * read one commit, so a path's label never changes while they are open,
     * and a series of greps labels each file once. */
    struct stage_file_label *files;
    size_t n_files, cap_files; /* cap_files: 0 or a power of two */
    int tree_label;            /* every path of the head tree; -1 until computed */
    char tree_why[STAGE_TOOL_WHY];
};

/* A call's arguments by their position in the tool's table row: strings
 * borrowed from the parsed JSON until the call ends. */
#define TOOL_MAX_ARGS 3
struct stage_tool_args {
    const char *str[TOOL_MAX_ARGS];
    long num[TOOL_MAX_ARGS];
    int has[TOOL_MAX_ARGS];
};

/* The text of a result as it is built: capped at max (what does not fit is
 * cut and `truncated` set), with the file each byte range is about for the
 * results that hold file contents (path rules label per file). */
struct stage_tool_out {
    struct bh_buf b;
    size_t max;
    int truncated;
    int depends;              /* the join of what the text depends on beyond what it shows (whole
                                 files, every path searched), joined into the result's label */
    char why[STAGE_TOOL_WHY]; /* what decided depends */
    struct src_part *parts;
    size_t n_parts, cap_parts;
};

void stage_tool_out_init(struct stage_tool_out *o, size_t max);
void stage_tool_out_release(struct stage_tool_out *o);
/* Appends what fits of p[0..n); returns 1 once the cap is reached (the
 * caller stops), else 0. */
int stage_tool_out_put(struct stage_tool_out *o, const char *p, size_t n);
/* Appends the formatted text whole, or nothing and sets truncated when it
 * does not fit; returns 1 once the cap is reached. */
int stage_tool_out_printf(struct stage_tool_out *o, const char *fmt, ...) BH_PRINTF(2, 3);
/* Starts the part about path at the current end (ended by the next part or
 * the end of the text). A file searched without a hit gets an empty part:
 * its rule still counts. */
void stage_tool_out_part(struct stage_tool_out *o, const char *path);
/* Starts a part that is a copy of a diff's part: about its path and old path
 * (a rename: both label it), borrowing its whole files, which the item owns
 * and outlive the result's labelling. */
void stage_tool_out_part_of(struct stage_tool_out *o, const struct src_part *from);

/* The text being built depends on something labelled `label` (a whole
 * file it showed a slice of or searched, the tree's paths). */
void stage_tool_out_depends(struct stage_tools *t, struct stage_tool_out *o, int label,
                            const char *why);
/* The same for a finished result (an error that says something of a file). */
void stage_tool_result_depends(struct stage_tools *t, struct stage_tool_result *r, int label,
                               const char *why);

/* The label of the whole file at path in the head tree, whatever part of
 * it a result shows: pr.diff's declared label with the path rules for path,
 * raised by the detectors over the whole file b. A file that cannot be
 * scanned whole — b NULL (not readable), binary, or over the detectors' cap
 * — is the top label (unknown means top). Cached per path for the life of
 * t (one commit). *why (may be NULL) gets what decided it, borrowed from t. */
int stage_tool_file_label(struct stage_tools *t, const char *path, const struct src_repo_blob *b,
                          const char **why);

/* The label of the head tree's list of paths (every file, as pr.files, with
 * the detectors over all of them): what a listing, a "no such file" answer
 * or the count of files a grep searched depends on. Computed once. *why as
 * for stage_tool_file_label. */
int stage_tool_tree_label(struct stage_tools *t, const char **why);

/* The label of text[0..len) read as the source field `field` (as
 * stage_tool_result_ok labels a result, without parts): for what a result
 * depends on that is not a file, e.g. the whole messages of commits. text
 * NULL: it could not be read whole (top). why (STAGE_TOOL_WHY bytes, or
 * NULL) gets what decided the label, prefixed with `what`. */
int stage_tool_text_label(struct stage_tools *t, const char *field, const char *text, size_t len,
                          const char *what, char *why);

/* What decided v's label, in words, into why (STAGE_TOOL_WHY bytes): the
 * first reason at its label, `what` naming the subject when the reason names
 * no file. */
struct pol_value;
void stage_tool_why(struct stage_tools *t, const struct pol_value *v, const char *what, char *why);

/* Ends a successful call: the text of o is labelled as the source field
 * `field` (declared label of field, or of pr.title joined with pr.files for
 * git_log) with o's parts, joined with o->depends, then `note` (may be NULL; the caller's words
 * about caps or counts, no repository data) is appended. Takes o's text. */
void stage_tool_result_ok(struct stage_tools *t, struct stage_tool_out *o, const char *field,
                          const char *note, struct stage_tool_result *r);
/* A result that says something of the repository's tree (a file that is
 * not there): labelled as list_files' results. */
void stage_tool_result_tree_error(struct stage_tools *t, struct stage_tool_result *r,
                                  const char *fmt, ...) BH_PRINTF(3, 4);
/* A result that only repeats the call (a bad argument): the bottom label. */
void stage_tool_result_error(struct stage_tool_result *r, int status, const char *fmt, ...)
    BH_PRINTF(3, 4);
/* NULL when path may name something in the tree, else why not (for a
 * malformed-call result). dir: "" and "." are the root. */
const char *stage_tool_path_problem(const char *path, int dir);

/* The tools (tools_repo.c). Each fills r; a: by the argument order of the
 * tool's row in tools.c. */
void stage_tool_read_file(struct stage_tools *t, const struct stage_tool_args *a,
                          struct stage_tool_result *r);
void stage_tool_list_files(struct stage_tools *t, const struct stage_tool_args *a,
                           struct stage_tool_result *r);
void stage_tool_grep(struct stage_tools *t, const struct stage_tool_args *a,
                     struct stage_tool_result *r);
void stage_tool_git_log(struct stage_tools *t, const struct stage_tool_args *a,
                        struct stage_tool_result *r);
void stage_tool_diff(struct stage_tools *t, const struct stage_tool_args *a,
                     struct stage_tool_result *r);

#endif
