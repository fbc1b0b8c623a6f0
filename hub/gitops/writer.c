/* gitops.c - the GitOps writer: inventory changes -> marked clusters ->
 * rendered and committed in batches off the event loop (gitops.h). */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <git2.h>
#include "desired.h"
#include "error.h"
#include "fsutil.h"
#include "gitops.h"
#include "gitstore.h"
#include "hub.h"
#include "inventory/bitset.h"
#include "inventory/db.h"
#include "inventory/fleet.h"
#include "inventory/inventory.h"
#include "inventory/plan.h"
#include "validate.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"
#include "oid.h"
#include "revcache.h"

#define MSG_MAX 4096
#define ACTOR_MAX 160
#define SUMMARY_MAX 200          /* one change's line in a commit message */
#define NOTES_MAX 20             /* changes listed in one batch's message */

struct pin {
    int64_t id;
    char rev[RE_OID_BUF];
};

struct gitops {
    struct hub *hub;
    char git_dir[PATH_MAX];
    char db_path[PATH_MAX];
    struct gitstore *rd;            /* loop thread: reads, revert, preview */
    struct revcache *revs;          /* loop thread: heads for check-in answers */
    struct gitstore *gs;            /* worker */
    struct mirror *mirror;          /* NULL: no [gitops] mirror */
    sqlite3 *wdb;                   /* worker */
    sqlite3 *rdb;                   /* worker's render thread */
    uv_timer_t timer;
    uv_work_t work;

    /* pending marks (loop thread) */
    bool pend_all;
    int64_t *pend_ids;
    size_t n_pend, cap_pend;
    struct re_buf pend_msg;
    char pend_actor[ACTOR_MAX];
    size_t pend_changes;

    /* the running batch */
    bool busy;
    atomic_bool cancel;
    struct plan *plan;
    struct bitset *sel;
    char actor[ACTOR_MAX];
    char *message;                  /* the commit message */
    char *notes;                    /* its changes, one a line (redone on failure) */
    size_t notes_changes;
    int result;
    char errmsg[512];
    size_t rendered, changed, failed;
    double seconds;

    /* clusters whose last render failed (worker writes, loop reads) */
    pthread_mutex_t fail_mu;
    struct render_fail *fails;
    size_t n_fails;

    /* totals */
    bool initial_done, stopping;
    int last_result;
    char last_error[512];
    uint64_t batches;
};

/* Why a cluster's branch stopped moving: shown on the cluster, in
 * gitops/status, /readyz and /metrics until a render of it succeeds. */
#define RENDER_FAILS_MAX 4096
struct render_fail {
    char cluster[64];
    char why[256];
};

static void fail_set(struct gitops *go, const char *cluster, const char *why)
{
    pthread_mutex_lock(&go->fail_mu);
    size_t i = 0;
    while (i < go->n_fails && strcmp(go->fails[i].cluster, cluster) != 0)
        i++;
    if (i == go->n_fails && go->n_fails < RENDER_FAILS_MAX) {
        struct render_fail *v = realloc(go->fails, (go->n_fails + 1) * sizeof(*v));
        if (v) {
            go->fails = v;
            go->n_fails++;
        }
    }
    if (i < go->n_fails) {
        snprintf(go->fails[i].cluster, sizeof(go->fails[i].cluster), "%s", cluster);
        snprintf(go->fails[i].why, sizeof(go->fails[i].why), "%s", why);
    }
    pthread_mutex_unlock(&go->fail_mu);
}

static void fail_clear(struct gitops *go, const char *cluster)
{
    pthread_mutex_lock(&go->fail_mu);
    for (size_t i = 0; i < go->n_fails; i++)
        if (strcmp(go->fails[i].cluster, cluster) == 0) {
            go->fails[i] = go->fails[--go->n_fails];
            break;
        }
    pthread_mutex_unlock(&go->fail_mu);
}

int gitops_render_error(struct hub *hub, const char *cluster, char *out, size_t size)
{
    struct gitops *go = hub ? hub->gitops : NULL;
    int r = -RE_ENOENT;
    if (!go)
        return r;
    pthread_mutex_lock(&go->fail_mu);
    for (size_t i = 0; i < go->n_fails; i++)
        if (strcmp(go->fails[i].cluster, cluster) == 0) {
            snprintf(out, size, "%s", go->fails[i].why);
            r = 0;
            break;
        }
    pthread_mutex_unlock(&go->fail_mu);
    return r;
}

int gitops_render_warning(void *arg, struct re_buf *why)
{
    struct gitops *go = arg;
    int r = 0;
    pthread_mutex_lock(&go->fail_mu);
    if (go->n_fails) {
        re_buf_printf(why, "%zu cluster%s fail%s to render (branch frozen), e.g. '%s': %s",
                      go->n_fails, go->n_fails == 1 ? "" : "s", go->n_fails == 1 ? "s" : "",
                      go->fails[0].cluster, go->fails[0].why);
        r = -RE_EAGAIN;
    }
    pthread_mutex_unlock(&go->fail_mu);
    return r;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- marking ---- */

static void schedule(struct gitops *go, uint64_t ms);

static int add_id(struct gitops *go, int64_t id)
{
    if (go->n_pend == go->cap_pend) {
        size_t cap = go->cap_pend ? go->cap_pend * 2 : 64;
        int64_t *v = realloc(go->pend_ids, cap * sizeof(*v));
        if (!v)
            return -RE_ENOMEM;
        go->pend_ids = v;
        go->cap_pend = cap;
    }
    go->pend_ids[go->n_pend++] = id;
    return 0;
}

static void add_note(struct gitops *go, const char *actor, const char *summary)
{
    if (go->pend_changes == 0)
        snprintf(go->pend_actor, sizeof(go->pend_actor), "%s", actor ? actor : "resedge-hub");
    else if (actor && strcmp(actor, go->pend_actor) != 0)
        snprintf(go->pend_actor, sizeof(go->pend_actor), "%s", "several");
    if (go->pend_changes < NOTES_MAX && summary) {
        if (go->pend_msg.len)
            re_buf_append_str(&go->pend_msg, "\n");
        re_buf_append_str(&go->pend_msg, summary);
    }
    go->pend_changes++;
}

/* ORs into acc the clusters text selects (errors select nothing). */
static void or_select(struct bitset *acc, struct fleet *f, const char *text)
{
    struct bitset *b = NULL;
    if (!text || !*text)
        return;
    if (fleet_select(&b, f, text, strlen(text), NULL) == 0)
        bitset_or(acc, b);
    bitset_free(b);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void or_object(struct bitset *acc, struct fleet *f, const char *entity, const cJSON *o)
{
    char buf[600];
    const cJSON *it;
    if (!o)
        return;
    if (strcmp(entity, "namespace") == 0) {
        or_select(acc, f, jstr(o, "expression"));
    } else if (strcmp(entity, "application") == 0) {
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "versions"))
            or_select(acc, f, jstr(it, "expression"));
    } else if (strcmp(entity, "policy") == 0) {
        or_select(acc, f, jstr(o, "expression"));
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "namespaces"))
            if (cJSON_IsString(it) && snprintf(buf, sizeof(buf), "/n/%s", it->valuestring) <
                                          (int)sizeof(buf))
                or_select(acc, f, buf);
    } else if (strcmp(entity, "group") == 0) {
        const char *path = jstr(o, "path");
        if (path && snprintf(buf, sizeof(buf), "/g%s", path) < (int)sizeof(buf))
            or_select(acc, f, buf);
    }
}

/* ---- an application's versions: who runs which ---- */

/* One version of an application and the clusters that run it: those its
 * expression selects and no higher version does (plan_app_version's rule;
 * the namespace's own selection left out, which only widens the set). */
struct vregion {
    const cJSON *v;
    const char *version;
    struct bitset *region;
};

static int cmp_vregion_desc(const void *a, const void *b)
{
    const struct vregion *x = a, *y = b;
    return -validate_version_cmp(x->version, y->version);
}

static void vregions_free(struct vregion *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        bitset_free(v[i].region);
    free(v);
}

/* -RE_EINVAL when an expression does not evaluate: the caller then falls
 * back to everything the versions select. */
static int vregions(struct vregion **out, size_t *n_out, struct fleet *f, const cJSON *versions)
{
    struct vregion *v = NULL;
    struct bitset *taken = NULL;
    const cJSON *it;
    size_t n = 0;
    int r = -RE_ENOMEM;

    if (!(v = calloc((size_t)cJSON_GetArraySize(versions) + 1, sizeof(*v))) ||
        bitset_new(&taken, fleet_size(f)) < 0)
        goto out;
    cJSON_ArrayForEach(it, versions) {
        const char *ver = jstr(it, "version"), *expr = jstr(it, "expression");
        v[n].v = it;
        v[n].version = ver ? ver : "";
        n++;
        if (!expr || fleet_select(&v[n - 1].region, f, expr, strlen(expr), NULL) < 0) {
            r = -RE_EINVAL;
            goto out;
        }
    }
    qsort(v, n, sizeof(*v), cmp_vregion_desc);
    for (size_t k = 0; k < n; k++) {
        if (bitset_andnot(v[k].region, taken) < 0 || bitset_or(taken, v[k].region) < 0)
            goto out;
    }
    *out = v;
    *n_out = n;
    v = NULL;
    r = 0;
out:
    vregions_free(v, n);
    bitset_free(taken);
    return r;
}

/* Whether two application objects differ in nothing a cluster's render
 * reads but their versions: the bookkeeping members change on every write. */
static bool only_versions_differ(const cJSON *before, const cJSON *after)
{
    static const char *const ignored[] = { "versions", "id", "version", "created_at",
                                           "created_by", "updated_at", "updated_by" };
    cJSON *b = cJSON_Duplicate(before, true), *a = cJSON_Duplicate(after, true);
    bool same = false;
    if (a && b) {
        for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
            cJSON_DeleteItemFromObjectCaseSensitive(b, ignored[i]);
            cJSON_DeleteItemFromObjectCaseSensitive(a, ignored[i]);
        }
        same = cJSON_Compare(b, a, true);
    }
    cJSON_Delete(b);
    cJSON_Delete(a);
    return same;
}

/*
 * ORs into acc the clusters whose version of the application changes: a
 * version (matched by its whole object) before and after runs on regions
 * whose symmetric difference changed; a version only on one side, on all its
 * region. Rolling version 2 out to one ring re-renders that ring, not every
 * cluster version 1 still selects. 0, or negative when the caller should fall
 * back to the union of every expression.
 */
static int or_versions_changed(struct bitset *acc, struct fleet *f, const cJSON *before,
                               const cJSON *after)
{
    struct vregion *vb = NULL, *va = NULL;
    size_t nb = 0, na = 0;
    bool *matched = NULL;
    int r;

    if ((r = vregions(&vb, &nb, f, cJSON_GetObjectItemCaseSensitive(before, "versions"))) < 0 ||
        (r = vregions(&va, &na, f, cJSON_GetObjectItemCaseSensitive(after, "versions"))) < 0)
        goto out;
    r = -RE_ENOMEM;
    if (!(matched = calloc(na + 1, sizeof(*matched))))
        goto out;
    for (size_t i = 0; i < nb; i++) {
        size_t j = 0;
        while (j < na && (matched[j] || !cJSON_Compare(vb[i].v, va[j].v, true)))
            j++;
        if (j < na) {
            matched[j] = true;
            if (bitset_xor(vb[i].region, va[j].region) < 0)
                goto out;
        }
        if (bitset_or(acc, vb[i].region) < 0)
            goto out;
    }
    for (size_t j = 0; j < na; j++)
        if (!matched[j] && bitset_or(acc, va[j].region) < 0)
            goto out;
    r = 0;
out:
    free(matched);
    vregions_free(vb, nb);
    vregions_free(va, na);
    return r;
}

/*
 * The clusters change c may affect, over fleet f: *all set, or bits in
 * *out (a new set of fleet_size bits).
 */
static int affected(struct bitset **out, bool *all, struct fleet *f,
                    const struct inventory_change *c)
{
    struct bitset *acc = NULL;
    int r;
    *all = false;
    if ((r = bitset_new(&acc, fleet_size(f))) < 0)
        return r;
    const char *e = c->entity ? c->entity : "";
    if (strcmp(e, "cluster") == 0) {
        size_t i = fleet_index_of_id(f, c->id);
        if (i != FLEET_NONE)
            bitset_set(acc, i);
    } else if (strcmp(e, "config") == 0) {
        char buf[600];
        if (c->name && c->name[0] == '/') {
            if (snprintf(buf, sizeof(buf), "/g%s", c->name) < (int)sizeof(buf))
                or_select(acc, f, buf);
            else
                *all = true;
        } else {
            size_t i = fleet_index_of_id(f, c->id);
            if (i != FLEET_NONE)
                bitset_set(acc, i);
        }
    } else if (strcmp(e, "application") == 0 && c->before && c->after &&
               only_versions_differ(c->before, c->after) &&
               or_versions_changed(acc, f, c->before, c->after) == 0) {
        /* versions moved: only the clusters whose version changes */
    } else if (strcmp(e, "namespace") == 0 || strcmp(e, "application") == 0 ||
               strcmp(e, "policy") == 0 ||
               (strcmp(e, "group") == 0 && c->before && c->after)) {
        or_object(acc, f, e, c->before);
        or_object(acc, f, e, c->after);
    } else if (strcmp(e, "group") == 0 && !c->before) {
        /* a new group holds no cluster yet */
    } else {
        *all = true;
    }
    *out = acc;
    return 0;
}

/* ---- commit messages: what changed, in one line ---- */

/* Appends s as one line: control characters become spaces, at most max bytes
 * (cut at a UTF-8 boundary, then "..."). NULL appends "none". */
static void put_text(struct re_buf *b, const char *s, size_t max)
{
    size_t n;
    if (!s || !*s)
        s = "none";
    n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
        re_buf_append(b, &ch, 1);
    }
    if (n < strlen(s))
        re_buf_append_str(b, "...");
}

/* "; " between the parts of one change, ": " before the first. */
static void sep(struct re_buf *b, size_t *parts)
{
    re_buf_append_str(b, (*parts)++ ? "; " : ": ");
}

static const cJSON *find_version(const cJSON *versions, const char *v)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, versions) {
        const char *s = jstr(it, "version");
        if (s && v && strcmp(s, v) == 0)
            return it;
    }
    return NULL;
}

/* "version 2 to /g/rings/beta" for each version added or retargeted, the
 * ref or image tag a version moved to, and the versions removed. */
static void describe_versions(struct re_buf *b, size_t *parts, const cJSON *before,
                              const cJSON *after)
{
    static const char *const refs[] = { "ref", "image_tag", "path" };
    const cJSON *bv = cJSON_GetObjectItemCaseSensitive(before, "versions");
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(after, "versions");
    const cJSON *it;
    cJSON_ArrayForEach(it, av) {
        const char *v = jstr(it, "version"), *expr = jstr(it, "expression");
        const cJSON *old = find_version(bv, v);
        const char *old_expr = old ? jstr(old, "expression") : NULL;
        bool expr_changed = !old || strcmp(old_expr ? old_expr : "", expr ? expr : "") != 0;
        if (expr_changed) {
            sep(b, parts);
            re_buf_append_str(b, "version ");
            put_text(b, v, 40);
            re_buf_append_str(b, " to ");
            put_text(b, expr, 80);
            if (old) {
                re_buf_append_str(b, " (was ");
                put_text(b, old_expr, 60);
                re_buf_append_str(b, ")");
            }
        }
        for (size_t k = 0; old && k < sizeof(refs) / sizeof(refs[0]); k++) {
            const char *o = jstr(old, refs[k]), *n = jstr(it, refs[k]);
            if (strcmp(o ? o : "", n ? n : "") == 0)
                continue;
            sep(b, parts);
            re_buf_append_str(b, "version ");
            put_text(b, v, 40);
            re_buf_printf(b, " %s ", refs[k]);
            put_text(b, o, 40);
            re_buf_append_str(b, " -> ");
            put_text(b, n, 40);
        }
    }
    cJSON_ArrayForEach(it, bv) {
        const char *v = jstr(it, "version");
        if (find_version(av, v))
            continue;
        sep(b, parts);
        re_buf_append_str(b, "version ");
        put_text(b, v, 40);
        re_buf_append_str(b, " removed");
    }
}

/* "ring=prod, -old" for metadata keys set and removed. */
static void describe_metadata(struct re_buf *b, size_t *parts, const cJSON *before,
                              const cJSON *after)
{
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(before, "metadata");
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(after, "metadata");
    const cJSON *it;
    size_t n = 0;
    cJSON_ArrayForEach(it, am) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(bm, it->string);
        if (o && cJSON_Compare(o, it, true))
            continue;
        if (n++ == 0) {
            sep(b, parts);
            re_buf_append_str(b, "metadata ");
        } else {
            re_buf_append_str(b, ", ");
        }
        put_text(b, it->string, 40);
        re_buf_append_str(b, "=");
        put_text(b, cJSON_IsString(it) ? it->valuestring : NULL, 40);
    }
    cJSON_ArrayForEach(it, bm) {
        if (cJSON_GetObjectItemCaseSensitive(am, it->string))
            continue;
        if (n++ == 0) {
            sep(b, parts);
            re_buf_append_str(b, "metadata ");
        } else {
            re_buf_append_str(b, ", ");
        }
        re_buf_append_str(b, "-");
        put_text(b, it->string, 40);
    }
}

/* "groups +/rings/beta -/rings/prod". */
static void describe_groups(struct re_buf *b, size_t *parts, const cJSON *before,
                            const cJSON *after)
{
    const cJSON *bg = cJSON_GetObjectItemCaseSensitive(before, "groups");
    const cJSON *ag = cJSON_GetObjectItemCaseSensitive(after, "groups");
    const cJSON *it, *jt;
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *from = pass ? bg : ag, *other = pass ? ag : bg;
        cJSON_ArrayForEach(it, from) {
            bool found = false;
            cJSON_ArrayForEach(jt, other)
                found = found || cJSON_Compare(it, jt, true);
            if (found || !cJSON_IsString(it))
                continue;
            if (n++ == 0) {
                sep(b, parts);
                re_buf_append_str(b, "groups");
            }
            re_buf_append_str(b, pass ? " -" : " +");
            put_text(b, it->valuestring, 60);
        }
    }
}

/* "expression /g/stores -> /g/stores/central". */
static void describe_string(struct re_buf *b, size_t *parts, const char *key,
                            const cJSON *before, const cJSON *after)
{
    const char *o = jstr(before, key), *n = jstr(after, key);
    if (strcmp(o ? o : "", n ? n : "") == 0)
        return;
    sep(b, parts);
    re_buf_printf(b, "%s ", key);
    put_text(b, o, 70);
    re_buf_append_str(b, " -> ");
    put_text(b, n, 70);
}

/* Every other top-level field that differs: "quota changed". */
static void describe_rest(struct re_buf *b, size_t *parts, const cJSON *before,
                          const cJSON *after, const char *const *done)
{
    static const char *const skip[] = { "id", "version", "created_at", "updated_at",
                                        "created_by", "updated_by", NULL };
    const cJSON *it;
    cJSON_ArrayForEach(it, after) {
        bool known = false;
        for (size_t i = 0; !known && skip[i]; i++)
            known = strcmp(it->string, skip[i]) == 0;
        for (size_t i = 0; !known && done[i]; i++)
            known = strcmp(it->string, done[i]) == 0;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(before, it->string);
        if (known || (o && cJSON_Compare(o, it, true)))
            continue;
        sep(b, parts);
        put_text(b, it->string, 40);
        re_buf_append_str(b, " changed");
    }
}

/* What a new object targets: "version 1 to /g/stores, ..." or its expression. */
static void describe_created(struct re_buf *b, size_t *parts, const char *e, const cJSON *after)
{
    if (strcmp(e, "application") == 0) {
        describe_versions(b, parts, NULL, after);
    } else if (strcmp(e, "namespace") == 0 || strcmp(e, "policy") == 0) {
        sep(b, parts);
        re_buf_append_str(b, "expression ");
        put_text(b, jstr(after, "expression"), 80);
    } else if (strcmp(e, "cluster") == 0) {
        describe_groups(b, parts, NULL, after);
    }
}

/*
 * One line (at most SUMMARY_MAX bytes) saying what change c did, for commit
 * messages: "application pos-api: version 2 to /g/rings/beta", "namespace
 * pos: expression /g/stores -> /g/stores/central", "config tax-rate=8.25 on
 * /stores/central". Falls back to the inventory's own summary.
 */
static void describe(struct re_buf *out, const struct inventory_change *c)
{
    static const char *const handled[] = { "name", "path", "versions", "expression",
                                           "metadata", "groups", "namespace", "owner",
                                           "timezone", NULL };
    const char *e = c->entity ? c->entity : "";
    const char *a = c->action ? c->action : "";
    struct re_buf b;
    size_t parts = 0;
    re_buf_init(&b, 4096);
    if (strcmp(e, "config") == 0) {
        const cJSON *o = c->after ? c->after : c->before;
        const char *owner = jstr(o, "group") ? jstr(o, "group") : jstr(o, "cluster");
        re_buf_append_str(&b, "config ");
        put_text(&b, jstr(o, "key"), 60);
        if (c->after) {
            re_buf_append_str(&b, "=");
            put_text(&b, jstr(c->after, "value"), 60);
        } else {
            re_buf_append_str(&b, " unset");
        }
        re_buf_append_str(&b, " on ");
        put_text(&b, owner, 80);
        if (c->before && c->after) {
            re_buf_append_str(&b, " (was ");
            put_text(&b, jstr(c->before, "value"), 40);
            re_buf_append_str(&b, ")");
        }
    } else if ((strcmp(e, "application") == 0 || strcmp(e, "namespace") == 0 ||
                strcmp(e, "policy") == 0 || strcmp(e, "cluster") == 0) && c->name) {
        re_buf_printf(&b, "%s ", e);
        put_text(&b, c->name, 63);
        if (strcmp(a, "create") == 0 && c->after) {
            re_buf_append_str(&b, " created");
            describe_created(&b, &parts, e, c->after);
        } else if (strcmp(a, "delete") == 0) {
            re_buf_append_str(&b, " deleted");
        } else if (c->before && c->after) {
            describe_versions(&b, &parts, c->before, c->after);
            describe_string(&b, &parts, "expression", c->before, c->after);
            describe_string(&b, &parts, "owner", c->before, c->after);
            describe_string(&b, &parts, "timezone", c->before, c->after);
            describe_groups(&b, &parts, c->before, c->after);
            describe_metadata(&b, &parts, c->before, c->after);
            describe_rest(&b, &parts, c->before, c->after, handled);
            if (!parts)
                re_buf_append_str(&b, " updated");
        } else {
            re_buf_printf(&b, " %s", a);
        }
    } else {
        put_text(&b, c->summary ? c->summary : "inventory changed", SUMMARY_MAX);
    }
    re_buf_reset(out);
    put_text(out, b.len ? b.ptr : (c->summary ? c->summary : "inventory changed"),
             SUMMARY_MAX - 3);
    re_buf_release(&b);
}

static void on_committed(void *ctx, struct hub *hub, const struct inventory_change *c)
{
    struct gitops *go = ctx;
    struct fleet *f = NULL;
    struct bitset *b = NULL;
    bool all = false;
    if (go->stopping)
        return;
    if (fleet_acquire(&f, hub->db) < 0 || affected(&b, &all, f, c) < 0) {
        all = true;
    } else if (!all) {
        for (size_t i = bitset_next(b, 0); i != BITSET_NONE; i = bitset_next(b, i + 1))
            if (add_id(go, fleet_cluster_id(f, i)) < 0) {
                all = true;
                break;
            }
    }
    if (all)
        go->pend_all = true;
    struct re_buf line;
    re_buf_init(&line, SUMMARY_MAX + 16);
    describe(&line, c);
    add_note(go, c->actor, line.len ? line.ptr : c->summary);
    re_buf_release(&line);
    bitset_free(b);
    fleet_release(f);
    metrics_set(hub->metrics, "resedge_gitops_pending_clusters", (double)go->n_pend);
    schedule(go, GITOPS_COALESCE_MS);
}

void gitops__mark_cluster(struct hub *hub, int64_t id, const char *actor, const char *summary)
{
    struct gitops *go = hub->gitops;
    if (!go || go->stopping)
        return;
    if (add_id(go, id) < 0)
        go->pend_all = true;
    add_note(go, actor, summary);
    schedule(go, GITOPS_COALESCE_MS);
    mirror_notify(go->mirror); /* a revert commits on its own */
}

/* ---- the worker ---- */

static int load_pins(sqlite3 *db, struct pin **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    struct pin *v = NULL;
    size_t cap = 0, k = 0;
    int rc, r = 0;
    if (sqlite3_prepare_v2(db, "SELECT cluster_id, rev FROM gitops_pins", -1, &st, NULL) !=
        SQLITE_OK)
        return -RE_EDB;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            cap = cap ? cap * 2 : 16;
            struct pin *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                r = -RE_ENOMEM;
                goto out;
            }
            v = nv;
        }
        v[k].id = sqlite3_column_int64(st, 0);
        snprintf(v[k].rev, sizeof(v[k].rev), "%s", (const char *)sqlite3_column_text(st, 1));
        k++;
    }
    if (rc != SQLITE_DONE)
        r = -RE_EDB;
out:
    sqlite3_finalize(st);
    if (r < 0) {
        free(v);
        return r;
    }
    *out = v;
    *n = k;
    return 0;
}

static const struct pin *find_pin(const struct pin *v, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

/*
 * A batch is a pipeline on two threads (the hub's 2 cores): a render thread
 * turns the selected clusters into trees (inventory reads on its own
 * connection, YAML) into a bounded queue, in cluster order, while the worker
 * thread stages them (hashing, pack, refs). Pinned clusters are read back
 * from git by the worker, which owns the store.
 */
/* Rendered trees waiting to be staged: enough (some 10-20 MB) that the
 * render thread keeps going while the worker writes a chunk's pack and refs. */
#define RQ_SLOTS 2048

struct rq_item {
    size_t idx;
    struct render_tree *t;
    int r;
    bool pinned;
    char why[200];                  /* render's error, logged by the worker */
};

struct renderq {
    pthread_mutex_t mu;
    pthread_cond_t more, room;
    struct rq_item v[RQ_SLOTS];
    size_t head, tail;              /* consumed, produced (counts) */
    bool done, stop;
    size_t next;                    /* the render thread's position in sel */
    struct gitops *go;
    const struct pin *pins;
    size_t n_pins;
};

/* Renders the next selected cluster into it; false when there is none. */
static bool rq_render_next(struct renderq *q, struct rq_item *it)
{
    struct gitops *go = q->go;
    size_t i = bitset_next(go->sel, q->next);
    if (i == BITSET_NONE)
        return false;
    q->next = i + 1;
    memset(it, 0, sizeof(*it));
    it->idx = i;
    if (find_pin(q->pins, q->n_pins, fleet_cluster_id(go->plan->fleet, i))) {
        it->pinned = true;
        return true;
    }
    struct re_buf rerr;
    re_buf_init(&rerr, sizeof(it->why));
    it->r = desired_render(&it->t, go->plan, go->rdb, i, &rerr);
    if (it->r < 0)
        snprintf(it->why, sizeof(it->why), "%s", rerr.len ? rerr.ptr : re_strerror(it->r));
    re_buf_release(&rerr);
    return true;
}

static void *rq_thread(void *arg)
{
    struct renderq *q = arg;
    for (;;) {
        struct rq_item it;
        pthread_mutex_lock(&q->mu);
        while (!q->stop && q->tail - q->head == RQ_SLOTS)
            pthread_cond_wait(&q->room, &q->mu);
        bool stop = q->stop;
        pthread_mutex_unlock(&q->mu);
        bool got = !stop && !atomic_load(&q->go->cancel) && rq_render_next(q, &it);
        pthread_mutex_lock(&q->mu);
        if (got && !q->stop)
            q->v[q->tail++ % RQ_SLOTS] = it;
        else if (got)
            render_tree_free(it.t);
        if (!got)
            q->done = true;
        pthread_cond_signal(&q->more);
        pthread_mutex_unlock(&q->mu);
        if (!got)
            return NULL;
    }
}

/* The next rendered cluster, in order; false when all were taken. With no
 * render thread (it could not start) the worker renders it itself. */
static bool rq_pop(struct renderq *q, bool threaded, struct rq_item *out)
{
    if (!threaded)
        return !atomic_load(&q->go->cancel) && rq_render_next(q, out);
    pthread_mutex_lock(&q->mu);
    while (q->head == q->tail && !q->done)
        pthread_cond_wait(&q->more, &q->mu);
    bool got = q->head != q->tail;
    if (got) {
        *out = q->v[q->head++ % RQ_SLOTS];
        pthread_cond_signal(&q->room);
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

/* Stops the render thread and frees what it rendered and nobody took. */
static void rq_finish(struct renderq *q, bool threaded, pthread_t th)
{
    if (threaded) {
        pthread_mutex_lock(&q->mu);
        q->stop = true;
        pthread_cond_broadcast(&q->room);
        pthread_mutex_unlock(&q->mu);
        pthread_join(th, NULL);
    }
    while (q->head != q->tail)
        render_tree_free(q->v[q->head++ % RQ_SLOTS].t);
    pthread_cond_destroy(&q->more);
    pthread_cond_destroy(&q->room);
    pthread_mutex_destroy(&q->mu);
}

static int run_batch(struct gitops *go, struct re_buf *err)
{
    struct gitstore_batch *b = NULL;
    struct pin *pins = NULL;
    size_t n_pins = 0;
    struct renderq *q = NULL;
    bool threaded = false, q_init = false;
    pthread_t th;
    int r;
    go->rendered = go->changed = go->failed = 0;
    if ((r = load_pins(go->wdb, &pins, &n_pins)) < 0) {
        re_buf_printf(err, "cannot read pinned clusters: %s", re_strerror(r));
        goto out;
    }
    if ((r = gitstore_batch_begin(&b, go->gs, err)) < 0)
        goto out;
    if (!(q = calloc(1, sizeof(*q)))) {     /* some 500 KB: not on the stack */
        r = -RE_ENOMEM;
        re_buf_printf(err, "%s", re_strerror(r));
        goto out;
    }
    q->go = go;
    q->pins = pins;
    q->n_pins = n_pins;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->more, NULL);
    pthread_cond_init(&q->room, NULL);
    q_init = true;
    threaded = pthread_create(&th, NULL, rq_thread, q) == 0;
    for (;;) {
        struct rq_item it;
        if (!rq_pop(q, threaded, &it))
            break;
        struct render_tree *t = it.t;
        const char *name = fleet_cluster_name(go->plan->fleet, it.idx);
        char msg[128];
        const char *message = go->message;
        bool changed = false;
        r = it.r;
        if (it.pinned) {
            const struct pin *pin = find_pin(pins, n_pins, fleet_cluster_id(go->plan->fleet, it.idx));
            r = gitstore_read_tree(&t, go->gs, name, pin->rev);
            snprintf(msg, sizeof(msg), "pinned at %.12s", pin->rev);
            message = msg;
        } else if (r == -RE_EINVAL) {
            log_warn("cannot render cluster '%s': %s", name, it.why);
            fail_set(go, name, it.why);
        }
        if (r < 0) {
            go->failed++;
            if (r == -RE_ENOMEM || r == -RE_EDB) {
                re_buf_printf(err, "cannot render cluster '%s': %s", name, re_strerror(r));
                render_tree_free(t);
                goto out;
            }
            r = 0;
            continue;
        }
        go->rendered++;
        if (!it.pinned)
            fail_clear(go, name);
        r = gitstore_batch_put(b, name, t, go->actor, message, NULL, &changed, NULL);
        render_tree_free(t);
        if (r < 0) {
            re_buf_printf(err, "cannot stage cluster '%s': %s", name, re_strerror(r));
            goto out;
        }
        if (changed)
            go->changed++;
    }
    if (atomic_load(&go->cancel)) {
        r = -RE_EAGAIN;
        re_buf_printf(err, "%s", "stopped");
        goto out;
    }
    rq_finish(q, threaded, th);
    q_init = false;
    r = gitstore_batch_commit(b, err);
    b = NULL;
out:
    if (q_init)
        rq_finish(q, threaded, th);
    gitstore_batch_abort(b);
    free(q);
    free(pins);
    return r;
}

static void work_cb(uv_work_t *w)
{
    struct gitops *go = w->data;
    struct re_buf err;
    double t0 = now_s();
    int r = 0;
    re_buf_init(&err, sizeof(go->errmsg));
    if ((!go->wdb && (r = db_open(&go->wdb, go->db_path)) < 0) ||
        (!go->rdb && (r = db_open(&go->rdb, go->db_path)) < 0)) {
        re_buf_printf(&err, "cannot open '%s': %s", go->db_path, re_strerror(r));
        goto out;
    }
    if (!go->gs && (r = gitstore_open(&go->gs, go->git_dir, 0, &err)) < 0)
        goto out;
    for (int attempt = 0; attempt < 3; attempt++) {
        re_buf_reset(&err);
        r = run_batch(go, &err);
        if (r != -RE_ECONFLICT)
            break;
    }
out:
    go->result = r;
    snprintf(go->errmsg, sizeof(go->errmsg), "%s", err.len ? err.ptr : re_strerror(r));
    go->seconds = now_s() - t0;
    re_buf_release(&err);
}

static void readd_notes(struct gitops *go, const char *actor, const char *notes, size_t n);

static void after_cb(uv_work_t *w, int status)
{
    struct gitops *go = w->data;
    struct metrics *m = go->hub->metrics;
    if (status == UV_ECANCELED)
        go->result = -RE_EAGAIN;
    go->busy = false;
    go->batches++;
    metrics_inc(m, "resedge_gitops_batches_total");
    metrics_add(m, "resedge_gitops_renders_total", (double)go->rendered);
    metrics_set(m, "resedge_gitops_last_batch_seconds", go->seconds);
    metrics_set(m, "resedge_gitops_last_batch_clusters", (double)go->rendered);
    if (go->failed)
        metrics_add(m, "resedge_gitops_render_errors_total", (double)go->failed);
    pthread_mutex_lock(&go->fail_mu);
    metrics_set(m, "resedge_gitops_clusters_failing", (double)go->n_fails);
    pthread_mutex_unlock(&go->fail_mu);
    if (go->result == 0) {
        metrics_add(m, "resedge_gitops_commits_total", (double)go->changed);
        metrics_add(m, "resedge_gitops_clusters_changed_total", (double)go->changed);
        log_info("gitops: rendered %zu clusters, committed %zu in %.3f s", go->rendered,
                 go->changed, go->seconds);
        go->initial_done = true;
        go->last_error[0] = '\0';
        if (go->changed)
            mirror_notify(go->mirror);
    } else if (!go->stopping) {
        metrics_inc(m, "resedge_gitops_errors_total");
        log_err("gitops: batch failed, retrying all clusters: %s", go->errmsg);
        snprintf(go->last_error, sizeof(go->last_error), "%s", go->errmsg);
        go->pend_all = true;
        readd_notes(go, go->actor, go->notes, go->notes_changes);
    }
    go->last_result = go->result;
    plan_free(go->plan);
    go->plan = NULL;
    bitset_free(go->sel);
    go->sel = NULL;
    free(go->message);
    go->message = NULL;
    free(go->notes);
    go->notes = NULL;
    if (!go->stopping && (go->pend_all || go->n_pend))
        schedule(go, go->result == 0 ? GITOPS_COALESCE_MS : GITOPS_RETRY_MS);
}

/*
 * The commit message of a batch of n changes whose lines are notes: the line
 * itself for one change; else the first line with "(+N more changes)" as
 * subject, a blank line, and every line (at most NOTES_MAX, then a count).
 */
static char *compose_message(const char *notes, size_t n)
{
    struct re_buf b;
    char first[SUMMARY_MAX + 16];
    if (n <= 1)
        return strdup(notes);
    snprintf(first, sizeof(first), "%.*s", (int)strcspn(notes, "\n"), notes);
    re_buf_init(&b, MSG_MAX + 256);
    /* the subject stays within SUMMARY_MAX too */
    put_text(&b, first, SUMMARY_MAX - 30);
    re_buf_printf(&b, " (+%zu more changes)\n\n%s", n - 1, notes);
    if (n > NOTES_MAX)
        re_buf_printf(&b, "\n(and %zu more changes)", n - NOTES_MAX);
    return b.len ? re_buf_steal(&b) : strdup(notes);
}

/* Puts a failed batch's changes back among the pending ones. */
static void readd_notes(struct gitops *go, const char *actor, const char *notes, size_t n)
{
    size_t lines = 0;
    char line[SUMMARY_MAX + 16];
    for (const char *p = notes; p && *p; lines++) {
        size_t len = strcspn(p, "\n");
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        add_note(go, actor, line);
        p += len + (p[len] == '\n');
    }
    if (n > lines)
        go->pend_changes += n - lines;
}

static void dispatch(uv_timer_t *t)
{
    struct gitops *go = t->data;
    struct hub *hub = go->hub;
    int r;
    if (go->busy || go->stopping || (!go->pend_all && !go->n_pend))
        return;
    if ((r = plan_build(&go->plan, hub->db)) < 0 ||
        (r = bitset_new(&go->sel, fleet_size(go->plan->fleet))) < 0) {
        log_err("gitops: cannot read the inventory: %s", re_strerror(r));
        plan_free(go->plan);
        go->plan = NULL;
        schedule(go, GITOPS_RETRY_MS);
        return;
    }
    if (go->pend_all) {
        bitset_fill(go->sel);
    } else {
        for (size_t i = 0; i < go->n_pend; i++) {
            size_t idx = fleet_index_of_id(go->plan->fleet, go->pend_ids[i]);
            if (idx != FLEET_NONE)
                bitset_set(go->sel, idx);
        }
    }
    snprintf(go->actor, sizeof(go->actor), "%s", go->pend_actor[0] ? go->pend_actor : "resedge-hub");
    go->notes = strdup(go->pend_msg.len ? go->pend_msg.ptr : "inventory changed");
    go->notes_changes = go->pend_changes ? go->pend_changes : 1;
    go->message = go->notes ? compose_message(go->notes, go->notes_changes) : NULL;
    go->pend_all = false;
    go->n_pend = 0;
    go->pend_changes = 0;
    go->pend_actor[0] = '\0';
    re_buf_reset(&go->pend_msg);
    metrics_set(hub->metrics, "resedge_gitops_pending_clusters", 0);
    if (!go->message) {
        free(go->notes);
        go->notes = NULL;
        go->pend_all = true;
        schedule(go, GITOPS_RETRY_MS);
        plan_free(go->plan);
        go->plan = NULL;
        bitset_free(go->sel);
        go->sel = NULL;
        return;
    }
    go->busy = true;
    go->work.data = go;
    if ((r = uv_queue_work(hub->loop, &go->work, work_cb, after_cb)) < 0) {
        go->busy = false;
        log_err("gitops: cannot queue work: %s", uv_strerror(r));
        go->pend_all = true;
        schedule(go, GITOPS_RETRY_MS);
    }
}

static void schedule(struct gitops *go, uint64_t ms)
{
    if (go->busy || go->stopping)
        return; /* after_cb schedules what is pending */
    if (uv_is_active((uv_handle_t *)&go->timer) && ms >= GITOPS_COALESCE_MS)
        return;
    uv_timer_start(&go->timer, dispatch, ms, 0);
}

/* ---- preview (dry runs) ---- */

int gitops__add_patch(cJSON *answer, const char *cluster, const struct render_tree *old,
                      const struct render_tree *new_)
{
    struct re_buf text;
    size_t i = 0, k = 0;
    int r = 0;
    re_buf_init(&text, 1u << 20);
    while ((old && i < old->n) || k < new_->n) {
        const struct render_entry *a = old && i < old->n ? &old->v[i] : NULL;
        const struct render_entry *b = k < new_->n ? &new_->v[k] : NULL;
        int c = !a ? 1 : !b ? -1 : strcmp(a->path, b->path);
        const struct render_entry *pa = c <= 0 ? a : NULL, *pb = c >= 0 ? b : NULL;
        if (c <= 0)
            i++;
        if (c >= 0)
            k++;
        if (pa && pb && pa->len == pb->len && memcmp(pa->data, pb->data, pa->len) == 0)
            continue;
        git_patch *patch = NULL;
        git_buf out = { 0 };
        if (git_patch_from_buffers(&patch, pa ? pa->data : NULL, pa ? pa->len : 0,
                                   pa ? pa->path : NULL, pb ? pb->data : NULL,
                                   pb ? pb->len : 0, pb ? pb->path : NULL, NULL) == 0 &&
            git_patch_to_buf(&out, patch) == 0)
            r = re_buf_append(&text, out.ptr, out.size);
        git_buf_dispose(&out);
        git_patch_free(patch);
        if (r < 0)
            break; /* too large: what we have */
    }
    cJSON *d = cJSON_AddObjectToObject(answer, "diff");
    if (d) {
        cJSON_AddStringToObject(d, "cluster", cluster);
        cJSON_AddStringToObject(d, "patch", text.len ? text.ptr : "");
        if (r < 0)
            cJSON_AddTrueToObject(d, "truncated");
    }
    re_buf_release(&text);
    return d ? 0 : -RE_ENOMEM;
}

static bool is_pinned(sqlite3 *db, int64_t id)
{
    sqlite3_stmt *st = NULL;
    bool pinned = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM gitops_pins WHERE cluster_id = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        pinned = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return pinned;
}

/* Adds the diff of the cluster named want: an empty "patch" when it would
 * not change (not affected, pinned, or rendered the same), with a "note"
 * when there is no such cluster. */
static int add_chosen_patch(struct gitops *go, struct hub *hub, struct plan *p,
                            const struct bitset *cand, const char *want, cJSON *answer)
{
    struct render_tree *now = NULL, *then = NULL;
    size_t i = fleet_index_of_name(p->fleet, want);
    int r;
    if (i == FLEET_NONE || !bitset_test(cand, i) ||
        is_pinned(hub->db, fleet_cluster_id(p->fleet, i)) ||
        desired_render(&now, p, hub->db, i, NULL) < 0) {
        cJSON *d = cJSON_AddObjectToObject(answer, "diff");
        if (!d || !cJSON_AddStringToObject(d, "cluster", want) ||
            !cJSON_AddStringToObject(d, "patch", ""))
            return -RE_ENOMEM;
        if (i == FLEET_NONE)
            cJSON_AddStringToObject(d, "note", "no such cluster");
        return 0;
    }
    if (gitstore_read_tree(&then, go->rd, want, NULL) < 0)
        then = NULL;
    r = gitops__add_patch(answer, want, then, now); /* equal trees: an empty patch */
    render_tree_free(now);
    render_tree_free(then);
    return r;
}

static int on_preview(void *ctx, struct hub *hub, const struct inventory_change *c,
                      const char *want, cJSON *answer)
{
    struct gitops *go = ctx;
    struct plan *p = NULL;
    struct bitset *cand = NULL;
    bool all = false, exact = true, diffed = want != NULL;
    size_t count = 0, seen = 0;
    cJSON *names;
    int r;
    fleet_invalidate(); /* the transaction's own view */
    if ((r = plan_build(&p, hub->db)) < 0 || (r = affected(&cand, &all, p->fleet, c)) < 0)
        goto out;
    if (all)
        bitset_fill(cand);
    r = -RE_ENOMEM;
    if (!(names = cJSON_AddArrayToObject(answer, "clusters")))
        goto out;
    for (size_t i = bitset_next(cand, 0); i != BITSET_NONE; i = bitset_next(cand, i + 1)) {
        struct render_tree *now = NULL, *then = NULL;
        const char *name = fleet_cluster_name(p->fleet, i);
        if (is_pinned(hub->db, fleet_cluster_id(p->fleet, i)))
            continue;
        if (++seen > GITOPS_PREVIEW_MAX) {
            exact = false;
            count += bitset_count(cand) - (seen - 1);
            break;
        }
        if (desired_render(&now, p, hub->db, i, NULL) < 0)
            continue;
        if (gitstore_read_tree(&then, go->rd, name, NULL) < 0)
            then = NULL;
        if (!then || !render_tree_equal(now, then)) {
            count++;
            if (count <= GITOPS_PREVIEW_NAMES)
                cJSON_AddItemToArray(names, cJSON_CreateString(name));
            if (!diffed) {
                gitops__add_patch(answer, name, then, now);
                diffed = true;
            }
        }
        render_tree_free(now);
        render_tree_free(then);
    }
    if (want && (r = add_chosen_patch(go, hub, p, cand, want, answer)) < 0)
        goto out;
    cJSON_AddNumberToObject(answer, "clusters_count", (double)count);
    cJSON_AddBoolToObject(answer, "exact", exact);
    r = 0;
out:
    bitset_free(cand);
    plan_free(p);
    return r;
}

/* ---- readiness, status ---- */

struct mirror *gitops_mirror(const struct hub *hub)
{
    const struct gitops *go = hub->gitops;
    return go ? go->mirror : NULL;
}

int gitops_ready(void *arg, struct re_buf *why)
{
    struct gitops *go = arg;
    if (go->last_result < 0 && go->last_error[0]) {
        re_buf_printf(why, "last batch failed: %s", go->last_error);
        return -RE_EAGAIN;
    }
    return 0;
}

cJSON *gitops__status_json(struct hub *hub)
{
    struct gitops *go = hub->gitops;
    cJSON *o = cJSON_CreateObject();
    if (!o || !go)
        return o;
    cJSON_AddStringToObject(o, "state", go->busy ? "rendering"
                                        : (go->pend_all || go->n_pend) ? "pending"
                                        : go->last_error[0] ? "error" : "idle");
    cJSON_AddBoolToObject(o, "initial_done", go->initial_done);
    cJSON_AddNumberToObject(o, "batches", (double)go->batches);
    cJSON_AddNumberToObject(o, "pending_clusters", go->pend_all ? -1.0 : (double)go->n_pend);
    cJSON_AddNumberToObject(o, "last_batch_clusters", (double)go->rendered);
    cJSON_AddNumberToObject(o, "last_batch_changed", (double)go->changed);
    cJSON_AddNumberToObject(o, "last_batch_seconds", go->seconds);
    pthread_mutex_lock(&go->fail_mu);
    cJSON_AddNumberToObject(o, "failing_clusters", (double)go->n_fails);
    cJSON *fl = cJSON_AddArrayToObject(o, "render_errors");
    for (size_t i = 0; fl && i < go->n_fails && i < 20; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "cluster", go->fails[i].cluster);
        cJSON_AddStringToObject(e, "error", go->fails[i].why);
        cJSON_AddItemToArray(fl, e);
    }
    /* a batch's failure, else the first cluster whose render fails */
    if (go->last_error[0])
        cJSON_AddStringToObject(o, "last_error", go->last_error);
    else if (go->n_fails) {
        char msg[400];
        snprintf(msg, sizeof(msg), "cluster '%s': %s", go->fails[0].cluster, go->fails[0].why);
        cJSON_AddStringToObject(o, "last_error", msg);
    } else
        cJSON_AddNullToObject(o, "last_error");
    pthread_mutex_unlock(&go->fail_mu);
    if (go->mirror)
        cJSON_AddItemToObject(o, "mirror", mirror_status_json(go->mirror));
    else
        cJSON_AddNullToObject(o, "mirror");
    return o;
}

struct gitstore *gitops__reader(struct hub *hub)
{
    struct gitops *go = hub ? hub->gitops : NULL;
    return go ? go->rd : NULL;
}

int gitops_desired_revision(struct hub *hub, const char *cluster, char out[RE_OID_BUF])
{
    struct gitops *go = hub ? hub->gitops : NULL;
    if (!go || !go->rd)
        return -RE_ENOENT;
    return go->revs ? revcache_head(go->revs, go->rd, cluster, out)
                    : gitstore_head(go->rd, cluster, out);
}

/* ... and why its branch stopped moving, when it did. */
static int render_error_hook(void *ctx, struct hub *hub, const char *cluster, char *out,
                             size_t size)
{
    (void)ctx;
    return gitops_render_error(hub, cluster, out, size);
}

/* The inventory's view of a cluster shows the revision it should run. */
static int desired_revision_hook(void *ctx, struct hub *hub, const char *cluster, char out[RE_OID_BUF])
{
    (void)ctx;
    return gitops_desired_revision(hub, cluster, out);
}

/* ---- clean stop ----
 * A hub stopped cleanly with the writer idle and nothing pending leaves
 * DIR/gitops.clean: its version and binary, the newest audit row and the
 * packed-refs file it left. The next start of the same binary that finds the same
 * inventory and refs skips rendering every cluster (minutes of CPU at
 * 100,000 clusters, just when every store reconnects). Anything else - a
 * crash (no file, or a batch's marker left: gitstore_unfinished_batch), an
 * upgrade, an inventory or repository changed meanwhile,
 * serve --reconcile - renders all. The file is removed at start, so it never
 * speaks for more than the one stop that wrote it. */
#define CLEAN_STOP_FILE "gitops.clean"

static int clean_stamp(struct gitops *go, sqlite3 *db, char *out, size_t size)
{
    sqlite3_stmt *st = NULL;
    long long audit = -1;
    struct stat sb, exe;
    char path[PATH_MAX + 16];
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM audit", -1, &st, NULL) !=
        SQLITE_OK)
        return -RE_EDB;
    if (sqlite3_step(st) == SQLITE_ROW)
        audit = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (audit < 0)
        return -RE_EDB;
    /* this very binary: a rebuilt or upgraded hub may render differently */
    if (stat("/proc/self/exe", &exe) < 0)
        return -RE_ENOENT;
    if (re_snprintf(path, sizeof(path), "%s/packed-refs", go->git_dir) < 0 || stat(path, &sb) < 0)
        return -RE_ENOENT;
    return re_snprintf(out, size,
                       "version=%s\nbinary=%llu:%llu:%lld:%lld.%09ld\naudit=%lld\n"
                       "packed-refs=%llu:%llu:%lld:%lld.%09ld\n",
                       RE_VERSION, (unsigned long long)exe.st_dev, (unsigned long long)exe.st_ino,
                       (long long)exe.st_size, (long long)exe.st_mtim.tv_sec, exe.st_mtim.tv_nsec,
                       audit, (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino,
                       (long long)sb.st_size, (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
}

/* True when the last stop was clean and nothing changed since (see above). */
static bool clean_restart(struct gitops *go, struct hub *hub)
{
    char path[PATH_MAX], now[512];
    struct re_buf was;
    bool same = false;
    if (re_path_join(path, sizeof(path), hub->cfg.dir, CLEAN_STOP_FILE) < 0)
        return false;
    re_buf_init(&was, sizeof(now));
    if (re_read_file(&was, path) == 0 && !hub->reconcile_at_start &&
        !gitstore_unfinished_batch(go->rd) && clean_stamp(go, hub->db, now, sizeof(now)) == 0)
        same = was.len == strlen(now) && memcmp(was.ptr, now, was.len) == 0;
    unlink(path);
    re_buf_release(&was);
    return same;
}

static void write_clean_stop(struct gitops *go, struct hub *hub)
{
    char path[PATH_MAX], stamp[512];
    int r;
    if ((r = re_path_join(path, sizeof(path), hub->cfg.dir, CLEAN_STOP_FILE)) < 0 ||
        (r = clean_stamp(go, hub->db, stamp, sizeof(stamp))) < 0 ||
        (r = re_write_file_atomic(path, stamp, strlen(stamp), 0644)) < 0)
        log_warn("gitops: cannot record the clean stop (the next start renders all): %s",
                 re_strerror(r));
}

/* ---- start, stop ---- */

int gitops_start(struct hub *hub)
{
    struct gitops *go = calloc(1, sizeof(*go));
    struct re_buf err;
    int r = -RE_ENOMEM;
    re_buf_init(&err, 1024);
    if (!go)
        goto out;
    go->hub = hub;
    pthread_mutex_init(&go->fail_mu, NULL);
    re_buf_init(&go->pend_msg, MSG_MAX);
    atomic_init(&go->cancel, false);
    if ((r = re_snprintf(go->git_dir, sizeof(go->git_dir), "%s/git", hub->cfg.dir)) < 0 ||
        (r = re_snprintf(go->db_path, sizeof(go->db_path), "%s/" HUB_DB_FILE, hub->cfg.dir)) < 0)
        goto out;
    /* Opened first, before any batch or revert can write: this hub holds
     * DIR/hub.lock, so a packed-refs.lock still here is a crashed writer's. */
    if ((r = gitstore_open(&go->rd, go->git_dir, GITSTORE_SOLE_WRITER, &err)) < 0) {
        log_err("gitops: cannot open '%s': %s", go->git_dir, err.len ? err.ptr : re_strerror(r));
        goto out;
    }
    if (revcache_new(&go->revs) < 0)
        go->revs = NULL;            /* check-ins read the branch each time */
    if (hub->cfg.mirror_url) {
        struct mirror_config mc = { hub->cfg.mirror_url, hub->cfg.mirror_credentials,
                                    hub->cfg.mirror_retry_max_ms };
        if ((r = mirror_start(&go->mirror, go->git_dir, &mc, hub->metrics, &err)) < 0) {
            log_err("gitops: cannot start the push mirror: %s", err.len ? err.ptr : re_strerror(r));
            goto out;
        }
    }
    uv_timer_init(hub->loop, &go->timer);
    go->timer.data = go;
    hub->gitops = go;
    struct inventory_hooks h = { go, on_committed, on_preview, desired_revision_hook,
                                 render_error_hook };
    inventory_set_hooks(&h);
    metrics_describe(hub->metrics, "resedge_gitops_renders_total", "counter",
                     "clusters rendered by the GitOps writer");
    metrics_describe(hub->metrics, "resedge_gitops_commits_total", "counter",
                     "commits written (one per changed cluster)");
    metrics_describe(hub->metrics, "resedge_gitops_clusters_changed_total", "counter",
                     "clusters whose branch moved");
    metrics_describe(hub->metrics, "resedge_gitops_last_batch_seconds", "gauge",
                     "duration of the last render+commit batch");
    metrics_set(hub->metrics, "resedge_gitops_last_batch_seconds", 0);
    metrics_add(hub->metrics, "resedge_gitops_renders_total", 0);
    metrics_add(hub->metrics, "resedge_gitops_commits_total", 0);
    metrics_add(hub->metrics, "resedge_gitops_clusters_changed_total", 0);
    if (clean_restart(go, hub)) {
        log_notice("gitops: stopped cleanly by this version, inventory and branches unchanged "
                   "since: no start-up render (serve --reconcile forces one)");
        go->initial_done = true;
    } else {
        go->pend_all = true;
        add_note(go, "resedge-hub", "reconcile at start-up");
        schedule(go, 0);
    }
    go = NULL;
    r = 0;
out:
    if (go) {
        gitstore_free(go->rd);
        revcache_free(go->revs);
        re_buf_release(&go->pend_msg);
        free(go);
    }
    re_buf_release(&err);
    return r;
}

void gitops_stop(struct hub *hub)
{
    struct gitops *go = hub ? hub->gitops : NULL;
    if (!go)
        return;
    inventory_set_hooks(NULL);
    bool was_busy = go->busy;
    go->stopping = true;
    atomic_store(&go->cancel, true);
    uv_timer_stop(&go->timer);
    if (go->busy)
        uv_cancel((uv_req_t *)&go->work);
    while (go->busy)
        uv_run(hub->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&go->timer, NULL);
    uv_run(hub->loop, UV_RUN_NOWAIT);
    /* branches equal to the inventory: the next start need not render all */
    if (!was_busy && go->initial_done && !go->pend_all && go->n_pend == 0 &&
        go->last_result == 0 && go->failed == 0)
        write_clean_stop(go, hub);
    hub->gitops = NULL;
    mirror_stop(go->mirror);
    gitstore_free(go->gs);
    gitstore_free(go->rd);
    revcache_free(go->revs);
    db_close(go->wdb);
    db_close(go->rdb);
    plan_free(go->plan);
    bitset_free(go->sel);
    free(go->message);
    free(go->notes);
    free(go->pend_ids);
    re_buf_release(&go->pend_msg);
    free(go->fails);
    pthread_mutex_destroy(&go->fail_mu);
    free(go);
}
