/* test_agent_state.c - the agent's state directory: CA fingerprint pinning,
 * credential swaps, status, materialization with its atomic swap and the
 * repair of a half-done one, and fetching into the local mirror. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <git2.h>
#include "../../agent/deploy.h"
#include "../../agent/enroll.h"
#include "../../agent/materialize.h"
#include "../../agent/pull.h"
#include "../../agent/state.h"
#include "clock.h"
#include "crypto.h"
#include "error.h"
#include "fsutil.h"
#include "testlib.h"

static void make_ca(struct re_buf *crt, struct re_buf *key, bool is_ca)
{
    struct re_cert_spec spec = { .cn = "Test CA", .is_ca = is_ca, .not_before = re_time() - 60,
                                 .not_after = re_time() + 86400 };
    re_buf_init(crt, 64 * 1024);
    re_buf_init(key, 64 * 1024);
    CHECK_EQ_INT(re_key_generate(key), 0);
    CHECK_EQ_INT(re_cert_self_signed(crt, key->ptr, &spec), 0);
}

static void fingerprint_pinning(void)
{
    struct re_buf crt, key, err, other_crt, other_key;
    struct re_cert_info info;
    char fp[72], upper[200];
    make_ca(&crt, &key, true);
    make_ca(&other_crt, &other_key, true);
    re_buf_init(&err, 2048);
    CHECK_EQ_INT(re_cert_parse(&info, crt.ptr, crt.len, false), 0);
    CHECK_EQ_INT(enroll_check_ca(crt.ptr, crt.len, info.fingerprint, &err), 0);
    /* Case and colons do not matter. */
    size_t n = 0;
    memcpy(upper, "SHA256:", 7);
    n = 7;
    for (size_t i = 7; info.fingerprint[i]; i++) {
        char c = info.fingerprint[i];
        upper[n++] = (c >= 'a' && c <= 'f') ? (char)(c - 32) : c;
        if (i % 2 == 0 && info.fingerprint[i + 1])
            upper[n++] = ':';
    }
    upper[n] = '\0';
    CHECK_EQ_INT(enroll_normalize_fingerprint(fp, upper), 0);
    CHECK_EQ_STR(fp, info.fingerprint);
    CHECK_EQ_INT(enroll_check_ca(crt.ptr, crt.len, upper, &err), 0);
    /* Another CA: refused, and the message names both fingerprints. */
    re_buf_reset(&err);
    CHECK_EQ_INT(enroll_check_ca(other_crt.ptr, other_crt.len, info.fingerprint, &err),
                 -RE_EBADSIG);
    CHECK(strstr(err.ptr, info.fingerprint));
    /* Not fingerprints. */
    CHECK(enroll_normalize_fingerprint(fp, "sha256:abcd") < 0);
    CHECK(enroll_normalize_fingerprint(fp, "md5:00") < 0);
    CHECK(enroll_normalize_fingerprint(fp, "sha256:zz3456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") < 0);
    /* Garbage certificate. */
    CHECK(enroll_check_ca("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 60,
                          info.fingerprint, &err) < 0);
    /* A leaf presented as the CA is refused even with the right fingerprint. */
    struct re_buf leaf, leaf_key;
    make_ca(&leaf, &leaf_key, false);
    CHECK_EQ_INT(re_cert_parse(&info, leaf.ptr, leaf.len, false), 0);
    CHECK_EQ_INT(enroll_check_ca(leaf.ptr, leaf.len, info.fingerprint, &err), -RE_EINVAL);
    /* The CA answer: PEM or JSON. */
    struct re_buf out;
    re_buf_init(&out, 64 * 1024);
    CHECK_EQ_INT(enroll_extract_ca(&out, crt.ptr, crt.len), 0);
    CHECK_EQ_STR(out.ptr, crt.ptr);
    re_buf_reset(&out);
    CHECK_EQ_INT(enroll_extract_ca(&out, "{\"ca\":\"-----BEGIN CERTIFICATE-----\\n\"}", 38), 0);
    re_buf_reset(&out);
    CHECK(enroll_extract_ca(&out, "<html>", 6) < 0);
    re_buf_release(&out);
    re_buf_release(&crt);
    re_buf_release(&key);
    re_buf_release(&other_crt);
    re_buf_release(&other_key);
    re_buf_release(&leaf);
    re_buf_release(&leaf_key);
    re_buf_release(&err);
}

static void issue_leaf(struct re_buf *cert, struct re_buf *key, const struct re_buf *ca_crt,
                       const struct re_buf *ca_key, const char *name)
{
    struct re_buf pub;
    char uri[128];
    re_snprintf(uri, sizeof(uri), "spiffe://resedge/cluster/%s", name);
    struct re_cert_spec spec = { .cn = name, .uri_san = uri, .client_auth = true,
                                 .not_before = re_time() - 300, .not_after = re_time() + 30 * 86400 };
    re_buf_init(cert, 64 * 1024);
    re_buf_init(key, 64 * 1024);
    re_buf_init(&pub, 64 * 1024);
    CHECK_EQ_INT(re_key_generate(key), 0);
    CHECK_EQ_INT(re_key_public_pem(&pub, key->ptr), 0);
    CHECK_EQ_INT(re_cert_issue(cert, ca_crt->ptr, ca_key->ptr, pub.ptr, &spec), 0);
    re_buf_release(&pub);
}

static bool exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat sb;
    re_snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &sb) == 0;
}

static void credential_swap(void)
{
    struct re_buf ca, cak, c1, k1, c2, k2, err;
    struct agent_state st = { 0 }, loaded = { 0 };
    char dir[4096];
    re_snprintf(dir, sizeof(dir), "%s/state", test_tmpdir());
    CHECK_EQ_INT(re_mkdir_p(dir, 0700), 0);
    make_ca(&ca, &cak, true);
    issue_leaf(&c1, &k1, &ca, &cak, "store-1");
    issue_leaf(&c2, &k2, &ca, &cak, "store-1");
    re_buf_init(&err, 2048);
    CHECK_EQ_INT(agent_state_load(&loaded, dir, &err), -RE_ENOENT);
    st.hub_url = strdup("https://hub:8443");
    st.cluster = strdup("store-1");
    st.identity = strdup("spiffe://resedge/cluster/store-1");
    CHECK_EQ_INT(enroll_install_credentials(&st, dir, k1.ptr, c1.ptr, &err), 0);
    char *first_key = strdup(st.key_name), *first_cert = strdup(st.cert_name);
    CHECK(exists(dir, first_key) && exists(dir, first_cert));
    CHECK(st.renew_at > st.not_before && st.renew_at < st.not_after);
    /* A third of the lifetime remains, minus jitter of at most a tenth. */
    int64_t life = st.not_after - st.not_before;
    CHECK(st.renew_at <= st.not_after - life / 3 && st.renew_at >= st.not_after - life / 3 - life / 10);
    struct stat sb;
    char p[4096];
    re_snprintf(p, sizeof(p), "%s/%s", dir, first_key);
    CHECK_EQ_INT(stat(p, &sb), 0);
    CHECK_EQ_INT(sb.st_mode & 0777, 0600);
    /* Renewal: a new pair under new names, the old pair removed. */
    CHECK_EQ_INT(enroll_install_credentials(&st, dir, k2.ptr, c2.ptr, &err), 0);
    CHECK(strcmp(first_key, st.key_name) != 0);
    CHECK(!exists(dir, first_key) && !exists(dir, first_cert));
    CHECK_EQ_INT(agent_state_load(&loaded, dir, &err), 0);
    CHECK_EQ_STR(loaded.key_name, st.key_name);
    CHECK_EQ_STR(loaded.cluster, "store-1");
    CHECK_EQ_STR(loaded.hub_url, "https://hub:8443");
    char kp[4096], cp[4096];
    re_snprintf(kp, sizeof(kp), "%s/%s", dir, loaded.key_name);
    re_snprintf(cp, sizeof(cp), "%s/%s", dir, loaded.cert_name);
    struct re_buf kk, cc;
    re_buf_init(&kk, 65536);
    re_buf_init(&cc, 65536);
    CHECK_EQ_INT(re_read_file(&kk, kp), 0);
    CHECK_EQ_INT(re_read_file(&cc, cp), 0);
    CHECK_EQ_INT(re_cert_matches_key(cc.ptr, kk.ptr), 0);
    /* A damaged record says so, with the file. */
    re_snprintf(p, sizeof(p), "%s/agent.state", dir);
    CHECK_EQ_INT(re_write_file_atomic(p, "[enrollment]\nhub = x\n", 21, 0600), 0);
    agent_state_release(&loaded);
    re_buf_reset(&err);
    CHECK_EQ_INT(agent_state_load(&loaded, dir, &err), -RE_EPARSE);
    CHECK(strstr(err.ptr, "agent.state"));
    free(first_key);
    free(first_cert);
    agent_state_release(&st);
    re_buf_release(&kk);
    re_buf_release(&cc);
    re_buf_release(&ca);
    re_buf_release(&cak);
    re_buf_release(&c1);
    re_buf_release(&k1);
    re_buf_release(&c2);
    re_buf_release(&k2);
    re_buf_release(&err);
}

static void status_roundtrip(void)
{
    struct agent_status s, l;
    memset(&s, 0, sizeof(s));
    memcpy(s.pulled, "0123456789abcdef0123456789abcdef01234567", 41);
    re_snprintf(s.apply_result, sizeof(s.apply_result), "failed: 'kubectl' exited 1: \"x\"");
    s.applied_at = 1234;
    CHECK_EQ_INT(agent_status_save(&s, test_tmpdir()), 0);
    CHECK_EQ_INT(agent_status_load(&l, test_tmpdir()), 0);
    CHECK_EQ_STR(l.pulled, s.pulled);
    CHECK_EQ_STR(l.applied, "");
    CHECK_EQ_STR(l.apply_result, s.apply_result);
    CHECK_EQ_INT(l.applied_at, 1234);
    /* Garbage status: empty, not an error. */
    char p[4096];
    re_snprintf(p, sizeof(p), "%s/status.json", test_tmpdir());
    CHECK_EQ_INT(re_write_file_atomic(p, "{\"pulled_revision\":\"../x\"", 25, 0644), 0);
    CHECK_EQ_INT(agent_status_load(&l, test_tmpdir()), 0);
    CHECK_EQ_STR(l.pulled, "");
    /* agent_status_read says why: damaged, or missing. */
    CHECK_EQ_INT(agent_status_read(&l, test_tmpdir()), -RE_EPARSE);
    CHECK_EQ_STR(l.pulled, "");
    CHECK_EQ_INT(re_write_file_atomic(p, "", 0, 0644), 0);
    CHECK_EQ_INT(agent_status_read(&l, test_tmpdir()), -RE_EPARSE);
    CHECK_EQ_INT(re_write_file_atomic(p, "[1]", 3, 0644), 0);
    CHECK_EQ_INT(agent_status_read(&l, test_tmpdir()), -RE_EPARSE);
    unlink(p);
    CHECK_EQ_INT(agent_status_read(&l, test_tmpdir()), -RE_ENOENT);
    CHECK_EQ_INT(agent_status_save(&s, test_tmpdir()), 0);
    CHECK_EQ_INT(agent_status_read(&l, test_tmpdir()), 0);
    CHECK_EQ_STR(l.pulled, s.pulled);
}

/* ---- git fixtures ---- */

struct fx_file {
    const char *path;               /* "a.yaml" or "dir/b.yaml" (one level) */
    const char *data;
    git_filemode_t mode;
};

static void commit_files(git_repository *repo, const char *ref, const struct fx_file *files,
                         size_t n, git_oid *out)
{
    git_treebuilder *root = NULL, *sub = NULL;
    git_oid blob, tree, subtree;
    git_signature *sig = NULL;
    git_tree *t = NULL;
    git_commit *parent = NULL;
    git_oid parent_id;
    CHECK_EQ_INT(git_treebuilder_new(&root, repo, NULL), 0);
    CHECK_EQ_INT(git_treebuilder_new(&sub, repo, NULL), 0);
    bool have_sub = false;
    for (size_t i = 0; i < n; i++) {
        const char *slash = strchr(files[i].path, '/');
        CHECK_EQ_INT(git_blob_create_from_buffer(&blob, repo, files[i].data,
                                                 strlen(files[i].data)), 0);
        if (slash) {
            CHECK_EQ_INT(git_treebuilder_insert(NULL, sub, slash + 1, &blob, files[i].mode), 0);
            have_sub = true;
        } else {
            /* Hostile names are only possible by writing objects directly. */
            CHECK_EQ_INT(git_treebuilder_insert(NULL, root, files[i].path, &blob, files[i].mode),
                         0);
        }
    }
    if (have_sub) {
        CHECK_EQ_INT(git_treebuilder_write(&subtree, sub), 0);
        CHECK_EQ_INT(git_treebuilder_insert(NULL, root, "dir", &subtree, GIT_FILEMODE_TREE), 0);
    }
    CHECK_EQ_INT(git_treebuilder_write(&tree, root), 0);
    CHECK_EQ_INT(git_tree_lookup(&t, repo, &tree), 0);
    CHECK_EQ_INT(git_signature_new(&sig, "hub", "hub@resedge", 1700000000, 0), 0);
    int np = git_reference_name_to_id(&parent_id, repo, ref) == 0 ? 1 : 0;
    if (np)
        CHECK_EQ_INT(git_commit_lookup(&parent, repo, &parent_id), 0);
    const git_commit *parents[1] = { parent };
    CHECK_EQ_INT(git_commit_create(out, repo, ref, sig, sig, NULL, "state", t, (size_t)np,
                                   parents), 0);
    git_commit_free(parent);
    git_signature_free(sig);
    git_tree_free(t);
    git_treebuilder_free(root);
    git_treebuilder_free(sub);
}

static void read_str(struct re_buf *b, const char *dir, const char *name)
{
    char p[4096];
    re_snprintf(p, sizeof(p), "%s/%s", dir, name);
    re_buf_reset(b);
    CHECK_EQ_INT(re_read_file(b, p), 0);
}

static size_t count_revisions(const char *state)
{
    char p[4096];
    size_t n = 0;
    DIR *d;
    struct dirent *e;
    re_snprintf(p, sizeof(p), "%s/revisions", state);
    CHECK((d = opendir(p)) != NULL);
    while ((e = readdir(d)))
        if (strlen(e->d_name) == 40)
            n++;
    closedir(d);
    return n;
}

static void materialize_and_swap(void)
{
    git_repository *repo = NULL;
    char src[4096], state[4096], hex[41], cur[41];
    git_oid c1, c2, c3, bad;
    struct re_buf err, b;
    git_libgit2_init();
    re_snprintf(src, sizeof(src), "%s/src.git", test_tmpdir());
    re_snprintf(state, sizeof(state), "%s/state", test_tmpdir());
    CHECK_EQ_INT(re_mkdir_p(state, 0700), 0);
    CHECK_EQ_INT(git_repository_init(&repo, src, 1), 0);
    re_buf_init(&err, 4096);
    re_buf_init(&b, 65536);
    const struct fx_file v1[] = { { "kustomization.yaml", "resources: [ns.yaml]\n",
                                    GIT_FILEMODE_BLOB },
                                  { "dir/ns.yaml", "kind: Namespace\n", GIT_FILEMODE_BLOB } };
    const struct fx_file v2[] = { { "kustomization.yaml", "resources: []\n", GIT_FILEMODE_BLOB } };
    const struct fx_file v3[] = { { "run.sh", "#!/bin/sh\n", GIT_FILEMODE_BLOB_EXECUTABLE } };
    commit_files(repo, "refs/heads/main", v1, 2, &c1);
    commit_files(repo, "refs/heads/main", v2, 1, &c2);
    commit_files(repo, "refs/heads/main", v3, 1, &c3);

    CHECK_EQ_INT(materialize_current(cur, state), -RE_ENOENT);
    CHECK_EQ_INT(materialize_commit(state, repo, &c1, 2, &err), 0);
    git_oid_tostr(hex, sizeof(hex), &c1);
    CHECK_EQ_INT(materialize_current(cur, state), 0);
    CHECK_EQ_STR(cur, hex);
    read_str(&b, state, "current/dir/ns.yaml");
    CHECK_EQ_STR(b.ptr, "kind: Namespace\n");
    CHECK_EQ_INT(materialize_commit(state, repo, &c2, 2, &err), 0);
    read_str(&b, state, "current/kustomization.yaml");
    CHECK_EQ_STR(b.ptr, "resources: []\n");
    CHECK_EQ_INT(materialize_commit(state, repo, &c3, 2, &err), 0);
    /* Only the last two revisions are kept. */
    CHECK_EQ_INT(count_revisions(state), 2);
    char p[4096];
    struct stat sb;
    re_snprintf(p, sizeof(p), "%s/current/run.sh", state);
    CHECK_EQ_INT(stat(p, &sb), 0);
    CHECK(sb.st_mode & 0100);
    /* Back to an older commit (a revert): rewritten, swapped. */
    CHECK_EQ_INT(materialize_commit(state, repo, &c1, 2, &err), 0);
    CHECK_EQ_INT(materialize_current(cur, state), 0);
    CHECK_EQ_STR(cur, hex);

    /* Trees the agent refuses leave current where it was. */
    const struct fx_file lnk[] = { { "evil", "/etc/passwd", GIT_FILEMODE_LINK } };
    commit_files(repo, "refs/heads/evil", lnk, 1, &bad);
    re_buf_reset(&err);
    CHECK_EQ_INT(materialize_commit(state, repo, &bad, 2, &err), -RE_EUNSUPP);
    CHECK(strstr(err.ptr, "symlink"));
    const struct fx_file dots[] = { { "..", "x", GIT_FILEMODE_BLOB } };
    git_treebuilder *tb = NULL;
    if (git_treebuilder_new(&tb, repo, NULL) == 0) {
        /* libgit2 itself refuses to build such a tree: good, nothing to test then. */
        git_oid blob;
        git_blob_create_from_buffer(&blob, repo, "x", 1);
        CHECK(git_treebuilder_insert(NULL, tb, dots[0].path, &blob, GIT_FILEMODE_BLOB) < 0);
        git_treebuilder_free(tb);
    }
    CHECK_EQ_INT(materialize_current(cur, state), 0);
    CHECK_EQ_STR(cur, hex);
    git_oid missing;
    git_oid_fromstr(&missing, "0123456789abcdef0123456789abcdef01234567");
    CHECK_EQ_INT(materialize_commit(state, repo, &missing, 2, &err), -RE_EGIT);
    CHECK_EQ_INT(materialize_current(cur, state), 0);
    CHECK_EQ_STR(cur, hex);

    git_repository_free(repo);
    re_buf_release(&err);
    re_buf_release(&b);
}

static void repair_half_done_swap(void)
{
    char state[4096], p[4096], q[4096], cur[41];
    struct re_buf report;
    const char *a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    re_snprintf(state, sizeof(state), "%s/rs", test_tmpdir());
    re_buf_init(&report, 4096);
    re_snprintf(p, sizeof(p), "%s/revisions/%s", state, a);
    CHECK_EQ_INT(re_mkdir_p(p, 0755), 0);
    sleep(1); /* b is newer */
    re_snprintf(p, sizeof(p), "%s/revisions/%s", state, b);
    CHECK_EQ_INT(re_mkdir_p(p, 0755), 0);
    CHECK_EQ_INT(materialize_swap(state, a), 0);
    /* A crash between writing current.tmp and renaming it, and during a
     * revision's write. */
    re_snprintf(p, sizeof(p), "%s/current.tmp", state);
    CHECK_EQ_INT(symlink("revisions/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", p), 0);
    re_snprintf(q, sizeof(q), "%s/revisions/.tmp-cccccccccccccccccccccccccccccccccccccccc/x", state);
    CHECK_EQ_INT(re_mkdir_p(q, 0755), 0);
    CHECK_EQ_INT(materialize_repair(state, &report), 0);
    CHECK(strstr(report.ptr, "current.tmp"));
    CHECK(strstr(report.ptr, "unfinished"));
    struct stat sb;
    CHECK(lstat(p, &sb) < 0);
    CHECK_EQ_INT(materialize_current(cur, state), 0);
    CHECK_EQ_STR(cur, a);                  /* the committed swap stands */

    /* current dangling (its revision deleted): pointed at the newest one. */
    re_snprintf(p, sizeof(p), "%s/revisions/%s", state, a);
    CHECK_EQ_INT(re_remove_tree(p), 0);
    re_buf_reset(&report);
    CHECK_EQ_INT(materialize_current(cur, state), -RE_ENOENT);
    CHECK_EQ_INT(materialize_repair(state, &report), 0);
    CHECK_EQ_INT(materialize_current(cur, state), 0);
    CHECK_EQ_STR(cur, b);

    /* current is a plain directory (someone copied files in): replaced. */
    re_snprintf(p, sizeof(p), "%s/current", state);
    CHECK_EQ_INT(unlink(p), 0);
    CHECK_EQ_INT(re_mkdir_p(p, 0755), 0);
    CHECK_EQ_INT(materialize_repair(state, &report), 0);
    CHECK_EQ_INT(materialize_current(cur, state), 0);
    CHECK_EQ_STR(cur, b);
    /* Healthy state: nothing to report. */
    re_buf_reset(&report);
    CHECK_EQ_INT(materialize_repair(state, &report), 0);
    CHECK_EQ_INT(report.len, 0);
    /* Deleted state directory: nothing to repair, no error. */
    CHECK_EQ_INT(re_remove_tree(state), 0);
    CHECK_EQ_INT(materialize_repair(state, &report), 0);
    re_buf_release(&report);
}

static void fetch_into_mirror(void)
{
    git_repository *src = NULL, *mirror = NULL;
    char srcp[4096], state[4096], url[4200], fetched[41], hex[41];
    git_oid c1, c2;
    struct re_buf err;
    re_buf_init(&err, 4096);
    CHECK_EQ_INT(pull_global_init(), 0);
    re_snprintf(srcp, sizeof(srcp), "%s/upstream.git", test_tmpdir());
    re_snprintf(state, sizeof(state), "%s/fs", test_tmpdir());
    CHECK_EQ_INT(re_mkdir_p(state, 0700), 0);
    CHECK_EQ_INT(git_repository_init(&src, srcp, 1), 0);
    const struct fx_file v1[] = { { "a.yaml", "a: 1\n", GIT_FILEMODE_BLOB } };
    const struct fx_file v2[] = { { "a.yaml", "a: 2\n", GIT_FILEMODE_BLOB } };
    commit_files(src, "refs/heads/main", v1, 1, &c1);
    re_snprintf(url, sizeof(url), "file://%s", srcp);
    CHECK_EQ_INT(pull_open_mirror(&mirror, state, &err), 0);
    CHECK_EQ_INT(pull_fetch(mirror, url, "main", fetched, &err), 0);
    git_oid_tostr(hex, sizeof(hex), &c1);
    CHECK_EQ_STR(fetched, hex);
    commit_files(src, "refs/heads/main", v2, 1, &c2);
    CHECK_EQ_INT(pull_fetch(mirror, url, "main", fetched, &err), 0);
    git_oid_tostr(hex, sizeof(hex), &c2);
    CHECK_EQ_STR(fetched, hex);
    CHECK_EQ_INT(materialize_commit(state, mirror, &c2, 3, &err), 0);
    git_repository_free(mirror);
    /* A damaged mirror is recreated. */
    char p[4096];
    re_snprintf(p, sizeof(p), "%s/mirror.git/HEAD", state);
    unlink(p);
    mirror = NULL;
    CHECK_EQ_INT(pull_open_mirror(&mirror, state, &err), 0);
    CHECK_EQ_INT(pull_fetch(mirror, url, "main", fetched, &err), 0);
    CHECK_EQ_STR(fetched, hex);
    re_buf_reset(&err);
    CHECK(pull_fetch(mirror, url, "no-such-branch", fetched, &err) < 0);
    re_buf_reset(&err);
    CHECK_EQ_INT(pull_check_mirror(mirror, &err), 0);
    /* Deleted under an open handle: the check says so; a fresh open
     * recreates it and fetches again. */
    char mp[4096];
    re_snprintf(mp, sizeof(mp), "%s/mirror.git", state);
    CHECK_EQ_INT(re_remove_tree(mp), 0);
    CHECK_EQ_INT(pull_check_mirror(mirror, &err), -RE_ENOENT);
    CHECK(err.ptr && strstr(err.ptr, "mirror.git/HEAD") != NULL);
    git_repository_free(mirror);
    mirror = NULL;
    CHECK_EQ_INT(pull_open_mirror(&mirror, state, &err), 0);
    re_buf_reset(&err);
    CHECK_EQ_INT(pull_check_mirror(mirror, &err), 0);
    CHECK_EQ_INT(pull_fetch(mirror, url, "main", fetched, &err), 0);
    CHECK_EQ_STR(fetched, hex);
    CHECK(pull_has_commit(mirror, hex));
    /* Only the objects gone: the check says so too. */
    re_snprintf(mp, sizeof(mp), "%s/mirror.git/objects", state);
    CHECK_EQ_INT(re_remove_tree(mp), 0);
    re_buf_reset(&err);
    CHECK_EQ_INT(pull_check_mirror(mirror, &err), -RE_ENOENT);
    git_repository_free(mirror);
    git_repository_free(src);
    pull_global_cleanup();
    re_buf_release(&err);
}

static void flux_objects(void)
{
    struct re_buf src, sync, secret, err;
    char dir[4096];
    bool changed;
    const char *hostile_url = "https://hub:8443/git/s1.git\nkind: Secret";
    re_buf_init(&src, 65536);
    re_buf_init(&sync, 65536);
    re_buf_init(&secret, 65536);
    re_buf_init(&err, 1024);
    struct deploy_flux f = { .url = hostile_url, .branch = "main",
                             .ca_pem = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
                             .cert_pem = "-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n",
                             .key_pem = "-----BEGIN EC PRIVATE KEY-----\nK\n-----END EC PRIVATE KEY-----\n" };
    CHECK_EQ_INT(deploy_flux_yaml(&src, &sync, &secret, &f), 0);
    CHECK(strstr(src.ptr, "kind: GitRepository"));
    CHECK(strstr(src.ptr, "apiVersion: source.toolkit.fluxcd.io/v1"));
    CHECK(strstr(src.ptr, "name: resedge-hub-tls"));
    /* The newline in the URL stays inside a quoted scalar: no second key. */
    CHECK(!strstr(src.ptr, "\nkind: Secret"));
    CHECK(strstr(sync.ptr, "prune: true"));
    CHECK(strstr(sync.ptr, "kind: Kustomization"));
    CHECK(strstr(secret.ptr, "tls.key: |"));
    re_snprintf(dir, sizeof(dir), "%s/flux-state", test_tmpdir());
    CHECK_EQ_INT(re_mkdir_p(dir, 0700), 0);
    f.url = "https://hub:8443/git/s1.git";
    CHECK_EQ_INT(deploy_flux_write(dir, &f, &changed, &err), 0);
    CHECK(changed);
    CHECK_EQ_INT(deploy_flux_write(dir, &f, &changed, &err), 0);
    CHECK(!changed);
    char p[4200];
    struct stat sb;
    re_snprintf(p, sizeof(p), "%s/flux/secret.yaml", dir);
    CHECK_EQ_INT(stat(p, &sb), 0);
    CHECK_EQ_INT(sb.st_mode & 0777, 0600);
    /* Mode mirror with auth: Flux's basic-auth Secret (username, password). */
    struct deploy_flux m = { .url = "http://10.0.0.5:8480/s1.git", .branch = "main",
                             .username = "resedge", .password = "01234567" };
    re_buf_reset(&src);
    re_buf_reset(&sync);
    re_buf_reset(&secret);
    CHECK_EQ_INT(deploy_flux_yaml(&src, &sync, &secret, &m), 0);
    CHECK(strstr(src.ptr, "secretRef:\n    name: resedge-mirror-auth\n"));
    CHECK(strstr(secret.ptr, "kind: Secret"));
    CHECK(strstr(secret.ptr, "name: resedge-mirror-auth"));
    CHECK(strstr(secret.ptr, "stringData:\n  username: \"resedge\"\n  password: \"01234567\""));
    CHECK(!strstr(secret.ptr, "tls."));
    /* Without a password: no Secret, no secretRef. */
    m.password = NULL;
    re_buf_reset(&src);
    re_buf_reset(&sync);
    re_buf_reset(&secret);
    CHECK_EQ_INT(deploy_flux_yaml(&src, &sync, &secret, &m), 0);
    CHECK(!strstr(src.ptr, "secretRef"));
    CHECK_EQ_INT(secret.len, 0);
    /* The apply command: result strings. */
    char result[256];
    CHECK_EQ_INT(deploy_run("true {dir}", dir, 5000, NULL, result, sizeof(result)), 0);
    CHECK_EQ_STR(result, "ok");
    CHECK(deploy_run("sh -c 'echo boom; exit 2'", dir, 5000, NULL, result, sizeof(result)) < 0);
    CHECK(strstr(result, "exited 2: boom"));
    CHECK(deploy_run("sleep 5", dir, 200, NULL, result, sizeof(result)) < 0);
    CHECK(strstr(result, "timed out"));
    re_buf_release(&src);
    re_buf_release(&sync);
    re_buf_release(&secret);
    re_buf_release(&err);
}

TEST_MAIN(T(fingerprint_pinning), T(credential_swap), T(status_roundtrip),
          T(materialize_and_swap), T(repair_half_done_swap), T(fetch_into_mirror),
          T(flux_objects))
