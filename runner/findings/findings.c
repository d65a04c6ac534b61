/* findings/findings.c — the findings format: one fixed schema, checked with
 * the schema walker (jschema.c) so that the message for a bad reply has the
 * same shape as for a stage's own schema, plus what a schema cannot say
 * (end_line before line, a path outside the repository). The schema is kept
 * as text: it is sent to the model as it is, and parsed once per check
 * (cheap next to a model call). */
#include "findings/findings.h"

#include <stdlib.h>
#include <string.h>

#include "findings/jschema.h"
#include "util/bh_err.h"
#include "util/bh_invariant.h"
#include "util/bh_json.h"
#include "util/bh_xmalloc.h"

static const char *const severities[STAGE_SEV_COUNT] = {"info", "low", "medium", "high",
                                                        "critical"};

#define FINDING_SCHEMA                                                                             \
    "{\"type\":\"object\",\"properties\":{"                                                        \
    "\"path\":{\"type\":\"string\",\"minLength\":1},"                                              \
    "\"line\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000000},"                         \
    "\"end_line\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000000},"                     \
    "\"severity\":{\"type\":\"string\",\"enum\":[\"info\",\"low\",\"medium\",\"high\","            \
    "\"critical\"]},"                                                                              \
    "\"rule\":{\"type\":\"string\"},"                                                              \
    "\"message\":{\"type\":\"string\",\"minLength\":1},"                                           \
    "\"suggestion\":{\"type\":\"string\"}},"                                                       \
    "\"required\":[\"path\",\"line\",\"severity\",\"message\"]}"
#define ARRAY_SCHEMA "{\"type\":\"array\",\"maxItems\":1000,\"items\":" FINDING_SCHEMA "}"

static const char array_schema[] = ARRAY_SCHEMA;
static const char object_schema[] =
    "{\"type\":\"object\",\"properties\":{\"findings\":" ARRAY_SCHEMA "},"
    "\"required\":[\"findings\"]}";

#define SHAPE                                                                                      \
    "{\"path\": \"src/main.c\", \"line\": 12, \"end_line\": 14, \"severity\": \"high\", "          \
    "\"rule\": \"short-rule-id\", \"message\": \"what is wrong\", \"suggestion\": \"how to fix "   \
    "it\"}"
#define RULES                                                                                      \
    " path is the file's path relative to the repository root; line and end_line are line "        \
    "numbers in the file after the change; severity is one of info, low, medium, high, "           \
    "critical; rule, end_line and suggestion may be left out."

static const char array_instruction[] =
    "\n\nAnswer with only a JSON array of findings and no other text, each finding like " SHAPE
    "." RULES " Answer [] when you find nothing.\n";
static const char object_instruction[] =
    "\n\nAnswer with only a JSON object {\"findings\": [...]} and no other text, each finding "
    "like " SHAPE "." RULES " Answer {\"findings\": []} when you find nothing.\n";

const char *stage_severity_name(int sev)
{
    return sev >= 0 && sev < STAGE_SEV_COUNT ? severities[sev] : "?";
}

int stage_severity_find(const char *name)
{
    for (int i = 0; i < STAGE_SEV_COUNT; i++)
        if (strcmp(name, severities[i]) == 0)
            return i;
    return -1;
}

const char *stage_severity_list(void)
{
    return "info, low, medium, high, critical";
}

void stage_findings_ask(const char *provider, const char **format_json, const char **instruction)
{
    int openai = strcmp(provider, "openai") == 0;
    *format_json = strcmp(provider, "anthropic") == 0 ? NULL
                   : openai                           ? object_schema
                                                      : array_schema;
    *instruction = openai ? object_instruction : array_instruction;
}

/* A path a report can point at: relative, inside the repository. */
static int path_ok(const char *p)
{
    if (p[0] == '/' || p[0] == '\\' || strchr(p, '\n'))
        return 0;
    for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
            return 0;
    return 1;
}

static const char *str_or(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* After the schema: what it cannot say. */
static int finding_take(const json_t *o, const char *where, size_t i, struct stage_finding *f,
                        struct bh_err *err)
{
    f->line = (long)json_number_value(json_object_get(o, "line"));
    const json_t *end = json_object_get(o, "end_line");
    f->end_line = end ? (long)json_number_value(end) : f->line;
    if (f->end_line < f->line)
        return bh_err_set(err, BH_EREPLY, "%s[%zu].end_line: expected at least line (%ld)", where,
                          i, f->line);
    if (!path_ok(str_or(o, "path")))
        return bh_err_set(err, BH_EREPLY,
                          "%s[%zu].path: expected a path relative to the "
                          "repository root (no leading /, no ..)",
                          where, i);
    f->path = bh_xstrdup(str_or(o, "path"));
    f->severity = stage_severity_find(str_or(o, "severity"));
    f->rule = bh_xstrdup(str_or(o, "rule"));
    f->message = bh_xstrdup(str_or(o, "message"));
    f->suggestion = bh_xstrdup(str_or(o, "suggestion"));
    return 0;
}

static int findings_take(const json_t *arr, const char *where, struct stage_findings *out,
                         struct bh_err *err)
{
    struct stage_findings f = {bh_xcalloc(json_array_size(arr) + 1, sizeof(*f.v)), 0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
        rc = finding_take(json_array_get(arr, i), where, i, &f.v[i], err);
        f.n = i + 1; /* the partly filled one is released too */
    }
    if (rc)
        stage_findings_release(&f);
    else
        *out = f;
    return rc;
}

int stage_findings_parse(const char *reply, struct stage_findings *out, struct bh_err *err)
{
    json_t *j = NULL, *schema = json_loads(array_schema, 0, NULL);
    if (!schema)
        abort(); /* out of memory: the text is a constant */
    int rc = stage_json_read(reply, &j, err);
    const char *where = "$";
    const json_t *arr = j;
    if (rc == 0 && json_is_object(j) && json_object_get(j, "findings")) {
        arr = json_object_get(j, "findings");
        where = "$.findings";
    }
    if (rc == 0)
        rc = stage_jschema_validate(schema, arr, where, err);
    if (rc == 0)
        rc = findings_take(arr, where, out, err);
    json_decref(j);
    json_decref(schema);
    return rc;
}

void stage_findings_release(struct stage_findings *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].path);
        free(f->v[i].rule);
        free(f->v[i].message);
        free(f->v[i].suggestion);
    }
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

static json_t *finding_json(const struct stage_finding *f, int *bad)
{
    json_t *o = json_pack("{s:s, s:I}", "path", f->path, "line", (json_int_t)f->line);
    if (f->end_line != f->line)
        bh_json_set(o, "end_line", json_integer(f->end_line), bad);
    bh_json_set(o, "severity", json_string(stage_severity_name(f->severity)), bad);
    if (f->rule && f->rule[0])
        bh_json_set(o, "rule", json_string(f->rule), bad);
    bh_json_set(o, "message", json_string(f->message), bad);
    if (f->suggestion && f->suggestion[0])
        bh_json_set(o, "suggestion", json_string(f->suggestion), bad);
    return o;
}

char *stage_findings_json(const struct stage_findings *f)
{
    json_t *a = json_array();
    int bad = 0;
    for (size_t i = 0; i < f->n; i++)
        bh_json_push(a, finding_json(&f->v[i], &bad), &bad);
    /* Findings were read from JSON, so each goes back in: one that did not
     * would vanish from the stored output and every report. */
    BH_INVARIANT(!bad, "every finding read from JSON can be written as JSON");
    char *s = bh_json_dump(a, JSON_COMPACT);
    json_decref(a);
    if (!s)
        abort(); /* out of memory: jansson gives no other reason */
    char *copy = bh_xstrdup(s);
    free(s);
    return copy;
}

int stage_schema_check(const char *schema_json, const char *reply, char **stored,
                       struct bh_err *err)
{
    json_error_t je;
    json_t *schema = json_loads(schema_json, 0, &je), *j = NULL;
    if (!schema)
        return bh_err_set(err, BH_EINVAL, "the output schema is not JSON (line %d): %s", je.line,
                          je.text);
    int rc = stage_json_read(reply, &j, err);
    if (rc == 0)
        rc = stage_jschema_validate(schema, j, "$", err);
    if (rc == 0) {
        char *s = bh_json_dump(j, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
            abort();
        *stored = bh_xstrdup(s);
        free(s);
    }
    json_decref(j);
    json_decref(schema);
    return rc;
}
