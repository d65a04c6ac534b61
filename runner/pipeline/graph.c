/* pipeline/graph.c — what each stage reads and waits for, the cycle check,
 * and a run order.
 *
 * A stage's reads are the distinct placeholders of its system message and
 * its user message, in that order. Its deps are its `after` list joined with
 * every stage whose output it reads and the stage its for_each runs over;
 * each dep remembers where it came from so that a cycle is reported at the
 * `after` entry, the message or the for_each that closes it. A reroute
 * target must not wait for its origin (it runs in the origin's place). The order
 * is Kahn's algorithm picking, among the ready stages, the one declared
 * first: O(n^2) over at most PIPE_MAX_STAGES stages, and the order a reader
 * of the file expects. */
#include "pipeline/load.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/template.h"
#include "util/bh_buf.h"
#include "util/bh_xmalloc.h"

static void dep_add(struct pipe_stage *s, struct pipe_stage_load *sl, size_t d, long elem)
{
    for (size_t k = 0; k < s->n_deps; k++)
        if (s->deps[k] == d)
            return;
    s->deps[s->n_deps] = d;
    sl->dep_elem[s->n_deps++] = elem;
}

static void reads_build(struct pipe_stage *s)
{
    const struct pipe_tpl *tpls[2] = {&s->system, &s->tpl};
    s->reads = bh_xcalloc(s->system.n_parts + s->tpl.n_parts + 1, sizeof(*s->reads));
    for (size_t w = 0; w < 2; w++)
        for (size_t k = 0; k < tpls[w]->n_parts; k++) {
            const struct pipe_tpl_part *part = &tpls[w]->parts[k];
            size_t j = 0;
            while (part->is_field && j < s->n_reads && strcmp(s->reads[j], part->text) != 0)
                j++;
            if (part->is_field && j == s->n_reads)
                s->reads[s->n_reads++] = bh_xstrdup(part->text);
        }
}

static void tpl_deps(struct pipe_stage *s, struct pipe_stage_load *sl, const struct pipe_tpl *t,
                     const struct pipe_tpl_scope *scope, long elem)
{
    for (size_t k = 0; k < t->n_parts; k++) {
        long d = t->parts[k].is_field ? pipe_tpl_field_stage(t->parts[k].text, scope) : -1;
        if (d >= 0)
            dep_add(s, sl, (size_t)d, elem);
    }
}

static void deps_build(struct pipe_loader *ld)
{
    struct pipeline *p = ld->p;
    struct pipe_tpl_scope scope = {(const char *const *)p->source.fields,
                                   p->source.n_fields,
                                   ld->stage_names,
                                   p->n_stages,
                                   NULL,
                                   NULL,
                                   0};
    for (size_t i = 0; i < p->n_stages; i++) {
        struct pipe_stage *s = &p->stages[i];
        struct pipe_stage_load *sl = &ld->sl[i];
        reads_build(s);
        size_t most = sl->n_after + s->system.n_parts + s->tpl.n_parts + 2;
        s->deps = bh_xcalloc(most, sizeof(*s->deps));
        sl->dep_elem = bh_xcalloc(most, sizeof(*sl->dep_elem));
        for (size_t k = 0; k < sl->n_after; k++)
            dep_add(s, sl, sl->after[k], (long)sl->after_elem[k]);
        tpl_deps(s, sl, &s->system, &scope, PIPE_DEP_SYSTEM);
        tpl_deps(s, sl, &s->tpl, &scope, PIPE_DEP_USER);
        if (s->for_each_stage >= 0)
            dep_add(s, sl, (size_t)s->for_each_stage, PIPE_DEP_FOR_EACH);
    }
}

enum { WHITE, GRAY, BLACK };

struct dfs {
    const struct pipeline *p;
    unsigned char *color;
    size_t *stack, depth;
    size_t from, dep; /* the edge that closed the cycle: stages[from].deps[dep] */
};

/* 1 when a cycle is reachable from u; the stack then holds it. */
static int visit(struct dfs *g, size_t u)
{
    const struct pipe_stage *s = &g->p->stages[u];
    g->color[u] = GRAY;
    g->stack[g->depth++] = u;
    for (size_t k = 0; k < s->n_deps; k++) {
        size_t v = s->deps[k];
        if (g->color[v] == GRAY) {
            g->from = u;
            g->dep = k;
            return 1;
        }
        if (g->color[v] == WHITE && visit(g, v))
            return 1; /* the stack is left as it is: it holds the cycle */
    }
    g->color[u] = BLACK;
    g->depth--;
    return 0;
}

static int cycle_fail(struct pipe_loader *ld, const struct dfs *g)
{
    const struct pipeline *p = ld->p;
    size_t to = p->stages[g->from].deps[g->dep], start = 0;
    while (g->stack[start] != to)
        start++;
    struct bh_buf b;
    bh_buf_init(&b, 400); /* the message holds 512 bytes; a longer cycle is cut */
    for (size_t k = start; k < g->depth; k++)
        bh_buf_printf(&b, "%s -> ", p->stages[g->stack[k]].name);
    bh_buf_puts(&b, p->stages[to].name);
    const char *from = p->stages[g->from].name, *dst = p->stages[to].name;
    long elem = ld->sl[g->from].dep_elem[g->dep];
    const char *user = ld->sl[g->from].user_key ? ld->sl[g->from].user_key : "prompt";
    const char *key = elem >= 0                   ? "after"
                      : elem == PIPE_DEP_SYSTEM   ? "system"
                      : elem == PIPE_DEP_FOR_EACH ? "for_each"
                                                  : user;
    char at[PIPE_PATH_MAX], st[PIPE_PATH_MAX];
    pipe_ld_path_key(st, "stages", from);
    pipe_ld_path_key(at, st, key);
    if (elem >= 0)
        pipe_ld_path_index(at, at, (size_t)elem);
    const char *cyc = b.data ? b.data : "";
    int rc = elem >= 0 ? pipe_ld_fail(ld, at,
                                      "stages form a cycle: %s — remove \"%s\" from the "
                                      "\"after\" of stage \"%s\"",
                                      cyc, dst, from)
             : elem == PIPE_DEP_FOR_EACH
                 ? pipe_ld_fail(ld, at,
                                "stages form a cycle: %s — stage \"%s\" runs for_each "
                                "over %s.output; a stage can only read stages that run before it",
                                cyc, from, dst)
                 : pipe_ld_fail(ld, at,
                                "stages form a cycle: %s — stage \"%s\" reads "
                                "{{ %s.output }} in its %s; a stage can only read stages that "
                                "run before it",
                                cyc, from, dst,
                                elem == PIPE_DEP_SYSTEM    ? "system message"
                                : strcmp(key, "user") == 0 ? "user message"
                                                           : "prompt");
    bh_buf_release(&b);
    return rc;
}

static int cycle_check(struct pipe_loader *ld)
{
    const struct pipeline *p = ld->p;
    struct dfs g = {p, bh_xcalloc(p->n_stages, 1), bh_xcalloc(p->n_stages, sizeof(size_t)), 0, 0,
                    0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->n_stages; i++)
        if (g.color[i] == WHITE && visit(&g, i))
            rc = cycle_fail(ld, &g);
    free(g.color);
    free(g.stack);
    return rc;
}

static void order_build(struct pipeline *p)
{
    unsigned char *done = bh_xcalloc(p->n_stages, 1);
    p->order = bh_xcalloc(p->n_stages, sizeof(*p->order));
    for (size_t n = 0; n < p->n_stages; n++) {
        size_t i = 0;
        for (;; i++) { /* acyclic, so some stage is ready */
            size_t k = 0;
            while (!done[i] && k < p->stages[i].n_deps && done[p->stages[i].deps[k]])
                k++;
            if (!done[i] && k == p->stages[i].n_deps)
                break;
        }
        done[i] = 1;
        p->order[n] = i;
    }
    free(done);
}

/* 1 when stage `to` is among the stages `from` waits for, at any depth. */
static int waits_for(const struct pipeline *p, size_t from, size_t to, unsigned char *seen)
{
    if (from == to)
        return 1;
    if (seen[from])
        return 0;
    seen[from] = 1;
    for (size_t k = 0; k < p->stages[from].n_deps; k++)
        if (waits_for(p, p->stages[from].deps[k], to, seen))
            return 1;
    return 0;
}

static int reroute_waits(struct pipe_loader *ld)
{
    const struct pipeline *p = ld->p;
    int rc = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *s = &p->stages[i];
        if (s->reroute < 0)
            continue;
        unsigned char *seen = bh_xcalloc(p->n_stages, 1);
        int waits = waits_for(p, (size_t)s->reroute, i, seen);
        free(seen);
        if (!waits)
            continue;
        char st[PIPE_PATH_MAX], at[PIPE_PATH_MAX];
        pipe_ld_path_key(st, "stages", s->name);
        pipe_ld_path_key(at, st, "on_sensitive");
        const char *t = p->stages[s->reroute].name;
        int frc = pipe_ld_fail(ld, at,
                               "\"%s\" waits for \"%s\", so it cannot run in its place "
                               "— a reroute target reads what \"%s\" reads, not its output",
                               t, s->name, s->name);
        rc = rc ? rc : frc;
    }
    return rc;
}

int pipe_ld_graph(struct pipe_loader *ld)
{
    deps_build(ld);
    int rc = cycle_check(ld);
    if (rc == 0)
        rc = reroute_waits(ld);
    if (rc == 0)
        order_build(ld->p);
    return rc;
}
