/* util/bh_json.h — the one way the tree writes JSON: jansson trees built
 * through checked setters and written through a checked dump. jansson says
 * "no" only by its return value: json_string of text that is not UTF-8 gives
 * NULL, json_object_set_new then fails, and unchecked, the member is silently
 * gone from a report, a plan or a request body. These check every result and
 * latch the first failure in *bad, so that a builder makes its calls in a row
 * and looks once, before it writes anything.
 *
 * jansson stays behind the names: callers that build values include
 * <jansson.h> themselves; this header needs only the struct's name. */
#ifndef BH_JSON_H
#define BH_JSON_H

#include <stddef.h>
#include <stdio.h>

struct json_t;
struct bh_buf;

/* Sets o[key] = v and takes v's reference (as json_object_set_new does,
 * also when it fails). A NULL v (a json_string or json_pack that failed), a
 * NULL o, a key that is not UTF-8 or no memory: *bad = 1 (bad may be NULL)
 * and BH_EINVAL; else 0, and *bad is left as it was. */
int bh_json_set(struct json_t *o, const char *key, struct json_t *v, int *bad);

/* Appends v to array a, taking v's reference; failures as bh_json_set. */
int bh_json_push(struct json_t *a, struct json_t *v, int *bad);

/* v written with jansson's flags into a new string (owned), or NULL when it
 * cannot be (v NULL, or a value jansson refuses to encode). */
char *bh_json_dump(const struct json_t *v, size_t flags);

/* v written with flags, appended to b. Returns 0, BH_ETOOBIG past b's cap
 * (b then holds a prefix: reset it), or BH_EINVAL when v cannot be written. */
int bh_json_dump_buf(struct bh_buf *b, const struct json_t *v, size_t flags);

/* v written with flags to f. Returns 0, BH_EINVAL for a NULL v, or BH_EIO
 * when jansson or f fails (jansson does not say which). */
int bh_json_dump_file(FILE *f, const struct json_t *v, size_t flags);

#endif
