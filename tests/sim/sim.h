/* sim.h - resedge-sim, the fleet simulator of `make bench`: bulk identities
 * issued from the hub's CA (sim_issue) and a libuv load engine driving many
 * simulated agents' check-ins against a real hub over mutual TLS (sim_run). */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>

/* ---- bulk identities (issue.c) ---- */

struct sim_issue_opts {
    const char *hub_dir;            /* the hub's state directory (reads tls/ca.*) */
    const char *names_file;         /* cluster names, one a line */
    const char *out_dir;            /* writes NAME.crt, NAME.key and index */
    unsigned threads;               /* 1..64 */
    unsigned days;                  /* 0: the hub's cert_lifetime */
    bool shared_key;                /* one key for every identity (a signature each) */
};

/* Issues one fresh key and certificate per cluster (as the hub's enrollment
 * would: CN = name, URI SAN spiffe://<trust domain>/cluster/<name>, client
 * auth only, backdated 5 minutes), writes them to out_dir and records every
 * serial as the cluster's current one in the hub's database, in one
 * transaction. Prints progress and a summary to stderr. 0 or negative RE
 * error (-RE_ENOENT when a cluster is not in the inventory: nothing is
 * recorded then). */
int sim_issue(const struct sim_issue_opts *o);

/* ---- load (load.c) ---- */

enum sim_phase_kind {
    PH_PRIME,       /* every agent once, full handshake, retried until done */
    PH_RESUMED,     /* count check-ins as fast as possible, resuming sessions */
    PH_FULL,        /* count check-ins with full handshakes over `agents` agents */
    PH_RATE,        /* check-ins started at rate/s for secs, resuming */
    PH_RESTART,     /* runs the restart command */
    PH_STORM,       /* every agent once as fast as possible, resuming, retried */
    PH_SLEEP,       /* secs of nothing (hub idle figures) */
    PH_ENROLL,      /* every code of codes_file redeemed once, no certificate */
    PH_MINT,        /* every agent without a session gets one minted offline */
};

struct sim_phase {
    enum sim_phase_kind kind;
    unsigned long count;            /* PH_RESUMED, PH_FULL */
    unsigned agents;                /* PH_FULL: over the first N agents (0: all) */
    double rate;                    /* PH_RATE */
    double secs;                    /* PH_RATE, PH_SLEEP */
    unsigned concurrency;           /* "@C" suffix: overrides --concurrency */
};

#define SIM_MAX_PHASES 32

struct sim_run_opts {
    const char *host;               /* loopback IPv4 literal */
    unsigned port;
    const char *tls_name;           /* name checked in the server certificate */
    const char *ca_file;
    const char *ids_dir;            /* from sim_issue */
    unsigned agents;                /* 0: every identity in ids_dir/index */
    unsigned concurrency;           /* connections in flight, at most */
    const char *path_fmt;           /* request path, "%s" = cluster name */
    const char *hub_pid_file;       /* read at each phase: CPU and RSS of that pid */
    const char *restart_cmd;        /* PH_RESTART: run with sh -c */
    double storm_timeout;           /* seconds */
    unsigned cfg_cache;             /* per-agent TLS configurations kept */
    const char *codes_file;         /* PH_ENROLL: "CLUSTER CODE" lines */
    const char *mint_dir;           /* PH_MINT: the hub's state directory */
    struct sim_phase phases[SIM_MAX_PHASES];
    size_t n_phases;
};

/* Runs the phases in order; one JSON object a line on stdout per phase.
 * 0, or negative RE error when set-up failed. */
int sim_run(const struct sim_run_opts *o);

/* Parses "prime", "resumed:COUNT", "full:COUNT[:AGENTS]", "rate:R:SECS",
 * "restart", "storm", "sleep:SECS", "enroll", "mint", each with an optional "@C"
 * (connections in flight in that phase). -RE_EINVAL when malformed. */
int sim_phase_parse(struct sim_phase *out, const char *spec);

#endif
