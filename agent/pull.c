/* pull.c - fetches the cluster's branch into STATE/mirror.git with libgit2. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <git2.h>
#include "error.h"
#include "fsutil.h"
#include "gitstream.h"
#include "oid.h"
#include "pull.h"
#include "tick.h"
#include "tls.h"

static volatile sig_atomic_t *pull_abort;

int pull_global_init(void)
{
    if (git_libgit2_init() < 0)
        return -RE_EGIT;
    return gitstream_register();
}

void pull_global_cleanup(void)
{
    gitstream_cleanup();
    git_libgit2_shutdown();
}

void pull_set_abort_flag(volatile sig_atomic_t *flag)
{
    pull_abort = flag;
}

int pull_set_tls(const char *ca_file, const char *cert_file, const char *key_file,
                 struct re_buf *err)
{
    struct tls_client_options o = { ca_file, cert_file, key_file };
    struct tls_config *cfg = NULL;
    int r = tls_config_new_client(&cfg, &o, err);
    if (r == 0)
        gitstream__set_config(cfg);
    return r;
}

static void git_err(struct re_buf *err, const char *what)
{
    const git_error *e = git_error_last();
    re_buf_printf(err, "%s: %s", what, e && e->message ? e->message : "unknown libgit2 error");
}

int pull_open_mirror(git_repository **out, const char *state_dir, struct re_buf *err)
{
    char path[4096];
    git_repository *repo = NULL;
    int r;
    if ((r = re_snprintf(path, sizeof(path), "%s/mirror.git", state_dir)) < 0)
        return r;
    if (git_repository_open_bare(&repo, path) == 0) {
        *out = repo;
        return 0;
    }
    /* Missing or damaged: start a fresh mirror (the hub has the history). */
    re_remove_tree(path);
    if (git_repository_init(&repo, path, 1) < 0) {
        git_err(err, "cannot create the local mirror");
        return -RE_EGIT;
    }
    *out = repo;
    return 0;
}

int pull_check_mirror(git_repository *repo, struct re_buf *err)
{
    static const char *const parts[] = { "HEAD", "objects", "refs" };
    const char *path = git_repository_path(repo); /* ends with '/' */
    git_repository *again = NULL;
    char p[4096];
    struct stat sb;
    int r;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if ((r = re_snprintf(p, sizeof(p), "%s%s", path, parts[i])) < 0)
            return r;
        if (stat(p, &sb) < 0) {
            re_buf_printf(err, "'%s' is missing", p);
            return -RE_ENOENT;
        }
    }
    /* What a fresh open checks (format, config, HEAD) besides the files. */
    if (git_repository_open_bare(&again, path) < 0) {
        git_err(err, "it no longer opens");
        return -RE_EGIT;
    }
    git_repository_free(again);
    return 0;
}

static int on_progress(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    (void)payload;
    tick();
    return pull_abort && *pull_abort ? -1 : 0;
}

static int on_sideband(const char *str, int len, void *payload)
{
    return pull_abort && *pull_abort ? -1 : 0;
}

int pull_fetch(git_repository *repo, const char *url, const char *branch, char fetched_hex[RE_OID_BUF],
               struct re_buf *err)
{
    git_remote *remote = NULL;
    git_fetch_options fo;
    char spec[600], ref[300];
    char *specs[1] = { spec };
    git_strarray refspecs = { specs, 1 };
    git_oid oid;
    int r;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    if ((r = re_snprintf(spec, sizeof(spec), "+refs/heads/%s:" PULL_HIDDEN_REFS "%s", branch,
                         branch)) < 0 ||
        (r = re_snprintf(ref, sizeof(ref), PULL_HIDDEN_REFS "%s", branch)) < 0)
        return r;
    /* In memory and without the url.*.insteadOf lookup: that config regex
     * leaks pcre2 match data in libgit2 1.5 on every entry it does not match
     * (hundreds of KB a fetch over an agent's life). */
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = repo;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (git_remote_create_with_opts(&remote, url, &ro) < 0) {
        git_err(err, "bad git URL");
        return -RE_EGIT;
    }
    fo.callbacks.transfer_progress = on_progress;
    fo.callbacks.sideband_progress = on_sideband;
    fo.prune = GIT_FETCH_NO_PRUNE;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    fo.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
    if (git_remote_fetch(remote, &refspecs, &fo, NULL) < 0) {
        r = pull_abort && *pull_abort ? -RE_EAGAIN : -RE_EGIT;
        git_err(err, "fetch failed");
        goto out;
    }
    if (git_reference_name_to_id(&oid, repo, ref) < 0) {
        git_err(err, "the fetched branch is missing");
        r = -RE_EGIT;
        goto out;
    }
    git_oid_tostr(fetched_hex, RE_OID_BUF, &oid);
    r = 0;
out:
    git_remote_free(remote);
    return r;
}

static bool head_is(git_repository *repo, const char *ref)
{
    git_reference *head = NULL;
    bool ok = git_reference_lookup(&head, repo, "HEAD") == 0 &&
              git_reference_type(head) == GIT_REFERENCE_SYMBOLIC &&
              strcmp(git_reference_symbolic_target(head), ref) == 0;
    git_reference_free(head);
    return ok;
}

bool pull_published(git_repository *repo, const char *branch, const char *commit_hex)
{
    char ref[300], hex[RE_OID_BUF];
    git_oid oid;
    if (!repo || re_snprintf(ref, sizeof(ref), "refs/heads/%s", branch) < 0 ||
        git_reference_name_to_id(&oid, repo, ref) < 0)
        return false;
    git_oid_tostr(hex, sizeof(hex), &oid);
    return strcmp(hex, commit_hex) == 0 && head_is(repo, ref);
}

int pull_publish(git_repository *repo, const char *branch, const char *commit_hex,
                 struct re_buf *err)
{
    char ref[300];
    git_oid want, cur;
    git_reference *out = NULL;
    git_commit *commit = NULL;
    int r;
    if ((r = re_snprintf(ref, sizeof(ref), "refs/heads/%s", branch)) < 0)
        return r;
    if (git_oid_fromstr(&want, commit_hex) < 0 || git_commit_lookup(&commit, repo, &want) < 0) {
        git_err(err, "cannot publish a commit the mirror does not hold");
        return -RE_EGIT;
    }
    git_commit_free(commit);
    if (git_reference_name_to_id(&cur, repo, ref) < 0 || !git_oid_equal(&cur, &want)) {
        if (git_reference_create(&out, repo, ref, &want, 1, "resedge-agent: assigned revision") < 0) {
            git_err(err, "cannot move the mirror's branch");
            return -RE_EGIT;
        }
        git_reference_free(out);
        out = NULL;
    }
    if (!head_is(repo, ref)) {
        if (git_reference_symbolic_create(&out, repo, "HEAD", ref, 1, "resedge-agent") < 0) {
            git_err(err, "cannot point the mirror's HEAD at its branch");
            return -RE_EGIT;
        }
        git_reference_free(out);
    }
    return 0;
}

bool pull_has_commit(git_repository *repo, const char *commit_hex)
{
    git_oid oid;
    git_commit *c = NULL;
    if (!repo || git_oid_fromstr(&oid, commit_hex) < 0 || git_commit_lookup(&c, repo, &oid) < 0)
        return false;
    git_commit_free(c);
    return true;
}
