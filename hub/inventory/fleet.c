/* fleet.c - the in-memory fleet index: dense cluster indexes and bit sets
 * for groups (with descendants), metadata pairs, names and namespaces. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "error.h"
#include "fleet.h"

#define ARENA_CHUNK (1u << 20)
#define NS_MAX_NESTING 8

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
};

struct fleet_group {
    int64_t id;
    const char *path;
    size_t off, n;              /* members[off .. off+n) */
};

struct fleet_meta {
    const char *key, *value;
    uint32_t idx;
};

struct fleet_ns {
    const char *name;
    const char *expr;
};

struct fleet {
    atomic_int refs;
    uint64_t gen;
    size_t n;
    int64_t *ids;               /* sorted ascending: index -> id */
    const char **names;
    uint32_t *by_name;          /* indexes sorted by name */
    struct fleet_group *groups; /* sorted by path */
    size_t n_groups;
    uint32_t *members;
    struct fleet_meta *meta;    /* sorted by key, value, idx */
    size_t n_meta;
    struct fleet_ns *ns;        /* sorted by name */
    size_t n_ns;
    struct arena_chunk *arena;
};

static atomic_uint_fast64_t generation = 1;
static struct {
    sqlite3 *db;
    struct fleet *f;
} cache;
static _Thread_local int ns_depth;

static const char *arena_dup(struct fleet *f, const char *s)
{
    size_t n = strlen(s) + 1;
    struct arena_chunk *c = f->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->next = f->arena;
        c->used = 0;
        c->cap = cap;
        f->arena = c;
    }
    char *p = c->data + c->used;
    memcpy(p, s, n);
    c->used += n;
    return p;
}

static void fleet_free(struct fleet *f)
{
    if (!f)
        return;
    while (f->arena) {
        struct arena_chunk *next = f->arena->next;
        free(f->arena);
        f->arena = next;
    }
    free(f->ids);
    free(f->names);
    free(f->by_name);
    free(f->groups);
    free(f->members);
    free(f->meta);
    free(f->ns);
    free(f);
}

void fleet_release(struct fleet *f)
{
    if (f && atomic_fetch_sub(&f->refs, 1) == 1)
        fleet_free(f);
}

void fleet_invalidate(void)
{
    atomic_fetch_add(&generation, 1);
}

bool fleet_reads_entity(const char *entity)
{
    /* applications and policies only select clusters through expressions */
    return !entity || (strcmp(entity, "application") != 0 && strcmp(entity, "policy") != 0);
}

void fleet_cache_clear(void)
{
    fleet_release(cache.f);
    cache.f = NULL;
    cache.db = NULL;
}

/* qsort has no context argument: name sorting uses this snapshot pointer,
 * which is safe because builds run on the database's one thread. */
static const struct fleet *sorting;

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(sorting->names[*(const uint32_t *)a], sorting->names[*(const uint32_t *)b]);
}

static int cmp_meta(const void *a, const void *b)
{
    const struct fleet_meta *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (!c)
        c = strcmp(x->value, y->value);
    if (!c)
        c = x->idx < y->idx ? -1 : x->idx > y->idx;
    return c;
}

struct gid {
    int64_t id;
    size_t pos;
};

static int cmp_gid(const void *a, const void *b)
{
    const struct gid *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static size_t count_rows(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    size_t n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int load_clusters(struct fleet *f, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    size_t cap = count_rows(db, "SELECT count(*) FROM clusters") + 1, i = 0;
    int r = -RE_ENOMEM, rc;
    f->ids = malloc(cap * sizeof(*f->ids));
    f->names = malloc(cap * sizeof(*f->names));
    f->by_name = malloc(cap * sizeof(*f->by_name));
    if (!f->ids || !f->names || !f->by_name)
        goto out;
    r = -RE_EDB;
    if (sqlite3_prepare_v2(db, "SELECT id, name FROM clusters ORDER BY id", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && i < cap) {
        f->ids[i] = sqlite3_column_int64(st, 0);
        if (!(f->names[i] = arena_dup(f, (const char *)sqlite3_column_text(st, 1)))) {
            r = -RE_ENOMEM;
            goto out;
        }
        f->by_name[i] = (uint32_t)i;
        i++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        goto out;
    f->n = i;
    sorting = f;
    qsort(f->by_name, f->n, sizeof(*f->by_name), cmp_by_name);
    sorting = NULL;
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
}

static int load_groups(struct fleet *f, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    struct gid *gids = NULL;
    size_t *fill = NULL, cap = count_rows(db, "SELECT count(*) FROM groups") + 1;
    size_t mcap = count_rows(db, "SELECT count(*) FROM cluster_groups") + 1, i = 0, m = 0;
    uint32_t *pairs = NULL;     /* (group pos, cluster idx) */
    int r = -RE_ENOMEM, rc;
    f->groups = calloc(cap, sizeof(*f->groups));
    gids = malloc(cap * sizeof(*gids));
    fill = calloc(cap, sizeof(*fill));
    pairs = malloc(mcap * 2 * sizeof(*pairs));
    f->members = malloc(mcap * sizeof(*f->members));
    if (!f->groups || !gids || !fill || !pairs || !f->members)
        goto out;
    r = -RE_EDB;
    if (sqlite3_prepare_v2(db, "SELECT id, path FROM groups ORDER BY path", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && i < cap) {
        f->groups[i].id = sqlite3_column_int64(st, 0);
        if (!(f->groups[i].path = arena_dup(f, (const char *)sqlite3_column_text(st, 1)))) {
            r = -RE_ENOMEM;
            goto out;
        }
        gids[i].id = f->groups[i].id;
        gids[i].pos = i;
        i++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        goto out;
    f->n_groups = i;
    qsort(gids, f->n_groups, sizeof(*gids), cmp_gid);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "SELECT group_id, cluster_id FROM cluster_groups", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && m < mcap) {
        struct gid key = { sqlite3_column_int64(st, 0), 0 };
        struct gid *g = bsearch(&key, gids, f->n_groups, sizeof(*gids), cmp_gid);
        size_t c = fleet_index_of_id(f, sqlite3_column_int64(st, 1));
        if (!g || c == FLEET_NONE)
            continue;
        pairs[2 * m] = (uint32_t)g->pos;
        pairs[2 * m + 1] = (uint32_t)c;
        f->groups[g->pos].n++;
        m++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        goto out;
    for (size_t k = 0, off = 0; k < f->n_groups; k++) {
        f->groups[k].off = off;
        off += f->groups[k].n;
    }
    for (size_t k = 0; k < m; k++) {
        struct fleet_group *g = &f->groups[pairs[2 * k]];
        f->members[g->off + fill[pairs[2 * k]]++] = pairs[2 * k + 1];
    }
    r = 0;
out:
    sqlite3_finalize(st);
    free(gids);
    free(fill);
    free(pairs);
    return r;
}

static int load_meta(struct fleet *f, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0, i = 0;
    int r = -RE_EDB, rc;
    if (sqlite3_prepare_v2(db,
                           "SELECT c.id, j.key, j.value FROM clusters c, json_each(c.metadata) j"
                           " WHERE j.type = 'text'", -1, &st, NULL) != SQLITE_OK)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t c = fleet_index_of_id(f, sqlite3_column_int64(st, 0));
        if (c == FLEET_NONE)
            continue;
        if (i == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            struct fleet_meta *p = realloc(f->meta, ncap * sizeof(*p));
            if (!p) {
                r = -RE_ENOMEM;
                goto out;
            }
            f->meta = p;
            cap = ncap;
        }
        f->meta[i].idx = (uint32_t)c;
        f->meta[i].key = arena_dup(f, (const char *)sqlite3_column_text(st, 1));
        f->meta[i].value = arena_dup(f, (const char *)sqlite3_column_text(st, 2));
        if (!f->meta[i].key || !f->meta[i].value) {
            r = -RE_ENOMEM;
            goto out;
        }
        i++;
    }
    if (rc != SQLITE_DONE)
        goto out;
    f->n_meta = i;
    if (i)
        qsort(f->meta, f->n_meta, sizeof(*f->meta), cmp_meta);
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
}

static int load_namespaces(struct fleet *f, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    size_t cap = count_rows(db, "SELECT count(*) FROM namespaces") + 1, i = 0;
    int r = -RE_ENOMEM, rc;
    if (!(f->ns = calloc(cap, sizeof(*f->ns))))
        goto out;
    r = -RE_EDB;
    if (sqlite3_prepare_v2(db, "SELECT name, expression FROM namespaces ORDER BY name", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && i < cap) {
        f->ns[i].name = arena_dup(f, (const char *)sqlite3_column_text(st, 0));
        f->ns[i].expr = arena_dup(f, (const char *)sqlite3_column_text(st, 1));
        if (!f->ns[i].name || !f->ns[i].expr) {
            r = -RE_ENOMEM;
            goto out;
        }
        i++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        goto out;
    f->n_ns = i;
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
}

static int fleet_build(struct fleet **out, sqlite3 *db, uint64_t gen)
{
    struct fleet *f = calloc(1, sizeof(*f));
    int r;
    if (!f)
        return -RE_ENOMEM;
    atomic_init(&f->refs, 1);
    f->gen = gen;
    /* one read transaction, so the parts agree (unless the caller has one open) */
    bool own_txn = sqlite3_get_autocommit(db);
    if (own_txn && (r = db_exec(db, "BEGIN")) < 0)
        goto out;
    if ((r = load_clusters(f, db)) < 0 || (r = load_groups(f, db)) < 0 ||
        (r = load_meta(f, db)) < 0 || (r = load_namespaces(f, db)) < 0) {
        if (own_txn)
            db_rollback(db);
        goto out;
    }
    if (own_txn)
        db_exec(db, "COMMIT");
    *out = f;
    f = NULL;
out:
    fleet_free(f);
    return r;
}

int fleet_acquire(struct fleet **out, sqlite3 *db)
{
    uint64_t gen = atomic_load(&generation);
    int r;
    if (!cache.f || cache.db != db || cache.f->gen != gen) {
        struct fleet *f;
        if ((r = fleet_build(&f, db, gen)) < 0)
            return r;
        fleet_release(cache.f);
        cache.f = f;
        cache.db = db;
    }
    atomic_fetch_add(&cache.f->refs, 1);
    *out = cache.f;
    return 0;
}

uint64_t fleet_generation(const struct fleet *f) { return f->gen; }
size_t fleet_size(const struct fleet *f) { return f->n; }
int64_t fleet_cluster_id(const struct fleet *f, size_t idx) { return idx < f->n ? f->ids[idx] : -1; }
const char *fleet_cluster_name(const struct fleet *f, size_t idx)
{
    return idx < f->n ? f->names[idx] : NULL;
}

size_t fleet_index_of_id(const struct fleet *f, int64_t id)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n && f->ids[lo] == id ? lo : FLEET_NONE;
}

size_t fleet_index_of_name(const struct fleet *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->names[f->by_name[mid]], name);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n && strcmp(f->names[f->by_name[lo]], name) == 0 ? f->by_name[lo] : FLEET_NONE;
}

const char *fleet_namespace_expression(const struct fleet *f, const char *name)
{
    size_t lo = 0, hi = f->n_ns;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->ns[mid].name, name);
        if (c == 0)
            return f->ns[mid].expr;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int res_group(void *ctx, const char *path, struct bitset *out)
{
    const struct fleet *f = ctx;
    size_t plen = strlen(path), lo = 0, hi = f->n_groups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(f->groups[mid].path, path) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* every path with this prefix sorts contiguously from lo */
    for (size_t i = lo; i < f->n_groups && strncmp(f->groups[i].path, path, plen) == 0; i++) {
        char next = f->groups[i].path[plen];
        if (next != '\0' && next != '/')
            continue;
        for (size_t k = 0; k < f->groups[i].n; k++)
            bitset_set(out, f->members[f->groups[i].off + k]);
    }
    return 0;
}

static int res_meta(void *ctx, const char *key, const char *value, struct bitset *out)
{
    const struct fleet *f = ctx;
    struct fleet_meta probe = { key, value, 0 };
    size_t lo = 0, hi = f->n_meta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_meta(&f->meta[mid], &probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < f->n_meta && strcmp(f->meta[i].key, key) == 0 &&
                        strcmp(f->meta[i].value, value) == 0; i++)
        bitset_set(out, f->meta[i].idx);
    return 0;
}

static int res_cluster(void *ctx, const char *name, struct bitset *out)
{
    size_t i = fleet_index_of_name(ctx, name);
    if (i != FLEET_NONE)
        bitset_set(out, i);
    return 0;
}

static int res_ns(void *ctx, const char *name, struct bitset *out)
{
    struct fleet *f = ctx;
    const char *text = fleet_namespace_expression(f, name);
    struct expr *e = NULL;
    struct expr_resolver r;
    int rc;
    if (!text)
        return 0;
    if (ns_depth >= NS_MAX_NESTING)
        return -RE_EDEPTH;
    /* a stored expression was valid when written; one that no longer parses selects nothing */
    if (expr_parse(&e, text, strlen(text), NULL) < 0)
        return 0;
    fleet_resolver(f, &r);
    ns_depth++;
    rc = expr_eval(out, e, &r);
    ns_depth--;
    expr_free(e);
    return rc;
}

void fleet_resolver(struct fleet *f, struct expr_resolver *out)
{
    out->ctx = f;
    out->n_clusters = f->n;
    out->group = res_group;
    out->meta = res_meta;
    out->cluster = res_cluster;
    out->ns = res_ns;
}

int fleet_eval(struct bitset **out, struct fleet *f, const struct expr *e)
{
    struct bitset *set = NULL;
    struct expr_resolver r;
    int rc;
    if ((rc = bitset_new(&set, f->n)) < 0)
        return rc;
    fleet_resolver(f, &r);
    if ((rc = expr_eval(set, e, &r)) < 0) {
        bitset_free(set);
        return rc;
    }
    *out = set;
    return 0;
}

int fleet_select(struct bitset **out, struct fleet *f, const char *text, size_t len,
                 struct expr_error *err)
{
    struct expr *e = NULL;
    int r;
    if ((r = expr_parse(&e, text, len, err)) < 0)
        return r;
    r = fleet_eval(out, f, e);
    expr_free(e);
    return r;
}
