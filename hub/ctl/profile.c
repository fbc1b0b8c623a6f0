/* profile.c - the resedgectl profile: an INI file naming the hub and the
 * certificate files, with --hub/--ca/--cert/--key overriding it. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "conf.h"
#include "ctl.h"
#include "error.h"
#include "fsutil.h"

static const struct re_conf_key profile_keys[] = {
    { "hub", "url", RE_CONF_STRING },
    { "hub", "ca", RE_CONF_STRING },
    { "hub", "cert", RE_CONF_STRING },
    { "hub", "key", RE_CONF_STRING },
    { NULL, NULL, RE_CONF_STRING },
};

/* $HOME/.config/resedge: the default profile, profiles/ and "current". */
static char *config_dir(void)
{
    const char *home = getenv("HOME");
    struct re_buf b;

    if (!home || !*home)
        return NULL;
    re_buf_init(&b, 4096);
    if (re_buf_printf(&b, "%s/.config/resedge", home) < 0) {
        re_buf_release(&b);
        return NULL;
    }
    return re_buf_steal(&b);
}

int ctl_profile_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CTL_PROFILE_NAME_MAX || name[0] == '.' || name[0] == '-')
        return -RE_EINVAL;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return -RE_EINVAL;
    return 0;
}

char *ctl_profile_path_of(const char *name)
{
    char *dir = config_dir();
    struct re_buf b;

    if (!dir)
        return NULL;
    re_buf_init(&b, 4096);
    if ((strcmp(name, CTL_PROFILE_DEFAULT) == 0
             ? re_buf_printf(&b, "%s/resedgectl.conf", dir)
             : re_buf_printf(&b, "%s/profiles/%s.conf", dir, name)) < 0)
        re_buf_release(&b);
    free(dir);
    return re_buf_steal(&b);
}

/* The name in DIR/current, or NULL when there is none (or it is not a name). */
static char *current_name(void)
{
    char *dir = config_dir();
    struct re_buf path, text;
    char *name = NULL;

    if (!dir)
        return NULL;
    re_buf_init(&path, 4096);
    re_buf_init(&text, 4096);
    if (re_buf_printf(&path, "%s/current", dir) == 0 && re_read_file(&text, path.ptr) == 0 &&
        text.ptr) {
        while (text.len && (text.ptr[text.len - 1] == '\n' || text.ptr[text.len - 1] == ' '))
            text.ptr[--text.len] = '\0';
        if (ctl_profile_name_check(text.ptr) == 0)
            name = re_buf_steal(&text);
    }
    free(dir);
    re_buf_release(&path);
    re_buf_release(&text);
    return name;
}

int ctl_profile_locate(char **out, bool *explicit, const struct ctl_args *a, bool for_login)
{
    const char *flag = ctl_arg(a, "config"), *name = ctl_arg(a, "profile");
    const char *env = getenv("RESEDGECTL_CONFIG"), *env_name = getenv("RESEDGECTL_PROFILE");
    char *cur = NULL;

    *explicit = true;
    if (flag) {
        *out = strdup(flag);
    } else if (name || (!(env && *env) && env_name && *env_name)) {
        if (!name)
            name = env_name;
        if (ctl_profile_name_check(name) < 0) {
            fprintf(stderr, "error: bad profile name '%s': use 1-%d letters, digits, '-', '_' "
                            "or '.'\n", name, CTL_PROFILE_NAME_MAX);
            return -1;
        }
        *out = ctl_profile_path_of(name);
    } else if (env && *env) {
        *out = strdup(env);
    } else if (!for_login && (cur = current_name())) {
        /* 'resedgectl profiles use NAME' chose it: a missing one is an error */
        *out = ctl_profile_path_of(cur);
    } else {
        *explicit = false;
        *out = ctl_profile_path_of(CTL_PROFILE_DEFAULT);
    }
    free(cur);
    if (!*out) {
        fputs("error: no profile path: pass --config FILE (HOME is not set)\n", stderr);
        return -1;
    }
    return 0;
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
    bool explicit = false;
    struct re_conf *conf = NULL;
    struct re_buf err;
    int rc = CTL_EUSAGE;
    static const char *const fields[] = { "url", "ca", "cert", "key" };
    char **dst[] = { &c->hub, &c->ca, &c->cert, &c->key };
    static const char *const flags[] = { "hub", "ca", "cert", "key" };

    re_buf_init(&err, 4096);
    free(c->profile_path);
    c->profile_path = NULL;
    if (ctl_profile_locate(&c->profile_path, &explicit, a, false) < 0)
        goto out;
    if (c->profile_path && (explicit || access(c->profile_path, F_OK) == 0)) {
        if (re_conf_load(&conf, c->profile_path, &err) < 0 ||
            re_conf_validate(conf, profile_keys, &err) < 0) {
            fprintf(stderr, "error: bad profile: %s\n", err.ptr ? err.ptr : c->profile_path);
            if (!conf && access(c->profile_path, F_OK) != 0)
                fprintf(stderr, "hint: create one with 'resedge-hub init' (DIR/resedgectl.conf) or "
                                "'resedgectl login', or pass --hub, --ca, --cert and --key; "
                                "'resedgectl profiles list' shows the named profiles\n");
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

/* One row of `profiles list`: name, file, hub URL (when it reads). */
static int add_profile_row(cJSON *rows, const char *name, const char *cur)
{
    char *path = ctl_profile_path_of(name);
    struct re_conf *conf = NULL;
    struct re_buf err;
    cJSON *row;
    const char *hub = NULL;

    if (!path)
        return -RE_ENOMEM;
    re_buf_init(&err, 4096);
    if (re_conf_load(&conf, path, &err) == 0)
        hub = re_conf_get(conf, "hub", "url");
    if (!(row = cJSON_CreateObject()) || !cJSON_AddItemToArray(rows, row) ||
        !cJSON_AddStringToObject(row, "current", strcmp(name, cur) == 0 ? "*" : "") ||
        !cJSON_AddStringToObject(row, "name", name) ||
        !cJSON_AddStringToObject(row, "hub", hub ? hub : "(unreadable)") ||
        !cJSON_AddStringToObject(row, "file", path)) {
        re_conf_free(conf);
        re_buf_release(&err);
        free(path);
        return -RE_ENOMEM;
    }
    re_conf_free(conf);
    re_buf_release(&err);
    free(path);
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int profiles_list(struct ctl *c)
{
    static const struct ctl_column cols[] = {
        { "CURRENT", "current", 0 }, { "NAME", "name", 0 }, { "HUB", "hub", CTL_COL_FULL },
        { "FILE", "file", CTL_COL_FULL }, { NULL, NULL, 0 },
    };
    char *cur = current_name(), *def = ctl_profile_path_of(CTL_PROFILE_DEFAULT);
    char *pdir = NULL, *names[CTL_PROFILES_MAX] = { NULL };
    size_t n = 0;
    cJSON *rows = cJSON_CreateArray();
    int ret = CTL_ESERVER;
    DIR *d = NULL;

    if (!rows || !def)
        goto nomem;
    if (access(def, F_OK) == 0 && add_profile_row(rows, CTL_PROFILE_DEFAULT,
                                                  cur ? cur : CTL_PROFILE_DEFAULT) < 0)
        goto nomem;
    {
        char *dir = config_dir();
        struct re_buf b;
        re_buf_init(&b, 4096);
        if (!dir || re_buf_printf(&b, "%s/profiles", dir) < 0) {
            free(dir);
            re_buf_release(&b);
            goto nomem;
        }
        free(dir);
        pdir = re_buf_steal(&b);
    }
    if ((d = opendir(pdir))) {
        struct dirent *e;
        while ((e = readdir(d)) && n < CTL_PROFILES_MAX) {
            size_t len = strlen(e->d_name);
            if (len <= 5 || strcmp(e->d_name + len - 5, ".conf") != 0)
                continue;
            char *nm = re_str_dup((struct re_str){ e->d_name, len - 5 });
            if (!nm)
                goto nomem;
            if (ctl_profile_name_check(nm) < 0 || strcmp(nm, CTL_PROFILE_DEFAULT) == 0) {
                free(nm);
                continue;
            }
            names[n++] = nm;
        }
    }
    qsort(names, n, sizeof(names[0]), cmp_str);
    for (size_t i = 0; i < n; i++)
        if (add_profile_row(rows, names[i], cur ? cur : CTL_PROFILE_DEFAULT) < 0)
            goto nomem;
    if (c->format == CTL_FMT_JSON)
        ctl_print_json(stdout, rows);
    else if (c->format == CTL_FMT_YAML)
        ctl_print_yaml(stdout, rows);
    else if (!cJSON_GetArraySize(rows))
        fputs("no profiles: run 'resedgectl login --profile NAME ...'\n", stderr);
    else
        ctl_print_table(stdout, rows, cols);
    if (cur) {
        char *cp = ctl_profile_path_of(cur);
        if (cp && access(cp, F_OK) != 0)
            fprintf(stderr, "warning: the current profile '%s' does not exist; "
                            "run 'resedgectl profiles use NAME'\n", cur);
        free(cp);
    }
    ret = CTL_OK;
    goto out;
nomem:
    fputs("error: out of memory\n", stderr);
out:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    cJSON_Delete(rows);
    free(cur);
    free(def);
    free(pdir);
    return ret;
}

static int profiles_use(const char *name)
{
    char *path = NULL, *def = NULL;
    struct re_buf cur;
    int ret = CTL_EUSAGE, r;

    re_buf_init(&cur, 4096);
    if (ctl_profile_name_check(name) < 0) {
        fprintf(stderr, "error: bad profile name '%s'\n", name);
        goto out;
    }
    if (!(path = ctl_profile_path_of(name)) || !(def = ctl_profile_path_of(CTL_PROFILE_DEFAULT))) {
        fputs("error: no profile directory (HOME is not set)\n", stderr);
        goto out;
    }
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "error: no profile '%s' (no file '%s')\n"
                        "hint: 'resedgectl profiles list' shows the profiles; "
                        "'resedgectl login --profile %s ...' makes one\n", name, path, name);
        goto out;
    }
    /* "current" sits next to the default profile's file */
    char *dir = config_dir();
    r = dir ? re_buf_printf(&cur, "%s/current", dir) : -RE_ENOMEM;
    free(dir);
    if (r < 0 ||
        (r = re_write_file_atomic(cur.ptr, name, strlen(name), 0600)) < 0) {
        fprintf(stderr, "error: cannot write '%s'\n", cur.ptr ? cur.ptr : "current");
        ret = CTL_ESERVER;
        goto out;
    }
    printf("using profile '%s' (%s)\n", name, path);
    ret = CTL_OK;
out:
    free(path);
    free(def);
    re_buf_release(&cur);
    return ret;
}

int ctl_cmd_profiles(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                     const char *const *pos, size_t npos)
{
    if (strcmp(cmd->words, "profiles use") == 0)
        return profiles_use(pos[0]);
    return profiles_list(c);
}
