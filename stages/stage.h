/* stages/stage.h — what every stage kind shares: a task's prompt rendered
 * with its label (and, when the stage declassifies, what it substituted),
 * the context-size check, the check of a reply forwarded off the machine,
 * and the end of a task with the stage's declassify applied. The kinds
 * (chat.c, agent.c) differ only in how they talk to the model.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef STAGE_STAGE_H
#define STAGE_STAGE_H

#include <stddef.h>

struct bh_err;
struct eng_task;
struct eng_metrics;
struct pipe_stage;
struct pol_decl_input;
struct prov_reply;

/* What a prompt substituted, kept until the reply for declassify's guards. */
struct stage_inputs {
    struct pol_decl_input *v; /* names borrowed from the pipeline, texts owned */
    size_t n, cap;
};

/* Adds a copy of text (NULL reads as ""). */
void stage_inputs_add(struct stage_inputs *in, const char *name, const char *text, int label);
void stage_inputs_release(struct stage_inputs *in); /* zeroes it */

/* A stage's two messages for a task, rendered, and their label; with what
 * they substituted (in) when the stage declassifies its output. */
struct stage_rendered {
    char *system, *user; /* system NULL when the stage has none */
    int label;
    struct stage_inputs in;
};

/* Renders stage's system and user templates for task t. On error r is
 * released. */
int stage_render_task(struct eng_task *t, size_t stage, struct stage_rendered *r,
                      struct bh_err *err);
void stage_rendered_release(struct stage_rendered *r);

/* Prefixes err with "endpoint 'gpu-box' (http://...), model 'x': ". */
void stage_prefix_where(struct eng_task *t, size_t via, struct bh_err *err);

/* BH_ETOOBIG, saying what to do, when `bytes` of prompt are estimated (bytes
 * / 4 tokens) above the context window in force for stage via: its
 * options.num_ctx, else the one the pre-run probe chose from the model's
 * context length (egr_stage_num_ctx); 0 otherwise, and when neither is known.
 * A model must never silently lose the start of a prompt. */
int stage_fits_context(struct eng_task *t, size_t via, size_t bytes, struct bh_err *err);

/* A reply that says the request was forwarded off the machine (Ollama's
 * remote_host) on a verified-local endpoint marks the model remote for
 * every stage on it (egr_model_mark_remote); then BH_EPOLICY, audited as a
 * breach ("breach: ..."), when the request's label was above what the stub
 * may get (the bottom label); else 0. */
int stage_check_not_forwarded(struct eng_task *t, size_t via, const struct prov_reply *reply,
                              int label, struct bh_err *err);

/* Ends t with output at label: through stage via's declassify when it
 * declares one (guards over in, audited either way), else as it is. */
void stage_task_done(struct eng_task *t, size_t via, const struct stage_inputs *in,
                     const char *output, int label, const struct eng_metrics *m);

/* The stage's output format may want a word after the user message (the
 * shape of findings, stages/output.h): appended to r->user, and counted
 * among declassify's inputs at the bottom label (it is the pipeline's text). */
struct pipeline;
void stage_output_instruction_add(const struct pipeline *p, size_t via, struct stage_rendered *r);

#endif
