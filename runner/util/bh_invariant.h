/* util/bh_invariant.h — always-on checks of the invariants that protect
 * data. assert() is for what only a debug build needs to see; NDEBUG takes
 * it away. An invariant of the egress gate (an allowed request within its
 * clearance, a local endpoint's request pinned, no cloud key on local
 * traffic) must hold in every build: when one does not, the process stops
 * before the bytes go, with exit 70 (an internal bug), never carries on. */
#ifndef BH_INVARIANT_H
#define BH_INVARIANT_H

/* Prints "bulkhead: internal error: <msg> at <file>:<line>" to stderr and
 * exits 70 without returning (no atexit handlers: nothing half-done is
 * flushed on the way out). */
_Noreturn void bh_invariant_fail(const char *msg, const char *file, int line);

/* Checks cond in every build, NDEBUG or not. msg is a string literal that
 * says what should have held. */
#define BH_INVARIANT(cond, msg)                                                                    \
    do {                                                                                           \
        if (!(cond))                                                                               \
            bh_invariant_fail((msg), __FILE__, __LINE__);                                          \
    } while (0)

#endif
