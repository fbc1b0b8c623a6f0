/* gitserve.h - the hub's read-only git endpoint: each cluster's branch over
 * git's smart HTTP at /git/<cluster>.git, so `git clone`, Flux and Argo CD
 * can pull it.
 *
 * The repository is the GitOps writer's bare repository at DIR/git; a
 * cluster's state is refs/namespaces/<cluster>/refs/heads/main with a HEAD
 * symref in the same namespace. Each client sees one namespace, chosen from
 * its certificate: an agent only its own cluster (403 for any other),
 * operators and admins any cluster.
 *
 * Routes (git_routes):
 *   GET  /git/{cluster}.git/info/refs?service=git-upload-pack
 *        protocol v0/v1: answered in-process from the ref (libgit2), no child
 *        process: this is the no-change poll every store makes (Flux's
 *        go-git and libgit2 speak only v0/v1);
 *        protocol v2 (request header Git-Protocol: version=2): git's
 *        capability list, asked from git once a minute and kept (it names
 *        no ref, so it is the same for every cluster).
 *   POST /git/{cluster}.git/git-upload-pack
 *        the body (gzip inflated by the hub, at most max_body_bytes) is
 *        read first (git_wants.h): every cluster shares one object store,
 *        and git would send objects other namespaces reach, so each want
 *        must be what one of the cluster's refs reaches; object-info,
 *        bundle-uri, filter, deepen-not are refused. A refusal is git's
 *        ERR pkt-line over 200 (git prints "fatal: remote error: <why>"),
 *        broken pkt-lines a 400.
 *        v2 ls-refs (the rest of a v2 no-change poll): in-process;
 *        fetches that pass: delegated to `git http-backend` (which runs
 *        `git upload-pack --stateless-rpc`) with GIT_NAMESPACE=<cluster>
 *        and uploadpack.allow*SHA1InWant / allowFilter forced off, spawned
 *        with libuv so the loop never blocks.
 *
 * The in-process answers assume the writer's layout: a namespace holds only
 * refs/heads/main (pointing at a commit) and HEAD; they are byte for byte
 * what `git upload-pack` sends in that namespace, except agent=resedge/...
 * (and git 2.39's duplicate HEAD line in a namespaced ls-refs).
 *   info/refs?service=git-receive-pack, POST git-receive-pack: 403 (read-only).
 *
 * Limits: request bodies as hub->cfg.limits.max_body_bytes, a child's output
 * at most GITSERVE_MAX_OUTPUT bytes (502 beyond), GITSERVE_TIMEOUT_MS per
 * child (504, the child is killed), at most 2 children per core at once (503
 * with Retry-After beyond).
 */
#ifndef HUB_GITSERVE_H
#define HUB_GITSERVE_H

#include <stddef.h>
#include <git2.h>
#include "buf.h"
#include "http/routes.h"

struct hub;

#define GITSERVE_TIMEOUT_MS  60000u
#define GITSERVE_MAX_OUTPUT  (256u << 20)
#define GITSERVE_PROCS_PER_CORE 2u

extern const struct route git_routes[];

/* Kills the children still running (their requests answer 503) and closes
 * the repository. Call from the loop thread when the hub stops; the endpoint
 * reopens lazily if used again. NULL-safe. */
void gitserve_shutdown(struct hub *hub);

/* Number of upload-pack children running now (for metrics and tests). */
unsigned gitserve_running(void);

/* Overrides the limits (0 restores a default): concurrent children, child
 * timeout, child output cap. For tests and benchmarks. */
void gitserve__set_limits(unsigned max_running, unsigned timeout_ms, size_t max_output);

/*
 * Appends to out the protocol v0 ref advertisement of one cluster, exactly
 * what `GIT_NAMESPACE=<cluster> git upload-pack --stateless-rpc
 * --advertise-refs` sends (but agent=resedge/VERSION), preceded by the
 * "# service=git-upload-pack" pkt-line and flush that smart HTTP needs.
 * Returns 0, -RE_ENOENT when the cluster has no branch, -RE_EGIT, or
 * -RE_ETOOBIG when out is full. Exposed for tests.
 */
int gitserve__advertise_v0(struct re_buf *out, git_repository *repo, const char *cluster);

#endif
