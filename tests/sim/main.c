/* main.c - resedge-sim's command line: `issue` (bulk identities through the
 * admin path) and `run` (simulated agents against a real hub on loopback). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "sim.h"

static const char usage_main[] =
    "usage: resedge-sim COMMAND [OPTIONS]\n"
    "Fleet simulator for `make bench`: many agents checking in against a real hub.\n"
    "\n"
    "commands:\n"
    "  issue   issue one certificate per cluster from the hub's CA (admin path)\n"
    "  run     drive simulated agents against a hub on 127.0.0.1\n"
    "\n"
    "`resedge-sim COMMAND --help` for each command's options.\n";

static const char usage_issue[] =
    "usage: resedge-sim issue --dir HUBDIR --clusters-from FILE --out-dir DIR\n"
    "                         [--threads N] [--days D] [--shared-key]\n"
    "\n"
    "The bulk admin path for simulator identities. Like `resedge-hub issue-cert\n"
    "--cluster NAME` but for many clusters in one process: for every name in FILE\n"
    "(one a line; each must already be a cluster in the inventory) it generates a\n"
    "fresh ECDSA P-256 key, signs a client certificate with the hub's CA key\n"
    "(HUBDIR/tls/ca.key, read directly: run it as the hub's administrator on the\n"
    "hub machine) with the identity enrollment gives (CN = name, URI SAN\n"
    "spiffe://<trust domain>/cluster/<name>, client auth only, notBefore 5 minutes\n"
    "back, the hub's certificate lifetime), writes DIR/NAME.crt and DIR/NAME.key\n"
    "(0600) and DIR/index, and records every serial as the cluster's current\n"
    "certificate (clusters.cert_serial) in HUBDIR/hub.db in one transaction: all\n"
    "or nothing. The hub may be running (SQLite WAL) or stopped.\n"
    "\n"
    "  --dir HUBDIR           the hub's state directory\n"
    "  --clusters-from FILE   cluster names, one a line\n"
    "  --out-dir DIR          where identities go (created)\n"
    "  --threads N            signing threads (default 2)\n"
    "  --days D               certificate lifetime (default: the hub's)\n"
    "  --shared-key           one fresh key for every identity, each still its own\n"
    "                         certificate and serial: a signature per identity\n"
    "                         instead of a key generation and a signature (bench\n"
    "                         fleets of 100,000; never for real clusters)\n";

static const char usage_run[] =
    "usage: resedge-sim run --hub https://127.0.0.1:PORT --ca CA.crt [--ids DIR]\n"
    "                       [--agents N] [--concurrency C] --phase SPEC...\n"
    "\n"
    "Simulated agents (identities from `resedge-sim issue`) check in with the\n"
    "real agent's request (agent/checkin.c) over short mutual-TLS connections\n"
    "that resume each agent's saved session ticket, as the agent's TLS session\n"
    "reuse does, or over full handshakes. One libuv loop; memory is bounded by\n"
    "the cap on connections in flight plus one saved session per agent. Only\n"
    "loopback addresses are accepted. Each phase prints one JSON line: counts,\n"
    "check-ins per second, latency p50/p90/p99/max, resumed vs full handshakes,\n"
    "and the hub's CPU seconds and RSS when --hub-pid-file is given.\n"
    "\n"
    "phases, run in order:\n"
    "  prime              every agent checks in once with a full handshake\n"
    "                     (saving its session); failures are retried\n"
    "  resumed:COUNT      COUNT check-ins as fast as possible, round robin over\n"
    "                     the agents, resuming their sessions\n"
    "  full:COUNT[:N]     COUNT check-ins with full handshakes over the first N\n"
    "                     agents (default all)\n"
    "  rate:R:SECS        check-ins started at R per second for SECS seconds\n"
    "                     (N agents every 60 s: R = N / 60)\n"
    "  restart            runs --restart-cmd (e.g. restart the hub)\n"
    "  storm              every agent checks in once, all at once (as after a\n"
    "                     hub restart), retried until all have or --storm-timeout\n"
    "  sleep:SECS         nothing: the hub's idle figures\n"
    "  (any phase)@C      at most C connections in flight in that phase\n"
    "  mint               every agent without a session gets one without a\n"
    "                     handshake: its certificate sealed into a ticket with\n"
    "                     the hub's ticket keys (--mint-from, the admin path\n"
    "                     that makes 100,000 resumable agents in seconds; full\n"
    "                     handshakes take ~25 minutes). Needs one agent with a\n"
    "                     session from a real handshake first (e.g. full:1:1),\n"
    "                     whose negotiated parameters it copies\n"
    "  enroll             redeems every code of --codes once (POST /api/v1/enroll,\n"
    "                     no client certificate, a fresh key's CSR made before\n"
    "                     the phase): enrollments per second\n"
    "\n"
    "  --hub URL              https://127.0.0.1:PORT\n"
    "  --ca FILE              the hub's CA certificate\n"
    "  --ids DIR              identities (DIR/index, DIR/NAME.crt, DIR/NAME.key);\n"
    "                         required unless the only phases are enroll/sleep\n"
    "  --agents N             the first N identities (default all)\n"
    "  --concurrency C        connections in flight at most (default 128)\n"
    "  --tls-name NAME        name to check in the server certificate (localhost)\n"
    "  --path FMT             request path, %s = cluster name\n"
    "                         (default /api/v1/clusters/%s/checkin)\n"
    "  --hub-pid-file FILE    the hub's pid (re-read at every phase)\n"
    "  --restart-cmd CMD      shell command of the restart phase\n"
    "  --storm-timeout SECS   give up prime/storm after this (default 600)\n"
    "  --cfg-cache N          agents' TLS configurations kept (default 1024)\n"
    "  --codes FILE           enroll phase: \"CLUSTER CODE\" lines\n"
    "  --mint-from HUBDIR     mint phase: the hub's state directory (reads\n"
    "                         tls/ticket.keys and the server's certificate and\n"
    "                         key; writes nothing)\n"
    "  --phase SPEC           a phase, repeatable\n";

static int cmd_issue(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "clusters-from", required_argument, NULL, 'f' },
        { "out-dir", required_argument, NULL, 'o' },
        { "threads", required_argument, NULL, 't' },
        { "days", required_argument, NULL, 'D' },
        { "shared-key", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct sim_issue_opts o = { .threads = 2 };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o.hub_dir = optarg; break;
        case 'f': o.names_file = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 't':
            o.threads = (unsigned)strtoul(optarg, &end, 10);
            if (*end || o.threads < 1 || o.threads > 64) {
                fprintf(stderr, "resedge-sim: --threads must be 1..64\n");
                return 2;
            }
            break;
        case 'D':
            o.days = (unsigned)strtoul(optarg, &end, 10);
            if (*end || o.days < 1 || o.days > 3650) {
                fprintf(stderr, "resedge-sim: --days must be 1..3650\n");
                return 2;
            }
            break;
        case 'S': o.shared_key = true; break;
        case 'h': fputs(usage_issue, stdout); return 0;
        default: fputs(usage_issue, stderr); return 2;
        }
    }
    if (!o.hub_dir || !o.names_file || !o.out_dir || optind != argc) {
        fprintf(stderr, "resedge-sim: --dir, --clusters-from and --out-dir are required\n%s",
                usage_issue);
        return 2;
    }
    return sim_issue(&o) < 0 ? 1 : 0;
}

static int parse_hub(struct sim_run_opts *o, const char *url, char *host, size_t size)
{
    const char *p;
    char *end;
    unsigned long port;
    if (strncmp(url, "https://", 8) != 0 || !(p = strrchr(url + 8, ':')))
        return -RE_EINVAL;
    if ((size_t)(p - (url + 8)) >= size || p == url + 8)
        return -RE_EINVAL;
    memcpy(host, url + 8, (size_t)(p - (url + 8)));
    host[p - (url + 8)] = '\0';
    port = strtoul(p + 1, &end, 10);
    if ((*end && strcmp(end, "/") != 0) || port < 1 || port > 65535)
        return -RE_EINVAL;
    o->host = host;
    o->port = (unsigned)port;
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "hub", required_argument, NULL, 'u' },
        { "ca", required_argument, NULL, 'c' },
        { "ids", required_argument, NULL, 'i' },
        { "agents", required_argument, NULL, 'n' },
        { "concurrency", required_argument, NULL, 'C' },
        { "tls-name", required_argument, NULL, 'N' },
        { "path", required_argument, NULL, 'p' },
        { "hub-pid-file", required_argument, NULL, 'P' },
        { "restart-cmd", required_argument, NULL, 'R' },
        { "storm-timeout", required_argument, NULL, 'T' },
        { "cfg-cache", required_argument, NULL, 'K' },
        { "phase", required_argument, NULL, 'x' },
        { "codes", required_argument, NULL, 'E' },
        { "mint-from", required_argument, NULL, 'M' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static struct sim_run_opts o;
    static char host[64];
    const char *hub = NULL;
    unsigned long v;
    char *end;
    int c;
    o = (struct sim_run_opts){ .concurrency = 128, .tls_name = "localhost",
                               .path_fmt = "/api/v1/clusters/%s/checkin", .storm_timeout = 600,
                               .cfg_cache = 1024 };
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u': hub = optarg; break;
        case 'c': o.ca_file = optarg; break;
        case 'i': o.ids_dir = optarg; break;
        case 'N': o.tls_name = optarg; break;
        case 'p':
            /* exactly one %s and no other conversion */
            if (!strstr(optarg, "%s") || strchr(strstr(optarg, "%s") + 2, '%') ||
                strchr(optarg, '%') != strstr(optarg, "%s")) {
                fprintf(stderr, "resedge-sim: --path needs exactly one %%s\n");
                return 2;
            }
            o.path_fmt = optarg;
            break;
        case 'P': o.hub_pid_file = optarg; break;
        case 'E': o.codes_file = optarg; break;
        case 'M': o.mint_dir = optarg; break;
        case 'R': o.restart_cmd = optarg; break;
        case 'n':
        case 'C':
        case 'K':
        case 'T':
            v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > 10000000) {
                fprintf(stderr, "resedge-sim: bad number '%s'\n", optarg);
                return 2;
            }
            if (c == 'n')
                o.agents = (unsigned)v;
            else if (c == 'C')
                o.concurrency = v > 20000 ? 20000 : (unsigned)v;
            else if (c == 'K')
                o.cfg_cache = (unsigned)v;
            else
                o.storm_timeout = (double)v;
            break;
        case 'x':
            if (o.n_phases >= SIM_MAX_PHASES || sim_phase_parse(&o.phases[o.n_phases], optarg) < 0) {
                fprintf(stderr, "resedge-sim: bad or too many phases at '%s'\n", optarg);
                return 2;
            }
            o.n_phases++;
            break;
        case 'h': fputs(usage_run, stdout); return 0;
        default: fputs(usage_run, stderr); return 2;
        }
    }
    if (!hub || !o.ca_file || o.n_phases == 0 || optind != argc) {
        fprintf(stderr, "resedge-sim: --hub, --ca and a --phase are required\n%s",
                usage_run);
        return 2;
    }
    if (parse_hub(&o, hub, host, sizeof(host)) < 0) {
        fprintf(stderr, "resedge-sim: --hub must be https://127.0.0.1:PORT, not '%s'\n", hub);
        return 2;
    }
    return sim_run(&o) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("resedge-sim " RE_VERSION "\n");
        return 0;
    }
    if (strcmp(argv[1], "issue") == 0)
        return cmd_issue(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    fprintf(stderr, "resedge-sim: unknown command '%s'\n%s", argv[1], usage_main);
    return 2;
}
