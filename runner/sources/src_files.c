/* sources/src_files.c — a folder of documents as work items.
 *
 * The walk goes by directory descriptors (openat, fstatat with
 * AT_SYMLINK_NOFOLLOW, O_NOFOLLOW), never by joined paths: a symbolic link is
 * noted and left alone wherever it points, and a link swapped in for a file
 * or folder between the look and the open is refused by the open itself, so
 * nothing outside root is ever read. Each folder keeps one descriptor open
 * while its subfolders are walked, which bounds descriptors by the depth cap.
 *
 * Items come out sorted by their relative path as a whole (sorting each
 * folder's names would put "a/b" before "a-c", which byte order does not), so
 * the same tree always lists the same way, whatever the filesystem returns.
 *
 * A file that cannot be used (binary, too large, unreadable, a link, a pipe)
 * is a note, not an error: one odd file must not stop a batch of thousands,
 * and the notes say what was left out. A folder that cannot be read is an
 * error, because a listing without it would look complete. Text is text: a
 * document or a name that is not UTF-8 (Latin-1, say) is decoded lossily
 * (bh_utf8_lossy: U+FFFD for each ill-formed sequence) and kept, with a note;
 * globs still match the name's own bytes. */
#include "sources/src_files.h"

#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_glob.h"
#include "util/bh_hash.h"
#include "util/bh_utf8.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { F_PATH, F_TEXT, F_SIZE, F_COUNT };

const char *const src_files_fields[] = {
    [F_PATH] = "doc.path",
    [F_TEXT] = "doc.text",
    [F_SIZE] = "doc.size",
};
const size_t src_files_n_fields = BH_NELEM(src_files_fields);
_Static_assert(BH_NELEM(src_files_fields) == F_COUNT, "src_files_fields and the F_ enum disagree");

struct walk {
    const struct src_files_opts *o;
    const char *root;
    size_t max_bytes;
    struct src_item *items;
    size_t n_items, cap_items;
    struct src_note *notes;
    size_t n_notes, cap_notes;
    struct bh_err *err;
};

struct names {
    char **v;
    size_t n, cap;
};

/* --- text checks --------------------------------------------------------- */

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* A name becomes a key, a field and part of reports: a control byte (a
 * newline) would forge lines in them. Bytes that are not UTF-8 are decoded. */
static int name_ok(const char *name)
{
    for (const char *p = name; *p; p++)
        if (is_control((unsigned char)*p))
            return 0;
    return 1;
}

/* The path with every control byte and every byte outside well-formed UTF-8
 * written as \ooo, so a note can always be printed. */
static char *path_shown(const char *path)
{
    const unsigned char *s = (const unsigned char *)path;
    size_t n = strlen(path);
    struct bh_buf b;
    bh_buf_init(&b, 0);
    for (size_t i = 0; i < n;) {
        int ok = 0;
        size_t k = is_control(s[i]) ? 0 : bh_utf8_seq(path + i, n - i, &ok);
        k = ok ? k : 0;
        if (k) /* the default cap is far above any path */
            (void)bh_buf_append(&b, s + i, k);
        else
            (void)bh_buf_printf(&b, "\\%03o", s[i]);
        i += k ? k : 1;
    }
    return bh_buf_detach(&b);
}

/* --- results ------------------------------------------------------------- */

static void note(struct walk *w, const char *path, const char *fmt, ...) BH_PRINTF(3, 4);

static void note(struct walk *w, const char *path, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    w->notes = bh_xgrow(w->notes, &w->cap_notes, w->n_notes + 1, sizeof(*w->notes));
    w->notes[w->n_notes++] = (struct src_note){.path = path_shown(path), .why = bh_xstrdup(why)};
}

/* A note about a document that was read all the same. */
static void note_read(struct walk *w, const char *path, const char *fmt, ...) BH_PRINTF(3, 4);

static void note_read(struct walk *w, const char *path, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    note(w, path, "%s", why);
    w->notes[w->n_notes - 1].read = 1;
}

/* Takes text (len bytes). The key, doc.path and the part's path are the
 * path as text (see the file's comment); the version hashes the bytes read. */
static void item_add(struct walk *w, const char *raw, char *text, size_t len)
{
    char hex[BH_SHA256_HEX];
    bh_sha256_hex(text, len, hex);
    size_t replaced = 0;
    char *path = bh_utf8_lossy_dup(raw, strlen(raw), NULL, &replaced);
    if (replaced)
        note_read(w, raw, "file name is not UTF-8: read as '%s' (U+FFFD for each invalid byte)",
                  path);
    struct src_field *f = bh_xcalloc(F_COUNT, sizeof(*f));
    struct src_part *part = bh_xmalloc(sizeof(*part));
    *part = (struct src_part){.path = bh_xstrdup(path), .offset = 0, .length = len};
    char *size = bh_xasprintf("%zu", len);
    f[F_PATH] = (struct src_field){.value = bh_xstrdup(path), .len = strlen(path)};
    f[F_TEXT] = (struct src_field){.value = text, .len = len, .parts = part, .n_parts = 1};
    f[F_SIZE] = (struct src_field){.value = size, .len = strlen(size)};
    for (size_t i = 0; i < F_COUNT; i++)
        f[i].name = bh_xstrdup(src_files_fields[i]);
    w->items = bh_xgrow(w->items, &w->cap_items, w->n_items + 1, sizeof(*w->items));
    w->items[w->n_items++] = (struct src_item){
        .key = path, .version = bh_xstrdup(hex), .fields = f, .n_fields = F_COUNT};
}

/* Equal keys (names that differ only in bytes that are not UTF-8) order by
 * content, so which one keys_unique keeps does not depend on qsort. */
static int cmp_items(const void *pa, const void *pb)
{
    const struct src_item *a = pa, *b = pb;
    int d = strcmp(a->key, b->key);
    return d ? d : strcmp(a->version, b->version);
}

static int cmp_notes(const void *a, const void *b)
{
    return strcmp(((const struct src_note *)a)->path, ((const struct src_note *)b)->path);
}

/* --- matching ------------------------------------------------------------ */

static int any_match(const char *const *globs, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (bh_glob_match(globs[i], path))
            return 1;
    return 0;
}

static int wanted(const struct walk *w, const char *path)
{
    const struct src_files_opts *o = w->o;
    return (o->n_include == 0 || any_match(o->include, o->n_include, path)) &&
           !any_match(o->exclude, o->n_exclude, path);
}

/* A malformed glob would match nothing and leave files out silently. */
static int globs_check(const char *const *globs, size_t n, const char *what, struct bh_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *why = bh_glob_problem(globs[i]);
        if (why)
            return bh_err_set(err, BH_EINVAL, "%s glob '%s': %s", what, globs[i], why);
    }
    return 0;
}

/* --- reading one file ---------------------------------------------------- */

static const char *special_kind(mode_t m)
{
    if (S_ISFIFO(m))
        return "named pipe";
    if (S_ISSOCK(m))
        return "socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "device";
    return "special file";
}

/* Reads at most max_bytes; the file may have grown since it was looked at.
 * Returns 0, or -1 after noting why the file was not read. */
static int read_capped(struct walk *w, int fd, const char *path, struct bh_buf *b)
{
    char chunk[16384];
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof(chunk));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            note(w, path, "cannot read: %s", strerror(errno));
            return -1;
        }
        if (k == 0)
            return 0;
        if (bh_buf_append(b, chunk, (size_t)k) != 0) {
            note(w, path,
                 "grew past max_bytes (the cap is %zu) while it was read — raise "
                 "max_bytes or exclude it",
                 w->max_bytes);
            return -1;
        }
    }
}

/* O_NOFOLLOW and the second look at the open file close the gap in which a
 * file could be swapped for a link or a pipe after fstatat saw it. */
static int file_read(struct walk *w, int dfd, const char *name, const char *path, char **out,
                     size_t *len)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            note(w, path, "symbolic link, not followed");
        else
            note(w, path, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    struct bh_buf b;
    bh_buf_init(&b, w->max_bytes);
    int rc = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        note(w, path, "changed while it was read, not read");
    else
        rc = read_capped(w, fd, path, &b);
    close(fd);
    *len = b.len;
    if (rc == 0)
        *out = bh_buf_detach(&b);
    bh_buf_release(&b);
    return rc;
}

/* Returns 1 after noting why text is not a text document. A NUL anywhere
 * makes it binary, not only in the first bytes: templates render C strings,
 * so a document with a NUL would reach the model cut short, silently. */
static int not_text(struct walk *w, const char *path, const char *text, size_t len)
{
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        note(w, path, "binary: a NUL byte at offset %zu", (size_t)(nul - text));
        return 1;
    }
    return 0;
}

/* Text that is not UTF-8 decoded lossily, in place (*text, *len), noted. */
static void text_decode(struct walk *w, const char *path, char **text, size_t *len)
{
    size_t bad = bh_utf8_invalid_at(*text, *len), replaced = 0;
    if (bad == *len)
        return;
    char *t = bh_utf8_lossy_dup(*text, *len, len, &replaced);
    note_read(w, path,
              "not UTF-8 text (first invalid byte at offset %zu): read with %zu U+FFFD "
              "replacements",
              bad, replaced);
    free(*text);
    *text = t;
}

static void file_visit(struct walk *w, int dfd, const char *name, const char *path,
                       const struct stat *st)
{
    char *text = NULL;
    size_t len = 0;
    if (S_ISLNK(st->st_mode)) {
        note(w, path, "symbolic link, not followed");
    } else if (!S_ISREG(st->st_mode)) {
        note(w, path, "%s, not read", special_kind(st->st_mode));
    } else if (!name_ok(name)) {
        note(w, path, "file name holds a control character, not read");
    } else if (st->st_size > 0 && (unsigned long long)st->st_size > w->max_bytes) {
        note(w, path,
             "larger than max_bytes (%lld bytes, the cap is %zu) — raise max_bytes or exclude it",
             (long long)st->st_size, w->max_bytes);
    } else if (file_read(w, dfd, name, path, &text, &len) == 0) {
        if (not_text(w, path, text, len)) {
            free(text);
        } else {
            text_decode(w, path, &text, &len);
            item_add(w, path, text, len);
        }
    }
}

/* --- the walk ------------------------------------------------------------ */

static int folder_error(struct walk *w, const char *rel, const char *what, int e)
{
    return bh_err_set(w->err, BH_EIO,
                      "documents folder '%s': cannot %s '%s': %s — check its permissions or "
                      "exclude it",
                      w->root, what, rel[0] ? rel : ".", strerror(e));
}

static void names_release(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

/* A fresh descriptor for the listing, so dfd stays usable for openat. */
static int names_read(struct walk *w, int dfd, const char *rel, struct names *ns)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return folder_error(w, rel, "read", e);
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            ns->v = bh_xgrow(ns->v, &ns->cap, ns->n + 1, sizeof(*ns->v));
            ns->v[ns->n++] = bh_xstrdup(de->d_name);
        }
        errno = 0;
    }
    int e = errno;
    closedir(d);
    return e ? folder_error(w, rel, "read", e) : 0;
}

static int walk_dir(struct walk *w, int dfd, const char *rel, unsigned depth);

static int dir_visit(struct walk *w, int dfd, const char *name, const char *path, unsigned depth)
{
    const struct src_files_opts *o = w->o;
    if (strcmp(name, ".git") == 0 || any_match(o->exclude, o->n_exclude, path))
        return 0;
    if (!name_ok(name)) {
        note(w, path, "folder name holds a control character, not entered");
        return 0;
    }
    if (depth >= SRC_FILES_MAX_DEPTH) {
        note(w, path, "nested deeper than %d folders, not entered", SRC_FILES_MAX_DEPTH);
        return 0;
    }
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return folder_error(w, path, "open", errno);
    int rc = walk_dir(w, fd, path, depth + 1);
    close(fd);
    return rc;
}

static int entry_visit(struct walk *w, int dfd, const char *rel, const char *name, unsigned depth)
{
    char *path = rel[0] ? bh_xasprintf("%s/%s", rel, name) : bh_xstrdup(name);
    struct stat st;
    int rc = 0;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) /* gone since the listing: nothing to say */
            note(w, path, "cannot look at it: %s", strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        rc = dir_visit(w, dfd, name, path, depth);
    } else if (wanted(w, path)) {
        file_visit(w, dfd, name, path, &st);
    }
    free(path);
    return rc;
}

static int walk_dir(struct walk *w, int dfd, const char *rel, unsigned depth)
{
    struct names ns = {0};
    int rc = names_read(w, dfd, rel, &ns);
    for (size_t i = 0; rc == 0 && i < ns.n; i++)
        rc = entry_visit(w, dfd, rel, ns.v[i], depth);
    names_release(&ns);
    return rc;
}

static int root_open(struct walk *w, int *fd)
{
    struct stat st;
    if (stat(w->root, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return bh_err_set(w->err, BH_ENOTFOUND,
                              "documents folder '%s' does not exist — pass the folder that "
                              "holds the documents",
                              w->root);
        return bh_err_set(w->err, BH_EIO, "documents folder '%s': %s — check the path", w->root,
                          strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return bh_err_set(w->err, BH_ENOTFOUND,
                          "documents folder '%s' is not a folder — pass the folder that holds "
                          "the documents, not a file",
                          w->root);
    *fd = open(w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0)
        return folder_error(w, "", "open", errno);
    return 0;
}

/* Two names that differ only in bytes that are not UTF-8 decode to the same
 * key; a key names one item, so the later one (sorted) is left out, noted. */
static void keys_unique(struct walk *w)
{
    size_t kept = 0;
    for (size_t i = 0; i < w->n_items; i++) {
        if (kept > 0 && strcmp(w->items[kept - 1].key, w->items[i].key) == 0) {
            note(w, w->items[i].key,
                 "its name read as text is the same as another file's, "
                 "not read — rename one of them");
            src_item_release(&w->items[i]);
            continue;
        }
        w->items[kept++] = w->items[i];
    }
    w->n_items = kept;
}

/* --- public -------------------------------------------------------------- */

int src_files_list(struct src_item **out, size_t *n, struct src_note **notes, size_t *n_notes,
                   const struct src_files_opts *o, struct bh_err *err)
{
    struct walk w = {
        .o = o,
        .root = o->root ? o->root : ".",
        .max_bytes = o->max_bytes ? o->max_bytes : SRC_FILES_DEFAULT_MAX,
        .err = err,
    };
    int fd = -1;
    int rc = globs_check(o->include, o->n_include, "include", err);
    if (rc == 0)
        rc = globs_check(o->exclude, o->n_exclude, "exclude", err);
    if (rc == 0)
        rc = root_open(&w, &fd);
    if (rc == 0)
        rc = walk_dir(&w, fd, "", 0);
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        src_items_free(w.items, w.n_items);
        src_notes_free(w.notes, w.n_notes);
        return rc;
    }
    if (w.n_items > 1)
        qsort(w.items, w.n_items, sizeof(*w.items), cmp_items);
    keys_unique(&w);
    if (w.n_notes > 1)
        qsort(w.notes, w.n_notes, sizeof(*w.notes), cmp_notes);
    *out = w.items;
    *n = w.n_items;
    *notes = w.notes;
    *n_notes = w.n_notes;
    return 0;
}

void src_notes_free(struct src_note *notes, size_t n)
{
    if (!notes)
        return;
    for (size_t i = 0; i < n; i++) {
        free(notes[i].path);
        free(notes[i].why);
    }
    free(notes);
}
