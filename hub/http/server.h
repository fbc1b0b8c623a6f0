/* server.h - the hub's HTTPS server: HTTP/1.1 over TLS on the hub's libuv
 * loop, request limits and timeouts, routing with certificate-based roles,
 * and graceful stop. Handlers see only http.h. */
#ifndef HUB_SERVER_H
#define HUB_SERVER_H

#include "buf.h"
#include "hub.h"
#include "routes.h"

struct server;

/*
 * Loads the TLS material from hub->cfg.dir (tls/ca.crt, tls/server.crt,
 * tls/server.key, tls/ticket.keys) and listens on hub->cfg.listen
 * ("127.0.0.1:8443", "[::1]:8443", "*:8443"; port 0 picks a free port, see
 * server_port). Limits are read from hub->cfg.limits on every use, so a
 * reload that changes them takes effect for new requests. Uses hub->metrics
 * when set. Requests are matched against routes (NULL-terminated tables).
 * On failure returns negative and err says why.
 */
int server_start(struct server **out, struct hub *hub, const struct route *const *routes,
                 struct re_buf *err);
/* The bound port (the real one when the configuration asked for 0). */
int server_port(const struct server *s);

/*
 * Graceful stop: stops accepting, closes idle connections, lets requests in
 * flight finish (their responses say Connection: close), then calls cb from
 * the loop once every handle of the server is closed. Connections still busy
 * after 10 s are cut. Call once.
 */
typedef void (*server_stop_cb)(struct server *s, void *arg);
void server_stop(struct server *s, server_stop_cb cb, void *arg);
/* Frees the server; call after stop completed (or when start failed). */
void server_free(struct server *s);

/* Readiness checks for GET /readyz: return 0 when ready, else negative and
 * write a reason into why. Called on the loop thread for each request. */
typedef int (*server_ready_fn)(void *arg, struct re_buf *why);
int server_ready_add(struct server *s, const char *name, server_ready_fn fn, void *arg);
/* A check that degrades but does not fail readiness (e.g. the push mirror:
 * a load balancer must not take the hub out of service over it): /readyz
 * stays 200 with {"status": "degraded", "degraded": [{"check", "message"}]}. */
int server_ready_add_warning(struct server *s, const char *name, server_ready_fn fn, void *arg);

/* Open connections right now. */
unsigned server_connections(const struct server *s);

/* GET /healthz, GET /readyz (public) and GET /metrics (admin, operator). */
extern const struct route server_routes[];

#endif
