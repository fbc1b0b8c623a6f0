/* test_tls.c - tls_conn server and client talking in memory: mutual TLS,
 * peer identity, session tickets, ticket keys surviving a reload. Certificates
 * come from the openssl command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "clock.h"
#include "error.h"
#include "testlib.h"
#include "tls.h"

static char dir[300];
static char path_buf[16][400];
static int path_n;

static const char *P(const char *name)
{
    char *p = path_buf[path_n++ % 16];
    snprintf(p, 400, "%s/%s", dir, name);
    return p;
}

static void sh(const char *cmd)
{
    char full[4096];
    snprintf(full, sizeof(full), "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
    if (system(full) != 0) {
        fprintf(stderr, "command failed: %s\n", cmd);
        exit(1);
    }
}

static void make_ca(const char *n)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl ecparam -name prime256v1 -genkey -noout -out %s.key && "
             "openssl req -new -key %s.key -subj /CN=%s -out %s.csr && "
             "openssl x509 -req -in %s.csr -signkey %s.key -days 30 -extfile ca.ext -out %s.crt",
             n, n, n, n, n, n, n);
    sh(cmd);
}

static void make_leaf(const char *n, const char *cn, const char *ca, const char *ext)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl ecparam -name prime256v1 -genkey -noout -out %s.key && "
             "openssl req -new -key %s.key -subj /CN=%s -out %s.csr && "
             "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial "
             "-days 30 -extfile %s -out %s.crt",
             n, n, cn, n, n, ca, ca, ext, n);
    sh(cmd);
}

/* ca.crt/key, server.crt/key (localhost), client.crt/key (URI SAN), and
 * other-ca + other.crt/key from an unrelated CA. */
static void make_certs(void)
{
    snprintf(dir, sizeof(dir), "%s", test_tmpdir());
    sh("printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' > ca.ext;"
       "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > srv.ext;"
       "printf 'subjectAltName=URI:spiffe://resedge/user/admin\\nextendedKeyUsage=clientAuth\\n' > cli.ext");
    make_ca("ca");
    make_ca("otherca");
    make_leaf("server", "localhost", "ca", "srv.ext");
    make_leaf("client", "admin", "ca", "cli.ext");
    make_leaf("other", "mallory", "otherca", "cli.ext");
}

static struct tls_config *server_cfg(const char *ticket_file, unsigned rotate)
{
    struct tls_config *cfg = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    struct tls_server_options o = {
        .ca_file = P("ca.crt"),
        .cert_file = P("server.crt"),
        .key_file = P("server.key"),
        .ticket_key_file = ticket_file,
        .ticket_rotate_s = rotate,
    };
    int r = tls_config_new_server(&cfg, &o, &err);
    if (r < 0)
        fprintf(stderr, "server config: %s\n", err.ptr ? err.ptr : "?");
    CHECK_EQ_INT(r, 0);
    re_buf_release(&err);
    return cfg;
}

static struct tls_config *client_cfg(const char *name)
{
    struct tls_config *cfg = NULL;
    char crt[64], key[64];
    snprintf(crt, sizeof(crt), "%s.crt", name ? name : "");
    snprintf(key, sizeof(key), "%s.key", name ? name : "");
    struct tls_client_options o = {
        .ca_file = P("ca.crt"),
        .cert_file = name ? P(crt) : NULL,
        .key_file = name ? P(key) : NULL,
    };
    CHECK_EQ_INT(tls_config_new_client(&cfg, &o, NULL), 0);
    return cfg;
}

/* Moves ciphertext between the two ends. */
static void pump(struct tls_conn *from, struct tls_conn *to)
{
    size_t len;
    char *out = tls_conn_take_output(from, &len);
    if (out) {
        CHECK_EQ_INT(tls_conn_feed(to, out, len), 0);
        free(out);
    }
}

/* Runs both handshakes to completion; returns the server's result. */
static int handshake(struct tls_conn *srv, struct tls_conn *cli)
{
    int rs = -RE_EAGAIN, rc = -RE_EAGAIN;
    for (int i = 0; i < 50 && (rs == -RE_EAGAIN || rc == -RE_EAGAIN); i++) {
        if (rc == -RE_EAGAIN)
            rc = tls_conn_handshake(cli);
        pump(cli, srv);
        if (rs == -RE_EAGAIN)
            rs = tls_conn_handshake(srv);
        pump(srv, cli);
    }
    if (rs == 0)
        CHECK_EQ_INT(rc, 0);
    return rs;
}

static void connect_pair(struct tls_config *scfg, struct tls_config *ccfg,
                         const struct tls_session *sess, struct tls_conn **srv,
                         struct tls_conn **cli)
{
    CHECK_EQ_INT(tls_conn_new_server(srv, scfg), 0);
    CHECK_EQ_INT(tls_conn_new_client(cli, ccfg, "localhost", sess), 0);
    CHECK_EQ_INT(handshake(*srv, *cli), 0);
}

static void test_mutual_handshake(void)
{
    make_certs();
    struct tls_config *scfg = server_cfg(NULL, 0), *ccfg = client_cfg("client");
    struct tls_conn *srv, *cli;
    connect_pair(scfg, ccfg, NULL, &srv, &cli);

    const struct tls_peer_info *pi = tls_conn_peer(srv);
    CHECK(pi->cert_present);
    CHECK(pi->verified);
    CHECK(!pi->resumed);
    CHECK(tls_conn_authenticated(srv));
    CHECK_EQ_STR(pi->subject_cn, "admin");
    CHECK_EQ_STR(pi->uri_san, "spiffe://resedge/user/admin");
    CHECK_EQ_STR(pi->version, "TLSv1.2");
    CHECK(strstr(pi->cipher, "ECDHE") != NULL);
    CHECK(strstr(pi->cipher, "GCM") || strstr(pi->cipher, "CHACHA"));

    /* serial as the openssl CLI prints it, without leading zero bytes (not
     * nibbles: a serial starting 0x0b is "0b...", as the hub records it) */
    char cmd[600], serial[128] = "";
    snprintf(cmd, sizeof(cmd), "openssl x509 -in '%s' -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^\\(00\\)*//'",
             P("client.crt"));
    FILE *f = popen(cmd, "r");
    CHECK(f && fgets(serial, sizeof(serial), f));
    pclose(f);
    serial[strcspn(serial, "\n")] = '\0';
    CHECK_EQ_STR(pi->serial, serial);

    /* data both ways */
    char buf[64];
    CHECK_EQ_INT(tls_conn_write(cli, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    pump(cli, srv);
    ssize_t n = tls_conn_read(srv, buf, sizeof(buf));
    CHECK_EQ_INT(n, 18);
    CHECK(memcmp(buf, "GET / HTTP/1.1\r\n\r\n", 18) == 0);
    CHECK_EQ_INT(tls_conn_read(srv, buf, sizeof(buf)), -RE_EAGAIN);
    CHECK_EQ_INT(tls_conn_write(srv, "pong", 4), 0);
    pump(srv, cli);
    CHECK_EQ_INT(tls_conn_read(cli, buf, sizeof(buf)), 4);

    /* a large write spans records */
    size_t big = 100000;
    char *data = malloc(big), *back = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7);
    CHECK_EQ_INT(tls_conn_write(srv, data, big), 0);
    pump(srv, cli);
    size_t got = 0;
    while (got < big) {
        n = tls_conn_read(cli, back + got, big - got);
        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK(memcmp(data, back, big) == 0);
    free(data);
    free(back);

    /* close_notify reads as end of stream */
    CHECK_EQ_INT(tls_conn_close_notify(cli), 0);
    pump(cli, srv);
    CHECK_EQ_INT(tls_conn_read(srv, buf, sizeof(buf)), 0);

    tls_conn_free(srv);
    tls_conn_free(cli);
    tls_config_free(scfg);
    tls_config_free(ccfg);
}

static void test_no_client_cert(void)
{
    make_certs();
    struct tls_config *scfg = server_cfg(NULL, 0), *ccfg = client_cfg(NULL);
    struct tls_conn *srv, *cli;
    connect_pair(scfg, ccfg, NULL, &srv, &cli);
    CHECK(!tls_conn_peer(srv)->cert_present);
    CHECK(!tls_conn_authenticated(srv));
    tls_conn_free(srv);
    tls_conn_free(cli);
    tls_config_free(scfg);
    tls_config_free(ccfg);
}

static void test_other_ca_not_authenticated(void)
{
    make_certs();
    struct tls_config *scfg = server_cfg(NULL, 0), *ccfg = client_cfg("other");
    struct tls_conn *srv, *cli;
    connect_pair(scfg, ccfg, NULL, &srv, &cli);
    const struct tls_peer_info *pi = tls_conn_peer(srv);
    CHECK(pi->cert_present);
    CHECK(!pi->verified);
    CHECK(!tls_conn_authenticated(srv));
    CHECK(pi->verify_error[0] != '\0');
    tls_conn_free(srv);
    tls_conn_free(cli);
    tls_config_free(scfg);
    tls_config_free(ccfg);
}

static void test_garbage_fails(void)
{
    make_certs();
    struct tls_config *scfg = server_cfg(NULL, 0);
    struct tls_conn *srv;
    CHECK_EQ_INT(tls_conn_new_server(&srv, scfg), 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ_INT(tls_conn_feed(srv, junk, sizeof(junk) - 1), 0);
    CHECK_EQ_INT(tls_conn_handshake(srv), -RE_ETLS);
    CHECK_EQ_INT(tls_conn_handshake(srv), -RE_ETLS);
    tls_conn_free(srv);
    tls_config_free(scfg);
}

static void test_bad_files(void)
{
    make_certs();
    struct tls_config *cfg = NULL;
    struct re_buf err;
    re_buf_init(&err, 1024);
    struct tls_server_options o = {
        .ca_file = P("ca.crt"), .cert_file = P("missing.crt"), .key_file = P("server.key"),
    };
    CHECK(tls_config_new_server(&cfg, &o, &err) < 0);
    CHECK(err.ptr && strstr(err.ptr, "missing.crt"));
    o.cert_file = P("server.crt");
    o.key_file = P("client.key");            /* does not match */
    CHECK_EQ_INT(tls_config_new_server(&cfg, &o, &err), -RE_EINVAL);
    CHECK(cfg == NULL);
    re_buf_release(&err);
}

/* Full handshake, then resumption with the saved session; returns whether
 * the second connection resumed (checked on both ends). */
static bool resumes(struct tls_config *first, struct tls_config *second, struct tls_config *ccfg,
                    struct tls_session **keep)
{
    struct tls_conn *srv, *cli;
    struct tls_session *sess = *keep;
    if (!sess) {
        connect_pair(first, ccfg, NULL, &srv, &cli);
        CHECK(!tls_conn_peer(srv)->resumed);
        CHECK_EQ_INT(tls_conn_get_session(&sess, cli), 0);
        tls_conn_free(srv);
        tls_conn_free(cli);
        *keep = sess;
    }
    connect_pair(second, ccfg, sess, &srv, &cli);
    bool r = tls_conn_peer(srv)->resumed;
    CHECK_EQ_INT(tls_conn_peer(cli)->resumed, r);
    /* the identity is carried by the ticket */
    CHECK(tls_conn_authenticated(srv));
    CHECK_EQ_STR(tls_conn_peer(srv)->uri_san, "spiffe://resedge/user/admin");
    tls_conn_free(srv);
    tls_conn_free(cli);
    return r;
}

static void test_ticket_resumption(void)
{
    make_certs();
    struct tls_config *scfg = server_cfg(NULL, 0), *ccfg = client_cfg("client");
    struct tls_session *s = NULL;
    CHECK(resumes(scfg, scfg, ccfg, &s));
    CHECK(resumes(scfg, scfg, ccfg, &s));          /* and again */
    tls_session_free(s);

    /* a server with other keys (no file) cannot open the ticket: full handshake */
    struct tls_config *other = server_cfg(NULL, 0);
    s = NULL;
    CHECK(!resumes(scfg, other, ccfg, &s));
    tls_session_free(s);
    tls_config_free(other);
    tls_config_free(scfg);
    tls_config_free(ccfg);
}

static void test_ticket_keys_survive_reload(void)
{
    make_certs();
    const char *kf = P("ticket.keys");
    struct tls_config *a = server_cfg(kf, 3600), *ccfg = client_cfg("client");
    struct stat st;
    CHECK_EQ_INT(stat(kf, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);
    struct tls_session *s = NULL;
    CHECK(resumes(a, a, ccfg, &s));
    tls_config_free(a);

    struct tls_config *b = server_cfg(kf, 3600);    /* the "restarted" server */
    CHECK(resumes(NULL, b, ccfg, &s));
    tls_session_free(s);
    tls_config_free(b);
    tls_config_free(ccfg);
}

static void test_ticket_rotation(void)
{
    make_certs();
    const char *kf = P("ticket.keys");
    struct tls_config *a = server_cfg(kf, 3600), *ccfg = client_cfg("client");
    struct tls_session *s = NULL;
    CHECK_EQ_INT(tls_config_ticket_keys(a), 1);
    CHECK(resumes(a, a, ccfg, &s));
    CHECK_EQ_INT(tls_config_rotate_tickets(a, false), 0);   /* not due yet */
    CHECK(resumes(NULL, a, ccfg, &s));
    /* one rotation: the previous key still opens the ticket */
    CHECK_EQ_INT(tls_config_rotate_tickets(a, true), 0);
    CHECK_EQ_INT(tls_config_ticket_keys(a), 2);
    CHECK(resumes(NULL, a, ccfg, &s));
    /* rotation survives a reload too: both keys are in the file */
    struct tls_config *b = server_cfg(kf, 3600);
    CHECK_EQ_INT(tls_config_ticket_keys(b), 2);
    CHECK(resumes(NULL, b, ccfg, &s));
    tls_config_free(b);
    /* two rotations: the key is gone */
    CHECK_EQ_INT(tls_config_rotate_tickets(a, true), 0);
    CHECK(!resumes(NULL, a, ccfg, &s));
    tls_session_free(s);
    tls_config_free(a);
    tls_config_free(ccfg);
}

static void test_ticket_expiry(void)
{
    make_certs();
    struct tls_config *a = server_cfg(NULL, 600), *ccfg = client_cfg("client");
    struct tls_session *s = NULL;
    int64_t now = re_time();
    re_clock_stub(now, 0);
    CHECK(resumes(a, a, ccfg, &s));
    re_clock_stub(now + 599, 0);
    CHECK(resumes(NULL, a, ccfg, &s));
    re_clock_stub(now + 601, 0);
    CHECK(!resumes(NULL, a, ccfg, &s));
    re_clock_stub(-1, 0);
    tls_session_free(s);
    tls_config_free(a);
    tls_config_free(ccfg);
}

static void test_damaged_key_file(void)
{
    make_certs();
    const char *kf = P("ticket.keys");
    FILE *f = fopen(kf, "w");
    CHECK(f);
    fputs("zz 1 notahexkey\n", f);
    fclose(f);
    struct tls_config *a = server_cfg(kf, 3600);    /* starts over with fresh keys */
    CHECK_EQ_INT(tls_config_ticket_keys(a), 1);
    tls_config_free(a);
    a = server_cfg(kf, 3600);
    CHECK_EQ_INT(tls_config_ticket_keys(a), 1);
    tls_config_free(a);
    /* a good line, then damage: the key already set up is released (ASan) */
    f = fopen(kf, "w");
    CHECK(f);
    fputs("0000abcd 1 000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n"
          "0000abce x y\n", f);
    fclose(f);
    a = server_cfg(kf, 3600);
    CHECK_EQ_INT(tls_config_ticket_keys(a), 1);
    tls_config_free(a);
}

TEST_MAIN(T(test_mutual_handshake), T(test_no_client_cert), T(test_other_ca_not_authenticated),
          T(test_garbage_fails), T(test_bad_files), T(test_ticket_resumption),
          T(test_ticket_keys_survive_reload), T(test_ticket_rotation), T(test_ticket_expiry),
          T(test_damaged_key_file))
