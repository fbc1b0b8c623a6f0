/* facts.c - host facts and Kubernetes facts for the check-in. */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "error.h"
#include "facts.h"
#include "fsutil.h"
#include "json.h"
#include "proc.h"

void facts_init(struct agent_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->node_count = -1;
}

void facts_release(struct agent_facts *f)
{
    if (!f)
        return;
    cJSON_Delete(f->node_labels);
    cJSON_Delete(f->kustomizations);
    f->node_labels = f->kustomizations = NULL;
}

static void copy_clean(char *dst, size_t size, const char *src, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\n' || c == '\r')
            break;
        dst[n++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    dst[n] = '\0';
}

void facts_host(struct agent_facts *f, const char *state_dir)
{
    struct re_buf b;
    struct statvfs vfs;
    char host[256];
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        copy_clean(f->hostname, sizeof(f->hostname), host, strlen(host));
    }
    re_buf_init(&b, 256);
    if (re_read_file(&b, "/proc/sys/kernel/random/boot_id") == 0 && b.len)
        copy_clean(f->boot_id, sizeof(f->boot_id), b.ptr, b.len);
    re_buf_release(&b);
    if (statvfs(state_dir, &vfs) == 0) {
        f->disk_free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        f->disk_total_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    }
}

bool facts_kube_configured(const struct agent_config *cfg)
{
    return (cfg->kubeconfig && cfg->kubeconfig[0]) || getenv("KUBERNETES_SERVICE_HOST");
}

/* kubectl get --raw PATH -> parsed JSON. */
static int kube_get(cJSON **out, const struct agent_config *cfg, const char *path,
                    size_t max, volatile sig_atomic_t *abort_flag, char *why, size_t why_size)
{
    struct re_buf b;
    struct proc_result res;
    const char *argv[10];
    size_t n = 0;
    int r;
    argv[n++] = cfg->kubectl ? cfg->kubectl : "kubectl";
    if (cfg->kubeconfig && cfg->kubeconfig[0]) {
        argv[n++] = "--kubeconfig";
        argv[n++] = cfg->kubeconfig;
    }
    argv[n++] = "--request-timeout=5s";
    argv[n++] = "get";
    argv[n++] = "--raw";
    argv[n++] = path;
    argv[n] = NULL;
    re_buf_init(&b, max);
    if ((r = proc_run(&res, (char *const *)argv, NULL, 10000, 0, &b, abort_flag)) < 0) {
        re_snprintf(why, why_size, "cannot run %s", argv[0]);
        goto out;
    }
    if (res.exit_code != 0) {
        re_snprintf(why, why_size, "%s get --raw %s: %s", argv[0], path,
                    res.timed_out ? "timed out" : res.exit_code == 127 ? "not found"
                                                                       : "failed");
        r = -RE_EIO;
        goto out;
    }
    if ((r = re_json_parse(out, re_buf_str(&b), 64, NULL)) < 0)
        re_snprintf(why, why_size, "%s: answer is not JSON (or over %zu bytes)", path, max);
out:
    re_buf_release(&b);
    return r;
}

static const char *jstr(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(obj, a);
    const char *s = NULL;
    if (b) {
        if (!cJSON_IsObject(o))
            return NULL;
        re_json_get_string(&s, o, b);
        return s;
    }
    return cJSON_IsString(o) ? o->valuestring : NULL;
}

static cJSON *kustomization_states(const cJSON *list)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
    cJSON *out = cJSON_CreateArray(), *it;
    size_t n = 0;
    if (!out || !cJSON_IsArray(items))
        return out;
    cJSON_ArrayForEach(it, items) {
        if (n++ >= FACTS_MAX_KUSTOMIZATIONS)
            break;
        const char *name = jstr(it, "metadata", "name");
        const char *ns = jstr(it, "metadata", "namespace");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(it, "status");
        const char *rev = cJSON_IsObject(status) ? jstr(status, "lastAppliedRevision", NULL) : NULL;
        const cJSON *conds = cJSON_IsObject(status)
                                 ? cJSON_GetObjectItemCaseSensitive(status, "conditions") : NULL;
        const char *ready = "Unknown", *msg = "";
        const cJSON *c;
        cJSON_ArrayForEach(c, conds) {
            const char *type = jstr(c, "type", NULL);
            if (type && strcmp(type, "Ready") == 0) {
                const char *st = jstr(c, "status", NULL), *m = jstr(c, "message", NULL);
                ready = st ? st : ready;
                msg = m ? m : msg;
            }
        }
        char m[256], nm[254], nsb[64], rv[128];
        copy_clean(m, sizeof(m), msg, strlen(msg));
        copy_clean(nm, sizeof(nm), name ? name : "", name ? strlen(name) : 0);
        copy_clean(nsb, sizeof(nsb), ns ? ns : "", ns ? strlen(ns) : 0);
        copy_clean(rv, sizeof(rv), rev ? rev : "", rev ? strlen(rev) : 0);
        cJSON *k = cJSON_CreateObject();
        if (!k)
            break;
        cJSON_AddStringToObject(k, "name", nm);
        cJSON_AddStringToObject(k, "namespace", nsb);
        cJSON_AddStringToObject(k, "ready", strcmp(ready, "True") == 0 ? "True"
                                            : strcmp(ready, "False") == 0 ? "False" : "Unknown");
        cJSON_AddStringToObject(k, "revision", rv);
        cJSON_AddStringToObject(k, "message", m);
        cJSON_AddItemToArray(out, k);
    }
    return out;
}

void facts_kube(struct agent_facts *f, const struct agent_config *cfg, bool with_flux,
                volatile sig_atomic_t *abort_flag)
{
    cJSON *j = NULL;
    const char *s;
    f->kube_reachable = false;
    f->kube_error[0] = '\0';
    if (!facts_kube_configured(cfg)) {
        re_snprintf(f->kube_error, sizeof(f->kube_error), "no kubeconfig configured");
        return;
    }
    if (!f->kube_identity[0]) {
        if (kube_get(&j, cfg, "/api/v1/namespaces/kube-system", 256 * 1024, abort_flag,
                     f->kube_error, sizeof(f->kube_error)) < 0)
            return;
        if ((s = jstr(j, "metadata", "uid")))
            copy_clean(f->kube_identity, sizeof(f->kube_identity), s, strlen(s));
        cJSON_Delete(j);
        j = NULL;
    }
    f->kube_reachable = true;
    if (kube_get(&j, cfg, "/version", 64 * 1024, abort_flag, f->kube_error,
                 sizeof(f->kube_error)) == 0 && (s = jstr(j, "gitVersion", NULL)))
        copy_clean(f->kube_version, sizeof(f->kube_version), s, strlen(s));
    cJSON_Delete(j);
    j = NULL;
    if (kube_get(&j, cfg, "/api/v1/nodes?limit=500", 8 * 1024 * 1024, abort_flag,
                 f->kube_error, sizeof(f->kube_error)) == 0) {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items"), *it;
        f->node_count = cJSON_IsArray(items) ? cJSON_GetArraySize(items) : -1;
        cJSON_Delete(f->node_labels);
        f->node_labels = NULL;
        cJSON_ArrayForEach(it, items) {
            const char *name = jstr(it, "metadata", "name");
            const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
            const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels"), *l;
            if (!name || strcmp(name, f->hostname) != 0 || !cJSON_IsObject(labels))
                continue;
            size_t n = 0;
            f->node_labels = cJSON_CreateObject();
            cJSON_ArrayForEach(l, labels) {
                if (!f->node_labels || n++ >= FACTS_MAX_NODE_LABELS)
                    break;
                if (cJSON_IsString(l) && strlen(l->string) <= 253 && strlen(l->valuestring) <= 63)
                    cJSON_AddStringToObject(f->node_labels, l->string, l->valuestring);
            }
        }
    }
    cJSON_Delete(j);
    j = NULL;
    if (with_flux && kube_get(&j, cfg, "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
                              8 * 1024 * 1024, abort_flag, f->kube_error,
                              sizeof(f->kube_error)) == 0) {
        cJSON_Delete(f->kustomizations);
        f->kustomizations = kustomization_states(j);
    }
    cJSON_Delete(j);
}
