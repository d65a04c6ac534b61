/* cli/cmd_report.c — `bulkhead report`: the results of the latest run (or
 * of --run ID) from the state database. Reads only; sends nothing. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/ci_mode.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "report/report.h"
#include "store/store.h"
#include "util/bh_err.h"

struct report_args {
    const char *state;
    long long run; /* --run, 0 for the latest */
    struct rep_opts ro;
};

static const char before[] =
    "Prints the results of the latest run kept in the state database: every item\n"
    "and stage with its state, where it ran (endpoint, locality, model), the label\n"
    "of its output, its output or the reason it has none, and the findings of the\n"
    "stages whose output format is findings.\n";

static const struct cli_opt opts[] = {
    CLI_OPT_STATE(struct report_args, state, CLI_STATE_HELP),
    {.name = "format",
     .arg = "FMT",
     .kind = CLI_OPT_ENUM,
     .offset = offsetof(struct report_args, ro.format),
     .what = "format",
     .known = rep_format_known,
     .list = rep_format_list,
     .help = "md (default: a pull-request comment), jsonl (one JSON object\n"
             "per task), sarif (SARIF 2.1.0, for code scanning), junit (JUnit\n"
             "XML), github-review (the JSON body of a pull-request review)"},
    CLI_OPT_RUN(struct report_args, run),
    CLI_OPT_FAIL_ON(struct report_args, ro.fail_on,
                    "findings at or above SEVERITY (info, low, medium, high,\n"
                    "critical) are failures in junit and counted in md; the exit\n"
                    "code is then the run's: 1 such a finding, 3 a task withheld,\n"
                    "4 a task failed or not finished"),
    {.name = "max-bytes",
     .arg = "N",
     .kind = CLI_OPT_SIZE,
     .offset = offsetof(struct report_args, ro.max_bytes),
     .min = 1024,
     .what = "a size of 1024 bytes or more (e.g. 60000, 64K)",
     .help = "md: keep the report under N bytes (a pull-request comment\n"
             "holds 65536 characters): task outputs give way first, then\n"
             "the tables, and a line says what was left out; e.g. 60000"},
    {.name = "clearance",
     .arg = "LABEL",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct report_args, ro.clearance),
     .help = "render only outputs labelled LABEL or lower (a report that is\n"
             "posted or uploaded leaves the machine): every other task is\n"
             "named withheld with its label, its output and findings left\n"
             "out, and a failed task's message too (it may quote a reply);\n"
             "CI templates pass internal. Default: everything (local use)"},
};

static const struct cli_optset optset = CLI_OPTSET("report", "[options]", before, NULL, opts);

int cmd_report(int argc, char **argv)
{
    struct report_args a = {.state = CLI_DEFAULT_STATE, .ro = REP_OPTS_INIT};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, &a, &first);
    if (code)
        return code < 0 ? CLI_EXIT_OK : code;
    if (first != argc)
        return cli_usage_error("report", "unexpected argument '%s'", argv[first]);
    struct bh_err err = {0};
    struct store *s = NULL;
    int64_t run_id = a.run;
    int rc = cli_state_open_run(&s, a.state, &run_id, &err);
    if (rc == 0)
        rc = rep_write(s, run_id, &a.ro, stdout, &err);
    code = rc ? cli_fail(&err) : CLI_EXIT_OK;
    if (rc == 0 && a.ro.fail_on >= 0) /* as the run came out, findings counted */
        code = cli_run_exit(s, run_id, a.ro.fail_on);
    store_free(s);
    return code;
}
