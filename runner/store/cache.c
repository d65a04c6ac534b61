/* store/cache.c — the response cache table: replies kept by request hash,
 * zstd-compressed.
 *
 * A value is a small binary record (magic, four counters, three strings, each
 * length-prefixed) compressed into one zstd frame with its content size and a
 * checksum. The checksum is why a damaged blob is found instead of read as
 * another reply: a reply that decodes wrongly would be a wrong result, while
 * a miss only costs a model call. So every way a value can fail to read back
 * (no frame, a failed checksum, a size over the cap, a record that does not
 * parse) is a miss, and the entry goes away so the next reply replaces it.
 * Times are unix seconds: prune compares them, nobody reads them.
 *
 * Cache writes do not wait for the disk (synchronous = NORMAL for their own
 * transactions): a lost entry costs one model call, while a sync per entry
 * and per hit made a run answered from the cache a third slower. The next
 * task result, committed with a full sync, takes them to disk anyway. */
#include "store/cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

static const char magic[4] = {'B', 'H', 'C', '1'};
#define NO_STRING 0xffffffffu /* the length that says NULL */
#define N_COUNTERS 4
#define N_STRINGS 3

void store_cache_reply_release(struct store_cache_reply *r)
{
    if (!r)
        return;
    free(r->content);
    free(r->model);
    free(r->done_reason);
    memset(r, 0, sizeof(*r));
}

static int key_ok(const char *key)
{
    size_t n = 0;
    for (; key && key[n]; n++)
        if (!strchr("0123456789abcdef", key[n]))
            return 0;
    return n == 64;
}

/* ---- the record ------------------------------------------------------ */

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The record's bytes (owned) into *out; BH_ETOOBIG past the cap. */
static int record_encode(const struct store_cache_reply *r, unsigned char **out, size_t *len,
                         struct bh_err *err)
{
    const char *text[N_STRINGS] = {r->content ? r->content : "", r->model, r->done_reason};
    const int64_t num[N_COUNTERS] = {r->prompt_tokens, r->output_tokens, r->load_ns, r->total_ns};
    size_t n = sizeof(magic) + 8 * N_COUNTERS + 4 * N_STRINGS;
    for (int i = 0; i < N_STRINGS; i++)
        n += text[i] ? strlen(text[i]) : 0;
    if (n > STORE_CACHE_VALUE_MAX)
        return bh_err_set(err, BH_ETOOBIG, "a reply of %zu bytes is over the cache's cap of %zu", n,
                          STORE_CACHE_VALUE_MAX);
    unsigned char *p = bh_xmalloc(n), *w = p;
    memcpy(w, magic, sizeof(magic));
    w += sizeof(magic);
    for (int i = 0; i < N_COUNTERS; i++, w += 8)
        put_u64(w, (uint64_t)num[i]);
    for (int i = 0; i < N_STRINGS; i++) {
        size_t k = text[i] ? strlen(text[i]) : 0;
        uint64_t tag = text[i] ? k : NO_STRING;
        for (int b = 0; b < 4; b++)
            *w++ = (unsigned char)(tag >> (8 * b));
        if (k)
            memcpy(w, text[i], k);
        w += k;
    }
    *out = p;
    *len = n;
    return 0;
}

/* 0, or -1 when the record is malformed (out then holds what was read so far). */
static int record_decode(const unsigned char *p, size_t n, struct store_cache_reply *out)
{
    char **text[N_STRINGS] = {&out->content, &out->model, &out->done_reason};
    int64_t *num[N_COUNTERS] = {&out->prompt_tokens, &out->output_tokens, &out->load_ns,
                                &out->total_ns};
    size_t at = sizeof(magic) + 8 * N_COUNTERS;
    if (n < at || memcmp(p, magic, sizeof(magic)) != 0)
        return -1;
    for (int i = 0; i < N_COUNTERS; i++)
        *num[i] = (int64_t)get_u64(p + sizeof(magic) + 8 * i, 8);
    for (int i = 0; i < N_STRINGS; i++) {
        if (n - at < 4)
            return -1;
        uint64_t k = get_u64(p + at, 4);
        at += 4;
        if (k == NO_STRING)
            continue;
        if (k > n - at || memchr(p + at, '\0', (size_t)k))
            return -1;
        *text[i] = bh_xstrndup((const char *)p + at, (size_t)k);
        at += (size_t)k;
    }
    return at == n && out->content ? 0 : -1;
}

/* ---- compression ----------------------------------------------------- */

static int compress(const unsigned char *raw, size_t n, unsigned char **out, size_t *len,
                    struct bh_err *err)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t bound = ZSTD_compressBound(n), got = 0;
    unsigned char *dst = bh_xmalloc(bound);
    int rc = 0;
    if (!cc)
        rc = bh_err_set(err, BH_EINTERNAL, "zstd: cannot create a compression context");
    if (rc == 0 && (ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3)) ||
                    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1))))
        rc = bh_err_set(err, BH_EINTERNAL, "zstd: cannot set the compression parameters");
    if (rc == 0 && ZSTD_isError(got = ZSTD_compress2(cc, dst, bound, raw, n)))
        rc = bh_err_set(err, BH_EINTERNAL, "zstd: %s", ZSTD_getErrorName(got));
    ZSTD_freeCCtx(cc);
    if (rc) {
        free(dst);
        return rc;
    }
    *out = dst;
    *len = got;
    return 0;
}

/* The record inside a stored blob (owned), or NULL with why set. */
static unsigned char *decompress(const void *blob, size_t n, size_t *len, const char **why)
{
    unsigned long long size = ZSTD_getFrameContentSize(blob, n);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
        *why = "not a zstd frame";
        return NULL;
    }
    if (size > STORE_CACHE_VALUE_MAX) {
        *why = "its size is over the cap";
        return NULL;
    }
    unsigned char *raw = bh_xmalloc((size_t)size + 1);
    size_t got = ZSTD_decompress(raw, (size_t)size, blob, n);
    if (ZSTD_isError(got) || got != size) {
        *why = ZSTD_isError(got) ? ZSTD_getErrorName(got) : "a short frame";
        free(raw);
        return NULL;
    }
    *len = got;
    return raw;
}

/* ---- the table ------------------------------------------------------- */

static int put_row(struct store *s, const char *key, const char *label, const void *blob,
                   size_t stored, size_t raw, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, Q_CACHE_PUT,
                        "INSERT INTO cache (key, value, label, raw_bytes, stored_bytes, created,"
                        " last_used, hits) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 0)"
                        " ON CONFLICT (key) DO UPDATE SET value = ?2, label = ?3,"
                        " raw_bytes = ?4, stored_bytes = ?5, created = ?6, last_used = ?6",
                        &st, err);
    if (rc)
        return rc;
    if ((rc = store_bind_text(st, 1, key)) != SQLITE_OK ||
        (rc = sqlite3_bind_blob64(st, 2, blob, stored, SQLITE_STATIC)) != SQLITE_OK ||
        (rc = store_bind_text(st, 3, label)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)raw)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)stored)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL))) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    return store_step_unsynced(s, st, err);
}

int store_cache_put(struct store *s, const char *key, const char *label,
                    const struct store_cache_reply *r, struct bh_err *err)
{
    unsigned char *raw = NULL, *blob = NULL;
    size_t n = 0, stored = 0;
    if (!key_ok(key))
        return bh_err_set(err, BH_EINVAL, "cache key '%.80s' is not 64 hex digits", key ? key : "");
    int rc = record_encode(r, &raw, &n, err);
    if (rc == 0)
        rc = compress(raw, n, &blob, &stored, err);
    if (rc == 0)
        rc = put_row(s, key, label, blob, stored, n, err);
    free(raw);
    free(blob);
    return rc;
}

static int exec_key(struct store *s, enum store_q slot, const char *sql, const char *key,
                    struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, slot, sql, &st, err);
    if (rc)
        return rc;
    /* ?2, when the statement has one, is now. */
    if ((rc = store_bind_text(st, 1, key)) != SQLITE_OK ||
        (sqlite3_bind_parameter_count(st) > 1 &&
         (rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL))) != SQLITE_OK))
        return store_sqlerr(s, rc, err);
    return store_step_unsynced(s, st, err);
}

/* The blob under key, copied (owned): 1 found, 0 not, < 0 error. */
static int get_row(struct store *s, const char *key, void **blob, size_t *n, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_stmt(s, Q_CACHE_GET, "SELECT value FROM cache WHERE key = ?1", &st, err);
    if (rc)
        return rc;
    if ((rc = store_bind_text(st, 1, key)) != SQLITE_OK)
        return store_sqlerr(s, rc, err);
    rc = store_step(s, st, err);
    if (rc == 1) {
        *n = (size_t)sqlite3_column_bytes(st, 0);
        *blob = bh_xmalloc(*n + 1);
        if (*n)
            memcpy(*blob, sqlite3_column_blob(st, 0), *n);
    }
    sqlite3_reset(st);
    return rc;
}

/* A value that does not read back: removed, and the caller warns. */
static int corrupt(struct store *s, const char *key, const char *why, struct bh_err *err)
{
    struct bh_err derr = {0};
    exec_key(s, Q_CACHE_DROP, "DELETE FROM cache WHERE key = ?1", key, &derr);
    bh_err_set(err, BH_EIO,
               "response cache entry %.12s in %s cannot be read (%s): it was "
               "removed and the request is sent instead",
               key, s->path, why);
    return STORE_CACHE_CORRUPT;
}

int store_cache_get(struct store *s, const char *key, struct store_cache_reply *out,
                    struct bh_err *err)
{
    void *blob = NULL;
    size_t n = 0, len = 0;
    const char *why = NULL;
    memset(out, 0, sizeof(*out));
    if (!key_ok(key))
        return bh_err_set(err, BH_EINVAL, "cache key '%.80s' is not 64 hex digits", key ? key : "");
    int rc = get_row(s, key, &blob, &n, err);
    if (rc != 1) {
        free(blob);
        return rc;
    }
    unsigned char *raw = decompress(blob, n, &len, &why);
    free(blob);
    if (raw && record_decode(raw, len, out) != 0)
        why = "the reply inside does not parse";
    free(raw);
    if (why) {
        store_cache_reply_release(out);
        return corrupt(s, key, why, err);
    }
    rc = exec_key(s, Q_CACHE_HIT, "UPDATE cache SET hits = hits + 1, last_used = ?2 WHERE key = ?1",
                  key, err);
    if (rc) {
        store_cache_reply_release(out);
        return rc;
    }
    return 1;
}

int store_cache_stats(struct store *s, struct store_cache_stats *out, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    int rc = store_stmt(s, Q_CACHE_STATS,
                        "SELECT COUNT(*), TOTAL(raw_bytes), TOTAL(stored_bytes), TOTAL(hits),"
                        " COALESCE(MIN(last_used), 0) FROM cache",
                        &st, err);
    if (rc)
        return rc;
    rc = store_step(s, st, err);
    if (rc == 1) {
        out->entries = sqlite3_column_int64(st, 0);
        out->raw_bytes = (int64_t)sqlite3_column_double(st, 1);
        out->stored_bytes = (int64_t)sqlite3_column_double(st, 2);
        out->hits = (int64_t)sqlite3_column_double(st, 3);
        out->oldest_use = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

int store_cache_prune(struct store *s, int days, int64_t *removed, struct bh_err *err)
{
    sqlite3_stmt *st = NULL;
    int64_t cutoff = days < 0 ? INT64_MAX : (int64_t)time(NULL) - (int64_t)days * 86400;
    *removed = 0;
    int rc = store_stmt(s, Q_CACHE_PRUNE, "DELETE FROM cache WHERE last_used < ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, cutoff);
    rc = store_step(s, st, err);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    *removed = sqlite3_changes64(s->db);
    return 0;
}
