/* policy/declassify.h — the guards of a stage's `declassify`: whether a
 * stage's output may carry the lower label `declassify.to`. Pure: no I/O, no
 * global state; the engine calls it after a reply, with the values the
 * prompt substituted, and stores what it returns.
 *
 * 1. Redaction. Secret-detector hits (det_detector.secret, among the
 *    pipeline's enabled detectors, allow.values honoured) are ALWAYS replaced
 *    with "[redacted: DETECTOR-ID]", whether or not the guards pass: a secret
 *    is never declassified, only redacted. This runs first, on the reply as
 *    it came, so that the other redactions cannot cut a key in pieces the
 *    detectors would no longer recognise. Then, when declared:
 *    - "code": fenced blocks (a line starting, after at most 3 spaces, with
 *      3+ backticks or 3+ tildes, info string or not, up to a line with at
 *      least as many of the same character and nothing else; unclosed: to the
 *      end) and indented blocks (lines starting with 4+ spaces or a tab, after
 *      a blank line, a code block or at the start, unless the nearest non-blank line above
 *      that is not indented is a list item "- ", "* ", "+ ", "1. ", "1) ":
 *      then they are the item's continuation) become one "[code removed]"
 *      line each;
 *    - "paths": a whitespace-separated word, without the quotes and brackets
 *      and punctuation around it, that holds a '/' (so URLs, "and/or" and
 *      "1/2" too: redaction errs toward removing) or that is NAME.EXT (before
 *      any ':' line suffix) with EXT a known source or config extension
 *      (c, h, py, js, go, rs, java, json, yaml, md, ...) becomes "[path]".
 *    Finally the redacted text is scanned again and any secret hit the
 *    joins created is redacted too. Markers are counted in res.
 * 2. Guards on the redacted output, in this order; the first failure wins.
 *    The two comparing guards read the output and every input through
 *    pol_norm_text (NFKC, case folded, zero-width characters dropped,
 *    look-alike letters mapped: policy/norm.h) and compare tokens through
 *    pol_norm_fold (0/o, 1/l/i, 5/s), so another spelling is the same text;
 *    nothing is normalised when no input is above `to`.
 *    - no_verbatim (N = no_verbatim_tokens, 0: off): tokens are maximal runs
 *      of ASCII letters, digits, '_' and bytes >= 0x80, or any other single
 *      non-whitespace byte (punctuation, NUL); whitespace separates tokens
 *      and is otherwise ignored, so a quote re-wrapped or re-spaced still
 *      matches. A run of N consecutive output tokens that occurs in an
 *      input above `to` and in no input at or below `to` is a leak. Linear
 *      in the total size: see declassify.c.
 *    - no_rare_tokens (when true): a rare token (key-like, 6+ digits, a
 *      high-entropy mix of letters and digits) of the output that an input
 *      above `to` holds and no input at or below it does: policy/rare.h.
 *    - detectors (when `detectors` is true): a detector hit left in the
 *      redacted output fails when its detector raises above `to` (a hit at
 *      or below the target, e.g. a private address in an output declassified
 *      to internal, is no leak).
 *    - max_chars (when > 0): a redacted output longer than this many BYTES
 *      fails.
 * The detail of a failure never holds text of the output or of an input: it
 * names the input by the caller's name (or index), a detector by id, a line. */
#ifndef POL_DECLASSIFY_H
#define POL_DECLASSIFY_H

#include <stddef.h>

struct bh_err;
struct pipe_declassify;
struct pol_labeller;

/* One value the prompt substituted (a source field, an upstream output, an
 * each.* value) with its label. Pass the template's literal text (and the
 * system message's) as inputs too, at the bottom label: the output may
 * quote the instructions it was given. text may hold NULs. */
struct pol_decl_input {
    const char *name; /* "pr.diff", "review.output": named in details; NULL: by index */
    const char *text;
    size_t len;
    int label;
};

struct pol_decl_result {
    char *output; /* the output after redaction (owned, NUL-terminated): what is
                     stored and read by dependants, passed or not */
    size_t len;
    int label; /* the lower of declassify.to and in_label when every guard
                  passed (never raises), else in_label */
    int passed;
    const char *failed; /* "no_verbatim", "no_rare_tokens", "detectors", "max_chars", or
                           NULL (static) */
    char detail[256];   /* why it failed, without any text of the output or inputs;
                           "" when it passed */
    size_t redacted_code, redacted_paths, redacted_secrets; /* replacements made */
};

/* Guards of a stage's output. l: the pipeline's labeller (detectors, label
 * names); d: the stage's declassify (d->enabled must be set); in_label: the
 * output's label without declassification (the join of its inputs); out:
 * the reply, out_len bytes (NULs allowed); in[0..n_in): the substituted
 * values. Fills *res (release it with pol_decl_result_release) and returns
 * 0 whether or not the guards passed. Returns BH_ETOOBIG when the output,
 * as replied or after redaction, is over DET_MAX_BYTES and so cannot
 * be scanned for secrets, or when a normalised text would be over 1 GiB
 * (BH_EINTERNAL when libutf8proc fails); *res is then empty and the caller
 * must not store the output below in_label (nor show it where secrets must
 * not go). */
int pol_declassify(const struct pol_labeller *l, const struct pipe_declassify *d, int in_label,
                   const char *out, size_t out_len, const struct pol_decl_input *in, size_t n_in,
                   struct pol_decl_result *res, struct bh_err *err);

void pol_decl_result_release(struct pol_decl_result *r); /* NULL is fine */

#endif
