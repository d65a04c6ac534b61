/* cli/cmd_check.c — `bulkhead check PIPELINE`: validate the file, verify
 * each endpoint's locality the way a run would, and prove that no stage can
 * receive data above its clearance. Sends nothing. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

static const char help[] =
    "usage: bulkhead check PIPELINE [--endpoint NAME=URL]...\n"
    "\n"
    "Validates PIPELINE, verifies the locality of every endpoint (a host must\n"
    "resolve only to loopback or private addresses to count as local), and proves\n"
    "that no stage can receive data labelled above its clearance. Prints each\n"
    "stage with its endpoint, locality, clearance and the label of what it reads.\n"
    "\n"
    "  --endpoint NAME=URL  use URL for endpoint NAME (as 'run' would)\n"
    "  --help               this text\n"
    "\n"
    "exit: 0 the pipeline passes, 2 the file is invalid, 3 a stage would receive\n"
    "data above its clearance\n";

static const struct option longopts[] = {
    { "endpoint", required_argument, NULL, 'e' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

int cmd_check(int argc, char **argv)
{
    struct cli_overrides ov = { 0 };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return CLI_EXIT_OK;
        }
        if (c != 'e' || cli_overrides_add(&ov, "check", optarg))
            return cli_usage_error("check", "bad option");
    }
    if (optind + 1 != argc)
        return cli_usage_error("check", "expected one PIPELINE file");
    struct bh_err err = { 0 };
    struct pipeline *p = NULL;
    if (cli_pipeline_load(&p, argv[optind], &ov, &err))
        return cli_fail(&err);
    struct egr_endpoint *eps = bh_xcalloc(p->n_endpoints, sizeof(*eps));
    int rc = 0;
    for (size_t i = 0; i < p->n_endpoints && rc == 0; i++)
        rc = egr_endpoint_verify(p->endpoints[i].url, p->endpoints[i].declared_local, &eps[i],
                                 &err);
    int code = CLI_EXIT_OK;
    if (rc) {
        code = cli_fail(&err);
    } else {
        struct pol_stage_report *rep = bh_xcalloc(p->n_stages, sizeof(*rep));
        size_t bad = cli_flow_check(p, eps, rep);
        cli_flow_print(stdout, p, eps, rep);
        for (size_t s = 0; s < p->n_stages; s++)
            if (!rep[s].ok)
                fprintf(stderr,
                        "bulkhead: %s:%d:%d: stages.%s: refused: %s stage %s — run it on a "
                        "local endpoint or give it only fields at or below its clearance\n",
                        p->file, p->stages[s].line, p->stages[s].col, p->stages[s].name,
                        rep[s].local ? "local" : "cloud", rep[s].reason);
        printf("check: %s\n", bad ? "REFUSED — see the stages marked above" :
                                    "ok — no stage can receive data above its clearance");
        code = bad ? CLI_EXIT_POLICY : CLI_EXIT_OK;
        free(rep);
    }
    free(eps);
    pipe_free(p);
    return code;
}
