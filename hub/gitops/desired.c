/* desired.c - inventory -> struct render_cluster for one cluster (desired.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "desired.h"
#include "error.h"
#include "inventory/config_values.h"
#include "inventory/db.h"

struct desired {
    struct render_cluster c;
    cJSON *meta;                    /* owns metadata strings */
    cJSON *config;                  /* owns config strings */
    struct render_kv *kv_meta, *kv_config;
    cJSON **ns_config;              /* per rendered namespace, when any value is scoped */
    struct render_kv **kv_ns;
    struct render_namespace *nss;
    const char **owners;            /* all namespaces' owners, back to back */
    char (*pods)[24];               /* per namespace */
    struct render_app *apps;
    struct render_file *files;      /* all base files, back to back */
    struct render_policy *pols;
};

static const char *str_or_null(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static const char metadata_sql[] = "SELECT metadata FROM clusters WHERE id = ?";

static int read_metadata(cJSON **out, sqlite3 *db, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = db_prepare_cached(db, metadata_sql, &st)) < 0)   /* once per connection */
        goto out;
    r = -RE_EDB;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = -RE_ENOENT;
        goto out;
    }
    if (rc != SQLITE_ROW)
        goto out;
    const char *text = (const char *)sqlite3_column_text(st, 0);
    *out = cJSON_Parse(text ? text : "{}");
    r = *out ? 0 : -RE_ENOMEM;
out:
    db_release(st);
    return r;
}

static int fill_meta(struct desired *d)
{
    size_t n = (size_t)cJSON_GetArraySize(d->meta), k = 0;
    const cJSON *m;
    if (!(d->kv_meta = calloc(n + 1, sizeof(*d->kv_meta))))
        return -RE_ENOMEM;
    cJSON_ArrayForEach(m, d->meta)
        if (cJSON_IsString(m))
            d->kv_meta[k++] = (struct render_kv){ m->string, m->valuestring };
    d->c.metadata = d->kv_meta;
    d->c.n_metadata = k;
    return 0;
}

static int fill_config(struct desired *d)
{
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(d->config, "values"), *m;
    size_t n = (size_t)cJSON_GetArraySize(values), k = 0;
    if (!(d->kv_config = calloc(n + 1, sizeof(*d->kv_config))))
        return -RE_ENOMEM;
    cJSON_ArrayForEach(m, values) {
        const char *v = str_or_null(m, "value");
        const cJSON *vv = cJSON_GetObjectItemCaseSensitive(m, "value");
        if (cJSON_IsString(vv))
            d->kv_config[k++] = (struct render_kv){ m->string, v ? v : "" };
    }
    d->c.config = d->kv_config;
    d->c.n_config = k;
    return 0;
}

static int cmp_kv_key(const void *a, const void *b)
{
    return strcmp(((const struct render_kv *)a)->key, ((const struct render_kv *)b)->key);
}

/* Each namespace's own values (scoped to it), sorted by key; nothing to do
 * in the common fleet where no value is scoped (the plan knows). */
static int fill_scoped(struct desired *d, const struct plan *p, sqlite3 *db, int64_t id)
{
    int r;
    if (!p->config_scoped)
        return 0;
    size_t n = d->c.n_namespaces;
    if (!(d->ns_config = calloc(n + 1, sizeof(*d->ns_config))) ||
        !(d->kv_ns = calloc(n + 1, sizeof(*d->kv_ns))))
        return -RE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct render_namespace *ns = &d->nss[i];
        if ((r = config_effective_ns(db, id, ns->name, &d->ns_config[i])) < 0)
            return r;
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(d->ns_config[i], "values"), *m;
        size_t k = 0;
        if (!(d->kv_ns[i] = calloc((size_t)cJSON_GetArraySize(values) + 1, sizeof(**d->kv_ns))))
            return -RE_ENOMEM;
        cJSON_ArrayForEach(m, values) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "value");
            if (cJSON_GetObjectItemCaseSensitive(m, "namespace") && cJSON_IsString(v))
                d->kv_ns[i][k++] = (struct render_kv){ m->string, v->valuestring };
        }
        qsort(d->kv_ns[i], k, sizeof(**d->kv_ns), cmp_kv_key);
        ns->config = d->kv_ns[i];
        ns->n_config = k;
    }
    return 0;
}

static int fill_namespaces(struct desired *d, const struct plan *p, size_t idx)
{
    size_t n = 0, n_owners = 0, o = 0;
    for (size_t i = 0; i < p->n_namespaces; i++)
        if (plan_namespace_applies(p, i, idx)) {
            n++;
            n_owners += (size_t)cJSON_GetArraySize(
                cJSON_GetObjectItemCaseSensitive(p->namespaces[i].obj, "owners"));
        }
    if (!(d->nss = calloc(n + 1, sizeof(*d->nss))) ||
        !(d->owners = calloc(n_owners + 1, sizeof(*d->owners))) ||
        !(d->pods = calloc(n + 1, sizeof(*d->pods))))
        return -RE_ENOMEM;
    for (size_t i = 0; i < p->n_namespaces; i++) {
        if (!plan_namespace_applies(p, i, idx))
            continue;
        const cJSON *obj = p->namespaces[i].obj, *it;
        const cJSON *quota = cJSON_GetObjectItemCaseSensitive(obj, "quota");
        const cJSON *pods = cJSON_GetObjectItemCaseSensitive(quota, "pods");
        struct render_namespace *ns = &d->nss[d->c.n_namespaces];
        ns->name = p->namespaces[i].name;
        ns->owners = d->owners + o;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(obj, "owners"))
            if (cJSON_IsString(it)) {
                d->owners[o++] = it->valuestring;
                ns->n_owners++;
            }
        const cJSON *net = cJSON_GetObjectItemCaseSensitive(obj, "network");
        const cJSON *dd = cJSON_GetObjectItemCaseSensitive(net, "default_deny");
        const cJSON *dns = cJSON_GetObjectItemCaseSensitive(net, "allow_dns");
        ns->net_open = cJSON_IsFalse(dd);
        ns->net_no_dns = cJSON_IsFalse(dns);
        ns->net_allow_same_namespace =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(net, "allow_same_namespace"));
        ns->quota_cpu = str_or_null(quota, "cpu");
        ns->quota_memory = str_or_null(quota, "memory");
        if (cJSON_IsNumber(pods)) {
            snprintf(d->pods[d->c.n_namespaces], sizeof(d->pods[0]), "%lld",
                     (long long)pods->valuedouble);
            ns->quota_pods = d->pods[d->c.n_namespaces];
        } else {
            ns->quota_pods = str_or_null(quota, "pods");
        }
        d->c.n_namespaces++;
    }
    d->c.namespaces = d->nss;
    return 0;
}

static int fill_apps(struct desired *d, const struct plan *p, size_t idx)
{
    size_t n = 0, n_files = 0, f = 0;
    for (size_t i = 0; i < p->n_apps; i++)
        if (plan_app_version(p, i, idx)) {
            const cJSON *base = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(p->apps[i].obj, "source"), "base");
            n++;
            n_files += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(base, "files"));
        }
    if (!(d->apps = calloc(n + 1, sizeof(*d->apps))) ||
        !(d->files = calloc(n_files + 1, sizeof(*d->files))))
        return -RE_ENOMEM;
    for (size_t i = 0; i < p->n_apps; i++) {
        const struct plan_version *v = plan_app_version(p, i, idx);
        if (!v)
            continue;
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(p->apps[i].obj, "source");
        const cJSON *git = cJSON_GetObjectItemCaseSensitive(src, "git");
        const cJSON *base = cJSON_GetObjectItemCaseSensitive(src, "base");
        struct render_app *a = &d->apps[d->c.n_apps++];
        a->name = p->apps[i].name;
        a->namespace_ = p->apps[i].namespace_;
        a->version = v->version;
        if (cJSON_IsObject(base)) {
            const cJSON *it;
            a->kind = RENDER_SRC_BASE;
            a->base_files = d->files + f;
            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(base, "files"))
                if (cJSON_IsString(it)) {
                    d->files[f++] = (struct render_file){ it->string, it->valuestring,
                                                          strlen(it->valuestring) };
                    a->n_base_files++;
                }
            a->image_name = str_or_null(base, "image");
            a->image_tag = str_or_null(v->obj, "image_tag");
        } else {
            a->kind = RENDER_SRC_GIT;
            a->git_url = str_or_null(git, "url");
            a->git_ref = str_or_null(v->obj, "ref");
            if (!a->git_ref)
                a->git_ref = str_or_null(git, "ref");
            a->git_path = str_or_null(v->obj, "path");
            if (!a->git_path)
                a->git_path = str_or_null(git, "path");
        }
    }
    d->c.apps = d->apps;
    return 0;
}

static int fill_policies(struct desired *d, const struct plan *p, size_t idx)
{
    if (!(d->pols = calloc(p->n_policies + 1, sizeof(*d->pols))))
        return -RE_ENOMEM;
    for (size_t i = 0; i < p->n_policies; i++) {
        if (!plan_policy_applies(p, i, idx))
            continue;
        const char *y = str_or_null(p->policies[i].obj, "yaml");
        d->pols[d->c.n_policies++] = (struct render_policy){ p->policies[i].name, y ? y : "" };
    }
    d->c.policies = d->pols;
    return 0;
}

int desired_build(struct desired **out, const struct plan *p, sqlite3 *db, size_t idx)
{
    struct desired *d = calloc(1, sizeof(*d));
    const char *name = fleet_cluster_name(p->fleet, idx);
    int64_t id = fleet_cluster_id(p->fleet, idx);
    int r = -RE_ENOMEM;
    if (!d)
        return -RE_ENOMEM;
    if (!name) {
        r = -RE_ENOENT;
        goto out;
    }
    d->c.name = name;
    if ((r = read_metadata(&d->meta, db, id)) < 0 || (r = fill_meta(d)) < 0 ||
        (r = config_effective(db, id, &d->config)) < 0 || (r = fill_config(d)) < 0 ||
        (r = fill_namespaces(d, p, idx)) < 0 || (r = fill_scoped(d, p, db, id)) < 0 ||
        (r = fill_apps(d, p, idx)) < 0 ||
        (r = fill_policies(d, p, idx)) < 0)
        goto out;
    *out = d;
    d = NULL;
    r = 0;
out:
    desired_free(d);
    return r;
}

const struct render_cluster *desired_cluster(const struct desired *d)
{
    return &d->c;
}

void desired_free(struct desired *d)
{
    if (!d)
        return;
    cJSON_Delete(d->meta);
    cJSON_Delete(d->config);
    free(d->kv_meta);
    free(d->kv_config);
    for (size_t i = 0; d->ns_config && i < d->c.n_namespaces; i++) {
        cJSON_Delete(d->ns_config[i]);
        free(d->kv_ns[i]);
    }
    free(d->ns_config);
    free(d->kv_ns);
    free(d->nss);
    free(d->owners);
    free(d->pods);
    free(d->apps);
    free(d->files);
    free(d->pols);
    free(d);
}

int desired_render(struct render_tree **out, const struct plan *p, sqlite3 *db, size_t idx,
                   struct re_buf *err)
{
    struct desired *d = NULL;
    int r = desired_build(&d, p, db, idx);
    if (r == 0)
        r = render_cluster(out, &d->c, err);
    desired_free(d);
    return r;
}
