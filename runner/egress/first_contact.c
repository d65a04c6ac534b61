/* egress/first_contact.c — a run's first request to a local model is a probe,
 * sent when a stage first needs the model, not before the run.
 *
 * An Ollama server older than 0.18 may forward a model to the cloud under a
 * local name and hide it from its lists; only a reply's remote_host shows
 * it. So the first stage request to such a (endpoint, model) is held here
 * while a probe goes first (EGR_MANAGE_PROBE: a fixed public sentence, built
 * by the gate): its reply either marks the model a cloud stub, and the held
 * requests are then decided again and refused, or lets them go through the
 * gate as usual. Nothing labelled leaves before the reply is read.
 *
 * Why here and not before the run: a run answered from the response cache,
 * a stage that only stands by for a reroute, or a model whose tasks all end
 * early would otherwise load a model for nothing. The probe asks for one
 * token with the keep_alive and num_ctx of the stage's requests, so the
 * load it causes is the one the first request needed anyway.
 *
 * The held request is not decided or audited until the probe has answered:
 * its record then says what the gate knew when it let the bytes go (or
 * refused them). A probe that reaches no server ends the held requests with
 * its error (transient, so that the engine retries, and a retry probes
 * again); one that fails in a way a retry would not change (a redirect, a
 * refused peer) ends them and every later request to that model on that
 * endpoint with its error, without asking again in this run; a reply that is not the chat object it
 * should be is told and the requests go, as they did when the probe ran before the run (each reply
 * is still checked for remote_host in stages/stage.c). */
#include "egress/registry.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define FC_REPLY_MAX ((size_t)1 << 20) /* one token and the metrics: far below */

enum fc_state {
    FC_NEEDED, /* not asked yet, or the last probe failed transiently */
    FC_ASKING, /* the probe is in flight: requests wait */
    FC_DONE,   /* told: requests go through the gate */
    FC_FAILED, /* failed in a way a retry would not change (a redirect, a refused
                  peer): every later request ends with that error, unsent */
};

/* A stage request held until its model's probe answers: a deep copy. */
struct fc_held {
    struct egr_send_req r;
    char *item, *path, *body, **headers;
    struct fc_held *next;
};

struct fc_slot {
    struct egr_first_contact *fc;
    size_t endpoint;
    char *model, *keep_alive;
    long num_ctx;
    int quiet_reply_errors; /* a model the server did not list: its error reply is no news */
    enum fc_state state;
    struct egr_result failed; /* FC_FAILED: the error every later request ends with */
    struct fc_held *head, *tail;
    char *reply; /* the probe's reply so far */
    size_t len;
    int over;
};

struct egr_first_contact {
    struct egr_gate *g;
    struct fc_slot **slots;
    size_t n_slots;
    size_t n_held;
    struct egr_prober pr;
};

static struct egr_first_contact *fc_of(struct egr_gate *g, int make)
{
    struct egr_registry *r = egr_gate_registry(g);
    if (!r->fc && make) {
        r->fc = bh_xcalloc(1, sizeof(*r->fc));
        r->fc->g = g;
    }
    return r->fc;
}

void egr_set_prober(struct egr_gate *g, const struct egr_prober *pr)
{
    fc_of(g, 1)->pr = *pr;
}

void egr_probe_defer(struct egr_gate *g, const struct egr_probe_need *n)
{
    struct egr_first_contact *fc = fc_of(g, 1);
    for (size_t i = 0; i < fc->n_slots; i++)
        if (fc->slots[i]->endpoint == n->endpoint &&
            egr_model_name_eq(fc->slots[i]->model, n->model))
            return;
    struct fc_slot *s = bh_xcalloc(1, sizeof(*s));
    s->fc = fc;
    s->endpoint = n->endpoint;
    s->model = bh_xstrdup(n->model);
    s->keep_alive = n->keep_alive ? bh_xstrdup(n->keep_alive) : NULL;
    s->num_ctx = n->num_ctx;
    s->quiet_reply_errors = n->quiet_reply_errors;
    fc->slots = bh_xrealloc(fc->slots, (fc->n_slots + 1) * sizeof(*fc->slots));
    fc->slots[fc->n_slots++] = s;
}

static struct fc_slot *slot_find(struct egr_first_contact *fc, size_t endpoint, const char *model)
{
    for (size_t i = 0; fc && i < fc->n_slots; i++)
        if (fc->slots[i]->endpoint == endpoint && egr_model_name_eq(fc->slots[i]->model, model))
            return fc->slots[i];
    return NULL;
}

/* --- held requests ------------------------------------------------------------ */

static void held_free(struct fc_held *h)
{
    free(h->item);
    free(h->path);
    free(h->body);
    for (size_t i = 0; h->headers && h->headers[i]; i++)
        free(h->headers[i]);
    free(h->headers);
    free(h);
}

static void hold(struct fc_slot *s, const struct egr_send_req *r)
{
    struct fc_held *h = bh_xcalloc(1, sizeof(*h));
    h->r = *r;
    h->item = bh_xstrdup(r->item ? r->item : "");
    h->path = r->path ? bh_xstrdup(r->path) : NULL;
    h->body = bh_xmalloc(r->body_len + 1);
    if (r->body_len)
        memcpy(h->body, r->body, r->body_len);
    h->body[r->body_len] = '\0';
    size_t n = 0;
    while (r->headers && r->headers[n])
        n++;
    h->headers = bh_xcalloc(n + 1, sizeof(*h->headers));
    for (size_t i = 0; i < n; i++)
        h->headers[i] = bh_xstrdup(r->headers[i]);
    h->r.item = h->item;
    h->r.path = h->path;
    h->r.body = h->body;
    h->r.headers = (const char *const *)h->headers;
    if (s->tail)
        s->tail->next = h;
    else
        s->head = h;
    s->tail = h;
    s->fc->n_held++;
}

/* Takes the slot's held requests off it, oldest first. */
static struct fc_held *take_held(struct fc_slot *s)
{
    struct fc_held *h = s->head;
    for (struct fc_held *x = h; x; x = x->next)
        s->fc->n_held--;
    s->head = s->tail = NULL;
    return h;
}

static void end_one(struct fc_held *h, const struct egr_result *res)
{
    egr_done_fn done = h->r.on_done;
    void *ud = h->r.ud;
    held_free(h);
    if (done)
        done(ud, res);
}

/* The probe did not tell: every held request ends with res (its own words). */
static void fail_held(struct fc_slot *s, const struct egr_result *res)
{
    struct fc_held *h = take_held(s);
    while (h) {
        struct fc_held *next = h->next;
        end_one(h, res);
        h = next;
    }
}

/* The probe told: every held request goes through the gate now, decided
 * with what the reply showed. */
static void release_held(struct fc_slot *s)
{
    struct fc_held *h = take_held(s);
    while (h) {
        struct fc_held *next = h->next;
        struct bh_err err = {0};
        h->next = NULL;
        if (egr_send(s->fc->g, &h->r, &err) == 0) {
            held_free(h); /* the gate copied what it sends; the callbacks are its now */
        } else {
            struct egr_result res = {.code = err.code, .retry_after_ms = -1};
            bh_str_put(res.error, sizeof(res.error), "%s", err.msg);
            end_one(h, &res);
        }
        h = next;
    }
}

/* --- the probe ---------------------------------------------------------------- */

static int probe_data(void *ud, const char *data, size_t len)
{
    struct fc_slot *s = ud;
    if (len > FC_REPLY_MAX - s->len) {
        s->over = 1;
        return 1;
    }
    s->reply = bh_xrealloc(s->reply, s->len + len + 1);
    memcpy(s->reply + s->len, data, len);
    s->len += len;
    s->reply[s->len] = '\0';
    return 0;
}

static void probe_read(struct fc_slot *s, const struct egr_result *r)
{
    struct egr_first_contact *fc = s->fc;
    struct bh_err err = {0};
    char *remote = NULL;
    int rc = fc->pr.read ? fc->pr.read(fc->pr.ud, r->status, s->reply ? s->reply : "", s->len,
                                       &remote, &err)
                         : 0;
    if (rc == 0 && remote)
        egr_model_mark_remote(fc->g, s->endpoint, s->model, remote);
    if (fc->pr.told && (remote || (rc && !(rc == BH_EREPLY && s->quiet_reply_errors))))
        fc->pr.told(fc->pr.ud, s->endpoint, s->model, remote, rc ? &err : NULL);
    free(remote);
}

static void probe_done(void *ud, const struct egr_result *r)
{
    struct fc_slot *s = ud;
    if (r->code) {
        struct egr_result res = *r;
        bh_str_put(res.error, sizeof(res.error),
                   "the probe that goes before the first request to model '%s' failed: %s",
                   s->model, r->error[0] ? r->error : "no reply");
        s->state = r->transient ? FC_NEEDED : FC_FAILED; /* a retry probes again */
        s->failed = res;
        fail_held(s, &res);
    } else {
        probe_read(s, r);
        s->state = FC_DONE;
        release_held(s);
    }
    free(s->reply);
    s->reply = NULL;
    s->len = 0;
    s->over = 0;
}

static int probe_send(struct fc_slot *s, struct bh_err *err)
{
    struct egr_manage_req m = {.endpoint = s->endpoint,
                               .kind = EGR_MANAGE_PROBE,
                               .model = s->model,
                               .keep_alive = s->keep_alive,
                               .num_ctx = s->num_ctx,
                               .max_reply = FC_REPLY_MAX,
                               .on_data = probe_data,
                               .on_done = probe_done,
                               .ud = s};
    int rc = egr_send_manage(s->fc->g, &m, err);
    if (rc == 0)
        s->state = FC_ASKING;
    return rc;
}

int egr_first_contact_hold(struct egr_gate *g, const struct egr_send_req *r, size_t endpoint,
                           struct bh_err *err)
{
    const struct pipe_stage *st = &egr_gate_registry(g)->p->stages[r->stage];
    struct fc_slot *s = slot_find(fc_of(g, 0), endpoint, st->model);
    if (!s || s->state == FC_DONE || !egr_stage_local(g, r->stage) || egr_audit_broken(g, NULL))
        return 0;              /* nothing to ask, or the gate decides (and refuses) at once */
    if (s->state == FC_FAILED) /* the probe would fail again: nothing to ask */
        return bh_err_set(err, s->failed.code, "%s", s->failed.error);
    if (s->state == FC_NEEDED) {
        int rc = probe_send(s, err);
        if (rc < 0)
            return rc;
    }
    hold(s, r);
    return 1;
}

size_t egr_first_contact_held(const struct egr_gate *g)
{
    const struct egr_first_contact *fc = egr_gate_registry_const(g)->fc;
    return fc ? fc->n_held : 0;
}

void egr_first_contact_fail(struct egr_gate *g, const char *why)
{
    struct egr_first_contact *fc = fc_of(g, 0);
    struct egr_result res = {.code = BH_ENET, .retry_after_ms = -1};
    bh_str_put(res.error, sizeof(res.error), "%s", why);
    for (size_t i = 0; fc && i < fc->n_slots; i++)
        fail_held(fc->slots[i], &res);
}

void egr_first_contact_free(struct egr_first_contact *fc)
{
    if (!fc)
        return;
    for (size_t i = 0; i < fc->n_slots; i++) {
        struct fc_slot *s = fc->slots[i];
        struct fc_held *h = take_held(s);
        while (h) { /* the gate is going away: no on_done, as for requests in flight */
            struct fc_held *next = h->next;
            held_free(h);
            h = next;
        }
        free(s->model);
        free(s->keep_alive);
        free(s->reply);
        free(s);
    }
    free(fc->slots);
    free(fc);
}
