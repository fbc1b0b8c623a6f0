/* api_config.c - configuration values on groups and clusters (api_config.h);
 * the effective-configuration merge is inventory/config_values.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api_config.h"
#include "error.h"
#include "http/routes.h"
#include "inventory/auth.h"
#include "inventory/config_values.h"
#include "inventory/db.h"
#include "validate.h"
#include "json.h"
#include "request.h"

/* Which object a config route is about. */
struct owner {
    bool group;                  /* else cluster */
    int64_t id;
    char *name;                  /* path or cluster name */
};

static int find_owner(struct api_req *req, struct owner *o)
{
    struct inv_req *q = &req->q;
    char *ref = NULL;
    cJSON *obj = NULL;
    int rc;
    o->group = re_str_startswith_c(req->x->req.path, "/api/v1/groups/");
    if ((rc = api_param(req, 0, &ref)) < 0)
        return rc;
    const struct inv_entity *e = o->group ? &inv_group : &inv_cluster;
    rc = inv_lookup(q, e, ref, &o->id);
    free(ref);
    if (rc < 0)
        return rc;
    if ((rc = inv_read(q, e, o->id, &obj)) < 0)
        return inv_fail_err(q, rc);
    o->name = strdup(cJSON_GetObjectItem(obj, e->key)->valuestring);
    cJSON_Delete(obj);
    return o->name ? 0 : inv_fail_err(q, -RE_ENOMEM);
}

/* ?namespace=NS: the scope of a value ("" = every namespace), malloc'd. */
static int scope_param(struct api_req *req, char **ns)
{
    struct inv_req *q = &req->q;
    const char *why = NULL;
    int r = api_query(req, "namespace", ns);
    if (r < 0)
        return r;
    if (!*ns && !(*ns = strdup("")))
        return inv_fail_err(q, -RE_ENOMEM);
    if ((*ns)[0] && validate_dns_label(re_str_c(*ns), &why) < 0)
        return inv_fail(q, 400, "invalid", "namespace", "namespace %s", why);
    return 0;
}

/* A scoped value names an inventory namespace. */
static int check_scope(struct inv_req *q, const char *ns)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!ns[0])
        return 0;
    if (sqlite3_prepare_v2(q->db, "SELECT 1 FROM namespaces WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return inv_fail_err(q, -RE_EDB);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return inv_fail_err(q, -RE_EDB);
    return inv_fail(q, 400, "invalid", "namespace", "namespace '%s' does not exist", ns);
}

static int config_get_effective(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    struct owner o = { 0 };
    cJSON *out = NULL;
    char *ns = NULL;
    int r;
    api_req_init(&req, x);
    if (api_require_role(&req, ROLE_READERS | ROLE_APPTEAM | ROLE_AGENT) < 0 ||
        find_owner(&req, &o) < 0)
        goto fail;
    if (inv_require_own_cluster(q, o.name) < 0)
        goto fail;
    if (scope_param(&req, &ns) < 0 || check_scope(q, ns) < 0)
        goto fail;
    /* An app team reads its namespace's view only: the fleet-wide keys and
     * its own, on the stores that namespace reaches. */
    if (q->peer->role == ROLE_APPTEAM) {
        bool owns = false, reaches = false;
        if (!ns[0]) {
            inv_fail(q, 400, "invalid", "namespace",
                     "an app team reads the configuration of one of its namespaces: add "
                     "?namespace=NAME");
            goto fail;
        }
        if ((r = auth_owns_namespace(q->db, q->peer, ns, &owns)) < 0 ||
            (r = auth_namespace_reaches(q->db, ns, o.name, &reaches)) < 0) {
            inv_fail_err(q, r);
            goto fail;
        }
        if (!owns || !reaches) {
            inv_fail(q, 403, "forbidden", "namespace",
                     owns ? "namespace '%s' does not reach cluster '%s'"
                          : "'%s' is not your namespace (cluster '%s')", ns, o.name);
            goto fail;
        }
    }
    if ((r = config_effective_ns(q->db, o.id, ns, &out)) < 0) {
        inv_fail_err(q, r);
        goto fail;
    }
    http_response_json(&x->res, 200, out);
    goto out;
fail:
    api_reply_error(&req);
out:
    cJSON_Delete(out);
    free(ns);
    free(o.name);
    return 0;
}

static int config_get_group(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    struct owner o = { 0 };
    cJSON *out = NULL, *values;
    sqlite3_stmt *st = NULL;
    int rc;
    api_req_init(&req, x);
    if (api_require_role(&req, ROLE_READERS) < 0 || find_owner(&req, &o) < 0)
        goto fail;
    if (!(out = cJSON_CreateObject()) || !cJSON_AddStringToObject(out, "group", o.name) ||
        !(values = cJSON_AddObjectToObject(out, "values")) ||
        sqlite3_prepare_v2(q->db, "SELECT key, value, namespace FROM group_config"
                           " WHERE group_id = ? ORDER BY namespace, key", -1, &st, NULL) !=
            SQLITE_OK) {
        inv_fail_err(q, -RE_EDB);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, o.id);
    cJSON *scoped = cJSON_AddObjectToObject(out, "namespaced");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ns = (const char *)sqlite3_column_text(st, 2);
        cJSON *into = values;
        if (ns && ns[0] && scoped) {
            into = cJSON_GetObjectItemCaseSensitive(scoped, ns);
            if (!into)
                into = cJSON_AddObjectToObject(scoped, ns);
        }
        if (into)
            cJSON_AddStringToObject(into, (const char *)sqlite3_column_text(st, 0),
                                    (const char *)sqlite3_column_text(st, 1));
    }
    if (rc != SQLITE_DONE) {
        inv_fail_err(q, db_err(rc));
        goto fail;
    }
    http_response_json(&x->res, 200, out);
    goto out;
fail:
    api_reply_error(&req);
out:
    sqlite3_finalize(st);
    cJSON_Delete(out);
    free(o.name);
    return 0;
}

/* The current value of key on the owner, or NULL (malloc'd). */
static int current_value(struct inv_req *q, const struct owner *o, const char *key,
                         const char *ns, char **out)
{
    sqlite3_stmt *st = NULL;
    int rc;
    *out = NULL;
    if (sqlite3_prepare_v2(q->db, o->group
                           ? "SELECT value FROM group_config WHERE group_id = ? AND key = ?"
                             " AND namespace = ?"
                           : "SELECT value FROM cluster_config WHERE cluster_id = ? AND key = ?"
                             " AND namespace = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return inv_fail_err(q, -RE_EDB);
    sqlite3_bind_int64(st, 1, o->id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ns, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return inv_fail_err(q, db_err(rc));
    return 0;
}

static cJSON *kv(const struct owner *o, const char *key, const char *ns, const char *value)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, o->group ? "group" : "cluster", o->name);
    cJSON_AddStringToObject(j, "key", key);
    if (ns[0])
        cJSON_AddStringToObject(j, "namespace", ns);
    cJSON_AddStringToObject(j, "value", value);
    return j;
}

static int config_put_or_delete(struct http_exchange *x, bool put)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    struct owner o = { 0 };
    cJSON *body = NULL, *before = NULL, *after = NULL;
    char *key = NULL, *old = NULL, *ns = NULL, name[400], summary[600];
    const char *why = NULL;
    sqlite3_stmt *st = NULL;
    api_req_init(&req, x);
    if (q->status || api_require_role(&req, ROLE_ADMIN | ROLE_OPERATOR) < 0 ||
        api_param(&req, 1, &key) < 0)
        goto fail;
    if (validate_key(re_str_c(key), &why) < 0) {
        inv_fail(q, 400, "invalid", "key", "key %s", why);
        goto fail;
    }
    if (scope_param(&req, &ns) < 0)
        goto fail;
    if (put) {
        static const char *const allowed[] = { "value", NULL };
        const char *bad;
        const cJSON *v;
        if (api_parse_object(&req, &body) < 0)
            goto fail;
        if ((bad = re_json_unknown_key(body, allowed))) {
            inv_fail(q, 400, "unknown_field", bad, "unknown field '%.100s'", bad);
            goto fail;
        }
        v = cJSON_GetObjectItem(body, "value");
        if (!cJSON_IsString(v)) {
            inv_fail(q, 400, "invalid", "value", "value must be a string");
            goto fail;
        }
        if (validate_value(re_str_c(v->valuestring), &why) < 0) {
            inv_fail(q, 400, "invalid", "value", "value %s", why);
            goto fail;
        }
    }
    if (inv_begin(q) < 0 || find_owner(&req, &o) < 0 || check_scope(q, ns) < 0 ||
        current_value(q, &o, key, ns, &old) < 0)
        goto fail;
    if (!put && !old) {
        inv_fail(q, 404, "not_found", "key", "'%s' has no value for '%s'", o.name, key);
        goto fail;
    }
    const char *value = put ? cJSON_GetObjectItem(body, "value")->valuestring : NULL;
    const char *sql = put ? (o.group ? "INSERT OR REPLACE INTO group_config (group_id, key,"
                                       " namespace, value, updated_at, updated_by)"
                                       " VALUES (?, ?, ?, ?, ?, ?)"
                                     : "INSERT OR REPLACE INTO cluster_config (cluster_id, key,"
                                       " namespace, value, updated_at, updated_by)"
                                       " VALUES (?, ?, ?, ?, ?, ?)")
                          : (o.group ? "DELETE FROM group_config WHERE group_id = ? AND key = ?"
                                       " AND namespace = ?"
                                     : "DELETE FROM cluster_config WHERE cluster_id = ? AND key = ?"
                                       " AND namespace = ?");
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        inv_fail_err(q, -RE_EDB);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, o.id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ns, -1, SQLITE_STATIC);
    if (put) {
        sqlite3_bind_text(st, 4, value, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, q->now);
        sqlite3_bind_text(st, 6, q->actor, -1, SQLITE_STATIC);
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        inv_fail_err(q, -RE_EDB);
        goto fail;
    }
    before = old ? kv(&o, key, ns, old) : NULL;
    after = put ? kv(&o, key, ns, value) : NULL;
    snprintf(name, sizeof(name), "%s", o.name);
    if (audit_record(q->db, q->now, q->actor, put ? "set" : "unset", "config", o.id, name, before,
                     after) < 0) {
        inv_fail_err(q, -RE_EDB);
        goto fail;
    }
    snprintf(summary, sizeof(summary), "config %s%s%s on %s %s", key, ns[0] ? " for " : "",
             ns, o.name, put ? "set" : "unset");
    struct inventory_change chg = { "config", put ? "set" : "unset", o.id, name, q->actor,
                                    before, after, summary };
    if (api_finish(&req, put ? (old ? 200 : 201) : 204, after, &chg, NULL, 0) < 0)
        goto fail;
    goto out;
fail:
    api_reply_error(&req);
out:
    sqlite3_finalize(st);
    cJSON_Delete(body);
    cJSON_Delete(before);
    cJSON_Delete(after);
    free(key);
    free(old);
    free(ns);
    free(o.name);
    return 0;
}

static int config_put(struct http_exchange *x) { return config_put_or_delete(x, true); }
static int config_delete(struct http_exchange *x) { return config_put_or_delete(x, false); }

const struct route config_routes[] = {
    /* a group's values reach every store under it: the platform's to read */
    { "GET", "/api/v1/groups/{id}/config", config_get_group, ROLE_READERS },
    { "PUT", "/api/v1/groups/{id}/config/{key}", config_put, ROLE_ADMIN | ROLE_OPERATOR },
    { "DELETE", "/api/v1/groups/{id}/config/{key}", config_delete, ROLE_ADMIN | ROLE_OPERATOR },
    { "GET", "/api/v1/clusters/{name}/config", config_get_effective,
      ROLE_READERS | ROLE_APPTEAM | ROLE_AGENT },
    { "PUT", "/api/v1/clusters/{name}/config/{key}", config_put, ROLE_ADMIN | ROLE_OPERATOR },
    { "DELETE", "/api/v1/clusters/{name}/config/{key}", config_delete, ROLE_ADMIN | ROLE_OPERATOR },
    { NULL, NULL, NULL, 0 },
};
