/* db.h - the hub's SQLite inventory: open, migrate, transactions. */
#ifndef HUB_DB_H
#define HUB_DB_H

#include <sqlite3.h>

/* Opens (creating if needed) the database, WAL mode, foreign keys on,
 * busy timeout, and applies every pending schema migration in a transaction. */
int db_open(sqlite3 **out, const char *path);
void db_close(sqlite3 *db);
/* Current schema version (PRAGMA user_version). */
int db_schema_version(sqlite3 *db);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK; -RE_EDB or -RE_EBUSY on failure. */
int db_begin(sqlite3 *db);
int db_commit(sqlite3 *db);
void db_rollback(sqlite3 *db);
/* Runs SQL with no result rows. */
int db_exec(sqlite3 *db, const char *sql);
/* Maps a SQLite result code to a negative RE error. */
int db_err(int sqlite_rc);

#endif
