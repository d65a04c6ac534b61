/* stages/stage.c — the pieces every stage kind shares (see stage.h), moved
 * out of chat.c when the agent kind came, so that a chat reply and an
 * agent's last reply end the same way: the same rendering and labels, the
 * same forwarded-reply breach, the same declassify and audit. */
#include "stages/stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "engine/engine.h"
#include "pipeline/pipeline.h"
#include "policy/declassify.h"
#include "policy/label.h"
#include "policy/plan.h"
#include "policy/policy.h"
#include "providers/prov.h"
#include "stages/chat.h"
#include "stages/output.h"
#include "stages/render.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

void stage_prefix_where(struct eng_task *t, size_t via, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[via];
    size_t host = eng_task_host(t);
    const struct pipe_endpoint *e = &p->endpoints[pipe_stage_on(p, via, host) ? host : s->endpoint];
    bh_err_prefix(err, "endpoint '%s' (%s), model '%s': ", pipe_host_name(e), e->url, s->model);
}

void stage_inputs_add(struct stage_inputs *in, const char *name, const char *text, int label)
{
    if (in->n == in->cap)
        in->v = bh_xgrow(in->v, &in->cap, in->n + 1, sizeof(*in->v));
    size_t len = text ? strlen(text) : 0;
    in->v[in->n++] = (struct pol_decl_input){name, bh_xstrndup(text ? text : "", len), len, label};
}

void stage_inputs_release(struct stage_inputs *in)
{
    for (size_t i = 0; i < in->n; i++)
        free((char *)in->v[i].text);
    free(in->v);
    memset(in, 0, sizeof(*in));
}

/* Ollama marks a reply produced by a cloud stub with remote_host. The
 * probe before the run (probe/probe.c) shows a stub that exists then; one
 * that appears mid-run (or a probe that could not tell) shows only here.
 * A stub is a fact of the server's model, so every stage on it becomes
 * cloud at once, and no further request carries more than the bottom label
 * there. The request this reply answers went while the stage was local:
 * when its label was above what a stub may get, the data has left, which
 * is too late to prevent and never too late to record as a breach. */
int stage_check_not_forwarded(struct eng_task *t, size_t stage, const struct prov_reply *reply,
                              int label, struct bh_err *err)
{
    struct egr_gate *g = eng_task_gate(t);
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[stage];
    if (!reply->remote_host || !reply->remote_host[0] ||
        !egr_endpoint_info(g, eng_task_host(t))->local)
        return 0;
    /* What a stub here may receive: the clearance the gate applies once the
     * model is marked (policy's rule for a cloud model on a local endpoint). */
    int cap = pol_stage_clearance_facts(p, stage, 1, 1);
    int breach = pol_label_join(p, label, label) > cap; /* -1 (unknown) is top */
    char why[300];
    struct bh_err aerr = {0};
    snprintf(why, sizeof(why),
             "the reply says the server forwarded the request to '%s' "
             "(model '%s' is a cloud stub; treated as cloud from now on)",
             reply->remote_host, s->model);
    /* Recorded before the mark, so that the record says where the request was
     * sent as: a local stage, the data for its clearance. */
    int rc = breach ? egr_audit_breach(g, stage, eng_task_item(t), label, why, &aerr) : 0;
    egr_model_mark_remote(g, s->endpoint, s->model, reply->remote_host);
    if (rc) {
        *err = aerr; /* the audit could not be written: the run stops (egress.c) */
        return aerr.code;
    }
    if (!breach)
        return 0; /* within what the stub may get: allowed as to any cloud model */
    return bh_err_set(err, BH_EPOLICY,
                      "the server forwarded this request to '%s' (the model is a cloud stub): "
                      "its output is discarded, and every stage on the model is treated as "
                      "cloud for the rest of the run — use a model that runs on that machine",
                      reply->remote_host);
}

/* "guards passed (redacted: ...)" or "guard no_verbatim failed: ..." — no
 * text of the output or of an input, only counts, names and ids. */
static void declassify_reason(const struct pipeline *p, int from, const struct pol_decl_result *res,
                              char *buf, size_t size)
{
    if (res->passed)
        bh_str_put(buf, size,
                   "from %s to %s: guards passed; redacted %zu code blocks, %zu "
                   "paths, %zu secrets",
                   pol_label_name(p, from), pol_label_name(p, res->label), res->redacted_code,
                   res->redacted_paths, res->redacted_secrets);
    else
        bh_str_put(buf, size, "kept at %s: guard %s failed: %s (redacted %zu secrets)",
                   pol_label_name(p, from), res->failed ? res->failed : "?", res->detail,
                   res->redacted_secrets);
}

/* The stage's declassify, applied to a reply: what is stored is the redacted
 * output, at `to` when every guard passed, else at the prompt's label. The
 * decision is audited either way. Only the pipeline's declaration starts
 * this; nothing in the reply can. */
static void done_declassified(struct eng_task *t, size_t via, const struct stage_inputs *in,
                              const char *out, int label, const struct eng_metrics *m)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_declassify *d = &p->stages[via].declassify;
    struct pol_decl_result res;
    struct bh_err err = {0}, aerr = {0};
    char why[320];
    if (pol_declassify(eng_task_labeller(t), d, label, out, strlen(out), in->v, in->n, &res,
                       &err)) {
        /* Too large to scan for secrets: stored as it came, at its own label. */
        bh_str_put(why, sizeof(why), "not declassified: %s", err.msg);
        if (egr_audit_declassify(eng_task_gate(t), via, eng_task_item(t), label, d->to, 0, why, out,
                                 strlen(out), &aerr) == 0)
            eng_task_done(t, out, label, m);
        else
            eng_task_fail(t, &aerr);
        return;
    }
    declassify_reason(p, label, &res, why, sizeof(why));
    if (egr_audit_declassify(eng_task_gate(t), via, eng_task_item(t), label, res.label, res.passed,
                             why, res.output, res.len, &aerr) == 0)
        eng_task_done(t, res.output, res.label, m);
    else
        eng_task_fail(t, &aerr); /* no audit record, no lowered label */
    pol_decl_result_release(&res);
}

void stage_task_done(struct eng_task *t, size_t via, const struct stage_inputs *in,
                     const char *output, int label, const struct eng_metrics *m)
{
    const struct pipeline *p = eng_task_pipeline(t);
    if (p->stages[via].declassify.enabled)
        done_declassified(t, via, in, output, label, m);
    else
        eng_task_done(t, output, label, m);
}

void stage_rendered_release(struct stage_rendered *r)
{
    free(r->system);
    free(r->user);
    stage_inputs_release(&r->in);
}

struct recorder {
    struct eng_task *t;
    struct stage_inputs *in; /* NULL: record nothing */
};

/* eng_task_lookup, noting each value and its label for the guards. */
static int record_lookup(void *ud, const char *field, const char **value, int *label,
                         struct bh_err *err)
{
    struct recorder *r = ud;
    int rc = eng_task_lookup(r->t, field, value, label, err);
    if (rc == 0 && r->in)
        stage_inputs_add(r->in, field, *value, *label);
    return rc;
}

/* The template's own words count as inputs at their own label (the bottom,
 * unless a detector finds something in them): a reply may repeat its
 * instructions without leaking anything. */
static void literals_add(struct stage_inputs *in, const struct pipe_tpl *t, int label)
{
    for (size_t i = 0; i < t->n_parts; i++)
        if (!t->parts[i].is_field)
            stage_inputs_add(in, "the prompt template", t->parts[i].text, label);
}

/* The label of a template's own text (pol_label_template). */
static int tpl_label(struct eng_task *t, const struct pipe_tpl *tpl)
{
    struct pol_value v;
    pol_label_template(eng_task_labeller(t), tpl, &v);
    int l = v.label;
    pol_value_release(&v);
    return l;
}

int stage_render_task(struct eng_task *t, size_t stage, struct stage_rendered *r,
                      struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[stage];
    int ls = 0, rc = 0;
    memset(r, 0, sizeof(*r));
    struct recorder rec = {t, s->declassify.enabled ? &r->in : NULL};
    if (s->system.n_parts)
        rc = stage_render(p, &s->system, record_lookup, &rec, STAGE_PROMPT_MAX, &r->system, &ls,
                          err);
    if (rc == 0)
        rc = stage_render(p, &s->tpl, record_lookup, &rec, STAGE_PROMPT_MAX, &r->user, &r->label,
                          err);
    /* Template text is a value too: a key pasted into it goes with every prompt. */
    int lsys = tpl_label(t, &s->system), luser = tpl_label(t, &s->tpl);
    r->label = pol_label_join(p, pol_label_join(p, r->label, ls), pol_label_join(p, lsys, luser));
    if (rc == 0 && rec.in) {
        literals_add(rec.in, &s->system, lsys);
        literals_add(rec.in, &s->tpl, luser);
    }
    if (rc)
        stage_rendered_release(r);
    return rc;
}

/* A prompt that cannot fit the context the stage asked for fails here, before
 * anything is sent: a model must never silently lose the start of a prompt.
 * About 4 bytes make a token in English and code, so bytes / 4 is an estimate
 * that flags only prompts that are clearly too long. */
/* Where to read a model's context length, in the tool of the endpoint's
 * dialect: never an Ollama command for a server that is no Ollama. */
static void context_hint(const struct pipeline *p, const struct pipe_stage *s, char *buf,
                         size_t size)
{
    if (strcmp(p->endpoints[s->endpoint].provider, "ollama") == 0)
        bh_str_put(buf, size, "see 'ollama show %s'", s->model);
    else
        bh_str_put(buf, size, "'bulkhead check --online %s' shows the server's", p->file);
}

int stage_fits_context(struct eng_task *t, size_t via, size_t bytes, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[via];
    long ctx = egr_stage_num_ctx(eng_task_gate(t), via);
    long tokens = pol_tokens_estimate(bytes); /* the estimate `plan` marks tasks with */
    char hint[300];
    if (!pol_prompt_over(bytes, ctx))
        return 0;
    context_hint(p, s, hint, sizeof(hint));
    if (s->num_ctx <= 0)
        return bh_err_set(err, BH_ETOOBIG,
                          "the prompt is about %ld tokens (%zu bytes), more than num_ctx %ld, "
                          "the window bulkhead chose from the context length of model '%s' "
                          "(at most %ld) — set options.num_ctx on the stage (within the "
                          "model's context length, %s) or give the stage less to read",
                          tokens, bytes, ctx, s->model, EGR_NUM_CTX_MAX, hint);
    return bh_err_set(err, BH_ETOOBIG,
                      "the prompt is about %ld tokens (%zu bytes), more than the stage's "
                      "options.num_ctx %ld of model '%s' — raise num_ctx (within the model's "
                      "context length, %s) or give the stage less to read",
                      tokens, bytes, ctx, s->model, hint);
}

void stage_output_instruction_add(const struct pipeline *p, size_t via, struct stage_rendered *r)
{
    struct stage_ask ask;
    stage_output_ask(p, via, &ask);
    if (!ask.instruction)
        return;
    char *user = bh_xasprintf("%s%s", r->user, ask.instruction);
    free(r->user);
    r->user = user;
    if (p->stages[via].declassify.enabled)
        stage_inputs_add(&r->in, "the output format's instruction", ask.instruction, 0);
}
