/* tests/helpers/prov_feed.c — see header. */
#include "prov_feed.h"

#include <string.h>

uint32_t pf_rng_next(uint32_t *st)
{
    uint32_t x = *st;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *st = x;
}

void pf_run(const char *dialect, const char *body, size_t len, long status, size_t max,
            enum prov_chunking how, uint32_t seed, struct prov_outcome *out)
{
    const struct prov_ops *ops = prov_find(dialect);
    struct prov_stream *s = ops->stream_new(max);
    uint32_t st = seed ? seed : 1;
    size_t off = 0;
    memset(out, 0, sizeof(*out));
    while (off < len && out->rc == 0) {
        size_t n = how == PF_WHOLE ? len : how == PF_BYTES ? 1 : 1 + pf_rng_next(&st) % 97;
        if (n > len - off)
            n = len - off;
        out->rc = ops->stream_feed(s, body + off, n, &out->err);
        out->at_feed = out->rc != 0;
        off += n;
    }
    if (out->rc == 0)
        out->rc = ops->stream_finish(s, status, &out->r, &out->err);
    ops->stream_free(s);
}
