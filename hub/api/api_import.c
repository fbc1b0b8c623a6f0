/* api_import.c - bulk import of clusters (stores), all or nothing.
 *
 * POST /api/v1/clusters:import[?create_groups=true][&dry_run=true]
 *   Content-Type: application/json - an array of cluster objects, the same
 *     shape as POST /api/v1/clusters ({"name", "groups", "metadata",
 *     "description", "timezone"}); "line" in errors is the item's 1-based
 *     position in the array.
 *   Content-Type: text/csv - RFC 4180 (quoted fields may hold ',', '"' as "",
 *     and newlines); the first line is a header naming the columns:
 *       name (required), groups (paths separated by ';'), metadata
 *       (k=v pairs separated by ';'), metadata.KEY (one key per column, any
 *       value), description, timezone.
 *     "line" in errors is the physical line where the record starts.
 * One transaction: every row is checked and inserted; if any row is bad,
 * nothing is kept and the answer is 400 {"error": {...}, "errors": [{"line",
 * "field", "message"}, ...]} listing every bad row (up to 1000). Groups must
 * exist unless create_groups=true, which creates them (and their ancestors).
 * Success: 201 {"created": N, "groups_created": M}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "http/routes.h"
#include "hub.h"
#include "inventory/db.h"
#include "validate.h"
#include "json.h"
#include "request.h"

#define IMPORT_MAX_ROWS 200000
#define IMPORT_MAX_ERRORS 1000
#define CSV_MAX_FIELDS 256

/* ---- CSV (RFC 4180) ---- */

struct csv {
    const char *p, *end;
    int line;                    /* current physical line, 1-based */
};

struct csv_record {
    char *fields[CSV_MAX_FIELDS];
    int n;
    int line;                    /* where the record starts */
};

static void csv_record_clear(struct csv_record *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->fields[i]);
    r->n = 0;
}

/* 1 with a record, 0 at the end, negative on a malformed record. */
static int csv_next(struct csv *c, struct csv_record *rec, const char **why)
{
    struct re_buf field;
    int r = 0;
    csv_record_clear(rec);
    /* skip blank lines */
    while (c->p < c->end && (*c->p == '\n' || *c->p == '\r')) {
        if (*c->p == '\n')
            c->line++;
        c->p++;
    }
    if (c->p >= c->end)
        return 0;
    rec->line = c->line;
    re_buf_init(&field, VALIDATE_VALUE_MAX * 4);
    for (;;) {
        bool quoted = false;
        re_buf_reset(&field);
        if (c->p < c->end && *c->p == '"') {
            quoted = true;
            c->p++;
            for (;;) {
                if (c->p >= c->end) {
                    *why = "unterminated quoted field";
                    r = -RE_EPARSE;
                    goto out;
                }
                if (*c->p == '"') {
                    if (c->p + 1 < c->end && c->p[1] == '"') {
                        r = re_buf_append(&field, "\"", 1);
                        c->p += 2;
                    } else {
                        c->p++;
                        break;
                    }
                } else {
                    if (*c->p == '\n')
                        c->line++;
                    r = re_buf_append(&field, c->p, 1);
                    c->p++;
                }
                if (r < 0) {
                    *why = "field too long";
                    goto out;
                }
            }
        } else {
            const char *s = c->p;
            while (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
                if (*c->p == '"') {
                    *why = "'\"' inside an unquoted field";
                    r = -RE_EPARSE;
                    goto out;
                }
                c->p++;
            }
            if ((r = re_buf_append(&field, s, (size_t)(c->p - s))) < 0) {
                *why = "field too long";
                goto out;
            }
        }
        if (rec->n >= CSV_MAX_FIELDS) {
            *why = "too many fields";
            r = -RE_EPARSE;
            goto out;
        }
        if (!(rec->fields[rec->n++] = strdup(field.ptr ? field.ptr : ""))) {
            r = -RE_ENOMEM;
            goto out;
        }
        if (c->p >= c->end)
            break;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == '\r')
            c->p++;
        if (c->p < c->end && *c->p == '\n') {
            c->p++;
            c->line++;
            break;
        }
        if (quoted && c->p < c->end) {
            *why = "text after a closing quote";
            r = -RE_EPARSE;
            goto out;
        }
        break;
    }
    r = 1;
out:
    re_buf_release(&field);
    return r;
}

/* ---- import ---- */

struct import {
    struct inv_req *q;
    struct re_str body;          /* the request's CSV or JSON */
    cJSON *errors;
    bool create_groups;
    int created, groups_created;
    sqlite3_stmt *ins, *memb, *aud, *gid;
};

static int add_error(struct import *im, int line, const char *field, const char *msg)
{
    cJSON *e;
    if (cJSON_GetArraySize(im->errors) >= IMPORT_MAX_ERRORS)
        return 0;
    if (!(e = cJSON_CreateObject()))
        return -RE_ENOMEM;
    cJSON_AddNumberToObject(e, "line", line);
    if (field && *field)
        cJSON_AddStringToObject(e, "field", field);
    else
        cJSON_AddNullToObject(e, "field");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddItemToArray(im->errors, e);
    return 0;
}

/* Moves the request's recorded error into the row error list. */
static int take_error(struct import *im, int line)
{
    struct inv_req *q = im->q;
    int r;
    if (q->status >= 500)
        return -RE_EDB;
    r = add_error(im, line, q->field, q->message);
    q->status = 0;
    q->field[0] = q->message[0] = '\0';
    return r;
}

static const char *const ROW_KEYS[] = { "name", "groups", "metadata", "description", "timezone",
                                        NULL };

/* Checks and inserts one cluster; a bad row is recorded and skipped. */
static int import_row(struct import *im, cJSON *row, int line)
{
    struct inv_req *q = im->q;
    const char *bad, *why = NULL;
    const cJSON *name, *groups, *meta, *desc, *tz, *g;
    char *mtext = NULL;
    int r = 0;
    int64_t id;

    if (!cJSON_IsObject(row)) {
        inv_fail(q, 400, "invalid", NULL, "each item must be an object");
        return take_error(im, line);
    }
    if ((bad = re_json_unknown_key(row, ROW_KEYS))) {
        inv_fail(q, 400, "unknown_field", bad, "unknown field '%.100s'", bad);
        return take_error(im, line);
    }
    name = cJSON_GetObjectItem(row, "name");
    groups = cJSON_GetObjectItem(row, "groups");
    meta = cJSON_GetObjectItem(row, "metadata");
    desc = cJSON_GetObjectItem(row, "description");
    tz = cJSON_GetObjectItem(row, "timezone");
    if (!cJSON_IsString(name)) {
        inv_fail(q, 400, "invalid", "name", name ? "name must be a string" : "name is required");
        return take_error(im, line);
    }
    if (validate_dns_label(re_str_c(name->valuestring), &why) < 0) {
        inv_fail(q, 400, "invalid", "name", "name '%.80s' %s", name->valuestring, why);
        return take_error(im, line);
    }
    if (desc && (!cJSON_IsString(desc) ||
                 validate_text(re_str_c(desc->valuestring), VALIDATE_TEXT_MAX, &why) < 0)) {
        inv_fail(q, 400, "invalid", "description", "description must be text without control"
                 " characters");
        return take_error(im, line);
    }
    if (tz && !cJSON_IsString(tz)) {
        inv_fail(q, 400, "invalid", "timezone", "timezone must be a string");
        return take_error(im, line);
    }
    /* POST /api/v1/clusters' rule: an import stores nothing an edit would refuse */
    if (tz && inv_check_timezone(q, tz->valuestring) < 0)
        return take_error(im, line);
    if (meta && inv_check_metadata(q, meta) < 0)
        return take_error(im, line);
    if (groups && inv_check_cluster_groups(q, groups, false) < 0)
        return take_error(im, line);
    cJSON_ArrayForEach(g, groups) {
        int64_t gid = 0;
        int rc;
        sqlite3_reset(im->gid);
        sqlite3_bind_text(im->gid, 1, g->valuestring, -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(im->gid)) == SQLITE_ROW)
            gid = sqlite3_column_int64(im->gid, 0);
        else if (rc != SQLITE_DONE)
            return inv_fail_err(q, db_err(rc));
        sqlite3_reset(im->gid);
        if (gid)
            continue;
        if (!im->create_groups) {
            inv_fail(q, 400, "invalid", "groups", "group '%.100s' does not exist (create it"
                     " first, or import with ?create_groups=true)", g->valuestring);
            return take_error(im, line);
        }
        cJSON *body = cJSON_CreateObject(), *after = NULL;
        if (!body || !cJSON_AddStringToObject(body, "path", g->valuestring)) {
            cJSON_Delete(body);
            return inv_fail_err(q, -RE_ENOMEM);
        }
        r = inv_create_in_txn(q, &inv_group, body, &gid, &after);
        cJSON_Delete(body);
        cJSON_Delete(after);
        if (r < 0)
            return q->status >= 500 ? r : take_error(im, line);
    }
    /* metadata without null members */
    cJSON *m2 = cJSON_CreateObject();
    const cJSON *m;
    if (!m2)
        return inv_fail_err(q, -RE_ENOMEM);
    cJSON_ArrayForEach(m, meta)
        if (cJSON_IsString(m))
            cJSON_AddStringToObject(m2, m->string, m->valuestring);
    mtext = cJSON_PrintUnformatted(m2);
    cJSON_Delete(m2);
    if (!mtext)
        return inv_fail_err(q, -RE_ENOMEM);
    sqlite3_reset(im->ins);
    sqlite3_bind_text(im->ins, 1, name->valuestring, -1, SQLITE_STATIC);
    sqlite3_bind_text(im->ins, 2, desc ? desc->valuestring : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(im->ins, 3, tz ? tz->valuestring : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(im->ins, 4, mtext, -1, SQLITE_STATIC);
    sqlite3_bind_int64(im->ins, 5, q->now);
    sqlite3_bind_text(im->ins, 6, q->actor, -1, SQLITE_STATIC);
    int rc = sqlite3_step(im->ins);
    free(mtext);
    if (rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
            inv_fail(q, 409, "already_exists", "name", "cluster '%s' already exists",
                     name->valuestring);
            return take_error(im, line);
        }
        return inv_fail_err(q, db_err(rc));
    }
    id = sqlite3_last_insert_rowid(q->db);
    cJSON_ArrayForEach(g, groups) {
        sqlite3_reset(im->memb);
        sqlite3_bind_int64(im->memb, 1, id);
        sqlite3_bind_text(im->memb, 2, g->valuestring, -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(im->memb)) != SQLITE_DONE)
            return inv_fail_err(q, db_err(rc));
    }
    /* audit with the row as given (the object as stored, but for ids and times) */
    char *after = cJSON_PrintUnformatted(row);
    if (!after)
        return inv_fail_err(q, -RE_ENOMEM);
    sqlite3_reset(im->aud);
    sqlite3_bind_int64(im->aud, 1, q->now);
    sqlite3_bind_text(im->aud, 2, q->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(im->aud, 3, id);
    sqlite3_bind_text(im->aud, 4, name->valuestring, -1, SQLITE_STATIC);
    sqlite3_bind_text(im->aud, 5, after, -1, SQLITE_STATIC);
    rc = sqlite3_step(im->aud);
    free(after);
    if (rc != SQLITE_DONE)
        return inv_fail_err(q, db_err(rc));
    im->created++;
    return 0;
}

/* Splits "a;b;c" into a JSON array of strings (empty parts skipped). */
static cJSON *split_list(const char *s)
{
    cJSON *arr = cJSON_CreateArray();
    while (arr && *s) {
        size_t n = strcspn(s, ";");
        if (n) {
            char *part = strndup(s, n);
            if (!part || !cJSON_AddItemToArray(arr, cJSON_CreateString(part))) {
                free(part);
                cJSON_Delete(arr);
                return NULL;
            }
            free(part);
        }
        s += n + (s[n] == ';');
    }
    return arr;
}

static int import_csv(struct import *im)
{
    struct csv c = { im->body.ptr, im->body.ptr + im->body.len, 1 };
    struct csv_record header = { .n = 0 }, rec = { .n = 0 };
    const char *why = NULL;
    int r, rows = 0;
    bool has_name = false;

    if ((r = csv_next(&c, &header, &why)) <= 0) {
        r = r == 0 ? add_error(im, 1, NULL, "the CSV has no header line")
                   : add_error(im, c.line, NULL, why);
        goto out;
    }
    for (int i = 0; i < header.n; i++) {
        const char *h = header.fields[i];
        if (strcmp(h, "name") == 0)
            has_name = true;
        else if (strcmp(h, "groups") && strcmp(h, "metadata") && strcmp(h, "description") &&
                 strcmp(h, "timezone") &&
                 !(strncmp(h, "metadata.", 9) == 0 && validate_key(re_str_c(h + 9), NULL) == 0)) {
            char msg[200];
            snprintf(msg, sizeof(msg), "unknown column '%.100s' (name, groups, metadata,"
                     " metadata.KEY, description, timezone)", h);
            r = add_error(im, header.line, h, msg);
            goto out;
        }
    }
    if (!has_name) {
        r = add_error(im, header.line, "name", "the header must have a 'name' column");
        goto out;
    }
    while ((r = csv_next(&c, &rec, &why)) != 0) {
        cJSON *row;
        if (r < 0) {
            if (r == -RE_ENOMEM)
                goto out;
            r = add_error(im, rec.line ? rec.line : c.line, NULL, why);
            goto out;    /* the rest cannot be framed reliably */
        }
        if (++rows > IMPORT_MAX_ROWS) {
            r = add_error(im, rec.line, NULL, "too many rows");
            goto out;
        }
        if (rec.n != header.n) {
            char msg[120];
            snprintf(msg, sizeof(msg), "%d fields where the header has %d", rec.n, header.n);
            if ((r = add_error(im, rec.line, NULL, msg)) < 0)
                goto out;
            continue;
        }
        if (!(row = cJSON_CreateObject()))
            goto nomem;
        cJSON *meta = NULL;
        bool bad = false;
        for (int i = 0; i < header.n && !bad; i++) {
            const char *h = header.fields[i], *v = rec.fields[i];
            if (strcmp(h, "groups") == 0) {
                cJSON_AddItemToObject(row, "groups", split_list(v));
            } else if (strcmp(h, "metadata") == 0 || strncmp(h, "metadata.", 9) == 0) {
                if (!meta && !(meta = cJSON_AddObjectToObject(row, "metadata")))
                    break;
                if (h[8] == '.') {
                    if (*v)
                        cJSON_AddStringToObject(meta, h + 9, v);
                    continue;
                }
                cJSON *pairs = split_list(v), *p;
                cJSON_ArrayForEach(p, pairs) {
                    char *eq = strchr(p->valuestring, '=');
                    if (!eq) {
                        add_error(im, rec.line, "metadata", "metadata must be k=v pairs"
                                  " separated by ';'");
                        bad = true;
                        break;
                    }
                    *eq = '\0';
                    cJSON_DeleteItemFromObjectCaseSensitive(meta, p->valuestring);
                    cJSON_AddStringToObject(meta, p->valuestring, eq + 1);
                }
                cJSON_Delete(pairs);
            } else if (*v || strcmp(h, "name") == 0) {
                cJSON_AddStringToObject(row, h, v);
            }
        }
        r = bad ? 0 : import_row(im, row, rec.line);
        cJSON_Delete(row);
        if (r < 0)
            goto out;
    }
    r = 0;
    goto out;
nomem:
    r = -RE_ENOMEM;
out:
    csv_record_clear(&header);
    csv_record_clear(&rec);
    return r;
}

static int import_json(struct import *im)
{
    struct inv_req *q = im->q;
    cJSON *arr = NULL, *row;
    size_t pos = 0;
    int depth = q->hub->cfg.limits.max_json_depth > 0 ? q->hub->cfg.limits.max_json_depth : 32;
    int r = re_json_parse(&arr, im->body, depth, &pos), line = 0;
    if (r == -RE_EDEPTH)
        return inv_fail(q, 400, "too_deep", NULL, "JSON nested deeper than %d levels", depth);
    if (r < 0)
        return inv_fail(q, 400, "parse_error", NULL, "invalid JSON at byte %zu", pos);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return inv_fail(q, 400, "invalid", NULL, "the body must be a JSON array of clusters");
    }
    if (cJSON_GetArraySize(arr) > IMPORT_MAX_ROWS) {
        cJSON_Delete(arr);
        return inv_fail(q, 400, "too_large", NULL, "at most %d clusters per import",
                        IMPORT_MAX_ROWS);
    }
    r = 0;
    cJSON_ArrayForEach(row, arr) {
        if ((r = import_row(im, row, ++line)) < 0)
            break;
    }
    cJSON_Delete(arr);
    return r;
}

static int64_t count_groups(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM groups", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void import_finalize(struct import *im)
{
    sqlite3_finalize(im->ins);
    sqlite3_finalize(im->memb);
    sqlite3_finalize(im->aud);
    sqlite3_finalize(im->gid);
    im->ins = im->memb = im->aud = im->gid = NULL;
}

static int import_clusters(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    struct import im = { .q = q, .body = x->req.body };
    cJSON *answer = NULL;
    char summary[128];
    int r;
    int64_t groups_before = 0;
    api_req_init(&req, x);
    im.errors = cJSON_CreateArray();
    if (!im.errors) {
        inv_fail_err(q, -RE_ENOMEM);
        goto fail;
    }
    if (q->status || api_require_role(&req, ROLE_ADMIN | ROLE_OPERATOR) < 0 ||
        api_query_bool(&req, "create_groups", false, &im.create_groups) < 0)
        goto fail;
    /* a bulk insert spills the default 2 MB page cache: give it room while it runs */
    db_exec(q->db, "PRAGMA cache_size = -65536");
    if (inv_begin(q) < 0)
        goto fail;
    groups_before = count_groups(q->db);
    if (sqlite3_prepare_v2(q->db, "INSERT INTO clusters (name, description, timezone, metadata,"
                           " created_at, created_by, updated_at, updated_by) VALUES"
                           " (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6)", -1, &im.ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(q->db, "INSERT OR IGNORE INTO cluster_groups (cluster_id, group_id)"
                           " SELECT ?, id FROM groups WHERE path = ?", -1, &im.memb, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(q->db, "INSERT INTO audit (at, actor, action, entity, entity_id, name,"
                           " after) VALUES (?, ?, 'create', 'cluster', ?, ?, ?)", -1, &im.aud,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(q->db, "SELECT id FROM groups WHERE path = ?", -1, &im.gid, NULL) !=
            SQLITE_OK) {
        inv_fail_err(q, -RE_EDB);
        goto fail;
    }
    struct re_str ct = http_header_get(&x->req, "Content-Type");
    bool csv = ct.ptr && (re_str_startswith_c(ct, "text/csv") ||
                          re_str_startswith_c(ct, "application/csv"));
    r = csv ? import_csv(&im) : import_json(&im);
    if (r < 0 && !q->status)
        inv_fail_err(q, r);
    if (q->status)
        goto fail;
    if (cJSON_GetArraySize(im.errors) > 0) {
        inv_abort(q);
        if (!(answer = cJSON_CreateObject())) {
            inv_fail_err(q, -RE_ENOMEM);
            goto fail;
        }
        cJSON *err = cJSON_AddObjectToObject(answer, "error");
        char msg[128];
        snprintf(msg, sizeof(msg), "%d rows have errors; nothing was imported",
                 cJSON_GetArraySize(im.errors));
        cJSON_AddStringToObject(err, "code", "invalid");
        cJSON_AddStringToObject(err, "message", msg);
        cJSON_AddStringToObject(err, "field", "rows");
        cJSON_AddItemToObject(answer, "errors", im.errors);
        im.errors = NULL;
        http_response_json(&x->res, 400, answer);
        goto out;
    }
    im.groups_created = (int)(count_groups(q->db) - groups_before);
    if (!(answer = cJSON_CreateObject()) ||
        !cJSON_AddNumberToObject(answer, "created", im.created) ||
        !cJSON_AddNumberToObject(answer, "groups_created", im.groups_created)) {
        inv_fail_err(q, -RE_ENOMEM);
        goto fail;
    }
    import_finalize(&im);        /* before COMMIT: no statement may be left pending */
    snprintf(summary, sizeof(summary), "%d clusters imported", im.created);
    struct inventory_change chg = { "import", "import", 0, "clusters", q->actor, NULL, NULL,
                                    summary };
    if (api_finish(&req, 201, answer, &chg, NULL, 0) < 0)
        goto fail;
    goto out;
fail:
    api_reply_error(&req);
out:
    db_exec(q->db, "PRAGMA cache_size = -2000");
    import_finalize(&im);
    cJSON_Delete(im.errors);
    cJSON_Delete(answer);
    return 0;
}

const struct route import_routes[] = {
    { "POST", "/api/v1/clusters:import", import_clusters, ROLE_ADMIN | ROLE_OPERATOR },
    { NULL, NULL, NULL, 0 },
};
