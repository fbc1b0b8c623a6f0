/* gitstream.c - a libgit2 TLS stream (git_stream_register) over shared/tls.h:
 * blocking socket, the node's client certificate, the hub's CA pinned,
 * session resumption. Registered by pull.c. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include "error.h"
#include "gitstream.h"
#include "tls.h"

#define GS_TIMEOUT_S 30

static struct tls_config *gs_cfg;
static struct tls_session *gs_session;
static char gs_session_host[256];

struct gs {
    git_stream parent;
    char *host;
    char *port;
    int fd;
    struct tls_conn *tls;
};

void gitstream__set_config(struct tls_config *cfg)
{
    tls_config_free(gs_cfg);
    gs_cfg = cfg;
    tls_session_free(gs_session);
    gs_session = NULL;
}

static int gs_fail(const char *what, const char *host)
{
    git_error_set(GIT_ERROR_NET, "%s %s", what, host ? host : "");
    return -1;
}

static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC }, *ai, *p;
    int fd = -1;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    for (p = ai; p; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, p->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, p->ai_addr, p->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd pfd = { fd, POLLOUT, 0 };
            int err = 0;
            socklen_t el = sizeof(err);
            if (poll(&pfd, 1, 10000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
                err == 0)
                break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        struct timeval tv = { GS_TIMEOUT_S, 0 };
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

static int flush_out(struct gs *s)
{
    size_t len;
    char *data = tls_conn_take_output(s->tls, &len);
    size_t off = 0;
    int r = 0;
    while (off < len) {
        ssize_t n = send(s->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -1;
            break;
        }
        off += (size_t)n;
    }
    free(data);
    return r;
}

/* Reads more ciphertext: 1 got some, 0 EOF, -1 error. */
static int fill_in(struct gs *s)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        return tls_conn_feed(s->tls, buf, (size_t)n) < 0 ? -1 : 1;
    }
}

static int gs_connect(git_stream *stream)
{
    struct gs *s = (struct gs *)stream;
    int r;
    if (!gs_cfg)
        return gs_fail("no TLS credentials configured for", s->host);
    if ((s->fd = tcp_connect(s->host, s->port)) < 0)
        return gs_fail("cannot connect to", s->host);
    bool same_host = strcmp(gs_session_host, s->host) == 0;
    /* mbedTLS 2.28 matches DNS names only, not IP address SANs: for an IP
     * literal the name check is skipped. The CA is the hub's own, pinned at
     * enrollment, and mbedTLS still requires serverAuth usage, so no agent or
     * user certificate of that CA can stand in for the hub. */
    unsigned char addr[16];
    bool ip_literal = inet_pton(AF_INET, s->host, addr) == 1 ||
                      inet_pton(AF_INET6, s->host, addr) == 1;
    if (tls_conn_new_client(&s->tls, gs_cfg, ip_literal ? NULL : s->host,
                            same_host ? gs_session : NULL) < 0)
        return gs_fail("cannot set up TLS for", s->host);
    for (;;) {
        r = tls_conn_handshake(s->tls);
        if (flush_out(s) < 0)
            return gs_fail("connection lost during the TLS handshake with", s->host);
        if (r == 0)
            break;
        if (r != -RE_EAGAIN || fill_in(s) <= 0) {
            const struct tls_peer_info *pi = tls_conn_peer(s->tls);
            git_error_set(GIT_ERROR_SSL, "TLS handshake with %s failed%s%s", s->host,
                          pi && pi->verify_error[0] ? ": " : "",
                          pi && pi->verify_error[0] ? pi->verify_error : "");
            return GIT_ECERTIFICATE;
        }
    }
    struct tls_session *sess = NULL;
    if (tls_conn_get_session(&sess, s->tls) == 0) {
        tls_session_free(gs_session);
        gs_session = sess;
        size_t n = strlen(s->host);
        if (n < sizeof(gs_session_host))
            memcpy(gs_session_host, s->host, n + 1);
    }
    return 0;
}

static int gs_certificate(git_cert **out, git_stream *stream)
{
    (void)out;
    (void)stream;
    git_error_set(GIT_ERROR_SSL, "the agent verifies the hub's certificate itself");
    return -1;
}

static int gs_set_proxy(git_stream *stream, const git_proxy_options *opts)
{
    git_error_set(GIT_ERROR_NET, "proxies are not supported by the agent's TLS stream");
    return -1;
}

static ssize_t gs_read(git_stream *stream, void *data, size_t len)
{
    struct gs *s = (struct gs *)stream;
    for (;;) {
        ssize_t n = tls_conn_read(s->tls, data, len);
        if (n >= 0)
            return n;
        if (n != -RE_EAGAIN) {
            git_error_set(GIT_ERROR_SSL, "TLS read error from %s", s->host);
            return -1;
        }
        int f = fill_in(s);
        if (f == 0)
            return 0;
        if (f < 0) {
            git_error_set(GIT_ERROR_NET, "read error (or timeout) from %s", s->host);
            return -1;
        }
    }
}

static ssize_t gs_write(git_stream *stream, const char *data, size_t len, int flags)
{
    struct gs *s = (struct gs *)stream;
    if (tls_conn_write(s->tls, data, len) < 0 || flush_out(s) < 0) {
        git_error_set(GIT_ERROR_NET, "write error to %s", s->host);
        return -1;
    }
    return (ssize_t)len;
}

static int gs_close(git_stream *stream)
{
    struct gs *s = (struct gs *)stream;
    if (s->tls && s->fd >= 0 && tls_conn_handshake_done(s->tls)) {
        tls_conn_close_notify(s->tls);
        flush_out(s);
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    return 0;
}

static void gs_free(git_stream *stream)
{
    struct gs *s = (struct gs *)stream;
    if (s->fd >= 0)
        close(s->fd);
    tls_conn_free(s->tls);
    free(s->host);
    free(s->port);
    free(s);
}

static int gs_init(git_stream **out, const char *host, const char *port)
{
    struct gs *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->fd = -1;
    s->host = strdup(host);
    s->port = strdup(port ? port : "443");
    if (!s->host || !s->port) {
        gs_free(&s->parent);
        return -1;
    }
    s->parent.version = GIT_STREAM_VERSION;
    s->parent.encrypted = 1;
    s->parent.proxy_support = 0;
    s->parent.connect = gs_connect;
    s->parent.certificate = gs_certificate;
    s->parent.set_proxy = gs_set_proxy;
    s->parent.read = gs_read;
    s->parent.write = gs_write;
    s->parent.close = gs_close;
    s->parent.free = gs_free;
    *out = &s->parent;
    return 0;
}

int gitstream_register(void)
{
    static git_stream_registration reg = { GIT_STREAM_VERSION, gs_init, NULL };
    return git_stream_register(GIT_STREAM_TLS, &reg) < 0 ? -RE_EGIT : 0;
}

void gitstream_cleanup(void)
{
    git_stream_register(GIT_STREAM_TLS, NULL);
    gitstream__set_config(NULL);
}
