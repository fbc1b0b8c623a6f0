/* tls.h - the TLS engine behind a memory-BIO API: the caller moves ciphertext
 * between the socket and a tls_conn; tls_conn turns it into plaintext and back.
 * Engine-agnostic on purpose (mbedTLS 2.28 today): no engine type leaks here.
 *
 * Server policy: TLS 1.2 minimum, ECDHE with AEAD suites only (AES-GCM,
 * ChaCha20-Poly1305), no renegotiation, no compression, optional client
 * certificate checked against the CA (the application decides what an
 * unauthenticated peer may do), session tickets sealed with AES-256-GCM keys
 * that rotate and are kept in a file so they survive a restart. */
#ifndef RE_TLS_H
#define RE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "buf.h"

/* ---- configuration (one per process, shared by its connections) ---- */

struct tls_server_options {
    const char *ca_file;            /* PEM CA(s) client certificates must chain to */
    const char *cert_file;          /* server certificate (PEM, chain allowed) */
    const char *key_file;           /* its private key (PEM) */
    const char *ticket_key_file;    /* NULL: ticket keys live in memory only */
    unsigned ticket_rotate_s;       /* 0: default 12 h; tickets live this long */
    bool ticket_keys_read_only;     /* the key file must exist; never rotated or
                                     * written (a reader beside the hub) */
};

struct tls_client_options {
    const char *ca_file;            /* PEM CA to verify the server against (required) */
    const char *cert_file;          /* client certificate, or NULL */
    const char *key_file;           /* its key, or NULL */
};

struct tls_config;

/* Loads certificates and keys. On failure returns negative (-RE_EIO unreadable
 * file, -RE_EPARSE bad PEM, -RE_ETLS engine error) and err, when not NULL,
 * gets a message naming the file. The ticket key file is created (mode 0600)
 * when missing. */
int tls_config_new_server(struct tls_config **out, const struct tls_server_options *o,
                          struct re_buf *err);
int tls_config_new_client(struct tls_config **out, const struct tls_client_options *o,
                          struct re_buf *err);
void tls_config_free(struct tls_config *cfg);            /* NULL-safe; after its conns */

/* Ticket keys: rotates now if the current key is older than the rotation
 * period (handshakes also do this lazily). Returns 0 or a negative RE error
 * when the key file cannot be written (the keys still rotate in memory). */
int tls_config_rotate_tickets(struct tls_config *cfg, bool force);
/* Number of ticket keys currently accepted (current + previous), for tests. */
unsigned tls_config_ticket_keys(const struct tls_config *cfg);

/* ---- sessions (client side resumption) ---- */

struct tls_session;
void tls_session_free(struct tls_session *s);            /* NULL-safe */

/* The bench's admin path to many resumable sessions without a handshake each
 * (resedge-sim): a client session like tmpl (one saved from a real handshake
 * with the server srv stands for) with a fresh master secret, and its ticket,
 * sealed with srv's current ticket key, carrying client_der as the client's
 * certificate, verified. Whoever holds a server's ticket keys can do this;
 * the server cannot tell such a ticket from one it issued. srv: a server
 * configuration (ticket_keys_read_only beside a running hub). */
int tls_session_mint(struct tls_session **out, struct tls_config *srv,
                     const struct tls_session *tmpl, const unsigned char *client_der,
                     size_t der_len);

/* ---- connections ---- */

struct tls_conn;

/* A server-side connection; cfg must outlive it. */
int tls_conn_new_server(struct tls_conn **out, struct tls_config *cfg);
/* A client-side connection verifying the server's name against hostname
 * (DNS name or IP literal in the certificate); session may be NULL, else a
 * session saved from an earlier connection to resume. */
int tls_conn_new_client(struct tls_conn **out, struct tls_config *cfg, const char *hostname,
                        const struct tls_session *session);
void tls_conn_free(struct tls_conn *c);                  /* NULL-safe */

/* Ciphertext received from the peer. Bounded: -RE_ETOOBIG past 1 MiB unread. */
int tls_conn_feed(struct tls_conn *c, const void *data, size_t len);

/* Advances the handshake: 0 once complete, -RE_EAGAIN when it needs more
 * input (send tls_conn_take_output first), -RE_ETLS on failure (an alert may
 * be waiting in the output). */
int tls_conn_handshake(struct tls_conn *c);
bool tls_conn_handshake_done(const struct tls_conn *c);

/* Plaintext from the peer: >0 bytes copied, -RE_EAGAIN when a full record has
 * not arrived yet, 0 when the peer sent close_notify, -RE_ETLS on error. */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len);
/* Encrypts all of data into the pending output. 0 or -RE_ETLS. */
int tls_conn_write(struct tls_conn *c, const void *data, size_t len);
/* Queues a close_notify alert. */
int tls_conn_close_notify(struct tls_conn *c);

/* Ciphertext to send: ownership of a malloc'd buffer passes to the caller;
 * NULL (and *len = 0) when there is nothing to send. */
char *tls_conn_take_output(struct tls_conn *c, size_t *len);
size_t tls_conn_output_len(const struct tls_conn *c);

/* What the handshake established (valid once tls_conn_handshake returned 0). */
struct tls_peer_info {
    bool cert_present;              /* the peer sent a certificate */
    bool verified;                  /* it chains to the CA, is in its validity
                                     * period and usable for this purpose */
    bool resumed;                   /* abbreviated handshake (ticket) */
    char subject_cn[128];
    char uri_san[256];              /* first URI SAN, "" if none */
    char serial[64];                /* lowercase hex, no colons, no leading zero bytes */
    char cipher[64];                /* negotiated suite name */
    char version[16];               /* "TLSv1.2" */
    char verify_error[128];         /* why verification failed, "" if it did not */
};
const struct tls_peer_info *tls_conn_peer(const struct tls_conn *c);
/* Convenience: a certificate was presented and verified. */
bool tls_conn_authenticated(const struct tls_conn *c);

/* Client: the session after a completed handshake, for a later resumption.
 * *out is owned by the caller (tls_session_free). */
int tls_conn_get_session(struct tls_session **out, const struct tls_conn *c);

#endif
