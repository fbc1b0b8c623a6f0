/* test_ctl_output.c - resedgectl without a hub: argument parsing, request
 * bodies from flags, percent-encoding, table/JSON/YAML output, fingerprints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testlib.h"

/* The CLI's sources are not in any archive: include them (main.c aside). */
#include "../../hub/ctl/args.c"
#include "../../hub/ctl/client.c"
#include "../../hub/ctl/commands.c"
#include "../../hub/ctl/explain.c"
#include "../../hub/ctl/login.c"
#include "../../hub/ctl/output.c"
#include "../../hub/ctl/profile.c"

static int parse(struct ctl_args *a, const char *const *argv, struct re_buf *err)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return ctl_args_parse(a, argc, (char **)argv, err);
}

static void test_args_anywhere(void)
{
    static const char *const argv[] = { "resedgectl", "--config", "p.conf", "clusters", "list",
                                        "-ojson", "--limit=5", "--group", "/a", "--group", "/b",
                                        "--all", "--", "--not-an-option", NULL };
    struct ctl_args a;
    struct re_buf err;
    const char *v;
    size_t it = 0;

    re_buf_init(&err, 1024);
    CHECK_EQ_INT(parse(&a, argv, &err), 0);
    CHECK_EQ_INT(a.npos, 3);
    CHECK_EQ_STR(a.pos[0], "clusters");
    CHECK_EQ_STR(a.pos[2], "--not-an-option");
    CHECK_EQ_STR(ctl_arg(&a, "config"), "p.conf");
    CHECK_EQ_STR(ctl_arg(&a, "output"), "json");
    CHECK_EQ_STR(ctl_arg(&a, "limit"), "5");
    CHECK(ctl_flag(&a, "all"));
    CHECK(!ctl_flag(&a, "cascade"));
    CHECK(ctl_arg_iter(&a, "group", &it, &v));
    CHECK_EQ_STR(v, "/a");
    CHECK(ctl_arg_iter(&a, "group", &it, &v));
    CHECK_EQ_STR(v, "/b");
    CHECK(!ctl_arg_iter(&a, "group", &it, &v));
    re_buf_release(&err);
}

static void test_args_errors(void)
{
    static const char *const unknown[] = { "x", "--bogus", NULL };
    static const char *const missing[] = { "x", "clusters", "list", "--limit", NULL };
    static const char *const flagval[] = { "x", "--all=yes", NULL };
    struct ctl_args a;
    struct re_buf err;

    re_buf_init(&err, 1024);
    CHECK(parse(&a, unknown, &err) < 0);
    CHECK(strstr(err.ptr, "unknown option '--bogus'"));
    re_buf_reset(&err);
    CHECK(parse(&a, missing, &err) < 0);
    CHECK(strstr(err.ptr, "needs a value"));
    re_buf_reset(&err);
    CHECK(parse(&a, flagval, &err) < 0);
    CHECK(strstr(err.ptr, "takes no value"));
    re_buf_release(&err);
}

static void test_body_from_flags(void)
{
    static const char *const argv[] = {
        "x", "--set", "description=a: b # c", "--set", "quota.cpu:=2", "--set", "tz=CST",
        "--metadata", "format=drive-thru", "--metadata", "ring=", "--group", "/stores/tx",
        "--expression", "/g/a or /g/b", NULL,
    };
    struct ctl_args a;
    struct re_buf err, out;
    bool changed;

    re_buf_init(&err, 1024);
    re_buf_init(&out, 4096);
    CHECK_EQ_INT(parse(&a, argv, &err), 0);
    cJSON *body = build_body(&res_clusters, &a, "store-0042", &changed);
    CHECK(body);
    CHECK(changed);
    CHECK_EQ_INT(re_json_print(&out, body), 0);
    CHECK_EQ_STR(out.ptr, "{\"name\":\"store-0042\",\"description\":\"a: b # c\",\"quota\":{\"cpu\":2},"
                          "\"tz\":\"CST\",\"metadata\":{\"format\":\"drive-thru\",\"ring\":\"\"},"
                          "\"groups\":[\"/stores/tx\"],\"expression\":\"/g/a or /g/b\"}");
    cJSON_Delete(body);
    re_buf_release(&err);
    re_buf_release(&out);
}

static void test_body_bad_flags(void)
{
    static const char *const noeq[] = { "x", "--set", "description", NULL };
    static const char *const badjson[] = { "x", "--set", "a:={", NULL };
    static const char *const badmeta[] = { "x", "--metadata", "=v", NULL };
    static const char *const *const cases[] = { noeq, badjson, badmeta };
    struct re_buf err;
    bool changed;

    re_buf_init(&err, 1024);
    for (size_t i = 0; i < 3; i++) {
        struct ctl_args a;
        CHECK_EQ_INT(parse(&a, cases[i], &err), 0);
        CHECK(build_body(&res_clusters, &a, NULL, &changed) == NULL);
    }
    re_buf_release(&err);
}

static void test_paths_are_escaped(void)
{
    struct re_buf b;
    static const char *const pos[] = { "/stores/central tx", "x" };

    re_buf_init(&b, 4096);
    CHECK_EQ_INT(item_path(&b, &res_groups, "/stores/central"), 0);
    CHECK_EQ_STR(b.ptr, "/api/v1/groups/%2Fstores%2Fcentral");
    re_buf_reset(&b);
    CHECK_EQ_INT(expand(&b, "/api/v1/clusters/{1}/files", pos, 2, true), 0);
    CHECK_EQ_STR(b.ptr, "/api/v1/clusters/%2Fstores%2Fcentral%20tx/files");
    CHECK_EQ_INT(ctl_query_add(&b, "expression", "/g/a and not /m/k/v&x=1"), 0);
    CHECK_EQ_INT(ctl_query_add(&b, "limit", "5"), 0);
    CHECK_EQ_STR(b.ptr, "/api/v1/clusters/%2Fstores%2Fcentral%20tx/files"
                        "?expression=%2Fg%2Fa%20and%20not%20%2Fm%2Fk%2Fv%26x%3D1&limit=5");
    re_buf_release(&b);
}

/* Runs fn(f, v) into a string. */
static char *capture(int (*fn)(FILE *, const cJSON *), const char *json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cJSON *v = cJSON_Parse(json);
    CHECK(f && v);
    CHECK_EQ_INT(fn(f, v), 0);
    fclose(f);
    cJSON_Delete(v);
    return buf;
}

static void test_yaml_quotes_what_would_change_type(void)
{
    char *y = capture(ctl_print_yaml,
                      "{\"a\":\"true\",\"b\":\"123\",\"c\":\"null\",\"d\":\"x: y\",\"e\":\"line1\\nline2\","
                      "\"f\":\"---\",\"g\":\"{x}\",\"h\":\"plain\",\"i\":7,\"j\":false,\"k\":null,"
                      "\"l\":[],\"m\":\"#c\",\"nn\":\"1e5\",\"o\":\"-.5\"}");
    CHECK(strstr(y, "a: \"true\"\n"));
    CHECK(strstr(y, "b: \"123\"\n"));
    CHECK(strstr(y, "c: \"null\"\n"));
    CHECK(strstr(y, "d: 'x: y'\n"));
    CHECK(strstr(y, "h: plain\n"));
    CHECK(strstr(y, "i: 7\n"));
    CHECK(strstr(y, "j: false\n"));
    CHECK(strstr(y, "k: null\n"));
    CHECK(strstr(y, "nn: \"1e5\"\n"));
    CHECK(strstr(y, "e: |-\n  line1\n  line2\n"));
    CHECK(strstr(y, "o: \"-.5\"\n"));
    CHECK(!strstr(y, "f: ---"));
    CHECK(!strstr(y, "g: {x}"));
    CHECK(!strstr(y, "m: #c"));
    free(y);
}

static void test_json_pretty_and_escaped(void)
{
    char *j = capture(ctl_print_json, "{\"a\":[1,{\"b\":\"x\\u001b\"}],\"c\":{},\"d\":[]}");
    CHECK_EQ_STR(j, "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"x\\u001b\"\n    }\n  ],\n"
                    "  \"c\": {},\n  \"d\": []\n}\n");
    free(j);
}

static int table_of_clusters(FILE *f, const cJSON *v)
{
    ctl_print_table(f, v, cluster_cols);
    return 0;
}

static void test_table_columns_and_safety(void)
{
    char *t = capture(table_of_clusters,
                      "[{\"name\":\"store-1\",\"groups\":[\"/a\",\"/b\"],\"agent\":{\"status\":\"online\"},"
                      "\"unknown\":1},{\"name\":\"evil\\u001b[2J\\nx\",\"groups\":[]}]");
    /* Columns no item has (DESIRED, APPLIED, LAST SEEN) are left out. */
    CHECK_EQ_STR(t, "NAME          GROUPS   STATUS\n"
                    "store-1       /a,/b    online\n"
                    "evil?[2J\\nx   -        -\n");
    free(t);
}

static void test_cell_cut_and_short_revisions(void)
{
    struct re_buf b;
    cJSON *long_s = cJSON_CreateString("0123456789012345678901234567890123456789012345678901234567890123456789");
    cJSON *rev = cJSON_CreateString("0123456789abcdef0123456789abcdef01234567");

    re_buf_init(&b, 4096);
    CHECK_EQ_INT(ctl_cell(&b, long_s, 0), 0);
    CHECK_EQ_INT(strlen(b.ptr), 60);
    CHECK(strcmp(b.ptr + 57, "...") == 0);
    re_buf_reset(&b);
    CHECK_EQ_INT(ctl_cell(&b, long_s, CTL_COL_FULL), 0);
    CHECK_EQ_INT(strlen(b.ptr), 70);
    re_buf_reset(&b);
    CHECK_EQ_INT(ctl_cell(&b, rev, CTL_COL_SHORT), 0);
    CHECK_EQ_STR(b.ptr, "0123456789ab");
    cJSON_Delete(long_s);
    cJSON_Delete(rev);
    re_buf_release(&b);
}

static void test_field_candidates(void)
{
    cJSON *o = cJSON_Parse("{\"a\":{\"b\":1},\"c\":2}");
    CHECK(ctl_field(o, "x|a.b")->valueint == 1);
    CHECK(ctl_field(o, "c|a")->valueint == 2);
    CHECK(ctl_field(o, "x|y.z") == NULL);
    cJSON_Delete(o);
}

static void test_fingerprint_normalize(void)
{
    char out[65];
    const char *hex = "79E7787C6BEDFECACFF03EA2DB9DAB2F09A775AE82853F7501EBC434739C7AD3";
    CHECK_EQ_INT(ctl_fingerprint_normalize(out, hex), 0);
    CHECK_EQ_STR(out, "79e7787c6bedfecacff03ea2db9dab2f09a775ae82853f7501ebc434739c7ad3");
    CHECK_EQ_INT(ctl_fingerprint_normalize(out, "sha256:79:e7:78:7c:6b:ed:fe:ca:cf:f0:3e:a2:db:9d:"
                                                "ab:2f:09:a7:75:ae:82:85:3f:75:01:eb:c4:34:73:9c:7a:d3"), 0);
    CHECK_EQ_STR(out, "79e7787c6bedfecacff03ea2db9dab2f09a775ae82853f7501ebc434739c7ad3");
    CHECK(ctl_fingerprint_normalize(out, "sha256:abc") < 0);
    CHECK(ctl_fingerprint_normalize(out, "sha256:zz e7787c6bedfecacff03ea2db9dab2f09a775ae82853f7501ebc434739c7ad3") < 0);
}

static void test_profile_relative_paths_and_flags(void)
{
    char path[512];
    FILE *f;
    struct ctl c = { 0 };
    struct ctl_args a;
    struct re_buf err;
    const char *argv[] = { "x", "--config", path, "--key", "/override.key", NULL };

    re_snprintf(path, sizeof(path), "%s/p.conf", test_tmpdir());
    f = fopen(path, "w");
    CHECK(f);
    fputs("# comment\n[hub]\nurl = https://h:1/\nca = tls/ca.crt\ncert = /abs/admin.crt\nkey = k\n", f);
    fclose(f);
    re_buf_init(&err, 1024);
    CHECK_EQ_INT(parse(&a, argv, &err), 0);
    CHECK_EQ_INT(ctl_profile_load(&c, &a), CTL_OK);
    CHECK_EQ_STR(c.hub, "https://h:1");
    CHECK(strstr(c.ca, "/tls/ca.crt") && strncmp(c.ca, test_tmpdir(), strlen(test_tmpdir())) == 0);
    CHECK_EQ_STR(c.cert, "/abs/admin.crt");
    CHECK_EQ_STR(c.key, "/override.key");
    ctl_release(&c);
    re_buf_release(&err);
}

static void test_profile_unknown_key(void)
{
    char path[512];
    FILE *f;
    struct ctl c = { 0 };
    struct ctl_args a;
    struct re_buf err;
    const char *argv[] = { "x", "--config", path, NULL };

    re_snprintf(path, sizeof(path), "%s/bad.conf", test_tmpdir());
    f = fopen(path, "w");
    CHECK(f);
    fputs("[hub]\nurl = https://h:1\nkeyy = x\n", f);
    fclose(f);
    re_buf_init(&err, 1024);
    CHECK_EQ_INT(parse(&a, argv, &err), 0);
    CHECK_EQ_INT(ctl_profile_load(&c, &a), CTL_EUSAGE);
    ctl_release(&c);
    re_buf_release(&err);
}

TEST_MAIN(T(test_args_anywhere), T(test_args_errors), T(test_body_from_flags),
          T(test_body_bad_flags), T(test_paths_are_escaped),
          T(test_yaml_quotes_what_would_change_type), T(test_json_pretty_and_escaped),
          T(test_table_columns_and_safety), T(test_cell_cut_and_short_revisions),
          T(test_field_candidates), T(test_fingerprint_normalize),
          T(test_profile_relative_paths_and_flags), T(test_profile_unknown_key))
