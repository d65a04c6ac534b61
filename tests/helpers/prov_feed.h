/* tests/helpers/prov_feed.h — feeds a reply body to a provider's parser in
 * one piece, byte by byte, or in seeded random chunks, for the provider
 * tests: every parser must give the same answer for any split. */
#ifndef PROV_FEED_H
#define PROV_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "providers/prov.h"
#include "util/bh_err.h"

enum prov_chunking { PF_WHOLE, PF_BYTES, PF_RANDOM };

struct prov_outcome {
    int rc;      /* the first non-zero of feed/finish */
    int at_feed; /* 1: the error came from stream_feed */
    struct bh_err err;
    struct prov_reply r;
};

/* xorshift32: a small seeded generator, the same on every machine. */
uint32_t pf_rng_next(uint32_t *st);

/* Feeds body to the parser of dialect in the chunking asked for, then
 * finishes it with status; out->r is the caller's to release. */
void pf_run(const char *dialect, const char *body, size_t len, long status, size_t max,
            enum prov_chunking how, uint32_t seed, struct prov_outcome *out);

#endif
