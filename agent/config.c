/* config.c - the agent's configuration file and flags (one key list for both). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "config.h"
#include "conf.h"
#include "error.h"
#include "validate.h"
#include "log.h"
#include "mirrorserve.h"

static const struct re_conf_key known_keys[] = {
    { "agent", "state_dir", RE_CONF_STRING },
    { "agent", "interval", RE_CONF_DURATION },
    { "agent", "mode", RE_CONF_STRING },
    { "agent", "identity", RE_CONF_STRING },
    { "agent", "label", RE_CONF_STRING },
    { "agent", "apply_command", RE_CONF_STRING },
    { "agent", "apply_timeout", RE_CONF_DURATION },
    { "agent", "kubeconfig", RE_CONF_STRING },
    { "agent", "kubectl", RE_CONF_STRING },
    { "agent", "mirror_url", RE_CONF_STRING },
    { "agent", "mirror_listen", RE_CONF_STRING },
    { "agent", "mirror_auth", RE_CONF_STRING },
    { "agent", "backoff_cap", RE_CONF_DURATION },
    { "agent", "keep_revisions", RE_CONF_UINT },
    { "agent", "log_level", RE_CONF_STRING },
    { NULL, NULL, 0 },
};

static const char *const mode_names[] = { "none", "flux", "mirror", "apply" };

const char *agent_mode_name(enum agent_mode m)
{
    return (unsigned)m < 4 ? mode_names[m] : "?";
}

int agent_mode_parse(enum agent_mode *out, const char *s)
{
    for (unsigned i = 0; i < 4; i++)
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (enum agent_mode)i;
            return 0;
        }
    return -RE_EINVAL;
}

void agent_config_defaults(struct agent_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->state_dir = strdup(AGENT_DEFAULT_STATE_DIR);
    cfg->interval_ms = 60000;
    cfg->mode = AGENT_MODE_NONE;
    cfg->apply_timeout_ms = 5 * 60000;
    cfg->kubectl = strdup("kubectl");
    cfg->backoff_cap_ms = 10 * 60000;
    cfg->keep_revisions = 3;
    cfg->log_level = RE_LOG_INFO;
}

void agent_config_release(struct agent_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->config_path);
    free(cfg->state_dir);
    free(cfg->identity);
    for (size_t i = 0; i < cfg->n_labels; i++) {
        free(cfg->labels[i].key);
        free(cfg->labels[i].value);
    }
    free(cfg->apply_command);
    free(cfg->kubeconfig);
    free(cfg->kubectl);
    free(cfg->mirror_url);
    free(cfg->mirror_listen);
    memset(cfg, 0, sizeof(*cfg));
}

const char *agent_config_mirror_listen(const struct agent_config *cfg)
{
    return cfg->mirror_listen ? cfg->mirror_listen : MIRRORSERVE_DEFAULT_LISTEN;
}

bool agent_config_mirror_auth(const struct agent_config *cfg)
{
    if (cfg->mirror_auth != AGENT_MIRROR_AUTH_AUTO)
        return cfg->mirror_auth == AGENT_MIRROR_AUTH_ON;
    return !mirrorserve_listen_is_loopback(agent_config_mirror_listen(cfg));
}

bool agent__label_key_ok(const char *k);
bool agent__label_key_ok(const char *k)
{
    return strlen(k) <= AGENT_LABEL_KEY_MAX && validate_label_key(re_str_c(k), NULL) == 0;
}

bool agent__label_value_ok(const char *v);
bool agent__label_value_ok(const char *v)
{
    return validate_label_value(re_str_c(v), NULL) == 0;
}

int agent_config_add_label(struct agent_config *cfg, const char *kv, struct re_buf *err)
{
    const char *eq = strchr(kv, '=');
    char *key = NULL, *value = NULL;
    int r = -RE_EINVAL;
    if (!eq) {
        re_buf_printf(err, "label '%s' is not key=value", kv);
        goto out;
    }
    key = strndup(kv, (size_t)(eq - kv));
    value = strdup(eq + 1);
    if (!key || !value) {
        r = -RE_ENOMEM;
        goto out;
    }
    if (!agent__label_key_ok(key)) {
        re_buf_printf(err, "label key '%s' is not a Kubernetes label name", key);
        goto out;
    }
    if (!agent__label_value_ok(value)) {
        re_buf_printf(err, "label value '%s' is not a Kubernetes label value "
                      "(at most 63 of A-Z a-z 0-9 . _ -)", value);
        goto out;
    }
    for (size_t i = 0; i < cfg->n_labels; i++) {
        if (strcmp(cfg->labels[i].key, key) == 0) {
            free(cfg->labels[i].value);
            cfg->labels[i].value = value;
            value = NULL;
            r = 0;
            goto out;
        }
    }
    if (cfg->n_labels >= AGENT_MAX_LABELS) {
        re_buf_printf(err, "too many labels (at most %d)", AGENT_MAX_LABELS);
        goto out;
    }
    cfg->labels[cfg->n_labels].key = key;
    cfg->labels[cfg->n_labels].value = value;
    cfg->n_labels++;
    key = value = NULL;
    r = 0;
out:
    free(key);
    free(value);
    return r;
}

static int set_str(char **dst, const char *value)
{
    char *c = strdup(value);
    if (!c)
        return -RE_ENOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

static int set_duration(uint64_t *dst, const char *key, const char *value, uint64_t min_ms,
                        uint64_t max_ms, struct re_buf *err)
{
    unsigned long long ms;
    if (re_parse_duration_ms(&ms, value) < 0 || ms < min_ms || ms > max_ms) {
        re_buf_printf(err, "bad value '%s' for '%s': expected a duration from %llums to %llus",
                      value, key, (unsigned long long)min_ms, (unsigned long long)max_ms / 1000);
        return -RE_EINVAL;
    }
    *dst = ms;
    return 0;
}

int agent_config_set(struct agent_config *cfg, const char *key, const char *value,
                     struct re_buf *err)
{
    if (strcmp(key, "state_dir") == 0) {
        if (value[0] == '\0') {
            re_buf_printf(err, "'state_dir' must not be empty");
            return -RE_EINVAL;
        }
        return set_str(&cfg->state_dir, value);
    }
    if (strcmp(key, "interval") == 0) {
        cfg->interval_set = true;
        return set_duration(&cfg->interval_ms, key, value, 1000, 86400ull * 1000, err);
    }
    if (strcmp(key, "apply_timeout") == 0)
        return set_duration(&cfg->apply_timeout_ms, key, value, 1000, 86400ull * 1000, err);
    if (strcmp(key, "backoff_cap") == 0)
        return set_duration(&cfg->backoff_cap_ms, key, value, 1000, 86400ull * 1000, err);
    if (strcmp(key, "mode") == 0) {
        if (agent_mode_parse(&cfg->mode, value) < 0) {
            re_buf_printf(err, "bad value '%s' for 'mode': expected flux, mirror, apply or none",
                          value);
            return -RE_EINVAL;
        }
        return 0;
    }
    if (strcmp(key, "identity") == 0) {
        size_t n = strlen(value);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)value[i] < 0x21 || value[i] == 0x7f) {
                re_buf_printf(err, "bad value for 'identity': no spaces or control characters");
                return -RE_EINVAL;
            }
        if (n == 0 || n > 128) {
            re_buf_printf(err, "bad value for 'identity': 1 to 128 characters");
            return -RE_EINVAL;
        }
        return set_str(&cfg->identity, value);
    }
    if (strcmp(key, "label") == 0)
        return agent_config_add_label(cfg, value, err);
    if (strcmp(key, "apply_command") == 0) {
        if (value[0] == '\0') {
            re_buf_printf(err, "'apply_command' must not be empty");
            return -RE_EINVAL;
        }
        return set_str(&cfg->apply_command, value);
    }
    if (strcmp(key, "kubeconfig") == 0)
        return set_str(&cfg->kubeconfig, value);
    if (strcmp(key, "kubectl") == 0)
        return set_str(&cfg->kubectl, value);
    if (strcmp(key, "mirror_url") == 0) {
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
            re_buf_printf(err, "bad value '%s' for 'mirror_url': Flux needs http:// or https://",
                          value);
            return -RE_EINVAL;
        }
        return set_str(&cfg->mirror_url, value);
    }
    if (strcmp(key, "mirror_listen") == 0) {
        char host[MIRRORSERVE_HOST_MAX];
        unsigned port;
        if (strcmp(value, "none") != 0 && mirrorserve_parse_listen(host, &port, value) < 0) {
            re_buf_printf(err, "bad value '%s' for 'mirror_listen': expected HOST:PORT "
                          "([V6ADDR]:PORT for IPv6) or none", value);
            return -RE_EINVAL;
        }
        return set_str(&cfg->mirror_listen, value);
    }
    if (strcmp(key, "mirror_auth") == 0) {
        static const char *const names[] = { "auto", "on", "off" };
        for (unsigned i = 0; i < 3; i++)
            if (strcmp(value, names[i]) == 0) {
                cfg->mirror_auth = (enum agent_mirror_auth)i;
                return 0;
            }
        re_buf_printf(err, "bad value '%s' for 'mirror_auth': expected auto, on or off", value);
        return -RE_EINVAL;
    }
    if (strcmp(key, "keep_revisions") == 0) {
        unsigned long long u;
        if (re_parse_uint(&u, value, 100) < 0 || u < 1) {
            re_buf_printf(err, "bad value '%s' for 'keep_revisions': expected 1 to 100", value);
            return -RE_EINVAL;
        }
        cfg->keep_revisions = (unsigned)u;
        return 0;
    }
    if (strcmp(key, "log_level") == 0) {
        int l = re_log_level_parse(value);
        if (l < 0) {
            re_buf_printf(err, "bad value '%s' for 'log_level': expected error, warning, "
                          "notice, info or debug", value);
            return -RE_EINVAL;
        }
        cfg->log_level = l;
        return 0;
    }
    re_buf_printf(err, "unknown setting '%s'", key);
    return -RE_EINVAL;
}

int agent_config_load(struct agent_config *cfg, const char *path, struct re_buf *err)
{
    struct re_conf *c = NULL;
    struct re_buf why;
    int r;
    re_buf_init(&why, 1024);
    if ((r = re_conf_load(&c, path, err)) < 0)
        goto out;
    if ((r = re_conf_validate(c, known_keys, err)) < 0)
        goto out;
    for (size_t i = 0; i < c->n; i++) {
        const struct re_conf_entry *e = &c->entries[i];
        re_buf_reset(&why);
        if ((r = agent_config_set(cfg, e->key, e->value, &why)) < 0) {
            re_buf_printf(err, "%s:%d: %s", path, e->line, why.ptr ? why.ptr : re_strerror(r));
            goto out;
        }
    }
    r = set_str(&cfg->config_path, path);
out:
    re_buf_release(&why);
    re_conf_free(c);
    return r;
}

/* --flag-name -> flag_name (at most 31 characters). */
static int flag_key(char *out, size_t size, const char *flag)
{
    size_t n = strlen(flag);
    if (n < 3 || n - 2 >= size || flag[0] != '-' || flag[1] != '-')
        return -RE_EINVAL;
    for (size_t i = 2; i <= n; i++)
        out[i - 2] = flag[i] == '-' ? '_' : flag[i];
    return 0;
}

int agent_config_from_args(struct agent_config *cfg, int argc, char **argv, struct re_buf *err)
{
    const char *config = NULL;
    bool explicit_config = false;
    struct re_buf why;
    int r = 0;
    re_buf_init(&why, 1024);
    /* First pass: --config and --help. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            r = 1;
            goto out;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                re_buf_printf(err, "--config needs a value");
                r = -RE_EINVAL;
                goto out;
            }
            config = argv[++i];
            explicit_config = true;
        }
    }
    if (!config) {
        struct stat sb;
        if (stat(AGENT_DEFAULT_CONFIG, &sb) == 0)
            config = AGENT_DEFAULT_CONFIG;
    }
    if (config && (r = agent_config_load(cfg, config, err)) < 0) {
        if (r == -RE_ENOENT && !explicit_config)
            r = 0;
        else
            goto out;
    }
    for (int i = 1; i < argc; i++) {
        char key[32];
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (flag_key(key, sizeof(key), argv[i]) < 0) {
            re_buf_printf(err, "unexpected argument '%s'", argv[i]);
            r = -RE_EINVAL;
            goto out;
        }
        const struct re_conf_key *k;
        for (k = known_keys; k->key; k++)
            if (strcmp(k->key, key) == 0)
                break;
        if (!k->key) {
            re_buf_printf(err, "unknown option '%s'", argv[i]);
            r = -RE_EINVAL;
            goto out;
        }
        if (i + 1 >= argc) {
            re_buf_printf(err, "%s needs a value", argv[i]);
            r = -RE_EINVAL;
            goto out;
        }
        re_buf_reset(&why);
        if ((r = agent_config_set(cfg, key, argv[++i], &why)) < 0) {
            re_buf_printf(err, "%s: %s", argv[i - 1], why.ptr ? why.ptr : re_strerror(r));
            goto out;
        }
    }
out:
    re_buf_release(&why);
    return r;
}
