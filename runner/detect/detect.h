/* detect/detect.h — content detectors: hand-written scanners that find
 * secrets and personal data in a byte buffer (private keys, cloud keys,
 * tokens, JWTs, password assignments, e-mail addresses, card numbers, IBANs,
 * US SSNs, private IPv4 addresses). Pure: no I/O, no global state, no
 * allocation except the hit array. Safe on any bytes (NULs, invalid UTF-8).
 *
 * A hit records where something was found, never what: the matched text is
 * not copied, so hits can be logged (detector, field, line) and stored. */
#ifndef DETECT_H
#define DETECT_H

#include <stddef.h>

struct bh_err;

/* Where one match lies in the scanned buffer. */
struct det_span {
    size_t offset;
    size_t length;
};

/* A matcher finds the first match that starts at or after `from` in
 * data[0..len): returns 1 and fills *out (out->offset >= from, length >= 1),
 * or 0 when there is none. It may look behind `from` (for a word boundary)
 * but never outside data. Linear: the work of one call is bounded by a
 * constant times the bytes between `from` and the end of what it returns.
 * ctx is the detector's own ctx (NULL for the built-ins; a caller-made
 * detector, e.g. a pipeline's regex, carries its compiled state there). */
typedef int (*det_match_fn)(const void *ctx, const char *data, size_t len, size_t from,
                            struct det_span *out);

struct det_detector {
    const char *id;    /* "aws-access-key" */
    const char *group; /* what a pipeline names: "cloud-keys" */
    const char *label; /* default label name it raises to: "restricted" */
    int secret;        /* 1: never declassified, only redacted */
    det_match_fn match;
    const void *ctx; /* passed to match; NULL for the built-ins */
};

/* One finding. Deliberately no text: offset and length let a caller redact
 * or compare with an allowlist without the secret ever being copied. */
struct det_hit {
    const struct det_detector *detector; /* borrowed from the static table */
    size_t offset;                       /* byte offset of the match */
    size_t length;                       /* bytes matched */
    size_t line;                         /* 1-based line of offset */
};

/* Scans larger than this are refused by det_scan (BH_ETOOBIG). */
#define DET_MAX_BYTES ((size_t)16 << 20)

/* The built-in detectors, in a fixed order; *n gets their count. The table
 * is static and lives for the whole process. */
const struct det_detector *det_all(size_t *n);

/* The detector with this id, or NULL. */
const struct det_detector *det_find(const char *id);

/* Fills out[0..cap) with the detectors of `group` in table order and returns
 * how many the group has (0: no such group). A count above cap means out
 * holds only the first cap. */
size_t det_group(const char *group, const struct det_detector **out, size_t cap);

/* What a pipeline's `detectors` list names: a detector id or a group name.
 * Fills out[0..cap) as det_group does and sets *n to the count.
 * Returns 0, or BH_ENOTFOUND with a message that names the known groups and
 * suggests the closest name. */
int det_resolve(const char *name, const struct det_detector **out, size_t cap, size_t *n,
                struct bh_err *err);

struct det_opts {
    const struct det_detector *const *enabled; /* NULL: every detector */
    size_t n_enabled;
    size_t max_hits;  /* more hits than this: BH_ETOOBIG; 0 means 4096 */
    size_t max_bytes; /* longer input: BH_ETOOBIG; 0 means DET_MAX_BYTES */
};
#define DET_OPTS_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* Runs the enabled detectors over data[0..len) and gives the caller an owned
 * array of hits sorted by offset (then table order), each with its line.
 * *hits is NULL when there are none; free it with det_hits_free. Returns 0,
 * or BH_ETOOBIG when len exceeds the byte cap or the hits exceed max_hits:
 * then nothing is returned and the caller must treat the value as top
 * (unknown means top) and cannot redact it. */
int det_scan_opts(const char *data, size_t len, const struct det_opts *opts, struct det_hit **hits,
                  size_t *n_hits);

/* det_scan_opts with enabled[n_enabled] (NULL, 0: all), max_hits
 * (0: 4096) and the byte cap DET_MAX_BYTES. */
int det_scan(const char *data, size_t len, const struct det_detector *const *enabled,
             size_t n_enabled, struct det_hit **hits, size_t *n_hits, size_t max_hits);

void det_hits_free(struct det_hit *hits); /* NULL is fine */

#endif
