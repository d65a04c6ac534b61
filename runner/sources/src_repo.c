/* sources/src_repo.c — one commit of a repository for the agent tools, and
 * the libgit2 helpers every reader in sources/ shares (src_libgit2.h).
 *
 * Only the object database is read, so a checkout in any state, a bare
 * mirror or a working tree full of local edits gives the same answers, and
 * every lookup is in a git tree. Blobs, tree entries and commits never leave
 * this file as libgit2 types: a blob is handed out as its bytes with the
 * object kept behind a void pointer until the caller releases it, so the
 * bytes stay valid exactly as long as libgit2 keeps them.
 *
 * libgit2 is initialised when a repository is opened and shut down when it
 * is freed; it refcounts, so this nests with src_git_list in the process. */
#include "sources/src_repo.h"

#include <stdlib.h>
#include <string.h>

#include "sources/src_libgit2.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

_Static_assert(GIT_OID_HEXSZ == SRC_REPO_ID_LEN, "SRC_REPO_ID_LEN is not libgit2's");

struct src_repo {
    git_repository *repo;
    git_commit *head;
    git_tree *tree; /* the head commit's */
};

const char *src_git_msg(void)
{
    const git_error *e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

int src_git_commit_at(git_commit **out, git_repository *repo, const char *rev)
{
    git_object *obj = NULL, *commit = NULL;
    int rc = git_revparse_single(&obj, repo, rev);
    if (rc == 0)
        rc = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT);
    git_object_free(obj);
    if (rc == 0)
        *out = (git_commit *)commit;
    return rc;
}

/* ---- opening -------------------------------------------------------------- */

static int head_open(struct src_repo *r, const char *path, const char *rev, const char *user,
                     struct bh_err *err)
{
    if (src_git_commit_at(&r->head, r->repo, rev) < 0)
        return bh_err_set(err, BH_ENOTFOUND,
                          "repository '%s': cannot find commit '%s' for %s: %s — was the "
                          "repository changed during the run?",
                          path, rev, user, src_git_msg());
    if (git_commit_tree(&r->tree, r->head) < 0)
        return bh_err_set(err, BH_EIO, "repository '%s': cannot read the tree of '%s': %s", path,
                          rev, src_git_msg());
    return 0;
}

int src_repo_open(struct src_repo **out, const char *path, const char *rev, const char *user,
                  struct bh_err *err)
{
    if (git_libgit2_init() < 0)
        return bh_err_set(err, BH_EINTERNAL, "cannot initialise libgit2: %s", src_git_msg());
    struct src_repo *r = bh_xcalloc(1, sizeof(*r));
    path = path ? path : ".";
    /* NO_SEARCH: the repository named, never one found above it. */
    int rc = git_repository_open_ext(&r->repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (rc < 0)
        rc = bh_err_set(err, rc == GIT_ENOTFOUND ? BH_ENOTFOUND : BH_EIO,
                        "repository '%s': cannot open it for %s: %s", path, user, src_git_msg());
    else
        rc = head_open(r, path, rev ? rev : "HEAD", user, err);
    if (rc) {
        src_repo_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void src_repo_free(struct src_repo *r)
{
    if (!r)
        return;
    git_tree_free(r->tree);
    git_commit_free(r->head);
    git_repository_free(r->repo);
    free(r);
    git_libgit2_shutdown();
}

/* ---- files ---------------------------------------------------------------- */

static enum src_repo_kind kind_of(git_object_t type)
{
    return type == GIT_OBJECT_BLOB     ? SRC_REPO_FILE
           : type == GIT_OBJECT_TREE   ? SRC_REPO_DIR
           : type == GIT_OBJECT_COMMIT ? SRC_REPO_SUBMODULE
                                       : SRC_REPO_NONE;
}

enum src_repo_kind src_repo_kind_at(struct src_repo *r, const char *path)
{
    git_tree_entry *e = NULL;
    if (!path[0])
        return SRC_REPO_DIR;
    if (git_tree_entry_bypath(&e, r->tree, path) < 0)
        return SRC_REPO_NONE;
    enum src_repo_kind kind = kind_of(git_tree_entry_type(e));
    git_tree_entry_free(e);
    return kind;
}

static int blob_read(struct src_repo *r, const git_oid *id, const char *path,
                     struct src_repo_blob *out, struct bh_err *err)
{
    git_blob *b = NULL;
    if (git_blob_lookup(&b, r->repo, id) < 0)
        return bh_err_set(err, BH_EIO, "cannot read '%s': %s", path, src_git_msg());
    *out = (struct src_repo_blob){.data = git_blob_rawcontent(b),
                                  .size = (size_t)git_blob_rawsize(b),
                                  .binary = git_blob_is_binary(b),
                                  .obj = b};
    return 0;
}

int src_repo_read(struct src_repo *r, const char *path, struct src_repo_blob *out,
                  enum src_repo_kind *kind, struct bh_err *err)
{
    git_tree_entry *e = NULL;
    enum src_repo_kind k = SRC_REPO_NONE;
    int rc = git_tree_entry_bypath(&e, r->tree, path);
    if (rc < 0 && rc != GIT_ENOTFOUND)
        return bh_err_set(err, BH_EIO, "cannot read '%s': %s", path, src_git_msg());
    if (rc == 0)
        k = kind_of(git_tree_entry_type(e));
    if (k == SRC_REPO_FILE)
        rc = blob_read(r, git_tree_entry_id(e), path, out, err);
    else
        rc = BH_ENOTFOUND;
    git_tree_entry_free(e);
    if (kind)
        *kind = k;
    return rc;
}

void src_repo_blob_release(struct src_repo_blob *b)
{
    git_blob_free(b->obj);
    memset(b, 0, sizeof(*b));
}

/* ---- walks ---------------------------------------------------------------- */

struct walk {
    struct src_repo *r;
    const char *prefix; /* "dir/" or "" */
    src_repo_walk_fn fn;
    void *payload;
    int rc; /* what fn returned to stop the walk */
};

static int walk_cb(const char *root, const git_tree_entry *te, void *payload)
{
    struct walk *w = payload;
    char *path = bh_xasprintf("%s%s%s", w->prefix, root, git_tree_entry_name(te));
    struct src_repo_entry e = {.path = path, .kind = kind_of(git_tree_entry_type(te)), .obj = te};
    w->rc = w->fn(w->r, &e, w->payload);
    free(path);
    return w->rc ? -1 : 0;
}

/* The folder dir of the commit, or NULL. Free it unless it is r->tree. */
static git_tree *tree_at(struct src_repo *r, const char *dir)
{
    git_tree_entry *e = NULL;
    git_tree *tree = NULL;
    if (!dir[0])
        return r->tree;
    if (git_tree_entry_bypath(&e, r->tree, dir) == 0 && git_tree_entry_type(e) == GIT_OBJECT_TREE &&
        git_tree_lookup(&tree, r->repo, git_tree_entry_id(e)) < 0)
        tree = NULL;
    git_tree_entry_free(e);
    return tree;
}

int src_repo_walk(struct src_repo *r, const char *dir, src_repo_walk_fn fn, void *payload)
{
    git_tree *tree = tree_at(r, dir);
    if (!tree)
        return BH_ENOTFOUND;
    struct walk w = {.r = r, .prefix = "", .fn = fn, .payload = payload};
    char *prefix = dir[0] ? bh_xasprintf("%s/", dir) : NULL;
    w.prefix = prefix ? prefix : "";
    int rc = git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w);
    free(prefix);
    if (tree != r->tree)
        git_tree_free(tree);
    return w.rc ? w.rc : rc < 0 ? BH_EIO : 0;
}

int src_repo_entry_read(struct src_repo *r, const struct src_repo_entry *e,
                        struct src_repo_blob *out, struct bh_err *err)
{
    return blob_read(r, git_tree_entry_id(e->obj), e->path, out, err);
}

/* ---- log ------------------------------------------------------------------ */

/* 1 when path is in c's tree, with its id in *out. */
static int entry_id(git_commit *c, const char *path, git_oid *out)
{
    git_tree *tree = NULL;
    git_tree_entry *e = NULL;
    int found = git_commit_tree(&tree, c) == 0 && git_tree_entry_bypath(&e, tree, path) == 0;
    if (found)
        git_oid_cpy(out, git_tree_entry_id(e));
    git_tree_entry_free(e);
    git_tree_free(tree);
    return found;
}

/* 1 when c changed path (a file or a folder) against its first parent. */
static int touches(git_commit *c, const char *path)
{
    git_oid a, b;
    git_commit *parent = NULL;
    int ha = entry_id(c, path, &a), hb = 0;
    if (git_commit_parentcount(c) > 0 && git_commit_parent(&parent, c, 0) == 0)
        hb = entry_id(parent, path, &b);
    git_commit_free(parent);
    return ha != hb || (ha && !git_oid_equal(&a, &b));
}

static int log_show(git_commit *c, src_repo_log_fn fn, void *payload)
{
    const git_signature *who = git_commit_author(c);
    struct src_repo_commit sc = {.time = (long long)git_commit_time(c),
                                 .author = who ? who->name : NULL,
                                 .summary = git_commit_summary(c),
                                 .message = git_commit_message(c)};
    git_oid_tostr(sc.id, sizeof(sc.id), git_commit_id(c));
    return fn(&sc, payload);
}

size_t src_repo_log(struct src_repo *r, const char *path, size_t max_visit, src_repo_log_fn fn,
                    void *payload)
{
    git_revwalk *rw = NULL;
    git_oid id;
    size_t visited = 0;
    int stop = git_revwalk_new(&rw, r->repo) < 0 || git_revwalk_sorting(rw, GIT_SORT_TIME) < 0 ||
               git_revwalk_push(rw, git_commit_id(r->head)) < 0;
    while (!stop && visited < max_visit && git_revwalk_next(&id, rw) == 0) {
        git_commit *c = NULL;
        visited++;
        if (git_commit_lookup(&c, r->repo, &id) < 0)
            break;
        if (!path[0] || touches(c, path))
            stop = log_show(c, fn, payload);
        git_commit_free(c);
    }
    git_revwalk_free(rw);
    return visited;
}
