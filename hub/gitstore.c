/* gitstore.c - the hub's GitOps repository: a bare libgit2 repository with
 * one namespaced branch per cluster, written in batches into one pack each
 * (mempack + packbuilder of the new objects only), refs moved by CAS. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include "error.h"
#include "gitstore.h"

#define REF_FMT   "refs/namespaces/%s/refs/heads/main"
#define HEAD_FMT  "refs/namespaces/%s/HEAD"
#define NAME_MAX_ 256
/* Each locked ref holds a file descriptor until its transaction ends. */
#define GITSTORE_REFS_PER_TX 200

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
    git_odb *odb;               /* repo's odb: loose + packs */
    git_repository *wrepo;
    git_odb *wodb;              /* mempack + proxy */
    git_odb_backend *mempack;   /* owned by wodb */
    char *path;
    bool batch_open;
};

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

struct staged {
    char refname[NAME_MAX_];
    char headname[NAME_MAX_];
    git_oid old;
    bool had_old;
    git_oid new_;
};

struct gitstore_batch {
    struct gitstore *gs;
    git_oid *objs;              /* new objects in mempack (may repeat) */
    size_t n_objs, cap_objs;
    struct staged *st;
    size_t n_st, cap_st;
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
    git_odb_backend *proxy = NULL;
    if ((g = git_repository_odb(&gs->odb, gs->repo)) < 0 ||
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
    *out = gs;
    gs = NULL;
out:
    gitstore_free(gs);
    return rc;
}

void gitstore_free(struct gitstore *gs)
{
    if (!gs)
        return;
    if (gs->mempack)
        git_mempack_reset(gs->mempack);
    git_repository_free(gs->wrepo);
    git_odb_free(gs->wodb);
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

int gitstore_head(struct gitstore *gs, const char *cluster, char out_hex[41])
{
    git_oid oid;
    int rc = head_oid(gs, cluster, &oid);
    if (rc == 0)
        git_oid_tostr(out_hex, 41, &oid);
    return rc;
}

/* ---- batch ---------------------------------------------------------------- */

int gitstore_batch_begin(struct gitstore_batch **out, struct gitstore *gs,
                         struct re_buf *err)
{
    struct gitstore_batch *b;
    if (gs->batch_open) {
        if (err) {
            re_buf_reset(err);
            re_buf_append_str(err, "a batch is already open on this repository");
        }
        return -RE_EBUSY;
    }
    if (!(b = calloc(1, sizeof(*b))))
        return -RE_ENOMEM;
    b->gs = gs;
    gs->batch_open = true;
    *out = b;
    return 0;
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

static int write_blob(struct gitstore_batch *b, const char *data, size_t len, git_oid *out)
{
    git_odb_backend *mp = b->gs->mempack;
    if (git_odb_hash(out, data, len, GIT_OBJECT_BLOB) < 0)
        return -RE_EGIT;
    /* Known already (earlier in this batch, or on disk): nothing to write.
     * Asked of the backends, not of the writer odb, whose cache may still
     * hold objects of a failed batch that never reached the disk. No
     * refresh: a pack added behind our back only costs a duplicate. */
    if (mp->exists(mp, out) ||
        git_odb_exists_ext(b->gs->odb, out, GIT_ODB_LOOKUP_NO_REFRESH))
        return 0;
    if (mp->write(mp, out, data, len, GIT_OBJECT_BLOB) < 0)
        return -RE_EGIT;
    return record(b, out);
}

/* Builds the tree of entries [lo, hi) whose paths share a prefix of off bytes. */
static int build_tree(struct gitstore_batch *b, const struct render_tree *t,
                      size_t lo, size_t hi, size_t off, git_oid *out)
{
    git_treebuilder *bld = NULL;
    git_oid oid;
    char name[NAME_MAX_ * 16];
    int rc = 0;

    if (git_treebuilder_new(&bld, b->gs->wrepo, NULL) < 0)
        return -RE_EGIT;
    for (size_t i = lo; i < hi;) {
        const char *rest = t->v[i].path + off;
        const char *slash = strchr(rest, '/');
        if (!slash) {
            if ((rc = write_blob(b, t->v[i].data, t->v[i].len, &oid)) < 0)
                goto out;
            if (git_treebuilder_insert(NULL, bld, rest, &oid, GIT_FILEMODE_BLOB) < 0) {
                rc = -RE_EINVAL;
                goto out;
            }
            i++;
            continue;
        }
        size_t nlen = (size_t)(slash - rest);
        if (nlen >= sizeof(name)) {
            rc = -RE_EINVAL;
            goto out;
        }
        memcpy(name, rest, nlen);
        name[nlen] = '\0';
        size_t j = i + 1;
        while (j < hi && strncmp(t->v[j].path + off, rest, nlen + 1) == 0)
            j++;
        if ((rc = build_tree(b, t, i, j, off + nlen + 1, &oid)) < 0)
            goto out;
        if (git_treebuilder_insert(NULL, bld, name, &oid, GIT_FILEMODE_TREE) < 0) {
            rc = -RE_EINVAL;
            goto out;
        }
        i = j;
    }
    if (git_treebuilder_write(out, bld) < 0) {
        rc = -RE_EGIT;
        goto out;
    }
    rc = record_if_new(b, out);
out:
    git_treebuilder_free(bld);
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

int gitstore_batch_put(struct gitstore_batch *b, const char *cluster,
                       const struct render_tree *tree, const char *author,
                       const char *message, const char *expected_old_hex,
                       bool *changed, char out_hex[41])
{
    struct gitstore *gs = b->gs;
    struct staged s;
    git_oid tree_oid, commit_oid;
    git_commit *parent = NULL;
    git_tree *gtree = NULL;
    git_signature *sig = NULL;
    char email[NAME_MAX_];
    int rc = 0, g;

    memset(&s, 0, sizeof(s));
    if (!cluster_ok(cluster) || !tree->sorted || !author_ok(author) || !message)
        return -RE_EINVAL;
    re_snprintf(s.refname, sizeof(s.refname), REF_FMT, cluster);
    re_snprintf(s.headname, sizeof(s.headname), HEAD_FMT, cluster);
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
    if ((rc = build_tree(b, tree, 0, tree->n, 0, &tree_oid)) < 0)
        goto out;
    if (s.had_old) {
        if ((g = git_commit_lookup(&parent, gs->wrepo, &s.old)) < 0) {
            rc = git_err(NULL, "read head commit", g);
            goto out;
        }
        if (git_oid_equal(git_commit_tree_id(parent), &tree_oid)) {
            if (changed)
                *changed = false;
            goto out;
        }
    }
    if ((g = git_tree_lookup(&gtree, gs->wrepo, &tree_oid)) < 0) {
        rc = git_err(NULL, "read new tree", g);
        goto out;
    }
    author_email(email, sizeof(email), author);
    if ((g = git_signature_new(&sig, author, email, (git_time_t)time(NULL), 0)) < 0) {
        rc = -RE_EINVAL;
        goto out;
    }
    const git_commit *parents[1] = { parent };
    if ((g = git_commit_create(&commit_oid, gs->wrepo, NULL, sig, sig, "UTF-8", message,
                               gtree, parent ? 1 : 0, parents)) < 0) {
        rc = git_err(NULL, "create commit", g);
        goto out;
    }
    if ((rc = record_if_new(b, &commit_oid)) < 0)
        goto out;
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
        git_oid_tostr(out_hex, 41, &commit_oid);
out:
    git_signature_free(sig);
    git_tree_free(gtree);
    git_commit_free(parent);
    return rc;
}

static void batch_free(struct gitstore_batch *b)
{
    b->gs->batch_open = false;
    free(b->objs);
    free(b->st);
    free(b);
}

void gitstore_batch_abort(struct gitstore_batch *b)
{
    if (!b)
        return;
    git_mempack_reset(b->gs->mempack);
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
    if ((rc = re_snprintf(dir, sizeof(dir), "%sobjects/pack",
                          git_repository_path(b->gs->repo))) < 0)
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
out:
    git_indexer_free(ix);
    git_buf_dispose(&pack);
    git_packbuilder_free(pb);
    return rc;
}

static int ref_moved(struct gitstore_batch *b, const struct staged *s, struct re_buf *err)
{
    git_oid cur;
    int g = git_reference_name_to_id(&cur, b->gs->repo, s->refname);
    if (g < 0 && g != GIT_ENOTFOUND)
        return git_err(err, s->refname, g);
    if ((g == 0) != s->had_old || (g == 0 && !git_oid_equal(&cur, &s->old))) {
        if (err) {
            re_buf_reset(err);
            re_buf_printf(err, "'%s' moved since the change was prepared", s->refname);
        }
        return -RE_ECONFLICT;
    }
    return 0;
}

/* Moves staged[lo, hi) in one transaction: lock all, re-check, then update. */
static int move_chunk(struct gitstore_batch *b, size_t lo, size_t hi, git_signature *sig,
                      struct re_buf *err)
{
    git_transaction *tx = NULL;
    int rc = 0, g;

    if ((g = git_transaction_new(&tx, b->gs->repo)) < 0)
        return git_err(err, "cannot start a ref transaction", g);
    for (size_t i = lo; i < hi; i++) {
        struct staged *s = &b->st[i];
        if ((g = git_transaction_lock_ref(tx, s->refname)) < 0 ||
            (!s->had_old && (g = git_transaction_lock_ref(tx, s->headname)) < 0)) {
            rc = git_err(err, s->refname, g);
            if (g == GIT_ELOCKED)
                rc = -RE_ECONFLICT;
            goto out;
        }
        if ((rc = ref_moved(b, s, err)) < 0)
            goto out;
    }
    for (size_t i = lo; i < hi; i++) {
        struct staged *s = &b->st[i];
        if ((g = git_transaction_set_target(tx, s->refname, &s->new_, sig, "resedge")) < 0 ||
            (!s->had_old &&
             (g = git_transaction_set_symbolic_target(tx, s->headname, s->refname, sig,
                                                      "resedge")) < 0)) {
            rc = git_err(err, s->refname, g);
            goto out;
        }
    }
    if ((g = git_transaction_commit(tx)) < 0)
        rc = git_err(err, "cannot update branches", g);
out:
    git_transaction_free(tx);
    return rc;
}

static int move_refs(struct gitstore_batch *b, struct re_buf *err)
{
    git_signature *sig = NULL;
    int rc = 0, g;

    if (b->n_st == 0)
        return 0;
    /* Check everything before moving anything, so the usual conflict (another
     * writer got there first) moves nothing. */
    for (size_t i = 0; i < b->n_st; i++)
        if ((rc = ref_moved(b, &b->st[i], err)) < 0)
            return rc;
    if ((g = git_signature_new(&sig, "resedge-hub", "hub@resedge", (git_time_t)time(NULL), 0)) < 0)
        return git_err(err, "cannot make a signature", g);
    for (size_t lo = 0; lo < b->n_st && rc == 0; lo += GITSTORE_REFS_PER_TX) {
        size_t hi = lo + GITSTORE_REFS_PER_TX < b->n_st ? lo + GITSTORE_REFS_PER_TX : b->n_st;
        rc = move_chunk(b, lo, hi, sig, err);
    }
    git_signature_free(sig);
    return rc;
}

int gitstore_batch_commit(struct gitstore_batch *b, struct re_buf *err)
{
    int rc = 0;

    if (b->n_st > 1)
        qsort(b->st, b->n_st, sizeof(*b->st), cmp_staged);
    for (size_t i = 0; i + 1 < b->n_st; i++)
        if (strcmp(b->st[i].refname, b->st[i + 1].refname) == 0) {
            if (err) {
                re_buf_reset(err);
                re_buf_printf(err, "'%s' was put twice in one batch", b->st[i].refname);
            }
            rc = -RE_EINVAL;
            goto out;
        }
    /* Objects first: once the pack's index is in place they are durable. */
    if ((rc = write_pack(b, err)) < 0)
        goto out;
    git_mempack_reset(b->gs->mempack);
    git_odb_refresh(b->gs->odb);
    rc = move_refs(b, err);
out:
    git_mempack_reset(b->gs->mempack);
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
        if (n < 4 || n > 40 || !is_hex(rev, n) || git_oid_fromstrn(&prefix, rev, n) < 0)
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
                     char out_hex[41])
{
    git_oid oid;
    int rc = resolve_oid(gs, cluster, rev, &oid);
    if (rc == 0)
        git_oid_tostr(out_hex, 41, &oid);
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
