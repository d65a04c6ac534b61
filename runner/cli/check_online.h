/* cli/check_online.h — the online part of `bulkhead check --online`. */
#ifndef CLI_CHECK_ONLINE_H
#define CLI_CHECK_ONLINE_H

#include <stdio.h>

struct pipeline;

/* Asks the server of every local Ollama endpoint of p (through the gate,
 * audited in the state folder `state`) and prints what it learnt to out,
 * refusals and errors to stderr, and a warning for each model whose stages
 * would use different num_ctx values. Returns an exit code: CLI_EXIT_POLICY
 * when a local stage's model is a cloud stub or enforce_local "require" is
 * not met, CLI_EXIT_FAILED when an endpoint is unreachable or a model
 * missing, CLI_EXIT_OK otherwise; a configuration error's code when the
 * state or the gate could not be opened. */
int cli_check_online(const struct pipeline *p, const char *state, FILE *out);

#endif
