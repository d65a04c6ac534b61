/* stages/chat.h — the "chat" stage kind: one model call per task. The
 * rendered template is the user message; the reply is the task's output and
 * carries the prompt's label. A stage whose output format is checked
 * (findings, a schema: stages/output.h) may make a second call, once, with
 * the first reply and what is wrong with it. The request machinery here (a
 * request built for the stage's provider, sent through the egress gate, its
 * streamed reply parsed, failures retried or failed) is also how the agent
 * kind sends each request of its conversation.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef STAGE_CHAT_H
#define STAGE_CHAT_H

#include <stddef.h>

#include "engine/engine.h"

struct prov_msg;
struct prov_reply;
struct stage_rendered;

/* Caps: a rendered prompt, a model's reply text, and the reply on the wire
 * (streamed NDJSON wraps every few characters of text in ~130 bytes of JSON). */
#define STAGE_PROMPT_MAX ((size_t)32 << 20)
#define STAGE_REPLY_MAX ((size_t)8 << 20)
#define STAGE_WIRE_MAX ((size_t)256 << 20)

/* Sends r (its system and user messages) to stage via — the task's own stage
 * or its reroute target — through the gate, which checks r->label against
 * via's clearance; the reply ends the task (with via's declassify). Takes
 * r->in. On error nothing was sent and the task is the caller's to end. */
int stage_chat_send(struct eng_task *t, size_t via, struct stage_rendered *r, struct bh_err *err);

/* Called once per request sent with stage_chat_request: with the parsed
 * reply (the callee may move owned fields out of it) and its metrics when
 * the model answered; with NULLs when the request failed and the task has
 * already been failed or handed back to the engine for a retry (the callee
 * then only lets go of its own state). */
typedef void (*stage_reply_fn)(void *ud, struct prov_reply *reply, const struct eng_metrics *m);

/* One request of a conversation. */
struct stage_turn {
    const struct prov_msg *msgs; /* borrowed until stage_chat_request returns */
    size_t n_msgs;
    const char *tools_json;  /* prov_chat.tools_json, or NULL */
    int label;               /* the join of everything in msgs */
    stage_reply_fn on_reply; /* NULL only inside chat.c */
    void *ud;
};

/* Sends turn to stage via through the gate (the context estimate first:
 * BH_ETOOBIG past options.num_ctx). On error nothing was sent and on_reply
 * will not be called (BH_EPOLICY: the gate refused and audited it). */
int stage_chat_request(struct eng_task *t, size_t via, const struct stage_turn *turn,
                       struct bh_err *err);

#endif
