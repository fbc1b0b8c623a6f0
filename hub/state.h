/* state.h - the hub's state directory: creating it (`init`), issuing
 * certificates from its CA through the admin path, and its single-writer lock. */
#ifndef HUB_STATE_H
#define HUB_STATE_H

#include <sqlite3.h>
#include "buf.h"

struct state_init_opts {
    const char *dir;
    const char *const *sans;       /* extra server certificate names (DNS or IP) */
    size_t n_sans;
    const char *listen;            /* written into hub.conf; NULL: default */
    const char *trust_domain;      /* NULL: "resedge" */
};

/* Creates DIR with database, CA, server and admin certificates, hub.conf and
 * resedgectl.conf. Built in a sibling temporary directory and renamed into
 * place, so a crash leaves either nothing or a whole state directory.
 * -RE_EEXIST (and nothing changed) when DIR exists and is not empty. */
int state_init(const struct state_init_opts *opts, struct re_buf *err);

/* Issues a client certificate for a user or cluster identity from the hub CA
 * with a fresh key (admin path: bulk certificates for tests and simulators)
 * and records its serial as the identity's current one.
 * kind: "user" (role required) or "cluster" (the cluster must exist). */
int state_issue_cert(const char *dir, sqlite3 *db, const char *trust_domain, const char *kind,
                     const char *name, const char *role, unsigned lifetime_days,
                     struct re_buf *cert_out, struct re_buf *key_out);

/* Takes the exclusive lock DIR/hub.lock; -RE_EBUSY when another hub holds it.
 * Returns the fd to keep open for the process's life. */
int state_lock(const char *dir);

#endif
