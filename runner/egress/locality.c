/* egress/locality.c — is an endpoint really on our side of the wall?
 *
 * Locality is declared in the pipeline and then checked against the
 * addresses the host resolves to; evidence can only make an endpoint less
 * local, never more. The address classification is deliberately narrow:
 * loopback and the private ranges count, while 0.0.0.0/8, :: and link-local
 * do not (they are not "our machine or our network" in any way a pipeline
 * author can vouch for). IPv4-mapped IPv6 addresses are unwrapped first so
 * that ::ffff:8.8.8.8 is judged as 8.8.8.8.
 *
 * URLs are parsed with libcurl's URL API, the same parser that will later
 * send the request, so that what we verify is what curl connects to. */
#include "egress/egress.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "util/bh_err.h"
#include "util/bh_str.h"


enum kind { KIND_OTHER, KIND_LOOPBACK, KIND_PRIVATE };

static enum kind classify_v4(const unsigned char a[4])
{
    if (a[0] == 127)
        return KIND_LOOPBACK;
    if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
        return KIND_PRIVATE;
    return KIND_OTHER;
}

static enum kind classify_v6(const unsigned char a[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (memcmp(a, mapped, sizeof(mapped)) == 0)
        return classify_v4(a + 12);
    if (memcmp(a, loop, sizeof(loop)) == 0)
        return KIND_LOOPBACK;
    if ((a[0] & 0xfe) == 0xfc)
        return KIND_PRIVATE; /* unique local, fc00::/7 */
    return KIND_OTHER;
}

static enum kind classify(const char *ip)
{
    unsigned char a[16];
    if (!ip)
        return KIND_OTHER;
    if (inet_pton(AF_INET, ip, a) == 1)
        return classify_v4(a);
    if (inet_pton(AF_INET6, ip, a) == 1)
        return classify_v6(a);
    return KIND_OTHER;
}

static const char *kind_words(enum kind k)
{
    return k == KIND_LOOPBACK ? "loopback" : "a private address";
}

int egr_addr_is_local(const char *ip)
{
    return classify(ip) != KIND_OTHER;
}

static int is_ip_literal_text(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* --- trusted_hosts ------------------------------------------------------------ */

struct trust {
    const char *const *list;
    size_t n;
    const char *host; /* the URL's host */
};

/* 1 when ip lies in the CIDR block "addr/len". */
static int in_block(const char *block, const char *ip)
{
    char base[64];
    const char *slash = strchr(block, '/');
    unsigned char a[16], b[16];
    size_t n = slash ? (size_t)(slash - block) : 0;
    if (!slash || n >= sizeof(base))
        return 0;
    memcpy(base, block, n);
    base[n] = '\0';
    int af = strchr(base, ':') ? AF_INET6 : AF_INET, bytes = af == AF_INET ? 4 : 16;
    long bits = strtol(slash + 1, NULL, 10);
    if (inet_pton(af, base, b) != 1 || inet_pton(af, ip, a) != 1 || bits < 1 || bits > 8 * bytes)
        return 0;
    for (long i = 0; i < bits; i++)
        if (((a[i / 8] ^ b[i / 8]) >> (7 - i % 8)) & 1)
            return 0;
    return 1;
}

static int same_addr(const char *x, const char *ip)
{
    unsigned char a[16], b[16];
    int af = strchr(x, ':') ? AF_INET6 : AF_INET;
    return inet_pton(af, x, a) == 1 && inet_pton(af, ip, b) == 1 &&
           memcmp(a, b, af == AF_INET ? 4 : 16) == 0;
}

/* 1 when trusted_hosts vouches for ip (of the URL's host). */
static int trusted(const struct trust *t, const char *ip)
{
    for (size_t i = 0; t && i < t->n; i++) {
        const char *x = t->list[i];
        if (strchr(x, '/') ? in_block(x, ip) : is_ip_literal_text(x) ? same_addr(x, ip)
                                                                     : strcasecmp(x, t->host) == 0)
            return 1;
    }
    return 0;
}

/* --- the URL ---------------------------------------------------------------- */

static int url_part(CURLU *u, CURLUPart what, unsigned flags, char *out, size_t size)
{
    char *v = NULL;
    if (curl_url_get(u, what, &v, flags) != CURLUE_OK)
        return -1;
    int fits = (size_t)snprintf(out, size, "%s", v) < size;
    curl_free(v);
    return fits ? 0 : -1;
}

static int has_part(CURLU *u, CURLUPart what)
{
    char *v = NULL;
    if (curl_url_get(u, what, &v, 0) != CURLUE_OK)
        return 0;
    curl_free(v);
    return 1;
}

/* Scheme, credentials, host (brackets of IPv6 literals removed) and port. */
static int parse_url(CURLU *u, const char *url, struct egr_endpoint *out, struct bh_err *err)
{
    char scheme[16], port[16];
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK)
        return bh_err_set(err, BH_EINVAL,
                          "'%s' is not a valid URL (%s): write it as http://host:port", url,
                          curl_url_strerror(uc));
    if (url_part(u, CURLUPART_SCHEME, 0, scheme, sizeof(scheme)) < 0 ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        return bh_err_set(err, BH_EINVAL, "URL '%s' has an unsupported scheme (known: http, https)",
                          url);
    if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD))
        return bh_err_set(err, BH_EINVAL,
                          "URL has credentials in it; remove them and name "
                          "the variable holding the key in api_key_env");
    if (url_part(u, CURLUPART_HOST, 0, out->host, sizeof(out->host)) < 0 ||
        url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, port, sizeof(port)) < 0)
        return bh_err_set(err, BH_EINVAL, "URL '%s' has no usable host or port", url);
    size_t hl = strlen(out->host);
    if (hl >= 2 && out->host[0] == '[' && out->host[hl - 1] == ']') {
        memmove(out->host, out->host + 1, hl - 2);
        out->host[hl - 2] = '\0';
    }
    out->port = atoi(port);
    return 0;
}

/* --- resolution and the verdict ---------------------------------------------- */

static void ntop(const struct sockaddr *sa, char *out, size_t size)
{
    const void *a = NULL;
    out[0] = '\0';
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (a && !inet_ntop(sa->sa_family, a, out, (socklen_t)size))
        out[0] = '\0';
}

/* bad: the first address that is not local ("" when all are); n: how many. */
static void name_reason(struct egr_endpoint *e, int declared_local, const char *bad, size_t n)
{
    if (declared_local && !bad[0] && e->trusted) {
        e->local = 1;
        bh_str_put(e->reason, sizeof(e->reason), "declared local; %.48s resolves to %s, "
                   "vouched for by trusted_hosts", e->host, e->addr);
        return;
    }
    if (!declared_local)
        bh_str_put(e->reason, sizeof(e->reason), "not declared local: cloud");
    else if (bad[0])
        bh_str_put(e->reason, sizeof(e->reason),
            "declared local but %.48s resolves to %s, "
            "which is not a loopback or private address: treated as cloud",
            e->host, bad);
    else {
        e->local = 1;
        bh_str_put(e->reason, sizeof(e->reason), "declared local; %.48s resolves to %s (%s)%s", e->host,
            e->addr, kind_words(classify(e->addr)),
            n > 1 ? ", and only to loopback or private addresses" : "");
    }
}

/* Adds ip to the pinned list unless it is there or the list is full. */
static void pin_add(struct egr_endpoint *e, const char *ip, size_t *pinned)
{
    const char *list = e->addrs;
    size_t n = strlen(ip), used = strlen(e->addrs);
    for (const char *at = strstr(list, ip); at; at = strstr(at + 1, ip))
        if ((at == list || at[-1] == ',') && (at[n] == ',' || at[n] == '\0'))
            return;
    if (*pinned >= EGR_MAX_PINNED || used + n + 2 > sizeof(e->addrs))
        return;
    snprintf(e->addrs + used, sizeof(e->addrs) - used, "%s%s", used ? "," : "", ip);
    ++*pinned;
}

static egr_resolve_fn resolve_fn = getaddrinfo;
static egr_resolve_free_fn resolve_free_fn = freeaddrinfo;

void egr_set_resolver(egr_resolve_fn fn, egr_resolve_free_fn free_fn)
{
    resolve_fn = fn && free_fn ? fn : getaddrinfo;
    resolve_free_fn = fn && free_fn ? free_fn : freeaddrinfo;
}

/* Classifies every address of a name; the first ones become the pin. */
static void verify_name(struct egr_endpoint *e, int declared_local, const struct trust *t)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = resolve_fn(e->host, NULL, &hints, &res);
    if (gai != 0 || !res) {
        bh_str_put(e->reason, sizeof(e->reason), "cannot resolve %.64s (%s): treated as cloud", e->host,
            gai_strerror(gai));
        return;
    }
    ntop(res->ai_addr, e->addr, sizeof(e->addr));
    char bad[64] = "";
    size_t n = 0, pinned = 0;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next, n++) {
        char ip[64];
        ntop(ai->ai_addr, ip, sizeof(ip));
        int vouched = declared_local && ip[0] && !egr_addr_is_local(ip) && trusted(t, ip);
        e->trusted |= vouched;
        if (!bad[0] && !egr_addr_is_local(ip) && !vouched)
            snprintf(bad, sizeof(bad), "%s", ip[0] ? ip : "an address of another family");
        if (ip[0])
            pin_add(e, ip, &pinned);
    }
    resolve_free_fn(res);
    name_reason(e, declared_local, bad, n);
}

static void verify_literal(struct egr_endpoint *e, int declared_local, const struct trust *t)
{
    unsigned char a[16];
    int af = inet_pton(AF_INET, e->host, a) == 1 ? AF_INET : AF_INET6;
    /* Canonical text, the form curl reports for the peer. */
    if (inet_pton(af, e->host, a) != 1 || !inet_ntop(af, a, e->addr, sizeof(e->addr)))
        e->addr[0] = '\0';
    memcpy(e->addrs, e->addr, sizeof(e->addr));
    enum kind k = classify(e->host);
    if (declared_local && k == KIND_OTHER && trusted(t, e->addr)) {
        e->local = e->trusted = 1;
        bh_str_put(e->reason, sizeof(e->reason), "declared local; %s is vouched for by "
                   "trusted_hosts", e->addr);
    } else if (!declared_local)
        bh_str_put(e->reason, sizeof(e->reason), "not declared local: cloud");
    else if (k == KIND_OTHER)
        bh_str_put(e->reason, sizeof(e->reason),
            "declared local but %s is not a loopback or private address: treated as cloud",
            e->addr);
    else {
        e->local = 1;
        bh_str_put(e->reason, sizeof(e->reason), "declared local; %s is %s", e->addr, kind_words(k));
    }
}

int egr_endpoint_verify_trusted(const char *url, int declared_local,
                                const char *const *trusted_list, size_t n_trusted,
                                struct egr_endpoint *out, struct bh_err *err)
{
    struct egr_endpoint e;
    memset(&e, 0, sizeof(e));
    CURLU *u = curl_url();
    if (!u)
        return bh_err_set(err, BH_EINTERNAL, "cannot create a libcurl URL handle");
    int rc = parse_url(u, url, &e, err);
    curl_url_cleanup(u);
    if (rc < 0)
        return rc;
    struct trust t = { trusted_list, n_trusted, e.host };
    if (is_ip_literal_text(e.host))
        verify_literal(&e, declared_local, &t);
    else
        verify_name(&e, declared_local, &t);
    *out = e;
    return 0;
}

int egr_endpoint_verify(const char *url, int declared_local, struct egr_endpoint *out,
                        struct bh_err *err)
{
    return egr_endpoint_verify_trusted(url, declared_local, NULL, 0, out, err);
}
