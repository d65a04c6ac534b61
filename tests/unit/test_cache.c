/* tests/unit/test_cache.c — the response cache table: replies round-trip
 * through zstd and back with every field, an entry is found only by its key,
 * a damaged value (garbage, a flipped byte, a cut blob, a valid frame around
 * a record that does not parse) is a miss with a warning and goes away, and
 * stats and prune count what they should. The test opens the database with
 * sqlite3 directly to damage it as a disk or a stray process would. */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "store/cache.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

#define KEY_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KEY_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fx {
    char base[64];
    char *db;
    struct store *s;
    struct bh_err err;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = bh_xcalloc(1, sizeof(*f));
    strcpy(f->base, "/tmp/bh-cache-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    f->db = bh_xasprintf("%s/state.db", f->base);
    if (store_open(&f->s, f->base, &f->err))
        fail_msg("store_open: %s", f->err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_free(f->s);
    nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f->db);
    free(f);
    return 0;
}

static void raw_exec(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    if (sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    sqlite3_close(h);
}

static int64_t raw_int(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* Replaces the value of key with blob, as a damaged disk would. */
static void raw_set_value(const char *db, const char *key, const void *blob, size_t n)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(h, "UPDATE cache SET value = ?2 WHERE key = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, blob, (int)n, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* The value of key as stored (owned). */
static unsigned char *raw_value(const char *db, const char *key, size_t *n)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    unsigned char *out = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT value FROM cache WHERE key = ?1", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *n = (size_t)sqlite3_column_bytes(st, 0);
    out = bh_xmalloc(*n);
    memcpy(out, sqlite3_column_blob(st, 0), *n);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

static void put_ok(struct fx *f, const char *key, const char *content, const char *model)
{
    struct store_cache_reply r = {.content = (char *)content,
                                  .model = (char *)model,
                                  .done_reason = "stop",
                                  .prompt_tokens = 120,
                                  .output_tokens = 34,
                                  .load_ns = 5000000,
                                  .total_ns = 9000000000LL};
    if (store_cache_put(f->s, key, "confidential", &r, &f->err))
        fail_msg("store_cache_put: %s", f->err.msg);
}

/* ---- round trip ------------------------------------------------------ */

static void cache_round_trip_keeps_every_field(void **state)
{
    struct fx *f = *state;
    struct store_cache_reply got;
    put_ok(f, KEY_A, "looks fine\nline two: ünïcode", "qwen2.5-coder:14b");
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 1);
    assert_string_equal(got.content, "looks fine\nline two: ünïcode");
    assert_string_equal(got.model, "qwen2.5-coder:14b");
    assert_string_equal(got.done_reason, "stop");
    assert_int_equal(got.prompt_tokens, 120);
    assert_int_equal(got.output_tokens, 34);
    assert_int_equal(got.load_ns, 5000000);
    assert_int_equal(got.total_ns, 9000000000LL);
    store_cache_reply_release(&got);
    assert_int_equal(raw_int(f->db, "SELECT hits FROM cache"), 1);
    assert_int_equal(raw_int(f->db, "SELECT COUNT(*) FROM cache WHERE label = 'confidential'"), 1);
}

static void cache_keeps_null_model_and_empty_content_apart(void **state)
{
    struct fx *f = *state;
    struct store_cache_reply r = {.content = "", .model = NULL, .done_reason = NULL};
    struct store_cache_reply got;
    assert_int_equal(store_cache_put(f->s, KEY_A, "public", &r, &f->err), 0);
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 1);
    assert_non_null(got.content);
    assert_string_equal(got.content, "");
    assert_null(got.model);
    assert_null(got.done_reason);
    store_cache_reply_release(&got);
}

static void cache_survives_reopening_the_state(void **state)
{
    struct fx *f = *state;
    struct store_cache_reply got;
    put_ok(f, KEY_B, "kept", "m");
    store_free(f->s);
    f->s = NULL;
    assert_int_equal(store_open(&f->s, f->base, &f->err), 0);
    assert_int_equal(store_cache_get(f->s, KEY_B, &got, &f->err), 1);
    assert_string_equal(got.content, "kept");
    store_cache_reply_release(&got);
}

static void cache_finds_only_the_key_it_was_given(void **state)
{
    struct fx *f = *state;
    struct store_cache_reply got;
    put_ok(f, KEY_A, "a", "m");
    assert_int_equal(store_cache_get(f->s, KEY_B, &got, &f->err), 0);
    assert_null(got.content);
}

static void cache_put_replaces_the_entry_and_keeps_its_hits(void **state)
{
    struct fx *f = *state;
    struct store_cache_reply got;
    put_ok(f, KEY_A, "first", "m");
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 1);
    store_cache_reply_release(&got);
    put_ok(f, KEY_A, "second", "m");
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 1);
    assert_string_equal(got.content, "second");
    store_cache_reply_release(&got);
    assert_int_equal(raw_int(f->db, "SELECT COUNT(*) FROM cache"), 1);
    assert_int_equal(raw_int(f->db, "SELECT hits FROM cache"), 2);
}

static void cache_compresses_a_repetitive_reply(void **state)
{
    struct fx *f = *state;
    struct store_cache_reply got;
    size_t n = 200000;
    char *big = bh_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = "the same finding again\n"[i % 23];
    big[n] = '\0';
    put_ok(f, KEY_A, big, "m");
    int64_t raw = raw_int(f->db, "SELECT raw_bytes FROM cache");
    int64_t stored = raw_int(f->db, "SELECT stored_bytes FROM cache");
    assert_true(raw > (int64_t)n);
    assert_true(stored * 20 < raw);
    assert_int_equal(raw_int(f->db, "SELECT length(value) FROM cache"), stored);
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 1);
    assert_memory_equal(got.content, big, n + 1);
    store_cache_reply_release(&got);
    free(big);
}

static void cache_refuses_a_malformed_key(void **state)
{
    struct fx *f = *state;
    struct store_cache_reply r = {.content = "x"}, got;
    assert_int_equal(store_cache_put(f->s, "abc", "public", &r, &f->err), BH_EINVAL);
    assert_string_equal(f->err.msg, "cache key 'abc' is not 64 hex digits");
    assert_int_equal(store_cache_get(f->s, KEY_A "0", &got, &f->err), BH_EINVAL);
    assert_int_equal(raw_int(f->db, "SELECT COUNT(*) FROM cache"), 0);
}

/* ---- damaged values -------------------------------------------------- */

static void assert_corrupt_miss(struct fx *f, const char *why)
{
    struct store_cache_reply got;
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), STORE_CACHE_CORRUPT);
    assert_null(got.content);
    assert_non_null(strstr(f->err.msg, "response cache entry aaaaaaaaaaaa"));
    assert_non_null(strstr(f->err.msg, why));
    assert_non_null(strstr(f->err.msg, "it was removed and the request is sent instead"));
    assert_int_equal(raw_int(f->db, "SELECT COUNT(*) FROM cache"), 0);
    /* A miss from then on, and the next reply takes its place. */
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 0);
    put_ok(f, KEY_A, "fresh", "m");
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 1);
    assert_string_equal(got.content, "fresh");
    store_cache_reply_release(&got);
}

static void cache_garbage_value_is_a_miss_with_a_warning(void **state)
{
    struct fx *f = *state;
    put_ok(f, KEY_A, "a reply", "m");
    raw_set_value(f->db, KEY_A, "not zstd at all", 15);
    assert_corrupt_miss(f, "not a zstd frame");
}

static void cache_flipped_byte_fails_the_checksum_and_is_a_miss(void **state)
{
    struct fx *f = *state;
    size_t n = 0;
    put_ok(f, KEY_A, "a reply long enough to have a body worth damaging in the middle", "m");
    unsigned char *v = raw_value(f->db, KEY_A, &n);
    v[n / 2] ^= 0x55;
    raw_set_value(f->db, KEY_A, v, n);
    free(v);
    assert_corrupt_miss(f, "cannot be read");
}

static void cache_cut_value_is_a_miss(void **state)
{
    struct fx *f = *state;
    size_t n = 0;
    put_ok(f, KEY_A, "a reply that gets cut", "m");
    unsigned char *v = raw_value(f->db, KEY_A, &n);
    raw_set_value(f->db, KEY_A, v, n - 6);
    free(v);
    assert_corrupt_miss(f, "cannot be read");
}

static void cache_valid_frame_around_a_bad_record_is_a_miss(void **state)
{
    struct fx *f = *state;
    const char record[] = "BHC1 but then nothing that parses";
    unsigned char frame[256];
    size_t n = ZSTD_compress(frame, sizeof(frame), record, sizeof(record) - 1, 3);
    assert_false(ZSTD_isError(n));
    put_ok(f, KEY_A, "a reply", "m");
    raw_set_value(f->db, KEY_A, frame, n);
    assert_corrupt_miss(f, "the reply inside does not parse");
}

static void cache_empty_value_is_a_miss(void **state)
{
    struct fx *f = *state;
    put_ok(f, KEY_A, "a reply", "m");
    raw_set_value(f->db, KEY_A, "", 0);
    assert_corrupt_miss(f, "cannot be read");
}

/* ---- stats and prune ------------------------------------------------- */

static void cache_stats_count_entries_bytes_and_hits(void **state)
{
    struct fx *f = *state;
    struct store_cache_stats st;
    struct store_cache_reply got;
    assert_int_equal(store_cache_stats(f->s, &st, &f->err), 0);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.oldest_use, 0);
    put_ok(f, KEY_A, "one", "m");
    put_ok(f, KEY_B, "two", "m");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(store_cache_get(f->s, KEY_B, &got, &f->err), 1);
        store_cache_reply_release(&got);
    }
    assert_int_equal(store_cache_stats(f->s, &st, &f->err), 0);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.raw_bytes, raw_int(f->db, "SELECT SUM(raw_bytes) FROM cache"));
    assert_int_equal(st.stored_bytes, raw_int(f->db, "SELECT SUM(length(value)) FROM cache"));
    assert_true(st.raw_bytes > 0);
    assert_true(st.oldest_use > 0);
}

static void cache_prune_removes_entries_unused_for_days(void **state)
{
    struct fx *f = *state;
    int64_t removed = -1;
    struct store_cache_reply got;
    put_ok(f, KEY_A, "old", "m");
    put_ok(f, KEY_B, "recent", "m");
    raw_exec(f->db, "UPDATE cache SET last_used = last_used - 10 * 86400 WHERE key = '" KEY_A "'");
    assert_int_equal(store_cache_prune(f->s, 30, &removed, &f->err), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(store_cache_prune(f->s, 7, &removed, &f->err), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 0);
    assert_int_equal(store_cache_get(f->s, KEY_B, &got, &f->err), 1);
    store_cache_reply_release(&got);
}

static void cache_prune_all_empties_the_cache(void **state)
{
    struct fx *f = *state;
    int64_t removed = -1;
    put_ok(f, KEY_A, "a", "m");
    put_ok(f, KEY_B, "b", "m");
    assert_int_equal(store_cache_prune(f->s, -1, &removed, &f->err), 0);
    assert_int_equal(removed, 2);
    assert_int_equal(raw_int(f->db, "SELECT COUNT(*) FROM cache"), 0);
}

static void cache_hit_moves_last_use_forward(void **state)
{
    struct fx *f = *state;
    int64_t removed = -1;
    struct store_cache_reply got;
    put_ok(f, KEY_A, "used again", "m");
    raw_exec(f->db, "UPDATE cache SET last_used = last_used - 10 * 86400");
    assert_int_equal(store_cache_get(f->s, KEY_A, &got, &f->err), 1);
    store_cache_reply_release(&got);
    assert_int_equal(store_cache_prune(f->s, 7, &removed, &f->err), 0);
    assert_int_equal(removed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(cache_round_trip_keeps_every_field),
        T(cache_keeps_null_model_and_empty_content_apart),
        T(cache_survives_reopening_the_state),
        T(cache_finds_only_the_key_it_was_given),
        T(cache_put_replaces_the_entry_and_keeps_its_hits),
        T(cache_compresses_a_repetitive_reply),
        T(cache_refuses_a_malformed_key),
        T(cache_garbage_value_is_a_miss_with_a_warning),
        T(cache_flipped_byte_fails_the_checksum_and_is_a_miss),
        T(cache_cut_value_is_a_miss),
        T(cache_valid_frame_around_a_bad_record_is_a_miss),
        T(cache_empty_value_is_a_miss),
        T(cache_stats_count_entries_bytes_and_hits),
        T(cache_prune_removes_entries_unused_for_days),
        T(cache_prune_all_empties_the_cache),
        T(cache_hit_moves_last_use_forward),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
