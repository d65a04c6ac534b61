/* util/bh_err.h — the one error type. It carries what a user needs to act:
 * the user's file, line and column, the JSON path of the offending value and
 * a message. The deepest layer that knows the facts fills it; callers pass it
 * up unchanged or prefix context once with bh_err_prefix(). */
#ifndef BH_ERR_H
#define BH_ERR_H

#include <stdio.h>

enum {
    BH_OK = 0,
    BH_EINVAL = -1,    /* bad configuration or usage (exit 2) */
    BH_EIO = -2,       /* file or database I/O */
    BH_EPOLICY = -3,   /* the egress gate or the static check refused (exit 3) */
    BH_ENET = -4,      /* connection, HTTP status, protocol */
    BH_EREPLY = -5,    /* a server's reply could not be understood */
    BH_ETOOBIG = -6,   /* a capped buffer would overflow its cap */
    BH_ENOTFOUND = -7, /* a named thing does not exist */
    BH_EINTERNAL = -8, /* a bug (exit 70) */
    BH_ESKIP = -9,     /* withheld because the pipeline says so (on_sensitive "skip"): the
                          task ends skipped, which is the pipeline's intent, not an error */
};

struct bh_err {
    int code;       /* BH_E* (negative), BH_OK when clear */
    char file[256]; /* the user's file, if any */
    int line, col;  /* 0 when unknown */
    char path[128]; /* JSON path of the offending value, e.g. stages.review.model */
    char msg[512];
};

#if defined(__GNUC__)
#define BH_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BH_PRINTF(a, b)
#endif

/* Clears every field. NULL is fine. */
void bh_err_clear(struct bh_err *err);

/* Sets code and message; keeps file/line/col/path as they are. Returns code,
 * so a caller can write `return bh_err_set(err, BH_EINVAL, "...")`.
 * err may be NULL (the code is still returned). */
int bh_err_set(struct bh_err *err, int code, const char *fmt, ...) BH_PRINTF(3, 4);

/* Sets the location part. Any of file/path may be NULL (left unchanged). */
void bh_err_at(struct bh_err *err, const char *file, int line, int col, const char *path);

/* Prefixes the message with context ("in stage 'review': "). */
void bh_err_prefix(struct bh_err *err, const char *fmt, ...) BH_PRINTF(2, 3);

/* Formats "file:line:col: path: msg" (parts that are unknown are left out)
 * into buf. Returns buf. */
const char *bh_err_format(const struct bh_err *err, char *buf, size_t size);

/* Prints "bulkhead: <formatted>\n" to f. */
void bh_err_print(const struct bh_err *err, FILE *f);

#endif
