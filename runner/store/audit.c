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
 * IMMEDIATE), so two writers can never chain to the same record. */
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

static int audit_insert(struct store *s, const struct store_audit *r, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *text[] = {r->item,     r->stage,  r->endpoint,      r->url,
                          r->locality, r->model,  r->label,         r->clearance,
                          r->decision, r->reason, r->payload_sha256};
    int rc = store_stmt(s, Q_AUDIT_INSERT,
                        "INSERT INTO audit (" AUDIT_COLUMNS ") VALUES"
                        " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                        " ?16, ?17)",
                        &st, err);
    if (rc)
        return rc;
    if ((rc = sqlite3_bind_int64(st, 1, r->seq)) != SQLITE_OK ||
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
        rc = audit_insert(s, &rec, err);
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

int store_audit_each(struct store *s, store_audit_fn fn, void *ud, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    struct store_audit r;
    int rc =
        store_stmt(s, Q_AUDIT_ALL, "SELECT " AUDIT_COLUMNS " FROM audit ORDER BY seq", &st, err);
    if (rc)
        return rc;
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

struct verify {
    struct bh_err *err;
    int64_t n, prev_seq;
    char prev_hash[BH_SHA256_HEX];
};

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
    return 0;
}

int store_audit_verify_chain(struct store *s, int64_t *n_records, struct bh_err *err)
{
    struct verify v = {.err = err};
    memcpy(v.prev_hash, zero_hash, BH_SHA256_HEX);
    int rc = store_audit_each(s, verify_one, &v, err);
    if (rc == 0)
        *n_records = v.n;
    return rc;
}
