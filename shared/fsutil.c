/* fsutil.c - crash-safe file writes and small file system helpers. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "error.h"
#include "fsutil.h"

int re_path_join(char *out, size_t size, const char *a, const char *b)
{
    return re_snprintf(out, size, "%s/%s", a, b);
}

int re_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;
    if (fd < 0)
        return re_from_errno(errno);
    if (fsync(fd) < 0 && errno != EINVAL)
        r = re_from_errno(errno);
    close(fd);
    return r;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return re_from_errno(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int re_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4096], dir[4096];
    int fd = -1, r;
    if ((r = re_snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path)) < 0 ||
        (r = re_snprintf(dir, sizeof(dir), "%s", path)) < 0)
        return r;
    fd = mkstemp(tmp);
    if (fd < 0)
        return re_from_errno(errno);
    if (fchmod(fd, mode) < 0 || (r = write_all(fd, data, len)) < 0 || fsync(fd) < 0) {
        r = r < 0 ? r : re_from_errno(errno);
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        r = re_from_errno(errno);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        r = re_from_errno(errno);
        goto out;
    }
    tmp[0] = '\0';
    r = re_fsync_dir(dirname(dir));
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    return r;
}

int re_read_file(struct re_buf *out, const char *path)
{
    char chunk[16384];
    size_t before = out->len;
    int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
    if (fd < 0)
        return re_from_errno(errno);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = re_from_errno(errno);
            break;
        }
        if (n == 0)
            break;
        if ((r = re_buf_append(out, chunk, (size_t)n)) < 0)
            break;
    }
    close(fd);
    if (r < 0 && out->ptr) {             /* nothing of a failed read is kept */
        out->len = before;
        out->ptr[before] = '\0';
    }
    return r;
}

int re_mkdir_p(const char *path, mode_t mode)
{
    char p[4096];
    int r = re_snprintf(p, sizeof(p), "%s", path);
    if (r < 0)
        return r;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return re_from_errno(errno);
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return re_from_errno(errno);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int re_remove_tree(const char *path)
{
    if (nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return re_from_errno(errno);
    return 0;
}
