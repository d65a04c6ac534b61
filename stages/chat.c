/* stages/chat.c — the chat stage kind: render, build the provider's request,
 * send it through the egress gate, parse the streamed reply, report back to
 * the engine. The request is built here and handed to the gate whole, with
 * the label of everything rendered into it: the gate decides on exactly the
 * bytes that would leave. */
#include "stages/chat.h"

#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/declassify.h"
#include "policy/plan.h"
#include "policy/policy.h"
#include "providers/prov.h"
#include "stages/render.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

/* What a prompt substituted, kept until the reply for declassify's guards. */
struct inputs {
    struct pol_decl_input *v; /* names borrowed from the pipeline, texts owned */
    size_t n, cap;
};

struct chat_call {
    struct eng_task *t;
    struct inputs in;      /* taken from the rendering when the stage declassifies */
    size_t via;            /* the stage whose endpoint and model answer: the task's own, or
                              its reroute target */
    const struct prov_ops *ops;
    struct prov_stream *stream;
    int label;
    int feed_failed;
    struct bh_err err;
};

/* "endpoint 'gpu-box' (http://...), model 'x': " — the facts a user needs to act. */
static void prefix_where(struct eng_task *t, size_t via, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[via];
    const struct pipe_endpoint *e = &p->endpoints[s->endpoint];
    bh_err_prefix(err, "endpoint '%s' (%s), model '%s': ", e->name, e->url, s->model);
}

static int on_data(void *ud, const char *data, size_t len)
{
    struct chat_call *c = ud;
    if (c->feed_failed)
        return 1;
    if (c->ops->stream_feed(c->stream, data, len, &c->err)) {
        c->feed_failed = 1;
        return 1; /* abort the transfer: the reply is already unusable */
    }
    return 0;
}

static void inputs_add(struct inputs *in, const char *name, const char *text, int label)
{
    if (in->n == in->cap)
        in->v = bh_xgrow(in->v, &in->cap, in->n + 1, sizeof(*in->v));
    size_t len = text ? strlen(text) : 0;
    in->v[in->n++] = (struct pol_decl_input){ name, bh_xstrndup(text ? text : "", len), len,
                                              label };
}

static void inputs_release(struct inputs *in)
{
    for (size_t i = 0; i < in->n; i++)
        free((char *)in->v[i].text);
    free(in->v);
    memset(in, 0, sizeof(*in));
}

static void call_free(struct chat_call *c)
{
    inputs_release(&c->in);
    if (c->stream)
        c->ops->stream_free(c->stream);
    free(c);
}

/* Ollama marks a reply produced by a cloud stub with remote_host: the prompt
 * has left the machine although the stage is local. Too late to prevent (a
 * later check of /api/tags before sending will), never too late to refuse the
 * result and say so loudly. */
static int check_not_forwarded(struct eng_task *t, size_t stage, const struct prov_reply *reply,
                               int label, struct bh_err *err)
{
    if (!reply->remote_host || !reply->remote_host[0] || !egr_stage_local(eng_task_gate(t), stage))
        return 0;
    char why[300];
    struct bh_err aerr = { 0 };
    snprintf(why, sizeof(why), "breach: the reply says the server forwarded the request to '%s'",
             reply->remote_host);
    egr_audit_refusal(eng_task_gate(t), stage, eng_task_item(t), label, why, &aerr);
    return bh_err_set(err, BH_EPOLICY,
                      "the server forwarded this request to '%s' (the model is a cloud stub): "
                      "its output is discarded — use a model that runs on that machine",
                      reply->remote_host);
}

/* "guards passed (redacted: ...)" or "guard no_verbatim failed: ..." — no
 * text of the output or of an input, only counts, names and ids. */
static void declassify_reason(const struct pipeline *p, int from, const struct pol_decl_result *res,
                              char *buf, size_t size)
{
    if (res->passed)
        bh_str_put(buf, size, "from %s to %s: guards passed; redacted %zu code blocks, %zu "
                   "paths, %zu secrets", pol_label_name(p, from), pol_label_name(p, res->label),
                   res->redacted_code, res->redacted_paths, res->redacted_secrets);
    else
        bh_str_put(buf, size, "kept at %s: guard %s failed: %s (redacted %zu secrets)",
                   pol_label_name(p, from), res->failed ? res->failed : "?", res->detail,
                   res->redacted_secrets);
}

/* The stage's declassify, applied to a reply: what is stored is the redacted
 * output, at `to` when every guard passed, else at the prompt's label. The
 * decision is audited either way. Only the pipeline's declaration starts
 * this; nothing in the reply can. */
static void done_declassified(struct chat_call *c, const char *out, const struct eng_metrics *m)
{
    const struct pipeline *p = eng_task_pipeline(c->t);
    const struct pipe_declassify *d = &p->stages[c->via].declassify;
    struct pol_decl_result res;
    struct bh_err err = { 0 }, aerr = { 0 };
    char why[320];
    if (pol_declassify(eng_task_labeller(c->t), d, c->label, out, strlen(out), c->in.v, c->in.n,
                       &res, &err)) {
        /* Too large to scan for secrets: stored as it came, at its own label. */
        bh_str_put(why, sizeof(why), "not declassified: %s", err.msg);
        if (egr_audit_declassify(eng_task_gate(c->t), c->via, eng_task_item(c->t), c->label,
                                 d->to, 0, why, out, strlen(out), &aerr) == 0)
            eng_task_done(c->t, out, c->label, m);
        else
            eng_task_fail(c->t, &aerr);
        return;
    }
    declassify_reason(p, c->label, &res, why, sizeof(why));
    if (egr_audit_declassify(eng_task_gate(c->t), c->via, eng_task_item(c->t), c->label, res.label,
                             res.passed, why, res.output, res.len, &aerr) == 0)
        eng_task_done(c->t, res.output, res.label, m);
    else
        eng_task_fail(c->t, &aerr); /* no audit record, no lowered label */
    pol_decl_result_release(&res);
}

static void done_with(struct chat_call *c, const char *out, const struct eng_metrics *m)
{
    const struct pipeline *p = eng_task_pipeline(c->t);
    if (p->stages[c->via].declassify.enabled)
        done_declassified(c, out, m);
    else
        eng_task_done(c->t, out, c->label, m);
}

static void on_done(void *ud, const struct net_result *r)
{
    struct chat_call *c = ud;
    struct prov_reply reply = { 0 };
    struct bh_err err = { 0 };
    int rc, transient = 0;
    if (c->feed_failed) {
        err = c->err;
        rc = err.code;
    } else if (r->code) {
        transient = r->transient;
        /* Connection trouble gets the question worth asking; a redirect or a
         * cap explains itself. */
        rc = bh_err_set(&err, r->code, "%s%s", r->error[0] ? r->error : "transfer failed",
                        r->transient ? " — is the server running and reachable? bulkhead "
                                       "never falls back to another endpoint" : "");
    } else {
        rc = c->ops->stream_finish(c->stream, r->status, &reply, &err);
        transient = rc && reply.transient;
        if (rc == 0)
            rc = check_not_forwarded(c->t, c->via, &reply, c->label, &err);
    }
    if (rc) {
        prefix_where(c->t, c->via, &err);
        if (transient) /* same endpoint, same model, through the gate again */
            eng_task_retry(c->t, r->retry_after_ms, r->status == 503, &err);
        else
            eng_task_fail(c->t, &err);
    } else {
        struct eng_metrics m = { reply.prompt_tokens, reply.output_tokens, reply.load_ns,
                                 reply.total_ns, reply.model, c->via != eng_task_stage(c->t),
                                 c->via };
        done_with(c, reply.content ? reply.content : "", &m);
    }
    prov_reply_release(&reply);
    call_free(c);
}

/* A stage's two messages for this task, rendered, and their label; with
 * what they substituted when the stage declassifies its output. */
struct rendered {
    char *system, *user;
    int label;
    struct inputs in;
};

static void rendered_release(struct rendered *r)
{
    free(r->system);
    free(r->user);
    inputs_release(&r->in);
}

struct recorder {
    struct eng_task *t;
    struct inputs *in; /* NULL: record nothing */
};

/* eng_task_lookup, noting each value and its label for the guards. */
static int record_lookup(void *ud, const char *field, const char **value, int *label,
                         struct bh_err *err)
{
    struct recorder *r = ud;
    int rc = eng_task_lookup(r->t, field, value, label, err);
    if (rc == 0 && r->in)
        inputs_add(r->in, field, *value, *label);
    return rc;
}

/* The template's own words count as inputs at the bottom label: a reply may
 * repeat its instructions without leaking anything. */
static void literals_add(struct inputs *in, const struct pipe_tpl *t)
{
    for (size_t i = 0; i < t->n_parts; i++)
        if (!t->parts[i].is_field)
            inputs_add(in, "the prompt template", t->parts[i].text, 0);
}

static int render_stage(struct eng_task *t, size_t stage, struct rendered *r, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[stage];
    int ls = 0, rc = 0;
    memset(r, 0, sizeof(*r));
    struct recorder rec = { t, s->declassify.enabled ? &r->in : NULL };
    if (s->system.n_parts)
        rc = stage_render(p, &s->system, record_lookup, &rec, STAGE_PROMPT_MAX, &r->system, &ls,
                          err);
    if (rc == 0)
        rc = stage_render(p, &s->tpl, record_lookup, &rec, STAGE_PROMPT_MAX, &r->user,
                          &r->label, err);
    r->label = pol_label_join(p, r->label, ls);
    if (rc == 0 && rec.in) {
        literals_add(rec.in, &s->system);
        literals_add(rec.in, &s->tpl);
    }
    if (rc)
        rendered_release(r);
    return rc;
}

static int build_body(const struct pipeline *p, size_t via, const struct prov_ops *ops,
                      const struct rendered *r, char **body, size_t *len, struct bh_err *err)
{
    const struct pipe_stage *s = &p->stages[via];
    struct prov_msg msgs[2];
    size_t n = 0;
    if (r->system)
        msgs[n++] = (struct prov_msg){ .role = "system", .content = r->system };
    msgs[n++] = (struct prov_msg){ .role = "user", .content = r->user };
    /* truncate off: Ollama would otherwise drop the start of a prompt that
     * does not fit its context, silently; a failure is better than that. */
    struct prov_chat chat = { .model = s->model, .msgs = msgs, .n_msgs = n, .stream = 1,
                              .truncate_off = 1, .options_json = s->options_json,
                              .keep_alive = s->keep_alive };
    if (s->out_format == PIPE_OUT_JSON) /* the reply a for_each reads as a list */
        chat.format_json = s->out_schema_json ? s->out_schema_json : "json";
    return ops->chat_body(&chat, body, len, err);
}

/* Sends the rendered messages to stage via's endpoint and model, through
 * the gate, which checks r->label against via's clearance. */
/* A prompt that cannot fit the context the stage asked for fails here, before
 * anything is sent: a model must never silently lose the start of a prompt.
 * About 4 bytes make a token in English and code, so bytes / 4 is an estimate
 * that flags only prompts that are clearly too long. */
static int fits_context(const struct pipe_stage *s, const struct rendered *r, struct bh_err *err)
{
    long ctx = s->num_ctx;
    size_t bytes = (r->system ? strlen(r->system) : 0) + strlen(r->user);
    long tokens = (long)(bytes / 4);
    if (ctx <= 0 || tokens <= ctx)
        return 0;
    return bh_err_set(err, BH_ETOOBIG,
                      "the prompt is about %ld tokens (%zu bytes), more than the stage's "
                      "options.num_ctx %ld of model '%s' — raise num_ctx (within the model's "
                      "context length, see 'ollama show %s') or give the stage less to read",
                      tokens, bytes, ctx, s->model, s->model);
}

static int send_via(struct eng_task *t, size_t via, struct rendered *r, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    int fit = fits_context(&p->stages[via], r, err);
    if (fit)
        return fit;
    const struct prov_ops *ops = prov_find(p->endpoints[p->stages[via].endpoint].provider);
    if (!ops)
        return bh_err_set(err, BH_EINTERNAL, "no provider '%s'",
                          p->endpoints[p->stages[via].endpoint].provider);
    struct chat_call *c = bh_xcalloc(1, sizeof(*c));
    c->t = t;
    c->via = via;
    c->ops = ops;
    c->label = r->label;
    c->in = r->in; /* the guards need them when the reply comes */
    memset(&r->in, 0, sizeof(r->in));
    char *body = NULL;
    size_t len = 0;
    int rc = build_body(p, via, ops, r, &body, &len, err);
    if (rc == 0) {
        c->stream = ops->stream_new(STAGE_REPLY_MAX);
        struct egr_send_req req = { .stage = via, .item = eng_task_item(t),
                                    .path = ops->chat_path, .body = body, .body_len = len,
                                    .label = c->label, .max_reply = STAGE_WIRE_MAX,
                                    .headers = ops->headers,
                                    .key_header = ops->auth_style == PROV_AUTH_X_API_KEY,
                                    .on_data = on_data, .on_done = on_done, .ud = c };
        rc = egr_send(eng_task_gate(t), &req, err);
    }
    free(body);
    if (rc)
        call_free(c); /* nothing was sent: the callbacks will not run */
    return rc;
}

/* on_sensitive for a prompt above the stage's clearance: skip withholds the
 * task, reroute renders and sends the target's prompt instead. Both are
 * audited as refusals of the origin, naming what happened. fail (and a
 * reroute target that cannot take it) goes to the gate, which refuses and
 * audits. */
static int on_sensitive(struct eng_task *t, size_t stage, const struct rendered *r,
                        enum pol_decision d, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    struct egr_gate *g = eng_task_gate(t);
    int clr = egr_stage_clearance(g, stage);
    char why[300];
    struct bh_err aerr = { 0 };
    if (d == POL_SKIP) {
        snprintf(why, sizeof(why), "on_sensitive skip: label %s above clearance %s",
                 pol_label_name(p, r->label), pol_label_name(p, clr));
        if (egr_audit_refusal(g, stage, eng_task_item(t), r->label, why, &aerr))
            return bh_err_set(err, aerr.code, "%s", aerr.msg);
        return bh_err_set(err, BH_EPOLICY, "the prompt is %s, above the stage's "
                          "clearance %s (on_sensitive: skip)", pol_label_name(p, r->label),
                          pol_label_name(p, clr));
    }
    size_t via = (size_t)p->stages[stage].reroute;
    struct rendered rt;
    int rc = render_stage(t, via, &rt, err);
    if (rc)
        return rc;
    snprintf(why, sizeof(why), "on_sensitive reroute: label %s above clearance %s, sent to "
             "stage '%s' instead", pol_label_name(p, r->label), pol_label_name(p, clr),
             p->stages[via].name);
    rc = egr_audit_refusal(g, stage, eng_task_item(t), r->label, why, &aerr);
    if (rc)
        *err = aerr;
    else
        rc = send_via(t, via, &rt, err);
    rendered_release(&rt);
    return rc;
}

/* The task's own prompt and what policy makes of it: decided here for both
 * start (which sends) and route (which only tells the scheduler where). */
static int decide(struct eng_task *t, struct rendered *r, enum pol_decision *d,
                  struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    size_t stage = eng_task_stage(t);
    int rc = render_stage(t, stage, r, err);
    if (rc == 0)
        *d = pol_decide(p, stage, r->label, egr_stage_clearance(eng_task_gate(t), stage));
    return rc;
}

static int chat_start(struct eng_task *t, struct bh_err *err)
{
    size_t stage = eng_task_stage(t);
    struct rendered r;
    enum pol_decision d = POL_ALLOW;
    int rc = decide(t, &r, &d, err);
    if (rc)
        return rc;
    if (d == POL_SKIP || d == POL_REROUTE)
        rc = on_sensitive(t, stage, &r, d, err);
    else
        rc = send_via(t, stage, &r, err); /* a refusal is the gate's to make and audit */
    rendered_release(&r);
    return rc;
}

/* Only a stage that reroutes can answer elsewhere: the others are not
 * rendered twice. */
static int chat_route(struct eng_task *t, size_t *via, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    size_t stage = eng_task_stage(t);
    *via = stage;
    if (p->stages[stage].on_sensitive != PIPE_ONS_REROUTE)
        return 0;
    struct rendered r;
    enum pol_decision d = POL_ALLOW;
    int rc = decide(t, &r, &d, err);
    if (rc)
        return rc;
    if (d == POL_REROUTE)
        *via = (size_t)p->stages[stage].reroute;
    rendered_release(&r);
    return 0;
}

const struct eng_kind stage_chat_kind = { "chat", chat_start, chat_route };
