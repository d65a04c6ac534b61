/* cli/cmd_models.c — `bulkhead models PIPELINE`: which models the stages of
 * each Ollama endpoint need, whether the server has them (/api/tags), has
 * them loaded (/api/ps) or only as a cloud stub; with --pull it pulls the
 * missing ones on local endpoints, with --preload it loads them. A local
 * endpoint of the OpenAI or Anthropic dialect whose server is no Ollama is
 * asked GET /health and GET /v1/models (probe/survey.c: probe_survey_dialect).
 *
 * Every request goes through the egress gate like a run's, so each is
 * audited. Audit records belong to a run: `models` keeps its own run in the
 * state database, keyed "models:<pipeline hash>" (found again, not
 * duplicated, on the next call), with the pipeline's labels so that
 * `audit verify` can check its records. The table goes to stdout; progress
 * and errors to stderr. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "probe/models_probe.h"
#include "probe/survey.h"
#include "providers/manage.h"
#include "providers/prov.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

struct models_args {
    const char *pipeline, *state;
    struct cli_overrides ov;
    int pull, preload;
};

static const char before[] =
    "For each Ollama endpoint of PIPELINE, lists the models its stages need: present\n"
    "or missing on the server (/api/tags), loaded or not (/api/ps), and whether the\n"
    "server only holds a cloud stub that forwards requests to a remote host; then,\n"
    "per local Ollama endpoint, how its server keeps local stages' models on the\n"
    "machine by itself (enforcement: the server refuses cloud models, :local names\n"
    "honoured, or not enforced). A local endpoint of the openai or anthropic\n"
    "dialect is asked what its dialect offers (GET /health, GET /v1/models: each\n"
    "model listed, or the one model a llama.cpp server serves, and its context\n"
    "length); a cloud one is not asked. An endpoint declared \"ollama\" whose server\n"
    "answers only like an OpenAI one is named (exit 2). Every request passes the\n"
    "egress gate and is audited (in a run keyed \"models:<pipeline hash>\").\n";

static const char after[] =
    "exit: 0 every needed model is present, 2 usage or configuration error (an\n"
    "endpoint's provider is not its server's dialect), 3 a\n"
    "server does not enforce what enforce_local \"require\" asks, or the gate refused\n"
    "to ask an endpoint, 4 a model is missing, an endpoint is unreachable, or a pull\n"
    "or preload failed\n";

static const struct cli_opt opts[] = {
    {.name = "pull",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct models_args, pull),
     .help = "pull missing models on local endpoints, with progress"},
    {.name = "preload",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct models_args, preload),
     .help = "load every needed model on local endpoints (keep_alive 10m)"},
    CLI_OPT_ENDPOINT(struct models_args, ov, "use URL for endpoint NAME"),
    CLI_OPT_STATE(struct models_args, state,
                  "state database folder for the audit (default " CLI_DEFAULT_STATE ")"),
};

static const struct cli_optset optset =
    CLI_OPTSET("models", "PIPELINE [options]", before, after, opts);

struct ctx {
    struct models_args a;
    struct pipeline *p;
    struct probe_online o; /* the state for the audit, the net and the gate */
    int failed;            /* something needed is missing or could not be done: exit 4 */
    int refused;           /* the gate refused to query an endpoint: exit 3 */
    int config;            /* an endpoint declared in another dialect than its server's: exit 2 */
    int tty;               /* progress on one updating line */
};

/* One row of the table. */
struct row {
    const char *model;
    int present, loaded;
    const char *remote; /* borrowed from the tags list, or NULL */
};

/* 0 to go on, -1 after --help, or an exit code. */
static int parse(int argc, char **argv, struct models_args *a)
{
    *a = (struct models_args){.state = CLI_DEFAULT_STATE};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, a, &first);
    if (code)
        return code;
    if (first + 1 != argc)
        return cli_usage_error("models", "expected one PIPELINE file");
    a->pipeline = argv[first];
    return 0;
}

static int ctx_open(struct ctx *x, struct bh_err *err)
{
    int rc = cli_pipeline_load(&x->p, x->a.pipeline, &x->a.ov, err);
    if (rc == 0)
        rc = probe_online_open(&x->o, x->p, x->a.state, "models", err);
    return rc;
}

static void ctx_close(struct ctx *x, const char *status)
{
    probe_online_close(&x->o, status);
    pipe_free(x->p);
}

/* --- pull -------------------------------------------------------------------- */

struct pull_view {
    struct ctx *x;
    const char *endpoint, *model;
    char last[128]; /* the status last printed, for plain output */
};

static void pull_progress(void *ud, const struct prov_pull_step *s)
{
    struct pull_view *v = ud;
    char pct[16] = "";
    if (s->total > 0)
        snprintf(pct, sizeof(pct), " %3d%%", (int)(s->completed * 100 / s->total));
    if (v->x->tty) {
        fprintf(stderr, "\r\033[Kpulling %s on %s: %s%s", v->model, v->endpoint, s->status, pct);
    } else if (strcmp(v->last, s->status) != 0 || (s->total > 0 && s->completed == s->total)) {
        /* plain lines: one per step, and the step's end, not every chunk */
        fprintf(stderr, "pulling %s on %s: %s%s\n", v->model, v->endpoint, s->status, pct);
        snprintf(v->last, sizeof(v->last), "%s", s->status);
    }
}

static int pull_data(void *ud, const char *data, size_t len)
{
    struct bh_err err = {0};
    return prov_pull_feed(ud, data, len, &err) ? 1 : 0;
}

/* 0 when the model is now present; else the error is printed. */
static int pull_one(struct ctx *x, size_t ep, const char *model)
{
    const struct pipe_endpoint *e = &x->p->endpoints[ep];
    struct pull_view v = {.x = x, .endpoint = pipe_host_name(e), .model = model};
    struct prov_pull *s = prov_pull_new(pull_progress, &v);
    struct probe_manage_call c = {
        .endpoint = ep, .kind = EGR_MANAGE_PULL, .model = model, .on_data = pull_data, .ud = s};
    struct bh_err err = {0};
    int rc = probe_manage_call(x->o.gate, &c, &err);
    if (rc == 0 && c.result.code)
        rc = bh_err_set(&err, BH_ENET, "%s", c.result.error[0] ? c.result.error : "no reply");
    else if (rc == 0)
        rc = prov_pull_finish(s, c.result.status, &err);
    if (x->tty)
        fputc('\n', stderr);
    if (rc)
        fprintf(stderr,
                "bulkhead: endpoint '%s' (%s): pull of '%s' failed: %s — check the "
                "model name, or run \"ollama pull %s\" on that machine\n",
                pipe_host_name(e), e->url, model, err.msg, model);
    prov_pull_free(s);
    return rc;
}

/* --- preload ----------------------------------------------------------------- */

static int stream_data(void *ud, const char *data, size_t len)
{
    struct bh_err err = {0};
    return prov_ollama.stream_feed(ud, data, len, &err) ? 1 : 0;
}

static int preload_one(struct ctx *x, size_t ep, const char *model)
{
    const struct pipe_endpoint *e = &x->p->endpoints[ep];
    struct prov_stream *s = prov_ollama.stream_new(0);
    struct probe_manage_call c = {.endpoint = ep,
                                  .kind = EGR_MANAGE_PRELOAD,
                                  .model = model,
                                  .on_data = stream_data,
                                  .ud = s};
    struct prov_reply r = {0};
    struct bh_err err = {0};
    int rc = probe_manage_call(x->o.gate, &c, &err);
    if (rc == 0 && c.result.code)
        rc = bh_err_set(&err, BH_ENET, "%s", c.result.error[0] ? c.result.error : "no reply");
    else if (rc == 0)
        rc = prov_ollama.stream_finish(s, c.result.status, &r, &err);
    if (rc)
        fprintf(stderr, "bulkhead: endpoint '%s' (%s): preload of '%s' failed: %s\n",
                pipe_host_name(e), e->url, model, err.msg);
    else
        fprintf(stderr, "preloaded %s on %s\n", model, pipe_host_name(e));
    prov_reply_release(&r);
    prov_ollama.stream_free(s);
    return rc;
}

/* --- the survey -------------------------------------------------------------- */

static void row_print(const struct ctx *x, size_t ep, const char *model, const char *state,
                      const char *loaded, const char *remote)
{
    const struct egr_endpoint *info = egr_endpoint_info(x->o.gate, ep);
    printf("%-14s %-8s %-28s %-12s %-7s %s\n", pipe_host_name(&x->p->endpoints[ep]),
           info->local ? "local" : "cloud", model, state, loaded, remote);
}

/* The distinct models the stages on endpoint ep need (borrowed names). */
static size_t needed_models(const struct pipeline *p, size_t ep, const char **out)
{
    size_t n = 0;
    for (size_t s = 0; s < p->n_stages; s++) {
        if (!pipe_stage_on(p, s, ep))
            continue;
        size_t k = 0;
        while (k < n && !prov_model_name_eq(out[k], p->stages[s].model))
            k++;
        if (k == n)
            out[n++] = p->stages[s].model;
    }
    return n;
}

static void act(struct ctx *x, size_t ep, struct row *r)
{
    int local = egr_endpoint_info(x->o.gate, ep)->local;
    if (x->a.pull && !r->present && !local)
        fprintf(stderr,
                "bulkhead: endpoint '%s' is cloud: '%s' is not pulled there — pull "
                "only manages local servers\n",
                pipe_host_name(&x->p->endpoints[ep]), r->model);
    if (x->a.pull && !r->present && local && pull_one(x, ep, r->model) == 0)
        r->present = 1;
    if (x->a.preload && r->present && local && preload_one(x, ep, r->model) == 0)
        r->loaded = 1;
    else if (x->a.preload && r->present && local)
        x->failed = 1;
}

static void survey_models(struct ctx *x, size_t ep, const struct prov_models *tags,
                          const struct prov_models *ps, int ps_ok)
{
    const char **names = bh_xcalloc(x->p->n_stages + 1, sizeof(*names));
    size_t n = needed_models(x->p, ep, names);
    for (size_t i = 0; i < n; i++) {
        const struct prov_model *t = prov_models_find(tags, names[i]);
        struct row r = {.model = names[i],
                        .present = t != NULL,
                        .loaded = prov_models_find(ps, names[i]) != NULL,
                        .remote = t && prov_model_is_remote(t)
                                      ? (t->remote_host ? t->remote_host : t->remote_model)
                                      : NULL};
        act(x, ep, &r);
        x->failed |= !r.present;
        row_print(x, ep, r.model, r.present ? "present" : "missing",
                  !ps_ok     ? "?"
                  : r.loaded ? "yes"
                             : "no",
                  r.remote ? r.remote : "-");
    }
    free(names);
}

/* A local endpoint of the OpenAI or Anthropic dialect: an Ollama behind it
 * answers /api/version and its lists; another server is asked what its
 * dialect offers (GET /health, GET /v1/models). */
static void dialect_rows(struct ctx *x, const struct probe_survey *s)
{
    const struct pipe_endpoint *e = &x->p->endpoints[s->endpoint];
    for (size_t i = 0; i < s->n_models; i++) {
        const struct probe_survey_model *m = &s->models[i];
        const char *state = m->remote                     ? "stub"
                            : m->listed == 1              ? (s->reached ? "present" : "listed")
                            : m->listed == 0 && s->serves ? "served-as"
                            : m->listed == 0              ? "missing"
                                                          : "unknown";
        x->failed |= m->listed == 0 && !s->serves;
        row_print(x, s->endpoint, m->name, state,
                  m->loaded < 0 ? "-"
                  : m->loaded   ? "yes"
                                : "no",
                  m->remote ? m->remote : "-");
        if (m->listed == 0 && s->serves)
            printf("note: %s: the server serves one model, '%s'; the stage asks for '%s' (it "
                   "answers every name with its one model)\n",
                   pipe_host_name(e), s->serves, m->name);
        if (!s->reached && m->context_length > 0)
            printf("note: %s: model %s: context length %lld (n_ctx in GET /v1/models)\n",
                   pipe_host_name(e), m->name, (long long)m->context_length);
    }
}

static void survey_dialect(struct ctx *x, size_t ep)
{
    struct probe_survey s;
    probe_survey_take(&s, x->o.gate, x->p, ep);
    probe_survey_dialect(&s, x->o.gate, x->p);
    if (!probe_survey_reachable(&s)) {
        bh_err_print(s.v1_err.code ? &s.v1_err : &s.err, stderr);
        row_print(x, ep, "-", "unreachable", "-", "-");
        x->failed = 1;
    } else if (!s.reached && !s.v1_ok) {
        bh_err_print(&s.v1_err, stderr);
        row_print(x, ep, "-", "unknown", "-", "-");
        x->failed = 1;
    } else {
        dialect_rows(x, &s);
    }
    if (s.reached) /* the table's rows came from its Ollama routes */
        printf("server: %s: an Ollama server (ollama %s), which serves the %s dialect too\n",
               pipe_host_name(&x->p->endpoints[ep]), s.server.version,
               x->p->endpoints[ep].provider);
    probe_survey_release(&s);
}

static void survey(struct ctx *x, size_t ep)
{
    struct bh_err err = {0};
    struct prov_models tags = {0}, ps = {0};
    size_t used = 0;
    for (size_t s = 0; s < x->p->n_stages; s++)
        used += pipe_stage_on(x->p, s, ep);
    if (used == 0)
        return; /* no stage needs anything there */
    if (strcmp(x->p->endpoints[ep].provider, "ollama") != 0) {
        if (probe_survey_wanted(x->o.gate, x->p, ep))
            survey_dialect(x, ep);
        else
            row_print(x, ep, "-", "not asked", "-", "-");
        return;
    }
    if (probe_models_list(x->o.gate, x->p, ep, EGR_MANAGE_TAGS, &tags, &err)) {
        bh_err_print(&err, stderr);
        row_print(x, ep, "-", err.code == BH_EPOLICY ? "refused" : "unreachable", "-", "-");
        /* The gate's refusal is a policy outcome (exit 3), not a failure (4). */
        x->refused |= err.code == BH_EPOLICY;
        x->failed |= err.code != BH_EPOLICY;
        return;
    }
    int ps_ok = probe_models_list(x->o.gate, x->p, ep, EGR_MANAGE_PS, &ps, &err) == 0;
    if (!ps_ok)
        bh_err_print(&err, stderr);
    survey_models(x, ep, &tags, &ps, ps_ok);
    prov_models_release(&tags);
    prov_models_release(&ps);
}

/* An endpoint declared "ollama" whose server did not answer /api/version:
 * if it answers /v1/models it is an OpenAI-compatible server, and the
 * pipeline says the wrong dialect (exit 2). */
static void misdeclared_print(struct ctx *x, struct probe_survey *s)
{
    const struct pipe_endpoint *e = &x->p->endpoints[s->endpoint];
    struct bh_err err = {0};
    probe_survey_dialect(s, x->o.gate, x->p);
    if (!probe_survey_misdeclared(s, x->p))
        return;
    probe_survey_misdeclared_err(s, x->p, &err);
    bh_err_print(&err, stderr);
    printf("dialect: %s: this looks like an OpenAI-compatible server, not Ollama: set "
           "\"provider\": \"openai\"\n",
           pipe_host_name(e));
    x->config = 1;
}

/* After the table, one line per local Ollama endpoint: how its server keeps
 * local stages' models on the machine by itself (version and /api/status;
 * the run's probe asks the same). */
static void enforcement_print(struct ctx *x)
{
    for (size_t i = 0; i < x->p->n_endpoints; i++) {
        struct probe_survey s;
        struct bh_err err = {0};
        char words[200];
        if (!probe_survey_wanted(x->o.gate, x->p, i))
            continue;
        probe_survey_server(&s, x->o.gate, x->p, i);
        if (!s.reached && strcmp(x->p->endpoints[i].provider, "ollama") == 0)
            misdeclared_print(x, &s);
        if (!s.reached) {
            probe_survey_release(&s);
            continue; /* the table says it is unreachable */
        }
        probe_enforcement_words(&s, &x->p->endpoints[i], words, sizeof(words));
        printf("enforcement: %s: %s\n", pipe_host_name(&x->p->endpoints[i]), words);
        if (probe_survey_required(&s, x->p, &err)) {
            bh_err_print(&err, stderr);
            x->refused = 1;
        }
        probe_survey_release(&s);
    }
}

int cmd_models(int argc, char **argv)
{
    struct ctx x = {.tty = isatty(fileno(stderr))};
    int code = parse(argc, argv, &x.a);
    if (code)
        return code < 0 ? CLI_EXIT_OK : code;
    struct bh_err err = {0};
    if (ctx_open(&x, &err)) {
        ctx_close(&x, NULL);
        return cli_fail(&err);
    }
    printf("%-14s %-8s %-28s %-12s %-7s %s\n", "ENDPOINT", "LOCALITY", "MODEL", "STATE", "LOADED",
           "REMOTE");
    for (size_t i = 0; i < x.p->n_endpoints; i++)
        survey(&x, i);
    enforcement_print(&x);
    ctx_close(&x, x.refused ? "refused" : x.failed || x.config ? "failed" : "ok");
    return x.refused  ? CLI_EXIT_POLICY
           : x.config ? CLI_EXIT_USAGE
           : x.failed ? CLI_EXIT_FAILED
                      : CLI_EXIT_OK;
}
