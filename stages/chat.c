/* stages/chat.c — the chat stage kind: build the provider's request from a
 * rendered prompt, send it through the egress gate, parse the streamed
 * reply, report back to the engine. The request is built here and handed to
 * the gate whole, with the label of everything rendered into it: the gate
 * decides on exactly the bytes that would leave. Rendering, on_sensitive
 * and the end of a task are shared with the agent kind (stage.c, kinds.c).
 * A chat reply that fails the stage's output check (findings, a schema) is
 * sent back once with the error (stages/output.h).
 *
 * The response cache sits between the gate's decision and the send: a
 * request is looked up only once the gate has said it may go (a refusal is
 * never answered from the cache), and a reply found there is audited as
 * "cached" and finished by the same code as a live one (the output check,
 * declassify's guards), with the label of the request that found it.
 * The key is the hash of the endpoint's dialect and URL, the model and the
 * exact body the provider built: any change to what would be sent — a
 * message, an option, the format — is another key. Agent turns are not
 * cached: the cache keeps a reply's text, not its tool calls. */
#include "stages/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "providers/manage.h"
#include "providers/prov.h"
#include "stages/output.h"
#include "stages/stage.h"
#include "store/cache.h"
#include "util/bh_err.h"
#include "util/bh_hash.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

struct chat_call {
    struct eng_task *t;
    struct stage_inputs in; /* taken from the rendering when the stage declassifies */
    size_t via;             /* the stage whose endpoint and model answer: the task's own, or
                               its reroute target */
    const struct prov_ops *ops;
    struct prov_stream *stream;
    int label;
    int feed_failed;
    struct bh_err err;
    stage_reply_fn on_reply; /* NULL: the reply ends the task (chat) */
    void *ud;
    char *system, *user; /* chat: the messages sent, asked again with them */
    int asked_again;     /* 1 once a reply failed the output check and was sent back */
    int cut;             /* the reply was cut for length and kept (on_truncated) */
    int64_t prompt_tokens, output_tokens; /* of the request before asking again */
    int suffixed;                         /* the model went as "NAME:local" (egr_stage_model) */
    char key[BH_SHA256_HEX]; /* the response cache's key, "" when the request does not use it */
};

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
    stage_inputs_release(&c->in);
    free(c->system);
    free(c->user);
    if (c->stream)
        c->ops->stream_free(c->stream);
    free(c);
}

/* A 404 for "NAME:local": the server honours the suffix and has no local
 * model of that name. /api/tags showed it there (or could not say): it is a
 * cloud stub the server refused to forward — a policy refusal, withheld and
 * audited; nothing left the machine. Shown missing: a plain missing model. */
static int local_refused(struct chat_call *c, const char *text, struct bh_err *err)
{
    struct egr_gate *g = eng_task_gate(c->t);
    const struct pipe_stage *s = &eng_task_pipeline(c->t)->stages[c->via];
    const struct egr_model_facts *f = egr_stage_facts(g, c->via);
    char why[300];
    struct bh_err aerr = {0};
    if (f->listed == 0)
        return bh_err_set(err, BH_EREPLY,
                          "model not found (server said: %s) — run \"ollama "
                          "pull %s\" on that machine",
                          text ? text : "404", s->model);
    snprintf(why, sizeof(why),
             "the server says '%s' is not a local model (a cloud stub) and "
             "refused to forward it",
             s->model);
    if (egr_audit_refusal(g, c->via, eng_task_item(c->t), c->label, why, &aerr))
        return bh_err_set(err, aerr.code, "%s", aerr.msg);
    return bh_err_set(err, BH_EPOLICY,
                      "%s: nothing left the machine — use a model that runs "
                      "on that machine%s",
                      why,
                      f->listed < 0 ? " (or pull it, if it is simply "
                                      "not there: 'bulkhead models' tells which)"
                                    : "");
}

/* Transport trouble in words: the question worth asking, or, for a model
 * that was not loaded at the start and gave no first byte in time, its load. */
static int transport_error(struct chat_call *c, const struct egr_result *r, struct bh_err *err)
{
    struct egr_gate *g = eng_task_gate(c->t);
    const struct pipeline *p = eng_task_pipeline(c->t);
    const struct pipe_stage *s = &p->stages[c->via];
    const char *what = r->error[0] ? r->error : "transfer failed";
    if (r->no_first_byte && egr_stage_facts(g, c->via)->loaded == 0 && egr_stage_local(g, c->via))
        return bh_err_set(err, r->code,
                          "%s — the model '%s' was not loaded when the run "
                          "started (not in /api/ps), and its load may need longer than the "
                          "endpoint's first_byte_timeout_s (%ld s): raise it, or load the model "
                          "first with 'bulkhead models --preload'",
                          what, s->model, p->endpoints[s->endpoint].first_byte_timeout_s);
    return bh_err_set(err, r->code, "%s%s", what,
                      r->transient ? " — is the server running and reachable? bulkhead never "
                                     "falls back to another endpoint"
                                   : "");
}

/* A reply whose prompt filled the whole context window may have lost its
 * start (or its end) on the server; the task is done, the result says so. */
static void truncation_note(struct chat_call *c, const struct prov_reply *reply, char *buf,
                            size_t size)
{
    const struct pipeline *p = eng_task_pipeline(c->t);
    const struct pipe_stage *s = &p->stages[c->via];
    long ctx = egr_stage_num_ctx(eng_task_gate(c->t), c->via);
    buf[0] = '\0';
    if (ctx <= 0 || reply->prompt_tokens < ctx ||
        strcmp(p->endpoints[s->endpoint].provider, "ollama") != 0)
        return;
    bh_str_put(buf, size,
               "the prompt used %lld tokens, the whole context window (num_ctx "
               "%ld): the server may have cut it; raise options.num_ctx",
               (long long)reply->prompt_tokens, ctx);
    eng_task_warn(c->t, "%s", buf);
}

/* The reply's failure, classified: transient ones are retried by the engine
 * on the same endpoint; every failure names the endpoint and model. */
static int reply_error(struct chat_call *c, const struct egr_result *r, struct prov_reply *reply,
                       int *transient, struct bh_err *err)
{
    int rc;
    *transient = 0;
    if (c->feed_failed) {
        *err = c->err;
        rc = err->code;
    } else if (r->code) {
        *transient = r->transient;
        rc = transport_error(c, r, err);
    } else {
        rc = c->ops->stream_finish(c->stream, r->status, reply, err);
        *transient = rc && reply->transient;
        if (rc && r->status == 404 && c->suffixed)
            rc = local_refused(c, reply->error, err);
        if (rc == 0)
            rc = stage_check_not_forwarded(c->t, c->via, reply, c->label, err);
    }
    if (rc)
        stage_prefix_where(c->t, c->via, err);
    return rc;
}

/* The server echoes the name as sent: the model asked for is NAME. */
static void reply_model_unsuffix(const struct chat_call *c, struct prov_reply *reply)
{
    size_t n = reply->model ? strlen(reply->model) : 0;
    if (c->suffixed && n > 6 && strcasecmp(reply->model + n - 6, ":local") == 0)
        reply->model[n - 6] = '\0';
}

static int call_send(struct chat_call *c, const struct stage_turn *turn, struct bh_err *err);

/* A reply that failed the stage's output check goes back to the model once,
 * with the error, on the same endpoint and model and through the gate again.
 * 1 when c went out again (it lives on); 0 when the task ended. */
static int ask_again(struct chat_call *c, const char *bad, const struct bh_err *why,
                     const struct eng_metrics *m)
{
    char *again = stage_output_again(why);
    struct bh_err err = {0};
    struct prov_msg msgs[4];
    size_t n = 0;
    if (c->system)
        msgs[n++] = (struct prov_msg){.role = "system", .content = c->system};
    msgs[n++] = (struct prov_msg){.role = "user", .content = c->user};
    msgs[n++] = (struct prov_msg){.role = "assistant", .content = bad};
    msgs[n++] = (struct prov_msg){.role = "user", .content = again};
    struct stage_turn turn = {.msgs = msgs, .n_msgs = n, .label = c->label};
    c->asked_again = 1;
    c->prompt_tokens = m->prompt_tokens;
    c->output_tokens = m->output_tokens;
    c->ops->stream_free(c->stream);
    c->stream = NULL;
    int rc = call_send(c, &turn, &err);
    free(again);
    if (rc == 0)
        return 1;
    stage_prefix_where(c->t, c->via, &err);
    eng_task_fail(c->t, &err);
    return 0;
}

/* The reply as the stage's output format wants it (checked findings, JSON
 * that follows the schema, or the text as it came). 1 when c went out again. */
static int reply_take(struct chat_call *c, const char *out, struct eng_metrics *m)
{
    char *stored = NULL;
    struct bh_err err = {0};
    m->prompt_tokens += c->prompt_tokens;
    m->output_tokens += c->output_tokens;
    if (stage_output_check(eng_task_pipeline(c->t), c->via, out, &stored, &err) == 0) {
        stage_task_done(c->t, c->via, &c->in, stored, c->label, m);
        free(stored);
        return 0;
    }
    if (!c->asked_again && !c->cut)
        return ask_again(c, out, &err, m);
    char why[sizeof(err.msg)];
    bh_str_put(why, sizeof(why), "%s", err.msg);
    /* A cut reply is not asked for again: the same limit would cut it again. */
    bh_err_set(&err, err.code,
               c->cut ? "the server cut the reply for length, so it is "
                        "incomplete: %s — raise options.num_predict or options.num_ctx"
                      : "%s; asked again once",
               why);
    stage_prefix_where(c->t, c->via, &err);
    eng_task_fail(c->t, &err);
    return 0;
}

/* Keeps a live reply that passed every check, for the next identical
 * request. Only a whole reply gets here (stream_finish succeeded: the final
 * chunk came, no error); a reply that says it was forwarded never does. A
 * cache that cannot be written costs the next run a call, not this one. */
static void cache_keep(struct chat_call *c, const struct prov_reply *reply)
{
    struct store *cache = eng_task_cache(c->t);
    if (!c->key[0] || !cache || (reply->remote_host && reply->remote_host[0]))
        return;
    struct store_cache_reply v = {.content = reply->content,
                                  .model = reply->model,
                                  .done_reason = reply->done_reason,
                                  .prompt_tokens = reply->prompt_tokens,
                                  .output_tokens = reply->output_tokens,
                                  .load_ns = reply->load_ns,
                                  .total_ns = reply->total_ns};
    struct bh_err err = {0};
    if (store_cache_put(cache, c->key, pol_label_name(eng_task_pipeline(c->t), c->label), &v, &err))
        eng_task_warn(c->t, "the reply was not kept in the response cache: %s", err.msg);
}

/* The server ended the reply because it ran out of room (max tokens or the
 * context window): Ollama and OpenAI say "length", Anthropic "max_tokens".
 * Into why (when set) the reason in the dialect's own words. */
static int reply_cut(const struct chat_call *c, const struct prov_reply *r, char *why, size_t size)
{
    const char *d = r->done_reason;
    if (!d || (strcmp(d, "length") != 0 && strcmp(d, "max_tokens") != 0))
        return 0;
    const struct pipeline *p = eng_task_pipeline(c->t);
    const char *prov = p->endpoints[p->stages[c->via].endpoint].provider;
    int ollama = strcmp(prov, "ollama") == 0;
    bh_str_put(why, size, "the server cut the reply (%s \"%s\" after %lld output tokens)",
               ollama                           ? "done_reason"
               : strcmp(prov, "anthropic") == 0 ? "stop_reason"
                                                : "finish_reason",
               d, (long long)r->output_tokens);
    return 1;
}

/* A reply cut for length fails its task unless the stage keeps cut replies
 * ("on_truncated": "keep": then it is done, and note says so). A review that
 * stops mid-sentence stored as done is the quiet failure this prevents. */
static int cut_fails(struct chat_call *c, const struct prov_reply *reply, char *note, size_t size)
{
    const struct pipeline *p = eng_task_pipeline(c->t);
    char why[200];
    if (!reply_cut(c, reply, why, sizeof(why)))
        return 0;
    if (p->stages[c->via].keep_truncated) {
        /* note is read and written: snprintf from a buffer into itself is undefined
         * (it came out doubled with garbage after it). */
        char before[400];
        c->cut = 1;
        bh_str_put(before, sizeof(before), "%s", note);
        bh_str_put(note, size, "%s; kept as the stage says (on_truncated: keep)%s%s", why,
                   before[0] ? "; " : "", before);
        return 0;
    }
    struct bh_err err = {0};
    bh_err_set(&err, BH_EREPLY,
               "%s — raise the stage's output limit (options.num_predict, "
               "sent as max_tokens to OpenAI and Anthropic) or its context window "
               "(options.num_ctx), or set \"on_truncated\": \"keep\" to keep cut replies",
               why);
    stage_prefix_where(c->t, c->via, &err);
    eng_task_fail(c->t, &err);
    if (c->on_reply)
        c->on_reply(c->ud, NULL, NULL); /* the task has moved on: let go of it */
    return 1;
}

/* A reply named for another model than the stage asked for, or named for
 * none, fails its task when the endpoint says "expect_model": "exact"
 * (otherwise the run's summary and reports say which model answered). */
static int model_fails(struct chat_call *c, const struct prov_reply *reply)
{
    const struct pipeline *p = eng_task_pipeline(c->t);
    const struct pipe_stage *s = &p->stages[c->via];
    const struct pipe_endpoint *ep = &p->endpoints[s->endpoint];
    int unnamed = !reply->model || !reply->model[0];
    if (!ep->expect_model_exact || (!unnamed && prov_model_answered_eq(s->model, reply->model)))
        return 0;
    struct bh_err err = {0};
    if (unnamed) /* "exact" is a promise bulkhead cannot check without a name: fail closed */
        bh_err_set(&err, BH_EREPLY,
                   "asked for model '%s', and the reply names no model, while "
                   "endpoint '%s' says \"expect_model\": \"exact\" — bulkhead cannot tell "
                   "which model answered; set \"expect_model\": \"any\" for a server that "
                   "does not name it",
                   s->model, ep->name);
    else
        bh_err_set(&err, BH_EREPLY,
                   "asked for model '%s', answered by '%s', and endpoint '%s' "
                   "says \"expect_model\": \"exact\" — serve '%s' there (llama-server "
                   "answers with its one model, whatever is asked), name the model the server "
                   "has in stages.%s.model, or set \"expect_model\": \"any\"",
                   s->model, reply->model, ep->name, s->model, s->name);
    stage_prefix_where(c->t, c->via, &err);
    eng_task_fail(c->t, &err);
    if (c->on_reply)
        c->on_reply(c->ud, NULL, NULL); /* the task has moved on: let go of it */
    return 1;
}

/* A whole reply, live or from the cache: the task goes on with it. 1 when
 * c went out again (its reply failed the output check and it asks again). */
static int reply_ok(struct chat_call *c, struct prov_reply *reply, int cached)
{
    char note[400];
    reply_model_unsuffix(c, reply);
    truncation_note(c, reply, note, sizeof(note));
    if (model_fails(c, reply) || cut_fails(c, reply, note, sizeof(note)))
        return 0;
    if (!cached)
        cache_keep(c, reply);
    struct eng_metrics m = {.prompt_tokens = reply->prompt_tokens,
                            .output_tokens = reply->output_tokens,
                            .load_ns = reply->load_ns,
                            .total_ns = reply->total_ns,
                            .answered_by = reply->model,
                            .rerouted = c->via != eng_task_stage(c->t),
                            .via = c->via,
                            .cached = cached,
                            .note = note[0] ? note : NULL};
    if (c->on_reply) {
        c->on_reply(c->ud, reply, &m);
        return 0;
    }
    return reply_take(c, reply->content ? reply->content : "", &m);
}

static void on_done(void *ud, const struct egr_result *r)
{
    struct chat_call *c = ud;
    struct prov_reply reply = {0};
    struct bh_err err = {0};
    int transient = 0, resent = 0;
    if (reply_error(c, r, &reply, &transient, &err)) {
        if (transient) /* same endpoint, same model, through the gate again */
            eng_task_retry(c->t,
                           &(struct eng_retry){.retry_after_ms = r->retry_after_ms,
                                               .backpressure = r->status == 503,
                                               .unreachable = r->code == BH_ENET &&
                                                              r->status == 0 && r->received == 0 &&
                                                              !r->no_first_byte},
                           &err);
        else
            eng_task_fail(c->t, &err);
        if (c->on_reply)
            c->on_reply(c->ud, NULL, NULL); /* the task has moved on: let go of it */
    } else {
        resent = reply_ok(c, &reply, 0);
    }
    prov_reply_release(&reply);
    if (!resent)
        call_free(c);
}

static int build_body(struct chat_call *c, const struct stage_turn *turn, char **body, size_t *len,
                      struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(c->t);
    struct egr_gate *g = eng_task_gate(c->t);
    const struct pipe_stage *s = &p->stages[c->via];
    /* "NAME:local" where the server of the task's host honours it */
    const char *model = egr_stage_model_on(g, c->via, eng_task_host(c->t));
    struct stage_ask ask;
    stage_output_ask(p, c->via, &ask);
    c->suffixed = model != s->model;
    /* truncate off: Ollama would otherwise drop the start of a prompt that
     * does not fit its context, silently; a failure is better than that.
     * num_ctx: the stage's, else the one the probe chose from /api/show, so
     * that the window is the one stage_fits_context assumed. */
    struct prov_chat chat = {.model = model,
                             .msgs = turn->msgs,
                             .n_msgs = turn->n_msgs,
                             .stream = 1,
                             .truncate_off = 1,
                             .options_json = s->options_json,
                             .keep_alive = s->keep_alive,
                             .tools_json = turn->tools_json,
                             /* A schema would keep a model from calling tools: an
                              * agent's answer is checked when it comes instead. */
                             .format_json = turn->tools_json ? NULL : ask.format_json,
                             .num_ctx = egr_stage_num_ctx(g, c->via)};
    return c->ops->chat_body(&chat, body, len, err);
}

/* What the model is asked to read, for the context estimate. */
static size_t turn_bytes(const struct stage_turn *turn)
{
    size_t n = turn->tools_json ? strlen(turn->tools_json) : 0;
    for (size_t i = 0; i < turn->n_msgs; i++) {
        const struct prov_msg *m = &turn->msgs[i];
        n += m->content ? strlen(m->content) : 0;
        for (size_t k = 0; k < m->n_tool_calls; k++) /* NULL: a malformed call, sent as {} */
            n += m->tool_calls[k].arguments_json ? strlen(m->tool_calls[k].arguments_json) : 2;
    }
    return n;
}

/* The key of a request in the response cache: the endpoint's dialect and
 * URL (without trailing slashes), the model, the path and the body bytes. */
static void cache_key(const struct pipeline *p, size_t via, const struct prov_ops *ops,
                      const struct egr_send_req *req, char out[BH_SHA256_HEX])
{
    const struct pipe_endpoint *e = &p->endpoints[p->stages[via].endpoint];
    size_t n = strlen(e->url);
    while (n > 0 && e->url[n - 1] == '/')
        n--;
    char *url = bh_xstrndup(e->url, n);
    struct bh_sha256 *h = bh_sha256_new();
    bh_sha256_field(h, "bulkhead-cache-v1");
    bh_sha256_field(h, ops->name);
    bh_sha256_field(h, url);
    bh_sha256_field(h, p->stages[via].model);
    bh_sha256_field(h, req->path);
    bh_sha256_update(h, req->body, req->body_len);
    bh_sha256_final(h, out);
    free(url);
}

/* Answers c from the cache entry: audited first (the gate has allowed the
 * request). The strings are copied: the task may keep what it is handed. */
static int answer_cached(struct chat_call *c, const struct egr_send_req *req,
                         const struct store_cache_reply *hit, struct bh_err *err)
{
    int rc = egr_audit_cached(eng_task_gate(c->t), req, err);
    if (rc)
        return rc;
    struct prov_reply reply = {.content = bh_xstrdup(hit->content ? hit->content : ""),
                               .model = hit->model ? bh_xstrdup(hit->model) : NULL,
                               .done_reason =
                                   hit->done_reason ? bh_xstrdup(hit->done_reason) : NULL,
                               .done = 1,
                               .prompt_tokens = hit->prompt_tokens,
                               .output_tokens = hit->output_tokens,
                               .load_ns = hit->load_ns,
                               .total_ns = hit->total_ns};
    int resent = reply_ok(c, &reply, 1);
    prov_reply_release(&reply);
    if (!resent)
        call_free(c);
    return 0;
}

/* Sends req, or answers it from the response cache when the gate allows it
 * and the cache holds its reply. 0 when c is taken care of (sent: the
 * callbacks will run; answered: the task went on, and c is freed or asking
 * again). */
static int send_or_answer(struct chat_call *c, const struct egr_send_req *req, struct bh_err *err)
{
    struct store *cache = eng_task_cache(c->t);
    struct egr_gate *g = eng_task_gate(c->t);
    if (!cache || c->on_reply)
        return egr_send(g, req, err);
    int rc = egr_check(g, req, err); /* refused: audited, never looked up */
    if (rc)
        return rc;
    cache_key(eng_task_pipeline(c->t), c->via, c->ops, req, c->key);
    struct store_cache_reply hit;
    struct bh_err cerr = {0};
    int found = store_cache_get(cache, c->key, &hit, &cerr);
    if (found < 0 || found == STORE_CACHE_CORRUPT)
        eng_task_warn(c->t, "%s", cerr.msg);
    if (found != 1)
        return egr_send(g, req, err);
    rc = answer_cached(c, req, &hit, err);
    store_cache_reply_release(&hit);
    return rc;
}

/* Builds turn's request for c's stage and hands it to the gate (or, when
 * the cache holds its reply, answers it from there). */
static int call_send(struct chat_call *c, const struct stage_turn *turn, struct bh_err *err)
{
    char *body = NULL;
    size_t len = 0;
    size_t bytes = turn_bytes(turn);
    int rc = stage_fits_context(c->t, c->via, bytes, err);
    if (rc == 0 && bytes > STAGE_PROMPT_MAX) /* an agent's conversation grows with each step */
        rc = bh_err_set(err, BH_ETOOBIG,
                        "the conversation is %zu bytes, over the cap of %zu "
                        "MiB — give the stage less to read, or fewer steps",
                        bytes, STAGE_PROMPT_MAX >> 20);
    if (rc == 0)
        rc = build_body(c, turn, &body, &len, err);
    if (rc == 0) {
        c->stream = c->ops->stream_new(STAGE_REPLY_MAX);
        struct egr_send_req req = {.stage = c->via,
                                   .placed = 1,
                                   .host = eng_task_host(c->t),
                                   .item = eng_task_item(c->t),
                                   .path = c->ops->chat_path,
                                   .body = body,
                                   .body_len = len,
                                   .label = c->label,
                                   .max_reply = STAGE_WIRE_MAX,
                                   .headers = c->ops->headers,
                                   .key_header = c->ops->auth_style == PROV_AUTH_X_API_KEY,
                                   .on_data = on_data,
                                   .on_done = on_done,
                                   .ud = c};
        rc = send_or_answer(c, &req, err);
    }
    free(body);
    return rc;
}

/* Sends turn to stage via through the gate. A chat's rendering r (NULL for an
 * agent's turn) gives c its messages, kept to ask again, and declassify's
 * inputs; c takes them on success and on failure alike. */
static int request(struct eng_task *t, size_t via, const struct stage_turn *turn,
                   struct stage_rendered *r, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(t);
    const struct prov_ops *ops = prov_find(p->endpoints[p->stages[via].endpoint].provider);
    if (!ops)
        return bh_err_set(err, BH_EINTERNAL, "no provider '%s'",
                          p->endpoints[p->stages[via].endpoint].provider);
    struct chat_call *c = bh_xcalloc(1, sizeof(*c));
    *c = (struct chat_call){.t = t,
                            .via = via,
                            .ops = ops,
                            .label = turn->label,
                            .on_reply = turn->on_reply,
                            .ud = turn->ud};
    if (r) {
        c->in = r->in; /* the guards need them when the reply comes */
        memset(&r->in, 0, sizeof(r->in));
        c->system = r->system; /* the turn's messages point to them until it is sent */
        c->user = r->user;
        r->system = r->user = NULL;
    }
    int rc = call_send(c, turn, err);
    if (rc)
        call_free(c); /* nothing was sent: the callbacks will not run */
    return rc;
}

int stage_chat_request(struct eng_task *t, size_t via, const struct stage_turn *turn,
                       struct bh_err *err)
{
    return request(t, via, turn, NULL, err);
}

int stage_chat_send(struct eng_task *t, size_t via, struct stage_rendered *r, struct bh_err *err)
{
    stage_output_instruction_add(eng_task_pipeline(t), via, r);
    struct prov_msg msgs[2];
    size_t n = 0;
    if (r->system)
        msgs[n++] = (struct prov_msg){.role = "system", .content = r->system};
    msgs[n++] = (struct prov_msg){.role = "user", .content = r->user};
    struct stage_turn turn = {.msgs = msgs, .n_msgs = n, .label = r->label};
    return request(t, via, &turn, r, err);
}
