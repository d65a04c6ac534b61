/* report/rep_models.c — which model answered. A server may answer with
 * another model than the one asked for (llama-server serves its one model,
 * named by its alias, whatever the request names; an Ollama alias), and the
 * answering model is part of the result: the run's summary, `status` and
 * every report say so per stage, from the tasks' answered_by. Names compare
 * as the server's own aliasing allows (a missing tag is ":latest", the
 * ":local" suffix bulkhead adds is not part of the name). */
#include "report/report.h"

#include <stdlib.h>
#include <string.h>

#include "providers/manage.h"
#include "report/rep_int.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

static int answered(const struct store_task *t)
{
    return t->answered_by && t->answered_by[0];
}

int rep_task_answered_other(const struct store_task *t)
{
    return answered(t) && !prov_model_answered_eq(t->model, t->answered_by);
}

/* Tasks of stage that asked model and were answered at all. */
static size_t answered_of(const struct rep_run *r, const char *stage, const char *model)
{
    size_t n = 0;
    for (size_t k = 0; k < r->n; k++)
        n += answered(&r->t[k]) && strcmp(r->t[k].stage, stage) == 0 &&
             strcmp(r->t[k].model, model) == 0;
    return n;
}

/* The index of t's difference in d, n when none. */
static size_t diff_index(const struct rep_model_diff *d, size_t n, const struct store_task *t)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].stage, t->stage) == 0 && strcmp(d[i].asked, t->model) == 0 &&
            strcmp(d[i].answered, t->answered_by) == 0)
            return i;
    return n;
}

const struct rep_model_diff *rep_model_diff_of(const struct rep_model_diff *d, size_t n,
                                               const struct store_task *t)
{
    size_t i = rep_task_answered_other(t) ? diff_index(d, n, t) : n;
    return i < n ? &d[i] : NULL;
}

/* One pass over the tasks; the differences are few (a stage, a server). */
size_t rep_run_model_diffs(const struct rep_run *r, struct rep_model_diff **out)
{
    size_t n = 0;
    *out = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const struct store_task *t = &r->t[i];
        if (!rep_task_answered_other(t))
            continue;
        size_t k = diff_index(*out, n, t);
        if (k == n) {
            *out = bh_xrealloc(*out, (n + 1) * sizeof(**out));
            (*out)[n++] = (struct rep_model_diff){t->stage, t->model, t->answered_by, 0, 0};
        }
        (*out)[k].n++;
    }
    for (size_t i = 0; i < n; i++)
        (*out)[i].of = answered_of(r, (*out)[i].stage, (*out)[i].asked);
    return n;
}

void rep_model_diff_text(const struct rep_model_diff *d, char *buf, size_t size)
{
    bh_str_put(buf, size, "%s: asked %s, answered by %s (%zu of %zu task%s)", d->stage, d->asked,
               d->answered, d->n, d->of, d->of == 1 ? "" : "s");
}

int rep_models_print(struct store *s, int64_t run_id, const char *head, const char *prefix,
                     FILE *out, struct bh_err *err)
{
    struct rep_run r;
    struct rep_model_diff *d = NULL;
    int rc = rep_run_load(s, run_id, -1, &r, err);
    if (rc)
        return rc;
    size_t n = rep_run_model_diffs(&r, &d);
    for (size_t i = 0; i < n; i++) {
        char line[600];
        rep_model_diff_text(&d[i], line, sizeof(line));
        fprintf(out, "%s%s%s\n", i ? "" : head, prefix, line);
    }
    free(d);
    rep_run_release(&r);
    return 0;
}
