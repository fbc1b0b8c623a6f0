/* buf.c - bounded growable buffers and (ptr, len) string helpers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "buf.h"
#include "error.h"

struct re_str re_str_c(const char *s)
{
    return (struct re_str){ s, s ? strlen(s) : 0 };
}

bool re_str_eq(struct re_str a, struct re_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool re_str_eq_c(struct re_str a, const char *s)
{
    return re_str_eq(a, re_str_c(s));
}

bool re_str_caseeq_c(struct re_str a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && strncasecmp(a.ptr, s, n) == 0;
}

bool re_str_startswith_c(struct re_str a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && memcmp(a.ptr, prefix, n) == 0;
}

char *re_str_dup(struct re_str s)
{
    char *p = malloc(s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

int re_str_to_u64(unsigned long long *out, struct re_str s, unsigned long long max)
{
    unsigned long long v = 0;
    if (s.len == 0 || s.len > 20)
        return -RE_EINVAL;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.ptr[i] - '0';
        if (d > 9)
            return -RE_EINVAL;
        if (v > (max - d) / 10)
            return -RE_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

void re_buf_init(struct re_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void re_buf_release(struct re_buf *b)
{
    if (!b)
        return;
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

void re_buf_reset(struct re_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

static int reserve(struct re_buf *b, size_t extra)
{
    size_t need;
    if (extra > b->max || b->len > b->max - extra)
        return -RE_ETOOBIG;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need && cap <= SIZE_MAX / 2)
        cap *= 2;
    if (cap < need)
        cap = need;
    if (cap - 1 > b->max)               /* then b->max + 1 cannot wrap */
        cap = b->max + 1;
    char *p = realloc(b->ptr, cap);
    if (!p)
        return -RE_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int re_buf_append(struct re_buf *b, const void *data, size_t len)
{
    int r = reserve(b, len);
    if (r < 0)
        return r;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return 0;
}

int re_buf_append_str(struct re_buf *b, const char *s)
{
    return re_buf_append(b, s, strlen(s));
}

int re_buf_vprintf(struct re_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -RE_EINVAL;
    int r = reserve(b, (size_t)n);
    if (r < 0)
        return r;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int re_buf_printf(struct re_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = re_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

char *re_buf_steal(struct re_buf *b)
{
    char *p = b->ptr;
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

int re_snprintf(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -RE_EINVAL;
    return (size_t)n >= size ? -RE_ETOOBIG : 0;
}
