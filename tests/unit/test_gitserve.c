/* test_gitserve.c - the git endpoint's handlers against a real bare repository
 * built with the git command line: the in-process v0 advertisement equals
 * what `git upload-pack` sends, roles and errors, and the delegated requests
 * (protocol v2, fetch) through a real `git http-backend` on a libuv loop. */
#include <stdint.h>
#include <unistd.h>
#include <uv.h>
#include "api/api_git.h"
#include "error.h"
#include "http/http.h"
#include "hub.h"
#include "testlib.h"

static char dir[256];
static int done_calls;

/* server.c is not linked: count completions of deferred exchanges. */
void http_exchange_done(struct http_exchange *x)
{
    (void)x;
    done_calls++;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fprintf(stderr, "command failed: %s\n", cmd);
        exit(1);
    }
}

/* Output of a shell command, whole (binary-safe), into b. */
static void sh_out(struct re_buf *b, const char *cmd)
{
    FILE *f = popen(cmd, "r");
    char chunk[4096];
    size_t n;
    CHECK(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        CHECK(re_buf_append(b, chunk, n) == 0);
    CHECK(pclose(f) == 0);
}

/* DIR/git with store-a (with HEAD symref) and store-b (without HEAD). */
static void make_repo(void)
{
    snprintf(dir, sizeof(dir), "%s/re-gitserve-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(dir));
    sh("cd %s && git init -q --bare git && git init -q w && cd w && echo hello > f && "
       "git add f && git -c user.name=t -c user.email=t@t commit -qm one && "
       "git push -q ../git HEAD:refs/namespaces/store-a/refs/heads/main "
       "HEAD:refs/namespaces/store-b/refs/heads/main && "
       "git --git-dir=../git symbolic-ref refs/namespaces/store-a/HEAD "
       "refs/namespaces/store-a/refs/heads/main", dir);
}

static void cleanup(void)
{
    sh("rm -rf %s", dir);
}

/* Replaces "agent=git/X" by "agent=resedge/V" and fixes the pkt length. */
static void expected_adv(struct re_buf *want, const char *ns)
{
    struct re_buf raw;
    char cmd[1024];
    re_buf_init(&raw, 1 << 20);
    snprintf(cmd, sizeof(cmd), "GIT_NAMESPACE=%s git upload-pack --stateless-rpc "
             "--advertise-refs %s/git", ns, dir);
    sh_out(&raw, cmd);
    CHECK(re_buf_append_str(want, "001e# service=git-upload-pack\n0000") == 0);
    /* first pkt-line holds the capabilities */
    char lenhex[5] = { 0 };
    memcpy(lenhex, raw.ptr, 4);
    size_t n = strtoul(lenhex, NULL, 16);
    char *line = raw.ptr + 4;
    size_t llen = n - 4;
    char *ag = memmem(line, llen, "agent=git/", 10);
    CHECK(ag);
    char *ag_end = memchr(ag, '\n', llen - (size_t)(ag - line));
    CHECK(ag_end);
    struct re_buf first;
    re_buf_init(&first, 1 << 16);
    CHECK(re_buf_append(&first, line, (size_t)(ag - line)) == 0);
    CHECK(re_buf_append_str(&first, "agent=resedge/" RE_VERSION) == 0);
    CHECK(re_buf_append(&first, ag_end, (size_t)(line + llen - ag_end)) == 0);
    char hdr[5];
    snprintf(hdr, sizeof(hdr), "%04zx", first.len + 4);
    CHECK(re_buf_append(want, hdr, 4) == 0);
    CHECK(re_buf_append(want, first.ptr, first.len) == 0);
    CHECK(re_buf_append(want, raw.ptr + n, raw.len - n) == 0);
    re_buf_release(&first);
    re_buf_release(&raw);
}

static void advertisement_matches_git(void)
{
    git_repository *repo;
    struct re_buf got, want;
    char path[512];

    make_repo();
    git_libgit2_init();
    snprintf(path, sizeof(path), "%s/git", dir);
    CHECK(git_repository_open_bare(&repo, path) == 0);
    const char *ns[] = { "store-a", "store-b" };
    for (int i = 0; i < 2; i++) {
        re_buf_init(&got, 1 << 16);
        re_buf_init(&want, 1 << 20);
        CHECK_EQ_INT(gitserve__advertise_v0(&got, repo, ns[i]), 0);
        expected_adv(&want, ns[i]);
        if (got.len != want.len || memcmp(got.ptr, want.ptr, got.len) != 0) {
            fprintf(stderr, "got:  %.*s\nwant: %.*s\n", (int)got.len, got.ptr,
                    (int)want.len, want.ptr);
            CHECK(0);
        }
        re_buf_release(&got);
        re_buf_release(&want);
    }
    re_buf_init(&got, 1 << 16);
    CHECK_EQ_INT(gitserve__advertise_v0(&got, repo, "store-zz"), -RE_ENOENT);
    CHECK_EQ_INT(gitserve__advertise_v0(&got, repo, "../x"), -RE_EINVAL);
    re_buf_release(&got);
    git_repository_free(repo);
    cleanup();
}

/* ---- handlers through a fake exchange ---- */

static struct hub hub;
static struct http_header hdrs[4];

static const struct route *route_for(const char *method, const char *suffix)
{
    for (const struct route *r = git_routes; r->method; r++)
        if (strcmp(r->method, method) == 0 && strstr(r->pattern, suffix))
            return r;
    CHECK(0);
    return NULL;
}

/* Runs one request; returns the status (after the loop for deferred ones). */
static int call(struct http_exchange *x, const char *method, const char *cluster,
                const char *suffix, const char *query, int role, const char *peer)
{
    const struct route *r = route_for(method, suffix);
    memset(&x->req, 0, sizeof(x->req));
    x->hub = &hub;
    x->req.method_name = method;
    x->req.query = re_str_c(query ? query : "");
    x->req.headers = hdrs;
    x->params[0] = re_str_c(cluster);
    x->n_params = 1;
    x->req.peer.authenticated = true;
    x->req.peer.role = role;
    snprintf(x->req.peer.kind, sizeof(x->req.peer.kind), "%s", role == 1 ? "cluster" : "user");
    snprintf(x->req.peer.name, sizeof(x->req.peer.name), "%s", peer);
    http_response_init(&x->res, 256u << 20);
    CHECK(r->roles & (unsigned)role);
    int before = done_calls;
    int rc = r->fn(x);
    if (rc == HTTP_DEFERRED) {
        uv_run(hub.loop, UV_RUN_DEFAULT);
        CHECK_EQ_INT(done_calls, before + 1);
    } else {
        CHECK_EQ_INT(rc, 0);
    }
    return x->res.status;
}

static void setup_hub(void)
{
    make_repo();
    memset(&hub, 0, sizeof(hub));
    hub.loop = uv_default_loop();
    hub.cfg.dir = dir;
    hub.cfg.limits.max_body_bytes = 1 << 20;
}

static void handlers(void)
{
    struct http_exchange x;
    memset(&x, 0, sizeof(x));
    setup_hub();

    /* v0 poll, in-process */
    CHECK_EQ_INT(call(&x, "GET", "store-a", "info/refs", "service=git-upload-pack",
                      ROLE_ADMIN, "admin"), 200);
    CHECK_EQ_STR(x.res.content_type, "application/x-git-upload-pack-advertisement");
    CHECK(strstr(x.res.body.ptr, "# service=git-upload-pack"));
    CHECK(x.res.body.len < 400);
    CHECK(strstr(x.res.headers.ptr, "Cache-Control: no-cache"));
    CHECK_EQ_INT(gitserve_running(), 0);
    http_response_release(&x.res);

    /* agents: own cluster only */
    CHECK_EQ_INT(call(&x, "GET", "store-a", "info/refs", "service=git-upload-pack",
                      ROLE_AGENT, "store-a"), 200);
    /* second poll: HEAD from the cache, same bytes as git */
    CHECK(memmem(x.res.body.ptr, x.res.body.len, " HEAD\0", 6));
    CHECK(memmem(x.res.body.ptr, x.res.body.len, "symref=HEAD:refs/heads/main", 27));
    http_response_release(&x.res);
    CHECK_EQ_INT(call(&x, "GET", "store-b", "info/refs", "service=git-upload-pack",
                      ROLE_AGENT, "store-a"), 403);
    http_response_release(&x.res);
    CHECK_EQ_INT(call(&x, "GET", "store-b", "info/refs", "service=git-upload-pack",
                      ROLE_OPERATOR, "op"), 200);
    CHECK(!memmem(x.res.body.ptr, x.res.body.len, " HEAD", 5));     /* store-b has none */
    http_response_release(&x.res);

    /* errors */
    CHECK_EQ_INT(call(&x, "GET", "nope", "info/refs", "service=git-upload-pack",
                      ROLE_ADMIN, "admin"), 404);
    http_response_release(&x.res);
    CHECK_EQ_INT(call(&x, "GET", "Bad_Name", "info/refs", "service=git-upload-pack",
                      ROLE_ADMIN, "admin"), 400);
    http_response_release(&x.res);
    CHECK_EQ_INT(call(&x, "GET", "store-a", "info/refs", "service=git-receive-pack",
                      ROLE_ADMIN, "admin"), 403);
    CHECK(strstr(x.res.body.ptr, "read-only"));
    http_response_release(&x.res);
    CHECK_EQ_INT(call(&x, "GET", "store-a", "info/refs", "", ROLE_ADMIN, "admin"), 400);
    http_response_release(&x.res);
    CHECK_EQ_INT(call(&x, "POST", "store-a", "git-receive-pack", NULL, ROLE_ADMIN, "admin"), 403);
    http_response_release(&x.res);

    gitserve_shutdown(&hub);
    cleanup();
}

/* A v2 request and a v0 fetch through the spawned git http-backend. */
static int call_h(struct http_exchange *x, const char *method, const char *suffix,
                  const char *query, size_t n_headers, struct re_str body)
{
    const struct route *r = route_for(method, suffix);
    memset(&x->req, 0, sizeof(x->req));
    x->hub = &hub;
    x->req.method_name = method;
    x->req.query = re_str_c(query ? query : "");
    x->req.headers = hdrs;
    x->req.n_headers = n_headers;
    x->req.body = body;
    x->params[0] = RE_STR_LIT("store-a");
    x->n_params = 1;
    x->req.peer.authenticated = true;
    x->req.peer.role = ROLE_AGENT;
    snprintf(x->req.peer.kind, sizeof(x->req.peer.kind), "cluster");
    snprintf(x->req.peer.name, sizeof(x->req.peer.name), "store-a");
    http_response_init(&x->res, 256u << 20);
    int before = done_calls;
    int rc = r->fn(x);
    CHECK_EQ_INT(rc, HTTP_DEFERRED);
    CHECK_EQ_INT(gitserve_running(), 1);
    uv_run(hub.loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(done_calls, before + 1);
    CHECK_EQ_INT(gitserve_running(), 0);
    return x->res.status;
}

static void delegated(void)
{
    struct http_exchange x;
    struct re_buf oid;
    char body[512];
    memset(&x, 0, sizeof(x));
    setup_hub();

    hdrs[0] = (struct http_header){ RE_STR_LIT("Git-Protocol"), RE_STR_LIT("version=2") };
    CHECK_EQ_INT(call_h(&x, "GET", "info/refs", "service=git-upload-pack", 1, RE_STR_NULL), 200);
    CHECK_EQ_STR(x.res.content_type, "application/x-git-upload-pack-advertisement");
    CHECK(x.res.body.len > 14 && memcmp(x.res.body.ptr, "000eversion 2\n", 14) == 0);
    http_response_release(&x.res);

    /* the second v2 info/refs comes from the cache: no child */
    {
        const struct route *r = route_for("GET", "info/refs");
        struct http_exchange y;
        memset(&y, 0, sizeof(y));
        y.hub = &hub;
        y.req.query = RE_STR_LIT("service=git-upload-pack");
        y.req.headers = hdrs;
        y.req.n_headers = 1;
        y.params[0] = RE_STR_LIT("store-b");
        y.n_params = 1;
        y.req.peer.role = ROLE_ADMIN;
        http_response_init(&y.res, 1 << 20);
        CHECK_EQ_INT(r->fn(&y), 0);
        CHECK_EQ_INT(y.res.status, 200);
        CHECK(y.res.body.len > 14 && memcmp(y.res.body.ptr, "000eversion 2\n", 14) == 0);
        http_response_release(&y.res);
    }

    /* v2 ls-refs, in-process: the lines git gives in the namespace */
    hdrs[1] = (struct http_header){ RE_STR_LIT("Content-Type"),
                                    RE_STR_LIT("application/x-git-upload-pack-request") };
    static const char *const ls_reqs[] = {
        "0014command=ls-refs\n0015agent=git/2.39.5\n0017object-format=sha1\n0001"
        "0009peel\n000csymrefs\n000bunborn\n0014ref-prefix HEAD\n"
        "001bref-prefix refs/heads/\n001aref-prefix refs/tags/\n0000",
        "0014command=ls-refs\n00010000",
        "0014command=ls-refs\n0000",
        "0014command=ls-refs\n0001001aref-prefix refs/tags/\n0000",
        "0014command=ls-refs\n0001001dref-prefix refs/heads/ma\n000csymrefs\n0000",
    };
    for (size_t i = 0; i < sizeof(ls_reqs) / sizeof(ls_reqs[0]); i++) {
        const struct route *r = route_for("POST", "git-upload-pack");
        memset(&x.req, 0, sizeof(x.req));
        x.hub = &hub;
        x.req.headers = hdrs;
        x.req.n_headers = 2;
        x.req.body = re_str_c(ls_reqs[i]);
        x.params[0] = RE_STR_LIT("store-a");
        x.n_params = 1;
        x.req.peer.role = ROLE_ADMIN;
        http_response_init(&x.res, 1 << 20);
        CHECK_EQ_INT(r->fn(&x), 0);                  /* not deferred: no child */
        CHECK_EQ_INT(x.res.status, 200);
        CHECK_EQ_STR(x.res.content_type, "application/x-git-upload-pack-result");
        /* git 2.39 repeats HEAD in a namespace: compare without repeats */
        struct re_buf want;
        char cmd[1024];
        re_buf_init(&want, 1 << 16);
        FILE *f;
        snprintf(cmd, sizeof(cmd), "%s/req", dir);
        CHECK((f = fopen(cmd, "w")) != NULL);
        fputs(ls_reqs[i], f);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "GIT_PROTOCOL=version=2 GIT_NAMESPACE=store-a git upload-pack "
                 "--stateless-rpc %s/git < %s/req | awk '!seen[$0]++' | head -c -1", dir, dir);
        sh_out(&want, cmd);
        struct re_buf got;
        re_buf_init(&got, 1 << 16);
        CHECK(re_buf_append(&got, x.res.body.ptr, x.res.body.len) == 0);
        if (got.len != want.len || memcmp(got.ptr, want.ptr, got.len) != 0) {
            fprintf(stderr, "request %zu\ngot:  %s\nwant: %s\n", i, got.ptr, want.ptr);
            CHECK(0);
        }
        re_buf_release(&got);
        re_buf_release(&want);
        http_response_release(&x.res);
    }
    /* anything else in v2 (here: ls-refs with an unknown argument) goes to git */
    CHECK_EQ_INT(call_h(&x, "POST", "git-upload-pack", NULL, 2,
                        re_str_c("0014command=ls-refs\n0001000bfoobar\n0000")), 200);
    http_response_release(&x.res);

    /* v0 fetch: want the tip, done -> NAK + a pack */
    re_buf_init(&oid, 128);
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "git --git-dir=%s/git rev-parse "
                 "refs/namespaces/store-a/refs/heads/main | tr -d '\\n'", dir);
        sh_out(&oid, cmd);
    }
    CHECK_EQ_INT(oid.len, 40);
    snprintf(body, sizeof(body), "0032want %s\n00000009done\n", oid.ptr);
    hdrs[0] = hdrs[1];
    CHECK_EQ_INT(call_h(&x, "POST", "git-upload-pack", NULL, 1, re_str_c(body)), 200);
    CHECK(x.res.body.len > 8 && memcmp(x.res.body.ptr, "0008NAK\n", 8) == 0);
    CHECK(memmem(x.res.body.ptr, x.res.body.len, "PACK", 4));
    http_response_release(&x.res);

    /* wrong content type, bad encoding */
    hdrs[0] = (struct http_header){ RE_STR_LIT("Content-Type"), RE_STR_LIT("text/plain") };
    {
        const struct route *r = route_for("POST", "git-upload-pack");
        memset(&x.req, 0, sizeof(x.req));
        x.hub = &hub;
        x.req.headers = hdrs;
        x.req.n_headers = 1;
        x.params[0] = RE_STR_LIT("store-a");
        x.n_params = 1;
        x.req.peer.role = ROLE_ADMIN;
        http_response_init(&x.res, 1 << 20);
        CHECK_EQ_INT(r->fn(&x), 0);
        CHECK_EQ_INT(x.res.status, 415);
        http_response_release(&x.res);
    }
    re_buf_release(&oid);
    gitserve_shutdown(&hub);
    uv_run(hub.loop, UV_RUN_DEFAULT);
    cleanup();
}

/* Writes an executable fake `git` into DIR/<name>/ and points PATH at it. */
static void fake_git(const char *name, const char *body)
{
    char path[512];
    sh("mkdir -p %s/%s && printf '#!/bin/sh\\n%%s\\n' '%s' > %s/%s/git && chmod +x %s/%s/git",
       dir, name, body, dir, name, dir, name);
    snprintf(path, sizeof(path), "%s/%s:/usr/bin:/bin", dir, name);
    setenv("PATH", path, 1);
}

/* Starts a v2 info/refs request (delegated); returns the handler's result. */
static int start_v2(struct http_exchange *x)
{
    const struct route *r = route_for("GET", "info/refs");
    hdrs[0] = (struct http_header){ RE_STR_LIT("Git-Protocol"), RE_STR_LIT("version=2") };
    memset(&x->req, 0, sizeof(x->req));
    x->hub = &hub;
    x->req.method_name = "GET";
    x->req.query = RE_STR_LIT("service=git-upload-pack");
    x->req.headers = hdrs;
    x->req.n_headers = 1;
    x->params[0] = RE_STR_LIT("store-a");
    x->n_params = 1;
    x->req.peer.role = ROLE_ADMIN;
    http_response_init(&x->res, 1 << 20);
    return r->fn(x);
}

static int run_v2(struct http_exchange *x)
{
    int before = done_calls;
    CHECK_EQ_INT(start_v2(x), HTTP_DEFERRED);
    uv_run(hub.loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(done_calls, before + 1);
    CHECK_EQ_INT(gitserve_running(), 0);
    return x->res.status;
}

static void limits(void)
{
    struct http_exchange x, y;
    char *old_path = strdup(getenv("PATH"));
    memset(&x, 0, sizeof(x));
    memset(&y, 0, sizeof(y));
    setup_hub();
    gitserve__set_limits(1, 300, 1000);

    /* a hung git (with a child of its own) is killed at the timeout */
    fake_git("slow", "sleep 30; echo late");
    uint64_t t0 = uv_hrtime();
    CHECK_EQ_INT(run_v2(&x), 504);
    CHECK((uv_hrtime() - t0) / 1000000 < 5000);
    http_response_release(&x.res);

    /* one child at a time: the second request gets 503 + Retry-After */
    CHECK_EQ_INT(start_v2(&x), HTTP_DEFERRED);
    CHECK_EQ_INT(start_v2(&y), 0);
    CHECK_EQ_INT(y.res.status, 503);
    CHECK(strstr(y.res.headers.ptr, "Retry-After: "));
    http_response_release(&y.res);
    uv_run(hub.loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(x.res.status, 504);
    http_response_release(&x.res);

    /* output over the cap */
    fake_git("big", "printf \"Content-Type: text/plain\\r\\n\\r\\n\"; head -c 100000 /dev/zero");
    CHECK_EQ_INT(run_v2(&x), 502);
    http_response_release(&x.res);

    /* git's own error status is passed on; garbage is a 502 */
    fake_git("err", "printf \"Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nboom\"");
    CHECK_EQ_INT(run_v2(&x), 500);
    http_response_release(&x.res);
    fake_git("junk", "echo no headers here");
    CHECK_EQ_INT(run_v2(&x), 502);
    http_response_release(&x.res);
    fake_git("fail", "exit 3");
    CHECK_EQ_INT(run_v2(&x), 502);
    http_response_release(&x.res);

    /* no git at all */
    setenv("PATH", "/nonexistent", 1);
    CHECK_EQ_INT(run_v2(&x), 500);
    http_response_release(&x.res);

    setenv("PATH", old_path, 1);
    free(old_path);
    gitserve__set_limits(0, 0, 0);
    gitserve_shutdown(&hub);
    uv_run(hub.loop, UV_RUN_DEFAULT);
    cleanup();
}

TEST_MAIN(T(advertisement_matches_git), T(handlers), T(delegated), T(limits))
