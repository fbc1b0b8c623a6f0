/* manifests.h - what the inventory reads of the Kubernetes objects inside
 * YAML it stores (policies, application files): each object's identity, and
 * whether its kind is cluster-scoped. */
#ifndef HUB_INVENTORY_MANIFESTS_H
#define HUB_INVENTORY_MANIFESTS_H

#include <stdbool.h>
#include <stddef.h>

/* Kubernetes 1.36's cluster-scoped kinds and those of the controllers a store
 * runs (Kyverno, cert-manager); any other kind named Cluster* counts too. */
bool manifest_kind_cluster_scoped(const char *kind);

/* libyaml document helpers: a scalar's text (NULL when n is no scalar), and
 * the value of key in mapping map (NULL when absent or map is no mapping). */
struct yaml_document_s;
struct yaml_node_s;
const char *manifest_scalar(struct yaml_node_s *n);
struct yaml_node_s *manifest_get(struct yaml_document_s *d, struct yaml_node_s *map,
                                 const char *key);

/* One object of a YAML stream: group is the apiVersion's part before '/'
 * ("" for the core group); namespace "" when not given. */
struct manifest_id {
    char group[128];
    char kind[64];
    char ns[64];
    char name[254];
    int doc;                         /* 1-based document number */
};

/* Calls fn for each mapping document with a kind; stops at fn's negative
 * answer and returns it. -RE_EPARSE with why when the YAML does not parse,
 * -RE_ETOOBIG past max objects. */
int manifest_each(const char *yaml, size_t len, size_t max,
                  int (*fn)(void *ctx, const struct manifest_id *id), void *ctx, char *why,
                  size_t why_size);

#endif
