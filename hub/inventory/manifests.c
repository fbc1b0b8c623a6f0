/* manifests.c - identities and scope of stored Kubernetes objects (manifests.h). */
#include <stdio.h>
#include <string.h>
#include <yaml.h>
#include "error.h"
#include "manifests.h"

static const char *const CLUSTER_KINDS[] = {
    "Namespace", "Node", "PersistentVolume", "ComponentStatus",
    "CustomResourceDefinition", "APIService", "StorageClass", "CSIDriver", "CSINode",
    "VolumeAttachment", "VolumeAttributesClass", "PriorityClass", "RuntimeClass",
    "IngressClass", "CertificateSigningRequest", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding", "FlowSchema", "PriorityLevelConfiguration",
    "SelfSubjectReview", "TokenReview", "SubjectAccessReview", "SelfSubjectAccessReview",
    "SelfSubjectRulesReview", "IPAddress", "ServiceCIDR", "DeviceClass", "ResourceSlice",
    "PolicyException", "GlobalContext", NULL,
};

bool manifest_kind_cluster_scoped(const char *kind)
{
    if (strncmp(kind, "Cluster", 7) == 0)
        return true;
    for (size_t i = 0; CLUSTER_KINDS[i]; i++)
        if (strcmp(kind, CLUSTER_KINDS[i]) == 0)
            return true;
    return false;
}

const char *manifest_scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

yaml_node_t *manifest_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = manifest_scalar(yaml_document_get_node(d, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

int manifest_each(const char *yaml, size_t len, size_t max,
                  int (*fn)(void *ctx, const struct manifest_id *id), void *ctx, char *why,
                  size_t why_size)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int r = 0, n = 0;
    size_t seen = 0;
    if (!yaml_parser_initialize(&parser))
        return -RE_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    for (;;) {
        if (!yaml_parser_load(&parser, &doc)) {
            snprintf(why, why_size, "yaml: %s at line %zu",
                     parser.problem ? parser.problem : "syntax error", parser.problem_mark.line + 1);
            r = -RE_EPARSE;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break;
        }
        n++;
        const char *kind = manifest_scalar(manifest_get(&doc, root, "kind"));
        if (kind) {
            struct manifest_id id = { .doc = n };
            const char *api = manifest_scalar(manifest_get(&doc, root, "apiVersion"));
            yaml_node_t *meta = manifest_get(&doc, root, "metadata");
            const char *ns = manifest_scalar(manifest_get(&doc, meta, "namespace"));
            const char *name = manifest_scalar(manifest_get(&doc, meta, "name"));
            const char *slash = api ? strchr(api, '/') : NULL;
            if (slash)
                snprintf(id.group, sizeof(id.group), "%.*s", (int)(slash - api), api);
            snprintf(id.kind, sizeof(id.kind), "%s", kind);
            snprintf(id.ns, sizeof(id.ns), "%s", ns ? ns : "");
            snprintf(id.name, sizeof(id.name), "%s", name ? name : "");
            if (++seen > max) {
                snprintf(why, why_size, "more than %zu objects", max);
                r = -RE_ETOOBIG;
            } else {
                r = fn(ctx, &id);
            }
        }
        yaml_document_delete(&doc);
        if (r < 0)
            break;
    }
    yaml_parser_delete(&parser);
    return r;
}
