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

/* Per stage result of the static check (the rules are in pipelines/README.md,
 * "The static bounds check proves"; every label here is an index, never -1). */
struct pol_stage_report {
    int local;             /* effective locality */
    int clearance;         /* effective clearance (POL_NOTHING possible) */
    int input;             /* declared input bound: what the file's labels and rules allow */
    int input_detect;      /* detector input bound: input raised by what detectors could find */
    int output;            /* declared output bound (what S.output carries for dependants) */
    int output_detect;     /* detector output bound */
    int guarded;           /* on_sensitive is skip or reroute: an input above the clearance
                              is turned away per item, not refused for the whole pipeline */
    int ok;                /* not refused (see the README for every reason) */
    char reason[256];      /* when !ok: what carries the label ("reads pr.diff (confidential),
                              above its clearance internal — ...") or what is wrong */
    char note[256];        /* when ok: what can happen at run time ("a detector hit in
                              pr.title may raise it to restricted: on_sensitive fail refuses
                              that item"), else "" */
};

/* The label a built-in detector raises to in this pipeline: the label of its
 * default name (d->label) when the pipeline has one, else the top label. */
struct pol_detector;
int pol_detector_label(const struct pipeline *p, const struct pol_detector *d);

/* The highest label the pipeline's enabled detectors (built-in and custom)
 * can raise a value to, or 0 (the bottom) when detectors are off. */
int pol_detectors_top(const struct pipeline *p);

/* The declared bound of a placeholder or for_each list (the README's table),
 * given the output bounds computed so far (outputs[n_stages], declared tier,
 * or NULL to read every stage output as top). Never -1. */
int pol_field_bound(const struct pipeline *p, size_t stage, const char *field,
                    const int *outputs);

/* Computes, in topological order, the bounds of every stage (input: the join
 * over everything its templates read and its tools return; output: see the
 * README) and its verdict. endpoint_local[i] says whether endpoint i
 * verified local. Fills out[n_stages]. Returns the number of stages that are
 * not ok. */
size_t pol_check(const struct pipeline *p, const int *endpoint_local,
                 struct pol_stage_report *out);
/* pol_check with facts found online: stage_remote[n_stages] (or NULL, which
 * is pol_check) says which stages' models the server listed as cloud stubs. */
size_t pol_check_facts(const struct pipeline *p, const int *endpoint_local,
                       const int *stage_remote, struct pol_stage_report *out);

#endif
