/* routes.c - the list of every module's route table, in match order. */
#include <stddef.h>
#include "http/routes.h"

extern const struct route server_routes[];
extern const struct route git_routes[];          /* gitserve.c */
extern const struct route inventory_routes[];    /* inventory.c */
extern const struct route config_routes[];       /* api_config.c */
extern const struct route import_routes[];       /* api_import.c */
extern const struct route audit_routes[];        /* audit.c */
extern const struct route plan_routes[];         /* inventory_plan.c */
extern const struct route enroll_routes[];       /* api_enroll.c */
extern const struct route checkin_routes[];      /* api_checkin.c */
extern const struct route gitops_routes[];       /* api_gitops.c */
extern const struct route rollout_routes[];      /* api_rollout.c */

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
