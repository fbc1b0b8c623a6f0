/* config.c - hub.conf: defaults, loading, validation. */
#include <stdlib.h>
#include <string.h>
#include "conf.h"
#include "error.h"
#include "fsutil.h"
#include "hub.h"
#include "log.h"
#include "validate.h"

static const struct re_conf_key known_keys[] = {
    { "server", "listen", RE_CONF_STRING },
    { "server", "max_header_bytes", RE_CONF_UINT },
    { "server", "max_body_bytes", RE_CONF_UINT },
    { "server", "max_json_depth", RE_CONF_UINT },
    { "server", "max_connections", RE_CONF_UINT },
    { "server", "header_timeout", RE_CONF_DURATION },
    { "server", "body_timeout", RE_CONF_DURATION },
    { "server", "idle_timeout", RE_CONF_DURATION },
    { "server", "max_requests_per_connection", RE_CONF_UINT },
    { "pki", "trust_domain", RE_CONF_STRING },
    { "pki", "cert_lifetime", RE_CONF_DURATION },
    { "pki", "ticket_rotate", RE_CONF_DURATION },
    { "log", "level", RE_CONF_STRING },
    { "log", "file", RE_CONF_STRING },
    { "gitops", "mirror", RE_CONF_STRING },
    { "gitops", "mirror_credentials", RE_CONF_STRING },
    { "gitops", "mirror_retry_max", RE_CONF_DURATION },
    { "tenancy", "technician_groups", RE_CONF_STRING },
    { NULL, NULL, 0 },
};

void hub_config_defaults(struct hub_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = strdup("127.0.0.1:8443");
    cfg->trust_domain = strdup("resedge");
    cfg->log_level = RE_LOG_INFO;
    cfg->cert_lifetime_days = 30;
    cfg->ticket_rotate_s = 12 * 3600;
    cfg->mirror_retry_max_ms = 5 * 60 * 1000;
    cfg->technician_groups = strdup("/stores");
    cfg->limits = (struct hub_limits){
        .max_header_bytes = 16 * 1024,
        .max_body_bytes = 8 * 1024 * 1024,
        .max_json_depth = 32,
        .max_connections = 20000,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .body_timeout_ms = 30000,
        .max_requests_per_conn = 1000,
    };
}

void hub_config_release(struct hub_config *cfg)
{
    free(cfg->dir);
    free(cfg->listen);
    free(cfg->trust_domain);
    free(cfg->log_file);
    free(cfg->mirror_url);
    free(cfg->mirror_credentials);
    free(cfg->technician_groups);
    memset(cfg, 0, sizeof(*cfg));
}

static int set_str(char **dst, const char *v)
{
    char *p = strdup(v);
    if (!p)
        return -RE_ENOMEM;
    free(*dst);
    *dst = p;
    return 0;
}

/* Values were type-checked by re_conf_validate, so the parses below succeed. */
static unsigned long long num(const struct re_conf *c, const char *s, const char *k,
                              unsigned long long dflt)
{
    const char *v = re_conf_get(c, s, k);
    unsigned long long u = dflt;
    if (v)
        re_parse_uint(&u, v, ~0ULL >> 1);
    return u;
}

static unsigned long long dur(const struct re_conf *c, const char *s, const char *k,
                              unsigned long long dflt)
{
    const char *v = re_conf_get(c, s, k);
    unsigned long long u = dflt;
    if (v)
        re_parse_duration_ms(&u, v);
    return u;
}

int hub_config_load(struct hub_config *cfg, const char *dir, struct re_buf *err)
{
    char path[4096];
    struct re_conf *c = NULL;
    struct hub_limits *l = &cfg->limits;
    const char *v;
    int r;

    if ((r = re_path_join(path, sizeof(path), dir, HUB_CONF_FILE)) < 0 ||
        (r = re_conf_load(&c, path, err)) < 0 || (r = re_conf_validate(c, known_keys, err)) < 0)
        goto out;
    if ((v = re_conf_get(c, "server", "listen")) && (r = set_str(&cfg->listen, v)) < 0)
        goto out;
    if ((v = re_conf_get(c, "pki", "trust_domain")) && (r = set_str(&cfg->trust_domain, v)) < 0)
        goto out;
    if ((v = re_conf_get(c, "log", "file")) && *v && (r = set_str(&cfg->log_file, v)) < 0)
        goto out;
    if ((v = re_conf_get(c, "gitops", "mirror")) && *v && (r = set_str(&cfg->mirror_url, v)) < 0)
        goto out;
    if ((v = re_conf_get(c, "gitops", "mirror_credentials")) && *v &&
        (r = set_str(&cfg->mirror_credentials, v)) < 0)
        goto out;
    if ((v = re_conf_get(c, "tenancy", "technician_groups"))) {
        /* each a group path; "" lets technicians create clusters nowhere */
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, " \t,");
            const char *why = NULL;
            if (n && validate_group_path((struct re_str){ p, n }, &why) < 0) {
                re_buf_printf(err, "%s: technician_groups: '%.*s' %s", path, (int)n, p, why);
                r = -RE_EINVAL;
                goto out;
            }
            p += n;
            p += strspn(p, " \t,");
        }
        if ((r = set_str(&cfg->technician_groups, v)) < 0)
            goto out;
    }
    if ((v = re_conf_get(c, "log", "level"))) {
        int lvl = re_log_level_parse(v);
        if (lvl < 0) {
            re_buf_printf(err, "%s: bad value '%s' for 'level': expected error, warning, "
                          "notice, info or debug", path, v);
            r = -RE_EINVAL;
            goto out;
        }
        cfg->log_level = lvl;
    }
    l->max_header_bytes = num(c, "server", "max_header_bytes", l->max_header_bytes);
    l->max_body_bytes = num(c, "server", "max_body_bytes", l->max_body_bytes);
    l->max_json_depth = (int)num(c, "server", "max_json_depth", (unsigned)l->max_json_depth);
    l->max_connections = num(c, "server", "max_connections", l->max_connections);
    l->max_requests_per_conn = num(c, "server", "max_requests_per_connection",
                                   l->max_requests_per_conn);
    l->header_timeout_ms = dur(c, "server", "header_timeout", l->header_timeout_ms);
    l->body_timeout_ms = dur(c, "server", "body_timeout", l->body_timeout_ms);
    l->idle_timeout_ms = dur(c, "server", "idle_timeout", l->idle_timeout_ms);
    cfg->cert_lifetime_days = dur(c, "pki", "cert_lifetime",
                                  cfg->cert_lifetime_days * 86400000ULL) / 86400000ULL;
    cfg->ticket_rotate_s = dur(c, "pki", "ticket_rotate", cfg->ticket_rotate_s * 1000ULL) / 1000;
    cfg->mirror_retry_max_ms = dur(c, "gitops", "mirror_retry_max", cfg->mirror_retry_max_ms);
    if (l->max_header_bytes < 1024 || l->max_json_depth < 2 || l->max_connections < 1 ||
        cfg->cert_lifetime_days < 1 || cfg->mirror_retry_max_ms < 100) {
        re_buf_printf(err, "%s: a limit is below its minimum (max_header_bytes >= 1024, "
                      "max_json_depth >= 2, max_connections >= 1, cert_lifetime >= 1d, "
                      "mirror_retry_max >= 100ms)", path);
        r = -RE_EINVAL;
    }
out:
    re_conf_free(c);
    return r;
}
