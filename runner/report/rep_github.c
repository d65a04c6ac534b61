/* report/rep_github.c — GitHub's two ways of showing findings on a pull
 * request. github-review: the JSON body of POST
 * /repos/{owner}/{repo}/pulls/{number}/reviews — a summary as the review's
 * body and a line comment per finding on the new side of the diff (RIGHT;
 * a range becomes start_line..line). Annotations: the workflow commands
 * "::error file=...::..." a step prints to mark lines, escaped as GitHub's
 * toolkit escapes them (% CR LF in the message; also : and , in a
 * property), so a message cannot end the command early or forge another. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream */
#endif
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/rep_int.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_xmalloc.h"

/* Runs a Markdown writer into a string (owned). */
static char *md_string(void (*fn)(FILE *, const struct rep_run *, const void *),
                       const struct rep_run *r, const void *ud)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort(); /* out of memory */
    fn(f, r, ud);
    fclose(f);
    return buf;
}

static void review_body(FILE *f, const struct rep_run *r, const void *ud)
{
    (void)ud;
    rep_md_summary(f, r);
    rep_md_where(f, r);
    rep_md_not_done(f, r);
}

static void comment_body(FILE *f, const struct rep_run *r, const void *ud)
{
    const size_t *ik = ud;
    const struct stage_finding *fi = &r->f[ik[0]].v[ik[1]];
    fprintf(f, "**%s** · ", stage_severity_name(fi->severity));
    rep_md_text(f, rep_rule(r, ik[0], ik[1]));
    fputs("\n\n", f);
    rep_md_text(f, fi->message);
    if (fi->suggestion[0]) {
        fputs("\n\n**Suggestion:** ", f);
        rep_md_text(f, fi->suggestion);
    }
    fputs("\n", f);
}

static json_t *comment(const struct rep_run *r, size_t i, size_t k, int *bad)
{
    const struct stage_finding *f = &r->f[i].v[k];
    size_t ik[2] = {i, k};
    char *body = md_string(comment_body, r, ik);
    json_t *c = json_pack("{s:s, s:I, s:s}", "path", f->path, "line", (json_int_t)f->end_line,
                          "side", "RIGHT");
    if (!c) {
        *bad = 1;
        free(body);
        return NULL;
    }
    if (f->end_line > f->line) {
        bh_json_set(c, "start_line", json_integer(f->line), bad);
        bh_json_set(c, "start_side", json_string("RIGHT"), bad);
    }
    bh_json_set(c, "body", json_string(body), bad);
    free(body);
    return c;
}

int rep_github_review(FILE *out, const struct rep_run *r, struct bh_err *err)
{
    json_t *comments = json_array();
    int bad = 0;
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < r->f[i].n; k++)
            bh_json_push(comments, comment(r, i, k, &bad), &bad);
    char *body = md_string(review_body, r, NULL);
    json_t *doc =
        json_pack("{s:s, s:s, s:o}", "body", body, "event", "COMMENT", "comments", comments);
    free(body);
    if (!doc || bad) {
        json_decref(doc);
        return rep_json_failed(r, "GitHub review", err);
    }
    int rc = bh_json_dump_file(out, doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(doc);
    fputc('\n', out);
    return rc == 0 ? 0 : bh_err_set(err, BH_EIO, "cannot write the review");
}

/* ---- annotations ---- */

static void escaped(FILE *out, const char *s, int property)
{
    for (; *s; s++) {
        switch (*s) {
        case '%': fputs("%25", out); break;
        case '\r': fputs("%0D", out); break;
        case '\n': fputs("%0A", out); break;
        case ':': fputs(property ? "%3A" : ":", out); break;
        case ',': fputs(property ? "%2C" : ",", out); break;
        default: fputc(*s, out);
        }
    }
}

static void annotation(FILE *out, const struct rep_run *r, size_t i, size_t k)
{
    const struct stage_finding *f = &r->f[i].v[k];
    const char *cmd = f->severity >= STAGE_SEV_HIGH     ? "error"
                      : f->severity == STAGE_SEV_MEDIUM ? "warning"
                                                        : "notice";
    fprintf(out, "::%s file=", cmd);
    escaped(out, f->path, 1);
    fprintf(out, ",line=%ld,endLine=%ld,title=", f->line, f->end_line);
    escaped(out, rep_rule(r, i, k), 1);
    fprintf(out, "::%s: ", stage_severity_name(f->severity));
    escaped(out, f->message, 0);
    if (f->suggestion[0]) {
        fputs("%0ASuggestion: ", out);
        escaped(out, f->suggestion, 0);
    }
    fputc('\n', out);
}

void rep_github_annotations(FILE *out, const struct rep_run *r)
{
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < r->f[i].n; k++)
            annotation(out, r, i, k);
}
