/* cli/cmd_cache.c — `bulkhead cache stats|prune`: the response cache in the
 * state database. stats reads; prune deletes entries by their last use (a
 * reply nobody asked for in a month is unlikely to be asked for again). The
 * file does not shrink by itself: SQLite reuses the freed pages for the next
 * replies. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "store/cache.h"
#include "store/store.h"
#include "util/bh_err.h"

struct cache_args {
    const char *state, *action;
    long long days; /* --older-than, -1 when not given */
    int all;
};

static const char before[] =
    "The response cache keeps every model reply of `bulkhead run` under the hash of\n"
    "its request (endpoint, model, messages, options, format): the same request\n"
    "again is answered without a model call.\n"
    "\n"
    "  stats              entries, bytes of the replies and as stored (zstd), hits\n"
    "  prune              remove entries\n";

static const struct cli_opt opts[] = {
    {.name = "older-than",
     .arg = "DAYS",
     .kind = CLI_OPT_INT,
     .offset = offsetof(struct cache_args, days),
     .min = 0,
     .max = 100000,
     .what = "a number of days such as 30",
     .help = "prune: the entries not used in the last DAYS days"},
    {.name = "all",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct cache_args, all),
     .help = "prune: every entry"},
    CLI_OPT_STATE(struct cache_args, state, CLI_STATE_HELP),
};

static const struct cli_optset optset =
    CLI_OPTSET("cache", "stats [--state DIR]\nprune (--older-than DAYS | --all) [--state DIR]",
               before, NULL, opts);

/* "1.2 MiB", "310 KiB", "12 B". */
static const char *human(int64_t n, char *buf, size_t size)
{
    if (n >= (int64_t)1 << 20)
        snprintf(buf, size, "%.1f MiB", (double)n / (1 << 20));
    else if (n >= 1024)
        snprintf(buf, size, "%.1f KiB", (double)n / 1024);
    else
        snprintf(buf, size, "%lld B", (long long)n);
    return buf;
}

static int stats_print(struct store *s, const char *state, struct bh_err *err)
{
    struct store_cache_stats st;
    char a[32], b[32];
    int rc = store_cache_stats(s, &st, err);
    if (rc)
        return rc;
    printf("response cache in %s\n", state);
    printf("  entries  %lld\n", (long long)st.entries);
    printf("  replies  %lld bytes (%s)\n", (long long)st.raw_bytes, human(st.raw_bytes, a, 32));
    printf("  stored   %lld bytes (%s with zstd", (long long)st.stored_bytes,
           human(st.stored_bytes, b, 32));
    if (st.raw_bytes > 0)
        printf(", %.0f%% of the replies", 100.0 * (double)st.stored_bytes / (double)st.raw_bytes);
    printf(")\n  hits     %lld requests answered without a model call\n", (long long)st.hits);
    if (st.entries > 0) {
        long days = (long)((time(NULL) - st.oldest_use) / 86400);
        printf("  oldest   last used %ld day%s ago\n", days, days == 1 ? "" : "s");
    }
    return 0;
}

static int prune(struct store *s, const struct cache_args *a, struct bh_err *err)
{
    int64_t removed = 0;
    struct store_cache_stats st;
    int rc = store_cache_prune(s, a->all ? -1 : (int)a->days, &removed, err);
    if (rc == 0)
        rc = store_cache_stats(s, &st, err);
    if (rc)
        return rc;
    if (a->all)
        printf("removed %lld entries: the response cache is empty\n", (long long)removed);
    else
        printf("removed %lld entries not used in the last %d days (%lld left)\n",
               (long long)removed, (int)a->days, (long long)st.entries);
    return 0;
}

/* 0 to go on, -1 after --help, or an exit code. */
static int parse(int argc, char **argv, struct cache_args *a)
{
    *a = (struct cache_args){.state = CLI_DEFAULT_STATE, .days = -1};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, a, &first);
    if (code)
        return code;
    if (first + 1 != argc || (strcmp(argv[first], "stats") && strcmp(argv[first], "prune")))
        return cli_usage_error("cache", "expected 'stats' or 'prune'");
    a->action = argv[first];
    if (a->action[0] == 'p' && (a->all == (a->days >= 0)))
        return cli_usage_error("cache", "prune takes either --older-than DAYS or --all");
    if (a->action[0] == 's' && (a->all || a->days >= 0))
        return cli_usage_error("cache", "--older-than and --all are for 'prune'");
    return 0;
}

int cmd_cache(int argc, char **argv)
{
    struct cache_args a;
    int code = parse(argc, argv, &a);
    if (code)
        return code < 0 ? CLI_EXIT_OK : code;
    struct bh_err err = {0};
    struct store *s = NULL;
    int rc = cli_state_open(&s, a.state, &err);
    if (rc == 0)
        rc = a.action[0] == 's' ? stats_print(s, a.state, &err) : prune(s, &a, &err);
    store_free(s);
    return rc ? cli_fail(&err) : CLI_EXIT_OK;
}
