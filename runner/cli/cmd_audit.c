/* cli/cmd_audit.c — `bulkhead audit show|verify`: the hash-chained record of
 * every egress decision. show prints one JSON object per record; verify
 * recomputes the chain and fails (exit 3) when it was altered, when an
 * allowed record exceeded its clearance, or when the log holds a breach
 * record, each of which it names on stdout. */
#include <stddef.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/opts.h"
#include "egress/egress.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_json.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"

struct audit_args {
    const char *state;
};

static const char before[] =
    "  show     one JSON object per audit record (every egress attempt, allowed or\n"
    "           refused: time, run, item, stage, endpoint, locality, model, label,\n"
    "           clearance, decision, reason, SHA-256 and size of the payload)\n"
    "  verify   recompute the hash chain, re-check every allowed record against its\n"
    "           run's labels and look for breach records (evidence that data went where\n"
    "           it should not have, e.g. a local model's reply said it was forwarded);\n"
    "           exit 3 when a record was altered or removed, exceeds its clearance, or is\n"
    "           a breach (each breach is named: seq, time, stage, endpoint, model, reason)\n";

static const struct cli_opt opts[] = {
    CLI_OPT_STATE(struct audit_args, state, CLI_STATE_HELP),
};

static const struct cli_optset optset =
    CLI_OPTSET("audit", "show|verify [options]", before, NULL, opts);

static const char *str(const char *s)
{
    return s ? s : "";
}

/* A record's text as a JSON string. The chain hashes the stored bytes, so
 * they are never changed; only what is shown is decoded (U+FFFD for bytes
 * that are not UTF-8, which jansson would refuse). */
static json_t *text(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    char *t = bh_utf8_lossy_dup(s ? s : "", n, NULL, NULL);
    json_t *j = json_string(t);
    free(t);
    return j;
}

/* A line per record, in the stored order of fields; a value that cannot be
 * built stops the listing with an error instead of printing a blank record. */
static int show_one(void *ud, const struct store_audit *r)
{
    struct bh_err *err = ud;
    const struct {
        const char *key;
        json_t *v;
    } f[] = {
        {"seq", json_integer(r->seq)},
        {"time", text(r->time)},
        {"run", json_integer(r->run_id)},
        {"item", text(r->item)},
        {"stage", text(r->stage)},
        {"endpoint", text(r->endpoint)},
        {"url", text(r->url)},
        {"locality", text(r->locality)},
        {"model", text(r->model)},
        {"label", text(r->label)},
        {"clearance", text(r->clearance)},
        {"decision", text(r->decision)},
        {"reason", text(r->reason)},
        {"payload_sha256", text(r->payload_sha256)},
        {"bytes", json_integer(r->bytes)},
        {"prev_hash", text(r->prev_hash)},
        {"hash", text(r->hash)},
    };
    json_t *o = json_object();
    int bad = 0;
    for (size_t i = 0; i < BH_NELEM(f); i++)
        bh_json_set(o, f[i].key, f[i].v, &bad);
    char *line = bad ? NULL : bh_json_dump(o, JSON_COMPACT);
    json_decref(o);
    if (!line)
        return bh_err_set(err, BH_EINTERNAL,
                          "audit record %lld: cannot show it as JSON — "
                          "please report this bug",
                          (long long)r->seq);
    printf("%s\n", line);
    free(line);
    return 0;
}

static void breach_print(void *ud, const struct store_audit *r)
{
    (void)ud;
    printf(
        "audit record %lld (%s): breach at stage '%s', endpoint '%s' (%s, %s), model '%s'%s%s%s: "
        "%s\n",
        (long long)r->seq, r->time, str(r->stage), str(r->endpoint), str(r->locality), str(r->url),
        str(r->model), r->item && r->item[0] ? ", item '" : "", str(r->item),
        r->item && r->item[0] ? "'" : "", str(r->reason));
}

static int verify(struct store *s, struct bh_err *err)
{
    int64_t n = 0;
    size_t breaches = 0;
    int rc = egr_audit_verify_each(s, &n, &breaches, breach_print, NULL, err);
    if (rc == 0)
        printf("audit: %lld records, chain intact, every allowed request within its "
               "clearance\n",
               (long long)n);
    else if (breaches)
        printf("audit: %lld records, chain intact, %zu breach record%s\n", (long long)n, breaches,
               breaches == 1 ? "" : "s");
    return rc;
}

int cmd_audit(int argc, char **argv)
{
    struct audit_args a = {.state = CLI_DEFAULT_STATE};
    int first = 0;
    int code = cli_opts_parse(&optset, argc, argv, &a, &first);
    if (code)
        return code < 0 ? CLI_EXIT_OK : code;
    if (first + 1 != argc || (strcmp(argv[first], "show") && strcmp(argv[first], "verify")))
        return cli_usage_error("audit", "expected 'show' or 'verify'");
    struct bh_err err = {0};
    struct store *s = NULL;
    int rc = cli_state_open(&s, a.state, &err);
    if (rc == 0 && argv[first][0] == 's')
        rc = store_audit_each(s, show_one, &err, &err);
    else if (rc == 0)
        rc = verify(s, &err);
    store_free(s);
    if (rc)
        return cli_fail(&err); /* an altered or breaching record is BH_EPOLICY: exit 3 */
    return CLI_EXIT_OK;
}
