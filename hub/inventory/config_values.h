/* config_values.h - a cluster's effective configuration:
 *   {"cluster": name,
 *    "values": {"key": {"value": "v", "source": "/stores/central" or "cluster"}},
 *    "conflicts": [{"key": k, "depth": 2,
 *                   "candidates": [{"source": "/rings/beta", "value": "a"}, ...]}]}
 * Merge: over every group the cluster is in and all their ancestors, from the
 * root down (depth 1, 2, ...), the deepest group setting a key wins; the
 * cluster's own value wins over all. When groups of that deepest depth
 * disagree, the key is not resolved: it is left out of "values" and listed
 * under "conflicts" (a deeper group or the cluster setting it resolves it).
 */
#ifndef HUB_INVENTORY_CONFIG_VALUES_H
#define HUB_INVENTORY_CONFIG_VALUES_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

/* The effective configuration of cluster id, as above. 0, -RE_ENOENT,
 * -RE_EDB or -RE_ENOMEM; *out is a new object on success. */
int config_effective(sqlite3 *db, int64_t cluster_id, cJSON **out);
/* The same for one namespace's ConfigMap: the fleet-wide values, and over
 * them (at any depth) the values scoped to ns, which carry "namespace". */
int config_effective_ns(sqlite3 *db, int64_t cluster_id, const char *ns, cJSON **out);
/* Whether any value is scoped to a namespace (renders skip the per-namespace
 * merge when none is). */
int config_any_scoped(sqlite3 *db, bool *out);

#endif
