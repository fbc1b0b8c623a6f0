/* state.c - the agent's enrollment record and status files. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "conf.h"
#include "error.h"
#include "fsutil.h"
#include "json.h"
#include "oid.h"
#include "state.h"

void agent_state_release(struct agent_state *st)
{
    if (!st)
        return;
    free(st->hub_url);
    free(st->cluster);
    free(st->identity);
    free(st->key_name);
    free(st->cert_name);
    memset(st, 0, sizeof(*st));
}

int agent_state_path(char *out, size_t size, const char *dir, const char *name)
{
    return re_snprintf(out, size, "%s/%s", dir, name);
}

static int get_i64(int64_t *out, const struct re_conf *c, const char *key)
{
    const char *v = re_conf_get(c, "enrollment", key);
    unsigned long long u;
    if (!v || re_parse_uint(&u, v, INT64_MAX) < 0)
        return -RE_EPARSE;
    *out = (int64_t)u;
    return 0;
}

/* A file name we wrote ourselves: no '/', no leading '.'. */
static bool plain_name(const char *s)
{
    return s && s[0] && s[0] != '.' && !strchr(s, '/') && strlen(s) < 128;
}

int agent_state_load(struct agent_state *st, const char *dir, struct re_buf *err)
{
    static const struct re_conf_key keys[] = {
        { "enrollment", "hub", RE_CONF_STRING },
        { "enrollment", "cluster", RE_CONF_STRING },
        { "enrollment", "identity", RE_CONF_STRING },
        { "enrollment", "key", RE_CONF_STRING },
        { "enrollment", "cert", RE_CONF_STRING },
        { "enrollment", "not_before", RE_CONF_UINT },
        { "enrollment", "not_after", RE_CONF_UINT },
        { "enrollment", "renew_at", RE_CONF_UINT },
        { "enrollment", "enrolled_at", RE_CONF_UINT },
        { NULL, NULL, 0 },
    };
    char path[4096];
    struct re_conf *c = NULL;
    struct agent_state s = { 0 };
    int r;
    if ((r = agent_state_path(path, sizeof(path), dir, AGENT_STATE_FILE)) < 0)
        return r;
    if ((r = re_conf_load(&c, path, err)) < 0)
        return r == -RE_ENOENT ? r : -RE_EPARSE;
    if ((r = re_conf_validate(c, keys, err)) < 0) {
        r = -RE_EPARSE;
        goto out;
    }
    const char *hub = re_conf_get(c, "enrollment", "hub");
    const char *cluster = re_conf_get(c, "enrollment", "cluster");
    const char *identity = re_conf_get(c, "enrollment", "identity");
    const char *key = re_conf_get(c, "enrollment", "key");
    const char *cert = re_conf_get(c, "enrollment", "cert");
    if (!hub || strncmp(hub, "https://", 8) != 0 || !cluster || !cluster[0] ||
        !plain_name(key) || !plain_name(cert) || get_i64(&s.not_before, c, "not_before") < 0 ||
        get_i64(&s.not_after, c, "not_after") < 0 || get_i64(&s.renew_at, c, "renew_at") < 0 ||
        get_i64(&s.enrolled_at, c, "enrolled_at") < 0) {
        re_buf_printf(err, "%s: incomplete or damaged enrollment record", path);
        r = -RE_EPARSE;
        goto out;
    }
    s.hub_url = strdup(hub);
    s.cluster = strdup(cluster);
    s.identity = strdup(identity ? identity : "");
    s.key_name = strdup(key);
    s.cert_name = strdup(cert);
    if (!s.hub_url || !s.cluster || !s.identity || !s.key_name || !s.cert_name) {
        r = -RE_ENOMEM;
        goto out;
    }
    *st = s;
    memset(&s, 0, sizeof(s));
    r = 0;
out:
    agent_state_release(&s);
    re_conf_free(c);
    return r;
}

static bool one_line(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

int agent_state_save(const struct agent_state *st, const char *dir)
{
    char path[4096];
    struct re_buf b;
    int r;
    if (!one_line(st->hub_url) || !one_line(st->cluster) || !one_line(st->identity) ||
        !plain_name(st->key_name) || !plain_name(st->cert_name))
        return -RE_EINVAL;
    re_buf_init(&b, 16384);
    if ((r = agent_state_path(path, sizeof(path), dir, AGENT_STATE_FILE)) < 0 ||
        (r = re_buf_printf(&b,
                           "# resedge-agent enrollment record (written by the agent)\n"
                           "[enrollment]\n"
                           "hub = %s\ncluster = %s\nidentity = %s\nkey = %s\ncert = %s\n"
                           "not_before = %" PRId64 "\nnot_after = %" PRId64 "\n"
                           "renew_at = %" PRId64 "\nenrolled_at = %" PRId64 "\n",
                           st->hub_url, st->cluster, st->identity, st->key_name, st->cert_name,
                           st->not_before, st->not_after, st->renew_at, st->enrolled_at)) < 0)
        goto out;
    r = re_write_file_atomic(path, b.ptr, b.len, 0600);
out:
    re_buf_release(&b);
    return r;
}


int agent_status_read(struct agent_status *s, const char *dir)
{
    char path[4096];
    struct re_buf b;
    cJSON *j = NULL;
    const char *v;
    long long at;
    int r;
    memset(s, 0, sizeof(*s));
    re_buf_init(&b, 64 * 1024);
    if ((r = agent_state_path(path, sizeof(path), dir, AGENT_STATUS_FILE)) < 0 ||
        (r = re_read_file(&b, path)) < 0)
        goto out;
    if (re_json_parse(&j, re_buf_str(&b), 4, NULL) < 0 || !cJSON_IsObject(j)) {
        r = -RE_EPARSE;
        goto out;
    }
    r = 0;
    if (re_json_get_string(&v, j, "pulled_revision") == 0 && re_oid_is(v))
        memcpy(s->pulled, v, RE_OID_BUF);
    if (re_json_get_string(&v, j, "applied_revision") == 0 && re_oid_is(v))
        memcpy(s->applied, v, RE_OID_BUF);
    if (re_json_get_string(&v, j, "apply_result") == 0)
        re_snprintf(s->apply_result, sizeof(s->apply_result), "%.*s",
                    (int)(sizeof(s->apply_result) - 1), v);
    if (re_json_get_string(&v, j, "mode") == 0)
        re_snprintf(s->mode, sizeof(s->mode), "%.15s", v);
    if (re_json_get_int(&at, j, "applied_at") == 0)
        s->applied_at = at;
out:
    cJSON_Delete(j);
    re_buf_release(&b);
    return r;
}

int agent_status_load(struct agent_status *s, const char *dir)
{
    agent_status_read(s, dir);
    return 0;
}

int agent_status_save(const struct agent_status *s, const char *dir)
{
    char path[4096];
    struct re_buf b;
    cJSON *j = cJSON_CreateObject();
    int r = -RE_ENOMEM;
    re_buf_init(&b, 64 * 1024);
    if (!j)
        goto out;
    if (!(s->pulled[0] ? cJSON_AddStringToObject(j, "pulled_revision", s->pulled)
                       : cJSON_AddNullToObject(j, "pulled_revision")) ||
        !(s->applied[0] ? cJSON_AddStringToObject(j, "applied_revision", s->applied)
                        : cJSON_AddNullToObject(j, "applied_revision")) ||
        !cJSON_AddStringToObject(j, "apply_result", s->apply_result) ||
        !cJSON_AddStringToObject(j, "mode", s->mode) ||
        !cJSON_AddNumberToObject(j, "applied_at", (double)s->applied_at))
        goto out;
    if ((r = re_json_print(&b, j)) < 0 ||
        (r = agent_state_path(path, sizeof(path), dir, AGENT_STATUS_FILE)) < 0)
        goto out;
    r = re_write_file_atomic(path, b.ptr, b.len, 0644);
out:
    cJSON_Delete(j);
    re_buf_release(&b);
    return r;
}

int64_t agent_renew_time(int64_t not_before, int64_t not_after, uint64_t rnd)
{
    int64_t life = not_after - not_before;
    if (life <= 0)
        return not_after;
    int64_t at = not_after - life / 3;
    int64_t jitter = life / 10;
    if (jitter > 0)
        at -= (int64_t)(rnd % (uint64_t)jitter);
    return at;
}
