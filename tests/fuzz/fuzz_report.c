/* tests/fuzz/fuzz_report.c — the report writers (runner/report) on task rows
 * made from arbitrary bytes, stored through the real store (SQLite in a
 * temporary folder) and read back as `bulkhead report` reads them: md (with
 * and without a size cap), jsonl, sarif, junit, github-review and the
 * annotations. Byte 0 picks --fail-on and --clearance, byte 1 the md cap.
 * The rest is task rows separated by 0x1e; in a row, the first byte sets
 * the state (bits 0-2), whether the stage's outputs are findings (bit 3),
 * cached (bit 4) and the label (bits 5-6); then fields separated by 0x1f:
 * stage, element, item key, output, model, answered_by, error, note.
 * What jsonl, sarif and github-review write must be JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
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

static void write_all(struct store *s, int64_t run, const uint8_t *opts)
{
    static const char *const formats[] = {"md", "md", "jsonl", "sarif", "junit", "github-review"};
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct rep_opts o = REP_OPTS_INIT;
        o.format = formats[i];
        o.fail_on = (int)(opts[0] % 6) - 1;
        o.clearance = opts[0] & 0x40 ? labels[opts[0] >> 4 & 3] : NULL;
        o.max_bytes = i == 1 ? (size_t)opts[1] * 16 : 0;
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        struct bh_err err = {0};
        int rc = rep_write(s, run, &o, out, &err);
        fclose(out);
        if (rc == 0 && i >= 2 && i != 4)
            must_be_json(text, len, i == 2);
        free(text);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    struct bh_err err = {0};
    rep_annotations(s, run, opts[0] & 0x80 ? "internal" : NULL, out, &err);
    fclose(out);
    free(text);
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
