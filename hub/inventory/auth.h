/* auth.h - who a client certificate is and what it may do. */
#ifndef HUB_AUTH_H
#define HUB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include "buf.h"
#include "caller.h"

struct hub;

/* Resolves peer->role from the database for an authenticated peer: users by
 * name (role column), clusters as ROLE_AGENT. The certificate serial must be
 * the identity's current one and the identity not revoked: otherwise
 * -RE_EDENIED (revoked or replaced) or -RE_EUNAUTH (unknown identity). */
int auth_resolve(struct hub *hub, struct caller *peer);

/* "user/admin" or "cluster/store-1" into out; -RE_ETOOBIG if it does not fit. */
int auth_identity(char *out, size_t size, const struct caller *peer);
/* True when peer's role is one of roles (a bitmask of enum hub_role). */
bool auth_has_role(const struct caller *peer, unsigned roles);
/* True when peer is cluster/<name> (its agent's certificate). */
bool auth_is_cluster(const struct caller *peer, const char *name);
/* The one rule for every endpoint that names a cluster: an agent reaches
 * only its own. True for any other role (their own checks apply). */
bool auth_own_cluster_ok(const struct caller *peer, const char *cluster);
#define AUTH_OWN_CLUSTER_ONLY "an agent may only reach its own cluster"
/* An app team reads a cluster only when one of its namespaces reaches it
 * (selects it); every other role *out = true (their route masks decide).
 * 0 or -RE_EDB/-RE_ENOMEM. */
int auth_reaches_cluster(sqlite3 *db, const struct caller *peer, const char *cluster, bool *out);
#define AUTH_NOT_REACHED "none of your namespaces reaches cluster '%s'"
/* Whether namespace ns selects cluster: 0 or -RE_EDB/-RE_ENOMEM. */
int auth_namespace_reaches(sqlite3 *db, const char *ns, const char *cluster, bool *out);
/* True when the JSON array owners holds peer's identity. */
bool auth_in_owners(const struct caller *peer, const cJSON *owners);
/* *out = whether peer is among the owners of namespace ns (false when the
 * namespace does not exist). 0 or -RE_EDB. */
int auth_owns_namespace(sqlite3 *db, const struct caller *peer, const char *ns,
                        bool *out);

#endif
