/* enroll.h - one-time enrollment codes and the certificates they buy:
 * creating codes, redeeming a code with a CSR, renewal over mutual TLS and
 * revocation. No HTTP here (api_enroll.c maps it to endpoints); every
 * function takes the database, the CA and the time explicitly so tests can
 * drive it with a stub clock.
 *
 * A code is "<id>.<secret>": the id (6 Crockford base32 characters) is public
 * and names the row; the secret (16 characters, 80 bits) is stored only as
 * SHA-256(code_key || id || "." || secret), code_key derived from the CA key.
 * Codes are read aloud and typed: parsing ignores case, dashes and spaces and
 * maps the look-alikes I, L -> 1 and O -> 0. */
#ifndef HUB_ENROLL_H
#define HUB_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include "buf.h"
#include "crypto.h"

#define ENROLL_ID_LEN            6
#define ENROLL_SECRET_LEN        16          /* 16 x 5 bits = 80 bits */
#define ENROLL_CODE_MAX          48          /* formatted code + NUL */
#define ENROLL_CSR_MAX           (8 * 1024)  /* larger CSRs: -RE_ETOOBIG (413) */
#define ENROLL_TTL_DEFAULT_S     (24 * 3600)
#define ENROLL_TTL_MAX_S         (7 * 24 * 3600)
#define ENROLL_LEEWAY_S          60          /* grace after a code's expiry */
#define ENROLL_BACKDATE_S        300         /* notBefore = now - 5 min (clock skew) */
#define ENROLL_MAX_FAILS_PER_CODE 5          /* then the code is locked */
#define ENROLL_MAX_FAILS_PER_ADDR 20         /* in ENROLL_FAIL_WINDOW_S: 429 */
#define ENROLL_FAIL_WINDOW_S     (15 * 60)

/* The hub's issuing material, loaded from DIR/tls (ca.crt, ca.key). */
struct enroll_ca {
    char *crt_pem;                  /* NUL-terminated */
    char *key_pem;
    char fingerprint[72];           /* "sha256:<hex of the CA certificate DER>" */
    uint8_t code_key[32];           /* keys the stored hash of code secrets */
    struct re_ca *issuer;           /* parsed once by enroll_ca_load; NULL: crt_pem/key_pem
                                     * are parsed on every issuance */
};

/* 0, or -RE_ENOENT/-RE_EIO when the files are missing, -RE_EPARSE, -RE_EINVAL
 * when ca.key is not the key of ca.crt (checked once, here). */
int enroll_ca_load(struct enroll_ca *out, const char *dir);
void enroll_ca_release(struct enroll_ca *ca);   /* NULL-safe; wipes the key */

/* A code in normalized form: upper-case Crockford base32, no separators. */
struct enroll_code {
    char id[ENROLL_ID_LEN + 1];
    char secret[ENROLL_SECRET_LEN + 1];
};

int enroll_code_generate(struct enroll_code *out);
/* "K7M2QX.ABCD-EFGH-JKMN-PQRS" into out; -RE_ETOOBIG when size is short. */
int enroll_code_format(char *out, size_t size, const struct enroll_code *c);
/* Parses what a person typed; -RE_EINVAL when it is not a code. */
int enroll_code_parse(struct enroll_code *out, struct re_str text);
/* Lowercase hex (64 + NUL) of the keyed hash stored for c's secret. */
void enroll_code_hash(char out[65], const struct enroll_ca *ca, const struct enroll_code *c);

/* Who gets a certificate: kind "cluster" or "user". */
struct enroll_identity {
    const char *kind;
    const char *name;
    const char *role;               /* users: the role the certificate brings ("operator",
                                       ...), NULL to keep the current one; clusters: NULL */
};

/* How certificates are issued (from hub_config). */
struct enroll_policy {
    const char *trust_domain;       /* spiffe://<trust_domain>/<kind>/<name> */
    unsigned lifetime_days;         /* 0: 30 */
};

/* A new code for an existing identity (the cluster or user row must exist:
 * -RE_ENOENT otherwise), valid ttl_s seconds (1..ENROLL_TTL_MAX_S, else
 * -RE_EINVAL). Audited as actor. Writes the formatted code and expiry. */
int enroll_code_create(char *code_out, size_t size, int64_t *expires_out, sqlite3 *db,
                       const struct enroll_ca *ca, const struct enroll_identity *who,
                       int64_t ttl_s, const char *actor, int64_t now);

/* Creates user name with role (no certificate yet) and a code for it, in one
 * transaction. -RE_EEXIST when the user exists, -RE_EINVAL bad role. */
int enroll_user_add(char *code_out, size_t size, int64_t *expires_out, sqlite3 *db,
                    const struct enroll_ca *ca, const char *name, const char *role,
                    int64_t ttl_s, const char *actor, int64_t now);

/* What a redemption or renewal issued. */
struct enroll_result {
    struct re_buf cert;             /* PEM; caller does re_buf_init(&cert, >= 16 KiB) */
    char kind[16];
    char name[128];
    char identity[320];             /* spiffe://... */
    char serial[64];
    char code_id[ENROLL_ID_LEN + 1];
    int64_t not_before, not_after;
    int64_t renew_after;            /* when a third of the lifetime remains */
    unsigned retry_after;           /* seconds, with -RE_EAGAIN */
};

/*
 * Redeems code for a certificate of the code's identity with the public key
 * of csr (whose self-signature is verified; nothing else it asks for is
 * used). expect_kind/expect_name, when not NULL, must match the code's
 * identity. The code is consumed atomically together with issuing and
 * recording the new serial as the identity's current one (which makes any
 * older certificate of it stop working and clears a revocation). Wrong
 * secrets are counted against the code id and remote_addr.
 *
 * Returns 0 and fills out, or a refusal (nothing issued):
 *   -RE_ETOOBIG  csr over ENROLL_CSR_MAX           -RE_EPARSE  malformed CSR
 *   -RE_EBADSIG  CSR signature does not verify     -RE_EUNSUPP not ECDSA P-256/SHA-256
 *   -RE_EAGAIN   too many failures from remote_addr (out->retry_after set)
 *   -RE_EUNAUTH  not a code, unknown id or wrong secret
 *   -RE_ELOCKED  the code is locked (this attempt may have locked it)
 *   -RE_ECONFLICT already used                     -RE_EEXPIRED past expiry + leeway
 *   -RE_EDENIED  expect_kind/expect_name differ     -RE_ENOENT  identity deleted
 * or an internal error (-RE_EDB, -RE_EBUSY, -RE_ENOMEM, -RE_ECRYPTO).
 */
int enroll_redeem(struct enroll_result *out, sqlite3 *db, const struct enroll_ca *ca,
                  const struct enroll_policy *pol, struct re_str code, struct re_str csr,
                  const char *expect_kind, const char *expect_name, const char *remote_addr,
                  int64_t now);

/* A new certificate for the identity kind/name whose current certificate
 * has serial cur_serial (the caller's, from mutual TLS), with csr's key.
 * Atomic against concurrent renewals and revocation: -RE_EDENIED when
 * cur_serial is no longer current or the identity is revoked; CSR errors as
 * enroll_redeem. (Not enroll_renew: the agent has one.) */
int enroll_renew_identity(struct enroll_result *out, sqlite3 *db, const struct enroll_ca *ca,
                 const struct enroll_policy *pol, const char *kind, const char *name,
                 const char *cur_serial, struct re_str csr, const char *remote_addr, int64_t now);

/* Revokes kind/name: revoked = 1, no current serial, its issued certificates
 * marked revoked, its unused codes cancelled. Audited as actor.
 * -RE_ENOENT unknown identity. */
int enroll_revoke(sqlite3 *db, const char *kind, const char *name, const char *actor, int64_t now);

#endif
