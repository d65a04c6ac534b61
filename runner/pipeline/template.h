/* pipeline/template.h — prompt templates: text with {{ field }} placeholders.
 * Parsing (syntax only) and checking (do the fields exist) are separate so
 * that the parser can be fuzzed and tested without a pipeline. Internal to
 * the pipeline module; the rest of bulkhead sees struct pipe_tpl in
 * pipeline.h. Functions return 0 or BH_EINVAL and fill *err with the
 * template's file, line and column. */
#ifndef PIPE_TEMPLATE_H
#define PIPE_TEMPLATE_H

#include <stddef.h>

struct bh_err;
struct pipe_tpl;

/* The names a template may read. */
struct pipe_tpl_scope {
    const char *const *fields; /* the source's fields, e.g. "pr.diff" */
    size_t n_fields;
    const char *const *stages; /* every stage's name */
    size_t n_stages;
    const char *for_each;    /* the stage's for_each, or NULL */
    const char *const *each; /* what it provides (pipe_for_each_fields) */
    size_t n_each;
};

/* Parses text (len bytes) into t, which must be zeroed. file is the path the
 * text was read from (copied into t->file, used in errors). Literal text
 * becomes parts with is_field 0 (empty literals are left out); each
 * placeholder a part with is_field 1, text the trimmed field name, and the
 * line and column (in characters, 1-based) of its first '{'. Literal parts
 * carry the position of their first character. There is no escape for a
 * literal "{{". On error t is released (zeroed). */
int pipe_tpl_parse(struct pipe_tpl *t, const char *file, const char *text, size_t len,
                   struct bh_err *err);

/* Checks that every placeholder of t names a source field, <stage>.output
 * of a stage in scope, or a field of the for_each element ("each.path",
 * "each"). Reading "each" or "each.*" outside a for_each stage is an error
 * that says so. Errors carry a did-you-mean where one is close. */
int pipe_tpl_check(const struct pipe_tpl *t, const struct pipe_tpl_scope *scope,
                   struct bh_err *err);

/* The index in scope->stages of the stage whose output field reads, or -1
 * (a source field, or not a valid stage output). */
long pipe_tpl_field_stage(const char *field, const struct pipe_tpl_scope *scope);

/* Frees what t owns and zeroes it. NULL is fine. */
void pipe_tpl_release(struct pipe_tpl *t);

#endif
