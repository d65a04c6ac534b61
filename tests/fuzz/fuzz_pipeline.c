/* tests/fuzz/fuzz_pipeline.c — the pipeline loader (JSON or YAML, position
 * index, schema, templates, graph) on arbitrary files. Byte 0 picks JSON or
 * YAML; the rest up to the first NUL is the pipeline file, what follows is
 * the prompt template "p.md" it may name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "scratch.h"
#include "util/bh_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", fuzz_scratch_dir("pipe"), name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *name = data[0] & 1 ? "p.yaml" : "p.json";
    data++;
    size--;
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul ? (size_t)(nul - data) : size;
    put(name, data, n);
    put("p.md", nul ? nul + 1 : (const uint8_t *)"", nul ? size - n - 1 : 0);
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", fuzz_scratch_dir("pipe"), name);
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n_errs = 0;
    if (pipe_load_all(&p, path, NULL, &errs, &n_errs) == 0)
        pipe_free(p);
    free(errs);
    return 0;
}
