/* hubclient.c - the agent's libcurl client for the hub's API. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "error.h"
#include "hubclient.h"
#include "json.h"
#include "tick.h"

struct hubclient {
    CURL *curl;
    char *base_url;
    char *ca_pem;
    char *cert_file;
    char *key_file;
    bool insecure;
    long connect_timeout_ms;
    long timeout_ms;
    volatile sig_atomic_t *abort_flag;
    bool too_big;
};

int hubclient_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -RE_EIO;
}

void hubclient_global_cleanup(void)
{
    curl_global_cleanup();
}

static char *dup_or_null(const char *s, bool *fail)
{
    char *d;
    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        *fail = true;
    return d;
}

int hubclient_new(struct hubclient **out, const struct hubclient_opts *o)
{
    struct hubclient *c = calloc(1, sizeof(*c));
    bool fail = false;
    if (!c)
        return -RE_ENOMEM;
    if (!o->base_url || strncmp(o->base_url, "https://", 8) != 0 || (!o->ca_pem && !o->insecure)) {
        free(c);
        return -RE_EINVAL;
    }
    c->base_url = dup_or_null(o->base_url, &fail);
    c->ca_pem = dup_or_null(o->ca_pem, &fail);
    c->cert_file = dup_or_null(o->cert_file, &fail);
    c->key_file = dup_or_null(o->key_file, &fail);
    c->insecure = o->insecure;
    c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : 30000;
    c->abort_flag = o->abort_flag;
    c->curl = curl_easy_init();
    if (fail || !c->curl) {
        hubclient_free(c);
        return -RE_ENOMEM;
    }
    /* Strip trailing slashes so paths join cleanly. */
    size_t n = strlen(c->base_url);
    while (n > 8 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    *out = c;
    return 0;
}

void hubclient_free(struct hubclient *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base_url);
    free(c->ca_pem);
    free(c->cert_file);
    free(c->key_file);
    free(c);
}

void hubclient_resp_init(struct hubclient_resp *r)
{
    memset(r, 0, sizeof(*r));
    re_buf_init(&r->body, HUBCLIENT_MAX_BODY);
    r->retry_after_s = -1;
}

void hubclient_resp_release(struct hubclient_resp *r)
{
    re_buf_release(&r->body);
}

struct xfer {
    struct hubclient *c;
    struct hubclient_resp *resp;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    if (re_buf_append(&x->resp->body, data, size * n) < 0) {
        x->c->too_big = true;
        return 0;
    }
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    struct re_str line = { data, len };
    /* A new response (after 100-continue) starts over. */
    if (re_str_startswith_c(line, "HTTP/")) {
        x->resp->retry_after_s = -1;
        x->resp->location[0] = '\0';
        return len;
    }
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n' || data[len - 1] == ' '))
        len--;
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return size * n;
    struct re_str name = { data, (size_t)(colon - data) };
    const char *v = colon + 1;
    while (v < data + len && (*v == ' ' || *v == '\t'))
        v++;
    struct re_str value = { v, (size_t)(data + len - v) };
    if (re_str_caseeq_c(name, "retry-after")) {
        unsigned long long s;
        /* Only the delta-seconds form; an HTTP-date is treated as absent. */
        if (re_str_to_u64(&s, value, 86400) == 0)
            x->resp->retry_after_s = (long)s;
    } else if (re_str_caseeq_c(name, "location")) {
        size_t m = value.len < sizeof(x->resp->location) - 1 ? value.len
                                                             : sizeof(x->resp->location) - 1;
        memcpy(x->resp->location, value.ptr, m);
        x->resp->location[m] = '\0';
    }
    return size * n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct xfer *x = ud;
    tick();
    return x->c->abort_flag && *x->c->abort_flag ? 1 : 0;
}

int hubclient_request(struct hubclient *c, const char *method, const char *path,
                      const char *body, size_t body_len, struct hubclient_resp *resp,
                      struct re_buf *err)
{
    CURL *h = c->curl;
    struct curl_slist *hdrs = NULL;
    struct re_buf url;
    struct xfer x = { c, resp };
    char errbuf[CURL_ERROR_SIZE] = "";
    int r;
    CURLcode cc;
    re_buf_init(&url, 8192);
    resp->status = 0;
    resp->retry_after_s = -1;
    resp->location[0] = '\0';
    re_buf_reset(&resp->body);
    c->too_big = false;
    if ((r = re_buf_printf(&url, "%s%s", c->base_url, path)) < 0)
        goto out;
    curl_easy_reset(h); /* keeps the connection cache and TLS session ids */
    curl_easy_setopt(h, CURLOPT_URL, url.ptr);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "resedge-agent/" RE_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HUBCLIENT_MAX_BODY);
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        struct curl_blob blob = { c->ca_pem, strlen(c->ca_pem), CURL_BLOB_COPY };
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (c->cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
    }
    if (strcmp(method, "POST") == 0) {
        if (!(hdrs = curl_slist_append(hdrs, "Content-Type: application/json")) ||
            !(hdrs = curl_slist_append(hdrs, "Expect:"))) {
            r = -RE_ENOMEM;
            goto out;
        }
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (!(hdrs = curl_slist_append(hdrs, "Accept: application/json"))) {
        r = -RE_ENOMEM;
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        switch (cc) {
        case CURLE_WRITE_ERROR:
        case CURLE_FILESIZE_EXCEEDED:
            r = c->too_big || cc == CURLE_FILESIZE_EXCEEDED ? -RE_ETOOBIG : -RE_EIO;
            if (r == -RE_ETOOBIG)
                why = "response body larger than 1 MiB";
            break;
        case CURLE_OPERATION_TIMEDOUT: r = -RE_ETIMEOUT; break;
        case CURLE_ABORTED_BY_CALLBACK: r = -RE_EAGAIN; why = "interrupted"; break;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
            r = -RE_ETLS;
            break;
        default: r = -RE_EIO; break;
        }
        if (err)
            re_buf_printf(err, "%s", why);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    r = 0;
out:
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    re_buf_release(&url);
    return r;
}

void hubclient_error_message(char *out, size_t size, const struct hubclient_resp *resp)
{
    cJSON *j = NULL;
    out[0] = '\0';
    if (resp->body.len && re_json_parse(&j, re_buf_str(&resp->body), 8, NULL) == 0) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const char *msg = NULL, *code = NULL;
        if (cJSON_IsObject(e)) {
            re_json_get_string(&msg, e, "message");
            re_json_get_string(&code, e, "code");
        }
        if (msg)
            re_snprintf(out, size, "%.200s%s%.40s%s", msg, code ? " (" : "", code ? code : "",
                        code ? ")" : "");
        cJSON_Delete(j);
        if (out[0])
            return;
    }
    /* Not JSON: a bounded excerpt with control characters replaced. */
    size_t n = 0;
    for (size_t i = 0; i < resp->body.len && n + 1 < size && i < 200; i++) {
        unsigned char ch = (unsigned char)resp->body.ptr[i];
        out[n++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    out[n] = '\0';
    if (n == 0)
        re_snprintf(out, size, "HTTP %ld with no explanation", resp->status);
}
