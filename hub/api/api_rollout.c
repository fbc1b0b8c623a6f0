/* api_rollout.c - GET /api/v1/applications/{name}/status: how many clusters
 * are assigned each version of an application, and which of them lag (their
 * agent has not applied the branch head the hub wants them on). */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "api_checkin.h"
#include "error.h"
#include "gitops/gitops.h"
#include "http/http.h"
#include "http/routes.h"
#include "hub.h"
#include "inventory/auth.h"
#include "inventory/checkin_batch.h"
#include "inventory/plan.h"
#include "oid.h"

#define ROLLOUT_MAX_NAMES 100    /* lagging names listed per version */

struct version_tally {
    cJSON *obj;
    cJSON *lagging;
    long assigned, current;
};

/* The revision each cluster's agent last applied, by fleet index (NULL where
 * it never reported one): an array, so that the tally below stays linear in
 * the fleet (a cJSON object keyed by name made every lookup a scan). */
static int load_applied(sqlite3 *db, const struct fleet *f, char (**out)[RE_OID_BUF])
{
    sqlite3_stmt *st = NULL;
    char (*applied)[RE_OID_BUF] = calloc(fleet_size(f) ? fleet_size(f) : 1, sizeof(*applied));
    int rc;
    if (!applied)
        return -RE_ENOMEM;
    checkin_batch_flush();          /* on failure: the data as of the last flush */
    if (sqlite3_prepare_v2(db, "SELECT cluster_id, applied_revision FROM cluster_status"
                           " WHERE applied_revision IS NOT NULL", -1, &st, NULL) != SQLITE_OK) {
        free(applied);
        return -RE_EDB;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t i = fleet_index_of_id(f, sqlite3_column_int64(st, 0));
        const char *rev = (const char *)sqlite3_column_text(st, 1);
        if (i != FLEET_NONE && rev)
            re_snprintf(applied[i], sizeof(applied[i]), "%s", rev);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(applied);
        return -RE_EDB;
    }
    *out = applied;
    return 0;
}

static int app_status(struct http_exchange *x)
{
    struct plan *p = NULL;
    cJSON *ans = NULL, *versions;
    char (*applied)[RE_OID_BUF] = NULL;
    struct version_tally *t = NULL;
    char name[128];
    size_t app = (size_t)-1;
    long unassigned = 0;
    int r;

    if (re_snprintf(name, sizeof(name), "%.*s", (int)x->params[0].len, x->params[0].ptr) < 0)
        return http_response_error(&x->res, 404, "not_found", "name", "no such application"), 0;
    if ((r = plan_build(&p, x->hub->db)) < 0 ||
        (r = load_applied(x->hub->db, p->fleet, &applied)) < 0) {
        http_response_from_err(&x->res, r, NULL, "cannot read the inventory");
        goto out;
    }
    for (size_t i = 0; i < p->n_apps; i++)
        if (strcmp(p->apps[i].name, name) == 0)
            app = i;
    if (app == (size_t)-1) {
        http_response_error(&x->res, 404, "not_found", "name", "no application '%s'", name);
        goto out;
    }
    const struct plan_app *a = &p->apps[app];
    if (!(ans = cJSON_CreateObject()) || !(versions = cJSON_AddArrayToObject(ans, "versions")) ||
        !(t = calloc(a->n_versions ? a->n_versions : 1, sizeof(*t)))) {
        r = -RE_ENOMEM;
        http_response_from_err(&x->res, r, NULL, NULL);
        goto out;
    }
    cJSON_AddStringToObject(ans, "application", a->name);
    cJSON_AddStringToObject(ans, "namespace", a->namespace_);
    for (size_t v = 0; v < a->n_versions; v++) {
        t[v].obj = cJSON_CreateObject();
        cJSON_AddItemToArray(versions, t[v].obj);
        cJSON_AddStringToObject(t[v].obj, "version", a->versions[v].version);
        t[v].lagging = cJSON_CreateArray();
    }
    /* A cluster lags when what its agent applied is not its branch head. */
    for (size_t c = 0; c < fleet_size(p->fleet); c++) {
        const struct plan_version *pv = plan_app_version(p, app, c);
        const char *cname = fleet_cluster_name(p->fleet, c);
        char want[RE_OID_BUF];
        if (!pv) {
            unassigned++;
            continue;
        }
        struct version_tally *vt = &t[pv - a->versions];
        vt->assigned++;
        if (applied[c][0] && gitops_desired_revision(x->hub, cname, want) == 0 &&
            strcmp(applied[c], want) == 0)
            vt->current++;
        else if (cJSON_GetArraySize(vt->lagging) < ROLLOUT_MAX_NAMES)
            cJSON_AddItemToArray(vt->lagging, cJSON_CreateString(cname));
    }
    for (size_t v = 0; v < a->n_versions; v++) {
        cJSON_AddNumberToObject(t[v].obj, "clusters", (double)t[v].assigned);
        cJSON_AddNumberToObject(t[v].obj, "current", (double)t[v].current);
        cJSON_AddNumberToObject(t[v].obj, "lagging_count", (double)(t[v].assigned - t[v].current));
        cJSON_AddItemToObject(t[v].obj, "lagging", t[v].lagging);
        t[v].lagging = NULL;
    }
    cJSON_AddNumberToObject(ans, "unassigned", (double)unassigned);
    http_response_json(&x->res, 200, ans);
out:
    if (t)
        for (size_t v = 0; v < a->n_versions; v++)
            cJSON_Delete(t[v].lagging);
    free(t);
    cJSON_Delete(ans);
    free(applied);
    plan_free(p);
    return 0;
}

const struct route rollout_routes[] = {
    { "GET", "/api/v1/applications/{name}/status", app_status,
      ROLE_APPTEAM | ROLE_READERS | ROLE_TECHNICIAN },
    { NULL, NULL, NULL, 0 },
};
