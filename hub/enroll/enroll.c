/* enroll.c - one-time enrollment codes, certificate issuance from the hub CA
 * on redemption and renewal, and revocation, all recorded in the inventory
 * database and the audit log. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "clock.h"
#include "crypto.h"
#include "enroll.h"
#include "error.h"
#include "fsutil.h"
#include "hub.h"
#include "inventory/audit.h"
#include "inventory/caller.h"
#include "inventory/db.h"
#include "validate.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* ---- the CA ------------------------------------------------------------- */

static int read_in(struct re_buf *out, const char *dir, const char *name)
{
    char path[PATH_MAX];
    int r = re_path_join(path, sizeof(path), dir, name);
    return r < 0 ? r : re_read_file(out, path);
}

int enroll_ca_load(struct enroll_ca *out, const char *dir)
{
    struct re_buf crt, key, seed;
    struct re_cert_info info;
    int r;

    re_buf_init(&crt, RE_PEM_MAX);
    re_buf_init(&key, RE_PEM_MAX);
    re_buf_init(&seed, RE_PEM_MAX + 64);
    if ((r = read_in(&crt, dir, HUB_CA_CRT)) < 0 || (r = read_in(&key, dir, HUB_CA_KEY)) < 0 ||
        (r = re_cert_parse(&info, crt.ptr, crt.len, false)) < 0)
        goto out;
    if (!info.is_ca) {
        r = -RE_EPARSE;
        goto out;
    }
    /* The code key is a hash of the CA key: as secret as it, stable across
     * restarts, and needs no file of its own. */
    if ((r = re_buf_append_str(&seed, "resedge enrollment code key v1\n")) < 0 ||
        (r = re_buf_append(&seed, key.ptr, key.len)) < 0)
        goto out;
    memset(out, 0, sizeof(*out));
    re_sha256(out->code_key, seed.ptr, seed.len);
    memcpy(out->fingerprint, info.fingerprint, sizeof(out->fingerprint));
    if ((r = re_ca_load(&out->issuer, crt.ptr, key.ptr)) < 0) {
        memset(out, 0, sizeof(*out));
        goto out;
    }
    out->crt_pem = re_buf_steal(&crt);
    out->key_pem = re_buf_steal(&key);
out:
    if (seed.ptr)
        memset(seed.ptr, 0, seed.len);
    if (key.ptr)
        memset(key.ptr, 0, key.len);
    re_buf_release(&crt);
    re_buf_release(&key);
    re_buf_release(&seed);
    return r;
}

void enroll_ca_release(struct enroll_ca *ca)
{
    if (!ca)
        return;
    re_ca_free(ca->issuer);
    free(ca->crt_pem);
    if (ca->key_pem) {
        memset(ca->key_pem, 0, strlen(ca->key_pem));
        free(ca->key_pem);
    }
    memset(ca, 0, sizeof(*ca));
}

/* ---- codes -------------------------------------------------------------- */

static int random_base32(char *out, size_t n)
{
    unsigned char rnd[32];
    int r;
    if (n > sizeof(rnd))
        return -RE_EINVAL;
    if ((r = re_random(rnd, n)) < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        out[i] = crockford[rnd[i] & 31];    /* 256 = 8 x 32: no bias */
    out[n] = '\0';
    memset(rnd, 0, sizeof(rnd));
    return 0;
}

int enroll_code_generate(struct enroll_code *out)
{
    struct enroll_code c;
    int r;
    memset(&c, 0, sizeof(c));
    if ((r = random_base32(c.id, ENROLL_ID_LEN)) < 0 ||
        (r = random_base32(c.secret, ENROLL_SECRET_LEN)) < 0)
        return r;
    *out = c;
    return 0;
}

int enroll_code_format(char *out, size_t size, const struct enroll_code *c)
{
    const char *s = c->secret;
    return re_snprintf(out, size, "%s.%.4s-%.4s-%.4s-%.4s", c->id, s, s + 4, s + 8, s + 12);
}

/* Crockford decoding of one typed character: its canonical form, 0 when it
 * is a separator to skip, -1 when it is not part of a code. */
static int canon(char ch)
{
    if (ch == '-' || ch == ' ')
        return 0;
    if (ch >= 'a' && ch <= 'z')
        ch = (char)(ch - 'a' + 'A');
    if (ch == 'I' || ch == 'L')
        return '1';
    if (ch == 'O')
        return '0';
    if (ch && strchr(crockford, ch))
        return ch;
    return -1;
}

static int canon_part(char *out, size_t want, const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int c = canon(p[i]);
        if (c < 0)
            return -RE_EINVAL;
        if (c == 0)
            continue;
        if (n == want)
            return -RE_EINVAL;
        out[n++] = (char)c;
    }
    if (n != want)
        return -RE_EINVAL;
    out[n] = '\0';
    return 0;
}

int enroll_code_parse(struct enroll_code *out, struct re_str t)
{
    struct enroll_code c;
    const char *dot;
    /* Surrounding whitespace from copy and paste is forgiven. */
    while (t.len && (t.ptr[0] == ' ' || t.ptr[0] == '\t' || t.ptr[0] == '\n' || t.ptr[0] == '\r'))
        t.ptr++, t.len--;
    while (t.len && (t.ptr[t.len - 1] == ' ' || t.ptr[t.len - 1] == '\t' ||
                     t.ptr[t.len - 1] == '\n' || t.ptr[t.len - 1] == '\r'))
        t.len--;
    if (!t.ptr || t.len == 0 || t.len > 128 || !(dot = memchr(t.ptr, '.', t.len)))
        return -RE_EINVAL;
    if (canon_part(c.id, ENROLL_ID_LEN, t.ptr, (size_t)(dot - t.ptr)) < 0 ||
        canon_part(c.secret, ENROLL_SECRET_LEN, dot + 1, t.len - (size_t)(dot - t.ptr) - 1) < 0)
        return -RE_EINVAL;
    *out = c;
    return 0;
}

void enroll_code_hash(char out[65], const struct enroll_ca *ca, const struct enroll_code *c)
{
    uint8_t in[32 + ENROLL_ID_LEN + 1 + ENROLL_SECRET_LEN], h[32];
    memcpy(in, ca->code_key, 32);
    memcpy(in + 32, c->id, ENROLL_ID_LEN);
    in[32 + ENROLL_ID_LEN] = '.';
    memcpy(in + 32 + ENROLL_ID_LEN + 1, c->secret, ENROLL_SECRET_LEN);
    re_sha256(h, in, sizeof(in));
    re_hex(out, h, sizeof(h));
    memset(in, 0, sizeof(in));
}

/* ---- database helpers --------------------------------------------------- */

static const char *identity_table(const char *kind)
{
    if (kind && strcmp(kind, "cluster") == 0)
        return "clusters";
    if (kind && strcmp(kind, "user") == 0)
        return "users";
    return NULL;
}

/* A person's role by its canonical name (one list of roles: auth.c). */
static bool role_valid(const char *role)
{
    int r = role ? role_parse(role) : 0;
    return (r & ROLE_ANY_USER) && strcmp(role_name(r), role) == 0;
}

/* Prepares sql, binds text (NULL allowed) and int64 arguments by a format
 * string of 't' and 'i', steps once. Returns 0 (or 1 when a row came back,
 * left in *out when out is not NULL) or a negative error. */
static int run(sqlite3 *db, sqlite3_stmt **out, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    int rc, r;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -RE_EDB;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 't') {
            const char *s = va_arg(ap, const char *);
            if (s)
                sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, i + 1);
        } else {
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        }
    }
    va_end(ap);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && out) {
        *out = st;
        return 1;
    }
    r = rc == SQLITE_ROW ? 1 : db_err(rc);
    sqlite3_finalize(st);
    return r;
}

/* One audit row (audit.c), in the caller's transaction when there is one. */
static int audit2(sqlite3 *db, int64_t now, const char *actor, const char *action,
                  const char *entity, const char *name, const cJSON *before, const cJSON *after)
{
    return audit_record(db, now, actor, action, entity, 0, name, before, after);
}

static int audit(sqlite3 *db, int64_t now, const char *actor, const char *action,
                 const char *entity, const char *name, const cJSON *after)
{
    return audit_record(db, now, actor, action, entity, 0, name, NULL, after);
}

static const char *addr_or_unknown(const char *addr)
{
    return addr && *addr ? addr : "unknown";
}

/* -RE_EAGAIN with *retry_after when addr failed too often recently. */
static int addr_limited(sqlite3 *db, const char *addr, int64_t now, unsigned *retry_after)
{
    sqlite3_stmt *st = NULL;
    int r = run(db, &st, "SELECT COUNT(*), MIN(at) FROM enroll_failures WHERE addr = ?1 AND at > ?2",
                "ti", addr, now - ENROLL_FAIL_WINDOW_S);
    if (r < 0)
        return r;
    if (r == 1) {
        int64_t n = sqlite3_column_int64(st, 0), oldest = sqlite3_column_int64(st, 1);
        sqlite3_finalize(st);
        if (n >= ENROLL_MAX_FAILS_PER_ADDR) {
            int64_t wait = oldest + ENROLL_FAIL_WINDOW_S - now;
            *retry_after = (unsigned)(wait < 1 ? 1 : wait);
            return -RE_EAGAIN;
        }
    }
    return 0;
}

/* Audits a refused attempt; a guess (a code that is not one, an unknown id,
 * a wrong secret) also counts against addr for rate limiting, while a bad
 * CSR or a mismatch does not: stores behind one NAT address should not lock
 * each other out over a broken CSR. Errors here do not change the refusal
 * the caller returns. */
static void record_failure(sqlite3 *db, const char *addr, const char *code_id,
                           const char *reason, bool guess, int64_t now)
{
    cJSON *j = cJSON_CreateObject();
    if (guess) {
        run(db, NULL, "INSERT INTO enroll_failures (addr, code_id, at) VALUES (?1, ?2, ?3)",
            "tti", addr, code_id, now);
        run(db, NULL, "DELETE FROM enroll_failures WHERE at <= ?1", "i",
            now - ENROLL_FAIL_WINDOW_S);
    }
    if (j) {
        cJSON_AddStringToObject(j, "reason", reason);
        cJSON_AddStringToObject(j, "remote_addr", addr);
        if (code_id)
            cJSON_AddStringToObject(j, "code_id", code_id);
    }
    audit(db, now, addr, "enroll-failed", "enroll_code", code_id ? code_id : "", j);
    cJSON_Delete(j);
}

/* ---- creating codes ----------------------------------------------------- */

/* Inserts a fresh code for who; inside the caller's transaction. */
static int code_insert(char *code_out, size_t size, int64_t *expires_out, sqlite3 *db,
                       const struct enroll_ca *ca, const struct enroll_identity *who,
                       int64_t ttl_s, const char *actor, int64_t now)
{
    struct enroll_code c;
    char hash[65], formatted[ENROLL_CODE_MAX];
    int r = -RE_EEXIST;
    cJSON *j = NULL;

    /* 2^30 ids: a collision is rare; try again with a new one. */
    for (int attempt = 0; attempt < 8 && r == -RE_EEXIST; attempt++) {
        if ((r = enroll_code_generate(&c)) < 0)
            return r;
        enroll_code_hash(hash, ca, &c);
        r = run(db, NULL, "INSERT INTO enroll_codes (id, secret_hash, kind, name, role, "
                "created_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                "tttttt" "ii", c.id, hash, who->kind, who->name, who->role, actor, now, now + ttl_s);
    }
    if (r < 0)
        goto out;
    if ((r = enroll_code_format(formatted, sizeof(formatted), &c)) < 0)
        goto out;
    if (!(j = cJSON_CreateObject())) {
        r = -RE_ENOMEM;
        goto out;
    }
    cJSON_AddStringToObject(j, "code_id", c.id);
    cJSON_AddNumberToObject(j, "expires_at", (double)(now + ttl_s));
    if (who->role)
        cJSON_AddStringToObject(j, "role", who->role);
    if ((r = audit(db, now, actor, "enroll-code", who->kind, who->name, j)) < 0)
        goto out;
    if ((r = re_snprintf(code_out, size, "%s", formatted)) < 0)
        goto out;
    *expires_out = now + ttl_s;
out:
    cJSON_Delete(j);
    memset(&c, 0, sizeof(c));
    memset(formatted, 0, sizeof(formatted));
    return r;
}

static int check_ttl(int64_t ttl_s)
{
    return ttl_s >= 1 && ttl_s <= ENROLL_TTL_MAX_S ? 0 : -RE_EINVAL;
}

int enroll_code_create(char *code_out, size_t size, int64_t *expires_out, sqlite3 *db,
                       const struct enroll_ca *ca, const struct enroll_identity *who,
                       int64_t ttl_s, const char *actor, int64_t now)
{
    const char *table = identity_table(who->kind);
    char sql[96];
    int r;
    if (!table || !who->name || check_ttl(ttl_s) < 0 ||
        (who->role && (strcmp(who->kind, "user") != 0 || !role_valid(who->role))))
        return -RE_EINVAL;
    if ((r = re_snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE name = ?1", table)) < 0)
        return r;
    if ((r = db_begin(db)) < 0)
        return r;
    if ((r = run(db, NULL, sql, "t", who->name)) < 0)
        goto fail;
    if (r == 0) {
        r = -RE_ENOENT;
        goto fail;
    }
    if ((r = code_insert(code_out, size, expires_out, db, ca, who, ttl_s, actor, now)) < 0 ||
        (r = db_commit(db)) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return r;
}

int enroll_user_add(char *code_out, size_t size, int64_t *expires_out, sqlite3 *db,
                    const struct enroll_ca *ca, const char *name, const char *role,
                    int64_t ttl_s, const char *actor, int64_t now)
{
    struct enroll_identity who = { "user", name, role };
    char ident[160];
    cJSON *j = NULL;
    int r;
    if (!name || !role_valid(role) || check_ttl(ttl_s) < 0 ||
        re_snprintf(ident, sizeof(ident), "user/%s", name) < 0 ||
        validate_identity(re_str_c(ident), NULL) < 0)
        return -RE_EINVAL;
    if ((r = db_begin(db)) < 0)
        return r;
    /* No certificate yet: auth.c denies the name until the code is redeemed. */
    if ((r = run(db, NULL, "INSERT INTO users (name, role, created_at, created_by, updated_at, "
                 "updated_by) VALUES (?1, ?2, ?3, ?4, ?3, ?4)", "tti" "t",
                 name, role, now, actor)) < 0)
        goto fail;
    if (!(j = cJSON_CreateObject())) {
        r = -RE_ENOMEM;
        goto fail;
    }
    cJSON_AddStringToObject(j, "role", role);
    if ((r = audit(db, now, actor, "create", "user", name, j)) < 0 ||
        (r = code_insert(code_out, size, expires_out, db, ca, &who, ttl_s, actor, now)) < 0 ||
        (r = db_commit(db)) < 0)
        goto fail;
    cJSON_Delete(j);
    return 0;
fail:
    cJSON_Delete(j);
    db_rollback(db);
    return r;
}

/* ---- issuing ------------------------------------------------------------ */

/* Verifies the CSR's proof of possession; pub gets its public key. */
static int csr_key(struct re_buf *pub, struct re_str csr)
{
    if (csr.len > ENROLL_CSR_MAX)
        return -RE_ETOOBIG;
    if (!csr.ptr || csr.len == 0)
        return -RE_EPARSE;
    return re_csr_verify(pub, csr.ptr, csr.len);
}

/* Signs a client certificate for kind/name with pubkey; fills out. */
static int issue(struct enroll_result *out, const struct enroll_ca *ca,
                 const struct enroll_policy *pol, const char *kind, const char *name,
                 const char *pubkey, int64_t now)
{
    struct re_cert_info info;
    unsigned days = pol->lifetime_days ? pol->lifetime_days : 30;
    int64_t life = (int64_t)days * 86400;
    int r;

    if ((r = re_snprintf(out->kind, sizeof(out->kind), "%s", kind)) < 0 ||
        (r = re_snprintf(out->name, sizeof(out->name), "%s", name)) < 0 ||
        (r = re_snprintf(out->identity, sizeof(out->identity), "spiffe://%s/%s/%s",
                         pol->trust_domain ? pol->trust_domain : "resedge", kind, name)) < 0)
        return r;
    /* Identity and usages from the hub's records only: CN, one URI SAN,
     * clientAuth, not a CA. Backdated for clocks that run behind ours. */
    struct re_cert_spec spec = {
        .cn = name, .uri_san = out->identity, .client_auth = true,
        .not_before = now - ENROLL_BACKDATE_S, .not_after = now + life,
    };
    re_buf_reset(&out->cert);
    r = ca->issuer ? re_ca_issue(&out->cert, ca->issuer, pubkey, &spec)
                   : re_cert_issue(&out->cert, ca->crt_pem, ca->key_pem, pubkey, &spec);
    if (r < 0 ||
        (r = re_cert_parse(&info, out->cert.ptr, out->cert.len, false)) < 0)
        return r;
    memcpy(out->serial, info.serial, sizeof(out->serial));
    out->not_before = spec.not_before;
    out->not_after = spec.not_after;
    out->renew_after = now + life - life / 3;
    return 0;
}

/* Logs the certificate in issued_certs and audits it; in a transaction. */
static int record_issue(sqlite3 *db, const struct enroll_result *res, const char *how,
                        const char *actor, const char *remote_addr, int64_t now)
{
    cJSON *j = cJSON_CreateObject();
    int r;
    if (!j)
        return -RE_ENOMEM;
    cJSON_AddStringToObject(j, "serial", res->serial);
    cJSON_AddStringToObject(j, "identity", res->identity);
    cJSON_AddNumberToObject(j, "not_after", (double)res->not_after);
    cJSON_AddStringToObject(j, "remote_addr", addr_or_unknown(remote_addr));
    if (res->code_id[0])
        cJSON_AddStringToObject(j, "code_id", res->code_id);
    r = run(db, NULL, "INSERT INTO issued_certs (serial, kind, name, identity, how, issued_at, "
            "not_before, not_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", "ttttt" "iii",
            res->serial, res->kind, res->name, res->identity, how, now, res->not_before,
            res->not_after);
    if (r == 0)
        r = audit(db, now, actor, how, res->kind, res->name, j);
    cJSON_Delete(j);
    return r < 0 ? r : 0;
}

static int csr_refusal(sqlite3 *db, const char *addr, const char *code_id, int r, int64_t now)
{
    if (r == -RE_EPARSE || r == -RE_EBADSIG || r == -RE_ETOOBIG || r == -RE_EUNSUPP ||
        r == -RE_EINVAL) {
        record_failure(db, addr, code_id, r == -RE_EBADSIG ? "csr_bad_signature" :
                       r == -RE_ETOOBIG ? "csr_too_large" : "csr_malformed", false, now);
        return r == -RE_EINVAL ? -RE_EPARSE : r;
    }
    return r;
}

/* Why a code cannot be consumed, from its row; 0 when it can. */
static int code_state(int64_t expires_at, bool used, bool locked, bool cancelled, int64_t now)
{
    if (locked)
        return -RE_ELOCKED;
    if (used)
        return -RE_ECONFLICT;
    if (cancelled || expires_at + ENROLL_LEEWAY_S <= now)
        return -RE_EEXPIRED;
    return 0;
}

int enroll_redeem(struct enroll_result *out, sqlite3 *db, const struct enroll_ca *ca,
                  const struct enroll_policy *pol, struct re_str code, struct re_str csr,
                  const char *expect_kind, const char *expect_name, const char *remote_addr,
                  int64_t now)
{
    const char *addr = addr_or_unknown(remote_addr);
    struct enroll_code c;
    struct re_buf pub;
    sqlite3_stmt *st = NULL;
    char hash[65], stored_hash[65] = "", kind[16] = "", name[128] = "", role[32] = "";
    int64_t expires_at = 0;
    bool used = false, locked = false, cancelled = false, has_role = false, in_tx = false;
    int r;

    re_buf_init(&pub, RE_PEM_MAX);
    out->code_id[0] = '\0';
    if (csr.len > ENROLL_CSR_MAX) {
        r = csr_refusal(db, addr, NULL, -RE_ETOOBIG, now);
        goto out;
    }
    /* Fail closed: when the limiter cannot read its table, nothing is issued. */
    if ((r = addr_limited(db, addr, now, &out->retry_after)) < 0)
        goto out;
    if (enroll_code_parse(&c, code) < 0) {
        record_failure(db, addr, NULL, "malformed_code", true, now);
        r = -RE_EUNAUTH;
        goto out;
    }
    r = run(db, &st, "SELECT secret_hash, kind, name, role, expires_at, used_at IS NOT NULL, "
            "locked, cancelled_at IS NOT NULL FROM enroll_codes WHERE id = ?1", "t", c.id);
    if (r < 0)
        goto out;
    if (r == 0) {
        record_failure(db, addr, c.id, "unknown_code", true, now);
        r = -RE_EUNAUTH;
        goto out;
    }
    re_snprintf(stored_hash, sizeof(stored_hash), "%s", (const char *)sqlite3_column_text(st, 0));
    re_snprintf(kind, sizeof(kind), "%s", (const char *)sqlite3_column_text(st, 1));
    re_snprintf(name, sizeof(name), "%s", (const char *)sqlite3_column_text(st, 2));
    if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
        has_role = true;
        re_snprintf(role, sizeof(role), "%s", (const char *)sqlite3_column_text(st, 3));
    }
    expires_at = sqlite3_column_int64(st, 4);
    used = sqlite3_column_int(st, 5) != 0;
    locked = sqlite3_column_int(st, 6) != 0;
    cancelled = sqlite3_column_int(st, 7) != 0;
    sqlite3_finalize(st);
    st = NULL;
    memcpy(out->code_id, c.id, sizeof(out->code_id));

    if (locked) {
        record_failure(db, addr, c.id, "code_locked", true, now);
        r = -RE_ELOCKED;
        goto out;
    }
    enroll_code_hash(hash, ca, &c);
    if (!re_consttime_eq(hash, stored_hash, 64)) {
        /* Count against the code; the fifth wrong secret locks it. */
        r = run(db, &st, "UPDATE enroll_codes SET failed_attempts = failed_attempts + 1, "
                "locked = CASE WHEN failed_attempts + 1 >= ?2 THEN 1 ELSE locked END "
                "WHERE id = ?1 RETURNING locked", "ti", c.id, (int64_t)ENROLL_MAX_FAILS_PER_CODE);
        locked = r == 1 && sqlite3_column_int(st, 0) != 0;
        sqlite3_finalize(st);
        st = NULL;
        record_failure(db, addr, c.id, locked ? "wrong_secret_locked" : "wrong_secret", true, now);
        r = locked ? -RE_ELOCKED : -RE_EUNAUTH;
        goto out;
    }
    if ((r = code_state(expires_at, used, locked, cancelled, now)) < 0)
        goto out;
    if ((expect_kind && strcmp(expect_kind, kind) != 0) ||
        (expect_name && strcmp(expect_name, name) != 0)) {
        record_failure(db, addr, c.id, "code_mismatch", false, now);
        r = -RE_EDENIED;
        goto out;
    }
    if (!identity_table(kind)) {
        r = -RE_EDB;
        goto out;
    }
    /* Proof of possession before the code is spent: a bad CSR leaves it usable. */
    if ((r = csr_key(&pub, csr)) < 0) {
        r = csr_refusal(db, addr, c.id, r, now);
        goto out;
    }
    if ((r = issue(out, ca, pol, kind, name, pub.ptr, now)) < 0)
        goto out;

    if ((r = db_begin(db)) < 0)
        goto out;
    in_tx = true;
    r = run(db, NULL, "UPDATE enroll_codes SET used_at = ?2, used_from = ?3, cert_serial = ?4 "
            "WHERE id = ?1 AND secret_hash = ?5 AND used_at IS NULL AND expires_at > ?6 "
            "AND locked = 0 AND cancelled_at IS NULL", "tit" "tti",
            c.id, now, addr, out->serial, hash, now - ENROLL_LEEWAY_S);
    if (r < 0)
        goto out;
    if (sqlite3_changes(db) != 1) {
        /* Another attempt won (or a revocation cancelled it) since we looked. */
        r = run(db, &st, "SELECT expires_at, used_at IS NOT NULL, locked, cancelled_at IS NOT NULL "
                "FROM enroll_codes WHERE id = ?1", "t", c.id);
        if (r == 1)
            r = code_state(sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1) != 0,
                           sqlite3_column_int(st, 2) != 0, sqlite3_column_int(st, 3) != 0, now);
        sqlite3_finalize(st);
        st = NULL;
        if (r >= 0)
            r = -RE_ECONFLICT;
        goto out;
    }
    if (strcmp(kind, "user") == 0)
        r = run(db, NULL, "UPDATE users SET cert_serial = ?1, revoked = 0, "
                "role = COALESCE(?3, role), updated_at = ?4, version = version + 1 "
                "WHERE name = ?2", "ttti", out->serial, name, has_role ? role : NULL, now);
    else
        r = run(db, NULL, "UPDATE clusters SET cert_serial = ?1, revoked = 0 WHERE name = ?2",
                "tt", out->serial, name);
    if (r < 0)
        goto out;
    if (sqlite3_changes(db) != 1) {
        r = -RE_ENOENT;         /* the identity was deleted after the code was made */
        goto out;
    }
    {
        char actor[160];
        re_snprintf(actor, sizeof(actor), "code/%s@%s", c.id, addr);
        if ((r = record_issue(db, out, "enroll", actor, addr, now)) < 0)
            goto out;
    }
    if ((r = db_commit(db)) < 0)
        goto out;
    in_tx = false;
out:
    if (in_tx)
        db_rollback(db);
    sqlite3_finalize(st);
    re_buf_release(&pub);
    memset(&c, 0, sizeof(c));
    return r;
}

int enroll_renew_identity(struct enroll_result *out, sqlite3 *db, const struct enroll_ca *ca,
                 const struct enroll_policy *pol, const char *kind, const char *name,
                 const char *cur_serial, struct re_str csr, const char *remote_addr, int64_t now)
{
    const char *table = identity_table(kind), *addr = addr_or_unknown(remote_addr);
    struct re_buf pub;
    char sql[160], actor[160];
    bool in_tx = false;
    int r;

    re_buf_init(&pub, RE_PEM_MAX);
    out->code_id[0] = '\0';
    if (!table || !name || !cur_serial || !*cur_serial) {
        r = -RE_EINVAL;
        goto out;
    }
    if ((r = re_snprintf(actor, sizeof(actor), "%s/%s", kind, name)) < 0)
        goto out;
    if ((r = csr_key(&pub, csr)) < 0) {
        r = csr_refusal(db, addr, NULL, r, now);
        goto out;
    }
    if ((r = issue(out, ca, pol, kind, name, pub.ptr, now)) < 0 ||
        (r = re_snprintf(sql, sizeof(sql), "UPDATE %s SET cert_serial = ?1 WHERE name = ?2 "
                         "AND cert_serial = ?3 AND revoked = 0", table)) < 0 ||
        (r = db_begin(db)) < 0)
        goto out;
    in_tx = true;
    if ((r = run(db, NULL, sql, "ttt", out->serial, name, cur_serial)) < 0)
        goto out;
    if (sqlite3_changes(db) != 1) {
        /* Revoked, or replaced since this connection authenticated. */
        db_rollback(db);
        in_tx = false;
        {
            cJSON *j = cJSON_CreateObject();
            if (j) {
                cJSON_AddStringToObject(j, "reason", "not_current_or_revoked");
                cJSON_AddStringToObject(j, "serial", cur_serial);
                cJSON_AddStringToObject(j, "remote_addr", addr);
            }
            audit(db, now, actor, "renew-failed", kind, name, j);
            cJSON_Delete(j);
        }
        r = -RE_EDENIED;
        goto out;
    }
    if ((r = record_issue(db, out, "renew", actor, addr, now)) < 0 || (r = db_commit(db)) < 0)
        goto out;
    in_tx = false;
out:
    if (in_tx)
        db_rollback(db);
    re_buf_release(&pub);
    return r;
}

int enroll_revoke(sqlite3 *db, const char *kind, const char *name, const char *actor, int64_t now)
{
    const char *table = identity_table(kind);
    sqlite3_stmt *st = NULL;
    char sql[160];
    cJSON *before = NULL;
    int r;

    if (!table || !name)
        return -RE_EINVAL;
    if ((r = db_begin(db)) < 0)
        return r;
    if ((r = re_snprintf(sql, sizeof(sql), "SELECT cert_serial, revoked FROM %s WHERE name = ?1",
                         table)) < 0 ||
        (r = run(db, &st, sql, "t", name)) < 0)
        goto out;
    if (r == 0) {
        r = -RE_ENOENT;
        goto out;
    }
    if (!(before = cJSON_CreateObject())) {
        r = -RE_ENOMEM;
        goto out;
    }
    if (sqlite3_column_type(st, 0) != SQLITE_NULL)
        cJSON_AddStringToObject(before, "cert_serial", (const char *)sqlite3_column_text(st, 0));
    cJSON_AddBoolToObject(before, "revoked", sqlite3_column_int(st, 1) != 0);
    sqlite3_finalize(st);
    st = NULL;
    /* Both marks: auth.c denies a revoked identity and any serial but the
     * current one, so either alone would already deny every certificate. */
    if ((r = re_snprintf(sql, sizeof(sql), "UPDATE %s SET revoked = 1, cert_serial = NULL "
                         "WHERE name = ?1", table)) < 0 ||
        (r = run(db, NULL, sql, "t", name)) < 0 ||
        (r = run(db, NULL, "UPDATE issued_certs SET revoked = 1, revoked_at = ?3 "
                 "WHERE kind = ?1 AND name = ?2 AND revoked = 0", "tti", kind, name, now)) < 0 ||
        (r = run(db, NULL, "UPDATE enroll_codes SET cancelled_at = ?3 WHERE kind = ?1 "
                 "AND name = ?2 AND used_at IS NULL AND cancelled_at IS NULL", "tti",
                 kind, name, now)) < 0)
        goto out;
    {
        cJSON *after = cJSON_CreateObject();
        if (after)
            cJSON_AddBoolToObject(after, "revoked", true);
        r = audit2(db, now, actor, "revoke", kind, name, before, after);
        cJSON_Delete(after);
        if (r < 0)
            goto out;
    }
    if ((r = db_commit(db)) < 0)
        goto out;
    cJSON_Delete(before);
    return 0;
out:
    sqlite3_finalize(st);
    cJSON_Delete(before);
    db_rollback(db);
    return r;
}
