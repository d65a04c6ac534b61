/* sources/src_forge.h — the open pull requests a forge lists (`gh pr list
 * --json`, GitLab's merge request list) as work items of a git repository:
 * one per listed pull request, at its head commit, instead of every ref a
 * glob matches (forges keep refs of merged and closed pull requests too).
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef SRC_FORGE_H
#define SRC_FORGE_H

#include <stddef.h>

struct bh_err;
struct src_item;
struct src_note;

/* The cap on a pull request list file: 64 MiB. */
#define SRC_FORGE_MAX_FILE ((size_t)64 << 20)

/* The fields only a forge knows, in this order: pr.body, pr.author,
 * pr.labels (label names joined by ","), pr.draft ("true" or "false"). */
extern const char *const src_forge_fields[];
extern const size_t src_forge_n_fields;

/* One pull request (or merge request) of the list. */
struct src_forge_pr {
    char *key;    /* "refs/pull/<n>/head" (GitHub) or "refs/merge-requests/<n>/head" */
    char *number; /* decimal */
    char *title, *body, *author, *labels; /* never NULL: "" when the forge gave null */
    int draft;
    char *head; /* the head commit id, hex */
    char *base; /* the branch it merges into (baseRefName, target_branch) */
};

/* Parses a list: a JSON array of objects, all of gh's shape (number, title,
 * body, author.login, labels[].name, isDraft, headRefOid, baseRefName) or all
 * of GitLab's (iid, title, description, author.username, labels[] as strings
 * or {name}, draft or work_in_progress, sha, target_branch), told apart by the
 * keys of the first element. file names text in messages. On success *out
 * (owned; src_forge_prs_free) holds *n entries in file order (an empty array:
 * NULL and 0). Errors: BH_EINVAL with err's file, line and column (a syntax
 * error) or JSON path (e.g. "[2].headRefOid": a missing key, a value of the
 * wrong type, a head that is not a commit id), saying what was expected. */
int src_forge_parse(struct src_forge_pr **out, size_t *n, const char *text, size_t len,
                    const char *file, struct bh_err *err);
void src_forge_prs_free(struct src_forge_pr *prs, size_t n); /* NULL is fine */

struct src_forge_opts {
    const char *file; /* the list (--pulls-from) */
    const char *repo; /* the repository; NULL means "." */
    const char *base; /* --base: the base of every pull request; NULL: each its own,
                         origin/<name> when that resolves, else <name> */
    size_t max_diff;  /* as src_git_opts.max_diff; 0 for the default */
    int skip_drafts;  /* leave drafts out */
};

/* Reads opts->file (at most SRC_FORGE_MAX_FILE bytes) and makes one item per
 * listed pull request, ordered as listed: the fields of src_git_list's items
 * (pr.title is the forge's title; key and pr.ref are the pull request's ref,
 * so resumes and caches match runs with --pulls) followed by
 * src_forge_fields. A pull request whose head commit is not in the
 * repository, whose base does not resolve, or whose diff cannot be made is
 * still an item: its pr.files, pr.stats and pr.diff have no value and an
 * error saying why and what to do (the tasks that read them fail with it),
 * and a note in *notes (path: the key) says so too. *notes (owned;
 * src_notes_free) and *n_notes: those, and one note when drafts were left
 * out. *out (owned; src_items_free) and *n as src_git_list. Errors:
 * BH_EINVAL (the file is malformed or over the cap), BH_ENOTFOUND (the file
 * or the repository cannot be opened), BH_EIO. */
int src_forge_list(struct src_item **out, size_t *n, struct src_note **notes, size_t *n_notes,
                   const struct src_forge_opts *opts, struct bh_err *err);

/* Items of a ref-based listing (--pulls, --range) get src_forge_fields as
 * empty strings: no forge said anything, and a template that names them
 * renders nothing rather than failing. */
void src_forge_pad(struct src_item *items, size_t n);

#endif
