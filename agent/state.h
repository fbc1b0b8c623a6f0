/* state.h - the agent's state directory: enrollment record, credentials and
 * runtime status. Layout (STATE = --state-dir):
 *
 *   STATE/agent.state          hub URL, cluster, identity, names of the current
 *                              key and certificate files (INI, written last:
 *                              its presence means "enrolled")
 *   STATE/ca.crt               the hub's CA, pinned by fingerprint at enrollment
 *   STATE/agent-<serial>.key   the node's private key (0600, never leaves the node)
 *   STATE/agent-<serial>.crt   its certificate
 *   STATE/status.json          pulled/applied revision and the last apply result
 *   STATE/mirror.git           local bare mirror of the cluster's branch
 *   STATE/revisions/<rev>/     materialized trees; STATE/current -> revisions/<rev>
 *   STATE/flux/                Flux objects (flux and mirror modes)
 *
 * Key and certificate are swapped together on renewal by writing a new pair
 * under new names and then rewriting agent.state atomically. */
#ifndef AGENT_STATE_H
#define AGENT_STATE_H

#include <stdint.h>
#include "buf.h"
#include "oid.h"

#define AGENT_STATE_FILE  "agent.state"
#define AGENT_CA_FILE     "ca.crt"
#define AGENT_STATUS_FILE "status.json"

struct agent_state {
    char *hub_url;                  /* "https://hub.example:8443", no trailing '/' */
    char *cluster;                  /* cluster name from the certificate */
    char *identity;                 /* URI SAN, spiffe://.../cluster/<name> */
    char *key_name;                 /* "agent-<serial>.key" (relative to the state dir) */
    char *cert_name;                /* "agent-<serial>.crt" */
    int64_t not_before;
    int64_t not_after;
    int64_t renew_at;               /* epoch seconds: when to renew (jittered) */
    int64_t enrolled_at;
};

/* What the agent reports about pulling and applying (status.json). */
struct agent_status {
    char pulled[RE_OID_BUF];                /* commit hex or "" */
    char applied[RE_OID_BUF];
    char apply_result[512];         /* "ok", "failed: ..." or "" */
    char mode[16];                  /* the mode that applied it ("none", "apply"...) */
    int64_t applied_at;
};

void agent_state_release(struct agent_state *st);
/* -RE_ENOENT when not enrolled; -RE_EPARSE (err: file:line) when damaged. */
int agent_state_load(struct agent_state *st, const char *dir, struct re_buf *err);
int agent_state_save(const struct agent_state *st, const char *dir);
/* dir/name into out (PATH_MAX-bounded). */
int agent_state_path(char *out, size_t size, const char *dir, const char *name);

/* Reads status.json into s. On failure s is the empty status and the
 * result says why: -RE_ENOENT (missing), -RE_EPARSE (not a JSON object:
 * truncated or garbage), -RE_EIO/-RE_ETOOBIG (unreadable). Fields with bad
 * values are left empty without an error. */
int agent_status_read(struct agent_status *s, const char *dir);
/* agent_status_read that always returns 0: a missing or damaged status.json
 * gives an empty status. */
int agent_status_load(struct agent_status *s, const char *dir);
int agent_status_save(const struct agent_status *s, const char *dir);

/* Renewal time: when a third of the lifetime remains, minus up to 10% of the
 * lifetime of jitter (rnd: random bits). */
int64_t agent_renew_time(int64_t not_before, int64_t not_after, uint64_t rnd);

#endif
