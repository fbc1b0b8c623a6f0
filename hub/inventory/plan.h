/*
 * inventory_plan.h - what applies where: every namespace, application version
 * and policy expression evaluated once over the fleet index, so the GitOps
 * writer can ask, for each cluster index, which namespaces, applications (at
 * which version) and policies it gets.
 *
 * Rules:
 *  - a namespace applies to the clusters its expression selects;
 *  - an application applies to a cluster only where its namespace applies,
 *    at the highest version (validate_version_cmp order) whose expression
 *    selects the cluster; none selects it -> the application is absent;
 *  - a policy applies to the clusters its expression selects; with a
 *    namespaces list, to the clusters where any of those namespaces applies
 *    (both given: both must hold); neither -> nowhere.
 *
 * A plan is an immutable snapshot (it holds the fleet snapshot it was built
 * on): build it on the database's thread, then read it from any thread.
 *
 *   GET /api/v1/clusters/{name}/assignments -> {"cluster": name,
 *     "namespaces": [name...], "applications": [{"name", "namespace",
 *     "version"}...], "policies": [name...]}
 *   (admin, operator, app team; an agent for its own cluster)
 */
#ifndef HUB_INVENTORY_PLAN_H
#define HUB_INVENTORY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include "bitset.h"
#include "fleet.h"

struct plan_namespace {
    const char *name;
    cJSON *obj;                     /* the namespace as the API shows it */
    struct bitset *sel;
};

struct plan_version {
    const char *version;
    const cJSON *obj;               /* {"version", "ref", "image_tag", "expression"} */
    struct bitset *sel;             /* already restricted to the namespace's clusters */
};

struct plan_app {
    const char *name;
    const char *namespace_;
    size_t ns;                      /* index into plan.namespaces, or (size_t)-1 */
    cJSON *obj;
    struct plan_version *versions;  /* highest first */
    size_t n_versions;
};

struct plan_policy {
    const char *name;
    cJSON *obj;
    struct bitset *sel;
};

struct plan {
    struct fleet *fleet;            /* cluster index <-> id/name */
    struct plan_namespace *namespaces;
    size_t n_namespaces;
    struct plan_app *apps;
    size_t n_apps;
    struct plan_policy *policies;
    size_t n_policies;
    bool config_scoped;             /* some configuration value is scoped to a namespace */
};

/* Builds a plan from db. 0, -RE_EDB or -RE_ENOMEM. */
int plan_build(struct plan **out, sqlite3 *db);
void plan_free(struct plan *p);     /* NULL-safe */

bool plan_namespace_applies(const struct plan *p, size_t ns, size_t cluster);
/* The version of app that cluster gets, or NULL when none. */
const struct plan_version *plan_app_version(const struct plan *p, size_t app, size_t cluster);
bool plan_policy_applies(const struct plan *p, size_t policy, size_t cluster);

/* The assignments of one cluster as JSON (the endpoint's answer). */
int plan_cluster_json(cJSON **out, const struct plan *p, size_t cluster);


#endif
