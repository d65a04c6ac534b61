/* policy/plan.c — per-item plans (see plan.h). One pass over the stages in
 * run order; each task's prompt label is the join of what its templates
 * read, found in the item's labelled fields, the current for_each element
 * or the outputs planned so far. Tools add their static bound: which files
 * an agent will read is known only when it reads them. */
#include "policy/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "policy/label.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

static const char *const decision_names[] = {
    [POL_ALLOW] = "allow",   [POL_REROUTE] = "reroute",   [POL_SKIP] = "skip",
    [POL_REFUSE] = "refuse", [POL_WITHHELD] = "withheld",
};

const char *pol_decision_name(enum pol_decision d)
{
    return decision_names[d];
}

enum pol_decision pol_decide(const struct pipeline *p, size_t s, int label, int clearance)
{
    if (label <= clearance && clearance != POL_NOTHING)
        return POL_ALLOW;
    switch (p->stages[s].on_sensitive) {
    case PIPE_ONS_SKIP: return POL_SKIP;
    case PIPE_ONS_REROUTE: return p->stages[s].reroute >= 0 ? POL_REROUTE : POL_REFUSE;
    case PIPE_ONS_FAIL: break;
    }
    return POL_REFUSE;
}

/* What one task can read besides the item's fields. */
struct elem {
    const char *path; /* for_each pr.files: the file (a rename: the new path) */
    int diff_label;   /* its part of pr.diff */
    int each_label;   /* for_each S.output: S's output */
    size_t diff_len;  /* bytes of its part of pr.diff */
};

struct ctx {
    const struct pol_labeller *l;
    const struct pipeline *p;
    const int *clearance;
    const struct src_item *item;
    struct pol_item_plan *ip;
};

static int field_label(const struct ctx *c, const char *name)
{
    for (size_t i = 0; i < c->ip->n_fields; i++)
        if (strcmp(c->p->source.fields[i], name) == 0)
            return c->ip->fields[i].label;
    return -1;
}

/* The label of one placeholder; -1 for an output that is missing (withheld). */
static int read_label(const struct ctx *c, const char *name, const struct elem *e, int *missing)
{
    const struct pipeline *p = c->p;
    int top = (int)p->n_labels - 1, l = field_label(c, name);
    if (l >= 0)
        return l;
    if (strcmp(name, "each.path") == 0 || strcmp(name, "each.status") == 0)
        return field_label(c, "pr.files");
    if (strcmp(name, "each.diff") == 0)
        return e ? e->diff_label : top;
    if (strcmp(name, "each") == 0)
        return e ? e->each_label : top;
    const char *dot = strrchr(name, '.');
    if (dot && strcmp(dot, ".output") == 0) {
        for (size_t s = 0; s < p->n_stages; s++)
            if (strlen(p->stages[s].name) == (size_t)(dot - name) &&
                strncmp(name, p->stages[s].name, (size_t)(dot - name)) == 0) {
                *missing |= c->ip->outputs[s] < 0;
                return c->ip->outputs[s] < 0 ? top : c->ip->outputs[s];
            }
    }
    return top; /* unknown means top */
}

/* Tools: their static bound (README, "The static bounds check proves"). */
static int tools_label(const struct ctx *c, const struct pipe_stage *s)
{
    int l = 0;
    for (size_t i = 0; i < s->n_tools; i++) {
        const char *t = s->tools[i];
        int b = strcmp(t, "list_files") == 0 ? pol_field_bound(c->p, 0, "pr.files", NULL)
                : strcmp(t, "git_log") == 0
                    ? pol_label_join(c->p, pol_field_bound(c->p, 0, "pr.title", NULL),
                                     pol_field_bound(c->p, 0, "pr.files", NULL))
                    : pol_field_bound(c->p, 0, "pr.diff", NULL);
        l = pol_label_join(c->p, l, b);
    }
    return l;
}

/* The label of stage s's templates' own text (what a detector finds in it). */
static int text_label(const struct pol_labeller *l, const struct pipe_stage *st)
{
    struct pol_value a, b;
    pol_label_template(l, &st->system, &a);
    pol_label_template(l, &st->tpl, &b);
    int label = a.label > b.label ? a.label : b.label;
    pol_value_release(&a);
    pol_value_release(&b);
    return label;
}

/* The prompt label of stage s for element e; why names the highest read. */
static int prompt_label(const struct ctx *c, size_t s, const struct elem *e, int *missing,
                        char *why, size_t why_size)
{
    const struct pipe_stage *st = &c->p->stages[s];
    int label = 0, worst = -1;
    snprintf(why, why_size, "reads nothing");
    if (c->l) {
        label = worst = text_label(c->l, st);
        if (label > 0)
            snprintf(why, why_size, "its template's text is %s (a detector hit)",
                     pol_label_name(c->p, label));
    }
    for (size_t i = 0; i < st->n_reads; i++) {
        int l = read_label(c, st->reads[i], e, missing);
        label = pol_label_join(c->p, label, l);
        if (l > worst) {
            worst = l;
            snprintf(why, why_size, "%s is %s", st->reads[i], pol_label_name(c->p, l));
        }
    }
    if (st->n_tools) {
        int t = tools_label(c, st);
        if (t > worst)
            snprintf(why, why_size, "its tools can return %s", pol_label_name(c->p, t));
        label = pol_label_join(c->p, label, t);
    }
    return label;
}

static int output_label(const struct pipeline *p, size_t s, int label, int *declassified)
{
    const struct pipe_declassify *d = &p->stages[s].declassify;
    *declassified = d->enabled && d->to < label;
    return *declassified ? d->to : label;
}

static const char *withheld_by(const struct ctx *c, size_t s)
{
    const struct pipe_stage *st = &c->p->stages[s];
    for (size_t k = 0; k < st->n_deps; k++)
        if (c->ip->outputs[st->deps[k]] < 0)
            return c->p->stages[st->deps[k]].name;
    return NULL;
}

long pol_tokens_estimate(size_t bytes)
{
    return (long)(bytes / 4);
}

int pol_prompt_over(size_t bytes, long window)
{
    return window > 0 && pol_tokens_estimate(bytes) > window;
}

/* The bytes one placeholder adds that are known before any model runs. */
static size_t read_bytes(const struct ctx *c, const char *name, const struct elem *e)
{
    if (strcmp(name, "each.diff") == 0)
        return e->diff_len;
    if ((strcmp(name, "each.path") == 0 || strcmp(name, "each") == 0) && e->path)
        return strlen(e->path);
    const struct src_field *f = src_item_find(c->item, name);
    return f && f->value ? f->len : 0; /* an output: not known yet */
}

static size_t tpl_bytes(const struct ctx *c, const struct pipe_tpl *t, const struct elem *e)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_parts; i++)
        n += t->parts[i].is_field ? read_bytes(c, t->parts[i].text, e) : strlen(t->parts[i].text);
    return n;
}

static size_t prompt_bytes(const struct ctx *c, size_t s, const struct elem *e)
{
    return tpl_bytes(c, &c->p->stages[s].system, e) + tpl_bytes(c, &c->p->stages[s].tpl, e);
}

/* Decides one task; its output label goes to t->output. */
static void task_decide(const struct ctx *c, size_t s, const struct elem *e,
                        struct pol_task_plan *t)
{
    const struct pipeline *p = c->p;
    int missing = 0;
    t->stage = t->ran = s;
    t->output = -1;
    const char *dep = withheld_by(c, s);
    t->label = t->ran_label = prompt_label(c, s, e, &missing, t->why, sizeof(t->why));
    if (dep) {
        t->decision = POL_WITHHELD;
        snprintf(t->why, sizeof(t->why), "%s produced nothing for this item", dep);
        return;
    }
    t->decision = pol_decide(p, s, t->label, c->clearance[s]);
    t->bytes = prompt_bytes(c, s, e);
    if (t->decision == POL_ALLOW) {
        t->output = output_label(p, s, t->label, &t->declassified);
    } else if (t->decision == POL_REROUTE) {
        size_t r = (size_t)p->stages[s].reroute;
        char why[256];
        t->ran = r;
        t->ran_label = prompt_label(c, r, e, &missing, why, sizeof(why));
        if (t->ran_label > c->clearance[r] || c->clearance[r] == POL_NOTHING) {
            t->decision = POL_REFUSE;
            bh_str_put(t->why, sizeof(t->why), "reroute target %s cannot take it either: %s",
                       p->stages[r].name, why);
        } else {
            t->output = output_label(p, r, t->ran_label, &t->declassified);
            t->bytes = prompt_bytes(c, r, e);
        }
    }
}

static void task_push(struct pol_item_plan *ip, size_t *cap, const struct pol_task_plan *t)
{
    if (ip->n_tasks == *cap)
        ip->tasks = bh_xgrow(ip->tasks, cap, ip->n_tasks + 1, sizeof(*ip->tasks));
    ip->tasks[ip->n_tasks++] = *t;
}

/* each.diff's label: the file's part of pr.diff, labelled on its own, by
 * every path it is about — for a rename, old (from its pr.files line) and
 * new — and over its whole files. The first part about path, as the engine
 * takes it (engine/lookup.c). */
static int part_label(const struct ctx *c, const char *path, char *old)
{
    const struct src_field *d = src_item_find(c->item, "pr.diff");
    int declared = pipe_source_field_label(c->p, "pr.diff");
    struct src_part one = {0};
    const char *v = NULL;
    for (size_t i = 0; d && d->value && i < d->n_parts && !v; i++)
        if (strcmp(d->parts[i].path, path) == 0) {
            v = d->value + d->parts[i].offset;
            one = d->parts[i];
            one.offset = 0;
        }
    if (!v) /* no diff, or a name pr.files quotes: unknown means top */
        return (int)c->p->n_labels - 1;
    if (!one.old_path)
        one.old_path = old; /* the line says it moved: never label it by one path */
    struct pol_value pv;
    pol_label_value(c->l, "each.diff", declared, v, one.length, &one, 1, NULL, &pv);
    int l = pv.label;
    pol_value_release(&pv);
    return l;
}

/* The bytes of path's part of pr.diff (the first, as part_label). */
static size_t diff_len(const struct ctx *c, const char *path)
{
    const struct src_field *d = src_item_find(c->item, "pr.diff");
    for (size_t i = 0; d && d->value && i < d->n_parts; i++)
        if (strcmp(d->parts[i].path, path) == 0)
            return d->parts[i].length;
    return 0;
}

/* One task per file of pr.files; the stage's output joins theirs. */
static void plan_files(const struct ctx *c, size_t s, size_t *cap)
{
    const char *files = src_item_field(c->item, "pr.files");
    int out = field_label(c, "pr.files"); /* the joined output names each file */
    for (const char *line = files; line && *line;) {
        size_t n = strcspn(line, "\n"), len = 0, old_len = 0;
        const char *old = NULL, *path = src_git_files_line_path(line, n, &len, &old, &old_len);
        char *copy = bh_xstrndup(path, len), *old_copy = old ? bh_xstrndup(old, old_len) : NULL;
        struct elem e = {copy, part_label(c, copy, old_copy), 0, diff_len(c, copy)};
        free(old_copy);
        struct pol_task_plan t = {0};
        task_decide(c, s, &e, &t);
        t.element = copy;
        out = out < 0 || t.output < 0 ? -1 : pol_label_join(c->p, out, t.output);
        task_push(c->ip, cap, &t);
        line += n + (line[n] == '\n');
    }
    c->ip->outputs[s] = out;
}

int pol_plan_item(const struct pol_labeller *l, const int *clearance, const struct src_item *item,
                  struct pol_item_plan *out)
{
    const struct pipeline *p = l ? pol_labeller_pipeline(l) : NULL;
    struct ctx c = {l, p, clearance, item, out};
    size_t cap = 0;
    memset(out, 0, sizeof(*out));
    out->n_fields = p->source.n_fields;
    out->fields = bh_xcalloc(out->n_fields ? out->n_fields : 1, sizeof(*out->fields));
    out->outputs = bh_xcalloc(p->n_stages, sizeof(*out->outputs));
    for (size_t i = 0; i < p->n_stages; i++)
        out->outputs[i] = -1;
    pol_label_item(l, item, out->fields);
    struct pol_value key;
    pol_label_key(l, item, &key);
    out->key = key.label;
    pol_value_release(&key);
    for (size_t k = 0; k < p->n_stages; k++) {
        size_t s = p->order[k];
        const struct pipe_stage *st = &p->stages[s];
        if (st->standby || st->scope == PIPE_SCOPE_BATCH)
            continue;
        if (st->for_each && strcmp(st->for_each, "pr.files") == 0) {
            plan_files(&c, s, &cap);
            continue;
        }
        struct elem e = {NULL, 0, st->for_each_stage >= 0 ? out->outputs[st->for_each_stage] : 0,
                         0};
        struct pol_task_plan t = {0};
        task_decide(&c, s, &e, &t);
        if (st->for_each)
            t.element = bh_xstrdup("each element");
        out->outputs[s] = t.output;
        task_push(out, &cap, &t);
    }
    return 0;
}

void pol_item_plan_release(struct pol_item_plan *ip)
{
    for (size_t i = 0; ip && i < ip->n_fields; i++)
        pol_value_release(&ip->fields[i]);
    for (size_t i = 0; ip && i < ip->n_tasks; i++)
        free(ip->tasks[i].element);
    if (ip) {
        free(ip->fields);
        free(ip->tasks);
        free(ip->outputs);
        memset(ip, 0, sizeof(*ip));
    }
}

/* The join over every item of what batch stage s reads, keys included;
 * items whose inputs are missing are left out (they produced nothing to
 * read, and the line naming them names only keys within clearance). */
static int batch_label(const struct pol_labeller *lab, const int *clearance,
                       const struct pol_item_plan *items, size_t n_items, size_t s, char *why,
                       size_t why_size)
{
    const struct pipeline *p = pol_labeller_pipeline(lab);
    int label = text_label(lab, &p->stages[s]), per_item = pol_stage_names_items(p, s);
    snprintf(why, why_size, label ? "its template's text is %s (a detector hit)" : "reads nothing",
             pol_label_name(p, label));
    for (size_t i = 0; i < n_items; i++) {
        struct ctx c = {NULL, p, clearance, NULL, (struct pol_item_plan *)&items[i]};
        int missing = 0;
        char w[256];
        int l = prompt_label(&c, s, NULL, &missing, w, sizeof(w));
        if (!missing && per_item && items[i].key > l) {
            l = items[i].key;
            snprintf(w, sizeof(w), "an item's key is %s", pol_label_name(p, l));
        }
        if (!missing && l >= label) {
            label = l;
            snprintf(why, why_size, "%s", w);
        }
    }
    return label;
}

void pol_plan_batch(const struct pol_labeller *l, const int *clearance,
                    const struct pol_item_plan *items, size_t n_items, struct pol_task_plan *tasks,
                    size_t *n_tasks)
{
    const struct pipeline *p = pol_labeller_pipeline(l);
    *n_tasks = 0;
    for (size_t k = 0; k < p->n_stages; k++) {
        size_t s = p->order[k];
        const struct pipe_stage *st = &p->stages[s];
        if (st->standby || st->scope != PIPE_SCOPE_BATCH)
            continue;
        struct pol_task_plan *t = &tasks[(*n_tasks)++];
        memset(t, 0, sizeof(*t));
        t->stage = t->ran = s;
        t->label = batch_label(l, clearance, items, n_items, s, t->why, sizeof(t->why));
        t->ran_label = t->label;
        t->decision = pol_decide(p, s, t->label, clearance[s]);
        if (t->decision == POL_REROUTE) {
            char why[256];
            t->ran = (size_t)st->reroute;
            t->ran_label = batch_label(l, clearance, items, n_items, t->ran, why, sizeof(why));
            if (t->ran_label > clearance[t->ran] || clearance[t->ran] == POL_NOTHING)
                t->decision = POL_REFUSE;
        }
        t->output = t->decision == POL_ALLOW || t->decision == POL_REROUTE
                        ? output_label(p, t->ran, t->ran_label, &t->declassified)
                        : -1;
    }
}
