/* pipeline/graph.c — what each stage waits for, the cycle check, and a run
 * order.
 *
 * A stage's deps are its `after` list joined with every stage whose output
 * its template reads; each dep remembers where it came from so that a cycle
 * is reported at the `after` entry (or the prompt) that closes it. The order
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

static void deps_build(struct pipe_loader *ld)
{
    struct pipeline *p = ld->p;
    struct pipe_tpl_scope scope = { (const char *const *)p->source.fields, p->source.n_fields,
                                    ld->stage_names, p->n_stages };
    for (size_t i = 0; i < p->n_stages; i++) {
        struct pipe_stage *s = &p->stages[i];
        struct pipe_stage_load *sl = &ld->sl[i];
        size_t most = sl->n_after + s->tpl.n_parts + 1;
        s->deps = bh_xcalloc(most, sizeof(*s->deps));
        sl->dep_elem = bh_xcalloc(most, sizeof(*sl->dep_elem));
        for (size_t k = 0; k < sl->n_after; k++)
            dep_add(s, sl, sl->after[k], (long)sl->after_elem[k]);
        for (size_t k = 0; k < s->tpl.n_parts; k++) {
            long d = s->tpl.parts[k].is_field ? pipe_tpl_field_stage(s->tpl.parts[k].text, &scope)
                                              : -1;
            if (d >= 0)
                dep_add(s, sl, (size_t)d, -1);
        }
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
    char at[PIPE_PATH_MAX], st[PIPE_PATH_MAX];
    pipe_ld_path_key(st, "stages", from);
    pipe_ld_path_key(at, st, elem >= 0 ? "after" : "prompt");
    if (elem >= 0)
        pipe_ld_path_index(at, at, (size_t)elem);
    int rc = elem >= 0 ? pipe_ld_fail(ld, at, "stages form a cycle: %s — remove \"%s\" from the "
                                      "\"after\" of stage \"%s\"", b.data ? b.data : "", dst, from)
                       : pipe_ld_fail(ld, at, "stages form a cycle: %s — stage \"%s\" reads "
                                      "{{ %s.output }} in its prompt; a stage can only read "
                                      "stages that run before it", b.data ? b.data : "", from,
                                      dst);
    bh_buf_release(&b);
    return rc;
}

static int cycle_check(struct pipe_loader *ld)
{
    const struct pipeline *p = ld->p;
    struct dfs g = { p, bh_xcalloc(p->n_stages, 1), bh_xcalloc(p->n_stages, sizeof(size_t)),
                     0, 0, 0 };
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

int pipe_ld_graph(struct pipe_loader *ld)
{
    deps_build(ld);
    int rc = cycle_check(ld);
    if (rc == 0)
        order_build(ld->p);
    return rc;
}
