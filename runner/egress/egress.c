/* egress/egress.c — the gate every model request passes on its way out.
 *
 * Order matters and is the point of this file: decide (label against the
 * stage's clearance, with the rules of policy/ so that `check` and the gate
 * can never disagree), write the audit record, and only then hand the bytes
 * to net/ — once the record is durable: synced on its own, or inside a group
 * queued until egr_step has committed the group's batch (egress.h). A
 * refusal, a missing store or a failed audit write or commit all mean that
 * nothing is sent: the gate fails closed.
 *
 * What is sent is pinned to what was verified: the endpoint's host resolves
 * to the address found in egr_new (CURLOPT_RESOLVE), environment proxies are
 * ignored for local endpoints (behind a proxy every address check would see
 * the proxy), and for local endpoints a prereq check, run on every connection
 * including reused ones, refuses a peer that is not a verified address, or
 * neither loopback nor vouched for (trusted networks, trusted_hosts). Cloud
 * endpoints get no peer check: data for them is cleared for the outside world
 * already, and a proxy from the environment may legitimately be the peer.
 *
 * API keys: read from the environment at send time, attached only when the
 * endpoint's verified locality is cloud (not the stage's: a :cloud model on a
 * local server is a cloud stage whose request still goes to that server). A
 * local server has no business with a cloud credential; keeping the key off
 * local traffic means a box that merely passes for local (or a local server
 * logging headers) never holds it. The loader refuses api_key_env on an
 * endpoint declared local, so this rule is the second line. The key is never
 * copied into an error, the audit or a log.
 * basic_auth_env is different: it is the login of the reverse proxy in front
 * of that endpoint's server, so it goes with every request to the endpoint,
 * local or cloud, model management included. Header strings that hold a
 * credential are wiped as soon as libcurl has copied them. */
#include "egress/egress.h"
#include "egress/registry.h"

#include <stdarg.h>
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h> /* EVP_EncodeBlock, for basic auth (libcrypto comes with bh_util) */

#include "net/net.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "store/store.h"
#include "util/bh_cidr.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_hash.h"
#include "util/bh_invariant.h"
#include "util/bh_json.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* The gate's verdict on one request. */
struct verdict {
    size_t ep;
    int on_host; /* ep is the host the request goes to (else the stage's endpoint: the
                    record names the endpoint, a pool by its name) */
    int local;   /* the stage's effective locality */
    int clearance;
    int label; /* unknown (-1) already raised to the top */
    int allow;
    const char *as;   /* the decision the record carries when not plain "allow"/"refuse":
                         "cached" (allowed, answered without sending), "breach" */
    char reason[480]; /* room for an endpoint's reason (400) and words around it */
};

/* What one audit record says of a request. */
struct attempt {
    size_t stage;
    const char *stage_name; /* "" for model management, which belongs to no stage */
    const char *model;      /* owned in a flight */
    const char *item;
    const char *url;
    const char *method; /* "POST" or "GET" */
    char sha[BH_SHA256_HEX];
    int64_t bytes;
};

/* One request handed to net/: what the callbacks need to check and forward,
 * and to audit a refused peer. */
struct flight {
    struct flight *prev, *next; /* in egr_gate.flights */
    struct flight *qnext;       /* in egr_gate's queue while queued */
    struct queued *q;           /* what net_submit needs, while queued; NULL once submitted */
    struct egr_gate *g;
    const char *endpoint; /* name, borrowed from the pipeline */
    char addrs[200];      /* the verified addresses, comma-separated */
    char refusal[192];    /* why the peer was refused, "" when it was not */
    int trusted;          /* local through a trusted network or trusted_hosts: the pinned
                             addresses may be other than loopback */
    struct verdict v;
    struct attempt at; /* item, url and model owned */
    egr_data_fn on_data;
    egr_done_fn on_done;
    void *ud;
};

/* A request decided and audited inside the open group, waiting for the
 * commit that makes its record durable before net_submit may see it. */
struct queued {
    char *body; /* copied: exactly the bytes whose hash the record holds */
    size_t body_len, max_reply;
    char **headers; /* the dialect's static headers, copied, NULL-terminated */
    int key_header;
};

struct egr_gate {
    const struct pipeline *p;
    struct egr_registry reg; /* what is known of each endpoint and stage (registry.c) */
    struct net *net;         /* the one network loop, the gate's own */
    struct store *store;
    int64_t run_id;
    struct flight *flights;       /* in flight, freed by egr_free if still there */
    struct bh_err broken;         /* the first audit write that failed (code 0: none); from
                                     then on the gate sends nothing */
    int grouped;                  /* 1 while the group commit's batch is open (egr_group_begin) */
    int stepping;                 /* 1 inside net_step: a request queued now wakes its wait */
    struct flight *qhead, *qtail; /* audited in the open batch, not yet handed to net */
    size_t n_queued;
};

int egr_new(struct egr_gate **out, const struct pipeline *p, struct store *s, int64_t run_id,
            struct bh_err *err)
{
    struct net *n = NULL;
    int rc = net_new(&n, err);
    if (rc < 0)
        return rc;
    struct egr_gate *g = bh_xcalloc(1, sizeof(*g));
    g->p = p;
    g->net = n;
    g->store = s;
    g->run_id = run_id;
    rc = egr_registry_init(&g->reg, p, err);
    if (rc < 0) {
        egr_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

struct egr_registry *egr_gate_registry(struct egr_gate *g)
{
    return &g->reg;
}

const struct egr_registry *egr_gate_registry_const(const struct egr_gate *g)
{
    return &g->reg;
}

static void flight_unlink(struct egr_gate *g, struct flight *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        g->flights = f->next;
    if (f->next)
        f->next->prev = f->prev;
}

static void queued_free(struct queued *q)
{
    if (!q)
        return;
    free(q->body);
    for (size_t i = 0; q->headers && q->headers[i]; i++)
        free(q->headers[i]);
    free(q->headers);
    free(q);
}

static void flight_free(struct flight *f)
{
    queued_free(f->q);
    free((char *)f->at.item);
    free((char *)f->at.url);
    free((char *)f->at.model);
    free(f);
}

void egr_free(struct egr_gate *g)
{
    if (!g)
        return;
    net_free(g->net); /* first: its transfers point at the flights freed below */
    while (g->flights) {
        struct flight *f = g->flights;
        flight_unlink(g, f);
        flight_free(f);
    }
    egr_registry_release(&g->reg);
    free(g);
}

static int submit(struct egr_gate *g, struct flight *f, const struct egr_send_req *r,
                  struct bh_err *err);
static void queue_fail(struct egr_gate *g, int code, const char *why);
static void queue_submit(struct egr_gate *g);

/* Commits the group's batch: one sync makes every audit record (and every
 * task finish) written since the last commit durable; only then do the
 * queued requests go to net. A failed commit breaks the gate and drops the
 * queue unsent. With reopen, a new batch takes the writes that follow; if it
 * cannot be opened the gate goes on ungrouped (each record synced on its own). */
static int group_commit(struct egr_gate *g, int reopen, struct bh_err *err)
{
    struct bh_err e = {0};
    g->grouped = 0;
    if (store_batch_commit(g->store, &e) < 0) {
        bh_err_prefix(&e, "nothing sent, the audit records of this turn could not be "
                          "committed (a decision that cannot be recorded is not taken; the run "
                          "stops): ");
        e.code = BH_EINTERNAL;
        if (!g->broken.code)
            g->broken = e;
        queue_fail(g, BH_EINTERNAL, e.msg);
        *err = e;
        return BH_EINTERNAL;
    }
    if (reopen && store_batch_begin(g->store, &e) == 0)
        g->grouped = 1;
    queue_submit(g); /* what a failed submit's on_done writes goes into the new batch */
    return 0;
}

int egr_group_begin(struct egr_gate *g, struct bh_err *err)
{
    if (!g->store || g->grouped || g->broken.code)
        return 0;
    int rc = store_batch_begin(g->store, err);
    if (rc == 0)
        g->grouped = 1;
    return rc;
}

int egr_group_end(struct egr_gate *g, struct bh_err *err)
{
    return g->grouped ? group_commit(g, 0, err) : 0;
}

int egr_step(struct egr_gate *g, int timeout_ms, struct bh_err *err)
{
    if (g->grouped) {
        int rc = group_commit(g, 1, err);
        if (rc < 0)
            return rc;
    }
    g->stepping = 1;
    int rc = net_step(g->net, timeout_ms, err);
    g->stepping = 0;
    return rc;
}

size_t egr_in_flight(const struct egr_gate *g)
{
    return net_in_flight(g->net) + g->n_queued + egr_first_contact_held(g);
}

void egr_abort_all(struct egr_gate *g, const char *why)
{
    /* A callback may send again: what it queues is ended too. */
    while (g && (net_in_flight(g->net) || g->qhead || egr_first_contact_held(g))) {
        net_abort_all(g->net, why);
        queue_fail(g, BH_ENET, why);
        egr_first_contact_fail(g, why);
    }
}

/* --- the decision ------------------------------------------------------------ */

static const char *locality_word(int local)
{
    return local ? "local" : "cloud";
}

static void decide(const struct egr_gate *g, const struct egr_send_req *r, struct verdict *v)
{
    const struct pipeline *p = g->p;
    const struct pipe_stage *st = &p->stages[r->stage];
    /* The host the engine placed the request on: its own verified facts
     * pin and check the connection; the stage's locality is its pool's. */
    BH_INVARIANT(!r->placed || egr_pool_has(g, st->endpoint, r->host),
                 "a request was placed on a host outside its stage's pool");
    size_t host = r->placed ? r->host : st->endpoint;
    const struct egr_endpoint *ep = &g->reg.eps[host];
    memset(v, 0, sizeof(*v));
    const char *remote = g->reg.remote[r->stage];
    int local = egr_pool_local(g, st->endpoint) && ep->local;
    v->ep = host;
    v->on_host = r->placed;
    v->local = pol_stage_local_facts(p, r->stage, local, remote != NULL);
    v->clearance = pol_stage_clearance_facts(p, r->stage, local, remote != NULL);
    v->label = pol_label_join(p, r->label, r->label); /* unknown means top */
    v->allow = g->store && v->label <= v->clearance;
    if (!g->store)
        bh_str_put(v->reason, sizeof(v->reason), "no audit store: nothing leaves unaudited");
    else if (!v->allow)
        bh_str_put(
            v->reason, sizeof(v->reason), "label %s%s exceeds clearance %s of stage '%s' (%s%s%s)",
            pol_label_name(p, v->label), r->label < 0 ? " (unknown, counted as the top label)" : "",
            pol_label_name(p, v->clearance), st->name, locality_word(v->local),
            ep->local && remote ? ": its model is a cloud stub that Ollama forwards to " : "",
            ep->local && remote ? (remote[0] ? remote : "a remote host") : "");
    else if (ep->local && remote)
        bh_str_put(v->reason, sizeof(v->reason),
                   "model '%s' is a cloud stub that Ollama forwards to %s: treated as cloud",
                   st->model, remote[0] ? remote : "a remote host");
    else if (ep->local && !v->local)
        bh_str_put(
            v->reason, sizeof(v->reason),
            "model '%s' is a cloud model, which Ollama forwards off the machine: treated as cloud",
            st->model);
    else
        bh_str_put(v->reason, sizeof(v->reason), "%s", ep->reason);
}

/* The endpoint URL without trailing slashes, then the path. */
static char *request_url(const struct egr_gate *g, const struct egr_send_req *r, size_t ep)
{
    const char *base = g->p->endpoints[ep].url;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    const char *path = r->path ? r->path : "";
    return bh_xasprintf("%.*s%s%s", (int)n, base, path[0] == '/' || !path[0] ? "" : "/", path);
}

/* A decision that cannot be recorded is not taken, and neither is any
 * later one: the first failed audit write breaks the gate for the rest of
 * its life (BH_EINTERNAL, exit 70), and the engine stops the run when it
 * sees it (egr_audit_broken). The message keeps the store's, which names
 * the state database and SQLite's error. */
static int audit_failed(struct egr_gate *g, struct bh_err *err)
{
    err->code = BH_EINTERNAL;
    bh_err_prefix(err, "nothing sent, the audit record could not be written (a decision that "
                       "cannot be recorded is not taken; the run stops): ");
    if (!g->broken.code)
        g->broken = *err;
    return BH_EINTERNAL;
}

/* BH_EINTERNAL when an earlier audit write failed: nothing more leaves. */
static int audit_refuse_broken(const struct egr_gate *g, struct bh_err *err)
{
    if (!g->broken.code)
        return 0;
    return bh_err_set(err, BH_EINTERNAL,
                      "nothing sent: an earlier audit record could not be "
                      "written, and the gate sends nothing more (%s)",
                      g->broken.msg);
}

int egr_audit_broken(const struct egr_gate *g, struct bh_err *err)
{
    if (!g || !g->broken.code)
        return 0;
    if (err)
        *err = g->broken;
    return 1;
}

static int audit_append(struct egr_gate *g, struct store_audit *a, struct bh_err *err)
{
    int rc = audit_refuse_broken(g, err);
    if (rc == 0 && store_audit_append(g->store, a, err) < 0)
        rc = audit_failed(g, err);
    return rc;
}

static int audit(struct egr_gate *g, const struct attempt *at, const struct verdict *v,
                 struct bh_err *err)
{
    const struct pipeline *p = g->p;
    struct store_audit a;
    memset(&a, 0, sizeof(a));
    a.run_id = g->run_id;
    a.item = at->item;
    a.stage = at->stage_name;
    a.endpoint = v->on_host ? pipe_host_name(&p->endpoints[v->ep]) : p->endpoints[v->ep].name;
    a.url = at->url;
    a.locality = locality_word(v->local);
    a.model = at->model;
    a.label = pol_label_name(p, v->label);
    a.clearance = pol_label_name(p, v->clearance);
    a.decision = v->as ? v->as : v->allow ? "allow" : "refuse";
    a.reason = v->reason;
    a.payload_sha256 = at->sha;
    a.bytes = at->bytes;
    int rc = audit_append(g, &a, err);
    if (rc < 0 && at->stage_name[0])
        bh_err_prefix(err, "stage '%s': ", at->stage_name);
    else if (rc < 0)
        bh_err_prefix(err, "endpoint '%s': ", a.endpoint);
    return rc;
}

static int refuse(const struct egr_gate *g, const struct egr_send_req *r, const struct verdict *v,
                  struct bh_err *err)
{
    const struct pipeline *p = g->p;
    const struct pipe_stage *st = &p->stages[r->stage];
    const struct pipe_endpoint *e = &p->endpoints[v->ep];
    if (!g->store)
        return bh_err_set(err, BH_EPOLICY,
                          "stage '%s': refused to send to endpoint '%s': "
                          "the gate has no audit store, and nothing leaves unaudited",
                          st->name, v->on_host ? pipe_host_name(e) : e->name);
    const char *remote = g->reg.remote[r->stage];
    int stub = remote && g->reg.eps[v->ep].local;
    return bh_err_set(err, BH_EPOLICY,
                      "stage '%s': refused to send data labelled %s to "
                      "endpoint '%s' (%s, %s) whose clearance is %s%s%s%s — keep such data on a "
                      "local stage, or declassify it first",
                      st->name, pol_label_name(p, v->label),
                      v->on_host ? pipe_host_name(e) : e->name, locality_word(v->local), e->url,
                      pol_label_name(p, v->clearance), stub ? ": model '" : "",
                      stub ? st->model : "",
                      stub ? "' is a cloud stub that the server forwards off the machine" : "");
}

/* --- sending ----------------------------------------------------------------- */

/* 1 when ip is one of the comma-separated addresses in list (compared as 16
 * bytes, IPv4 mapped: "127.0.0.1" and "::ffff:127.0.0.1" are the same). */
static int addr_in(const char *ip, const char *list)
{
    unsigned char x[16], y[16];
    if (bh_cidr_addr(ip, x) < 0)
        return 0;
    while (*list) {
        char one[64];
        size_t n = strcspn(list, ",");
        if (n < sizeof(one)) {
            memcpy(one, list, n);
            one[n] = '\0';
            if (bh_cidr_addr(one, y) == 0 && memcmp(x, y, 16) == 0)
                return 1;
        }
        list += n + (list[n] == ',');
    }
    return 0;
}

static int flight_prereq(void *ud, const char *peer_ip, int peer_port)
{
    struct flight *f = ud;
    (void)peer_port;
    if (!addr_in(peer_ip, f->addrs))
        bh_str_put(f->refusal, sizeof(f->refusal),
                   "%s is not an address verified for endpoint '%s' (%.64s)", peer_ip, f->endpoint,
                   f->addrs);
    else if (!egr_addr_is_loopback(peer_ip) && !f->trusted)
        bh_str_put(f->refusal, sizeof(f->refusal),
                   "%s is not a loopback address, and no trusted "
                   "network or trusted_hosts vouches for it",
                   peer_ip);
    return f->refusal[0] != '\0';
}

static int flight_data(void *ud, const char *data, size_t len)
{
    struct flight *f = ud;
    return f->on_data ? f->on_data(f->ud, data, len) : 0;
}

/* Ends every queued request unsent: on_done with code and why, not
 * transient. What an on_done queues meanwhile is ended too. */
static void queue_fail(struct egr_gate *g, int code, const char *why)
{
    while (g->qhead) {
        struct flight *f = g->qhead;
        g->qhead = f->qnext;
        if (!g->qhead)
            g->qtail = NULL;
        g->n_queued--;
        struct egr_result res = {.code = code, .retry_after_ms = -1};
        bh_str_put(res.error, sizeof(res.error), "%s", why);
        egr_done_fn done = f->on_done;
        void *done_ud = f->ud;
        flight_unlink(g, f);
        flight_free(f);
        if (done)
            done(done_ud, &res);
    }
}

static int audit_nothing_sent(struct egr_gate *g, size_t stage, const char *item, int label,
                              const char *as, const char *reason, struct bh_err *err);

/* A request queued in one turn leaves in the next; a reply in between may
 * have shown its model to be a cloud stub (stage.c marks it). Decided again
 * with what the gate knows now: 0 when it may still go, else BH_EPOLICY with
 * a refusal audited (or BH_EINTERNAL when that record could not be written).
 * Model management carries no data and belongs to no stage: it goes. */
static int still_allowed(struct egr_gate *g, const struct flight *f, struct bh_err *err)
{
    if (!f->at.stage_name[0])
        return 0;
    struct egr_send_req r = {.stage = f->at.stage,
                             .placed = 1,
                             .host = f->v.ep,
                             .item = f->at.item,
                             .label = f->v.label};
    struct verdict v;
    decide(g, &r, &v);
    if (v.allow)
        return 0;
    char why[600];
    bh_str_put(why, sizeof(why),
               "not sent: decided before the model was found to be a cloud stub, and no longer "
               "allowed: %s",
               v.reason);
    int rc = audit_nothing_sent(g, f->at.stage, f->at.item, f->v.label, NULL, why, err);
    if (rc < 0)
        return rc;
    return bh_err_set(err, BH_EPOLICY, "stage '%s': %s", f->at.stage_name, why);
}

/* Hands every queued request to net, oldest first. One that is no longer
 * allowed (still_allowed) or that net refuses (an option libcurl rejects)
 * ends at once through its on_done, unsent. */
static void queue_submit(struct egr_gate *g)
{
    struct flight *f = g->qhead;
    g->qhead = g->qtail = NULL;
    g->n_queued = 0;
    while (f) {
        struct flight *next = f->qnext;
        struct bh_err err = {0};
        struct queued *q = f->q;
        struct egr_send_req r = {.body = q->body,
                                 .body_len = q->body_len,
                                 .max_reply = q->max_reply,
                                 .headers = (const char *const *)q->headers,
                                 .key_header = q->key_header};
        egr_done_fn done = f->on_done;
        void *done_ud = f->ud;
        f->qnext = NULL;
        f->q = NULL;
        int rc = still_allowed(g, f, &err);
        if (rc < 0) {
            flight_unlink(g, f);
            flight_free(f);
        } else {
            rc = submit(g, f, &r, &err); /* on error f is freed already */
        }
        queued_free(q); /* net copied the body and headers */
        if (rc < 0 && done) {
            struct egr_result res = {.code = err.code, .retry_after_ms = -1};
            bh_str_put(res.error, sizeof(res.error), "%s", err.msg);
            done(done_ud, &res);
        }
        f = next;
    }
}

static void flight_done(void *ud, const struct net_result *r)
{
    struct flight *f = ud;
    struct egr_result res = {.code = r->code,
                             .status = r->status,
                             .received = r->received,
                             .transient = r->transient,
                             .retry_after_ms = r->retry_after_ms,
                             .no_first_byte = r->no_first_byte};
    memcpy(res.error, r->error, sizeof(res.error));
    if (f->refusal[0]) {
        /* Allowed on paper, refused at the socket: a policy refusal, audited as such. */
        struct bh_err err = {0};
        f->v.allow = 0;
        bh_str_put(f->v.reason, sizeof(f->v.reason), "peer refused: %s", f->refusal);
        bh_str_put(res.error, sizeof(res.error), "%s: %s", r->error, f->refusal);
        res.code = BH_EPOLICY;
        if (audit(f->g, &f->at, &f->v, &err)) {
            bh_str_put(res.error, sizeof(res.error), "%s", err.msg);
            res.code = err.code; /* the gate is broken now: the engine stops the run */
        }
    }
    egr_done_fn done = f->on_done;
    void *done_ud = f->ud;
    flight_unlink(f->g, f);
    flight_free(f);
    if (done)
        done(done_ud, &res);
}

/* "Authorization: Bearer KEY" (or "x-api-key: KEY") for an endpoint verified
 * cloud that names a key variable that is set; NULL otherwise. The endpoint's
 * verified locality decides, never the stage's: a :cloud model on a local
 * server is a cloud stage, but the request still goes to the local server.
 * The caller wipes and frees it. */
static char *auth_header(const struct pipe_endpoint *e, int endpoint_local, int x_api_key)
{
    if (endpoint_local || !e->api_key_env)
        return NULL;
    const char *key = getenv(e->api_key_env);
    if (!key || !key[0])
        return NULL;
    return x_api_key ? bh_xasprintf("x-api-key: %s", key)
                     : bh_xasprintf("Authorization: Bearer %s", key);
}

#define EGR_MAX_HEADERS 8
#define EGR_MAX_EP_HEADERS 32   /* the loader's cap on an endpoint's "headers" */
#define EGR_MAX_BASIC_AUTH 4096 /* bytes of user:password: far beyond any real one */

/* The basic_auth_env problem that egr_keys_check reports, or NULL when the
 * variable's value cred is usable. Says what is wrong, never what is there. */
static const char *basic_auth_problem(const char *cred)
{
    if (!cred || !cred[0])
        return "is not set";
    if (!strchr(cred, ':'))
        return "does not hold user:password (there is no ':')";
    if (strlen(cred) > EGR_MAX_BASIC_AUTH)
        return "is longer than 4096 bytes";
    return NULL;
}

/* "Authorization: Basic <base64 of user:password>" for an endpoint with
 * basic_auth_env, whatever the stage's locality: the credential belongs to
 * the proxy in front of this very server, local or not. NULL when it has
 * none or the variable is unusable (egr_keys_check refused that before the
 * run). The caller wipes and frees it. */
static char *basic_auth_header(const struct pipe_endpoint *e)
{
    const char *cred = e->basic_auth_env ? getenv(e->basic_auth_env) : NULL;
    if (!cred || basic_auth_problem(cred))
        return NULL;
    static const char prefix[] = "Authorization: Basic ";
    size_t n = strlen(cred), b64 = 4 * ((n + 2) / 3); /* n <= EGR_MAX_BASIC_AUTH: no overflow */
    char *h = bh_xmalloc(sizeof(prefix) + b64);
    memcpy(h, prefix, sizeof(prefix) - 1);
    EVP_EncodeBlock((unsigned char *)h + sizeof(prefix) - 1, (const unsigned char *)cred, (int)n);
    return h;
}

/* A request's headers: the content type, the dialect's, the endpoint's own
 * and one credential. The strings it owns hold secrets: headers_wipe. */
struct headers {
    const char *v[EGR_MAX_HEADERS + EGR_MAX_EP_HEADERS + 2];
    size_t n;
    char *own[EGR_MAX_EP_HEADERS + 1];
    size_t n_own;
};

static void headers_build(struct headers *h, const struct pipe_endpoint *e,
                          const struct egr_send_req *r, int endpoint_local)
{
    h->n = h->n_own = 0;
    h->v[h->n++] = "Content-Type: application/json";
    for (size_t i = 0; r->headers && r->headers[i] && i < EGR_MAX_HEADERS; i++)
        h->v[h->n++] = r->headers[i];
    for (size_t i = 0; i < e->n_headers && i < EGR_MAX_EP_HEADERS; i++)
        h->v[h->n++] = h->own[h->n_own++] =
            bh_xasprintf("%s: %s", e->headers[i].name, e->headers[i].value);
    /* The loader never lets an endpoint have both. */
    char *cred =
        e->basic_auth_env ? basic_auth_header(e) : auth_header(e, endpoint_local, r->key_header);
    BH_INVARIANT(!cred || e->basic_auth_env || !endpoint_local,
                 "an API key was about to go to an endpoint verified local");
    if (cred)
        h->v[h->n++] = h->own[h->n_own++] = cred;
}

static void headers_wipe(struct headers *h)
{
    for (size_t i = 0; i < h->n_own; i++) {
        explicit_bzero(h->own[i], strlen(h->own[i]));
        free(h->own[i]);
    }
    h->n = h->n_own = 0;
}

static struct flight *flight_new(struct egr_gate *g, const struct egr_send_req *r,
                                 const struct verdict *v, const struct attempt *at)
{
    struct flight *f = bh_xcalloc(1, sizeof(*f));
    size_t ep = v->ep;
    f->g = g;
    f->endpoint = pipe_host_name(&g->p->endpoints[ep]);
    f->trusted = g->reg.eps[ep].trusted; /* every pinned address was vouched for */
    snprintf(f->addrs, sizeof(f->addrs), "%s", g->reg.eps[ep].addrs);
    f->v = *v;
    f->at = *at;
    f->at.item = bh_xstrdup(at->item);
    f->at.url = bh_xstrdup(at->url);
    f->at.model = bh_xstrdup(at->model ? at->model : "");
    f->on_data = r->on_data;
    f->on_done = r->on_done;
    f->ud = r->ud;
    f->next = g->flights;
    if (g->flights)
        g->flights->prev = f;
    g->flights = f;
    return f;
}

/* "host:port:addr[,addr...]" for CURLOPT_RESOLVE, IPv6 addresses bracketed;
 * "" when there is nothing to pin. */
static void pin(const struct egr_endpoint *ep, char *out, size_t size)
{
    out[0] = '\0';
    unsigned char literal[16];
    if (!ep->addrs[0] || bh_cidr_addr(ep->host, literal) == 0)
        return; /* unresolved, or an address literal that needs no resolving */
    size_t used = (size_t)snprintf(out, size, "%s:%d:", ep->host, ep->port);
    for (const char *a = ep->addrs; *a && used < size;) {
        size_t n = strcspn(a, ",");
        int v6 = memchr(a, ':', n) != NULL;
        used += (size_t)snprintf(out + used, size - used, "%s%s%.*s%s", a == ep->addrs ? "" : ",",
                                 v6 ? "[" : "", (int)n, a, v6 ? "]" : "");
        a += n + (a[n] == ',');
    }
}

/* Hands f to net now: pinned, with its headers built (and wiped once
 * libcurl has copied them). On error f is unlinked and freed, nothing sent. */
static int submit(struct egr_gate *g, struct flight *f, const struct egr_send_req *r,
                  struct bh_err *err)
{
    const struct pipe_endpoint *e = &g->p->endpoints[f->v.ep];
    const struct egr_endpoint *ep = &g->reg.eps[f->v.ep];
    char resolve[600];
    pin(ep, resolve, sizeof(resolve));
    struct headers h;
    headers_build(&h, e, r, ep->local);
    struct net_req q = {
        .url = f->at.url,
        .method = f->at.method,
        .body = r->body,
        .body_len = r->body_len,
        .headers = h.v,
        .n_headers = h.n,
        .timeout_ms = e->timeout_s * 1000, /* the loader bounds every limit to a day */
        .connect_timeout_ms = e->connect_timeout_s * 1000,
        .first_byte_timeout_ms = e->first_byte_timeout_s * 1000,
        .idle_timeout_ms = e->idle_timeout_s * 1000,
        .max_reply = r->max_reply,
        .resolve = resolve[0] ? resolve : NULL,
        .ca_file = e->ca_file,
        .no_proxy = ep->local,
        .prereq = ep->local ? flight_prereq : NULL,
        .on_data = flight_data,
        .on_done = flight_done,
        .ud = f,
    };
    int rc = net_submit(g->net, &q, err);
    headers_wipe(&h); /* libcurl copied them */
    if (rc < 0) {
        if (f->at.stage_name[0])
            bh_err_prefix(err, "stage '%s': ", f->at.stage_name);
        else
            bh_err_prefix(err, "endpoint '%s': ", pipe_host_name(e));
        flight_unlink(g, f);
        flight_free(f);
    }
    return rc;
}

/* Keeps what submit will need once the group's commit has made f's record
 * durable, and puts f last in the queue. */
static void enqueue(struct egr_gate *g, struct flight *f, const struct egr_send_req *r)
{
    struct queued *q = bh_xcalloc(1, sizeof(*q));
    q->body = bh_xmalloc(r->body_len + 1);
    if (r->body_len)
        memcpy(q->body, r->body, r->body_len);
    q->body[r->body_len] = '\0';
    q->body_len = r->body_len;
    q->max_reply = r->max_reply;
    q->key_header = r->key_header;
    size_t n = 0;
    while (r->headers && r->headers[n] && n < EGR_MAX_HEADERS)
        n++;
    q->headers = bh_xcalloc(n + 1, sizeof(*q->headers));
    for (size_t i = 0; i < n; i++)
        q->headers[i] = bh_xstrdup(r->headers[i]);
    f->q = q;
    if (g->qtail)
        g->qtail->qnext = f;
    else
        g->qhead = f;
    g->qtail = f;
    g->n_queued++;
    if (g->stepping)
        net_wakeup(g->net); /* sent from a callback: the loop's wait ends now */
}

/* The allowed request goes out: inside a group it is queued until the
 * commit in the next egr_step (its record is durable before any byte moves);
 * otherwise its record is synced already and it goes to net now. */
static int dispatch(struct egr_gate *g, const struct egr_send_req *r, const struct verdict *v,
                    const struct attempt *at, struct bh_err *err)
{
    const struct egr_endpoint *ep = &g->reg.eps[v->ep];
    /* Whatever path led here, these hold, or nothing leaves (exit 70). */
    BH_INVARIANT(v->allow && g->store && v->label <= v->clearance,
                 "the gate was about to send a request it did not allow within clearance");
    BH_INVARIANT(!v->local || ep->local,
                 "a local stage's request was about to go to an endpoint not verified local");
    BH_INVARIANT(!ep->local || ep->addrs[0], "a local endpoint's request was about to go unpinned");
    struct flight *f = flight_new(g, r, v, at);
    if (g->grouped) {
        enqueue(g, f, r);
        return 0;
    }
    return submit(g, f, r, err);
}

/* How a stage request that the gate allows goes on. */
enum pass_kind {
    PASS_SEND,   /* sent next: audited "allow" */
    PASS_CHECK,  /* egr_check: not audited, the caller goes on with one of the others */
    PASS_CACHED, /* answered without sending: audited "cached", no bytes */
};

/* The one path of every stage request through the gate: decide, audit (a
 * refusal always; an allowed request as its kind says), refuse. at->url is
 * owned by the caller after the call, whatever it returns. */
static int stage_pass(struct egr_gate *g, const struct egr_send_req *r, enum pass_kind kind,
                      struct verdict *v, struct attempt *at, struct bh_err *err)
{
    assert(r->stage < g->p->n_stages);
    const struct pipe_stage *st = &g->p->stages[r->stage];
    decide(g, r, v);
    *at = (struct attempt){.stage = r->stage,
                           .stage_name = st->name,
                           .model = st->model,
                           .method = "POST",
                           .item = r->item,
                           .url = request_url(g, r, v->ep),
                           .bytes = kind == PASS_CACHED ? 0 : (int64_t)r->body_len};
    bh_sha256_hex(r->body ? r->body : "", r->body_len, at->sha);
    if (kind == PASS_CACHED && v->allow) {
        char why[sizeof(v->reason)];
        bh_str_put(why, sizeof(why), "answered from the response cache, nothing sent (%s)",
                   v->reason);
        memcpy(v->reason, why, sizeof(why));
        v->as = "cached";
    }
    int rc = audit_refuse_broken(g, err);
    if (rc == 0 && g->store && (!v->allow || kind != PASS_CHECK))
        rc = audit(g, at, v, err);
    if (rc == 0 && !v->allow)
        rc = refuse(g, r, v, err);
    return rc;
}

int egr_send(struct egr_gate *g, const struct egr_send_req *r, struct bh_err *err)
{
    struct verdict v;
    struct attempt at;
    assert(r->stage < g->p->n_stages);
    int held =
        egr_first_contact_hold(g, r, r->placed ? r->host : g->p->stages[r->stage].endpoint, err);
    if (held)
        return held < 0 ? held : 0; /* decided and audited once the probe has told */
    int rc = stage_pass(g, r, PASS_SEND, &v, &at, err);
    if (rc == 0)
        rc = dispatch(g, r, &v, &at, err);
    free((char *)at.url);
    return rc;
}

int egr_check(struct egr_gate *g, const struct egr_send_req *r, struct bh_err *err)
{
    struct verdict v;
    struct attempt at;
    int rc = stage_pass(g, r, PASS_CHECK, &v, &at, err);
    free((char *)at.url);
    return rc;
}

int egr_audit_cached(struct egr_gate *g, const struct egr_send_req *r, struct bh_err *err)
{
    struct verdict v;
    struct attempt at;
    int rc = stage_pass(g, r, PASS_CACHED, &v, &at, err);
    free((char *)at.url);
    return rc;
}

/* A record of a decision that sent nothing: a refusal, or a breach (as is
 * "breach", NULL for "refuse"). */
static int audit_nothing_sent(struct egr_gate *g, size_t stage, const char *item, int label,
                              const char *as, const char *reason, struct bh_err *err)
{
    assert(stage < g->p->n_stages);
    if (!g->store)
        return 0;
    const struct pipe_stage *st = &g->p->stages[stage];
    struct egr_send_req r = {.stage = stage, .item = item, .label = label};
    struct verdict v;
    decide(g, &r, &v);
    v.allow = 0;
    v.as = as;
    bh_str_put(v.reason, sizeof(v.reason), "%s", reason);
    char *url = request_url(g, &r, st->endpoint);
    struct attempt at = {.stage = stage,
                         .stage_name = st->name,
                         .model = st->model,
                         .method = "POST",
                         .item = item,
                         .url = url};
    bh_sha256_hex("", 0, at.sha);
    int rc = audit(g, &at, &v, err);
    free(url);
    return rc;
}

int egr_audit_refusal(struct egr_gate *g, size_t stage, const char *item, int label,
                      const char *reason, struct bh_err *err)
{
    return audit_nothing_sent(g, stage, item, label, NULL, reason, err);
}

int egr_audit_breach(struct egr_gate *g, size_t stage, const char *item, int label,
                     const char *reason, struct bh_err *err)
{
    return audit_nothing_sent(g, stage, item, label, "breach", reason, err);
}

int egr_audit_declassify(struct egr_gate *g, size_t stage, const char *item, int from, int to,
                         int passed, const char *reason, const char *output, size_t len,
                         struct bh_err *err)
{
    assert(stage < g->p->n_stages);
    if (!g->store)
        return 0;
    const struct pipeline *p = g->p;
    const struct pipe_stage *st = &p->stages[stage];
    struct egr_send_req r = {.stage = stage, .item = item, .label = passed ? to : from};
    struct verdict v;
    decide(g, &r, &v);
    struct store_audit a;
    memset(&a, 0, sizeof(a));
    char sha[BH_SHA256_HEX];
    bh_sha256_hex(output, len, sha);
    char *url = request_url(g, &r, st->endpoint);
    a.run_id = g->run_id;
    a.item = item;
    a.stage = st->name;
    a.endpoint = p->endpoints[st->endpoint].name; /* not a request: the stage's endpoint */
    a.url = url;
    a.locality = locality_word(v.local);
    a.model = st->model;
    a.label = pol_label_name(p, r.label);
    a.clearance = pol_label_name(p, to); /* the target the pipeline declared */
    a.decision = passed ? "declassify" : "keep";
    a.reason = reason;
    a.payload_sha256 = sha;
    a.bytes = (int64_t)len;
    int rc = audit_append(g, &a, err);
    free(url);
    return rc;
}

/* --- model management ------------------------------------------------------------ */

static const struct manage_kind {
    const char *method, *path, *what;
    int needs_model; /* the body is {"model", ...}: manage_body */
} manage_kinds[] = {
    [EGR_MANAGE_TAGS] = {"GET", "/api/tags", "list models", 0},
    [EGR_MANAGE_PS] = {"GET", "/api/ps", "list loaded models", 0},
    [EGR_MANAGE_STATUS] = {"GET", "/api/status", "cloud status", 0},
    [EGR_MANAGE_VERSION] = {"GET", "/api/version", "server version", 0},
    [EGR_MANAGE_SHOW] = {"POST", "/api/show", "show model", 1},
    [EGR_MANAGE_PULL] = {"POST", "/api/pull", "pull model", 1},
    [EGR_MANAGE_PRELOAD] = {"POST", "/api/generate", "preload model", 1},
    [EGR_MANAGE_UNLOAD] = {"POST", "/api/generate", "unload model", 1},
    [EGR_MANAGE_PROBE] = {"POST", "/api/chat", "probe model", 1},
    [EGR_MANAGE_HEALTH] = {"GET", "/health", "server health", 0},
    [EGR_MANAGE_MODELS] = {"GET", "/v1/models", "list models (v1)", 0},
};

/* A name the gate sends: no control character, and short enough to be a
 * model name (the gate builds these bodies itself, so only a name can ever
 * be in them). */
static int model_name_ok(const char *model)
{
    size_t n = 0;
    for (const char *c = model; *c; c++, n++)
        if ((unsigned char)*c < 0x20 || n >= 500)
            return 0;
    return n > 0;
}

/* A preload's keep_alive: a Go duration as the pipeline validates it
 * ("10m", "-1s"): digits, '-', '.', and the units h, m, s. */
static int duration_ok(const char *s)
{
    return s[0] && strspn(s, "-0123456789.hms") == strlen(s) && strpbrk(s, "hms");
}

/* The members that follow "model" for the kind, as Ollama documents them. */
static void body_rest(json_t *o, int kind, int *bad)
{
    switch (kind) {
    case EGR_MANAGE_PULL: bh_json_set(o, "stream", json_true(), bad); return;
    case EGR_MANAGE_PRELOAD:
    case EGR_MANAGE_UNLOAD:
        bh_json_set(o, "prompt", json_string(""), bad);
        if (kind == EGR_MANAGE_UNLOAD)
            bh_json_set(o, "keep_alive", json_integer(0), bad);
        break;
    case EGR_MANAGE_PROBE:
        bh_json_set(o, "messages",
                    json_pack("[{s:s,s:s}]", "role", "user", "content", EGR_PROBE_TEXT), bad);
        break;
    default: return; /* SHOW: the model alone */
    }
    bh_json_set(o, "stream", json_false(), bad);
}

/* The preload's own keys: keep_alive (the stage's, else 10m) and the
 * num_ctx its requests will ask for (another num_ctx makes Ollama reload).
 * A probe loads the model too, so it carries the same keys, and asks for a
 * single token. */
static int preload_keys(json_t *o, const struct egr_manage_req *r, int *bad, struct bh_err *err)
{
    const char *ka = r->keep_alive ? r->keep_alive : "10m";
    if (!duration_ok(ka))
        return bh_err_set(err, BH_EINVAL, "%s: keep_alive '%s' is not a duration such as \"10m\"",
                          manage_kinds[r->kind].what, ka);
    bh_json_set(o, "keep_alive", json_string(ka), bad);
    json_t *opt = json_object();
    if (r->kind == EGR_MANAGE_PROBE)
        bh_json_set(opt, "num_predict", json_integer(1), bad);
    if (r->num_ctx > 0)
        bh_json_set(opt, "num_ctx", json_integer(r->num_ctx), bad);
    if (json_object_size(opt))
        bh_json_set(o, "options", opt, bad);
    else
        json_decref(opt);
    return 0;
}

/* The request's body (owned), NULL for a kind without one. */
static int manage_body(const struct manage_kind *k, const struct egr_manage_req *r, char **body,
                       struct bh_err *err)
{
    *body = NULL;
    if (!k->needs_model)
        return 0;
    if (!r->model || !model_name_ok(r->model))
        return bh_err_set(err, BH_EINVAL, "%s: '%s' is not a model name", k->what,
                          r->model ? r->model : "");
    int bad = 0, rc = 0;
    json_t *o = json_object();
    bh_json_set(o, "model", json_string(r->model), &bad); /* NULL, so bad, when not UTF-8 */
    body_rest(o, r->kind, &bad);
    if (r->kind == EGR_MANAGE_PRELOAD || r->kind == EGR_MANAGE_PROBE)
        rc = preload_keys(o, r, &bad, err);
    if (rc == 0 && !bad)
        *body = bh_json_dump(o, JSON_COMPACT);
    json_decref(o);
    if (rc == 0 && !*body)
        rc = bh_err_set(err, BH_EINVAL, "%s: '%s' is not a model name", k->what, r->model);
    return rc;
}

int egr_send_manage(struct egr_gate *g, const struct egr_manage_req *r, struct bh_err *err)
{
    assert(r->endpoint < g->p->n_endpoints);
    assert(r->kind >= 0 && (size_t)r->kind < BH_NELEM(manage_kinds));
    const struct manage_kind *k = &manage_kinds[r->kind];
    const struct egr_endpoint *ep = &g->reg.eps[r->endpoint];
    char *body = NULL;
    int rc = manage_body(k, r, &body, err);
    if (rc) {
        bh_err_prefix(err, "endpoint '%s': ", pipe_host_name(&g->p->endpoints[r->endpoint]));
        return rc;
    }
    /* A model name is public data: it may go wherever anything may go, and
     * nowhere a refuted local claim points (clearance POL_NOTHING). */
    /* A pool with a host that is not local is refused whole, to every host. */
    int local = ep->local && egr_pool_local(g, r->endpoint);
    struct verdict v = {.ep = r->endpoint,
                        .on_host = 1,
                        .local = local,
                        .label = 0,
                        .clearance = pol_endpoint_clearance(g->p, r->endpoint, local)};
    v.allow = g->store != NULL && v.label <= v.clearance;
    bh_str_put(v.reason, sizeof(v.reason), "model management (%s: %s %s): no item data%s", k->what,
               k->method, k->path,
               v.label <= v.clearance ? ""
                                      : "; the endpoint's "
                                        "locality claim did not verify, nothing goes there");
    struct egr_send_req sr = {.path = k->path,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .max_reply = r->max_reply,
                              .on_data = r->on_data,
                              .on_done = r->on_done,
                              .ud = r->ud};
    char *url = request_url(g, &sr, r->endpoint);
    struct attempt at = {.stage_name = "",
                         .model = r->model ? r->model : "",
                         .method = k->method,
                         .item = "",
                         .url = url,
                         .bytes = (int64_t)sr.body_len};
    bh_sha256_hex(body ? body : "", sr.body_len, at.sha);
    rc = audit_refuse_broken(g, err);
    if (rc == 0 && !g->store)
        rc = bh_err_set(err, BH_EPOLICY,
                        "endpoint '%s': refused to %s: the gate has no audit "
                        "store, and nothing leaves unaudited",
                        pipe_host_name(&g->p->endpoints[r->endpoint]), k->what);
    if (rc == 0)
        rc = audit(g, &at, &v, err);
    if (rc == 0 && !v.allow)
        rc = bh_err_set(err, BH_EPOLICY, "endpoint '%s' (%s): refused to %s: %s",
                        pipe_host_name(&g->p->endpoints[r->endpoint]),
                        g->p->endpoints[r->endpoint].url, k->what, ep->reason);
    if (rc == 0)
        rc = dispatch(g, &sr, &v, &at, err);
    free(url);
    free(body);
    return rc;
}

/* Positions err at the endpoint's key in the pipeline file. */
static void err_at_key(const struct egr_gate *g, const struct pipe_endpoint *e, const char *key,
                       struct bh_err *err)
{
    char path[128];
    bh_str_put(path, sizeof(path), "endpoints.%s.%s", e->name, key);
    bh_err_at(err, g->p->file, e->line, e->col, path);
}

/* The value is never part of a message: only the variable's name. */
static int basic_auth_check(const struct egr_gate *g, size_t stage, struct bh_err *err)
{
    const struct pipe_endpoint *e = &g->p->endpoints[g->p->stages[stage].endpoint];
    const char *why = e->basic_auth_env ? basic_auth_problem(getenv(e->basic_auth_env)) : NULL;
    if (!why)
        return 0;
    err_at_key(g, e, "basic_auth_env", err);
    return bh_err_set(err, BH_EINVAL,
                      "the variable '%s' %s — export it as user:password for the proxy in front "
                      "of this endpoint (stage '%s' sends to it), or remove basic_auth_env if "
                      "the endpoint needs no login",
                      e->basic_auth_env, why, g->p->stages[stage].name);
}

int egr_keys_check(const struct egr_gate *g, struct bh_err *err)
{
    for (size_t i = 0; i < g->p->n_stages; i++) {
        const struct pipe_endpoint *e = &g->p->endpoints[g->p->stages[i].endpoint];
        int rc = basic_auth_check(g, i, err);
        if (rc < 0)
            return rc;
        if (!e->api_key_env || g->reg.eps[g->p->stages[i].endpoint].local)
            continue; /* a verified local endpoint is never sent the key */
        const char *key = getenv(e->api_key_env);
        if (key && key[0])
            continue;
        err_at_key(g, e, "api_key_env", err);
        return bh_err_set(err, BH_EINVAL,
                          "the variable '%s' is not set — export it "
                          "with the key for this endpoint (stage '%s' sends to it), or remove "
                          "api_key_env if the endpoint needs no key",
                          e->api_key_env, g->p->stages[i].name);
    }
    return 0;
}
