/* cli/models_probe.c — model-management requests run to completion, and
 * the cloud-stub probe `run` makes before its static check.
 *
 * Ollama forwards a cloud stub off the machine under any name, so a model
 * name that looks local proves nothing; only /api/tags (remote_host,
 * remote_model) tells. A stub is a pulled manifest, so Ollama always lists
 * it there and no /api/show per model is needed. The probe asks once per
 * local Ollama endpoint, before the check, and hands what it learnt to the
 * gate, so that the check and every later verdict of the gate read the same
 * facts. A server that cannot be asked is not a reason to stop here: the
 * tasks that need it fail on their own with clearer messages. */
#include "cli/models_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "providers/manage.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

#define LIST_MAX ((size_t)16 << 20)

struct wait {
    struct cli_manage_call *c;
    int done;
};

static int call_data(void *ud, const char *data, size_t len)
{
    struct wait *w = ud;
    return w->c->on_data ? w->c->on_data(w->c->ud, data, len) : 0;
}

static void call_done(void *ud, const struct net_result *r)
{
    struct wait *w = ud;
    w->c->result = *r;
    w->done = 1;
}

int cli_manage_call(struct egr_gate *g, struct net *n, struct cli_manage_call *c,
                    struct bh_err *err)
{
    struct wait w = { .c = c };
    struct egr_manage_req r = { .endpoint = c->endpoint, .kind = c->kind, .model = c->model,
                                .max_reply = LIST_MAX, .on_data = call_data,
                                .on_done = call_done, .ud = &w };
    memset(&c->result, 0, sizeof(c->result));
    int rc = egr_send_manage(g, &r, err);
    while (rc == 0 && !w.done)
        rc = net_step(n, 1000, err);
    return rc;
}

static int doc_data(void *ud, const char *data, size_t len)
{
    struct bh_err err = { 0 };
    return prov_doc_feed(ud, data, len, &err) ? 1 : 0;
}

int cli_models_list(struct egr_gate *g, struct net *n, const struct pipeline *p, size_t endpoint,
                    int kind, struct prov_models *out, struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[endpoint];
    const char *path = kind == EGR_MANAGE_PS ? "/api/ps" : "/api/tags";
    struct prov_doc *d = prov_doc_new(LIST_MAX);
    struct cli_manage_call c = { .endpoint = endpoint, .kind = kind, .on_data = doc_data, .ud = d };
    memset(out, 0, sizeof(*out));
    int rc = cli_manage_call(g, n, &c, err);
    if (rc == 0 && c.result.code)
        rc = bh_err_set(err, BH_ENET, "endpoint '%s' (%s): GET %s failed: %s — is the server "
                        "running?", e->name, e->url, path,
                        c.result.error[0] ? c.result.error : "no reply");
    else if (rc == 0 && (rc = prov_models_finish(d, c.result.status, out, err)) != 0)
        bh_err_prefix(err, "endpoint '%s' (%s): GET %s: ", e->name, e->url, path);
    prov_doc_free(d);
    return rc;
}

/* 1 when a stage on endpoint has a model whose name is not cloud already:
 * only then is there something to learn (and a server that forwards every
 * model there is never asked anything). */
static int endpoint_needs_probe(const struct pipeline *p, size_t endpoint)
{
    for (size_t s = 0; s < p->n_stages; s++)
        if (p->stages[s].endpoint == endpoint && !pol_model_is_cloud(p->stages[s].model))
            return 1;
    return 0;
}

/* Marks the stages on endpoint whose model tags lists as a stub. */
static void mark_stubs(struct egr_gate *g, const struct pipeline *p, size_t endpoint,
                       const struct prov_models *tags)
{
    for (size_t s = 0; s < p->n_stages; s++) {
        const struct prov_model *m = prov_models_find(tags, p->stages[s].model);
        if (p->stages[s].endpoint != endpoint || !m || !prov_model_is_remote(m))
            continue;
        egr_stage_mark_remote(g, s, m->remote_host ? m->remote_host : m->remote_model);
    }
}

void cli_models_probe(struct egr_gate *g, struct net *n, const struct pipeline *p)
{
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct egr_endpoint *ep = egr_endpoint_info(g, i);
        if (!ep->local || strcmp(p->endpoints[i].provider, "ollama") != 0 ||
            !endpoint_needs_probe(p, i))
            continue;
        struct prov_models tags = { 0 };
        struct bh_err err = { 0 };
        if (cli_models_list(g, n, p, i, EGR_MANAGE_TAGS, &tags, &err) == 0)
            mark_stubs(g, p, i, &tags);
        else
            fprintf(stderr, "bulkhead: warning: could not check the models of %s; its tasks "
                            "may fail\n", err.msg);
        prov_models_release(&tags);
    }
}

size_t cli_flow_check_gate(const struct pipeline *p, const struct egr_gate *g,
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
