/* tenant_files.c - checks an application's inline files (tenant_files.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "error.h"
#include "manifests.h"
#include "tenant_files.h"

int tenant_path_check(const char *p, const char **why)
{
    if (strstr(p, "://") || strncmp(p, "git@", 4) == 0 || strncmp(p, "git::", 5) == 0) {
        *why = "is remote: an application lists only its own files";
        return -RE_EINVAL;
    }
    if (p[0] == '/' || p[0] == '~') {
        *why = "is absolute: paths are relative to the application";
        return -RE_EINVAL;
    }
    /* "github.com/org/repo//dir": kustomize fetches a first segment with a dot */
    const char *slash = strchr(p, '/'), *dot = strchr(p, '.');
    bool hostlike = slash && dot && dot > p && dot < slash &&
                    (strstr(p, "//") || memmem(p, (size_t)(slash - p), ".com", 4) ||
                     memmem(p, (size_t)(slash - p), ".org", 4) ||
                     memmem(p, (size_t)(slash - p), ".io", 3) ||
                     memmem(p, (size_t)(slash - p), ".net", 4));
    if (hostlike) {
        *why = "looks like a remote repository (host/path): an application lists only its own files";
        return -RE_EINVAL;
    }
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            *why = "holds '..': it would leave the application's files";
            return -RE_EINVAL;
        }
        s += n;
        while (*s == '/')
            s++;
    }
    return 0;
}

static bool is_kustomization(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strcmp(base, "kustomization.yaml") == 0 || strcmp(base, "kustomization.yml") == 0 ||
           strcmp(base, "Kustomization") == 0;
}

/* Each path a kustomization names, in a list of scalars or of maps' "path"/"files". */
static int check_list(yaml_document_t *d, yaml_node_t *seq, const char *field, const char *file,
                      char *why, size_t why_size)
{
    if (!seq)
        return 0;
    if (seq->type != YAML_SEQUENCE_NODE) {
        snprintf(why, why_size, "file '%s': %s must be a list", file, field);
        return -RE_EINVAL;
    }
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *n = yaml_document_get_node(d, *it);
        const char *one[2] = { manifest_scalar(n), NULL };
        if (n && n->type == YAML_MAPPING_NODE) {
            one[0] = manifest_scalar(manifest_get(d, n, "path"));
            yaml_node_t *files = manifest_get(d, n, "files");
            yaml_node_t *envs = manifest_get(d, n, "envs");
            int r;
            if ((r = check_list(d, files, field, file, why, why_size)) < 0 ||
                (r = check_list(d, envs, field, file, why, why_size)) < 0)
                return r;
        }
        for (size_t i = 0; one[i]; i++) {
            const char *p = one[i], *w = NULL;
            const char *eq = strchr(p, '=');  /* generator "key=path" */
            if (eq && !strstr(p, "://"))
                p = eq + 1;
            if (tenant_path_check(p, &w) < 0) {
                snprintf(why, why_size, "file '%s': %s entry '%.200s' %s", file, field, one[i], w);
                return -RE_EINVAL;
            }
        }
    }
    return 0;
}

static int check_kustomization(yaml_document_t *d, yaml_node_t *root, const char *file, char *why,
                               size_t why_size)
{
    static const char *const lists[] = { "resources", "bases", "components", "crds",
                                         "patchesStrategicMerge", "patches", "patchesJson6902",
                                         "configMapGenerator", "secretGenerator", "transformers",
                                         "generators", "validators", NULL };
    int r;
    if (manifest_get(d, root, "helmCharts") || manifest_get(d, root, "helmChartInflationGenerator")) {
        snprintf(why, why_size, "file '%s': helmCharts fetch remote charts: an application "
                 "lists only its own files", file);
        return -RE_EINVAL;
    }
    for (size_t i = 0; lists[i]; i++)
        if ((r = check_list(d, manifest_get(d, root, lists[i]), lists[i], file, why, why_size)) < 0)
            return r;
    return 0;
}

int tenant_file_check(const char *path, const char *content, size_t len, char *why,
                      size_t why_size)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int r = 0, n = 0;
    const char *dot = strrchr(path, '.');
    bool yamlish = is_kustomization(path) ||
                   (dot && (strcasecmp(dot, ".yaml") == 0 || strcasecmp(dot, ".yml") == 0));
    if (!yamlish)
        return 0;                   /* data files (config, scripts) are not applied */
    if (!yaml_parser_initialize(&parser))
        return -RE_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)content, len);
    for (;;) {
        if (!yaml_parser_load(&parser, &doc)) {
            snprintf(why, why_size, "file '%s': yaml: %s at line %zu", path,
                     parser.problem ? parser.problem : "syntax error", parser.problem_mark.line + 1);
            r = -RE_EINVAL;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {                /* end of stream */
            yaml_document_delete(&doc);
            break;
        }
        n++;
        const char *kind = manifest_scalar(manifest_get(&doc, root, "kind"));
        if (kind && manifest_kind_cluster_scoped(kind)) {
            snprintf(why, why_size, "file '%s', document %d: kind %.100s is cluster-scoped: an "
                     "application holds only objects of its own namespace", path, n, kind);
            r = -RE_EINVAL;
        } else if (is_kustomization(path)) {
            r = check_kustomization(&doc, root, path, why, why_size);
        }
        yaml_document_delete(&doc);
        if (r < 0)
            break;
    }
    yaml_parser_delete(&parser);
    return r;
}
