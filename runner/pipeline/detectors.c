/* pipeline/detectors.c — a source's `detectors`: built-in detectors or
 * groups by name, and the pipeline's own regex detectors.
 *
 * Names are resolved against the built-in table (detect/detect.h: the
 * detectors sit below both the loader and policy/, so the loader reads
 * them without reaching up into policy) and kept as written;
 * the labeller resolves them again when it runs. A custom detector's regex
 * is compiled here only to report a mistake at load time with regerror's
 * words; the labeller compiles its own copy. A regex that matches the empty
 * string is refused: it would match at every offset of every value. */
#include "pipeline/load.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* Group names once each in table order, then every id (names[2 * n]). */
static size_t known_names(const char **names, size_t *n_groups)
{
    size_t n_all = 0, n = 0;
    const struct det_detector *all = det_all(&n_all);
    for (size_t i = 0; i < n_all; i++) {
        size_t k = 0;
        while (k < n && strcmp(names[k], all[i].group) != 0)
            k++;
        if (k == n)
            names[n++] = all[i].group;
    }
    *n_groups = n;
    for (size_t i = 0; i < n_all; i++)
        names[n++] = all[i].id;
    return n;
}

static int name_unknown(struct pipe_loader *ld, const char *path, const char *name)
{
    size_t n_all = 0, n_groups = 0;
    det_all(&n_all);
    const char **names = bh_xcalloc(2 * n_all + 1, sizeof(*names));
    size_t n = known_names(names, &n_groups);
    const char *best = bh_str_suggest(name, names, n);
    char *groups = bh_str_join(names, n_groups);
    int rc = pipe_ld_fail(ld, path,
                          "unknown detector \"%s\" (known groups: %s; or a detector id "
                          "such as \"aws-access-key\")%s%s%s",
                          name, groups,
                          best ? " — did you mean \""
                               : " — or write a custom detector: { \"id\", "
                                 "\"regex\", \"label\" }",
                          best ? best : "", best ? "\"?" : "");
    free(groups);
    free(names);
    return rc;
}

static int builtin_name(struct pipe_loader *ld, struct pipe_source *s, json_t *e, const char *path)
{
    const char *name = json_string_value(e);
    size_t n = 0;
    if (!name[0])
        return pipe_ld_fail(ld, path,
                            "found an empty string — write a detector name, e.g. "
                            "\"cloud-keys\"");
    if (det_resolve(name, NULL, 0, &n, NULL) != 0)
        return name_unknown(ld, path, name);
    for (size_t i = 0; i < s->n_detectors; i++)
        if (strcmp(s->detectors[i], name) == 0)
            return pipe_ld_fail(ld, path, "\"%s\" is listed twice — list it once", name);
    s->detectors[s->n_detectors++] = bh_xstrdup(name);
    return 0;
}

/* ---- custom detectors ---- */

struct custom_load {
    struct pipe_custom_detector d;
    const struct pipe_source *s; /* the ones accepted so far, for clashes */
};

static int id_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return 0;
    return 1;
}

static int cd_id(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct custom_load *c = target;
    const char *id = json_string_value(v);
    if (!id[0] || !id_ok(id))
        return pipe_ld_fail(ld, path,
                            "invalid detector id \"%s\" — use lowercase letters, digits "
                            "and '-', e.g. \"acme-ticket\"",
                            id);
    if (det_find(id) || det_group(id, NULL, 0) > 0)
        return pipe_ld_fail(ld, path,
                            "detector id \"%s\" is the name of a built-in detector — "
                            "choose another, e.g. \"acme-%s\"",
                            id, id);
    for (size_t i = 0; i < c->s->n_custom; i++)
        if (strcmp(c->s->custom[i].id, id) == 0)
            return pipe_ld_fail(ld, path,
                                "detector id \"%s\" is used twice — give each custom "
                                "detector its own id",
                                id);
    c->d.id = bh_xstrdup(id);
    return 0;
}

static int cd_regex(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct custom_load *c = target;
    const char *re = json_string_value(v);
    if (!re[0])
        return pipe_ld_fail(ld, path,
                            "found an empty string — write a POSIX extended regular "
                            "expression, e.g. \"ACME-[0-9]{6}\"");
    regex_t rx;
    int rc = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[160];
        regerror(rc, &rx, why, sizeof(why));
        return pipe_ld_fail(ld, path,
                            "invalid regular expression \"%s\": %s — POSIX extended "
                            "syntax (ERE), e.g. \"ACME-[0-9]{6}\"",
                            re, why);
    }
    int empty = regexec(&rx, "", 0, NULL, 0) == 0;
    regfree(&rx);
    if (empty)
        return pipe_ld_fail(ld, path,
                            "regular expression \"%s\" matches the empty string, so it "
                            "would match everywhere — make it need at least one character "
                            "(\"+\" instead of \"*\")",
                            re);
    c->d.regex = bh_xstrdup(re);
    return 0;
}

static int cd_label(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_label(ld, v, path, &((struct custom_load *)target)->d.label);
}

static const struct pipe_key custom_keys[] = {
    {"id", PIPE_JT_STRING, 1, cd_id, "the detector's name, e.g. \"acme-ticket\"", 0, NULL, NULL},
    {"regex", PIPE_JT_STRING, 1, cd_regex,
     "a POSIX extended regular expression, e.g. \"ACME-[0-9]{6}\"", 0, NULL, NULL},
    {"label", PIPE_JT_STRING, 1, cd_label, "the label a hit raises the value to", 0, NULL, NULL},
};

static const struct pipe_schema custom_schema = {
    custom_keys, BH_NELEM(custom_keys),
    "a custom detector is an object: { \"id\": \"acme-ticket\", \"regex\": \"ACME-[0-9]{6}\", "
    "\"label\": \"confidential\" }",
    NULL, 0};

static int custom(struct pipe_loader *ld, struct pipe_source *s, json_t *e, const char *path)
{
    struct custom_load c = {{NULL, NULL, -1}, s};
    int rc = pipe_ld_object(ld, &custom_schema, e, path, &c);
    if (rc == 0 && c.d.id && c.d.regex && c.d.label >= 0) {
        s->custom[s->n_custom++] = c.d;
        return 0;
    }
    free(c.d.id);
    free(c.d.regex);
    return rc;
}

int pipe_src_detectors(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipe_source *s = target;
    size_t n = json_array_size(v);
    s->detectors_set = 1;
    s->detectors = bh_xcalloc(n ? n : 1, sizeof(*s->detectors));
    s->custom = bh_xcalloc(n ? n : 1, sizeof(*s->custom));
    if (n > PIPE_MAX_LIST)
        return pipe_ld_fail(ld, path, "too many detectors (%zu, at most %d)", n, PIPE_MAX_LIST);
    int rc = 0;
    for (size_t i = 0; !ld->halt && i < n; i++) {
        char elem[PIPE_PATH_MAX];
        json_t *e = json_array_get(v, i);
        pipe_ld_path_index(elem, path, i);
        int drc = json_is_string(e)   ? builtin_name(ld, s, e, elem)
                  : json_is_object(e) ? custom(ld, s, e, elem)
                                      : pipe_ld_fail(ld, elem,
                                                     "expected a detector name or an "
                                                     "object, found %s — e.g. \"cloud-keys\" or "
                                                     "{ \"id\": \"acme-ticket\", \"regex\": "
                                                     "\"ACME-[0-9]{6}\", \"label\": "
                                                     "\"confidential\" }",
                                                     pipe_json_kind(e));
        rc = rc ? rc : drc;
    }
    return rc;
}
