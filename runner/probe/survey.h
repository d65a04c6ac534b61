/* probe/survey.h — what the server of a local endpoint says before a
 * run: its version and cloud status (how it enforces local-only itself),
 * which of the models the stages need it holds (as local models or as cloud
 * stubs), which are loaded, and each one's context length (a server of the
 * OpenAI or Anthropic dialect that is no Ollama: what /health and /v1/models
 * say, for check --online and models). `run` hands the
 * facts to the gate (probe_before_run); `check --online` and `models` print
 * them. Every request passes the gate and is audited. */
#ifndef PROBE_SURVEY_H
#define PROBE_SURVEY_H

#include <stddef.h>
#include <stdint.h>

#include "egress/egress.h"
#include "providers/manage.h"
#include "util/bh_err.h"

struct egr_gate;
struct pipeline;
struct pipe_endpoint;

struct probe_survey_model {
    const char *name;        /* borrowed from the pipeline (the first stage's spelling) */
    int listed;              /* /api/tags: 1 installed (a local model or a stub), 0 missing,
                                -1 not known */
    char *remote;            /* a cloud stub: the host it forwards to (owned), else NULL */
    const char *remote_from; /* where the stub showed: "/api/tags", "/api/show" or "the
                                probe's reply" (static), NULL when not a stub */
    int probed;              /* the probe was sent (probe/probe.h) */
    struct bh_err probe_err; /* why the probe failed; code 0 when it did not */
    int loaded;              /* /api/ps: 1 loaded, 0 not, -1 not known */
    int64_t context_length;  /* /api/show; 0 not known */
    long num_ctx;            /* min(context_length, EGR_NUM_CTX_MAX); 0 not known */
    struct bh_err show_err;  /* why /api/show failed; code 0 when it did not (or was not
                                asked: a missing model or a stub) */
};

/* How the server keeps a local stage's model on the machine by itself. */
enum probe_enforcement {
    PROBE_ENFORCE_UNKNOWN,     /* the server could not be asked */
    PROBE_ENFORCE_NONE,        /* neither of the two below: an older server */
    PROBE_ENFORCE_LOCAL_NAMES, /* it honours ":local" names (a stub answers 404) */
    PROBE_ENFORCE_NO_CLOUD,    /* /api/status: it refuses every cloud model */
};

struct probe_survey {
    size_t endpoint;
    int reached;       /* the server answered /api/version */
    struct bh_err err; /* the first thing that failed (reached 0: why) */
    struct prov_server server;
    int honours_local; /* prov_version_honours_local(server.version) */
    enum probe_enforcement enforcement;
    int tags_ok, ps_ok;
    struct egr_loaded *loaded; /* ps_ok: every model /api/ps listed (owned), for the scheduler */
    size_t n_loaded;
    struct probe_survey_model *models; /* the distinct models of the endpoint's local stages */
    size_t n_models;
    /* A server that did not answer /api/version, asked the way the OpenAI
     * and Anthropic dialects are (probe_survey_dialect): */
    int v1_asked;         /* GET /v1/models was sent */
    int v1_ok;            /* it answered with a model list */
    int health;           /* GET /health (OpenAI dialect): 1 answered 2xx, 0 not, -1 not asked */
    char *serves;         /* v1_ok and exactly one model listed: its id (llama-server's
                             alias, which answers whatever name is asked), owned */
    struct bh_err v1_err; /* why /v1/models (else /health) failed; code 0 when it did not */
};

/* 1 when the survey asks endpoint: the gate verified it local and a stage
 * on it has a model whose name is not a cloud name, whatever its dialect
 * (Ollama serves the OpenAI and Anthropic routes too). */
int probe_survey_wanted(const struct egr_gate *g, const struct pipeline *p, size_t endpoint);

/* 1 when the survey's server is an Ollama: it answered /api/version, or the
 * endpoint's dialect is "ollama" (then a server that did not answer is a
 * failure to report). Another dialect's server that does not answer like
 * Ollama is left alone by a run, silently (check --online and models ask
 * it in its own dialect: probe_survey_dialect). */
int probe_survey_ollama(const struct probe_survey *s, const struct pipeline *p);

/* After probe_survey_take, for a server that did not answer /api/version:
 * asks what the OpenAI and Anthropic dialects offer — GET /health (OpenAI,
 * llama.cpp's server) and GET /v1/models (each listed id; llama-server's
 * meta.n_ctx as the model's context length). A needed model is listed (1)
 * when an id names it; on a server that lists exactly one model (s->serves)
 * the others are 0 and take that model's context length: llama-server
 * answers every name with its one model. Fills v1_asked, v1_ok, health,
 * serves, v1_err and the models' listed, context_length and num_ctx. An
 * endpoint declared "ollama" is asked /v1/models only, so that a server of
 * another dialect can be named (probe_survey_misdeclared). Never fails. */
void probe_survey_dialect(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p);

/* 1 when the endpoint is declared "ollama" and its server answered
 * /v1/models but not /api/version: an OpenAI-compatible server. */
int probe_survey_misdeclared(const struct probe_survey *s, const struct pipeline *p);

/* The error for a misdeclared endpoint: BH_EINVAL at the endpoint's place
 * in the pipeline file (endpoints.NAME.provider), naming the URL and what
 * to set. */
void probe_survey_misdeclared_err(const struct probe_survey *s, const struct pipeline *p,
                                  struct bh_err *err);

/* 1 when the server answered, in whichever dialect: /api/version, or (after
 * probe_survey_dialect) /v1/models or /health. */
int probe_survey_reachable(const struct probe_survey *s);

/* Asks the server of endpoint only about itself (version and status): fills
 * reached, server, honours_local, enforcement and err; no models. */
void probe_survey_server(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p,
                         size_t endpoint);

/* Asks the server of endpoint: version and status, tags, ps, show for
 * each needed model it lists as a local model, and, unless the server
 * enforces local-only itself, the probe (probe/probe.h) for each needed
 * model not known to be missing or a stub: a stub that hides from the lists
 * shows itself there (remote_from "the probe's reply"). Never fails: what could not
 * be learnt stays unknown, and s->err (or a model's show_err) says why.
 * Release with probe_survey_release. */
void probe_survey_take(struct probe_survey *s, struct egr_gate *g, const struct pipeline *p,
                       size_t endpoint);
void probe_survey_release(struct probe_survey *s); /* zeroes s */

/* The survey's entry for model (names compared as Ollama does), or NULL. */
const struct probe_survey_model *probe_survey_find(const struct probe_survey *s, const char *model);

/* Hands the facts to the gate: whether the server honours ":local", the
 * stubs (egr_stage_mark_remote: the stage is cloud from then on), each
 * stage's listed, loaded and num_ctx (egr_stage_set_facts), and what /api/ps
 * listed (egr_endpoint_set_loaded: the scheduler need not ask again). */
void probe_survey_apply(const struct probe_survey *s, struct egr_gate *g, const struct pipeline *p);

/* The enforcement in words, e.g. "the server refuses cloud models (source:
 * env)", ":local names honoured (ollama 0.18.1)", "not enforced (ollama
 * 0.12.3: :local names need 0.18.0, and cloud is not disabled)". */
void probe_enforcement_words(const struct probe_survey *s, const struct pipe_endpoint *e, char *buf,
                             size_t size);

/* enforce_local "require" and a server that enforces neither way:
 * BH_EPOLICY naming the endpoint, what the server lacks and what to do; a
 * server that could not be asked: BH_ENET with the reason. 0 otherwise (and
 * for every other enforce_local). */
int probe_survey_required(const struct probe_survey *s, const struct pipeline *p,
                          struct bh_err *err);

/* What a caller shows of one endpoint's survey (borrowed for the call). */
typedef void (*probe_survey_fn)(void *ud, const struct probe_survey *s, const struct pipeline *p);

/* What the probe of a run found when it answered (egr_prober.told): the
 * model is a stub forwarding to remote, or err says why its reply could not
 * be read. */
typedef void (*probe_told_fn)(void *ud, size_t endpoint, const char *model, const char *remote,
                              const struct bh_err *err);

/* Before a run: takes and applies the survey of every wanted endpoint, and
 * hands each to report (may be NULL), which tells the user how its server
 * enforces local-only and what could not be learnt (the tasks that need it
 * then fail on their own, or run with the server's default num_ctx). The
 * probes are not sent now: each model that needs one is handed to the gate
 * (egr_probe_defer), which probes before the first request that needs the
 * model, and tells told (may be NULL) what it found. A run answered from
 * the cache, or whose standby stages are never rerouted to, loads nothing
 * it does not use. Returns the first probe_survey_required error, after
 * auditing a refusal for each local stage of that endpoint: the run must
 * not start. */
int probe_before_run(struct egr_gate *g, const struct pipeline *p, probe_survey_fn report,
                     probe_told_fn told, void *ud, struct bh_err *err);

/* For check --online: takes, asks in its dialect (probe_survey_dialect) and
 * applies the survey of every wanted endpoint i into sv[i] (sv holds
 * p->n_endpoints zeroed entries; the others stay zeroed). Release each
 * with probe_survey_release. Never fails. */
void probe_survey_all(struct egr_gate *g, const struct pipeline *p, struct probe_survey *sv);

#endif
