/* fuzz.h - helpers shared by the libFuzzer drivers in tests/fuzz: invariant
 * checks that crash (so the fuzzer records the input), a per-process
 * scratch directory, and a byte reader that splits one input into fields.
 * Each driver defines LLVMFuzzerTestOneInput; tests/fuzz/replay.c supplies a
 * main() that feeds files to it without libFuzzer (regression tests). */
#ifndef RE_FUZZ_H
#define RE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the code promises: a violation is a bug, so crash loudly. */
#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                     \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* A scratch directory for this process (created on first use, removed at
 * exit). Returns its path; aborts when it cannot be made. */
const char *fuzz_tmpdir(void);

/* Consumes input front to back: a selector byte, then the rest. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};
static inline unsigned fuzz_byte(struct fuzz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}
/* Everything up to the next '\n' (or the end) as a NUL-terminated malloc'd
 * copy; *len gets its length. Returns NULL only when out of memory. */
char *fuzz_line(struct fuzz_in *in, size_t *len);

#endif
