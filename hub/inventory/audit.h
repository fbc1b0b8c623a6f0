/* audit.h - the audit log: who changed what, when, with the object before
 * and after. Rows are written in the same transaction as the change
 * (audit_record, declared for the inventory modules in inventory_int.h and
 * here for everyone else), and read with GET /api/v1/audit:
 *   ?entity=cluster&name=store-1&actor=user/admin&action=update
 *   &since=<unix seconds or 2026-01-02T03:04:05Z>&until=...&limit=&next=
 * newest first -> {"items": [{"id", "at", "actor", "action", "entity",
 * "entity_id", "name", "before", "after"}], "next": CURSOR-or-null}. */
#ifndef HUB_AUDIT_H
#define HUB_AUDIT_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

/* Appends one row; before/after may be NULL. 0 or a negative RE code. */
int audit_record(sqlite3 *db, int64_t at, const char *actor, const char *action,
                 const char *entity, int64_t entity_id, const char *name,
                 const cJSON *before, const cJSON *after);


#endif
