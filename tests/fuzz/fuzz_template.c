/* tests/fuzz/fuzz_template.c — prompt templates end to end: the parser
 * (pipeline/template.c), the field check against a fixed scope, and the
 * renderer (stages/render.c) with every field's value looked up. Byte 0
 * picks the render cap, whether the stage runs over pr.files, and which
 * lookups fail; the rest is the template text. Whatever is rendered is the
 * template's literal parts and the looked-up values in order, and its label
 * is one of the pipeline's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "pipeline/template.h"
#include "stages/render.h"
#include "util/bh_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fields[] = {"pr.number", "pr.title", "pr.files", "pr.diff"};
static const char *const stages[] = {"plan", "review", "each"};
static const char *const each[] = {"each.path", "each.status", "each.diff"};

struct lookup {
    unsigned fail_mask; /* bit i: the i-th lookup fails */
    unsigned n;         /* lookups so far */
    size_t bytes;       /* of every value handed out */
};

/* A value that looks like a template itself: rendering must not expand it. */
static int lookup(void *ud, const char *field, const char **value, int *label, struct bh_err *err)
{
    struct lookup *l = ud;
    unsigned i = l->n++;
    if (i < 8 && (l->fail_mask >> i) & 1)
        return bh_err_set(err, BH_ENOTFOUND, "no value for %s", field);
    *value = i % 2 ? "{{pr.diff}}" : field;
    *label = (int)(i % 5) - 1; /* -1 (unknown) to 3 */
    l->bytes += strlen(*value);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *labels[] = {"public", "internal", "confidential", "restricted"};
    struct pipeline p = {.labels = labels, .n_labels = 4};
    struct pipe_tpl_scope scope = {fields, 4, stages, 3, NULL, NULL, 0};
    if (data[0] & 1) {
        scope.for_each = "pr.files";
        scope.each = each;
        scope.n_each = 3;
    }
    size_t max = data[0] & 2 ? 64 : 1 << 20;
    struct lookup l = {.fail_mask = data[0] & 4 ? (unsigned)data[0] >> 3 : 0};
    struct pipe_tpl t = {0};
    struct bh_err err = {0};
    if (pipe_tpl_parse(&t, "p.md", (const char *)data + 1, size - 1, &err) != 0)
        return 0;
    pipe_tpl_check(&t, &scope, &err);
    for (size_t i = 0; i < t.n_parts; i++)
        if (t.parts[i].is_field)
            pipe_tpl_field_stage(t.parts[i].text, &scope);
    char *out = NULL;
    int label = -1;
    if (stage_render(&p, &t, lookup, &l, max, &out, &label, &err) == 0) {
        size_t want = l.bytes;
        for (size_t i = 0; i < t.n_parts; i++)
            if (!t.parts[i].is_field)
                want += strlen(t.parts[i].text);
        if (strlen(out) != want || want > max || label < 0 || label > 3)
            abort();
        free(out);
    }
    pipe_tpl_release(&t);
    return 0;
}
