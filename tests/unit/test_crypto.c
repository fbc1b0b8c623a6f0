/* test_crypto.c - unit tests for shared/crypto.c: keys, CSRs (including a
 * tampered signature), certificate issuance, parsing, verification, and
 * interoperability with the openssl command line. */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/pem.h>

#include "crypto.h"
#include "error.h"
#include "testlib.h"

#define T0 1700000000LL                 /* 2023-11-14T22:13:20Z */
#define DAY 86400LL
#define SPIFFE "spiffe://resedge/cluster/store-0042"

#define CSR_HDR "-----BEGIN CERTIFICATE REQUEST-----"
#define CSR_FTR "-----END CERTIFICATE REQUEST-----"

static void new_key(struct re_buf *key)
{
    re_buf_init(key, 64 * 1024);
    CHECK_EQ_INT(re_key_generate(key), 0);
    CHECK(strstr(key->ptr, "PRIVATE KEY-----") != NULL);
}

static void pubkey_of(struct re_buf *pub, const char *key)
{
    re_buf_init(pub, 64 * 1024);
    CHECK_EQ_INT(re_key_public_pem(pub, key), 0);
    CHECK(strstr(pub->ptr, "-----BEGIN PUBLIC KEY-----") != NULL);
}

/* A CA and a client leaf for store-0042, valid [T0, T0 + 30d]. */
struct pki {
    struct re_buf ca_key, ca, leaf_key, leaf_pub, leaf;
};

static void make_pki(struct pki *p, int64_t nb, int64_t na)
{
    struct re_cert_spec ca_spec = {
        .cn = "Res-Edge CA", .is_ca = true, .not_before = nb - DAY, .not_after = na + 365 * DAY,
    };
    struct re_cert_spec leaf_spec = {
        .cn = "store-0042", .uri_san = SPIFFE, .client_auth = true,
        .not_before = nb, .not_after = na,
    };
    new_key(&p->ca_key);
    re_buf_init(&p->ca, 64 * 1024);
    CHECK_EQ_INT(re_cert_self_signed(&p->ca, p->ca_key.ptr, &ca_spec), 0);
    new_key(&p->leaf_key);
    pubkey_of(&p->leaf_pub, p->leaf_key.ptr);
    re_buf_init(&p->leaf, 64 * 1024);
    CHECK_EQ_INT(re_cert_issue(&p->leaf, p->ca.ptr, p->ca_key.ptr, p->leaf_pub.ptr, &leaf_spec), 0);
}

static void free_pki(struct pki *p)
{
    re_buf_release(&p->ca_key);
    re_buf_release(&p->ca);
    re_buf_release(&p->leaf_key);
    re_buf_release(&p->leaf_pub);
    re_buf_release(&p->leaf);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

static void read_file(struct re_buf *out, const char *path)
{
    char chunk[4096];
    size_t n;
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    re_buf_init(out, 1 << 20);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        CHECK_EQ_INT(re_buf_append(out, chunk, n), 0);
    fclose(f);
    CHECK(out->ptr != NULL);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    struct re_buf cmd;
    va_list ap;
    int r;
    re_buf_init(&cmd, 4096);
    va_start(ap, fmt);
    CHECK_EQ_INT(re_buf_vprintf(&cmd, fmt, ap), 0);
    va_end(ap);
    r = system(cmd.ptr);
    re_buf_release(&cmd);
    return r;
}

/* CSR PEM -> DER, let edit() change it, DER -> PEM. */
static void edit_csr(struct re_buf *out, const char *csr_pem, void (*edit)(unsigned char *, size_t))
{
    mbedtls_pem_context pem;
    size_t used = 0, olen = 0;
    unsigned char der[4096], text[8192];

    mbedtls_pem_init(&pem);
    CHECK_EQ_INT(mbedtls_pem_read_buffer(&pem, CSR_HDR, CSR_FTR, (const unsigned char *)csr_pem,
                                         NULL, 0, &used), 0);
    CHECK(pem.buflen <= sizeof(der));
    memcpy(der, pem.buf, pem.buflen);
    edit(der, pem.buflen);
    CHECK_EQ_INT(mbedtls_pem_write_buffer(CSR_HDR "\n", CSR_FTR "\n", der, pem.buflen, text,
                                          sizeof(text), &olen), 0);
    re_buf_init(out, 64 * 1024);
    CHECK_EQ_INT(re_buf_append_str(out, (const char *)text), 0);
    mbedtls_pem_free(&pem);
}

/* The DER ends with the signature BIT STRING: its last byte is the last
 * byte of the ECDSA 's' INTEGER, so the CSR still parses. */
static void flip_last_byte(unsigned char *der, size_t len)
{
    der[len - 1] ^= 0x01;
}

/* Changes the subject CN inside the signed CertificationRequestInfo. */
static void rename_subject(unsigned char *der, size_t len)
{
    for (size_t i = 0; i + 10 <= len; i++)
        if (memcmp(der + i, "store-0042", 10) == 0) {
            der[i + 9] = '3';
            return;
        }
    CHECK(!"subject not found in CSR");
}

static void test_key_csr_roundtrip(void)
{
    struct re_buf key, csr, pub, pub2;
    new_key(&key);
    re_buf_init(&csr, 64 * 1024);
    CHECK_EQ_INT(re_csr_create(&csr, key.ptr, "store-0042", SPIFFE), 0);
    CHECK(strstr(csr.ptr, CSR_HDR) != NULL);
    re_buf_init(&pub, 64 * 1024);
    CHECK_EQ_INT(re_csr_verify(&pub, csr.ptr, csr.len), 0);
    /* the CSR carries exactly the key it was made with */
    pubkey_of(&pub2, key.ptr);
    CHECK_EQ_STR(pub.ptr, pub2.ptr);
    /* also without a URI SAN, and with the length counting the NUL */
    re_buf_reset(&csr);
    re_buf_reset(&pub);
    CHECK_EQ_INT(re_csr_create(&csr, key.ptr, "store, with comma", NULL), 0);
    CHECK_EQ_INT(re_csr_verify(&pub, csr.ptr, csr.len + 1), 0);
    CHECK_EQ_STR(pub.ptr, pub2.ptr);
    /* bad arguments */
    CHECK_EQ_INT(re_csr_create(&csr, key.ptr, "", NULL), -RE_EINVAL);
    CHECK_EQ_INT(re_csr_create(&csr, key.ptr, "a\nb", NULL), -RE_EINVAL);
    CHECK_EQ_INT(re_csr_create(&csr, "not a key", "x", NULL), -RE_EPARSE);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&pub);
    re_buf_release(&pub2);
}

static void test_csr_tampered_signature(void)
{
    struct re_buf key, csr, bad, pub;
    new_key(&key);
    re_buf_init(&csr, 64 * 1024);
    CHECK_EQ_INT(re_csr_create(&csr, key.ptr, "store-0042", SPIFFE), 0);
    edit_csr(&bad, csr.ptr, flip_last_byte);
    CHECK(strcmp(bad.ptr, csr.ptr) != 0);
    re_buf_init(&pub, 64 * 1024);
    CHECK_EQ_INT(re_csr_verify(&pub, bad.ptr, bad.len), -RE_EBADSIG);
    CHECK_EQ_INT(pub.len, 0);    /* nothing written on failure */
    re_buf_release(&bad);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&pub);
}

static void test_csr_tampered_subject(void)
{
    struct re_buf key, csr, bad, pub;
    new_key(&key);
    re_buf_init(&csr, 64 * 1024);
    CHECK_EQ_INT(re_csr_create(&csr, key.ptr, "store-0042", NULL), 0);
    edit_csr(&bad, csr.ptr, rename_subject);
    re_buf_init(&pub, 64 * 1024);
    CHECK_EQ_INT(re_csr_verify(&pub, bad.ptr, bad.len), -RE_EBADSIG);
    re_buf_release(&bad);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&pub);
}

static void test_csr_malformed(void)
{
    static const char garbage[] = "-----BEGIN CERTIFICATE REQUEST-----\n"
                                   "bm90IGEgY3NyIGF0IGFsbA==\n"
                                   "-----END CERTIFICATE REQUEST-----\n";
    static const char not_b64[] = "-----BEGIN CERTIFICATE REQUEST-----\n"
                                  "@@@@ this is not base64 @@@@\n"
                                  "-----END CERTIFICATE REQUEST-----\n";
    struct re_buf pub, key, csr;
    re_buf_init(&pub, 64 * 1024);
    CHECK_EQ_INT(re_csr_verify(&pub, garbage, strlen(garbage)), -RE_EPARSE);
    CHECK_EQ_INT(re_csr_verify(&pub, not_b64, strlen(not_b64)), -RE_EPARSE);
    CHECK_EQ_INT(re_csr_verify(&pub, "hello", 5), -RE_EPARSE);
    CHECK_EQ_INT(re_csr_verify(&pub, "", 0), -RE_EPARSE);
    /* a truncated real CSR */
    new_key(&key);
    re_buf_init(&csr, 64 * 1024);
    CHECK_EQ_INT(re_csr_create(&csr, key.ptr, "store-0042", NULL), 0);
    CHECK_EQ_INT(re_csr_verify(&pub, csr.ptr, csr.len / 2), -RE_EPARSE);
    CHECK_EQ_INT(pub.len, 0);
    re_buf_release(&pub);
    re_buf_release(&key);
    re_buf_release(&csr);
}

static void test_csr_oversized(void)
{
    struct re_buf pub, big;
    re_buf_init(&big, RE_PEM_MAX + 16);
    CHECK_EQ_INT(re_buf_append_str(&big, CSR_HDR "\n"), 0);
    while (big.len <= RE_PEM_MAX)
        CHECK_EQ_INT(re_buf_append_str(&big, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n"), 0);
    re_buf_init(&pub, 64 * 1024);
    CHECK_EQ_INT(re_csr_verify(&pub, big.ptr, big.len), -RE_ETOOBIG);
    re_buf_release(&pub);
    re_buf_release(&big);
}

static void test_csr_unsupported_key(void)
{
    const char *dir = test_tmpdir();
    char path[512];
    struct re_buf csr, pub;

    /* P-384 and RSA CSRs made by openssl are well-formed but refused */
    CHECK_EQ_INT(run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes "
                     "-subj /CN=x -keyout %s/k384.pem -out %s/p384.csr 2>/dev/null",
                     dir, dir), 0);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/p384.csr", dir), 0);
    read_file(&csr, path);
    re_buf_init(&pub, 64 * 1024);
    CHECK_EQ_INT(re_csr_verify(&pub, csr.ptr, csr.len), -RE_EUNSUPP);
    re_buf_release(&csr);

    CHECK_EQ_INT(run("openssl req -new -newkey rsa:2048 -nodes -subj /CN=x "
                     "-keyout %s/rsa.pem -out %s/rsa.csr 2>/dev/null", dir, dir), 0);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/rsa.csr", dir), 0);
    read_file(&csr, path);
    CHECK_EQ_INT(re_csr_verify(&pub, csr.ptr, csr.len), -RE_EUNSUPP);
    re_buf_release(&csr);

    /* ... while an openssl P-256 CSR verifies */
    CHECK_EQ_INT(run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                     "-subj /CN=x -keyout %s/k256.pem -out %s/p256.csr 2>/dev/null",
                     dir, dir), 0);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/p256.csr", dir), 0);
    read_file(&csr, path);
    CHECK_EQ_INT(re_csr_verify(&pub, csr.ptr, csr.len), 0);
    re_buf_release(&csr);
    re_buf_release(&pub);
}

static void test_cert_issue_parse(void)
{
    struct pki p;
    struct re_cert_info ca, leaf, leaf_der;
    mbedtls_pem_context pem;
    size_t used;
    uint8_t digest[32];
    char hex[65];

    make_pki(&p, T0, T0 + 30 * DAY);
    CHECK_EQ_INT(re_cert_parse(&ca, p.ca.ptr, p.ca.len, false), 0);
    CHECK_EQ_STR(ca.subject_cn, "Res-Edge CA");
    CHECK_EQ_STR(ca.issuer_cn, "Res-Edge CA");
    CHECK_EQ_STR(ca.uri_san, "");
    CHECK(ca.is_ca);
    CHECK_EQ_INT(ca.not_before, T0 - DAY);
    CHECK_EQ_INT(ca.not_after, T0 + 30 * DAY + 365 * DAY);

    CHECK_EQ_INT(re_cert_parse(&leaf, p.leaf.ptr, p.leaf.len, false), 0);
    CHECK_EQ_STR(leaf.subject_cn, "store-0042");
    CHECK_EQ_STR(leaf.issuer_cn, "Res-Edge CA");
    CHECK_EQ_STR(leaf.uri_san, SPIFFE);
    CHECK(!leaf.is_ca);
    CHECK_EQ_INT(leaf.not_before, T0);
    CHECK_EQ_INT(leaf.not_after, T0 + 30 * DAY);
    /* 127-bit positive serial: 16 bytes, top bit clear */
    CHECK_EQ_INT(strlen(leaf.serial), 32);
    CHECK(strchr("01234567", leaf.serial[0]) != NULL);
    CHECK(strncmp(leaf.serial, "00", 2) != 0);
    CHECK(strcmp(leaf.serial, ca.serial) != 0);

    /* fingerprint is SHA-256 over the DER; DER parses to the same info */
    mbedtls_pem_init(&pem);
    CHECK_EQ_INT(mbedtls_pem_read_buffer(&pem, "-----BEGIN CERTIFICATE-----",
                                         "-----END CERTIFICATE-----",
                                         (const unsigned char *)p.leaf.ptr, NULL, 0, &used), 0);
    re_sha256(digest, pem.buf, pem.buflen);
    re_hex(hex, digest, 32);
    CHECK(strncmp(leaf.fingerprint, "sha256:", 7) == 0);
    CHECK_EQ_STR(leaf.fingerprint + 7, hex);
    CHECK_EQ_INT(re_cert_parse(&leaf_der, pem.buf, pem.buflen, true), 0);
    CHECK_EQ_STR(leaf_der.fingerprint, leaf.fingerprint);
    CHECK_EQ_STR(leaf_der.serial, leaf.serial);
    CHECK_EQ_STR(leaf_der.uri_san, SPIFFE);
    mbedtls_pem_free(&pem);

    /* garbage and oversize */
    CHECK_EQ_INT(re_cert_parse(&leaf, "nope", 4, false), -RE_EPARSE);
    CHECK_EQ_INT(re_cert_parse(&leaf, "nope", 4, true), -RE_EPARSE);
    CHECK_EQ_INT(re_cert_parse(&leaf, p.leaf.ptr, RE_PEM_MAX + 1, false), -RE_ETOOBIG);
    free_pki(&p);
}

static void test_cert_bad_spec(void)
{
    struct re_buf key, out, pub;
    const char *bad_ip[] = { "not-an-ip", NULL };
    struct re_cert_spec s = { .cn = "x", .not_before = T0, .not_after = T0 };
    new_key(&key);
    pubkey_of(&pub, key.ptr);
    re_buf_init(&out, 64 * 1024);
    CHECK_EQ_INT(re_cert_self_signed(&out, key.ptr, &s), -RE_EINVAL);   /* empty validity */
    s.not_after = T0 + DAY;
    s.cn = "";
    CHECK_EQ_INT(re_cert_self_signed(&out, key.ptr, &s), -RE_EINVAL);
    s.cn = "x";
    s.ip_sans = bad_ip;
    CHECK_EQ_INT(re_cert_self_signed(&out, key.ptr, &s), -RE_EINVAL);
    s.ip_sans = NULL;
    /* a leaf (not a CA) cannot issue */
    CHECK_EQ_INT(re_cert_self_signed(&out, key.ptr, &s), 0);
    struct re_buf leaf;
    re_buf_init(&leaf, 64 * 1024);
    CHECK_EQ_INT(re_cert_issue(&leaf, out.ptr, key.ptr, pub.ptr, &s), -RE_EINVAL);
    re_buf_release(&leaf);
    re_buf_release(&key);
    re_buf_release(&pub);
    re_buf_release(&out);
}

/* A loaded CA issues the same kind of certificate as re_cert_issue, refuses
 * a mismatched key or a non-CA at load, and survives many issuances. */
static void test_ca_loaded(void)
{
    struct pki p;
    struct re_buf other, out;
    struct re_cert_info info;
    struct re_ca *ca = NULL;
    struct re_cert_spec s = { .cn = "store-0042", .uri_san = SPIFFE, .client_auth = true,
                              .not_before = T0, .not_after = T0 + DAY };
    make_pki(&p, T0, T0 + DAY);
    new_key(&other);
    re_buf_init(&out, 64 * 1024);
    CHECK_EQ_INT(re_ca_load(&ca, p.ca.ptr, other.ptr), -RE_EINVAL);
    CHECK(ca == NULL);
    CHECK_EQ_INT(re_ca_load(&ca, p.leaf.ptr, p.leaf_key.ptr), -RE_EINVAL);
    CHECK(ca == NULL);
    CHECK(re_ca_load(&ca, "junk", p.ca_key.ptr) < 0);
    CHECK(re_ca_issue(&out, NULL, p.leaf_pub.ptr, &s) < 0);
    CHECK_EQ_INT(re_ca_load(&ca, p.ca.ptr, p.ca_key.ptr), 0);
    for (int i = 0; i < 3; i++) {
        re_buf_reset(&out);
        CHECK_EQ_INT(re_ca_issue(&out, ca, p.leaf_pub.ptr, &s), 0);
        CHECK_EQ_INT(re_cert_verify(out.ptr, p.ca.ptr, T0 + 60), 0);
        CHECK_EQ_INT(re_cert_parse(&info, out.ptr, out.len, false), 0);
        CHECK_EQ_STR(info.subject_cn, "store-0042");
        CHECK_EQ_STR(info.issuer_cn, "Res-Edge CA");
        CHECK_EQ_STR(info.uri_san, SPIFFE);
        CHECK(!info.is_ca);
    }
    /* bad spec and bad subject key are refused as by re_cert_issue */
    re_buf_reset(&out);
    s.not_after = s.not_before;
    CHECK_EQ_INT(re_ca_issue(&out, ca, p.leaf_pub.ptr, &s), -RE_EINVAL);
    s.not_after = T0 + DAY;
    CHECK(re_ca_issue(&out, ca, "not a key", &s) < 0);
    CHECK_EQ_INT(out.len, 0);
    re_ca_free(ca);
    re_ca_free(NULL);
    re_buf_release(&other);
    re_buf_release(&out);
    free_pki(&p);
}

static void test_cert_ca_key_mismatch(void)
{
    struct pki p;
    struct re_buf other, out;
    struct re_cert_spec s = { .cn = "x", .client_auth = true, .not_before = T0, .not_after = T0 + DAY };
    make_pki(&p, T0, T0 + DAY);
    new_key(&other);
    re_buf_init(&out, 64 * 1024);
    CHECK_EQ_INT(re_cert_issue(&out, p.ca.ptr, other.ptr, p.leaf_pub.ptr, &s), -RE_EINVAL);
    CHECK_EQ_INT(out.len, 0);
    re_buf_release(&other);
    re_buf_release(&out);
    free_pki(&p);
}

static void test_cert_verify(void)
{
    struct pki p, q;
    make_pki(&p, T0, T0 + 30 * DAY);
    make_pki(&q, T0, T0 + 30 * DAY);
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, p.ca.ptr, T0 + DAY), 0);
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, p.ca.ptr, T0), 0);
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, p.ca.ptr, T0 + 30 * DAY), 0);
    /* another CA with the very same name does not vouch for it */
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, q.ca.ptr, T0 + DAY), -RE_EBADSIG);
    CHECK_EQ_INT(re_cert_verify(q.leaf.ptr, p.ca.ptr, T0 + DAY), -RE_EBADSIG);
    /* a bundle holding both CAs trusts both */
    struct re_buf bundle;
    re_buf_init(&bundle, 1 << 20);
    CHECK_EQ_INT(re_buf_append_str(&bundle, q.ca.ptr), 0);
    CHECK_EQ_INT(re_buf_append_str(&bundle, p.ca.ptr), 0);
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, bundle.ptr, T0 + DAY), 0);
    CHECK_EQ_INT(re_cert_verify(q.leaf.ptr, bundle.ptr, T0 + DAY), 0);
    re_buf_release(&bundle);
    /* the stubbed clock decides validity, not the machine's */
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, p.ca.ptr, T0 + 30 * DAY + 1), -RE_EEXPIRED);
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, p.ca.ptr, T0 - 1), -RE_EEXPIRED);
    /* a leaf is not a trust anchor for itself */
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, p.leaf.ptr, T0 + DAY), -RE_EBADSIG);
    CHECK_EQ_INT(re_cert_verify("junk", p.ca.ptr, T0), -RE_EPARSE);
    free_pki(&p);
    free_pki(&q);
}

static void test_cert_verify_now(void)
{
    struct pki p;
    int64_t now = (int64_t)time(NULL);
    make_pki(&p, now - 300, now + 30 * DAY);
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, p.ca.ptr, now), 0);
    CHECK_EQ_INT(re_cert_verify(p.leaf.ptr, p.ca.ptr, now + 31 * DAY), -RE_EEXPIRED);
    free_pki(&p);
}

static void test_cert_matches_key(void)
{
    struct pki p;
    struct re_buf other;
    make_pki(&p, T0, T0 + DAY);
    new_key(&other);
    CHECK_EQ_INT(re_cert_matches_key(p.leaf.ptr, p.leaf_key.ptr), 0);
    CHECK_EQ_INT(re_cert_matches_key(p.ca.ptr, p.ca_key.ptr), 0);
    CHECK_EQ_INT(re_cert_matches_key(p.leaf.ptr, p.ca_key.ptr), -RE_EINVAL);
    CHECK_EQ_INT(re_cert_matches_key(p.leaf.ptr, other.ptr), -RE_EINVAL);
    CHECK_EQ_INT(re_cert_matches_key("junk", other.ptr), -RE_EPARSE);
    re_buf_release(&other);
    free_pki(&p);
}

static void test_openssl_interop(void)
{
    const char *dir = test_tmpdir();
    char path[512];
    struct pki p;
    struct re_buf text, srv_key, srv_pub, srv;
    int64_t now = (int64_t)time(NULL);
    const char *dns[] = { "localhost", "hub.example.com", NULL };
    const char *ips[] = { "127.0.0.1", "::1", NULL };
    struct re_cert_spec srv_spec = {
        .cn = "hub", .dns_sans = dns, .ip_sans = ips, .server_auth = true,
        .not_before = now - 300, .not_after = now + 365 * DAY,
    };

    make_pki(&p, now - 300, now + 30 * DAY);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/ca.pem", dir), 0);
    write_file(path, p.ca.ptr);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/leaf.pem", dir), 0);
    write_file(path, p.leaf.ptr);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/leaf.key", dir), 0);
    write_file(path, p.leaf_key.ptr);

    CHECK_EQ_INT(run("openssl verify -CAfile %s/ca.pem %s/leaf.pem >/dev/null", dir, dir), 0);
    CHECK_EQ_INT(run("openssl verify -purpose sslclient -CAfile %s/ca.pem %s/leaf.pem >/dev/null",
                     dir, dir), 0);
    /* client-only: not good for a server */
    CHECK(run("openssl verify -purpose sslserver -CAfile %s/ca.pem %s/leaf.pem >/dev/null 2>&1",
              dir, dir) != 0);
    /* the key openssl reads is the certificate's key */
    CHECK_EQ_INT(run("test \"$(openssl x509 -noout -pubkey -in %s/leaf.pem)\" = "
                     "\"$(openssl pkey -pubout -in %s/leaf.key)\"", dir, dir), 0);

    CHECK_EQ_INT(run("openssl x509 -noout -text -in %s/leaf.pem > %s/leaf.txt", dir, dir), 0);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/leaf.txt", dir), 0);
    read_file(&text, path);
    CHECK(strstr(text.ptr, "CA:FALSE") != NULL);
    CHECK(strstr(text.ptr, "TLS Web Client Authentication") != NULL);
    CHECK(strstr(text.ptr, "TLS Web Server Authentication") == NULL);
    CHECK(strstr(text.ptr, "URI:" SPIFFE) != NULL);
    CHECK(strstr(text.ptr, "Subject: CN = store-0042") != NULL);
    CHECK(strstr(text.ptr, "Issuer: CN = Res-Edge CA") != NULL);
    CHECK(strstr(text.ptr, "Digital Signature") != NULL);
    CHECK(strstr(text.ptr, "X509v3 Authority Key Identifier") != NULL);
    CHECK(strstr(text.ptr, "X509v3 Subject Key Identifier") != NULL);
    CHECK(strstr(text.ptr, "ecdsa-with-SHA256") != NULL);
    CHECK(strstr(text.ptr, "prime256v1") != NULL);
    re_buf_release(&text);

    CHECK_EQ_INT(run("openssl x509 -noout -text -in %s/ca.pem > %s/ca.txt", dir, dir), 0);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/ca.txt", dir), 0);
    read_file(&text, path);
    CHECK(strstr(text.ptr, "CA:TRUE") != NULL);
    CHECK(strstr(text.ptr, "Certificate Sign, CRL Sign") != NULL);
    re_buf_release(&text);

    /* fingerprint agrees with openssl's */
    struct re_cert_info info;
    CHECK_EQ_INT(re_cert_parse(&info, p.leaf.ptr, p.leaf.len, false), 0);
    CHECK_EQ_INT(run("openssl x509 -noout -fingerprint -sha256 -in %s/leaf.pem "
                     "| tr -d : | tr A-F a-f | sed 's/^.*=/sha256:/' > %s/fp.txt", dir, dir), 0);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/fp.txt", dir), 0);
    read_file(&text, path);
    CHECK(strncmp(text.ptr, info.fingerprint, strlen(info.fingerprint)) == 0);
    re_buf_release(&text);

    /* a server certificate with DNS and IP SANs */
    new_key(&srv_key);
    pubkey_of(&srv_pub, srv_key.ptr);
    re_buf_init(&srv, 64 * 1024);
    CHECK_EQ_INT(re_cert_issue(&srv, p.ca.ptr, p.ca_key.ptr, srv_pub.ptr, &srv_spec), 0);
    CHECK_EQ_INT(re_snprintf(path, sizeof(path), "%s/srv.pem", dir), 0);
    write_file(path, srv.ptr);
    CHECK_EQ_INT(run("openssl verify -purpose sslserver -verify_hostname localhost "
                     "-verify_ip 127.0.0.1 -CAfile %s/ca.pem %s/srv.pem >/dev/null", dir, dir), 0);
    CHECK_EQ_INT(run("openssl verify -verify_ip ::1 -verify_hostname hub.example.com "
                     "-CAfile %s/ca.pem %s/srv.pem >/dev/null", dir, dir), 0);
    CHECK(run("openssl verify -verify_hostname evil.example.com "
              "-CAfile %s/ca.pem %s/srv.pem >/dev/null 2>&1", dir, dir) != 0);
    CHECK_EQ_INT(re_cert_verify(srv.ptr, p.ca.ptr, now), 0);
    re_buf_release(&srv);
    re_buf_release(&srv_pub);
    re_buf_release(&srv_key);
    free_pki(&p);
}

static void test_hash_hex_random(void)
{
    uint8_t d[32], a[32], b[32];
    char hex[65];
    re_sha256(d, "abc", 3);
    re_hex(hex, d, 32);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    re_hex(hex, (const uint8_t *)"\x00\x0f\xf0", 3);
    CHECK_EQ_STR(hex, "000ff0");
    CHECK_EQ_INT(re_random(a, sizeof(a)), 0);
    CHECK_EQ_INT(re_random(b, sizeof(b)), 0);
    CHECK(!re_consttime_eq(a, b, sizeof(a)));
    CHECK(re_consttime_eq(a, a, sizeof(a)));
    CHECK(re_consttime_eq("x", "y", 0));
    CHECK(!re_consttime_eq("abcd", "abce", 4));
    /* requests larger than one CTR_DRBG call */
    static uint8_t big[5000];
    CHECK_EQ_INT(re_random(big, sizeof(big)), 0);
}

static void *thread_work(void *arg)
{
    struct re_buf key, csr, pub;
    int *ok = arg;
    *ok = 0;
    for (int i = 0; i < 5; i++) {
        re_buf_init(&key, 64 * 1024);
        re_buf_init(&csr, 64 * 1024);
        re_buf_init(&pub, 64 * 1024);
        if (re_key_generate(&key) == 0 && re_csr_create(&csr, key.ptr, "t", NULL) == 0 &&
            re_csr_verify(&pub, csr.ptr, csr.len) == 0)
            (*ok)++;
        re_buf_release(&key);
        re_buf_release(&csr);
        re_buf_release(&pub);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[4];
    int ok[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, thread_work, &ok[i]), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
        CHECK_EQ_INT(ok[i], 5);
    }
}

TEST_MAIN(T(test_key_csr_roundtrip), T(test_csr_tampered_signature), T(test_csr_tampered_subject),
          T(test_csr_malformed), T(test_csr_oversized), T(test_csr_unsupported_key),
          T(test_cert_issue_parse), T(test_cert_bad_spec), T(test_cert_ca_key_mismatch), T(test_ca_loaded),
          T(test_cert_verify), T(test_cert_verify_now), T(test_cert_matches_key),
          T(test_openssl_interop), T(test_hash_hex_random), T(test_threads))
