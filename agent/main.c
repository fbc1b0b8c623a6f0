/* main.c - resedge-agent: the store-side daemon (enroll, run, status). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "clock.h"
#include "config.h"
#include "enroll.h"
#include "error.h"
#include "hubclient.h"
#include "log.h"
#include "materialize.h"
#include "oid.h"
#include "run.h"
#include "state.h"

static const char usage[] =
    "usage: resedge-agent <command> [options]\n"
    "\n"
    "Res-Edge agent: enrolls a store's cluster with the hub, reports it, and pulls\n"
    "its desired state.\n"
    "\n"
    "commands:\n"
    "  enroll   register this node with a one-time code\n"
    "  run      run the agent service\n"
    "  status   show this node's enrollment and applied revision\n"
    "\n"
    "'resedge-agent COMMAND --help' describes each command.\n";

static const char enroll_usage[] =
    "usage: resedge-agent enroll --hub https://HUB:PORT --code CODE\n"
    "                            --ca-fingerprint sha256:HEX [--state-dir DIR] [--force]\n"
    "\n"
    "Fetches the hub's CA and accepts it only if its SHA-256 fingerprint matches,\n"
    "generates this node's private key (it never leaves the node), sends a CSR with\n"
    "the one-time code and stores key, certificate, CA and hub URL in the state\n"
    "directory (default " AGENT_DEFAULT_STATE_DIR "). Nothing is written unless every\n"
    "check passes. --force replaces an existing enrollment (new hardware).\n";

static const char status_usage[] =
    "usage: resedge-agent status [--state-dir DIR] [-o text|json]\n"
    "\n"
    "Shows this node's enrollment and the revisions it pulled and applied; -o json\n"
    "prints one JSON object (times in RFC 3339). Exits 78 when not enrolled.\n";

/* Exit codes (packaging/man/resedge-agent.1 lists each): 0 done, 1 an
 * error (the message says why), 64 bad usage (sysexits EX_USAGE), 73 enroll
 * found an enrollment and no --force (EX_CANTCREAT), 78 not enrolled or
 * the configuration is invalid (AGENT_EX_CONFIG, EX_CONFIG). */
#define AGENT_EX_USAGE 64
#define AGENT_EX_ENROLLED 73

static volatile sig_atomic_t g_enroll_abort;

static int need_value(int i, int argc, const char *flag)
{
    if (i + 1 >= argc) {
        log_err("%s needs a value", flag);
        return -1;
    }
    return 0;
}

static int cmd_enroll(int argc, char **argv)
{
    struct enroll_opts o = { .state_dir = AGENT_DEFAULT_STATE_DIR,
                             .abort_flag = &g_enroll_abort };
    struct agent_state st = { 0 };
    struct re_buf err;
    int r, rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            fputs(enroll_usage, stdout);
            return 0;
        } else if (strcmp(f, "--force") == 0) {
            o.force = true;
        } else if (strcmp(f, "--hub") == 0 || strcmp(f, "--code") == 0 ||
                   strcmp(f, "--ca-fingerprint") == 0 || strcmp(f, "--state-dir") == 0) {
            if (need_value(i, argc, f) < 0)
                return 64;
            const char *v = argv[++i];
            if (strcmp(f, "--hub") == 0)
                o.hub_url = v;
            else if (strcmp(f, "--code") == 0)
                o.code = v;
            else if (strcmp(f, "--ca-fingerprint") == 0)
                o.ca_fingerprint = v;
            else
                o.state_dir = v;
        } else {
            log_err("unknown option '%s'", f);
            fputs(enroll_usage, stderr);
            return 64;
        }
    }
    if (!o.hub_url || !o.code || !o.ca_fingerprint) {
        log_err("--hub, --code and --ca-fingerprint are required");
        fputs(enroll_usage, stderr);
        return 64;
    }
    re_buf_init(&err, 4096);
    if (hubclient_global_init() < 0) {
        log_err("cannot initialize libcurl");
        goto out;
    }
    r = enroll_run(&st, &o, &err);
    hubclient_global_cleanup();
    if (r < 0) {
        log_err("enrollment failed: %s", err.ptr ? err.ptr : re_strerror(r));
        fprintf(stderr, "nothing was written to '%s'\n", o.state_dir);
        rc = r == -RE_EEXIST ? AGENT_EX_ENROLLED : 1;
        goto out;
    }
    char until[32];
    re_time_iso(until, sizeof(until), st.not_after);
    printf("enrolled cluster '%s' with %s\n"
           "  identity:     %s\n"
           "  CA:           pinned (%s), in %s/%s\n"
           "  key:          %s/%s (generated here, mode 0600)\n"
           "  certificate:  %s/%s, valid until %s (renewed automatically)\n"
           "\n"
           "next: systemctl enable --now resedge-agent\n"
           "  or: resedge-agent run --state-dir %s\n",
           st.cluster, st.hub_url, st.identity, o.ca_fingerprint, o.state_dir, AGENT_CA_FILE,
           o.state_dir, st.key_name, o.state_dir, st.cert_name, until, o.state_dir);
    rc = 0;
out:
    agent_state_release(&st);
    re_buf_release(&err);
    return rc;
}

static void add_str_or_null(cJSON *o, const char *key, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static int print_json(cJSON *o)
{
    char *text = o ? cJSON_Print(o) : NULL;
    if (!text) {
        log_err("out of memory");
        cJSON_Delete(o);
        return 1;
    }
    puts(text);
    cJSON_free(text);
    cJSON_Delete(o);
    return 0;
}

static int cmd_status(int argc, char **argv)
{
    const char *dir = AGENT_DEFAULT_STATE_DIR;
    struct agent_state st = { 0 };
    struct agent_status s;
    struct re_buf err;
    char cur[RE_OID_BUF] = "", until[32], applied_at[32] = "";
    bool json = false;
    int r;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(status_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--state-dir") == 0 && need_value(i, argc, argv[i]) == 0) {
            dir = argv[++i];
            continue;
        }
        if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) &&
            need_value(i, argc, argv[i]) == 0) {
            const char *v = argv[++i];
            if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0) {
                log_err("unknown output format '%s': use text or json", v);
                return AGENT_EX_USAGE;
            }
            json = strcmp(v, "json") == 0;
            continue;
        }
        log_err("unknown option '%s'", argv[i]);
        fputs(status_usage, stderr);
        return AGENT_EX_USAGE;
    }
    re_buf_init(&err, 2048);
    r = agent_state_load(&st, dir, &err);
    if (r < 0) {
        const char *why = r == -RE_ENOENT ? NULL : err.ptr ? err.ptr : re_strerror(r);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            if (o) {
                cJSON_AddFalseToObject(o, "enrolled");
                cJSON_AddStringToObject(o, "state_dir", dir);
                add_str_or_null(o, "error", why);
            }
            print_json(o);
        } else if (!why) {
            printf("not enrolled (no %s/%s)\n", dir, AGENT_STATE_FILE);
        } else {
            printf("enrollment record damaged: %s\n", why);
        }
        re_buf_release(&err);
        return AGENT_EX_CONFIG;
    }
    agent_status_load(&s, dir);
    materialize_current(cur, dir);
    re_time_iso(until, sizeof(until), st.not_after);
    if (s.applied_at > 0)
        re_time_iso(applied_at, sizeof(applied_at), s.applied_at);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddTrueToObject(o, "enrolled");
            cJSON_AddStringToObject(o, "state_dir", dir);
            cJSON_AddStringToObject(o, "cluster", st.cluster);
            cJSON_AddStringToObject(o, "hub", st.hub_url);
            cJSON_AddStringToObject(o, "identity", st.identity);
            cJSON_AddStringToObject(o, "certificate", st.cert_name);
            cJSON_AddStringToObject(o, "certificate_not_after", until);
            add_str_or_null(o, "current", cur);
            add_str_or_null(o, "pulled_revision", s.pulled);
            add_str_or_null(o, "applied_revision", s.applied);
            add_str_or_null(o, "apply_result", s.apply_result);
            add_str_or_null(o, "mode", s.mode);
            add_str_or_null(o, "applied_at", applied_at);
        }
        agent_state_release(&st);
        re_buf_release(&err);
        return print_json(o);
    }
    printf("cluster:          %s\nhub:              %s\nidentity:         %s\n"
           "certificate:      %s (valid until %s)\ncurrent:          %s\n"
           "pulled revision:  %s\napplied revision: %s\napply result:     %s\n",
           st.cluster, st.hub_url, st.identity, st.cert_name, until, cur[0] ? cur : "none",
           s.pulled[0] ? s.pulled : "none", s.applied[0] ? s.applied : "none",
           s.apply_result[0] ? s.apply_result : "none");
    agent_state_release(&st);
    re_buf_release(&err);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    re_log_init("resedge-agent", RE_LOG_INFO);
    if (!cmd) {
        fputs(usage, stderr);
        return 64;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("resedge-agent %s\n", RE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "enroll") == 0)
        return cmd_enroll(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return agent_run_main(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    fprintf(stderr, "resedge-agent: unknown command '%s'\n\n%s", cmd, usage);
    return 64;
}
