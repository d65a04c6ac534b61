/* sources/src_git.h — pull requests of a git repository as work items, read
 * with libgit2 from the object database (never the working tree).
 * Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef SRC_GIT_H
#define SRC_GIT_H

#include <stddef.h>

struct bh_err;

/* The whole files behind a diff part that shows them only in hunks (a
 * modified, renamed or copied text file). Detectors read them as well as the
 * part: a key whose BEGIN line lies outside every hunk still labels the part,
 * whose context lines may show the key's body. */
struct src_whole {
    char *old_text, *new_text; /* the file before and after, NUL-terminated; old_len and
                                  new_len bytes (a file forced to diff as text may hold
                                  NULs). Both NULL when unread is set */
    size_t old_len, new_len;
    char *unread; /* why they were not read (over the cap, a libgit2 error):
                     unknown means top, so the part is the top label */
};

/* One file's share of a content field: value[offset, offset + length) is
 * about path — and about old_path too, for a rename or copy. Path rules label
 * content per part, as the join over every path of the part. */
struct src_part {
    char *path; /* repository-relative, '/'-separated (a rename: the new path) */
    size_t offset, length;
    char *old_path;          /* a rename or copy: the path it came from; else NULL */
    struct src_whole *whole; /* pr.diff: see struct src_whole; NULL when the part shows
                                all there is of the file (added, deleted, binary — git
                                prints no content —, a submodule, an unchanged blob).
                                Owned by the field src_git made (src_items_free frees it);
                                a copy of the part (one file's part, a tool result)
                                borrows it and must not outlive the item */
};

struct src_field {
    char *name;             /* e.g. "pr.diff" */
    char *value;            /* NUL-terminated text, or NULL when it could not be read */
    size_t len;             /* bytes of value (it may hold NULs: binary documents are
                               skipped, but a text file can still contain one) */
    char *error;            /* when value is NULL: why (e.g. over the diff cap), else NULL */
    struct src_part *parts; /* content fields: the file each byte range is about, in order,
                               covering value without gaps (pr.diff: one per file of the
                               diff; doc.text: one, the document's path); else NULL */
    size_t n_parts;
};

struct src_item {
    char *key;     /* stable identity within a repository: the ref name (as
                      UTF-8 text, see src_git_list) */
    char *version; /* what the item's content depends on:
                      "<merge-base oid>..<head oid>"; an item that could not
                      be read: "unreadable:<head oid or ref>"; from a forge's
                      list, ";forge:<hash of its title, body, ...>" follows */
    struct src_field *fields;
    size_t n_fields;
    int empty;  /* git: the diff against base is empty (a merged pull
                   request whose head the forge keeps); callers skip it
                   unless asked to keep it */
    char *note; /* what the user should hear about this item, or NULL:
                   why it could not be read, or which paths had bytes that
                   are not UTF-8 (a lazy item: set when it is first loaded) */
    int lazy;   /* its fields are read when needed (src_loader_load) and
                   may be released (src_item_unload); fields is NULL while
                   they are not loaded. 0: the fields came with the list */
    char *ref;  /* private to sources/: the ref or revision a lazy item is
                   read again from, as given (not decoded) */
};

struct src_git_opts {
    const char *repo;              /* path to the repository (bare or not), or to its working
                                      tree; parents are not searched; NULL means "." */
    const char *pulls;             /* ref glob; default "refs/pull/ * /head" (without spaces) */
    const char *const *more_pulls; /* further globs (--pulls given again): a ref
                              matching any glob is listed, once */
    size_t n_more_pulls;
    const char *const *exclude; /* refs matching any of these (fnmatch without flags,
                              as the globs above: '*' crosses '/') are left out */
    size_t n_exclude;
    const char *base; /* base ref or revision; default "main" */
    size_t max_diff;  /* cap on pr.diff in bytes; default 4 MiB. A larger diff leaves
                         that item's pr.diff without a value and with an error that
                         the tasks reading it report; the other items are unaffected.
                         The whole files of an item's parts (struct src_whole) share
                         a second budget of the same size: a part past it is unread */
    const char *head; /* a revision ("HEAD", "origin/feature", a commit id): instead of
                         the refs matching pulls, ONE item from base to it, as a CI job
                         checks the pull request it was started for. Its key and pr.ref
                         are the revision as given; pr.number is the first all-digit
                         component of the CI's ref when the environment names one
                         (GITHUB_REF "refs/pull/123/merge", CI_MERGE_REQUEST_IID), else "" */
    int forge_pad;    /* items get src_forge_fields as empty strings (src_forge_pad)
                         when their fields are made */
};

/* Field names, in this order, of every item: pr.number, pr.ref, pr.title,
 * pr.files, pr.stats, pr.diff. */
extern const char *const src_git_fields[];
extern const size_t src_git_n_fields;

/* Lists the PRs matching opts->pulls or more_pulls and no exclude, once each,
 * ordered by PR number (the number is the first all-digit component of the
 * ref name; refs without one sort after, by
 * name). pr.diff is the unified diff from the merge base of base and head to
 * head; binary files appear as "Binary files a/x and b/x differ".
 * pr.files: one line per file, "<status>\t<path>" with status A, M, D, or
 * "R\t<old> -> <new>" for renames ("C\t..." for copies, which are not looked
 * for). Renames are paired as git pairs them by default: renames on, copies
 * off, similarity of 50% or more, at most 1000 candidates a file, whitespace
 * counted, whatever the repository's diff.renames and diff.renameLimit say;
 * a move below the threshold is a delete and an add.
 * pr.stats: "<n> files changed, <i> insertions(+), <d> deletions(-)".
 * pr.title: the summary line of the head commit.
 * Every field's len is strlen(value) (a NUL in a diff becomes '?'); pr.diff
 * has one part per file in diff order, about the new path (a deleted file:
 * the old path) and, for a rename, the old path in old_path, unquoted; a
 * modified or renamed text file's part has its whole files (src_whole); an
 * oversize pr.diff has no parts.
 * Text is UTF-8: diff lines, paths, the title and the ref that are not are
 * decoded lossily (each maximal ill-formed subpart becomes U+FFFD) and the
 * item's note names the paths (and the title); the item is never failed for it.
 * An item whose diff is empty (its head already merged into base) has empty set.
 * One item that cannot be read (a ref that is not a commit, a head that shares
 * no history with base, an object libgit2 cannot read, a file list over
 * max_diff) never fails the listing: it is listed with pr.number, pr.ref and
 * (when the head is a commit) pr.title, every other field without a value and
 * with the reason as its error (the tasks reading them fail with it), and the
 * reason as its note. A diff over max_diff fails pr.diff only (see max_diff).
 * On success *out (owned; free with src_items_free) holds *n items; no
 * matching ref is not an error: *out is NULL and *n is 0. Errors, each naming
 * the repository: BH_ENOTFOUND (repository or base not found), BH_EIO (listing
 * the refs failed). *out and *n are untouched on error. */
int src_git_list(struct src_item **out, size_t *n, const struct src_git_opts *opts,
                 struct bh_err *err);

/* A repository kept open to read lazy items' fields (src_git_index). */
struct src_loader;

/* Lists as src_git_list does, but reads only what must be known before a
 * run starts: each item's key, version and empty flag (empty: the merge
 * base and the head have the same tree; no diff is made). An item that
 * cannot be listed (a ref that is not a commit, a head that shares no
 * history with base) is listed failed, fields and note included, as
 * src_git_list lists it. Every other item is lazy: its fields are NULL
 * until src_loader_load reads them from *loader (owned; src_loader_free
 * after the items are done with). Its fields are then what src_git_list
 * gives, except that an item whose objects cannot be read or whose file
 * list is over max_diff keeps its "<merge base>..<head>" version (its
 * fields carry the reason, and its note says it). Errors as src_git_list;
 * nothing is set on error. */
int src_git_index(struct src_item **out, size_t *n, struct src_loader **loader,
                  const struct src_git_opts *opts, struct bh_err *err);

/* Reads a lazy item's fields (and its note, the first time: text that is
 * not UTF-8, or why it cannot be read) from the commits its version names,
 * so a field read again is the same text. Never fails: what cannot be read
 * becomes the fields' error, as in src_git_list. Returns 1 when it read the
 * fields, 0 when there was nothing to do (not lazy, or loaded already). */
int src_loader_load(struct src_loader *l, struct src_item *it);
void src_loader_free(struct src_loader *l); /* NULL is fine */

/* Frees a lazy item's fields; its key, version, note and flags stay, so
 * src_loader_load can read them again. An item that is not lazy is left as
 * it is. */
void src_item_unload(struct src_item *it);

/* The paths one line of pr.files is about (n bytes, no newline): returns the
 * path after the tab, or after " -> " for a rename or copy (the new path),
 * its length in *len; when old is not NULL, *old is the path a rename or copy
 * came from (*old_len its length), else NULL and 0. All point into line. A
 * rename is about both paths: label it by the join over them. The one reader
 * of the format written above. */
const char *src_git_files_line_path(const char *line, size_t n, size_t *len, const char **old,
                                    size_t *old_len);

/* Frees what one item owns (not the item itself) and zeroes it. */
void src_item_release(struct src_item *it);

/* Frees items and everything they own. NULL is fine. */
void src_items_free(struct src_item *items, size_t n);

/* Borrowed value of a field, or NULL. */
const char *src_item_field(const struct src_item *item, const char *name);

/* The field called name (borrowed), or NULL when the item has no such field. */
const struct src_field *src_item_find(const struct src_item *item, const char *name);

#endif
