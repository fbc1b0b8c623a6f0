/* client.c - resedgectl's one way to talk to the hub: libcurl over mutual
 * TLS, bounded bodies and time, and errors turned into what to check. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#include "ctl.h"
#include "error.h"
#include "json.h"

#define RESPONSE_JSON_DEPTH 64

struct sink {
    struct re_buf *buf;
    bool too_big;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    if (re_buf_append(s->buf, data, size * n) < 0) {
        s->too_big = true;
        return 0;               /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return size * n;
}

int ctl_escape(struct re_buf *b, const char *s)
{
    int r;
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e)
        return -RE_ENOMEM;
    r = re_buf_append_str(b, e);
    curl_free(e);
    return r;
}

int ctl_query_add(struct re_buf *path, const char *key, const char *value)
{
    int r;
    bool has_query = path->ptr && memchr(path->ptr, '?', path->len);
    if ((r = re_buf_append(path, has_query ? "&" : "?", 1)) < 0 ||
        (r = ctl_escape(path, key)) < 0 || (r = re_buf_append(path, "=", 1)) < 0)
        return r;
    return ctl_escape(path, value);
}

/* The hub's words for what the CLI spells as flags: its hints name query
 * parameters, and this client made the call. */
static const struct { const char *api, *cli; } CLI_WORDS[] = {
    { "?create_groups=true", "--create-groups" },
    { "?cascade=true", "--cascade" },
    { "?dry_run=true", "--dry-run" },
    { " has version ", " has revision " },       /* a 412's message (--if-match REVISION) */
};

/* Prints s to stderr in the CLI's words. */
static void print_cli_words(const char *s)
{
    struct re_buf b;
    re_buf_init(&b, 64 * 1024);
    for (const char *p = s; *p;) {
        size_t i, n = sizeof(CLI_WORDS) / sizeof(CLI_WORDS[0]);
        for (i = 0; i < n; i++)
            if (strncmp(p, CLI_WORDS[i].api, strlen(CLI_WORDS[i].api)) == 0)
                break;
        if (i < n) {
            re_buf_append_str(&b, CLI_WORDS[i].cli);
            p += strlen(CLI_WORDS[i].api);
        } else {
            re_buf_append(&b, p++, 1);
        }
    }
    ctl_print_safe(stderr, b.ptr ? b.ptr : s);
    re_buf_release(&b);
}

static void print_field_note(const cJSON *field)
{
    if (!cJSON_IsString(field) || !*field->valuestring)
        return;
    fputs(" (field: ", stderr);
    ctl_print_safe(stderr, strcmp(field->valuestring, "If-Match") == 0 ? "--if-match"
                                                                        : field->valuestring);
    fputc(')', stderr);
}

static const char *detail_text(const cJSON *e)
{
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    return cJSON_IsString(msg) ? msg->valuestring : cJSON_IsString(e) ? e->valuestring : "";
}

static bool same_detail(const cJSON *a, const cJSON *b)
{
    const cJSON *fa = cJSON_GetObjectItemCaseSensitive(a, "field");
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(b, "field");
    return strcmp(detail_text(a), detail_text(b)) == 0 &&
           strcmp(cJSON_IsString(fa) ? fa->valuestring : "", cJSON_IsString(fb) ? fb->valuestring : "") == 0;
}

#define DETAIL_LINES_SHOWN 5

/* Bulk operations report every bad line; identical messages are one line
 * with their line numbers and a count. */
static void print_error_details(const cJSON *arr)
{
    for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next) {
        const cJSON *prev = arr->child;
        for (; prev != e && !same_detail(prev, e); prev = prev->next)
            ;
        if (prev != e)
            continue;                /* printed with its first occurrence */
        int count = 0, shown = 0;
        for (const cJSON *g = e; g; g = g->next)
            count += same_detail(g, e);
        fputs("  ", stderr);
        for (const cJSON *g = e; g && shown < DETAIL_LINES_SHOWN; g = g->next) {
            const cJSON *line = cJSON_GetObjectItemCaseSensitive(g, "line");
            if (!same_detail(g, e) || !cJSON_IsNumber(line))
                continue;
            fprintf(stderr, "%s%d", shown ? ", " : count > 1 ? "lines " : "line ", line->valueint);
            shown++;
        }
        if (count > shown && shown)
            fprintf(stderr, " and %d more", count - shown);
        if (shown)
            fputs(": ", stderr);
        print_cli_words(detail_text(e));
        print_field_note(cJSON_GetObjectItemCaseSensitive(e, "field"));
        if (count > 1)
            fprintf(stderr, " (%d times)", count);
        fputc('\n', stderr);
    }
}

void ctl_print_server_error(const char *body, size_t len, long status)
{
    cJSON *root = NULL;
    const cJSON *err, *msg, *field;

    if (len && re_json_parse(&root, (struct re_str){ body, len }, RESPONSE_JSON_DEPTH, NULL) == 0 &&
        cJSON_IsObject(err = cJSON_GetObjectItemCaseSensitive(root, "error")) &&
        cJSON_IsString(msg = cJSON_GetObjectItemCaseSensitive(err, "message"))) {
        fputs("error: ", stderr);
        print_cli_words(msg->valuestring);
        field = cJSON_GetObjectItemCaseSensitive(err, "field");
        print_field_note(field);
        fputc('\n', stderr);
        /* Bulk operations report every bad line. */
        print_error_details(cJSON_GetObjectItemCaseSensitive(err, "errors"));
        print_error_details(cJSON_GetObjectItemCaseSensitive(err, "details"));
        print_error_details(cJSON_GetObjectItemCaseSensitive(root, "errors"));
    } else {
        fprintf(stderr, "error: the hub answered HTTP %ld", status);
        if (len) {
            /* Not our JSON (a proxy?): show the start of it. */
            struct re_buf b;
            re_buf_init(&b, 512);
            re_buf_append(&b, body, len > 200 ? 200 : len);
            fputs(": ", stderr);
            ctl_print_safe(stderr, b.ptr ? b.ptr : "");
            re_buf_release(&b);
        }
        fputc('\n', stderr);
    }
    if (status == 401)
        fputs("hint: the hub did not accept the client certificate: check cert and key in the "
              "profile (or --cert/--key) and that they were issued by this hub\n", stderr);
    cJSON_Delete(root);
}

/* Explains a transport failure: what happened and what to check. */
static void print_transport_error(const struct ctl *c, const struct ctl_req *r, const char *url,
                                  CURLcode rc, const char *detail)
{
    const char *from = c->profile_loaded ? c->profile_path : NULL;
    const char *why = *detail ? detail : curl_easy_strerror(rc);

    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        fprintf(stderr, "error: bad hub URL '%s': %s\n", url, why);
        fprintf(stderr, "hint: check the hub URL (--hub%s%s)\n", from ? " or [hub] url in " : "",
                from ? from : "");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
        fprintf(stderr, "error: cannot reach the hub at '%s': %s\n", url, why);
        fprintf(stderr, "hint: check the hub URL (--hub%s%s) and that the hub is running\n",
                from ? " or [hub] url in " : "", from ? from : "");
        break;
    case CURLE_SSL_CERTPROBLEM:
        fprintf(stderr, "error: cannot use the client certificate: %s\n", why);
        fprintf(stderr, "hint: check the certificate paths cert=%s and key=%s%s%s%s\n", c->cert,
                c->key, from ? " (from " : "", from ? from : "", from ? ")" : "");
        break;
    case CURLE_SSL_CACERT_BADFILE:
        fprintf(stderr, "error: cannot load the CA certificate: %s\n", why);
        fprintf(stderr, "hint: check the certificate path ca=%s\n", c->ca ? c->ca : "(none)");
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        fprintf(stderr, "error: the hub's certificate is not trusted: %s\n", why);
        fprintf(stderr, "hint: check ca=%s is the CA of this hub (DIR/tls/ca.crt) and that the host "
                        "in the hub URL is one of its names (resedge-hub init --san)\n",
                c->ca ? c->ca : "(none)");
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        fprintf(stderr, "error: TLS connection to the hub at '%s' failed: %s\n", url, why);
        fprintf(stderr, "hint: check that the URL is the hub's https port and that cert=%s and "
                        "key=%s were issued by the hub's CA\n",
                r->anonymous ? "-" : c->cert, r->anonymous ? "-" : c->key);
        break;
    default:
        fprintf(stderr, "error: request to '%s' failed: %s\n", url, why);
        break;
    }
}

static int check_file(const char *what, const char *path, const struct ctl *c)
{
    if (access(path, R_OK) == 0)
        return 0;
    fprintf(stderr, "error: cannot read the %s '%s': %s\n", what, path, strerror(errno));
    fprintf(stderr, "hint: check the certificate paths (--ca/--cert/--key%s%s)\n",
            c->profile_loaded ? " or [hub] in " : "", c->profile_loaded ? c->profile_path : "");
    return CTL_ECONN;
}

int ctl_request(struct ctl *c, const struct ctl_req *r, long *status, struct re_buf *out)
{
    CURL *h;
    CURLcode rc;
    struct curl_slist *hdrs = NULL;
    struct re_buf url, line;
    struct re_buf body;
    struct sink sink = { &body, false };
    char errbuf[CURL_ERROR_SIZE] = "";
    long code = 0;
    int ret = CTL_ECONN;

    re_buf_init(&url, 64 * 1024);
    re_buf_init(&line, 4096);
    re_buf_init(&body, CTL_MAX_BODY);
    if (status)
        *status = 0;
    if (!r->insecure && !r->ca_pem && (ret = check_file("CA certificate", c->ca, c)) != 0)
        goto out;
    if (!r->anonymous && ((ret = check_file("client certificate", c->cert, c)) != 0 ||
                          (ret = check_file("client key", c->key, c)) != 0))
        goto out;
    ret = CTL_ECONN;
    if (!c->curl) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->curl = curl_easy_init())) {
            fputs("error: cannot initialize libcurl\n", stderr);
            goto out;
        }
    }
    h = c->curl;
    curl_easy_reset(h);
    if (re_buf_printf(&url, "%s%s", r->base ? r->base : c->hub, r->path) < 0)
        goto nomem;

    curl_easy_setopt(h, CURLOPT_URL, url.ptr);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CTL_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)CTL_TOTAL_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CTL_MAX_BODY);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "resedgectl/" RE_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    if (strcmp(r->method, "GET") == 0)
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    else if (strcmp(r->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (r->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (r->ca_pem) {
        struct curl_blob blob = { (void *)r->ca_pem, strlen(r->ca_pem), CURL_BLOB_COPY };
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    } else {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (!r->anonymous) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
    }
    if (!(hdrs = curl_slist_append(hdrs, "Accept: application/json")))
        goto nomem;
    if (r->body) {
        re_buf_reset(&line);
        if (re_buf_printf(&line, "Content-Type: %s",
                          r->content_type ? r->content_type : "application/json") < 0 ||
            !(hdrs = curl_slist_append(hdrs, line.ptr)))
            goto nomem;
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PATCH") == 0 ||
               strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (r->if_match) {
        re_buf_reset(&line);
        if (re_buf_printf(&line, "If-Match: %s", r->if_match) < 0 ||
            !(hdrs = curl_slist_append(hdrs, line.ptr)))
            goto nomem;
    }
    /* curl adds "Expect: 100-continue" to larger bodies; the hub does not need it. */
    if (!(hdrs = curl_slist_append(hdrs, "Expect:")))
        goto nomem;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    if (c->verbose)
        fprintf(stderr, "> %s %s\n", r->method, url.ptr);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = code;
    if (c->verbose)
        fprintf(stderr, "< %ld (%zu bytes)\n", code, body.len);
    if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        fprintf(stderr, "error: the hub's answer is larger than the %u MiB limit\n",
                CTL_MAX_BODY / (1024 * 1024));
        fputs("hint: ask for less (--limit N, or a narrower filter)\n", stderr);
        ret = CTL_ESERVER;
        goto out;
    }
    if (rc != CURLE_OK) {
        print_transport_error(c, r, url.ptr, rc, errbuf);
        ret = CTL_ECONN;
        goto out;
    }
    if (code < 200 || code > 299) {
        ctl_print_server_error(body.ptr, body.len, code);
        ret = CTL_ESERVER;
        goto out;
    }
    if (out && body.len && re_buf_append(out, body.ptr, body.len) < 0) {
        fputs("error: the hub's answer is too large\n", stderr);
        ret = CTL_ESERVER;
        goto out;
    }
    ret = CTL_OK;
    goto out;
nomem:
    fputs("error: out of memory\n", stderr);
    ret = CTL_ECONN;
out:
    if (c->curl)
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    re_buf_release(&url);
    re_buf_release(&line);
    re_buf_release(&body);
    return ret;
}

int ctl_call(struct ctl *c, const char *method, const char *path, const cJSON *body,
             const char *if_match, cJSON **out)
{
    struct ctl_req req = { .method = method, .path = path, .if_match = if_match };
    struct re_buf resp, in;
    size_t errpos = 0;
    int ret, r;

    re_buf_init(&resp, CTL_MAX_BODY);
    re_buf_init(&in, CTL_MAX_INPUT);
    *out = NULL;
    if (body) {
        if (re_json_print(&in, body) < 0) {
            fputs("error: request body too large\n", stderr);
            ret = CTL_EUSAGE;
            goto out;
        }
        req.body = in.ptr;
        req.body_len = in.len;
    }
    if ((ret = ctl_request(c, &req, NULL, &resp)) != CTL_OK)
        goto out;
    if (resp.len == 0)
        goto out;
    r = re_json_parse(out, re_buf_str(&resp), RESPONSE_JSON_DEPTH, &errpos);
    if (r < 0) {
        fprintf(stderr, "error: the hub's answer is not valid JSON (%s at byte %zu)\n",
                re_strerror(r), errpos);
        ret = CTL_ESERVER;
    }
out:
    re_buf_release(&resp);
    re_buf_release(&in);
    return ret;
}

void ctl_release(struct ctl *c)
{
    if (c->curl) {
        curl_easy_cleanup(c->curl);
        curl_global_cleanup();
    }
    free(c->profile_path);
    free(c->hub);
    free(c->ca);
    free(c->cert);
    free(c->key);
    memset(c, 0, sizeof(*c));
}
