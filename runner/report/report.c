/* report/report.c — the report's entry points: one load of the run (its
 * tasks ordered by item, then stage; the findings of every findings task
 * read once), then the writer of the format asked for (rep_*.c). JSON Lines
 * is here too, being the smallest. jansson builds the JSON so that model
 * output with any bytes in it stays valid JSON. A for_each task names its
 * element (a file, an index, a part of a fold); the run's batch tasks are
 * listed under the item "(batch)", after every work item. */
#include "report/report.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/rep_int.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

struct format {
    const char *name;
    int kind;
};
enum { F_MD, F_JSONL, F_SARIF, F_JUNIT, F_REVIEW };

static const struct format formats[] = {
    {"md", F_MD},       {"markdown", F_MD}, {"jsonl", F_JSONL},
    {"sarif", F_SARIF}, {"junit", F_JUNIT}, {"github-review", F_REVIEW},
};

static int format_kind(const char *name)
{
    for (size_t i = 0; i < BH_NELEM(formats); i++)
        if (strcmp(name, formats[i].name) == 0)
            return formats[i].kind;
    return -1;
}

int rep_format_known(const char *format)
{
    return format_kind(format) >= 0;
}

const char *rep_format_list(void)
{
    return "md, jsonl, sarif, junit, github-review";
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* ---- the run ---- */

static int stage_listed(const char *stage, char **stages, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(stage, stages[i]) == 0)
            return 1;
    return 0;
}

/* A stored string as UTF-8 text (a state written before sources decoded
 * their text, or a model's reply): replaced in place when it is not. */
static void text_fix(char **s)
{
    if (*s && !bh_utf8_valid(*s, strlen(*s))) {
        char *t = bh_utf8_lossy_dup(*s, strlen(*s), NULL, NULL);
        free(*s);
        *s = t;
    }
}

static void task_text_fix(struct store_task *t)
{
    char **v[] = {&t->item_key, &t->stage, &t->element, &t->output,      &t->label, &t->endpoint,
                  &t->locality, &t->model, &t->error,   &t->answered_by, &t->note};
    for (size_t i = 0; i < BH_NELEM(v); i++)
        text_fix(v[i]);
}

static void findings_read(struct rep_run *r, size_t i)
{
    struct bh_err err = {0};
    if (stage_findings_parse(r->t[i].output, &r->f[i], &err))
        r->unreadable[i] = bh_xasprintf("the stored findings do not read: %s", err.msg);
}

int rep_run_load(struct store *s, int64_t run_id, int fail_on, struct rep_run *r,
                 struct bh_err *err)
{
    char **stages = NULL;
    size_t n_stages = 0;
    memset(r, 0, sizeof(*r));
    r->id = run_id;
    r->fail_on = fail_on;
    int rc = store_tasks_list(s, run_id, &r->t, &r->n, err);
    if (rc == 0)
        rc = store_run_findings(s, run_id, &stages, &n_stages, err);
    if (rc)
        return rc;
    r->findings_stage = bh_xcalloc(r->n + 1, sizeof(*r->findings_stage));
    r->f = bh_xcalloc(r->n + 1, sizeof(*r->f));
    r->unreadable = bh_xcalloc(r->n + 1, sizeof(*r->unreadable));
    for (size_t i = 0; i < r->n; i++) {
        task_text_fix(&r->t[i]);
        r->findings_stage[i] = stage_listed(r->t[i].stage, stages, n_stages);
        if (r->findings_stage[i] && r->t[i].state == STORE_DONE)
            findings_read(r, i);
    }
    for (size_t i = 0; i < n_stages; i++)
        free(stages[i]);
    free(stages);
    return 0;
}

void rep_run_release(struct rep_run *r)
{
    for (size_t i = 0; i < r->n && r->f; i++) {
        stage_findings_release(&r->f[i]);
        free(r->unreadable[i]);
    }
    free(r->f);
    free(r->unreadable);
    free(r->findings_stage);
    store_tasks_free(r->t, r->n);
    memset(r, 0, sizeof(*r));
}

int rep_run_has_findings(const struct rep_run *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->findings_stage[i])
            return 1;
    return 0;
}

const char *rep_rule(const struct rep_run *r, size_t task, size_t finding)
{
    const char *rule = r->f[task].v[finding].rule;
    return rule && rule[0] ? rule : r->t[task].stage;
}

void rep_run_outcome(const struct rep_run *r, struct rep_outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->max_severity = -1;
    o->tasks = r->n;
    for (size_t i = 0; i < r->n; i++) {
        int st = r->t[i].state;
        o->done += st == STORE_DONE;
        o->failed += st == STORE_FAILED;
        o->withheld += st == STORE_WITHHELD;
        o->skipped += st == STORE_SKIPPED;
        o->unfinished += st == STORE_PENDING || st == STORE_RUNNING;
        o->unreadable += r->unreadable[i] != NULL;
        for (size_t k = 0; k < r->f[i].n; k++) {
            int sev = r->f[i].v[k].severity;
            o->findings[sev]++;
            if (sev > o->max_severity)
                o->max_severity = sev;
        }
    }
}

/* ---- clearance: outputs are egress too ---- */

static long label_rank(char **labels, size_t n, const char *label)
{
    for (size_t i = 0; i < n; i++)
        if (label && strcmp(labels[i], label) == 0)
            return (long)i;
    return (long)n - 1; /* unknown means top */
}

static void task_withhold(struct rep_run *r, size_t i, const char *clearance)
{
    struct store_task *t = &r->t[i];
    free(t->output);
    t->output = bh_xstrdup("");
    stage_findings_release(&r->f[i]);
    memset(&r->f[i], 0, sizeof(r->f[i]));
    free(r->unreadable[i]);
    r->unreadable[i] = NULL;
    free(t->error);
    t->error = bh_xasprintf("withheld from this report: the output is labelled %s, above the "
                            "report's clearance %s",
                            t->label[0] ? t->label : "(unknown)", clearance);
    t->state = STORE_WITHHELD;
}

static void error_withhold(struct store_task *t, const char *clearance)
{
    free(t->error);
    t->error = bh_xasprintf("failed; the message is left out of this report (clearance %s): "
                            "it may quote the model's reply — 'bulkhead report' without "
                            "--clearance shows it where it may be read",
                            clearance);
}

static int clearance_known(char **labels, size_t n, const char *clearance, int64_t run_id,
                           struct bh_err *err)
{
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(labels[i], clearance) == 0)
            return 0;
        used += (size_t)snprintf(list + used, used < sizeof(list) ? sizeof(list) - used : 0, "%s%s",
                                 i ? ", " : "", labels[i]);
        if (used >= sizeof(list))
            used = sizeof(list) - 1;
    }
    return bh_err_set(err, BH_EINVAL,
                      "--clearance: '%s' is not a label of run %lld (its labels: "
                      "%s) — give one of them",
                      clearance, (long long)run_id, list);
}

int rep_run_clear(struct store *s, struct rep_run *r, const char *clearance, struct bh_err *err)
{
    char **labels = NULL;
    size_t n = 0;
    int rc = store_run_labels(s, r->id, &labels, &n, err);
    if (rc == 0 && n == 0)
        rc = bh_err_set(err, BH_EINVAL,
                        "--clearance: run %lld recorded no labels — a report of "
                        "it cannot be cleared",
                        (long long)r->id);
    if (rc == 0)
        rc = clearance_known(labels, n, clearance, r->id, err);
    long c = rc == 0 ? label_rank(labels, n, clearance) : 0;
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        struct store_task *t = &r->t[i];
        long l = t->label && t->label[0] ? label_rank(labels, n, t->label) : (long)n - 1;
        if (l <= c)
            continue;
        if (t->state == STORE_DONE)
            task_withhold(r, i, clearance);
        else if (t->state == STORE_FAILED)
            error_withhold(t, clearance);
    }
    for (size_t i = 0; i < n; i++)
        free(labels[i]);
    free(labels);
    return rc;
}

/* ---- jsonl ---- */

static json_t *findings_array(const struct stage_findings *f)
{
    char *text = stage_findings_json(f);
    json_t *a = json_loads(text, 0, NULL);
    free(text);
    return a ? a : json_array();
}

static int jsonl_task(FILE *out, const struct rep_run *r, size_t i, const struct rep_model_diff *d,
                      size_t n_d)
{
    const struct store_task *t = &r->t[i];
    int bad = 0;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "item", str(t->item_key),
                  "stage", str(t->stage), "state", store_state_name(t->state), "endpoint",
                  str(t->endpoint), "locality", str(t->locality), "model", str(t->model), "label",
                  str(t->label), "prompt_tokens", (json_int_t)t->prompt_tokens, "output_tokens",
                  (json_int_t)t->output_tokens, "load_ns", (json_int_t)t->load_ns);
    if (!o) {
        o = json_object(); /* only to count the failure below */
        bad = 1;
    }
    bh_json_set(o, "element", t->element && t->element[0] ? json_string(t->element) : json_null(),
                &bad);
    bh_json_set(o, "answered_by", json_string(str(t->answered_by)), &bad);
    /* Per stage: which model answered its tasks instead of the one asked for. */
    const struct rep_model_diff *diff = rep_model_diff_of(d, n_d, t);
    char other[600];
    if (diff)
        rep_model_diff_text(diff, other, sizeof(other));
    bh_json_set(o, "answered_by_other", diff ? json_string(other) : json_null(), &bad);
    bh_json_set(o, "cached", json_boolean(t->cached), &bad);
    bh_json_set(o, "note", t->note && t->note[0] ? json_string(t->note) : json_null(), &bad);
    bh_json_set(o, t->state == STORE_DONE ? "output" : "error",
                json_string(str(t->state == STORE_DONE ? t->output : t->error)), &bad);
    if (r->findings_stage[i] && t->state == STORE_DONE && !r->unreadable[i])
        bh_json_set(o, "findings", findings_array(&r->f[i]), &bad);
    char *line = bad ? NULL : bh_json_dump(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (line)
        fprintf(out, "%s\n", line);
    free(line);
    json_decref(o);
    return line ? 0 : -1;
}

int rep_jsonl(FILE *out, const struct rep_run *r, struct bh_err *err)
{
    struct rep_model_diff *d = NULL;
    size_t n = rep_run_model_diffs(r, &d);
    int rc = 0;
    for (size_t i = 0; i < r->n && rc == 0; i++)
        if (jsonl_task(out, r, i, d, n))
            rc = bh_err_set(err, BH_EINTERNAL,
                            "run %lld: cannot write the jsonl line of stage '%s' on '%s' — "
                            "the report would miss it; please report this bug",
                            (long long)r->id, r->t[i].stage, r->t[i].item_key);
    free(d);
    return rc;
}

int rep_json_failed(const struct rep_run *r, const char *what, struct bh_err *err)
{
    return bh_err_set(err, BH_EINTERNAL,
                      "run %lld: cannot build the %s: a value could not be put into JSON — "
                      "the report would miss it; please report this bug",
                      (long long)r->id, what);
}

/* ---- entry points ---- */

static int write_kind(FILE *out, int kind, const struct rep_run *r, size_t max_bytes,
                      struct bh_err *err)
{
    switch (kind) {
    case F_MD: rep_md(out, r, max_bytes); return 0;
    case F_JSONL: return rep_jsonl(out, r, err);
    case F_SARIF: return rep_sarif(out, r, err);
    case F_JUNIT: rep_junit(out, r); return 0;
    default: return rep_github_review(out, r, err);
    }
}

int rep_write(struct store *s, int64_t run_id, const struct rep_opts *o, FILE *out,
              struct bh_err *err)
{
    int kind = format_kind(o->format);
    if (kind < 0)
        return bh_err_set(err, BH_EINVAL, "unknown report format '%s' (known: %s)", o->format,
                          rep_format_list());
    struct rep_run r;
    int rc = rep_run_load(s, run_id, o->fail_on, &r, err);
    if (rc)
        return rc;
    if (o->clearance)
        rc = rep_run_clear(s, &r, o->clearance, err);
    if (rc == 0)
        rc = write_kind(out, kind, &r, o->max_bytes, err);
    rep_run_release(&r);
    if (rc == 0 && (fflush(out) != 0 || ferror(out)))
        rc = bh_err_set(err, BH_EIO, "cannot write the report: %s", strerror(errno));
    return rc;
}

int rep_write_file(struct store *s, int64_t run_id, const struct rep_opts *o, const char *path,
                   struct bh_err *err)
{
    char *tmp = bh_xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) {
        rc = bh_err_set(err, BH_EIO, "cannot create report '%s': %s", tmp, strerror(errno));
    } else {
        rc = rep_write(s, run_id, o, f, err);
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

int rep_outcome(struct store *s, int64_t run_id, struct rep_outcome *out, struct bh_err *err)
{
    struct rep_run r;
    int rc = rep_run_load(s, run_id, -1, &r, err);
    if (rc)
        return rc;
    rep_run_outcome(&r, out);
    rep_run_release(&r);
    return 0;
}

int rep_annotations(struct store *s, int64_t run_id, const char *clearance, FILE *out,
                    struct bh_err *err)
{
    struct rep_run r;
    int rc = rep_run_load(s, run_id, -1, &r, err);
    if (rc)
        return rc;
    if (clearance)
        rc = rep_run_clear(s, &r, clearance, err);
    if (rc == 0)
        rep_github_annotations(out, &r);
    rep_run_release(&r);
    if (rc)
        return rc;
    if (fflush(out) != 0 || ferror(out))
        return bh_err_set(err, BH_EIO, "cannot write the annotations: %s", strerror(errno));
    return 0;
}
