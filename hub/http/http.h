/* http.h - the request/response types every hub handler sees, independent of
 * the transport (server.c owns sockets, TLS and parsing). */
#ifndef HUB_HTTP_H
#define HUB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "buf.h"
#include "inventory/caller.h"

struct hub;

struct http_header {
    struct re_str name;
    struct re_str value;
};

struct http_request {
    int method;                  /* enum http_method (http_parser.h) */
    const char *method_name;     /* "GET" */
    struct re_str target;        /* raw request target */
    struct re_str path;          /* target up to '?' (not percent-decoded) */
    struct re_str query;         /* after '?', raw; empty when absent */
    const struct http_header *headers;
    size_t n_headers;
    struct re_str body;
    struct caller peer;
};

struct http_response {
    int status;                  /* 0 until set */
    const char *content_type;    /* static string; default application/json */
    struct re_buf headers;       /* extra "Name: value\r\n" lines */
    struct re_buf body;
};

/* One request and its response; lives until the response is sent. */
struct http_exchange {
    struct http_request req;
    struct http_response res;
    struct hub *hub;
    void *conn;                  /* server-private */
    const char *route;           /* route label for metrics ("/api/v1/clusters/{name}") */
    struct re_str params[4];     /* values of {placeholders} in the route pattern, in order */
    size_t n_params;
};

/* A handler returns 0 when res is complete, or HTTP_DEFERRED when it will call
 * http_exchange_done() later from the loop thread (e.g. after thread-pool work). */
#define HTTP_DEFERRED 1
typedef int (*http_handler)(struct http_exchange *x);
void http_exchange_done(struct http_exchange *x);     /* implemented by server.c */

/* Case-insensitive header lookup; RE_STR_NULL when absent. */
struct re_str http_header_get(const struct http_request *req, const char *name);
/* Percent-decoded query parameter; *out is malloc'd. -RE_ENOENT if absent,
 * -RE_EINVAL if badly encoded. */
int http_query_get(const struct http_request *req, const char *key, char **out);
/* Decode %XX (and '+' as space when form is true) into a new string. */
int http_percent_decode(char **out, struct re_str in, bool form);

/* Response helpers; all return 0 or a negative RE error. */
int http_response_header(struct http_response *res, const char *name,
                         const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets status and a compact JSON body; takes no ownership of json. */
int http_response_json(struct http_response *res, int status, const cJSON *json);
/* {"error": {"code": code, "message": message, "field": field}}; field may be NULL. */
int http_response_error(struct http_response *res, int status, const char *code,
                        const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Map a negative RE error to a status and error body. */
int http_response_from_err(struct http_response *res, int err, const char *field,
                           const char *message);
void http_response_init(struct http_response *res, size_t max_body);
void http_response_release(struct http_response *res);

/* ---- additions (server helper) ---- */

/* Sets status, content type (a static string) and body bytes. */
int http_response_text(struct http_response *res, int status, const char *content_type,
                       struct re_str body);
/* Status for a negative RE error (the mapping http_response_from_err uses). */
int http_status_from_err(int err);
/* Standard reason phrase ("Not Found"), never NULL. */
const char *http_reason(int status);

#endif
