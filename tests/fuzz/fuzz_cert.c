/* fuzz_cert.c - CSR and certificate parsing (shared/crypto.c): the hub reads
 * CSRs from anyone holding an enrollment code, and both sides parse
 * certificates they are sent. The first byte picks the entry point; the
 * rest is either raw text or DER that the driver wraps in PEM, so mutations
 * reach the ASN.1 structure rather than the base64.
 *   0 re_csr_verify(text)           1 re_csr_verify(PEM(DER))
 *   2 re_cert_parse(text, PEM)      3 re_cert_parse(DER)
 *   4 re_cert_verify(PEM(DER), CA)  5 re_cert_matches_key(PEM(DER), key) */
#include <string.h>
#include <mbedtls/base64.h>
#include "buf.h"
#include "crypto.h"
#include "error.h"
#include "fuzz.h"

static char *ca_pem, *key_pem;

static void setup(void)
{
    struct re_buf key, crt;
    struct re_cert_spec spec = { .cn = "fuzz CA", .is_ca = true,
                                 .not_before = 1700000000, .not_after = 2000000000 };
    if (ca_pem)
        return;
    re_buf_init(&key, 1 << 16);
    re_buf_init(&crt, 1 << 16);
    FUZZ_CHECK(re_key_generate(&key) == 0);
    FUZZ_CHECK(re_cert_self_signed(&crt, key.ptr, &spec) == 0);
    key_pem = re_buf_steal(&key);
    ca_pem = re_buf_steal(&crt);
}

/* "-----BEGIN <label>-----\n<base64>\n-----END <label>-----\n" into out. */
static int pem_wrap(struct re_buf *out, const char *label, const uint8_t *der, size_t len)
{
    size_t b64len = 0;
    unsigned char *b64;
    int r;
    mbedtls_base64_encode(NULL, 0, &b64len, der, len);
    b64 = malloc(b64len + 1);
    if (!b64)
        return -RE_ENOMEM;
    if (mbedtls_base64_encode(b64, b64len + 1, &b64len, der, len) != 0) {
        free(b64);
        return -RE_EINVAL;
    }
    r = re_buf_printf(out, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; r == 0 && i < b64len; i += 64) {
        size_t n = b64len - i < 64 ? b64len - i : 64;
        if ((r = re_buf_append(out, b64 + i, n)) == 0)
            r = re_buf_append_str(out, "\n");
    }
    if (r == 0)
        r = re_buf_printf(out, "-----END %s-----\n", label);
    free(b64);
    return r;
}

static void check_info(const struct re_cert_info *ci)
{
    FUZZ_CHECK(memchr(ci->subject_cn, '\0', sizeof(ci->subject_cn)));
    FUZZ_CHECK(memchr(ci->issuer_cn, '\0', sizeof(ci->issuer_cn)));
    FUZZ_CHECK(memchr(ci->uri_san, '\0', sizeof(ci->uri_san)));
    FUZZ_CHECK(memchr(ci->serial, '\0', sizeof(ci->serial)));
    FUZZ_CHECK(strlen(ci->fingerprint) == 71 && strncmp(ci->fingerprint, "sha256:", 7) == 0);
    for (const char *p = ci->serial; *p; p++)
        FUZZ_CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    struct re_buf out, pem;
    struct re_cert_info ci;
    unsigned mode = fuzz_byte(&in) % 6;
    int r;

    setup();
    re_buf_init(&out, 1 << 16);
    re_buf_init(&pem, 1 << 20);
    if (mode == 1 || mode >= 4) {
        if (pem_wrap(&pem, mode == 1 ? "CERTIFICATE REQUEST" : "CERTIFICATE", in.p, in.n) < 0)
            goto out;
    } else if (in.n && re_buf_append(&pem, in.p, in.n) < 0) {
        goto out;
    }
    const char *text = pem.ptr ? pem.ptr : "";
    switch (mode) {
    case 0:
    case 1:
        r = re_csr_verify(&out, text, pem.len);
        if (r == 0)
            FUZZ_CHECK(out.len > 0 && strstr(out.ptr, "-----BEGIN PUBLIC KEY-----"));
        else
            FUZZ_CHECK(out.len == 0);
        break;
    case 2:
        memset(&ci, 0, sizeof(ci));
        if (re_cert_parse(&ci, text, pem.len, false) == 0)
            check_info(&ci);
        break;
    case 3:
        memset(&ci, 0, sizeof(ci));
        if (re_cert_parse(&ci, in.p, in.n, true) == 0)
            check_info(&ci);
        break;
    case 4:
        r = re_cert_verify(text, ca_pem, 1800000000);
        FUZZ_CHECK(r <= 0);
        break;
    case 5:
        r = re_cert_matches_key(text, key_pem);
        FUZZ_CHECK(r <= 0);
        break;
    }
out:
    re_buf_release(&out);
    re_buf_release(&pem);
    return 0;
}
