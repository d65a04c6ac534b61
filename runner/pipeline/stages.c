/* pipeline/stages.c — the `stages` section: the stage table, the walk, and
 * the keys that only name things (endpoint, model, after, clearance,
 * options, keep_alive). The messages (system, prompt, user) are in
 * stage_tpl.c; how a stage runs (for_each, scope, kind, tools, output,
 * on_sensitive, declassify) in stage_kind.c. Stage names are collected
 * before any stage is walked, so every key can name stages declared later in
 * the file. What needs every stage walked (reroute targets, for_each lists)
 * is checked in links.c, the graph (deps, cycles, order) built in graph.c. */
#include "pipeline/load.h"

#include <stdlib.h>
#include <string.h>

#include "util/bh_json.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

size_t pipe_ld_stage_index(const struct pipe_loader *ld, const struct pipe_stage *s)
{
    return (size_t)(s - ld->p->stages);
}

static int st_endpoint(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    struct pipeline *p = ld->p;
    const char *name = json_string_value(v);
    const char **names = bh_xcalloc(p->n_endpoints + 1, sizeof(*names));
    for (size_t i = 0; i < p->n_endpoints; i++) {
        names[i] = p->endpoints[i].name;
        if (strcmp(name, names[i]) == 0) {
            s->endpoint = i;
            free(names);
            return 0;
        }
    }
    struct pipe_unknown u = {"endpoint", name,
                             "known",    "declare it under \"endpoints\" or use one of these",
                             names,      p->n_endpoints};
    int rc = pipe_ld_unknown(ld, path, &u);
    free(names);
    return rc;
}

static int st_model(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_nonempty(ld, v, path, "the model name, e.g. \"qwen2.5-coder:7b\"",
                            &((struct pipe_stage *)target)->model);
}

static int after_one(struct pipe_loader *ld, struct pipe_stage_load *sl, json_t *e,
                     const char *path, size_t i)
{
    int rc = pipe_ld_expect(ld, e, PIPE_JT_STRING, path, "the name of a stage to wait for");
    if (rc)
        return rc;
    const char *name = json_string_value(e);
    long k = pipe_stage_find(ld->p, name);
    if (k < 0) {
        struct pipe_unknown u = {"stage",
                                 name,
                                 "known",
                                 "\"after\" names stages of this "
                                 "pipeline",
                                 ld->stage_names,
                                 ld->p->n_stages};
        return pipe_ld_unknown(ld, path, &u);
    }
    sl->after[sl->n_after] = (size_t)k;
    sl->after_elem[sl->n_after++] = i;
    return 0;
}

static int st_after(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage_load *sl = &ld->sl[pipe_ld_stage_index(ld, target)];
    size_t n = json_array_size(v);
    sl->after = bh_xcalloc(n ? n : 1, sizeof(*sl->after));
    sl->after_elem = bh_xcalloc(n ? n : 1, sizeof(*sl->after_elem));
    int rc = 0;
    for (size_t i = 0; !ld->halt && i < n; i++) {
        char elem[PIPE_PATH_MAX];
        pipe_ld_path_index(elem, path, i);
        int arc = after_one(ld, sl, json_array_get(v, i), elem, i);
        rc = rc ? rc : arc;
    }
    return rc;
}

static int st_clearance(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_label(ld, v, path, &((struct pipe_stage *)target)->clearance);
}

/* Passed to the model as they are (Ollama "options"; mapped for openai and
 * anthropic). Keep num_ctx the same for every stage of one model: Ollama
 * reloads a model whose runner options change. */
static int st_options(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    json_t *val;
    const char *key;
    json_object_foreach(v, key, val)
    {
        if (json_is_number(val) || json_is_boolean(val) || json_is_string(val) ||
            json_is_array(val))
            continue;
        char *sub = bh_xasprintf("%s.%s", path, key);
        int rc = pipe_ld_fail(ld, sub,
                              "expected a number, a boolean, a string or an array "
                              "(e.g. \"stop\": [\"###\"]) — options go to the model "
                              "as they are");
        free(sub);
        return rc;
    }
    struct pipe_stage *s = target;
    json_t *ctx = json_object_get(v, "num_ctx");
    s->num_ctx =
        json_is_integer(ctx) && json_integer_value(ctx) > 0 ? (long)json_integer_value(ctx) : 0;
    s->options_json = bh_json_dump(v, JSON_COMPACT | JSON_SORT_KEYS);
    return 0;
}

/* A Go duration with its unit ("10m", "1h30m", "-1s"), as Ollama takes it:
 * a bare number would be read as seconds by some servers and refused by others. */
static int st_keep_alive(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    const char *t = json_string_value(v);
    size_t n = t ? strspn(t, "-0123456789.hms") : 0;
    if (!t || !t[0] || t[n] != '\0' || !strpbrk(t, "hms") || t[strlen(t) - 1] == '.')
        return pipe_ld_fail(ld, path,
                            "expected a duration such as \"10m\", \"1h\" or \"-1s\" "
                            "(negative: keep loaded)");
    s->keep_alive = bh_xstrdup(t);
    return 0;
}

/* Order matters: a handler may rely on the keys above it (the templates on
 * for_each, tools on kind, the output schema on the format). */
static const struct pipe_key stage_keys[] = {
    {"endpoint", PIPE_JT_STRING, 1, st_endpoint, "the name of an endpoint, e.g. \"gpu-box\"", 0,
     NULL, NULL},
    {"model", PIPE_JT_STRING, 1, st_model,
     "the model name as the endpoint knows it, e.g. \"qwen2.5-coder:7b\"", 0, NULL, NULL},
    {"for_each", PIPE_JT_STRING, 0, pipe_st_for_each,
     "the list to make a task per element of: \"pr.files\" or \"STAGE.output\"", 0, NULL, NULL},
    {"scope", PIPE_JT_STRING, 0, pipe_st_scope,
     "\"item\" (a task per work item) or \"batch\" (one task over every item)", 0, NULL, NULL},
    {"kind", PIPE_JT_STRING, 0, pipe_st_kind, "\"chat\", \"agent\" or \"reduce\"", 0, NULL, NULL},
    {"system", PIPE_JT_STRING, 0, pipe_st_system,
     "the system message, inline, e.g. \"You review code. Be brief.\"", 0, NULL, NULL},
    {"prompt", PIPE_JT_STRING, 1, pipe_st_prompt,
     "the user message: \"prompt\" names a template file, relative to the pipeline file "
     "(e.g. \"prompts/review.md\"); \"user\" holds it inline",
     0, "user", NULL},
    {"user", PIPE_JT_STRING, 0, pipe_st_user,
     "the user message, inline, e.g. \"Review this diff: {{pr.diff}}\"", 0, NULL, NULL},
    {"after", PIPE_JT_ARRAY, 0, st_after, "names of stages to wait for, e.g. [\"plan\"]", 0, NULL,
     NULL},
    {"clearance", PIPE_JT_STRING, 0, st_clearance, "the highest label the stage may receive", 0,
     NULL, NULL},
    {"options", PIPE_JT_OBJECT, 0, st_options,
     "model options, e.g. { \"temperature\": 0, \"num_ctx\": 16384 }", 0, NULL, NULL},
    {"keep_alive", PIPE_JT_STRING, 0, st_keep_alive,
     "how long the model stays loaded, e.g. \"10m\"", 0, NULL, NULL},
    {"tools", PIPE_JT_ARRAY, 0, pipe_st_tools,
     "tools an agent may call, e.g. [\"read_file\", \"grep\"]", 0, NULL, NULL},
    {"max_steps", PIPE_JT_INT, 0, pipe_st_max_steps, "model requests per agent task", 0, NULL,
     NULL},
    {"max_items", PIPE_JT_INT, 0, pipe_st_max_items, "items folded per reduce request", 0, NULL,
     NULL},
    {"output", PIPE_JT_OBJECT, 0, pipe_st_output,
     "the reply's format, e.g. { \"format\": \"json\", \"schema\": \"schemas/plan.json\" }", 0,
     NULL, NULL},
    {"on_sensitive", PIPE_JT_STRING, 0, pipe_st_on_sensitive,
     "\"fail\", \"skip\" or \"reroute:STAGE\"", 0, NULL, NULL},
    {"on_truncated", PIPE_JT_STRING, 0, pipe_st_on_truncated,
     "\"fail\" (a reply the server cut for length fails the task) or \"keep\" (done, with a "
     "note)",
     0, NULL, NULL},
    {"declassify", PIPE_JT_OBJECT, 0, pipe_st_declassify,
     "how the output may carry a lower label, e.g. { \"to\": \"internal\" }", 0, NULL, NULL},
};

static const struct pipe_range stage_ranges[] = {
    PIPE_RANGE("max_steps", struct pipe_stage, max_steps, 1, 64),
    PIPE_RANGE("max_items", struct pipe_stage, max_items, 2, 1000),
};

static const struct pipe_schema stage_schema = {
    stage_keys, BH_NELEM(stage_keys),
    "a stage is an object: { \"endpoint\": ..., \"model\": ..., \"prompt\": ... }", stage_ranges,
    BH_NELEM(stage_ranges)};

static int stages_names(struct pipe_loader *ld, json_t *v, const char *path)
{
    struct pipeline *p = ld->p;
    const char *key;
    json_t *s;
    json_object_foreach(v, key, s)
    {
        if (!pipe_name_ok(key, 0)) /* `after` and templates name stages */
            return pipe_ld_halt(ld, pipe_ld_fail_key(ld, path, key,
                                                     "invalid stage name \"%s\" — use letters, "
                                                     "digits, '_' and '-' (templates read it as "
                                                     "{{ name.output }})",
                                                     key));
        struct pipe_stage *st = &p->stages[p->n_stages];
        st->name = bh_xstrdup(key);
        st->clearance = -1;
        st->for_each_stage = -1;
        st->reroute = -1;
        st->max_steps = 8;
        st->max_items = 20;
        ld->stage_names[p->n_stages++] = st->name;
    }
    return 0;
}

int pipe_ld_stages(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = json_object_size(v);
    if (n == 0)
        return pipe_ld_fail(ld, path,
                            "expected at least one stage, found none — e.g. "
                            "\"review\": { \"endpoint\": \"gpu-box\", \"model\": "
                            "\"qwen2.5-coder:7b\", \"prompt\": \"prompts/review.md\" }");
    if (n > PIPE_MAX_STAGES)
        return pipe_ld_halt(
            ld, pipe_ld_fail(ld, path, "too many stages (%zu, at most %d)", n, PIPE_MAX_STAGES));
    p->stages = bh_xcalloc(n, sizeof(*p->stages));
    ld->stage_names = bh_xcalloc(n, sizeof(*ld->stage_names));
    ld->sl = bh_xcalloc(n, sizeof(*ld->sl));
    int rc = stages_names(ld, v, path);
    for (size_t i = 0; !ld->halt && i < p->n_stages; i++) {
        struct pipe_stage *s = &p->stages[i];
        char child[PIPE_PATH_MAX];
        pipe_ld_path_key(child, path, s->name);
        const struct pipe_pos *pos = pipe_posindex_get(ld->ix, child);
        s->line = pos ? pos->line : 0;
        s->col = pos ? pos->col : 0;
        int src = pipe_ld_object(ld, &stage_schema, json_object_get(v, s->name), child, s);
        rc = rc ? rc : src;
    }
    return rc;
}
