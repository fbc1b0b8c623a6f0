/* auth.c - maps a verified client certificate to a role, checked on every
 * request (also on TLS-resumed sessions) so revocation takes effect at once. */
#include <string.h>
#include "auth.h"
#include "db.h"
#include "error.h"
#include "hub.h"
#include "routes.h"

static int resolve_user(sqlite3 *db, struct http_peer *peer)
{
    sqlite3_stmt *st = NULL;
    int r = -RE_EUNAUTH;
    if (sqlite3_prepare_v2(db, "SELECT role, cert_serial, revoked FROM users WHERE name = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -RE_EDB;
    sqlite3_bind_text(st, 1, peer->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *role = (const char *)sqlite3_column_text(st, 0);
        const char *serial = (const char *)sqlite3_column_text(st, 1);
        if (sqlite3_column_int(st, 2) || !serial || strcmp(serial, peer->serial) != 0) {
            r = -RE_EDENIED;
        } else {
            peer->role = role_parse(role ? role : "");
            r = peer->role ? 0 : -RE_EDENIED;
        }
    }
    sqlite3_finalize(st);
    return r;
}

int auth_resolve(struct hub *hub, struct http_peer *peer)
{
    peer->role = ROLE_NONE;
    if (!peer->authenticated)
        return -RE_EUNAUTH;
    if (strcmp(peer->kind, "user") == 0)
        return resolve_user(hub->db, peer);
    return -RE_EUNAUTH;
}
