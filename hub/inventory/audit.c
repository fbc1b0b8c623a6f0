/* audit.c - writes the audit log (audit.h); api/api_audit.c lists it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit.h"
#include "db.h"
#include "error.h"

int audit_record(sqlite3 *db, int64_t at, const char *actor, const char *action,
                 const char *entity, int64_t entity_id, const char *name,
                 const cJSON *before, const cJSON *after)
{
    sqlite3_stmt *st = NULL;
    char *b = before ? cJSON_PrintUnformatted(before) : NULL;
    char *a = after ? cJSON_PrintUnformatted(after) : NULL;
    int r = -RE_ENOMEM;
    if ((before && !b) || (after && !a))
        goto out;
    r = -RE_EDB;
    if (sqlite3_prepare_v2(db, "INSERT INTO audit (at, actor, action, entity, entity_id, name,"
                           " before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, at);
    sqlite3_bind_text(st, 2, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, entity, -1, SQLITE_STATIC);
    if (entity_id > 0)
        sqlite3_bind_int64(st, 5, entity_id);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_text(st, 6, name ? name : "", -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 7, b, -1, SQLITE_STATIC);
    if (a)
        sqlite3_bind_text(st, 8, a, -1, SQLITE_STATIC);
    r = db_err(sqlite3_step(st));
out:
    sqlite3_finalize(st);
    free(b);
    free(a);
    return r;
}
