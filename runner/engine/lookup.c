/* engine/lookup.c — the values a task's templates read, with their labels.
 *
 * An item task reads its item's source fields and the outputs of the stages
 * it waits for; a for_each task also its element (each.path, each.status,
 * each.diff, each). A batch task reads a per-item field over the items of
 * its view, each under "## <item key>", followed by one line naming the
 * items left out and why, so that neither the model nor the reader takes a
 * partial digest for a whole one. Keys are values too (a document's path, a
 * ref's name): each key's label joins the value it heads, and the line of
 * items left out names only keys within the task's clearance. A fold's part reads its share of the
 * items in round 1, and the parts of the round before after that.
 *
 * Values built here (a digest, a file's part of the diff) are kept with the
 * task until it ends, because the renderer borrows them. Labels are the
 * join of what went into a value: nothing here lowers one. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/label.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "store/store.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* A scan costs as much as the value: once per item, key included. Only the
 * labels are kept (their reasons name the item's paths, which go when its
 * fields do). */
static int *item_labels(struct eng *e, size_t item)
{
    const struct pipeline *p = e->o->p;
    size_t nf = p->source.n_fields;
    int *kept = &e->labels[item * nf];
    if (!e->labelled[item]) {
        struct pol_value k, *v = bh_xcalloc(nf + 1, sizeof(*v));
        const struct src_item *it = eng_item_need(e, item);
        pol_label_item(e->lab, it, v);
        for (size_t i = 0; i < nf; i++) {
            kept[i] = v[i].label;
            pol_value_release(&v[i]);
        }
        free(v);
        pol_label_key(e->lab, it, &k);
        e->key_labels[item] = k.label;
        pol_value_release(&k);
        e->labelled[item] = 1;
    }
    return kept;
}

int eng_key_label(struct eng *e, size_t item)
{
    int labelled = e->labelled[item];
    item_labels(e, item);
    if (!labelled) /* read to label its key for a batch list: not needed after */
        eng_item_idle(e, item);
    return e->key_labels[item];
}

int eng_field_label(struct eng *e, size_t item, const char *field)
{
    const struct pipeline *p = e->o->p;
    const int *v = item_labels(e, item);
    for (size_t i = 0; i < p->source.n_fields; i++)
        if (strcmp(p->source.fields[i], field) == 0)
            return v[i];
    return -1; /* unknown means top */
}

long eng_field_stage(const struct pipeline *p, const char *field)
{
    const char *dot = strrchr(field, '.');
    if (!dot || strcmp(dot, ".output") != 0)
        return -1;
    for (size_t s = 0; s < p->n_stages; s++) {
        size_t n = strlen(p->stages[s].name);
        if ((size_t)(dot - field) == n && strncmp(field, p->stages[s].name, n) == 0)
            return (long)s;
    }
    return -1;
}

int eng_field_per_item(const struct pipeline *p, const char *field)
{
    long s = eng_field_stage(p, field);
    return s < 0 || p->stages[s].scope == PIPE_SCOPE_ITEM;
}

/* ---- values kept with the task --------------------------------------- */

static const struct eng_val *val_find(const struct eng_task *t, const char *field)
{
    for (size_t i = 0; i < t->n_vals; i++)
        if (strcmp(t->vals[i].field, field) == 0)
            return &t->vals[i];
    return NULL;
}

/* Keeps value (owned) with t and hands it out. */
static int val_keep(struct eng_task *t, const char *field, char *value, int label, const char **out,
                    int *out_label)
{
    t->vals = bh_xgrow(t->vals, &t->cap_vals, t->n_vals + 1, sizeof(*t->vals));
    t->vals[t->n_vals++] = (struct eng_val){bh_xstrdup(field), value, label};
    *out = value;
    *out_label = label;
    return 0;
}

void eng_task_vals_release(struct eng_task *t)
{
    for (size_t i = 0; i < t->n_vals; i++) {
        free(t->vals[i].field);
        free(t->vals[i].value);
    }
    free(t->vals);
    t->vals = NULL;
    t->n_vals = t->cap_vals = 0;
}

/* ---- one item -------------------------------------------------------- */

static int output_value(struct eng *e, size_t item, size_t s, const char **value, int *label,
                        struct bh_err *err)
{
    const struct eng_cell *c = eng_cell_at(e, item, s);
    const char *name = e->o->p->stages[s].name;
    if (c->state != STORE_DONE)
        return bh_err_set(err, BH_EINTERNAL, "stage '%s' has not finished", name);
    if (!c->output)
        return bh_err_set(err, BH_ETOOBIG,
                          "the outputs of stage '%s' for this item exceed "
                          "%zu MiB together",
                          name, ENG_VALUE_MAX >> 20);
    *value = c->output;
    *label = c->label;
    return 0;
}

/* A source field or a stage's output, for one item (any item for the
 * output of a batch stage). */
static int item_value(struct eng *e, size_t item, const char *field, const char **value, int *label,
                      struct bh_err *err)
{
    long s = eng_field_stage(e->o->p, field);
    if (s >= 0)
        return output_value(e, item, (size_t)s, value, label, err);
    const struct src_field *f =
        item == ENG_BATCH ? NULL : src_item_find(eng_item_need(e, item), field);
    if (!f)
        return bh_err_set(err, BH_ENOTFOUND, "the source has no such field");
    if (!f->value)
        return bh_err_set(err, BH_ETOOBIG, "%s", f->error ? f->error : "the source has no value");
    *value = f->value;
    *label = eng_field_label(e, item, field);
    return 0;
}

/* each.diff: the element's file's part of pr.diff, labelled on its own
 * (path rules for every path of that file — both of a rename —, detectors
 * over that part and its whole files). */
static int each_diff(struct eng_task *t, const char **value, int *label, struct bh_err *err)
{
    struct eng *e = t->e;
    const struct src_field *d = src_item_find(eng_item_need(e, t->item), "pr.diff");
    if (!d || !d->value)
        return bh_err_set(err, BH_ETOOBIG, "pr.diff has no value: %s",
                          d && d->error ? d->error : "the source gave none");
    const struct src_part *part = NULL;
    for (size_t i = 0; i < d->n_parts && !part; i++)
        if (strcmp(d->parts[i].path, t->each) == 0)
            part = &d->parts[i];
    if (!part) /* unknown means top: never an empty diff in its place */
        return bh_err_set(err, BH_ENOTFOUND,
                          "pr.diff has no part for '%s' (a name git quotes, "
                          "or a file the diff leaves out): its label is unknown, so this task "
                          "does not run",
                          t->each);
    char *text = bh_xstrndup(d->value + part->offset, part->length);
    struct src_part one = *part;
    one.offset = 0;
    if (!one.old_path)
        one.old_path = t->each_old; /* the line says it moved: never label it by one path */
    struct pol_value pv;
    pol_label_value(e->lab, "each.diff", pipe_source_field_label(e->o->p, "pr.diff"), text,
                    part->length, &one, 1, NULL, &pv);
    int l = pv.label;
    pol_value_release(&pv);
    return val_keep(t, "each.diff", text, l, value, label);
}

static int each_value(struct eng_task *t, const char *field, const char **value, int *label,
                      struct bh_err *err)
{
    const struct pipe_stage *s = &t->e->o->p->stages[t->stage];
    if (!t->each)
        return bh_err_set(err, BH_ENOTFOUND, "this task has no for_each element");
    if (strcmp(field, "each.diff") == 0)
        return each_diff(t, value, label, err);
    if (strcmp(field, "each") == 0 && s->for_each_stage >= 0) {
        *label = eng_cell_at(t->e, t->item, (size_t)s->for_each_stage)->label;
        *value = t->each;
        return 0;
    }
    if (strcmp(field, "each.path") != 0 && strcmp(field, "each.status") != 0)
        return bh_err_set(err, BH_ENOTFOUND, "the element has no such field");
    *value = strcmp(field, "each.path") == 0 ? t->each : t->status;
    *label = eng_field_label(t->e, t->item, "pr.files");
    return 0;
}

/* ---- over items ------------------------------------------------------ */

/* Names are the items' keys, and a key is a value with a label (a path
 * rule's document, a ref named after a token): a list names an item only
 * when its key is within the clearance of the stage the prompt is for, and
 * joins the key's label; the others are only counted. Reroute targets go
 * toward more privacy, so a list worded for the task's own stage also fits
 * the stage it may be rerouted to. */
struct names {
    struct eng *e;
    int clearance;
    struct bh_buf *b;
    size_t named, hidden;
    int label;
};

static void name_add(struct names *n, size_t item)
{
    int kl = eng_key_label(n->e, item);
    if (kl < 0 || kl > n->clearance) {
        n->hidden++;
        return;
    }
    n->label = pol_label_join(n->e->o->p, n->label, kl); /* before a byte of it is written */
    bh_buf_printf(n->b, "%s%s", n->named++ ? ", " : "", n->e->o->items[item].key);
}

/* Ends a list begun with name_add: "a, b and 2 other items". */
static void names_end(struct names *n)
{
    if (n->hidden)
        bh_buf_printf(n->b, "%s%zu other item%s", n->named ? " and " : "", n->hidden,
                      n->hidden == 1 ? "" : "s");
}

static int task_clearance(const struct eng_task *t)
{
    return egr_stage_clearance(eng_task_gate(t), t->stage);
}

/* "(not available: a, b — failed; c and 1 other item — withheld)" for the
 * items the task's cell left out, worded for the task's clearance; the
 * keys it names are joined into *label. */
static int gone_put(struct eng_task *t, struct bh_buf *out, int *label)
{
    static const int states[] = {STORE_FAILED, STORE_WITHHELD, STORE_SKIPPED};
    struct eng *e = t->e;
    const int *why = t->cell->gone;
    struct bh_buf b;
    int clr = task_clearance(t), any = 0;
    if (!why)
        return 0;
    bh_buf_init(&b, ENG_VALUE_MAX);
    for (size_t k = 0; k < BH_NELEM(states); k++) {
        struct names n = {e, clr, &b, 0, 0, 0};
        for (size_t i = 0; i < e->o->n_items; i++)
            if (why[i] == states[k]) {
                if (n.named + n.hidden == 0)
                    bh_buf_puts(&b, any++ ? "; " : "(not available: ");
                name_add(&n, i);
            }
        if (n.named + n.hidden == 0)
            continue;
        names_end(&n);
        bh_buf_printf(&b, " — %s", store_state_name(states[k]));
        *label = pol_label_join(e->o->p, *label, n.label);
    }
    int rc = any ? bh_buf_printf(out, "%s)\n", b.data) : 0;
    bh_buf_release(&b);
    return rc;
}

/* "## <item>\n<value>\n" for the items avail[0..n); the key's label joins
 * the value's. Items without a value are named in a line, after the cell's
 * own line of items left out. */
static int over_items(struct eng_task *t, const char *field, const size_t *avail, size_t n,
                      const char **value, int *label, struct bh_err *err)
{
    struct eng *e = t->e;
    struct bh_buf b, none;
    int l = 0, rc = 0;
    bh_buf_init(&b, ENG_VALUE_MAX);
    bh_buf_init(&none, ENG_VALUE_MAX);
    struct names missing = {e, task_clearance(t), &none, 0, 0, 0};
    for (size_t k = 0; k < n && rc == 0; k++) {
        const char *v = NULL, *key = e->o->items[avail[k]].key;
        int vl = -1;
        struct bh_err ierr = {0};
        if (item_value(e, avail[k], field, &v, &vl, &ierr) == 0) {
            rc = bh_buf_printf(&b, "## %s\n%s\n", key, v);
            l = pol_label_join(e->o->p, l, vl);
            l = pol_label_join(e->o->p, l, eng_key_label(e, avail[k]));
        } else {
            name_add(&missing, avail[k]);
        }
        eng_item_idle(e, avail[k]); /* its value is copied: its fields may go */
    }
    if (rc == 0)
        rc = gone_put(t, &b, &l);
    if (rc == 0 && missing.named + missing.hidden) {
        names_end(&missing);
        rc = bh_buf_printf(&b, "(not available: %s — no value)\n", none.data);
        l = pol_label_join(e->o->p, l, missing.label);
    }
    bh_buf_release(&none);
    if (rc) {
        bh_buf_release(&b);
        return bh_err_set(err, BH_ETOOBIG,
                          "'%s' over %zu items exceeds %zu MiB: fold it with "
                          "kind \"reduce\" instead",
                          field, n, ENG_VALUE_MAX >> 20);
    }
    return val_keep(t, field, bh_buf_detach(&b), l, value, label);
}

/* After round 1 a fold's part reads the parts of the round before, each
 * under "## part N", in the field that carried the items; other per-item
 * fields are folded into those parts already. */
static int over_parts(struct eng_task *t, const char *field, const char **value, int *label,
                      struct bh_err *err)
{
    struct eng_cell *c = t->cell;
    struct bh_buf b;
    int l = 0, rc = 0;
    if (!c->fold_field || strcmp(field, c->fold_field) != 0)
        return val_keep(t, field, bh_xstrdup("(folded into the parts above)"), 0, value, label);
    size_t start = t->first; /* the round before's first part: parts are numbered in it */
    while (start > 0 && c->tasks[start - 1]->round == c->tasks[t->first]->round)
        start--;
    bh_buf_init(&b, ENG_VALUE_MAX);
    for (size_t k = t->first; k < t->first + t->count && rc == 0; k++) {
        const struct eng_task *part = c->tasks[k];
        rc = bh_buf_printf(&b, "## part %zu\n%s\n", k - start + 1, part->output);
        l = pol_label_join(t->e->o->p, l, part->label);
    }
    if (rc == 0)
        rc = gone_put(t, &b, &l);
    if (rc) {
        bh_buf_release(&b);
        return bh_err_set(err, BH_ETOOBIG, "the parts folded exceed %zu MiB: lower max_items",
                          ENG_VALUE_MAX >> 20);
    }
    return val_keep(t, field, bh_buf_detach(&b), l, value, label);
}

static int batch_value(struct eng_task *t, const char *field, const char **value, int *label,
                       struct bh_err *err)
{
    const struct eng_cell *c = t->cell;
    if (!eng_field_per_item(t->e->o->p, field))
        return item_value(t->e, ENG_BATCH, field, value, label, err);
    if (t->round > 1)
        return over_parts(t, field, value, label, err);
    if (t->round == 1)
        return over_items(t, field, c->avail + t->first, t->count, value, label, err);
    return over_items(t, field, c->avail, c->n_avail, value, label, err);
}

int eng_task_lookup(void *task, const char *field, const char **value, int *label,
                    struct bh_err *err)
{
    struct eng_task *t = task;
    const struct eng_val *kept = val_find(t, field);
    if (kept) {
        *value = kept->value;
        *label = kept->label;
        return 0;
    }
    if (t->item == ENG_BATCH)
        return batch_value(t, field, value, label, err);
    if (strncmp(field, "each", 4) == 0 && (field[4] == '\0' || field[4] == '.'))
        return each_value(t, field, value, label, err);
    return item_value(t->e, t->item, field, value, label, err);
}
