/* conf.c - INI-style config parser ([section], key = value, # or ; comments)
 * with validation against a table of known keys; errors say file:line. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "conf.h"
#include "error.h"
#include "fsutil.h"

#define CONF_MAX_BYTES (1024 * 1024)
#define CONF_MAX_ENTRIES 4096

static struct re_str trim(struct re_str s)
{
    while (s.len && isspace((unsigned char)s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && isspace((unsigned char)s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static int fail(struct re_buf *err, const char *name, int line, const char *msg, struct re_str what)
{
    if (err)
        re_buf_printf(err, "%s:%d: %s%s%.*s%s", name, line, msg, what.len ? " '" : "",
                      (int)what.len, what.ptr ? what.ptr : "", what.len ? "'" : "");
    return -RE_EPARSE;
}

void re_conf_free(struct re_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].section);
        free(c->entries[i].key);
        free(c->entries[i].value);
    }
    free(c->entries);
    free(c->path);
    free(c);
}

static int valid_name(struct re_str s)
{
    if (!s.len)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (!isalnum(ch) && ch != '_' && ch != '-' && ch != '.')
            return 0;
    }
    return 1;
}

int re_conf_parse(struct re_conf **out, const char *name, struct re_str text, struct re_buf *err)
{
    struct re_conf *c = calloc(1, sizeof(*c));
    char *section = strdup("");
    size_t cap = 0;
    int line = 0, r = 0;
    const char *p = text.ptr ? text.ptr : "", *end = p + text.len; /* empty file: ptr NULL */

    if (!c || !section || !(c->path = strdup(name))) {
        r = -RE_ENOMEM;
        goto out;
    }
    if (text.len > CONF_MAX_BYTES) {
        r = fail(err, name, 0, "file too large", RE_STR_NULL);
        goto out;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        struct re_str l = { p, nl ? (size_t)(nl - p) : (size_t)(end - p) };
        p = nl ? nl + 1 : end;
        line++;
        l = trim(l);
        if (!l.len || l.ptr[0] == '#' || l.ptr[0] == ';')
            continue;
        if (memchr(l.ptr, '\0', l.len)) {
            r = fail(err, name, line, "NUL byte in line", RE_STR_NULL);
            goto out;
        }
        if (l.ptr[0] == '[') {
            struct re_str s;
            if (l.ptr[l.len - 1] != ']') {
                r = fail(err, name, line, "expected ']' to close the section name", RE_STR_NULL);
                goto out;
            }
            s = trim((struct re_str){ l.ptr + 1, l.len - 2 });
            if (!valid_name(s)) {
                r = fail(err, name, line, "bad section name", s);
                goto out;
            }
            free(section);
            if (!(section = re_str_dup(s))) {
                r = -RE_ENOMEM;
                goto out;
            }
            continue;
        }
        const char *eq = memchr(l.ptr, '=', l.len);
        if (!eq) {
            r = fail(err, name, line, "expected 'key = value', got", l);
            goto out;
        }
        struct re_str k = trim((struct re_str){ l.ptr, (size_t)(eq - l.ptr) });
        struct re_str v = trim((struct re_str){ eq + 1, (size_t)(l.ptr + l.len - eq - 1) });
        if (!valid_name(k)) {
            r = fail(err, name, line, "bad key name", k);
            goto out;
        }
        if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"')
            v = (struct re_str){ v.ptr + 1, v.len - 2 };
        if (c->n == CONF_MAX_ENTRIES) {
            r = fail(err, name, line, "too many entries", RE_STR_NULL);
            goto out;
        }
        if (c->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct re_conf_entry *e = realloc(c->entries, ncap * sizeof(*e));
            if (!e) {
                r = -RE_ENOMEM;
                goto out;
            }
            c->entries = e;
            cap = ncap;
        }
        struct re_conf_entry *e = &c->entries[c->n];
        e->section = strdup(section);
        e->key = re_str_dup(k);
        e->value = re_str_dup(v);
        e->line = line;
        c->n++;
        if (!e->section || !e->key || !e->value) {
            r = -RE_ENOMEM;
            goto out;
        }
    }
    *out = c;
    c = NULL;
out:
    free(section);
    re_conf_free(c);
    return r;
}

int re_conf_load(struct re_conf **out, const char *path, struct re_buf *err)
{
    struct re_buf text;
    int r;
    re_buf_init(&text, CONF_MAX_BYTES);
    r = re_read_file(&text, path);
    if (r < 0) {
        if (err)
            re_buf_printf(err, "%s: %s", path, r == -RE_ETOOBIG ? "file too large (over 1 MiB)"
                                                                 : re_strerror(r));
    } else {
        r = re_conf_parse(out, path, re_buf_str(&text), err);
    }
    re_buf_release(&text);
    return r;
}

const char *re_conf_get(const struct re_conf *c, const char *section, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->entries[i].section, section) == 0 && strcmp(c->entries[i].key, key) == 0)
            v = c->entries[i].value;
    return v;
}

int re_parse_uint(unsigned long long *out, const char *s, unsigned long long max)
{
    return re_str_to_u64(out, re_str_c(s), max);
}

int re_parse_bool(int *out, const char *s)
{
    static const char *const yes[] = { "1", "yes", "true", "on", NULL };
    static const char *const no[] = { "0", "no", "false", "off", NULL };
    for (int i = 0; yes[i]; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -RE_EINVAL;
}

int re_parse_duration_ms(unsigned long long *out, const char *s)
{
    static const struct { const char *suffix; unsigned long long ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
    };
    size_t n = strlen(s), digits = 0;
    unsigned long long v;
    while (digits < n && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    if (re_str_to_u64(&v, (struct re_str){ s, digits }, 1ULL << 40) < 0)
        return -RE_EINVAL;
    if (digits == n) {
        *out = v * 1000;
        return 0;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s + digits, units[i].suffix) == 0) {
            *out = v * units[i].ms;
            return 0;
        }
    }
    return -RE_EINVAL;
}

int re_conf_validate(const struct re_conf *c, const struct re_conf_key *known, struct re_buf *err)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct re_conf_entry *e = &c->entries[i];
        const struct re_conf_key *k;
        int bad = 0;
        for (k = known; k->key; k++)
            if (strcmp(k->section, e->section) == 0 && strcmp(k->key, e->key) == 0)
                break;
        if (!k->key) {
            if (err)
                re_buf_printf(err, "%s:%d: unknown key '%s' in section [%s]", c->path, e->line,
                              e->key, e->section);
            return -RE_EINVAL;
        }
        unsigned long long u;
        int b;
        switch (k->type) {
        case RE_CONF_UINT: bad = re_parse_uint(&u, e->value, ~0ULL >> 1) < 0; break;
        case RE_CONF_BOOL: bad = re_parse_bool(&b, e->value) < 0; break;
        case RE_CONF_DURATION: bad = re_parse_duration_ms(&u, e->value) < 0; break;
        case RE_CONF_STRING: break;
        }
        if (bad) {
            static const char *const what[] = { "a string", "a whole number", "yes or no",
                                                "a duration like 30s, 5m or 24h" };
            if (err)
                re_buf_printf(err, "%s:%d: bad value '%s' for '%s': expected %s", c->path,
                              e->line, e->value, e->key, what[k->type]);
            return -RE_EINVAL;
        }
    }
    return 0;
}
