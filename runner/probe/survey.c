/* probe/survey.c — asking a local Ollama server, before a run, what it will do
 * with the models the stages name, and handing the answers to the gate.
 *
 * Ollama forwards a cloud stub off the machine under any name, so a model
 * name that looks local proves nothing. Three facts help, from the weakest:
 * /api/tags lists a stub with remote_host (seen before the run, but a stub
 * made after bulkhead looked is missed); a server from 0.18.0 on honours the
 * ":local" name suffix and answers 404 instead of forwarding (enforced by
 * the server at the moment of the request); /api/status says whether the
 * server refuses every cloud model. The survey learns all three, the gate
 * then adds the suffix where it is honoured, and `enforce_local: "require"`
 * refuses a run on a server that offers neither of the last two. Where the
 * server offers neither, a fourth fact comes from the probe (probe/): the
 * first request to each model is a fixed public one, whose reply names the
 * remote host of a stub that hid from /api/tags. Any dialect is surveyed:
 * Ollama forwards stubs on its OpenAI and Anthropic routes too.
 *
 * The same survey gives the context length (/api/show) that a stage without
 * options.num_ctx asks for, and whether a model was loaded at the start (a
 * first-byte timeout on a model that was not is most likely its load).
 * Nothing here stops a run except `require`: a server that cannot be asked
 * fails the tasks that need it, with clearer messages than we could give. */
#include "probe/survey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "probe/models_probe.h"
#include "probe/probe.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

/* Every dialect: Ollama forwards a stub on /v1/chat/completions and
 * /v1/messages too, without saying so in the reply. Whether the server is
 * an Ollama is for /api/version to tell (probe_survey_ollama). */
int probe_survey_wanted(const struct egr_gate *g, const struct pipeline *p, size_t endpoint)
{
    if (!egr_pool_local(g, endpoint)) /* a pool with a host not local is refused whole */
        return 0;
    for (size_t s = 0; s < p->n_stages; s++)
        if (pipe_stage_on(p, s, endpoint) && !pol_model_is_cloud(p->stages[s].model))
            return 1;
    return 0;
}

int probe_survey_ollama(const struct probe_survey *s, const struct pipeline *p)
{
    return s->reached || strcmp(p->endpoints[s->endpoint].provider, "ollama") == 0;
}

const struct probe_survey_model *probe_survey_find(const struct probe_survey *s, const char *model)
{
    for (size_t i = 0; i < s->n_models; i++)
        if (prov_model_name_eq(s->models[i].name, model))
            return &s->models[i];
    return NULL;
}

/* The distinct models of the endpoint's stages whose names are not cloud. */
static void models_collect(struct probe_survey *s, const struct pipeline *p)
{
    s->models = bh_xcalloc(p->n_stages + 1, sizeof(*s->models));
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct pipe_stage *st = &p->stages[i];
        if (!pipe_stage_on(p, i, s->endpoint) || pol_model_is_cloud(st->model) ||
            probe_survey_find(s, st->model))
            continue;
        s->models[s->n_models++] =
            (struct probe_survey_model){.name = st->model, .listed = -1, .loaded = -1};
    }
}

static void enforcement_set(struct probe_survey *s)
{
    s->honours_local = s->reached && prov_version_honours_local(s->server.version);
    if (!s->reached)
        s->enforcement = PROBE_ENFORCE_UNKNOWN;
    else if (s->server.cloud_disabled)
        s->enforcement = PROBE_ENFORCE_NO_CLOUD;
    else if (s->honours_local)
        s->enforcement = PROBE_ENFORCE_LOCAL_NAMES;
    else
        s->enforcement = PROBE_ENFORCE_NONE;
}

static void keep_first(struct probe_survey *s, const struct bh_err *err)
{
    if (!s->err.code)
        s->err = *err;
}

/* Every model /api/ps listed, as the gate keeps it for the scheduler. */
static void loaded_keep(struct probe_survey *s, const struct prov_models *ps)
{
    if (!s->ps_ok)
        return;
    s->loaded = bh_xcalloc(ps->n ? ps->n : 1, sizeof(*s->loaded));
    s->n_loaded = ps->n;
    for (size_t i = 0; i < ps->n; i++)
        s->loaded[i] =
            (struct egr_loaded){bh_xstrdup(ps->v[i].name ? ps->v[i].name : ""),
                                ps->v[i].context_length, prov_model_is_remote(&ps->v[i])};
}

/* tags and ps: which needed models the server has, and which are loaded. */
static void lists_take(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p)
{
    struct prov_models tags = {0}, ps = {0};
    struct bh_err err = {0};
    s->tags_ok = probe_models_list(g, p, s->endpoint, EGR_MANAGE_TAGS, &tags, &err) == 0;
    if (!s->tags_ok)
        keep_first(s, &err);
    s->ps_ok = probe_models_list(g, p, s->endpoint, EGR_MANAGE_PS, &ps, &err) == 0;
    if (!s->ps_ok)
        keep_first(s, &err);
    for (size_t i = 0; i < s->n_models; i++) {
        struct probe_survey_model *m = &s->models[i];
        const struct prov_model *t = prov_models_find(&tags, m->name);
        if (s->tags_ok)
            m->listed = t != NULL;
        if (t && prov_model_is_remote(t)) {
            m->remote = bh_xstrdup(t->remote_host ? t->remote_host : t->remote_model);
            m->remote_from = "/api/tags";
        }
        if (s->ps_ok)
            m->loaded = prov_models_find(&ps, m->name) != NULL;
    }
    loaded_keep(s, &ps);
    prov_models_release(&tags);
    prov_models_release(&ps);
}

/* show per model that is there and local: its context length (and, should
 * the list have missed it, whether it is a stub after all). */
static void shows_take(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p)
{
    for (size_t i = 0; i < s->n_models; i++) {
        struct probe_survey_model *m = &s->models[i];
        struct prov_show show = {0};
        if (m->listed != 1 || m->remote)
            continue;
        if (probe_model_show(g, p, s->endpoint, m->name, &show, &m->show_err) == 0) {
            m->context_length = show.context_length;
            m->num_ctx =
                show.context_length < EGR_NUM_CTX_MAX ? (long)show.context_length : EGR_NUM_CTX_MAX;
            if (show.remote_host || show.remote_model) {
                m->remote = bh_xstrdup(show.remote_host ? show.remote_host : show.remote_model);
                m->remote_from = "/api/show";
            }
        }
        prov_show_release(&show);
    }
}

/* The server itself refuses a stub at the moment of every request (cloud
 * disabled, or ":local" names honoured and sent): that covers more than a
 * probe could (a stub made mid-run too), so the probe is skipped there and
 * costs such servers nothing. Under enforce_local "require" a server is
 * either such a server or refused before the run. A run whose Ollama
 * endpoint did not answer the survey probes all the same (defer): the probe
 * waits for the first request, and a server that comes up later (a restart
 * overnight) may be an older one that forwards a stub. Everywhere else the
 * probe goes. */
static int probe_needed(const struct probe_survey *s, const struct pipe_endpoint *e, int defer)
{
    /* "require" on a server that enforces neither way: the run never starts. */
    if (e->enforce_local == PIPE_ENFORCE_REQUIRE)
        return 0;
    if (!s->reached)
        return defer && strcmp(e->provider, "ollama") == 0;
    if (s->server.cloud_disabled)
        return 0;
    return !(s->honours_local && e->enforce_local != PIPE_ENFORCE_OFF);
}

/* The first stage of the endpoint on model: the keep_alive and num_ctx its
 * requests will load the model with. */
static const struct pipe_stage *first_stage(const struct probe_survey *s, const struct pipeline *p,
                                            const char *model)
{
    for (size_t i = 0; i < p->n_stages; i++)
        if (pipe_stage_on(p, i, s->endpoint) && prov_model_name_eq(p->stages[i].model, model))
            return &p->stages[i];
    return NULL;
}

/* The probe per model that is not known to be a stub already: a stub that
 * hid from the lists shows itself in the probe's reply, before any item's
 * data is sent (probe/probe.c). A model /api/tags did not list is probed
 * too (a server that serves what it does not list is what the probe is
 * for); its error reply is no news then: its tasks fail with the pull
 * advice. */
static void probes_take(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p,
                        int defer)
{
    const struct pipe_endpoint *e = &p->endpoints[s->endpoint];
    int ollama_dialect = strcmp(e->provider, "ollama") == 0;
    if (!probe_needed(s, e, defer))
        return;
    for (size_t i = 0; i < s->n_models; i++) {
        struct probe_survey_model *m = &s->models[i];
        const struct pipe_stage *st = first_stage(s, p, m->name);
        char *remote = NULL;
        if (m->remote || !st)
            continue;
        /* Another dialect's requests load the model with the server's num_ctx. */
        struct probe_req r = {.endpoint = s->endpoint,
                              .model = m->name,
                              .keep_alive = st->keep_alive,
                              .num_ctx = !ollama_dialect   ? 0
                                         : st->num_ctx > 0 ? st->num_ctx
                                                           : m->num_ctx};
        if (defer) { /* a run: the gate probes before the first request that needs it */
            egr_probe_defer(g, &(struct egr_probe_need){.endpoint = r.endpoint,
                                                        .model = r.model,
                                                        .keep_alive = r.keep_alive,
                                                        .num_ctx = r.num_ctx,
                                                        .quiet_reply_errors = m->listed == 0});
            continue;
        }
        m->probed = 1;
        if (probe_model_remote(g, &r, &remote, &m->probe_err) == 0 && remote) {
            m->remote = remote;
            m->remote_from = "the probe's reply";
        } else if (m->probe_err.code == BH_EREPLY && m->listed == 0) {
            m->probe_err = (struct bh_err){0};
        } else if (m->probe_err.code) {
            bh_err_prefix(&m->probe_err, "endpoint '%s' (%s), model '%s': ", pipe_host_name(e),
                          e->url, m->name);
        }
    }
}

void probe_survey_server(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p,
                         size_t endpoint)
{
    struct bh_err err = {0};
    memset(s, 0, sizeof(*s));
    s->endpoint = endpoint;
    s->health = -1;
    int rc = probe_server_ask(g, p, endpoint, &s->server, &err);
    s->reached = s->server.version[0] != '\0';
    if (rc)
        keep_first(s, &err);
    enforcement_set(s);
}

static void survey_take(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p,
                        size_t endpoint, int defer_probes)
{
    probe_survey_server(s, g, p, endpoint);
    models_collect(s, p);
    if (!s->reached) { /* the lists would only fail the same way */
        probes_take(s, g, p, defer_probes);
        return;
    }
    lists_take(s, g, p);
    shows_take(s, g, p);
    probes_take(s, g, p, defer_probes);
}

void probe_survey_take(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p,
                       size_t endpoint)
{
    survey_take(s, g, p, endpoint, 0);
}

/* --- the other dialects ------------------------------------------------------ */

int probe_survey_misdeclared(const struct probe_survey *s, const struct pipeline *p)
{
    return !s->reached && s->v1_ok && strcmp(p->endpoints[s->endpoint].provider, "ollama") == 0;
}

void probe_survey_misdeclared_err(const struct probe_survey *s, const struct pipeline *p,
                                  struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[s->endpoint];
    char path[128];
    bh_str_put(path, sizeof(path), "endpoints.%s.provider", e->name);
    bh_err_set(err, BH_EINVAL,
               "\"ollama\", but the server at %s looks like an "
               "OpenAI-compatible server (GET /v1/models answered, /api/version did not): set "
               "\"provider\": \"openai\"",
               e->url);
    bh_err_at(err, p->file, e->line, e->col, path);
}

int probe_survey_reachable(const struct probe_survey *s)
{
    return s->reached || s->v1_ok || s->health == 1;
}

/* What /v1/models says of each needed model. A server that lists one model
 * only (llama-server: its alias) runs that one whatever the request names,
 * so its context length is every needed model's window. */
static void v1_models_apply(struct probe_survey *s, const struct prov_models *list)
{
    if (list->n == 1)
        s->serves = bh_xstrdup(list->v[0].name);
    for (size_t i = 0; i < s->n_models; i++) {
        struct probe_survey_model *m = &s->models[i];
        const struct prov_model *t = prov_models_find(list, m->name);
        m->listed = t != NULL;
        if (!t && list->n == 1)
            t = &list->v[0];
        m->context_length = t ? t->context_length : 0;
        m->num_ctx =
            m->context_length < EGR_NUM_CTX_MAX ? (long)m->context_length : EGR_NUM_CTX_MAX;
    }
}

void probe_survey_dialect(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p)
{
    const char *provider = p->endpoints[s->endpoint].provider;
    struct prov_models list = {0};
    struct bh_err herr = {0};
    s->health = -1;
    if (s->reached)
        return; /* an Ollama server: its own routes said everything */
    if (strcmp(provider, "openai") == 0)
        s->health = probe_health(g, p, s->endpoint, &herr) == 0;
    s->v1_asked = 1;
    s->v1_ok = probe_v1_models(g, p, s->endpoint, &list, &s->v1_err) == 0;
    if (s->v1_ok)
        v1_models_apply(s, &list);
    prov_models_release(&list);
}

void probe_survey_release(struct probe_survey *s)
{
    for (size_t i = 0; s && i < s->n_models; i++)
        free(s->models[i].remote);
    for (size_t i = 0; s && i < s->n_loaded; i++)
        free(s->loaded[i].name);
    if (s) {
        free(s->serves);
        free(s->models);
        free(s->loaded);
        memset(s, 0, sizeof(*s));
    }
}

/* A pool's stage sends one request body to whichever host runs it: its
 * facts are what holds on every host surveyed so far (had) — the smallest
 * context window, a model listed or loaded only where every host says so. */
static void pool_facts(struct egr_model_facts *f, const struct egr_model_facts *had)
{
    f->listed = had->listed < f->listed ? had->listed : f->listed;
    f->loaded = had->loaded < f->loaded ? had->loaded : f->loaded;
    if (had->num_ctx > 0 && (f->num_ctx == 0 || had->num_ctx < f->num_ctx))
        f->num_ctx = had->num_ctx;
}

void probe_survey_apply(const struct probe_survey *s, struct egr_gate *g, const struct pipeline *p)
{
    egr_endpoint_set_local_suffix(g, s->endpoint, s->honours_local);
    if (s->ps_ok)
        egr_endpoint_set_loaded(g, s->endpoint, s->loaded, s->n_loaded);
    for (size_t i = 0; i < p->n_stages; i++) {
        const struct probe_survey_model *m = probe_survey_find(s, p->stages[i].model);
        if (!pipe_stage_on(p, i, s->endpoint) || !m)
            continue;
        if (m->remote)
            egr_stage_mark_remote(g, i, m->remote);
        /* Another dialect's route on Ollama runs the model with the server's
         * num_ctx: the context length is no promise there. A server that is
         * no Ollama (llama-server's n_ctx) has one window, the one in force. */
        int ollama_dialect = strcmp(p->endpoints[s->endpoint].provider, "ollama") == 0;
        int fixed_window = !s->reached && s->v1_ok;
        struct egr_model_facts f = {.listed = m->listed,
                                    .loaded = m->loaded,
                                    .num_ctx = ollama_dialect || fixed_window ? m->num_ctx : 0};
        if (p->endpoints[s->endpoint].host > 0)
            pool_facts(&f, egr_stage_facts(g, i));
        egr_stage_set_facts(g, i, &f);
    }
}

void probe_enforcement_words(const struct probe_survey *s, const struct pipe_endpoint *e, char *buf,
                             size_t size)
{
    const char *v = s->server.version, *src = s->server.cloud_source;
    const char *off =
        e->enforce_local == PIPE_ENFORCE_OFF ? ", not used: enforce_local is \"off\"" : "";
    switch (s->enforcement) {
    case PROBE_ENFORCE_UNKNOWN:
        bh_str_put(buf, size, "unknown (the server could not be asked)");
        break;
    case PROBE_ENFORCE_NO_CLOUD:
        bh_str_put(buf, size, "the server refuses cloud models (source: %s)%s%s",
                   src[0] ? src : "?", s->honours_local ? "; :local names honoured" : "",
                   s->honours_local ? off : "");
        break;
    case PROBE_ENFORCE_LOCAL_NAMES:
        bh_str_put(buf, size, ":local names honoured (ollama %s)%s", v, off);
        break;
    case PROBE_ENFORCE_NONE:
        bh_str_put(buf, size, "not enforced (ollama %s: :local names need %s, and %s)", v,
                   PROV_LOCAL_SUFFIX_VERSION,
                   s->server.status ? "cloud is not disabled" : "it has no /api/status");
        break;
    }
}

int probe_survey_required(const struct probe_survey *s, const struct pipeline *p,
                          struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[s->endpoint];
    char words[200];
    if (e->enforce_local != PIPE_ENFORCE_REQUIRE || s->enforcement == PROBE_ENFORCE_NO_CLOUD ||
        s->enforcement == PROBE_ENFORCE_LOCAL_NAMES)
        return 0;
    if (s->enforcement == PROBE_ENFORCE_UNKNOWN)
        return bh_err_set(err, BH_ENET,
                          "endpoint '%s': enforce_local is \"require\", and the "
                          "server could not be asked how it enforces local-only: %s",
                          e->name, s->err.msg);
    probe_enforcement_words(s, e, words, sizeof(words));
    return bh_err_set(err, BH_EPOLICY,
                      "endpoint '%s' (%s): enforce_local is \"require\", but "
                      "the server enforces local-only neither way: %s — upgrade Ollama to %s "
                      "or later, or start it with OLLAMA_NO_CLOUD=1, or set enforce_local to "
                      "\"auto\"",
                      pipe_host_name(e), e->url, words, PROV_LOCAL_SUFFIX_VERSION);
}

/* --- before a run ----------------------------------------------------------- */

/* The run must not start: each local stage of the endpoint is refused, and
 * the audit says why. */
static void refusals_audit(struct egr_gate *g, const struct pipeline *p, size_t endpoint,
                           const struct bh_err *why)
{
    char reason[300];
    bh_str_put(reason, sizeof(reason), "enforce_local require: %s", why->msg);
    for (size_t i = 0; i < p->n_stages; i++) {
        struct bh_err aerr = {0};
        if (!pipe_stage_on(p, i, endpoint) || !egr_stage_local(g, i))
            continue;
        if (egr_audit_refusal(g, i, "", 0, reason, &aerr))
            bh_err_print(&aerr, stderr);
    }
}

int probe_before_run(struct egr_gate *g, const struct pipeline *p, probe_survey_fn report,
                     probe_told_fn told, void *ud, struct bh_err *err)
{
    int rc = 0;
    egr_set_prober(g, &(struct egr_prober){.read = probe_reply_read, .told = told, .ud = ud});
    for (size_t i = 0; i < p->n_endpoints; i++) {
        struct probe_survey s;
        struct bh_err why = {0};
        if (!probe_survey_wanted(g, p, i))
            continue;
        survey_take(&s, g, p, i, 1);
        probe_survey_apply(&s, g, p);
        if (report)
            report(ud, &s, p);
        if (probe_survey_required(&s, p, &why) && rc == 0) {
            refusals_audit(g, p, i, &why);
            *err = why;
            rc = why.code;
        }
        probe_survey_release(&s);
    }
    struct bh_err broken;
    if (egr_audit_broken(g, &broken)) { /* a probe's record could not be written */
        *err = broken;
        rc = broken.code;
    }
    return rc;
}

void probe_survey_all(struct egr_gate *g, const struct pipeline *p, struct probe_survey *sv)
{
    for (size_t i = 0; i < p->n_endpoints; i++) {
        if (!probe_survey_wanted(g, p, i))
            continue;
        probe_survey_take(&sv[i], g, p, i);
        probe_survey_dialect(&sv[i], g, p);
        probe_survey_apply(&sv[i], g, p); /* stubs, and the num_ctx the stages would use */
    }
}
