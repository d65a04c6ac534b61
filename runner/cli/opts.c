/* cli/opts.c — the one option parser: getopt_long driven by a command's
 * table (cli/opts.h), one message shape per kind of value, and --help
 * written from the same rows. getopt_long still reports an unknown option
 * or a missing value itself ("run: unrecognized option '--x'"), then the
 * command's "unknown option" line follows, as before the tables. */
#include "cli/opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "util/bh_xmalloc.h"

/* getopt_long's value for the built-in --list-options, and for row i
 * without a short name: above every char. */
enum { KEY_LIST = 1000, KEY_ROW = 1001 };

/* The widest "--name ARG" that still has its text on the same line. */
enum { LABEL_MAX = 20 };

static int row_key(const struct cli_optset *set, size_t i)
{
    return set->opts[i].short_name ? set->opts[i].short_name : KEY_ROW + (int)i;
}

static const struct cli_opt *row_find(const struct cli_optset *set, int c)
{
    for (size_t i = 0; i < set->n_opts; i++)
        if (row_key(set, i) == c)
            return &set->opts[i];
    return NULL;
}

static int enum_known(const struct cli_opt *o, const char *v)
{
    if (o->known)
        return o->known(v);
    for (const char *const *p = o->values; *p; p++)
        if (strcmp(*p, v) == 0)
            return 1;
    return 0;
}

/* "a, b, c": the row's values as messages name them. */
static const char *enum_list(const struct cli_opt *o, char *buf, size_t size)
{
    if (o->list)
        return o->list();
    buf[0] = '\0';
    size_t used = 0;
    for (const char *const *p = o->values; *p && used < size; p++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", p == o->values ? "" : ", ", *p);
    return buf;
}

static int int_take(const char *cmd, const struct cli_opt *o, const char *arg, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno == 0 && end != arg && *end == '\0' && v >= o->min && v <= o->max) {
        *out = v;
        return 0;
    }
    if (o->what)
        return cli_usage_error(cmd, "--%s takes %s, got '%s'", o->name, o->what, arg);
    return cli_usage_error(cmd, "--%s takes an integer from %lld to %lld, got '%s'", o->name,
                           o->min, o->max, arg);
}

static int size_take(const char *cmd, const struct cli_opt *o, const char *arg, size_t *out)
{
    size_t n = cli_parse_size(arg);
    if (n == 0 || (long long)n < o->min)
        return cli_usage_error(cmd, "--%s takes %s, got '%s'", o->name, o->what, arg);
    *out = n;
    return 0;
}

static int row_take(const struct cli_optset *set, const struct cli_opt *o, void *args,
                    const char *arg)
{
    char *field = (char *)args + o->offset;
    char list[256];
    switch (o->kind) {
    case CLI_OPT_FLAG: *(int *)(void *)field = 1; return 0;
    case CLI_OPT_STRING: *(const char **)(void *)field = arg; return 0;
    case CLI_OPT_INT: return int_take(set->cmd, o, arg, (long long *)(void *)field);
    case CLI_OPT_SIZE: return size_take(set->cmd, o, arg, (size_t *)(void *)field);
    case CLI_OPT_ENUM:
        if (!enum_known(o, arg))
            return cli_usage_error(set->cmd, "--%s: unknown %s '%s' (known: %s)", o->name, o->what,
                                   arg, enum_list(o, list, sizeof(list)));
        *(const char **)(void *)field = arg;
        return 0;
    case CLI_OPT_FUNC: return o->take(field, o->key, set->cmd, arg);
    }
    return cli_usage_error(set->cmd, "unknown option");
}

static const char *const kind_names[] = {
    [CLI_OPT_FLAG] = "flag", [CLI_OPT_STRING] = "string", [CLI_OPT_INT] = "int",
    [CLI_OPT_SIZE] = "size", [CLI_OPT_ENUM] = "enum",     [CLI_OPT_FUNC] = "string",
};

/* --list-options: a row a line, for the tests that hold --help and the
 * README to the tables. */
static void list_print(const struct cli_optset *set)
{
    char list[256];
    for (size_t i = 0; i < set->n_opts; i++) {
        const struct cli_opt *o = &set->opts[i];
        printf("--%s %s%s", o->name, kind_names[o->kind], o->repeatable ? " repeatable" : "");
        if (o->kind == CLI_OPT_INT)
            printf(" %lld %lld", o->min, o->max);
        if (o->kind == CLI_OPT_ENUM)
            printf(" %s", enum_list(o, list, sizeof(list)));
        printf("\n");
    }
    printf("--help flag\n");
}

/* getopt_long's tables from the rows: longs[n_opts + 3], shorts[2 * n_opts + 2]. */
static void tables_build(const struct cli_optset *set, struct option *longs, char *shorts)
{
    size_t k = 0;
    shorts[k++] = 'h';
    for (size_t i = 0; i < set->n_opts; i++) {
        const struct cli_opt *o = &set->opts[i];
        longs[i] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL,
                                   row_key(set, i)};
        if (o->short_name) {
            shorts[k++] = o->short_name;
            if (o->arg)
                shorts[k++] = ':';
        }
    }
    shorts[k] = '\0';
    longs[set->n_opts] = (struct option){"help", no_argument, NULL, 'h'};
    longs[set->n_opts + 1] = (struct option){"list-options", no_argument, NULL, KEY_LIST};
}

int cli_opts_parse(const struct cli_optset *set, int argc, char **argv, void *args, int *first)
{
    struct option *longs = bh_xcalloc(set->n_opts + 3, sizeof(*longs));
    char *shorts = bh_xcalloc(2 * set->n_opts + 2, 1);
    tables_build(set, longs, shorts);
    int c, code = 0;
    optind = 1;
    while (code == 0 && (c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        const struct cli_opt *o = row_find(set, c);
        if (c == 'h' || c == KEY_LIST) {
            if (c == 'h')
                cli_opts_help(set, stdout);
            else
                list_print(set);
            code = -1;
        } else if (!o) {
            code = cli_usage_error(set->cmd, "unknown option");
        } else {
            code = row_take(set, o, args, optarg);
        }
    }
    free(longs);
    free(shorts);
    *first = optind;
    return code;
}

/* "  --name ARG" then the help text from column width + 4; a label wider
 * than the column puts the text on the next line. */
static void row_print(FILE *f, const char *label, const char *help, int width)
{
    int len = fprintf(f, "  %s", label) - 2;
    int pad = len <= width ? width - len + 2 : 0;
    if (!pad)
        fprintf(f, "\n%*s", width + 4, "");
    for (const char *s = help; *s;) {
        size_t n = strcspn(s, "\n");
        fprintf(f, "%*s%.*s\n", pad, "", (int)n, s);
        s += n + (s[n] == '\n');
        pad = width + 4;
    }
}

static void label_of(const struct cli_opt *o, char *buf, size_t size)
{
    if (o->short_name)
        snprintf(buf, size, "--%s, -%c", o->name, o->short_name);
    else
        snprintf(buf, size, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

void cli_opts_help(const struct cli_optset *set, FILE *f)
{
    for (const char *s = set->operands; *s;) {
        size_t n = strcspn(s, "\n");
        fprintf(f, "%s bulkhead %s %.*s\n", s == set->operands ? "usage:" : "      ", set->cmd,
                (int)n, s);
        s += n + (s[n] == '\n');
    }
    if (set->before)
        fprintf(f, "\n%s", set->before);
    char label[64];
    int width = 6; /* "--help" */
    for (size_t i = 0; i < set->n_opts; i++) {
        label_of(&set->opts[i], label, sizeof(label));
        if ((int)strlen(label) > width && strlen(label) <= LABEL_MAX)
            width = (int)strlen(label);
    }
    fprintf(f, "\n");
    for (size_t i = 0; i < set->n_opts; i++) {
        label_of(&set->opts[i], label, sizeof(label));
        row_print(f, label, set->opts[i].help, width);
    }
    row_print(f, "--help", "this text", width);
    if (set->after)
        fprintf(f, "\n%s", set->after);
}
