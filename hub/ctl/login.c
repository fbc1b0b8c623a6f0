/* login.c - `resedgectl login`: trade a one-time code for a client
 * certificate. The CA is pinned by fingerprint (never trusted on first use),
 * the key is generated here and never leaves, and files are written atomically. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "crypto.h"
#include "ctl.h"
#include "error.h"
#include "fsutil.h"
#include "json.h"

int ctl_fingerprint_normalize(char out[65], const char *in)
{
    const char *p = in;
    size_t n = 0;

    if (strncasecmp(p, "sha256:", 7) == 0)
        p += 7;
    for (; *p; p++) {
        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)*p) || n == 64)
            return -RE_EINVAL;
        out[n++] = (char)tolower((unsigned char)*p);
    }
    if (n != 64)
        return -RE_EINVAL;
    out[64] = '\0';
    return 0;
}

/* The PEM certificate in an answer that is PEM text or {"ca": PEM}. */
static char *pem_from_answer(const struct re_buf *body, const char *fields)
{
    cJSON *j = NULL;
    char *pem = NULL;

    if (!body->len)
        return NULL;
    if (body->ptr[0] != '{')
        return strdup(body->ptr);
    if (re_json_parse(&j, re_buf_str(body), 16, NULL) == 0) {
        const cJSON *v = ctl_field(j, fields);
        if (cJSON_IsString(v))
            pem = strdup(v->valuestring);
    }
    cJSON_Delete(j);
    return pem;
}

/* dir + "/" + name, or name alone when dir is empty. */
static char *join(const char *dir, size_t dirlen, const char *name, const char *suffix)
{
    struct re_buf b;
    re_buf_init(&b, 8192);
    if (re_buf_printf(&b, "%.*s%s%s%s", (int)dirlen, dir, dirlen ? "/" : "", name, suffix) < 0) {
        re_buf_release(&b);
        return NULL;
    }
    return re_buf_steal(&b);
}

static int write_file(const char *path, const char *data, mode_t mode)
{
    int r = re_write_file_atomic(path, data, strlen(data), mode);
    if (r < 0)
        fprintf(stderr, "error: cannot write '%s': %s\n", path, re_strerror(r));
    return r;
}

/* Where login writes: the profile, and NAME.key, NAME.crt, NAME-ca.crt next to it. */
struct login_files {
    char base[256];
    size_t dirlen;
    char *key_path, *cert_path, *ca_path;
};

static void login_files_release(struct login_files *f)
{
    free(f->key_path);
    free(f->cert_path);
    free(f->ca_path);
}

/* Refuses (before anything is fetched or written) to replace a profile or
 * its key without --force: another person's login must not take it over. */
static int login_keep_existing(const struct ctl_args *a, const char *path, const char *key_path)
{
    const char *name = ctl_arg(a, "profile");
    const char *which = access(path, F_OK) == 0 ? path : access(key_path, F_OK) == 0 ? key_path : NULL;
    if (!which || ctl_flag(a, "force"))
        return 0;
    fprintf(stderr, "error: '%s' exists; refusing to overwrite it (nothing was fetched or "
                    "written)\n", which);
    if (name)
        fprintf(stderr, "hint: pass --force to replace profile '%s', or log in to another "
                        "one with --profile NAME\n", name);
    else
        fprintf(stderr, "hint: keep both with --profile NAME (see 'resedgectl profiles list'), "
                        "or pass --force to replace it\n");
    return -1;
}

static int login_paths(struct ctl *c, const struct ctl_args *a, struct login_files *f)
{
    bool explicit;
    if (!(c->hub = strdup(ctl_arg(a, "hub")))) {
        fputs("error: out of memory\n", stderr);
        return -1;
    }
    if (ctl_profile_locate(&c->profile_path, &explicit, a, true) < 0)
        return -1;
    if (ctl_hub_url_check(c->hub) < 0)
        return -1;
    const char *slash = strrchr(c->profile_path, '/');
    const char *file = slash ? slash + 1 : c->profile_path;
    size_t flen = strlen(file);
    f->dirlen = slash ? (size_t)(slash - c->profile_path) : 0;
    if (flen > 5 && strcmp(file + flen - 5, ".conf") == 0)
        flen -= 5;
    if (!flen || re_snprintf(f->base, sizeof(f->base), "%.*s", (int)flen, file) < 0) {
        fprintf(stderr, "error: bad profile file name '%s'\n", c->profile_path);
        return -1;
    }
    if (!(f->key_path = join(c->profile_path, f->dirlen, f->base, ".key")) ||
        !(f->cert_path = join(c->profile_path, f->dirlen, f->base, ".crt")) ||
        !(f->ca_path = join(c->profile_path, f->dirlen, f->base, "-ca.crt"))) {
        fputs("error: out of memory\n", stderr);
        return -1;
    }
    return login_keep_existing(a, c->profile_path, f->key_path);
}

/* Step 1: the hub's CA, fetched without verification, then pinned by
 * fingerprint. CTL_OK with *ca_pem, or the exit code. */
static int login_fetch_ca(struct ctl *c, const char *want, char **ca_pem,
                          struct re_cert_info *ca_info)
{
    struct re_buf body;
    struct ctl_req get_ca = { .method = "GET", .path = "/api/v1/enroll/ca", .insecure = true,
                              .anonymous = true };
    int ret;
    re_buf_init(&body, 1024 * 1024);
    if ((ret = ctl_request(c, &get_ca, NULL, &body)) != CTL_OK)
        goto out;
    ret = CTL_ESERVER;
    if (!(*ca_pem = pem_from_answer(&body, "ca|certificate|pem")) ||
        re_cert_parse(ca_info, *ca_pem, strlen(*ca_pem), false) < 0) {
        fputs("error: the hub did not send a CA certificate that parses\n", stderr);
        goto out;
    }
    if (strcmp(ca_info->fingerprint + 7, want) != 0) {
        fprintf(stderr, "error: the hub's CA fingerprint is %s, not the sha256:%s you were given; "
                        "refusing to trust it (nothing was written)\n"
                        "hint: check the hub URL, and ask for the fingerprint again\n",
                ca_info->fingerprint, want);
        goto out;
    }
    ret = CTL_OK;
out:
    re_buf_release(&body);
    return ret;
}

/* Steps 2 and 3: our own key and CSR (the hub decides the identity from the
 * code), and the certificate over TLS verified against the pinned CA.
 * CTL_OK with key and *cert_pem, or the exit code. */
static int login_request_cert(struct ctl *c, const char *code, const char *ca_pem,
                              const char *want, struct re_buf *key, char **cert_pem,
                              struct re_cert_info *cert_info)
{
    struct re_buf body, csr, req;
    cJSON *reqj = NULL;
    char *ca2_pem = NULL;
    int r, ret = CTL_EUSAGE;
    re_buf_init(&body, 1024 * 1024);
    re_buf_init(&csr, 64 * 1024);
    re_buf_init(&req, 256 * 1024);
    if ((r = re_key_generate(key)) < 0 ||
        (r = re_csr_create(&csr, key->ptr, "resedgectl-login", NULL)) < 0) {
        fprintf(stderr, "error: cannot make a key and CSR: %s\n", re_strerror(r));
        goto out;
    }
    if (!(reqj = cJSON_CreateObject()) || !cJSON_AddStringToObject(reqj, "code", code) ||
        !cJSON_AddStringToObject(reqj, "csr", csr.ptr) || re_json_print(&req, reqj) < 0) {
        fputs("error: out of memory\n", stderr);
        goto out;
    }
    struct ctl_req enroll = { .method = "POST", .path = "/api/v1/enroll", .ca_pem = ca_pem,
                              .anonymous = true, .body = req.ptr, .body_len = req.len };
    if ((ret = ctl_request(c, &enroll, NULL, &body)) != CTL_OK)
        goto out;
    ret = CTL_ESERVER;
    if (!(*cert_pem = pem_from_answer(&body, "certificate|cert")) ||
        re_cert_parse(cert_info, *cert_pem, strlen(*cert_pem), false) < 0) {
        fputs("error: the hub's answer holds no certificate that parses\n", stderr);
        goto out;
    }
    if ((ca2_pem = pem_from_answer(&body, "ca")) && body.ptr[0] == '{') {
        struct re_cert_info info2;
        if (re_cert_parse(&info2, ca2_pem, strlen(ca2_pem), false) < 0 ||
            strcmp(info2.fingerprint + 7, want) != 0) {
            fputs("error: the hub answered with a different CA than the one pinned; refusing\n",
                  stderr);
            goto out;
        }
    }
    if ((r = re_cert_matches_key(*cert_pem, key->ptr)) < 0) {
        fputs("error: the certificate the hub sent is not for our key; refusing\n", stderr);
        goto out;
    }
    if ((r = re_cert_verify(*cert_pem, ca_pem, (int64_t)time(NULL))) < 0) {
        fprintf(stderr, "error: the certificate the hub sent does not verify: %s%s\n",
                re_strerror(r), r == -RE_EEXPIRED ? " (check this machine's clock)" : "");
        goto out;
    }
    ret = CTL_OK;
out:
    cJSON_Delete(reqj);
    free(ca2_pem);
    re_buf_release(&body);
    re_buf_release(&csr);
    re_buf_release(&req);
    return ret;
}

/* Step 4: key first (0600), then certificate, CA, and the profile last. */
static int login_write(struct ctl *c, const struct login_files *f, const char *key_pem,
                       const char *cert_pem, const char *ca_pem, const char *who)
{
    struct re_buf profile;
    int r = -1;
    re_buf_init(&profile, 64 * 1024);
    if (f->dirlen) {
        char *dir = re_str_dup((struct re_str){ c->profile_path, f->dirlen });
        r = dir ? re_mkdir_p(dir, 0700) : -RE_ENOMEM;
        free(dir);
        if (r < 0) {
            fprintf(stderr, "error: cannot create the directory of '%s': %s\n", c->profile_path,
                    re_strerror(r));
            goto out;
        }
    }
    r = -1;
    if (re_buf_printf(&profile,
                      "# resedgectl profile written by 'resedgectl login' for %s\n"
                      "[hub]\nurl = %s\nca = %s-ca.crt\ncert = %s.crt\nkey = %s.key\n",
                      who, c->hub, f->base, f->base, f->base) < 0) {
        fputs("error: out of memory\n", stderr);
        goto out;
    }
    if (write_file(f->key_path, key_pem, 0600) < 0 || write_file(f->cert_path, cert_pem, 0644) < 0 ||
        write_file(f->ca_path, ca_pem, 0644) < 0 ||
        write_file(c->profile_path, profile.ptr, 0600) < 0)
        goto out;
    r = 0;
out:
    re_buf_release(&profile);
    return r;
}

int ctl_cmd_login(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                  const char *const *pos, size_t npos)
{
    char want[65];
    struct login_files f = { .dirlen = 0 };
    struct re_buf key;
    struct re_cert_info ca_info, cert_info;
    char *ca_pem = NULL, *cert_pem = NULL;
    int ret = CTL_EUSAGE;
    re_buf_init(&key, 64 * 1024);

    if (ctl_fingerprint_normalize(want, ctl_arg(a, "ca-fingerprint")) < 0) {
        fprintf(stderr, "error: bad --ca-fingerprint '%s': expected sha256: and 64 hex digits "
                        "(as 'resedgectl users add' printed it)\n", ctl_arg(a, "ca-fingerprint"));
        goto out;
    }
    if (login_paths(c, a, &f) < 0)
        goto out;
    if ((ret = login_fetch_ca(c, want, &ca_pem, &ca_info)) != CTL_OK ||
        (ret = login_request_cert(c, ctl_arg(a, "code"), ca_pem, want, &key, &cert_pem,
                                  &cert_info)) != CTL_OK)
        goto out;
    ret = CTL_ESERVER;
    if (login_write(c, &f, key.ptr, cert_pem, ca_pem, cert_info.subject_cn) < 0)
        goto out;

    printf("logged in to %s as '", c->hub);
    ctl_print_safe(stdout, cert_info.subject_cn);
    printf("'\n  profile      %s\n  key          %s (generated here, mode 0600)\n"
           "  certificate  %s\n  CA           %s (%s)\n",
           c->profile_path, f.key_path, f.cert_path, f.ca_path, ca_info.fingerprint);
    if (ctl_arg(a, "config"))
        printf("next: resedgectl --config %s clusters list\n", c->profile_path);
    else if (ctl_arg(a, "profile"))
        printf("next: resedgectl --profile %s clusters list (or make it the default: "
               "resedgectl profiles use %s)\n", ctl_arg(a, "profile"), ctl_arg(a, "profile"));
    else
        printf("next: resedgectl clusters list\n");
    ret = CTL_OK;
out:
    free(ca_pem);
    free(cert_pem);
    login_files_release(&f);
    if (key.ptr)
        memset(key.ptr, 0, key.len);
    re_buf_release(&key);
    return ret;
}
