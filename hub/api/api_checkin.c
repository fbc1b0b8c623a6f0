/* api_checkin.c - agents' check-ins: validates and records what an agent
 * reports (cluster_status) and tells it which revision to run. */
#include <string.h>
#include <cjson/cJSON.h>
#include "api_checkin.h"
#include "clock.h"
#include "error.h"
#include "gitops/gitops.h"
#include "http/http.h"
#include "hub.h"
#include "inventory/auth.h"
#include "inventory/checkin_batch.h"
#include "inventory/db.h"
#include "validate.h"
#include "json.h"
#include "log.h"
#include "oid.h"

/* ---- validation ---- */

struct report {
    const char *identity, *k8s_version, *agent_version, *mode;
    long long node_count;            /* -1: null */
    long long interval_s;            /* 0: not given */
    const char *pulled, *applied, *apply_result;
    char *labels;                    /* JSON text (malloc) */
    char *host;
    char *kustomizations;            /* JSON text or NULL */
};

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}


/* Optional string field: absent or null leaves *out NULL. */
static int opt_string(struct http_exchange *x, const cJSON *j, const char *key, size_t max,
                      const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || !printable(v->valuestring, max)) {
        http_response_error(&x->res, 400, "invalid", key,
                            "'%s' must be a string of at most %zu printable characters", key,
                            max);
        return -RE_EINVAL;
    }
    *out = v->valuestring;
    return 0;
}

static int opt_int(struct http_exchange *x, const cJSON *j, const char *key, long long max,
                   long long *out, long long dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = dflt;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)max ||
        v->valuedouble != (double)(long long)v->valuedouble) {
        http_response_error(&x->res, 400, "invalid", key,
                            "'%s' must be a whole number from 0 to %lld", key, max);
        return -RE_EINVAL;
    }
    *out = (long long)v->valuedouble;
    return 0;
}

static int opt_rev(struct http_exchange *x, const cJSON *j, const char *key, const char **out)
{
    int r = opt_string(x, j, key, RE_OID_HEX, out);
    if (r == 0 && *out && !re_oid_is(*out)) {
        http_response_error(&x->res, 400, "invalid", key,
                            "'%s' must be a commit id (40 lowercase hex digits) or null", key);
        return -RE_EINVAL;
    }
    return r;
}

static char *print_json(const cJSON *j)
{
    return cJSON_PrintUnformatted(j);
}

static int check_labels(struct http_exchange *x, const cJSON *j, struct report *rep)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels"), *l;
    int n = 0;
    if (!labels || cJSON_IsNull(labels)) {
        rep->labels = strdup("{}");
        return rep->labels ? 0 : -RE_ENOMEM;
    }
    if (!cJSON_IsObject(labels)) {
        http_response_error(&x->res, 400, "invalid", "labels", "'labels' must be an object");
        return -RE_EINVAL;
    }
    cJSON_ArrayForEach(l, labels) {
        if (++n > CHECKIN_MAX_LABELS) {
            http_response_error(&x->res, 400, "invalid", "labels",
                                "at most %d labels", CHECKIN_MAX_LABELS);
            return -RE_EINVAL;
        }
        const char *why = NULL;
        if (!l->string || strlen(l->string) > 316 || !cJSON_IsString(l)) {
            http_response_error(&x->res, 400, "invalid", "labels",
                                "labels are an object of string values, keys at most 316 bytes");
            return -RE_EINVAL;
        }
        if (validate_label_key(re_str_c(l->string), &why) < 0 ||
            validate_label_value(re_str_c(l->valuestring), &why) < 0) {
            http_response_error(&x->res, 400, "invalid", "labels", "label '%.80s': %s",
                                l->string, why);
            return -RE_EINVAL;
        }
    }
    rep->labels = print_json(labels);
    return rep->labels ? 0 : -RE_ENOMEM;
}

static int check_host(struct http_exchange *x, const cJSON *j, struct report *rep)
{
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(j, "host");
    cJSON *clean = cJSON_CreateObject();
    const char *s;
    long long v;
    int r = -RE_EINVAL;
    if (!clean)
        return -RE_ENOMEM;
    if (host && !cJSON_IsNull(host)) {
        if (!cJSON_IsObject(host)) {
            http_response_error(&x->res, 400, "invalid", "host", "'host' must be an object");
            goto out;
        }
        /* Only the known facts are kept. */
        if (opt_string(x, host, "hostname", 255, &s) < 0)
            goto out;
        if (s)
            cJSON_AddStringToObject(clean, "hostname", s);
        if (opt_string(x, host, "boot_id", 64, &s) < 0)
            goto out;
        if (s)
            cJSON_AddStringToObject(clean, "boot_id", s);
        if (opt_int(x, host, "disk_free_bytes", (1LL << 53), &v, -1) < 0)
            goto out;
        if (v >= 0)
            cJSON_AddNumberToObject(clean, "disk_free_bytes", (double)v);
        if (opt_int(x, host, "disk_total_bytes", (1LL << 53), &v, -1) < 0)
            goto out;
        if (v >= 0)
            cJSON_AddNumberToObject(clean, "disk_total_bytes", (double)v);
    }
    rep->host = print_json(clean);
    r = rep->host ? 0 : -RE_ENOMEM;
out:
    cJSON_Delete(clean);
    return r;
}

static int check_kustomizations(struct http_exchange *x, const cJSON *j, struct report *rep)
{
    static const char *const fields[] = { "name", "namespace", "ready", "revision", "message",
                                          NULL };
    static const size_t max[] = { 253, 63, 16, 128, 512 };
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(j, "kustomizations"), *k;
    cJSON *clean;
    int n = 0, r = -RE_EINVAL;
    if (!ks || cJSON_IsNull(ks))
        return 0;
    if (!cJSON_IsArray(ks)) {
        http_response_error(&x->res, 400, "invalid", "kustomizations",
                            "'kustomizations' must be an array or null");
        return -RE_EINVAL;
    }
    if (!(clean = cJSON_CreateArray()))
        return -RE_ENOMEM;
    cJSON_ArrayForEach(k, ks) {
        cJSON *c;
        if (++n > CHECKIN_MAX_LABELS || !cJSON_IsObject(k)) {
            http_response_error(&x->res, 400, "invalid", "kustomizations",
                                "'kustomizations' must hold at most %d objects",
                                CHECKIN_MAX_LABELS);
            goto out;
        }
        if (!(c = cJSON_CreateObject())) {
            r = -RE_ENOMEM;
            goto out;
        }
        cJSON_AddItemToArray(clean, c);
        for (size_t i = 0; fields[i]; i++) {
            const char *s;
            if (opt_string(x, k, fields[i], max[i], &s) < 0)
                goto out;
            cJSON_AddStringToObject(c, fields[i], s ? s : "");
        }
    }
    rep->kustomizations = print_json(clean);
    r = rep->kustomizations ? 0 : -RE_ENOMEM;
out:
    cJSON_Delete(clean);
    return r;
}

static void report_release(struct report *rep)
{
    cJSON_free(rep->labels);
    cJSON_free(rep->host);
    cJSON_free(rep->kustomizations);
}

static int parse_report(struct http_exchange *x, const cJSON *j, struct report *rep)
{
    int r;
    if ((r = opt_string(x, j, "identity", 128, &rep->identity)) < 0 ||
        (r = opt_string(x, j, "kubernetes_version", 64, &rep->k8s_version)) < 0 ||
        (r = opt_string(x, j, "agent_version", 64, &rep->agent_version)) < 0 ||
        (r = opt_string(x, j, "mode", 16, &rep->mode)) < 0 ||
        (r = opt_int(x, j, "node_count", 1000000, &rep->node_count, -1)) < 0 ||
        (r = opt_int(x, j, "interval", 86400, &rep->interval_s, 0)) < 0 ||
        (r = opt_rev(x, j, "pulled_revision", &rep->pulled)) < 0 ||
        (r = opt_rev(x, j, "applied_revision", &rep->applied)) < 0 ||
        (r = opt_string(x, j, "apply_result", 512, &rep->apply_result)) < 0 ||
        (r = check_labels(x, j, rep)) < 0 || (r = check_host(x, j, rep)) < 0 ||
        (r = check_kustomizations(x, j, rep)) < 0)
        return r;
    return 0;
}

/* ---- storage ---- */

static int cluster_id(sqlite3 *db, const char *name, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int r;
    static const char sql[] = "SELECT id FROM clusters WHERE name = ?";
    if (db_prepare_cached(db, sql, &st) < 0)
        return -RE_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        r = 0;
    } else {
        r = r == SQLITE_DONE ? -RE_ENOENT : db_err(r);
    }
    db_release(st);
    return r;
}

/* https://<Host header>/git/<name>.git when the Host header is a plain host[:port]. */
static int git_url(struct http_exchange *x, const char *name, char *out, size_t size)
{
    struct re_str host = http_header_get(&x->req, "host");
    if (!host.ptr || host.len == 0 || host.len > 255)
        return -RE_ENOENT;
    for (size_t i = 0; i < host.len; i++) {
        char c = host.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return -RE_EINVAL;
    }
    return re_snprintf(out, size, "https://%.*s/git/%s.git", (int)host.len, host.ptr, name);
}

/* The {name} of the route as a cluster name into out (VALIDATE_LABEL_MAX + 1
 * bytes); on failure the response is a 400 and negative is returned. */
static int param_cluster(struct http_exchange *x, char out[VALIDATE_LABEL_MAX + 1])
{
    const char *why = "must be a DNS label";
    struct re_str p = x->n_params ? x->params[0] : RE_STR_NULL;
    if (p.len == 0 || p.len > VALIDATE_LABEL_MAX || validate_dns_label(p, &why) < 0) {
        http_response_error(&x->res, 400, "invalid", "name", "the cluster name %s", why);
        return -RE_EINVAL;
    }
    memcpy(out, p.ptr, p.len);
    out[p.len] = '\0';
    return 0;
}

static int h_checkin(struct http_exchange *x)
{
    char name[VALIDATE_LABEL_MAX + 1], rev[RE_OID_BUF], url[400];
    struct report rep = { 0 };
    cJSON *j = NULL, *ans = NULL;
    size_t errpos = 0;
    int r;
    if (param_cluster(x, name) < 0)
        goto out;
    /* the route admits agents only: their own cluster, the one rule */
    if (!auth_own_cluster_ok(&x->req.peer, name)) {
        http_response_error(&x->res, 403, "forbidden", "name", AUTH_OWN_CLUSTER_ONLY);
        goto out;
    }
    if (x->req.body.len > CHECKIN_BODY_MAX) {
        http_response_error(&x->res, 413, "too_large", NULL,
                            "the check-in body is over %d bytes", CHECKIN_BODY_MAX);
        goto out;
    }
    if (re_json_parse(&j, x->req.body, 8, &errpos) < 0) {
        http_response_error(&x->res, 400, "invalid_json", NULL,
                            "the body is not JSON (at byte %zu) or nests deeper than 8",
                            errpos);
        goto out;
    }
    if (!cJSON_IsObject(j)) {
        http_response_error(&x->res, 400, "invalid", NULL, "the body must be a JSON object");
        goto out;
    }
    if (parse_report(x, j, &rep) < 0) {
        if (!x->res.status)
            http_response_error(&x->res, 500, "no_memory", NULL, "out of memory");
        goto out;
    }
    /* auth_resolve found the certificate's cluster (current, not revoked) */
    struct checkin_row row = {
        .cluster_id = x->req.peer.id, .name = name, .remote_addr = x->req.peer.remote_addr,
        .seen = re_time(), .identity = rep.identity, .k8s_version = rep.k8s_version,
        .labels = rep.labels, .agent_version = rep.agent_version, .mode = rep.mode,
        .host = rep.host, .pulled = rep.pulled, .applied = rep.applied,
        .apply_result = rep.apply_result, .kustomizations = rep.kustomizations,
        .node_count = rep.node_count,
        .interval_s = rep.interval_s > 0 ? rep.interval_s : CHECKIN_INTERVAL_S,
    };
    if ((r = checkin_batch_add(x->hub->db, &row)) < 0) {
        log_err("check-in of '%s': cannot store it: %s", name, re_strerror(r));
        http_response_from_err(&x->res, r, NULL, "cannot record the check-in");
        if (r == -RE_EBUSY)
            http_response_header(&x->res, "Retry-After", "%d", 5);
        goto out;
    }
    if (!(ans = cJSON_CreateObject()) || !cJSON_AddStringToObject(ans, "branch", "main")) {
        http_response_error(&x->res, 500, "no_memory", NULL, "out of memory");
        goto out;
    }
    if (gitops_desired_revision(x->hub, name, rev) == 0)
        cJSON_AddStringToObject(ans, "revision", rev);
    else
        cJSON_AddNullToObject(ans, "revision");
    cJSON_AddNumberToObject(ans, "interval", CHECKIN_INTERVAL_S);
    if (git_url(x, name, url, sizeof(url)) == 0)
        cJSON_AddStringToObject(ans, "git_url", url);
    http_response_json(&x->res, 200, ans);
out:
    report_release(&rep);
    cJSON_Delete(ans);
    cJSON_Delete(j);
    return 0;
}

static int h_status(struct http_exchange *x)
{
    char name[VALIDATE_LABEL_MAX + 1];
    cJSON *j = NULL;
    int64_t id;
    int r;
    if (param_cluster(x, name) < 0)
        return 0;
    if (!auth_own_cluster_ok(&x->req.peer, name)) {
        http_response_error(&x->res, 403, "forbidden", "name", AUTH_OWN_CLUSTER_ONLY);
        return 0;
    }
    if ((r = cluster_id(x->hub->db, name, &id)) < 0) {
        if (r == -RE_ENOENT)
            http_response_error(&x->res, 404, "not_found", "name", "no cluster '%s'", name);
        else
            http_response_from_err(&x->res, r, NULL, "cannot read the inventory");
        return 0;
    }
    r = -RE_ENOMEM;
    if (!(j = cJSON_CreateObject()) || !cJSON_AddStringToObject(j, "name", name) ||
        (r = checkin_status_json(x->hub->db, name, j)) < 0) {
        http_response_from_err(&x->res, r, NULL, "cannot read the status");
        cJSON_Delete(j);
        return 0;
    }
    http_response_json(&x->res, 200, j);
    cJSON_Delete(j);
    return 0;
}

const struct route checkin_routes[] = {
    { "POST", "/api/v1/clusters/{name}/checkin", h_checkin, ROLE_AGENT },
    { "GET", "/api/v1/clusters/{name}/status", h_status,
      ROLE_AGENT | ROLE_TECHNICIAN | ROLE_APPTEAM | ROLE_READERS },
    { NULL, NULL, NULL, 0 },
};
