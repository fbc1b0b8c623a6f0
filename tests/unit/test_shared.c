/* test_shared.c - unit tests for the small shared modules: error, buf, json,
 * conf, fsutil, clock, notify. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "buf.h"
#include "cgi.h"
#include "clock.h"
#include "conf.h"
#include "error.h"
#include "fsutil.h"
#include "json.h"
#include "notify.h"
#include "oid.h"
#include "testlib.h"

static void error_tables(void)
{
    CHECK_EQ_STR(re_strerror(-RE_ENOENT), "not found");
    CHECK_EQ_STR(re_errcode(-RE_ESTALE), "precondition_failed");
    CHECK_EQ_STR(re_errcode(RE_ETOOBIG), "too_large");
    CHECK_EQ_STR(re_strerror(-9999), "unknown error");
    CHECK_EQ_INT(re_from_errno(ENOSPC), -RE_ENOSPC);
    CHECK_EQ_INT(re_err_status(-RE_ENOENT), 404);
    CHECK_EQ_INT(re_err_status(-RE_ENOSPC), 507);
    CHECK_EQ_INT(re_err_status(-RE_EBUSY), 503);
    CHECK_EQ_INT(re_err_status(-RE_EDB), 500);
}

static void cgi_heads(void)
{
    struct re_cgi_head h;
    const char ok[] = "Status: 404 Not Found\r\nContent-Type: text/plain\r\n"
                      "Cache-Control: no-cache\r\n\r\nbody";
    CHECK_EQ_INT(re_cgi_parse_head(&h, ok, strlen(ok), 4096), 0);
    CHECK_EQ_INT(h.status, 404);
    CHECK(re_str_eq_c(h.content_type, "text/plain"));
    CHECK(re_str_eq_c(h.cache_control, "no-cache"));
    CHECK_EQ_INT((int)h.head_len, (int)(strlen(ok) - 4));
    const char lf[] = "Content-Type: application/x-git-upload-pack-result\n\nPACK";
    CHECK_EQ_INT(re_cgi_parse_head(&h, lf, strlen(lf), 4096), 0);
    CHECK_EQ_INT(h.status, 200);                              /* no Status: 200 */
    CHECK_EQ_INT(re_cgi_parse_head(&h, "Content-Type: a\r\n", 17, 4096), -RE_EAGAIN);
    CHECK_EQ_INT(re_cgi_parse_head(&h, "Content-Type: a\r\n", 17, 8), -RE_ETOOBIG);
    CHECK_EQ_INT(re_cgi_parse_head(&h, "no colon\r\n\r\n", 14, 4096), -RE_EPARSE);
    CHECK_EQ_INT(re_cgi_parse_head(&h, ": empty\r\n\r\n", 13, 4096), -RE_EPARSE);
    CHECK_EQ_INT(re_cgi_parse_head(&h, "Status: 99\r\n\r\n", 15, 4096), -RE_EPARSE);
    CHECK_EQ_INT(re_cgi_parse_head(&h, "Status: 1000\r\n\r\n", 17, 4096), -RE_EPARSE);
    CHECK_EQ_INT(re_cgi_parse_head(&h, "X: a\x01b\r\n\r\n", 12, 4096), -RE_EPARSE);
}

static void oid_checks(void)
{
    const char *ok = "0123456789abcdef0123456789abcdef01234567";
    char s[64];
    CHECK(re_oid_is(ok));
    CHECK(re_oid_prefix_is(ok));
    snprintf(s, sizeof(s), "%s\n", ok);
    CHECK(!re_oid_is(s));                   /* the length is checked */
    CHECK(re_oid_prefix_is(s));
    CHECK(!re_oid_is("0123456789abcdef0123456789abcdef0123456"));    /* 39 */
    CHECK(!re_oid_prefix_is("0123456789abcdef0123456789abcdef0123456"));
    CHECK(!re_oid_is("0123456789ABCDEF0123456789abcdef01234567"));   /* upper case */
    CHECK(!re_oid_is("0123456789abcdeg0123456789abcdef01234567"));
    CHECK(!re_oid_is(""));
    CHECK_EQ_INT(RE_OID_BUF, 41);
}

static void buf_bounded(void)
{
    struct re_buf b;
    re_buf_init(&b, 10);
    CHECK_EQ_INT(re_buf_append_str(&b, "hello"), 0);
    CHECK_EQ_INT(re_buf_printf(&b, "%d", 12345), 0);
    CHECK_EQ_STR(b.ptr, "hello12345");
    /* Past the maximum: an error, and the content is unchanged. */
    CHECK_EQ_INT(re_buf_append_str(&b, "x"), -RE_ETOOBIG);
    CHECK_EQ_INT(re_buf_printf(&b, "%s", "yy"), -RE_ETOOBIG);
    CHECK_EQ_STR(b.ptr, "hello12345");
    CHECK_EQ_INT(b.len, 10);
    re_buf_reset(&b);
    CHECK_EQ_INT(b.len, 0);
    char *s = (re_buf_append_str(&b, "abc"), re_buf_steal(&b));
    CHECK_EQ_STR(s, "abc");
    free(s);
    CHECK(b.ptr == NULL);
    re_buf_release(&b);
    re_buf_release(NULL);
}

static void str_helpers(void)
{
    unsigned long long v;
    struct re_str s = RE_STR_LIT("Content-Length");
    CHECK(re_str_caseeq_c(s, "content-length"));
    CHECK(!re_str_eq_c(s, "content-length"));
    CHECK(re_str_startswith_c(s, "Content"));
    CHECK_EQ_INT(re_str_to_u64(&v, re_str_c("1000"), 1000), 0);
    CHECK_EQ_INT(v, 1000);
    CHECK_EQ_INT(re_str_to_u64(&v, re_str_c("1001"), 1000), -RE_EINVAL);
    CHECK_EQ_INT(re_str_to_u64(&v, re_str_c("-1"), 1000), -RE_EINVAL);
    CHECK_EQ_INT(re_str_to_u64(&v, re_str_c(""), 1000), -RE_EINVAL);
    CHECK_EQ_INT(re_str_to_u64(&v, re_str_c("99999999999999999999999"), ~0ULL), -RE_EINVAL);
    char small[4];
    CHECK_EQ_INT(re_snprintf(small, sizeof(small), "%s", "abcd"), -RE_ETOOBIG);
    CHECK_EQ_INT(re_snprintf(small, sizeof(small), "%s", "abc"), 0);
}

static void json_depth_and_getters(void)
{
    cJSON *j = NULL;
    size_t pos = 0;
    const char *s;
    long long n;
    bool b;
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("{\"a\":[[1]],\"s\":\"[[[[\"}"), 3, &pos), 0);
    cJSON_Delete(j);
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("[[[[1]]]]"), 3, &pos), -RE_EDEPTH);
    CHECK_EQ_INT(pos, 3);
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("{\"a\": }"), 8, &pos), -RE_EPARSE);
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("{} x"), 8, &pos), -RE_EPARSE);
    CHECK_EQ_INT(pos, 3);
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("{\"s\":\"x\",\"n\":5,\"b\":true,\"z\":null,\"f\":1.5}"),
                               8, NULL), 0);
    CHECK_EQ_INT(re_json_get_string(&s, j, "s"), 0);
    CHECK_EQ_STR(s, "x");
    CHECK_EQ_INT(re_json_get_string(&s, j, "n"), -RE_EINVAL);
    CHECK_EQ_INT(re_json_get_string(&s, j, "z"), -RE_ENOENT);
    CHECK_EQ_INT(re_json_get_int(&n, j, "n"), 0);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(re_json_get_int(&n, j, "f"), -RE_EINVAL);
    CHECK_EQ_INT(re_json_get_bool(&b, j, "b"), 0);
    CHECK(b);
    static const char *const allowed[] = { "s", "n", "b", "z", NULL };
    CHECK_EQ_STR(re_json_unknown_key(j, allowed), "f");
    struct re_buf out;
    re_buf_init(&out, 8);
    CHECK_EQ_INT(re_json_print(&out, j), -RE_ETOOBIG);
    re_buf_release(&out);
    cJSON_Delete(j);
}

/* re_json_parse refuses what cJSON would silently change: a NUL byte, a
 * \u0000 escape (the C string ends there) and a repeated member name. */
static void json_strict(void)
{
    cJSON *j = NULL;
    struct re_json_error e;
    size_t pos = 0;
    static const char nul[] = "{\"name\":\"a\0b\"}";
    CHECK_EQ_INT(re_json_parse_err(&j, (struct re_str){ nul, sizeof(nul) - 1 }, 8, &e),
                 -RE_EPARSE);
    CHECK_EQ_INT(e.pos, 10);
    CHECK_EQ_STR(e.why, "NUL byte");
    static const char nul_out[] = "{\"a\":1}\0";
    CHECK_EQ_INT(re_json_parse(&j, (struct re_str){ nul_out, sizeof(nul_out) - 1 }, 8, &pos),
                 -RE_EPARSE);
    CHECK_EQ_INT(pos, 7);
    static const char nul_esc[] = "{\"a\":\"\\\0\"}";  /* backslash, NUL */
    CHECK_EQ_INT(re_json_parse(&j, (struct re_str){ nul_esc, sizeof(nul_esc) - 1 }, 8, &pos),
                 -RE_EPARSE);
    CHECK_EQ_INT(pos, 7);
    CHECK_EQ_INT(re_json_parse_err(&j, re_str_c("{\"name\":\"ab\\u0000cd\"}"), 8, &e), -RE_EPARSE);
    CHECK_EQ_INT(e.pos, 11);
    CHECK_EQ_STR(e.why, "\\u0000 in a string");
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("{\"x\\u0000\":1}"), 8, &pos), -RE_EPARSE);
    CHECK_EQ_INT(pos, 3);
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("[\"\\u00001\"]"), 8, &pos), -RE_EPARSE);
    /* An escaped backslash then "u0000" is text, not a NUL. */
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("{\"p\":\"C:\\\\u0000\"}"), 8, &pos), 0);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(j, "p")->valuestring, "C:\\u0000");
    cJSON_Delete(j);
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("[\"\\\\\\u0000\"]"), 8, &pos), -RE_EPARSE);
    CHECK_EQ_INT(pos, 4);                     /* "\\" then \u0000 */
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("[\"\\u0001\",\"\\u00e9\"]"), 8, &pos), 0);
    cJSON_Delete(j);

    /* Duplicate keys: top level, nested, in an array, at their second place. */
    CHECK_EQ_INT(re_json_parse_err(&j, re_str_c("{\"name\":\"a\",\"x\":1,\"name\":\"b\"}"), 8, &e),
                 -RE_EPARSE);
    CHECK_EQ_STR(e.why, "duplicate key");
    CHECK_EQ_STR(e.key, "name");
    CHECK_EQ_INT(e.pos, 18);
    CHECK_EQ_INT(re_json_parse_err(&j, re_str_c("{\"s\":\"name\",\"o\":{\"a\":[\"q\",{\"k\":1,\"k\":2}]}}"),
                                   8, &e), -RE_EPARSE);
    CHECK_EQ_STR(e.key, "k");
    CHECK_EQ_INT(e.pos, 33);
    CHECK_EQ_INT(re_json_parse_err(&j, re_str_c("[{\"a\":1},{\"b\":1,\"c\":{\"b\":1},\"b\":2}]"),
                                   8, &e), -RE_EPARSE);
    CHECK_EQ_STR(e.key, "b");
    CHECK_EQ_INT(e.pos, 28);
    /* Same name in different objects, and names that differ only in case: fine. */
    CHECK_EQ_INT(re_json_parse(&j, re_str_c("{\"a\":{\"a\":{\"a\":1}},\"A\":2,\"b\":{\"a\":3}}"), 8,
                               &pos), 0);
    cJSON_Delete(j);
    /* A key escaped differently is still the same key. */
    CHECK_EQ_INT(re_json_parse_err(&j, re_str_c("{\"ab\":1,\"a\\u0062\":2}"), 8, &e), -RE_EPARSE);
    CHECK_EQ_STR(e.key, "ab");
    CHECK_EQ_INT(e.pos, 8);

    /* Many members (the sorted path): none repeated, then one repeated. */
    struct re_buf big;
    re_buf_init(&big, 1024 * 1024);
    re_buf_append_str(&big, "{");
    for (int i = 0; i < 5000; i++)
        re_buf_printf(&big, "%s\"k%d\":{\"v\":%d}", i ? "," : "", (i * 7919) % 5000, i);
    re_buf_append_str(&big, "}");
    CHECK_EQ_INT(re_json_parse(&j, re_buf_str(&big), 8, &pos), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(j), 5000);
    cJSON_Delete(j);
    big.len--;                                 /* drop '}' */
    size_t at = big.len + 1;
    re_buf_append_str(&big, ",\"k4999\":0,\"k17\":1}");
    CHECK_EQ_INT(re_json_parse_err(&j, re_buf_str(&big), 8, &e), -RE_EPARSE);
    CHECK_EQ_STR(e.key, "k4999");              /* the first repeat in text order */
    CHECK_EQ_INT(e.pos, at);
    re_buf_release(&big);
}

static void conf_parse_and_validate(void)
{
    struct re_conf *c = NULL;
    struct re_buf err;
    static const struct re_conf_key known[] = {
        { "server", "listen", RE_CONF_STRING }, { "server", "timeout", RE_CONF_DURATION },
        { "server", "tls", RE_CONF_BOOL }, { "log", "level", RE_CONF_STRING },
        { "server", "max", RE_CONF_UINT }, { NULL, NULL, 0 },
    };
    re_buf_init(&err, 1024);
    const char *text = "# comment\n[server]\nlisten = 127.0.0.1:1\n  timeout=5m \n; c\n"
                       "tls = yes\nmax = 7\n[log]\nlevel = \"debug\"\n";
    CHECK_EQ_INT(re_conf_parse(&c, "t.conf", re_str_c(text), &err), 0);
    CHECK_EQ_STR(re_conf_get(c, "server", "listen"), "127.0.0.1:1");
    CHECK_EQ_STR(re_conf_get(c, "log", "level"), "debug");
    CHECK(re_conf_get(c, "log", "nope") == NULL);
    CHECK_EQ_INT(re_conf_validate(c, known, &err), 0);
    re_conf_free(c);

    c = NULL;
    CHECK_EQ_INT(re_conf_parse(&c, "t.conf", re_str_c("[server]\nlisten\n"), &err), -RE_EPARSE);
    CHECK(c == NULL);
    CHECK(strstr(err.ptr, "t.conf:2:") != NULL);
    re_buf_reset(&err);
    CHECK_EQ_INT(re_conf_parse(&c, "t.conf", re_str_c("[server\n"), &err), -RE_EPARSE);
    CHECK(strstr(err.ptr, "t.conf:1:") != NULL);
    re_buf_reset(&err);

    CHECK_EQ_INT(re_conf_parse(&c, "t.conf", re_str_c("\n[server]\nbogus = 1\n"), &err), 0);
    CHECK_EQ_INT(re_conf_validate(c, known, &err), -RE_EINVAL);
    CHECK(strstr(err.ptr, "t.conf:3: unknown key 'bogus'") != NULL);
    re_conf_free(c);
    re_buf_reset(&err);
    CHECK_EQ_INT(re_conf_parse(&c, "t.conf", re_str_c("[server]\ntimeout = soon\n"), &err), 0);
    CHECK_EQ_INT(re_conf_validate(c, known, &err), -RE_EINVAL);
    CHECK(strstr(err.ptr, "t.conf:2: bad value 'soon'") != NULL);
    re_conf_free(c);
    re_buf_release(&err);
}

static void conf_values(void)
{
    unsigned long long ms;
    int b;
    CHECK_EQ_INT(re_parse_duration_ms(&ms, "250ms"), 0);
    CHECK_EQ_INT(ms, 250);
    CHECK_EQ_INT(re_parse_duration_ms(&ms, "24h"), 0);
    CHECK_EQ_INT(ms, 86400000);
    CHECK_EQ_INT(re_parse_duration_ms(&ms, "7"), 0);
    CHECK_EQ_INT(ms, 7000);
    CHECK_EQ_INT(re_parse_duration_ms(&ms, "5 m"), -RE_EINVAL);
    CHECK_EQ_INT(re_parse_duration_ms(&ms, "m"), -RE_EINVAL);
    CHECK_EQ_INT(re_parse_bool(&b, "off"), 0);
    CHECK_EQ_INT(b, 0);
    CHECK_EQ_INT(re_parse_bool(&b, "maybe"), -RE_EINVAL);
}

static void fs_atomic_write(void)
{
    char path[512], dir[512];
    struct re_buf b;
    struct stat st;
    re_snprintf(dir, sizeof(dir), "%s/a/b/c", test_tmpdir());
    CHECK_EQ_INT(re_mkdir_p(dir, 0700), 0);
    CHECK_EQ_INT(re_mkdir_p(dir, 0700), 0);
    re_snprintf(path, sizeof(path), "%s/f", dir);
    CHECK_EQ_INT(re_write_file_atomic(path, "one", 3, 0600), 0);
    CHECK_EQ_INT(re_write_file_atomic(path, "two!", 4, 0640), 0);
    CHECK_EQ_INT(stat(path, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0640);
    re_buf_init(&b, 3);
    CHECK_EQ_INT(re_read_file(&b, path), -RE_ETOOBIG);
    re_buf_release(&b);
    re_buf_init(&b, 100);
    CHECK_EQ_INT(re_read_file(&b, path), 0);
    CHECK_EQ_STR(b.ptr, "two!");
    re_buf_release(&b);
    /* A write into a missing directory fails and leaves nothing behind. */
    re_snprintf(path, sizeof(path), "%s/missing/f", test_tmpdir());
    CHECK(re_write_file_atomic(path, "x", 1, 0600) < 0);
    re_snprintf(path, sizeof(path), "%s/a", test_tmpdir());
    CHECK_EQ_INT(re_remove_tree(path), 0);
    CHECK(stat(path, &st) < 0);
    CHECK_EQ_INT(re_remove_tree(path), 0);
}

static void clock_stub(void)
{
    char iso[32];
    re_clock_stub(1000000000, 42);
    CHECK_EQ_INT(re_time(), 1000000000);
    CHECK_EQ_INT(re_mono_ms(), 42);
    re_time_iso(iso, sizeof(iso), re_time());
    CHECK_EQ_STR(iso, "2001-09-09T01:46:40Z");
    re_clock_stub(-1, 0);
    CHECK(re_time() > 1700000000);
}

static void notify_datagram(void)
{
    char path[256], got[64] = { 0 };
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    re_snprintf(path, sizeof(path), "%s/notify.sock", test_tmpdir());
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    CHECK_EQ_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    unsetenv("NOTIFY_SOCKET");
    CHECK_EQ_INT(re_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    CHECK_EQ_INT(re_notify("READY=1\nSTATUS=ok"), 0);
    CHECK(recv(fd, got, sizeof(got) - 1, 0) > 0);
    CHECK_EQ_STR(got, "READY=1\nSTATUS=ok");
    setenv("WATCHDOG_USEC", "10000000", 1);
    CHECK_EQ_INT(re_notify_watchdog_ms(), 5000);
    close(fd);
}

TEST_MAIN(T(error_tables), T(oid_checks), T(cgi_heads), T(buf_bounded), T(str_helpers), T(json_depth_and_getters), T(json_strict),
          T(conf_parse_and_validate), T(conf_values), T(fs_atomic_write), T(clock_stub),
          T(notify_datagram))
