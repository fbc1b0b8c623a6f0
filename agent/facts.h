/* facts.h - what the agent reports about its node and cluster: host facts
 * (hostname, boot id, free disk of the state directory) and, where a
 * Kubernetes API is reachable (--kubeconfig, or in-cluster service account),
 * the kube-system namespace UID as the cluster identity, the Kubernetes
 * version, node count, this node's labels and Flux Kustomization states.
 * The API is read with kubectl (no shell; bounded output and time), which
 * understands every kubeconfig form. */
#ifndef AGENT_FACTS_H
#define AGENT_FACTS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "config.h"

#define FACTS_MAX_KUSTOMIZATIONS 64
#define FACTS_MAX_NODE_LABELS    64

struct agent_facts {
    char hostname[256];
    char boot_id[64];
    uint64_t disk_free_bytes;
    uint64_t disk_total_bytes;
    bool kube_reachable;
    char kube_identity[128];         /* kube-system UID, "" when unknown */
    char kube_version[64];           /* "v1.32.1", "" when unknown */
    long node_count;                 /* -1 when unknown */
    cJSON *node_labels;              /* object of string values, or NULL (owned) */
    cJSON *kustomizations;           /* array of {name, namespace, ready, revision,
                                        message}, or NULL (owned) */
    char kube_error[256];            /* why the API was not read, "" if it was */
};

void facts_init(struct agent_facts *f);
void facts_release(struct agent_facts *f);
/* Hostname, boot id, statvfs of state_dir. Missing pieces stay empty. */
void facts_host(struct agent_facts *f, const char *state_dir);
/* Whether a Kubernetes API is configured at all (kubeconfig or in-cluster). */
bool facts_kube_configured(const struct agent_config *cfg);
/* Reads the Kubernetes API; keeps kube_identity when already known (it does
 * not change). with_flux: also read Flux Kustomizations. */
void facts_kube(struct agent_facts *f, const struct agent_config *cfg, bool with_flux,
                volatile sig_atomic_t *abort_flag);

#endif
