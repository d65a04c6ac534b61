/* util/bh_invariant.c — the one way an always-on invariant fails: a
 * message that says it is a bug and where, and exit 70 at once. _exit, not
 * exit: a broken invariant means the state of the process is not what the
 * code believes, so no handler gets to run on it (libcurl's included). */
#include "util/bh_invariant.h"

#include <stdio.h>
#include <unistd.h>

/* "egress/egress.c" of the compiler's full path: the module and the file,
 * which is what a bug report needs, without the builder's folders. */
static const char *short_path(const char *file)
{
    const char *last = NULL, *before = NULL;
    for (const char *c = file; *c; c++)
        if (*c == '/') {
            before = last;
            last = c;
        }
    return before ? before + 1 : file;
}

void bh_invariant_fail(const char *msg, const char *file, int line)
{
    fflush(stdout);
    fprintf(stderr, "bulkhead: internal error: %s at %s:%d\n", msg, short_path(file), line);
    fflush(stderr);
    _exit(70);
}
