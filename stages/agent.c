/* stages/agent.c — the agent loop. One struct agent lives for one attempt
 * of a task: the conversation (every message as sent, owned here), the open
 * tools, the conversation's label, and counts of steps and malformed calls.
 * Each request is a chat request (stage_chat_request): the same body
 * building, gate, reply parsing, retries and failures as a chat stage, so
 * the gate sees every step of the loop with the label of everything the
 * model has been shown, and refuses (and audits) the first request that
 * would carry a tool result above the stage's clearance.
 *
 * The model is not trusted: it may be following instructions planted in
 * the code it reads. It can only name tools and arguments; only granted
 * tools run, every result is labelled, and a model that keeps making
 * malformed calls or never stops calling tools ends the task with a clear
 * error instead of looping. A transient failure hands the task back to the
 * engine, which starts the conversation again from the rendered prompt: the
 * tools read a fixed commit, so a restart asks the same questions. */
#include "stages/agent.h"

#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "pipeline/pipeline.h"
#include "policy/policy.h"
#include "providers/prov.h"
#include "sources/src_git.h"
#include "stages/chat.h"
#include "stages/kinds.h"
#include "stages/output.h"
#include "stages/stage.h"
#include "stages/tools.h"
#include "util/bh_err.h"
#include "util/bh_str.h"
#include "util/bh_xmalloc.h"

/* The owned storage behind one message of the conversation. */
struct held {
    char *content;
    struct prov_tool_call *calls;
    size_t n_calls;
    char *call_id, *tool_name;
};

struct agent {
    struct eng_task *t;
    size_t via;                /* the stage that converses: the task's, or its reroute
                                  target */
    struct stage_tools *tools; /* NULL: the stage has none */
    char *tools_json;
    struct prov_msg *msgs; /* as sent, pointing into held */
    struct held *held;
    size_t n, cap;
    int label;       /* the conversation's: prompt and every tool result */
    char *raised_by; /* the tool result that raised label last, in words, or
                        NULL (the prompt's label) */
    int steps, malformed;
    int asked_again;        /* an answer failed the output check and was sent back */
    struct stage_inputs in; /* declassify's guards: the prompt's inputs, tool results */
    int64_t prompt_tokens, output_tokens, load_ns, total_ns;
    char *answered_by;
};

static void calls_free(struct prov_tool_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(calls[i].id);
        free(calls[i].name);
        free(calls[i].arguments_json);
    }
    free(calls);
}

static void agent_free(struct agent *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->held[i].content);
        calls_free(a->held[i].calls, a->held[i].n_calls);
        free(a->held[i].call_id);
        free(a->held[i].tool_name);
    }
    free(a->held);
    free(a->msgs);
    stage_tools_free(a->tools);
    free(a->tools_json);
    stage_inputs_release(&a->in);
    free(a->answered_by);
    free(a->raised_by);
    free(a);
}

/* Appends a message; takes h's strings. */
static void conv_add(struct agent *a, const char *role, struct held h)
{
    if (a->n == a->cap) {
        size_t cap = a->cap; /* both arrays grow alike: a->cap counts both */
        a->msgs = bh_xgrow(a->msgs, &cap, a->n + 1, sizeof(*a->msgs));
        a->held = bh_xgrow(a->held, &a->cap, a->n + 1, sizeof(*a->held));
    }
    a->held[a->n] = h;
    a->msgs[a->n] = (struct prov_msg){.role = role,
                                      .content = h.content,
                                      .tool_calls = h.calls,
                                      .n_tool_calls = h.n_calls,
                                      .tool_call_id = h.call_id,
                                      .tool_name = h.tool_name};
    a->n++;
}

/* ---- the tools of the task's pull request --------------------------------- */

static int tools_open(struct agent *a, struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(a->t);
    const struct pipe_stage *s = &p->stages[a->via];
    if (s->n_tools == 0)
        return 0;
    const struct stage_repo *repo = stage_kinds_repo();
    const struct src_item *it = repo && repo->path ? eng_task_source(a->t) : NULL;
    const char *head = it && it->version ? strstr(it->version, "..") : NULL;
    if (!head)
        return bh_err_set(err, BH_EINVAL,
                          "agent stage '%s': its tools read one pull request, "
                          "and task '%s' has none — give the stage \"scope\": \"item\" over a "
                          "git source, or remove \"tools\"",
                          s->name, eng_task_item(a->t));
    struct stage_tools_opts o = {.repo = repo->path,
                                 .head = head + 2,
                                 .diff = src_item_find(it, "pr.diff"),
                                 .lab = eng_task_labeller(a->t)};
    int rc = stage_tools_open(&a->tools, &o, err);
    if (rc == 0)
        a->tools_json = stage_tools_json((const char *const *)s->tools, s->n_tools);
    return rc;
}

/* ---- one step ------------------------------------------------------------ */

static void on_reply(void *ud, struct prov_reply *reply, const struct eng_metrics *m);

/* Sends the conversation so far: the gate checks a->label. */
static int step(struct agent *a, struct bh_err *err)
{
    struct stage_turn turn = {.msgs = a->msgs,
                              .n_msgs = a->n,
                              .tools_json = a->tools_json,
                              .label = a->label,
                              .on_reply = on_reply,
                              .ud = a};
    int rc = stage_chat_request(a->t, a->via, &turn, err);
    if (rc == 0)
        a->steps++;
    else if (a->steps > 0) {
        const struct pipeline *p = eng_task_pipeline(a->t);
        bh_err_prefix(err,
                      "agent stage '%s', request %d (the conversation is %s with its tool "
                      "results%s%s): ",
                      p->stages[a->via].name, a->steps + 1, pol_label_name(p, a->label),
                      a->raised_by ? "; raised by " : "", a->raised_by ? a->raised_by : "");
    }
    return rc;
}

static int granted(const struct pipe_stage *s, const char *name)
{
    for (size_t i = 0; i < s->n_tools; i++)
        if (strcmp(s->tools[i], name) == 0)
            return 1;
    return 0;
}

/* Runs one call (or answers why not) into r. */
static void call_run(struct agent *a, const struct prov_tool_call *c, size_t index,
                     struct stage_tool_result *r)
{
    const struct pipe_stage *s = &eng_task_pipeline(a->t)->stages[a->via];
    if (index >= STAGE_AGENT_CALLS_PER_STEP) {
        memset(r, 0, sizeof(*r));
        r->status = STAGE_TOOL_FAILED;
        r->text = bh_xasprintf("error: not run: at most %d tool calls are run per reply — "
                               "call the others in your next reply",
                               STAGE_AGENT_CALLS_PER_STEP);
    } else if (!granted(s, c->name) || !a->tools) {
        char *list = bh_str_join((const char *const *)s->tools, s->n_tools);
        memset(r, 0, sizeof(*r));
        r->status = STAGE_TOOL_MALFORMED;
        if (stage_tool_known(c->name))
            r->text = bh_xasprintf("error: tool '%s' is not granted to this stage (its tools: "
                                   "%s)",
                                   c->name, list);
        else
            r->text = bh_xasprintf("error: there is no tool '%.64s' (this stage's tools: %s)",
                                   c->name, list);
        free(list);
    } else {
        stage_tools_call(a->tools, c->name, c->arguments_json, r);
    }
}

/* Answers every call of the last assistant message with a tool message.
 * Returns 0, or BH_EREPLY once the task has seen too many malformed calls. */
static int calls_answer(struct agent *a, const struct prov_tool_call *calls, size_t n,
                        struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(a->t);
    int keep = p->stages[a->via].declassify.enabled;
    for (size_t i = 0; i < n; i++) {
        struct stage_tool_result r;
        call_run(a, &calls[i], i, &r);
        if (r.label > a->label) { /* what to name when the gate refuses the next step */
            free(a->raised_by);
            a->raised_by = bh_xasprintf("the result of %s: %s", calls[i].name, r.why);
        }
        a->label = pol_label_join(p, a->label, r.label);
        if (keep)
            stage_inputs_add(&a->in, "a tool result", r.text, r.label);
        if (r.status == STAGE_TOOL_MALFORMED && ++a->malformed >= STAGE_AGENT_MALFORMED_MAX) {
            bh_err_set(err, BH_EREPLY,
                       "agent stage '%s': the model made %d malformed tool calls "
                       "(the last: %.200s) — use a model that is better at tool calling, or "
                       "tell it the tools in the prompt",
                       p->stages[a->via].name, a->malformed, r.text);
            stage_tool_result_release(&r);
            return BH_EREPLY;
        }
        conv_add(a, "tool",
                 (struct held){.content = r.text,
                               .call_id = bh_xstrdup(calls[i].id),
                               .tool_name = bh_xstrdup(calls[i].name)});
    }
    return 0;
}

static void metrics_add(struct agent *a, const struct eng_metrics *m)
{
    a->prompt_tokens += m->prompt_tokens;
    a->output_tokens += m->output_tokens;
    a->load_ns += m->load_ns;
    a->total_ns += m->total_ns;
    free(a->answered_by);
    a->answered_by = bh_xstrdup(m->answered_by);
}

/* The model answered without tool calls: that answer, as the stage's output
 * format wants it, is the task's output. An answer that fails the check
 * (findings, a schema) is sent back once, in the conversation, with what is
 * wrong. 1 when the task ended, 0 when the conversation goes on, or an error. */
static int answer(struct agent *a, const char *content, const struct eng_metrics *m,
                  struct bh_err *err)
{
    const struct pipeline *p = eng_task_pipeline(a->t);
    char *stored = NULL;
    struct bh_err why = {0};
    content = content ? content : "";
    if (stage_output_check(p, a->via, content, &stored, &why) == 0) {
        struct eng_metrics sum = {.prompt_tokens = a->prompt_tokens,
                                  .output_tokens = a->output_tokens,
                                  .load_ns = a->load_ns,
                                  .total_ns = a->total_ns,
                                  .answered_by = a->answered_by,
                                  .rerouted = m->rerouted,
                                  .via = a->via};
        stage_task_done(a->t, a->via, &a->in, stored, a->label, &sum);
        free(stored);
        return 1;
    }
    if (a->asked_again)
        return bh_err_set(err, why.code, "agent stage '%s': %s; asked again once",
                          p->stages[a->via].name, why.msg);
    a->asked_again = 1;
    conv_add(a, "assistant", (struct held){.content = bh_xstrdup(content)});
    conv_add(a, "user", (struct held){.content = stage_output_again(&why)});
    return step(a, err);
}

/* The model called tools: answer them and ask again, within max_steps. */
static int go_on(struct agent *a, struct prov_reply *reply, struct bh_err *err)
{
    const struct pipe_stage *s = &eng_task_pipeline(a->t)->stages[a->via];
    int max = s->max_steps > 0 ? s->max_steps : 8;
    if (a->steps >= max)
        return bh_err_set(err, BH_EREPLY,
                          "agent stage '%s' did not finish in %d steps: the "
                          "model still called tools after its last allowed request — raise "
                          "\"max_steps\" (1 to 64), or ask for the answer sooner in the prompt",
                          s->name, max);
    conv_add(a, "assistant",
             (struct held){.content = bh_xstrdup(reply->content ? reply->content : ""),
                           .calls = reply->tool_calls,
                           .n_calls = reply->n_tool_calls});
    reply->tool_calls = NULL; /* the conversation holds them now */
    reply->n_tool_calls = 0;
    const struct held *h = &a->held[a->n - 1];
    int rc = calls_answer(a, h->calls, h->n_calls, err);
    return rc ? rc : step(a, err);
}

static void on_reply(void *ud, struct prov_reply *reply, const struct eng_metrics *m)
{
    struct agent *a = ud;
    struct bh_err err = {0};
    if (!reply) { /* failed or retried: the engine has the task */
        agent_free(a);
        return;
    }
    metrics_add(a, m);
    int rc = reply->n_tool_calls == 0 ? answer(a, reply->content, m, &err) : go_on(a, reply, &err);
    if (rc == 0)
        return; /* the next step is on its way, with a */
    if (rc < 0)
        eng_task_fail(a->t, &err); /* BH_EPOLICY (the gate refused a step): withheld */
    agent_free(a);
}

int stage_agent_send(struct eng_task *t, size_t via, struct stage_rendered *r, struct bh_err *err)
{
    struct agent *a = bh_xcalloc(1, sizeof(*a));
    stage_output_instruction_add(eng_task_pipeline(t), via, r);
    a->t = t;
    a->via = via;
    a->label = r->label;
    a->in = r->in;
    memset(&r->in, 0, sizeof(r->in));
    if (r->system)
        conv_add(a, "system", (struct held){.content = r->system});
    conv_add(a, "user", (struct held){.content = r->user});
    r->system = r->user = NULL; /* the conversation holds them now */
    int rc = tools_open(a, err);
    if (rc == 0)
        rc = step(a, err);
    if (rc)
        agent_free(a);
    return rc;
}
