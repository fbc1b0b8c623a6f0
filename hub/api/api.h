/* api.h - the route table each api/ module exports (hub/routes.c lists them
 * in match order; tests and fuzzers pick their own). */
#ifndef HUB_API_API_H
#define HUB_API_API_H

#include "http/routes.h"

extern const struct route server_routes[];       /* http/server.c: healthz, readyz, metrics */
extern const struct route git_routes[];          /* api_git.c */
extern const struct route inventory_routes[];    /* api_inventory.c */
extern const struct route config_routes[];       /* api_config.c */
extern const struct route import_routes[];       /* api_import.c */
extern const struct route audit_routes[];        /* api_audit.c */
extern const struct route plan_routes[];         /* api_plan.c */
extern const struct route enroll_routes[];       /* api_enroll.c */
extern const struct route checkin_routes[];      /* api_checkin.c */
extern const struct route gitops_routes[];       /* api_gitops.c */
extern const struct route rollout_routes[];      /* api_rollout.c */

#endif
