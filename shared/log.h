/* log.h - leveled logging to stderr; journald priority prefixes under systemd.
 * Only daemons and tools log; library code returns errors instead. */
#ifndef RE_LOG_H
#define RE_LOG_H

enum re_log_level {
    RE_LOG_ERR = 3,
    RE_LOG_WARNING = 4,
    RE_LOG_NOTICE = 5,
    RE_LOG_INFO = 6,
    RE_LOG_DEBUG = 7,
};

/* ident: program name. Prefixes "<N>" when $JOURNAL_STREAM is set. */
void re_log_init(const char *ident, int max_level);
void re_log_set_level(int max_level);
/* Parse "error|warning|notice|info|debug"; -1 when unknown. */
int re_log_level_parse(const char *s);
void re_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reopen stderr onto a file after SIGHUP (no-op when path is NULL). */
int re_log_reopen(const char *path);

#define log_err(...)    re_log(RE_LOG_ERR, __VA_ARGS__)
#define log_warn(...)   re_log(RE_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) re_log(RE_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   re_log(RE_LOG_INFO, __VA_ARGS__)
#define log_debug(...)  re_log(RE_LOG_DEBUG, __VA_ARGS__)

#endif
