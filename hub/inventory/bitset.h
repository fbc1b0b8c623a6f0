/* bitset.h - fixed-size bit sets over dense cluster indexes (0..n-1), 64-bit words. */
#ifndef RE_BITSET_H
#define RE_BITSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A set of indexes 0..n-1. The bits past n in the last word are always zero,
 * so count/equal/next never see them. Binary operations need two sets of the
 * same n and return -RE_EINVAL otherwise, leaving dst unchanged.
 */
struct bitset {
    uint64_t *words;
    size_t n;        /* number of valid bits */
    size_t nwords;   /* (n + 63) / 64 */
};

#define BITSET_NONE ((size_t)-1)   /* bitset_next: no further set bit */

/* Initialise an empty set of n bits in caller storage; -RE_ENOMEM on failure. */
int bitset_init(struct bitset *b, size_t n);
/* Free the words of an initialised set (NULL-safe); the set becomes empty, n 0. */
void bitset_release(struct bitset *b);
/* Allocate a new empty set of n bits; *out written only on success. */
int bitset_new(struct bitset **out, size_t n);
void bitset_free(struct bitset *b);                    /* NULL-safe */
/* Allocate a copy of src; *out written only on success. */
int bitset_dup(struct bitset **out, const struct bitset *src);

/* Single bits. Indexes >= n are out of range: set/unset return -RE_EINVAL, test false. */
int bitset_set(struct bitset *b, size_t i);
int bitset_unset(struct bitset *b, size_t i);
bool bitset_test(const struct bitset *b, size_t i);

void bitset_clear(struct bitset *b);                   /* all bits 0 */
void bitset_fill(struct bitset *b);                    /* bits 0..n-1 set */
void bitset_not(struct bitset *b);                     /* complement within n */
int bitset_copy(struct bitset *dst, const struct bitset *src);
int bitset_and(struct bitset *dst, const struct bitset *src);     /* dst &= src */
int bitset_or(struct bitset *dst, const struct bitset *src);      /* dst |= src */
int bitset_andnot(struct bitset *dst, const struct bitset *src);  /* dst &= ~src */
int bitset_xor(struct bitset *dst, const struct bitset *src);     /* dst ^= src */

size_t bitset_count(const struct bitset *b);
bool bitset_empty(const struct bitset *b);
/* Same n and same bits. */
bool bitset_equal(const struct bitset *a, const struct bitset *b);
/*
 * The first set bit at index >= from, or BITSET_NONE. Iterate with
 *   for (size_t i = bitset_next(b, 0); i != BITSET_NONE; i = bitset_next(b, i + 1))
 */
size_t bitset_next(const struct bitset *b, size_t from);

#endif
