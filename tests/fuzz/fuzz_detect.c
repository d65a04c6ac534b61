/* tests/fuzz/fuzz_detect.c — every content detector on arbitrary bytes: no
 * crash, no read outside the buffer, and every hit inside it, ordered. */
#include <stdint.h>
#include <stdlib.h>

#include "detect/detect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct det_hit *hits = NULL;
    size_t n = 0;
    if (det_scan((const char *)data, size, NULL, 0, &hits, &n, 0) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (hits[i].offset > size || hits[i].length > size - hits[i].offset)
                abort();
            if (i && hits[i].offset < hits[i - 1].offset)
                abort();
        }
    }
    det_hits_free(hits);
    return 0;
}
