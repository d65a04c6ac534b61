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
 * did not verify gets POL_NOTHING whatever it declares; a cloud model (name
 * or stub) on a local endpoint gets the bottom label whatever the stage
 * declares (a stage's clearance only lowers what the endpoint's verified
 * locality allows, and nobody declared that destination); otherwise the stage's declared clearance,
 * else the endpoint's, else top for local and bottom for cloud, never above the endpoint's. */
int pol_stage_clearance(const struct pipeline *p, size_t stage, int endpoint_local);
/* The same with the model_remote fact (see pol_stage_local_facts). */
int pol_stage_clearance_facts(const struct pipeline *p, size_t stage, int endpoint_local,
                              int model_remote);

/* Per stage result of the static check (the rules are in pipelines/README.md,
 * "The static bounds check proves"; every label here is an index, never -1). */
struct pol_stage_report {
    int local;         /* effective locality */
    int clearance;     /* effective clearance (POL_NOTHING possible) */
    int input;         /* declared input bound: what the file's labels and rules allow */
    int input_detect;  /* detector input bound: input raised by what detectors could find */
    int output;        /* declared output bound (what S.output carries for dependants) */
    int output_detect; /* detector output bound */
    int guarded;       /* on_sensitive is skip or reroute: an input above the clearance
                          is turned away per item, not refused for the whole pipeline */
    int declassified;  /* declassify lowered the declared output bound */
    int ok;            /* not refused (see the README for every reason but the clearance
                          above the endpoint's: pol_stage_over_endpoint) */
    unsigned refused;  /* why not: POL_REFUSED_* bits, 0 when ok (reason says the first) */
    char reason[256];  /* when !ok: what carries the label ("reads pr.diff (confidential),
                          above its clearance internal — ...") or what is wrong */
    char note[256];    /* when ok: what can happen at run time ("a detector hit in
                          pr.title may raise it to restricted: on_sensitive fail refuses
                          that item"), else "" */
};

/* The reasons pol_check refuses a stage, in the order `reason` reports the
 * first. (A clearance declared above the endpoint's is a mistake in the file,
 * not a flow: pol_stage_over_endpoint in graph.h; check and run refuse it too.) */
#define POL_REFUSED_TOOL 1u    /* a granted tool returns data above the clearance */
#define POL_REFUSED_INPUT 2u   /* declared input above the clearance, on_sensitive fail */
#define POL_REFUSED_REROUTE 4u /* reroute:T does not go toward more privacy */

/* The label a built-in detector raises to in this pipeline: the label of its
 * default name (d->label) when the pipeline has one, else the top label. */
struct det_detector;
int pol_detector_label(const struct pipeline *p, const struct det_detector *d);

/* The highest label the pipeline's enabled detectors (built-in and custom)
 * can raise a value to, or 0 (the bottom) when detectors are off. */
int pol_detectors_top(const struct pipeline *p);

/* The declared bound of a placeholder or for_each list (the README's table),
 * given the output bounds computed so far (outputs[n_stages], declared tier,
 * or NULL to read every stage output as top). Never -1. */
int pol_field_bound(const struct pipeline *p, size_t stage, const char *field, const int *outputs);

/* The detector bound of a placeholder: its declared bound joined with
 * pol_detectors_top for what is read from the source (fields, each.*),
 * the stage's detector output bound for S.output and `each` of for_each
 * S.output (outputs_detect[n_stages], or NULL to read them as top). Never -1. */
int pol_field_bound_detect(const struct pipeline *p, size_t stage, const char *field,
                           const int *outputs_detect);

/* The source field a read of stage `stage` is part of: the field itself for
 * a source field, "pr.diff" for each.diff, the for_each list ("pr.files")
 * for each.path and each.status; NULL for anything else. Borrowed. */
const char *pol_read_source(const struct pipeline *p, size_t stage, const char *field);

/* 1 when stage is batch scope and reads a value per item (a source field,
 * an item-scope stage's output): its prompt heads each value with the item's
 * key, so it reads the keys too (bounded like pipe_source_key_field). */
int pol_stage_names_items(const struct pipeline *p, size_t stage);

/* The stage whose output a read of stage `stage` carries: S for "S.output",
 * and for `each` of a for_each over S.output; -1 for anything else. */
long pol_read_upstream(const struct pipeline *p, size_t stage, const char *field);

/* The declared bound of what a granted tool returns: read_file, grep and diff
 * as pr.diff (with every path rule joined in: read_file may open, and grep
 * searches, any file), list_files as pr.files, git_log as pr.title joined with
 * pr.files; a tool it does not know, the top label. Never -1. */
int pol_tool_bound(const struct pipeline *p, const char *tool);

/* The detector bound of what a granted tool returns: its declared bound
 * raised by the enabled detectors; for read_file and grep, which are labelled
 * by whole files of the tree (policy of stages/tools.h), the top label, since
 * a binary file among them cannot be scanned (unknown means top). Never -1. */
int pol_tool_bound_detect(const struct pipeline *p, const char *tool);

/* The source fields a tool's result is bounded by, in words ("pr.diff",
 * "pr.title and pr.files"), or "unknown" for a tool it does not know. */
const char *pol_tool_source(const char *tool);

/* Every distinct field stage reads: s->reads, then any placeholder of its
 * system and user templates that reads does not list (a pipeline built by
 * hand may fill only the templates: reading both can only raise a bound).
 * Returns a new array of *n strings borrowed from the stage (free() the
 * array), NULL when there are none. */
const char **pol_stage_reads(const struct pipeline *p, size_t stage, size_t *n);

/* The detectors p enables: every built-in when `detectors` was not given,
 * else the ids and groups it names (a name that does not resolve is kept as
 * written, with the top label: unknown means top), then the custom ones.
 * Fills ids[0..cap) (borrowed from the detector table or the pipeline) and
 * labels[0..cap) (either may be NULL when cap is 0) without duplicates, and
 * returns how many there are (more than cap: only the first cap are filled). */
size_t pol_detectors_enabled(const struct pipeline *p, const char **ids, int *labels, size_t cap);

/* Computes, in topological order, the bounds of every stage (input: the join
 * over everything its templates read and its tools return; output: see the
 * README) and its verdict (a stage's reroute target is computed first, wherever
 * it comes in the order; a cycle the loader let through reads as top).
 * endpoint_local[i] says whether endpoint i verified local. Fills
 * out[n_stages]. Returns the number of stages that are not ok. */
size_t pol_check(const struct pipeline *p, const int *endpoint_local, struct pol_stage_report *out);
/* A pool is as local as its least local host: the first host of ep's pool
 * that local[] (per endpoint) says is not local, or ep when every one is (or
 * ep is no pool). A stage on a pool with one public host is refused whole. */
size_t pol_pool_worst(const struct pipeline *p, size_t ep, const int *local);
/* pol_check with facts found online: stage_remote[n_stages] (or NULL, which
 * is pol_check) says which stages' models the server listed as cloud stubs. */
size_t pol_check_facts(const struct pipeline *p, const int *endpoint_local, const int *stage_remote,
                       struct pol_stage_report *out);

#endif
