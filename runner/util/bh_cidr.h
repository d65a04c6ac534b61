/* util/bh_cidr.h — CIDR blocks ("10.8.0.0/16", "fd00::/8") and textual IP
 * addresses, parsed once and matched. The one parser of the tree: the
 * pipeline loader validates trusted_networks and trusted_hosts with it, and
 * egress matches addresses with it, so what the loader accepts is what the
 * gate matches. IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so that
 * "::ffff:10.8.0.1" and "10.8.0.1" fall in the same block. */
#ifndef BH_CIDR_H
#define BH_CIDR_H

#include <stddef.h>

struct bh_cidr {
    unsigned char addr[16]; /* the block's address, IPv4 mapped */
    int prefix;             /* as written: 1..32 for IPv4, 1..128 for IPv6 */
    int v4;                 /* 1 when written as an IPv4 block */
};

enum bh_cidr_status {
    BH_CIDR_OK = 0,
    BH_CIDR_SYNTAX = -1,     /* not ADDRESS/PREFIX (no '/', a bad address, a prefix that is
                                not 1 to 3 digits) */
    BH_CIDR_PREFIX = -2,     /* a prefix above 32 (IPv4) or 128 (IPv6); out->v4 says which */
    BH_CIDR_EVERYTHING = -3, /* prefix 0: every address, never a network anyone owns */
};

/* Parses "ADDRESS/PREFIX" into *out. Returns a bh_cidr_status; out->v4 is
 * set from BH_CIDR_PREFIX on, so that a message can name the range. Bits of
 * the address beyond the prefix are allowed ("10.8.1.0/16" is 10.8.0.0/16). */
int bh_cidr_parse(struct bh_cidr *out, const char *s);

/* A textual IPv4 or IPv6 address (no brackets, no port) as 16 bytes, IPv4
 * mapped. 0, or -1 when s is not an address. */
int bh_cidr_addr(const char *s, unsigned char out[16]);

/* 1 when the textual address ip lies in block c (an IPv4-mapped IPv6 address
 * counts as the IPv4 address it wraps); 0 otherwise, also when ip is not an
 * address. */
int bh_cidr_contains(const struct bh_cidr *c, const char *ip);

/* The smallest customary block around ip to suggest to a user ("10.1.2.0/24"
 * for IPv4, the /64 for IPv6) into out; "" when ip is not an address. */
void bh_cidr_suggest(const char *ip, char *out, size_t size);

#endif
