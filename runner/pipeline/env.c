/* pipeline/env.c — ${VAR} and ${VAR:-default} in pipeline values.
 *
 * The shell's syntax, reduced to the two forms a URL needs. A "$" not
 * followed by "{" is literal (so "$$" is two dollars); there is no escape for
 * a literal "${". A default runs to its matching "}", so it may contain colons
 * (${URL:-http://127.0.0.1:11434}) and references of its own, expanded only
 * when the default is used (${BULKHEAD_LOCAL_URL:-${OLLAMA_HOST:-127.0.0.1}}).
 * An empty variable counts as unset, as with the shell's ":-". Messages name variables, never their
 * values: a value may be a secret. */
#include "pipeline/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

#define EXPAND_MAX ((size_t)64 << 10)

static int name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* The "}" that closes the reference whose name starts at name, counting the
 * references nested in its default; NULL when there is none. */
static const char *matching_close(const char *name)
{
    int depth = 1;
    for (const char *p = name; *p; p++) {
        if (p[0] == '$' && p[1] == '{') {
            depth++;
            p++;
        } else if (*p == '}' && --depth == 0) {
            return p;
        }
    }
    return NULL;
}

static int expand_default(const char *from, const char *to, struct bh_buf *b, struct bh_err *err)
{
    char *text = bh_xstrndup(from, (size_t)(to - from)), *out = NULL;
    int rc = pipe_expand_env(text, &out, err);
    if (rc == 0)
        rc = bh_buf_puts(b, out);
    free(text);
    free(out);
    return rc;
}

/* One reference at *pp ("${"); appends its value and moves *pp past it. */
static int expand_one(const char **pp, struct bh_buf *b, struct bh_err *err)
{
    const char *name = *pp + 2, *close = matching_close(name);
    if (!close)
        return bh_err_set(err, BH_EINVAL,
                          "unterminated \"${\" — close it with \"}\": "
                          "${NAME} or ${NAME:-default}");
    const char *end = name;
    if (name_start(*end))
        while (name_char(*end))
            end++;
    int has_default = end[0] == ':' && end[1] == '-' && end + 2 <= close;
    if (end == name || (end != close && !has_default))
        return bh_err_set(err, BH_EINVAL,
                          "invalid variable reference \"%.*s\" — write ${NAME} or "
                          "${NAME:-default}, NAME made of letters, digits and '_'",
                          (int)(close - *pp + 1 > 80 ? 80 : close - *pp + 1), *pp);
    char var[256];
    if ((size_t)(end - name) >= sizeof(var))
        return bh_err_set(err, BH_EINVAL, "variable name longer than %zu characters",
                          sizeof(var) - 1);
    memcpy(var, name, (size_t)(end - name));
    var[end - name] = '\0';
    const char *val = getenv(var);
    int rc = 0;
    if (val && *val)
        rc = bh_buf_puts(b, val);
    else if (has_default)
        rc = expand_default(end + 2, close, b, err);
    else
        return bh_err_set(err, BH_EINVAL,
                          "environment variable \"%s\" is not set — set it, or give a default: "
                          "${%s:-value}",
                          var, var);
    *pp = close + 1;
    return rc;
}

int pipe_expand_env(const char *s, char **out, struct bh_err *err)
{
    struct bh_buf b;
    int rc = 0;
    bh_buf_init(&b, EXPAND_MAX);
    const char *p = s;
    while (*p && rc == 0) {
        if (p[0] == '$' && p[1] == '{') {
            rc = expand_one(&p, &b, err);
            continue;
        }
        size_t n = strcspn(p + 1, "$") + 1; /* up to the next candidate "$" */
        rc = bh_buf_append(&b, p, n);
        p += n;
    }
    if (rc == BH_ETOOBIG)
        rc = bh_err_set(err, BH_EINVAL, "the expanded value is longer than %zu bytes", EXPAND_MAX);
    if (rc) {
        bh_buf_release(&b);
        return rc;
    }
    *out = bh_buf_detach(&b);
    return 0;
}
