/* pipeline/posindex.h — where every value of a JSON text sits (line and
 * column), by JSON path. jansson reports positions only for syntax errors;
 * errors found while validating a parsed document look their position up
 * here. Internal to the pipeline module.
 *
 * JSON paths: members are joined with '.', array elements with [i]
 * (stages.review.after[1], endpoints.gpu-box.url). A key that is not made of
 * letters, digits, '_' and '-' is written ["key"] (source.fields["pr.diff"])
 * so that a key containing a dot cannot be mistaken for nesting. The root's
 * path is "". Both the scanner and the loader build paths with the
 * pipe_path_* functions below, so the two always agree. */
#ifndef PIPE_POSINDEX_H
#define PIPE_POSINDEX_H

#include <stddef.h>

/* Longest path recorded; values deeper or under longer keys are skipped. */
#define PIPE_PATH_MAX 256

struct pipe_pos {
    char *path;
    int line, col;         /* of the value's first character (1-based) */
    int key_line, key_col; /* of its key's opening quote; 0 for array elements and the root */
};

struct pipe_posindex; /* opaque */

/* Scans text (len bytes; need not be NUL-terminated) and records the position
 * of every value. Columns count characters: a UTF-8 sequence is one column, a
 * tab is one column, "\r" before "\n" is the last column of its line (the
 * same convention as jansson's syntax errors). Never fails: on text that is
 * not valid JSON, or nested deeper than 2048 levels, the index holds what was
 * recorded before the problem and pipe_posindex_complete() returns 0. Free
 * with pipe_posindex_free(). */
struct pipe_posindex *pipe_posindex_build(const char *text, size_t len);
void pipe_posindex_free(struct pipe_posindex *ix); /* NULL is fine */

/* An empty index for pipe_posindex_add() (the YAML loader takes positions
 * from libyaml's marks instead of scanning). It reads as complete. */
struct pipe_posindex *pipe_posindex_new(void);

/* Records pos (its path is copied). A path recorded twice keeps its first
 * position. */
void pipe_posindex_add(struct pipe_posindex *ix, const struct pipe_pos *pos);

/* 1 when the whole text was scanned without a problem. */
int pipe_posindex_complete(const struct pipe_posindex *ix);

/* The position of the value at path, or NULL. Borrowed until the index is
 * freed. ix may be NULL (gives NULL). */
const struct pipe_pos *pipe_posindex_get(const struct pipe_posindex *ix, const char *path);

/* Number of values recorded. */
size_t pipe_posindex_count(const struct pipe_posindex *ix);

/* Appends a member key (klen bytes) to the path in buf (len bytes used, size
 * bytes available), keeping it NUL-terminated. Returns the new length, or
 * (size_t)-1 when it would not fit (buf is then unchanged). */
size_t pipe_path_key(char *buf, size_t size, size_t len, const char *key, size_t klen);

/* Appends "[i]" the same way. */
size_t pipe_path_index(char *buf, size_t size, size_t len, size_t i);

#endif
