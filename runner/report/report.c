/* report/report.c — Markdown and JSON Lines reports. One pass over the
 * run's tasks (ordered by item, then stage); jansson builds the JSON so that
 * model output with any bytes in it stays valid JSON. A for_each task names
 * its element (a file, an index, a part of a fold); the run's batch tasks are
 * listed under the item "(batch)", after every work item. */
#include "report/report.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

int rep_format_known(const char *format)
{
    return strcmp(format, "md") == 0 || strcmp(format, "markdown") == 0 ||
           strcmp(format, "jsonl") == 0;
}

static const char *str(const char *s)
{
    return s ? s : "";
}

static void jsonl_task(FILE *out, const struct store_task *t)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
                          "item", str(t->item_key), "stage", str(t->stage),
                          "state", store_state_name(t->state), "endpoint", str(t->endpoint),
                          "locality", str(t->locality), "model", str(t->model),
                          "label", str(t->label), "prompt_tokens", (json_int_t)t->prompt_tokens,
                          "output_tokens", (json_int_t)t->output_tokens,
                          "load_ns", (json_int_t)t->load_ns);
    json_object_set_new(o, "element",
                        t->element && t->element[0] ? json_string(t->element) : json_null());
    json_object_set_new(o, "answered_by", json_string(str(t->answered_by)));
    json_object_set_new(o, "cached", json_boolean(t->cached));
    json_object_set_new(o, "note", t->note && t->note[0] ? json_string(t->note) : json_null());
    json_object_set_new(o, t->state == STORE_DONE ? "output" : "error",
                        json_string(str(t->state == STORE_DONE ? t->output : t->error)));
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    fprintf(out, "%s\n", line ? line : "{}");
    free(line);
    json_decref(o);
}

static void md_summary(FILE *out, int64_t run_id, const struct store_task *t, size_t n)
{
    size_t counts[5] = { 0 };
    for (size_t i = 0; i < n; i++)
        if (t[i].state >= 0 && t[i].state < 5)
            counts[t[i].state]++;
    fprintf(out, "# bulkhead report — run %lld\n\n", (long long)run_id);
    fprintf(out, "%zu tasks: %zu done, %zu failed, %zu withheld by policy, %zu not finished\n\n",
            n, counts[STORE_DONE], counts[STORE_FAILED], counts[STORE_WITHHELD],
            counts[STORE_PENDING] + counts[STORE_RUNNING]);
    if (counts[STORE_DONE] != n)
        fprintf(out, "**This report is incomplete**: the tasks that are not done are listed "
                     "below with the reason.\n\n");
    fprintf(out, "| item | stage | element | state | ran on | locality | model | label |\n"
                 "|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", str(t[i].item_key),
                str(t[i].stage), str(t[i].element), store_state_name(t[i].state),
                str(t[i].endpoint), str(t[i].locality), str(t[i].model), str(t[i].label));
}

static void md_task(FILE *out, const struct store_task *t, const struct store_task *prev)
{
    if (!prev || strcmp(str(prev->item_key), str(t->item_key)) != 0)
        fprintf(out, "\n## %s\n", str(t->item_key));
    fprintf(out, "\n### %s%s%s — %s", str(t->stage), t->element && t->element[0] ? " · " : "",
            str(t->element), store_state_name(t->state));
    if (t->endpoint && t->endpoint[0])
        fprintf(out, " · %s on %s (%s)", str(t->model), t->endpoint, str(t->locality));
    if (t->label && t->label[0])
        fprintf(out, " · label %s", t->label);
    if (t->answered_by && t->answered_by[0] && t->model && strcmp(t->answered_by, t->model))
        fprintf(out, " · **answered by %s**", t->answered_by);
    if (t->cached)
        fprintf(out, " · from the cache");
    fprintf(out, "\n\n");
    if (t->note && t->note[0])
        fprintf(out, "> **note:** %s\n\n", t->note);
    if (t->state == STORE_DONE)
        fprintf(out, "%s\n", str(t->output));
    else
        fprintf(out, "> %s\n", t->error && t->error[0] ? t->error : "not run yet");
}

int rep_write(struct store *s, int64_t run_id, const char *format, FILE *out,
              struct bh_err *err)
{
    if (!rep_format_known(format))
        return bh_err_set(err, BH_EINVAL, "unknown report format '%s' (known: md, jsonl)",
                          format);
    struct store_task *t = NULL;
    size_t n = 0;
    int rc = store_tasks_list(s, run_id, &t, &n, err);
    if (rc)
        return rc;
    int md = format[0] == 'm';
    if (md)
        md_summary(out, run_id, t, n);
    for (size_t i = 0; i < n; i++) {
        if (md)
            md_task(out, &t[i], i ? &t[i - 1] : NULL);
        else
            jsonl_task(out, &t[i]);
    }
    store_tasks_free(t, n);
    if (fflush(out) != 0 || ferror(out))
        return bh_err_set(err, BH_EIO, "cannot write the report: %s", strerror(errno));
    return 0;
}

int rep_write_file(struct store *s, int64_t run_id, const char *format, const char *path,
                   struct bh_err *err)
{
    char *tmp = bh_xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) {
        rc = bh_err_set(err, BH_EIO, "cannot create report '%s': %s", tmp, strerror(errno));
    } else {
        rc = rep_write(s, run_id, format, f, err);
        if (fclose(f) != 0 && rc == 0)
            rc = bh_err_set(err, BH_EIO, "cannot write report '%s': %s", tmp, strerror(errno));
        if (rc == 0 && rename(tmp, path) != 0)
            rc = bh_err_set(err, BH_EIO, "cannot rename '%s' to '%s': %s", tmp, path,
                            strerror(errno));
        if (rc)
            remove(tmp);
    }
    free(tmp);
    return rc;
}
