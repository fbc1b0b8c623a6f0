/* issue.c - the simulator's bulk identities: one fresh key and certificate
 * per cluster, signed in process with the hub's CA key (an admin tool run on
 * the hub machine), serials recorded in the hub's database in one
 * transaction. `resedge-hub issue-cert` does the same one process per
 * certificate, which is too slow for 100,000 clusters. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "clock.h"
#include "crypto.h"
#include "error.h"
#include "fsutil.h"
#include "hub.h"
#include "inventory/db.h"
#include "sim.h"

#define ISSUE_BACKDATE_S 300
#define ISSUE_MAX_NAMES  2000000

struct issue_job {
    const struct sim_issue_opts *o;
    const char *trust_domain;
    struct re_ca *ca;               /* this thread's, parsed once */
    const struct re_buf *shared_key, *shared_pub;   /* --shared-key, else NULL */
    unsigned days;
    char **names;
    char (*serials)[64];
    size_t n;
    unsigned tid, nthreads;
    atomic_size_t *done;
    atomic_int *failed;
    int64_t now;
};

static int write_file(const char *dir, const char *name, const char *ext, const struct re_buf *b,
                      mode_t mode)
{
    char path[PATH_MAX];
    FILE *f;
    int r = re_snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
    if (r < 0)
        return r;
    /* Not atomic on purpose: thousands of throw-away test identities. */
    f = fopen(path, "w");
    if (!f)
        return re_from_errno(errno);
    if (fchmod(fileno(f), mode) < 0 || fwrite(b->ptr, 1, b->len, f) != b->len) {
        r = re_from_errno(errno ? errno : EIO);
        fclose(f);
        return r;
    }
    return fclose(f) == 0 ? 0 : re_from_errno(errno);
}

static int issue_one(struct issue_job *j, size_t i)
{
    struct re_buf key, pub, crt;
    struct re_cert_info info;
    char uri[320];
    int r;
    re_buf_init(&key, RE_PEM_MAX);
    re_buf_init(&pub, RE_PEM_MAX);
    re_buf_init(&crt, RE_PEM_MAX);
    struct re_cert_spec spec = {
        .cn = j->names[i], .uri_san = uri, .client_auth = true,
        .not_before = j->now - ISSUE_BACKDATE_S, .not_after = j->now + (int64_t)j->days * 86400,
    };
    if ((r = re_snprintf(uri, sizeof(uri), "spiffe://%s/cluster/%s", j->trust_domain,
                         j->names[i])) < 0)
        goto out;
    if (j->shared_key)
        r = re_buf_append(&key, j->shared_key->ptr, j->shared_key->len) < 0 ? -RE_ENOMEM :
            re_buf_append(&pub, j->shared_pub->ptr, j->shared_pub->len);
    else if ((r = re_key_generate(&key)) == 0)
        r = re_key_public_pem(&pub, key.ptr);
    if (r < 0 || (r = re_ca_issue(&crt, j->ca, pub.ptr, &spec)) < 0 ||
        (r = re_cert_parse(&info, crt.ptr, crt.len, false)) < 0 ||
        (r = write_file(j->o->out_dir, j->names[i], "key", &key, 0600)) < 0 ||
        (r = write_file(j->o->out_dir, j->names[i], "crt", &crt, 0644)) < 0)
        goto out;
    memcpy(j->serials[i], info.serial, sizeof(info.serial));
out:
    re_buf_release(&key);
    re_buf_release(&pub);
    re_buf_release(&crt);
    return r;
}

static void *issue_thread(void *arg)
{
    struct issue_job *j = arg;
    for (size_t i = j->tid; i < j->n && !atomic_load(j->failed); i += j->nthreads) {
        int r = issue_one(j, i);
        if (r < 0) {
            fprintf(stderr, "resedge-sim: cannot issue for '%s': %s\n", j->names[i],
                    re_strerror(r));
            atomic_store(j->failed, r);
            break;
        }
        size_t d = atomic_fetch_add(j->done, 1) + 1;
        if (d % 10000 == 0)
            fprintf(stderr, "resedge-sim: %zu of %zu identities\n", d, j->n);
    }
    return NULL;
}

/* Names from a file, one a line, each a plausible cluster name. */
static int read_names(char ***out, size_t *n_out, const char *path)
{
    struct re_buf text;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int r;
    re_buf_init(&text, (size_t)ISSUE_MAX_NAMES * 64);
    if ((r = re_read_file(&text, path)) < 0)
        goto out;
    for (char *p = text.ptr, *end = text.ptr + text.len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len > 0) {
            if (len > 63 || memchr(p, '/', len) || p[0] == '.') {
                r = -RE_EINVAL;
                goto out;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                char **t = realloc(names, nc * sizeof(*t));
                if (!t) {
                    r = -RE_ENOMEM;
                    goto out;
                }
                names = t;
                cap = nc;
            }
            if (!(names[n] = strndup(p, len))) {
                r = -RE_ENOMEM;
                goto out;
            }
            n++;
        }
        p += len + (nl ? 1 + (len && p[len] == '\r') : 0);
        if (!nl)
            break;
    }
    *out = names;
    *n_out = n;
    names = NULL;
    r = 0;
out:
    if (names) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    re_buf_release(&text);
    return r;
}

static int record_serials(const char *hub_dir, char **names, char (*serials)[64], size_t n)
{
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t missing = 0;
    int r;
    if ((r = re_path_join(path, sizeof(path), hub_dir, HUB_DB_FILE)) < 0 ||
        (r = db_open(&db, path)) < 0)
        goto out;
    if ((r = db_begin(db)) < 0)
        goto out;
    if (sqlite3_prepare_v2(db, "UPDATE clusters SET cert_serial = ?2, revoked = 0 WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        r = -RE_EDB;
        goto rollback;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, serials[i], -1, SQLITE_STATIC);
        if ((r = db_err(sqlite3_step(st))) < 0)
            goto rollback;
        if (sqlite3_changes(db) != 1 && missing++ < 5)
            fprintf(stderr, "resedge-sim: no cluster '%s' in the inventory\n", names[i]);
    }
    if (missing) {
        r = -RE_ENOENT;
        goto rollback;
    }
    sqlite3_finalize(st);
    st = NULL;
    r = db_commit(db);
    goto out;
rollback:
    sqlite3_finalize(st);
    st = NULL;
    db_rollback(db);
out:
    db_close(db);
    return r;
}

int sim_issue(const struct sim_issue_opts *o)
{
    struct hub_config cfg;
    struct re_buf err, ca_crt, ca_key, index, skey, spub;
    char path[PATH_MAX];
    char **names = NULL;
    char (*serials)[64] = NULL;
    size_t n = 0;
    pthread_t th[64];
    struct issue_job jobs[64];
    atomic_size_t done = 0;
    atomic_int failed = 0;
    unsigned nth = o->threads ? o->threads : 1, started = 0;
    double t0 = (double)re_mono_ms();
    int r;

    hub_config_defaults(&cfg);
    re_buf_init(&err, 4096);
    re_buf_init(&ca_crt, RE_PEM_MAX);
    re_buf_init(&ca_key, RE_PEM_MAX);
    re_buf_init(&index, (size_t)ISSUE_MAX_NAMES * 64);
    re_buf_init(&skey, RE_PEM_MAX);
    re_buf_init(&spub, RE_PEM_MAX);
    memset(jobs, 0, sizeof(jobs));
    if (nth > 64)
        nth = 64;
    if ((r = hub_config_load(&cfg, o->hub_dir, &err)) < 0) {
        fprintf(stderr, "resedge-sim: %s\n", err.len ? err.ptr : re_strerror(r));
        goto out;
    }
    if ((r = re_path_join(path, sizeof(path), o->hub_dir, HUB_CA_CRT)) < 0 ||
        (r = re_read_file(&ca_crt, path)) < 0 ||
        (r = re_path_join(path, sizeof(path), o->hub_dir, HUB_CA_KEY)) < 0 ||
        (r = re_read_file(&ca_key, path)) < 0 || (r = re_buf_append(&ca_crt, "", 1)) < 0 ||
        (r = re_buf_append(&ca_key, "", 1)) < 0) {
        fprintf(stderr, "resedge-sim: cannot read the CA in '%s/tls': %s\n", o->hub_dir,
                re_strerror(r));
        goto out;
    }
    if ((r = read_names(&names, &n, o->names_file)) < 0) {
        fprintf(stderr, "resedge-sim: cannot read names from '%s': %s\n", o->names_file,
                re_strerror(r));
        goto out;
    }
    if (n == 0) {
        fprintf(stderr, "resedge-sim: no names in '%s'\n", o->names_file);
        r = -RE_EINVAL;
        goto out;
    }
    if (mkdir(o->out_dir, 0700) < 0 && errno != EEXIST) {
        r = re_from_errno(errno);
        fprintf(stderr, "resedge-sim: cannot create '%s': %s\n", o->out_dir, re_strerror(r));
        goto out;
    }
    if (!(serials = calloc(n, sizeof(*serials)))) {
        r = -RE_ENOMEM;
        goto out;
    }
    if (o->shared_key && ((r = re_key_generate(&skey)) < 0 ||
                          (r = re_key_public_pem(&spub, skey.ptr)) < 0)) {
        fprintf(stderr, "resedge-sim: cannot make the shared key: %s\n", re_strerror(r));
        goto out;
    }
    for (unsigned t = 0; t < nth; t++) {
        jobs[t] = (struct issue_job){
            .o = o, .trust_domain = cfg.trust_domain,
            .shared_key = o->shared_key ? &skey : NULL, .shared_pub = o->shared_key ? &spub : NULL,
            .days = o->days ? o->days : cfg.cert_lifetime_days, .names = names,
            .serials = serials, .n = n, .tid = t, .nthreads = nth, .done = &done,
            .failed = &failed, .now = re_time(),
        };
        /* a CA per thread: one re_ca serializes its signatures */
        if ((r = re_ca_load(&jobs[t].ca, ca_crt.ptr, ca_key.ptr)) < 0) {
            fprintf(stderr, "resedge-sim: cannot load the CA in '%s/tls': %s\n", o->hub_dir,
                    re_strerror(r));
            atomic_store(&failed, r);
            break;
        }
        if (pthread_create(&th[t], NULL, issue_thread, &jobs[t]) != 0) {
            atomic_store(&failed, -RE_ENOMEM);
            break;
        }
        started++;
    }
    for (unsigned t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    if ((r = atomic_load(&failed)) < 0)
        goto out;
    double t1 = (double)re_mono_ms();
    if ((r = record_serials(o->hub_dir, names, serials, n)) < 0) {
        fprintf(stderr, "resedge-sim: cannot record serials in '%s/%s': %s\n", o->hub_dir,
                HUB_DB_FILE, re_strerror(r));
        goto out;
    }
    for (size_t i = 0; i < n && r == 0; i++)
        r = re_buf_printf(&index, "%s\n", names[i]);
    if (r < 0 || (r = re_path_join(path, sizeof(path), o->out_dir, "index")) < 0 ||
        (r = re_write_file_atomic(path, index.ptr, index.len, 0644)) < 0) {
        fprintf(stderr, "resedge-sim: cannot write the index: %s\n", re_strerror(r));
        goto out;
    }
    fprintf(stderr, "resedge-sim: issued %zu identities in %.1f s (%u threads, %.0f/s), "
            "serials recorded in %.2f s\n", n, (t1 - t0) / 1000.0, nth,
            (double)n / ((t1 - t0 + 1) / 1000.0), ((double)re_mono_ms() - t1) / 1000.0);
    r = 0;
out:
    if (names) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    free(serials);
    for (unsigned t = 0; t < nth; t++)
        re_ca_free(jobs[t].ca);
    if (skey.ptr)
        mbedtls_platform_zeroize(skey.ptr, skey.len);
    re_buf_release(&skey);
    re_buf_release(&spub);
    hub_config_release(&cfg);
    re_buf_release(&err);
    re_buf_release(&ca_crt);
    re_buf_release(&ca_key);
    re_buf_release(&index);
    return r;
}
