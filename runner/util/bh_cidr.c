/* util/bh_cidr.c — CIDR blocks and addresses (see bh_cidr.h).
 *
 * inet_pton does the address syntax (it refuses "10.8/16", octal and hex
 * forms, brackets and zones), so the only text parsed here is the prefix:
 * 1 to 3 decimal digits, nothing else (no sign, no space, no "16 "). */
#include "util/bh_cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const unsigned char mapped_prefix[12] = {[10] = 0xff, [11] = 0xff};

int bh_cidr_addr(const char *s, unsigned char out[16])
{
    memset(out, 0, 16);
    if (!s)
        return -1;
    if (inet_pton(AF_INET6, s, out) == 1)
        return 0;
    memcpy(out, mapped_prefix, sizeof(mapped_prefix));
    return inet_pton(AF_INET, s, out + 12) == 1 ? 0 : -1;
}

/* 1 to 3 digits as a number, -1 otherwise. */
static int prefix_of(const char *s)
{
    int v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n == 3)
            return -1;
        v = v * 10 + (s[n] - '0');
    }
    return n ? v : -1;
}

int bh_cidr_parse(struct bh_cidr *out, const char *s)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash = s ? strchr(s, '/') : NULL;
    memset(out, 0, sizeof(*out));
    if (!slash || (size_t)(slash - s) >= sizeof(addr))
        return BH_CIDR_SYNTAX;
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    out->v4 = strchr(addr, ':') == NULL;
    int prefix = prefix_of(slash + 1);
    if (bh_cidr_addr(addr, out->addr) < 0 || prefix < 0)
        return BH_CIDR_SYNTAX;
    if (prefix > (out->v4 ? 32 : 128))
        return BH_CIDR_PREFIX;
    if (prefix == 0)
        return BH_CIDR_EVERYTHING;
    out->prefix = prefix;
    return BH_CIDR_OK;
}

int bh_cidr_contains(const struct bh_cidr *c, const char *ip)
{
    unsigned char a[16];
    if (c->prefix <= 0 || bh_cidr_addr(ip, a) < 0)
        return 0;
    /* An IPv6 block written as ::ffff:a.b.c.d/120 and an IPv4 block both
     * compare over the mapped form: the IPv4 prefix counts from bit 96. */
    int bits = c->v4 ? 96 + c->prefix : c->prefix;
    for (int i = 0; i < bits; i++)
        if (((a[i / 8] ^ c->addr[i / 8]) >> (7 - i % 8)) & 1)
            return 0;
    return 1;
}

void bh_cidr_suggest(const char *ip, char *out, size_t size)
{
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN];
    out[0] = '\0';
    if (bh_cidr_addr(ip, a) < 0)
        return;
    if (memcmp(a, mapped_prefix, sizeof(mapped_prefix)) == 0) {
        snprintf(out, size, "%u.%u.%u.0/24", a[12], a[13], a[14]);
        return;
    }
    memset(a + 8, 0, 8);
    if (inet_ntop(AF_INET6, a, text, sizeof(text)))
        snprintf(out, size, "%s/64", text);
}
