/* pipeline/pipeline.c — pipe_load() and the lookups over a loaded pipeline.
 *
 * Loading is: read the file (capped), parse it into a JSON tree with a
 * position for every value (jansson and the position scanner for JSON,
 * libyaml for a .yaml/.yml file: yaml.c builds the same tree, so everything
 * after parsing is shared), then walk the tree with the schema tables
 * (load.h): top level here, sections in sections.c and stages.c, the stage
 * graph in graph.c. The walk collects errors (see load.h for where it goes
 * on and where it stops); they are reported sorted by their position in the
 * pipeline file, which is the order a reader fixes them in. The result is
 * plain C data (pipeline.h); no json_t outlives pipe_load(). The hash that
 * identifies a run is computed last, over exactly the bytes that decide what
 * the pipeline does: the file, its included files, its templates and output
 * schemas, and the final endpoint URLs (not header values: they are secrets,
 * and the file already says where they come from). */
#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/load.h"
#include "pipeline/template.h"
#include "util/bh_hash.h"
#include "util/bh_str.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* pr.body .. pr.draft come from a forge's list (--pulls-from; src_forge.h),
 * empty in a ref-based run. */
static const char *const git_fields[] = {"pr.number", "pr.ref",  "pr.title", "pr.files",
                                         "pr.stats",  "pr.diff", "pr.body",  "pr.author",
                                         "pr.labels", "pr.draft"};
static const char *const files_fields[] = {"doc.path", "doc.text", "doc.size"};

/* key_field: the field whose text an item's key is (a ref as given, a
 * document's relative path); the key is labelled like it. */
static const struct {
    const char *kind;
    const char *const *fields;
    size_t n;
    const char *key_field;
} source_kinds[] = {
    {"git", git_fields, BH_NELEM(git_fields), "pr.ref"},
    {"files", files_fields, BH_NELEM(files_fields), "doc.path"},
};

/* What a for_each element provides; the file holds for_each "pr.files" or
 * "STAGE.output" (checked by the loader). */
static const char *const each_file_fields[] = {"each.path", "each.status", "each.diff"};
static const char *const each_output_fields[] = {"each"};

/* Must list what stages/tools implements. */
static const char *const tool_names[] = {"read_file", "list_files", "grep", "git_log", "diff"};

/* Fields whose value is file contents: path rules label them per file. */
static const char *const content_fields[] = {"pr.diff", "each.diff", "doc.text"};

static const char *const default_labels[] = {"public", "internal", "confidential", "restricted"};

const char *const *pipe_source_kind_fields(const char *kind, size_t *n)
{
    for (size_t i = 0; kind && i < BH_NELEM(source_kinds); i++)
        if (strcmp(kind, source_kinds[i].kind) == 0) {
            *n = source_kinds[i].n;
            return source_kinds[i].fields;
        }
    *n = 0;
    return NULL;
}

const char *pipe_source_key_field(const char *kind)
{
    for (size_t i = 0; kind && i < BH_NELEM(source_kinds); i++)
        if (strcmp(kind, source_kinds[i].kind) == 0)
            return source_kinds[i].key_field;
    return NULL;
}

const char *const *pipe_for_each_fields(const char *for_each, size_t *n)
{
    if (!for_each) {
        *n = 0;
        return NULL;
    }
    if (strcmp(for_each, "pr.files") == 0) {
        *n = BH_NELEM(each_file_fields);
        return each_file_fields;
    }
    *n = BH_NELEM(each_output_fields);
    return each_output_fields;
}

const char *const *pipe_tool_names(size_t *n)
{
    *n = BH_NELEM(tool_names);
    return tool_names;
}

int pipe_field_is_content(const char *field)
{
    for (size_t i = 0; field && i < BH_NELEM(content_fields); i++)
        if (strcmp(field, content_fields[i]) == 0)
            return 1;
    return 0;
}

/* ---- the top level ---- */

int pipe_ld_version(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    (void)target; /* the top level's, or an included file's: both must be 1 */
    json_int_t n = json_integer_value(v);
    if (n != 1)
        return pipe_ld_fail(ld, path,
                            "unsupported version %lld — this bulkhead reads version 1 "
                            "pipeline files; write \"version\": 1",
                            (long long)n);
    ld->p->version = 1;
    return 0;
}

static int top_name(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_nonempty(ld, v, path, "the pipeline's name", &((struct pipeline *)target)->name);
}

/* Order matters: a handler may use what the keys above it stored. */
static const struct pipe_key top_keys[] = {
    {"version", PIPE_JT_INT, 1, pipe_ld_version, "the file format version: 1", 0, NULL, NULL},
    {"name", PIPE_JT_STRING, 1, top_name, "the pipeline's name, e.g. \"nightly-code-review\"", 0,
     NULL, NULL},
    {"labels", PIPE_JT_ARRAY, 0, pipe_ld_labels,
     "label names from lowest to highest, e.g. [\"public\", \"internal\", \"confidential\", "
     "\"restricted\"]",
     1, NULL, NULL},
    {"include", PIPE_JT_ARRAY, 0, pipe_ld_include,
     "files that declare shared endpoints, relative to this file, e.g. [\"endpoints.json\"]", 1,
     NULL, NULL},
    {"trusted_networks", PIPE_JT_ARRAY, 0, pipe_ld_trusted_networks,
     "networks (CIDR blocks) whose addresses count as local for endpoints declared local, "
     "e.g. [\"10.8.0.0/16\"]",
     0, NULL, NULL},
    {"endpoints", PIPE_JT_OBJECT, 1, pipe_ld_endpoints,
     "the model servers, e.g. { \"gpu-box\": { \"provider\": \"ollama\", \"url\": "
     "\"http://127.0.0.1:11434\", \"locality\": \"local\" } }, or \"include\" a file that "
     "declares them",
     1, "include", NULL},
    {"source", PIPE_JT_OBJECT, 1, pipe_ld_source,
     "where work items come from, e.g. { \"kind\": \"git\" }", 1, NULL, NULL},
    {"stages", PIPE_JT_OBJECT, 1, pipe_ld_stages,
     "the stages by name, e.g. { \"review\": { \"endpoint\": \"gpu-box\", \"model\": "
     "\"qwen2.5-coder:7b\", \"prompt\": \"prompts/review.md\" } }",
     0, NULL, NULL},
    {"outputs", PIPE_JT_ARRAY, 0, pipe_ld_outputs,
     "reports to write, e.g. [{ \"format\": \"md\", \"path\": \"review.md\" }]", 0, NULL, NULL},
};

static const struct pipe_schema top_schema = {
    top_keys, BH_NELEM(top_keys),
    "a pipeline file is a JSON object: { \"version\": 1, \"name\": ..., \"endpoints\": ..., "
    "\"source\": ..., \"stages\": ... }",
    NULL, 0};

/* ---- reading and parsing ---- */

static struct pipeline *pipeline_new(const char *path)
{
    struct pipeline *p = bh_xcalloc(1, sizeof(*p));
    p->file = bh_xstrdup(path);
    const char *slash = strrchr(path, '/');
    p->dir = !slash          ? bh_xstrdup(".")
             : slash == path ? bh_xstrdup("/")
                             : bh_xstrndup(path, (size_t)(slash - path));
    p->n_labels = BH_NELEM(default_labels);
    p->labels = bh_xcalloc(p->n_labels, sizeof(*p->labels));
    for (size_t i = 0; i < p->n_labels; i++)
        p->labels[i] = bh_xstrdup(default_labels[i]);
    return p;
}

static int read_pipeline(const char *path, char **text, size_t *len, struct bh_err *err)
{
    int rc = pipe_read_file(path, PIPE_FILE_MAX, text, len);
    bh_err_at(err, path, 0, 0, "");
    if (rc == BH_ETOOBIG)
        return bh_err_set(err, BH_EINVAL, "the pipeline file is larger than %zu KiB",
                          PIPE_FILE_MAX >> 10);
    if (rc)
        return bh_err_set(err, BH_EIO, "cannot read the pipeline file: %s", strerror(errno));
    return 0;
}

static const struct {
    const char *text, *hint;
} syntax_hints[] = {
    {"duplicate object key", "each key may appear once in an object"},
    {"end of file expected", "a pipeline file holds one JSON object; remove what follows its "
                             "closing \"}\""},
    {"string or '}' expected", "is there a comma before the \"}\"? JSON allows no trailing "
                               "comma"},
    {"premature end of input", "a bracket or a quote is not closed"},
    {"'}' expected", "is a comma missing before it?"},
    {"']' expected", "is a comma missing before it?"},
};

/* jansson's column is that of the last character of the offending token,
 * which its message quotes ("near 'garbage'"); point at its first instead. */
static int token_start(const json_error_t *je)
{
    const char *near = strstr(je->text, "near '");
    size_t n = strlen(je->text);
    if (!near || je->text[n - 1] != '\'' || near + 6 > je->text + n - 1)
        return je->column;
    int chars = 0;
    for (const char *c = near + 6; c < je->text + n - 1; c++) {
        if (*c == '\n')
            return je->column;
        chars += !bh_utf8_cont((unsigned char)*c);
    }
    return je->column - chars + 1 >= 1 ? je->column - chars + 1 : je->column;
}

int pipe_json_parse(const char *path, const char *text, size_t len, json_t **root,
                    struct bh_err *err)
{
    json_error_t je;
    *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (*root)
        return 0;
    const char *hint = NULL;
    for (size_t i = 0; !hint && i < BH_NELEM(syntax_hints); i++) /* the first, most specific */
        if (strstr(je.text, syntax_hints[i].text))
            hint = syntax_hints[i].hint;
    bh_err_at(err, path, je.line, token_start(&je), "");
    return bh_err_set(err, BH_EINVAL, "invalid JSON: %s%s%s", je.text, hint ? " — " : "",
                      hint ? hint : "");
}

/* Length-prefixed like bh_sha256_field, so that parts cannot run together. */
static void hash_blob(struct bh_sha256 *h, const char *data, size_t len)
{
    unsigned char pre[8];
    for (int i = 0; i < 8; i++)
        pre[i] = (unsigned char)((uint64_t)len >> (8 * i));
    bh_sha256_update(h, pre, sizeof(pre));
    bh_sha256_update(h, data, len);
}

static void pipeline_hash(struct pipe_loader *ld, const char *text, size_t len)
{
    struct pipeline *p = ld->p;
    struct bh_sha256 *h = bh_sha256_new();
    hash_blob(h, text, len);
    for (size_t i = 0; i < ld->n_inc; i++)
        hash_blob(h, ld->inc_files[i].text, ld->inc_files[i].len);
    for (size_t i = 0; i < p->n_stages; i++) {
        hash_blob(h, ld->sl[i].tpl_text, ld->sl[i].tpl_len);
        hash_blob(h, ld->sl[i].schema_text, ld->sl[i].schema_len);
    }
    for (size_t i = 0; i < p->n_endpoints; i++)
        bh_sha256_field(h, p->endpoints[i].url);
    bh_sha256_final(h, p->hash);
}

static void loader_release(struct pipe_loader *ld)
{
    for (size_t i = 0; ld->sl && i < ld->p->n_stages; i++) {
        free(ld->sl[i].after);
        free(ld->sl[i].after_elem);
        free(ld->sl[i].dep_elem);
        free(ld->sl[i].tpl_text);
        free(ld->sl[i].schema_text);
    }
    for (size_t i = 0; i < ld->n_inc; i++) {
        free(ld->inc_files[i].text);
        json_decref(ld->inc_files[i].root);
        pipe_posindex_free(ld->inc_files[i].ix);
    }
    free(ld->inc_files);
    free(ld->ep_inc);
    free(ld->sl);
    free(ld->stage_names);
    free(ld->override);
    free(ld->found);
    pipe_posindex_free(ld->ix);
}

static int is_yaml(const char *path)
{
    return bh_str_endswith(path, ".yaml") || bh_str_endswith(path, ".yml");
}

int pipe_parse_text(const char *file, const char *text, size_t len, json_t **root,
                    struct pipe_posindex **ix, struct bh_err *err)
{
    if (is_yaml(file))
        return pipe_yaml_parse(file, text, len, root, ix, err);
    int rc = pipe_json_parse(file, text, len, root, err);
    if (rc == 0)
        *ix = pipe_posindex_build(text, len);
    return rc;
}

/* Reads, parses and walks; the errors are left in ld->found. */
static void load(struct pipe_loader *ld)
{
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    int rc = read_pipeline(ld->p->file, &text, &len, ld->err);
    if (rc == 0)
        rc = pipe_parse_text(ld->p->file, text, len, &root, &ld->ix, ld->err);
    if (rc) {
        pipe_ld_keep(ld, NULL); /* nothing can be checked in a file that does not parse */
    } else {
        ld->root = root;
        pipe_ld_object(ld, &top_schema, root, "", ld->p);
        if (!ld->halt && ld->sl) /* the stages were walked: links and cycles are real */
            pipe_ld_links(ld);
        if (!ld->halt && ld->sl)
            pipe_ld_graph(ld);
    }
    if (ld->n_found == 0)
        pipeline_hash(ld, text, len);
    json_decref(root);
    free(text);
}

static int found_cmp(const void *a, const void *b)
{
    const struct pipe_found *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    if (x->sub_line != y->sub_line)
        return x->sub_line < y->sub_line ? -1 : 1;
    if (x->sub_col != y->sub_col)
        return x->sub_col < y->sub_col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The errors in file order, plus a note when the cap cut them short.
 * Returns the first one's code, or 0. */
static int found_take(struct pipe_loader *ld, struct bh_err **errs, size_t *n_errs)
{
    size_t n = ld->n_found;
    if (n == 0)
        return 0;
    qsort(ld->found, n, sizeof(*ld->found), found_cmp);
    struct bh_err *v = bh_xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = ld->found[i].err;
    if (ld->capped) {
        bh_err_at(&v[n], ld->p->file, 0, 0, "");
        bh_err_set(&v[n++], BH_EINVAL,
                   "stopped after %d errors — fix these and check the "
                   "file again",
                   PIPE_MAX_ERRORS);
    }
    int rc = v[0].code;
    *errs = v;
    *n_errs = n;
    return rc;
}

int pipe_load_all(struct pipeline **out, const char *path, const struct pipe_load_opts *opts,
                  struct bh_err **errs, size_t *n_errs)
{
    struct bh_err scratch = {0}, *v = NULL;
    size_t n = 0;
    struct pipe_loader ld = {.p = pipeline_new(path), .opts = opts, .err = &scratch};
    ld.file = ld.p->file;
    load(&ld);
    int rc = found_take(&ld, &v, &n);
    loader_release(&ld);
    if (errs) {
        *errs = v;
        *n_errs = n;
    } else {
        free(v);
    }
    if (rc) {
        pipe_free(ld.p);
        return rc;
    }
    *out = ld.p;
    return 0;
}

int pipe_load(struct pipeline **out, const char *path, const struct pipe_load_opts *opts,
              struct bh_err *err)
{
    struct bh_err *errs = NULL;
    size_t n = 0;
    bh_err_clear(err);
    int rc = pipe_load_all(out, path, opts, &errs, &n);
    if (rc && err)
        *err = errs[0];
    free(errs);
    return rc;
}

/* ---- freeing and lookups ---- */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void stage_release(struct pipe_stage *s)
{
    free(s->name);
    free(s->model);
    free(s->prompt_path);
    free(s->options_json);
    free(s->keep_alive);
    pipe_tpl_release(&s->tpl);
    pipe_tpl_release(&s->system);
    free_strv(s->reads, s->n_reads);
    free(s->deps);
    free(s->for_each);
    free_strv(s->tools, s->n_tools);
    free(s->out_schema_path);
    free(s->out_schema_json);
}

const char *pipe_host_name(const struct pipe_endpoint *e)
{
    return e->host_name ? e->host_name : e->name;
}

int pipe_stage_on(const struct pipeline *p, size_t stage, size_t ep)
{
    size_t own = p->stages[stage].endpoint;
    const struct pipe_endpoint *a = &p->endpoints[own], *b = &p->endpoints[ep];
    return own == ep || (a->n_pool > 1 && b->n_pool > 1 && a->pool == b->pool);
}

void pipe_endpoint_release(struct pipe_endpoint *e)
{
    free(e->name);
    free(e->host_name);
    free(e->provider);
    free(e->url);
    free_strv(e->urls, e->n_urls);
    free(e->api_key_env);
    free(e->basic_auth_env);
    free(e->ca_file);
    for (size_t i = 0; i < e->n_headers; i++) {
        free(e->headers[i].name);
        free(e->headers[i].value);
    }
    free(e->headers);
    free_strv(e->trusted_hosts, e->n_trusted_hosts);
    free(e->included_from);
}

static void source_release(struct pipe_source *s)
{
    free(s->kind);
    free_strv(s->fields, s->n_fields);
    free(s->field_labels);
    for (size_t i = 0; i < s->n_rules; i++)
        free(s->rules[i].glob);
    free(s->rules);
    free_strv(s->detectors, s->n_detectors);
    for (size_t i = 0; i < s->n_custom; i++) {
        free(s->custom[i].id);
        free(s->custom[i].regex);
    }
    free(s->custom);
    free_strv(s->allow_paths, s->n_allow_paths);
    free_strv(s->allow_values, s->n_allow_values);
    free_strv(s->include, s->n_include);
    free_strv(s->exclude, s->n_exclude);
}

void pipe_free(struct pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_stages; i++)
        stage_release(&p->stages[i]);
    free(p->stages);
    for (size_t i = 0; i < p->n_endpoints; i++)
        pipe_endpoint_release(&p->endpoints[i]);
    free(p->endpoints);
    free_strv(p->trusted_networks, p->n_trusted_networks);
    for (size_t i = 0; i < p->n_outputs; i++) {
        free(p->outputs[i].format);
        free(p->outputs[i].path);
    }
    free(p->outputs);
    source_release(&p->source);
    free_strv(p->includes, p->n_includes);
    free_strv(p->labels, p->n_labels);
    free(p->order);
    free(p->name);
    free(p->dir);
    free(p->file);
    free(p);
}

int pipe_label_find(const struct pipeline *p, const char *name)
{
    for (size_t i = 0; name && i < p->n_labels; i++)
        if (strcmp(p->labels[i], name) == 0)
            return (int)i;
    return -1;
}

long pipe_stage_find(const struct pipeline *p, const char *name)
{
    for (size_t i = 0; name && i < p->n_stages; i++)
        if (strcmp(p->stages[i].name, name) == 0)
            return (long)i;
    return -1;
}

int pipe_source_field_label(const struct pipeline *p, const char *field)
{
    for (size_t i = 0; field && i < p->source.n_fields; i++)
        if (strcmp(p->source.fields[i], field) == 0)
            return p->source.field_labels[i];
    return -1;
}
