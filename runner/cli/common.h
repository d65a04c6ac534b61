/* cli/common.h — what several subcommands share: loading the pipeline with
 * --endpoint overrides, and printing the flow check. */
#ifndef CLI_COMMON_H
#define CLI_COMMON_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/opts.h"

struct pipeline;
struct egr_endpoint;
struct pol_stage_report;
struct pol_graph;
struct bh_err;

/* Collected "NAME=URL" values of repeated --endpoint options. */
struct cli_overrides {
    const char *items[32];
    size_t n;
};
/* Adds one; a usage error past the limit or without '='. */
int cli_overrides_add(struct cli_overrides *o, const char *cmd, const char *value);
/* cli_overrides_add as an option row's take (field is the cli_overrides). */
int cli_overrides_take(void *field, int key, const char *cmd, const char *arg);

/* The --endpoint row of the commands that load a pipeline (run, plan, check,
 * models): type is the args struct, member its struct cli_overrides. */
#define CLI_OPT_ENDPOINT(type, member, text)                                                       \
    {                                                                                              \
        .name = "endpoint", .arg = "NAME=URL", .kind = CLI_OPT_FUNC,                               \
        .offset = offsetof(type, member), .take = cli_overrides_take, .repeatable = 1,             \
        .help = text                                                                               \
    }

/* Opens the state of an earlier run for reading (report, audit): unlike
 * store_open it never creates the folder; a missing state is BH_ENOTFOUND
 * with a message saying how to make one. */
struct store;
int cli_state_open(struct store **out, const char *dir, struct bh_err *err);
/* cli_state_open, then the run: *run_id when it is not 0 (--run), else the
 * latest; BH_ENOTFOUND saying how to start one when the state has none. */
int cli_state_open_run(struct store **out, const char *dir, int64_t *run_id, struct bh_err *err);

int cli_pipeline_load(struct pipeline **out, const char *path, const struct cli_overrides *o,
                      struct bh_err *err);

/* Verifies the locality of every endpoint of p as the gate will (with its
 * trusted_hosts) into eps[n_endpoints]. Sends nothing; resolves names. */
int cli_endpoints_verify(const struct pipeline *p, struct egr_endpoint *eps, struct bh_err *err);

/* Builds the flow graph of p over the verified endpoints eps[n_endpoints]
 * (see policy/graph.h); release it with pol_graph_release. p must outlive g. */
void cli_flow_graph(struct pol_graph *g, const struct pipeline *p, const struct egr_endpoint *eps);

/* Runs the static check over verified endpoints; fills rep[n_stages].
 * Returns the number of stages that fail it. This is the gate's flow check
 * only (what `run` refuses); check's graph also refuses a stage declared above
 * its endpoint's clearance. */
size_t cli_flow_check(const struct pipeline *p, const struct egr_endpoint *eps,
                      struct pol_stage_report *rep);

/* Where work items come from, as the command line says it: a repository's
 * pull requests (source kind git) or a folder of documents (kind files). */
struct cli_source {
    const char *repo, *pulls, *base; /* git: --repo, --pulls (the first), --base */
    size_t max_diff;                 /* git: --max-diff, 0 for the default */
    const char *docs;                /* files: --docs */
    char *range_base, *range_head;   /* git: --range BASE..HEAD (owned; cli_source_release) */
    const char *pulls_from;          /* git: --pulls-from FILE, the forge's open pull requests */
    int skip_drafts;                 /* git: --skip-drafts, with --pulls-from */
    int base_set;                    /* --base was given (--pulls-from: else each PR's own) */
    int pulls_given;                 /* --pulls was given: the next one adds a glob */
    const char **more_pulls;         /* git: --pulls given again (array owned; release) */
    size_t n_more_pulls, cap_more_pulls;
    const char **exclude; /* git: --exclude GLOB, repeatable (array owned) */
    size_t n_exclude, cap_exclude;
    int keep_empty; /* git: --keep-empty: keep pull requests whose diff
                       against base is empty (by default skipped) */
};
#define CLI_SOURCE_INIT                                                                            \
    {                                                                                              \
        .pulls = "refs/pull/*/head", .base = "main"                                                \
    }

/* --range BASE..HEAD: one item, the change from BASE to HEAD (a CI job's pull
 * request). Sets base and head; a usage error without "..". --repo
 * defaults to "." with a range. */
int cli_source_range(struct cli_source *src, const char *cmd, const char *value);
void cli_source_release(struct cli_source *src);

/* The source options of run and plan that are more than a value: key 'p'
 * --pulls (repeatable: each adds a glob), 'x' --exclude (repeatable), 'b'
 * --base, 'g' --range. field is the struct cli_source. Returns 0 or a
 * usage exit code. */
int cli_source_take(void *field, int key, const char *cmd, const char *arg);

/* The rows of the source options run and plan share (type is the args
 * struct, member its struct cli_source); the help is run's, which plan
 * refers to. */
#define CLI_SOURCE_FUNC(type, member, nm, a, k, rep, text)                                         \
    {                                                                                              \
        .name = nm, .arg = a, .kind = CLI_OPT_FUNC, .offset = offsetof(type, member),              \
        .take = cli_source_take, .key = k, .repeatable = rep, .help = text                         \
    }
#define CLI_SOURCE_OPTS(type, member)                                                              \
    {.name = "repo",                                                                               \
     .arg = "DIR",                                                                                 \
     .kind = CLI_OPT_STRING,                                                                       \
     .offset = offsetof(type, member.repo),                                                        \
     .help = "the repository (source kind git)"},                                                  \
        {.name = "docs",                                                                           \
         .arg = "DIR",                                                                             \
         .kind = CLI_OPT_STRING,                                                                   \
         .offset = offsetof(type, member.docs),                                                    \
         .help = "the folder of documents (source kind files)"},                                   \
        CLI_SOURCE_FUNC(type, member, "pulls", "GLOB", 'p', 1,                                     \
                        "refs to review (default refs/pull/*/head); give it again to\n"            \
                        "add globs (a ref matching several is reviewed once)"),                    \
        CLI_SOURCE_FUNC(type, member, "exclude", "GLOB", 'x', 1,                                   \
                        "leave out the refs matching GLOB ('*' also matches '/');\n"               \
                        "repeatable"),                                                             \
        {.name = "keep-empty",                                                                     \
         .kind = CLI_OPT_FLAG,                                                                     \
         .offset = offsetof(type, member.keep_empty),                                              \
         .help = "review pull requests whose diff against the base is empty\n"                     \
                 "(by default skipped with a note: the forge keeps the heads\n"                    \
                 "of merged pull requests)"},                                                      \
        CLI_SOURCE_FUNC(type, member, "range", "BASE..HEAD", 'g', 0,                               \
                        "instead of --pulls: one item, the change from BASE to HEAD\n"             \
                        "(a CI job's pull request; --repo defaults to .)"),                        \
        {.name = "pulls-from",                                                                     \
         .arg = "FILE",                                                                            \
         .kind = CLI_OPT_STRING,                                                                   \
         .offset = offsetof(type, member.pulls_from),                                              \
         .help = "instead of --pulls: the open pull requests FILE lists (the\n"                    \
                 "JSON of 'gh pr list --json ...' or of GitLab's merge request\n"                  \
                 "list), each at its head commit; gives pr.body, pr.author,\n"                     \
                 "pr.labels, pr.draft (see README)"},                                              \
        {.name = "skip-drafts",                                                                    \
         .kind = CLI_OPT_FLAG,                                                                     \
         .offset = offsetof(type, member.skip_drafts),                                             \
         .help = "with --pulls-from: leave draft pull requests out"},                              \
        CLI_SOURCE_FUNC(type, member, "base", "REF", 'b', 0,                                       \
                        "what the pull requests merge into (default main; with\n"                  \
                        "--pulls-from, each pull request's own base branch)"),                     \
    {                                                                                              \
        .name = "max-diff", .arg = "SIZE", .kind = CLI_OPT_SIZE,                                   \
        .offset = offsetof(type, member.max_diff), .min = 1, .what = "a size such as 4M",          \
        .help = "cap on one pull request's diff (bytes, or with K or M;\n"                         \
                "default 4M): a larger diff fails the tasks that read it"                          \
    }

/* After the options: a usage error unless a source was named. */
int cli_source_check(const struct cli_source *src, const char *cmd);

/* Lists the items of p's source: the options must fit its kind (--repo for
 * git, --docs for files; a usage error otherwise, saying which). Documents
 * skipped by the files source are printed as notes on stderr, and so are the
 * items' own notes known at listing (a pull request that cannot be listed).
 * Pull requests whose diff is empty are dropped (one note line naming them)
 * unless --keep-empty. Pull requests of --pulls and --range are lazy: their
 * fields are read by *loader (owned, src_loader_free after the items) when
 * needed, and a note on their text (not UTF-8) comes with that; other items
 * come with their fields and *loader is NULL. */
struct src_item;
struct src_loader;
int cli_items_load(const struct cli_source *src, const struct pipeline *p, struct src_item **items,
                   size_t *n, struct src_loader **loader, struct bh_err *err);

/* A stable text naming the source for a run's identity: the real path of
 * the repository or folder and the options that select items. Owned. */
char *cli_source_identity(const struct cli_source *src);

/* "4096", "512K", "4M" as bytes; 0 when malformed (or 0). */
size_t cli_parse_size(const char *s);

/* The --state row: type is the args struct, member its const char *. */
#define CLI_OPT_STATE(type, member, text)                                                          \
    {                                                                                              \
        .name = "state", .arg = "DIR", .kind = CLI_OPT_STRING, .offset = offsetof(type, member),   \
        .help = text                                                                               \
    }
#define CLI_STATE_HELP "state database folder (default " CLI_DEFAULT_STATE ")"

/* The --run row of report and status: a run number into a long long. */
#define CLI_OPT_RUN(type, member)                                                                  \
    {                                                                                              \
        .name = "run", .arg = "ID", .kind = CLI_OPT_INT, .offset = offsetof(type, member),         \
        .min = 1, .max = LLONG_MAX, .what = "a run number", .help = "a run other than the latest"  \
    }

#endif
