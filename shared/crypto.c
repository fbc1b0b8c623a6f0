/* crypto.c - keys, CSRs and certificates on mbedTLS 2.28: ECDSA P-256 keys,
 * CSR proof-of-possession checks, certificate issuance and parsing. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "crypto.h"
#include "error.h"

#define PEM_OUT_MAX   16384          /* one key, CSR or certificate as PEM */
#define EXT_MAX       8192           /* one encoded extension (SANs) */
#define CN_MAX        64             /* RFC 5280 ub-common-name */
#define SAN_MAX       255            /* one URI or DNS SAN */

/* ---- the process-wide random generator ---- */

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static mbedtls_entropy_context rng_entropy;
static mbedtls_ctr_drbg_context rng_drbg;
static bool rng_ready;
static pid_t rng_pid;

static int rng_seed_locked(void)
{
    static const unsigned char pers[] = "resedge-crypto";
    pid_t pid = getpid();

    if (rng_ready && rng_pid == pid)
        return 0;
    if (rng_ready) {
        /* a forked child must not replay its parent's random stream */
        if (mbedtls_ctr_drbg_reseed(&rng_drbg, (const unsigned char *)&pid, sizeof(pid)) != 0)
            return -RE_ECRYPTO;
        rng_pid = pid;
        return 0;
    }
    mbedtls_entropy_init(&rng_entropy);
    mbedtls_ctr_drbg_init(&rng_drbg);
    if (mbedtls_ctr_drbg_seed(&rng_drbg, mbedtls_entropy_func, &rng_entropy,
                              pers, sizeof(pers) - 1) != 0) {
        mbedtls_ctr_drbg_free(&rng_drbg);
        mbedtls_entropy_free(&rng_entropy);
        return -RE_ECRYPTO;
    }
    rng_ready = true;
    rng_pid = pid;
    return 0;
}

int re_crypto_rng(void *unused, unsigned char *out, size_t len)
{
    int ret = 0;

    (void)unused;
    pthread_mutex_lock(&rng_lock);
    if (rng_seed_locked() < 0) {
        ret = MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
        goto out;
    }
    while (len > 0) {
        size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        ret = mbedtls_ctr_drbg_random(&rng_drbg, out, n);
        if (ret != 0)
            goto out;
        out += n;
        len -= n;
    }
out:
    pthread_mutex_unlock(&rng_lock);
    return ret;
}

int re_random(void *buf, size_t len)
{
    return re_crypto_rng(NULL, buf, len) == 0 ? 0 : -RE_ECRYPTO;
}

/* ---- small helpers ---- */

static int map_err(int mbed)
{
    switch (mbed) {
    case MBEDTLS_ERR_X509_ALLOC_FAILED:
    case MBEDTLS_ERR_PK_ALLOC_FAILED:
    case MBEDTLS_ERR_ASN1_ALLOC_FAILED:
    case MBEDTLS_ERR_MPI_ALLOC_FAILED:
    case MBEDTLS_ERR_ECP_ALLOC_FAILED:
        return -RE_ENOMEM;
    case MBEDTLS_ERR_ASN1_BUF_TOO_SMALL:
    case MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL:
        return -RE_ETOOBIG;
    default:
        return -RE_ECRYPTO;
    }
}

void re_sha256(uint8_t out[32], const void *data, size_t len)
{
    /* cannot fail with the software implementation */
    (void)mbedtls_sha256_ret(data, len, out, 0);
}

void re_hex(char *out, const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

bool re_consttime_eq(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

/* Printable ASCII without spaces or controls, 1..max bytes. */
static bool text_ok(const char *s, size_t max, bool allow_space)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= max || c < 0x20 || c == 0x7f || (!allow_space && c == ' '))
            return false;
    }
    return n > 0;
}

/* PEM text must be NUL-terminated for mbedTLS and counted with its NUL. */
static int pem_len(size_t *out, const char *pem)
{
    size_t n;
    if (!pem)
        return -RE_EINVAL;
    n = strnlen(pem, RE_PEM_MAX + 1);
    if (n > RE_PEM_MAX)
        return -RE_ETOOBIG;
    *out = n + 1;
    return 0;
}

static bool is_p256(const mbedtls_pk_context *pk)
{
    return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
           mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

static int parse_private_key(mbedtls_pk_context *pk, const char *key_pem)
{
    size_t n;
    int r = pem_len(&n, key_pem);
    if (r < 0)
        return r;
    if (mbedtls_pk_parse_key(pk, (const unsigned char *)key_pem, n, NULL, 0) != 0)
        return -RE_EPARSE;
    return is_p256(pk) ? 0 : -RE_EUNSUPP;
}

static int parse_cert(mbedtls_x509_crt *crt, const char *pem)
{
    size_t n;
    int r = pem_len(&n, pem);
    if (r < 0)
        return r;
    return mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, n) == 0 ? 0 : -RE_EPARSE;
}

/* Appends NUL-terminated text from a scratch buffer to out; wipes the scratch. */
static int emit(struct re_buf *out, unsigned char *scratch, size_t size)
{
    int r = re_buf_append_str(out, (const char *)scratch);
    mbedtls_platform_zeroize(scratch, size);
    return r;
}

/* Sets a single "CN=<cn>" as the name list head (UTF8String, no DN parsing). */
static int set_cn(mbedtls_asn1_named_data **head, const char *cn)
{
    mbedtls_asn1_named_data *nd;
    nd = mbedtls_asn1_store_named_data(head, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN),
                                       (const unsigned char *)cn, strlen(cn));
    if (!nd)
        return -RE_ENOMEM;
    nd->val.tag = MBEDTLS_ASN1_UTF8_STRING;
    return 0;
}

/* Copies a parsed name (the CA's subject) into a writer's list, keeping order
 * and string types, so the issuer field is byte-for-byte the CA's subject. */
static int copy_name(mbedtls_asn1_named_data **head, const mbedtls_x509_name *src)
{
    for (const mbedtls_x509_name *s = src; s; s = s->next) {
        mbedtls_asn1_named_data *nd = calloc(1, sizeof(*nd));
        if (!nd)
            return -RE_ENOMEM;
        nd->oid.p = malloc(s->oid.len ? s->oid.len : 1);
        nd->val.p = malloc(s->val.len ? s->val.len : 1);
        /* the writer emits the head last: prepending keeps DER order */
        nd->next = *head;
        *head = nd;
        if (!nd->oid.p || !nd->val.p)
            return -RE_ENOMEM;
        memcpy(nd->oid.p, s->oid.p, s->oid.len);
        nd->oid.len = s->oid.len;
        nd->oid.tag = s->oid.tag;
        memcpy(nd->val.p, s->val.p, s->val.len);
        nd->val.len = s->val.len;
        nd->val.tag = s->val.tag;
    }
    return 0;
}

static size_t list_count(const char *const *list)
{
    size_t n = 0;
    while (list && list[n])
        n++;
    return n;
}

/* One GeneralName: [tag] IMPLICIT with raw content, written backwards. */
static int write_general_name(unsigned char **p, unsigned char *start, unsigned char tag,
                              const unsigned char *data, size_t dlen)
{
    int ret;
    size_t len = 0;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, data, dlen));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, dlen));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, tag));
    return (int)len;
}

/* Closes a SEQUENCE whose len content bytes were written (backwards) just
 * before *p: its length and tag go in front; *out_len is the whole. */
static int end_sequence(size_t *out_len, unsigned char **p, unsigned char *buf, size_t len)
{
    int ret;
    if ((ret = mbedtls_asn1_write_len(p, buf, len)) < 0)
        return map_err(ret);
    len += (size_t)ret;
    if ((ret = mbedtls_asn1_write_tag(p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
        return map_err(ret);
    *out_len = len + (size_t)ret;
    return 0;
}

/* SubjectAltName ::= GeneralNames, in order URI, DNS..., IP...; *out_len 0
 * when there is nothing to encode. The value ends at buf + size. */
static int encode_sans(size_t *out_len, unsigned char *buf, size_t size, const char *uri,
                       const char *const *dns, const char *const *ips)
{
    unsigned char *p = buf + size;
    size_t len = 0;
    int ret;

    for (size_t i = list_count(ips); i-- > 0;) {
        unsigned char addr[16];
        size_t alen;
        /* ips is never NULL here: list_count(NULL) is 0, so the loop does not run. */
        /* cppcheck-suppress nullPointer */
        if (inet_pton(AF_INET, ips[i], addr) == 1)
            alen = 4;
        else if (inet_pton(AF_INET6, ips[i], addr) == 1)
            alen = 16;
        else
            return -RE_EINVAL;
        ret = write_general_name(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7, addr, alen);
        if (ret < 0)
            return map_err(ret);
        len += (size_t)ret;
    }
    for (size_t i = list_count(dns); i-- > 0;) {
        if (!text_ok(dns[i], SAN_MAX, false))
            return -RE_EINVAL;
        ret = write_general_name(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2,
                                 (const unsigned char *)dns[i], strlen(dns[i]));
        if (ret < 0)
            return map_err(ret);
        len += (size_t)ret;
    }
    if (uri) {
        if (!text_ok(uri, SAN_MAX, false))
            return -RE_EINVAL;
        ret = write_general_name(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6,
                                 (const unsigned char *)uri, strlen(uri));
        if (ret < 0)
            return map_err(ret);
        len += (size_t)ret;
    }
    if (len == 0) {
        *out_len = 0;
        return 0;
    }
    return end_sequence(out_len, &p, buf, len);
}

/* ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId */
static int encode_eku(size_t *out_len, unsigned char *buf, size_t size, bool server, bool client)
{
    unsigned char *p = buf + size;
    size_t len = 0;
    int ret;

    if (client) {
        if ((ret = mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_CLIENT_AUTH,
                                          MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH))) < 0)
            return map_err(ret);
        len += (size_t)ret;
    }
    if (server) {
        if ((ret = mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH,
                                          MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))) < 0)
            return map_err(ret);
        len += (size_t)ret;
    }
    return end_sequence(out_len, &p, buf, len);
}

/* "YYYYMMDDhhmmss" in UTC, as mbedtls_x509write_crt_set_validity wants. */
static int format_time(char out[16], int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t < 0 || !gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999)
        return -RE_EINVAL;
    return re_snprintf(out, 16, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int64_t x509_time_to_epoch(const mbedtls_x509_time *t)
{
    struct tm tm = {
        .tm_year = t->year - 1900,
        .tm_mon = t->mon - 1,
        .tm_mday = t->day,
        .tm_hour = t->hour,
        .tm_min = t->min,
        .tm_sec = t->sec,
    };
    return (int64_t)timegm(&tm);
}

/* ---- keys and CSRs ---- */

int re_key_generate(struct re_buf *out)
{
    mbedtls_pk_context pk;
    unsigned char *pem = NULL;
    int r;

    mbedtls_pk_init(&pk);
    if (!(pem = calloc(1, PEM_OUT_MAX))) {
        r = -RE_ENOMEM;
        goto out;
    }
    if ((r = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) != 0 ||
        (r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), re_crypto_rng, NULL)) != 0 ||
        (r = mbedtls_pk_write_key_pem(&pk, pem, PEM_OUT_MAX)) != 0) {
        r = map_err(r);
        goto out;
    }
    r = emit(out, pem, PEM_OUT_MAX);
out:
    free(pem);
    mbedtls_pk_free(&pk);
    return r;
}

/* The public key of pk as PEM (SubjectPublicKeyInfo) into out. */
static int emit_pubkey(struct re_buf *out, mbedtls_pk_context *pk)
{
    unsigned char *pem = calloc(1, PEM_OUT_MAX);
    int r;
    if (!pem)
        return -RE_ENOMEM;
    if ((r = mbedtls_pk_write_pubkey_pem(pk, pem, PEM_OUT_MAX)) != 0)
        r = map_err(r);
    else
        r = emit(out, pem, PEM_OUT_MAX);
    free(pem);
    return r;
}

int re_key_public_pem(struct re_buf *out, const char *key_pem)
{
    mbedtls_pk_context pk;
    int r;

    mbedtls_pk_init(&pk);
    if ((r = parse_private_key(&pk, key_pem)) == 0)
        r = emit_pubkey(out, &pk);
    mbedtls_pk_free(&pk);
    return r;
}

int re_csr_create(struct re_buf *out, const char *key_pem, const char *cn, const char *uri_san)
{
    mbedtls_pk_context pk;
    mbedtls_x509write_csr csr;
    unsigned char *pem = NULL, *ext = NULL;
    size_t ext_len;
    int r;

    mbedtls_pk_init(&pk);
    mbedtls_x509write_csr_init(&csr);
    if (!text_ok(cn, CN_MAX, true) || (uri_san && !text_ok(uri_san, SAN_MAX, false))) {
        r = -RE_EINVAL;
        goto out;
    }
    if ((r = parse_private_key(&pk, key_pem)) < 0)
        goto out;
    pem = calloc(1, PEM_OUT_MAX);
    ext = calloc(1, EXT_MAX);
    if (!pem || !ext) {
        r = -RE_ENOMEM;
        goto out;
    }
    mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&csr, &pk);
    if ((r = set_cn(&csr.subject, cn)) < 0)
        goto out;
    if ((r = encode_sans(&ext_len, ext, EXT_MAX, uri_san, NULL, NULL)) < 0)
        goto out;
    if (ext_len > 0 &&
        (r = mbedtls_x509write_csr_set_extension(&csr, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                 ext + EXT_MAX - ext_len, ext_len)) != 0) {
        r = map_err(r);
        goto out;
    }
    if ((r = mbedtls_x509write_csr_pem(&csr, pem, PEM_OUT_MAX, re_crypto_rng, NULL)) != 0) {
        r = map_err(r);
        goto out;
    }
    r = emit(out, pem, PEM_OUT_MAX);
out:
    free(ext);
    free(pem);
    mbedtls_x509write_csr_free(&csr);
    mbedtls_pk_free(&pk);
    return r;
}

int re_csr_verify(struct re_buf *pubkey_out, const char *csr_pem, size_t len)
{
    mbedtls_x509_csr csr;
    const mbedtls_md_info_t *md;
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    unsigned char *copy = NULL;
    int r;

    mbedtls_x509_csr_init(&csr);
    if (!csr_pem) {
        r = -RE_EINVAL;
        goto out;
    }
    if (len > RE_PEM_MAX) {
        r = -RE_ETOOBIG;
        goto out;
    }
    /* mbedTLS wants PEM NUL-terminated and counted with the NUL */
    if (!(copy = malloc(len + 1))) {
        r = -RE_ENOMEM;
        goto out;
    }
    memcpy(copy, csr_pem, len);
    copy[len] = '\0';
    if (mbedtls_x509_csr_parse(&csr, copy, len + 1) != 0) {
        r = -RE_EPARSE;
        goto out;
    }
    if (!is_p256(&csr.pk)) {
        r = -RE_EUNSUPP;
        goto out;
    }
    /* SHA-1 and weaker are not proof of anything */
    if (csr.sig_pk != MBEDTLS_PK_ECDSA ||
        (csr.sig_md != MBEDTLS_MD_SHA256 && csr.sig_md != MBEDTLS_MD_SHA384 &&
         csr.sig_md != MBEDTLS_MD_SHA512)) {
        r = -RE_EUNSUPP;
        goto out;
    }
    md = mbedtls_md_info_from_type(csr.sig_md);
    if (!md || mbedtls_md(md, csr.cri.p, csr.cri.len, hash) != 0) {
        r = -RE_ECRYPTO;
        goto out;
    }
    if (mbedtls_pk_verify_ext(csr.sig_pk, csr.sig_opts, &csr.pk, csr.sig_md, hash,
                              mbedtls_md_get_size(md), csr.sig.p, csr.sig.len) != 0) {
        r = -RE_EBADSIG;
        goto out;
    }
    r = emit_pubkey(pubkey_out, &csr.pk);
out:
    free(copy);
    mbedtls_x509_csr_free(&csr);
    return r;
}

/* ---- certificates ---- */

static int spec_ok(const struct re_cert_spec *spec)
{
    if (!spec || !text_ok(spec->cn, CN_MAX, true))
        return -RE_EINVAL;
    if (spec->not_before < 0 || spec->not_after <= spec->not_before)
        return -RE_EINVAL;
    return 0;
}

/* Everything but the keys and names: serial, validity, extensions, PEM. */
static int write_cert(struct re_buf *out, mbedtls_x509write_cert *crt,
                      const struct re_cert_spec *spec)
{
    mbedtls_mpi serial;
    unsigned char sbytes[16];
    char nb[16], na[16];
    unsigned char *pem = NULL, *ext = NULL;
    size_t ext_len;
    unsigned int ku;
    int r;

    mbedtls_mpi_init(&serial);
    pem = calloc(1, PEM_OUT_MAX);
    ext = calloc(1, EXT_MAX);
    if (!pem || !ext) {
        r = -RE_ENOMEM;
        goto out;
    }
    mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);

    /* 127 random bits, positive and never zero */
    if ((r = re_random(sbytes, sizeof(sbytes))) < 0)
        goto out;
    sbytes[0] = (unsigned char)((sbytes[0] & 0x7f) | 0x01);
    if ((r = mbedtls_mpi_read_binary(&serial, sbytes, sizeof(sbytes))) != 0 ||
        (r = mbedtls_x509write_crt_set_serial(crt, &serial)) != 0) {
        r = map_err(r);
        goto out;
    }

    if ((r = format_time(nb, spec->not_before)) < 0 || (r = format_time(na, spec->not_after)) < 0)
        goto out;
    if ((r = mbedtls_x509write_crt_set_validity(crt, nb, na)) != 0) {
        r = -RE_EINVAL;
        goto out;
    }

    /* pathlen 0: the hub's CA signs leaves only */
    if ((r = mbedtls_x509write_crt_set_basic_constraints(crt, spec->is_ca ? 1 : 0,
                                                         spec->is_ca ? 0 : -1)) != 0 ||
        (r = mbedtls_x509write_crt_set_subject_key_identifier(crt)) != 0 ||
        (r = mbedtls_x509write_crt_set_authority_key_identifier(crt)) != 0) {
        r = map_err(r);
        goto out;
    }
    ku = spec->is_ca ? (MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)
                     : MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
    if ((r = mbedtls_x509write_crt_set_key_usage(crt, ku)) != 0) {
        r = map_err(r);
        goto out;
    }

    if ((r = encode_sans(&ext_len, ext, EXT_MAX, spec->uri_san, spec->dns_sans, spec->ip_sans)) < 0)
        goto out;
    if (ext_len > 0 &&
        (r = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                                 ext + EXT_MAX - ext_len, ext_len)) != 0) {
        r = map_err(r);
        goto out;
    }
    if (spec->server_auth || spec->client_auth) {
        if ((r = encode_eku(&ext_len, ext, EXT_MAX, spec->server_auth, spec->client_auth)) < 0)
            goto out;
        if ((r = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0,
                                                     ext + EXT_MAX - ext_len, ext_len)) != 0) {
            r = map_err(r);
            goto out;
        }
    }

    if ((r = mbedtls_x509write_crt_pem(crt, pem, PEM_OUT_MAX, re_crypto_rng, NULL)) != 0) {
        r = map_err(r);
        goto out;
    }
    r = emit(out, pem, PEM_OUT_MAX);
out:
    free(ext);
    free(pem);
    mbedtls_mpi_free(&serial);
    return r;
}

int re_cert_self_signed(struct re_buf *out, const char *key_pem, const struct re_cert_spec *spec)
{
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    int r;

    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&crt);
    if ((r = spec_ok(spec)) < 0 || (r = parse_private_key(&key, key_pem)) < 0)
        goto out;
    mbedtls_x509write_crt_set_subject_key(&crt, &key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &key);
    if ((r = set_cn(&crt.subject, spec->cn)) < 0 || (r = set_cn(&crt.issuer, spec->cn)) < 0)
        goto out;
    r = write_cert(out, &crt, spec);
out:
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&key);
    return r;
}

/* Signs subject_pubkey_pem with a parsed CA (cert + matching key, already
 * checked as a pair). */
static int issue_with(struct re_buf *out, mbedtls_x509_crt *ca, mbedtls_pk_context *ca_key,
                      const char *subject_pubkey_pem, const struct re_cert_spec *spec)
{
    mbedtls_pk_context subject;
    mbedtls_x509write_cert crt;
    size_t n;
    int r;

    mbedtls_pk_init(&subject);
    mbedtls_x509write_crt_init(&crt);
    if ((r = spec_ok(spec)) < 0 || (r = pem_len(&n, subject_pubkey_pem)) < 0)
        goto out;
    if (mbedtls_pk_parse_public_key(&subject, (const unsigned char *)subject_pubkey_pem, n) != 0) {
        r = -RE_EPARSE;
        goto out;
    }
    if (!is_p256(&subject)) {
        r = -RE_EUNSUPP;
        goto out;
    }
    mbedtls_x509write_crt_set_subject_key(&crt, &subject);
    mbedtls_x509write_crt_set_issuer_key(&crt, ca_key);
    if ((r = set_cn(&crt.subject, spec->cn)) < 0 || (r = copy_name(&crt.issuer, &ca->subject)) < 0)
        goto out;
    r = write_cert(out, &crt, spec);
out:
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&subject);
    return r;
}

/* ---- a loaded CA ---- */

struct re_ca {
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    pthread_mutex_t lock;            /* signing may touch the key's group (lazy tables) */
};

/* Parses the CA certificate and key and checks that they belong together. */
static int ca_parse(mbedtls_x509_crt *crt, mbedtls_pk_context *key, const char *ca_cert_pem,
                    const char *ca_key_pem)
{
    int r;
    if ((r = parse_cert(crt, ca_cert_pem)) < 0 || (r = parse_private_key(key, ca_key_pem)) < 0)
        return r;
    if (!crt->ca_istrue || mbedtls_pk_check_pair(&crt->pk, key) != 0)
        return -RE_EINVAL;
    return 0;
}

int re_ca_load(struct re_ca **out, const char *ca_cert_pem, const char *ca_key_pem)
{
    struct re_ca *ca;
    int r;
    if (!out)
        return -RE_EINVAL;
    *out = NULL;
    if (!(ca = calloc(1, sizeof(*ca))))
        return -RE_ENOMEM;
    mbedtls_x509_crt_init(&ca->crt);
    mbedtls_pk_init(&ca->key);
    if (pthread_mutex_init(&ca->lock, NULL) != 0) {
        mbedtls_pk_free(&ca->key);
        free(ca);
        return -RE_ENOMEM;
    }
    if ((r = ca_parse(&ca->crt, &ca->key, ca_cert_pem, ca_key_pem)) < 0) {
        re_ca_free(ca);
        return r;
    }
    *out = ca;
    return 0;
}

int re_ca_issue(struct re_buf *out, struct re_ca *ca, const char *subject_pubkey_pem,
                const struct re_cert_spec *spec)
{
    int r;
    if (!ca)
        return -RE_EINVAL;
    pthread_mutex_lock(&ca->lock);
    r = issue_with(out, &ca->crt, &ca->key, subject_pubkey_pem, spec);
    pthread_mutex_unlock(&ca->lock);
    return r;
}

void re_ca_free(struct re_ca *ca)
{
    if (!ca)
        return;
    mbedtls_pk_free(&ca->key);       /* zeroizes the private key */
    mbedtls_x509_crt_free(&ca->crt);
    pthread_mutex_destroy(&ca->lock);
    free(ca);
}

int re_cert_issue(struct re_buf *out, const char *ca_cert_pem, const char *ca_key_pem,
                  const char *subject_pubkey_pem, const struct re_cert_spec *spec)
{
    mbedtls_x509_crt ca;
    mbedtls_pk_context ca_key;
    int r;

    mbedtls_x509_crt_init(&ca);
    mbedtls_pk_init(&ca_key);
    if ((r = spec_ok(spec)) < 0 || (r = ca_parse(&ca, &ca_key, ca_cert_pem, ca_key_pem)) < 0)
        goto out;
    r = issue_with(out, &ca, &ca_key, subject_pubkey_pem, spec);
out:
    mbedtls_pk_free(&ca_key);
    mbedtls_x509_crt_free(&ca);
    return r;
}

/* The CN of a parsed name into out; refuses embedded NULs and truncation. */
static int name_cn(char *out, size_t size, const mbedtls_x509_name *name)
{
    out[0] = '\0';
    for (; name; name = name->next) {
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &name->oid) != 0)
            continue;
        if (name->val.len >= size)
            return -RE_ETOOBIG;
        if (memchr(name->val.p, '\0', name->val.len))
            return -RE_EPARSE;
        memcpy(out, name->val.p, name->val.len);
        out[name->val.len] = '\0';
        return 0;
    }
    return 0;
}

int re_cert_parse(struct re_cert_info *out, const void *data, size_t len, bool der)
{
    mbedtls_x509_crt crt;
    struct re_cert_info info;
    unsigned char *copy = NULL;
    uint8_t digest[32];
    const unsigned char *sp;
    size_t sl;
    int r;

    mbedtls_x509_crt_init(&crt);
    memset(&info, 0, sizeof(info));
    if (!out || !data) {
        r = -RE_EINVAL;
        goto out;
    }
    if (len > RE_PEM_MAX) {
        r = -RE_ETOOBIG;
        goto out;
    }
    if (der) {
        r = mbedtls_x509_crt_parse_der(&crt, data, len);
    } else {
        if (!(copy = malloc(len + 1))) {
            r = -RE_ENOMEM;
            goto out;
        }
        memcpy(copy, data, len);
        copy[len] = '\0';
        r = mbedtls_x509_crt_parse(&crt, copy, len + 1);
    }
    if (r != 0) {
        r = -RE_EPARSE;
        goto out;
    }
    if ((r = name_cn(info.subject_cn, sizeof(info.subject_cn), &crt.subject)) < 0 ||
        (r = name_cn(info.issuer_cn, sizeof(info.issuer_cn), &crt.issuer)) < 0)
        goto out;

    /* 2.28 keeps URI SANs undecoded: take the raw [6] IA5String */
    for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s; s = s->next) {
        if (s->buf.p == NULL || s->buf.tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6))
            continue;
        if (s->buf.len >= sizeof(info.uri_san)) {
            r = -RE_ETOOBIG;
            goto out;
        }
        if (memchr(s->buf.p, '\0', s->buf.len)) {
            r = -RE_EPARSE;
            goto out;
        }
        memcpy(info.uri_san, s->buf.p, s->buf.len);
        info.uri_san[s->buf.len] = '\0';
        break;
    }

    sp = crt.serial.p;
    sl = crt.serial.len;
    while (sl > 1 && sp[0] == 0) {
        sp++;
        sl--;
    }
    if (sl == 0 || 2 * sl >= sizeof(info.serial)) {
        r = -RE_EPARSE;
        goto out;
    }
    re_hex(info.serial, sp, sl);

    re_sha256(digest, crt.raw.p, crt.raw.len);
    memcpy(info.fingerprint, "sha256:", 7);
    re_hex(info.fingerprint + 7, digest, sizeof(digest));

    info.not_before = x509_time_to_epoch(&crt.valid_from);
    info.not_after = x509_time_to_epoch(&crt.valid_to);
    info.is_ca = crt.ca_istrue != 0;
    *out = info;
    r = 0;
out:
    free(copy);
    mbedtls_x509_crt_free(&crt);
    return r;
}

struct verify_ctx {
    int64_t now;
    bool out_of_time;
};

/* Judges validity against the caller's clock instead of mbedTLS's. */
static int verify_cb(void *p, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct verify_ctx *v = p;
    (void)depth;
    *flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE);
    if (v->now < x509_time_to_epoch(&crt->valid_from) || v->now > x509_time_to_epoch(&crt->valid_to))
        v->out_of_time = true;
    return 0;
}

int re_cert_verify(const char *cert_pem, const char *ca_pem, int64_t now)
{
    mbedtls_x509_crt crt, ca;
    struct verify_ctx v = { .now = now, .out_of_time = false };
    uint32_t flags = 0;
    int r;

    mbedtls_x509_crt_init(&crt);
    mbedtls_x509_crt_init(&ca);
    if ((r = parse_cert(&crt, cert_pem)) < 0 || (r = parse_cert(&ca, ca_pem)) < 0)
        goto out;
    r = mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, verify_cb, &v);
    if (r != 0 || flags != 0) {
        r = -RE_EBADSIG;
        goto out;
    }
    r = v.out_of_time ? -RE_EEXPIRED : 0;
out:
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&crt);
    return r;
}

int re_cert_matches_key(const char *cert_pem, const char *key_pem)
{
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    int r;

    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    if ((r = parse_cert(&crt, cert_pem)) < 0)
        goto out;
    r = parse_private_key(&key, key_pem);
    if (r == -RE_EUNSUPP) {
        r = -RE_EINVAL;
        goto out;
    }
    if (r < 0)
        goto out;
    r = mbedtls_pk_check_pair(&crt.pk, &key) == 0 ? 0 : -RE_EINVAL;
out:
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&crt);
    return r;
}
