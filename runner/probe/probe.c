/* probe/probe.c — the first contact of a run with a local model is a probe.
 *
 * An Ollama server older than 0.18 forwards a cloud stub under any name and
 * may hide it from /api/tags and /api/show (a stub made after bulkhead
 * looked, or a server that does not say); then only a chat reply shows it,
 * by its remote_host. So before any item's data goes to a (endpoint, model),
 * one request whose whole text is EGR_PROBE_TEXT goes first: what leaves if
 * the model is a stub is that sentence and the model name, nothing else.
 * The gate builds the body itself from the name (EGR_MANAGE_PROBE), so no
 * caller can put anything else in it, and audits it as model management
 * with the bottom label.
 *
 * The probe asks for one token, with the keep_alive and num_ctx the stage's
 * requests will use: it loads the model exactly as the scheduler's preload
 * would, so it costs the run no extra load.
 *
 * `check --online` and `models` probe here and wait for the reply; a run
 * leaves the probe to the gate, which sends it before the first request
 * that needs the model (egress/first_contact.c) and reads its reply with
 * probe_reply_read. */
#include "probe/probe.h"

#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "providers/manage.h"
#include "util/bh_err.h"

#define PROBE_REPLY_MAX ((size_t)1 << 20) /* one token and the metrics: far below */

struct wait {
    struct prov_doc *doc;
    struct egr_result result;
    int done;
};

static int probe_data(void *ud, const char *data, size_t len)
{
    struct wait *w = ud;
    struct bh_err err = {0};
    return prov_doc_feed(w->doc, data, len, &err) ? 1 : 0;
}

static void probe_done(void *ud, const struct egr_result *r)
{
    struct wait *w = ud;
    w->result = *r;
    w->done = 1;
}

/* The reply as the stub check reads it: remote_host, else remote_model. */
static int reply_read(struct prov_doc *doc, long status, char **remote, struct bh_err *err)
{
    struct prov_show s = {0};
    int rc = prov_probe_finish(doc, status, &s, err);
    char **take = s.remote_host ? &s.remote_host : s.remote_model ? &s.remote_model : NULL;
    if (rc == 0 && take) {
        *remote = *take;
        *take = NULL;
    }
    prov_show_release(&s);
    return rc;
}

int probe_reply_read(void *ud, long status, const char *body, size_t len, char **remote,
                     struct bh_err *err)
{
    (void)ud;
    struct prov_doc *doc = prov_doc_new(PROBE_REPLY_MAX);
    *remote = NULL;
    int rc = prov_doc_feed(doc, body, len, err);
    if (rc == 0)
        rc = reply_read(doc, status, remote, err);
    prov_doc_free(doc);
    return rc;
}

int probe_model_remote(struct egr_gate *g, const struct probe_req *r, char **remote,
                       struct bh_err *err)
{
    struct wait w = {.doc = prov_doc_new(PROBE_REPLY_MAX)};
    struct egr_manage_req m = {.endpoint = r->endpoint,
                               .kind = EGR_MANAGE_PROBE,
                               .model = r->model,
                               .keep_alive = r->keep_alive,
                               .num_ctx = r->num_ctx,
                               .max_reply = PROBE_REPLY_MAX,
                               .on_data = probe_data,
                               .on_done = probe_done,
                               .ud = &w};
    *remote = NULL;
    int rc = egr_send_manage(g, &m, err);
    while (rc == 0 && !w.done)
        rc = egr_step(g, 1000, err);
    if (rc == 0 && w.result.code)
        rc = bh_err_set(err, BH_ENET, "the probe failed: %s — is the server running?",
                        w.result.error[0] ? w.result.error : "no reply");
    else if (rc == 0)
        rc = reply_read(w.doc, w.result.status, remote, err);
    prov_doc_free(w.doc);
    return rc;
}
