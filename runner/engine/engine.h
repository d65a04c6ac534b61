/* engine/engine.h — the run: a task per (item, stage), per for_each element,
 * per batch stage (and per part of a reduce's rounds), driven from one loop.
 * The engine decides what runs when (dependencies, per-endpoint slots),
 * keeps the task state machine in the store, and hands each ready task to its
 * stage kind (stages/), which renders, sends through the egress gate and
 * reports back with eng_task_done / eng_task_fail.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef ENG_ENGINE_H
#define ENG_ENGINE_H

#include <stddef.h>
#include <stdint.h>

struct bh_err;
struct pipeline;
struct store;
struct egr_gate;
struct src_item;
struct eng_task;

/* A stage kind: what a stage does once its inputs are ready. start either
 * returns an error (the task fails, or is withheld for BH_EPOLICY, skipped for BH_ESKIP) or, later,
 * calls exactly one of eng_task_done / eng_task_fail.
 * route (may be NULL: every task answers on its own stage) tells, for a task
 * whose inputs are ready, which stage's endpoint and model start would send
 * it to: its own, or the stage on_sensitive reroutes it to. The scheduler
 * asks once per task, before start, to group tasks by (endpoint, model) and
 * to hold a slot of the endpoint that answers. It must decide as start does
 * (the same labels, the same policy); on error it sets *via to the task's
 * own stage (start then fails the same way). Nothing is sent. */
struct eng_kind {
    const char *name;
    int (*start)(struct eng_task *t, struct bh_err *err);
    int (*route)(struct eng_task *t, size_t *via, struct bh_err *err);
};

/* ---- progress ---------------------------------------------------------- */

/* One stage in a progress snapshot. Counts are tasks of this run; a fan-out
 * adds its elements once its list is ready, so total can grow. */
struct eng_stage_progress {
    const char *name;                       /* borrowed from the pipeline */
    size_t stage;                           /* index in the pipeline's stages */
    size_t endpoint;                        /* index in the pipeline's endpoints */
    int standby;                            /* a reroute target: its work counts under the stage it
                                               stands in for, so it has no tasks of its own */
    size_t total;                           /* tasks known so far */
    size_t done, failed, withheld, skipped; /* ended (done includes reused and cached) */
    size_t in_flight;                       /* started and not ended, waiting retries included */
    size_t cached;                          /* done from the response cache in this attempt */
    size_t reused;                          /* done in an earlier attempt of this run */
    int64_t prompt_tokens, output_tokens;   /* of the replies models gave in this attempt
                                               (cached answers cost none) */
    int64_t active_ms;                      /* from its first task's start to its end (or now); 0
                                               before it starts */
    int ended;                              /* every task has ended and no more will come */
    int ended_now;                          /* it ended since the previous snapshot */
};

/* One endpoint in a progress snapshot. */
struct eng_endpoint_progress {
    const char *name; /* borrowed from the pipeline */
    size_t in_flight;
    const char *last_model; /* the model that answered there last in this attempt (a
                               stand-in for what is loaded), or NULL; borrowed until
                               the callback returns */
};

struct eng_progress {
    int64_t elapsed_ms;                      /* since eng_run started */
    const struct eng_stage_progress *stages; /* in the pipeline's run order */
    size_t n_stages;
    const struct eng_endpoint_progress *endpoints; /* in the pipeline's order */
    size_t n_endpoints;
    int final; /* the last snapshot: the run has stopped */
};

/* Called from the loop about every ENG_PROGRESS_MS, when a stage ends, and
 * once at the end (final). Everything is borrowed for the call. */
typedef void (*eng_progress_fn)(void *ud, const struct eng_progress *p);
#define ENG_PROGRESS_MS 250

/* Where the engine's messages go (a line without its newline): a live
 * display must draw them above itself instead of being overwritten. */
typedef void (*eng_say_fn)(void *ud, const char *line);

/* Reads a lazy work item's fields (struct src_item.lazy: listed with its
 * key and version only) when a task first needs them, and frees them when
 * the engine is done with the item (engine/items.c); key, version and
 * note stay. load returns 1 when it read the fields, 0 when there was
 * nothing to read; what cannot be read becomes the fields' errors. */
struct eng_loader {
    int (*load)(void *ud, struct src_item *it);
    void (*unload)(void *ud, struct src_item *it);
    void *ud;
};

struct eng_opts {
    const struct pipeline *p;
    struct store *store;
    int64_t run_id;
    struct egr_gate *gate;
    struct src_item *items; /* a lazy item's fields are loaded and freed in place */
    size_t n_items;
    const struct eng_loader *loader; /* NULL: every item's fields are there all along */
    const struct eng_kind *kind;     /* the kind every stage runs as, for now "chat" */
    int verbose;                     /* 1: a line per finished task on stderr */
    int no_cache;                    /* 1: the response cache is neither read nor written */
    eng_progress_fn progress;        /* NULL: no snapshots */
    eng_say_fn say;                  /* NULL: messages go to stderr */
    void *ud;                        /* for progress and say */
    int order;                       /* ENG_ORDER_*: how tasks are scheduled */
    int no_batch;                    /* 1: a shard (run --shard): batch-scope stages have no task */
    int batch_only;                  /* 1: a merged state (bulkhead merge): item-scope tasks keep
                                        the results the shards stored, whatever their end state,
                                        and never run; only batch-scope stages run */
};

/* ENG_ORDER_MODEL (default): every endpoint busy, each local endpoint kept on
 * one model while it has work (sched.c). ENG_ORDER_NAIVE: one task at a time,
 * every task of an item before the next item's — a baseline for benchmarks,
 * what one run per pull request would do. */
enum { ENG_ORDER_MODEL, ENG_ORDER_NAIVE };

struct eng_summary {
    size_t tasks; /* tasks of the run: per item and stage, per for_each
                     element, per batch stage, per part of a fold */
    size_t done, failed, withheld;
    size_t skipped;          /* withheld as the pipeline declares (on_sensitive skip,
                                or an input that was): not a refusal */
    size_t retries;          /* attempts made again after a transient failure */
    size_t reused;           /* done in an earlier attempt of this run: not redone */
    int interrupted;         /* SIGINT/SIGTERM stopped the run early */
    size_t item_loads;       /* lazy items' fields read (an item may be read again) */
    size_t items_loaded_max; /* the most items that held loaded fields at once */
};

/* Runs every task of the run to an end state (or until interrupted). */
int eng_run(const struct eng_opts *o, struct eng_summary *sum, struct bh_err *err);

/* Asks a running eng_run to stop: the first call stops starting tasks and
 * lets requests in flight finish; the second abandons them (their tasks stay
 * running in the store and go back to pending on resume). Async-signal-safe. */
void eng_request_stop(void);
/* 0, or how many stop requests were made. */
int eng_stop_requested(void);

/* For stage kinds: */
const struct pipeline *eng_task_pipeline(const struct eng_task *t);
size_t eng_task_stage(const struct eng_task *t);
/* The work item's key, or "(batch)" for a task of a batch-scope stage. */
const char *eng_task_item(const struct eng_task *t);
/* The for_each element's key (a file path, an index "0"), a fold's part
 * ("round 1 part 2"), or NULL. Borrowed for the task's life. */
const char *eng_task_element(const struct eng_task *t);
struct egr_gate *eng_task_gate(const struct eng_task *t);
/* The host the task runs on: an index into the pipeline's endpoints, a host
 * of its stage's (or its reroute target's) endpoint's pool. What the stage
 * kind hands the gate (egr_send_req.host) and names in its errors. */
size_t eng_task_host(const struct eng_task *t);
/* The task's work item with its fields loaded (NULL for a batch task):
 * borrowed while the task runs (from the kind's start to its end). */
const struct src_item *eng_task_source(struct eng_task *t);
/* The store that holds the response cache (store/cache.h), or NULL when the
 * run does not use it (--no-cache). */
struct store *eng_task_cache(const struct eng_task *t);
/* A warning about t ("bulkhead: ITEM STAGE: warning: ...") where the run's
 * messages go. */
void eng_task_warn(const struct eng_task *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The run's labeller (the pipeline's rules and detectors), for the guards. */
struct pol_labeller;
const struct pol_labeller *eng_task_labeller(const struct eng_task *t);
/* A stage_lookup_fn over what the task may read (pipelines/README.md, "How
 * stages run"): its item's source fields and upstream outputs (a for_each
 * stage's output is its elements' outputs, each under "### <element>"); in a
 * for_each task each.path, each.status, each.diff (that file's part of
 * pr.diff, labelled on its own) or each; in a batch task every item's value
 * under "## <item>", with the items that have none named. The value is
 * borrowed until the task ends. Fails (the task fails) when a value is
 * missing: a source field without a value, a file without a part of the
 * diff, an output over the caps. */
int eng_task_lookup(void *task, const char *field, const char **value, int *label,
                    struct bh_err *err);

struct eng_metrics {
    int64_t prompt_tokens, output_tokens, load_ns, total_ns;
    const char *answered_by; /* the model the reply named, or NULL */
    int rerouted;            /* on_sensitive reroute: stage `via` answered */
    size_t via;              /* the stage whose endpoint and model answered */
    int cached;              /* answered from the response cache: nothing was sent */
    const char *note;        /* a warning kept with the result, or NULL */
};
/* The task finished: output carries label. Copies what it keeps. */
void eng_task_done(struct eng_task *t, const char *output, int label, const struct eng_metrics *m);
/* The task failed with err (BH_EPOLICY: withheld). */
void eng_task_fail(struct eng_task *t, const struct bh_err *err);

/* This attempt failed in a way that may pass later (a connection error, a
 * 429, a 5xx, a cut stream, a stall). The engine starts the task again on the same
 * endpoint after an exponential backoff with jitter, or after retry_after_ms
 * when the server asked for longer (-1: it did not ask); the task keeps its
 * endpoint slot meanwhile. A retry never changes the endpoint, the model or
 * the clearance: the stage kind simply runs again, through the gate again.
 * When the attempts are used up (the endpoint's max_attempts), the endpoint is down, or
 * the server asks for a
 * wait longer than ENG_MAX_RETRY_WAIT_MS, the task fails with err.
 * backpressure: the server said it is full (Ollama's 503): the engine also
 * sends fewer requests to the endpoint at once for a while. */
struct eng_retry {
    long retry_after_ms; /* the server's Retry-After, -1 when none */
    int backpressure;    /* see above */
    int unreachable;     /* no server answered (connection refused, reset, timed out
                            before any reply): ENG_DOWN_AFTER of those in a row mark the
                            endpoint down, and its waiting tasks fail at once */
};
void eng_task_retry(struct eng_task *t, const struct eng_retry *how, const struct bh_err *err);
/* 1 for the first attempt of the task in this run, 2 for the first retry... */
int eng_task_attempt(const struct eng_task *t);

#define ENG_MAX_RETRY_WAIT_MS 60000L

#endif
