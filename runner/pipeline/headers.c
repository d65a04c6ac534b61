/* pipeline/headers.c — an endpoint's `headers`: extra request headers (a
 * Cloudflare Access token, a reverse proxy's key).
 *
 * Header values are secrets. No message here ever shows a value, before or
 * after ${VAR} expansion: errors name the header and, at most, a variable.
 * A header name that is not a valid name is not shown either — someone may
 * have written "Authorization: Bearer ..." as the name. Names the runner
 * sets itself (Host, Content-Length, ...) are refused rather than silently
 * overridden, and so are the key headers when `api_key_env` already sends a
 * key, and Authorization when `basic_auth_env` does: two credentials on one
 * request is a mistake either way. */
#include "pipeline/load.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define MAX_HEADERS 32

static const char *const set_by_runner[] = {"Host", "Content-Length", "Content-Type",
                                            "Transfer-Encoding", "Connection"};
static const char *const key_headers[] = {"Authorization", "x-api-key"};

/* RFC 9110 token characters. */
static int token_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return 0;
    }
    return 1;
}

static const char *listed(const char *name, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(name, v[i]) == 0)
            return v[i];
    return NULL;
}

/* The name's checks; errors at the key. */
static int name_check(struct pipe_loader *ld, const struct pipe_endpoint *e, const char *path,
                      const char *name)
{
    if (!token_ok(name))
        return pipe_ld_fail_key(ld, path, name,
                                "invalid header name (not shown) — a header name "
                                "is letters, digits and !#$%%&'*+-.^_`|~, with no spaces or ':', "
                                "e.g. \"CF-Access-Client-Id\"; the value goes after it");
    if (listed(name, set_by_runner, BH_NELEM(set_by_runner)))
        return pipe_ld_fail_key(ld, path, name,
                                "header \"%s\" is set by bulkhead itself — "
                                "remove it",
                                name);
    const char *key = listed(name, key_headers, BH_NELEM(key_headers));
    if (key && e->api_key_env)
        return pipe_ld_fail_key(ld, path, name,
                                "header \"%s\" conflicts with \"api_key_env\": "
                                "bulkhead sends the key from %s itself (as Authorization: Bearer, "
                                "or x-api-key for anthropic) — remove the header or "
                                "\"api_key_env\"",
                                name, e->api_key_env);
    if (e->basic_auth_env && strcasecmp(name, "Authorization") == 0)
        return pipe_ld_fail_key(ld, path, name,
                                "header \"%s\" conflicts with \"basic_auth_env\": "
                                "bulkhead sends Authorization: Basic with the credentials from %s "
                                "itself — remove the header or \"basic_auth_env\"",
                                name, e->basic_auth_env);
    for (size_t i = 0; i < e->n_headers; i++)
        if (strcasecmp(e->headers[i].name, name) == 0)
            return pipe_ld_fail_key(ld, path, name,
                                    "header \"%s\" is given twice (as \"%s\" too; "
                                    "header names ignore case) — keep one",
                                    name, e->headers[i].name);
    return 0;
}

/* An expansion error in words that cannot hold the value: env.c quotes an
 * invalid reference as written, and here that could be part of a secret. */
static int expand_fail(struct pipe_loader *ld, const char *path, const char *name)
{
    if (strncmp(ld->err->msg, "environment variable ", 21) == 0 ||
        strncmp(ld->err->msg, "unterminated ", 13) == 0)
        return pipe_ld_fail(ld, path, "header \"%s\": %s", name, ld->err->msg);
    return pipe_ld_fail(ld, path,
                        "header \"%s\": the value has an invalid ${...} reference "
                        "(the value is not shown: it may be a secret) — write ${NAME} or "
                        "${NAME:-default}",
                        name);
}

static int value_read(struct pipe_loader *ld, json_t *v, const char *path, const char *name,
                      char **out)
{
    int rc = pipe_ld_expect(ld, v, PIPE_JT_STRING, path,
                            "the header's value, e.g. \"${CF_ACCESS_CLIENT_ID}\"");
    if (rc)
        return rc;
    const char *raw = json_string_value(v);
    if (!raw[0])
        return pipe_ld_fail(ld, path,
                            "header \"%s\": the value is empty — write it, e.g. "
                            "\"${CF_ACCESS_CLIENT_ID}\"",
                            name);
    if (strpbrk(raw, "\r\n"))
        return pipe_ld_fail(ld, path,
                            "header \"%s\": the value has a line break (not shown: "
                            "it may be a secret) — a header value is one line",
                            name);
    if (pipe_expand_env(raw, out, ld->err))
        return expand_fail(ld, path, name);
    const char *why = !(*out)[0] ? "is empty" : strpbrk(*out, "\r\n") ? "has a line break" : NULL;
    if (!why)
        return 0;
    free(*out);
    *out = NULL;
    return pipe_ld_fail(ld, path,
                        "header \"%s\": after expansion the value %s (not shown: it "
                        "may be a secret) — check the variables it reads",
                        name, why);
}

int pipe_ep_headers(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_endpoint *e = target;
    size_t n = json_object_size(v);
    if (n > MAX_HEADERS)
        return pipe_ld_fail(ld, path, "too many headers (%zu, at most %d)", n, MAX_HEADERS);
    e->headers = bh_xcalloc(n ? n : 1, sizeof(*e->headers));
    const char *name;
    json_t *val;
    int rc = 0;
    json_object_foreach(v, name, val)
    {
        char child[PIPE_PATH_MAX];
        char *value = NULL;
        pipe_ld_path_key(child, path, name);
        int hrc = name_check(ld, e, path, name);
        if (hrc == 0)
            hrc = value_read(ld, val, child, name, &value);
        if (hrc == 0)
            e->headers[e->n_headers++] = (struct pipe_header){bh_xstrdup(name), value};
        rc = rc ? rc : hrc;
    }
    return rc;
}
