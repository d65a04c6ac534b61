/* egress/egress.h — the egress gate, the only way out of the process. Every
 * model request passes egr_send, which compares the request's label with the
 * clearance of the stage it goes to, writes an audit record either way, and
 * only then hands the bytes to net/ with the connection pinned to the address
 * whose locality was verified.
 *
 * The network module is private to the gate: the gate creates and owns the
 * one network loop (egr_new), and everyone else waits for the network
 * through egr_step, egr_in_flight and egr_abort_all, with the gate's own
 * result and callback types below. Nothing outside runner/net/ and
 * runner/egress/ includes net/net.h (ci/lint.sh, net-behind-the-gate), so no
 * other module can hand bytes to the network past the gate.
 *
 * The audit promise, with group commit: no request's bytes leave before its
 * audit record is durable (synced to disk). Outside a group each record is
 * committed (synced) on its own before egr_send hands the request to net.
 * During a run the engine opens a group (egr_group_begin): the store sits in
 * one open batch, egr_send decides and writes the record into it and only
 * queues the request; egr_step first commits the batch (one sync for every
 * record and every task finish since the last step), then hands the queued
 * requests to net, re-opens the batch and drives the network. This holds
 * because libcurl's multi interface moves no byte when a transfer is added,
 * only inside perform/poll, which net_step runs after the commit. A request
 * sent from a callback inside egr_step is queued too (and wakes the wait) and
 * leaves at the next egr_step. A commit that fails breaks the gate
 * (egr_audit_broken): every queued request ends unsent through its on_done.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef EGR_EGRESS_H
#define EGR_EGRESS_H

#include <stddef.h>
#include <stdint.h>

struct bh_err;
struct pipeline;
struct store;
struct egr_gate;

/* What makes an endpoint's addresses local, weakest last: every address
 * loopback; some in a network named by trusted_networks or
 * BULKHEAD_TRUSTED_NETWORKS; some vouched for by trusted_hosts. */
enum egr_local_via {
    EGR_VIA_NONE, /* not local (not declared, or an address is not local) */
    EGR_VIA_LOOPBACK,
    EGR_VIA_NETWORK,
    EGR_VIA_HOSTS,
};

/* What the gate learnt of an endpoint when it was created. */
struct egr_endpoint {
    int local; /* 1 only when declared local and every resolved address counts
                  as local: loopback, or vouched for (see via) */
    enum egr_local_via via;
    char reason[400]; /* why it is (not) local, for check and the audit; a refused
                         private address names the trusted_networks line to add */
    char host[256];
    int port;
    char addr[64];   /* the address connections are pinned to ("" when resolution failed) */
    char addrs[200]; /* every pinned address, comma-separated, addr first (at most
                        EGR_MAX_PINNED): a name such as localhost resolves to ::1 and
                        127.0.0.1, and a server may listen on only one of them */
    char bad[64];    /* the first address that does not count as local, "" when none */
    int trusted;     /* local, and some pinned address is not loopback: it counts only
                        because a trusted network or trusted_hosts vouches for it */
};

#define EGR_MAX_PINNED 4

/* 1 for loopback (127/8, ::1) and its IPv4-mapped form; 0 for everything
 * else, the private ranges included: those are local only inside a trusted
 * network. */
int egr_addr_is_loopback(const char *ip);
/* 1 for the private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) and their
 * IPv4-mapped forms: used to name the trusted_networks line a refusal asks
 * for, never to make anything local. */
int egr_addr_is_private(const char *ip);

/* The resolver egr_endpoint_verify uses: getaddrinfo and freeaddrinfo by
 * default. Tests map names to addresses with their own (so that no test
 * sends a DNS query off the machine); NULL restores the default. */
struct addrinfo;
typedef int (*egr_resolve_fn)(const char *node, const char *service, const struct addrinfo *hints,
                              struct addrinfo **res);
typedef void (*egr_resolve_free_fn)(struct addrinfo *res);
void egr_set_resolver(egr_resolve_fn fn, egr_resolve_free_fn free_fn);

/* What vouches for addresses that are not loopback. All borrowed. */
struct egr_trust {
    const char *const *hosts; /* the endpoint's trusted_hosts: host names (the URL's host,
                                 compared case-insensitively: whatever it resolves to is
                                 trusted), addresses and CIDR blocks */
    size_t n_hosts;
    const char *const *networks; /* the pipeline's trusted_networks: CIDR blocks */
    size_t n_networks;
    const char *env_networks; /* BULKHEAD_TRUSTED_NETWORKS as read: comma-separated CIDR
                                 blocks, or NULL */
};

/* Resolves the host of url and classifies every address: the endpoint is
 * local only when declared local and every address is loopback or vouched
 * for by t (NULL: nothing is). Never makes an endpoint more local than
 * declared. A resolution failure leaves it cloud with an empty addr
 * (requests then fail at connect). BH_EINVAL for a bad URL or a block of
 * env_networks that does not parse (nothing is trusted on a guess). */
int egr_endpoint_verify_with(const char *url, int declared_local, const struct egr_trust *t,
                             struct egr_endpoint *out, struct bh_err *err);
/* Endpoint i of p, with its trusted_hosts, the pipeline's trusted_networks and
 * the environment's BULKHEAD_TRUSTED_NETWORKS: what egr_new and check use. */
int egr_endpoint_verify_pipe(const struct pipeline *p, size_t i, struct egr_endpoint *out,
                             struct bh_err *err);
/* egr_endpoint_verify_with trusted_hosts only, and with nothing. */
int egr_endpoint_verify_trusted(const char *url, int declared_local, const char *const *trusted,
                                size_t n_trusted, struct egr_endpoint *out, struct bh_err *err);
int egr_endpoint_verify(const char *url, int declared_local, struct egr_endpoint *out,
                        struct bh_err *err);

/* How a request the gate sent ended. */
struct egr_result {
    int code;            /* 0, or BH_ENET (transport, any 3xx, peer refused, stall), BH_ETOOBIG
                            (reply cap), BH_EPOLICY (the peer was not a verified address),
                            BH_EINTERNAL (that refusal could not be audited) */
    long status;         /* HTTP status, 0 when none was received */
    char error[256];     /* the error in words, empty when none */
    size_t received;     /* body bytes received */
    int transient;       /* 1 when trying again may help: a connection error, a timeout,
                            a stall, a cut transfer — never a redirect, a refused peer, a cap
                            or a server certificate that does not verify */
    long retry_after_ms; /* from a Retry-After header (seconds or HTTP date), -1 when none */
    int no_first_byte;   /* 1 when the endpoint's first_byte_timeout_s ran out before any
                            body byte (for a local model: often a load that takes longer) */
};

/* Body bytes of a reply as they arrive. Non-zero aborts the transfer. */
typedef int (*egr_data_fn)(void *ud, const char *data, size_t len);
/* Exactly once per request the gate sent (egr_send and egr_send_manage
 * returned 0), from egr_step or egr_abort_all. It may send again. */
typedef void (*egr_done_fn)(void *ud, const struct egr_result *r);

/* Creates the gate for a pipeline and its network loop: verifies every
 * endpoint once (the result is pinned for the whole run). p and s are
 * borrowed and must outlive it. s may be NULL only in tests that never send
 * (then nothing can be audited and egr_send refuses everything). BH_EINVAL
 * naming the version when the libcurl loaded at run time lacks what the
 * network loop's safety needs. */
int egr_new(struct egr_gate **out, const struct pipeline *p, struct store *s, int64_t run_id,
            struct bh_err *err);
/* Stops the network loop (requests still in flight end without their
 * on_done), then frees the gate and their contexts. NULL is fine. */
void egr_free(struct egr_gate *g);

/* Opens the group commit (see the top of this file): the store's writes go
 * into one batch until the next egr_step commits it, and requests are
 * queued until then. A no-op without a store, inside a group, or once the
 * gate is broken. BH_E* when the batch cannot be opened (then nothing
 * changes: every record is synced on its own as before). */
int egr_group_begin(struct egr_gate *g, struct bh_err *err);
/* Commits the group's batch and ends the group; the queued requests go to
 * net (they leave at the next egr_step). BH_EINTERNAL when the commit fails:
 * the gate is broken and every queued request ended unsent. 0 outside a group. */
int egr_group_end(struct egr_gate *g, struct bh_err *err);

/* One turn of the gate's network loop: inside a group, commits the batch
 * and hands the queued requests to net first (BH_EINTERNAL when the commit
 * fails: egr_audit_broken, the queue ended unsent); then drives the requests
 * in flight, waits up to timeout_ms for activity, and calls on_done of every
 * request that ended. The only way anything in the process waits for the
 * network. */
int egr_step(struct egr_gate *g, int timeout_ms, struct bh_err *err);
/* Requests sent (queued, and held for a probe, included) and not yet ended. */
size_t egr_in_flight(const struct egr_gate *g);
/* Ends every request in flight, queued or held for a probe: each on_done is called with BH_ENET,
 * not transient, and why as the error, so that a run that must stop at once still lets each owner
 * let go of what it holds. NULL is fine. */
void egr_abort_all(struct egr_gate *g, const char *why);

const struct egr_endpoint *egr_endpoint_info(const struct egr_gate *g, size_t endpoint);
/* 1 when every host of endpoint's pool is verified local (for an endpoint
 * that is no pool: when it is): what a stage on it may count on. */
int egr_pool_local(const struct egr_gate *g, size_t endpoint);
/* 1 when host is a host of endpoint's pool (endpoint itself included). */
int egr_pool_has(const struct egr_gate *g, size_t endpoint, size_t host);

/* One request for a stage. */
struct egr_send_req {
    size_t stage;     /* index into the pipeline's stages */
    int placed;       /* 1: host says where the engine placed the request */
    size_t host;      /* with placed: the host it goes to, an index into the pipeline's
                         endpoints that must be a host of the stage's endpoint's pool
                         (checked: exit 70 otherwise); without: the stage's endpoint */
    const char *item; /* item key, for the audit */
    const char *path; /* appended to the endpoint URL, e.g. "/api/chat" */
    const char *body;
    size_t body_len;
    int label; /* the join of the labels of everything in body */
    size_t max_reply;
    const char *const *headers; /* the dialect's static headers ("anthropic-version: ..."),
                                   NULL-terminated, or NULL; never a secret */
    int key_header;             /* how the API key goes: 0 "Authorization: Bearer",
                                   1 "x-api-key" */
    egr_data_fn on_data;
    egr_done_fn on_done;
    void *ud;
};

/* 1 when an audit write of this gate failed, with that error copied to err
 * (NULL is fine); 0 otherwise. From the first failed write on, every call
 * that would send or audit returns BH_EINTERNAL and sends nothing ("a
 * decision that cannot be recorded is not taken"); a run must stop (exit
 * 70). The error names the state database and SQLite's message. */
int egr_audit_broken(const struct egr_gate *g, struct bh_err *err);

/* Decides, audits, sends (inside a group: queues until the next egr_step's
 * commit; on_done then ends it, a failed commit included). Returns BH_EPOLICY (audited, nothing
 * sent, callbacks not called) when the label exceeds the stage's clearance; BH_EINTERNAL when the
 * audit record could not be written (egr_audit_broken); any other error means nothing was sent
 * either. The API key of the endpoint, if any, is read from its environment variable here and never
 * appears in the audit; so are its basic_auth_env credentials (sent as Authorization: Basic
 * whatever the stage's locality). An https endpoint's certificate is verified with its ca_file,
 * else the system store. */
int egr_send(struct egr_gate *g, const struct egr_send_req *r, struct bh_err *err);

/* Decides r exactly as egr_send would, and sends nothing: 0 when egr_send
 * would send it now (nothing is audited: the caller goes on to egr_send or
 * egr_audit_cached, which decide and audit again); BH_EPOLICY when it would be
 * refused, and then the refusal is audited as egr_send audits it. For a stage
 * kind that may answer a request without sending it (the response cache):
 * asking here first means no answer ever bypasses a refusal. */
int egr_check(struct egr_gate *g, const struct egr_send_req *r, struct bh_err *err);

/* Audits r as answered without sending it (from the response cache): decided
 * as egr_send decides, the record says decision "cached", r's label and the
 * stage's clearance, the SHA-256 of r's body (the request that was not sent)
 * and 0 bytes. A request the gate refuses is audited as a refusal and returns
 * BH_EPOLICY, as egr_send would: the caller must then not use the answer.
 * Only body, body_len, stage, item, path and label of r are read. */
int egr_audit_cached(struct egr_gate *g, const struct egr_send_req *r, struct bh_err *err);

/* What egr_audit_verify_each hands to its callback for each breach record:
 * the record itself (borrowed for the call). */
struct store_audit;
typedef void (*egr_breach_fn)(void *ud, const struct store_audit *r);

/* 1 when r is a breach record: decision "breach", or an older "refuse" whose
 * reason starts "breach:". */
int egr_audit_is_breach(const struct store_audit *r);

/* Verifies the audit: the hash chain (store_audit_verify_chain), for
 * every record that let a request through (decision "allow", or "cached":
 * answered from the response cache), that its label is at or below its
 * clearance in its run's label order, and that no record is a breach
 * (egr_audit_is_breach). BH_EPOLICY naming the first bad record; other codes
 * when the store cannot be read. *n_records counts the chain. */
int egr_audit_verify(struct store *s, int64_t *n_records, struct bh_err *err);

/* egr_audit_verify that also fails on breach records: with the chain
 * intact and every allowed record within its clearance, calls on_breach
 * (may be NULL) for each breach record in order and returns BH_EPOLICY
 * saying how many there are and naming the first; *n_breaches counts them.
 * A broken chain or an allowed record above its clearance fails first, as
 * egr_audit_verify does (then *n_breaches is 0). */
int egr_audit_verify_each(struct store *s, int64_t *n_records, size_t *n_breaches,
                          egr_breach_fn on_breach, void *ud, struct bh_err *err);

/* Audits a declassification of a stage's output for item: decision
 * "declassify" when every guard passed (label is the target label `to`) or
 * "keep" when one failed (label stays `from`); reason says which guard and
 * why, never any text of the output. payload_sha256 is the hash of the
 * output as stored (after redaction), so the record names what was
 * declassified without holding it. Nothing is sent. */
int egr_audit_declassify(struct egr_gate *g, size_t stage, const char *item, int from, int to,
                         int passed, const char *reason, const char *output, size_t len,
                         struct bh_err *err);

/* Audits a policy decision that is not a request: a record with decision
 * "refuse", no payload, for the stage (and item; "" for the whole run) with
 * label and reason as given. Used for a stage the static check refused
 * before the run ("static check: ...") and for on_sensitive. Nothing is sent. */
int egr_audit_refusal(struct egr_gate *g, size_t stage, const char *item, int label,
                      const char *reason, struct bh_err *err);

/* Audits evidence that data already went where it should not have (a reply
 * to a local stage that says the server forwarded the request): a record
 * with decision "breach", otherwise as egr_audit_refusal. `audit verify`
 * fails on every such record (and on the "refuse" records with a reason
 * starting "breach:" that earlier versions wrote). Nothing is sent. */
int egr_audit_breach(struct egr_gate *g, size_t stage, const char *item, int label,
                     const char *reason, struct bh_err *err);

/* --- model management -------------------------------------------------------- */

/* Requests that carry no item data: listing, inspecting, pulling, loading and
 * unloading models. The gate builds each body itself from the model name (and
 * for a preload the stage's keep_alive and num_ctx, pipeline settings), so
 * nothing but a name can leave this way; each is audited with the bottom
 * label, no stage and no item, and a reason starting "model management". */
enum egr_manage_kind {
    EGR_MANAGE_TAGS,    /* GET /api/tags */
    EGR_MANAGE_PS,      /* GET /api/ps */
    EGR_MANAGE_STATUS,  /* GET /api/status */
    EGR_MANAGE_VERSION, /* GET /api/version */
    EGR_MANAGE_SHOW,    /* POST /api/show {"model"} */
    EGR_MANAGE_PULL,    /* POST /api/pull {"model","stream":true} */
    EGR_MANAGE_PRELOAD, /* POST /api/generate
                           {"model","prompt":"","keep_alive":"10m","stream":false}, with the
                           request's keep_alive and options.num_ctx when given */
    EGR_MANAGE_UNLOAD,  /* POST /api/generate {"model","prompt":"","keep_alive":0,"stream":false} */
    EGR_MANAGE_PROBE,   /* POST /api/chat {"model","messages":[{"role":"user","content":
                           EGR_PROBE_TEXT}],"stream":false,"keep_alive",
                           "options":{"num_predict":1[,"num_ctx"]}}: a fixed public request
                           whose reply shows whether the model is a cloud stub (remote_host),
                           with keep_alive and num_ctx as for PRELOAD, so that it loads the
                           model as the stage's requests will want it */
    EGR_MANAGE_HEALTH,  /* GET /health: llama.cpp's server (OpenAI dialect) says it is up */
    EGR_MANAGE_MODELS,  /* GET /v1/models: the models an OpenAI- or Anthropic-dialect server
                           offers (data[].id; llama-server adds data[].meta.n_ctx) */
};

/* The whole text of a probe (EGR_MANAGE_PROBE): fixed, public, no item's. */
#define EGR_PROBE_TEXT "Reply with OK."

struct egr_manage_req {
    size_t endpoint;   /* index into the pipeline's endpoints */
    int kind;          /* enum egr_manage_kind */
    const char *model; /* SHOW, PULL, PRELOAD, UNLOAD, PROBE: the model (copied); others: NULL */
    const char *keep_alive; /* PRELOAD, PROBE: how long the model stays loaded, a stage's keep_alive
                               ("10m", "-1s"); NULL: "10m" */
    long num_ctx; /* PRELOAD, PROBE: the context to load it with (a stage's options.num_ctx, so
                     that its requests find it loaded as they need it); 0: the server's */
    size_t max_reply;
    egr_data_fn on_data;
    egr_done_fn on_done;
    void *ud;
};

/* Audits and sends a model-management request, pinned and peer-checked like
 * egr_send. BH_EINVAL when the kind needs a model and has none, or when
 * keep_alive is not a duration; BH_EPOLICY
 * without an audit store. The endpoint's API key goes only to cloud
 * endpoints, as for stages; its basic_auth_env credentials and ca_file apply
 * as to every request. Nothing is sent on error. */
int egr_send_manage(struct egr_gate *g, const struct egr_manage_req *r, struct bh_err *err);

/* --- first contact (egress/first_contact.c) ------------------------------------ */

/* A (local endpoint, model) whose first stage request must wait for a probe
 * (EGR_MANAGE_PROBE): its server might forward the model to the cloud
 * without saying so in its lists (probe/survey.c decides which). */
struct egr_probe_need {
    size_t endpoint;
    const char *model;      /* as the stages name it (copied) */
    const char *keep_alive; /* the stage's, or NULL: the probe loads the model as its */
    long num_ctx;           /* requests will want it (see egr_manage_req) */
    int quiet_reply_errors; /* the server did not list the model: an error reply to the
                               probe is no news (its tasks fail with the pull advice) */
};
/* How the probe's reply is read and what is told of it: the gate sits below
 * providers/, so the caller reads Ollama's reply (probe/probe.c). */
struct egr_prober {
    /* The whole reply and its status: *remote (owned) is the host the reply
     * says the model is forwarded to, or NULL. 0, or BH_EREPLY for a reply
     * that is no chat object (an error status included). */
    int (*read)(void *ud, long status, const char *body, size_t len, char **remote,
                struct bh_err *err);
    /* After the gate marked the model a stub (remote), or when the reply
     * could not be read (err); may be NULL. */
    void (*told)(void *ud, size_t endpoint, const char *model, const char *remote,
                 const struct bh_err *err);
    void *ud;
};
void egr_set_prober(struct egr_gate *g, const struct egr_prober *pr);
/* From now on the first egr_send of a local stage whose model is n's on n's
 * endpoint sends the probe and holds the request (and the ones after it)
 * until the reply is read; then each is decided and audited as usual (a stub
 * found: refused). A probe that reaches no server ends them with its error,
 * transient, and the next request probes again; a probe that fails for good
 * (a redirect, a refused peer) ends them and every later one with its error
 * (egr_send returns it), unsent. egr_check and the cache are
 * not held: a run answered from the cache sends nothing. */
void egr_probe_defer(struct egr_gate *g, const struct egr_probe_need *n);

/* A fact found online: the server lists the model of stage as a cloud stub
 * forwarding to remote_host (copied; "" is fine when only remote_model was
 * given). From then on the gate treats the stage as cloud exactly like a
 * ":cloud" name (pol_stage_local_facts), for its verdicts and its audit. */
void egr_stage_mark_remote(struct egr_gate *g, size_t stage, const char *remote_host);
/* egr_stage_mark_remote for every stage on endpoint whose model is model
 * (compared case-insensitively, a missing tag read as ":latest"): a stub is
 * a fact of the server's model, not of one stage. On a host of a pool it
 * marks the stages of the whole pool (fail closed: the tasks may be placed
 * on any host of it). Returns how many stages
 * were marked that were not marked before. */
size_t egr_model_mark_remote(struct egr_gate *g, size_t endpoint, const char *model,
                             const char *remote_host);
/* The remote host marked for stage, or NULL when none was (borrowed until
 * egr_free). */
const char *egr_stage_remote(const struct egr_gate *g, size_t stage);
/* The stage's effective locality as the gate decides it: the endpoint's
 * verified locality, the model's name and the remote facts. Callers that
 * show or check where a stage runs should use this, not pol_stage_local. */
int egr_stage_local(const struct egr_gate *g, size_t stage);
/* The stage's effective clearance as the gate applies it (the same facts as
 * egr_stage_local): what a stage kind compares a prompt's label with to
 * apply on_sensitive before it asks the gate. */
int egr_stage_clearance(const struct egr_gate *g, size_t stage);

/* What the probe before a run learnt of a stage's model on its server. */
struct egr_model_facts {
    int listed;   /* /api/tags: 1 installed as a local model, 0 not there, -1 not known */
    int loaded;   /* /api/ps when the run started: 1 loaded, 0 not, -1 not known */
    long num_ctx; /* the context window to ask for when the stage sets no options.num_ctx
                     (from /api/show); 0: the server's default */
};
#define EGR_MODEL_FACTS_INIT                                                                       \
    {                                                                                              \
        -1, -1, 0                                                                                  \
    }

/* A stage that sets no options.num_ctx gets its model's context length, at
 * most this: the window of a 128K model would take more memory than most GPU
 * boxes have (Ollama sizes its KV cache by num_ctx). */
#define EGR_NUM_CTX_MAX 32768L

/* Records facts for stage (copied). Nothing about the stage's clearance
 * changes: stubs are egr_stage_mark_remote's. */
void egr_stage_set_facts(struct egr_gate *g, size_t stage, const struct egr_model_facts *f);
/* The stage's facts (EGR_MODEL_FACTS_INIT until set); borrowed until egr_free. */
const struct egr_model_facts *egr_stage_facts(const struct egr_gate *g, size_t stage);
/* The num_ctx in force for stage: its options.num_ctx, else the probe's, else
 * 0 (the server's default). */
long egr_stage_num_ctx(const struct egr_gate *g, size_t stage);

/* The server of endpoint honours the ":local" model name suffix (Ollama
 * 0.18 and later): a model that is a cloud stub then answers 404 instead of
 * being forwarded off the machine. */
void egr_endpoint_set_local_suffix(struct egr_gate *g, size_t endpoint, int honoured);
/* A model an endpoint's server had loaded before the run (GET /api/ps). */
struct egr_loaded {
    char *name;
    int64_t context_length; /* the num_ctx it was loaded with; 0 when not said */
    int remote;             /* a cloud stub (remote_host or remote_model) */
};
/* Keeps (copies) what the pre-run probe learnt from endpoint's /api/ps, so
 * that the scheduler does not ask again. */
void egr_endpoint_set_loaded(struct egr_gate *g, size_t endpoint, const struct egr_loaded *v,
                             size_t n);
/* 1 with the list (borrowed, for the gate's life) when the probe asked
 * endpoint's /api/ps; 0 when nothing is known. */
int egr_endpoint_loaded(const struct egr_gate *g, size_t endpoint, const struct egr_loaded **v,
                        size_t *n);
/* The model name to send for stage: "NAME:local" when the stage is local,
 * its endpoint's server honours the suffix, enforce_local is not "off" and
 * the name carries no source suffix yet (":local", ":cloud", "-cloud");
 * otherwise the stage's model as written. Borrowed until egr_free. */
const char *egr_stage_model(struct egr_gate *g, size_t stage);
/* The same for a request placed on host (a host of the stage's pool): the
 * suffix goes only where that host's server honours it. */
const char *egr_stage_model_on(struct egr_gate *g, size_t stage, size_t host);

/* Every endpoint that a cloud stage uses and that names an api_key_env must
 * find its variable set and non-empty, and every endpoint that any stage
 * uses and that names a basic_auth_env must find its variable holding
 * "user:password" (set, non-empty, with a ':', at most 4096 bytes): a
 * missing credential is a configuration error before anything is sent
 * (BH_EINVAL positioned at the endpoint, naming the variable, never a
 * value), not a silent anonymous request. */
int egr_keys_check(const struct egr_gate *g, struct bh_err *err);

#endif
