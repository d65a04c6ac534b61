/* probe/probe.h — asking a local server whether a model is what its name
 * says: one fixed public chat request (EGR_MANAGE_PROBE, built by the gate
 * from the model name, audited with the bottom label), whose reply names
 * the remote host when the model is a cloud stub. Part of "asking servers
 * about themselves"; probe/survey.c decides when.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef PROBE_PROBE_H
#define PROBE_PROBE_H

#include <stddef.h>

struct bh_err;
struct egr_gate;

/* One model to probe on an endpoint. */
struct probe_req {
    size_t endpoint;        /* index into the pipeline's endpoints */
    const char *model;      /* the name as the stage sends it */
    const char *keep_alive; /* the stage's keep_alive, or NULL ("10m") */
    long num_ctx;           /* the num_ctx the stage's requests will ask for; 0: none */
};

/* Sends the probe through the gate, steps the gate until it completes and reads
 * the reply: *remote is set to the host (or remote model) the reply says
 * the server forwarded to (owned, free it), or NULL when the model answered
 * from the machine. BH_ENET naming the endpoint, URL and model when the
 * server could not be reached, BH_EREPLY for an error status or a reply
 * that is not Ollama's chat object; BH_EPOLICY when the gate refused (no
 * audit store, or an endpoint whose local claim did not verify); BH_EINVAL
 * for a model or keep_alive the gate will not put in a body. *remote is
 * NULL on every error. */
int probe_model_remote(struct egr_gate *g, const struct probe_req *r, char **remote,
                       struct bh_err *err);

/* The probe's whole reply read as probe_model_remote reads it (the gate's
 * egr_prober.read for a run, which leaves the probe to the gate): *remote
 * owned or NULL; BH_EREPLY for an error status or a reply that is not
 * Ollama's chat object. ud is unused. */
int probe_reply_read(void *ud, long status, const char *body, size_t len, char **remote,
                     struct bh_err *err);

#endif
