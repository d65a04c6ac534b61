/* pipeline/sections.c — the `labels`, `endpoints`, `source` and `outputs`
 * sections. Each object kind is a schema table (load.h); the handlers below
 * only store and check one value each. Defaults are set before a walk, so
 * an absent key needs no code. */
#include "pipeline/load.h"

#include <stdlib.h>
#include <string.h>

#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Must list what providers/ implements (a unit test compares the two). */
static const char *const providers[] = { "ollama", "openai", "anthropic" };
static const char *const localities[] = { "local", "cloud" };

const char *const *pipe_provider_names(size_t *n)
{
    *n = NELEM(providers);
    return providers;
}
static const char *const output_formats[] = { "md", "jsonl" };

/* ---- labels ---- */

int pipe_ld_labels(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = json_array_size(v);
    if (n < 2 || n > PIPE_MAX_LABELS)
        return pipe_ld_halt(ld, pipe_ld_fail(ld, path,
                            "expected 2 to %d labels, found %zu — list them from lowest to "
                            "highest, e.g. [\"public\", \"internal\", \"confidential\", "
                            "\"restricted\"]",
                            PIPE_MAX_LABELS, n));
    char **labels = bh_xcalloc(n, sizeof(*labels));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char elem[PIPE_PATH_MAX];
        json_t *l = json_array_get(v, i);
        pipe_ld_path_index(elem, path, i);
        rc = pipe_ld_expect(ld, l, PIPE_JT_STRING, elem, "a label name, e.g. \"internal\"");
        if (rc == 0)
            rc = pipe_ld_nonempty(ld, l, elem, "a label name", &labels[i]);
        for (size_t k = 0; rc == 0 && k < i; k++)
            if (strcmp(labels[k], labels[i]) == 0)
                rc = pipe_ld_fail(ld, elem, "duplicate label \"%s\" — each label appears once, "
                                  "lowest first", labels[i]);
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(labels[i]);
        free(labels);
        return pipe_ld_halt(ld, rc); /* every clearance and field label reads them */
    }
    for (size_t i = 0; i < p->n_labels; i++)
        free(p->labels[i]); /* the defaults */
    free(p->labels);
    p->labels = labels;
    p->n_labels = n;
    return 0;
}

/* ---- endpoints ---- */

static int ep_provider(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *s = json_string_value(v);
    for (size_t i = 0; i < NELEM(providers); i++)
        if (strcmp(s, providers[i]) == 0) {
            e->provider = bh_xstrdup(s);
            return 0;
        }
    struct pipe_unknown u = { "provider", s, "valid", NULL, providers, NELEM(providers) };
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

static int ep_url(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *over = ld->override[e - ld->p->endpoints];
    if (over) { /* replaces the file's url; its variables need not be set */
        e->url = bh_xstrdup(over);
        const char *why = url_problem(e->url);
        if (!why)
            return 0;
        return pipe_ld_halt(ld, pipe_ld_fail_file(ld, "--endpoint %s=...: %s", e->name, why));
    }
    int rc = pipe_expand_env(json_string_value(v), &e->url, ld->err);
    if (rc)
        return pipe_ld_fail(ld, path, "%s", ld->err->msg);
    if (e->provider && strcmp(e->provider, "ollama") == 0)
        ollama_host_url(&e->url);
    const char *why = url_problem(e->url);
    return why ? pipe_ld_fail(ld, path, "%s", why) : 0;
}

static int ep_locality(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    const char *s = json_string_value(v);
    if (strcmp(s, "local") == 0 || strcmp(s, "cloud") == 0) {
        e->declared_local = strcmp(s, "local") == 0;
        return 0;
    }
    struct pipe_unknown u = { "locality", s, "valid", "a missing locality means cloud",
                              localities, NELEM(localities) };
    return pipe_ld_unknown(ld, path, &u);
}

static int ep_clearance(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_label(ld, v, path, &((struct pipe_endpoint *)target)->clearance);
}

static int ep_max_concurrency(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    long n = 0;
    int rc = pipe_ld_int_range(ld, v, path, 1, 64, &n);
    if (rc == 0)
        ((struct pipe_endpoint *)target)->max_concurrency = (int)n;
    return rc;
}

static int ep_timeout(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_int_range(ld, v, path, 1, 86400, &((struct pipe_endpoint *)target)->timeout_s);
}

static int ep_connect_timeout(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    return pipe_ld_int_range(ld, v, path, 1, 600, &e->connect_timeout_s);
}

static int ep_first_byte_timeout(struct pipe_loader *ld, void *target, json_t *v,
                                 const char *path)
{
    struct pipe_endpoint *e = target;
    return pipe_ld_int_range(ld, v, path, 1, 86400, &e->first_byte_timeout_s);
}

static int ep_idle_timeout(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    return pipe_ld_int_range(ld, v, path, 1, 86400, &e->idle_timeout_s);
}

static int ep_max_attempts(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    long n = 0;
    int rc = pipe_ld_int_range(ld, v, path, 1, 10, &n);
    if (rc == 0)
        ((struct pipe_endpoint *)target)->max_attempts = (int)n;
    return rc;
}

/* The value is never echoed: someone may have pasted the key itself here. */
static int ep_api_key_env(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    const char *s = json_string_value(v);
    int ok = pipe_name_ok(s, 0) && strchr(s, '-') == NULL && !(s[0] >= '0' && s[0] <= '9');
    if (!ok)
        return pipe_ld_fail(ld, path,
                            "expected the name of an environment variable (letters, digits and "
                            "'_', e.g. \"OLLAMA_API_KEY\") — api_key_env names the variable that "
                            "holds the key, never the key itself");
    ((struct pipe_endpoint *)target)->api_key_env = bh_xstrdup(s);
    return 0;
}

static const struct pipe_key endpoint_keys[] = {
    { "provider", PIPE_JT_STRING, 1, ep_provider, "the API the endpoint speaks: \"ollama\", \"openai\" or \"anthropic\"", 0 },
    { "url", PIPE_JT_STRING, 1, ep_url,
      "the base url, e.g. \"${BULKHEAD_LOCAL_URL:-http://127.0.0.1:11434}\"", 0 },
    { "locality", PIPE_JT_STRING, 0, ep_locality, "\"local\" or \"cloud\"", 0 },
    { "clearance", PIPE_JT_STRING, 0, ep_clearance, "the highest label it may receive", 0 },
    { "max_concurrency", PIPE_JT_INT, 0, ep_max_concurrency, "parallel requests, 1 to 64", 0 },
    { "timeout_s", PIPE_JT_INT, 0, ep_timeout, "seconds per request, 1 to 86400", 0 },
    { "connect_timeout_s", PIPE_JT_INT, 0, ep_connect_timeout,
      "seconds to open a connection, 1 to 600", 0 },
    { "first_byte_timeout_s", PIPE_JT_INT, 0, ep_first_byte_timeout,
      "seconds until the reply's first byte, 1 to 86400", 0 },
    { "idle_timeout_s", PIPE_JT_INT, 0, ep_idle_timeout,
      "seconds between two chunks of a reply, 1 to 86400", 0 },
    { "max_attempts", PIPE_JT_INT, 0, ep_max_attempts,
      "tries of a request that fails transiently, 1 to 10", 0 },
    { "api_key_env", PIPE_JT_STRING, 0, ep_api_key_env,
      "the name of the variable holding the key, e.g. \"OLLAMA_API_KEY\"", 0 },
};

static const struct pipe_schema endpoint_schema = {
    endpoint_keys, NELEM(endpoint_keys),
    "an endpoint is an object: { \"provider\": \"ollama\", \"url\": \"http://...\" }"
};

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
    struct pipe_unknown u = { "endpoint", name, "known", "--endpoint takes NAME=URL, NAME "
                              "one of the pipeline's endpoints", names, p->n_endpoints };
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
        while (k < p->n_endpoints && !(strlen(p->endpoints[k].name) == n &&
                                       strncmp(p->endpoints[k].name, ov, n) == 0))
            k++;
        if (k < p->n_endpoints) {
            ld->override[k] = eq + 1;
            continue;
        }
        return pipe_ld_halt(ld, override_unknown(ld, ov, n));
    }
    return 0;
}

static int endpoints_names(struct pipe_loader *ld, json_t *v, const char *path)
{
    struct pipeline *p = ld->p;
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e) {
        if (!pipe_name_ok(key, 1)) /* stages name endpoints: their checks would be noise */
            return pipe_ld_halt(ld, pipe_ld_fail_key(ld, path, key,
                                                     "invalid endpoint name \"%s\" — use "
                                                     "letters, digits, '_', '-' and '.'", key));
        struct pipe_endpoint *ep = &p->endpoints[p->n_endpoints++];
        ep->name = bh_xstrdup(key);
        ep->clearance = -1;
        ep->max_concurrency = 1;
        ep->timeout_s = 600;
        ep->connect_timeout_s = 10;
        ep->first_byte_timeout_s = 300;
        ep->idle_timeout_s = 60;
        ep->max_attempts = 3;
    }
    return 0;
}

int pipe_ld_endpoints(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = json_object_size(v);
    if (n == 0)
        return pipe_ld_halt(ld, pipe_ld_fail(ld, path, "expected at least one endpoint, found "
                                             "none — e.g. \"gpu-box\": { \"provider\": "
                                             "\"ollama\", \"url\": \"http://127.0.0.1:11434\" "
                                             "}"));
    if (n > PIPE_MAX_ENDPOINTS)
        return pipe_ld_halt(ld, pipe_ld_fail(ld, path, "too many endpoints (%zu, at most %d)",
                                             n, PIPE_MAX_ENDPOINTS));
    p->endpoints = bh_xcalloc(n, sizeof(*p->endpoints));
    int rc = endpoints_names(ld, v, path);
    if (rc == 0)
        rc = overrides_resolve(ld);
    for (size_t i = 0; !ld->halt && i < p->n_endpoints; i++) {
        struct pipe_endpoint *e = &p->endpoints[i];
        char child[PIPE_PATH_MAX];
        pipe_ld_path_key(child, path, e->name);
        const struct pipe_pos *pos = pipe_posindex_get(ld->ix, child);
        e->line = pos ? pos->line : 0;
        e->col = pos ? pos->col : 0;
        int erc = pipe_ld_object(ld, &endpoint_schema, json_object_get(v, e->name), child, e);
        rc = rc ? rc : erc;
    }
    return rc;
}

/* ---- source ---- */

static int src_kind(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    size_t n = 0;
    const char *kind = json_string_value(v);
    const char *const *fields = pipe_source_kind_fields(kind, &n);
    if (!fields) {
        static const char *const kinds[] = { "git" };
        struct pipe_unknown u = { "source kind", kind, "valid", NULL, kinds, NELEM(kinds) };
        return pipe_ld_halt(ld, pipe_ld_unknown(ld, path, &u)); /* templates read its fields */
    }
    s->kind = bh_xstrdup(kind);
    s->fields = bh_xcalloc(n, sizeof(*s->fields));
    s->field_labels = bh_xcalloc(n, sizeof(*s->field_labels));
    for (size_t i = 0; i < n; i++) {
        s->fields[i] = bh_xstrdup(fields[i]);
        s->field_labels[i] = s->label;
    }
    s->n_fields = n;
    return 0;
}

static int src_label(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    int rc = pipe_ld_label(ld, v, path, &s->label);
    for (size_t i = 0; rc == 0 && i < s->n_fields; i++)
        s->field_labels[i] = s->label; /* `fields`, walked next, overrides these */
    return rc;
}

static int src_field_unknown(struct pipe_loader *ld, const struct pipe_source *s,
                             const char *path, const char *key)
{
    const char *const *fields = (const char *const *)s->fields;
    const char *best = bh_str_suggest(key, fields, s->n_fields);
    char *known = bh_str_join(fields, s->n_fields);
    int rc = best ? pipe_ld_fail_key(ld, path, key, "unknown field \"%s\" of source kind "
                                     "\"%s\" — did you mean \"%s\"?", key, s->kind, best)
                  : pipe_ld_fail_key(ld, path, key, "unknown field \"%s\" of source kind "
                                     "\"%s\" (valid: %s)", key, s->kind, known);
    free(known);
    return rc;
}

static int src_fields(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    const char *key;
    json_t *l;
    int rc = 0;
    json_object_foreach(v, key, l) {
        size_t i = 0;
        while (i < s->n_fields && strcmp(s->fields[i], key) != 0)
            i++;
        if (ld->halt)
            break;
        char child[PIPE_PATH_MAX];
        pipe_ld_path_key(child, path, key);
        int frc = i == s->n_fields ? src_field_unknown(ld, s, path, key)
                                   : pipe_ld_label(ld, l, child, &s->field_labels[i]);
        rc = rc ? rc : frc;
    }
    return rc;
}

static const struct pipe_key source_keys[] = {
    { "kind", PIPE_JT_STRING, 1, src_kind, "where work items come from: \"git\"", 0 },
    { "label", PIPE_JT_STRING, 0, src_label,
      "the label of every field not listed in \"fields\" (default: the top label)", 0 },
    { "fields", PIPE_JT_OBJECT, 0, src_fields,
      "field name to label, e.g. { \"pr.title\": \"internal\" }", 0 },
};

static const struct pipe_schema source_schema = {
    source_keys, NELEM(source_keys),
    "the source is an object: { \"kind\": \"git\", \"label\": \"confidential\" }"
};

int pipe_ld_source(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    p->source.label = (int)p->n_labels - 1; /* unknown means top */
    return pipe_ld_object(ld, &source_schema, v, path, &p->source);
}

/* ---- outputs ---- */

static int out_format(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    const char *s = json_string_value(v);
    for (size_t i = 0; i < NELEM(output_formats); i++)
        if (strcmp(s, output_formats[i]) == 0) {
            ((struct pipe_output *)target)->format = bh_xstrdup(s);
            return 0;
        }
    struct pipe_unknown u = { "output format", s, "valid", NULL, output_formats,
                              NELEM(output_formats) };
    return pipe_ld_unknown(ld, path, &u);
}

static int out_path(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_nonempty(ld, v, path, "the file to write, e.g. \"review.md\"",
                            &((struct pipe_output *)target)->path);
}

static const struct pipe_key output_keys[] = {
    { "format", PIPE_JT_STRING, 1, out_format, "\"md\" or \"jsonl\"", 0 },
    { "path", PIPE_JT_STRING, 1, out_path,
      "the file to write, relative to the working directory, e.g. \"review.md\"", 0 },
};

static const struct pipe_schema output_schema = {
    output_keys, NELEM(output_keys),
    "an output is an object: { \"format\": \"md\", \"path\": \"review.md\" }"
};

int pipe_ld_outputs(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = json_array_size(v);
    p->outputs = bh_xcalloc(n ? n : 1, sizeof(*p->outputs));
    int rc = 0;
    for (size_t i = 0; !ld->halt && i < n; i++) {
        char elem[PIPE_PATH_MAX];
        pipe_ld_path_index(elem, path, i);
        p->n_outputs++;
        int orc = pipe_ld_object(ld, &output_schema, json_array_get(v, i), elem, &p->outputs[i]);
        rc = rc ? rc : orc;
    }
    return rc;
}
