/* cli/main.c — dispatch to subcommands through a table, which also drives
 * the top-level --help. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/bh_err.h"
#include "util/bh_util.h"

#ifndef BH_VERSION
#error "BH_VERSION comes from CMake's project version (runner/cli/CMakeLists.txt)"
#endif

static const struct cli_cmd commands[] = {
    {"check", "validate a pipeline and prove where its data may flow", cmd_check},
    {"plan", "show what a run would send where, per item, without calling a model", cmd_plan},
    {"run", "run a pipeline over the pull requests of a repository or a folder of documents",
     cmd_run},
    {"report", "print the results of a run (md, jsonl, sarif, junit, github-review)", cmd_report},
    {"audit", "show or verify the audit log of egress decisions", cmd_audit},
    {"models", "list, pull and preload the models a pipeline needs", cmd_models},
    {"status", "how far the latest run has got, per stage (also while it runs)", cmd_status},
    {"cache", "the response cache: stats, prune", cmd_cache},
    {"merge", "merge the states of a run's shards (run --shard I/N) into one", cmd_merge},
};

/* cli.h's exit codes, as the top-level help states them. */
static const struct {
    int code;
    const char *meaning;
} exit_codes[] = {
    {CLI_EXIT_OK, "ok"},
    {CLI_EXIT_FINDINGS, "a finding at or above --fail-on"},
    {CLI_EXIT_USAGE, "usage or configuration error"},
    {CLI_EXIT_POLICY, "a policy refusal happened"},
    {CLI_EXIT_FAILED, "some tasks failed"},
    {CLI_EXIT_INTERNAL, "internal error (or an audit record that could not be written)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: bulkhead <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < BH_NELEM(commands); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(
        f,
        "\n'bulkhead <command> --help' describes a command; 'bulkhead --version' prints the\nversion.\n\nexit codes:\n");
    for (size_t i = 0; i < sizeof(exit_codes) / sizeof(exit_codes[0]); i++)
        fprintf(f, "  %-3d %s\n", exit_codes[i].code, exit_codes[i].meaning);
}

int cli_exit_code(int code)
{
    switch (code) {
    case BH_OK: return CLI_EXIT_OK;
    case BH_EPOLICY: return CLI_EXIT_POLICY;
    case BH_EINTERNAL: return CLI_EXIT_INTERNAL;
    case BH_EINVAL:
    case BH_ENOTFOUND: return CLI_EXIT_USAGE;
    default: return CLI_EXIT_FAILED;
    }
}

int cli_fail(const struct bh_err *err)
{
    bh_err_print(err, stderr);
    return cli_exit_code(err->code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bulkhead %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'bulkhead %s --help')\n", cmd);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("bulkhead %s\n", BH_VERSION);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < BH_NELEM(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "bulkhead: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
