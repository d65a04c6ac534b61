/* cli/cmd_check.c — `bulkhead check PIPELINE`: validate the file, verify
 * each endpoint's locality the way a run would, and prove that no stage can
 * receive data above its clearance. Sends nothing, unless --online asks the
 * local Ollama servers what only they can tell (check_online.c). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/check_online.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/graph.h"
#include "policy/policy.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_xmalloc.h"

/* What the command line says; check_args is what the check needs of it. */
struct check_opts {
    const char *format, *state; /* state: NULL when not given */
    int online;
    struct cli_overrides ov;
};

static const char before[] =
    "Validates PIPELINE, verifies the locality of every endpoint (a host must\n"
    "resolve only to loopback, to networks named by trusted_networks or\n"
    "BULKHEAD_TRUSTED_NETWORKS, or to trusted_hosts to count as local), and proves\n"
    "that no stage can receive data labelled above its clearance, nor declares a\n"
    "clearance above its endpoint's. Prints the flow graph: each stage with its\n"
    "endpoint, locality and why, clearance and where it comes from, on_sensitive and\n"
    "declassify, and per input both bounds of its label (declared, and with what\n"
    "content detectors could find) and where they come from; notes say what\n"
    "on_sensitive does at run time when a detector hit goes above a clearance.\n";

static const char after[] =
    "exit: 0 the pipeline passes, 2 the file is invalid, 3 a stage is refused (every\n"
    "item would be above its clearance under on_sensitive fail, a granted tool\n"
    "returns data above it, its reroute does not go toward more privacy, it is\n"
    "cleared above its endpoint; with --online also: its model is a cloud stub, or\n"
    "its endpoint's server does not enforce what enforce_local \"require\" asks),\n"
    "4 with --online: an endpoint is unreachable or a needed model is missing\n";

static int format_known(const char *name)
{
    return pol_format_find(name) >= 0;
}

static const struct cli_opt opts[] = {
    {.name = "format",
     .arg = "FORMAT",
     .kind = CLI_OPT_ENUM,
     .offset = offsetof(struct check_opts, format),
     .what = "format",
     .known = format_known,
     .list = pol_format_names,
     .help = "text (default), json (schema in pipelines/README.md),\n"
             "dot (Graphviz) or md (a data-flow statement for review)"},
    CLI_OPT_ENDPOINT(struct check_opts, ov, "use URL for endpoint NAME (as 'run' would)"),
    {.name = "online",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct check_opts, online),
     .help = "also ask the server of each local Ollama endpoint, through\n"
             "the gate (audited): reachable, version, how it enforces\n"
             "local-only, the needed models present or missing, cloud\n"
             "stubs, each model's context length and the num_ctx each\n"
             "stage would use (after the graph in text format, the\n"
             "member \"online\" in json, on stderr in dot and md)"},
    CLI_OPT_STATE(struct check_opts, state,
                  "with --online: state folder for the audit (default " CLI_DEFAULT_STATE ")"),
};

static const struct cli_optset optset =
    CLI_OPTSET("check", "PIPELINE [options]", before, after, opts);

/* One line on stderr per refused stage, with the file position and a next step. */
static void refusals_print(const struct pipeline *p, const struct pol_graph *g)
{
    for (size_t s = 0; s < p->n_stages; s++) {
        const struct pipe_stage *st = &p->stages[s];
        const struct pol_graph_stage *r = &g->stages[s];
        if (!r->flow_ok) /* the reason names what carries the label and what to do */
            fprintf(stderr, "bulkhead: %s:%d:%d: stages.%s: refused: %s stage %s\n", p->file,
                    st->line, st->col, st->name, r->local ? "local" : "cloud", r->reason);
        if (r->over_endpoint)
            fprintf(stderr,
                    "bulkhead: %s:%d:%d: stages.%s: refused: stage %s — lower the stage's "
                    "clearance to at most %s or raise the endpoint's\n",
                    p->file, st->line, st->col, st->name, r->conflict,
                    pol_label_name(p, g->endpoints[st->endpoint].clearance));
    }
}

/* run refuses to start without the key of an endpoint a cloud stage uses;
 * check says so early (names the variable, never a value). */
static void key_warn(const struct pipeline *p, size_t i, const struct egr_endpoint *eps)
{
    const struct pipe_endpoint *e = &p->endpoints[i];
    const char *key = e->api_key_env ? getenv(e->api_key_env) : NULL;
    if (!e->api_key_env || (key && key[0]))
        return;
    for (size_t s = 0; s < p->n_stages; s++) {
        if (p->stages[s].endpoint != i || pol_stage_local(p, s, eps[i].local))
            continue;
        fprintf(stderr,
                "bulkhead: warning: %s:%d:%d: endpoints.%s.api_key_env: the variable "
                "'%s' is not set; 'bulkhead run' will refuse to start without it\n",
                p->file, e->line, e->col, e->name, e->api_key_env);
        return;
    }
}

/* The same for the login of an endpoint behind a basic-auth proxy. */
static void login_warn(const struct pipe_endpoint *e, const char *file)
{
    const char *login = e->basic_auth_env ? getenv(e->basic_auth_env) : NULL;
    if (e->basic_auth_env && (!login || !strchr(login, ':')))
        fprintf(stderr,
                "bulkhead: warning: %s:%d:%d: endpoints.%s.basic_auth_env: the variable "
                "'%s' is not set to USER:PASSWORD; 'bulkhead run' will refuse to start "
                "without it\n",
                file, e->line, e->col, e->name, e->basic_auth_env);
}

static void keys_warn(const struct pipeline *p, const struct egr_endpoint *eps)
{
    for (size_t i = 0; i < p->n_endpoints; i++) {
        key_warn(p, i, eps);
        if (p->endpoints[i].host == 0) /* a pool's hosts share its settings: said once */
            login_warn(&p->endpoints[i], p->file);
    }
}

struct check_args {
    enum pol_format fmt;
    int online;
    const char *state;
};

/* The static verdict and the online one: a refusal (3) before a failure (4). */
static int code_join(int a, int b)
{
    if (a == CLI_EXIT_POLICY || b == CLI_EXIT_POLICY)
        return CLI_EXIT_POLICY;
    return a != CLI_EXIT_OK ? a : b;
}

/* Offline, only the num_ctx values the stages set are known. */
static void reload_warn(const struct pipeline *p)
{
    long *n = bh_xcalloc(p->n_stages + 1, sizeof(*n));
    for (size_t i = 0; i < p->n_stages; i++)
        n[i] = p->stages[i].num_ctx;
    cli_num_ctx_warn(p, n);
    free(n);
}

/* The graph's JSON with the online findings as its last member, "online",
 * set in the document's tree: the document is whole or not printed. */
static int graph_json_online(const struct pipeline *p, const struct pol_graph *g, const char *state)
{
    json_t *online = NULL;
    int code = cli_check_online_json(p, state, stderr, &online);
    json_t *doc = pol_graph_json(g);
    int bad = !online;
    bh_json_set(doc, "online", online, &bad);
    if (bad) {
        struct bh_err err = {0};
        json_decref(doc);
        bh_err_set(&err, BH_EINTERNAL,
                   "cannot write the flow graph with its online findings as JSON — please "
                   "report this bug");
        return cli_fail(&err);
    }
    pol_graph_write_json(stdout, doc);
    json_decref(doc);
    return code;
}

static int check_pipeline(const struct pipeline *p, const struct check_args *a)
{
    enum pol_format fmt = a->fmt;
    struct bh_err err = {0};
    struct egr_endpoint *eps = bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*eps));
    int code = CLI_EXIT_OK, rc = cli_endpoints_verify(p, eps, &err);
    if (rc) {
        code = cli_fail(&err);
    } else {
        struct pol_graph g;
        cli_flow_graph(&g, p, eps);
        if (a->online && fmt == POL_FORMAT_JSON) {
            code = graph_json_online(p, &g, a->state);
        } else {
            pol_graph_render(stdout, &g, fmt);
            if (a->online) /* its own num_ctx warnings, with the values from /api/show */
                code = cli_check_online(p, a->state, fmt == POL_FORMAT_TEXT ? stdout : stderr);
            else
                reload_warn(p);
        }
        refusals_print(p, &g);
        keys_warn(p, eps);
        code = code_join(g.n_refused ? CLI_EXIT_POLICY : CLI_EXIT_OK, code);
        pol_graph_release(&g);
    }
    free(eps);
    return code;
}

int cmd_check(int argc, char **argv)
{
    struct check_opts o = {.format = "text"};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, &o, &first);
    if (code)
        return code < 0 ? CLI_EXIT_OK : code;
    if (first + 1 != argc)
        return cli_usage_error("check", "expected one PIPELINE file");
    if (o.state && !o.online)
        return cli_usage_error("check", "--state is for --online (check alone writes nothing)");
    struct check_args a = {.fmt = (enum pol_format)pol_format_find(o.format),
                           .online = o.online,
                           .state = o.state ? o.state : CLI_DEFAULT_STATE};
    struct bh_err err = {0};
    struct pipeline *p = NULL;
    if (cli_pipeline_load(&p, argv[first], &o.ov, &err))
        return cli_fail(&err);
    code = check_pipeline(p, &a);
    pipe_free(p);
    return code;
}
