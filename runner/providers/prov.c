/* providers/prov.c — the table of wire dialects. A provider is data (a
 * struct prov_ops), so adding one is a new file and a row here; nothing else
 * dispatches on provider names. */
#include "providers/prov.h"
#include "util/bh_util.h"

#include <stdlib.h>
#include <string.h>

static const struct prov_ops *const providers[] = {
    &prov_ollama,
    &prov_openai,
    &prov_anthropic,
};

/* Kept in the order of providers[]; test_ollama checks the two agree. */
const char *const prov_names[] = {"ollama", "openai", "anthropic"};
const size_t prov_n_names = BH_NELEM(prov_names);

const struct prov_ops *prov_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < BH_NELEM(providers); i++)
        if (strcmp(providers[i]->name, name) == 0)
            return providers[i];
    return NULL;
}

void prov_reply_release(struct prov_reply *r)
{
    if (!r)
        return;
    free(r->content);
    free(r->thinking);
    free(r->model);
    for (size_t i = 0; i < r->n_tool_calls; i++) {
        free(r->tool_calls[i].id);
        free(r->tool_calls[i].name);
        free(r->tool_calls[i].arguments_json);
    }
    free(r->tool_calls);
    free(r->done_reason);
    free(r->error);
    free(r->remote_host);
    memset(r, 0, sizeof(*r));
}
