/* conf.h - INI-style configuration files: [section], key = value, # comments.
 * Errors name file:line. */
#ifndef RE_CONF_H
#define RE_CONF_H

#include <stddef.h>
#include "buf.h"

struct re_conf_entry {
    char *section;               /* "" before the first [section] */
    char *key;
    char *value;
    int line;
};

struct re_conf {
    char *path;
    struct re_conf_entry *entries;
    size_t n;
};

enum re_conf_type { RE_CONF_STRING, RE_CONF_UINT, RE_CONF_BOOL, RE_CONF_DURATION };

/* A known key, for validation: unknown keys and bad values are errors. */
struct re_conf_key {
    const char *section;
    const char *key;
    enum re_conf_type type;
};

/* Parses a file (at most 1 MiB). On error returns negative, *out untouched,
 * and err holds "path:line: message". */
int re_conf_load(struct re_conf **out, const char *path, struct re_buf *err);
int re_conf_parse(struct re_conf **out, const char *name, struct re_str text,
                  struct re_buf *err);
void re_conf_free(struct re_conf *c);
/* Last value for section/key, or NULL. */
const char *re_conf_get(const struct re_conf *c, const char *section, const char *key);
/* Checks every entry against known (terminated by a NULL key). */
int re_conf_validate(const struct re_conf *c, const struct re_conf_key *known,
                     struct re_buf *err);

/* Value parsers shared with command-line flags. */
int re_parse_bool(int *out, const char *s);              /* yes/no/true/false/1/0/on/off */
int re_parse_duration_ms(unsigned long long *out, const char *s); /* 500ms 30s 5m 24h 7d; bare = s */
int re_parse_uint(unsigned long long *out, const char *s, unsigned long long max);

#endif
