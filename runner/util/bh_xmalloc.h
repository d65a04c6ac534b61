/* util/bh_xmalloc.h — allocation that cannot fail: out of memory aborts with
 * the size asked for. bulkhead is an application, not a library. */
#ifndef BH_XMALLOC_H
#define BH_XMALLOC_H

#include <stddef.h>
#include "bh_err.h"

void *bh_xmalloc(size_t n);
void *bh_xcalloc(size_t count, size_t size);
void *bh_xrealloc(void *p, size_t n);
/* Grows an array of count elements of size bytes to hold at least need
 * elements, doubling. Checked arithmetic; updates *count. */
void *bh_xgrow(void *p, size_t *count, size_t need, size_t size);
char *bh_xstrdup(const char *s); /* NULL gives NULL */
char *bh_xstrndup(const char *s, size_t n);
char *bh_xasprintf(const char *fmt, ...) BH_PRINTF(1, 2);

#endif
