/* cli/cmd_run.c — `bulkhead run`: the whole job. Loads the pipeline, lists
 * the pull requests, opens (or resumes) the run in the state database,
 * creates the egress gate (which verifies and pins every endpoint), proves
 * the flow over what the gate verified, and hands the tasks to the engine.
 * The run's identity is a hash of the pipeline, the repository, the options
 * and every item's version, so the same command after a crash resumes.
 * --shard I/N keeps the items whose key hashes to shard I and runs no
 * batch-scope stage; the shard is part of the run's identity, after the
 * whole run's ("KEY/shard-I-of-N"), which `bulkhead merge` gives the merged
 * state, so this command without --shard resumes the merged run there. */
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ci_mode.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "cli/progress.h"
#include "egress/egress.h"
#include "engine/engine.h"
#include "pipeline/pipeline.h"
#include "policy/graph.h"
#include "policy/policy.h"
#include "probe/models_probe.h"
#include "probe/survey.h"
#include "report/report.h"
#include "sources/src_git.h"
#include "stages/kinds.h"
#include "store/status.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_hash.h"
#include "util/bh_xmalloc.h"

struct shard_arg {
    unsigned shard, shards; /* shards 0: not sharded */
};

struct run_args {
    const char *pipeline, *state;
    struct cli_source src;
    struct cli_overrides ov;
    int verbose;
    int fresh;             /* --fresh: start over instead of resuming */
    int fail_on;           /* --fail-on: a severity, or -1 */
    int no_cache;          /* --no-cache: the response cache is neither read nor written */
    int quiet;             /* --quiet: no progress display */
    const char *order_arg; /* --order: "model" or "naive" */
    int order;             /* ENG_ORDER_* */
    const char *clearance; /* --clearance: what outputs and annotations may show; NULL all */
    struct shard_arg sh;   /* --shard I/N: shard and count; shards 0 without it */
};
#define SHARDS_MAX 1024

/* A decimal number up to max, nothing else (no sign, no spaces). */
static int uint_parse(const char *s, unsigned max, unsigned *out)
{
    unsigned long v = 0;
    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
        return -1;
    v = strtoul(s, NULL, 10);
    *out = (unsigned)v;
    return v <= max ? 0 : -1;
}

/* --shard I/N, or auto from the environment a Kubernetes Indexed Job gives. */
static int shard_parse(const char *arg, struct shard_arg *a)
{
    const char *bad = "--shard takes I/N with 0 <= I < N <= 1024 (e.g. --shard 0/4) or 'auto'";
    if (strcmp(arg, "auto") == 0) {
        const char *i = getenv("JOB_COMPLETION_INDEX"), *n = getenv("BULKHEAD_SHARDS");
        if (!i || !n)
            return cli_usage_error("run",
                                   "--shard auto: %s is not set (%s): give --shard I/N instead",
                                   i ? "BULKHEAD_SHARDS" : "JOB_COMPLETION_INDEX",
                                   i ? "set it to the number of shards, the Job's completions"
                                     : "Kubernetes sets it in the pods of an Indexed Job");
        if (uint_parse(i, SHARDS_MAX, &a->shard) || uint_parse(n, SHARDS_MAX, &a->shards) ||
            a->shard >= a->shards)
            return cli_usage_error("run",
                                   "--shard auto: JOB_COMPLETION_INDEX='%s' and BULKHEAD_SHARDS="
                                   "'%s' do not make a shard I/N with 0 <= I < N <= 1024",
                                   i, n);
        return 0;
    }
    const char *slash = strchr(arg, '/');
    char idx[16] = "";
    if (slash && (size_t)(slash - arg) < sizeof(idx))
        memcpy(idx, arg, (size_t)(slash - arg));
    if (!slash || uint_parse(idx, SHARDS_MAX, &a->shard) ||
        uint_parse(slash + 1, SHARDS_MAX, &a->shards) || a->shard >= a->shards)
        return cli_usage_error("run", "%s, got '%s'", bad, arg);
    return 0;
}

static int shard_take(void *field, int key, const char *cmd, const char *arg)
{
    (void)key;
    (void)cmd;
    return shard_parse(arg, field) ? CLI_EXIT_USAGE : 0;
}

static const char before[] =
    "Runs every stage of PIPELINE over the pull requests of the git repository DIR\n"
    "(source kind git) or the documents under DIR (source kind files).\n"
    "Each request passes the egress gate: data above a stage's clearance is never\n"
    "sent. Finished tasks are kept in the state database; running the same command\n"
    "again resumes an interrupted run without redoing finished work.\n";

static const char after[] =
    "With GITHUB_ACTIONS=true, each finding is also printed on stdout as a GitHub\n"
    "annotation (::error file=...,line=...::...).\n"
    "\n"
    "exit: 0 every task done, 1 a finding at or above --fail-on, 2 usage or\n"
    "configuration error, 3 a policy refusal happened, 4 some tasks failed (a pull\n"
    "request that cannot be read, e.g. one sharing no history with the base, fails\n"
    "its own tasks with the reason; the others run)\n";

static const char *const orders[] = {"model", "naive", NULL};

static const struct cli_opt opts[] = {
    CLI_SOURCE_OPTS(struct run_args, src),
    CLI_OPT_STATE(struct run_args, state, CLI_STATE_HELP),
    CLI_OPT_ENDPOINT(struct run_args, ov, "use URL for endpoint NAME"),
    {.name = "fresh",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct run_args, fresh),
     .help = "start over: do every task again, even when an earlier run of\n"
             "the same command finished it (that run stays in the state);\n"
             "requests the response cache holds are answered from it"},
    {.name = "no-cache",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct run_args, no_cache),
     .help = "neither read nor write the response cache: every request goes\n"
             "to its model, and no reply is kept"},
    CLI_OPT_FAIL_ON(struct run_args, fail_on,
                    "exit 1 when a finding is at or above SEVERITY (info, low,\n"
                    "medium, high, critical)"),
    {.name = "clearance",
     .arg = "LABEL",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct run_args, clearance),
     .help = "the pipeline's outputs and the GitHub annotations hold only\n"
             "task outputs labelled LABEL or lower (see report --help):\n"
             "for CI, where both leave the machine"},
    {.name = "quiet",
     .short_name = 'q',
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct run_args, quiet),
     .help = "no progress display"},
    {.name = "order",
     .arg = "ORDER",
     .kind = CLI_OPT_ENUM,
     .offset = offsetof(struct run_args, order_arg),
     .what = "order",
     .values = orders,
     .help = "model (default: see README) or naive: one task at a time, pull\n"
             "request by pull request, a baseline for benchmarks"},
    {.name = "verbose",
     .short_name = 'v',
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct run_args, verbose),
     .help = "a line per finished task"},
    {.name = "shard",
     .arg = "I/N",
     .kind = CLI_OPT_FUNC,
     .offset = offsetof(struct run_args, sh),
     .take = shard_take,
     .help = "run only shard I (0 <= I < N <= 1024) of the items, split by a\n"
             "hash of each item's key (the same on every machine), and no\n"
             "batch-scope stage; 'auto': I from JOB_COMPLETION_INDEX (a\n"
             "Kubernetes Indexed Job), N from BULKHEAD_SHARDS. Then\n"
             "'bulkhead merge' the shards' states and run again there"},
};

static const struct cli_optset optset =
    CLI_OPTSET("run", "PIPELINE (--repo DIR | --docs DIR) [options]", before, after, opts);

/* 0 to go on, -1 after --help, or an exit code. */
static int parse(int argc, char **argv, struct run_args *a)
{
    *a = (struct run_args){
        .state = CLI_DEFAULT_STATE, .src = CLI_SOURCE_INIT, .fail_on = -1, .order_arg = "model"};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, a, &first);
    if (code)
        return code;
    if (first + 1 != argc)
        return cli_usage_error("run", "expected one PIPELINE file");
    a->pipeline = argv[first];
    a->order = strcmp(a->order_arg, "naive") == 0 ? ENG_ORDER_NAIVE : ENG_ORDER_MODEL;
    return cli_source_check(&a->src, "run");
}

static void run_key(const struct run_args *a, const struct pipeline *p,
                    const struct src_item *items, size_t n, char out[BH_SHA256_HEX])
{
    struct bh_sha256 *h = bh_sha256_new();
    bh_sha256_field(h, "bulkhead-run-v1");
    bh_sha256_field(h, p->hash);
    char *source = cli_source_identity(&a->src);
    bh_sha256_field(h, source);
    free(source);
    for (size_t i = 0; i < n; i++) {
        bh_sha256_field(h, items[i].key);
        bh_sha256_field(h, items[i].version);
    }
    bh_sha256_final(h, out);
}

static void on_signal(int sig)
{
    (void)sig;
    eng_request_stop();
}

struct job {
    struct run_args a;
    struct pipeline *p;
    struct src_item *items;
    size_t n_items;
    struct src_loader *loader; /* reads lazy items' fields during the run */
    struct store *store;
    int64_t run_id;
    struct egr_gate *gate;
    size_t merged; /* shards merged into this run's state: only batch stages run */
};

/* A shard keeps its items and gives the rest up. */
static void shard_filter(struct job *j)
{
    size_t kept = 0, all = j->n_items;
    for (size_t i = 0; i < j->n_items; i++) {
        if (store_shard_of(j->items[i].key, j->a.sh.shards) == j->a.sh.shard)
            j->items[kept++] = j->items[i];
        else
            src_item_release(&j->items[i]);
    }
    j->n_items = kept;
    fprintf(stderr, "bulkhead: shard %u/%u: %zu of %zu %s\n", j->a.sh.shard, j->a.sh.shards, kept,
            all, j->a.src.docs ? "documents" : "pull requests");
}

/* The run's key in the state: the whole run's, or a shard's of it. */
static char *job_key(struct job *j)
{
    char key[BH_SHA256_HEX];
    run_key(&j->a, j->p, j->items, j->n_items, key);
    if (!j->a.sh.shards)
        return bh_xstrdup(key);
    shard_filter(j);
    return store_shard_key(key, j->a.sh.shard, j->a.sh.shards);
}

/* The reports read findings from the stages the pipeline says make them. */
static int findings_stages_record(const struct job *j, struct bh_err *err)
{
    char **names = bh_xcalloc(j->p->n_stages + 1, sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; i < j->p->n_stages; i++)
        if (j->p->stages[i].out_format == PIPE_OUT_FINDINGS)
            names[n++] = j->p->stages[i].name;
    int rc = store_run_set_findings(j->store, j->run_id, names, n, err);
    free(names);
    return rc;
}

/* How the server of a surveyed endpoint enforces local-only, and what the
 * survey could not learn (probe_before_run's report). */
static void survey_warn(void *ud, const struct probe_survey *s, const struct pipeline *p)
{
    (void)ud;
    const struct pipe_endpoint *e = &p->endpoints[s->endpoint];
    char words[200];
    if (!probe_survey_ollama(s, p))
        return; /* another dialect's server that is no Ollama: nothing to ask it */
    if (!s->reached) {
        fprintf(stderr, "bulkhead: warning: could not ask the server: %s; its tasks may fail\n",
                s->err.msg);
        return;
    }
    probe_enforcement_words(s, e, words, sizeof(words));
    fprintf(stderr, "bulkhead: endpoint '%s': local-only enforcement by the server: %s\n",
            pipe_host_name(e), words);
    if (s->err.code) /* a list or the status: what it would have told stays unknown */
        fprintf(stderr, "bulkhead: warning: %s\n", s->err.msg);
    for (size_t i = 0; i < s->n_models; i++)
        if (s->models[i].show_err.code)
            fprintf(stderr,
                    "bulkhead: warning: could not read the context length: %s; stages "
                    "without options.num_ctx on it get the server's default\n",
                    s->models[i].show_err.msg);
}

/* What the probe before a model's first request found (probe_told_fn). */
static void probe_told(void *ud, size_t endpoint, const char *model, const char *remote,
                       const struct bh_err *err)
{
    const struct job *j = ud;
    const struct pipe_endpoint *e = &j->p->endpoints[endpoint];
    if (remote)
        fprintf(stderr,
                "bulkhead: endpoint '%s': model '%s' is a cloud stub that the server "
                "forwards to '%s' (seen in the probe's reply, not in /api/tags): its "
                "stages are treated as cloud\n",
                pipe_host_name(e), model, remote);
    else if (err)
        fprintf(stderr,
                "bulkhead: warning: endpoint '%s' (%s), model '%s': %s; a cloud stub that "
                "hides from /api/tags is then caught only in a reply\n",
                pipe_host_name(e), e->url, model, err->msg);
}

static int job_open(struct job *j, struct bh_err *err)
{
    char *key = NULL;
    int resumed = 0;
    int rc = cli_pipeline_load(&j->p, j->a.pipeline, &j->a.ov, err);
    if (rc == 0 && j->a.clearance && pipe_label_find(j->p, j->a.clearance) < 0)
        rc = bh_err_set(err, BH_EINVAL,
                        "--clearance: '%s' is not a label of %s — give one of "
                        "its \"labels\"",
                        j->a.clearance, j->p->file);
    if (rc == 0)
        rc = cli_items_load(&j->a.src, j->p, &j->items, &j->n_items, &j->loader, err);
    if (rc == 0) {
        key = job_key(j);
        rc = store_open(&j->store, j->a.state, err);
    }
    if (rc == 0)
        rc = store_lock_runner(j->store, err);
    if (rc == 0 && j->a.fresh)
        rc = store_run_retire(j->store, key, err);
    if (rc == 0)
        rc = store_run_open(j->store, key, j->p->name, &j->run_id, &resumed, err);
    free(key);
    if (rc == 0)
        rc = store_run_merged(j->store, j->run_id, &j->merged, err);
    if (rc == 0)
        rc = store_run_set_labels(j->store, j->run_id, j->p->labels, j->p->n_labels, err);
    if (rc == 0)
        rc = findings_stages_record(j, err);
    if (rc == 0)
        rc = egr_new(&j->gate, j->p, j->store, j->run_id, err);
    if (rc == 0) /* a configuration error, before anything is sent */
        rc = egr_keys_check(j->gate, err);
    if (rc == 0) /* cloud stubs and the server's own enforcement, before the check */
        rc = probe_before_run(j->gate, j->p, survey_warn, probe_told, j, err);
    if (rc == 0)
        fprintf(stderr, "bulkhead: %s run %lld: %zu %s x %zu stages (state in %s)\n",
                resumed ? "resuming" : "starting", (long long)j->run_id, j->n_items,
                j->a.src.docs ? "documents" : "pull requests", j->p->n_stages, j->a.state);
    return rc;
}

static void job_close(struct job *j)
{
    egr_free(j->gate); /* ends its network loop first, then what the transfers held */
    store_free(j->store);
    src_items_free(j->items, j->n_items);
    src_loader_free(j->loader);
    pipe_free(j->p);
}

/* An endpoint declared local that did not verify: says why, with the line
 * to add when its address is private (the stages' refusals only name it). */
static void refuted_print(const struct job *j)
{
    for (size_t i = 0; i < j->p->n_endpoints; i++) {
        const struct egr_endpoint *e = egr_endpoint_info(j->gate, i);
        const struct pipe_endpoint *pe = &j->p->endpoints[i];
        if (pe->declared_local != 1 || e->local)
            continue;
        if (pe->is_pool) /* the whole pool is refused: name the host and its url's line */
            fprintf(stderr, "bulkhead: %s: endpoints.%s.urls[%zu]: host '%s': %s\n", j->p->file,
                    pe->name, pe->host, pipe_host_name(pe), e->reason);
        else
            fprintf(stderr, "bulkhead: %s: endpoints.%s: %s\n", j->p->file, pe->name, e->reason);
    }
}

/* The static proof, over the endpoints exactly as the gate verified them. */
static int job_check(struct job *j)
{
    struct pol_stage_report *rep = bh_xcalloc(j->p->n_stages, sizeof(*rep));
    size_t bad = probe_flow_check_gate(j->p, j->gate, rep); /* with the probe's facts */
    if (bad)
        refuted_print(j);
    for (size_t s = 0; s < j->p->n_stages; s++) {
        if (pol_stage_over_endpoint(j->p, s)) {
            /* The gate would cap it silently; check refuses it, so run does too. */
            fprintf(stderr,
                    "bulkhead: %s: stages.%s: refused to run: the stage declares a "
                    "clearance above its endpoint's — run 'bulkhead check' for details\n",
                    j->p->file, j->p->stages[s].name);
            bad++;
            if (rep[s].ok)
                continue;
        }
        if (rep[s].ok)
            continue;
        struct bh_err err = {0};
        fprintf(stderr, "bulkhead: %s: stages.%s: refused to run: %s stage %s\n", j->p->file,
                j->p->stages[s].name, rep[s].local ? "local" : "cloud", rep[s].reason);
        char why[300];
        snprintf(why, sizeof(why), "static check: %s", rep[s].reason);
        if (egr_audit_refusal(j->gate, s, "", rep[s].input, why, &err))
            bh_err_print(&err, stderr);
    }
    free(rep);
    return bad ? BH_EPOLICY : 0;
}

/* job_check's refusals are audited: when one could not be, the run stops
 * with that (exit 70) rather than as a refusal (3). */
static int job_check_exit(struct job *j)
{
    struct bh_err err = {0};
    if (egr_audit_broken(j->gate, &err))
        return cli_fail(&err);
    return CLI_EXIT_POLICY;
}

/* The answering model is part of the result: a stage answered by another
 * model than it asked for is said under where it ran. */
static void models_print(struct store *st, int64_t run_id)
{
    struct bh_err err = {0};
    if (rep_models_print(st, run_id, "answered by another model than the stage asked for:\n", "  ",
                         stderr, &err))
        bh_err_print(&err, stderr);
}

/* A standby stage (a reroute target) runs only in place of another: its
 * tasks are the other stage's, answered where the standby points. It is
 * listed when a stage that reroutes to it answered there or in several
 * places; when nothing was rerouted to it, it ran nowhere. */
static int standby_ran(const struct pipeline *p, size_t standby, const struct store_stage_count *v,
                       size_t n)
{
    const char *ep = p->endpoints[p->stages[standby].endpoint].name;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < p->n_stages; k++) {
            const struct pipe_stage *t = &p->stages[k];
            if (t->reroute != (long)standby || strcmp(t->name, v[i].stage) != 0)
                continue;
            size_t n_ep = strlen(ep); /* a pool's hosts are "NAME#K" */
            if (!v[i].endpoint || !*v[i].endpoint || strcmp(v[i].endpoint, ep) == 0 ||
                (strncmp(v[i].endpoint, ep, n_ep) == 0 && v[i].endpoint[n_ep] == '#'))
                return 1;
        }
    }
    return 0;
}

/* The hosts of a pool stage that answered, as status counted them
 * ("gpus#1,gpus#3"), or NULL when not known. */
static const char *hosts_of(const struct store_stage_count *v, size_t n, const char *stage)
{
    for (size_t i = 0; v && i < n; i++)
        if (strcmp(v[i].stage, stage) == 0 && v[i].endpoint && v[i].endpoint[0])
            return v[i].endpoint;
    return NULL;
}

/* "gpus (gpus#1 http://..., gpus#3 http://...)": a pool by the hosts that
 * answered its stage (every host when none has yet). */
static void pool_where(const struct pipe_endpoint *e, const char *hosts)
{
    const char *sep = "";
    fprintf(stderr, "%s (", e->name);
    for (size_t h = 0; h < e->n_pool; h++) {
        const char *name = pipe_host_name(&e[h]);
        size_t len = strlen(name);
        const char *at = hosts ? strstr(hosts, name) : NULL;
        if (hosts && !(at && (at[len] == ',' || at[len] == '\0')))
            continue;
        fprintf(stderr, "%s%s %s", sep, name, e[h].url);
        sep = ", ";
    }
    fputc(')', stderr);
}

static void where_print(const struct job *j)
{
    struct store_stage_count *v = NULL;
    size_t n = 0;
    struct bh_err err = {0};
    int counted = store_stage_counts(j->store, j->run_id, &v, &n, &err) == 0;
    fprintf(stderr, "where each stage ran:\n");
    for (size_t k = 0; k < j->p->n_stages; k++) {
        const struct pipe_stage *s = &j->p->stages[j->p->order[k]];
        if (s->standby && counted && !standby_ran(j->p, j->p->order[k], v, n))
            continue;
        const struct pipe_endpoint *e = &j->p->endpoints[s->endpoint];
        fprintf(stderr, "  %-12s %-6s ", s->name,
                egr_stage_local(j->gate, j->p->order[k]) ? "local" : "cloud");
        if (e->is_pool)
            pool_where(e, counted ? hosts_of(v, n, s->name) : NULL);
        else
            fprintf(stderr, "%s (%s)", e->name, e->url);
        fprintf(stderr, ", model %s\n", s->model);
    }
    store_stage_counts_free(v, n);
    models_print(j->store, j->run_id);
}

/* A shard runs no batch-scope stage and a merged state runs only those:
 * the summary says which, and what to do next. */
static void scope_note(const struct job *j)
{
    char names[512] = "";
    size_t len = 0;
    for (size_t k = 0; k < j->p->n_stages; k++) {
        const struct pipe_stage *s = &j->p->stages[j->p->order[k]];
        if (s->scope == PIPE_SCOPE_BATCH && !s->standby && len < sizeof(names))
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "",
                                    s->name);
    }
    if (j->a.sh.shards && len)
        fprintf(stderr,
                "bulkhead: shard %u/%u: batch-scope stages not run in a shard: %s — merge the "
                "shards' states ('bulkhead merge --into DIR STATE...') and run this command "
                "without --shard on DIR\n",
                j->a.sh.shard, j->a.sh.shards, names);
    else if (j->merged)
        fprintf(stderr,
                "bulkhead: merged state of %zu shards: item-scope tasks are the shards', only "
                "batch-scope stages run%s%s\n",
                j->merged, len ? ": " : " (the pipeline has none)", names);
}

static int outputs_write(const struct job *j, struct bh_err *err)
{
    for (size_t i = 0; i < j->p->n_outputs; i++) {
        const struct pipe_output *o = &j->p->outputs[i];
        struct rep_opts ro = {o->format, j->a.fail_on, 0, j->a.clearance};
        int rc = rep_write_file(j->store, j->run_id, &ro, o->path, err);
        if (rc)
            return rc;
        fprintf(stderr, "bulkhead: wrote %s (%s)\n", o->path, o->format);
    }
    return 0;
}

static int finish(struct job *j, const struct eng_summary *sum)
{
    struct bh_err err = {0};
    const char *status = sum->interrupted ? "interrupted"
                         : sum->withheld  ? "refused"
                         : sum->failed    ? "failed"
                                          : "ok";
    fprintf(stderr,
            "bulkhead: run %lld %s: %zu tasks, %zu done (%zu from an earlier attempt), "
            "%zu failed, %zu withheld by policy, %zu skipped as the pipeline declares\n",
            (long long)j->run_id, status, sum->tasks, sum->done + sum->reused, sum->reused,
            sum->failed, sum->withheld, sum->skipped);
    scope_note(j);
    where_print(j);
    if (store_run_finish(j->store, j->run_id, status, &err) || outputs_write(j, &err))
        return cli_fail(&err);
    if (sum->interrupted) {
        fprintf(stderr, "bulkhead: interrupted; run the same command again to resume\n");
        return CLI_EXIT_FAILED;
    }
    if (cli_in_github_actions() &&
        rep_annotations(j->store, j->run_id, j->a.clearance, stdout, &err))
        return cli_fail(&err);
    int code = sum->withheld ? CLI_EXIT_POLICY : sum->failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
    int found = cli_run_exit(j->store, j->run_id, j->a.fail_on);
    return code ? code : found;
}

static int run_job(struct job *j);

/* The engine reads a lazy item's fields through the source's loader. */
static int item_load(void *ud, struct src_item *it)
{
    return src_loader_load(ud, it);
}

static void item_unload(void *ud, struct src_item *it)
{
    (void)ud;
    src_item_unload(it);
}

int cmd_run(int argc, char **argv)
{
    struct job j = {0};
    int code = parse(argc, argv, &j.a);
    if (code == 0)
        code = run_job(&j);
    else if (code < 0)
        code = CLI_EXIT_OK;
    cli_source_release(&j.a.src);
    return code;
}

static int run_job(struct job *jp)
{
    struct job j = *jp;
    int code;
    struct bh_err err = {0};
    int rc = job_open(&j, &err);
    if (rc == 0 && (rc = job_check(&j)) != 0) {
        store_run_finish(j.store, j.run_id, "refused", &err);
        code = job_check_exit(&j);
        job_close(&j);
        return code;
    }
    if (rc) {
        struct bh_err ferr = {0};
        if (rc == BH_EPOLICY && j.store) /* enforce_local require: refused before it started */
            store_run_finish(j.store, j.run_id, "refused", &ferr);
        job_close(&j);
        return cli_fail(&err);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct eng_summary sum;
    struct cli_progress *pr = cli_progress_new(stderr, cli_progress_mode(stderr, j.a.quiet));
    struct eng_loader loader = {item_load, item_unload, j.loader};
    struct eng_opts eo = {.p = j.p,
                          .store = j.store,
                          .run_id = j.run_id,
                          .gate = j.gate,
                          .items = j.items,
                          .n_items = j.n_items,
                          .loader = j.loader ? &loader : NULL,
                          .kind = &stage_kind,
                          .verbose = j.a.verbose,
                          .no_cache = j.a.no_cache,
                          .order = j.a.order,
                          .no_batch = j.a.sh.shards > 0,
                          .batch_only = j.merged > 0,
                          .progress = pr ? cli_progress_update : NULL,
                          .say = pr ? cli_progress_say : NULL,
                          .ud = pr};
    /* Agent tools read the pull requests' commits from the repository. */
    struct stage_repo repo = {j.a.src.docs ? NULL : j.a.src.repo ? j.a.src.repo : "."};
    stage_kinds_bind(&repo);
    rc = eng_run(&eo, &sum, &err);
    stage_kinds_bind(NULL);
    cli_progress_free(pr);
    code = rc ? cli_fail(&err) : finish(&j, &sum);
    job_close(&j);
    return code;
}
