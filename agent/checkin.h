/* checkin.h - the check-in exchange with the hub, both directions:
 *
 * POST /api/v1/clusters/{name}/checkin
 *   {"identity": "<kube-system uid or configured>" | null,
 *    "kubernetes_version": "v1.32.1" | null, "node_count": 3 | null,
 *    "labels": {"k": "v", ...}            (<= 64, Kubernetes label syntax)
 *    "agent_version": "0.1.0", "mode": "none", "interval": 60 (seconds, the agent's),
 *    "host": {"hostname", "boot_id", "disk_free_bytes", "disk_total_bytes"},
 *    "pulled_revision": "<40 hex>" | null, "applied_revision": ... | null,
 *    "apply_result": "ok" | "failed: ..." | null,
 *    "kustomizations": [{"name", "namespace", "ready", "revision", "message"}] | null}
 * answer 200
 *   {"branch": "main", "revision": "<40 hex>" | null, "interval": 60,
 *    "git_url": "https://hub:8443/git/<name>.git"}
 */
#ifndef AGENT_CHECKIN_H
#define AGENT_CHECKIN_H

#include "buf.h"
#include "config.h"
#include "facts.h"
#include "oid.h"
#include "state.h"

#define CHECKIN_MAX_INTERVAL_S 86400

struct checkin_answer {
    char branch[256];
    char revision[RE_OID_BUF];               /* "" when the hub has none yet */
    unsigned interval_s;             /* 0 when the hub did not say */
    char git_url[1024];              /* "" when absent */
};

/* The request body (compact JSON) into out. */
int checkin_build(struct re_buf *out, const struct agent_config *cfg,
                  const struct agent_facts *f, const struct agent_status *st,
                  unsigned interval_s);
/* Parses and checks the hub's answer: garbage, wrong types, a revision that is
 * not 40 hex digits, an interval out of 1..86400, a branch that is not a safe
 * ref name or a git_url that is not https:// -> -RE_EPARSE / -RE_EINVAL with
 * err naming the field. */
int checkin_parse_answer(struct checkin_answer *a, const char *body, size_t len,
                         struct re_buf *err);

#endif
