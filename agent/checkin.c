/* checkin.c - builds the check-in request and validates the hub's answer. */
#include <string.h>
#include <cjson/cJSON.h>
#include "checkin.h"
#include "error.h"
#include "json.h"
#include "oid.h"

static cJSON *str_or_null(const char *s)
{
    return s && s[0] ? cJSON_CreateString(s) : cJSON_CreateNull();
}

int checkin_build(struct re_buf *out, const struct agent_config *cfg,
                  const struct agent_facts *f, const struct agent_status *st,
                  unsigned interval_s)
{
    cJSON *j = cJSON_CreateObject(), *labels, *host;
    int r = -RE_ENOMEM;
    const char *identity = f->kube_identity[0] ? f->kube_identity : cfg->identity;
    if (!j)
        return r;
    if (!cJSON_AddItemToObject(j, "identity", str_or_null(identity)) ||
        !cJSON_AddItemToObject(j, "kubernetes_version", str_or_null(f->kube_version)))
        goto out;
    if (f->node_count >= 0 ? !cJSON_AddNumberToObject(j, "node_count", (double)f->node_count)
                           : !cJSON_AddNullToObject(j, "node_count"))
        goto out;
    if (!(labels = cJSON_AddObjectToObject(j, "labels")))
        goto out;
    /* Node labels first, configured ones override; at most 64 in all. */
    size_t n = 0;
    const cJSON *l;
    for (size_t i = 0; i < cfg->n_labels && n < AGENT_MAX_LABELS; i++, n++)
        if (!cJSON_AddStringToObject(labels, cfg->labels[i].key, cfg->labels[i].value))
            goto out;
    cJSON_ArrayForEach(l, f->node_labels) {
        if (n >= AGENT_MAX_LABELS)
            break;
        if (!cJSON_IsString(l) || cJSON_GetObjectItemCaseSensitive(labels, l->string))
            continue;
        if (!cJSON_AddStringToObject(labels, l->string, l->valuestring))
            goto out;
        n++;
    }
    if (!cJSON_AddStringToObject(j, "agent_version", RE_VERSION) ||
        !cJSON_AddStringToObject(j, "mode", agent_mode_name(cfg->mode)) ||
        !cJSON_AddNumberToObject(j, "interval", interval_s) ||
        !(host = cJSON_AddObjectToObject(j, "host")) ||
        !cJSON_AddStringToObject(host, "hostname", f->hostname) ||
        !cJSON_AddStringToObject(host, "boot_id", f->boot_id) ||
        !cJSON_AddNumberToObject(host, "disk_free_bytes", (double)f->disk_free_bytes) ||
        !cJSON_AddNumberToObject(host, "disk_total_bytes", (double)f->disk_total_bytes) ||
        !cJSON_AddItemToObject(j, "pulled_revision", str_or_null(st->pulled)) ||
        !cJSON_AddItemToObject(j, "applied_revision", str_or_null(st->applied)) ||
        !cJSON_AddItemToObject(j, "apply_result", str_or_null(st->apply_result)))
        goto out;
    if (f->kustomizations) {
        cJSON *k = cJSON_Duplicate(f->kustomizations, 1);
        if (!k || !cJSON_AddItemToObject(j, "kustomizations", k)) {
            cJSON_Delete(k);
            goto out;
        }
    } else if (!cJSON_AddNullToObject(j, "kustomizations")) {
        goto out;
    }
    r = re_json_print(out, j);
out:
    cJSON_Delete(j);
    return r;
}


/* A conservative git branch name: [A-Za-z0-9._/-], no "..", no leading '-'
 * or '/', no trailing '/' or ".lock". */
static bool branch_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200 || s[0] == '-' || s[0] == '/' || s[n - 1] == '/' || strstr(s, "..") ||
        strstr(s, "//") || (n >= 5 && strcmp(s + n - 5, ".lock") == 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '/' || c == '-'))
            return false;
    }
    return true;
}

static bool url_ok(const char *s)
{
    size_t n = strlen(s);
    if (n <= 8 || n >= 1024 || strncmp(s, "https://", 8) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

int checkin_parse_answer(struct checkin_answer *a, const char *body, size_t len,
                         struct re_buf *err)
{
    cJSON *j = NULL;
    const char *s;
    long long iv;
    int r;
    struct checkin_answer out = { .branch = "main" };
    if ((r = re_json_parse(&j, (struct re_str){ body, len }, 8, NULL)) < 0 || !cJSON_IsObject(j)) {
        re_buf_printf(err, "the hub's check-in answer is not a JSON object");
        r = -RE_EPARSE;
        goto out;
    }
    r = re_json_get_string(&s, j, "branch");
    if (r == 0) {
        if (!branch_ok(s)) {
            re_buf_printf(err, "the hub's answer has a bad \"branch\"");
            r = -RE_EINVAL;
            goto out;
        }
        re_snprintf(out.branch, sizeof(out.branch), "%s", s);
    } else if (r != -RE_ENOENT) {
        re_buf_printf(err, "the hub's answer has a \"branch\" that is not a string");
        goto out;
    }
    r = re_json_get_string(&s, j, "revision");
    if (r == 0) {
        if (!re_oid_is(s)) {
            re_buf_printf(err, "the hub's answer has a \"revision\" that is not a commit id");
            r = -RE_EINVAL;
            goto out;
        }
        memcpy(out.revision, s, RE_OID_BUF);
    } else if (r != -RE_ENOENT) {
        re_buf_printf(err, "the hub's answer has a \"revision\" that is not a string");
        goto out;
    }
    r = re_json_get_int(&iv, j, "interval");
    if (r == 0) {
        if (iv < 1 || iv > CHECKIN_MAX_INTERVAL_S) {
            re_buf_printf(err, "the hub's answer has an \"interval\" out of 1..%d",
                          CHECKIN_MAX_INTERVAL_S);
            r = -RE_EINVAL;
            goto out;
        }
        out.interval_s = (unsigned)iv;
    } else if (r != -RE_ENOENT) {
        re_buf_printf(err, "the hub's answer has an \"interval\" that is not a number");
        goto out;
    }
    r = re_json_get_string(&s, j, "git_url");
    if (r == 0) {
        if (!url_ok(s)) {
            re_buf_printf(err, "the hub's answer has a \"git_url\" that is not an https:// URL");
            r = -RE_EINVAL;
            goto out;
        }
        re_snprintf(out.git_url, sizeof(out.git_url), "%s", s);
    } else if (r != -RE_ENOENT) {
        re_buf_printf(err, "the hub's answer has a \"git_url\" that is not a string");
        goto out;
    }
    *a = out;
    r = 0;
out:
    cJSON_Delete(j);
    return r;
}
