/* gitstream.h - the agent's own TLS stream for libgit2 (client certificate,
 * pinned CA), on shared/tls.h. */
#ifndef AGENT_GITSTREAM_H
#define AGENT_GITSTREAM_H

struct tls_config;

/* Registers the stream for every https:// transfer of this process. */
int gitstream_register(void);
void gitstream_cleanup(void);
/* Takes ownership of cfg (a client config from tls_config_new_client); the
 * previous one and its saved session are freed. */
void gitstream__set_config(struct tls_config *cfg);

#endif
