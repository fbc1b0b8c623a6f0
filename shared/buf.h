/* buf.h - bounded growable byte buffers and (ptr, len) strings. */
#ifndef RE_BUF_H
#define RE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>

/* A borrowed view of bytes; not NUL-terminated in general. */
struct re_str {
    const char *ptr;
    size_t len;
};

#define RE_STR_LIT(s) ((struct re_str){ (s), sizeof(s) - 1 })
#define RE_STR_NULL ((struct re_str){ NULL, 0 })

struct re_str re_str_c(const char *s);                  /* from C string (NULL ok) */
bool re_str_eq(struct re_str a, struct re_str b);
bool re_str_eq_c(struct re_str a, const char *s);
bool re_str_caseeq_c(struct re_str a, const char *s);
bool re_str_startswith_c(struct re_str a, const char *prefix);
/* Newly allocated NUL-terminated copy, or NULL when out of memory. */
char *re_str_dup(struct re_str s);
/* Parse a whole string as an unsigned decimal <= max; -RE_EINVAL otherwise. */
int re_str_to_u64(unsigned long long *out, struct re_str s, unsigned long long max);

/*
 * A growable buffer with a hard maximum (like curl's dynbuf). The content is
 * always NUL-terminated after a successful append. Growing past max fails with
 * -RE_ETOOBIG and leaves the content as it was.
 */
struct re_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max;
};

void re_buf_init(struct re_buf *b, size_t max);
void re_buf_release(struct re_buf *b);                   /* frees; NULL-safe */
void re_buf_reset(struct re_buf *b);                     /* len = 0, keeps memory */
int re_buf_append(struct re_buf *b, const void *data, size_t len);
int re_buf_append_str(struct re_buf *b, const char *s);
int re_buf_printf(struct re_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int re_buf_vprintf(struct re_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Take ownership of the content (NUL-terminated, may be NULL when empty). */
char *re_buf_steal(struct re_buf *b);
static inline struct re_str re_buf_str(const struct re_buf *b)
{
    return (struct re_str){ b->ptr, b->len };
}

/* Bounded formatting into a fixed array: -RE_ETOOBIG when it does not fit. */
int re_snprintf(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
