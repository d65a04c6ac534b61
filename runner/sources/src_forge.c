/* sources/src_forge.c — open pull requests from a forge's list.
 *
 * A forge keeps refs/pull/N/head for every pull request it ever had, merged
 * and closed ones too, so a glob over refs reviews the dead with the living.
 * The forge's own list (gh pr list --state open --json ..., GitLab's merge
 * request list) names exactly the open ones and the commit each is at. We
 * parse it (a pure function, unit-tested), then make each item with
 * src_git_list at that commit, and give it the ref's name as key so a run
 * from a list and a run from refs resume and cache the same items.
 *
 * One pull request that cannot be made (its head not fetched, its base
 * branch unknown, no shared history) is an item whose content fields carry
 * the error: the others are reviewed, and the run says which failed. A list
 * that cannot be read at all is a usage error: nothing is guessed from half
 * a file.
 *
 * The forge's text fields (title, body, author, labels) come from people
 * outside the repository's history: they are labelled by the pipeline like
 * any source field, and detectors read them. */
#include "sources/src_forge.h"

#include "sources/src_files.h"
#include "sources/src_git.h"
#include "sources/src_libgit2.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_hash.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libgit2 1.5 knows SHA-1 only; room for a SHA-256 id all the same. */
#define HEXSZ 64

enum { FF_BODY, FF_AUTHOR, FF_LABELS, FF_DRAFT, FF_COUNT };
const char *const src_forge_fields[] = {[FF_BODY] = "pr.body",
                                        [FF_AUTHOR] = "pr.author",
                                        [FF_LABELS] = "pr.labels",
                                        [FF_DRAFT] = "pr.draft"};
const size_t src_forge_n_fields = FF_COUNT;
_Static_assert(BH_NELEM(src_forge_fields) == FF_COUNT,
               "src_forge_fields and the FF_ enum disagree");

/* The two shapes, as data: which key holds what. */
struct shape {
    const char *number, *title, *body, *author, *author_name, *labels, *draft, *draft_old, *head,
        *base;
    const char *ref_dir; /* the key is ref_dir + number + "/head" */
    const char *expect;  /* what a user should give */
};

static const struct shape shapes[] = {
    {"number", "title", "body", "author", "login", "labels", "isDraft", NULL, "headRefOid",
     "baseRefName", "refs/pull/",
     "'gh pr list --state open --json number,title,body,author,labels,isDraft,headRefOid,"
     "baseRefName'"},
    {"iid", "title", "description", "author", "username", "labels", "draft", "work_in_progress",
     "sha", "target_branch", "refs/merge-requests/",
     "the JSON of GET /projects/:id/merge_requests?state=opened"},
};

/* --- parsing ------------------------------------------------------------ */

struct parse {
    const struct shape *s;
    const char *file;
    size_t index;
    struct bh_err *err;
};

static int bad(struct parse *ps, const char *key, const char *fmt, const char *got)
{
    char path[128];
    snprintf(path, sizeof(path), "[%zu]%s%s", ps->index, key ? "." : "", key ? key : "");
    bh_err_at(ps->err, ps->file, 0, 0, path);
    return bh_err_set(ps->err, BH_EINVAL, "expected %s%s%s — give the output of %s", fmt,
                      got ? ", got " : "", got ? got : "", ps->s->expect);
}

static const char *type_name(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return v ? "null" : "nothing (the key is missing)";
    }
}

/* A string; null gives "" when nullable. */
static int get_text(struct parse *ps, const json_t *o, const char *key, int nullable, char **out)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_string(v)) {
        *out = bh_xstrndup(json_string_value(v), json_string_length(v));
        return 0;
    }
    if (nullable && json_is_null(v)) {
        *out = bh_xstrdup("");
        return 0;
    }
    return bad(ps, key, nullable ? "a string or null" : "a string", type_name(v));
}

static int get_number(struct parse *ps, const json_t *o, char **out)
{
    const json_t *v = json_object_get(o, ps->s->number);
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return bad(ps, ps->s->number, "a pull request number (a positive integer)",
                   json_is_integer(v) ? "a number below 1" : type_name(v));
    *out = bh_xasprintf("%lld", (long long)json_integer_value(v));
    return 0;
}

static int get_author(struct parse *ps, const json_t *o, char **out)
{
    const json_t *v = json_object_get(o, ps->s->author);
    if (json_is_null(v)) { /* a deleted account */
        *out = bh_xstrdup("");
        return 0;
    }
    const json_t *name = json_object_get(v, ps->s->author_name);
    if (!json_is_object(v) || !json_is_string(name))
        return bad(ps, ps->s->author,
                   ps->s == &shapes[0] ? "an object with \"login\"" : "an object with \"username\"",
                   type_name(json_is_object(v) ? name : v));
    *out = bh_xstrdup(json_string_value(name));
    return 0;
}

/* Label names joined by ",": gh gives {"name": ...}, GitLab strings (or
 * objects with with_labels_details). */
static int get_labels(struct parse *ps, const json_t *o, char **out)
{
    const json_t *v = json_object_get(o, ps->s->labels);
    if (!json_is_array(v))
        return bad(ps, ps->s->labels, "an array of labels", type_name(v));
    struct bh_buf b;
    bh_buf_init(&b, SRC_FORGE_MAX_FILE);
    size_t i;
    const json_t *l;
    json_array_foreach(v, i, l)
    {
        const json_t *name = json_is_object(l) ? json_object_get(l, "name") : l;
        if (!json_is_string(name)) {
            bh_buf_release(&b);
            char key[64];
            snprintf(key, sizeof(key), "%s[%zu]", ps->s->labels, i);
            return bad(ps, key, "a label name or an object with \"name\"", type_name(name));
        }
        if ((i && bh_buf_puts(&b, ",") != 0) || bh_buf_puts(&b, json_string_value(name)) != 0) {
            bh_buf_release(&b);
            return bad(ps, ps->s->labels, "fewer labels", NULL);
        }
    }
    *out = bh_buf_detach(&b);
    return 0;
}

static int get_draft(struct parse *ps, const json_t *o, int *draft)
{
    const json_t *v = json_object_get(o, ps->s->draft);
    if (!v && ps->s->draft_old)
        v = json_object_get(o, ps->s->draft_old);
    if (!json_is_boolean(v))
        return bad(ps, ps->s->draft, "true or false", type_name(v));
    *draft = json_is_true(v);
    return 0;
}

/* A full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits. */
static int get_head(struct parse *ps, const json_t *o, char **out)
{
    const json_t *v = json_object_get(o, ps->s->head);
    const char *s = json_string_value(v);
    size_t len = s ? strlen(s) : 0;
    if (!s || (len != 40 && len != 64) || strspn(s, "0123456789abcdefABCDEF") != len)
        return bad(ps, ps->s->head, "a commit id (40 hex digits)",
                   s ? "another string" : type_name(v));
    *out = bh_xstrdup(s);
    return 0;
}

static int pr_parse(struct parse *ps, const json_t *o, struct src_forge_pr *pr)
{
    if (!json_is_object(o))
        return bad(ps, NULL, "an object (one pull request)", type_name(o));
    int rc = get_number(ps, o, &pr->number);
    if (rc == 0)
        rc = get_text(ps, o, ps->s->title, 0, &pr->title);
    if (rc == 0)
        rc = get_text(ps, o, ps->s->body, 1, &pr->body);
    if (rc == 0)
        rc = get_author(ps, o, &pr->author);
    if (rc == 0)
        rc = get_labels(ps, o, &pr->labels);
    if (rc == 0)
        rc = get_draft(ps, o, &pr->draft);
    if (rc == 0)
        rc = get_head(ps, o, &pr->head);
    if (rc == 0)
        rc = get_text(ps, o, ps->s->base, 0, &pr->base);
    if (rc == 0)
        pr->key = bh_xasprintf("%s%s/head", ps->s->ref_dir, pr->number);
    return rc;
}

/* Which shape the first element has; NULL when neither. */
static const struct shape *shape_of(const json_t *first)
{
    for (size_t i = 0; i < BH_NELEM(shapes); i++)
        if (json_object_get(first, shapes[i].number) || json_object_get(first, shapes[i].head))
            return &shapes[i];
    return NULL;
}

static int syntax_error(const json_error_t *je, const char *file, struct bh_err *err)
{
    bh_err_at(err, file, je->line > 0 ? je->line : 0, je->column > 0 ? je->column : 0, NULL);
    return bh_err_set(err, BH_EINVAL,
                      "not valid JSON: %s — give the output of 'gh pr list --json ...' or of "
                      "GitLab's merge request list",
                      je->text);
}

int src_forge_parse(struct src_forge_pr **out, size_t *n, const char *text, size_t len,
                    const char *file, struct bh_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return syntax_error(&je, file, err);
    struct parse ps = {.s = &shapes[0], .file = file, .err = err};
    struct src_forge_pr *prs = NULL;
    size_t made = 0;
    int rc = 0;
    if (!json_is_array(root)) {
        bh_err_at(err, file, 0, 0, "$");
        rc = bh_err_set(err, BH_EINVAL,
                        "expected an array of pull requests, got %s — give the "
                        "output of %s",
                        type_name(root), shapes[0].expect);
    } else if (json_array_size(root) > 0 && !(ps.s = shape_of(json_array_get(root, 0)))) {
        ps.s = &shapes[0];
        rc = bad(&ps, NULL,
                 "a pull request (\"number\" and \"headRefOid\") or a GitLab merge "
                 "request (\"iid\" and \"sha\")",
                 json_is_object(json_array_get(root, 0)) ? "an object with neither"
                                                         : type_name(json_array_get(root, 0)));
    }
    if (rc == 0 && json_array_size(root) > 0)
        prs = bh_xcalloc(json_array_size(root), sizeof(*prs));
    for (; rc == 0 && made < json_array_size(root); made++) {
        ps.index = made;
        rc = pr_parse(&ps, json_array_get(root, made), &prs[made]);
    }
    json_decref(root);
    if (rc != 0) {
        src_forge_prs_free(prs, made);
        return rc;
    }
    *out = prs;
    *n = made;
    return 0;
}

void src_forge_prs_free(struct src_forge_pr *prs, size_t n)
{
    if (!prs)
        return;
    for (size_t i = 0; i < n; i++) {
        free(prs[i].key);
        free(prs[i].number);
        free(prs[i].title);
        free(prs[i].body);
        free(prs[i].author);
        free(prs[i].labels);
        free(prs[i].head);
        free(prs[i].base);
    }
    free(prs);
}

/* --- reading the file ---------------------------------------------------- */

static int file_read(const char *path, char **out, size_t *len, struct bh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return bh_err_set(err, BH_ENOTFOUND,
                          "cannot open the pull request list '%s': %s — write it with 'gh pr "
                          "list --state open --json ... > FILE' first",
                          path, strerror(errno));
    struct bh_buf b;
    char chunk[65536];
    size_t got;
    int rc = 0;
    bh_buf_init(&b, SRC_FORGE_MAX_FILE);
    while (rc == 0 && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = bh_buf_append(&b, chunk, got);
    if (rc == 0 && ferror(f))
        rc = bh_err_set(err, BH_EIO, "cannot read '%s': %s", path, strerror(errno));
    else if (rc != 0)
        rc = bh_err_set(err, BH_EINVAL,
                        "'%s' is over the cap of %zu MiB for a pull request "
                        "list — list fewer pull requests (gh pr list --limit N)",
                        path, SRC_FORGE_MAX_FILE >> 20);
    fclose(f);
    if (rc != 0) {
        bh_buf_release(&b);
        return rc;
    }
    *len = b.len;
    *out = bh_buf_detach(&b);
    return 0;
}

/* --- items --------------------------------------------------------------- */

static void field_put(struct src_field *f, const char *name, char *value)
{
    *f = (struct src_field){
        .name = bh_xstrdup(name), .value = value, .len = value ? strlen(value) : 0};
}

/* Replaces the value of an existing field (src_git made it). */
static void field_replace(struct src_item *it, const char *name, const char *value)
{
    for (size_t i = 0; i < it->n_fields; i++)
        if (strcmp(it->fields[i].name, name) == 0) {
            free(it->fields[i].value);
            free(it->fields[i].error);
            it->fields[i].error = NULL;
            it->fields[i].value = bh_xstrdup(value);
            it->fields[i].len = strlen(value);
        }
}

/* Appends the forge's fields, with values (pr NULL: empty). */
static void fields_append(struct src_item *it, const struct src_forge_pr *pr)
{
    size_t n = it->n_fields;
    it->fields = bh_xrealloc(it->fields, (n + FF_COUNT) * sizeof(*it->fields));
    field_put(&it->fields[n + FF_BODY], "pr.body", bh_xstrdup(pr ? pr->body : ""));
    field_put(&it->fields[n + FF_AUTHOR], "pr.author", bh_xstrdup(pr ? pr->author : ""));
    field_put(&it->fields[n + FF_LABELS], "pr.labels", bh_xstrdup(pr ? pr->labels : ""));
    field_put(&it->fields[n + FF_DRAFT], "pr.draft",
              bh_xstrdup(!pr         ? ""
                         : pr->draft ? "true"
                                     : "false"));
    it->n_fields = n + FF_COUNT;
}

/* An item that could not be made: the forge's fields, and content fields
 * without a value whose error says why. */
static void item_failed(struct src_item *it, const struct src_forge_pr *pr, const char *why)
{
    it->key = bh_xstrdup(pr->key);
    it->version = bh_xasprintf("unavailable..%s", pr->head);
    it->fields = bh_xcalloc(src_git_n_fields, sizeof(*it->fields));
    it->n_fields = src_git_n_fields;
    for (size_t i = 0; i < src_git_n_fields; i++) {
        const char *name = src_git_fields[i];
        if (strcmp(name, "pr.number") == 0 || strcmp(name, "pr.ref") == 0 ||
            strcmp(name, "pr.title") == 0) {
            field_put(&it->fields[i], name, bh_xstrdup(""));
        } else {
            field_put(&it->fields[i], name, NULL);
            it->fields[i].error = bh_xstrdup(why);
        }
    }
}

struct lister {
    const struct src_forge_opts *o;
    git_repository *repo;
    struct src_note *notes;
    size_t n_notes, cap_notes;
};

static void note_add(struct lister *l, const char *path, char *why)
{
    l->notes = bh_xgrow(l->notes, &l->cap_notes, l->n_notes + 1, sizeof(*l->notes));
    l->notes[l->n_notes].path = bh_xstrdup(path);
    l->notes[l->n_notes++].why = why;
}

/* The commit rev names, as hex into hex; 0, or -1 when there is none. */
static int commit_of(git_repository *repo, const char *rev, char hex[HEXSZ + 1])
{
    git_commit *commit = NULL;
    int rc = src_git_commit_at(&commit, repo, rev);
    if (rc == 0)
        git_oid_tostr(hex, HEXSZ + 1, git_commit_id(commit));
    git_commit_free(commit);
    return rc < 0 ? -1 : 0;
}

/* The base to diff against: --base as given, else origin/<name>, else
 * <name>. NULL (and *why set) when none resolves. */
static const char *base_of(struct lister *l, const struct src_forge_pr *pr, char hex[HEXSZ + 1],
                           char **why)
{
    char *origin = bh_xasprintf("origin/%s", pr->base);
    const char *tried = l->o->base ? l->o->base : pr->base;
    int rc = -1;
    if (l->o->base)
        rc = commit_of(l->repo, l->o->base, hex);
    else if ((rc = commit_of(l->repo, origin, hex)) != 0)
        rc = commit_of(l->repo, pr->base, hex);
    if (rc != 0)
        *why = bh_xasprintf("cannot resolve the base '%s'%s%s%s to a commit of repository '%s' "
                            "— fetch the base branch, or pass --base REF",
                            tried, l->o->base ? "" : " (nor '", l->o->base ? "" : origin,
                            l->o->base ? "" : "')", l->o->repo ? l->o->repo : ".");
    free(origin);
    return rc == 0 ? hex : NULL;
}

/* Why pr cannot be made, or NULL when its commits are there; *base_hex is
 * the base to diff against. */
static char *pr_missing(struct lister *l, const struct src_forge_pr *pr, char base_hex[HEXSZ + 1])
{
    char head_hex[HEXSZ + 1];
    char *why = NULL;
    if (commit_of(l->repo, pr->head, head_hex) != 0) {
        int gitlab = strncmp(pr->key, "refs/merge-requests/", 20) == 0;
        const char *refs = gitlab ? "refs/merge-requests/*/head" : "refs/pull/*/head";
        return bh_xasprintf("head commit %s is not in repository '%s' — fetch the pull request "
                            "heads first (git fetch origin '+%s:%s')",
                            pr->head, l->o->repo ? l->o->repo : ".", refs, refs);
    }
    base_of(l, pr, base_hex, &why);
    return why;
}

/* The forge's text is content too: a title or body edited with no new
 * commit is another version of the item, so a run over it is another run
 * (prompts it shares with the last one come from the response cache). */
static void version_add_forge(struct src_item *it, const struct src_forge_pr *pr)
{
    const char *text[] = {pr->number, pr->title,  pr->body,
                          pr->author, pr->labels, pr->draft ? "true" : "false"};
    struct bh_sha256 *h = bh_sha256_new();
    for (size_t i = 0; i < BH_NELEM(text); i++)
        bh_sha256_field(h, text[i] ? text[i] : "");
    char hex[BH_SHA256_HEX];
    bh_sha256_final(h, hex);
    char *v = bh_xasprintf("%s;forge:%.16s", it->version, hex);
    free(it->version);
    it->version = v;
}

static void item_make(struct lister *l, const struct src_forge_pr *pr, struct src_item *it)
{
    char base_hex[HEXSZ + 1];
    struct src_item *made = NULL;
    size_t n = 0;
    struct bh_err err = {0};
    char *why = pr_missing(l, pr, base_hex);
    if (!why) {
        struct src_git_opts go = {
            .repo = l->o->repo, .base = base_hex, .max_diff = l->o->max_diff, .head = pr->head};
        if (src_git_list(&made, &n, &go, &err) != 0 || n != 1) {
            why = bh_xstrdup(err.msg[0] ? err.msg : "no item");
            src_items_free(made, n);
        }
    }
    if (why) {
        item_failed(it, pr, why);
        note_add(l, pr->key, why);
    } else {
        *it = made[0];
        free(made); /* the item moved into *it */
        free(it->key);
        it->key = bh_xstrdup(pr->key);
    }
    field_replace(it, "pr.number", pr->number);
    field_replace(it, "pr.ref", pr->key);
    field_replace(it, "pr.title", pr->title);
    fields_append(it, pr);
    version_add_forge(it, pr);
}

static int repo_open(struct lister *l, struct bh_err *err)
{
    const char *path = l->o->repo ? l->o->repo : ".";
    if (git_repository_open_ext(&l->repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0)
        return 0;
    return bh_err_set(err, BH_ENOTFOUND,
                      "repository '%s': cannot open: %s — pass the path of a git repository", path,
                      src_git_msg());
}

static void items_make(struct lister *l, const struct src_forge_pr *prs, size_t n_prs,
                       struct src_item **out, size_t *n)
{
    size_t drafts = 0, made = 0;
    struct src_item *items = n_prs ? bh_xcalloc(n_prs, sizeof(*items)) : NULL;
    for (size_t i = 0; i < n_prs; i++) {
        if (prs[i].draft && l->o->skip_drafts)
            drafts++;
        else
            item_make(l, &prs[i], &items[made++]);
    }
    if (drafts)
        note_add(l, l->o->file,
                 bh_xasprintf("left out %zu draft pull request%s (--skip-drafts)", drafts,
                              drafts == 1 ? "" : "s"));
    if (made == 0) {
        free(items);
        items = NULL;
    }
    *out = items;
    *n = made;
}

int src_forge_list(struct src_item **out, size_t *n, struct src_note **notes, size_t *n_notes,
                   const struct src_forge_opts *opts, struct bh_err *err)
{
    struct lister l = {.o = opts};
    struct src_forge_pr *prs = NULL;
    size_t n_prs = 0, len = 0;
    char *text = NULL;
    int rc = file_read(opts->file, &text, &len, err);
    if (rc == 0)
        rc = src_forge_parse(&prs, &n_prs, text, len, opts->file, err);
    free(text);
    if (rc == 0 && git_libgit2_init() < 0)
        rc = bh_err_set(err, BH_EINTERNAL, "cannot initialise libgit2");
    else if (rc == 0) {
        rc = repo_open(&l, err);
        if (rc == 0)
            items_make(&l, prs, n_prs, out, n);
        git_repository_free(l.repo);
        git_libgit2_shutdown();
    }
    src_forge_prs_free(prs, n_prs);
    if (rc == 0) {
        *notes = l.notes;
        *n_notes = l.n_notes;
    } else {
        src_notes_free(l.notes, l.n_notes);
    }
    return rc;
}

void src_forge_pad(struct src_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!src_item_find(&items[i], "pr.body"))
            fields_append(&items[i], NULL);
}
