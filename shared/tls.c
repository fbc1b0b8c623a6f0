/* tls.c - memory-BIO TLS connections on mbedTLS 2.28, with session ticket
 * keys of our own (AES-256-GCM) kept in a file so they survive a restart. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/gcm.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h>
#include <mbedtls/x509_crt.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "tls.h"

#define TLS_IN_MAX (1024 * 1024)          /* unread ciphertext we buffer */
#define TLS_OUT_MAX (256 * 1024 * 1024)   /* ciphertext waiting for the socket */
#define TICKET_DEFAULT_ROTATE_S (12 * 3600)
#define TICKET_KEY_LEN 32
#define TICKET_IV_LEN 12
#define TICKET_TAG_LEN 16
#define TICKET_HDR_LEN (4 + TICKET_IV_LEN)  /* key id + iv, also the AAD */
#define TICKET_FILE_MAX 4096
#define TICKET_MINT_MAX 4096               /* a session with one client certificate */

/* Only ECDHE key exchange with AEAD ciphers; TLS 1.2 suites. */
static const int tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

static const mbedtls_ecp_group_id tls_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

struct ticket_key {
    bool set;
    uint32_t id;
    int64_t created;
    unsigned char key[TICKET_KEY_LEN];
    mbedtls_gcm_context gcm;
};

struct tls_config {
    bool server;
    mbedtls_ssl_config conf;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt own;
    mbedtls_pk_context key;
    bool have_own;
    /* tickets (server): [0] current, [1] previous */
    struct ticket_key tk[2];
    unsigned rotate_s;
    char *ticket_file;
    bool ticket_read_only;       /* never rotate nor write the key file */
};

struct tls_session {
    mbedtls_ssl_session s;
};

struct tls_conn {
    struct tls_config *cfg;
    mbedtls_ssl_context ssl;
    struct re_buf in;            /* ciphertext received, from in_off on unread */
    size_t in_off;
    struct re_buf out;           /* ciphertext to send */
    bool done;
    bool failed;
    bool resumed;
    struct tls_peer_info peer;
};

/* ---- helpers ---- */

static void set_err(struct re_buf *err, const char *what, const char *file, int mret)
{
    char msg[160];
    if (!err)
        return;
    mbedtls_strerror(mret, msg, sizeof(msg));
    re_buf_reset(err);
    re_buf_printf(err, "%s '%s': %s", what, file ? file : "", msg);
}

static int map_mbedtls(int mret)
{
    switch (mret) {
    case MBEDTLS_ERR_PK_FILE_IO_ERROR:
    case MBEDTLS_ERR_X509_FILE_IO_ERROR:
        return -RE_EIO;
    case MBEDTLS_ERR_PK_ALLOC_FAILED:
    case MBEDTLS_ERR_X509_ALLOC_FAILED:
    case MBEDTLS_ERR_SSL_ALLOC_FAILED:
        return -RE_ENOMEM;
    default:
        break;
    }
    if (mret <= -0x2000 && mret > -0x3000)      /* X509 */
        return -RE_EPARSE;
    if (mret <= -0x3800 && mret > -0x4000)      /* PK */
        return -RE_EPARSE;
    return -RE_ETLS;
}

static void copy_bounded(char *dst, size_t size, const void *src, size_t len)
{
    if (size == 0)
        return;
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void hex_bytes(char *out, size_t size, const unsigned char *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    while (len > 1 && *p == 0) {     /* canonical: no leading zero bytes */
        p++;
        len--;
    }
    for (size_t i = 0; i < len && o + 2 < size; i++) {
        out[o++] = digits[p[i] >> 4];
        out[o++] = digits[p[i] & 15];
    }
    out[o] = '\0';
}

static int unhex(unsigned char *out, size_t outlen, const char *s, size_t slen)
{
    if (slen != outlen * 2)
        return -RE_EPARSE;
    for (size_t i = 0; i < slen; i++) {
        char ch = s[i];
        int v;
        if (ch >= '0' && ch <= '9')
            v = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            v = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            v = ch - 'A' + 10;
        else
            return -RE_EPARSE;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return 0;
}

static int config_common(struct tls_config *cfg, int endpoint)
{
    static const char pers[] = "resedge-tls";
    int r = mbedtls_ctr_drbg_seed(&cfg->drbg, mbedtls_entropy_func, &cfg->entropy,
                                  (const unsigned char *)pers, sizeof(pers) - 1);
    if (r)
        return r;
    r = mbedtls_ssl_config_defaults(&cfg->conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT);
    if (r)
        return r;
    mbedtls_ssl_conf_rng(&cfg->conf, mbedtls_ctr_drbg_random, &cfg->drbg);
    mbedtls_ssl_conf_min_version(&cfg->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&cfg->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&cfg->conf, tls_suites);
    mbedtls_ssl_conf_curves(&cfg->conf, tls_curves);
    mbedtls_ssl_conf_renegotiation(&cfg->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_legacy_renegotiation(&cfg->conf, MBEDTLS_SSL_LEGACY_NO_RENEGOTIATION);
    return 0;
}

static struct tls_config *config_alloc(bool server)
{
    struct tls_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    cfg->server = server;
    mbedtls_ssl_config_init(&cfg->conf);
    mbedtls_entropy_init(&cfg->entropy);
    mbedtls_ctr_drbg_init(&cfg->drbg);
    mbedtls_x509_crt_init(&cfg->ca);
    mbedtls_x509_crt_init(&cfg->own);
    mbedtls_pk_init(&cfg->key);
    for (int i = 0; i < 2; i++)
        mbedtls_gcm_init(&cfg->tk[i].gcm);
    return cfg;
}

void tls_config_free(struct tls_config *cfg)
{
    if (!cfg)
        return;
    mbedtls_ssl_config_free(&cfg->conf);
    mbedtls_ctr_drbg_free(&cfg->drbg);
    mbedtls_entropy_free(&cfg->entropy);
    mbedtls_x509_crt_free(&cfg->ca);
    mbedtls_x509_crt_free(&cfg->own);
    mbedtls_pk_free(&cfg->key);
    for (int i = 0; i < 2; i++) {
        mbedtls_gcm_free(&cfg->tk[i].gcm);
        mbedtls_platform_zeroize(cfg->tk[i].key, sizeof(cfg->tk[i].key));
    }
    free(cfg->ticket_file);
    free(cfg);
}

/* A configuration with the common policy (config_common) and the CA that
 * peers' certificates must chain to; the caller adds the rest. */
static int config_new(struct tls_config **out, bool server, const char *ca_file,
                      struct re_buf *err)
{
    struct tls_config *cfg = config_alloc(server);
    int r = 0, mr;
    if (!cfg)
        return -RE_ENOMEM;
    if ((mr = config_common(cfg, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT))) {
        set_err(err, "cannot set up TLS", "", mr);
        r = map_mbedtls(mr);
        goto out;
    }
    if ((mr = mbedtls_x509_crt_parse_file(&cfg->ca, ca_file))) {
        set_err(err, "cannot load CA certificate", ca_file, mr);
        r = map_mbedtls(mr);
        goto out;
    }
    mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, NULL);
    *out = cfg;
    cfg = NULL;
out:
    tls_config_free(cfg);
    return r;
}

static int load_own(struct tls_config *cfg, const char *cert_file, const char *key_file,
                    struct re_buf *err)
{
    int r = mbedtls_x509_crt_parse_file(&cfg->own, cert_file);
    if (r) {
        set_err(err, "cannot load certificate", cert_file, r);
        return map_mbedtls(r);
    }
    r = mbedtls_pk_parse_keyfile(&cfg->key, key_file, NULL);
    if (r) {
        set_err(err, "cannot load key", key_file, r);
        return map_mbedtls(r);
    }
    r = mbedtls_pk_check_pair(&cfg->own.pk, &cfg->key);
    if (r) {
        set_err(err, "key does not match certificate", cert_file, r);
        return -RE_EINVAL;
    }
    r = mbedtls_ssl_conf_own_cert(&cfg->conf, &cfg->own, &cfg->key);
    if (r) {
        set_err(err, "cannot use certificate", cert_file, r);
        return map_mbedtls(r);
    }
    cfg->have_own = true;
    return 0;
}

/* ---- session tickets ---- */

static int ticket_key_setup(struct ticket_key *k)
{
    mbedtls_gcm_free(&k->gcm);
    mbedtls_gcm_init(&k->gcm);
    if (mbedtls_gcm_setkey(&k->gcm, MBEDTLS_CIPHER_ID_AES, k->key, 8 * TICKET_KEY_LEN))
        return -RE_ECRYPTO;
    k->set = true;
    return 0;
}

/* Forgets both ticket keys (wiped), leaving them unset and reusable. */
static void ticket_keys_clear(struct tls_config *cfg)
{
    for (int i = 0; i < 2; i++) {
        mbedtls_gcm_free(&cfg->tk[i].gcm);
        mbedtls_platform_zeroize(&cfg->tk[i], sizeof(cfg->tk[i]));
        mbedtls_gcm_init(&cfg->tk[i].gcm);
    }
}

static int ticket_key_new(struct tls_config *cfg, struct ticket_key *k)
{
    unsigned char idb[4];
    if (mbedtls_ctr_drbg_random(&cfg->drbg, k->key, sizeof(k->key)) ||
        mbedtls_ctr_drbg_random(&cfg->drbg, idb, sizeof(idb)))
        return -RE_ECRYPTO;
    k->id = (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 | (uint32_t)idb[2] << 8 | idb[3];
    k->created = re_time();
    return ticket_key_setup(k);
}

static int ticket_keys_save(struct tls_config *cfg)
{
    struct re_buf b;
    int r = 0;
    if (!cfg->ticket_file)
        return 0;
    re_buf_init(&b, TICKET_FILE_MAX);
    r = re_buf_append_str(&b, "# resedge TLS session ticket keys v1: id created key (current first)\n");
    for (int i = 0; i < 2 && r == 0; i++) {
        char hex[2 * TICKET_KEY_LEN + 1];
        const struct ticket_key *k = &cfg->tk[i];
        if (!k->set)
            continue;
        for (size_t j = 0; j < TICKET_KEY_LEN; j++) {
            static const char d[] = "0123456789abcdef";
            hex[2 * j] = d[k->key[j] >> 4];
            hex[2 * j + 1] = d[k->key[j] & 15];
        }
        hex[2 * TICKET_KEY_LEN] = '\0';
        r = re_buf_printf(&b, "%08x %lld %s\n", (unsigned)k->id, (long long)k->created, hex);
        mbedtls_platform_zeroize(hex, sizeof(hex));
    }
    if (r == 0)
        r = re_write_file_atomic(cfg->ticket_file, b.ptr, b.len, 0600);
    if (b.ptr)
        mbedtls_platform_zeroize(b.ptr, b.len);
    re_buf_release(&b);
    return r;
}

/* Parses "id created hexkey" lines; -RE_EPARSE on anything unexpected. */
static int ticket_keys_parse(struct tls_config *cfg, const char *text, size_t len)
{
    size_t pos = 0;
    int n = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll == 0 || line[0] == '#')
            continue;
        if (n >= 2)
            return -RE_EPARSE;
        /* fields separated by single spaces */
        const char *f[3];
        size_t fl[3];
        size_t i = 0, k = 0;
        while (k < 3 && i <= ll) {
            size_t start = i;
            while (i < ll && line[i] != ' ')
                i++;
            f[k] = line + start;
            fl[k] = i - start;
            k++;
            i++;
        }
        if (k != 3 || i <= ll || fl[0] != 8)
            return -RE_EPARSE;
        unsigned char idb[4];
        unsigned long long created = 0;
        struct ticket_key *tk = &cfg->tk[n];
        if (unhex(idb, 4, f[0], 8) < 0 ||
            re_str_to_u64(&created, (struct re_str){ f[1], fl[1] }, (1ULL << 62)) < 0 ||
            unhex(tk->key, TICKET_KEY_LEN, f[2], fl[2]) < 0)
            return -RE_EPARSE;
        tk->id = (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 | (uint32_t)idb[2] << 8 | idb[3];
        tk->created = (int64_t)created;
        if (ticket_key_setup(tk) < 0)
            return -RE_ECRYPTO;
        n++;
    }
    return n > 0 ? 0 : -RE_EPARSE;
}

static int ticket_keys_load(struct tls_config *cfg)
{
    char text[TICKET_FILE_MAX];
    size_t len = 0;
    int r;
    int fd = open(cfg->ticket_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -RE_ENOENT : re_from_errno(errno);
    for (;;) {
        ssize_t n = read(fd, text + len, sizeof(text) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = re_from_errno(errno);
            close(fd);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof(text)) {
            close(fd);
            return -RE_ETOOBIG;
        }
    }
    close(fd);
    r = ticket_keys_parse(cfg, text, len);
    mbedtls_platform_zeroize(text, sizeof(text));
    return r;
}

int tls_config_rotate_tickets(struct tls_config *cfg, bool force)
{
    struct ticket_key fresh;
    int r;
    if (!cfg || !cfg->server)
        return -RE_EINVAL;
    if (cfg->ticket_read_only)
        return cfg->tk[0].set ? 0 : -RE_ENOENT;
    if (!force && cfg->tk[0].set && re_time() - cfg->tk[0].created < (int64_t)cfg->rotate_s)
        return 0;
    memset(&fresh, 0, sizeof(fresh));
    mbedtls_gcm_init(&fresh.gcm);
    r = ticket_key_new(cfg, &fresh);
    if (r < 0) {
        mbedtls_gcm_free(&fresh.gcm);
        return r;
    }
    mbedtls_gcm_free(&cfg->tk[1].gcm);
    mbedtls_platform_zeroize(cfg->tk[1].key, sizeof(cfg->tk[1].key));
    cfg->tk[1] = cfg->tk[0];
    cfg->tk[0] = fresh;
    return ticket_keys_save(cfg);
}

unsigned tls_config_ticket_keys(const struct tls_config *cfg)
{
    return cfg ? (unsigned)cfg->tk[0].set + (unsigned)cfg->tk[1].set : 0;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Ticket: key id (4) | iv (12) | GCM(issued-at (8) | session) | tag (16). */
static int ticket_seal(struct tls_config *cfg, struct ticket_key *k,
                       const mbedtls_ssl_session *session, unsigned char *start,
                       const unsigned char *end, size_t *tlen)
{
    size_t slen = 0, avail = (size_t)(end - start);
    int r;

    if (avail < TICKET_HDR_LEN + 8 + TICKET_TAG_LEN)
        return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
    r = mbedtls_ssl_session_save(session, start + TICKET_HDR_LEN + 8,
                                 avail - TICKET_HDR_LEN - 8 - TICKET_TAG_LEN, &slen);
    if (r)
        return r;
    start[0] = (unsigned char)(k->id >> 24);
    start[1] = (unsigned char)(k->id >> 16);
    start[2] = (unsigned char)(k->id >> 8);
    start[3] = (unsigned char)k->id;
    r = mbedtls_ctr_drbg_random(&cfg->drbg, start + 4, TICKET_IV_LEN);
    if (r)
        return r;
    put_be64(start + TICKET_HDR_LEN, (uint64_t)re_time());
    unsigned char *pt = start + TICKET_HDR_LEN;
    size_t ptlen = 8 + slen;
    r = mbedtls_gcm_crypt_and_tag(&k->gcm, MBEDTLS_GCM_ENCRYPT, ptlen, start + 4, TICKET_IV_LEN,
                                  start, TICKET_HDR_LEN, pt, pt, TICKET_TAG_LEN, pt + ptlen);
    if (r)
        return r;
    *tlen = TICKET_HDR_LEN + ptlen + TICKET_TAG_LEN;
    return 0;
}

static int ticket_write(void *p, const mbedtls_ssl_session *session, unsigned char *start,
                        const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
    struct tls_config *cfg = p;
    int r;

    tls_config_rotate_tickets(cfg, false);     /* a failed save still rotates in memory */
    if (!cfg->tk[0].set)
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    r = ticket_seal(cfg, &cfg->tk[0], session, start, end, tlen);
    if (r)
        return r;
    *lifetime = cfg->rotate_s;
    return 0;
}

static int ticket_parse(void *p, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
    struct tls_config *cfg = p;
    struct ticket_key *k = NULL;
    uint32_t id;
    int r;

    if (len < TICKET_HDR_LEN + 8 + TICKET_TAG_LEN)
        return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
    id = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    for (int i = 0; i < 2; i++)
        if (cfg->tk[i].set && cfg->tk[i].id == id)
            k = &cfg->tk[i];
    if (!k)
        return MBEDTLS_ERR_SSL_INVALID_MAC;
    unsigned char *ct = buf + TICKET_HDR_LEN;
    size_t ctlen = len - TICKET_HDR_LEN - TICKET_TAG_LEN;
    r = mbedtls_gcm_auth_decrypt(&k->gcm, ctlen, buf + 4, TICKET_IV_LEN, buf, TICKET_HDR_LEN,
                                 ct + ctlen, TICKET_TAG_LEN, ct, ct);
    if (r)
        return MBEDTLS_ERR_SSL_INVALID_MAC;
    int64_t issued = (int64_t)get_be64(ct);
    int64_t now = re_time();
    if (issued > now + 300 || now - issued > (int64_t)cfg->rotate_s)
        r = MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;
    else
        r = mbedtls_ssl_session_load(session, ct + 8, ctlen - 8);
    mbedtls_platform_zeroize(ct, ctlen);       /* the session's master secret */
    return r;
}

int tls_config_new_server(struct tls_config **out, const struct tls_server_options *o,
                          struct re_buf *err)
{
    struct tls_config *cfg = NULL;
    int r;

    if (!o || !o->ca_file || !o->cert_file || !o->key_file)
        return -RE_EINVAL;
    if ((r = config_new(&cfg, true, o->ca_file, err)) < 0)
        return r;
    /* Optional: /healthz and enrollment work without a certificate; the
     * application checks tls_conn_authenticated() per request. */
    mbedtls_ssl_conf_authmode(&cfg->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
    r = load_own(cfg, o->cert_file, o->key_file, err);
    if (r < 0)
        goto out;

    cfg->rotate_s = o->ticket_rotate_s ? o->ticket_rotate_s : TICKET_DEFAULT_ROTATE_S;
    cfg->ticket_read_only = o->ticket_keys_read_only;
    if (cfg->ticket_read_only && !o->ticket_key_file) {
        r = -RE_EINVAL;
        goto out;
    }
    if (o->ticket_key_file) {
        cfg->ticket_file = strdup(o->ticket_key_file);
        if (!cfg->ticket_file) {
            r = -RE_ENOMEM;
            goto out;
        }
        r = ticket_keys_load(cfg);
        if (r < 0 && cfg->ticket_read_only) {
            /* a reader beside the hub takes the hub's keys or nothing */
            if (err) {
                re_buf_reset(err);
                re_buf_printf(err, "cannot read ticket keys '%s': %s", o->ticket_key_file,
                              re_strerror(r));
            }
            goto out;
        }
        if (r == -RE_EPARSE || r == -RE_ETOOBIG) {
            /* A damaged key file costs only resumptions: start over (the
             * lines parsed before the damage hold GCM contexts to free). */
            ticket_keys_clear(cfg);
            r = 0;
        } else if (r < 0 && r != -RE_ENOENT) {
            if (err) {
                re_buf_reset(err);
                re_buf_printf(err, "cannot read ticket keys '%s': %s", o->ticket_key_file,
                              re_strerror(r));
            }
            goto out;
        }
    }
    r = tls_config_rotate_tickets(cfg, false);
    if (r < 0) {
        if (err) {
            re_buf_reset(err);
            re_buf_printf(err, "cannot write ticket keys '%s': %s",
                          o->ticket_key_file ? o->ticket_key_file : "", re_strerror(r));
        }
        goto out;
    }
    mbedtls_ssl_conf_session_tickets_cb(&cfg->conf, ticket_write, ticket_parse, cfg);
    *out = cfg;
    cfg = NULL;
    r = 0;
out:
    tls_config_free(cfg);
    return r;
}

int tls_config_new_client(struct tls_config **out, const struct tls_client_options *o,
                          struct re_buf *err)
{
    struct tls_config *cfg = NULL;
    int r;

    if (!o || !o->ca_file || (!o->cert_file != !o->key_file))
        return -RE_EINVAL;
    if ((r = config_new(&cfg, false, o->ca_file, err)) < 0)
        return r;
    mbedtls_ssl_conf_authmode(&cfg->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_session_tickets(&cfg->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    if (o->cert_file) {
        r = load_own(cfg, o->cert_file, o->key_file, err);
        if (r < 0)
            goto out;
    }
    *out = cfg;
    cfg = NULL;
    r = 0;
out:
    tls_config_free(cfg);
    return r;
}

/* ---- connections ---- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct tls_conn *c = ctx;
    if (len > INT32_MAX)
        len = INT32_MAX;
    if (re_buf_append(&c->out, buf, len) < 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct tls_conn *c = ctx;
    size_t avail = c->in.len - c->in_off;
    if (avail == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (len > avail)
        len = avail;
    if (len > INT32_MAX)
        len = INT32_MAX;
    memcpy(buf, c->in.ptr + c->in_off, len);
    c->in_off += len;
    if (c->in_off == c->in.len) {
        /* idle connections should not keep a large read buffer */
        if (c->in.cap > 32 * 1024)
            re_buf_release(&c->in);
        else
            re_buf_reset(&c->in);
        c->in_off = 0;
    }
    return (int)len;
}

static struct tls_conn *conn_alloc(struct tls_config *cfg)
{
    struct tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cfg = cfg;
    mbedtls_ssl_init(&c->ssl);
    re_buf_init(&c->in, TLS_IN_MAX);
    re_buf_init(&c->out, TLS_OUT_MAX);
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    mbedtls_ssl_free(&c->ssl);
    re_buf_release(&c->in);
    re_buf_release(&c->out);
    free(c);
}

int tls_conn_new_server(struct tls_conn **out, struct tls_config *cfg)
{
    struct tls_conn *c;
    if (!cfg || !cfg->server)
        return -RE_EINVAL;
    c = conn_alloc(cfg);
    if (!c)
        return -RE_ENOMEM;
    if (mbedtls_ssl_setup(&c->ssl, &cfg->conf)) {
        tls_conn_free(c);
        return -RE_ENOMEM;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    *out = c;
    return 0;
}

int tls_conn_new_client(struct tls_conn **out, struct tls_config *cfg, const char *hostname,
                        const struct tls_session *session)
{
    struct tls_conn *c;
    int r = 0;
    if (!cfg || cfg->server)
        return -RE_EINVAL;
    c = conn_alloc(cfg);
    if (!c)
        return -RE_ENOMEM;
    if (mbedtls_ssl_setup(&c->ssl, &cfg->conf)) {
        r = -RE_ENOMEM;
        goto out;
    }
    if (hostname && mbedtls_ssl_set_hostname(&c->ssl, hostname)) {
        r = -RE_EINVAL;
        goto out;
    }
    if (session && mbedtls_ssl_set_session(&c->ssl, &session->s)) {
        r = -RE_EINVAL;
        goto out;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    *out = c;
    c = NULL;
out:
    tls_conn_free(c);
    return r;
}

int tls_conn_feed(struct tls_conn *c, const void *data, size_t len)
{
    if (c->in_off > 0 && c->in_off * 2 >= c->in.len) {
        memmove(c->in.ptr, c->in.ptr + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    return re_buf_append(&c->in, data, len);
}

static void fill_peer(struct tls_conn *c)
{
    struct tls_peer_info *pi = &c->peer;
    const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
    uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);
    const char *s;

    memset(pi, 0, sizeof(*pi));
    pi->resumed = c->resumed;
    s = mbedtls_ssl_get_ciphersuite(&c->ssl);
    copy_bounded(pi->cipher, sizeof(pi->cipher), s ? s : "", s ? strlen(s) : 0);
    s = mbedtls_ssl_get_version(&c->ssl);
    copy_bounded(pi->version, sizeof(pi->version), s ? s : "", s ? strlen(s) : 0);
    if (!crt)
        return;
    pi->cert_present = true;
    /* A resumed session carries the verification result of its full
     * handshake; the certificate may have expired since. */
    if (flags == 0 && mbedtls_x509_time_is_past(&crt->valid_to))
        flags |= MBEDTLS_X509_BADCERT_EXPIRED;
    pi->verified = flags == 0;
    if (flags) {
        char info[256];
        int n = mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
        if (n > 0) {
            char *nl = memchr(info, '\n', (size_t)n);
            copy_bounded(pi->verify_error, sizeof(pi->verify_error), info,
                         nl ? (size_t)(nl - info) : (size_t)n);
        }
    }
    for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next) {
        if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
            copy_bounded(pi->subject_cn, sizeof(pi->subject_cn), n->val.p, n->val.len);
            break;
        }
    }
    for (const mbedtls_x509_sequence *q = &crt->subject_alt_names; q; q = q->next) {
        if (q->buf.p && q->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6)) {
            if (q->buf.len < sizeof(pi->uri_san) && !memchr(q->buf.p, '\0', q->buf.len))
                copy_bounded(pi->uri_san, sizeof(pi->uri_san), q->buf.p, q->buf.len);
            break;
        }
    }
    hex_bytes(pi->serial, sizeof(pi->serial), crt->serial.p, crt->serial.len);
}

int tls_conn_handshake(struct tls_conn *c)
{
    if (c->done)
        return 0;
    if (c->failed)
        return -RE_ETLS;
    while (c->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        int r = mbedtls_ssl_handshake_step(&c->ssl);
        /* The handshake parameters (and this flag) are gone after wrap-up. */
        if (c->ssl.handshake)
            c->resumed = c->ssl.handshake->resume != 0;
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            return -RE_EAGAIN;
        if (r) {
            c->failed = true;
            return -RE_ETLS;
        }
    }
    c->done = true;
    fill_peer(c);
    return 0;
}

bool tls_conn_handshake_done(const struct tls_conn *c)
{
    return c->done;
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
    int r;
    if (!c->done)
        return -RE_EAGAIN;
    if (len > INT32_MAX)
        len = INT32_MAX;
    r = mbedtls_ssl_read(&c->ssl, buf, len);
    if (r > 0)
        return r;
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return -RE_EAGAIN;
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return 0;
    return -RE_ETLS;
}

int tls_conn_write(struct tls_conn *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (!c->done)
        return -RE_EINVAL;
    while (len > 0) {
        int r = mbedtls_ssl_write(&c->ssl, p, len);
        if (r <= 0)
            return r == MBEDTLS_ERR_SSL_ALLOC_FAILED ? -RE_ENOMEM : -RE_ETLS;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int tls_conn_close_notify(struct tls_conn *c)
{
    int r = mbedtls_ssl_close_notify(&c->ssl);
    return r == 0 || r == MBEDTLS_ERR_SSL_WANT_WRITE ? 0 : -RE_ETLS;
}

char *tls_conn_take_output(struct tls_conn *c, size_t *len)
{
    *len = c->out.len;
    if (c->out.len == 0)
        return NULL;
    return re_buf_steal(&c->out);
}

size_t tls_conn_output_len(const struct tls_conn *c)
{
    return c->out.len;
}

const struct tls_peer_info *tls_conn_peer(const struct tls_conn *c)
{
    return &c->peer;
}

bool tls_conn_authenticated(const struct tls_conn *c)
{
    return c->done && c->peer.cert_present && c->peer.verified;
}

int tls_conn_get_session(struct tls_session **out, const struct tls_conn *c)
{
    struct tls_session *s;
    if (!c->done)
        return -RE_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -RE_ENOMEM;
    mbedtls_ssl_session_init(&s->s);
    if (mbedtls_ssl_get_session(&c->ssl, &s->s)) {
        tls_session_free(s);
        return -RE_ETLS;
    }
    *out = s;
    return 0;
}

int tls_session_mint(struct tls_session **out, struct tls_config *srv,
                     const struct tls_session *tmpl, const unsigned char *client_der,
                     size_t der_len)
{
    mbedtls_ssl_session ss;          /* what the server finds in the ticket */
    struct tls_session *cs = NULL;   /* what the client resumes */
    unsigned char *ticket = NULL;
    size_t tlen = 0;
    int r = -RE_ECRYPTO;

    if (!out || !srv || !srv->server || !tmpl || !client_der || der_len == 0)
        return -RE_EINVAL;
    if (!srv->tk[0].set)
        return -RE_ENOENT;
    mbedtls_ssl_session_init(&ss);
    /* the negotiated parameters of a real handshake with this server, a fresh
     * master secret, and the client's certificate as a verified peer */
    ss.start = time(NULL);
    ss.ciphersuite = tmpl->s.ciphersuite;
    ss.compression = tmpl->s.compression;
#if defined(MBEDTLS_SSL_MAX_FRAGMENT_LENGTH)
    ss.mfl_code = tmpl->s.mfl_code;
#endif
#if defined(MBEDTLS_SSL_TRUNCATED_HMAC)
    ss.trunc_hmac = tmpl->s.trunc_hmac;
#endif
#if defined(MBEDTLS_SSL_ENCRYPT_THEN_MAC)
    ss.encrypt_then_mac = tmpl->s.encrypt_then_mac;
#endif
    ss.verify_result = 0;
    if (mbedtls_ctr_drbg_random(&srv->drbg, ss.master, sizeof(ss.master)))
        goto out;
#if defined(MBEDTLS_SSL_KEEP_PEER_CERTIFICATE)
    ss.peer_cert = calloc(1, sizeof(*ss.peer_cert));
    if (!ss.peer_cert) {
        r = -RE_ENOMEM;
        goto out;
    }
    mbedtls_x509_crt_init(ss.peer_cert);
    if (mbedtls_x509_crt_parse_der(ss.peer_cert, client_der, der_len)) {
        r = -RE_EPARSE;
        goto out;
    }
#else
#error "tls_session_mint needs MBEDTLS_SSL_KEEP_PEER_CERTIFICATE (the hub reads the peer's certificate)"
#endif
    ticket = malloc(TICKET_MINT_MAX);
    cs = calloc(1, sizeof(*cs));
    if (!ticket || !cs) {
        r = -RE_ENOMEM;
        goto out;
    }
    if (ticket_seal(srv, &srv->tk[0], &ss, ticket, ticket + TICKET_MINT_MAX, &tlen)) {
        r = -RE_ETOOBIG;
        goto out;
    }
    mbedtls_ssl_session_init(&cs->s);
    cs->s.start = ss.start;
    cs->s.ciphersuite = ss.ciphersuite;
    cs->s.compression = ss.compression;
#if defined(MBEDTLS_SSL_MAX_FRAGMENT_LENGTH)
    cs->s.mfl_code = ss.mfl_code;
#endif
#if defined(MBEDTLS_SSL_TRUNCATED_HMAC)
    cs->s.trunc_hmac = ss.trunc_hmac;
#endif
#if defined(MBEDTLS_SSL_ENCRYPT_THEN_MAC)
    cs->s.encrypt_then_mac = ss.encrypt_then_mac;
#endif
    memcpy(cs->s.master, ss.master, sizeof(ss.master));
    cs->s.verify_result = tmpl->s.verify_result;
    /* no server certificate: a resumption does not see one, and copying it
     * into every connection would cost the simulator a parse each */
    cs->s.ticket = realloc(ticket, tlen);      /* 100,000 of them: no slack */
    if (!cs->s.ticket)
        cs->s.ticket = ticket;
    cs->s.ticket_len = tlen;
    cs->s.ticket_lifetime = srv->rotate_s;
    ticket = NULL;
    *out = cs;
    cs = NULL;
    r = 0;
out:
    mbedtls_ssl_session_free(&ss);           /* wipes the master secret */
    free(ticket);
    free(cs);
    return r;
}

void tls_session_free(struct tls_session *s)
{
    if (!s)
        return;
    mbedtls_ssl_session_free(&s->s);
    free(s);
}
