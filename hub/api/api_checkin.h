/* api_checkin.h - agents' check-ins: POST /api/v1/clusters/{name}/checkin
 * (agent role, its own cluster only) records what the agent reports in the
 * cluster_status table (kept apart from admin-set metadata) and answers with
 * the cluster's branch, the revision it should run and the check-in interval.
 *
 *   request (<= 64 KiB; unknown fields are ignored for newer agents):
 *     {"identity": str|null (<= 128), "kubernetes_version": str|null (<= 64),
 *      "node_count": int|null, "labels": {str: str} (<= 64 entries, key <= 253,
 *      value <= 63), "agent_version": str (<= 64), "mode": str (<= 16),
 *      "interval": int seconds (the agent's own), "host": {"hostname",
 *      "boot_id", "disk_free_bytes", "disk_total_bytes"},
 *      "pulled_revision"/"applied_revision": 40 hex|null,
 *      "apply_result": str|null (<= 512),
 *      "kustomizations": [{"name","namespace","ready","revision","message"}]|null (<= 64)}
 *   answer 200:
 *     {"branch": "main", "revision": "<40 hex>"|null, "interval": 60,
 *      "git_url": "https://<Host>/git/<name>.git"}
 */
#ifndef HUB_API_CHECKIN_H
#define HUB_API_CHECKIN_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include "http/routes.h"
#include "inventory/checkin_status.h"

#define CHECKIN_BODY_MAX      (64 * 1024)
#define CHECKIN_MAX_LABELS    64


#endif
