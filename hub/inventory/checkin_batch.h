/* checkin_batch.h - agents' check-in reports written to cluster_status in
 * batches: one SQLite transaction per flush instead of one per check-in.
 *
 * A write transaction per check-in cost the hub about a fifth of its CPU at
 * 1,667 check-ins/s (100,000 agents every 60 s): WAL frames, file locks and a
 * commit each time. A report is observation, not inventory: the agent repeats
 * it every interval, so the batch holds at most CHECKIN_BATCH_DELAY_MS of
 * them in memory. A kill -9 loses at most that much last-seen data; SIGTERM
 * flushes (checkin_batch_stop). Readers of cluster_status call
 * checkin_batch_flush first, so the API never shows older data than it
 * answered to the agent.
 *
 * One batch per process (the hub has one database connection on one loop
 * thread). Without a started batch (unit tests, tools) reports are written
 * at once.
 */
#ifndef HUB_CHECKIN_BATCH_H
#define HUB_CHECKIN_BATCH_H

#include <stdint.h>
#include <sqlite3.h>

struct hub;

#define CHECKIN_BATCH_DELAY_MS  1000              /* a report waits at most this long */
#define CHECKIN_BATCH_ROWS      512               /* flush at once at this many */
#define CHECKIN_BATCH_BYTES     (8u << 20)        /* ... or this much text held */
#define CHECKIN_BATCH_MAX_ROWS  8192              /* refuse (busy) past this while the flush fails */

/* One check-in as cluster_status stores it; strings may be NULL (stored as
 * NULL), node_count < 0 is NULL. Copied by checkin_batch_add. */
struct checkin_row {
    int64_t cluster_id;
    const char *name, *remote_addr;
    int64_t seen;                               /* epoch seconds */
    const char *identity, *k8s_version, *labels, *agent_version, *mode, *host;
    const char *pulled, *applied, *apply_result, *kustomizations;
    long long node_count, interval_s;
};

/* Starts the batch on hub's loop and database. 0 or -RE_ENOMEM. */
int checkin_batch_start(struct hub *hub);
/* Flushes what is held (waiting for locks as any write does) and frees the
 * batch; its timer handle is closed on the loop. NULL-safe, idempotent. */
void checkin_batch_stop(struct hub *hub);

/* Records one check-in: queued when a batch runs, else written at once.
 * 0; -RE_EBUSY when the database stays locked and the batch is full (answer
 * 503 with Retry-After); -RE_EDB, -RE_ENOSPC or -RE_ENOMEM. */
int checkin_batch_add(sqlite3 *db, const struct checkin_row *row);

/* Writes every held report now, in one transaction (for readers: waits at
 * most 200 ms for a lock, and not at all within a second of a failed flush).
 * 0 (also when nothing is held or no batch runs) or the database error; the
 * reports stay held on failure. */
int checkin_batch_flush(void);

#endif
