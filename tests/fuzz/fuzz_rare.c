/* tests/fuzz/fuzz_rare.c — the declassify guards' normalisation and the
 * no_rare_tokens guard on arbitrary bytes: the first half is an input above
 * the target, the second the output (and, again, an input at the target).
 * No crash, no read outside the buffers, and a normalised text holds no
 * zero-width character and no byte that is not UTF-8 (U+FFFD took its place). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/norm.h"
#include "policy/rare.h"
#include "util/bh_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts on a zero-width character or a byte that starts no valid sequence. */
static void check_norm(const char *s, size_t n)
{
    static const char *const banned[] = {"\xe2\x80\x8b", "\xe2\x80\x8c", "\xe2\x80\x8d",
                                         "\xe2\x81\xa0", "\xef\xbb\xbf", "\xc2\xad"};
    for (size_t b = 0; b < BH_NELEM(banned); b++)
        for (size_t i = 0; i + strlen(banned[b]) <= n; i++)
            if (memcmp(s + i, banned[b], strlen(banned[b])) == 0)
                abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] == 0xff || (unsigned char)s[i] == 0xfe)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t half = size / 2;
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (pol_norm_text((const char *)data, half, (size_t)1 << 26, &a, &na) == 0 &&
        pol_norm_text((const char *)data + half, size - half, (size_t)1 << 26, &b, &nb) == 0) {
        check_norm(a, na);
        check_norm(b, nb);
        struct pol_decl_input in[2] = {{"above", a, na, 2}, {"at", b, nb, 1}};
        size_t input = 9;
        int cls = 0;
        if (pol_rare_find(in, 1, 1, b, nb, &input, &cls) && (input != 0 || cls == 0))
            abort();
        if (pol_rare_find(in, 2, 1, b, nb, &input, &cls) && input != 0)
            abort();
    }
    free(a);
    free(b);
    return 0;
}
