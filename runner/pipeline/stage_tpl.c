/* pipeline/stage_tpl.c — a stage's messages: `system` (inline), and the user
 * message, either a template file (`prompt`) or inline (`user`), exactly one
 * of the two.
 *
 * Inline messages are parsed by the same template parser as files and
 * checked against the same names. Their errors, and every placeholder's
 * line and column, are those of the string value in the pipeline file: a
 * position inside a JSON or YAML string would need the scanner to map
 * escapes and folding back to the file, and the value's start is close
 * enough for a message that also quotes the field. Template files keep
 * positions inside the file. A stage with for_each may also read the fields
 * of its element (pipe_for_each_fields); the `for_each` key is walked before
 * these, so the scope is known here. */
#include "pipeline/load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/template.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* Every field a for_each element may provide: what a stage whose for_each
 * could not be read may read without a second error. */
static const char *const any_each[] = {"each", "each.path", "each.status", "each.diff"};

static struct pipe_tpl_scope scope_of(const struct pipe_loader *ld, const struct pipe_stage *s)
{
    const struct pipeline *p = ld->p;
    struct pipe_tpl_scope scope = {(const char *const *)p->source.fields,
                                   p->source.n_fields,
                                   ld->stage_names,
                                   p->n_stages,
                                   s->for_each,
                                   NULL,
                                   0};
    scope.each = pipe_for_each_fields(s->for_each, &scope.n_each);
    if (ld->sl[pipe_ld_stage_index(ld, s)].for_each_bad) {
        scope.each = any_each;
        scope.n_each = BH_NELEM(any_each);
    }
    return scope;
}

/* Checks t's names; an error is kept where the stage names the template. */
static int tpl_check(struct pipe_loader *ld, const struct pipe_stage *s, const struct pipe_tpl *t,
                     const char *path, const struct pipe_pos *at)
{
    struct pipe_tpl_scope scope = scope_of(ld, s);
    int rc = pipe_tpl_check(t, &scope, ld->err);
    if (rc == 0)
        return 0;
    if (at) /* inline: shown at the value, with its path */
        bh_err_at(ld->err, ld->file, at->line, at->col, path);
    return pipe_ld_keep(ld, path);
}

static int tpl_inline(struct pipe_loader *ld, struct pipe_stage *s, json_t *v, const char *path,
                      struct pipe_tpl *t)
{
    const char *key = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
    if (json_string_length(v) == 0)
        return pipe_ld_fail(ld, path,
                            "found an empty string — write the %s message, or leave "
                            "\"%s\" out",
                            key, key);
    int rc = pipe_tpl_parse(t, ld->file, json_string_value(v), json_string_length(v), ld->err);
    if (rc)
        return pipe_ld_fail(ld, path, "%s", ld->err->msg);
    const struct pipe_pos *at = pipe_posindex_get(ld->ix, path);
    static const struct pipe_pos nowhere = {NULL, 0, 0, 0, 0};
    if (!at)
        at = &nowhere;
    for (size_t i = 0; i < t->n_parts; i++) {
        t->parts[i].line = at->line;
        t->parts[i].col = at->col;
    }
    return tpl_check(ld, s, t, path, at);
}

int pipe_st_system(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    return tpl_inline(ld, s, v, path, &s->system);
}

int pipe_st_user(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    struct pipe_stage_load *sl = &ld->sl[pipe_ld_stage_index(ld, s)];
    if (sl->user_key)
        return pipe_ld_fail(ld, path,
                            "give either \"prompt\" (a template file) or \"user\" (the "
                            "message inline), not both");
    sl->user_key = "user";
    return tpl_inline(ld, s, v, path, &s->tpl);
}

static int prompt_read(struct pipe_loader *ld, const char *file, const char *path,
                       struct pipe_stage_load *sl)
{
    int rc = pipe_read_file(file, PIPE_FILE_MAX, &sl->tpl_text, &sl->tpl_len);
    if (rc == BH_ETOOBIG)
        return pipe_ld_fail(ld, path,
                            "prompt template \"%s\" is larger than %zu KiB — "
                            "prompts are text; put large inputs in source fields",
                            file, PIPE_FILE_MAX >> 10);
    if (rc)
        return pipe_ld_fail(ld, path,
                            "cannot read prompt template \"%s\": %s — the path is "
                            "relative to the pipeline file's folder",
                            file, strerror(errno));
    return 0;
}

int pipe_st_prompt(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    struct pipe_stage_load *sl = &ld->sl[pipe_ld_stage_index(ld, s)];
    sl->user_key = "prompt";
    int rc = pipe_ld_nonempty(ld, v, path, "the template's path, e.g. \"prompts/review.md\"",
                              &s->prompt_path);
    if (rc)
        return rc;
    char *file = NULL;
    rc = pipe_ld_file(ld, s->prompt_path, path, "prompt template", &file);
    if (rc == 0)
        rc = prompt_read(ld, file, path, sl);
    if (rc == 0) {
        rc = pipe_tpl_parse(&s->tpl, file, sl->tpl_text, sl->tpl_len, ld->err);
        if (rc) /* positioned in the template; sorted where the stage names it */
            pipe_ld_keep(ld, path);
        else
            rc = tpl_check(ld, s, &s->tpl, path, NULL);
    }
    free(file);
    return rc;
}
