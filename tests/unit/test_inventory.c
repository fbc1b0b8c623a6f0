/* test_inventory.c - the inventory API through its handlers: a real database
 * in a temporary directory, requests built as struct http_exchange. */
#include <stdarg.h>
#include <unistd.h>
#include "../../hub/api/api.h"
#include "../../hub/api/api_config.h"
#include "../../hub/http/routes.h"
#include "../../hub/hub.h"
#include "../../hub/inventory/config_values.h"
#include "../../hub/inventory/db.h"
#include "../../hub/inventory/fleet.h"
#include "../../hub/inventory/inventory.h"
#include "../../hub/inventory/plan.h"
#include "error.h"
#include "json.h"
#include "testlib.h"


static const struct route *const tables[] = {
    inventory_routes, config_routes, import_routes, audit_routes, plan_routes, NULL,
};

static struct hub hub;

static void setup(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/hub.db", test_tmpdir());
    memset(&hub, 0, sizeof(hub));
    hub.cfg.limits.max_json_depth = 16;
    CHECK_EQ_INT(db_open(&hub.db, path), 0);
}

struct resp {
    int status;
    cJSON *json;
    char headers[1024];
};

static struct resp last;

/* Calls METHOD TARGET as identity "kind/name" with role; body may be NULL.
 * extra: one "Name: value" header or NULL. Returns the status. */
static int call_as(const char *who, int role, const char *method, const char *target,
                   const char *body, const char *extra)
{
    struct http_exchange x;
    struct http_header hdr[1];
    const char *q = strchr(target, '?');
    const char *slash = strchr(who, '/');
    int pm = 0;

    memset(&x, 0, sizeof(x));
    x.hub = &hub;
    x.req.method_name = method;
    x.req.target = re_str_c(target);
    x.req.path = (struct re_str){ target, q ? (size_t)(q - target) : strlen(target) };
    x.req.query = q ? re_str_c(q + 1) : RE_STR_NULL;
    x.req.body = re_str_c(body ? body : "");
    if (extra) {
        const char *colon = strchr(extra, ':');
        hdr[0].name = (struct re_str){ extra, (size_t)(colon - extra) };
        hdr[0].value = re_str_c(colon + 2);
        x.req.headers = hdr;
        x.req.n_headers = 1;
    }
    x.req.peer.authenticated = true;
    snprintf(x.req.peer.kind, sizeof(x.req.peer.kind), "%.*s", (int)(slash - who), who);
    snprintf(x.req.peer.name, sizeof(x.req.peer.name), "%s", slash + 1);
    x.req.peer.role = role;
    http_response_init(&x.res, 64 << 20);

    cJSON_Delete(last.json);
    memset(&last, 0, sizeof(last));
    const struct route *r = routes_match(tables, &x, &pm);
    if (!r) {
        last.status = pm ? 405 : 404;
    } else if (!(r->roles & (unsigned)role)) {
        last.status = 403;
    } else {
        CHECK_EQ_INT(r->fn(&x), 0);
        last.status = x.res.status;
        if (x.res.body.len)
            last.json = cJSON_ParseWithLength(x.res.body.ptr, x.res.body.len);
        snprintf(last.headers, sizeof(last.headers), "%s", x.res.headers.ptr ? x.res.headers.ptr : "");
    }
    http_response_release(&x.res);
    return last.status;
}

static int call(const char *method, const char *target, const char *body)
{
    return call_as("user/admin", ROLE_ADMIN, method, target, body, NULL);
}

static const char *err_field(void)
{
    cJSON *e = cJSON_GetObjectItem(last.json, "error");
    cJSON *f = cJSON_GetObjectItem(e, "field");
    return cJSON_IsString(f) ? f->valuestring : "(none)";
}

static const char *err_message(void)
{
    cJSON *e = cJSON_GetObjectItem(last.json, "error");
    cJSON *f = cJSON_GetObjectItem(e, "message");
    return cJSON_IsString(f) ? f->valuestring : "(none)";
}

static const char *str_at(const cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int count_rows(const char *sql)
{
    sqlite3_stmt *st;
    int n = -1;
    CHECK(sqlite3_prepare_v2(hub.db, sql, -1, &st, NULL) == SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void fleet_basics(void)
{
    setup();
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": \"/stores/central/tx\"}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": \"/rings/beta\"}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"store-0001\", \"groups\":"
                      " [\"/stores/central/tx\"], \"metadata\": {\"ring\": \"prod\"}}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"store-0002\", \"groups\":"
                      " [\"/stores/central\", \"/rings/beta\"]}"), 201);
    struct fleet *f = NULL;
    struct bitset *set = NULL;
    CHECK_EQ_INT(fleet_acquire(&f, hub.db), 0);
    CHECK_EQ_INT(fleet_size(f), 2);
    size_t i1 = fleet_index_of_name(f, "store-0001");
    CHECK(i1 != FLEET_NONE);
    CHECK_EQ_STR(fleet_cluster_name(f, i1), "store-0001");
    CHECK_EQ_INT(fleet_index_of_name(f, "nope"), FLEET_NONE);
    const char *e = "/g/stores and not /m/ring/prod";
    CHECK_EQ_INT(fleet_select(&set, f, e, strlen(e), NULL), 0);
    CHECK_EQ_INT(bitset_count(set), 1);
    CHECK(bitset_test(set, fleet_index_of_name(f, "store-0002")));
    bitset_free(set);
    e = "/g/stores/central";
    CHECK_EQ_INT(fleet_select(&set, f, e, strlen(e), NULL), 0);
    CHECK_EQ_INT(bitset_count(set), 2);
    bitset_free(set);
    e = "/g/stores/cent";   /* a prefix that is not a path segment */
    CHECK_EQ_INT(fleet_select(&set, f, e, strlen(e), NULL), 0);
    CHECK_EQ_INT(bitset_count(set), 0);
    bitset_free(set);
    fleet_release(f);
    fleet_cache_clear();
}

static void groups_tree(void)
{
    setup();
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": \"/stores/central/tx\"}"), 201);
    CHECK(strstr(last.headers, "Location: /api/v1/groups/"));
    CHECK(strstr(last.headers, "ETag: \"1\""));
    CHECK_EQ_STR(str_at(last.json, "parent"), "/stores/central");
    /* ancestors were created */
    CHECK_EQ_INT(call("GET", "/api/v1/groups/%2Fstores%2Fcentral", NULL), 200);
    CHECK_EQ_STR(str_at(last.json, "path"), "/stores/central");
    CHECK_EQ_INT(call("GET", "/api/v1/groups/1", NULL), 200);
    CHECK_EQ_STR(str_at(last.json, "path"), "/stores");
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": \"/stores/central/tx\"}"), 409);
    CHECK_EQ_STR(err_field(), "path");
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": \"/stores//tx\"}"), 400);
    CHECK_EQ_STR(err_field(), "path");
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": \"/stores/../tx\"}"), 400);
    CHECK_EQ_STR(err_field(), "path");
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": 5}"), 400);
    CHECK_EQ_STR(err_field(), "path");
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": \"/a\", \"colour\": 1}"), 400);
    CHECK_EQ_STR(err_field(), "colour");
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": \"/a\", \"id\": 1}"), 400);
    CHECK_EQ_STR(err_field(), "id");
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "[1]"), 400);
    CHECK_EQ_INT(call("POST", "/api/v1/groups", "{\"path\": "), 400);
    CHECK_EQ_INT(call("POST", "/api/v1/groups",
                      "{\"path\":\"/a\",\"metadata\":{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}}"),
                 400);
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(last.json, "error"), "code"), "too_deep");
    /* delete with clusters: refused, then cascade */
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s1\", \"groups\": [\"/stores/central/tx\"]}"), 201);
    CHECK_EQ_INT(call("DELETE", "/api/v1/groups/%2Fstores", NULL), 409);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM groups"), 3);
    CHECK_EQ_INT(call("DELETE", "/api/v1/groups/%2Fstores?cascade=true&dry_run=true", NULL), 200);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(last.json, "dry_run")));
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM groups"), 3);
    CHECK_EQ_INT(call("DELETE", "/api/v1/groups/%2Fstores?cascade=true", NULL), 204);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM groups"), 0);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM clusters"), 1);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM cluster_groups"), 0);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM audit WHERE action = 'delete'"), 3);
}

static void clusters_crud(void)
{
    setup();
    call("POST", "/api/v1/groups", "{\"path\": \"/stores/central/tx\"}");
    call("POST", "/api/v1/groups", "{\"path\": \"/rings/beta\"}");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"store-0042\", \"groups\":"
                      " [\"/stores/central/tx\", \"/rings/beta\"], \"metadata\":"
                      " {\"format\": \"drive-thru\", \"note\": \"a: b\\n# c\\n---\\n{x}\"}}"), 201);
    int64_t id = (int64_t)cJSON_GetObjectItem(last.json, "id")->valuedouble;
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "groups")), 2);
    CHECK_EQ_STR(str_at(last.json, "created_by"), "user/admin");
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/clusters/%lld", (long long)id);
    CHECK_EQ_INT(call("GET", path, NULL), 200);
    CHECK_EQ_STR(str_at(last.json, "name"), "store-0042");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters/store-0042", NULL), 200);
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(last.json, "metadata"), "note"), "a: b\n# c\n---\n{x}");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters/store-9999", NULL), 404);
    /* bad input */
    const char *bad_names[] = { "\"../x\"", "\"A_B\"", "\"\"",
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "17", NULL };
    for (int i = 0; bad_names[i]; i++) {
        char body[200];
        snprintf(body, sizeof(body), "{\"name\": %s}", bad_names[i]);
        CHECK_EQ_INT(call("POST", "/api/v1/clusters", body), 400);
        CHECK_EQ_STR(err_field(), "name");
    }
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"store-0042\"}"), 409);
    CHECK_EQ_STR(err_field(), "name");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s2\", \"groups\": [\"/nope\"]}"), 400);
    CHECK_EQ_STR(err_field(), "groups");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s2\", \"groups\": \"/rings/beta\"}"), 400);
    CHECK_EQ_STR(err_field(), "groups");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s2\", \"metadata\": {\"k\": 1}}"), 400);
    CHECK_EQ_STR(err_field(), "metadata.k");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s2\", \"metadata\": {\"k\": \"a\\u0001\"}}"), 400);
    CHECK_EQ_STR(err_field(), "metadata.k");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s2\", \"wheels\": 4}"), 400);
    CHECK_EQ_STR(err_field(), "wheels");
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM clusters"), 1);
    /* PATCH with If-Match */
    CHECK_EQ_INT(call_as("user/admin", ROLE_ADMIN, "PATCH", "/api/v1/clusters/store-0042",
                         "{\"description\": \"Dallas\", \"metadata\": {\"format\": null, \"ring\": \"beta\"}}",
                         "If-Match: 1"), 200);
    CHECK_EQ_INT(cJSON_GetObjectItem(last.json, "version")->valuedouble, 2);
    CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(last.json, "metadata"), "format"));
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(last.json, "metadata"), "ring"), "beta");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "groups")), 2);
    CHECK_EQ_INT(call_as("user/admin", ROLE_ADMIN, "PATCH", "/api/v1/clusters/store-0042",
                         "{\"description\": \"x\"}", "If-Match: \"1\""), 412);
    CHECK_EQ_INT(call("PATCH", "/api/v1/clusters/store-0042", "{\"name\": \"other\"}"), 400);
    CHECK_EQ_STR(err_field(), "name");
    CHECK_EQ_INT(call("PATCH", "/api/v1/clusters/store-0042", "{\"groups\": [\"/rings/beta\"]}"), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "groups")), 1);
    /* dry run changes nothing */
    CHECK_EQ_INT(call("POST", "/api/v1/clusters?dry_run=true", "{\"name\": \"s3\"}"), 200);
    CHECK_EQ_INT(cJSON_GetObjectItem(last.json, "status")->valuedouble, 201);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM clusters"), 1);
    CHECK_EQ_INT(call("DELETE", "/api/v1/clusters/store-0042", NULL), 204);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM clusters"), 0);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM audit WHERE entity = 'cluster'"), 4);
}

static void lists_and_paging(void)
{
    setup();
    call("POST", "/api/v1/groups", "{\"path\": \"/stores/central\"}");
    call("POST", "/api/v1/groups", "{\"path\": \"/stores/east\"}");
    call("POST", "/api/v1/groups", "{\"path\": \"/rings/beta\"}");
    for (int i = 1; i <= 25; i++) {
        char body[300];
        snprintf(body, sizeof(body), "{\"name\": \"store-%04d\", \"groups\": [\"%s\"%s],"
                 " \"metadata\": {\"ring\": \"%s\"}, \"description\": \"%s\"}", i,
                 i % 2 ? "/stores/central" : "/stores/east", i % 5 == 0 ? ", \"/rings/beta\"" : "",
                 i % 3 ? "prod" : "canary", i == 7 ? "Lucky Seven" : "");
        CHECK_EQ_INT(call("POST", "/api/v1/clusters", body), 201);
    }
    /* cursor walk by name desc, 7 a page */
    int seen[26] = { 0 }, pages = 0;
    char target[8192];
    snprintf(target, sizeof(target), "/api/v1/clusters?limit=7&orderby=name%%20desc");
    char prev[64] = "zzzz";
    for (;;) {
        CHECK_EQ_INT(call("GET", target, NULL), 200);
        cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(last.json, "items")) {
            const char *n = str_at(it, "name");
            CHECK(strcmp(n, prev) < 0);
            snprintf(prev, sizeof(prev), "%s", n);
            seen[strtol(n + 6, NULL, 10)]++;
        }
        pages++;
        const char *next = str_at(last.json, "next");
        if (!next)
            break;
        snprintf(target, sizeof(target), "/api/v1/clusters?limit=7&next=%s", next);
        /* a concurrent insert does not disturb the walk */
        if (pages == 1)
            call("POST", "/api/v1/clusters", "{\"name\": \"store-0000\"}");
    }
    CHECK_EQ_INT(pages, 4);
    for (int i = 1; i <= 25; i++)
        CHECK_EQ_INT(seen[i], 1);
    CHECK_EQ_INT(seen[0], 1);   /* it sorts last in desc order, after the cursor */
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?limit=0", NULL), 400);
    CHECK_EQ_STR(err_field(), "limit");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?limit=1000000", NULL), 400);
    CHECK_EQ_STR(err_field(), "limit");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?next=garbage", NULL), 400);
    CHECK_EQ_STR(err_field(), "next");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?orderby=colour", NULL), 400);
    CHECK_EQ_STR(err_field(), "orderby");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?colour=red", NULL), 400);
    CHECK_EQ_STR(err_field(), "colour");
    /* filters */
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?expression=/g/rings/beta%20or%20/c/store-0001", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 6);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(last.json, "next")));
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?expression=(/g/rings/beta", NULL), 400);
    CHECK_EQ_STR(err_field(), "expression");
    CHECK(strstr(err_message(), "position"));
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?expression=/x/y", NULL), 400);
    CHECK_EQ_STR(err_field(), "expression");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?expression=/g/rings%20and", NULL), 400);
    CHECK_EQ_STR(err_field(), "expression");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?group=/stores/central&limit=1000", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 13);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?group=/stores", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 25);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?group=/nope", NULL), 404);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?metadata.ring=canary", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 8);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?metadata.ring=canary&group=/stores/central", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 4);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?search=lucky", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 1);
    /* filters survive in the cursor */
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?group=/stores/east&limit=5&orderby=created_at", NULL), 200);
    int total = cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items"));
    while (str_at(last.json, "next")) {
        snprintf(target, sizeof(target), "/api/v1/clusters?limit=5&next=%s", str_at(last.json, "next"));
        CHECK_EQ_INT(call("GET", target, NULL), 200);
        total += cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items"));
    }
    CHECK_EQ_INT(total, 12);
}

static void config_merge(void)
{
    setup();
    call("POST", "/api/v1/groups", "{\"path\": \"/stores/central/tx\"}");
    call("POST", "/api/v1/groups", "{\"path\": \"/rings/beta\"}");
    call("POST", "/api/v1/groups", "{\"path\": \"/formats/dt\"}");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s1\", \"groups\":"
                      " [\"/stores/central/tx\", \"/rings/beta\", \"/formats/dt\"]}"), 201);
    /* group 1 is /stores */
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/1/config/tax", "{\"value\": \"0.06\"}"), 201);
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/%2Fstores%2Fcentral%2Ftx/config/tax", "{\"value\": \"0.0825\"}"), 201);
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/%2Frings%2Fbeta/config/color", "{\"value\": \"blue\"}"), 201);
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/%2Frings%2Fbeta/config/color", "{\"value\": \"red\"}"), 200);
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/%2Fformats%2Fdt/config/color", "{\"value\": \"green\"}"), 201);
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/%2Fformats%2Fdt/config/menu", "{\"value\": \"a: b\\n\"}"), 201);
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/%2Frings/config/menu", "{\"value\": \"x\"}"), 201);
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/%2Fformats/config/menu", "{\"value\": \"y\"}"), 201);
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/1/config/bad%20key", "{\"value\": \"1\"}"), 400);
    CHECK_EQ_STR(err_field(), "key");
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/1/config/k", "{\"value\": 1}"), 400);
    CHECK_EQ_STR(err_field(), "value");
    CHECK_EQ_INT(call("PUT", "/api/v1/groups/1/config/k", "{\"value\": \"1\", \"x\": 2}"), 400);
    CHECK_EQ_STR(err_field(), "x");
    CHECK_EQ_INT(call("GET", "/api/v1/clusters/s1/config", NULL), 200);
    cJSON *values = cJSON_GetObjectItem(last.json, "values");
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(values, "tax"), "value"), "0.0825");
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(values, "tax"), "source"), "/stores/central/tx");
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(values, "menu"), "value"), "a: b\n");
    CHECK(!cJSON_GetObjectItem(values, "color"));
    cJSON *conf = cJSON_GetObjectItem(last.json, "conflicts");
    CHECK_EQ_INT(cJSON_GetArraySize(conf), 1);
    CHECK_EQ_STR(str_at(cJSON_GetArrayItem(conf, 0), "key"), "color");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(conf, 0), "candidates")), 2);
    /* the cluster's own value resolves it */
    CHECK_EQ_INT(call("PUT", "/api/v1/clusters/s1/config/color", "{\"value\": \"black\"}"), 201);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters/s1/config", NULL), 200);
    values = cJSON_GetObjectItem(last.json, "values");
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(values, "color"), "source"), "cluster");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "conflicts")), 0);
    CHECK_EQ_INT(call("DELETE", "/api/v1/clusters/s1/config/color", NULL), 204);
    CHECK_EQ_INT(call("DELETE", "/api/v1/clusters/s1/config/color", NULL), 404);
    CHECK_EQ_INT(call("GET", "/api/v1/groups/1/config", NULL), 200);
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(last.json, "values"), "tax"), "0.06");
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM audit WHERE entity = 'config'"), 10);
}

static void import_all_or_nothing(void)
{
    setup();
    call("POST", "/api/v1/groups", "{\"path\": \"/stores/central\"}");
    const char *csv = "name,groups,metadata,metadata.note\n"
                      "store-1,/stores/central;/rings/beta,ring=beta;format=dt,\"a, \"\"b\"\"\"\n"
                      "Store_2,/stores/central,,\n"
                      "store-3,/nope,,\n"
                      "store-9,,,\n"
                      "store-9,,,\n";
    CHECK_EQ_INT(call_as("user/admin", ROLE_ADMIN, "POST", "/api/v1/clusters:import", csv,
                         "Content-Type: text/csv"), 400);
    cJSON *errs = cJSON_GetObjectItem(last.json, "errors");
    CHECK_EQ_INT(cJSON_GetArraySize(errs), 4);
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(errs, 0), "line")->valuedouble, 2);
    CHECK_EQ_STR(str_at(cJSON_GetArrayItem(errs, 0), "field"), "groups");   /* /rings/beta */
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(errs, 1), "line")->valuedouble, 3);
    CHECK_EQ_STR(str_at(cJSON_GetArrayItem(errs, 1), "field"), "name");
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(errs, 2), "line")->valuedouble, 4);
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(errs, 3), "line")->valuedouble, 6);
    CHECK(strstr(str_at(cJSON_GetArrayItem(errs, 3), "message"), "already exists"));
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM clusters"), 0);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM groups"), 2);
    const char *good = "name,groups,metadata,metadata.note\n"
                       "store-1,/stores/central;/rings/beta,ring=beta;format=dt,\"a, \"\"b\"\"\n# c\"\r\n"
                       "store-2,/stores/central,,\n";
    CHECK_EQ_INT(call_as("user/admin", ROLE_ADMIN, "POST", "/api/v1/clusters:import?create_groups=true",
                         good, "Content-Type: text/csv"), 201);
    CHECK_EQ_INT(cJSON_GetObjectItem(last.json, "created")->valuedouble, 2);
    CHECK_EQ_INT(cJSON_GetObjectItem(last.json, "groups_created")->valuedouble, 2);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters/store-1", NULL), 200);
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(last.json, "metadata"), "note"), "a, \"b\"\n# c");
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(last.json, "metadata"), "format"), "dt");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "groups")), 2);
    /* JSON */
    CHECK_EQ_INT(call("POST", "/api/v1/clusters:import", "[{\"name\": \"store-3\", \"groups\": [\"/rings/beta\"]},"
                      " {\"name\": \"store-4\", \"bogus\": 1}, 7]"), 400);
    errs = cJSON_GetObjectItem(last.json, "errors");
    CHECK_EQ_INT(cJSON_GetArraySize(errs), 2);
    CHECK_EQ_STR(str_at(cJSON_GetArrayItem(errs, 0), "field"), "bogus");
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(errs, 1), "line")->valuedouble, 3);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM clusters"), 2);
    CHECK_EQ_INT(call("POST", "/api/v1/clusters:import", "[{\"name\": \"store-3\", \"groups\": [\"/rings/beta\"]}]"), 201);
    CHECK_EQ_INT(count_rows("SELECT count(*) FROM clusters"), 3);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?expression=/g/rings/beta", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 2);
}

static void namespaces_apps_policies(void)
{
    setup();
    call("POST", "/api/v1/groups", "{\"path\": \"/rings/beta\"}");
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"pos\", \"owners\": [\"user/alice\"],"
                      " \"expression\": \"/g/rings/beta\", \"quota\": {\"cpu\": \"2\", \"memory\": \"4Gi\","
                      " \"pods\": 20}, \"network\": {\"default_deny\": true}}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"x\", \"expression\": \"(/g/a\"}"), 400);
    CHECK_EQ_STR(err_field(), "expression");
    CHECK(strstr(err_message(), "position"));
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"x\", \"quota\": {\"cpu\": \"lots\"}}"), 400);
    CHECK_EQ_STR(err_field(), "quota.cpu");
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"x\", \"owners\": [\"alice\"]}"), 400);
    CHECK_EQ_STR(err_field(), "owners");
    /* a cycle through /n/ */
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"a\", \"expression\": \"/n/b\"}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"b\", \"expression\": \"/n/a\"}"), 400);
    CHECK_EQ_STR(err_field(), "expression");
    /* applications */
    const char *app = "{\"name\": \"pos-api\", \"namespace\": \"pos\", \"source\": {\"git\":"
                      " {\"url\": \"https://git.example.com/pos.git\", \"ref\": \"main\", \"path\": \"deploy\"}},"
                      " \"versions\": [{\"version\": \"1\", \"ref\": \"v1\", \"expression\": \"/g/stores\"},"
                      " {\"version\": \"2\", \"ref\": \"v2\", \"expression\": \"/g/rings/beta\"}]}";
    CHECK_EQ_INT(call("POST", "/api/v1/applications", app), 201);
    CHECK_EQ_STR(str_at(last.json, "owner"), "user/admin");
    CHECK_EQ_INT(call("POST", "/api/v1/applications", "{\"name\": \"y\", \"namespace\": \"nope\"}"), 400);
    CHECK_EQ_STR(err_field(), "namespace");
    CHECK_EQ_INT(call("POST", "/api/v1/applications", "{\"name\": \"y\"}"), 400);
    CHECK_EQ_STR(err_field(), "namespace");
    CHECK_EQ_INT(call("POST", "/api/v1/applications", "{\"name\": \"y\", \"namespace\": \"pos\","
                      " \"versions\": [{\"version\": \"1\", \"expression\": \"/g/a or\"}]}"), 400);
    CHECK_EQ_STR(err_field(), "versions[0].expression");
    CHECK_EQ_INT(call("POST", "/api/v1/applications", "{\"name\": \"y\", \"namespace\": \"pos\","
                      " \"source\": {\"base\": {\"files\": {\"../etc/passwd\": \"x\"}}}}"), 400);
    CHECK_EQ_STR(err_field(), "source.base.files.../etc/passwd");
    CHECK_EQ_INT(call("POST", "/api/v1/applications", "{\"name\": \"y\", \"namespace\": \"pos\","
                      " \"source\": {\"git\": {\"url\": \"git://x\"}}}"), 400);
    CHECK_EQ_STR(err_field(), "source.git.url");
    CHECK_EQ_INT(call("PATCH", "/api/v1/applications/pos-api", "{\"namespace\": \"a\"}"), 400);
    CHECK_EQ_STR(err_field(), "namespace");
    CHECK_EQ_INT(call("GET", "/api/v1/applications?namespace=pos", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 1);
    CHECK_EQ_INT(call("DELETE", "/api/v1/namespaces/pos", NULL), 409);
    /* policies */
    CHECK_EQ_INT(call("POST", "/api/v1/policies", "{\"name\": \"no-latest\", \"yaml\": \"apiVersion: v1\\nkind: X\\nmetadata:\\n  name: x\\n  namespace: pos\\n\","
                      " \"namespaces\": [\"pos\"]}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/policies", "{\"name\": \"bad\", \"yaml\": \"a: [\"}"), 400);
    CHECK_EQ_STR(err_field(), "yaml");
    CHECK_EQ_INT(call("POST", "/api/v1/policies", "{\"name\": \"bad\", \"namespaces\": [\"zz\"]}"), 400);
    CHECK_EQ_STR(err_field(), "namespaces");
}

static void roles(void)
{
    setup();
    call("POST", "/api/v1/groups", "{\"path\": \"/stores\"}");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s1\"}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s2\"}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"pos\", \"owners\": [\"user/alice\"]}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"hr\", \"owners\": [\"user/bob\"]}"), 201);
    /* app team */
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "GET", "/api/v1/clusters", NULL, NULL), 200);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "POST", "/api/v1/clusters", "{\"name\": \"s3\"}", NULL), 403);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "POST", "/api/v1/groups", "{\"path\": \"/x\"}", NULL), 403);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "PATCH", "/api/v1/namespaces/pos", "{\"description\": \"mine\"}", NULL), 200);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "PATCH", "/api/v1/namespaces/hr", "{\"description\": \"mine\"}", NULL), 403);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "PATCH", "/api/v1/namespaces/pos", "{\"owners\": [\"user/bob\"]}", NULL), 403);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "POST", "/api/v1/namespaces", "{\"name\": \"new\"}", NULL), 201);
    CHECK_EQ_STR(cJSON_GetArrayItem(cJSON_GetObjectItem(last.json, "owners"), 0)->valuestring, "user/alice");
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "POST", "/api/v1/applications", "{\"name\": \"a1\", \"namespace\": \"pos\"}", NULL), 201);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "POST", "/api/v1/applications", "{\"name\": \"a2\", \"namespace\": \"hr\"}", NULL), 403);
    CHECK_EQ_INT(call_as("user/bob", ROLE_APPTEAM, "DELETE", "/api/v1/applications/a1", NULL, NULL), 403);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "DELETE", "/api/v1/applications/a1", NULL, NULL), 204);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "POST", "/api/v1/policies", "{\"name\": \"p\"}", NULL), 403);
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "GET", "/api/v1/audit", NULL, NULL), 200);   /* its own rows only (api_audit.c) */
    CHECK_EQ_INT(call_as("user/alice", ROLE_APPTEAM, "PUT", "/api/v1/clusters/s1/config/k", "{\"value\": \"v\"}", NULL), 403);
    /* technician */
    CHECK_EQ_INT(call_as("user/tom", ROLE_TECHNICIAN, "POST", "/api/v1/clusters", "{\"name\": \"s4\", \"groups\": [\"/stores\"]}", NULL), 201);
    CHECK_EQ_INT(call_as("user/tom", ROLE_TECHNICIAN, "GET", "/api/v1/clusters/s4", NULL, NULL), 200);
    CHECK_EQ_INT(call_as("user/tom", ROLE_TECHNICIAN, "DELETE", "/api/v1/clusters/s4", NULL, NULL), 403);
    CHECK_EQ_INT(call_as("user/tom", ROLE_TECHNICIAN, "PATCH", "/api/v1/clusters/s4", "{}", NULL), 403);
    CHECK_EQ_INT(call_as("user/tom", ROLE_TECHNICIAN, "GET", "/api/v1/namespaces", NULL, NULL), 403);
    CHECK_EQ_INT(call_as("user/tom", ROLE_TECHNICIAN, "POST", "/api/v1/clusters:import", "[]", NULL), 403);
    /* agent */
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "GET", "/api/v1/clusters/s1", NULL, NULL), 200);
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "GET", "/api/v1/clusters/s2", NULL, NULL), 403);
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "GET", "/api/v1/clusters/s1/config", NULL, NULL), 200);
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "GET", "/api/v1/clusters/s2/config", NULL, NULL), 403);
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "GET", "/api/v1/clusters", NULL, NULL), 403);
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "PATCH", "/api/v1/clusters/s1", "{}", NULL), 403);
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "GET", "/api/v1/namespaces", NULL, NULL), 403);
    /* operator */
    CHECK_EQ_INT(call_as("user/op", ROLE_OPERATOR, "DELETE", "/api/v1/clusters/s4", NULL, NULL), 204);
    CHECK_EQ_INT(call_as("user/op", ROLE_OPERATOR, "GET", "/api/v1/audit?actor=user/tom", NULL, NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 1);
}

static void audit_log(void)
{
    setup();
    for (int i = 0; i < 5; i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"name\": \"s%d\"}", i);
        CHECK_EQ_INT(call("POST", "/api/v1/clusters", body), 201);
    }
    CHECK_EQ_INT(call("PATCH", "/api/v1/clusters/s1", "{\"description\": \"d\"}"), 200);
    CHECK_EQ_INT(call("GET", "/api/v1/audit?entity=cluster&name=s1", NULL), 200);
    cJSON *items = cJSON_GetObjectItem(last.json, "items");
    CHECK_EQ_INT(cJSON_GetArraySize(items), 2);
    cJSON *first = cJSON_GetArrayItem(items, 0);
    CHECK_EQ_STR(str_at(first, "action"), "update");
    CHECK_EQ_STR(str_at(first, "actor"), "user/admin");
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(first, "before"), "description"), "");
    CHECK_EQ_STR(str_at(cJSON_GetObjectItem(first, "after"), "description"), "d");
    /* paging */
    int total = 0;
    char target[4096] = "/api/v1/audit?limit=2";
    for (;;) {
        CHECK_EQ_INT(call("GET", target, NULL), 200);
        total += cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items"));
        if (!str_at(last.json, "next"))
            break;
        snprintf(target, sizeof(target), "/api/v1/audit?limit=2&next=%s", str_at(last.json, "next"));
    }
    CHECK_EQ_INT(total, 6);
    CHECK_EQ_INT(call("GET", "/api/v1/audit?since=2000-01-01T00:00:00Z", NULL), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(last.json, "items")), 6);
    CHECK_EQ_INT(call("GET", "/api/v1/audit?since=yesterday", NULL), 400);
    CHECK_EQ_STR(err_field(), "since");
}

static void ring_plan(void)
{
    setup();
    call("POST", "/api/v1/groups", "{\"path\": \"/stores/central\"}");
    call("POST", "/api/v1/groups", "{\"path\": \"/rings/beta\"}");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s1\", \"groups\": [\"/stores/central\"]}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s2\", \"groups\": [\"/stores/central\", \"/rings/beta\"]}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s3\", \"groups\": [\"/rings/beta\"]}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/namespaces", "{\"name\": \"pos\", \"expression\": \"/g/stores\"}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/applications", "{\"name\": \"pos-api\", \"namespace\": \"pos\","
                      " \"versions\": [{\"version\": \"1.10\", \"image_tag\": \"b\", \"expression\": \"/g/rings/beta\"},"
                      " {\"version\": \"1.9\", \"image_tag\": \"a\", \"expression\": \"/g/stores\"}]}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/policies", "{\"name\": \"p-ns\", \"namespaces\": [\"pos\"]}"), 201);
    CHECK_EQ_INT(call("POST", "/api/v1/policies", "{\"name\": \"p-expr\", \"expression\": \"/c/s3\"}"), 201);
    struct plan *p = NULL;
    CHECK_EQ_INT(plan_build(&p, hub.db), 0);
    size_t s1 = fleet_index_of_name(p->fleet, "s1"), s2 = fleet_index_of_name(p->fleet, "s2"),
           s3 = fleet_index_of_name(p->fleet, "s3");
    CHECK_EQ_INT(p->n_apps, 1);
    CHECK_EQ_STR(plan_app_version(p, 0, s1)->version, "1.9");
    CHECK_EQ_STR(plan_app_version(p, 0, s2)->version, "1.10");
    CHECK(plan_app_version(p, 0, s3) == NULL);       /* beta, but not in the namespace */
    CHECK(plan_namespace_applies(p, 0, s1) && !plan_namespace_applies(p, 0, s3));
    CHECK(plan_policy_applies(p, 0, s1) && !plan_policy_applies(p, 0, s3));
    CHECK(!plan_policy_applies(p, 1, s1) && plan_policy_applies(p, 1, s3));
    plan_free(p);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters/s2/assignments", NULL), 200);
    cJSON *apps = cJSON_GetObjectItem(last.json, "applications");
    CHECK_EQ_STR(str_at(cJSON_GetArrayItem(apps, 0), "version"), "1.10");
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "GET", "/api/v1/clusters/s2/assignments", NULL, NULL), 403);
    CHECK_EQ_INT(call_as("cluster/s1", ROLE_AGENT, "GET", "/api/v1/clusters/s1/assignments", NULL, NULL), 200);
}

/* What a client controls in a list request is bounded and answered with 400:
 * forged cursors (numbers that do not fit an int64), too many metadata
 * filters; an import's timezone follows the same rule as a create. */
static void list_limits(void)
{
    setup();
    CHECK_EQ_INT(call("POST", "/api/v1/clusters", "{\"name\": \"s1\"}"), 201);
    /* {"f":{},"i":1e300} */
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?next=eyJmIjp7fSwiaSI6MWUzMDB9", NULL), 400);
    CHECK_EQ_STR(err_field(), "next");
    CHECK_EQ_INT(call("GET", "/api/v1/audit?next=eyJmIjp7fSwiaSI6MWUzMDB9", NULL), 400);
    CHECK_EQ_STR(err_field(), "next");
    /* {"f":{},"i":5,"k":1e300} and a sound {"f":{},"i":5,"k":"s1"} */
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?orderby=name&next=eyJmIjp7fSwiaSI6NSwiayI6MWUzMDB9",
                      NULL), 400);
    CHECK_EQ_INT(call("GET", "/api/v1/clusters?next=eyJmIjp7fSwiaSI6NSwiayI6InMxIn0", NULL), 200);
    char target[1024] = "/api/v1/clusters?metadata.k0=v";
    for (int i = 1; i < 8; i++)
        snprintf(target + strlen(target), sizeof(target) - strlen(target), "&metadata.k%d=v", i);
    CHECK_EQ_INT(call("GET", target, NULL), 200);
    snprintf(target + strlen(target), sizeof(target) - strlen(target), "&metadata.k8=v");
    CHECK_EQ_INT(call("GET", target, NULL), 400);
    CHECK_EQ_STR(err_field(), "metadata.k8");
    CHECK_EQ_INT(call("POST", "/api/v1/clusters:import",
                      "[{\"name\": \"s2\", \"timezone\": \"Europe/Paris;x\"}]"), 400);
    CHECK_EQ_INT(call("POST", "/api/v1/clusters:import",
                      "[{\"name\": \"s2\", \"timezone\": \"Europe/Paris\"}]"), 201);
}

TEST_MAIN(T(ring_plan), T(fleet_basics), T(groups_tree), T(clusters_crud), T(lists_and_paging), T(config_merge),
          T(import_all_or_nothing), T(namespaces_apps_policies), T(roles), T(audit_log),
          T(list_limits))
