/*
 * inventory.h - the hub's inventory API: groups, clusters, namespaces,
 * applications and policies over one generic create/get/list/update/delete
 * engine (inventory.c) driven by per-entity descriptors
 * (inventory_entities.c), plus configuration values (api_config.c), bulk
 * import (api_import.c) and the audit log (audit.c).
 *
 * REST shapes (all JSON; errors {"error": {"code", "message", "field"}}):
 *   POST   /api/v1/{groups,clusters,namespaces,applications,policies}
 *            -> 201, Location: /api/v1/<plural>/<id>, ETag: "<version>", the object
 *   GET    /api/v1/<plural>/{id-or-name} -> 200 object (ETag)
 *            groups are named by path: give the id, or the path percent-encoded
 *            as one segment (/api/v1/groups/%2Fstores%2Fcentral)
 *   PATCH  /api/v1/<plural>/{id-or-name} [If-Match: <version>]
 *            each given field replaces the stored one, except metadata, which
 *            is merged (a key set to null is removed); the name (path) and an
 *            application's namespace cannot change. Stale If-Match -> 412.
 *   DELETE /api/v1/<plural>/{id-or-name} [If-Match] -> 204
 *            a group holding clusters or subgroups -> 409 unless ?cascade=true,
 *            which deletes the group and its subgroups and their memberships
 *            (never the clusters); a namespace with applications -> 409.
 *   GET    /api/v1/<plural>?limit=1..1000 (default 100)&orderby=name|id|
 *            created_at|updated_at[ desc]&search=TEXT&metadata.KEY=VALUE
 *            clusters also: group=/path (with descendants), expression=EXPR
 *            applications also: namespace=NAME
 *          -> {"items": [...], "next": CURSOR-or-null}; then ?next=CURSOR
 *          (the cursor carries the query: other parameters but limit are
 *          ignored with it). Keyset paging: no repeat, no gap.
 *   Every mutating call takes ?dry_run=true: it runs in a transaction that is
 *   rolled back and answers 200 {"dry_run": true, "status": <status it would
 *   have>, "result": <object or null>, ...what the preview hook adds}.
 *   &diff=CLUSTER asks the preview for that cluster's diff (400 field "diff"
 *   when it is not a DNS-1123 label).
 *
 * Sources of applications: {"git": {"url", "ref", "path"}} or {"base":
 * {"files": {"relative/path.yaml": "content", ...}, "image": "registry/name"}}
 * (image: whose tag a version's image_tag sets). Versions: [{"version",
 * "expression", "ref" | "image_tag", "path"}]; see inventory_plan.h for which
 * version a cluster gets.
 *
 * Groups are created with their missing ancestors (like mkdir -p). A cluster
 * naming a group that does not exist -> 400 field "groups" (import can create
 * them with ?create_groups=true).
 *
 * Roles (enum hub_role): admin everything; operator all inventory; appteam
 * reads groups, clusters, namespaces, applications, policies and effective
 * configuration, and writes namespaces whose owners hold its identity and
 * applications in them; technician reads groups and clusters and creates
 * clusters; agent reads only its own cluster and its configuration.
 */
#ifndef HUB_INVENTORY_H
#define HUB_INVENTORY_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "oid.h"

struct hub;

/* One committed (or previewed) request's change, for the GitOps writer. */
struct inventory_change {
    const char *entity;          /* "group", "cluster", "namespace", "application",
                                    "policy", "config", "import" */
    const char *action;          /* "create", "update", "delete", "set", "unset", "import" */
    int64_t id;                  /* the primary object's id (0 for import) */
    const char *name;            /* its name or path ("store-0042/key" for config) */
    const char *actor;           /* "user/admin" */
    const cJSON *before;         /* NULL for create and import */
    const cJSON *after;          /* NULL for delete and import */
    const char *summary;         /* one line for a commit message ("cluster store-1 created") */
};

struct inventory_hooks {
    void *ctx;
    /* After COMMIT, on the loop thread. */
    void (*committed)(void *ctx, struct hub *hub, const struct inventory_change *c);
    /* In a dry run, inside the transaction before ROLLBACK: may add members to
     * answer (e.g. "clusters": which clusters would change). diff_cluster is
     * the request's ?diff=NAME (already checked to be a DNS-1123 label), or
     * NULL when not given. A negative return fails the request with 500. */
    int (*preview)(void *ctx, struct hub *hub, const struct inventory_change *c,
                   const char *diff_cluster, cJSON *answer);
    /* The commit cluster should run, as 40 hex digits; -RE_ENOENT when
     * there is none (yet). Loop thread. */
    int (*desired_revision)(void *ctx, struct hub *hub, const char *cluster, char out[RE_OID_BUF]);
    /* Why cluster's branch stopped moving (its render fails): 0 with out,
     * -RE_ENOENT when it renders. */
    int (*render_error)(void *ctx, struct hub *hub, const char *cluster, char *out, size_t size);
};

/* Installs the hooks (copied); NULL removes them. */
void inventory_set_hooks(const struct inventory_hooks *h);
/* The desired_revision hook, or -RE_ENOENT without one. */
int inventory_desired_revision(struct hub *hub, const char *cluster, char out[RE_OID_BUF]);
/* The render_error hook, or -RE_ENOENT without one. */
int inventory_render_error(struct hub *hub, const char *cluster, char *out, size_t size);


#endif
