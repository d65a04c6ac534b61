/* store/audit.c — the hash-chained audit log of egress decisions.
 *
 * hash = SHA-256 over prev_hash and every field of the record, in table
 * order, each length-prefixed (bh_sha256_field) so that no two records hash
 * the same by moving bytes between fields; integers go in as decimal text.
 * The first record chains to 64 zeros. Altering a record breaks its own
 * hash; deleting or reordering records breaks the next record's prev_hash.
 * What a chain cannot show alone is the loss of its newest records: whoever
 * needs that keeps the last hash elsewhere (a CI log, a report).
 * Reading the last hash and inserting happen under one write lock (BEGIN
 * IMMEDIATE), so two writers can never chain to the same record.
 *
 * Merged shards (bulkhead merge): a shard's records keep their own chain,
 * copied as they are into the table audit_merged beside the main chain, and
 * one merge record in the main chain names that chain's newest hash and its
 * length. The merge record's own hash covers both, so altering, removing or
 * re-chaining a shard's record breaks either the shard's chain or the main
 * one. The table is made by the first merge, not by a migration: only a
 * merged state has it, and a state without it has no merge records. */
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"
#include "util/bh_err.h"
#include "util/bh_hash.h"
#include "util/bh_util.h"

static const char zero_hash[BH_SHA256_HEX] =
    "0000000000000000000000000000000000000000000000000000000000000000";

#define AUDIT_COLUMNS                                                                              \
    "seq, time, run_id, item, stage, endpoint, url, locality, model, label, clearance,"            \
    " decision, reason, payload_sha256, bytes, prev_hash, hash"

static void field_int(struct bh_sha256 *h, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    bh_sha256_field(h, num);
}

/* NULL strings hash as "" because that is how they are stored and read. */
static void field_str(struct bh_sha256 *h, const char *s)
{
    bh_sha256_field(h, s ? s : "");
}

static void audit_hash(const struct store_audit *r, char out[BH_SHA256_HEX])
{
    struct bh_sha256 *h = bh_sha256_new();
    const char *text[] = {r->item,     r->stage,  r->endpoint,      r->url,
                          r->locality, r->model,  r->label,         r->clearance,
                          r->decision, r->reason, r->payload_sha256};
    field_str(h, r->prev_hash);
    field_int(h, r->seq);
    field_str(h, r->time);
    field_int(h, r->run_id);
    for (size_t i = 0; i < BH_NELEM(text); i++)
        field_str(h, text[i]);
    field_int(h, r->bytes);
    bh_sha256_final(h, out);
}

/* The newest record's seq and hash; seq 0 and zeros for an empty log. */
static int audit_last(struct store *s, int64_t *seq, char hash[BH_SHA256_HEX], struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, Q_AUDIT_LAST, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                        &st, err);
    if (rc)
        return rc;
    *seq = 0;
    memcpy(hash, zero_hash, BH_SHA256_HEX);
    rc = store_step(s, st, err);
    if (rc == 1) {
        *seq = sqlite3_column_int64(st, 0);
        snprintf(hash, BH_SHA256_HEX, "%s", store_col_text(st, 1));
    }
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

/* Into the main chain, or (link > 0) among the records the merge record
 * with seq link links. */
static int audit_insert(struct store *s, const struct store_audit *r, int64_t link,
                        struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *text[] = {r->item,     r->stage,  r->endpoint,      r->url,
                          r->locality, r->model,  r->label,         r->clearance,
                          r->decision, r->reason, r->payload_sha256};
    int rc = link > 0 ? store_stmt(s, Q_AUDIT_LINK_INSERT,
                                   "INSERT INTO audit_merged (" AUDIT_COLUMNS ", link) VALUES"
                                   " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                                   " ?14, ?15, ?16, ?17, ?18)",
                                   &st, err)
                      : store_stmt(s, Q_AUDIT_INSERT,
                                   "INSERT INTO audit (" AUDIT_COLUMNS ") VALUES"
                                   " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                                   " ?14, ?15, ?16, ?17)",
                                   &st, err);
    if (rc)
        return rc;
    if ((link > 0 && (rc = sqlite3_bind_int64(st, 18, link)) != SQLITE_OK) ||
        (rc = sqlite3_bind_int64(st, 1, r->seq)) != SQLITE_OK ||
        (rc = store_bind_text(st, 2, r->time)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 3, r->run_id)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    for (int i = 0; rc == SQLITE_OK && i < 11; i++)
        rc = store_bind_text(st, 4 + i, text[i]);
    if (rc != SQLITE_OK || (rc = sqlite3_bind_int64(st, 15, r->bytes)) != SQLITE_OK ||
        (rc = store_bind_text(st, 16, r->prev_hash)) != SQLITE_OK ||
        (rc = store_bind_text(st, 17, r->hash)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    rc = store_step(s, st, err);
    sqlite3_reset(st);
    return rc;
}

int store_audit_append(struct store *s, struct store_audit *r, struct bh_err *err)
{
    struct store_audit rec = *r;
    int64_t last = 0;
    store_now(rec.time);
    int rc = store_tx_begin(s, err);
    if (rc)
        return rc;
    rc = audit_last(s, &last, rec.prev_hash, err);
    if (rc == 0) {
        rec.seq = last + 1;
        audit_hash(&rec, rec.hash);
        rc = audit_insert(s, &rec, 0, err);
    }
    rc = store_tx_end(s, rc, err);
    if (rc == 0)
        *r = rec;
    return rc;
}

/* Copies a fixed-size field; a value too long for it was not written by
 * append, so the record was altered. */
static int fixed_copy(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const char *v = store_col_text(st, col);
    if (strlen(v) >= size)
        return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int audit_read(struct store *s, sqlite3_stmt *st, struct store_audit *r, struct bh_err *err)
{
    const char **text[] = {&r->item,     &r->stage,  &r->endpoint,      &r->url,
                           &r->locality, &r->model,  &r->label,         &r->clearance,
                           &r->decision, &r->reason, &r->payload_sha256};
    memset(r, 0, sizeof(*r));
    r->seq = sqlite3_column_int64(st, 0);
    r->run_id = sqlite3_column_int64(st, 2);
    for (int i = 0; i < 11; i++)
        *text[i] = store_col_text(st, 3 + i);
    r->bytes = sqlite3_column_int64(st, 14);
    if (fixed_copy(r->time, sizeof(r->time), st, 1) ||
        fixed_copy(r->prev_hash, sizeof(r->prev_hash), st, 15) ||
        fixed_copy(r->hash, sizeof(r->hash), st, 16))
        return bh_err_set(err, BH_EINVAL,
                          "audit record %lld: a field is longer than any record has — the "
                          "audit log of %s was altered",
                          (long long)r->seq, s->path);
    return 0;
}

static int walk(struct store *s, sqlite3_stmt *st, store_audit_fn fn, void *ud, struct bh_err *err)
{
    struct store_audit r;
    int rc = 0;
    while ((rc = store_step(s, st, err)) == 1) {
        rc = audit_read(s, st, &r, err);
        if (rc == 0)
            rc = fn(ud, &r);
        if (rc)
            break;
    }
    sqlite3_reset(st);
    return rc;
}

int store_audit_each(struct store *s, store_audit_fn fn, void *ud, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc =
        store_stmt(s, Q_AUDIT_ALL, "SELECT " AUDIT_COLUMNS " FROM audit ORDER BY seq", &st, err);
    return rc ? rc : walk(s, st, fn, ud, err);
}

/* 1 when the state holds merged shards' records, 0 when not, or an error. */
static int linked_exist(struct store *s, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                " AND name = 'audit_merged'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    rc = store_step(s, st, err);
    sqlite3_finalize(st);
    return rc;
}

int store_audit_each_linked(struct store *s, int64_t link, store_audit_fn fn, void *ud,
                            struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = linked_exist(s, err);
    if (rc <= 0)
        return rc;
    rc = store_stmt(s, Q_AUDIT_LINKED,
                    "SELECT " AUDIT_COLUMNS " FROM audit_merged WHERE link = ?1 ORDER BY seq", &st,
                    err);
    if (rc == 0 && (rc = sqlite3_bind_int64(st, 1, link)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    return rc ? rc : walk(s, st, fn, ud, err);
}

struct verify {
    struct store *s;
    struct bh_err *err;
    int nested; /* walking a merged shard's chain: merge records there link nothing */
    int64_t n, prev_seq;
    char prev_hash[BH_SHA256_HEX];
};

static int linked_verify(struct verify *v, const struct store_audit *r);

static int verify_one(void *ud, const struct store_audit *r)
{
    struct verify *v = ud;
    char hash[BH_SHA256_HEX];
    audit_hash(r, hash);
    if (strcmp(hash, r->hash) != 0)
        return bh_err_set(v->err, BH_EINVAL,
                          "audit record %lld: hash does not match its contents — the audit "
                          "log was altered",
                          (long long)r->seq);
    if (strcmp(r->prev_hash, v->prev_hash) != 0 && v->n == 0)
        return bh_err_set(v->err, BH_EINVAL,
                          "audit record %lld does not chain to the start of the log — earlier "
                          "records were removed",
                          (long long)r->seq);
    if (strcmp(r->prev_hash, v->prev_hash) != 0)
        return bh_err_set(v->err, BH_EINVAL,
                          "audit record %lld does not chain to record %lld — a record between "
                          "them was removed or altered",
                          (long long)r->seq, (long long)v->prev_seq);
    memcpy(v->prev_hash, r->hash, BH_SHA256_HEX);
    v->prev_seq = r->seq;
    v->n++;
    return strcmp(r->decision, "merge") == 0 && !v->nested ? linked_verify(v, r) : 0;
}

/* The chain a merge record links is whole and is the one it names. */
static int linked_verify(struct verify *v, const struct store_audit *r)
{
    struct verify lv = {.s = v->s, .err = v->err, .nested = 1};
    memcpy(lv.prev_hash, zero_hash, BH_SHA256_HEX);
    int rc = store_audit_each_linked(v->s, r->seq, verify_one, &lv, v->err);
    if (rc == BH_EINVAL)
        bh_err_prefix(v->err,
                      "audit record %lld links the audit log of a merged shard (%s); in it, ",
                      (long long)r->seq, r->reason);
    if (rc == 0 && (lv.n != r->bytes || strcmp(lv.prev_hash, r->payload_sha256) != 0))
        rc = bh_err_set(v->err, BH_EINVAL,
                        "audit record %lld links a merged shard's audit log of %lld records "
                        "ending with hash %.16s, but the state holds %lld records ending with "
                        "%.16s — records of the merged shard were removed or altered (%s)",
                        (long long)r->seq, (long long)r->bytes, r->payload_sha256, (long long)lv.n,
                        lv.prev_hash, r->reason);
    return rc;
}

static int chain_walk(struct store *s, struct verify *v, struct bh_err *err)
{
    *v = (struct verify){.s = s, .err = err};
    memcpy(v->prev_hash, zero_hash, BH_SHA256_HEX);
    return store_audit_each(s, verify_one, v, err);
}

int store_audit_verify_chain(struct store *s, int64_t *n_records, struct bh_err *err)
{
    struct verify v;
    int rc = chain_walk(s, &v, err);
    if (rc == 0)
        *n_records = v.n;
    return rc;
}

/* ---- linking a shard's chain (bulkhead merge) ------------------------ */

struct copy {
    struct store *into;
    int64_t link;
    struct bh_err *err;
};

static int copy_one(void *ud, const struct store_audit *r)
{
    struct copy *c = ud;
    return audit_insert(c->into, r, c->link, c->err);
}

int store_audit_link(struct store *into, struct store *from, int64_t run_id, const char *reason,
                     struct bh_err *err)
{
    struct verify v;
    int rc = chain_walk(from, &v, err);
    if (rc)
        return rc;
    struct store_audit rec = {.run_id = run_id,
                              .decision = "merge",
                              .reason = reason,
                              .payload_sha256 = v.prev_hash,
                              .bytes = v.n};
    rc = sqlite3_exec(into->db,
                      "CREATE TABLE IF NOT EXISTS audit_merged ("
                      " link INTEGER NOT NULL, seq INTEGER NOT NULL,"
                      " time TEXT NOT NULL, run_id INTEGER NOT NULL,"
                      " item TEXT NOT NULL, stage TEXT NOT NULL, endpoint TEXT NOT NULL,"
                      " url TEXT NOT NULL, locality TEXT NOT NULL, model TEXT NOT NULL,"
                      " label TEXT NOT NULL, clearance TEXT NOT NULL, decision TEXT NOT NULL,"
                      " reason TEXT NOT NULL, payload_sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,"
                      " prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (link, seq))",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlerr(into, rc, err);
    rc = store_audit_append(into, &rec, err);
    struct copy c = {into, rec.seq, err};
    return rc ? rc : store_audit_each(from, copy_one, &c, err);
}
