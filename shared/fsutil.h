/* fsutil.h - file system helpers: atomic writes, reading with a bound, mkdir -p. */
#ifndef RE_FSUTIL_H
#define RE_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>
#include "buf.h"

/* Temp file in the same directory, write, fsync, rename, fsync directory.
 * On failure the old file (if any) is untouched and no temp file is left. */
int re_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole file into out (appending); -RE_ETOOBIG past out->max. On
 * failure out is as it was. */
int re_read_file(struct re_buf *out, const char *path);
int re_mkdir_p(const char *path, mode_t mode);
int re_fsync_dir(const char *dir);
/* rm -rf; ENOENT is success. */
int re_remove_tree(const char *path);
int re_path_join(char *out, size_t size, const char *a, const char *b);

#endif
