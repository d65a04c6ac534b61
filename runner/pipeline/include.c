/* pipeline/include.c — the top-level `include`: files that declare endpoints
 * shared by several pipelines (the GPU box's URL, its headers, its trusted
 * hosts, written once).
 *
 * An included file is read, parsed (JSON or YAML, by its name) and checked
 * here against a small schema: it holds `endpoints` and, optionally,
 * `version`, `name` and `labels` (the including file's labels, when given,
 * so that a clearance it declares means the same thing). Everything else is
 * refused with a message that says where it belongs. Includes are one level
 * deep: a file that includes another is refused, which keeps cycles and
 * "where did this endpoint come from" out of the language. The endpoints
 * themselves are walked by endpoints.c, after the including file's own. An
 * included file that cannot be read or parsed, or has no readable
 * `endpoints`, halts the walk: the stages would report its endpoints as
 * unknown, which is noise. */
#include "pipeline/load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

static int inc_name(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    (void)target;
    char *name = NULL;
    int rc = pipe_ld_nonempty(ld, v, path, "the file's name, or leave \"name\" out", &name);
    free(name); /* documentation only */
    return rc;
}

static int inc_labels(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    const struct pipeline *p = target;
    int same = json_array_size(v) == p->n_labels;
    for (size_t i = 0; same && i < p->n_labels; i++) {
        const char *l = json_string_value(json_array_get(v, i));
        same = l && strcmp(l, p->labels[i]) == 0;
    }
    if (same)
        return 0;
    char *want = bh_str_join((const char *const *)p->labels, p->n_labels);
    int rc = pipe_ld_fail(ld, path,
                          "the labels differ from those of %s (%s) — an included "
                          "file's \"labels\", when given, must be the same list in the same "
                          "order; or leave them out",
                          ld->p->file, want);
    free(want);
    return rc;
}

static int inc_endpoints(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    (void)target; /* walked with the including file's own (endpoints.c) */
    if (json_object_size(v) > 0)
        return 0;
    return pipe_ld_halt(ld, pipe_ld_fail(ld, path,
                                         "expected at least one endpoint, found none "
                                         "— an included file contributes endpoints"));
}

#define ELSEWHERE(key)                                                                             \
    "an included file holds only \"endpoints\" (and \"version\", \"name\", \"labels\") — "       \
    "move \"" key "\" to the including file"

static const struct pipe_key inc_keys[] = {
    {"version", PIPE_JT_INT, 0, pipe_ld_version, "the file format version: 1", 0, NULL, NULL},
    {"name", PIPE_JT_STRING, 0, inc_name, "a name for the file, e.g. \"gpu-hosts\"", 0, NULL, NULL},
    {"labels", PIPE_JT_ARRAY, 0, inc_labels, "the including file's labels, lowest first", 0, NULL,
     NULL},
    {"endpoints", PIPE_JT_OBJECT, 1, inc_endpoints,
     "the shared model servers, e.g. { \"gpu-box\": { \"provider\": \"ollama\", \"url\": "
     "\"http://127.0.0.1:11434\" } }",
     1, NULL, NULL},
    {"include", PIPE_JT_ARRAY, 0, NULL, NULL, 0, NULL,
     "an included file cannot include other files: include is one level deep — list those "
     "files in the including file's \"include\" instead"},
    {"source", PIPE_JT_OBJECT, 0, NULL, NULL, 0, NULL, ELSEWHERE("source")},
    {"stages", PIPE_JT_OBJECT, 0, NULL, NULL, 0, NULL, ELSEWHERE("stages")},
    {"outputs", PIPE_JT_ARRAY, 0, NULL, NULL, 0, NULL, ELSEWHERE("outputs")},
    {"trusted_networks", PIPE_JT_ARRAY, 0, NULL, NULL, 0, NULL, ELSEWHERE("trusted_networks")},
};

static const struct pipe_schema inc_schema = {
    inc_keys, BH_NELEM(inc_keys),
    "an included file is an object: { \"endpoints\": { \"gpu-box\": { ... } } }", NULL, 0};

static int inc_read(struct pipe_loader *ld, struct pipe_include_load *inc, const char *path)
{
    int rc = pipe_read_file(inc->file, PIPE_FILE_MAX, &inc->text, &inc->len);
    if (rc == BH_ETOOBIG)
        return pipe_ld_fail(ld, path, "included file \"%s\" is larger than %zu KiB", inc->file,
                            PIPE_FILE_MAX >> 10);
    if (rc)
        return pipe_ld_fail(ld, path,
                            "cannot read included file \"%s\": %s — the path is "
                            "relative to the pipeline file's folder",
                            inc->file, strerror(errno));
    rc = pipe_parse_text(inc->file, inc->text, inc->len, &inc->root, &inc->ix, ld->err);
    if (rc) { /* positioned in the included file */
        struct pipe_ld_place saved;
        pipe_ld_enter(ld, inc, &saved);
        pipe_ld_keep(ld, NULL);
        pipe_ld_leave(ld, &saved);
    }
    return rc;
}

static int include_one(struct pipe_loader *ld, json_t *e, const char *path)
{
    struct pipeline *p = ld->p;
    char *rel = NULL;
    int rc = pipe_ld_expect(ld, e, PIPE_JT_STRING, path, "a file's path, e.g. \"endpoints.json\"");
    if (rc == 0)
        rc = pipe_ld_nonempty(ld, e, path, "a file's path, e.g. \"endpoints.json\"", &rel);
    if (rc) /* its endpoints are missing: the stages' checks would be noise */
        return pipe_ld_halt(ld, rc);
    char *file = NULL;
    rc = pipe_ld_file(ld, rel, path, "included file", &file);
    free(rel);
    if (rc)
        return pipe_ld_halt(ld, rc);
    for (size_t i = 0; i < p->n_includes; i++)
        if (strcmp(p->includes[i], file) == 0) {
            rc = pipe_ld_fail(ld, path, "\"%s\" is included twice — list it once", file);
            free(file);
            return rc;
        }
    p->includes[p->n_includes++] = file;
    const struct pipe_pos *pos = pipe_posindex_get(ld->ix, path);
    struct pipe_include_load *inc = &ld->inc_files[ld->n_inc++];
    *inc = (struct pipe_include_load){
        file, NULL, 0, NULL, NULL, pos ? pos->line : 0, pos ? pos->col : 0};
    rc = inc_read(ld, inc, path);
    if (rc)
        return pipe_ld_halt(ld, rc);
    struct pipe_ld_place saved;
    pipe_ld_enter(ld, inc, &saved);
    rc = pipe_ld_object(ld, &inc_schema, inc->root, "", p);
    pipe_ld_leave(ld, &saved);
    return rc;
}

int pipe_ld_include(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = json_array_size(v);
    if (n == 0 || n > PIPE_MAX_INCLUDES)
        return pipe_ld_halt(ld, pipe_ld_fail(ld, path,
                                             "expected 1 to %d files, found %zu — e.g. "
                                             "[\"endpoints.json\"], or remove \"include\"",
                                             PIPE_MAX_INCLUDES, n));
    p->includes = bh_xcalloc(n, sizeof(*p->includes));
    ld->inc_files = bh_xcalloc(n, sizeof(*ld->inc_files));
    int rc = 0;
    for (size_t i = 0; !ld->halt && i < n; i++) {
        char elem[PIPE_PATH_MAX];
        pipe_ld_path_index(elem, path, i);
        int irc = include_one(ld, json_array_get(v, i), elem);
        rc = rc ? rc : irc;
    }
    if (!ld->halt && !json_object_get(ld->root, "endpoints"))
        return pipe_ld_endpoints(ld, p, NULL, "endpoints");
    return rc;
}
