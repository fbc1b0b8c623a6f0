/* inventory_entities.c - the five inventory entities as descriptors for the
 * generic engine, with the hooks where they differ: the group tree (implicit
 * ancestors, refused or cascading delete), cluster group membership and the
 * agent's own-cluster rule, namespace owners and expressions, application
 * sources and versions, policy bundles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <http_parser.h>
#include <yaml.h>
#include "auth.h"
#include "checkin_status.h"
#include "db.h"
#include "error.h"
#include "fleet.h"
#include "hub.h"
#include "inventory_int.h"
#include "json.h"
#include "manifests.h"
#include "oid.h"
#include "tenant_files.h"
#include "validate.h"

#define MAX_CLUSTER_GROUPS 64
#define MAX_OWNERS 32
#define MAX_VERSIONS 100
#define MAX_BASE_FILES 200
#define MAX_BASE_BYTES (1024 * 1024)
#define MAX_POLICY_BYTES (256 * 1024)
#define MAX_POLICY_NAMESPACES 100

static int check_label(struct inv_req *q, const char *field, const char *s)
{
    const char *why = NULL;
    if (validate_dns_label(re_str_c(s), &why) < 0)
        return inv_fail(q, 400, "invalid", field, "%s '%.80s' %s", field, s, why);
    return 0;
}

static int check_name(struct inv_req *q, const char *key)
{
    return check_label(q, "name", key);
}

static int check_string_max(struct inv_req *q, const char *field, const cJSON *v, size_t max)
{
    const char *why = NULL;
    if (!cJSON_IsString(v))
        return inv_fail(q, 400, "invalid", field, "%s must be a string", field);
    if (validate_text(re_str_c(v->valuestring), max, &why) < 0)
        return inv_fail(q, 400, "invalid", field, "%s %s", field, why);
    return 0;
}

static int check_expression(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    return inv_check_expression(q, f->name, v);
}

/* Runs a one-column query with an int64 parameter, returning the count. */
static int count_where(struct inv_req *q, const char *sql, int64_t id, const char *text,
                       int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int r = 0;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return inv_fail_err(q, -RE_EDB);
    if (text)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        r = inv_fail_err(q, -RE_EDB);
    sqlite3_finalize(st);
    return r;
}

/* ---- groups ---- */

static int group_check_key(struct inv_req *q, const char *path)
{
    const char *why = NULL;
    if (validate_group_path(re_str_c(path), &why) < 0)
        return inv_fail(q, 400, "invalid", "path", "path '%.100s' %s", path, why);
    return 0;
}

/* The parent of a valid path, into out ("" for a top-level group). */
static void parent_path(char *out, size_t size, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= size)
        n = size - 1;
    memcpy(out, path, n);
    out[n] = '\0';
}

int inv_group_id(struct inv_req *q, const char *path, int64_t *id)
{
    int64_t v = 0;
    sqlite3_stmt *st = NULL;
    int r = 0;
    if (sqlite3_prepare_v2(q->db, "SELECT id FROM groups WHERE path = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return inv_fail_err(q, -RE_EDB);
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        r = inv_fail_err(q, db_err(rc));
    sqlite3_finalize(st);
    if (r == 0)
        *id = v;
    return r;
}

/* Creates the missing ancestors first (mkdir -p), each audited. */
static int group_pre_insert(struct inv_req *q, const cJSON *body, int64_t *parent_id,
                            int64_t *depth)
{
    const char *path = cJSON_GetObjectItem(body, "path")->valuestring;
    char parent[VALIDATE_PATH_MAX + 1];
    int64_t pid = 0, d = 0;
    int r;
    for (const char *p = path; *p; p++)
        d += *p == '/';
    parent_path(parent, sizeof(parent), path);
    if (parent[0]) {
        if ((r = inv_group_id(q, parent, &pid)) < 0)
            return r;
        if (pid == 0) {
            cJSON *pbody = cJSON_CreateObject(), *after = NULL;
            if (!pbody || !cJSON_AddStringToObject(pbody, "path", parent)) {
                cJSON_Delete(pbody);
                return inv_fail_err(q, -RE_ENOMEM);
            }
            r = inv_create_in_txn(q, &inv_group, pbody, &pid, &after);
            cJSON_Delete(pbody);
            cJSON_Delete(after);
            if (r < 0)
                return r;
        }
    }
    *parent_id = pid;
    *depth = d;
    return 0;
}

static int group_decorate(struct inv_req *q, int64_t id, cJSON *obj)
{
    char parent[VALIDATE_PATH_MAX + 1];
    const cJSON *path = cJSON_GetObjectItem(obj, "path");
    parent_path(parent, sizeof(parent), cJSON_IsString(path) ? path->valuestring : "");
    if (!cJSON_AddItemToObject(obj, "parent", parent[0] ? cJSON_CreateString(parent)
                                                        : cJSON_CreateNull()))
        return -RE_ENOMEM;
    return 0;
}

/* Groups at or under path, deepest first. */
#define SUBTREE "SELECT id FROM groups WHERE path = ?1 OR substr(path, 1, length(?1) + 1) = ?1 || '/'"

static int group_pre_delete(struct inv_req *q, int64_t id, const cJSON *before)
{
    const char *path = cJSON_GetObjectItem(before, "path")->valuestring;
    int64_t clusters = 0, subgroups = 0;
    bool cascade = q->cascade;
    sqlite3_stmt *st = NULL;
    int r;
    if ((r = count_where(q, "SELECT count(DISTINCT cluster_id) FROM cluster_groups WHERE group_id"
                         " IN (" SUBTREE ")", 0, path, &clusters)) < 0 ||
        (r = count_where(q, "SELECT count(*) - 1 FROM (" SUBTREE ")", 0, path, &subgroups)) < 0)
        return r;
    if ((clusters || subgroups) && !cascade)
        return inv_fail(q, 409, "conflict", "cascade",
                        "group '%s' holds %lld clusters and %lld subgroups: delete them first"
                        " or ask for ?cascade=true (which removes the subgroups and the"
                        " memberships, not the clusters)",
                        path, (long long)clusters, (long long)subgroups);
    if (!subgroups)
        return 0;
    /* cascade: delete the subgroups deepest first, each audited */
    if (sqlite3_prepare_v2(q->db, "SELECT id FROM groups WHERE substr(path, 1, length(?1) + 1) ="
                           " ?1 || '/' ORDER BY depth DESC", -1, &st, NULL) != SQLITE_OK)
        return inv_fail_err(q, -RE_EDB);
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *p = realloc(ids, cap * sizeof(*ids));
            if (!p) {
                r = inv_fail_err(q, -RE_ENOMEM);
                goto out;
            }
            ids = p;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 0; i < n; i++) {
        cJSON *g = NULL;
        if ((r = inv_read(q, &inv_group, ids[i], &g)) < 0) {
            r = inv_fail_err(q, r);
            goto out;
        }
        r = audit_record(q->db, q->now, q->actor, "delete", "group", ids[i],
                         cJSON_GetObjectItem(g, "path")->valuestring, g, NULL);
        cJSON_Delete(g);
        if (r < 0 || sqlite3_prepare_v2(q->db, "DELETE FROM groups WHERE id = ?", -1, &st,
                                        NULL) != SQLITE_OK) {
            r = inv_fail_err(q, -RE_EDB);
            goto out;
        }
        sqlite3_bind_int64(st, 1, ids[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            r = inv_fail_err(q, -RE_EDB);
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    r = 0;
out:
    sqlite3_finalize(st);
    free(ids);
    return r;
}

static const struct inv_field group_fields[] = { { NULL, 0, 0, NULL } };

const struct inv_entity inv_group = {
    .kind = "group", .plural = "groups", .table = "groups", .key = "path",
    .fields = group_fields,
    .read_roles = ROLE_READERS | ROLE_APPTEAM | ROLE_TECHNICIAN,
    .create_roles = ROLE_ADMIN | ROLE_OPERATOR,
    .write_roles = ROLE_ADMIN | ROLE_OPERATOR,
    .check_key = group_check_key,
    .pre_insert = group_pre_insert,
    .decorate = group_decorate,
    .pre_delete = group_pre_delete,
};

/* ---- clusters ---- */

int inv_check_timezone(struct inv_req *q, const char *s)
{
    size_t n = strlen(s);
    if (n > 64)
        return inv_fail(q, 400, "invalid", "timezone", "timezone is too long");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+'))
            return inv_fail(q, 400, "invalid", "timezone",
                            "timezone must be an IANA name such as \"America/Chicago\"");
    }
    if (n && (s[0] == '/' || strstr(s, "..")))
        return inv_fail(q, 400, "invalid", "timezone", "timezone must be an IANA name");
    return 0;
}

static int check_timezone(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    return inv_check_timezone(q, v->valuestring);
}

int inv_check_cluster_groups(struct inv_req *q, const cJSON *v, bool must_exist)
{
    const cJSON *g;
    int n = 0;
    if (!cJSON_IsArray(v))
        return inv_fail(q, 400, "invalid", "groups", "groups must be an array of group paths");
    cJSON_ArrayForEach(g, v) {
        const char *why = NULL;
        int64_t id = 0;
        int r;
        if (++n > MAX_CLUSTER_GROUPS)
            return inv_fail(q, 400, "invalid", "groups", "at most %d groups", MAX_CLUSTER_GROUPS);
        if (!cJSON_IsString(g))
            return inv_fail(q, 400, "invalid", "groups", "groups must be an array of strings");
        if (validate_group_path(re_str_c(g->valuestring), &why) < 0)
            return inv_fail(q, 400, "invalid", "groups", "group '%.100s' %s", g->valuestring, why);
        if (!must_exist)
            continue;
        if ((r = inv_group_id(q, g->valuestring, &id)) < 0)
            return r;
        if (!id)
            return inv_fail(q, 400, "invalid", "groups",
                            "group '%.100s' does not exist (create it first)", g->valuestring);
    }
    return 0;
}

static int check_groups(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    return inv_check_cluster_groups(q, v, true);
}

int inv_cluster_set_groups(struct inv_req *q, int64_t id, const cJSON *groups)
{
    sqlite3_stmt *del = NULL, *ins = NULL;
    const cJSON *g;
    int r = 0;
    if (sqlite3_prepare_v2(q->db, "DELETE FROM cluster_groups WHERE cluster_id = ?", -1, &del,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(q->db, "INSERT OR IGNORE INTO cluster_groups (cluster_id, group_id)"
                           " SELECT ?, id FROM groups WHERE path = ?", -1, &ins, NULL) != SQLITE_OK) {
        r = inv_fail_err(q, -RE_EDB);
        goto out;
    }
    sqlite3_bind_int64(del, 1, id);
    if (sqlite3_step(del) != SQLITE_DONE) {
        r = inv_fail_err(q, -RE_EDB);
        goto out;
    }
    cJSON_ArrayForEach(g, groups) {
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_text(ins, 2, g->valuestring, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            r = inv_fail_err(q, -RE_EDB);
            goto out;
        }
    }
out:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return r;
}

static int cluster_post_write(struct inv_req *q, int64_t id, const cJSON *body, enum inv_action a)
{
    const cJSON *groups = cJSON_GetObjectItem(body, "groups");
    return groups ? inv_cluster_set_groups(q, id, groups) : 0;
}

/* "pinned" and "pinned_revision": a revert holds the branch (gitops_pins). */
static int cluster_pin_json(struct inv_req *q, int64_t id, cJSON *obj)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(q->db, "SELECT rev FROM gitops_pins WHERE cluster_id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return -RE_EDB;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    cJSON_AddBoolToObject(obj, "pinned", rc == SQLITE_ROW);
    if (rc == SQLITE_ROW)
        cJSON_AddStringToObject(obj, "pinned_revision", (const char *)sqlite3_column_text(st, 0));
    else
        cJSON_AddNullToObject(obj, "pinned_revision");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -RE_EDB;
}

static int cluster_decorate(struct inv_req *q, int64_t id, cJSON *obj)
{
    sqlite3_stmt *st = NULL;
    cJSON *arr = cJSON_CreateArray();
    int r = -RE_EDB, rc;
    if (!arr)
        return -RE_ENOMEM;
    if (sqlite3_prepare_v2(q->db, "SELECT g.path FROM cluster_groups cg JOIN groups g ON"
                           " g.id = cg.group_id WHERE cg.cluster_id = ? ORDER BY g.path", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, cJSON_CreateString((const char *)sqlite3_column_text(st, 0)));
    if (rc != SQLITE_DONE)
        goto out;
    /* keep "groups" next to the other fields, before metadata */
    cJSON *meta = cJSON_GetObjectItem(obj, "metadata");
    if (meta) {
        cJSON_DetachItemViaPointer(obj, meta);
        cJSON_AddItemToObject(obj, "groups", arr);
        cJSON_AddItemToObject(obj, "metadata", meta);
    } else {
        cJSON_AddItemToObject(obj, "groups", arr);
    }
    arr = NULL;
    r = 0;
    /* What its agent last reported, on reads only: it is not inventory, so it
     * stays out of audit before/after and of the GitOps change hooks. */
    if (q->live) {
        const cJSON *name = cJSON_GetObjectItem(obj, "name");
        cJSON *status = cJSON_AddObjectToObject(obj, "agent");
        char rev[RE_OID_BUF];
        if (!status || !cJSON_IsString(name))
            r = -RE_ENOMEM;
        else
            r = checkin_status_json(q->db, name->valuestring, status);
        if (r == 0 && inventory_desired_revision(q->hub, name->valuestring, rev) == 0)
            cJSON_AddStringToObject(obj, "desired_revision", rev);
        else if (r == 0)
            cJSON_AddNullToObject(obj, "desired_revision");
        char why[300];
        if (r == 0 && inventory_render_error(q->hub, name->valuestring, why, sizeof(why)) == 0)
            cJSON_AddStringToObject(obj, "render_error", why);
        else if (r == 0)
            cJSON_AddNullToObject(obj, "render_error");
        if (r == 0)
            r = cluster_pin_json(q, id, obj);
    }
out:
    sqlite3_finalize(st);
    cJSON_Delete(arr);
    return r;
}

/* path is one of the technician groups or under one. */
static bool technician_group_ok(const char *allowed, const char *path)
{
    for (const char *p = allowed ? allowed : ""; *p;) {
        size_t n = strcspn(p, " \t,");
        if (n && strncmp(path, p, n) == 0 && (path[n] == '\0' || path[n] == '/' ||
                                               (n == 1 && p[0] == '/')))
            return true;
        p += n;
        p += strspn(p, " \t,");
    }
    return false;
}

/* Technicians put stores where an admin allows ([tenancy] technician_groups),
 * never in rings or other trees that decide what runs. */
static int technician_authorize(struct inv_req *q, const cJSON *after)
{
    const char *allowed = q->hub && q->hub->cfg.technician_groups ? q->hub->cfg.technician_groups
                                                                  : "/stores";
    const cJSON *groups = cJSON_GetObjectItem(after, "groups"), *g;
    if (!cJSON_IsArray(groups) || cJSON_GetArraySize(groups) == 0)
        return inv_fail(q, 403, "forbidden", "groups",
                        "a technician creates a cluster in at least one of the groups '%s'",
                        allowed ? allowed : "");
    cJSON_ArrayForEach(g, groups)
        if (!cJSON_IsString(g) || !technician_group_ok(allowed, g->valuestring))
            return inv_fail(q, 403, "forbidden", "groups",
                            "a technician may create clusters only under '%s', not in '%s'",
                            allowed ? allowed : "", cJSON_IsString(g) ? g->valuestring : "?");
    return 0;
}

static int cluster_authorize(struct inv_req *q, enum inv_action a, const cJSON *before,
                             const cJSON *after)
{
    if (q->peer->role == ROLE_TECHNICIAN && a == INV_CREATE)
        return technician_authorize(q, after);
    const cJSON *name = cJSON_GetObjectItem(before ? before : after, "name");
    if (q->peer->role == ROLE_AGENT && a != INV_READ)
        return inv_fail(q, 403, "forbidden", NULL, "an agent may not change its cluster");
    return inv_require_own_cluster(q, cJSON_IsString(name) ? name->valuestring : NULL);
}

/* A set of cluster ids from the fleet index, for re_in_idset(). */
struct cluster_sel {
    struct db_idset idset;
    struct fleet *fleet;
    struct bitset *set;
};

static bool sel_test(void *ctx, int64_t id)
{
    struct cluster_sel *s = ctx;
    size_t i = fleet_index_of_id(s->fleet, id);
    return i != FLEET_NONE && bitset_test(s->set, i);
}

static void sel_free(void *p)
{
    struct cluster_sel *s = p;
    if (!s)
        return;
    bitset_free(s->set);
    fleet_release(s->fleet);
    free(s);
}

static int cluster_list_filter(struct inv_req *q, const cJSON *filters, struct re_buf *sql,
                               struct inv_binds *b)
{
    const cJSON *group = cJSON_GetObjectItem(filters, "group");
    const cJSON *expr = cJSON_GetObjectItem(filters, "expression");
    const cJSON *pinned = cJSON_GetObjectItem(filters, "pinned");
    struct cluster_sel *s;
    struct expr_resolver res;
    int r;
    if (cJSON_IsString(pinned)) {
        bool yes = strcmp(pinned->valuestring, "true") == 0;
        if (!yes && strcmp(pinned->valuestring, "false") != 0)
            return inv_fail(q, 400, "invalid", "pinned", "pinned must be true or false");
        if (re_buf_printf(sql, " AND id %s (SELECT cluster_id FROM gitops_pins)",
                          yes ? "IN" : "NOT IN") < 0)
            return inv_fail_err(q, -RE_ENOMEM);
    }
    if (!cJSON_IsString(group) && !cJSON_IsString(expr))
        return 0;
    if (cJSON_IsString(group)) {
        const char *why = NULL;
        int64_t gid = 0;
        if (validate_group_path(re_str_c(group->valuestring), &why) < 0)
            return inv_fail(q, 400, "invalid", "group", "group '%.100s' %s", group->valuestring,
                            why);
        if ((r = inv_group_id(q, group->valuestring, &gid)) < 0)
            return r;
        if (!gid)
            return inv_fail(q, 404, "not_found", "group", "group '%.100s' not found",
                            group->valuestring);
    }
    if (cJSON_IsString(expr) && (r = inv_check_expression(q, "expression", expr)) < 0)
        return r;
    if (!(s = calloc(1, sizeof(*s))))
        return inv_fail_err(q, -RE_ENOMEM);
    b->owned[b->n_owned++] = s;
    b->free_owned = sel_free;
    s->idset.test = sel_test;
    s->idset.ctx = s;
    if ((r = fleet_acquire(&s->fleet, q->db)) < 0)
        return inv_fail_err(q, r);
    if (cJSON_IsString(expr)) {
        struct expr_error err = { 0 };
        r = fleet_select(&s->set, s->fleet, expr->valuestring, strlen(expr->valuestring), &err);
        if (r == -RE_EDEPTH && !err.message[0])
            return inv_fail(q, 400, "invalid_expression", "expression",
                            "expression: namespaces refer to each other in a cycle");
        if (r < 0)
            return r == -RE_ENOMEM ? inv_fail_err(q, r)
                                   : inv_fail(q, 400, "invalid_expression", "expression",
                                              "expression: %s", err.message);
    } else if ((r = bitset_new(&s->set, fleet_size(s->fleet))) < 0) {
        return inv_fail_err(q, r);
    } else {
        bitset_fill(s->set);
    }
    if (cJSON_IsString(group)) {
        struct bitset *g = NULL;
        fleet_resolver(s->fleet, &res);
        if ((r = bitset_new(&g, fleet_size(s->fleet))) < 0 ||
            (r = res.group(res.ctx, group->valuestring, g)) < 0 ||
            (r = bitset_and(s->set, g)) < 0) {
            bitset_free(g);
            return inv_fail_err(q, r);
        }
        bitset_free(g);
    }
    if (re_buf_append_str(sql, " AND re_in_idset(?, id)") < 0 || inv_bind_idset(b, &s->idset) < 0)
        return inv_fail_err(q, -RE_ENOMEM);
    return 0;
}

static const struct inv_field cluster_fields[] = {
    { "timezone", FT_STRING, 0, check_timezone },
    { "groups", FT_VIRTUAL, 0, check_groups },
    { NULL, 0, 0, NULL },
};
static const char *const cluster_list_params[] = { "group", "expression", "pinned", NULL };

const struct inv_entity inv_cluster = {
    .kind = "cluster", .plural = "clusters", .table = "clusters", .key = "name",
    .fields = cluster_fields,
    .list_params = cluster_list_params,
    .read_roles = ROLE_READERS | ROLE_APPTEAM | ROLE_TECHNICIAN | ROLE_AGENT,
    .create_roles = ROLE_ADMIN | ROLE_OPERATOR | ROLE_TECHNICIAN,
    .write_roles = ROLE_ADMIN | ROLE_OPERATOR,
    .check_key = check_name,
    .authorize = cluster_authorize,
    .post_write = cluster_post_write,
    .decorate = cluster_decorate,
    .list_filter = cluster_list_filter,
};

/* ---- namespaces ---- */

static int check_owners(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    const cJSON *o, *p;
    int n = 0;
    if (!cJSON_IsArray(v))
        return inv_fail(q, 400, "invalid", "owners",
                        "owners must be an array of identities such as \"user/alice\"");
    cJSON_ArrayForEach(o, v) {
        const char *why = NULL;
        if (++n > MAX_OWNERS)
            return inv_fail(q, 400, "invalid", "owners", "at most %d owners", MAX_OWNERS);
        if (!cJSON_IsString(o))
            return inv_fail(q, 400, "invalid", "owners", "owners must be strings");
        if (validate_identity(re_str_c(o->valuestring), &why) < 0)
            return inv_fail(q, 400, "invalid", "owners", "owner '%.100s' %s", o->valuestring, why);
        for (p = v->child; p != o; p = p->next)
            if (strcmp(p->valuestring, o->valuestring) == 0)
                return inv_fail(q, 400, "invalid", "owners", "owner '%.100s' listed twice",
                                o->valuestring);
    }
    return 0;
}

/* A validated quantity ("500m", "2", "1.5", "8Gi", "1e3") as a number of
 * base units (cores, bytes). */
static double quantity_value(const char *s)
{
    static const struct { const char *suffix; double mul; } units[] = {
        { "Ki", 1024.0 }, { "Mi", 1048576.0 }, { "Gi", 1073741824.0 },
        { "Ti", 1099511627776.0 }, { "Pi", 1125899906842624.0 }, { "Ei", 1152921504606846976.0 },
        { "m", 1e-3 }, { "k", 1e3 }, { "M", 1e6 }, { "G", 1e9 }, { "T", 1e12 }, { "P", 1e15 },
        { "E", 1e18 },
    };
    char *end = NULL;
    double v = strtod(s, &end);
    for (size_t i = 0; end && *end && i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].suffix) == 0)
            return v * units[i].mul;
    return v;
}

/* The LimitRange render.c gives every namespace requests 100m and 128Mi
 * for a container that asks nothing: a quota below that refuses such pods. */
#define DEFAULT_REQUEST_CPU    0.1
#define DEFAULT_REQUEST_MEMORY (128.0 * 1048576.0)

static int check_quota(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    const cJSON *m;
    if (!cJSON_IsObject(v))
        return inv_fail(q, 400, "invalid", "quota", "quota must be an object {cpu, memory, pods}");
    cJSON_ArrayForEach(m, v) {
        char field[64];
        const char *why = NULL;
        snprintf(field, sizeof(field), "quota.%.40s", m->string);
        if (strcmp(m->string, "cpu") == 0 || strcmp(m->string, "memory") == 0) {
            if (!cJSON_IsString(m))
                return inv_fail(q, 400, "invalid", field, "%s must be a string", field);
            if (validate_quantity(re_str_c(m->valuestring), &why) < 0)
                return inv_fail(q, 400, "invalid", field, "%s %s", field, why);
            bool cpu = strcmp(m->string, "cpu") == 0;
            if (quantity_value(m->valuestring) < (cpu ? DEFAULT_REQUEST_CPU : DEFAULT_REQUEST_MEMORY))
                return inv_fail(q, 400, "invalid", field,
                                "%s %s is below the %s a container gets by default (the "
                                "namespace's LimitRange requests %s): no such pod would fit",
                                field, m->valuestring, cpu ? "CPU" : "memory",
                                cpu ? "100m" : "128Mi");
        } else if (strcmp(m->string, "pods") == 0) {
            /* Range first: casting an out-of-range double (1e400) is undefined. */
            if (!cJSON_IsNumber(m) || !(m->valuedouble >= 1 && m->valuedouble <= 1000000) ||
                m->valuedouble != (double)(long long)m->valuedouble)
                return inv_fail(q, 400, "invalid", field, "%s must be an integer 1-1000000", field);
        } else {
            static const char *const valid[] = { "cpu", "memory", "pods", NULL };
            return inv_fail_unknown(q, field, valid);
        }
    }
    return 0;
}

static int check_network(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    static const char *const keys[] = { "default_deny", "allow_dns", "allow_same_namespace", NULL };
    const cJSON *m;
    if (!cJSON_IsObject(v))
        return inv_fail(q, 400, "invalid", "network",
                        "network must be an object {default_deny, allow_dns, allow_same_namespace}");
    cJSON_ArrayForEach(m, v) {
        char field[64];
        bool known = false;
        snprintf(field, sizeof(field), "network.%.40s", m->string);
        for (size_t i = 0; keys[i]; i++)
            known |= strcmp(keys[i], m->string) == 0;
        if (!known)
            return inv_fail_unknown(q, field, keys);
        if (!cJSON_IsBool(m))
            return inv_fail(q, 400, "invalid", field, "%s must be true or false", field);
    }
    return 0;
}

/* Names no inventory namespace may take, for anyone: the cluster's own,
 * the GitOps engines', the hub's. A namespace the hub renders gets a
 * default-deny policy, a LimitRange and an owner RoleBinding, and deleting
 * it prunes the real one: on these that would break the store. */
static int ns_check_key(struct inv_req *q, const char *name)
{
    static const char *const exact[] = { "default", "flux-system", "argocd", NULL };
    static const char *const prefix[] = { "kube-", "resedge-", "openshift-", NULL };
    int r;
    if ((r = check_name(q, name)) < 0)
        return r;
    for (size_t i = 0; exact[i]; i++)
        if (strcasecmp(name, exact[i]) == 0)
            return inv_fail(q, 400, "reserved", "name",
                            "namespace '%s' is reserved (the cluster's or a GitOps engine's own)",
                            name);
    for (size_t i = 0; prefix[i]; i++)
        if (strncasecmp(name, prefix[i], strlen(prefix[i])) == 0)
            return inv_fail(q, 400, "reserved", "name",
                            "namespace names starting with '%s' are reserved", prefix[i]);
    return 0;
}

static int ns_complete(struct inv_req *q, cJSON *body)
{
    /* an app team creating a namespace owns it */
    if (q->peer->role == ROLE_APPTEAM && !cJSON_GetObjectItem(body, "owners")) {
        cJSON *arr = cJSON_AddArrayToObject(body, "owners");
        if (!arr || !cJSON_AddItemToArray(arr, cJSON_CreateString(q->actor)))
            return inv_fail_err(q, -RE_ENOMEM);
    }
    return 0;
}

static int ns_authorize(struct inv_req *q, enum inv_action a, const cJSON *before,
                        const cJSON *after)
{
    /* placement and capacity are the platform's: an app team neither
     * chooses its stores nor raises its own quota */
    static const char *const platform_fields[] = { "expression", "quota", "network", NULL };
    if (q->peer->role != ROLE_APPTEAM || a == INV_READ)
        return 0;
    if (before && !auth_in_owners(q->peer, cJSON_GetObjectItem(before, "owners")))
        return inv_fail(q, 403, "forbidden", NULL, "'%s' is not an owner of namespace '%s'",
                        q->actor, cJSON_GetObjectItem(before, "name")->valuestring);
    for (size_t i = 0; after && platform_fields[i]; i++) {
        const cJSON *now = cJSON_GetObjectItem(after, platform_fields[i]);
        const cJSON *was = before ? cJSON_GetObjectItem(before, platform_fields[i]) : NULL;
        bool unset = !now || cJSON_IsNull(now) || (cJSON_IsString(now) && !now->valuestring[0]);
        bool was_unset = !was || cJSON_IsNull(was) || (cJSON_IsString(was) && !was->valuestring[0]);
        if ((unset && was_unset) || (now && was && cJSON_Compare(now, was, true)))
            continue;
        return inv_fail(q, 403, "forbidden", platform_fields[i],
                        "only a platform role (admin, operator) sets a namespace's %s",
                        platform_fields[i]);
    }
    if (after && !auth_in_owners(q->peer, cJSON_GetObjectItem(after, "owners")))
        return inv_fail(q, 403, "forbidden", "owners",
                        "'%s' must stay among the namespace's owners", q->actor);
    return 0;
}

static int ns_post_write(struct inv_req *q, int64_t id, const cJSON *body, enum inv_action a)
{
    const cJSON *expr = cJSON_GetObjectItem(body, "expression");
    struct fleet *f = NULL;
    struct bitset *set = NULL;
    char text[80];
    int r;
    if (!expr)
        return 0;
    /* evaluate with this write visible, to catch namespaces naming each other in a cycle */
    snprintf(text, sizeof(text), "/n/%s", cJSON_GetObjectItem(body, "name")
                                              ? cJSON_GetObjectItem(body, "name")->valuestring : "");
    if (!cJSON_GetObjectItem(body, "name")) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(q->db, "SELECT name FROM namespaces WHERE id = ?", -1, &st, NULL) ==
                SQLITE_OK) {
            sqlite3_bind_int64(st, 1, id);
            if (sqlite3_step(st) == SQLITE_ROW)
                snprintf(text, sizeof(text), "/n/%s", sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
    }
    fleet_invalidate();
    if ((r = fleet_acquire(&f, q->db)) < 0)
        return inv_fail_err(q, r);
    r = fleet_select(&set, f, text, strlen(text), NULL);
    bitset_free(set);
    fleet_release(f);
    fleet_invalidate();
    if (r == -RE_EDEPTH)
        return inv_fail(q, 400, "invalid_expression", "expression",
                        "expression: namespaces refer to each other through /n/ in a cycle");
    return r < 0 ? inv_fail_err(q, r) : 0;
}

static int ns_pre_delete(struct inv_req *q, int64_t id, const cJSON *before)
{
    int64_t n = 0;
    const char *name = cJSON_GetObjectItem(before, "name")->valuestring;
    int r = count_where(q, "SELECT count(*) FROM applications WHERE namespace = ?", 0, name, &n);
    if (r < 0)
        return r;
    if (n)
        return inv_fail(q, 409, "conflict", NULL,
                        "namespace '%s' still has %lld applications: delete them first", name,
                        (long long)n);
    return 0;
}

static const struct inv_field ns_fields[] = {
    { "owners", FT_JSON, 0, check_owners },
    { "expression", FT_STRING, 0, check_expression },
    { "quota", FT_JSON, 0, check_quota },
    { "network", FT_JSON, 0, check_network },
    { NULL, 0, 0, NULL },
};

const struct inv_entity inv_namespace = {
    .kind = "namespace", .plural = "namespaces", .table = "namespaces", .key = "name",
    .fields = ns_fields,
    .read_roles = ROLE_READERS | ROLE_APPTEAM,
    .create_roles = ROLE_ADMIN | ROLE_OPERATOR | ROLE_APPTEAM,
    .write_roles = ROLE_ADMIN | ROLE_OPERATOR | ROLE_APPTEAM,
    .check_key = ns_check_key,
    .complete = ns_complete,
    .authorize = ns_authorize,
    .post_write = ns_post_write,
    .pre_delete = ns_pre_delete,
};

/* ---- applications ---- */

static int check_namespace_ref(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    int64_t n = 0;
    int r;
    if ((r = check_label(q, "namespace", v->valuestring)) < 0 ||
        (r = count_where(q, "SELECT count(*) FROM namespaces WHERE name = ?", 0, v->valuestring,
                         &n)) < 0)
        return r;
    if (!n)
        return inv_fail(q, 400, "invalid", "namespace", "namespace '%s' does not exist",
                        v->valuestring);
    return 0;
}

static int check_owner(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    const char *why = NULL;
    if (validate_identity(re_str_c(v->valuestring), &why) < 0)
        return inv_fail(q, 400, "invalid", "owner", "owner %s", why);
    return 0;
}

/* Checks obj has only the listed members. */
static int only_keys(struct inv_req *q, const char *prefix, const cJSON *obj,
                     const char *const *keys)
{
    const char *bad = re_json_unknown_key(obj, keys);
    char field[128];
    if (!bad)
        return 0;
    snprintf(field, sizeof(field), "%.40s.%.80s", prefix, bad);
    return inv_fail_unknown(q, field, keys);
}

static int check_source(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    static const char *const top[] = { "git", "base", NULL };
    static const char *const git_keys[] = { "url", "ref", "path", NULL };
    static const char *const base_keys[] = { "files", "image", NULL };
    const cJSON *git = cJSON_GetObjectItem(v, "git"), *base = cJSON_GetObjectItem(v, "base");
    int r;
    if (!cJSON_IsObject(v))
        return inv_fail(q, 400, "invalid", "source",
                        "source must be {\"git\": {url, ref, path}} or {\"base\": {\"files\": {...}}}");
    if ((r = only_keys(q, "source", v, top)) < 0)
        return r;
    if (!!git == !!base)
        return inv_fail(q, 400, "invalid", "source", "source must have exactly one of git or base");
    if (git) {
        const cJSON *url = cJSON_GetObjectItem(git, "url");
        if (!cJSON_IsObject(git))
            return inv_fail(q, 400, "invalid", "source.git", "source.git must be an object");
        if ((r = only_keys(q, "source.git", git, git_keys)) < 0)
            return r;
        if (!cJSON_IsString(url) || (strncmp(url->valuestring, "https://", 8) != 0 &&
                                     strncmp(url->valuestring, "http://", 7) != 0 &&
                                     strncmp(url->valuestring, "ssh://", 6) != 0))
            return inv_fail(q, 400, "invalid", "source.git.url",
                            "source.git.url must be an https://, http:// or ssh:// URL");
        if ((r = check_string_max(q, "source.git.url", url, 1024)) < 0)
            return r;
        for (const char *p = url->valuestring; *p; p++)
            if (*p == ' ' || *p == '\n' || *p == '\t')
                return inv_fail(q, 400, "invalid", "source.git.url", "URLs hold no whitespace");
        const cJSON *ref = cJSON_GetObjectItem(git, "ref"), *path = cJSON_GetObjectItem(git, "path");
        if (ref && (r = check_string_max(q, "source.git.ref", ref, 255)) < 0)
            return r;
        if (path && (r = check_string_max(q, "source.git.path", path, 1024)) < 0)
            return r;
        const char *why = NULL;
        if (path && tenant_path_check(path->valuestring, &why) < 0)
            return inv_fail(q, 400, "invalid", "source.git.path", "source.git.path '%.200s' %s",
                            path->valuestring, why);
        return 0;
    }
    const cJSON *files = cJSON_GetObjectItem(base, "files"), *file;
    size_t total = 0;
    int n = 0;
    if (!cJSON_IsObject(base) || (r = only_keys(q, "source.base", base, base_keys)) < 0)
        return q->status ? -RE_EINVAL
                         : inv_fail(q, 400, "invalid", "source.base", "source.base must be an object");
    const cJSON *image = cJSON_GetObjectItem(base, "image");
    if (image && (r = check_string_max(q, "source.base.image", image, 255)) < 0)
        return r;
    if (image && strpbrk(image->valuestring, " \n\t"))
        return inv_fail(q, 400, "invalid", "source.base.image", "an image name holds no whitespace");
    if (!cJSON_IsObject(files))
        return inv_fail(q, 400, "invalid", "source.base.files",
                        "source.base.files must be an object of path: content");
    cJSON_ArrayForEach(file, files) {
        const char *why = NULL;
        char field[300];
        snprintf(field, sizeof(field), "source.base.files.%.200s", file->string);
        if (++n > MAX_BASE_FILES)
            return inv_fail(q, 400, "invalid", "source.base.files", "at most %d files",
                            MAX_BASE_FILES);
        if (validate_file_path(re_str_c(file->string), &why) < 0)
            return inv_fail(q, 400, "invalid", field, "%s", why);
        if ((r = check_string_max(q, field, file, MAX_BASE_BYTES)) < 0)
            return r;
        total += strlen(file->valuestring);
        if (total > MAX_BASE_BYTES)
            return inv_fail(q, 400, "too_large", "source.base.files",
                            "the base's files exceed %d bytes", MAX_BASE_BYTES);
        char fwhy[512];
        r = tenant_file_check(file->string, file->valuestring, strlen(file->valuestring), fwhy,
                              sizeof(fwhy));
        if (r == -RE_ENOMEM)
            return inv_fail_err(q, r);
        if (r < 0)
            return inv_fail(q, 400, "forbidden_content", field, "%s", fwhy);
    }
    return 0;
}

static int check_versions(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    static const char *const keys[] = { "version", "ref", "path", "image_tag", "expression", NULL };
    const cJSON *item, *p;
    int i = 0, r;
    if (!cJSON_IsArray(v))
        return inv_fail(q, 400, "invalid", "versions",
                        "versions must be an array of {version, expression, ref or image_tag}");
    if (cJSON_GetArraySize(v) > MAX_VERSIONS)
        return inv_fail(q, 400, "invalid", "versions", "at most %d versions", MAX_VERSIONS);
    cJSON_ArrayForEach(item, v) {
        char field[64], sub[96];
        const char *why = NULL;
        snprintf(field, sizeof(field), "versions[%d]", i++);
        if (!cJSON_IsObject(item))
            return inv_fail(q, 400, "invalid", field, "%s must be an object", field);
        if ((r = only_keys(q, field, item, keys)) < 0)
            return r;
        const cJSON *ver = cJSON_GetObjectItem(item, "version");
        snprintf(sub, sizeof(sub), "%s.version", field);
        if (!cJSON_IsString(ver))
            return inv_fail(q, 400, "invalid", sub, "%s must be a string", sub);
        if (validate_version(re_str_c(ver->valuestring), &why) < 0)
            return inv_fail(q, 400, "invalid", sub, "%s %s", sub, why);
        for (p = v->child; p != item; p = p->next)
            if (strcmp(cJSON_GetObjectItem(p, "version")->valuestring, ver->valuestring) == 0)
                return inv_fail(q, 400, "invalid", sub, "version '%s' listed twice",
                                ver->valuestring);
        static const char *const strs[] = { "ref", "path", "image_tag", NULL };
        for (size_t k = 0; strs[k]; k++) {
            const cJSON *s = cJSON_GetObjectItem(item, strs[k]);
            snprintf(sub, sizeof(sub), "%s.%s", field, strs[k]);
            if (s && (r = check_string_max(q, sub, s, 255)) < 0)
                return r;
            if (s && strchr(s->valuestring, '\n'))
                return inv_fail(q, 400, "invalid", sub, "%s must be one line", sub);
            if (s && strcmp(strs[k], "path") == 0 && tenant_path_check(s->valuestring, &why) < 0)
                return inv_fail(q, 400, "invalid", sub, "%s '%.200s' %s", sub, s->valuestring, why);
        }
        snprintf(sub, sizeof(sub), "%s.expression", field);
        const cJSON *e = cJSON_GetObjectItem(item, "expression");
        if (!e)
            return inv_fail(q, 400, "invalid", sub, "%s is required", sub);
        if ((r = inv_check_expression(q, sub, e)) < 0)
            return r;
    }
    return 0;
}

/* Flux labels what a Kustomization applies with its name
 * (kustomize.toolkit.fluxcd.io/name, a label value: at most 63), and an
 * application's is "resedge-app-<name>". */
#define APP_NAME_MAX (VALIDATE_LABEL_MAX - 12)
static int app_check_key(struct inv_req *q, const char *name)
{
    int r = check_name(q, name);
    if (r == 0 && strlen(name) > APP_NAME_MAX)
        return inv_fail(q, 400, "invalid", "name",
                        "an application name is at most %d characters: its Flux Kustomization "
                        "'resedge-app-%.20s...' names a label value of at most 63", APP_NAME_MAX,
                        name);
    return r;
}

static int app_complete(struct inv_req *q, cJSON *body)
{
    if (!cJSON_GetObjectItem(body, "owner") && !cJSON_AddStringToObject(body, "owner", q->actor))
        return inv_fail_err(q, -RE_ENOMEM);
    return 0;
}

static int app_authorize(struct inv_req *q, enum inv_action a, const cJSON *before,
                         const cJSON *after)
{
    bool owns = false;
    int r;
    if (q->peer->role != ROLE_APPTEAM || a == INV_READ)
        return 0;
    const cJSON *ns = cJSON_GetObjectItem(before ? before : after, "namespace");
    if (!cJSON_IsString(ns))
        return inv_fail(q, 403, "forbidden", "namespace", "no namespace");
    if ((r = auth_owns_namespace(q->db, q->peer, ns->valuestring, &owns)) < 0)
        return inv_fail_err(q, r);
    if (!owns)
        return inv_fail(q, 403, "forbidden", "namespace",
                        "'%s' is not an owner of namespace '%s'", q->actor, ns->valuestring);
    return 0;
}

static int app_list_filter(struct inv_req *q, const cJSON *filters, struct re_buf *sql,
                           struct inv_binds *b)
{
    const cJSON *ns = cJSON_GetObjectItem(filters, "namespace");
    if (!cJSON_IsString(ns))
        return 0;
    if (re_buf_append_str(sql, " AND namespace = ?") < 0 || inv_bind_text(b, ns->valuestring) < 0)
        return inv_fail_err(q, -RE_ENOMEM);
    return 0;
}

static const struct inv_field app_fields[] = {
    { "namespace", FT_STRING, F_REQUIRED | F_IMMUTABLE, check_namespace_ref },
    { "owner", FT_STRING, 0, check_owner },
    { "source", FT_JSON, 0, check_source },
    { "versions", FT_JSON, 0, check_versions },
    { NULL, 0, 0, NULL },
};
static const char *const app_list_params[] = { "namespace", NULL };

const struct inv_entity inv_application = {
    .kind = "application", .plural = "applications", .table = "applications", .key = "name",
    .fields = app_fields,
    .list_params = app_list_params,
    .read_roles = ROLE_READERS | ROLE_APPTEAM,
    .create_roles = ROLE_ADMIN | ROLE_OPERATOR | ROLE_APPTEAM,
    .write_roles = ROLE_ADMIN | ROLE_OPERATOR | ROLE_APPTEAM,
    .check_key = app_check_key,
    .complete = app_complete,
    .authorize = app_authorize,
    .list_filter = app_list_filter,
};

/* ---- policies ---- */

static int check_yaml(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int r = 0, done = 0;
    size_t len = strlen(v->valuestring);
    if (len > MAX_POLICY_BYTES)
        return inv_fail(q, 400, "too_large", "yaml", "yaml is larger than %d bytes",
                        MAX_POLICY_BYTES);
    if ((r = check_string_max(q, "yaml", v, MAX_POLICY_BYTES)) < 0)
        return r;
    if (!yaml_parser_initialize(&parser))
        return inv_fail_err(q, -RE_ENOMEM);
    yaml_parser_set_input_string(&parser, (const unsigned char *)v->valuestring, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            r = inv_fail(q, 400, "invalid", "yaml", "yaml: %s at line %zu column %zu",
                         parser.problem ? parser.problem : "syntax error",
                         parser.problem_mark.line + 1, parser.problem_mark.column + 1);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return r;
}

static int check_ns_list(struct inv_req *q, const struct inv_field *f, const cJSON *v)
{
    const cJSON *n;
    int count = 0, r;
    if (!cJSON_IsArray(v))
        return inv_fail(q, 400, "invalid", "namespaces", "namespaces must be an array of names");
    cJSON_ArrayForEach(n, v) {
        int64_t c = 0;
        if (++count > MAX_POLICY_NAMESPACES)
            return inv_fail(q, 400, "invalid", "namespaces", "too many namespaces");
        if (!cJSON_IsString(n))
            return inv_fail(q, 400, "invalid", "namespaces", "namespaces must be strings");
        if ((r = check_label(q, "namespaces", n->valuestring)) < 0 ||
            (r = count_where(q, "SELECT count(*) FROM namespaces WHERE name = ?", 0,
                             n->valuestring, &c)) < 0)
            return r;
        if (!c)
            return inv_fail(q, 400, "invalid", "namespaces", "namespace '%s' does not exist",
                            n->valuestring);
    }
    return 0;
}

static const struct inv_field policy_fields[] = {
    { "yaml", FT_STRING, 0, check_yaml },
    { "expression", FT_STRING, 0, check_expression },
    { "namespaces", FT_JSON, 0, check_ns_list },
    { NULL, 0, 0, NULL },
};

/* ---- what a policy's objects may be ----
 * Flux applies all policies and the hub's own objects of a store in one
 * kustomize build: two definitions of one object break the whole store, and
 * a namespaced object without a namespace fails Flux's dry run. */
#define POLICY_MAX_OBJECTS 256

struct policy_objects {
    struct manifest_id *v;
    size_t n;
};

static int collect_id(void *ctx, const struct manifest_id *id)
{
    struct policy_objects *o = ctx;
    struct manifest_id *nv = realloc(o->v, (o->n + 1) * sizeof(*nv));
    if (!nv)
        return -RE_ENOMEM;
    o->v = nv;
    o->v[o->n++] = *id;
    return 0;
}

static bool same_object(const struct manifest_id *a, const struct manifest_id *b)
{
    return strcmp(a->group, b->group) == 0 && strcmp(a->kind, b->kind) == 0 &&
           strcmp(a->ns, b->ns) == 0 && strcmp(a->name, b->name) == 0;
}

/* The objects the hub renders itself, in an inventory namespace or in
 * flux-system: the Namespace, and every object named resedge-* or
 * default-deny/allow-same-namespace (render.c). */
static int hub_renders(struct inv_req *q, const struct manifest_id *id, bool *out)
{
    int64_t n = 0;
    int r;
    *out = false;
    if (strcmp(id->kind, "Namespace") == 0 && !id->group[0]) {
        if ((r = count_where(q, "SELECT count(*) FROM namespaces WHERE name = ?", 0, id->name,
                             &n)) < 0)
            return r;
        *out = n > 0;
        return 0;
    }
    if (strncmp(id->name, "resedge-", 8) != 0 && strcmp(id->name, "default-deny") != 0 &&
        strcmp(id->name, "allow-same-namespace") != 0)
        return 0;
    if (strcmp(id->ns, "flux-system") == 0) {
        *out = true;
        return 0;
    }
    if ((r = count_where(q, "SELECT count(*) FROM namespaces WHERE name = ?", 0, id->ns, &n)) < 0)
        return r;
    *out = n > 0;
    return 0;
}

static int parse_policy(struct inv_req *q, const char *name, const char *yaml,
                        struct policy_objects *o)
{
    char why[300] = "";
    int r = manifest_each(yaml, strlen(yaml), POLICY_MAX_OBJECTS, collect_id, o, why, sizeof(why));
    if (r == -RE_ENOMEM)
        return inv_fail_err(q, r);
    if (r < 0)
        return inv_fail(q, 400, "invalid", "yaml", "policy '%s': %s", name, why);
    return 0;
}

static int policy_post_write(struct inv_req *q, int64_t id, const cJSON *body, enum inv_action a)
{
    struct policy_objects mine = { 0 }, theirs = { 0 };
    sqlite3_stmt *st = NULL;
    char self[VALIDATE_LABEL_MAX + 1] = "";
    int r = 0, rc;
    if (sqlite3_prepare_v2(q->db, "SELECT name, coalesce(yaml, '') FROM policies WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return inv_fail_err(q, -RE_EDB);
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(self, sizeof(self), "%s", (const char *)sqlite3_column_text(st, 0));
        r = parse_policy(q, self, (const char *)sqlite3_column_text(st, 1), &mine);
    }
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 0; r == 0 && i < mine.n; i++) {
        const struct manifest_id *m = &mine.v[i];
        bool rendered = false;
        if (!manifest_kind_cluster_scoped(m->kind) && !m->ns[0]) {
            r = inv_fail(q, 400, "invalid", "yaml",
                         "policy '%s', document %d: %s '%s' is namespaced: give it "
                         "metadata.namespace (Flux refuses a namespaced object without one)",
                         self, m->doc, m->kind, m->name);
        } else if ((r = hub_renders(q, m, &rendered)) == 0 && rendered) {
            r = inv_fail(q, 409, "conflict", "yaml",
                         "policy '%s' defines %s %s%s%s, which the hub renders itself", self,
                         m->kind, m->ns, m->ns[0] ? "/" : "", m->name);
        }
    }
    if (r == 0 && mine.n &&
        sqlite3_prepare_v2(q->db, "SELECT name, coalesce(yaml, '') FROM policies WHERE id <> ?",
                           -1, &st, NULL) != SQLITE_OK)
        r = inv_fail_err(q, -RE_EDB);
    if (st)
        sqlite3_bind_int64(st, 1, id);
    while (r == 0 && st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *other = (const char *)sqlite3_column_text(st, 0);
        theirs.n = 0;
        /* a stored policy that no longer parses is its own problem, not this one's */
        char why[300];
        if (manifest_each((const char *)sqlite3_column_text(st, 1),
                          (size_t)sqlite3_column_bytes(st, 1), POLICY_MAX_OBJECTS, collect_id,
                          &theirs, why, sizeof(why)) == -RE_ENOMEM) {
            r = inv_fail_err(q, -RE_ENOMEM);
            break;
        }
        for (size_t i = 0; r == 0 && i < mine.n; i++)
            for (size_t k = 0; r == 0 && k < theirs.n; k++)
                if (same_object(&mine.v[i], &theirs.v[k]))
                    r = inv_fail(q, 409, "conflict", "yaml",
                                 "policy '%s' and policy '%s' both define %s %s%s%s: one "
                                 "object, one owner", self, other, mine.v[i].kind, mine.v[i].ns,
                                 mine.v[i].ns[0] ? "/" : "", mine.v[i].name);
    }
    sqlite3_finalize(st);
    free(mine.v);
    free(theirs.v);
    return r;
}

const struct inv_entity inv_policy = {
    .kind = "policy", .plural = "policies", .table = "policies", .key = "name",
    .fields = policy_fields,
    .read_roles = ROLE_READERS | ROLE_APPTEAM,
    .create_roles = ROLE_ADMIN | ROLE_OPERATOR,
    .write_roles = ROLE_ADMIN | ROLE_OPERATOR,
    .check_key = check_name,
    .post_write = policy_post_write,
};
