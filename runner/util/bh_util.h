/* util/bh_util.h — language-level helpers every module shares. One
 * definition here, so that no file grows its own copy (ci/lint.sh's
 * one-nelem rule). */
#ifndef BH_UTIL_H
#define BH_UTIL_H

/* The number of elements of array a (an array, never a pointer: on a
 * pointer this divides the pointer's size and is wrong). */
#define BH_NELEM(a) (sizeof(a) / sizeof((a)[0]))

#endif
