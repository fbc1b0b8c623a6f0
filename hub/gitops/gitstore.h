/* gitstore.h - the hub's GitOps repository: one bare libgit2 repository, one
 * branch per cluster, written in batches into a single pack per batch.
 *
 * Layout: each cluster's state is the branch
 *   refs/namespaces/<cluster>/refs/heads/main
 * with a symbolic ref refs/namespaces/<cluster>/HEAD pointing at it, so
 * `GIT_NAMESPACE=<cluster> git upload-pack` (or http-backend) serves each
 * cluster its own small view, and clients that need HEAD can clone.
 *
 * Writing: gitstore_batch_begin(), then gitstore_batch_put() per cluster
 * (trees and commits go to an in-memory object store, libgit2's mempack),
 * then gitstore_batch_commit(): the new objects only (not everything
 * reachable) are written as ONE pack + index into objects/pack, and only
 * then are the branches moved, each with compare-and-swap against the commit
 * it had when put (-RE_ECONFLICT). No loose objects are ever written. A
 * large batch does this in chunks (GITSTORE_CHUNK_*) from within
 * gitstore_batch_put, so memory stays bounded: one pack per chunk.
 *
 * Branches are stored in packed-refs, which the store rewrites under git's
 * lock (packed-refs.lock) and replaces by one atomic rename per chunk: no
 * file or directory per branch, all of a chunk's branches move at once.
 * A branch that is a loose ref file (made by git itself or an older hub)
 * is moved through libgit2 instead. Each cluster's HEAD symbolic ref is a
 * loose file, written once after its branch exists, by a thread of the
 * store while the caller stages the next chunk (waited for by the next
 * chunk's refs step, gitstore_batch_commit, gitstore_batch_abort and
 * gitstore_free).
 *
 * Identical files and folders are hashed once: the store keeps a bounded
 * content -> object id cache (verified byte for byte on a hit), emptied
 * when a batch is aborted or objects/pack changes behind its back; when
 * full it drops the entries not hit since it was last full. Trees are
 * written as their bytes in git's format (names and order checked here).
 *
 * Crash safety: objects are complete on disk (the .idx is renamed into place
 * last, so a half-written pack is invisible) before any ref moves, and refs
 * move by atomic renames (packed-refs.lock -> packed-refs). A kill -9 at any
 * point leaves a valid repository: every branch points either at its old
 * commit or at its new one, never at a missing object. A batch interrupted
 * between chunks leaves earlier chunks moved and later ones not; the caller
 * re-renders and re-puts (an unchanged cluster gets no commit), which
 * finishes the job and also restores a HEAD symref lost between a new
 * branch and its HEAD. Unreferenced objects of an aborted batch are
 * harmless garbage. With GITSTORE_FSYNC, packs and refs are fsync'd too
 * (power loss).
 *
 * Threads: a gitstore is used by one thread at a time (the hub's GitOps
 * worker; the HEAD writer above is internal); only one batch may be open at
 * a time. A second process must not
 * write the same repository (the hub's lock file guards that).
 */
#ifndef HUB_GITSTORE_H
#define HUB_GITSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "oid.h"
#include "render.h"

struct gitstore;
struct gitstore_batch;

#define GITSTORE_FSYNC 0x1u     /* fsync packs and refs (libgit2 global option) */
/* This process is the only writer (the hub's lock file says so): a
 * packed-refs.lock left by a writer killed while holding it is removed at
 * open. Without it such a lock makes every batch fail with -RE_ECONFLICT. */
#define GITSTORE_SOLE_WRITER 0x2u

/* A batch goes to disk (one pack, then its branches) every this many staged
 * commits or bytes of new objects, whichever comes first, so a 100,000
 * cluster batch needs the memory of one chunk. */
#define GITSTORE_CHUNK_COMMITS 10000u
#define GITSTORE_CHUNK_BYTES   (256u << 20)

/* Opens the bare repository at path, creating it (and missing parent
 * directories) when absent. -RE_EGIT with a message in err otherwise. */
int gitstore_open(struct gitstore **out, const char *path, unsigned flags,
                  struct re_buf *err);
void gitstore_free(struct gitstore *gs);                      /* NULL-safe */
const char *gitstore_path(const struct gitstore *gs);         /* the git dir */

/* Totals since gitstore_open, for metrics and benchmarks. */
struct gitstore_stats {
    size_t commits;             /* branches moved */
    size_t chunks;              /* pack + refs flushes */
    size_t packs;               /* packs written */
    size_t objects;             /* objects in them */
    size_t pack_bytes;
    double pack_seconds;        /* building and indexing packs (wall) */
    double refs_seconds;        /* moving branches (wall) */
    double pack_cpu_seconds;    /* the same, CPU time of the calling thread */
    double refs_cpu_seconds;
    uint64_t cache_hits;        /* blobs/trees found in the content cache */
    uint64_t cache_misses;
};
void gitstore_get_stats(const struct gitstore *gs, struct gitstore_stats *out);

/* Current commit of a cluster's branch as 40 hex digits (+ NUL).
 * -RE_ENOENT when the cluster has no branch yet. */
int gitstore_head(struct gitstore *gs, const char *cluster, char out_hex[RE_OID_BUF]);
/* Increases every time this process moves branches (a batch's refs step, on
 * any handle or thread): a cache of heads is stale when it changed. */
uint64_t gitstore_refs_generation(void);
/* Opened with GITSTORE_SOLE_WRITER: whether a batch of an earlier writer did
 * not end (killed), so its branches may lag the inventory. */
bool gitstore_unfinished_batch(const struct gitstore *gs);
/* The files cluster's branch can live in: its loose ref and packed-refs
 * (for a cache that must notice writers other than this process). */
int gitstore_ref_files(struct gitstore *gs, const char *cluster, char *loose, size_t loose_size,
                       char *packed, size_t packed_size);

/* ---- writing ---- */

int gitstore_batch_begin(struct gitstore_batch **out, struct gitstore *gs,
                         struct re_buf *err);
/*
 * Stages a commit of tree (finished, see render_tree_finish) on cluster's
 * branch. author is the identity that made the change (also the committer;
 * email "<author>@resedge"), message says what changed.
 * expected_old_hex: NULL to build on whatever the branch holds now, "" to
 * require that the branch does not exist yet, or the commit it must be at.
 * Parent = the branch's commit. A cluster may be put at most once per batch
 * (the flush of its chunk refuses one put twice). When the tree
 * equals the parent's tree nothing is
 * staged and *changed (if not NULL) is false; otherwise true and out_hex
 * (if not NULL) gets the new commit id.
 * When the staged commits reach the chunk size, this put also writes them
 * (pack, then branches, as gitstore_batch_commit does) and the batch goes
 * on empty; that flush's errors are returned here (the caller then aborts
 * the batch; chunks already written stay).
 * Returns 0; -RE_EINVAL (bad cluster name, bad author, unfinished tree);
 * -RE_ECONFLICT when the branch is not at expected_old_hex; -RE_EGIT.
 */
int gitstore_batch_put(struct gitstore_batch *b, const char *cluster,
                       const struct render_tree *tree, const char *author,
                       const char *message, const char *expected_old_hex,
                       bool *changed, char out_hex[RE_OID_BUF]);
/* Number of commits staged and not yet written (a chunk flush resets it). */
size_t gitstore_batch_count(const struct gitstore_batch *b);
/* Flush every `commits` staged commits instead of GITSTORE_CHUNK_COMMITS. */
void gitstore_batch_set_chunk(struct gitstore_batch *b, size_t commits);
/*
 * Writes the staged objects as one pack and moves all staged branches, each
 * only if it still points where it did at put time. Consumes the batch (it
 * is freed whatever the result). Every branch is checked before any moves,
 * so a conflict (another writer got there first) moves nothing of this
 * chunk and returns -RE_ECONFLICT (re-render and put again). Branches in
 * packed-refs move together in one rename; loose ones (rare) move in
 * git_transactions of 200 afterwards. -RE_EINVAL when a cluster was put
 * twice; -RE_ENOSPC, -RE_EGIT with err.
 */
int gitstore_batch_commit(struct gitstore_batch *b, struct re_buf *err);
/* Drops the staged objects and frees the batch. NULL-safe. */
void gitstore_batch_abort(struct gitstore_batch *b);

/* ---- reading ---- */

struct gitstore_commit_info {
    char id[RE_OID_BUF];
    int64_t time;               /* committer time, seconds since the epoch */
    const char *author;         /* author name */
    const char *message;        /* full message */
};

/* Calls cb for up to max commits of cluster's branch, newest first (first
 * parents only). A non-zero return from cb stops the walk and is returned.
 * -RE_ENOENT when the cluster has no branch. */
int gitstore_log(struct gitstore *gs, const char *cluster, size_t max,
                 int (*cb)(const struct gitstore_commit_info *ci, void *ud), void *ud);

/*
 * Resolves rev within cluster's history into a commit id: NULL, "HEAD" or
 * "main" (optionally followed by ~N or ^), or a full or abbreviated (>= 4)
 * commit id that is the branch's head or one of its ancestors. -RE_ENOENT
 * when there is no such commit in that cluster's history.
 */
int gitstore_resolve(struct gitstore *gs, const char *cluster, const char *rev,
                     char out_hex[RE_OID_BUF]);
/* The files of cluster's state at rev (see gitstore_resolve), as a finished
 * render_tree (for revert, preview diffs and `clusters files`). */
int gitstore_read_tree(struct render_tree **out, struct gitstore *gs,
                       const char *cluster, const char *rev);
/* One file at rev (NULL: head); *data is malloc'd and NUL-terminated.
 * -RE_ENOENT when absent or a directory. */
int gitstore_file(char **data, size_t *len, struct gitstore *gs, const char *cluster,
                  const char *rev, const char *path);

/* Number of files in objects/pack ending in ".pack", and of loose object
 * files (for tests and metrics). */
int gitstore_count_objects(struct gitstore *gs, size_t *packs, size_t *loose);

#endif
