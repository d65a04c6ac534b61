/* cli/cmd_report.c — `bulkhead report`: the results of the latest run (or
 * of --run ID) from the state database. Reads only; sends nothing. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/ci_mode.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "report/report.h"
#include "store/store.h"
#include "util/bh_err.h"

static const char help[] =
    "usage: bulkhead report [--state DIR] [--format FMT] [--run ID] [--fail-on SEVERITY]\n"
    "                       [--max-bytes N] [--clearance LABEL]\n"
    "\n"
    "Prints the results of the latest run kept in the state database: every item\n"
    "and stage with its state, where it ran (endpoint, locality, model), the label\n"
    "of its output, its output or the reason it has none, and the findings of the\n"
    "stages whose output format is findings.\n"
    "\n"
    "  --state DIR         state database folder (default " CLI_DEFAULT_STATE ")\n"
    "  --format FMT        md (default: a pull-request comment), jsonl (one JSON object\n"
    "                      per task), sarif (SARIF 2.1.0, for code scanning), junit (JUnit\n"
    "                      XML), github-review (the JSON body of a pull-request review)\n"
    "  --run ID            a run other than the latest\n"
    "  --fail-on SEVERITY  findings at or above SEVERITY (info, low, medium, high,\n"
    "                      critical) are failures in junit and counted in md; the exit\n"
    "                      code is then the run's: 1 such a finding, 3 a task withheld,\n"
    "                      4 a task failed or not finished\n"
    "  --max-bytes N       md: keep the report under N bytes (a pull-request comment\n"
    "                      holds 65536 characters): task outputs give way first, then\n"
    "                      the tables, and a line says what was left out; e.g. 60000\n"
    "  --clearance LABEL   render only outputs labelled LABEL or lower (a report that is\n"
    "                      posted or uploaded leaves the machine): every other task is\n"
    "                      named withheld with its label, its output and findings left\n"
    "                      out, and a failed task's message too (it may quote a reply);\n"
    "                      CI templates pass internal. Default: everything (local use)\n"
    "  --help              this text\n";

static const struct option longopts[] = {
    {"state", required_argument, NULL, 's'},     {"format", required_argument, NULL, 'f'},
    {"run", required_argument, NULL, 'r'},       {"help", no_argument, NULL, 'h'},
    {"fail-on", required_argument, NULL, 'F'},   {"max-bytes", required_argument, NULL, 'm'},
    {"clearance", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0},
};

int cmd_report(int argc, char **argv)
{
    const char *state = CLI_DEFAULT_STATE;
    struct rep_opts ro = REP_OPTS_INIT;
    long long run = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(help, stdout); return CLI_EXIT_OK;
        case 's': state = optarg; break;
        case 'f': ro.format = optarg; break;
        case 'c': ro.clearance = optarg; break;
        case 'F':
            if (cli_fail_on_parse("report", optarg, &ro.fail_on))
                return CLI_EXIT_USAGE;
            break;
        case 'r':
            if (cli_run_option("report", optarg, &run))
                return CLI_EXIT_USAGE;
            break;
        case 'm':
            if ((ro.max_bytes = cli_parse_size(optarg)) < 1024)
                return cli_usage_error("report",
                                       "--max-bytes takes a size of 1024 bytes or "
                                       "more (e.g. 60000, 64K), got '%s'",
                                       optarg);
            break;
        default: return cli_usage_error("report", "unknown option");
        }
    }
    if (optind != argc)
        return cli_usage_error("report", "unexpected argument '%s'", argv[optind]);
    if (!rep_format_known(ro.format))
        return cli_usage_error("report", "unknown format '%s' (known: %s)", ro.format,
                               rep_format_list());
    struct bh_err err = {0};
    struct store *s = NULL;
    int64_t run_id = run;
    int rc = cli_state_open_run(&s, state, &run_id, &err);
    if (rc == 0)
        rc = rep_write(s, run_id, &ro, stdout, &err);
    int code = rc ? cli_fail(&err) : CLI_EXIT_OK;
    if (rc == 0 && ro.fail_on >= 0) /* as the run came out, findings counted */
        code = cli_run_exit(s, run_id, ro.fail_on);
    store_free(s);
    return code;
}
