/* pipeline/links.c — the checks that need every stage walked: a for_each
 * over a stage's output needs that stage to reply in JSON; a reroute target
 * must have the origin's shape (scope and for_each), must not reroute itself
 * (no chains), and runs in place of one stage only; and a standby stage's
 * output is never read directly (its dependants read the origin's output,
 * which holds the target's when the origin was rerouted).
 *
 * Runs after the stage walk, before the graph; a stage whose own keys
 * failed has its reroute or for_each_stage unset, so it is left out here
 * rather than reported twice. */
#include "pipeline/load.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/template.h"
#include "util/bh_xmalloc.h"

static int fail_at(struct pipe_loader *ld, const struct pipe_stage *s, const char *key,
                   const char *fmt, ...) BH_PRINTF(4, 5);

/* Fails at the value of key in stage s. */
static int fail_at(struct pipe_loader *ld, const struct pipe_stage *s, const char *key,
                   const char *fmt, ...)
{
    char st[PIPE_PATH_MAX], at[PIPE_PATH_MAX], msg[sizeof(ld->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pipe_ld_path_key(st, "stages", s->name);
    pipe_ld_path_key(at, st, key);
    return pipe_ld_fail(ld, at, "%s", msg);
}

static int for_each_json(struct pipe_loader *ld, const struct pipe_stage *s)
{
    const struct pipe_stage *src = &ld->p->stages[s->for_each_stage];
    if (src->out_format == PIPE_OUT_JSON || src->out_format == PIPE_OUT_FINDINGS)
        return 0;
    return fail_at(ld, s, "for_each",
                   "for_each reads a list: give \"%s\" an output of format json "
                   "— add \"output\": { \"format\": \"json\" } to stage \"%s\", and have its "
                   "prompt ask for a JSON array",
                   src->name, src->name);
}

static const char *shape(const struct pipe_stage *s, char *buf, size_t size)
{
    snprintf(buf, size, "scope \"%s\" and %s%s%s", s->scope == PIPE_SCOPE_BATCH ? "batch" : "item",
             s->for_each ? "for_each \"" : "no for_each", s->for_each ? s->for_each : "",
             s->for_each ? "\"" : "");
    return buf;
}

static int reroute_check(struct pipe_loader *ld, size_t i, long *origin)
{
    const struct pipeline *p = ld->p;
    struct pipe_stage *s = &p->stages[i], *t = &p->stages[s->reroute];
    if (t->on_sensitive == PIPE_ONS_REROUTE) {
        const char *next = t->reroute >= 0 ? p->stages[t->reroute].name : "STAGE";
        return fail_at(ld, s, "on_sensitive",
                       "\"%s\" reroutes to \"%s\" itself, and reroutes "
                       "do not chain — write \"reroute:%s\" for \"%s\"",
                       t->name, next, next, s->name);
    }
    int same =
        t->scope == s->scope && (t->for_each && s->for_each ? strcmp(t->for_each, s->for_each) == 0
                                                            : t->for_each == s->for_each);
    if (!same) {
        char a[256], b[256];
        return fail_at(ld, s, "on_sensitive",
                       "\"%s\" cannot run in place of \"%s\": \"%s\" has "
                       "%s, \"%s\" has %s — give \"%s\" the same \"scope\" and \"for_each\"",
                       t->name, s->name, s->name, shape(s, a, sizeof(a)), t->name,
                       shape(t, b, sizeof(b)), t->name);
    }
    if (origin[s->reroute] >= 0)
        return fail_at(ld, s, "on_sensitive",
                       "\"%s\" already runs in place of \"%s\" — a stage "
                       "runs in place of one stage only; copy it for \"%s\"",
                       t->name, p->stages[origin[s->reroute]].name, s->name);
    origin[s->reroute] = (long)i;
    t->standby = 1;
    return 0;
}

/* A placeholder that reads a standby stage's output, in template t of stage
 * r (at key): positioned like the template's other errors. */
static int standby_read(struct pipe_loader *ld, const struct pipe_stage *r, const char *key,
                        const struct pipe_tpl *t, const struct pipe_tpl_part *part, size_t k,
                        long o)
{
    const struct pipeline *p = ld->p;
    char st[PIPE_PATH_MAX], at[PIPE_PATH_MAX];
    pipe_ld_path_key(st, "stages", r->name);
    pipe_ld_path_key(at, st, key);
    int inline_tpl = strcmp(key, "prompt") != 0;
    bh_err_clear(ld->err);
    bh_err_at(ld->err, inline_tpl ? ld->file : t->file, part->line, part->col,
              inline_tpl ? at : "");
    bh_err_set(ld->err, BH_EINVAL,
               "\"%s\" runs only in place of \"%s\"; read %s.output — it "
               "holds what \"%s\" wrote when \"%s\" was rerouted",
               p->stages[k].name, p->stages[o].name, p->stages[o].name, p->stages[k].name,
               p->stages[o].name);
    return pipe_ld_keep(ld, at);
}

static int standby_reads(struct pipe_loader *ld, size_t i, const long *origin)
{
    const struct pipeline *p = ld->p;
    const struct pipe_stage *r = &p->stages[i];
    struct pipe_tpl_scope scope = {(const char *const *)p->source.fields,
                                   p->source.n_fields,
                                   ld->stage_names,
                                   p->n_stages,
                                   NULL,
                                   NULL,
                                   0};
    const struct pipe_tpl *tpls[2] = {&r->system, &r->tpl};
    const char *keys[2] = {"system", ld->sl[i].user_key ? ld->sl[i].user_key : "prompt"};
    int rc = 0;
    for (size_t w = 0; w < 2; w++)
        for (size_t j = 0; j < tpls[w]->n_parts; j++) {
            const struct pipe_tpl_part *part = &tpls[w]->parts[j];
            long k = part->is_field ? pipe_tpl_field_stage(part->text, &scope) : -1;
            if (k >= 0 && origin[k] >= 0) {
                int frc = standby_read(ld, r, keys[w], tpls[w], part, (size_t)k, origin[k]);
                rc = rc ? rc : frc;
            }
        }
    long f = r->for_each_stage;
    if (f >= 0 && origin[f] >= 0) {
        int frc = fail_at(ld, r, "for_each",
                          "\"%s\" runs only in place of \"%s\"; run for_each "
                          "over %s.output — it holds what \"%s\" wrote when \"%s\" was rerouted",
                          p->stages[f].name, p->stages[origin[f]].name, p->stages[origin[f]].name,
                          p->stages[f].name, p->stages[origin[f]].name);
        rc = rc ? rc : frc;
    }
    return rc;
}

int pipe_ld_links(struct pipe_loader *ld)
{
    const struct pipeline *p = ld->p;
    long *origin = bh_xcalloc(p->n_stages, sizeof(*origin));
    int rc = 0;
    for (size_t i = 0; i < p->n_stages; i++)
        origin[i] = -1;
    for (size_t i = 0; !ld->halt && i < p->n_stages; i++) {
        int src = 0;
        if (p->stages[i].for_each_stage >= 0)
            src = for_each_json(ld, &p->stages[i]);
        if (p->stages[i].reroute >= 0) {
            int rrc = reroute_check(ld, i, origin);
            src = src ? src : rrc;
        }
        rc = rc ? rc : src;
    }
    for (size_t i = 0; !ld->halt && i < p->n_stages; i++) {
        int src = standby_reads(ld, i, origin);
        rc = rc ? rc : src;
    }
    free(origin);
    return rc;
}
