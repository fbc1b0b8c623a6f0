/* hubclient.h - HTTPS requests to the hub with libcurl: one reused handle
 * (connection and TLS session reuse), the hub's CA pinned, an optional client
 * certificate, bounded response bodies, no redirects, timeouts, and an abort
 * flag so SIGTERM interrupts a transfer. */
#ifndef AGENT_HUBCLIENT_H
#define AGENT_HUBCLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

#define HUBCLIENT_MAX_BODY (1024 * 1024)

struct hubclient_opts {
    const char *base_url;            /* "https://hub:8443" */
    const char *ca_pem;              /* pinned CA (PEM text); NULL only with insecure */
    const char *cert_file;           /* client certificate, or NULL */
    const char *key_file;
    bool insecure;                   /* bootstrap only: no verification at all */
    long connect_timeout_ms;         /* 0: 10 s */
    long timeout_ms;                 /* 0: 30 s */
    volatile sig_atomic_t *abort_flag; /* transfer stops when *abort_flag != 0 */
};

struct hubclient_resp {
    long status;                     /* HTTP status, 0 when no answer */
    struct re_buf body;              /* bounded by HUBCLIENT_MAX_BODY */
    long retry_after_s;              /* Retry-After in seconds, -1 when absent */
    char location[256];              /* Location of a redirect, "" if none */
};

struct hubclient;

int hubclient_new(struct hubclient **out, const struct hubclient_opts *o);
void hubclient_free(struct hubclient *c);                 /* NULL-safe */

void hubclient_resp_init(struct hubclient_resp *r);
void hubclient_resp_release(struct hubclient_resp *r);

/* method "GET" or "POST" (body JSON, may be NULL), path "/api/v1/...".
 * Returns 0 whenever the hub answered (any status; 3xx is not followed).
 * Transport failures: -RE_ETIMEOUT, -RE_ETLS (handshake, verification),
 * -RE_ETOOBIG (body over the bound), -RE_EAGAIN (aborted), -RE_EIO (could not
 * connect); err gets libcurl's explanation. */
int hubclient_request(struct hubclient *c, const char *method, const char *path,
                      const char *body, size_t body_len, struct hubclient_resp *resp,
                      struct re_buf *err);

/* An error body's message ({"error": {"message"}}), or a bounded excerpt. */
void hubclient_error_message(char *out, size_t size, const struct hubclient_resp *resp);

/* Process-wide libcurl initialization (call once from main). */
int hubclient_global_init(void);
void hubclient_global_cleanup(void);

#endif
