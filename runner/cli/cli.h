/* cli/cli.h — the bulkhead command line: one cmd_<name>.c per subcommand,
 * each a thin coordinator over the modules. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stdio.h>

struct bh_err;

/* Exit codes (README.md documents them). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FINDINGS = 1,  /* findings at or above --fail-on (later) */
    CLI_EXIT_USAGE = 2,     /* usage or configuration error */
    CLI_EXIT_POLICY = 3,    /* a policy refusal happened */
    CLI_EXIT_FAILED = 4,    /* some tasks failed */
    CLI_EXIT_INTERNAL = 70, /* a bug */
};

struct cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

int cmd_check(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_merge(int argc, char **argv);

/* Prints err as "bulkhead: ..." and returns the exit code its kind maps to. */
int cli_fail(const struct bh_err *err);

/* "bulkhead CMD: message\n" + a pointer to --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The exit code for an error code. */
int cli_exit_code(int code);

#define CLI_DEFAULT_STATE ".bulkhead"

#endif
