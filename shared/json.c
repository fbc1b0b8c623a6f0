/* json.c - cJSON made strict (nesting limit, no NUL, no duplicate keys)
 * and typed getters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "json.h"

static int fail(struct re_json_error *err, int r, size_t pos, const char *why)
{
    if (err) {
        err->pos = pos;
        err->why = why;
        err->key[0] = '\0';
    }
    return r;
}

/* One pass over the raw text before cJSON sees it: the nesting limit
 * (cJSON's own is a compile-time 1000; ours is checked without allocating),
 * NUL bytes and \u0000 escapes. Brackets inside strings do not count; a
 * backslash escapes exactly the next byte, so "\\u0000" (an escaped
 * backslash, then text) is fine. */
static int scan_text(struct re_str t, int max_depth, struct re_json_error *err)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (c == '\0')
            return fail(err, -RE_EPARSE, i, "NUL byte");
        if (in_str) {
            if (c == '\\') {
                if (i + 1 < t.len && t.ptr[i + 1] == '\0')
                    return fail(err, -RE_EPARSE, i + 1, "NUL byte");
                if (i + 5 < t.len && t.ptr[i + 1] == 'u' && memcmp(t.ptr + i + 2, "0000", 4) == 0)
                    return fail(err, -RE_EPARSE, i, "\\u0000 in a string");
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return fail(err, -RE_EDEPTH, i, "nested too deep");
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;             /* never below 0: "]]][[[" must not buy depth */
        }
    }
    return 0;
}

#define DUP_LINEAR 16                  /* members compared pairwise up to this many */

struct name_at {
    const char *name;
    size_t idx;
};

static int cmp_name_at(const void *a, const void *b)
{
    const struct name_at *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The index of the first member of obj whose name an earlier member has:
 * 0 and *out, -RE_ENOENT when the names are distinct, -RE_ENOMEM. Pairwise
 * for small objects, else sorted (O(n log n)). */
static int find_duplicate(size_t *out, const cJSON *obj)
{
    const cJSON *it;
    size_t n = 0, best = SIZE_MAX;
    for (it = obj->child; it; it = it->next)
        n++;
    if (n <= DUP_LINEAR) {
        size_t j = 0;
        for (it = obj->child; it; it = it->next, j++)
            for (const cJSON *e = obj->child; e != it; e = e->next)
                if (strcmp(e->string, it->string) == 0) {
                    *out = j;
                    return 0;
                }
        return -RE_ENOENT;
    }
    struct name_at *v = malloc(n * sizeof(*v));
    if (!v)
        return -RE_ENOMEM;
    n = 0;
    for (it = obj->child; it; it = it->next, n++)
        v[n] = (struct name_at){ it->string, n };
    qsort(v, n, sizeof(*v), cmp_name_at);
    /* Each member but the first of a run of equal names repeats an earlier one. */
    for (size_t k = 1; k < n; k++)
        if (strcmp(v[k - 1].name, v[k].name) == 0 && v[k].idx < best)
            best = v[k].idx;
    free(v);
    if (best == SIZE_MAX)
        return -RE_ENOENT;
    *out = best;
    return 0;
}

/* Walks the tree in text order, counting strings (member names and string
 * values) in *nstr, so a duplicate name can be found again in the text: on
 * -RE_EPARSE *dup is the name and *dup_str its string's index. */
static int check_tree(const cJSON *v, size_t *nstr, const char **dup, size_t *dup_str)
{
    size_t d = SIZE_MAX, j = 0;
    int r;
    if (cJSON_IsString(v)) {
        (*nstr)++;
        return 0;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
        return 0;
    if (cJSON_IsObject(v) && (r = find_duplicate(&d, v)) < 0 && r != -RE_ENOENT)
        return r;
    for (const cJSON *it = v->child; it; it = it->next, j++) {
        if (cJSON_IsObject(v)) {
            if (j == d) {
                *dup = it->string;
                *dup_str = *nstr;
                return -RE_EPARSE;
            }
            (*nstr)++;
        }
        if ((r = check_tree(it, nstr, dup, dup_str)) < 0)
            return r;
    }
    return 0;
}

/* Offset of the opening quote of the k-th string (0-based) of t. */
static size_t string_offset(struct re_str t, size_t k)
{
    int in_str = 0;
    size_t n = 0;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            if (n++ == k)
                return i;
            in_str = 1;
        }
    }
    return 0;
}

int re_json_parse_err(cJSON **out, struct re_str text, int max_depth,
                      struct re_json_error *err)
{
    const char *end = NULL, *dup = NULL;
    size_t nstr = 0, dup_str = 0;
    cJSON *j;
    int r = scan_text(text, max_depth, err);
    if (r < 0)
        return r;
    j = cJSON_ParseWithLengthOpts(text.ptr ? text.ptr : "", text.len, &end, 0);
    if (!j)
        return fail(err, -RE_EPARSE, end && text.ptr ? (size_t)(end - text.ptr) : 0,
                    "syntax error");
    /* Only white space may follow the value. */
    for (size_t i = (size_t)(end - text.ptr); i < text.len; i++) {
        char c = text.ptr[i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            cJSON_Delete(j);
            return fail(err, -RE_EPARSE, i, "data after the value");
        }
    }
    if ((r = check_tree(j, &nstr, &dup, &dup_str)) < 0) {
        if (r == -RE_EPARSE) {
            fail(err, r, string_offset(text, dup_str), "duplicate key");
            if (err)
                re_snprintf(err->key, sizeof(err->key), "%s", dup);
        } else {
            fail(err, r, 0, "out of memory");
        }
        cJSON_Delete(j);
        return r;
    }
    *out = j;
    return 0;
}

int re_json_parse(cJSON **out, struct re_str text, int max_depth, size_t *errpos)
{
    struct re_json_error e;
    int r = re_json_parse_err(out, text, max_depth, &e);
    if (r < 0 && errpos)
        *errpos = e.pos;
    return r;
}

int re_json_print(struct re_buf *out, const cJSON *json)
{
    char *s = cJSON_PrintUnformatted(json);
    int r;
    if (!s)
        return -RE_ENOMEM;
    r = re_buf_append_str(out, s);
    cJSON_free(s);
    return r;
}

static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int re_json_get_string(const char **out, const cJSON *obj, const char *key)
{
    const cJSON *v = member(obj, key);
    if (!v)
        return -RE_ENOENT;
    if (!cJSON_IsString(v))
        return -RE_EINVAL;
    *out = v->valuestring;
    return 0;
}

int re_json_get_int(long long *out, const cJSON *obj, const char *key)
{
    const cJSON *v = member(obj, key);
    if (!v)
        return -RE_ENOENT;
    /* Range first: converting an out-of-range double (1e400, inf) is undefined. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9223372036854775808.0 &&
                                v->valuedouble < 9223372036854775808.0) ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return -RE_EINVAL;
    *out = (long long)v->valuedouble;
    return 0;
}

int re_json_get_bool(bool *out, const cJSON *obj, const char *key)
{
    const cJSON *v = member(obj, key);
    if (!v)
        return -RE_ENOENT;
    if (!cJSON_IsBool(v))
        return -RE_EINVAL;
    *out = cJSON_IsTrue(v);
    return 0;
}

const char *re_json_unknown_key(const cJSON *obj, const char *const *allowed)
{
    const cJSON *it;
    if (!cJSON_IsObject(obj))           /* array items have no names */
        return NULL;
    cJSON_ArrayForEach(it, obj) {
        const char *const *a;
        for (a = allowed; *a; a++)
            if (strcmp(*a, it->string) == 0)
                break;
        if (!*a)
            return it->string;
    }
    return NULL;
}
