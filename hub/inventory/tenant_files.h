/* tenant_files.h - what an application's inline files (source.base.files)
 * may hold. Every application is applied with its namespace's account only
 * (gitops/render.c: the resedge-tenant ServiceAccount, admin in that
 * namespace), so a cluster-scoped object would fail on every store at apply
 * time; the API refuses it up front, naming the kind and the file:
 *   - no cluster-scoped kind (Namespace, ClusterRole, ClusterRoleBinding,
 *     CustomResourceDefinition, webhooks, ... and any kind named Cluster*),
 *     in any document of a multi-document file;
 *   - a kustomization lists only files of the application itself: no remote
 *     resources (https://, git@, github.com/...), no absolute paths, no "..",
 *     in resources, components, patches and generators; no helmCharts.
 * A git source's path is held to the same path rule (tenant_path_check). */
#ifndef HUB_INVENTORY_TENANT_FILES_H
#define HUB_INVENTORY_TENANT_FILES_H

#include <stddef.h>

/* 0, or -RE_EINVAL with why ("file 'a.yaml', document 2: kind
 * ClusterRoleBinding is cluster-scoped ..."). */
int tenant_file_check(const char *path, const char *content, size_t len, char *why,
                      size_t why_size);
/* A path inside the application's own files: relative, no "..", not remote.
 * 0, or -RE_EINVAL with why. */
int tenant_path_check(const char *p, const char **why);

#endif
