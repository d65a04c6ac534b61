/* egress/audit_verify.c — `bulkhead audit verify`: the chain is intact (no
 * record altered, none removed from the middle), every record that let
 * data out (or was answered from the response cache in its place) respected
 * the label lattice of its run, and no record is a breach. The second check
 * re-runs the gate's rule on the record alone, so an audit that was written
 * by a gate with a bug, or edited and re-chained by hand, still shows the
 * breach. The third reads what the run itself found after the fact: a
 * breach record is the gate's evidence that data went somewhere it should
 * not have (a local stage's reply that says it was forwarded), and a log
 * holding one must never verify as clean, however intact its chain.
 *
 * The audit records requests, not who answered them: the answering host or
 * model is known only from a reply, and the stage that reads the reply
 * writes the breach record. So the breach record is the one mechanism;
 * verify does not second-guess replies it never saw.
 *
 * A merged state (bulkhead merge) also holds each shard's records, linked
 * by a merge record; the store recomputes their chains, and the same rules
 * apply to them, against the labels of the merged run (the shards' run ids
 * are their own states', and every shard of a run has the pipeline's
 * labels). */
#include "egress/egress.h"

#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/bh_err.h"

struct walk {
    struct store *s;
    size_t n_breaches;
    int64_t first_breach;
    egr_breach_fn on_breach;
    void *ud;
    int64_t run_id; /* whose labels are loaded */
    int64_t merged; /* walking a merged shard's records: their labels are this run's, or 0 */
    char **labels;
    size_t n_labels;
    struct bh_err *err;
};

static void labels_free(struct walk *w)
{
    for (size_t i = 0; i < w->n_labels; i++)
        free(w->labels[i]);
    free(w->labels);
    w->labels = NULL;
    w->n_labels = 0;
}

static long rank(const struct walk *w, const char *label)
{
    for (size_t i = 0; i < w->n_labels; i++)
        if (strcmp(w->labels[i], label) == 0)
            return (long)i;
    return -1;
}

int egr_audit_is_breach(const struct store_audit *r)
{
    if (r->decision && strcmp(r->decision, "breach") == 0)
        return 1;
    /* What versions before the "breach" decision wrote. */
    return r->decision && strcmp(r->decision, "refuse") == 0 && r->reason &&
           strncmp(r->reason, "breach:", 7) == 0;
}

static int check_one(void *ud, const struct store_audit *r);

/* The records a merge record links, held to the rules of the merged run. */
static int check_linked(struct walk *w, const struct store_audit *r)
{
    w->merged = r->run_id;
    int rc = store_audit_each_linked(w->s, r->seq, check_one, w, w->err);
    w->merged = 0;
    if (rc == BH_EPOLICY)
        bh_err_prefix(w->err,
                      "audit record %lld links the audit log of a merged shard (%s); in it, ",
                      (long long)r->seq, r->reason);
    return rc;
}

static int check_one(void *ud, const struct store_audit *r)
{
    struct walk *w = ud;
    if (strcmp(r->decision, "merge") == 0 && !w->merged)
        return check_linked(w, r);
    if (egr_audit_is_breach(r)) {
        if (w->n_breaches++ == 0)
            w->first_breach = r->seq;
        if (w->on_breach)
            w->on_breach(w->ud, r);
        return 0;
    }
    /* A cached answer went nowhere, but it stands for the request: the gate
     * must have been able to allow it, so it is held to the same rule. */
    int cached = strcmp(r->decision, "cached") == 0;
    if (strcmp(r->decision, "allow") != 0 && !cached)
        return 0;
    int64_t run = w->merged ? w->merged : r->run_id;
    if (run != w->run_id || !w->labels) {
        labels_free(w);
        w->run_id = run;
        int rc = store_run_labels(w->s, run, &w->labels, &w->n_labels, w->err);
        if (rc)
            return rc;
    }
    long l = rank(w, r->label), c = rank(w, r->clearance);
    if (l < 0 || c < 0)
        return bh_err_set(w->err, BH_EPOLICY,
                          "audit record %lld allowed a request with label '%s' and clearance "
                          "'%s', which are not both labels of run %lld",
                          (long long)r->seq, r->label, r->clearance, (long long)r->run_id);
    if (l > c && cached)
        return bh_err_set(w->err, BH_EPOLICY,
                          "audit record %lld answered a request labelled %s from the response "
                          "cache for stage '%s' (%s, endpoint '%s') whose clearance is %s",
                          (long long)r->seq, r->label, r->stage, r->locality, r->endpoint,
                          r->clearance);
    if (l > c)
        return bh_err_set(w->err, BH_EPOLICY,
                          "audit record %lld allowed data labelled %s to stage '%s' (%s, "
                          "endpoint '%s') whose clearance is %s",
                          (long long)r->seq, r->label, r->stage, r->locality, r->endpoint,
                          r->clearance);
    return 0;
}

int egr_audit_verify_each(struct store *s, int64_t *n_records, size_t *n_breaches,
                          egr_breach_fn on_breach, void *ud, struct bh_err *err)
{
    *n_breaches = 0;
    int rc = store_audit_verify_chain(s, n_records, err);
    if (rc)
        return rc == BH_EINVAL ? (err->code = BH_EPOLICY) : rc;
    struct walk w = {.s = s, .run_id = -1, .err = err, .on_breach = on_breach, .ud = ud};
    rc = store_audit_each(s, check_one, &w, err);
    labels_free(&w);
    if (rc == 0 && w.n_breaches)
        rc = bh_err_set(err, BH_EPOLICY,
                        "the audit log holds %zu breach record%s (the first is record %lld): "
                        "data went where it should not have — find out where it went from "
                        "each record's endpoint and reason ('bulkhead audit show'), and fix the "
                        "server or the pipeline before the next run",
                        w.n_breaches, w.n_breaches == 1 ? "" : "s", (long long)w.first_breach);
    if (rc == 0 || rc == BH_EPOLICY)
        *n_breaches = w.n_breaches;
    return rc;
}

int egr_audit_verify(struct store *s, int64_t *n_records, struct bh_err *err)
{
    size_t n_breaches = 0;
    return egr_audit_verify_each(s, n_records, &n_breaches, NULL, NULL, err);
}
