/* stages/tools.h — the built-in tools of agent stages: read-only views of a
 * pull request's repository at its head commit, read through sources/src_repo.h from the
 * object database (never the working tree). No tool runs a command, writes
 * anything or touches the network: each one reads git objects and returns
 * text.
 *
 *   read_file(path, start_line?, end_line?)  a file's lines, numbered
 *   list_files(dir?, glob?)                  file paths under dir
 *   grep(pattern, path_glob?)                lines matching a POSIX ERE
 *   git_log(path?, n?)                       commits reachable from head
 *   diff(path?)                              the PR's diff, or one file's part
 *
 * Paths are looked up in the head commit's tree: an absolute path, a '..'
 * or '.' segment, or a path the tree does not hold is an error result.
 *
 * Every result carries a label (policy/label.h) that covers everything it
 * was computed from, not only the text it shows: read_file the whole file
 * (pr.diff with its path rule, detectors over all of it), whatever lines are
 * asked; grep every file it looked at, whole, matched or not, searched or
 * left out as binary or large, and the tree's paths; list_files (as pr.files)
 * every path of the head tree; git_log (pr.title joined with pr.files) the
 * whole messages of the commits it shows; diff the whole pr.diff, or one
 * file's part as each.diff. A file that cannot be scanned whole (binary, over
 * the detectors' cap, unreadable) is the top label. Every result is capped
 * (STAGE_TOOL_RESULT_MAX) and says so when it was cut. */
#ifndef STAGE_TOOLS_H
#define STAGE_TOOLS_H

#include <stddef.h>

struct bh_err;
struct pol_labeller;
struct src_field;
struct stage_tools;

/* Caps: bytes of one result; grep's matching lines; list_files' paths;
 * git_log's commits (n) and the commits it walks to find them; bytes of one
 * file grep reads (larger files are not searched, and the result says how
 * many were left out). */
#define STAGE_TOOL_RESULT_MAX ((size_t)64 << 10)
#define STAGE_TOOL_GREP_LINES 200
#define STAGE_TOOL_LIST_MAX 2000
#define STAGE_TOOL_LOG_MAX 50
#define STAGE_TOOL_LOG_DEFAULT 10
#define STAGE_TOOL_LOG_WALK 10000
#define STAGE_TOOL_FILE_MAX ((size_t)1 << 20)

struct stage_tools_opts {
    const char *repo;               /* path of the repository (bare or not), not searched
                                       upwards */
    const char *head;               /* the commit the tools read: a full hex id, or any
                                       revision git rev-parse takes */
    const struct src_field *diff;   /* the item's pr.diff (value and parts, or its error);
                                       NULL: the diff tool answers that there is none */
    const struct pol_labeller *lab; /* labels every result; its pipeline gives the
                                       declared labels */
    size_t max_result;              /* 0: STAGE_TOOL_RESULT_MAX */
};

/* Opens the repository at o->head. Everything in o is borrowed and must
 * outlive the tools. BH_ENOTFOUND when the repository or the commit cannot
 * be found (the message names both), BH_EIO for other libgit2 errors. */
int stage_tools_open(struct stage_tools **out, const struct stage_tools_opts *o,
                     struct bh_err *err);
void stage_tools_free(struct stage_tools *t); /* NULL is fine */

enum stage_tool_status {
    STAGE_TOOL_OK,        /* the tool ran: text is its result */
    STAGE_TOOL_FAILED,    /* the tool could not do it (no such file, a folder, a binary
                             file, a pattern that does not compile): text says why */
    STAGE_TOOL_MALFORMED, /* the call itself is wrong: an unknown tool, arguments that are
                             not a JSON object, a missing, unknown or mistyped argument */
};

#define STAGE_TOOL_WHY 256

struct stage_tool_result {
    char *text;               /* owned, valid UTF-8 (invalid bytes of a file become '?') */
    int label;                /* label index of text, never -1 */
    char why[STAGE_TOOL_WHY]; /* what decided the label, in words, for messages: a rule, a
                                 detector and the file and line, or why a file is unscanned
                                 (never its content); "" for a call that read nothing */
    int status;               /* enum stage_tool_status */
    int truncated;            /* the result was cut at a cap (text says so too) */
};
void stage_tool_result_release(struct stage_tool_result *r); /* zeroes r */

/* Runs tool `name` with arguments_json (the text of a JSON object, or
 * whatever the model sent; NULL when a provider found it malformed, as
 * prov_tool_call says). Never fails: every problem is a result with a
 * status and a text for the model. A result that names only what the call
 * said (an unknown tool, a bad argument) is the bottom label; one that says
 * something of the repository (a file that is not there) is labelled as
 * list_files (every path of the tree), joined with the file's label when it
 * is about a file's content (its length, that it is binary). grep's label
 * joins the label of every file it looked at, matched or not: a search that
 * found nothing in a file still says so. */
void stage_tools_call(struct stage_tools *t, const char *name, const char *arguments_json,
                      struct stage_tool_result *out);

/* 1 when name is a built-in tool. */
int stage_tool_known(const char *name);

/* The tool definitions of names[0..n) in the OpenAI/Ollama envelope
 * ([{"type":"function","function":{"name","description","parameters"}}]),
 * as providers take it in prov_chat.tools_json. Owned by the caller; unknown
 * names are left out; NULL when none is known. */
char *stage_tools_json(const char *const *names, size_t n);

#endif
