/* db.c - opens the inventory database and applies schema migrations in order. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
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

    /* 2: the inventory (groups, clusters, namespaces, applications, policies),
     * configuration values and the audit log. JSON-valued fields are stored
     * as JSON text; metadata is a JSON object of string values. */
#define COMMON_COLS \
    "  description TEXT NOT NULL DEFAULT ''," \
    "  metadata TEXT NOT NULL DEFAULT '{}'," \
    "  created_at INTEGER NOT NULL," \
    "  created_by TEXT NOT NULL," \
    "  updated_at INTEGER NOT NULL," \
    "  updated_by TEXT NOT NULL," \
    "  version INTEGER NOT NULL DEFAULT 1"
    "CREATE TABLE groups ("
    "  id INTEGER PRIMARY KEY,"
    "  path TEXT NOT NULL UNIQUE,"
    "  parent_id INTEGER REFERENCES groups(id),"
    "  depth INTEGER NOT NULL,"
    COMMON_COLS ");"
    "CREATE INDEX groups_parent ON groups(parent_id);"
    "CREATE INDEX groups_created ON groups(created_at, id);"
    "CREATE TABLE clusters ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  timezone TEXT NOT NULL DEFAULT '',"
    "  cert_serial TEXT,"
    "  revoked INTEGER NOT NULL DEFAULT 0,"
    COMMON_COLS ");"
    "CREATE INDEX clusters_created ON clusters(created_at, id);"
    "CREATE TABLE cluster_groups ("
    "  cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,"
    "  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (cluster_id, group_id)) WITHOUT ROWID;"
    "CREATE INDEX cluster_groups_group ON cluster_groups(group_id, cluster_id);"
    "CREATE TABLE namespaces ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  owners TEXT NOT NULL DEFAULT '[]',"
    "  expression TEXT NOT NULL DEFAULT '',"
    "  quota TEXT NOT NULL DEFAULT '{}',"
    "  network TEXT NOT NULL DEFAULT '{}',"
    COMMON_COLS ");"
    "CREATE INDEX namespaces_created ON namespaces(created_at, id);"
    "CREATE TABLE applications ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  namespace TEXT NOT NULL REFERENCES namespaces(name),"
    "  owner TEXT NOT NULL DEFAULT '',"
    "  source TEXT NOT NULL DEFAULT '{}',"
    "  versions TEXT NOT NULL DEFAULT '[]',"
    COMMON_COLS ");"
    "CREATE INDEX applications_namespace ON applications(namespace);"
    "CREATE INDEX applications_created ON applications(created_at, id);"
    "CREATE TABLE policies ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  yaml TEXT NOT NULL DEFAULT '',"
    "  expression TEXT NOT NULL DEFAULT '',"
    "  namespaces TEXT NOT NULL DEFAULT '[]',"
    COMMON_COLS ");"
    "CREATE INDEX policies_created ON policies(created_at, id);"
    "CREATE TABLE group_config ("
    "  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  updated_by TEXT NOT NULL,"
    "  PRIMARY KEY (group_id, key)) WITHOUT ROWID;"
    "CREATE TABLE cluster_config ("
    "  cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  updated_by TEXT NOT NULL,"
    "  PRIMARY KEY (cluster_id, key)) WITHOUT ROWID;"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  entity TEXT NOT NULL,"
    "  entity_id INTEGER,"
    "  name TEXT NOT NULL,"
    "  before TEXT,"
    "  after TEXT);"
    "CREATE INDEX audit_entity ON audit(entity, name);"
    "CREATE INDEX audit_actor ON audit(actor);"
    "CREATE INDEX audit_at ON audit(at);",
#undef COMMON_COLS

    /* 3: enrollment (enroll.c): one-time codes (the secret only as a keyed
     * hash), failed attempts by source address for rate limiting, and the
     * log of every certificate issued through enrollment and renewal. */
    "CREATE TABLE enroll_codes ("
    "  id TEXT PRIMARY KEY,"
    "  secret_hash TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  role TEXT,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  used_at INTEGER,"
    "  used_from TEXT,"
    "  cert_serial TEXT,"
    "  failed_attempts INTEGER NOT NULL DEFAULT 0,"
    "  locked INTEGER NOT NULL DEFAULT 0,"
    "  cancelled_at INTEGER);"
    "CREATE INDEX enroll_codes_identity ON enroll_codes(kind, name);"
    "CREATE TABLE enroll_failures ("
    "  id INTEGER PRIMARY KEY,"
    "  addr TEXT NOT NULL,"
    "  code_id TEXT,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX enroll_failures_addr ON enroll_failures(addr, at);"
    "CREATE INDEX enroll_failures_at ON enroll_failures(at);"
    "CREATE TABLE issued_certs ("
    "  serial TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  identity TEXT NOT NULL,"
    "  how TEXT NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0,"
    "  revoked_at INTEGER);"
    "CREATE INDEX issued_certs_identity ON issued_certs(kind, name);",

    /* 4: what each cluster's agent last reported at check-in (api_checkin.c),
     * kept apart from admin-set metadata: reported labels, identity (the
     * kube-system namespace UID), versions, host facts (JSON), pulled and
     * applied revisions, apply result and Flux Kustomization states (JSON). */
    "CREATE TABLE cluster_status ("
    "  cluster_id INTEGER PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  remote_addr TEXT NOT NULL DEFAULT '',"
    "  identity TEXT,"
    "  k8s_version TEXT,"
    "  node_count INTEGER,"
    "  reported_labels TEXT NOT NULL DEFAULT '{}',"
    "  agent_version TEXT,"
    "  mode TEXT,"
    "  host TEXT NOT NULL DEFAULT '{}',"
    "  pulled_revision TEXT,"
    "  applied_revision TEXT,"
    "  apply_result TEXT,"
    "  kustomizations TEXT,"
    "  interval_s INTEGER NOT NULL DEFAULT 60,"
    "  checkins INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX cluster_status_name ON cluster_status(name);"
    "CREATE INDEX cluster_status_last_seen ON cluster_status(last_seen);",

    /* 5: clusters held at a reverted revision by the GitOps writer (gitops.c):
     * skipped by rendering until unpinned. */
    "CREATE TABLE gitops_pins ("
    "  cluster_id INTEGER PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,"
    "  rev TEXT NOT NULL,"
    "  pinned_at INTEGER NOT NULL,"
    "  pinned_by TEXT NOT NULL);",

    /* 6: configuration values scoped to one namespace (namespace '' applies
     * to every namespace): a namespace's ConfigMap holds the fleet-wide
     * keys and its own, never another namespace's. */
    "CREATE TABLE group_config6 ("
    "  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  namespace TEXT NOT NULL DEFAULT '',"
    "  value TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  updated_by TEXT NOT NULL,"
    "  PRIMARY KEY (group_id, key, namespace)) WITHOUT ROWID;"
    "INSERT INTO group_config6 (group_id, key, namespace, value, updated_at, updated_by)"
    "  SELECT group_id, key, '', value, updated_at, updated_by FROM group_config;"
    "DROP TABLE group_config;"
    "ALTER TABLE group_config6 RENAME TO group_config;"
    "CREATE TABLE cluster_config6 ("
    "  cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  namespace TEXT NOT NULL DEFAULT '',"
    "  value TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  updated_by TEXT NOT NULL,"
    "  PRIMARY KEY (cluster_id, key, namespace)) WITHOUT ROWID;"
    "INSERT INTO cluster_config6 (cluster_id, key, namespace, value, updated_at, updated_by)"
    "  SELECT cluster_id, key, '', value, updated_at, updated_by FROM cluster_config;"
    "DROP TABLE cluster_config;"
    "ALTER TABLE cluster_config6 RENAME TO cluster_config;",
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

#define IDSET_TYPE "re_idset"

static void sql_in_idset(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const struct db_idset *set = sqlite3_value_pointer(argv[0], IDSET_TYPE);
    (void)argc;
    if (!set) {
        sqlite3_result_error(ctx, "re_in_idset: no set bound", -1);
        return;
    }
    sqlite3_result_int(ctx, set->test(set->ctx, sqlite3_value_int64(argv[1])) ? 1 : 0);
}

int db_bind_idset(sqlite3_stmt *st, int index, const struct db_idset *set)
{
    return db_err(sqlite3_bind_pointer(st, index, (void *)set, IDSET_TYPE, NULL));
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
    sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
    if ((r = db_exec(db, "PRAGMA journal_mode=WAL")) < 0 ||
        (r = db_exec(db, "PRAGMA synchronous=NORMAL")) < 0 ||
        (r = db_exec(db, "PRAGMA foreign_keys=ON")) < 0 ||
        (r = migrate(db)) < 0)
        goto out;
    if (sqlite3_create_function(db, "re_in_idset", 2, SQLITE_UTF8, NULL, sql_in_idset,
                                NULL, NULL) != SQLITE_OK) {
        r = -RE_EDB;
        goto out;
    }
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    return r;
}

/* ---- prepared statement cache ----
 * One small process-wide table of (connection, SQL text pointer) -> statement.
 * A statement is lent out by db_prepare_cached and given back by db_release;
 * while lent it is not handed out again (a nested use of the same SQL gets a
 * statement of its own, finalized on release). */

#define DB_CACHE_MAX 32

struct cached_stmt {
    sqlite3 *db;
    const char *sql;
    sqlite3_stmt *st;
    bool lent;
};

static struct cached_stmt cache[DB_CACHE_MAX];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

int db_prepare_cached(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    struct cached_stmt *free_slot = NULL;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < DB_CACHE_MAX; i++) {
        struct cached_stmt *c = &cache[i];
        if (!c->db) {
            if (!free_slot)
                free_slot = c;
            continue;
        }
        if (c->db != db || c->sql != sql || c->lent)
            continue;
        c->lent = true;
        *out = c->st;
        pthread_mutex_unlock(&cache_lock);
        return 0;
    }
    pthread_mutex_unlock(&cache_lock);
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return -RE_EDB;
    pthread_mutex_lock(&cache_lock);
    /* free_slot may have been taken meanwhile by another connection's thread */
    if (free_slot && !free_slot->db) {
        free_slot->db = db;
        free_slot->sql = sql;
        free_slot->st = st;
        free_slot->lent = true;
    }
    pthread_mutex_unlock(&cache_lock);
    *out = st;
    return 0;
}

void db_release(sqlite3_stmt *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < DB_CACHE_MAX; i++) {
        if (cache[i].st == st && cache[i].db) {
            /* ends the statement's read or write; bindings pointed at caller memory */
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            cache[i].lent = false;
            pthread_mutex_unlock(&cache_lock);
            return;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    sqlite3_finalize(st);
}

/* Finalizes db's cached statements (sqlite3_close refuses while any live). */
static void cache_drop(sqlite3 *db)
{
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < DB_CACHE_MAX; i++) {
        if (cache[i].db == db) {
            sqlite3_finalize(cache[i].st);
            memset(&cache[i], 0, sizeof(cache[i]));
        }
    }
    pthread_mutex_unlock(&cache_lock);
}

void db_close(sqlite3 *db)
{
    if (!db)
        return;
    cache_drop(db);
    sqlite3_close(db);
}
