/* api_inventory.c - the inventory's REST handlers: create, get, list,
 * update and delete for every entity descriptor (inventory/entities.c),
 * with If-Match, dry runs and keyset paging. The engine they call is
 * inventory/inventory.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "http/routes.h"
#include "inventory/auth.h"
#include "inventory/db.h"
#include "inventory/expr.h"
#include "inventory/fleet.h"
#include "validate.h"
#include "json.h"
#include "request.h"

#define METADATA_MAX_KEYS 64
/* metadata.KEY list filters: two binds each; with search (2), an entity
 * filter (1) and the cursor (2) they stay within INV_MAX_BINDS. */
#define LIST_MAX_METADATA 8
_Static_assert(2 + 2 * LIST_MAX_METADATA + 1 + 2 <= INV_MAX_BINDS, "list binds overflow");

static const struct inv_entity *const ENTITIES[] = {
    &inv_group, &inv_cluster, &inv_namespace, &inv_application, &inv_policy, NULL,
};

/* The entity named by the path's third segment (/api/v1/<plural>...). */
static const struct inv_entity *entity_of(struct http_exchange *x)
{
    struct re_str p = x->req.path;
    const char *prefix = "/api/v1/";
    size_t n = strlen(prefix);
    if (p.len <= n || memcmp(p.ptr, prefix, n) != 0)
        return NULL;
    const char *s = p.ptr + n;
    size_t len = p.len - n;
    const char *slash = memchr(s, '/', len);
    if (slash)
        len = (size_t)(slash - s);
    for (size_t i = 0; ENTITIES[i]; i++)
        if (strlen(ENTITIES[i]->plural) == len && memcmp(ENTITIES[i]->plural, s, len) == 0)
            return ENTITIES[i];
    return NULL;
}

static int get_if_match(struct api_req *req, int64_t *out)
{
    struct inv_req *q = &req->q;
    struct re_str v = http_header_get(&req->x->req, "If-Match");
    unsigned long long n;
    *out = -1;
    if (!v.ptr || re_str_eq_c(v, "*"))
        return 0;
    if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"')
        v = (struct re_str){ v.ptr + 1, v.len - 2 };
    if (re_str_to_u64(&n, v, (1ULL << 53)) < 0)
        return inv_fail(q, 400, "invalid", "If-Match", "If-Match must be a version number");
    *out = (int64_t)n;
    return 0;
}

static char *location_of(const struct inv_entity *e, int64_t id)
{
    struct re_buf b;
    re_buf_init(&b, 256);
    re_buf_printf(&b, "/api/v1/%s/%lld", e->plural, (long long)id);
    return re_buf_steal(&b);
}

static int64_t version_of(const cJSON *obj)
{
    const cJSON *v = cJSON_GetObjectItem(obj, "version");
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* 412 unless want (from If-Match; -1 when absent) is before's version. */
static int check_version(struct inv_req *q, const struct inv_entity *e, const cJSON *before,
                         int64_t want)
{
    if (want < 0 || want == version_of(before))
        return 0;
    return inv_fail(q, 412, "precondition_failed", "If-Match",
                    "%s has version %lld, not %lld: reload and retry", e->kind,
                    (long long)version_of(before), (long long)want);
}

static int inv_h_create(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    const struct inv_entity *e = entity_of(x);
    cJSON *body = NULL, *after = NULL;
    char *loc = NULL, summary[400];
    int64_t id = 0;
    api_req_init(&req, x);
    if (!e)
        return http_response_error(&x->res, 404, "not_found", NULL, "no such collection"), 0;
    if (q->status || api_require_role(&req, e->create_roles) < 0 ||
        api_parse_object(&req, &body) < 0 || inv_begin(q) < 0 ||
        inv_create_in_txn(q, e, body, &id, &after) < 0)
        goto fail;
    loc = location_of(e, id);
    const char *name = cJSON_GetObjectItem(after, e->key)->valuestring;
    snprintf(summary, sizeof(summary), "%s %s created", e->kind, name);
    struct inventory_change chg = { e->kind, "create", id, name, q->actor, NULL, after, summary };
    if (api_finish(&req, 201, after, &chg, loc, version_of(after)) < 0)
        goto fail;
    goto out;
fail:
    api_reply_error(&req);
out:
    free(loc);
    cJSON_Delete(body);
    cJSON_Delete(after);
    return 0;
}

/* Reads the object named by params[0], checking read permission. */
static int load_target(struct api_req *req, const struct inv_entity *e, enum inv_action a,
                       int64_t *id, cJSON **obj)
{
    struct inv_req *q = &req->q;
    char *ref = NULL;
    int r;
    if ((r = api_param(req, 0, &ref)) < 0)
        return r;
    r = inv_lookup(q, e, ref, id);
    free(ref);
    if (r < 0)
        return r;
    if ((r = inv_read(q, e, *id, obj)) < 0)
        return r == -RE_ENOENT ? inv_fail(q, 404, "not_found", NULL, "%s not found", e->kind)
                               : inv_fail_err(q, r);
    if (e->authorize && (r = e->authorize(q, a, *obj, NULL)) < 0) {
        cJSON_Delete(*obj);
        *obj = NULL;
        return r;
    }
    return 0;
}

static int inv_h_get(struct http_exchange *x)
{
    struct api_req req;
    const struct inv_entity *e = entity_of(x);
    cJSON *obj = NULL;
    int64_t id;
    api_req_init(&req, x);
    if (!e)
        return http_response_error(&x->res, 404, "not_found", NULL, "no such collection"), 0;
    if (api_require_role(&req, e->read_roles) < 0 || load_target(&req, e, INV_READ, &id, &obj) < 0) {
        api_reply_error(&req);
        goto out;
    }
    http_response_header(&x->res, "ETag", "\"%lld\"", (long long)version_of(obj));
    http_response_json(&x->res, 200, obj);
out:
    cJSON_Delete(obj);
    return 0;
}

static int inv_h_update(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    const struct inv_entity *e = entity_of(x);
    cJSON *body = NULL, *before = NULL, *after = NULL;
    char summary[400];
    int64_t id, want;
    api_req_init(&req, x);
    if (!e)
        return http_response_error(&x->res, 404, "not_found", NULL, "no such collection"), 0;
    if (q->status || api_require_role(&req, e->write_roles) < 0 || get_if_match(&req, &want) < 0 ||
        api_parse_object(&req, &body) < 0 || inv_begin(q) < 0 ||
        load_target(&req, e, INV_UPDATE, &id, &before) < 0)
        goto fail;
    if (check_version(q, e, before, want) < 0)
        goto fail;
    if (inv_update_in_txn(q, e, body, id, before, &after) < 0)
        goto fail;
    const char *name = cJSON_GetObjectItem(after, e->key)->valuestring;
    snprintf(summary, sizeof(summary), "%s %s updated", e->kind, name);
    struct inventory_change chg = { e->kind, "update", id, name, q->actor, before, after, summary };
    if (api_finish(&req, 200, after, &chg, NULL, version_of(after)) < 0)
        goto fail;
    goto out;
fail:
    api_reply_error(&req);
out:
    cJSON_Delete(body);
    cJSON_Delete(before);
    cJSON_Delete(after);
    return 0;
}

static int inv_h_delete(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    const struct inv_entity *e = entity_of(x);
    cJSON *before = NULL;
    char summary[400];
    int64_t id, want;
    api_req_init(&req, x);
    if (!e)
        return http_response_error(&x->res, 404, "not_found", NULL, "no such collection"), 0;
    if (q->status || api_require_role(&req, e->write_roles) < 0 || get_if_match(&req, &want) < 0 ||
        api_query_bool(&req, "cascade", false, &q->cascade) < 0 || inv_begin(q) < 0 ||
        load_target(&req, e, INV_DELETE, &id, &before) < 0)
        goto fail;
    if (check_version(q, e, before, want) < 0)
        goto fail;
    if (inv_delete_in_txn(q, e, id, before) < 0)
        goto fail;
    const char *name = cJSON_GetObjectItem(before, e->key)->valuestring;
    snprintf(summary, sizeof(summary), "%s %s deleted", e->kind, name);
    struct inventory_change chg = { e->kind, "delete", id, name, q->actor, before, NULL, summary };
    if (api_finish(&req, 204, NULL, &chg, NULL, 0) < 0)
        goto fail;
    goto out;
fail:
    api_reply_error(&req);
out:
    cJSON_Delete(before);
    return 0;
}

/* ---- lists ---- */

/* "name", "name desc", "-name": column and direction; 400 naming orderby. */
static int parse_orderby(struct inv_req *q, const struct inv_entity *e, const char *s,
                         const char **col, bool *desc)
{
    char word[32] = "";
    size_t n = strcspn(s, " +");
    const char *rest = s + n;
    *desc = false;
    if (*s == '-') {
        *desc = true;
        s++;
        n--;
    }
    if (n >= sizeof(word))
        goto bad;
    memcpy(word, s, n);
    word[n] = '\0';
    while (*rest == ' ' || *rest == '+')
        rest++;
    if (strcmp(rest, "desc") == 0)
        *desc = true;
    else if (*rest && strcmp(rest, "asc") != 0)
        goto bad;
    if (strcmp(word, "id") == 0)
        *col = "id";
    else if (strcmp(word, "name") == 0 || strcmp(word, e->key) == 0)
        *col = e->key;
    else if (strcmp(word, "created_at") == 0)
        *col = "created_at";
    else if (strcmp(word, "updated_at") == 0)
        *col = "updated_at";
    else
        goto bad;
    return 0;
bad:
    return inv_fail(q, 400, "invalid", "orderby",
                    "orderby must be name, id, created_at or updated_at, optionally with ' desc'");
}

/* Collects the list query from the request (or the cursor) into state:
 * {"f": {filters}, "o": orderby, "k": last key, "i": last id}. */
static int list_state(struct api_req *req, const struct inv_entity *e, cJSON **out)
{
    struct inv_req *q = &req->q;
    const char *p = req->x->req.query.ptr, *end = p ? p + req->x->req.query.len : NULL;
    cJSON *state = NULL, *filters, *meta;
    char *next = NULL;
    int r;
    if ((r = api_query(req, "next", &next)) < 0)
        return r;
    if (next) {
        r = api_cursor_decode(&state, next);
        free(next);
        if (r < 0)
            return inv_fail(q, 400, "invalid", "next", "next is not a cursor this list returned");
        *out = state;
        return 0;
    }
    if (!(state = cJSON_CreateObject()) || !(filters = cJSON_AddObjectToObject(state, "f")) ||
        !(meta = cJSON_AddObjectToObject(filters, "metadata"))) {
        cJSON_Delete(state);
        return inv_fail_err(q, -RE_ENOMEM);
    }
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char *k = NULL, *v = NULL;
        r = 0;
        if (stop > p) {
            if (http_percent_decode(&k, (struct re_str){ p, (size_t)((eq ? eq : stop) - p) },
                                    true) < 0 ||
                http_percent_decode(&v, eq ? (struct re_str){ eq + 1, (size_t)(stop - eq - 1) }
                                           : (struct re_str){ "", 0 }, true) < 0) {
                r = inv_fail(q, 400, "invalid", NULL, "badly encoded query string");
            } else if (strncmp(k, "metadata.", 9) == 0) {
                const char *why = NULL;
                if (cJSON_GetArraySize(meta) >= LIST_MAX_METADATA)
                    r = inv_fail(q, 400, "invalid", k, "at most %d metadata filters",
                                 LIST_MAX_METADATA);
                else if (validate_key(re_str_c(k + 9), &why) < 0 ||
                    validate_value(re_str_c(v), &why) < 0)
                    r = inv_fail(q, 400, "invalid", k, "%s: %s", k, why);
                else if (!cJSON_AddStringToObject(meta, k + 9, v))
                    r = inv_fail_err(q, -RE_ENOMEM);
            } else if (strcmp(k, "limit") == 0 || strcmp(k, "dry_run") == 0) {
                /* handled elsewhere */
            } else {
                bool known = strcmp(k, "search") == 0 || strcmp(k, "orderby") == 0;
                for (size_t i = 0; !known && e->list_params && e->list_params[i]; i++)
                    known = strcmp(k, e->list_params[i]) == 0;
                if (!known)
                    r = inv_fail(q, 400, "unknown_field", k, "unknown query parameter '%.100s'", k);
                else if (cJSON_GetObjectItem(filters, k))
                    r = inv_fail(q, 400, "invalid", k, "'%s' given twice", k);
                else if (!cJSON_AddStringToObject(filters, k, v))
                    r = inv_fail_err(q, -RE_ENOMEM);
            }
        }
        free(k);
        free(v);
        if (r < 0) {
            cJSON_Delete(state);
            return r;
        }
        p = stop + (amp ? 1 : 0);
        if (!amp)
            break;
    }
    *out = state;
    return 0;
}

/* Builds the WHERE part common to every entity into sql (which already has
 * "SELECT ... FROM t WHERE 1"). */
static int list_where(struct inv_req *q, const struct inv_entity *e, const cJSON *filters,
                      struct re_buf *sql, struct inv_binds *b)
{
    const cJSON *search = cJSON_GetObjectItem(filters, "search");
    const cJSON *meta = cJSON_GetObjectItem(filters, "metadata"), *m;
    int r = 0;
    if (cJSON_IsString(search) && search->valuestring[0]) {
        if (re_buf_printf(sql, " AND (instr(lower(%s), lower(?)) > 0 OR"
                          " instr(lower(description), lower(?)) > 0)", e->key) < 0 ||
            inv_bind_text(b, search->valuestring) < 0 || inv_bind_text(b, search->valuestring) < 0)
            return inv_fail_err(q, -RE_ENOMEM);
    }
    if (cJSON_GetArraySize(meta) > LIST_MAX_METADATA)
        return inv_fail(q, 400, "invalid", "next", "bad cursor");
    cJSON_ArrayForEach(m, meta) {
        char path[300];
        if (!cJSON_IsString(m) || validate_key(re_str_c(m->string), NULL) < 0)
            return inv_fail(q, 400, "invalid", "next", "bad cursor");
        snprintf(path, sizeof(path), "$.\"%s\"", m->string);
        if (re_buf_append_str(sql, " AND json_extract(metadata, ?) = ?") < 0 ||
            inv_bind_text_copy(b, path) < 0 || inv_bind_text(b, m->valuestring) < 0)
            return inv_fail_err(q, -RE_ENOMEM);
    }
    if (e->list_filter)
        r = e->list_filter(q, filters, sql, b);
    return r;
}

static int inv_h_list(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    const struct inv_entity *e = entity_of(x);
    cJSON *state = NULL, *answer = NULL, *items, *last_key = NULL;
    struct re_buf sql;
    struct inv_binds b = { .n = 0 };
    sqlite3_stmt *st = NULL;
    const char *col = "id";
    bool desc = false;
    int limit = 0, rc, count = 0;
    int64_t last_id = 0;
    char *cursor = NULL;

    re_buf_init(&sql, 16384);
    api_req_init(&req, x);
    if (!e) {
        http_response_error(&x->res, 404, "not_found", NULL, "no such collection");
        goto out;
    }
    if (api_require_role(&req, e->read_roles) < 0 || api_parse_limit(&req, &limit) < 0 ||
        list_state(&req, e, &state) < 0)
        goto fail;
    const cJSON *filters = cJSON_GetObjectItem(state, "f");
    const cJSON *ob = cJSON_GetObjectItem(filters, "orderby");
    if (cJSON_IsString(ob) && parse_orderby(q, e, ob->valuestring, &col, &desc) < 0)
        goto fail;
    if (q->status)
        goto fail;
    if (re_buf_printf(&sql, "SELECT id, %s FROM %s WHERE 1", col, e->table) < 0)
        goto nomem;
    if (list_where(q, e, filters, &sql, &b) < 0)
        goto fail;
    const cJSON *ci = cJSON_GetObjectItem(state, "i"), *ck = cJSON_GetObjectItem(state, "k");
    const char *cmp = desc ? "<" : ">";
    if (cJSON_IsNumber(ci)) {
        if (strcmp(col, "id") == 0) {
            if (re_buf_printf(&sql, " AND id %s ?", cmp) < 0 ||
                inv_bind_int(&b, (int64_t)ci->valuedouble) < 0)
                goto nomem;
        } else {
            if (!ck || (!cJSON_IsString(ck) && !cJSON_IsNumber(ck))) {
                inv_fail(q, 400, "invalid", "next", "next is not a cursor this list returned");
                goto fail;
            }
            if (re_buf_printf(&sql, " AND (%s, id) %s (?, ?)", col, cmp) < 0 ||
                (cJSON_IsString(ck) ? inv_bind_text(&b, ck->valuestring)
                                    : inv_bind_int(&b, (int64_t)ck->valuedouble)) < 0 ||
                inv_bind_int(&b, (int64_t)ci->valuedouble) < 0)
                goto nomem;
        }
    }
    if (strcmp(col, "id") == 0) {
        if (re_buf_printf(&sql, " ORDER BY id%s", desc ? " DESC" : "") < 0)
            goto nomem;
    } else if (re_buf_printf(&sql, " ORDER BY %s%s, id%s", col, desc ? " DESC" : "",
                             desc ? " DESC" : "") < 0) {
        goto nomem;
    }
    if (re_buf_printf(&sql, " LIMIT %d", limit + 1) < 0)
        goto nomem;
    if (sqlite3_prepare_v2(q->db, sql.ptr, -1, &st, NULL) != SQLITE_OK || inv_binds_apply(st, &b) < 0) {
        inv_fail_err(q, -RE_EDB);
        goto fail;
    }
    if (!(answer = cJSON_CreateObject()) || !(items = cJSON_AddArrayToObject(answer, "items")))
        goto nomem;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *obj = NULL;
        int64_t id = sqlite3_column_int64(st, 0);
        if (count == limit) {
            /* one more row exists: the page ends at the previous one */
            cJSON *cur = cJSON_Duplicate(state, 1);
            if (!cur)
                goto nomem;
            cJSON_DeleteItemFromObject(cur, "i");
            cJSON_DeleteItemFromObject(cur, "k");
            cJSON_AddNumberToObject(cur, "i", (double)last_id);
            if (last_key)
                cJSON_AddItemToObject(cur, "k", last_key);
            last_key = NULL;
            int r = api_cursor_encode(&cursor, cur);
            cJSON_Delete(cur);
            if (r < 0)
                goto nomem;
            break;
        }
        if (inv_read(q, e, id, &obj) < 0) {
            inv_fail_err(q, -RE_EDB);
            goto fail;
        }
        cJSON_AddItemToArray(items, obj);
        count++;
        last_id = id;
        cJSON_Delete(last_key);
        last_key = sqlite3_column_type(st, 1) == SQLITE_TEXT
                       ? cJSON_CreateString((const char *)sqlite3_column_text(st, 1))
                       : cJSON_CreateNumber((double)sqlite3_column_int64(st, 1));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        inv_fail_err(q, db_err(rc));
        goto fail;
    }
    if (!cJSON_AddItemToObject(answer, "next", cursor ? cJSON_CreateString(cursor)
                                                      : cJSON_CreateNull()))
        goto nomem;
    http_response_json(&x->res, 200, answer);
    goto out;
nomem:
    inv_fail_err(q, -RE_ENOMEM);
fail:
    api_reply_error(&req);
out:
    sqlite3_finalize(st);
    inv_binds_release(&b);
    re_buf_release(&sql);
    cJSON_Delete(state);
    cJSON_Delete(answer);
    cJSON_Delete(last_key);
    free(cursor);
    return 0;
}

#define R_READ_INV  (ROLE_READERS | ROLE_APPTEAM)
#define R_OPS       (ROLE_ADMIN | ROLE_OPERATOR)
#define R_NS_WRITE  (ROLE_ADMIN | ROLE_OPERATOR | ROLE_APPTEAM)

const struct route inventory_routes[] = {
    { "GET",    "/api/v1/groups", inv_h_list, R_READ_INV | ROLE_TECHNICIAN },
    { "POST",   "/api/v1/groups", inv_h_create, R_OPS },
    { "GET",    "/api/v1/groups/{id}", inv_h_get, R_READ_INV | ROLE_TECHNICIAN },
    { "PATCH",  "/api/v1/groups/{id}", inv_h_update, R_OPS },
    { "DELETE", "/api/v1/groups/{id}", inv_h_delete, R_OPS },
    { "GET",    "/api/v1/clusters", inv_h_list, R_READ_INV | ROLE_TECHNICIAN },
    { "POST",   "/api/v1/clusters", inv_h_create, R_OPS | ROLE_TECHNICIAN },
    { "GET",    "/api/v1/clusters/{name}", inv_h_get, R_READ_INV | ROLE_TECHNICIAN | ROLE_AGENT },
    { "PATCH",  "/api/v1/clusters/{name}", inv_h_update, R_OPS },
    { "DELETE", "/api/v1/clusters/{name}", inv_h_delete, R_OPS },
    { "GET",    "/api/v1/namespaces", inv_h_list, R_READ_INV },
    { "POST",   "/api/v1/namespaces", inv_h_create, R_NS_WRITE },
    { "GET",    "/api/v1/namespaces/{name}", inv_h_get, R_READ_INV },
    { "PATCH",  "/api/v1/namespaces/{name}", inv_h_update, R_NS_WRITE },
    { "DELETE", "/api/v1/namespaces/{name}", inv_h_delete, R_NS_WRITE },
    { "GET",    "/api/v1/applications", inv_h_list, R_READ_INV },
    { "POST",   "/api/v1/applications", inv_h_create, R_NS_WRITE },
    { "GET",    "/api/v1/applications/{name}", inv_h_get, R_READ_INV },
    { "PATCH",  "/api/v1/applications/{name}", inv_h_update, R_NS_WRITE },
    { "DELETE", "/api/v1/applications/{name}", inv_h_delete, R_NS_WRITE },
    { "GET",    "/api/v1/policies", inv_h_list, R_READ_INV },
    { "POST",   "/api/v1/policies", inv_h_create, R_OPS },
    { "GET",    "/api/v1/policies/{name}", inv_h_get, R_READ_INV },
    { "PATCH",  "/api/v1/policies/{name}", inv_h_update, R_OPS },
    { "DELETE", "/api/v1/policies/{name}", inv_h_delete, R_OPS },
    { NULL, NULL, NULL, 0 },
};
