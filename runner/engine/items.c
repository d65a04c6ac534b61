/* engine/items.c — work items' fields held only while the run needs them.
 *
 * A source may list its items before the run with only what the run must
 * know up front (key, version: the run's identity and resume) and read
 * each item's fields when a task first needs them (eng_opts.loader). The
 * engine then holds them while the item is in use and frees them when it
 * is done: when the item's last cell has ended, or, for an item whose
 * next stage waits for something else, when room is needed for another
 * item. What stays for the whole run is small: the key, the version, the
 * note and the computed labels (lookup.c labels an item's fields once).
 *
 * An item with a task running (started, retries included) is pinned: its
 * fields are borrowed by the renderer and the agent's tools until the task
 * ends. The other loaded items are evicted oldest first once load_cap
 * items hold fields: load_cap is the endpoints' slots together, as many
 * items as tasks can run at once. Memory then follows the concurrency, not
 * the batch; a field read again is the same text (the source reads the
 * commits the version names) and its labels are not computed again.
 *
 * A pr.files fan-out is made, as before, when its inputs are ready: its
 * item is read then, and freed again if room is needed before its tasks
 * start. Making fan-outs only when there was room hid their work from the
 * scheduler, which then left the model they need early and came back to
 * it (a model load more, on a real server seconds).
 *
 * Trade-off taken: an item whose stages wait behind other items' (plan
 * for every item, then review; a fan-out made in the first pass) may be
 * read more than once. That costs a diff per read; holding every item
 * costs memory that grows with the repository. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "pipeline/pipeline.h"
#include "sources/src_git.h"
#include "store/store.h"
#include "util/bh_xmalloc.h"

void eng_items_init(struct eng *e)
{
    const struct eng_opts *o = e->o;
    e->item_busy = bh_xcalloc(o->n_items + 1, sizeof(*e->item_busy));
    e->loaded = bh_xcalloc(o->n_items + 1, sizeof(*e->loaded));
    e->load_cap = 0;
    for (size_t ep = 0; ep < o->p->n_endpoints; ep++)
        e->load_cap += eng_slots(e, ep);
    if (e->load_cap == 0)
        e->load_cap = 1;
}

void eng_items_release(struct eng *e)
{
    /* The items are the caller's: what is still loaded is freed with them. */
    free(e->item_busy);
    free(e->loaded);
}

static void unload_at(struct eng *e, size_t k)
{
    struct src_item *it = &e->o->items[e->loaded[k]];
    e->o->loader->unload(e->o->loader->ud, it);
    memmove(&e->loaded[k], &e->loaded[k + 1], (e->n_loaded - k - 1) * sizeof(*e->loaded));
    e->n_loaded--;
}

/* Whether a cell of the item may start soon: pending, with every input
 * it has for the item ended. */
static int cell_due(struct eng *e, size_t item, size_t s)
{
    const struct pipe_stage *st = &e->o->p->stages[s];
    if (st->scope != PIPE_SCOPE_ITEM || eng_cell_at(e, item, s)->state != STORE_PENDING)
        return 0;
    for (size_t k = 0; k < st->n_deps; k++)
        if (eng_cell_at(e, item, st->deps[k])->state == STORE_PENDING)
            return 0;
    return 1;
}

/* The item's fields are in use (a task runs) or soon will be (a cell of
 * it may start). */
static int wanted(struct eng *e, size_t item)
{
    if (e->item_busy[item])
        return 1;
    for (size_t s = 0; s < e->o->p->n_stages; s++)
        if (cell_due(e, item, s))
            return 1;
    return 0;
}

/* Frees the loaded items that are not wanted; then, while no room is left
 * for one more, the oldest that no running task holds (read again when
 * their turn comes). Pinned items may keep it over the cap for a while. */
static void make_room(struct eng *e)
{
    for (size_t k = 0; k < e->n_loaded;) {
        if (!wanted(e, e->loaded[k]))
            unload_at(e, k);
        else
            k++;
    }
    for (size_t k = 0; k < e->n_loaded && e->n_loaded >= e->load_cap;) {
        if (e->item_busy[e->loaded[k]] == 0)
            unload_at(e, k);
        else
            k++;
    }
}

struct src_item *eng_item_need(struct eng *e, size_t item)
{
    struct src_item *it = &e->o->items[item];
    if (!e->o->loader || it->fields || !it->lazy)
        return it;
    int noted = it->note != NULL;
    if (e->n_loaded >= e->load_cap)
        make_room(e);
    if (!e->o->loader->load(e->o->loader->ud, it))
        return it;
    e->loaded[e->n_loaded++] = item;
    e->sum->item_loads++;
    if (e->n_loaded > e->sum->items_loaded_max)
        e->sum->items_loaded_max = e->n_loaded;
    if (!noted && it->note) /* known only now that its text was read */
        eng_say(e, "bulkhead: note: %s", it->note);
    return it;
}

void eng_item_pin(struct eng *e, size_t item)
{
    if (item != ENG_BATCH)
        e->item_busy[item]++;
}

void eng_item_unpin(struct eng *e, size_t item)
{
    if (item != ENG_BATCH && e->item_busy[item] > 0)
        e->item_busy[item]--;
}

void eng_item_idle(struct eng *e, size_t item)
{
    if (!e->o->loader || item == ENG_BATCH || wanted(e, item))
        return;
    for (size_t k = 0; k < e->n_loaded; k++)
        if (e->loaded[k] == item) {
            unload_at(e, k);
            return;
        }
}
