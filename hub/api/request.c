/* request.c - the JSON-API request toolkit (request.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <http_parser.h>
#include <mbedtls/base64.h>
#include "clock.h"
#include "error.h"
#include "hub.h"
#include "inventory/auth.h"
#include "validate.h"
#include "json.h"
#include "request.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000
#define CURSOR_MAX 16384

int api_reply_error(struct api_req *r)
{
    struct inv_req *q = &r->q;
    inv_abort(q);
    if (!q->status)
        inv_fail(q, 500, "internal", NULL, "internal error");
    http_response_error(&r->x->res, q->status, q->code, q->field[0] ? q->field : NULL, "%s",
                        q->message);
    return 0;
}

int api_require_role(struct api_req *r, unsigned roles)
{
    struct inv_req *q = &r->q;
    if (inv_is(q, roles))
        return 0;
    return inv_fail(q, 403, "forbidden", NULL, "role '%s' may not %s %.*s",
                    role_name(q->peer->role), r->x->req.method_name ? r->x->req.method_name : "",
                    (int)r->x->req.path.len, r->x->req.path.ptr ? r->x->req.path.ptr : "");
}

int api_query(struct api_req *r, const char *key, char **out)
{
    struct inv_req *q = &r->q;
    int rc = http_query_get(&r->x->req, key, out);
    if (rc == -RE_ENOENT) {
        *out = NULL;
        return 0;
    }
    if (rc < 0)
        return inv_fail(q, 400, "invalid", key, "query parameter '%s' is badly encoded", key);
    return 0;
}

int api_query_bool(struct api_req *r, const char *key, bool def, bool *out)
{
    struct inv_req *q = &r->q;
    char *v = NULL;
    int rc = api_query(r, key, &v);
    if (rc < 0)
        return rc;
    if (!v)
        *out = def;
    else if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        rc = inv_fail(q, 400, "invalid", key, "'%s' must be true or false", key);
    free(v);
    return rc;
}

int api_param(struct api_req *r, size_t i, char **out)
{
    struct inv_req *q = &r->q;
    if (i >= r->x->n_params ||
        http_percent_decode(out, r->x->params[i], false) < 0)
        return inv_fail(q, 400, "invalid", NULL, "badly encoded path");
    return 0;
}

struct inv_req *api_req_init(struct api_req *r, struct http_exchange *x)
{
    struct inv_req *q = &r->q;
    memset(r, 0, sizeof(*r));
    r->x = x;
    q->hub = x->hub;
    q->db = x->hub->db;
    q->peer = &x->req.peer;
    if (auth_identity(q->actor, sizeof(q->actor), q->peer) < 0)
        snprintf(q->actor, sizeof(q->actor), "unknown");
    q->now = re_time();
    q->live = x->req.method == HTTP_GET;
    api_query_bool(r, "dry_run", false, &q->dry_run);
    return q;
}

int api_parse_object(struct api_req *r, cJSON **out)
{
    struct inv_req *q = &r->q;
    size_t pos = 0;
    int depth = q->hub->cfg.limits.max_json_depth > 0 ? q->hub->cfg.limits.max_json_depth
                                                      : RE_JSON_DEFAULT_DEPTH;
    struct re_json_error e = { 0 };
    int rc = re_json_parse_err(out, r->x->req.body, depth, &e);
    pos = e.pos;
    if (rc == -RE_EDEPTH)
        return inv_fail(q, 400, "too_deep", NULL, "JSON nested deeper than %d levels", depth);
    if (rc < 0 && e.key[0])
        return inv_fail(q, 400, "parse_error", e.key, "invalid JSON at byte %zu: %s '%s'", pos,
                        e.why ? e.why : "duplicate key", e.key);
    if (rc < 0)
        return inv_fail(q, 400, "parse_error", NULL, "invalid JSON at byte %zu%s%s", pos,
                        e.why ? ": " : "", e.why ? e.why : "");
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return inv_fail(q, 400, "invalid", NULL, "the body must be a JSON object");
    }
    return 0;
}

int api_finish(struct api_req *r, int status, const cJSON *result,
               const struct inventory_change *chg, const char *location, int64_t etag)
{
    struct inv_req *q = &r->q;
    struct http_response *res = &r->x->res;
    int rc;
    if (q->dry_run) {
        cJSON *answer = cJSON_CreateObject();
        if (!answer || !cJSON_AddTrueToObject(answer, "dry_run") ||
            !cJSON_AddNumberToObject(answer, "status", status) ||
            !cJSON_AddItemToObject(answer, "result", result ? cJSON_Duplicate(result, 1)
                                                            : cJSON_CreateNull())) {
            cJSON_Delete(answer);
            return inv_fail_err(q, -RE_ENOMEM);
        }
        char *diff = NULL;
        const char *why = NULL;
        if ((rc = api_query(r, "diff", &diff)) < 0) {
            cJSON_Delete(answer);
            return rc;
        }
        if (diff && validate_dns_label(re_str_c(diff), &why) < 0) {
            rc = inv_fail(q, 400, "invalid", "diff", "diff: a cluster name %s", why);
            free(diff);
            cJSON_Delete(answer);
            return rc;
        }
        rc = inv_preview(q, chg, diff, answer);
        free(diff);
        if (rc < 0) {
            cJSON_Delete(answer);
            return rc;
        }
        rc = http_response_json(res, 200, answer);
        cJSON_Delete(answer);
        return rc < 0 ? inv_fail_err(q, rc) : 0;
    }
    if ((rc = inv_commit(q, chg)) < 0)
        return rc;
    if (location)
        http_response_header(res, "Location", "%s", location);
    if (etag > 0)
        http_response_header(res, "ETag", "\"%lld\"", (long long)etag);
    if (result) {
        rc = http_response_json(res, status, result);
        if (rc < 0)
            return inv_fail_err(q, rc);
    } else {
        re_buf_reset(&res->body);
        res->status = status;
    }
    return 0;
}

int api_cursor_encode(char **out, const cJSON *state)
{
    char *json = cJSON_PrintUnformatted(state);
    unsigned char *b64 = NULL;
    size_t n = 0, len;
    int r = -RE_ENOMEM;
    if (!json)
        goto out;
    len = strlen(json);
    mbedtls_base64_encode(NULL, 0, &n, (const unsigned char *)json, len);
    if (!(b64 = malloc(n + 1)))
        goto out;
    if (mbedtls_base64_encode(b64, n + 1, &n, (const unsigned char *)json, len) != 0) {
        r = -RE_EINVAL;
        goto out;
    }
    /* URL-safe alphabet, no padding */
    while (n > 0 && b64[n - 1] == '=')
        n--;
    b64[n] = '\0';
    for (size_t i = 0; i < n; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    *out = (char *)b64;
    b64 = NULL;
    r = 0;
out:
    free(json);
    free(b64);
    return r;
}

int api_cursor_decode(cJSON **out, const char *text)
{
    size_t len = strlen(text), n = 0;
    char *b64 = NULL;
    unsigned char *raw = NULL;
    cJSON *state = NULL;
    const cJSON *k;
    long long num;
    int r = -RE_EINVAL;
    if (len == 0 || len > CURSOR_MAX)
        return -RE_EINVAL;
    if (!(b64 = malloc(len + 4)) || !(raw = malloc(len + 4))) {
        r = -RE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
        if (c == '+' || c == '/' || c == '=')
            goto out;
    }
    while (len % 4)
        b64[len++] = '=';
    if (mbedtls_base64_decode(raw, len, &n, (unsigned char *)b64, len) != 0)
        goto out;
    if ((r = re_json_parse(&state, (struct re_str){ (char *)raw, n }, 8, NULL)) < 0)
        goto out;
    /* The cursor came back from the client: its numbers go into int64
     * binds, so they must be whole numbers in range (re_json_get_int). */
    r = -RE_EINVAL;
    k = cJSON_GetObjectItem(state, "k");
    if (!cJSON_IsObject(state) || !cJSON_IsObject(cJSON_GetObjectItem(state, "f")) ||
        re_json_get_int(&num, state, "i") < 0 ||
        (k && !cJSON_IsString(k) && re_json_get_int(&num, state, "k") < 0))
        goto out;
    *out = state;
    state = NULL;
    r = 0;
out:
    cJSON_Delete(state);
    free(b64);
    free(raw);
    return r < 0 ? -RE_EINVAL : 0;
}

int api_parse_limit(struct api_req *r, int *out)
{
    struct inv_req *q = &r->q;
    char *v = NULL;
    unsigned long long n;
    int rc = api_query(r, "limit", &v);
    if (rc < 0)
        return rc;
    if (!v) {
        *out = LIMIT_DEFAULT;
        return 0;
    }
    rc = re_str_to_u64(&n, re_str_c(v), 100000000ULL);
    free(v);
    if (rc < 0 || n < 1 || n > LIMIT_MAX)
        return inv_fail(q, 400, "invalid", "limit", "limit must be between 1 and %d", LIMIT_MAX);
    *out = (int)n;
    return 0;
}
