/* pipeline/stages.c — the `stages` section: each stage's keys, its prompt
 * template (read, parsed and checked against the source's fields and the
 * stage names), and its `after` list. Stage names are collected before any
 * stage is walked, so `after` and templates can name stages declared later
 * in the file. The graph (deps, cycles, order) is built afterwards in
 * graph.c. */
#include "pipeline/load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/template.h"
#include "util/bh_xmalloc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static size_t stage_index(const struct pipe_loader *ld, const struct pipe_stage *s)
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
    struct pipe_unknown u = { "endpoint", name, "known",
                              "declare it under \"endpoints\" or use one of these", names,
                              p->n_endpoints };
    int rc = pipe_ld_unknown(ld, path, &u);
    free(names);
    return rc;
}

static int st_model(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_nonempty(ld, v, path, "the model name, e.g. \"qwen2.5-coder:7b\"",
                            &((struct pipe_stage *)target)->model);
}

/* The template's path: as written when absolute, else under the pipeline's folder. */
static char *prompt_resolve(const struct pipeline *p, const char *prompt)
{
    if (prompt[0] == '/' || strcmp(p->dir, ".") == 0)
        return bh_xstrdup(prompt);
    return bh_xasprintf("%s/%s", p->dir, prompt);
}

static int prompt_read(struct pipe_loader *ld, const char *file, const char *path,
                       struct pipe_stage_load *sl)
{
    int rc = pipe_read_file(file, PIPE_FILE_MAX, &sl->tpl_text, &sl->tpl_len);
    if (rc == BH_ETOOBIG)
        return pipe_ld_fail(ld, path, "prompt template \"%s\" is larger than %zu KiB — "
                            "prompts are text; put large inputs in source fields",
                            file, PIPE_FILE_MAX >> 10);
    if (rc)
        return pipe_ld_fail(ld, path, "cannot read prompt template \"%s\": %s — the path is "
                            "relative to the pipeline file's folder",
                            file, strerror(errno));
    return 0;
}

static int st_prompt(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage *s = target;
    struct pipeline *p = ld->p;
    struct pipe_stage_load *sl = &ld->sl[stage_index(ld, s)];
    int rc = pipe_ld_nonempty(ld, v, path, "the template's path, e.g. \"prompts/review.md\"",
                              &s->prompt_path);
    if (rc)
        return rc;
    char *file = prompt_resolve(p, s->prompt_path);
    rc = prompt_read(ld, file, path, sl);
    if (rc == 0) {
        rc = pipe_tpl_parse(&s->tpl, file, sl->tpl_text, sl->tpl_len, ld->err);
        if (rc == 0) {
            struct pipe_tpl_scope scope = { (const char *const *)p->source.fields,
                                            p->source.n_fields, ld->stage_names, p->n_stages };
            rc = pipe_tpl_check(&s->tpl, &scope, ld->err);
        }
        if (rc) /* positioned in the template; sorted where the stage names it */
            pipe_ld_keep(ld, path);
    }
    free(file);
    return rc;
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
        struct pipe_unknown u = { "stage", name, "known", "\"after\" names stages of this "
                                  "pipeline", ld->stage_names, ld->p->n_stages };
        return pipe_ld_unknown(ld, path, &u);
    }
    sl->after[sl->n_after] = (size_t)k;
    sl->after_elem[sl->n_after++] = i;
    return 0;
}

static int st_after(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_stage_load *sl = &ld->sl[stage_index(ld, target)];
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
    json_object_foreach(v, key, val) {
        if (json_is_number(val) || json_is_boolean(val) || json_is_string(val) ||
            json_is_array(val))
            continue;
        char *sub = bh_xasprintf("%s.%s", path, key);
        int rc = pipe_ld_fail(ld, sub, "expected a number, a boolean, a string or an array "
                                       "(e.g. \"stop\": [\"###\"]) — options go to the model "
                                       "as they are");
        free(sub);
        return rc;
    }
    ((struct pipe_stage *)target)->options_json = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
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
        return pipe_ld_fail(ld, path, "expected a duration such as \"10m\", \"1h\" or \"-1s\" "
                                      "(negative: keep loaded)");
    s->keep_alive = bh_xstrdup(t);
    return 0;
}

static const struct pipe_key stage_keys[] = {
    { "endpoint", PIPE_JT_STRING, 1, st_endpoint, "the name of an endpoint, e.g. \"gpu-box\"", 0 },
    { "model", PIPE_JT_STRING, 1, st_model,
      "the model name as the endpoint knows it, e.g. \"qwen2.5-coder:7b\"", 0 },
    { "prompt", PIPE_JT_STRING, 1, st_prompt,
      "the prompt template's path, relative to the pipeline file, e.g. \"prompts/review.md\"", 0 },
    { "after", PIPE_JT_ARRAY, 0, st_after,
      "names of stages to wait for, e.g. [\"plan\"]", 0 },
    { "clearance", PIPE_JT_STRING, 0, st_clearance, "the highest label the stage may receive", 0 },
    { "options", PIPE_JT_OBJECT, 0, st_options,
      "model options, e.g. { \"temperature\": 0, \"num_ctx\": 16384 }", 0 },
    { "keep_alive", PIPE_JT_STRING, 0, st_keep_alive,
      "how long the model stays loaded, e.g. \"10m\"", 0 },
};

static const struct pipe_schema stage_schema = {
    stage_keys, NELEM(stage_keys),
    "a stage is an object: { \"endpoint\": ..., \"model\": ..., \"prompt\": ... }"
};

static int stages_names(struct pipe_loader *ld, json_t *v, const char *path)
{
    struct pipeline *p = ld->p;
    const char *key;
    json_t *s;
    json_object_foreach(v, key, s) {
        if (!pipe_name_ok(key, 0)) /* `after` and templates name stages */
            return pipe_ld_halt(ld, pipe_ld_fail_key(ld, path, key,
                                                     "invalid stage name \"%s\" — use letters, "
                                                     "digits, '_' and '-' (templates read it as "
                                                     "{{ name.output }})", key));
        struct pipe_stage *st = &p->stages[p->n_stages];
        st->name = bh_xstrdup(key);
        st->clearance = -1;
        ld->stage_names[p->n_stages++] = st->name;
    }
    return 0;
}

int pipe_ld_stages(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = json_object_size(v);
    if (n == 0)
        return pipe_ld_fail(ld, path, "expected at least one stage, found none — e.g. "
                            "\"review\": { \"endpoint\": \"gpu-box\", \"model\": "
                            "\"qwen2.5-coder:7b\", \"prompt\": \"prompts/review.md\" }");
    if (n > PIPE_MAX_STAGES)
        return pipe_ld_halt(ld, pipe_ld_fail(ld, path, "too many stages (%zu, at most %d)", n,
                                             PIPE_MAX_STAGES));
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
