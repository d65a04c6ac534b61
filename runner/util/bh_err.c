/* util/bh_err.c — filling and formatting struct bh_err. Messages are truncated
 * at the field size rather than allocated: an error path must not fail. */
#include "bh_err.h"

#include <stdarg.h>
#include <string.h>

void bh_err_clear(struct bh_err *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

int bh_err_set(struct bh_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

void bh_err_at(struct bh_err *err, const char *file, int line, int col, const char *path)
{
    if (!err)
        return;
    if (file)
        snprintf(err->file, sizeof(err->file), "%s", file);
    if (path)
        snprintf(err->path, sizeof(err->path), "%s", path);
    err->line = line;
    err->col = col;
}

void bh_err_prefix(struct bh_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char pre[256], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* Truncation is intended: the message keeps its head, which names the subject. */
    size_t lp = strlen(pre);
    memcpy(err->msg, pre, lp);
    size_t lo = strnlen(old, sizeof(err->msg) - 1 - lp);
    memcpy(err->msg + lp, old, lo);
    err->msg[lp + lo] = '\0';
}

const char *bh_err_format(const struct bh_err *err, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    if (err->file[0]) {
        if (err->line > 0 && err->col > 0)
            n = (size_t)snprintf(buf, size, "%s:%d:%d: ", err->file, err->line, err->col);
        else if (err->line > 0)
            n = (size_t)snprintf(buf, size, "%s:%d: ", err->file, err->line);
        else
            n = (size_t)snprintf(buf, size, "%s: ", err->file);
    }
    if (n < size && err->path[0])
        n += (size_t)snprintf(buf + n, size - n, "%s: ", err->path);
    if (n < size)
        snprintf(buf + n, size - n, "%s", err->msg[0] ? err->msg : "unknown error");
    return buf;
}

void bh_err_print(const struct bh_err *err, FILE *f)
{
    char buf[1024];
    fprintf(f, "bulkhead: %s\n", bh_err_format(err, buf, sizeof(buf)));
}
