/* run.c - the agent daemon's loop: check in, renew, pull, materialize, deploy. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <git2.h>
#include "backoff.h"
#include "checkin.h"
#include "clock.h"
#include "config.h"
#include "deploy.h"
#include "enroll.h"
#include "error.h"
#include "facts.h"
#include "fsutil.h"
#include "hubclient.h"
#include "log.h"
#include "materialize.h"
#include "mirrorserve.h"
#include "notify.h"
#include "oid.h"
#include "pull.h"
#include "run.h"
#include "state.h"
#include "tick.h"

static volatile sig_atomic_t g_stop, g_reload;
static int g_pipe[2] = { -1, -1 };

struct agent {
    struct agent_config cfg;
    int argc;
    char **argv;
    struct agent_state st;
    struct agent_status status;
    struct agent_facts facts;
    struct hubclient *hc;
    git_repository *mirror;
    struct mirrorserve *ms;          /* mode mirror: serving STATE/mirror.git */
    char ms_listen[300];             /* what ms listens on */
    bool ms_auth;                    /* ... and whether it asks for the token */
    uint64_t ms_retry_at;            /* monotonic ms: next start attempt */
    char ms_error[300];
    struct backoff bo;
    struct backoff renew_bo;
    uint64_t interval_ms;            /* the hub's, else the configured one */
    uint64_t next_checkin;           /* monotonic ms */
    uint64_t next_renew_try;
    uint64_t wd_ms;
    uint64_t next_wd;
    bool revoked;
    int64_t last_ok;                 /* wall time of the last good check-in */
    int64_t failing_since;
    char last_error[300];
    char last_pull_error[300];
    char status_line[512];
    struct checkin_answer answer;
};

static struct agent *g_agent;        /* for the watchdog tick */

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP)
        g_reload = 1;
    else
        g_stop = 1;
    if (g_pipe[1] >= 0) {
        char c = 0;
        ssize_t n = write(g_pipe[1], &c, 1);
        (void)n;
    }
    errno = saved;
}

static int setup_signals(void)
{
    struct sigaction sa;
    if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -RE_EIO;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void watchdog_tick(void)
{
    struct agent *a = g_agent;
    if (!a || !a->wd_ms)
        return;
    uint64_t now = re_mono_ms();
    if (now >= a->next_wd) {
        re_notify("WATCHDOG=1");
        a->next_wd = now + a->wd_ms;
    }
}

static void set_status(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_status(struct agent *a, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->status_line, sizeof(a->status_line), fmt, ap);
    va_end(ap);
    re_snprintf(line, sizeof(line), "STATUS=%s", a->status_line);
    re_notify(line);
}

/* "37s", or "0.8s" under 10 s, for waits in log and status lines. */
static const char *secs(char *buf, size_t size, uint64_t ms)
{
    if (ms < 10000)
        re_snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, (ms % 1000) / 100);
    else
        re_snprintf(buf, size, "%" PRIu64 "s", (ms + 500) / 1000);
    return buf;
}

static const char *short_rev(const char *rev)
{
    /* A few buffers, so one message can show several revisions. */
    static char s[4][13];
    static unsigned next;
    if (!rev || !rev[0])
        return "none";
    char *b = s[next++ % 4];
    re_snprintf(b, sizeof(s[0]), "%.12s", rev);
    return b;
}

static int state_file(char *out, size_t size, const struct agent *a, const char *name)
{
    return agent_state_path(out, size, a->cfg.state_dir, name);
}

/* (Re)creates the mTLS client and the git stream's credentials from the state. */
static int connect_hub(struct agent *a, struct re_buf *err)
{
    char ca[4096], cert[4096], key[4096];
    struct re_buf ca_pem;
    struct hubclient *hc = NULL;
    int r;
    re_buf_init(&ca_pem, 256 * 1024);
    if ((r = state_file(ca, sizeof(ca), a, AGENT_CA_FILE)) < 0 ||
        (r = state_file(cert, sizeof(cert), a, a->st.cert_name)) < 0 ||
        (r = state_file(key, sizeof(key), a, a->st.key_name)) < 0)
        goto out;
    if ((r = re_read_file(&ca_pem, ca)) < 0) {
        re_buf_printf(err, "cannot read '%s': %s", ca, re_strerror(r));
        goto out;
    }
    if (access(cert, R_OK) < 0 || access(key, R_OK) < 0) {
        re_buf_printf(err, "cannot read the agent's certificate or key ('%s', '%s')", cert, key);
        r = -RE_EIO;
        goto out;
    }
    struct hubclient_opts o = { .base_url = a->st.hub_url, .ca_pem = ca_pem.ptr,
                                .cert_file = cert, .key_file = key, .abort_flag = &g_stop };
    if ((r = hubclient_new(&hc, &o)) < 0) {
        re_buf_printf(err, "cannot set up the HTTPS client: %s", re_strerror(r));
        goto out;
    }
    if ((r = pull_set_tls(ca, cert, key, err)) < 0)
        goto out;
    hubclient_free(a->hc);
    a->hc = hc;
    hc = NULL;
out:
    hubclient_free(hc);
    re_buf_release(&ca_pem);
    return r;
}

static void sleep_until(uint64_t deadline)
{
    for (;;) {
        uint64_t now = re_mono_ms();
        if (g_stop || g_reload || now >= deadline)
            return;
        uint64_t wait = deadline - now;
        if (g_agent && g_agent->wd_ms) {
            watchdog_tick();
            uint64_t wd_wait = g_agent->next_wd > now ? g_agent->next_wd - now : 0;
            if (wd_wait < wait)
                wait = wd_wait;
        }
        struct pollfd pfd = { g_pipe[0], POLLIN, 0 };
        int n = poll(&pfd, 1, wait > 60000 ? 60000 : (int)wait);
        if (n > 0) {
            char buf[64];
            while (read(g_pipe[0], buf, sizeof(buf)) > 0) {
            }
        }
    }
}

/* ---- desired state ---- */

static bool same_origin(const char *url, const char *hub)
{
    size_t n = strlen(hub);
    return strncmp(url, hub, n) == 0 && url[n] == '/';
}

static void git_url_for(struct agent *a, char *out, size_t size)
{
    if (a->answer.git_url[0] && same_origin(a->answer.git_url, a->st.hub_url)) {
        re_snprintf(out, size, "%s", a->answer.git_url);
        return;
    }
    if (a->answer.git_url[0])
        log_warn("ignoring git_url '%s' from the hub: not on the enrolled hub '%s'",
                 a->answer.git_url, a->st.hub_url);
    re_snprintf(out, size, "%s/git/%s.git", a->st.hub_url, a->st.cluster);
}

/* True when STATE/agent.state no longer exists (path into p). */
static bool record_deleted(struct agent *a, char *p, size_t size)
{
    struct stat sb;
    return state_file(p, size, a, AGENT_STATE_FILE) == 0 && stat(p, &sb) < 0 &&
           errno == ENOENT;
}

static void save_status(struct agent *a)
{
    int r = agent_status_save(&a->status, a->cfg.state_dir);
    if (r < 0)
        log_warn("cannot write '%s/%s': %s", a->cfg.state_dir, AGENT_STATUS_FILE,
                 re_strerror(r));
}

static const char *status_damage(int r)
{
    return r == -RE_EPARSE ? "not a JSON object: truncated or garbage" : re_strerror(r);
}

/* status.json damaged under the running agent (truncated, overwritten):
 * what it should say is in memory, so write it again. A missing file is
 * left to the next change (it is also missing before the first revision). */
static void check_status_file(struct agent *a)
{
    struct agent_status on_disk;
    char rec[4096];
    int r = agent_status_read(&on_disk, a->cfg.state_dir);
    if (r == 0 || r == -RE_ENOENT || record_deleted(a, rec, sizeof(rec)))
        return;
    log_warn("'%s/%s' was damaged (%s): rewriting it", a->cfg.state_dir, AGENT_STATUS_FILE,
             status_damage(r));
    save_status(a);
}

static int read_state_file(struct re_buf *out, struct agent *a, const char *name)
{
    char p[4096];
    int r = state_file(p, sizeof(p), a, name);
    return r < 0 ? r : re_read_file(out, p);
}

/* ---- the local mirror's HTTP server (mode mirror) ---- */

#define MIRROR_RETRY_MS 30000

static const char *mirror_listen(const struct agent *a)
{
    return a->cfg.mirror_listen ? a->cfg.mirror_listen : MIRRORSERVE_DEFAULT_LISTEN;
}

/* Starts, restarts (new address) or stops the server to match the config.
 * A failure to bind is logged once per distinct reason and retried. */
static void ensure_mirror_server(struct agent *a)
{
    const char *listen = mirror_listen(a);
    bool want = a->cfg.mode == AGENT_MODE_MIRROR && strcmp(listen, "none") != 0;
    bool auth = agent_config_mirror_auth(&a->cfg);
    if (a->ms && (!want || strcmp(listen, a->ms_listen) != 0 || auth != a->ms_auth)) {
        mirrorserve_stop(a->ms);
        a->ms = NULL;
        log_notice("stopped serving the local mirror on %s", a->ms_listen);
        a->ms_retry_at = 0;
    }
    if (!want || a->ms || re_mono_ms() < a->ms_retry_at)
        return;
    char git_dir[4096], token[MIRRORSERVE_TOKEN_BUF];
    struct re_buf err;
    re_buf_init(&err, 1024);
    struct mirrorserve_opts o = { .listen = listen, .git_dir = git_dir, .name = a->st.cluster,
                                  .hidden_refs = PULL_HIDDEN_REFS,
                                  .password = auth ? token : NULL };
    int r = state_file(git_dir, sizeof(git_dir), a, "mirror.git");
    if (r == 0 && auth)
        r = mirrorserve_token(token, a->cfg.state_dir, &err);
    if (r == 0)
        r = mirrorserve_start(&a->ms, &o, &err);
    memset(token, 0, sizeof(token));
    if (r < 0) {
        char msg[300];
        re_snprintf(msg, sizeof(msg), "%s", err.ptr ? err.ptr : re_strerror(r));
        if (strcmp(msg, a->ms_error) != 0)
            log_err("cannot serve the local mirror: %s; retrying every %ds", msg,
                    MIRROR_RETRY_MS / 1000);
        re_snprintf(a->ms_error, sizeof(a->ms_error), "%s", msg);
        a->ms_retry_at = re_mono_ms() + MIRROR_RETRY_MS;
    } else {
        a->ms_error[0] = '\0';
        re_snprintf(a->ms_listen, sizeof(a->ms_listen), "%s", listen);
        a->ms_auth = auth;
        log_notice("serving the local mirror read-only on %s as /%s.git (%s)", listen,
                   a->st.cluster, auth ? "basic auth, token in " MIRRORSERVE_TOKEN_FILE
                                       : "no authentication");
    }
    re_buf_release(&err);
}

/* The GitRepository URL of mode mirror: mirror_url, else derived from the
 * listening address. -RE_ENOENT when neither is set. */
static int mirror_flux_url(struct agent *a, char *out, size_t size)
{
    const char *listen = mirror_listen(a);
    if (a->cfg.mirror_url)
        return re_snprintf(out, size, "%s", a->cfg.mirror_url);
    if (strcmp(listen, "none") == 0)
        return -RE_ENOENT;
    return mirrorserve_default_url(out, size, listen, a->st.cluster);
}

/* flux/mirror: write the Flux objects and apply them when they changed (or
 * the last apply failed). */
static void sync_flux(struct agent *a, const char *url, bool with_secret, const char *password)
{
    struct re_buf ca, cert, key, err;
    char dir[4096], result[sizeof(a->status.apply_result)];
    bool changed = false;
    re_buf_init(&ca, 256 * 1024);
    re_buf_init(&cert, 256 * 1024);
    re_buf_init(&key, 64 * 1024);
    re_buf_init(&err, 1024);
    if (with_secret && (read_state_file(&ca, a, AGENT_CA_FILE) < 0 ||
                        read_state_file(&cert, a, a->st.cert_name) < 0 ||
                        read_state_file(&key, a, a->st.key_name) < 0)) {
        log_err("cannot read the agent's credentials for the Flux secret");
        goto out;
    }
    struct deploy_flux f = { .url = url, .branch = a->answer.branch,
                             .ca_pem = with_secret ? ca.ptr : NULL,
                             .cert_pem = with_secret ? cert.ptr : NULL,
                             .key_pem = with_secret ? key.ptr : NULL,
                             .username = password ? MIRRORSERVE_USER : NULL,
                             .password = password };
    if (deploy_flux_write(a->cfg.state_dir, &f, &changed, &err) < 0) {
        log_err("%s", err.ptr ? err.ptr : "cannot write the Flux objects");
        re_snprintf(a->status.apply_result, sizeof(a->status.apply_result), "failed: %s",
                    err.ptr ? err.ptr : "cannot write the Flux objects");
        goto out;
    }
    if (!changed && strcmp(a->status.apply_result, "ok") == 0)
        goto out;
    re_snprintf(dir, sizeof(dir), "%s/flux", a->cfg.state_dir);
    const char *cmd = a->cfg.apply_command ? a->cfg.apply_command : "kubectl apply -f {dir}";
    deploy_run(cmd, dir, a->cfg.apply_timeout_ms, &g_stop, result, sizeof(result));
    memcpy(a->status.apply_result, result, sizeof(result));
    a->status.applied_at = re_time();
    if (strcmp(result, "ok") == 0)
        log_notice("applied the Flux objects in '%s'", dir);
    else
        log_err("applying the Flux objects: %s", result);
out:
    if (key.ptr)
        memset(key.ptr, 0, key.len);
    re_buf_release(&ca);
    re_buf_release(&cert);
    re_buf_release(&key);
    re_buf_release(&err);
}

static void pull_error(struct agent *a, const char *msg);

/* Mode mirror: Flux objects pointing at the local mirror. -RE_ENOENT when
 * there is no URL to give Flux (logged). */
static int mirror_flux(struct agent *a)
{
    char murl[1100];
    if (mirror_flux_url(a, murl, sizeof(murl)) < 0) {
        pull_error(a, "mode mirror with mirror_listen = none needs mirror_url (where Flux "
                      "reaches the local mirror)");
        return -RE_ENOENT;
    }
    /* The mirror's basic-auth token goes into Flux's Secret. */
    char token[MIRRORSERVE_TOKEN_BUF];
    bool auth = strcmp(mirror_listen(a), "none") != 0 && agent_config_mirror_auth(&a->cfg);
    if (auth) {
        struct re_buf err;
        re_buf_init(&err, 1024);
        int r = mirrorserve_token(token, a->cfg.state_dir, &err);
        if (r < 0)
            pull_error(a, err.ptr ? err.ptr : "cannot read the mirror's token");
        re_buf_release(&err);
        if (r < 0)
            return r;
    }
    sync_flux(a, murl, false, auth ? token : NULL);
    memset(token, 0, sizeof(token));
    return 0;
}

/* The revision Flux last applied, from our Kustomization's status
 * ("main@sha1:<hex>"). */
static void flux_applied(struct agent *a)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, a->facts.kustomizations) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(k, "name");
        const cJSON *rev = cJSON_GetObjectItemCaseSensitive(k, "revision");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, DEPLOY_SYNC_NAME) != 0 ||
            !cJSON_IsString(rev))
            continue;
        const char *p = strstr(rev->valuestring, "sha1:");
        if (p && strlen(p + 5) == 40)
            memcpy(a->status.applied, p + 5, RE_OID_BUF);
    }
}

static void pull_error(struct agent *a, const char *msg)
{
    if (strcmp(a->last_pull_error, msg) != 0)
        log_warn("%s", msg);
    else
        log_debug("%s", msg);
    re_snprintf(a->last_pull_error, sizeof(a->last_pull_error), "%s", msg);
}

/* A pull step failed: say so once (pull_error), keep it in the status when
 * asked (save), and as the apply result when the revision cannot be applied. */
enum { PF_SAVE = 1, PF_APPLY_FAILED = 2 };
static void pull_fail(struct agent *a, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pull_fail(struct agent *a, unsigned flags, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pull_error(a, msg);
    if (flags & PF_APPLY_FAILED)
        re_snprintf(a->status.apply_result, sizeof(a->status.apply_result), "failed: %s", msg);
    if (flags & PF_SAVE)
        save_status(a);
}

/* Mode flux: Flux pulls the hub itself; the agent keeps its objects current. */
static void sync_flux_mode(struct agent *a, const char *url)
{
    if (strcmp(a->status.mode, "flux") != 0)
        a->status.apply_result[0] = '\0'; /* apply the Flux objects at least once */
    re_snprintf(a->status.mode, sizeof(a->status.mode), "flux");
    sync_flux(a, url, true, NULL);
    flux_applied(a);
    save_status(a);
}

/* The local mirror, open and sound: 0, or -1 after saying why. */
static int ensure_mirror(struct agent *a, struct re_buf *err)
{
    if (a->mirror && pull_check_mirror(a->mirror, err) < 0) {
        /* Deleted or damaged under us: every fetch into the open handle
         * would fail. The hub has the history, so start a fresh mirror. */
        log_warn("the local mirror '%s/mirror.git' is missing or damaged (%s): recreating it "
                 "and fetching again", a->cfg.state_dir, err->ptr ? err->ptr : "unknown");
        git_repository_free(a->mirror);
        a->mirror = NULL;
        re_buf_reset(err);
    }
    if (!a->mirror && pull_open_mirror(&a->mirror, a->cfg.state_dir, err) < 0) {
        pull_error(a, err->ptr);
        return -1;
    }
    return 0;
}

/* Fetches the branch, checks it is at the assigned revision, materializes
 * it into STATE/current: 0, or -1 after saying why. */
static int fetch_and_materialize(struct agent *a, const char *url, const char *want,
                                 struct re_buf *err)
{
    char fetched[RE_OID_BUF];
    git_oid oid;
    int r;
    re_buf_reset(err);
    if ((r = pull_fetch(a->mirror, url, a->answer.branch, fetched, err)) < 0) {
        pull_fail(a, 0, "cannot fetch '%s': %s", url, err->ptr ? err->ptr : re_strerror(r));
        return -1;
    }
    memcpy(a->status.pulled, fetched, RE_OID_BUF);
    if (strcmp(fetched, want) != 0) {
        pull_fail(a, PF_SAVE, "branch '%s' is at %s but the hub assigned %s: not applying it",
                  a->answer.branch, short_rev(fetched), want);
        return -1;
    }
    re_buf_reset(err);
    if (git_oid_fromstr(&oid, want) < 0 ||
        materialize_commit(a->cfg.state_dir, a->mirror, &oid, a->cfg.keep_revisions, err) < 0) {
        pull_fail(a, PF_SAVE | PF_APPLY_FAILED, "cannot materialize %s: %s", short_rev(want),
                  err->ptr ? err->ptr : "bad revision");
        return -1;
    }
    a->last_pull_error[0] = '\0';
    log_notice("materialized revision %s into '%s/current'", short_rev(want), a->cfg.state_dir);
    return 0;
}

/* Applies STATE/revisions/<want> the configured way and records the result. */
static void apply_revision(struct agent *a, const char *want)
{
    char rev_dir[4096];
    re_snprintf(rev_dir, sizeof(rev_dir), "%s/revisions/%s", a->cfg.state_dir, want);
    re_snprintf(a->status.mode, sizeof(a->status.mode), "%s", agent_mode_name(a->cfg.mode));
    switch (a->cfg.mode) {
    case AGENT_MODE_NONE:
        memcpy(a->status.applied, want, RE_OID_BUF);
        re_snprintf(a->status.apply_result, sizeof(a->status.apply_result), "ok");
        a->status.applied_at = re_time();
        break;
    case AGENT_MODE_APPLY: {
        char result[sizeof(a->status.apply_result)];
        const char *cmd = a->cfg.apply_command ? a->cfg.apply_command : "kubectl apply -k {dir}";
        deploy_run(cmd, rev_dir, a->cfg.apply_timeout_ms, &g_stop, result, sizeof(result));
        memcpy(a->status.apply_result, result, sizeof(result));
        a->status.applied_at = re_time();
        if (strcmp(result, "ok") == 0) {
            memcpy(a->status.applied, want, RE_OID_BUF);
            log_notice("applied revision %s", short_rev(want));
        } else {
            log_err("applying revision %s: %s", short_rev(want), result);
        }
        break;
    }
    case AGENT_MODE_MIRROR:
        if (mirror_flux(a) == 0)
            memcpy(a->status.applied, want, RE_OID_BUF);
        break;
    case AGENT_MODE_FLUX:
        break;
    }
    save_status(a);
}

/* One pass towards the revision the hub assigned: fetch, check,
 * materialize, publish on the local mirror, apply. */
static void sync_desired(struct agent *a)
{
    char url[1100], cur[RE_OID_BUF] = "", rec[4096];
    const char *want = a->answer.revision;
    struct re_buf err;
    re_buf_init(&err, 2048);
    git_url_for(a, url, sizeof(url));
    if (a->cfg.mode == AGENT_MODE_FLUX) {
        sync_flux_mode(a, url);
        goto out;
    }
    if (!want[0])
        goto out; /* the hub has not rendered this cluster yet */
    materialize_current(cur, a->cfg.state_dir);
    if (record_deleted(a, rec, sizeof(rec)))
        goto out; /* not recreating a deleted state directory: the loop says why and stops */
    if (ensure_mirror(a, &err) < 0)
        goto out;
    /* The mirror's branch (what mode mirror serves) moves with current. */
    bool published = pull_published(a->mirror, a->answer.branch, want);
    /* Done already, unless the mode changed (then it is applied the new way). */
    if (strcmp(want, a->status.applied) == 0 && strcmp(want, cur) == 0 && published &&
        strcmp(a->status.mode, agent_mode_name(a->cfg.mode)) == 0) {
        /* Mode mirror: the URL Flux uses may have changed (SIGHUP); the Flux
         * objects are rewritten and applied only when they differ. */
        int64_t applied_at = a->status.applied_at;
        if (a->cfg.mode == AGENT_MODE_MIRROR && mirror_flux(a) == 0 &&
            a->status.applied_at != applied_at)
            save_status(a);
        goto out;
    }
    if ((strcmp(want, a->status.pulled) != 0 || strcmp(want, cur) != 0 ||
         (!published && !pull_has_commit(a->mirror, want))) &&
        fetch_and_materialize(a, url, want, &err) < 0)
        goto out;
    /* Only now, with the commit checked against the assignment and
     * materialized, does the served branch move. */
    if (!published) {
        re_buf_reset(&err);
        if (pull_publish(a->mirror, a->answer.branch, want, &err) < 0) {
            pull_fail(a, PF_SAVE, "cannot update the local mirror to %s: %s", short_rev(want),
                      err.ptr ? err.ptr : "libgit2 error");
            goto out;
        }
        log_info("the local mirror's branch '%s' is at %s", a->answer.branch, short_rev(want));
    }
    apply_revision(a, want);
out:
    re_buf_release(&err);
}

/* ---- check-in ---- */

static void schedule_failure(struct agent *a, long retry_after_s, const char *why)
{
    uint64_t wait = backoff_fail(&a->bo, retry_after_s > 0 ? (uint64_t)retry_after_s * 1000 : 0,
                                 backoff_random());
    char since[32];
    if (!a->failing_since)
        a->failing_since = re_time();
    re_time_iso(since, sizeof(since), a->failing_since);
    a->next_checkin = re_mono_ms() + wait;
    char w[24];
    secs(w, sizeof(w), wait);
    if (strcmp(a->last_error, why) != 0 || a->bo.failures <= 1)
        log_warn("check-in failed: %s; retrying in %s", why, w);
    else
        log_info("check-in failed again: %s; retrying in %s", why, w);
    re_snprintf(a->last_error, sizeof(a->last_error), "%s", why);
    set_status(a, "hub unreachable since %s (%s); retrying in %s; keeping revision %s",
               since, why, w, short_rev(a->status.applied));
}

static void schedule_refused(struct agent *a, long status, const char *msg)
{
    /* Revoked or replaced: keep the last state, retry slowly (the cap, jittered). */
    uint64_t cap = a->cfg.backoff_cap_ms;
    uint64_t wait = cap / 2 + backoff_random() % (cap / 2 + 1);
    if (!a->revoked || strcmp(a->last_error, msg) != 0)
        log_err("the hub refuses this agent (HTTP %ld): %s; if this node's certificate was "
                "revoked or replaced, enroll it again with a new code; keeping revision %s and "
                "retrying every few minutes", status, msg, short_rev(a->status.applied));
    a->revoked = true;
    re_snprintf(a->last_error, sizeof(a->last_error), "%s", msg);
    a->next_checkin = re_mono_ms() + wait;
    set_status(a, "refused by the hub (HTTP %ld: %s): revoked or replaced? keeping revision "
               "%s; retrying in %" PRIu64 "s", status, msg, short_rev(a->status.applied),
               (wait + 999) / 1000);
}

static void checkin(struct agent *a)
{
    struct re_buf body, err, path;
    struct hubclient_resp resp;
    char msg[300];
    int r;
    re_buf_init(&body, 256 * 1024);
    re_buf_init(&err, 1024);
    re_buf_init(&path, 512);
    hubclient_resp_init(&resp);
    facts_host(&a->facts, a->cfg.state_dir);
    if (facts_kube_configured(&a->cfg))
        facts_kube(&a->facts, &a->cfg,
                   a->cfg.mode == AGENT_MODE_FLUX || a->cfg.mode == AGENT_MODE_MIRROR, &g_stop);
    if (g_stop)
        goto out;
    if ((r = checkin_build(&body, &a->cfg, &a->facts, &a->status,
                           (unsigned)(a->interval_ms / 1000))) < 0 ||
        (r = re_buf_printf(&path, "/api/v1/clusters/%s/checkin", a->st.cluster)) < 0) {
        schedule_failure(a, 0, "cannot build the check-in request");
        goto out;
    }
    r = hubclient_request(a->hc, "POST", path.ptr, body.ptr, body.len, &resp, &err);
    if (g_stop)
        goto out;
    if (r < 0) {
        re_snprintf(msg, sizeof(msg), "%s", err.ptr ? err.ptr : re_strerror(r));
        schedule_failure(a, 0, msg);
        goto out;
    }
    if (resp.status >= 300 && resp.status < 400) {
        re_snprintf(msg, sizeof(msg), "the hub answered with a redirect (HTTP %ld to '%.100s'), "
                    "which the agent does not follow", resp.status, resp.location);
        schedule_failure(a, resp.retry_after_s, msg);
        goto out;
    }
    if (resp.status == 401 || resp.status == 403) {
        hubclient_error_message(msg, sizeof(msg), &resp);
        schedule_refused(a, resp.status, msg);
        goto out;
    }
    if (resp.status != 200) {
        char m2[300];
        hubclient_error_message(m2, sizeof(m2), &resp);
        re_snprintf(msg, sizeof(msg), "HTTP %ld: %s", resp.status, m2);
        schedule_failure(a, resp.retry_after_s, msg);
        goto out;
    }
    re_buf_reset(&err);
    struct checkin_answer ans;
    if ((r = checkin_parse_answer(&ans, resp.body.ptr, resp.body.len, &err)) < 0) {
        schedule_failure(a, resp.retry_after_s, err.ptr ? err.ptr : "bad answer");
        goto out;
    }
    /* Success. */
    if (a->failing_since || a->revoked)
        log_notice("check-in succeeded again after %s", a->revoked ? "being refused"
                                                                    : "failures");
    a->answer = ans;
    a->revoked = false;
    a->failing_since = 0;
    a->last_error[0] = '\0';
    a->last_ok = re_time();
    backoff_reset(&a->bo);
    /* The hub spreads its load with the interval it gives; an interval
     * configured on the node explicitly wins. */
    a->interval_ms = !a->cfg.interval_set && ans.interval_s ? (uint64_t)ans.interval_s * 1000
                                                            : a->cfg.interval_ms;
    sync_desired(a);
    uint64_t wait = backoff_jitter_interval(a->interval_ms, backoff_random());
    if (resp.retry_after_s > 0 && (uint64_t)resp.retry_after_s * 1000 > wait)
        wait = (uint64_t)resp.retry_after_s * 1000 + backoff_random() % (wait / 5 + 1);
    a->next_checkin = re_mono_ms() + wait;
    char at[32], w[24];
    re_time_iso(at, sizeof(at), a->last_ok);
    secs(w, sizeof(w), wait);
    if (a->last_pull_error[0])
        set_status(a, "checked in %s; hub wants %s; %s; applied %s; next in %s", at,
                   short_rev(ans.revision), a->last_pull_error, short_rev(a->status.applied), w);
    else
        set_status(a, "checked in %s as %s; revision %s applied (%s); next in %s", at,
                   a->st.cluster, short_rev(a->status.applied),
                   a->status.apply_result[0] ? a->status.apply_result : "nothing yet", w);
    log_info("checked in: hub revision %s, applied %s, next in %s", short_rev(ans.revision),
             short_rev(a->status.applied), w);
out:
    hubclient_resp_release(&resp);
    re_buf_release(&body);
    re_buf_release(&err);
    re_buf_release(&path);
}

static void maybe_renew(struct agent *a)
{
    struct re_buf err;
    int64_t now = re_time();
    int r;
    if (now < a->st.renew_at || re_mono_ms() < a->next_renew_try)
        return;
    re_buf_init(&err, 2048);
    log_notice("renewing the agent certificate (valid until %" PRId64 ")", a->st.not_after);
    r = enroll_renew(&a->st, a->cfg.state_dir, a->hc, &err);
    if (r == 0) {
        backoff_reset(&a->renew_bo);
        re_buf_reset(&err);
        if (connect_hub(a, &err) < 0)
            log_err("after renewal: %s", err.ptr ? err.ptr : "cannot reconnect");
        char until[32];
        re_time_iso(until, sizeof(until), a->st.not_after);
        log_notice("renewed the agent certificate: valid until %s", until);
    } else {
        uint64_t wait = backoff_fail(&a->renew_bo, 0, backoff_random());
        if (wait < 5000)
            wait = 5000;
        a->next_renew_try = re_mono_ms() + wait;
        log_err("certificate renewal failed: %s; retrying in %" PRIu64 "s",
                err.ptr ? err.ptr : re_strerror(r), wait / 1000);
        if (r == -RE_EDENIED)
            a->revoked = true;
    }
    re_buf_release(&err);
}

/* The enrollment record deleted under the running agent (the state
 * directory removed, the node wiped): without it a restart cannot run, and
 * the credentials beside it are likely gone too, so say how to enroll again
 * and stop rather than carry on half-working. A truncated record is not
 * this: the one in memory still serves until a restart. */
static bool enrollment_gone(struct agent *a)
{
    char p[4096];
    struct stat sb;
    if (!record_deleted(a, p, sizeof(p)))
        return false;
    bool dir_gone = stat(a->cfg.state_dir, &sb) < 0 && errno == ENOENT;
    log_err("the enrollment is gone: '%s' was deleted while the agent ran%s; get a new code "
            "with 'resedgectl clusters enroll-code %s' and enroll again with 'resedge-agent "
            "enroll --hub %s --code CODE --ca-fingerprint sha256:... --state-dir %s', then "
            "start the agent; exiting", p, dir_gone ? " (the whole state directory is gone)" : "",
            a->st.cluster, a->st.hub_url, a->cfg.state_dir);
    set_status(a, "not enrolled: '%s' was deleted; enroll again with 'resedge-agent enroll "
               "--hub %s --code CODE --ca-fingerprint sha256:...'", p, a->st.hub_url);
    return true;
}

static void reload(struct agent *a)
{
    struct agent_config next;
    struct re_buf err;
    re_buf_init(&err, 2048);
    agent_config_defaults(&next);
    if (agent_config_from_args(&next, a->argc, a->argv, &err) != 0) {
        log_err("reload: %s; keeping the running configuration", err.ptr ? err.ptr : "failed");
        agent_config_release(&next);
        goto out;
    }
    if (strcmp(next.state_dir, a->cfg.state_dir) != 0) {
        log_warn("reload: a new state_dir takes effect on restart only");
        free(next.state_dir);
        next.state_dir = strdup(a->cfg.state_dir);
        if (!next.state_dir) {
            agent_config_release(&next);
            goto out;
        }
    }
    agent_config_release(&a->cfg);
    a->cfg = next;
    re_log_set_level(a->cfg.log_level);
    a->bo.cap_ms = a->cfg.backoff_cap_ms;
    log_notice("configuration reloaded (mode %s, interval %" PRIu64 "s)",
               agent_mode_name(a->cfg.mode), a->cfg.interval_ms / 1000);
    a->next_checkin = re_mono_ms(); /* check in with the new settings now */
out:
    re_buf_release(&err);
}

static const char run_usage[] =
    "usage: resedge-agent run [--config FILE] [--state-dir DIR] [--interval 60s]\n"
    "                         [--mode flux|mirror|apply|none] [--identity ID]\n"
    "                         [--label KEY=VALUE]... [--apply-command CMD]\n"
    "                         [--apply-timeout 5m] [--kubeconfig FILE] [--kubectl PROG]\n"
    "                         [--mirror-listen HOST:PORT|none] [--mirror-url URL]\n"
    "                         [--backoff-cap 10m] [--keep-revisions 3]\n"
    "                         [--log-level info]\n"
    "\n"
    "Runs the agent: checks in with the hub every interval (±20%), pulls and\n"
    "materializes the cluster's assigned revision into STATE/current, and deploys it\n"
    "per mode. Mode mirror serves STATE/mirror.git read-only over HTTP on\n"
    "--mirror-listen (default " MIRRORSERVE_DEFAULT_LISTEN ") and points Flux at it.\n"
    "Every flag is also a key of the [agent] section of the config file\n"
    "(default " AGENT_DEFAULT_CONFIG ", read when present); flags win.\n";

/* Loads the enrollment record: 0, or the exit code after saying why. */
static int load_enrollment(struct agent *a, struct re_buf *err)
{
    int r = agent_state_load(&a->st, a->cfg.state_dir, err);
    if (r == -RE_ENOENT) {
        log_err("this node is not enrolled (no '%s/%s'): get a code with 'resedgectl clusters "
                "enroll-code CLUSTER' and run 'resedge-agent enroll --hub URL --code CODE "
                "--ca-fingerprint sha256:... --state-dir %s'", a->cfg.state_dir, AGENT_STATE_FILE,
                a->cfg.state_dir);
        return AGENT_EX_CONFIG;
    }
    if (r < 0) {
        log_err("cannot load the enrollment record: %s; enroll again with --force",
                err->ptr ? err->ptr : re_strerror(r));
        return AGENT_EX_CONFIG;
    }
    return 0;
}

/* Repairs STATE/current after a crash and reads back the last status. */
static void recover_state(struct agent *a, struct re_buf *err)
{
    char cur[RE_OID_BUF];
    re_buf_reset(err);
    if (materialize_repair(a->cfg.state_dir, err) < 0) {
        log_warn("cannot repair '%s/current': %s", a->cfg.state_dir, err->ptr ? err->ptr : "");
    } else if (err->len) {
        for (size_t i = 0; i + 1 < err->len; i++)
            if (err->ptr[i] == '\n')
                err->ptr[i] = ';';
        if (err->ptr[err->len - 1] == '\n')
            err->ptr[--err->len] = '\0';
        log_notice("repaired the state directory: %s", err->ptr);
    }
    int r = agent_status_read(&a->status, a->cfg.state_dir);
    /* What is on disk is what was last applied in the modes that materialize. */
    if (materialize_current(cur, a->cfg.state_dir) == 0 && !a->status.pulled[0])
        memcpy(a->status.pulled, cur, RE_OID_BUF);
    if (r < 0 && r != -RE_ENOENT) {
        log_warn("'%s/%s' was damaged (%s): starting from an empty status and rewriting it",
                 a->cfg.state_dir, AGENT_STATUS_FILE, status_damage(r));
        save_status(a);
    }
}

/* Check in, renew, sleep, until a signal stops it: 0, or the exit code. */
static int run_loop(struct agent *a)
{
    /* First check-in soon, but spread (up to 10% of an interval, at most 5 s). */
    uint64_t first = a->interval_ms / 10 < 5000 ? a->interval_ms / 10 : 5000;
    a->next_checkin = re_mono_ms() + (first ? backoff_random() % first : 0);
    while (!g_stop) {
        if (g_reload) {
            g_reload = 0;
            reload(a);
        }
        watchdog_tick();
        ensure_mirror_server(a);
        if (re_mono_ms() >= a->next_checkin) {
            if (enrollment_gone(a))
                return AGENT_EX_CONFIG;
            checkin(a);
            check_status_file(a);
        }
        if (g_stop)
            break;
        if (!a->revoked)
            maybe_renew(a);
        uint64_t until = a->next_checkin;
        if (!a->revoked && a->st.renew_at <= re_time() && a->next_renew_try < until)
            until = a->next_renew_try > re_mono_ms() ? a->next_renew_try : re_mono_ms() + 1000;
        sleep_until(until);
    }
    re_notify("STOPPING=1\nSTATUS=stopping");
    log_notice("stopping");
    return 0;
}

int agent_run_main(int argc, char **argv)
{
    struct agent a;
    struct re_buf err;
    int r, rc = 1;
    bool inited = false;
    memset(&a, 0, sizeof(a));
    re_buf_init(&err, 4096);
    agent_config_defaults(&a.cfg);
    a.argc = argc;
    a.argv = argv;
    facts_init(&a.facts);
    r = agent_config_from_args(&a.cfg, argc, argv, &err);
    if (r == 1) {
        fputs(run_usage, stdout);
        rc = 0;
        goto out;
    }
    if (r < 0) {
        log_err("%s", err.ptr ? err.ptr : re_strerror(r));
        rc = AGENT_EX_CONFIG;
        goto out;
    }
    re_log_set_level(a.cfg.log_level);
    re_buf_reset(&err);
    if ((rc = load_enrollment(&a, &err)) != 0)
        goto out;
    rc = 1;
    if (setup_signals() < 0 || hubclient_global_init() < 0 || pull_global_init() < 0) {
        log_err("cannot initialize the process");
        goto out;
    }
    inited = true;
    pull_set_abort_flag(&g_stop);
    re_buf_reset(&err);
    if (connect_hub(&a, &err) < 0) {
        log_err("%s; enroll again with --force", err.ptr ? err.ptr : "cannot load credentials");
        rc = AGENT_EX_CONFIG;
        goto out;
    }
    recover_state(&a, &err);
    backoff_init(&a.bo, 1000, a.cfg.backoff_cap_ms);
    backoff_init(&a.renew_bo, 5000, 3600 * 1000);
    a.interval_ms = a.cfg.interval_ms;
    a.wd_ms = re_notify_watchdog_ms();
    a.next_wd = re_mono_ms();
    g_agent = &a;
    tick_set(watchdog_tick);
    if (a.st.not_after && re_time() > a.st.not_after)
        log_err("the agent certificate expired: enroll again with a new code");
    log_notice("resedge-agent %s: cluster '%s', hub %s, mode %s, state '%s'", RE_VERSION,
               a.st.cluster, a.st.hub_url, agent_mode_name(a.cfg.mode), a.cfg.state_dir);
    ensure_mirror_server(&a);
    re_notify("READY=1");
    set_status(&a, "enrolled as %s; revision %s on disk; checking in with %s", a.st.cluster,
               short_rev(a.status.applied), a.st.hub_url);
    rc = run_loop(&a);
out:
    tick_set(NULL);
    g_agent = NULL;
    mirrorserve_stop(a.ms);
    git_repository_free(a.mirror);
    hubclient_free(a.hc);
    if (inited) {
        pull_global_cleanup();
        hubclient_global_cleanup();
    }
    facts_release(&a.facts);
    agent_state_release(&a.st);
    agent_config_release(&a.cfg);
    re_buf_release(&err);
    return rc;
}
