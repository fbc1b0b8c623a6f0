/* fuzz_http.c - HTTP request handling up to the route: the plaintext a TLS
 * client sends goes through the hub's own http_parser callbacks, request
 * building and route matching (hub/server.c is included to reach them; no
 * sockets, no TLS). Input: first byte sets the chunk size the bytes arrive
 * in (1..256, so requests split across reads); the rest is the byte stream
 * of one keep-alive connection, pipelined requests and all.
 * Checks: a finished request has an absolute path and consistent views
 * (path/query inside the target, headers inside the head buffer, body
 * within the limit); an error has a 4xx/5xx status and renders as JSON. */
#define tls_conn_write fuzz_tls_conn_write   /* 100 Continue: no TLS here */
#include "../../hub/http/server.c"
#include "fuzz.h"
#include "json.h"

static size_t continues;

int fuzz_tls_conn_write(struct tls_conn *t, const void *data, size_t len)
{
    (void)t;
    FUZZ_CHECK(len == 25 && memcmp(data, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    continues++;
    return 0;
}

static uv_loop_t loop;
static struct hub hub;
static struct server srv;

static void setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    uv_loop_init(&loop);
    hub_config_defaults(&hub.cfg);
    hub.cfg.limits.max_header_bytes = 4096;
    hub.cfg.limits.max_body_bytes = 32768;
    hub.loop = &loop;
    srv.hub = &hub;
    srv.loop = &loop;
    http_parser_set_max_header_size((uint32_t)(hub.cfg.limits.max_header_bytes + 1024));
}

static bool inside(struct re_str s, const char *base, size_t len)
{
    return s.len == 0 || (s.ptr >= base && s.ptr + s.len <= base + len);
}

static void check_error_body(const struct http_response *res)
{
    cJSON *j = NULL;
    FUZZ_CHECK(res->status >= 400 && res->status <= 599);
    FUZZ_CHECK(re_json_parse(&j, re_buf_str(&res->body), 8, NULL) == 0);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    FUZZ_CHECK(cJSON_IsObject(e));
    FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "code")));
    FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")));
    cJSON_Delete(j);
}

/* What conn_dispatch does before calling a handler. */
static void dispatch(struct conn *c)
{
    struct http_exchange *x = &c->x;
    int pm = 0;
    memset(x, 0, sizeof(*x));
    x->hub = &hub;
    x->conn = c;
    http_response_init(&x->res, 64 * 1024);
    int r = build_request(c);
    if (r < 0) {
        FUZZ_CHECK(r == -RE_EINVAL || r == -RE_ENOMEM);
        http_response_error(&x->res, 400, "bad_request", NULL, "bad target");
        check_error_body(&x->res);
        goto out;
    }
    const struct http_request *q = &x->req;
    FUZZ_CHECK(q->target.len > 0 && q->target.ptr[0] == '/');
    FUZZ_CHECK(inside(q->path, q->target.ptr, q->target.len));
    FUZZ_CHECK(inside(q->query, q->target.ptr, q->target.len));
    FUZZ_CHECK(q->path.len + (q->query.len ? q->query.len + 1 : 0) <= q->target.len);
    FUZZ_CHECK(q->body.len <= hub.cfg.limits.max_body_bytes);
    FUZZ_CHECK(q->n_headers <= MAX_HEADERS);
    for (size_t i = 0; i < q->n_headers; i++) {
        FUZZ_CHECK(inside(q->headers[i].name, c->hdr.ptr, c->hdr.len));
        FUZZ_CHECK(inside(q->headers[i].value, c->hdr.ptr, c->hdr.len));
    }
    (void)http_header_get(q, "content-type");
    (void)http_header_get(q, "git-protocol");
    static const char *const keys[] = { "limit", "next", "filter", "orderby", "service", NULL };
    for (const char *const *k = keys; *k; k++) {
        char *v = NULL;
        r = http_query_get(q, *k, &v);
        FUZZ_CHECK(r == 0 || r == -RE_ENOENT || r == -RE_EINVAL || r == -RE_ENOMEM);
        FUZZ_CHECK(r == 0 || v == NULL);
        free(v);
    }
    char *dec = NULL;
    if (http_percent_decode(&dec, q->path, false) == 0)
        FUZZ_CHECK(dec != NULL);
    free(dec);
    const struct route *route = routes_match(hub_route_tables, x, &pm);
    if (route) {
        FUZZ_CHECK(strcmp(route->method, q->method_name) == 0);
        FUZZ_CHECK(x->n_params <= sizeof(x->params) / sizeof(x->params[0]));
        for (size_t i = 0; i < x->n_params; i++)
            FUZZ_CHECK(inside(x->params[i], q->target.ptr, q->target.len));
    } else {
        http_response_error(&x->res, pm ? 405 : 404, pm ? "method_not_allowed" : "not_found",
                            NULL, "%s is not here", q->method_name);
        check_error_body(&x->res);
    }
out:
    http_response_release(&x->res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    size_t chunk = fuzz_byte(&in) + 1;
    struct conn *c;
    unsigned requests = 0;

    setup();
    c = calloc(1, sizeof(*c));
    FUZZ_CHECK(c != NULL);
    c->srv = &srv;
    uv_timer_init(&loop, &c->timer);
    c->timer.data = c;
    re_buf_init(&c->url, hub.cfg.limits.max_header_bytes + 1);
    re_buf_init(&c->hdr, hub.cfg.limits.max_header_bytes + 1);
    re_buf_init(&c->body, hub.cfg.limits.max_body_bytes);
    re_buf_init(&c->pending, PENDING_MAX);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = CS_READING;
    continues = 0;

    /* conn_pump: each read goes to the parser; what a paused parser did not
     * take waits in pending until the request before it is answered. */
    const char *p = (const char *)in.p;
    size_t left = in.n;
    while ((left || c->pending.len) && !c->err_status) {
        if (left) {
            size_t n = left < chunk ? left : chunk;
            if (re_buf_append(&c->pending, p, n) < 0)
                break;
            p += n;
            left -= n;
        }
        while (c->pending_off < c->pending.len && !c->err_status) {
            size_t used = conn_parse(c, c->pending.ptr + c->pending_off,
                                     c->pending.len - c->pending_off);
            FUZZ_CHECK(used <= c->pending.len - c->pending_off);
            c->pending_off += used;
            if (c->message_done) {
                c->message_done = false;
                dispatch(c);
                if (++requests >= 64)
                    goto done;
                http_parser_pause(&c->parser, 0);     /* conn_after_write */
                continue;
            }
            if (used == 0)
                break;
        }
        if (c->pending_off >= c->pending.len) {
            re_buf_reset(&c->pending);
            c->pending_off = 0;
        }
        if (!left && c->pending.len && !c->message_done)
            break;                  /* the rest is an unfinished request */
    }
done:
    if (c->err_status) {
        struct http_response res;
        FUZZ_CHECK(c->err_code && c->err_msg);
        http_response_init(&res, 64 * 1024);
        http_response_error(&res, c->err_status, c->err_code, NULL, "%s", c->err_msg);
        check_error_body(&res);
        http_response_release(&res);
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    re_buf_release(&c->url);
    re_buf_release(&c->hdr);
    re_buf_release(&c->body);
    re_buf_release(&c->pending);
    free(c->hoffs);
    free(c->headers);
    free(c);
    return 0;
}
