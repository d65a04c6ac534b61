/* util/bh_hash.h — SHA-256 (OpenSSL libcrypto behind this header). */
#ifndef BH_HASH_H
#define BH_HASH_H

#include <stddef.h>

#define BH_SHA256_HEX 65 /* 64 hex digits and a NUL */

/* Hex SHA-256 of data into out (BH_SHA256_HEX bytes). */
void bh_sha256_hex(const void *data, size_t len, char out[BH_SHA256_HEX]);

/* Incremental form, for hashing several parts without concatenating them. */
struct bh_sha256;
struct bh_sha256 *bh_sha256_new(void);
void bh_sha256_update(struct bh_sha256 *h, const void *data, size_t len);
/* Adds a length-prefixed string so that ("ab","c") and ("a","bc") differ. */
void bh_sha256_field(struct bh_sha256 *h, const char *s);
/* Writes the hex digest and frees h. */
void bh_sha256_final(struct bh_sha256 *h, char out[BH_SHA256_HEX]);

#endif
