/* test_bitset.c - unit tests for hub/bitset.c: bounds, tail bits, set algebra, iteration. */
#include "error.h"
#include "inventory/bitset.h"
#include "testlib.h"

static const size_t sizes[] = { 0, 1, 63, 64, 65, 127, 128, 130, 1000 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

static void test_init_bounds(void)
{
    for (size_t k = 0; k < N_SIZES; k++) {
        size_t n = sizes[k];
        struct bitset b;
        CHECK_EQ_INT(bitset_init(&b, n), 0);
        CHECK_EQ_INT(b.n, n);
        CHECK_EQ_INT(b.nwords, (n + 63) / 64);
        CHECK(bitset_empty(&b));
        CHECK_EQ_INT(bitset_count(&b), 0);
        CHECK_EQ_INT(bitset_set(&b, n), -RE_EINVAL);
        CHECK_EQ_INT(bitset_unset(&b, n), -RE_EINVAL);
        CHECK(!bitset_test(&b, n));
        CHECK(!bitset_test(&b, (size_t)-1));
        CHECK_EQ_INT(bitset_next(&b, 0), BITSET_NONE);
        if (n) {
            CHECK_EQ_INT(bitset_set(&b, n - 1), 0);
            CHECK(bitset_test(&b, n - 1));
            CHECK_EQ_INT(bitset_next(&b, 0), n - 1);
            CHECK_EQ_INT(bitset_unset(&b, n - 1), 0);
            CHECK(bitset_empty(&b));
        }
        bitset_release(&b);
        bitset_release(&b);        /* twice is harmless */
    }
    bitset_release(NULL);
    bitset_free(NULL);
}

static void test_fill_not_tail(void)
{
    for (size_t k = 0; k < N_SIZES; k++) {
        size_t n = sizes[k];
        struct bitset *b;
        CHECK_EQ_INT(bitset_new(&b, n), 0);
        bitset_fill(b);
        CHECK_EQ_INT(bitset_count(b), n);
        bitset_not(b);
        CHECK_EQ_INT(bitset_count(b), 0);
        CHECK(bitset_empty(b));
        bitset_not(b);
        CHECK_EQ_INT(bitset_count(b), n);
        if (n) {   /* the bits past n in the last word stay zero */
            unsigned r = (unsigned)(n % 64);
            if (r)
                CHECK_EQ_INT(b->words[b->nwords - 1] >> r, 0);
        }
        bitset_clear(b);
        CHECK(bitset_empty(b));
        bitset_free(b);
    }
}

static void test_algebra(void)
{
    struct bitset *a, *b, *c, *d;
    size_t n = 200;
    CHECK_EQ_INT(bitset_new(&a, n), 0);
    CHECK_EQ_INT(bitset_new(&b, n), 0);
    for (size_t i = 0; i < n; i++) {
        if (i % 2 == 0)
            bitset_set(a, i);
        if (i % 3 == 0)
            bitset_set(b, i);
    }
    CHECK_EQ_INT(bitset_count(a), 100);
    CHECK_EQ_INT(bitset_count(b), 67);

    CHECK_EQ_INT(bitset_dup(&c, a), 0);
    CHECK(bitset_equal(a, c));
    CHECK_EQ_INT(bitset_and(c, b), 0);                 /* multiples of 6 */
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(bitset_test(c, i), i % 6 == 0);
    CHECK_EQ_INT(bitset_count(c), 34);

    CHECK_EQ_INT(bitset_copy(c, a), 0);
    CHECK_EQ_INT(bitset_or(c, b), 0);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(bitset_test(c, i), i % 2 == 0 || i % 3 == 0);

    CHECK_EQ_INT(bitset_copy(c, a), 0);
    CHECK_EQ_INT(bitset_andnot(c, b), 0);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(bitset_test(c, i), i % 2 == 0 && i % 3 != 0);

    CHECK_EQ_INT(bitset_copy(c, a), 0);
    CHECK_EQ_INT(bitset_xor(c, b), 0);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(bitset_test(c, i), (i % 2 == 0) != (i % 3 == 0));
    CHECK(!bitset_equal(a, c));

    /* different sizes are refused and leave dst alone */
    CHECK_EQ_INT(bitset_new(&d, n + 1), 0);
    bitset_fill(d);
    CHECK_EQ_INT(bitset_and(a, d), -RE_EINVAL);
    CHECK_EQ_INT(bitset_or(a, d), -RE_EINVAL);
    CHECK_EQ_INT(bitset_andnot(a, d), -RE_EINVAL);
    CHECK_EQ_INT(bitset_xor(a, d), -RE_EINVAL);
    CHECK_EQ_INT(bitset_copy(a, d), -RE_EINVAL);
    CHECK_EQ_INT(bitset_count(a), 100);
    CHECK(!bitset_equal(a, d));

    bitset_free(a);
    bitset_free(b);
    bitset_free(c);
    bitset_free(d);
}

static void test_next(void)
{
    static const size_t idx[] = { 0, 1, 63, 64, 65, 127, 128, 500, 999 };
    struct bitset b;
    size_t k = 0;
    CHECK_EQ_INT(bitset_init(&b, 1000), 0);
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
        CHECK_EQ_INT(bitset_set(&b, idx[i]), 0);
    for (size_t i = bitset_next(&b, 0); i != BITSET_NONE; i = bitset_next(&b, i + 1))
        CHECK_EQ_INT(i, idx[k++]);
    CHECK_EQ_INT(k, sizeof(idx) / sizeof(idx[0]));
    CHECK_EQ_INT(bitset_next(&b, 2), 63);
    CHECK_EQ_INT(bitset_next(&b, 129), 500);
    CHECK_EQ_INT(bitset_next(&b, 1000), BITSET_NONE);
    CHECK_EQ_INT(bitset_next(&b, (size_t)-1), BITSET_NONE);
    bitset_release(&b);
}

TEST_MAIN(T(test_init_bounds), T(test_fill_not_tail), T(test_algebra), T(test_next))
