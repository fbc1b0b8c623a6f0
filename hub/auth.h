/* auth.h - who a client certificate is and what it may do. */
#ifndef HUB_AUTH_H
#define HUB_AUTH_H

#include "http.h"

/* Resolves peer->role from the database for an authenticated peer: users by
 * name (role column), clusters as ROLE_AGENT. The certificate serial must be
 * the identity's current one and the identity not revoked: otherwise
 * -RE_EDENIED (revoked or replaced) or -RE_EUNAUTH (unknown identity). */
int auth_resolve(struct hub *hub, struct http_peer *peer);

#endif
