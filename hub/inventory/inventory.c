/* inventory.c - the generic inventory engine: an operation's errors, one
 * transaction per operation, read/create/update/delete for every entity
 * descriptor, bound queries, and the change hooks run at commit or in a dry
 * run. Entity specifics live in entities.c; the REST handlers over it in
 * api/api_inventory.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"
#include "clock.h"
#include "db.h"
#include "error.h"
#include "expr.h"
#include "fleet.h"
#include "hub.h"
#include "inventory_int.h"
#include "json.h"
#include "oid.h"
#include "validate.h"

#define METADATA_MAX_KEYS 64

static struct inventory_hooks hooks;

void inventory_set_hooks(const struct inventory_hooks *h)
{
    if (h)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof(hooks));
}

int inventory_desired_revision(struct hub *hub, const char *cluster, char out[RE_OID_BUF])
{
    if (!hooks.desired_revision)
        return -RE_ENOENT;
    return hooks.desired_revision(hooks.ctx, hub, cluster, out);
}

int inventory_render_error(struct hub *hub, const char *cluster, char *out, size_t size)
{
    if (!hooks.render_error)
        return -RE_ENOENT;
    return hooks.render_error(hooks.ctx, hub, cluster, out, size);
}

/* ---- an operation's errors and transaction ---- */

int inv_fail(struct inv_req *q, int status, const char *code, const char *field,
             const char *fmt, ...)
{
    va_list ap;
    if (q->status)
        return -RE_EINVAL;
    q->status = status;
    q->code = code;
    q->field[0] = '\0';
    if (field)
        snprintf(q->field, sizeof(q->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(q->message, sizeof(q->message), fmt, ap);
    va_end(ap);
    return -RE_EINVAL;
}

int inv_fail_unknown(struct inv_req *q, const char *field, const char *const *valid)
{
    char list[300];
    size_t n = 0;
    list[0] = '\0';
    for (size_t i = 0; valid[i] && n < sizeof(list); i++) {
        int w = snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", valid[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return inv_fail(q, 400, "unknown_field", field, "unknown field '%.100s'; valid fields: %s",
                    field, list);
}

int inv_fail_err(struct inv_req *q, int err)
{
    /* One mapping for the whole API (re_err_status); out of memory is
     * transient, and a storage error here is never the client's fault. */
    int status = err == -RE_ENOMEM ? 503 : re_err_status(err);
    if (status < 500)
        status = 500;
    inv_fail(q, status, re_errcode(err), NULL, "%s", re_strerror(err));
    return err < 0 ? err : -RE_EDB;
}

bool inv_is(struct inv_req *q, unsigned roles)
{
    return auth_has_role(q->peer, roles);
}

int inv_require_own_cluster(struct inv_req *q, const char *cluster)
{
    if (auth_own_cluster_ok(q->peer, cluster))
        return 0;
    return inv_fail(q, 403, "forbidden", NULL, AUTH_OWN_CLUSTER_ONLY);
}

int inv_begin(struct inv_req *q)
{
    int r = db_begin(q->db);
    if (r < 0)
        return inv_fail_err(q, r);
    q->in_txn = true;
    return 0;
}

void inv_abort(struct inv_req *q)
{
    if (q->in_txn) {
        db_rollback(q->db);
        q->in_txn = false;
        fleet_invalidate();
    }
}

int inv_preview(struct inv_req *q, const struct inventory_change *chg, const char *diff_cluster,
                cJSON *answer)
{
    int r = 0;
    if (hooks.preview && chg)
        r = hooks.preview(hooks.ctx, q->hub, chg, diff_cluster, answer);
    inv_abort(q);
    return r < 0 ? inv_fail_err(q, r) : 0;
}

int inv_commit(struct inv_req *q, const struct inventory_change *chg)
{
    int r = db_commit(q->db);
    if (r < 0) {
        inv_abort(q);
        return inv_fail_err(q, r);
    }
    q->in_txn = false;
    /* a rollout step need not rebuild the snapshot (~0.2 s at 100,000 clusters) */
    if (!chg || fleet_reads_entity(chg->entity))
        fleet_invalidate();
    if (hooks.committed && chg)
        hooks.committed(hooks.ctx, q->hub, chg);
    return 0;
}

/* ---- bindings ---- */

int inv_bind_text(struct inv_binds *b, const char *s)
{
    if (b->n >= INV_MAX_BINDS)
        return -RE_ETOOBIG;
    b->v[b->n++] = (struct inv_bind){ .type = 't', .s = s };
    return 0;
}

int inv_bind_text_copy(struct inv_binds *b, const char *s)
{
    char *c;
    if (b->n >= INV_MAX_BINDS || b->n_copies >= INV_MAX_BINDS || !(c = strdup(s)))
        return -RE_ENOMEM;
    b->copies[b->n_copies++] = c;
    return inv_bind_text(b, c);
}

int inv_bind_int(struct inv_binds *b, int64_t i)
{
    if (b->n >= INV_MAX_BINDS)
        return -RE_ETOOBIG;
    b->v[b->n++] = (struct inv_bind){ .type = 'i', .i = i };
    return 0;
}

int inv_bind_idset(struct inv_binds *b, const void *set)
{
    if (b->n >= INV_MAX_BINDS)
        return -RE_ETOOBIG;
    b->v[b->n++] = (struct inv_bind){ .type = 'p', .p = set };
    return 0;
}

int inv_binds_apply(sqlite3_stmt *st, const struct inv_binds *b)
{
    for (int i = 0; i < b->n; i++) {
        int rc;
        switch (b->v[i].type) {
        case 't': rc = sqlite3_bind_text(st, i + 1, b->v[i].s, -1, SQLITE_TRANSIENT); break;
        case 'i': rc = sqlite3_bind_int64(st, i + 1, b->v[i].i); break;
        default:  rc = db_bind_idset(st, i + 1, b->v[i].p) < 0 ? SQLITE_ERROR : SQLITE_OK; break;
        }
        if (rc != SQLITE_OK)
            return -RE_EDB;
    }
    return 0;
}

void inv_binds_release(struct inv_binds *b)
{
    for (int i = 0; i < b->n_owned; i++)
        if (b->free_owned)
            b->free_owned(b->owned[i]);
    b->n_owned = 0;
    for (int i = 0; i < b->n_copies; i++)
        free(b->copies[i]);
    b->n_copies = 0;
}

/* ---- reading ---- */

#define COMMON_COLS "id, %s, description, metadata, created_at, created_by," \
                    " updated_at, updated_by, version"

static int add_time(cJSON *obj, const char *name, int64_t t)
{
    char iso[32];
    re_time_iso(iso, sizeof(iso), t);
    return cJSON_AddStringToObject(obj, name, iso) ? 0 : -RE_ENOMEM;
}

static cJSON *column_json(sqlite3_stmt *st, int col)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    return v ? v : cJSON_CreateNull();
}

int inv_read(struct inv_req *q, const struct inv_entity *e, int64_t id, cJSON **out)
{
    struct re_buf sql;
    sqlite3_stmt *st = NULL;
    cJSON *obj = NULL;
    int r = -RE_ENOMEM, col = 9, rc;
    re_buf_init(&sql, 4096);
    if (re_buf_printf(&sql, "SELECT " COMMON_COLS, e->key) < 0)
        goto out;
    for (const struct inv_field *f = e->fields; f->name; f++)
        if (f->type != FT_VIRTUAL && re_buf_printf(&sql, ", %s", f->name) < 0)
            goto out;
    if (re_buf_printf(&sql, " FROM %s WHERE id = ?", e->table) < 0)
        goto out;
    r = -RE_EDB;
    if (sqlite3_prepare_v2(q->db, sql.ptr, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = -RE_ENOENT;
        goto out;
    }
    if (rc != SQLITE_ROW)
        goto out;
    r = -RE_ENOMEM;
    if (!(obj = cJSON_CreateObject()) ||
        !cJSON_AddNumberToObject(obj, "id", (double)sqlite3_column_int64(st, 0)) ||
        !cJSON_AddStringToObject(obj, e->key, (const char *)sqlite3_column_text(st, 1)) ||
        !cJSON_AddStringToObject(obj, "description", (const char *)sqlite3_column_text(st, 2)))
        goto out;
    for (const struct inv_field *f = e->fields; f->name; f++) {
        cJSON *v;
        if (f->type == FT_VIRTUAL)
            continue;
        if (f->type == FT_STRING)
            v = cJSON_CreateString(sqlite3_column_text(st, col) ?
                                   (const char *)sqlite3_column_text(st, col) : "");
        else
            v = column_json(st, col);
        col++;
        if (!v || !cJSON_AddItemToObject(obj, f->name, v))
            goto out;
    }
    if (!cJSON_AddItemToObject(obj, "metadata", column_json(st, 3)) ||
        !cJSON_AddNumberToObject(obj, "version", (double)sqlite3_column_int64(st, 8)) ||
        add_time(obj, "created_at", sqlite3_column_int64(st, 4)) < 0 ||
        !cJSON_AddStringToObject(obj, "created_by", (const char *)sqlite3_column_text(st, 5)) ||
        add_time(obj, "updated_at", sqlite3_column_int64(st, 6)) < 0 ||
        !cJSON_AddStringToObject(obj, "updated_by", (const char *)sqlite3_column_text(st, 7)))
        goto out;
    if (e->decorate && (r = e->decorate(q, id, obj)) < 0)
        goto out;
    *out = obj;
    obj = NULL;
    r = 0;
out:
    sqlite3_finalize(st);
    re_buf_release(&sql);
    cJSON_Delete(obj);
    return r;
}

static bool all_digits(const char *s)
{
    if (!*s || strlen(s) > 18)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int inv_lookup(struct inv_req *q, const struct inv_entity *e, const char *ref, int64_t *id)
{
    char sql[160];
    sqlite3_stmt *st = NULL;
    int rc, r;
    bool by_id = all_digits(ref);
    snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE %s = ?", e->table, by_id ? "id" : e->key);
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return inv_fail_err(q, -RE_EDB);
    if (by_id)
        sqlite3_bind_int64(st, 1, strtoll(ref, NULL, 10));
    else
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        r = 0;
    } else if (rc == SQLITE_DONE) {
        r = inv_fail(q, 404, "not_found", NULL, "%s '%s' not found", e->kind, ref);
    } else {
        r = inv_fail_err(q, db_err(rc));
    }
    sqlite3_finalize(st);
    return r;
}

/* ---- validation ---- */

int inv_check_metadata(struct inv_req *q, const cJSON *v)
{
    const cJSON *m;
    int n = 0;
    char field[300];
    if (!cJSON_IsObject(v))
        return inv_fail(q, 400, "invalid", "metadata", "metadata must be an object of strings");
    cJSON_ArrayForEach(m, v) {
        const char *why = NULL;
        snprintf(field, sizeof(field), "metadata.%s", m->string);
        if (++n > METADATA_MAX_KEYS)
            return inv_fail(q, 400, "invalid", "metadata", "at most %d metadata keys",
                            METADATA_MAX_KEYS);
        if (validate_key(re_str_c(m->string), &why) < 0)
            return inv_fail(q, 400, "invalid", "metadata", "metadata key '%.100s': %s",
                            m->string, why);
        if (cJSON_IsNull(m))
            continue;                   /* removal in a PATCH; dropped on create */
        if (!cJSON_IsString(m))
            return inv_fail(q, 400, "invalid", field, "%s must be a string", field);
        if (validate_value(re_str_c(m->valuestring), &why) < 0)
            return inv_fail(q, 400, "invalid", field, "%s %s", field, why);
    }
    return 0;
}

int inv_check_expression(struct inv_req *q, const char *field, const cJSON *v)
{
    struct expr *e = NULL;
    struct expr_error err = { 0 };
    int r;
    if (!cJSON_IsString(v))
        return inv_fail(q, 400, "invalid", field, "%s must be a string", field);
    r = expr_parse(&e, v->valuestring, strlen(v->valuestring), &err);
    expr_free(e);
    if (r == -RE_ENOMEM)
        return inv_fail_err(q, r);
    if (r < 0)
        return inv_fail(q, 400, "invalid_expression", field, "%s: %s", field,
                        err.message[0] ? err.message : re_strerror(r));
    return 0;
}

static const char *const READ_ONLY[] = { "id", "version", "created_at", "created_by",
                                         "updated_at", "updated_by", NULL };

static const struct inv_field *find_field(const struct inv_entity *e, const char *name)
{
    for (const struct inv_field *f = e->fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* Checks every member of body; before is NULL on create. */
static int check_body(struct inv_req *q, const struct inv_entity *e, const cJSON *body,
                      const cJSON *before)
{
    const cJSON *m;
    int r;
    cJSON_ArrayForEach(m, body) {
        const char *name = m->string;
        const struct inv_field *f;
        const char *why = NULL;
        if (strcmp(name, e->key) == 0) {
            if (!cJSON_IsString(m))
                return inv_fail(q, 400, "invalid", name, "%s must be a string", name);
            if (before) {
                if (strcmp(m->valuestring, cJSON_GetObjectItem(before, e->key)->valuestring))
                    return inv_fail(q, 400, "invalid", name, "%s cannot be changed", name);
                continue;
            }
            if ((r = e->check_key(q, m->valuestring)) < 0)
                return r;
        } else if (strcmp(name, "description") == 0) {
            if (!cJSON_IsString(m))
                return inv_fail(q, 400, "invalid", name, "description must be a string");
            if (validate_text(re_str_c(m->valuestring), VALIDATE_TEXT_MAX, &why) < 0)
                return inv_fail(q, 400, "invalid", name, "description %s", why);
        } else if (strcmp(name, "metadata") == 0) {
            if ((r = inv_check_metadata(q, m)) < 0)
                return r;
        } else if ((f = find_field(e, name))) {
            if (cJSON_IsNull(m))
                return inv_fail(q, 400, "invalid", name, "%s must not be null", name);
            if (before && (f->flags & F_IMMUTABLE)) {
                if (!cJSON_Compare(m, cJSON_GetObjectItem(before, name), 1))
                    return inv_fail(q, 400, "invalid", name, "%s cannot be changed", name);
                continue;
            }
            if (f->type == FT_STRING && !cJSON_IsString(m))
                return inv_fail(q, 400, "invalid", name, "%s must be a string", name);
            if (f->check && (r = f->check(q, f, m)) < 0)
                return r;
        } else {
            for (size_t i = 0; READ_ONLY[i]; i++)
                if (strcmp(READ_ONLY[i], name) == 0)
                    return inv_fail(q, 400, "invalid", name, "%s is read-only", name);
            const char *valid[32];
            size_t nv = 0;
            valid[nv++] = e->key;
            for (const struct inv_field *g = e->fields; g->name && nv < 29; g++)
                valid[nv++] = g->name;
            valid[nv++] = "description";
            valid[nv++] = "metadata";
            valid[nv] = NULL;
            return inv_fail_unknown(q, name, valid);
        }
    }
    if (!before) {
        if (!cJSON_GetObjectItem(body, e->key))
            return inv_fail(q, 400, "invalid", e->key, "%s is required", e->key);
        for (const struct inv_field *f = e->fields; f->name; f++)
            if ((f->flags & F_REQUIRED) && !cJSON_GetObjectItem(body, f->name))
                return inv_fail(q, 400, "invalid", f->name, "%s is required", f->name);
    }
    return 0;
}

/* Binds a field's JSON value as column text. */
static int bind_value(sqlite3_stmt *st, int i, const struct inv_field *f, const cJSON *v)
{
    if (f && f->type == FT_STRING)
        return sqlite3_bind_text(st, i, v->valuestring, -1, SQLITE_TRANSIENT) == SQLITE_OK ? 0
                                                                                          : -RE_EDB;
    char *text = cJSON_PrintUnformatted(v);
    if (!text)
        return -RE_ENOMEM;
    return sqlite3_bind_text(st, i, text, -1, free) == SQLITE_OK ? 0 : -RE_EDB;
}

static int step_write(struct inv_req *q, const struct inv_entity *e, sqlite3_stmt *st,
                      const char *key)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (sqlite3_extended_errcode(q->db) == SQLITE_CONSTRAINT_UNIQUE ||
        sqlite3_extended_errcode(q->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        return inv_fail(q, 409, "already_exists", e->key, "%s '%s' already exists", e->kind, key);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return inv_fail(q, 409, "conflict", NULL, "%s '%s' is still referenced", e->kind, key);
    return inv_fail_err(q, db_err(rc));
}

/* Metadata with null members removed (create) or merged into old (update). */
static cJSON *merged_metadata(const cJSON *old, const cJSON *patch)
{
    cJSON *out = old ? cJSON_Duplicate(old, 1) : cJSON_CreateObject();
    const cJSON *m;
    if (!out)
        return NULL;
    cJSON_ArrayForEach(m, patch) {
        cJSON_DeleteItemFromObjectCaseSensitive(out, m->string);
        if (!cJSON_IsNull(m) && !cJSON_AddItemToObject(out, m->string, cJSON_Duplicate(m, 1))) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

/* The common end of a create or an update once its row is written: the
 * entity's post_write hook, the object as now stored into *after, and its
 * audit row. *after is set only on success. */
static int after_write(struct inv_req *q, const struct inv_entity *e, int64_t id,
                       const cJSON *body, enum inv_action a, const char *key,
                       const cJSON *before, cJSON **after)
{
    cJSON *obj = NULL;
    int r;
    if (e->post_write && (r = e->post_write(q, id, body, a)) < 0)
        return r;
    if ((r = inv_read(q, e, id, &obj)) < 0 ||
        (r = audit_record(q->db, q->now, q->actor, a == INV_CREATE ? "create" : "update",
                          e->kind, id, key, before, obj)) < 0) {
        cJSON_Delete(obj);
        return inv_fail_err(q, r);
    }
    *after = obj;
    return 0;
}

int inv_create_in_txn(struct inv_req *q, const struct inv_entity *e, cJSON *body,
                      int64_t *id_out, cJSON **after)
{
    struct re_buf sql;
    sqlite3_stmt *st = NULL;
    cJSON *meta = NULL;
    int64_t parent_id = 0, depth = 0;
    int r, n = 0;
    const char *key;
    bool extra = e->pre_insert != NULL;

    re_buf_init(&sql, 8192);
    if ((r = check_body(q, e, body, NULL)) < 0)
        goto out;
    if (e->complete && (r = e->complete(q, body)) < 0)
        goto out;
    if (e->authorize && (r = e->authorize(q, INV_CREATE, NULL, body)) < 0)
        goto out;
    key = cJSON_GetObjectItem(body, e->key)->valuestring;
    if (extra && (r = e->pre_insert(q, body, &parent_id, &depth)) < 0)
        goto out;
    r = -RE_ENOMEM;
    if (re_buf_printf(&sql, "INSERT INTO %s (%s, created_at, created_by, updated_at, updated_by,"
                      " description, metadata%s", e->table, e->key,
                      extra ? ", parent_id, depth" : "") < 0)
        goto out;
    for (const struct inv_field *f = e->fields; f->name; f++)
        if (f->type != FT_VIRTUAL && cJSON_GetObjectItem(body, f->name) &&
            re_buf_printf(&sql, ", %s", f->name) < 0)
            goto out;
    if (re_buf_append_str(&sql, ") VALUES (?, ?, ?, ?, ?, ?, ?") < 0 ||
        (extra && re_buf_append_str(&sql, ", ?, ?") < 0))
        goto out;
    for (const struct inv_field *f = e->fields; f->name; f++)
        if (f->type != FT_VIRTUAL && cJSON_GetObjectItem(body, f->name) &&
            re_buf_append_str(&sql, ", ?") < 0)
            goto out;
    if (re_buf_append_str(&sql, ")") < 0)
        goto out;
    if (sqlite3_prepare_v2(q->db, sql.ptr, -1, &st, NULL) != SQLITE_OK) {
        r = inv_fail_err(q, -RE_EDB);
        goto out;
    }
    const cJSON *desc = cJSON_GetObjectItem(body, "description");
    if (!(meta = merged_metadata(NULL, cJSON_GetObjectItem(body, "metadata")))) {
        r = inv_fail_err(q, -RE_ENOMEM);
        goto out;
    }
    sqlite3_bind_text(st, ++n, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, ++n, q->now);
    sqlite3_bind_text(st, ++n, q->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, ++n, q->now);
    sqlite3_bind_text(st, ++n, q->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, ++n, desc ? desc->valuestring : "", -1, SQLITE_STATIC);
    if ((r = bind_value(st, ++n, NULL, meta)) < 0)
        goto fail_err;
    if (extra) {
        if (parent_id > 0)
            sqlite3_bind_int64(st, ++n, parent_id);
        else
            sqlite3_bind_null(st, ++n);
        sqlite3_bind_int64(st, ++n, depth);
    }
    for (const struct inv_field *f = e->fields; f->name; f++) {
        const cJSON *v = cJSON_GetObjectItem(body, f->name);
        if (f->type != FT_VIRTUAL && v && (r = bind_value(st, ++n, f, v)) < 0)
            goto fail_err;
    }
    if ((r = step_write(q, e, st, key)) < 0)
        goto out;
    *id_out = sqlite3_last_insert_rowid(q->db);
    r = after_write(q, e, *id_out, body, INV_CREATE, key, NULL, after);
    goto out;
fail_err:
    r = inv_fail_err(q, r);
out:
    sqlite3_finalize(st);
    re_buf_release(&sql);
    cJSON_Delete(meta);
    return r;
}

int inv_update_in_txn(struct inv_req *q, const struct inv_entity *e, cJSON *body, int64_t id,
                      const cJSON *before, cJSON **after)
{
    struct re_buf sql;
    sqlite3_stmt *st = NULL;
    cJSON *meta = NULL;
    int r, n = 0;
    const cJSON *desc = cJSON_GetObjectItem(body, "description");
    const cJSON *mpatch = cJSON_GetObjectItem(body, "metadata");
    const char *key = cJSON_GetObjectItem(before, e->key)->valuestring;

    re_buf_init(&sql, 8192);
    if ((r = check_body(q, e, body, before)) < 0)
        goto out;
    if (e->authorize) {
        /* the object as it would be, for owner checks */
        cJSON *would = cJSON_Duplicate(before, 1);
        const cJSON *m;
        if (!would) {
            r = inv_fail_err(q, -RE_ENOMEM);
            goto out;
        }
        cJSON_ArrayForEach(m, body)
            if (strcmp(m->string, "metadata") != 0)
                cJSON_ReplaceItemInObjectCaseSensitive(would, m->string, cJSON_Duplicate(m, 1));
        r = e->authorize(q, INV_UPDATE, before, would);
        cJSON_Delete(would);
        if (r < 0)
            goto out;
    }
    if (mpatch) {
        if (!(meta = merged_metadata(cJSON_GetObjectItem(before, "metadata"), mpatch))) {
            r = inv_fail_err(q, -RE_ENOMEM);
            goto out;
        }
        if (cJSON_GetArraySize(meta) > METADATA_MAX_KEYS) {
            r = inv_fail(q, 400, "invalid", "metadata", "at most %d metadata keys",
                         METADATA_MAX_KEYS);
            goto out;
        }
    }
    r = -RE_ENOMEM;
    if (re_buf_printf(&sql, "UPDATE %s SET updated_at = ?, updated_by = ?, version = version + 1",
                      e->table) < 0 ||
        (desc && re_buf_append_str(&sql, ", description = ?") < 0) ||
        (meta && re_buf_append_str(&sql, ", metadata = ?") < 0))
        goto fail_err;
    for (const struct inv_field *f = e->fields; f->name; f++)
        if (f->type != FT_VIRTUAL && !(f->flags & F_IMMUTABLE) &&
            cJSON_GetObjectItem(body, f->name) && re_buf_printf(&sql, ", %s = ?", f->name) < 0)
            goto fail_err;
    if (re_buf_append_str(&sql, " WHERE id = ?") < 0)
        goto fail_err;
    r = -RE_EDB;
    if (sqlite3_prepare_v2(q->db, sql.ptr, -1, &st, NULL) != SQLITE_OK)
        goto fail_err;
    sqlite3_bind_int64(st, ++n, q->now);
    sqlite3_bind_text(st, ++n, q->actor, -1, SQLITE_STATIC);
    if (desc)
        sqlite3_bind_text(st, ++n, desc->valuestring, -1, SQLITE_STATIC);
    if (meta && (r = bind_value(st, ++n, NULL, meta)) < 0)
        goto fail_err;
    for (const struct inv_field *f = e->fields; f->name; f++) {
        const cJSON *v = cJSON_GetObjectItem(body, f->name);
        if (f->type != FT_VIRTUAL && !(f->flags & F_IMMUTABLE) && v &&
            (r = bind_value(st, ++n, f, v)) < 0)
            goto fail_err;
    }
    sqlite3_bind_int64(st, ++n, id);
    if ((r = step_write(q, e, st, key)) < 0)
        goto out;
    r = after_write(q, e, id, body, INV_UPDATE, key, before, after);
    goto out;
fail_err:
    r = inv_fail_err(q, r);
out:
    sqlite3_finalize(st);
    re_buf_release(&sql);
    cJSON_Delete(meta);
    return r;
}

int inv_delete_in_txn(struct inv_req *q, const struct inv_entity *e, int64_t id,
                      const cJSON *before)
{
    char sql[128];
    sqlite3_stmt *st = NULL;
    int r;
    if (e->authorize && (r = e->authorize(q, INV_DELETE, before, NULL)) < 0)
        return r;
    if (e->pre_delete && (r = e->pre_delete(q, id, before)) < 0)
        return r;
    const char *name = cJSON_GetObjectItem(before, e->key)->valuestring;
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", e->table);
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return inv_fail_err(q, -RE_EDB);
    sqlite3_bind_int64(st, 1, id);
    r = step_write(q, e, st, name);
    sqlite3_finalize(st);
    if (r < 0)
        return r;
    if ((r = audit_record(q->db, q->now, q->actor, "delete", e->kind, id, name, before, NULL)) < 0)
        return inv_fail_err(q, r);
    return 0;
}
