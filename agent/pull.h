/* pull.h - fetching the cluster's branch from the hub's git endpoint
 * (https://HUB/git/<cluster>.git) into a local bare mirror, STATE/mirror.git,
 * with libgit2. libgit2 has no client-certificate option, so the agent
 * registers its own TLS stream (shared/tls.h on mbedTLS) that presents the
 * node's certificate and pins the hub's CA; TLS sessions are resumed. */
#ifndef AGENT_PULL_H
#define AGENT_PULL_H

#include <signal.h>
#include <stdbool.h>
#include "buf.h"
#include "oid.h"

struct git_repository;

/* Where fetches land before they are checked (hidden from the mirror's
 * clients with uploadpack.hideRefs). */
#define PULL_HIDDEN_REFS "refs/resedge/incoming/"

/* libgit2 and the TLS stream; once per process. */
int pull_global_init(void);
void pull_global_cleanup(void);
/* Credentials the TLS stream presents (again after a renewal). -RE_EIO,
 * -RE_EPARSE with err when a file cannot be loaded. */
int pull_set_tls(const char *ca_file, const char *cert_file, const char *key_file,
                 struct re_buf *err);
/* Flag checked during transfers: a non-zero value aborts the fetch. */
void pull_set_abort_flag(volatile sig_atomic_t *flag);

/* Opens STATE/mirror.git, creating it (or recreating it when it is damaged). */
int pull_open_mirror(struct git_repository **out, const char *state_dir, struct re_buf *err);
/* Checks that the mirror repo was opened from is still there and opens
 * again (it may be deleted or damaged under a running agent): 0, or
 * -RE_ENOENT / -RE_EGIT with err saying what is wrong. The caller then frees
 * repo and calls pull_open_mirror, which recreates it. */
int pull_check_mirror(struct git_repository *repo, struct re_buf *err);
/* Fetches branch from url into the mirror and writes the fetched commit id
 * into fetched_hex. The fetched commit lands on a hidden staging ref,
 * PULL_HIDDEN_REFS<branch>, never on refs/heads/<branch>: what the mirror
 * serves moves only with pull_publish, once the caller has checked the commit
 * is the one the hub assigned. -RE_EGIT (err: libgit2's message), -RE_EAGAIN
 * when aborted. */
int pull_fetch(struct git_repository *repo, const char *url, const char *branch,
               char fetched_hex[RE_OID_BUF], struct re_buf *err);

/* Points refs/heads/<branch> at commit_hex (a commit already in the mirror)
 * and HEAD at refs/heads/<branch> (so clones check it out); nothing is
 * written when both are already so. -RE_EGIT (err says why). */
int pull_publish(struct git_repository *repo, const char *branch, const char *commit_hex,
                 struct re_buf *err);
/* True when the mirror holds commit commit_hex. */
bool pull_has_commit(struct git_repository *repo, const char *commit_hex);
/* True when refs/heads/<branch> is commit_hex and HEAD points at it. */
bool pull_published(struct git_repository *repo, const char *branch, const char *commit_hex);

#endif
