/* egress/egress.h — the egress gate, the only way out of the process. Every
 * model request passes egr_send, which compares the request's label with the
 * clearance of the stage it goes to, writes an audit record either way, and
 * only then hands the bytes to net/ with the connection pinned to the address
 * whose locality was verified.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef EGR_EGRESS_H
#define EGR_EGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

struct bh_err;
struct pipeline;
struct store;
struct egr_gate;

/* What the gate learnt of an endpoint when it was created. */
struct egr_endpoint {
    int local;             /* 1 only when declared local and every resolved address is loopback/private */
    char reason[160];      /* why it is (not) local, for check and the audit */
    char host[256];
    int port;
    char addr[64];         /* the address connections are pinned to ("" when resolution failed) */
    char addrs[200];       /* every pinned address, comma-separated, addr first (at most
                              EGR_MAX_PINNED): a name such as localhost resolves to ::1 and
                              127.0.0.1, and a server may listen on only one of them */
};

#define EGR_MAX_PINNED 4

/* Classifies a textual IP address: 1 for loopback (127/8, ::1), private
 * (10/8, 172.16/12, 192.168/16, fc00::/7) and IPv4-mapped forms of those;
 * 0 for everything else, including 0.0.0.0/8 and link-local. */
int egr_addr_is_local(const char *ip);

/* The resolver egr_endpoint_verify uses: getaddrinfo and freeaddrinfo by
 * default. Tests map names to addresses with their own (so that no test
 * sends a DNS query off the machine); NULL restores the default. */
struct addrinfo;
typedef int (*egr_resolve_fn)(const char *node, const char *service,
                              const struct addrinfo *hints, struct addrinfo **res);
typedef void (*egr_resolve_free_fn)(struct addrinfo *res);
void egr_set_resolver(egr_resolve_fn fn, egr_resolve_free_fn free_fn);

/* Resolves the host of url and classifies every address. Never makes an
 * endpoint more local than declared. A resolution failure leaves it cloud
 * with an empty addr (requests then fail at connect). */
int egr_endpoint_verify(const char *url, int declared_local, struct egr_endpoint *out,
                        struct bh_err *err);

/* Creates the gate for a pipeline: verifies every endpoint once (the result
 * is pinned for the whole run). p, n and s are borrowed and must outlive it.
 * s may be NULL only in tests that never send (then nothing can be audited and
 * egr_send refuses everything). */
int egr_new(struct egr_gate **out, const struct pipeline *p, struct net *n, struct store *s,
            int64_t run_id, struct bh_err *err);
/* Frees the gate and the contexts of requests still in flight: free the net
 * first (net_free), or never step it again after this. NULL is fine. */
void egr_free(struct egr_gate *g);

const struct egr_endpoint *egr_endpoint_info(const struct egr_gate *g, size_t endpoint);

/* One request for a stage. */
struct egr_send_req {
    size_t stage;              /* index into the pipeline's stages */
    const char *item;          /* item key, for the audit */
    const char *path;          /* appended to the endpoint URL, e.g. "/api/chat" */
    const char *body;
    size_t body_len;
    int label;                 /* the join of the labels of everything in body */
    size_t max_reply;
    const char *const *headers;  /* the dialect's static headers ("anthropic-version: ..."),
                                    NULL-terminated, or NULL; never a secret */
    int key_header;              /* how the API key goes: 0 "Authorization: Bearer",
                                    1 "x-api-key" */
    net_data_fn on_data;
    net_done_fn on_done;
    void *ud;
};

/* Decides, audits, sends. Returns BH_EPOLICY (audited, nothing sent, callbacks
 * not called) when the label exceeds the stage's clearance; any other error
 * means nothing was sent either. The API key of the endpoint, if any, is read
 * from its environment variable here and never appears in the audit. */
int egr_send(struct egr_gate *g, const struct egr_send_req *r, struct bh_err *err);

/* Verifies the audit: the hash chain (store_audit_verify_chain) and, for
 * every record that allowed a request, that its label is at or below its
 * clearance in its run's label order. BH_EPOLICY naming the first bad record;
 * other codes when the store cannot be read. *n_records counts the chain. */
int egr_audit_verify(struct store *s, int64_t *n_records, struct bh_err *err);

/* Audits a stage that the static check refused before the run started: a
 * record with decision "refuse", no item and no payload, label being the
 * upper bound the check found and reason its words. Nothing is sent. */
int egr_refuse_stage(struct egr_gate *g, size_t stage, int label, const char *reason,
                     struct bh_err *err);

#endif
