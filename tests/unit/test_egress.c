/* tests/unit/test_egress.c — address classification, endpoint verification
 * and the gate itself: a hand-built pipeline, a real store in a temporary
 * folder and two loopback servers (tests/helpers/mini_httpd.c), one playing
 * the local model box and one the cloud. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "egress/egress.h"
#include "mini_httpd.h"
#include "pipeline/pipeline.h"
#include "store/store.h"
#include "store/store_int.h" /* the database handle: a test rolls the group's batch back */
#include "util/bh_err.h"
#include "util/bh_hash.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define KEY_VAR "BH_TEST_EGRESS_KEY"
#define SECRET "sk-test-SECRET"

/* --- address classification --------------------------------------------------- */

static void egress_classifies_addresses(void **state)
{
    static const struct {
        const char *ip;
        int loopback, private_;
    } cases[] = {
        /* clang-format off */
        {"127.0.0.1", 1, 0}, {"127.255.255.254", 1, 0}, {"127.1.2.3", 1, 0},
        {"10.1.2.3", 0, 1}, {"10.255.255.255", 0, 1}, {"11.0.0.1", 0, 0}, {"9.255.255.255", 0, 0},
        {"172.16.0.1", 0, 1}, {"172.31.255.255", 0, 1}, {"172.32.0.1", 0, 0},
        {"172.15.255.255", 0, 0}, {"192.168.1.1", 0, 1}, {"192.169.0.1", 0, 0},
        {"192.167.255.255", 0, 0}, {"8.8.8.8", 0, 0}, {"0.0.0.0", 0, 0}, {"0.1.2.3", 0, 0},
        {"169.254.1.1", 0, 0}, {"255.255.255.255", 0, 0}, {"::1", 1, 0}, {"::", 0, 0},
        {"::2", 0, 0}, {"::ffff:127.0.0.1", 1, 0}, {"::ffff:10.0.0.1", 0, 1},
        {"::ffff:8.8.8.8", 0, 0}, {"::ffff:0.0.0.0", 0, 0}, {"fd00::1", 0, 1}, {"fc00::1", 0, 1},
        {"fe00::1", 0, 0}, {"fe80::1", 0, 0}, {"2001:db8::1", 0, 0}, {"garbage", 0, 0},
        {"", 0, 0}, {"127.0.0.1 ", 0, 0}, {"localhost", 0, 0}, {"[::1]", 0, 0},
        {"127.0.0.1/8", 0, 0},
        /* clang-format on */
    };
    (void)state;
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        if (egr_addr_is_loopback(cases[i].ip) != cases[i].loopback)
            fail_msg("egr_addr_is_loopback(\"%s\") should be %d", cases[i].ip, cases[i].loopback);
        if (egr_addr_is_private(cases[i].ip) != cases[i].private_)
            fail_msg("egr_addr_is_private(\"%s\") should be %d", cases[i].ip, cases[i].private_);
    }
    assert_int_equal(egr_addr_is_loopback(NULL), 0);
    assert_int_equal(egr_addr_is_private(NULL), 0);
}

/* --- egr_endpoint_verify ----------------------------------------------------- */

static void egress_verifies_declared_local_loopback(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    assert_int_equal(egr_endpoint_verify("http://127.0.0.1:1", 1, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_string_equal(e.host, "127.0.0.1");
    assert_int_equal(e.port, 1);
    assert_string_equal(e.addr, "127.0.0.1");
    assert_string_equal(e.reason, "declared local; 127.0.0.1 is loopback");
}

/* Leak 9: a private range alone proves nothing (a cloud service behind a
 * private link): without a trusted network a private address is not local,
 * and the reason names the line to add. */
static void egress_private_address_is_not_local_without_a_trusted_network(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    unsetenv("BULKHEAD_TRUSTED_NETWORKS");
    assert_int_equal(egr_endpoint_verify("https://10.1.2.7/", 1, &e, &err), 0);
    assert_int_equal(e.local, 0);
    assert_int_equal(e.via, EGR_VIA_NONE);
    assert_int_equal(e.port, 443); /* the scheme's default */
    assert_string_equal(e.bad, "10.1.2.7");
    assert_string_equal(e.reason,
                        "declared local but 10.1.2.7 is a private address in no trusted network, "
                        "and a private range alone proves nothing: if that network is yours, add "
                        "\"trusted_networks\": [\"10.1.2.0/24\"] to the pipeline, or set "
                        "BULKHEAD_TRUSTED_NETWORKS=10.1.2.0/24; treated as cloud");
    static const char *const priv[] = {"http://172.16.0.1:1", "http://192.168.1.1:1",
                                       "http://[fd12::5]:1", "http://[fc00::1]:1",
                                       "http://[::ffff:10.0.0.1]:1"};
    for (size_t i = 0; i < BH_NELEM(priv); i++) {
        assert_int_equal(egr_endpoint_verify(priv[i], 1, &e, &err), 0);
        if (e.local || !strstr(e.reason, "add \"trusted_networks\""))
            fail_msg("%s: local %d, reason \"%s\"", priv[i], e.local, e.reason);
    }
    assert_int_equal(egr_endpoint_verify("http://[fd12:3456::5]:1", 1, &e, &err), 0);
    assert_non_null(strstr(e.reason, "[\"fd12:3456::/64\"]")); /* a v6 /64 is suggested */
}

static void egress_trusted_networks_make_private_addresses_local(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    const char *nets[] = {"10.1.0.0/16", "fd00::/8"};
    struct egr_trust t = {.networks = nets, .n_networks = 2};
    assert_int_equal(egr_endpoint_verify_with("http://10.1.2.7:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_int_equal(e.via, EGR_VIA_NETWORK);
    assert_int_equal(e.trusted, 1); /* the peer check must accept a non-loopback address */
    assert_string_equal(e.reason, "declared local; 10.1.2.7 is in 10.1.0.0/16, a network named "
                                  "by trusted_networks");
    assert_int_equal(egr_endpoint_verify_with("http://[::ffff:10.1.9.9]:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 1); /* IPv4-mapped: judged as the IPv4 address */
    assert_int_equal(egr_endpoint_verify_with("http://[fd00::5]:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 1); /* fc00::/7, inside fd00::/8 */
    assert_int_equal(egr_endpoint_verify_with("http://[fc00::5]:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 0); /* fc00::/7, outside fd00::/8 */
    assert_int_equal(egr_endpoint_verify_with("http://10.2.0.1:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 0); /* another 10.x network */
    assert_int_equal(egr_endpoint_verify_with("http://10.1.2.7:1", 0, &t, &e, &err), 0);
    assert_int_equal(e.local, 0); /* never more local than declared */
    assert_int_equal(egr_endpoint_verify_with("http://127.0.0.1:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.via, EGR_VIA_LOOPBACK);
    assert_int_equal(e.trusted, 0);
    /* No list vouches for the unspecified addresses. */
    const char *zero[] = {"0.0.0.0/8", "::/127"};
    struct egr_trust z = {.networks = zero, .n_networks = 2, .hosts = zero, .n_hosts = 2};
    assert_int_equal(egr_endpoint_verify_with("http://0.0.0.0:1", 1, &z, &e, &err), 0);
    assert_int_equal(e.local, 0);
    assert_int_equal(egr_endpoint_verify_with("http://[::]:1", 1, &z, &e, &err), 0);
    assert_int_equal(e.local, 0);
}

static void egress_trusted_networks_from_the_environment(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    struct egr_trust t = {.env_networks = " 192.168.7.0/24 , ,10.9.0.0/16,"};
    assert_int_equal(egr_endpoint_verify_with("http://10.9.3.4:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_non_null(strstr(e.reason, "10.9.0.0/16, a network named by BULKHEAD_TRUSTED_NETWORKS"));
    assert_int_equal(egr_endpoint_verify_with("http://192.168.7.9:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_int_equal(egr_endpoint_verify_with("http://192.168.8.9:1", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 0);
    /* A block that does not parse fails the whole list: nothing trusted on a guess. */
    static const char *const bad[] = {"10.9.0.0/16,10.8.0.0", "0.0.0.0/0", "10.0.0.0/33", "gpu.lan",
                                      "10.8/16"};
    for (size_t i = 0; i < BH_NELEM(bad); i++) {
        t.env_networks = bad[i];
        memset(&err, 0, sizeof(err));
        if (egr_endpoint_verify_with("http://10.9.3.4:1", 1, &t, &e, &err) != BH_EINVAL)
            fail_msg("BULKHEAD_TRUSTED_NETWORKS=%s should be refused", bad[i]);
        assert_non_null(strstr(err.msg, "BULKHEAD_TRUSTED_NETWORKS: "));
        assert_non_null(strstr(err.msg, "e.g. BULKHEAD_TRUSTED_NETWORKS=10.8.0.0/16,fd00::/8"));
    }
}

static void egress_verifies_ipv6_literals(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    assert_int_equal(egr_endpoint_verify("http://[::1]:8080/x", 1, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_string_equal(e.host, "::1");
    assert_string_equal(e.addr, "::1");
    assert_int_equal(e.port, 8080);
}

static void egress_never_makes_an_endpoint_more_local(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    assert_int_equal(egr_endpoint_verify("http://127.0.0.1:1", 0, &e, &err), 0);
    assert_int_equal(e.local, 0);
    assert_string_equal(e.reason, "not declared local: cloud");
    assert_string_equal(e.addr, "127.0.0.1"); /* still pinned */
    assert_int_equal(egr_endpoint_verify("http://8.8.8.8:1", 1, &e, &err), 0);
    assert_int_equal(e.local, 0);
    assert_string_equal(e.reason, "declared local but 8.8.8.8 is neither loopback nor "
                                  "in a trusted network (trusted_networks, "
                                  "BULKHEAD_TRUSTED_NETWORKS or trusted_hosts): treated as cloud");
    assert_int_equal(egr_endpoint_verify("http://[::ffff:8.8.8.8]:1", 1, &e, &err), 0);
    assert_int_equal(e.local, 0);
    assert_int_equal(egr_endpoint_verify("http://0.0.0.0:1", 1, &e, &err), 0);
    assert_int_equal(e.local, 0);
}

static void egress_resolves_localhost_to_loopback(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    assert_int_equal(egr_endpoint_verify("http://localhost:1", 1, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_string_equal(e.host, "localhost");
    assert_true(strcmp(e.addr, "127.0.0.1") == 0 || strcmp(e.addr, "::1") == 0);
    assert_non_null(strstr(e.addrs, e.addr));
    assert_non_null(strstr(e.reason, "declared local; localhost resolves to "));
}

/* A resolver for tests: names map to fixed addresses, anything else does not
 * resolve. No DNS query leaves the machine. */
static int fake_resolve(const char *node, const char *service, const struct addrinfo *hints,
                        struct addrinfo **res)
{
    static const struct {
        const char *name, *a, *b;
    } map[] = {
        {"gpu.lan", "192.168.1.20", NULL},
        {"sneaky.lan", "10.0.0.5", "203.0.113.7"}, /* one public address among private ones */
        {"public.example", "198.51.100.4", NULL},
        {"gpu.vpn", "100.64.1.2", NULL}, /* a GPU box on a VPN: neither loopback nor private */
    };
    (void)service;
    (void)hints;
    *res = NULL;
    for (size_t i = 0; i < BH_NELEM(map); i++) {
        if (strcmp(node, map[i].name) != 0)
            continue;
        const char *addrs[] = {map[i].b, map[i].a}; /* prepended: a comes first */
        for (size_t k = 0; k < 2; k++) {
            if (!addrs[k])
                continue;
            struct addrinfo *ai = calloc(1, sizeof(*ai) + sizeof(struct sockaddr_in));
            struct sockaddr_in *sin = (struct sockaddr_in *)(void *)(ai + 1);
            sin->sin_family = AF_INET;
            inet_pton(AF_INET, addrs[k], &sin->sin_addr);
            ai->ai_family = AF_INET;
            ai->ai_socktype = SOCK_STREAM;
            ai->ai_addr = (struct sockaddr *)sin;
            ai->ai_addrlen = sizeof(*sin);
            ai->ai_next = *res;
            *res = ai;
        }
        return 0;
    }
    return EAI_NONAME;
}

static void fake_resolve_free(struct addrinfo *res)
{
    while (res) {
        struct addrinfo *next = res->ai_next;
        free(res);
        res = next;
    }
}

static void egress_unresolvable_host_is_cloud_without_pin(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    egr_set_resolver(fake_resolve, fake_resolve_free);
    assert_int_equal(egr_endpoint_verify("http://no-such-host.lan:1", 1, &e, &err), 0);
    egr_set_resolver(NULL, NULL);
    assert_int_equal(e.local, 0);
    assert_string_equal(e.addr, "");
    assert_string_equal(e.addrs, "");
    assert_non_null(strstr(e.reason, "cannot resolve no-such-host.lan"));
}

static void egress_judges_every_address_a_name_resolves_to(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    egr_set_resolver(fake_resolve, fake_resolve_free);
    assert_int_equal(egr_endpoint_verify("http://gpu.lan:11434", 1, &e, &err), 0);
    assert_int_equal(e.local, 0); /* a private address alone proves nothing */
    assert_string_equal(e.addr, "192.168.1.20");
    assert_non_null(strstr(e.reason, "gpu.lan resolves to 192.168.1.20, a private address"));
    const char *nets[] = {"192.168.1.0/24", "10.0.0.0/8"};
    struct egr_trust t = {.networks = nets, .n_networks = 2};
    assert_int_equal(egr_endpoint_verify_with("http://gpu.lan:11434", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_string_equal(e.reason, "declared local; gpu.lan resolves to 192.168.1.20, in "
                                  "192.168.1.0/24, a network named by trusted_networks");
    /* A name mapped to a public address is cloud, whatever the pipeline says. */
    assert_int_equal(egr_endpoint_verify("http://public.example:11434", 1, &e, &err), 0);
    assert_int_equal(e.local, 0);
    assert_non_null(strstr(e.reason, "198.51.100.4"));
    /* One public address among private ones is enough to make it cloud. */
    assert_int_equal(egr_endpoint_verify_with("http://sneaky.lan:11434", 1, &t, &e, &err), 0);
    assert_int_equal(e.local, 0);
    assert_non_null(strstr(e.reason, "203.0.113.7"));
    egr_set_resolver(NULL, NULL);
}

static void egress_trusted_hosts_vouch_only_for_what_they_list(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    const char *block[] = {"100.64.0.0/10"}, *other[] = {"100.128.0.0/10"}, *byname[] = {"GPU.vpn"},
               *addr[] = {"198.51.100.4"}, *v6[] = {"2001:db8::/32"};
    egr_set_resolver(fake_resolve, fake_resolve_free);
    assert_int_equal(egr_endpoint_verify("http://gpu.vpn:11434", 1, &e, &err), 0);
    assert_int_equal(e.local, 0); /* without trusted_hosts: a public address */
    assert_int_equal(egr_endpoint_verify_trusted("http://gpu.vpn:11434", 1, block, 1, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_int_equal(e.trusted, 1);
    assert_string_equal(e.addrs, "100.64.1.2"); /* still pinned to what was checked */
    assert_non_null(strstr(e.reason, "trusted_hosts"));
    assert_int_equal(egr_endpoint_verify_trusted("http://gpu.vpn:11434", 1, other, 1, &e, &err), 0);
    assert_int_equal(e.local, 0); /* a block that does not hold the address */
    assert_int_equal(egr_endpoint_verify_trusted("http://gpu.vpn:11434", 1, byname, 1, &e, &err),
                     0);
    assert_int_equal(e.local, 1); /* by host name, case-insensitively */
    assert_int_equal(egr_endpoint_verify_trusted("http://public.example:1", 1, byname, 1, &e, &err),
                     0);
    assert_int_equal(e.local, 0); /* another host's name vouches for nothing */
    assert_int_equal(egr_endpoint_verify_trusted("http://gpu.vpn:11434", 0, block, 1, &e, &err), 0);
    assert_int_equal(e.local, 0); /* never more local than declared */
    assert_int_equal(e.trusted, 0);
    /* One trusted address among others that are not: still cloud. */
    assert_int_equal(egr_endpoint_verify_trusted("http://sneaky.lan:1", 1, addr, 1, &e, &err), 0);
    assert_int_equal(e.local, 0);
    egr_set_resolver(NULL, NULL);
    assert_int_equal(egr_endpoint_verify_trusted("http://198.51.100.4:1", 1, addr, 1, &e, &err), 0);
    assert_int_equal(e.local, 1); /* an address literal listed as it is */
    assert_int_equal(egr_endpoint_verify_trusted("http://[2001:db8::7]:1", 1, v6, 1, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_int_equal(egr_endpoint_verify_trusted("http://[2001:db9::7]:1", 1, v6, 1, &e, &err), 0);
    assert_int_equal(e.local, 0);
}

static void egress_numeric_host_forms_are_judged_by_their_address(void **state)
{
    struct egr_endpoint e;
    struct bh_err err = {0};
    (void)state;
    /* Decimal, octal and hex IPv4 forms are parsed locally (no DNS). */
    assert_int_equal(egr_endpoint_verify("http://2130706433:1", 1, &e, &err), 0);
    assert_int_equal(e.local, 1);
    assert_string_equal(e.addr, "127.0.0.1");
    assert_int_equal(egr_endpoint_verify("http://0x08080808:1", 1, &e, &err), 0);
    assert_int_equal(e.local, 0);
    assert_int_equal(egr_endpoint_verify("http://0177.0.0.1:1", 1, &e, &err), 0);
    assert_int_equal(e.local, 1);
}

static void egress_rejects_bad_urls(void **state)
{
    static const struct {
        const char *url, *msg;
    } cases[] = {
        {"not a url", "is not a valid URL"},
        {"127.0.0.1:11434", "is not a valid URL"},
        {"http://", "is not a valid URL"},
        {"ftp://127.0.0.1/", "unsupported scheme (known: http, https)"},
        {"file:///etc/passwd", "unsupported scheme (known: http, https)"},
        {"http://user:pass@127.0.0.1:1/", "URL has credentials in it"},
        {"http://user@127.0.0.1:1/", "URL has credentials in it"},
    };
    (void)state;
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct egr_endpoint e;
        struct bh_err err = {0};
        if (egr_endpoint_verify(cases[i].url, 1, &e, &err) != BH_EINVAL)
            fail_msg("'%s' should be refused", cases[i].url);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("'%s': message \"%s\" lacks \"%s\"", cases[i].url, err.msg, cases[i].msg);
        assert_null(strstr(err.msg, "pass@")); /* credentials are not echoed */
    }
}

/* --- the gate ---------------------------------------------------------------- */

enum { EP_LOCAL, EP_CLOUD };
enum { ST_REVIEW, ST_SUMMARY, ST_SNEAKY };
enum { L_PUBLIC, L_INTERNAL, L_CONFIDENTIAL, L_RESTRICTED };

struct fixture {
    struct mini_httpd *local_srv, *cloud_srv;
    struct pipeline *p;
    struct store *store;
    struct egr_gate *gate;
    char dir[64];
};

static void endpoint_init(struct pipe_endpoint *e, const char *name, int port, int local)
{
    e->name = bh_xstrdup(name);
    e->provider = bh_xstrdup("ollama");
    e->url = bh_xasprintf("http://127.0.0.1:%d/", port); /* a trailing slash on purpose */
    e->declared_local = local;
    e->clearance = local ? -1 : L_INTERNAL;
    e->max_concurrency = 1;
    e->timeout_s = 30;
}

static void stage_init(struct pipe_stage *s, const char *name, size_t ep, const char *model)
{
    s->name = bh_xstrdup(name);
    s->endpoint = ep;
    s->model = bh_xstrdup(model);
    s->clearance = -1;
}

static struct pipeline *pipeline_new(int local_port, int cloud_port)
{
    static const char *const labels[] = {"public", "internal", "confidential", "restricted"};
    struct pipeline *p = bh_xcalloc(1, sizeof(*p));
    p->name = bh_xstrdup("egress-test");
    p->n_labels = 4;
    p->labels = bh_xcalloc(4, sizeof(char *));
    for (size_t i = 0; i < 4; i++)
        p->labels[i] = bh_xstrdup(labels[i]);
    p->n_endpoints = 2;
    p->endpoints = bh_xcalloc(2, sizeof(*p->endpoints));
    endpoint_init(&p->endpoints[EP_LOCAL], "local", local_port, 1);
    endpoint_init(&p->endpoints[EP_CLOUD], "cloud", cloud_port, 0);
    p->n_stages = 3;
    p->stages = bh_xcalloc(3, sizeof(*p->stages));
    stage_init(&p->stages[ST_REVIEW], "review", EP_LOCAL, "qwen2.5-coder:7b");
    stage_init(&p->stages[ST_SUMMARY], "summary", EP_CLOUD, "gpt-oss:120b");
    stage_init(&p->stages[ST_SNEAKY], "sneaky", EP_LOCAL, "gpt-oss:20b-cloud");
    p->order = bh_xcalloc(3, sizeof(size_t));
    for (size_t i = 0; i < 3; i++)
        p->order[i] = i;
    return p;
}

static void pipeline_release(struct pipeline *p)
{
    for (size_t i = 0; i < p->n_labels; i++)
        free(p->labels[i]);
    for (size_t i = 0; i < p->n_endpoints; i++) {
        struct pipe_endpoint *e = &p->endpoints[i];
        free(e->name);
        free(e->provider);
        free(e->url);
        free(e->api_key_env);
    }
    for (size_t i = 0; i < p->n_stages; i++) {
        free(p->stages[i].name);
        free(p->stages[i].model);
    }
    free(p->labels);
    free(p->endpoints);
    free(p->stages);
    free(p->order);
    free(p->name);
    free(p);
}

static int gate_setup(void **state)
{
    struct fixture *f = bh_xcalloc(1, sizeof(*f));
    struct bh_err err = {0};
    f->local_srv = mini_httpd_start();
    f->cloud_srv = mini_httpd_start();
    f->p = pipeline_new(mini_httpd_port(f->local_srv), mini_httpd_port(f->cloud_srv));
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-test-egress-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(store_open(&f->store, f->dir, &err), 0);
    assert_int_equal(egr_new(&f->gate, f->p, f->store, 42, &err), 0);
    unsetenv(KEY_VAR);
    *state = f;
    return 0;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *path = bh_xasprintf("%s/%s", dir, de->d_name);
        unlink(path);
        free(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int gate_teardown(void **state)
{
    struct fixture *f = *state;
    egr_free(f->gate);
    store_free(f->store);
    remove_dir(f->dir);
    pipeline_release(f->p);
    mini_httpd_stop(f->local_srv);
    mini_httpd_stop(f->cloud_srv);
    unsetenv(KEY_VAR);
    free(f);
    return 0;
}

/* What came back for one request. */
struct outcome {
    int done_calls;
    struct egr_result r;
    char reply[256];
    size_t reply_len;
};

static int on_data(void *ud, const char *data, size_t len)
{
    struct outcome *o = ud;
    if (len > sizeof(o->reply) - 1 - o->reply_len)
        return 1;
    memcpy(o->reply + o->reply_len, data, len);
    o->reply_len += len;
    return 0;
}

static void on_done(void *ud, const struct egr_result *r)
{
    struct outcome *o = ud;
    o->done_calls++;
    o->r = *r;
}

static const char BODY[] =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"diff\"}]}";

static int send_label(struct fixture *f, size_t stage, int label, struct outcome *o,
                      struct bh_err *err)
{
    memset(o, 0, sizeof(*o));
    struct egr_send_req r = {
        .stage = stage,
        .item = "pr-7",
        .path = "/api/chat",
        .body = BODY,
        .body_len = sizeof(BODY) - 1,
        .label = label,
        .max_reply = 4096,
        .on_data = on_data,
        .on_done = on_done,
        .ud = o,
    };
    return egr_send(f->gate, &r, err);
}

static void run_all(struct egr_gate *g)
{
    struct bh_err err = {0};
    for (int i = 0; i < 300 && egr_in_flight(g) > 0; i++)
        assert_int_equal(egr_step(g, 100, &err), 0);
    assert_int_equal(egr_in_flight(g), 0);
}

/* The audit log, copied out of the store. */
struct record {
    char item[32], stage[32], endpoint[32], url[128], locality[16], model[64];
    char label[32], clearance[32], decision[16], reason[320], sha[65];
    int64_t run_id, bytes;
};

struct audit_log {
    struct record rec[8];
    size_t n;
    int secret_seen;
};

#define CP(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

static int collect(void *ud, const struct store_audit *a)
{
    struct audit_log *log = ud;
    const char *fields[] = {a->item,           a->stage,     a->endpoint,  a->url,      a->locality,
                            a->model,          a->label,     a->clearance, a->decision, a->reason,
                            a->payload_sha256, a->prev_hash, a->hash,      a->time};
    for (size_t i = 0; i < BH_NELEM(fields); i++)
        if (fields[i] && strstr(fields[i], SECRET))
            log->secret_seen = 1;
    if (log->n == sizeof(log->rec) / sizeof(log->rec[0]))
        return 0;
    struct record *r = &log->rec[log->n++];
    CP(r->item, a->item);
    CP(r->stage, a->stage);
    CP(r->endpoint, a->endpoint);
    CP(r->url, a->url);
    CP(r->locality, a->locality);
    CP(r->model, a->model);
    CP(r->label, a->label);
    CP(r->clearance, a->clearance);
    CP(r->decision, a->decision);
    CP(r->reason, a->reason);
    CP(r->sha, a->payload_sha256);
    r->run_id = a->run_id;
    r->bytes = a->bytes;
    return 0;
}

static void read_audit(struct fixture *f, struct audit_log *log)
{
    struct bh_err err = {0};
    memset(log, 0, sizeof(*log));
    assert_int_equal(store_audit_each(f->store, collect, log, &err), 0);
}

static void assert_record(const struct record *r, const char *stage, const char *endpoint,
                          const char *locality, const char *label, const char *clearance,
                          const char *decision)
{
    char sha[BH_SHA256_HEX];
    bh_sha256_hex(BODY, sizeof(BODY) - 1, sha);
    assert_int_equal(r->run_id, 42);
    assert_string_equal(r->item, "pr-7");
    assert_string_equal(r->stage, stage);
    assert_string_equal(r->endpoint, endpoint);
    assert_string_equal(r->locality, locality);
    assert_string_equal(r->label, label);
    assert_string_equal(r->clearance, clearance);
    assert_string_equal(r->decision, decision);
    assert_string_equal(r->sha, sha);
    assert_int_equal(r->bytes, sizeof(BODY) - 1);
}

static char *url_for(const struct mini_httpd *srv)
{
    return bh_xasprintf("http://127.0.0.1:%d/api/chat", mini_httpd_port(srv));
}

/* A request for the local stage on path (a slow one stays in flight). */
static int send_path(struct fixture *f, const char *path, struct outcome *o, struct bh_err *err)
{
    memset(o, 0, sizeof(*o));
    struct egr_send_req r = {
        .stage = ST_REVIEW,
        .item = "pr-7",
        .path = path,
        .body = BODY,
        .body_len = sizeof(BODY) - 1,
        .label = L_CONFIDENTIAL,
        .max_reply = 4096,
        .on_data = on_data,
        .on_done = on_done,
        .ud = o,
    };
    return egr_send(f->gate, &r, err);
}

/* The gate's own loop: egr_step drives what egr_send started, and each
 * request ends exactly once, with the gate's result. */
static void egress_step_drives_its_requests_to_their_end(void **state)
{
    struct fixture *f = *state;
    struct outcome a, b;
    struct bh_err err = {0};
    assert_int_equal(egr_in_flight(f->gate), 0);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &a, &err), 0);
    assert_int_equal(send_label(f, ST_SUMMARY, L_INTERNAL, &b, &err), 0);
    assert_int_equal(egr_in_flight(f->gate), 2);
    for (int i = 0; i < 300 && egr_in_flight(f->gate) > 0; i++)
        assert_int_equal(egr_step(f->gate, 100, &err), 0);
    assert_int_equal(egr_in_flight(f->gate), 0);
    assert_int_equal(a.done_calls, 1);
    assert_int_equal(b.done_calls, 1);
    assert_int_equal(a.r.code, 0);
    assert_int_equal(a.r.status, 200);
    assert_int_equal(b.r.status, 200);
    assert_int_equal(egr_step(f->gate, 10, &err), 0); /* nothing in flight: a plain wait */
    assert_int_equal(a.done_calls, 1);
}

/* A run that must stop: every request in flight ends at once, failed with
 * the reason, not to be retried, and the gate has nothing left in flight. */
static void egress_abort_all_ends_each_request_once_with_why(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(send_path(f, "/slow", &o, &err), 0);
    assert_int_equal(egr_step(f->gate, 50, &err), 0);
    assert_int_equal(egr_in_flight(f->gate), 1);
    egr_abort_all(f->gate, "abandoned: the run stopped");
    assert_int_equal(egr_in_flight(f->gate), 0);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_ENET);
    assert_int_equal(o.r.transient, 0);
    assert_non_null(strstr(o.r.error, "abandoned: the run stopped"));
    run_all(f->gate);
    assert_int_equal(o.done_calls, 1);
    egr_abort_all(NULL, "nothing"); /* NULL is fine */
}

/* egr_free with a request in flight stops the loop first: no callback
 * runs after the gate is gone, and nothing leaks (the ASan build). */
static void egress_free_with_a_request_in_flight_calls_nothing(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(send_path(f, "/slow", &o, &err), 0);
    assert_int_equal(egr_step(f->gate, 50, &err), 0);
    egr_free(f->gate);
    f->gate = NULL;
    assert_int_equal(o.done_calls, 0);
}

static void egress_refuses_confidential_to_cloud_stage(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(send_label(f, ST_SUMMARY, L_CONFIDENTIAL, &o, &err), BH_EPOLICY);
    char *msg = bh_xasprintf("stage 'summary': refused to send data labelled confidential to "
                             "endpoint 'cloud' (cloud, %s) whose clearance is internal — keep "
                             "such data on a local stage, or declassify it first",
                             f->p->endpoints[EP_CLOUD].url);
    assert_string_equal(err.msg, msg);
    free(msg);
    assert_int_equal(egr_in_flight(f->gate), 0);
    run_all(f->gate);
    assert_int_equal(o.done_calls, 0);
    assert_int_equal(mini_httpd_connections(f->cloud_srv), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    assert_record(&log.rec[0], "summary", "cloud", "cloud", "confidential", "internal", "refuse");
    assert_string_equal(log.rec[0].reason,
                        "label confidential exceeds clearance internal of stage 'summary' (cloud)");
    char *url = url_for(f->cloud_srv);
    assert_string_equal(log.rec[0].url, url);
    free(url);
    assert_string_equal(log.rec[0].model, "gpt-oss:120b");
}

static void egress_treats_cloud_model_on_local_endpoint_as_cloud(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(send_label(f, ST_SNEAKY, L_CONFIDENTIAL, &o, &err), BH_EPOLICY);
    assert_non_null(strstr(err.msg, "stage 'sneaky': refused to send data labelled "
                                    "confidential to endpoint 'local' (cloud, "));
    run_all(f->gate);
    assert_int_equal(o.done_calls, 0);
    assert_int_equal(mini_httpd_connections(f->local_srv), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    assert_record(&log.rec[0], "sneaky", "local", "cloud", "confidential", "public", "refuse");
    assert_string_equal(log.rec[0].model, "gpt-oss:20b-cloud");
}

static void egress_sends_confidential_to_local_stage(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &o, &err), 0);
    assert_int_equal(egr_in_flight(f->gate), 1);
    run_all(f->gate);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.status, 200);
    assert_string_equal(o.reply, "{\"done\":true}");
    struct mini_req seen;
    assert_int_equal(mini_httpd_requests(f->local_srv), 1);
    assert_int_equal(mini_httpd_request(f->local_srv, 0, &seen), 0);
    assert_string_equal(seen.method, "POST");
    assert_string_equal(seen.path, "/api/chat");
    assert_string_equal(seen.content_type, "application/json");
    assert_int_equal(seen.body_len, sizeof(BODY) - 1);
    assert_memory_equal(seen.body, BODY, sizeof(BODY) - 1);
    assert_string_equal(seen.authorization, "");
    mini_req_release(&seen);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    assert_record(&log.rec[0], "review", "local", "local", "confidential", "restricted", "allow");
    assert_string_equal(log.rec[0].reason, "declared local; 127.0.0.1 is loopback");
    char *url = url_for(f->local_srv);
    assert_string_equal(log.rec[0].url, url);
    free(url);
}

static void egress_sends_internal_to_cloud_stage_within_clearance(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(send_label(f, ST_SUMMARY, L_INTERNAL, &o, &err), 0);
    run_all(f->gate);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(mini_httpd_requests(f->cloud_srv), 1);
    assert_int_equal(mini_httpd_requests(f->local_srv), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    assert_record(&log.rec[0], "summary", "cloud", "cloud", "internal", "internal", "allow");
    assert_string_equal(log.rec[0].reason, "not declared local: cloud");
}

static int contains(const char *buf, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(buf + i, needle, k) == 0)
            return 1;
    return 0;
}

/* Everything the store wrote to disk, searched for the secret. */
static int secret_on_disk(const char *dir)
{
    int found = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *path = bh_xasprintf("%s/%s", dir, de->d_name);
        FILE *fp = de->d_name[0] == '.' ? NULL : fopen(path, "rb");
        char buf[65536 + sizeof(SECRET)];
        size_t keep = 0, n;
        while (fp && (n = fread(buf + keep, 1, sizeof(buf) - keep, fp)) > 0) {
            n += keep;
            found |= contains(buf, n, SECRET);
            keep = n < sizeof(SECRET) ? n : sizeof(SECRET);
            memmove(buf, buf + n - keep, keep);
        }
        if (fp)
            fclose(fp);
        free(path);
    }
    if (d)
        closedir(d);
    return found;
}

static void egress_sends_the_key_to_cloud_stages_only(void **state)
{
    struct fixture *f = *state;
    struct outcome o1, o2;
    struct bh_err err = {0};
    f->p->endpoints[EP_CLOUD].api_key_env = bh_xstrdup(KEY_VAR);
    f->p->endpoints[EP_LOCAL].api_key_env = bh_xstrdup(KEY_VAR);
    setenv(KEY_VAR, SECRET, 1);
    assert_int_equal(send_label(f, ST_SUMMARY, L_INTERNAL, &o1, &err), 0);
    assert_int_equal(send_label(f, ST_REVIEW, L_INTERNAL, &o2, &err), 0);
    assert_int_equal(send_label(f, ST_SUMMARY, L_RESTRICTED, &o2, &err), BH_EPOLICY);
    assert_null(strstr(err.msg, SECRET));
    run_all(f->gate);
    struct mini_req seen;
    assert_int_equal(mini_httpd_request(f->cloud_srv, 0, &seen), 0);
    assert_string_equal(seen.authorization, "Bearer " SECRET);
    mini_req_release(&seen);
    assert_int_equal(mini_httpd_request(f->local_srv, 0, &seen), 0);
    assert_string_equal(seen.authorization, "");
    mini_req_release(&seen);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.secret_seen, 0);
    assert_int_equal(secret_on_disk(f->dir), 0);
}

/* Leak 8: a :cloud model on a local server is a cloud stage, but its request
 * goes to the local server: the key follows the endpoint's verified
 * locality, never the stage's. */
static void egress_sends_no_key_to_a_local_endpoint_for_a_cloud_model(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    f->p->endpoints[EP_LOCAL].api_key_env = bh_xstrdup(KEY_VAR);
    setenv(KEY_VAR, SECRET, 1);
    assert_int_equal(egr_stage_local(f->gate, ST_SNEAKY), 0); /* a cloud stage... */
    assert_int_equal(send_label(f, ST_SNEAKY, L_PUBLIC, &o, &err), 0);
    run_all(f->gate);
    struct mini_req seen;
    assert_int_equal(mini_httpd_request(f->local_srv, 0, &seen), 0); /* ...on the local box */
    assert_string_equal(seen.authorization, "");
    mini_req_release(&seen);
    assert_int_equal(egr_keys_check(f->gate, &err), 0); /* and no key is asked for it */
    unsetenv(KEY_VAR);
    assert_int_equal(egr_keys_check(f->gate, &err), 0);
}

static void egress_sends_no_key_when_the_variable_is_empty(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    f->p->endpoints[EP_CLOUD].api_key_env = bh_xstrdup(KEY_VAR);
    setenv(KEY_VAR, "", 1);
    assert_int_equal(send_label(f, ST_SUMMARY, L_PUBLIC, &o, &err), 0);
    run_all(f->gate);
    struct mini_req seen;
    assert_int_equal(mini_httpd_request(f->cloud_srv, 0, &seen), 0);
    assert_string_equal(seen.authorization, "");
    mini_req_release(&seen);
}

static void egress_unknown_label_counts_as_top(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(send_label(f, ST_SUMMARY, -1, &o, &err), BH_EPOLICY);
    assert_non_null(strstr(err.msg, "data labelled restricted"));
    /* A local stage's clearance is the top label, so unknown still goes there. */
    assert_int_equal(send_label(f, ST_REVIEW, -1, &o, &err), 0);
    run_all(f->gate);
    assert_int_equal(mini_httpd_connections(f->cloud_srv), 0);
    assert_int_equal(mini_httpd_requests(f->local_srv), 1);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 2);
    assert_record(&log.rec[0], "summary", "cloud", "cloud", "restricted", "internal", "refuse");
    assert_non_null(strstr(log.rec[0].reason, "(unknown, counted as the top label)"));
    assert_record(&log.rec[1], "review", "local", "local", "restricted", "restricted", "allow");
}

static void egress_without_a_store_refuses_everything(void **state)
{
    struct fixture *f = *state;
    struct egr_gate *g = NULL;
    struct bh_err err = {0};
    struct outcome o = {0};
    assert_int_equal(egr_new(&g, f->p, NULL, 42, &err), 0);
    struct egr_send_req r = {
        .stage = ST_REVIEW,
        .item = "pr-7",
        .path = "/api/chat",
        .body = BODY,
        .body_len = sizeof(BODY) - 1,
        .label = L_PUBLIC,
        .on_data = on_data,
        .on_done = on_done,
        .ud = &o,
    };
    assert_int_equal(egr_send(g, &r, &err), BH_EPOLICY);
    assert_string_equal(err.msg, "stage 'review': refused to send to endpoint 'local': the "
                                 "gate has no audit store, and nothing leaves unaudited");
    assert_int_equal(egr_in_flight(g), 0);
    run_all(g);
    assert_int_equal(o.done_calls, 0);
    assert_int_equal(mini_httpd_connections(f->local_srv), 0);
    egr_free(g);
}

static void egress_gate_reports_verified_endpoints(void **state)
{
    struct fixture *f = *state;
    const struct egr_endpoint *l = egr_endpoint_info(f->gate, EP_LOCAL);
    const struct egr_endpoint *c = egr_endpoint_info(f->gate, EP_CLOUD);
    assert_non_null(l);
    assert_non_null(c);
    assert_int_equal(l->local, 1);
    assert_int_equal(c->local, 0);
    assert_int_equal(l->port, mini_httpd_port(f->local_srv));
    assert_null(egr_endpoint_info(f->gate, 2));
}

static void egress_new_names_the_endpoint_with_a_bad_url(void **state)
{
    struct fixture *f = *state;
    struct egr_gate *g = NULL;
    struct bh_err err = {0};
    free(f->p->endpoints[EP_CLOUD].url);
    f->p->endpoints[EP_CLOUD].url = bh_xstrdup("ftp://127.0.0.1/");
    assert_int_equal(egr_new(&g, f->p, f->store, 42, &err), BH_EINVAL);
    assert_null(g);
    assert_non_null(strstr(err.msg, "endpoint 'cloud': URL 'ftp://127.0.0.1/' has an "
                                    "unsupported scheme"));
}

static void egress_passes_transport_failures_to_on_done(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    struct egr_gate *g = NULL;
    /* The local box is down: a clear failure, never a fallback elsewhere. */
    free(f->p->endpoints[EP_LOCAL].url);
    f->p->endpoints[EP_LOCAL].url = bh_xstrdup("http://127.0.0.1:1");
    assert_int_equal(egr_new(&g, f->p, f->store, 42, &err), 0);
    egr_free(f->gate);
    f->gate = g;
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &o, &err), 0);
    run_all(f->gate);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_ENET);
    assert_non_null(strstr(o.r.error, "port 1"));
    assert_int_equal(mini_httpd_connections(f->cloud_srv), 0);
}

/* ":local" goes only on a local stage's model, only where the server honours
 * it, never twice and never with enforce_local off; the name stays put while
 * tasks hold it. */
static void egress_adds_local_suffix_only_where_it_is_honoured(void **state)
{
    struct fixture *f = *state;
    const char *review = f->p->stages[ST_REVIEW].model;
    assert_ptr_equal(egr_stage_model(f->gate, ST_REVIEW), review); /* not known to honour it */
    egr_endpoint_set_local_suffix(f->gate, EP_LOCAL, 1);
    const char *wire = egr_stage_model(f->gate, ST_REVIEW);
    assert_string_equal(wire, "qwen2.5-coder:7b:local");
    assert_ptr_equal(egr_stage_model(f->gate, ST_REVIEW), wire);                   /* made once */
    assert_string_equal(egr_stage_model(f->gate, ST_SNEAKY), "gpt-oss:20b-cloud"); /* cloud */
    assert_string_equal(egr_stage_model(f->gate, ST_SUMMARY), "gpt-oss:120b");     /* cloud stage */
    egr_stage_mark_remote(f->gate, ST_REVIEW, "https://ollama.com"); /* a stub: cloud now */
    assert_string_equal(egr_stage_model(f->gate, ST_REVIEW), review);
    free(f->p->stages[ST_REVIEW].model);
    f->p->stages[ST_REVIEW].model = bh_xstrdup("qwen3:8b:LOCAL"); /* said already */
    struct egr_gate *g = NULL;                                    /* a gate without the stub mark */
    struct bh_err err = {0};
    assert_int_equal(egr_new(&g, f->p, f->store, 42, &err), 0);
    egr_endpoint_set_local_suffix(g, EP_LOCAL, 1);
    assert_string_equal(egr_stage_model(g, ST_REVIEW), "qwen3:8b:LOCAL");
    f->p->endpoints[EP_LOCAL].enforce_local = PIPE_ENFORCE_OFF;
    free(f->p->stages[ST_REVIEW].model);
    f->p->stages[ST_REVIEW].model = bh_xstrdup("qwen3:8b");
    assert_string_equal(egr_stage_model(g, ST_REVIEW), "qwen3:8b");
    egr_free(g);
}

/* A stub is a fact of the server's model: marking it by (endpoint, model)
 * marks every stage on it (names compared as Ollama does) and no other,
 * counts only new marks, and caps each at the bottom label. */
static void egress_marks_a_stub_model_for_every_stage_on_it(void **state)
{
    struct fixture *f = *state;
    free(f->p->stages[ST_SUMMARY].model);
    f->p->stages[ST_SUMMARY].model = bh_xstrdup("QWEN2.5-coder:7b"); /* same name, cloud endpoint */
    f->p->stages[ST_REVIEW].clearance = L_CONFIDENTIAL; /* the stage's word cannot raise a stub */
    assert_int_equal(egr_stage_clearance(f->gate, ST_REVIEW), L_CONFIDENTIAL);
    assert_int_equal(egr_model_mark_remote(f->gate, EP_LOCAL, "Qwen2.5-Coder:7b", "h"), 1);
    assert_string_equal(egr_stage_remote(f->gate, ST_REVIEW), "h");
    assert_null(egr_stage_remote(f->gate, ST_SUMMARY)); /* another endpoint */
    assert_null(egr_stage_remote(f->gate, ST_SNEAKY));  /* another model */
    assert_false(egr_stage_local(f->gate, ST_REVIEW));
    assert_int_equal(egr_stage_clearance(f->gate, ST_REVIEW), L_PUBLIC);
    assert_int_equal(egr_model_mark_remote(f->gate, EP_LOCAL, "qwen2.5-coder:7b", "h2"), 0);
    assert_string_equal(egr_stage_remote(f->gate, ST_REVIEW), "h"); /* the first host stays */
    assert_int_equal(egr_model_mark_remote(f->gate, EP_LOCAL, "qwen2.5-coder", "h"), 0);
}

/* The probe's /api/ps is kept for the scheduler: copied (the caller's
 * strings may go), replaced when set again, unknown until set. */
static void egress_keeps_the_probes_loaded_models(void **state)
{
    struct fixture *f = *state;
    const struct egr_loaded *v = NULL;
    size_t n = 9;
    assert_int_equal(egr_endpoint_loaded(f->gate, EP_LOCAL, &v, &n), 0);
    assert_int_equal(n, 9); /* untouched when nothing is known */
    char name[] = "qwen3:8b";
    struct egr_loaded in[2] = {{name, 8192, 0}, {"gpt-oss:120b-cloud", 0, 1}};
    egr_endpoint_set_loaded(f->gate, EP_LOCAL, in, 2);
    name[0] = 'X';
    assert_int_equal(egr_endpoint_loaded(f->gate, EP_LOCAL, &v, &n), 1);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "qwen3:8b");
    assert_int_equal(v[0].context_length, 8192);
    assert_int_equal(v[1].remote, 1);
    egr_endpoint_set_loaded(f->gate, EP_LOCAL, NULL, 0); /* asked again: nothing loaded */
    assert_int_equal(egr_endpoint_loaded(f->gate, EP_LOCAL, &v, &n), 1);
    assert_int_equal(n, 0);
    assert_int_equal(egr_endpoint_loaded(f->gate, 999, &v, &n), 0);
}

static void egress_num_ctx_is_the_stages_else_the_probes(void **state)
{
    struct fixture *f = *state;
    struct egr_model_facts none = EGR_MODEL_FACTS_INIT, f8 = {1, 0, 8192};
    assert_int_equal(egr_stage_facts(f->gate, ST_REVIEW)->listed, none.listed);
    assert_int_equal(egr_stage_facts(f->gate, ST_REVIEW)->loaded, -1);
    assert_int_equal(egr_stage_num_ctx(f->gate, ST_REVIEW), 0); /* the server's default */
    egr_stage_set_facts(f->gate, ST_REVIEW, &f8);
    assert_int_equal(egr_stage_num_ctx(f->gate, ST_REVIEW), 8192);
    assert_int_equal(egr_stage_facts(f->gate, ST_REVIEW)->loaded, 0);
    f->p->stages[ST_REVIEW].num_ctx = 4096; /* options.num_ctx wins */
    assert_int_equal(egr_stage_num_ctx(f->gate, ST_REVIEW), 4096);
    assert_int_equal(egr_stage_num_ctx(f->gate, ST_SUMMARY), 0);
}

/* --- egr_check, egr_audit_cached: answers that are not sent ------------------- */

static struct egr_send_req cached_req(size_t stage, int label)
{
    return (struct egr_send_req){.stage = stage,
                                 .item = "pr-7",
                                 .path = "/api/chat",
                                 .body = BODY,
                                 .body_len = sizeof(BODY) - 1,
                                 .label = label};
}

static void egress_check_refuses_and_audits_as_send_would(void **state)
{
    struct fixture *f = *state;
    struct bh_err err = {0};
    struct egr_send_req r = cached_req(ST_SUMMARY, L_CONFIDENTIAL);
    assert_int_equal(egr_check(f->gate, &r, &err), BH_EPOLICY);
    assert_non_null(strstr(err.msg, "stage 'summary': refused to send data labelled "
                                    "confidential to endpoint 'cloud'"));
    assert_int_equal(egr_in_flight(f->gate), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    assert_record(&log.rec[0], "summary", "cloud", "cloud", "confidential", "internal", "refuse");
    assert_int_equal(mini_httpd_connections(f->cloud_srv), 0);
}

static void egress_check_allows_without_a_record_or_a_request(void **state)
{
    struct fixture *f = *state;
    struct bh_err err = {0};
    struct egr_send_req r = cached_req(ST_SUMMARY, L_INTERNAL);
    assert_int_equal(egr_check(f->gate, &r, &err), 0);
    assert_int_equal(egr_in_flight(f->gate), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 0);
}

static void egress_audits_a_cached_answer_with_no_bytes_sent(void **state)
{
    struct fixture *f = *state;
    struct bh_err err = {0};
    struct egr_send_req r = cached_req(ST_REVIEW, L_CONFIDENTIAL);
    assert_int_equal(egr_audit_cached(f->gate, &r, &err), 0);
    assert_int_equal(egr_in_flight(f->gate), 0);
    run_all(f->gate);
    assert_int_equal(mini_httpd_connections(f->local_srv), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    char sha[BH_SHA256_HEX];
    bh_sha256_hex(BODY, sizeof(BODY) - 1, sha);
    assert_string_equal(log.rec[0].decision, "cached");
    assert_string_equal(log.rec[0].label, "confidential");
    assert_string_equal(log.rec[0].clearance, "restricted");
    assert_string_equal(log.rec[0].sha, sha);
    assert_int_equal(log.rec[0].bytes, 0);
    assert_string_equal(log.rec[0].reason, "answered from the response cache, nothing sent "
                                           "(declared local; 127.0.0.1 is loopback)");
}

static void egress_cached_answer_above_clearance_is_a_refusal(void **state)
{
    struct fixture *f = *state;
    struct bh_err err = {0};
    struct egr_send_req r = cached_req(ST_SNEAKY, L_CONFIDENTIAL);
    assert_int_equal(egr_audit_cached(f->gate, &r, &err), BH_EPOLICY);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    assert_string_equal(log.rec[0].decision, "refuse");
    assert_string_equal(log.rec[0].locality, "cloud");
}

/* Group commit: inside a group egr_send writes the record into the open
 * batch and only queues the request. Nothing reaches the server until
 * egr_step has committed the batch; then the request goes out and ends. */
static void egress_group_sends_nothing_before_the_commit(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(egr_group_begin(f->gate, &err), 0);
    assert_int_equal(store_batch_open(f->store), 1);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &o, &err), 0);
    assert_int_equal(egr_in_flight(f->gate), 1); /* queued counts */
    assert_int_equal(mini_httpd_connections(f->local_srv), 0);
    assert_int_equal(mini_httpd_requests(f->local_srv), 0);
    /* Another connection sees no record yet: it is not durable. */
    sqlite3 *other = NULL;
    char *db = bh_xasprintf("%s/state.db", f->dir);
    assert_int_equal(sqlite3_open_v2(db, &other, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(other, "SELECT count(*) FROM audit", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_reset(st);
    run_all(f->gate); /* the first step commits, then sends */
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.status, 200);
    assert_int_equal(mini_httpd_requests(f->local_srv), 1);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(other);
    free(db);
    assert_int_equal(egr_group_end(f->gate, &err), 0);
    assert_int_equal(store_batch_open(f->store), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    assert_record(&log.rec[0], "review", "local", "local", "confidential", "restricted", "allow");
}

/* A request sent from a callback inside egr_step (an agent's next turn, a
 * retry): queued with its record in the new batch, it does not leave in the
 * step that made it, only after the next step's commit. */
struct chain {
    struct fixture *f;
    struct outcome first, second;
    int rc;
    int server_saw; /* requests the server had when the first one ended */
};

static void chain_done(void *ud, const struct egr_result *r)
{
    struct chain *c = ud;
    struct bh_err err = {0};
    c->first.done_calls++;
    c->first.r = *r;
    c->server_saw = mini_httpd_requests(c->f->local_srv);
    c->rc = send_label(c->f, ST_REVIEW, L_CONFIDENTIAL, &c->second, &err);
}

static void egress_group_send_from_a_callback_waits_for_the_next_commit(void **state)
{
    struct fixture *f = *state;
    struct chain c = {.f = f, .rc = -1};
    struct bh_err err = {0};
    assert_int_equal(egr_group_begin(f->gate, &err), 0);
    struct egr_send_req r = {.stage = ST_REVIEW,
                             .item = "pr-7",
                             .path = "/api/chat",
                             .body = BODY,
                             .body_len = sizeof(BODY) - 1,
                             .label = L_CONFIDENTIAL,
                             .max_reply = 4096,
                             .on_done = chain_done,
                             .ud = &c};
    assert_int_equal(egr_send(f->gate, &r, &err), 0);
    for (int i = 0; i < 300 && c.first.done_calls == 0; i++)
        assert_int_equal(egr_step(f->gate, 100, &err), 0);
    assert_int_equal(c.first.done_calls, 1);
    assert_int_equal(c.rc, 0);
    assert_int_equal(egr_in_flight(f->gate), 1); /* the second, queued */
    assert_int_equal(mini_httpd_requests(f->local_srv), c.server_saw);
    run_all(f->gate);
    assert_int_equal(c.second.done_calls, 1);
    assert_int_equal(c.second.r.status, 200);
    assert_int_equal(mini_httpd_requests(f->local_srv), 2);
    assert_int_equal(egr_group_end(f->gate, &err), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 2);
}

/* A group whose commit fails (SQLite rolled the batch back, as on a full
 * disk): the queued request ends through on_done unsent, the gate is broken
 * and sends nothing more, and the server never sees a connection. */
static void egress_group_failed_commit_sends_nothing(void **state)
{
    struct fixture *f = *state;
    struct outcome o, later;
    struct bh_err err = {0};
    assert_int_equal(egr_group_begin(f->gate, &err), 0);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &o, &err), 0);
    assert_int_equal(sqlite3_exec(f->store->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(egr_step(f->gate, 10, &err), BH_EINTERNAL);
    assert_non_null(strstr(err.msg, "nothing sent, the audit records of this turn could not be "
                                    "committed"));
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_EINTERNAL);
    assert_int_equal(o.r.transient, 0);
    assert_int_equal(egr_in_flight(f->gate), 0);
    assert_int_equal(egr_audit_broken(f->gate, NULL), 1);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &later, &err), BH_EINTERNAL);
    run_all(f->gate);
    assert_int_equal(later.done_calls, 0);
    assert_int_equal(egr_group_end(f->gate, &err), 0);
    assert_int_equal(mini_httpd_connections(f->local_srv), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 0); /* the record went with the batch */
}

/* A request decided in one turn leaves only after the next commit; if a
 * reply in between showed the model to be a cloud stub (stage.c marks it),
 * the queued request would reach the stub with what was decided for a local
 * model. It is decided again before it goes: refused, audited, never sent. */
static void egress_group_queued_request_to_a_model_found_remote_is_not_sent(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(egr_group_begin(f->gate, &err), 0);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &o, &err), 0);
    assert_int_equal(egr_model_mark_remote(f->gate, EP_LOCAL, "qwen2.5-coder:7b", "stub.example"),
                     1);
    run_all(f->gate);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(o.r.code, BH_EPOLICY);
    assert_int_equal(o.r.transient, 0);
    assert_non_null(strstr(o.r.error, "cloud stub"));
    assert_int_equal(mini_httpd_connections(f->local_srv), 0);
    assert_int_equal(egr_group_end(f->gate, &err), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 2);
    assert_record(&log.rec[0], "review", "local", "local", "confidential", "restricted", "allow");
    assert_string_equal(log.rec[1].decision, "refuse");
    assert_non_null(strstr(log.rec[1].reason, "not sent"));
}

/* --- first contact: the probe before a local model's first request ------------- */

/* The probe's reply as the test reads it: the reply names a remote host or
 * not (the real reader is probe/probe.c's, over providers/). */
static int test_probe_read(void *ud, long status, const char *body, size_t len, char **remote,
                           struct bh_err *err)
{
    (void)len;
    int *reads = ud;
    (*reads)++;
    *remote = NULL;
    if (status != 200)
        return bh_err_set(err, BH_EREPLY, "status %ld", status);
    if (strstr(body, "remote_host"))
        *remote = bh_xstrdup("https://ollama.com:443");
    return 0;
}

static void defer_review_probe(struct fixture *f, int *reads)
{
    egr_set_prober(f->gate, &(struct egr_prober){.read = test_probe_read, .ud = reads});
    egr_probe_defer(f->gate, &(struct egr_probe_need){.endpoint = EP_LOCAL,
                                                      .model = "qwen2.5-coder:7b",
                                                      .keep_alive = "5m",
                                                      .num_ctx = 4096});
}

/* A stub that hides from the lists: the first request waits for the probe,
 * which carries only its fixed text; the reply names a remote host, so the
 * request is decided again and refused. The server saw the probe and
 * nothing else; the audit holds the probe, then the refusal. */
static void egress_first_contact_stub_refuses_what_waited(void **state)
{
    struct fixture *f = *state;
    struct outcome a, b;
    struct bh_err err = {0};
    int reads = 0;
    defer_review_probe(f, &reads);
    mini_httpd_script(f->local_srv, "/api/chat", 200, NULL,
                      "{\"model\":\"qwen2.5-coder:7b\",\"remote_host\":\"https://ollama.com:443\","
                      "\"message\":{\"role\":\"assistant\",\"content\":\"OK\"},\"done\":true}");
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &a, &err), 0);
    assert_int_equal(send_label(f, ST_REVIEW, L_RESTRICTED, &b, &err), 0);
    assert_int_equal(egr_in_flight(f->gate), 3); /* both held, and the probe */
    run_all(f->gate);
    assert_int_equal(reads, 1);
    assert_int_equal(a.done_calls, 1);
    assert_int_equal(b.done_calls, 1);
    assert_int_equal(a.r.code, BH_EPOLICY);
    assert_int_equal(b.r.code, BH_EPOLICY);
    assert_non_null(strstr(a.r.error, "cloud stub"));
    assert_int_equal(mini_httpd_requests(f->local_srv), 1);
    struct mini_req seen;
    assert_int_equal(mini_httpd_request(f->local_srv, 0, &seen), 0);
    assert_non_null(strstr(seen.body, EGR_PROBE_TEXT));
    assert_null(strstr(seen.body, "diff"));
    assert_non_null(strstr(seen.body, "\"num_ctx\":4096"));
    mini_req_release(&seen);
    assert_string_equal(egr_stage_remote(f->gate, ST_REVIEW), "https://ollama.com:443");
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 3);
    assert_string_equal(log.rec[0].stage, "");
    assert_string_equal(log.rec[0].label, "public");
    assert_non_null(strstr(log.rec[0].reason, "probe model"));
    assert_string_equal(log.rec[1].decision, "refuse");
    assert_non_null(strstr(log.rec[1].reason, "cloud stub"));
    assert_string_equal(log.rec[2].decision, "refuse");
}

/* A model that answers from the machine: the probe goes once, the requests
 * that waited go after it in order, and a later request is not held. */
static void egress_first_contact_local_model_lets_them_go(void **state)
{
    struct fixture *f = *state;
    struct outcome a, b, c;
    struct bh_err err = {0};
    int reads = 0;
    defer_review_probe(f, &reads);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &a, &err), 0);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &b, &err), 0);
    run_all(f->gate);
    assert_int_equal(a.r.status, 200);
    assert_int_equal(b.r.status, 200);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &c, &err), 0);
    run_all(f->gate);
    assert_int_equal(c.r.status, 200);
    assert_int_equal(reads, 1);
    assert_int_equal(mini_httpd_requests(f->local_srv), 4); /* the probe and three */
    struct mini_req seen;
    assert_int_equal(mini_httpd_request(f->local_srv, 0, &seen), 0);
    assert_non_null(strstr(seen.body, EGR_PROBE_TEXT));
    mini_req_release(&seen);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 4);
    assert_non_null(strstr(log.rec[0].reason, "probe model"));
    for (size_t i = 1; i < 4; i++)
        assert_record(&log.rec[i], "review", "local", "local", "confidential", "restricted",
                      "allow");
}

/* A probe that fails for good (the server redirects it): what waited ends
 * with its error, not transient, and a later request ends at once with the
 * same error, unsent and without a second probe. */
static void egress_first_contact_probe_failing_for_good_is_not_asked_again(void **state)
{
    struct fixture *f = *state;
    struct outcome a, b;
    struct bh_err err = {0};
    int reads = 0;
    defer_review_probe(f, &reads);
    mini_httpd_script(f->local_srv, "/api/chat", 307, NULL, "{}");
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &a, &err), 0);
    run_all(f->gate);
    assert_int_equal(a.done_calls, 1);
    assert_int_not_equal(a.r.code, 0);
    assert_int_equal(a.r.transient, 0);
    assert_non_null(strstr(a.r.error, "the probe"));
    assert_int_not_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &b, &err), 0);
    assert_non_null(strstr(err.msg, "the probe"));
    assert_int_equal(b.done_calls, 0);
    assert_int_equal(egr_in_flight(f->gate), 0);
    assert_int_equal(mini_httpd_requests(f->local_srv), 1);
    assert_int_equal(reads, 0);
}

/* A probe that reaches no server: what waited ends with its error,
 * transient (the engine tries again later), nothing else is sent, and the
 * next request probes again. A cloud stage is never held. */
static void egress_first_contact_probe_failure_ends_what_waited(void **state)
{
    struct fixture *f = *state;
    struct outcome a, b, cloud;
    struct bh_err err = {0};
    int reads = 0;
    defer_review_probe(f, &reads);
    mini_httpd_stop(f->local_srv);
    f->local_srv = NULL;
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &a, &err), 0);
    assert_int_equal(send_label(f, ST_SUMMARY, L_INTERNAL, &cloud, &err), 0);
    run_all(f->gate);
    assert_int_equal(a.done_calls, 1);
    assert_int_equal(a.r.code, BH_ENET);
    assert_int_equal(a.r.transient, 1);
    assert_non_null(strstr(a.r.error, "the probe"));
    assert_int_equal(cloud.r.status, 200);
    assert_int_equal(reads, 0);
    assert_int_equal(send_label(f, ST_REVIEW, L_CONFIDENTIAL, &b, &err), 0);
    run_all(f->gate);
    assert_int_equal(b.r.code, BH_ENET);
    struct audit_log log;
    read_audit(f, &log);
    size_t probes = 0, stage_records = 0;
    for (size_t i = 0; i < log.n; i++) {
        probes += strstr(log.rec[i].reason, "probe model") != NULL;
        stage_records += strcmp(log.rec[i].stage, "review") == 0;
    }
    assert_int_equal(probes, 2);
    assert_int_equal(stage_records, 0); /* never decided: nothing of it was sent */
}

/* ---- endpoint pools ---- */

/* The fixture's two endpoints as the two hosts of one local pool "gpus"
 * (the loader's form: consecutive, the pool's settings, NAME#K), the second
 * host at second_url (NULL: the cloud server's port, on loopback). */
static int pool_setup_with(void **state, const char *second_url)
{
    struct fixture *f = bh_xcalloc(1, sizeof(*f));
    struct bh_err err = {0};
    f->local_srv = mini_httpd_start();
    f->cloud_srv = mini_httpd_start();
    f->p = pipeline_new(mini_httpd_port(f->local_srv), mini_httpd_port(f->cloud_srv));
    for (size_t h = 0; h < 2; h++) {
        struct pipe_endpoint *e = &f->p->endpoints[h];
        free(e->name);
        e->name = bh_xstrdup("gpus");
        e->host_name = bh_xasprintf("gpus#%zu", h + 1);
        e->declared_local = 1;
        e->clearance = -1;
        e->pool = 0;
        e->n_pool = 2;
        e->host = h;
        e->is_pool = 1;
    }
    if (second_url) {
        free(f->p->endpoints[1].url);
        f->p->endpoints[1].url = bh_xstrdup(second_url);
    }
    f->p->stages[ST_SUMMARY].endpoint = 0;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-test-egress-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(store_open(&f->store, f->dir, &err), 0);
    assert_int_equal(egr_new(&f->gate, f->p, f->store, 42, &err), 0);
    *state = f;
    return 0;
}

static int pool_setup(void **state)
{
    return pool_setup_with(state, NULL);
}

static int pool_public_setup(void **state)
{
    return pool_setup_with(state, "http://192.0.2.10:11434"); /* TEST-NET-1: never contacted */
}

static int pool_teardown(void **state)
{
    struct fixture *f = *state;
    for (size_t h = 0; h < 2; h++) {
        free(f->p->endpoints[h].host_name);
        f->p->endpoints[h].host_name = NULL;
    }
    return gate_teardown(state);
}

/* The engine places a request on a host of the stage's pool: it goes there
 * (pinned to that host's verified address), and the audit names the host. */
static void egress_sends_to_the_placed_host_and_audits_its_name(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_true(egr_pool_local(f->gate, 0) && egr_pool_has(f->gate, 0, 1));
    assert_int_equal(egr_stage_local(f->gate, ST_REVIEW), 1);
    memset(&o, 0, sizeof(o));
    struct egr_send_req r = {.stage = ST_REVIEW,
                             .placed = 1,
                             .host = 1,
                             .item = "pr-7",
                             .path = "/api/chat",
                             .body = BODY,
                             .body_len = sizeof(BODY) - 1,
                             .label = L_CONFIDENTIAL,
                             .max_reply = 4096,
                             .on_data = on_data,
                             .on_done = on_done,
                             .ud = &o};
    assert_int_equal(egr_send(f->gate, &r, &err), 0);
    run_all(f->gate);
    assert_int_equal(o.done_calls, 1);
    assert_int_equal(mini_httpd_requests(f->cloud_srv), 1); /* host 2's server */
    assert_int_equal(mini_httpd_requests(f->local_srv), 0);
    struct audit_log log;
    read_audit(f, &log);
    assert_int_equal(log.n, 1);
    assert_record(&log.rec[0], "review", "gpus#2", "local", "confidential", "restricted", "allow");
    char *url = url_for(f->cloud_srv);
    assert_string_equal(log.rec[0].url, url);
    free(url);
}

/* One host that is not local makes the whole pool not local: a stage on
 * it gets nothing at all (its claim did not verify), on any host. */
static void egress_refuses_a_pool_with_one_public_host_on_every_host(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct bh_err err = {0};
    assert_int_equal(egr_endpoint_info(f->gate, 0)->local, 1); /* host 1 itself is loopback */
    assert_int_equal(egr_endpoint_info(f->gate, 1)->local, 0);
    assert_int_equal(egr_pool_local(f->gate, 0), 0);
    assert_int_equal(egr_stage_local(f->gate, ST_REVIEW), 0);
    assert_int_equal(send_label(f, ST_REVIEW, L_PUBLIC, &o, &err), BH_EPOLICY);
    run_all(f->gate);
    assert_int_equal(o.done_calls, 0);
    assert_int_equal(mini_httpd_connections(f->local_srv), 0);
    struct egr_manage_req m = {.endpoint = 0,
                               .kind = EGR_MANAGE_TAGS,
                               .max_reply = 4096,
                               .on_data = on_data,
                               .on_done = on_done,
                               .ud = &o};
    assert_int_equal(egr_send_manage(f->gate, &m, &err), BH_EPOLICY); /* not even a model list */
    assert_int_equal(mini_httpd_connections(f->local_srv), 0);
}

#define G(fn) cmocka_unit_test_setup_teardown(fn, gate_setup, gate_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(egress_classifies_addresses),
        cmocka_unit_test_setup_teardown(egress_sends_to_the_placed_host_and_audits_its_name,
                                        pool_setup, pool_teardown),
        cmocka_unit_test_setup_teardown(egress_refuses_a_pool_with_one_public_host_on_every_host,
                                        pool_public_setup, pool_teardown),
        cmocka_unit_test(egress_verifies_declared_local_loopback),
        cmocka_unit_test(egress_private_address_is_not_local_without_a_trusted_network),
        cmocka_unit_test(egress_trusted_networks_make_private_addresses_local),
        cmocka_unit_test(egress_trusted_networks_from_the_environment),
        cmocka_unit_test(egress_verifies_ipv6_literals),
        cmocka_unit_test(egress_never_makes_an_endpoint_more_local),
        cmocka_unit_test(egress_resolves_localhost_to_loopback),
        cmocka_unit_test(egress_unresolvable_host_is_cloud_without_pin),
        cmocka_unit_test(egress_judges_every_address_a_name_resolves_to),
        cmocka_unit_test(egress_numeric_host_forms_are_judged_by_their_address),
        cmocka_unit_test(egress_trusted_hosts_vouch_only_for_what_they_list),
        cmocka_unit_test(egress_rejects_bad_urls),
        G(egress_first_contact_stub_refuses_what_waited),
        G(egress_first_contact_local_model_lets_them_go),
        G(egress_first_contact_probe_failure_ends_what_waited),
        G(egress_first_contact_probe_failing_for_good_is_not_asked_again),
        G(egress_adds_local_suffix_only_where_it_is_honoured),
        G(egress_marks_a_stub_model_for_every_stage_on_it),
        G(egress_num_ctx_is_the_stages_else_the_probes),
        G(egress_keeps_the_probes_loaded_models),
        G(egress_step_drives_its_requests_to_their_end),
        G(egress_abort_all_ends_each_request_once_with_why),
        G(egress_free_with_a_request_in_flight_calls_nothing),
        G(egress_refuses_confidential_to_cloud_stage),
        G(egress_treats_cloud_model_on_local_endpoint_as_cloud),
        G(egress_sends_confidential_to_local_stage),
        G(egress_sends_internal_to_cloud_stage_within_clearance),
        G(egress_sends_the_key_to_cloud_stages_only),
        G(egress_sends_no_key_to_a_local_endpoint_for_a_cloud_model),
        G(egress_sends_no_key_when_the_variable_is_empty),
        G(egress_unknown_label_counts_as_top),
        G(egress_without_a_store_refuses_everything),
        G(egress_gate_reports_verified_endpoints),
        G(egress_new_names_the_endpoint_with_a_bad_url),
        G(egress_passes_transport_failures_to_on_done),
        G(egress_check_refuses_and_audits_as_send_would),
        G(egress_check_allows_without_a_record_or_a_request),
        G(egress_audits_a_cached_answer_with_no_bytes_sent),
        G(egress_cached_answer_above_clearance_is_a_refusal),
        G(egress_group_sends_nothing_before_the_commit),
        G(egress_group_failed_commit_sends_nothing),
        G(egress_group_queued_request_to_a_model_found_remote_is_not_sent),
        G(egress_group_send_from_a_callback_waits_for_the_next_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
