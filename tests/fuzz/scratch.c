/* tests/fuzz/scratch.c — see scratch.h. */
#define _XOPEN_SOURCE 700
#include "scratch.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[128];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    return ftw->level > 0 ? remove(path) : 0;
}

void fuzz_scratch_empty(void)
{
    if (dir[0])
        nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void scratch_remove(void)
{
    fuzz_scratch_empty();
    rmdir(dir);
}

const char *fuzz_scratch_dir(const char *name)
{
    if (dir[0])
        return dir;
    snprintf(dir, sizeof(dir), "%s/bh-fuzz-%s.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", name);
    if (!mkdtemp(dir))
        abort();
    atexit(scratch_remove);
    return dir;
}
