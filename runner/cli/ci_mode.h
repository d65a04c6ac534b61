/* cli/ci_mode.h — what `run` and `report` share for CI jobs: --fail-on,
 * the exit code a finished run comes to, GitHub annotations. */
#ifndef CLI_CI_MODE_H
#define CLI_CI_MODE_H

#include <stdint.h>

struct store;

/* --fail-on SEVERITY: *out is the severity (enum stage_severity). Returns 0,
 * or a usage error (exit 2) naming the valid severities. */
int cli_fail_on_parse(const char *cmd, const char *arg, int *out);
/* cli_fail_on_parse as an option row's take (field is the int). */
int cli_fail_on_take(void *field, int key, const char *cmd, const char *arg);

/* The --fail-on row of run and report: type is the args struct, member its int. */
#define CLI_OPT_FAIL_ON(type, member, text)                                                        \
    {                                                                                              \
        .name = "fail-on", .arg = "SEVERITY", .kind = CLI_OPT_FUNC,                                \
        .offset = offsetof(type, member), .take = cli_fail_on_take, .help = text                   \
    }

/* The exit code of run_id as its tasks and findings stand: 3 when a task
 * was withheld by policy, else 4 when one failed, did not finish or left
 * findings that do not read, else 1 when fail_on >= 0 and a finding is at or
 * above it, else 0. A refusal wins because it is the one thing a CI job must
 * never miss; an incomplete run wins over findings because it cannot vouch
 * for the findings it does not have. Prints a line naming the findings
 * (and, with fail_on, how many reach it) on stderr when the run has any
 * findings stage. Returns an exit code. */
int cli_run_exit(struct store *s, int64_t run_id, int fail_on);

/* 1 when running as a GitHub Actions step (GITHUB_ACTIONS=true). */
int cli_in_github_actions(void);

#endif
