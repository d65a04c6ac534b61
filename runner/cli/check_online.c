/* cli/check_online.c — `bulkhead check --online`: what the static check
 * cannot know, asked of the servers of the local Ollama endpoints through
 * the gate (each request audited, in the state's run "check:<pipeline
 * hash>"): is the server reachable, which version, how it enforces
 * local-only, which needed models it has, which are cloud stubs (a local
 * stage on one is refused, as a run would refuse it), each model's context
 * length and the num_ctx every stage would use.
 *
 * The same survey as a run's probe (survey.c), so that check --online and
 * run can never disagree. Text only: the section follows the graph on
 * stdout in text format, and goes to stderr in the other formats so that
 * their output stays one document. */
#include "cli/check_online.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/models_probe.h"
#include "cli/survey.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

struct outcome {
    FILE *out;
    int refused; /* a stage on a stub, or enforce_local require not met: exit 3 */
    int failed;  /* an endpoint unreachable, a model missing: exit 4 */
};

/* "review 8192 (options), second 32768 (from /api/show)" for the stages of
 * endpoint ep that use model m. */
static void num_ctx_print(FILE *f, const struct pipeline *p, const struct egr_gate *g,
                          size_t ep, const char *model)
{
    const char *sep = "; num_ctx";
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *s = &p->stages[i];
        if (s->endpoint != ep || !prov_model_name_eq(s->model, model))
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

/* One line of stderr per local stage whose model is a stub: refused. */
static void stub_refusals(struct outcome *o, const struct pipeline *p, size_t ep,
                          const struct cli_survey_model *m)
{
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *s = &p->stages[i];
        if (s->endpoint != ep || !prov_model_name_eq(s->model, m->name))
            continue;
        fprintf(stderr, "bulkhead: %s:%d:%d: stages.%s: refused: local stage uses model '%s', "
                        "a cloud stub that the server forwards to '%s' — use a model that runs "
                        "on that machine\n", p->file, s->line, s->col, s->name, s->model,
                m->remote);
        o->refused = 1;
    }
}

static void model_print(struct outcome *o, const struct pipeline *p, const struct egr_gate *g,
                        const struct cli_survey *sv, const struct cli_survey_model *m)
{
    FILE *f = o->out;
    fprintf(f, "    model %s: ", m->name);
    if (m->remote) {
        fprintf(f, "a cloud stub forwarding to %s — refused\n", m->remote);
        stub_refusals(o, p, sv->endpoint, m);
        return;
    }
    if (m->listed == 0)
        fprintf(f, "missing — run \"ollama pull %s\" on that machine, or 'bulkhead models "
                   "--pull %s'\n", m->name, p->file);
    else if (m->listed < 0)
        fprintf(f, "not known (the model list could not be read)\n");
    if (m->listed != 1) {
        o->failed = 1;
        return;
    }
    fprintf(f, "present, %s", m->loaded == 1 ? "loaded" : m->loaded == 0 ? "not loaded"
                                                                           : "loaded: ?");
    if (m->context_length > 0)
        fprintf(f, ", context length %lld", (long long)m->context_length);
    else
        fprintf(f, ", context length not known (%s)",
                m->show_err.code ? m->show_err.msg : "not in /api/show");
    num_ctx_print(f, p, g, sv->endpoint, m->name);
    fputc('\n', f);
}

static void endpoint_check(struct outcome *o, const struct pipeline *p, struct cli_online *on,
                           size_t ep)
{
    const struct pipe_endpoint *e = &p->endpoints[ep];
    struct cli_survey sv;
    struct bh_err err = { 0 };
    char words[200];
    cli_survey_take(&sv, on->gate, on->net, p, ep);
    cli_survey_apply(&sv, on->gate, p); /* the num_ctx the stages would use */
    if (!sv.reached) {
        fprintf(o->out, "  %s (%s): unreachable\n", e->name, e->url);
        bh_err_print(&sv.err, stderr);
        o->failed = 1;
        cli_survey_release(&sv);
        return;
    }
    cli_enforcement_words(&sv, e, words, sizeof(words));
    fprintf(o->out, "  %s (%s): reachable, ollama %s\n    enforcement: %s\n", e->name, e->url,
            sv.server.version, words);
    if (cli_survey_required(&sv, p, &err)) {
        bh_err_print(&err, stderr);
        o->refused = 1;
    }
    if (!sv.tags_ok)
        bh_err_print(&sv.err, stderr);
    for (size_t i = 0; i < sv.n_models; i++)
        model_print(o, p, on->gate, &sv, &sv.models[i]);
    cli_survey_release(&sv);
}

static int endpoint_used(const struct pipeline *p, size_t ep)
{
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].endpoint == ep)
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

int cli_check_online(const struct pipeline *p, const char *state, FILE *out)
{
    struct cli_online on;
    struct bh_err err = { 0 };
    struct outcome o = { .out = out };
    if (cli_online_open(&on, p, state, "check", &err)) {
        cli_online_close(&on, NULL);
        return cli_fail(&err);
    }
    fprintf(out, "online (asked through the gate, audited in %s):\n", state);
    for (size_t i = 0; i < p->n_endpoints; i++) {
        if (cli_survey_wanted(on.gate, p, i))
            endpoint_check(&o, p, &on, i);
        else if (endpoint_used(p, i))
            fprintf(out, "  %s (%s): not asked — only local Ollama endpoints with a local "
                         "stage are\n", p->endpoints[i].name, p->endpoints[i].url);
    }
    reload_warn(p, on.gate);
    cli_online_close(&on, o.refused ? "refused" : o.failed ? "failed" : "ok");
    return o.refused ? CLI_EXIT_POLICY : o.failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}
