/*
 * fleet.h - an in-memory index of the inventory for evaluating selection
 * expressions over the whole fleet fast: clusters get a dense index
 * (0..n-1, in id order), and group paths (with their descendants), metadata
 * pairs, cluster names and namespaces resolve to bit sets over it.
 *
 * The index is a snapshot of one database connection's view. Whoever changes
 * clusters, groups, memberships, cluster metadata or namespaces calls
 * fleet_invalidate() (the inventory does so after every write, committed or
 * rolled back); the next fleet_acquire() rebuilds it (about 0.1-0.3 s for
 * 100,000 clusters). A snapshot is immutable and reference counted: hold it
 * with fleet_acquire/fleet_release, also from another thread (the counts are
 * atomic); fleet_acquire itself must run on the thread that owns the
 * database connection.
 */
#ifndef HUB_FLEET_H
#define HUB_FLEET_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>
#include "bitset.h"
#include "expr.h"

#define FLEET_NONE ((size_t)-1)

struct fleet;

/* A current snapshot for db (rebuilt when stale); release it when done.
 * Returns 0, -RE_EDB or -RE_ENOMEM. */
int fleet_acquire(struct fleet **out, sqlite3 *db);
void fleet_release(struct fleet *f);              /* NULL-safe */
/* Marks every snapshot of every database stale. */
void fleet_invalidate(void);
/* Whether a committed write of this inventory entity can change a snapshot,
 * which holds clusters, groups, their metadata and namespace expressions
 * (NULL or an entity it does not know: true). */
bool fleet_reads_entity(const char *entity);
/* Frees the cached snapshot (at exit, for leak checkers). */
void fleet_cache_clear(void);

/* Increases on every rebuild: a consumer that keeps per-index data must
 * recompute it when the generation it saw differs. */
uint64_t fleet_generation(const struct fleet *f);
size_t fleet_size(const struct fleet *f);
int64_t fleet_cluster_id(const struct fleet *f, size_t idx);
const char *fleet_cluster_name(const struct fleet *f, size_t idx);
/* Dense index of a cluster, or FLEET_NONE. */
size_t fleet_index_of_id(const struct fleet *f, int64_t id);
size_t fleet_index_of_name(const struct fleet *f, const char *name);

/* The resolver expr_eval needs, over this snapshot. /n/<namespace> evaluates
 * that namespace's expression (nested at most 8 deep: -RE_EDEPTH past it, which
 * is how a cycle of namespaces naming each other shows). */
void fleet_resolver(struct fleet *f, struct expr_resolver *out);

/* Parses text and evaluates it into *out (a new set of fleet_size bits).
 * Parse errors: the expr_parse codes with *err filled. */
int fleet_select(struct bitset **out, struct fleet *f, const char *text, size_t len,
                 struct expr_error *err);
/* Evaluates an already parsed expression into *out (a new set). */
int fleet_eval(struct bitset **out, struct fleet *f, const struct expr *e);

/* The expression text of namespace `name` in this snapshot, or NULL. */
const char *fleet_namespace_expression(const struct fleet *f, const char *name);

#endif
