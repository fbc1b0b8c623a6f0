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
    " UNION ALL SELECT key, 1000000, 'cluster', value FROM cluster_config"
    "  WHERE cluster_id = ?1"
    " ORDER BY 1, 2 DESC, 3";

int config_effective(sqlite3 *db, int64_t cluster_id, cJSON **out)
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
    /* every group the cluster is in and their ancestors, each once; then the
     * cluster's own values as depth "infinity" */
    if (db_prepare_cached(db, SQL_CONFIG_ROWS, &st) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, cluster_id);
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
            goto out;
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
                    goto out;
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
    if (rc != SQLITE_DONE)
        goto out;
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
