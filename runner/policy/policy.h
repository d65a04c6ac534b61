/* policy/policy.h — labels, locality of stages, clearances, and the static
 * flow check that `check` and `run` perform before anything is sent.
 * Pure functions over the loaded pipeline: no I/O. The facts of the network
 * (whether an endpoint really is local) come in as arguments, found by egress/. */
#ifndef POL_POLICY_H
#define POL_POLICY_H

#include <stddef.h>

struct bh_err;
struct pipeline;

/* 1 when Ollama would forward this model off the machine: the text after the
 * last ':' is "cloud" (any case) or the name ends in "-cloud". */
int pol_model_is_cloud(const char *model);

/* The join (the higher) of two labels. -1 means unknown and joins to top. */
int pol_label_join(const struct pipeline *p, int a, int b);

/* A clearance below every label: the stage may receive nothing at all (an
 * endpoint declared local whose address did not verify — a misconfiguration
 * or an attack, and no data, not even public, should go there). */
#define POL_NOTHING (-2)

/* Label name for an index ("nothing" for POL_NOTHING, "?" when out of range). */
const char *pol_label_name(const struct pipeline *p, int label);

/* A stage's effective locality: 1 only when its endpoint is verified local
 * (endpoint_local) and its model is not a cloud model. */
int pol_stage_local(const struct pipeline *p, size_t stage, int endpoint_local);

/* The same with a fact found online: model_remote non-zero when the server
 * listed the stage's model as a cloud stub (remote_host/remote_model in
 * /api/tags or /api/show), which forwards under any name. Such a model is
 * treated exactly like a cloud-named one. pol_stage_local is this with 0. */
int pol_stage_local_facts(const struct pipeline *p, size_t stage, int endpoint_local,
                          int model_remote);

/* The highest label endpoint (an index) may receive on its own, whatever
 * stage uses it: what the audit records as the clearance of a request that
 * belongs to no stage (model management). */
int pol_endpoint_clearance(const struct pipeline *p, size_t endpoint, int endpoint_local);

/* The highest label the stage may receive. An endpoint declared local that
 * did not verify gets POL_NOTHING whatever it declares; a cloud model on
 * a local endpoint gets only what the stage itself declares (default bottom);
 * otherwise the stage's declared clearance, else the endpoint's, else top for
 * local and bottom for cloud, never above the endpoint's. */
int pol_stage_clearance(const struct pipeline *p, size_t stage, int endpoint_local);
/* The same with the model_remote fact (see pol_stage_local_facts). */
int pol_stage_clearance_facts(const struct pipeline *p, size_t stage, int endpoint_local,
                              int model_remote);

/* Per stage result of the static check. */
struct pol_stage_report {
    int local;             /* effective locality */
    int clearance;         /* effective clearance */
    int input;             /* upper bound of what the stage reads (its prompt's label) */
    int ok;                /* input <= clearance */
    char reason[256];      /* when !ok: what carries the label ("reads pr.diff (confidential)") */
};

/* Computes, in topological order, the upper bound of every stage's input: the
 * join of the declared labels of the source fields its template reads and of
 * the outputs of the stages it reads (an output carries its prompt's label;
 * `after` alone orders stages and carries no data). endpoint_local[i] says whether endpoint i verified local.
 * Fills out[n_stages]. Returns the number of stages that are not ok. */
size_t pol_check(const struct pipeline *p, const int *endpoint_local,
                 struct pol_stage_report *out);
/* pol_check with facts found online: stage_remote[n_stages] (or NULL, which
 * is pol_check) says which stages' models the server listed as cloud stubs. */
size_t pol_check_facts(const struct pipeline *p, const int *endpoint_local,
                       const int *stage_remote, struct pol_stage_report *out);

#endif
