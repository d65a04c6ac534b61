/* pipeline/source.c — the `source` section: its kind and field labels, path
 * rules, the allowlist, and the keys of kind "files" (`detectors` is in
 * detectors.c). Globs are checked with bh_glob_problem(), the matcher the
 * sources and the labeller use, so a glob that loads is a glob that works.
 * The source's `kind` halts the walk when it is missing or unknown: every
 * template reads its fields. */
#include "pipeline/load.h"

#include <stdlib.h>
#include <string.h>

#include "util/bh_glob.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define MAX_BYTES_CAP ((long)1 << 30)

static int src_kind(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    size_t n = 0;
    const char *kind = json_string_value(v);
    const char *const *fields = pipe_source_kind_fields(kind, &n);
    if (!fields) {
        static const char *const kinds[] = {"git", "files"};
        struct pipe_unknown u = {"source kind", kind, "valid", NULL, kinds, BH_NELEM(kinds)};
        return pipe_ld_halt(ld, pipe_ld_unknown(ld, path, &u)); /* templates read its fields */
    }
    s->kind = bh_xstrdup(kind);
    s->fields = bh_xcalloc(n, sizeof(*s->fields));
    s->field_labels = bh_xcalloc(n, sizeof(*s->field_labels));
    for (size_t i = 0; i < n; i++) {
        s->fields[i] = bh_xstrdup(fields[i]);
        s->field_labels[i] = s->label;
    }
    s->n_fields = n;
    return 0;
}

static int src_label(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    int rc = pipe_ld_label(ld, v, path, &s->label);
    for (size_t i = 0; rc == 0 && i < s->n_fields; i++)
        s->field_labels[i] = s->label; /* `fields`, walked next, overrides these */
    return rc;
}

static int src_field_unknown(struct pipe_loader *ld, const struct pipe_source *s, const char *path,
                             const char *key)
{
    const char *const *fields = (const char *const *)s->fields;
    const char *best = bh_str_suggest(key, fields, s->n_fields);
    char *known = bh_str_join(fields, s->n_fields);
    int rc = best ? pipe_ld_fail_key(ld, path, key,
                                     "unknown field \"%s\" of source kind "
                                     "\"%s\" — did you mean \"%s\"?",
                                     key, s->kind, best)
                  : pipe_ld_fail_key(ld, path, key,
                                     "unknown field \"%s\" of source kind "
                                     "\"%s\" (valid: %s)",
                                     key, s->kind, known);
    free(known);
    return rc;
}

static int src_fields(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    const char *key;
    json_t *l;
    int rc = 0;
    json_object_foreach(v, key, l)
    {
        size_t i = 0;
        while (i < s->n_fields && strcmp(s->fields[i], key) != 0)
            i++;
        if (ld->halt)
            break;
        char child[PIPE_PATH_MAX];
        pipe_ld_path_key(child, path, key);
        int frc = i == s->n_fields ? src_field_unknown(ld, s, path, key)
                                   : pipe_ld_label(ld, l, child, &s->field_labels[i]);
        rc = rc ? rc : frc;
    }
    return rc;
}

/* ---- kind "files" ---- */

static int files_only(struct pipe_loader *ld, const struct pipe_source *s, const char *path,
                      const char *key)
{
    if (strcmp(s->kind, "files") == 0)
        return 0;
    return pipe_ld_fail(ld, path,
                        "\"%s\" is only for kind \"files\" (this source is kind "
                        "\"%s\") — remove it",
                        key, s->kind);
}

static int glob_check(struct pipe_loader *ld, const char *glob, const char *path)
{
    const char *why = bh_glob_problem(glob);
    if (!why)
        return 0; /* else why says what to do, too */
    return pipe_ld_fail(ld, path, "invalid path glob \"%s\": %s", glob, why);
}

#define GLOB_WHAT "a path glob, e.g. \"docs/**\" or \"**/*.md\""

static int src_include(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    int rc = files_only(ld, s, path, "include");
    if (rc == 0 && json_array_size(v) == 0)
        rc = pipe_ld_fail(ld, path,
                          "expected at least one glob, found none — leave "
                          "\"include\" out to read every file");
    if (rc == 0)
        rc = pipe_ld_strings(ld, v, path, GLOB_WHAT, glob_check, &s->include, &s->n_include);
    return rc;
}

static int src_exclude(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    int rc = files_only(ld, s, path, "exclude");
    if (rc == 0)
        rc = pipe_ld_strings(ld, v, path, GLOB_WHAT, glob_check, &s->exclude, &s->n_exclude);
    return rc;
}

/* Before its range row stores it. */
static int src_max_bytes(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    (void)v;
    return files_only(ld, target, path, "max_bytes");
}

/* ---- rules ---- */

static int rule_path(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_rule *r = target;
    int rc = json_string_length(v) == 0
                 ? pipe_ld_fail(ld, path, "found an empty string — write " GLOB_WHAT)
                 : glob_check(ld, json_string_value(v), path);
    if (rc == 0)
        r->glob = bh_xstrdup(json_string_value(v));
    return rc;
}

static int rule_label(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_label(ld, v, path, &((struct pipe_rule *)target)->label);
}

static const struct pipe_key rule_keys[] = {
    {"path", PIPE_JT_STRING, 1, rule_path, GLOB_WHAT, 0, NULL, NULL},
    {"label", PIPE_JT_STRING, 1, rule_label,
     "the label of the files it matches, e.g. "
     "\"restricted\"",
     0, NULL, NULL},
};

static const struct pipe_schema rule_schema = {
    rule_keys, BH_NELEM(rule_keys),
    "a rule is an object: { \"path\": \"**/*.pem\", \"label\": \"restricted\" }", NULL, 0};

static int src_rules(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    size_t n = json_array_size(v);
    if (n > PIPE_MAX_LIST)
        return pipe_ld_fail(ld, path, "too many rules (%zu, at most %d)", n, PIPE_MAX_LIST);
    s->rules = bh_xcalloc(n ? n : 1, sizeof(*s->rules));
    int rc = 0;
    for (size_t i = 0; !ld->halt && i < n; i++) {
        char elem[PIPE_PATH_MAX];
        pipe_ld_path_index(elem, path, i);
        const struct pipe_pos *pos = pipe_posindex_get(ld->ix, elem);
        struct pipe_rule r = {NULL, -1, pos ? pos->line : 0, pos ? pos->col : 0};
        int rrc = pipe_ld_object(ld, &rule_schema, json_array_get(v, i), elem, &r);
        if (rrc == 0 && r.glob && r.label >= 0)
            s->rules[s->n_rules++] = r;
        else
            free(r.glob);
        rc = rc ? rc : rrc;
    }
    return rc;
}

/* ---- allow ---- */

static int allow_paths(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    return pipe_ld_strings(ld, v, path, GLOB_WHAT, glob_check, &s->allow_paths, &s->n_allow_paths);
}

static int allow_values(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    return pipe_ld_strings(ld, v, path,
                           "a literal text that is never a hit, e.g. a documented "
                           "test key",
                           NULL, &s->allow_values, &s->n_allow_values);
}

static const struct pipe_key allow_keys[] = {
    {"paths", PIPE_JT_ARRAY, 0, allow_paths,
     "globs of files no detector scans, e.g. [\"tests/fixtures/**\"]", 0, NULL, NULL},
    {"values", PIPE_JT_ARRAY, 0, allow_values,
     "literal texts that are never hits, e.g. [\"AKIAIOSFODNN7EXAMPLE\"]", 0, NULL, NULL},
};

static const struct pipe_schema allow_schema = {
    allow_keys, BH_NELEM(allow_keys),
    "\"allow\" is an object: { \"paths\": [\"tests/fixtures/**\"], \"values\": [...] }", NULL, 0};

static int src_allow(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    int rc = pipe_ld_object(ld, &allow_schema, v, path, target);
    if (rc == 0 && !json_object_get(v, "paths") && !json_object_get(v, "values"))
        rc = pipe_ld_fail(ld, path,
                          "expected \"paths\" or \"values\", found neither — e.g. "
                          "{ \"paths\": [\"tests/fixtures/**\"] }, or remove \"allow\"");
    return rc;
}

static const struct pipe_key source_keys[] = {
    {"kind", PIPE_JT_STRING, 1, src_kind, "where work items come from: \"git\" or \"files\"", 1,
     NULL, NULL},
    {"label", PIPE_JT_STRING, 0, src_label,
     "the label of every field not listed in \"fields\" (default: the top label)", 0, NULL, NULL},
    {"fields", PIPE_JT_OBJECT, 0, src_fields,
     "field name to label, e.g. { \"pr.title\": \"internal\" }", 0, NULL, NULL},
    {"include", PIPE_JT_ARRAY, 0, src_include, "globs of the documents to read, e.g. [\"**/*.md\"]",
     0, NULL, NULL},
    {"exclude", PIPE_JT_ARRAY, 0, src_exclude,
     "globs of the documents to leave out, e.g. [\"drafts/**\"]", 0, NULL, NULL},
    {"max_bytes", PIPE_JT_INT, 0, src_max_bytes, "the largest document read, in bytes", 0, NULL,
     NULL},
    {"rules", PIPE_JT_ARRAY, 0, src_rules,
     "path rules, e.g. [{ \"path\": \"**/*.pem\", \"label\": \"restricted\" }]", 0, NULL, NULL},
    {"detectors", PIPE_JT_ARRAY, 0, pipe_src_detectors,
     "detector names or groups, or custom detectors, e.g. [\"cloud-keys\", \"email\"]", 0, NULL,
     NULL},
    {"allow", PIPE_JT_OBJECT, 0, src_allow,
     "what detectors leave alone, e.g. { \"paths\": [\"tests/fixtures/**\"] }", 0, NULL, NULL},
};

static const struct pipe_range source_ranges[] = {
    PIPE_RANGE("max_bytes", struct pipe_source, max_bytes, 1, MAX_BYTES_CAP),
};

static const struct pipe_schema source_schema = {
    source_keys, BH_NELEM(source_keys),
    "the source is an object: { \"kind\": \"git\", \"label\": \"confidential\" }", source_ranges,
    BH_NELEM(source_ranges)};

int pipe_ld_source(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    p->source.label = (int)p->n_labels - 1; /* unknown means top */
    p->source.max_bytes = (long)1 << 20;
    return pipe_ld_object(ld, &source_schema, v, path, &p->source);
}
