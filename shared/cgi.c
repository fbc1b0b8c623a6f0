/* cgi.c - a CGI program's header block (cgi.h). */
#include <string.h>
#include "cgi.h"
#include "error.h"

static bool clean(struct re_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static int header(struct re_cgi_head *h, struct re_str line)
{
    const char *colon = memchr(line.ptr, ':', line.len);
    if (!colon || colon == line.ptr)
        return -RE_EPARSE;
    struct re_str name = { line.ptr, (size_t)(colon - line.ptr) };
    struct re_str val = { colon + 1, line.len - name.len - 1 };
    while (val.len && (val.ptr[0] == ' ' || val.ptr[0] == '\t'))
        val.ptr++, val.len--;
    while (val.len && (val.ptr[val.len - 1] == ' ' || val.ptr[val.len - 1] == '\t'))
        val.len--;
    if (!clean(name) || !clean(val) || memchr(name.ptr, ' ', name.len))
        return -RE_EPARSE;
    if (re_str_caseeq_c(name, "Status")) {
        unsigned long long s;
        if (val.len < 3 || (val.len > 3 && val.ptr[3] != ' ') ||
            re_str_to_u64(&s, (struct re_str){ val.ptr, 3 }, 599) < 0 || s < 200)
            return -RE_EPARSE;
        h->status = (int)s;
    } else if (re_str_caseeq_c(name, "Content-Type")) {
        h->content_type = val;
    } else if (re_str_caseeq_c(name, "Cache-Control")) {
        h->cache_control = val;
    } else if (re_str_caseeq_c(name, "Expires")) {
        h->expires = val;
    } else if (re_str_caseeq_c(name, "Pragma")) {
        h->pragma = val;
    }
    return 0;
}

int re_cgi_parse_head(struct re_cgi_head *h, const char *text, size_t len, size_t max)
{
    const char *p = text, *end = text + len;
    int r;
    memset(h, 0, sizeof(*h));
    h->status = 200;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        struct re_str line = { p, (size_t)(nl - p) };
        if (line.len && line.ptr[line.len - 1] == '\r')
            line.len--;
        p = nl + 1;
        if ((size_t)(p - text) > max)
            return -RE_ETOOBIG;
        if (line.len == 0) {
            h->head_len = (size_t)(p - text);
            return 0;
        }
        if ((r = header(h, line)) < 0)
            return r;
    }
    return len > max ? -RE_ETOOBIG : -RE_EAGAIN;
}
