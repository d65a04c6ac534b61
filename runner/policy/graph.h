/* policy/graph.h — the flow graph of a pipeline as data, and its renderers
 * (text, JSON, Graphviz, a plain-language statement for a privacy review).
 *
 * Nodes are the stages, the fields the templates read (source fields and
 * for_each elements: each.path, each.diff, ...) and the tools granted to agent
 * stages ("tool:read_file"). Edges are field → stage (a template reads the
 * field), tool → stage (the stage may call the tool), stage → stage (Y reads
 * X.output, or `each` of a for_each over it), stage → stage ordering edges
 * (`after` alone, no data) and origin → target reroute edges (on_sensitive
 * reroute:T). Every data edge carries both static upper bounds of its label
 * (declared, and with detectors) and where each comes from. The per-stage
 * verdicts and notes are pol_check's (the gate's rules), plus one
 * configuration check pol_check does not make: a stage may not declare a
 * clearance above its endpoint's (pol_stage_clearance caps it silently; the
 * graph refuses the stage so the author learns of it).
 * Pure computation over the loaded pipeline and the facts egress verified. */
#ifndef POL_GRAPH_H
#define POL_GRAPH_H

#include <stddef.h>
#include <stdio.h>

struct pipeline;

/* The kind of address an endpoint's connections are pinned to. */
enum pol_addr_kind {
    POL_ADDR_LOOPBACK,
    POL_ADDR_PRIVATE, /* a private address in no trusted network: not local */
    POL_ADDR_PUBLIC,
    POL_ADDR_UNRESOLVED, /* the host did not resolve */
    POL_ADDR_TRUSTED,    /* not loopback, but listed in trusted_hosts */
    POL_ADDR_NETWORK,    /* not loopback, but in trusted_networks or
                            BULKHEAD_TRUSTED_NETWORKS */
};

/* What egress verified of one endpoint, as policy needs it. The strings are
 * borrowed for the duration of pol_graph_init (the graph copies them). */
struct pol_endpoint_fact {
    int local; /* verified local (egr_endpoint.local) */
    enum pol_addr_kind addr_kind;
    int declared_cloud; /* the file says "locality": "cloud" (0: local or not said) */
    const char *host;   /* NULL is fine */
    int port;
    const char *addr;     /* the pinned address, "" or NULL when none */
    const char *evidence; /* egress's words, e.g. "declared local; 127.0.0.1 is loopback" */
};

/* Why a stage (or an endpoint) is local or cloud. pol_locality_words gives
 * the exact phrases that check prints and the JSON schema documents. */
enum pol_locality_why {
    POL_WHY_LOOPBACK,           /* "declared local, loopback address" */
    POL_WHY_NETWORK,            /* "declared local, in a trusted network" */
    POL_WHY_DECLARED_CLOUD,     /* "declared cloud" */
    POL_WHY_NOT_DECLARED,       /* "not declared" */
    POL_WHY_MODEL_COLON_CLOUD,  /* "model name ends in :cloud" */
    POL_WHY_MODEL_DASH_CLOUD,   /* "model name ends in -cloud" */
    POL_WHY_PUBLIC_REFUSED,     /* "declared local but public address (refused)" */
    POL_WHY_UNRESOLVED_REFUSED, /* "declared local but host did not resolve (refused)" */
    POL_WHY_TRUSTED,            /* "declared local, listed in trusted_hosts" */
    POL_WHY_PRIVATE_REFUSED,    /* "declared local but private address in no trusted network
                                   (refused)" */
};
const char *pol_locality_words(enum pol_locality_why why);

/* Where an effective clearance comes from. */
enum pol_clearance_from {
    POL_CLR_STAGE,            /* "stage" */
    POL_CLR_ENDPOINT,         /* "endpoint" */
    POL_CLR_DEFAULT_LOCAL,    /* "default for local" (the top label) */
    POL_CLR_DEFAULT_CLOUD,    /* "default for cloud" (the bottom label) */
    POL_CLR_LOCALITY_REFUSED, /* "locality refused" (bottom, whatever is declared) */
    POL_CLR_CLOUD_MODEL,      /* "cloud model on a local endpoint" (bottom, whatever the
                                 stage declares) */
};
const char *pol_clearance_from_words(enum pol_clearance_from from);

/* Where the bound of an edge (or of a field or tool node) comes from. */
enum pol_bound_from {
    POL_BOUND_FIELD,          /* "field": the field's declared label */
    POL_BOUND_SOURCE_DEFAULT, /* "source default": the source's label */
    POL_BOUND_STAGE_OUTPUT,   /* "stage output": the upstream stage's output bound */
    POL_BOUND_UNKNOWN,        /* "unknown": names nothing, counts as the top label */
    POL_BOUND_NONE,           /* "none": an ordering edge carries no data */
    POL_BOUND_RULES,          /* "path rules": a content field raised by the rules */
    POL_BOUND_DETECTORS,      /* "detectors": raised by what a detector could find */
    POL_BOUND_DECLASSIFIED,   /* "declassified": an output lowered by its stage's declassify */
    POL_BOUND_TOOL,           /* "tool": what a granted tool returns */
    POL_BOUND_REROUTE,        /* "reroute": what the origin may turn away to its target */
};
const char *pol_bound_from_words(enum pol_bound_from from);

struct pol_graph_endpoint {
    const char *name, *url;       /* borrowed from the pipeline */
    const char *host_name;        /* the host's name (pipe_host_name: "gpus#2" in a pool) */
    char *host, *addr, *evidence; /* owned copies of the facts ("" when absent) */
    int port;
    int declared_local;
    int local; /* verified */
    enum pol_locality_why why;
    int clearance; /* as configured: declared, else by declared locality */
    enum pol_clearance_from clearance_from;
};

enum pol_node_kind { POL_NODE_STAGE, POL_NODE_FIELD, POL_NODE_TOOL };

struct pol_graph_node {
    enum pol_node_kind kind;
    const char *name;               /* the stage's name, the placeholder's text (borrowed), or
                                       "tool:NAME" (owned by the graph) */
    size_t stage;                   /* POL_NODE_STAGE: index into pipeline.stages */
    int label;                      /* FIELD, TOOL: its declared bound; STAGE: its declared
                                       input bound */
    int label_detect;               /* the same with detectors */
    enum pol_bound_from bound_from; /* FIELD: FIELD, SOURCE_DEFAULT, RULES or UNKNOWN; TOOL: TOOL */
};

enum pol_edge_kind {
    POL_EDGE_DATA,    /* "data": the target reads the source */
    POL_EDGE_AFTER,   /* "after": ordering only, no data */
    POL_EDGE_REROUTE, /* "reroute": the target runs instead of the source for items
                         above the source's clearance */
};

struct pol_graph_edge {
    size_t from, to; /* node indices; `to` is always a stage node */
    enum pol_edge_kind kind;
    int data;        /* kind == POL_EDGE_DATA */
    const char *via; /* DATA: the placeholder read ("plan.output", "each") or the
                        tool's name; NULL otherwise. Borrowed */
    int bound;       /* declared bound (-1 for AFTER); REROUTE: the origin's input */
    enum pol_bound_from bound_from;
    int bound_detect; /* detector bound (-1 for AFTER) */
    enum pol_bound_from detect_from;
    int ok;        /* DATA: bound <= the target's clearance; REROUTE: the target
                      takes everything the origin may turn away (bound_detect
                      <= its clearance, and local when the origin is); AFTER: 1 */
    int ok_detect; /* DATA: bound_detect <= the target's clearance; else as ok */
};

struct pol_graph_stage {
    int local;
    enum pol_locality_why why;
    int clearance; /* effective, as the gate applies it */
    enum pol_clearance_from clearance_from;
    int input;                 /* declared upper bound of what the stage reads */
    int input_detect;          /* the same with detectors */
    int output, output_detect; /* what its output carries for dependants (both tiers) */
    int guarded;               /* on_sensitive skip or reroute */
    int declassified;          /* declassify lowered its declared output bound */
    int flow_ok;               /* pol_check's verdict */
    int over_endpoint;         /* declared clearance above the endpoint's: refused */
    int ok;                    /* flow_ok && !over_endpoint */
    char reason[256];          /* when !flow_ok: what carries the label, what to do */
    char note[256];            /* when flow_ok: what can happen at run time, or "" */
    char conflict[256];        /* when over_endpoint: the configuration mistake */
};

struct pol_graph {
    const struct pipeline *p;             /* borrowed: must outlive the graph */
    struct pol_graph_endpoint *endpoints; /* [p->n_endpoints] */
    struct pol_graph_node *nodes;         /* stages first (node i is stage i), then fields */
    size_t n_nodes;
    struct pol_graph_edge *edges; /* per stage in run order: data edges in
                                     template order, then ordering edges */
    size_t n_edges;
    struct pol_graph_stage *stages; /* [p->n_stages], by stage index */
    size_t n_refused;
    const char **detectors; /* the enabled detectors' ids (pol_detectors_enabled) */
    int *detector_labels;   /* the label each raises to */
    size_t n_detectors;
    int detect_top; /* pol_detectors_top (0 when none) */
};

/* Builds the graph of p given facts[p->n_endpoints]. Cannot fail (out of
 * memory aborts). Release with pol_graph_release. */
void pol_graph_init(struct pol_graph *g, const struct pipeline *p,
                    const struct pol_endpoint_fact *facts);
void pol_graph_release(struct pol_graph *g);

/* 1 when the stage declares a clearance above what its endpoint is
 * configured for (the endpoint's declared clearance, else the top label when
 * declared local and the bottom when not). Static, independent of the network. */
int pol_stage_over_endpoint(const struct pipeline *p, size_t stage);

enum pol_format { POL_FORMAT_TEXT, POL_FORMAT_JSON, POL_FORMAT_DOT, POL_FORMAT_MD };

/* The format called name ("text", "json", "dot", "md"), or -1. */
int pol_format_find(const char *name);
/* The valid names, for messages: "text, json, dot, md". */
const char *pol_format_names(void);

/* Writes the graph to f in the format (schemas in pipelines/README.md). */
void pol_graph_render(FILE *f, const struct pol_graph *g, enum pol_format fmt);

/* The graph as the JSON document `check --format json` writes (owned: the
 * caller decrefs it), for a caller that adds a member before writing it
 * with pol_graph_write_json, in the same layout (an entry per line for the
 * nodes and edges, every other member on one line). */
struct json_t;
struct json_t *pol_graph_json(const struct pol_graph *g);
void pol_graph_write_json(FILE *f, struct json_t *doc);

#endif
