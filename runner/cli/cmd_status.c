/* cli/cmd_status.c — `bulkhead status`: how far a run has got, from the
 * state database, in the rows the live display of `bulkhead run` draws.
 * Reads only, takes no lock: it may run in another terminal while the run
 * goes on (the database is WAL, so neither waits for the other). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "cli/progress.h"
#include "report/report.h"
#include "store/status.h"
#include "store/store.h"
#include "util/bh_err.h"

struct status_args {
    const char *state;
    long long run; /* --run, 0 for the latest */
};

static const char before[] =
    "Prints how far the latest run (or run ID) has got, from the state database: a\n"
    "line per stage with its tasks done out of all, in flight, failed, withheld and\n"
    "answered from the response cache, tokens per second and where it ran, then the\n"
    "totals. Works while the run goes on (from another terminal) and after it.\n";

static const struct cli_opt opts[] = {
    CLI_OPT_STATE(struct status_args, state, CLI_STATE_HELP),
    CLI_OPT_RUN(struct status_args, run),
};

static const struct cli_optset optset = CLI_OPTSET("status", "[options]", before, NULL, opts);

static void row_of(const struct store_stage_count *c, struct cli_stage_row *r)
{
    *r = (struct cli_stage_row){.name = c->stage,
                                .total = (size_t)c->total,
                                .done = (size_t)c->done,
                                .failed = (size_t)c->failed,
                                .withheld = (size_t)c->withheld,
                                .skipped = (size_t)c->skipped,
                                .in_flight = (size_t)c->running,
                                .cached = (size_t)c->cached,
                                .output_tokens = c->output_tokens,
                                .active_ms = c->active_ms,
                                .ended = c->pending == 0 && c->running == 0,
                                .endpoint = c->endpoint[0] ? c->endpoint : NULL,
                                .model = c->model[0] ? c->model : NULL};
}

static void print_table(const struct store_run_info *run, const struct store_stage_count *v,
                        size_t n)
{
    struct store_stage_count sum = {0};
    int width = 8;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(v[i].stage) > width)
            width = (int)strlen(v[i].stage) < 40 ? (int)strlen(v[i].stage) : 40;
    printf("run %lld (%s): %s, started %s%s%s\n", (long long)run->id, run->pipeline, run->status,
           run->started, run->finished[0] ? ", finished " : "", run->finished);
    for (size_t i = 0; i < n; i++) {
        struct cli_stage_row r;
        char line[512];
        row_of(&v[i], &r);
        printf("  %s\n", cli_progress_row(&r, width, line, sizeof(line)));
        sum.total += v[i].total, sum.done += v[i].done, sum.failed += v[i].failed;
        sum.withheld += v[i].withheld, sum.skipped += v[i].skipped, sum.pending += v[i].pending,
            sum.running += v[i].running;
        sum.cached += v[i].cached, sum.prompt_tokens += v[i].prompt_tokens;
        sum.output_tokens += v[i].output_tokens;
    }
    char skipped[64] = "";
    if (sum.skipped)
        snprintf(skipped, sizeof(skipped), ", %lld skipped as the pipeline declares",
                 (long long)sum.skipped);
    printf("tasks: %lld, %lld done, %lld failed, %lld withheld%s, %lld running, %lld pending, "
           "%lld from the cache; model tokens %lld in, %lld out\n",
           (long long)sum.total, (long long)sum.done, (long long)sum.failed,
           (long long)sum.withheld, skipped, (long long)sum.running, (long long)sum.pending,
           (long long)sum.cached, (long long)sum.prompt_tokens, (long long)sum.output_tokens);
}

static int status_print(struct store *s, int64_t run_id, struct bh_err *err)
{
    struct store_run_info run;
    struct store_stage_count *v = NULL;
    size_t n = 0;
    int rc = store_run_info(s, run_id, &run, err);
    if (rc)
        return rc;
    rc = store_stage_counts(s, run_id, &v, &n, err);
    if (rc == 0)
        print_table(&run, v, n);
    if (rc == 0)
        rc = rep_models_print(s, run_id, "answered by another model than the stage asked for:\n",
                              "  ", stdout, err);
    store_stage_counts_free(v, n);
    store_run_info_release(&run);
    return rc;
}

int cmd_status(int argc, char **argv)
{
    struct status_args a = {.state = CLI_DEFAULT_STATE};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, &a, &first);
    if (code)
        return code < 0 ? CLI_EXIT_OK : code;
    if (first != argc)
        return cli_usage_error("status", "unexpected argument '%s'", argv[first]);
    struct bh_err err = {0};
    struct store *s = NULL;
    int64_t run_id = a.run;
    int rc = cli_state_open_run(&s, a.state, &run_id, &err);
    if (rc == 0)
        rc = status_print(s, run_id, &err);
    store_free(s);
    return rc ? cli_fail(&err) : CLI_EXIT_OK;
}
