/* report/rep_sarif.c — SARIF 2.1.0 for code scanning (GitHub's upload-sarif
 * and any SARIF viewer). One run; the driver is bulkhead with a rule per
 * distinct rule id (a finding's own rule, else its stage's name); a result
 * per finding with its level, message, location relative to the repository
 * root (%SRCROOT%) and a partial fingerprint that does not move with the
 * line, so a finding that shifts down a file stays the same alert. Tasks
 * that did not finish are tool execution notifications and make the
 * invocation unsuccessful: a SARIF file must not look complete when it is
 * not. The file validates against the vendored schema (fixtures/sarif/). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/rep_int.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_hash.h"
#include "util/bh_xmalloc.h"

#ifndef BH_VERSION
#define BH_VERSION "0"
#endif

static const char *level(int sev)
{
    return sev >= STAGE_SEV_HIGH ? "error" : sev == STAGE_SEV_MEDIUM ? "warning" : "note";
}

/* A path as a URI reference: everything but unreserved characters and '/'
 * percent-encoded (a space, '#', '%' in a file name). */
static char *uri_of(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = bh_xmalloc(strlen(path) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (strchr("-._~/", *p) || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9')) {
            *o++ = (char)*p;
            continue;
        }
        *o++ = '%';
        *o++ = hex[*p >> 4];
        *o++ = hex[*p & 15];
    }
    *o = '\0';
    return out;
}

static json_t *rules_add(json_t *rules, const char *id, size_t *index, int *bad)
{
    for (size_t i = 0; i < json_array_size(rules); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(rules, i), "id")), id) == 0) {
            *index = i;
            return rules;
        }
    *index = json_array_size(rules);
    bh_json_push(
        rules,
        json_pack("{s:s, s:s, s:{s:s}}", "id", id, "name", id, "shortDescription", "text", id),
        bad);
    return rules;
}

static json_t *location(const struct stage_finding *f)
{
    char *uri = uri_of(f->path);
    json_t *loc = json_pack("{s:{s:{s:s, s:s}, s:{s:I, s:I}}}", "physicalLocation",
                            "artifactLocation", "uri", uri, "uriBaseId", "%SRCROOT%", "region",
                            "startLine", (json_int_t)f->line, "endLine", (json_int_t)f->end_line);
    free(uri);
    return loc;
}

static json_t *result(const struct rep_run *r, size_t i, size_t k, json_t *rules, int *bad)
{
    const struct stage_finding *f = &r->f[i].v[k];
    const char *rule = rep_rule(r, i, k);
    size_t index = 0;
    rules_add(rules, rule, &index, bad);
    char *text = f->suggestion[0] ? bh_xasprintf("%s\n\nSuggestion: %s", f->message, f->suggestion)
                                  : bh_xstrdup(f->message);
    char fp[BH_SHA256_HEX];
    struct bh_sha256 *h = bh_sha256_new();
    bh_sha256_field(h, rule);
    bh_sha256_field(h, f->path);
    bh_sha256_field(h, f->message);
    bh_sha256_final(h, fp);
    const struct store_task *t = &r->t[i];
    json_t *res = json_pack(
        "{s:s, s:I, s:s, s:{s:s}, s:[o], s:{s:s}, s:{s:s, s:s, s:s, s:s, "
        "s:s, s:s}}",
        "ruleId", rule, "ruleIndex", (json_int_t)index, "level", level(f->severity), "message",
        "text", text, "locations", location(f), "partialFingerprints", "bulkheadFinding/v1", fp,
        "properties", "severity", stage_severity_name(f->severity), "stage", t->stage, "item",
        t->item_key, "model", t->model, "locality", t->locality, "label", t->label);
    free(text);
    return res;
}

static json_t *notification(const struct rep_run *r, size_t i)
{
    const struct store_task *t = &r->t[i];
    const char *why = r->unreadable[i] ? r->unreadable[i] : t->error[0] ? t->error : "not run";
    char *text = bh_xasprintf("stage '%s' on '%s'%s%s: %s: %s", t->stage, t->item_key,
                              t->element[0] ? ", element " : "", t->element,
                              store_state_name(t->state), why);
    const char *level = t->state == STORE_SKIPPED    ? "note"
                        : t->state == STORE_WITHHELD ? "warning"
                                                     : "error";
    json_t *n = json_pack("{s:s, s:{s:s}}", "level", level, "message", "text", text);
    free(text);
    return n;
}

/* executionSuccessful comes from the tasks' states: done, or skipped as the
 * pipeline declares, is fine; anything else (failed, withheld, not run) is not. */
static json_t *invocation(const struct rep_run *r, int *bad)
{
    json_t *notes = json_array();
    int ok = 1;
    for (size_t i = 0; i < r->n; i++)
        if (r->t[i].state != STORE_DONE || r->unreadable[i]) {
            bh_json_push(notes, notification(r, i), bad);
            /* A skip the pipeline declares is its intent, not a failed execution. */
            ok &= r->t[i].state == STORE_SKIPPED && !r->unreadable[i];
        }
    /* The answering model is part of the result: a stage answered by another
     * model than it asked for is a warning of the run, per stage. */
    struct rep_model_diff *d = NULL;
    size_t n = rep_run_model_diffs(r, &d);
    for (size_t i = 0; i < n; i++) {
        char line[600];
        rep_model_diff_text(&d[i], line, sizeof(line));
        bh_json_push(notes,
                     json_pack("{s:s, s:{s:s}}", "level", "warning", "message", "text", line), bad);
    }
    free(d);
    return json_pack("{s:b, s:o}", "executionSuccessful", ok, "toolExecutionNotifications", notes);
}

int rep_sarif(FILE *out, const struct rep_run *r, struct bh_err *err)
{
    json_t *rules = json_array(), *results = json_array();
    int bad = 0;
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < r->f[i].n; k++)
            bh_json_push(results, result(r, i, k, rules, &bad), &bad);
    json_t *inv = invocation(r, &bad);
    json_t *doc =
        json_pack("{s:s, s:s, s:[{s:{s:{s:s, s:s, s:o}}, s:[o], s:o, s:{s:{s:{s:s}}}}]}", "$schema",
                  "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0", "runs",
                  "tool", "driver", "name", "bulkhead", "version", BH_VERSION, "rules", rules,
                  "invocations", inv, "results", results, "originalUriBaseIds", "%SRCROOT%",
                  "description", "text", "the root of the repository");
    if (!doc || bad) {
        json_decref(doc);
        return rep_json_failed(r, "SARIF document", err);
    }
    int rc = bh_json_dump_file(out, doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(doc);
    fputc('\n', out);
    return rc == 0 ? 0 : bh_err_set(err, BH_EIO, "cannot write the SARIF document");
}
