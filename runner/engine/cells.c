/* engine/cells.c — what tasks a stage has for an item, and when.
 *
 * A cell is a stage for one work item, or a batch stage for the run. A plain
 * cell has one task from the start. A fan-out (for_each) or a fold (kind
 * reduce) is made when its inputs have ended, because only then is its list
 * known: the files of pr.files, the elements of S's reply, the items that
 * produced something. A fold then makes its rounds one after the other, each
 * folding at most max_items inputs per part, until one part remains.
 *
 * Resume: every task has a row (run, item, stage, element). The rows of an
 * earlier attempt are read once; a task made again finds its row, and a row
 * that was done is taken as it is, unless the cell's inputs were not all
 * finished before this attempt (a batch stage that read only some items):
 * then what it read may change, and it runs again. A cell whose fan-out
 * could not be made keeps a stand-in row (element "") with the reason; rows
 * that are no longer part of a cell when it ends are removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "store/store.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

static const struct pipe_stage *stage_of(const struct eng *e, const struct eng_cell *c)
{
    return &e->o->p->stages[c->stage];
}

static struct eng_task *task_new(struct eng *e, struct eng_cell *c, const char *element)
{
    struct eng_task *t = bh_xcalloc(1, sizeof(*t));
    *t = (struct eng_task){.e = e,
                           .cell = c,
                           .item = c->item,
                           .stage = c->stage,
                           .element = bh_xstrdup(element),
                           .label = -1};
    c->tasks = bh_xgrow(c->tasks, &c->cap_tasks, c->n_tasks + 1, sizeof(*c->tasks));
    c->tasks[c->n_tasks++] = t;
    e->all = bh_xgrow(e->all, &e->cap_all, e->n_all + 1, sizeof(*e->all));
    e->all[e->n_all++] = t;
    return t;
}

static int task_row(struct eng *e, struct eng_task *t, struct bh_err *err)
{
    return store_task_put(e->o->store, e->o->run_id, t->cell->item_id,
                          e->o->p->stages[t->stage].name, t->element, &t->id, err);
}

/* ---- rows of earlier attempts --------------------------------------- */

static int by_id(const void *a, const void *b)
{
    const struct store_task *x = *(struct store_task *const *)a;
    const struct store_task *y = *(struct store_task *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

static int stored_load(struct eng *e, struct bh_err *err)
{
    int rc = store_tasks_list(e->o->store, e->o->run_id, &e->stored, &e->n_stored, err);
    if (rc)
        return rc;
    e->by_id = bh_xcalloc(e->n_stored + 1, sizeof(*e->by_id));
    for (size_t i = 0; i < e->n_stored; i++)
        e->by_id[i] = &e->stored[i];
    qsort(e->by_id, e->n_stored, sizeof(*e->by_id), by_id);
    return 0;
}

static struct store_task *stored_find(const struct eng *e, int64_t id)
{
    struct store_task key = {.id = id}, *kp = &key;
    struct store_task **hit = bsearch(&kp, e->by_id, e->n_stored, sizeof(*e->by_id), by_id);
    return hit ? *hit : NULL;
}

/* On a merged state an item-scope task is the shard's, as the shard ended
 * it: failed and withheld ones are not tried again (that is the shard's to
 * resume before the merge), so the merged run cannot differ from the shards. */
static int adopt_merged(struct eng *e, struct eng_task *t, struct store_task *row)
{
    static const struct bh_err missing = {
        .code = BH_EINVAL,
        .msg = "not run: the merged state holds no result for it (items of a merged state "
               "run only in their shard: merge every shard's state)"};
    if (!e->o->batch_only || t->item == ENG_BATCH || t->state != STORE_PENDING)
        return 0;
    if (!row || row->state == STORE_PENDING || row->state == STORE_RUNNING) {
        eng_task_end_unstarted(t, &missing);
        return 1;
    }
    if (row->state == STORE_DONE)
        return 0;
    t->state = row->state;
    t->reused = 1;
    t->quiet = 1;
    e->sum->failed += row->state == STORE_FAILED;
    e->sum->withheld += row->state == STORE_WITHHELD;
    e->sum->skipped += row->state == STORE_SKIPPED;
    return 1;
}

/* A task whose row an earlier attempt finished takes that result, when the
 * cell's inputs were finished before this attempt too. */
static void adopt(struct eng *e, struct eng_task *t)
{
    struct store_task *row = stored_find(e, t->id);
    if (adopt_merged(e, t, row))
        return;
    int merged = e->o->batch_only && t->item != ENG_BATCH;
    if ((t->cell->reusable != 1 && !merged) || t->state != STORE_PENDING || !row ||
        row->state != STORE_DONE)
        return; /* failed and withheld tasks are tried again */
    t->state = STORE_DONE;
    t->reused = 1;
    t->output = row->output ? row->output : bh_xstrdup(""); /* taken: outputs can be large */
    row->output = NULL;
    t->label = pipe_label_find(e->o->p, row->label);
    e->sum->reused++;
}

/* Removes the cell's rows of earlier attempts that are not among its tasks
 * now (the stand-in of a fan-out that is made now, parts of another fold). */
static void stale_drop(struct eng *e, struct eng_cell *c)
{
    const char *name = stage_of(e, c)->name;
    size_t lo = 0, hi = e->n_stored;
    while (lo < hi) { /* the item's first row: rows are ordered by item */
        size_t mid = lo + (hi - lo) / 2;
        if (e->stored[mid].item_id < c->item_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < e->n_stored && e->stored[i].item_id == c->item_id && !e->fatal; i++) {
        const struct store_task *row = &e->stored[i];
        int mine = 0;
        if (strcmp(row->stage, name) != 0)
            continue;
        for (size_t k = 0; k < c->n_tasks && !mine; k++)
            mine = c->tasks[k]->id == row->id;
        struct bh_err err = {0};
        if (!mine && store_task_drop(e->o->store, row->id, &err))
            eng_fatal(e, &err);
    }
}

/* ---- making cells ---------------------------------------------------- */

static int cell_premade(const struct pipe_stage *s)
{
    return !s->for_each && s->kind != PIPE_KIND_REDUCE;
}

/* The cell's state before the run, and its task when it has one from the start. */
static int cell_init(struct eng *e, struct eng_cell *c, int unused, struct bh_err *err)
{
    const struct pipe_stage *s = stage_of(e, c);
    c->reusable = -1;
    c->label = -1;
    c->state = s->standby ? ENG_STANDBY : unused ? ENG_UNUSED : STORE_PENDING;
    if (c->state != STORE_PENDING || !cell_premade(s))
        return 0;
    c->made = 1;
    return task_row(e, task_new(e, c, NULL), err);
}

static int cells_make_all(struct eng *e, struct bh_err *err)
{
    const struct eng_opts *o = e->o;
    size_t ns = o->p->n_stages;
    int rc = 0, any_batch = 0;
    for (size_t s = 0; s < ns && !o->no_batch; s++)
        any_batch |= o->p->stages[s].scope == PIPE_SCOPE_BATCH && !o->p->stages[s].standby;
    for (size_t i = 0; rc == 0 && i < o->n_items; i++) {
        int64_t item_id = 0;
        rc = store_item_put(o->store, o->run_id, o->items[i].key, &item_id, err);
        for (size_t s = 0; rc == 0 && s < ns; s++) {
            struct eng_cell *c = &e->cells[i * ns + s];
            *c = (struct eng_cell){.item = i, .stage = s, .item_id = item_id};
            rc = cell_init(e, c, o->p->stages[s].scope == PIPE_SCOPE_BATCH, err);
        }
    }
    /* The run's batch tasks come after every item's (the store lists by item). */
    if (rc == 0 && any_batch && o->n_items)
        rc = store_item_put(o->store, o->run_id, ENG_BATCH_KEY, &e->batch_item_id, err);
    for (size_t s = 0; rc == 0 && s < ns; s++) {
        struct eng_cell *c = &e->cells[o->n_items * ns + s];
        *c = (struct eng_cell){.item = ENG_BATCH, .stage = s, .item_id = e->batch_item_id};
        rc = cell_init(
            e, c, o->p->stages[s].scope != PIPE_SCOPE_BATCH || !o->n_items || o->no_batch, err);
    }
    return rc;
}

int eng_cells_init(struct eng *e, struct bh_err *err)
{
    e->n_cells = (e->o->n_items + 1) * e->o->p->n_stages;
    e->cells = bh_xcalloc(e->n_cells, sizeof(*e->cells));
    /* One transaction for all rows: one disk sync, not one per task. */
    int rc = store_batch_begin(e->o->store, err);
    if (rc == 0)
        rc = cells_make_all(e, err);
    if (rc == 0)
        rc = store_batch_commit(e->o->store, err);
    if (rc == 0)
        rc = stored_load(e, err);
    return rc; /* on error the batch is rolled back when the store is freed */
}

void eng_cells_release(struct eng *e)
{
    for (size_t i = 0; i < e->n_all; i++) {
        struct eng_task *t = e->all[i];
        eng_task_vals_release(t);
        free(t->element);
        free(t->each);
        free(t->status);
        free(t->each_old);
        free(t->output);
        free(t);
    }
    for (size_t i = 0; e->cells && i < e->n_cells; i++) {
        free(e->cells[i].tasks);
        free(e->cells[i].avail);
        free(e->cells[i].gone);
        free(e->cells[i].output);
    }
    free(e->cells);
    free(e->all);
    free(e->by_id);
    store_tasks_free(e->stored, e->n_stored);
}

size_t eng_cells_count(const struct eng *e)
{
    return e->n_all; /* stand-ins of earlier attempts are dropped, not made */
}

/* ---- inputs ---------------------------------------------------------- */

static int ended(int state)
{
    return state != STORE_PENDING && state != STORE_RUNNING;
}

static int blocked_by(struct eng *e, const struct eng_cell *d, const char *scope,
                      struct bh_err *err)
{
    return bh_err_set(err,
                      d->state == STORE_WITHHELD  ? BH_EPOLICY
                      : d->state == STORE_SKIPPED ? BH_ESKIP
                                                  : BH_EINVAL,
                      "not run: stage '%s' %s%s", stage_of(e, d)->name, store_state_name(d->state),
                      scope);
}

/* Whether an item has every input of batch stage s from item-scope stages;
 * when not, *why is the state of the first that is not done. */
static int item_has_inputs(struct eng *e, size_t item, const struct pipe_stage *s, int *why)
{
    for (size_t k = 0; k < s->n_deps; k++) {
        const struct pipe_stage *d = &e->o->p->stages[s->deps[k]];
        if (d->standby || d->scope == PIPE_SCOPE_BATCH)
            continue;
        const struct eng_cell *dc = eng_cell_at(e, item, s->deps[k]);
        if (dc->state != STORE_DONE) {
            *why = dc->state;
            return 0;
        }
    }
    return 1;
}

/* A batch cell sees the items that produced every input it reads. None: it
 * cannot run (withheld when every item was withheld). */
static int batch_view(struct eng *e, struct eng_cell *c, struct bh_err *err)
{
    const struct pipe_stage *s = stage_of(e, c);
    int *why = bh_xcalloc(e->o->n_items + 1, sizeof(*why));
    size_t failed = 0, withheld = 0, skipped = 0;
    c->avail = bh_xcalloc(e->o->n_items + 1, sizeof(*c->avail));
    for (size_t i = 0; i < e->o->n_items; i++) {
        why[i] = STORE_DONE;
        if (item_has_inputs(e, i, s, &why[i]))
            c->avail[c->n_avail++] = i;
        else if (why[i] == STORE_WITHHELD)
            withheld++;
        else if (why[i] == STORE_SKIPPED)
            skipped++;
        else
            failed++;
    }
    if (failed + withheld + skipped)
        c->gone = why; /* worded per task (lookup.c): keys have labels */
    else
        free(why);
    if (c->n_avail)
        return 1;
    char also[64] = "";
    if (skipped)
        snprintf(also, sizeof(also), ", %zu skipped as the pipeline declares", skipped);
    return bh_err_set(err,
                      failed     ? BH_EINVAL
                      : withheld ? BH_EPOLICY
                                 : BH_ESKIP,
                      "not run: no work item produced what this stage reads (%zu failed, %zu "
                      "withheld%s)",
                      failed, withheld, also);
}

/* 1 when every input of the cell has ended and it may run, 0 to wait, or a
 * negative code with err saying which input stops it. */
static int cell_inputs(struct eng *e, struct eng_cell *c, struct bh_err *err)
{
    const struct pipe_stage *s = stage_of(e, c);
    int batch = c->item == ENG_BATCH;
    for (size_t k = 0; k < s->n_deps; k++) {
        const struct pipe_stage *d = &e->o->p->stages[s->deps[k]];
        size_t n = batch && d->scope == PIPE_SCOPE_ITEM ? e->o->n_items : 1;
        for (size_t i = 0; i < n; i++) {
            const struct eng_cell *dc = eng_cell_at(e, batch ? i : c->item, s->deps[k]);
            if (dc->state == ENG_STANDBY)
                continue;
            if (!ended(dc->state))
                return 0;
            if (n == 1 && dc->state != STORE_DONE)
                return blocked_by(e, dc, batch ? "" : " for this item", err);
        }
    }
    return batch ? batch_view(e, c, err) : 1;
}

/* Whether every input of the cell was finished before this attempt, so
 * that results an earlier attempt stored for it still hold. */
static int inputs_from_store(struct eng *e, const struct eng_cell *c)
{
    const struct pipe_stage *s = stage_of(e, c);
    int batch = c->item == ENG_BATCH;
    for (size_t k = 0; k < s->n_deps; k++) {
        const struct pipe_stage *d = &e->o->p->stages[s->deps[k]];
        size_t n = batch && d->scope == PIPE_SCOPE_ITEM ? e->o->n_items : 1;
        for (size_t i = 0; i < n; i++) {
            const struct eng_cell *dc = eng_cell_at(e, batch ? i : c->item, s->deps[k]);
            if (dc->state != ENG_STANDBY && !dc->from_store)
                return 0;
        }
    }
    return 1;
}

/* ---- fan-outs and folds ---------------------------------------------- */

/* A stand-in row carries why the cell could not run. */
static void cell_stop(struct eng *e, struct eng_cell *c, const struct bh_err *why)
{
    size_t open = 0;
    for (size_t i = 0; i < c->n_tasks; i++)
        if (c->tasks[i]->state == STORE_PENDING) {
            eng_task_end_unstarted(c->tasks[i], why);
            open++;
        }
    if (open)
        return;
    struct bh_err err = {0};
    struct eng_task *t = task_new(e, c, NULL);
    t->standin = 1;
    if (task_row(e, t, &err))
        eng_fatal(e, &err);
    else
        eng_task_end_unstarted(t, why);
}

/* Rows for new tasks, in one transaction (the run's group commit when one
 * is open: committed with it); the store failing stops the run. */
static void rows_put(struct eng *e, struct eng_cell *c, size_t from)
{
    struct bh_err err = {0};
    int own = !store_batch_open(e->o->store);
    int rc = own ? store_batch_begin(e->o->store, &err) : 0;
    for (size_t i = from; rc == 0 && i < c->n_tasks; i++)
        rc = task_row(e, c->tasks[i], &err);
    if (rc == 0 && own)
        rc = store_batch_commit(e->o->store, &err);
    if (rc)
        eng_fatal(e, &err);
    for (size_t i = from; rc == 0 && i < c->n_tasks; i++)
        adopt(e, c->tasks[i]);
}

static int list_elems(struct eng *e, struct eng_cell *c, struct eng_elem **v, size_t *n,
                      struct bh_err *err)
{
    const struct pipe_stage *s = stage_of(e, c);
    if (strcmp(s->for_each, "pr.files") == 0) {
        const struct src_field *f = src_item_find(eng_item_need(e, c->item), "pr.files");
        if (!f || !f->value)
            return bh_err_set(err, BH_ENOTFOUND, "for_each: pr.files has no value: %s",
                              f && f->error ? f->error : "the source gave none");
        eng_elems_from_files(f->value, v, n);
        return 0;
    }
    const struct eng_cell *src = eng_cell_at(e, c->item, (size_t)s->for_each_stage);
    return eng_elems_from_json(src->output, e->o->p->stages[src->stage].name, v, n, err);
}

static int fanout_make(struct eng *e, struct eng_cell *c, struct bh_err *err)
{
    struct eng_elem *v = NULL;
    size_t n = 0;
    int rc = list_elems(e, c, &v, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct eng_task *t = task_new(e, c, v[i].key);
        t->each = v[i].value;
        t->status = v[i].status;
        t->each_old = v[i].old_path;
        v[i].value = v[i].status = v[i].old_path = NULL;
    }
    eng_elems_free(v, n);
    if (rc == 0)
        rows_put(e, c, 0);
    return rc;
}

/* The field that carries a fold's parts after round 1: the first the
 * template reads that has a value per item. */
static const char *fold_field(const struct pipeline *p, const struct pipe_stage *s)
{
    for (size_t i = 0; i < s->n_reads; i++)
        if (eng_field_per_item(p, s->reads[i]))
            return s->reads[i];
    return NULL;
}

/* Round r of a fold: parts of at most max_items inputs each, over the items
 * (round 1) or the parts of the round before. */
static void fold_round(struct eng *e, struct eng_cell *c, size_t round)
{
    size_t max = stage_of(e, c)->max_items > 1 ? (size_t)stage_of(e, c)->max_items : 2;
    size_t base = round == 1 ? 0 : c->round_first;
    size_t n = round == 1 ? c->n_avail : c->n_tasks - c->round_first;
    size_t from = c->n_tasks;
    for (size_t k = 0; k * max < n; k++) {
        char key[64];
        snprintf(key, sizeof(key), "round %zu part %zu", round, k + 1);
        struct eng_task *t = task_new(e, c, key);
        t->round = round;
        t->first = base + k * max;
        t->count = n - k * max < max ? n - k * max : max;
    }
    c->round_first = from;
    rows_put(e, c, from);
}

/* Makes the cell's tasks once its inputs are ready; on failure the cell
 * ends through a stand-in that says why. */
static void cell_make(struct eng *e, struct eng_cell *c)
{
    struct bh_err err = {0};
    c->made = 1;
    if (stage_of(e, c)->kind == PIPE_KIND_REDUCE) {
        c->fold_field = fold_field(e->o->p, stage_of(e, c));
        fold_round(e, c, 1);
    } else if (fanout_make(e, c, &err)) {
        cell_stop(e, c, &err);
    }
}

/* ---- ending a cell --------------------------------------------------- */

/* A for_each stage's output: every element's under "### <element>". The
 * headers carry the list (file names, how many elements), so the label
 * joins the list's too. */
static void fanout_output(struct eng *e, struct eng_cell *c)
{
    const struct pipe_stage *s = stage_of(e, c);
    struct bh_buf b;
    int label = s->for_each_stage >= 0 ? eng_cell_at(e, c->item, (size_t)s->for_each_stage)->label
                                       : eng_field_label(e, c->item, "pr.files");
    int rc = 0;
    bh_buf_init(&b, ENG_VALUE_MAX);
    for (size_t i = 0; i < c->n_tasks && rc == 0; i++) {
        rc = bh_buf_printf(&b, "### %s\n%s\n", c->tasks[i]->element, c->tasks[i]->output);
        label = pol_label_join(e->o->p, label, c->tasks[i]->label);
    }
    c->label = label;
    c->output = rc ? NULL : bh_buf_detach(&b); /* NULL: too large, dependants say so */
    bh_buf_release(&b);
}

static int worst_state(const struct eng_cell *c, size_t from)
{
    int failed = 0, withheld = 0, skipped = 0;
    for (size_t i = from; i < c->n_tasks; i++) {
        failed |= c->tasks[i]->state == STORE_FAILED;
        withheld |= c->tasks[i]->state == STORE_WITHHELD;
        skipped |= c->tasks[i]->state == STORE_SKIPPED;
    }
    return failed ? STORE_FAILED : withheld ? STORE_WITHHELD : skipped ? STORE_SKIPPED : STORE_DONE;
}

/* Whether a stage's output is read by another stage (dependants wait for
 * what they read, so a read is an edge). */
static int output_read(const struct pipeline *p, size_t stage)
{
    for (size_t t = 0; t < p->n_stages; t++)
        for (size_t k = 0; k < p->stages[t].n_deps; k++)
            if (p->stages[t].deps[k] == stage)
                return 1;
    return 0;
}

/* An ended cell keeps in memory only what dependants read: its tasks'
 * outputs are in the store (and folded into the cell's), and so is the
 * cell's own when no stage reads it. */
static void outputs_drop(struct eng *e, struct eng_cell *c)
{
    for (size_t i = 0; i < c->n_tasks; i++) {
        free(c->tasks[i]->output);
        c->tasks[i]->output = NULL;
    }
    if (!output_read(e->o->p, c->stage)) {
        free(c->output);
        c->output = NULL;
    }
}

/* Every task of the cell has ended: the cell ends too, or a fold goes on
 * to its next round (returns 1 then). */
static int cell_settle(struct eng *e, struct eng_cell *c)
{
    const struct pipe_stage *s = stage_of(e, c);
    int state = worst_state(c, 0);
    size_t last = c->n_tasks - (c->n_tasks > 0);
    if (state == STORE_DONE && s->kind == PIPE_KIND_REDUCE && c->n_tasks - c->round_first > 1) {
        fold_round(e, c, c->tasks[last]->round + 1);
        return 1;
    }
    c->state = state;
    c->from_store = c->reusable == 1;
    for (size_t i = 0; i < c->n_tasks; i++)
        c->from_store &= c->tasks[i]->reused;
    if (state == STORE_DONE && s->for_each) {
        fanout_output(e, c);
    } else if (state == STORE_DONE) {
        c->output = c->tasks[last]->output; /* taken: nothing reads a task's after this */
        c->tasks[last]->output = NULL;
        c->label = c->tasks[last]->label;
    }
    outputs_drop(e, c);
    if (!cell_premade(s))
        stale_drop(e, c);
    eng_item_idle(e, c->item);
    return 0;
}

static int all_ended(const struct eng_cell *c)
{
    for (size_t i = 0; i < c->n_tasks; i++)
        if (!ended(c->tasks[i]->state))
            return 0;
    return 1;
}

/* The first time the cell's inputs are all ended: it is stopped, or made
 * and given what an earlier attempt finished. 0 while it must wait. */
static int cell_ready(struct eng *e, struct eng_cell *c)
{
    struct bh_err err = {0};
    int r = cell_inputs(e, c, &err);
    if (r == 0)
        return 0;
    c->reusable = r > 0 && inputs_from_store(e, c);
    if (r < 0) {
        cell_stop(e, c, &err);
        return 1;
    }
    if (!c->made)
        cell_make(e, c);
    else
        for (size_t i = 0; i < c->n_tasks; i++)
            adopt(e, c->tasks[i]);
    return 1;
}

int eng_cell_step(struct eng *e, struct eng_cell *c, int (*start)(struct eng_task *t))
{
    if (c->state != STORE_PENDING || (c->reusable < 0 && !cell_ready(e, c)))
        return 0;
    for (;;) {
        if (e->fatal)
            return 0;
        for (size_t i = c->round_first; i < c->n_tasks; i++)
            if (c->tasks[i]->state == STORE_PENDING && start(c->tasks[i]))
                return 1; /* the endpoint is full */
        if (!all_ended(c) || !cell_settle(e, c))
            return 0;
    }
}
