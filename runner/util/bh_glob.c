/* util/bh_glob.c — the glob matcher of bh_glob.h. Recursive over the
 * pattern; `**` segments try every split point and `*` every length within
 * a segment. Patterns come from the pipeline file (at most a few hundred
 * bytes) and paths from a repository, so the worst case (a pattern of many
 * stars) stays small; memoisation would cost more than it saves here. */
#include "util/bh_glob.h"

#include <string.h>

/* Matches one bracket set at *g against c; advances *g past the ']'.
 * Returns 1 on match, 0 on no match, -1 for a malformed set. */
static int set_match(const char **g, char c)
{
    const char *p = *g + 1;
    int neg = (*p == '!' || *p == '^');
    int hit = 0;
    if (neg)
        p++;
    if (*p == ']') { /* a ']' first in the set is literal */
        hit |= c == ']';
        p++;
    }
    for (; *p && *p != ']'; p++) {
        if (p[1] == '-' && p[2] && p[2] != ']') {
            hit |=
                (unsigned char)c >= (unsigned char)p[0] && (unsigned char)c <= (unsigned char)p[2];
            p += 2;
        } else {
            hit |= c == *p;
        }
    }
    if (*p != ']')
        return -1;
    *g = p + 1;
    return hit != neg;
}

static int match(const char *g, const char *s);

/* g points just after a "**" segment's stars: "/rest" or end. */
static int match_globstar(const char *g, const char *s)
{
    if (*g == '\0')
        return 1; /* trailing "**": everything below */
    g++;          /* skip '/' */
    for (;;) {
        if (match(g, s))
            return 1;
        const char *slash = strchr(s, '/');
        if (!slash)
            return 0;
        s = slash + 1;
    }
}

static int match(const char *g, const char *s)
{
    for (;;) {
        switch (*g) {
        case '\0': return *s == '\0';
        case '*':
            if (g[1] == '*')
                return match_globstar(g + 2, s);
            g++;
            for (;; s++) { /* one '*': any run without '/' */
                if (match(g, s))
                    return 1;
                if (*s == '\0' || *s == '/')
                    return 0;
            }
        case '?':
            if (*s == '\0' || *s == '/')
                return 0;
            g++, s++;
            break;
        case '[': {
            if (*s == '\0' || *s == '/')
                return 0;
            if (set_match(&g, *s) != 1)
                return 0;
            s++;
            break;
        }
        case '\\':
            if (g[1] == '\0' || g[1] != *s)
                return 0;
            g += 2, s++;
            break;
        default:
            if (*g != *s)
                return 0;
            g++, s++;
        }
    }
}

int bh_glob_match(const char *glob, const char *path)
{
    if (!glob || !path || bh_glob_problem(glob))
        return 0;
    if (!strchr(glob, '/')) { /* a bare name matches at any depth */
        const char *last = strrchr(path, '/');
        return match(glob, last ? last + 1 : path);
    }
    return match(glob, path);
}

const char *bh_glob_problem(const char *glob)
{
    if (!glob || !*glob)
        return "empty pattern";
    if (glob[0] == '/')
        return "patterns are relative to the repository or folder: remove the leading '/'";
    for (const char *p = glob; *p; p++) {
        if (*p == '\\') {
            if (!*++p)
                return "trailing '\\' escapes nothing";
        } else if (*p == '*' && p[1] == '*') {
            int seg_start = p == glob || p[-1] == '/';
            int seg_end = p[2] == '\0' || p[2] == '/';
            if (!seg_start || !seg_end)
                return "'**' must be a whole path segment, as in \"docs/**\" or \"**/*.pem\"";
            p++;
        } else if (*p == '[') {
            const char *q = p;
            char c = 'x';
            if (set_match(&q, c) < 0)
                return "unclosed '[' — write \"\\[\" for a literal bracket";
            p = q - 1;
        }
    }
    return NULL;
}
