/* log.c - leveled logging to stderr, with journald "<N>" priority prefixes
 * when stderr is connected to the journal (systemd sets $JOURNAL_STREAM). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "error.h"
#include "log.h"

static const char *log_ident = "resedge";
static int log_max = RE_LOG_INFO;
static int log_journal;

static const char *const level_names[] = {
    [RE_LOG_ERR] = "error", [RE_LOG_WARNING] = "warning", [RE_LOG_NOTICE] = "notice",
    [RE_LOG_INFO] = "info", [RE_LOG_DEBUG] = "debug",
};

void re_log_init(const char *ident, int max_level)
{
    log_ident = ident;
    log_max = max_level;
    log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void re_log_set_level(int max_level)
{
    log_max = max_level;
}

int re_log_level_parse(const char *s)
{
    for (int i = RE_LOG_ERR; i <= RE_LOG_DEBUG; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void re_log(int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    if (level > log_max)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_journal) {
        fprintf(stderr, "<%d>%s\n", level, msg);
    } else {
        char ts[32];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %s[%d] %s: %s\n", ts, now.tv_nsec / 1000000,
                log_ident, (int)getpid(), level_names[level], msg);
    }
}

int re_log_reopen(const char *path)
{
    int fd;
    if (!path)
        return 0;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return re_from_errno(errno);
    fflush(stderr);
    if (dup2(fd, STDERR_FILENO) < 0) {
        close(fd);
        return re_from_errno(errno);
    }
    close(fd);
    return 0;
}
