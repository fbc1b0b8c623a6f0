/* mirror.h - the optional push mirror: copies every cluster's branch from the
 * hub's GitOps repository to an external git server ([gitops] mirror in
 * hub.conf), from a background thread that never blocks the inventory, the
 * GitOps writer or the event loop.
 *
 * Names on the mirror: the hub's refs/namespaces/<cluster>/refs/heads/main is
 * pushed as the ordinary branch refs/heads/<cluster>. Git servers (GitHub,
 * GitLab, Gitea) show and serve branches, while they hide or refuse
 * refs/namespaces/...; as a branch, a store's state can be browsed and used
 * by Flux (GitRepository ref.branch: <cluster>) or `git clone -b <cluster>`
 * as a fallback source when the hub is down.
 *
 * Fast-forward only (no "+" refspecs): every commit the hub writes has the
 * branch's previous head as parent (a revert too is a new commit), so a
 * mirror written only by the hub always fast-forwards. A branch somebody
 * else moved on the mirror is rejected by the server and reported (the push
 * fails naming the branch) instead of being overwritten; fix it there.
 * Branches of deleted clusters are left on the mirror.
 *
 * Each push: connect, list the mirror's branches, and push (git_remote_push)
 * only the branches whose commit differs, MIRROR_CHUNK refspecs at a time,
 * so a start-up push against an up-to-date mirror sends nothing but the ref
 * listing. At most one push is in flight; mirror_notify() during a push
 * marks the mirror dirty, and one more push follows. A failed push is
 * retried after n consecutive failures in d/2 + random(0..d/2) ms, d =
 * min(retry_max_ms, MIRROR_RETRY_BASE_MS * 2^(n-1)) ("equal jitter": never
 * a hot loop, never a fleet of hubs in lock-step).
 *
 * Credentials: the file named by mirror_credentials is read at each push
 * (rotate it without a restart) and holds "username:token" or a bare token
 * (sent with the user name "x-access-token", which GitHub and GitLab accept
 * with a token). Its content is never logged nor kept after the push; URL
 * user info is redacted in every message. Without a file, ssh:// remotes use
 * the ssh agent.
 *
 * Health: mirror_ready() fails (so GET /readyz answers 503 naming the
 * "mirror" check) while the last push failed. Metrics:
 * resedge_mirror_pushes_total{result="ok|error"},
 * resedge_mirror_last_success_timestamp_seconds, resedge_mirror_pending
 * (1 while changes wait to reach the mirror, 0 when it is up to date) and
 * resedge_mirror_branches_pushed_total.
 */
#ifndef HUB_MIRROR_H
#define HUB_MIRROR_H

#include <cjson/cJSON.h>
#include "buf.h"

struct mirror;
struct metrics;

#define MIRROR_RETRY_BASE_MS 1000
#define MIRROR_CHUNK         2000      /* refspecs per git_remote_push */
#define MIRROR_STOP_WAIT_MS  3000      /* mirror_stop waits this long for a push */

struct mirror_config {
    const char *url;               /* https://, ssh://, file:// or a local path */
    const char *credentials_file;  /* NULL: none */
    unsigned retry_max_ms;         /* backoff cap; 0: 5 minutes */
};

/* Starts the mirror thread for the bare repository git_dir (strings are
 * copied) and queues a first push. metrics may be NULL. 0, or -RE_EINVAL
 * (no URL), -RE_ENOMEM, -RE_EAGAIN (no thread) with a message in err. */
int mirror_start(struct mirror **out, const char *git_dir, const struct mirror_config *cfg,
                 struct metrics *metrics, struct re_buf *err);
/* Asks for a push of whatever changed (coalesced; never blocks on a push in
 * flight). Any thread. NULL-safe. */
void mirror_notify(struct mirror *mi);
/* A server_ready_fn (arg: the mirror): -RE_EAGAIN with the reason in why
 * while the last push failed, else 0. Any thread. */
int mirror_ready(void *arg, struct re_buf *why);
/* State as JSON: url (redacted), state "idle|pending|pushing|failing",
 * failures, pushes_ok, pushes_error, last_success, last_error,
 * next_retry_in_ms. NULL when out of memory. */
cJSON *mirror_status_json(struct mirror *mi);
/* Stops the thread: a push in flight is cancelled at its next progress
 * callback; after MIRROR_STOP_WAIT_MS a push stuck in the network is left
 * behind (its thread detached, its state leaked) so shutdown never hangs.
 * NULL-safe. */
void mirror_stop(struct mirror *mi);

#endif
