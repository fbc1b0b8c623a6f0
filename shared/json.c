/* json.c - cJSON with a nesting limit checked before parsing, and typed getters. */
#include <string.h>
#include "error.h"
#include "json.h"

/* cJSON's own limit is a compile-time 1000; check ours first without
 * allocating, skipping brackets inside strings. */
static int check_depth(struct re_str t, int max_depth, size_t *errpos)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                if (errpos)
                    *errpos = i;
                return -RE_EDEPTH;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;             /* never below 0: "]]][[[" must not buy depth */
        }
    }
    return 0;
}

int re_json_parse(cJSON **out, struct re_str text, int max_depth, size_t *errpos)
{
    const char *end = NULL;
    cJSON *j;
    int r = check_depth(text, max_depth, errpos);
    if (r < 0)
        return r;
    j = cJSON_ParseWithLengthOpts(text.ptr ? text.ptr : "", text.len, &end, 0);
    if (!j) {
        if (errpos)
            *errpos = end && text.ptr ? (size_t)(end - text.ptr) : 0;
        return -RE_EPARSE;
    }
    /* Only white space may follow the value. */
    for (size_t i = (size_t)(end - text.ptr); i < text.len; i++) {
        char c = text.ptr[i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            cJSON_Delete(j);
            if (errpos)
                *errpos = i;
            return -RE_EPARSE;
        }
    }
    *out = j;
    return 0;
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
