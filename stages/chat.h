/* stages/chat.h — the "chat" stage kind: one model call per task. The
 * rendered template is the user message; the reply is the task's output and
 * carries the prompt's label. A stage whose output format is checked
 * (findings, a schema: stages/output.h) may make a second call, once, with
 * the first reply and what is wrong with it. */
#ifndef STAGE_CHAT_H
#define STAGE_CHAT_H

#include "engine/engine.h"

extern const struct eng_kind stage_chat_kind;

/* Caps: a rendered prompt, a model's reply text, and the reply on the wire
 * (streamed NDJSON wraps every few characters of text in ~130 bytes of JSON). */
#define STAGE_PROMPT_MAX ((size_t)32 << 20)
#define STAGE_REPLY_MAX ((size_t)8 << 20)
#define STAGE_WIRE_MAX ((size_t)256 << 20)

#endif
