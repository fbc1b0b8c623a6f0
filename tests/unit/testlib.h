/* testlib.h - a tiny unit test runner: a table of cases, each in its own process. */
#ifndef RE_TESTLIB_H
#define RE_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                   \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                    \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_) {                                                       \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__,   \
                    __LINE__, #a, a_, b_);                                    \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                    \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                              \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n",         \
                    __FILE__, __LINE__, #a, a_ ? a_ : "(null)",               \
                    b_ ? b_ : "(null)");                                      \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* A fresh temporary directory for this test process (removed at exit). */
const char *test_tmpdir(void);

/*
 * Runs every case (or those named in argv) each in a forked child with a
 * timeout, prints TAP, returns the process exit status (0 if all passed).
 */
int test_run(int argc, char **argv, const struct test_case *cases);

#define TEST_MAIN(...)                                                        \
    int main(int argc, char **argv)                                           \
    {                                                                         \
        static const struct test_case cases_[] = { __VA_ARGS__, { 0, 0 } };   \
        return test_run(argc, argv, cases_);                                  \
    }

#define T(fn) { #fn, fn }

#endif
