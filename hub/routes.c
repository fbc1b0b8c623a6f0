/* routes.c - the list of every module's route table, in match order. */
#include <stddef.h>
#include "routes.h"

extern const struct route server_routes[];
extern const struct route git_routes[];          /* gitserve.c */

const struct route *const hub_route_tables[] = {
    server_routes,
    git_routes,
    NULL,
};
