/* cli/common.c — see header. */
#include "cli/common.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/graph.h"
#include "policy/policy.h"
#include "util/bh_err.h"
#include "store/store.h"
#include "util/bh_xmalloc.h"

int cli_overrides_add(struct cli_overrides *o, const char *cmd, const char *value)
{
    if (!strchr(value, '=') || value[0] == '=')
        return cli_usage_error(cmd, "--endpoint takes NAME=URL, got '%s'", value);
    if (o->n >= sizeof(o->items) / sizeof(o->items[0]))
        return cli_usage_error(cmd, "too many --endpoint options (at most %zu)",
                               sizeof(o->items) / sizeof(o->items[0]));
    o->items[o->n++] = value;
    return 0;
}

int cli_state_open(struct store **out, const char *dir, struct bh_err *err)
{
    char *db = bh_xasprintf("%s/state.db", dir);
    int missing = access(db, F_OK) != 0;
    free(db);
    if (missing)
        return bh_err_set(err, BH_ENOTFOUND,
                          "no bulkhead state in '%s' — run 'bulkhead run' first, or pass "
                          "--state DIR",
                          dir);
    return store_open(out, dir, err);
}

int cli_pipeline_load(struct pipeline **out, const char *path, const struct cli_overrides *o,
                      struct bh_err *err)
{
    struct pipe_load_opts opts = { .endpoint_overrides = o->items, .n_overrides = o->n };
    struct bh_err *errs = NULL;
    size_t n = 0;
    int rc = pipe_load_all(out, path, &opts, &errs, &n);
    /* Every error but the last is printed here; the caller prints the last,
     * so the user sees them all, in file order. */
    for (size_t i = 0; i + 1 < n; i++)
        bh_err_print(&errs[i], stderr);
    if (n)
        *err = errs[n - 1];
    free(errs);
    if (rc == BH_EIO)
        err->code = rc = BH_EINVAL; /* an unreadable pipeline is a usage error: exit 2 */
    return rc;
}

size_t cli_flow_check(const struct pipeline *p, const struct egr_endpoint *eps,
                      struct pol_stage_report *rep)
{
    int *local = bh_xcalloc(p->n_endpoints, sizeof(*local));
    for (size_t i = 0; i < p->n_endpoints; i++)
        local[i] = eps[i].local;
    size_t bad = pol_check(p, local, rep);
    free(local);
    return bad;
}

/* Loopback or private? egress only says "local"; the words check prints
 * tell the two apart. Only consulted for endpoints egress verified local. */
static enum pol_addr_kind addr_kind(const struct egr_endpoint *e)
{
    unsigned char a[16];
    static const unsigned char loop6[16] = { [15] = 1 };
    static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
    if (!e->addr[0])
        return POL_ADDR_UNRESOLVED;
    if (!egr_addr_is_local(e->addr))
        return POL_ADDR_PUBLIC;
    if (inet_pton(AF_INET, e->addr, a) == 1)
        return a[0] == 127 ? POL_ADDR_LOOPBACK : POL_ADDR_PRIVATE;
    if (inet_pton(AF_INET6, e->addr, a) == 1 &&
        (memcmp(a, loop6, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127)))
        return POL_ADDR_LOOPBACK;
    return POL_ADDR_PRIVATE;
}

void cli_flow_graph(struct pol_graph *g, const struct pipeline *p,
                    const struct egr_endpoint *eps)
{
    struct pol_endpoint_fact *facts =
        bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*facts));
    for (size_t i = 0; i < p->n_endpoints; i++)
        facts[i] = (struct pol_endpoint_fact){
            .local = eps[i].local, .addr_kind = addr_kind(&eps[i]),
            /* The loader does not yet say whether "locality" was written out;
             * a missing locality means cloud, so both read as declared. */
            .declared_cloud = !p->endpoints[i].declared_local,
            .host = eps[i].host, .port = eps[i].port, .addr = eps[i].addr,
            .evidence = eps[i].reason,
        };
    pol_graph_init(g, p, facts);
    free(facts);
}
