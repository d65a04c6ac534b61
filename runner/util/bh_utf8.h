/* util/bh_utf8.h — one UTF-8 validator and one lossy decoder for the whole
 * tree. Text from repositories and folders is not always UTF-8 (a Latin-1
 * file name, a legacy source file); every JSON library downstream refuses it,
 * so it is made valid once, where it enters, and said so in a note. */
#ifndef BH_UTF8_H
#define BH_UTF8_H

#include <stddef.h>

struct bh_buf;

/* Length of the well-formed sequence at s (n > 0 bytes left) when *ok is
 * set, else the length of the maximal subpart of an ill-formed one (at least
 * 1): the bytes one U+FFFD replaces. Overlong forms, surrogates and code
 * points past U+10FFFF are ill-formed (RFC 3629, Unicode 15 §3.9, table 3-7). */
size_t bh_utf8_seq(const char *s, size_t n, int *ok);

/* 1 when s[0, n) is well-formed UTF-8 (NUL bytes are, as U+0000). */
int bh_utf8_valid(const char *s, size_t n);

/* Offset of the first ill-formed byte of s[0, n), or n. */
size_t bh_utf8_invalid_at(const char *s, size_t n);

/* Appends s[0, n) to b with each maximal subpart of an ill-formed sequence
 * replaced by U+FFFD (EF BF BD), as the Unicode standard recommends;
 * *replaced (when not NULL) is increased by their number. Returns 0, or
 * BH_ETOOBIG past b's cap (b then holds a prefix). */
int bh_utf8_lossy(struct bh_buf *b, const char *s, size_t n, size_t *replaced);

/* 1 when byte c continues a sequence (10xxxxxx): it starts no character, so
 * a cut or a column count never falls on it. */
int bh_utf8_cont(unsigned char c);

/* Characters (code points, or ill-formed bytes) in s[0, n): the bytes that
 * are not continuation bytes. What a column or a minLength counts. */
size_t bh_utf8_count(const char *s, size_t n);

/* Encodes code point cp (at most U+10FFFF) into out[0..4); returns the
 * number of bytes written (1 to 4). The one UTF-8 encoder of the tree. */
size_t bh_utf8_put(char out[4], unsigned cp);

/* s[0, n) decoded lossily into a new NUL-terminated string (owned), *len its
 * length when len is not NULL; *replaced as above. */
char *bh_utf8_lossy_dup(const char *s, size_t n, size_t *len, size_t *replaced);

#endif
