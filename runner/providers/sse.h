/* providers/sse.h — an incremental Server-Sent Events parser (the framing of
 * the openai and anthropic streams). Bytes in any split, events out through
 * a callback. Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef PROV_SSE_H
#define PROV_SSE_H

#include <stddef.h>

struct bh_err;
struct prov_sse; /* opaque */

/* One event: name ("message" when the event had no "event:" line) and its
 * data lines joined with "\n" (NUL-terminated; data[len] == '\0'). Both are
 * borrowed until the callback returns. A non-zero return stops the parser
 * and is returned by the feed that dispatched the event (the callback fills
 * err itself). */
typedef int (*prov_sse_fn)(void *ud, const char *event, const char *data, size_t len,
                           struct bh_err *err);

/* A parser. event_max caps one line and one event's data (bytes); total_max
 * caps all bytes fed. 0 for either: BH_BUF_DEFAULT_MAX. */
struct prov_sse *prov_sse_new(size_t event_max, size_t total_max);
void prov_sse_free(struct prov_sse *p); /* NULL is fine */

/* Feeds bytes. Lines end in "\n", "\r\n" or "\r" (a "\r\n" split across two
 * feeds counts once); lines starting with ':' are comments; "data:" values
 * accumulate; a blank line dispatches the event if it has data. Fields other
 * than event and data (id, retry, unknown) are ignored.
 * BH_ETOOBIG past a cap (the message names it); after any error the parser
 * refuses further input with the same code. */
int prov_sse_feed(struct prov_sse *p, const char *buf, size_t len, prov_sse_fn fn, void *ud,
                  struct bh_err *err);

/* Ends the input. An event whose last line was complete but which missed its
 * blank line is dispatched (servers that close right after "data: [DONE]\n");
 * a partial last line is dropped, as the SSE standard says, and reported
 * through *cut (1) so the caller can say the stream was cut. */
int prov_sse_finish(struct prov_sse *p, prov_sse_fn fn, void *ud, int *cut, struct bh_err *err);

#endif
