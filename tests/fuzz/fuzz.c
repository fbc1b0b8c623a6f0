/* fuzz.c - helpers for the fuzz drivers (see fuzz.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"

static char tmpdir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void tmpdir_cleanup(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof(tmpdir), "%s/re-fuzz-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(tmpdir_cleanup);
    }
    return tmpdir;
}

char *fuzz_line(struct fuzz_in *in, size_t *len)
{
    const uint8_t *nl = memchr(in->p, '\n', in->n);
    size_t l = nl ? (size_t)(nl - in->p) : in->n;
    char *s = malloc(l + 1);
    if (!s)
        return NULL;
    if (l)
        memcpy(s, in->p, l);
    s[l] = '\0';
    in->p += l + (nl ? 1 : 0);
    in->n -= l + (nl ? 1 : 0);
    *len = l;
    return s;
}
