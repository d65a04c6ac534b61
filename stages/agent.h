/* stages/agent.h — the "agent" stage kind: a conversation in which the model
 * may call the tools granted to the stage (stages/tools.h). Model → tool
 * calls → tool results → model, until a reply without tool calls (the task's
 * output) or max_steps requests (the task fails). Every request goes
 * through the egress gate with the conversation's label: the join of the
 * rendered prompt and every tool result so far.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef STAGE_AGENT_H
#define STAGE_AGENT_H

#include <stddef.h>

struct bh_err;
struct eng_task;
struct stage_rendered;

/* Malformed tool calls (an unknown or ungranted tool, arguments that are not
 * a JSON object or do not fit the tool) are answered to the model as tool
 * errors; the task fails at this many in one task. */
#define STAGE_AGENT_MALFORMED_MAX 3
/* Tool calls run from one reply; further calls in it are answered with an
 * error and not run. */
#define STAGE_AGENT_CALLS_PER_STEP 16

/* Starts the conversation of stage via (the task's stage or its reroute
 * target) with r's messages: opens the tools over the task's pull request
 * (the repository bound with stage_kinds_bind) and sends the first request.
 * Takes r's messages and r->in. On error nothing was sent and the task is the
 * caller's to end: BH_EINVAL when the stage has tools but the task has no
 * pull request (a batch task, a files source), the repository's errors from
 * stage_tools_open, or the request's. */
int stage_agent_send(struct eng_task *t, size_t via, struct stage_rendered *r, struct bh_err *err);

#endif
