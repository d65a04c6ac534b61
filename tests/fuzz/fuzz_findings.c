/* tests/fuzz/fuzz_findings.c — a model's reply read as findings, and checked
 * against a small schema: no crash, and what is accepted keeps the promises
 * of findings/findings.h (lines from 1, end_line >= line, a known severity, a
 * relative path) and reads back the same from its stored form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "findings/findings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct stage_findings *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const struct stage_finding *x = &f->v[i];
        if (x->line < 1 || x->end_line < x->line || x->severity < 0 ||
            x->severity >= STAGE_SEV_COUNT || x->path[0] == '/' || !x->message[0])
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct stage_findings f = {0}, again = {0};
    if (stage_findings_parse(text, &f, NULL) == 0) {
        check(&f);
        char *stored = stage_findings_json(&f);
        if (stage_findings_parse(stored, &again, NULL) != 0 || again.n != f.n)
            abort();
        free(stored);
    }
    stage_findings_release(&f);
    stage_findings_release(&again);
    char *out = NULL;
    static const char schema[] =
        "{\"type\":\"object\",\"required\":[\"a\"],\"properties\":{\"a\":"
        "{\"type\":\"array\",\"maxItems\":3,\"items\":{\"enum\":[1,\"x\"]}}},"
        "\"additionalProperties\":{\"type\":\"string\",\"minLength\":2}}";
    if (stage_schema_check(schema, text, &out, NULL) == 0)
        free(out);
    free(text);
    return 0;
}
