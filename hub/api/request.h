/* request.h - the JSON-API request toolkit every inventory handler uses: one
 * request = one inventory operation (inventory_int.h) plus the HTTP exchange
 * it came on. Parses query, path and body with the hub's limits, answers
 * errors and results, pages lists with opaque cursors. */
#ifndef HUB_API_REQUEST_H
#define HUB_API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "http/http.h"
#include "inventory/inventory_int.h"

struct api_req {
    struct inv_req q;            /* the operation: caller, time, first error */
    struct http_exchange *x;
};

/* Sets up r for x (actor, time, ?dry_run); returns &r->q. */
struct inv_req *api_req_init(struct api_req *r, struct http_exchange *x);
/* Writes the operation's error into the response; returns 0 (handler result). */
int api_reply_error(struct api_req *r);
/* 403 unless the caller has one of roles (the message names method and path). */
int api_require_role(struct api_req *r, unsigned roles);
/* Parses the body as a JSON object with the configured depth limit. */
int api_parse_object(struct api_req *r, cJSON **out);
/* Decoded query parameter, malloc'd; NULL (and 0) when absent. */
int api_query(struct api_req *r, const char *key, char **out);
/* Boolean query parameter (true/false/1/0); def when absent. */
int api_query_bool(struct api_req *r, const char *key, bool def, bool *out);
/* A path parameter, percent-decoded, malloc'd. */
int api_param(struct api_req *r, size_t i, char **out);
/* Parses ?limit (default 100, 1..1000); 400 naming "limit" otherwise. */
int api_parse_limit(struct api_req *r, int *out);

/* Ends the operation's transaction and answers: a dry run rolls back and
 * answers 200 {"dry_run": true, "status": status, "result": result,
 * ...preview (?diff=CLUSTER)}; else COMMIT, then status + result (NULL: no
 * body), with Location/ETag when given. Consumes nothing. */
int api_finish(struct api_req *r, int status, const cJSON *result,
               const struct inventory_change *chg, const char *location, int64_t etag);

/* Opaque list cursors: base64url of a JSON object. */
int api_cursor_encode(char **out, const cJSON *state);
int api_cursor_decode(cJSON **out, const char *text);

#endif
