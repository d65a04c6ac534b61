/* pipeline/schema.c — the table-driven object walker and the loader's error
 * helpers (see load.h for the why). Errors are positioned and collected here
 * and only here: a value's path is looked up in the position index built
 * from the raw text, so every message can name the line and column of what
 * it complains about, and each error is added to the loader's list with the
 * position it sorts by. The walker goes on past an error in one value; a
 * handler that finds an error others depend on sets ld->halt. While an
 * included file is walked (pipe_ld_enter), positions come from its index
 * and errors name it. */
#include "pipeline/load.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bh_buf.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* Records *ld->err, sorted at line:col of the file being walked; an error in
 * an included file sorts at the `include` element that names it. */
static int keep_at(struct pipe_loader *ld, int line, int col)
{
    if (ld->n_found >= PIPE_MAX_ERRORS) {
        ld->capped = 1;
        ld->halt = 1;
        return ld->err->code;
    }
    if (ld->n_found == ld->cap_found)
        ld->found = bh_xgrow(ld->found, &ld->cap_found, ld->n_found + 1, sizeof(*ld->found));
    struct pipe_found f = {*ld->err, line, col, 0, 0, ld->n_found};
    if (ld->inc)
        f = (struct pipe_found){*ld->err, ld->inc->line, ld->inc->col, line, col, ld->n_found};
    ld->found[ld->n_found] = f;
    ld->n_found++;
    if (ld->n_found == PIPE_MAX_ERRORS)
        ld->halt = ld->capped = 1; /* the next one would be dropped: stop looking */
    return ld->err->code;
}

int pipe_ld_keep(struct pipe_loader *ld, const char *sort_path)
{
    const struct pipe_pos *pos = sort_path ? pipe_posindex_get(ld->ix, sort_path) : NULL;
    return keep_at(ld, pos ? pos->line : 0, pos ? pos->col : 0);
}

void pipe_ld_enter(struct pipe_loader *ld, const struct pipe_include_load *inc,
                   struct pipe_ld_place *saved)
{
    *saved = (struct pipe_ld_place){ld->file, ld->ix, ld->inc};
    ld->file = inc->file;
    ld->ix = inc->ix;
    ld->inc = inc;
}

void pipe_ld_leave(struct pipe_loader *ld, const struct pipe_ld_place *saved)
{
    ld->file = saved->file;
    ld->ix = saved->ix;
    ld->inc = saved->inc;
}

int pipe_ld_halt(struct pipe_loader *ld, int rc)
{
    ld->halt = 1;
    return rc;
}

static int vfail(struct pipe_loader *ld, const char *shown, int line, int col, const char *fmt,
                 va_list ap) BH_PRINTF(5, 0);

static int vfail(struct pipe_loader *ld, const char *shown, int line, int col, const char *fmt,
                 va_list ap)
{
    char msg[sizeof(ld->err->msg)];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    bh_err_clear(ld->err);
    bh_err_at(ld->err, ld->file, line, col, shown);
    bh_err_set(ld->err, BH_EINVAL, "%s", msg);
    return keep_at(ld, line, col);
}

int pipe_ld_fail(struct pipe_loader *ld, const char *path, const char *fmt, ...)
{
    const struct pipe_pos *pos = pipe_posindex_get(ld->ix, path);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(ld, path, pos ? pos->line : 0, pos ? pos->col : 0, fmt, ap);
    va_end(ap);
    return rc;
}

int pipe_ld_fail_key(struct pipe_loader *ld, const char *obj_path, const char *key, const char *fmt,
                     ...)
{
    char child[PIPE_PATH_MAX];
    pipe_ld_path_key(child, obj_path, key);
    const struct pipe_pos *pos = pipe_posindex_get(ld->ix, child);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(ld, obj_path, pos ? pos->key_line : 0, pos ? pos->key_col : 0, fmt, ap);
    va_end(ap);
    return rc;
}

int pipe_ld_fail_file(struct pipe_loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(ld, "", 0, 0, fmt, ap);
    va_end(ap);
    return rc;
}

void pipe_unknown_format(char *buf, size_t size, const struct pipe_unknown *u)
{
    const char *best = bh_str_suggest(u->name, u->known, u->n_known);
    char *known = bh_str_join(u->known, u->n_known);
    if (best)
        snprintf(buf, size, "unknown %s \"%s\" (%s: %s) — did you mean \"%s\"?", u->what, u->name,
                 u->known_word, known, best);
    else
        snprintf(buf, size, "unknown %s \"%s\" (%s: %s)%s%s", u->what, u->name, u->known_word,
                 known, u->tail ? " — " : "", u->tail ? u->tail : "");
    free(known);
}

int pipe_ld_unknown(struct pipe_loader *ld, const char *path, const struct pipe_unknown *u)
{
    char msg[sizeof(ld->err->msg)];
    pipe_unknown_format(msg, sizeof(msg), u);
    return pipe_ld_fail(ld, path, "%s", msg);
}

const char *pipe_json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "a number";
    case JSON_REAL: return "a fractional number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "something else";
}

static const char *const type_names[] = {
    [PIPE_JT_STRING] = "a string", [PIPE_JT_INT] = "an integer",     [PIPE_JT_OBJECT] = "an object",
    [PIPE_JT_ARRAY] = "an array",  [PIPE_JT_BOOL] = "true or false",
};

static int has_type(const json_t *v, enum pipe_jtype t)
{
    switch (t) {
    case PIPE_JT_STRING: return json_is_string(v);
    case PIPE_JT_INT: return json_is_integer(v);
    case PIPE_JT_OBJECT: return json_is_object(v);
    case PIPE_JT_ARRAY: return json_is_array(v);
    case PIPE_JT_BOOL: return json_is_boolean(v);
    }
    return 0;
}

int pipe_ld_expect(struct pipe_loader *ld, json_t *v, enum pipe_jtype t, const char *path,
                   const char *hint)
{
    if (has_type(v, t))
        return 0;
    return pipe_ld_fail(ld, path, "expected %s, found %s%s%s", type_names[t], pipe_json_kind(v),
                        hint ? " — " : "", hint ? hint : "");
}

static const struct pipe_key *key_find(const struct pipe_schema *s, const char *key)
{
    for (size_t i = 0; i < s->n_keys; i++)
        if (strcmp(s->keys[i].key, key) == 0)
            return &s->keys[i];
    return NULL;
}

/* Reports key as unknown; returns the key it probably meant, or NULL. */
static const char *unknown_key(struct pipe_loader *ld, const struct pipe_schema *s,
                               const char *path, const char *key)
{
    const char **names = bh_xcalloc(s->n_keys, sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; i < s->n_keys; i++)
        if (!s->keys[i].refuse)
            names[n++] = s->keys[i].key;
    const char *best = bh_str_suggest(key, names, n);
    char *valid = bh_str_join(names, n);
    const char *what = path[0] ? "key" : "top-level key";
    if (best)
        pipe_ld_fail_key(ld, path, key, "unknown %s \"%s\" — did you mean \"%s\"?", what, key,
                         best);
    else
        pipe_ld_fail_key(ld, path, key, "unknown %s \"%s\" (valid keys: %s)", what, key, valid);
    free(valid);
    free(names);
    return best;
}

/* Unknown keys, then missing required keys: a missing key that an unknown
 * key looks like a typo of is not reported twice. A missing base key halts. */
static const struct pipe_range *range_find(const struct pipe_schema *s, const char *key)
{
    for (size_t i = 0; i < s->n_ranges; i++)
        if (strcmp(s->ranges[i].key, key) == 0)
            return &s->ranges[i];
    return NULL;
}

/* k's hint; a range key's with its bounds ("parallel requests, 1 to 64"). */
static const char *key_hint(const struct pipe_schema *s, const struct pipe_key *k, char *buf,
                            size_t size)
{
    const struct pipe_range *r = range_find(s, k->key);
    if (!r)
        return k->hint;
    snprintf(buf, size, "%s, %ld to %ld", k->hint, r->min, r->max);
    return buf;
}

/* A range key's value, checked against its row and stored at its offset. */
static int range_take(struct pipe_loader *ld, const struct pipe_range *r, void *target, json_t *v,
                      const char *path)
{
    long n = 0;
    int rc = pipe_ld_int_range(ld, v, path, r->min, r->max, &n);
    char *field = (char *)target + r->offset;
    if (rc == 0 && r->size == sizeof(int))
        *(int *)(void *)field = (int)n;
    else if (rc == 0)
        *(long *)(void *)field = n;
    return rc;
}

static int check_keys(struct pipe_loader *ld, const struct pipe_schema *s, json_t *obj,
                      const char *path)
{
    const char *key, *meant[8] = {0};
    size_t n_meant = 0;
    json_t *v;
    int rc = 0;
    json_object_foreach(obj, key, v)
    {
        if (key_find(s, key) || ld->halt)
            continue;
        const char *best = unknown_key(ld, s, path, key);
        rc = BH_EINVAL;
        if (best && n_meant < BH_NELEM(meant))
            meant[n_meant++] = best;
    }
    for (size_t i = 0; i < s->n_keys && !ld->halt; i++) {
        const struct pipe_key *k = &s->keys[i];
        size_t m = 0;
        while (m < n_meant && strcmp(meant[m], k->key) != 0)
            m++;
        if (!k->required || json_object_get(obj, k->key) || m < n_meant ||
            (k->alt && json_object_get(obj, k->alt)))
            continue;
        char hint[256];
        if (k->alt)
            rc = pipe_ld_fail(ld, path, "missing required key \"%s\" or \"%s\" — %s", k->key,
                              k->alt, key_hint(s, k, hint, sizeof(hint)));
        else
            rc = pipe_ld_fail(ld, path, "missing required key \"%s\" — %s", k->key,
                              key_hint(s, k, hint, sizeof(hint)));
        if (k->base)
            ld->halt = 1;
    }
    return rc;
}

int pipe_ld_object(struct pipe_loader *ld, const struct pipe_schema *schema, json_t *obj,
                   const char *path, void *target)
{
    int rc = pipe_ld_expect(ld, obj, PIPE_JT_OBJECT, path, schema->hint);
    if (rc)
        return rc;
    rc = check_keys(ld, schema, obj, path);
    for (size_t i = 0; !ld->halt && i < schema->n_keys; i++) {
        const struct pipe_key *k = &schema->keys[i];
        json_t *v = json_object_get(obj, k->key);
        if (!v)
            continue;
        char child[PIPE_PATH_MAX];
        pipe_ld_path_key(child, path, k->key);
        if (k->refuse) {
            int frc = pipe_ld_fail_key(ld, path, k->key, "%s", k->refuse);
            rc = rc ? rc : frc;
            continue;
        }
        char hint[256];
        const struct pipe_range *r = range_find(schema, k->key);
        int krc = pipe_ld_expect(ld, v, k->type, child, key_hint(schema, k, hint, sizeof(hint)));
        if (krc && k->base)
            ld->halt = 1;
        if (krc == 0 && k->fn)
            krc = k->fn(ld, target, v, child);
        if (krc == 0 && r)
            krc = range_take(ld, r, target, v, child);
        rc = rc ? rc : krc;
    }
    return rc;
}

int pipe_ld_nonempty(struct pipe_loader *ld, json_t *v, const char *path, const char *what,
                     char **out)
{
    if (json_string_length(v) == 0)
        return pipe_ld_fail(ld, path, "found an empty string — write %s", what);
    *out = bh_xstrdup(json_string_value(v));
    return 0;
}

int pipe_ld_int_range(struct pipe_loader *ld, json_t *v, const char *path, long lo, long hi,
                      long *out)
{
    json_int_t n = json_integer_value(v);
    if (n < lo || n > hi)
        return pipe_ld_fail(ld, path, "expected an integer from %ld to %ld, found %lld", lo, hi,
                            (long long)n);
    *out = (long)n;
    return 0;
}

int pipe_ld_label(struct pipe_loader *ld, json_t *v, const char *path, int *out)
{
    int rc = pipe_ld_expect(ld, v, PIPE_JT_STRING, path, "a label name, e.g. \"internal\"");
    if (rc)
        return rc;
    int l = pipe_label_find(ld->p, json_string_value(v));
    if (l >= 0) {
        *out = l;
        return 0;
    }
    struct pipe_unknown u = {
        .what = "label",
        .name = json_string_value(v),
        .known_word = "known",
        .tail = "labels are declared in \"labels\", lowest first",
        .known = (const char *const *)ld->p->labels,
        .n_known = ld->p->n_labels,
    };
    return pipe_ld_unknown(ld, path, &u);
}

static int strings_one(struct pipe_loader *ld, json_t *e, const char *path, const char *what,
                       pipe_elem_fn check, char **have, size_t n_have)
{
    int rc = pipe_ld_expect(ld, e, PIPE_JT_STRING, path, what);
    if (rc)
        return rc;
    const char *s = json_string_value(e);
    if (!s[0])
        return pipe_ld_fail(ld, path, "found an empty string — write %s", what);
    if (check && (rc = check(ld, s, path)) != 0)
        return rc;
    for (size_t i = 0; i < n_have; i++)
        if (strcmp(have[i], s) == 0)
            return pipe_ld_fail(ld, path, "\"%s\" is listed twice — list it once", s);
    return 0;
}

int pipe_ld_strings(struct pipe_loader *ld, json_t *v, const char *path, const char *what,
                    pipe_elem_fn check, char ***out, size_t *n)
{
    size_t len = json_array_size(v);
    *out = bh_xcalloc(len ? len : 1, sizeof(**out));
    *n = 0;
    if (len > PIPE_MAX_LIST)
        return pipe_ld_fail(ld, path, "too many elements (%zu, at most %d)", len, PIPE_MAX_LIST);
    int rc = 0;
    for (size_t i = 0; i < len && !ld->halt; i++) {
        char elem[PIPE_PATH_MAX];
        pipe_ld_path_index(elem, path, i);
        json_t *e = json_array_get(v, i);
        int erc = strings_one(ld, e, elem, what, check, *out, *n);
        if (erc == 0)
            (*out)[(*n)++] = bh_xstrdup(json_string_value(e));
        rc = rc ? rc : erc;
    }
    return rc;
}

/* Whether real (a resolved path) is dir or below it. */
static int path_inside(const char *dir, const char *real)
{
    size_t n = strlen(dir);
    if (strcmp(dir, "/") == 0)
        return real[0] == '/';
    return strncmp(real, dir, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

int pipe_ld_file(struct pipe_loader *ld, const char *rel, const char *path, const char *what,
                 char **out)
{
    const struct pipeline *p = ld->p;
    *out = NULL;
    if (rel[0] == '/')
        return pipe_ld_fail(ld, path,
                            "%s \"%s\" is an absolute path — a pipeline reads its "
                            "prompts, schemas and includes only from its own folder or below "
                            "it: copy the file there and name it relative to the pipeline file",
                            what, rel);
    char *file = strcmp(p->dir, ".") == 0 ? bh_xstrdup(rel) : bh_xasprintf("%s/%s", p->dir, rel);
    char *dir = realpath(p->dir, NULL), *real = realpath(file, NULL);
    int rc = 0;
    if (!dir) /* fail closed: without the folder nothing can be shown inside it */
        rc = pipe_ld_fail(ld, path,
                          "cannot resolve the pipeline file's folder \"%s\": %s — "
                          "run bulkhead where the folder can be read",
                          p->dir, strerror(errno));
    else if (real && !path_inside(dir, real))
        rc = pipe_ld_fail(ld, path,
                          "%s \"%s\" lies outside the pipeline file's folder once "
                          "\"..\" and symbolic links are resolved — a pipeline reads its "
                          "prompts, schemas and includes only from its own folder or below it, "
                          "so that what it sends is what that folder holds: copy the file "
                          "into the folder",
                          what, rel);
    /* !real: the file cannot be read; the caller's read says why. */
    free(dir);
    free(real);
    if (rc) {
        free(file);
        return rc;
    }
    *out = file;
    return 0;
}

void pipe_ld_path_key(char *buf, const char *parent, const char *key)
{
    size_t n = strlen(parent);
    if (n >= PIPE_PATH_MAX)
        n = PIPE_PATH_MAX - 1;
    memmove(buf, parent, n);
    buf[n] = '\0';
    pipe_path_key(buf, PIPE_PATH_MAX, n, key, strlen(key)); /* unchanged when too long */
}

void pipe_ld_path_index(char *buf, const char *parent, size_t i)
{
    size_t n = strlen(parent);
    if (n >= PIPE_PATH_MAX)
        n = PIPE_PATH_MAX - 1;
    memmove(buf, parent, n);
    buf[n] = '\0';
    pipe_path_index(buf, PIPE_PATH_MAX, n, i);
}

int pipe_name_ok(const char *s, int dot)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || (dot && c == '.')))
            return 0;
    }
    return 1;
}

int pipe_read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return BH_EIO;
    struct bh_buf b;
    char chunk[8192];
    int rc = 0;
    size_t n = 0;
    bh_buf_init(&b, max);
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = bh_buf_append(&b, chunk, n);
    int saved = errno;
    if (rc == 0 && ferror(f))
        rc = BH_EIO;
    fclose(f);
    if (rc) {
        bh_buf_release(&b);
        errno = saved;
        return rc;
    }
    *len = b.len;
    *out = bh_buf_detach(&b);
    return 0;
}
