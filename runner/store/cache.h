/* store/cache.h — the response cache: model replies kept in the state
 * database under the SHA-256 of the request that produced them, so that the
 * same request next time costs no model call. The store only keeps and finds
 * entries; what makes a key (endpoint, model, request body) and when a reply
 * may be used (after the egress gate allowed the request) is the stage
 * kind's business (stages/chat.c).
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef STORE_CACHE_H
#define STORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct bh_err;
struct store;

/* The largest reply an entry holds, decompressed (a reply is capped far
 * below this by the stage); a stored value that claims more is corrupt. */
#define STORE_CACHE_VALUE_MAX ((size_t)64 << 20)

/* A model's reply as the cache keeps it: what a stage needs to finish a task
 * as though the model had just answered. Strings are owned when read back
 * (store_cache_reply_release); put only reads them. */
struct store_cache_reply {
    char *content;     /* the reply text; NULL is stored as "" */
    char *model;       /* the model the reply named, or NULL */
    char *done_reason; /* "stop", "length", ... or NULL */
    int64_t prompt_tokens, output_tokens, load_ns, total_ns;
};
void store_cache_reply_release(struct store_cache_reply *r); /* NULL is fine */

/* Keeps r under key (64 hex digits), zstd-compressed, with label (the name of
 * the request's label, for inspection only: a hit carries the label of the
 * request that finds it). An entry with the same key is replaced, its hits
 * kept. BH_EINVAL for a malformed key; BH_ETOOBIG past STORE_CACHE_VALUE_MAX;
 * BH_EIO when the database cannot be written. Committed on return. */
int store_cache_put(struct store *s, const char *key, const char *label,
                    const struct store_cache_reply *r, struct bh_err *err);

/* store_cache_get's answer for an entry that is there but cannot be read back
 * (a bad blob, a failed checksum, a value over the cap): a miss. */
#define STORE_CACHE_CORRUPT 2

/* Finds the reply kept under key: 1 (a hit: *out filled, owned; the entry's
 * hits and last use are updated), 0 (a miss), STORE_CACHE_CORRUPT (a miss:
 * the entry is removed and err says what was wrong with it, for a warning), or
 * a negative code when the database cannot be read. *out is zeroed on every
 * answer but 1. */
int store_cache_get(struct store *s, const char *key, struct store_cache_reply *out,
                    struct bh_err *err);

struct store_cache_stats {
    int64_t entries;
    int64_t raw_bytes;    /* the replies as they were */
    int64_t stored_bytes; /* compressed, as kept */
    int64_t hits;         /* requests answered from the cache, over the entries kept */
    int64_t oldest_use;   /* unix seconds of the least recent use, 0 when empty */
};
int store_cache_stats(struct store *s, struct store_cache_stats *out, struct bh_err *err);

/* Removes the entries not used in the last `days` days (days >= 0), or every
 * entry (days < 0). *removed counts them. Committed on return. */
int store_cache_prune(struct store *s, int days, int64_t *removed, struct bh_err *err);

#endif
