/* gitops.h - the GitOps writer: keeps every cluster's branch in the bare
 * repository DIR/git equal to what the inventory says (desired.c renders one
 * cluster, gitstore.c commits).
 *
 * - At start, every cluster is rendered and whatever differs is committed:
 *   this is also crash recovery (objects are written before refs move, so a
 *   kill -9 leaves a valid repository; the start-up pass redoes any
 *   interrupted batch).
 * - After each committed inventory change (inventory hooks) the clusters it
 *   may affect are marked: a cluster change -> that cluster; configuration
 *   on a group -> the group's clusters; a namespace, application or policy
 *   change -> the union of the clusters its old and new expressions select;
 *   groups deleted, imports and anything else -> all clusters. Marks are
 *   coalesced (GITOPS_COALESCE_MS) and rendered off the event loop on
 *   libuv's thread pool with the worker's own SQLite connection; one batch
 *   (one pack) per run; only clusters whose tree changed get a commit,
 *   authored by the change's actor.
 * - Commit messages say what changed, one line (at most 200 bytes) per
 *   change, built from the change's before/after objects:
 *   "application pos-api: version 2 to /g/rings/beta", "namespace pos:
 *   expression /g/stores -> /g/stores/central", "config tax-rate=8.25 on
 *   /stores/central (was 8.0)", "cluster store-1: metadata ring=prod".
 *   A batch of several changes has "<first> (+N more changes)" as subject
 *   and every line (up to 20) in the body.
 * - A pinned cluster (POST .../revert) keeps the reverted tree until unpinned.
 * - Dry runs: the preview hook adds "clusters" (names that would change,
 *   first GITOPS_PREVIEW_NAMES), "clusters_count", "exact" (false when more
 *   than GITOPS_PREVIEW_MAX candidates were not all rendered) and "diff":
 *   {"cluster", "patch"}: the unified diff of the cluster the request named
 *   with ?diff=NAME (an empty patch when that cluster would not change, plus
 *   "note" when there is no such cluster), else of the first cluster that
 *   would change.
 * - Push mirror ([gitops] mirror in hub.conf): mirror.h; notified after each
 *   batch that committed something and after a revert, and at start-up.
 *
 * Routes (api_gitops.c, gitops_routes): see there. /readyz fails when the last
 * batch failed ("gitops" check) or the last mirror push failed ("mirror");
 * /metrics: resedge_gitops_* and resedge_mirror_* series.
 */
#ifndef HUB_GITOPS_H
#define HUB_GITOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "oid.h"
struct re_buf;

struct hub;
struct gitstore;

#define GITOPS_COALESCE_MS   50
#define GITOPS_RETRY_MS      5000
#define GITOPS_PREVIEW_MAX   5000
#define GITOPS_PREVIEW_NAMES 100

/* Opens DIR/git (creating it), installs the inventory hooks and metrics, and
 * queues the start-up reconcile. Call on the loop thread after
 * server_start. 0 or negative (the hub should not serve). */
int gitops_start(struct hub *hub);
/* Readiness (a server_ready_fn over hub->gitops): fails while the last batch
 * failed, with why. */
int gitops_ready(void *gitops, struct re_buf *why);
/* Why cluster's last render failed (its branch is frozen until one
 * succeeds), into out: 0, or -RE_ENOENT when it rendered. Any thread. */
int gitops_render_error(struct hub *hub, const char *cluster, char *out, size_t size);
/* Readiness warning (a server_ready_fn over hub->gitops): clusters that fail
 * to render, the first with its reason. */
int gitops_render_warning(void *gitops, struct re_buf *why);
/* The push mirror, or NULL when none is configured or the writer is off. */
struct mirror *gitops_mirror(const struct hub *hub);
/* Removes the hooks, waits for a running batch to stop (it is abandoned
 * between clusters and redone at the next start), frees. NULL-safe on a hub
 * without a writer. */
void gitops_stop(struct hub *hub);

/* The commit a cluster should run (its branch head) as 40 hex digits.
 * -RE_ENOENT when the writer is not running or the cluster has no branch yet.
 * Loop thread only. */
int gitops_desired_revision(struct hub *hub, const char *cluster, char out[RE_OID_BUF]);

/* For api_gitops.c, loop thread only. */
struct gitstore *gitops__reader(struct hub *hub);   /* NULL when not running */
/* Marks one cluster for re-rendering (unpin). */
void gitops__mark_cluster(struct hub *hub, int64_t id, const char *actor, const char *summary);
/* Adds "diff": {"cluster", "patch"[, "truncated"]} to answer: the unified
 * diff from old (NULL: empty) to new_, as a dry run's preview has it. 0 or
 * -RE_ENOMEM. */
struct render_tree;
int gitops__add_patch(cJSON *answer, const char *cluster, const struct render_tree *old,
                      const struct render_tree *new_);
/* Writer state as JSON for GET /api/v1/gitops/status. */
cJSON *gitops__status_json(struct hub *hub);

#endif
