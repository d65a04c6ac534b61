/* policy/rare.h — the no_rare_tokens guard of `declassify`: a reply that
 * names a short secret in a sentence ("the token X is hard-coded") copies
 * fewer tokens than no_verbatim counts, but the token it copies is RARE:
 * nothing a reviewer writes in ordinary prose looks like it. The guard fails
 * when the output holds a rare token that an input above the target holds
 * and no input at or below it (the template text, a public title) does.
 *
 * Texts are compared after pol_norm_text (both sides), token against token:
 * - a token is a maximal run of [a-z0-9_-]; its parts are split at '-' and
 *   '_'; every run of up to 8 consecutive parts is a unit too, so the hex
 *   tail of BULKHEAD-CANARY-1-<hex> is found when a reply names only it;
 * - single letters or digits standing alone, at most 3 separators apart
 *   ("h u n t e r 2", "h-u-n-t-e-r", "h.u.n"), at least 4 of them, are
 *   joined into one unit; in the output every piece of 6 to 64 characters
 *   of such a run is a unit as well (a spelled-out secret after "a");
 * - two units are the same when their letters and digits are, read through
 *   pol_norm_fold (0/o, 1/l/i, 5/s), separators left out.
 * A unit is rare (pol_rare_class) when it is:
 * - KEY: it starts with a prefix the secret detectors know (akia, asia,
 *   ghp_, gho_, ghu_, ghs_, ghr_, github_pat_, glpat-, sk-, sk_live_,
 *   sk_test_, rk_live_, xoxa- xoxb- xoxp- xoxr- xoxs-, aiza, eyj) and is
 *   at least 12 characters long;
 * - NUMBER: it holds a run of 6 or more digits (card numbers, account and
 *   phone numbers, PINs of length 6+, long ids);
 * - MIXED: at least 8 letters and digits, both present, switching between
 *   letters and digits at least 3 times, with a Shannon entropy of at least
 *   2.5 bits per character (random hex, base64, "hunter2xQ7" — but not
 *   utf8proc, sha256sum or int64_max, which switch twice, nor a1a1a1a1).
 * Words of letters only are never rare: a passphrase and a long identifier
 * cannot be told apart by their shape (see pipelines/README.md). */
#ifndef POL_RARE_H
#define POL_RARE_H

#include <stddef.h>

#include "policy/declassify.h"

enum pol_rare_class {
    POL_RARE_NONE,
    POL_RARE_KEY,
    POL_RARE_NUMBER,
    POL_RARE_MIXED,
};

/* The class of one unit of normalised text u[0..n) (letters, digits, '-',
 * '_'). Pure. */
int pol_rare_class(const char *u, size_t n);

/* "key-like", "number", "high-entropy" ("" for POL_RARE_NONE). Static. */
const char *pol_rare_class_name(int cls);

/* The guard over texts that went through pol_norm_text: out[0..out_len)
 * and in[0..n_in). Returns 1 when the output holds a rare unit that some
 * input above `to` holds and none at or below `to` does, with *input the
 * first such input (its index in `in`) and *cls the unit's class; else 0. */
int pol_rare_find(const struct pol_decl_input *in, size_t n_in, int to, const char *out,
                  size_t out_len, size_t *input, int *cls);

#endif
