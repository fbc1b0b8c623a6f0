/* config.h - the agent's configuration: /etc/resedge/agent.conf ([agent]
 * section) and the same keys as command-line flags (flags win).
 *
 *   [agent]
 *   state_dir = /var/lib/resedge-agent
 *   interval = 60s             check-in interval (±20% jitter)
 *   mode = none                flux | mirror | apply | none
 *   identity = ...             cluster identity when no Kubernetes API is reachable
 *   label = key=value          repeatable
 *   apply_command = kubectl apply -k {dir}
 *   apply_timeout = 5m
 *   kubeconfig = /etc/rancher/k3s/k3s.yaml
 *   kubectl = kubectl          program used to read the Kubernetes API
 *   mirror_listen = 127.0.0.1:8480  where mode mirror serves STATE/mirror.git over
 *                              HTTP (read-only); "none": not served by the agent
 *   mirror_auth = auto         on | off | auto (on unless mirror_listen is loopback):
 *                              basic auth with the token in STATE/mirror.token,
 *                              which the agent writes into Flux's Secret
 *   mirror_url = http://...    Flux's source in mirror mode (default: derived
 *                              from mirror_listen, see mirrorserve.h)
 *   backoff_cap = 10m
 *   keep_revisions = 3
 *   log_level = info
 *
 * Flag names are the keys with '_' as '-': --state-dir, --interval,
 * --apply-command, ... and --label k=v (repeatable). */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define AGENT_DEFAULT_CONFIG    "/etc/resedge/agent.conf"
#define AGENT_DEFAULT_STATE_DIR "/var/lib/resedge-agent"
#define AGENT_MAX_LABELS        64
#define AGENT_LABEL_KEY_MAX     253
#define AGENT_LABEL_VALUE_MAX   63

enum agent_mode { AGENT_MODE_NONE = 0, AGENT_MODE_FLUX, AGENT_MODE_MIRROR, AGENT_MODE_APPLY };
enum agent_mirror_auth { AGENT_MIRROR_AUTH_AUTO = 0, AGENT_MIRROR_AUTH_ON, AGENT_MIRROR_AUTH_OFF };

struct agent_label {
    char *key;
    char *value;
};

struct agent_config {
    char *config_path;               /* NULL: none loaded */
    char *state_dir;
    uint64_t interval_ms;
    bool interval_set;               /* given explicitly: wins over the hub's */
    enum agent_mode mode;
    char *identity;                  /* NULL: unset */
    struct agent_label labels[AGENT_MAX_LABELS];
    size_t n_labels;
    char *apply_command;             /* NULL: mode default */
    uint64_t apply_timeout_ms;
    char *kubeconfig;
    char *kubectl;
    char *mirror_url;
    char *mirror_listen;             /* NULL: MIRRORSERVE_DEFAULT_LISTEN; "none": off */
    enum agent_mirror_auth mirror_auth;
    uint64_t backoff_cap_ms;
    unsigned keep_revisions;
    int log_level;
};

void agent_config_defaults(struct agent_config *cfg);
void agent_config_release(struct agent_config *cfg);

/* Reads path over cfg. Unknown keys and bad values: -RE_EINVAL and err gets
 * "path:line: message"; -RE_ENOENT when the file does not exist (err set).
 * cfg may be partly updated on failure (callers exit). */
int agent_config_load(struct agent_config *cfg, const char *path, struct re_buf *err);
/* Applies one setting by key (config spelling, e.g. "state_dir") from a
 * flag or a file. -RE_EINVAL (err says why) for an unknown key or bad value. */
int agent_config_set(struct agent_config *cfg, const char *key, const char *value,
                     struct re_buf *err);
/* Parses "key=value" into a label (replacing one with the same key). */
int agent_config_add_label(struct agent_config *cfg, const char *kv, struct re_buf *err);

/* Parses the flags of `run` (argv[0] is the subcommand): --config is read
 * first, then every other flag overrides. -RE_EINVAL with err; 1 when --help
 * was asked (nothing else done). */
int agent_config_from_args(struct agent_config *cfg, int argc, char **argv, struct re_buf *err);

/* Where the agent's mirror server listens: mirror_listen, else the default
 * ("none" when it serves none). */
const char *agent_config_mirror_listen(const struct agent_config *cfg);
/* Does the agent's mirror server require basic auth? mirror_auth on/off, or
 * for auto: unless it listens on loopback only. */
bool agent_config_mirror_auth(const struct agent_config *cfg);

const char *agent_mode_name(enum agent_mode m);
int agent_mode_parse(enum agent_mode *out, const char *s);

#endif
