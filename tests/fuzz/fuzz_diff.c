/* tests/fuzz/fuzz_diff.c — the diff splitter: src_git_list turns the diff of
 * a pull request into pr.diff and its parts (one per file, in libgit2's
 * callbacks: there is no text-only splitter), pr.files and pr.stats, and the
 * engine reads pr.files back into for_each elements. Each input becomes two
 * commits of a scratch repository (base on main, head on refs/pull/1/head)
 * and is listed. Byte 0 picks the diff cap; the rest is files separated by
 * 0x1e, each a flag byte (bit 0: in base, bit 1: in head, bit 2: head is
 * base plus the head text, bit 3: executable in head) then path, base text
 * and head text separated by 0x1f. The parts must cover pr.diff in order
 * without gaps, each about a non-empty path; pr.files must have as many
 * lines as pr.diff has parts, and the elements' keys must be unique. */
#include <git2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "scratch.h"
#include "sources/src_git.h"
#include "util/bh_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One repository for the session, made afresh now and then so that its
 * loose objects stay few. */
static git_repository *repo_get(void)
{
    static git_repository *repo;
    static unsigned uses;
    if (repo && ++uses % 1000 == 0) {
        git_repository_free(repo);
        repo = NULL;
        fuzz_scratch_empty();
    }
    if (!repo) {
        git_libgit2_init(); /* never shut down: the process ends first */
        if (git_repository_init(&repo, fuzz_scratch_dir("diff"), 1) != 0)
            abort();
    }
    return repo;
}

/* Field i (0x1f-separated) of rec: *p and *n, or 0 when rec has fewer. */
static int field(const uint8_t *rec, size_t len, int i, const uint8_t **p, size_t *n)
{
    const uint8_t *s = rec, *end = rec + len;
    for (; i > 0; i--) {
        const uint8_t *sep = memchr(s, 0x1f, (size_t)(end - s));
        if (!sep)
            return 0;
        s = sep + 1;
    }
    const uint8_t *sep = memchr(s, 0x1f, (size_t)(end - s));
    *p = s;
    *n = sep ? (size_t)(sep - s) : (size_t)(end - s);
    return 1;
}

/* 1 when path and a file already in idx cannot both be ("a" and "a/b"):
 * libgit2 1.5 accepts both in an index, then fails to write the tree. */
static int folder_clash(git_index *idx, const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < git_index_entrycount(idx); i++) {
        const char *other = git_index_get_byindex(idx, i)->path;
        size_t m = strlen(other);
        if ((m < n && strncmp(path, other, m) == 0 && path[m] == '/') ||
            (n < m && strncmp(other, path, n) == 0 && other[n] == '/'))
            return 1;
    }
    return 0;
}

/* Adds one file of the input to idx as it is at base (head 0) or head. */
static void file_add(git_repository *repo, git_index *idx, const uint8_t *rec, size_t len, int head)
{
    const uint8_t *path = NULL, *base_text = NULL, *head_text = NULL;
    size_t path_n = 0, base_n = 0, head_n = 0;
    unsigned flags = rec[0];
    if (!(flags & (head ? 2 : 1)) || !field(rec + 1, len - 1, 0, &path, &path_n) || path_n == 0 ||
        path_n > 200)
        return;
    field(rec + 1, len - 1, 1, &base_text, &base_n);
    field(rec + 1, len - 1, 2, &head_text, &head_n);
    char name[208];
    memcpy(name, path, path_n);
    name[path_n] = '\0';
    size_t n = head ? (flags & 4 ? base_n + head_n : head_n) : base_n;
    char *text = malloc(n + 1);
    if (!text)
        abort();
    if (head && flags & 4) {
        if (base_n)
            memcpy(text, base_text, base_n);
        if (head_n)
            memcpy(text + base_n, head_text, head_n);
    } else if (n) {
        memcpy(text, head ? head_text : base_text, n);
    }
    if (folder_clash(idx, name)) {
        free(text);
        return;
    }
    git_index_entry e = {0};
    e.path = name;
    e.mode = head && flags & 8 ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
    /* a path git refuses is left out */
    if (git_blob_create_from_buffer(&e.id, repo, text, n) == 0)
        git_index_add(idx, &e);
    free(text);
}

/* A commit of the files as they are at base or head, on ref. */
static int commit_make(git_repository *repo, const uint8_t *data, size_t size, int head,
                       const char *ref, git_commit *parent, git_oid *out)
{
    git_index *idx = NULL;
    git_oid tree_id;
    git_tree *tree = NULL;
    git_signature *sig = NULL;
    /* A fresh index each time, so that nothing of one input's trees stays
     * in the repository's index for the next. */
    int rc = git_index_new(&idx);
    for (const uint8_t *p = data, *end = data + size; rc == 0 && p < end;) {
        const uint8_t *sep = memchr(p, 0x1e, (size_t)(end - p));
        size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
        if (n > 0)
            file_add(repo, idx, p, n, head);
        p += n + 1;
    }
    if (rc == 0)
        rc = git_index_write_tree_to(&tree_id, idx, repo);
    if (rc == 0)
        rc = git_tree_lookup(&tree, repo, &tree_id);
    if (rc == 0)
        rc = git_signature_new(&sig, "f", "f@example.org", 1700000000, 0);
    const git_commit *parents[] = {parent};
    if (rc == 0)
        rc = git_commit_create(out, repo, NULL, sig, sig, NULL, head ? "head\n" : "base\n", tree,
                               parent ? 1 : 0, parents);
    git_reference *r = NULL;
    if (rc == 0)
        rc = git_reference_create(&r, repo, ref, out, 1, NULL);
    git_reference_free(r);
    git_signature_free(sig);
    git_tree_free(tree);
    git_index_free(idx);
    return rc;
}

static void check_field(const struct src_field *f)
{
    size_t at = 0;
    for (size_t i = 0; i < f->n_parts; i++) {
        const struct src_part *p = &f->parts[i];
        if (p->offset != at || !p->path || !p->path[0])
            abort();
        at += p->length;
    }
    if (f->n_parts && at != f->len)
        abort();
}

static void check_item(const struct src_item *it)
{
    for (size_t i = 0; i < it->n_fields; i++)
        check_field(&it->fields[i]);
    const char *files = src_item_field(it, "pr.files");
    struct eng_elem *v = NULL;
    size_t n = 0;
    eng_elems_from_files(files, &v, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(v[i].key, v[j].key) == 0)
                abort();
    /* one line of pr.files per part of pr.diff: a file name must not forge
     * or hide a line */
    const struct src_field *diff = src_item_find(it, "pr.diff");
    if (files && diff && diff->value && diff->n_parts && n != diff->n_parts)
        abort();
    eng_elems_free(v, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    git_repository *repo = repo_get();
    git_oid base_id, head_id;
    git_commit *base = NULL;
    if (commit_make(repo, data + 1, size - 1, 0, "refs/heads/main", NULL, &base_id) != 0 ||
        git_commit_lookup(&base, repo, &base_id) != 0)
        return 0; /* a tree git cannot write ("a" both a file and a folder) */
    int rc = commit_make(repo, data + 1, size - 1, 1, "refs/pull/1/head", base, &head_id);
    git_commit_free(base);
    if (rc != 0)
        return 0;
    struct src_git_opts o = {.repo = fuzz_scratch_dir("diff"),
                             .max_diff = data[0] & 1 ? 64 + data[0] * 4u : 0};
    struct src_item *items = NULL;
    size_t n = 0;
    struct bh_err err = {0};
    if (src_git_list(&items, &n, &o, &err) == 0) {
        for (size_t i = 0; i < n; i++)
            check_item(&items[i]);
        src_items_free(items, n);
    }
    return 0;
}
