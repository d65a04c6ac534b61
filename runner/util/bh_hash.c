/* util/bh_hash.c — SHA-256 through OpenSSL's EVP interface (the low-level
 * SHA256_* calls are deprecated in OpenSSL 3). */
#include "bh_hash.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bh_sha256 {
    EVP_MD_CTX *ctx;
};

static void hexify(const unsigned char *md, unsigned n, char out[BH_SHA256_HEX])
{
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < n && i < 32; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[64] = '\0';
}

struct bh_sha256 *bh_sha256_new(void)
{
    struct bh_sha256 *h = malloc(sizeof(*h));
    if (!h || !(h->ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        fprintf(stderr, "bulkhead: cannot initialise SHA-256\n");
        abort();
    }
    return h;
}

void bh_sha256_update(struct bh_sha256 *h, const void *data, size_t len)
{
    if (len && EVP_DigestUpdate(h->ctx, data, len) != 1)
        abort();
}

void bh_sha256_field(struct bh_sha256 *h, const char *s)
{
    uint64_t n = s ? strlen(s) : UINT64_MAX;
    unsigned char pre[8];
    for (int i = 0; i < 8; i++)
        pre[i] = (unsigned char)(n >> (8 * i));
    bh_sha256_update(h, pre, sizeof(pre));
    if (s)
        bh_sha256_update(h, s, strlen(s));
}

void bh_sha256_final(struct bh_sha256 *h, char out[BH_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1)
        abort();
    hexify(md, n, out);
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void bh_sha256_hex(const void *data, size_t len, char out[BH_SHA256_HEX])
{
    struct bh_sha256 *h = bh_sha256_new();
    bh_sha256_update(h, data, len);
    bh_sha256_final(h, out);
}
