/* cli/common.c — see header. */
#include "cli/common.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/graph.h"
#include "policy/policy.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "sources/src_files.h"
#include "sources/src_forge.h"
#include "sources/src_git.h"
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

int cli_overrides_take(void *field, int key, const char *cmd, const char *arg)
{
    (void)key;
    return cli_overrides_add(field, cmd, arg) ? CLI_EXIT_USAGE : 0;
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
    struct pipe_load_opts opts = {.endpoint_overrides = o->items, .n_overrides = o->n};
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

/* What kind of address made the endpoint local, or refused it: egress says
 * how (via) and which address failed (bad); check prints the words. */
static enum pol_addr_kind addr_kind(const struct egr_endpoint *e)
{
    if (!e->addr[0])
        return POL_ADDR_UNRESOLVED;
    switch (e->via) {
    case EGR_VIA_LOOPBACK: return POL_ADDR_LOOPBACK;
    case EGR_VIA_NETWORK: return POL_ADDR_NETWORK;
    case EGR_VIA_HOSTS: return POL_ADDR_TRUSTED;
    case EGR_VIA_NONE: break;
    }
    return e->bad[0] && egr_addr_is_private(e->bad) ? POL_ADDR_PRIVATE : POL_ADDR_PUBLIC;
}

void cli_flow_graph(struct pol_graph *g, const struct pipeline *p, const struct egr_endpoint *eps)
{
    struct pol_endpoint_fact *facts =
        bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*facts));
    for (size_t i = 0; i < p->n_endpoints; i++)
        facts[i] = (struct pol_endpoint_fact){
            .local = eps[i].local,
            .addr_kind = addr_kind(&eps[i]),
            /* The loader does not yet say whether "locality" was written out;
             * a missing locality means cloud, so both read as declared. */
            .declared_cloud = !p->endpoints[i].declared_local,
            .host = eps[i].host,
            .port = eps[i].port,
            .addr = eps[i].addr,
            .evidence = eps[i].reason,
        };
    pol_graph_init(g, p, facts);
    free(facts);
}

size_t cli_parse_size(const char *s)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (end == s || s[0] == '-')
        return 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    if (*end || v == 0 || v > (1ULL << 40) >> shift)
        return 0;
    return (size_t)(v << shift);
}

/* --pulls-from: the forge's list; failed pull requests and left-out drafts
 * are notes on stderr. */
static int items_forge(const struct cli_source *src, struct src_item **items, size_t *n,
                       struct bh_err *err)
{
    struct src_forge_opts fo = {.file = src->pulls_from,
                                .repo = src->repo,
                                .base = src->base_set ? src->base : NULL,
                                .max_diff = src->max_diff,
                                .skip_drafts = src->skip_drafts};
    struct src_note *notes = NULL;
    size_t n_notes = 0;
    int rc = src_forge_list(items, n, &notes, &n_notes, &fo, err);
    for (size_t i = 0; rc == 0 && i < n_notes; i++)
        fprintf(stderr, "bulkhead: note: %s: %s\n", notes[i].path, notes[i].why);
    if (rc == 0 && *n == 0)
        fprintf(stderr,
                "bulkhead: warning: '%s' lists no pull request to review — nothing "
                "to do\n",
                src->pulls_from);
    src_notes_free(notes, n_notes);
    return rc;
}

/* At most this many names in the note on skipped empty pull requests. */
#define EMPTY_NAMED 10

/* Drops the items whose diff is empty, saying so in one line: forges keep
 * the heads of merged pull requests, and reviewing an empty diff costs model
 * time for nothing. */
static void drop_empty(const struct cli_source *src, struct src_item **items, size_t *n)
{
    size_t nk = 0, ng = 0;
    for (size_t i = 0; i < *n; i++)
        ng += (*items)[i].empty != 0;
    if (ng == 0)
        return;
    fprintf(stderr,
            "bulkhead: note: %zu pull request%s with an empty diff against '%s' "
            "skipped (already merged?): ",
            ng, ng == 1 ? "" : "s", src->range_base ? src->range_base : src->base);
    ng = 0;
    for (size_t i = 0; i < *n; i++) {
        struct src_item *it = &(*items)[i];
        if (!it->empty) {
            (*items)[nk++] = *it;
            continue;
        }
        if (ng < EMPTY_NAMED)
            fprintf(stderr, "%s%s", ng ? ", " : "", it->key);
        ng++;
        src_item_release(it);
    }
    if (ng > EMPTY_NAMED)
        fprintf(stderr, " and %zu more", ng - EMPTY_NAMED);
    fprintf(stderr, " — --keep-empty to review them\n");
    *n = nk;
}

static int items_git(const struct cli_source *src, struct src_item **items, size_t *n,
                     struct src_loader **loader, struct bh_err *err)
{
    if (src->pulls_from && src->repo && !src->docs)
        return items_forge(src, items, n, err);
    struct src_git_opts so = {.repo = src->repo,
                              .pulls = src->pulls,
                              .more_pulls = src->more_pulls,
                              .n_more_pulls = src->n_more_pulls,
                              .exclude = src->exclude,
                              .n_exclude = src->n_exclude,
                              .base = src->range_base ? src->range_base : src->base,
                              .max_diff = src->max_diff,
                              .head = src->range_head,
                              .forge_pad = 1};
    if (!src->repo || src->docs)
        return bh_err_set(err, BH_EINVAL,
                          "the pipeline's source is kind \"git\": give "
                          "--repo DIR (and --pulls, --base), not --docs");
    int rc = src_git_index(items, n, loader, &so, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < *n; i++)
        if ((*items)[i].note)
            fprintf(stderr, "bulkhead: note: %s\n", (*items)[i].note);
    if (!src->keep_empty && *n > 0)
        drop_empty(src, items, n);
    if (*n == 0 && src->range_head)
        fprintf(stderr, "bulkhead: warning: '%s..%s' changes nothing — nothing to do\n",
                src->range_base, src->range_head);
    else if (*n == 0)
        fprintf(stderr,
                "bulkhead: warning: no ref of '%s' matches '%s'%s with a change to "
                "review — nothing to do (pass --pulls GLOB)\n",
                src->repo, src->pulls, src->n_more_pulls ? " or the other --pulls" : "");
    return 0;
}

static int items_files(const struct cli_source *src, const struct pipeline *p,
                       struct src_item **items, size_t *n, struct bh_err *err)
{
    const struct pipe_source *s = &p->source;
    struct src_files_opts fo = {.root = src->docs,
                                .include = (const char *const *)s->include,
                                .n_include = s->n_include,
                                .exclude = (const char *const *)s->exclude,
                                .n_exclude = s->n_exclude,
                                .max_bytes = (size_t)s->max_bytes};
    struct src_note *notes = NULL;
    size_t n_notes = 0;
    if (!src->docs || src->repo)
        return bh_err_set(err, BH_EINVAL,
                          "the pipeline's source is kind \"files\": give "
                          "--docs DIR, not --repo");
    int rc = src_files_list(items, n, &notes, &n_notes, &fo, err);
    for (size_t i = 0; rc == 0 && i < n_notes; i++)
        fprintf(stderr, "bulkhead: note: %s%s: %s\n", notes[i].read ? "" : "skipped ",
                notes[i].path, notes[i].why);
    if (rc == 0 && *n == 0)
        fprintf(stderr,
                "bulkhead: warning: no document under '%s' matches the source's "
                "include and exclude globs — nothing to do\n",
                src->docs);
    src_notes_free(notes, n_notes);
    return rc;
}

int cli_items_load(const struct cli_source *src, const struct pipeline *p, struct src_item **items,
                   size_t *n, struct src_loader **loader, struct bh_err *err)
{
    *items = NULL;
    *n = 0;
    *loader = NULL;
    if (strcmp(p->source.kind, "files") == 0)
        return items_files(src, p, items, n, err);
    return items_git(src, items, n, loader, err);
}

char *cli_source_identity(const struct cli_source *src)
{
    char real[PATH_MAX];
    const char *dir = src->docs ? src->docs : src->repo ? src->repo : ".";
    const char *where = realpath(dir, real) ? real : dir;
    if (src->docs)
        return bh_xasprintf("files\n%s", where);
    if (src->pulls_from)
        return bh_xasprintf("git-forge\n%s\n%s\n%zu\n%d", where, src->base_set ? src->base : "",
                            src->max_diff, src->skip_drafts);
    if (src->range_head)
        return bh_xasprintf("git-range\n%s\n%s\n%s\n%zu", where, src->range_base, src->range_head,
                            src->max_diff);
    /* The default options give the identity they always gave, so an
     * interrupted run started before these options existed still resumes. */
    struct bh_buf b;
    bh_buf_init(&b, 0);
    (void)bh_buf_printf(&b, "git\n%s\n%s\n%s\n%zu", where, src->pulls, src->base, src->max_diff);
    for (size_t i = 0; i < src->n_more_pulls; i++)
        (void)bh_buf_printf(&b, "\n+%s", src->more_pulls[i]);
    for (size_t i = 0; i < src->n_exclude; i++)
        (void)bh_buf_printf(&b, "\n-%s", src->exclude[i]);
    if (src->keep_empty)
        (void)bh_buf_puts(&b, "\nkeep-empty");
    return bh_buf_detach(&b);
}

int cli_source_range(struct cli_source *src, const char *cmd, const char *value)
{
    const char *dots = strstr(value, "..");
    if (!dots || dots == value || !dots[2] || dots[2] == '.')
        return cli_usage_error(cmd,
                               "--range takes BASE..HEAD (two dots), e.g. "
                               "origin/main..HEAD; got '%s'",
                               value);
    free(src->range_base);
    free(src->range_head);
    src->range_base = bh_xstrndup(value, (size_t)(dots - value));
    src->range_head = bh_xstrdup(dots + 2);
    if (!src->repo)
        src->repo = ".";
    return 0;
}

void cli_source_release(struct cli_source *src)
{
    free(src->range_base);
    free(src->range_head);
    src->range_base = src->range_head = NULL;
    free(src->more_pulls);
    free(src->exclude);
    src->more_pulls = src->exclude = NULL;
    src->n_more_pulls = src->n_exclude = src->cap_more_pulls = src->cap_exclude = 0;
}

/* Appends a glob given on the command line to a list that grows. */
static void glob_add(const char ***v, size_t *n, size_t *cap, const char *glob)
{
    *v = bh_xgrow(*v, cap, *n + 1, sizeof(**v));
    (*v)[(*n)++] = glob;
}

int cli_endpoints_verify(const struct pipeline *p, struct egr_endpoint *eps, struct bh_err *err)
{
    for (size_t i = 0; i < p->n_endpoints; i++) {
        int rc = egr_endpoint_verify_pipe(p, i, &eps[i], err);
        if (rc) {
            bh_err_prefix(err, "endpoint '%s': ", pipe_host_name(&p->endpoints[i]));
            return rc;
        }
    }
    return 0;
}

int cli_source_take(void *field, int key, const char *cmd, const char *arg)
{
    struct cli_source *src = field;
    switch (key) {
    case 'p':
        if (src->pulls_given)
            glob_add(&src->more_pulls, &src->n_more_pulls, &src->cap_more_pulls, arg);
        else
            src->pulls = arg;
        src->pulls_given = 1;
        return 0;
    case 'x': glob_add(&src->exclude, &src->n_exclude, &src->cap_exclude, arg); return 0;
    case 'b':
        src->base = arg;
        src->base_set = 1;
        return 0;
    case 'g': return cli_source_range(src, cmd, arg) ? CLI_EXIT_USAGE : 0;
    default: return cli_usage_error(cmd, "unknown option");
    }
}

int cli_source_check(const struct cli_source *src, const char *cmd)
{
    if (!src->repo && !src->docs)
        return cli_usage_error(cmd, "--repo DIR (pull requests) or --docs DIR (documents) is "
                                    "required");
    if (src->pulls_from &&
        (src->range_head || src->docs || strcmp(src->pulls, "refs/pull/*/head") != 0))
        return cli_usage_error(cmd, "--pulls-from FILE lists the pull requests of --repo DIR: "
                                    "give it without --pulls, --range and --docs");
    if (src->skip_drafts && !src->pulls_from)
        return cli_usage_error(cmd, "--skip-drafts needs --pulls-from FILE (only a forge's "
                                    "list says which pull requests are drafts)");
    return 0;
}

int cli_state_open_run(struct store **out, const char *dir, int64_t *run_id, struct bh_err *err)
{
    int rc = cli_state_open(out, dir, err);
    if (rc == 0 && *run_id == 0 && (rc = store_run_latest(*out, run_id, err)) == BH_ENOTFOUND)
        bh_err_set(err, BH_ENOTFOUND, "no run in state '%s' yet — start one with 'bulkhead run'",
                   dir);
    return rc;
}
