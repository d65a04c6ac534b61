/* cli/common.h — what several subcommands share: loading the pipeline with
 * --endpoint overrides, and printing the flow check. */
#ifndef CLI_COMMON_H
#define CLI_COMMON_H

#include <stddef.h>
#include <stdio.h>

struct pipeline;
struct egr_endpoint;
struct pol_stage_report;
struct bh_err;

/* Collected "NAME=URL" values of repeated --endpoint options. */
struct cli_overrides {
    const char *items[32];
    size_t n;
};
/* Adds one; a usage error past the limit or without '='. */
int cli_overrides_add(struct cli_overrides *o, const char *cmd, const char *value);

int cli_pipeline_load(struct pipeline **out, const char *path, const struct cli_overrides *o,
                      struct bh_err *err);

/* Prints endpoints (with their verified locality) and stages (locality,
 * clearance, what they read with its label) and the verdict. */
void cli_flow_print(FILE *f, const struct pipeline *p, const struct egr_endpoint *eps,
                    const struct pol_stage_report *rep);

/* Runs the static check over verified endpoints; fills rep[n_stages].
 * Returns the number of stages that fail it. */
size_t cli_flow_check(const struct pipeline *p, const struct egr_endpoint *eps,
                      struct pol_stage_report *rep);

#endif
