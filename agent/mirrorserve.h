/* mirrorserve.h - the agent's read-only git smart-HTTP server for its local
 * bare mirror (STATE/mirror.git), so Flux in the store's cluster keeps
 * reconciling from the node while the WAN is down (mode mirror).
 *
 * It answers exactly two requests, for the one repository it serves:
 *   GET  /<name>.git/info/refs?service=git-upload-pack
 *   POST /<name>.git/git-upload-pack
 * Both run `git http-backend` (git's own CGI program: it decodes the gzip
 * request bodies the git CLI sends and runs `git upload-pack --stateless-rpc
 * [--advertise-refs]` on the mirror) with fork/exec-style posix_spawn, pipes,
 * no shell, protocol v0 only (Git-Protocol is not passed on, so wants must be
 * advertised tips) and refs under PULL_HIDDEN_REFS hidden. receive-pack gets
 * 403; other paths 404; a wrong method 405; a too-large header 431, body 413;
 * too many git processes at once 503 (Retry-After). One request per
 * connection (Connection: close).
 *
 * With a password set, every request needs HTTP basic auth as
 * MIRRORSERVE_USER with that password (compared in constant time) or gets
 * 401 with WWW-Authenticate: Basic realm="resedge-mirror". The agent sets one
 * (mirrorserve_token) unless it listens on loopback only (mirror_auth).
 * Slow clients cannot hold it: each connection must finish its header within
 * header_timeout_ms of its own accept and its whole request within
 * timeout_ms; one client address holds at most max_per_addr connections
 * (more are answered 503 and closed at once), all together max_conns.
 *
 * Requests are parsed with libhttp-parser. It runs on its own thread with a
 * poll() loop, so a blocking check-in or fetch on the agent's main loop never
 * stalls Flux, and the other way round. The server reads the repository only
 * through the git child processes; the main thread moves its refs. */
#ifndef AGENT_MIRRORSERVE_H
#define AGENT_MIRRORSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define MIRRORSERVE_DEFAULT_LISTEN   "127.0.0.1:8480"
#define MIRRORSERVE_MAX_BODY         (1024u * 1024)   /* request body bytes */
#define MIRRORSERVE_MAX_HEADER       (8u * 1024)      /* request line + header bytes */
#define MIRRORSERVE_TIMEOUT_MS       30000u           /* whole request, per connection */
#define MIRRORSERVE_HEADER_MS        5000u            /* its header, from its accept */
#define MIRRORSERVE_MAX_PROCS        4u               /* git processes at once */
#define MIRRORSERVE_MAX_CONNS        64u              /* open connections */
#define MIRRORSERVE_MAX_PER_ADDR     8u               /* open connections of one address */
#define MIRRORSERVE_HOST_MAX         256
#define MIRRORSERVE_USER             "resedge"        /* the basic-auth user name */
#define MIRRORSERVE_REALM            "resedge-mirror"
#define MIRRORSERVE_TOKEN_FILE       "mirror.token"   /* in the state directory, 0600 */
#define MIRRORSERVE_TOKEN_BYTES      32               /* random bytes: 256 bits */
#define MIRRORSERVE_TOKEN_BUF        (2 * MIRRORSERVE_TOKEN_BYTES + 1)   /* as hex */

struct mirrorserve;

struct mirrorserve_opts {
    const char *listen;           /* "host:port", "[v6]:port", ":port" (all addresses) */
    const char *git_dir;          /* the bare repository served (made absolute) */
    const char *name;             /* served as /<name>.git */
    const char *git;              /* program; NULL: "git" from PATH */
    const char *hidden_refs;      /* uploadpack.hideRefs value; NULL: none */
    const char *password;         /* basic auth as MIRRORSERVE_USER; NULL: no auth */
    /* Limits; 0 takes the MIRRORSERVE_* default. */
    size_t max_body;
    size_t max_header;
    unsigned timeout_ms;
    unsigned header_timeout_ms;
    unsigned max_procs;
    unsigned max_conns;
    unsigned max_per_addr;
};

/* Splits "host:port" ("[v6]:port"; an empty host means every address) into
 * host (without brackets) and port 1-65535. -RE_EINVAL when malformed. */
int mirrorserve_parse_listen(char host[MIRRORSERVE_HOST_MAX], unsigned *port, const char *listen);

/* Does listen name loopback addresses only (127.0.0.0/8, ::1, localhost)?
 * A wildcard, any other address or a malformed value: false. */
bool mirrorserve_listen_is_loopback(const char *listen);

/* The mirror's password: the token in STATE/MIRRORSERVE_TOKEN_FILE, made on
 * first use from MIRRORSERVE_TOKEN_BYTES of the crypto RNG (hex, file mode
 * 0600; a file that does not hold a token is replaced). out is written on
 * success only. -RE_EIO and friends (err says why). */
int mirrorserve_token(char out[MIRRORSERVE_TOKEN_BUF], const char *state_dir,
                      struct re_buf *err);

/* Binds the listening socket and starts the server thread. -RE_EINVAL (bad
 * options), -RE_EIO (cannot bind: err says why), -RE_ENOMEM. The options'
 * strings are copied. */
int mirrorserve_start(struct mirrorserve **out, const struct mirrorserve_opts *o,
                      struct re_buf *err);

/* Stops the thread, kills and reaps the git processes it started, closes
 * every socket, frees ms. NULL is fine. */
void mirrorserve_stop(struct mirrorserve *ms);

/* The port actually bound (useful with port 0 in tests). */
unsigned mirrorserve_port(const struct mirrorserve *ms);

/* The URL Flux should use: http://<host>:<port>/<name>.git, where host is
 * the listening address, or for a wildcard listen (0.0.0.0, ::, empty) the
 * first non-loopback IPv4 address of the node (127.0.0.1 when there is
 * none). Sites where pods reach the node differently set mirror_url. */
int mirrorserve_default_url(char *out, size_t size, const char *listen, const char *name);

#endif
