/* stages/render.c — substitution of {{field}} placeholders. The template was
 * parsed and its fields validated when the pipeline was loaded; here only
 * values and labels meet. Every substitution joins its label into the
 * prompt's, so the label can only go up while rendering. */
#include "stages/render.h"

#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"

int stage_render(const struct pipeline *p, const struct pipe_tpl *t, stage_lookup_fn lookup,
                 void *ud, size_t max, char **out, int *label, struct bh_err *err)
{
    struct bh_buf b;
    int l = 0, rc = 0;
    bh_buf_init(&b, max);
    for (size_t i = 0; i < t->n_parts && rc == 0; i++) {
        const struct pipe_tpl_part *part = &t->parts[i];
        const char *value = part->text;
        if (part->is_field) {
            int fl = -1;
            rc = lookup(ud, part->text, &value, &fl, err);
            if (rc) {
                bh_err_at(err, t->file, part->line, part->col, NULL);
                bh_err_prefix(err, "no value for {{%s}}: ", part->text);
                break;
            }
            l = pol_label_join(p, l, fl);
        }
        if (bh_buf_puts(&b, value))
            rc = bh_err_set(err, BH_ETOOBIG, "prompt rendered from '%s' exceeds %zu bytes", t->file,
                            b.max);
    }
    if (rc) {
        bh_buf_release(&b);
        return rc;
    }
    *out = bh_buf_detach(&b);
    *label = l;
    return 0;
}
