/* cli/cmd_plan.c — `bulkhead plan PIPELINE <source options>`: lists the work
 * items and, per item, every task with the label its prompt would carry
 * given the item's actual data (path rules and detectors applied) and what
 * the gate would do with it. Reads the source and resolves the endpoints;
 * calls no model and sends nothing. */
#include <stddef.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/label.h"
#include "policy/plan.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_xmalloc.h"

struct plan_args {
    const char *pipeline;
    struct cli_source src;
    const char *format; /* --format: text or json */
    struct cli_overrides ov;
};

static const char before[] =
    "Lists the work items PIPELINE would process and, per item, each task with the\n"
    "label its prompt would carry with the item's actual data (source labels, path\n"
    "rules and content detectors applied) and what the egress gate would do:\n"
    "allow, reroute (on_sensitive reroute:STAGE), skip, refuse, or withheld (a stage\n"
    "it depends on produced nothing). A task whose prompt is estimated over the\n"
    "context window the stage states (options.num_ctx), with the estimate a run\n"
    "checks every prompt with (about 4 bytes a token; outputs of other stages not\n"
    "counted), is marked \"too large\": the run would fail it. Calls no model and\n"
    "sends nothing.\n"
    "\n"
    "The work items are chosen as for 'bulkhead run'. Pull requests whose diff is\n"
    "empty are skipped with a note (unless --keep-empty); one that cannot be read is\n"
    "listed with its content fields unscanned and the reason.\n";

static const char after[] =
    "exit: 0 nothing would be refused or fail, 2 a usage or configuration error, 3 some\n"
    "task would be refused, 4 none would be refused but some task is too large for\n"
    "its context window\n";

static const char *const formats[] = {"text", "json", NULL};

static const struct cli_opt opts[] = {
    CLI_SOURCE_OPTS(struct plan_args, src),
    {.name = "format",
     .arg = "FORMAT",
     .kind = CLI_OPT_ENUM,
     .offset = offsetof(struct plan_args, format),
     .what = "format",
     .values = formats,
     .help = "text (default) or json"},
    CLI_OPT_ENDPOINT(struct plan_args, ov, "use URL for endpoint NAME (as 'run' would)"),
};

static const struct cli_optset optset =
    CLI_OPTSET("plan", "PIPELINE (--repo DIR | --docs DIR) [options]", before, after, opts);

static int parse(int argc, char **argv, struct plan_args *a)
{
    *a = (struct plan_args){.src = CLI_SOURCE_INIT, .format = "text"};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, a, &first);
    if (code)
        return code;
    if (first + 1 != argc)
        return cli_usage_error("plan", "expected one PIPELINE file");
    a->pipeline = argv[first];
    return cli_source_check(&a->src, "plan");
}

struct planner {
    const struct pipeline *p;
    int *clearance, *local;
    struct src_item *items;
    size_t n_items;
    struct src_loader *loader; /* reads lazy items' fields */
    struct pol_item_plan *plans;
    struct pol_task_plan *batch;
    size_t n_batch, refused;
    size_t too_large; /* tasks whose prompt is estimated over the stage's num_ctx */
};

/* The window a task's prompt must fit: options.num_ctx of the stage that
 * runs it (the gate's facts from a server are not known offline); 0 when
 * none is stated. Only tasks that would be sent are measured. */
static long task_window(const struct planner *pl, const struct pol_task_plan *t)
{
    if (t->decision != POL_ALLOW && t->decision != POL_REROUTE)
        return 0;
    return pl->p->stages[t->ran].num_ctx;
}

static int task_too_large(const struct planner *pl, const struct pol_task_plan *t)
{
    return pol_prompt_over(t->bytes, task_window(pl, t));
}

/* ---- text ---- */

static void text_fields(const struct planner *pl, const struct pol_item_plan *ip)
{
    const struct pipeline *p = pl->p;
    for (size_t i = 0; i < ip->n_fields; i++) {
        const struct pol_value *v = &ip->fields[i];
        printf("    %-12s %s", p->source.fields[i], pol_label_name(p, v->label));
        for (size_t r = 0; r < v->n_reasons && r < 4; r++) {
            char why[512];
            pol_reason_format(p, &v->reasons[r], why, sizeof(why));
            printf("%s%s", r ? "; " : " — ", why);
        }
        if (v->n_reasons > 4)
            printf("; and %zu more", v->n_reasons - 4);
        printf("\n");
    }
}

static void text_task(const struct planner *pl, const struct pol_task_plan *t)
{
    const struct pipeline *p = pl->p;
    const struct pipe_stage *s = &p->stages[t->stage];
    char what[160];
    snprintf(what, sizeof(what), "%s%s%s", s->name, t->element ? " " : "",
             t->element ? t->element : "");
    int more = t->decision != POL_ALLOW || t->declassified;
    printf("    %-28s %-6s %-13s %-*s", what, pl->local[t->stage] ? "local" : "cloud",
           pol_label_name(p, t->label), more ? 9 : 0, pol_decision_name(t->decision));
    if (t->decision == POL_REROUTE)
        printf(" to %s (%s, %s)", p->stages[t->ran].name, pl->local[t->ran] ? "local" : "cloud",
               pol_label_name(p, t->ran_label));
    if (t->decision != POL_ALLOW)
        printf(" — %s%s%s", t->decision == POL_WITHHELD ? "" : "clearance ",
               t->decision == POL_WITHHELD ? "" : pol_label_name(p, pl->clearance[t->stage]),
               t->decision == POL_WITHHELD ? t->why : "");
    if (t->decision != POL_ALLOW && t->decision != POL_WITHHELD)
        printf(", %s", t->why);
    if (t->declassified)
        printf(" (output declassified to %s if its guards pass)", pol_label_name(p, t->output));
    if (task_too_large(pl, t))
        printf(" — too large: ~%ld tokens estimated, num_ctx %ld", pol_tokens_estimate(t->bytes),
               task_window(pl, t));
    printf("\n");
}

static void text_print(const struct planner *pl)
{
    const struct pipeline *p = pl->p;
    printf("plan for %s: %zu items (no model is called)\n", p->name, pl->n_items);
    for (size_t i = 0; i < pl->n_items; i++) {
        const struct src_item *it = &pl->items[i];
        const char *title = src_item_field(it, "pr.title");
        printf("\n%s%s%s%s\n  fields:\n", it->key, title ? "  \"" : "", title ? title : "",
               title ? "\"" : "");
        text_fields(pl, &pl->plans[i]);
        printf("  tasks:\n");
        for (size_t k = 0; k < pl->plans[i].n_tasks; k++)
            text_task(pl, &pl->plans[i].tasks[k]);
    }
    if (pl->n_batch)
        printf("\nbatch (over every item):\n");
    for (size_t k = 0; k < pl->n_batch; k++)
        text_task(pl, &pl->batch[k]);
    printf("\n%zu task%s would be refused\n", pl->refused, pl->refused == 1 ? "" : "s");
    if (pl->too_large)
        printf("%zu task%s too large for the context window (options.num_ctx): the run would "
               "fail %s — raise num_ctx or give the stage less to read\n",
               pl->too_large, pl->too_large == 1 ? " is" : "s are",
               pl->too_large == 1 ? "it" : "them");
}

/* ---- json ---- */

static json_t *json_task(const struct planner *pl, const struct pol_task_plan *t, int *bad)
{
    const struct pipeline *p = pl->p;
    json_t *o = json_object();
    bh_json_set(o, "stage", json_string(p->stages[t->stage].name), bad);
    bh_json_set(o, "element", t->element ? json_string(t->element) : json_null(), bad);
    bh_json_set(o, "locality", json_string(pl->local[t->stage] ? "local" : "cloud"), bad);
    bh_json_set(o, "label", json_string(pol_label_name(p, t->label)), bad);
    bh_json_set(o, "clearance", json_string(pol_label_name(p, pl->clearance[t->stage])), bad);
    bh_json_set(o, "decision", json_string(pol_decision_name(t->decision)), bad);
    bh_json_set(o, "ran", json_string(p->stages[t->ran].name), bad);
    bh_json_set(o, "ran_label", json_string(pol_label_name(p, t->ran_label)), bad);
    bh_json_set(o, "output",
                t->output >= 0 ? json_string(pol_label_name(p, t->output)) : json_null(), bad);
    bh_json_set(o, "declassified", json_boolean(t->declassified), bad);
    bh_json_set(o, "why", json_string(t->why), bad);
    bh_json_set(o, "tokens", json_integer(pol_tokens_estimate(t->bytes)), bad);
    bh_json_set(o, "too_large", json_boolean(task_too_large(pl, t)), bad);
    return o;
}

static json_t *json_fields(const struct planner *pl, const struct pol_item_plan *ip, int *bad)
{
    json_t *o = json_object();
    for (size_t i = 0; i < ip->n_fields; i++) {
        const struct pol_value *v = &ip->fields[i];
        json_t *f = json_object(), *why = json_array();
        for (size_t r = 0; r < v->n_reasons; r++) {
            char buf[512];
            pol_reason_format(pl->p, &v->reasons[r], buf, sizeof(buf));
            bh_json_push(why, json_string(buf), bad);
        }
        bh_json_set(f, "label", json_string(pol_label_name(pl->p, v->label)), bad);
        bh_json_set(f, "declared", json_string(pol_label_name(pl->p, v->declared)), bad);
        bh_json_set(f, "reasons", why, bad);
        bh_json_set(o, pl->p->source.fields[i], f, bad);
    }
    return o;
}

/* Nothing is printed unless every value went in: a plan with a task left
 * out would under-state what the run sends. */
static int json_print(const struct planner *pl, struct bh_err *err)
{
    json_t *root = json_object(), *items = json_array(), *batch = json_array();
    int bad = 0;
    for (size_t i = 0; i < pl->n_items; i++) {
        json_t *it = json_object(), *tasks = json_array();
        for (size_t k = 0; k < pl->plans[i].n_tasks; k++)
            bh_json_push(tasks, json_task(pl, &pl->plans[i].tasks[k], &bad), &bad);
        bh_json_set(it, "key", json_string(pl->items[i].key), &bad);
        bh_json_set(it, "fields", json_fields(pl, &pl->plans[i], &bad), &bad);
        bh_json_set(it, "tasks", tasks, &bad);
        bh_json_push(items, it, &bad);
    }
    for (size_t k = 0; k < pl->n_batch; k++)
        bh_json_push(batch, json_task(pl, &pl->batch[k], &bad), &bad);
    bh_json_set(root, "pipeline", json_string(pl->p->name), &bad);
    bh_json_set(root, "items", items, &bad);
    bh_json_set(root, "batch", batch, &bad);
    bh_json_set(root, "refused", json_integer((json_int_t)pl->refused), &bad);
    bh_json_set(root, "too_large", json_integer((json_int_t)pl->too_large), &bad);
    int rc = bad ? BH_EINVAL : bh_json_dump_file(stdout, root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (rc)
        return bh_err_set(err, BH_EINTERNAL,
                          "cannot write the plan as JSON: a value could not be put into JSON — "
                          "please report this bug");
    printf("\n");
    return 0;
}

/* ---- the work ---- */

static int endpoints_verify(struct planner *pl, struct bh_err *err)
{
    const struct pipeline *p = pl->p;
    struct egr_endpoint *eps = bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*eps));
    int rc = cli_endpoints_verify(p, eps, err);
    for (size_t s = 0; rc == 0 && s < p->n_stages; s++) {
        int el = eps[p->stages[s].endpoint].local;
        pl->clearance[s] = pol_stage_clearance(p, s, el);
        pl->local[s] = pol_stage_local(p, s, el);
    }
    free(eps);
    return rc;
}

static size_t refusals(const struct pol_task_plan *t, size_t n)
{
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        r += t[i].decision == POL_REFUSE;
    return r;
}

static int plan_all(struct planner *pl, struct bh_err *err)
{
    const struct pipeline *p = pl->p;
    struct pol_labeller *lab = NULL;
    int rc = pol_labeller_new(&lab, p, err);
    if (rc)
        return rc;
    pl->plans = bh_xcalloc(pl->n_items ? pl->n_items : 1, sizeof(*pl->plans));
    for (size_t i = 0; i < pl->n_items; i++) {
        /* The plan's reasons name the items' paths: every item stays read
         * until the plan is printed. */
        struct src_item *it = &pl->items[i];
        if (src_loader_load(pl->loader, it) && it->note)
            fprintf(stderr, "bulkhead: note: %s\n", it->note);
        pol_plan_item(lab, pl->clearance, it, &pl->plans[i]);
        pl->refused += refusals(pl->plans[i].tasks, pl->plans[i].n_tasks);
        for (size_t k = 0; k < pl->plans[i].n_tasks; k++)
            pl->too_large += (size_t)task_too_large(pl, &pl->plans[i].tasks[k]);
    }
    pl->batch = bh_xcalloc(p->n_stages, sizeof(*pl->batch));
    pol_plan_batch(lab, pl->clearance, pl->plans, pl->n_items, pl->batch, &pl->n_batch);
    pl->refused += refusals(pl->batch, pl->n_batch);
    pol_labeller_free(lab);
    return 0;
}

static int plan_run(const struct plan_args *a, struct pipeline *p, struct bh_err *err)
{
    struct planner pl = {.p = p};
    pl.clearance = bh_xcalloc(p->n_stages, sizeof(*pl.clearance));
    pl.local = bh_xcalloc(p->n_stages, sizeof(*pl.local));
    int rc = endpoints_verify(&pl, err);
    if (rc == 0)
        rc = cli_items_load(&a->src, p, &pl.items, &pl.n_items, &pl.loader, err);
    if (rc == 0)
        rc = plan_all(&pl, err);
    if (rc == 0 && strcmp(a->format, "json") == 0)
        rc = json_print(&pl, err);
    else if (rc == 0)
        text_print(&pl);
    for (size_t i = 0; pl.plans && i < pl.n_items; i++)
        pol_item_plan_release(&pl.plans[i]);
    free(pl.plans);
    free(pl.batch);
    src_items_free(pl.items, pl.n_items);
    src_loader_free(pl.loader);
    free(pl.clearance);
    free(pl.local);
    if (rc)
        return cli_fail(err);
    return pl.refused ? CLI_EXIT_POLICY : pl.too_large ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cmd_plan(int argc, char **argv)
{
    struct plan_args a;
    int code = parse(argc, argv, &a);
    struct bh_err err = {0};
    struct pipeline *p = NULL;
    if (code == 0 && cli_pipeline_load(&p, a.pipeline, &a.ov, &err))
        code = cli_fail(&err);
    else if (code == 0)
        code = plan_run(&a, p, &err);
    pipe_free(p);
    cli_source_release(&a.src);
    return code < 0 ? CLI_EXIT_OK : code;
}
