/* tests/helpers/stage_fixture.c — see stage_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "stage_fixture.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "egress/egress.h"
#include "mini_httpd.h"
#include "pipeline/pipeline.h"
#include "sources/src_git.h"
#include "stages/kinds.h"
#include "store/store.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[192];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

char *stage_fx_subst(const char *text, const char *what, const char *with)
{
    size_t n = 1, wl = strlen(what);
    for (const char *at = strstr(text, what); at; at = strstr(at + wl, what))
        n++;
    char *out = bh_xcalloc(strlen(text) + n * strlen(with) + 1, 1);
    char *w = out;
    for (const char *s = text;;) {
        const char *at = strstr(s, what);
        size_t len = at ? (size_t)(at - s) : strlen(s);
        memcpy(w, s, len);
        w += len;
        if (!at)
            break;
        memcpy(w, with, strlen(with));
        w += strlen(with);
        s = at + wl;
    }
    *w = '\0';
    return out;
}

static void hand_items(struct stage_fx *f, size_t n, const char *diff)
{
    static const char *const names[] = {"pr.title", "pr.diff"};
    f->n_items = n ? n : 2;
    f->items = bh_xcalloc(f->n_items, sizeof(*f->items));
    for (size_t i = 0; i < f->n_items; i++) {
        struct src_item *it = &f->items[i];
        it->key = bh_xasprintf("refs/pull/%zu/head", i + 1);
        it->version = bh_xasprintf("b%zu..h%zu", i + 1, i + 1);
        it->n_fields = 2;
        it->fields = bh_xcalloc(2, sizeof(*it->fields));
        it->fields[0].name = bh_xstrdup(names[0]);
        it->fields[0].value = bh_xasprintf("Title %zu", i + 1);
        it->fields[1].name = bh_xstrdup(names[1]);
        it->fields[1].value = diff ? bh_xstrdup(diff) : bh_xasprintf("diff of %zu", i + 1);
        for (size_t k = 0; k < 2; k++)
            it->fields[k].len = strlen(it->fields[k].value);
    }
}

/* fixtures/make-repo.sh, found from BH_SOURCE_DIR (ctest sets it) or from
 * this file's path. */
void stage_fixture_make_repo(char *out, size_t size, int prs)
{
    const char *src = getenv("BH_SOURCE_DIR");
    const char *self = __FILE__, *cut = strstr(self, "/tests/helpers/");
    char dir[64], cmd[512];
    snprintf(dir, sizeof(dir), "/tmp/bh-stage-repo.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(out, size, "%s/repo", dir);
    if (src)
        snprintf(cmd, sizeof(cmd), "bash '%s/fixtures/make-repo.sh' '%s' --prs %d >/dev/null", src,
                 out, prs);
    else
        snprintf(cmd, sizeof(cmd), "bash '%.*s/fixtures/make-repo.sh' '%s' --prs %d >/dev/null",
                 cut ? (int)(cut - self) : 1, cut ? self : ".", out, prs);
    int rc = system(cmd);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        fail_msg("fixtures/make-repo.sh failed; set BH_SOURCE_DIR");
}

void stage_fixture_remove_repo(const char *repo)
{
    char cmd[160];
    const char *slash = strrchr(repo, '/');
    assert_non_null(slash);
    snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(slash - repo), repo);
    assert_int_equal(system(cmd), 0);
}

static void git_items(struct stage_fx *f, const char *repo, const char *pulls)
{
    struct bh_err err = {0};
    snprintf(f->repo, sizeof(f->repo), "%s", repo);
    struct src_git_opts go = {.repo = f->repo, .pulls = pulls};
    if (src_git_list(&f->items, &f->n_items, &go, &err))
        fail_msg("src_git_list: %s", err.msg);
}

void stage_fixture_start(struct stage_fx *f, const struct stage_fx_opts *o)
{
    struct bh_err err = {0};
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-stage.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->http = mini_httpd_start();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", mini_httpd_port(f->http));
    char *json = stage_fx_subst(o->pipeline, "@URL@", url);
    write_file(f->dir, "p.json", json);
    free(json);
    for (size_t i = 0; o->files && o->files[i]; i += 2)
        write_file(f->dir, o->files[i], o->files[i + 1]);
    char path[128], state[128];
    snprintf(path, sizeof(path), "%s/p.json", f->dir);
    snprintf(state, sizeof(state), "%s/state", f->dir);
    if (pipe_load(&f->p, path, NULL, &err))
        fail_msg("%s", err.msg);
    if (o->repo)
        git_items(f, o->repo, o->pulls);
    else
        hand_items(f, o->n_items, o->diff);
    int resumed = 0;
    if (store_open(&f->store, state, &err) ||
        store_run_open(f->store, "run-1", f->p->name, &f->run_id, &resumed, &err) ||
        store_run_set_labels(f->store, f->run_id, f->p->labels, f->p->n_labels, &err) ||
        egr_new(&f->gate, f->p, f->store, f->run_id, &err))
        fail_msg("%s", err.msg);
}

static int audit_keep(void *ud, const struct store_audit *r)
{
    struct stage_fx *f = ud;
    if (f->n_audit == STAGE_FX_AUDIT_MAX)
        return 0;
    struct stage_fx_audit *a = &f->audit[f->n_audit++];
    snprintf(a->stage, sizeof(a->stage), "%s", r->stage ? r->stage : "");
    snprintf(a->decision, sizeof(a->decision), "%s", r->decision ? r->decision : "");
    snprintf(a->label, sizeof(a->label), "%s", r->label ? r->label : "");
    snprintf(a->clearance, sizeof(a->clearance), "%s", r->clearance ? r->clearance : "");
    snprintf(a->reason, sizeof(a->reason), "%s", r->reason ? r->reason : "");
    return 0;
}

int stage_fixture_run(struct stage_fx *f, int fresh)
{
    static int runs;
    struct bh_err err = {0};
    if (fresh) {
        char key[32];
        int resumed = 0;
        snprintf(key, sizeof(key), "run-fresh-%d", ++runs);
        if (store_run_open(f->store, key, f->p->name, &f->run_id, &resumed, &err))
            fail_msg("%s", err.msg);
    }
    struct eng_opts eo = {.p = f->p,
                          .store = f->store,
                          .run_id = f->run_id,
                          .gate = f->gate,
                          .items = f->items,
                          .n_items = f->n_items,
                          .kind = &stage_kind,
                          .no_cache = f->no_cache};
    struct stage_repo repo = {f->repo[0] ? f->repo : NULL};
    stage_kinds_bind(&repo);
    int rc = eng_run(&eo, &f->sum, &err);
    stage_kinds_bind(NULL);
    if (rc)
        print_message("eng_run: %s\n", err.msg);
    store_tasks_free(f->tasks, f->n_tasks);
    f->tasks = NULL;
    f->n_tasks = 0;
    if (store_tasks_list(f->store, f->run_id, &f->tasks, &f->n_tasks, &err))
        fail_msg("%s", err.msg);
    f->n_audit = 0;
    if (store_audit_each(f->store, audit_keep, f, &err))
        fail_msg("%s", err.msg);
    return rc;
}

void stage_fixture_stop(struct stage_fx *f)
{
    egr_free(f->gate);
    store_tasks_free(f->tasks, f->n_tasks);
    store_free(f->store);
    src_items_free(f->items, f->n_items);
    pipe_free(f->p);
    mini_httpd_stop(f->http);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    memset(f, 0, sizeof(*f));
}

const struct store_task *stage_fx_task(const struct stage_fx *f, const char *item,
                                       const char *stage)
{
    for (size_t i = 0; i < f->n_tasks; i++)
        if (strcmp(f->tasks[i].item_key, item) == 0 && strcmp(f->tasks[i].stage, stage) == 0)
            return &f->tasks[i];
    fail_msg("no task %s %s", item, stage);
    return NULL;
}

char *stage_fx_body(const struct stage_fx *f, size_t i)
{
    struct mini_req r;
    if (mini_httpd_request(f->http, i, &r) != 0)
        fail_msg("the server saw no request %zu", i);
    return r.body;
}

void stage_fx_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("\"%.2000s\" does not contain \"%s\"", text, part);
}

size_t stage_fx_audited(const struct stage_fx *f, const char *decision)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_audit; i++)
        n += strcmp(f->audit[i].decision, decision) == 0;
    return n;
}

/* Two NDJSON lines: the message chunk, then the final one. */
static char *ndjson(const char *model, json_t *message, const char *done_reason)
{
    json_t *first = json_pack("{s:s, s:o, s:b}", "model", model, "message", message, "done", 0);
    json_t *last = json_pack("{s:s, s:b, s:s, s:i, s:i}", "model", model, "done", 1, "done_reason",
                             done_reason, "prompt_eval_count", 11, "eval_count", 7);
    assert_non_null(first);
    assert_non_null(last);
    char *a = json_dumps(first, JSON_COMPACT), *b = json_dumps(last, JSON_COMPACT);
    char *out = bh_xasprintf("%s\n%s\n", a, b);
    free(a);
    free(b);
    json_decref(first);
    json_decref(last);
    return out;
}

char *stage_fx_ollama_reply(const char *model, const char *content, const char *done_reason)
{
    return ndjson(model, json_pack("{s:s, s:s}", "role", "assistant", "content", content),
                  done_reason);
}

void stage_fx_reply(struct stage_fx *f, const char *model, const char *content,
                    const char *done_reason)
{
    char *body = stage_fx_ollama_reply(model, content, done_reason);
    mini_httpd_script(f->http, "/api/chat", 200, "application/x-ndjson", body);
    free(body);
}

void stage_fx_tool_reply(struct stage_fx *f, const char *model, const char *tool,
                         const char *arguments_json)
{
    json_error_t je;
    json_t *args = json_loads(arguments_json, 0, &je);
    assert_non_null(args);
    json_t *msg = json_pack("{s:s, s:s, s:[{s:{s:s, s:o}}]}", "role", "assistant", "content", "",
                            "tool_calls", "function", "name", tool, "arguments", args);
    assert_non_null(msg);
    char *body = ndjson(model, msg, "stop");
    mini_httpd_script(f->http, "/api/chat", 200, "application/x-ndjson", body);
    free(body);
}
