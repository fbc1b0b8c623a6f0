/* bitset.c - fixed-size bit sets over dense cluster indexes, for evaluating selections. */
#include <stdlib.h>
#include <string.h>
#include "bitset.h"
#include "error.h"

static size_t words_for(size_t n)
{
    return n / 64 + (n % 64 != 0);
}

/* Mask of the valid bits in the last word (all ones when n is a multiple of 64). */
static uint64_t tail_mask(const struct bitset *b)
{
    unsigned r = (unsigned)(b->n % 64);
    return r ? (((uint64_t)1 << r) - 1) : ~(uint64_t)0;
}

int bitset_init(struct bitset *b, size_t n)
{
    size_t nw = words_for(n);
    uint64_t *w = NULL;
    if (nw) {
        w = calloc(nw, sizeof(*w));
        if (!w)
            return -RE_ENOMEM;
    }
    b->words = w;
    b->n = n;
    b->nwords = nw;
    return 0;
}

void bitset_release(struct bitset *b)
{
    if (!b)
        return;
    free(b->words);
    b->words = NULL;
    b->n = 0;
    b->nwords = 0;
}

int bitset_new(struct bitset **out, size_t n)
{
    struct bitset *b = malloc(sizeof(*b));
    int r;
    if (!b)
        return -RE_ENOMEM;
    r = bitset_init(b, n);
    if (r < 0) {
        free(b);
        return r;
    }
    *out = b;
    return 0;
}

void bitset_free(struct bitset *b)
{
    if (!b)
        return;
    bitset_release(b);
    free(b);
}

int bitset_dup(struct bitset **out, const struct bitset *src)
{
    struct bitset *b;
    int r = bitset_new(&b, src->n);
    if (r < 0)
        return r;
    if (src->nwords)
        memcpy(b->words, src->words, src->nwords * sizeof(*b->words));
    *out = b;
    return 0;
}

int bitset_set(struct bitset *b, size_t i)
{
    if (i >= b->n)
        return -RE_EINVAL;
    b->words[i / 64] |= (uint64_t)1 << (i % 64);
    return 0;
}

int bitset_unset(struct bitset *b, size_t i)
{
    if (i >= b->n)
        return -RE_EINVAL;
    b->words[i / 64] &= ~((uint64_t)1 << (i % 64));
    return 0;
}

bool bitset_test(const struct bitset *b, size_t i)
{
    if (i >= b->n)
        return false;
    return (b->words[i / 64] >> (i % 64)) & 1;
}

void bitset_clear(struct bitset *b)
{
    if (b->nwords)
        memset(b->words, 0, b->nwords * sizeof(*b->words));
}

void bitset_fill(struct bitset *b)
{
    if (!b->nwords)
        return;
    memset(b->words, 0xff, b->nwords * sizeof(*b->words));
    b->words[b->nwords - 1] &= tail_mask(b);
}

void bitset_not(struct bitset *b)
{
    if (!b->nwords)
        return;
    for (size_t i = 0; i < b->nwords; i++)
        b->words[i] = ~b->words[i];
    b->words[b->nwords - 1] &= tail_mask(b);
}

int bitset_copy(struct bitset *dst, const struct bitset *src)
{
    if (dst->n != src->n)
        return -RE_EINVAL;
    if (dst != src && src->nwords)
        memcpy(dst->words, src->words, src->nwords * sizeof(*dst->words));
    return 0;
}

int bitset_and(struct bitset *dst, const struct bitset *src)
{
    if (dst->n != src->n)
        return -RE_EINVAL;
    for (size_t i = 0; i < dst->nwords; i++)
        dst->words[i] &= src->words[i];
    return 0;
}

int bitset_or(struct bitset *dst, const struct bitset *src)
{
    if (dst->n != src->n)
        return -RE_EINVAL;
    for (size_t i = 0; i < dst->nwords; i++)
        dst->words[i] |= src->words[i];
    return 0;
}

int bitset_andnot(struct bitset *dst, const struct bitset *src)
{
    if (dst->n != src->n)
        return -RE_EINVAL;
    for (size_t i = 0; i < dst->nwords; i++)
        dst->words[i] &= ~src->words[i];
    return 0;
}

int bitset_xor(struct bitset *dst, const struct bitset *src)
{
    if (dst->n != src->n)
        return -RE_EINVAL;
    for (size_t i = 0; i < dst->nwords; i++)
        dst->words[i] ^= src->words[i];
    return 0;
}

size_t bitset_count(const struct bitset *b)
{
    size_t c = 0;
    for (size_t i = 0; i < b->nwords; i++)
        c += (size_t)__builtin_popcountll(b->words[i]);
    return c;
}

bool bitset_empty(const struct bitset *b)
{
    for (size_t i = 0; i < b->nwords; i++)
        if (b->words[i])
            return false;
    return true;
}

bool bitset_equal(const struct bitset *a, const struct bitset *b)
{
    if (a->n != b->n)
        return false;
    return a->nwords == 0 ||
           memcmp(a->words, b->words, a->nwords * sizeof(*a->words)) == 0;
}

size_t bitset_next(const struct bitset *b, size_t from)
{
    size_t wi;
    uint64_t w;
    if (from >= b->n)
        return BITSET_NONE;
    wi = from / 64;
    w = b->words[wi] & (~(uint64_t)0 << (from % 64));
    for (;;) {
        if (w)
            return wi * 64 + (size_t)__builtin_ctzll(w);
        if (++wi >= b->nwords)
            return BITSET_NONE;
        w = b->words[wi];
    }
}
