/* hash.h - a fast non-cryptographic 64-bit hash for in-memory cache keys
 * (never for anything an attacker could exploit by collisions: callers
 * compare the full key on a hit). */
#ifndef RE_HASH_H
#define RE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t re_hash64(const void *p, size_t n, uint64_t seed);

#endif
