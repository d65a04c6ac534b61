/* tests/fuzz/fuzz_provider_stream.c — every provider's reply parser on
 * arbitrary bytes, split at arbitrary points. Byte 0 picks the dialect, byte
 * 1 the HTTP status, byte 2 the chunk size; the rest is the body. */
#include <stddef.h>
#include <stdint.h>

#include "providers/prov.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 200, 200, 400, 401, 404, 429, 500, 503, 529, 307};
    if (size < 3)
        return 0;
    const struct prov_ops *ops = prov_find(prov_names[data[0] % prov_n_names]);
    long status = statuses[data[1] % (BH_NELEM(statuses))];
    size_t chunk = 1 + data[2] % 64;
    data += 3;
    size -= 3;
    struct prov_stream *s = ops->stream_new(1 << 16);
    struct bh_err err = {0};
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += chunk)
        rc = ops->stream_feed(s, (const char *)data + off, size - off < chunk ? size - off : chunk,
                              &err);
    struct prov_reply r = {0};
    if (rc == 0)
        ops->stream_finish(s, status, &r, &err);
    prov_reply_release(&r);
    ops->stream_free(s);
    return 0;
}
