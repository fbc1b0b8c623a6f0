/* gitstore.c - the hub's GitOps repository: a bare libgit2 repository with
 * one namespaced branch per cluster, written in batches into one pack each
 * (mempack + packbuilder of the new objects only), refs moved by CAS. */
#include <stdatomic.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <git2.h>
#include <git2/sys/commit.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include "error.h"
#include "gitstore.h"
#include "hash.h"
#include "oid.h"

#define REF_FMT   "refs/namespaces/%s/refs/heads/main"
#define HEAD_FMT  "refs/namespaces/%s/HEAD"
#define NAME_MAX_ 256
/* Each locked ref holds a file descriptor until its transaction ends. */
#define GITSTORE_REFS_PER_TX 200

struct proxy_backend {
    git_odb_backend parent;
    git_odb *real;
};

static int proxy_read(void **buf, size_t *len, git_object_t *type, git_odb_backend *b,
                      const git_oid *oid)
{
    struct proxy_backend *p = (struct proxy_backend *)b;
    git_odb_object *o = NULL;
    int g = git_odb_read(&o, p->real, oid);
    if (g < 0)
        return g;
    size_t n = git_odb_object_size(o);
    void *d = git_odb_backend_data_alloc(b, n ? n : 1);
    if (!d) {
        git_odb_object_free(o);
        return -1;
    }
    memcpy(d, git_odb_object_data(o), n);
    *buf = d;
    *len = n;
    *type = git_odb_object_type(o);
    git_odb_object_free(o);
    return 0;
}

static int proxy_read_prefix(git_oid *out, void **buf, size_t *len, git_object_t *type,
                             git_odb_backend *b, const git_oid *short_id, size_t n)
{
    struct proxy_backend *p = (struct proxy_backend *)b;
    git_odb_object *o = NULL;
    int g = git_odb_read_prefix(&o, p->real, short_id, n);
    if (g < 0)
        return g;
    git_oid_cpy(out, git_odb_object_id(o));
    git_odb_object_free(o);
    return proxy_read(buf, len, type, b, out);
}

static int proxy_read_header(size_t *len, git_object_t *type, git_odb_backend *b,
                             const git_oid *oid)
{
    return git_odb_read_header(len, type, ((struct proxy_backend *)b)->real, oid);
}

static int proxy_exists(git_odb_backend *b, const git_oid *oid)
{
    return git_odb_exists_ext(((struct proxy_backend *)b)->real, oid,
                              GIT_ODB_LOOKUP_NO_REFRESH);
}

static int proxy_exists_prefix(git_oid *out, git_odb_backend *b, const git_oid *short_id,
                               size_t n)
{
    return git_odb_exists_prefix(out, ((struct proxy_backend *)b)->real, short_id, n);
}

static void proxy_free(git_odb_backend *b)
{
    free(b);
}

static int proxy_new(git_odb_backend **out, git_odb *real)
{
    struct proxy_backend *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    if (git_odb_init_backend(&p->parent, GIT_ODB_BACKEND_VERSION) < 0) {
        free(p);
        return -1;
    }
    p->real = real;
    p->parent.read = proxy_read;
    p->parent.read_prefix = proxy_read_prefix;
    p->parent.read_header = proxy_read_header;
    p->parent.exists = proxy_exists;
    p->parent.exists_prefix = proxy_exists_prefix;
    p->parent.free = proxy_free;
    *out = &p->parent;
    return 0;
}

/* ---- object id cache -------------------------------------------------------
 * Content -> object id for blobs and trees written or seen recently, so the
 * same file in 100,000 clusters is hashed (SHA-1) and looked up once. The key
 * is the whole content (memcmp on a hit), never a hash alone: hostile
 * metadata cannot make one cluster's file stand in for another's. Entries
 * name objects that are on disk or in the open batch's mempack; the cache is
 * emptied when a batch is aborted and when objects/pack changed behind our
 * back (gc, repack). When it is full, the entries never hit since the last
 * eviction go (a cluster's own files: its name is in them) and the shared
 * ones stay: a full render of 100,000 clusters makes over a million
 * objects, and clearing everything every ~130,000 of them made every shared
 * file and folder miss again. */

#define OIDC_SLOTS      (1u << 18)          /* power of two */
#define OIDC_MAX_N      (OIDC_SLOTS / 2)
#define OIDC_MAX_BYTES  (48u << 20)
#define OIDC_MAX_KEY    (64u << 10)         /* larger objects are not cached */

struct oidc_ent {
    uint64_t h;
    char *key;                  /* NULL: empty slot */
    uint32_t len;
    uint16_t type;
    uint16_t hot;               /* hit since the last eviction */
    git_oid oid;
};

struct oidcache {
    struct oidc_ent *v;         /* OIDC_SLOTS, allocated on first insert */
    size_t n, bytes;
    uint64_t hits, misses;
};

static void oidc_clear(struct oidcache *c)
{
    if (!c->v)
        return;
    for (size_t i = 0; i < OIDC_SLOTS; i++)
        free(c->v[i].key);
    memset(c->v, 0, OIDC_SLOTS * sizeof(*c->v));
    c->n = c->bytes = 0;
}

static void oidc_free(struct oidcache *c)
{
    oidc_clear(c);
    free(c->v);
    c->v = NULL;
}

static struct oidc_ent *oidc_slot_in(struct oidc_ent *v, uint32_t type, const void *key,
                                     size_t len, uint64_t h)
{
    for (size_t i = (size_t)h & (OIDC_SLOTS - 1);; i = (i + 1) & (OIDC_SLOTS - 1)) {
        struct oidc_ent *e = &v[i];
        if (!e->key || (e->h == h && e->len == len && e->type == type &&
                        memcmp(e->key, key, len) == 0))
            return e;
    }
}

static const git_oid *oidc_get(struct oidcache *c, uint32_t type, const void *key, size_t len)
{
    if (!c->v || len > OIDC_MAX_KEY)
        return NULL;
    struct oidc_ent *e = oidc_slot_in(c->v, type, key, len, re_hash64(key, len, type));
    if (e->key) {
        c->hits++;
        e->hot = 1;
        return &e->oid;
    }
    c->misses++;
    return NULL;
}

/* Keeps the entries hit since the last eviction (into a new table: open
 * addressing cannot just blank slots), or clears all when they alone would
 * fill half the cache or memory is short. */
static void oidc_evict_cold(struct oidcache *c)
{
    size_t keep = 0, kbytes = 0;
    for (size_t i = 0; i < OIDC_SLOTS; i++)
        if (c->v[i].key && c->v[i].hot) {
            keep++;
            kbytes += c->v[i].len;
        }
    struct oidc_ent *nv = keep <= OIDC_MAX_N / 2 && kbytes <= OIDC_MAX_BYTES / 2
                              ? calloc(OIDC_SLOTS, sizeof(*nv)) : NULL;
    if (!nv) {
        oidc_clear(c);
        return;
    }
    for (size_t i = 0; i < OIDC_SLOTS; i++) {
        struct oidc_ent *e = &c->v[i];
        if (!e->key)
            continue;
        if (!e->hot) {
            free(e->key);
            continue;
        }
        struct oidc_ent *d = oidc_slot_in(nv, e->type, e->key, e->len, e->h);
        *d = *e;
        d->hot = 0;
    }
    free(c->v);
    c->v = nv;
    c->n = keep;
    c->bytes = kbytes;
}

/* Best effort: a full or failed cache only costs speed. */
static void oidc_put(struct oidcache *c, uint32_t type, const void *key, size_t len,
                     const git_oid *oid)
{
    if (len > OIDC_MAX_KEY)
        return;
    if (!c->v && !(c->v = calloc(OIDC_SLOTS, sizeof(*c->v))))
        return;
    if (c->n >= OIDC_MAX_N || c->bytes + len > OIDC_MAX_BYTES)
        oidc_evict_cold(c);
    uint64_t h = re_hash64(key, len, type);
    struct oidc_ent *e = oidc_slot_in(c->v, type, key, len, h);
    if (e->key)
        return;
    if (!(e->key = malloc(len ? len : 1)))
        return;
    memcpy(e->key, key, len);
    e->h = h;
    e->len = (uint32_t)len;
    e->type = (uint16_t)type;
    e->hot = 0;
    e->oid = *oid;
    c->n++;
    c->bytes += len;
}

/* ---- the store ------------------------------------------------------------ */

/*
 * Two views of one repository. `repo` is the real one (refs, reading).
 * `wrepo` is the writer: its object database holds only the in-memory
 * mempack (new objects) and a read-only proxy to the real object database
 * that looks objects up WITHOUT rescanning objects/pack. libgit2 rescans the
 * pack directory on every lookup miss, and every new object is a miss before
 * it is written: through the real odb that was one directory scan per new
 * tree or commit. The writer's odb has no backend that can refresh.
 */

struct gitstore {
    git_repository *repo;
    bool unfinished_batch;      /* opened as sole writer: a killed batch's marker was found */
    git_odb *odb;               /* repo's odb: loose + packs */
    git_odb *podb;              /* objects/pack only: "is it on disk?" */
    git_repository *wrepo;
    git_odb *wodb;              /* mempack + proxy */
    git_odb_backend *mempack;   /* owned by wodb */
    char *path;
    const char *gitdir;         /* git_repository_path(repo), ends in '/' */
    unsigned flags;
    bool batch_open;
    struct oidcache oids;
    struct timespec pack_stamp; /* objects/pack mtime after our last pack */
    struct head_job *head_job;  /* HEAD symrefs being written, or NULL */
    pthread_t head_th;
    struct gitstore_stats stats;
};

/* The HEAD symrefs of a chunk's new branches, written on a thread of their
 * own while the caller goes on staging: creating two inodes per cluster (its
 * folder and HEAD) was a fifth of a 100,000-cluster render. Waited for by
 * the next chunk, the batch's commit or abort, and gitstore_free. */
struct head_job {
    const struct gitstore *gs;  /* gitdir and flags only */
    char (*names)[64];
    size_t n;
    int rc;
    char err[300];
};

struct staged {
    char refname[NAME_MAX_];
    char cluster[64];
    git_oid old;
    bool had_old;
    bool loose;                 /* the branch is a loose ref file: moved by libgit2 */
    git_oid new_;
};

struct gitstore_batch {
    struct gitstore *gs;
    git_oid *objs;              /* new objects in mempack (may repeat) */
    size_t n_objs, cap_objs;
    struct staged *st;
    size_t n_st, cap_st;
    char (*fix)[64];            /* clusters whose HEAD symref is missing */
    size_t n_fix, cap_fix;
    size_t chunk;               /* flush after this many commits */
    size_t mem;                 /* bytes put into the mempack */
    char marker[4200];          /* BATCH_MARKER file while the batch runs */
};

static int git_err(struct re_buf *err, const char *what, int gerr)
{
    const git_error *e = git_error_last();
    const char *msg = e && e->message ? e->message : "unknown error";
    int rc = -RE_EGIT;
    if (gerr == GIT_EMODIFIED || gerr == GIT_ELOCKED)
        rc = -RE_ECONFLICT;
    else if (strstr(msg, "No space left") || errno == ENOSPC)
        rc = -RE_ENOSPC;
    if (err) {
        re_buf_reset(err);
        re_buf_printf(err, "%s: %s", what, msg);
    }
    return rc;
}

__attribute__((format(printf, 3, 4)))
static int fail(struct re_buf *err, int rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        re_buf_reset(err);
        re_buf_vprintf(err, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pack_dir_stamp(struct gitstore *gs, struct timespec *out)
{
    char dir[4096];
    struct stat st;
    memset(out, 0, sizeof(*out));
    if (re_snprintf(dir, sizeof(dir), "%sobjects/pack", gs->gitdir) == 0 &&
        stat(dir, &st) == 0)
        *out = st.st_mtim;
}


/* Files a writer killed mid-batch leaves behind: ref locks (packed-refs.lock,
 * refs/.../HEAD.lock, branch locks) and half-written packs. Only called when
 * this process is the sole writer, so none of them can belong to a live one. */
static int remove_stale_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    const char *base = path + ftw->base;
    size_t n = strlen(base);
    bool lock = n > 5 && strcmp(base + n - 5, ".lock") == 0;
    bool tmp_pack = strstr(path, "/objects/pack/") &&
                    (strncmp(base, "tmp_", 4) == 0 || strncmp(base, "pack_git2_", 10) == 0);
    if (type == FTW_F && (lock || tmp_pack))
        unlink(path);
    return 0;
}

/* A batch keeps a marker file in the git directory while it runs: ref
 * locks can only be left by a writer killed during a batch, so the sweep
 * through every namespace (seconds of start-up at 100,000 clusters, one
 * directory each) runs only when a marker says a batch did not end. */
#define BATCH_MARKER "resedge-batch."

/* Removes the markers of ended writers; true if there was one. */
static bool take_batch_markers(const char *gitdir)
{
    DIR *d = opendir(gitdir);
    struct dirent *e;
    char path[4200];
    bool found = false;
    if (!d)
        return true;                /* cannot tell: sweep */
    while ((e = readdir(d)))
        if (strncmp(e->d_name, BATCH_MARKER, strlen(BATCH_MARKER)) == 0) {
            found = true;
            if (re_snprintf(path, sizeof(path), "%s%s", gitdir, e->d_name) == 0)
                unlink(path);
        }
    closedir(d);
    return found;
}

/* Returns whether a batch did not end (its marker was there). */
static bool remove_stale_files(const char *gitdir)
{
    char path[4200];
    /* the top level: packed-refs.lock, HEAD.lock */
    if (re_snprintf(path, sizeof(path), "%spacked-refs.lock", gitdir) == 0)
        unlink(path);
    if (re_snprintf(path, sizeof(path), "%sHEAD.lock", gitdir) == 0)
        unlink(path);
    if (re_snprintf(path, sizeof(path), "%sobjects/pack", gitdir) == 0)
        nftw(path, remove_stale_one, 16, FTW_PHYS);
    /* sweep the refs first, then drop the marker: a crash in between sweeps again */
    if (!take_batch_markers(gitdir))
        return false;
    if (re_snprintf(path, sizeof(path), "%srefs", gitdir) == 0)
        nftw(path, remove_stale_one, 16, FTW_PHYS);
    return true;
}

/* An object database of objects/pack alone. The writer asks it whether an
 * object is already on disk: through the repository's odb every miss (each
 * new object) also cost a stat of the loose object's path. An object only
 * loose (written by git itself) is then packed again: harmless. */
static int packs_odb(git_odb **out, const char *gitdir)
{
    char dir[4096];
    git_odb_backend *pack = NULL;
    int g;
    if (re_snprintf(dir, sizeof(dir), "%sobjects", gitdir) < 0)
        return -1;
    if ((g = git_odb_new(out)) < 0)
        return g;
    if ((g = git_odb_backend_pack(&pack, dir)) < 0 ||
        (g = git_odb_add_backend(*out, pack, 1)) < 0) {
        if (pack)
            pack->free(pack);
        git_odb_free(*out);
        *out = NULL;
    }
    return g;
}

int gitstore_open(struct gitstore **out, const char *path, unsigned flags,
                  struct re_buf *err)
{
    struct gitstore *gs = NULL;
    int rc = 0, g;

    git_libgit2_init();
    if (flags & GITSTORE_FSYNC)
        git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
    if (!(gs = calloc(1, sizeof(*gs))) || !(gs->path = strdup(path))) {
        rc = -RE_ENOMEM;
        goto out;
    }
    gs->flags = flags;
    g = git_repository_open_bare(&gs->repo, path);
    if (g == GIT_ENOTFOUND) {
        git_repository_init_options o;
        git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
        o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
                  GIT_REPOSITORY_INIT_NO_REINIT;
        o.initial_head = "main";
        o.description = "Res-Edge GitOps state: one branch per cluster under "
                        "refs/namespaces/<cluster>/";
        g = git_repository_init_ext(&gs->repo, path, &o);
    }
    if (g < 0) {
        rc = git_err(err, "cannot open the git repository", g);
        goto out;
    }
    gs->gitdir = git_repository_path(gs->repo);
    if (flags & GITSTORE_SOLE_WRITER)
        gs->unfinished_batch = remove_stale_files(gs->gitdir);
    git_odb_backend *proxy = NULL;
    if ((g = git_repository_odb(&gs->odb, gs->repo)) < 0 ||
        (g = packs_odb(&gs->podb, gs->gitdir)) < 0 ||
        (g = git_odb_new(&gs->wodb)) < 0 ||
        (g = git_mempack_new(&gs->mempack)) < 0) {
        rc = git_err(err, "cannot set up the object database", g);
        goto out;
    }
    if ((g = git_odb_add_backend(gs->wodb, gs->mempack, 999)) < 0) {
        gs->mempack->free(gs->mempack);
        gs->mempack = NULL;
        rc = git_err(err, "cannot add the in-memory object store", g);
        goto out;
    }
    if ((g = proxy_new(&proxy, gs->odb)) < 0 ||
        (g = git_odb_add_backend(gs->wodb, proxy, 1)) < 0) {
        if (proxy)
            proxy->free(proxy);
        rc = git_err(err, "cannot set up the object database", g);
        goto out;
    }
    if ((g = git_repository_wrap_odb(&gs->wrepo, gs->wodb)) < 0) {
        rc = git_err(err, "cannot set up the writer", g);
        goto out;
    }
    pack_dir_stamp(gs, &gs->pack_stamp);
    *out = gs;
    gs = NULL;
out:
    gitstore_free(gs);
    return rc;
}

static int head_wait(struct gitstore *gs, struct re_buf *err);

void gitstore_free(struct gitstore *gs)
{
    if (!gs)
        return;
    head_wait(gs, NULL);
    if (gs->mempack)
        git_mempack_reset(gs->mempack);
    oidc_free(&gs->oids);
    git_repository_free(gs->wrepo);
    git_odb_free(gs->wodb);
    git_odb_free(gs->podb);
    git_odb_free(gs->odb);
    git_repository_free(gs->repo);
    free(gs->path);
    free(gs);
    git_libgit2_shutdown();
}

const char *gitstore_path(const struct gitstore *gs)
{
    return gs->path;
}

void gitstore_get_stats(const struct gitstore *gs, struct gitstore_stats *out)
{
    *out = gs->stats;
    out->cache_hits = gs->oids.hits;
    out->cache_misses = gs->oids.misses;
}

static bool cluster_ok(const char *c)
{
    return render_is_dns_label(c);
}

static int head_oid(struct gitstore *gs, const char *cluster, git_oid *out)
{
    char ref[NAME_MAX_];
    if (!cluster_ok(cluster))
        return -RE_EINVAL;
    re_snprintf(ref, sizeof(ref), REF_FMT, cluster);
    int g = git_reference_name_to_id(out, gs->repo, ref);
    if (g == GIT_ENOTFOUND)
        return -RE_ENOENT;
    return g < 0 ? -RE_EGIT : 0;
}

bool gitstore_unfinished_batch(const struct gitstore *gs)
{
    return gs->unfinished_batch;
}

int gitstore_ref_files(struct gitstore *gs, const char *cluster, char *loose, size_t loose_size,
                       char *packed, size_t packed_size)
{
    int r;
    if (!cluster_ok(cluster))
        return -RE_EINVAL;
    if ((r = re_snprintf(loose, loose_size, "%s" REF_FMT, gs->gitdir, cluster)) < 0)
        return r;
    return re_snprintf(packed, packed_size, "%spacked-refs", gs->gitdir);
}

int gitstore_head(struct gitstore *gs, const char *cluster, char out_hex[RE_OID_BUF])
{
    git_oid oid;
    int rc = head_oid(gs, cluster, &oid);
    if (rc == 0)
        git_oid_tostr(out_hex, RE_OID_BUF, &oid);
    return rc;
}

/* ---- batch ---------------------------------------------------------------- */

int gitstore_batch_begin(struct gitstore_batch **out, struct gitstore *gs,
                         struct re_buf *err)
{
    struct gitstore_batch *b;
    struct timespec now;
    if (gs->batch_open)
        return fail(err, -RE_EBUSY, "a batch is already open on this repository");
    if (!(b = calloc(1, sizeof(*b))))
        return -RE_ENOMEM;
    /* Packs changed by someone else (gc, repack) may have dropped objects
     * the cache names. */
    pack_dir_stamp(gs, &now);
    if (now.tv_sec != gs->pack_stamp.tv_sec || now.tv_nsec != gs->pack_stamp.tv_nsec) {
        oidc_clear(&gs->oids);
        git_odb_refresh(gs->odb);
        git_odb_refresh(gs->podb);
        gs->pack_stamp = now;
    }
    b->gs = gs;
    b->chunk = GITSTORE_CHUNK_COMMITS;
    static atomic_uint batch_seq;
    int fd;
    if (re_snprintf(b->marker, sizeof(b->marker), "%s" BATCH_MARKER "%ld.%u", gs->gitdir,
                    (long)getpid(), atomic_fetch_add(&batch_seq, 1)) < 0) {
        free(b);
        return fail(err, -RE_ETOOBIG, "the repository path is too long");
    }
    if ((fd = open(b->marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        int rc = re_from_errno(errno);
        char path[sizeof(b->marker)];
        memcpy(path, b->marker, sizeof(path));
        free(b);
        return fail(err, rc, "cannot create '%s': %s", path, re_strerror(rc));
    }
    close(fd);
    gs->batch_open = true;
    *out = b;
    return 0;
}

void gitstore_batch_set_chunk(struct gitstore_batch *b, size_t commits)
{
    b->chunk = commits ? commits : 1;
}

size_t gitstore_batch_count(const struct gitstore_batch *b)
{
    return b->n_st;
}

static int record(struct gitstore_batch *b, const git_oid *oid)
{
    if (b->n_objs == b->cap_objs) {
        size_t cap = b->cap_objs ? b->cap_objs * 2 : 1024;
        git_oid *v = realloc(b->objs, cap * sizeof(*v));
        if (!v)
            return -RE_ENOMEM;
        b->objs = v;
        b->cap_objs = cap;
    }
    b->objs[b->n_objs++] = *oid;
    return 0;
}

/* Records oid when the write just went to the in-memory store (not when the
 * object already was in a pack on disk). */
static int record_if_new(struct gitstore_batch *b, const git_oid *oid)
{
    git_odb_backend *mp = b->gs->mempack;
    return mp->exists(mp, oid) ? record(b, oid) : 0;
}

/* Writes an object unless it is known: earlier in this batch, or on disk. */
static int write_object(struct gitstore_batch *b, git_object_t type, const char *data,
                        size_t len, git_oid *out)
{
    struct gitstore *gs = b->gs;
    git_odb_backend *mp = gs->mempack;
    const git_oid *known = oidc_get(&gs->oids, (uint32_t)type, data, len);
    if (known) {
        *out = *known;
        return 0;
    }
    if (git_odb_hash(out, data, len, type) < 0)
        return -RE_EGIT;
    /* Asked of the backends, not of the writer odb, whose cache may still
     * hold objects of a failed batch that never reached the disk. No
     * refresh: a pack added behind our back only costs a duplicate. */
    if (!mp->exists(mp, out) &&
        !git_odb_exists_ext(gs->podb, out, GIT_ODB_LOOKUP_NO_REFRESH)) {
        if (mp->write(mp, out, data, len, type) < 0)
            return -RE_EGIT;
        b->mem += len + 64;
        int rc = record(b, out);
        if (rc < 0)
            return rc;
    }
    oidc_put(&gs->oids, (uint32_t)type, data, len, out);
    return 0;
}

struct tent {
    const char *name;
    size_t nlen;
    git_filemode_t mode;
    git_oid oid;
};

/* Appends "<mode> <name>\0<raw id>" (git's tree entry format) to key. */
static int tree_key_add(struct re_buf *key, const struct tent *e)
{
    const char *mode = e->mode == GIT_FILEMODE_TREE ? "40000 " : "100644 ";
    unsigned char raw[GIT_OID_RAWSZ];
    memcpy(raw, e->oid.id, sizeof(raw));
    int rc;
    if ((rc = re_buf_append_str(key, mode)) < 0 ||
        (rc = re_buf_append(key, e->name, e->nlen)) < 0 ||
        (rc = re_buf_append(key, "", 1)) < 0)
        return rc;
    return re_buf_append(key, raw, sizeof(raw));
}

/* Git's order of tree entries: by name, a folder's name compared as if it
 * ended in '/'. */
static int tent_cmp(const struct tent *x, const struct tent *y)
{
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    unsigned char cx = x->nlen > n ? (unsigned char)x->name[n]
                                   : x->mode == GIT_FILEMODE_TREE ? '/' : 0;
    unsigned char cy = y->nlen > n ? (unsigned char)y->name[n]
                                   : y->mode == GIT_FILEMODE_TREE ? '/' : 0;
    return (cx > cy) - (cx < cy);
}

/* A name git accepts in a tree (render's paths are checked when added; this
 * also holds for a tree put together by hand). */
static bool tent_name_ok(const struct tent *e)
{
    if (e->nlen == 0 || e->nlen >= NAME_MAX_ || memchr(e->name, '\0', e->nlen))
        return false;
    if ((e->nlen == 1 && e->name[0] == '.') ||
        (e->nlen == 2 && e->name[0] == '.' && e->name[1] == '.') ||
        (e->nlen == 4 && strncasecmp(e->name, ".git", 4) == 0))
        return false;
    return true;
}

/* Builds the tree of entries [lo, hi) whose paths share a prefix of off
 * bytes. The tree object's content is its entries in git's format and
 * order ("<mode> <name>\0<raw id>", see tree_key_add), which is also the
 * cache key: a tree seen before is not hashed again, a new one is written
 * as those bytes (what libgit2's treebuilder would write, without its
 * existence check of every entry: each was just written or found). Names
 * and order are checked here. */
static int build_tree(struct gitstore_batch *b, const struct render_tree *t,
                      size_t lo, size_t hi, size_t off, git_oid *out)
{
    struct tent *ents = NULL;
    size_t n = 0;
    struct re_buf key;
    int rc = 0;

    re_buf_init(&key, (size_t)1 << 30);
    if (!(ents = malloc((hi > lo ? hi - lo : 1) * sizeof(*ents)))) {
        rc = -RE_ENOMEM;
        goto out;
    }
    for (size_t i = lo; i < hi;) {
        const char *rest = t->v[i].path + off;
        const char *slash = strchr(rest, '/');
        struct tent *e = &ents[n++];
        e->name = rest;
        if (!slash) {
            e->nlen = strlen(rest);
            e->mode = GIT_FILEMODE_BLOB;
            if ((rc = write_object(b, GIT_OBJECT_BLOB, t->v[i].data, t->v[i].len,
                                   &e->oid)) < 0)
                goto out;
            i++;
        } else {
            size_t nlen = (size_t)(slash - rest), j = i + 1;
            while (j < hi && strncmp(t->v[j].path + off, rest, nlen + 1) == 0)
                j++;
            e->nlen = nlen;
            e->mode = GIT_FILEMODE_TREE;
            if ((rc = build_tree(b, t, i, j, off + nlen + 1, &e->oid)) < 0)
                goto out;
            i = j;
        }
        if (!tent_name_ok(e) || (n > 1 && tent_cmp(&ents[n - 2], e) >= 0)) {
            rc = -RE_EINVAL;
            goto out;
        }
        if ((rc = tree_key_add(&key, e)) < 0)
            goto out;
    }
    rc = write_object(b, GIT_OBJECT_TREE, key.ptr ? key.ptr : "", key.len, out);
out:
    free(ents);
    re_buf_release(&key);
    return rc;
}

/* "store-0042@resedge" style e-mail from an identity. */
static void author_email(char *out, size_t size, const char *author)
{
    size_t n = 0;
    for (const char *s = author; *s && n + 10 < size; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
        out[n++] = ok ? c : '-';
    }
    if (n == 0)
        out[n++] = 'x';
    out[n] = '\0';
    re_snprintf(out + n, size - n, "@resedge");
}

static bool author_ok(const char *a)
{
    if (!a || !*a || strlen(a) > 200)
        return false;
    for (const char *s = a; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '<' || *s == '>')
            return false;
    return true;
}

static int flush(struct gitstore_batch *b, struct re_buf *err);

/* The tree of a commit on disk, read from its raw text ("tree <hex>" comes
 * first): no parsed commit object, no copy through the writer's odb. */
static int commit_tree_id(struct gitstore *gs, const git_oid *commit, git_oid *out)
{
    git_odb_object *o = NULL;
    int g = git_odb_read(&o, gs->odb, commit);
    if (g < 0)
        return git_err(NULL, "read head commit", g);
    const char *d = git_odb_object_data(o);
    size_t n = git_odb_object_size(o);
    int rc = 0;
    if (git_odb_object_type(o) != GIT_OBJECT_COMMIT || n < 46 || memcmp(d, "tree ", 5) != 0 ||
        d[45] != '\n' || git_oid_fromstrn(out, d + 5, RE_OID_HEX) < 0)
        rc = -RE_EGIT;
    git_odb_object_free(o);
    return rc;
}

/* True when the cluster's HEAD symref file exists (it is always loose). */
static bool head_exists(struct gitstore *gs, const char *cluster)
{
    char p[4096];
    struct stat st;
    if (re_snprintf(p, sizeof(p), "%s" HEAD_FMT, gs->gitdir, cluster) < 0)
        return true;
    return lstat(p, &st) == 0;
}

static int want_head_fix(struct gitstore_batch *b, const char *cluster)
{
    if (b->n_fix == b->cap_fix) {
        size_t cap = b->cap_fix ? b->cap_fix * 2 : 16;
        char (*v)[64] = realloc(b->fix, cap * sizeof(*v));
        if (!v)
            return -RE_ENOMEM;
        b->fix = v;
        b->cap_fix = cap;
    }
    re_snprintf(b->fix[b->n_fix++], 64, "%s", cluster);
    return 0;
}

int gitstore_batch_put(struct gitstore_batch *b, const char *cluster,
                       const struct render_tree *tree, const char *author,
                       const char *message, const char *expected_old_hex,
                       bool *changed, char out_hex[RE_OID_BUF])
{
    struct gitstore *gs = b->gs;
    struct staged s;
    git_oid tree_oid, commit_oid;
    git_signature *sig = NULL;
    char email[NAME_MAX_];
    int rc = 0, g;

    memset(&s, 0, sizeof(s));
    if (!cluster_ok(cluster) || !tree->sorted || !author_ok(author) || !message)
        return -RE_EINVAL;
    re_snprintf(s.refname, sizeof(s.refname), REF_FMT, cluster);
    re_snprintf(s.cluster, sizeof(s.cluster), "%s", cluster);
    g = git_reference_name_to_id(&s.old, gs->repo, s.refname);
    if (g == 0)
        s.had_old = true;
    else if (g != GIT_ENOTFOUND)
        return git_err(NULL, "read branch", g);
    if (expected_old_hex) {
        if (expected_old_hex[0] == '\0') {
            if (s.had_old)
                return -RE_ECONFLICT;
        } else {
            git_oid want;
            if (git_oid_fromstr(&want, expected_old_hex) < 0)
                return -RE_EINVAL;
            if (!s.had_old || !git_oid_equal(&want, &s.old))
                return -RE_ECONFLICT;
        }
    }
    /* A HEAD lost to a crash between the branch and its HEAD comes back with
     * the next batch that renders the cluster, changed or not. */
    if (s.had_old && !head_exists(gs, cluster) && (rc = want_head_fix(b, cluster)) < 0)
        return rc;
    if ((rc = build_tree(b, tree, 0, tree->n, 0, &tree_oid)) < 0)
        goto out;
    if (s.had_old) {
        git_oid parent_tree;
        if ((rc = commit_tree_id(gs, &s.old, &parent_tree)) < 0)
            goto out;
        if (git_oid_equal(&parent_tree, &tree_oid)) {
            if (changed)
                *changed = false;
            goto out;
        }
    }
    author_email(email, sizeof(email), author);
    if ((g = git_signature_new(&sig, author, email, (git_time_t)time(NULL), 0)) < 0) {
        rc = -RE_EINVAL;
        goto out;
    }
    const git_oid *parents[1] = { &s.old };
    if ((g = git_commit_create_from_ids(&commit_oid, gs->wrepo, NULL, sig, sig, "UTF-8",
                                        message, &tree_oid, s.had_old ? 1 : 0, parents)) < 0) {
        rc = git_err(NULL, "create commit", g);
        goto out;
    }
    if ((rc = record_if_new(b, &commit_oid)) < 0)
        goto out;
    b->mem += strlen(message) + 400;
    s.new_ = commit_oid;
    if (b->n_st == b->cap_st) {
        size_t cap = b->cap_st ? b->cap_st * 2 : 64;
        struct staged *v = realloc(b->st, cap * sizeof(*v));
        if (!v) {
            rc = -RE_ENOMEM;
            goto out;
        }
        b->st = v;
        b->cap_st = cap;
    }
    b->st[b->n_st++] = s;
    if (changed)
        *changed = true;
    if (out_hex)
        git_oid_tostr(out_hex, RE_OID_BUF, &commit_oid);
    /* Large batches go to disk in chunks, so memory stays bounded. */
    if (b->n_st >= b->chunk || b->mem >= GITSTORE_CHUNK_BYTES)
        rc = flush(b, NULL);
out:
    git_signature_free(sig);
    return rc;
}

static void batch_free(struct gitstore_batch *b)
{
    b->gs->batch_open = false;
    if (b->marker[0])
        unlink(b->marker);          /* this batch ended: it cleaned up after itself */
    free(b->objs);
    free(b->st);
    free(b->fix);
    free(b);
}

void gitstore_batch_abort(struct gitstore_batch *b)
{
    if (!b)
        return;
    head_wait(b->gs, NULL);
    git_mempack_reset(b->gs->mempack);
    /* The cache may name objects that were only in the mempack. */
    oidc_clear(&b->gs->oids);
    batch_free(b);
}

static int cmp_staged(const void *a, const void *b)
{
    return strcmp(((const struct staged *)a)->refname, ((const struct staged *)b)->refname);
}

/*
 * Packs the new objects. The pack is built in memory and handed to the
 * indexer in one piece: git_packbuilder_write streams it object by object,
 * and the indexer then remaps the growing file for each (twice the CPU). The
 * indexer writes the .pack, then the .idx, and renames them into place: a
 * crash before that leaves only temp files that git ignores.
 */
static int write_pack(struct gitstore_batch *b, struct re_buf *err)
{
    git_packbuilder *pb = NULL;
    git_indexer *ix = NULL;
    git_indexer_options io;
    git_indexer_progress st;
    git_buf pack = { 0 };
    char dir[4096];
    int rc = 0, g;

    if (b->n_objs == 0)
        return 0;
    if ((rc = re_snprintf(dir, sizeof(dir), "%sobjects/pack", b->gs->gitdir)) < 0)
        return rc;
    if ((g = git_packbuilder_new(&pb, b->gs->wrepo)) < 0)
        return git_err(err, "cannot start a pack", g);
    git_packbuilder_set_threads(pb, 0);
    /* The packbuilder ignores an id inserted twice. */
    for (size_t i = 0; i < b->n_objs; i++)
        if ((g = git_packbuilder_insert(pb, &b->objs[i], NULL)) < 0) {
            rc = git_err(err, "cannot add an object to the pack", g);
            goto out;
        }
    if ((g = git_packbuilder_write_buf(&pack, pb)) < 0) {
        rc = git_err(err, "cannot build the pack", g);
        goto out;
    }
    git_indexer_options_init(&io, GIT_INDEXER_OPTIONS_VERSION);
    if ((g = git_indexer_new(&ix, dir, 0, b->gs->odb, &io)) < 0 ||
        (g = git_indexer_append(ix, pack.ptr, pack.size, &st)) < 0 ||
        (g = git_indexer_commit(ix, &st)) < 0) {
        rc = git_err(err, "cannot write the pack", g);
        goto out;
    }
    b->gs->stats.packs++;
    b->gs->stats.objects += st.total_objects;
    b->gs->stats.pack_bytes += pack.size;
out:
    git_indexer_free(ix);
    git_buf_dispose(&pack);
    git_packbuilder_free(pb);
    return rc;
}

/* ---- refs ------------------------------------------------------------------
 * Branches live in packed-refs: one file, replaced by an atomic rename under
 * git's own lock (packed-refs.lock), holding every branch at 100,000
 * clusters with no file or directory per branch. A branch that is a loose
 * ref file (written by git or an older hub) is moved by libgit2 instead,
 * since a loose ref overrides packed-refs. Each cluster's HEAD is a symbolic
 * ref, which packed-refs cannot hold: refs/namespaces/<cluster>/HEAD is
 * written once, after its branch exists (a HEAD pointing at nothing fails
 * `git fsck`); a crash in between is repaired by the next batch that puts
 * the cluster. */

struct pref {
    const char *name;           /* into the file buffer, not NUL-terminated */
    size_t nlen;
    const char *line;           /* the record: "<hex> <name>\n" and any "^<hex>\n" */
    size_t len;
};

static int cmp_pref(const void *a, const void *b)
{
    const struct pref *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/* Compares a packed record's name with a NUL-terminated ref name. */
static int pref_cmp_name(const struct pref *p, const char *name)
{
    size_t n = strlen(name), m = p->nlen < n ? p->nlen : n;
    int c = memcmp(p->name, name, m);
    return c ? c : (p->nlen > n) - (p->nlen < n);
}

static int read_file(char **out, size_t *len, const char *path)
{
    FILE *f = fopen(path, "rbe");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    if (!f) {
        if (errno != ENOENT)
            return re_from_errno(errno);
        *out = NULL;
        *len = 0;
        return 0;
    }
    for (;;) {
        if (cap - n < 65536) {
            size_t ncap = cap ? cap * 2 : 1 << 20;
            char *v = realloc(buf, ncap + 1);
            if (!v) {
                rc = -RE_ENOMEM;
                goto out;
            }
            buf = v;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                rc = -RE_EIO;
            break;
        }
    }
out:
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}


/* Splits packed-refs text into its header line and records (sorted). */
static int parse_packed(const char *text, size_t len, struct re_str *header,
                        struct pref **out, size_t *n_out)
{
    struct pref *v = NULL;
    size_t n = 0, cap = 0;
    bool sorted = true;
    const char *p = text, *end = text + len;
    *header = RE_STR_NULL;
    if (len > 0 && text[len - 1] != '\n')
        return -RE_EPARSE;
    if (p < end && *p == '#') {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        *header = (struct re_str){ p, (size_t)(nl - p) };
        p = nl + 1;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)(nl - p);
        if (*p == '^') {
            if (n == 0 || ll != RE_OID_HEX + 1 || !re_oid_prefix_is(p + 1))
                goto bad;
            v[n - 1].len += ll + 1;
        } else {
            if (ll < RE_OID_HEX + 2 || !re_oid_prefix_is(p) || p[RE_OID_HEX] != ' ')
                goto bad;
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                struct pref *nv = realloc(v, cap * sizeof(*nv));
                if (!nv) {
                    free(v);
                    return -RE_ENOMEM;
                }
                v = nv;
            }
            v[n] = (struct pref){ p + RE_OID_HEX + 1, ll - RE_OID_HEX - 1, p, ll + 1 };
            if (n > 0 && cmp_pref(&v[n - 1], &v[n]) >= 0)
                sorted = false;
            n++;
        }
        p = nl + 1;
    }
    if (!sorted)
        qsort(v, n, sizeof(*v), cmp_pref);
    *out = v;
    *n_out = n;
    return 0;
bad:
    free(v);
    return -RE_EPARSE;
}

struct obuf {
    char *p;
    size_t n, cap;
};

static int oput(struct obuf *o, const void *d, size_t len)
{
    if (o->cap - o->n < len) {
        size_t cap = o->cap ? o->cap : 1 << 20;
        while (cap - o->n < len)
            cap *= 2;
        char *v = realloc(o->p, cap);
        if (!v)
            return -RE_ENOMEM;
        o->p = v;
        o->cap = cap;
    }
    memcpy(o->p + o->n, d, len);
    o->n += len;
    return 0;
}

static int put_ref_line(struct obuf *o, const struct staged *s)
{
    char hex[GIT_OID_HEXSZ + 1];
    int rc;
    git_oid_tostr(hex, sizeof(hex), &s->new_);
    if ((rc = oput(o, hex, GIT_OID_HEXSZ)) < 0 || (rc = oput(o, " ", 1)) < 0 ||
        (rc = oput(o, s->refname, strlen(s->refname))) < 0)
        return rc;
    return oput(o, "\n", 1);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return re_from_errno(errno);
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return re_from_errno(errno);
    int rc = fsync(fd) < 0 ? re_from_errno(errno) : 0;
    close(fd);
    return rc;
}

/*
 * Moves the staged branches that are not loose refs in one replacement of
 * packed-refs: all or none. Under the lock: each is compared with the value
 * it had at put time (compare-and-swap), any mismatch moves nothing.
 */
static int move_packed(struct gitstore_batch *b, struct re_buf *err)
{
    struct gitstore *gs = b->gs;
    char path[4096], lock[4096];
    char *text = NULL;
    size_t len = 0, np = 0;
    struct pref *recs = NULL;
    struct re_str header;
    struct obuf o = { 0 };
    int rc = 0, fd = -1;
    bool locked = false;

    if (re_snprintf(path, sizeof(path), "%spacked-refs", gs->gitdir) < 0 ||
        re_snprintf(lock, sizeof(lock), "%spacked-refs.lock", gs->gitdir) < 0)
        return -RE_ETOOBIG;
    fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return fail(err, -RE_ECONFLICT, "'%s' exists: another writer holds the refs "
                        "(remove it if no git process runs)", lock);
        return fail(err, re_from_errno(errno), "cannot create '%s': %s", lock,
                    strerror(errno));
    }
    locked = true;
    if ((rc = read_file(&text, &len, path)) < 0) {
        fail(err, rc, "cannot read '%s'", path);
        goto out;
    }
    if ((rc = parse_packed(text ? text : "", len, &header, &recs, &np)) < 0) {
        fail(err, -RE_EGIT, "cannot parse '%s'", path);
        rc = -RE_EGIT;
        goto out;
    }
    /* Header: keep the file's traits, always sorted (readers then bisect). */
    if (header.ptr) {
        if ((rc = oput(&o, header.ptr, header.len)) < 0)
            goto out;
        if (header.len == 0 || header.ptr[header.len - 1] != ' ')
            rc = oput(&o, " ", 1);
        if (rc == 0 && !memmem(o.p, o.n, " sorted ", 8))
            rc = oput(&o, "sorted ", 7);
        if (rc == 0)
            rc = oput(&o, "\n", 1);
    } else if (np == 0) {
        static const char h[] = "# pack-refs with: peeled fully-peeled sorted \n";
        rc = oput(&o, h, sizeof(h) - 1);
    } else {
        static const char h[] = "# pack-refs with: sorted \n";
        rc = oput(&o, h, sizeof(h) - 1);
    }
    if (rc < 0)
        goto out;
    /* Merge two sorted lists: the records and the staged branches. */
    size_t i = 0;
    for (size_t k = 0; k < b->n_st; k++) {
        const struct staged *s = &b->st[k];
        if (s->loose)
            continue;
        while (i < np && pref_cmp_name(&recs[i], s->refname) < 0) {
            if ((rc = oput(&o, recs[i].line, recs[i].len)) < 0)
                goto out;
            i++;
        }
        bool present = i < np && pref_cmp_name(&recs[i], s->refname) == 0;
        bool same = false;
        if (present && s->had_old) {
            char hex[GIT_OID_HEXSZ + 1];
            git_oid_tostr(hex, sizeof(hex), &s->old);
            same = memcmp(recs[i].line, hex, GIT_OID_HEXSZ) == 0;
        }
        if (present != s->had_old || (present && !same)) {
            rc = fail(err, -RE_ECONFLICT, "'%s' moved since the change was prepared",
                      s->refname);
            goto out;
        }
        if ((rc = put_ref_line(&o, s)) < 0)
            goto out;
        if (present)
            i++;
    }
    for (; i < np; i++)
        if ((rc = oput(&o, recs[i].line, recs[i].len)) < 0)
            goto out;
    if ((rc = write_all(fd, o.p, o.n)) < 0 ||
        ((gs->flags & GITSTORE_FSYNC) && fsync(fd) < 0 && (rc = re_from_errno(errno)) < 0)) {
        fail(err, rc, "cannot write '%s': %s", lock, re_strerror(rc));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = fail(err, re_from_errno(errno), "cannot write '%s'", lock);
        goto out;
    }
    fd = -1;
    /* The commit point of every branch in this chunk. */
    if (rename(lock, path) < 0) {
        rc = fail(err, re_from_errno(errno), "cannot rename '%s'", lock);
        goto out;
    }
    locked = false;
    if ((gs->flags & GITSTORE_FSYNC) && (rc = fsync_dir(gs->gitdir)) < 0)
        fail(err, rc, "cannot sync '%s'", gs->gitdir);
out:
    if (fd >= 0)
        close(fd);
    if (locked)
        unlink(lock);
    free(o.p);
    free(recs);
    free(text);
    return rc;
}

static int ref_moved(struct gitstore_batch *b, const struct staged *s, struct re_buf *err)
{
    git_oid cur;
    int g = git_reference_name_to_id(&cur, b->gs->repo, s->refname);
    if (g < 0 && g != GIT_ENOTFOUND)
        return git_err(err, s->refname, g);
    if ((g == 0) != s->had_old || (g == 0 && !git_oid_equal(&cur, &s->old)))
        return fail(err, -RE_ECONFLICT, "'%s' moved since the change was prepared",
                    s->refname);
    return 0;
}

/* Moves the loose staged[lo, hi) in one libgit2 transaction: lock all,
 * re-check, then update. */
static int move_loose_chunk(struct gitstore_batch *b, size_t lo, size_t hi,
                            git_signature *sig, struct re_buf *err)
{
    git_transaction *tx = NULL;
    int rc = 0, g;
    size_t n = 0;

    if ((g = git_transaction_new(&tx, b->gs->repo)) < 0)
        return git_err(err, "cannot start a ref transaction", g);
    for (size_t i = lo; i < hi; i++) {
        struct staged *s = &b->st[i];
        if (!s->loose)
            continue;
        if ((g = git_transaction_lock_ref(tx, s->refname)) < 0) {
            rc = git_err(err, s->refname, g);
            if (g == GIT_ELOCKED)
                rc = -RE_ECONFLICT;
            goto out;
        }
        if ((rc = ref_moved(b, s, err)) < 0)
            goto out;
        n++;
    }
    for (size_t i = lo; i < hi; i++) {
        struct staged *s = &b->st[i];
        if (s->loose &&
            (g = git_transaction_set_target(tx, s->refname, &s->new_, sig, "resedge")) < 0) {
            rc = git_err(err, s->refname, g);
            goto out;
        }
    }
    if (n && (g = git_transaction_commit(tx)) < 0)
        rc = git_err(err, "cannot update branches", g);
out:
    git_transaction_free(tx);
    return rc;
}

/* Writes refs/namespaces/<cluster>/HEAD -> its branch, unless present. */
static int write_head(struct gitstore *gs, const char *cluster, struct re_buf *err)
{
    char dir[4096], head[4096], lock[4096], text[NAME_MAX_ + 16];
    struct stat st;
    int rc = 0, fd;

    if (re_snprintf(dir, sizeof(dir), "%srefs/namespaces/%s", gs->gitdir, cluster) < 0 ||
        re_snprintf(head, sizeof(head), "%s/HEAD", dir) < 0 ||
        re_snprintf(lock, sizeof(lock), "%s/HEAD.lock", dir) < 0 ||
        re_snprintf(text, sizeof(text), "ref: " REF_FMT "\n", cluster) < 0)
        return -RE_ETOOBIG;
    if (lstat(head, &st) == 0)
        return 0;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return fail(err, re_from_errno(errno), "cannot create '%s': %s", dir, strerror(errno));
    fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(err, errno == EEXIST ? -RE_ECONFLICT : re_from_errno(errno),
                    "cannot create '%s': %s", lock, strerror(errno));
    rc = write_all(fd, text, strlen(text));
    if (rc == 0 && (gs->flags & GITSTORE_FSYNC) && fsync(fd) < 0)
        rc = re_from_errno(errno);
    if (close(fd) < 0 && rc == 0)
        rc = re_from_errno(errno);
    if (rc == 0 && rename(lock, head) < 0)
        rc = re_from_errno(errno);
    if (rc < 0) {
        unlink(lock);
        return fail(err, rc, "cannot write '%s': %s", head, re_strerror(rc));
    }
    return 0;
}

static void *head_thread(void *arg)
{
    struct head_job *j = arg;
    struct re_buf e;
    char p[4096];
    re_buf_init(&e, sizeof(j->err));
    for (size_t i = 0; i < j->n && j->rc == 0; i++)
        j->rc = write_head((struct gitstore *)j->gs, j->names[i], &e);
    if (j->rc == 0 && (j->gs->flags & GITSTORE_FSYNC) &&
        re_snprintf(p, sizeof(p), "%srefs/namespaces", j->gs->gitdir) == 0)
        j->rc = fsync_dir(p);
    if (j->rc < 0)
        re_snprintf(j->err, sizeof(j->err), "%s", e.len ? e.ptr : re_strerror(j->rc));
    re_buf_release(&e);
    return NULL;
}

/* Frees a done job; its error into err. */
static int head_job_end(struct head_job *j, struct re_buf *err)
{
    int rc = j->rc;
    if (rc < 0)
        fail(err, rc, "%s", j->err);
    free(j->names);
    free(j);
    return rc;
}

/* Waits for the HEAD job; its error (a HEAD it could not write is written
 * by the next batch that puts the cluster). */
static int head_wait(struct gitstore *gs, struct re_buf *err)
{
    struct head_job *j = gs->head_job;
    if (!j)
        return 0;
    pthread_join(gs->head_th, NULL);
    gs->head_job = NULL;
    return head_job_end(j, err);
}

/* Starts writing the HEADs of the chunk's new branches and of those found
 * missing (after the branches moved: a HEAD must not name a missing one).
 * Without a thread, writes them here. */
static int head_start(struct gitstore *gs, const struct gitstore_batch *b, struct re_buf *err)
{
    struct head_job *j = calloc(1, sizeof(*j));
    size_t n = b->n_fix;
    for (size_t i = 0; i < b->n_st; i++)
        n += !b->st[i].had_old;
    if (!j || !(j->names = malloc((n ? n : 1) * sizeof(*j->names)))) {
        free(j);
        return -RE_ENOMEM;
    }
    j->gs = gs;
    for (size_t i = 0; i < b->n_st; i++)
        if (!b->st[i].had_old)
            memcpy(j->names[j->n++], b->st[i].cluster, sizeof(j->names[0]));
    for (size_t i = 0; i < b->n_fix; i++)
        memcpy(j->names[j->n++], b->fix[i], sizeof(j->names[0]));
    if (j->n == 0) {
        free(j->names);
        free(j);
        return 0;
    }
    gs->head_job = j;
    if (pthread_create(&gs->head_th, NULL, head_thread, j) != 0) {
        head_thread(j);
        gs->head_job = NULL;
        return head_job_end(j, err);
    }
    return 0;
}

/* Bumped whenever this process moves branches (any handle, any thread). */
static atomic_uint_fast64_t refs_generation;

uint64_t gitstore_refs_generation(void)
{
    return atomic_load(&refs_generation);
}

static int move_refs(struct gitstore_batch *b, struct re_buf *err)
{
    struct gitstore *gs = b->gs;
    git_signature *sig = NULL;
    char p[4096];
    struct stat st;
    size_t n_loose = 0;
    int rc = 0, g;

    for (size_t i = 0; i < b->n_st; i++) {
        struct staged *s = &b->st[i];
        if (re_snprintf(p, sizeof(p), "%s%s", gs->gitdir, s->refname) < 0)
            return -RE_ETOOBIG;
        s->loose = lstat(p, &st) == 0;
        if (s->loose) {
            n_loose++;
            /* Check everything before moving anything, so the usual conflict
             * (another writer got there first) moves nothing. */
            if ((rc = ref_moved(b, s, err)) < 0)
                return rc;
        }
    }
    if (n_loose < b->n_st && (rc = move_packed(b, err)) < 0)
        return rc;
    if (n_loose) {
        if ((g = git_signature_new(&sig, "resedge-hub", "hub@resedge",
                                   (git_time_t)time(NULL), 0)) < 0)
            return git_err(err, "cannot make a signature", g);
        for (size_t lo = 0; lo < b->n_st && rc == 0; lo += GITSTORE_REFS_PER_TX) {
            size_t hi = lo + GITSTORE_REFS_PER_TX < b->n_st ? lo + GITSTORE_REFS_PER_TX
                                                            : b->n_st;
            rc = move_loose_chunk(b, lo, hi, sig, err);
        }
        git_signature_free(sig);
        if (rc < 0)
            return rc;
    }
    if (re_snprintf(p, sizeof(p), "%srefs/namespaces", gs->gitdir) < 0)
        return -RE_ETOOBIG;
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return fail(err, re_from_errno(errno), "cannot create '%s': %s", p, strerror(errno));
    /* The previous chunk's HEADs first: one job at a time. */
    if ((rc = head_wait(gs, err)) < 0)
        return rc;
    return head_start(gs, b, err);
}

/* Writes the staged objects as one pack, then moves the staged branches. */
static int flush(struct gitstore_batch *b, struct re_buf *err)
{
    struct gitstore *gs = b->gs;
    double t0 = now_s(), c0 = cpu_now_s(), t1, c1;
    int rc = 0;

    if (b->n_st > 1)
        qsort(b->st, b->n_st, sizeof(*b->st), cmp_staged);
    for (size_t i = 0; i + 1 < b->n_st; i++)
        if (strcmp(b->st[i].refname, b->st[i + 1].refname) == 0)
            return fail(err, -RE_EINVAL, "'%s' was put twice in one batch",
                        b->st[i].refname);
    /* Objects first: once the pack's index is in place they are durable. */
    if ((rc = write_pack(b, err)) < 0)
        return rc;
    git_mempack_reset(gs->mempack);
    git_odb_refresh(gs->odb);
    git_odb_refresh(gs->podb);
    pack_dir_stamp(gs, &gs->pack_stamp);
    b->n_objs = 0;
    b->mem = 0;
    t1 = now_s();
    c1 = cpu_now_s();
    gs->stats.pack_seconds += t1 - t0;
    gs->stats.pack_cpu_seconds += c1 - c0;
    rc = move_refs(b, err);
    atomic_fetch_add(&refs_generation, 1);  /* also after a failure: some may have moved */
    gs->stats.refs_seconds += now_s() - t1;
    gs->stats.refs_cpu_seconds += cpu_now_s() - c1;
    if (rc == 0) {
        gs->stats.commits += b->n_st;
        gs->stats.chunks += b->n_st > 0;
        b->n_st = 0;
        b->n_fix = 0;
    }
    return rc;
}

int gitstore_batch_commit(struct gitstore_batch *b, struct re_buf *err)
{
    int rc = flush(b, err);
    int hr = head_wait(b->gs, rc < 0 ? NULL : err);
    if (rc == 0)
        rc = hr;
    git_mempack_reset(b->gs->mempack);
    if (rc < 0)
        oidc_clear(&b->gs->oids);
    batch_free(b);
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

int gitstore_log(struct gitstore *gs, const char *cluster, size_t max,
                 int (*cb)(const struct gitstore_commit_info *ci, void *ud), void *ud)
{
    git_revwalk *w = NULL;
    git_oid head, oid;
    int rc, g;

    if ((rc = head_oid(gs, cluster, &head)) < 0)
        return rc;
    if (git_revwalk_new(&w, gs->repo) < 0)
        return -RE_EGIT;
    git_revwalk_simplify_first_parent(w);
    if (git_revwalk_push(w, &head) < 0) {
        rc = -RE_EGIT;
        goto out;
    }
    for (size_t n = 0; n < max && (g = git_revwalk_next(&oid, w)) == 0; n++) {
        git_commit *c = NULL;
        if (git_commit_lookup(&c, gs->repo, &oid) < 0) {
            rc = -RE_EGIT;
            goto out;
        }
        struct gitstore_commit_info ci;
        git_oid_tostr(ci.id, sizeof(ci.id), &oid);
        ci.time = (int64_t)git_commit_time(c);
        ci.author = git_commit_author(c)->name;
        ci.message = git_commit_message(c);
        rc = cb(&ci, ud);
        git_commit_free(c);
        if (rc != 0)
            goto out;
    }
out:
    git_revwalk_free(w);
    return rc;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static int resolve_oid(struct gitstore *gs, const char *cluster, const char *rev, git_oid *out)
{
    git_oid head;
    git_object *obj = NULL;
    char spec[NAME_MAX_ + 64];
    int rc;

    if ((rc = head_oid(gs, cluster, &head)) < 0)
        return rc;
    if (!rev || !*rev) {
        *out = head;
        return 0;
    }
    const char *suffix = NULL;
    if (strncmp(rev, "HEAD", 4) == 0)
        suffix = rev + 4;
    else if (strncmp(rev, "main", 4) == 0)
        suffix = rev + 4;
    if (suffix) {
        for (const char *s = suffix; *s; s++)
            if (!((*s >= '0' && *s <= '9') || *s == '~' || *s == '^'))
                return -RE_ENOENT;
        if (re_snprintf(spec, sizeof(spec), REF_FMT "%s", cluster, suffix) < 0)
            return -RE_ENOENT;
        if (git_revparse_single(&obj, gs->repo, spec) < 0)
            return -RE_ENOENT;
    } else {
        size_t n = strlen(rev);
        git_oid prefix;
        if (n < 4 || n > RE_OID_HEX || !is_hex(rev, n) || git_oid_fromstrn(&prefix, rev, n) < 0)
            return -RE_ENOENT;
        if (git_object_lookup_prefix(&obj, gs->repo, &prefix, n, GIT_OBJECT_COMMIT) < 0)
            return -RE_ENOENT;
    }
    git_object *peeled = NULL;
    if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
        git_object_free(obj);
        return -RE_ENOENT;
    }
    const git_oid *id = git_object_id(peeled);
    rc = 0;
    if (!git_oid_equal(id, &head) && git_graph_descendant_of(gs->repo, &head, id) != 1)
        rc = -RE_ENOENT;        /* not in this cluster's history */
    else
        *out = *id;
    git_object_free(peeled);
    git_object_free(obj);
    return rc;
}

int gitstore_resolve(struct gitstore *gs, const char *cluster, const char *rev,
                     char out_hex[RE_OID_BUF])
{
    git_oid oid;
    int rc = resolve_oid(gs, cluster, rev, &oid);
    if (rc == 0)
        git_oid_tostr(out_hex, RE_OID_BUF, &oid);
    return rc;
}

struct walk_ctx {
    git_repository *repo;
    struct render_tree *t;
    struct re_buf path;
    int rc;
};

static int walk_cb(const char *root, const git_tree_entry *e, void *ud)
{
    struct walk_ctx *w = ud;
    git_blob *blob = NULL;
    if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
        return 0;
    re_buf_reset(&w->path);
    if ((w->rc = re_buf_printf(&w->path, "%s%s", root, git_tree_entry_name(e))) < 0)
        return -1;
    if (git_blob_lookup(&blob, w->repo, git_tree_entry_id(e)) < 0) {
        w->rc = -RE_EGIT;
        return -1;
    }
    w->rc = render_tree_add(w->t, w->path.ptr, git_blob_rawcontent(blob),
                            (size_t)git_blob_rawsize(blob));
    git_blob_free(blob);
    return w->rc < 0 ? -1 : 0;
}

int gitstore_read_tree(struct render_tree **out, struct gitstore *gs,
                       const char *cluster, const char *rev)
{
    git_oid oid;
    git_commit *c = NULL;
    git_tree *tree = NULL;
    struct walk_ctx w = { gs->repo, NULL, { 0 }, 0 };
    int rc;

    re_buf_init(&w.path, 8192);
    if ((rc = resolve_oid(gs, cluster, rev, &oid)) < 0)
        goto out;
    if (git_commit_lookup(&c, gs->repo, &oid) < 0 || git_commit_tree(&tree, c) < 0) {
        rc = -RE_EGIT;
        goto out;
    }
    if ((rc = render_tree_new(&w.t)) < 0)
        goto out;
    if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w) < 0) {
        rc = w.rc < 0 ? w.rc : -RE_EGIT;
        goto out;
    }
    if ((rc = render_tree_finish(w.t)) < 0)
        goto out;
    *out = w.t;
    w.t = NULL;
out:
    render_tree_free(w.t);
    re_buf_release(&w.path);
    git_tree_free(tree);
    git_commit_free(c);
    return rc;
}

int gitstore_file(char **data, size_t *len, struct gitstore *gs, const char *cluster,
                  const char *rev, const char *path)
{
    git_oid oid;
    git_commit *c = NULL;
    git_tree *tree = NULL;
    git_tree_entry *e = NULL;
    git_blob *blob = NULL;
    int rc;

    if ((rc = resolve_oid(gs, cluster, rev, &oid)) < 0)
        return rc;
    if (git_commit_lookup(&c, gs->repo, &oid) < 0 || git_commit_tree(&tree, c) < 0) {
        rc = -RE_EGIT;
        goto out;
    }
    if (git_tree_entry_bypath(&e, tree, path) < 0 ||
        git_tree_entry_type(e) != GIT_OBJECT_BLOB) {
        rc = -RE_ENOENT;
        goto out;
    }
    if (git_blob_lookup(&blob, gs->repo, git_tree_entry_id(e)) < 0) {
        rc = -RE_EGIT;
        goto out;
    }
    size_t n = (size_t)git_blob_rawsize(blob);
    char *p = malloc(n + 1);
    if (!p) {
        rc = -RE_ENOMEM;
        goto out;
    }
    memcpy(p, git_blob_rawcontent(blob), n);
    p[n] = '\0';
    *data = p;
    *len = n;
out:
    git_blob_free(blob);
    git_tree_entry_free(e);
    git_tree_free(tree);
    git_commit_free(c);
    return rc;
}

int gitstore_count_objects(struct gitstore *gs, size_t *packs, size_t *loose)
{
    char dir[4096];
    size_t np = 0, nl = 0;
    DIR *d;
    struct dirent *de;
    const char *root = git_repository_path(gs->repo);

    if (re_snprintf(dir, sizeof(dir), "%sobjects/pack", root) < 0)
        return -RE_ETOOBIG;
    if ((d = opendir(dir))) {
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n > 5 && strcmp(de->d_name + n - 5, ".pack") == 0)
                np++;
        }
        closedir(d);
    }
    for (int i = 0; i < 256; i++) {
        if (re_snprintf(dir, sizeof(dir), "%sobjects/%02x", root, i) < 0)
            return -RE_ETOOBIG;
        if (!(d = opendir(dir)))
            continue;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.')
                nl++;
        closedir(d);
    }
    *packs = np;
    *loose = nl;
    return 0;
}
