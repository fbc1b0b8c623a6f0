/* fuzz_api.c - the JSON body (and query string) of each hub endpoint, all
 * the way through its handler and a real SQLite inventory: a state
 * directory made by state_init, a small fleet created at start-up, and the
 * database restored to that snapshot after every input (sqlite3_backup).
 * Input: byte 0 picks the endpoint, byte 1 the caller's role; then one line
 * of query string, one line for the path parameter (empty: an existing
 * entity), and the rest is the body.
 * Checks: the handler completes synchronously with a status; every 4xx/5xx
 * is the documented {"error": {"code", "message"}} JSON; no 500 (a request
 * must never make the hub fail internally); success bodies are JSON. */
#include <stdio.h>
#include <string.h>
#include "../../hub/api/api.h"
#include "../../hub/api/api_checkin.h"
#include "../../hub/api/api_config.h"
#include "../../hub/http/routes.h"
#include "../../hub/hub.h"
#include "../../hub/inventory/db.h"
#include "../../hub/inventory/fleet.h"
#include "../../hub/inventory/inventory.h"
#include "../../hub/state.h"
#include "error.h"
#include "fuzz.h"
#include "json.h"


static const struct route *const tables[] = {
    inventory_routes, config_routes, import_routes, audit_routes, plan_routes,
    enroll_routes, checkin_routes, NULL,
};

/* Endpoints; %s is the path parameter (default in the third column). */
static const struct ep {
    const char *method, *target, *dflt;
} eps[] = {
    { "POST", "/api/v1/groups", NULL },
    { "PATCH", "/api/v1/groups/%s", "1" },
    { "DELETE", "/api/v1/groups/%s", "2" },
    { "POST", "/api/v1/clusters", NULL },
    { "PATCH", "/api/v1/clusters/%s", "store-0001" },
    { "DELETE", "/api/v1/clusters/%s", "store-0002" },
    { "POST", "/api/v1/namespaces", NULL },
    { "PATCH", "/api/v1/namespaces/%s", "web" },
    { "DELETE", "/api/v1/namespaces/%s", "web" },
    { "POST", "/api/v1/applications", NULL },
    { "PATCH", "/api/v1/applications/%s", "shop" },
    { "DELETE", "/api/v1/applications/%s", "shop" },
    { "POST", "/api/v1/policies", NULL },
    { "PATCH", "/api/v1/policies/%s", "quota" },
    { "DELETE", "/api/v1/policies/%s", "quota" },
    { "GET", "/api/v1/groups", NULL },
    { "GET", "/api/v1/clusters", NULL },
    { "GET", "/api/v1/namespaces", NULL },
    { "GET", "/api/v1/applications", NULL },
    { "GET", "/api/v1/policies", NULL },
    { "GET", "/api/v1/audit", NULL },
    { "GET", "/api/v1/clusters/%s", "store-0001" },
    { "GET", "/api/v1/groups/%s", "1" },
    { "PUT", "/api/v1/clusters/store-0001/config/%s", "app.replicas" },
    { "PUT", "/api/v1/groups/1/config/%s", "app.replicas" },
    { "DELETE", "/api/v1/clusters/store-0001/config/%s", "app.replicas" },
    { "GET", "/api/v1/clusters/%s/config", "store-0001" },
    { "GET", "/api/v1/clusters/%s/assignments", "store-0001" },
    { "POST", "/api/v1/clusters:import", NULL },
    { "POST", "/api/v1/clusters/%s/checkin", "store-0001" },
    { "GET", "/api/v1/clusters/%s/status", "store-0001" },
    { "POST", "/api/v1/clusters/%s/enroll-code", "store-0001" },
    { "POST", "/api/v1/clusters/%s/revoke", "store-0002" },
    { "POST", "/api/v1/users", NULL },
    { "POST", "/api/v1/users/%s/enroll-code", "alice" },
    { "POST", "/api/v1/users/%s/revoke", "alice" },
    { "POST", "/api/v1/enroll", NULL },
    { "POST", "/api/v1/renew", NULL },
    { "GET", "/api/v1/enroll/ca", NULL },
};
#define N_EPS (sizeof(eps) / sizeof(eps[0]))

static const struct who {
    const char *kind, *name;
    int role;
} whos[] = {
    { "user", "admin", ROLE_ADMIN },
    { "user", "ops", ROLE_OPERATOR },
    { "user", "tech", ROLE_TECHNICIAN },
    { "user", "web-team", ROLE_APPTEAM },
    { "cluster", "store-0001", ROLE_AGENT },
};

static struct hub hub;
static sqlite3 *snapshot;

/* Runs one request; returns the status (0 when no route or role). */
static int call(const struct who *w, const char *method, const char *target, size_t tlen,
                const char *body, size_t blen, bool check)
{
    struct http_exchange x;
    const char *q = memchr(target, '?', tlen);
    int pm = 0, status = 0;

    memset(&x, 0, sizeof(x));
    x.hub = &hub;
    x.req.method_name = method;
    x.req.target = (struct re_str){ target, tlen };
    x.req.path = (struct re_str){ target, q ? (size_t)(q - target) : tlen };
    x.req.query = q ? (struct re_str){ q + 1, tlen - (size_t)(q - target) - 1 }
                    : (struct re_str){ target + tlen, 0 };
    x.req.body = (struct re_str){ body, blen };
    x.req.peer.authenticated = true;
    snprintf(x.req.peer.kind, sizeof(x.req.peer.kind), "%s", w->kind);
    snprintf(x.req.peer.name, sizeof(x.req.peer.name), "%s", w->name);
    snprintf(x.req.peer.remote_addr, sizeof(x.req.peer.remote_addr), "127.0.0.1");
    x.req.peer.role = w->role;
    http_response_init(&x.res, 64u << 20);

    const struct route *r = routes_match(tables, &x, &pm);
    if (!r || (r->roles != ROLE_PUBLIC && !(r->roles & (unsigned)w->role)))
        goto out;
    x.route = r->pattern;
    int rc = r->fn(&x);
    FUZZ_CHECK(rc != HTTP_DEFERRED);
    if (rc < 0 && x.res.status == 0)
        http_response_from_err(&x.res, rc, NULL, NULL);
    status = x.res.status;
    if (!check)
        goto out;
    FUZZ_CHECK(status >= 200 && status <= 599);
    if (status == 500)
        fprintf(stderr, "500 for %s %.*s: %.*s\n", method, (int)tlen, target,
                (int)x.res.body.len, x.res.body.ptr ? x.res.body.ptr : "");
    FUZZ_CHECK(status != 500);
    const char *ct = x.res.content_type ? x.res.content_type : "application/json";
    if (x.res.body.len && strncmp(ct, "application/json", 16) == 0) {
        cJSON *j = NULL;
        FUZZ_CHECK(re_json_parse(&j, re_buf_str(&x.res.body), 64, NULL) == 0);
        if (status >= 400) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
            FUZZ_CHECK(cJSON_IsObject(e));
            FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "code")));
            FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")));
        }
        cJSON_Delete(j);
    } else if (status >= 400) {
        FUZZ_CHECK(!"an error without a JSON body");
    }
out:
    http_response_release(&x.res);
    return status;
}

static void seed(const char *method, const char *target, const char *body)
{
    int s = call(&whos[0], method, target, strlen(target), body, strlen(body), false);
    if (s < 200 || s > 299) {
        fprintf(stderr, "fuzz_api: set-up request %s %s answered %d\n", method, target, s);
        fprintf(stderr, "body: %s\n", body);
        abort();
    }
}

static void setup(void)
{
    char dir[512], path[600];
    struct re_buf err;
    struct state_init_opts o = { 0 };

    if (hub.db)
        return;
    snprintf(dir, sizeof(dir), "%s/hub", fuzz_tmpdir());
    o.dir = dir;
    re_buf_init(&err, 4096);
    if (state_init(&o, &err) < 0) {
        fprintf(stderr, "fuzz_api: state_init: %s\n", err.ptr);
        abort();
    }
    re_buf_release(&err);
    hub_config_defaults(&hub.cfg);
    hub.cfg.dir = strdup(dir);
    hub.cfg.limits.max_json_depth = 16;
    snprintf(path, sizeof(path), "%s/hub.db", dir);
    FUZZ_CHECK(db_open(&hub.db, path) == 0);

    seed("POST", "/api/v1/groups", "{\"path\": \"/stores/central/tx\"}");
    seed("POST", "/api/v1/groups", "{\"path\": \"/rings/beta\"}");
    seed("POST", "/api/v1/clusters", "{\"name\": \"store-0001\", \"groups\": [\"/stores/central/tx\"],"
         " \"metadata\": {\"ring\": \"prod\"}}");
    seed("POST", "/api/v1/clusters", "{\"name\": \"store-0002\", \"groups\": [\"/rings/beta\"]}");
    seed("POST", "/api/v1/namespaces", "{\"name\": \"web\", \"owners\": [\"user/web-team\"],"
         " \"expression\": \"/g/stores or /g/rings/beta\", \"quota\": {\"cpu\": \"2\","
         " \"memory\": \"4Gi\", \"pods\": 20}, \"network\": {\"default_deny\": true}}");
    seed("POST", "/api/v1/applications", "{\"name\": \"shop\", \"namespace\": \"web\", \"source\":"
         " {\"git\": {\"url\": \"https://git.example.com/shop.git\", \"ref\": \"main\","
         " \"path\": \"deploy\"}}, \"versions\": [{\"version\": \"1\", \"ref\": \"v1\","
         " \"expression\": \"/g/stores\"}, {\"version\": \"2\", \"ref\": \"v2\","
         " \"expression\": \"/m/ring/prod\"}]}");
    seed("POST", "/api/v1/policies", "{\"name\": \"quota\", \"yaml\": \"apiVersion: v1\\nkind: X\\nmetadata:\\n  name: x\\n  namespace: web\\n\","
         " \"namespaces\": [\"web\"]}");
    seed("PUT", "/api/v1/groups/1/config/app.replicas", "{\"value\": \"3\"}");
    seed("POST", "/api/v1/users", "{\"name\": \"alice\", \"role\": \"operator\"}");

    FUZZ_CHECK(sqlite3_open(":memory:", &snapshot) == SQLITE_OK);
    sqlite3_backup *b = sqlite3_backup_init(snapshot, "main", hub.db, "main");
    FUZZ_CHECK(b && sqlite3_backup_step(b, -1) == SQLITE_DONE);
    sqlite3_backup_finish(b);
}

static void restore(void)
{
    sqlite3_backup *b = sqlite3_backup_init(hub.db, "main", snapshot, "main");
    FUZZ_CHECK(b && sqlite3_backup_step(b, -1) == SQLITE_DONE);
    sqlite3_backup_finish(b);
    fleet_invalidate();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    const struct ep *ep = &eps[fuzz_byte(&in) % N_EPS];
    const struct who *w = &whos[fuzz_byte(&in) % (sizeof(whos) / sizeof(whos[0]))];
    size_t qlen, plen;
    char *query, *param;
    struct re_buf target;

    setup();
    query = fuzz_line(&in, &qlen);
    param = fuzz_line(&in, &plen);
    FUZZ_CHECK(query && param);
    re_buf_init(&target, 1 << 20);
    /* The server refuses a NUL in the target before any handler sees it. */
    if (memchr(query, '\0', qlen) || memchr(param, '\0', plen))
        goto out;
    const char *pct = strstr(ep->target, "%s");
    if (pct) {
        re_buf_append(&target, ep->target, (size_t)(pct - ep->target));
        re_buf_append_str(&target, plen ? param : ep->dflt);
        re_buf_append_str(&target, pct + 2);
    } else {
        re_buf_append_str(&target, ep->target);
    }
    if (qlen) {
        re_buf_append_str(&target, "?");
        re_buf_append(&target, query, qlen);
    }
    int changes = sqlite3_total_changes(hub.db);
    call(w, ep->method, target.ptr, target.len, (const char *)in.p, in.n, true);
    if (sqlite3_total_changes(hub.db) != changes)
        restore();
out:
    re_buf_release(&target);
    free(query);
    free(param);
    return 0;
}
