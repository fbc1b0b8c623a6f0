/* routes.h - the hub's route table: method + path pattern -> handler + roles. */
#ifndef HUB_ROUTES_H
#define HUB_ROUTES_H

#include "http.h"
#include "inventory/caller.h"

struct route {
    const char *method;         /* "GET", ... */
    const char *pattern;        /* "/api/v1/clusters/{name}": {x} matches one segment */
    http_handler fn;
    unsigned roles;             /* bitmask of enum hub_role; ROLE_PUBLIC = no cert */
};

/* Each API module exports a table ending with { NULL }; hub/routes.c lists
 * them and main hands the list to server_start (http/ never names api/). */
extern const struct route *const hub_route_tables[];

/* Finds the route for method + path in a NULL-terminated list of tables.
 * Returns it and fills x->params, or NULL with *path_matched set when only
 * the method differed (405). */
const struct route *routes_match(const struct route *const *tables, struct http_exchange *x,
                                 int *path_matched);

#endif
