/* stages/output.h — what a stage's "output" asks of its model, for the stage
 * kinds that talk to one (chat, agent): how to ask (the provider's JSON mode,
 * an instruction after the user message) and the check of the reply
 * (findings, or json with a schema), with the message that asks again once
 * when the check fails. Functions return 0 or a negative BH_E* code. */
#ifndef STAGE_OUTPUT_H
#define STAGE_OUTPUT_H

#include <stddef.h>

struct bh_err;
struct pipeline;

struct stage_ask {
    const char *format_json; /* prov_chat.format_json, or NULL */
    const char *instruction; /* appended to the user message, or NULL */
};

/* How stage (an index into p->stages) asks its endpoint's provider for its
 * output. Borrowed from p or static. */
void stage_output_ask(const struct pipeline *p, size_t stage, struct stage_ask *out);

/* 1 when the stage's replies are checked: format findings, or json with a schema. */
int stage_output_checked(const struct pipeline *p, size_t stage);

/* Checks a reply against the stage's output. 0 with *stored the text to keep
 * as the task's output (owned: the findings' stored form, or the JSON
 * without a fence around it). BH_EREPLY "reply is not valid findings:
 * $[2].severity: expected one of ..." (or "reply does not follow the output
 * schema 'FILE': ...") otherwise. A stage that is not checked stores the
 * reply as it is. */
int stage_output_check(const struct pipeline *p, size_t stage, const char *reply, char **stored,
                       struct bh_err *err);

/* The user message sent after a reply that failed the check (why: the
 * check's error). Owned. */
char *stage_output_again(const struct bh_err *why);

#endif
