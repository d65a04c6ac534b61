/* tests/helpers/mini_httpd.c — the loopback test server (see mini_httpd.h).
 * One thread per connection so that /slow can wait without stalling other
 * requests; everything the tests read is guarded by one mutex. Requests are
 * recorded when their body is complete, just before the reply is queued.
 * Out of memory aborts in util/bh_xmalloc, as in the product. */
#include "mini_httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "util/bh_xmalloc.h"

#define MAX_BODY ((size_t)1 << 20)
#define SLOW_MS 2000

/* A queued reply of a scripted path. */
struct scripted {
    char path[256];
    unsigned status;
    char content_type[64];
    char *body;
    int taken;
};

struct mini_httpd {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t stop_cv;
    int stopping;
    unsigned connections;
    struct mini_req *reqs;
    size_t n_reqs, cap_reqs;
    struct scripted *script;
    size_t n_script, cap_script;
};

/* Per request: the body as it arrives. */
struct pending {
    char *body;
    size_t len;
};

static void die(const char *what)
{
    fprintf(stderr, "mini_httpd: %s\n", what);
    abort();
}

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static void record(struct mini_httpd *h, struct MHD_Connection *c, const char *method,
                   const char *url, struct pending *p)
{
    struct mini_req r;
    memset(&r, 0, sizeof(r));
    copy_str(r.method, sizeof(r.method), method);
    copy_str(r.path, sizeof(r.path), url);
    copy_str(r.authorization, sizeof(r.authorization),
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
    copy_str(r.content_type, sizeof(r.content_type),
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
    r.body = bh_xmalloc(p->len + 1);
    if (p->len)
        memcpy(r.body, p->body, p->len);
    r.body[p->len] = '\0';
    r.body_len = p->len;
    pthread_mutex_lock(&h->mu);
    h->reqs = bh_xgrow(h->reqs, &h->cap_reqs, h->n_reqs + 1, sizeof(*h->reqs));
    h->reqs[h->n_reqs++] = r;
    pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result reply_typed(struct MHD_Connection *c, unsigned status, const void *data,
                                   size_t len, const char *location, const char *content_type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (location)
        MHD_add_response_header(resp, "Location", location);
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const void *data,
                             size_t len, const char *location)
{
    return reply_typed(c, status, data, len, location, NULL);
}

/* The next scripted reply for url, or 0 when the path is not scripted. The
 * reply is sent outside the lock (from a copy): the test may queue more
 * while it goes. */
static int scripted_reply(struct mini_httpd *h, struct MHD_Connection *c, const char *url,
                          enum MHD_Result *rc)
{
    struct scripted next = {.status = 0};
    int known = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n_script; i++) {
        struct scripted *s = &h->script[i];
        if (strcmp(s->path, url) != 0)
            continue;
        known = 1;
        if (!s->taken) {
            s->taken = 1;
            next = *s;
            next.body = bh_xstrdup(s->body);
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    if (!known)
        return 0;
    if (!next.body) {
        static const char none[] = "mini_httpd: no scripted reply left";
        *rc = reply(c, 500, none, sizeof(none) - 1, NULL);
        return 1;
    }
    *rc = reply_typed(c, next.status, next.body, strlen(next.body), NULL, next.content_type);
    free(next.body);
    return 1;
}

static void wait_slow(struct mini_httpd *h)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SLOW_MS / 1000;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping)
        if (pthread_cond_timedwait(&h->stop_cv, &h->mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result route(struct mini_httpd *h, struct MHD_Connection *c, const char *url,
                             const struct pending *p)
{
    enum MHD_Result scripted;
    if (scripted_reply(h, c, url, &scripted))
        return scripted;
    if (strcmp(url, "/ok") == 0)
        return reply(c, 200, "hello", 5, NULL);
    if (strcmp(url, "/echo") == 0)
        return reply(c, 200, p->body ? p->body : "", p->len, NULL);
    if (strcmp(url, "/big") == 0) {
        char *big = bh_xmalloc(MINI_HTTPD_BIG_LEN);
        memset(big, 'x', MINI_HTTPD_BIG_LEN);
        enum MHD_Result rc = reply(c, 200, big, MINI_HTTPD_BIG_LEN, NULL);
        free(big);
        return rc;
    }
    if (strcmp(url, "/redirect") == 0) {
        char loc[64];
        snprintf(loc, sizeof(loc), "http://127.0.0.1:%d/ok", h->port);
        return reply(c, 307, "moved", 5, loc);
    }
    if (strcmp(url, "/slow") == 0) {
        wait_slow(h);
        return reply(c, 200, "late", 4, NULL);
    }
    if (strcmp(url, "/api/chat") == 0)
        return reply(c, 200, "{\"done\":true}", 13, NULL);
    return reply(c, 404, "not found", 9, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    struct mini_httpd *h = cls;
    struct pending *p = *req_cls;
    (void)version;
    if (!p) {
        *req_cls = p = calloc(1, sizeof(*p));
        return p ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        if (p->len + *upload_size > MAX_BODY)
            return MHD_NO;
        p->body = bh_xrealloc(p->body, p->len + *upload_size + 1);
        memcpy(p->body + p->len, upload, *upload_size);
        p->len += *upload_size;
        p->body[p->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    record(h, c, method, url, p);
    return route(h, c, url, p);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct pending *p = *req_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (p) {
        free(p->body);
        free(p);
    }
    *req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct mini_httpd *h = cls;
    (void)c;
    (void)socket_ctx;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    pthread_mutex_lock(&h->mu);
    h->connections++;
    pthread_mutex_unlock(&h->mu);
}

struct mini_httpd *mini_httpd_start(void)
{
    struct mini_httpd *h = bh_xcalloc(1, sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->stop_cv, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                            NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (!h->d)
        die("cannot start the daemon on 127.0.0.1");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || !info->port)
        die("cannot learn the port");
    h->port = info->port;
    return h;
}

void mini_httpd_stop(struct mini_httpd *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->stop_cv);
    pthread_mutex_unlock(&h->mu);
    MHD_stop_daemon(h->d);
    for (size_t i = 0; i < h->n_reqs; i++)
        free(h->reqs[i].body);
    free(h->reqs);
    for (size_t i = 0; i < h->n_script; i++)
        free(h->script[i].body);
    free(h->script);
    pthread_cond_destroy(&h->stop_cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int mini_httpd_port(const struct mini_httpd *h)
{
    return h->port;
}

unsigned mini_httpd_connections(struct mini_httpd *h)
{
    pthread_mutex_lock(&h->mu);
    unsigned n = h->connections;
    pthread_mutex_unlock(&h->mu);
    return n;
}

size_t mini_httpd_requests(struct mini_httpd *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->n_reqs;
    pthread_mutex_unlock(&h->mu);
    return n;
}

int mini_httpd_request(struct mini_httpd *h, size_t i, struct mini_req *out)
{
    int rc = -1;
    pthread_mutex_lock(&h->mu);
    if (i < h->n_reqs) {
        *out = h->reqs[i];
        out->body = bh_xmalloc(out->body_len + 1);
        memcpy(out->body, h->reqs[i].body, out->body_len);
        out->body[out->body_len] = '\0';
        rc = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void mini_req_release(struct mini_req *r)
{
    free(r->body);
    r->body = NULL;
}

void mini_httpd_script(struct mini_httpd *h, const char *path, unsigned status,
                       const char *content_type, const char *body)
{
    struct scripted s;
    memset(&s, 0, sizeof(s));
    copy_str(s.path, sizeof(s.path), path);
    copy_str(s.content_type, sizeof(s.content_type),
             content_type ? content_type : "application/json");
    s.status = status;
    s.body = bh_xstrdup(body ? body : "");
    pthread_mutex_lock(&h->mu);
    h->script = bh_xgrow(h->script, &h->cap_script, h->n_script + 1, sizeof(*h->script));
    h->script[h->n_script++] = s;
    pthread_mutex_unlock(&h->mu);
}

size_t mini_httpd_script_left(struct mini_httpd *h)
{
    size_t n = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n_script; i++)
        n += !h->script[i].taken;
    pthread_mutex_unlock(&h->mu);
    return n;
}
