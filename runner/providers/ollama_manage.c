/* providers/ollama_manage.c — parsing Ollama's model-management replies.
 *
 * tags, ps and show are single JSON documents: collected under a cap and
 * parsed at finish, when the HTTP status is known (an error page behind a
 * non-2xx status is reported as that status, not as bad JSON). pull is
 * NDJSON progress that must reach the user as it arrives, so it is split on
 * '\n' as it is fed, like the chat parser; its errors arrive in-band
 * ({"error":...} with status 200) and are kept for finish.
 *
 * A cloud stub is recognised only by its remote_host/remote_model fields:
 * Ollama lets a stub have any name. Every server text that reaches a message
 * is cleaned and capped (wire.c). */
#include "providers/manage.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "providers/wire.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

#define DOC_MAX_DEFAULT ((size_t)16 << 20)
#define PULL_LINE_MAX ((size_t)64 << 10)

/* ---- names ---- */

/* The name's length; *tagged says whether it has a tag (a ':' after the last '/'). */
static size_t tag_of(const char *s, int *tagged)
{
    const char *slash = strrchr(s, '/');
    const char *colon = strrchr(slash ? slash : s, ':');
    *tagged = colon != NULL;
    return strlen(s);
}

int prov_model_name_eq(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    int ta = 0, tb = 0;
    size_t na = tag_of(a, &ta), nb = tag_of(b, &tb);
    if (ta == tb)
        return na == nb && strncasecmp(a, b, na) == 0;
    /* One has a tag, the other none: only ":latest" matches. */
    const char *t = ta ? a : b, *u = ta ? b : a;
    size_t nt = ta ? na : nb, nu = ta ? nb : na;
    return nt == nu + 7 && strncasecmp(t, u, nu) == 0 && strcasecmp(t + nu, ":latest") == 0;
}

/* name without a final ":local" (any case), into buf. */
static const char *unlocal(const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    if (n <= 6 || strcasecmp(name + n - 6, ":local") != 0 || n - 6 >= size)
        return name;
    memcpy(buf, name, n - 6);
    buf[n - 6] = '\0';
    return buf;
}

int prov_model_answered_eq(const char *asked, const char *answered)
{
    char a[256], b[256];
    if (!answered || !answered[0] || !asked)
        return 1;
    return prov_model_name_eq(unlocal(asked, a, sizeof(a)), unlocal(answered, b, sizeof(b)));
}

int prov_model_is_remote(const struct prov_model *m)
{
    return (m->remote_host && m->remote_host[0]) || (m->remote_model && m->remote_model[0]);
}

const struct prov_model *prov_models_find(const struct prov_models *m, const char *model)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (prov_model_name_eq(m->v[i].name, model))
            return &m->v[i];
    return NULL;
}

static void model_release(struct prov_model *m)
{
    free(m->name);
    free(m->remote_host);
    free(m->remote_model);
    free(m->expires_at);
    memset(m, 0, sizeof(*m));
}

void prov_models_release(struct prov_models *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        model_release(&m->v[i]);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

void prov_show_release(struct prov_show *s)
{
    if (!s)
        return;
    free(s->remote_host);
    free(s->remote_model);
    memset(s, 0, sizeof(*s));
}

/* ---- whole documents ---- */

struct prov_doc {
    struct bh_buf b;
};

struct prov_doc *prov_doc_new(size_t max)
{
    struct prov_doc *d = bh_xcalloc(1, sizeof(*d));
    bh_buf_init(&d->b, max ? max : DOC_MAX_DEFAULT);
    return d;
}

void prov_doc_free(struct prov_doc *d)
{
    if (!d)
        return;
    bh_buf_release(&d->b);
    free(d);
}

int prov_doc_feed(struct prov_doc *d, const char *data, size_t len, struct bh_err *err)
{
    if (bh_buf_append(&d->b, data, len))
        return bh_err_set(err, BH_ETOOBIG,
                          "the reply exceeds %zu bytes — check that the "
                          "endpoint speaks the 'ollama' API",
                          d->b.max);
    return 0;
}

/* The server's text for an error status: its {"error"} or the body's head. */
static int status_error(const struct prov_doc *d, long status, const char *what, struct bh_err *err)
{
    char text[PROV_TEXT_MAX + 4];
    json_t *o = json_loadb(d->b.data ? d->b.data : "", d->b.len, 0, NULL);
    json_t *e = json_object_get(o, "error");
    if (json_is_string(e))
        prov_clean_into(text, sizeof(text), json_string_value(e), json_string_length(e));
    else
        prov_clean_into(text, sizeof(text), d->b.data ? d->b.data : "",
                        d->b.len < PROV_HEAD_MAX ? d->b.len : PROV_HEAD_MAX);
    json_decref(o);
    return bh_err_set(err, BH_EREPLY, "%s: HTTP %ld: %s", what, status,
                      text[0] ? text : "(empty body)");
}

/* The document as a JSON object, or BH_EREPLY saying what was expected. */
static int doc_object(const struct prov_doc *d, long status, const char *what, json_t **out,
                      struct bh_err *err)
{
    json_error_t je;
    if (status < 200 || status > 299)
        return status_error(d, status, what, err);
    *out = json_loadb(d->b.data ? d->b.data : "", d->b.len, 0, &je);
    if (json_is_object(*out))
        return 0;
    json_decref(*out);
    *out = NULL;
    return bh_err_set(err, BH_EREPLY,
                      "%s: the reply is not a JSON object — check that the "
                      "endpoint speaks the 'ollama' API",
                      what);
}

static void take_int(int64_t *dst, json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) > 0)
        *dst = (int64_t)json_integer_value(v);
}

static void take_model(struct prov_model *m, json_t *o)
{
    prov_acc_str(&m->name, json_object_get(o, "name"));
    if (!m->name)
        prov_acc_str(&m->name, json_object_get(o, "model"));
    prov_acc_str(&m->remote_host, json_object_get(o, "remote_host"));
    prov_acc_str(&m->remote_model, json_object_get(o, "remote_model"));
    prov_acc_str(&m->expires_at, json_object_get(o, "expires_at"));
    take_int(&m->size, json_object_get(o, "size"));
    take_int(&m->size_vram, json_object_get(o, "size_vram"));
    take_int(&m->context_length, json_object_get(o, "context_length"));
}

int prov_models_finish(struct prov_doc *d, long status, struct prov_models *out, struct bh_err *err)
{
    json_t *o = NULL;
    memset(out, 0, sizeof(*out));
    int rc = doc_object(d, status, "listing models", &o, err);
    if (rc)
        return rc;
    json_t *arr = json_object_get(o, "models");
    if (!json_is_array(arr)) {
        json_decref(o);
        return bh_err_set(err, BH_EREPLY,
                          "listing models: the reply has no 'models' array — "
                          "check that the endpoint speaks the 'ollama' API");
    }
    out->v = bh_xcalloc(json_array_size(arr) + 1, sizeof(*out->v));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct prov_model *m = &out->v[out->n];
        if (json_is_object(json_array_get(arr, i)))
            take_model(m, json_array_get(arr, i));
        if (m->name)
            out->n++;
        else
            model_release(m); /* a nameless entry names nothing to look up */
    }
    json_decref(o);
    return 0;
}

/* model_info["<arch>.context_length"], else any "*.context_length". */
static int64_t context_length(json_t *info)
{
    int64_t n = 0;
    json_t *arch = json_object_get(info, "general.architecture");
    if (json_is_string(arch)) {
        char key[160];
        snprintf(key, sizeof(key), "%s.context_length", json_string_value(arch));
        take_int(&n, json_object_get(info, key));
        if (n)
            return n;
    }
    const char *k;
    json_t *v;
    json_object_foreach(info, k, v)
    {
        size_t len = strlen(k);
        if (len > 15 && strcmp(k + len - 15, ".context_length") == 0) {
            take_int(&n, v);
            if (n)
                return n;
        }
    }
    return 0;
}

int prov_show_finish(struct prov_doc *d, long status, struct prov_show *out, struct bh_err *err)
{
    json_t *o = NULL;
    memset(out, 0, sizeof(*out));
    int rc = doc_object(d, status, "showing the model", &o, err);
    if (rc)
        return rc;
    out->context_length = context_length(json_object_get(o, "model_info"));
    prov_acc_str(&out->remote_host, json_object_get(o, "remote_host"));
    prov_acc_str(&out->remote_model, json_object_get(o, "remote_model"));
    json_decref(o);
    return 0;
}

int prov_probe_finish(struct prov_doc *d, long status, struct prov_show *out, struct bh_err *err)
{
    json_t *o = NULL;
    memset(out, 0, sizeof(*out));
    int rc = doc_object(d, status, "probing the model", &o, err);
    if (rc)
        return rc;
    prov_acc_str(&out->remote_host, json_object_get(o, "remote_host"));
    prov_acc_str(&out->remote_model, json_object_get(o, "remote_model"));
    /* An empty string says nothing: only a named host or model is a stub. */
    if (out->remote_host && !out->remote_host[0]) {
        free(out->remote_host);
        out->remote_host = NULL;
    }
    if (out->remote_model && !out->remote_model[0]) {
        free(out->remote_model);
        out->remote_model = NULL;
    }
    json_decref(o);
    return 0;
}

/* ---- the OpenAI-style list (/v1/models) ---- */

static void take_v1_model(struct prov_model *m, json_t *o)
{
    prov_acc_str(&m->name, json_object_get(o, "id"));
    take_int(&m->context_length, json_object_get(json_object_get(o, "meta"), "n_ctx"));
}

int prov_v1_models_finish(struct prov_doc *d, long status, struct prov_models *out,
                          struct bh_err *err)
{
    json_t *o = NULL;
    memset(out, 0, sizeof(*out));
    int rc = doc_object(d, status, "GET /v1/models", &o, err);
    if (rc)
        return rc;
    json_t *arr = json_object_get(o, "data");
    if (!json_is_array(arr)) {
        json_decref(o);
        return bh_err_set(err, BH_EREPLY,
                          "GET /v1/models: the reply has no 'data' array — "
                          "check that the endpoint speaks the OpenAI or Anthropic API");
    }
    out->v = bh_xcalloc(json_array_size(arr) + 1, sizeof(*out->v));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct prov_model *m = &out->v[out->n];
        if (json_is_object(json_array_get(arr, i)))
            take_v1_model(m, json_array_get(arr, i));
        if (m->name)
            out->n++;
        else
            model_release(m);
    }
    json_decref(o);
    return 0;
}

int prov_health_finish(struct prov_doc *d, long status, struct bh_err *err)
{
    if (status < 200 || status > 299)
        return status_error(d, status, "GET /health", err);
    return 0;
}

/* ---- the server itself ---- */

int prov_version_finish(struct prov_doc *d, long status, struct prov_server *s, struct bh_err *err)
{
    json_t *o = NULL;
    s->version[0] = '\0';
    int rc = doc_object(d, status, "asking the version", &o, err);
    if (rc)
        return rc;
    json_t *v = json_object_get(o, "version");
    if (json_is_string(v) && json_string_length(v) > 0)
        prov_clean_into(s->version, sizeof(s->version), json_string_value(v),
                        json_string_length(v));
    else
        rc = bh_err_set(err, BH_EREPLY,
                        "asking the version: the reply has no 'version' — check "
                        "that the endpoint speaks the 'ollama' API");
    json_decref(o);
    return rc;
}

int prov_status_finish(struct prov_doc *d, long status, struct prov_server *s, struct bh_err *err)
{
    json_t *o = NULL;
    s->status = 0;
    s->cloud_disabled = 0;
    s->cloud_source[0] = '\0';
    if (status == 404)
        return 0; /* a server from before /api/status: it says nothing, which is an answer */
    int rc = doc_object(d, status, "asking the cloud status", &o, err);
    if (rc)
        return rc;
    json_t *cloud = json_object_get(o, "cloud"), *src = json_object_get(cloud, "source");
    if (!json_is_object(cloud)) {
        json_decref(o);
        return bh_err_set(err, BH_EREPLY,
                          "asking the cloud status: the reply has no 'cloud' "
                          "object — check that the endpoint speaks the 'ollama' API");
    }
    s->status = 1;
    s->cloud_disabled = json_is_true(json_object_get(cloud, "disabled"));
    if (json_is_string(src))
        prov_clean_into(s->cloud_source, sizeof(s->cloud_source), json_string_value(src),
                        json_string_length(src));
    json_decref(o);
    return 0;
}

/* Reads up to three dot-separated numbers after an optional 'v'; 0 when the
 * text does not start with a digit. */
static int version_parts(const char *v, long out[3])
{
    out[0] = out[1] = out[2] = 0;
    if (v && (*v == 'v' || *v == 'V'))
        v++;
    if (!v || *v < '0' || *v > '9')
        return 0;
    for (int i = 0; i < 3; i++) {
        char *end = NULL;
        out[i] = strtol(v, &end, 10);
        if (*end != '.' || end[1] < '0' || end[1] > '9')
            break;
        v = end + 1;
    }
    return 1;
}

int prov_version_cmp(const char *a, const char *b)
{
    long pa[3], pb[3];
    int ra = version_parts(a, pa), rb = version_parts(b, pb);
    if (!ra || !rb)
        return ra - rb;
    for (int i = 0; i < 3; i++)
        if (pa[i] != pb[i])
            return pa[i] < pb[i] ? -1 : 1;
    return 0;
}

int prov_version_honours_local(const char *version)
{
    return prov_version_cmp(version, PROV_LOCAL_SUFFIX_VERSION) >= 0;
}

/* ---- pull progress ---- */

struct prov_pull {
    struct bh_buf line;
    prov_pull_fn fn;
    void *ud;
    size_t lineno;
    int success;
    struct bh_err err; /* the first error, kept for finish */
};

struct prov_pull *prov_pull_new(prov_pull_fn fn, void *ud)
{
    struct prov_pull *s = bh_xcalloc(1, sizeof(*s));
    bh_buf_init(&s->line, PULL_LINE_MAX);
    s->fn = fn;
    s->ud = ud;
    return s;
}

void prov_pull_free(struct prov_pull *s)
{
    if (!s)
        return;
    bh_buf_release(&s->line);
    free(s);
}

static void pull_step(struct prov_pull *s, json_t *o)
{
    char status[128], digest[96];
    json_t *st = json_object_get(o, "status"), *dg = json_object_get(o, "digest");
    struct prov_pull_step step = {.status = status, .digest = digest};
    prov_clean_into(status, sizeof(status), json_is_string(st) ? json_string_value(st) : "",
                    json_is_string(st) ? json_string_length(st) : 0);
    prov_clean_into(digest, sizeof(digest), json_is_string(dg) ? json_string_value(dg) : "",
                    json_is_string(dg) ? json_string_length(dg) : 0);
    take_int(&step.total, json_object_get(o, "total"));
    take_int(&step.completed, json_object_get(o, "completed"));
    if (strcmp(status, "success") == 0)
        s->success = 1;
    if (s->fn)
        s->fn(s->ud, &step);
}

static void pull_line(struct prov_pull *s, const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
        n--;
    if (n == 0 || s->err.code)
        return;
    json_t *o = json_loadb(p, n, 0, NULL);
    json_t *e = json_object_get(o, "error");
    if (!json_is_object(o)) {
        bh_err_set(&s->err, BH_EREPLY,
                   "line %zu of the pull progress is not a JSON object — "
                   "check that the endpoint speaks the 'ollama' API",
                   s->lineno);
    } else if (e && !json_is_null(e)) {
        char text[PROV_TEXT_MAX + 4];
        prov_clean_into(text, sizeof(text), json_is_string(e) ? json_string_value(e) : "?",
                        json_is_string(e) ? json_string_length(e) : 1);
        bh_err_set(&s->err, BH_EREPLY, "the server reported: %s", text);
    } else {
        pull_step(s, o);
    }
    json_decref(o);
}

int prov_pull_feed(struct prov_pull *s, const char *data, size_t len, struct bh_err *err)
{
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        if (bh_buf_append(&s->line, data, n))
            return bh_err_set(err, BH_ETOOBIG,
                              "a line of the pull progress exceeds %zu bytes — "
                              "check that the endpoint speaks the 'ollama' API",
                              s->line.max);
        if (!nl)
            break;
        s->lineno++;
        pull_line(s, s->line.data, s->line.len);
        bh_buf_reset(&s->line);
        data += n + 1;
        len -= n + 1;
    }
    return 0;
}

int prov_pull_finish(struct prov_pull *s, long status, struct bh_err *err)
{
    if (s->line.len) {
        s->lineno++;
        pull_line(s, s->line.data, s->line.len);
        bh_buf_reset(&s->line);
    }
    if (status < 200 || status > 299) {
        if (s->err.code)
            return bh_err_set(err, BH_EREPLY, "HTTP %ld: %s", status, s->err.msg);
        return bh_err_set(err, BH_EREPLY, "HTTP %ld", status);
    }
    if (s->err.code) {
        *err = s->err;
        return s->err.code;
    }
    if (!s->success)
        return bh_err_set(err, BH_EREPLY,
                          "the pull ended before it reported success "
                          "(connection cut?) — run it again");
    return 0;
}
