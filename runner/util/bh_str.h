/* util/bh_str.h — small string helpers shared by the messages of every module. */
#ifndef BH_STR_H
#define BH_STR_H

#include <stddef.h>

/* Edit distance (Levenshtein) between a and b, capped at 255. */
unsigned bh_str_distance(const char *a, const char *b);

/* The candidate closest to word, when close enough to be a likely typo
 * (distance <= 2, or <= a third of the word); NULL otherwise. Borrowed. */
const char *bh_str_suggest(const char *word, const char *const *candidates, size_t n);

/* Joins items with ", " into a new string ("(none)" for n == 0). */
char *bh_str_join(const char *const *items, size_t n);

/* 1 when s ends with suffix. */
int bh_str_endswith(const char *s, const char *suffix);

#endif
