/* test_enroll.c - unit tests for hub/enroll.c: code generation, parsing and
 * hashing; redemption (issued identity and usages, one use, expiry with
 * leeway, lock-out, rate limiting per address, CSR checks, concurrent
 * redemption); renewal; revocation and re-enrollment; user codes. Each test
 * runs on a real state directory made by state_init in test_tmpdir(). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbedtls/pem.h>

#include "clock.h"
#include "crypto.h"
#include "enroll/enroll.h"
#include "error.h"
#include "hub.h"
#include "inventory/db.h"
#include "state.h"
#include "testlib.h"

#define NOW 1900000000LL
#define CSR_HDR "-----BEGIN CERTIFICATE REQUEST-----"
#define CSR_FTR "-----END CERTIFICATE REQUEST-----"

static char dir[512];
static sqlite3 *db;
static struct enroll_ca ca;
static const struct enroll_policy pol = { "resedge", 30 };

static void setup(void)
{
    struct state_init_opts o = { 0 };
    struct re_buf err;
    char path[600];
    snprintf(dir, sizeof(dir), "%s/hub", test_tmpdir());
    o.dir = dir;
    re_buf_init(&err, 4096);
    if (state_init(&o, &err) < 0) {
        fprintf(stderr, "state_init: %s\n", err.ptr ? err.ptr : "?");
        exit(1);
    }
    re_buf_release(&err);
    snprintf(path, sizeof(path), "%s/" HUB_DB_FILE, dir);
    CHECK_EQ_INT(db_open(&db, path), 0);
    CHECK_EQ_INT(enroll_ca_load(&ca, dir), 0);
    CHECK_EQ_INT(db_exec(db, "INSERT INTO clusters (name, created_at, created_by, updated_at, "
                         "updated_by) VALUES ('store-a', 1, 't', 1, 't'), "
                         "('store-b', 1, 't', 1, 't')"), 0);
}

static void teardown(void)
{
    enroll_ca_release(&ca);
    db_close(db);
}

/* A fresh key and a CSR that asks for things it must not get. */
static void make_csr(struct re_buf *key, struct re_buf *csr)
{
    re_buf_init(key, RE_PEM_MAX);
    re_buf_init(csr, RE_PEM_MAX);
    CHECK_EQ_INT(re_key_generate(key), 0);
    CHECK_EQ_INT(re_csr_create(csr, key->ptr, "evil", "spiffe://resedge/user/admin"), 0);
}

static void new_code(char *code, const char *kind, const char *name, int64_t ttl)
{
    struct enroll_identity who = { kind, name, NULL };
    int64_t exp = 0;
    CHECK_EQ_INT(enroll_code_create(code, ENROLL_CODE_MAX, &exp, db, &ca, &who, ttl, "user/admin",
                                    NOW), 0);
    CHECK_EQ_INT(exp, NOW + ttl);
}

static void result_init(struct enroll_result *res)
{
    memset(res, 0, sizeof(*res));
    re_buf_init(&res->cert, RE_PEM_MAX);
}

static int redeem_at(struct enroll_result *res, const char *code, const struct re_buf *csr,
                     const char *addr, int64_t now)
{
    return enroll_redeem(res, db, &ca, &pol, re_str_c(code), re_buf_str(csr), NULL, NULL, addr, now);
}

static int redeem(const char *code, const char *addr, int64_t now)
{
    struct re_buf key, csr;
    struct enroll_result res;
    int r;
    make_csr(&key, &csr);
    result_init(&res);
    r = redeem_at(&res, code, &csr, addr, now);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&res.cert);
    return r;
}

static char *query_text(const char *sql)
{
    sqlite3_stmt *st;
    char *s = NULL;
    CHECK_EQ_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        s = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return s;
}

static long long query_int(const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    CHECK_EQ_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* ---- codes -------------------------------------------------------------- */

static void test_code_format_parse(void)
{
    struct enroll_code c, p;
    char text[ENROLL_CODE_MAX], typed[ENROLL_CODE_MAX];
    CHECK_EQ_INT(enroll_code_generate(&c), 0);
    CHECK_EQ_INT(strlen(c.id), ENROLL_ID_LEN);
    CHECK_EQ_INT(strlen(c.secret), ENROLL_SECRET_LEN);
    CHECK_EQ_INT(enroll_code_format(text, sizeof(text), &c), 0);
    CHECK_EQ_INT(strlen(text), ENROLL_ID_LEN + 1 + ENROLL_SECRET_LEN + 3);
    CHECK_EQ_INT(text[ENROLL_ID_LEN], '.');
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c(text)), 0);
    CHECK_EQ_STR(p.id, c.id);
    CHECK_EQ_STR(p.secret, c.secret);

    /* Lower case, no dashes, spaces, surrounding newline. */
    for (size_t i = 0; text[i]; i++)
        typed[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] - 'A' + 'a' : text[i]);
    typed[strlen(text)] = '\0';
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c(typed)), 0);
    CHECK_EQ_STR(p.secret, c.secret);
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c(" ab12cd.ABCDEFGH JKMN-PQRS\n")), 0);
    CHECK_EQ_STR(p.id, "AB12CD");
    CHECK_EQ_STR(p.secret, "ABCDEFGHJKMNPQRS");
    /* Look-alikes read aloud: I and L are 1, O is 0. */
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("OIL000.oooo-iiii-llll-0000")), 0);
    CHECK_EQ_STR(p.id, "011000");
    CHECK_EQ_STR(p.secret, "0000111111110000");

    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("")), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("AB12CDABCDEFGHJKMNPQRS")), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("AB12C.ABCD-EFGH-JKMN-PQRS")), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("AB12CD.ABCD-EFGH-JKMN-PQR")), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("AB12CD.ABCD-EFGH-JKMN-PQRST")), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("AB12CD.ABCD-EFGH-JKMN-PQRU")), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("AB12CD.ABCD-EFGH-JKMN-PQR'")), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_parse(&p, re_str_c("AB12CD.ABCD.EFGH-JKMN-PQRS")), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_parse(&p, (struct re_str){ "AB12CD.ABCD-EFGH-JKMN-PQRS", 10 }),
                 -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_format(text, 10, &c), -RE_ETOOBIG);
}

static void test_code_randomness(void)
{
    enum { N = 2000 };
    static struct enroll_code c[N];
    int seen[32] = { 0 };
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(enroll_code_generate(&c[i]), 0);
        for (int k = 0; k < ENROLL_SECRET_LEN; k++)
            seen[strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c[i].secret[k]) -
                 "0123456789ABCDEFGHJKMNPQRSTVWXYZ"]++;
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            CHECK(strcmp(c[i].secret, c[j].secret) != 0);
    /* 32,000 symbols: each of the 32 about 1,000 times. */
    for (int k = 0; k < 32; k++)
        CHECK(seen[k] > 800 && seen[k] < 1200);
}

static void test_code_hash(void)
{
    struct enroll_code a = { "AB12CD", "ABCDEFGHJKMNPQRS" }, b = a, d = a;
    struct enroll_ca other = ca;
    char ha[65], hb[65], hd[65], ho[65];
    setup();
    enroll_code_hash(ha, &ca, &a);
    enroll_code_hash(hb, &ca, &b);
    CHECK_EQ_STR(ha, hb);
    CHECK_EQ_INT(strlen(ha), 64);
    d.secret[15] = 'T';
    enroll_code_hash(hd, &ca, &d);
    CHECK(strcmp(ha, hd) != 0);
    d = a;
    d.id[0] = 'X';
    enroll_code_hash(hd, &ca, &d);
    CHECK(strcmp(ha, hd) != 0);
    other = ca;
    other.code_key[0] ^= 1;
    enroll_code_hash(ho, &other, &a);
    CHECK(strcmp(ha, ho) != 0);

    /* Only the hash is stored; the secret appears nowhere in the database. */
    {
        char code[ENROLL_CODE_MAX], sql[200], *h;
        struct enroll_code c;
        new_code(code, "cluster", "store-a", 3600);
        CHECK_EQ_INT(enroll_code_parse(&c, re_str_c(code)), 0);
        enroll_code_hash(ha, &ca, &c);
        snprintf(sql, sizeof(sql), "SELECT secret_hash FROM enroll_codes WHERE id = '%s'", c.id);
        h = query_text(sql);
        CHECK_EQ_STR(h, ha);
        free(h);
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM enroll_codes WHERE secret_hash LIKE "
                 "'%%%s%%' OR created_by LIKE '%%%s%%'", c.secret, c.secret);
        CHECK_EQ_INT(query_int(sql), 0);
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM audit WHERE after LIKE '%%%s%%'",
                 c.secret);
        CHECK_EQ_INT(query_int(sql), 0);
    }
    teardown();
}

static void test_code_create_errors(void)
{
    struct enroll_identity who = { "cluster", "store-zz", NULL };
    char code[ENROLL_CODE_MAX];
    int64_t exp;
    setup();
    CHECK_EQ_INT(enroll_code_create(code, sizeof(code), &exp, db, &ca, &who, 3600, "a", NOW),
                 -RE_ENOENT);
    who.name = "store-a";
    CHECK_EQ_INT(enroll_code_create(code, sizeof(code), &exp, db, &ca, &who, 0, "a", NOW),
                 -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_create(code, sizeof(code), &exp, db, &ca, &who,
                                    ENROLL_TTL_MAX_S + 1, "a", NOW), -RE_EINVAL);
    CHECK_EQ_INT(enroll_code_create(code, sizeof(code), &exp, db, &ca, &who, ENROLL_TTL_MAX_S,
                                    "a", NOW), 0);
    who.kind = "robot";
    CHECK_EQ_INT(enroll_code_create(code, sizeof(code), &exp, db, &ca, &who, 60, "a", NOW),
                 -RE_EINVAL);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM enroll_codes"), 1);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM audit WHERE action = 'enroll-code' AND "
                           "entity = 'cluster' AND name = 'store-a' AND actor = 'a'"), 1);
    teardown();
}

/* ---- redemption --------------------------------------------------------- */

static void test_redeem_issues_identity_from_records(void)
{
    struct re_buf key, csr;
    struct enroll_result res;
    struct re_cert_info info;
    char code[ENROLL_CODE_MAX], *s;
    setup();
    new_code(code, "cluster", "store-a", 3600);
    make_csr(&key, &csr);
    result_init(&res);
    CHECK_EQ_INT(redeem_at(&res, code, &csr, "10.0.0.1", NOW + 10), 0);
    CHECK_EQ_STR(res.identity, "spiffe://resedge/cluster/store-a");
    CHECK_EQ_STR(res.kind, "cluster");
    CHECK_EQ_STR(res.name, "store-a");
    CHECK_EQ_INT(res.not_before, NOW + 10 - ENROLL_BACKDATE_S);
    CHECK_EQ_INT(res.not_after, NOW + 10 + 30 * 86400LL);
    CHECK_EQ_INT(res.renew_after, NOW + 10 + 20 * 86400LL);

    CHECK_EQ_INT(re_cert_parse(&info, res.cert.ptr, res.cert.len, false), 0);
    CHECK_EQ_STR(info.subject_cn, "store-a");                 /* not "evil" */
    CHECK_EQ_STR(info.uri_san, "spiffe://resedge/cluster/store-a");
    CHECK(!info.is_ca);
    CHECK_EQ_STR(info.serial, res.serial);
    CHECK_EQ_INT(re_cert_matches_key(res.cert.ptr, key.ptr), 0);
    /* Valid 4 minutes before the hub's clock (an agent running behind). */
    CHECK_EQ_INT(re_cert_verify(res.cert.ptr, ca.crt_pem, NOW + 10 - 240), 0);
    CHECK_EQ_INT(re_cert_verify(res.cert.ptr, ca.crt_pem, NOW + 10 - 400), -RE_EEXPIRED);

    s = query_text("SELECT cert_serial FROM clusters WHERE name = 'store-a'");
    CHECK_EQ_STR(s, res.serial);
    free(s);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM issued_certs WHERE kind = 'cluster' AND "
                           "name = 'store-a' AND how = 'enroll' AND revoked = 0"), 1);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM audit WHERE action = 'enroll' AND "
                           "name = 'store-a'"), 1);
    CHECK_EQ_INT(query_int("SELECT used_at FROM enroll_codes"), NOW + 10);
    s = query_text("SELECT used_from FROM enroll_codes");
    CHECK_EQ_STR(s, "10.0.0.1");
    free(s);

    /* One use. */
    CHECK_EQ_INT(redeem(code, "10.0.0.1", NOW + 20), -RE_ECONFLICT);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&res.cert);
    teardown();
}

static void test_redeem_expiry_leeway(void)
{
    char c1[ENROLL_CODE_MAX], c2[ENROLL_CODE_MAX];
    setup();
    new_code(c1, "cluster", "store-a", 1);
    new_code(c2, "cluster", "store-a", 1);
    CHECK_EQ_INT(redeem(c1, "a", NOW + 1 + ENROLL_LEEWAY_S - 1), 0);
    CHECK_EQ_INT(redeem(c2, "a", NOW + 1 + ENROLL_LEEWAY_S), -RE_EEXPIRED);
    /* An expired code is not a failed guess. */
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM enroll_failures"), 0);
    teardown();
}

static void test_redeem_wrong_secret_locks(void)
{
    char code[ENROLL_CODE_MAX], wrong[ENROLL_CODE_MAX];
    setup();
    new_code(code, "cluster", "store-a", 3600);
    memcpy(wrong, code, sizeof(wrong));
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'Z' ? 'Y' : 'Z';
    for (int i = 1; i < ENROLL_MAX_FAILS_PER_CODE; i++)
        CHECK_EQ_INT(redeem(wrong, "10.0.0.2", NOW + i), -RE_EUNAUTH);
    CHECK_EQ_INT(redeem(wrong, "10.0.0.3", NOW + 10), -RE_ELOCKED);
    /* Locked even for the right secret: ask for a new code. */
    CHECK_EQ_INT(redeem(code, "10.0.0.4", NOW + 11), -RE_ELOCKED);
    CHECK_EQ_INT(query_int("SELECT failed_attempts FROM enroll_codes"), ENROLL_MAX_FAILS_PER_CODE);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM audit WHERE action = 'enroll-failed'"),
                 ENROLL_MAX_FAILS_PER_CODE + 1);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM clusters WHERE cert_serial IS NOT NULL"), 0);
    /* A new code for the store works. */
    new_code(code, "cluster", "store-a", 3600);
    CHECK_EQ_INT(redeem(code, "10.0.0.4", NOW + 12), 0);
    teardown();
}

static void test_redeem_unknown_and_malformed(void)
{
    char code[ENROLL_CODE_MAX];
    setup();
    new_code(code, "cluster", "store-a", 3600);
    code[0] = code[0] == 'Z' ? 'Y' : 'Z';          /* another id */
    CHECK_EQ_INT(redeem(code, "a", NOW), -RE_EUNAUTH);
    CHECK_EQ_INT(redeem("hello", "a", NOW), -RE_EUNAUTH);
    CHECK_EQ_INT(redeem("", "a", NOW), -RE_EUNAUTH);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM enroll_failures WHERE addr = 'a'"), 3);
    teardown();
}

static void test_redeem_rate_limit_per_address(void)
{
    struct enroll_result res;
    struct re_buf key, csr;
    char code[ENROLL_CODE_MAX];
    setup();
    new_code(code, "cluster", "store-a", 3600);
    for (int i = 0; i < ENROLL_MAX_FAILS_PER_ADDR; i++)
        CHECK_EQ_INT(redeem("ZZZZZZ.ZZZZ-ZZZZ-ZZZZ-ZZZZ", "10.9.9.9", NOW + i), -RE_EUNAUTH);
    make_csr(&key, &csr);
    result_init(&res);
    /* Even the right code is refused from that address for a while. */
    CHECK_EQ_INT(redeem_at(&res, code, &csr, "10.9.9.9", NOW + 100), -RE_EAGAIN);
    CHECK_EQ_INT(res.retry_after, ENROLL_FAIL_WINDOW_S - 100);
    CHECK_EQ_INT(redeem_at(&res, code, &csr, "10.9.9.9", NOW + ENROLL_FAIL_WINDOW_S), 0);
    /* Other addresses never were. */
    new_code(code, "cluster", "store-b", 3600);
    CHECK_EQ_INT(redeem(code, "10.9.9.8", NOW + 101), 0);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&res.cert);
    teardown();
}

/* When the rate limiter cannot read its table, nothing is issued and the
 * code stays usable (fail closed, not open). */
static void test_redeem_rate_limit_fails_closed(void)
{
    char code[ENROLL_CODE_MAX];
    setup();
    new_code(code, "cluster", "store-a", 3600);
    CHECK_EQ_INT(db_exec(db, "ALTER TABLE enroll_failures RENAME TO enroll_failures_gone"), 0);
    CHECK(redeem(code, "10.1.1.1", NOW) < 0);
    CHECK_EQ_INT(query_int("SELECT used_at IS NULL FROM enroll_codes"), 1);
    CHECK_EQ_INT(query_int("SELECT cert_serial IS NULL FROM clusters WHERE name = 'store-a'"), 1);
    CHECK_EQ_INT(db_exec(db, "ALTER TABLE enroll_failures_gone RENAME TO enroll_failures"), 0);
    CHECK_EQ_INT(redeem(code, "10.1.1.1", NOW), 0);
    teardown();
}

static void flip_last_byte(struct re_buf *out, const char *csr_pem)
{
    mbedtls_pem_context pem;
    size_t used = 0, olen = 0;
    unsigned char der[4096], text[8192];
    mbedtls_pem_init(&pem);
    CHECK_EQ_INT(mbedtls_pem_read_buffer(&pem, CSR_HDR, CSR_FTR, (const unsigned char *)csr_pem,
                                         NULL, 0, &used), 0);
    CHECK(pem.buflen <= sizeof(der));
    memcpy(der, pem.buf, pem.buflen);
    der[pem.buflen - 1] ^= 1;
    CHECK_EQ_INT(mbedtls_pem_write_buffer(CSR_HDR "\n", CSR_FTR "\n", der, pem.buflen, text,
                                          sizeof(text), &olen), 0);
    re_buf_init(out, 64 * 1024);
    CHECK_EQ_INT(re_buf_append_str(out, (const char *)text), 0);
    mbedtls_pem_free(&pem);
}

static void test_redeem_bad_csr_keeps_code(void)
{
    struct re_buf key, csr, bad, huge;
    struct enroll_result res;
    char code[ENROLL_CODE_MAX];
    setup();
    new_code(code, "cluster", "store-a", 3600);
    make_csr(&key, &csr);
    result_init(&res);
    flip_last_byte(&bad, csr.ptr);
    CHECK_EQ_INT(redeem_at(&res, code, &bad, "a", NOW), -RE_EBADSIG);
    re_buf_reset(&bad);
    re_buf_append_str(&bad, "-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n"
                      "-----END CERTIFICATE REQUEST-----\n");
    CHECK_EQ_INT(redeem_at(&res, code, &bad, "a", NOW), -RE_EPARSE);
    re_buf_reset(&bad);
    CHECK_EQ_INT(redeem_at(&res, code, &bad, "a", NOW), -RE_EPARSE);
    re_buf_init(&huge, 64 * 1024);
    while (huge.len <= ENROLL_CSR_MAX)
        re_buf_append_str(&huge, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    CHECK_EQ_INT(redeem_at(&res, code, &huge, "a", NOW), -RE_ETOOBIG);
    /* None of that spent the code or counted as a wrong secret. */
    CHECK_EQ_INT(query_int("SELECT failed_attempts FROM enroll_codes"), 0);
    CHECK_EQ_INT(redeem_at(&res, code, &csr, "a", NOW), 0);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&bad);
    re_buf_release(&huge);
    re_buf_release(&res.cert);
    teardown();
}

static void test_redeem_code_for_another_store(void)
{
    struct re_buf key, csr;
    struct enroll_result res;
    char code[ENROLL_CODE_MAX];
    setup();
    new_code(code, "cluster", "store-a", 3600);
    make_csr(&key, &csr);
    result_init(&res);
    CHECK_EQ_INT(enroll_redeem(&res, db, &ca, &pol, re_str_c(code), re_buf_str(&csr), "cluster",
                               "store-b", "a", NOW), -RE_EDENIED);
    CHECK_EQ_INT(enroll_redeem(&res, db, &ca, &pol, re_str_c(code), re_buf_str(&csr), "user",
                               NULL, "a", NOW), -RE_EDENIED);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM clusters WHERE cert_serial IS NOT NULL"), 0);
    CHECK_EQ_INT(enroll_redeem(&res, db, &ca, &pol, re_str_c(code), re_buf_str(&csr), "cluster",
                               "store-a", "a", NOW), 0);
    CHECK_EQ_STR(res.name, "store-a");
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&res.cert);
    teardown();
}

static void test_redeem_concurrent_one_wins(void)
{
    enum { N = 6 };
    char code[ENROLL_CODE_MAX], path[600];
    pid_t pids[N];
    int wins = 0, used = 0;
    setup();
    new_code(code, "cluster", "store-a", 3600);
    snprintf(path, sizeof(path), "%s/" HUB_DB_FILE, dir);
    db_close(db);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            int r;
            if (db_open(&db, path) < 0)
                _exit(3);
            r = redeem(code, "a", NOW);
            db_close(db);
            _exit(r == 0 ? 0 : r == -RE_ECONFLICT ? 1 : 2);
        }
    }
    for (int i = 0; i < N; i++) {
        int st = 0;
        CHECK(waitpid(pids[i], &st, 0) == pids[i]);
        CHECK(WIFEXITED(st));
        if (WEXITSTATUS(st) == 0)
            wins++;
        else if (WEXITSTATUS(st) == 1)
            used++;
    }
    CHECK_EQ_INT(wins, 1);
    CHECK_EQ_INT(used, N - 1);
    CHECK_EQ_INT(db_open(&db, path), 0);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM issued_certs"), 1);
    teardown();
}

/* ---- lifecycle ---------------------------------------------------------- */

static void enroll_store(struct enroll_result *res, const char *name)
{
    struct re_buf key, csr;
    char code[ENROLL_CODE_MAX];
    new_code(code, "cluster", name, 3600);
    make_csr(&key, &csr);
    result_init(res);
    CHECK_EQ_INT(redeem_at(res, code, &csr, "a", NOW), 0);
    re_buf_release(&key);
    re_buf_release(&csr);
}

static void test_renew(void)
{
    struct enroll_result first, second, third;
    struct re_buf key, csr;
    char *s;
    setup();
    enroll_store(&first, "store-a");
    make_csr(&key, &csr);
    result_init(&second);
    CHECK_EQ_INT(enroll_renew_identity(&second, db, &ca, &pol, "cluster", "store-a", first.serial,
                              re_buf_str(&csr), "a", NOW + 100), 0);
    CHECK(strcmp(second.serial, first.serial) != 0);
    CHECK_EQ_STR(second.identity, "spiffe://resedge/cluster/store-a");
    CHECK_EQ_INT(re_cert_matches_key(second.cert.ptr, key.ptr), 0);
    s = query_text("SELECT cert_serial FROM clusters WHERE name = 'store-a'");
    CHECK_EQ_STR(s, second.serial);
    free(s);
    /* The replaced certificate cannot renew again. */
    result_init(&third);
    CHECK_EQ_INT(enroll_renew_identity(&third, db, &ca, &pol, "cluster", "store-a", first.serial,
                              re_buf_str(&csr), "a", NOW + 200), -RE_EDENIED);
    /* Another store's name with this serial neither. */
    CHECK_EQ_INT(enroll_renew_identity(&third, db, &ca, &pol, "cluster", "store-b", second.serial,
                              re_buf_str(&csr), "a", NOW + 200), -RE_EDENIED);
    /* Nor a revoked identity. */
    CHECK_EQ_INT(enroll_revoke(db, "cluster", "store-a", "user/admin", NOW + 300), 0);
    CHECK_EQ_INT(enroll_renew_identity(&third, db, &ca, &pol, "cluster", "store-a", second.serial,
                              re_buf_str(&csr), "a", NOW + 400), -RE_EDENIED);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM audit WHERE action = 'renew'"), 1);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&first.cert);
    re_buf_release(&second.cert);
    re_buf_release(&third.cert);
    teardown();
}

static void test_revoke_and_reenroll(void)
{
    struct enroll_result first, second;
    char pending[ENROLL_CODE_MAX], *s;
    setup();
    enroll_store(&first, "store-a");
    new_code(pending, "cluster", "store-a", 3600);
    CHECK_EQ_INT(enroll_revoke(db, "cluster", "store-a", "user/admin", NOW + 10), 0);
    CHECK_EQ_INT(query_int("SELECT revoked FROM clusters WHERE name = 'store-a'"), 1);
    CHECK_EQ_INT(query_int("SELECT cert_serial IS NULL FROM clusters WHERE name = 'store-a'"), 1);
    CHECK_EQ_INT(query_int("SELECT revoked FROM issued_certs"), 1);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM audit WHERE action = 'revoke' AND "
                           "actor = 'user/admin' AND name = 'store-a'"), 1);
    /* A code made before the revocation is cancelled with it. */
    CHECK_EQ_INT(redeem(pending, "a", NOW + 20), -RE_EEXPIRED);
    CHECK_EQ_INT(enroll_revoke(db, "cluster", "store-zz", "user/admin", NOW), -RE_ENOENT);
    /* Replacement hardware: one new code re-enables the store. */
    enroll_store(&second, "store-a");
    CHECK_EQ_INT(query_int("SELECT revoked FROM clusters WHERE name = 'store-a'"), 0);
    s = query_text("SELECT cert_serial FROM clusters WHERE name = 'store-a'");
    CHECK_EQ_STR(s, second.serial);
    free(s);
    re_buf_release(&first.cert);
    re_buf_release(&second.cert);
    teardown();
}

static void test_new_code_replaces_old_cert(void)
{
    struct enroll_result first, second;
    char *s;
    setup();
    enroll_store(&first, "store-a");
    enroll_store(&second, "store-a");
    s = query_text("SELECT cert_serial FROM clusters WHERE name = 'store-a'");
    CHECK_EQ_STR(s, second.serial);
    free(s);
    re_buf_release(&first.cert);
    re_buf_release(&second.cert);
    teardown();
}

static void test_user_add_and_enroll(void)
{
    struct re_buf key, csr;
    struct enroll_result res;
    char code[ENROLL_CODE_MAX], code2[ENROLL_CODE_MAX], *s;
    int64_t exp;
    setup();
    CHECK_EQ_INT(enroll_user_add(code, sizeof(code), &exp, db, &ca, "alice", "operator", 3600,
                                 "user/admin", NOW), 0);
    CHECK_EQ_INT(exp, NOW + 3600);
    CHECK_EQ_INT(query_int("SELECT cert_serial IS NULL FROM users WHERE name = 'alice'"), 1);
    CHECK_EQ_INT(enroll_user_add(code2, sizeof(code2), &exp, db, &ca, "alice", "admin", 3600,
                                 "user/admin", NOW), -RE_EEXIST);
    CHECK_EQ_INT(enroll_user_add(code2, sizeof(code2), &exp, db, &ca, "bob", "root", 3600,
                                 "user/admin", NOW), -RE_EINVAL);
    CHECK_EQ_INT(enroll_user_add(code2, sizeof(code2), &exp, db, &ca, "../bob", "admin", 3600,
                                 "user/admin", NOW), -RE_EINVAL);
    CHECK_EQ_INT(query_int("SELECT COUNT(*) FROM users WHERE name IN ('bob', '../bob')"), 0);
    make_csr(&key, &csr);
    result_init(&res);
    CHECK_EQ_INT(redeem_at(&res, code, &csr, "a", NOW), 0);
    CHECK_EQ_STR(res.identity, "spiffe://resedge/user/alice");
    s = query_text("SELECT cert_serial FROM users WHERE name = 'alice'");
    CHECK_EQ_STR(s, res.serial);
    free(s);
    s = query_text("SELECT role FROM users WHERE name = 'alice'");
    CHECK_EQ_STR(s, "operator");
    free(s);
    CHECK_EQ_INT(enroll_revoke(db, "user", "alice", "user/admin", NOW), 0);
    CHECK_EQ_INT(query_int("SELECT revoked FROM users WHERE name = 'alice'"), 1);
    re_buf_release(&key);
    re_buf_release(&csr);
    re_buf_release(&res.cert);
    teardown();
}

static void test_ca_load(void)
{
    struct enroll_ca c2;
    struct re_cert_info info;
    setup();
    CHECK(strncmp(ca.fingerprint, "sha256:", 7) == 0);
    CHECK_EQ_INT(strlen(ca.fingerprint), 7 + 64);
    CHECK_EQ_INT(re_cert_parse(&info, ca.crt_pem, strlen(ca.crt_pem), false), 0);
    CHECK_EQ_STR(info.fingerprint, ca.fingerprint);
    /* The code key is stable across loads (restarts). */
    CHECK_EQ_INT(enroll_ca_load(&c2, dir), 0);
    CHECK(memcmp(c2.code_key, ca.code_key, 32) == 0);
    enroll_ca_release(&c2);
    enroll_ca_release(NULL);
    CHECK(enroll_ca_load(&c2, test_tmpdir()) < 0);
    teardown();
}

TEST_MAIN(T(test_code_format_parse), T(test_code_randomness), T(test_code_hash),
          T(test_code_create_errors), T(test_ca_load),
          T(test_redeem_issues_identity_from_records), T(test_redeem_expiry_leeway),
          T(test_redeem_wrong_secret_locks), T(test_redeem_unknown_and_malformed),
          T(test_redeem_rate_limit_per_address), T(test_redeem_rate_limit_fails_closed),
          T(test_redeem_bad_csr_keeps_code),
          T(test_redeem_code_for_another_store), T(test_redeem_concurrent_one_wins),
          T(test_renew), T(test_revoke_and_reenroll), T(test_new_code_replaces_old_cert),
          T(test_user_add_and_enroll))
