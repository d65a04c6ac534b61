/* findings/jschema.h — checks a model's JSON reply against a JSON schema, and
 * reads a reply as JSON. Private to the reply-checking library (bh_findings:
 * jschema.c, findings.c): jansson's json_t stays inside it.
 *
 * The keywords checked are the ones a reply's shape needs: type (a name or a
 * list of names), enum, const, required, properties, additionalProperties
 * (false or a schema), items (one schema for every element), minItems,
 * maxItems, minimum, maximum, minLength, maxLength. Other keywords ($ref,
 * pattern, anyOf, ...) are not checked: the provider's JSON-schema mode
 * constrains the model with the whole schema; this is the check afterwards. */
#ifndef FINDINGS_JSCHEMA_H
#define FINDINGS_JSCHEMA_H

#include <jansson.h>
#include <stddef.h>

struct bh_err;

/* Checks v against schema. where is the JSON path of v in the reply ("$",
 * "$.findings"). 0 when v follows the schema; BH_EREPLY with "PATH: what was
 * expected" for the first value that does not (the message names the place
 * and the expectation, never the reply's text). */
int stage_jschema_validate(const json_t *schema, const json_t *v, const char *where,
                           struct bh_err *err);

/* Parses a reply as JSON (any value): the text itself, or inside one Markdown
 * ``` fence around it (models add one even when asked not to). New reference
 * in *out; BH_EREPLY "the reply is not JSON (line L, column C)" otherwise. */
int stage_json_read(const char *text, json_t **out, struct bh_err *err);

#endif
