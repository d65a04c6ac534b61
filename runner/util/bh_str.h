/* util/bh_str.h — small string helpers shared by the messages of every module. */
#ifndef BH_STR_H
#define BH_STR_H

#include <stddef.h>

#include "bh_err.h"

/* Edit distance (Levenshtein) between a and b, capped at 255. */
unsigned bh_str_distance(const char *a, const char *b);

/* The candidate closest to word, when close enough to be a likely typo
 * (distance <= 2, or <= a third of the word); NULL otherwise. Borrowed. */
const char *bh_str_suggest(const char *word, const char *const *candidates, size_t n);

/* Joins items with ", " into a new string ("(none)" for n == 0). */
char *bh_str_join(const char *const *items, size_t n);

/* 1 when s ends with suffix. */
int bh_str_endswith(const char *s, const char *suffix);

/* snprintf into a fixed field of a message or record, where cutting a long
 * host name short is fine: the truncation is intended (and -Wformat-truncation
 * stays quiet because the return value is not used). */
void bh_str_put(char *dst, size_t size, const char *fmt, ...) BH_PRINTF(3, 4);

#endif
