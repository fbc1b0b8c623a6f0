/* test_mirrorserve.c - the agent's mirror server with a stand-in for git (a
 * shell script): CGI environment and body passed on, CGI status mapped,
 * 503 when the git processes are all busy, 504/408 and killed children at
 * the deadline, listen address parsing and the advertised URL. The real git
 * is exercised by tests/e2e/test_agent_mirror.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "buf.h"
#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "mirrorserve.h"
#include "testlib.h"

static unsigned free_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* A fake git at DIR/<name> running script; returns its path. */
static const char *fake_git(const char *name, const char *script)
{
    static char path[4096];
    char text[4096];
    re_snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
    re_snprintf(text, sizeof(text), "#!/bin/sh\n%s", script);
    CHECK_EQ_INT(re_write_file_atomic(path, text, strlen(text), 0755), 0);
    return path;
}

static struct mirrorserve *start(const char *git, unsigned *port, unsigned max_procs,
                                 unsigned timeout_ms)
{
    char listen[64], repo[4096];
    struct mirrorserve *ms = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    *port = free_port();
    re_snprintf(listen, sizeof(listen), "127.0.0.1:%u", *port);
    re_snprintf(repo, sizeof(repo), "%s/mirror.git", test_tmpdir());
    struct mirrorserve_opts o = { .listen = listen, .git_dir = repo, .name = "store-1",
                                  .git = git, .hidden_refs = "refs/resedge/incoming/",
                                  .max_procs = max_procs, .timeout_ms = timeout_ms };
    int r = mirrorserve_start(&ms, &o, &err);
    if (r < 0)
        fprintf(stderr, "start: %s\n", err.ptr ? err.ptr : re_strerror(r));
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(mirrorserve_port(ms), *port);
    re_buf_release(&err);
    return ms;
}

static int connect_to(unsigned port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { 5, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads until EOF (or the 5 s receive timeout) into out. */
static void read_all(int fd, struct re_buf *out)
{
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            CHECK_EQ_INT(re_buf_append(out, buf, (size_t)n), 0);
    close(fd);
}

static void request(unsigned port, const char *req, size_t len, struct re_buf *out)
{
    int fd = connect_to(port);
    CHECK_EQ_INT(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    read_all(fd, out);
}

#define GET_REFS "GET /store-1.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n" \
                 "Git-Protocol: version=2\r\n\r\n"

static void cgi_environment(void)
{
    const char *git = fake_git("git-env", "printf 'Status: 203 Whatever\\r\\nContent-Type: text/x-env\\r\\n"
                               "X-Drop: me\\r\\n\\r\\n'\nenv | sort\necho \"argv=$*\"\necho body=\n"
                               "cat\n");
    unsigned port;
    struct mirrorserve *ms = start(git, &port, 0, 0);
    struct re_buf out;
    re_buf_init(&out, 1 << 20);
    request(port, GET_REFS, strlen(GET_REFS), &out);
    CHECK(strncmp(out.ptr, "HTTP/1.1 203 Non-Authoritative Information\r\n", 44) == 0);
    CHECK(strstr(out.ptr, "\r\nContent-Type: text/x-env\r\n"));
    CHECK(strstr(out.ptr, "\r\nConnection: close\r\n\r\n"));
    CHECK(!strstr(out.ptr, "X-Drop"));
    CHECK(strstr(out.ptr, "\nargv=http-backend\n"));
    CHECK(strstr(out.ptr, "\nREQUEST_METHOD=GET\n"));
    CHECK(strstr(out.ptr, "\nPATH_INFO=/mirror.git/info/refs\n"));
    CHECK(strstr(out.ptr, "\nQUERY_STRING=service=git-upload-pack\n"));
    CHECK(strstr(out.ptr, "\nGIT_HTTP_EXPORT_ALL=1\n"));
    CHECK(strstr(out.ptr, "\nGIT_CONFIG_KEY_1=uploadpack.hideRefs\n"));
    CHECK(strstr(out.ptr, "\nGIT_CONFIG_VALUE_1=refs/resedge/incoming/\n"));
    CHECK(strstr(out.ptr, "GIT_PROJECT_ROOT=/"));
    CHECK(!strstr(out.ptr, "GIT_PROTOCOL"));   /* protocol v0 only */
    CHECK(!strstr(out.ptr, "HTTP_HOST"));

    static const char post[] = "POST /store-1.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/x-git-upload-pack-request\r\n"
                               "Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    re_buf_reset(&out);
    request(port, post, sizeof(post) - 1, &out);
    CHECK(strstr(out.ptr, "\nREQUEST_METHOD=POST\n"));
    CHECK(strstr(out.ptr, "\nPATH_INFO=/mirror.git/git-upload-pack\n"));
    CHECK(strstr(out.ptr, "\nCONTENT_TYPE=application/x-git-upload-pack-request\n"));
    CHECK(strstr(out.ptr, "\nCONTENT_LENGTH=11\n"));
    CHECK(strstr(out.ptr, "\nHTTP_CONTENT_ENCODING=gzip\n"));
    CHECK(strstr(out.ptr, "\nbody=\nhello world"));
    mirrorserve_stop(ms);
    re_buf_release(&out);
}

static void git_failures(void)
{
    unsigned port;
    struct re_buf out;
    re_buf_init(&out, 1 << 20);
    struct mirrorserve *ms = start(fake_git("git-mute", "exit 1\n"), &port, 0, 0);
    request(port, GET_REFS, strlen(GET_REFS), &out);
    CHECK(strncmp(out.ptr, "HTTP/1.1 502 ", 13) == 0);
    mirrorserve_stop(ms);
    re_buf_reset(&out);
    ms = start(fake_git("git-junk", "head -c 10000 /dev/zero\n"), &port, 0, 0);
    request(port, GET_REFS, strlen(GET_REFS), &out);
    CHECK(strncmp(out.ptr, "HTTP/1.1 502 ", 13) == 0);
    mirrorserve_stop(ms);
    re_buf_reset(&out);
    ms = start("/nonexistent/git", &port, 0, 0);
    request(port, GET_REFS, strlen(GET_REFS), &out);
    CHECK(strncmp(out.ptr, "HTTP/1.1 500 ", 13) == 0);
    mirrorserve_stop(ms);
    re_buf_release(&out);
}

static void busy_and_deadline(void)
{
    char pidfile[4096], script[4200];
    re_snprintf(pidfile, sizeof(pidfile), "%s/slow.pid", test_tmpdir());
    re_snprintf(script, sizeof(script), "echo $$ >'%s'\nexec sleep 30\n", pidfile);
    unsigned port;
    struct mirrorserve *ms = start(fake_git("git-slow", script), &port, 1, 800);
    struct re_buf out;
    re_buf_init(&out, 1 << 20);
    int slow = connect_to(port);
    CHECK_EQ_INT(send(slow, GET_REFS, strlen(GET_REFS), MSG_NOSIGNAL), (ssize_t)strlen(GET_REFS));
    for (int i = 0; i < 100 && access(pidfile, F_OK) != 0; i++)
        usleep(20000);
    /* The one git process is busy: the next request is turned away. */
    request(port, GET_REFS, strlen(GET_REFS), &out);
    CHECK(strncmp(out.ptr, "HTTP/1.1 503 ", 13) == 0);
    CHECK(strstr(out.ptr, "\r\nRetry-After: 1\r\n"));
    /* At the deadline the slow one gets 504 and its git is killed. */
    uint64_t t0 = re_mono_ms();
    re_buf_reset(&out);
    read_all(slow, &out);
    CHECK(strncmp(out.ptr, "HTTP/1.1 504 ", 13) == 0);
    CHECK(re_mono_ms() - t0 < 3000);
    struct re_buf pid_s;
    re_buf_init(&pid_s, 64);
    CHECK_EQ_INT(re_read_file(&pid_s, pidfile), 0);
    long pid = strtol(pid_s.ptr, NULL, 10);
    CHECK(pid > 0);
    int gone = 0;
    for (int i = 0; i < 100 && !gone; i++) {
        gone = kill((pid_t)pid, 0) < 0 && errno == ESRCH;
        usleep(20000);
    }
    CHECK(gone);
    /* A client that sends half a request gets 408 at the deadline. */
    int half = connect_to(port);
    static const char part[] = "GET /store-1.git/info/refs?service=git-upload-pack HTTP/1.1\r\n";
    CHECK_EQ_INT(send(half, part, sizeof(part) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(part) - 1));
    re_buf_reset(&out);
    read_all(half, &out);
    CHECK(strncmp(out.ptr, "HTTP/1.1 408 ", 13) == 0);
    mirrorserve_stop(ms);
    re_buf_release(&pid_s);
    re_buf_release(&out);
}

static void stop_kills_children(void)
{
    char pidfile[4096], script[4200];
    re_snprintf(pidfile, sizeof(pidfile), "%s/stop.pid", test_tmpdir());
    re_snprintf(script, sizeof(script), "echo $$ >'%s'\nexec sleep 30\n", pidfile);
    unsigned port;
    struct mirrorserve *ms = start(fake_git("git-stop", script), &port, 0, 0);
    int fd = connect_to(port);
    CHECK_EQ_INT(send(fd, GET_REFS, strlen(GET_REFS), MSG_NOSIGNAL), (ssize_t)strlen(GET_REFS));
    for (int i = 0; i < 100 && access(pidfile, F_OK) != 0; i++)
        usleep(20000);
    struct re_buf pid_s;
    re_buf_init(&pid_s, 64);
    CHECK_EQ_INT(re_read_file(&pid_s, pidfile), 0);
    pid_t pid = (pid_t)strtol(pid_s.ptr, NULL, 10);
    uint64_t t0 = re_mono_ms();
    mirrorserve_stop(ms);
    CHECK(re_mono_ms() - t0 < 2000);
    CHECK(kill(pid, 0) < 0 && errno == ESRCH);   /* killed and reaped */
    close(fd);
    re_buf_release(&pid_s);
}

/* Basic auth, the per-address cap and the header timeout of each connection. */
static void auth_and_limits(void)
{
    const char *git = fake_git("git-ok", "printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n");
    char listen[64], repo[4096];
    struct mirrorserve *ms = NULL;
    struct re_buf err, out;
    unsigned port = free_port();
    re_buf_init(&err, 1024);
    re_buf_init(&out, 1 << 20);
    re_snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    re_snprintf(repo, sizeof(repo), "%s/mirror.git", test_tmpdir());
    struct mirrorserve_opts o = { .listen = listen, .git_dir = repo, .name = "store-1", .git = git,
                                  .password = "s3cret", .max_per_addr = 2,
                                  .header_timeout_ms = 400 };
    CHECK_EQ_INT(mirrorserve_start(&ms, &o, &err), 0);
#define REFS "GET /store-1.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n"
    request(port, REFS "\r\n", strlen(REFS "\r\n"), &out);
    CHECK(strncmp(out.ptr, "HTTP/1.1 401 ", 13) == 0);
    CHECK(strstr(out.ptr, "\r\nWWW-Authenticate: Basic realm=\"resedge-mirror\"\r\n"));
    static const char *const bad[] = {
        REFS "Authorization: Basic cmVzZWRnZTpzM2NyZVQ=\r\n\r\n",   /* resedge:s3creT */
        REFS "Authorization: Basic cmVzZWRnZTpzM2NyZX\r\n\r\n",     /* cut short */
        REFS "Authorization: Bearer s3cret\r\n\r\n",
        REFS "Authorization: Basic cmVzZWRnZTpzM2NyZXQ=x\r\n\r\n",
        "GET /other.git/HEAD HTTP/1.1\r\nHost: x\r\n\r\n",           /* 401 before 404 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        re_buf_reset(&out);
        request(port, bad[i], strlen(bad[i]), &out);
        CHECK(strncmp(out.ptr, "HTTP/1.1 401 ", 13) == 0);
    }
    static const char *const good[] = {
        REFS "Authorization: Basic cmVzZWRnZTpzM2NyZXQ=\r\n\r\n",
        REFS "authorization:   basic   cmVzZWRnZTpzM2NyZXQ=  \r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        re_buf_reset(&out);
        request(port, good[i], strlen(good[i]), &out);
        CHECK(strncmp(out.ptr, "HTTP/1.1 200 ", 13) == 0);
        CHECK(strstr(out.ptr, "\r\n\r\nok\n"));
    }
    /* Two half requests fill the address's quota; a third is refused at once. */
    uint64_t t0 = re_mono_ms();
    int h1 = connect_to(port);
    CHECK_EQ_INT(send(h1, REFS, strlen(REFS), MSG_NOSIGNAL), (ssize_t)strlen(REFS));
    usleep(200000);
    uint64_t t1 = re_mono_ms();
    int h2 = connect_to(port);
    CHECK_EQ_INT(send(h2, REFS, strlen(REFS), MSG_NOSIGNAL), (ssize_t)strlen(REFS));
    usleep(50000);
    re_buf_reset(&out);
    read_all(connect_to(port), &out);
    CHECK(out.ptr && strncmp(out.ptr, "HTTP/1.1 503 ", 13) == 0);
    CHECK(re_mono_ms() - t1 < 1000);
    /* Each times out 400 ms after its own accept. */
    re_buf_reset(&out);
    read_all(h1, &out);
    uint64_t c1 = re_mono_ms();
    CHECK(strncmp(out.ptr, "HTTP/1.1 408 ", 13) == 0);
    re_buf_reset(&out);
    read_all(h2, &out);
    uint64_t c2 = re_mono_ms();
    CHECK(strncmp(out.ptr, "HTTP/1.1 408 ", 13) == 0);
    CHECK(c1 - t0 >= 350 && c1 - t0 < 1400);
    CHECK(c2 - t1 >= 350 && c2 - t1 < 1400);
    CHECK(c2 - c1 >= 100);                     /* not one shared timer */
    mirrorserve_stop(ms);
#undef REFS
    /* An empty password is a mistake, not "no auth". */
    o.password = "";
    CHECK_EQ_INT(mirrorserve_start(&ms, &o, &err), -RE_EINVAL);
    re_buf_release(&err);
    re_buf_release(&out);
}

static void loopback_and_token(void)
{
    CHECK(mirrorserve_listen_is_loopback("127.0.0.1:8480"));
    CHECK(mirrorserve_listen_is_loopback("127.1.2.3:1"));
    CHECK(mirrorserve_listen_is_loopback("[::1]:8480"));
    CHECK(mirrorserve_listen_is_loopback("[::ffff:127.0.0.1]:8480"));
    CHECK(mirrorserve_listen_is_loopback("localhost:8480"));
    CHECK(!mirrorserve_listen_is_loopback("0.0.0.0:8480"));
    CHECK(!mirrorserve_listen_is_loopback(":8480"));
    CHECK(!mirrorserve_listen_is_loopback("[::]:8480"));
    CHECK(!mirrorserve_listen_is_loopback("10.0.0.1:8480"));
    CHECK(!mirrorserve_listen_is_loopback("node.example:8480"));
    CHECK(!mirrorserve_listen_is_loopback("garbage"));

    char t1[MIRRORSERVE_TOKEN_BUF], t2[MIRRORSERVE_TOKEN_BUF], path[4096];
    struct re_buf err, b;
    struct stat st;
    re_buf_init(&err, 1024);
    re_buf_init(&b, 4096);
    re_snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), MIRRORSERVE_TOKEN_FILE);
    unlink(path);
    CHECK_EQ_INT(mirrorserve_token(t1, test_tmpdir(), &err), 0);
    CHECK_EQ_INT(strlen(t1), 64);
    CHECK_EQ_INT(strspn(t1, "0123456789abcdef"), 64);
    CHECK_EQ_INT(stat(path, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);
    CHECK_EQ_INT(mirrorserve_token(t2, test_tmpdir(), &err), 0);
    CHECK_EQ_STR(t2, t1);                       /* made once */
    chmod(path, 0644);
    CHECK_EQ_INT(mirrorserve_token(t2, test_tmpdir(), &err), 0);
    CHECK_EQ_STR(t2, t1);
    CHECK_EQ_INT(stat(path, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);      /* made private again */
    CHECK_EQ_INT(re_write_file_atomic(path, "short\n", 6, 0600), 0);
    CHECK_EQ_INT(mirrorserve_token(t2, test_tmpdir(), &err), 0);
    CHECK(strcmp(t2, t1) != 0);                 /* not a token: replaced */
    CHECK_EQ_INT(re_read_file(&b, path), 0);
    CHECK_EQ_INT(b.len, 65);
    CHECK(memcmp(b.ptr, t2, 64) == 0);
    re_buf_release(&b);
    re_buf_release(&err);
}

static void listen_and_url(void)
{
    char host[MIRRORSERVE_HOST_MAX], url[256];
    unsigned port;
    CHECK_EQ_INT(mirrorserve_parse_listen(host, &port, "0.0.0.0:8480"), 0);
    CHECK_EQ_STR(host, "0.0.0.0");
    CHECK_EQ_INT(port, 8480);
    CHECK_EQ_INT(mirrorserve_parse_listen(host, &port, "[::1]:80"), 0);
    CHECK_EQ_STR(host, "::1");
    CHECK_EQ_INT(mirrorserve_parse_listen(host, &port, ":9000"), 0);
    CHECK_EQ_STR(host, "");
    CHECK(mirrorserve_parse_listen(host, &port, "8480") < 0);
    CHECK(mirrorserve_parse_listen(host, &port, "::1:80") < 0);
    CHECK(mirrorserve_parse_listen(host, &port, "host:0") < 0);
    CHECK(mirrorserve_parse_listen(host, &port, "host:65536") < 0);
    CHECK(mirrorserve_parse_listen(host, &port, "host:http") < 0);
    CHECK(mirrorserve_parse_listen(host, &port, "a b:80") < 0);
    CHECK(mirrorserve_parse_listen(host, &port, "[::1:80") < 0);
    CHECK_EQ_INT(mirrorserve_default_url(url, sizeof(url), "10.1.2.3:8480", "store-1"), 0);
    CHECK_EQ_STR(url, "http://10.1.2.3:8480/store-1.git");
    CHECK_EQ_INT(mirrorserve_default_url(url, sizeof(url), "[fd00::1]:8480", "s"), 0);
    CHECK_EQ_STR(url, "http://[fd00::1]:8480/s.git");
    CHECK_EQ_INT(mirrorserve_default_url(url, sizeof(url), "0.0.0.0:8480", "s"), 0);
    CHECK(strncmp(url, "http://", 7) == 0 && strstr(url, ":8480/s.git"));
    /* A port in use is an error that says so. */
    struct re_buf err;
    struct mirrorserve *a = NULL, *b = NULL;
    char listen[64], repo[4096];
    re_buf_init(&err, 1024);
    re_snprintf(listen, sizeof(listen), "127.0.0.1:%u", free_port());
    re_snprintf(repo, sizeof(repo), "%s/mirror.git", test_tmpdir());
    struct mirrorserve_opts o = { .listen = listen, .git_dir = repo, .name = "s" };
    CHECK_EQ_INT(mirrorserve_start(&a, &o, &err), 0);
    CHECK_EQ_INT(mirrorserve_start(&b, &o, &err), -RE_EIO);
    CHECK(strstr(err.ptr, "cannot listen on"));
    mirrorserve_stop(a);
    re_buf_release(&err);
}

TEST_MAIN(T(cgi_environment), T(git_failures), T(busy_and_deadline), T(stop_kills_children),
          T(auth_and_limits), T(loopback_and_token),
          T(listen_and_url))
