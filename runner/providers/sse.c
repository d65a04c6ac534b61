/* providers/sse.c — Server-Sent Events framing, shared by the openai and
 * anthropic dialects.
 *
 * A byte-at-a-time state machine would be simplest to prove; this one scans
 * for the next line terminator with a loop over the chunk and carries only
 * two things between feeds: the partial line and whether the previous chunk
 * ended in '\r' (so a "\r\n" split across feeds is one terminator, not a
 * line and a blank line that would dispatch a half event). Everything that
 * grows from input is a capped bh_buf; the total cap bounds a server that
 * streams keep-alives or empty events forever. */
#include "providers/sse.h"

#include <stdlib.h>
#include <string.h>

#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

struct prov_sse {
    struct bh_buf line;  /* the current line, without its terminator */
    struct bh_buf data;  /* the event's data lines, joined with "\n" */
    struct bh_buf event; /* the event's name, empty when none */
    int has_data;        /* a data line was seen ("data:" alone counts) */
    int after_cr;        /* the last byte fed was '\r' */
    size_t total, total_max, event_max;
    struct bh_err err; /* the first error; sticky */
};

struct prov_sse *prov_sse_new(size_t event_max, size_t total_max)
{
    struct prov_sse *p = bh_xcalloc(1, sizeof(*p));
    p->event_max = event_max ? event_max : BH_BUF_DEFAULT_MAX;
    p->total_max = total_max ? total_max : BH_BUF_DEFAULT_MAX;
    bh_buf_init(&p->line, p->event_max);
    bh_buf_init(&p->data, p->event_max);
    bh_buf_init(&p->event, p->event_max);
    return p;
}

void prov_sse_free(struct prov_sse *p)
{
    if (!p)
        return;
    bh_buf_release(&p->line);
    bh_buf_release(&p->data);
    bh_buf_release(&p->event);
    free(p);
}

static int fail(struct prov_sse *p, struct bh_err *err, const char *what, size_t cap)
{
    bh_err_set(&p->err, BH_ETOOBIG,
               "%s of the event stream exceeds %zu bytes — check that the endpoint "
               "speaks the provider's API (or the model may be looping)",
               what, cap);
    return bh_err_set(err, BH_ETOOBIG, "%s", p->err.msg);
}

static int dispatch(struct prov_sse *p, prov_sse_fn fn, void *ud, struct bh_err *err)
{
    int rc = 0;
    if (p->has_data) {
        const char *name = p->event.len ? p->event.data : "message";
        rc = fn(ud, name, p->data.data ? p->data.data : "", p->data.len, err);
    }
    bh_buf_reset(&p->data);
    bh_buf_reset(&p->event);
    p->has_data = 0;
    return rc;
}

/* One complete line: a field, a comment, or the blank line ending an event. */
static int end_line(struct prov_sse *p, prov_sse_fn fn, void *ud, struct bh_err *err)
{
    const char *s = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
    if (n == 0)
        return dispatch(p, fn, ud, err);
    if (s[0] == ':')
        return 0;
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    if (v < s + n && *v == ' ')
        v++;
    size_t vlen = (size_t)(s + n - v);
    if (flen == 5 && memcmp(s, "event", 5) == 0) {
        bh_buf_reset(&p->event);
        if (bh_buf_append(&p->event, v, vlen))
            return fail(p, err, "an event name", p->event_max);
    } else if (flen == 4 && memcmp(s, "data", 4) == 0) {
        if ((p->has_data && bh_buf_append(&p->data, "\n", 1)) || bh_buf_append(&p->data, v, vlen))
            return fail(p, err, "an event", p->event_max);
        p->has_data = 1;
    }
    return 0; /* id, retry and unknown fields mean nothing to a one-shot client */
}

int prov_sse_feed(struct prov_sse *p, const char *buf, size_t len, prov_sse_fn fn, void *ud,
                  struct bh_err *err)
{
    if (p->err.code)
        return bh_err_set(err, p->err.code, "%s", p->err.msg);
    if (len > p->total_max - p->total)
        return fail(p, err, "the whole", p->total_max);
    p->total += len;
    while (len) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (*buf == '\n') {
                buf++, len--;
                continue;
            }
        }
        size_t n = 0;
        while (n < len && buf[n] != '\n' && buf[n] != '\r')
            n++;
        if (bh_buf_append(&p->line, buf, n))
            return fail(p, err, "a line", p->event_max);
        if (n == len)
            break;
        p->after_cr = buf[n] == '\r';
        int rc = end_line(p, fn, ud, err);
        bh_buf_reset(&p->line);
        if (rc) {
            if (!p->err.code)
                bh_err_set(&p->err, rc, "%s", err ? err->msg : "the event stream was refused");
            return rc;
        }
        buf += n + 1, len -= n + 1;
    }
    return 0;
}

int prov_sse_finish(struct prov_sse *p, prov_sse_fn fn, void *ud, int *cut, struct bh_err *err)
{
    *cut = p->line.len != 0;
    if (p->err.code)
        return bh_err_set(err, p->err.code, "%s", p->err.msg);
    if (*cut)
        return 0;
    return dispatch(p, fn, ud, err);
}
