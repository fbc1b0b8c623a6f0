/* fuzz_cgi.c - the CGI header block parser both daemons put in front of git
 * http-backend's answer (shared/cgi.c). Input: the bytes the program wrote.
 * Checks: only the documented codes come back; on success the block ends
 * within the input at a blank line, the status is 200-599 and every header
 * value points inside the block. */
#include <string.h>
#include "cgi.h"
#include "error.h"
#include "fuzz.h"

static void inside(struct re_str v, const char *p, size_t n)
{
    if (v.len)
        FUZZ_CHECK(v.ptr >= p && v.ptr + v.len <= p + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly the input, so ASan sees any read past its end */
    char *text = malloc(size ? size : 1);
    struct re_cgi_head h;
    FUZZ_CHECK(text);
    memcpy(text, data, size);
    int rc = re_cgi_parse_head(&h, text, size, 4096);
    FUZZ_CHECK(rc == 0 || rc == -RE_EAGAIN || rc == -RE_ETOOBIG || rc == -RE_EPARSE);
    if (rc == 0) {
        FUZZ_CHECK(h.head_len >= 1 && h.head_len <= size && h.head_len <= 4096);
        FUZZ_CHECK(text[h.head_len - 1] == '\n');
        FUZZ_CHECK(h.status >= 200 && h.status <= 599);
        inside(h.content_type, text, h.head_len);
        inside(h.cache_control, text, h.head_len);
        inside(h.expires, text, h.head_len);
        inside(h.pragma, text, h.head_len);
    }
    free(text);
    return 0;
}
