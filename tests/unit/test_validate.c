/* test_validate.c - names, paths, keys, values, identities and versions. */
#include "validate.h"
#include "error.h"
#include "testlib.h"

#define S(x) re_str_c(x)

static void labels(void)
{
    const char *why = NULL;
    CHECK_EQ_INT(validate_dns_label(S("store-0042"), &why), 0);
    CHECK_EQ_INT(validate_dns_label(S("a"), NULL), 0);
    CHECK_EQ_INT(validate_dns_label(S(""), &why), -RE_EINVAL);
    CHECK(why && strstr(why, "empty"));
    CHECK_EQ_INT(validate_dns_label(S("../x"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_dns_label(S("A_B"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_dns_label(S("-a"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_dns_label(S("a-"), NULL), -RE_EINVAL);
    char n63[64], n64[65];
    memset(n63, 'a', 63); n63[63] = 0;
    memset(n64, 'a', 64); n64[64] = 0;
    CHECK_EQ_INT(validate_dns_label(S(n63), NULL), 0);
    CHECK_EQ_INT(validate_dns_label(S(n64), &why), -RE_EINVAL);
    CHECK(strstr(why, "63"));
}

static void k8s_labels(void)
{
    const char *why = NULL;
    CHECK_EQ_INT(validate_label_value(re_str_c(""), NULL), 0);
    CHECK_EQ_INT(validate_label_value(re_str_c("v1.2_beta-3"), NULL), 0);
    CHECK_EQ_INT(validate_label_value(re_str_c("-x"), &why), -RE_EINVAL);
    CHECK(why && strstr(why, "start and end"));
    CHECK_EQ_INT(validate_label_value(re_str_c("a b"), NULL), -RE_EINVAL);
    char long64[65];
    memset(long64, 'a', 64);
    long64[64] = '\0';
    CHECK_EQ_INT(validate_label_value(re_str_c(long64), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_label_key(re_str_c("kubernetes.io/hostname"), NULL), 0);
    CHECK_EQ_INT(validate_label_key(re_str_c("app"), NULL), 0);
    CHECK_EQ_INT(validate_label_key(re_str_c(""), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_label_key(re_str_c("Example.com/x"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_label_key(re_str_c("example.com/"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_label_key(re_str_c("/x"), NULL), -RE_EINVAL);
}

static void paths(void)
{
    const char *why = NULL;
    CHECK_EQ_INT(validate_group_path(S("/stores/central/tx"), NULL), 0);
    CHECK_EQ_INT(validate_group_path(S("/rings/beta"), NULL), 0);
    CHECK_EQ_INT(validate_group_path(S("/a"), NULL), 0);
    CHECK_EQ_INT(validate_group_path(S("/"), &why), -RE_EINVAL);
    CHECK(strstr(why, "empty"));
    CHECK_EQ_INT(validate_group_path(S("/a//b"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_group_path(S("/a/b/"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_group_path(S("/a/../b"), &why), -RE_EINVAL);
    CHECK(strstr(why, ".."));
    CHECK_EQ_INT(validate_group_path(S("/a/."), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_group_path(S("a/b"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_group_path(S("/a b"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_group_path(S(""), NULL), -RE_EINVAL);
}

static void keys_and_values(void)
{
    const char *why = NULL;
    CHECK_EQ_INT(validate_key(S("ring"), NULL), 0);
    CHECK_EQ_INT(validate_key(S("app.kubernetes.io_x-y"), NULL), 0);
    CHECK_EQ_INT(validate_key(S("a/b"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_key(S(""), NULL), -RE_EINVAL);
    /* YAML-significant text is fine */
    CHECK_EQ_INT(validate_value(S("a: b\n# c\n---\n{x}\t\"'"), NULL), 0);
    CHECK_EQ_INT(validate_value(S("caf\xc3\xa9"), NULL), 0);
    CHECK_EQ_INT(validate_value(S("a\rb"), &why), -RE_EINVAL);
    CHECK(strstr(why, "control"));
    CHECK_EQ_INT(validate_value(S("a\x01"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_value(S("a\x7f"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_value(S("\xc2\x85"), NULL), -RE_EINVAL);     /* C1 NEL */
    CHECK_EQ_INT(validate_value(S("\xc3"), &why), -RE_EINVAL);         /* truncated */
    CHECK(strstr(why, "UTF-8"));
    CHECK_EQ_INT(validate_value(S("\xed\xa0\x80"), NULL), -RE_EINVAL); /* surrogate */
    CHECK_EQ_INT(validate_value(S("\xc0\xaf"), NULL), -RE_EINVAL);     /* overlong */
    struct re_str embedded_nul = { "a\0b", 3 };
    CHECK_EQ_INT(validate_value(embedded_nul, NULL), -RE_EINVAL);
}

static void identities(void)
{
    CHECK_EQ_INT(validate_identity(S("user/alice"), NULL), 0);
    CHECK_EQ_INT(validate_identity(S("user/alice.b@example.com"), NULL), 0);
    CHECK_EQ_INT(validate_identity(S("cluster/store-1"), NULL), 0);
    CHECK_EQ_INT(validate_identity(S("cluster/Store"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_identity(S("alice"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_identity(S("user/"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_identity(S("user/a b"), NULL), -RE_EINVAL);
}

static void versions(void)
{
    CHECK_EQ_INT(validate_version(S("1.2.3"), NULL), 0);
    CHECK_EQ_INT(validate_version(S("v1 2"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_version(S("1.0+build.5"), NULL), -RE_EINVAL);   /* no label value */
    CHECK_EQ_INT(validate_version(S("1.0-"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_version(S("2024.10.1_rc-1"), NULL), 0);
    CHECK_EQ_INT(validate_key(S("."), NULL), -RE_EINVAL);                  /* no ConfigMap key */
    CHECK_EQ_INT(validate_key(S(".."), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_key(S(".env"), NULL), 0);
    CHECK(validate_version_cmp("2", "1") > 0);
    CHECK(validate_version_cmp("1.10", "1.9") > 0);
    CHECK(validate_version_cmp("1.0", "1") > 0);
    CHECK(validate_version_cmp("01", "1") == 0);
    CHECK(validate_version_cmp("1.2.3", "1.2.3") == 0);
    CHECK(validate_version_cmp("1.2-rc1", "1.2-rc2") < 0);
    CHECK(validate_version_cmp("10", "9") > 0);
    CHECK(validate_version_cmp("1.a", "1.1") > 0);
}

static void files_and_quantities(void)
{
    CHECK_EQ_INT(validate_file_path(S("kustomization.yaml"), NULL), 0);
    CHECK_EQ_INT(validate_file_path(S("base/deploy.yaml"), NULL), 0);
    CHECK_EQ_INT(validate_file_path(S("../x"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_file_path(S("/etc/passwd"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_file_path(S("a//b"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_file_path(S("a/"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_quantity(S("500m"), NULL), 0);
    CHECK_EQ_INT(validate_quantity(S("2"), NULL), 0);
    CHECK_EQ_INT(validate_quantity(S("1.5"), NULL), 0);
    CHECK_EQ_INT(validate_quantity(S("8Gi"), NULL), 0);
    CHECK_EQ_INT(validate_quantity(S("8GB"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_quantity(S("Gi"), NULL), -RE_EINVAL);
    CHECK_EQ_INT(validate_quantity(S(""), NULL), -RE_EINVAL);
}

TEST_MAIN(T(labels), T(k8s_labels), T(paths), T(keys_and_values), T(identities), T(versions),
          T(files_and_quantities))
