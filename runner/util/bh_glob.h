/* util/bh_glob.h — path globs as the pipeline's `rules`, `include` and
 * `exclude` write them. fnmatch(3) has no `**`, which is what users mean by
 * "this folder at any depth", so the matcher is ours; it is small and
 * linear-ish (backtracking only over `*` and `**`, bounded by the pattern's
 * length times the path's). */
#ifndef BH_GLOB_H
#define BH_GLOB_H

/* 1 when path matches glob. Paths use '/' and have no leading "/" or "./".
 *   `*`   any run of characters within one path segment (no '/')
 *   `?`   one character other than '/'
 *   `**`  as a whole segment: zero or more segments (the folder docs followed
 *         by a `**` segment matches "docs/a" and "docs/a/b"; a leading `**`
 *         segment followed by x.pem matches "x.pem" and "a/x.pem")
 *   `[abc]`, `[a-z]`, `[!a]`  one character of (not of) the set
 *   `\c`  the character c itself
 * A glob without '/' matches a path's last segment at any depth, as in
 * .gitignore. Matching is case-sensitive and byte-wise. The unit tests in
 * tests/unit/test_util.c show every rule by example. */
int bh_glob_match(const char *glob, const char *path);

/* NULL when glob is well-formed, else why not ("unclosed '['", "'**' must be
 * a whole path segment", "empty pattern", "trailing '\\'", ...), for the
 * loader's messages. */
const char *bh_glob_problem(const char *glob);

#endif
