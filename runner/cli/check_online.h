/* cli/check_online.h — the online part of `bulkhead check --online`. */
#ifndef CLI_CHECK_ONLINE_H
#define CLI_CHECK_ONLINE_H

#include <stdio.h>

struct json_t;
struct pipeline;

/* Asks the server of every local endpoint of p with a local stage (through
 * the gate, audited in the state folder `state`): an Ollama server its own
 * routes, a server of another dialect GET /health and GET /v1/models
 * (probe_survey_dialect); and prints what it learnt to out,
 * refusals and errors to stderr, and a warning for each model whose stages
 * would use different num_ctx values. Returns an exit code: CLI_EXIT_POLICY
 * when a local stage's model is a cloud stub or enforce_local "require" is
 * not met, CLI_EXIT_USAGE when an endpoint declared "ollama" has
 * an OpenAI-compatible server (probe_survey_misdeclared), CLI_EXIT_FAILED when
 * an endpoint is unreachable or a model missing, CLI_EXIT_OK otherwise; a configuration error's
 * code when the state or the gate could not be opened. */
int cli_check_online(const struct pipeline *p, const char *state, FILE *out);

/* The same, and the findings as JSON into *online (a new object, owned by
 * the caller: {"state", "endpoints": [{"name", "url", "asked", "reached",
 * "server", "version", "enforcement", "serves", "models": [{"name", "state": "present" |
 * "missing" | "stub" | "unknown", "remote", "loaded", "context_length",
 * "num_ctx": [{"stage", "value", "from"}]}]}]}), for `check --format json`;
 * NULL when a value could not be put into JSON (a bug). */
int cli_check_online_json(const struct pipeline *p, const char *state, FILE *out,
                          struct json_t **online);

/* Warns on stderr once per stage whose num_ctx (num_ctx[stage], 0: not
 * known, skipped) differs from an earlier stage's on the same Ollama
 * endpoint and model: Ollama reloads a model whenever it changes. Returns
 * the number of warnings. */
size_t cli_num_ctx_warn(const struct pipeline *p, const long *num_ctx);

#endif
