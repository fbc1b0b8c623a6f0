/* mirrorserve.c - serves the agent's bare mirror read-only over git's smart
 * HTTP from a helper thread (poll() loop, git http-backend children), with
 * basic auth and per-connection limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <http_parser.h>
#include "clock.h"
#include "cgi.h"
#include "crypto.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "mirrorserve.h"

#define URL_MAX         2048
#define VALUE_MAX       128            /* Content-Type, Content-Encoding, Expect */
#define CGI_HEAD_MAX    4096           /* what git http-backend writes before the body */
#define OUT_CHUNK       (64 * 1024)
#define DRAIN_MS        2000           /* lingering close after an early answer */
#define DRAIN_MAX       (1024 * 1024)
#define ZOMBIE_KILL_MS  5000           /* a child that outlives its output */
#define ENV_MAX         24
#define ENV_BYTES       8192
#define POLL_MAX_MS     1000
#define AUTH_MAX        512            /* Authorization value kept */
#define LISTEN_BACKLOG  64

enum conn_state {
    C_READ,                            /* reading the request */
    C_RUN,                             /* git http-backend runs; streaming its output */
    C_REPLY,                           /* writing an answer of our own */
    C_DRAIN,                           /* answered early: read and drop, then close */
};

enum route { R_NONE, R_REFS, R_UPLOAD };

enum hdr { H_OTHER, H_CTYPE, H_CENC, H_EXPECT, H_AUTH };

struct mirrorserve;

struct conn {
    struct mirrorserve *ms;
    int fd;
    struct sockaddr_storage peer;      /* the client's address (port ignored) */
    enum conn_state st;
    uint64_t accepted;                 /* monotonic ms */
    uint64_t deadline;                 /* header by header_ms, all by timeout_ms */
    http_parser parser;
    size_t header_bytes;
    bool headers_done, message_done, continue_sent;
    int fail;                          /* status decided by a parser callback */
    enum route route;
    char url[URL_MAX];
    size_t url_len;
    enum hdr cur;                      /* header whose value is being read */
    bool in_value;
    char field[32];
    size_t field_len;
    bool field_long;
    char ctype[VALUE_MAX], cenc[VALUE_MAX], expect[VALUE_MAX];
    char auth[AUTH_MAX];
    struct re_buf body;
    /* the git child */
    pid_t pid;
    int in_fd, out_fd;
    size_t in_off;
    bool head_done;
    struct re_buf cgi;                 /* CGI header block, until complete */
    int cgi_status;
    struct re_buf cgi_hdrs;            /* headers passed on to the client */
    /* to the client */
    struct re_buf out;
    size_t out_off;
    bool sent_any;
    size_t drained;
    struct conn *next;
};

struct zombie {
    pid_t pid;
    uint64_t kill_at;
};

struct mirrorserve {
    pthread_t thread;
    bool thread_started;
    int listen_fd;
    int wake[2];
    atomic_int stopping;
    unsigned port;
    char *root;                        /* GIT_PROJECT_ROOT: the repository's parent */
    char *repo_base;                   /* its last path component */
    char *name;
    char *git;
    char *hidden_refs;
    char *auth;                        /* expected base64("user:password"); NULL: no auth */
    size_t auth_len;
    size_t max_body, max_header;
    unsigned timeout_ms, header_ms, max_procs, max_conns, max_per_addr;
    struct conn *conns;
    unsigned n_conns;
    unsigned n_procs;                  /* children not yet reaped */
    struct zombie *zombies;            /* max_procs entries */
    unsigned n_zombies;
};

/* ---- listen address ---- */

int mirrorserve_parse_listen(char host[MIRRORSERVE_HOST_MAX], unsigned *port, const char *listen)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hlen;
    unsigned long long p;
    if (!colon)
        return -RE_EINVAL;
    hlen = (size_t)(colon - listen);
    if (hlen && h[0] == '[') {
        if (hlen < 2 || h[hlen - 1] != ']')
            return -RE_EINVAL;
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen)) {
        return -RE_EINVAL;             /* an IPv6 address needs brackets */
    }
    if (hlen >= MIRRORSERVE_HOST_MAX)
        return -RE_EINVAL;
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == '/' || h[i] == '[' || h[i] == ']' ||
            (unsigned char)h[i] >= 0x7f)
            return -RE_EINVAL;
    if (re_str_to_u64(&p, re_str_c(colon + 1), 65535) < 0 || p == 0)
        return -RE_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)p;
    return 0;
}

static bool wildcard_host(const char *h)
{
    return !h[0] || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "*") == 0;
}

int mirrorserve_default_url(char *out, size_t size, const char *listen, const char *name)
{
    char host[MIRRORSERVE_HOST_MAX], addr[INET_ADDRSTRLEN] = "127.0.0.1";
    unsigned port;
    int r;
    if ((r = mirrorserve_parse_listen(host, &port, listen)) < 0)
        return r;
    if (!wildcard_host(host)) {
        bool v6 = strchr(host, ':') != NULL;
        return re_snprintf(out, size, "http://%s%s%s:%u/%s.git", v6 ? "[" : "", host,
                           v6 ? "]" : "", port, name);
    }
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
                continue;
            const struct sockaddr_in *sin = (const struct sockaddr_in *)(void *)i->ifa_addr;
            uint32_t a = ntohl(sin->sin_addr.s_addr);
            if ((a >> 24) == 127 || (a >> 16) == 0xa9fe)   /* loopback, link-local */
                continue;
            inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
            break;
        }
        freeifaddrs(ifs);
    }
    return re_snprintf(out, size, "http://%s:%u/%s.git", addr, port, name);
}

bool mirrorserve_listen_is_loopback(const char *listen)
{
    char host[MIRRORSERVE_HOST_MAX];
    unsigned port;
    struct in_addr a4;
    struct in6_addr a6;
    if (mirrorserve_parse_listen(host, &port, listen) < 0)
        return false;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

static bool token_ok(const struct re_buf *b)
{
    size_t n = b->len;
    if (n && b->ptr[n - 1] == '\n')
        n--;
    if (n != MIRRORSERVE_TOKEN_BUF - 1)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((b->ptr[i] >= '0' && b->ptr[i] <= '9') || (b->ptr[i] >= 'a' && b->ptr[i] <= 'f')))
            return false;
    return true;
}

int mirrorserve_token(char out[MIRRORSERVE_TOKEN_BUF], const char *state_dir,
                      struct re_buf *err)
{
    char path[4096], hex[MIRRORSERVE_TOKEN_BUF + 1];
    uint8_t raw[MIRRORSERVE_TOKEN_BYTES];
    struct re_buf b;
    struct stat st;
    int r;
    if ((r = re_snprintf(path, sizeof(path), "%s/%s", state_dir, MIRRORSERVE_TOKEN_FILE)) < 0)
        return r;
    re_buf_init(&b, 4096);
    if (re_read_file(&b, path) == 0 && token_ok(&b)) {
        /* Only the agent reads it. */
        if (stat(path, &st) == 0 && (st.st_mode & 077) && chmod(path, 0600) < 0) {
            re_buf_printf(err, "cannot make '%s' private: %s", path, strerror(errno));
            r = -RE_EIO;
            goto out;
        }
        memcpy(out, b.ptr, MIRRORSERVE_TOKEN_BUF - 1);
        out[MIRRORSERVE_TOKEN_BUF - 1] = '\0';
        r = 0;
        goto out;
    }
    if ((r = re_random(raw, sizeof(raw))) < 0) {
        re_buf_printf(err, "cannot make the mirror's token: %s", re_strerror(r));
        goto out;
    }
    re_hex(hex, raw, sizeof(raw));
    hex[MIRRORSERVE_TOKEN_BUF - 1] = '\n';
    if ((r = re_write_file_atomic(path, hex, MIRRORSERVE_TOKEN_BUF, 0600)) < 0) {
        re_buf_printf(err, "cannot write '%s': %s", path, re_strerror(r));
        goto out;
    }
    memcpy(out, hex, MIRRORSERVE_TOKEN_BUF - 1);
    out[MIRRORSERVE_TOKEN_BUF - 1] = '\0';
out:
    memset(raw, 0, sizeof(raw));
    memset(hex, 0, sizeof(hex));
    if (b.ptr)
        memset(b.ptr, 0, b.len);
    re_buf_release(&b);
    return r;
}

/* Standard base64 with padding (what clients send for basic auth). */
static char *base64(const char *in, size_t len, size_t *out_len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < len)
            v |= (unsigned char)in[i + 2];
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o = '\0';
    *out_len = (size_t)(o - out);
    return out;
}

static int open_listener(int *out, unsigned *bound_port, const char *addr, struct re_buf *err)
{
    char host[MIRRORSERVE_HOST_MAX], port_s[8];
    unsigned port;
    struct addrinfo hints, *res = NULL;
    int fd = -1, r, one = 1;
    if (mirrorserve_parse_listen(host, &port, addr) < 0) {
        re_buf_printf(err, "bad listen address '%s': expected HOST:PORT", addr);
        return -RE_EINVAL;
    }
    re_snprintf(port_s, sizeof(port_s), "%u", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((r = getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, port_s, &hints,
                         &res)) != 0) {
        re_buf_printf(err, "cannot resolve '%s': %s", host, gai_strerror(r));
        return -RE_EINVAL;
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        re_buf_printf(err, "cannot listen on '%s': %s", addr, strerror(errno));
        r = -RE_EIO;
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound_port = ntohs(ss.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)(void *)&ss)->sin6_port
                                : ((struct sockaddr_in *)(void *)&ss)->sin_port);
    *out = fd;
    fd = -1;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return r;
}

/* ---- answers of our own ---- */

static void reply(struct conn *c, int status, const char *extra_hdr, const char *msg)
{
    re_buf_reset(&c->out);
    c->out_off = 0;
    re_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%s\n", status,
                  http_status_str((enum http_status)status), strlen(msg) + 1,
                  extra_hdr ? extra_hdr : "", msg);
    c->st = C_REPLY;
}

/* ---- request parsing (libhttp-parser) ---- */

static int count_header(struct conn *c, size_t len, size_t limit)
{
    c->header_bytes += len;
    if (c->header_bytes > limit) {
        c->fail = 431;
        return -1;
    }
    return 0;
}

static void copy_value(char *dst, size_t size, const char *src, size_t len)
{
    size_t n = strlen(dst);
    for (size_t i = 0; i < len && n + 1 < size; i++)
        dst[n++] = (unsigned char)src[i] < 0x20 ? ' ' : src[i];
    dst[n] = '\0';
}

#define CONN(p) ((struct conn *)(p)->data)

static void field_append(struct conn *c, const char *at, size_t len)
{
    if (c->in_value) {
        c->in_value = false;
        c->field_len = 0;
        c->field_long = false;
    }
    if (c->field_long || c->field_len + len >= sizeof(c->field)) {
        c->field_long = true;
        return;
    }
    memcpy(c->field + c->field_len, at, len);
    c->field_len += len;
    c->field[c->field_len] = '\0';
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = CONN(p);
    if (count_header(c, len, c->ms->max_header) < 0)
        return -1;
    if (c->url_len + len >= URL_MAX) {
        c->fail = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = CONN(p);
    if (count_header(c, len, c->ms->max_header) < 0)
        return -1;
    field_append(c, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = CONN(p);
    if (count_header(c, len, c->ms->max_header) < 0)
        return -1;
    if (!c->in_value) {
        c->in_value = true;
        c->cur = H_OTHER;
        if (!c->field_long) {
            if (strcasecmp(c->field, "Content-Type") == 0)
                c->cur = H_CTYPE;
            else if (strcasecmp(c->field, "Content-Encoding") == 0)
                c->cur = H_CENC;
            else if (strcasecmp(c->field, "Expect") == 0)
                c->cur = H_EXPECT;
            else if (strcasecmp(c->field, "Authorization") == 0)
                c->cur = H_AUTH;
        }
    }
    if (c->cur == H_CTYPE)
        copy_value(c->ctype, VALUE_MAX, at, len);
    else if (c->cur == H_CENC)
        copy_value(c->cenc, VALUE_MAX, at, len);
    else if (c->cur == H_EXPECT)
        copy_value(c->expect, VALUE_MAX, at, len);
    else if (c->cur == H_AUTH)
        copy_value(c->auth, AUTH_MAX, at, len);
    return 0;
}

/* Decides the route from the method and the URL; 0, or the error status. */
static int route_request(struct conn *c, const struct mirrorserve *ms, const char **allow)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return 400;
    struct re_str path = { c->url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len };
    struct re_str query = RE_STR_NULL;
    if (u.field_set & (1 << UF_QUERY))
        query = (struct re_str){ c->url + u.field_data[UF_QUERY].off,
                                 u.field_data[UF_QUERY].len };
    size_t nlen = strlen(ms->name);
    if (path.len < nlen + 6 || path.ptr[0] != '/' || memcmp(path.ptr + 1, ms->name, nlen) != 0 ||
        memcmp(path.ptr + 1 + nlen, ".git/", 5) != 0)
        return 404;
    struct re_str rest = { path.ptr + nlen + 6, path.len - nlen - 6 };
    enum http_method m = (enum http_method)c->parser.method;
    if (re_str_eq_c(rest, "info/refs")) {
        if (m != HTTP_GET) {
            *allow = "Allow: GET\r\n";
            return 405;
        }
        if (re_str_eq_c(query, "service=git-receive-pack"))
            return 403;
        if (!re_str_eq_c(query, "service=git-upload-pack"))
            return 404;                /* the dumb protocol is not served */
        c->route = R_REFS;
        return 0;
    }
    if (re_str_eq_c(rest, "git-upload-pack")) {
        if (m != HTTP_POST) {
            *allow = "Allow: POST\r\n";
            return 405;
        }
        c->route = R_UPLOAD;
        return 0;
    }
    if (re_str_eq_c(rest, "git-receive-pack"))
        return 403;
    return 404;
}

/* Does the Authorization header carry our credentials? "Basic" in any
 * case, then the base64 of "user:password"; compared in constant time (the
 * length is no secret: every token has the same). */
static bool auth_ok(const struct conn *c, const struct mirrorserve *ms)
{
    const char *v = c->auth;
    size_t n;
    while (*v == ' ')
        v++;
    if (strncasecmp(v, "Basic ", 6) != 0)
        return false;
    v += 6;
    while (*v == ' ')
        v++;
    n = strlen(v);
    while (n && v[n - 1] == ' ')
        n--;
    return n == ms->auth_len && re_consttime_eq(v, ms->auth, n);
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = CONN(p);
    const struct mirrorserve *ms = c->ms;
    const char *allow = NULL;
    int st;
    c->headers_done = true;
    c->deadline = c->accepted + ms->timeout_ms;
    if (ms->auth && !auth_ok(c, ms)) {
        c->fail = 401;
        reply(c, 401, "WWW-Authenticate: Basic realm=\"" MIRRORSERVE_REALM "\"\r\n",
              c->auth[0] ? "wrong credentials" : "credentials required");
        return -1;
    }
    if ((st = route_request(c, ms, &allow)) != 0) {
        c->fail = st;
        reply(c, st, allow, st == 403 ? "this is a read-only mirror"
                          : st == 405 ? "method not allowed" : "not found");
        return -1;
    }
    if ((p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX &&
        p->content_length > ms->max_body) {
        c->fail = 413;
        return -1;
    }
    if (c->route == R_UPLOAD && strcasecmp(c->expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ssize_t n = send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL);
        (void)n;                       /* an empty socket buffer takes it whole */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = CONN(p);
    if (c->route != R_UPLOAD)
        return 0;                      /* a GET with a body: dropped */
    if (re_buf_append(&c->body, at, len) < 0) {
        c->fail = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    CONN(p)->message_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings req_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the CGI header block of git http-backend (shared/cgi.c) ---- */

/* Appends "\r\nName: value" to out, control characters made spaces. */
static void pass_header(struct re_buf *out, const char *name, struct re_str v)
{
    if (!v.len)
        return;
    re_buf_printf(out, "\r\n%s: ", name);
    for (size_t i = 0; i < v.len; i++) {
        char ch = (unsigned char)v.ptr[i] < 0x20 ? ' ' : v.ptr[i];
        re_buf_append(out, &ch, 1);
    }
}

/* Turns the CGI output's header block into our response head in c->out:
 * 0 with *head_len, -RE_EAGAIN while incomplete, else it does not parse. */
static int cgi_head_to_http(struct conn *c, size_t *head_len)
{
    struct re_cgi_head h;
    int r = re_cgi_parse_head(&h, c->cgi.ptr, c->cgi.len, CGI_HEAD_MAX);
    if (r < 0)
        return r;
    c->cgi_status = h.status;
    re_buf_reset(&c->cgi_hdrs);
    pass_header(&c->cgi_hdrs, "Content-Type", h.content_type);
    pass_header(&c->cgi_hdrs, "Cache-Control", h.cache_control);
    pass_header(&c->cgi_hdrs, "Expires", h.expires);
    pass_header(&c->cgi_hdrs, "Pragma", h.pragma);
    re_buf_printf(&c->out, "HTTP/1.1 %d %s%s\r\nConnection: close\r\n\r\n", c->cgi_status,
                  http_status_str((enum http_status)c->cgi_status),
                  c->cgi_hdrs.ptr ? c->cgi_hdrs.ptr : "");
    *head_len = h.head_len;
    return 0;
}

/* ---- the git child ---- */

static int env_add(char **env, size_t *n, char *pool, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int env_add(char **env, size_t *n, char *pool, size_t *used, const char *fmt, ...)
{
    va_list ap;
    int len;
    if (*n >= ENV_MAX)
        return -RE_ETOOBIG;
    va_start(ap, fmt);
    len = vsnprintf(pool + *used, ENV_BYTES - *used, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= ENV_BYTES - *used)
        return -RE_ETOOBIG;
    env[(*n)++] = pool + *used;
    env[*n] = NULL;
    *used += (size_t)len + 1;
    return 0;
}

static int spawn_git(struct mirrorserve *ms, struct conn *c)
{
    char *env[ENV_MAX + 1] = { NULL };
    char pool[ENV_BYTES];
    size_t n = 0, used = 0;
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, r = -RE_EIO;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t def, none;
    const char *path = getenv("PATH");
    bool post = c->route == R_UPLOAD;
    char *argv[] = { ms->git, "http-backend", NULL };

    if (env_add(env, &n, pool, &used, "PATH=%s", path ? path : "/usr/bin:/bin") < 0 ||
        env_add(env, &n, pool, &used, "GIT_PROJECT_ROOT=%s", ms->root) < 0 ||
        env_add(env, &n, pool, &used, "GIT_HTTP_EXPORT_ALL=1") < 0 ||
        env_add(env, &n, pool, &used, "GIT_CONFIG_NOSYSTEM=1") < 0 ||
        env_add(env, &n, pool, &used, "GIT_CONFIG_GLOBAL=/dev/null") < 0 ||
        env_add(env, &n, pool, &used, "GIT_CONFIG_COUNT=%d", ms->hidden_refs ? 2 : 1) < 0 ||
        env_add(env, &n, pool, &used, "GIT_CONFIG_KEY_0=http.receivepack") < 0 ||
        env_add(env, &n, pool, &used, "GIT_CONFIG_VALUE_0=false") < 0 ||
        (ms->hidden_refs &&
         (env_add(env, &n, pool, &used, "GIT_CONFIG_KEY_1=uploadpack.hideRefs") < 0 ||
          env_add(env, &n, pool, &used, "GIT_CONFIG_VALUE_1=%s", ms->hidden_refs) < 0)) ||
        env_add(env, &n, pool, &used, "REQUEST_METHOD=%s", post ? "POST" : "GET") < 0 ||
        env_add(env, &n, pool, &used, "PATH_INFO=/%s/%s", ms->repo_base,
                post ? "git-upload-pack" : "info/refs") < 0 ||
        env_add(env, &n, pool, &used, "QUERY_STRING=%s",
                post ? "" : "service=git-upload-pack") < 0)
        return -RE_ETOOBIG;
    if (post && (env_add(env, &n, pool, &used, "CONTENT_TYPE=%s", c->ctype) < 0 ||
                 env_add(env, &n, pool, &used, "CONTENT_LENGTH=%zu", c->body.len) < 0 ||
                 (c->cenc[0] &&
                  env_add(env, &n, pool, &used, "HTTP_CONTENT_ENCODING=%s", c->cenc) < 0)))
        return -RE_ETOOBIG;

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        goto out;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGHUP);
    sigaddset(&def, SIGCHLD);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    /* Not every descriptor of the agent is close-on-exec (libcurl's). */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    int e = posix_spawnp(&c->pid, ms->git, &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (e != 0) {
        c->pid = 0;
        log_warn("mirror: cannot run '%s http-backend': %s", ms->git, strerror(e));
        goto out;
    }
    ms->n_procs++;
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    c->in_fd = in[1];
    c->out_fd = out[0];
    in[1] = out[0] = -1;
    fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
    if (c->body.len == 0) {
        close(c->in_fd);
        c->in_fd = -1;
    }
    c->st = C_RUN;
    r = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    return r;
}

/* A child whose conn is done: reaped now, or later (killed if it lingers). */
static void release_child(struct mirrorserve *ms, struct conn *c, bool kill_it)
{
    if (c->pid <= 0)
        return;
    if (kill_it)
        kill(-c->pid, SIGKILL);
    if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
        ms->n_procs--;
    } else {
        /* n_zombies < n_procs <= max_procs: there is room. */
        ms->zombies[ms->n_zombies].pid = c->pid;
        ms->zombies[ms->n_zombies].kill_at = re_mono_ms() + (kill_it ? 0 : ZOMBIE_KILL_MS);
        ms->n_zombies++;
    }
    c->pid = 0;
}

static void reap_zombies(struct mirrorserve *ms)
{
    uint64_t now = re_mono_ms();
    for (unsigned i = 0; i < ms->n_zombies;) {
        struct zombie *z = &ms->zombies[i];
        pid_t w = waitpid(z->pid, NULL, WNOHANG);
        if (w == z->pid || (w < 0 && errno == ECHILD)) {
            ms->n_procs--;
            *z = ms->zombies[--ms->n_zombies];
            continue;
        }
        if (now >= z->kill_at) {
            kill(-z->pid, SIGKILL);
            z->kill_at = now + ZOMBIE_KILL_MS;
        }
        i++;
    }
}

/* ---- connections ---- */

static void conn_free(struct mirrorserve *ms, struct conn *c, bool abnormal)
{
    if (c->in_fd >= 0)
        close(c->in_fd);
    if (c->out_fd >= 0)
        close(c->out_fd);
    release_child(ms, c, abnormal || !c->head_done);
    if (c->fd >= 0)
        close(c->fd);
    re_buf_release(&c->body);
    re_buf_release(&c->cgi);
    re_buf_release(&c->cgi_hdrs);
    re_buf_release(&c->out);
    ms->n_conns--;
    free(c);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return true;
}

/* Over the per-address cap: a short 503 without taking a slot, then close. */
static void refuse_now(int fd)
{
    static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 39\r\n"
                              "Retry-After: 5\r\nConnection: close\r\n\r\n"
                              "too many connections from your address\n";
    char drop[4096];
    ssize_t n = recv(fd, drop, sizeof(drop), MSG_DONTWAIT);   /* fewer resets */
    n = send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n;
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void accept_one(struct mirrorserve *ms)
{
    struct sockaddr_storage peer;
    socklen_t pl = sizeof(peer);
    unsigned same = 0;
    memset(&peer, 0, sizeof(peer));
    int fd = accept4(ms->listen_fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (const struct conn *o = ms->conns; o; o = o->next)
        if (same_addr(&o->peer, &peer))
            same++;
    if (same >= ms->max_per_addr) {
        char a[INET6_ADDRSTRLEN] = "?";
        if (peer.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&peer)->sin_addr, a, sizeof(a));
        else if (peer.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&peer)->sin6_addr, a, sizeof(a));
        log_debug("mirror: %s holds %u connections already; refused one", a, same);
        refuse_now(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->ms = ms;
    c->fd = fd;
    c->peer = peer;
    c->in_fd = c->out_fd = -1;
    c->st = C_READ;
    c->accepted = re_mono_ms();
    c->deadline = c->accepted + (ms->timeout_ms < ms->header_ms ? ms->timeout_ms : ms->header_ms);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    re_buf_init(&c->body, ms->max_body);
    re_buf_init(&c->cgi, CGI_HEAD_MAX);
    re_buf_init(&c->cgi_hdrs, CGI_HEAD_MAX);
    re_buf_init(&c->out, OUT_CHUNK + CGI_HEAD_MAX * 2);
    c->next = ms->conns;
    ms->conns = c;
    ms->n_conns++;
}

/* Request fully read: run git, or answer 503 when enough git runs already. */
static void dispatch(struct mirrorserve *ms, struct conn *c)
{
    if (ms->n_procs >= ms->max_procs) {
        reply(c, 503, "Retry-After: 1\r\n", "busy: too many git requests at once");
        return;
    }
    if (spawn_git(ms, c) < 0)
        reply(c, 500, NULL, "cannot run git");
}

/* Reads from the client. false: drop the connection. */
static bool conn_read(struct mirrorserve *ms, struct conn *c)
{
    char buf[16384];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (c->st == C_DRAIN) {
        c->drained += (size_t)n;
        return n > 0 && c->drained < DRAIN_MAX;
    }
    size_t done = http_parser_execute(&c->parser, &req_settings, buf, (size_t)n);
    enum http_errno he = HTTP_PARSER_ERRNO(&c->parser);
    if (c->message_done && c->st == C_READ) {
        dispatch(ms, c);
        return true;
    }
    if (he != HPE_OK || done != (size_t)n) {
        if (c->st == C_REPLY)
            return true;               /* routed to an answer already */
        int st = c->fail ? c->fail : 400;
        reply(c, st, NULL, st == 413   ? "request body too large"
                         : st == 431 ? "request header too large"
                         : st == 414 ? "URL too long" : "bad request");
        return true;
    }
    if (n == 0)
        return false;                  /* closed before a whole request */
    return true;
}

/* Writes pending output. false: drop the connection. */
static bool conn_write(struct mirrorserve *ms, struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.ptr + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        c->out_off += (size_t)n;
        c->sent_any = true;
    }
    re_buf_reset(&c->out);
    c->out_off = 0;
    if (c->st == C_REPLY) {
        /* Answered before the whole request was read: close gently, so the
         * client sees the answer and not a reset. */
        shutdown(c->fd, SHUT_WR);
        if (c->message_done)
            return false;
        c->st = C_DRAIN;
        uint64_t d = re_mono_ms() + DRAIN_MS;
        if (d < c->deadline)
            c->deadline = d;
    }
    return true;
}

/* Feeds the body to the child. */
static void child_write(struct conn *c)
{
    while (c->in_off < c->body.len) {
        ssize_t n = write(c->in_fd, c->body.ptr + c->in_off, c->body.len - c->in_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            break;                     /* the child stopped reading: it will say why */
        }
        c->in_off += (size_t)n;
    }
    close(c->in_fd);
    c->in_fd = -1;
}

/* Reads the child's output into c->out. false: drop the connection. */
static bool child_read(struct mirrorserve *ms, struct conn *c, bool *finished)
{
    char buf[OUT_CHUNK];
    ssize_t n = read(c->out_fd, buf, sizeof(buf));
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0) {
        close(c->out_fd);
        c->out_fd = -1;
        if (!c->head_done) {
            log_warn("mirror: git http-backend ended without an answer");
            reply(c, 502, NULL, "git failed");
            return true;
        }
        *finished = true;
        return true;
    }
    if (c->head_done)
        return re_buf_append(&c->out, buf, (size_t)n) == 0;
    if (re_buf_append(&c->cgi, buf, (size_t)n) < 0) {
        reply(c, 502, NULL, "git answered too many headers");
        return true;
    }
    size_t hlen = 0;
    int r = cgi_head_to_http(c, &hlen);
    if (r == -RE_EAGAIN)
        return true;
    if (r < 0) {
        reply(c, 502, NULL, "git answered garbage");
        return true;
    }
    c->head_done = true;
    if (c->cgi_status >= 500)
        log_warn("mirror: git http-backend answered %d", c->cgi_status);
    return re_buf_append(&c->out, c->cgi.ptr + hlen, c->cgi.len - hlen) == 0;
}

/* ---- the loop ---- */

enum role { P_WAKE, P_LISTEN, P_CLIENT, P_CHILD_IN, P_CHILD_OUT };

struct slot {
    enum role role;
    struct conn *c;
};

static void *server_main(void *arg)
{
    struct mirrorserve *ms = arg;
    size_t cap = 2 + (size_t)ms->max_conns * 3;
    struct pollfd *pfd = calloc(cap, sizeof(*pfd));
    struct slot *slots = calloc(cap, sizeof(*slots));
    if (!pfd || !slots) {
        log_err("mirror: out of memory; not serving");
        goto out;
    }
    while (!atomic_load(&ms->stopping)) {
        size_t n = 0;
        uint64_t now = re_mono_ms(), next = now + POLL_MAX_MS;
        pfd[n] = (struct pollfd){ ms->wake[0], POLLIN, 0 };
        slots[n++] = (struct slot){ P_WAKE, NULL };
        if (ms->n_conns < ms->max_conns) {
            pfd[n] = (struct pollfd){ ms->listen_fd, POLLIN, 0 };
            slots[n++] = (struct slot){ P_LISTEN, NULL };
        }
        for (struct conn *c = ms->conns; c; c = c->next) {
            short ev = 0;
            if (c->out_off < c->out.len)
                ev |= POLLOUT;
            else if (c->st == C_READ || c->st == C_DRAIN)
                ev |= POLLIN;
            pfd[n] = (struct pollfd){ c->fd, ev, 0 };
            slots[n++] = (struct slot){ P_CLIENT, c };
            if (c->st == C_RUN && c->in_fd >= 0) {
                pfd[n] = (struct pollfd){ c->in_fd, POLLOUT, 0 };
                slots[n++] = (struct slot){ P_CHILD_IN, c };
            }
            /* Backpressure: read the child only once the client took it all. */
            if (c->st == C_RUN && c->out_fd >= 0 && c->out_off >= c->out.len) {
                pfd[n] = (struct pollfd){ c->out_fd, POLLIN, 0 };
                slots[n++] = (struct slot){ P_CHILD_OUT, c };
            }
            if (c->deadline < next)
                next = c->deadline;
        }
        if (ms->n_zombies && now + 100 < next)
            next = now + 100;
        int rc = poll(pfd, n, next > now ? (int)(next - now) : 0);
        if (rc < 0 && errno != EINTR) {
            log_err("mirror: poll: %s", strerror(errno));
            break;
        }
        /* Handle events; a conn dropped here is marked by fd -1 (freed below). */
        for (size_t i = 0; rc > 0 && i < n; i++) {
            if (!pfd[i].revents)
                continue;
            struct conn *c = slots[i].c;
            if (c && c->fd < 0)
                continue;
            bool keep = true, finished = false; /* finished: handled after the loop */
            switch (slots[i].role) {
            case P_WAKE: {
                char b[16];
                while (read(ms->wake[0], b, sizeof(b)) > 0) {
                }
                break;
            }
            case P_LISTEN:
                accept_one(ms);
                break;
            case P_CLIENT:
                if (c->st == C_RUN && !(pfd[i].revents & POLLOUT))
                    keep = false;      /* hung up while git runs */
                else if (pfd[i].revents & POLLOUT)
                    keep = conn_write(ms, c);
                else if (pfd[i].revents & (POLLIN | POLLHUP))
                    keep = conn_read(ms, c);
                if (pfd[i].revents & POLLERR)
                    keep = false;
                break;
            case P_CHILD_IN:
                if (c->in_fd >= 0)
                    child_write(c);
                break;
            case P_CHILD_OUT:
                if (c->out_fd >= 0 && c->st == C_RUN)
                    keep = child_read(ms, c, &finished);
                break;
            }
            if (!keep) {
                close(c->fd);
                c->fd = -1;
            }
        }
        /* Finished streams, deadlines, dropped conns. */
        now = re_mono_ms();
        for (struct conn **pp = &ms->conns; *pp;) {
            struct conn *c = *pp;
            bool drop = c->fd < 0, abnormal = c->fd < 0;
            if (!drop && c->st == C_RUN && c->out_fd < 0 && c->head_done &&
                c->out_off >= c->out.len) {
                shutdown(c->fd, SHUT_WR);
                drop = true;
            }
            if (!drop && now >= c->deadline) {
                if (c->st == C_READ || (c->st == C_RUN && !c->sent_any && !c->head_done)) {
                    reply(c, c->st == C_READ ? 408 : 504, NULL, "timed out");
                    conn_write(ms, c);  /* best effort, once */
                }
                drop = abnormal = true;
            }
            if (drop) {
                *pp = c->next;
                conn_free(ms, c, abnormal);
                continue;
            }
            pp = &c->next;
        }
        reap_zombies(ms);
    }
out:
    while (ms->conns) {
        struct conn *c = ms->conns;
        ms->conns = c->next;
        conn_free(ms, c, true);
    }
    for (unsigned i = 0; i < ms->n_zombies; i++) {
        kill(-ms->zombies[i].pid, SIGKILL);
        waitpid(ms->zombies[i].pid, NULL, 0);
    }
    ms->n_zombies = 0;
    free(pfd);
    free(slots);
    return NULL;
}

/* ---- lifecycle ---- */

static void ms_free(struct mirrorserve *ms)
{
    if (!ms)
        return;
    if (ms->listen_fd >= 0)
        close(ms->listen_fd);
    for (int i = 0; i < 2; i++)
        if (ms->wake[i] >= 0)
            close(ms->wake[i]);
    free(ms->root);
    free(ms->repo_base);
    free(ms->name);
    free(ms->git);
    free(ms->hidden_refs);
    if (ms->auth)
        memset(ms->auth, 0, ms->auth_len);
    free(ms->auth);
    free(ms->zombies);
    free(ms);
}

int mirrorserve_start(struct mirrorserve **out, const struct mirrorserve_opts *o,
                      struct re_buf *err)
{
    struct mirrorserve *ms;
    char abs[PATH_MAX];
    sigset_t block, old;
    int r = -RE_ENOMEM;
    if (!o->listen || !o->git_dir || !o->name || !o->name[0] || strchr(o->name, '/'))
        return -RE_EINVAL;
    if (!(ms = calloc(1, sizeof(*ms))))
        return -RE_ENOMEM;
    ms->listen_fd = ms->wake[0] = ms->wake[1] = -1;
    ms->max_body = o->max_body ? o->max_body : MIRRORSERVE_MAX_BODY;
    ms->max_header = o->max_header ? o->max_header : MIRRORSERVE_MAX_HEADER;
    ms->timeout_ms = o->timeout_ms ? o->timeout_ms : MIRRORSERVE_TIMEOUT_MS;
    ms->max_procs = o->max_procs ? o->max_procs : MIRRORSERVE_MAX_PROCS;
    ms->max_conns = o->max_conns ? o->max_conns : MIRRORSERVE_MAX_CONNS;
    ms->header_ms = o->header_timeout_ms ? o->header_timeout_ms : MIRRORSERVE_HEADER_MS;
    ms->max_per_addr = o->max_per_addr ? o->max_per_addr : MIRRORSERVE_MAX_PER_ADDR;
    if (o->password) {
        char cred[256];
        if (!o->password[0] || re_snprintf(cred, sizeof(cred), "%s:%s", MIRRORSERVE_USER,
                                           o->password) < 0) {
            r = -RE_EINVAL;
            goto fail;
        }
        ms->auth = base64(cred, strlen(cred), &ms->auth_len);
        memset(cred, 0, sizeof(cred));
        if (!ms->auth)
            goto fail;
    }
    /* The repository need not exist yet (git answers 404 until it does);
     * its parent does. */
    const char *slash = strrchr(o->git_dir, '/');
    char parent[PATH_MAX];
    int plen = !slash ? 1 : slash == o->git_dir ? 1 : (int)(slash - o->git_dir);
    const char *pstr = !slash ? "." : slash == o->git_dir ? "/" : o->git_dir;
    if (re_snprintf(parent, sizeof(parent), "%.*s", plen, pstr) < 0 || !realpath(parent, abs)) {
        re_buf_printf(err, "cannot resolve '%s'", o->git_dir);
        r = -RE_EINVAL;
        goto fail;
    }
    if (!(ms->root = strdup(abs)) || !(ms->repo_base = strdup(slash ? slash + 1 : o->git_dir)) ||
        !(ms->name = strdup(o->name)) || !(ms->git = strdup(o->git ? o->git : "git")) ||
        (o->hidden_refs && !(ms->hidden_refs = strdup(o->hidden_refs))) ||
        !(ms->zombies = calloc(ms->max_procs, sizeof(*ms->zombies))))
        goto fail;
    if (!ms->repo_base[0] || strcmp(ms->repo_base, "..") == 0 || strcmp(ms->repo_base, ".") == 0) {
        r = -RE_EINVAL;
        goto fail;
    }
    if (pipe2(ms->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        r = -RE_EIO;
        goto fail;
    }
    if ((r = open_listener(&ms->listen_fd, &ms->port, o->listen, err)) < 0)
        goto fail;
    /* The agent's signals belong to its main thread. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGPIPE);        /* a git child gone early: EPIPE, not a signal */
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int e = pthread_create(&ms->thread, NULL, server_main, ms);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        re_buf_printf(err, "cannot start the mirror server thread: %s", strerror(e));
        r = -RE_EIO;
        goto fail;
    }
    ms->thread_started = true;
    *out = ms;
    return 0;
fail:
    ms_free(ms);
    return r;
}

void mirrorserve_stop(struct mirrorserve *ms)
{
    if (!ms)
        return;
    if (ms->thread_started) {
        atomic_store(&ms->stopping, 1);
        char ch = 0;
        ssize_t n = write(ms->wake[1], &ch, 1);
        (void)n;
        pthread_join(ms->thread, NULL);
    }
    ms_free(ms);
}

unsigned mirrorserve_port(const struct mirrorserve *ms)
{
    return ms ? ms->port : 0;
}
