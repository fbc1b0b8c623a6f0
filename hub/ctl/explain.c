/* explain.c - the data model as the CLI explains it: each kind's fields with
 * type, meaning and an example, for `resedgectl explain KIND[.FIELD]` and
 * for the field list in each create/update command's --help. The hub's
 * validation (hub/inventory/entities.c) is the authority; this table says
 * what it accepts in words. */
#include <string.h>
#include "ctl.h"

struct field {
    const char *path;                /* "quota.cpu": dotted for nested members */
    const char *type;
    const char *flags;               /* "required", "read-only", "immutable" or "" */
    const char *meaning;
    const char *example;             /* as --set F=V (or F:=JSON) would write it */
};

struct kind {
    const char *kind;                /* "application" */
    const char *alias;               /* the command word: "apps" */
    const char *summary;
    const struct field *fields;      /* ends with a NULL path */
};

#define COMMON_FIELDS(KEYNOTE)                                                                    \
    { "description", "string", "", "free text for people (one paragraph)",                      \
      "description='drive-thru stores of Texas'" },                                              \
    { "metadata", "object of string: string", "",                                                \
      "labels of your own; expressions select on them as /m/KEY/VALUE" KEYNOTE,                  \
      "--metadata format=drive-thru" },                                                          \
    { "version", "integer", "read-only",                                                         \
      "the record's revision: +1 on every change (the CLI shows it as 'revision'; "             \
      "--if-match REVISION)", "3" },                                                             \
    { "id", "integer", "read-only", "the hub's number for the record", "17" },                   \
    { "created_at", "RFC 3339 time", "read-only", "when it was created", "2026-01-02T03:04:05Z" }, \
    { "updated_at", "RFC 3339 time", "read-only", "when it last changed", "2026-01-02T03:04:05Z" }

static const struct field group_fields[] = {
    { "path", "string", "required, immutable",
      "where the group sits: /TREE/NAME/...; its parent must exist (or --create-groups on import)",
      "/stores/central/tx" },
    COMMON_FIELDS(""),
    { NULL, NULL, NULL, NULL, NULL },
};

static const struct field cluster_fields[] = {
    { "name", "string", "required, immutable",
      "the store cluster's name: lowercase letters, digits and '-' (a DNS label)", "store-0042" },
    { "groups", "array of group paths", "",
      "the groups the cluster is in; expressions select on them as /g/PATH", "--group /stores/central/tx" },
    { "timezone", "string (IANA zone)", "", "the store's time zone (an IANA name)",
      "timezone=America/Chicago" },
    COMMON_FIELDS(""),
    { "agent", "object", "read-only", "what the cluster's agent last reported (status, revisions)",
      "" },
    { "pinned", "boolean", "read-only",
      "true while a revert holds the cluster's branch (release: clusters unpin)", "true" },
    { "pinned_revision", "string", "read-only", "the commit the cluster is pinned at", "4f2a9c0d1e3b" },
    { NULL, NULL, NULL, NULL, NULL },
};

static const struct field namespace_fields[] = {
    { "name", "string", "required, immutable",
      "the Kubernetes namespace created on the clusters it selects (a DNS label)", "pos" },
    { "owners", "array of identities", "",
      "who may change it and its applications: user/NAME (app teams)", "owners:='[\"user/alice\"]'" },
    { "expression", "string (selection expression)", "",
      "which clusters get the namespace: /g/GROUP-PATH, /m/KEY/VALUE, and, or, not, ()",
      "--expression '/g/stores/central and not /m/ring/prod'" },
    { "quota", "object", "", "the namespace's ResourceQuota: cpu, memory, pods",
      "quota:='{\"cpu\": \"4\", \"memory\": \"8Gi\", \"pods\": 50}'" },
    { "quota.cpu", "string (Kubernetes quantity)", "", "CPU for all pods together (>= 100m)",
      "quota.cpu=4" },
    { "quota.memory", "string (Kubernetes quantity)", "", "memory for all pods together (>= 128Mi)",
      "quota.memory=8Gi" },
    { "quota.pods", "integer 1-1000000", "", "how many pods at most", "quota.pods:=50" },
    { "network", "object of booleans", "",
      "the namespace's NetworkPolicies: default_deny, allow_dns, allow_same_namespace",
      "network:='{\"default_deny\": true}'" },
    { "network.default_deny", "boolean", "", "refuse traffic nothing allows", "network.default_deny:=true" },
    { "network.allow_dns", "boolean", "", "with default_deny: still allow DNS lookups",
      "network.allow_dns:=true" },
    { "network.allow_same_namespace", "boolean", "",
      "with default_deny: allow traffic between pods of the namespace",
      "network.allow_same_namespace:=true" },
    COMMON_FIELDS(""),
    { NULL, NULL, NULL, NULL, NULL },
};

static const struct field application_fields[] = {
    { "name", "string", "required, immutable",
      "the application's name (a DNS label of at most 51 characters: Flux's label)", "pos-api" },
    { "namespace", "string", "required, immutable",
      "the namespace it runs in (you must own it as an app team)", "namespace=pos" },
    { "owner", "string (identity)", "", "who is responsible for it (default: who created it)",
      "owner=user/alice" },
    { "source", "object", "", "where its manifests come from: exactly one of git and base",
      "source:='{\"git\": {\"url\": \"https://git.example/pos.git\", \"ref\": \"main\"}}'" },
    { "source.git", "object", "", "a Git repository Flux pulls: url, ref, path", "" },
    { "source.git.url", "string (URL)", "", "https://, http:// or ssh:// URL of the repository",
      "source.git.url=https://git.example/pos.git" },
    { "source.git.ref", "string", "", "the branch or tag (a version's ref overrides it)",
      "source.git.ref=main" },
    { "source.git.path", "string", "", "the folder in the repository with the kustomization",
      "source.git.path=deploy" },
    { "source.base", "object", "", "manifests kept in the hub: files, image", "" },
    { "source.base.files", "object of path: content", "", "the manifest files themselves",
      "--set-file source.base.files.deployment.yaml=deployment.yaml" },
    { "source.base.image", "string", "", "the image whose tag a version's image_tag sets",
      "source.base.image=registry.example/pos-api" },
    { "versions", "array of objects", "",
      "the app's versions and which clusters run each: version, expression, and ref, path "
      "or image_tag",
      "versions:='[{\"version\": \"1.4.0\", \"expression\": \"/g/rings/beta\", \"image_tag\": \"1.4.0\"}]'" },
    { "versions[].version", "string (label value)", "required", "the version's name",
      "\"1.4.0\"" },
    { "versions[].expression", "string (selection expression)", "required",
      "the clusters that run this version",
      "\"/g/rings/beta\"" },
    { "versions[].ref", "string", "", "the Git branch or tag of this version", "\"v1.4.0\"" },
    { "versions[].path", "string", "", "the folder in the repository for this version", "\"deploy/v1.4\"" },
    { "versions[].image_tag", "string", "", "the image tag of this version (source.base)", "\"1.4.0\"" },
    COMMON_FIELDS(""),
    { NULL, NULL, NULL, NULL, NULL },
};

static const struct field policy_fields[] = {
    { "name", "string", "required, immutable", "the policy's name (a DNS label)", "no-privileged" },
    { "yaml", "string (Kubernetes YAML)", "",
      "the objects the policy puts on the clusters it selects (one or more documents)",
      "--set-file yaml=policy.yaml" },
    { "expression", "string (selection expression)", "", "which clusters get the policy",
      "--expression /g/stores" },
    { "namespaces", "array of namespace names", "",
      "the namespaces its namespaced objects go to (each must exist)",
      "namespaces:='[\"pos\"]'" },
    COMMON_FIELDS(""),
    { NULL, NULL, NULL, NULL, NULL },
};

static const struct kind kinds[] = {
    { "group", "groups", "a business group: a node in a tree such as /stores/central/tx or "
      "/rings/beta; clusters are in groups, expressions select groups", group_fields },
    { "cluster", "clusters", "a store's Kubernetes cluster, run by its agent", cluster_fields },
    { "namespace", "namespaces", "a Kubernetes namespace on the clusters its expression "
      "selects, owned by app teams", namespace_fields },
    { "application", "apps", "an app team's workload in one namespace, with versions rolled "
      "out by expression", application_fields },
    { "policy", "policies", "Kubernetes objects the platform puts on the clusters an "
      "expression selects", policy_fields },
    { NULL, NULL, NULL, NULL },
};

static const struct kind *find_kind(const char *s, size_t n)
{
    for (const struct kind *k = kinds; k->kind; k++)
        if ((strlen(k->kind) == n && memcmp(k->kind, s, n) == 0) ||
            (strlen(k->alias) == n && memcmp(k->alias, s, n) == 0) ||
            (n == strlen(k->kind) + 1 && memcmp(k->kind, s, n - 1) == 0 && s[n - 1] == 's') ||
            (n == 3 && memcmp(s, "app", 3) == 0 && strcmp(k->kind, "application") == 0))
            return k;
    return NULL;
}

static bool writable(const struct field *f)
{
    return !strstr(f->flags, "read-only");
}

static void print_field_line(FILE *out, const struct field *f)
{
    fprintf(out, "  %-28s %s%s%s%s\n", f->path, f->type, *f->flags ? " (" : "", f->flags,
            *f->flags ? ")" : "");
}

void ctl_explain_help(FILE *out, const char *singular, bool create)
{
    const struct kind *k = find_kind(singular, strlen(singular));
    if (!k)
        return;
    fprintf(out, "\nfields of %s %s (--set FIELD=VALUE, --set FIELD:=JSON, or -f FILE):\n",
            strchr("aeiou", k->kind[0]) ? "an" : "a", k->kind);
    for (const struct field *f = k->fields; f->path; f++) {
        if (!writable(f) || strchr(f->path, '.') || strchr(f->path, '['))
            continue;
        if (!create && strstr(f->flags, "immutable"))
            continue;
        print_field_line(out, f);
    }
    fprintf(out, "Run 'resedgectl explain %s.FIELD' for a field's meaning and an example.\n",
            k->kind);
}

static void print_field(FILE *out, const struct field *f)
{
    fprintf(out, "FIELD    %s\nTYPE     %s\n", f->path, f->type);
    if (*f->flags)
        fprintf(out, "FLAGS    %s\n", f->flags);
    fprintf(out, "MEANING  %s\n", f->meaning);
    if (*f->example)
        fprintf(out, "EXAMPLE  %s\n", f->example);
}

int ctl_cmd_explain(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                    const char *const *pos, size_t npos)
{
    const char *what = pos[0], *dot = strchr(what, '.');
    size_t klen = dot ? (size_t)(dot - what) : strlen(what);
    const struct kind *k = find_kind(what, klen);

    if (!k) {
        fprintf(stderr, "error: unknown kind '%.*s': use one of", (int)klen, what);
        for (const struct kind *e = kinds; e->kind; e++)
            fprintf(stderr, "%s %s", e == kinds ? "" : ",", e->kind);
        fputc('\n', stderr);
        return CTL_EUSAGE;
    }
    if (dot) {
        const char *name = dot + 1;
        size_t n = strlen(name);
        for (const struct field *f = k->fields; f->path; f++)
            if (strcmp(f->path, name) == 0) {
                fprintf(stdout, "KIND     %s\n", k->kind);
                print_field(stdout, f);
                /* the members of an object field */
                bool head = false;
                for (const struct field *g = k->fields; g->path; g++)
                    if ((strncmp(g->path, name, n) == 0 && g->path[n] == '.') ||
                        (strncmp(g->path, name, n) == 0 && strncmp(g->path + n, "[].", 3) == 0)) {
                        if (!head)
                            fputs("\nFIELDS:\n", stdout);
                        head = true;
                        print_field_line(stdout, g);
                    }
                return CTL_OK;
            }
        fprintf(stderr, "error: %s has no field '%s'; its fields:", k->kind, name);
        for (const struct field *f = k->fields; f->path; f++)
            fprintf(stderr, "%s %s", f == k->fields ? "" : ",", f->path);
        fputc('\n', stderr);
        return CTL_EUSAGE;
    }
    fprintf(stdout, "KIND     %s (resedgectl %s ...)\nMEANING  %s\n\nFIELDS:\n", k->kind, k->alias,
            k->summary);
    for (const struct field *f = k->fields; f->path; f++) {
        print_field_line(stdout, f);
        fprintf(stdout, "      %s\n", f->meaning);
    }
    fprintf(stdout, "\nRun 'resedgectl explain %s.FIELD' for an example.\n", k->kind);
    return CTL_OK;
}
