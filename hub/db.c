/* db.c - opens the inventory database and applies schema migrations in order. */
#include <stdio.h>
#include "db.h"
#include "error.h"

/* Migrations are applied in order, each once; never edit a released one,
 * append a new one. user_version records how many were applied. */
static const char *const migrations[] = {
    /* 1: users (people and their roles) */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL,"
    "  cert_serial TEXT,"
    "  revoked INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  updated_by TEXT NOT NULL,"
    "  version INTEGER NOT NULL DEFAULT 1);",
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int db_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return 0;
    case SQLITE_BUSY: case SQLITE_LOCKED: return -RE_EBUSY;
    case SQLITE_CONSTRAINT: return -RE_EEXIST;
    case SQLITE_FULL: return -RE_ENOSPC;
    case SQLITE_NOMEM: return -RE_ENOMEM;
    case SQLITE_IOERR: return -RE_EIO;
    default: return -RE_EDB;
    }
}

int db_exec(sqlite3 *db, const char *sql)
{
    return db_err(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

int db_begin(sqlite3 *db) { return db_exec(db, "BEGIN IMMEDIATE"); }
int db_commit(sqlite3 *db) { return db_exec(db, "COMMIT"); }
void db_rollback(sqlite3 *db) { sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); }

int db_schema_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -RE_EDB;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migrate(sqlite3 *db)
{
    int v = db_schema_version(db), r = 0;
    char pragma[64];
    if (v < 0)
        return -RE_EDB;
    if ((size_t)v > N_MIGRATIONS)
        return -RE_EUNSUPP; /* database from a newer hub */
    for (size_t i = (size_t)v; i < N_MIGRATIONS; i++) {
        if ((r = db_begin(db)) < 0)
            return r;
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", i + 1);
        if ((r = db_exec(db, migrations[i])) < 0 || (r = db_exec(db, pragma)) < 0 ||
            (r = db_commit(db)) < 0) {
            db_rollback(db);
            return r;
        }
    }
    return 0;
}

int db_open(sqlite3 **out, const char *path)
{
    sqlite3 *db = NULL;
    int r;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        r = -RE_EDB;
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if ((r = db_exec(db, "PRAGMA journal_mode=WAL")) < 0 ||
        (r = db_exec(db, "PRAGMA synchronous=NORMAL")) < 0 ||
        (r = db_exec(db, "PRAGMA foreign_keys=ON")) < 0 ||
        (r = migrate(db)) < 0)
        goto out;
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    return r;
}

void db_close(sqlite3 *db)
{
    if (db)
        sqlite3_close(db);
}
