/* fuzz_json.c - JSON bodies through re_json_parse (shared/json.c), the one
 * door every request body goes through: the nesting limit holds, errors
 * give a position inside the text, and what parses prints and re-parses to
 * the same text. First byte: the depth limit (1..32); the rest: the text. */
#include <string.h>
#include "buf.h"
#include "error.h"
#include "fuzz.h"
#include "json.h"

static int depth_of(const cJSON *j)
{
    int d = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
        int cd = depth_of(c);
        if (cd > d)
            d = cd;
    }
    return (cJSON_IsArray(j) || cJSON_IsObject(j)) ? d + 1 : d;
}

static void getters(const cJSON *j)
{
    static const char *const keys[] = { "name", "groups", "metadata", "csr", "code", NULL };
    const char *s;
    long long i;
    bool b;
    for (const char *const *k = keys; *k; k++) {
        int r1 = re_json_get_string(&s, j, *k);
        int r2 = re_json_get_int(&i, j, *k);
        int r3 = re_json_get_bool(&b, j, *k);
        FUZZ_CHECK(r1 == 0 || r1 == -RE_ENOENT || r1 == -RE_EINVAL);
        FUZZ_CHECK(r2 == 0 || r2 == -RE_ENOENT || r2 == -RE_EINVAL);
        FUZZ_CHECK(r3 == 0 || r3 == -RE_ENOENT || r3 == -RE_EINVAL);
    }
    static const char *const allowed[] = { "name", "groups", NULL };
    (void)re_json_unknown_key(j, allowed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    int max_depth = (int)(fuzz_byte(&in) % RE_JSON_DEFAULT_DEPTH) + 1;
    cJSON *j = NULL, *j2 = NULL;
    struct re_buf p1, p2;
    size_t errpos = (size_t)-1;
    int r;

    re_buf_init(&p1, 8u << 20);
    re_buf_init(&p2, 8u << 20);
    r = re_json_parse(&j, (struct re_str){ (const char *)in.p, in.n }, max_depth, &errpos);
    if (r < 0) {
        FUZZ_CHECK(j == NULL);
        FUZZ_CHECK(r == -RE_EPARSE || r == -RE_EDEPTH || r == -RE_ENOMEM || r == -RE_ETOOBIG);
        if (r == -RE_EPARSE)
            FUZZ_CHECK(errpos <= in.n);
        goto out;
    }
    FUZZ_CHECK(j != NULL);
    FUZZ_CHECK(depth_of(j) <= max_depth);
    getters(j);
    r = re_json_print(&p1, j);
    if (r == -RE_ETOOBIG)
        goto out;
    FUZZ_CHECK(r == 0);
    r = re_json_parse(&j2, re_buf_str(&p1), max_depth, NULL);
    if (r != 0)
        fprintf(stderr, "printed JSON does not parse back (%d): %.200s\n", r, p1.ptr);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(re_json_print(&p2, j2) == 0);
    FUZZ_CHECK(p1.len == p2.len && memcmp(p1.ptr, p2.ptr, p1.len) == 0);
out:
    cJSON_Delete(j);
    cJSON_Delete(j2);
    re_buf_release(&p1);
    re_buf_release(&p2);
    return 0;
}
