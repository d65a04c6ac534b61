/* pipeline/sections.c — the `labels` and `outputs` sections (endpoints are in
 * endpoints.c, the source in source.c, stages in stages.c). Each object kind
 * is a schema table (load.h); the handlers below only store and check one
 * value each. Defaults are set before a walk, so an absent key needs no
 * code. */
#include "pipeline/load.h"

#include <stdlib.h>
#include <string.h>

#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

/* The report formats (report/report.h: rep_format_known accepts these). */
static const char *const output_formats[] = {"md", "jsonl", "sarif", "junit", "github-review"};

/* ---- labels ---- */

int pipe_ld_labels(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = json_array_size(v);
    if (n < 2 || n > PIPE_MAX_LABELS)
        return pipe_ld_halt(
            ld, pipe_ld_fail(ld, path,
                             "expected 2 to %d labels, found %zu — list them from lowest to "
                             "highest, e.g. [\"public\", \"internal\", \"confidential\", "
                             "\"restricted\"]",
                             PIPE_MAX_LABELS, n));
    char **labels = bh_xcalloc(n, sizeof(*labels));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char elem[PIPE_PATH_MAX];
        json_t *l = json_array_get(v, i);
        pipe_ld_path_index(elem, path, i);
        rc = pipe_ld_expect(ld, l, PIPE_JT_STRING, elem, "a label name, e.g. \"internal\"");
        if (rc == 0)
            rc = pipe_ld_nonempty(ld, l, elem, "a label name", &labels[i]);
        for (size_t k = 0; rc == 0 && k < i; k++)
            if (strcmp(labels[k], labels[i]) == 0)
                rc = pipe_ld_fail(ld, elem,
                                  "duplicate label \"%s\" — each label appears once, "
                                  "lowest first",
                                  labels[i]);
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(labels[i]);
        free(labels);
        return pipe_ld_halt(ld, rc); /* every clearance and field label reads them */
    }
    for (size_t i = 0; i < p->n_labels; i++)
        free(p->labels[i]); /* the defaults */
    free(p->labels);
    p->labels = labels;
    p->n_labels = n;
    return 0;
}

/* ---- outputs ---- */

static int out_format(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    const char *s = json_string_value(v);
    for (size_t i = 0; i < BH_NELEM(output_formats); i++)
        if (strcmp(s, output_formats[i]) == 0) {
            ((struct pipe_output *)target)->format = bh_xstrdup(s);
            return 0;
        }
    struct pipe_unknown u = {"output format",         s, "valid", NULL, output_formats,
                             BH_NELEM(output_formats)};
    return pipe_ld_unknown(ld, path, &u);
}

static int out_path(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    return pipe_ld_nonempty(ld, v, path, "the file to write, e.g. \"review.md\"",
                            &((struct pipe_output *)target)->path);
}

static const struct pipe_key output_keys[] = {
    {"format", PIPE_JT_STRING, 1, out_format,
     "\"md\", \"jsonl\", \"sarif\", \"junit\" or \"github-review\"", 0, NULL, NULL},
    {"path", PIPE_JT_STRING, 1, out_path,
     "the file to write, relative to the working directory, e.g. \"review.md\"", 0, NULL, NULL},
};

static const struct pipe_schema output_schema = {
    output_keys, BH_NELEM(output_keys),
    "an output is an object: { \"format\": \"md\", \"path\": \"review.md\" }", NULL, 0};

int pipe_ld_outputs(struct pipe_loader *ld, void *target, json_t *v, const char *path)
{
    struct pipeline *p = target;
    size_t n = json_array_size(v);
    p->outputs = bh_xcalloc(n ? n : 1, sizeof(*p->outputs));
    int rc = 0;
    for (size_t i = 0; !ld->halt && i < n; i++) {
        char elem[PIPE_PATH_MAX];
        pipe_ld_path_index(elem, path, i);
        p->n_outputs++;
        int orc = pipe_ld_object(ld, &output_schema, json_array_get(v, i), elem, &p->outputs[i]);
        rc = rc ? rc : orc;
    }
    return rc;
}
