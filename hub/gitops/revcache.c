/* revcache.c - cluster name -> branch head, open addressing with linear
 * probing; emptied wholesale when the branches move (see revcache.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "error.h"
#include "gitstore.h"
#include "hash.h"
#include "oid.h"
#include "revcache.h"

struct slot {
    char *name;                     /* NULL: empty */
    uint64_t hash;
    bool has_head;
    char head[RE_OID_BUF];
};

struct revcache {
    struct slot *slots;
    size_t cap, n;                  /* cap: a power of two */
    uint64_t generation;            /* gitstore_refs_generation() the entries are of */
    struct stat packed;             /* packed-refs as the entries saw it */
};

/* Another process (git push, git pack-refs) changed packed-refs? */
static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void clear(struct revcache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        free(c->slots[i].name);
        c->slots[i].name = NULL;
    }
    c->n = 0;
}

int revcache_new(struct revcache **out)
{
    struct revcache *c = calloc(1, sizeof(*c));
    if (!c)
        return -RE_ENOMEM;
    c->generation = gitstore_refs_generation();
    *out = c;
    return 0;
}

void revcache_free(struct revcache *c)
{
    if (!c)
        return;
    clear(c);
    free(c->slots);
    free(c);
}

static struct slot *find(struct revcache *c, const char *name, uint64_t h)
{
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        struct slot *s = &c->slots[i];
        if (!s->name || (s->hash == h && strcmp(s->name, name) == 0))
            return s;
    }
}

/* Keeps the load under a half; false when it cannot. */
static bool make_room(struct revcache *c)
{
    if (c->n + 1 <= c->cap / 2)
        return true;
    if (c->n >= REVCACHE_MAX_ENTRIES) {
        clear(c);
        return true;
    }
    size_t cap = c->cap ? 2 * c->cap : 1024;
    struct slot *old = c->slots, *v = calloc(cap, sizeof(*v));
    size_t old_cap = c->cap;
    if (!v)
        return false;
    c->slots = v;
    c->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].name)
            *find(c, old[i].name, old[i].hash) = old[i];
    free(old);
    return true;
}

int revcache_head(struct revcache *c, struct gitstore *gs, const char *cluster, char out[RE_OID_BUF])
{
    uint64_t gen = gitstore_refs_generation(), h = re_hash64(cluster, strlen(cluster), 0);
    char loose[4096], packed[4096];
    struct slot *s = NULL;
    struct stat st;
    int r;
    /* Two stats keep the cache honest about writers outside this process:
     * a loose ref wins over packed-refs (the hub itself writes only the
     * latter), and a changed packed-refs empties the cache. */
    if ((r = gitstore_ref_files(gs, cluster, loose, sizeof(loose), packed, sizeof(packed))) < 0)
        return r;
    if (lstat(loose, &st) == 0)
        return gitstore_head(gs, cluster, out);
    if (stat(packed, &st) < 0)
        memset(&st, 0, sizeof(st));
    if (gen != c->generation || !same_file(&st, &c->packed)) {
        clear(c);
        c->generation = gen;
        c->packed = st;
    }
    if (c->cap && (s = find(c, cluster, h))->name) {
        if (!s->has_head)
            return -RE_ENOENT;
        memcpy(out, s->head, RE_OID_BUF);
        return 0;
    }
    r = gitstore_head(gs, cluster, out);
    if ((r != 0 && r != -RE_ENOENT) || gen != gitstore_refs_generation() || !make_room(c))
        return r;                   /* an error, or the branches moved meanwhile */
    s = find(c, cluster, h);
    if (!(s->name = strdup(cluster)))
        return r;
    s->hash = h;
    s->has_head = r == 0;
    if (r == 0)
        memcpy(s->head, out, RE_OID_BUF);
    c->n++;
    return r;
}
