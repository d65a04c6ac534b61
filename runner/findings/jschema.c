/* findings/jschema.c — a small JSON-schema checker for model replies. One
 * recursive walk over the schema and the value together; the first value
 * that does not fit stops it with its JSON path and what was expected.
 * A subset on purpose (see jschema.h): the provider's schema mode does the
 * constraining, this only has to catch a reply that escaped it, and a full
 * validator (references, combinators, formats) would be most of the code
 * for the least of the cases. Messages never quote the reply: it may carry
 * anything the prompt did, and the message goes to logs and reports. */
#include "findings/jschema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_utf8.h"

#define PATH_MAX_LEN 256

static const char *kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int is_type(const json_t *v, const char *type)
{
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "integer") == 0) /* 3.0 is an integer in JSON schema */
        return json_is_integer(v) ||
               (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v));
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "null") == 0)
        return json_is_null(v);
    return 1; /* a type bulkhead does not know: not checked */
}

/* "a string", "one of the types string, null" */
static int check_type(const json_t *schema, const json_t *v, const char *where, struct bh_err *err)
{
    const json_t *t = json_object_get(schema, "type");
    if (json_is_string(t))
        return is_type(v, json_string_value(t))
                   ? 0
                   : bh_err_set(err, BH_EREPLY, "%s: expected %s %s, found %s", where,
                                strchr("aeiou", json_string_value(t)[0]) ? "an" : "a",
                                json_string_value(t), kind_name(v));
    if (!json_is_array(t) || json_array_size(t) == 0)
        return 0;
    char names[200] = "";
    size_t i;
    const json_t *e;
    json_array_foreach(t, i, e)
    {
        if (json_is_string(e) && is_type(v, json_string_value(e)))
            return 0;
        size_t len = strlen(names);
        snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
                 json_is_string(e) ? json_string_value(e) : "?");
    }
    return bh_err_set(err, BH_EREPLY, "%s: expected one of the types %s, found %s", where, names,
                      kind_name(v));
}

/* An enum value as the message shows it: a string bare, anything else as JSON. */
static void enum_item(char *buf, size_t size, const json_t *e)
{
    if (json_is_string(e)) {
        snprintf(buf, size, "%s", json_string_value(e));
        return;
    }
    char *s = bh_json_dump(e, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, size, "%s", s ? s : "?");
    free(s);
}

static int check_enum(const json_t *schema, const json_t *v, const char *where, struct bh_err *err)
{
    const json_t *c = json_object_get(schema, "const");
    char one[100];
    if (c && !json_equal(c, v)) {
        enum_item(one, sizeof(one), c);
        return bh_err_set(err, BH_EREPLY, "%s: expected %s", where, one);
    }
    const json_t *en = json_object_get(schema, "enum");
    if (!json_is_array(en))
        return 0;
    char names[300] = "";
    size_t i;
    const json_t *e;
    json_array_foreach(en, i, e)
    {
        if (json_equal(e, v))
            return 0;
        enum_item(one, sizeof(one), e);
        size_t len = strlen(names);
        snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "", one);
    }
    return bh_err_set(err, BH_EREPLY, "%s: expected one of %s", where, names);
}

/* minimum, maximum, minLength, maxLength, minItems, maxItems: one table. */
struct bound {
    const char *key;
    int is_max;
    const char *unit; /* NULL: the value itself */
};

static const struct bound num_bounds[] = {{"minimum", 0, NULL}, {"maximum", 1, NULL}};
static const struct bound str_bounds[] = {{"minLength", 0, "character"},
                                          {"maxLength", 1, "character"}};
static const struct bound arr_bounds[] = {{"minItems", 0, "element"}, {"maxItems", 1, "element"}};

static int check_bounds(const json_t *schema, double have, const struct bound *b, const char *where,
                        struct bh_err *err)
{
    for (int i = 0; i < 2; i++) {
        const json_t *lim = json_object_get(schema, b[i].key);
        if (!json_is_number(lim))
            continue;
        double l = json_number_value(lim);
        if (b[i].is_max ? have <= l : have >= l)
            continue;
        return bh_err_set(err, BH_EREPLY, "%s: expected %s %.15g%s%s%s", where,
                          b[i].is_max ? "at most" : "at least", l, b[i].unit ? " " : "",
                          b[i].unit ? b[i].unit : "", b[i].unit && l != 1 ? "s" : "");
    }
    return 0;
}

static int walk(const json_t *schema, const json_t *v, const char *where, struct bh_err *err);

static void child_key(char *out, const char *where, const char *key)
{
    int plain = key[0] && strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_-") == strlen(key);
    if (plain)
        snprintf(out, PATH_MAX_LEN, "%s.%s", where, key);
    else
        snprintf(out, PATH_MAX_LEN, "%s[\"%s\"]", where, key);
}

/* The key itself is the reply's text: the message names the allowed ones. */
static int extra_key(const json_t *props, const char *where, struct bh_err *err)
{
    char names[300] = "";
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)props, key, val)
    {
        size_t len = strlen(names);
        snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", key);
    }
    return bh_err_set(err, BH_EREPLY, "%s: has a key the schema does not allow (allowed: %s)",
                      where, names[0] ? names : "none");
}

static int check_object(const json_t *schema, const json_t *v, const char *where,
                        struct bh_err *err)
{
    const json_t *req = json_object_get(schema, "required"),
                 *props = json_object_get(schema, "properties"),
                 *extra = json_object_get(schema, "additionalProperties");
    size_t i;
    const json_t *e;
    json_array_foreach(req, i, e)
    {
        if (json_is_string(e) && !json_object_get(v, json_string_value(e)))
            return bh_err_set(err, BH_EREPLY, "%s: \"%s\" is required", where,
                              json_string_value(e));
    }
    const char *key;
    json_t *val;
    char sub[PATH_MAX_LEN];
    json_object_foreach((json_t *)v, key, val)
    {
        const json_t *ps = json_object_get(props, key);
        if (!ps && json_is_false(extra))
            return extra_key(props, where, err);
        const json_t *s = ps ? ps : json_is_object(extra) ? extra : NULL;
        child_key(sub, where, key);
        int rc = s ? walk(s, val, sub, err) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int check_array(const json_t *schema, const json_t *v, const char *where, struct bh_err *err)
{
    int rc = check_bounds(schema, (double)json_array_size(v), arr_bounds, where, err);
    const json_t *items = json_object_get(schema, "items");
    if (rc || !json_is_object(items))
        return rc;
    size_t i;
    const json_t *e;
    char sub[PATH_MAX_LEN];
    json_array_foreach(v, i, e)
    {
        snprintf(sub, sizeof(sub), "%s[%zu]", where, i);
        if ((rc = walk(items, e, sub, err)) != 0)
            return rc;
    }
    return 0;
}

/* Characters, not bytes: what minLength means. */
static double utf8_length(const char *s)
{
    return (double)bh_utf8_count(s, strlen(s));
}

static int walk(const json_t *schema, const json_t *v, const char *where, struct bh_err *err)
{
    if (!json_is_object(schema))
        return 0; /* true, or a schema bulkhead cannot read: anything goes */
    int rc = check_type(schema, v, where, err);
    if (rc == 0)
        rc = check_enum(schema, v, where, err);
    if (rc)
        return rc;
    if (json_is_object(v))
        return check_object(schema, v, where, err);
    if (json_is_array(v))
        return check_array(schema, v, where, err);
    if (json_is_string(v))
        return check_bounds(schema, utf8_length(json_string_value(v)), str_bounds, where, err);
    if (json_is_number(v))
        return check_bounds(schema, json_number_value(v), num_bounds, where, err);
    return 0;
}

int stage_jschema_validate(const json_t *schema, const json_t *v, const char *where,
                           struct bh_err *err)
{
    return walk(schema, v, where, err);
}

int stage_json_read(const char *text, json_t **out, struct bh_err *err)
{
    const char *s = text + strspn(text, " \t\r\n");
    size_t len = strlen(s);
    if (strncmp(s, "```", 3) == 0 && strchr(s, '\n')) {
        const char *body = strchr(s, '\n') + 1, *end = strstr(body, "```");
        s = body;
        len = end ? (size_t)(end - body) : strlen(body);
    }
    json_error_t je;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return bh_err_set(err, BH_EREPLY, "the reply is not JSON (line %d, column %d)", je.line,
                          je.column);
    *out = j;
    return 0;
}
