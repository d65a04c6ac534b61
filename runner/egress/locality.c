/* egress/locality.c — is an endpoint really on our side of the wall?
 *
 * Locality is declared in the pipeline and then checked against the
 * addresses the host resolves to; evidence can only make an endpoint less
 * local, never more. An address counts as local when it is loopback, or lies
 * in a network that someone who knows vouches for: the pipeline
 * ("trusted_networks"), the user (BULKHEAD_TRUSTED_NETWORKS) or the
 * endpoint's own "trusted_hosts". A private range alone proves nothing: a
 * cloud service can sit behind 10.x (a private link, a corporate proxy, a
 * container service), so 10/8, 172.16/12, 192.168/16 and fc00::/7 are local
 * only when their network is named — the refusal names the line to add.
 * 0.0.0.0/8 and :: are never local, whatever a list says; link-local is not
 * unless a list names it. IPv4-mapped IPv6 addresses
 * are unwrapped first so that ::ffff:8.8.8.8 is judged as 8.8.8.8.
 *
 * URLs are parsed by net_url_parse, libcurl's URL API, the same parser that
 * will later send the request, so that what we verify is what curl connects
 * to (only runner/net/ calls curl). */
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

#include "net/net.h"

#include "pipeline/pipeline.h"
#include "util/bh_cidr.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

enum kind { KIND_OTHER, KIND_LOOPBACK, KIND_PRIVATE, KIND_UNSPECIFIED };

static enum kind classify_v4(const unsigned char a[4])
{
    if (a[0] == 0)
        return KIND_UNSPECIFIED; /* 0.0.0.0/8: "this host" to some stacks, never vouched for */
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
    if (memcmp(a, loop, 15) == 0 && a[15] == 0)
        return KIND_UNSPECIFIED; /* :: */
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

int egr_addr_is_loopback(const char *ip)
{
    return classify(ip) == KIND_LOOPBACK;
}

int egr_addr_is_private(const char *ip)
{
    return classify(ip) == KIND_PRIVATE;
}

static int is_ip_literal_text(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* --- what vouches for an address ---------------------------------------------- */

#define MAX_NETS 64

struct net_block {
    struct bh_cidr c;
    char text[64];    /* as written, for the reason */
    const char *from; /* "trusted_networks" or "BULKHEAD_TRUSTED_NETWORKS" */
};

struct trust {
    const char *const *hosts; /* trusted_hosts */
    size_t n_hosts;
    const char *host; /* the URL's host */
    struct net_block nets[MAX_NETS];
    size_t n_nets;
};

static int same_addr(const char *x, const char *ip)
{
    unsigned char a[16], b[16];
    return bh_cidr_addr(x, a) == 0 && bh_cidr_addr(ip, b) == 0 && memcmp(a, b, 16) == 0;
}

/* 1 when trusted_hosts vouches for ip (of the URL's host). */
static int host_trusted(const struct trust *t, const char *ip)
{
    for (size_t i = 0; i < t->n_hosts; i++) {
        const char *x = t->hosts[i];
        struct bh_cidr c;
        if (strchr(x, '/')          ? bh_cidr_parse(&c, x) == BH_CIDR_OK && bh_cidr_contains(&c, ip)
            : is_ip_literal_text(x) ? same_addr(x, ip)
                                    : strcasecmp(x, t->host) == 0)
            return 1;
    }
    return 0;
}

static const struct net_block *net_of(const struct trust *t, const char *ip)
{
    for (size_t i = 0; i < t->n_nets; i++)
        if (bh_cidr_contains(&t->nets[i].c, ip))
            return &t->nets[i];
    return NULL;
}

/* What makes ip local, the weakest kind of evidence last in the enum. */
static enum egr_local_via addr_via(const struct trust *t, const char *ip)
{
    enum kind k = classify(ip);
    if (k == KIND_LOOPBACK)
        return EGR_VIA_LOOPBACK;
    if (k == KIND_UNSPECIFIED)
        return EGR_VIA_NONE; /* whatever a list says: no network owns 0.0.0.0 or :: */
    if (net_of(t, ip))
        return EGR_VIA_NETWORK;
    return host_trusted(t, ip) ? EGR_VIA_HOSTS : EGR_VIA_NONE;
}

static int net_add(struct trust *t, const char *text, size_t n, const char *from,
                   struct bh_err *err)
{
    char one[64];
    if (n >= sizeof(one))
        n = sizeof(one) - 1; /* too long for any block: fails below, named cut short */
    memcpy(one, text, n);
    one[n] = '\0';
    struct net_block *b = &t->nets[t->n_nets];
    if (t->n_nets >= MAX_NETS)
        return bh_err_set(err, BH_EINVAL,
                          "%s: more than %d networks — list fewer, wider "
                          "blocks",
                          from, MAX_NETS);
    if (bh_cidr_parse(&b->c, one) != BH_CIDR_OK)
        return bh_err_set(err, BH_EINVAL,
                          "%s: \"%s\" is not a CIDR block of 1 to 32 (IPv4) or "
                          "1 to 128 (IPv6) bits — write comma-separated blocks, e.g. "
                          "BULKHEAD_TRUSTED_NETWORKS=10.8.0.0/16,fd00::/8",
                          from, one);
    snprintf(b->text, sizeof(b->text), "%s", one);
    b->from = from;
    t->n_nets++;
    return 0;
}

/* BULKHEAD_TRUSTED_NETWORKS: comma-separated blocks, spaces around them
 * allowed, empty entries skipped. A bad block fails the whole list: nothing
 * is trusted on a guess. */
static int env_nets(struct trust *t, const char *list, struct bh_err *err)
{
    static const char from[] = "BULKHEAD_TRUSTED_NETWORKS";
    while (list && *list) {
        list += strspn(list, " \t,");
        size_t n = strcspn(list, ",");
        while (n > 0 && (list[n - 1] == ' ' || list[n - 1] == '\t'))
            n--;
        if (n > 0 && net_add(t, list, n, from, err) < 0)
            return err->code;
        list += n;
        list += strcspn(list, ",");
    }
    return 0;
}

static int trust_init(struct trust *t, const struct egr_trust *in, struct bh_err *err)
{
    memset(t, 0, sizeof(*t));
    if (!in)
        return 0;
    t->hosts = in->hosts;
    t->n_hosts = in->n_hosts;
    for (size_t i = 0; i < in->n_networks; i++)
        if (net_add(t, in->networks[i], strlen(in->networks[i]), "trusted_networks", err) < 0)
            return err->code;
    return env_nets(t, in->env_networks, err);
}

/* --- the URL ---------------------------------------------------------------- */

/* Scheme, credentials, host (brackets of IPv6 literals removed) and port. */
static int parse_url(const char *url, struct egr_endpoint *out, struct bh_err *err)
{
    struct net_url u;
    int rc = net_url_parse(url, &u, err);
    if (rc < 0)
        return rc;
    if (strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0)
        return bh_err_set(err, BH_EINVAL, "URL '%s' has an unsupported scheme (known: http, https)",
                          url);
    if (u.credentials)
        return bh_err_set(err, BH_EINVAL,
                          "URL has credentials in it; remove them and name "
                          "the variable holding the key in api_key_env");
    if (!u.host[0] || !u.port[0])
        return bh_err_set(err, BH_EINVAL, "URL '%s' has no usable host or port", url);
    snprintf(out->host, sizeof(out->host), "%s", u.host);
    /* curl gave the port as digits (its URL parser checked 0..65535), but an
     * unchecked conversion is how a bad value slips through later changes. */
    char *end = NULL;
    long n = strtol(u.port, &end, 10);
    if (end == u.port || *end || n < 1 || n > 65535)
        return bh_err_set(err, BH_EINVAL, "URL '%s' has no usable port", url);
    out->port = (int)n;
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

/* The refusal of a private address names the line that would make it local:
 * only its owner knows whether the network is theirs. */
static void private_reason(struct egr_endpoint *e, const char *subject)
{
    char block[64];
    bh_cidr_suggest(e->bad, block, sizeof(block));
    bh_str_put(e->reason, sizeof(e->reason),
               "declared local but %s a private address in no trusted network, and a private "
               "range alone proves nothing: if that network is yours, add \"trusted_networks\": "
               "[\"%s\"] to the pipeline, or set BULKHEAD_TRUSTED_NETWORKS=%s; treated as cloud",
               subject, block, block);
}

static void refused_reason(struct egr_endpoint *e, int literal)
{
    char subject[128];
    int priv = classify(e->bad) == KIND_PRIVATE;
    if (literal)
        bh_str_put(subject, sizeof(subject), "%s is", e->bad);
    else
        bh_str_put(subject, sizeof(subject), "%.48s resolves to %s,%s", e->host, e->bad,
                   priv ? "" : " which is");
    if (priv)
        private_reason(e, subject);
    else
        bh_str_put(e->reason, sizeof(e->reason),
                   "declared local but %s neither loopback nor in a trusted network "
                   "(trusted_networks, BULKHEAD_TRUSTED_NETWORKS or trusted_hosts): treated as "
                   "cloud",
                   subject);
}

/* Why the addresses count as local: the weakest evidence among them. */
static void local_reason(struct egr_endpoint *e, int literal, const struct net_block *net, size_t n)
{
    char why[160];
    if (e->via == EGR_VIA_LOOPBACK)
        bh_str_put(why, sizeof(why), "%s", literal ? "is loopback" : "(loopback)");
    else if (e->via == EGR_VIA_NETWORK && net)
        bh_str_put(why, sizeof(why), "%sin %s, a network named by %s", literal ? "is " : "",
                   net->text, net->from);
    else
        bh_str_put(why, sizeof(why), "%svouched for by trusted_hosts", literal ? "is " : "");
    if (literal)
        bh_str_put(e->reason, sizeof(e->reason), "declared local; %s %s", e->addr, why);
    else
        bh_str_put(e->reason, sizeof(e->reason), "declared local; %.48s resolves to %s%s%s%s",
                   e->host, e->addr, e->via == EGR_VIA_LOOPBACK ? " " : ", ", why,
                   n > 1 ? ", and only to addresses that count as local" : "");
}

/* The verdict once every address is classified: e->via and e->bad are set. */
static void name_reason(struct egr_endpoint *e, int declared_local, int literal,
                        const struct net_block *net, size_t n)
{
    if (!declared_local) {
        e->via = EGR_VIA_NONE;
        bh_str_put(e->reason, sizeof(e->reason), "not declared local: cloud");
        return;
    }
    if (e->bad[0]) {
        e->via = EGR_VIA_NONE;
        refused_reason(e, literal);
        return;
    }
    e->local = 1;
    e->trusted = e->via >= EGR_VIA_NETWORK;
    local_reason(e, literal, net, n);
}

/* Classifies ip into the endpoint's running verdict. */
static void judge(struct egr_endpoint *e, const struct trust *t, const char *ip,
                  const struct net_block **net)
{
    enum egr_local_via via = ip[0] ? addr_via(t, ip) : EGR_VIA_NONE;
    if (via == EGR_VIA_NONE && !e->bad[0])
        snprintf(e->bad, sizeof(e->bad), "%s", ip[0] ? ip : "an address of another family");
    if (via == EGR_VIA_NETWORK && !*net)
        *net = net_of(t, ip);
    if (via > e->via)
        e->via = via;
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
        bh_str_put(e->reason, sizeof(e->reason), "cannot resolve %.64s (%s): treated as cloud",
                   e->host, gai_strerror(gai));
        return;
    }
    ntop(res->ai_addr, e->addr, sizeof(e->addr));
    const struct net_block *net = NULL;
    size_t n = 0, pinned = 0;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next, n++) {
        char ip[64];
        ntop(ai->ai_addr, ip, sizeof(ip));
        judge(e, t, ip, &net);
        if (ip[0])
            pin_add(e, ip, &pinned);
    }
    resolve_free_fn(res);
    name_reason(e, declared_local, 0, net, n);
}

static void verify_literal(struct egr_endpoint *e, int declared_local, const struct trust *t)
{
    unsigned char a[16];
    int af = inet_pton(AF_INET, e->host, a) == 1 ? AF_INET : AF_INET6;
    /* Canonical text, the form curl reports for the peer. */
    if (inet_pton(af, e->host, a) != 1 || !inet_ntop(af, a, e->addr, sizeof(e->addr)))
        e->addr[0] = '\0';
    memcpy(e->addrs, e->addr, sizeof(e->addr));
    const struct net_block *net = NULL;
    judge(e, t, e->addr, &net);
    name_reason(e, declared_local, 1, net, 1);
}

int egr_endpoint_verify_with(const char *url, int declared_local, const struct egr_trust *trust,
                             struct egr_endpoint *out, struct bh_err *err)
{
    struct egr_endpoint e;
    memset(&e, 0, sizeof(e));
    struct trust *t = bh_xcalloc(1, sizeof(*t)); /* 64 blocks: kept off the stack */
    int rc = parse_url(url, &e, err);
    if (rc == 0)
        rc = trust_init(t, trust, err);
    if (rc == 0) {
        t->host = e.host;
        if (is_ip_literal_text(e.host))
            verify_literal(&e, declared_local, t);
        else
            verify_name(&e, declared_local, t);
        *out = e;
    }
    free(t);
    return rc;
}

int egr_endpoint_verify_trusted(const char *url, int declared_local,
                                const char *const *trusted_list, size_t n_trusted,
                                struct egr_endpoint *out, struct bh_err *err)
{
    struct egr_trust t = {.hosts = trusted_list, .n_hosts = n_trusted};
    return egr_endpoint_verify_with(url, declared_local, &t, out, err);
}

int egr_endpoint_verify_pipe(const struct pipeline *p, size_t i, struct egr_endpoint *out,
                             struct bh_err *err)
{
    const struct pipe_endpoint *e = &p->endpoints[i];
    struct egr_trust t = {
        .hosts = (const char *const *)e->trusted_hosts,
        .n_hosts = e->n_trusted_hosts,
        .networks = (const char *const *)p->trusted_networks,
        .n_networks = p->n_trusted_networks,
        .env_networks = getenv("BULKHEAD_TRUSTED_NETWORKS"),
    };
    return egr_endpoint_verify_with(e->url, e->declared_local, &t, out, err);
}

int egr_endpoint_verify(const char *url, int declared_local, struct egr_endpoint *out,
                        struct bh_err *err)
{
    return egr_endpoint_verify_with(url, declared_local, NULL, out, err);
}
