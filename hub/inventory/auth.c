/* auth.c - maps a verified client certificate to a role, checked on every
 * request (also on TLS-resumed sessions) so revocation takes effect at once. */
#include <string.h>
#include "auth.h"
#include "bitset.h"
#include "caller.h"
#include "db.h"
#include "fleet.h"
#include "error.h"
#include "hub.h"

/* Looks peer up with sql, which selects (cert_serial, revoked, role, id) by
 * name (a static string: the statement is cached); role is NULL for
 * clusters, whose certificates bring ROLE_AGENT. The
 * certificate must be the identity's current one and the identity not
 * revoked. A database error is an error, not an unknown identity. */
static int resolve(sqlite3 *db, struct caller *peer, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int r, rc;
    if (db_prepare_cached(db, sql, &st) < 0)
        return -RE_EDB;
    sqlite3_bind_text(st, 1, peer->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *serial = (const char *)sqlite3_column_text(st, 0);
        const char *role = (const char *)sqlite3_column_text(st, 2);
        int granted = role ? role_parse(role) : ROLE_AGENT;
        if (sqlite3_column_int(st, 1) || !serial || strcmp(serial, peer->serial) != 0 ||
            !granted) {
            r = -RE_EDENIED;
        } else {
            peer->role = granted;
            peer->id = sqlite3_column_int64(st, 3);
            r = 0;
        }
    } else {
        r = rc == SQLITE_DONE ? -RE_EUNAUTH : db_err(rc);
    }
    db_release(st);
    return r;
}

static const char users_sql[] =
    "SELECT cert_serial, revoked, role, id FROM users WHERE name = ?";
static const char clusters_sql[] =
    "SELECT cert_serial, revoked, NULL, id FROM clusters WHERE name = ?";

int auth_resolve(struct hub *hub, struct caller *peer)
{
    peer->role = ROLE_NONE;
    peer->id = 0;
    if (!peer->authenticated)
        return -RE_EUNAUTH;
    if (strcmp(peer->kind, "user") == 0)
        return resolve(hub->db, peer, users_sql);
    if (strcmp(peer->kind, "cluster") == 0)
        return resolve(hub->db, peer, clusters_sql);
    return -RE_EUNAUTH;
}

int auth_identity(char *out, size_t size, const struct caller *peer)
{
    return re_snprintf(out, size, "%s/%s", peer->kind, peer->name);
}

bool auth_has_role(const struct caller *peer, unsigned roles)
{
    return (peer->role & (int)roles) != 0;
}

bool auth_is_cluster(const struct caller *peer, const char *name)
{
    return strcmp(peer->kind, "cluster") == 0 && strcmp(peer->name, name) == 0;
}

bool auth_own_cluster_ok(const struct caller *peer, const char *cluster)
{
    return peer->role != ROLE_AGENT || auth_is_cluster(peer, cluster ? cluster : "");
}

bool auth_in_owners(const struct caller *peer, const cJSON *owners)
{
    char id[200];
    const cJSON *o;
    if (!cJSON_IsArray(owners) || auth_identity(id, sizeof(id), peer) < 0)
        return false;
    cJSON_ArrayForEach(o, owners)
        if (cJSON_IsString(o) && strcmp(o->valuestring, id) == 0)
            return true;
    return false;
}

int auth_owns_namespace(sqlite3 *db, const struct caller *peer, const char *ns, bool *out)
{
    sqlite3_stmt *st = NULL;
    char id[200];
    int r = 0;
    bool owns = false;
    if (auth_identity(id, sizeof(id), peer) < 0) {
        *out = false;
        return 0;
    }
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM namespaces n, json_each(n.owners) o"
                           " WHERE n.name = ? AND o.value = ?", -1, &st, NULL) != SQLITE_OK)
        return -RE_EDB;
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        owns = true;
    else if (rc != SQLITE_DONE)
        r = -RE_EDB;
    sqlite3_finalize(st);
    if (r == 0)
        *out = owns;
    return r;
}

/* Whether namespace ns's selection holds fleet index idx. */
static int ns_selects(struct fleet *f, const char *ns, size_t idx, bool *out)
{
    struct bitset *set = NULL;
    char sel[96];
    int n = snprintf(sel, sizeof(sel), "/n/%s", ns), r;
    *out = false;
    if (n < 0 || (size_t)n >= sizeof(sel))
        return 0;
    if ((r = fleet_select(&set, f, sel, (size_t)n, NULL)) < 0)
        return r;
    *out = bitset_test(set, idx);
    bitset_free(set);
    return 0;
}

int auth_namespace_reaches(sqlite3 *db, const char *ns, const char *cluster, bool *out)
{
    struct fleet *f = NULL;
    int r;
    *out = false;
    if ((r = fleet_acquire(&f, db)) < 0)
        return r;
    size_t idx = fleet_index_of_name(f, cluster);
    if (idx != FLEET_NONE)
        r = ns_selects(f, ns, idx, out);
    fleet_release(f);
    return r;
}

int auth_reaches_cluster(sqlite3 *db, const struct caller *peer, const char *cluster, bool *out)
{
    sqlite3_stmt *st = NULL;
    struct fleet *f = NULL;
    char id[200];
    int r = 0, rc;
    *out = true;
    if (peer->role != ROLE_APPTEAM)
        return 0;
    *out = false;
    if (auth_identity(id, sizeof(id), peer) < 0)
        return 0;
    if ((r = fleet_acquire(&f, db)) < 0)
        return r;
    size_t idx = fleet_index_of_name(f, cluster);
    if (idx == FLEET_NONE)
        goto out;                   /* unknown: the caller answers 404 or 403 */
    if (sqlite3_prepare_v2(db, "SELECT n.name FROM namespaces n, json_each(n.owners) o"
                           " WHERE o.value = ?", -1, &st, NULL) != SQLITE_OK) {
        r = -RE_EDB;
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while (!*out && (rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((r = ns_selects(f, (const char *)sqlite3_column_text(st, 0), idx, out)) < 0)
            break;
out:
    sqlite3_finalize(st);
    fleet_release(f);
    return r;
}

static const struct {
    int role;
    const char *name;
} role_names[] = {
    { ROLE_ADMIN, "admin" },
    { ROLE_OPERATOR, "operator" },
    { ROLE_APPTEAM, "appteam" },
    { ROLE_TECHNICIAN, "technician" },
    { ROLE_AGENT, "agent" },
    { ROLE_VIEWER, "viewer" },
};

const char *role_name(int role)
{
    for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
        if (role_names[i].role == role)
            return role_names[i].name;
    return "none";
}

int role_parse(const char *s)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
        if (strcmp(role_names[i].name, s) == 0)
            return role_names[i].role;
    if (strcmp(s, "app-team") == 0 || strcmp(s, "app_team") == 0)
        return ROLE_APPTEAM;
    return 0;
}
