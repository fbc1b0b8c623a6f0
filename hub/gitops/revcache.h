/* revcache.h - each cluster's branch head, cached for the check-in path.
 *
 * Every check-in answers with the revision the cluster should run; reading it
 * through libgit2 (a loose-ref stat, then the packed-refs file) cost about 20
 * microseconds, a twentieth of a check-in. The cache maps cluster name to head
 * (or "no branch") and empties itself whenever gitstore_refs_generation()
 * moves, so it is never older than the last batch this process committed, or
 * when packed-refs changes on disk; a cluster with a loose ref (written by
 * another process, e.g. git push) is always read through.
 * One thread only (the hub's loop); bounded: it empties when full.
 */
#ifndef HUB_REVCACHE_H
#define HUB_REVCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "oid.h"

#define REVCACHE_MAX_ENTRIES (1u << 20)

struct revcache;
struct gitstore;

int revcache_new(struct revcache **out);
void revcache_free(struct revcache *c);            /* NULL-safe */

/* The head of cluster's branch into out (40 hex and NUL): from the cache, or
 * from gs (then remembered). 0, -RE_ENOENT (no branch yet: also remembered),
 * or gitstore_head's other errors (not remembered). */
int revcache_head(struct revcache *c, struct gitstore *gs, const char *cluster, char out[RE_OID_BUF]);

#endif
