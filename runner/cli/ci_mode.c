/* cli/ci_mode.c — CI mode: the one place that turns a run's outcome into an
 * exit code when findings count (run --fail-on, report --fail-on), so the
 * two commands can never disagree about the same run. */
#include "cli/ci_mode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "report/report.h"
#include "store/store.h"
#include "findings/findings.h"
#include "util/bh_err.h"

int cli_fail_on_parse(const char *cmd, const char *arg, int *out)
{
    int sev = stage_severity_find(arg);
    if (sev < 0)
        return cli_usage_error(cmd, "--fail-on takes a severity, got '%s' (valid: %s)", arg,
                               stage_severity_list());
    *out = sev;
    return 0;
}

int cli_fail_on_take(void *field, int key, const char *cmd, const char *arg)
{
    (void)key;
    return cli_fail_on_parse(cmd, arg, field) ? CLI_EXIT_USAGE : 0;
}

int cli_in_github_actions(void)
{
    const char *v = getenv("GITHUB_ACTIONS");
    return v && strcmp(v, "true") == 0;
}

static size_t findings_print(const struct rep_outcome *o, int fail_on)
{
    size_t total = 0, above = 0;
    for (int s = 0; s < STAGE_SEV_COUNT; s++) {
        total += o->findings[s];
        above += fail_on >= 0 && s >= fail_on ? o->findings[s] : 0;
    }
    fprintf(stderr, "bulkhead: %zu finding%s", total, total == 1 ? "" : "s");
    const char *sep = " (";
    for (int s = STAGE_SEV_COUNT - 1; s >= 0; s--)
        if (o->findings[s]) {
            fprintf(stderr, "%s%zu %s", sep, o->findings[s], stage_severity_name(s));
            sep = ", ";
        }
    fprintf(stderr, "%s", total ? ")" : "");
    if (fail_on >= 0)
        fprintf(stderr, ", %zu at or above --fail-on %s", above, stage_severity_name(fail_on));
    fprintf(stderr, "\n");
    return above;
}

int cli_run_exit(struct store *s, int64_t run_id, int fail_on)
{
    struct rep_outcome o;
    struct bh_err err = {0};
    char **stages = NULL;
    size_t n = 0;
    if (rep_outcome(s, run_id, &o, &err) || store_run_findings(s, run_id, &stages, &n, &err))
        return cli_fail(&err);
    for (size_t i = 0; i < n; i++)
        free(stages[i]);
    free(stages);
    size_t above = n ? findings_print(&o, fail_on) : 0;
    if (o.withheld)
        return CLI_EXIT_POLICY;
    if (o.failed || o.unfinished || o.unreadable)
        return CLI_EXIT_FAILED;
    return above ? CLI_EXIT_FINDINGS : CLI_EXIT_OK;
}
