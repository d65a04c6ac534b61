/* providers/prov.h — the wire formats of model servers: building a chat
 * request body and parsing the (streamed) reply into one common reply type.
 * No I/O here: bytes in, structs out, so every parser can be fed byte by byte.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef PROV_PROV_H
#define PROV_PROV_H

#include <stddef.h>
#include <stdint.h>

struct bh_err;

/* One tool call: in a reply (owned strings, freed by prov_reply_release) and
 * in history sent back (prov_msg.tool_calls; only read there, so a reply's
 * calls can be passed back as they are). */
struct prov_tool_call {
    char *id;             /* the server's call id; NULL when it sent none (old Ollama) */
    char *name;           /* the function name; never NULL in a reply */
    char *arguments_json; /* the text of a JSON object, compact ("{}" at least); in a
                           * reply NULL when the model's arguments were not a JSON object
                           * (invalid JSON, an array...): a malformed call, kept so that
                           * the model can be told. NULL is sent back as "{}" */
};

struct prov_msg {
    const char *role;    /* "system", "user", "assistant", "tool" */
    const char *content; /* NULL reads as "" */
    /* assistant messages: the calls the model made (may be 0) */
    const struct prov_tool_call *tool_calls;
    size_t n_tool_calls;
    /* tool messages: the call this is the result of. openai and anthropic
     * need tool_call_id; ollama sends both when given */
    const char *tool_call_id;
    const char *tool_name;
};

/* prov_chat.think: zero (the value of a zeroed struct) leaves it to the model. */
enum prov_think { PROV_THINK_UNSET = 0, PROV_THINK_OFF = 1, PROV_THINK_ON = 2 };

/* A chat request. A zeroed struct plus model and messages is a valid plain
 * request: every other field's zero means "not set". Texts that hold JSON are
 * parsed when the body is built; a malformed one is BH_EINVAL naming it. */
struct prov_chat {
    const char *model;
    const struct prov_msg *msgs;
    size_t n_msgs;
    int stream; /* 1: ask for a streamed reply */
    /* A JSON object in Ollama's vocabulary (num_ctx, temperature, seed,
     * num_predict, stop, ...). ollama: sent as "options". openai: temperature,
     * top_p, seed, stop, num_predict -> max_tokens. anthropic: temperature,
     * top_p, top_k, stop -> stop_sequences, num_predict -> max_tokens. Keys
     * a dialect has no equivalent for are left out. */
    const char *options_json;
    /* ollama only: a Go duration ("10m", "-1") or whole seconds ("300", sent
     * as a number because Ollama refuses unitless strings). Others ignore it. */
    const char *keep_alive;
    /* NULL, "json" (bare or as the JSON string "\"json\""), or a JSON schema
     * object. ollama: "format"; openai: "response_format" json_object or
     * json_schema; anthropic: BH_EINVAL (it has no such mode). */
    const char *format_json;
    int think;        /* enum prov_think; ollama only */
    int truncate_off; /* 1: ollama "truncate":false (fail instead of dropping history) */
    /* A JSON array in the OpenAI/Ollama envelope:
     * [{"type":"function","function":{"name","description","parameters"}}].
     * anthropic gets {name, description, input_schema}. */
    const char *tools_json;
    /* Output cap in tokens; 0: unset (then options' num_predict; anthropic,
     * which requires one, falls back to PROV_DEFAULT_MAX_TOKENS). */
    int64_t max_tokens;
    /* ollama only: options.num_ctx when the options lack one; 0: unset (the
     * server's default). Others ignore it. */
    int64_t num_ctx;
};

#define PROV_DEFAULT_MAX_TOKENS 4096

/* The common reply of every dialect. */
struct prov_reply {
    char *content;  /* the whole assistant text (owned; never NULL on success) */
    char *thinking; /* reasoning text (Ollama message.thinking, Anthropic thinking
                     * blocks, OpenAI-compatible "reasoning"), or NULL */
    char *model;    /* the model the reply names (owned), or NULL when it named none */
    struct prov_tool_call *tool_calls; /* owned array, or NULL */
    size_t n_tool_calls;
    char *done_reason; /* as the server says it: "stop", "length", "tool_calls",
                        * "end_turn", "tool_use", "max_tokens", ... or NULL */
    int done;          /* the final chunk was seen */
    int64_t prompt_tokens, output_tokens, load_ns, total_ns;
    char *error;       /* an error the server reported (owned), or NULL */
    char *remote_host; /* non-NULL when the server said it forwarded the request to
                        * this host (an Ollama cloud stub): the data left the machine */
    int transient;     /* on failure: 1 when the same request may succeed later (429 but
                        * not a spent quota, 5xx, 529 overloaded, a stream cut before its
                        * final chunk); 0 for errors a retry cannot fix (400, 401, 404,
                        * invalid JSON, a mid-stream model error) */
};
/* Frees the owned fields (tool calls included) and zeroes r. NULL is fine. */
void prov_reply_release(struct prov_reply *r);

struct prov_stream;

/* How the caller must present the endpoint's API key (the key itself never
 * passes through providers). The egress gate sits below providers in the
 * dependency order, so the caller reads this from the ops and hands it on:
 *   PROV_AUTH_BEARER     "Authorization: Bearer <key>"   (ollama, openai)
 *   PROV_AUTH_X_API_KEY  "x-api-key: <key>"              (anthropic) */
enum prov_auth { PROV_AUTH_BEARER = 0, PROV_AUTH_X_API_KEY = 1 };

/* A provider: one table entry per wire dialect. */
struct prov_ops {
    const char *name;      /* "ollama" */
    const char *chat_path; /* "/api/chat", appended to the endpoint's base URL */
    /* Extra request headers every request of this dialect needs, "Name: value",
     * NULL-terminated; NULL when none. Static, no secrets (e.g.
     * "anthropic-version: 2023-06-01"). Content-Type and auth are not in it. */
    const char *const *headers;
    enum prov_auth auth_style;
    /* Builds the request body (owned by the caller, NUL-terminated, *len
     * without the NUL). BH_EINVAL when a string is not valid UTF-8 (the
     * message names which one and the byte offset), a JSON text field is
     * malformed, or the dialect cannot express the request. */
    int (*chat_body)(const struct prov_chat *c, char **body, size_t *len, struct bh_err *err);
    /* An incremental parser; max caps the reply text, the thinking text and
     * each tool call's arguments (0: BH_BUF_DEFAULT_MAX). */
    struct prov_stream *(*stream_new)(size_t max);
    /* Body bytes, in chunks of any size. Fails (BH_ETOOBIG) only when a cap is
     * exceeded, so the caller can abort the transfer. Reply errors whose
     * meaning depends on the HTTP status (invalid JSON, an error object) are
     * kept and returned by stream_finish, so an error page behind a non-2xx
     * status is reported as that status, not as invalid JSON. */
    int (*stream_feed)(struct prov_stream *s, const char *data, size_t len, struct bh_err *err);
    /* Ends the stream: status is the HTTP status. Fills r (moving owned data
     * into it). On an HTTP error status or a server-reported error, returns
     * BH_EREPLY with a message built from the server's error text; on a
     * stream that ended without its final chunk, BH_EREPLY too. A tool call
     * whose arguments are not a JSON object is not an error of the reply: it
     * is kept with arguments_json NULL.
     * r is overwritten (pass it zeroed); on error only r->error may be set
     * (the server's own text). Call once; release r in every case. */
    int (*stream_finish)(struct prov_stream *s, long status, struct prov_reply *r,
                         struct bh_err *err);
    void (*stream_free)(struct prov_stream *s); /* NULL is fine */
};

/* The dialects. Callers use prov_find. */
extern const struct prov_ops prov_ollama;    /* ollama.c: POST /api/chat, NDJSON */
extern const struct prov_ops prov_openai;    /* openai.c: POST /v1/chat/completions, SSE */
extern const struct prov_ops prov_anthropic; /* anthropic.c: POST /v1/messages, SSE */

/* The provider called name, or NULL. */
const struct prov_ops *prov_find(const char *name);

/* Names of all providers, for messages. */
extern const char *const prov_names[];
extern const size_t prov_n_names;

#endif
