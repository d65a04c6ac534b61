/* stages/output.c — a stage's output format, as the stage kinds apply it.
 * The pipeline says what is wanted; findings/findings.c knows the findings and the
 * schema check; this file joins the two so that chat.c (and the agent loop)
 * only call ask, check, and ask again. */
#include "stages/output.h"

#include <string.h>

#include "pipeline/pipeline.h"
#include "findings/findings.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

void stage_output_ask(const struct pipeline *p, size_t stage, struct stage_ask *out)
{
    const struct pipe_stage *s = &p->stages[stage];
    *out = (struct stage_ask){NULL, NULL};
    if (s->out_format == PIPE_OUT_FINDINGS)
        stage_findings_ask(p->endpoints[s->endpoint].provider, &out->format_json,
                           &out->instruction);
    else if (s->out_format == PIPE_OUT_JSON) /* the reply a for_each reads as a list */
        out->format_json = s->out_schema_json ? s->out_schema_json : "json";
}

int stage_output_checked(const struct pipeline *p, size_t stage)
{
    const struct pipe_stage *s = &p->stages[stage];
    return s->out_format == PIPE_OUT_FINDINGS ||
           (s->out_format == PIPE_OUT_JSON && s->out_schema_json);
}

int stage_output_check(const struct pipeline *p, size_t stage, const char *reply, char **stored,
                       struct bh_err *err)
{
    const struct pipe_stage *s = &p->stages[stage];
    if (!stage_output_checked(p, stage)) {
        *stored = bh_xstrdup(reply);
        return 0;
    }
    if (s->out_format == PIPE_OUT_JSON) {
        int rc = stage_schema_check(s->out_schema_json, reply, stored, err);
        if (rc)
            bh_err_prefix(err,
                          "reply does not follow the output schema '%s': ", s->out_schema_path);
        return rc;
    }
    struct stage_findings f = {0};
    int rc = stage_findings_parse(reply, &f, err);
    if (rc) {
        bh_err_prefix(err, "reply is not valid findings: ");
        return rc;
    }
    *stored = stage_findings_json(&f);
    stage_findings_release(&f);
    return 0;
}

char *stage_output_again(const struct bh_err *why)
{
    /* why->msg starts with "reply is not valid findings: ..." or "reply does not ..." */
    return bh_xasprintf("Your %s. Answer again with only the JSON asked for above, and no "
                        "other text.",
                        why->msg);
}
