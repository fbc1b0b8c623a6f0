/* inventory_int.h - the inventory engine's interface for the modules built on
 * it (entities.c, plan.c, audit.c and the api/ handlers over them): one
 * operation's context and errors, the entity descriptors, reads and writes
 * inside the operation's transaction. The HTTP side of a request (query,
 * body, answer) is api/request.h. */
#ifndef HUB_INVENTORY_INT_H
#define HUB_INVENTORY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include "buf.h"
#include "caller.h"
#include "inventory.h"

/* One operation on the inventory: who, when, and the first error it met.
 * status is the error's HTTP status: the API's error taxonomy, which the
 * engine speaks so that a handler can answer what it recorded. */
struct inv_req {
    struct hub *hub;
    sqlite3 *db;
    const struct caller *peer;
    char actor[160];             /* "user/admin" */
    int64_t now;
    bool dry_run;
    bool in_txn;
    bool live;                   /* a read: add what is not inventory (agent status) */
    bool cascade;                /* a delete may remove what hangs below (groups) */
    int status;                  /* of the error; 0 while none */
    const char *code;
    char field[128];
    char message[512];
};

/* Records an error (the first one wins) and returns -RE_EINVAL. */
int inv_fail(struct inv_req *q, int status, const char *code, const char *field,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* 400 unknown_field "unknown field 'F'; valid fields: a, b" (valid ends
 * with NULL). Returns -RE_EINVAL. */
int inv_fail_unknown(struct inv_req *q, const char *field, const char *const *valid);
/* Records an internal error for a negative RE code (busy -> 503, else 500). */
int inv_fail_err(struct inv_req *q, int err);

/* BEGIN IMMEDIATE. */
int inv_begin(struct inv_req *q);
/* COMMIT, then the committed hook and the fleet index's invalidation. */
int inv_commit(struct inv_req *q, const struct inventory_change *chg);
/* A dry run's end: the preview hook adds to answer (diff_cluster: ?diff, or
 * NULL), then ROLLBACK. */
int inv_preview(struct inv_req *q, const struct inventory_change *chg, const char *diff_cluster,
                cJSON *answer);
/* Rolls back if a transaction is open (after an error). */
void inv_abort(struct inv_req *q);

/* Audit: one row per change, in the caller's transaction. */
int audit_record(sqlite3 *db, int64_t at, const char *actor, const char *action,
                 const char *entity, int64_t entity_id, const char *name,
                 const cJSON *before, const cJSON *after);


/* ---- entities ---- */

enum inv_ftype {
    FT_STRING,                   /* TEXT column, JSON string */
    FT_JSON,                     /* TEXT column holding JSON; any JSON value */
    FT_VIRTUAL,                  /* not a column: the entity's hooks store it */
};
#define F_REQUIRED  1u
#define F_IMMUTABLE 2u

struct inv_entity;
struct inv_binds;

struct inv_field {
    const char *name;            /* JSON member = column name */
    enum inv_ftype type;
    unsigned flags;
    /* Validates v (never JSON null); 0 or inv_fail(). May run SQL (in the
     * request's transaction). */
    int (*check)(struct inv_req *q, const struct inv_field *f, const cJSON *v);
};

enum inv_action { INV_READ, INV_CREATE, INV_UPDATE, INV_DELETE };

struct inv_entity {
    const char *kind;            /* "cluster": audit entity and messages */
    const char *plural;          /* "clusters": URL segment */
    const char *table;
    const char *key;             /* "name" or "path" */
    const struct inv_field *fields;   /* ends with { NULL } */
    const char *const *list_params;   /* extra list query parameters, NULL-terminated */
    unsigned read_roles, create_roles, write_roles;
    /* Key syntax check: 0 or inv_fail(field key). */
    int (*check_key)(struct inv_req *q, const char *key);
    /* Fills defaults into a create body (e.g. owner = caller). */
    int (*complete)(struct inv_req *q, cJSON *body);
    /* Per-object permission beyond the role masks (before/after may be NULL). */
    int (*authorize)(struct inv_req *q, enum inv_action a, const cJSON *before,
                     const cJSON *after);
    /* Before INSERT: extra columns (groups: parent_id, depth). */
    int (*pre_insert)(struct inv_req *q, const cJSON *body, int64_t *parent_id,
                      int64_t *depth);
    /* After INSERT/UPDATE with the request body (virtual fields). */
    int (*post_write)(struct inv_req *q, int64_t id, const cJSON *body, enum inv_action a);
    /* Adds computed members to an object read from the database. */
    int (*decorate)(struct inv_req *q, int64_t id, cJSON *obj);
    /* Before DELETE (refuse with 409, or cascade). */
    int (*pre_delete)(struct inv_req *q, int64_t id, const cJSON *before);
    /* List filters beyond the generic ones: append " AND ..." to sql,
     * binding through inv_sql_bind_*. */
    int (*list_filter)(struct inv_req *q, const cJSON *filters, struct re_buf *sql,
                       struct inv_binds *b);
};

/* Bound values of a dynamically built query. */
#define INV_MAX_BINDS 24
struct inv_bind {
    int type;                    /* 't' text, 'i' int64, 'p' idset */
    const char *s;
    int64_t i;
    const void *p;
};
struct inv_binds {
    struct inv_bind v[INV_MAX_BINDS];
    int n;
    void *owned[4];              /* freed with the binds (idset contexts) */
    int n_owned;
    void (*free_owned)(void *);
    char *copies[INV_MAX_BINDS]; /* texts bound by inv_bind_text_copy */
    int n_copies;
};
int inv_bind_text(struct inv_binds *b, const char *s);
/* Binds a copy of s (for text that does not outlive the call). */
int inv_bind_text_copy(struct inv_binds *b, const char *s);
int inv_bind_int(struct inv_binds *b, int64_t i);
int inv_bind_idset(struct inv_binds *b, const void *set);
/* Binds b's values to st in order; frees what b owns. */
int inv_binds_apply(sqlite3_stmt *st, const struct inv_binds *b);
void inv_binds_release(struct inv_binds *b);

extern const struct inv_entity inv_group, inv_cluster, inv_namespace, inv_application,
    inv_policy;

/* Finds an object by id (all digits) or key; *id set. 404 recorded when absent. */
int inv_lookup(struct inv_req *q, const struct inv_entity *e, const char *ref, int64_t *id);
/* Reads an object as its API JSON (with decorations). */
int inv_read(struct inv_req *q, const struct inv_entity *e, int64_t id, cJSON **out);
/* Creates an object from a validated-or-not body inside the open
 * transaction: validation, permission, insert, audit. *id_out and *after set. */
int inv_create_in_txn(struct inv_req *q, const struct inv_entity *e, cJSON *body,
                      int64_t *id_out, cJSON **after);
/* Updates object id (read as before) from a partial body inside the open
 * transaction: validation, permission, UPDATE, audit; *after set. */
int inv_update_in_txn(struct inv_req *q, const struct inv_entity *e, cJSON *body, int64_t id,
                      const cJSON *before, cJSON **after);
/* Deletes object id (read as before) inside the open transaction:
 * permission, the entity's pre_delete, DELETE, audit. */
int inv_delete_in_txn(struct inv_req *q, const struct inv_entity *e, int64_t id,
                      const cJSON *before);
/* Validates a metadata object (string values); field prefix "metadata". */
int inv_check_metadata(struct inv_req *q, const cJSON *v);
/* Validates an expression string; 400 field with the parser's message. */
int inv_check_expression(struct inv_req *q, const char *field, const cJSON *v);

/* A cluster's timezone: empty or an IANA name ("America/Chicago"), at most
 * 64 bytes; 400 naming "timezone" otherwise. */
int inv_check_timezone(struct inv_req *q, const char *tz);

/* Group id by path (0 when absent). */
int inv_group_id(struct inv_req *q, const char *path, int64_t *id);
/* Checks a cluster's "groups" array (must_exist: each group exists). */
int inv_check_cluster_groups(struct inv_req *q, const cJSON *v, bool must_exist);
/* Replaces a cluster's group memberships. */
int inv_cluster_set_groups(struct inv_req *q, int64_t id, const cJSON *groups);

/* Caller identity helpers (auth.c holds the role logic). */
bool inv_is(struct inv_req *q, unsigned roles);
/* 403 unless the caller may reach cluster (auth_own_cluster_ok). */
int inv_require_own_cluster(struct inv_req *q, const char *cluster);

#endif
