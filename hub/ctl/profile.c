/* profile.c - the resedgectl profile: an INI file naming the hub and the
 * certificate files, with --hub/--ca/--cert/--key overriding it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "conf.h"
#include "ctl.h"
#include "error.h"

static const struct re_conf_key profile_keys[] = {
    { "hub", "url", RE_CONF_STRING },
    { "hub", "ca", RE_CONF_STRING },
    { "hub", "cert", RE_CONF_STRING },
    { "hub", "key", RE_CONF_STRING },
    { NULL, NULL, RE_CONF_STRING },
};

char *ctl_profile_default_path(const char *flag)
{
    const char *env = getenv("RESEDGECTL_CONFIG");
    const char *home = getenv("HOME");
    struct re_buf b;

    if (flag)
        return strdup(flag);
    if (env && *env)
        return strdup(env);
    if (!home || !*home)
        return NULL;
    re_buf_init(&b, 4096);
    if (re_buf_printf(&b, "%s/.config/resedge/resedgectl.conf", home) < 0) {
        re_buf_release(&b);
        return NULL;
    }
    return re_buf_steal(&b);
}

/* A path from the profile, relative to the profile's directory. */
static char *resolve(const char *profile, const char *value)
{
    const char *slash = strrchr(profile, '/');
    struct re_buf b;

    if (value[0] == '/' || !slash)
        return strdup(value);
    re_buf_init(&b, 8192);
    if (re_buf_printf(&b, "%.*s/%s", (int)(slash - profile), profile, value) < 0) {
        re_buf_release(&b);
        return NULL;
    }
    return re_buf_steal(&b);
}

static int set_str(char **dst, char *val)
{
    if (!val)
        return -RE_ENOMEM;
    free(*dst);
    *dst = val;
    return 0;
}

int ctl_hub_url_check(char *hub)
{
    size_t n = strlen(hub);
    while (n > 0 && hub[n - 1] == '/')
        hub[--n] = '\0';
    if (strncmp(hub, "https://", 8) != 0) {
        fprintf(stderr, "error: hub URL '%s' must start with https://\n", hub);
        return -1;
    }
    return 0;
}

int ctl_profile_load(struct ctl *c, const struct ctl_args *a)
{
    const char *flag = ctl_arg(a, "config");
    bool explicit = flag || (getenv("RESEDGECTL_CONFIG") && *getenv("RESEDGECTL_CONFIG"));
    struct re_conf *conf = NULL;
    struct re_buf err;
    int rc = CTL_EUSAGE;
    static const char *const fields[] = { "url", "ca", "cert", "key" };
    char **dst[] = { &c->hub, &c->ca, &c->cert, &c->key };
    static const char *const flags[] = { "hub", "ca", "cert", "key" };

    re_buf_init(&err, 4096);
    free(c->profile_path);
    c->profile_path = ctl_profile_default_path(flag);
    if (c->profile_path && (explicit || access(c->profile_path, F_OK) == 0)) {
        if (re_conf_load(&conf, c->profile_path, &err) < 0 ||
            re_conf_validate(conf, profile_keys, &err) < 0) {
            fprintf(stderr, "error: bad profile: %s\n", err.ptr ? err.ptr : c->profile_path);
            if (!conf && access(c->profile_path, F_OK) != 0)
                fprintf(stderr, "hint: create one with 'resedge-hub init' (DIR/resedgectl.conf) or "
                                "'resedgectl login', or pass --hub, --ca, --cert and --key\n");
            goto out;
        }
        c->profile_loaded = true;
        for (size_t i = 0; i < 4; i++) {
            const char *v = re_conf_get(conf, "hub", fields[i]);
            if (v && set_str(dst[i], i == 0 ? strdup(v) : resolve(c->profile_path, v)) < 0) {
                fputs("error: out of memory\n", stderr);
                goto out;
            }
        }
    }
    for (size_t i = 0; i < 4; i++) {
        const char *v = ctl_arg(a, flags[i]);
        if (v && set_str(dst[i], strdup(v)) < 0) {
            fputs("error: out of memory\n", stderr);
            goto out;
        }
    }
    for (size_t i = 0; i < 4; i++) {
        if (!*dst[i] || !**dst[i]) {
            if (c->profile_loaded)
                fprintf(stderr, "error: profile '%s' has no [hub] %s; set it there or pass --%s\n",
                        c->profile_path, fields[i], flags[i]);
            else
                fprintf(stderr, "error: no profile at '%s' and no --%s given\n"
                                "hint: use the profile 'resedge-hub init' wrote "
                                "(--config DIR/resedgectl.conf), run 'resedgectl login', "
                                "or pass --hub, --ca, --cert and --key\n",
                        c->profile_path ? c->profile_path : "~/.config/resedge/resedgectl.conf",
                        flags[i]);
            goto out;
        }
    }
    if (ctl_hub_url_check(c->hub) < 0) {
        if (c->profile_loaded && !ctl_arg(a, "hub"))
            fprintf(stderr, "hint: check [hub] url in '%s'\n", c->profile_path);
        goto out;
    }
    rc = CTL_OK;
out:
    re_conf_free(conf);
    re_buf_release(&err);
    return rc;
}
