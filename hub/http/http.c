/* http.c - helpers every handler uses: header and query lookup, percent
 * decoding, responses and the JSON error shape. No sockets here (server.c). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <http_parser.h>
#include "error.h"
#include "http.h"
#include "json.h"

#define HTTP_RES_HEADERS_MAX (16 * 1024)

struct re_str http_header_get(const struct http_request *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name.len == nl && strncasecmp(h->name.ptr, name, nl) == 0)
            return h->value;
    }
    return RE_STR_NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_percent_decode(char **out, struct re_str in, bool form)
{
    char *s = malloc(in.len + 1);
    size_t o = 0;
    if (!s)
        return -RE_ENOMEM;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= in.len)
                goto bad;
            hi = hexval(in.ptr[i + 1]);
            lo = hexval(in.ptr[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))   /* %00 would cut C strings */
                goto bad;
            s[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && form) {
            s[o++] = ' ';
        } else if (c == '\0') {
            goto bad;
        } else {
            s[o++] = c;
        }
    }
    s[o] = '\0';
    *out = s;
    return 0;
bad:
    free(s);
    return -RE_EINVAL;
}

int http_query_get(const struct http_request *req, const char *key, char **out)
{
    const char *p = req->query.ptr, *end = p ? p + req->query.len : NULL;
    if (!p)
        return -RE_ENOENT;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        struct re_str k = { p, (size_t)((eq ? eq : stop) - p) };
        struct re_str v = eq ? (struct re_str){ eq + 1, (size_t)(stop - eq - 1) }
                             : (struct re_str){ stop, 0 };
        if (k.len > 0) {
            char *dk = NULL;
            int r = http_percent_decode(&dk, k, true);
            if (r < 0)
                return r;
            bool match = strcmp(dk, key) == 0;
            free(dk);
            if (match)
                return http_percent_decode(out, v, true);
        }
        p = stop + (amp ? 1 : 0);
        if (!amp)
            break;
    }
    return -RE_ENOENT;
}

void http_response_init(struct http_response *res, size_t max_body)
{
    res->status = 0;
    res->content_type = NULL;
    re_buf_init(&res->headers, HTTP_RES_HEADERS_MAX);
    re_buf_init(&res->body, max_body);
}

void http_response_release(struct http_response *res)
{
    re_buf_release(&res->headers);
    re_buf_release(&res->body);
    res->status = 0;
    res->content_type = NULL;
}

static bool header_safe(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    return true;
}

int http_response_header(struct http_response *res, const char *name, const char *fmt, ...)
{
    struct re_buf v;
    va_list ap;
    int r;
    size_t nl = strlen(name);
    if (nl == 0 || !header_safe(name, nl) || memchr(name, ':', nl))
        return -RE_EINVAL;
    re_buf_init(&v, HTTP_RES_HEADERS_MAX);
    va_start(ap, fmt);
    r = re_buf_vprintf(&v, fmt, ap);
    va_end(ap);
    if (r == 0 && !header_safe(v.ptr ? v.ptr : "", v.len))
        r = -RE_EINVAL;
    if (r == 0)
        r = re_buf_printf(&res->headers, "%s: %s\r\n", name, v.ptr ? v.ptr : "");
    re_buf_release(&v);
    return r;
}

int http_response_json(struct http_response *res, int status, const cJSON *json)
{
    int r;
    re_buf_reset(&res->body);
    r = re_json_print(&res->body, json);
    if (r < 0) {
        re_buf_reset(&res->body);
        return r;
    }
    res->status = status;
    res->content_type = "application/json";
    return 0;
}

int http_response_text(struct http_response *res, int status, const char *content_type,
                       struct re_str body)
{
    int r;
    re_buf_reset(&res->body);
    r = re_buf_append(&res->body, body.ptr ? body.ptr : "", body.len);
    if (r < 0)
        return r;
    res->status = status;
    res->content_type = content_type;
    return 0;
}

static int response_error_str(struct http_response *res, int status, const char *code,
                              const char *field, const char *message)
{
    cJSON *root = cJSON_CreateObject(), *e = NULL;
    int r = -RE_ENOMEM;
    if (!root)
        goto out;
    e = cJSON_AddObjectToObject(root, "error");
    if (!e || !cJSON_AddStringToObject(e, "code", code ? code : "error") ||
        !cJSON_AddStringToObject(e, "message", message ? message : ""))
        goto out;
    if (field && !cJSON_AddStringToObject(e, "field", field))
        goto out;
    r = http_response_json(res, status, root);
out:
    if (r < 0) {
        /* Still answer with the right status, even with an empty body. */
        re_buf_reset(&res->body);
        res->status = status;
        res->content_type = "application/json";
    }
    cJSON_Delete(root);
    return r;
}

int http_response_error(struct http_response *res, int status, const char *code,
                        const char *field, const char *fmt, ...)
{
    struct re_buf msg;
    va_list ap;
    int r;
    re_buf_init(&msg, 4096);
    va_start(ap, fmt);
    r = re_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0) {
        re_buf_reset(&msg);
        re_buf_append_str(&msg, "(message too long)");
    }
    r = response_error_str(res, status, code, field, msg.ptr ? msg.ptr : "");
    re_buf_release(&msg);
    return r;
}

int http_status_from_err(int err)
{
    return re_err_status(err);
}

int http_response_from_err(struct http_response *res, int err, const char *field,
                           const char *message)
{
    int status = http_status_from_err(err);
    /* Internal failures keep their details in the log, not in the answer. */
    if (!message || (status == 500 && !message[0]))
        message = re_strerror(err);
    return response_error_str(res, status, re_errcode(err), field, message);
}

const char *http_reason(int status)
{
    const char *s;
    if (status == 431)
        return "Request Header Fields Too Large";
    s = http_status_str((enum http_status)status);
    return s && s[0] != '<' ? s : "Unknown";
}
