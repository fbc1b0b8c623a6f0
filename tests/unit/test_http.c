/* test_http.c - request helpers (headers, query, percent decoding), the JSON
 * error shape, error-to-status mapping, the router over a test table, roles,
 * and the Prometheus rendering of metrics. */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "error.h"
#include "http/http.h"
#include "http/routes.h"
#include "metrics.h"
#include "testlib.h"


static int h_dummy(struct http_exchange *x)
{
    (void)x;
    return 0;
}

static const struct route table_a[] = {
    { "GET", "/healthz", h_dummy, ROLE_PUBLIC },
    { "GET", "/api/v1/clusters", h_dummy, ROLE_ALL },
    { "POST", "/api/v1/clusters", h_dummy, ROLE_ADMIN },
    { "GET", "/api/v1/clusters/{name}", h_dummy, ROLE_ALL },
    { "GET", "/api/v1/clusters/{name}/config", h_dummy, ROLE_ALL },
    { "GET", "/api/v1/clusters/{name}/files/{path*}", h_dummy, ROLE_ALL },
    { NULL, NULL, NULL, 0 },
};
static const struct route table_b[] = {
    { "GET", "/api/v1/clusters/summary", h_dummy, ROLE_ADMIN },   /* literal beats {name} */
    { "POST", "/api/v1/clusters:import", h_dummy, ROLE_ADMIN },
    { "GET", "/git/{cluster}.git/info/refs", h_dummy, ROLE_AGENT },
    { "GET", "/api/v1/groups/{a}/{b}", h_dummy, ROLE_ADMIN },
    { NULL, NULL, NULL, 0 },
};

/* The router's production entry point reads this; the test provides it. */
const struct route *const hub_route_tables[] = { table_a, table_b, NULL };

static struct http_exchange ex(const char *method, const char *path)
{
    struct http_exchange x;
    memset(&x, 0, sizeof(x));
    x.req.method_name = method;
    x.req.path = re_str_c(path);
    return x;
}

static void test_header_get(void)
{
    struct http_header hs[] = {
        { RE_STR_LIT("Host"), RE_STR_LIT("localhost") },
        { RE_STR_LIT("If-Match"), RE_STR_LIT("7") },
    };
    struct http_request req = { .headers = hs, .n_headers = 2 };
    CHECK(re_str_eq_c(http_header_get(&req, "host"), "localhost"));
    CHECK(re_str_eq_c(http_header_get(&req, "IF-MATCH"), "7"));
    CHECK(http_header_get(&req, "If-None-Match").ptr == NULL);
    CHECK(http_header_get(&req, "Hos").ptr == NULL);
}

static void test_percent_decode(void)
{
    char *s = NULL;
    CHECK_EQ_INT(http_percent_decode(&s, RE_STR_LIT("a%20b+c%2Fd"), false), 0);
    CHECK_EQ_STR(s, "a b+c/d");
    free(s);
    CHECK_EQ_INT(http_percent_decode(&s, RE_STR_LIT("a%20b+c"), true), 0);
    CHECK_EQ_STR(s, "a b c");
    free(s);
    CHECK_EQ_INT(http_percent_decode(&s, RE_STR_LIT(""), true), 0);
    CHECK_EQ_STR(s, "");
    free(s);
    s = NULL;
    CHECK_EQ_INT(http_percent_decode(&s, RE_STR_LIT("%"), false), -RE_EINVAL);
    CHECK_EQ_INT(http_percent_decode(&s, RE_STR_LIT("ab%4"), false), -RE_EINVAL);
    CHECK_EQ_INT(http_percent_decode(&s, RE_STR_LIT("%zz"), false), -RE_EINVAL);
    CHECK_EQ_INT(http_percent_decode(&s, RE_STR_LIT("a%00b"), false), -RE_EINVAL);
    CHECK(s == NULL);
}

static void test_query_get(void)
{
    struct http_request req = { 0 };
    char *v = NULL;
    req.query = RE_STR_LIT("limit=10&expression=%2Fg%2Frings%2Fbeta%20or%20/c/store-1"
                           "&flag&empty=&metadata.ring=beta+1&bad=%zz&a%5Bb%5D=x&limit=20");
    CHECK_EQ_INT(http_query_get(&req, "limit", &v), 0);
    CHECK_EQ_STR(v, "10");                       /* the first occurrence */
    free(v);
    CHECK_EQ_INT(http_query_get(&req, "expression", &v), 0);
    CHECK_EQ_STR(v, "/g/rings/beta or /c/store-1");
    free(v);
    CHECK_EQ_INT(http_query_get(&req, "flag", &v), 0);
    CHECK_EQ_STR(v, "");
    free(v);
    CHECK_EQ_INT(http_query_get(&req, "empty", &v), 0);
    CHECK_EQ_STR(v, "");
    free(v);
    CHECK_EQ_INT(http_query_get(&req, "metadata.ring", &v), 0);
    CHECK_EQ_STR(v, "beta 1");
    free(v);
    CHECK_EQ_INT(http_query_get(&req, "a[b]", &v), 0);
    CHECK_EQ_STR(v, "x");
    free(v);
    v = NULL;
    CHECK_EQ_INT(http_query_get(&req, "bad", &v), -RE_EINVAL);
    CHECK_EQ_INT(http_query_get(&req, "missing", &v), -RE_ENOENT);
    CHECK_EQ_INT(http_query_get(&req, "lim", &v), -RE_ENOENT);
    CHECK(v == NULL);
    req.query = RE_STR_NULL;
    CHECK_EQ_INT(http_query_get(&req, "limit", &v), -RE_ENOENT);
    req.query = RE_STR_LIT("");
    CHECK_EQ_INT(http_query_get(&req, "limit", &v), -RE_ENOENT);
}

static cJSON *error_obj(const struct http_response *res)
{
    cJSON *root = cJSON_ParseWithLength(res->body.ptr, res->body.len);
    CHECK(root != NULL);
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(root, "error")));
    CHECK_EQ_INT(cJSON_GetArraySize(root), 1);
    return root;
}

static void test_error_shape(void)
{
    struct http_response res;
    http_response_init(&res, 4096);
    CHECK_EQ_INT(http_response_error(&res, 400, "invalid", "name", "'%s' is not a DNS-1123 label",
                                     "A_B"), 0);
    CHECK_EQ_INT(res.status, 400);
    CHECK_EQ_STR(res.content_type, "application/json");
    cJSON *root = error_obj(&res), *e = cJSON_GetObjectItem(root, "error");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "code")), "invalid");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")),
                 "'A_B' is not a DNS-1123 label");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "field")), "name");
    cJSON_Delete(root);

    /* no field: no key; quotes and newlines are escaped properly */
    CHECK_EQ_INT(http_response_error(&res, 404, "not_found", NULL, "no \"x\"\n"), 0);
    root = error_obj(&res);
    e = cJSON_GetObjectItem(root, "error");
    CHECK(cJSON_GetObjectItem(e, "field") == NULL);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")), "no \"x\"\n");
    cJSON_Delete(root);
    http_response_release(&res);
}

static void test_from_err(void)
{
    static const struct {
        int err, status;
    } map[] = {
        { -RE_ENOENT, 404 }, { -RE_EEXIST, 409 }, { -RE_EINVAL, 400 }, { -RE_EPARSE, 400 },
        { -RE_EDEPTH, 400 }, { -RE_ETOOBIG, 413 }, { -RE_ESTALE, 412 }, { -RE_EDENIED, 403 },
        { -RE_EUNAUTH, 401 }, { -RE_ECONFLICT, 409 }, { -RE_EBUSY, 503 }, { -RE_EAGAIN, 503 },
        { -RE_EIO, 500 }, { -RE_EDB, 500 }, { -RE_ENOMEM, 500 },
    };
    struct http_response res;
    http_response_init(&res, 4096);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        CHECK_EQ_INT(http_response_from_err(&res, map[i].err, NULL, NULL), 0);
        CHECK_EQ_INT(res.status, map[i].status);
        CHECK_EQ_INT(http_status_from_err(map[i].err), map[i].status);
        cJSON *root = error_obj(&res), *e = cJSON_GetObjectItem(root, "error");
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "code")), re_errcode(map[i].err));
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")),
                     re_strerror(map[i].err));
        cJSON_Delete(root);
    }
    CHECK_EQ_INT(http_response_from_err(&res, -RE_ESTALE, "version", "version 3 is stale"), 0);
    cJSON *root = error_obj(&res), *e = cJSON_GetObjectItem(root, "error");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "field")), "version");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")), "version 3 is stale");
    cJSON_Delete(root);
    http_response_release(&res);
}

static void test_response_helpers(void)
{
    struct http_response res;
    http_response_init(&res, 16);
    CHECK_EQ_INT(http_response_header(&res, "Location", "/api/v1/clusters/%d", 42), 0);
    CHECK_EQ_INT(http_response_header(&res, "ETag", "\"%d\"", 3), 0);
    CHECK_EQ_STR(res.headers.ptr, "Location: /api/v1/clusters/42\r\nETag: \"3\"\r\n");
    /* header injection is refused */
    CHECK_EQ_INT(http_response_header(&res, "X", "a\r\nSet-Cookie: b"), -RE_EINVAL);
    CHECK_EQ_INT(http_response_header(&res, "X: y", "a"), -RE_EINVAL);
    CHECK_EQ_INT(http_response_header(&res, "X\n", "a"), -RE_EINVAL);
    CHECK_EQ_STR(res.headers.ptr, "Location: /api/v1/clusters/42\r\nETag: \"3\"\r\n");

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", "x");
    CHECK_EQ_INT(http_response_json(&res, 201, j), 0);
    CHECK_EQ_INT(res.status, 201);
    CHECK_EQ_STR(res.body.ptr, "{\"name\":\"x\"}");
    /* a body past the response's bound fails cleanly */
    cJSON_AddStringToObject(j, "description", "much longer than sixteen bytes");
    CHECK_EQ_INT(http_response_json(&res, 200, j), -RE_ETOOBIG);
    cJSON_Delete(j);
    CHECK_EQ_INT(http_response_text(&res, 200, "text/plain", RE_STR_LIT("ok")), 0);
    CHECK_EQ_STR(res.body.ptr, "ok");
    CHECK_EQ_STR(res.content_type, "text/plain");
    http_response_release(&res);
    CHECK_EQ_STR(http_reason(404), "Not Found");
    CHECK_EQ_STR(http_reason(431), "Request Header Fields Too Large");
    CHECK_EQ_STR(http_reason(599), "Unknown");
}

static void check_param(const struct http_exchange *x, size_t i, const char *want)
{
    CHECK(i < x->n_params);
    CHECK(re_str_eq_c(x->params[i], want));
}

static void test_router(void)
{
    int pm = -1;
    struct http_exchange x = ex("GET", "/healthz");
    const struct route *r = routes_match(hub_route_tables, &x, &pm);
    CHECK(r == &table_a[0]);
    CHECK_EQ_INT(x.n_params, 0);
    CHECK_EQ_STR(x.route, "/healthz");

    x = ex("GET", "/api/v1/clusters");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_a[1]);
    x = ex("POST", "/api/v1/clusters");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_a[2]);

    x = ex("GET", "/api/v1/clusters/store-0042");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_a[3]);
    CHECK_EQ_INT(x.n_params, 1);
    check_param(&x, 0, "store-0042");
    CHECK_EQ_STR(x.route, "/api/v1/clusters/{name}");

    x = ex("GET", "/api/v1/clusters/store-0042/config");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_a[4]);
    check_param(&x, 0, "store-0042");

    /* literal segment wins over a placeholder, whatever the table order */
    x = ex("GET", "/api/v1/clusters/summary");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_b[0]);
    CHECK_EQ_INT(x.n_params, 0);

    x = ex("POST", "/api/v1/clusters:import");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_b[1]);

    /* placeholder with a suffix in its segment */
    x = ex("GET", "/git/store-1.git/info/refs");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_b[2]);
    check_param(&x, 0, "store-1");
    x = ex("GET", "/git/.git/info/refs");
    CHECK(routes_match(hub_route_tables, &x, &pm) == NULL);

    /* rest-of-path */
    x = ex("GET", "/api/v1/clusters/s1/files/ns/app/kustomization.yaml");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_a[5]);
    check_param(&x, 0, "s1");
    check_param(&x, 1, "ns/app/kustomization.yaml");
    x = ex("GET", "/api/v1/clusters/s1/files");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_a[5]);
    check_param(&x, 1, "");

    x = ex("GET", "/api/v1/groups/a/b");
    CHECK(routes_match(hub_route_tables, &x, &pm) == &table_b[3]);
    check_param(&x, 0, "a");
    check_param(&x, 1, "b");

    /* 405: path known, method not */
    x = ex("DELETE", "/api/v1/clusters");
    pm = 0;
    CHECK(routes_match(hub_route_tables, &x, &pm) == NULL);
    CHECK_EQ_INT(pm, 1);
    /* 404 */
    static const char *const missing[] = {
        "/nope", "/healthz/", "/api/v1/clusters/", "/api/v1/clusters//config", "/api/v1",
        "/api/v1/clusters/a/b", "", "healthz", "/api/v1/groups/a", "/api/v1/groups/a/b/c",
    };
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        x = ex("GET", missing[i]);
        pm = 1;
        if (routes_match(hub_route_tables, &x, &pm) != NULL || pm != 0) {
            fprintf(stderr, "'%s' matched\n", missing[i]);
            CHECK(0);
        }
    }
    /* a table of our own through the internal entry point */
    static const struct route only[] = { { "GET", "/x/{y}", h_dummy, 0 }, { NULL, NULL, NULL, 0 } };
    const struct route *const tables[] = { only, NULL };
    x = ex("GET", "/x/1");
    CHECK(routes_match(tables, &x, &pm) == &only[0]);
    x = ex("GET", "/healthz");
    CHECK(routes_match(tables, &x, &pm) == NULL);
}

static void test_roles(void)
{
    CHECK_EQ_STR(role_name(ROLE_ADMIN), "admin");
    CHECK_EQ_STR(role_name(ROLE_OPERATOR), "operator");
    CHECK_EQ_STR(role_name(ROLE_APPTEAM), "appteam");
    CHECK_EQ_STR(role_name(ROLE_TECHNICIAN), "technician");
    CHECK_EQ_STR(role_name(ROLE_AGENT), "agent");
    CHECK_EQ_STR(role_name(ROLE_NONE), "none");
    static const int all[] = { ROLE_ADMIN, ROLE_OPERATOR, ROLE_APPTEAM, ROLE_TECHNICIAN,
                               ROLE_AGENT };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        CHECK_EQ_INT(role_parse(role_name(all[i])), all[i]);
    CHECK_EQ_INT(role_parse("app-team"), ROLE_APPTEAM);
    CHECK_EQ_INT(role_parse("root"), 0);
    CHECK_EQ_INT(role_parse(""), 0);
    CHECK_EQ_INT(role_parse(NULL), 0);
}

static void test_metrics_render(void)
{
    struct metrics *m = NULL;
    struct re_buf out;
    char esc[64];
    CHECK_EQ_INT(metrics_new(&m), 0);
    re_buf_init(&out, 1 << 20);

    metrics_observe_request(m, "/api/v1/clusters/{name}", "GET", 200, 0.003);
    metrics_observe_request(m, "/api/v1/clusters/{name}", "GET", 200, 0.2);
    metrics_observe_request(m, "/api/v1/clusters/{name}", "GET", 404, 20);
    metrics_observe_request(m, "/metrics", "GET", 200, 0.0001);
    metrics_tls_handshake(m, false);
    metrics_tls_handshake(m, true);
    metrics_tls_handshake(m, true);
    metrics_connections(m, 3);
    metrics_connections(m, -1);
    metrics_describe(m, "resedge_enroll_total", "counter", "Enrollment attempts.");
    metrics_inc(m, "resedge_enroll_total{result=\"ok\"}");
    metrics_inc(m, "resedge_enroll_total{result=\"ok\"}");
    metrics_inc(m, "resedge_enroll_total{result=\"expired\"}");
    metrics_set(m, "resedge_clusters", 12.5);
    CHECK_EQ_STR(metrics_escape_label(esc, sizeof(esc), "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");

    CHECK_EQ_INT(metrics_render(m, &out), 0);
    const char *t = out.ptr;
    CHECK(strstr(t, "# TYPE resedge_http_requests_total counter\n"));
    CHECK(strstr(t, "resedge_http_requests_total{route=\"/api/v1/clusters/{name}\",method=\"GET\","
                    "code=\"200\"} 2\n"));
    CHECK(strstr(t, "resedge_http_requests_total{route=\"/api/v1/clusters/{name}\",method=\"GET\","
                    "code=\"404\"} 1\n"));
    CHECK(strstr(t, "# TYPE resedge_http_request_duration_seconds histogram\n"));
    CHECK(strstr(t, "resedge_http_request_duration_seconds_bucket{route=\"/api/v1/clusters/{name}\","
                    "le=\"0.005\"} 1\n"));
    CHECK(strstr(t, "resedge_http_request_duration_seconds_bucket{route=\"/api/v1/clusters/{name}\","
                    "le=\"0.25\"} 2\n"));
    CHECK(strstr(t, "resedge_http_request_duration_seconds_bucket{route=\"/api/v1/clusters/{name}\","
                    "le=\"10\"} 2\n"));
    CHECK(strstr(t, "resedge_http_request_duration_seconds_bucket{route=\"/api/v1/clusters/{name}\","
                    "le=\"+Inf\"} 3\n"));
    CHECK(strstr(t, "resedge_http_request_duration_seconds_count{route=\"/api/v1/clusters/{name}\"} 3\n"));
    CHECK(strstr(t, "resedge_http_request_duration_seconds_count{route=\"/metrics\"} 1\n"));
    CHECK(strstr(t, "resedge_tls_handshakes_total{type=\"full\"} 1\n"));
    CHECK(strstr(t, "resedge_tls_handshakes_total{type=\"resumed\"} 2\n"));
    CHECK(strstr(t, "# TYPE resedge_http_connections_open gauge\nresedge_http_connections_open 2\n"));
    CHECK(strstr(t, "# HELP resedge_enroll_total Enrollment attempts.\n"
                    "# TYPE resedge_enroll_total counter\n"
                    "resedge_enroll_total{result=\"expired\"} 1\n"
                    "resedge_enroll_total{result=\"ok\"} 2\n"));
    CHECK(strstr(t, "# TYPE resedge_clusters gauge\nresedge_clusters 12.5\n"));
    /* every family's TYPE line appears once */
    CHECK(strstr(strstr(t, "# TYPE resedge_enroll_total") + 1, "# TYPE resedge_enroll_total") == NULL);
    re_buf_release(&out);
    metrics_free(m);
    metrics_free(NULL);
    metrics_inc(NULL, "x_total");
}

static double fortytwo(void *arg)
{
    (void)arg;
    return 42;
}

static void test_metrics_gauge_fn(void)
{
    struct metrics *m = NULL;
    struct re_buf out;
    CHECK_EQ_INT(metrics_new(&m), 0);
    re_buf_init(&out, 1 << 20);
    CHECK_EQ_INT(metrics_gauge_fn_add(m, "resedge_db_bytes", "Database size.", fortytwo, NULL), 0);
    CHECK_EQ_INT(metrics_render(m, &out), 0);
    CHECK(strstr(out.ptr, "# HELP resedge_db_bytes Database size.\n# TYPE resedge_db_bytes gauge\n"
                          "resedge_db_bytes 42\n"));
    re_buf_release(&out);
    metrics_free(m);
}

TEST_MAIN(T(test_header_get), T(test_percent_decode), T(test_query_get), T(test_error_shape),
          T(test_from_err), T(test_response_helpers), T(test_router), T(test_roles),
          T(test_metrics_render), T(test_metrics_gauge_fn))
