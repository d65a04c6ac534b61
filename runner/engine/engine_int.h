/* engine/engine_int.h — private to the engine: the run, its cells and tasks,
 * shared by engine.c (the loop and the task state machine), cells.c (what
 * tasks a stage has for an item, fan-outs, folds, resume), lookup.c (the
 * values a template reads) and elements.c (the lists a fan-out runs over).
 *
 * A cell is one stage for one work item, or a batch stage for the run. It
 * holds the stage's tasks for that item: one, or one per for_each element,
 * or the parts of a fold's rounds. Dependants read the cell, never a task:
 * its state is the worst of its tasks' and its output joins theirs. */
#ifndef ENG_ENGINE_INT_H
#define ENG_ENGINE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/bh_err.h"

struct pol_labeller;
struct pol_value;
struct store_task;

/* The item of a batch task (the run's tasks of scope batch). */
#define ENG_BATCH ((size_t)-1)
/* Its item key in the store and the reports. */
#define ENG_BATCH_KEY "(batch)"

/* Cell and task states besides the STORE_* ones. */
#define ENG_STANDBY 100 /* a reroute target: runs only in place of its stage; not stored */
#define ENG_UNUSED                                                                                 \
    101 /* a cell that has no task in this run (a batch stage's item                               \
           cells; batch cells of a run without items) */

/* Caps: elements of one fan-out, and a value rendered over many items. */
#define ENG_MAX_ELEMENTS 10000
#define ENG_VALUE_MAX ((size_t)64 << 20)

/* A value a lookup built for a task (a batch digest, a file's part of the
 * diff), kept until the task ends: lookups hand out borrowed pointers. */
struct eng_val {
    char *field, *value;
    int label;
};

struct eng_cell;
struct eng_sched;

/* An endpoint that ENG_DOWN_AFTER requests in a row could not reach is down
 * for the rest of this run: its tasks fail at once with one message instead
 * of each trying (and printing) in turn. A resume, a new process, tries it
 * again. */
#define ENG_DOWN_AFTER 3
struct eng_down {
    int in_row;     /* requests in a row that reached no server */
    char since[16]; /* "HH:MM:SS" (UTC) when it went down, "" while up */
    char why[200];  /* the last failure, as the transport said it */
};

struct eng_task {
    struct eng *e;
    struct eng_cell *cell;
    size_t item, stage;   /* item ENG_BATCH for a batch task */
    char *element;        /* the element key, or NULL for a task without one */
    char *each;           /* for_each: the element's text (S.output) or file path (pr.files) */
    char *status;         /* for_each pr.files: A, M, D, R */
    char *each_old;       /* for_each pr.files: the path a rename or copy came from, or NULL */
    size_t round;         /* reduce: 1, 2, ...; 0 for every other task */
    size_t first, count;  /* reduce: what the part folds: cell->avail[first..] in round 1,
                             cell->tasks[first..] (the round before) after */
    int standin;          /* the row that stands for a fan-out or fold that could not
                             be made: it carries the reason */
    int64_t id;           /* store row */
    int state;            /* STORE_* or ENG_STANDBY */
    int routed;           /* via is known (the kind's route was asked, once) */
    size_t via;           /* the stage whose endpoint and model answer: its own, or the
                             target of an on_sensitive reroute; its endpoint's slot is
                             the one the task holds */
    int placed;           /* host is set: the task holds a slot of that host */
    size_t host;          /* the host of its endpoint's pool it runs on (sched.c places it
                             when it starts; a drained host's tasks are placed again) */
    long started_ms;      /* monotonic ms of its start, for the scheduler's estimates */
    size_t moves;         /* times it moved to another host of its pool in this run */
    int reused;           /* done in an earlier attempt of this run */
    char *output;         /* when done */
    int label;            /* of output */
    int quiet;            /* its end is not printed: a message said it for many tasks */
    int attempts;         /* started in this run */
    long retry_at;        /* monotonic ms of the next attempt, 0 when not waiting */
    struct eng_val *vals; /* built by lookups, freed when the task ends */
    size_t n_vals, cap_vals;
};

struct eng_cell {
    size_t item, stage; /* item ENG_BATCH for a batch cell */
    int64_t item_id;    /* the store row of its item */
    int state;          /* STORE_PENDING while open, then DONE, FAILED or WITHHELD;
                           or ENG_STANDBY, ENG_UNUSED */
    int made;           /* its tasks exist (fan-outs over S.output and folds are made
                           when their inputs are ready) */
    int reusable;       /* -1 not decided yet; 1 when every input was finished before this
                           attempt, so results stored by an earlier attempt still hold */
    int from_store;     /* ended with every result taken from an earlier attempt */
    struct eng_task **tasks;
    size_t n_tasks, cap_tasks;
    size_t round_first; /* reduce: index in tasks of the current round's first part */
    size_t *avail;      /* batch: the items whose inputs are all done, in item order */
    size_t n_avail;
    int *gone;              /* batch: per item, why it is left out (STORE_FAILED or
                               STORE_WITHHELD; STORE_DONE when available), or NULL when
                               none is: each task words the line for its own clearance */
    const char *fold_field; /* reduce: the field that carries the parts after round 1 */
    char *output;           /* DONE: what dependants read */
    int label;
};

struct eng {
    const struct eng_opts *o;
    struct eng_summary *sum;
    struct eng_cell *cells; /* [item * n_stages + stage], then a batch cell per stage */
    size_t n_cells;
    struct eng_task **all; /* every task made in this attempt */
    size_t n_all, cap_all;
    struct store_task *stored; /* rows left by earlier attempts, ordered by item then id */
    size_t n_stored;
    struct store_task **by_id; /* the same, ordered by id */
    int64_t batch_item_id;     /* the store row of ENG_BATCH_KEY, 0 when none */
    size_t *busy;              /* in flight per endpoint (waiting retries included) */
    size_t *cap;               /* lowered slots after back-pressure, 0: none */
    long *cap_until;           /* monotonic ms when the lowered cap ends */
    struct eng_down *down;     /* per endpoint: connection failures in a row, down since */
    size_t in_flight;
    struct eng_task **wait; /* the tasks waiting for a retry (retry_at set), in no order */
    size_t waiting, cap_wait;
    uint32_t rng; /* jitter */
    int fatal;    /* the store failed: stop scheduling */
    struct bh_err fatal_err;
    struct eng_sched *sched;  /* sched.c: groups, residency, rate limits */
    struct pol_labeller *lab; /* the pipeline's rules and detectors */
    int *labels;              /* [item * n_fields]: source fields' labels, on first use */
    unsigned char *labelled;  /* per item: its fields (and key) are labelled */
    int *key_labels;          /* per item: its key's label (pol_label_key), once labelled */
    struct eng_prog *prog;    /* progress snapshots (snapshot.c), NULL without a callback */
    size_t *item_busy;        /* per item: its tasks running (items.c: its fields stay) */
    size_t *loaded;           /* items whose fields o->loader read, oldest first */
    size_t n_loaded;
    size_t load_cap; /* items that may hold fields at once: the endpoints' slots */
};

/* ---- engine.c ---- */

/* The cell of stage for item (the batch cell when the stage is batch scope). */
struct eng_cell *eng_cell_at(struct eng *e, size_t item, size_t stage);
/* Records that the store failed: the run stops scheduling and returns err. */
void eng_fatal(struct eng *e, const struct bh_err *err);
/* Ends a task that never started (its inputs failed, its fan-out could not
 * be made): recorded and counted like any end. */
void eng_task_end_unstarted(struct eng_task *t, const struct bh_err *err);
/* "refs/pull/1/head review src/a.c": who a message is about, into buf. */
const char *eng_task_name(const struct eng_task *t, char *buf, size_t size);
/* Monotonic milliseconds. */
long eng_now_ms(void);
/* The endpoint whose slot t holds (or will hold): the host it was placed
 * on, else its via stage's once routed (a pool's first host until placed). */
size_t eng_task_endpoint(const struct eng_task *t);
/* 1 when ep is down (ENG_DOWN_AFTER failures in a row in this run). */
int eng_host_down(const struct eng *e, size_t ep);
/* A live host of ep's pool other than except (-1: none excepted), the
 * least busy, or -1 when there is none. */
long eng_pool_live(const struct eng *e, size_t ep, long except);
/* The endpoint's slots now: max_concurrency, lowered for a while after the
 * server pushed back (a 503). */
size_t eng_slots(struct eng *e, size_t ep);
/* Starts a ready, routed task on its endpoint (the caller checked the slot). */
void eng_task_start(struct eng_task *t);

/* ---- sched.c ---- */

/* The scheduler's state for the run: the (endpoint, model) groups, what is
 * loaded where (asked of each local Ollama endpoint that serves several
 * models, GET /api/ps through the gate, unless max_loaded_models says).
 * Never fails the run: an endpoint that cannot be asked is assumed to hold
 * one model and nothing loaded. */
void eng_sched_new(struct eng *e);
/* Frees it; preloads and unloads still in flight are left to end on their
 * own (their contexts free themselves). */
void eng_sched_free(struct eng *e);
/* One pass: moves every cell on (stage order, then item order), asks the
 * route of each newly ready task, and starts what each endpoint's policy
 * picks. Returns the ms after which a pass should run again although
 * nothing completes (a rate limit), or -1. */
long eng_schedule(struct eng *e);
/* 1 while a preload or unload the scheduler sent is in flight. */
int eng_sched_busy(const struct eng *e);
/* Running tasks per group, and the longest model load replies reported. */
void eng_sched_started(struct eng *e, const struct eng_task *t);
void eng_sched_ended(struct eng *e, const struct eng_task *t);
void eng_sched_load_seen(struct eng *e, int64_t load_ns);

/* ---- cells.c ---- */

/* Makes the cells and the tasks known before the run starts (a task per item
 * and stage, a batch task; fan-outs and folds are made when their inputs
 * are ready), in the store, and reads back what earlier attempts of the run
 * left. */
int eng_cells_init(struct eng *e, struct bh_err *err);
void eng_cells_release(struct eng *e);
/* Moves cell c on: ends it when an input failed, makes its fan-out or fold
 * when its inputs are done, starts its ready tasks while the endpoint has
 * slots (start returns 1 when it has none), settles it when all its tasks
 * ended. Returns 1 when the endpoint's slots are full. */
int eng_cell_step(struct eng *e, struct eng_cell *c, int (*start)(struct eng_task *t));
/* Live task rows of the run (the summary's count). */
size_t eng_cells_count(const struct eng *e);

/* ---- lookup.c ---- */

/* The label of a source field of an item, rules and detectors applied
 * (computed once per item); -1 when the source has no such field. */
int eng_field_label(struct eng *e, size_t item, const char *field);
/* The label of an item's key, which batch prompts name it by (labelled with
 * its fields, once per item). */
int eng_key_label(struct eng *e, size_t item);
/* 1 when field holds one value per work item (a source field, or the output
 * of an item-scope stage): what a batch stage reads over every item. */
int eng_field_per_item(const struct pipeline *p, const char *field);
/* The output of the stage a field "S.output" names, or -1. */
long eng_field_stage(const struct pipeline *p, const char *field);
/* Frees what lookups built for t. */
void eng_task_vals_release(struct eng_task *t);

/* ---- items.c ---- */

/* Per-item state for lazy items (engine/items.c); release frees it (the
 * items themselves are the caller's). */
void eng_items_init(struct eng *e);
void eng_items_release(struct eng *e);
/* The item with its fields loaded (read now when they were not), borrowed
 * until the item is idle (eng_item_idle) or another item needs room; a
 * running task's item stays. A note the load made is said once. */
struct src_item *eng_item_need(struct eng *e, size_t item);
/* A task of the item starts or ends (ENG_BATCH is ignored). */
void eng_item_pin(struct eng *e, size_t item);
void eng_item_unpin(struct eng *e, size_t item);
/* A cell of the item ended, or a batch task is done reading it: its fields
 * are freed unless a task runs or a cell of it may start. */
void eng_item_idle(struct eng *e, size_t item);

/* ---- snapshot.c ---- */

/* Progress snapshots for o->progress (nothing without one): init and
 * release around the run; started and done as tasks start and finish; tick
 * from the loop (it decides when a snapshot is due), final once at the end. */
void eng_prog_init(struct eng *e);
void eng_prog_release(struct eng *e);
void eng_prog_started(struct eng *e, const struct eng_task *t);
void eng_prog_done(struct eng *e, const struct eng_task *t, const struct eng_metrics *m);
void eng_prog_tick(struct eng *e, int final);
/* A message line (no newline) where o->say sends it, else to stderr. */
void eng_say(const struct eng *e, const char *fmt, ...) BH_PRINTF(2, 3);

/* ---- elements.c ---- */

/* One element of a fan-out. */
struct eng_elem {
    char *key;      /* unique within the list: the file path, or the index */
    char *value;    /* pr.files: the path; S.output: the element (a string verbatim,
                       other JSON compact) */
    char *status;   /* pr.files: "A", "M", "D", "R"...; else NULL */
    char *old_path; /* pr.files: the path a rename or copy came from; else NULL */
};

/* The files of a pr.files value ("M\tpath", "R\told -> new": the new
 * path, and the old in old_path), in order; a path listed twice gets " (2)"
 * on its key. Never fails. */
void eng_elems_from_files(const char *files, struct eng_elem **out, size_t *n);
/* The elements of a stage's reply, which must be a JSON array (a reply
 * wrapped in one ``` fence is unwrapped). BH_EREPLY naming stage and what
 * was found (never the reply's text) when it is not; BH_ETOOBIG past
 * ENG_MAX_ELEMENTS. */
int eng_elems_from_json(const char *text, const char *stage, struct eng_elem **out, size_t *n,
                        struct bh_err *err);
void eng_elems_free(struct eng_elem *v, size_t n);

#endif
