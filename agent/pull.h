/* pull.h - fetching the cluster's branch from the hub's git endpoint
 * (https://HUB/git/<cluster>.git) into a local bare mirror, STATE/mirror.git,
 * with libgit2. libgit2 has no client-certificate option, so the agent
 * registers its own TLS stream (shared/tls.h on mbedTLS) that presents the
 * node's certificate and pins the hub's CA; TLS sessions are resumed. */
#ifndef AGENT_PULL_H
#define AGENT_PULL_H

#include <signal.h>
#include "buf.h"

struct git_repository;

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
/* Fetches branch from url into the mirror (refs/heads/<branch>) and writes
 * the fetched commit id into fetched_hex. -RE_EGIT (err: libgit2's message),
 * -RE_EAGAIN when aborted. */
int pull_fetch(struct git_repository *repo, const char *url, const char *branch,
               char fetched_hex[41], struct re_buf *err);

#endif
