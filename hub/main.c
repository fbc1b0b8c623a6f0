/* main.c - resedge-hub: `init` a state directory, `serve` it, and the admin
 * path `issue-cert`. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "api/api_git.h"
#include "conf.h"
#include "error.h"
#include "fsutil.h"
#include "gitops/gitops.h"
#include "gitops/mirror.h"
#include "http/routes.h"
#include "http/server.h"
#include "hub.h"
#include "inventory/checkin_batch.h"
#include "inventory/db.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "state.h"

#define EXIT_USAGE 64

static const char usage_top[] =
    "usage: resedge-hub <command> [options]\n"
    "\n"
    "Res-Edge hub: the fleet inventory, its REST API over mutual TLS, its CA,\n"
    "and the GitOps writer.\n"
    "\n"
    "commands:\n"
    "  init        create a state directory (database, CA, certificates, config)\n"
    "  serve       run the hub on a state directory\n"
    "  issue-cert  issue a client certificate from the hub CA (admin path)\n"
    "\n"
    "Run 'resedge-hub <command> --help' for a command's options.\n";

static const char usage_init[] =
    "usage: resedge-hub init --dir DIR [--san NAME]... [--listen ADDR:PORT]\n"
    "                        [--trust-domain NAME]\n"
    "\n"
    "Creates DIR: the inventory database, a CA (DIR/tls/ca.crt), the hub's server\n"
    "certificate (names: localhost, 127.0.0.1, ::1 and each --san), an admin client\n"
    "certificate (DIR/tls/admin.crt, DIR/tls/admin.key), DIR/hub.conf and a CLI\n"
    "profile DIR/resedgectl.conf. Refuses, changing nothing, if DIR is not empty.\n"
    "\n"
    "  --dir DIR             state directory to create\n"
    "  --san NAME            extra DNS name or IP address for the server certificate\n"
    "  --listen ADDR:PORT    address written into hub.conf (default 127.0.0.1:8443)\n"
    "  --trust-domain NAME   SPIFFE trust domain of issued identities (default resedge)\n";

static const char usage_serve[] =
    "usage: resedge-hub serve --dir DIR [--listen ADDR:PORT] [--log-level LEVEL] [--reconcile]\n"
    "\n"
    "Serves the REST API over mutual TLS. SIGTERM: stop accepting, finish what is\n"
    "in flight, exit 0. SIGHUP: reload DIR/hub.conf limits and log level, reopen logs.\n"
    "\n"
    "  --dir DIR             state directory made by 'init'\n"
    "  --listen ADDR:PORT    override [server] listen (port 0: any free port)\n"
    "  --port-file FILE      write the bound port to FILE once listening\n"
    "  --log-level LEVEL     error, warning, notice, info or debug\n"
    "  --reconcile           render every cluster at start-up even after a clean stop\n"
    "                        (after a crash, an upgrade or an inventory change it always does)\n";

static const char usage_issue[] =
    "usage: resedge-hub issue-cert --dir DIR (--user NAME --role ROLE | --cluster NAME)\n"
    "                              --out PREFIX [--days N]\n"
    "\n"
    "Issues a client certificate from the hub CA with a freshly generated key and\n"
    "records it as the identity's current certificate (the previous one stops\n"
    "working). Writes PREFIX.crt and PREFIX.key (mode 0600). This is the admin\n"
    "path for bootstrapping and bulk test identities; people and stores normally\n"
    "enroll with a one-time code instead. Roles: admin, operator, appteam,\n"
    "technician, viewer. The hub may be running.\n";

static int usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "resedge-hub: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage);
    return EXIT_USAGE;
}

enum { OPT_DIR = 256, OPT_SAN, OPT_LISTEN, OPT_TRUST, OPT_LOGLEVEL, OPT_PORTFILE, OPT_USER,
       OPT_ROLE, OPT_CLUSTER, OPT_OUT, OPT_DAYS, OPT_RECONCILE, OPT_HELP };

static const struct option long_opts[] = {
    { "dir", required_argument, NULL, OPT_DIR },
    { "san", required_argument, NULL, OPT_SAN },
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "trust-domain", required_argument, NULL, OPT_TRUST },
    { "log-level", required_argument, NULL, OPT_LOGLEVEL },
    { "port-file", required_argument, NULL, OPT_PORTFILE },
    { "user", required_argument, NULL, OPT_USER },
    { "role", required_argument, NULL, OPT_ROLE },
    { "cluster", required_argument, NULL, OPT_CLUSTER },
    { "out", required_argument, NULL, OPT_OUT },
    { "days", required_argument, NULL, OPT_DAYS },
    { "reconcile", no_argument, NULL, OPT_RECONCILE },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

struct args {
    const char *dir, *listen, *trust_domain, *log_level, *port_file;
    const char *user, *role, *cluster, *out;
    const char *sans[32];
    size_t n_sans;
    unsigned long long days;
    int help;
    int reconcile;
};

static int parse_args(struct args *a, int argc, char **argv, const char *usage)
{
    int c;
    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_DIR: a->dir = optarg; break;
        case OPT_SAN:
            if (a->n_sans == 32)
                return usage_error(usage, "too many --san values (at most %s)", "32");
            a->sans[a->n_sans++] = optarg;
            break;
        case OPT_LISTEN: a->listen = optarg; break;
        case OPT_TRUST: a->trust_domain = optarg; break;
        case OPT_LOGLEVEL: a->log_level = optarg; break;
        case OPT_PORTFILE: a->port_file = optarg; break;
        case OPT_USER: a->user = optarg; break;
        case OPT_ROLE: a->role = optarg; break;
        case OPT_CLUSTER: a->cluster = optarg; break;
        case OPT_OUT: a->out = optarg; break;
        case OPT_DAYS:
            if (re_parse_uint(&a->days, optarg, 3650) < 0 || a->days == 0)
                return usage_error(usage, "--days takes a whole number from 1 to 3650, not '%s'",
                                   optarg);
            break;
        case OPT_RECONCILE: a->reconcile = 1; break;
        case 'h': case OPT_HELP: a->help = 1; break;
        default:
            return usage_error(usage, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error(usage, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static int cmd_init(int argc, char **argv)
{
    struct args a;
    struct re_buf err;
    int r = parse_args(&a, argc, argv, usage_init);
    if (r)
        return r;
    if (a.help) {
        fputs(usage_init, stdout);
        return 0;
    }
    if (!a.dir)
        return usage_error(usage_init, "%s", "--dir is required");
    struct state_init_opts o = { .dir = a.dir, .sans = a.sans, .n_sans = a.n_sans,
                                 .listen = a.listen, .trust_domain = a.trust_domain };
    re_buf_init(&err, 4096);
    r = state_init(&o, &err);
    if (r < 0) {
        fprintf(stderr, "resedge-hub: %s\n", err.len ? err.ptr : re_strerror(r));
        re_buf_release(&err);
        return 1;
    }
    re_buf_release(&err);
    printf("initialized hub state in '%s'\n"
           "  CA certificate:  %s/" HUB_CA_CRT "\n"
           "  admin identity:  %s/" HUB_ADMIN_CRT ", %s/" HUB_ADMIN_KEY "\n"
           "  CLI profile:     %s/" HUB_CTL_CONF "\n"
           "next: resedge-hub serve --dir %s\n",
           a.dir, a.dir, a.dir, a.dir, a.dir, a.dir);
    return 0;
}

static int write_pair(const char *prefix, const struct re_buf *crt, const struct re_buf *key)
{
    char path[PATH_MAX];
    int r;
    if ((r = re_snprintf(path, sizeof(path), "%s.key", prefix)) < 0 ||
        (r = re_write_file_atomic(path, key->ptr, key->len, 0600)) < 0 ||
        (r = re_snprintf(path, sizeof(path), "%s.crt", prefix)) < 0 ||
        (r = re_write_file_atomic(path, crt->ptr, crt->len, 0644)) < 0)
        return r;
    return 0;
}

static int cmd_issue_cert(int argc, char **argv)
{
    struct args a;
    struct hub_config cfg;
    struct re_buf err, crt, key;
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    int r = parse_args(&a, argc, argv, usage_issue), rc = 1;
    if (r)
        return r;
    if (a.help) {
        fputs(usage_issue, stdout);
        return 0;
    }
    if (!a.dir || !a.out || !!a.user == !!a.cluster)
        return usage_error(usage_issue, "%s",
                           "--dir, --out and exactly one of --user or --cluster are required");
    if (a.user && !role_parse(a.role ? a.role : ""))
        return usage_error(usage_issue, "--role must be admin, operator, appteam, technician or viewer, "
                           "not '%s'", a.role ? a.role : "");
    hub_config_defaults(&cfg);
    re_buf_init(&err, 4096);
    re_buf_init(&crt, 65536);
    re_buf_init(&key, 65536);
    if ((r = hub_config_load(&cfg, a.dir, &err)) < 0) {
        fprintf(stderr, "resedge-hub: %s\n", err.ptr ? err.ptr : re_strerror(r));
        goto out;
    }
    if ((r = re_path_join(path, sizeof(path), a.dir, HUB_DB_FILE)) < 0 ||
        (r = db_open(&db, path)) < 0) {
        fprintf(stderr, "resedge-hub: cannot open '%s': %s\n", path, re_strerror(r));
        goto out;
    }
    r = state_issue_cert(a.dir, db, cfg.trust_domain, a.user ? "user" : "cluster",
                         a.user ? a.user : a.cluster, a.role,
                         a.days ? (unsigned)a.days : cfg.cert_lifetime_days, &crt, &key);
    if (r < 0) {
        fprintf(stderr, "resedge-hub: cannot issue a certificate for '%s': %s\n",
                a.user ? a.user : a.cluster,
                r == -RE_ENOENT ? "no such cluster in the inventory" : re_strerror(r));
        goto out;
    }
    if ((r = write_pair(a.out, &crt, &key)) < 0) {
        fprintf(stderr, "resedge-hub: cannot write '%s.crt': %s\n", a.out, re_strerror(r));
        goto out;
    }
    printf("issued %s/%s: %s.crt %s.key\n", a.user ? "user" : "cluster",
           a.user ? a.user : a.cluster, a.out, a.out);
    rc = 0;
out:
    db_close(db);
    hub_config_release(&cfg);
    re_buf_release(&err);
    re_buf_release(&crt);
    re_buf_release(&key);
    return rc;
}

/* ---- serve ---- */

static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t watchdog;

/* systemd kills a Type=notify service that misses its watchdog: ping at half
 * the interval from the loop, so a stuck loop is exactly what gets caught. */
static void on_watchdog(uv_timer_t *t)
{
    re_notify("WATCHDOG=1");
}

static void on_stopped(struct server *s, void *data)
{
    struct hub *hub = data;
    /* Requests in flight had their time; a git child still running would
     * otherwise hold the loop open until its own timeout. */
    gitserve_shutdown(hub);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_stop(hub->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct hub *hub = h->data;
    if (signum == SIGHUP) {
        struct hub_config cfg;
        struct re_buf err;
        hub_config_defaults(&cfg);
        re_buf_init(&err, 4096);
        if (hub_config_load(&cfg, hub->cfg.dir, &err) < 0) {
            log_err("cannot reload configuration, keeping the old one: %s", err.ptr ? err.ptr : "");
        } else {
            hub->cfg.limits = cfg.limits;
            hub->cfg.log_level = cfg.log_level;
            re_log_set_level(cfg.log_level);
            if (re_log_reopen(hub->cfg.log_file) < 0)
                log_err("cannot reopen log file '%s'", hub->cfg.log_file);
            log_notice("configuration reloaded");
        }
        hub_config_release(&cfg);
        re_buf_release(&err);
        return;
    }
    if (hub->stopping)
        return;
    hub->stopping = true;
    log_notice("stopping: finishing requests in flight");
    re_notify("STOPPING=1");
    server_stop(hub->server, on_stopped, hub);
}

static int cmd_serve(int argc, char **argv)
{
    struct args a;
    struct hub hub = { 0 };
    struct re_buf err;
    char path[PATH_MAX];
    int r = parse_args(&a, argc, argv, usage_serve), rc = 1, lock_fd = -1;
    if (r)
        return r;
    if (a.help) {
        fputs(usage_serve, stdout);
        return 0;
    }
    if (!a.dir)
        return usage_error(usage_serve, "%s", "--dir is required");
    re_log_init("resedge-hub", RE_LOG_INFO);
    hub_config_defaults(&hub.cfg);
    re_buf_init(&err, 4096);
    if ((r = hub_config_load(&hub.cfg, a.dir, &err)) < 0) {
        log_err("%s", err.len ? err.ptr : re_strerror(r));
        goto out;
    }
    hub.cfg.dir = strdup(a.dir);
    if (a.listen) {
        free(hub.cfg.listen);
        hub.cfg.listen = strdup(a.listen);
    }
    if (a.log_level) {
        int lvl = re_log_level_parse(a.log_level);
        if (lvl < 0) {
            rc = usage_error(usage_serve, "unknown log level '%s'", a.log_level);
            goto out;
        }
        hub.cfg.log_level = lvl;
    }
    re_log_set_level(hub.cfg.log_level);
    if (hub.cfg.log_file && re_log_reopen(hub.cfg.log_file) < 0)
        log_warn("cannot open log file '%s', logging to stderr", hub.cfg.log_file);

    /* One writer per state directory: a second hub refuses to start. */
    lock_fd = state_lock(a.dir);
    if (lock_fd < 0) {
        log_err("cannot lock '%s/" HUB_LOCK_FILE "': %s", a.dir,
                lock_fd == -RE_EBUSY ? "another hub is serving this state directory"
                                     : re_strerror(lock_fd));
        goto out;
    }
    if ((r = re_path_join(path, sizeof(path), a.dir, HUB_DB_FILE)) < 0 ||
        (r = db_open(&hub.db, path)) < 0) {
        log_err("cannot open database '%s': %s", path, re_strerror(r));
        goto out;
    }
    hub.loop = uv_default_loop();
    signal(SIGPIPE, SIG_IGN);
    if ((r = metrics_new(&hub.metrics)) < 0 || (r = server_start(&hub.server, &hub, hub_route_tables, &err)) < 0) {
        log_err("cannot start: %s", err.len ? err.ptr : re_strerror(r));
        goto out;
    }
    log_notice("listening on %s (port %d), state '%s'", hub.cfg.listen, server_port(hub.server),
               a.dir);
    if (a.port_file) {
        char port[16];
        re_snprintf(port, sizeof(port), "%d\n", server_port(hub.server));
        if ((r = re_write_file_atomic(a.port_file, port, strlen(port), 0644)) < 0)
            log_warn("cannot write port file '%s': %s", a.port_file, re_strerror(r));
    }
    uv_signal_init(hub.loop, &sig_term);
    uv_signal_init(hub.loop, &sig_int);
    uv_signal_init(hub.loop, &sig_hup);
    sig_term.data = sig_int.data = sig_hup.data = &hub;
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    uv_timer_init(hub.loop, &watchdog);
    if (re_notify_watchdog_ms())
        uv_timer_start(&watchdog, on_watchdog, re_notify_watchdog_ms(), re_notify_watchdog_ms());
    hub.reconcile_at_start = a.reconcile;
    if ((r = gitops_start(&hub)) < 0) {
        log_err("GitOps writer not started: %s", re_strerror(r));
    } else {
        server_ready_add(hub.server, "gitops", gitops_ready, hub.gitops);
        server_ready_add_warning(hub.server, "render", gitops_render_warning, hub.gitops);
        if (gitops_mirror(&hub))
            server_ready_add_warning(hub.server, "mirror", mirror_ready, gitops_mirror(&hub));
    }
    if ((r = checkin_batch_start(&hub)) < 0)
        log_err("check-ins are written one at a time: %s", re_strerror(r));
    re_notify("READY=1\nSTATUS=serving");
    uv_run(hub.loop, UV_RUN_DEFAULT);
    checkin_batch_stop(&hub);       /* the held check-in reports, before the database closes */
    gitops_stop(&hub);
    log_notice("stopped");
    rc = 0;
out:
    server_free(hub.server);
    metrics_free(hub.metrics);
    if (hub.loop) {
        uv_run(hub.loop, UV_RUN_NOWAIT);
        uv_loop_close(hub.loop);
    }
    db_close(hub.db);
    if (lock_fd >= 0)
        close(lock_fd);
    hub_config_release(&hub.cfg);
    re_buf_release(&err);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (!cmd) {
        fputs(usage_top, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_top, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("resedge-hub %s\n", RE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "issue-cert") == 0)
        return cmd_issue_cert(argc - 1, argv + 1);
    fprintf(stderr, "resedge-hub: unknown command '%s'\n\n%s", cmd, usage_top);
    return EXIT_USAGE;
}
