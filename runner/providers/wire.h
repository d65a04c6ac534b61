/* providers/wire.h — what the dialects share: UTF-8 checks, server text made
 * safe for messages, request-body building with jansson, and the reply
 * accumulator every parser fills. Internal to providers/ (it exposes json_t,
 * which stays inside this module); callers use prov.h.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef PROV_WIRE_H
#define PROV_WIRE_H

#include <jansson.h>
#include <stddef.h>

#include "providers/prov.h"
#include "providers/sse.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"

#define PROV_TEXT_MAX 160                 /* server text quoted in a message */
#define PROV_HEAD_MAX 256                 /* body bytes kept for non-JSON error pages */
#define PROV_BODY_MAX ((size_t)256 << 20) /* request body; prompts are capped lower upstream */
#define PROV_CALLS_MAX 256                /* tool calls in one reply */

/* ---- text ---- */

/* BH_EINVAL naming what ("the content of message 2") and the byte offset
 * when s is not valid UTF-8. */
int prov_utf8_check(const char *s, const char *what, struct bh_err *err);
/* Copies server text into out (size > 4) for a message: trimmed, control
 * characters become spaces, invalid UTF-8 becomes '?', and a text too long is
 * cut at a character boundary and ends in "...". */
void prov_clean_into(char *out, size_t size, const char *p, size_t n);
/* The same into a new string of at most PROV_TEXT_MAX + 3 bytes (owned). */
char *prov_clean_dup(const char *p, size_t n);
/* A cap for one line or event on the wire that carries up to max bytes of
 * text: JSON escaping can make text 6 times longer ("\u003c"), plus slack. */
size_t prov_wire_cap(size_t max);

/* ---- request ---- */

/* One part of a request body; a dialect's body is a table of these. */
typedef int (*prov_part_fn)(json_t *root, const struct prov_chat *c, struct bh_err *err);
/* Runs the parts in order on a new object and dumps it compact (owned *body). */
int prov_body_build(const prov_part_fn *parts, size_t n, const struct prov_chat *c, char **body,
                    size_t *len, struct bh_err *err);
/* Sets obj[key] = v, taking v (NULL v: out of memory). */
int prov_json_set(json_t *obj, const char *key, json_t *v, struct bh_err *err);
/* Appends v to arr, taking v. */
int prov_json_push(json_t *arr, json_t *v, struct bh_err *err);
/* Sets obj[key] to the string s; BH_EINVAL naming what when s is not UTF-8. */
int prov_json_str(json_t *obj, const char *key, const char *s, const char *what,
                  struct bh_err *err);
/* Parses text (a field of struct prov_chat called what) that must be a JSON
 * value of type want (JSON_OBJECT, JSON_ARRAY). *out is a new reference. */
int prov_json_parse(const char *text, const char *what, json_type want, json_t **out,
                    struct bh_err *err);
/* The "model" part every dialect has. */
int prov_part_model(json_t *root, const struct prov_chat *c, struct bh_err *err);
/* Parses c->tools_json and checks the OpenAI/Ollama envelope: each element
 * {"type":"function","function":{"name":<string>,...}}. *out: a new
 * reference, or NULL when c->tools_json is NULL. */
int prov_tools_parse(const struct prov_chat *c, json_t **out, struct bh_err *err);
/* c->options_json parsed, or NULL when unset. */
int prov_options_parse(const struct prov_chat *c, json_t **out, struct bh_err *err);
/* Copies opts[from] to root[to] when present and of a JSON type in types
 * (a mask of 1 << json_type); BH_EINVAL naming the option otherwise. */
int prov_option_copy(json_t *root, const char *to, json_t *opts, const char *from, unsigned types,
                     struct bh_err *err);
/* 1 when c->format_json asks for plain JSON mode ("json" or "\"json\""). */
int prov_format_is_json(const char *format_json);
/* "the <field> of message <i+1>" into buf, for UTF-8 messages. */
const char *prov_msg_what(char *buf, size_t size, const char *field, size_t i);

/* ---- reply ---- */

/* A tool call being assembled. */
struct prov_pcall {
    long index;         /* the wire's key for it (openai index, anthropic block) */
    char *id, *name;    /* owned, may be NULL until a fragment names them */
    struct bh_buf args; /* the arguments text so far */
    int closed;         /* args is the compact text of a JSON object */
    int malformed;      /* the model's arguments were not a JSON object: none are given */
};

struct prov_acc {
    const char *dialect; /* "openai", for messages */
    struct bh_buf content, thinking;
    struct prov_reply r; /* everything but content, thinking, calls */
    struct prov_pcall *calls;
    size_t n_calls, cap_calls;
    size_t max;
    char head[PROV_HEAD_MAX]; /* the first body bytes, for error pages */
    size_t head_len;
    char etype[48]; /* the kind of a server error (type or code), or "" */
    char ecode[48];
    struct bh_err err; /* the first error; sticky */
};

void prov_acc_init(struct prov_acc *a, const char *dialect, size_t max);
void prov_acc_release(struct prov_acc *a);
/* Records the first error of the stream; returns its code (the first one). */
int prov_acc_keep(struct prov_acc *a, int code, const char *fmt, ...) BH_PRINTF(3, 4);
/* The kept error into err; returns its code. */
int prov_acc_copy_err(const struct prov_acc *a, struct bh_err *err);
void prov_acc_head(struct prov_acc *a, const char *data, size_t len);
/* Appends a JSON string v (absent or null: nothing) to the content or (thinking
 * = 1) the thinking text. field names it and where places it ("at line 3")
 * in messages. BH_ETOOBIG past the cap, BH_EREPLY for a non-string or a NUL;
 * both kept. */
int prov_acc_text(struct prov_acc *a, int thinking, json_t *v, const char *field,
                  const char *where);
/* *dst = a cleaned copy of the JSON string v, when v is a non-empty string. */
void prov_acc_str(char **dst, json_t *v);
/* A non-negative integer v into *dst (anything else: unchanged). */
void prov_acc_count(int64_t *dst, json_t *v);
/* An error object from the server ({"error":"text"}, {"error":{"message",
 * "type","code"}}, Anthropic's {"type":"error","error":{...}}): fills r.error,
 * etype and ecode. Returns 1 when o held one. */
int prov_acc_server_error(struct prov_acc *a, json_t *o);
/* The call keyed index: the last one with that key, or (fresh, or none yet)
 * a new one. NULL when there are too many (kept as BH_ETOOBIG). */
struct prov_pcall *prov_acc_call(struct prov_acc *a, long index, int fresh);
/* Appends argument text to a call (BH_ETOOBIG kept past the cap). */
int prov_acc_call_args(struct prov_acc *a, struct prov_pcall *c, const char *p, size_t n);
/* Parses a call's arguments ("" or blanks: {}); not a JSON object: BH_EREPLY
 * naming the tool, kept. Idempotent. */
int prov_acc_call_close(struct prov_acc *a, struct prov_pcall *c);

/* How an HTTP error status reads: the first rule whose status matches (0:
 * any) and whose kind (NULL: any) equals the error's type or code wins. */
struct prov_http_rule {
    long status;
    const char *kind;
    const char *what;
    const char *hint; /* " — next step", appended */
};
/* The server's text for an HTTP error (its error message, else the cleaned
 * head of the body, else "(empty body)") into text[PROV_TEXT_MAX + 4]. */
void prov_acc_http_text(const struct prov_acc *a, char *text, size_t size);
/* BH_EREPLY for HTTP status with the rules; r->error gets the server's text. */
int prov_acc_http_error(const struct prov_acc *a, long status, const struct prov_http_rule *rules,
                        size_t n, struct prov_reply *r, struct bh_err *err);
/* Ends a 2xx reply: the kept error, or BH_EREPLY "the reply ended before
 * <final>" when r.done is unset, or a call that does not parse; else moves
 * everything into r (zeroed first). */
int prov_acc_end(struct prov_acc *a, const char *final, struct prov_reply *r, struct bh_err *err);

/* A reply body that is either an SSE stream or one whole JSON document (a
 * non-streamed reply, an error object, a proxy's HTML page): the first
 * non-blank byte decides ("data:", "event:", ':' ... is SSE). */
enum prov_framing { PROV_UNDECIDED, PROV_SSE, PROV_WHOLE };
struct prov_body {
    enum prov_framing framing;
    struct prov_sse *sse;
    struct bh_buf whole; /* the document, parsed by the dialect at finish */
};
/* Caps sized for max bytes of reply text (prov_wire_cap per event, 64 times
 * that in all: every token costs an envelope of ~150 bytes). */
void prov_body_init(struct prov_body *b, size_t max);
void prov_body_release(struct prov_body *b);
/* Feeds bytes (head kept in a): SSE events go to fn; a whole document is
 * buffered. Returns BH_ETOOBIG (also kept in a) past a cap, else 0. */
int prov_body_feed(struct prov_body *b, struct prov_acc *a, const char *data, size_t len,
                   prov_sse_fn fn, void *ud, struct bh_err *err);
/* Ends the input: dispatches an SSE event left without its blank line. */
void prov_body_end(struct prov_body *b, struct prov_acc *a, prov_sse_fn fn, void *ud);

#endif
