/* enroll.h - joining the hub with a one-time code (kubeadm-join style: the
 * hub's CA is pinned by its SHA-256 fingerprint, never trusted on first use)
 * and renewing the node's certificate over mutual TLS with a new key. */
#ifndef AGENT_ENROLL_H
#define AGENT_ENROLL_H

#include <stdbool.h>
#include <signal.h>
#include "buf.h"
#include "state.h"

struct hubclient;

struct enroll_opts {
    const char *hub_url;             /* https://HUB:PORT */
    const char *code;                /* <id>.<secret> */
    const char *ca_fingerprint;      /* sha256:<64 hex>, any case, colons allowed */
    const char *state_dir;
    bool force;                      /* replace an existing enrollment */
    volatile sig_atomic_t *abort_flag;
};

/* Normalizes "sha256:AB:cd..." into "sha256:abcd..." (72 bytes with NUL).
 * -RE_EINVAL when it is not a SHA-256 fingerprint. */
int enroll_normalize_fingerprint(char out[72], const char *in);
/* Does the first certificate in ca_pem have fingerprint expected (normalized
 * by the function above)? Constant-time comparison. 0; -RE_EBADSIG on a
 * mismatch (err says both); -RE_EPARSE; -RE_EINVAL when it is not a CA. */
int enroll_check_ca(const char *ca_pem, size_t len, const char *expected, struct re_buf *err);
/* The CA PEM from GET /api/v1/enroll/ca's body: PEM text, or JSON with "ca". */
int enroll_extract_ca(struct re_buf *out, const char *body, size_t len);

/* The whole flow. Writes nothing unless every check passed; files go to the
 * state directory atomically, agent.state last. On success out gets the
 * cluster name and identity (st). err explains failures. */
int enroll_run(struct agent_state *st, const struct enroll_opts *o, struct re_buf *err);

/* Writes key_pem and cert_pem under new names and then agent.state pointing
 * at them (the commit point), then removes the previous pair. st is updated
 * on success (cert times, renew_at, names). */
int enroll_install_credentials(struct agent_state *st, const char *dir, const char *key_pem,
                               const char *cert_pem, struct re_buf *err);

/* Renews over mutual TLS (c is authenticated by the current certificate):
 * new key, POST /api/v1/renew {"csr"}, install. -RE_EDENIED when the hub
 * refused (revoked), other negative errors with err. */
int enroll_renew(struct agent_state *st, const char *dir, struct hubclient *c,
                 struct re_buf *err);

#endif
