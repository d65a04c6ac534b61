/* policy/policy.c — labels, stage locality and clearance, the static flow
 * check. Pure computation over the loaded pipeline, shared by `check` (which
 * proves the pipeline before a run) and by the egress gate (which applies the
 * same rules to every request), so that the two can never disagree.
 *
 * Labels are indices into pipeline.labels, lowest first; -1 is "unknown",
 * which joins to the top label (unknown means top). */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pipeline/pipeline.h"
#include "util/bh_xmalloc.h"

static int top(const struct pipeline *p)
{
    return (int)p->n_labels - 1;
}

int pol_model_is_cloud(const char *model)
{
    if (!model)
        return 0;
    const char *tag = strrchr(model, ':');
    if (tag && strcasecmp(tag + 1, "cloud") == 0)
        return 1;
    size_t n = strlen(model);
    return n >= 6 && strcasecmp(model + n - 6, "-cloud") == 0;
}

int pol_label_join(const struct pipeline *p, int a, int b)
{
    if (a < 0 || b < 0 || a > top(p) || b > top(p))
        return top(p);
    return a > b ? a : b;
}

const char *pol_label_name(const struct pipeline *p, int label)
{
    if (label == POL_NOTHING)
        return "nothing";
    if (label < 0 || label > top(p))
        return "?";
    return p->labels[label];
}

int pol_stage_local(const struct pipeline *p, size_t stage, int endpoint_local)
{
    return pol_stage_local_facts(p, stage, endpoint_local, 0);
}

int pol_stage_local_facts(const struct pipeline *p, size_t stage, int endpoint_local,
                          int model_remote)
{
    return endpoint_local && !model_remote && !pol_model_is_cloud(p->stages[stage].model);
}

/* The most an endpoint may receive given what the gate verified of it. */
static int endpoint_clearance(const struct pipeline *p, const struct pipe_endpoint *e,
                              int endpoint_local)
{
    if (e->declared_local && !endpoint_local)
        return POL_NOTHING; /* claimed local, evidence says otherwise: nothing goes there */
    if (e->clearance >= 0)
        return e->clearance;
    return endpoint_local ? top(p) : 0;
}

int pol_endpoint_clearance(const struct pipeline *p, size_t endpoint, int endpoint_local)
{
    return endpoint_clearance(p, &p->endpoints[endpoint], endpoint_local);
}

int pol_stage_clearance(const struct pipeline *p, size_t stage, int endpoint_local)
{
    return pol_stage_clearance_facts(p, stage, endpoint_local, 0);
}

int pol_stage_clearance_facts(const struct pipeline *p, size_t stage, int endpoint_local,
                              int model_remote)
{
    const struct pipe_stage *s = &p->stages[stage];
    const struct pipe_endpoint *e = &p->endpoints[s->endpoint];
    int cap = endpoint_clearance(p, e, endpoint_local);
    /* The endpoint's trust is trust in the machine; a model that Ollama
     * forwards elsewhere gets only what the stage itself declares. */
    if (endpoint_local && !pol_stage_local_facts(p, stage, endpoint_local, model_remote))
        cap = s->clearance >= 0 ? s->clearance : 0;
    int want = s->clearance >= 0 ? s->clearance : cap;
    return want < cap ? want : cap;
}

/* The declared upper bound of one placeholder's value, and what it is. */
static int field_bound(const struct pipeline *p, const char *field, const int *outputs)
{
    int l = pipe_source_field_label(p, field);
    if (l >= 0)
        return l;
    const char *dot = strrchr(field, '.');
    if (dot && strcmp(dot, ".output") == 0) {
        char name[128];
        size_t n = (size_t)(dot - field);
        if (n < sizeof(name)) {
            memcpy(name, field, n);
            name[n] = '\0';
            long st = pipe_stage_find(p, name);
            if (st >= 0)
                return outputs[st];
        }
    }
    return -1; /* unknown means top */
}

static void stage_input(const struct pipeline *p, size_t i, const int *outputs,
                        struct pol_stage_report *r)
{
    const struct pipe_stage *s = &p->stages[i];
    /* Data flows only through what the template substitutes; `after` alone
     * orders stages without carrying anything. */
    int input = 0, worst = -2;
    const char *why = NULL;
    for (size_t k = 0; k < s->tpl.n_parts; k++) {
        if (!s->tpl.parts[k].is_field)
            continue;
        int l = field_bound(p, s->tpl.parts[k].text, outputs);
        input = pol_label_join(p, input, l);
        int lj = pol_label_join(p, l, l);
        if (lj > worst) {
            worst = lj;
            why = s->tpl.parts[k].text;
        }
    }
    r->input = input;
    r->ok = input <= r->clearance;
    if (!r->ok)
        snprintf(r->reason, sizeof(r->reason), "reads %s (%s), above its clearance %s",
                 why ? why : "upstream outputs", pol_label_name(p, input),
                 pol_label_name(p, r->clearance));
}

size_t pol_check(const struct pipeline *p, const int *endpoint_local,
                 struct pol_stage_report *out)
{
    return pol_check_facts(p, endpoint_local, NULL, out);
}

size_t pol_check_facts(const struct pipeline *p, const int *endpoint_local,
                       const int *stage_remote, struct pol_stage_report *out)
{
    int *outputs = bh_xcalloc(p->n_stages, sizeof(*outputs));
    size_t bad = 0;
    memset(out, 0, p->n_stages * sizeof(*out));
    for (size_t k = 0; k < p->n_stages; k++) {
        size_t i = p->order[k];
        int el = endpoint_local[p->stages[i].endpoint];
        struct pol_stage_report *r = &out[i];
        int remote = stage_remote ? stage_remote[i] : 0;
        r->local = pol_stage_local_facts(p, i, el, remote);
        r->clearance = pol_stage_clearance_facts(p, i, el, remote);
        stage_input(p, i, outputs, r);
        outputs[i] = r->input; /* an output carries its prompt's label */
        bad += !r->ok;
    }
    free(outputs);
    return bad;
}
