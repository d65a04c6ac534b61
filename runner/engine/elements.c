/* engine/elements.c — the lists a for_each runs over: the files of a pull
 * request (pr.files) and a stage's reply read as a JSON array. jansson stays
 * in this file. A reply that is not an array fails the fan-out with a message
 * that says what was found but quotes none of it: the reply carries its
 * prompt's label and messages go to places that have none. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "sources/src_git.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_xmalloc.h"

void eng_elems_free(struct eng_elem *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].key);
        free(v[i].value);
        free(v[i].status);
        free(v[i].old_path);
    }
    free(v);
}

static int key_taken(const struct eng_elem *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].key, key) == 0)
            return 1;
    return 0;
}

void eng_elems_from_files(const char *files, struct eng_elem **out, size_t *n)
{
    struct eng_elem *v = NULL;
    size_t count = 0, cap = 0;
    for (const char *line = files; line && *line;) {
        size_t len = strcspn(line, "\n"), plen = 0, olen = 0;
        const char *old = NULL, *path = src_git_files_line_path(line, len, &plen, &old, &olen);
        const char *tab = memchr(line, '\t', len);
        if (plen) {
            v = bh_xgrow(v, &cap, count + 1, sizeof(*v));
            struct eng_elem *el = &v[count];
            el->value = bh_xstrndup(path, plen);
            el->old_path = old ? bh_xstrndup(old, olen) : NULL;
            el->status = tab ? bh_xstrndup(line, (size_t)(tab - line)) : bh_xstrdup("");
            el->key = bh_xstrdup(el->value);
            for (int k = 2; key_taken(v, count, el->key); k++) {
                free(el->key);
                el->key = bh_xasprintf("%s (%d)", el->value, k);
            }
            count++;
        }
        line += len + (line[len] == '\n');
    }
    *out = v;
    *n = count;
}

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "a JSON object";
    case JSON_STRING: return "a JSON string";
    case JSON_INTEGER:
    case JSON_REAL: return "a JSON number";
    case JSON_TRUE:
    case JSON_FALSE: return "a JSON boolean";
    case JSON_NULL: return "JSON null";
    case JSON_ARRAY: break;
    }
    return "a JSON array";
}

/* A reply wrapped in a Markdown fence (```json ... ```) is read inside it:
 * models do that even when asked not to. */
static char *unfence(const char *text)
{
    const char *s = text + strspn(text, " \t\r\n");
    if (strncmp(s, "```", 3) != 0)
        return bh_xstrdup(s);
    const char *body = strchr(s, '\n');
    if (!body)
        return bh_xstrdup(s);
    body++;
    const char *end = strstr(body, "```");
    return bh_xstrndup(body, end ? (size_t)(end - body) : strlen(body));
}

static char *elem_text(const json_t *j)
{
    if (json_is_string(j))
        return bh_xstrndup(json_string_value(j), json_string_length(j));
    char *s = bh_json_dump(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort(); /* out of memory: jansson gives no other reason */
    char *copy = bh_xstrdup(s);
    free(s);
    return copy;
}

static int parse_array(const char *text, const char *stage, json_t **out, struct bh_err *err)
{
    json_error_t je;
    char *body = unfence(text);
    json_t *j = json_loads(body, JSON_DECODE_ANY, &je);
    free(body);
    if (!j)
        return bh_err_set(err, BH_EREPLY,
                          "for_each: the output of stage '%s' is not JSON (line %d, column %d): "
                          "have its prompt ask for a JSON array of the elements",
                          stage, je.line, je.column);
    if (!json_is_array(j)) {
        bh_err_set(err, BH_EREPLY,
                   "for_each: the output of stage '%s' is %s, not a JSON array: have its prompt "
                   "ask for a JSON array of the elements",
                   stage, type_name(j));
        json_decref(j);
        return BH_EREPLY;
    }
    if (json_array_size(j) > ENG_MAX_ELEMENTS) {
        bh_err_set(err, BH_ETOOBIG,
                   "for_each: the output of stage '%s' has %zu elements, more "
                   "than bulkhead runs in one fan-out (%d)",
                   stage, json_array_size(j), ENG_MAX_ELEMENTS);
        json_decref(j);
        return BH_ETOOBIG;
    }
    *out = j;
    return 0;
}

int eng_elems_from_json(const char *text, const char *stage, struct eng_elem **out, size_t *n,
                        struct bh_err *err)
{
    json_t *j = NULL;
    int rc = parse_array(text ? text : "", stage, &j, err);
    if (rc)
        return rc;
    size_t count = json_array_size(j);
    struct eng_elem *v = bh_xcalloc(count ? count : 1, sizeof(*v));
    for (size_t i = 0; i < count; i++) {
        v[i].key = bh_xasprintf("%zu", i);
        v[i].value = elem_text(json_array_get(j, i));
    }
    json_decref(j);
    *out = v;
    *n = count;
    return 0;
}
