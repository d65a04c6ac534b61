/* pipeline/endpoints.c — the `endpoints` section: each endpoint's keys, and
 * the merge of the endpoints that included files declare (include.c reads
 * those files; their endpoints are walked here, in their own file's
 * positions, after the including file's own). Names are collected from every
 * file first, so that a clash names both files and --endpoint can replace
 * the URL of an included endpoint too. Request headers are in headers.c.
 *
 * Credentials are named, never written: api_key_env and basic_auth_env take
 * the name of a variable, and no message echoes what was written there (it
 * may be the secret itself). ca_file is checked for readability here, once;
 * its contents are not part of the pipeline hash (the path is, as part of
 * the file): a renewed CA certificate is not a different run.
 *
 * A pool ("urls") is walked as one endpoint, then split into one endpoint per
 * host (pools_split), consecutive, so that everything after the loader that
 * works per endpoint (verification, pinning, slots, residency) works per host
 * without knowing pools; what must know (a stage's locality is its pool's,
 * a task may run on any host of its pool) asks pool/n_pool/host. */
#include "pipeline/load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/bh_cidr.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* Must list what providers/ implements (a unit test compares the two). */
static const char *const providers[] = {"ollama", "openai", "anthropic"};
static const char *const localities[] = {"local", "cloud"};

const char *const *pipe_provider_names(size_t *n)
{
    *n = BH_NELEM(providers);
    return providers;
}

static int ep_provider(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *s = json_string_value(v);
    for (size_t i = 0; i < BH_NELEM(providers); i++)
        if (strcmp(s, providers[i]) == 0) {
            e->provider = bh_xstrdup(s);
            return 0;
        }
    struct pipe_unknown u = {"provider", s, "valid", NULL, providers, BH_NELEM(providers)};
    return pipe_ld_unknown(ld, path, &u);
}

/* Why not echo the URL: after expansion it may hold credentials. */
static const char *url_problem(const char *url)
{
    const char *rest = NULL;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    if (!rest)
        return url[0] ? "expected a url starting with http:// or https://, e.g. "
                        "\"http://127.0.0.1:11434\""
                      : "the url is empty — write it as http://HOST:PORT";
    if (!*rest || *rest == '/')
        return "the url has no host — write it as http://HOST:PORT";
    return NULL;
}

/* Ollama's own reading of OLLAMA_HOST, so that a pipeline can default to it:
 * without a scheme the address is http and the port 11434 ("gpu-box",
 * "10.0.0.5:11500", "[::1]"); an empty value is 127.0.0.1:11434. A URL with
 * a scheme is left as it is (http://host means port 80, as for Ollama). */
static void ollama_host_url(char **url)
{
    const char *s = *url;
    if (strstr(s, "://"))
        return;
    size_t n = strcspn(s, "/");
    const char *rest = s + n;
    char *hostport = bh_xstrndup(s, n), *out;
    const char *close = strrchr(hostport, ']'), *colon = strrchr(hostport, ':');
    /* Several colons without brackets: a bare IPv6 address, no port. */
    int bare_v6 = hostport[0] != '[' && colon && strchr(hostport, ':') != colon;
    int has_port = colon && !bare_v6 && (!close || colon > close);
    if (!hostport[0])
        out = bh_xasprintf("http://127.0.0.1:11434%s", rest);
    else if (bare_v6)
        out = bh_xasprintf("http://[%s]:11434%s", hostport, rest);
    else
        out = bh_xasprintf("http://%s%s%s", hostport, has_port ? "" : ":11434", rest);
    free(hostport);
    free(*url);
    *url = out;
}

/* --endpoint NAME=URL[,URL...] replaces the file's url or urls; its
 * variables need not be set. Several urls make the endpoint a pool (or
 * replace the pool's hosts); one url on a pool makes it a pool of one. */
static int ep_override(struct pipe_loader *ld, struct pipe_endpoint *e, const char *over, int pool)
{
    size_t n = 1;
    for (const char *c = over; *c; c++)
        n += *c == ',';
    if (n > PIPE_MAX_POOL)
        return pipe_ld_halt(ld, pipe_ld_fail_file(ld,
                                                  "--endpoint %s=...: %zu urls, a pool holds at "
                                                  "most %d hosts",
                                                  e->name, n, PIPE_MAX_POOL));
    char **v = bh_xcalloc(n, sizeof(*v));
    const char *why = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(over, ",");
        v[i] = bh_xstrndup(over, len);
        over += len + (over[len] == ',');
        why = why ? why : url_problem(v[i]);
        for (size_t j = 0; !why && j < i; j++)
            if (strcmp(v[j], v[i]) == 0)
                why = "the same url is given twice — list each host once";
    }
    e->urls = v;
    e->n_urls = n;
    if (n == 1 && !pool) { /* a single url, as before pools */
        e->url = v[0];
        free(v);
        e->urls = NULL;
        e->n_urls = 0;
    }
    if (!why)
        return 0;
    return pipe_ld_halt(ld, pipe_ld_fail_file(ld, "--endpoint %s=...: %s", e->name, why));
}

/* One url of the file: ${VAR} expanded, Ollama's host form completed,
 * checked. *out is set whenever expansion worked (also when the url is bad). */
static int url_expand(struct pipe_loader *ld, const struct pipe_endpoint *e, json_t *v,
                      const char *path, char **out)
{
    int rc = pipe_ld_expect(ld, v, PIPE_JT_STRING, path,
                            "a url, e.g. \"${GPU1_URL:-http://10.8.0.5:11434}\"");
    if (rc)
        return rc;
    rc = pipe_expand_env(json_string_value(v), out, ld->err);
    if (rc)
        return pipe_ld_fail(ld, path, "%s", ld->err->msg);
    if (e->provider && strcmp(e->provider, "ollama") == 0)
        ollama_host_url(out);
    const char *why = url_problem(*out);
    return why ? pipe_ld_fail(ld, path, "%s", why) : 0;
}

static int ep_url(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *over = ld->override[e - ld->p->endpoints];
    if (over)
        return ep_override(ld, e, over, 0);
    return url_expand(ld, e, v, path, &e->url);
}

/* "urls": a pool of hosts, each verified and scheduled on its own. The
 * urls are compared after expansion: two spellings of one host would make
 * one server look like two (twice the slots, loads counted wrong). */
static int ep_urls(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *over = ld->override[e - ld->p->endpoints];
    if (over)
        return ep_override(ld, e, over, 1);
    size_t len = json_array_size(v);
    if (len == 0)
        return pipe_ld_fail(ld, path,
                            "expected at least one url, found none — list the hosts, e.g. "
                            "[\"http://gpu1:11434\", \"http://gpu2:11434\"]");
    if (len > PIPE_MAX_POOL)
        return pipe_ld_fail(ld, path, "too many urls (%zu, a pool holds at most %d hosts)", len,
                            PIPE_MAX_POOL);
    e->urls = bh_xcalloc(len, sizeof(*e->urls));
    int rc = 0;
    for (size_t i = 0; i < len; i++) {
        char elem[PIPE_PATH_MAX];
        char *url = NULL;
        pipe_ld_path_index(elem, path, i);
        int erc = url_expand(ld, e, json_array_get(v, i), elem, &url);
        for (size_t j = 0; erc == 0 && j < e->n_urls; j++)
            if (strcmp(e->urls[j], url) == 0)
                erc = pipe_ld_fail(ld, elem,
                                   "the same url as %s[%zu] (after expansion) — list each host "
                                   "once",
                                   "urls", j);
        if (erc == 0)
            e->urls[e->n_urls++] = url;
        else
            free(url);
        rc = rc ? rc : erc;
    }
    return rc;
}

static int ep_locality(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *s = json_string_value(v);
    if (strcmp(s, "local") == 0 || strcmp(s, "cloud") == 0) {
        e->declared_local = strcmp(s, "local") == 0;
        return 0;
    }
    e->declared_local = -1; /* unreadable: checks on it would be noise (the load fails) */
    struct pipe_unknown u = {
        "locality", s, "valid", "a missing locality means cloud", localities, BH_NELEM(localities)};
    return pipe_ld_unknown(ld, path, &u);
}

static int ep_clearance(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_label(ld, v, path, &((struct pipe_endpoint *)target)->clearance);
}

/* A variable name: letters, digits and '_', not starting with a digit. */
static int env_name_ok(const char *s)
{
    return pipe_name_ok(s, 0) && strchr(s, '-') == NULL && !(s[0] >= '0' && s[0] <= '9');
}

/* The value is never echoed: someone may have pasted the key itself here. */
static int ep_api_key_env(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    const char *s = json_string_value(v);
    if (!env_name_ok(s))
        return pipe_ld_fail(ld, path,
                            "expected the name of an environment variable (letters, digits and "
                            "'_', e.g. \"OLLAMA_API_KEY\") — api_key_env names the variable that "
                            "holds the key, never the key itself");
    /* A key goes only to an endpoint verified cloud: a local server (or one
     * that merely passes for local) has no business with a cloud credential,
     * and a :cloud model on it would otherwise carry the key there. */
    if (((struct pipe_endpoint *)target)->declared_local == 1)
        return pipe_ld_fail(ld, path,
                            "\"api_key_env\" is for cloud endpoints, and this one is "
                            "declared local: bulkhead never sends a cloud key to a local server "
                            "— for a token that the local server (or the proxy in front of it) "
                            "needs, name it in \"headers\", e.g. { \"X-Proxy-Token\": "
                            "\"${GPU_PROXY_TOKEN}\" }, or remove \"api_key_env\"");
    ((struct pipe_endpoint *)target)->api_key_env = bh_xstrdup(s);
    return 0;
}

/* Never echoed either: "alice:s3cret" is the likeliest mistake here. Both
 * keys would send Authorization, and a request carries one. */
static int ep_basic_auth_env(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *s = json_string_value(v);
    if (!env_name_ok(s))
        return pipe_ld_fail(ld, path,
                            "expected the name of an environment variable (letters, digits and "
                            "'_', e.g. \"GPU_PROXY_AUTH\") — basic_auth_env names the variable "
                            "that holds user:password, never the credentials themselves");
    if (e->api_key_env)
        return pipe_ld_fail(ld, path,
                            "\"basic_auth_env\" and \"api_key_env\" would both send "
                            "an Authorization header — an endpoint takes one of them: remove "
                            "one");
    e->basic_auth_env = bh_xstrdup(s);
    return 0;
}

/* ---- ca_file ---- */

/* rel beside the file being walked (the pipeline file, or the included file
 * that declares the endpoint: a shared endpoints file keeps its CA next to
 * it); an absolute path as it is. New string. */
static char *beside(const char *file, const char *rel)
{
    const char *slash = strrchr(file, '/');
    if (rel[0] == '/' || !slash)
        return bh_xstrdup(rel);
    return bh_xasprintf("%.*s/%s", (int)(slash - file), file, rel);
}

/* Read at load time, so that a wrong path is a configuration error with a
 * position, not a TLS failure on the first request; the contents are left
 * to the TLS library, which names what it cannot use. */
static const char *file_problem(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return strerror(errno);
    struct stat st;
    int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    return dir ? "it is a folder" : NULL;
}

static int ep_ca_file(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    char *rel = NULL;
    int rc =
        pipe_ld_nonempty(ld, v, path, "a PEM file of CA certificates, e.g. \"certs/ca.pem\"", &rel);
    if (rc)
        return rc;
    if (e->url && strncmp(e->url, "http://", 7) == 0) {
        free(rel);
        return pipe_ld_fail(ld, path,
                            "ca_file is for https endpoints, and this endpoint's url "
                            "is http — write the url as https://HOST:PORT, or remove "
                            "\"ca_file\"");
    }
    char *file = beside(ld->file, rel);
    free(rel);
    const char *why = file_problem(file);
    if (why) {
        rc = pipe_ld_fail(ld, path,
                          "cannot read the CA file \"%s\": %s — ca_file names a PEM "
                          "file, relative to the folder of the file that declares the endpoint "
                          "(or absolute)",
                          file, why);
        free(file);
        return rc;
    }
    e->ca_file = file;
    return 0;
}

/* ---- trusted_hosts ---- */

/* "10.8.0.0/16", "fd00::/8", through the tree's one CIDR parser (the gate
 * matches with the same). A block of every address (prefix 0) would make
 * every server local: refused. */
static int cidr_check(struct pipe_loader *ld, const char *s, const char *path)
{
    struct bh_cidr c;
    switch (bh_cidr_parse(&c, s)) {
    case BH_CIDR_OK: return 0;
    case BH_CIDR_PREFIX:
        return pipe_ld_fail(ld, path,
                            "invalid CIDR block \"%s\": the prefix of an %s block is "
                            "1 to %d",
                            s, c.v4 ? "IPv4" : "IPv6", c.v4 ? 32 : 128);
    case BH_CIDR_EVERYTHING:
        return pipe_ld_fail(ld, path,
                            "\"%s\" would trust every address — list the block of "
                            "your own network, e.g. \"10.8.0.0/16\"",
                            s);
    default:
        return pipe_ld_fail(ld, path,
                            "invalid CIDR block \"%s\" — write ADDRESS/PREFIX, e.g. "
                            "\"10.8.0.0/16\" or \"fd00::/8\"",
                            s);
    }
}

/* A DNS name: labels of letters, digits and '-', 1 to 63 characters, joined
 * by dots; at most 253 characters. */
static int host_name_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

static int host_check(struct pipe_loader *ld, const char *s, const char *path)
{
    unsigned char buf[16];
    if (strchr(s, '/'))
        return cidr_check(ld, s, path);
    if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1 || host_name_ok(s))
        return 0;
    if (s[0] == '[')
        return pipe_ld_fail(ld, path,
                            "invalid host \"%s\" — write an IPv6 address without "
                            "brackets, e.g. \"fd00::5\"",
                            s);
    return pipe_ld_fail(ld, path,
                        "invalid host \"%s\" — write a host name (\"gpu.vpn.example\", "
                        "no port), an address (\"10.8.0.5\") or a CIDR block (\"10.8.0.0/16\")",
                        s);
}

static int ep_trusted_hosts(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    if (e->declared_local == 0)
        return pipe_ld_fail(ld, path,
                            "\"trusted_hosts\" has no effect on an endpoint that is not "
                            "declared local — add \"locality\": \"local\", or remove "
                            "\"trusted_hosts\"");
    return pipe_ld_strings(ld, v, path,
                           "a host name, an address or a CIDR block, e.g. "
                           "\"10.8.0.0/16\"",
                           host_check, &e->trusted_hosts, &e->n_trusted_hosts);
}

/* ---- trusted_networks (top level) ---- */

/* The networks whose private addresses count as local for every endpoint
 * declared local: a private range alone proves nothing (a cloud service can
 * sit behind 10.x on a private link), so the pipeline (or the user, with
 * BULKHEAD_TRUSTED_NETWORKS, which egress reads) names the networks that are
 * its own. Blocks only: a host name belongs in an endpoint's trusted_hosts. */
static int network_check(struct pipe_loader *ld, const char *s, const char *path)
{
    unsigned char a[16];
    if (strchr(s, '/'))
        return cidr_check(ld, s, path);
    if (bh_cidr_addr(s, a) == 0)
        return pipe_ld_fail(ld, path,
                            "invalid network \"%s\" — a network is a CIDR block: "
                            "write \"%s/%d\" for this one address, or the block of its network, "
                            "e.g. \"10.8.0.0/16\"",
                            s, s, strchr(s, ':') ? 128 : 32);
    return pipe_ld_fail(ld, path,
                        "invalid network \"%s\" — write a CIDR block, e.g. "
                        "\"10.8.0.0/16\" (a host name goes in the endpoint's \"trusted_hosts\")",
                        s);
}

int pipe_ld_trusted_networks(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    return pipe_ld_strings(ld, v, path, "a CIDR block, e.g. \"10.8.0.0/16\"", network_check,
                           &p->trusted_networks, &p->n_trusted_networks);
}

/* ---- enforce_local ---- */

/* In the order of enum pipe_enforce_local. */
static const char *const enforce_values[] = {"auto", "require", "off"};

/* Only a local Ollama server can refuse to forward a model for us: on any
 * other endpoint the key would do nothing, which is worse than an error. */
static int ep_enforce_local(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *s = json_string_value(v);
    size_t i = 0;
    while (i < BH_NELEM(enforce_values) && strcmp(s, enforce_values[i]) != 0)
        i++;
    if (i == BH_NELEM(enforce_values)) {
        struct pipe_unknown u = {"enforce_local value",   s, "valid", NULL, enforce_values,
                                 BH_NELEM(enforce_values)};
        return pipe_ld_unknown(ld, path, &u);
    }
    if (e->provider && strcmp(e->provider, "ollama") != 0)
        return pipe_ld_fail(ld, path,
                            "\"enforce_local\" is for \"ollama\" endpoints (this one "
                            "speaks \"%s\") — remove it",
                            e->provider);
    if (e->declared_local == 0)
        return pipe_ld_fail(ld, path,
                            "\"enforce_local\" has no effect on an endpoint that is not "
                            "declared local — add \"locality\": \"local\", or remove "
                            "\"enforce_local\"");
    e->enforce_local = (enum pipe_enforce_local)i;
    return 0;
}

/* ---- expect_model ---- */

static const char *const expect_model_values[] = {"any", "exact"};

/* A server may answer with another model than the one asked for (llama-server
 * serves its one model whatever the name; an alias on Ollama): "exact" makes
 * such a reply fail its task instead of only being reported. */
static int ep_expect_model(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    const char *s = json_string_value(v);
    size_t i = 0;
    while (i < BH_NELEM(expect_model_values) && strcmp(s, expect_model_values[i]) != 0)
        i++;
    if (i == BH_NELEM(expect_model_values)) {
        struct pipe_unknown u = {
            "expect_model value",         s, "valid", NULL, expect_model_values,
            BH_NELEM(expect_model_values)};
        return pipe_ld_unknown(ld, path, &u);
    }
    ((struct pipe_endpoint *)target)->expect_model_exact = i == 1;
    return 0;
}

static const struct pipe_key endpoint_keys[] = {
    {"provider", PIPE_JT_STRING, 1, ep_provider,
     "the API the endpoint speaks: \"ollama\", \"openai\" or \"anthropic\"", 0, NULL, NULL},
    {"url", PIPE_JT_STRING, 1, ep_url,
     "the base url, e.g. \"${BULKHEAD_LOCAL_URL:-http://127.0.0.1:11434}\"", 0, "urls", NULL},
    {"urls", PIPE_JT_ARRAY, 0, ep_urls,
     "the urls of a pool of local hosts, e.g. [\"http://gpu1:11434\", \"http://gpu2:11434\"]", 0,
     NULL, NULL},
    {"locality", PIPE_JT_STRING, 0, ep_locality, "\"local\" or \"cloud\"", 0, NULL, NULL},
    {"clearance", PIPE_JT_STRING, 0, ep_clearance, "the highest label it may receive", 0, NULL,
     NULL},
    {"max_concurrency", PIPE_JT_INT, 0, NULL, "parallel requests", 0, NULL, NULL},
    {"timeout_s", PIPE_JT_INT, 0, NULL, "seconds per request", 0, NULL, NULL},
    {"connect_timeout_s", PIPE_JT_INT, 0, NULL, "seconds to open a connection", 0, NULL, NULL},
    {"first_byte_timeout_s", PIPE_JT_INT, 0, NULL, "seconds until the reply's first byte", 0, NULL,
     NULL},
    {"idle_timeout_s", PIPE_JT_INT, 0, NULL, "seconds between two chunks of a reply", 0, NULL,
     NULL},
    {"max_attempts", PIPE_JT_INT, 0, NULL, "tries of a request that fails transiently", 0, NULL,
     NULL},
    {"max_loaded_models", PIPE_JT_INT, 0, NULL, "models the server holds at once", 0, NULL, NULL},
    {"max_requests_per_minute", PIPE_JT_INT, 0, NULL, "requests started per minute", 0, NULL, NULL},
    {"api_key_env", PIPE_JT_STRING, 0, ep_api_key_env,
     "the name of the variable holding the key, e.g. \"OLLAMA_API_KEY\"", 0, NULL, NULL},
    {"basic_auth_env", PIPE_JT_STRING, 0, ep_basic_auth_env,
     "the name of the variable holding user:password, e.g. \"GPU_PROXY_AUTH\"", 0, NULL, NULL},
    {"ca_file", PIPE_JT_STRING, 0, ep_ca_file,
     "a PEM file of CA certificates, e.g. \"certs/ca.pem\"", 0, NULL, NULL},
    {"headers", PIPE_JT_OBJECT, 0, pipe_ep_headers,
     "header name to value, e.g. { \"CF-Access-Client-Id\": \"${CF_ACCESS_CLIENT_ID}\" }", 0, NULL,
     NULL},
    {"trusted_hosts", PIPE_JT_ARRAY, 0, ep_trusted_hosts,
     "hosts, addresses or CIDR blocks that count as local, e.g. [\"10.8.0.0/16\"]", 0, NULL, NULL},
    {"enforce_local", PIPE_JT_STRING, 0, ep_enforce_local, "\"auto\", \"require\" or \"off\"", 0,
     NULL, NULL},
    {"expect_model", PIPE_JT_STRING, 0, ep_expect_model,
     "\"any\" (default) or \"exact\": a reply from another model fails its task", 0, NULL, NULL},
};

static const struct pipe_range endpoint_ranges[] = {
    PIPE_RANGE("max_concurrency", struct pipe_endpoint, max_concurrency, 1, 64),
    PIPE_RANGE("timeout_s", struct pipe_endpoint, timeout_s, 1, 86400),
    PIPE_RANGE("connect_timeout_s", struct pipe_endpoint, connect_timeout_s, 1, 600),
    PIPE_RANGE("first_byte_timeout_s", struct pipe_endpoint, first_byte_timeout_s, 1, 86400),
    PIPE_RANGE("idle_timeout_s", struct pipe_endpoint, idle_timeout_s, 1, 86400),
    PIPE_RANGE("max_attempts", struct pipe_endpoint, max_attempts, 1, 10),
    PIPE_RANGE("max_loaded_models", struct pipe_endpoint, max_loaded_models, 1, 64),
    PIPE_RANGE("max_requests_per_minute", struct pipe_endpoint, max_requests_per_minute, 1, 100000),
};

static const struct pipe_schema endpoint_schema = {
    endpoint_keys, BH_NELEM(endpoint_keys),
    "an endpoint is an object: { \"provider\": \"ollama\", \"url\": \"http://...\" }",
    endpoint_ranges, BH_NELEM(endpoint_ranges)};

/* The mistake is on the command line: the error names no position. */
static int override_unknown(struct pipe_loader *ld, const char *ov, size_t n)
{
    struct pipeline *p = ld->p;
    if (n == 0) /* without "=" the value may be a bare url: not echoed */
        return pipe_ld_fail_file(ld, "--endpoint takes NAME=URL, NAME one of the pipeline's "
                                     "endpoints");
    const char **names = bh_xcalloc(p->n_endpoints + 1, sizeof(*names));
    for (size_t j = 0; j < p->n_endpoints; j++)
        names[j] = p->endpoints[j].name;
    char *name = bh_xstrndup(ov, n);
    struct pipe_unknown u = {"endpoint",
                             name,
                             "known",
                             "--endpoint takes NAME=URL, NAME "
                             "one of the pipeline's endpoints",
                             names,
                             p->n_endpoints};
    char msg[sizeof(ld->err->msg)];
    pipe_unknown_format(msg, sizeof(msg), &u);
    free(name);
    free(names);
    return pipe_ld_fail_file(ld, "--endpoint: %s", msg);
}

/* --endpoint NAME=URL: each NAME must be an endpoint of the file; a later
 * override of the same NAME wins, as later options do. */
static int overrides_resolve(struct pipe_loader *ld)
{
    const struct pipe_load_opts *o = ld->opts;
    struct pipeline *p = ld->p;
    ld->override = bh_xcalloc(p->n_endpoints ? p->n_endpoints : 1, sizeof(*ld->override));
    for (size_t i = 0; o && i < o->n_overrides; i++) {
        const char *ov = o->endpoint_overrides[i], *eq = strchr(ov, '=');
        size_t n = eq ? (size_t)(eq - ov) : 0, k = 0;
        while (k < p->n_endpoints &&
               !(strlen(p->endpoints[k].name) == n && strncmp(p->endpoints[k].name, ov, n) == 0))
            k++;
        if (k < p->n_endpoints) {
            ld->override[k] = eq + 1;
            continue;
        }
        return pipe_ld_halt(ld, override_unknown(ld, ov, n));
    }
    return 0;
}

/* ---- names, from the file and its included files ---- */

static void endpoint_init(struct pipe_endpoint *ep, const char *name, const char *from)
{
    ep->name = bh_xstrdup(name);
    ep->included_from = from ? bh_xstrdup(from) : NULL;
    ep->clearance = -1;
    ep->max_concurrency = 1;
    ep->timeout_s = 600;
    ep->connect_timeout_s = 10;
    ep->first_byte_timeout_s = 300;
    ep->idle_timeout_s = 60;
    ep->max_attempts = 3;
}

static const struct pipe_endpoint *endpoint_named(const struct pipeline *p, const char *name)
{
    for (size_t i = 0; i < p->n_endpoints; i++)
        if (strcmp(p->endpoints[i].name, name) == 0)
            return &p->endpoints[i];
    return NULL;
}

/* The names of one file's `endpoints` (v, at path), in the file being walked;
 * inc is its index in ld->inc_files, or -1 for the pipeline file. */
static int endpoints_names(struct pipe_loader *ld, json_t *v, const char *path, long inc)
{
    struct pipeline *p = ld->p;
    const char *key;
    json_t *e;
    int rc = 0;
    json_object_foreach(v, key, e)
    {
        if (!pipe_name_ok(key, 1)) /* stages name endpoints: their checks would be noise */
            return pipe_ld_halt(ld, pipe_ld_fail_key(ld, path, key,
                                                     "invalid endpoint name \"%s\" — use "
                                                     "letters, digits, '_', '-' and '.'",
                                                     key));
        const struct pipe_endpoint *had = endpoint_named(p, key);
        if (had) {
            rc = pipe_ld_fail_key(ld, path, key,
                                  "endpoint \"%s\" is declared in %s and again "
                                  "in %s — endpoint names must be unique across the pipeline "
                                  "and its included files: rename one",
                                  key, had->included_from ? had->included_from : p->file, ld->file);
            continue;
        }
        ld->ep_inc[p->n_endpoints] = inc;
        endpoint_init(&p->endpoints[p->n_endpoints++], key,
                      inc >= 0 ? ld->inc_files[inc].file : NULL);
    }
    return rc;
}

static json_t *inc_endpoints(const struct pipe_include_load *inc)
{
    json_t *v = json_object_get(inc->root, "endpoints");
    return json_is_object(v) ? v : NULL;
}

static int all_names(struct pipe_loader *ld, json_t *v, const char *path)
{
    int rc = v ? endpoints_names(ld, v, path, -1) : 0;
    for (size_t k = 0; !ld->halt && k < ld->n_inc; k++) {
        struct pipe_ld_place saved;
        json_t *ev = inc_endpoints(&ld->inc_files[k]);
        if (!ev)
            continue;
        pipe_ld_enter(ld, &ld->inc_files[k], &saved);
        int irc = endpoints_names(ld, ev, "endpoints", (long)k);
        pipe_ld_leave(ld, &saved);
        rc = rc ? rc : irc;
    }
    return rc;
}

static size_t count_all(const struct pipe_loader *ld, json_t *v)
{
    size_t n = v ? json_object_size(v) : 0;
    for (size_t k = 0; k < ld->n_inc; k++)
        n += json_object_size(inc_endpoints(&ld->inc_files[k]));
    return n;
}

static int pool_check(struct pipe_loader *ld, const struct pipe_endpoint *e, json_t *obj,
                      const char *path);

/* Walks endpoint i in the file that declares it. */
static int endpoint_walk(struct pipe_loader *ld, size_t i, json_t *v, const char *path)
{
    struct pipe_endpoint *e = &ld->p->endpoints[i];
    struct pipe_ld_place saved = {0};
    long k = ld->ep_inc[i];
    if (k >= 0) {
        pipe_ld_enter(ld, &ld->inc_files[k], &saved);
        v = inc_endpoints(&ld->inc_files[k]);
        path = "endpoints";
    }
    char child[PIPE_PATH_MAX];
    pipe_ld_path_key(child, path, e->name);
    const struct pipe_pos *pos = pipe_posindex_get(ld->ix, child);
    e->line = pos ? pos->line : 0;
    e->col = pos ? pos->col : 0;
    json_t *obj = json_object_get(v, e->name);
    int rc = pipe_ld_object(ld, &endpoint_schema, obj, child, e);
    int prc = pool_check(ld, e, obj, child);
    if (k >= 0)
        pipe_ld_leave(ld, &saved);
    return rc ? rc : prc;
}

/* ---- pools ---- */

/* What a pool may be: "url" or "urls", not both; and only local. A cloud
 * service balances behind its one url, and a pool's hosts are never
 * another endpoint's: the engine drains a failed host into the rest of its
 * pool, so every host must be as local as the pool claims. */
static int pool_check(struct pipe_loader *ld, const struct pipe_endpoint *e, json_t *obj,
                      const char *path)
{
    if (json_object_get(obj, "url") && json_object_get(obj, "urls"))
        return pipe_ld_fail_key(ld, path, "urls",
                                "an endpoint takes \"url\" (one host) or \"urls\" (a pool of "
                                "hosts), not both — remove one");
    if (e->n_urls == 0 || e->declared_local != 0)
        return 0;
    const char *why = "a pool of hosts (several urls) is for endpoints declared local — a cloud "
                      "service balances behind its one url: give it one \"url\", or add "
                      "\"locality\": \"local\" if these hosts are your own";
    if (ld->override[e - ld->p->endpoints] && !json_object_get(obj, "urls"))
        return pipe_ld_fail_file(ld, "--endpoint %s=...: %s", e->name, why);
    char at[PIPE_PATH_MAX];
    pipe_ld_path_key(at, path, "urls");
    return pipe_ld_fail(ld, json_object_get(obj, "urls") ? at : path, "%s", why);
}

static void strv_copy(char ***dst, char *const *src, size_t n)
{
    *dst = bh_xcalloc(n ? n : 1, sizeof(**dst));
    for (size_t i = 0; i < n; i++)
        (*dst)[i] = bh_xstrdup(src[i]);
}

/* Host h of pool e: a copy of every setting (strings owned) but the url. */
static void host_make(struct pipe_endpoint *out, const struct pipe_endpoint *e, size_t h)
{
    *out = *e;
    out->name = bh_xstrdup(e->name);
    out->provider = e->provider ? bh_xstrdup(e->provider) : NULL;
    out->api_key_env = e->api_key_env ? bh_xstrdup(e->api_key_env) : NULL;
    out->basic_auth_env = e->basic_auth_env ? bh_xstrdup(e->basic_auth_env) : NULL;
    out->ca_file = e->ca_file ? bh_xstrdup(e->ca_file) : NULL;
    out->included_from = e->included_from ? bh_xstrdup(e->included_from) : NULL;
    out->headers = bh_xcalloc(e->n_headers ? e->n_headers : 1, sizeof(*out->headers));
    for (size_t i = 0; i < e->n_headers; i++)
        out->headers[i] =
            (struct pipe_header){bh_xstrdup(e->headers[i].name), bh_xstrdup(e->headers[i].value)};
    strv_copy(&out->trusted_hosts, e->trusted_hosts, e->n_trusted_hosts);
    out->url = bh_xstrdup(e->urls[h]);
    out->urls = NULL;
    out->n_urls = 0;
    out->host_name = bh_xasprintf("%s#%zu", e->name, h + 1);
    out->host = h;
    out->n_pool = e->n_urls;
    out->is_pool = 1;
}

/* Splits every pool into its hosts, consecutive (pipeline.h). Runs after
 * the walk: stages then find a pool's first host by its name. */
static void pools_split(struct pipeline *p)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < p->n_endpoints; i++)
        n += p->endpoints[i].n_urls ? p->endpoints[i].n_urls : 1;
    struct pipe_endpoint *v = bh_xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < p->n_endpoints; i++) {
        struct pipe_endpoint *e = &p->endpoints[i];
        size_t m = e->n_urls ? e->n_urls : 1;
        if (e->n_urls) {
            for (size_t h = 0; h < m; h++)
                host_make(&v[k + h], e, h);
            pipe_endpoint_release(e);
        } else {
            v[k] = *e;
            v[k].host_name = bh_xstrdup(e->name);
            v[k].n_pool = 1;
        }
        for (size_t h = 0; h < m; h++)
            v[k + h].pool = k;
        k += m;
    }
    free(p->endpoints);
    p->endpoints = v;
    p->n_endpoints = n;
}

int pipe_ld_endpoints(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = count_all(ld, v);
    if (n == 0 && v)
        return pipe_ld_halt(ld, pipe_ld_fail(ld, path,
                                             "expected at least one endpoint, found "
                                             "none — e.g. \"gpu-box\": { \"provider\": "
                                             "\"ollama\", \"url\": \"http://127.0.0.1:11434\" "
                                             "}"));
    if (n == 0)
        return pipe_ld_halt(ld, pipe_ld_fail(ld, "include",
                                             "the included files declare no "
                                             "endpoints and this file has none — declare one "
                                             "under \"endpoints\""));
    if (n > PIPE_MAX_ENDPOINTS)
        return pipe_ld_halt(ld, pipe_ld_fail(ld, v ? path : "include",
                                             "too many endpoints (%zu, at most %d)", n,
                                             PIPE_MAX_ENDPOINTS));
    p->endpoints = bh_xcalloc(n, sizeof(*p->endpoints));
    ld->ep_inc = bh_xcalloc(n, sizeof(*ld->ep_inc));
    int rc = all_names(ld, v, path);
    if (!ld->halt) {
        int orc = overrides_resolve(ld);
        rc = rc ? rc : orc;
    }
    for (size_t i = 0; !ld->halt && i < p->n_endpoints; i++) {
        int erc = endpoint_walk(ld, i, v, path);
        rc = rc ? rc : erc;
    }
    pools_split(p);
    return rc;
}
