/* tests/unit/test_net.c — net/ against a real HTTP server on 127.0.0.1
 * (tests/helpers/mini_httpd.c), one fresh server per test so that its
 * request and connection counts belong to that test alone. The TLS tests
 * run an https server of their own (libmicrohttpd with GnuTLS) whose CA and
 * certificate libcrypto makes in memory for each test: no key is committed. */
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

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "mini_httpd.h"
#include "net/net.h"
#include "net/net_test.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

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

/* --- https: ca_file and verification failures --------------------------- */

/* A CA, a certificate it signed for 127.0.0.1 (SAN IP:127.0.0.1), the
 * server's key, all PEM; and an https server on 127.0.0.1 using them. */
struct tls_fixture {
    char *ca_pem, *cert_pem, *key_pem;
    char ca_file[64]; /* the CA, written to a temp file */
    struct MHD_Daemon *d;
    int port;
    unsigned requests; /* reached the handler */
    struct net *net;
};

static char *pem_of(int (*write)(BIO *, void *), void *obj)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(write(b, obj), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *out = calloc(1, (size_t)n + 1);
    memcpy(out, data, (size_t)n);
    BIO_free(b);
    return out;
}

static int write_x509(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}

static int write_key(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ex);
    X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
}

/* A certificate for key named cn, signed by issuer's key (itself when NULL). */
static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), issuer ? 2 : 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
    if (issuer) {
        add_ext(x, issuer, NID_subject_alt_name, "IP:127.0.0.1");
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
    } else {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    assert_true(X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void pki_make(struct tls_fixture *t)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
    assert_non_null(ca_key);
    assert_non_null(key);
    X509 *ca = cert_new(ca_key, "bulkhead test CA", NULL, NULL);
    X509 *cert = cert_new(key, "127.0.0.1", ca, ca_key);
    t->ca_pem = pem_of(write_x509, ca);
    t->cert_pem = pem_of(write_x509, cert);
    t->key_pem = pem_of(write_key, key);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
}

static enum MHD_Result tls_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *data,
                                   size_t *data_size, void **req_cls)
{
    struct tls_fixture *t = cls;
    (void)url, (void)method, (void)version, (void)data, (void)data_size, (void)req_cls;
    __atomic_add_fetch(&t->requests, 1, __ATOMIC_SEQ_CST);
    static char body[] = "secure";
    struct MHD_Response *r = MHD_create_response_from_buffer(6, body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static int tls_setup(void **state)
{
    struct tls_fixture *t = calloc(1, sizeof(*t));
    struct bh_err err = {0};
    pki_make(t);
    snprintf(t->ca_file, sizeof(t->ca_file), "/tmp/bh-net-ca.XXXXXX");
    int fd = mkstemp(t->ca_file);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, t->ca_pem, strlen(t->ca_pem)), (ssize_t)strlen(t->ca_pem));
    close(fd);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL, tls_handler,
                         t, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_HTTPS_MEM_CERT,
                         t->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, t->key_pem, MHD_OPTION_END);
    assert_non_null(t->d);
    t->port = MHD_get_daemon_info(t->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    assert_int_equal(net_new(&t->net, &err), 0);
    *state = t;
    return 0;
}

static int tls_teardown(void **state)
{
    struct tls_fixture *t = *state;
    net_free(t->net);
    MHD_stop_daemon(t->d);
    unlink(t->ca_file);
    free(t->ca_pem);
    free(t->cert_pem);
    free(t->key_pem);
    free(t);
    return 0;
}

/* GET https://host:port/ (host pinned to 127.0.0.1) with ca_file (may be NULL). */
static void tls_get(struct tls_fixture *t, const char *host, const char *ca_file, struct outcome *o)
{
    char url[128], pin[128];
    snprintf(url, sizeof(url), "https://%s:%d/", host, t->port);
    snprintf(pin, sizeof(pin), "%s:%d:127.0.0.1", host, t->port);
    outcome_init(o);
    struct net_req q = get_req(url, o);
    q.resolve = pin;
    q.ca_file = ca_file;
    submit_ok(t->net, &q);
    run_all(t->net);
    assert_int_equal(o->done_calls, 1);
}

static void net_https_verifies_the_server_with_the_given_ca_file(void **state)
{
    struct tls_fixture *t = *state;
    struct outcome o;
    tls_get(t, "127.0.0.1", t->ca_file, &o);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.status, 200);
    assert_string_equal(o.body.data, "secure");
    assert_int_equal(t->requests, 1);
    bh_buf_release(&o.body);
}

/* The system store does not know the test CA: the handshake fails, nothing
 * is sent, and a retry would not help. */
static void net_https_unknown_ca_fails_once_with_the_ca_file_hint(void **state)
{
    struct tls_fixture *t = *state;
    struct outcome o;
    tls_get(t, "127.0.0.1", NULL, &o);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.transient, 0);
    assert_int_equal(o.r.status, 0);
    assert_non_null(strstr(o.r.error, "the server's certificate could not be verified ("));
    assert_non_null(strstr(o.r.error, ") — give the CA that signed it in the endpoint's ca_file"));
    assert_int_equal(t->requests, 0);
    bh_buf_release(&o.body);
}

/* A CA file of another CA verifies nothing, whatever the system store. */
static void net_https_ca_file_of_another_ca_is_refused(void **state)
{
    struct tls_fixture *t = *state;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *ca = cert_new(key, "another CA", NULL, NULL);
    char *pem = pem_of(write_x509, ca);
    char other[] = "/tmp/bh-net-other.XXXXXX";
    int fd = mkstemp(other);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    struct outcome o;
    tls_get(t, "127.0.0.1", other, &o);
    unlink(other);
    free(pem);
    X509_free(ca);
    EVP_PKEY_free(key);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.transient, 0);
    assert_non_null(strstr(o.r.error, "the server's certificate could not be verified"));
    assert_int_equal(t->requests, 0);
    bh_buf_release(&o.body);
}

/* Signed by the right CA, but for 127.0.0.1 only: asked for as localhost. */
static void net_https_wrong_host_says_the_certificate_names_another(void **state)
{
    struct tls_fixture *t = *state;
    struct outcome o;
    tls_get(t, "localhost", t->ca_file, &o);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.transient, 0);
    assert_non_null(strstr(o.r.error, "the server's certificate could not be verified ("));
    assert_non_null(strstr(o.r.error, "the certificate does not name the url's host"));
    assert_int_equal(t->requests, 0);
    bh_buf_release(&o.body);
}

static void net_https_unusable_ca_file_is_named_and_not_retried(void **state)
{
    struct tls_fixture *t = *state;
    char junk[] = "/tmp/bh-net-junk.XXXXXX";
    int fd = mkstemp(junk);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    struct outcome o;
    tls_get(t, "127.0.0.1", junk, &o);
    unlink(junk);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.transient, 0);
    assert_non_null(strstr(o.r.error, "the CA certificates could not be loaded ("));
    assert_non_null(strstr(o.r.error, "the endpoint's ca_file must be a PEM file of CA "
                                      "certificates"));
    assert_int_equal(t->requests, 0);
    bh_buf_release(&o.body);
}

/* Every option that carries a safety property is checked: when libcurl
 * refuses one (here injected), the request fails at submit, names the
 * option, and the server sees nothing. */
static void net_refused_safety_option_fails_the_request_unsent(void **state)
{
    static const char *const opts[] = {
        "CURLOPT_PROTOCOLS_STR",  "CURLOPT_REDIR_PROTOCOLS_STR",
        "CURLOPT_FOLLOWLOCATION", "CURLOPT_PREREQFUNCTION",
        "CURLOPT_PREREQDATA",     "CURLOPT_SSL_VERIFYPEER",
        "CURLOPT_SSL_VERIFYHOST", "CURLOPT_PROXY",
        "CURLOPT_NOPROXY",        "CURLOPT_RESOLVE",
        "CURLOPT_CAINFO",         "CURLOPT_CAPATH",
    };
    struct fixture *f = *state;
    int port = mini_httpd_port(f->srv);
    char pin[96];
    snprintf(pin, sizeof(pin), "pinned.invalid:%d:127.0.0.1", port);
    for (size_t i = 0; i < BH_NELEM(opts); i++) {
        struct outcome o;
        struct bh_err err = {0};
        outcome_init(&o);
        struct net_req q = get_req(url_of(f, "/echo"), &o);
        q.method = "POST";
        q.body = "secret";
        q.body_len = 6;
        q.no_proxy = 1;
        q.resolve = pin;
        q.ca_file = "/nonexistent/ca.pem"; /* never read: nothing is sent */
        net_test_fail_setopt(opts[i]);
        int rc = net_submit(f->net, &q, &err);
        net_test_fail_setopt(NULL);
        if (rc != BH_ENET || !strstr(err.msg, opts[i]))
            fail_msg("%s: rc %d, \"%s\"", opts[i], rc, err.msg);
        assert_non_null(strstr(err.msg, "nothing was sent"));
        assert_non_null(strstr(err.msg, "libcurl 7.85.0 or later"));
        assert_int_equal(net_in_flight(f->net), 0);
        run_all(f->net);
        assert_int_equal(o.done_calls, 0); /* never started, so never completes */
        bh_buf_release(&o.body);
    }
    assert_int_equal(mini_httpd_requests(f->srv), 0);
    /* The injector off again, the same request goes through. */
    struct outcome o;
    outcome_init(&o);
    struct net_req q = get_req(url_of(f, "/ok"), &o);
    submit_ok(f->net, &q);
    run_all(f->net);
    assert_int_equal(o.r.status, 200);
    assert_int_equal(mini_httpd_requests(f->srv), 1);
    bh_buf_release(&o.body);
}

/* The URL as curl's parser splits it: what egress verifies is what curl
 * connects to. The parts a URL lacks are "", for egress to judge. */
static void net_url_parse_splits_as_curl_does(void **state)
{
    (void)state;
    struct net_url u;
    struct bh_err err = {0};
    assert_int_equal(net_url_parse("http://[::1]:11434/api", &u, &err), 0);
    assert_string_equal(u.scheme, "http");
    assert_string_equal(u.host, "::1"); /* brackets removed */
    assert_string_equal(u.port, "11434");
    assert_int_equal(u.credentials, 0);
    assert_int_equal(net_url_parse("HTTPS://Example.COM/", &u, &err), 0);
    assert_string_equal(u.scheme, "https");
    assert_string_equal(u.port, "443"); /* the scheme's default */
    assert_int_equal(net_url_parse("http://user:pw@127.0.0.1:8080/", &u, &err), 0);
    assert_int_equal(u.credentials, 1);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(net_url_parse("http://127.0.0.1:99999/", &u, &err), BH_EINVAL);
    assert_non_null(strstr(err.msg, "'http://127.0.0.1:99999/' is not a valid URL ("));
    assert_non_null(strstr(err.msg, "): write it as http://host:port"));
}

static void net_runtime_libcurl_must_have_what_safety_needs(void **state)
{
    static const char *const both[] = {"dict", "http", "https", NULL};
    static const char *const plain[] = {"http", NULL};
    struct bh_err err = {0};
    (void)state;
    struct net_curl_facts ok = {"7.88.1", 0x075801, 1, both};
    assert_int_equal(net_curl_usable(&ok, &err), 0);
    struct net_curl_facts min = {"7.85.0", 0x075500, 1, both};
    assert_int_equal(net_curl_usable(&min, &err), 0);
    struct net_curl_facts old = {"7.84.0", 0x075400, 1, both};
    assert_int_equal(net_curl_usable(&old, &err), BH_EINVAL);
    assert_non_null(strstr(err.msg, "libcurl 7.84.0 is too old: bulkhead needs 7.85.0 or later"));
    struct net_curl_facts notls = {"8.5.0", 0x080500, 0, both};
    assert_int_equal(net_curl_usable(&notls, &err), BH_EINVAL);
    assert_non_null(strstr(err.msg, "libcurl 8.5.0 was built without TLS support"));
    struct net_curl_facts nohttps = {"8.5.0", 0x080500, 1, plain};
    assert_int_equal(net_curl_usable(&nohttps, &err), BH_EINVAL);
    assert_non_null(strstr(err.msg, "does not speak both http and https"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TLS(fn) cmocka_unit_test_setup_teardown(fn, tls_setup, tls_teardown)

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
        T(net_refused_safety_option_fails_the_request_unsent),
        cmocka_unit_test(net_url_parse_splits_as_curl_does),
        cmocka_unit_test(net_runtime_libcurl_must_have_what_safety_needs),
        TLS(net_https_verifies_the_server_with_the_given_ca_file),
        TLS(net_https_unknown_ca_fails_once_with_the_ca_file_hint),
        TLS(net_https_ca_file_of_another_ca_is_refused),
        TLS(net_https_wrong_host_says_the_certificate_names_another),
        TLS(net_https_unusable_ca_file_is_named_and_not_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
