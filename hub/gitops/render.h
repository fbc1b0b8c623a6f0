/* render.h - turns one cluster's desired state (plain structs, no database)
 * into the files of its GitOps branch: kustomize overlays and Flux objects.
 *
 * The tree a cluster's branch holds (every directory listed here builds with
 * `kubectl kustomize` on its own):
 *
 *   kustomization.yaml            root: namespaces/<ns>..., policies, flux;
 *                                 component cluster (or, in a cluster with no
 *                                 application, labels resedge.io/cluster)
 *   cluster/kustomization.yaml    kustomize Component (only with applications):
 *                                 labels resedge.io/cluster=<cluster>, and a
 *                                 patch adding that label to the
 *                                 commonMetadata of the Flux Kustomizations
 *                                 named app-*; the one file besides
 *                                 flux/source.yaml and the ConfigMaps that
 *                                 names the cluster, so everything else is
 *                                 the same blob in every cluster
 *   namespaces/<ns>/              Namespace, ResourceQuota (when any quota is
 *                                 set), LimitRange, RoleBinding "resedge-owners"
 *                                 (ClusterRole admin to each owner as a User),
 *                                 NetworkPolicy "default-deny" (all ingress and
 *                                 egress denied except DNS, UDP+TCP 53),
 *                                 ConfigMap "resedge-config" (effective config
 *                                 plus metadata as cluster.<key>),
 *                                 kustomization.yaml
 *   policies/<name>.yaml          each policy bundle, re-emitted by libyaml;
 *   policies/kustomization.yaml
 *   flux/kustomization.yaml       lists, per application,
 *   flux/app-<app>.yaml           one Flux Kustomization "resedge-app-<app>" per
 *                                 application, path ./apps/<app>, sourceRef
 *                                 GitRepository flux-system/resedge-hub, prune:
 *                                 true (so one failing app never blocks another).
 *                                 That source is the agent's alone (it knows
 *                                 the URL the store reaches: the hub, or its
 *                                 own mirror): the branch never renders it, so
 *                                 no object has two owners.
 *   apps/<app>/kustomization.yaml components [../../cluster], labels app and
 *                                 version; then either
 *     git source:  apps/<app>/gitrepository.yaml (GitRepository "app-<app>")
 *                  apps/<app>/flux-kustomization.yaml (Kustomization "app-<app>"
 *                  with path, prune: true, targetNamespace, commonMetadata labels
 *                  app and version; the component adds the cluster)
 *     hub base:    apps/<app>/base/... the base files (a kustomization.yaml is
 *                  generated listing its *.yaml files when the base has none),
 *                  overlay with namespace, resources: [base], images: newTag.
 *
 * Flux objects live in namespace "flux-system". A git ref is used as:
 * "refs/..." -> ref.name; 40 hex digits -> ref.commit; a version-looking
 * string (v1, 1.2.3, v2.0.0-rc1) -> ref.tag; anything else -> ref.branch.
 *
 * Output is deterministic: identical input gives byte-identical files, and
 * files that do not mention the cluster (all but the root kustomization of a
 * cluster without applications, cluster/, flux/source.yaml and the
 * ConfigMaps: cluster labels are set by kustomize) are identical across
 * clusters, so git stores them once and writes few objects per cluster.
 */
#ifndef HUB_RENDER_H
#define HUB_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

struct render_kv {
    const char *key;
    const char *value;
};

struct render_namespace {
    const char *name;                 /* DNS-1123 label */
    const char *const *owners;        /* identities, bound as kind User */
    size_t n_owners;
    const char *quota_cpu;            /* each may be NULL: no such limit */
    const char *quota_memory;
    const char *quota_pods;
    /* Network settings as stored; all false is the default: everything
     * denied but DNS out, no pod-to-pod. */
    bool net_open;                    /* default_deny: false (no deny policy) */
    bool net_no_dns;                  /* allow_dns: false (DNS denied too) */
    bool net_allow_same_namespace;    /* pods of the namespace reach each other */
    /* configuration scoped to this namespace: over the cluster's config in
     * its ConfigMap (NULL/0: none) */
    const struct render_kv *config;
    size_t n_config;
};

/* A file given to render (a base's file) or produced by it. */
struct render_file {
    const char *path;                 /* relative, '/'-separated */
    const char *data;
    size_t len;
};

enum render_src_kind {
    RENDER_SRC_GIT = 0,               /* app team's repo: git_url/git_ref/git_path */
    RENDER_SRC_BASE = 1,              /* kustomize base stored in the hub */
};

struct render_app {
    const char *name;                 /* DNS-1123 label */
    const char *namespace_;           /* DNS-1123 label; should be one of the cluster's */
    const char *version;              /* label value, e.g. "v2" or "1.4.0" */
    enum render_src_kind kind;
    const char *git_url;              /* http(s):// or ssh:// (Flux rejects git://) */
    const char *git_ref;              /* NULL: branch "main" */
    const char *git_path;             /* NULL: "./" */
    const struct render_file *base_files;
    size_t n_base_files;
    const char *image_name;           /* base apps: image whose tag is set */
    const char *image_tag;            /* NULL: no images: entry */
};

struct render_policy {
    const char *name;                 /* DNS-1123 label: policies/<name>.yaml */
    const char *yaml;                 /* one or more manifests */
};

struct render_cluster {
    const char *name;                 /* DNS-1123 label */
    const struct render_kv *metadata; /* -> cluster.<key> in resedge-config */
    size_t n_metadata;
    const struct render_kv *config;   /* effective configuration */
    size_t n_config;
    const struct render_namespace *namespaces;
    size_t n_namespaces;
    const struct render_app *apps;
    size_t n_apps;
    const struct render_policy *policies;
    size_t n_policies;
};

/* Rendered files: owned copies, sorted by path (bytewise) once finished. */
struct render_entry {
    char *path;
    char *data;
    size_t len;
};

struct render_tree {
    struct render_entry *v;
    size_t n;
    size_t cap;
    bool sorted;
};

int render_tree_new(struct render_tree **out);
void render_tree_free(struct render_tree *t);            /* NULL-safe */
/* Copies path and data. The path is checked (relative, no "", ".", ".."
 * segments, no ".git"): -RE_EINVAL otherwise. */
int render_tree_add(struct render_tree *t, const char *path, const void *data, size_t len);
/* Takes ownership of data (malloc'd) even on failure. */
int render_tree_add_owned(struct render_tree *t, const char *path, char *data, size_t len);
/* Sorts by path; -RE_EEXIST when a path appears twice or a path is both a
 * file and a directory. Idempotent. */
int render_tree_finish(struct render_tree *t);
/* The entry at path in a finished tree, or NULL. */
const struct render_entry *render_tree_get(const struct render_tree *t, const char *path);
/* Writes every file under dir (created as needed). */
int render_tree_write_dir(const struct render_tree *t, const char *dir);
/* True when both finished trees hold the same paths with the same bytes. */
bool render_tree_equal(const struct render_tree *a, const struct render_tree *b);

/*
 * Renders one cluster into a new finished tree (*out, freed with
 * render_tree_free). Returns 0; -RE_EINVAL when an input is unusable (a name
 * that is not a DNS-1123 label, a URL Flux would reject, a policy that is not
 * YAML manifests, an invalid ConfigMap key, invalid UTF-8, a base path that
 * escapes its folder...) with a message naming it in err (may be NULL);
 * -RE_ENOMEM.
 */
int render_cluster(struct render_tree **out, const struct render_cluster *c,
                   struct re_buf *err);

/*
 * render_cluster remembers the files it emitted (bounded, thread-safe), keyed
 * by their complete content tree, so libyaml runs once per distinct document
 * across a fleet; a hit is exactly what the emitter would write. Turning it
 * off (or on) also empties it; for tests and measurements.
 */
void render_cache_set_enabled(bool on);
/* Files served from the memo, and emitted (since start). */
void render_cache_stats(uint64_t *hits, uint64_t *misses);

/* DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
bool render_is_dns_label(const char *s);

#endif
