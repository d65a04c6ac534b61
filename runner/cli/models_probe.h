/* cli/models_probe.h — asking an Ollama endpoint about its models through
 * the egress gate (every request audited), shared by `bulkhead models` and
 * by `run`, which looks for cloud stubs before anything is sent.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef CLI_MODELS_PROBE_H
#define CLI_MODELS_PROBE_H

#include <stddef.h>

#include "net/net.h"

struct bh_err;
struct egr_gate;
struct pipeline;
struct pol_stage_report;
struct prov_models;

/* One model-management request (enum egr_manage_kind), run to completion. */
struct cli_manage_call {
    size_t endpoint;
    int kind;
    const char *model;     /* for kinds that name one, else NULL */
    net_data_fn on_data;   /* the reply's bytes; may be NULL */
    void *ud;
    struct net_result result; /* filled when the call returns 0 */
};

/* Sends c through the gate and steps n until it completes. Returns an error
 * only when nothing could be sent (the gate refused, the audit failed);
 * a transport failure is in c->result. */
int cli_manage_call(struct egr_gate *g, struct net *n, struct cli_manage_call *c,
                    struct bh_err *err);

/* GET /api/tags (kind EGR_MANAGE_TAGS) or /api/ps (EGR_MANAGE_PS) of an
 * endpoint, parsed into *out (release with prov_models_release). BH_ENET
 * naming the endpoint and its URL when it cannot be reached, BH_EREPLY when
 * its reply is not a model list. */
int cli_models_list(struct egr_gate *g, struct net *n, const struct pipeline *p, size_t endpoint,
                    int kind, struct prov_models *out, struct bh_err *err);

/* Before a run: for every endpoint that verified local, speaks ollama and
 * a stage whose model name is not cloud already, fetches /api/tags once and
 * marks in the gate every stage whose model it lists as a cloud stub
 * (egr_stage_mark_remote). An endpoint that
 * cannot be asked gets a warning on stderr and no marks (its tasks then fail
 * on their own). Never fails the run. */
void cli_models_probe(struct egr_gate *g, struct net *n, const struct pipeline *p);

/* The static check over what the gate knows: the verified endpoints and the
 * stages marked remote. Fills rep[n_stages]; a refused stage whose model is
 * a stub has a reason naming the model and its remote host. Returns the
 * number of refused stages. */
size_t cli_flow_check_gate(const struct pipeline *p, const struct egr_gate *g,
                           struct pol_stage_report *rep);

#endif
