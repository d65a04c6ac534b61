/* probe/models_probe.c — model-management requests run to completion (the
 * model lists, the server's version and cloud status, a model's details),
 * the online session that commands outside a run ask servers in, and the
 * static check over what the gate learnt online.
 *
 * Every request goes through the gate, so each is audited; the session gives
 * `models` and `check --online` a run of their own in the state database
 * for those records. What the requests teach is turned into facts by
 * survey.c. */
#include "probe/models_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "providers/manage.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

#define LIST_MAX ((size_t)16 << 20)

struct wait {
    struct probe_manage_call *c;
    int done;
};

static int call_data(void *ud, const char *data, size_t len)
{
    struct wait *w = ud;
    return w->c->on_data ? w->c->on_data(w->c->ud, data, len) : 0;
}

static void call_done(void *ud, const struct egr_result *r)
{
    struct wait *w = ud;
    w->c->result = *r;
    w->done = 1;
}

int probe_manage_call(struct egr_gate *g, struct probe_manage_call *c, struct bh_err *err)
{
    struct wait w = {.c = c};
    struct egr_manage_req r = {.endpoint = c->endpoint,
                               .kind = c->kind,
                               .model = c->model,
                               .max_reply = LIST_MAX,
                               .on_data = call_data,
                               .on_done = call_done,
                               .ud = &w};
    memset(&c->result, 0, sizeof(c->result));
    int rc = egr_send_manage(g, &r, err);
    while (rc == 0 && !w.done)
        rc = egr_step(g, 1000, err);
    return rc;
}

static int doc_data(void *ud, const char *data, size_t len)
{
    struct bh_err err = {0};
    return prov_doc_feed(ud, data, len, &err) ? 1 : 0;
}

int probe_models_list(struct egr_gate *g, const struct pipeline *p, size_t endpoint, int kind,
                      struct prov_models *out, struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[endpoint];
    const char *path = kind == EGR_MANAGE_PS ? "/api/ps" : "/api/tags";
    struct prov_doc *d = prov_doc_new(LIST_MAX);
    struct probe_manage_call c = {.endpoint = endpoint, .kind = kind, .on_data = doc_data, .ud = d};
    memset(out, 0, sizeof(*out));
    int rc = probe_manage_call(g, &c, err);
    if (rc == 0 && c.result.code)
        rc = bh_err_set(err, BH_ENET,
                        "endpoint '%s' (%s): GET %s failed: %s — is the server "
                        "running?",
                        pipe_host_name(e), e->url, path,
                        c.result.error[0] ? c.result.error : "no reply");
    else if (rc == 0 && (rc = prov_models_finish(d, c.result.status, out, err)) != 0)
        bh_err_prefix(err, "endpoint '%s' (%s): GET %s: ", pipe_host_name(e), e->url, path);
    prov_doc_free(d);
    return rc;
}

/* A whole-document request (version, status, show) run to completion and
 * its reply kept in d; the transport failure, if any, as BH_ENET. */
static int doc_call(struct egr_gate *g, const struct pipeline *p, struct probe_manage_call *c,
                    const char *what, struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[c->endpoint];
    c->on_data = doc_data;
    int rc = probe_manage_call(g, c, err);
    if (rc == 0 && c->result.code)
        rc = bh_err_set(err, BH_ENET,
                        "endpoint '%s' (%s): %s failed: %s — is the server "
                        "running?",
                        pipe_host_name(e), e->url, what,
                        c->result.error[0] ? c->result.error : "no reply");
    return rc;
}

int probe_server_ask(struct egr_gate *g, const struct pipeline *p, size_t endpoint,
                     struct prov_server *out, struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[endpoint];
    struct prov_doc *d = prov_doc_new(LIST_MAX);
    struct probe_manage_call c = {.endpoint = endpoint, .kind = EGR_MANAGE_VERSION, .ud = d};
    memset(out, 0, sizeof(*out));
    int rc = doc_call(g, p, &c, "GET /api/version", err);
    if (rc == 0 && (rc = prov_version_finish(d, c.result.status, out, err)) != 0)
        bh_err_prefix(err, "endpoint '%s' (%s): ", pipe_host_name(e), e->url);
    prov_doc_free(d);
    if (rc)
        return rc;
    d = prov_doc_new(LIST_MAX);
    c = (struct probe_manage_call){.endpoint = endpoint, .kind = EGR_MANAGE_STATUS, .ud = d};
    rc = doc_call(g, p, &c, "GET /api/status", err);
    if (rc == 0 && (rc = prov_status_finish(d, c.result.status, out, err)) != 0)
        bh_err_prefix(err, "endpoint '%s' (%s): ", pipe_host_name(e), e->url);
    prov_doc_free(d);
    return rc;
}

int probe_model_show(struct egr_gate *g, const struct pipeline *p, size_t endpoint,
                     const char *model, struct prov_show *out, struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[endpoint];
    struct prov_doc *d = prov_doc_new(LIST_MAX);
    struct probe_manage_call c = {
        .endpoint = endpoint, .kind = EGR_MANAGE_SHOW, .model = model, .ud = d};
    memset(out, 0, sizeof(*out));
    int rc = doc_call(g, p, &c, "POST /api/show", err);
    if (rc == 0 && (rc = prov_show_finish(d, c.result.status, out, err)) != 0)
        bh_err_prefix(err, "endpoint '%s' (%s), model '%s': ", pipe_host_name(e), e->url, model);
    prov_doc_free(d);
    return rc;
}

int probe_v1_models(struct egr_gate *g, const struct pipeline *p, size_t endpoint,
                    struct prov_models *out, struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[endpoint];
    struct prov_doc *d = prov_doc_new(LIST_MAX);
    struct probe_manage_call c = {.endpoint = endpoint, .kind = EGR_MANAGE_MODELS, .ud = d};
    memset(out, 0, sizeof(*out));
    int rc = doc_call(g, p, &c, "GET /v1/models", err);
    if (rc == 0 && (rc = prov_v1_models_finish(d, c.result.status, out, err)) != 0)
        bh_err_prefix(err, "endpoint '%s' (%s): ", pipe_host_name(e), e->url);
    prov_doc_free(d);
    return rc;
}

int probe_health(struct egr_gate *g, const struct pipeline *p, size_t endpoint, struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[endpoint];
    struct prov_doc *d = prov_doc_new(LIST_MAX);
    struct probe_manage_call c = {.endpoint = endpoint, .kind = EGR_MANAGE_HEALTH, .ud = d};
    int rc = doc_call(g, p, &c, "GET /health", err);
    if (rc == 0 && (rc = prov_health_finish(d, c.result.status, err)) != 0)
        bh_err_prefix(err, "endpoint '%s' (%s): ", pipe_host_name(e), e->url);
    prov_doc_free(d);
    return rc;
}

/* --- an online session --------------------------------------------------------- */

int probe_online_open(struct probe_online *o, const struct pipeline *p, const char *dir,
                      const char *kind, struct bh_err *err)
{
    int resumed = 0;
    char *key = bh_xasprintf("%s:%s", kind, p->hash);
    memset(o, 0, sizeof(*o));
    int rc = store_open(&o->store, dir, err);
    if (rc == 0)
        rc = store_lock_runner(o->store, err);
    if (rc == 0)
        rc = store_run_open(o->store, key, p->name, &o->run_id, &resumed, err);
    if (rc == 0)
        rc = store_run_set_labels(o->store, o->run_id, p->labels, p->n_labels, err);
    if (rc == 0)
        rc = egr_new(&o->gate, p, o->store, o->run_id, err);
    if (rc == 0) /* a login or key that is missing: say so, do not ask anonymously */
        rc = egr_keys_check(o->gate, err);
    free(key);
    return rc;
}

void probe_online_close(struct probe_online *o, const char *status)
{
    struct bh_err err = {0};
    if (status && o->store && o->run_id)
        store_run_finish(o->store, o->run_id, status, &err);
    egr_free(o->gate);
    store_free(o->store);
    memset(o, 0, sizeof(*o));
}

size_t probe_flow_check_gate(const struct pipeline *p, const struct egr_gate *g,
                             struct pol_stage_report *rep)
{
    int *local = bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*local));
    int *remote = bh_xcalloc(p->n_stages ? p->n_stages : 1, sizeof(*remote));
    for (size_t i = 0; i < p->n_endpoints; i++)
        local[i] = egr_endpoint_info(g, i)->local;
    for (size_t s = 0; s < p->n_stages; s++)
        remote[s] = egr_stage_remote(g, s) != NULL;
    size_t bad = pol_check_facts(p, local, remote, rep);
    for (size_t s = 0; s < p->n_stages; s++) {
        const char *host = egr_stage_remote(g, s);
        if (rep[s].ok || !host)
            continue;
        char why[sizeof(rep[s].reason)];
        snprintf(why, sizeof(why), "%s", rep[s].reason);
        bh_str_put(rep[s].reason, sizeof(rep[s].reason),
                   "uses model '%.60s', a cloud stub that the server forwards to '%.60s', and %s",
                   p->stages[s].model, host, why);
    }
    free(local);
    free(remote);
    return bad;
}
