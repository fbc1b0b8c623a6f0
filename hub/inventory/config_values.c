/* config_values.c - a cluster's effective configuration: the values set on
 * its groups, their ancestors and itself, merged (config_values.h). */
#include <stdlib.h>
#include <string.h>
#include "config_values.h"
#include "db.h"
#include "error.h"
#include "json.h"

/* Cached statements: the GitOps writer asks once per cluster it renders. */
static const char SQL_CLUSTER_NAME[] = "SELECT name FROM clusters WHERE id = ?";
static const char SQL_CONFIG_ROWS[] =
    "WITH RECURSIVE anc(id) AS ("
    "  SELECT group_id FROM cluster_groups WHERE cluster_id = ?1"
    "  UNION SELECT g.parent_id FROM groups g JOIN anc ON g.id = anc.id"
    "  WHERE g.parent_id IS NOT NULL)"
    " SELECT c.key, g.depth, g.path, c.value FROM anc"
    "  JOIN groups g ON g.id = anc.id JOIN group_config c ON c.group_id = g.id"
    "  AND c.namespace = ?2"
    " UNION ALL SELECT key, 1000000, 'cluster', value FROM cluster_config"
    "  WHERE cluster_id = ?1 AND namespace = ?2"
    " ORDER BY 1, 2 DESC, 3";
static const char SQL_ANY_SCOPED[] =
    "SELECT EXISTS (SELECT 1 FROM group_config WHERE namespace <> '')"
    " OR EXISTS (SELECT 1 FROM cluster_config WHERE namespace <> '')";

static int merge_scope(sqlite3 *db, int64_t cluster_id, const char *ns, cJSON *values,
                       cJSON *conflicts);

int config_any_scoped(sqlite3 *db, bool *out)
{
    sqlite3_stmt *st = NULL;
    int r = -RE_EDB;
    *out = false;
    if (db_prepare_cached(db, SQL_ANY_SCOPED, &st) < 0)
        return r;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0) != 0;
        r = 0;
    }
    db_release(st);
    return r;
}

int config_effective(sqlite3 *db, int64_t cluster_id, cJSON **out)
{
    return config_effective_ns(db, cluster_id, NULL, out);
}

int config_effective_ns(sqlite3 *db, int64_t cluster_id, const char *ns, cJSON **out)
{
    sqlite3_stmt *st = NULL;
    cJSON *root = NULL, *values, *conflicts;
    int r = -RE_EDB, rc;
    root = cJSON_CreateObject();
    if (!root || !(values = cJSON_AddObjectToObject(root, "values")) ||
        !(conflicts = cJSON_AddArrayToObject(root, "conflicts"))) {
        r = -RE_ENOMEM;
        goto out;
    }
    if (db_prepare_cached(db, SQL_CLUSTER_NAME, &st) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, cluster_id);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        r = rc == SQLITE_DONE ? -RE_ENOENT : -RE_EDB;
        goto out;
    }
    cJSON_AddItemToObject(root, "cluster",
                          cJSON_CreateString((const char *)sqlite3_column_text(st, 0)));
    cJSON_DetachItemViaPointer(root, values);
    cJSON_DetachItemViaPointer(root, conflicts);
    cJSON_AddItemToObject(root, "values", values);
    cJSON_AddItemToObject(root, "conflicts", conflicts);
    db_release(st);
    st = NULL;
    if ((r = merge_scope(db, cluster_id, "", values, conflicts)) < 0)
        goto out;
    /* the namespace's own values win over the fleet-wide ones at any depth:
     * they were set for it alone */
    if (ns && ns[0]) {
        cJSON *own = cJSON_CreateObject(), *own_conflicts = cJSON_CreateArray(), *m;
        if (!own || !own_conflicts ||
            (r = merge_scope(db, cluster_id, ns, own, own_conflicts)) < 0) {
            cJSON_Delete(own);
            cJSON_Delete(own_conflicts);
            r = r < 0 ? r : -RE_ENOMEM;
            goto out;
        }
        while ((m = own->child)) {
            cJSON_DetachItemViaPointer(own, m);
            cJSON_AddStringToObject(m, "namespace", ns);
            cJSON_DeleteItemFromObjectCaseSensitive(values, m->string);
            cJSON_AddItemToObject(values, m->string, m);
        }
        while ((m = own_conflicts->child)) {
            cJSON_DetachItemViaPointer(own_conflicts, m);
            cJSON_AddStringToObject(m, "namespace", ns);
            cJSON_AddItemToArray(conflicts, m);
        }
        cJSON_Delete(own);
        cJSON_Delete(own_conflicts);
        cJSON_AddStringToObject(root, "namespace", ns);
    }
    /* values as {"value", "source"} in that order */
    cJSON *v;
    cJSON_ArrayForEach(v, values) {
        cJSON *src = cJSON_DetachItemFromObject(v, "source");
        cJSON_AddItemToObject(v, "source", src);
    }
    *out = root;
    root = NULL;
    r = 0;
out:
    db_release(st);
    cJSON_Delete(root);
    return r;
}

/* One scope's values ('' = fleet-wide) over the cluster's groups, their
 * ancestors and itself: the deepest level setting a key wins; levels of the
 * same depth that disagree leave it out, listed under conflicts. */
static int merge_scope(sqlite3 *db, int64_t cluster_id, const char *ns, cJSON *values,
                       cJSON *conflicts)
{
    sqlite3_stmt *st = NULL;
    int r = -RE_EDB, rc;
    /* every group the cluster is in and their ancestors, each once; then the
     * cluster's own values as depth "infinity" */
    if (db_prepare_cached(db, SQL_CONFIG_ROWS, &st) < 0)
        return -RE_EDB;
    sqlite3_bind_int64(st, 1, cluster_id);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    while (rc == SQLITE_ROW) {
        /* rows of one key, deepest first: the first depth decides */
        char *key = strdup((const char *)sqlite3_column_text(st, 0));
        int64_t depth = sqlite3_column_int64(st, 1);
        cJSON *cands = cJSON_CreateArray();
        bool agree = true;
        const char *first = NULL;
        if (!key || !cands) {
            free(key);
            cJSON_Delete(cands);
            r = -RE_ENOMEM;
            goto fail;
        }
        while (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), key) == 0) {
            if (sqlite3_column_int64(st, 1) == depth) {
                cJSON *c = cJSON_CreateObject();
                const cJSON *cv = NULL;
                if (!cJSON_AddStringToObject(c, "source", (const char *)sqlite3_column_text(st, 2)) ||
                    !(cv = cJSON_AddStringToObject(c, "value",
                                                   (const char *)sqlite3_column_text(st, 3))) ||
                    !cJSON_AddItemToArray(cands, c)) {
                    cJSON_Delete(c);
                    free(key);
                    cJSON_Delete(cands);
                    r = -RE_ENOMEM;
                    goto fail;
                }
                const char *v = cv->valuestring;
                if (!first)
                    first = v;
                else if (strcmp(first, v) != 0)
                    agree = false;
            }
            rc = sqlite3_step(st);
        }
        if (agree) {
            cJSON *c = cJSON_DetachItemFromArray(cands, 0);
            cJSON_AddItemToObject(values, key, c);
            cJSON_Delete(cands);
        } else {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "key", key);
            cJSON_AddNumberToObject(c, "depth", (double)depth);
            cJSON_AddItemToObject(c, "candidates", cands);
            cJSON_AddItemToArray(conflicts, c);
        }
        free(key);
    }
    r = rc == SQLITE_DONE ? 0 : -RE_EDB;
fail:
    db_release(st);
    return r;
}
