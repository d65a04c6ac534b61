/* pipeline/pipeline.h — load and validate a pipeline file into plain C data.
 * jansson stays inside this module. Everything the rest of bulkhead knows of
 * the pipeline language is in these structs; the reference for users is
 * pipelines/README.md.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef PIPE_PIPELINE_H
#define PIPE_PIPELINE_H

#include <stddef.h>

struct bh_err;

/* A prompt template: literal text and {{field}} placeholders. */
struct pipe_tpl_part {
    int is_field;  /* 0: literal text; 1: a placeholder */
    char *text;    /* the literal, or the field name ("pr.diff", "plan.output") */
    int line, col; /* of the placeholder in the template file (1-based) */
};

struct pipe_tpl {
    char *file; /* path of the template file as opened */
    struct pipe_tpl_part *parts;
    size_t n_parts;
};

/* A request header of an endpoint. The value is expanded from the
 * environment (${VAR}) and is treated as a secret: never printed, logged or
 * audited; only the names are shown. */
struct pipe_header {
    char *name;  /* "CF-Access-Client-Id" */
    char *value; /* after expansion */
};

/* "enforce_local": whether bulkhead asks an Ollama server itself to refuse
 * forwarding a local stage's model off the machine (the ":local" name suffix
 * of servers that honour it), and whether a run needs the server's help. */
enum pipe_enforce_local {
    PIPE_ENFORCE_AUTO,    /* "auto" (default): use what the server offers */
    PIPE_ENFORCE_REQUIRE, /* "require": a run refuses to start when the server enforces
                             neither way (no :local, cloud not disabled) */
    PIPE_ENFORCE_OFF,     /* "off": never add the suffix */
};

/* A pool ("urls": several hosts of one local endpoint) is loaded as one
 * pipe_endpoint per host, consecutive in pipeline.endpoints, each a copy of
 * the pool's settings but its url: every host is verified, pinned, given
 * slots and a loaded-model limit of its own. Stages name the pool's first
 * host (pipe_stage.endpoint); the engine places each task on a host of that
 * pool, never anywhere else. An endpoint with one "url" is a pool of one. */
struct pipe_endpoint {
    char *name;                /* the endpoint's name (every host of a pool has the pool's) */
    char *host_name;           /* what names this host in messages, the audit and reports:
                                  the name for a "url" endpoint, "NAME#K" (K from 1) for the
                                  K-th url of a pool (never the url: it may hold credentials) */
    size_t pool, n_pool, host; /* the pool's first host (an index into pipeline.endpoints), its
                                  hosts, and this one's position in it from 0; a "url"
                                  endpoint is its own pool of 1 */
    int is_pool;               /* declared with "urls" (or --endpoint NAME=URL,URL) */
    char *provider;            /* "ollama" */
    char *url;                 /* after ${VAR}/${VAR:-default} expansion and --endpoint overrides */
    int declared_local;        /* "locality": "local" (a missing locality means cloud) */
    int clearance;             /* label index, or -1 when not declared (policy decides) */
    int max_concurrency;       /* parallel requests to this endpoint; default 1 */
    long timeout_s;            /* whole-request timeout; default 600 */
    long connect_timeout_s;    /* to open the connection; default 10 */
    long first_byte_timeout_s; /* from sending to the first byte of the reply; default 300
                                  (a local model's cold load comes first) */
    long idle_timeout_s;       /* between two chunks of a streamed reply; default 60 */
    int max_attempts;          /* tries of one request when it fails transiently
                                  (connection, 429, 5xx, cut stream); default 3 */
    int max_loaded_models;     /* models the server holds at once (local ollama: what the
                                  scheduler preloads and unloads for); 0 when not declared:
                                  learnt from /api/ps at run start */
    int max_requests_per_minute; /* requests started per minute at most; 0: no limit */
    char *api_key_env;           /* name of the environment variable holding the key, or NULL */
    char *basic_auth_env;        /* "basic_auth_env": name of the environment variable holding
                                    "user:password" for a basic-auth reverse proxy, sent as
                                    Authorization: Basic with every request; NULL when absent
                                    (never together with api_key_env) */
    char *ca_file;               /* "ca_file": the PEM file of CA certificates the endpoint's
                                    TLS certificate is verified with instead of the system
                                    store, resolved against the folder of the file declaring
                                    the endpoint; NULL when absent (https urls only). The path
                                    is hashed with the file that names it, the contents are not */
    struct pipe_header *headers; /* "headers": sent with every request to this endpoint */
    size_t n_headers;
    char **trusted_hosts; /* "trusted_hosts": host names, addresses or CIDR blocks
                             ("10.8.0.0/16") that count as local for this endpoint besides
                             loopback and the trusted networks (a GPU box on a VPN) */
    size_t n_trusted_hosts;
    enum pipe_enforce_local enforce_local; /* "enforce_local"; only on local ollama endpoints */
    int expect_model_exact; /* "expect_model": "exact": a reply named for another model than
                               the one asked for fails its task; default "any" */
    char *included_from;    /* the file of an `include` that declared it, or NULL */
    int line, col;          /* of the endpoint's object in the pipeline file */
    char **urls;            /* the loader's: the pool's urls until it is split into hosts */
    size_t n_urls;
};

enum pipe_kind {
    PIPE_KIND_CHAT,   /* one request, one reply (default) */
    PIPE_KIND_AGENT,  /* a conversation with tool calls, up to max_steps requests */
    PIPE_KIND_REDUCE, /* scope batch, in rounds: items are folded max_items at a time */
};

enum pipe_scope {
    PIPE_SCOPE_ITEM,  /* a task per work item (or per for_each element) (default) */
    PIPE_SCOPE_BATCH, /* one task over every item of the run */
};

enum pipe_on_sensitive {
    PIPE_ONS_FAIL,    /* refuse, audit, exit 3 (default) */
    PIPE_ONS_SKIP,    /* the task is withheld; dependants see that */
    PIPE_ONS_REROUTE, /* the stage named by `reroute` runs instead */
};

enum pipe_out_format {
    PIPE_OUT_TEXT,
    PIPE_OUT_JSON,     /* JSON; checked against output.schema when there is one */
    PIPE_OUT_FINDINGS, /* a JSON array of findings (findings/findings.h), checked */
};

/* "declassify": the stage's output may carry a lower label than its input
 * when every guard passes (the engine checks them; a guard that fails keeps
 * the input's label and the audit names it). */
struct pipe_declassify {
    int enabled;
    int to;                 /* target label index */
    int no_verbatim_tokens; /* no run of this many tokens shared with an input above `to`;
                               default 8, 0 turns the guard off */
    int no_rare_tokens;     /* 1 (default): no rare token (a key, a long number, a
                               high-entropy mix) copied from an input above `to` that no
                               input at or below it holds (policy/rare.h) */
    int detectors;          /* 1 (default): no detector hit in the output */
    int redact_code;        /* "redact": ["code"]: fenced and indented code removed first */
    int redact_paths;       /* "redact": ["paths"]: file paths replaced first */
    long max_chars;         /* 0: no cap */
    int line, col;          /* of the declassify object */
};

struct pipe_stage {
    char *name;
    size_t endpoint; /* index into pipeline.endpoints */
    char *model;
    char *prompt_path;      /* "prompt" as written (relative to the pipeline file's folder),
                               or NULL when the user message is inline ("user") */
    struct pipe_tpl tpl;    /* the user message: the `prompt` file or the inline `user` */
    struct pipe_tpl system; /* the inline `system` message (n_parts 0 when absent) */
    char **reads;           /* every distinct field the templates read, system first, in
                               order of first appearance ("pr.diff", "plan.output", "each.path") */
    size_t n_reads;
    size_t *deps; /* stage indices this stage waits for: `after` plus
                     every stage whose output the templates or for_each read */
    size_t n_deps;
    int clearance;      /* label index, or -1 when not declared */
    char *options_json; /* "options": model options as compact JSON object text, or NULL */
    long num_ctx;       /* "options.num_ctx" when it is a positive integer, else 0 */
    char *keep_alive;   /* "keep_alive": how long the model stays loaded ("10m", "-1"), or NULL */
    enum pipe_kind kind;
    enum pipe_scope scope; /* PIPE_KIND_REDUCE implies PIPE_SCOPE_BATCH */
    char *for_each;        /* the list a task is made per element of: "pr.files" or
                              "STAGE.output" (a JSON array); NULL: a task per item */
    long for_each_stage;   /* the stage whose output for_each reads, or -1 */
    char **tools;          /* agent: granted tool names, in file order */
    size_t n_tools;
    int max_steps;                   /* agent: model requests per task; default 8 */
    int max_items;                   /* reduce: items folded per request; default 20 */
    enum pipe_out_format out_format; /* "output.format"; default text (json with a schema);
                                        findings is JSON too (a for_each may read it) */
    char *out_schema_path;           /* "output.schema" as written, or NULL */
    char *out_schema_json;           /* the schema file's JSON, compact, or NULL */
    enum pipe_on_sensitive on_sensitive;
    int keep_truncated; /* "on_truncated": "keep": a reply the server cut for length is
                           done, with a note; default ("fail"): the task fails */
    long reroute;       /* PIPE_ONS_REROUTE: the stage index that runs instead, else -1 */
    int standby;        /* 1: some stage reroutes to this one; it runs only in place
                           of that stage, never on its own */
    struct pipe_declassify declassify;
    int line, col;
};

/* A path rule: files whose path matches glob carry label. When several
 * rules match one file, the highest label wins. Rules may lower a file below
 * the field's declared label ("docs/ **" internal in a confidential repo):
 * they are declarations of the pipeline's author, like the field labels. */
struct pipe_rule {
    char *glob; /* bh_glob syntax */
    int label;
    int line, col;
};

/* A detector of the pipeline's own: a POSIX extended regular expression
 * (regcomp REG_EXTENDED; see pipelines/README.md for why ERE). */
struct pipe_custom_detector {
    char *id; /* [a-z0-9-]+, distinct from the built-in ids and groups */
    char *regex;
    int label; /* the label a hit raises the value to */
};

struct pipe_source {
    char *kind;        /* "git" | "files" */
    int label;         /* default label of every field (index) */
    char **fields;     /* the source kind's fields, e.g. "pr.diff" */
    int *field_labels; /* label index per field (declared, else the default) */
    size_t n_fields;
    struct pipe_rule *rules; /* "rules", in file order */
    size_t n_rules;
    char **detectors; /* built-in detector ids or group names as written; NULL with
                         detectors_set 0 means every built-in detector */
    size_t n_detectors;
    int detectors_set;                   /* "detectors" was given (an empty list turns them off) */
    struct pipe_custom_detector *custom; /* the object entries of "detectors" */
    size_t n_custom;
    char **allow_paths; /* "allow.paths": globs of files no detector scans */
    size_t n_allow_paths;
    char **allow_values; /* "allow.values": literal strings that are never hits
                            (a documented test key) */
    size_t n_allow_values;
    char **include; /* files: globs of documents to read; default every file */
    size_t n_include;
    char **exclude; /* files: globs of documents to leave out */
    size_t n_exclude;
    long max_bytes; /* files: larger documents are skipped with a note; default 1 MiB */
};

struct pipe_output {
    char *format; /* "md" | "jsonl" | "sarif" | "junit" | "github-review" (the
                     report formats, report/report.h) */
    char *path;   /* relative to the working directory */
};

struct pipeline {
    char *file; /* the path given to pipe_load */
    char *dir;  /* its folder */
    char *name;
    int version;
    char **labels; /* ordered, lowest first */
    size_t n_labels;
    struct pipe_endpoint *endpoints;
    size_t n_endpoints;
    char **trusted_networks; /* "trusted_networks": CIDR blocks whose addresses count as
                                local for endpoints declared local (besides loopback) */
    size_t n_trusted_networks;
    struct pipe_source source;
    struct pipe_stage *stages;
    size_t n_stages;
    size_t *order; /* stage indices in a topological order */
    struct pipe_output *outputs;
    size_t n_outputs;
    char **includes; /* "include": the files read for shared endpoints, as opened */
    size_t n_includes;
    char hash[65]; /* SHA-256 over the pipeline file, its templates and
                      the expanded endpoint URLs: part of a run's identity */
};

struct pipe_load_opts {
    const char *const *endpoint_overrides; /* "NAME=URL", from --endpoint */
    size_t n_overrides;
};

/* Loads and validates path: a JSON file, or a YAML file when its name ends
 * in ".yaml" or ".yml" (same keys, same checks, same messages). On error *out
 * is untouched and err carries the first error in file order (file, line,
 * column, JSON path and a hint). opts and err may be NULL. */
int pipe_load(struct pipeline **out, const char *path, const struct pipe_load_opts *opts,
              struct bh_err *err);

/* Like pipe_load(), but reports every error one pass finds (at most 20, then
 * a note that it stopped), sorted by their position in the pipeline file
 * (errors without one, e.g. on --endpoint, first; a template's errors where
 * the stage names the template). Checking stops early where more errors
 * would only follow from one already found (a syntax error, a bad label
 * list, an unknown source kind, a bad endpoint or stage name); the cycle
 * check runs only when the stages could all be read. Returns 0, or the
 * first error's code. *errs is a new array of *n_errs errors (NULL and 0 on
 * success), owned by the caller: free() it. errs and n_errs may be NULL. */
int pipe_load_all(struct pipeline **out, const char *path, const struct pipe_load_opts *opts,
                  struct bh_err **errs, size_t *n_errs);
void pipe_free(struct pipeline *p); /* NULL is fine */

/* What names endpoint e's host in messages, the audit and reports: its
 * host_name ("gpus#2" for a pool's second url), else its name. */
const char *pipe_host_name(const struct pipe_endpoint *e);

/* 1 when stage runs on ep: ep is its endpoint, or a host of its endpoint's
 * pool (every host of a pool serves the pool's stages). */
int pipe_stage_on(const struct pipeline *p, size_t stage, size_t ep);

/* Label index by name, or -1. */
int pipe_label_find(const struct pipeline *p, const char *name);

/* Index of the stage called name, or -1. */
long pipe_stage_find(const struct pipeline *p, const char *name);

/* The declared label of a source field (its own, else the source default), or
 * -1 when the source has no such field. */
int pipe_source_field_label(const struct pipeline *p, const char *field);

/* The providers the language accepts (the wire dialects providers/ speaks). */
const char *const *pipe_provider_names(size_t *n);

/* The fields a for_each element provides: "each.path", "each.status",
 * "each.diff" for "pr.files"; "each" for a stage's output. NULL and *n = 0
 * when for_each is NULL. */
const char *const *pipe_for_each_fields(const char *for_each, size_t *n);

/* The built-in tool names an agent stage may be granted: read_file,
 * list_files, grep, git_log, diff. */
const char *const *pipe_tool_names(size_t *n);

/* 1 when the field holds file contents that path rules label per file
 * ("pr.diff", "each.diff", "doc.text"). */
int pipe_field_is_content(const char *field);

/* The fields a source kind provides (NULL and *n = 0 for an unknown kind). */
const char *const *pipe_source_kind_fields(const char *kind, size_t *n);

/* The source field an item's key is the text of ("pr.ref" for git: the ref
 * or revision as given; "doc.path" for files: the relative path), or NULL
 * for an unknown kind. Keys reach prompts (a batch stage names its items),
 * so a key is labelled like that field (policy/label.h, pol_label_key). */
const char *pipe_source_key_field(const char *kind);

/* Expands ${VAR} and ${VAR:-default} in s. A ${VAR} whose variable is unset or
 * empty is an error naming it. Returns a new string in *out. */
int pipe_expand_env(const char *s, char **out, struct bh_err *err);

#endif
