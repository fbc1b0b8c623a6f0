/* db.h - the hub's SQLite inventory: open, migrate, transactions. */
#ifndef HUB_DB_H
#define HUB_DB_H

#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>

/* Opens (creating if needed) the database, WAL mode, foreign keys on,
 * busy timeout, and applies every pending schema migration in a transaction. */
/* How long a statement waits for a lock another connection holds. */
#define DB_BUSY_TIMEOUT_MS 5000

int db_open(sqlite3 **out, const char *path);
void db_close(sqlite3 *db);
/* Prepared statement cache for hot queries. db_prepare_cached lends the
 * statement for sql (which must be a string with static storage: it is keyed
 * by its address) on db, preparing it the first time; give it back with
 * db_release, which resets it and clears its bindings (ending its implicit
 * transaction) — never sqlite3_finalize it. A lent statement asked for again
 * (nested use) or a full cache yields a private statement that db_release
 * finalizes. db_close finalizes db's cached statements. Thread-safe; each
 * connection stays with one thread at a time as usual. -RE_EDB when sql does
 * not prepare. */
int db_prepare_cached(sqlite3 *db, const char *sql, sqlite3_stmt **out);
void db_release(sqlite3_stmt *st);    /* NULL-safe */
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

/* A set of row ids decided in C (e.g. an expression evaluated over the fleet
 * index) that SQL can test: `WHERE re_in_idset(?1, id)`, with the set bound
 * by db_bind_idset. The set must outlive the statement's use. */
struct db_idset {
    bool (*test)(void *ctx, int64_t id);
    void *ctx;
};
int db_bind_idset(sqlite3_stmt *st, int index, const struct db_idset *set);

#endif
