/* materialize.c - writes a commit's tree into the state directory and swaps
 * STATE/current to it atomically. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <git2.h>
#include "error.h"
#include "fsutil.h"
#include "materialize.h"
#include "oid.h"


static int path2(char *out, size_t size, const char *dir, const char *name)
{
    return re_snprintf(out, size, "%s/%s", dir, name);
}

int materialize_current(char out[RE_OID_BUF], const char *state_dir)
{
    char link[4096], target[256];
    ssize_t n;
    struct stat sb;
    int r;
    if ((r = path2(link, sizeof(link), state_dir, "current")) < 0)
        return r;
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return errno == ENOENT || errno == EINVAL ? -RE_ENOENT : re_from_errno(errno);
    target[n] = '\0';
    if (strncmp(target, "revisions/", 10) != 0 || !re_oid_is(target + 10))
        return -RE_ENOENT;
    if (stat(link, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return -RE_ENOENT;
    memcpy(out, target + 10, RE_OID_BUF);
    return 0;
}

int materialize_swap(const char *state_dir, const char *rev)
{
    char tmp[4096], cur[4096], target[64], dir[4096];
    struct stat sb;
    int r;
    if (!re_oid_is(rev))
        return -RE_EINVAL;
    if ((r = re_snprintf(target, sizeof(target), "revisions/%s", rev)) < 0 ||
        (r = path2(dir, sizeof(dir), state_dir, target)) < 0 ||
        (r = path2(tmp, sizeof(tmp), state_dir, "current.tmp")) < 0 ||
        (r = path2(cur, sizeof(cur), state_dir, "current")) < 0)
        return r;
    if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return -RE_ENOENT;
    unlink(tmp);
    if (symlink(target, tmp) < 0)
        return re_from_errno(errno);
    if (rename(tmp, cur) < 0) {
        r = re_from_errno(errno);
        unlink(tmp);
        return r;
    }
    /* Most recently used first when pruning. */
    utimensat(AT_FDCWD, dir, NULL, 0);
    return re_fsync_dir(state_dir);
}

struct rev_ent {
    char name[RE_OID_BUF];
    struct timespec mtime;
};

static int cmp_newest(const void *a, const void *b)
{
    const struct rev_ent *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Complete revision directories under STATE/revisions, newest first. */
static int list_revisions(struct rev_ent **out, size_t *n_out, const char *state_dir)
{
    char revs[4096], p[4096];
    struct rev_ent *v = NULL;
    size_t n = 0, cap = 0;
    DIR *d;
    struct dirent *e;
    int r;
    *out = NULL;
    *n_out = 0;
    if ((r = path2(revs, sizeof(revs), state_dir, "revisions")) < 0)
        return r;
    if (!(d = opendir(revs)))
        return errno == ENOENT ? 0 : re_from_errno(errno);
    while ((e = readdir(d))) {
        struct stat sb;
        if (!re_oid_is(e->d_name) || path2(p, sizeof(p), revs, e->d_name) < 0 ||
            lstat(p, &sb) < 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (n == cap) {
            struct rev_ent *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
            if (!nv) {
                free(v);
                closedir(d);
                return -RE_ENOMEM;
            }
            v = nv;
        }
        memcpy(v[n].name, e->d_name, RE_OID_BUF);
        v[n].mtime = sb.st_mtim;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), cmp_newest);
    *out = v;
    *n_out = n;
    return 0;
}

int materialize_prune(const char *state_dir, unsigned keep)
{
    struct rev_ent *v;
    size_t n;
    char cur[RE_OID_BUF] = "", p[4096];
    int r;
    if ((r = list_revisions(&v, &n, state_dir)) < 0)
        return r;
    materialize_current(cur, state_dir);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, cur) == 0 || kept < keep) {
            kept++;
            continue;
        }
        if (re_snprintf(p, sizeof(p), "%s/revisions/%s", state_dir, v[i].name) == 0)
            re_remove_tree(p);
    }
    free(v);
    return 0;
}

int materialize_repair(const char *state_dir, struct re_buf *report)
{
    char p[4096], revs[4096], cur_hex[RE_OID_BUF];
    struct stat sb;
    DIR *d;
    struct dirent *e;
    int r;
    if ((r = path2(p, sizeof(p), state_dir, "current.tmp")) < 0)
        return r;
    if (lstat(p, &sb) == 0) {
        unlink(p);
        if (report)
            re_buf_printf(report, "removed a half-done swap (current.tmp)\n");
    }
    if ((r = path2(revs, sizeof(revs), state_dir, "revisions")) < 0)
        return r;
    if ((d = opendir(revs))) {
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, ".tmp-", 5) != 0)
                continue;
            if (path2(p, sizeof(p), revs, e->d_name) == 0 && re_remove_tree(p) == 0 && report)
                re_buf_printf(report, "removed an unfinished revision (%s)\n", e->d_name);
        }
        closedir(d);
    }
    if ((r = path2(p, sizeof(p), state_dir, "current")) < 0)
        return r;
    if (lstat(p, &sb) < 0)
        return 0; /* nothing materialized yet */
    if (!S_ISLNK(sb.st_mode)) {
        char aside[4096];
        if ((r = re_snprintf(aside, sizeof(aside), "%s/current.broken", state_dir)) < 0)
            return r;
        re_remove_tree(aside);
        if (rename(p, aside) < 0)
            return re_from_errno(errno);
        re_remove_tree(aside);
        if (report)
            re_buf_printf(report, "removed a 'current' that was not a symlink\n");
    } else if (materialize_current(cur_hex, state_dir) == 0) {
        return 0; /* healthy */
    } else {
        unlink(p);
        if (report)
            re_buf_printf(report, "removed a dangling 'current'\n");
    }
    /* Fall back to the newest complete revision, if any. */
    struct rev_ent *v;
    size_t n;
    if ((r = list_revisions(&v, &n, state_dir)) < 0)
        return r;
    if (n > 0 && (r = materialize_swap(state_dir, v[0].name)) == 0 && report)
        re_buf_printf(report, "pointed 'current' at the newest complete revision %s\n",
                      v[0].name);
    free(v);
    re_fsync_dir(state_dir);
    return r < 0 ? r : 0;
}

/* ---- writing a tree ---- */

struct writer {
    git_repository *repo;
    size_t files;
    size_t bytes;
    struct re_buf *err;
};

static bool safe_name(const char *n)
{
    return n[0] && strcmp(n, ".") != 0 && strcmp(n, "..") != 0 && strcasecmp(n, ".git") != 0 &&
           !strchr(n, '/') && !strchr(n, '\\') && strlen(n) < 256;
}

static int write_blob(struct writer *w, int dirfd, const char *name, const git_oid *id,
                      int exec)
{
    git_blob *blob = NULL;
    int fd = -1, r = 0;
    if (git_blob_lookup(&blob, w->repo, id) < 0) {
        re_buf_printf(w->err, "blob '%s' is missing from the mirror", name);
        return -RE_EGIT;
    }
    const char *data = git_blob_rawcontent(blob);
    size_t len = (size_t)git_blob_rawsize(blob);
    if (++w->files > MATERIALIZE_MAX_FILES || (w->bytes += len) > MATERIALIZE_MAX_BYTES) {
        re_buf_printf(w->err, "the tree is larger than the agent accepts (%d files, %u MiB)",
                      MATERIALIZE_MAX_FILES, MATERIALIZE_MAX_BYTES >> 20);
        r = -RE_ETOOBIG;
        goto out;
    }
    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                exec ? 0755 : 0644);
    if (fd < 0) {
        r = re_from_errno(errno);
        goto fail;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = re_from_errno(errno);
            goto fail;
        }
        off += (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        r = re_from_errno(errno);
        goto fail;
    }
    fd = -1;
    goto out;
fail:
    re_buf_printf(w->err, "cannot write '%s': %s", name, re_strerror(r));
out:
    if (fd >= 0)
        close(fd);
    git_blob_free(blob);
    return r;
}

static int write_tree(struct writer *w, int dirfd, const git_tree *tree, int depth)
{
    size_t n = git_tree_entrycount(tree);
    int r = 0;
    if (depth > MATERIALIZE_MAX_DEPTH) {
        re_buf_printf(w->err, "the tree nests deeper than %d", MATERIALIZE_MAX_DEPTH);
        return -RE_ETOOBIG;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        const git_tree_entry *e = git_tree_entry_byindex(tree, i);
        const char *name = git_tree_entry_name(e);
        git_filemode_t mode = git_tree_entry_filemode(e);
        if (!safe_name(name)) {
            re_buf_printf(w->err, "the tree holds an unsafe name '%.64s'", name);
            return -RE_EINVAL;
        }
        switch (mode) {
        case GIT_FILEMODE_BLOB:
        case GIT_FILEMODE_BLOB_EXECUTABLE:
            r = write_blob(w, dirfd, name, git_tree_entry_id(e),
                           mode == GIT_FILEMODE_BLOB_EXECUTABLE);
            break;
        case GIT_FILEMODE_TREE: {
            git_tree *sub = NULL;
            int fd;
            if (mkdirat(dirfd, name, 0755) < 0) {
                r = re_from_errno(errno);
                re_buf_printf(w->err, "cannot create directory '%s': %s", name, re_strerror(r));
                break;
            }
            if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
                r = re_from_errno(errno);
                break;
            }
            if (git_tree_lookup(&sub, w->repo, git_tree_entry_id(e)) < 0) {
                re_buf_printf(w->err, "tree '%s' is missing from the mirror", name);
                r = -RE_EGIT;
            } else {
                r = write_tree(w, fd, sub, depth + 1);
            }
            if (r == 0 && fsync(fd) < 0)
                r = re_from_errno(errno);
            git_tree_free(sub);
            close(fd);
            break;
        }
        default:
            re_buf_printf(w->err, "the tree holds a symlink or submodule '%.64s': refused", name);
            r = -RE_EUNSUPP;
            break;
        }
    }
    return r;
}

int materialize_commit(const char *state_dir, git_repository *repo, const git_oid *commit_id,
                       unsigned keep, struct re_buf *err)
{
    char hex[RE_OID_BUF], revs[4096], final[4096], tmp[4096];
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    struct stat sb;
    int fd = -1, r;
    git_oid_tostr(hex, sizeof(hex), commit_id);
    if ((r = path2(revs, sizeof(revs), state_dir, "revisions")) < 0 ||
        (r = path2(final, sizeof(final), revs, hex)) < 0 ||
        (r = re_snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", revs, hex)) < 0)
        goto out;
    if (stat(final, &sb) == 0 && S_ISDIR(sb.st_mode))
        goto swap;
    if (git_commit_lookup(&commit, repo, commit_id) < 0 || git_commit_tree(&tree, commit) < 0) {
        const git_error *ge = git_error_last();
        re_buf_printf(err, "commit %s is not in the mirror: %s", hex, ge ? ge->message : "?");
        r = -RE_EGIT;
        goto out;
    }
    if ((r = re_mkdir_p(revs, 0755)) < 0) {
        re_buf_printf(err, "cannot create '%s': %s", revs, re_strerror(r));
        goto out;
    }
    re_remove_tree(tmp);
    if (mkdir(tmp, 0755) < 0 ||
        (fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        r = re_from_errno(errno);
        re_buf_printf(err, "cannot create '%s': %s", tmp, re_strerror(r));
        goto out;
    }
    struct writer w = { repo, 0, 0, err };
    if ((r = write_tree(&w, fd, tree, 0)) < 0)
        goto out_rm;
    if (fsync(fd) < 0) {
        r = re_from_errno(errno);
        goto out_rm;
    }
    if (rename(tmp, final) < 0) {
        r = re_from_errno(errno);
        re_buf_printf(err, "cannot rename '%s': %s", tmp, re_strerror(r));
        goto out_rm;
    }
    re_fsync_dir(revs);
swap:
    if ((r = materialize_swap(state_dir, hex)) < 0) {
        re_buf_printf(err, "cannot point 'current' at %s: %s", hex, re_strerror(r));
        goto out;
    }
    materialize_prune(state_dir, keep);
    goto out;
out_rm:
    re_remove_tree(tmp);
out:
    if (fd >= 0)
        close(fd);
    git_tree_free(tree);
    git_commit_free(commit);
    return r;
}
