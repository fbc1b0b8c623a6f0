/* api_enroll.c - the enrollment endpoints: one-time codes for clusters and
 * users, the public CA and redemption endpoints, renewal over mutual TLS and
 * revocation. The logic is in enroll.c; this maps it to HTTP, the audit
 * actor and /metrics.
 *
 *   POST /api/v1/clusters/{name}/enroll-code  technician, operator, admin
 *        {"ttl": "24h"}? -> 201 {"code", "hub", "ca_fingerprint", "expires",
 *        "expires_at", "command", "kind", "name"}
 *   POST /api/v1/users                        admin {"name", "role", "ttl"?} -> 201 as above
 *   POST /api/v1/users/{name}/enroll-code     admin {"ttl"?, "role"?}: a new code
 *   GET  /api/v1/enroll/ca                    public: the CA certificate (PEM)
 *   POST /api/v1/enroll                       public {"code", "csr", "cluster"? | "user"?}
 *        -> 201 {"certificate", "ca", "identity", "kind", "name", "serial",
 *        "not_before", "not_after", "renew_after"}
 *   POST /api/v1/renew                        any certificate {"csr"} -> 201 as above
 *   POST /api/v1/clusters/{name}/revoke       operator, admin -> 200
 *   POST /api/v1/users/{name}/revoke          admin -> 200
 */
#include <limits.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "clock.h"
#include "conf.h"
#include "crypto.h"
#include "enroll/enroll.h"
#include "error.h"
#include "http/http.h"
#include "http/routes.h"
#include "hub.h"
#include "validate.h"
#include "inventory/audit.h"
#include "inventory/checkin_status.h"
#include "json.h"
#include "log.h"
#include "metrics.h"

#define BODY_MAX (ENROLL_CSR_MAX + 4096)    /* a request body beyond: 413 */

/* The CA, loaded on first use and kept for the process's life. */
static struct enroll_ca the_ca;
static char the_ca_dir[PATH_MAX];

static const struct enroll_ca *ca_get(struct http_exchange *x)
{
    int r;
    if (the_ca.crt_pem && strcmp(the_ca_dir, x->hub->cfg.dir) == 0)
        return &the_ca;
    enroll_ca_release(&the_ca);
    if ((r = enroll_ca_load(&the_ca, x->hub->cfg.dir)) < 0 ||
        (r = re_snprintf(the_ca_dir, sizeof(the_ca_dir), "%s", x->hub->cfg.dir)) < 0) {
        log_err("cannot load the CA from '%s/tls': %s", x->hub->cfg.dir, re_strerror(r));
        enroll_ca_release(&the_ca);
        http_response_error(&x->res, 500, "internal", NULL, "the hub cannot read its CA");
        return NULL;
    }
    return &the_ca;
}

static void count(struct http_exchange *x, const char *series)
{
    static bool described;
    struct metrics *m = x->hub->metrics;
    if (!described && m) {
        described = true;
        metrics_describe(m, "resedge_enroll_codes_total", "counter",
                         "Enrollment codes created, by identity kind.");
        metrics_describe(m, "resedge_certs_issued_total", "counter",
                         "Client certificates issued, by enroll or renew.");
        metrics_describe(m, "resedge_certs_revoked_total", "counter",
                         "Identities revoked, by kind.");
        metrics_describe(m, "resedge_enroll_failures_total", "counter",
                         "Refused enrollment and renewal attempts, by reason.");
    }
    metrics_inc(m, series);
}

/* "user/alice"; "addr:10.0.0.1" for the unauthenticated. */
static void actor_of(char *out, size_t size, const struct caller *p)
{
    if (p->authenticated && p->kind[0])
        re_snprintf(out, size, "%s/%s", p->kind, p->name);
    else
        re_snprintf(out, size, "addr:%s", p->remote_addr[0] ? p->remote_addr : "unknown");
}

/* The body as a JSON object; an empty body is {} when allow_empty. On
 * failure the response is set and NULL returned. */
static cJSON *body_object(struct http_exchange *x, bool allow_empty, const char *const *allowed)
{
    cJSON *j = NULL;
    const char *unknown;
    size_t errpos = 0;
    int r;
    if (x->req.body.len > BODY_MAX) {
        http_response_error(&x->res, 413, "too_large", "csr",
                            "the request body is over %d bytes; a CSR is far smaller",
                            BODY_MAX);
        return NULL;
    }
    if (x->req.body.len == 0 && allow_empty)
        return cJSON_CreateObject();
    r = re_json_parse(&j, x->req.body, x->hub->cfg.limits.max_json_depth, &errpos);
    if (r == -RE_EDEPTH) {
        http_response_error(&x->res, 400, "too_deep", NULL, "JSON nested deeper than %d levels",
                            x->hub->cfg.limits.max_json_depth);
        return NULL;
    }
    if (r < 0) {
        http_response_error(&x->res, 400, "invalid_json", NULL,
                            "the body is not JSON (at byte %zu)", errpos);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        http_response_error(&x->res, 400, "invalid", NULL, "the body must be a JSON object");
        cJSON_Delete(j);
        return NULL;
    }
    if ((unknown = re_json_unknown_key(j, allowed))) {
        http_response_error(&x->res, 400, "unknown_field", unknown, "unknown field '%s'",
                            unknown);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* "ttl": a duration string ("30m", "24h", "7d") or a number of seconds. */
static int get_ttl(struct http_exchange *x, const cJSON *j, int64_t *ttl)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "ttl");
    unsigned long long ms = 0;
    *ttl = ENROLL_TTL_DEFAULT_S;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsString(v) && re_parse_duration_ms(&ms, v->valuestring) == 0)
        *ttl = (int64_t)(ms / 1000);
    else if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= ENROLL_TTL_MAX_S)
        *ttl = (int64_t)v->valuedouble;
    else
        *ttl = -1;
    if (*ttl < 1 || *ttl > ENROLL_TTL_MAX_S) {
        http_response_error(&x->res, 400, "invalid", "ttl",
                            "ttl must be a duration from 1s to 7d, like 30m or 24h");
        return -RE_EINVAL;
    }
    return 0;
}

/* The URL agents should dial: the Host the caller reached us by, else the
 * listen address (a wildcard means this host). */
static void hub_url(char *out, size_t size, struct http_exchange *x)
{
    struct re_str host = http_header_get(&x->req, "Host");
    bool ok = host.len > 0 && host.len < 256;
    for (size_t i = 0; ok && i < host.len; i++) {
        char c = host.ptr[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    }
    if (ok) {
        re_snprintf(out, size, "https://%.*s", (int)host.len, host.ptr);
        return;
    }
    const char *listen = x->hub->cfg.listen ? x->hub->cfg.listen : "127.0.0.1:8443";
    const char *colon = strrchr(listen, ':');
    struct re_str h = colon ? (struct re_str){ listen, (size_t)(colon - listen) } : re_str_c(listen);
    if (h.len == 0 || re_str_eq_c(h, "0.0.0.0") || re_str_eq_c(h, "*") || re_str_eq_c(h, "[::]"))
        h = RE_STR_LIT("127.0.0.1");
    re_snprintf(out, size, "https://%.*s%s", (int)h.len, h.ptr, colon ? colon : ":8443");
}

/* 201 with the code and what to run with it. */
static int answer_code(struct http_exchange *x, const struct enroll_ca *ca, const char *kind,
                       const char *name, const char *role, const char *code, int64_t expires)
{
    char url[320], when[40];
    struct re_buf cmd;
    cJSON *j = cJSON_CreateObject();
    int r = -RE_ENOMEM;
    re_buf_init(&cmd, 4096);
    hub_url(url, sizeof(url), x);
    re_time_iso(when, sizeof(when), expires);
    if (!j || re_buf_printf(&cmd, "%s --hub %s --code %s --ca-fingerprint %s",
                            strcmp(kind, "user") == 0 ? "resedgectl login" : "resedge-agent enroll",
                            url, code, ca->fingerprint) < 0)
        goto out;
    if (!cJSON_AddStringToObject(j, "code", code) || !cJSON_AddStringToObject(j, "hub", url) ||
        !cJSON_AddStringToObject(j, "ca_fingerprint", ca->fingerprint) ||
        !cJSON_AddStringToObject(j, "expires", when) ||
        !cJSON_AddNumberToObject(j, "expires_at", (double)expires) ||
        !cJSON_AddStringToObject(j, "command", cmd.ptr) ||
        !cJSON_AddStringToObject(j, "kind", kind) || !cJSON_AddStringToObject(j, "name", name) ||
        (role && !cJSON_AddStringToObject(j, "role", role)))
        goto out;
    r = http_response_json(&x->res, 201, j);
out:
    cJSON_Delete(j);
    re_buf_release(&cmd);
    return r;
}

static int param_name(struct http_exchange *x, char *out, size_t size, bool user)
{
    struct re_str p = x->n_params ? x->params[0] : RE_STR_NULL;
    const char *why = "must be a DNS label";
    char ident[200];
    int r = -RE_EINVAL;
    if (p.len > 0 && p.len < size) {
        memcpy(out, p.ptr, p.len);
        out[p.len] = '\0';
        if (!user)
            r = validate_dns_label(p, &why);
        else if (re_snprintf(ident, sizeof(ident), "user/%s", out) == 0)
            r = validate_identity(re_str_c(ident), &why);
    }
    if (r < 0)
        http_response_error(&x->res, 400, "invalid", "name", "the name %s", why);
    return r;
}

/* ---- codes -------------------------------------------------------------- */

/* A new code for a store whose agent checks in takes over its identity:
 * only with "replace": true, which is audited as a replacement (the old
 * certificate stops working when the new agent enrolls). 0 to go on, else
 * the answer was written (1) or negative. */
static int check_replace(struct http_exchange *x, const cJSON *j, const char *name,
                         const char *actor)
{
    const cJSON *rep = cJSON_GetObjectItem(j, "replace");
    cJSON *st = cJSON_CreateObject();
    int r;
    if (!st)
        return http_response_error(&x->res, 503, "no_memory", NULL, "out of memory"), 1;
    if (rep && !cJSON_IsBool(rep)) {
        http_response_error(&x->res, 400, "invalid", "replace", "replace must be true or false");
        r = 1;
        goto out;
    }
    if ((r = checkin_status_json(x->hub->db, name, st)) < 0) {
        http_response_from_err(&x->res, r, NULL, "cannot read the cluster's status");
        r = 1;
        goto out;
    }
    const cJSON *state = cJSON_GetObjectItem(st, "status"), *seen = cJSON_GetObjectItem(st, "last_seen");
    bool online = cJSON_IsString(state) && strcmp(state->valuestring, "offline") != 0;
    if (online && !cJSON_IsTrue(rep)) {
        http_response_error(&x->res, 409, "agent_online", "replace",
                            "cluster '%s' has an agent that checked in at %s (%s): a new code "
                            "would take over its identity; pass replace (resedgectl clusters "
                            "enroll-code %s --replace) if this store's node is being replaced",
                            name, cJSON_IsString(seen) ? seen->valuestring : "?",
                            state->valuestring, name);
        r = 1;
        goto out;
    }
    if (online && (r = audit_record(x->hub->db, re_time(), actor, "replace", "cluster", 0, name,
                                    st, NULL)) < 0) {
        http_response_from_err(&x->res, r, NULL, "cannot audit the replacement");
        r = 1;
        goto out;
    }
    r = 0;
out:
    cJSON_Delete(st);
    return r;
}

static int issue_code(struct http_exchange *x, const char *kind, const char *name,
                      const char *role)
{
    static const char *const allowed[] = { "ttl", "role", NULL };
    static const char *const allowed_cluster[] = { "ttl", "replace", NULL };
    const struct enroll_ca *ca = ca_get(x);
    char code[ENROLL_CODE_MAX], actor[200], series[128];
    int64_t ttl, expires = 0;
    cJSON *j = NULL;
    int r;
    if (!ca)
        return 0;
    if (!(j = body_object(x, true, strcmp(kind, "user") == 0 ? allowed : allowed_cluster)))
        return 0;
    if ((r = get_ttl(x, j, &ttl)) < 0)
        goto out;
    if (!role && re_json_get_string(&role, j, "role") == -RE_EINVAL) {
        r = http_response_error(&x->res, 400, "invalid", "role", "role must be a string");
        goto out;
    }
    actor_of(actor, sizeof(actor), &x->req.peer);
    if (strcmp(kind, "cluster") == 0 && (r = check_replace(x, j, name, actor)) != 0) {
        r = r > 0 ? 0 : r;          /* answered */
        goto out;
    }
    struct enroll_identity who = { kind, name, role };
    r = enroll_code_create(code, sizeof(code), &expires, x->hub->db, ca, &who, ttl, actor,
                           re_time());
    if (r == -RE_ENOENT) {
        r = http_response_error(&x->res, 404, "not_found", "name",
                                strcmp(kind, "user") == 0 ? "no user '%s'"
                                : "no cluster '%s': create it first (resedgectl clusters create)",
                                name);
    } else if (r == -RE_EINVAL) {
        r = http_response_error(&x->res, 400, "invalid", "role",
                                "role must be admin, operator, appteam, technician or viewer");
    } else if (r < 0) {
        r = http_response_from_err(&x->res, r, NULL, "cannot create the enrollment code");
    } else {
        re_snprintf(series, sizeof(series), "resedge_enroll_codes_total{kind=\"%s\"}", kind);
        count(x, series);
        r = answer_code(x, ca, kind, name, role, code, expires);
    }
out:
    memset(code, 0, sizeof(code));
    cJSON_Delete(j);
    return r;
}

static int h_cluster_code(struct http_exchange *x)
{
    char name[VALIDATE_LABEL_MAX + 1];
    if (param_name(x, name, sizeof(name), false) < 0)
        return 0;
    return issue_code(x, "cluster", name, NULL);
}

static int h_user_code(struct http_exchange *x)
{
    char name[128];
    if (param_name(x, name, sizeof(name), true) < 0)
        return 0;
    return issue_code(x, "user", name, NULL);
}

static int h_user_add(struct http_exchange *x)
{
    static const char *const allowed[] = { "name", "role", "ttl", NULL };
    const struct enroll_ca *ca = ca_get(x);
    const char *name = NULL, *role = NULL, *why = "is required";
    char code[ENROLL_CODE_MAX], actor[200], ident[200];
    int64_t ttl, expires = 0;
    cJSON *j;
    int r;
    if (!ca || !(j = body_object(x, false, allowed)))
        return 0;
    if ((r = get_ttl(x, j, &ttl)) < 0)
        goto out;
    if (re_json_get_string(&name, j, "name") < 0 ||
        re_snprintf(ident, sizeof(ident), "user/%s", name) < 0 ||
        validate_identity(re_str_c(ident), &why) < 0) {
        r = http_response_error(&x->res, 400, "invalid", "name",
                                "name %s (letters, digits, '-', '.', '_', '@')", why);
        goto out;
    }
    /* A person's role; "agent" is what a cluster's certificate brings. */
    if (re_json_get_string(&role, j, "role") < 0 ||
        !((unsigned)role_parse(role) & ROLE_ANY_USER)) {
        r = http_response_error(&x->res, 400, "invalid", "role",
                                "role must be admin, operator, appteam, technician or viewer");
        goto out;
    }
    role = role_name(role_parse(role));          /* "app-team" -> "appteam" */
    actor_of(actor, sizeof(actor), &x->req.peer);
    r = enroll_user_add(code, sizeof(code), &expires, x->hub->db, ca, name, role, ttl, actor,
                        re_time());
    if (r == -RE_EEXIST) {
        r = http_response_error(&x->res, 409, "already_exists", "name",
                                "user '%s' exists: POST /api/v1/users/%s/enroll-code gives "
                                "them a new code", name, name);
    } else if (r < 0) {
        r = http_response_from_err(&x->res, r, NULL, "cannot add the user");
    } else {
        count(x, "resedge_enroll_codes_total{kind=\"user\"}");
        r = answer_code(x, ca, "user", name, role, code, expires);
    }
out:
    memset(code, 0, sizeof(code));
    cJSON_Delete(j);
    return r;
}

/* ---- enrollment and renewal --------------------------------------------- */

static int h_ca(struct http_exchange *x)
{
    const struct enroll_ca *ca = ca_get(x);
    if (!ca)
        return 0;
    return http_response_text(&x->res, 200, "application/x-pem-file", re_str_c(ca->crt_pem));
}

static int answer_cert(struct http_exchange *x, const struct enroll_ca *ca,
                       const struct enroll_result *res)
{
    char nb[40], na[40], ra[40];
    cJSON *j = cJSON_CreateObject();
    int r = -RE_ENOMEM;
    re_time_iso(nb, sizeof(nb), res->not_before);
    re_time_iso(na, sizeof(na), res->not_after);
    re_time_iso(ra, sizeof(ra), res->renew_after);
    if (j && cJSON_AddStringToObject(j, "certificate", res->cert.ptr) &&
        cJSON_AddStringToObject(j, "ca", ca->crt_pem) &&
        cJSON_AddStringToObject(j, "identity", res->identity) &&
        cJSON_AddStringToObject(j, "kind", res->kind) &&
        cJSON_AddStringToObject(j, "name", res->name) &&
        cJSON_AddStringToObject(j, "serial", res->serial) &&
        cJSON_AddStringToObject(j, "not_before", nb) &&
        cJSON_AddStringToObject(j, "not_after", na) &&
        cJSON_AddStringToObject(j, "renew_after", ra))
        r = http_response_json(&x->res, 201, j);
    cJSON_Delete(j);
    return r;
}

/* How each refusal of enroll.c is answered, and its metrics reason. */
static const struct refusal {
    int err;
    const char *reason;
    int status;
    const char *code;
    const char *field;
    const char *message;
} refusals[] = {
    { -RE_ETOOBIG, "csr_too_large", 413, "too_large", "csr", "the CSR is over the 8 KiB limit" },
    { -RE_EPARSE, "csr_malformed", 400, "invalid", "csr",
      "csr must be a PEM certificate request (BEGIN CERTIFICATE REQUEST) that parses" },
    { -RE_EBADSIG, "csr_bad_signature", 400, "bad_signature", "csr",
      "the CSR's signature does not verify with its own key" },
    { -RE_EUNSUPP, "csr_unsupported", 400, "unsupported", "csr",
      "the CSR must hold an ECDSA P-256 key and be signed with SHA-256 or stronger" },
    { -RE_EUNAUTH, "invalid_code", 401, "invalid_code", "code",
      "this enrollment code is not valid; check it and try again" },
    { -RE_ELOCKED, "code_locked", 403, "code_locked", "code",
      "this enrollment code is locked after too many wrong attempts; ask for a new code" },
    { -RE_ECONFLICT, "code_used", 409, "code_used", "code",
      "this enrollment code was already used; ask for a new code" },
    { -RE_EEXPIRED, "code_expired", 410, "code_expired", "code",
      "this enrollment code has expired or was cancelled; ask for a new code" },
    { -RE_EDENIED, "code_mismatch", 403, "code_mismatch", "code",
      "this enrollment code is for another identity" },
    { -RE_ENOENT, "identity_gone", 404, "not_found", "code",
      "the identity this code was made for no longer exists" },
};
_Static_assert(ENROLL_CSR_MAX == 8 * 1024, "the csr_too_large message names the limit");

/* Answers a refusal of enroll.c and counts it by reason. */
static int refuse(struct http_exchange *x, int err, unsigned retry_after)
{
    struct http_response *res = &x->res;
    const char *reason = "internal";
    char series[128];
    int r = 1;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        const struct refusal *f = &refusals[i];
        if (f->err == err) {
            reason = f->reason;
            r = http_response_error(res, f->status, f->code, f->field, "%s", f->message);
            break;
        }
    }
    if (r > 0 && err == -RE_EAGAIN) {
        reason = "rate_limited";
        http_response_header(res, "Retry-After", "%u", retry_after);
        r = http_response_error(res, 429, "rate_limited", NULL,
                                "too many failed attempts from this address; try again in "
                                "%u seconds", retry_after);
    } else if (r > 0) {
        log_err("enrollment from %s failed: %s", x->req.peer.remote_addr, re_strerror(err));
        r = http_response_from_err(res, err, NULL, "enrollment failed");
    }
    re_snprintf(series, sizeof(series), "resedge_enroll_failures_total{reason=\"%s\"}", reason);
    count(x, series);
    return r;
}

static int h_enroll(struct http_exchange *x)
{
    static const char *const allowed[] = { "code", "csr", "cluster", "user", NULL };
    const struct enroll_ca *ca = ca_get(x);
    const char *code = NULL, *csr = NULL, *cluster = NULL, *user = NULL;
    struct enroll_policy pol = { x->hub->cfg.trust_domain, x->hub->cfg.cert_lifetime_days };
    struct enroll_result res;
    const char *field = NULL;
    cJSON *j;
    int r;
    if (!ca || !(j = body_object(x, false, allowed)))
        return 0;
    memset(&res, 0, sizeof(res));
    re_buf_init(&res.cert, RE_PEM_MAX);
    if (re_json_get_string(&code, j, "code") < 0)
        field = "code";
    else if (re_json_get_string(&csr, j, "csr") < 0)
        field = "csr";
    else if (re_json_get_string(&cluster, j, "cluster") == -RE_EINVAL)
        field = "cluster";
    else if (re_json_get_string(&user, j, "user") == -RE_EINVAL)
        field = "user";
    if (field || (cluster && user)) {
        r = http_response_error(&x->res, 400, "invalid", field ? field : "user",
                                field ? "%s is required, as a string" : "give cluster or user, "
                                "not both", field ? field : "");
        goto out;
    }
    r = enroll_redeem(&res, x->hub->db, ca, &pol, re_str_c(code),
                      (struct re_str){ csr, strlen(csr) }, cluster ? "cluster" : user ? "user" : NULL,
                      cluster ? cluster : user, x->req.peer.remote_addr, re_time());
    if (r < 0) {
        r = refuse(x, r, res.retry_after);
        goto out;
    }
    log_info("enrolled %s/%s (serial %s) from %s with code %s", res.kind, res.name, res.serial,
             x->req.peer.remote_addr, res.code_id);
    count(x, "resedge_certs_issued_total{how=\"enroll\"}");
    r = answer_cert(x, ca, &res);
out:
    re_buf_release(&res.cert);
    cJSON_Delete(j);
    return r;
}

static int h_renew(struct http_exchange *x)
{
    static const char *const allowed[] = { "csr", NULL };
    const struct enroll_ca *ca = ca_get(x);
    const struct caller *p = &x->req.peer;
    struct enroll_policy pol = { x->hub->cfg.trust_domain, x->hub->cfg.cert_lifetime_days };
    struct enroll_result res;
    const char *csr = NULL;
    cJSON *j;
    int r;
    if (!ca || !(j = body_object(x, false, allowed)))
        return 0;
    memset(&res, 0, sizeof(res));
    re_buf_init(&res.cert, RE_PEM_MAX);
    if (re_json_get_string(&csr, j, "csr") < 0) {
        r = http_response_error(&x->res, 400, "invalid", "csr", "csr is required, as a string");
        goto out;
    }
    /* The identity is the caller's, from its certificate; never the CSR's. */
    r = enroll_renew_identity(&res, x->hub->db, ca, &pol, p->kind, p->name, p->serial,
                              (struct re_str){ csr, strlen(csr) }, p->remote_addr, re_time());
    if (r == -RE_EDENIED) {
        count(x, "resedge_enroll_failures_total{reason=\"renew_denied\"}");
        r = http_response_error(&x->res, 403, "forbidden", NULL,
                                "this certificate is no longer current or was revoked");
        goto out;
    }
    if (r < 0) {
        r = refuse(x, r, 0);
        goto out;
    }
    log_info("renewed %s/%s (serial %s -> %s)", res.kind, res.name, p->serial, res.serial);
    count(x, "resedge_certs_issued_total{how=\"renew\"}");
    r = answer_cert(x, ca, &res);
out:
    re_buf_release(&res.cert);
    cJSON_Delete(j);
    return r;
}

/* ---- revocation --------------------------------------------------------- */

static int revoke_identity(struct http_exchange *x, const char *kind, const char *name)
{
    char actor[200], series[96];
    cJSON *j;
    int r;
    actor_of(actor, sizeof(actor), &x->req.peer);
    if (strcmp(kind, x->req.peer.kind) == 0 && strcmp(name, x->req.peer.name) == 0)
        return http_response_error(&x->res, 409, "conflict", "name",
                                   "you cannot revoke your own certificate");
    r = enroll_revoke(x->hub->db, kind, name, actor, re_time());
    if (r == -RE_ENOENT)
        return http_response_error(&x->res, 404, "not_found", "name", "no %s '%s'", kind, name);
    if (r < 0)
        return http_response_from_err(&x->res, r, NULL, "cannot revoke");
    log_notice("%s revoked %s/%s", actor, kind, name);
    re_snprintf(series, sizeof(series), "resedge_certs_revoked_total{kind=\"%s\"}", kind);
    count(x, series);
    if (!(j = cJSON_CreateObject()) || !cJSON_AddStringToObject(j, "kind", kind) ||
        !cJSON_AddStringToObject(j, "name", name) || !cJSON_AddTrueToObject(j, "revoked")) {
        cJSON_Delete(j);
        return -RE_ENOMEM;
    }
    r = http_response_json(&x->res, 200, j);
    cJSON_Delete(j);
    return r;
}

static int h_cluster_revoke(struct http_exchange *x)
{
    char name[VALIDATE_LABEL_MAX + 1];
    if (param_name(x, name, sizeof(name), false) < 0)
        return 0;
    return revoke_identity(x, "cluster", name);
}

static int h_user_revoke(struct http_exchange *x)
{
    char name[128];
    if (param_name(x, name, sizeof(name), true) < 0)
        return 0;
    return revoke_identity(x, "user", name);
}

const struct route enroll_routes[] = {
    { "POST", "/api/v1/clusters/{name}/enroll-code", h_cluster_code,
      ROLE_TECHNICIAN | ROLE_OPERATOR | ROLE_ADMIN },
    { "POST", "/api/v1/clusters/{name}/revoke", h_cluster_revoke, ROLE_OPERATOR | ROLE_ADMIN },
    { "POST", "/api/v1/users", h_user_add, ROLE_ADMIN },
    { "POST", "/api/v1/users/{name}/enroll-code", h_user_code, ROLE_ADMIN },
    { "POST", "/api/v1/users/{name}/revoke", h_user_revoke, ROLE_ADMIN },
    { "GET", "/api/v1/enroll/ca", h_ca, ROLE_PUBLIC },
    { "POST", "/api/v1/enroll", h_enroll, ROLE_PUBLIC },
    { "POST", "/api/v1/renew", h_renew, ROLE_ALL },
    { NULL, NULL, NULL, 0 },
};
