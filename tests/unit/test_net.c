/* tests/unit/test_net.c — net/ against a real HTTP server on 127.0.0.1
 * (tests/helpers/mini_httpd.c), one fresh server per test so that its
 * request and connection counts belong to that test alone. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mini_httpd.h"
#include "net/net.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"

/* What one request went through. */
struct outcome {
    int done_calls;
    struct net_result r;
    struct bh_buf body;
    int prereq_calls;
    char peer_ip[64];
    int peer_port;
    int refuse;     /* prereq answer */
    int abort_data; /* on_data answer */
};

struct fixture {
    struct mini_httpd *srv;
    struct net *net;
    char url[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct bh_err err = {0};
    f->srv = mini_httpd_start();
    assert_int_equal(net_new(&f->net, &err), 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", mini_httpd_port(f->srv));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    net_free(f->net);
    mini_httpd_stop(f->srv);
    free(f);
    return 0;
}

static int on_data(void *ud, const char *data, size_t len)
{
    struct outcome *o = ud;
    if (o->abort_data)
        return 1;
    return bh_buf_append(&o->body, data, len) < 0;
}

static void on_done(void *ud, const struct net_result *r)
{
    struct outcome *o = ud;
    o->done_calls++;
    o->r = *r;
}

static int on_prereq(void *ud, const char *peer_ip, int peer_port)
{
    struct outcome *o = ud;
    o->prereq_calls++;
    snprintf(o->peer_ip, sizeof(o->peer_ip), "%s", peer_ip);
    o->peer_port = peer_port;
    return o->refuse;
}

static void outcome_init(struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    bh_buf_init(&o->body, 0);
}

static struct net_req get_req(const char *url, struct outcome *o)
{
    struct net_req q = {0};
    q.url = url;
    q.method = "GET";
    q.no_proxy = 1;
    q.prereq = on_prereq;
    q.on_data = on_data;
    q.on_done = on_done;
    q.ud = o;
    return q;
}

/* Steps until nothing is in flight; bounded so a bug fails instead of hanging. */
static void run_all(struct net *n)
{
    struct bh_err err = {0};
    for (int i = 0; i < 300 && net_in_flight(n) > 0; i++)
        assert_int_equal(net_step(n, 100, &err), 0);
    assert_int_equal(net_in_flight(n), 0);
}

static void submit_ok(struct net *n, const struct net_req *q)
{
    struct bh_err err = {0};
    assert_int_equal(net_submit(n, q, &err), 0);
}

static char *url_of(const struct fixture *f, const char *path)
{
    static char buf[4][256];
    static int next;
    char *u = buf[next++ % 4];
    snprintf(u, 256, "%s%s", f->url, path);
    return u;
}

static void net_get_delivers_body_and_status(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/ok"), &o);
    submit_ok(f->net, &q);
    assert_int_equal(net_in_flight(f->net), 1);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.status, 200);
    assert_string_equal(o.r.error, "");
    assert_int_equal(o.r.received, 5);
    assert_string_equal(o.body.data, "hello");
    assert_int_equal(o.prereq_calls, 1);
    assert_string_equal(o.peer_ip, "127.0.0.1");
    assert_int_equal(o.peer_port, mini_httpd_port(f->srv));
    bh_buf_release(&o.body);
}

static void net_post_sends_exact_body_as_json(void **state)
{
    struct fixture *f = *state;
    static const char body[] = "{\"a\":1}\0tail"; /* a NUL inside: sizes, not strlen */
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/echo"), &o);
    q.method = "POST";
    q.body = body;
    q.body_len = sizeof(body) - 1;
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.status, 200);
    struct mini_req seen;
    assert_int_equal(mini_httpd_request(f->srv, 0, &seen), 0);
    assert_string_equal(seen.method, "POST");
    assert_string_equal(seen.content_type, "application/json");
    assert_int_equal(seen.body_len, sizeof(body) - 1);
    assert_memory_equal(seen.body, body, sizeof(body) - 1);
    assert_int_equal(o.body.len, sizeof(body) - 1);
    assert_memory_equal(o.body.data, body, sizeof(body) - 1);
    mini_req_release(&seen);
    bh_buf_release(&o.body);
}

static void net_post_keeps_a_given_content_type(void **state)
{
    struct fixture *f = *state;
    const char *headers[] = {"content-type: text/plain", "X-Test: 1"};
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/echo"), &o);
    q.method = "POST";
    q.body = "plain";
    q.body_len = 5;
    q.headers = headers;
    q.n_headers = 2;
    submit_ok(f->net, &q);
    run_all(f->net);
    struct mini_req seen;
    assert_int_equal(mini_httpd_request(f->srv, 0, &seen), 0);
    assert_string_equal(seen.content_type, "text/plain");
    mini_req_release(&seen);
    bh_buf_release(&o.body);
}

static void net_http_error_status_is_not_a_net_error(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/missing"), &o);
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.status, 404);
    assert_string_equal(o.body.data, "not found");
    bh_buf_release(&o.body);
}

static void net_redirect_fails_and_is_never_followed(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/redirect"), &o);
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.status, 307);
    assert_non_null(strstr(o.r.error, "server answered 307 redirect to http://127.0.0.1:"));
    assert_non_null(strstr(o.r.error, "/ok; bulkhead never follows redirects"));
    assert_int_equal(mini_httpd_requests(f->srv), 1);
    assert_int_equal(o.body.len, 0); /* the redirect's body is not handed on */
    bh_buf_release(&o.body);
}

/* A port on 127.0.0.1 with nothing listening: bound, read, closed. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    close(s);
    return ntohs(sa.sin_port);
}

static void net_connection_refused_names_the_port(void **state)
{
    struct fixture *f = *state;
    char url[64], port[32];
    int p = closed_port();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", p);
    snprintf(port, sizeof(port), "port %d", p);
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url, &o);
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.status, 0);
    assert_non_null(strstr(o.r.error, port));
    assert_int_equal(o.prereq_calls, 0); /* never connected */
    bh_buf_release(&o.body);
}

static void net_reply_over_the_cap_is_too_big(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/big"), &o);
    q.max_reply = 1000;
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_ETOOBIG);
    assert_non_null(strstr(o.r.error, "/big exceeds the cap of 1000 bytes"));
    assert_true(o.r.received <= 1000);
    assert_true(o.body.len <= 1000);
    bh_buf_release(&o.body);
}

static void net_reply_exactly_at_the_cap_is_accepted(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/big"), &o);
    q.max_reply = MINI_HTTPD_BIG_LEN;
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.received, MINI_HTTPD_BIG_LEN);
    assert_int_equal(o.body.len, MINI_HTTPD_BIG_LEN);
    bh_buf_release(&o.body);
}

static void net_prereq_refusal_sends_nothing(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    o.refuse = 1;
    struct net_req q = get_req(url_of(f, "/echo"), &o);
    q.method = "POST";
    q.body = "secret";
    q.body_len = 6;
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.prereq_calls, 1);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.status, 0);
    assert_non_null(strstr(o.r.error, "connection to 127.0.0.1 port"));
    assert_non_null(strstr(o.r.error, "refused by the egress gate"));
    assert_int_equal(mini_httpd_requests(f->srv), 0);
    bh_buf_release(&o.body);
}

static void net_prereq_runs_for_every_request_on_a_reused_connection(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/ok"), &o);
    submit_ok(f->net, &q);
    run_all(f->net);
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 2);
    assert_int_equal(o.prereq_calls, 2);
    bh_buf_release(&o.body);
}

static void net_resolve_pin_reaches_the_pinned_address(void **state)
{
    struct fixture *f = *state;
    char url[96], pin[96];
    int port = mini_httpd_port(f->srv);
    snprintf(url, sizeof(url), "http://pinned.invalid:%d/ok", port);
    snprintf(pin, sizeof(pin), "pinned.invalid:%d:127.0.0.1", port);
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url, &o);
    q.resolve = pin;
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.status, 200);
    assert_string_equal(o.peer_ip, "127.0.0.1");
    assert_int_equal(mini_httpd_requests(f->srv), 1);
    bh_buf_release(&o.body);
}

static void net_concurrent_requests_complete_exactly_once(void **state)
{
    struct fixture *f = *state;
    enum { N = 20 };
    struct outcome o[N];
    for (int i = 0; i < N; i++) {
        outcome_init(&o[i]);
        struct net_req q = get_req(url_of(f, "/ok"), &o[i]);
        submit_ok(f->net, &q);
    }
    assert_int_equal(net_in_flight(f->net), N);
    run_all(f->net);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].done_calls, 1);
        assert_int_equal(o[i].r.status, 200);
        assert_string_equal(o[i].body.data, "hello");
        bh_buf_release(&o[i].body);
    }
    assert_int_equal(mini_httpd_requests(f->srv), N);
}

/* A chain: each completion submits the next request until three have run. */
struct chain {
    struct net *net;
    const char *url;
    int done_calls;
    long statuses[3];
};

static void chain_done(void *ud, const struct net_result *r)
{
    struct chain *c = ud;
    c->statuses[c->done_calls++] = r->status;
    if (c->done_calls < 3) {
        struct net_req q = {0};
        q.url = c->url;
        q.method = "GET";
        q.on_done = chain_done;
        q.ud = c;
        struct bh_err err = {0};
        assert_int_equal(net_submit(c->net, &q, &err), 0);
        assert_int_equal(net_in_flight(c->net), 1);
    }
}

static void net_submit_from_on_done_is_safe(void **state)
{
    struct fixture *f = *state;
    struct chain c = {f->net, url_of(f, "/ok"), 0, {0}};
    struct net_req q = {0};
    q.url = c.url;
    q.method = "GET";
    q.on_done = chain_done;
    q.ud = &c;
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(c.done_calls, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c.statuses[i], 200);
    assert_int_equal(mini_httpd_requests(f->srv), 3);
}

static void net_timeout_fails_a_slow_reply(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/slow"), &o);
    q.timeout_ms = 200;
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_ENET);
    assert_non_null(strstr(o.r.error, "timed out"));
    bh_buf_release(&o.body);
}

static void net_free_aborts_in_flight_without_callbacks(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct bh_err err = {0};
    struct net_req q = get_req(url_of(f, "/slow"), &o);
    submit_ok(f->net, &q);
    assert_int_equal(net_step(f->net, 50, &err), 0);
    net_free(f->net);
    f->net = NULL;
    assert_int_equal(o.done_calls, 0);
    bh_buf_release(&o.body);
}

static void net_on_data_refusal_aborts_the_transfer(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    o.abort_data = 1;
    struct net_req q = get_req(url_of(f, "/big"), &o);
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_ENET);
    assert_non_null(strstr(o.r.error, "abandoned by its reader"));
    bh_buf_release(&o.body);
}

static void net_only_speaks_http_and_https(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req("file:///etc/passwd", &o);
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.received, 0);
    assert_int_equal(o.body.len, 0);
    bh_buf_release(&o.body);
}

static void net_unknown_method_is_refused_at_submit(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    outcome_init(&o);
    struct bh_err err = {0};
    struct net_req q = get_req(url_of(f, "/ok"), &o);
    q.method = "DELETE";
    assert_int_equal(net_submit(f->net, &q, &err), BH_EINVAL);
    assert_string_equal(err.msg, "unsupported HTTP method 'DELETE' (known: GET, POST)");
    assert_int_equal(net_in_flight(f->net), 0);
    assert_int_equal(net_step(f->net, 10, &err), 0);
    assert_int_equal(o.done_calls, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(net_get_delivers_body_and_status),
        T(net_post_sends_exact_body_as_json),
        T(net_post_keeps_a_given_content_type),
        T(net_http_error_status_is_not_a_net_error),
        T(net_redirect_fails_and_is_never_followed),
        T(net_connection_refused_names_the_port),
        T(net_reply_over_the_cap_is_too_big),
        T(net_reply_exactly_at_the_cap_is_accepted),
        T(net_prereq_refusal_sends_nothing),
        T(net_prereq_runs_for_every_request_on_a_reused_connection),
        T(net_resolve_pin_reaches_the_pinned_address),
        T(net_concurrent_requests_complete_exactly_once),
        T(net_submit_from_on_done_is_safe),
        T(net_timeout_fails_a_slow_reply),
        T(net_free_aborts_in_flight_without_callbacks),
        T(net_on_data_refusal_aborts_the_transfer),
        T(net_only_speaks_http_and_https),
        T(net_unknown_method_is_refused_at_submit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
