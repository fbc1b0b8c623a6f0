/* validate.c - syntax checks for names, paths, keys, values and identities
 * that the inventory accepts (see validate.h for each rule). */
#include <string.h>
#include "error.h"
#include "validate.h"

static bool is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(unsigned char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -RE_EINVAL;
}

int validate_dns_label(struct re_str s, const char **why)
{
    if (s.len == 0)
        return fail(why, "must not be empty");
    if (s.len > VALIDATE_LABEL_MAX)
        return fail(why, "must be at most 63 characters");
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (!is_lower_alnum(c) && c != '-')
            return fail(why, "must be a DNS-1123 label: lowercase letters, digits and '-'");
    }
    if (s.ptr[0] == '-' || s.ptr[s.len - 1] == '-')
        return fail(why, "must start and end with a lowercase letter or digit");
    return 0;
}

int validate_label_value(struct re_str s, const char **why)
{
    if (s.len == 0)
        return 0;
    if (s.len > VALIDATE_LABEL_MAX)
        return fail(why, "must be at most 63 characters");
    if (!is_alnum((unsigned char)s.ptr[0]) || !is_alnum((unsigned char)s.ptr[s.len - 1]))
        return fail(why, "must start and end with a letter or digit");
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
            return fail(why, "may hold only letters, digits, '-', '_' and '.'");
    }
    return 0;
}

int validate_label_key(struct re_str s, const char **why)
{
    const char *slash = memchr(s.ptr, '/', s.len);
    struct re_str name = s;
    if (s.len == 0)
        return fail(why, "must not be empty");
    if (slash) {
        size_t plen = (size_t)(slash - s.ptr);
        if (plen == 0 || plen > 253)
            return fail(why, "prefix must be 1 to 253 characters");
        for (size_t i = 0; i < plen; i++) {
            unsigned char c = (unsigned char)s.ptr[i];
            if (!is_lower_alnum(c) && c != '-' && c != '.')
                return fail(why, "prefix must be a DNS subdomain (lowercase, digits, '-', '.')");
        }
        name = (struct re_str){ slash + 1, s.len - plen - 1 };
    }
    if (name.len == 0)
        return fail(why, "name must not be empty");
    return validate_label_value(name, why);
}

int validate_group_path(struct re_str s, const char **why)
{
    size_t i = 0;
    if (s.len == 0)
        return fail(why, "must not be empty");
    if (s.len > VALIDATE_PATH_MAX)
        return fail(why, "must be at most 255 characters");
    if (s.ptr[0] != '/')
        return fail(why, "must start with '/'");
    while (i < s.len) {
        size_t start = ++i; /* skip '/' */
        while (i < s.len && s.ptr[i] != '/')
            i++;
        size_t n = i - start;
        if (n == 0)
            return fail(why, "must not have empty segments");
        if ((n == 1 && s.ptr[start] == '.') ||
            (n == 2 && s.ptr[start] == '.' && s.ptr[start + 1] == '.'))
            return fail(why, "must not have '.' or '..' segments");
        if (n > VALIDATE_LABEL_MAX)
            return fail(why, "segments must be at most 63 characters");
        for (size_t j = start; j < i; j++) {
            unsigned char c = (unsigned char)s.ptr[j];
            if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
                return fail(why, "segments may hold only letters, digits, '.', '_' and '-'");
        }
    }
    return 0;
}

int validate_key(struct re_str s, const char **why)
{
    if (s.len == 0)
        return fail(why, "keys must not be empty");
    if (s.len > VALIDATE_KEY_MAX)
        return fail(why, "keys must be at most 253 characters");
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
            return fail(why, "keys may hold only letters, digits, '.', '_' and '-'");
    }
    if (s.ptr[0] == '.' && (s.len == 1 || (s.len == 2 && s.ptr[1] == '.')))
        return fail(why, "keys may not be '.' or '..' (ConfigMap keys)");
    return 0;
}

/* Length of the UTF-8 sequence at p (at most n bytes) and its code point,
 * or 0 when invalid (overlong, surrogate, past U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned *cp)
{
    unsigned c = p[0], v;
    size_t len;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2; v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4; v = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

int validate_text(struct re_str s, size_t max, const char **why)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    if (s.len > max)
        return fail(why, "is too long");
    for (size_t i = 0; i < s.len;) {
        unsigned cp;
        size_t n = utf8_decode(p + i, s.len - i, &cp);
        if (n == 0)
            return fail(why, "must be valid UTF-8");
        if ((cp < 0x20 && cp != '\n' && cp != '\t') || cp == 0x7f ||
            (cp >= 0x80 && cp <= 0x9f))
            return fail(why, "must not contain control characters other than newline and tab");
        i += n;
    }
    return 0;
}

int validate_identity(struct re_str s, const char **why)
{
    struct re_str name;
    bool user;
    if (re_str_startswith_c(s, "user/")) {
        name = (struct re_str){ s.ptr + 5, s.len - 5 };
        user = true;
    } else if (re_str_startswith_c(s, "cluster/")) {
        name = (struct re_str){ s.ptr + 8, s.len - 8 };
        user = false;
    } else {
        return fail(why, "must be \"user/<name>\" or \"cluster/<name>\"");
    }
    if (!user)
        return validate_dns_label(name, why);
    if (name.len == 0 || name.len > 128)
        return fail(why, "user names must be 1-128 characters");
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.ptr[i];
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_' && c != '@')
            return fail(why, "user names may hold only letters, digits, '-', '.', '_' and '@'");
    }
    return 0;
}

int validate_version(struct re_str s, const char **why)
{
    /* it becomes the value of the version label on everything it renders */
    if (s.len == 0)
        return fail(why, "must not be empty");
    if (validate_label_value(s, NULL) < 0)
        return fail(why, "becomes a Kubernetes label value: at most 63 letters, digits, '.', "
                         "'-' and '_', starting and ending with a letter or digit");
    return 0;
}

static bool all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return n > 0;
}

int validate_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        size_t na = strcspn(a, ".-"), nb = strcspn(b, ".-");
        bool da = all_digits(a, na), db = all_digits(b, nb);
        int c;
        if (na == 0 && nb == 0) {
            c = 0;
        } else if (na == 0 || nb == 0) {
            return na == 0 ? -1 : 1;  /* "1" < "1.0" */
        } else if (da && db) {
            while (na > 1 && *a == '0') { a++; na--; }
            while (nb > 1 && *b == '0') { b++; nb--; }
            c = na != nb ? (na < nb ? -1 : 1) : memcmp(a, b, na);
        } else if (da != db) {
            c = da ? -1 : 1;
        } else {
            size_t m = na < nb ? na : nb;
            c = memcmp(a, b, m);
            if (c == 0 && na != nb)
                c = na < nb ? -1 : 1;
        }
        if (c)
            return c < 0 ? -1 : 1;
        a += na;
        b += nb;
        if (*a)
            a++;
        if (*b)
            b++;
    }
    return 0;
}

int validate_file_path(struct re_str s, const char **why)
{
    size_t i = 0;
    if (s.len == 0 || s.len > 255)
        return fail(why, "file paths must be 1-255 characters");
    if (s.ptr[0] == '/')
        return fail(why, "file paths must be relative");
    while (i <= s.len) {
        size_t start = i;
        while (i < s.len && s.ptr[i] != '/')
            i++;
        size_t n = i - start;
        if (n == 0)
            return fail(why, "file paths must not have empty segments");
        if ((n == 1 && s.ptr[start] == '.') ||
            (n == 2 && s.ptr[start] == '.' && s.ptr[start + 1] == '.'))
            return fail(why, "file paths must not have '.' or '..' segments");
        for (size_t j = start; j < i; j++) {
            unsigned char c = (unsigned char)s.ptr[j];
            if (c <= 0x20 || c >= 0x7f || c == '\\' || c == ':')
                return fail(why, "file paths may hold only printable ASCII other than space, '\\' and ':'");
        }
        i++;
    }
    return 0;
}

int validate_quantity(struct re_str s, const char **why)
{
    static const char *const suffixes[] = { "", "m", "k", "M", "G", "T", "P", "E",
                                            "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", NULL };
    size_t i = 0, digits = 0;
    if (s.len == 0 || s.len > 32)
        return fail(why, "must be a quantity such as \"500m\", \"2\" or \"8Gi\"");
    while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') { i++; digits++; }
    if (i < s.len && s.ptr[i] == '.') {
        i++;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') { i++; digits++; }
    }
    if (digits == 0)
        return fail(why, "must be a quantity such as \"500m\", \"2\" or \"8Gi\"");
    struct re_str suffix = { s.ptr + i, s.len - i };
    for (size_t k = 0; suffixes[k]; k++)
        if (re_str_eq_c(suffix, suffixes[k]))
            return 0;
    return fail(why, "must be a quantity such as \"500m\", \"2\" or \"8Gi\"");
}
