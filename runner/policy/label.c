/* policy/label.c — labels of actual values (see label.h).
 *
 * One scan per value: the enabled detectors run over the whole value once,
 * and each hit is then placed in the part (file) it falls in, to honour
 * allow.paths and to report the file and line. Parts come sorted and
 * gapless from the sources, so placing hits is a single merge walk.
 * A diff's part that shows only hunks also brings its whole files (before
 * and after); they are scanned on their own, each hit placed at its line of
 * that file, because the hunks may show a key's body without its BEGIN line.
 * Custom detectors are POSIX EREs run with REG_STARTEND, which lets regexec
 * work on a length-delimited buffer (values may hold NULs) and start at an
 * offset while still seeing what is behind it. */
#include "policy/label.h"

#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "detect/detect.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_glob.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

struct custom {
    regex_t re;
    int compiled;
};

struct pol_labeller {
    const struct pipeline *p;
    const struct det_detector **enabled; /* built-ins then customs */
    size_t n_enabled;
    struct det_detector *own; /* the custom detectors' rows */
    struct custom *custom;
    size_t n_custom;
};

static int custom_match(const void *ctx, const char *data, size_t len, size_t from,
                        struct det_span *out)
{
    const struct custom *c = ctx;
    while (from < len) {
        regmatch_t m[1] = {{(regoff_t)from, (regoff_t)len}};
        if (regexec(&c->re, data, 1, m, REG_STARTEND) != 0)
            return 0;
        if (m[0].rm_eo > m[0].rm_so) {
            out->offset = (size_t)m[0].rm_so;
            out->length = (size_t)(m[0].rm_eo - m[0].rm_so);
            return 1;
        }
        from = (size_t)m[0].rm_so + 1; /* an empty match finds nothing: look further */
    }
    return 0;
}

static void enable(struct pol_labeller *l, const struct det_detector *d, size_t *cap)
{
    for (size_t i = 0; i < l->n_enabled; i++)
        if (l->enabled[i] == d)
            return;
    if (l->n_enabled == *cap)
        l->enabled = bh_xgrow(l->enabled, cap, l->n_enabled + 1, sizeof(*l->enabled));
    l->enabled[l->n_enabled++] = d;
}

static int builtins_resolve(struct pol_labeller *l, size_t *cap, struct bh_err *err)
{
    const struct pipe_source *s = &l->p->source;
    size_t n_all = 0;
    const struct det_detector *all = det_all(&n_all);
    if (!s->detectors_set) {
        for (size_t i = 0; i < n_all; i++)
            enable(l, &all[i], cap);
        return 0;
    }
    const struct det_detector **found = bh_xcalloc(n_all, sizeof(*found));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->n_detectors; i++) {
        size_t n = 0;
        rc = det_resolve(s->detectors[i], found, n_all, &n, err);
        for (size_t k = 0; rc == 0 && k < n && k < n_all; k++)
            enable(l, found[k], cap);
    }
    free(found);
    return rc;
}

static int customs_compile(struct pol_labeller *l, size_t *cap, struct bh_err *err)
{
    const struct pipe_source *s = &l->p->source;
    l->n_custom = s->n_custom;
    l->custom = bh_xcalloc(s->n_custom ? s->n_custom : 1, sizeof(*l->custom));
    l->own = bh_xcalloc(s->n_custom ? s->n_custom : 1, sizeof(*l->own));
    for (size_t i = 0; i < s->n_custom; i++) {
        const struct pipe_custom_detector *c = &s->custom[i];
        if (regcomp(&l->custom[i].re, c->regex, REG_EXTENDED) != 0)
            return bh_err_set(err, BH_EINVAL,
                              "detector \"%s\": the regular expression does "
                              "not compile",
                              c->id);
        l->custom[i].compiled = 1;
        l->own[i] = (struct det_detector){c->id, "custom",     pol_label_name(l->p, c->label),
                                          0,     custom_match, &l->custom[i]};
        enable(l, &l->own[i], cap);
    }
    return 0;
}

int pol_labeller_new(struct pol_labeller **out, const struct pipeline *p, struct bh_err *err)
{
    struct pol_labeller *l = bh_xcalloc(1, sizeof(*l));
    size_t cap = 0;
    l->p = p;
    int rc = builtins_resolve(l, &cap, err);
    if (rc == 0)
        rc = customs_compile(l, &cap, err);
    if (rc) {
        pol_labeller_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void pol_labeller_free(struct pol_labeller *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_custom; i++)
        if (l->custom[i].compiled)
            regfree(&l->custom[i].re);
    free(l->custom);
    free(l->own);
    free(l->enabled);
    free(l);
}

const struct pipeline *pol_labeller_pipeline(const struct pol_labeller *l)
{
    return l->p;
}

/* ---- labelling one value ---- */

static int top(const struct pipeline *p)
{
    return (int)p->n_labels - 1;
}

static void reason_add(struct pol_value *v, struct pol_reason r)
{
    if (v->n_reasons >= POL_MAX_REASONS)
        return;
    if (!v->reasons)
        v->reasons = bh_xcalloc(POL_MAX_REASONS, sizeof(*v->reasons));
    v->reasons[v->n_reasons++] = r;
}

/* The highest rule matching path, or NULL. */
static const struct pipe_rule *rule_for(const struct pipeline *p, const char *path)
{
    const struct pipe_rule *best = NULL;
    for (size_t i = 0; path && i < p->source.n_rules; i++) {
        const struct pipe_rule *r = &p->source.rules[i];
        if (bh_glob_match(r->glob, path) && (!best || r->label > best->label))
            best = r;
    }
    return best;
}

/* One part's label: the join over its paths (a rename or copy has two) of
 * each path's label — its highest rule, else the declared label. A rule may
 * lower a path below the declared label, never the part below what another
 * of its paths gives. One reason names the path that decided (the new one on
 * a tie): its rule, or for a move the declared label of the old path. */
static int part_rules(const struct pipeline *p, int declared, const struct src_part *part,
                      struct pol_value *v)
{
    const struct pipe_rule *rn = rule_for(p, part->path);
    const struct pipe_rule *ro = part->old_path ? rule_for(p, part->old_path) : NULL;
    int ln = rn ? rn->label : declared, lo = part->old_path ? (ro ? ro->label : declared) : -1;
    if (lo > ln && ro)
        reason_add(v, (struct pol_reason){POL_LBL_RULE, lo, ro->glob, part->old_path, 0, 0});
    else if (lo > ln)
        reason_add(v, (struct pol_reason){POL_LBL_DECLARED, lo, NULL, part->old_path, 0, 0});
    else if (rn)
        reason_add(v, (struct pol_reason){POL_LBL_RULE, ln, rn->glob, part->path, 0, 0});
    return lo > ln ? lo : ln;
}

/* Rules, per part; the value is the join of its parts. */
static int rules_apply(const struct pipeline *p, int declared, const struct src_part *parts,
                       size_t n_parts, struct pol_value *v)
{
    if (n_parts == 0)
        return declared;
    int label = 0;
    for (size_t i = 0; i < n_parts; i++) {
        int l = part_rules(p, declared, &parts[i], v);
        label = l > label ? l : label;
    }
    return label;
}

static int path_allowed(const struct pipeline *p, const char *path)
{
    for (size_t i = 0; path && i < p->source.n_allow_paths; i++)
        if (bh_glob_match(p->source.allow_paths[i], path))
            return 1;
    return 0;
}

/* allow.paths exempt a part only when they cover every path it is about: a
 * rename out of secrets/ into tests/fixtures/ still shows secrets/ lines. */
static int part_allowed(const struct pipeline *p, const struct src_part *part)
{
    return part && path_allowed(p, part->path) &&
           (!part->old_path || path_allowed(p, part->old_path));
}

static int value_allowed(const struct pipeline *p, const char *data, const struct det_hit *h)
{
    for (size_t i = 0; i < p->source.n_allow_values; i++) {
        const char *a = p->source.allow_values[i];
        if (strlen(a) == h->length && memcmp(a, data + h->offset, h->length) == 0)
            return 1;
    }
    return 0;
}

/* Places each hit in its part (hits and parts are both in offset order). */
static void hits_apply(const struct pol_labeller *l, const char *name, const char *value,
                       size_t len, const struct src_part *parts, size_t n_parts,
                       const struct det_hit *hits, size_t n_hits, struct pol_value *v)
{
    int in_diff = n_parts && bh_str_endswith(name, "diff") ? POL_IN_DIFF : 0;
    size_t part = 0, part_line = 1, cursor = 0;
    for (size_t i = 0; i < n_hits; i++) {
        const struct det_hit *h = &hits[i];
        while (part + 1 < n_parts && h->offset >= parts[part].offset + parts[part].length) {
            part++;
            for (; cursor < parts[part].offset && cursor < len; cursor++)
                part_line += value[cursor] == '\n';
        }
        const char *path = n_parts ? parts[part].path : NULL;
        if (part_allowed(l->p, n_parts ? &parts[part] : NULL) || value_allowed(l->p, value, h))
            continue;
        int lab = pol_detector_label(l->p, h->detector);
        reason_add(v, (struct pol_reason){POL_LBL_DETECTOR, lab, h->detector->id, path,
                                          n_parts ? h->line - part_line + 1 : h->line, in_diff});
        v->label = lab > v->label ? lab : v->label;
        v->secret |= h->detector->secret;
    }
}

static void unscanned(struct pol_value *v, int top, const char *why, const char *path)
{
    v->label = top;
    reason_add(v, (struct pol_reason){POL_LBL_UNSCANNED, top, why, path, 0, 0});
}

/* Detectors over one whole file of a part (about path): hits count as hits
 * in the part, placed at their line of that file. */
static void whole_scan(const struct pol_labeller *l, const struct det_opts *o, const char *text,
                       size_t len, const char *path, int side, struct pol_value *v)
{
    struct det_hit *hits = NULL;
    size_t n_hits = 0;
    if (path_allowed(l->p, path))
        return;
    if (det_scan_opts(text, len, o, &hits, &n_hits) != 0) {
        unscanned(v, top(l->p), "a whole file too large or with too many hits to scan", path);
        return;
    }
    for (size_t i = 0; i < n_hits; i++) {
        const struct det_hit *h = &hits[i];
        if (value_allowed(l->p, text, h))
            continue;
        int lab = pol_detector_label(l->p, h->detector);
        reason_add(
            v, (struct pol_reason){POL_LBL_DETECTOR, lab, h->detector->id, path, h->line, side});
        v->label = lab > v->label ? lab : v->label;
        v->secret |= h->detector->secret;
    }
    det_hits_free(hits);
}

/* The whole files behind parts that show only hunks: a part whose files
 * could not be read is top (unknown means top). */
static void wholes_apply(const struct pol_labeller *l, const struct det_opts *o,
                         const struct src_part *parts, size_t n_parts, struct pol_value *v)
{
    for (size_t i = 0; i < n_parts; i++) {
        const struct src_part *pt = &parts[i];
        const struct src_whole *w = pt->whole;
        if (!w)
            continue;
        if (w->unread || !w->old_text || !w->new_text) {
            unscanned(v, top(l->p), w->unread ? w->unread : "the whole file was not read",
                      pt->path);
            continue;
        }
        whole_scan(l, o, w->old_text, w->old_len, pt->old_path ? pt->old_path : pt->path,
                   POL_IN_OLD, v);
        whole_scan(l, o, w->new_text, w->new_len, pt->path, POL_IN_NEW, v);
    }
}

int pol_label_value(const struct pol_labeller *l, const char *name, int declared, const char *value,
                    size_t len, const struct src_part *parts, size_t n_parts,
                    const char *unread_why, struct pol_value *out)
{
    const struct pipeline *p = l->p;
    memset(out, 0, sizeof(*out));
    if (declared < 0 || declared > top(p))
        declared = top(p); /* unknown means top */
    if (!value) {
        out->label = out->declared = top(p);
        reason_add(out, (struct pol_reason){POL_LBL_UNSCANNED, top(p),
                                            unread_why ? unread_why : "no value", NULL, 0, 0});
        return 0;
    }
    int content = pipe_field_is_content(name);
    out->declared = content ? rules_apply(p, declared, parts, n_parts, out) : declared;
    out->label = out->declared;
    struct det_opts o = DET_OPTS_INIT;
    o.enabled = l->enabled;
    o.n_enabled = l->n_enabled;
    if (l->n_enabled == 0)
        return 0; /* "detectors": [] */
    struct det_hit *hits = NULL;
    size_t n_hits = 0;
    if (det_scan_opts(value, len, &o, &hits, &n_hits) != 0) {
        unscanned(out, top(p), "too large or too many hits to scan", NULL);
        return 0;
    }
    hits_apply(l, name, value, len, content ? parts : NULL, content ? n_parts : 0, hits, n_hits,
               out);
    det_hits_free(hits);
    if (content)
        wholes_apply(l, &o, parts, n_parts, out);
    return 0;
}

int pol_labeller_scan(const struct pol_labeller *l, const char *data, size_t len,
                      struct det_hit **hits, size_t *n_hits)
{
    struct det_opts o = DET_OPTS_INIT;
    o.enabled = l->enabled;
    o.n_enabled = l->n_enabled;
    o.max_hits = SIZE_MAX;
    *hits = NULL;
    *n_hits = 0;
    if (l->n_enabled == 0)
        return len > DET_MAX_BYTES ? BH_ETOOBIG : 0; /* "detectors": [] */
    int rc = det_scan_opts(data, len, &o, hits, n_hits);
    if (rc != 0)
        return rc;
    size_t kept = 0;
    for (size_t i = 0; i < *n_hits; i++)
        if (!value_allowed(l->p, data, &(*hits)[i]))
            (*hits)[kept++] = (*hits)[i];
    *n_hits = kept;
    if (kept == 0) {
        det_hits_free(*hits);
        *hits = NULL;
    }
    return 0;
}

int pol_label_field(const struct pol_labeller *l, const struct src_field *f, struct pol_value *out)
{
    int declared = pipe_source_field_label(l->p, f->name);
    return pol_label_value(l, f->name, declared, f->value, f->value ? f->len : 0, f->parts,
                           f->n_parts, f->error, out);
}

void pol_label_item(const struct pol_labeller *l, const struct src_item *item,
                    struct pol_value *out)
{
    const struct pipeline *p = l->p;
    for (size_t i = 0; i < p->source.n_fields; i++) {
        const struct src_field *f = src_item_find(item, p->source.fields[i]);
        struct src_field none = {p->source.fields[i], NULL, 0, "the source gave no value", NULL, 0};
        pol_label_field(l, f ? f : &none, &out[i]);
    }
}

int pol_label_key(const struct pol_labeller *l, const struct src_item *item, struct pol_value *out)
{
    const struct pipeline *p = l->p;
    const char *field = pipe_source_key_field(p->source.kind);
    /* No field to be labelled like: unknown, so top (the declared -1). */
    int declared = field ? pipe_source_field_label(p, field) : -1;
    const char *key = item->key;
    return pol_label_value(l, field ? field : "the item key", declared, key, key ? strlen(key) : 0,
                           NULL, 0, "the item has no key", out);
}

int pol_label_template(const struct pol_labeller *l, const struct pipe_tpl *t,
                       struct pol_value *out)
{
    struct bh_buf b;
    int rc = 0;
    bh_buf_init(&b, DET_MAX_BYTES);
    /* The words around the placeholders, each on a line of its own: a key
     * split by a placeholder is no key, and two parts must not make one. */
    for (size_t i = 0; rc == 0 && i < t->n_parts; i++)
        if (!t->parts[i].is_field)
            rc = bh_buf_printf(&b, "%s\n", t->parts[i].text);
    const char *text = rc ? NULL : b.data ? b.data : "";
    pol_label_value(l, "the prompt template", 0, text, rc ? 0 : b.len, NULL, 0,
                    "the template is too large to scan", out);
    bh_buf_release(&b);
    return 0;
}

void pol_value_release(struct pol_value *v)
{
    if (!v)
        return;
    free(v->reasons);
    memset(v, 0, sizeof(*v));
}

void pol_reason_format(const struct pipeline *p, const struct pol_reason *r, char *buf, size_t size)
{
    const char *lab = pol_label_name(p, r->label);
    switch (r->by) {
    case POL_LBL_DECLARED:
        if (r->path)
            snprintf(buf, size, "declared %s for %s, which the file was renamed or copied from",
                     lab, r->path);
        else
            snprintf(buf, size, "declared %s", lab);
        break;
    case POL_LBL_RULE: snprintf(buf, size, "rule \"%s\" (%s) for %s", r->what, lab, r->path); break;
    case POL_LBL_DETECTOR:
        if (r->path)
            snprintf(buf, size, "detector %s (%s) at line %zu of %s%s%s", r->what, lab, r->line,
                     r->in_diff == POL_IN_DIFF ? "the diff of " : "", r->path,
                     r->in_diff == POL_IN_OLD   ? " before the change (the whole file)"
                     : r->in_diff == POL_IN_NEW ? " after the change (the whole file)"
                                                : "");
        else
            snprintf(buf, size, "detector %s (%s) at line %zu", r->what, lab, r->line);
        break;
    case POL_LBL_UNSCANNED: snprintf(buf, size, "unscanned, so %s: %s", lab, r->what); break;
    }
}
