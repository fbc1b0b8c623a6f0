/* inventory_plan.c - evaluates every namespace, application version and
 * policy over the fleet once, and answers per cluster (inventory_plan.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"
#include "error.h"
#include "expr.h"
#include "inventory_int.h"
#include "config_values.h"
#include "plan.h"
#include "validate.h"

static int eval_text(struct bitset **out, struct fleet *f, const char *text)
{
    int r = fleet_select(out, f, text ? text : "", text ? strlen(text) : 0, NULL);
    if (r == -RE_EPARSE || r == -RE_EDEPTH || r == -RE_ETOOBIG) {
        /* stored expressions were valid when written; select nothing otherwise */
        return bitset_new(out, fleet_size(f));
    }
    return r;
}

/* Reads every row of an entity as API JSON, in id order. */
static int read_all(struct inv_req *q, const struct inv_entity *e, cJSON **out)
{
    char sql[96];
    sqlite3_stmt *st = NULL;
    cJSON *arr = cJSON_CreateArray();
    int r = 0, rc;
    if (!arr)
        return -RE_ENOMEM;
    snprintf(sql, sizeof(sql), "SELECT id FROM %s ORDER BY id", e->table);
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        r = -RE_EDB;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *obj = NULL;
        if ((r = inv_read(q, e, sqlite3_column_int64(st, 0), &obj)) < 0)
            goto out;
        cJSON_AddItemToArray(arr, obj);
    }
    if (rc != SQLITE_DONE)
        r = -RE_EDB;
out:
    sqlite3_finalize(st);
    if (r < 0)
        cJSON_Delete(arr);
    else
        *out = arr;
    return r;
}

static int cmp_version_desc(const void *a, const void *b)
{
    const struct plan_version *x = a, *y = b;
    return -validate_version_cmp(x->version, y->version);
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

int plan_build(struct plan **out, sqlite3 *db)
{
    struct inv_req q;
    struct plan *p = calloc(1, sizeof(*p));
    cJSON *nss = NULL, *apps = NULL, *pols = NULL, *it;
    int r;
    if (!p)
        return -RE_ENOMEM;
    memset(&q, 0, sizeof(q));
    q.db = db;
    if ((r = fleet_acquire(&p->fleet, db)) < 0 || (r = read_all(&q, &inv_namespace, &nss)) < 0 ||
        (r = read_all(&q, &inv_application, &apps)) < 0 ||
        (r = read_all(&q, &inv_policy, &pols)) < 0 ||
        (r = config_any_scoped(db, &p->config_scoped)) < 0)
        goto out;
    size_t n = fleet_size(p->fleet);
    r = -RE_ENOMEM;
    p->namespaces = calloc((size_t)cJSON_GetArraySize(nss) + 1, sizeof(*p->namespaces));
    p->apps = calloc((size_t)cJSON_GetArraySize(apps) + 1, sizeof(*p->apps));
    p->policies = calloc((size_t)cJSON_GetArraySize(pols) + 1, sizeof(*p->policies));
    if (!p->namespaces || !p->apps || !p->policies)
        goto out;
    while ((it = cJSON_DetachItemFromArray(nss, 0))) {
        struct plan_namespace *ns = &p->namespaces[p->n_namespaces++];
        ns->obj = it;
        ns->name = str_of(it, "name");
        if ((r = eval_text(&ns->sel, p->fleet, str_of(it, "expression"))) < 0)
            goto out;
    }
    while ((it = cJSON_DetachItemFromArray(apps, 0))) {
        struct plan_app *a = &p->apps[p->n_apps++];
        const cJSON *vs = cJSON_GetObjectItem(it, "versions"), *v;
        a->obj = it;
        a->name = str_of(it, "name");
        a->namespace_ = str_of(it, "namespace");
        a->ns = (size_t)-1;
        for (size_t i = 0; i < p->n_namespaces; i++)
            if (strcmp(p->namespaces[i].name, a->namespace_) == 0)
                a->ns = i;
        r = -RE_ENOMEM;
        if (!(a->versions = calloc((size_t)cJSON_GetArraySize(vs) + 1, sizeof(*a->versions))))
            goto out;
        cJSON_ArrayForEach(v, vs) {
            struct plan_version *pv = &a->versions[a->n_versions++];
            pv->obj = v;
            pv->version = str_of(v, "version");
            if ((r = eval_text(&pv->sel, p->fleet, str_of(v, "expression"))) < 0)
                goto out;
            if (a->ns == (size_t)-1)
                bitset_clear(pv->sel);
            else if ((r = bitset_and(pv->sel, p->namespaces[a->ns].sel)) < 0)
                goto out;
        }
        qsort(a->versions, a->n_versions, sizeof(*a->versions), cmp_version_desc);
    }
    while ((it = cJSON_DetachItemFromArray(pols, 0))) {
        struct plan_policy *pol = &p->policies[p->n_policies++];
        const char *expr = str_of(it, "expression");
        const cJSON *list = cJSON_GetObjectItem(it, "namespaces"), *nm;
        pol->obj = it;
        pol->name = str_of(it, "name");
        if ((r = eval_text(&pol->sel, p->fleet, expr)) < 0)
            goto out;
        if (cJSON_GetArraySize(list) > 0) {
            struct bitset *u = NULL;
            if ((r = bitset_new(&u, n)) < 0)
                goto out;
            cJSON_ArrayForEach(nm, list)
                for (size_t i = 0; i < p->n_namespaces; i++)
                    if (cJSON_IsString(nm) && strcmp(p->namespaces[i].name, nm->valuestring) == 0)
                        bitset_or(u, p->namespaces[i].sel);
            if (expr[0])
                bitset_and(pol->sel, u);
            else
                bitset_copy(pol->sel, u);
            bitset_free(u);
        }
    }
    *out = p;
    p = NULL;
    r = 0;
out:
    cJSON_Delete(nss);
    cJSON_Delete(apps);
    cJSON_Delete(pols);
    plan_free(p);
    return r;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_namespaces; i++) {
        bitset_free(p->namespaces[i].sel);
        cJSON_Delete(p->namespaces[i].obj);
    }
    for (size_t i = 0; i < p->n_apps; i++) {
        for (size_t k = 0; k < p->apps[i].n_versions; k++)
            bitset_free(p->apps[i].versions[k].sel);
        free(p->apps[i].versions);
        cJSON_Delete(p->apps[i].obj);
    }
    for (size_t i = 0; i < p->n_policies; i++) {
        bitset_free(p->policies[i].sel);
        cJSON_Delete(p->policies[i].obj);
    }
    free(p->namespaces);
    free(p->apps);
    free(p->policies);
    fleet_release(p->fleet);
    free(p);
}

bool plan_namespace_applies(const struct plan *p, size_t ns, size_t cluster)
{
    return ns < p->n_namespaces && p->namespaces[ns].sel && bitset_test(p->namespaces[ns].sel, cluster);
}

const struct plan_version *plan_app_version(const struct plan *p, size_t app, size_t cluster)
{
    if (app >= p->n_apps)
        return NULL;
    for (size_t k = 0; k < p->apps[app].n_versions; k++)
        if (p->apps[app].versions[k].sel && bitset_test(p->apps[app].versions[k].sel, cluster))
            return &p->apps[app].versions[k];
    return NULL;
}

bool plan_policy_applies(const struct plan *p, size_t policy, size_t cluster)
{
    return policy < p->n_policies && p->policies[policy].sel &&
           bitset_test(p->policies[policy].sel, cluster);
}

int plan_cluster_json(cJSON **out, const struct plan *p, size_t cluster)
{
    cJSON *o = cJSON_CreateObject(), *nss, *apps, *pols;
    const char *name = fleet_cluster_name(p->fleet, cluster);
    if (!o || !name || !cJSON_AddStringToObject(o, "cluster", name) ||
        !(nss = cJSON_AddArrayToObject(o, "namespaces")) ||
        !(apps = cJSON_AddArrayToObject(o, "applications")) ||
        !(pols = cJSON_AddArrayToObject(o, "policies"))) {
        cJSON_Delete(o);
        return name ? -RE_ENOMEM : -RE_ENOENT;
    }
    for (size_t i = 0; i < p->n_namespaces; i++)
        if (plan_namespace_applies(p, i, cluster))
            cJSON_AddItemToArray(nss, cJSON_CreateString(p->namespaces[i].name));
    for (size_t i = 0; i < p->n_apps; i++) {
        const struct plan_version *v = plan_app_version(p, i, cluster);
        cJSON *a;
        if (!v || !(a = cJSON_CreateObject()))
            continue;
        cJSON_AddStringToObject(a, "name", p->apps[i].name);
        cJSON_AddStringToObject(a, "namespace", p->apps[i].namespace_);
        cJSON_AddStringToObject(a, "version", v->version);
        cJSON_AddItemToArray(apps, a);
    }
    for (size_t i = 0; i < p->n_policies; i++)
        if (plan_policy_applies(p, i, cluster))
            cJSON_AddItemToArray(pols, cJSON_CreateString(p->policies[i].name));
    *out = o;
    return 0;
}
