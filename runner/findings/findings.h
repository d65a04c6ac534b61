/* findings/findings.h — structured findings: what a stage with
 * "output": {"format": "findings"} answers, how it is asked for, checked and
 * stored, and read back by the reports. A finding is
 *   { "path": "src/main.c", "line": 12, "end_line": 14, "severity": "high",
 *     "rule": "null-check", "message": "...", "suggestion": "..." }
 * with path, line, severity and message required. The stored form is a
 * compact JSON array of findings with the keys in that order.
 * Also the check of a reply against a stage's own "output.schema".
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef FINDINGS_H
#define FINDINGS_H

#include <stddef.h>

struct bh_err;

enum stage_severity {
    STAGE_SEV_INFO,
    STAGE_SEV_LOW,
    STAGE_SEV_MEDIUM,
    STAGE_SEV_HIGH,
    STAGE_SEV_CRITICAL,
};
#define STAGE_SEV_COUNT 5

/* A reply holds at most this many findings (a longer one is not valid). */
#define STAGE_FINDINGS_MAX 1000

/* "info" ... "critical"; "?" out of range. */
const char *stage_severity_name(int sev);
/* The severity called name, or -1. */
int stage_severity_find(const char *name);
/* "info, low, medium, high, critical": for messages. */
const char *stage_severity_list(void);

struct stage_finding {
    char *path;       /* relative to the repository root, never absolute, no ".." */
    long line;        /* >= 1 */
    long end_line;    /* >= line; equal to line when the reply gave none */
    int severity;     /* enum stage_severity */
    char *rule;       /* "" when the reply gave none */
    char *message;    /* non-empty */
    char *suggestion; /* "" when the reply gave none */
};

struct stage_findings {
    struct stage_finding *v;
    size_t n;
};

/* Reads and checks a reply: a JSON array of findings, or an object
 * {"findings": [...]} (what OpenAI's schema mode answers), either inside one
 * Markdown ``` fence or not. On success *out holds the findings (release
 * with stage_findings_release). BH_EREPLY otherwise, with the JSON path of
 * the first bad value and what was expected, e.g. "$[2].severity: expected
 * one of info, low, medium, high, critical" — never the reply's text. */
int stage_findings_parse(const char *reply, struct stage_findings *out, struct bh_err *err);
void stage_findings_release(struct stage_findings *f);

/* The stored form of f: a compact JSON array, keys in a fixed order, empty
 * rule and suggestion left out. Owned by the caller. */
char *stage_findings_json(const struct stage_findings *f);

/* How a stage asks its model for findings through provider ("ollama",
 * "openai", "anthropic"): *format_json is the JSON schema for the provider's
 * schema mode (NULL for anthropic, which has none), *instruction the text
 * appended to the user message (for every provider: a model answers better
 * when the prompt shows the shape too, and for anthropic it is the only way).
 * Both static. ollama gets the array; openai the object form, since its
 * schema mode wants an object at the root. */
void stage_findings_ask(const char *provider, const char **format_json, const char **instruction);

/* Checks a reply against a JSON schema (schema_json: an object, as text).
 * On success *stored is the reply as it is to be stored: the JSON without a
 * Markdown fence around it (owned). BH_EREPLY "PATH: expected ..." when it
 * does not follow; BH_EINVAL when schema_json does not parse. */
int stage_schema_check(const char *schema_json, const char *reply, char **stored,
                       struct bh_err *err);

#endif
