/* api_config.h - configuration values on groups and clusters, and a
 * cluster's effective configuration.
 *
 * Groups are addressed by id or by their percent-encoded path as one URL
 * segment (/api/v1/groups/%2Fstores%2Fcentral/config/tax-rate), since paths
 * hold '/'.
 *   GET    /api/v1/groups/{id}/config            -> {"group": path, "values": {k: v}}
 *   PUT    /api/v1/groups/{id}/config/{key}      {"value": "..."} -> 201 new / 200 replaced
 *   DELETE /api/v1/groups/{id}/config/{key}      -> 204, 404 when unset
 *   PUT/DELETE /api/v1/clusters/{name}/config/{key}   the same on a cluster
 *   ?namespace=NS on PUT/DELETE scopes a value to one inventory namespace (its
 *   ConfigMap only); the group GET shows those under "namespaced": {NS: {k: v}}
 *   GET /api/v1/clusters/{name}/config?namespace=NS  that namespace's view: the
 *     fleet-wide values and its own over them (app teams must name one of
 *     their namespaces that reaches the cluster)
 *   GET    /api/v1/clusters/{name}/config        -> the effective configuration:
 *     {"cluster": name,
 *      "values": {"key": {"value": "v", "source": "/stores/central" or "cluster"}},
 *      "conflicts": [{"key": k, "depth": 2,
 *                     "candidates": [{"source": "/rings/beta", "value": "a"}, ...]}]}
 * The merge, and what "values" and "conflicts" hold: inventory/config_values.h.
 * Keys: 1-253 of A-Z a-z 0-9 . _ - ; values: text without control characters
 * other than newline and tab, up to 4096 bytes, stored exactly.
 */
#ifndef HUB_API_CONFIG_H
#define HUB_API_CONFIG_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include "http/routes.h"


#endif
