/* policy/plan.h — what the gate would decide for every task of one work
 * item, from the item's actual data and without calling any model: the
 * labels of its fields (label.h), propagated stage by stage in run order
 * through outputs, and each stage's `on_sensitive` applied where a prompt's
 * label is above the stage's clearance. `bulkhead plan` prints this; the
 * engine makes the same decision per task with pol_decide().
 *
 * An output's label is its prompt's (a model's reply carries everything it
 * saw), lowered to `declassify.to` when the stage declares one — in a plan
 * that is "if its guards pass", which only the reply can tell. */
#ifndef POL_PLAN_H
#define POL_PLAN_H

#include <stddef.h>

struct pipeline;
struct pol_labeller;
struct pol_value;
struct src_item;

enum pol_decision {
    POL_ALLOW,    /* sent to the stage's endpoint */
    POL_REROUTE,  /* above the clearance; the reroute target runs instead */
    POL_SKIP,     /* above the clearance; on_sensitive skip: withheld */
    POL_REFUSE,   /* above the clearance (of the stage, or of its reroute target) */
    POL_WITHHELD, /* not run: a stage it depends on was skipped, refused or withheld */
};

/* "allow", "reroute", "skip", "refuse", "withheld". */
const char *pol_decision_name(enum pol_decision d);

/* The gate's decision for a prompt of label `label` at stage s, whose
 * effective clearance is `clearance`: POL_ALLOW when label <= clearance,
 * else what the stage's on_sensitive says (POL_REROUTE says nothing about
 * the target: the caller decides that with the target's own prompt). */
enum pol_decision pol_decide(const struct pipeline *p, size_t s, int label, int clearance);

struct pol_task_plan {
    size_t stage;
    char *element; /* for_each pr.files: the file; for_each S.output: "each element"
                      (the count is known only at run time); else NULL. Owned by
                      the item plan */
    int label;     /* the prompt's label with this item's data */
    enum pol_decision decision;
    size_t ran;       /* the stage that runs: stage, or its reroute target */
    int ran_label;    /* the target's prompt label when rerouted, else label */
    int output;       /* the output's label for dependants, -1 when there is none */
    int declassified; /* output lowered by declassify (if its guards pass) */
    char why[256];    /* what carries the label (the highest read), or what withheld it */
    size_t bytes;     /* item tasks: the bytes of the prompt of the stage that runs
                         (ran) known before any model runs — its templates' text and
                         the item's values; a stage's output counts 0, so this is at
                         most what the run renders. 0 for batch tasks */
};

/* The token estimate a run checks every prompt with (stages'
 * stage_fits_context) and `plan` marks tasks with: about 4 bytes a token
 * in English and code, so only prompts that are clearly too long are
 * flagged. */
long pol_tokens_estimate(size_t bytes);

/* 1 when a prompt of that many bytes is estimated over window (a num_ctx;
 * 0 or less: not known, never over). */
int pol_prompt_over(size_t bytes, long window);

struct pol_item_plan {
    struct pol_value *fields; /* per source field, in p->source.fields order */
    size_t n_fields;
    struct pol_task_plan *tasks; /* item-scope tasks in run order */
    size_t n_tasks;
    int *outputs; /* per stage: the label of its output for this item, -1 none */
    int key;      /* the item key's label (pol_label_key): batch prompts name
                     the item by it */
};

/* Plans one item. clearance[n_stages] is each stage's effective clearance
 * (pol_stage_clearance with the verified endpoints). Batch-scope stages are
 * left out (pol_plan_batch). Release with pol_item_plan_release. */
int pol_plan_item(const struct pol_labeller *l, const int *clearance, const struct src_item *item,
                  struct pol_item_plan *out);
void pol_item_plan_release(struct pol_item_plan *ip);

/* Plans the batch-scope stages over every item's plan: a batch task reads
 * the join over the items that produced what it reads (their keys included)
 * and its templates' own text. Fills tasks (one per batch stage, in run
 * order; *n_tasks may be 0). tasks has room for the pipeline's n_stages. */
void pol_plan_batch(const struct pol_labeller *l, const int *clearance,
                    const struct pol_item_plan *items, size_t n_items, struct pol_task_plan *tasks,
                    size_t *n_tasks);

#endif
