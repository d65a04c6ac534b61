/* policy/norm.h — text as the declassify guards compare it. A reply that
 * repeats a secret in another spelling (upper-cased, full-width, with
 * zero-width characters inside, with Cyrillic or Greek look-alike letters)
 * must still be seen to repeat it, so both sides of every comparison (the
 * output and each input) go through the same normalisation first:
 *
 * 1. bytes that are not UTF-8 become U+FFFD (one per byte); NUL stays;
 * 2. Unicode NFKC with case folding and default-ignorable characters
 *    removed (libutf8proc, the options of utf8proc_NFKC_Casefold: full-width
 *    forms become ASCII, soft hyphens and zero-width characters vanish);
 * 3. the zero-width characters U+200B..U+200D, U+2060, U+FEFF and the soft
 *    hyphen U+00AD are dropped again (whatever the library version does),
 *    Unicode dashes (U+2010..U+2015, U+2212) become '-', and lower-case
 *    Cyrillic and Greek letters that look like Latin ones become those
 *    (а е о р с х у і ј ѕ к м н т в → a e o p c x y i j s k m h t b; α ο ρ ν
 *    ι κ τ υ χ ε → a o p v i k t u x e).
 *
 * What this does not do, by design, is the digit/letter folding (0 and o,
 * 1 and l and i, 5 and s): that would change what a token is (a run of
 * digits, a mix of letters and digits), so it is applied where two tokens
 * are compared, by pol_norm_fold. Pure: no I/O, no global state. */
#ifndef POL_NORM_H
#define POL_NORM_H

#include <stddef.h>

/* Normalises s[0..len) (NULs allowed) into *out (owned, NUL-terminated, may
 * hold NULs: use *out_len). Returns 0, or BH_ETOOBIG when the result would
 * be over `max` bytes (NFKC can expand a character up to 18 of them), or
 * BH_EINTERNAL when the library fails. *out is set only on success. */
int pol_norm_text(const char *s, size_t len, size_t max, char **out, size_t *out_len);

/* One byte of normalised text as token comparisons see it: '0' is 'o',
 * '1' and 'i' are 'l', '5' is 's'; every other byte is itself. */
unsigned char pol_norm_fold(unsigned char c);

#endif
