/* enroll.c - enrollment with a one-time code and certificate renewal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "backoff.h"
#include "clock.h"
#include "crypto.h"
#include "enroll.h"
#include "error.h"
#include "fsutil.h"
#include "hubclient.h"
#include "json.h"

int enroll_normalize_fingerprint(char out[72], const char *in)
{
    char hex[65];
    size_t n = 0;
    if (strncasecmp(in, "sha256:", 7) != 0)
        return -RE_EINVAL;
    for (const char *p = in + 7; *p; p++) {
        char ch = *p;
        if (ch == ':')
            continue;
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) || n >= 64)
            return -RE_EINVAL;
        hex[n++] = ch;
    }
    if (n != 64)
        return -RE_EINVAL;
    hex[64] = '\0';
    memcpy(out, "sha256:", 7);
    memcpy(out + 7, hex, 65);
    return 0;
}

int enroll_check_ca(const char *ca_pem, size_t len, const char *expected, struct re_buf *err)
{
    struct re_cert_info info;
    char want[72];
    int r;
    if ((r = enroll_normalize_fingerprint(want, expected)) < 0) {
        re_buf_printf(err, "'%s' is not a fingerprint: expected sha256:<64 hex digits>", expected);
        return r;
    }
    if ((r = re_cert_parse(&info, ca_pem, len, false)) < 0) {
        re_buf_printf(err, "the hub's CA certificate does not parse: %s", re_strerror(r));
        return -RE_EPARSE;
    }
    if (strlen(info.fingerprint) != 71 || !re_consttime_eq(info.fingerprint, want, 71)) {
        re_buf_printf(err, "the hub's CA fingerprint is %s, not %s as given: refusing to "
                      "trust this hub (wrong hub, or someone in between)", info.fingerprint, want);
        return -RE_EBADSIG;
    }
    if (!info.is_ca) {
        re_buf_printf(err, "the certificate the hub presented as its CA is not a CA");
        return -RE_EINVAL;
    }
    return 0;
}

int enroll_extract_ca(struct re_buf *out, const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i < len && body[i] == '{') {
        cJSON *j = NULL;
        const char *ca = NULL;
        int r = re_json_parse(&j, (struct re_str){ body, len }, 8, NULL);
        if (r == 0) {
            if (re_json_get_string(&ca, j, "ca") < 0 &&
                re_json_get_string(&ca, j, "certificate") < 0)
                r = -RE_EPARSE;
            else
                r = re_buf_append_str(out, ca);
        }
        cJSON_Delete(j);
        return r < 0 ? (r == -RE_ETOOBIG ? r : -RE_EPARSE) : 0;
    }
    if (len - i < 27 || memcmp(body + i, "-----BEGIN CERTIFICATE-----", 27) != 0)
        return -RE_EPARSE;
    return re_buf_append(out, body + i, len - i);
}

/* Cluster name from the issued certificate's identity
 * (spiffe://<trust-domain>/cluster/<name>), else its CN. */
static int cluster_from_cert(char *out, size_t size, const struct re_cert_info *info)
{
    const char *p = strstr(info->uri_san, "/cluster/");
    const char *name = p ? p + 9 : info->subject_cn;
    if (!name[0] || strchr(name, '/') || strlen(name) > 63)
        return -RE_EINVAL;
    for (const char *q = name; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-'))
            return -RE_EINVAL;
    return re_snprintf(out, size, "%s", name);
}

static int write_file(const char *dir, const char *name, const char *data, mode_t mode)
{
    char path[4096];
    int r = agent_state_path(path, sizeof(path), dir, name);
    return r < 0 ? r : re_write_file_atomic(path, data, strlen(data), mode);
}

static void remove_file(const char *dir, const char *name)
{
    char path[4096];
    if (name && agent_state_path(path, sizeof(path), dir, name) == 0)
        unlink(path);
}

int enroll_install_credentials(struct agent_state *st, const char *dir, const char *key_pem,
                               const char *cert_pem, struct re_buf *err)
{
    struct re_cert_info info;
    char key_name[128], cert_name[128];
    char *old_key = st->key_name, *old_cert = st->cert_name;
    char *new_key = NULL, *new_cert = NULL;
    int r;
    if ((r = re_cert_parse(&info, cert_pem, strlen(cert_pem), false)) < 0) {
        re_buf_printf(err, "the issued certificate does not parse: %s", re_strerror(r));
        return r;
    }
    /* The serial is random: a new pair never overwrites the pair in use. */
    if ((r = re_snprintf(key_name, sizeof(key_name), "agent-%.32s.key", info.serial)) < 0 ||
        (r = re_snprintf(cert_name, sizeof(cert_name), "agent-%.32s.crt", info.serial)) < 0)
        return r;
    if (!(new_key = strdup(key_name)) || !(new_cert = strdup(cert_name))) {
        r = -RE_ENOMEM;
        goto out;
    }
    if ((r = write_file(dir, key_name, key_pem, 0600)) < 0 ||
        (r = write_file(dir, cert_name, cert_pem, 0644)) < 0) {
        re_buf_printf(err, "cannot write the new key and certificate into '%s': %s", dir,
                      re_strerror(r));
        remove_file(dir, key_name);
        remove_file(dir, cert_name);
        goto out;
    }
    struct agent_state next = *st;
    next.key_name = new_key;
    next.cert_name = new_cert;
    next.not_before = info.not_before;
    next.not_after = info.not_after;
    next.renew_at = agent_renew_time(info.not_before, info.not_after, backoff_random());
    if ((r = agent_state_save(&next, dir)) < 0) {
        re_buf_printf(err, "cannot write '%s/%s': %s", dir, AGENT_STATE_FILE, re_strerror(r));
        remove_file(dir, key_name);
        remove_file(dir, cert_name);
        goto out;
    }
    *st = next;
    new_key = new_cert = NULL;
    if (old_key && strcmp(old_key, key_name) != 0)
        remove_file(dir, old_key);
    if (old_cert && strcmp(old_cert, cert_name) != 0)
        remove_file(dir, old_cert);
    free(old_key);
    free(old_cert);
out:
    free(new_key);
    free(new_cert);
    return r;
}

/* Checks an issued certificate: our key, chains to the pinned CA, client use. */
static int check_issued(struct re_cert_info *info, const char *cert_pem, const char *key_pem,
                        const char *ca_pem, struct re_buf *err)
{
    int r;
    if ((r = re_cert_parse(info, cert_pem, strlen(cert_pem), false)) < 0) {
        re_buf_printf(err, "the hub's certificate does not parse: %s", re_strerror(r));
        return r;
    }
    if ((r = re_cert_matches_key(cert_pem, key_pem)) < 0) {
        re_buf_printf(err, "the hub issued a certificate for another key");
        return r;
    }
    /* Chain check at a time inside the validity, so a skewed local clock
     * does not reject a good certificate (the hub checks time). */
    if ((r = re_cert_verify(cert_pem, ca_pem, info->not_before + 1)) < 0) {
        re_buf_printf(err, "the issued certificate does not chain to the pinned CA: %s",
                      re_strerror(r));
        return r;
    }
    return 0;
}

static int post_csr(cJSON **out, struct hubclient *c, const char *path, const char *code,
                    const char *csr_pem, struct re_buf *err)
{
    struct hubclient_resp resp;
    struct re_buf body;
    cJSON *req = cJSON_CreateObject();
    cJSON *j = NULL;
    int r = -RE_ENOMEM;
    hubclient_resp_init(&resp);
    re_buf_init(&body, 64 * 1024);
    if (!req || (code && !cJSON_AddStringToObject(req, "code", code)) ||
        !cJSON_AddStringToObject(req, "csr", csr_pem))
        goto out;
    if ((r = re_json_print(&body, req)) < 0)
        goto out;
    if ((r = hubclient_request(c, "POST", path, body.ptr, body.len, &resp, err)) < 0)
        goto out;
    if (resp.status != 200 && resp.status != 201) {
        char msg[300];
        hubclient_error_message(msg, sizeof(msg), &resp);
        re_buf_printf(err, "the hub refused (HTTP %ld): %s", resp.status, msg);
        r = resp.status == 401 || resp.status == 403 ? -RE_EDENIED
            : resp.status == 429 || resp.status == 423 ? -RE_ELOCKED
            : resp.status >= 500 ? -RE_EAGAIN : -RE_EINVAL;
        goto out;
    }
    if ((r = re_json_parse(&j, re_buf_str(&resp.body), 8, NULL)) < 0 || !cJSON_IsObject(j)) {
        re_buf_printf(err, "the hub's answer is not a JSON object");
        r = -RE_EPARSE;
        goto out;
    }
    *out = j;
    j = NULL;
    r = 0;
out:
    cJSON_Delete(j);
    cJSON_Delete(req);
    re_buf_release(&body);
    hubclient_resp_release(&resp);
    return r;
}

static bool code_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool url_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 9 || n > 1024 || strncmp(s, "https://", 8) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* The options a technician typed, before anything touches the network. */
static int check_options(const struct enroll_opts *o, char want[72], struct re_buf *err)
{
    char path[4096];
    struct stat sb;
    int r;
    if (!url_ok(o->hub_url)) {
        re_buf_printf(err, "--hub must be an https:// URL, e.g. https://hub.example:8443");
        return -RE_EINVAL;
    }
    if (!code_ok(o->code)) {
        re_buf_printf(err, "--code must be the code printed by 'resedgectl clusters enroll-code'");
        return -RE_EINVAL;
    }
    if ((r = enroll_normalize_fingerprint(want, o->ca_fingerprint)) < 0) {
        re_buf_printf(err, "--ca-fingerprint must be sha256:<64 hex digits>, as printed with "
                      "the code");
        return r;
    }
    if ((r = agent_state_path(path, sizeof(path), o->state_dir, AGENT_STATE_FILE)) < 0)
        return r;
    if (!o->force && stat(path, &sb) == 0) {
        re_buf_printf(err, "'%s' is already enrolled (%s): use --force to replace it",
                      o->state_dir, path);
        return -RE_EEXIST;
    }
    return 0;
}

/* Step 1: the CA, fetched without verification, accepted only by fingerprint. */
static int fetch_ca(const struct enroll_opts *o, const char *want, struct re_buf *ca,
                    struct re_buf *err)
{
    struct hubclient *boot = NULL;
    struct hubclient_resp resp;
    struct hubclient_opts bo = { .base_url = o->hub_url, .insecure = true,
                                 .abort_flag = o->abort_flag };
    int r;
    hubclient_resp_init(&resp);
    if ((r = hubclient_new(&boot, &bo)) < 0)
        goto out;
    if ((r = hubclient_request(boot, "GET", "/api/v1/enroll/ca", NULL, 0, &resp, err)) < 0) {
        re_buf_printf(err, " (fetching the hub's CA from %s)", o->hub_url);
        goto out;
    }
    if (resp.status != 200) {
        char msg[300];
        hubclient_error_message(msg, sizeof(msg), &resp);
        re_buf_printf(err, "the hub did not give its CA (HTTP %ld): %s", resp.status, msg);
        r = -RE_EIO;
        goto out;
    }
    if ((r = enroll_extract_ca(ca, resp.body.ptr, resp.body.len)) < 0) {
        re_buf_printf(err, "the hub's CA answer is neither PEM nor JSON with \"ca\"");
        goto out;
    }
    r = enroll_check_ca(ca->ptr, ca->len, want, err);
out:
    hubclient_free(boot);
    hubclient_resp_release(&resp);
    return r;
}

/* Step 2: our own key and CSR; the code goes only to the pinned hub. On
 * success *answer holds the hub's answer, *cert_pem points into it, and
 * info and cluster describe the checked certificate. */
static int request_certificate(const struct enroll_opts *o, const struct re_buf *ca,
                               const char *want, struct re_buf *key, cJSON **answer,
                               const char **cert_pem, struct re_cert_info *info,
                               char *cluster, size_t cluster_size, struct re_buf *err)
{
    struct hubclient *pinned = NULL;
    struct re_buf csr;
    const char *ca2 = NULL;
    int r;
    re_buf_init(&csr, 16 * 1024);
    if ((r = re_key_generate(key)) < 0 ||
        (r = re_csr_create(&csr, key->ptr, "resedge-agent", NULL)) < 0) {
        re_buf_printf(err, "cannot create a key and CSR: %s", re_strerror(r));
        goto out;
    }
    struct hubclient_opts po = { .base_url = o->hub_url, .ca_pem = ca->ptr,
                                 .abort_flag = o->abort_flag };
    if ((r = hubclient_new(&pinned, &po)) < 0)
        goto out;
    if ((r = post_csr(answer, pinned, "/api/v1/enroll", o->code, csr.ptr, err)) < 0)
        goto out;
    if (re_json_get_string(cert_pem, *answer, "certificate") < 0) {
        re_buf_printf(err, "the hub's answer has no \"certificate\"");
        r = -RE_EPARSE;
        goto out;
    }
    if (re_json_get_string(&ca2, *answer, "ca") == 0 &&
        enroll_check_ca(ca2, strlen(ca2), want, err) < 0) {
        r = -RE_EBADSIG;
        goto out;
    }
    if ((r = check_issued(info, *cert_pem, key->ptr, ca->ptr, err)) < 0)
        goto out;
    if ((r = cluster_from_cert(cluster, cluster_size, info)) < 0)
        re_buf_printf(err, "the issued certificate names no cluster (URI SAN '%s', CN '%s')",
                      info->uri_san, info->subject_cn);
out:
    hubclient_free(pinned);
    re_buf_release(&csr);
    return r;
}

/* Step 3: everything checked, write. agent.state last, so a crash before it
 * leaves the node "not enrolled". */
static int write_enrollment(struct agent_state *st, const struct enroll_opts *o,
                            const struct re_buf *ca, const char *key_pem, const char *cert_pem,
                            const char *cluster, const struct re_cert_info *info,
                            struct re_buf *err)
{
    struct agent_state s = { 0 };
    int r;
    if ((r = re_mkdir_p(o->state_dir, 0700)) < 0) {
        re_buf_printf(err, "cannot create '%s': %s", o->state_dir, re_strerror(r));
        return r;
    }
    if ((r = write_file(o->state_dir, AGENT_CA_FILE, ca->ptr, 0644)) < 0) {
        re_buf_printf(err, "cannot write '%s/%s': %s", o->state_dir, AGENT_CA_FILE,
                      re_strerror(r));
        return r;
    }
    if (o->force) /* the previous enrollment's pair is replaced below */
        agent_state_load(&s, o->state_dir, NULL);
    free(s.hub_url);
    free(s.cluster);
    free(s.identity);
    s.hub_url = strdup(o->hub_url);
    s.cluster = strdup(cluster);
    s.identity = strdup(info->uri_san);
    s.enrolled_at = re_time();
    if (!s.hub_url || !s.cluster || !s.identity) {
        r = -RE_ENOMEM;
        goto out;
    }
    size_t n = strlen(s.hub_url);
    while (n > 8 && s.hub_url[n - 1] == '/')
        s.hub_url[--n] = '\0';
    if ((r = enroll_install_credentials(&s, o->state_dir, key_pem, cert_pem, err)) < 0)
        goto out;
    *st = s;
    memset(&s, 0, sizeof(s));
out:
    agent_state_release(&s);
    return r;
}

int enroll_run(struct agent_state *st, const struct enroll_opts *o, struct re_buf *err)
{
    struct re_buf ca, key;
    struct re_cert_info info;
    char want[72], cluster[64];
    cJSON *answer = NULL;
    const char *cert_pem = NULL;
    int r;
    re_buf_init(&ca, 64 * 1024);
    re_buf_init(&key, 16 * 1024);
    if ((r = check_options(o, want, err)) == 0 && (r = fetch_ca(o, want, &ca, err)) == 0 &&
        (r = request_certificate(o, &ca, want, &key, &answer, &cert_pem, &info, cluster,
                                 sizeof(cluster), err)) == 0)
        r = write_enrollment(st, o, &ca, key.ptr, cert_pem, cluster, &info, err);
    cJSON_Delete(answer);
    if (key.ptr)
        memset(key.ptr, 0, key.len);
    re_buf_release(&ca);
    re_buf_release(&key);
    return r;
}

int enroll_renew(struct agent_state *st, const char *dir, struct hubclient *c,
                 struct re_buf *err)
{
    struct re_buf key, csr, ca;
    struct re_cert_info info;
    char path[4096];
    cJSON *answer = NULL;
    const char *cert_pem = NULL;
    int r;
    re_buf_init(&key, 16 * 1024);
    re_buf_init(&csr, 16 * 1024);
    re_buf_init(&ca, 64 * 1024);
    if ((r = agent_state_path(path, sizeof(path), dir, AGENT_CA_FILE)) < 0 ||
        (r = re_read_file(&ca, path)) < 0) {
        re_buf_printf(err, "cannot read the pinned CA '%s': %s", path, re_strerror(r));
        goto out;
    }
    if ((r = re_key_generate(&key)) < 0 ||
        (r = re_csr_create(&csr, key.ptr, st->cluster, NULL)) < 0) {
        re_buf_printf(err, "cannot create a key and CSR: %s", re_strerror(r));
        goto out;
    }
    if ((r = post_csr(&answer, c, "/api/v1/renew", NULL, csr.ptr, err)) < 0)
        goto out;
    if (re_json_get_string(&cert_pem, answer, "certificate") < 0) {
        re_buf_printf(err, "the hub's renewal answer has no \"certificate\"");
        r = -RE_EPARSE;
        goto out;
    }
    if ((r = check_issued(&info, cert_pem, key.ptr, ca.ptr, err)) < 0)
        goto out;
    r = enroll_install_credentials(st, dir, key.ptr, cert_pem, err);
out:
    cJSON_Delete(answer);
    if (key.ptr)
        memset(key.ptr, 0, key.len);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&ca);
    return r;
}
