/* sources/src_repo.h — one commit of a repository, read from the object
 * database (never the working tree): what the agent tools read — a file
 * at a path, the entries of a folder, the commits behind it. The libgit2
 * handles stay inside (src_repo.c): callers see paths, bytes and ids.
 *
 * Paths are looked up in the commit's tree only, so no path a caller
 * passes (a model's, in the tools) can reach the file system. Paths are
 * '/'-separated from the repository root, without a leading '/'.
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef SRC_REPO_H
#define SRC_REPO_H

#include <stddef.h>

struct bh_err;
struct src_repo;

/* Hex digits of a commit id (SHA-1). */
#define SRC_REPO_ID_LEN 40

/* What a path names in the commit's tree. */
enum src_repo_kind {
    SRC_REPO_NONE,      /* nothing (or it could not be read) */
    SRC_REPO_FILE,      /* a blob: a file or a symbolic link */
    SRC_REPO_DIR,       /* a tree */
    SRC_REPO_SUBMODULE, /* a commit of another repository */
};

/* A file's content, caller-owned: src_repo_blob_release frees it. */
struct src_repo_blob {
    const char *data; /* size bytes (not NUL-terminated; may hold NULs) */
    size_t size;
    int binary; /* git's guess from its content (a NUL in the first 8000 bytes) */
    void *obj;  /* private */
};

/* Opens the repository at path (bare or not; NULL means "."; parents are
 * never searched) at the commit rev names (a full id, or any revision git
 * rev-parse takes). `user` names who reads it in messages ("the tools":
 * "cannot open it for the tools"). BH_ENOTFOUND when the repository or the
 * commit cannot be found (the message names both), BH_EIO for other
 * libgit2 errors, BH_EINTERNAL when libgit2 cannot start. */
int src_repo_open(struct src_repo **out, const char *path, const char *rev, const char *user,
                  struct bh_err *err);
void src_repo_free(struct src_repo *r); /* NULL is fine */

/* What path names in the commit's tree ("" is the root: SRC_REPO_DIR). */
enum src_repo_kind src_repo_kind_at(struct src_repo *r, const char *path);

/* Reads the file at path into *out. When path names no file: BH_ENOTFOUND,
 * with *kind (may be NULL) saying what it names instead (nothing, a folder,
 * a submodule) and no message; BH_EIO when libgit2 cannot read it, the
 * message "cannot read 'PATH': <libgit2's words>". *out is set only on 0. */
int src_repo_read(struct src_repo *r, const char *path, struct src_repo_blob *out,
                  enum src_repo_kind *kind, struct bh_err *err);
void src_repo_blob_release(struct src_repo_blob *b); /* zeroes it; a zeroed blob is fine */

/* One entry of a folder walk. */
struct src_repo_entry {
    const char *path; /* from the repository root, borrowed for the call */
    enum src_repo_kind kind;
    const void *obj; /* private: src_repo_entry_read reads through it */
};

/* Called for each entry, a folder before what it holds; returns 0 to go
 * on, anything else to stop the walk (src_repo_walk returns it). */
typedef int (*src_repo_walk_fn)(struct src_repo *r, const struct src_repo_entry *e, void *payload);

/* Walks the folder dir ("" the root; no trailing '/') depth first, every
 * entry of every sub-folder. Returns 0 after the whole walk, fn's value
 * when it stopped it, BH_ENOTFOUND when dir is not a folder of the commit,
 * BH_EIO when a folder cannot be read. */
int src_repo_walk(struct src_repo *r, const char *dir, src_repo_walk_fn fn, void *payload);

/* Reads the file of a walk's entry (kind SRC_REPO_FILE) into *out: 0, or
 * BH_EIO with the message as src_repo_read's. Only during the walk. */
int src_repo_entry_read(struct src_repo *r, const struct src_repo_entry *e,
                        struct src_repo_blob *out, struct bh_err *err);

/* A commit as a log shows it; strings borrowed for the call. */
struct src_repo_commit {
    char id[SRC_REPO_ID_LEN + 1]; /* hex */
    long long time;               /* committer time, seconds since the epoch (UTC) */
    const char *author;           /* the author's name, or NULL */
    const char *summary;          /* the title line, or NULL */
    const char *message;          /* the whole message, or NULL */
};

/* Called for each commit of a log; 0 to go on, anything else to stop. */
typedef int (*src_repo_log_fn)(const struct src_repo_commit *c, void *payload);

/* The commits reachable from the open commit, newest first by commit time,
 * that changed path (a file or a folder, against their first parent; ""
 * every commit), looking at no more than max_visit commits. Returns the
 * number of commits visited; a commit that cannot be read ends the log
 * there, and one that cannot be started is empty. */
size_t src_repo_log(struct src_repo *r, const char *path, size_t max_visit, src_repo_log_fn fn,
                    void *payload);

#endif
