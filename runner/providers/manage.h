/* providers/manage.h — Ollama's model-management replies: the model lists
 * of GET /api/tags and GET /api/ps, POST /api/show (context length, cloud
 * stub) and the NDJSON progress of POST /api/pull. No I/O, like prov.h:
 * bytes in (in chunks of any size), structs out.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef PROV_MANAGE_H
#define PROV_MANAGE_H

#include <stddef.h>
#include <stdint.h>

struct bh_err;

/* One entry of /api/tags or /api/ps. Strings owned; NULL when absent. */
struct prov_model {
    char *name;
    char *remote_host;      /* a cloud stub: the host Ollama forwards to */
    char *remote_model;     /* a cloud stub: the model there */
    int64_t size;           /* bytes; 0 when absent */
    int64_t size_vram;      /* /api/ps */
    int64_t context_length; /* /api/ps: the num_ctx it was loaded with; 0 when absent */
    char *expires_at;       /* /api/ps */
};

struct prov_models {
    struct prov_model *v;
    size_t n;
};
void prov_models_release(struct prov_models *m); /* zeroes m; NULL is fine */

/* 1 when the entry is a cloud stub (non-empty remote_host or remote_model). */
int prov_model_is_remote(const struct prov_model *m);

/* Compares model names as Ollama does: case-insensitively, with a missing tag
 * read as ":latest" ("qwen3" names "qwen3:latest"). 1 when equal. */
int prov_model_name_eq(const char *a, const char *b);

/* 1 when a reply named answered is from the model asked for: names compare as
 * prov_model_name_eq does, each without the ":local" suffix bulkhead adds for
 * a local stage. An empty or NULL answered (the reply named none) counts as
 * the model asked for: nothing says otherwise. */
int prov_model_answered_eq(const char *asked, const char *answered);

/* The entry naming model (prov_model_name_eq), or NULL. Borrowed from m. */
const struct prov_model *prov_models_find(const struct prov_models *m, const char *model);

/* What /api/show tells. */
struct prov_show {
    int64_t context_length; /* model_info["<general.architecture>.context_length"], else
                               the first key ending in ".context_length"; 0 when none */
    char *remote_host;      /* owned, NULL when not a stub */
    char *remote_model;
};
void prov_show_release(struct prov_show *s); /* zeroes s; NULL is fine */

/* A whole JSON reply (tags, ps, show) collected under a cap. */
struct prov_doc;
struct prov_doc *prov_doc_new(size_t max); /* 0: 16 MiB */
void prov_doc_free(struct prov_doc *d);    /* NULL is fine */
/* BH_ETOOBIG (naming the cap) when the reply exceeds it. */
int prov_doc_feed(struct prov_doc *d, const char *data, size_t len, struct bh_err *err);
/* Ends a /api/tags or /api/ps reply. BH_EREPLY with the server's error text
 * for a non-2xx status, and for a body that is not {"models":[...]} (an
 * entry without a name is skipped). *out is overwritten; release it. */
int prov_models_finish(struct prov_doc *d, long status, struct prov_models *out,
                       struct bh_err *err);
/* Ends a /api/show reply: the same errors (404: the model is not there). */
int prov_show_finish(struct prov_doc *d, long status, struct prov_show *out, struct bh_err *err);

/* Ends the reply of a probe (a non-streamed POST /api/chat, see
 * EGR_MANAGE_PROBE): fills only remote_host and remote_model, non-empty when
 * the server says it forwarded the request (a cloud stub). BH_EREPLY with
 * the server's text for a non-2xx status, and for a body that is not a JSON
 * object. */
int prov_probe_finish(struct prov_doc *d, long status, struct prov_show *out, struct bh_err *err);

/* Ends a GET /v1/models reply (OpenAI and Anthropic dialects, llama.cpp's
 * server): one entry per data[] element, named by its "id"; context_length
 * is llama-server's data[].meta.n_ctx (the window the server was started
 * with), 0 when absent. BH_EREPLY with the server's text for a non-2xx
 * status, and for a body that is not {"data":[...]}. */
int prov_v1_models_finish(struct prov_doc *d, long status, struct prov_models *out,
                          struct bh_err *err);

/* Ends a GET /health reply (llama.cpp's server: {"status":"ok"}): 0 for a
 * 2xx status, BH_EREPLY with the server's text otherwise (503: the model is
 * still loading). */
int prov_health_finish(struct prov_doc *d, long status, struct bh_err *err);

/* What GET /api/version and GET /api/status tell of the server itself. */
struct prov_server {
    char version[32];      /* "0.18.1" (cleaned, capped); "" when not known */
    int status;            /* 1: /api/status answered; 0: it answered 404 (a server older
                              than the endpoint) */
    int cloud_disabled;    /* status.cloud.disabled: the server refuses every cloud model */
    char cloud_source[16]; /* status.cloud.source: "none", "env", "config", "both" ("" when
                              absent) */
};

/* Ends a /api/version reply into s->version. BH_EREPLY for a non-2xx status
 * or a body without a "version" string. */
int prov_version_finish(struct prov_doc *d, long status, struct prov_server *s, struct bh_err *err);
/* Ends a /api/status reply: 404 is not an error (s->status 0: an older server
 * without the endpoint); 200 fills cloud_disabled and cloud_source. BH_EREPLY
 * for another status or a body that is not {"cloud":{...}}. */
int prov_status_finish(struct prov_doc *d, long status, struct prov_server *s, struct bh_err *err);

/* Compares two Ollama versions ("0.17.6", "v0.18.0-rc1", "0.12.3-fake") by
 * their numeric major.minor.patch (a suffix is ignored, a missing part reads
 * as 0): <0, 0 or >0 as strcmp. An unreadable version sorts below every
 * readable one. */
int prov_version_cmp(const char *a, const char *b);

/* The first version whose server honours the ":local" model name suffix (a
 * model that turns out to be a cloud stub answers 404 instead of being
 * forwarded). See the README of pipelines/ for where it comes from. */
#define PROV_LOCAL_SUFFIX_VERSION "0.18.0"

/* 1 when a server of that version honours ":local". */
int prov_version_honours_local(const char *version);

/* One line of /api/pull progress. */
struct prov_pull_step {
    const char *status;       /* "pulling manifest", "pulling 3f1a...", "success" (borrowed
                                 for the call; cleaned of control characters) */
    const char *digest;       /* "" when absent */
    int64_t total, completed; /* 0 when absent (Ollama leaves out zeros) */
};
typedef void (*prov_pull_fn)(void *ud, const struct prov_pull_step *step);

struct prov_pull;
/* fn (may be NULL) is called once per progress line as it completes. */
struct prov_pull *prov_pull_new(prov_pull_fn fn, void *ud);
void prov_pull_free(struct prov_pull *s); /* NULL is fine */
/* BH_ETOOBIG when a line exceeds 64 KiB (not an Ollama pull). */
int prov_pull_feed(struct prov_pull *s, const char *data, size_t len, struct bh_err *err);
/* Ends the stream: 0 when a "success" status was seen. BH_EREPLY with the
 * server's text for an {"error"} line (Ollama sends it mid-stream, status
 * 200), a non-2xx status, a line that is not JSON, or a stream that ended
 * without "success". */
int prov_pull_finish(struct prov_pull *s, long status, struct bh_err *err);

#endif
