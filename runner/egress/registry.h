/* egress/registry.h — the gate's registry of endpoint facts, private to
 * runner/egress/: what egr_new verifies and pins per endpoint (locality,
 * pinned addresses) and what is learnt of the servers later (cloud stubs,
 * the models loaded, whether ":local" names are honoured, each stage's model
 * facts). egress.c decides and audits with these facts; the functions that
 * read and record them for everyone else are egress.h's (egr_endpoint_info,
 * egr_stage_mark_remote, egr_stage_local, ...), defined in registry.c.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef EGR_REGISTRY_H
#define EGR_REGISTRY_H

#include <stddef.h>

#include "egress/egress.h"

struct bh_err;
struct pipeline;

/* The probe's /api/ps of an endpoint. */
struct egr_loaded_list {
    int known;
    struct egr_loaded *v;
    size_t n;
};

struct egr_registry {
    const struct pipeline *p;       /* borrowed */
    struct egr_endpoint *eps;       /* per endpoint: verified and pinned once, by egr_new */
    char **remote;                  /* per stage: the remote host of a cloud stub, or NULL */
    struct egr_model_facts *facts;  /* per stage: what the probe learnt of its model */
    char **wire;                    /* per stage: the model name egr_stage_model last gave */
    int *local_suffix;              /* per endpoint: the server honours ":local" */
    struct egr_loaded_list *loaded; /* per endpoint */
    struct egr_first_contact *fc;   /* the probes a first request waits for, or NULL */
};

/* Verifies every endpoint of p once (egr_endpoint_verify_pipe); the error
 * names the endpoint. p is borrowed. Release r in every case. */
int egr_registry_init(struct egr_registry *r, const struct pipeline *p, struct bh_err *err);
/* Frees what r holds; a zeroed r is fine. */
void egr_registry_release(struct egr_registry *r);

/* The registry of a gate: registry.c reaches the facts here, and only
 * egress.c knows the rest of the gate (its network loop, its flights). */
struct egr_registry *egr_gate_registry(struct egr_gate *g);
const struct egr_registry *egr_gate_registry_const(const struct egr_gate *g);

/* Names as Ollama compares them: case-insensitively, "x" being "x:latest".
 * (providers/ has the same rule, prov_model_name_eq; the gate sits below it.) */
int egr_model_name_eq(const char *a, const char *b);

/* first_contact.c, for egress.c: 1 when r (a stage request to endpoint) is
 * held for its model's probe (sent now when it was not yet), 0 when it goes
 * on through the gate at once; BH_E* when the probe could not be sent (the
 * request is not held then). */
int egr_first_contact_hold(struct egr_gate *g, const struct egr_send_req *r, size_t endpoint,
                           struct bh_err *err);
/* Requests held now. */
size_t egr_first_contact_held(const struct egr_gate *g);
/* Ends every held request: on_done with BH_ENET, not transient, and why. */
void egr_first_contact_fail(struct egr_gate *g, const char *why);
/* Frees the probes' state; held requests are freed without their on_done. */
void egr_first_contact_free(struct egr_first_contact *fc);

#endif
