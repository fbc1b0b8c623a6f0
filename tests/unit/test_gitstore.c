/* test_gitstore.c - the GitOps repository: one pack per batch, no loose
 * objects, shared blobs, no-change puts, compare-and-swap, history and
 * reading back, checked with the real git command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include "../../hub/gitops/gitstore.h"
#include "../../hub/gitops/render.h"
#include "../../hub/gitops/revcache.h"
#include "error.h"
#include "testlib.h"

static const char *const owners[] = { "alice@example.com" };
static const struct render_namespace nss[] = {
    { "pos", owners, 1, "4", "8Gi", "50", false, false, false, NULL, 0 },
    { "loyalty", NULL, 0, NULL, NULL, NULL, false, false, false, NULL, 0 },
};
static const char deploy[] =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: menu\nspec:\n"
    "  selector:\n    matchLabels: {app: menu}\n  template:\n    metadata:\n"
    "      labels: {app: menu}\n    spec:\n      containers:\n      - name: web\n"
    "        image: registry.example.com/menu:1.0\n";
static const struct render_file base[] = { { "deployment.yaml", deploy, sizeof(deploy) - 1 } };

static struct render_tree *make_tree(const char *cluster, const char *version, const char *note)
{
    struct render_kv md[2] = { { "region", "central" }, { "note", note } };
    struct render_app apps[2] = {
        { .name = "pos-api", .namespace_ = "pos", .version = version, .kind = RENDER_SRC_GIT,
          .git_url = "https://git.example.com/pos/api.git", .git_ref = version,
          .git_path = "./deploy" },
        { .name = "menu", .namespace_ = "loyalty", .version = "1.0", .kind = RENDER_SRC_BASE,
          .base_files = base, .n_base_files = 1, .image_name = "registry.example.com/menu",
          .image_tag = "1.0" },
    };
    struct render_cluster c = {
        .name = cluster, .metadata = md, .n_metadata = 2, .namespaces = nss,
        .n_namespaces = 2, .apps = apps, .n_apps = 2,
    };
    struct render_tree *t = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    int rc = render_cluster(&t, &c, &err);
    if (rc)
        fprintf(stderr, "render: %s\n", err.ptr);
    CHECK_EQ_INT(rc, 0);
    re_buf_release(&err);
    return t;
}

/* The benchmark's cluster: 5 applications (3 from git, 2 hub bases), 2
 * namespaces, metadata naming the store (so its ConfigMaps are its own). */
static struct render_tree *make_tree5(const char *cluster, const char *version)
{
    struct render_kv md[2] = { { "region", "central" }, { "store", cluster } };
    struct render_app apps[5] = {
        { .name = "pos-api", .namespace_ = "pos", .version = version, .kind = RENDER_SRC_GIT,
          .git_url = "https://git.example.com/pos/api.git", .git_ref = version,
          .git_path = "./deploy" },
        { .name = "pos-ui", .namespace_ = "pos", .version = "2.0.1", .kind = RENDER_SRC_GIT,
          .git_url = "https://git.example.com/pos/ui.git", .git_ref = "2.0.1" },
        { .name = "payments", .namespace_ = "pos", .version = "1.1", .kind = RENDER_SRC_GIT,
          .git_url = "https://git.example.com/pos/pay.git", .git_path = "./k8s" },
        { .name = "menu", .namespace_ = "loyalty", .version = "1.0", .kind = RENDER_SRC_BASE,
          .base_files = base, .n_base_files = 1, .image_name = "registry.example.com/menu",
          .image_tag = "1.0" },
        { .name = "loyalty-api", .namespace_ = "loyalty", .version = "3.2",
          .kind = RENDER_SRC_BASE, .base_files = base, .n_base_files = 1,
          .image_name = "registry.example.com/menu", .image_tag = "3.2" },
    };
    struct render_cluster c = {
        .name = cluster, .metadata = md, .n_metadata = 2, .namespaces = nss,
        .n_namespaces = 2, .apps = apps, .n_apps = 5,
    };
    struct render_tree *t = NULL;
    CHECK_EQ_INT(render_cluster(&t, &c, NULL), 0);
    return t;
}

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static char *run(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    CHECK(f);
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 4096)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static struct gitstore *open_store(char *path, size_t size)
{
    struct gitstore *gs = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    snprintf(path, size, "%s/state/git", test_tmpdir());
    int rc = gitstore_open(&gs, path, 0, &err);
    if (rc)
        fprintf(stderr, "open: %s\n", err.ptr);
    CHECK_EQ_INT(rc, 0);
    re_buf_release(&err);
    return gs;
}

static void put3(struct gitstore *gs, const char *version, bool expect_changed)
{
    static const char *const names[] = { "c1", "c2", "c3" };
    struct gitstore_batch *b = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    for (size_t i = 0; i < 3; i++) {
        struct render_tree *t = make_tree(names[i], version, "a: b\n---\nkind: Secret");
        bool changed = !expect_changed;
        char id[41] = "";
        CHECK_EQ_INT(gitstore_batch_put(b, names[i], t, "alice@example.com",
                                        "pos-api v2 to /g/rings/beta", NULL, &changed, id), 0);
        CHECK_EQ_INT(changed, expect_changed);
        if (changed)
            CHECK_EQ_INT(strlen(id), 40);
        render_tree_free(t);
    }
    CHECK_EQ_INT(gitstore_batch_count(b), expect_changed ? 3 : 0);
    int rc = gitstore_batch_commit(b, &err);
    if (rc)
        fprintf(stderr, "commit: %s\n", err.ptr);
    CHECK_EQ_INT(rc, 0);
    re_buf_release(&err);
}

static void test_gitstore_one_pack_shared_blobs_fsck(void)
{
    char path[512], cmd[2048];
    struct gitstore *gs = open_store(path, sizeof(path));
    size_t packs = 9, loose = 9;
    put3(gs, "v1", true);
    CHECK_EQ_INT(gitstore_count_objects(gs, &packs, &loose), 0);
    CHECK_EQ_INT(packs, 1);
    CHECK_EQ_INT(loose, 0);

    char h1[41], h2[41];
    CHECK_EQ_INT(gitstore_head(gs, "c1", h1), 0);
    CHECK_EQ_INT(gitstore_head(gs, "c2", h2), 0);
    CHECK(strcmp(h1, h2) != 0);
    CHECK_EQ_INT(gitstore_head(gs, "nope", h1), -RE_ENOENT);

    int st;
    /* Identical files across clusters are one blob; whole identical folders one tree. */
    snprintf(cmd, sizeof(cmd),
             "git --git-dir='%s' rev-parse refs/namespaces/c1/refs/heads/main:namespaces/pos/networkpolicy.yaml"
             " refs/namespaces/c2/refs/heads/main:namespaces/pos/networkpolicy.yaml"
             " refs/namespaces/c1/refs/heads/main:apps/menu/base"
             " refs/namespaces/c3/refs/heads/main:apps/menu/base", path);
    char *out = run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(strlen(out), 4 * 41);
    CHECK(strncmp(out, out + 41, 40) == 0);
    CHECK(strncmp(out + 82, out + 123, 40) == 0);
    free(out);

    snprintf(cmd, sizeof(cmd), "git --git-dir='%s' fsck --strict --no-dangling 2>&1", path);
    out = run(cmd, &st);
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    CHECK_EQ_INT(st, 0);
    free(out);

    /* The namespaced HEAD symref and branch, as git sees them. */
    snprintf(cmd, sizeof(cmd), "git --git-dir='%s' symbolic-ref refs/namespaces/c2/HEAD", path);
    out = run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_STR(out, "refs/namespaces/c2/refs/heads/main\n");
    free(out);
    snprintf(cmd, sizeof(cmd),
             "git --git-dir='%s' log --format='%%an|%%s' refs/namespaces/c1/refs/heads/main", path);
    out = run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_STR(out, "alice@example.com|pos-api v2 to /g/rings/beta\n");
    free(out);

    /* A clone through upload-pack with GIT_NAMESPACE sees only that cluster. */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && git -c protocol.file.allow=always clone -q "
             "--upload-pack='env GIT_NAMESPACE=c3 git-upload-pack' 'file://%s' clone3 2>&1 && "
             "git -C clone3 branch -r && test -f clone3/namespaces/pos/configmap.yaml && "
             "test ! -e clone3/flux/source.yaml && test -f clone3/flux/app-pos-api.yaml && "
             "(! command -v kubectl >/dev/null || kubectl kustomize clone3 >/dev/null)",
             test_tmpdir(), path);
    out = run(cmd, &st);
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "origin/main"));
    free(out);
    gitstore_free(gs);
}

static void test_gitstore_unchanged_makes_no_commit(void)
{
    char path[512];
    struct gitstore *gs = open_store(path, sizeof(path));
    char before[41], after[41];
    size_t packs, loose;
    put3(gs, "v1", true);
    CHECK_EQ_INT(gitstore_head(gs, "c1", before), 0);
    put3(gs, "v1", false);
    CHECK_EQ_INT(gitstore_head(gs, "c1", after), 0);
    CHECK_EQ_STR(after, before);
    CHECK_EQ_INT(gitstore_count_objects(gs, &packs, &loose), 0);
    CHECK_EQ_INT(packs, 1);
    CHECK_EQ_INT(loose, 0);
    /* A change makes a second pack, with the old commit as parent. */
    put3(gs, "v2", true);
    CHECK_EQ_INT(gitstore_count_objects(gs, &packs, &loose), 0);
    CHECK_EQ_INT(packs, 2);
    CHECK_EQ_INT(loose, 0);
    gitstore_free(gs);
}

static void test_gitstore_cas_conflict(void)
{
    char path[512], h[41], h2[41];
    struct gitstore *gs = open_store(path, sizeof(path));
    struct gitstore_batch *b = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    put3(gs, "v1", true);
    CHECK_EQ_INT(gitstore_head(gs, "c1", h), 0);
    struct render_tree *t2 = make_tree("c1", "v2", "x");

    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    struct gitstore_batch *b2 = NULL;
    CHECK_EQ_INT(gitstore_batch_begin(&b2, gs, &err), -RE_EBUSY);
    CHECK_EQ_INT(gitstore_batch_put(b, "c1", t2, "bob", "m", "0000000000000000000000000000000000000000",
                                    NULL, NULL), -RE_ECONFLICT);
    CHECK_EQ_INT(gitstore_batch_put(b, "c1", t2, "bob", "m", "", NULL, NULL), -RE_ECONFLICT);
    CHECK_EQ_INT(gitstore_batch_put(b, "c1", t2, "bob", "m", h, NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, "Bad_Name", t2, "bob", "m", NULL, NULL, NULL), -RE_EINVAL);
    CHECK_EQ_INT(gitstore_batch_put(b, "c9", t2, "bo<b>", "m", NULL, NULL, NULL), -RE_EINVAL);

    /* Another writer moves c1 before this batch commits. */
    struct gitstore *other = NULL;
    struct gitstore_batch *ob = NULL;
    CHECK_EQ_INT(gitstore_open(&other, path, 0, &err), 0);
    CHECK_EQ_INT(gitstore_batch_begin(&ob, other, &err), 0);
    struct render_tree *t3 = make_tree("c1", "v3", "y");
    CHECK_EQ_INT(gitstore_batch_put(ob, "c1", t3, "carol", "other", h, NULL, h2), 0);
    CHECK_EQ_INT(gitstore_batch_commit(ob, &err), 0);

    CHECK_EQ_INT(gitstore_batch_commit(b, &err), -RE_ECONFLICT);
    CHECK(strstr(err.ptr, "c1"));
    char now[41];
    CHECK_EQ_INT(gitstore_head(gs, "c1", now), 0);
    CHECK_EQ_STR(now, h2);
    /* The store is usable again after a failed batch. */
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    gitstore_batch_abort(b);
    render_tree_free(t2);
    render_tree_free(t3);
    gitstore_free(other);
    gitstore_free(gs);
    re_buf_release(&err);
}

/* An aborted batch leaves nothing behind that a later batch could rely on:
 * the same content staged again is written again, and git finds it whole. */
static void test_gitstore_abort_then_redo(void)
{
    char path[512], cmd[1024];
    struct gitstore *gs = open_store(path, sizeof(path));
    struct gitstore_batch *b = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    struct render_tree *t = make_tree("c1", "v1", "once");
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, "c1", t, "alice", "first try", NULL, NULL, NULL), 0);
    gitstore_batch_abort(b);
    char h[41];
    CHECK_EQ_INT(gitstore_head(gs, "c1", h), -RE_ENOENT);
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, "c1", t, "alice", "second try", "", NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_commit(b, &err), 0);
    struct render_tree *r = NULL;
    CHECK_EQ_INT(gitstore_read_tree(&r, gs, "c1", NULL), 0);
    CHECK(render_tree_equal(r, t));
    render_tree_free(r);
    /* The same cluster twice in one batch is refused as a whole. */
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    struct render_tree *t2 = make_tree("c1", "v2", "x");
    CHECK_EQ_INT(gitstore_batch_put(b, "c1", t2, "alice", "a", NULL, NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, "c1", t2, "alice", "b", NULL, NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_commit(b, &err), -RE_EINVAL);
    char h2[41];
    CHECK_EQ_INT(gitstore_head(gs, "c1", h2), 0);
    int st;
    snprintf(cmd, sizeof(cmd), "git --git-dir='%s' fsck --strict --no-dangling 2>&1", path);
    char *out = run(cmd, &st);
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    CHECK_EQ_INT(st, 0);
    free(out);
    render_tree_free(t);
    render_tree_free(t2);
    gitstore_free(gs);
    re_buf_release(&err);
}

struct logged {
    char ids[8][41];
    char msgs[8][64];
    size_t n;
};

static int log_cb(const struct gitstore_commit_info *ci, void *ud)
{
    struct logged *l = ud;
    CHECK(l->n < 8);
    memcpy(l->ids[l->n], ci->id, 41);
    snprintf(l->msgs[l->n], sizeof(l->msgs[0]), "%s|%s", ci->author, ci->message);
    CHECK(ci->time > 1600000000);
    l->n++;
    return 0;
}

static void commit_one(struct gitstore *gs, const char *cluster, struct render_tree *t,
                       const char *author, const char *msg)
{
    struct gitstore_batch *b = NULL;
    bool changed = false;
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, cluster, t, author, msg, NULL, &changed, NULL), 0);
    CHECK(changed);
    CHECK_EQ_INT(gitstore_batch_commit(b, NULL), 0);
}

static void test_gitstore_log_and_read_back(void)
{
    char path[512], id[41];
    struct gitstore *gs = open_store(path, sizeof(path));
    struct render_tree *t1 = make_tree("c1", "v1", "one");
    struct render_tree *t2 = make_tree("c1", "v2", "two");
    struct render_tree *other = make_tree("c2", "v1", "one");
    commit_one(gs, "c1", t1, "alice", "pos-api v1 to /g/stores");
    commit_one(gs, "c1", t2, "bob", "pos-api v2 to /g/rings/beta");
    commit_one(gs, "c2", other, "alice", "c2 first");

    struct logged l = { .n = 0 };
    CHECK_EQ_INT(gitstore_log(gs, "c1", 10, log_cb, &l), 0);
    CHECK_EQ_INT(l.n, 2);
    CHECK_EQ_STR(l.msgs[0], "bob|pos-api v2 to /g/rings/beta");
    CHECK_EQ_STR(l.msgs[1], "alice|pos-api v1 to /g/stores");
    l.n = 0;
    CHECK_EQ_INT(gitstore_log(gs, "c1", 1, log_cb, &l), 0);
    CHECK_EQ_INT(l.n, 1);
    CHECK_EQ_INT(gitstore_log(gs, "zz", 1, log_cb, &l), -RE_ENOENT);

    /* Read back: HEAD~1, the full id and an abbreviated one give t1. */
    const char *revs[] = { "HEAD~1", "main^", l.ids[0], NULL };
    char abbrev[8];
    struct logged l2 = { .n = 0 };
    CHECK_EQ_INT(gitstore_log(gs, "c1", 10, log_cb, &l2), 0);
    memcpy(abbrev, l2.ids[1], 7);
    abbrev[7] = '\0';
    revs[2] = abbrev;
    for (size_t i = 0; revs[i]; i++) {
        struct render_tree *r = NULL;
        CHECK_EQ_INT(gitstore_read_tree(&r, gs, "c1", revs[i]), 0);
        CHECK(render_tree_equal(r, t1));
        render_tree_free(r);
    }
    struct render_tree *r = NULL;
    CHECK_EQ_INT(gitstore_read_tree(&r, gs, "c1", NULL), 0);
    CHECK(render_tree_equal(r, t2));
    render_tree_free(r);
    CHECK_EQ_INT(gitstore_resolve(gs, "c1", "HEAD", id), 0);
    CHECK_EQ_STR(id, l2.ids[0]);

    /* Another cluster's commit is not in c1's history. */
    char c2head[41];
    CHECK_EQ_INT(gitstore_head(gs, "c2", c2head), 0);
    CHECK_EQ_INT(gitstore_resolve(gs, "c1", c2head, id), -RE_ENOENT);
    CHECK_EQ_INT(gitstore_resolve(gs, "c1", "HEAD~5", id), -RE_ENOENT);
    CHECK_EQ_INT(gitstore_resolve(gs, "c1", "HEAD:x", id), -RE_ENOENT);
    CHECK_EQ_INT(gitstore_resolve(gs, "c1", "refs/namespaces/c2/refs/heads/main", id), -RE_ENOENT);

    char *data = NULL;
    size_t len = 0;
    CHECK_EQ_INT(gitstore_file(&data, &len, gs, "c1", NULL, "apps/pos-api/gitrepository.yaml"), 0);
    CHECK(strstr(data, "tag: v2"));
    CHECK_EQ_INT(len, strlen(data));
    free(data);
    CHECK_EQ_INT(gitstore_file(&data, &len, gs, "c1", "HEAD~1", "apps/pos-api/gitrepository.yaml"), 0);
    CHECK(strstr(data, "tag: v1"));
    free(data);
    CHECK_EQ_INT(gitstore_file(&data, &len, gs, "c1", NULL, "apps"), -RE_ENOENT);
    CHECK_EQ_INT(gitstore_file(&data, &len, gs, "c1", NULL, "nope.yaml"), -RE_ENOENT);

    /* Revert = commit the old tree again: a new commit with t1's tree. */
    struct render_tree *old = NULL;
    CHECK_EQ_INT(gitstore_read_tree(&old, gs, "c1", "HEAD~1"), 0);
    commit_one(gs, "c1", old, "carol", "revert c1 to HEAD~1");
    CHECK_EQ_INT(gitstore_read_tree(&r, gs, "c1", NULL), 0);
    CHECK(render_tree_equal(r, t1));
    render_tree_free(r);
    render_tree_free(old);
    render_tree_free(t1);
    render_tree_free(t2);
    render_tree_free(other);
    gitstore_free(gs);
}


/* A batch larger than its chunk goes to disk in several packs as it is put;
 * branches live in packed-refs (no file per branch), each namespace has its
 * HEAD symref, and git finds the repository whole. */
static void test_gitstore_chunked_batch_fsck(void)
{
    char path[512], cmd[1024], name[32];
    struct gitstore *gs = open_store(path, sizeof(path));
    struct gitstore_batch *b = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    gitstore_batch_set_chunk(b, 3);
    for (size_t i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "s%zu", i);
        struct render_tree *t = make_tree(name, "v1", name);
        CHECK_EQ_INT(gitstore_batch_put(b, name, t, "alice", "first", "", NULL, NULL), 0);
        CHECK(gitstore_batch_count(b) < 3);
        render_tree_free(t);
    }
    CHECK_EQ_INT(gitstore_batch_commit(b, &err), 0);
    size_t packs, loose;
    CHECK_EQ_INT(gitstore_count_objects(gs, &packs, &loose), 0);
    CHECK_EQ_INT(packs, 3);
    CHECK_EQ_INT(loose, 0);
    struct gitstore_stats st;
    gitstore_get_stats(gs, &st);
    CHECK_EQ_INT(st.commits, 8);
    CHECK_EQ_INT(st.chunks, 3);
    CHECK(st.cache_hits > 0);

    int rc;
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && test ! -e refs/namespaces/s1/refs && test ! -e packed-refs.lock && "
             "test \"$(grep -c refs/heads/main packed-refs)\" = 8 && "
             "head -1 packed-refs | grep -q ' sorted ' && "
             "git --git-dir=. symbolic-ref refs/namespaces/s7/HEAD && "
             "git --git-dir=. fsck --strict --no-dangling 2>&1", path);
    char *out = run(cmd, &rc);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    CHECK_EQ_INT(rc, 0);
    CHECK(strstr(out, "refs/namespaces/s7/refs/heads/main"));
    free(out);

    /* Second round: a packed branch moves by CAS; a loose one (git made it)
     * moves through libgit2; a lost HEAD comes back even without a change. */
    char h0[41], h1[41], h2[41];
    CHECK_EQ_INT(gitstore_head(gs, "s0", h0), 0);
    CHECK_EQ_INT(gitstore_head(gs, "s1", h1), 0);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && mkdir -p refs/namespaces/s1/refs/heads && "
             "echo %s >refs/namespaces/s1/refs/heads/main && rm refs/namespaces/s2/HEAD", path, h1);
    out = run(cmd, &rc);
    CHECK_EQ_INT(rc, 0);
    free(out);
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "s%zu", i);
        struct render_tree *t = make_tree(name, i < 2 ? "v2" : "v1", name);
        bool changed = false;
        CHECK_EQ_INT(gitstore_batch_put(b, name, t, "bob", "second", NULL, &changed, NULL), 0);
        CHECK_EQ_INT(changed, i < 2);
        render_tree_free(t);
    }
    CHECK_EQ_INT(gitstore_batch_commit(b, &err), 0);
    CHECK_EQ_INT(gitstore_head(gs, "s0", h2), 0);
    CHECK(strcmp(h0, h2) != 0);
    CHECK_EQ_INT(gitstore_head(gs, "s1", h2), 0);
    CHECK(strcmp(h1, h2) != 0);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && test \"$(git --git-dir=. rev-parse refs/namespaces/s1/refs/heads/main)\" = %s && "
             "git --git-dir=. symbolic-ref refs/namespaces/s2/HEAD && "
             "git --git-dir=. log --format=%%s refs/namespaces/s0/refs/heads/main && "
             "git --git-dir=. fsck --strict --no-dangling 2>&1", path, h2);
    out = run(cmd, &rc);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    CHECK_EQ_INT(rc, 0);
    CHECK(strstr(out, "second\nfirst\n"));
    free(out);

    /* A packed branch moved by someone else: the whole chunk is refused. */
    CHECK_EQ_INT(gitstore_head(gs, "s3", h1), 0);
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    struct render_tree *t = make_tree("s3", "v3", "s3");
    struct render_tree *t4 = make_tree("s4", "v3", "s4");
    CHECK_EQ_INT(gitstore_batch_put(b, "s3", t, "bob", "third", NULL, NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, "s4", t4, "bob", "third", NULL, NULL, NULL), 0);
    snprintf(cmd, sizeof(cmd), "git --git-dir='%s' update-ref refs/namespaces/s3/refs/heads/main %s",
             path, h0);
    out = run(cmd, &rc);
    CHECK_EQ_INT(rc, 0);
    free(out);
    CHECK_EQ_INT(gitstore_batch_commit(b, &err), -RE_ECONFLICT);
    CHECK(strstr(err.ptr, "s3"));
    CHECK_EQ_INT(gitstore_head(gs, "s4", h2), 0);
    CHECK_EQ_INT(gitstore_head(gs, "s3", h2), 0);
    CHECK_EQ_STR(h2, h0);
    /* Someone else's lock on packed-refs: a conflict, nothing written. */
    snprintf(cmd, sizeof(cmd), "touch '%s/packed-refs.lock'", path);
    out = run(cmd, &rc);
    free(out);
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, "s9", t, "bob", "new", "", NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_commit(b, &err), -RE_ECONFLICT);
    CHECK_EQ_INT(gitstore_head(gs, "s9", h2), -RE_ENOENT);
    /* The sole writer clears a stale lock when it opens the store. */
    struct gitstore *gs2 = NULL;
    CHECK_EQ_INT(gitstore_open(&gs2, path, GITSTORE_SOLE_WRITER, &err), 0);
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs2, &err), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, "s9", t, "bob", "new", "", NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_commit(b, &err), 0);
    CHECK_EQ_INT(gitstore_head(gs2, "s9", h2), 0);
    render_tree_free(t);
    render_tree_free(t4);
    gitstore_free(gs2);
    gitstore_free(gs);
    re_buf_release(&err);
}

/* The content cache never stands in for different bytes: two clusters whose
 * inputs differ in one value get different files and objects, identical
 * files the same blob. */
static void test_gitstore_cache_not_stale(void)
{
    char path[512], cmd[1024];
    struct gitstore *gs = open_store(path, sizeof(path));
    struct gitstore_batch *b = NULL;
    CHECK_EQ_INT(gitstore_batch_begin(&b, gs, NULL), 0);
    /* Same cluster name shape, metadata differs in one character. */
    struct render_tree *a = make_tree("c1", "v1", "note-a");
    struct render_tree *c = make_tree("c2", "v1", "note-b");
    CHECK_EQ_INT(gitstore_batch_put(b, "c1", a, "x", "m", NULL, NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_put(b, "c2", c, "x", "m", NULL, NULL, NULL), 0);
    CHECK_EQ_INT(gitstore_batch_commit(b, NULL), 0);
    struct render_tree *ra = NULL, *rc_ = NULL;
    CHECK_EQ_INT(gitstore_read_tree(&ra, gs, "c1", NULL), 0);
    CHECK_EQ_INT(gitstore_read_tree(&rc_, gs, "c2", NULL), 0);
    CHECK(render_tree_equal(ra, a));
    CHECK(render_tree_equal(rc_, c));
    CHECK(!render_tree_equal(ra, rc_));
    int st;
    snprintf(cmd, sizeof(cmd),
             "git --git-dir='%s' rev-parse refs/namespaces/c1/refs/heads/main:namespaces/pos/configmap.yaml"
             " refs/namespaces/c2/refs/heads/main:namespaces/pos/configmap.yaml"
             " refs/namespaces/c1/refs/heads/main:apps/pos-api"
             " refs/namespaces/c2/refs/heads/main:apps/pos-api", path);
    char *out = run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(strlen(out), 4 * 41);
    CHECK(strncmp(out, out + 41, 40) != 0);
    CHECK(strncmp(out + 82, out + 123, 40) == 0);
    free(out);
    render_tree_free(a);
    render_tree_free(c);
    render_tree_free(ra);
    render_tree_free(rc_);
    gitstore_free(gs);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process (all threads): on a shared machine wall time
 * mostly measures the neighbours. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not an assertion on time: prints what N clusters in one batch cost, then
 * an incremental batch changing one in ten. N is 1,000 by default so `make
 * test` stays quick on a busy machine; RE_GITSTORE_CLUSTERS=10000 (and
 * RE_TEST_TIMEOUT=600) for the full figure. */
static void test_gitstore_10k_clusters_timing(void)
{
    const char *e = getenv("RE_GITSTORE_CLUSTERS");
    size_t n = e ? strtoul(e, NULL, 10) : 1000;
    char path[512], name[32];
    struct gitstore *gs = open_store(path, sizeof(path));
    struct re_buf err;
    re_buf_init(&err, 1024);
    double t0 = now_s(), t_render = 0, t_put = 0, c_render = 0, c_put = 0;
    struct gitstore_stats prev;
    memset(&prev, 0, sizeof(prev));
    for (int round = 0; round < 2; round++) {
        struct gitstore_batch *b = NULL;
        double tb = now_s(), cb = cpu_s();
        t_render = t_put = c_render = c_put = 0;
        CHECK_EQ_INT(gitstore_batch_begin(&b, gs, &err), 0);
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "store-%05zu", i);
            double a = now_s(), ca = cpu_s();
            /* Round 2 changes 1 cluster in 10. */
            struct render_tree *t = make_tree5(name, round == 1 && i % 10 == 0 ? "v2" : "v1");
            double m = now_s(), cm = cpu_s();
            CHECK_EQ_INT(gitstore_batch_put(b, name, t, "bench", "bench", NULL, NULL, NULL), 0);
            t_put += now_s() - m;
            c_put += cpu_s() - cm;
            t_render += m - a;
            c_render += cm - ca;
            render_tree_free(t);
        }
        size_t staged = gitstore_batch_count(b);
        double tc = now_s(), cc = cpu_s();
        int rc = gitstore_batch_commit(b, &err);
        if (rc)
            fprintf(stderr, "commit: %s\n", err.ptr);
        CHECK_EQ_INT(rc, 0);
        struct gitstore_stats gst;
        gitstore_get_stats(gs, &gst);
        double pk = gst.pack_seconds - prev.pack_seconds, rf = gst.refs_seconds - prev.refs_seconds;
        double pkc = gst.pack_cpu_seconds - prev.pack_cpu_seconds;
        double rfc = gst.refs_cpu_seconds - prev.refs_cpu_seconds;
        /* Wall and (CPU) seconds; staging = put minus the chunk flushes in it. */
        fprintf(stderr, "# %s: %zu clusters (5 apps), %zu commits, %zu objects: total %.2f s "
                "(cpu %.2f); render %.2f (%.2f), put incl. flushes %.2f (%.2f), of which "
                "staging %.2f (%.2f); packs %.2f (%.2f), refs %.2f (%.2f); last flush %.2f "
                "(%.2f); %zu packs so far; VmHWM %ld MB\n",
                round ? "incremental" : "full", n, gst.commits - prev.commits,
                gst.objects - prev.objects, now_s() - tb, cpu_s() - cb, t_render, c_render,
                t_put, c_put, t_put - (pk + rf) + (now_s() - tc), c_put - (pkc + rfc) +
                (cpu_s() - cc), pk, pkc, rf, rfc, now_s() - tc, cpu_s() - cc, gst.packs,
                vm_hwm_kb() / 1024);
        prev = gst;
        CHECK_EQ_INT(gst.commits - (round ? n : 0), round ? (n + 9) / 10 : n);
        (void)staged;
    }
    size_t packs, loose;
    CHECK_EQ_INT(gitstore_count_objects(gs, &packs, &loose), 0);
    CHECK_EQ_INT(packs, (n + GITSTORE_CHUNK_COMMITS - 1) / GITSTORE_CHUNK_COMMITS + 1);
    CHECK_EQ_INT(loose, 0);
    int st;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "du -sk '%s/objects/pack' | cut -f1", path);
    char *out = run(cmd, &st);
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    fprintf(stderr, "# packs: %s KB; whole run %.2f s\n", out, now_s() - t0);
    free(out);
    gitstore_free(gs);
    re_buf_release(&err);
}

/* The check-in path's head cache: follows this process's batches, a loose
 * ref another process wrote (git push), and a rewritten packed-refs. */
static void test_revcache_follows_writes(void)
{
    char path[512], cmd[2048], h1[41], h2[41], got[41], other[41];
    struct gitstore *gs = open_store(path, sizeof(path)), *reader = NULL;
    struct revcache *rc = NULL;
    struct re_buf err;
    int st;
    re_buf_init(&err, 1024);
    CHECK_EQ_INT(gitstore_open(&reader, path, 0, &err), 0);
    CHECK_EQ_INT(revcache_new(&rc), 0);
    CHECK_EQ_INT(revcache_head(rc, reader, "c1", got), -RE_ENOENT);
    put3(gs, "v1", true);
    CHECK_EQ_INT(gitstore_head(gs, "c1", h1), 0);
    CHECK_EQ_INT(revcache_head(rc, reader, "c1", got), 0);   /* "no branch" was forgotten */
    CHECK_EQ_STR(got, h1);
    CHECK_EQ_INT(revcache_head(rc, reader, "c1", got), 0);   /* from the cache */
    CHECK_EQ_STR(got, h1);
    put3(gs, "v2", true);
    CHECK_EQ_INT(gitstore_head(gs, "c1", h2), 0);
    CHECK(strcmp(h1, h2) != 0);
    CHECK_EQ_INT(revcache_head(rc, reader, "c1", got), 0);
    CHECK_EQ_STR(got, h2);
    /* another process moves c2's branch with a loose ref */
    CHECK_EQ_INT(gitstore_head(gs, "c2", other), 0);
    CHECK_EQ_INT(revcache_head(rc, reader, "c2", got), 0);
    CHECK_EQ_STR(got, other);
    snprintf(cmd, sizeof(cmd), "git --git-dir='%s' update-ref refs/namespaces/c2/refs/heads/main %s",
             path, h1);
    free(run(cmd, &st));
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(revcache_head(rc, reader, "c2", got), 0);
    CHECK_EQ_STR(got, h1);
    /* ... and packs it: packed-refs changes under the cache */
    snprintf(cmd, sizeof(cmd), "git --git-dir='%s' pack-refs --all", path);
    free(run(cmd, &st));
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(revcache_head(rc, reader, "c2", got), 0);
    CHECK_EQ_STR(got, h1);
    CHECK_EQ_INT(revcache_head(rc, reader, "Bad_Name", got), -RE_EINVAL);
    revcache_free(rc);
    gitstore_free(reader);
    gitstore_free(gs);
    re_buf_release(&err);
}

TEST_MAIN(T(test_gitstore_one_pack_shared_blobs_fsck), T(test_gitstore_unchanged_makes_no_commit),
          T(test_gitstore_cas_conflict), T(test_gitstore_abort_then_redo),
          T(test_gitstore_log_and_read_back), T(test_gitstore_chunked_batch_fsck),
          T(test_gitstore_cache_not_stale), T(test_revcache_follows_writes),
          T(test_gitstore_10k_clusters_timing))
