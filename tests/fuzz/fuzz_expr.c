/* fuzz_expr.c - the selection language: expr_parse on arbitrary text; for
 * what parses, expr_to_string must give text that parses to the same
 * canonical form, and the set evaluator (expr_eval) must agree with the
 * per-cluster evaluator (expr_match) and with the re-parsed expression. */
#include <string.h>
#include "buf.h"
#include "error.h"
#include "fuzz.h"
#include "inventory/bitset.h"
#include "inventory/expr.h"

#define N_CLUSTERS 16

/* A made-up fleet: whether cluster i is in a term's set is a bit of a hash
 * of the term, so every term names a stable, arbitrary subset. */
static uint32_t term_bits(char kind, const char *a, const char *b)
{
    uint32_t h = 2166136261u ^ (uint8_t)kind;
    for (const char *p = a; p && *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const char *p = b; p && *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h ^ (h >> 16);
}

static int fill(struct bitset *out, uint32_t bits)
{
    for (size_t i = 0; i < N_CLUSTERS; i++)
        if ((bits >> i) & 1)
            bitset_set(out, i);
    return 0;
}
static int r_group(void *ctx, const char *path, struct bitset *out)
{
    (void)ctx;
    FUZZ_CHECK(path[0] == '/');
    return fill(out, term_bits(EXPR_GROUP, path, NULL));
}
static int r_meta(void *ctx, const char *key, const char *value, struct bitset *out)
{
    (void)ctx;
    FUZZ_CHECK(key[0] && value[0]);
    return fill(out, term_bits(EXPR_META, key, value));
}
static int r_cluster(void *ctx, const char *name, struct bitset *out)
{
    (void)ctx;
    FUZZ_CHECK(name[0] && strlen(name) <= 63);
    return fill(out, term_bits(EXPR_CLUSTER, name, NULL));
}
static int r_ns(void *ctx, const char *name, struct bitset *out)
{
    (void)ctx;
    FUZZ_CHECK(name[0] && strlen(name) <= 63);
    return fill(out, term_bits(EXPR_NAMESPACE, name, NULL));
}
static const struct expr_resolver resolver = {
    .n_clusters = N_CLUSTERS, .group = r_group, .meta = r_meta,
    .cluster = r_cluster, .ns = r_ns,
};

static int test_one(void *ctx, char kind, const char *a, const char *b, bool *in)
{
    size_t i = *(const size_t *)ctx;
    *in = (term_bits(kind, a, b) >> i) & 1;
    return 0;
}

static int count_term(void *ctx, char kind, const char *a, const char *b)
{
    (void)kind; (void)a; (void)b;
    (*(size_t *)ctx)++;
    return 0;
}

/* The set e selects; aborts on evaluator disagreement. */
static uint32_t eval_all(const struct expr *e)
{
    struct bitset set;
    uint32_t bits = 0;
    FUZZ_CHECK(bitset_init(&set, N_CLUSTERS) == 0);
    FUZZ_CHECK(expr_eval(&set, e, &resolver) == 0);
    for (size_t i = 0; i < N_CLUSTERS; i++) {
        bool in = false;
        FUZZ_CHECK(expr_match(&in, e, test_one, &i) == 0);
        FUZZ_CHECK(in == bitset_test(&set, i));
        if (in)
            bits |= 1u << i;
    }
    if (expr_is_none(e))
        FUZZ_CHECK(bits == 0);
    bitset_release(&set);
    return bits;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct expr *e = NULL, *e2 = NULL;
    struct expr_error err;
    struct re_buf s1, s2;
    size_t terms = 0;
    int r;

    re_buf_init(&s1, 1 << 20);
    re_buf_init(&s2, 1 << 20);
    memset(&err, 0, sizeof(err));
    r = expr_parse(&e, (const char *)data, size, &err);
    if (r < 0) {
        FUZZ_CHECK(r == -RE_EPARSE || r == -RE_ETOOBIG || r == -RE_EDEPTH || r == -RE_ENOMEM);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        FUZZ_CHECK(err.pos <= size);
        goto out;
    }
    FUZZ_CHECK(size <= EXPR_MAX_LEN);
    FUZZ_CHECK(expr_term_count(e) <= EXPR_MAX_TERMS);
    FUZZ_CHECK(expr_foreach_term(e, count_term, &terms) == 0);
    FUZZ_CHECK(terms == expr_term_count(e));
    uint32_t bits = eval_all(e);

    /* Canonical text round trip: parse(to_string(e)) prints the same. */
    r = expr_to_string(e, &s1);
    if (r == -RE_ETOOBIG)
        goto out;
    FUZZ_CHECK(r == 0);
    r = expr_parse(&e2, s1.ptr ? s1.ptr : "", s1.len, &err);
    if (r == -RE_ETOOBIG && s1.len > EXPR_MAX_LEN)
        goto out;                  /* added parentheses can push it over */
    if (r != 0)
        fprintf(stderr, "canonical form '%s' does not parse: %s\n", s1.ptr, err.message);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(expr_to_string(e2, &s2) == 0);
    if (s1.len != s2.len || memcmp(s1.ptr, s2.ptr, s1.len) != 0)
        fprintf(stderr, "'%s' -> '%s'\n", s1.ptr, s2.ptr);
    FUZZ_CHECK(s1.len == s2.len && memcmp(s1.ptr, s2.ptr, s1.len) == 0);
    FUZZ_CHECK(expr_term_count(e2) == expr_term_count(e));
    FUZZ_CHECK(expr_is_none(e2) == expr_is_none(e));
    FUZZ_CHECK(eval_all(e2) == bits);
out:
    expr_free(e);
    expr_free(e2);
    re_buf_release(&s1);
    re_buf_release(&s2);
    return 0;
}
