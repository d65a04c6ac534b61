/* pipeline/yaml.c — YAML pipeline files, mapped onto the JSON tree.
 *
 * A .yaml/.yml file is parsed with libyaml's event API into exactly the
 * json_t tree jansson builds for the equivalent JSON file, and the position
 * index is filled from libyaml's marks (0-based there, 1-based here; columns
 * count characters, as the JSON scanner does). Everything after parsing —
 * schema, messages, JSON paths — is shared with the JSON path, so a YAML
 * file is checked exactly like its JSON twin.
 *
 * Scalars follow the YAML 1.2 core schema, narrowed to what JSON can hold:
 * a plain scalar that reads as an integer, a fractional number, true/false or
 * null (~, empty) becomes that; every other scalar, and every quoted or block
 * scalar, is a string ("1" stays a string; `no` is a string, as in YAML 1.2).
 * Refused, each with its position: anchors and aliases (an alias can build an
 * exponentially large document from a small file), tags outside the core
 * schema, duplicate keys, keys that are not strings, a second document, and
 * nesting deeper than PIPE_MAX_DEPTH. The first error ends the parse: what
 * follows a syntax error cannot be trusted. */
#include "pipeline/load.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util/bh_json.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

enum ytype { Y_NONE, Y_STR, Y_INT, Y_FLOAT, Y_BOOL, Y_NULL, Y_MAP, Y_SEQ };

static const struct {
    const char *tag, *shown;
    enum ytype t;
} core_tags[] = {
    {"tag:yaml.org,2002:str", "!!str", Y_STR},       {"tag:yaml.org,2002:int", "!!int", Y_INT},
    {"tag:yaml.org,2002:float", "!!float", Y_FLOAT}, {"tag:yaml.org,2002:bool", "!!bool", Y_BOOL},
    {"tag:yaml.org,2002:null", "!!null", Y_NULL},    {"tag:yaml.org,2002:map", "!!map", Y_MAP},
    {"tag:yaml.org,2002:seq", "!!seq", Y_SEQ},
};

struct yb {
    yaml_parser_t parser;
    yaml_event_t ev; /* the current event, when have_ev */
    int have_ev;
    const char *file, *text;
    size_t len;
    struct bh_err *err;
    struct pipe_posindex *ix;
    char path[PIPE_PATH_MAX];
    size_t plen;
    int recording; /* 0 below a path too long to record */
    int depth;
};

static int yfail(struct yb *y, yaml_mark_t at, const char *fmt, ...) BH_PRINTF(3, 4);

/* Fails at a libyaml mark, showing the path of the node being built. */
static int yfail(struct yb *y, yaml_mark_t at, const char *fmt, ...)
{
    char msg[sizeof(y->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bh_err_clear(y->err);
    bh_err_at(y->err, y->file, (int)at.line + 1, (int)at.column + 1, y->path);
    return bh_err_set(y->err, BH_EINVAL, "%s", msg);
}

/* ---- syntax errors ---- */

static const struct {
    const char *text, *hint;
} syntax_hints[] = {
    {"cannot start any token", "YAML indents with spaces, never tabs; quote a value that "
                               "starts with '@' or '`'"},
    {"tab character", "YAML indents with spaces, never tabs"},
    {"mapping values are not allowed", "quote a value that contains \": \", or check this "
                                       "line's indentation"},
    {"did not find expected key", "check that this line is indented like the keys around it"},
    {"did not find expected ',' or", "is a comma or the closing bracket missing?"},
    {"unexpected end of stream", "a quote or a bracket is not closed"},
    {"unknown escape character", "in double quotes write \\\\ for a backslash, or use single "
                                 "quotes"},
};

/* Line and column (1-based, in characters) of a byte offset: libyaml's
 * reader errors carry only the offset. */
static void offset_pos(const struct yb *y, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < y->len; i++) {
        unsigned char c = (unsigned char)y->text[i];
        if (c == '\n') {
            ++*line;
            *col = 1;
        } else if (!bh_utf8_cont(c)) {
            ++*col;
        }
    }
}

static int syntax_fail(struct yb *y)
{
    const yaml_parser_t *ps = &y->parser;
    const char *problem = ps->problem ? ps->problem : "the parser failed", *hint = NULL;
    char context[160] = "", value[32] = "";
    int line = (int)ps->problem_mark.line + 1, col = (int)ps->problem_mark.column + 1;
    if (ps->error == YAML_READER_ERROR) {
        offset_pos(y, ps->problem_offset, &line, &col);
        if (ps->problem_value >= 0)
            snprintf(value, sizeof(value), " (0x%X)", (unsigned)ps->problem_value);
    }
    if (ps->context)
        snprintf(context, sizeof(context), " %s that starts at %d:%d", ps->context,
                 (int)ps->context_mark.line + 1, (int)ps->context_mark.column + 1);
    for (size_t i = 0; i < BH_NELEM(syntax_hints); i++)
        if (strstr(problem, syntax_hints[i].text))
            hint = syntax_hints[i].hint;
    if (ps->error == YAML_READER_ERROR)
        hint = "a pipeline file is UTF-8 text";
    bh_err_clear(y->err);
    bh_err_at(y->err, y->file, line, col, "");
    return bh_err_set(y->err, BH_EINVAL, "invalid YAML: %s%s%s%s%s", problem, value, context,
                      hint ? " — " : "", hint ? hint : "");
}

/* Moves to the next event (the current one is freed). */
static int next(struct yb *y)
{
    if (y->have_ev)
        yaml_event_delete(&y->ev);
    y->have_ev = yaml_parser_parse(&y->parser, &y->ev) != 0;
    return y->have_ev ? 0 : syntax_fail(y);
}

/* ---- scalars ---- */

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int is_int(const char *s)
{
    return all_digits(s + (*s == '-' || *s == '+'));
}

/* [-+]? ( digits ( . digits? )? | . digits ) ( [eE] [-+]? digits )? */
static int is_float(const char *s)
{
    s += *s == '-' || *s == '+';
    size_t a = strspn(s, "0123456789");
    s += a;
    size_t b = 0;
    if (*s == '.') {
        b = strspn(s + 1, "0123456789");
        s += 1 + b;
    }
    if (a + b == 0)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        s += *s == '-' || *s == '+';
        return all_digits(s);
    }
    return *s == '\0';
}

static int one_of(const char *s, const char *a, const char *b, const char *c)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0 || strcmp(s, c) == 0;
}

/* What a plain (unquoted, untagged) scalar reads as. */
static enum ytype plain_type(const char *s)
{
    if (!*s || strcmp(s, "~") == 0 || one_of(s, "null", "Null", "NULL"))
        return Y_NULL;
    if (one_of(s, "true", "True", "TRUE") || one_of(s, "false", "False", "FALSE"))
        return Y_BOOL;
    if (is_int(s))
        return Y_INT;
    return is_float(s) ? Y_FLOAT : Y_STR;
}

static const char *type_word(enum ytype t)
{
    switch (t) {
    case Y_INT: return "an integer";
    case Y_FLOAT: return "a number";
    case Y_BOOL: return "a boolean";
    case Y_NULL: return "null";
    default: return "a string";
    }
}

/* The value of scalar s read as t; NULL when s is not one (or out of range). */
static json_t *scalar_value(const char *s, size_t n, enum ytype t)
{
    if (t == Y_STR)
        return json_stringn(s, n); /* NULL on bad UTF-8, which libyaml does not let through */
    if (plain_type(s) != t && !(t == Y_FLOAT && plain_type(s) == Y_INT))
        return NULL;
    errno = 0;
    if (t == Y_INT) {
        long long v = strtoll(s, NULL, 10);
        return errno ? NULL : json_integer(v);
    }
    if (t == Y_FLOAT) {
        double d = strtod(s, NULL);
        return errno || !isfinite(d) ? NULL : json_real(d);
    }
    if (t == Y_BOOL)
        return json_boolean(s[0] == 't' || s[0] == 'T');
    return json_null();
}

static int scalar(struct yb *y, enum ytype tag, json_t **out)
{
    const yaml_event_t *e = &y->ev;
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    enum ytype t = tag;
    if (t == Y_NONE)
        t = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_type(s) : Y_STR;
    *out = scalar_value(s, n, t);
    if (*out)
        return 0;
    if (tag == Y_NONE && (t == Y_INT || t == Y_FLOAT))
        return yfail(y, e->start_mark, "the number %.40s is out of range", s);
    return yfail(y, e->start_mark, "\"%.40s\" is not %s — remove the tag, or fix the value", s,
                 type_word(t));
}

/* ---- anchors, aliases and tags ---- */

static int tag_type(struct yb *y, const yaml_char_t *tag, enum ytype *t)
{
    *t = Y_NONE;
    if (!tag)
        return 0;
    for (size_t i = 0; i < BH_NELEM(core_tags); i++)
        if (strcmp((const char *)tag, core_tags[i].tag) == 0) {
            *t = core_tags[i].t;
            return 0;
        }
    return yfail(y, y->ev.start_mark,
                 "unsupported tag \"%.60s\" — only the core tags (!!str, "
                 "!!int, !!float, !!bool, !!null, !!map, !!seq) are allowed; remove it",
                 (const char *)tag);
}

/* The current event starts a node: refuses aliases and anchors, reads its tag. */
static int node_check(struct yb *y, enum ytype *t)
{
    const yaml_event_t *e = &y->ev;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    if (e->type == YAML_ALIAS_EVENT)
        return yfail(y, e->start_mark,
                     "aliases are not supported (found \"*%.60s\") — write "
                     "the value out in full",
                     (const char *)e->data.alias.anchor);
    if (e->type == YAML_SCALAR_EVENT) {
        anchor = e->data.scalar.anchor;
        tag = e->data.scalar.tag;
    } else if (e->type == YAML_SEQUENCE_START_EVENT) {
        anchor = e->data.sequence_start.anchor;
        tag = e->data.sequence_start.tag;
    } else if (e->type == YAML_MAPPING_START_EVENT) {
        anchor = e->data.mapping_start.anchor;
        tag = e->data.mapping_start.tag;
    }
    if (anchor)
        return yfail(y, e->start_mark,
                     "anchors are not supported (found \"&%.60s\") — write "
                     "the value out in full",
                     (const char *)anchor);
    return tag_type(y, tag, t);
}

/* ---- collections ---- */

static int node(struct yb *y, json_t **out, int key_line, int key_col);

/* Builds the node at the current event under the path extended to nl bytes
 * ((size_t)-1: too long, nothing below is recorded), then restores it. */
static int child(struct yb *y, size_t nl, json_t **out, int key_line, int key_col)
{
    size_t saved = y->plen;
    int rec = y->recording;
    if (nl == (size_t)-1)
        y->recording = 0;
    else
        y->plen = nl;
    int rc = node(y, out, key_line, key_col);
    y->plen = saved;
    y->path[saved] = '\0';
    y->recording = rec;
    return rc;
}

/* A mapping key: a scalar that reads as a string, without NUL bytes. */
static int key_string(struct yb *y, const char **key)
{
    enum ytype t = Y_NONE;
    int rc = node_check(y, &t);
    if (rc)
        return rc;
    const yaml_event_t *e = &y->ev;
    if (e->type != YAML_SCALAR_EVENT)
        return yfail(y, e->start_mark, "expected a key, found a %s — keys are names",
                     e->type == YAML_MAPPING_START_EVENT ? "mapping" : "sequence");
    const char *s = (const char *)e->data.scalar.value;
    if (t == Y_NONE)
        t = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_type(s) : Y_STR;
    if (t != Y_STR)
        return yfail(y, e->start_mark,
                     "expected a string key, found %s (%.40s) — quote it to "
                     "use it as a name: \"%.40s\"",
                     type_word(t), s, s);
    if (strlen(s) != e->data.scalar.length)
        return yfail(y, e->start_mark, "a key contains a NUL character");
    *key = s;
    return 0;
}

/* One key and its value; the current event is the key. */
static int member(struct yb *y, json_t *obj)
{
    const char *k = NULL;
    int rc = key_string(y, &k);
    if (rc)
        return rc;
    if (json_object_get(obj, k))
        return yfail(y, y->ev.start_mark,
                     "duplicate key \"%.60s\" — each key may appear once "
                     "in a mapping",
                     k);
    char *key = bh_xstrdup(k); /* the event holding k is freed by next() */
    int kl = (int)y->ev.start_mark.line + 1, kc = (int)y->ev.start_mark.column + 1;
    size_t nl = pipe_path_key(y->path, sizeof(y->path), y->plen, key, strlen(key));
    json_t *v = NULL;
    rc = next(y);
    if (rc == 0)
        rc = child(y, nl, &v, kl, kc);
    if (rc == 0 && bh_json_set(obj, key, v, NULL))
        rc = yfail(y, y->ev.start_mark, "the value of \"%.60s\" cannot be held (not UTF-8 text)",
                   key);
    free(key);
    return rc;
}

static int mapping(struct yb *y, json_t **out)
{
    json_t *obj = json_object();
    int rc = 0;
    while ((rc = next(y)) == 0 && y->ev.type != YAML_MAPPING_END_EVENT)
        if ((rc = member(y, obj)) != 0)
            break;
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

static int sequence(struct yb *y, json_t **out)
{
    json_t *arr = json_array();
    int rc = 0;
    for (size_t i = 0; (rc = next(y)) == 0 && y->ev.type != YAML_SEQUENCE_END_EVENT; i++) {
        json_t *v = NULL;
        size_t nl = pipe_path_index(y->path, sizeof(y->path), y->plen, i);
        if ((rc = child(y, nl, &v, 0, 0)) != 0)
            break;
        if (bh_json_push(arr, v, NULL)) {
            rc = yfail(y, y->ev.start_mark, "an item cannot be held (not UTF-8 text)");
            break;
        }
    }
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* The node starting at the current event; records its position. */
static int node(struct yb *y, json_t **out, int key_line, int key_col)
{
    enum ytype t = Y_NONE;
    int rc = node_check(y, &t);
    if (rc)
        return rc;
    const yaml_event_t *e = &y->ev;
    if (y->depth >= PIPE_MAX_DEPTH)
        return yfail(y, e->start_mark, "nested deeper than %d levels", PIPE_MAX_DEPTH);
    if (y->recording) {
        struct pipe_pos pos = {y->path, (int)e->start_mark.line + 1, (int)e->start_mark.column + 1,
                               key_line, key_col};
        pipe_posindex_add(y->ix, &pos);
    }
    int is_map = e->type == YAML_MAPPING_START_EVENT, is_seq = e->type == YAML_SEQUENCE_START_EVENT;
    if ((t == Y_MAP && !is_map) || (t == Y_SEQ && !is_seq) ||
        ((is_map || is_seq) && t != Y_NONE && t != Y_MAP && t != Y_SEQ))
        return yfail(y, e->start_mark, "the tag does not match the value — remove it");
    if (!is_map && !is_seq)
        return scalar(y, t, out);
    y->depth++;
    rc = is_map ? mapping(y, out) : sequence(y, out);
    y->depth--;
    return rc;
}

/* ---- the stream: exactly one document ---- */

static int stream(struct yb *y, json_t **doc)
{
    int rc = next(y); /* stream start */
    if (rc == 0)
        rc = next(y);
    if (rc == 0 && y->ev.type == YAML_STREAM_END_EVENT) {
        bh_err_clear(y->err);
        bh_err_at(y->err, y->file, 0, 0, "");
        return bh_err_set(y->err, BH_EINVAL,
                          "the file holds no YAML document — a pipeline "
                          "file is a mapping with version, name, endpoints, source and stages");
    }
    if (rc == 0)
        rc = next(y); /* past the document start */
    if (rc == 0)
        rc = node(y, doc, 0, 0);
    if (rc == 0)
        rc = next(y); /* document end */
    if (rc == 0)
        rc = next(y);
    if (rc == 0 && y->ev.type == YAML_DOCUMENT_START_EVENT)
        rc = yfail(y, y->ev.start_mark,
                   "a second YAML document starts here — a pipeline "
                   "file holds one document; remove this \"---\" and what follows");
    return rc;
}

int pipe_yaml_parse(const char *file, const char *text, size_t len, json_t **root,
                    struct pipe_posindex **ix, struct bh_err *err)
{
    struct yb y = {.file = file, .text = text, .len = len, .err = err, .recording = 1};
    json_t *doc = NULL;
    if (!yaml_parser_initialize(&y.parser))
        abort(); /* out of memory */
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
    y.ix = pipe_posindex_new();
    int rc = stream(&y, &doc);
    if (y.have_ev)
        yaml_event_delete(&y.ev);
    yaml_parser_delete(&y.parser);
    if (rc) {
        json_decref(doc);
        pipe_posindex_free(y.ix);
        *root = NULL;
        *ix = NULL;
        return rc;
    }
    *root = doc;
    *ix = y.ix;
    return 0;
}
