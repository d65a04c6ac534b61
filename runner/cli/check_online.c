/* cli/check_online.c — `bulkhead check --online`: what the static check
 * cannot know, asked of the servers of the local endpoints through
 * the gate (each request audited, in the state's run "check:<pipeline
 * hash>"): is the server reachable, which version, how it enforces
 * local-only, which needed models it has, which are cloud stubs (seen in
 * the lists or in the probe's reply; a stage on one is cloud, and refused
 * exactly when the run's static check over the same facts refuses it), each
 * model's context length and the num_ctx every stage would use. A server
 * that is no Ollama is asked in its dialect's words (GET /health, GET
 * /v1/models: listed models, llama-server's n_ctx, the one model it serves
 * whatever is asked), and an Ollama endpoint whose server answers only those
 * is named an OpenAI-compatible one rather than "unreachable".
 *
 * The same survey as a run's probe (probe/survey.c), so that check --online
 * and run can never disagree; this file only prints what it found. In text format the section
 * follows the graph on stdout; in json it is the graph's "online" member (and the text goes to
 * stderr); in the other formats the text goes to stderr, so that their
 * output stays one document. */
#include "cli/check_online.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "probe/models_probe.h"
#include "probe/survey.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_utf8.h"
#include "util/bh_xmalloc.h"

struct outcome {
    FILE *out;
    json_t *eps;                        /* the "endpoints" array of the JSON form, or NULL */
    const struct pol_stage_report *rep; /* the run's static check with the online facts */
    int refused; /* a stage on a stub, or enforce_local require not met: exit 3 */
    int failed;  /* an endpoint unreachable, a model missing: exit 4 */
    int config;  /* an endpoint declared in another dialect than its server's: exit 2 */
    int *bad;    /* set when a value could not be put into eps (bh_json_set) */
};

/* "review 8192 (options), second 32768 (from /api/show)" for the stages of
 * endpoint ep that use model m. */
static void num_ctx_print(FILE *f, const struct pipeline *p, const struct egr_gate *g, size_t ep,
                          const char *model)
{
    const char *sep = "; num_ctx";
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *s = &p->stages[i];
        if (!pipe_stage_on(p, i, ep) || !prov_model_name_eq(s->model, model))
            continue;
        long n = egr_stage_num_ctx(g, i);
        if (n > 0)
            fprintf(f, "%s %ld for %s (%s)", sep, n, s->name,
                    s->num_ctx > 0 ? "options" : "from /api/show");
        else
            fprintf(f, "%s the server's default for %s", sep, s->name);
        sep = ",";
    }
}

/* One line of stderr per stage on the stub that the static check refuses
 * with the online facts, the very verdict a run reaches (rep, from
 * probe_flow_check_gate). Returns 1 when one was refused. */
static int stub_refusals(const struct pipeline *p, size_t ep, const struct probe_survey_model *m,
                         const struct pol_stage_report *rep)
{
    int refused = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *s = &p->stages[i];
        if (!pipe_stage_on(p, i, ep) || !prov_model_name_eq(s->model, m->name) || rep[i].ok)
            continue;
        fprintf(stderr,
                "bulkhead: %s:%d:%d: stages.%s: refused: local stage %s — use a model "
                "that runs on that machine\n",
                p->file, s->line, s->col, s->name, rep[i].reason);
        refused = 1;
    }
    return refused;
}

/* The num_ctx every stage of endpoint ep on model would use. */
static json_t *num_ctx_json(const struct pipeline *p, const struct egr_gate *g, size_t ep,
                            const char *model, int *bad)
{
    json_t *a = json_array();
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *s = &p->stages[i];
        if (!pipe_stage_on(p, i, ep) || !prov_model_name_eq(s->model, model))
            continue;
        long n = egr_stage_num_ctx(g, i);
        bh_json_push(a,
                     json_pack("{s:s, s:I, s:s}", "stage", s->name, "value", (json_int_t)n, "from",
                               n <= 0           ? "server default"
                               : s->num_ctx > 0 ? "options"
                                                : "/api/show"),
                     bad);
    }
    return a;
}

static json_t *model_json(const struct pipeline *p, const struct egr_gate *g,
                          const struct probe_survey *sv, const struct probe_survey_model *m,
                          int *bad)
{
    const char *state = m->remote        ? "stub"
                        : m->listed == 1 ? "present"
                        : m->listed == 0 ? "missing"
                                         : "unknown";
    json_t *o = json_pack("{s:s, s:s}", "name", m->name, "state", state);
    bh_json_set(o, "remote", m->remote ? json_string(m->remote) : json_null(), bad);
    bh_json_set(o, "loaded", m->loaded < 0 ? json_null() : json_boolean(m->loaded), bad);
    bh_json_set(o, "context_length", json_integer(m->context_length), bad);
    bh_json_set(o, "num_ctx", num_ctx_json(p, g, sv->endpoint, m->name, bad), bad);
    return o;
}

static void model_print(struct outcome *o, const struct pipeline *p, const struct egr_gate *g,
                        const struct probe_survey *sv, const struct probe_survey_model *m)
{
    FILE *f = o->out;
    fprintf(f, "    model %s: ", m->name);
    if (m->remote) {
        int refused = stub_refusals(p, sv->endpoint, m, o->rep);
        fprintf(f, "a cloud stub forwarding to %s (seen in %s) — %s\n", m->remote,
                m->remote_from ? m->remote_from : "?",
                refused ? "refused" : "its stages are cloud, cleared for the bottom label only");
        o->refused |= refused;
        return;
    }
    if (m->probe_err.code)
        bh_err_print(&m->probe_err, stderr);
    if (m->listed == 0)
        fprintf(f,
                "missing — run \"ollama pull %s\" on that machine, or 'bulkhead models "
                "--pull %s'\n",
                m->name, p->file);
    else if (m->listed < 0)
        fprintf(f, "not known (the model list could not be read)\n");
    if (m->listed != 1) {
        o->failed = 1;
        return;
    }
    fprintf(f, "present, %s",
            m->loaded == 1   ? "loaded"
            : m->loaded == 0 ? "not loaded"
                             : "loaded: ?");
    if (m->context_length > 0)
        fprintf(f, ", context length %lld", (long long)m->context_length);
    else
        fprintf(f, ", context length not known (%s)",
                m->show_err.code ? m->show_err.msg : "not in /api/show");
    num_ctx_print(f, p, g, sv->endpoint, m->name);
    fputc('\n', f);
}

/* --- a server of the OpenAI or Anthropic dialect ------------------------------- */

/* The window of each stage on model m of a server with one window (n_ctx):
 * a stage whose options.num_ctx is larger gets a warning, since the server
 * cuts nothing but refuses every prompt over its own window. */
static void window_print(FILE *f, const struct pipeline *p, size_t ep,
                         const struct probe_survey_model *m)
{
    const char *sep = "; window";
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *s = &p->stages[i];
        if (!pipe_stage_on(p, i, ep) || !prov_model_name_eq(s->model, m->name))
            continue;
        fprintf(f, "%s %ld for %s", sep, m->num_ctx, s->name);
        sep = ",";
        if (s->num_ctx > m->num_ctx)
            fprintf(stderr,
                    "bulkhead: warning: %s:%d:%d: stages.%s: options.num_ctx %ld is "
                    "larger than the context window of the server (n_ctx %ld in GET "
                    "/v1/models): prompts over %ld tokens fail — set options.num_ctx to "
                    "%ld, or restart the server with a larger context (llama-server "
                    "--ctx-size)\n",
                    p->file, s->line, s->col, s->name, s->num_ctx, m->num_ctx, m->num_ctx,
                    m->num_ctx);
    }
}

static void v1_model_print(struct outcome *o, const struct pipeline *p,
                           const struct probe_survey *sv, const struct probe_survey_model *m)
{
    FILE *f = o->out;
    fprintf(f, "    model %s: ", m->name);
    if (m->listed == 1)
        fprintf(f, "listed");
    else if (sv->serves)
        fprintf(f,
                "the server serves one model, '%s'; the stage asks for '%s' (it answers "
                "every name with its one model)",
                sv->serves, m->name);
    else {
        fprintf(f, "missing — GET /v1/models does not list it: start the server with that "
                   "model, or name a listed one in the stage\n");
        o->failed = 1;
        return;
    }
    if (m->context_length > 0) {
        fprintf(f, ", context length %lld (n_ctx)", (long long)m->context_length);
        window_print(f, p, sv->endpoint, m);
    } else {
        fprintf(f, ", context length not known (not in GET /v1/models)");
    }
    fputc('\n', f);
}

static void dialect_print(struct outcome *o, const struct pipeline *p,
                          const struct probe_survey *sv)
{
    const struct pipe_endpoint *e = &p->endpoints[sv->endpoint];
    if (!probe_survey_reachable(sv)) {
        fprintf(o->out, "  %s (%s): unreachable\n", pipe_host_name(e), e->url);
        bh_err_print(&sv->v1_err, stderr);
        o->failed = 1;
        return;
    }
    fprintf(o->out,
            "  %s (%s): reachable, %s dialect (%sGET /v1/models %s, not an Ollama "
            "server)\n",
            pipe_host_name(e), e->url, e->provider,
            sv->health < 0 ? ""
            : sv->health   ? "GET /health ok, "
                           : "GET /health failed, ",
            sv->v1_ok ? "answered" : "failed");
    if (!sv->v1_ok) {
        bh_err_print(&sv->v1_err, stderr);
        fprintf(o->out, "    models: not known (GET /v1/models failed)\n");
        o->failed = 1;
        return;
    }
    for (size_t i = 0; i < sv->n_models; i++)
        v1_model_print(o, p, sv, &sv->models[i]);
}

static void endpoint_json(struct outcome *o, const struct pipeline *p, const struct egr_gate *g,
                          const struct probe_survey *sv)
{
    const struct pipe_endpoint *e = &p->endpoints[sv->endpoint];
    char words[200] = "";
    json_t *models = json_array();
    if (sv->reached)
        probe_enforcement_words(sv, e, words, sizeof(words));
    for (size_t i = 0; (sv->reached || sv->v1_ok) && i < sv->n_models; i++)
        bh_json_push(models, model_json(p, g, sv, &sv->models[i], o->bad), o->bad);
    const char *server = sv->reached                       ? "ollama"
                         : probe_survey_misdeclared(sv, p) ? "openai"
                         : probe_survey_reachable(sv)      ? e->provider
                                                           : "";
    bh_json_push(o->eps,
                 json_pack("{s:s, s:s, s:b, s:b, s:s, s:s, s:s, s:s*, s:o}", "name",
                           pipe_host_name(e), "url", e->url, "asked", 1, "reached",
                           probe_survey_reachable(sv), "server", server, "version",
                           sv->reached ? sv->server.version : "", "enforcement", words, "serves",
                           sv->serves, "models", models),
                 o->bad);
}

/* An endpoint declared "ollama" in front of an OpenAI-compatible server:
 * named as such, a configuration error (exit 2), never "unreachable". */
static void misdeclared_print(struct outcome *o, const struct pipeline *p,
                              const struct probe_survey *sv)
{
    const struct pipe_endpoint *e = &p->endpoints[sv->endpoint];
    struct bh_err err = {0};
    fprintf(o->out,
            "  %s (%s): this looks like an OpenAI-compatible server (GET /v1/models "
            "answered, /api/version did not)\n",
            pipe_host_name(e), e->url);
    probe_survey_misdeclared_err(sv, p, &err);
    bh_err_print(&err, stderr);
    o->config = 1;
}

/* Prints what the survey of one endpoint found, after every survey was
 * applied and o->rep computed. */
static void endpoint_print(struct outcome *o, const struct pipeline *p, struct probe_online *on,
                           struct probe_survey *sv)
{
    const struct pipe_endpoint *e = &p->endpoints[sv->endpoint];
    struct bh_err err = {0};
    char words[200];
    if (o->eps)
        endpoint_json(o, p, on->gate, sv);
    if (!probe_survey_ollama(sv, p)) {
        dialect_print(o, p, sv);
        return;
    }
    if (probe_survey_misdeclared(sv, p)) {
        misdeclared_print(o, p, sv);
        return;
    }
    if (!sv->reached) {
        fprintf(o->out, "  %s (%s): unreachable\n", pipe_host_name(e), e->url);
        bh_err_print(&sv->err, stderr);
        o->failed = 1;
        return;
    }
    probe_enforcement_words(sv, e, words, sizeof(words));
    fprintf(o->out, "  %s (%s): reachable, ollama %s%s%s%s\n    enforcement: %s\n",
            pipe_host_name(e), e->url, sv->server.version,
            strcmp(e->provider, "ollama") ? " (an Ollama server, "
                                            "which serves the "
                                          : "",
            strcmp(e->provider, "ollama") ? e->provider : "",
            strcmp(e->provider, "ollama") ? " dialect too; asked as Ollama)" : "", words);
    if (probe_survey_required(sv, p, &err)) {
        bh_err_print(&err, stderr);
        o->refused = 1;
    }
    if (!sv->tags_ok)
        bh_err_print(&sv->err, stderr);
    for (size_t i = 0; i < sv->n_models; i++)
        model_print(o, p, on->gate, sv, &sv->models[i]);
}

static int endpoint_used(const struct pipeline *p, size_t ep)
{
    for (size_t i = 0; i < p->n_stages; i++)
        if (pipe_stage_on(p, i, ep))
            return 1;
    return 0;
}

/* num_ctx as the run would use it, compared per endpoint and model. */
static void reload_warn(const struct pipeline *p, const struct egr_gate *g)
{
    long *n = bh_xcalloc(p->n_stages + 1, sizeof(*n));
    for (size_t i = 0; i < p->n_stages; i++)
        n[i] = egr_stage_num_ctx(g, i);
    cli_num_ctx_warn(p, n);
    free(n);
}

static void not_asked(struct outcome *o, const struct pipe_endpoint *e)
{
    fprintf(o->out, "  %s (%s): not asked — only local endpoints with a local stage are\n",
            pipe_host_name(e), e->url);
    if (o->eps)
        bh_json_push(
            o->eps,
            json_pack("{s:s, s:s, s:b}", "name", pipe_host_name(e), "url", e->url, "asked", 0),
            o->bad);
}

static int check_online(const struct pipeline *p, const char *state, FILE *out, json_t *eps,
                        int *bad)
{
    struct probe_online on;
    struct bh_err err = {0};
    struct outcome o = {.out = out, .eps = eps, .bad = bad};
    if (probe_online_open(&on, p, state, "check", &err)) {
        probe_online_close(&on, NULL);
        return cli_fail(&err);
    }
    fprintf(out, "online (asked through the gate, audited in %s):\n", state);
    /* Every survey first: the verdicts come from the run's own static check
     * over every fact (probe_flow_check_gate), so that check --online and run
     * decide through the same function. */
    struct probe_survey *sv = bh_xcalloc(p->n_endpoints + 1, sizeof(*sv));
    struct pol_stage_report *rep = bh_xcalloc(p->n_stages + 1, sizeof(*rep));
    probe_survey_all(on.gate, p, sv); /* stubs, and the num_ctx the stages would use */
    probe_flow_check_gate(p, on.gate, rep);
    o.rep = rep;
    for (size_t i = 0; i < p->n_endpoints; i++) {
        if (probe_survey_wanted(on.gate, p, i))
            endpoint_print(&o, p, &on, &sv[i]);
        else if (endpoint_used(p, i))
            not_asked(&o, &p->endpoints[i]);
        probe_survey_release(&sv[i]);
    }
    free(sv);
    free(rep);
    reload_warn(p, on.gate);
    probe_online_close(&on, o.refused ? "refused" : o.failed || o.config ? "failed" : "ok");
    return o.refused  ? CLI_EXIT_POLICY
           : o.config ? CLI_EXIT_USAGE
           : o.failed ? CLI_EXIT_FAILED
                      : CLI_EXIT_OK;
}

int cli_check_online(const struct pipeline *p, const char *state, FILE *out)
{
    return check_online(p, state, out, NULL, NULL);
}

int cli_check_online_json(const struct pipeline *p, const char *state, FILE *out, json_t **online)
{
    json_t *eps = json_array();
    int bad = 0, code = check_online(p, state, out, eps, &bad);
    /* The folder comes from the command line and need not be UTF-8. */
    char *shown = bh_utf8_lossy_dup(state, strlen(state), NULL, NULL);
    *online = json_pack("{s:s, s:o}", "state", shown, "endpoints", eps);
    free(shown);
    if (*online && bad) {
        json_decref(*online);
        *online = NULL;
    }
    return code;
}

/* --- num_ctx, constant per model ------------------------------------------- */

size_t cli_num_ctx_warn(const struct pipeline *p, const long *num_ctx)
{
    size_t warned = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *a = &p->stages[i];
        if (num_ctx[i] <= 0 || strcmp(p->endpoints[a->endpoint].provider, "ollama") != 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct pipe_stage *b = &p->stages[j];
            if (b->endpoint != a->endpoint || !prov_model_name_eq(a->model, b->model) ||
                num_ctx[j] <= 0 || num_ctx[j] == num_ctx[i])
                continue;
            fprintf(stderr,
                    "bulkhead: warning: %s:%d:%d: stages.%s: num_ctx %ld differs from "
                    "stage '%s' (num_ctx %ld) on the same model '%s' of endpoint '%s': "
                    "Ollama reloads the model each time it changes — give both stages "
                    "the same options.num_ctx\n",
                    p->file, a->line, a->col, a->name, num_ctx[i], b->name, num_ctx[j], a->model,
                    p->endpoints[a->endpoint].name);
            warned++;
            break;
        }
    }
    return warned;
}
