/* render.c - turns one cluster's desired state into the files of its GitOps
 * branch. Each manifest is built as cJSON and emitted with libyaml (yamlout),
 * so no inventory value is ever pasted into YAML text. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "error.h"
#include "hash.h"
#include "oid.h"
#include "render.h"
#include "validate.h"
#include "yamlout.h"

#define RENDER_FILE_MAX     (16u << 20)
#define RENDER_MAX_FILES    100000u
#define FLUX_NS             "flux-system"
#define FLUX_SOURCE_NAME    "resedge-hub"
/* each namespace's account for applying its apps (render_namespace) */
#define TENANT_SA           "resedge-tenant"
#define FLUX_SOURCE_SECRET  "resedge-hub-tls"
#define KUSTOMIZE_API       "kustomize.config.k8s.io/v1beta1"
#define KUSTOMIZE_COMPONENT_API "kustomize.config.k8s.io/v1alpha1"
#define FLUX_KS_API         "kustomize.toolkit.fluxcd.io/v1"
#define FLUX_SRC_API        "source.toolkit.fluxcd.io/v1"
#define LABEL_CLUSTER       "resedge.io/cluster"
#define LABEL_APP           "resedge.io/app"
#define LABEL_VERSION       "resedge.io/version"
#define CLUSTER_DIR         "cluster"

/* ---- render_tree ---------------------------------------------------------- */

int render_tree_new(struct render_tree **out)
{
    struct render_tree *t = calloc(1, sizeof(*t));
    if (!t)
        return -RE_ENOMEM;
    t->sorted = true;
    *out = t;
    return 0;
}

void render_tree_free(struct render_tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].path);
        free(t->v[i].data);
    }
    free(t->v);
    free(t);
}

static bool path_ok(const char *p)
{
    size_t len = strlen(p);
    if (len == 0 || len > 4096 || p[0] == '/')
        return false;
    const char *seg = p;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.') ||
            (n == 4 && strncasecmp(seg, ".git", 4) == 0))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)seg[i] < 0x20 || seg[i] == 0x7f || seg[i] == '\\')
                return false;
        if (!slash)
            return true;
        seg = slash + 1;
    }
}

int render_tree_add_owned(struct render_tree *t, const char *path, char *data, size_t len)
{
    int rc = 0;
    char *p = NULL;
    if (!path_ok(path)) {
        rc = -RE_EINVAL;
        goto out;
    }
    if (t->n >= RENDER_MAX_FILES) {
        rc = -RE_ETOOBIG;
        goto out;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        struct render_entry *v = realloc(t->v, cap * sizeof(*v));
        if (!v) {
            rc = -RE_ENOMEM;
            goto out;
        }
        t->v = v;
        t->cap = cap;
    }
    if (!(p = strdup(path))) {
        rc = -RE_ENOMEM;
        goto out;
    }
    if (!data && !(data = calloc(1, 1))) {
        rc = -RE_ENOMEM;
        goto out;
    }
    t->v[t->n++] = (struct render_entry){ p, data, len };
    p = NULL;
    data = NULL;
    t->sorted = false;
out:
    free(p);
    free(data);
    return rc;
}

int render_tree_add(struct render_tree *t, const char *path, const void *data, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return -RE_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return render_tree_add_owned(t, path, copy, len);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct render_entry *)a)->path,
                  ((const struct render_entry *)b)->path);
}

/* Index of the first entry whose path is >= key. */
static size_t lower_bound(const struct render_tree *t, const char *key)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(t->v[mid].path, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int render_tree_finish(struct render_tree *t)
{
    if (t->sorted)
        return 0;
    qsort(t->v, t->n, sizeof(*t->v), entry_cmp);
    t->sorted = true;
    for (size_t i = 0; i + 1 < t->n; i++)
        if (strcmp(t->v[i].path, t->v[i + 1].path) == 0)
            return -RE_EEXIST;
    /* A path that is also a directory ("a" and "a/b"): "a/" sorts right
     * after "a" and its siblings that extend it ("a-b", "a.x"). */
    for (size_t i = 0; i < t->n; i++) {
        size_t n = strlen(t->v[i].path);
        char pre[4098];
        if (n + 1 >= sizeof(pre))
            return -RE_EINVAL;
        memcpy(pre, t->v[i].path, n);
        pre[n] = '/';
        pre[n + 1] = '\0';
        size_t j = lower_bound(t, pre);
        if (j < t->n && strncmp(t->v[j].path, pre, n + 1) == 0)
            return -RE_EEXIST;
    }
    return 0;
}

const struct render_entry *render_tree_get(const struct render_tree *t, const char *path)
{
    if (!t->sorted) {
        for (size_t i = 0; i < t->n; i++)
            if (strcmp(t->v[i].path, path) == 0)
                return &t->v[i];
        return NULL;
    }
    size_t i = lower_bound(t, path);
    return i < t->n && strcmp(t->v[i].path, path) == 0 ? &t->v[i] : NULL;
}

bool render_tree_equal(const struct render_tree *a, const struct render_tree *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].path, b->v[i].path) != 0 || a->v[i].len != b->v[i].len ||
            (a->v[i].len && memcmp(a->v[i].data, b->v[i].data, a->v[i].len) != 0))
            return false;
    return true;
}

static int mkdirs_for(char *path)
{
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int r = mkdir(path, 0755);
        int e = errno;
        *s = '/';
        if (r < 0 && e != EEXIST)
            return re_from_errno(e);
    }
    return 0;
}

int render_tree_write_dir(const struct render_tree *t, const char *dir)
{
    struct re_buf p;
    int rc = 0, fd = -1;
    re_buf_init(&p, 8192);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return re_from_errno(errno);
    for (size_t i = 0; i < t->n; i++) {
        re_buf_reset(&p);
        if ((rc = re_buf_printf(&p, "%s/%s", dir, t->v[i].path)) < 0 ||
            (rc = mkdirs_for(p.ptr)) < 0)
            goto out;
        fd = open(p.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            rc = re_from_errno(errno);
            goto out;
        }
        size_t off = 0;
        while (off < t->v[i].len) {
            ssize_t w = write(fd, t->v[i].data + off, t->v[i].len - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rc = re_from_errno(errno);
                goto out;
            }
            off += (size_t)w;
        }
        if (close(fd) < 0) {
            fd = -1;
            rc = re_from_errno(errno);
            goto out;
        }
        fd = -1;
    }
out:
    if (fd >= 0)
        close(fd);
    re_buf_release(&p);
    return rc;
}

/* ---- validation ----------------------------------------------------------- */

bool render_is_dns_label(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Kubernetes label value (shared/validate.c). */
static bool is_label_value(const char *s)
{
    return validate_label_value(re_str_c(s), NULL) == 0;
}

/* ConfigMap data key: [-._a-zA-Z0-9]+, at most 253 characters. */
static bool is_configmap_key(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool no_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool is_flux_url(const char *u)
{
    if (!u || !no_controls(u) || strchr(u, ' '))
        return false;
    return (strncmp(u, "https://", 8) == 0 && u[8]) ||
           (strncmp(u, "http://", 7) == 0 && u[7]) ||
           (strncmp(u, "ssh://", 6) == 0 && u[6]);
}

/* v1, 1.2.3, v2.0.0-rc1, 1.0+build: a tag rather than a branch. */
static bool looks_like_version(const char *s)
{
    if (*s == 'v' || *s == 'V')
        s++;
    if (!(*s >= '0' && *s <= '9'))
        return false;
    while ((*s >= '0' && *s <= '9') || (*s == '.' && s[1] >= '0' && s[1] <= '9'))
        s++;
    if (*s == '\0')
        return true;
    if (*s != '-' && *s != '+')
        return false;
    if (!*++s)
        return false;
    for (; *s; s++)
        if (!is_alnum(*s) && *s != '.' && *s != '-')
            return false;
    return true;
}


/* ---- manifest building ---------------------------------------------------- */

struct rctx {
    struct render_tree *t;
    struct re_buf *err;
    const struct render_cluster *c;
    bool oom;
};

#define S(s) ((s) ? (s) : "(null)")

__attribute__((format(printf, 3, 4)))
static int fail(struct rctx *x, int rc, const char *fmt, ...)
{
    if (x->err) {
        va_list ap;
        va_start(ap, fmt);
        re_buf_reset(x->err);
        re_buf_vprintf(x->err, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static cJSON *chk(struct rctx *x, cJSON *j)
{
    if (!j)
        x->oom = true;
    return j;
}

static cJSON *jobj(struct rctx *x, cJSON *parent, const char *key)
{
    return chk(x, key ? cJSON_AddObjectToObject(parent, key) : cJSON_CreateObject());
}

static cJSON *jarr(struct rctx *x, cJSON *parent, const char *key)
{
    return chk(x, cJSON_AddArrayToObject(parent, key));
}

static void jstr(struct rctx *x, cJSON *o, const char *key, const char *val)
{
    chk(x, cJSON_AddStringToObject(o, key, val));
}

static void jnum(struct rctx *x, cJSON *o, const char *key, double v)
{
    chk(x, cJSON_AddNumberToObject(o, key, v));
}

static void jbool(struct rctx *x, cJSON *o, const char *key, bool v)
{
    chk(x, cJSON_AddBoolToObject(o, key, v));
}

static void jpush_str(struct rctx *x, cJSON *arr, const char *val)
{
    cJSON *s = chk(x, cJSON_CreateString(val));
    if (s && !cJSON_AddItemToArray(arr, s)) {
        cJSON_Delete(s);
        x->oom = true;
    }
}

static cJSON *jpush_obj(struct rctx *x, cJSON *arr)
{
    cJSON *o = chk(x, cJSON_CreateObject());
    if (o && !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        x->oom = true;
        return NULL;
    }
    return o;
}

/* apiVersion, kind, metadata {name, namespace}. */
static cJSON *manifest(struct rctx *x, const char *api, const char *kind,
                       const char *name, const char *ns)
{
    cJSON *d = jobj(x, NULL, NULL);
    jstr(x, d, "apiVersion", api);
    jstr(x, d, "kind", kind);
    cJSON *md = jobj(x, d, "metadata");
    jstr(x, md, "name", name);
    if (ns)
        jstr(x, md, "namespace", ns);
    return d;
}

static cJSON *kustomization(struct rctx *x)
{
    cJSON *d = jobj(x, NULL, NULL);
    jstr(x, d, "apiVersion", KUSTOMIZE_API);
    jstr(x, d, "kind", "Kustomization");
    return d;
}

/* labels: [{pairs: {...}, includeSelectors: false}] */
static void klabels(struct rctx *x, cJSON *k, const struct render_kv *kv, size_t n)
{
    cJSON *arr = jarr(x, k, "labels");
    cJSON *e = jpush_obj(x, arr);
    cJSON *pairs = jobj(x, e, "pairs");
    for (size_t i = 0; i < n; i++)
        jstr(x, pairs, kv[i].key, kv[i].value);
    jbool(x, e, "includeSelectors", false);
}

/* ---- memo of emitted files ------------------------------------------------
 * Most files are the same in thousands of clusters (same namespace, same
 * application version): libyaml emits each distinct document once. The key
 * is the complete document tree, serialized unambiguously (type tags, length
 * prefixes), so a hit is byte for byte what the emitter would write for
 * these inputs, never a neighbour's file; no hash alone decides. Bounded:
 * emptied when full. One mutex: render_cluster may run on several threads. */

#define RCACHE_SLOTS     (1u << 16)         /* power of two */
#define RCACHE_MAX_N     (RCACHE_SLOTS / 2)
#define RCACHE_MAX_BYTES (64u << 20)
#define RCACHE_MAX_KEY   (64u << 10)

/* A key under construction: a plain growable array (re_buf's bounds checks
 * and NUL upkeep cost more than the rest of a hit); past RCACHE_MAX_KEY the
 * key is abandoned and the document is simply emitted. */
struct kbuf {
    char *p;
    size_t n, cap;
    bool bad;
};

struct rcache_ent {
    uint64_t h;
    char *key;                  /* NULL: empty slot */
    size_t klen;
    char *val;
    size_t vlen;
};

static struct {
    pthread_mutex_t mu;
    struct rcache_ent *v;
    size_t n, bytes;
    uint64_t hits, misses;
    bool off;
} rcache = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void rcache_clear_locked(void)
{
    if (!rcache.v)
        return;
    for (size_t i = 0; i < RCACHE_SLOTS; i++) {
        free(rcache.v[i].key);
        free(rcache.v[i].val);
    }
    memset(rcache.v, 0, RCACHE_SLOTS * sizeof(*rcache.v));
    rcache.n = rcache.bytes = 0;
}

static struct rcache_ent *rcache_slot(const char *key, size_t klen, uint64_t h)
{
    for (size_t i = (size_t)h & (RCACHE_SLOTS - 1);; i = (i + 1) & (RCACHE_SLOTS - 1)) {
        struct rcache_ent *e = &rcache.v[i];
        if (!e->key || (e->h == h && e->klen == klen && memcmp(e->key, key, klen) == 0))
            return e;
    }
}

/* A malloc'd copy of the file for key (NUL-terminated), or NULL. */
static char *rcache_get(const struct kbuf *key, size_t *len)
{
    char *copy = NULL;
    if (key->bad || key->n == 0)
        return NULL;
    uint64_t h = re_hash64(key->p, key->n, 0);
    pthread_mutex_lock(&rcache.mu);
    if (rcache.v && !rcache.off) {
        struct rcache_ent *e = rcache_slot(key->p, key->n, h);
        if (e->key && (copy = malloc(e->vlen + 1))) {
            memcpy(copy, e->val, e->vlen);
            copy[e->vlen] = '\0';
            *len = e->vlen;
        }
    }
    if (copy)
        rcache.hits++;
    else
        rcache.misses++;
    pthread_mutex_unlock(&rcache.mu);
    return copy;
}

/* Best effort: a failed insert only costs speed. */
static void rcache_put(const struct kbuf *key, const char *val, size_t vlen)
{
    if (key->bad || key->n == 0)
        return;
    uint64_t h = re_hash64(key->p, key->n, 0);
    pthread_mutex_lock(&rcache.mu);
    if (rcache.off)
        goto out;
    if (!rcache.v && !(rcache.v = calloc(RCACHE_SLOTS, sizeof(*rcache.v))))
        goto out;
    if (rcache.n >= RCACHE_MAX_N || rcache.bytes + key->n + vlen > RCACHE_MAX_BYTES)
        rcache_clear_locked();
    struct rcache_ent *e = rcache_slot(key->p, key->n, h);
    if (e->key)
        goto out;
    char *k = malloc(key->n), *v = malloc(vlen ? vlen : 1);
    if (!k || !v) {
        free(k);
        free(v);
        goto out;
    }
    memcpy(k, key->p, key->n);
    memcpy(v, val, vlen);
    *e = (struct rcache_ent){ h, k, key->n, v, vlen };
    rcache.n++;
    rcache.bytes += key->n + vlen;
out:
    pthread_mutex_unlock(&rcache.mu);
}

void render_cache_set_enabled(bool on)
{
    pthread_mutex_lock(&rcache.mu);
    rcache.off = !on;
    rcache_clear_locked();
    pthread_mutex_unlock(&rcache.mu);
}

void render_cache_stats(uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&rcache.mu);
    *hits = rcache.hits;
    *misses = rcache.misses;
    pthread_mutex_unlock(&rcache.mu);
}

static void kput(struct kbuf *k, const void *d, size_t n)
{
    if (k->bad)
        return;
    if (k->n + n > RCACHE_MAX_KEY) {
        k->bad = true;
        return;
    }
    if (k->cap - k->n < n) {
        size_t cap = k->cap ? k->cap : 1024;
        while (cap - k->n < n)
            cap *= 2;
        char *v = realloc(k->p, cap);
        if (!v) {
            k->bad = true;
            return;
        }
        k->p = v;
        k->cap = cap;
    }
    memcpy(k->p + k->n, d, n);
    k->n += n;
}

static void key_bytes(struct kbuf *k, char tag, const void *p, size_t n)
{
    unsigned char hdr[5] = { (unsigned char)tag, (unsigned char)n, (unsigned char)(n >> 8),
                             (unsigned char)(n >> 16), (unsigned char)(n >> 24) };
    if (n > UINT32_MAX)
        k->bad = true;
    kput(k, hdr, sizeof(hdr));
    kput(k, p, n);
}

static void key_str(struct kbuf *k, char tag, const char *s)
{
    key_bytes(k, tag, s ? s : "", s ? strlen(s) : 0);
}

/* The cache key of a cJSON tree: every type, name and value, in order. */
static void key_json(struct kbuf *k, const cJSON *j)
{
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        kput(k, cJSON_IsObject(j) ? "{" : "[", 1);
        for (const cJSON *c = j->child; c && !k->bad; c = c->next) {
            if (cJSON_IsObject(j))
                key_str(k, 'k', c->string);
            key_json(k, c);
        }
        kput(k, "}", 1);
    } else if (cJSON_IsString(j)) {
        key_str(k, 's', j->valuestring);
    } else if (cJSON_IsNumber(j)) {
        key_bytes(k, 'n', &j->valuedouble, sizeof(j->valuedouble));
    } else if (cJSON_IsTrue(j)) {
        kput(k, "t", 1);
    } else if (cJSON_IsFalse(j)) {
        kput(k, "f", 1);
    } else if (cJSON_IsNull(j)) {
        kput(k, "z", 1);
    } else {
        k->bad = true;          /* not cached; the emitter reports it */
    }
}

/* Emits docs (taking ownership) as the file at path. shared: the document
 * may be the same in other clusters (worth remembering). */
static int put_docs_(struct rctx *x, const char *path, cJSON **docs, size_t n, bool shared)
{
    struct re_buf out, e;
    struct kbuf key = { NULL, 0, 0, !shared };
    int rc = 0;
    char *hit = NULL;
    size_t len = 0;
    re_buf_init(&out, RENDER_FILE_MAX);
    re_buf_init(&e, 1024);
    if (x->oom) {
        rc = -RE_ENOMEM;
        goto out;
    }
    kput(&key, "Y", 1);
    for (size_t i = 0; i < n; i++) {
        kput(&key, "D", 1);
        key_json(&key, docs[i]);
    }
    hit = rcache_get(&key, &len);
    if (!hit) {
        if ((rc = yamlout_docs(&out, (const cJSON *const *)docs, n, &e)) < 0) {
            fail(x, rc, "%s: %s", path, e.ptr ? e.ptr : re_strerror(rc));
            goto out;
        }
        rcache_put(&key, out.ptr ? out.ptr : "", out.len);
        len = out.len;
        hit = re_buf_steal(&out);
    }
    rc = render_tree_add_owned(x->t, path, hit, len);
    if (rc == -RE_EINVAL)
        fail(x, rc, "invalid file path '%s'", path);
out:
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(docs[i]);
    re_buf_release(&out);
    re_buf_release(&e);
    free(key.p);
    return rc;
}

static int put_doc(struct rctx *x, const char *path, cJSON *doc)
{
    return put_docs_(x, path, &doc, 1, true);
}

/* A file that names the cluster: never the same elsewhere, not remembered. */
static int put_doc_own(struct rctx *x, const char *path, cJSON *doc)
{
    return put_docs_(x, path, &doc, 1, false);
}

/* ---- sorting inputs, so input order never changes output ----------------- */

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct render_kv *)a)->key, ((const struct render_kv *)b)->key);
}

static int cmp_ns_ptr(const void *a, const void *b)
{
    return strcmp((*(const struct render_namespace *const *)a)->name,
                  (*(const struct render_namespace *const *)b)->name);
}

static int cmp_app_ptr(const void *a, const void *b)
{
    return strcmp((*(const struct render_app *const *)a)->name,
                  (*(const struct render_app *const *)b)->name);
}

static int cmp_pol_ptr(const void *a, const void *b)
{
    return strcmp((*(const struct render_policy *const *)a)->name,
                  (*(const struct render_policy *const *)b)->name);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- the parts of the tree ------------------------------------------------ */

/* resedge-config data: config, then metadata as cluster.<key> (wins on a clash). */
static int build_config_data(struct rctx *x, struct render_kv **out, size_t *n_out,
                             char ***keys_out)
{
    const struct render_cluster *c = x->c;
    size_t n = c->n_config + c->n_metadata, m = 0;
    struct render_kv *kv = calloc(n ? n : 1, sizeof(*kv));
    char **keys = calloc(c->n_metadata ? c->n_metadata : 1, sizeof(*keys));
    int rc = 0;
    if (!kv || !keys) {
        rc = -RE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->n_metadata; i++) {
        struct re_buf k;
        re_buf_init(&k, 512);
        if ((rc = re_buf_printf(&k, "cluster.%s", c->metadata[i].key ? c->metadata[i].key : "")) < 0) {
            re_buf_release(&k);
            goto out;
        }
        keys[i] = re_buf_steal(&k);
        kv[m++] = (struct render_kv){ keys[i], c->metadata[i].value };
    }
    for (size_t i = 0; i < c->n_config; i++)
        kv[m++] = c->config[i];
    for (size_t i = 0; i < m; i++) {
        if (!kv[i].key || !is_configmap_key(kv[i].key)) {
            rc = fail(x, -RE_EINVAL, "configuration key '%s' is not a valid ConfigMap key "
                      "(letters, digits, '-', '_', '.')", S(kv[i].key));
            goto out;
        }
        if (!kv[i].value) {
            rc = fail(x, -RE_EINVAL, "configuration key '%s' has no value", kv[i].key);
            goto out;
        }
    }
    /* Stable: metadata entries come first, so after sorting they are first
     * among equal keys; keep the first of each run. */
    for (size_t i = 1; i < m; i++) {
        struct render_kv t = kv[i];
        size_t j = i;
        while (j > 0 && cmp_kv(&kv[j - 1], &t) > 0) {
            kv[j] = kv[j - 1];
            j--;
        }
        kv[j] = t;
    }
    size_t w = 0;
    for (size_t i = 0; i < m; i++)
        if (w == 0 || strcmp(kv[w - 1].key, kv[i].key) != 0)
            kv[w++] = kv[i];
    *out = kv;
    *n_out = w;
    *keys_out = keys;
    kv = NULL;
    keys = NULL;
out:
    if (keys)
        for (size_t i = 0; i < c->n_metadata; i++)
            free(keys[i]);
    free(keys);
    free(kv);
    return rc;
}

static int render_namespace(struct rctx *x, const struct render_namespace *ns,
                            const struct render_kv *data, size_t n_data)
{
    char dir[128], path[192];
    const char *files[12];
    size_t nf = 0;
    int rc;
    const char *name = ns->name;

    if ((rc = re_snprintf(dir, sizeof(dir), "namespaces/%s", name)) < 0)
        return rc;

    cJSON *d = manifest(x, "v1", "Namespace", name, NULL);
    re_snprintf(path, sizeof(path), "%s/namespace.yaml", dir);
    if ((rc = put_doc(x, path, d)) < 0)
        return rc;
    files[nf++] = "namespace.yaml";

    if (ns->quota_cpu || ns->quota_memory || ns->quota_pods) {
        d = manifest(x, "v1", "ResourceQuota", "resedge-quota", name);
        cJSON *hard = jobj(x, jobj(x, d, "spec"), "hard");
        if (ns->quota_cpu)
            jstr(x, hard, "cpu", ns->quota_cpu);
        if (ns->quota_memory)
            jstr(x, hard, "memory", ns->quota_memory);
        if (ns->quota_pods)
            jstr(x, hard, "pods", ns->quota_pods);
        re_snprintf(path, sizeof(path), "%s/resourcequota.yaml", dir);
        if ((rc = put_doc(x, path, d)) < 0)
            return rc;
        files[nf++] = "resourcequota.yaml";
    }

    /* Defaults so that pods without requests still fit under a quota. */
    d = manifest(x, "v1", "LimitRange", "resedge-defaults", name);
    cJSON *lim = jpush_obj(x, jarr(x, jobj(x, d, "spec"), "limits"));
    jstr(x, lim, "type", "Container");
    cJSON *def = jobj(x, lim, "default");
    jstr(x, def, "cpu", "500m");
    jstr(x, def, "memory", "512Mi");
    cJSON *req = jobj(x, lim, "defaultRequest");
    jstr(x, req, "cpu", "100m");
    jstr(x, req, "memory", "128Mi");
    re_snprintf(path, sizeof(path), "%s/limitrange.yaml", dir);
    if ((rc = put_doc(x, path, d)) < 0)
        return rc;
    files[nf++] = "limitrange.yaml";

    if (ns->n_owners > 0) {
        const char **own = calloc(ns->n_owners, sizeof(*own));
        if (!own)
            return -RE_ENOMEM;
        for (size_t i = 0; i < ns->n_owners; i++)
            own[i] = ns->owners[i];
        for (size_t i = 0; i < ns->n_owners; i++)
            if (!own[i] || !own[i][0] || !no_controls(own[i])) {
                free(own);
                return fail(x, -RE_EINVAL, "namespace '%s': invalid owner", name);
            }
        qsort(own, ns->n_owners, sizeof(*own), cmp_str_ptr);
        d = manifest(x, "rbac.authorization.k8s.io/v1", "RoleBinding", "resedge-owners", name);
        cJSON *ref = jobj(x, d, "roleRef");
        jstr(x, ref, "apiGroup", "rbac.authorization.k8s.io");
        jstr(x, ref, "kind", "ClusterRole");
        jstr(x, ref, "name", "admin");
        cJSON *subj = jarr(x, d, "subjects");
        for (size_t i = 0; i < ns->n_owners; i++) {
            if (i > 0 && strcmp(own[i], own[i - 1]) == 0)
                continue;
            cJSON *s = jpush_obj(x, subj);
            jstr(x, s, "apiGroup", "rbac.authorization.k8s.io");
            jstr(x, s, "kind", "User");
            jstr(x, s, "name", own[i]);
        }
        free(own);
        re_snprintf(path, sizeof(path), "%s/rolebinding.yaml", dir);
        if ((rc = put_doc(x, path, d)) < 0)
            return rc;
        files[nf++] = "rolebinding.yaml";
    }

    /* The account every Kustomization applying this namespace's apps
     * impersonates (Flux multi-tenancy lockdown): admin here, nothing
     * elsewhere, so an app team's files cannot reach past its namespace. */
    d = manifest(x, "v1", "ServiceAccount", TENANT_SA, name);
    re_snprintf(path, sizeof(path), "%s/serviceaccount.yaml", dir);
    if ((rc = put_doc(x, path, d)) < 0)
        return rc;
    files[nf++] = "serviceaccount.yaml";
    d = manifest(x, "rbac.authorization.k8s.io/v1", "RoleBinding", TENANT_SA, name);
    cJSON *tref = jobj(x, d, "roleRef");
    jstr(x, tref, "apiGroup", "rbac.authorization.k8s.io");
    jstr(x, tref, "kind", "ClusterRole");
    jstr(x, tref, "name", "admin");
    cJSON *tsub = jpush_obj(x, jarr(x, d, "subjects"));
    jstr(x, tsub, "kind", "ServiceAccount");
    jstr(x, tsub, "name", TENANT_SA);
    jstr(x, tsub, "namespace", name);
    re_snprintf(path, sizeof(path), "%s/tenant-rolebinding.yaml", dir);
    if ((rc = put_doc(x, path, d)) < 0)
        return rc;
    files[nf++] = "tenant-rolebinding.yaml";

    /* The namespace's network settings as stored: a default-deny policy
     * (with DNS out when allowed), and pod-to-pod within the namespace. */
    if (!ns->net_open) {
        d = manifest(x, "networking.k8s.io/v1", "NetworkPolicy", "default-deny", name);
        cJSON *spec = jobj(x, d, "spec");
        jobj(x, spec, "podSelector");
        cJSON *types = jarr(x, spec, "policyTypes");
        jpush_str(x, types, "Ingress");
        jpush_str(x, types, "Egress");
        if (!ns->net_no_dns) {
            cJSON *ports = jarr(x, jpush_obj(x, jarr(x, spec, "egress")), "ports");
            static const char *const protos[] = { "UDP", "TCP" };
            for (size_t i = 0; i < 2; i++) {
                cJSON *p = jpush_obj(x, ports);
                jstr(x, p, "protocol", protos[i]);
                jnum(x, p, "port", 53);
            }
        }
        re_snprintf(path, sizeof(path), "%s/networkpolicy.yaml", dir);
        if ((rc = put_doc(x, path, d)) < 0)
            return rc;
        files[nf++] = "networkpolicy.yaml";
    }
    if (ns->net_allow_same_namespace) {
        d = manifest(x, "networking.k8s.io/v1", "NetworkPolicy", "allow-same-namespace", name);
        cJSON *spec = jobj(x, d, "spec");
        jobj(x, spec, "podSelector");
        cJSON *types = jarr(x, spec, "policyTypes");
        jpush_str(x, types, "Ingress");
        jpush_str(x, types, "Egress");
        jobj(x, jpush_obj(x, jarr(x, jpush_obj(x, jarr(x, spec, "ingress")), "from")), "podSelector");
        jobj(x, jpush_obj(x, jarr(x, jpush_obj(x, jarr(x, spec, "egress")), "to")), "podSelector");
        re_snprintf(path, sizeof(path), "%s/networkpolicy-same-namespace.yaml", dir);
        if ((rc = put_doc(x, path, d)) < 0)
            return rc;
        files[nf++] = "networkpolicy-same-namespace.yaml";
    }

    /* the cluster's values, then this namespace's own over them, by key */
    d = manifest(x, "v1", "ConfigMap", "resedge-config", name);
    cJSON *cd = jobj(x, d, "data");
    for (size_t i = 0, k = 0; i < n_data || k < ns->n_config;) {
        int c = i == n_data ? 1 : k == ns->n_config ? -1
                : strcmp(data[i].key, ns->config[k].key);
        if (c > 0 && !is_configmap_key(ns->config[k].key ? ns->config[k].key : "")) {
            cJSON_Delete(d);
            return fail(x, -RE_EINVAL, "namespace '%s': configuration key '%s' is not a valid "
                        "ConfigMap key", name, S(ns->config[k].key));
        }
        if (c < 0)
            jstr(x, cd, data[i].key, data[i].value), i++;
        else if (c > 0)
            jstr(x, cd, ns->config[k].key, ns->config[k].value), k++;
        else
            jstr(x, cd, ns->config[k].key, ns->config[k].value), i++, k++;
    }
    re_snprintf(path, sizeof(path), "%s/configmap.yaml", dir);
    if ((rc = put_doc(x, path, d)) < 0)
        return rc;
    files[nf++] = "configmap.yaml";

    d = kustomization(x);
    cJSON *res = jarr(x, d, "resources");
    for (size_t i = 0; i < nf; i++)
        jpush_str(x, res, files[i]);
    re_snprintf(path, sizeof(path), "%s/kustomization.yaml", dir);
    return put_doc(x, path, d);
}

static int render_policies(struct rctx *x, const struct render_policy *const *pols, size_t n)
{
    char path[128];
    struct re_buf out, e;
    struct kbuf key = { 0 };
    int rc = 0;
    re_buf_init(&out, RENDER_FILE_MAX);
    re_buf_init(&e, 1024);
    cJSON *k = kustomization(x);
    cJSON *res = jarr(x, k, "resources");
    for (size_t i = 0; i < n; i++) {
        const struct render_policy *p = pols[i];
        char *hit = NULL;
        size_t len = 0;
        re_buf_reset(&out);
        key.n = 0;
        key.bad = false;
        key_str(&key, 'P', p->yaml);
        if (!(hit = rcache_get(&key, &len))) {
            if ((rc = yamlout_reemit_manifests(&out, p->yaml ? p->yaml : "",
                                               p->yaml ? strlen(p->yaml) : 0, NULL, &e)) < 0) {
                fail(x, rc, "policy '%s': %s", p->name, e.ptr ? e.ptr : re_strerror(rc));
                goto out;
            }
            rcache_put(&key, out.ptr ? out.ptr : "", out.len);
            len = out.len;
            hit = re_buf_steal(&out);
        }
        re_snprintf(path, sizeof(path), "policies/%s.yaml", p->name);
        if ((rc = render_tree_add_owned(x->t, path, hit, len)) < 0)
            goto out;
        re_snprintf(path, sizeof(path), "%s.yaml", p->name);
        jpush_str(x, res, path);
    }
    rc = put_doc(x, "policies/kustomization.yaml", k);
    k = NULL;
out:
    cJSON_Delete(k);
    re_buf_release(&out);
    re_buf_release(&e);
    free(key.p);
    return rc;
}

static bool is_kustomization_name(const char *p)
{
    return strcmp(p, "kustomization.yaml") == 0 || strcmp(p, "kustomization.yml") == 0 ||
           strcmp(p, "Kustomization") == 0;
}

static bool is_yaml_name(const char *p)
{
    size_t n = strlen(p);
    return (n > 5 && strcmp(p + n - 5, ".yaml") == 0) || (n > 4 && strcmp(p + n - 4, ".yml") == 0);
}

/* apps/<app> of an app team's repository: a GitRepository and a Flux
 * Kustomization in the team's namespace, applying with its account. */
static int render_app_git(struct rctx *x, const struct render_app *a, const char *dir,
                          const struct render_kv *labels, cJSON *k)
{
    char path[192];
    const char *name = a->name;
    int rc;
    const char *ref = a->git_ref && a->git_ref[0] ? a->git_ref : "main";
    const char *gpath = a->git_path && a->git_path[0] ? a->git_path : "./";
    char objname[80];
    if (!is_flux_url(a->git_url)) {
        return fail(x, -RE_EINVAL, "application '%s': source URL '%s' must be "
                    "http(s):// or ssh://", name, S(a->git_url));
    }
    if (!no_controls(ref) || !no_controls(gpath)) {
        return fail(x, -RE_EINVAL, "application '%s': invalid git ref or path", name);
    }
    re_snprintf(objname, sizeof(objname), "app-%s", name);

    /* the app team's repository and its Kustomization live in the
     * team's namespace and apply with the team's account only */
    cJSON *d = manifest(x, FLUX_SRC_API, "GitRepository", objname, a->namespace_);
    cJSON *spec = jobj(x, d, "spec");
    jstr(x, spec, "interval", "5m");
    cJSON *r = jobj(x, spec, "ref");
    if (strncmp(ref, "refs/", 5) == 0)
        jstr(x, r, "name", ref);
    else if (re_oid_is(ref))
        jstr(x, r, "commit", ref);
    else if (looks_like_version(ref))
        jstr(x, r, "tag", ref);
    else
        jstr(x, r, "branch", ref);
    jstr(x, spec, "url", a->git_url);
    re_snprintf(path, sizeof(path), "%s/gitrepository.yaml", dir);
    if ((rc = put_doc(x, path, d)) < 0)
        return rc;

    d = manifest(x, FLUX_KS_API, "Kustomization", objname, a->namespace_);
    spec = jobj(x, d, "spec");
    cJSON *cl = jobj(x, jobj(x, spec, "commonMetadata"), "labels");
    for (size_t i = 0; i < 2; i++)
        jstr(x, cl, labels[i].key, labels[i].value);
    jstr(x, spec, "interval", "10m");
    jstr(x, spec, "path", gpath);
    jbool(x, spec, "prune", true);
    jstr(x, spec, "retryInterval", "1m");
    cJSON *sref = jobj(x, spec, "sourceRef");
    jstr(x, sref, "kind", "GitRepository");
    jstr(x, sref, "name", objname);
    jstr(x, spec, "serviceAccountName", TENANT_SA);
    jstr(x, spec, "targetNamespace", a->namespace_);
    jstr(x, spec, "timeout", "5m");
    re_snprintf(path, sizeof(path), "%s/flux-kustomization.yaml", dir);
    if ((rc = put_doc(x, path, d)) < 0)
        return rc;

    cJSON *res = jarr(x, k, "resources");
    jpush_str(x, res, "gitrepository.yaml");
    jpush_str(x, res, "flux-kustomization.yaml");
    return 0;
}

/* apps/<app> of files stored in the hub: apps/<app>/base (with a generated
 * kustomization when the team gave none), the namespace and image tag. */
static int render_app_base(struct rctx *x, const struct render_app *a, const char *dir, cJSON *k)
{
    char path[192];
    const char *name = a->name;
    int rc;
    bool have_k = false;
    struct re_buf p;
    re_buf_init(&p, 8192);
    cJSON *gen = kustomization(x);
    cJSON *gres = jarr(x, gen, "resources");
    const char **yamls = calloc(a->n_base_files ? a->n_base_files : 1, sizeof(*yamls));
    size_t ny = 0;
    rc = yamls ? 0 : -RE_ENOMEM;
    for (size_t i = 0; rc == 0 && i < a->n_base_files; i++) {
        const struct render_file *f = &a->base_files[i];
        if (!f->path || !path_ok(f->path)) {
            rc = fail(x, -RE_EINVAL, "application '%s': invalid base file path '%s'",
                      name, S(f->path));
            break;
        }
        re_buf_reset(&p);
        if ((rc = re_buf_printf(&p, "%s/base/%s", dir, f->path)) < 0 ||
            (rc = render_tree_add(x->t, p.ptr, f->data, f->len)) < 0)
            break;
        if (is_kustomization_name(f->path))
            have_k = true;
        else if (is_yaml_name(f->path))
            yamls[ny++] = f->path;
    }
    if (rc == 0 && !have_k) {
        qsort(yamls, ny, sizeof(*yamls), cmp_str_ptr);
        for (size_t i = 0; i < ny; i++)
            jpush_str(x, gres, yamls[i]);
        re_snprintf(path, sizeof(path), "%s/base/kustomization.yaml", dir);
        rc = put_doc(x, path, gen);
        gen = NULL;
    }
    cJSON_Delete(gen);
    free(yamls);
    re_buf_release(&p);
    if (rc < 0)
        return rc;
    jstr(x, k, "namespace", a->namespace_);
    jpush_str(x, jarr(x, k, "resources"), "base");
    if (a->image_tag) {
        if (!a->image_name || !a->image_name[0] || !no_controls(a->image_name) ||
            !a->image_tag[0] || !no_controls(a->image_tag)) {
            return fail(x, -RE_EINVAL, "application '%s': an image tag needs an image "
                        "name", name);
        }
        cJSON *img = jpush_obj(x, jarr(x, k, "images"));
        jstr(x, img, "name", a->image_name);
        jstr(x, img, "newTag", a->image_tag);
    }
    return 0;
}

/* flux/app-<app>.yaml: applies ./apps/<app> on its own. */
static int render_app_flux(struct rctx *x, const struct render_app *a, const char *dir)
{
    char path[192];
    const char *name = a->name;
    char fname[96];
    re_snprintf(fname, sizeof(fname), "resedge-app-%s", name);
    /* In the team's namespace, impersonating its account: what apps/<app>
     * holds is the team's, even when the hub rendered it. */
    cJSON *d = manifest(x, FLUX_KS_API, "Kustomization", fname, a->namespace_);
    cJSON *spec = jobj(x, d, "spec");
    jstr(x, spec, "interval", "10m");
    re_snprintf(path, sizeof(path), "./%s", dir);
    jstr(x, spec, "path", path);
    jbool(x, spec, "prune", true);
    jstr(x, spec, "retryInterval", "1m");
    jstr(x, spec, "serviceAccountName", TENANT_SA);
    cJSON *sref = jobj(x, spec, "sourceRef");
    jstr(x, sref, "kind", "GitRepository");
    jstr(x, sref, "name", FLUX_SOURCE_NAME);
    jstr(x, sref, "namespace", FLUX_NS);
    jstr(x, spec, "targetNamespace", a->namespace_);
    jstr(x, spec, "timeout", "5m");
    re_snprintf(path, sizeof(path), "flux/app-%s.yaml", name);
    return put_doc(x, path, d);
}

static int render_app(struct rctx *x, const struct render_app *a)
{
    char dir[128], path[192];
    const char *name = a->name;
    const char *version = a->version ? a->version : "";
    /* The cluster label comes from the cluster/ component, so these files
     * are the same in every cluster that runs this version. */
    struct render_kv labels[2] = { { LABEL_APP, name }, { LABEL_VERSION, version } };
    int rc;

    if (!is_label_value(version))
        return fail(x, -RE_EINVAL, "application '%s': version '%s' is not a valid "
                    "label value (63 letters, digits, '-', '_', '.')", name, version);
    if ((rc = re_snprintf(dir, sizeof(dir), "apps/%s", name)) < 0)
        return rc;

    cJSON *k = kustomization(x);
    rc = a->kind == RENDER_SRC_GIT ? render_app_git(x, a, dir, labels, k)
                                   : render_app_base(x, a, dir, k);
    if (rc < 0) {
        cJSON_Delete(k);
        return rc;
    }
    jpush_str(x, jarr(x, k, "components"), "../../" CLUSTER_DIR);
    klabels(x, k, labels, 2);
    re_snprintf(path, sizeof(path), "%s/kustomization.yaml", dir);
    if ((rc = put_doc(x, path, k)) < 0)
        return rc;
    return render_app_flux(x, a, dir);
}

static int render_flux_dir(struct rctx *x, const struct render_app *const *apps, size_t n)
{
    char path[128];
    cJSON *k = kustomization(x);
    cJSON *res = jarr(x, k, "resources");
    for (size_t i = 0; i < n; i++) {
        re_snprintf(path, sizeof(path), "app-%s.yaml", apps[i]->name);
        jpush_str(x, res, path);
    }
    return put_doc(x, "flux/kustomization.yaml", k);
}

/*
 * cluster/kustomization.yaml: a kustomize Component holding everything that
 * names the cluster, so the files that include it are the same in every
 * cluster (git stores them once): the cluster label, and a patch adding it
 * to the commonMetadata of the applications' Flux Kustomizations ("app-*"),
 * which label what Flux applies from an app team's repository.
 */
static int render_cluster_component(struct rctx *x)
{
    struct re_buf pb, e;
    int rc;
    re_buf_init(&pb, RENDER_FILE_MAX);
    re_buf_init(&e, 1024);
    cJSON *p = jobj(x, NULL, NULL);
    jstr(x, p, "apiVersion", FLUX_KS_API);
    jstr(x, p, "kind", "Kustomization");
    jstr(x, jobj(x, p, "metadata"), "name", "app");
    jstr(x, jobj(x, jobj(x, jobj(x, p, "spec"), "commonMetadata"), "labels"),
         LABEL_CLUSTER, x->c->name);
    if (x->oom)
        rc = -RE_ENOMEM;
    else if ((rc = yamlout_doc(&pb, p, &e)) < 0)
        fail(x, rc, "cluster component: %s", e.ptr ? e.ptr : re_strerror(rc));
    cJSON_Delete(p);
    if (rc < 0)
        goto out;

    cJSON *d = jobj(x, NULL, NULL);
    jstr(x, d, "apiVersion", KUSTOMIZE_COMPONENT_API);
    jstr(x, d, "kind", "Component");
    struct render_kv cl = { LABEL_CLUSTER, x->c->name };
    klabels(x, d, &cl, 1);
    cJSON *patch = jpush_obj(x, jarr(x, d, "patches"));
    cJSON *target = jobj(x, patch, "target");
    jstr(x, target, "group", "kustomize.toolkit.fluxcd.io");
    jstr(x, target, "kind", "Kustomization");
    jstr(x, target, "name", "app-.*");
    jstr(x, patch, "patch", pb.ptr ? pb.ptr : "");
    rc = put_doc_own(x, CLUSTER_DIR "/kustomization.yaml", d);
out:
    re_buf_release(&pb);
    re_buf_release(&e);
    return rc;
}

int render_cluster(struct render_tree **out, const struct render_cluster *c,
                   struct re_buf *err)
{
    struct rctx x = { NULL, err, c, false };
    const struct render_namespace **nss = NULL;
    const struct render_app **apps = NULL;
    const struct render_policy **pols = NULL;
    struct render_kv *data = NULL;
    char **mdkeys = NULL;
    size_t n_data = 0;
    char path[128];
    int rc;

    if (!render_is_dns_label(c->name))
        return fail(&x, -RE_EINVAL, "cluster name '%s' is not a DNS-1123 label", S(c->name));
    if ((rc = render_tree_new(&x.t)) < 0)
        return rc;
    nss = calloc(c->n_namespaces + 1, sizeof(*nss));
    apps = calloc(c->n_apps + 1, sizeof(*apps));
    pols = calloc(c->n_policies + 1, sizeof(*pols));
    if (!nss || !apps || !pols) {
        rc = -RE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->n_namespaces; i++) {
        nss[i] = &c->namespaces[i];
        if (!render_is_dns_label(nss[i]->name)) {
            rc = fail(&x, -RE_EINVAL, "namespace name '%s' is not a DNS-1123 label",
                      S(nss[i]->name));
            goto out;
        }
    }
    for (size_t i = 0; i < c->n_apps; i++) {
        apps[i] = &c->apps[i];
        if (!render_is_dns_label(apps[i]->name) || !render_is_dns_label(apps[i]->namespace_)) {
            rc = fail(&x, -RE_EINVAL, "application '%s' (namespace '%s'): names must be "
                      "DNS-1123 labels", S(apps[i]->name), S(apps[i]->namespace_));
            goto out;
        }
    }
    for (size_t i = 0; i < c->n_policies; i++) {
        pols[i] = &c->policies[i];
        if (!render_is_dns_label(pols[i]->name)) {
            rc = fail(&x, -RE_EINVAL, "policy name '%s' is not a DNS-1123 label",
                      S(pols[i]->name));
            goto out;
        }
    }
    qsort(nss, c->n_namespaces, sizeof(*nss), cmp_ns_ptr);
    qsort(apps, c->n_apps, sizeof(*apps), cmp_app_ptr);
    qsort(pols, c->n_policies, sizeof(*pols), cmp_pol_ptr);
    for (size_t i = 1; i < c->n_namespaces; i++)
        if (strcmp(nss[i]->name, nss[i - 1]->name) == 0) {
            rc = fail(&x, -RE_EINVAL, "namespace '%s' listed twice", nss[i]->name);
            goto out;
        }
    for (size_t i = 1; i < c->n_apps; i++)
        if (strcmp(apps[i]->name, apps[i - 1]->name) == 0) {
            rc = fail(&x, -RE_EINVAL, "application '%s' listed twice", apps[i]->name);
            goto out;
        }
    for (size_t i = 1; i < c->n_policies; i++)
        if (strcmp(pols[i]->name, pols[i - 1]->name) == 0) {
            rc = fail(&x, -RE_EINVAL, "policy '%s' listed twice", pols[i]->name);
            goto out;
        }

    if ((rc = build_config_data(&x, &data, &n_data, &mdkeys)) < 0)
        goto out;
    for (size_t i = 0; i < c->n_namespaces; i++)
        if ((rc = render_namespace(&x, nss[i], data, n_data)) < 0)
            goto out;
    if (c->n_policies && (rc = render_policies(&x, pols, c->n_policies)) < 0)
        goto out;
    for (size_t i = 0; i < c->n_apps; i++)
        if ((rc = render_app(&x, apps[i])) < 0)
            goto out;
    bool flux = c->n_apps > 0;
    if (flux && (rc = render_flux_dir(&x, apps, c->n_apps)) < 0)
        goto out;
    bool component = c->n_apps > 0;
    if (component && (rc = render_cluster_component(&x)) < 0)
        goto out;

    struct render_kv cl = { LABEL_CLUSTER, c->name };
    cJSON *k = kustomization(&x);
    cJSON *res = jarr(&x, k, "resources");
    for (size_t i = 0; i < c->n_namespaces; i++) {
        re_snprintf(path, sizeof(path), "namespaces/%s", nss[i]->name);
        jpush_str(&x, res, path);
    }
    if (c->n_policies)
        jpush_str(&x, res, "policies");
    if (flux)
        jpush_str(&x, res, "flux");
    if (component)
        jpush_str(&x, jarr(&x, k, "components"), CLUSTER_DIR);
    else
        klabels(&x, k, &cl, 1);
    if ((rc = (component ? put_doc : put_doc_own)(&x, "kustomization.yaml", k)) < 0)
        goto out;
    if ((rc = render_tree_finish(x.t)) < 0) {
        fail(&x, rc, "two rendered files share a path");
        goto out;
    }
    *out = x.t;
    x.t = NULL;
out:
    if (mdkeys)
        for (size_t i = 0; i < c->n_metadata; i++)
            free(mdkeys[i]);
    free(mdkeys);
    free(data);
    free(nss);
    free(apps);
    free(pols);
    render_tree_free(x.t);
    return rc;
}
