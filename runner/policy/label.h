/* policy/label.h — the labels of actual values: a work item's fields with
 * the pipeline's path rules and content detectors applied. This is the run
 * time counterpart of the static bounds (policy.h): `plan` and the engine
 * both label through here, so what plan predicts is what a run does.
 *
 * A value's label is its declared label (source.fields, else source.label),
 * replaced per file by the highest matching path rule for content fields
 * (pipe_field_is_content) — for a file with two paths (a rename or copy),
 * the join over both, each path at its rule's label or else the declared
 * one —, then raised by every detector hit outside the allowlists, in the
 * value and in the whole files behind its parts (struct src_whole). A value,
 * or a part's whole files, that could not be read or scanned is the top
 * label (unknown means top). Reasons say why, naming the rule, detector, file and
 * line — never the matched text. */
#ifndef POL_LABEL_H
#define POL_LABEL_H

#include <stddef.h>

struct bh_err;
struct pipeline;
struct src_field;
struct src_part;

/* The pipeline's detectors, resolved and compiled (custom regexes). */
struct pol_labeller;

/* Builds the labeller of p (p must outlive it). Fails with BH_EINVAL when a
 * detector name or custom regex does not resolve (the loader checks both,
 * so this means a pipeline built by hand). */
int pol_labeller_new(struct pol_labeller **out, const struct pipeline *p, struct bh_err *err);
void pol_labeller_free(struct pol_labeller *l); /* NULL is fine */

/* The pipeline the labeller was built for. */
const struct pipeline *pol_labeller_pipeline(const struct pol_labeller *l);

enum pol_lbl_by {
    POL_LBL_DECLARED,  /* the field's declared label */
    POL_LBL_RULE,      /* a path rule matched a file of the value */
    POL_LBL_DETECTOR,  /* a detector found something */
    POL_LBL_UNSCANNED, /* the value could not be read or scanned: top */
};

/* One reason for a value's label. Strings are borrowed from the pipeline,
 * the detector table or the field, and live as long as they do. */
struct pol_reason {
    enum pol_lbl_by by;
    int label;
    const char *what; /* the rule's glob, the detector id, or why it was unscanned */
    const char *path; /* the file a rule or hit is about, or NULL */
    size_t line;      /* detector: 1-based line within that file's part (or the value) */
    int in_diff;      /* POL_IN_DIFF: the part is a file's section of a diff, line counts
                         diff lines; POL_IN_OLD/POL_IN_NEW: the hit is in the whole file
                         behind a diff's part (before / after the change), line counts its
                         lines; 0: in the value itself */
};

enum { POL_IN_DIFF = 1, POL_IN_OLD = 2, POL_IN_NEW = 3 };

struct pol_value {
    int label;                  /* the value's label (an index, never -1) */
    int declared;               /* before detectors: declared, with rules applied */
    struct pol_reason *reasons; /* rules that matched (one per file) and detector hits, in
                                   value order; at most POL_MAX_REASONS, then cut short */
    size_t n_reasons;
    int secret; /* a secret detector (keys, tokens) hit: never declassified */
};

#define POL_MAX_REASONS 64

/* Labels field f, read as `name` (a source field, or "each.diff" etc. for a
 * part of one): declared is its declared label (-1: unknown, top). For a
 * content field, rules apply per part. Fills *out (release it). */
int pol_label_value(const struct pol_labeller *l, const char *name, int declared, const char *value,
                    size_t len, const struct src_part *parts, size_t n_parts,
                    const char *unread_why, struct pol_value *out);

/* pol_label_value for a source field of an item, with its declared label. */
int pol_label_field(const struct pol_labeller *l, const struct src_field *f, struct pol_value *out);

void pol_value_release(struct pol_value *v);

/* Labels every source field of item, in p->source.fields order, into
 * out[p->source.n_fields]; a field the item lacks is unread (top). The one
 * place plan and the engine label an item. Release each value. */
struct src_item;
void pol_label_item(const struct pol_labeller *l, const struct src_item *item,
                    struct pol_value *out);

/* Labels item's key like the source field it is the text of
 * (pipe_source_key_field: pr.ref, doc.path): that field's declared label
 * (top when the kind has none), raised by detectors over the key. A batch
 * stage names its items by key, so a key is a value like any other. Fills
 * *out (release it). */
int pol_label_key(const struct pol_labeller *l, const struct src_item *item, struct pol_value *out);

/* Labels the text of template t (the words around its placeholders: a
 * system or user message, inline or from a file) with the pipeline's
 * detectors, from the bottom label: a key pasted into a prompt raises
 * every prompt rendered from it. Too large to scan: top. Fills *out
 * (release it); returns 0. */
struct pipe_tpl;
int pol_label_template(const struct pol_labeller *l, const struct pipe_tpl *t,
                       struct pol_value *out);

struct det_hit;

/* Scans data[0..len) with the labeller's enabled detectors (the pipeline's
 * `detectors`, built-in and custom) and gives the caller every hit, sorted by
 * offset: no hit cap, since a caller that redacts must see them all. Hits
 * whose matched text is listed in allow.values are left out; allow.paths do
 * not apply (a bare buffer has no files). *hits is NULL when there are none;
 * free it with det_hits_free. Returns 0, or BH_ETOOBIG when len is over
 * DET_MAX_BYTES (nothing is returned then). Used by declassify.c. */
int pol_labeller_scan(const struct pol_labeller *l, const char *data, size_t len,
                      struct det_hit **hits, size_t *n_hits);

/* "rule \"*.pem\" raised it to restricted", "detector aws-access-key line 3 of
 * config/prod.env", "unscanned: ...": one reason in words, into buf. */
void pol_reason_format(const struct pipeline *p, const struct pol_reason *r, char *buf,
                       size_t size);

#endif
