/* replay.c - main() for a fuzz driver built without libFuzzer: runs every
 * file named on the command line (directories: every file in them) through
 * LLVMFuzzerTestOneInput once. Regression tests link it with a driver and
 * the sanitizers, so an input that once crashed must now pass. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    for (;;) {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *d = realloc(data, cap);
            if (!d) {
                fclose(f);
                free(data);
                return -1;
            }
            data = d;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    /* A copy of exactly len bytes, so reading past the input is caught. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(data);
        return -1;
    }
    if (len)
        memcpy(exact, data, len);
    free(data);
    fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int n = 0, rc = 0;
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            rc = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            rc |= run_file(argv[i]) < 0;
            n++;
            continue;
        }
        struct dirent **ents = NULL;
        int m = scandir(argv[i], &ents, NULL, NULL);
        if (m < 0) {
            perror(argv[i]);
            rc = 1;
            continue;
        }
        char **names = calloc((size_t)m + 1, sizeof(*names));
        int k = 0;
        for (int j = 0; j < m; j++) {
            if (ents[j]->d_name[0] != '.' && names) {
                size_t l = strlen(argv[i]) + strlen(ents[j]->d_name) + 2;
                names[k] = malloc(l);
                if (names[k]) {
                    snprintf(names[k], l, "%s/%s", argv[i], ents[j]->d_name);
                    k++;
                }
            }
            free(ents[j]);
        }
        free(ents);
        if (names)
            qsort(names, (size_t)k, sizeof(*names), compare);
        for (int j = 0; j < k; j++) {
            struct stat fst;
            if (stat(names[j], &fst) == 0 && S_ISREG(fst.st_mode)) {
                rc |= run_file(names[j]) < 0;
                n++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("replayed %d inputs\n", n);
    return rc;
}
