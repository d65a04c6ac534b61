/* util/bh_buf.h — a growable byte buffer with a hard cap. Every buffer that
 * grows from input (a reply, a diff, a document) gets a cap, so a hostile or
 * broken peer produces an error, not an allocation storm. The data is always
 * NUL-terminated (the terminator is not counted in len). */
#ifndef BH_BUF_H
#define BH_BUF_H

#include <stddef.h>
#include "bh_err.h"

struct bh_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap; /* allocated bytes */
    size_t max; /* cap on len; 0 means BH_BUF_DEFAULT_MAX */
};

#define BH_BUF_DEFAULT_MAX ((size_t)64 << 20)

void bh_buf_init(struct bh_buf *b, size_t max);
void bh_buf_release(struct bh_buf *b);
void bh_buf_reset(struct bh_buf *b); /* len = 0, keeps memory */

/* Append n bytes. Returns 0, or BH_ETOOBIG (buffer unchanged) past the cap. */
int bh_buf_append(struct bh_buf *b, const void *p, size_t n);
int bh_buf_puts(struct bh_buf *b, const char *s);
int bh_buf_printf(struct bh_buf *b, const char *fmt, ...) BH_PRINTF(2, 3);

/* Removes the first n bytes (n <= len). */
void bh_buf_consume(struct bh_buf *b, size_t n);

/* Gives the caller the data (always a valid string, never NULL); b is empty after. */
char *bh_buf_detach(struct bh_buf *b);

#endif
