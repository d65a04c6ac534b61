/* tests/fuzz/fuzz_sse.c — the Server-Sent Events reader (providers/sse.c)
 * on arbitrary bytes. Byte 0 picks the cap on one line or event, byte 1 the
 * size of the pieces the rest is fed in. The same bytes are also fed in one
 * piece: both must produce the same events, in the same order, and end with
 * the same code (a "\r\n" split across two feeds is one line end). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/sse.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every event as "<name>\0<len bytes of data>\0", one after the other. */
static int on_event(void *ud, const char *event, const char *data, size_t len, struct bh_err *err)
{
    struct bh_buf *log = ud;
    (void)err;
    if (data[len] != '\0')
        abort(); /* the contract: NUL-terminated data */
    if (bh_buf_append(log, event, strlen(event) + 1) || bh_buf_append(log, data, len) ||
        bh_buf_append(log, "", 1))
        abort(); /* the log's cap is far above anything fed */
    return 0;
}

/* Feeds data in pieces of chunk bytes, then finishes; the events go to log. */
static int read_all(const uint8_t *data, size_t size, size_t chunk, size_t event_max,
                    struct bh_buf *log, int *cut)
{
    struct prov_sse *p = prov_sse_new(event_max, 0);
    struct bh_err err = {0};
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += chunk)
        rc = prov_sse_feed(p, (const char *)data + off, size - off < chunk ? size - off : chunk,
                           on_event, log, &err);
    if (rc == 0)
        rc = prov_sse_finish(p, on_event, log, cut, &err);
    else if (prov_sse_feed(p, "data: x\n\n", 9, on_event, log, &err) != rc)
        abort(); /* an error is sticky */
    prov_sse_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t event_max = 1 + (size_t)data[0] * 4;
    size_t chunk = 1 + data[1] % 32;
    data += 2;
    size -= 2;
    struct bh_buf whole, pieces;
    bh_buf_init(&whole, 1 << 24);
    bh_buf_init(&pieces, 1 << 24);
    int cut_whole = 0, cut_pieces = 0;
    int rc_whole = read_all(data, size, size ? size : 1, event_max, &whole, &cut_whole);
    int rc_pieces = read_all(data, size, chunk, event_max, &pieces, &cut_pieces);
    if (rc_whole != rc_pieces || cut_whole != cut_pieces || whole.len != pieces.len ||
        (whole.len && memcmp(whole.data, pieces.data, whole.len) != 0))
        abort(); /* the split changed what was read */
    bh_buf_release(&whole);
    bh_buf_release(&pieces);
    return 0;
}
