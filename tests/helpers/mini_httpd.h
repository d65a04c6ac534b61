/* tests/helpers/mini_httpd.h — a tiny HTTP server on 127.0.0.1 for the net,
 * egress and stage unit tests (libmicrohttpd, one thread per connection). It records
 * every connection and request it sees and serves canned replies:
 *   /ok        200 "hello"
 *   /echo      200 with the request body
 *   /big       200 with MINI_HTTPD_BIG_LEN bytes of 'x'
 *   /redirect  307 to /ok on the same server
 *   /slow      200 "late" after up to 2 s (sooner when the server stops)
 *   /api/chat  200 {"done":true}
 *   anything else 404 "not found"
 * unless a test scripted the path (mini_httpd_script): then each request to
 * it takes the next reply queued for it, and one that finds none left gets
 * 500 "mini_httpd: no scripted reply left" (a client that asks more often
 * than the test expects sees an error, not a repeat).
 * Setup failures abort: these are tests. */
#ifndef MINI_HTTPD_H
#define MINI_HTTPD_H

#include <stddef.h>

#define MINI_HTTPD_BIG_LEN 100000

struct mini_httpd;

/* One request as the server saw it. body is malloc'ed (NUL-terminated). */
struct mini_req {
    char method[16];
    char path[256];
    char authorization[256]; /* "" when the header was absent */
    char content_type[128];
    char *body;
    size_t body_len;
};

struct mini_httpd *mini_httpd_start(void);
void mini_httpd_stop(struct mini_httpd *h); /* NULL is fine */
int mini_httpd_port(const struct mini_httpd *h);

/* TCP connections accepted so far. */
unsigned mini_httpd_connections(struct mini_httpd *h);
/* Requests received in full (counted before the reply is sent, so a client
 * that got its reply sees its request counted). */
size_t mini_httpd_requests(struct mini_httpd *h);
/* Copies request i (0-based, in arrival order) into out; 0, or -1 when there
 * is no such request. Release with mini_req_release. */
int mini_httpd_request(struct mini_httpd *h, size_t i, struct mini_req *out);
void mini_req_release(struct mini_req *r);

/* Queues a reply (status, body as text; content_type NULL for
 * "application/json") for the next request to path that has none yet. */
void mini_httpd_script(struct mini_httpd *h, const char *path, unsigned status,
                       const char *content_type, const char *body);
/* Scripted replies queued and not yet taken. */
size_t mini_httpd_script_left(struct mini_httpd *h);

#endif
