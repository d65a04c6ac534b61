/* cli/common.c — see header. */
#include "cli/common.h"

#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

int cli_overrides_add(struct cli_overrides *o, const char *cmd, const char *value)
{
    if (!strchr(value, '=') || value[0] == '=')
        return cli_usage_error(cmd, "--endpoint takes NAME=URL, got '%s'", value);
    if (o->n >= sizeof(o->items) / sizeof(o->items[0]))
        return cli_usage_error(cmd, "too many --endpoint options (at most %zu)",
                               sizeof(o->items) / sizeof(o->items[0]));
    o->items[o->n++] = value;
    return 0;
}

int cli_pipeline_load(struct pipeline **out, const char *path, const struct cli_overrides *o,
                      struct bh_err *err)
{
    struct pipe_load_opts opts = { .endpoint_overrides = o->items, .n_overrides = o->n };
    int rc = pipe_load(out, path, &opts, err);
    if (rc == BH_EIO)
        err->code = rc = BH_EINVAL; /* an unreadable pipeline is a usage error: exit 2 */
    return rc;
}

size_t cli_flow_check(const struct pipeline *p, const struct egr_endpoint *eps,
                      struct pol_stage_report *rep)
{
    int *local = bh_xcalloc(p->n_endpoints, sizeof(*local));
    for (size_t i = 0; i < p->n_endpoints; i++)
        local[i] = eps[i].local;
    size_t bad = pol_check(p, local, rep);
    free(local);
    return bad;
}

/* The label a placeholder carries, as the check computed it. */
static int read_label(const struct pipeline *p, const char *field,
                      const struct pol_stage_report *rep)
{
    int l = pipe_source_field_label(p, field);
    if (l >= 0)
        return l;
    const char *dot = strrchr(field, '.');
    for (size_t s = 0; dot && s < p->n_stages; s++)
        if (strlen(p->stages[s].name) == (size_t)(dot - field) &&
            strncmp(field, p->stages[s].name, (size_t)(dot - field)) == 0)
            return rep[s].input;
    return -1;
}

static void stage_print(FILE *f, const struct pipeline *p, size_t s,
                        const struct pol_stage_report *rep)
{
    const struct pipe_stage *st = &p->stages[s];
    const struct pol_stage_report *r = &rep[s];
    fprintf(f, "  %-12s %-6s endpoint %s, model %s, clearance %s\n", st->name,
            r->local ? "local" : "cloud", p->endpoints[st->endpoint].name, st->model,
            pol_label_name(p, r->clearance));
    fprintf(f, "  %-12s        reads:", "");
    int any = 0;
    for (size_t k = 0; k < st->tpl.n_parts; k++) {
        const struct pipe_tpl_part *part = &st->tpl.parts[k];
        if (!part->is_field)
            continue;
        fprintf(f, "%s %s (%s)", any ? "," : "", part->text,
                pol_label_name(p, pol_label_join(p, read_label(p, part->text, rep), 0)));
        any = 1;
    }
    fprintf(f, "%s -> input %s: %s\n", any ? "" : " nothing", pol_label_name(p, r->input),
            r->ok ? "ok" : "REFUSED");
}

void cli_flow_print(FILE *f, const struct pipeline *p, const struct egr_endpoint *eps,
                    const struct pol_stage_report *rep)
{
    fprintf(f, "pipeline '%s' (%s)\nlabels:", p->name, p->file);
    for (size_t i = 0; i < p->n_labels; i++)
        fprintf(f, "%s %s", i ? " <" : "", p->labels[i]);
    fprintf(f, "\nendpoints:\n");
    for (size_t i = 0; i < p->n_endpoints; i++)
        fprintf(f, "  %-12s %-6s %s (%s)\n", p->endpoints[i].name,
                eps[i].local ? "local" : "cloud", p->endpoints[i].url, eps[i].reason);
    fprintf(f, "stages (in run order):\n");
    for (size_t k = 0; k < p->n_stages; k++)
        stage_print(f, p, p->order[k], rep);
}
