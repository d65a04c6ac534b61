/* stages/kinds.h — the stage kinds as the engine sees them: one eng_kind
 * whose start renders a task's prompt, applies on_sensitive, and hands the
 * prompt to the kind of the stage that runs (chat, agent; reduce folds are
 * chat requests) — so the engine needs to know nothing of kinds.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef STAGE_KINDS_H
#define STAGE_KINDS_H

#include <stddef.h>

#include "engine/engine.h"

struct src_item;
struct stage_rendered;

/* Every stage of a run runs through this. */
extern const struct eng_kind stage_kind;

/* What agent tools read: the run's repository (a task's item, its version
 * and diff, come from eng_task_source). Borrowed until unbound. */
struct stage_repo {
    const char *path; /* the repository; NULL for a files source */
};

/* Binds the run's repository for the tools (NULL unbinds). A process runs one
 * run at a time, and eng_kind.start has no context of its own: hence one
 * binding for the process, set by `run` around eng_run. */
void stage_kinds_bind(const struct stage_repo *repo);
/* The bound repository, or NULL. */
const struct stage_repo *stage_kinds_repo(void);

/* Sends a rendered prompt to stage via as via's kind talks to its model (a
 * reroute target may be of another kind than its stage). Takes r->in. On
 * error nothing was sent and the task is the caller's to end. */
int stage_send(struct eng_task *t, size_t via, struct stage_rendered *r, struct bh_err *err);

#endif
