/* routes.h - the hub's route table: method + path pattern -> handler + roles. */
#ifndef HUB_ROUTES_H
#define HUB_ROUTES_H

#include "http.h"

/* Roles come from the client certificate's identity (auth.c). */
enum hub_role {
    ROLE_NONE = 0,
    ROLE_AGENT = 1 << 0,        /* a cluster's agent: its own cluster only */
    ROLE_TECHNICIAN = 1 << 1,   /* create stores and enrollment codes */
    ROLE_APPTEAM = 1 << 2,      /* its own namespaces and applications */
    ROLE_OPERATOR = 1 << 3,     /* inventory */
    ROLE_ADMIN = 1 << 4,        /* everything */
};
#define ROLE_PUBLIC   0u        /* no certificate needed (healthz, readyz, enroll) */
#define ROLE_ANY_USER (ROLE_TECHNICIAN | ROLE_APPTEAM | ROLE_OPERATOR | ROLE_ADMIN)
#define ROLE_ALL      (ROLE_AGENT | ROLE_ANY_USER)

struct route {
    const char *method;         /* "GET", ... */
    const char *pattern;        /* "/api/v1/clusters/{name}": {x} matches one segment */
    http_handler fn;
    unsigned roles;             /* bitmask of enum hub_role; ROLE_PUBLIC = no cert */
};

/* Each API module exports a table ending with { NULL }; routes.c lists them. */
extern const struct route *const hub_route_tables[];

/* Finds the route for method + path. Returns it and fills x->params,
 * or NULL with *path_matched set when only the method differed (405). */
const struct route *routes_match(struct http_exchange *x, int *path_matched);
/* The same over any NULL-terminated list of tables (for tests and fuzzers). */
const struct route *routes__match_in(const struct route *const *tables, struct http_exchange *x,
                                     int *path_matched);
const char *role_name(int role);
int role_parse(const char *s);   /* "admin" -> ROLE_ADMIN; 0 if unknown */

#endif
