/* test_db.c - the hub database helpers: the prepared statement cache. */
#include <stdio.h>
#include <string.h>
#include "error.h"
#include "inventory/db.h"
#include "testlib.h"

static const char sel_sql[] = "SELECT name FROM users WHERE name = ?";
static const char ins_sql[] = "INSERT INTO users (name, role, created_at, created_by, updated_at,"
                              " updated_by) VALUES (?, 'admin', 0, 't', 0, 't')";

static sqlite3 *open_db(const char *file)
{
    char path[512];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), file);
    CHECK_EQ_INT(db_open(&db, path), 0);
    return db;
}

static void test_cache_reuse(void)
{
    sqlite3 *db = open_db("a.db"), *db2 = open_db("b.db");
    sqlite3_stmt *a = NULL, *b = NULL, *c = NULL, *d = NULL;

    CHECK_EQ_INT(db_prepare_cached(db, ins_sql, &a), 0);
    sqlite3_bind_text(a, 1, "alice", -1, SQLITE_STATIC);
    CHECK_EQ_INT(sqlite3_step(a), SQLITE_DONE);
    db_release(a);

    /* the same statement comes back, reset and without bindings */
    CHECK_EQ_INT(db_prepare_cached(db, sel_sql, &b), 0);
    sqlite3_bind_text(b, 1, "alice", -1, SQLITE_STATIC);
    CHECK_EQ_INT(sqlite3_step(b), SQLITE_ROW);
    /* nested use of the same SQL gets a statement of its own */
    CHECK_EQ_INT(db_prepare_cached(db, sel_sql, &c), 0);
    CHECK(c != b);
    sqlite3_bind_text(c, 1, "alice", -1, SQLITE_STATIC);
    CHECK_EQ_INT(sqlite3_step(c), SQLITE_ROW);
    CHECK_EQ_STR((const char *)sqlite3_column_text(b, 0), "alice");
    db_release(c);
    db_release(b);
    CHECK(!sqlite3_stmt_busy(b));   /* its read transaction ended */
    CHECK_EQ_INT(db_prepare_cached(db, sel_sql, &d), 0);
    CHECK(d == b);
    CHECK_EQ_INT(sqlite3_step(d), SQLITE_DONE);   /* NULL parameter: bindings cleared */
    db_release(d);

    /* another connection has its own statements */
    CHECK_EQ_INT(db_prepare_cached(db2, sel_sql, &c), 0);
    CHECK(c != b);
    CHECK_EQ_INT(sqlite3_db_handle(c) == db2, 1);
    db_release(c);

    /* a write after a released read is committed at once (autocommit) */
    CHECK_EQ_INT(db_prepare_cached(db, ins_sql, &a), 0);
    sqlite3_bind_text(a, 1, "bob", -1, SQLITE_STATIC);
    CHECK_EQ_INT(sqlite3_step(a), SQLITE_DONE);
    db_release(a);
    CHECK_EQ_INT(sqlite3_get_autocommit(db), 1);

    /* bad SQL fails and caches nothing */
    CHECK_EQ_INT(db_prepare_cached(db, "SELECT nope FROM nowhere", &a), -RE_EDB);
    CHECK(a == NULL);
    db_release(NULL);

    /* closing finalizes the cached statements (sqlite3_close would refuse) */
    CHECK_EQ_INT(sqlite3_close(db2) == SQLITE_BUSY, 1);
    db_close(db2);
    db_close(db);
    /* a new connection (maybe at the same address) starts with an empty cache */
    db = open_db("a.db");
    CHECK_EQ_INT(db_prepare_cached(db, sel_sql, &b), 0);
    sqlite3_bind_text(b, 1, "bob", -1, SQLITE_STATIC);
    CHECK_EQ_INT(sqlite3_step(b), SQLITE_ROW);
    db_release(b);
    db_close(db);
}

/* More statements than the cache holds still work (private ones). */
static void test_cache_full(void)
{
    static char sql[40][64];
    sqlite3_stmt *st[40];
    sqlite3 *db = open_db("c.db");
    for (int i = 0; i < 40; i++) {
        snprintf(sql[i], sizeof(sql[i]), "SELECT %d", i);
        CHECK_EQ_INT(db_prepare_cached(db, sql[i], &st[i]), 0);
    }
    for (int i = 0; i < 40; i++) {
        CHECK_EQ_INT(sqlite3_step(st[i]), SQLITE_ROW);
        CHECK_EQ_INT(sqlite3_column_int(st[i], 0), i);
        db_release(st[i]);
    }
    db_close(db);
}

TEST_MAIN(T(test_cache_reuse), T(test_cache_full))
