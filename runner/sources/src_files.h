/* sources/src_files.h — a folder of documents as work items, one per text
 * file, read without following symbolic links and never outside the folder.
 * Items are struct src_item (sources/src_git.h) and are freed with
 * src_items_free. Functions return 0 or a negative BH_E* code and fill *err. */
#ifndef SRC_FILES_H
#define SRC_FILES_H

#include <stddef.h>

#include "sources/src_git.h"

struct bh_err;

/* Cap on one document when max_bytes is 0. */
#define SRC_FILES_DEFAULT_MAX ((size_t)1 << 20)
/* Folders nested deeper than this below root are noted, not entered. */
#define SRC_FILES_MAX_DEPTH 64

struct src_files_opts {
    const char *root;           /* the folder; NULL means "." */
    const char *const *include; /* globs (util/bh_glob.h) of files to read, relative to
                                   root, '/'-separated; none means every file */
    size_t n_include;
    const char *const *exclude; /* globs of files to leave out; a folder matching one
                                   is not entered at all (as in .gitignore) */
    size_t n_exclude;
    size_t max_bytes; /* larger files are skipped with a note; 0 means
                         SRC_FILES_DEFAULT_MAX */
};

#define SRC_FILES_OPTS_INIT                                                                        \
    {                                                                                              \
        NULL, NULL, 0, NULL, 0, 0                                                                  \
    }

/* A file that include and exclude let through but that was not read (or a
 * folder that was not entered), and why. */
struct src_note {
    char *path; /* relative to root; bytes that are not printable UTF-8 as \ooo */
    char *why;  /* e.g. "binary: a NUL byte at offset 9" */
    int read;   /* 1: the document was still read (its text or name decoded as UTF-8);
                   0: it was skipped */
};

/* Field names, in this order, of every item: doc.path, doc.text, doc.size. */
extern const char *const src_files_fields[];
extern const size_t src_files_n_fields;

/* Lists the documents under o->root, in byte order of their relative paths.
 * An item per regular file that matches an include glob (or any file when
 * there are none) and no exclude glob: key = the relative path, version =
 * the hex SHA-256 of the content; fields doc.path (the relative path),
 * doc.text (the content, len bytes, one part covering it about the path) and
 * doc.size (the length in decimal). A ".git" folder is never entered.
 * Files that match but cannot be used are skipped with a note, not an error:
 * binary (a NUL byte anywhere), not UTF-8, over
 * max_bytes, not readable, a symbolic link (never followed, whatever it
 * points at), a special file, a name that is not printable UTF-8; a folder
 * nested too deep is noted too.
 * On success *out (owned, src_items_free) holds *n items and *notes (owned,
 * src_notes_free) *n_notes notes sorted by path; either list may be empty
 * (NULL and 0). Errors: BH_EINVAL (a malformed include or exclude glob),
 * BH_ENOTFOUND (root does not exist or is not a folder), BH_EIO (root or a
 * folder below it cannot be read: exclude it to go on without it), each
 * naming what is wrong and what to do. Nothing is set on error. */
int src_files_list(struct src_item **out, size_t *n, struct src_note **notes, size_t *n_notes,
                   const struct src_files_opts *o, struct bh_err *err);

/* Frees notes and their strings. NULL is fine. */
void src_notes_free(struct src_note *notes, size_t n);

#endif
