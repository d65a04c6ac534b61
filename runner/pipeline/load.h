/* pipeline/load.h — the loader's shared state and its table-driven object
 * walker. Internal to the pipeline module (the only header that includes
 * jansson; nothing outside runner/pipeline/ includes it).
 *
 * Every object kind of the pipeline file (top level, endpoint, source, stage,
 * output) is a struct pipe_schema: a table of keys with their JSON type,
 * whether they are required, a handler that stores the value, and a hint
 * shown when the value is missing or of the wrong type. pipe_ld_object()
 * does what is common (unknown keys with did-you-mean, required keys, types)
 * and calls the handlers in table order, so a handler may rely on the keys
 * above it in its table (a source's `fields` on its `kind`, the top level's
 * `stages` on `labels` and `endpoints`).
 *
 * Every error goes through pipe_ld_fail*() (or pipe_ld_keep() for errors
 * another layer set), which positions it with the position index and adds
 * it to the loader's list. The walk goes on after an error that touches one
 * value only (a wrong type, an unknown key, label, endpoint or stage, a bad
 * template), so one pass reports several. An error that later checks
 * depend on (the labels, an endpoint or stage name, the source kind, a
 * missing `endpoints` or `source`, a mistake on the command line) calls
 * pipe_ld_halt(): the walk stops there, since what follows would only be
 * noise. So does the cap of PIPE_MAX_ERRORS.
 *
 * Included files (top-level `include`) are walked with the same machinery:
 * pipe_ld_enter() switches the file errors are positioned in and the
 * position index to the included file's, and makes every error found there
 * sort where the including file names it (its `include` element), so a
 * reader sees them next to the line that pulled the file in. */
#ifndef PIPE_LOAD_H
#define PIPE_LOAD_H

#include <jansson.h>
#include <stddef.h>

#include "pipeline/pipeline.h"
#include "pipeline/posindex.h"
#include "util/bh_err.h"

#define PIPE_FILE_MAX ((size_t)1 << 20) /* pipeline files and templates: 1 MiB */
#define PIPE_MAX_STAGES 512
#define PIPE_MAX_ENDPOINTS 64
#define PIPE_MAX_POOL 16 /* hosts of one pool ("urls") */
#define PIPE_MAX_LABELS 64
#define PIPE_MAX_ERRORS 20   /* errors reported by one load */
#define PIPE_MAX_DEPTH 64    /* nesting of a YAML file (a pipeline needs 5) */
#define PIPE_MAX_INCLUDES 16 /* files one `include` may name */
#define PIPE_MAX_LIST 256    /* elements of a list of globs, hosts, detectors, values */

/* Where a dep of a stage comes from (pipe_stage_load.dep_elem), besides an
 * `after` element (>= 0): so that a cycle is reported where it is written. */
enum { PIPE_DEP_USER = -1, PIPE_DEP_SYSTEM = -2, PIPE_DEP_FOR_EACH = -3 };

/* What the loader keeps per stage until the graph is built. */
struct pipe_stage_load {
    size_t *after;      /* stage indices named by `after`, in file order */
    size_t *after_elem; /* the `after` element each came from */
    size_t n_after;
    long *dep_elem; /* per dep: its `after` element, or a PIPE_DEP_* */
    char *tpl_text; /* the prompt file's bytes, for the pipeline hash */
    size_t tpl_len;
    char *schema_text; /* the output schema file's bytes, for the pipeline hash */
    size_t schema_len;
    const char *user_key; /* "prompt" or "user": where the user message was given */
    int scope_set;        /* `scope` was given (reduce refuses "item") */
    int kind_bad;         /* `kind` was given but unreadable: checks on it would be noise */
    int for_each_bad;     /* `for_each` was given but unreadable: likewise */
    int format_text;      /* `output.format` was given as "text" */
    int format_findings;  /* `output.format` was given as "findings" */
};

/* An included file, parsed, kept until the endpoints are walked. */
struct pipe_include_load {
    const char *file; /* as opened: borrowed from pipeline.includes */
    char *text;       /* its bytes, for the pipeline hash */
    size_t len;
    json_t *root;
    struct pipe_posindex *ix;
    int line, col; /* of its element in the including file's `include` */
};

/* What pipe_ld_enter() switched away from. */
struct pipe_ld_place {
    const char *file;
    struct pipe_posindex *ix;
    const struct pipe_include_load *inc;
};

/* One error found, with where it sorts (see pipe_ld_keep). */
struct pipe_found {
    struct bh_err err;
    int line, col;         /* the position in the pipeline file it sorts by */
    int sub_line, sub_col; /* in an included file: its position there, for ties */
    size_t seq;            /* order found, for ties */
};

struct pipe_loader {
    struct pipeline *p;
    const struct pipe_load_opts *opts;
    struct pipe_posindex *ix;            /* of the file being walked (see pipe_ld_enter) */
    const char *file;                    /* the file being walked: errors are positioned in it */
    const struct pipe_include_load *inc; /* the included file being walked, or NULL */
    json_t *root;                        /* the pipeline file's top-level object */
    struct bh_err *err;                  /* the error being built; handlers may read it back */
    struct pipe_found *found;            /* every error so far, in the order found */
    size_t n_found, cap_found;
    int halt;                            /* stop walking: later checks would be noise */
    int capped;                          /* PIPE_MAX_ERRORS were found */
    const char **override;               /* per endpoint: its --endpoint URL, or NULL */
    const char **stage_names;            /* borrowed from p->stages[i].name */
    struct pipe_stage_load *sl;          /* per stage */
    struct pipe_include_load *inc_files; /* per element of `include` read so far */
    size_t n_inc;
    long *ep_inc; /* per endpoint: the index in inc_files it came from, or -1 */
};

enum pipe_jtype { PIPE_JT_STRING, PIPE_JT_INT, PIPE_JT_OBJECT, PIPE_JT_ARRAY, PIPE_JT_BOOL };

/* Stores one value. target is the struct the schema fills; path is the
 * value's JSON path. Returns 0 or a negative code (after pipe_ld_fail). */
typedef int (*pipe_key_fn)(struct pipe_loader *ld, void *target, json_t *v, const char *path);

struct pipe_key {
    const char *key;
    enum pipe_jtype type;
    int required;
    pipe_key_fn fn;     /* NULL for a key the schema's ranges store */
    const char *hint;   /* what the value is, with an example (a range key: without
                           its bounds, which the walk adds from its pipe_range) */
    int base;           /* later keys depend on it: missing or of the wrong type, it halts */
    const char *alt;    /* with required: the key may be missing when `alt` is given (the
                           message then names both) */
    const char *refuse; /* the key is refused with this message (an included file's
                           `stages`); such keys are never offered as a did-you-mean */
};

/* An integer key's range and where its value lands. The walk checks every
 * such key with one checker (pipe_ld_int_range: "expected an integer from 1
 * to 64, found 65") and writes its hint from the row ("parallel requests, 1
 * to 64"), so the bounds are stated once. The key's pipe_key row has fn NULL,
 * or a check that runs first (the key fits the stage's kind), and a hint
 * without the bounds. */
struct pipe_range {
    const char *key;
    long min, max;
    size_t offset; /* of the field in the struct the schema fills */
    size_t size;   /* sizeof the field: an int or a long */
};
#define PIPE_RANGE(key, type, field, lo, hi)                                                       \
    {                                                                                              \
        key, lo, hi, offsetof(type, field), sizeof(((type *)0)->field)                             \
    }

struct pipe_schema {
    const struct pipe_key *keys;
    size_t n_keys;
    const char *hint;                /* what the object is, shown when it is not an object */
    const struct pipe_range *ranges; /* the integer keys among keys, or NULL */
    size_t n_ranges;
};

/* Walks obj (at path) against schema, filling target. Returns the first
 * error's code (the walk goes on past errors unless ld->halt is set). */
int pipe_ld_object(struct pipe_loader *ld, const struct pipe_schema *schema, json_t *obj,
                   const char *path, void *target);

/* Fails with BH_EINVAL at the value at path (the path is shown too). */
int pipe_ld_fail(struct pipe_loader *ld, const char *path, const char *fmt, ...) BH_PRINTF(3, 4);

/* Fails at the key `key` of the object at obj_path (obj_path is shown). */
int pipe_ld_fail_key(struct pipe_loader *ld, const char *obj_path, const char *key, const char *fmt,
                     ...) BH_PRINTF(4, 5);

/* Fails with the pipeline file named but no position: a mistake on the
 * command line (--endpoint). Sorts before every positioned error. */
int pipe_ld_fail_file(struct pipe_loader *ld, const char *fmt, ...) BH_PRINTF(2, 3);

/* Records *ld->err as another layer set it (a template's error, positioned
 * in the template), sorted at the position of the value at sort_path (NULL:
 * first). Returns its code. Past PIPE_MAX_ERRORS nothing is recorded and
 * ld->halt is set. */
int pipe_ld_keep(struct pipe_loader *ld, const char *sort_path);

/* Switches the walk into the included file inc (errors are positioned in
 * it and sort at its `include` element) until pipe_ld_leave(saved). */
void pipe_ld_enter(struct pipe_loader *ld, const struct pipe_include_load *inc,
                   struct pipe_ld_place *saved);
void pipe_ld_leave(struct pipe_loader *ld, const struct pipe_ld_place *saved);

/* Sets ld->halt and returns rc: `return pipe_ld_halt(ld, pipe_ld_fail(...))`. */
int pipe_ld_halt(struct pipe_loader *ld, int rc);

/* Fails with `unknown <what> "name" (<known_word>: a, b) — did you mean "x"?`;
 * without a close candidate, `tail` (may be NULL) replaces the suggestion. */
struct pipe_unknown {
    const char *what, *name, *known_word, *tail;
    const char *const *known;
    size_t n_known;
};
int pipe_ld_unknown(struct pipe_loader *ld, const char *path, const struct pipe_unknown *u);

/* The same message into buf (size bytes), for callers that add context. */
void pipe_unknown_format(char *buf, size_t size, const struct pipe_unknown *u);

/* Fails unless v has type t: "expected a string, found a number — hint". */
int pipe_ld_expect(struct pipe_loader *ld, json_t *v, enum pipe_jtype t, const char *path,
                   const char *hint);

/* A string value that must not be empty, copied into *out. what says what
 * to write instead ("the model name, e.g. ..."). */
int pipe_ld_nonempty(struct pipe_loader *ld, json_t *v, const char *path, const char *what,
                     char **out);

/* An integer in [lo, hi] (v is known to be an integer): the check of every
 * pipe_range, for a handler that needs the same message. */
int pipe_ld_int_range(struct pipe_loader *ld, json_t *v, const char *path, long lo, long hi,
                      long *out);

/* The label a string value names (type-checked here), as an index. */
int pipe_ld_label(struct pipe_loader *ld, json_t *v, const char *path, int *out);

/* Checks one element s (at path) of a list of strings; 0, or a code after
 * pipe_ld_fail. */
typedef int (*pipe_elem_fn)(struct pipe_loader *ld, const char *s, const char *path);

/* A list of strings (v is known to be an array): each element must be a
 * non-empty string (what says what to write, e.g. "a tool name, e.g.
 * \"grep\""), pass check (NULL: any) and appear once; at most
 * PIPE_MAX_LIST. The elements that pass are copied into *out (a new array,
 * never NULL) and counted in *n; the walk goes on past a bad one. Returns
 * the first error's code. */
int pipe_ld_strings(struct pipe_loader *ld, json_t *v, const char *path, const char *what,
                    pipe_elem_fn check, char ***out, size_t *n);

/* A file the pipeline names (prompt, system, schema, include: `what`, e.g.
 * "prompt template"), written relative to the pipeline file's folder: the
 * path to open in *out (new string). Refused with pipe_ld_fail at path when
 * it is absolute or, with ".." and symbolic links resolved (realpath), lies
 * outside that folder: a pipeline's words come from its own folder. A file
 * that cannot be resolved (missing) is passed on: the caller's read fails. */
int pipe_ld_file(struct pipe_loader *ld, const char *rel, const char *path, const char *what,
                 char **out);

/* Child paths, into buf of PIPE_PATH_MAX bytes. A path too long to hold falls
 * back to its parent's (errors then point at the parent). */
void pipe_ld_path_key(char *buf, const char *parent, const char *key);
void pipe_ld_path_index(char *buf, const char *parent, size_t i);

/* "a string", "a number", "an object", ... */
const char *pipe_json_kind(const json_t *v);

/* Reads a whole file of at most max bytes into *out (NUL-terminated, *len
 * without it). BH_EIO with errno kept, or BH_ETOOBIG. Sets no error text. */
int pipe_read_file(const char *path, size_t max, char **out, size_t *len);

/* Parses a JSON text with jansson (duplicate keys refused). On error err is
 * positioned at the offending token of file and says what to do. */
int pipe_json_parse(const char *file, const char *text, size_t len, json_t **root,
                    struct bh_err *err);

/* Parses a pipeline file's text, JSON or YAML by its name (see pipe_load),
 * into *root and its position index *ix. On error err is positioned. */
int pipe_parse_text(const char *file, const char *text, size_t len, json_t **root,
                    struct pipe_posindex **ix, struct bh_err *err);

/* Parses a YAML pipeline file (text, len bytes) into the JSON tree the JSON
 * path builds, and *ix with every node's position (yaml.c). Plain scalars
 * that read as integers, fractional numbers, booleans or null become those;
 * every other scalar a string. Anchors, aliases, tags outside the core
 * schema, duplicate keys, keys that are not strings and a second document
 * are errors. On error err is positioned (file:line:col), *root is NULL and
 * *ix is NULL. */
int pipe_yaml_parse(const char *file, const char *text, size_t len, json_t **root,
                    struct pipe_posindex **ix, struct bh_err *err);

/* Handlers of the top-level sections (pipeline.c, sections.c, include.c,
 * endpoints.c, source.c, stages.c). */
int pipe_ld_version(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_ld_labels(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_ld_include(struct pipe_loader *ld, void *target, json_t *v, const char *path);
/* v may be NULL: the file has no `endpoints` and takes them all from its
 * included files (pipe_ld_include calls it then). */
int pipe_ld_endpoints(struct pipe_loader *ld, void *target, json_t *v, const char *path);
/* Frees what an endpoint holds (not e itself). */
void pipe_endpoint_release(struct pipe_endpoint *e);
/* The top-level "trusted_networks": CIDR blocks whose addresses count as local
 * for endpoints declared local (endpoints.c, next to trusted_hosts). */
int pipe_ld_trusted_networks(struct pipe_loader *ld, void *target, json_t *v, const char *path);
/* A source's `detectors` (detectors.c). */
int pipe_src_detectors(struct pipe_loader *ld, void *target, json_t *v, const char *path);
/* An endpoint's `headers` (headers.c); api_key_env and basic_auth_env, above
 * it, must be set. */
int pipe_ep_headers(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_ld_source(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_ld_outputs(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_ld_stages(struct pipe_loader *ld, void *target, json_t *v, const char *path);

/* Stage keys, by file (stage_tpl.c: the messages; stage_kind.c: how a
 * stage runs and what it may do with its output). Used by stages.c's table. */
int pipe_st_system(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_prompt(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_user(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_for_each(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_scope(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_kind(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_tools(struct pipe_loader *ld, void *target, json_t *v, const char *path);
/* max_steps and max_items: only for their kind (their range row stores them). */
int pipe_st_max_steps(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_max_items(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_output(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_on_sensitive(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_on_truncated(struct pipe_loader *ld, void *target, json_t *v, const char *path);
int pipe_st_declassify(struct pipe_loader *ld, void *target, json_t *v, const char *path);

/* After the stages, when nothing halted: what only all stages together can
 * tell (links.c: reroute targets, for_each lists, reads of standby stages),
 * then each stage's reads and deps, the cycle check and p->order (graph.c). */
int pipe_ld_links(struct pipe_loader *ld);
int pipe_ld_graph(struct pipe_loader *ld);

/* The index of stage s in ld->p->stages. */
size_t pipe_ld_stage_index(const struct pipe_loader *ld, const struct pipe_stage *s);

/* 1 when s is [A-Za-z0-9_-]+ (stage names); with dot also allows '.'. */
int pipe_name_ok(const char *s, int dot);

#endif
