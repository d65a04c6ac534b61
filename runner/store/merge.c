/* store/merge.c — shards of one run (run --shard I/N) merged into one state.
 *
 * A shard's run key is its whole run's key with "/shard-I-of-N" after it, so
 * the shards of one run (the same pipeline, source and items) share a base
 * and a resume of shard 1/4 never mixes with 2/4. The merge takes the latest
 * run of each state, refuses shards of different runs, a shard given twice
 * or missing, and unfinished tasks (the shard must be resumed first: the
 * merged state runs no item's task), then copies every task once under the
 * base key, so that `run` without --shard on the merged state finds it, and
 * links each shard's audit chain into the merged chain (audit.c).
 * The same task in two shards is accepted when both ended the same way with
 * the same output; otherwise it is an error naming both states. All of it
 * is one transaction: a merge that fails leaves no half-merged run. */
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/bh_err.h"
#include "util/bh_hash.h"
#include "util/bh_xmalloc.h"

#define SHARD_SEP "/shard-"

char *store_shard_key(const char *base, unsigned index, unsigned count)
{
    return bh_xasprintf("%s" SHARD_SEP "%u-of-%u", base, index, count);
}

unsigned store_shard_of(const char *key, unsigned n)
{
    char hex[BH_SHA256_HEX];
    uint64_t v = 0;
    bh_sha256_hex(key, strlen(key), hex);
    for (int i = 0; i < 16; i++) /* 8 bytes: hex digits are 0-9a-f */
        v = v << 4 | (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    return (unsigned)(v % n);
}

int store_shard_key_parse(const char *key, char **base, unsigned *index, unsigned *count)
{
    const char *sep = strstr(key, SHARD_SEP);
    unsigned i = 0, n = 0;
    int used = 0;
    if (!sep || sscanf(sep + strlen(SHARD_SEP), "%u-of-%u%n", &i, &n, &used) != 2 ||
        sep[strlen(SHARD_SEP) + (size_t)used] != '\0' || n == 0 || i >= n)
        return 0;
    *base = bh_xasprintf("%.*s", (int)(sep - key), key);
    *index = i;
    *count = n;
    return 1;
}

struct shard_run {
    const struct store_shard *src;
    int64_t run_id;
    char *base, *pipeline;
    unsigned index, count;
    struct store_task *tasks;
    size_t n_tasks;
};

/* A one-off query of the run's key and pipeline name. */
static int run_row(struct store *s, int64_t id, char **key, char **pipeline, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(s->db, "SELECT key, pipeline FROM runs WHERE id = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK || (rc = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK) {
        rc = store_sqlerr(s, rc, err);
    } else if ((rc = store_step(s, st, err)) == 1) {
        *key = bh_xstrdup(store_col_text(st, 0));
        *pipeline = bh_xstrdup(store_col_text(st, 1));
        rc = 0;
    } else if (rc == 0) {
        rc =
            bh_err_set(err, BH_ENOTFOUND, "state database %s: no run %lld", s->path, (long long)id);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The shard's latest run, which must be a shard's, with every task ended. */
static int shard_read(struct shard_run *r, struct bh_err *err)
{
    char *key = NULL;
    size_t open = 0;
    int rc = store_run_latest(r->src->s, &r->run_id, err);
    if (rc == 0)
        rc = run_row(r->src->s, r->run_id, &key, &r->pipeline, err);
    if (rc == 0 && !store_shard_key_parse(key, &r->base, &r->index, &r->count))
        rc = bh_err_set(err, BH_EINVAL,
                        "state '%s': its latest run (run %lld) was not started with --shard: "
                        "merge takes the states of 'bulkhead run --shard I/N'",
                        r->src->name, (long long)r->run_id);
    free(key);
    if (rc == 0)
        rc = store_tasks_list(r->src->s, r->run_id, &r->tasks, &r->n_tasks, err);
    for (size_t i = 0; rc == 0 && i < r->n_tasks; i++)
        open += r->tasks[i].state == STORE_PENDING || r->tasks[i].state == STORE_RUNNING;
    /* A state relabelled or made by another split would put an item in two
     * shards or in none: each task must be of an item its shard owns. */
    for (size_t i = 0; rc == 0 && i < r->n_tasks; i++) {
        const char *item = r->tasks[i].item_key;
        unsigned owner = item[0] ? store_shard_of(item, r->count) : r->index;
        if (owner != r->index)
            rc = bh_err_set(err, BH_EINVAL,
                            "state '%s' (shard %u/%u) holds item '%s', which hashes to shard "
                            "%u/%u: it is not the state 'bulkhead run --shard %u/%u' makes",
                            r->src->name, r->index, r->count, item, owner, r->count, r->index,
                            r->count);
    }
    if (rc == 0 && open)
        rc = bh_err_set(err, BH_EINVAL,
                        "state '%s' (shard %u/%u): %zu task%s did not finish: resume the shard "
                        "(the same 'bulkhead run ... --shard %u/%u --state %s') before merging",
                        r->src->name, r->index, r->count, open, open == 1 ? "" : "s", r->index,
                        r->count, r->src->name);
    return rc;
}

/* The shards are those of one run, each once, none missing. */
static int shards_check(const struct shard_run *r, size_t n, struct bh_err *err)
{
    for (size_t i = 1; i < n; i++) {
        if (strcmp(r[i].base, r[0].base) != 0 || r[i].count != r[0].count)
            return bh_err_set(err, BH_EINVAL,
                              "'%s' (shard %u/%u of pipeline '%s') and '%s' (shard %u/%u of "
                              "pipeline '%s') are shards of different runs (another pipeline, "
                              "source, set of items or shard count): merge the shards of one run",
                              r[0].src->name, r[0].index, r[0].count, r[0].pipeline, r[i].src->name,
                              r[i].index, r[i].count, r[i].pipeline);
        for (size_t k = 0; k < i; k++)
            if (r[k].index == r[i].index)
                return bh_err_set(err, BH_EINVAL, "'%s' and '%s' are both shard %u/%u",
                                  r[k].src->name, r[i].src->name, r[i].index, r[i].count);
    }
    if (n != r[0].count) {
        unsigned char *seen = bh_xcalloc(r[0].count, 1);
        unsigned miss = 0;
        for (size_t k = 0; k < n; k++)
            seen[r[k].index] = 1;
        while (seen[miss])
            miss++;
        free(seen);
        return bh_err_set(err, BH_EINVAL,
                          "shard %u/%u is missing (%zu of %u states given): give the state of "
                          "every shard, or run the missing shard first",
                          miss, r[0].count, n, r[0].count);
    }
    return 0;
}

/* ---- the same task in two shards ------------------------------------- */

struct entry {
    size_t shard;
    struct store_task *t;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->t->item_key, y->t->item_key);
    if (c == 0)
        c = strcmp(x->t->stage, y->t->stage);
    if (c == 0)
        c = strcmp(x->t->element, y->t->element);
    return c ? c : (x->shard > y->shard) - (x->shard < y->shard);
}

/* Marks (id 0) the second copy of a task two shards ended alike; an error
 * naming both when they did not. */
static int dups_drop(struct shard_run *r, size_t n, struct bh_err *err)
{
    size_t total = 0, k = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        total += r[i].n_tasks;
    struct entry *v = bh_xcalloc(total + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < r[i].n_tasks; j++)
            v[k++] = (struct entry){i, &r[i].tasks[j]};
    qsort(v, total, sizeof(*v), entry_cmp);
    for (k = 1; k < total && rc == 0; k++) {
        const struct store_task *a = v[k - 1].t, *b = v[k].t;
        if (strcmp(a->item_key, b->item_key) || strcmp(a->stage, b->stage) ||
            strcmp(a->element, b->element))
            continue;
        if (a->state == b->state && strcmp(a->output, b->output) == 0)
            v[k].t->id = 0;
        else
            rc = bh_err_set(err, BH_EINVAL,
                            "task '%s %s%s%s' is in '%s' (%s) and in '%s' (%s) with different "
                            "results: each item belongs to one shard, so these are not shards "
                            "of one run",
                            b->item_key, b->stage, b->element[0] ? " " : "", b->element,
                            r[v[k - 1].shard].src->name, store_state_name(a->state),
                            r[v[k].shard].src->name, store_state_name(b->state));
    }
    free(v);
    return rc;
}

/* ---- copying --------------------------------------------------------- */

static int task_copy(struct store *into, int64_t run_id, const struct store_task *t,
                     struct bh_err *err)
{
    int64_t item_id = 0, task_id = 0;
    struct store_result res = {.state = t->state,
                               .output = t->output,
                               .label = t->label,
                               .endpoint = t->endpoint,
                               .locality = t->locality,
                               .model = t->model,
                               .answered_by = t->answered_by,
                               .error = t->error,
                               .note = t->note,
                               .cached = t->cached,
                               .prompt_tokens = t->prompt_tokens,
                               .output_tokens = t->output_tokens,
                               .load_ns = t->load_ns,
                               .total_ns = t->total_ns};
    int rc = store_item_put(into, run_id, t->item_key, &item_id, err);
    if (rc == 0)
        rc = store_task_put(into, run_id, item_id, t->stage, t->element, &task_id, err);
    return rc ? rc : store_task_finish(into, task_id, &res, err);
}

static void strs_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The labels and findings stages the reports and audit verify read. */
static int run_meta_copy(struct store *into, int64_t run_id, const struct shard_run *r,
                         struct bh_err *err)
{
    char **labels = NULL, **findings = NULL;
    size_t n_labels = 0, n_findings = 0;
    int rc = store_run_labels(r->src->s, r->run_id, &labels, &n_labels, err);
    if (rc == 0)
        rc = store_run_set_labels(into, run_id, labels, n_labels, err);
    if (rc == 0)
        rc = store_run_findings(r->src->s, r->run_id, &findings, &n_findings, err);
    if (rc == 0)
        rc = store_run_set_findings(into, run_id, findings, n_findings, err);
    strs_free(labels, n_labels);
    strs_free(findings, n_findings);
    return rc;
}

static int shard_copy(struct store *into, int64_t run_id, const struct shard_run *r,
                      struct bh_err *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->n_tasks; i++)
        if (r->tasks[i].id)
            rc = task_copy(into, run_id, &r->tasks[i], err);
    if (rc == 0) {
        char *why = bh_xasprintf("shard %u/%u merged from '%s' (its run %lld)", r->index, r->count,
                                 r->src->name, (long long)r->run_id);
        rc = store_audit_link(into, r->src->s, run_id, why, err);
        free(why);
        if (rc)
            bh_err_prefix(err, "state '%s': ", r->src->name);
    }
    return rc;
}

static int merge_write(struct store *into, struct shard_run *r, size_t n, struct bh_err *err)
{
    int64_t run_id = 0;
    int resumed = 0;
    int rc = store_batch_begin(into, err);
    if (rc)
        return rc;
    rc = store_run_open(into, r[0].base, r[0].pipeline, &run_id, &resumed, err);
    if (rc == 0 && resumed)
        rc = bh_err_set(err, BH_EINVAL,
                        "state database %s already holds this run: merge into a new folder",
                        into->path);
    if (rc == 0)
        rc = run_meta_copy(into, run_id, &r[0], err);
    for (unsigned i = 0; rc == 0 && i < r[0].count; i++)
        for (size_t k = 0; rc == 0 && k < n; k++)
            if (r[k].index == i)
                rc = shard_copy(into, run_id, &r[k], err);
    if (rc == 0)
        rc = store_run_finish(into, run_id, "merged", err);
    if (rc == 0)
        return store_batch_commit(into, err);
    sqlite3_exec(into->db, "ROLLBACK", NULL, NULL, NULL);
    into->batch = 0;
    return rc;
}

int store_merge(struct store *into, const struct store_shard *shards, size_t n, struct bh_err *err)
{
    struct shard_run *r = bh_xcalloc(n + 1, sizeof(*r));
    int rc = n ? 0 : bh_err_set(err, BH_EINVAL, "no shard state to merge");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        r[i].src = &shards[i];
        rc = shard_read(&r[i], err);
    }
    if (rc == 0)
        rc = shards_check(r, n, err);
    if (rc == 0)
        rc = dups_drop(r, n, err);
    if (rc == 0)
        rc = merge_write(into, r, n, err);
    for (size_t i = 0; i < n; i++) {
        free(r[i].base);
        free(r[i].pipeline);
        store_tasks_free(r[i].tasks, r[i].n_tasks);
    }
    free(r);
    return rc;
}

int store_run_merged(struct store *s, int64_t run_id, size_t *n_shards, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT count(*) FROM audit WHERE decision = 'merge' AND run_id = ?1", -1, &st,
        NULL);
    if (rc != SQLITE_OK || (rc = sqlite3_bind_int64(st, 1, run_id)) != SQLITE_OK) {
        rc = store_sqlerr(s, rc, err);
    } else if ((rc = store_step(s, st, err)) == 1) {
        *n_shards = (size_t)sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}
