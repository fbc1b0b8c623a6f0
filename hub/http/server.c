/* server.c - HTTP/1.1 over TLS on one libuv loop: accept, TLS handshake
 * (tls.h), request parsing with http_parser, limits and timeouts, routing
 * with certificate roles, responses, keep-alive and graceful stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <http_parser.h>
#include <uv.h>
#include "error.h"
#include "fsutil.h"
#include "http.h"
#include "hub.h"
#include "inventory/auth.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "server.h"
#include "tls.h"

#define RESPONSE_MAX (256u * 1024 * 1024)  /* largest response body a handler may build */
#define PENDING_MAX (1024 * 1024)          /* plaintext read ahead of the parser */
#define MAX_HEADERS 128                    /* header lines per request: 431 past it */
#define LINGER_MS 2000                     /* draining after an early error response */
#define STOP_GRACE_MS 10000                /* in-flight work gets this long on stop */
#define READ_CHUNK 65536

enum conn_state {
    CS_HANDSHAKE,    /* TLS handshake running */
    CS_READING,      /* between requests or reading one */
    CS_DISPATCHED,   /* the handler has it (deferred) */
    CS_WRITING,      /* response queued, waiting for the socket */
    CS_DRAINING,     /* closing: flushing close_notify, discarding input */
    CS_CLOSING,      /* handles closing */
    CS_CLOSED,       /* handles closed, waiting for a deferred handler */
};

struct hoff {
    size_t n_off, n_len, v_off, v_len;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct server *srv;
    struct conn *prev, *next;
    struct tls_conn *tls;
    http_parser parser;
    enum conn_state state;
    int handles_open;
    unsigned writes_pending;
    bool reading;
    bool close_after_write;      /* end the connection once the response is out */
    bool close_when_flushed;     /* in CS_DRAINING: close once writes finish */
    bool linger;                 /* drain input before closing (early error) */
    bool peer_closed;
    bool in_message;
    bool headers_done;
    bool message_done;
    bool deferred;
    bool in_handler;
    bool done_early;
    bool x_active;
    bool last_was_value;
    int err_status;
    const char *err_code;
    const char *err_msg;
    unsigned n_requests;
    uint64_t t_start;
    size_t head_bytes;
    struct re_buf url;
    struct re_buf hdr;
    struct hoff *hoffs;
    size_t n_hoffs, cap_hoffs;
    struct http_header *headers;
    struct re_buf body;
    struct re_buf pending;
    size_t pending_off;
    struct caller peer;
    struct http_exchange x;
};

struct ready_check {
    char *name;
    server_ready_fn fn;
    void *arg;
    bool warning;                /* degrades, never fails, readiness */
};

struct server {
    struct hub *hub;
    const struct route *const *routes;   /* the API's tables, from main */
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t stop_timer;
    bool listener_init;
    bool listener_closed;
    bool stop_timer_init;
    struct tls_config *tls;
    struct conn *conns;
    unsigned n_conns;
    int port;
    bool stopping;
    bool stop_called;
    server_stop_cb stop_cb;
    void *stop_arg;
    struct ready_check *ready;
    size_t n_ready;
    char rbuf[READ_CHUNK];
};

static void conn_pump(struct conn *c);
static void conn_close(struct conn *c);
static void conn_respond(struct conn *c);
static void maybe_stopped(struct server *s);

static const struct hub_limits *limits(const struct conn *c)
{
    return &c->srv->hub->cfg.limits;
}

static void on_conn_timer(uv_timer_t *t);

/* Re-arms the connection's one timer; 0 disarms it. */
static void timer_set(struct conn *c, unsigned ms)
{
    if (ms == 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_conn_timer, ms, 0);
}

/* ---- writing ---- */

struct wreq {
    uv_write_t req;
    char *data;
};

static void conn_after_write(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->data;
    free(w->data);
    free(w);
    c->writes_pending--;
    if (c->state == CS_CLOSING || c->state == CS_CLOSED)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->writes_pending == 0)
        conn_after_write(c);
}

/* Sends whatever ciphertext the TLS engine has queued. */
static int conn_flush(struct conn *c)
{
    size_t len = 0;
    char *data = tls_conn_take_output(c->tls, &len);
    struct wreq *w;
    uv_buf_t b;
    int r;
    if (!data)
        return 0;
    w = malloc(sizeof(*w));
    if (!w) {
        free(data);
        return -RE_ENOMEM;
    }
    w->data = data;
    w->req.data = c;
    b = uv_buf_init(data, (unsigned)len);
    r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r < 0) {
        free(data);
        free(w);
        return -RE_EIO;
    }
    c->writes_pending++;
    return 0;
}

/* ---- closing ---- */

static void exchange_release(struct conn *c)
{
    if (!c->x_active)
        return;
    http_response_release(&c->x.res);
    c->x_active = false;
}

static void conn_free(struct conn *c)
{
    exchange_release(c);
    tls_conn_free(c->tls);
    re_buf_release(&c->url);
    re_buf_release(&c->hdr);
    re_buf_release(&c->body);
    re_buf_release(&c->pending);
    free(c->hoffs);
    free(c->headers);
    free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct server *s = c->srv;
    if (--c->handles_open > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    metrics_connections(s->hub->metrics, -1);
    if (c->deferred)
        c->state = CS_CLOSED;      /* http_exchange_done frees it */
    else
        conn_free(c);
    maybe_stopped(s);
}

static void conn_close(struct conn *c)
{
    if (c->state == CS_CLOSING || c->state == CS_CLOSED)
        return;
    c->state = CS_CLOSING;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf);

static void read_start(struct conn *c)
{
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

static void read_stop(struct conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* Ends the connection politely: close_notify, then either close as soon as it
 * is sent, or (linger) keep discarding input for a while so the peer reads
 * our error response instead of a reset. */
static void conn_end(struct conn *c, bool linger)
{
    if (c->state == CS_CLOSING || c->state == CS_CLOSED || c->state == CS_DRAINING)
        return;
    if (tls_conn_handshake_done(c->tls))
        tls_conn_close_notify(c->tls);
    c->state = CS_DRAINING;
    if (conn_flush(c) < 0) {
        conn_close(c);
        return;
    }
    if (linger && !c->peer_closed) {
        c->close_when_flushed = false;
        read_start(c);
        timer_set(c, LINGER_MS);
        return;
    }
    c->close_when_flushed = true;
    if (c->writes_pending == 0) {
        conn_close(c);
        return;
    }
    timer_set(c, 1000);                     /* bound the wait for the socket */
}

static void conn_after_write(struct conn *c)
{
    switch (c->state) {
    case CS_WRITING:
        exchange_release(c);
        /* An idle connection keeps no large buffers from its last request. */
        if (c->body.cap > 64 * 1024)
            re_buf_release(&c->body);
        if (c->hdr.cap > 64 * 1024)
            re_buf_release(&c->hdr);
        if (c->close_after_write || c->peer_closed) {
            conn_end(c, c->linger && !c->peer_closed);
            return;
        }
        c->state = CS_READING;
        c->message_done = false;
        c->in_message = false;
        timer_set(c, limits(c)->idle_timeout_ms);
        http_parser_pause(&c->parser, 0);
        read_start(c);
        conn_pump(c);             /* a pipelined request may be waiting */
        return;
    case CS_DRAINING:
        if (c->close_when_flushed)
            conn_close(c);
        return;
    case CS_HANDSHAKE:
        if (c->close_after_write)
            conn_close(c);
        return;
    default:
        return;
    }
}

/* ---- responses ---- */

/* Responses up to this size (head and body) are sealed as one TLS record. */
#define SMALL_RESPONSE_BYTES 16384

static const char *http_date(void)
{
    static char buf[40];
    static time_t last;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        if (strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
            buf[0] = '\0';
        last = now;
    }
    return buf;
}

static void conn_respond(struct conn *c)
{
    struct server *s = c->srv;
    struct http_exchange *x = &c->x;
    struct http_response *res = &x->res;
    const struct hub_limits *lim = limits(c);
    struct re_buf head;
    int status = res->status;
    bool head_only = c->parser.method == HTTP_HEAD;
    bool no_body, keep;
    int r;

    if (status < 100 || status > 599) {
        http_response_error(res, 500, "internal", NULL, "the handler produced no response");
        status = 500;
    }
    no_body = status < 200 || status == 204 || status == 304;
    keep = !c->close_after_write && !c->err_status && http_should_keep_alive(&c->parser) &&
           !s->stopping && !c->peer_closed &&
           (lim->max_requests_per_conn == 0 || c->n_requests < lim->max_requests_per_conn);
    if (!keep)
        c->close_after_write = true;

    re_buf_init(&head, 64 * 1024);
    r = re_buf_printf(&head, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, http_reason(status),
                      http_date());
    if (r == 0 && !no_body)
        r = re_buf_printf(&head, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                          res->content_type ? res->content_type : "application/json",
                          res->body.len);
    if (r == 0)
        r = re_buf_printf(&head, "Connection: %s\r\n", keep ? "keep-alive" : "close");
    if (r == 0 && res->headers.len)
        r = re_buf_append(&head, res->headers.ptr, res->headers.len);
    if (r == 0)
        r = re_buf_append(&head, "\r\n", 2);
    /* A small body goes in the head's TLS record: one record, one seal. */
    bool body = r == 0 && !no_body && !head_only && res->body.len;
    if (body && head.len + res->body.len <= SMALL_RESPONSE_BYTES &&
        re_buf_append(&head, res->body.ptr, res->body.len) == 0)
        body = false;
    if (r == 0)
        r = tls_conn_write(c->tls, head.ptr, head.len);
    if (r == 0 && body)
        r = tls_conn_write(c->tls, res->body.ptr, res->body.len);
    re_buf_release(&head);

    double secs = (double)(uv_hrtime() - c->t_start) / 1e9;
    metrics_observe_request(s->hub->metrics, x->route ? x->route : "none",
                            x->req.method_name ? x->req.method_name : "", status, secs);
    log_debug("%s %s %.*s -> %d (%.1f ms)", c->peer.remote_addr,
              x->req.method_name ? x->req.method_name : "-", (int)x->req.path.len,
              x->req.path.ptr ? x->req.path.ptr : "", status, secs * 1000);

    if (r < 0) {
        conn_close(c);
        return;
    }
    read_stop(c);
    if (c->close_after_write && !(c->linger && !c->peer_closed)) {
        /* The last response carries the close_notify in the same write (one
         * segment and one loop turn less per check-in); closed once sent. */
        tls_conn_close_notify(c->tls);
        c->state = CS_DRAINING;
        c->close_when_flushed = true;
        timer_set(c, 1000);                   /* bound the wait for the socket */
    } else {
        c->state = CS_WRITING;
        timer_set(c, lim->idle_timeout_ms);   /* a peer that never reads is cut off */
    }
    if (conn_flush(c) < 0)
        conn_close(c);
}

/* An error found while reading a request: answer it and close. */
static void conn_fail_request(struct conn *c)
{
    struct http_exchange *x = &c->x;
    exchange_release(c);
    memset(x, 0, sizeof(*x));
    x->hub = c->srv->hub;
    x->conn = c;
    x->route = "none";
    x->req.method_name = c->headers_done || c->url.len ? http_method_str(c->parser.method) : "";
    x->req.path = re_buf_str(&c->url);
    http_response_init(&x->res, 64 * 1024);
    c->x_active = true;
    http_response_error(&x->res, c->err_status, c->err_code, NULL, "%s", c->err_msg);
    c->close_after_write = true;
    c->linger = true;
    c->state = CS_DISPATCHED;
    conn_respond(c);
}

static void set_error(struct conn *c, int status, const char *code, const char *msg)
{
    if (c->err_status)
        return;
    c->err_status = status;
    c->err_code = code;
    c->err_msg = msg;
}

/* ---- http_parser callbacks ---- */

static int head_add(struct conn *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > limits(c)->max_header_bytes) {
        set_error(c, 431, "header_too_large", "the request head exceeds the server's limit");
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->in_message = true;
    c->headers_done = false;
    c->message_done = false;
    c->head_bytes = 0;
    c->n_hoffs = 0;
    c->last_was_value = false;
    c->t_start = uv_hrtime();
    re_buf_reset(&c->url);
    re_buf_reset(&c->hdr);
    re_buf_reset(&c->body);
    c->body.max = limits(c)->max_body_bytes;
    c->url.max = c->hdr.max = limits(c)->max_header_bytes + 1;
    timer_set(c, limits(c)->header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (head_add(c, len) < 0)
        return -1;
    if (re_buf_append(&c->url, at, len) < 0) {
        set_error(c, 431, "header_too_large", "the request target is too long");
        return -1;
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (head_add(c, len + 4) < 0)
        return -1;
    if (c->n_hoffs == 0 || c->last_was_value) {
        if (c->n_hoffs >= MAX_HEADERS) {
            set_error(c, 431, "header_too_large", "too many header fields");
            return -1;
        }
        if (c->n_hoffs == c->cap_hoffs) {
            size_t n = c->cap_hoffs ? c->cap_hoffs * 2 : 16;
            struct hoff *h = realloc(c->hoffs, n * sizeof(*h));
            if (!h) {
                set_error(c, 503, "no_memory", "out of memory");
                return -1;
            }
            c->hoffs = h;
            c->cap_hoffs = n;
        }
        c->hoffs[c->n_hoffs++] = (struct hoff){ c->hdr.len, 0, 0, 0 };
        c->last_was_value = false;
    }
    if (re_buf_append(&c->hdr, at, len) < 0) {
        set_error(c, 431, "header_too_large", "the request head exceeds the server's limit");
        return -1;
    }
    c->hoffs[c->n_hoffs - 1].n_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct hoff *h;
    if (head_add(c, len) < 0 || c->n_hoffs == 0)
        return -1;
    h = &c->hoffs[c->n_hoffs - 1];
    if (!c->last_was_value) {
        h->v_off = c->hdr.len;
        h->v_len = 0;
        c->last_was_value = true;
    }
    if (re_buf_append(&c->hdr, at, len) < 0) {
        set_error(c, 431, "header_too_large", "the request head exceeds the server's limit");
        return -1;
    }
    h->v_len += len;
    return 0;
}

static bool hoff_is(const struct conn *c, const struct hoff *h, const char *name, const char *val)
{
    size_t nl = strlen(name), vl = strlen(val);
    return h->n_len == nl && strncasecmp(c->hdr.ptr + h->n_off, name, nl) == 0 &&
           h->v_len >= vl && strncasecmp(c->hdr.ptr + h->v_off, val, vl) == 0;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    bool chunked = (p->flags & F_CHUNKED) != 0;
    c->headers_done = true;
    if (p->upgrade) {
        set_error(c, 400, "bad_request", "protocol upgrades are not supported");
        return -1;
    }
    if (!chunked && p->content_length != ULLONG_MAX &&
        p->content_length > limits(c)->max_body_bytes) {
        set_error(c, 413, "too_large", "the request body exceeds the server's limit");
        return -1;
    }
    if (chunked || (p->content_length != ULLONG_MAX && p->content_length > 0)) {
        timer_set(c, limits(c)->body_timeout_ms);
        for (size_t i = 0; i < c->n_hoffs; i++) {
            if (hoff_is(c, &c->hoffs[i], "expect", "100-continue")) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                if (tls_conn_write(c->tls, cont, sizeof(cont) - 1) < 0) {
                    set_error(c, 503, "no_memory", "cannot answer Expect: 100-continue");
                    return -1;
                }
                break;
            }
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (re_buf_append(&c->body, at, len) < 0) {
        set_error(c, 413, "too_large", "the request body exceeds the server's limit");
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->message_done = true;
    c->in_message = false;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Feeds plaintext to the parser; returns bytes consumed. */
static size_t conn_parse(struct conn *c, const char *data, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_OK || e == HPE_PAUSED)
        return n;
    if (!c->err_status) {
        if (e == HPE_HEADER_OVERFLOW)
            set_error(c, 431, "header_too_large", "the request head exceeds the server's limit");
        else
            set_error(c, 400, "bad_request", http_errno_description(e));
    }
    return len;
}

/* ---- dispatch ---- */

static void trim_value(struct re_str *v)
{
    while (v->len && (v->ptr[v->len - 1] == ' ' || v->ptr[v->len - 1] == '\t'))
        v->len--;
}

static int build_request(struct conn *c)
{
    struct http_request *req = &c->x.req;
    struct http_header *hs = NULL;
    const char *url = c->url.ptr ? c->url.ptr : "";
    const char *q;

    if (c->url.len == 0 || url[0] != '/' || memchr(url, '\0', c->url.len))
        return -RE_EINVAL;
    if (c->n_hoffs) {
        hs = realloc(c->headers, c->n_hoffs * sizeof(*hs));
        if (!hs)
            return -RE_ENOMEM;
        c->headers = hs;
        for (size_t i = 0; i < c->n_hoffs; i++) {
            const struct hoff *h = &c->hoffs[i];
            hs[i].name = (struct re_str){ c->hdr.ptr + h->n_off, h->n_len };
            hs[i].value = (struct re_str){ h->v_len ? c->hdr.ptr + h->v_off : "", h->v_len };
            trim_value(&hs[i].value);
        }
    }
    req->method = (int)c->parser.method;
    req->method_name = http_method_str(c->parser.method);
    req->target = (struct re_str){ url, c->url.len };
    q = memchr(url, '?', c->url.len);
    req->path = (struct re_str){ url, q ? (size_t)(q - url) : c->url.len };
    req->query = q ? (struct re_str){ q + 1, c->url.len - (size_t)(q - url) - 1 }
                   : (struct re_str){ url + c->url.len, 0 };
    req->headers = c->headers;
    req->n_headers = c->n_hoffs;
    req->body = (struct re_str){ c->body.ptr ? c->body.ptr : "", c->body.len };
    req->peer = c->peer;
    req->peer.role = ROLE_NONE;
    return 0;
}

static void conn_dispatch(struct conn *c)
{
    struct server *s = c->srv;
    struct http_exchange *x = &c->x;
    const struct route *route;
    int pm = 0, r;

    c->message_done = false;
    c->n_requests++;
    exchange_release(c);
    memset(x, 0, sizeof(*x));
    x->hub = s->hub;
    x->conn = c;
    http_response_init(&x->res, RESPONSE_MAX);
    c->x_active = true;
    c->state = CS_DISPATCHED;
    uv_timer_stop(&c->timer);
    read_stop(c);

    r = build_request(c);
    if (r < 0) {
        x->route = "none";
        x->req.method_name = http_method_str(c->parser.method);
        if (r == -RE_ENOMEM)
            http_response_error(&x->res, 503, "no_memory", NULL, "out of memory");
        else
            http_response_error(&x->res, 400, "bad_request", NULL,
                                "the request target must be an absolute path");
        c->close_after_write = true;
        conn_respond(c);
        return;
    }
    route = routes_match(s->routes, x, &pm);
    if (!route) {
        x->route = "none";
        if (pm)
            http_response_error(&x->res, 405, "method_not_allowed", NULL,
                                "%s is not allowed on this path", x->req.method_name);
        else
            http_response_error(&x->res, 404, "not_found", NULL, "no such endpoint");
        conn_respond(c);
        return;
    }
    x->route = route->pattern;
    if (route->roles != ROLE_PUBLIC) {
        if (!x->req.peer.authenticated) {
            http_response_error(&x->res, 401, "unauthenticated", NULL,
                                "a client certificate issued by this hub's CA is required");
            conn_respond(c);
            return;
        }
        r = auth_resolve(s->hub, &x->req.peer);
        if (r == -RE_EUNAUTH) {
            http_response_error(&x->res, 401, "unauthenticated", NULL,
                                "the certificate's identity is not known to this hub");
            conn_respond(c);
            return;
        }
        if (r == -RE_EDENIED) {
            http_response_error(&x->res, 403, "forbidden", NULL,
                                "this certificate has been revoked or replaced");
            conn_respond(c);
            return;
        }
        if (r < 0) {
            log_err("cannot resolve the identity of %s '%s': %s", x->req.peer.kind,
                    x->req.peer.name, re_strerror(r));
            http_response_from_err(&x->res, r, NULL, NULL);
            conn_respond(c);
            return;
        }
        if (!((unsigned)x->req.peer.role & route->roles)) {
            http_response_error(&x->res, 403, "forbidden", NULL, "role '%s' may not call %s %s",
                                role_name(x->req.peer.role), route->method, route->pattern);
            conn_respond(c);
            return;
        }
    }
    /* A handler may finish a deferred exchange before it even returns. */
    c->in_handler = true;
    c->done_early = false;
    r = route->fn(x);
    c->in_handler = false;
    if (r == HTTP_DEFERRED && !c->done_early) {
        c->deferred = true;
        return;
    }
    if (r < 0 && x->res.status == 0)
        http_response_from_err(&x->res, r, NULL, NULL);
    conn_respond(c);
}

void http_exchange_done(struct http_exchange *x)
{
    struct conn *c = x ? x->conn : NULL;
    if (c && c->in_handler) {
        c->done_early = true;           /* conn_dispatch responds on return */
        return;
    }
    if (!c || !c->deferred)
        return;
    c->deferred = false;
    if (c->state == CS_CLOSED) {
        conn_free(c);
        return;
    }
    if (c->state != CS_DISPATCHED) {
        exchange_release(c);
        return;
    }
    conn_respond(c);
}

/* ---- reading ---- */

/* Parses what is buffered and what the TLS engine can decrypt, until a whole
 * request is in (then dispatches it), an error, or no more input. */
static void conn_pump(struct conn *c)
{
    char buf[16384];
    while (c->state == CS_READING && !c->message_done && !c->err_status) {
        if (c->pending_off < c->pending.len) {
            size_t n = conn_parse(c, c->pending.ptr + c->pending_off,
                                  c->pending.len - c->pending_off);
            c->pending_off += n;
            if (c->pending_off >= c->pending.len) {
                re_buf_reset(&c->pending);
                c->pending_off = 0;
            }
            if (n == 0 && !c->message_done && !c->err_status)
                break;
            continue;
        }
        ssize_t n = tls_conn_read(c->tls, buf, sizeof(buf));
        if (n == -RE_EAGAIN)
            break;
        if (n <= 0) {                       /* close_notify or a TLS error */
            if (c->in_message)
                set_error(c, 400, "bad_request", "the connection ended inside a request");
            else {
                conn_end(c, false);
                return;
            }
            break;
        }
        size_t used = conn_parse(c, buf, (size_t)n);
        if (used < (size_t)n && re_buf_append(&c->pending, buf + used, (size_t)n - used) < 0) {
            conn_close(c);
            return;
        }
    }
    if (c->state != CS_READING)
        return;
    if (conn_flush(c) < 0) {               /* e.g. 100 Continue */
        conn_close(c);
        return;
    }
    if (c->err_status)
        conn_fail_request(c);
    else if (c->message_done)
        conn_dispatch(c);
}

static void fill_peer(struct conn *c)
{
    const struct tls_peer_info *pi = tls_conn_peer(c->tls);
    const char *td = c->srv->hub->cfg.trust_domain ? c->srv->hub->cfg.trust_domain : "";
    char prefix[300];

    c->peer.authenticated = tls_conn_authenticated(c->tls);
    re_snprintf(c->peer.serial, sizeof(c->peer.serial), "%s", pi->serial);
    c->peer.kind[0] = c->peer.name[0] = '\0';
    if (!c->peer.authenticated)
        return;
    /* spiffe://<trust domain>/<kind>/<name> */
    if (re_snprintf(prefix, sizeof(prefix), "spiffe://%s/", td) < 0)
        return;
    size_t pl = strlen(prefix);
    if (strncmp(pi->uri_san, prefix, pl) != 0)
        return;
    const char *rest = pi->uri_san + pl;
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || !slash[1] || strchr(slash + 1, '/'))
        return;
    size_t kl = (size_t)(slash - rest);
    if (kl >= sizeof(c->peer.kind) || strlen(slash + 1) >= sizeof(c->peer.name))
        return;
    memcpy(c->peer.kind, rest, kl);
    c->peer.kind[kl] = '\0';
    re_snprintf(c->peer.name, sizeof(c->peer.name), "%s", slash + 1);
}

static void conn_handshake(struct conn *c)
{
    int r = tls_conn_handshake(c->tls);
    if (conn_flush(c) < 0) {
        conn_close(c);
        return;
    }
    if (r == -RE_EAGAIN)
        return;
    if (r < 0) {
        metrics_inc(c->srv->hub->metrics, "resedge_tls_handshake_failures_total");
        log_debug("TLS handshake with %s failed", c->peer.remote_addr);
        c->close_after_write = true;
        if (c->writes_pending == 0)
            conn_close(c);
        else
            read_stop(c);
        return;
    }
    metrics_tls_handshake(c->srv->hub->metrics, tls_conn_peer(c->tls)->resumed);
    fill_peer(c);
    c->state = CS_READING;
    timer_set(c, limits(c)->idle_timeout_ms);
    conn_pump(c);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct conn *c = h->data;
    /* Safe to share: each read is consumed (copied into the TLS engine)
     * before the next allocation. */
    *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        c->peer_closed = true;
        read_stop(c);
        if (c->state == CS_DISPATCHED || c->state == CS_WRITING)
            return;                     /* finish (and then close) */
        conn_close(c);
        return;
    }
    if (c->state == CS_DRAINING)
        return;                         /* discarded */
    if (tls_conn_feed(c->tls, buf->base, (size_t)nread) < 0) {
        conn_close(c);
        return;
    }
    if (c->state == CS_HANDSHAKE)
        conn_handshake(c);
    else if (c->state == CS_READING)
        conn_pump(c);
}

static void on_conn_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    const char *phase = NULL;
    switch (c->state) {
    case CS_HANDSHAKE:
        phase = "handshake";
        break;
    case CS_READING:
        phase = !c->in_message ? "idle" : c->headers_done ? "body" : "header";
        break;
    case CS_WRITING:
        phase = "write";
        break;
    case CS_DRAINING:
        conn_close(c);
        return;
    default:
        return;
    }
    if (strcmp(phase, "idle") != 0) {
        char series[96];
        re_snprintf(series, sizeof(series), "resedge_http_timeouts_total{phase=\"%s\"}", phase);
        metrics_inc(c->srv->hub->metrics, series);
        log_debug("%s: %s timeout, closing", c->peer.remote_addr, phase);
    }
    conn_close(c);
}

/* ---- accepting ---- */

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void peer_addr(struct conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    c->peer.remote_addr[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->peer.remote_addr, sizeof(c->peer.remote_addr));
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer.remote_addr, sizeof(c->peer.remote_addr));
}

static void on_connection(uv_stream_t *l, int status)
{
    struct server *s = l->data;
    const struct hub_limits *lim = &s->hub->cfg.limits;
    struct conn *c;

    if (status < 0)
        return;
    if (s->stopping || (lim->max_connections && s->n_conns >= lim->max_connections)) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        uv_tcp_init(s->loop, t);
        if (uv_accept(l, (uv_stream_t *)t) == 0)
            metrics_inc(s->hub->metrics, "resedge_http_connections_rejected_total");
        uv_close((uv_handle_t *)t, free_handle);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_handle);   /* tcp is the first member */
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    metrics_connections(s->hub->metrics, 1);
    re_buf_init(&c->url, lim->max_header_bytes + 1);
    re_buf_init(&c->hdr, lim->max_header_bytes + 1);
    re_buf_init(&c->body, lim->max_body_bytes);
    re_buf_init(&c->pending, PENDING_MAX);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = CS_HANDSHAKE;
    peer_addr(c);
    uv_tcp_nodelay(&c->tcp, 1);
    if (tls_conn_new_server(&c->tls, s->tls) < 0) {
        conn_close(c);
        return;
    }
    timer_set(c, lim->header_timeout_ms ? lim->header_timeout_ms : 10000);
    read_start(c);
}

/* "127.0.0.1:8443", "[::1]:8443", "*:8443", ":8443" */
static int parse_listen(struct sockaddr_storage *ss, const char *listen)
{
    char host[128];
    const char *colon;
    unsigned long long port;
    size_t hl;

    if (!listen)
        return -RE_EINVAL;
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':')
            return -RE_EINVAL;
        hl = (size_t)(rb - listen - 1);
        if (hl >= sizeof(host))
            return -RE_EINVAL;
        memcpy(host, listen + 1, hl);
        host[hl] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -RE_EINVAL;
        hl = (size_t)(colon - listen);
        if (hl >= sizeof(host))
            return -RE_EINVAL;
        memcpy(host, listen, hl);
        host[hl] = '\0';
        if (hl == 0 || strcmp(host, "*") == 0)
            re_snprintf(host, sizeof(host), "0.0.0.0");
    }
    if (re_str_to_u64(&port, re_str_c(colon + 1), 65535) < 0)
        return -RE_EINVAL;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -RE_EINVAL;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int db_ready(void *arg, struct re_buf *why)
{
    struct hub *hub = arg;
    char *msg = NULL;
    if (!hub->db)
        return 0;
    if (sqlite3_exec(hub->db, "SELECT 1", NULL, NULL, &msg) != SQLITE_OK) {
        re_buf_printf(why, "database: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return -RE_EDB;
    }
    return 0;
}

int server_start(struct server **out, struct hub *hub, const struct route *const *routes,
                 struct re_buf *err)
{
    struct server *s = calloc(1, sizeof(*s));
    struct sockaddr_storage ss;
    char ca[4096], crt[4096], key[4096], tk[4096];
    int r;

    if (!s)
        return -RE_ENOMEM;
    s->hub = hub;
    s->routes = routes;
    s->loop = hub->loop;
    raise_fd_limit();
    if (hub->cfg.limits.max_header_bytes + 1024 > 80 * 1024)
        http_parser_set_max_header_size((uint32_t)(hub->cfg.limits.max_header_bytes + 1024));
    if ((r = re_path_join(ca, sizeof(ca), hub->cfg.dir, HUB_CA_CRT)) < 0 ||
        (r = re_path_join(crt, sizeof(crt), hub->cfg.dir, HUB_SERVER_CRT)) < 0 ||
        (r = re_path_join(key, sizeof(key), hub->cfg.dir, HUB_SERVER_KEY)) < 0 ||
        (r = re_path_join(tk, sizeof(tk), hub->cfg.dir, HUB_TICKET_KEYS)) < 0) {
        re_buf_printf(err, "state directory path too long");
        goto out;
    }
    struct tls_server_options o = {
        .ca_file = ca, .cert_file = crt, .key_file = key,
        .ticket_key_file = tk, .ticket_rotate_s = hub->cfg.ticket_rotate_s,
    };
    if ((r = tls_config_new_server(&s->tls, &o, err)) < 0)
        goto out;
    if ((r = parse_listen(&ss, hub->cfg.listen)) < 0) {
        re_buf_printf(err, "bad listen address '%s': expected ADDR:PORT",
                      hub->cfg.listen ? hub->cfg.listen : "");
        goto out;
    }
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listener_init = true;
    if ((r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) < 0 ||
        (r = uv_listen((uv_stream_t *)&s->listener, 4096, on_connection)) < 0) {
        re_buf_printf(err, "cannot listen on '%s': %s", hub->cfg.listen, uv_strerror(r));
        r = -RE_EIO;
        goto out;
    }
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) == 0)
        s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
    if ((r = server_ready_add(s, "database", db_ready, hub)) < 0) {
        re_buf_printf(err, "out of memory");
        goto out;
    }
    hub->server = s;
    *out = s;
    return 0;
out:
    server_free(s);
    return r;
}

int server_port(const struct server *s)
{
    return s ? s->port : 0;
}

unsigned server_connections(const struct server *s)
{
    return s ? s->n_conns : 0;
}

static int ready_add(struct server *s, const char *name, server_ready_fn fn, void *arg,
                     bool warning)
{
    char *copy = strdup(name);
    struct ready_check *n = copy ? realloc(s->ready, (s->n_ready + 1) * sizeof(*n)) : NULL;
    if (!n) {
        free(copy);
        return -RE_ENOMEM;
    }
    s->ready = n;
    n[s->n_ready].name = copy;
    n[s->n_ready].fn = fn;
    n[s->n_ready].arg = arg;
    n[s->n_ready].warning = warning;
    s->n_ready++;
    return 0;
}

int server_ready_add(struct server *s, const char *name, server_ready_fn fn, void *arg)
{
    return ready_add(s, name, fn, arg, false);
}

int server_ready_add_warning(struct server *s, const char *name, server_ready_fn fn, void *arg)
{
    return ready_add(s, name, fn, arg, true);
}

/* ---- stopping ---- */

static void on_stop_timer_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    if (s->stop_cb)
        s->stop_cb(s, s->stop_arg);
}

static void maybe_stopped(struct server *s)
{
    if (!s->stopping || s->stop_called || !s->listener_closed || s->n_conns > 0)
        return;
    s->stop_called = true;
    uv_close((uv_handle_t *)&s->stop_timer, on_stop_timer_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    s->listener_closed = true;
    maybe_stopped(s);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    struct conn *c = s->conns, *next;
    if (s->n_conns)
        log_warn("stopping: cutting %u connections still busy", s->n_conns);
    for (; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

void server_stop(struct server *s, server_stop_cb cb, void *arg)
{
    struct conn *c, *next;
    if (!s || s->stopping)
        return;
    s->stopping = true;
    s->stop_cb = cb;
    s->stop_arg = arg;
    uv_timer_init(s->loop, &s->stop_timer);
    s->stop_timer.data = s;
    s->stop_timer_init = true;
    uv_timer_start(&s->stop_timer, on_stop_timer, STOP_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&s->stop_timer);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (c = s->conns; c; c = next) {
        next = c->next;
        bool idle = c->state == CS_HANDSHAKE ||
                    (c->state == CS_READING && !c->in_message && c->pending.len == 0);
        if (idle)
            conn_close(c);
    }
    maybe_stopped(s);
}

void server_free(struct server *s)
{
    if (!s)
        return;
    if (s->listener_init && !s->stopping) {
        /* start failed (or never stopped): close the handle before freeing */
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(s->loop, UV_RUN_NOWAIT);
    }
    if (s->hub && s->hub->server == s)
        s->hub->server = NULL;
    tls_config_free(s->tls);
    for (size_t i = 0; i < s->n_ready; i++)
        free(s->ready[i].name);
    free(s->ready);
    free(s);
}

/* ---- built-in routes ---- */

static int h_healthz(struct http_exchange *x)
{
    return http_response_text(&x->res, 200, "application/json", RE_STR_LIT("{\"status\":\"ok\"}"));
}

static int h_readyz(struct http_exchange *x)
{
    struct server *s = x->hub->server;
    struct re_buf why;
    cJSON *ans = NULL, *degraded = NULL;
    int r = 0;
    if (!s || s->stopping)
        return http_response_error(&x->res, 503, "not_ready", NULL, "the hub is shutting down");
    re_buf_init(&why, 4096);
    for (size_t i = 0; i < s->n_ready; i++) {
        re_buf_reset(&why);
        if (s->ready[i].fn(s->ready[i].arg, &why) == 0)
            continue;
        if (!s->ready[i].warning) {
            r = http_response_error(&x->res, 503, "not_ready", NULL, "%s: %s", s->ready[i].name,
                                    why.len ? why.ptr : "not ready");
            goto out;
        }
        cJSON *d = cJSON_CreateObject();
        if (!degraded)
            degraded = cJSON_CreateArray();
        cJSON_AddItemToArray(degraded, d);
        cJSON_AddStringToObject(d, "check", s->ready[i].name);
        cJSON_AddStringToObject(d, "message", why.len ? why.ptr : "degraded");
    }
    if (!(ans = cJSON_CreateObject()) ||
        !cJSON_AddStringToObject(ans, "status", degraded ? "degraded" : "ready")) {
        r = http_response_error(&x->res, 500, "no_memory", NULL, "out of memory");
        goto out;
    }
    if (degraded) {
        cJSON_AddItemToObject(ans, "degraded", degraded);
        degraded = NULL;
    }
    r = http_response_json(&x->res, 200, ans);
out:
    cJSON_Delete(ans);
    cJSON_Delete(degraded);
    re_buf_release(&why);
    return r;
}

static int h_metrics(struct http_exchange *x)
{
    int r;
    re_buf_reset(&x->res.body);
    r = metrics_render(x->hub->metrics, &x->res.body);
    if (r < 0)
        return r;
    x->res.status = 200;
    x->res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return 0;
}

const struct route server_routes[] = {
    { "GET", "/healthz", h_healthz, ROLE_PUBLIC },
    { "GET", "/readyz", h_readyz, ROLE_PUBLIC },
    { "GET", "/metrics", h_metrics, ROLE_READERS },
    { NULL, NULL, NULL, 0 },
};
