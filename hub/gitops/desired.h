/* desired.h - one cluster's desired state from the inventory: the plan (which
 * namespaces, application versions and policies apply), the cluster's own
 * metadata and its effective configuration, gathered into the plain struct
 * render_cluster that render.c turns into files. */
#ifndef HUB_DESIRED_H
#define HUB_DESIRED_H

#include <stddef.h>
#include <sqlite3.h>
#include "buf.h"
#include "inventory/plan.h"
#include "render.h"

struct desired;

/*
 * Gathers cluster idx of plan p (metadata and effective configuration are
 * read from db, which may be another connection than the one the plan was
 * built on). The result points into p: free it before the plan. 0; -RE_ENOENT (no such cluster),
 * -RE_EDB, -RE_ENOMEM.
 */
int desired_build(struct desired **out, const struct plan *p, sqlite3 *db, size_t idx);
const struct render_cluster *desired_cluster(const struct desired *d);
void desired_free(struct desired *d);                   /* NULL-safe */

/* desired_build + render_cluster: the finished tree of cluster idx. err gets
 * render's message when the inventory holds something unusable. */
int desired_render(struct render_tree **out, const struct plan *p, sqlite3 *db, size_t idx,
                   struct re_buf *err);

#endif
