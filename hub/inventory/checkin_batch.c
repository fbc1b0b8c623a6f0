/* checkin_batch.c - check-in reports held briefly and written to
 * cluster_status one transaction per batch (see checkin_batch.h for why). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "buf.h"
#include "checkin_batch.h"
#include "db.h"
#include "error.h"
#include "hub.h"
#include "log.h"

/* A reader waits this long for a lock before it reads the older data. */
#define CHECKIN_BATCH_READ_WAIT_MS 200

struct held {
    struct checkin_row row;         /* strings point into text */
    char *text;
    size_t text_len;
};

struct checkin_batch {
    struct hub *hub;
    sqlite3 *db;
    uv_timer_t *timer;              /* freed in its close callback */
    struct held *rows;
    size_t n, cap, bytes;
    uint64_t failed_at;             /* uv_now of the last failed flush, 0: none */
};

/* One per process: the hub has one database connection on one loop. */
static struct checkin_batch *batch;

/* The string fields of a row, for copying them into one allocation. */
static const size_t text_fields[] = {
    offsetof(struct checkin_row, name),         offsetof(struct checkin_row, remote_addr),
    offsetof(struct checkin_row, identity),     offsetof(struct checkin_row, k8s_version),
    offsetof(struct checkin_row, labels),       offsetof(struct checkin_row, agent_version),
    offsetof(struct checkin_row, mode),         offsetof(struct checkin_row, host),
    offsetof(struct checkin_row, pulled),       offsetof(struct checkin_row, applied),
    offsetof(struct checkin_row, apply_result), offsetof(struct checkin_row, kustomizations),
};
#define N_TEXT (sizeof(text_fields) / sizeof(text_fields[0]))

static const char **field(struct checkin_row *r, size_t i)
{
    return (const char **)((char *)r + text_fields[i]);
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* A different cluster identity behind the same certificate (a rebuilt cluster
 * or copied credentials) is worth a log line. */
static void warn_identity_change(sqlite3 *db, const struct checkin_row *r)
{
    static const char sql[] = "SELECT identity FROM cluster_status WHERE cluster_id = ?";
    sqlite3_stmt *st = NULL;
    if (!r->identity || db_prepare_cached(db, sql, &st) < 0)
        return;
    sqlite3_bind_int64(st, 1, r->cluster_id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT &&
        strcmp((const char *)sqlite3_column_text(st, 0), r->identity) != 0)
        log_warn("cluster '%s' reports a new identity '%s' (was '%s'): rebuilt cluster or "
                 "copied credentials?", r->name, r->identity,
                 (const char *)sqlite3_column_text(st, 0));
    db_release(st);
}

static int write_row(sqlite3 *db, const struct checkin_row *r)
{
    static const char sql[] =
        "INSERT INTO cluster_status (cluster_id, name, first_seen, last_seen, remote_addr,"
        " identity, k8s_version, node_count, reported_labels, agent_version, mode, host,"
        " pulled_revision, applied_revision, apply_result, kustomizations, interval_s,"
        " checkins) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
        " ?15, ?16, 1)"
        " ON CONFLICT(cluster_id) DO UPDATE SET name = excluded.name,"
        " last_seen = excluded.last_seen, remote_addr = excluded.remote_addr,"
        " identity = excluded.identity, k8s_version = excluded.k8s_version,"
        " node_count = excluded.node_count, reported_labels = excluded.reported_labels,"
        " agent_version = excluded.agent_version, mode = excluded.mode, host = excluded.host,"
        " pulled_revision = excluded.pulled_revision,"
        " applied_revision = excluded.applied_revision,"
        " apply_result = excluded.apply_result, kustomizations = excluded.kustomizations,"
        " interval_s = excluded.interval_s, checkins = checkins + 1";
    sqlite3_stmt *st = NULL;
    int rc;
    warn_identity_change(db, r);
    if (db_prepare_cached(db, sql, &st) < 0)
        return -RE_EDB;
    sqlite3_bind_int64(st, 1, r->cluster_id);
    sqlite3_bind_text(st, 2, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->seen);
    sqlite3_bind_text(st, 4, r->remote_addr ? r->remote_addr : "", -1, SQLITE_STATIC);
    bind_opt_text(st, 5, r->identity);
    bind_opt_text(st, 6, r->k8s_version);
    if (r->node_count >= 0)
        sqlite3_bind_int64(st, 7, r->node_count);
    else
        sqlite3_bind_null(st, 7);
    bind_opt_text(st, 8, r->labels);
    bind_opt_text(st, 9, r->agent_version);
    bind_opt_text(st, 10, r->mode);
    bind_opt_text(st, 11, r->host);
    bind_opt_text(st, 12, r->pulled);
    bind_opt_text(st, 13, r->applied);
    bind_opt_text(st, 14, r->apply_result);
    bind_opt_text(st, 15, r->kustomizations);
    sqlite3_bind_int64(st, 16, r->interval_s);
    rc = db_err(sqlite3_step(st));
    db_release(st);
    return rc;
}

/* Copies row's strings into one allocation. */
static int hold(struct held *h, const struct checkin_row *row)
{
    size_t len[N_TEXT], total = 0;
    h->row = *row;
    for (size_t i = 0; i < N_TEXT; i++) {
        const char *s = *field(&h->row, i);
        total += (len[i] = s ? strlen(s) + 1 : 0);
    }
    if (!(h->text = malloc(total ? total : 1)))
        return -RE_ENOMEM;
    char *p = h->text;
    for (size_t i = 0; i < N_TEXT; i++) {
        const char **f = field(&h->row, i);
        if (*f) {
            memcpy(p, *f, len[i]);
            *f = p;
            p += len[i];
        }
    }
    h->text_len = total;
    return 0;
}

static void drop_all(struct checkin_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->rows[i].text);
    b->n = 0;
    b->bytes = 0;
}

/* Writes the held rows in one transaction; busy_ms bounds the wait for a
 * lock held by another process (the timer does not stall the loop long). */
static int flush(struct checkin_batch *b, int busy_ms)
{
    int r;
    if (b->n == 0)
        return 0;
    sqlite3_busy_timeout(b->db, busy_ms);
    r = db_begin(b->db);
    for (size_t i = 0; r == 0 && i < b->n; i++) {
        r = write_row(b->db, &b->rows[i].row);
        if (r == -RE_EEXIST) {
            /* the cluster was deleted since (foreign key): nothing to record */
            log_info("check-in of deleted cluster '%s' dropped", b->rows[i].row.name);
            r = 0;
        }
    }
    if (r == 0)
        r = db_commit(b->db);
    sqlite3_busy_timeout(b->db, DB_BUSY_TIMEOUT_MS);
    if (r < 0) {
        db_rollback(b->db);
        b->failed_at = uv_now(b->hub->loop);
        log_warn("cannot record %zu check-ins yet (kept, retrying): %s", b->n, re_strerror(r));
        return r;
    }
    b->failed_at = 0;
    drop_all(b);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    struct checkin_batch *b = t->data;
    flush(b, 0);
    if (b->n)
        uv_timer_start(b->timer, on_timer, CHECKIN_BATCH_DELAY_MS, 0);
}

int checkin_batch_start(struct hub *hub)
{
    struct checkin_batch *b;
    if (batch)
        return 0;
    if (!(b = calloc(1, sizeof(*b))) || !(b->timer = malloc(sizeof(*b->timer)))) {
        free(b);
        return -RE_ENOMEM;
    }
    b->hub = hub;
    b->db = hub->db;
    uv_timer_init(hub->loop, b->timer);
    b->timer->data = b;
    batch = b;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

void checkin_batch_stop(struct hub *hub)
{
    struct checkin_batch *b = batch;
    (void)hub;
    if (!b)
        return;
    if (flush(b, DB_BUSY_TIMEOUT_MS) < 0)
        log_err("%zu check-in reports could not be recorded at shutdown", b->n);
    drop_all(b);
    uv_close((uv_handle_t *)b->timer, on_timer_closed);
    free(b->rows);
    free(b);
    batch = NULL;
}

int checkin_batch_add(sqlite3 *db, const struct checkin_row *row)
{
    struct checkin_batch *b = batch;
    int r;
    if (!b || b->db != db) {
        if ((r = db_begin(db)) < 0)
            return r;
        if ((r = write_row(db, row)) < 0) {
            db_rollback(db);
            return r;
        }
        return db_commit(db);
    }
    if (b->n >= CHECKIN_BATCH_ROWS || b->bytes >= CHECKIN_BATCH_BYTES) {
        /* Full: write now; while the database stays locked keep taking
         * reports up to the hard cap, then ask agents to come back later.
         * Never wait for the lock here: that would stall the event loop (and
         * every other request) for each report past the cap; the timer keeps
         * retrying. */
        r = flush(b, 0);
        if (r < 0 && (b->n >= CHECKIN_BATCH_MAX_ROWS || b->bytes >= 4 * CHECKIN_BATCH_BYTES))
            return r;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        struct held *v = realloc(b->rows, cap * sizeof(*v));
        if (!v)
            return -RE_ENOMEM;
        b->rows = v;
        b->cap = cap;
    }
    if ((r = hold(&b->rows[b->n], row)) < 0)
        return r;
    b->bytes += b->rows[b->n].text_len;
    if (b->n++ == 0)
        uv_timer_start(b->timer, on_timer, CHECKIN_BATCH_DELAY_MS, 0);
    return 0;
}

int checkin_batch_flush(void)
{
    struct checkin_batch *b = batch;
    if (!b || b->n == 0)
        return 0;
    /* While the database stays locked the timer retries; a listing that reads
     * 500 clusters' status must not wait on the lock once per cluster. */
    if (b->failed_at && uv_now(b->hub->loop) - b->failed_at < CHECKIN_BATCH_DELAY_MS)
        return -RE_EBUSY;
    return flush(b, CHECKIN_BATCH_READ_WAIT_MS);
}
