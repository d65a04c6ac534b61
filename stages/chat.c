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
#include "policy/policy.h"
#include "providers/prov.h"
#include "stages/render.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

struct chat_call {
    struct eng_task *t;
    const struct prov_ops *ops;
    struct prov_stream *stream;
    int label;
    int feed_failed;
    struct bh_err err;
};

/* "endpoint 'gpu-box' (http://...), model 'x': " — the facts a user needs to act. */
static void prefix_where(struct eng_task *t, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[eng_task_stage(t)];
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

static void call_free(struct chat_call *c)
{
    if (c->stream)
        c->ops->stream_free(c->stream);
    free(c);
}

/* Ollama marks a reply produced by a cloud stub with remote_host: the prompt
 * has left the machine although the stage is local. Too late to prevent (a
 * later check of /api/tags before sending will), never too late to refuse the
 * result and say so loudly. */
static int check_not_forwarded(struct eng_task *t, const struct prov_reply *reply, int label,
                               struct bh_err *err)
{
    size_t stage = eng_task_stage(t);
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
            rc = check_not_forwarded(c->t, &reply, c->label, &err);
    }
    if (rc) {
        prefix_where(c->t, &err);
        if (transient) /* same endpoint, same model, through the gate again */
            eng_task_retry(c->t, r->retry_after_ms, r->status == 503, &err);
        else
            eng_task_fail(c->t, &err);
    } else {
        struct eng_metrics m = { reply.prompt_tokens, reply.output_tokens, reply.load_ns,
                                 reply.total_ns, reply.model };
        eng_task_done(c->t, reply.content ? reply.content : "", c->label, &m);
    }
    prov_reply_release(&reply);
    call_free(c);
}

static int build_body(struct eng_task *t, const struct prov_ops *ops, int *label, char **body,
                      size_t *len, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct pipe_stage *s = &p->stages[eng_task_stage(t)];
    char *prompt = NULL;
    int rc = stage_render(p, &s->tpl, eng_task_lookup, t, STAGE_PROMPT_MAX, &prompt, label, err);
    if (rc)
        return rc;
    struct prov_msg msg = { .role = "user", .content = prompt };
    /* truncate off: Ollama would otherwise drop the start of a prompt that
     * does not fit its context, silently; a failure is better than that. */
    struct prov_chat chat = { .model = s->model, .msgs = &msg, .n_msgs = 1, .stream = 1,
                              .truncate_off = 1, .options_json = s->options_json,
                              .keep_alive = s->keep_alive };
    rc = ops->chat_body(&chat, body, len, err);
    free(prompt);
    return rc;
}

static int chat_start(struct eng_task *t, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    size_t stage = eng_task_stage(t);
    const struct prov_ops *ops = prov_find(p->endpoints[p->stages[stage].endpoint].provider);
    if (!ops)
        return bh_err_set(err, BH_EINTERNAL, "no provider '%s'",
                          p->endpoints[p->stages[stage].endpoint].provider);
    struct chat_call *c = bh_xcalloc(1, sizeof(*c));
    c->t = t;
    c->ops = ops;
    char *body = NULL;
    size_t len = 0;
    int rc = build_body(t, ops, &c->label, &body, &len, err);
    if (rc == 0) {
        c->stream = ops->stream_new(STAGE_REPLY_MAX);
        struct egr_send_req req = { .stage = stage, .item = eng_task_item(t),
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

const struct eng_kind stage_chat_kind = { "chat", chat_start };
