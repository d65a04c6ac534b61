/* net/net.h — HTTP over libcurl's multi interface: one loop drives every
 * transfer. This module knows nothing of policy; it is private to the gate:
 * only runner/egress/ includes this header and links bh_net (ci/lint.sh,
 * net-behind-the-gate), and only runner/net/ calls curl (only-net-calls-curl).
 * It applies whatever pinning and peer checks egress asks for.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef NET_NET_H
#define NET_NET_H

#include <stddef.h>

struct bh_err;
struct net;

struct net_result {
    int code; /* 0, or BH_ENET (transport, any 3xx, peer refused, stall), BH_ETOOBIG (reply cap) */
    long status;         /* HTTP status, 0 when none was received */
    char error[256];     /* transport error in words (curl's error buffer), empty when none */
    size_t received;     /* body bytes received */
    int transient;       /* 1 when trying again may help: a connection error, a timeout,
                            a stall, a cut transfer — never a redirect, a refused peer, a cap
                            or a server certificate that does not verify */
    long retry_after_ms; /* from a Retry-After header (seconds or HTTP date), -1 when none */
    int no_first_byte;   /* 1 when first_byte_timeout_ms ran out before any body byte (for
                            a local model: often a load that takes longer than that) */
};

/* Called before the request is sent on a connection, fresh or reused, with the
 * address actually connected to. Return 0 to go on, non-zero to abort the
 * transfer (it then completes with BH_ENET and error naming the refusal). */
typedef int (*net_prereq_fn)(void *ud, const char *peer_ip, int peer_port);
/* Body bytes as they arrive. Non-zero aborts the transfer. */
typedef int (*net_data_fn)(void *ud, const char *data, size_t len);
/* Exactly once per submitted request, from net_step. */
typedef void (*net_done_fn)(void *ud, const struct net_result *r);

struct net_req {
    const char *url;
    const char *method; /* "GET" or "POST" */
    const char *body;   /* copied by net_submit */
    size_t body_len;
    const char *const *headers; /* "Name: value"; may hold secrets: never logged */
    size_t n_headers;
    long connect_timeout_ms;    /* 0: 10 s */
    long timeout_ms;            /* whole transfer; 0: none */
    long first_byte_timeout_ms; /* from the start to the first body byte; 0: none
                                   (long for local models: a cold load comes first) */
    long idle_timeout_ms;       /* between two body chunks once data flows; 0: none */
    size_t max_reply;           /* cap on body bytes; 0: 64 MiB */
    const char *resolve;        /* "host:port:address" pin (CURLOPT_RESOLVE), or NULL */
    const char *ca_file;        /* PEM file of the CA certificates that verify an https
                                   server, replacing the system store; NULL: the system
                                   store. Verification itself cannot be turned off */
    int no_proxy;               /* 1: ignore proxies from the environment */
    net_prereq_fn prereq;       /* may be NULL */
    net_data_fn on_data;
    net_done_fn on_done;
    void *ud;
};

/* The first call also checks the libcurl loaded at run time: BH_EINVAL
 * naming its version when it is older than 7.85.0 (CURLOPT_PROTOCOLS_STR,
 * CURLOPT_PREREQFUNCTION) or lacks TLS, http or https. */
int net_new(struct net **out, struct bh_err *err);
/* Aborts transfers still in flight without calling their on_done. NULL is fine. */
void net_free(struct net *n);

/* Starts a transfer. Redirects are never followed and a 3xx completes with
 * BH_ENET; only http and https are allowed. Every libcurl option is checked:
 * when libcurl refuses one, the transfer is not started (nothing is sent,
 * on_done is not called) and BH_ENET names the option. */
int net_submit(struct net *n, const struct net_req *req, struct bh_err *err);

/* Stops every transfer in flight and calls its on_done with BH_ENET, not
 * transient, and why as the error: a run that must stop at once still lets
 * each owner of a transfer let go of it. NULL is fine. */
void net_abort_all(struct net *n, const char *why);

/* Transfers submitted and not yet completed. */
size_t net_in_flight(const struct net *n);

/* One turn of the loop: drives transfers, waits up to timeout_ms for
 * activity, and calls on_done for every transfer that completed. */
int net_step(struct net *n, int timeout_ms, struct bh_err *err);

/* Makes the wait of a net_step in progress (or of the next one) return at
 * once: for work that a callback queued while the loop waits. Safe from a
 * callback. NULL is fine. */
void net_wakeup(struct net *n);

/* A URL as libcurl's URL parser (the one that sends) splits it. */
struct net_url {
    char scheme[16]; /* lowercase; "" when none or too long */
    char host[256];  /* brackets of an IPv6 literal removed; "" when none or too long */
    char port[16];   /* digits, the scheme's default when the URL names none; "" when none */
    int credentials; /* 1 when the URL holds a user or a password */
};

/* Splits url. BH_EINVAL with curl's reason when it does not parse as a URL;
 * the parts it lacks are left "" for the caller to judge. */
int net_url_parse(const char *url, struct net_url *out, struct bh_err *err);

#endif
