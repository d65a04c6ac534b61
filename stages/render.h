/* stages/render.h — prompt rendering: a template's placeholders replaced by
 * field values, and the label of the result computed as the join of the
 * labels of everything substituted (a template without fields is public:
 * the pipeline author wrote it). */
#ifndef STAGE_RENDER_H
#define STAGE_RENDER_H

#include <stddef.h>

struct bh_err;
struct pipeline;
struct pipe_tpl;

/* Finds a field's value (borrowed until rendering ends) and label (-1 unknown).
 * Returns 0, or a negative BH_E* code with err saying why the field has no value. */
typedef int (*stage_lookup_fn)(void *ud, const char *field, const char **value, int *label,
                               struct bh_err *err);

/* Renders t into *out (owned by the caller) and its label into *label.
 * max caps the rendered size (BH_ETOOBIG with the template's name past it). */
int stage_render(const struct pipeline *p, const struct pipe_tpl *t, stage_lookup_fn lookup,
                 void *ud, size_t max, char **out, int *label, struct bh_err *err);

#endif
