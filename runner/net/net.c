/* net/net.c — HTTP over one libcurl multi handle.
 *
 * Every transfer is an easy handle wrapped in a struct xfer that carries the
 * caller's callbacks and what we learn while it runs (a refused peer, a cap
 * that was hit). net_step drives all of them from the caller's loop; there are
 * no threads and no signals (CURLOPT_NOSIGNAL).
 *
 * Safety defaults that egress relies on and that no request can turn off:
 * redirects are never followed (any 3xx fails the transfer, so a server can
 * never bounce a request elsewhere), only http and https are spoken, and the
 * peer address is handed to the prereq callback right before the request goes
 * out — CURLOPT_PREREQFUNCTION runs for reused connections too, which the
 * open-socket callback would not. TLS peer and host verification are set
 * on explicitly: a request may name the CA file to verify with (a private
 * CA), never turn verification off. A certificate that does not verify fails
 * at once, not as transient: retrying cannot change it.
 *
 * Fail closed: every curl_easy_setopt goes through one checked helper, and a
 * request whose options did not all take is never added to the multi handle
 * (a libcurl that ignored CURLOPT_PROTOCOLS_STR or the pin would otherwise
 * send it anyway). net_new refuses a runtime libcurl older than the options
 * need, or built without TLS, once, before any request. Tests make an option
 * fail on purpose with net_test_fail_setopt (net/net_test.h): injecting can
 * only make requests fail, never turn a safety setting off.
 *
 * Re-entrancy: on_done runs outside every libcurl callback, after the easy
 * handle has left the multi handle, so it may call net_submit. on_data and
 * prereq run inside curl_multi_perform and must not call into net.
 * net_new is not thread-safe: curl_global_init runs once, guarded by a plain
 * static flag (bulkhead has one thread). */
#include "net/net.h"
#include "net/net_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define NET_DEFAULT_CONNECT_MS 10000L
#define NET_DEFAULT_MAX_REPLY ((size_t)64 << 20)

struct xfer {
    struct xfer *prev, *next; /* in net.xfers */
    CURL *easy;
    struct curl_slist *headers, *resolve;
    char *url; /* for messages */
    net_prereq_fn prereq;
    net_data_fn on_data;
    net_done_fn on_done;
    void *ud;
    size_t max_reply, received;
    int too_big, data_abort, refused;
    long first_byte_ms, idle_ms; /* limits, 0 for none */
    long started, last_data;     /* monotonic ms; last_data 0 until the first byte */
    char stalled[96];            /* why the loop gave up on it, "" when it did not */
    char refused_peer[80];
    char errbuf[CURL_ERROR_SIZE];
    const char *bad_opt; /* the first option libcurl refused, NULL when none */
    CURLcode bad_code;
};

struct net {
    CURLM *multi;
    struct xfer *xfers;
    size_t in_flight;
};

static int curl_ready;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The oldest libcurl with every option and call this file needs:
 * CURLOPT_PREREQFUNCTION (7.80.0), curl_easy_header (7.83.0) and
 * CURLOPT_PROTOCOLS_STR / CURLOPT_REDIR_PROTOCOLS_STR (7.85.0). */
#define NET_MIN_CURL 0x075500
#define NET_MIN_CURL_TEXT "7.85.0"

static int has_protocol(const char *const *list, const char *name)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcasecmp(list[i], name) == 0)
            return 1;
    return 0;
}

int net_curl_usable(const struct net_curl_facts *f, struct bh_err *err)
{
    if (f->version_num < NET_MIN_CURL)
        return bh_err_set(err, BH_EINVAL,
                          "libcurl %s is too old: bulkhead needs " NET_MIN_CURL_TEXT
                          " or later (for CURLOPT_PROTOCOLS_STR and "
                          "CURLOPT_PREREQFUNCTION, which keep requests on http(s) and on the "
                          "verified address) — install a newer libcurl (Debian 12: libcurl4 "
                          "7.88)",
                          f->version);
    if (!f->ssl)
        return bh_err_set(err, BH_EINVAL,
                          "libcurl %s was built without TLS support: bulkhead "
                          "needs it to verify https servers — install a libcurl built with TLS "
                          "(Debian: libcurl4)",
                          f->version);
    if (!has_protocol(f->protocols, "http") || !has_protocol(f->protocols, "https"))
        return bh_err_set(err, BH_EINVAL,
                          "libcurl %s does not speak both http and https — "
                          "install a libcurl built with both (Debian: libcurl4)",
                          f->version);
    return 0;
}

/* Once per process: the libcurl that is loaded, not the one compiled against. */
static int runtime_check(struct bh_err *err)
{
    static int checked;
    if (checked)
        return 0;
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!v)
        return bh_err_set(err, BH_EINVAL,
                          "libcurl does not say which version it is — "
                          "install libcurl " NET_MIN_CURL_TEXT " or later");
    struct net_curl_facts f = {.version = v->version,
                               .version_num = v->version_num,
                               .ssl = (v->features & CURL_VERSION_SSL) != 0,
                               .protocols = v->protocols};
    int rc = net_curl_usable(&f, err);
    checked = rc == 0;
    return rc;
}

int net_new(struct net **out, struct bh_err *err)
{
    if (!curl_ready) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK)
            return bh_err_set(err, BH_EINTERNAL, "cannot initialise libcurl: %s",
                              curl_easy_strerror(rc));
        curl_ready = 1;
    }
    int rc = runtime_check(err);
    if (rc < 0)
        return rc;
    CURLM *m = curl_multi_init();
    if (!m)
        return bh_err_set(err, BH_EINTERNAL, "cannot create a libcurl multi handle");
    struct net *n = bh_xcalloc(1, sizeof(*n));
    n->multi = m;
    *out = n;
    return 0;
}

static void xfer_free(struct xfer *x)
{
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->resolve);
    free(x->url);
    free(x);
}

static void xfer_unlink(struct net *n, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        n->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

void net_free(struct net *n)
{
    if (!n)
        return;
    while (n->xfers) {
        struct xfer *x = n->xfers;
        xfer_unlink(n, x);
        curl_multi_remove_handle(n->multi, x->easy);
        xfer_free(x);
    }
    curl_multi_cleanup(n->multi);
    free(n);
}

size_t net_in_flight(const struct net *n)
{
    return n ? n->in_flight : 0;
}

/* --- libcurl callbacks (run inside curl_multi_perform) ------------------ */

static int on_prereq(void *clientp, char *peer_ip, char *local_ip, int peer_port, int local_port)
{
    struct xfer *x = clientp;
    (void)local_ip;
    (void)local_port;
    if (!x->prereq || x->prereq(x->ud, peer_ip, peer_port) == 0)
        return CURL_PREREQFUNC_OK;
    x->refused = 1;
    snprintf(x->refused_peer, sizeof(x->refused_peer), "%s port %d", peer_ip, peer_port);
    return CURL_PREREQFUNC_ABORT;
}

static long response_status(CURL *easy)
{
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t len = size * nmemb; /* size is always 1 for write callbacks */
    long status = response_status(x->easy);
    if (status >= 300 && status < 400)
        return 0; /* a redirect's body is of no use: stop reading it */
    if (len > x->max_reply - x->received) {
        x->too_big = 1;
        return 0;
    }
    x->received += len;
    x->last_data = now_ms();
    if (x->on_data && x->on_data(x->ud, data, len) != 0) {
        x->data_abort = 1;
        return 0;
    }
    return len;
}

/* --- submit -------------------------------------------------------------- */

static int has_header(const struct net_req *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++)
        if (strncasecmp(req->headers[i], name, len) == 0 && req->headers[i][len] == ':')
            return 1;
    return 0;
}

static struct curl_slist *build_headers(const struct net_req *req, int post)
{
    struct curl_slist *h = NULL;
    for (size_t i = 0; i < req->n_headers; i++)
        h = curl_slist_append(h, req->headers[i]);
    /* 100-continue would add a round trip and a second chance for a server to
     * answer before the body; we always send the body at once. */
    h = curl_slist_append(h, "Expect:");
    if (post && !has_header(req, "Content-Type"))
        h = curl_slist_append(h, "Content-Type: application/json");
    return h;
}

/* --- options, every one checked ---------------------------------------------- */

static char fail_opt[64]; /* net_test_fail_setopt: "" when no failure is injected */

void net_test_fail_setopt(const char *name)
{
    snprintf(fail_opt, sizeof(fail_opt), "%s", name ? name : "");
}

/* Keeps the first refusal: the request is then never started. */
static void opt_result(struct xfer *x, const char *name, CURLcode cc)
{
    if (cc == CURLE_OK && fail_opt[0] && strcmp(fail_opt, name) == 0)
        cc = CURLE_UNKNOWN_OPTION; /* injected by a test: as if libcurl lacked it */
    if (cc != CURLE_OK && !x->bad_opt) {
        x->bad_opt = name;
        x->bad_code = cc;
    }
}

#define SETOPT(x, opt, val) opt_result((x), #opt, curl_easy_setopt((x)->easy, opt, val))

static int set_method(struct xfer *x, const struct net_req *req, struct bh_err *err)
{
    if (strcmp(req->method, "GET") == 0) {
        SETOPT(x, CURLOPT_HTTPGET, 1L);
        return 0;
    }
    if (strcmp(req->method, "POST") != 0)
        return bh_err_set(err, BH_EINVAL, "unsupported HTTP method '%s' (known: GET, POST)",
                          req->method);
    /* The size first: COPYPOSTFIELDS then copies exactly that many bytes, so
     * bodies may hold NUL bytes. */
    SETOPT(x, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    SETOPT(x, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
    return 0;
}

static void set_safety(struct xfer *x)
{
    SETOPT(x, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(x, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(x, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(x, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(x, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(x, CURLOPT_NOSIGNAL, 1L);
    SETOPT(x, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(x, CURLOPT_USERAGENT, "bulkhead");
}

static void set_transport(struct xfer *x, const struct net_req *req)
{
    SETOPT(x, CURLOPT_URL, req->url);
    SETOPT(x, CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(x, CURLOPT_PRIVATE, x);
    SETOPT(x, CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(x, CURLOPT_WRITEDATA, x);
    SETOPT(x, CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(x, CURLOPT_PREREQDATA, x);
    SETOPT(x, CURLOPT_CONNECTTIMEOUT_MS,
           req->connect_timeout_ms > 0 ? req->connect_timeout_ms : NET_DEFAULT_CONNECT_MS);
    if (req->timeout_ms > 0)
        SETOPT(x, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    if (req->no_proxy) {
        SETOPT(x, CURLOPT_PROXY, "");
        SETOPT(x, CURLOPT_NOPROXY, "*");
    }
    if (req->ca_file) {
        /* Only this CA: the default CA path would add the system store back. */
        SETOPT(x, CURLOPT_CAINFO, req->ca_file);
        SETOPT(x, CURLOPT_CAPATH, NULL);
    }
    if (req->resolve) {
        /* The entry lands in the multi handle's DNS cache, shared by every
         * transfer: the pin holds for the whole run, which is what we want. */
        x->resolve = curl_slist_append(NULL, req->resolve);
        SETOPT(x, CURLOPT_RESOLVE, x->resolve);
    }
}

static struct xfer *xfer_new(const struct net_req *req)
{
    struct xfer *x = bh_xcalloc(1, sizeof(*x));
    x->url = bh_xstrdup(req->url);
    x->prereq = req->prereq;
    x->on_data = req->on_data;
    x->on_done = req->on_done;
    x->ud = req->ud;
    x->max_reply = req->max_reply ? req->max_reply : NET_DEFAULT_MAX_REPLY;
    x->first_byte_ms = req->first_byte_timeout_ms;
    x->idle_ms = req->idle_timeout_ms;
    x->started = now_ms();
    return x;
}

int net_submit(struct net *n, const struct net_req *req, struct bh_err *err)
{
    CURL *e = curl_easy_init();
    if (!e)
        return bh_err_set(err, BH_EINTERNAL, "cannot create a libcurl easy handle");
    struct xfer *x = xfer_new(req);
    x->easy = e;
    int rc = set_method(x, req, err);
    if (rc < 0)
        goto done;
    set_safety(x);
    set_transport(x, req);
    x->headers = build_headers(req, strcmp(req->method, "POST") == 0);
    SETOPT(x, CURLOPT_HTTPHEADER, x->headers);
    if (x->bad_opt) {
        rc = bh_err_set(err, BH_ENET,
                        "libcurl refused %s (%s) for the request to %s: nothing "
                        "was sent — bulkhead needs libcurl " NET_MIN_CURL_TEXT " or later, "
                        "built with TLS",
                        x->bad_opt, curl_easy_strerror(x->bad_code), req->url);
        goto done;
    }
    CURLMcode mc = curl_multi_add_handle(n->multi, e);
    if (mc != CURLM_OK) {
        rc = bh_err_set(err, BH_EINTERNAL, "cannot start the request to %s: %s", req->url,
                        curl_multi_strerror(mc));
        goto done;
    }
    x->next = n->xfers;
    if (n->xfers)
        n->xfers->prev = x;
    n->xfers = x;
    n->in_flight++;
    x = NULL;
done:
    if (x)
        xfer_free(x);
    return rc;
}

/* --- completion ---------------------------------------------------------- */

/* TLS failures that no retry can fix, in words a user can act on. */
static const char unverified[] = "the server's certificate could not be verified";
static const char give_ca[] = "give the CA that signed it in the endpoint's ca_file";

static const struct tls_failure {
    CURLcode code;
    const char *what, *hint;
} tls_failures[] = {
    {CURLE_PEER_FAILED_VERIFICATION, unverified, give_ca},
    {CURLE_SSL_ISSUER_ERROR, unverified, give_ca},
    {CURLE_SSL_INVALIDCERTSTATUS, unverified, give_ca},
    {CURLE_SSL_CACERT_BADFILE, "the CA certificates could not be loaded",
     "the endpoint's ca_file must be a PEM file of CA certificates"},
};

static const struct tls_failure *tls_failure_of(CURLcode cc)
{
    for (size_t i = 0; i < BH_NELEM(tls_failures); i++)
        if (tls_failures[i].code == cc)
            return &tls_failures[i];
    return NULL;
}

/* A certificate for another name fails like an unknown CA; its hint differs. */
static void tls_message(const struct tls_failure *t, const char *detail, char *out, size_t size)
{
    int wrong_host = strstr(detail, "target host name") != NULL;
    /* Cut to fit: the hint is what a user acts on, libcurl's detail is context. */
    bh_str_put(out, size, "%s (%.120s) — %s", t->what, detail,
               wrong_host ? "the certificate does not name the url's host: use a host name "
                            "or address it was issued for"
                          : t->hint);
}

/* Turns what happened into a result; the first cause found wins, in the order
 * that explains the failure best. */
/* Retry-After as seconds or an HTTP date; -1 when absent or unreadable. */
static long retry_after(CURL *easy)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return -1;
    char *end = NULL;
    long s = strtol(h->value, &end, 10);
    if (end != h->value && *end == '\0' && s >= 0)
        return s > 86400 ? 86400000L : s * 1000;
    time_t when = curl_getdate(h->value, NULL);
    if (when < 0)
        return -1;
    time_t now = time(NULL);
    return when <= now ? 0 : (long)(when - now > 86400 ? 86400 : when - now) * 1000;
}

static void xfer_result(struct xfer *x, CURLcode cc, struct net_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = response_status(x->easy);
    r->received = x->received;
    r->retry_after_ms = retry_after(x->easy);
    /* The Location header as sent: CURLINFO_REDIRECT_URL stays empty once the
     * write callback has stopped the transfer. */
    struct curl_header *h = NULL;
    const char *loc = NULL;
    if (curl_easy_header(x->easy, "Location", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        loc = h->value;
    if (x->stalled[0]) {
        r->code = BH_ENET;
        r->transient = 1;
        r->no_first_byte = x->last_data == 0;
        snprintf(r->error, sizeof(r->error), "%s", x->stalled);
    } else if (x->refused) {
        r->code = BH_ENET;
        snprintf(r->error, sizeof(r->error), "connection to %s refused by the egress gate",
                 x->refused_peer);
    } else if (x->too_big) {
        r->code = BH_ETOOBIG;
        snprintf(r->error, sizeof(r->error), "reply from %s exceeds the cap of %zu bytes", x->url,
                 x->max_reply);
    } else if (r->status >= 300 && r->status < 400) {
        r->code = BH_ENET;
        snprintf(r->error, sizeof(r->error),
                 "server answered %ld redirect to %s; bulkhead never follows redirects", r->status,
                 loc ? loc : "(no location)");
    } else if (x->data_abort) {
        r->code = BH_ENET;
        snprintf(r->error, sizeof(r->error), "reply from %s abandoned by its reader", x->url);
    } else if (tls_failure_of(cc)) {
        r->code = BH_ENET;
        tls_message(tls_failure_of(cc), x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc), r->error,
                    sizeof(r->error));
    } else if (cc != CURLE_OK) {
        r->code = BH_ENET;
        r->transient = 1;
        snprintf(r->error, sizeof(r->error), "%s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
    }
}

/* Takes x out of the multi handle and the list, frees it, then tells its
 * owner r. Detached before the call: on_done may submit, and sees a
 * consistent net. */
static void xfer_end(struct net *n, struct xfer *x, const struct net_result *r)
{
    curl_multi_remove_handle(n->multi, x->easy);
    xfer_unlink(n, x);
    n->in_flight--;
    net_done_fn done = x->on_done;
    void *ud = x->ud;
    xfer_free(x);
    if (done)
        done(ud, r);
}

static void finish(struct net *n, CURL *easy, CURLcode cc)
{
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct xfer *x = (struct xfer *)priv;
    struct net_result r;
    xfer_result(x, cc, &r);
    xfer_end(n, x, &r);
}

void net_abort_all(struct net *n, const char *why)
{
    /* A callback may submit again; what it submits is aborted too. */
    while (n && n->xfers) {
        struct xfer *x = n->xfers;
        struct net_result r = {.code = BH_ENET, .retry_after_ms = -1, .received = x->received};
        snprintf(r.error, sizeof(r.error), "%s", why);
        xfer_end(n, x, &r);
    }
}

static void drain(struct net *n)
{
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(n->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        /* Copied out: the message dies with remove_handle. */
        finish(n, m->easy_handle, m->data.result);
    }
}

static int perform(struct net *n, struct bh_err *err)
{
    int running = 0;
    CURLMcode mc = curl_multi_perform(n->multi, &running);
    if (mc != CURLM_OK)
        return bh_err_set(err, BH_EINTERNAL, "libcurl failed to drive transfers: %s",
                          curl_multi_strerror(mc));
    drain(n);
    return 0;
}

/* First-byte and idle limits: libcurl has only a total timeout and a
 * low-speed rule, which cannot tell a cold model load (long silence, then a
 * stream) from a stall mid-stream. Checked here, once per loop turn. */
static void deadlines(struct net *n)
{
    long now = now_ms();
    for (struct xfer *x = n->xfers, *next; x; x = next) {
        next = x->next;
        long limit = x->last_data ? x->idle_ms : x->first_byte_ms;
        long since = now - (x->last_data ? x->last_data : x->started);
        if (limit <= 0 || since < limit)
            continue;
        snprintf(x->stalled, sizeof(x->stalled),
                 x->last_data ? "the reply stalled: no data for %ld s" : "no reply within %ld s",
                 (limit + 999) / 1000);
        finish(n, x->easy, CURLE_OPERATION_TIMEDOUT);
        next = n->xfers; /* on_done may have submitted or finished others: start over */
    }
}

void net_wakeup(struct net *n)
{
    /* Fails only for a bad handle or when the wakeup pipe is full, and a
     * full pipe means a wakeup is already pending. */
    if (n)
        (void)curl_multi_wakeup(n->multi);
}

int net_step(struct net *n, int timeout_ms, struct bh_err *err)
{
    int rc = perform(n, err);
    if (rc < 0 || n->in_flight == 0)
        return rc; /* nothing could wake us: do not sleep */
    CURLMcode mc = curl_multi_poll(n->multi, NULL, 0, timeout_ms, NULL);
    if (mc != CURLM_OK)
        return bh_err_set(err, BH_EINTERNAL, "libcurl failed to wait for transfers: %s",
                          curl_multi_strerror(mc));
    rc = perform(n, err);
    if (rc == 0)
        deadlines(n);
    return rc;
}
