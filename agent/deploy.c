/* deploy.c - Flux objects (libyaml) and the apply command. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>
#include "deploy.h"
#include "error.h"
#include "fsutil.h"
#include "proc.h"

struct yw {
    yaml_emitter_t em;
    struct re_buf *out;
    int failed;
};

static int yw_write(void *ud, unsigned char *buf, size_t size)
{
    struct yw *w = ud;
    return re_buf_append(w->out, buf, size) == 0;
}

static void yw_emit(struct yw *w, yaml_event_t *ev, int ok)
{
    if (!ok || w->failed) {
        if (ok)
            yaml_event_delete(ev);
        w->failed = 1;
        return;
    }
    if (!yaml_emitter_emit(&w->em, ev))
        w->failed = 1;
}

static void yw_scalar(struct yw *w, const char *s)
{
    yaml_event_t ev;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1,
                                          1, YAML_ANY_SCALAR_STYLE);
    yw_emit(w, &ev, ok);
}

/* Always a string, whatever it looks like (a hex token of digits only would
 * read as a number). */
static void yw_quoted(struct yw *w, const char *s)
{
    yaml_event_t ev;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1,
                                          1, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    yw_emit(w, &ev, ok);
}

/* Multi-line values (PEM) as literal blocks. */
static void yw_literal(struct yw *w, const char *s)
{
    yaml_event_t ev;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1,
                                          1, YAML_LITERAL_SCALAR_STYLE);
    yw_emit(w, &ev, ok);
}

static void yw_map_start(struct yw *w)
{
    yaml_event_t ev;
    int ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    yw_emit(w, &ev, ok);
}

static void yw_map_end(struct yw *w)
{
    yaml_event_t ev;
    int ok = yaml_mapping_end_event_initialize(&ev);
    yw_emit(w, &ev, ok);
}

static void yw_kv(struct yw *w, const char *k, const char *v)
{
    yw_scalar(w, k);
    yw_scalar(w, v);
}

static void yw_begin(struct yw *w, struct re_buf *out)
{
    yaml_event_t ev;
    memset(w, 0, sizeof(*w));
    w->out = out;
    if (!yaml_emitter_initialize(&w->em)) {
        w->failed = 1;
        return;
    }
    yaml_emitter_set_output(&w->em, yw_write, w);
    yaml_emitter_set_unicode(&w->em, 1);
    yaml_emitter_set_width(&w->em, -1);
    yw_emit(w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    yw_emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    yw_map_start(w);
}

static int yw_end(struct yw *w)
{
    yaml_event_t ev;
    yw_map_end(w);
    yw_emit(w, &ev, yaml_document_end_event_initialize(&ev, 1));
    yw_emit(w, &ev, yaml_stream_end_event_initialize(&ev));
    yaml_emitter_delete(&w->em);
    return w->failed ? -RE_ENOMEM : 0;
}

static void yw_metadata(struct yw *w, const char *name)
{
    yw_scalar(w, "metadata");
    yw_map_start(w);
    yw_kv(w, "name", name);
    yw_kv(w, "namespace", DEPLOY_FLUX_NAMESPACE);
    yw_scalar(w, "labels");
    yw_map_start(w);
    yw_kv(w, "app.kubernetes.io/managed-by", "resedge-agent");
    yw_map_end(w);
    yw_map_end(w);
}

int deploy_flux_yaml(struct re_buf *source, struct re_buf *sync, struct re_buf *secret,
                     const struct deploy_flux *f)
{
    struct yw w;
    int r;
    bool with_tls = f->ca_pem && f->cert_pem && f->key_pem;
    bool with_basic = !with_tls && f->username && f->password;
    bool with_secret = with_tls || with_basic;

    yw_begin(&w, source);
    yw_kv(&w, "apiVersion", "source.toolkit.fluxcd.io/v1");
    yw_kv(&w, "kind", "GitRepository");
    yw_metadata(&w, DEPLOY_SOURCE_NAME);
    yw_scalar(&w, "spec");
    yw_map_start(&w);
    yw_kv(&w, "interval", "1m");
    yw_kv(&w, "url", f->url);
    yw_scalar(&w, "ref");
    yw_map_start(&w);
    yw_kv(&w, "branch", f->branch);
    yw_map_end(&w);
    if (with_secret) {
        yw_scalar(&w, "secretRef");
        yw_map_start(&w);
        yw_kv(&w, "name", with_tls ? DEPLOY_SECRET_NAME : DEPLOY_MIRROR_SECRET);
        yw_map_end(&w);
    }
    yw_map_end(&w);
    if ((r = yw_end(&w)) < 0)
        return r;

    yw_begin(&w, sync);
    yw_kv(&w, "apiVersion", "kustomize.toolkit.fluxcd.io/v1");
    yw_kv(&w, "kind", "Kustomization");
    yw_metadata(&w, DEPLOY_SYNC_NAME);
    yw_scalar(&w, "spec");
    yw_map_start(&w);
    yw_kv(&w, "interval", "5m");
    yw_kv(&w, "path", "./");
    yw_scalar(&w, "prune");
    {
        yaml_event_t ev;
        int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)"true", 4, 1, 0,
                                              YAML_PLAIN_SCALAR_STYLE);
        yw_emit(&w, &ev, ok);
    }
    yw_scalar(&w, "sourceRef");
    yw_map_start(&w);
    yw_kv(&w, "kind", "GitRepository");
    yw_kv(&w, "name", DEPLOY_SOURCE_NAME);
    yw_map_end(&w);
    yw_map_end(&w);
    if ((r = yw_end(&w)) < 0)
        return r;

    if (!with_secret)
        return 0;
    yw_begin(&w, secret);
    yw_kv(&w, "apiVersion", "v1");
    yw_kv(&w, "kind", "Secret");
    yw_metadata(&w, with_tls ? DEPLOY_SECRET_NAME : DEPLOY_MIRROR_SECRET);
    yw_kv(&w, "type", "Opaque");
    yw_scalar(&w, "stringData");
    yw_map_start(&w);
    if (with_basic) {
        /* The keys of Flux's GitRepository basic-auth Secret. */
        yw_scalar(&w, "username");
        yw_quoted(&w, f->username);
        yw_scalar(&w, "password");
        yw_quoted(&w, f->password);
        yw_map_end(&w);
        return yw_end(&w);
    }
    yw_scalar(&w, "tls.crt");
    yw_literal(&w, f->cert_pem);
    yw_scalar(&w, "tls.key");
    yw_literal(&w, f->key_pem);
    yw_scalar(&w, "ca.crt");
    yw_literal(&w, f->ca_pem);
    yw_map_end(&w);
    return yw_end(&w);
}

/* Writes dir/name when its content differs; *changed set when written. */
static int write_if_changed(const char *dir, const char *name, const struct re_buf *data,
                            mode_t mode, bool *changed, struct re_buf *err)
{
    char path[4096];
    struct re_buf old;
    int r;
    if ((r = re_snprintf(path, sizeof(path), "%s/%s", dir, name)) < 0)
        return r;
    re_buf_init(&old, 1024 * 1024);
    if (re_read_file(&old, path) == 0 && old.len == data->len &&
        (data->len == 0 || memcmp(old.ptr, data->ptr, data->len) == 0)) {
        re_buf_release(&old);
        return 0;
    }
    re_buf_release(&old);
    if ((r = re_write_file_atomic(path, data->ptr ? data->ptr : "", data->len, mode)) < 0) {
        re_buf_printf(err, "cannot write '%s': %s", path, re_strerror(r));
        return r;
    }
    *changed = true;
    return 0;
}

int deploy_flux_write(const char *state_dir, const struct deploy_flux *f, bool *changed,
                      struct re_buf *err)
{
    struct re_buf source, sync, secret;
    char dir[4096];
    int r;
    *changed = false;
    re_buf_init(&source, 64 * 1024);
    re_buf_init(&sync, 64 * 1024);
    re_buf_init(&secret, 256 * 1024);
    if ((r = re_snprintf(dir, sizeof(dir), "%s/flux", state_dir)) < 0)
        goto out;
    if ((r = deploy_flux_yaml(&source, &sync, &secret, f)) < 0) {
        re_buf_printf(err, "cannot emit the Flux objects: %s", re_strerror(r));
        goto out;
    }
    if ((r = re_mkdir_p(dir, 0700)) < 0) {
        re_buf_printf(err, "cannot create '%s': %s", dir, re_strerror(r));
        goto out;
    }
    if ((r = write_if_changed(dir, "source.yaml", &source, 0644, changed, err)) < 0 ||
        (r = write_if_changed(dir, "sync.yaml", &sync, 0644, changed, err)) < 0)
        goto out;
    if (secret.len) {
        r = write_if_changed(dir, "secret.yaml", &secret, 0600, changed, err);
    } else {
        /* No secret in this mode (mirror without auth): drop one left by
         * an earlier mode. */
        char p[4200];
        if (re_snprintf(p, sizeof(p), "%s/secret.yaml", dir) == 0 && unlink(p) == 0)
            *changed = true;
    }
out:
    re_buf_release(&source);
    re_buf_release(&sync);
    if (secret.ptr)
        memset(secret.ptr, 0, secret.len);
    re_buf_release(&secret);
    return r;
}

int deploy_run(const char *cmd, const char *dir, uint64_t timeout_ms,
               volatile sig_atomic_t *abort_flag, char *result, size_t result_size)
{
    char **argv = NULL;
    struct re_buf out;
    struct proc_result res;
    int r;
    re_buf_init(&out, 64 * 1024);
    if ((r = proc_split(&argv, cmd, dir)) < 0) {
        re_snprintf(result, result_size, "failed: the apply command cannot be parsed");
        goto out;
    }
    if ((r = proc_run(&res, argv, NULL, timeout_ms, 1, &out, abort_flag)) < 0) {
        re_snprintf(result, result_size, "failed: cannot start '%.100s'", argv[0]);
        goto out;
    }
    if (res.exit_code == 0) {
        re_snprintf(result, result_size, "ok");
        goto out;
    }
    /* Last non-empty output line, sanitized, as the reason. */
    const char *last = "";
    size_t last_len = 0;
    for (size_t i = 0; i < out.len;) {
        size_t j = i;
        while (j < out.len && out.ptr[j] != '\n')
            j++;
        if (j > i) {
            last = out.ptr + i;
            last_len = j - i;
        }
        i = j + 1;
    }
    char line[200];
    size_t n = 0;
    for (size_t i = 0; i < last_len && n + 1 < sizeof(line); i++)
        line[n++] = (unsigned char)last[i] < 0x20 ? ' ' : last[i];
    line[n] = '\0';
    if (res.timed_out)
        re_snprintf(result, result_size, "failed: '%.100s' timed out after %llus", argv[0],
                    (unsigned long long)(timeout_ms / 1000));
    else if (res.exit_code == 127)
        re_snprintf(result, result_size, "failed: '%.100s' not found", argv[0]);
    else
        re_snprintf(result, result_size, "failed: '%.100s' exited %d: %s", argv[0],
                    res.exit_code, line);
    r = -RE_EIO;
out:
    free(argv);
    re_buf_release(&out);
    return r;
}
