/* tests/helpers/stage_fixture.h — one run of real stage kinds (stages/kinds.h)
 * for the unit tests of stages/: a pipeline parsed from text whose endpoints
 * point at a scripted loopback server in the same process (mini_httpd.h), a
 * real store and egress gate in a temporary folder, and eng_run with
 * stage_kind, as `bulkhead run` drives them (without the pre-run probe). What
 * the run did is read back from the store: the tasks and the audit log.
 * All the set-up lives in stage_fixture_start, so that a change to how a gate
 * is made is one edit. Setup failures fail the test (cmocka). */
#ifndef STAGE_FIXTURE_H
#define STAGE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

struct egr_gate;
struct mini_httpd;
struct pipeline;
struct src_item;
struct store;
struct store_task;

#define STAGE_FX_AUDIT_MAX 64

/* One audit record, as much of it as the tests compare. */
struct stage_fx_audit {
    char stage[32], decision[16], label[16], clearance[16];
    char reason[512];
};

struct stage_fx {
    char dir[64];            /* the temporary folder: pipeline, prompts, state */
    struct mini_httpd *http; /* the model server every endpoint points at */
    struct pipeline *p;
    struct store *store;
    struct egr_gate *gate;
    int64_t run_id;
    char repo[96]; /* opts.repo, or "" */
    struct src_item *items;
    size_t n_items;
    int no_cache; /* set before stage_fixture_run: as --no-cache */
    /* After stage_fixture_run: */
    struct eng_summary sum;
    struct store_task *tasks;
    size_t n_tasks;
    struct stage_fx_audit audit[STAGE_FX_AUDIT_MAX];
    size_t n_audit;
};

struct stage_fx_opts {
    /* The pipeline, with @URL@ where the server's URL goes. */
    const char *pipeline;
    /* Files next to the pipeline (prompts, schemas): name, text, ..., NULL. */
    const char *const *files;
    /* NULL: hand-made pull requests, refs/pull/N/head whose pr.title is
     * "Title N" and pr.diff "diff of N" (or diff); else a repository made
     * by stage_fixture_make_repo, whose pull requests are listed by
     * src_git_list (what agent tools read). */
    const char *repo;
    size_t n_items;    /* of the hand-made ones: 1 or 2 (0: 2) */
    const char *diff;  /* the hand-made ones' pr.diff, NULL: "diff of N" */
    const char *pulls; /* of repo: the refs to list (NULL: every PR) */
};

/* A repository of prs pull requests made by fixtures/make-repo.sh in a new
 * temporary folder: its path into out. Made once for a test program (about
 * half a second a pull request); removed with stage_fixture_remove_repo. */
void stage_fixture_make_repo(char *out, size_t size, int prs);
void stage_fixture_remove_repo(const char *repo);

void stage_fixture_start(struct stage_fx *f, const struct stage_fx_opts *o);
/* Runs every task (eng_run with stage_kind, the repository bound for the
 * tools), then reads the tasks and the audit log into f. Returns eng_run's
 * result. A second run in the same fixture resumes the same run; with
 * fresh, it starts a new one (another run key), as --fresh does. */
int stage_fixture_run(struct stage_fx *f, int fresh);
void stage_fixture_stop(struct stage_fx *f);

/* The task of item (e.g. "refs/pull/1/head") at stage; fails the test when
 * there is none. */
const struct store_task *stage_fx_task(const struct stage_fx *f, const char *item,
                                       const char *stage);
/* text with every occurrence of what replaced by with. Owned. */
char *stage_fx_subst(const char *text, const char *what, const char *with);
/* The body of the server's request i (0-based); fails the test when there
 * is none. Owned. */
char *stage_fx_body(const struct stage_fx *f, size_t i);
/* Fails the test, showing both, when part is not in text. */
void stage_fx_contains(const char *text, const char *part);
/* How many audit records have this decision ("allow", "refuse", "cached"...). */
size_t stage_fx_audited(const struct stage_fx *f, const char *decision);

/* Ollama's streamed reply (application/x-ndjson): a chunk with content, then
 * the final chunk naming model and done_reason with token counts. Owned. */
char *stage_fx_ollama_reply(const char *model, const char *content, const char *done_reason);
/* Queues a streamed Ollama reply on /api/chat. */
void stage_fx_reply(struct stage_fx *f, const char *model, const char *content,
                    const char *done_reason);
/* Queues an Ollama reply on /api/chat that calls one tool with arguments
 * (the text of a JSON object). */
void stage_fx_tool_reply(struct stage_fx *f, const char *model, const char *tool,
                         const char *arguments_json);

#endif
