/* crypto.h - keys, CSRs and certificates (the only place besides tls.c that
 * knows the TLS engine, mbedTLS 2.28). All PEM in/out is NUL-terminated text. */
#ifndef RE_CRYPTO_H
#define RE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define RE_PEM_MAX (64 * 1024)       /* larger PEM input is refused: -RE_ETOOBIG */

/* New ECDSA P-256 private key as PEM (PKCS#8 or SEC1) into out. */
int re_key_generate(struct re_buf *out);

/* CSR for key_pem with subject "CN=<cn>" (and optional URI SAN). */
int re_csr_create(struct re_buf *out, const char *key_pem, const char *cn, const char *uri_san);

/* Parses a CSR and verifies its self-signature (proof of possession; mbedTLS
 * does not). On success writes the CSR's public key as PEM into pubkey_out.
 * -RE_EPARSE malformed, -RE_EBADSIG bad signature, -RE_ETOOBIG too large,
 * -RE_EUNSUPP when the key is not ECDSA P-256. */
int re_csr_verify(struct re_buf *pubkey_out, const char *csr_pem, size_t len);

/* What a certificate says; the issuer decides every field (never the CSR). */
struct re_cert_spec {
    const char *cn;                  /* subject CN */
    const char *uri_san;             /* e.g. "spiffe://resedge/cluster/store-0042"; may be NULL */
    const char *const *dns_sans;     /* NULL-terminated or NULL */
    const char *const *ip_sans;      /* dotted quads / IPv6, NULL-terminated or NULL */
    bool is_ca;                      /* basicConstraints CA:TRUE + keyCertSign */
    bool server_auth;                /* EKU serverAuth */
    bool client_auth;                /* EKU clientAuth */
    int64_t not_before;              /* epoch seconds (callers backdate) */
    int64_t not_after;
};

/* Self-signed CA certificate for key_pem. */
int re_cert_self_signed(struct re_buf *out, const char *key_pem, const struct re_cert_spec *spec);
/* Certificate for subject_pubkey_pem signed by the CA; random 128-bit serial. */
int re_cert_issue(struct re_buf *out, const char *ca_cert_pem, const char *ca_key_pem,
                  const char *subject_pubkey_pem, const struct re_cert_spec *spec);

struct re_cert_info {
    char subject_cn[128];
    char issuer_cn[128];
    char uri_san[256];               /* first URI SAN, "" if none */
    char serial[64];                 /* lowercase hex, no colons */
    char fingerprint[72];            /* "sha256:<64 hex>" of the DER certificate */
    int64_t not_before;
    int64_t not_after;
    bool is_ca;
};

/* Parses the first certificate in PEM (or DER when der is true). */
int re_cert_parse(struct re_cert_info *out, const void *data, size_t len, bool der);
/* Verifies cert_pem chains to ca_pem at time now (epoch s): 0, -RE_EEXPIRED, -RE_EBADSIG. */
int re_cert_verify(const char *cert_pem, const char *ca_pem, int64_t now);
/* Does cert_pem's public key match key_pem? 0 or -RE_EINVAL. */
int re_cert_matches_key(const char *cert_pem, const char *key_pem);

/* Cryptographically random bytes. */
int re_random(void *buf, size_t len);
/* SHA-256 into out[32]. */
void re_sha256(uint8_t out[32], const void *data, size_t len);
/* Lowercase hex of len bytes into out (2*len+1). */
void re_hex(char *out, const uint8_t *data, size_t len);
/* Constant-time comparison. */
bool re_consttime_eq(const void *a, const void *b, size_t len);

#endif
