/* probe/models_probe.h — asking an endpoint about its models through the
 * egress gate (every request audited), each request waited for with the
 * gate's egr_step; shared by `bulkhead models`, `check --online` and by
 * `run`, which looks for cloud stubs before anything is sent.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef PROBE_MODELS_PROBE_H
#define PROBE_MODELS_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "egress/egress.h"

struct bh_err;
struct egr_gate;
struct pipeline;
struct pol_stage_report;
struct prov_models;

/* One model-management request (enum egr_manage_kind), run to completion. */
struct probe_manage_call {
    size_t endpoint;
    int kind;
    const char *model;   /* for kinds that name one, else NULL */
    egr_data_fn on_data; /* the reply's bytes; may be NULL */
    void *ud;
    struct egr_result result; /* filled when the call returns 0 */
};

/* Sends c through the gate and steps the gate until it completes. Returns an error
 * only when nothing could be sent (the gate refused, the audit failed);
 * a transport failure is in c->result. */
int probe_manage_call(struct egr_gate *g, struct probe_manage_call *c, struct bh_err *err);

/* GET /api/tags (kind EGR_MANAGE_TAGS) or /api/ps (EGR_MANAGE_PS) of an
 * endpoint, parsed into *out (release with prov_models_release). BH_ENET
 * naming the endpoint and its URL when it cannot be reached, BH_EREPLY when
 * its reply is not a model list. */
int probe_models_list(struct egr_gate *g, const struct pipeline *p, size_t endpoint, int kind,
                      struct prov_models *out, struct bh_err *err);

/* GET /api/version, then GET /api/status, of an Ollama endpoint into *out.
 * BH_ENET naming the endpoint and its URL when it cannot be reached;
 * BH_EREPLY (prefixed the same way) when a reply is not Ollama's. A 404 on
 * /api/status is an answer (out->status 0: an older server). */
struct prov_server;
int probe_server_ask(struct egr_gate *g, const struct pipeline *p, size_t endpoint,
                     struct prov_server *out, struct bh_err *err);

/* POST /api/show for model on an endpoint into *out (release with
 * prov_show_release). BH_ENET or BH_EREPLY (404: not there) naming the
 * endpoint, its URL and the model. */
struct prov_show;
int probe_model_show(struct egr_gate *g, const struct pipeline *p, size_t endpoint,
                     const char *model, struct prov_show *out, struct bh_err *err);

/* GET /v1/models of an endpoint (EGR_MANAGE_MODELS: the OpenAI and
 * Anthropic dialects, llama.cpp's server) into *out (release with
 * prov_models_release; context_length is llama-server's meta.n_ctx).
 * BH_ENET naming the endpoint and its URL when it cannot be reached,
 * BH_EREPLY (prefixed the same way) when the reply is not such a list. */
int probe_v1_models(struct egr_gate *g, const struct pipeline *p, size_t endpoint,
                    struct prov_models *out, struct bh_err *err);

/* GET /health of an endpoint (EGR_MANAGE_HEALTH, llama.cpp's server): 0
 * when it answered 2xx; BH_ENET or BH_EREPLY as probe_v1_models. */
int probe_health(struct egr_gate *g, const struct pipeline *p, size_t endpoint, struct bh_err *err);

/* What a command that asks servers outside a run needs: the state database
 * (every request is audited, in a run of its own keyed "<kind>:<pipeline
 * hash>", found again on the next call, with the pipeline's labels so that
 * `audit verify` can check it) and the gate (with its network loop). */
struct store;
struct probe_online {
    struct store *store;
    int64_t run_id;
    struct egr_gate *gate;
};
/* Opens (creating) the state in dir, takes the runner lock, opens the run,
 * creates the gate (which verifies every endpoint) and checks
 * the credentials (egr_keys_check). On error what was opened stays in *o:
 * call probe_online_close in every case. p must outlive o. */
int probe_online_open(struct probe_online *o, const struct pipeline *p, const char *dir,
                      const char *kind, struct bh_err *err);
/* Finishes the run with status ("ok", "failed", "refused"; NULL: leave it)
 * and frees everything. A zeroed o is fine. */
void probe_online_close(struct probe_online *o, const char *status);

/* The static check over what the gate knows: the verified endpoints and the
 * stages marked remote. Fills rep[n_stages]; a refused stage whose model is
 * a stub has a reason naming the model and its remote host. Returns the
 * number of refused stages. */
size_t probe_flow_check_gate(const struct pipeline *p, const struct egr_gate *g,
                             struct pol_stage_report *rep);

#endif
