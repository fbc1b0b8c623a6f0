/* checkin_status.h - what a cluster's agent last reported (the
 * cluster_status table the check-in API and the check-in batch write), read
 * back for the inventory's views of a cluster. */
#ifndef HUB_INVENTORY_CHECKIN_STATUS_H
#define HUB_INVENTORY_CHECKIN_STATUS_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#define CHECKIN_INTERVAL_S    60

/* Adds what the agent of cluster last reported to into:
 *   "status": "online" (seen within 2 intervals), "stale" (within 10),
 *             "offline" (longer, or never: then also "never_seen": true),
 *   "last_seen": ISO time or null, "pulled_revision", "applied_revision",
 *   "apply_result", "reported_labels" (object), "agent_version",
 *   "kubernetes_version", "node_count", "identity".
 * now: epoch seconds (callers pass re_time()). 0, or -RE_EDB/-RE_ENOMEM. */
int checkin_status_json(sqlite3 *db, const char *cluster, cJSON *into);
/* Same with an explicit clock, for tests. */
int checkin_status_json_at(sqlite3 *db, const char *cluster, cJSON *into, int64_t now);

/* "online" / "stale" / "offline" for a last check-in at last_seen (0: never)
 * by an agent checking in every interval_s seconds. */
const char *checkin_state(int64_t last_seen, int64_t interval_s, int64_t now);

#endif
