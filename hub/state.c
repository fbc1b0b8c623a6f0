/* state.c - creates the hub's state directory and issues certificates from its CA. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "clock.h"
#include "crypto.h"
#include "error.h"
#include "fsutil.h"
#include "hub.h"
#include "inventory/db.h"
#include "state.h"

#define CA_LIFETIME_S (10LL * 365 * 86400)
#define SERVER_LIFETIME_S (2LL * 365 * 86400)
#define BACKDATE_S 300   /* peers check validity with no leeway */

static int dir_is_empty_or_absent(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int empty = 1;
    if (!d)
        return errno == ENOENT ? 1 : re_from_errno(errno);
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

static int write_in(const char *dir, const char *name, const struct re_buf *b, mode_t mode)
{
    char path[PATH_MAX];
    int r = re_path_join(path, sizeof(path), dir, name);
    return r < 0 ? r : re_write_file_atomic(path, b->ptr, b->len, mode);
}

static int read_in(const char *dir, const char *name, struct re_buf *out)
{
    char path[PATH_MAX];
    int r = re_path_join(path, sizeof(path), dir, name);
    return r < 0 ? r : re_read_file(out, path);
}

/* Splits --san values into DNS names and IP addresses. */
static int server_cert(struct re_buf *crt, const char *ca_crt, const char *ca_key,
                       const char *pub, const struct state_init_opts *o)
{
    const char *dns[34] = { "localhost" }, *ips[34] = { "127.0.0.1", "::1" };
    size_t nd = 1, ni = 2;
    unsigned char addr[16];
    int64_t now = re_time();
    if (o->n_sans > 32)
        return -RE_ETOOBIG;
    for (size_t i = 0; i < o->n_sans; i++) {
        if (inet_pton(AF_INET, o->sans[i], addr) == 1 || inet_pton(AF_INET6, o->sans[i], addr) == 1)
            ips[ni++] = o->sans[i];
        else
            dns[nd++] = o->sans[i];
    }
    struct re_cert_spec spec = {
        .cn = "resedge-hub", .dns_sans = dns, .ip_sans = ips, .server_auth = true,
        .not_before = now - BACKDATE_S, .not_after = now + SERVER_LIFETIME_S,
    };
    return re_cert_issue(crt, ca_crt, ca_key, pub, &spec);
}

static int write_conf(const char *tmp, const struct state_init_opts *o, const char *final_dir)
{
    struct re_buf b;
    int r;
    const char *listen = o->listen ? o->listen : "127.0.0.1:8443";
    re_buf_init(&b, 64 * 1024);
    r = re_buf_printf(&b,
        "# Res-Edge hub configuration. Durations: 500ms, 30s, 5m, 24h, 7d.\n"
        "[server]\nlisten = %s\nmax_header_bytes = 16384\nmax_body_bytes = 8388608\n"
        "max_json_depth = 32\nmax_connections = 20000\nheader_timeout = 10s\n"
        "body_timeout = 30s\nidle_timeout = 60s\nmax_requests_per_connection = 1000\n\n"
        "[pki]\ntrust_domain = %s\ncert_lifetime = 30d\nticket_rotate = 12h\n\n"
        "[log]\nlevel = info\n\n"
        "# Group paths (space separated) under which technicians may create clusters.\n"
        "[tenancy]\ntechnician_groups = /stores\n",
        listen, o->trust_domain ? o->trust_domain : "resedge");
    if (r == 0)
        r = write_in(tmp, HUB_CONF_FILE, &b, 0600);
    if (r == 0) {
        /* The profile dials the listen address; a wildcard means this host. */
        const char *colon = strrchr(listen, ':');
        struct re_str host = colon ? (struct re_str){ listen, (size_t)(colon - listen) }
                                   : re_str_c(listen);
        if (host.len == 0 || re_str_eq_c(host, "0.0.0.0"))
            host = RE_STR_LIT("127.0.0.1");
        re_buf_reset(&b);
        r = re_buf_printf(&b,
            "# resedgectl profile for the hub's admin (written by resedge-hub init).\n"
            "[hub]\nurl = https://%.*s%s\nca = %s/" HUB_CA_CRT "\ncert = %s/" HUB_ADMIN_CRT
            "\nkey = %s/" HUB_ADMIN_KEY "\n",
            (int)host.len, host.ptr, colon ? colon : ":8443", final_dir, final_dir, final_dir);
        if (r == 0)
            r = write_in(tmp, HUB_CTL_CONF, &b, 0600);
    }
    re_buf_release(&b);
    return r;
}

int state_issue_cert(const char *dir, sqlite3 *db, const char *trust_domain, const char *kind,
                     const char *name, const char *role, unsigned lifetime_days,
                     struct re_buf *cert_out, struct re_buf *key_out)
{
    struct re_buf ca_crt, ca_key, key, csr_pub, crt;
    struct re_cert_info info;
    char uri[320];
    sqlite3_stmt *st = NULL;
    int64_t now = re_time();
    int r;

    re_buf_init(&ca_crt, RE_PEM_MAX);
    re_buf_init(&ca_key, RE_PEM_MAX);
    re_buf_init(&key, RE_PEM_MAX);
    re_buf_init(&csr_pub, RE_PEM_MAX);
    re_buf_init(&crt, RE_PEM_MAX);
    if ((r = re_snprintf(uri, sizeof(uri), "spiffe://%s/%s/%s", trust_domain, kind, name)) < 0 ||
        (r = read_in(dir, HUB_CA_CRT, &ca_crt)) < 0 || (r = read_in(dir, HUB_CA_KEY, &ca_key)) < 0 ||
        (r = re_key_generate(&key)) < 0)
        goto out;
    /* The public key goes through a CSR, as it would from a real enrollee. */
    {
        struct re_buf csr;
        re_buf_init(&csr, RE_PEM_MAX);
        r = re_csr_create(&csr, key.ptr, name, NULL);
        if (r == 0)
            r = re_csr_verify(&csr_pub, csr.ptr, csr.len);
        re_buf_release(&csr);
        if (r < 0)
            goto out;
    }
    struct re_cert_spec spec = {
        .cn = name, .uri_san = uri, .client_auth = true,
        .not_before = now - BACKDATE_S, .not_after = now + (int64_t)lifetime_days * 86400,
    };
    if ((r = re_cert_issue(&crt, ca_crt.ptr, ca_key.ptr, csr_pub.ptr, &spec)) < 0 ||
        (r = re_cert_parse(&info, crt.ptr, crt.len, false)) < 0)
        goto out;
    if (strcmp(kind, "user") == 0) {
        r = sqlite3_prepare_v2(db,
            "INSERT INTO users (name, role, cert_serial, created_at, created_by, updated_at, "
            "updated_by) VALUES (?1, ?2, ?3, ?4, 'user/admin', ?4, 'user/admin') "
            "ON CONFLICT(name) DO UPDATE SET role = ?2, cert_serial = ?3, revoked = 0, "
            "updated_at = ?4, version = version + 1", -1, &st, NULL);
    } else {
        r = sqlite3_prepare_v2(db, "UPDATE clusters SET cert_serial = ?3 WHERE name = ?1",
                               -1, &st, NULL);
    }
    if (r != SQLITE_OK) {
        r = -RE_EDB;
        goto out;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, role ? role : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, info.serial, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    if ((r = db_err(sqlite3_step(st))) < 0)
        goto out;
    if (sqlite3_changes(db) != 1) {
        r = -RE_ENOENT;
        goto out;
    }
    if ((r = re_buf_append(cert_out, crt.ptr, crt.len)) < 0 ||
        (r = re_buf_append(key_out, key.ptr, key.len)) < 0)
        goto out;
out:
    sqlite3_finalize(st);
    re_buf_release(&ca_crt);
    re_buf_release(&ca_key);
    re_buf_release(&key);
    re_buf_release(&csr_pub);
    re_buf_release(&crt);
    return r;
}

int state_init(const struct state_init_opts *o, struct re_buf *err)
{
    char tmp[PATH_MAX], path[PATH_MAX], abs_dir[PATH_MAX], parent[PATH_MAX];
    struct re_buf ca_key, ca_crt, srv_key, srv_pub, srv_crt, adm_crt, adm_key;
    sqlite3 *db = NULL;
    int64_t now = re_time();
    int r, created_tmp = 0;

    re_buf_init(&ca_key, RE_PEM_MAX);
    re_buf_init(&ca_crt, RE_PEM_MAX);
    re_buf_init(&srv_key, RE_PEM_MAX);
    re_buf_init(&srv_pub, RE_PEM_MAX);
    re_buf_init(&srv_crt, RE_PEM_MAX);
    re_buf_init(&adm_crt, RE_PEM_MAX);
    re_buf_init(&adm_key, RE_PEM_MAX);

    if ((r = dir_is_empty_or_absent(o->dir)) <= 0) {
        re_buf_printf(err, "refusing to initialize '%s': %s", o->dir,
                      r == 0 ? "it is not empty (a hub state directory already?)" : re_strerror(r));
        r = r == 0 ? -RE_EEXIST : r;
        goto out;
    }
    /* Absolute path for the profile; the parent must exist. */
    if ((r = re_snprintf(parent, sizeof(parent), "%s", o->dir)) < 0)
        goto out;
    {
        char *slash = strrchr(parent, '/');
        const char *base = slash ? slash + 1 : parent;
        char *rp;
        if (slash == parent)
            parent[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            parent[0] = '.', parent[1] = '\0';
        if (!(rp = realpath(parent, NULL))) {
            r = re_from_errno(errno);
            re_buf_printf(err, "cannot use '%s': %s", o->dir, re_strerror(r));
            goto out;
        }
        r = re_snprintf(abs_dir, sizeof(abs_dir), "%s/%s", strcmp(rp, "/") ? rp : "",
                        strcmp(base, "") ? base : ".");
        free(rp);
        if (r < 0)
            goto out;
    }
    if ((r = re_snprintf(tmp, sizeof(tmp), "%s.init-XXXXXX", abs_dir)) < 0)
        goto out;
    if (!mkdtemp(tmp)) {
        r = re_from_errno(errno);
        re_buf_printf(err, "cannot create '%s': %s", tmp, re_strerror(r));
        goto out;
    }
    created_tmp = 1;
    chmod(tmp, 0700);
    if ((r = re_path_join(path, sizeof(path), tmp, "tls")) < 0 || (r = re_mkdir_p(path, 0700)) < 0)
        goto fail;

    /* The CA, the hub's server identity. */
    struct re_cert_spec ca_spec = {
        .cn = "Res-Edge hub CA", .is_ca = true,
        .not_before = now - BACKDATE_S, .not_after = now + CA_LIFETIME_S,
    };
    if ((r = re_key_generate(&ca_key)) < 0 ||
        (r = re_cert_self_signed(&ca_crt, ca_key.ptr, &ca_spec)) < 0 ||
        (r = re_key_generate(&srv_key)) < 0)
        goto fail;
    {
        struct re_buf csr;
        re_buf_init(&csr, RE_PEM_MAX);
        r = re_csr_create(&csr, srv_key.ptr, "resedge-hub", NULL);
        if (r == 0)
            r = re_csr_verify(&srv_pub, csr.ptr, csr.len);
        re_buf_release(&csr);
        if (r < 0)
            goto fail;
    }
    if ((r = server_cert(&srv_crt, ca_crt.ptr, ca_key.ptr, srv_pub.ptr, o)) < 0 ||
        (r = write_in(tmp, HUB_CA_KEY, &ca_key, 0600)) < 0 ||
        (r = write_in(tmp, HUB_CA_CRT, &ca_crt, 0644)) < 0 ||
        (r = write_in(tmp, HUB_SERVER_KEY, &srv_key, 0600)) < 0 ||
        (r = write_in(tmp, HUB_SERVER_CRT, &srv_crt, 0644)) < 0 ||
        (r = write_conf(tmp, o, abs_dir)) < 0)
        goto fail;

    /* The inventory, and the admin user in it. */
    if ((r = re_path_join(path, sizeof(path), tmp, HUB_DB_FILE)) < 0 || (r = db_open(&db, path)) < 0)
        goto fail;
    if ((r = state_issue_cert(tmp, db, o->trust_domain ? o->trust_domain : "resedge", "user",
                              "admin", "admin", 365, &adm_crt, &adm_key)) < 0 ||
        (r = write_in(tmp, HUB_ADMIN_KEY, &adm_key, 0600)) < 0 ||
        (r = write_in(tmp, HUB_ADMIN_CRT, &adm_crt, 0644)) < 0)
        goto fail;
    db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    db_close(db);
    db = NULL;

    /* rename(2) replaces an empty directory atomically. */
    if (rename(tmp, abs_dir) < 0) {
        r = re_from_errno(errno);
        goto fail;
    }
    created_tmp = 0;
    r = re_fsync_dir(parent);
    goto out;
fail:
    if (!err->len)
        re_buf_printf(err, "cannot initialize '%s': %s", o->dir, re_strerror(r));
out:
    db_close(db);
    if (created_tmp)
        re_remove_tree(tmp);
    re_buf_release(&ca_key);
    re_buf_release(&ca_crt);
    re_buf_release(&srv_key);
    re_buf_release(&srv_pub);
    re_buf_release(&srv_crt);
    re_buf_release(&adm_crt);
    re_buf_release(&adm_key);
    return r;
}

int state_lock(const char *dir)
{
    char path[PATH_MAX];
    int fd, r = re_path_join(path, sizeof(path), dir, HUB_LOCK_FILE);
    if (r < 0)
        return r;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return re_from_errno(errno);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? -RE_EBUSY : re_from_errno(errno);
        close(fd);
        return r;
    }
    return fd;
}
