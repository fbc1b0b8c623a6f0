/* fuzz_pktline.c - the git request parsers in front of upload-pack
 * (hub/api/git_wants.c): git_wants_parse_v2 or git_wants_parse_v0 on an
 * arbitrary body. Input: first byte's low bit picks the parser (1: v2);
 * the rest is the body. Checks: only the documented codes come back; on
 * success every want is 40 lowercase hex digits inside the body, every
 * want-ref a name inside the body without "..", the counts within
 * GIT_WANTS_MAX; on failure a reason was written. */
#include <string.h>
#include "api/git_wants.h"
#include "error.h"
#include "fuzz.h"

static bool inside(struct re_str s, const uint8_t *p, size_t n)
{
    return (const uint8_t *)s.ptr >= p && (const uint8_t *)s.ptr + s.len <= p + n;
}

static void check_ok(const struct git_wants *r, const uint8_t *p, size_t n)
{
    FUZZ_CHECK(r->n_wants + r->n_want_refs <= GIT_WANTS_MAX);
    for (size_t i = 0; i < r->n_wants; i++) {
        struct re_str w = r->wants[i];
        FUZZ_CHECK(w.len == 40 && inside(w, p, n));
        for (size_t j = 0; j < w.len; j++)
            FUZZ_CHECK((w.ptr[j] >= '0' && w.ptr[j] <= '9') || (w.ptr[j] >= 'a' && w.ptr[j] <= 'f'));
    }
    for (size_t i = 0; i < r->n_want_refs; i++) {
        struct re_str w = r->want_refs[i];
        FUZZ_CHECK(w.len > 0 && inside(w, p, n));
        FUZZ_CHECK(!memmem(w.ptr, w.len, "..", 2));
    }
    if (r->command == GIT_WANTS_EMPTY)
        FUZZ_CHECK(r->n_wants == 0 && r->n_want_refs == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    bool v2 = fuzz_byte(&in) & 1;
    /* a copy of exactly the body, so ASan sees any read past its end */
    uint8_t *body = malloc(in.n ? in.n : 1);
    struct git_wants *r = malloc(sizeof(*r));
    struct re_buf why;
    int rc;

    FUZZ_CHECK(body && r);
    memcpy(body, in.p, in.n);
    re_buf_init(&why, 512);
    struct re_str s = { (const char *)body, in.n };
    rc = v2 ? git_wants_parse_v2(r, s, &why) : git_wants_parse_v0(r, s, &why);
    FUZZ_CHECK(rc == 0 || rc == -RE_EPARSE || rc == -RE_EDENIED);
    if (rc == 0)
        check_ok(r, body, in.n);
    else
        FUZZ_CHECK(why.len > 0);
    re_buf_release(&why);
    free(r);
    free(body);
    return 0;
}
