/* cli/opts.h — one option table per command: the rows drive getopt_long,
 * check each value (integers against their range, enumerations against
 * their list), store it in the command's args struct and print --help, so
 * that what a command accepts and what its help says cannot drift apart.
 * Modelled on libgit2's cli/opt.h (a spec row per option, common options
 * by macro) and curl's option table (one help line per row), with offsets
 * instead of pointers because each command's args are a local struct.
 *
 * Every command also takes --help (-h) and a hidden --list-options, which
 * prints the table for tests (tests/integration/help.sh) one row a line:
 * "--NAME KIND [VALUE...]" (an enumeration lists its values). */
#ifndef CLI_OPTS_H
#define CLI_OPTS_H

#include <stddef.h>
#include <stdio.h>

enum cli_opt_kind {
    CLI_OPT_FLAG,   /* no argument: sets an int to 1 */
    CLI_OPT_STRING, /* a const char * (the last one given wins) */
    CLI_OPT_INT,    /* a long long from min to max */
    CLI_OPT_SIZE,   /* a size_t of at least min bytes: "4096", "512K", "4M" */
    CLI_OPT_ENUM,   /* a const char *, one of the row's values */
    CLI_OPT_FUNC,   /* the row's take() stores it (a glob list, NAME=URL, ...) */
};

/* take: stores arg into field (the args struct at the row's offset); key is
 * the row's key. Returns 0 or an exit code after printing the usage error. */
typedef int (*cli_opt_take_fn)(void *field, int key, const char *cmd, const char *arg);

struct cli_opt {
    const char *name; /* the long name, without "--" */
    char short_name;  /* -q for --quiet; 0 for none */
    const char *arg;  /* the value's name in --help ("DIR"); NULL for a flag */
    enum cli_opt_kind kind;
    size_t offset;      /* where the value lands in the command's args struct */
    long long min, max; /* CLI_OPT_INT: the range; CLI_OPT_SIZE: min only */
    /* CLI_OPT_INT, CLI_OPT_SIZE: what the option takes, for "--run takes a run
     * number, got 'x'" (default: "an integer from MIN to MAX");
     * CLI_OPT_ENUM: what a value is, for "unknown format 'x' (known: ...)". */
    const char *what;
    const char *const *values; /* CLI_OPT_ENUM: the allowed values, NULL-terminated */
    /* CLI_OPT_ENUM, instead of values, when another module owns the list:
     * known(v) is nonzero for an allowed value, list() names them all. */
    int (*known)(const char *value);
    const char *(*list)(void);
    cli_opt_take_fn take; /* CLI_OPT_FUNC */
    int key;              /* CLI_OPT_FUNC: passed to take */
    int repeatable;       /* may be given again: take() adds to a list */
    const char *help;     /* the help text; '\n' starts an indented line */
};

/* A command's table and the prose of its --help. */
struct cli_optset {
    const char *cmd;      /* "report" */
    const char *operands; /* after "usage: bulkhead CMD ", e.g. "PIPELINE [options]";
                             each further line is another form of the command */
    const char *before;   /* prose between the usage line and the options, or NULL */
    const char *after;    /* prose after the options (exit codes), or NULL */
    const struct cli_opt *opts;
    size_t n_opts;
};

#define CLI_OPTSET(cmd, operands, before, after, table)                                            \
    {                                                                                              \
        cmd, operands, before, after, table, sizeof(table) / sizeof(table[0])                      \
    }

/* Parses argv[1..argc) against set into args (already holding the
 * defaults). Returns 0 with *first the index of the first operand, -1 after
 * --help or --list-options was printed (the command exits 0), or
 * CLI_EXIT_USAGE after the usage error was printed ("bulkhead CMD: ...").
 * Options may follow operands (getopt_long permutes argv). */
int cli_opts_parse(const struct cli_optset *set, int argc, char **argv, void *args, int *first);

/* The --help text of set. */
void cli_opts_help(const struct cli_optset *set, FILE *f);

#endif
