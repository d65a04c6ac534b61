/* cli/cmd_merge.c — `bulkhead merge --into DIR STATE...`: the states of a
 * run's shards (run --shard I/N, one folder each, e.g. one per pod of a
 * Kubernetes Indexed Job or per job of a CI matrix) made into one state.
 * Each shard's audit is verified as `audit verify` does before anything is
 * written (a shard with an altered chain, a record above its clearance or
 * a breach is refused, exit 3); the store copies the tasks and links each
 * shard's chain into the new state's (store/merge.c). The new folder must
 * hold no state: a failed merge removes the files it made, so the same
 * command can be run again. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "egress/egress.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

struct merge_args {
    const char *into; /* --into: the new state folder */
};

static const char before[] =
    "Merges the states of the shards of one run ('bulkhead run --shard I/N', one state\n"
    "folder per shard) into the new state folder DIR: every task once, with its result,\n"
    "and each shard's audit log verified (as 'audit verify' does) and linked into DIR's\n"
    "audit chain by a merge record (the shard's newest hash and number of records).\n"
    "Every shard of the run must be given once, each with every task finished.\n"
    "Then run the same 'bulkhead run' command without --shard and with --state DIR: it\n"
    "runs only the batch-scope stages; report, status and audit verify read DIR as any\n"
    "state.\n";

static const char after[] =
    "exit: 0 merged, 2 the states are not every shard of one run (another pipeline,\n"
    "source or shard count, a shard given twice or missing, unfinished tasks) or DIR\n"
    "holds a state, 3 a shard's audit log was altered, exceeds a clearance or holds a\n"
    "breach record\n";

static const struct cli_opt opts[] = {
    {.name = "into",
     .arg = "DIR",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct merge_args, into),
     .help = "the new state folder (it must not hold a state yet)"},
};

static const struct cli_optset optset =
    CLI_OPTSET("merge", "--into DIR STATE...", before, after, opts);

/* A shard's audit, verified before it is linked: the chain, the clearances,
 * no breach. */
static int shard_open(struct store_shard *sh, const char *dir, struct bh_err *err)
{
    int64_t n = 0;
    sh->name = dir;
    int rc = cli_state_open(&sh->s, dir, err);
    if (rc == 0 && (rc = egr_audit_verify(sh->s, &n, err)) != 0)
        bh_err_prefix(err, "state '%s': its audit log does not verify, so it is not merged: ", dir);
    return rc;
}

/* The files a failed merge made in a folder that held no state. */
static void into_remove(const char *dir)
{
    static const char *const files[] = {"state.db", "state.db-wal", "state.db-shm", "run.lock"};
    for (size_t i = 0; i < BH_NELEM(files); i++) {
        char *f = bh_xasprintf("%s/%s", dir, files[i]);
        unlink(f);
        free(f);
    }
}

static int merge(const char *into, char **states, size_t n, struct bh_err *err)
{
    struct store_shard *sh = bh_xcalloc(n + 1, sizeof(*sh));
    struct store *dst = NULL;
    char *db = bh_xasprintf("%s/state.db", into);
    int rc = access(db, F_OK) == 0 ? bh_err_set(err, BH_EINVAL,
                                                "--into '%s' already holds a bulkhead state: "
                                                "merge into a new folder",
                                                into)
                                   : 0;
    free(db);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = shard_open(&sh[i], states[i], err);
    int made = rc == 0;
    if (rc == 0)
        rc = store_open(&dst, into, err);
    if (rc == 0)
        rc = store_lock_runner(dst, err);
    if (rc == 0)
        rc = store_merge(dst, sh, n, err);
    store_free(dst);
    if (rc && made)
        into_remove(into);
    for (size_t i = 0; i < n; i++)
        store_free(sh[i].s);
    free(sh);
    return rc;
}

int cmd_merge(int argc, char **argv)
{
    struct merge_args a = {0};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, &a, &first);
    if (code)
        return code < 0 ? CLI_EXIT_OK : code;
    const char *into = a.into;
    if (!into || !*into)
        return cli_usage_error("merge", "--into DIR is required: the new state folder");
    if (first >= argc)
        return cli_usage_error("merge", "expected the state folder of every shard");
    struct bh_err err = {0};
    size_t n = (size_t)(argc - first);
    if (merge(into, argv + first, n, &err))
        return cli_fail(&err);
    fprintf(stderr,
            "bulkhead: merged %zu shard states into %s: run the same 'bulkhead run' command "
            "without --shard and with --state %s to run the batch-scope stages\n",
            n, into, into);
    return CLI_EXIT_OK;
}
