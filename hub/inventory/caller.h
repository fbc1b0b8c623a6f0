/* caller.h - who is calling and with which role: the identity a verified
 * client certificate names (filled by http/server.c, resolved by auth.c).
 * The domain layers decide on it without knowing about HTTP. */
#ifndef HUB_INVENTORY_CALLER_H
#define HUB_INVENTORY_CALLER_H

#include <stdbool.h>
#include <stdint.h>

/* Roles come from the client certificate's identity (auth.c). */
enum hub_role {
    ROLE_NONE = 0,
    ROLE_AGENT = 1 << 0,        /* a cluster's agent: its own cluster only */
    ROLE_TECHNICIAN = 1 << 1,   /* create stores and enrollment codes */
    ROLE_APPTEAM = 1 << 2,      /* its own namespaces and applications */
    ROLE_OPERATOR = 1 << 3,     /* inventory */
    ROLE_ADMIN = 1 << 4,        /* everything */
    ROLE_VIEWER = 1 << 5,       /* reads inventory, status, metrics, audit; writes nothing */
};
#define ROLE_PUBLIC   0u        /* no certificate needed (healthz, readyz, enroll) */
#define ROLE_ANY_USER (ROLE_TECHNICIAN | ROLE_APPTEAM | ROLE_OPERATOR | ROLE_ADMIN | ROLE_VIEWER)
#define ROLE_READERS  (ROLE_ADMIN | ROLE_OPERATOR | ROLE_VIEWER)  /* read all of the fleet */
#define ROLE_ALL      (ROLE_AGENT | ROLE_ANY_USER)

struct caller {
    bool authenticated;          /* a valid chain to the hub CA was presented */
    char kind[16];               /* "cluster" or "user" (from the URI SAN) */
    char name[128];              /* cluster or user name (URI SAN last segment) */
    char serial[64];             /* certificate serial, lowercase hex */
    char remote_addr[64];        /* "127.0.0.1" */
    int role;                    /* enum hub_role, resolved by auth.c per request */
    int64_t id;                  /* the user's or cluster's row id, set with role */
};

const char *role_name(int role);
int role_parse(const char *s);   /* "admin" -> ROLE_ADMIN; 0 if unknown */

#endif
