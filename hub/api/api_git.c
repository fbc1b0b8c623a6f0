/* gitserve.c - the hub's read-only git smart-HTTP endpoint: the no-change
 * poll (protocol v0/v1 info/refs) answered in-process from libgit2, what an
 * upload-pack request wants checked against the cluster's refs
 * (git_wants.c), the rest delegated to `git http-backend` in a libuv child
 * process.
 * See gitserve.h for routes, roles and limits. */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zlib.h>
#include "api_git.h"
#include "cgi.h"
#include "error.h"
#include "git_wants.h"
#include "http/http.h"
#include "hub.h"
#include "validate.h"
#include "log.h"

#define GIT_DIR_NAME      "git"
#define ADV_MAX           (64 * 1024)
#define STDERR_MAX        2048
#define ENV_MAX           32
#define PROTO_HDR_MAX     256
#define RETRY_AFTER_S     2
#define HEAD_CACHE_SLOTS  65536         /* 4 MB */
#define V2_CAPS_TTL_MS    60000         /* re-asked from git this often */
#define V2_CAPS_MAX       4096

/* What git 2.39's upload-pack advertises in stateless-rpc mode, in its
 * order; the POST goes to the real upload-pack, so the two must agree. */
#define CAPS_BEFORE_SYMREF \
    "multi_ack thin-pack side-band side-band-64k ofs-delta shallow deepen-since " \
    "deepen-not deepen-relative no-progress include-tag multi_ack_detailed no-done"
#define CAPS_AFTER_SYMREF "object-format=sha1 agent=resedge/" RE_VERSION

struct job;

/* The endpoint's state: one per process (the hub has one loop). */
struct gitserve {
    struct hub *hub;
    git_repository *repo;           /* DIR/git, opened lazily and kept */
    char *root;                     /* absolute DIR (GIT_PROJECT_ROOT) */
    unsigned running;
    unsigned max_running;           /* 0: GITSERVE_PROCS_PER_CORE per core */
    unsigned timeout_ms;            /* 0: GITSERVE_TIMEOUT_MS */
    size_t max_output;              /* 0: GITSERVE_MAX_OUTPUT */
    struct job *jobs;               /* running children, for shutdown */
    char (*head_ok)[VALIDATE_LABEL_MAX + 1]; /* HEAD_CACHE_SLOTS names, see head_cached */
    struct re_buf v2_caps;          /* git's v2 capability advertisement, see h_info_refs */
    uint64_t v2_caps_at;            /* uv_now when it was taken */
    bool libgit2_up;
};

static struct gitserve gs;

/* One delegated request: a `git http-backend` child and its pipes. */
struct job {
    struct http_exchange *x;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_write_t wreq;
    int open_handles;               /* closed when it reaches 0 */
    bool exited, out_eof, err_eof, finished;
    bool timed_out, too_big, killed_by_shutdown;
    bool keep_v2_caps;              /* store a good answer in gs.v2_caps */
    int spawn_err;                  /* uv_spawn's error, 0 when it ran */
    int64_t exit_status;
    int term_signal;
    struct re_buf out_buf;
    struct re_buf err_buf;
    struct re_buf in_body;          /* the body git reads when not the request's */
    char cluster[VALIDATE_LABEL_MAX + 1];
    char *env[ENV_MAX + 1];
    size_t n_env;
    struct job *next, **pprev;
};

/* ---- repository and ref advertisement ---- */

static int ensure_libgit2(void)
{
    if (!gs.libgit2_up) {
        if (git_libgit2_init() < 0)
            return -RE_EGIT;
        gs.libgit2_up = true;
    }
    return 0;
}

/* Opens DIR/git once per hub; -RE_ENOENT while it does not exist. */
static int open_repo(struct hub *hub, git_repository **out)
{
    struct re_buf path;
    int rc;

    if (gs.hub != hub) {
        gitserve_shutdown(gs.hub);
        gs.hub = hub;
    }
    if (gs.repo) {
        *out = gs.repo;
        return 0;
    }
    if ((rc = ensure_libgit2()) < 0)
        return rc;
    if (!gs.root) {
        char *abs = realpath(hub->cfg.dir, NULL);
        if (!abs)
            return -RE_ENOENT;
        gs.root = abs;
    }
    re_buf_init(&path, 4096);
    if ((rc = re_buf_printf(&path, "%s/%s", gs.root, GIT_DIR_NAME)) < 0)
        goto out;
    if (git_repository_open_bare(&gs.repo, path.ptr) < 0) {
        gs.repo = NULL;
        rc = -RE_ENOENT;
        goto out;
    }
    *out = gs.repo;
out:
    re_buf_release(&path);
    return rc;
}

/*
 * Clusters whose HEAD was seen as the symref to main, in a direct-mapped
 * table (a collision just evicts). The writer creates HEAD with the branch
 * and never changes it, so a positive answer stays true; skipping the
 * lookup halves the file system work of a poll. Only for gs.repo.
 */
/* The slot of cluster in gs.head_ok; NULL when out of memory. */
static char *head_slot(const char *cluster)
{
    uint32_t h = 2166136261u;                 /* FNV-1a */
    if (!gs.head_ok)
        gs.head_ok = calloc(HEAD_CACHE_SLOTS, sizeof(*gs.head_ok));
    if (!gs.head_ok)
        return NULL;
    for (const char *p = cluster; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return gs.head_ok[h % HEAD_CACHE_SLOTS];
}

static bool head_cached(git_repository *repo, const char *cluster)
{
    char *slot = repo == gs.repo ? head_slot(cluster) : NULL;
    return slot && strcmp(slot, cluster) == 0;
}

static void head_remember(git_repository *repo, const char *cluster)
{
    char *slot = repo == gs.repo ? head_slot(cluster) : NULL;
    if (slot)
        memcpy(slot, cluster, strlen(cluster) + 1);     /* validated: <= 63 */
}

static int pkt_line(struct re_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends one pkt-line: 4 hex digits of length (header included), payload. */
static int pkt_line(struct re_buf *out, const char *fmt, ...)
{
    size_t start = out->len;
    va_list ap;
    int rc;
    char hdr[5];

    if ((rc = re_buf_append(out, "0000", 4)) < 0)
        return rc;
    va_start(ap, fmt);
    rc = re_buf_vprintf(out, fmt, ap);
    va_end(ap);
    if (rc < 0)
        goto fail;
    size_t n = out->len - start;
    if (n > 65520) {
        rc = -RE_ETOOBIG;
        goto fail;
    }
    if ((rc = re_snprintf(hdr, sizeof(hdr), "%04zx", n)) < 0)
        goto fail;
    memcpy(out->ptr + start, hdr, 4);
    return 0;
fail:
    out->len = start;
    if (out->ptr)
        out->ptr[start] = '\0';
    return rc;
}

static int pkt_flush(struct re_buf *out)
{
    return re_buf_append(out, "0000", 4);
}

/* The tip of cluster's main as hex, and whether the namespace's HEAD is the
 * symref to main (as the GitOps writer creates it; clients need it to clone).
 * -RE_ENOENT when there is no branch. */
static int branch_lookup(git_repository *repo, const char *cluster,
                         char hex[GIT_OID_HEXSZ + 1], bool *have_head)
{
    char main_ref[128], head_ref[128];
    git_oid main_id;
    git_reference *head = NULL;
    int rc, grc;

    *have_head = false;
    if (validate_dns_label(re_str_c(cluster), NULL) < 0)
        return -RE_EINVAL;
    if ((rc = re_snprintf(main_ref, sizeof(main_ref), "refs/namespaces/%s/refs/heads/main",
                          cluster)) < 0 ||
        (rc = re_snprintf(head_ref, sizeof(head_ref), "refs/namespaces/%s/HEAD", cluster)) < 0)
        return rc;
    grc = git_reference_name_to_id(&main_id, repo, main_ref);
    if (grc == GIT_ENOTFOUND)
        return -RE_ENOENT;
    if (grc < 0)
        return -RE_EGIT;
    git_oid_tostr(hex, GIT_OID_HEXSZ + 1, &main_id);

    if (head_cached(repo, cluster)) {
        *have_head = true;
    } else if ((grc = git_reference_lookup(&head, repo, head_ref)) == 0) {
        if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC &&
            strcmp(git_reference_symbolic_target(head), main_ref) == 0) {
            *have_head = true;
            head_remember(repo, cluster);
        }
        git_reference_free(head);
    } else if (grc != GIT_ENOTFOUND) {
        return -RE_EGIT;
    }
    return 0;
}

int gitserve__advertise_v0(struct re_buf *out, git_repository *repo, const char *cluster)
{
    char hex[GIT_OID_HEXSZ + 1];
    bool have_head;
    int rc = branch_lookup(repo, cluster, hex, &have_head);

    if (rc < 0)
        return rc;
    if ((rc = pkt_line(out, "# service=git-upload-pack\n")) < 0 || (rc = pkt_flush(out)) < 0)
        return rc;
    if (have_head) {
        rc = pkt_line(out, "%s HEAD%c" CAPS_BEFORE_SYMREF " symref=HEAD:refs/heads/main "
                      CAPS_AFTER_SYMREF "\n", hex, '\0');
        if (rc == 0)
            rc = pkt_line(out, "%s refs/heads/main\n", hex);
    } else {
        rc = pkt_line(out, "%s refs/heads/main%c" CAPS_BEFORE_SYMREF " " CAPS_AFTER_SYMREF "\n",
                      hex, '\0');
    }
    if (rc == 0)
        rc = pkt_flush(out);
    return rc;
}

/* ---- protocol v2 ls-refs ---- */

#define LS_REFS_MAX_PREFIXES 64

struct ls_refs_args {
    bool symrefs;
    struct re_str prefixes[LS_REFS_MAX_PREFIXES];
    size_t n_prefixes;
};

/*
 * Parses a v2 request that is exactly an ls-refs command with the arguments
 * this module answers itself (symrefs, peel, unborn, ref-prefix). Returns
 * 0, or -1 when anything else is asked: git then answers it.
 * peel needs nothing: the writer's branches point at commits, never tags;
 * unborn needs nothing: a cluster without a branch is a 404 before this.
 */
static int parse_ls_refs(struct re_str body, struct ls_refs_args *a)
{
    struct re_str line;
    int k;

    memset(a, 0, sizeof(*a));
    if (git_wants_pkt_next(&body, &line) != 0 || !re_str_eq_c(line, "command=ls-refs"))
        return -1;
    while ((k = git_wants_pkt_next(&body, &line)) == 0) {        /* capabilities */
        if (!re_str_startswith_c(line, "agent=") && !re_str_eq_c(line, "object-format=sha1"))
            return -1;
    }
    if (k == 2) {
        while ((k = git_wants_pkt_next(&body, &line)) == 0) {    /* arguments */
            if (re_str_eq_c(line, "symrefs"))
                a->symrefs = true;
            else if (re_str_eq_c(line, "peel") || re_str_eq_c(line, "unborn"))
                ;
            else if (re_str_startswith_c(line, "ref-prefix ") &&
                     a->n_prefixes < LS_REFS_MAX_PREFIXES)
                a->prefixes[a->n_prefixes++] = (struct re_str){ line.ptr + 11, line.len - 11 };
            else
                return -1;
        }
    }
    return k == 1 && body.len == 0 ? 0 : -1;
}

static bool ref_wanted(const struct ls_refs_args *a, const char *name)
{
    if (!a->n_prefixes)
        return true;
    for (size_t i = 0; i < a->n_prefixes; i++)
        if (strlen(name) >= a->prefixes[i].len &&
            memcmp(name, a->prefixes[i].ptr, a->prefixes[i].len) == 0)
            return true;
    return false;
}

/* The ls-refs answer for one cluster, as `git upload-pack` gives it in its
 * namespace (git 2.39 lists HEAD twice there; once is enough). */
static int ls_refs(struct re_buf *out, git_repository *repo, const char *cluster,
                   const struct ls_refs_args *a)
{
    char hex[GIT_OID_HEXSZ + 1];
    bool have_head;
    int rc = branch_lookup(repo, cluster, hex, &have_head);

    if (rc < 0)
        return rc;
    if (have_head && ref_wanted(a, "HEAD"))
        rc = pkt_line(out, "%s HEAD%s\n", hex, a->symrefs ? " symref-target:refs/heads/main" : "");
    if (rc == 0 && ref_wanted(a, "refs/heads/main"))
        rc = pkt_line(out, "%s refs/heads/main\n", hex);
    if (rc == 0)
        rc = pkt_flush(out);
    return rc;
}

/* ---- request checks shared by every route ---- */

/* The cluster from the route parameter, checked against the caller.
 * Returns 0, or fills the error response and returns 1. */
static int authorize(struct http_exchange *x, char cluster[VALIDATE_LABEL_MAX + 1])
{
    struct re_str c = x->n_params > 0 ? x->params[0] : RE_STR_NULL;
    const char *why = NULL;
    const struct caller *p = &x->req.peer;

    if (validate_dns_label(c, &why) < 0) {
        http_response_error(&x->res, 400, "invalid", "cluster",
                            "repository must be /git/<cluster>.git: cluster name %s", why);
        return 1;
    }
    memcpy(cluster, c.ptr, c.len);
    cluster[c.len] = '\0';
    if (p->role & (ROLE_ADMIN | ROLE_OPERATOR))
        return 0;
    if (p->role == ROLE_AGENT && strcmp(p->kind, "cluster") == 0 &&
        strcmp(p->name, cluster) == 0)
        return 0;
    http_response_error(&x->res, 403, "forbidden", NULL,
                        "this certificate may not read the repository of cluster '%s'",
                        cluster);
    return 1;
}

static int refuse_push(struct http_exchange *x)
{
    http_response_error(&x->res, 403, "forbidden", NULL,
                        "the hub's git endpoint is read-only: change the inventory instead");
    return 0;
}

/* Repository open and the cluster's branch present; else a 404/500 response. */
static int check_branch(struct http_exchange *x, const char *cluster)
{
    git_repository *repo;
    git_oid id;
    char ref[128];
    int rc = open_repo(x->hub, &repo);

    if (rc == 0 && (rc = re_snprintf(ref, sizeof(ref), "refs/namespaces/%s/refs/heads/main",
                                     cluster)) == 0) {
        int grc = git_reference_name_to_id(&id, repo, ref);
        rc = grc == 0 ? 0 : grc == GIT_ENOTFOUND ? -RE_ENOENT : -RE_EGIT;
    }
    if (rc == -RE_ENOENT) {
        http_response_error(&x->res, 404, "not_found", "cluster",
                            "cluster '%s' has no configuration branch", cluster);
        return 1;
    }
    if (rc < 0) {
        log_err("git endpoint: cannot read branch of '%s': %s", cluster, re_strerror(rc));
        http_response_from_err(&x->res, rc, NULL, "cannot read the git repository");
        return 1;
    }
    return 0;
}

/* Git-Protocol is a ':'-separated list; true when it holds "version=2". */
static bool wants_v2(struct re_str v)
{
    size_t i = 0;
    while (i < v.len) {
        size_t j = i;
        while (j < v.len && v.ptr[j] != ':')
            j++;
        if (re_str_eq_c((struct re_str){ v.ptr + i, j - i }, "version=2"))
            return true;
        i = j + 1;
    }
    return false;
}

static bool printable(struct re_str v)
{
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.ptr[i] < 0x20 || (unsigned char)v.ptr[i] > 0x7e)
            return false;
    return true;
}

/* ---- delegation to git http-backend ---- */

static void job_close_cb(uv_handle_t *h)
{
    struct job *j = h->data;
    if (--j->open_handles > 0)
        return;
    struct http_exchange *x = j->x;
    for (size_t i = 0; i < j->n_env; i++)
        free(j->env[i]);
    re_buf_release(&j->out_buf);
    re_buf_release(&j->err_buf);
    re_buf_release(&j->in_body);
    free(j);
    http_exchange_done(x);
}

static void close_handle(struct job *j, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, job_close_cb);
    (void)j;
}

static const char *static_content_type(struct re_str ct)
{
    static const char *const known[] = {
        "application/x-git-upload-pack-result",
        "application/x-git-upload-pack-advertisement",
        "text/plain",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (re_str_startswith_c(ct, known[i]))
            return known[i];
    return "application/octet-stream";
}

/* git http-backend writes a few short headers before the body. */
#define CGI_HEAD_MAX (16 * 1024)

/* Turns the CGI output (headers, blank line, body) into the response. */
static void job_respond_cgi(struct job *j)
{
    struct http_response *res = &j->x->res;
    struct re_cgi_head h;
    int status;
    const char *ctype;

    if (!j->out_buf.ptr ||
        re_cgi_parse_head(&h, j->out_buf.ptr, j->out_buf.len, CGI_HEAD_MAX) < 0) {
        log_err("git endpoint: git http-backend for '%s' wrote no CGI header", j->cluster);
        http_response_error(res, 502, "git_error", NULL, "git http-backend failed");
        return;
    }
    status = h.status;
    ctype = h.content_type.len ? static_content_type(h.content_type) : "application/octet-stream";
    size_t body = j->out_buf.len - h.head_len;
    memmove(j->out_buf.ptr, j->out_buf.ptr + h.head_len, body);
    j->out_buf.len = body;
    j->out_buf.ptr[body] = '\0';
    if (status != 200) {
        log_warn("git endpoint: git http-backend answered %d for '%s'", status, j->cluster);
        http_response_error(res, status, status == 404 ? "not_found" : "git_error", NULL,
                            "git http-backend answered %d", status);
        return;
    }
    res->status = 200;
    res->content_type = ctype;
    http_response_header(res, "Cache-Control", "no-cache, max-age=0, must-revalidate");
    if (j->keep_v2_caps && j->out_buf.len <= V2_CAPS_MAX) {
        re_buf_release(&gs.v2_caps);
        re_buf_init(&gs.v2_caps, V2_CAPS_MAX);
        if (re_buf_append(&gs.v2_caps, j->out_buf.ptr, j->out_buf.len) == 0)
            gs.v2_caps_at = uv_now(j->x->hub->loop);
        else
            re_buf_release(&gs.v2_caps);
    }
    re_buf_release(&res->body);
    res->body = j->out_buf;
    re_buf_init(&j->out_buf, 0);
}

/* git's stderr: progress on success (debug), the reason on failure. */
static void job_log_stderr(struct job *j)
{
    bool failed = j->exit_status != 0 || j->term_signal != 0 || j->timed_out || j->too_big;
    if (!j->err_buf.len)
        return;
    for (size_t i = 0; i < j->err_buf.len; i++)
        if (j->err_buf.ptr[i] == '\n' || j->err_buf.ptr[i] == '\r')
            j->err_buf.ptr[i] = ' ';
    re_log(failed ? RE_LOG_WARNING : RE_LOG_DEBUG, "git endpoint: git for '%s': %s",
           j->cluster, j->err_buf.ptr);
}

/* Once the child exited and both output pipes are drained: answer, close. */
static void job_maybe_finish(struct job *j)
{
    if (j->finished || !j->exited || !j->out_eof || !j->err_eof)
        return;
    j->finished = true;
    uv_timer_stop(&j->timer);
    *j->pprev = j->next;
    if (j->next)
        j->next->pprev = j->pprev;
    gs.running--;
    job_log_stderr(j);

    struct http_response *res = &j->x->res;
    if (j->spawn_err) {
        http_response_error(res, 500, "git_error", NULL, "cannot run git: %s",
                            uv_strerror(j->spawn_err));
    } else if (j->killed_by_shutdown) {
        http_response_error(res, 503, "unavailable", NULL, "the hub is stopping");
    } else if (j->timed_out) {
        log_warn("git endpoint: git for '%s' killed after %u ms", j->cluster, gs.timeout_ms);
        http_response_error(res, 504, "timeout", NULL, "git did not finish in %u ms",
                            gs.timeout_ms);
    } else if (j->too_big) {
        log_warn("git endpoint: git output for '%s' over %zu bytes", j->cluster,
                 gs.max_output);
        http_response_error(res, 502, "too_large", NULL,
                            "the git response is larger than %zu bytes", gs.max_output);
    } else if (j->exit_status != 0 || j->term_signal != 0) {
        log_warn("git endpoint: git http-backend for '%s' exited %lld signal %d", j->cluster,
                 (long long)j->exit_status, j->term_signal);
        if (j->out_buf.len)
            job_respond_cgi(j);          /* git wrote its own error status */
        else
            http_response_error(res, 502, "git_error", NULL, "git http-backend failed");
    } else {
        job_respond_cgi(j);
    }
    close_handle(j, (uv_handle_t *)&j->proc);
    close_handle(j, (uv_handle_t *)&j->in);
    close_handle(j, (uv_handle_t *)&j->out);
    close_handle(j, (uv_handle_t *)&j->err);
    close_handle(j, (uv_handle_t *)&j->timer);
}

/* Kills git http-backend and the upload-pack it started: the child leads
 * its own process group (UV_PROCESS_DETACHED makes it a session leader). */
static void job_kill(struct job *j)
{
    if (j->proc.pid > 0 && !j->spawn_err)
        kill(-j->proc.pid, SIGKILL);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct job *j = p->data;
    j->exited = true;
    j->exit_status = status;
    j->term_signal = sig;
    job_maybe_finish(j);
}

static void on_timeout(uv_timer_t *t)
{
    struct job *j = t->data;
    j->timed_out = true;
    job_kill(j);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[64 * 1024];       /* loop thread only; copied out at once */
    (void)h;
    (void)suggested;
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct job *j = s->data;
    bool is_out = s == (uv_stream_t *)&j->out;
    struct re_buf *b = is_out ? &j->out_buf : &j->err_buf;

    if (n > 0) {
        if (re_buf_append(b, buf->base, (size_t)n) < 0) {
            if (is_out) {
                j->too_big = true;
                job_kill(j);
            }
            /* stderr past its cap is dropped; keep draining */
        }
        return;
    }
    if (n == 0)
        return;
    uv_read_stop(s);
    if (is_out)
        j->out_eof = true;
    else
        j->err_eof = true;
    job_maybe_finish(j);
}

static void on_written(uv_write_t *w, int status)
{
    struct job *j = w->data;
    (void)status;   /* EPIPE when git stopped reading: its exit tells the story */
    close_handle(j, (uv_handle_t *)&j->in);
}

static int env_add(struct job *j, const char *name, struct re_str value)
{
    struct re_buf b;
    int rc;

    if (j->n_env >= ENV_MAX)
        return -RE_ETOOBIG;
    re_buf_init(&b, 8192);
    if ((rc = re_buf_printf(&b, "%s=%.*s", name, (int)value.len, value.ptr ? value.ptr : "")) < 0) {
        re_buf_release(&b);
        return rc;
    }
    j->env[j->n_env++] = re_buf_steal(&b);
    j->env[j->n_env] = NULL;
    return 0;
}

/* What git reads on stdin: the inflated body when the hub inflated it. */
static struct re_str job_body(const struct job *j)
{
    return j->in_body.ptr ? re_buf_str(&j->in_body) : j->x->req.body;
}

/* Repository config may not widen what upload-pack sends: command-line
 * scope (GIT_CONFIG_COUNT) wins over DIR/git/config. v0/v1 honour these;
 * git 2.39's v2 fetch ignores the allow*SHA1InWant ones, hence git_wants.c. */
static const char *const hardening[][2] = {
    { "uploadpack.allowAnySHA1InWant", "false" },
    { "uploadpack.allowReachableSHA1InWant", "false" },
    { "uploadpack.allowTipSHA1InWant", "false" },
    { "uploadpack.allowFilter", "false" },
};
#define N_HARDENING (sizeof(hardening) / sizeof(hardening[0]))

static int env_hardening(struct job *j)
{
    char name[32], n[8];
    int rc = re_snprintf(n, sizeof(n), "%zu", N_HARDENING);

    if (!rc)
        rc = env_add(j, "GIT_CONFIG_COUNT", re_str_c(n));
    for (size_t i = 0; !rc && i < N_HARDENING; i++) {
        if (!(rc = re_snprintf(name, sizeof(name), "GIT_CONFIG_KEY_%zu", i)))
            rc = env_add(j, name, re_str_c(hardening[i][0]));
        if (!rc && !(rc = re_snprintf(name, sizeof(name), "GIT_CONFIG_VALUE_%zu", i)))
            rc = env_add(j, name, re_str_c(hardening[i][1]));
    }
    return rc;
}

static int job_env(struct job *j, bool post, struct re_str proto, struct re_str encoding)
{
    struct http_exchange *x = j->x;
    const char *path = getenv("PATH");
    char len[32];
    int rc = 0;

    rc = env_add(j, "PATH", re_str_c(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"));
    if (!rc)
        rc = env_add(j, "GIT_PROJECT_ROOT", re_str_c(gs.root));
    if (!rc)
        rc = env_add(j, "GIT_HTTP_EXPORT_ALL", RE_STR_LIT("1"));
    if (!rc)
        rc = env_add(j, "GIT_NAMESPACE", re_str_c(j->cluster));
    if (!rc)
        rc = env_add(j, "GIT_CONFIG_NOSYSTEM", RE_STR_LIT("1"));
    if (!rc)
        rc = env_add(j, "GIT_CONFIG_GLOBAL", RE_STR_LIT("/dev/null"));
    if (!rc)
        rc = env_hardening(j);
    if (!rc)
        rc = env_add(j, "LC_ALL", RE_STR_LIT("C"));
    if (!rc)
        rc = env_add(j, "REQUEST_METHOD", re_str_c(post ? "POST" : "GET"));
    if (!rc)
        rc = env_add(j, "PATH_INFO", re_str_c(post ? "/" GIT_DIR_NAME "/git-upload-pack"
                                                   : "/" GIT_DIR_NAME "/info/refs"));
    if (!rc)
        rc = env_add(j, "QUERY_STRING", post ? RE_STR_NULL : RE_STR_LIT("service=git-upload-pack"));
    if (!rc)
        rc = env_add(j, "REMOTE_ADDR", re_str_c(x->req.peer.remote_addr));
    if (!rc && proto.len)
        rc = env_add(j, "HTTP_GIT_PROTOCOL", proto);
    if (!rc && post) {
        rc = env_add(j, "CONTENT_TYPE", RE_STR_LIT("application/x-git-upload-pack-request"));
        if (!rc && (rc = re_snprintf(len, sizeof(len), "%zu", job_body(j).len)) == 0)
            rc = env_add(j, "CONTENT_LENGTH", re_str_c(len));
        if (!rc && encoding.len)
            rc = env_add(j, "HTTP_CONTENT_ENCODING", encoding);
    }
    return rc;
}

/* Starts git http-backend for x; HTTP_DEFERRED, or 0 with an error response.
 * body, when it holds anything, is what git reads instead of the request's
 * body; the job takes it over. */
static int delegate(struct http_exchange *x, const char *cluster, bool post,
                    struct re_str proto, struct re_str encoding, bool keep_v2_caps,
                    struct re_buf *body)
{
    uv_loop_t *loop = x->hub->loop;
    struct job *j;
    char *args[] = { "git", "http-backend", NULL };
    uv_stdio_container_t stdio[3];
    uv_process_options_t opt;
    int rc;

    if (!gs.max_running) {
        unsigned cores = uv_available_parallelism();
        gs.max_running = GITSERVE_PROCS_PER_CORE * (cores ? cores : 1);
    }
    if (!gs.timeout_ms)
        gs.timeout_ms = GITSERVE_TIMEOUT_MS;
    if (!gs.max_output)
        gs.max_output = GITSERVE_MAX_OUTPUT;
    if (gs.running >= gs.max_running) {
        http_response_header(&x->res, "Retry-After", "%d", RETRY_AFTER_S);
        http_response_error(&x->res, 503, "busy", NULL,
                            "%u git fetches are running: retry in %d s", gs.running,
                            RETRY_AFTER_S);
        return 0;
    }
    j = calloc(1, sizeof(*j));
    if (!j)
        goto nomem;
    j->x = x;
    j->keep_v2_caps = keep_v2_caps;
    memcpy(j->cluster, cluster, strlen(cluster) + 1);
    re_buf_init(&j->in_body, 0);
    if (body && body->ptr) {
        j->in_body = *body;
        re_buf_init(body, 0);
    }
    re_buf_init(&j->out_buf, gs.max_output);
    re_buf_init(&j->err_buf, STDERR_MAX);
    if ((rc = job_env(j, post, proto, encoding)) < 0) {
        for (size_t i = 0; i < j->n_env; i++)
            free(j->env[i]);
        re_buf_release(&j->in_body);
        free(j);
        goto nomem;
    }

    uv_pipe_init(loop, &j->in, 0);
    uv_pipe_init(loop, &j->out, 0);
    uv_pipe_init(loop, &j->err, 0);
    uv_timer_init(loop, &j->timer);
    j->in.data = j->out.data = j->err.data = j->timer.data = j->proc.data = j;
    j->wreq.data = j;
    j->open_handles = 5;

    memset(&opt, 0, sizeof(opt));
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&j->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&j->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&j->err;
    opt.file = "git";
    opt.args = args;
    opt.env = j->env;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    opt.exit_cb = on_exit_cb;
    opt.flags = UV_PROCESS_DETACHED;

    /* Linked before spawning: job_maybe_finish unlinks it on every path. */
    j->next = gs.jobs;
    j->pprev = &gs.jobs;
    if (gs.jobs)
        gs.jobs->pprev = &j->next;
    gs.jobs = j;
    gs.running++;

    rc = uv_spawn(loop, &j->proc, &opt);
    if (rc < 0) {
        log_err("git endpoint: cannot run 'git http-backend': %s", uv_strerror(rc));
        /* the process handle is initialized even on failure: close all five */
        j->spawn_err = rc;
        j->exited = j->out_eof = j->err_eof = true;
        job_maybe_finish(j);
        return HTTP_DEFERRED;           /* done once the handles are closed */
    }
    uv_read_start((uv_stream_t *)&j->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&j->err, on_alloc, on_read);
    uv_timer_start(&j->timer, on_timeout, gs.timeout_ms, 0);
    if (post && job_body(j).len) {
        uv_buf_t b = uv_buf_init((char *)job_body(j).ptr, (unsigned)job_body(j).len);
        rc = uv_write(&j->wreq, (uv_stream_t *)&j->in, &b, 1, on_written);
        if (rc < 0)
            close_handle(j, (uv_handle_t *)&j->in);
    } else {
        close_handle(j, (uv_handle_t *)&j->in);
    }
    return HTTP_DEFERRED;
nomem:
    http_response_error(&x->res, 500, "no_memory", NULL, "out of memory");
    return 0;
}

/* ---- checking upload-pack requests ---- */

/* Inflates the gzip body into *out (git gzips requests over 1 KB), at
 * most max_body_bytes: what the hub checks must be the bytes git reads
 * (git http-backend would inflate it itself, without the hub's limit).
 * Returns 0, or fills the error response and returns 1. */
static int inflate_body(struct http_exchange *x, struct re_buf *out)
{
    size_t max = x->hub->cfg.limits.max_body_bytes;
    z_stream z;
    char chunk[16384];
    int zrc, rc = 0;

    re_buf_init(out, max < UINT32_MAX ? max : UINT32_MAX);
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 16) != Z_OK)             /* 16: gzip framing */
        goto bad;
    z.next_in = (Bytef *)x->req.body.ptr;
    z.avail_in = (uInt)x->req.body.len;                 /* <= UINT32_MAX: checked */
    do {
        z.next_out = (Bytef *)chunk;
        z.avail_out = sizeof(chunk);
        zrc = inflate(&z, Z_NO_FLUSH);
        if (zrc != Z_OK && zrc != Z_STREAM_END)
            break;
        if ((rc = re_buf_append(out, chunk, sizeof(chunk) - z.avail_out)) < 0)
            break;
    } while (zrc == Z_OK && (z.avail_in || z.avail_out == 0));
    inflateEnd(&z);
    if (rc == -RE_ETOOBIG) {
        http_response_error(&x->res, 413, "too_large", NULL,
                            "the inflated request body is over %zu bytes", max);
        return 1;
    }
    if (rc == 0 && zrc == Z_STREAM_END && z.avail_in == 0 && out->ptr)
        return 0;
bad:
    http_response_error(&x->res, 400, "invalid", "Content-Encoding",
                        "the request body is not one complete gzip stream");
    return 1;
}

/* A request git would serve but the hub does not: git's ERR pkt-line over
 * 200, which the git client prints as "fatal: remote error: <why>" (for an
 * HTTP error status it shows only the code). */
static void refuse(struct http_exchange *x, const char *cluster, struct re_str why)
{
    log_warn("git endpoint: refused a fetch for '%s' from %s: %.*s", cluster,
             x->req.peer.remote_addr, (int)why.len, why.ptr);
    re_buf_reset(&x->res.body);
    if (pkt_line(&x->res.body, "ERR %.*s\n", (int)why.len, why.ptr) < 0) {
        http_response_error(&x->res, 403, "forbidden", NULL, "%.*s", (int)why.len, why.ptr);
        return;
    }
    x->res.status = 200;
    x->res.content_type = "application/x-git-upload-pack-result";
    http_response_header(&x->res, "Cache-Control", "no-cache, max-age=0, must-revalidate");
}

/* Answers v2 ls-refs in-process (the second half of a v2 poll). 1 when it
 * did, 0 when the request is one git must answer. */
static int v2_ls_refs(struct http_exchange *x, const char *cluster, struct re_str body)
{
    struct ls_refs_args lr;
    int rc;

    if (parse_ls_refs(body, &lr) < 0)
        return 0;
    if ((rc = ls_refs(&x->res.body, gs.repo, cluster, &lr)) < 0) {
        re_buf_reset(&x->res.body);
        http_response_from_err(&x->res, rc, NULL, "cannot read the git repository");
        return 1;
    }
    x->res.status = 200;
    x->res.content_type = "application/x-git-upload-pack-result";
    http_response_header(&x->res, "Cache-Control", "no-cache, max-age=0, must-revalidate");
    return 1;
}

/*
 * Every cluster's objects share one store and git sends more than the
 * namespace reaches (git_wants.h), so a body is read before git sees it:
 * 0 when git may answer it; else 1 with the response filled: 400 for broken
 * pkt-lines, an ERR for a command or want the cluster may not have, or the
 * in-process v2 ls-refs answer.
 */
static int admit(struct http_exchange *x, const char *cluster, struct re_str body, bool v2)
{
    struct git_wants *req = malloc(sizeof(*req));
    struct re_buf why;
    int rc;

    re_buf_init(&why, 512);
    if (!req) {
        http_response_error(&x->res, 500, "no_memory", NULL, "out of memory");
        rc = 1;
        goto out;
    }
    rc = v2 ? git_wants_parse_v2(req, body, &why) : git_wants_parse_v0(req, body, &why);
    if (rc == 0 && req->command == GIT_WANTS_LS_REFS && v2_ls_refs(x, cluster, body)) {
        rc = 1;
        goto out;
    }
    if (rc == 0)
        rc = git_wants_check(gs.repo, cluster, req, &why);
    if (rc == -RE_EPARSE) {
        http_response_error(&x->res, 400, "invalid", "body", "bad git protocol v%d request: %s",
                            v2 ? 2 : 0, why.ptr ? why.ptr : "malformed");
    } else if (rc == -RE_EDENIED) {
        refuse(x, cluster, re_buf_str(&why));
    } else if (rc < 0) {
        log_err("git endpoint: cannot check a fetch for '%s': %s", cluster,
                why.ptr ? why.ptr : re_strerror(rc));
        http_response_from_err(&x->res, rc, NULL, "cannot read the git repository");
    }
    rc = rc < 0 ? 1 : 0;
out:
    free(req);
    re_buf_release(&why);
    return rc;
}

/* ---- handlers ---- */

static int h_info_refs(struct http_exchange *x)
{
    char cluster[VALIDATE_LABEL_MAX + 1];
    char *service = NULL;
    struct re_str proto = http_header_get(&x->req, "Git-Protocol");
    int rc;

    if (authorize(x, cluster))
        return 0;
    rc = http_query_get(&x->req, "service", &service);
    if (rc == 0 && strcmp(service, "git-receive-pack") == 0) {
        free(service);
        return refuse_push(x);
    }
    if (rc < 0 || strcmp(service, "git-upload-pack") != 0) {
        free(service);
        http_response_error(&x->res, 400, "invalid", "service",
                            "only git's smart HTTP is served: ?service=git-upload-pack");
        return 0;
    }
    free(service);
    if (check_branch(x, cluster))
        return 0;
    if (proto.len > PROTO_HDR_MAX || !printable(proto)) {
        http_response_error(&x->res, 400, "invalid", "Git-Protocol", "bad Git-Protocol header");
        return 0;
    }
    if (wants_v2(proto)) {
        /* The v2 capability advertisement names no ref: it is the same for
         * every cluster, so git is asked once a minute, not per poll. */
        if (gs.v2_caps.len && uv_now(x->hub->loop) - gs.v2_caps_at < V2_CAPS_TTL_MS) {
            http_response_text(&x->res, 200, "application/x-git-upload-pack-advertisement",
                               re_buf_str(&gs.v2_caps));
            http_response_header(&x->res, "Cache-Control", "no-cache, max-age=0, must-revalidate");
            return 0;
        }
        return delegate(x, cluster, false, proto, RE_STR_NULL, true, NULL);
    }

    /* v0/v1: the no-change poll, in-process. */
    rc = gitserve__advertise_v0(&x->res.body, gs.repo, cluster);
    if (rc == -RE_ENOENT) {
        http_response_error(&x->res, 404, "not_found", "cluster",
                            "cluster '%s' has no configuration branch", cluster);
        return 0;
    }
    if (rc < 0) {
        log_err("git endpoint: cannot advertise refs of '%s': %s", cluster, re_strerror(rc));
        re_buf_reset(&x->res.body);
        http_response_from_err(&x->res, rc, NULL, "cannot read the git repository");
        return 0;
    }
    x->res.status = 200;
    x->res.content_type = "application/x-git-upload-pack-advertisement";
    http_response_header(&x->res, "Cache-Control", "no-cache, max-age=0, must-revalidate");
    return 0;
}

static int h_upload_pack(struct http_exchange *x)
{
    char cluster[VALIDATE_LABEL_MAX + 1];
    struct re_str ctype = http_header_get(&x->req, "Content-Type");
    struct re_str enc = http_header_get(&x->req, "Content-Encoding");
    struct re_str proto = http_header_get(&x->req, "Git-Protocol");

    if (authorize(x, cluster))
        return 0;
    if (!re_str_eq_c(ctype, "application/x-git-upload-pack-request")) {
        http_response_error(&x->res, 415, "unsupported", "Content-Type",
                            "Content-Type must be application/x-git-upload-pack-request");
        return 0;
    }
    if (enc.len && !re_str_caseeq_c(enc, "gzip") && !re_str_caseeq_c(enc, "x-gzip") &&
        !re_str_caseeq_c(enc, "identity")) {
        http_response_error(&x->res, 415, "unsupported", "Content-Encoding",
                            "Content-Encoding must be gzip or absent");
        return 0;
    }
    if (re_str_caseeq_c(enc, "identity"))
        enc = RE_STR_NULL;
    if (proto.len > PROTO_HDR_MAX || !printable(proto)) {
        http_response_error(&x->res, 400, "invalid", "Git-Protocol", "bad Git-Protocol header");
        return 0;
    }
    if (x->req.body.len > x->hub->cfg.limits.max_body_bytes || x->req.body.len > UINT32_MAX) {
        http_response_error(&x->res, 413, "too_large", NULL, "request body too large");
        return 0;
    }
    if (check_branch(x, cluster))
        return 0;

    /* git reads the inflated body the hub checked, with the version the
     * hub parsed it as (v1 requests are v0's: no Git-Protocol needed) */
    bool v2 = wants_v2(proto);
    struct re_buf plain;
    int rc = 0;
    re_buf_init(&plain, 0);
    if (enc.len && inflate_body(x, &plain))
        goto out;
    rc = admit(x, cluster, plain.ptr ? re_buf_str(&plain) : x->req.body, v2);
    if (rc == 0)
        rc = delegate(x, cluster, true, v2 ? RE_STR_LIT("version=2") : RE_STR_NULL,
                      RE_STR_NULL, false, &plain);
    else
        rc = 0;
out:
    re_buf_release(&plain);
    return rc;
}

static int h_receive_pack(struct http_exchange *x)
{
    char cluster[VALIDATE_LABEL_MAX + 1];
    if (authorize(x, cluster))
        return 0;
    return refuse_push(x);
}

#define GIT_ROLES (ROLE_AGENT | ROLE_OPERATOR | ROLE_ADMIN)

const struct route git_routes[] = {
    { "GET", "/git/{cluster}.git/info/refs", h_info_refs, GIT_ROLES },
    { "POST", "/git/{cluster}.git/git-upload-pack", h_upload_pack, GIT_ROLES },
    { "POST", "/git/{cluster}.git/git-receive-pack", h_receive_pack, GIT_ROLES },
    { NULL, NULL, NULL, 0 },
};

/* ---- lifecycle ---- */

unsigned gitserve_running(void)
{
    return gs.running;
}

void gitserve__set_limits(unsigned max_running, unsigned timeout_ms, size_t max_output)
{
    gs.max_running = max_running;
    gs.timeout_ms = timeout_ms;
    gs.max_output = max_output;
}

void gitserve_shutdown(struct hub *hub)
{
    (void)hub;
    for (struct job *j = gs.jobs; j; j = j->next) {
        j->killed_by_shutdown = true;
        job_kill(j);
    }
    if (gs.repo) {
        git_repository_free(gs.repo);
        gs.repo = NULL;
    }
    free(gs.root);
    gs.root = NULL;
    free(gs.head_ok);
    gs.head_ok = NULL;
    re_buf_release(&gs.v2_caps);
    gs.v2_caps_at = 0;
    /* libgit2 stays initialized: other modules may hold it too */
}
