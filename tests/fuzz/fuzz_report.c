/* tests/fuzz/fuzz_report.c — the report writers (runner/report) on task rows
 * made from arbitrary bytes, stored through the real store (SQLite in a
 * temporary folder) and read back as `bulkhead report` reads them
 * (rep_run_load, rep_run_clear): md (with and without a size cap), jsonl,
 * sarif, junit, github-review and the annotations. Byte 0 picks --fail-on
 * and --clearance, byte 1 the md cap. The rest is task rows separated by
 * 0x1e; in a row, the first byte sets the state (bits 0-2), whether the
 * stage's outputs are findings (bit 3), cached (bit 4) and the label (bits
 * 5-6); then fields separated by 0x1f: stage, element, item key, output,
 * model, answered_by, error, note. What jsonl, sarif and github-review
 * write must be JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
/* after report.h, which declares struct rep_outcome */
#include "report/rep_int.h"
#include "scratch.h"
#include "store/store.h"
#include "util/bh_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *labels[] = {"public", "internal", "confidential", "restricted"};

/* One store for the whole session, a new run per input; started afresh now
 * and then so that the database stays small. */
static struct store *store_get(void)
{
    static struct store *s;
    static unsigned uses;
    if (s && ++uses % 1000 == 0) {
        store_free(s);
        s = NULL;
        fuzz_scratch_empty();
    }
    struct bh_err err = {0};
    if (!s && store_open(&s, fuzz_scratch_dir("report"), &err) != 0)
        abort();
    return s;
}

/* Field i of a row (0x1f-separated), copied; NULL when the row has fewer. */
static char *field(const uint8_t *row, size_t n, int i)
{
    const uint8_t *p = row, *end = row + n;
    for (; i > 0 && p < end; i--) {
        const uint8_t *sep = memchr(p, 0x1f, (size_t)(end - p));
        if (!sep)
            return NULL;
        p = sep + 1;
    }
    if (i > 0)
        return NULL;
    const uint8_t *sep = memchr(p, 0x1f, (size_t)(end - p));
    size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
    return strndup((const char *)p, len);
}

static void row_put(struct store *s, int64_t run, const uint8_t *row, size_t n, char **findings,
                    size_t *n_findings)
{
    struct bh_err err = {0};
    char *f[8];
    for (int i = 0; i < 8; i++)
        f[i] = field(row + 1, n - 1, i);
    const char *stage = f[0] && f[0][0] ? f[0] : "review";
    int64_t item = 0, task = 0;
    if (store_item_put(s, run, f[2] ? f[2] : "refs/pull/1/head", &item, &err) == 0 &&
        store_task_put(s, run, item, stage, f[1], &task, &err) == 0) {
        struct store_result r = {.state = row[0] & 7,
                                 .output = f[3],
                                 .model = f[4],
                                 .answered_by = f[5],
                                 .error = f[6],
                                 .note = f[7],
                                 .cached = row[0] >> 4 & 1,
                                 .label = labels[row[0] >> 5 & 3],
                                 .endpoint = "local",
                                 .locality = "local"};
        if (r.state == STORE_PENDING || r.state == STORE_RUNNING)
            store_task_set_running(s, task, &err);
        else if (r.state <= STORE_SKIPPED)
            store_task_finish(s, task, &r, &err);
    }
    if (row[0] & 8 && *n_findings < 16)
        findings[(*n_findings)++] = strdup(stage);
    for (int i = 0; i < 8; i++)
        free(f[i]);
}

static void must_be_json(const char *text, size_t len, int lines)
{
    json_error_t je;
    if (!lines) {
        json_t *j = json_loadb(text, len, 0, &je);
        if (!j)
            abort();
        json_decref(j);
        return;
    }
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *j = json_loadb(p, n, 0, &je);
        if (!j)
            abort();
        json_decref(j);
        p += n + 1;
    }
}

/* Text written by one writer: *text (owned) of *len bytes. */
struct sink {
    char *text;
    size_t len;
    FILE *f;
};

static FILE *sink_open(struct sink *k)
{
    k->text = NULL;
    k->len = 0;
    k->f = open_memstream(&k->text, &k->len);
    if (!k->f)
        abort();
    return k->f;
}

/* Closes k; when json (1: one document, 2: one a line) checks the text. */
static void sink_close(struct sink *k, int rc, int json)
{
    fclose(k->f);
    if (rc == 0 && json)
        must_be_json(k->text, k->len, json == 2);
    free(k->text);
}

/* The run is read once (as rep_write reads it) and handed to every writer:
 * reading it per format made an input take 50 ms. */
static void write_all(struct store *s, int64_t run, const uint8_t *opts)
{
    struct rep_run r;
    struct bh_err err = {0};
    const char *clearance = opts[0] & 0x40 ? labels[opts[0] >> 4 & 3] : NULL;
    if (rep_run_load(s, run, (int)(opts[0] % 6) - 1, &r, &err) != 0)
        abort();
    if (clearance && rep_run_clear(s, &r, clearance, &err) != 0)
        abort(); /* the clearance is one of the run's labels */
    struct rep_outcome o;
    rep_run_outcome(&r, &o);
    struct sink k;
    rep_md(sink_open(&k), &r, 0);
    sink_close(&k, 0, 0);
    rep_md(sink_open(&k), &r, (size_t)opts[1] * 16);
    sink_close(&k, 0, 0);
    sink_close(&k, rep_jsonl(sink_open(&k), &r, &err), 2);
    sink_close(&k, rep_sarif(sink_open(&k), &r, &err), 1);
    rep_junit(sink_open(&k), &r);
    sink_close(&k, 0, 0);
    sink_close(&k, rep_github_review(sink_open(&k), &r, &err), 1);
    rep_github_annotations(sink_open(&k), &r);
    sink_close(&k, 0, 0);
    rep_run_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    if (size < 2)
        return 0;
    struct store *s = store_get();
    struct bh_err err = {0};
    char key[32];
    snprintf(key, sizeof(key), "fuzz:%u", runs++);
    int64_t run = 0;
    int resumed = 0;
    if (store_run_open(s, key, "fuzz", &run, &resumed, &err) != 0 ||
        store_run_set_labels(s, run, labels, 4, &err) != 0 || store_batch_begin(s, &err) != 0)
        abort();
    char *findings[16];
    size_t n_findings = 0;
    for (const uint8_t *p = data + 2, *end = data + size; p < end;) {
        const uint8_t *sep = memchr(p, 0x1e, (size_t)(end - p));
        size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
        if (n > 0)
            row_put(s, run, p, n, findings, &n_findings);
        p += n + 1;
    }
    if (store_batch_commit(s, &err) != 0)
        abort();
    /* fails on a stage name holding a newline, as its contract says */
    store_run_set_findings(s, run, findings, n_findings, &err);
    write_all(s, run, data);
    for (size_t i = 0; i < n_findings; i++)
        free(findings[i]);
    return 0;
}
