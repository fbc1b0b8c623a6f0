/* api_audit.c - GET /api/v1/audit: the audit log, newest first, filtered
 * and paged (inventory/audit.h).
 *   ?entity=KIND or KIND/NAME (cluster/store-0004, group//stores/central)
 *   ?actor=user/alice, cluster/store-1, or a bare NAME for user/NAME
 * Readers see every row; an app team the rows of the namespaces it owns
 * and of the applications in them (a deleted namespace's rows no more). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "error.h"
#include "http/routes.h"
#include "inventory/audit.h"
#include "inventory/auth.h"
#include "inventory/db.h"
#include "json.h"
#include "request.h"

/* Unix seconds or an ISO 8601 UTC time ("2026-01-02T03:04:05Z"). */
static int parse_time(const char *s, int64_t *out)
{
    unsigned long long n;
    struct tm tm;
    if (re_str_to_u64(&n, re_str_c(s), 1ULL << 40) == 0) {
        *out = (int64_t)n;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end && strcmp(end, "Z") != 0))
        return -RE_EINVAL;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static const char *const FILTERS[] = { "entity", "name", "actor", "action", "since", "until", NULL };

static int audit_list(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    cJSON *state = NULL, *filters = NULL, *answer = NULL, *items;
    struct re_buf sql;
    sqlite3_stmt *st = NULL;
    char *next = NULL, *cursor = NULL;
    int limit, rc, n = 0, nb = 0;
    int64_t last = 0;
    const char *binds_s[16];
    int64_t binds_i[16];
    char kinds[16];
    char *entity_kind = NULL, me[200];

    re_buf_init(&sql, 4096);
    api_req_init(&req, x);
    if (api_require_role(&req, ROLE_READERS | ROLE_APPTEAM) < 0 || api_parse_limit(&req, &limit) < 0 ||
        api_query(&req, "next", &next) < 0)
        goto fail;
    if (next) {
        if (api_cursor_decode(&state, next) < 0 ||
            !cJSON_IsObject(filters = cJSON_GetObjectItem(state, "f")) ||
            !cJSON_IsNumber(cJSON_GetObjectItem(state, "i"))) {
            inv_fail(q, 400, "invalid", "next", "next is not a cursor this list returned");
            goto fail;
        }
    } else {
        if (!(state = cJSON_CreateObject()) || !(filters = cJSON_AddObjectToObject(state, "f")))
            goto nomem;
        for (size_t i = 0; FILTERS[i]; i++) {
            char *v = NULL;
            if (api_query(&req, FILTERS[i], &v) < 0)
                goto fail;
            if (v && !cJSON_AddStringToObject(filters, FILTERS[i], v)) {
                free(v);
                goto nomem;
            }
            free(v);
        }
    }
    if (re_buf_append_str(&sql, "SELECT id, at, actor, action, entity, entity_id, name, before,"
                          " after FROM audit WHERE 1") < 0)
        goto nomem;
    for (size_t i = 0; FILTERS[i]; i++) {
        const cJSON *v = cJSON_GetObjectItem(filters, FILTERS[i]);
        if (!cJSON_IsString(v))
            continue;
        if (strcmp(FILTERS[i], "since") == 0 || strcmp(FILTERS[i], "until") == 0) {
            int64_t t;
            if (parse_time(v->valuestring, &t) < 0) {
                inv_fail(q, 400, "invalid", FILTERS[i],
                         "%s must be unix seconds or YYYY-MM-DDTHH:MM:SSZ", FILTERS[i]);
                goto fail;
            }
            re_buf_printf(&sql, " AND at %s ?", FILTERS[i][0] == 's' ? ">=" : "<");
            kinds[nb] = 'i';
            binds_i[nb++] = t;
        } else if (strcmp(FILTERS[i], "entity") == 0 && strchr(v->valuestring, '/')) {
            const char *slash = strchr(v->valuestring, '/');
            if (!(entity_kind = re_str_dup((struct re_str){ v->valuestring,
                                                            (size_t)(slash - v->valuestring) })))
                goto nomem;
            re_buf_append_str(&sql, " AND entity = ? AND name = ?");
            kinds[nb] = 't';
            binds_s[nb++] = entity_kind;
            kinds[nb] = 't';
            binds_s[nb++] = slash + 1;
        } else if (strcmp(FILTERS[i], "actor") == 0 && !strchr(v->valuestring, '/')) {
            re_buf_append_str(&sql, " AND (actor = ? OR actor = 'user/' || ?)");
            kinds[nb] = 't';
            binds_s[nb++] = v->valuestring;
            kinds[nb] = 't';
            binds_s[nb++] = v->valuestring;
        } else {
            re_buf_printf(&sql, " AND %s = ?", FILTERS[i]);
            kinds[nb] = 't';
            binds_s[nb++] = v->valuestring;
        }
    }
    if (q->peer->role == ROLE_APPTEAM) {
        if (auth_identity(me, sizeof(me), q->peer) < 0) {
            inv_fail(q, 403, "forbidden", NULL, "no identity");
            goto fail;
        }
        re_buf_append_str(&sql, " AND ((entity = 'namespace' AND name IN (SELECT n.name FROM"
                          " namespaces n, json_each(n.owners) o WHERE o.value = ?)) OR"
                          " (entity = 'application' AND coalesce(json_extract(after,"
                          " '$.namespace'), json_extract(before, '$.namespace')) IN (SELECT"
                          " n.name FROM namespaces n, json_each(n.owners) o WHERE o.value = ?)))");
        kinds[nb] = 't';
        binds_s[nb++] = me;
        kinds[nb] = 't';
        binds_s[nb++] = me;
    }
    const cJSON *ci = cJSON_GetObjectItem(state, "i");
    if (cJSON_IsNumber(ci)) {
        re_buf_append_str(&sql, " AND id < ?");
        kinds[nb] = 'i';
        binds_i[nb++] = (int64_t)ci->valuedouble;
    }
    if (re_buf_printf(&sql, " ORDER BY id DESC LIMIT %d", limit + 1) < 0)
        goto nomem;
    if (sqlite3_prepare_v2(q->db, sql.ptr, -1, &st, NULL) != SQLITE_OK) {
        inv_fail_err(q, -RE_EDB);
        goto fail;
    }
    for (int i = 0; i < nb; i++) {
        if (kinds[i] == 'i')
            sqlite3_bind_int64(st, i + 1, binds_i[i]);
        else
            sqlite3_bind_text(st, i + 1, binds_s[i], -1, SQLITE_STATIC);
    }
    if (!(answer = cJSON_CreateObject()) || !(items = cJSON_AddArrayToObject(answer, "items")))
        goto nomem;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char iso[32];
        cJSON *row;
        if (n == limit) {
            cJSON_DeleteItemFromObject(state, "i");
            cJSON_AddNumberToObject(state, "i", (double)last);
            if (api_cursor_encode(&cursor, state) < 0)
                goto nomem;
            break;
        }
        last = sqlite3_column_int64(st, 0);
        re_time_iso(iso, sizeof(iso), sqlite3_column_int64(st, 1));
        if (!(row = cJSON_CreateObject()) || !cJSON_AddItemToArray(items, row))
            goto nomem;
        cJSON_AddNumberToObject(row, "id", (double)last);
        cJSON_AddStringToObject(row, "at", iso);
        cJSON_AddStringToObject(row, "actor", (const char *)sqlite3_column_text(st, 2));
        cJSON_AddStringToObject(row, "action", (const char *)sqlite3_column_text(st, 3));
        cJSON_AddStringToObject(row, "entity", (const char *)sqlite3_column_text(st, 4));
        if (sqlite3_column_type(st, 5) == SQLITE_NULL)
            cJSON_AddNullToObject(row, "entity_id");
        else
            cJSON_AddNumberToObject(row, "entity_id", (double)sqlite3_column_int64(st, 5));
        cJSON_AddStringToObject(row, "name", (const char *)sqlite3_column_text(st, 6));
        for (int c = 7; c <= 8; c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            cJSON *v = t ? cJSON_Parse(t) : NULL;
            cJSON_AddItemToObject(row, c == 7 ? "before" : "after", v ? v : cJSON_CreateNull());
        }
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        inv_fail_err(q, db_err(rc));
        goto fail;
    }
    cJSON_AddItemToObject(answer, "next", cursor ? cJSON_CreateString(cursor) : cJSON_CreateNull());
    http_response_json(&x->res, 200, answer);
    goto out;
nomem:
    inv_fail_err(q, -RE_ENOMEM);
fail:
    api_reply_error(&req);
out:
    sqlite3_finalize(st);
    re_buf_release(&sql);
    cJSON_Delete(state);
    cJSON_Delete(answer);
    free(next);
    free(cursor);
    free(entity_kind);
    return 0;
}

const struct route audit_routes[] = {
    { "GET", "/api/v1/audit", audit_list, ROLE_READERS | ROLE_APPTEAM },
    { NULL, NULL, NULL, 0 },
};
