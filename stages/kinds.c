/* stages/kinds.c — the start of every task: render the stage's prompt with
 * its label, decide with the stage's clearance (pol_decide, as `plan`
 * predicts), apply on_sensitive (skip withholds, reroute renders the
 * target's prompt instead), and send through the kind of the stage that
 * runs. A refusal under on_sensitive fail is the gate's to make and audit,
 * so it is simply sent. */
#include "stages/kinds.h"

#include <stdio.h>

#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/plan.h"
#include "policy/policy.h"
#include "stages/agent.h"
#include "stages/chat.h"
#include "stages/stage.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

typedef int (*send_fn)(struct eng_task *t, size_t via, struct stage_rendered *r,
                       struct bh_err *err);

/* How each kind talks to its model. A reduce task is one chat request: the
 * engine made its parts. */
static const struct {
    enum pipe_kind kind;
    send_fn send;
} senders[] = {
    {PIPE_KIND_CHAT, stage_chat_send},
    {PIPE_KIND_AGENT, stage_agent_send},
    {PIPE_KIND_REDUCE, stage_chat_send},
};

static const struct stage_repo *bound;

void stage_kinds_bind(const struct stage_repo *repo)
{
    bound = repo;
}

const struct stage_repo *stage_kinds_repo(void)
{
    return bound;
}

int stage_send(struct eng_task *t, size_t via, struct stage_rendered *r, struct bh_err *err)
{
    enum pipe_kind k = eng_task_pipeline(t)->stages[via].kind;
    for (size_t i = 0; i < BH_NELEM(senders); i++)
        if (senders[i].kind == k)
            return senders[i].send(t, via, r, err);
    return bh_err_set(err, BH_EINTERNAL, "stage kind %d has no sender", (int)k);
}

/* on_sensitive for a prompt above the stage's clearance: skip withholds the
 * task, reroute renders and sends the target's prompt instead. Both are
 * audited as refusals of the origin, naming what happened. fail (and a
 * reroute target that cannot take it) goes to the gate, which refuses and
 * audits. */
static int on_sensitive(struct eng_task *t, size_t stage, const struct stage_rendered *r,
                        enum pol_decision d, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    struct egr_gate *g = eng_task_gate(t);
    int clr = egr_stage_clearance(g, stage);
    char why[300];
    struct bh_err aerr = {0};
    if (d == POL_SKIP) {
        snprintf(why, sizeof(why), "on_sensitive skip: label %s above clearance %s",
                 pol_label_name(p, r->label), pol_label_name(p, clr));
        if (egr_audit_refusal(g, stage, eng_task_item(t), r->label, why, &aerr))
            return bh_err_set(err, aerr.code, "%s", aerr.msg);
        return bh_err_set(err, BH_ESKIP,
                          "the prompt is %s, above the stage's "
                          "clearance %s: skipped as the pipeline declares (on_sensitive: skip)",
                          pol_label_name(p, r->label), pol_label_name(p, clr));
    }
    size_t via = (size_t)p->stages[stage].reroute;
    struct stage_rendered rt;
    int rc = stage_render_task(t, via, &rt, err);
    if (rc)
        return rc;
    snprintf(why, sizeof(why),
             "on_sensitive reroute: label %s above clearance %s, sent to "
             "stage '%s' instead",
             pol_label_name(p, r->label), pol_label_name(p, clr), p->stages[via].name);
    rc = egr_audit_refusal(g, stage, eng_task_item(t), r->label, why, &aerr);
    if (rc)
        *err = aerr;
    else
        rc = stage_send(t, via, &rt, err);
    stage_rendered_release(&rt);
    return rc;
}

/* The task's own prompt and what policy makes of it: decided the same way
 * for start (which sends) and route (which only tells the scheduler where). */
static int decide(struct eng_task *t, struct stage_rendered *r, enum pol_decision *d,
                  struct bh_err *err)
{
    size_t stage = eng_task_stage(t);
    int rc = stage_render_task(t, stage, r, err);
    if (rc == 0)
        *d = pol_decide(eng_task_pipeline(t), stage, r->label,
                        egr_stage_clearance(eng_task_gate(t), stage));
    return rc;
}

static int kind_start(struct eng_task *t, struct bh_err *err)
{
    size_t stage = eng_task_stage(t);
    struct stage_rendered r;
    enum pol_decision d = POL_ALLOW;
    int rc = decide(t, &r, &d, err);
    if (rc)
        return rc;
    if (d == POL_SKIP || d == POL_REROUTE)
        rc = on_sensitive(t, stage, &r, d, err);
    else
        rc = stage_send(t, stage, &r, err); /* a refusal is the gate's to make and audit */
    stage_rendered_release(&r);
    return rc;
}

/* Where t will be answered: only a stage that reroutes can answer
 * elsewhere, so the others are not rendered twice. */
static int kind_route(struct eng_task *t, size_t *via, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    size_t stage = eng_task_stage(t);
    *via = stage;
    if (p->stages[stage].on_sensitive != PIPE_ONS_REROUTE)
        return 0;
    struct stage_rendered r;
    enum pol_decision d = POL_ALLOW;
    int rc = decide(t, &r, &d, err);
    if (rc)
        return rc;
    if (d == POL_REROUTE)
        *via = (size_t)p->stages[stage].reroute;
    stage_rendered_release(&r);
    return 0;
}

const struct eng_kind stage_kind = {"stage", kind_start, kind_route};
