/* materialize.h - the agent's materialized desired state: a commit's tree
 * written into STATE/revisions/<rev>/ (via a temporary directory and a
 * rename), then STATE/current, a symlink to revisions/<rev>, swapped
 * atomically (a new symlink renamed over the old). The last few revisions
 * are kept; a half-done swap is repaired at start.
 *
 * Everything here leaves the last good state in place on failure (full disk,
 * a tree with a symlink or a hostile name): STATE/current only ever points at
 * a complete directory. */
#ifndef AGENT_MATERIALIZE_H
#define AGENT_MATERIALIZE_H

#include <stddef.h>
#include "buf.h"
#include "oid.h"

struct git_repository;
struct git_oid;

#define MATERIALIZE_MAX_FILES  20000
#define MATERIALIZE_MAX_BYTES  (256u * 1024 * 1024)
#define MATERIALIZE_MAX_DEPTH  32

/* Repairs what a crash can leave: a stray current.tmp, temporary revision
 * directories, a current that dangles (pointed again at the newest complete
 * revision, or removed), a current that is not a symlink (moved aside).
 * report (may be NULL) gets one line per repair. 0 or a negative error. */
int materialize_repair(const char *state_dir, struct re_buf *report);

/* The revision STATE/current points at, into out (41 bytes).
 * -RE_ENOENT when there is none. */
int materialize_current(char out[RE_OID_BUF], const char *state_dir);

/* Writes commit's tree into revisions/<hex> (no-op when already there),
 * swaps current to it and prunes to keep revisions. err explains failures:
 * -RE_ENOSPC (disk full), -RE_EUNSUPP (symlink, submodule), -RE_EINVAL (bad
 * name in the tree), -RE_ETOOBIG (limits above), -RE_EGIT. */
int materialize_commit(const char *state_dir, struct git_repository *repo,
                       const struct git_oid *commit, unsigned keep, struct re_buf *err);

/* Points current at revisions/<rev> (which must exist) atomically. */
int materialize_swap(const char *state_dir, const char *rev);
/* Removes all but the keep most recently used revisions (never current's). */
int materialize_prune(const char *state_dir, unsigned keep);

#endif
