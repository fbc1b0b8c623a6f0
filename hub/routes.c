/* routes.c - the list of every module's route table, in match order. */
#include <stddef.h>
#include "api/api.h"

const struct route *const hub_route_tables[] = {
    server_routes,
    git_routes,
    inventory_routes,
    config_routes,
    import_routes,
    audit_routes,
    plan_routes,
    enroll_routes,
    checkin_routes,
    gitops_routes,
    rollout_routes,
    NULL,
};
