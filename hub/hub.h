/* hub.h - the hub process's central state, shared by its modules. */
#ifndef HUB_HUB_H
#define HUB_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <uv.h>

struct server;
struct re_buf;
struct metrics;

/* Every limit a remote party can push against; all set from [server] in hub.conf. */
struct hub_limits {
    size_t max_header_bytes;        /* 431 past it */
    size_t max_body_bytes;          /* 413 past it */
    int max_json_depth;             /* 400 past it */
    unsigned max_connections;       /* further accepts are closed at once */
    unsigned header_timeout_ms;     /* whole request head must arrive within */
    unsigned idle_timeout_ms;       /* keep-alive idle */
    unsigned body_timeout_ms;       /* whole body must arrive within */
    unsigned max_requests_per_conn; /* then Connection: close */
};

struct hub_config {
    char *dir;                      /* state directory */
    char *listen;                   /* "127.0.0.1:8443" */
    char *trust_domain;             /* SPIFFE trust domain, "resedge" */
    char *log_file;                 /* NULL: stderr */
    int log_level;
    unsigned cert_lifetime_days;    /* issued client certificates */
    unsigned ticket_rotate_s;       /* TLS session ticket key rotation */
    struct hub_limits limits;
    /* [gitops] push mirror (mirror.h); read at start, not on SIGHUP. */
    char *mirror_url;               /* mirror: https://, ssh://, file:// or a path; NULL: none */
    char *mirror_credentials;       /* mirror_credentials: file with "user:token" or a token */
    unsigned mirror_retry_max_ms;   /* mirror_retry_max: backoff cap (default 5 min) */
    /* [tenancy] technician_groups: the group paths (space separated) under
     * which technicians may create clusters; default "/stores". */
    char *technician_groups;
};

struct hub {
    uv_loop_t *loop;
    struct hub_config cfg;
    sqlite3 *db;
    struct server *server;
    struct metrics *metrics;
    void *gitops;                   /* struct gitops *, when the GitOps writer runs */
    bool reconcile_at_start;        /* serve --reconcile: render all even after a clean stop */
    bool stopping;
};

/* Paths inside the state directory. */
#define HUB_DB_FILE      "hub.db"
#define HUB_CONF_FILE    "hub.conf"
#define HUB_CA_CRT       "tls/ca.crt"
#define HUB_CA_KEY       "tls/ca.key"
#define HUB_SERVER_CRT   "tls/server.crt"
#define HUB_SERVER_KEY   "tls/server.key"
#define HUB_ADMIN_CRT    "tls/admin.crt"
#define HUB_ADMIN_KEY    "tls/admin.key"
#define HUB_TICKET_KEYS  "tls/ticket.keys"
#define HUB_CTL_CONF     "resedgectl.conf"
#define HUB_LOCK_FILE    "hub.lock"

/* Defaults of hub_config (and of a new hub.conf). */
void hub_config_defaults(struct hub_config *cfg);
/* Loads DIR/hub.conf over the defaults; err gets "file:line: message". */
int hub_config_load(struct hub_config *cfg, const char *dir, struct re_buf *err);
void hub_config_release(struct hub_config *cfg);

#endif
