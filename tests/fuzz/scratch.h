/* tests/fuzz/scratch.h — a scratch folder for the harnesses that need files
 * (a pipeline file, a store, a repository), removed when the process exits
 * normally (a crash leaves it for the post-mortem). */
#ifndef FUZZ_SCRATCH_H
#define FUZZ_SCRATCH_H

/* Makes the folder on first call (in /dev/shm when writable: a store or a
 * repository syncs its writes, which on a disk costs a tenth of a second an
 * input) and returns its path; the same path after. Aborts when it cannot. */
const char *fuzz_scratch_dir(const char *name);

/* Empties the folder (a harness starts its store or repository afresh now
 * and then so that it stays small). */
void fuzz_scratch_empty(void);

#endif
