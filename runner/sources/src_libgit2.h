/* sources/src_libgit2.h — private to runner/sources/: the helpers every
 * libgit2 reader here shares (src_git.c, src_forge.c, src_repo.c), so that
 * an error reads the same and a revision resolves the same wherever a
 * repository is read. Only runner/sources/ includes <git2.h> (ci/lint.sh). */
#ifndef SRC_LIBGIT2_H
#define SRC_LIBGIT2_H

#include <git2.h>

/* libgit2's words for its last error on this thread, never NULL. */
const char *src_git_msg(void);

/* The commit rev names (a full id, or any revision git rev-parse takes):
 * 0 with *out set (free with git_commit_free), else libgit2's negative code
 * (its words in src_git_msg). */
int src_git_commit_at(git_commit **out, git_repository *repo, const char *rev);

#endif
