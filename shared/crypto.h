/* crypto.h - keys, CSRs and certificates (the only place besides tls.c that
 * knows the TLS engine, mbedTLS 2.28). All PEM in/out is NUL-terminated text.
 *
 * Output buffers: results are appended to a caller-initialized struct re_buf
 * (re_buf_init with a max of at least 16 KiB) and only on success. Functions
 * return 0 or a negative RE error: -RE_EINVAL bad argument, -RE_EPARSE input
 * that does not parse, -RE_ETOOBIG input over RE_PEM_MAX, -RE_EUNSUPP a key that
 * is not ECDSA P-256, -RE_ENOMEM, -RE_ECRYPTO engine failure. Every function is
 * safe to call from any thread: the one random generator is mutex-guarded. */
#ifndef RE_CRYPTO_H
#define RE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define RE_PEM_MAX (64 * 1024)       /* larger PEM input is refused: -RE_ETOOBIG */

/* New ECDSA P-256 private key as PEM (SEC1 "EC PRIVATE KEY") into out. */
int re_key_generate(struct re_buf *out);
/* The public key of private key_pem as PEM (SubjectPublicKeyInfo) into out. */
int re_key_public_pem(struct re_buf *out, const char *key_pem);

/* CSR for key_pem with subject "CN=<cn>" (and optional URI SAN), signed with
 * SHA-256. cn: 1..64 printable characters; uri_san printable, no spaces. */
int re_csr_create(struct re_buf *out, const char *key_pem, const char *cn, const char *uri_san);

/* Parses a CSR and verifies its self-signature (proof of possession; mbedTLS
 * does not). On success writes the CSR's public key as PEM into pubkey_out.
 * csr_pem need not be NUL-terminated (len bytes are read).
 * -RE_EPARSE malformed, -RE_EBADSIG bad signature, -RE_ETOOBIG too large,
 * -RE_EUNSUPP when the key is not ECDSA P-256 or the hash is weaker than SHA-256. */
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

/* Every certificate gets a random positive 127-bit serial, SHA-256/ECDSA,
 * subject and authority key ids, basicConstraints (CA: critical, pathlen 0),
 * keyUsage (CA: keyCertSign+cRLSign, leaf: digitalSignature), the SANs and
 * EKUs of spec. -RE_EINVAL for a bad spec (empty CN, not_after <= not_before,
 * an IP SAN that is not an address). */

/* Self-signed CA certificate for key_pem. */
int re_cert_self_signed(struct re_buf *out, const char *key_pem, const struct re_cert_spec *spec);
/* Certificate for subject_pubkey_pem signed by the CA; the issuer name is the
 * CA's subject. -RE_EINVAL when ca_cert is not a CA or ca_key is not its key. */
int re_cert_issue(struct re_buf *out, const char *ca_cert_pem, const char *ca_key_pem,
                  const char *subject_pubkey_pem, const struct re_cert_spec *spec);

/* A CA parsed once for many issuances: re_ca_load parses ca_cert_pem and
 * ca_key_pem and checks them as a pair (-RE_EINVAL when the certificate is
 * not a CA or the key is not its key, -RE_EPARSE); re_ca_issue then signs like
 * re_cert_issue without re-parsing. Issuing with one re_ca from several threads
 * is safe (serialized). re_ca_free is NULL-safe and wipes the key. */
struct re_ca;
int re_ca_load(struct re_ca **out, const char *ca_cert_pem, const char *ca_key_pem);
int re_ca_issue(struct re_buf *out, struct re_ca *ca, const char *subject_pubkey_pem,
                const struct re_cert_spec *spec);
void re_ca_free(struct re_ca *ca);

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

/* Parses the first certificate in PEM (or DER when der is true); len bytes
 * are read, no NUL needed. serial is hex without leading zero bytes.
 * -RE_EPARSE, -RE_ETOOBIG (input, CN or URI longer than the fields). */
int re_cert_parse(struct re_cert_info *out, const void *data, size_t len, bool der);
/* Verifies cert_pem chains to ca_pem (one or more CA certificates) at time now
 * (epoch s, so callers can stub the clock; mbedTLS's own clock is ignored):
 * 0, -RE_EEXPIRED when now is outside the validity of any certificate in the
 * chain, -RE_EBADSIG when not trusted, -RE_EPARSE. */
int re_cert_verify(const char *cert_pem, const char *ca_pem, int64_t now);
/* Does cert_pem's public key match key_pem? 0, -RE_EINVAL when not, -RE_EPARSE. */
int re_cert_matches_key(const char *cert_pem, const char *key_pem);

/* Cryptographically random bytes (process-wide CTR_DRBG, reseeded after fork). */
int re_random(void *buf, size_t len);
/* The same generator as an mbedTLS f_rng (p_rng is ignored; pass NULL), for
 * tls.c: returns 0 or an mbedTLS error. */
int re_crypto_rng(void *p_rng, unsigned char *out, size_t len);
/* SHA-256 into out[32]. */
void re_sha256(uint8_t out[32], const void *data, size_t len);
/* Lowercase hex of len bytes into out (2*len+1). */
void re_hex(char *out, const uint8_t *data, size_t len);
/* Constant-time comparison. */
bool re_consttime_eq(const void *a, const void *b, size_t len);

#endif
