/* providers/prov.h — the wire formats of model servers: building a chat
 * request body and parsing the (streamed) reply into one common reply type.
 * No I/O here: bytes in, structs out, so every parser can be fed byte by byte.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef PROV_PROV_H
#define PROV_PROV_H

#include <stddef.h>
#include <stdint.h>

struct bh_err;

struct prov_msg {
    const char *role;      /* "system", "user", "assistant" */
    const char *content;
};

struct prov_chat {
    const char *model;
    const struct prov_msg *msgs;
    size_t n_msgs;
    int stream;            /* 1: ask for a streamed reply */
};

/* The common reply. */
struct prov_reply {
    char *content;         /* the whole assistant text (owned; never NULL on success) */
    char *done_reason;     /* "stop", "length", ... or NULL */
    int done;              /* the final chunk was seen */
    int64_t prompt_tokens, output_tokens, load_ns, total_ns;
    char *error;           /* an error the server reported (owned), or NULL */
    char *remote_host;     /* non-NULL when the server said it forwarded the request to
                            * this host (an Ollama cloud stub): the data left the machine */
};
/* Frees the owned fields and zeroes r. NULL is fine. */
void prov_reply_release(struct prov_reply *r);

struct prov_stream;

/* A provider: one table entry per wire dialect. */
struct prov_ops {
    const char *name;                      /* "ollama" */
    const char *chat_path;                 /* "/api/chat" */
    /* Builds the request body (owned by the caller, NUL-terminated, *len
     * without the NUL). BH_EINVAL when a string is not valid UTF-8 (the
     * message names which one and the byte offset). */
    int (*chat_body)(const struct prov_chat *c, char **body, size_t *len, struct bh_err *err);
    /* An incremental parser; max caps the total reply text (0: BH_BUF_DEFAULT_MAX). */
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
     * stream that ended without its final chunk, BH_EREPLY too.
     * r is overwritten (pass it zeroed); on error only r->error may be set
     * (the server's own text). Call once; release r in every case. */
    int (*stream_finish)(struct prov_stream *s, long status, struct prov_reply *r,
                         struct bh_err *err);
    void (*stream_free)(struct prov_stream *s);   /* NULL is fine */
};

/* The Ollama native dialect (ollama.c). Callers use prov_find. */
extern const struct prov_ops prov_ollama;

/* The provider called name, or NULL. */
const struct prov_ops *prov_find(const char *name);

/* Names of all providers, for messages. */
extern const char *const prov_names[];
extern const size_t prov_n_names;

#endif
