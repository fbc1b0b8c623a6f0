/* test_expr.c - unit tests for hub/expr.c: grammar, errors with positions, evaluation, canonical form. */
#include <stdint.h>
#include <time.h>
#include "buf.h"
#include "error.h"
#include "inventory/bitset.h"
#include "inventory/expr.h"
#include "testlib.h"

/* ---- a small fleet: 10 clusters with groups, metadata and namespaces ---- */

struct fake_cluster {
    const char *name;
    const char *groups[3];
    const char *ring;          /* metadata "ring", or NULL */
    const char *path;          /* metadata "path", or NULL */
};

static const struct fake_cluster fleet[] = {
    { "x",       { "/stores/central/tx/dallas", "/beta" }, "prod",   NULL },
    { "store-1", { "/stores/central/tx/austin" },          "canary", NULL },
    { "store-2", { "/stores/central/ok", "/pilot" },       "prod",   NULL },
    { "store-3", { "/stores/central" },                    "dev",    NULL },
    { "store-4", { "/stores/east/ny", "/beta" },           "prod",   NULL },
    { "store-5", { "/stores/east/ny" },                    "canary", NULL },
    { "store-6", { "/stores/east", "/pilot" },             NULL,     NULL },
    { "store-7", { "/stores/west" },                       "prod",   "a/b" },
    { "store-8", { "/stores/central-2" },                  "dev",    NULL },
    { "store-9", { NULL },                                 "prod",   NULL },
};
#define FLEET_N (sizeof(fleet) / sizeof(fleet[0]))

struct fake_ctx {
    int calls;                 /* resolver calls, to see short-circuits */
    int fail_with;             /* non-zero: the group resolver returns it */
};

static bool under(const char *group, const char *path)
{
    size_t n = strlen(path);
    return group && strncmp(group, path, n) == 0 && (group[n] == '\0' || group[n] == '/');
}

static int fake_group(void *vctx, const char *path, struct bitset *out)
{
    struct fake_ctx *ctx = vctx;
    ctx->calls++;
    if (ctx->fail_with)
        return ctx->fail_with;
    for (size_t i = 0; i < FLEET_N; i++)
        for (size_t g = 0; g < 3; g++)
            if (under(fleet[i].groups[g], path))
                bitset_set(out, i);
    return 0;
}

static int fake_meta(void *vctx, const char *key, const char *value, struct bitset *out)
{
    struct fake_ctx *ctx = vctx;
    ctx->calls++;
    for (size_t i = 0; i < FLEET_N; i++) {
        const char *v = strcmp(key, "ring") == 0 ? fleet[i].ring
                      : strcmp(key, "path") == 0 ? fleet[i].path : NULL;
        if (v && strcmp(v, value) == 0)
            bitset_set(out, i);
    }
    return 0;
}

static int fake_cluster(void *vctx, const char *name, struct bitset *out)
{
    struct fake_ctx *ctx = vctx;
    ctx->calls++;
    for (size_t i = 0; i < FLEET_N; i++)
        if (strcmp(fleet[i].name, name) == 0)
            bitset_set(out, i);
    return 0;
}

static int fake_ns(void *vctx, const char *name, struct bitset *out)
{
    struct fake_ctx *ctx = vctx;
    ctx->calls++;
    if (strcmp(name, "pos") == 0) {
        bitset_set(out, 0);
        bitset_set(out, 2);
        bitset_set(out, 4);
    }
    return 0;
}

static struct fake_ctx fctx;
static const struct expr_resolver fake = {
    &fctx, FLEET_N, fake_group, fake_meta, fake_cluster, fake_ns
};

/* The same fleet, one cluster at a time, for expr_match. */
static int fake_test(void *vctx, char kind, const char *a, const char *b, bool *in)
{
    size_t i = *(size_t *)vctx;
    struct bitset s;
    int r;
    CHECK_EQ_INT(bitset_init(&s, FLEET_N), 0);
    switch (kind) {
    case EXPR_GROUP: r = fake_group(&fctx, a, &s); break;
    case EXPR_META: r = fake_meta(&fctx, a, b, &s); break;
    case EXPR_CLUSTER: r = fake_cluster(&fctx, a, &s); break;
    default: r = fake_ns(&fctx, a, &s); break;
    }
    *in = bitset_test(&s, i);
    bitset_release(&s);
    return r;
}

static struct expr *parse_ok(const char *text)
{
    struct expr *e = NULL;
    struct expr_error err = { 0, "" };
    int r = expr_parse(&e, text, strlen(text), &err);
    if (r != 0) {
        fprintf(stderr, "parse of \"%s\" failed: %d: %s\n", text, r, err.message);
        exit(1);
    }
    CHECK(e != NULL);
    return e;
}

/* Evaluate text over the fleet and give the selected indexes as "0,2,4". */
static const char *eval_list(const char *text)
{
    static char list[64];
    struct expr *e = parse_ok(text);
    struct bitset out;
    size_t len = 0;
    CHECK_EQ_INT(bitset_init(&out, FLEET_N), 0);
    CHECK_EQ_INT(expr_eval(&out, e, &fake), 0);
    list[0] = '\0';
    for (size_t i = bitset_next(&out, 0); i != BITSET_NONE; i = bitset_next(&out, i + 1))
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%zu", len ? "," : "", i);
    /* expr_match must agree with expr_eval for every cluster */
    for (size_t i = 0; i < FLEET_N; i++) {
        bool in = !bitset_test(&out, i);
        CHECK_EQ_INT(expr_match(&in, e, fake_test, &i), 0);
        CHECK_EQ_INT(in, bitset_test(&out, i));
    }
    bitset_release(&out);
    expr_free(e);
    return list;
}

static void test_eval_terms(void)
{
    CHECK_EQ_STR(eval_list("/g/stores/central"), "0,1,2,3");
    CHECK_EQ_STR(eval_list("/g/stores/central/tx"), "0,1");
    CHECK_EQ_STR(eval_list("/g/stores"), "0,1,2,3,4,5,6,7,8");
    CHECK_EQ_STR(eval_list("/g/stores/central-2"), "8");
    CHECK_EQ_STR(eval_list("/g/nowhere"), "");
    CHECK_EQ_STR(eval_list("/m/ring/prod"), "0,2,4,7,9");
    CHECK_EQ_STR(eval_list("/m/path/a/b"), "7");
    CHECK_EQ_STR(eval_list("/m/nokey/prod"), "");
    CHECK_EQ_STR(eval_list("/c/x"), "0");
    CHECK_EQ_STR(eval_list("/c/store-99"), "");
    CHECK_EQ_STR(eval_list("/n/pos"), "0,2,4");
    CHECK_EQ_STR(eval_list("/n/unknown"), "");
}

static void test_eval_operators(void)
{
    CHECK_EQ_STR(eval_list("/g/stores/central and not /m/ring/prod"), "1,3");
    CHECK_EQ_STR(eval_list("/g/beta or /g/pilot"), "0,2,4,6");
    CHECK_EQ_STR(eval_list("not /c/x"), "1,2,3,4,5,6,7,8,9");
    CHECK_EQ_STR(eval_list("not not /c/x"), "0");
    CHECK_EQ_STR(eval_list("not not not /c/x"), "1,2,3,4,5,6,7,8,9");
    CHECK_EQ_STR(eval_list("not (not /c/x)"), "0");
    CHECK_EQ_STR(eval_list("/g/beta and /g/pilot"), "");
    CHECK_EQ_STR(eval_list("/c/x or /c/store-1 or /c/store-2"), "0,1,2");
    CHECK_EQ_STR(eval_list("/g/stores and /m/ring/prod and /g/beta"), "0,4");
    /* an and with only negated operands starts from the whole fleet */
    CHECK_EQ_STR(eval_list("not /c/x and not /c/store-1"), "2,3,4,5,6,7,8,9");
    CHECK_EQ_STR(eval_list("not /g/stores"), "9");
    CHECK_EQ_STR(eval_list("/n/pos and not /g/beta"), "2");
}

static void test_eval_precedence(void)
{
    /* and binds tighter than or */
    CHECK_EQ_STR(eval_list("/g/beta or /g/pilot and /m/ring/canary"), "0,4");
    CHECK_EQ_STR(eval_list("(/g/beta or /g/pilot) and /m/ring/canary"), "");
    CHECK_EQ_STR(eval_list("/m/ring/canary and /g/pilot or /g/beta"), "0,4");
    CHECK_EQ_STR(eval_list("/m/ring/canary and (/g/pilot or /g/beta)"), "");
    /* not binds tighter than and */
    CHECK_EQ_STR(eval_list("not /g/stores/central and /m/ring/prod"), "4,7,9");
    CHECK_EQ_STR(eval_list("not (/g/stores/central and /m/ring/prod)"), "1,3,4,5,6,7,8,9");
    CHECK_EQ_STR(eval_list("not /g/beta or /g/beta"), "0,1,2,3,4,5,6,7,8,9");
    CHECK_EQ_STR(eval_list("((/g/stores/east))"), "4,5,6");
    CHECK_EQ_STR(eval_list("(/g/stores/east or /c/x) and (not /m/ring/prod or /n/pos)"),
                 "0,4,5,6");
}

static void test_none(void)
{
    static const char *nones[] = { "", "   ", "\t\n", "none", "null", "NONE", "Null",
                                   "  none  ", "nUlL" };
    for (size_t i = 0; i < sizeof(nones) / sizeof(nones[0]); i++) {
        struct expr *e = parse_ok(nones[i]);
        CHECK(expr_is_none(e));
        CHECK_EQ_INT(expr_term_count(e), 0);
        expr_free(e);
        CHECK_EQ_STR(eval_list(nones[i]), "");
    }
    struct expr *e = NULL;
    CHECK_EQ_INT(expr_parse(&e, NULL, 0, NULL), 0);
    CHECK(expr_is_none(e));
    expr_free(e);
    e = parse_ok("/c/x");
    CHECK(!expr_is_none(e));
    CHECK_EQ_INT(expr_term_count(e), 1);
    expr_free(e);
    expr_free(NULL);
}

static void test_case_insensitive(void)
{
    CHECK_EQ_STR(eval_list("/g/beta OR /g/pilot"), "0,2,4,6");
    CHECK_EQ_STR(eval_list("/g/stores/central AND NOT /m/ring/prod"), "1,3");
    CHECK_EQ_STR(eval_list("/g/stores/central And nOt /m/ring/prod"), "1,3");
    CHECK_EQ_STR(eval_list("/G/beta Or /C/x"), "0,4");
    CHECK_EQ_STR(eval_list("NOT /c/x"), "1,2,3,4,5,6,7,8,9");
    /* term text itself is case-sensitive: groups and values are looked up as written */
    CHECK_EQ_STR(eval_list("/g/BETA"), "");
}

static void test_whitespace_and_parens(void)
{
    CHECK_EQ_STR(eval_list("(/g/beta)or(/g/pilot)"), "0,2,4,6");
    CHECK_EQ_STR(eval_list("\t/g/beta\nor\r\n/g/pilot  "), "0,2,4,6");
    CHECK_EQ_STR(eval_list("not(/c/x)"), "1,2,3,4,5,6,7,8,9");
    /* "andx" is not the keyword and: it is a word that is not a term */
    struct expr *e = NULL;
    struct expr_error err;
    CHECK_EQ_INT(expr_parse(&e, "/c/x andx /c/y", 14, &err), -RE_EPARSE);
    CHECK_EQ_INT(err.pos, 5);
    /* len bounds the text: what follows is not read */
    CHECK_EQ_INT(expr_parse(&e, "/c/x or garbage", 4, &err), 0);
    CHECK_EQ_INT(expr_term_count(e), 1);
    expr_free(e);
}

struct err_case {
    const char *text;
    int code;
    size_t pos;
    const char *message;
};

static void check_error(const char *text, size_t len, int code, size_t pos, const char *message)
{
    struct expr *sentinel = (struct expr *)(uintptr_t)0x1;
    struct expr *e = sentinel;
    struct expr_error err = { 9999, "unset" };
    int r = expr_parse(&e, text, len, &err);
    if (r != code || err.pos != pos || strcmp(err.message, message) != 0) {
        fprintf(stderr, "\"%.60s\": got %d at %zu \"%s\", expected %d at %zu \"%s\"\n",
                text, r, err.pos, err.message, code, pos, message);
        exit(1);
    }
    CHECK(e == sentinel);                          /* out untouched on failure */
    CHECK_EQ_INT(expr_parse(&e, text, len, NULL), code);   /* err is optional */
    CHECK(strlen(err.message) < sizeof(err.message));
}

static void test_syntax_errors(void)
{
    static const struct err_case cases[] = {
        /* parentheses, both ways */
        { "(/g/a and /g/b", -RE_EPARSE, 14, "expected ')' at position 14" },
        { "((/g/a)", -RE_EPARSE, 7, "expected ')' at position 7" },
        { "/g/a)", -RE_EPARSE, 4, "unbalanced ')' at position 4" },
        { "(/g/a))", -RE_EPARSE, 6, "unbalanced ')' at position 6" },
        { ")", -RE_EPARSE, 0, "unbalanced ')' at position 0" },
        { "()", -RE_EPARSE, 1, "expected a term after '(' at position 1" },
        { "(/g/a /g/b)", -RE_EPARSE, 6, "expected 'and', 'or' or ')' at position 6, found '/g/b'" },
        /* unknown prefixes */
        { "/x/foo", -RE_EPARSE, 0,
          "unknown prefix '/x/' at position 0 (expected /g/, /m/, /c/ or /n/)" },
        { "/g/a and /xyz", -RE_EPARSE, 9,
          "unknown prefix '/xyz' at position 9 (expected /g/, /m/, /c/ or /n/)" },
        { "/g", -RE_EPARSE, 0,
          "unknown prefix '/g' at position 0 (expected /g/, /m/, /c/ or /n/)" },
        { "/", -RE_EPARSE, 0,
          "unknown prefix '/' at position 0 (expected /g/, /m/, /c/ or /n/)" },
        { "/groups/a", -RE_EPARSE, 0,
          "unknown prefix '/groups/' at position 0 (expected /g/, /m/, /c/ or /n/)" },
        /* trailing operators */
        { "/g/a and", -RE_EPARSE, 8, "expected a term after 'and' at position 8" },
        { "/g/a or  ", -RE_EPARSE, 9, "expected a term after 'or' at position 9" },
        { "/g/a and not", -RE_EPARSE, 12, "expected a term after 'not' at position 12" },
        { "not", -RE_EPARSE, 3, "expected a term after 'not' at position 3" },
        { "(/g/a and) or /g/b", -RE_EPARSE, 9, "expected a term after 'and' at position 9" },
        { "/g/a and or /g/b", -RE_EPARSE, 9, "expected a term after 'and' at position 9" },
        /* leading operators */
        { "and /g/a", -RE_EPARSE, 0,
          "unexpected 'and' at position 0 (expected a term, 'not' or '(')" },
        { "  OR /g/a", -RE_EPARSE, 2,
          "unexpected 'OR' at position 2 (expected a term, 'not' or '(')" },
        { "( and /g/a)", -RE_EPARSE, 2, "expected a term after '(' at position 2" },
        /* group paths */
        { "/g/", -RE_EPARSE, 3, "expected a group path after '/g/' at position 3" },
        { "/g/stores//tx", -RE_EPARSE, 10, "empty group path segment at position 10" },
        { "/g/stores/", -RE_EPARSE, 10, "empty group path segment at position 10" },
        { "/g//stores", -RE_EPARSE, 3, "empty group path segment at position 3" },
        { "/g/stores/../x", -RE_EPARSE, 10, "invalid group path segment '..' at position 10" },
        { "/c/x or /g/./x", -RE_EPARSE, 11, "invalid group path segment '.' at position 11" },
        { "/g/a/..", -RE_EPARSE, 5, "invalid group path segment '..' at position 5" },
        /* cluster and namespace names */
        { "/c/A_B", -RE_EPARSE, 3,
          "invalid cluster name 'A_B' at position 3 (expected a DNS-1123 label: "
          "a-z, 0-9 and '-', at most 63 characters)" },
        { "/c/-ab", -RE_EPARSE, 3,
          "invalid cluster name '-ab' at position 3 (expected a DNS-1123 label: "
          "a-z, 0-9 and '-', at most 63 characters)" },
        { "/c/ab-", -RE_EPARSE, 3,
          "invalid cluster name 'ab-' at position 3 (expected a DNS-1123 label: "
          "a-z, 0-9 and '-', at most 63 characters)" },
        { "/c/", -RE_EPARSE, 3, "expected a cluster name after '/c/' at position 3" },
        { "/n/Pos", -RE_EPARSE, 3,
          "invalid namespace name 'Pos' at position 3 (expected a DNS-1123 label: "
          "a-z, 0-9 and '-', at most 63 characters)" },
        { "/n/", -RE_EPARSE, 3, "expected a namespace name after '/n/' at position 3" },
        /* metadata */
        { "/m/", -RE_EPARSE, 3, "expected a metadata key after '/m/' at position 3" },
        { "/m/ring", -RE_EPARSE, 7,
          "expected '/' and a value after metadata key 'ring' at position 7" },
        { "/m/ring/", -RE_EPARSE, 8, "expected a value after metadata key 'ring' at position 8" },
        { "/m//prod", -RE_EPARSE, 3, "empty metadata key at position 3" },
        /* other words */
        { "/g/a /g/b", -RE_EPARSE, 5, "expected 'and' or 'or' at position 5, found '/g/b'" },
        { "foo", -RE_EPARSE, 0,
          "expected a term (/g/, /m/, /c/ or /n/), 'not' or '(' at position 0, found 'foo'" },
        { "/g/a and g/b", -RE_EPARSE, 9,
          "expected a term (/g/, /m/, /c/ or /n/), 'not' or '(' at position 9, found 'g/b'" },
        { "none or /g/a", -RE_EPARSE, 5,
          "expected end of expression after 'none' at position 5" },
        { "/g/a or null", -RE_EPARSE, 8, "'null' must be the whole expression at position 8" },
        { "/g/a\x01", -RE_EPARSE, 4, "invalid character 0x01 at position 4" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_error(cases[i].text, strlen(cases[i].text), cases[i].code, cases[i].pos,
                    cases[i].message);
    /* a NUL inside the given length is a character like any other */
    check_error("/c/x\0y", 6, -RE_EPARSE, 4, "invalid character 0x00 at position 4");
}

static void test_long_names(void)
{
    char text[128];
    memcpy(text, "/c/", 3);
    memset(text + 3, 'a', 63);
    text[66] = '\0';
    struct expr *e = parse_ok(text);               /* 63 characters: fine */
    expr_free(e);
    text[66] = 'a';
    text[67] = '\0';                               /* 64: too long */
    check_error(text, 67, -RE_EPARSE, 3,
                "invalid cluster name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' at position 3 "
                "(expected a DNS-1123 label: a-z, 0-9 and '-', at most 63 characters)");
}

static void test_limits(void)
{
    static char text[EXPR_MAX_LEN + 2];
    struct expr *e;
    size_t n;

    /* length: 4096 is fine, 4097 is too big */
    memcpy(text, "/g/", 3);
    memset(text + 3, 'a', EXPR_MAX_LEN - 3);
    e = parse_ok(text);
    expr_free(e);
    text[EXPR_MAX_LEN] = 'a';
    check_error(text, EXPR_MAX_LEN + 1, -RE_ETOOBIG, 4096, "expression is longer than 4096 bytes");

    /* depth: 64 nested parentheses are fine, 65 are too deep */
    for (size_t depth = 64; depth <= 65; depth++) {
        n = 0;
        for (size_t i = 0; i < depth; i++)
            text[n++] = '(';
        memcpy(text + n, "/c/x", 4);
        n += 4;
        for (size_t i = 0; i < depth; i++)
            text[n++] = ')';
        text[n] = '\0';
        if (depth == 64) {
            e = parse_ok(text);
            CHECK_EQ_INT(expr_term_count(e), 1);
            expr_free(e);
        } else {
            check_error(text, n, -RE_EDEPTH, 64, "parentheses nested deeper than 64 at position 64");
        }
    }

    /* terms: 256 are fine, the 257th is too many */
    n = 0;
    for (size_t i = 0; i < 257; i++) {
        memcpy(text + n, i ? " or /c/x" : "/c/x", i ? 8 : 4);
        n += i ? 8 : 4;
        if (i == 255) {
            text[n] = '\0';
            e = parse_ok(text);
            CHECK_EQ_INT(expr_term_count(e), 256);
            expr_free(e);
        }
    }
    text[n] = '\0';
    check_error(text, n, -RE_ETOOBIG, n - 4, "more than 256 terms at position 2048");

    /* a long run of `not` folds and uses no stack */
    n = 0;
    for (size_t i = 0; i < 1000; i++) {
        memcpy(text + n, "not ", 4);
        n += 4;
    }
    memcpy(text + n, "/c/x", 5);
    CHECK_EQ_STR(eval_list(text), "0");
    memcpy(text + 4, "/c/x", 5);                   /* 1 not */
    CHECK_EQ_STR(eval_list(text), "1,2,3,4,5,6,7,8,9");
}

static const char *canon(const char *text)
{
    static char out[512];
    struct expr *e = parse_ok(text), *e2;
    struct re_buf b, b2;
    re_buf_init(&b, 8192);
    re_buf_init(&b2, 8192);
    CHECK_EQ_INT(expr_to_string(e, &b), 0);
    /* the canonical form parses back to itself */
    e2 = parse_ok(b.ptr);
    CHECK_EQ_INT(expr_to_string(e2, &b2), 0);
    CHECK_EQ_STR(b2.ptr, b.ptr);
    CHECK_EQ_INT(re_snprintf(out, sizeof(out), "%s", b.ptr), 0);
    re_buf_release(&b);
    re_buf_release(&b2);
    expr_free(e);
    expr_free(e2);
    return out;
}

static void test_to_string(void)
{
    CHECK_EQ_STR(canon(""), "none");
    CHECK_EQ_STR(canon("NULL"), "none");
    CHECK_EQ_STR(canon("/G/beta   OR\t/g/pilot"), "/g/beta or /g/pilot");
    CHECK_EQ_STR(canon("/g/stores/central AND NOT /M/ring/prod"),
                 "/g/stores/central and not /m/ring/prod");
    CHECK_EQ_STR(canon("(/g/a and /g/b) and /g/c"), "/g/a and /g/b and /g/c");
    CHECK_EQ_STR(canon("/g/a or (/g/b or /g/c)"), "/g/a or /g/b or /g/c");
    CHECK_EQ_STR(canon("/g/a and (/g/b or /g/c)"), "/g/a and (/g/b or /g/c)");
    CHECK_EQ_STR(canon("/g/a or (/g/b and /g/c)"), "/g/a or /g/b and /g/c");
    CHECK_EQ_STR(canon("(/g/a or /g/b) and not (/g/c or /m/k/v/w)"),
                 "(/g/a or /g/b) and not (/g/c or /m/k/v/w)");
    CHECK_EQ_STR(canon("not (/g/a and /g/b)"), "not (/g/a and /g/b)");
    CHECK_EQ_STR(canon("not not /c/x"), "/c/x");
    CHECK_EQ_STR(canon("not (not /c/x)"), "/c/x");
    CHECK_EQ_STR(canon("not(not(not /c/x))"), "not /c/x");
    CHECK_EQ_STR(canon("((/c/x))"), "/c/x");
    CHECK_EQ_STR(canon("/n/pos"), "/n/pos");

    /* a bounded buffer that is too small says so */
    struct expr *e = parse_ok("/g/stores/central and not /m/ring/prod");
    struct re_buf b;
    re_buf_init(&b, 10);
    CHECK_EQ_INT(expr_to_string(e, &b), -RE_ETOOBIG);
    re_buf_release(&b);
    expr_free(e);
}

static int collect(void *ctx, char kind, const char *a, const char *b)
{
    struct re_buf *out = ctx;
    CHECK_EQ_INT(re_buf_printf(out, "%s%c:%s%s%s", out->len ? " " : "", kind, a,
                               b ? "=" : "", b ? b : ""), 0);
    return 0;
}

static int stop_at_meta(void *ctx, char kind, const char *a, const char *b)
{
    int *seen = ctx;
    (*seen)++;
    return kind == EXPR_META ? 42 : 0;
}

static void test_foreach(void)
{
    struct expr *e = parse_ok("/g/stores/a and (/m/k/v/w or not /c/x) or /n/ns or /G/b");
    struct re_buf b;
    int seen = 0;
    re_buf_init(&b, 1024);
    CHECK_EQ_INT(expr_foreach_term(e, collect, &b), 0);
    CHECK_EQ_STR(b.ptr, "g:/stores/a m:k=v/w c:x n:ns g:/b");
    CHECK_EQ_INT(expr_foreach_term(e, stop_at_meta, &seen), 42);
    CHECK_EQ_INT(seen, 2);
    re_buf_release(&b);
    expr_free(e);

    e = parse_ok("none");
    seen = 0;
    CHECK_EQ_INT(expr_foreach_term(e, stop_at_meta, &seen), 0);
    CHECK_EQ_INT(seen, 0);
    expr_free(e);
}

static void test_eval_errors(void)
{
    struct expr *e = parse_ok("/c/x or /g/beta");
    struct bitset out, small;
    struct expr_resolver r = fake;

    CHECK_EQ_INT(bitset_init(&out, FLEET_N), 0);
    CHECK_EQ_INT(bitset_init(&small, FLEET_N - 1), 0);
    /* a resolver's error comes back and the output is cleared */
    fctx.fail_with = -RE_EDB;
    CHECK_EQ_INT(expr_eval(&out, e, &fake), -RE_EDB);
    CHECK(bitset_empty(&out));
    fctx.fail_with = 0;
    /* the output must be sized for the fleet */
    CHECK_EQ_INT(expr_eval(&small, e, &fake), -RE_EINVAL);
    /* a missing callback is unsupported, not an empty set */
    r.group = NULL;
    CHECK_EQ_INT(expr_eval(&out, e, &r), -RE_EUNSUPP);
    bitset_release(&out);
    bitset_release(&small);
    expr_free(e);
}

static void test_eval_short_circuit(void)
{
    struct expr *e = parse_ok("/c/nobody and /g/stores and not /m/ring/prod");
    struct bitset out;
    CHECK_EQ_INT(bitset_init(&out, FLEET_N), 0);
    fctx.calls = 0;
    CHECK_EQ_INT(expr_eval(&out, e, &fake), 0);
    CHECK(bitset_empty(&out));
    CHECK_EQ_INT(fctx.calls, 1);
    bitset_release(&out);
    expr_free(e);
}

/* Random token soup: whatever parses must print canonically, parse back, and select the same. */
static void test_random_roundtrip(void)
{
    static const char *toks[] = { "/c/x", "/c/store-1", "/g/beta", "/g/stores/central", "/m/ring/prod",
                                  "/n/pos", "and", "or", "not", "(", ")", "AND", "Not", "none",
                                  "/x/", "/g/a//b", "/c/A_B" };
    unsigned long long seed = 0x9e3779b97f4a7c15ULL;
    int parsed = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char text[512], again[64];
        size_t n = 0, ntok;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        ntok = 1 + (size_t)(seed >> 59);
        for (size_t k = 0; k < ntok; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *t = toks[(seed >> 33) % (sizeof(toks) / sizeof(toks[0]))];
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s", k ? " " : "", t);
        }
        struct expr *e = NULL;
        struct expr_error err = { 0, "" };
        int r = expr_parse(&e, text, n, &err);
        if (r != 0) {
            CHECK_EQ_INT(r, -RE_EPARSE);
            CHECK(err.pos <= n);
            CHECK(strstr(err.message, "position") != NULL);
            continue;
        }
        parsed++;
        struct re_buf b;
        re_buf_init(&b, 8192);
        CHECK_EQ_INT(expr_to_string(e, &b), 0);
        CHECK_EQ_INT(re_snprintf(again, sizeof(again), "%s", eval_list(text)), 0);
        CHECK_EQ_STR(eval_list(b.ptr), again);
        CHECK_EQ_STR(canon(b.ptr), b.ptr);
        re_buf_release(&b);
        expr_free(e);
    }
    CHECK(parsed > 100);
}

/* ---- timing over 100,000 clusters (printed, not asserted) ---- */

#define BIG_N 100000

struct big_fleet {
    unsigned char region[BIG_N];   /* 0 = central, 1 = east, 2 = west, 3 = south */
    unsigned char prod[BIG_N];
};

static int big_group(void *vctx, const char *path, struct bitset *out)
{
    struct big_fleet *f = vctx;
    int region = strcmp(path, "/stores/central") == 0 ? 0 : strcmp(path, "/stores/east") == 0 ? 1 : -1;
    if (region < 0)
        return 0;
    for (size_t i = 0; i < BIG_N; i++)
        if (f->region[i] == region)
            bitset_set(out, i);
    return 0;
}

static int big_meta(void *vctx, const char *key, const char *value, struct bitset *out)
{
    struct big_fleet *f = vctx;
    if (strcmp(key, "ring") != 0 || strcmp(value, "prod") != 0)
        return 0;
    for (size_t i = 0; i < BIG_N; i++)
        if (f->prod[i])
            bitset_set(out, i);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_timing_100k(void)
{
    static struct big_fleet f;
    struct expr_resolver r = { &f, BIG_N, big_group, big_meta, NULL, NULL };
    const char *text = "/g/stores/central and not /m/ring/prod";
    struct expr *e;
    struct bitset out;
    size_t expect = 0;
    double t0, t1, t2;
    int runs = 20;

    for (size_t i = 0; i < BIG_N; i++) {
        f.region[i] = (unsigned char)(i % 4);
        f.prod[i] = (i % 3) != 0;
        expect += f.region[i] == 0 && !f.prod[i];
    }
    t0 = now_ms();
    e = parse_ok(text);
    t1 = now_ms();
    CHECK_EQ_INT(bitset_init(&out, BIG_N), 0);
    for (int k = 0; k < runs; k++)
        CHECK_EQ_INT(expr_eval(&out, e, &r), 0);
    t2 = now_ms();
    CHECK_EQ_INT(bitset_count(&out), expect);
    fprintf(stderr, "# timing: parse '%s' %.3f ms; eval over %d clusters %.3f ms "
            "(mean of %d, resolver scans included), %zu selected\n",
            text, t1 - t0, BIG_N, (t2 - t1) / runs, runs, bitset_count(&out));
    bitset_release(&out);
    expr_free(e);
}

TEST_MAIN(T(test_eval_terms), T(test_eval_operators), T(test_eval_precedence), T(test_none),
          T(test_case_insensitive), T(test_whitespace_and_parens), T(test_syntax_errors),
          T(test_long_names), T(test_limits), T(test_to_string), T(test_foreach),
          T(test_eval_errors), T(test_eval_short_circuit), T(test_random_roundtrip), T(test_timing_100k))
