/* load.c - the simulator's load engine: many simulated agents checking in
 * against a real hub on one libuv loop, each over a short mutual-TLS
 * connection (shared/tls.h, client side) that resumes the agent's saved
 * session ticket, or over a full handshake. Memory is bounded by the
 * connections in flight (a cap) plus one saved session per agent; latencies
 * go into a fixed log-linear histogram. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <http_parser.h>
#include <mbedtls/x509_crt.h>
#include <uv.h>

#include "buf.h"
#include "checkin.h"
#include "config.h"
#include "crypto.h"
#include "error.h"
#include "facts.h"
#include "fsutil.h"
#include "hub.h"
#include "sim.h"
#include "state.h"
#include "tls.h"

#define CONN_TIMEOUT_MS   30000
#define EOF_WAIT_MS       1000
#define ANSWER_MAX        (64 * 1024)
#define TICK_MS           2
#define MAX_AGENTS        2000000

/* ---- latency histogram: 64 linear sub-buckets per power of two (~1.5%) ---- */

#define HIST_SUB 64
#define HIST_BUCKETS (HIST_SUB + 40 * HIST_SUB)

struct hist {
    uint32_t b[HIST_BUCKETS];
    uint64_t n;
    uint64_t max_us;
};

static unsigned hist_bucket(uint64_t us)
{
    if (us < HIST_SUB)
        return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us);      /* >= 6 */
    unsigned b = HIST_SUB + (e - 6) * HIST_SUB + (unsigned)((us >> (e - 6)) & (HIST_SUB - 1));
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static uint64_t hist_value(unsigned b)
{
    if (b < HIST_SUB)
        return b;
    unsigned e = (b - HIST_SUB) / HIST_SUB + 6, sub = (b - HIST_SUB) % HIST_SUB;
    return ((uint64_t)(HIST_SUB + sub)) << (e - 6);
}

static void hist_add(struct hist *h, uint64_t us)
{
    h->b[hist_bucket(us)]++;
    h->n++;
    if (us > h->max_us)
        h->max_us = us;
}

static double hist_pct_ms(const struct hist *h, double p)
{
    uint64_t want, seen = 0;
    if (h->n == 0)
        return 0;
    want = (uint64_t)ceil(p * (double)h->n);
    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want)
            return (double)hist_value(i) / 1000.0;
    }
    return (double)h->max_us / 1000.0;
}

/* ---- state ---- */

struct agent {
    char *name;
    struct tls_session *session;     /* last session, for resumption */
    struct tls_config *cfg;          /* with its certificate, when cached */
    unsigned cfg_refs;
};

enum err_kind { E_CONNECT, E_TLS, E_TIMEOUT, E_EOF, E_HTTP4, E_HTTP5, E_ANSWER, E_KINDS };
static const char *const err_names[E_KINDS] = {
    "connect", "tls", "timeout", "eof", "http_4xx", "http_5xx", "answer",
};

struct sim;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t creq;
    struct sim *sim;
    size_t ai;
    struct tls_conn *tls;
    struct tls_config *cfg;
    bool cfg_agent;                  /* cfg is the agent's (refcounted) */
    bool enroll;                     /* ai indexes the enrollment requests */
    bool shared_resume;              /* shared config + saved session */
    struct tls_session *new_session;
    http_parser parser;
    struct re_buf answer;
    bool complete, failed, done_counted;
    int handles;                     /* open handles; freed at 0 */
    uint64_t t0_us;
};

struct sim {
    uv_loop_t *loop;
    const struct sim_run_opts *o;
    struct sockaddr_in addr;
    struct agent *agents;
    size_t n;
    struct tls_config *shared_cfg;   /* CA only: resumption attempts */
    size_t cached_cfgs;
    struct agent_config acfg;        /* the real agent's request, per agent */
    char **enroll_req;               /* PH_ENROLL: whole HTTP requests */
    size_t n_enroll;
    char host_hdr[64];
    http_parser_settings psettings;

    /* the running phase */
    const struct sim_phase *ph;
    size_t phase_i;
    uint64_t ph_start_us;
    unsigned active;
    unsigned long target, launched, ok, final_err, retries, fallbacks, resumed, full;
    unsigned long errs[E_KINDS];
    size_t next_agent;
    size_t *ready;                   /* agents due for a retry */
    size_t n_ready, cap_ready;
    unsigned long timers_pending;    /* retry timers not yet fired */
    unsigned long lag_max;
    uint64_t first_ok_us;            /* since the phase began; 0: none yet */
    struct hist hist;
    uv_timer_t tick;
    uint64_t last_sample_us;
    long hub_pid;
    double hub_cpu0;
    long hub_rss_max;
    double sim_cpu0;
    bool finishing;
    bool aborted;                    /* the hub process went away */
    int rc;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static double proc_cpu_self(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t rnd32(void)
{
    uint32_t v = 0;
    re_random(&v, sizeof(v));
    return v;
}

/* ---- the hub process (CPU, RSS) ---- */

static long read_pid_file(const char *path)
{
    struct re_buf b;
    long pid = 0;
    re_buf_init(&b, 64);
    if (path && re_read_file(&b, path) == 0 && b.len > 0) {
        char tmp[32];
        re_snprintf(tmp, sizeof(tmp), "%.*s", (int)b.len, b.ptr);
        char *end;
        pid = strtol(tmp, &end, 10);
        if (pid <= 0)
            pid = 0;
    }
    re_buf_release(&b);
    return pid;
}

/* utime + stime of pid in seconds; -1 when unknown. */
static double proc_cpu(long pid)
{
    char path[64], buf[1024];
    FILE *f;
    size_t n;
    if (pid <= 0 || re_snprintf(path, sizeof(path), "/proc/%ld/stat", pid) < 0 ||
        !(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after ")": state(3) ppid ... utime is field 14, stime 15 */
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(long pid)
{
    char path[64], line[256];
    FILE *f;
    long kb = -1;
    if (pid < 0 || re_snprintf(path, sizeof(path), pid ? "/proc/%ld/status" : "/proc/self/status",
                               pid) < 0 || !(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- agents and their TLS configurations ---- */

static int load_agents(struct sim *s)
{
    struct re_buf text;
    char path[PATH_MAX];
    size_t cap = 0;
    int r;
    re_buf_init(&text, (size_t)MAX_AGENTS * 64);
    if ((r = re_path_join(path, sizeof(path), s->o->ids_dir, "index")) < 0 ||
        (r = re_read_file(&text, path)) < 0) {
        fprintf(stderr, "resedge-sim: cannot read '%s/index': %s\n", s->o->ids_dir,
                re_strerror(r));
        goto out;
    }
    for (char *p = text.ptr, *end = text.ptr + text.len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (s->o->agents && s->n >= s->o->agents)
            break;
        if (len > 0 && len < 64) {
            if (s->n == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                struct agent *t = realloc(s->agents, nc * sizeof(*t));
                if (!t) {
                    r = -RE_ENOMEM;
                    goto out;
                }
                s->agents = t;
                cap = nc;
            }
            memset(&s->agents[s->n], 0, sizeof(s->agents[0]));
            if (!(s->agents[s->n].name = strndup(p, len))) {
                r = -RE_ENOMEM;
                goto out;
            }
            s->n++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (s->n == 0 || (s->o->agents && s->n < s->o->agents)) {
        fprintf(stderr, "resedge-sim: '%s/index' has %zu identities, %u wanted\n",
                s->o->ids_dir, s->n, s->o->agents);
        r = -RE_EINVAL;
        goto out;
    }
    r = 0;
out:
    re_buf_release(&text);
    return r;
}

/* The agent's own configuration (certificate and key), cached up to a cap. */
static int agent_cfg(struct sim *s, size_t ai, struct tls_config **out)
{
    struct agent *a = &s->agents[ai];
    char crt[PATH_MAX], key[PATH_MAX];
    struct re_buf err;
    int r;
    if (!a->cfg) {
        if ((r = re_snprintf(crt, sizeof(crt), "%s/%s.crt", s->o->ids_dir, a->name)) < 0 ||
            (r = re_snprintf(key, sizeof(key), "%s/%s.key", s->o->ids_dir, a->name)) < 0)
            return r;
        struct tls_client_options co = { .ca_file = s->o->ca_file, .cert_file = crt,
                                         .key_file = key };
        re_buf_init(&err, 1024);
        r = tls_config_new_client(&a->cfg, &co, &err);
        if (r < 0) {
            fprintf(stderr, "resedge-sim: %s\n", err.len ? err.ptr : re_strerror(r));
            re_buf_release(&err);
            return r;
        }
        re_buf_release(&err);
        s->cached_cfgs++;
    }
    a->cfg_refs++;
    *out = a->cfg;
    return 0;
}

static void agent_cfg_put(struct sim *s, size_t ai)
{
    struct agent *a = &s->agents[ai];
    if (a->cfg_refs > 0)
        a->cfg_refs--;
    if (a->cfg_refs == 0 && a->cfg && s->cached_cfgs > s->o->cfg_cache) {
        tls_config_free(a->cfg);
        a->cfg = NULL;
        s->cached_cfgs--;
    }
}

/* ---- the request: what the real agent sends (agent/checkin.c) ---- */

/* fmt with its one "%s" replaced by name. */
static int path_for(char *out, size_t size, const char *fmt, const char *name)
{
    const char *p = strstr(fmt, "%s");
    if (!p)
        return re_snprintf(out, size, "%s", fmt);
    return re_snprintf(out, size, "%.*s%s%s", (int)(p - fmt), fmt, name, p + 2);
}

static int build_request(struct sim *s, size_t ai, struct re_buf *out)
{
    struct agent *a = &s->agents[ai];
    struct agent_facts f;
    struct agent_status st;
    struct re_buf body, err;
    char label[128], path[256];
    uint32_t h = 2166136261u;
    int r;
    for (const char *p = a->name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    facts_init(&f);
    memset(&st, 0, sizeof(st));
    re_buf_init(&body, ANSWER_MAX);
    re_buf_init(&err, 256);
    re_snprintf(f.hostname, sizeof(f.hostname), "%s-edge-1", a->name);
    re_snprintf(f.boot_id, sizeof(f.boot_id), "%08x-1c2d-4e5f-8a9b-%012x", h, (unsigned)ai);
    re_snprintf(f.kube_identity, sizeof(f.kube_identity), "%08x-6b1a-4c7e-9d2f-%012x", ~h,
                (unsigned)ai);
    re_snprintf(f.kube_version, sizeof(f.kube_version), "v1.32.1+k3s1");
    f.kube_reachable = true;
    f.node_count = 3;
    f.disk_free_bytes = 81604378624ull;
    f.disk_total_bytes = 250685575168ull;
    memset(st.pulled, 'a', 40);
    memset(st.applied, 'a', 40);
    re_snprintf(st.apply_result, sizeof(st.apply_result), "ok");
    re_snprintf(st.mode, sizeof(st.mode), "none");
    if ((r = re_snprintf(label, sizeof(label), "store=%s", a->name)) < 0 ||
        (r = agent_config_add_label(&s->acfg, label, &err)) < 0 ||
        (r = checkin_build(&body, &s->acfg, &f, &st, 60)) < 0 ||
        (r = path_for(path, sizeof(path), s->o->path_fmt, a->name)) < 0)
        goto out;
    r = re_buf_printf(out, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: resedge-sim/" RE_VERSION
                      "\r\nAccept: application/json\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", path, s->host_hdr,
                      body.len);
    if (r == 0)
        r = re_buf_append(out, body.ptr, body.len);
out:
    facts_release(&f);
    re_buf_release(&body);
    re_buf_release(&err);
    return r;
}

/* ---- connections ---- */

static void pump(struct sim *s);
static void phase_maybe_done(struct sim *s);
static void conn_retry_later(struct sim *s, size_t ai, unsigned min_ms, unsigned span_ms);
enum conn_mode { CM_RESUME, CM_FULL, CM_ANON };
static int conn_start(struct sim *s, size_t ai, enum conn_mode mode);

static void conn_timer_cb(uv_timer_t *t);

static bool phase_retries(const struct sim *s)
{
    return s->ph && (s->ph->kind == PH_PRIME || s->ph->kind == PH_STORM);
}

static bool phase_full(const struct sim *s)
{
    return s->ph && (s->ph->kind == PH_PRIME || s->ph->kind == PH_FULL);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct sim *s = c->sim;
    tls_conn_free(c->tls);
    if (c->cfg_agent)
        agent_cfg_put(s, c->ai);
    tls_session_free(c->new_session);
    re_buf_release(&c->answer);
    free(c);
    s->active--;
    pump(s);
    phase_maybe_done(s);
}

static void conn_close(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* An attempt ends: counts it once and decides about a retry. */
static void conn_fail(struct conn *c, enum err_kind k)
{
    struct sim *s = c->sim;
    if (c->done_counted) {
        conn_close(c);
        return;
    }
    c->done_counted = true;
    c->failed = true;
    s->errs[k]++;
    if (phase_retries(s) && k != E_HTTP4 && k != E_ANSWER) {
        s->retries++;
        /* a hub that is restarting: come back soon, spread out */
        conn_retry_later(s, c->ai, 50, 200);
    } else {
        s->final_err++;
    }
    conn_close(c);
}

static void on_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    free(((char **)(w + 1))[0]);
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        conn_fail(c, E_CONNECT);
}

static int conn_flush(struct conn *c)
{
    size_t len;
    char *out = tls_conn_take_output(c->tls, &len);
    if (!out)
        return 0;
    /* the request and, after it, the pointer to free */
    uv_write_t *w = malloc(sizeof(*w) + sizeof(char *));
    if (!w) {
        free(out);
        return -RE_ENOMEM;
    }
    ((char **)(w + 1))[0] = out;
    w->data = c;
    uv_buf_t b = uv_buf_init(out, (unsigned)len);
    int r = uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (r < 0) {
        free(out);
        free(w);
        return -RE_EIO;
    }
    return 0;
}

static void on_success(struct conn *c)
{
    struct sim *s = c->sim;
    struct agent *a = c->enroll ? NULL : &s->agents[c->ai];
    const struct tls_peer_info *pi = tls_conn_peer(c->tls);
    uint64_t us = now_us() - c->t0_us;
    c->done_counted = true;
    if (s->ok++ == 0)
        s->first_ok_us = now_us() - s->ph_start_us;
    if (pi->resumed)
        s->resumed++;
    else
        s->full++;
    hist_add(&s->hist, us);
    if (a && c->new_session) {
        tls_session_free(a->session);
        a->session = c->new_session;
        c->new_session = NULL;
    }
}

static int on_pbody(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    return re_buf_append(&c->answer, at, len) < 0 ? -1 : 0;
}

static int on_pcomplete(http_parser *p)
{
    struct conn *c = p->data;
    struct sim *s = c->sim;
    unsigned st = p->status_code;
    c->complete = true;
    if (c->enroll && st == 201) {
        on_success(c);
        uv_timer_start(&c->timer, conn_timer_cb, EOF_WAIT_MS, 0);
        return 0;
    }
    if (st == 200 && !c->enroll) {
        struct checkin_answer ans;
        struct re_buf err;
        re_buf_init(&err, 512);
        int r = checkin_parse_answer(&ans, c->answer.ptr ? c->answer.ptr : "", c->answer.len,
                                     &err);
        re_buf_release(&err);
        if (r < 0) {
            conn_fail(c, E_ANSWER);
            return 0;
        }
        on_success(c);
        /* wait (briefly) for the hub to close, so TIME_WAIT is on its side */
        uv_timer_start(&c->timer, conn_timer_cb, EOF_WAIT_MS, 0);
        return 0;
    }
    if (st == 401 && c->shared_resume) {
        /* the ticket was refused: the agent presents its certificate */
        c->done_counted = true;
        s->fallbacks++;
        tls_session_free(s->agents[c->ai].session);
        s->agents[c->ai].session = NULL;
        conn_close(c);
        if (conn_start(s, c->ai, CM_FULL) < 0)
            s->final_err++;
        return 0;
    }
    conn_fail(c, st >= 500 ? E_HTTP5 : E_HTTP4);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    conn_fail(t->data, E_TIMEOUT);
}

static void conn_timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->complete)
        conn_close(c);
    else
        on_timeout(t);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[64 * 1024];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_handshake_done(struct conn *c)
{
    struct sim *s = c->sim;
    struct re_buf req;
    const struct tls_peer_info *pi = tls_conn_peer(c->tls);
    if (c->enroll) {
        const char *rq = s->enroll_req[c->ai];
        if (tls_conn_write(c->tls, rq, strlen(rq)) < 0)
            conn_fail(c, E_TLS);
        return;
    }
    if (!pi->resumed)
        tls_conn_get_session(&c->new_session, c->tls);  /* a missing one costs a resumption */
    re_buf_init(&req, 2 * ANSWER_MAX);
    if (build_request(s, c->ai, &req) < 0 || tls_conn_write(c->tls, req.ptr, req.len) < 0) {
        re_buf_release(&req);
        conn_fail(c, E_TLS);
        return;
    }
    re_buf_release(&req);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    char plain[16384];
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->complete)
            conn_close(c);
        else
            conn_fail(c, nread == UV_EOF ? E_EOF : E_CONNECT);
        return;
    }
    if (c->complete)
        return;                      /* close_notify and such */
    if (tls_conn_feed(c->tls, buf->base, (size_t)nread) < 0) {
        conn_fail(c, E_TLS);
        return;
    }
    if (!tls_conn_handshake_done(c->tls)) {
        int r = tls_conn_handshake(c->tls);
        if (r == 0) {
            on_handshake_done(c);
            if (c->failed)
                return;
        } else if (r != -RE_EAGAIN) {
            conn_flush(c);
            conn_fail(c, E_TLS);
            return;
        }
    }
    while (tls_conn_handshake_done(c->tls) && !c->complete && !c->failed) {
        ssize_t n = tls_conn_read(c->tls, plain, sizeof(plain));
        if (n == -RE_EAGAIN)
            break;
        if (n <= 0) {
            conn_fail(c, n == 0 ? E_EOF : E_TLS);
            return;
        }
        size_t used = http_parser_execute(&c->parser, &c->sim->psettings, plain, (size_t)n);
        if (c->failed || uv_is_closing((uv_handle_t *)&c->tcp))
            return;
        if (used != (size_t)n || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
            conn_fail(c, E_ANSWER);
            return;
        }
    }
    if (!c->failed && !uv_is_closing((uv_handle_t *)&c->tcp) && conn_flush(c) < 0)
        conn_fail(c, E_CONNECT);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct sim *s = c->sim;
    const struct tls_session *sess = NULL;
    if (status < 0) {
        conn_fail(c, E_CONNECT);
        return;
    }
    if (c->shared_resume)
        sess = s->agents[c->ai].session;
    if (tls_conn_new_client(&c->tls, c->cfg, s->o->tls_name, sess) < 0) {
        conn_fail(c, E_TLS);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_fail(c, E_CONNECT);
        return;
    }
    int r = tls_conn_handshake(c->tls);
    if (r != -RE_EAGAIN || conn_flush(c) < 0)
        conn_fail(c, E_TLS);
}

/* Starts one check-in of agent ai: resuming its session when it has one and
 * a full handshake is not wanted. */
static int conn_start(struct sim *s, size_t ai, enum conn_mode mode)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct agent *a = mode == CM_ANON ? NULL : &s->agents[ai];
    int r;
    if (!c)
        return -RE_ENOMEM;
    c->sim = s;
    c->ai = ai;
    re_buf_init(&c->answer, ANSWER_MAX);
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    if (mode == CM_ANON) {
        c->cfg = s->shared_cfg;
        c->enroll = true;
        a = NULL;
    } else if (mode == CM_RESUME && a->session) {
        c->cfg = s->shared_cfg;
        c->shared_resume = true;
    } else {
        if ((r = agent_cfg(s, ai, &c->cfg)) < 0) {
            re_buf_release(&c->answer);
            free(c);
            return r;
        }
        c->cfg_agent = true;
    }
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c->creq.data = c;
    c->handles = 2;
    s->active++;
    s->launched++;
    c->t0_us = now_us();
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, conn_timer_cb, CONN_TIMEOUT_MS, 0);
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&s->addr, on_connect) < 0)
        conn_fail(c, E_CONNECT);
    return 0;
}

/* ---- minted sessions (the mint phase) ---- */

/* Gives every agent without a session one made offline: the hub's ticket keys
 * seal the agent's certificate into a ticket (tls_session_mint), copying the
 * negotiated parameters of a session some agent got from a real handshake.
 * The hub then resumes it exactly as a ticket it issued: a bench of 100,000
 * agents is ready in seconds instead of 100,000 full handshakes. */
static int mint_sessions(struct sim *s, unsigned long *minted)
{
    const struct tls_session *tmpl = NULL;
    struct tls_config *srv = NULL;
    char ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], tk[PATH_MAX];
    struct re_buf err;
    int r;

    for (size_t i = 0; i < s->n && !tmpl; i++)
        tmpl = s->agents[i].session;
    if (!tmpl) {
        fprintf(stderr, "resedge-sim: mint: no agent has a session from a real handshake "
                        "to copy (run a full:1:1 or prime phase first)\n");
        return -RE_EINVAL;
    }
    if (!s->o->mint_dir) {
        fprintf(stderr, "resedge-sim: the mint phase needs --mint-from HUBDIR\n");
        return -RE_EINVAL;
    }
    if ((r = re_path_join(ca, sizeof(ca), s->o->mint_dir, HUB_CA_CRT)) < 0 ||
        (r = re_path_join(crt, sizeof(crt), s->o->mint_dir, HUB_SERVER_CRT)) < 0 ||
        (r = re_path_join(key, sizeof(key), s->o->mint_dir, HUB_SERVER_KEY)) < 0 ||
        (r = re_path_join(tk, sizeof(tk), s->o->mint_dir, HUB_TICKET_KEYS)) < 0)
        return r;
    struct tls_server_options so = { .ca_file = ca, .cert_file = crt, .key_file = key,
                                     .ticket_key_file = tk, .ticket_keys_read_only = true };
    re_buf_init(&err, 1024);
    r = tls_config_new_server(&srv, &so, &err);
    if (r < 0) {
        fprintf(stderr, "resedge-sim: mint: %s\n", err.len ? err.ptr : re_strerror(r));
        re_buf_release(&err);
        return r;
    }
    re_buf_release(&err);
    for (size_t i = 0; i < s->n && r == 0; i++) {
        struct agent *a = &s->agents[i];
        mbedtls_x509_crt cert;
        if (a->session)
            continue;
        if ((r = re_snprintf(crt, sizeof(crt), "%s/%s.crt", s->o->ids_dir, a->name)) < 0)
            break;
        mbedtls_x509_crt_init(&cert);
        if (mbedtls_x509_crt_parse_file(&cert, crt) != 0) {
            fprintf(stderr, "resedge-sim: mint: cannot read the certificate '%s'\n", crt);
            r = -RE_EPARSE;
        } else if ((r = tls_session_mint(&a->session, srv, tmpl, cert.raw.p, cert.raw.len)) < 0) {
            fprintf(stderr, "resedge-sim: mint: %s: %s\n", a->name, re_strerror(r));
        } else {
            (*minted)++;
        }
        mbedtls_x509_crt_free(&cert);
    }
    tls_config_free(srv);
    return r;
}

/* ---- retries ---- */

struct retry {
    uv_timer_t t;
    struct sim *s;
    size_t ai;
};

static void retry_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ready_push(struct sim *s, size_t ai)
{
    if (s->n_ready == s->cap_ready) {
        size_t nc = s->cap_ready ? s->cap_ready * 2 : 256;
        size_t *t = realloc(s->ready, nc * sizeof(*t));
        if (!t) {
            s->final_err++;                  /* out of memory: give the agent up */
            return;
        }
        s->ready = t;
        s->cap_ready = nc;
    }
    s->ready[s->n_ready++] = ai;
}

static void retry_fire(uv_timer_t *t)
{
    struct retry *rt = t->data;
    struct sim *s = rt->s;
    s->timers_pending--;
    ready_push(s, rt->ai);
    uv_close((uv_handle_t *)t, retry_closed);
    pump(s);
}

static void conn_retry_later(struct sim *s, size_t ai, unsigned min_ms, unsigned span_ms)
{
    struct retry *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        s->final_err++;
        return;
    }
    rt->s = s;
    rt->ai = ai;
    uv_timer_init(s->loop, &rt->t);
    rt->t.data = rt;
    s->timers_pending++;
    uv_timer_start(&rt->t, retry_fire, min_ms + rnd32() % (span_ms + 1), 0);
}

/* ---- phases ---- */

static void phase_next(struct sim *s);

/* Launches what the phase allows now. */
static void pump(struct sim *s)
{
    const struct sim_phase *ph = s->ph;
    uint64_t now;
    if (!ph || s->finishing || s->aborted)
        return;
    now = now_us();
    while (s->active < (ph->concurrency ? ph->concurrency : s->o->concurrency)) {
        size_t ai;
        bool full = phase_full(s);
        if (s->n_ready > 0) {
            ai = s->ready[--s->n_ready];
        } else if (ph->kind == PH_PRIME || ph->kind == PH_STORM) {
            if (s->next_agent >= s->n)
                break;
            ai = s->next_agent++;
        } else if (ph->kind == PH_ENROLL) {
            if (s->next_agent >= s->n_enroll)
                break;
            ai = s->next_agent++;
        } else if (ph->kind == PH_RESUMED || ph->kind == PH_FULL) {
            size_t span = ph->kind == PH_FULL && ph->agents && ph->agents < s->n ? ph->agents : s->n;
            if (s->next_agent >= ph->count)
                break;
            ai = s->next_agent++ % span;
        } else if (ph->kind == PH_RATE) {
            double el = (double)(now - s->ph_start_us) / 1e6;
            if (el >= ph->secs)
                break;
            unsigned long due = (unsigned long)(el * ph->rate);
            if (s->next_agent >= due)
                break;
            ai = s->next_agent++ % s->n;
        } else {
            break;
        }
        if (conn_start(s, ai, ph->kind == PH_ENROLL ? CM_ANON : full ? CM_FULL : CM_RESUME) < 0)
            s->final_err++;
    }
    if (ph->kind == PH_RATE) {
        double el = (double)(now - s->ph_start_us) / 1e6;
        unsigned long due = (unsigned long)((el < ph->secs ? el : ph->secs) * ph->rate);
        if (due > s->next_agent && due - s->next_agent > s->lag_max)
            s->lag_max = due - s->next_agent;
    }
}

static void print_phase(struct sim *s, double wall)
{
    const struct sim_phase *ph = s->ph;
    static const char *const names[] = { "prime", "resumed", "full", "rate", "restart", "storm",
                                         "sleep", "enroll", "mint" };
    double hub_cpu = s->hub_pid ? proc_cpu(s->hub_pid) : -1;
    long rss = s->hub_pid ? proc_rss_kb(s->hub_pid) : -1;
    double hcpu = hub_cpu >= 0 && s->hub_cpu0 >= 0 ? hub_cpu - s->hub_cpu0 : -1;
    printf("{\"phase\":\"%s\",\"index\":%zu,\"agents\":%zu,\"target\":%lu,\"ok\":%lu,"
           "\"errors\":%lu,\"retries\":%lu,\"fallbacks\":%lu,\"resumed\":%lu,\"full\":%lu,"
           "\"wall_s\":%.3f,\"rate\":%.1f,\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"max_ms\":%.2f,\"hub_cpu_s\":%.2f,\"hub_cpu_share\":%.4f,\"hub_rss_kb\":%ld,"
           "\"hub_rss_max_kb\":%ld,\"sim_cpu_s\":%.2f,\"sim_rss_kb\":%ld,\"lag_max\":%lu,\"first_ok_s\":%.3f",
           names[ph->kind], s->phase_i, s->n, s->target, s->ok, s->final_err, s->retries,
           s->fallbacks, s->resumed, s->full, wall, wall > 0 ? (double)s->ok / wall : 0,
           hist_pct_ms(&s->hist, 0.50), hist_pct_ms(&s->hist, 0.90),
           hist_pct_ms(&s->hist, 0.99), (double)s->hist.max_us / 1000.0, hcpu,
           hcpu >= 0 && wall > 0 ? hcpu / wall : -1, rss,
           rss > s->hub_rss_max ? rss : s->hub_rss_max, proc_cpu_self() - s->sim_cpu0,
           proc_rss_kb(0), s->lag_max, (double)s->first_ok_us / 1e6);
    printf(",\"err\":{");
    for (int k = 0; k < E_KINDS; k++)
        printf("%s\"%s\":%lu", k ? "," : "", err_names[k], s->errs[k]);
    printf("}}\n");
    fflush(stdout);
}

static void phase_maybe_done(struct sim *s)
{
    const struct sim_phase *ph = s->ph;
    uint64_t now = now_us();
    double wall = (double)(now - s->ph_start_us) / 1e6;
    bool done = false;
    if (!ph || s->finishing)
        return;
    switch (ph->kind) {
    case PH_PRIME:
    case PH_STORM:
        done = s->ok + s->final_err >= s->n && s->active == 0;
        if (!done && wall > s->o->storm_timeout && s->active == 0 && s->n_ready == 0 &&
            s->timers_pending == 0)
            done = true;
        break;
    case PH_RESUMED:
    case PH_FULL:
        done = s->next_agent >= ph->count && s->n_ready == 0 && s->timers_pending == 0 &&
               s->active == 0;
        break;
    case PH_ENROLL:
        done = s->next_agent >= s->n_enroll && s->active == 0;
        break;
    case PH_RATE:
        done = wall >= ph->secs && s->active == 0;
        break;
    case PH_SLEEP:
        done = wall >= ph->secs;
        break;
    default:
        done = true;
    }
    if (s->aborted && s->active == 0)
        done = true;
    if (!done)
        return;
    s->finishing = true;
    print_phase(s, wall);
    s->phase_i = s->aborted ? s->o->n_phases : s->phase_i + 1;
    phase_next(s);
}

static void on_tick(uv_timer_t *t)
{
    struct sim *s = t->data;
    uint64_t now = now_us();
    if (!s->ph)
        return;
    if (now - s->last_sample_us >= 1000000) {
        s->last_sample_us = now;
        long rss = s->hub_pid ? proc_rss_kb(s->hub_pid) : -1;
        if (rss > s->hub_rss_max)
            s->hub_rss_max = rss;
        if (s->hub_pid > 0 && kill((pid_t)s->hub_pid, 0) < 0 && errno == ESRCH && !s->aborted) {
            fprintf(stderr, "resedge-sim: the hub (pid %ld) exited: stopping\n", s->hub_pid);
            s->aborted = true;
            s->rc = -RE_EIO;
            s->final_err += s->n_ready;
            s->n_ready = 0;
            s->next_agent = SIZE_MAX / 2;
        }
    }
    if ((s->ph->kind == PH_PRIME || s->ph->kind == PH_STORM) &&
        (double)(now - s->ph_start_us) / 1e6 > s->o->storm_timeout) {
        /* give up: stop retrying, let in-flight attempts end */
        s->final_err += s->n_ready;
        s->n_ready = 0;
        s->next_agent = s->n;
    }
    pump(s);
    phase_maybe_done(s);
}

static void phase_begin(struct sim *s)
{
    s->active = 0;
    s->target = s->launched = s->ok = s->final_err = s->retries = s->fallbacks = 0;
    s->resumed = s->full = s->lag_max = 0;
    s->first_ok_us = 0;
    memset(s->errs, 0, sizeof(s->errs));
    memset(&s->hist, 0, sizeof(s->hist));
    s->next_agent = 0;
    s->n_ready = 0;
    s->finishing = false;
    s->hub_pid = read_pid_file(s->o->hub_pid_file);
    s->hub_cpu0 = s->hub_pid ? proc_cpu(s->hub_pid) : -1;
    s->hub_rss_max = -1;
    s->sim_cpu0 = proc_cpu_self();
    s->ph_start_us = s->last_sample_us = now_us();
    switch (s->ph->kind) {
    case PH_PRIME:
    case PH_STORM:
        s->target = s->n;
        break;
    case PH_RESUMED:
    case PH_FULL:
        s->target = s->ph->count;
        break;
    case PH_RATE:
        s->target = (unsigned long)(s->ph->rate * s->ph->secs);
        break;
    case PH_ENROLL:
        s->target = s->n_enroll;
        break;
    default:
        break;
    }
}

static void phase_next(struct sim *s)
{
    for (;;) {
        if (s->phase_i >= s->o->n_phases) {
            s->ph = NULL;
            uv_timer_stop(&s->tick);
            uv_close((uv_handle_t *)&s->tick, NULL);
            return;
        }
        s->ph = &s->o->phases[s->phase_i];
        if (s->ph->kind == PH_MINT) {
            uint64_t t0 = now_us();
            unsigned long minted = 0;
            if (mint_sessions(s, &minted) < 0)
                s->rc = -RE_EIO;
            printf("{\"phase\":\"mint\",\"index\":%zu,\"minted\":%lu,\"agents\":%zu,"
                   "\"wall_s\":%.3f,\"sim_rss_kb\":%ld}\n", s->phase_i, minted, s->n,
                   (double)(now_us() - t0) / 1e6, proc_rss_kb(0));
            fflush(stdout);
            s->phase_i = s->rc < 0 ? s->o->n_phases : s->phase_i + 1;
            continue;
        }
        if (s->ph->kind != PH_RESTART)
            break;
        /* between phases nothing is in flight: block the loop on purpose */
        uint64_t t0 = now_us();
        int rc = s->o->restart_cmd ? system(s->o->restart_cmd) : -1;
        printf("{\"phase\":\"restart\",\"index\":%zu,\"exit\":%d,\"wall_s\":%.3f}\n",
               s->phase_i, rc, (double)(now_us() - t0) / 1e6);
        fflush(stdout);
        if (rc != 0)
            s->rc = -RE_EIO;
        s->phase_i++;
    }
    phase_begin(s);
    pump(s);
}

/* ---- enrollment requests ---- */

/* One POST /api/v1/enroll per "CLUSTER CODE" line, each with a fresh key's
 * CSR, made before the phase so only the hub's side is timed. */
static int load_enroll(struct sim *s)
{
    struct re_buf text, key, csr, req;
    size_t cap = 0;
    int r;
    re_buf_init(&text, 64 * 1024 * 1024);
    re_buf_init(&key, RE_PEM_MAX);
    re_buf_init(&csr, RE_PEM_MAX);
    re_buf_init(&req, 2 * RE_PEM_MAX);
    if (!s->o->codes_file) {
        fprintf(stderr, "resedge-sim: the enroll phase needs --codes FILE\n");
        r = -RE_EINVAL;
        goto out;
    }
    if ((r = re_read_file(&text, s->o->codes_file)) < 0) {
        fprintf(stderr, "resedge-sim: cannot read '%s': %s\n", s->o->codes_file, re_strerror(r));
        goto out;
    }
    for (char *p = text.ptr, *end = text.ptr + text.len; p && p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char line[256], name[128], code[64];
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        re_snprintf(line, sizeof(line), "%.*s", (int)len, p);
        p = nl ? nl + 1 : NULL;
        if (sscanf(line, "%127s %63s", name, code) != 2)
            continue;
        cJSON *j = cJSON_CreateObject();
        char *body = NULL;
        re_buf_reset(&key);
        re_buf_reset(&csr);
        re_buf_reset(&req);
        if (!j || (r = re_key_generate(&key)) < 0 ||
            (r = re_csr_create(&csr, key.ptr, name, NULL)) < 0 ||
            !cJSON_AddStringToObject(j, "code", code) ||
            !cJSON_AddStringToObject(j, "csr", csr.ptr) ||
            !cJSON_AddStringToObject(j, "cluster", name) || !(body = cJSON_PrintUnformatted(j))) {
            cJSON_Delete(j);
            r = r < 0 ? r : -RE_ENOMEM;
            goto out;
        }
        cJSON_Delete(j);
        r = re_buf_printf(&req, "POST /api/v1/enroll HTTP/1.1\r\nHost: %s\r\n"
                          "User-Agent: resedge-sim/" RE_VERSION "\r\n"
                          "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n\r\n%s", s->host_hdr, strlen(body), body);
        free(body);
        if (r < 0)
            goto out;
        if (s->n_enroll == cap) {
            size_t nc = cap ? cap * 2 : 256;
            char **t = realloc(s->enroll_req, nc * sizeof(*t));
            if (!t) {
                r = -RE_ENOMEM;
                goto out;
            }
            s->enroll_req = t;
            cap = nc;
        }
        if (!(s->enroll_req[s->n_enroll] = strdup(req.ptr))) {
            r = -RE_ENOMEM;
            goto out;
        }
        s->n_enroll++;
    }
    r = 0;
out:
    re_buf_release(&text);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&req);
    return r;
}

/* ---- entry ---- */

int sim_phase_parse(struct sim_phase *out, const char *spec)
{
    struct sim_phase p = { 0 };
    char kind[16], extra, body[128];
    const char *at = strchr(spec, '@');
    double a = 0, b = 0, c = 0;
    unsigned long conc = 0;
    int n;
    if (at) {
        char *end;
        conc = strtoul(at + 1, &end, 10);
        if (*end || conc < 1 || conc > 20000 || (size_t)(at - spec) >= sizeof(body))
            return -RE_EINVAL;
        re_snprintf(body, sizeof(body), "%.*s", (int)(at - spec), spec);
        spec = body;
    }
    memset(kind, 0, sizeof(kind));
    n = sscanf(spec, "%15[a-z]:%lf:%lf:%lf%c", kind, &a, &b, &c, &extra);
    if (n < 1)
        return -RE_EINVAL;
    if (strcmp(kind, "prime") == 0 && n == 1)
        p.kind = PH_PRIME;
    else if (strcmp(kind, "storm") == 0 && n == 1)
        p.kind = PH_STORM;
    else if (strcmp(kind, "restart") == 0 && n == 1)
        p.kind = PH_RESTART;
    else if (strcmp(kind, "enroll") == 0 && n == 1)
        p.kind = PH_ENROLL;
    else if (strcmp(kind, "mint") == 0 && n == 1)
        p.kind = PH_MINT;
    else if (strcmp(kind, "resumed") == 0 && n == 2 && a >= 1 && a <= 1e9)
        p.kind = PH_RESUMED, p.count = (unsigned long)a;
    else if (strcmp(kind, "full") == 0 && (n == 2 || n == 3) && a >= 1 && a <= 1e9 && b >= 0 &&
             b <= 1e7)
        p.kind = PH_FULL, p.count = (unsigned long)a, p.agents = (unsigned)b;
    else if (strcmp(kind, "rate") == 0 && n == 3 && a > 0 && a <= 1e6 && b > 0 && b <= 86400)
        p.kind = PH_RATE, p.rate = a, p.secs = b;
    else if (strcmp(kind, "sleep") == 0 && n == 2 && a > 0 && a <= 86400)
        p.kind = PH_SLEEP, p.secs = a;
    else
        return -RE_EINVAL;
    p.concurrency = (unsigned)conc;
    *out = p;
    return 0;
}

int sim_run(const struct sim_run_opts *o)
{
    struct sim *s = calloc(1, sizeof(*s));
    struct re_buf err;
    int r;
    if (!s)
        return -RE_ENOMEM;
    re_buf_init(&err, 1024);
    s->o = o;
    s->rc = 0;
    agent_config_defaults(&s->acfg);
    agent_config_set(&s->acfg, "mode", "none", &err);
    agent_config_add_label(&s->acfg, "ring=prod", &err);
    agent_config_add_label(&s->acfg, "format=drive-thru", &err);
    re_buf_reset(&err);
    s->psettings.on_body = on_pbody;
    s->psettings.on_message_complete = on_pcomplete;
    if (uv_ip4_addr(o->host, (int)o->port, &s->addr) < 0 ||
        (ntohl(s->addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "resedge-sim: the hub must be a loopback IPv4 address, not '%s'\n",
                o->host);
        r = -RE_EINVAL;
        goto out;
    }
    re_snprintf(s->host_hdr, sizeof(s->host_hdr), "%s:%u", o->host, o->port);
    bool need_agents = false;
    for (size_t i = 0; i < o->n_phases; i++)
        if (o->phases[i].kind != PH_ENROLL && o->phases[i].kind != PH_SLEEP &&
            o->phases[i].kind != PH_RESTART)
            need_agents = true;
    if (need_agents && !o->ids_dir) {
        fprintf(stderr, "resedge-sim: --ids is required for check-in phases\n");
        r = -RE_EINVAL;
        goto out;
    }
    if (need_agents && (r = load_agents(s)) < 0)
        goto out;
    for (size_t i = 0; i < o->n_phases; i++)
        if (o->phases[i].kind == PH_ENROLL && !s->enroll_req && (r = load_enroll(s)) < 0)
            goto out;
    struct tls_client_options co = { .ca_file = o->ca_file };
    if ((r = tls_config_new_client(&s->shared_cfg, &co, &err)) < 0) {
        fprintf(stderr, "resedge-sim: %s\n", err.len ? err.ptr : re_strerror(r));
        goto out;
    }
    s->loop = uv_default_loop();
    uv_timer_init(s->loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    phase_next(s);
    uv_run(s->loop, UV_RUN_DEFAULT);
    r = s->rc;
out:
    if (s->agents) {
        for (size_t i = 0; i < s->n; i++) {
            free(s->agents[i].name);
            tls_session_free(s->agents[i].session);
            tls_config_free(s->agents[i].cfg);
        }
        free(s->agents);
    }
    free(s->ready);
    for (size_t i = 0; i < s->n_enroll; i++)
        free(s->enroll_req[i]);
    free(s->enroll_req);
    tls_config_free(s->shared_cfg);
    agent_config_release(&s->acfg);
    re_buf_release(&err);
    free(s);
    return r;
}
