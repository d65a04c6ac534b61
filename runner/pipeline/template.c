/* pipeline/template.c — prompt templates.
 *
 * The syntax is deliberately tiny: "{{", a field name with optional blanks
 * around it, "}}". No escapes, no filters, no conditionals: what a stage sees
 * must be obvious from the file, and every placeholder's label is known
 * statically. The parser records the line and column of each placeholder so
 * that errors here, and rendering errors later, point into the template. */
#include "pipeline/template.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_utf8.h"
#include "util/bh_xmalloc.h"

/* A position in the text: byte offset, line, characters before it on the line. */
struct cursor {
    const char *s;
    size_t i;
    int line, chars;
};

static void move_to(struct cursor *c, size_t to)
{
    for (; c->i < to; c->i++) {
        unsigned char b = (unsigned char)c->s[c->i];
        if (b == '\n') {
            c->line++;
            c->chars = 0;
        } else if (!bh_utf8_cont(b)) {
            c->chars++;
        }
    }
}

static int fail(struct bh_err *err, const char *file, int line, int col, const char *fmt, ...)
    BH_PRINTF(5, 6);

static int fail(struct bh_err *err, const char *file, int line, int col, const char *fmt, ...)
{
    char msg[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bh_err_at(err, file, line, col, "");
    return bh_err_set(err, BH_EINVAL, "%s", msg);
}

/* Offset of the next "ab" pair at or after from, or len. */
static size_t find_pair(const char *s, size_t len, size_t from, char a, char b)
{
    for (size_t i = from; i + 1 < len; i++)
        if (s[i] == a && s[i + 1] == b)
            return i;
    return len;
}

static void add_part(struct pipe_tpl *t, size_t *cap, int is_field, const char *s, size_t n,
                     const struct cursor *at)
{
    if (t->n_parts == *cap)
        t->parts = bh_xgrow(t->parts, cap, t->n_parts + 1, sizeof(*t->parts));
    t->parts[t->n_parts++] =
        (struct pipe_tpl_part){is_field, bh_xstrndup(s, n), at->line, at->chars + 1};
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* The placeholder between open ("{{") and close ("}}"): validates the name's
 * characters and appends it. */
static int placeholder(struct pipe_tpl *t, size_t *cap, const struct cursor *at, size_t open,
                       size_t close, struct bh_err *err)
{
    const char *s = at->s;
    size_t b = open + 2, e = close;
    while (b < e && is_blank(s[b]))
        b++;
    while (e > b && is_blank(s[e - 1]))
        e--;
    if (b == e)
        return fail(err, t->file, at->line, at->chars + 1,
                    "empty placeholder — write a field name between the braces, e.g. "
                    "{{ pr.diff }} or {{ plan.output }}");
    for (size_t k = b; k < e; k++)
        if (!name_char(s[k]))
            return fail(err, t->file, at->line, at->chars + 1,
                        "invalid placeholder \"{{ %.*s }}\" — a field name has letters, digits, "
                        "'_', '-' and dots, e.g. {{ pr.diff }}; \"{{\" cannot be escaped",
                        (int)(e - b > 64 ? 64 : e - b), s + b);
    add_part(t, cap, 1, s + b, e - b, at);
    return 0;
}

static int check_nul(const char *text, size_t len, const char *file, struct bh_err *err)
{
    const char *nul = memchr(text, '\0', len);
    if (!nul)
        return 0;
    struct cursor c = {text, 0, 1, 0};
    move_to(&c, (size_t)(nul - text));
    return fail(err, file, c.line, c.chars + 1,
                "the template contains a NUL byte — prompt templates are text files");
}

static int parse_parts(struct pipe_tpl *t, const char *text, size_t len, struct bh_err *err)
{
    struct cursor cur = {text, 0, 1, 0}, lit = cur;
    size_t cap = 0;
    for (;;) {
        size_t open = find_pair(text, len, cur.i, '{', '{');
        if (open > lit.i)
            add_part(t, &cap, 0, text + lit.i, open - lit.i, &lit);
        if (open == len)
            return 0;
        move_to(&cur, open);
        size_t close = find_pair(text, len, open + 2, '}', '}');
        if (close == len)
            return fail(err, t->file, cur.line, cur.chars + 1,
                        "unterminated \"{{\" — close the placeholder with \"}}\"");
        int rc = placeholder(t, &cap, &cur, open, close, err);
        if (rc)
            return rc;
        move_to(&cur, close + 2);
        lit = cur;
    }
}

int pipe_tpl_parse(struct pipe_tpl *t, const char *file, const char *text, size_t len,
                   struct bh_err *err)
{
    t->file = bh_xstrdup(file);
    int rc = check_nul(text, len, file, err);
    if (rc == 0)
        rc = parse_parts(t, text, len, err);
    if (rc)
        pipe_tpl_release(t);
    return rc;
}

void pipe_tpl_release(struct pipe_tpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_parts; i++)
        free(t->parts[i].text);
    free(t->parts);
    free(t->file);
    memset(t, 0, sizeof(*t));
}

static int is_source_field(const char *field, const struct pipe_tpl_scope *scope)
{
    for (size_t i = 0; i < scope->n_fields; i++)
        if (strcmp(field, scope->fields[i]) == 0)
            return 1;
    return 0;
}

static int is_each_field(const char *field, const struct pipe_tpl_scope *scope)
{
    for (size_t i = 0; i < scope->n_each; i++)
        if (strcmp(field, scope->each[i]) == 0)
            return 1;
    return 0;
}

static int each_like(const char *field)
{
    return strcmp(field, "each") == 0 || strncmp(field, "each.", 5) == 0;
}

/* "each" or "each.x" that the stage's for_each does not provide. */
static int each_unknown(const struct pipe_tpl *t, const struct pipe_tpl_part *part,
                        const struct pipe_tpl_scope *scope, struct bh_err *err)
{
    if (scope->n_each == 0)
        return fail(err, t->file, part->line, part->col,
                    "field \"%s\" is only defined in a stage with for_each — add \"for_each\": "
                    "\"pr.files\" (each.path, each.status, each.diff) or \"for_each\": "
                    "\"STAGE.output\" (each) to the stage",
                    part->text);
    const char *best = bh_str_suggest(part->text, scope->each, scope->n_each);
    char *known = bh_str_join(scope->each, scope->n_each);
    int rc = fail(err, t->file, part->line, part->col,
                  "unknown field \"%s\" — for_each \"%s\" provides %s%s%s%s", part->text,
                  scope->for_each, known, best ? "; did you mean \"" : "", best ? best : "",
                  best ? "\"?" : "");
    free(known);
    return rc;
}

static long stage_prefix(const char *field, size_t n, const struct pipe_tpl_scope *scope)
{
    for (size_t i = 0; i < scope->n_stages; i++)
        if (strlen(scope->stages[i]) == n && strncmp(field, scope->stages[i], n) == 0)
            return (long)i;
    return -1;
}

long pipe_tpl_field_stage(const char *field, const struct pipe_tpl_scope *scope)
{
    const char *dot = strchr(field, '.');
    if (!dot || strcmp(dot, ".output") != 0 || is_source_field(field, scope))
        return -1; /* a source field wins over a stage of the same name */
    return stage_prefix(field, (size_t)(dot - field), scope);
}

/* A field that names neither a source field nor a stage: suggest the closest
 * of every readable name. */
static int unknown_field(const struct pipe_tpl *t, const struct pipe_tpl_part *part,
                         const struct pipe_tpl_scope *scope, struct bh_err *err)
{
    size_t n = scope->n_fields + scope->n_stages + scope->n_each;
    char **all = bh_xcalloc(n ? n : 1, sizeof(*all));
    for (size_t i = 0; i < scope->n_fields; i++)
        all[i] = bh_xstrdup(scope->fields[i]);
    for (size_t i = 0; i < scope->n_stages; i++)
        all[scope->n_fields + i] = bh_xasprintf("%s.output", scope->stages[i]);
    for (size_t i = 0; i < scope->n_each; i++)
        all[scope->n_fields + scope->n_stages + i] = bh_xstrdup(scope->each[i]);
    const char *best = bh_str_suggest(part->text, (const char *const *)all, n);
    char *fields = bh_str_join(scope->fields, scope->n_fields);
    int rc = best ? fail(err, t->file, part->line, part->col,
                         "unknown field \"%s\" — did you mean \"%s\"?", part->text, best)
                  : fail(err, t->file, part->line, part->col,
                         "unknown field \"%s\" — a placeholder names a source field (%s) or a "
                         "stage's output (<stage>.output)",
                         part->text, fields);
    free(fields);
    for (size_t i = 0; i < n; i++)
        free(all[i]);
    free(all);
    return rc;
}

static int check_part(const struct pipe_tpl *t, const struct pipe_tpl_part *part,
                      const struct pipe_tpl_scope *scope, struct bh_err *err)
{
    const char *f = part->text, *dot = strchr(f, '.');
    if (is_source_field(f, scope) || is_each_field(f, scope))
        return 0;
    if (each_like(f) && stage_prefix(f, 4, scope) < 0)
        return each_unknown(t, part, scope, err);
    if (!dot)
        return unknown_field(t, part, scope, err);
    size_t n = (size_t)(dot - f);
    if (stage_prefix(f, n, scope) >= 0) {
        if (strcmp(dot + 1, "output") == 0)
            return 0;
        return fail(err, t->file, part->line, part->col,
                    "stage \"%.*s\" has no field \"%s\" — a stage provides only its output: "
                    "{{ %.*s.output }}",
                    (int)n, f, dot + 1, (int)n, f);
    }
    if (strcmp(dot + 1, "output") != 0)
        return unknown_field(t, part, scope, err);
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)n, f);
    const char *best = bh_str_suggest(name, scope->stages, scope->n_stages);
    char *known = bh_str_join(scope->stages, scope->n_stages);
    int rc = fail(err, t->file, part->line, part->col,
                  "unknown stage \"%s\" in {{ %s }} (stages: %s) — %s%s%s", name, f, known,
                  best ? "did you mean \"" : "add the stage or fix the name", best ? best : "",
                  best ? "\"?" : "");
    free(known);
    return rc;
}

int pipe_tpl_check(const struct pipe_tpl *t, const struct pipe_tpl_scope *scope, struct bh_err *err)
{
    for (size_t i = 0; i < t->n_parts; i++) {
        if (!t->parts[i].is_field)
            continue;
        int rc = check_part(t, &t->parts[i], scope, err);
        if (rc)
            return rc;
    }
    return 0;
}
