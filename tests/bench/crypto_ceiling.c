/* crypto_ceiling.c - the "crypto ceiling" of `make bench`: times, in process
 * and per CPU-second of one thread, the public-key operations a hub's TLS
 * handshake and an enrollment need, with the same engine (mbedTLS 2.28) and
 * the same curves the hub negotiates (ECDSA P-256 signatures, X25519 key
 * exchange, which tls.c prefers; P-256 ECDH for reference).
 *
 *   crypto_ceiling [SECONDS_PER_OP]     (default 1.0)
 *
 * Prints "name value" lines (operations per CPU-second):
 *   sign, verify (a key parsed once, as the CA's), verify_fresh (a key parsed
 *   per operation, as a client's certificate), x25519 and ecdh_p256 (a
 *   key pair generated and a shared secret computed, the server's half), and
 *   the derived ceilings:
 *   handshake_mtls = 1 / (sign + verify + verify_fresh + x25519): the server
 *     side of a full mutual-TLS handshake (ServerKeyExchange signature, client
 *     certificate chain, CertificateVerify, ECDHE);
 *   enroll = 1 / (2 sign + verify_fresh + x25519): a TLS handshake without a
 *     client certificate, the CSR's signature and the certificate's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
    fprintf(stderr, "crypto_ceiling: %s failed (-0x%04x)\n", what, (unsigned)-r);
    exit(1);
}

struct ctx {
    mbedtls_pk_context key;          /* signer, parsed once */
    mbedtls_pk_context pub;          /* its public key, parsed once */
    unsigned char pub_der[256];
    size_t pub_der_len;
    unsigned char hash[32];
    unsigned char sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t sig_len;
    mbedtls_ecp_point peer25519, peer256;
};

typedef void (*op_fn)(struct ctx *c);

static void op_sign(struct ctx *c)
{
    unsigned char sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t len;
    int r = mbedtls_pk_sign(&c->key, MBEDTLS_MD_SHA256, c->hash, 32, sig, &len,
                            mbedtls_ctr_drbg_random, &drbg);
    if (r)
        die("sign", r);
}

static void op_verify(struct ctx *c)
{
    int r = mbedtls_pk_verify(&c->pub, MBEDTLS_MD_SHA256, c->hash, 32, c->sig, c->sig_len);
    if (r)
        die("verify", r);
}

static void op_verify_fresh(struct ctx *c)
{
    mbedtls_pk_context pk;
    int r;
    mbedtls_pk_init(&pk);
    r = mbedtls_pk_parse_public_key(&pk, c->pub_der, c->pub_der_len);
    if (r)
        die("parse public key", r);
    r = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, c->hash, 32, c->sig, c->sig_len);
    if (r)
        die("verify (fresh key)", r);
    mbedtls_pk_free(&pk);
}

static void ecdh_half(mbedtls_ecp_group_id gid, const mbedtls_ecp_point *peer)
{
    mbedtls_ecp_group grp;
    mbedtls_mpi d, z;
    mbedtls_ecp_point q;
    int r;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&z);
    mbedtls_ecp_point_init(&q);
    if ((r = mbedtls_ecp_group_load(&grp, gid)) ||
        (r = mbedtls_ecdh_gen_public(&grp, &d, &q, mbedtls_ctr_drbg_random, &drbg)) ||
        (r = mbedtls_ecdh_compute_shared(&grp, &z, peer, &d, mbedtls_ctr_drbg_random, &drbg)))
        die("ecdh", r);
    mbedtls_ecp_point_free(&q);
    mbedtls_mpi_free(&z);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_group_free(&grp);
}

static void op_x25519(struct ctx *c) { ecdh_half(MBEDTLS_ECP_DP_CURVE25519, &c->peer25519); }
static void op_p256(struct ctx *c) { ecdh_half(MBEDTLS_ECP_DP_SECP256R1, &c->peer256); }

static void peer_point(mbedtls_ecp_group_id gid, mbedtls_ecp_point *out)
{
    mbedtls_ecp_group grp;
    mbedtls_mpi d;
    int r;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_ecp_point_init(out);
    if ((r = mbedtls_ecp_group_load(&grp, gid)) ||
        (r = mbedtls_ecdh_gen_public(&grp, &d, out, mbedtls_ctr_drbg_random, &drbg)))
        die("peer key", r);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_group_free(&grp);
}

/* Operations per CPU-second of this thread, over at least secs of CPU. */
static double rate(struct ctx *c, op_fn fn, double secs)
{
    double t0 = cpu_now(), t;
    long n = 0;
    fn(c);                           /* warm-up */
    t0 = cpu_now();
    do {
        for (int i = 0; i < 8; i++)
            fn(c);
        n += 8;
        t = cpu_now();
    } while (t - t0 < secs);
    return (double)n / (t - t0);
}

int main(int argc, char **argv)
{
    static const char pers[] = "crypto-ceiling";
    struct ctx c;
    double secs = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    unsigned char der[256];
    int r;

    if (!(secs > 0.01 && secs < 60)) {
        fprintf(stderr, "usage: crypto_ceiling [SECONDS_PER_OP]\n");
        return 2;
    }
    memset(&c, 0, sizeof(c));
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if ((r = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                   (const unsigned char *)pers, sizeof(pers) - 1)))
        die("seed", r);
    mbedtls_pk_init(&c.key);
    mbedtls_pk_init(&c.pub);
    if ((r = mbedtls_pk_setup(&c.key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) ||
        (r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(c.key),
                                 mbedtls_ctr_drbg_random, &drbg)))
        die("key generation", r);
    /* The public key goes through DER, as it arrives in a certificate. */
    r = mbedtls_pk_write_pubkey_der(&c.key, der, sizeof(der));
    if (r <= 0)
        die("write public key", r);
    c.pub_der_len = (size_t)r;
    memcpy(c.pub_der, der + sizeof(der) - (size_t)r, (size_t)r);
    if ((r = mbedtls_pk_parse_public_key(&c.pub, c.pub_der, c.pub_der_len)))
        die("parse public key", r);
    mbedtls_sha256_ret((const unsigned char *)"handshake transcript", 20, c.hash, 0);
    if ((r = mbedtls_pk_sign(&c.key, MBEDTLS_MD_SHA256, c.hash, 32, c.sig, &c.sig_len,
                             mbedtls_ctr_drbg_random, &drbg)))
        die("sign", r);
    peer_point(MBEDTLS_ECP_DP_CURVE25519, &c.peer25519);
    peer_point(MBEDTLS_ECP_DP_SECP256R1, &c.peer256);

    double sign = rate(&c, op_sign, secs);
    double verify = rate(&c, op_verify, secs);
    double verify_fresh = rate(&c, op_verify_fresh, secs);
    double x25519 = rate(&c, op_x25519, secs);
    double p256 = rate(&c, op_p256, secs);
    double hs = 1.0 / (1.0 / sign + 1.0 / verify + 1.0 / verify_fresh + 1.0 / x25519);
    double en = 1.0 / (2.0 / sign + 1.0 / verify_fresh + 1.0 / x25519);

    printf("sign %.0f\nverify %.0f\nverify_fresh %.0f\nx25519 %.0f\necdh_p256 %.0f\n"
           "handshake_mtls %.1f\nenroll %.1f\n", sign, verify, verify_fresh, x25519, p256, hs, en);

    mbedtls_ecp_point_free(&c.peer25519);
    mbedtls_ecp_point_free(&c.peer256);
    mbedtls_pk_free(&c.key);
    mbedtls_pk_free(&c.pub);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return 0;
}
