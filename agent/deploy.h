/* deploy.h - what the agent does with its desired state, per mode:
 *   flux    writes a Flux GitRepository (the hub's git endpoint), a Flux
 *           Kustomization and the TLS Secret Flux needs into STATE/flux/ and
 *           applies them with the apply command (default `kubectl apply -f {dir}`);
 *   mirror  the same, with Flux pointed at the local mirror the agent serves
 *           itself (mirrorserve.h; mirror_url overrides the URL) and, when
 *           the mirror wants basic auth, a Secret with its username and
 *           password (else none);
 *   apply   runs the apply command (e.g. `kubectl apply -k {dir}`) on each new
 *           materialized revision;
 *   none    materializes only.
 * YAML is emitted with libyaml; commands run without a shell ({dir} is the
 * only substitution, and it is a path the agent chose). */
#ifndef AGENT_DEPLOY_H
#define AGENT_DEPLOY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "buf.h"

#define DEPLOY_FLUX_NAMESPACE "flux-system"
#define DEPLOY_SOURCE_NAME    "resedge-hub"
#define DEPLOY_SECRET_NAME    "resedge-hub-tls"
#define DEPLOY_MIRROR_SECRET  "resedge-mirror-auth"
#define DEPLOY_SYNC_NAME      "resedge-cluster"

struct deploy_flux {
    const char *url;                /* GitRepository URL (http:// or https://) */
    const char *branch;
    const char *ca_pem;             /* Secret content; all NULL: no Secret */
    const char *cert_pem;
    const char *key_pem;
    /* Or (without the PEMs) a basic-auth Secret DEPLOY_MIRROR_SECRET with
     * keys username and password; NULL: none. */
    const char *username;
    const char *password;
};

/* Writes STATE/flux/{source,sync,secret}.yaml (only files whose content
 * changed; the secret mode 0600). *changed tells whether any did. */
int deploy_flux_write(const char *state_dir, const struct deploy_flux *f, bool *changed,
                      struct re_buf *err);
/* The three documents as one YAML stream (for tests and previews). */
int deploy_flux_yaml(struct re_buf *source, struct re_buf *sync, struct re_buf *secret,
                     const struct deploy_flux *f);

/* Runs cmd with {dir} substituted. result gets "ok" or "failed: <why and the
 * last output line>". Returns 0 when the command exited 0. */
int deploy_run(const char *cmd, const char *dir, uint64_t timeout_ms,
               volatile sig_atomic_t *abort_flag, char *result, size_t result_size);

#endif
