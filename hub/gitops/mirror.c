/* mirror.c - the optional push mirror: one background thread pushes every
 * cluster's branch to an external git server with libgit2, retrying with
 * backoff (mirror.h). */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <git2.h>
#include <uv.h>
#include "clock.h"
#include "crypto.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"

#define NS_PREFIX "refs/namespaces/"
#define NS_SUFFIX "/refs/heads/main"
#define CRED_MAX 4096
#define ERR_MAX 512

struct mirror {
    char *url;                  /* as configured (may hold user info) */
    char *url_safe;             /* user info redacted: for messages */
    char *userinfo;             /* "user:token" of the URL, scrubbed from errors; or NULL */
    char *cred_path;            /* NULL: none */
    char *git_dir;
    unsigned retry_max_ms;
    uv_thread_t thread;
    atomic_bool cancel;         /* read by libgit2 progress callbacks */

    uv_mutex_t mu;              /* guards everything below */
    uv_cond_t cv;
    struct metrics *metrics;    /* NULL once abandoned */
    bool dirty, pushing, stop, exited, abandoned;
    unsigned failures;          /* consecutive */
    uint64_t pushes_ok, pushes_err;
    uint64_t next_retry_ms;     /* monotonic */
    int64_t last_success;       /* wall seconds; 0: never */
    size_t last_branches, last_pushed;
    char last_error[ERR_MAX];
};

/* One local branch: cluster name and commit. */
struct branch {
    char *cluster;
    git_oid oid;
};

/* One branch on the mirror. */
struct rhead {
    const char *name;
    git_oid oid;
};

struct push_ctx {
    struct mirror *mi;
    int cred_tries;
    bool cred_failed;
    size_t rejected;
    char first_rejected[200];
};

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* Redacts the user info of a URL (user:token@ becomes ***@). */
static char *redact(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *end = host + strcspn(host, "/");
    const char *at = memchr(host, '@', (size_t)(end - host));
    struct re_buf b;
    re_buf_init(&b, 8192);
    if (at && scheme)
        re_buf_printf(&b, "%.*s***%s", (int)(host - url), url, at);
    else
        re_buf_append_str(&b, url);
    return re_buf_steal(&b);
}

/* The user info of a URL ("user:token"), or NULL. */
static char *userinfo_of(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : NULL;
    const char *at = host ? memchr(host, '@', strcspn(host, "/")) : NULL;
    return at && at > host ? strndup(host, (size_t)(at - host)) : NULL;
}

/* Copies msg into out with every occurrence of secret replaced by "***". */
static void scrub(char *out, size_t size, const char *msg, const char *secret)
{
    struct re_buf b;
    size_t sl = secret ? strlen(secret) : 0;
    re_buf_init(&b, size > 1 ? size - 1 : 1);
    while (sl && *msg) {
        const char *hit = strstr(msg, secret);
        if (!hit)
            break;
        re_buf_append(&b, msg, (size_t)(hit - msg));
        re_buf_append_str(&b, "***");
        msg = hit + sl;
    }
    re_buf_append_str(&b, msg);
    snprintf(out, size, "%s", b.len ? b.ptr : msg);
    re_buf_release(&b);
}

static const char *git_msg(void)
{
    const git_error *e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

/* ---- libgit2 callbacks (mirror thread) ---- */

static int cred_cb(git_credential **out, const char *url, const char *user_from_url,
                   unsigned int allowed, void *payload)
{
    struct push_ctx *ctx = payload;
    struct mirror *mi = ctx->mi;
    struct re_buf b;
    int r = GIT_PASSTHROUGH;
    (void)url;
    if (ctx->cred_tries++ > 0) {
        /* libgit2 asks again when the server refused what we gave */
        ctx->cred_failed = true;
        git_error_set_str(GIT_ERROR_NET, "the mirror refused the credentials");
        return GIT_EAUTH;
    }
    if (!mi->cred_path) {
        if (allowed & GIT_CREDENTIAL_SSH_KEY)
            return git_credential_ssh_key_from_agent(out, user_from_url ? user_from_url : "git");
        return GIT_PASSTHROUGH;
    }
    if (!(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) {
        git_error_set_str(GIT_ERROR_NET, "the mirror asks for a kind of credential that "
                                         "mirror_credentials cannot give (use https)");
        return GIT_EAUTH;
    }
    re_buf_init(&b, CRED_MAX);
    if (re_read_file(&b, mi->cred_path) < 0 || !b.ptr) {
        git_error_set(GIT_ERROR_OS, "cannot read mirror_credentials file '%s'", mi->cred_path);
        r = GIT_EAUTH;
        goto out;
    }
    while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r' ||
                     b.ptr[b.len - 1] == ' ' || b.ptr[b.len - 1] == '\t'))
        b.ptr[--b.len] = '\0';
    if (b.len == 0 || memchr(b.ptr, '\n', b.len)) {
        git_error_set(GIT_ERROR_NET, "mirror_credentials file '%s' must hold one line: "
                                     "username:token or a token", mi->cred_path);
        r = GIT_EAUTH;
        goto out;
    }
    char *colon = strchr(b.ptr, ':');
    if (colon) {
        *colon = '\0';
        r = git_credential_userpass_plaintext_new(out, b.ptr, colon + 1);
    } else {
        r = git_credential_userpass_plaintext_new(out, "x-access-token", b.ptr);
    }
out:
    if (b.ptr)
        explicit_bzero(b.ptr, b.cap);
    re_buf_release(&b);
    return r;
}

static int update_ref_cb(const char *refname, const char *status, void *data)
{
    struct push_ctx *ctx = data;
    if (status) {
        if (ctx->rejected++ == 0)
            snprintf(ctx->first_rejected, sizeof(ctx->first_rejected), "%s: %s", refname,
                     status);
    }
    return 0;
}

static int cancel_cb(struct push_ctx *ctx)
{
    if (atomic_load(&ctx->mi->cancel)) {
        git_error_set_str(GIT_ERROR_NET, "stopped");
        return -1;
    }
    return 0;
}

static int push_progress_cb(unsigned int current, unsigned int total, size_t bytes, void *p)
{
    (void)current, (void)total, (void)bytes;
    return cancel_cb(p);
}

static int pack_progress_cb(int stage, uint32_t current, uint32_t total, void *p)
{
    (void)stage, (void)current, (void)total;
    return cancel_cb(p);
}

static int sideband_cb(const char *str, int len, void *p)
{
    (void)str, (void)len;
    return cancel_cb(p);
}

/* ---- one push ---- */

static void branches_free(struct branch *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].cluster);
    free(v);
}

/* Every refs/namespaces/<cluster>/refs/heads/main of repo. */
static int collect_local(struct branch **out, size_t *n_out, git_repository *repo,
                         struct re_buf *err)
{
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    struct branch *v = NULL;
    size_t n = 0, cap = 0;
    int e, r = 0;
    if (git_reference_iterator_glob_new(&it, repo, NS_PREFIX "*" NS_SUFFIX) < 0) {
        re_buf_printf(err, "cannot list branches: %s", git_msg());
        return -RE_EGIT;
    }
    while ((e = git_reference_next(&ref, it)) == 0) {
        const char *name = git_reference_name(ref);
        const char *c = name + strlen(NS_PREFIX);
        const char *slash = strchr(c, '/');
        if (slash && slash > c && strcmp(slash, NS_SUFFIX) == 0 &&
            git_reference_type(ref) == GIT_REFERENCE_DIRECT) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 256;
                struct branch *nv = realloc(v, nc * sizeof(*nv));
                if (!nv) {
                    r = -RE_ENOMEM;
                    goto out;
                }
                v = nv;
                cap = nc;
            }
            if (!(v[n].cluster = strndup(c, (size_t)(slash - c)))) {
                r = -RE_ENOMEM;
                goto out;
            }
            git_oid_cpy(&v[n].oid, git_reference_target(ref));
            n++;
        }
        git_reference_free(ref);
        ref = NULL;
    }
    if (e != GIT_ITEROVER) {
        re_buf_printf(err, "cannot list branches: %s", git_msg());
        r = -RE_EGIT;
    }
out:
    git_reference_free(ref);
    git_reference_iterator_free(it);
    if (r < 0) {
        if (r == -RE_ENOMEM)
            re_buf_printf(err, "%s", re_strerror(r));
        branches_free(v, n);
        return r;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int rhead_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rhead *)a)->name, ((const struct rhead *)b)->name);
}

static void strarray_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/*
 * Connects, lists the mirror, and computes the refspecs of the branches that
 * differ and fast-forward there. Branches that moved elsewhere on the mirror
 * are counted in *diverged (first one named in first_div).
 */
static int plan_push(char ***out, size_t *n_out, size_t *diverged, char *first_div,
                     size_t first_div_size, git_repository *repo, git_remote *remote,
                     const git_remote_callbacks *cbs, const struct branch *local, size_t n_local,
                     struct re_buf *err)
{
    const git_remote_head **heads = NULL;
    size_t n_heads = 0, n_r = 0, n = 0;
    struct rhead *rv = NULL;
    char **specs = NULL;
    char name[300];
    int r = 0;
    *diverged = 0;
    if (git_remote_connect(remote, GIT_DIRECTION_PUSH, cbs, NULL, NULL) < 0) {
        re_buf_printf(err, "cannot connect: %s", git_msg());
        return -RE_EGIT;
    }
    if (git_remote_ls(&heads, &n_heads, remote) < 0) {
        re_buf_printf(err, "cannot list the mirror's branches: %s", git_msg());
        return -RE_EGIT;
    }
    r = -RE_ENOMEM;
    if (!(rv = calloc(n_heads + 1, sizeof(*rv))) || !(specs = calloc(n_local + 1, sizeof(*specs))))
        goto out;
    for (size_t i = 0; i < n_heads; i++)
        if (strncmp(heads[i]->name, "refs/heads/", 11) == 0) {
            rv[n_r].name = heads[i]->name;
            git_oid_cpy(&rv[n_r].oid, &heads[i]->oid);
            n_r++;
        }
    qsort(rv, n_r, sizeof(*rv), rhead_cmp);
    for (size_t i = 0; i < n_local; i++) {
        struct rhead key = { name, { { 0 } } };
        const struct rhead *have;
        snprintf(name, sizeof(name), "refs/heads/%s", local[i].cluster);
        have = bsearch(&key, rv, n_r, sizeof(*rv), rhead_cmp);
        if (have && git_oid_equal(&have->oid, &local[i].oid))
            continue;
        /* libgit2 fails the whole push on one non-fast-forward: keep those out */
        if (have && !git_oid_is_zero(&have->oid) &&
            git_graph_descendant_of(repo, &local[i].oid, &have->oid) != 1) {
            if ((*diverged)++ == 0)
                snprintf(first_div, first_div_size, "%s", name);
            continue;
        }
        struct re_buf s;
        re_buf_init(&s, 400);
        if (re_buf_printf(&s, NS_PREFIX "%s" NS_SUFFIX ":refs/heads/%s", local[i].cluster,
                          local[i].cluster) < 0) {
            re_buf_release(&s);
            goto out;
        }
        specs[n++] = re_buf_steal(&s);
    }
    r = 0;
out:
    free(rv); /* the names point into the remote's listing */
    if (r < 0) {
        re_buf_printf(err, "%s", re_strerror(r));
        strarray_free(specs, n);
        return r;
    }
    *out = specs;
    *n_out = n;
    return 0;
}

static int push_once(struct mirror *mi, size_t *n_branches, size_t *n_pushed, struct re_buf *err)
{
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    struct branch *local = NULL;
    size_t n_local = 0, n_specs = 0, diverged = 0;
    char **specs = NULL;
    char first_div[300] = "";
    struct push_ctx ctx = { .mi = mi };
    git_remote_callbacks cbs;
    git_push_options opts;
    int r;
    git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
    git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
    *n_branches = *n_pushed = 0;
    cbs.credentials = cred_cb;
    cbs.push_update_reference = update_ref_cb;
    cbs.push_transfer_progress = push_progress_cb;
    cbs.pack_progress = pack_progress_cb;
    cbs.sideband_progress = sideband_cb;
    cbs.payload = &ctx;
    opts.callbacks = cbs;
    if (git_repository_open_bare(&repo, mi->git_dir) < 0) {
        re_buf_printf(err, "cannot open '%s': %s", mi->git_dir, git_msg());
        r = -RE_EGIT;
        goto out;
    }
    if ((r = collect_local(&local, &n_local, repo, err)) < 0)
        goto out;
    *n_branches = n_local;
    /* in memory, and no url.*.insteadOf lookup: besides meaning nothing here,
     * that config regex leaks in libgit2 1.5 on every entry it does not match */
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = repo;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (git_remote_create_with_opts(&remote, mi->url, &ro) < 0) {
        re_buf_printf(err, "bad mirror URL: %s", git_msg());
        r = -RE_EGIT;
        goto out;
    }
    if ((r = plan_push(&specs, &n_specs, &diverged, first_div, sizeof(first_div), repo, remote,
                       &cbs, local, n_local, err)) < 0)
        goto out;
    for (size_t i = 0; i < n_specs; i += MIRROR_CHUNK) {
        git_strarray arr = { specs + i, n_specs - i < MIRROR_CHUNK ? n_specs - i : MIRROR_CHUNK };
        if (git_remote_push(remote, &arr, &opts) < 0) {
            re_buf_printf(err, "push failed: %s", git_msg());
            r = -RE_EGIT;
            goto out;
        }
        if (ctx.rejected) {
            re_buf_printf(err, "the mirror rejected %zu branches (%s)", ctx.rejected,
                          ctx.first_rejected);
            r = -RE_EGIT;
            goto out;
        }
        *n_pushed += arr.count;
    }
    if (diverged) {
        re_buf_printf(err, "%zu branches differ on the mirror and do not fast-forward (first: "
                      "'%s'): not pushed; fix or delete them on the mirror", diverged, first_div);
        r = -RE_ECONFLICT;
        goto out;
    }
    r = 0;
out:
    if (r < 0 && ctx.cred_failed)
        re_buf_printf(err, " (check mirror_credentials)");
    if (remote)
        git_remote_disconnect(remote);
    git_remote_free(remote);
    git_repository_free(repo);
    strarray_free(specs, n_specs);
    branches_free(local, n_local);
    return r;
}

/* ---- the thread ---- */

static void set_pending(struct mirror *mi)
{
    /* mu held */
    metrics_set(mi->metrics, "resedge_mirror_pending",
                (mi->dirty || mi->pushing || mi->failures) ? 1 : 0);
}

static uint64_t backoff_ms(const struct mirror *mi)
{
    uint64_t d = MIRROR_RETRY_BASE_MS;
    uint32_t rnd = 0;
    for (unsigned i = 1; i < mi->failures && d < mi->retry_max_ms; i++)
        d *= 2;
    if (d > mi->retry_max_ms)
        d = mi->retry_max_ms;
    if (re_random(&rnd, sizeof(rnd)) < 0)
        rnd = (uint32_t)uv_hrtime();
    return d / 2 + (d / 2 ? rnd % (d / 2 + 1) : 0);
}

static void mirror_free(struct mirror *mi)
{
    uv_cond_destroy(&mi->cv);
    uv_mutex_destroy(&mi->mu);
    free(mi->url);
    free(mi->url_safe);
    free(mi->userinfo);
    free(mi->cred_path);
    free(mi->git_dir);
    free(mi);
    git_libgit2_shutdown();
}

static void thread_main(void *arg)
{
    struct mirror *mi = arg;
    struct re_buf err;
    bool abandoned;
    re_buf_init(&err, ERR_MAX);
    uv_mutex_lock(&mi->mu);
    for (;;) {
        while (!mi->stop && !mi->dirty)
            uv_cond_wait(&mi->cv, &mi->mu);
        while (!mi->stop && mi->failures) {
            uint64_t now = mono_ms();
            if (now >= mi->next_retry_ms)
                break;
            uv_cond_timedwait(&mi->cv, &mi->mu, (mi->next_retry_ms - now) * 1000000u);
        }
        if (mi->stop)
            break;
        mi->dirty = false;
        mi->pushing = true;
        set_pending(mi);
        uv_mutex_unlock(&mi->mu);

        size_t branches = 0, pushed = 0;
        re_buf_reset(&err);
        int r = push_once(mi, &branches, &pushed, &err);

        uv_mutex_lock(&mi->mu);
        mi->pushing = false;
        mi->last_branches = branches;
        if (r == 0) {
            if (mi->failures)
                log_notice("mirror: push to '%s' works again (%zu branches updated)",
                           mi->url_safe, pushed);
            mi->failures = 0;
            mi->pushes_ok++;
            mi->last_success = re_time();
            mi->last_pushed = pushed;
            mi->last_error[0] = '\0';
            metrics_inc(mi->metrics, "resedge_mirror_pushes_total{result=\"ok\"}");
            metrics_add(mi->metrics, "resedge_mirror_branches_pushed_total", (double)pushed);
            metrics_set(mi->metrics, "resedge_mirror_last_success_timestamp_seconds",
                        (double)mi->last_success);
        } else if (!mi->stop) {
            mi->failures++;
            mi->pushes_err++;
            mi->dirty = true;
            mi->next_retry_ms = mono_ms() + backoff_ms(mi);
            scrub(mi->last_error, sizeof(mi->last_error), err.len ? err.ptr : re_strerror(r),
                  mi->userinfo);
            if (mi->failures == 1) /* once per outage; /readyz and /metrics tell the rest */
                log_warn("mirror: cannot push to '%s', retrying with backoff: %s", mi->url_safe,
                         mi->last_error);
            metrics_inc(mi->metrics, "resedge_mirror_pushes_total{result=\"error\"}");
            if (pushed)
                metrics_add(mi->metrics, "resedge_mirror_branches_pushed_total", (double)pushed);
        }
        set_pending(mi);
    }
    mi->exited = true;
    abandoned = mi->abandoned;
    uv_cond_broadcast(&mi->cv);
    uv_mutex_unlock(&mi->mu);
    re_buf_release(&err);
    if (abandoned)
        mirror_free(mi); /* mirror_stop gave up waiting: the memory is ours */
}

/* ---- API ---- */

int mirror_start(struct mirror **out, const char *git_dir, const struct mirror_config *cfg,
                 struct metrics *metrics, struct re_buf *err)
{
    struct mirror *mi = NULL;
    int r;
    if (!cfg || !cfg->url || !*cfg->url) {
        re_buf_printf(err, "%s", "no mirror URL");
        return -RE_EINVAL;
    }
    if (!(mi = calloc(1, sizeof(*mi))))
        goto nomem;
    if (uv_mutex_init(&mi->mu) < 0) {
        free(mi);
        goto nomem;
    }
    if (uv_cond_init(&mi->cv) < 0) {
        uv_mutex_destroy(&mi->mu);
        free(mi);
        goto nomem;
    }
    git_libgit2_init(); /* released by mirror_free */
    atomic_init(&mi->cancel, false);
    mi->metrics = metrics;
    mi->retry_max_ms = cfg->retry_max_ms ? cfg->retry_max_ms : 5 * 60 * 1000;
    if (mi->retry_max_ms < MIRROR_RETRY_BASE_MS)
        mi->retry_max_ms = MIRROR_RETRY_BASE_MS;
    mi->url = strdup(cfg->url);
    mi->url_safe = redact(cfg->url);
    mi->userinfo = userinfo_of(cfg->url);
    mi->git_dir = strdup(git_dir);
    mi->cred_path = cfg->credentials_file && *cfg->credentials_file
                        ? strdup(cfg->credentials_file) : NULL;
    if (!mi->url || !mi->url_safe || !mi->git_dir ||
        (cfg->credentials_file && *cfg->credentials_file && !mi->cred_path)) {
        mirror_free(mi);
        goto nomem;
    }
    metrics_describe(metrics, "resedge_mirror_pushes_total", "counter",
                     "pushes to the GitOps mirror by result");
    metrics_describe(metrics, "resedge_mirror_last_success_timestamp_seconds", "gauge",
                     "wall time of the last successful push to the mirror (0: never)");
    metrics_describe(metrics, "resedge_mirror_pending", "gauge",
                     "1 while changes wait to reach the mirror, 0 when it is up to date");
    metrics_describe(metrics, "resedge_mirror_branches_pushed_total", "counter",
                     "branches updated on the mirror");
    metrics_add(metrics, "resedge_mirror_pushes_total{result=\"ok\"}", 0);
    metrics_add(metrics, "resedge_mirror_pushes_total{result=\"error\"}", 0);
    metrics_add(metrics, "resedge_mirror_branches_pushed_total", 0);
    metrics_set(metrics, "resedge_mirror_last_success_timestamp_seconds", 0);
    mi->dirty = true; /* the start-up push */
    set_pending(mi);
    if ((r = uv_thread_create(&mi->thread, thread_main, mi)) < 0) {
        re_buf_printf(err, "cannot start the mirror thread: %s", uv_strerror(r));
        mirror_free(mi);
        return -RE_EAGAIN;
    }
    *out = mi;
    return 0;
nomem:
    re_buf_printf(err, "%s", re_strerror(-RE_ENOMEM));
    return -RE_ENOMEM;
}

void mirror_notify(struct mirror *mi)
{
    if (!mi)
        return;
    uv_mutex_lock(&mi->mu);
    mi->dirty = true;
    set_pending(mi);
    uv_cond_signal(&mi->cv);
    uv_mutex_unlock(&mi->mu);
}

static void last_success_text(char *out, size_t size, int64_t t)
{
    if (t)
        re_time_iso(out, size, t);
    else
        snprintf(out, size, "%s", "never");
}

int mirror_ready(void *arg, struct re_buf *why)
{
    struct mirror *mi = arg;
    char when[40];
    int r = 0;
    uv_mutex_lock(&mi->mu);
    if (mi->failures) {
        uint64_t now = mono_ms();
        last_success_text(when, sizeof(when), mi->last_success);
        re_buf_printf(why, "push to '%s' failing (%u attempts; last success %s; next retry in "
                      "%llu ms): %s", mi->url_safe, mi->failures, when,
                      (unsigned long long)(mi->next_retry_ms > now ? mi->next_retry_ms - now : 0),
                      mi->last_error);
        r = -RE_EAGAIN;
    }
    uv_mutex_unlock(&mi->mu);
    return r;
}

cJSON *mirror_status_json(struct mirror *mi)
{
    cJSON *o = cJSON_CreateObject();
    char when[40];
    if (!o || !mi)
        return o;
    uv_mutex_lock(&mi->mu);
    uint64_t now = mono_ms();
    cJSON_AddStringToObject(o, "url", mi->url_safe);
    cJSON_AddStringToObject(o, "state", mi->pushing ? "pushing"
                                        : mi->failures ? "failing"
                                        : mi->dirty ? "pending" : "idle");
    cJSON_AddNumberToObject(o, "failures", mi->failures);
    cJSON_AddNumberToObject(o, "pushes_ok", (double)mi->pushes_ok);
    cJSON_AddNumberToObject(o, "pushes_error", (double)mi->pushes_err);
    cJSON_AddNumberToObject(o, "branches", (double)mi->last_branches);
    cJSON_AddNumberToObject(o, "last_pushed", (double)mi->last_pushed);
    if (mi->last_success) {
        last_success_text(when, sizeof(when), mi->last_success);
        cJSON_AddStringToObject(o, "last_success", when);
    } else {
        cJSON_AddNullToObject(o, "last_success");
    }
    if (mi->failures) {
        cJSON_AddStringToObject(o, "last_error", mi->last_error);
        cJSON_AddNumberToObject(o, "next_retry_in_ms",
                                (double)(mi->next_retry_ms > now ? mi->next_retry_ms - now : 0));
    } else {
        cJSON_AddNullToObject(o, "last_error");
    }
    uv_mutex_unlock(&mi->mu);
    return o;
}

void mirror_stop(struct mirror *mi)
{
    uint64_t deadline;
    bool exited;
    if (!mi)
        return;
    atomic_store(&mi->cancel, true);
    uv_mutex_lock(&mi->mu);
    mi->stop = true;
    uv_cond_broadcast(&mi->cv);
    deadline = mono_ms() + MIRROR_STOP_WAIT_MS;
    while (!mi->exited) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            break;
        uv_cond_timedwait(&mi->cv, &mi->mu, (deadline - now) * 1000000u);
    }
    exited = mi->exited;
    if (!exited) {
        /* stuck in the network (libgit2 1.5 has no connect timeout) */
        mi->abandoned = true;
        mi->metrics = NULL;
    }
    uv_mutex_unlock(&mi->mu);
    if (exited) {
        uv_thread_join(&mi->thread);
        mirror_free(mi);
    } else {
        pthread_detach(mi->thread);
    }
}
