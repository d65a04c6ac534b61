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
    int is_field;        /* 0: literal text; 1: a placeholder */
    char *text;          /* the literal, or the field name ("pr.diff", "plan.output") */
    int line, col;       /* of the placeholder in the template file (1-based) */
};

struct pipe_tpl {
    char *file;          /* path of the template file as opened */
    struct pipe_tpl_part *parts;
    size_t n_parts;
};

struct pipe_endpoint {
    char *name;
    char *provider;        /* "ollama" */
    char *url;             /* after ${VAR}/${VAR:-default} expansion and --endpoint overrides */
    int declared_local;    /* "locality": "local" (a missing locality means cloud) */
    int clearance;         /* label index, or -1 when not declared (policy decides) */
    int max_concurrency;   /* parallel requests to this endpoint; default 1 */
    long timeout_s;        /* whole-request timeout; default 600 */
    long connect_timeout_s;    /* to open the connection; default 10 */
    long first_byte_timeout_s; /* from sending to the first byte of the reply; default 300
                                  (a local model's cold load comes first) */
    long idle_timeout_s;       /* between two chunks of a streamed reply; default 60 */
    int max_attempts;          /* tries of one request when it fails transiently
                                  (connection, 429, 5xx, cut stream); default 3 */
    char *api_key_env;     /* name of the environment variable holding the key, or NULL */
    int line, col;         /* of the endpoint's object in the pipeline file */
};

struct pipe_stage {
    char *name;
    size_t endpoint;       /* index into pipeline.endpoints */
    char *model;
    char *prompt_path;     /* as written (relative to the pipeline file's folder) */
    struct pipe_tpl tpl;
    size_t *deps;          /* stage indices this stage waits for: `after` plus
                              every stage whose output the template reads */
    size_t n_deps;
    int clearance;         /* label index, or -1 when not declared */
    char *options_json;    /* "options": model options as compact JSON object text, or NULL */
    char *keep_alive;      /* "keep_alive": how long the model stays loaded ("10m", "-1"), or NULL */
    int line, col;
};

struct pipe_source {
    char *kind;            /* "git" */
    int label;             /* default label of every field (index) */
    char **fields;         /* the source kind's fields, e.g. "pr.diff" */
    int *field_labels;     /* label index per field (declared, else the default) */
    size_t n_fields;
};

struct pipe_output {
    char *format;          /* "md" | "jsonl" */
    char *path;            /* relative to the working directory */
};

struct pipeline {
    char *file;            /* the path given to pipe_load */
    char *dir;             /* its folder */
    char *name;
    int version;
    char **labels;         /* ordered, lowest first */
    size_t n_labels;
    struct pipe_endpoint *endpoints;
    size_t n_endpoints;
    struct pipe_source source;
    struct pipe_stage *stages;
    size_t n_stages;
    size_t *order;         /* stage indices in a topological order */
    struct pipe_output *outputs;
    size_t n_outputs;
    char hash[65];         /* SHA-256 over the pipeline file, its templates and
                              the expanded endpoint URLs: part of a run's identity */
};

struct pipe_load_opts {
    const char *const *endpoint_overrides;  /* "NAME=URL", from --endpoint */
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
void pipe_free(struct pipeline *p);   /* NULL is fine */

/* Label index by name, or -1. */
int pipe_label_find(const struct pipeline *p, const char *name);

/* Index of the stage called name, or -1. */
long pipe_stage_find(const struct pipeline *p, const char *name);

/* The declared label of a source field (its own, else the source default), or
 * -1 when the source has no such field. */
int pipe_source_field_label(const struct pipeline *p, const char *field);

/* The providers the language accepts (the wire dialects providers/ speaks). */
const char *const *pipe_provider_names(size_t *n);

/* The fields a source kind provides (NULL and *n = 0 for an unknown kind). */
const char *const *pipe_source_kind_fields(const char *kind, size_t *n);

/* Expands ${VAR} and ${VAR:-default} in s. A ${VAR} whose variable is unset or
 * empty is an error naming it. Returns a new string in *out. */
int pipe_expand_env(const char *s, char **out, struct bh_err *err);

#endif
