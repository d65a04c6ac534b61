/* pipeline/stage_kind.c — how a stage runs and what becomes of its output:
 * for_each, scope, kind, tools, max_steps, max_items, output, on_sensitive,
 * declassify.
 *
 * Each handler checks its own value and what it may combine with among the
 * keys above it in the stage table (for_each before scope before kind before
 * tools), so a contradiction is reported once, at the later key. What needs
 * the other stages walked too (a for_each list's format, a reroute target's
 * shape) waits for links.c. */
#include "pipeline/load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/bh_json.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

static const char *const scopes[] = {"item", "batch"};
static const char *const kinds[] = {"chat", "agent", "reduce"};
static const char *const formats[] = {"text", "json", "findings"};
static const char *const sensitives[] = {"fail", "skip", "reroute:STAGE"};
static const char *const redactions[] = {"code", "paths"};

static struct pipe_stage_load *sl_of(struct pipe_loader *ld, const struct pipe_stage *s)
{
    return &ld->sl[pipe_ld_stage_index(ld, s)];
}

/* The index of s in v[n], or -1 with an "unknown <what>" error at path. */
static long one_of(struct pipe_loader *ld, const char *path, const char *what, const char *s,
                   const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, v[i]) == 0)
            return (long)i;
    struct pipe_unknown u = {what, s, "valid", NULL, v, n};
    pipe_ld_unknown(ld, path, &u);
    return -1;
}

/* ---- for_each ---- */

static int for_each_unknown(struct pipe_loader *ld, const struct pipe_stage *s, const char *path)
{
    const struct pipeline *p = ld->p;
    char **known = bh_xcalloc(p->n_stages + 1, sizeof(*known));
    size_t n = 0;
    if (strcmp(p->source.kind, "git") == 0)
        known[n++] = bh_xstrdup("pr.files");
    for (size_t i = 0; i < p->n_stages; i++)
        if (&p->stages[i] != s)
            known[n++] = bh_xasprintf("%s.output", p->stages[i].name);
    struct pipe_unknown u = {"for_each list",
                             s->for_each,
                             "known",
                             "for_each takes "
                             "\"pr.files\" or \"STAGE.output\" (a stage whose output has "
                             "format json)",
                             (const char *const *)known,
                             n};
    int rc = pipe_ld_unknown(ld, path, &u);
    for (size_t i = 0; i < n; i++)
        free(known[i]);
    free(known);
    return rc;
}

int pipe_st_for_each(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    const struct pipeline *p = ld->p;
    s->for_each = bh_xstrdup(json_string_value(v));
    sl_of(ld, s)->for_each_bad = 1; /* until it reads well: the templates' each.* are then
                                       not reported too */
    if (strcmp(s->for_each, "pr.files") == 0) {
        if (strcmp(p->source.kind, "git") != 0)
            return pipe_ld_fail(ld, path,
                                "for_each \"pr.files\" needs a git source (this "
                                "source is kind \"%s\") — run for_each over a stage's output "
                                "instead: \"STAGE.output\"",
                                p->source.kind);
        sl_of(ld, s)->for_each_bad = 0;
        return 0;
    }
    size_t n = strlen(s->for_each);
    if (n > 7 && strcmp(s->for_each + n - 7, ".output") == 0) {
        char *name = bh_xstrndup(s->for_each, n - 7);
        long k = pipe_stage_find(p, name);
        free(name);
        if (k >= 0 && &p->stages[k] == s)
            return pipe_ld_fail(ld, path,
                                "a stage cannot run for each element of its own output "
                                "— name another stage's output, e.g. \"plan.output\"");
        if (k >= 0) {
            s->for_each_stage = k;
            sl_of(ld, s)->for_each_bad = 0;
            return 0;
        }
    }
    return for_each_unknown(ld, s, path);
}

/* ---- scope and kind ---- */

int pipe_st_scope(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    long i = one_of(ld, path, "scope", json_string_value(v), scopes, BH_NELEM(scopes));
    if (i < 0)
        return BH_EINVAL;
    sl_of(ld, s)->scope_set = 1;
    s->scope = i == 0 ? PIPE_SCOPE_ITEM : PIPE_SCOPE_BATCH;
    if (s->scope == PIPE_SCOPE_BATCH && s->for_each)
        return pipe_ld_fail(ld, path,
                            "\"scope\": \"batch\" makes one task over every item, "
                            "for_each a task per element — remove one of them");
    return 0;
}

int pipe_st_kind(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    struct pipe_stage_load *sl = sl_of(ld, s);
    long i = one_of(ld, path, "kind", json_string_value(v), kinds, BH_NELEM(kinds));
    if (i < 0) {
        sl->kind_bad = 1;
        return BH_EINVAL;
    }
    s->kind = i == 0 ? PIPE_KIND_CHAT : i == 1 ? PIPE_KIND_AGENT : PIPE_KIND_REDUCE;
    if (s->kind != PIPE_KIND_REDUCE)
        return 0;
    if (sl->scope_set && s->scope == PIPE_SCOPE_ITEM)
        return pipe_ld_fail(ld, path,
                            "kind \"reduce\" folds every item of the run: it always has "
                            "\"scope\": \"batch\" — remove \"scope\": \"item\"");
    if (s->for_each)
        return pipe_ld_fail(ld, path,
                            "kind \"reduce\" folds every item of the run, for_each "
                            "makes a task per element — remove one of them");
    s->scope = PIPE_SCOPE_BATCH;
    return 0;
}

/* ---- agent and reduce settings ---- */

/* 0 when the stage's kind is want; else an error naming the key. */
static int needs_kind(struct pipe_loader *ld, const struct pipe_stage *s, const char *path,
                      const char *key, enum pipe_kind want)
{
    if (s->kind == want || sl_of(ld, s)->kind_bad)
        return 0;
    const char *w = want == PIPE_KIND_AGENT ? "agent" : "reduce";
    return pipe_ld_fail(ld, path,
                        "\"%s\" is only for kind \"%s\" (this stage is kind \"%s\") "
                        "— add \"kind\": \"%s\", or remove \"%s\"",
                        key, w, kinds[s->kind], w, key);
}

static int tool_check(struct pipe_loader *ld, const char *name, const char *path)
{
    size_t n = 0;
    const char *const *tools = pipe_tool_names(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, tools[i]) == 0)
            return 0;
    struct pipe_unknown u = {"tool", name, "valid", NULL, tools, n};
    return pipe_ld_unknown(ld, path, &u);
}

int pipe_st_tools(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    int rc = needs_kind(ld, s, path, "tools", PIPE_KIND_AGENT);
    if (rc == 0 && strcmp(ld->p->source.kind, "git") != 0)
        rc = pipe_ld_fail(ld, path,
                          "tools read the repository of a git source; this source is "
                          "kind \"%s\" — remove \"tools\"",
                          ld->p->source.kind);
    /* The tools read one pull request's head commit: a batch task has none. */
    if (rc == 0 && s->scope == PIPE_SCOPE_BATCH)
        rc = pipe_ld_fail(ld, path,
                          "tools read the head commit of one pull request, and a "
                          "\"scope\": \"batch\" task reads every item — remove \"tools\", or "
                          "the scope");
    if (rc)
        return rc;
    return pipe_ld_strings(ld, v, path, "a tool name, e.g. \"read_file\"", tool_check, &s->tools,
                           &s->n_tools);
}

int pipe_st_max_steps(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    (void)v;
    return needs_kind(ld, target, path, "max_steps", PIPE_KIND_AGENT);
}

int pipe_st_max_items(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    (void)v;
    return needs_kind(ld, target, path, "max_items", PIPE_KIND_REDUCE);
}

/* ---- output ---- */

static int out_format(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    long i = one_of(ld, path, "output format", json_string_value(v), formats, BH_NELEM(formats));
    if (i < 0)
        return BH_EINVAL;
    s->out_format = i == 0 ? PIPE_OUT_TEXT : i == 1 ? PIPE_OUT_JSON : PIPE_OUT_FINDINGS;
    sl_of(ld, s)->format_text = i == 0;
    sl_of(ld, s)->format_findings = i == 2;
    return 0;
}

static int schema_parse(struct pipe_loader *ld, struct pipe_stage *s, const char *file,
                        const char *path)
{
    struct pipe_stage_load *sl = sl_of(ld, s);
    json_t *root = NULL;
    if (pipe_json_parse(file, sl->schema_text, sl->schema_len, &root, ld->err))
        return pipe_ld_keep(ld, path); /* positioned in the schema file */
    int rc = 0;
    if (!json_is_object(root))
        rc = pipe_ld_fail(ld, path,
                          "output schema \"%s\" is %s — a JSON schema is an object, "
                          "e.g. { \"type\": \"array\", \"items\": { \"type\": \"string\" } }",
                          file, pipe_json_kind(root));
    else
        s->out_schema_json = bh_json_dump(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return rc;
}

static int out_schema(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    struct pipe_stage_load *sl = sl_of(ld, s);
    if (sl->format_text)
        return pipe_ld_fail(ld, path,
                            "a schema describes JSON: \"format\": \"text\" cannot have "
                            "one — write \"format\": \"json\", or remove \"schema\"");
    if (sl->format_findings)
        return pipe_ld_fail(ld, path,
                            "\"format\": \"findings\" has its own schema (path, line, "
                            "severity, message, ...) — remove \"schema\", or write \"format\": "
                            "\"json\" to use yours");
    int rc = pipe_ld_nonempty(ld, v, path, "the schema file's path, e.g. \"schemas/plan.json\"",
                              &s->out_schema_path);
    if (rc)
        return rc;
    s->out_format = PIPE_OUT_JSON;
    char *file = NULL;
    rc = pipe_ld_file(ld, s->out_schema_path, path, "output schema", &file);
    if (rc)
        return rc;
    rc = pipe_read_file(file, PIPE_FILE_MAX, &sl->schema_text, &sl->schema_len);
    if (rc == BH_ETOOBIG)
        rc = pipe_ld_fail(ld, path, "output schema \"%s\" is larger than %zu KiB", file,
                          PIPE_FILE_MAX >> 10);
    else if (rc)
        rc = pipe_ld_fail(ld, path,
                          "cannot read output schema \"%s\": %s — the path is "
                          "relative to the pipeline file's folder",
                          file, strerror(errno));
    else
        rc = schema_parse(ld, s, file, path);
    free(file);
    return rc;
}

static const struct pipe_key output_keys[] = {
    {"format", PIPE_JT_STRING, 0, out_format, "\"text\" (default), \"json\" or \"findings\"", 0,
     NULL, NULL},
    {"schema", PIPE_JT_STRING, 0, out_schema,
     "a JSON schema file the reply must follow, relative to the pipeline file, e.g. "
     "\"schemas/plan.json\"",
     0, NULL, NULL},
};

static const struct pipe_schema output_schema = {
    output_keys, BH_NELEM(output_keys),
    "a stage's output is an object: { \"format\": \"json\", \"schema\": \"schemas/plan.json\" }",
    NULL, 0};

int pipe_st_output(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_object(ld, &output_schema, v, path, target);
}

/* ---- on_sensitive ---- */

static int reroute_parse(struct pipe_loader *ld, struct pipe_stage *s, const char *name,
                         const char *path)
{
    if (!name[0])
        return pipe_ld_fail(ld, path,
                            "\"reroute:\" needs a stage's name, e.g. "
                            "\"reroute:plan-local\"");
    long k = pipe_stage_find(ld->p, name);
    if (k < 0) {
        struct pipe_unknown u = {"stage",
                                 name,
                                 "known",
                                 "reroute names a stage of this "
                                 "pipeline that may take what this one turns away",
                                 ld->stage_names,
                                 ld->p->n_stages};
        return pipe_ld_unknown(ld, path, &u);
    }
    if (&ld->p->stages[k] == s)
        return pipe_ld_fail(ld, path,
                            "a stage cannot reroute to itself — name a stage (usually "
                            "local) that may take what \"%s\" turns away",
                            s->name);
    s->on_sensitive = PIPE_ONS_REROUTE;
    s->reroute = k;
    return 0;
}

int pipe_st_on_sensitive(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    const char *t = json_string_value(v);
    if (strncmp(t, "reroute:", 8) == 0 || strcmp(t, "reroute") == 0)
        return reroute_parse(ld, s, t[7] ? t + 8 : "", path);
    long i = one_of(ld, path, "on_sensitive", t, sensitives, BH_NELEM(sensitives));
    if (i < 0)
        return BH_EINVAL;
    s->on_sensitive = i == 0 ? PIPE_ONS_FAIL : PIPE_ONS_SKIP;
    return 0;
}

/* ---- on_truncated ---- */

static const char *const truncateds[] = {"fail", "keep"};

int pipe_st_on_truncated(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    long i =
        one_of(ld, path, "on_truncated", json_string_value(v), truncateds, BH_NELEM(truncateds));
    if (i < 0)
        return BH_EINVAL;
    ((struct pipe_stage *)target)->keep_truncated = i == 1;
    return 0;
}

/* ---- declassify ---- */

static int dc_to(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_label(ld, v, path, &((struct pipe_declassify *)target)->to);
}

static int dc_rare(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    (void)ld;
    (void)path;
    ((struct pipe_declassify *)target)->no_rare_tokens = json_is_true(v);
    return 0;
}

static int dc_detectors(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    (void)ld;
    (void)path;
    ((struct pipe_declassify *)target)->detectors = json_is_true(v);
    return 0;
}

static int redact_check(struct pipe_loader *ld, const char *s, const char *path)
{
    return one_of(ld, path, "redaction", s, redactions, BH_NELEM(redactions)) < 0 ? BH_EINVAL : 0;
}

static int dc_redact(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_declassify *d = target;
    char **got = NULL;
    size_t n = 0;
    int rc = pipe_ld_strings(ld, v, path, "\"code\" or \"paths\"", redact_check, &got, &n);
    for (size_t i = 0; i < n; i++) {
        d->redact_code |= strcmp(got[i], "code") == 0;
        d->redact_paths |= strcmp(got[i], "paths") == 0;
        free(got[i]);
    }
    free(got);
    return rc;
}

static const struct pipe_key declassify_keys[] = {
    {"to", PIPE_JT_STRING, 1, dc_to, "the label the output may carry, e.g. \"internal\"", 0, NULL,
     NULL},
    {"no_verbatim_tokens", PIPE_JT_INT, 0, NULL,
     "the shortest run of input tokens the output may not repeat (0: off)", 0, NULL, NULL},
    {"no_rare_tokens", PIPE_JT_BOOL, 0, dc_rare,
     "true (default): a rare token (a key, a long number, a high-entropy mix of letters "
     "and digits) copied from an input above `to` keeps the label",
     0, NULL, NULL},
    {"detectors", PIPE_JT_BOOL, 0, dc_detectors,
     "true (default): a detector hit in the output keeps its label", 0, NULL, NULL},
    {"redact", PIPE_JT_ARRAY, 0, dc_redact,
     "what is removed first: [\"code\"], [\"paths\"] or both", 0, NULL, NULL},
    {"max_chars", PIPE_JT_INT, 0, NULL,
     "the longest output that may be declassified, in characters", 0, NULL, NULL},
};

static const struct pipe_range declassify_ranges[] = {
    PIPE_RANGE("no_verbatim_tokens", struct pipe_declassify, no_verbatim_tokens, 0, 1000),
    PIPE_RANGE("max_chars", struct pipe_declassify, max_chars, 1, 10000000),
};

static const struct pipe_schema declassify_schema = {
    declassify_keys, BH_NELEM(declassify_keys),
    "declassify is an object: { \"to\": \"internal\", \"no_verbatim_tokens\": 8 }",
    declassify_ranges, BH_NELEM(declassify_ranges)};

int pipe_st_declassify(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    struct pipe_declassify *d = &s->declassify;
    const struct pipe_pos *pos = pipe_posindex_get(ld->ix, path);
    *d = (struct pipe_declassify){.to = -1,
                                  .no_verbatim_tokens = 8,
                                  .no_rare_tokens = 1,
                                  .detectors = 1,
                                  .line = pos ? pos->line : 0,
                                  .col = pos ? pos->col : 0};
    int rc = pipe_ld_object(ld, &declassify_schema, v, path, d);
    /* Findings point at files: redacting paths would leave them pointing nowhere. */
    if (rc == 0 && d->redact_paths && s->out_format == PIPE_OUT_FINDINGS) {
        char *at = bh_xasprintf("%s.redact", path);
        rc = pipe_ld_fail(ld, at,
                          "findings name the files they are about, and \"paths\" "
                          "would redact them — redact \"code\" only on a findings stage");
        free(at);
    }
    d->enabled = rc == 0;
    return rc;
}
