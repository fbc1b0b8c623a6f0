/* expr.c - parser and bit-set evaluator for the Res-Edge selection language. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "error.h"
#include "expr.h"
#include "validate.h"

enum node_kind { N_TERM, N_NOT, N_AND, N_OR };

/* Children are a singly linked list (first/last/next) so and/or are n-ary. */
struct node {
    enum node_kind kind;
    char tk;              /* EXPR_GROUP.. for N_TERM */
    int first, last, next;
    const char *a, *b;    /* into expr->pool */
};

struct expr {
    struct node *nodes;
    size_t n_nodes, cap_nodes;
    int root;             /* -1: selects nothing */
    size_t n_terms;
    char *pool;           /* term strings, NUL-separated */
    size_t pool_len;
};

enum tok_kind { T_END, T_LP, T_RP, T_AND, T_OR, T_NOT, T_NONE, T_TERM, T_BAD };

struct tok {
    enum tok_kind kind;
    size_t pos, len;
};

struct parser {
    const char *s;
    size_t len, pos;
    struct tok cur;
    struct expr *e;
    struct expr_error *err;
    int depth;
};

#define SHOW_MAX 32   /* longest piece of user text quoted in a message */

static int fail(struct parser *p, int code, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, int code, size_t pos, const char *fmt, ...)
{
    if (p->err) {
        va_list ap;
        va_start(ap, fmt);
        p->err->pos = pos;
        /* vsnprintf bounds the write; a cut-off message is still useful. */
        if (vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap) < 0)
            p->err->message[0] = '\0';
        va_end(ap);
    }
    return code;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_ctl(unsigned char c)
{
    return (c < 0x20 && !is_space(c)) || c == 0x7f;
}

static bool tok_is(const struct parser *p, const char *word)
{
    size_t n = strlen(word);
    return p->cur.len == n && strncasecmp(p->s + p->cur.pos, word, n) == 0;
}

/* Quote the current token for a message: 'text' (cut at SHOW_MAX) or end of expression. */
static int show_len(const struct tok *t)
{
    return (int)(t->len > SHOW_MAX ? SHOW_MAX : t->len);
}

static int lex(struct parser *p)
{
    const char *s = p->s;
    size_t i = p->pos, start;

    while (i < p->len && is_space((unsigned char)s[i]))
        i++;
    p->cur.pos = i;
    if (i >= p->len) {
        p->cur.kind = T_END;
        p->cur.len = 0;
        p->pos = i;
        return 0;
    }
    if (s[i] == '(' || s[i] == ')') {
        p->cur.kind = s[i] == '(' ? T_LP : T_RP;
        p->cur.len = 1;
        p->pos = i + 1;
        return 0;
    }
    start = i;
    while (i < p->len && !is_space((unsigned char)s[i]) && s[i] != '(' && s[i] != ')') {
        if (is_ctl((unsigned char)s[i]))
            return fail(p, -RE_EPARSE, i, "invalid character 0x%02x at position %zu",
                        (unsigned char)s[i], i);
        i++;
    }
    p->cur.len = i - start;
    p->pos = i;
    if (tok_is(p, "and"))
        p->cur.kind = T_AND;
    else if (tok_is(p, "or"))
        p->cur.kind = T_OR;
    else if (tok_is(p, "not"))
        p->cur.kind = T_NOT;
    else if (tok_is(p, "none") || tok_is(p, "null"))
        p->cur.kind = T_NONE;
    else if (s[start] == '/')
        p->cur.kind = T_TERM;
    else
        p->cur.kind = T_BAD;
    return 0;
}

static int new_node(struct parser *p, enum node_kind kind, int *out)
{
    struct expr *e = p->e;
    if (e->n_nodes == e->cap_nodes) {
        size_t cap = e->cap_nodes ? e->cap_nodes * 2 : 8;
        struct node *n = realloc(e->nodes, cap * sizeof(*n));
        if (!n)
            return -RE_ENOMEM;
        e->nodes = n;
        e->cap_nodes = cap;
    }
    e->nodes[e->n_nodes] = (struct node){ .kind = kind, .first = -1, .last = -1, .next = -1 };
    *out = (int)e->n_nodes++;
    return 0;
}

static void append_child(struct expr *e, int parent, int child)
{
    struct node *pn = &e->nodes[parent];
    e->nodes[child].next = -1;
    if (pn->last < 0)
        pn->first = child;
    else
        e->nodes[pn->last].next = child;
    pn->last = child;
}

/* Append child to an and/or node, splicing in the children of a same-kind child. */
static void append_flat(struct expr *e, int parent, int child)
{
    if (e->nodes[child].kind == e->nodes[parent].kind) {
        int c = e->nodes[child].first;
        while (c >= 0) {
            int next = e->nodes[c].next;
            append_child(e, parent, c);
            c = next;
        }
        return;
    }
    append_child(e, parent, child);
}

static char *pool_put(struct expr *e, const char *s, size_t n)
{
    char *d = e->pool + e->pool_len;
    memcpy(d, s, n);
    d[n] = '\0';
    e->pool_len += n + 1;
    return d;
}

static bool is_dns_label(const char *s, size_t n)
{
    return validate_dns_label((struct re_str){ s, n }, NULL) == 0;
}

static int check_group(struct parser *p, const char *s, size_t n, size_t pos)
{
    size_t i = 0;
    if (n == 0)
        return fail(p, -RE_EPARSE, pos, "expected a group path after '/g/' at position %zu", pos);
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != '/')
            j++;
        if (j == i)
            return fail(p, -RE_EPARSE, pos + i,
                        "empty group path segment at position %zu", pos + i);
        if ((j - i == 1 && s[i] == '.') || (j - i == 2 && s[i] == '.' && s[i + 1] == '.'))
            return fail(p, -RE_EPARSE, pos + i,
                        "invalid group path segment '%.*s' at position %zu",
                        (int)(j - i), s + i, pos + i);
        if (j == n)
            return 0;
        i = j + 1;
    }
}

static int check_label(struct parser *p, const char *what, char prefix,
                       const char *s, size_t n, size_t pos)
{
    if (n == 0)
        return fail(p, -RE_EPARSE, pos, "expected a %s name after '/%c/' at position %zu",
                    what, prefix, pos);
    if (!is_dns_label(s, n))
        return fail(p, -RE_EPARSE, pos,
                    "invalid %s name '%.*s%s' at position %zu (expected a DNS-1123 label: "
                    "a-z, 0-9 and '-', at most 63 characters)",
                    what, (int)(n > SHOW_MAX ? SHOW_MAX : n), s, n > SHOW_MAX ? "..." : "", pos);
    return 0;
}

/* The current token is a T_TERM: validate it and make its node. */
static int parse_term(struct parser *p, int *out)
{
    const char *s = p->s + p->cur.pos;
    size_t n = p->cur.len, pos = p->cur.pos;
    const char *rest = s + 3;
    size_t rlen = n >= 3 ? n - 3 : 0, rpos = pos + 3;
    char tk = n >= 3 && s[2] == '/' ? (char)(s[1] | 0x20) : 0;
    struct node *nd;
    int r, ni;

    if (tk != 'g' && tk != 'm' && tk != 'c' && tk != 'n') {
        /* Show the prefix the user wrote: up to its second '/', if it has one nearby. */
        size_t k = 1;
        while (k < n && k < SHOW_MAX && s[k] != '/')
            k++;
        if (k < n && s[k] == '/')
            k++;
        return fail(p, -RE_EPARSE, pos,
                    "unknown prefix '%.*s' at position %zu (expected /g/, /m/, /c/ or /n/)",
                    (int)k, s, pos);
    }
    if (p->e->n_terms >= EXPR_MAX_TERMS)
        return fail(p, -RE_ETOOBIG, pos, "more than %d terms at position %zu",
                    EXPR_MAX_TERMS, pos);

    const char *a = NULL, *b = NULL;
    switch (tk) {
    case 'g':
        if ((r = check_group(p, rest, rlen, rpos)) < 0)
            return r;
        a = pool_put(p->e, s + 2, rlen + 1);       /* keep the leading '/' */
        break;
    case 'm': {
        const char *slash = memchr(rest, '/', rlen);
        size_t klen;
        if (rlen == 0)
            return fail(p, -RE_EPARSE, rpos,
                        "expected a metadata key after '/m/' at position %zu", rpos);
        if (!slash)
            return fail(p, -RE_EPARSE, pos + n,
                        "expected '/' and a value after metadata key '%.*s' at position %zu",
                        (int)(rlen > SHOW_MAX ? SHOW_MAX : rlen), rest, pos + n);
        klen = (size_t)(slash - rest);
        if (klen == 0)
            return fail(p, -RE_EPARSE, rpos, "empty metadata key at position %zu", rpos);
        if (klen + 1 == rlen)
            return fail(p, -RE_EPARSE, pos + n,
                        "expected a value after metadata key '%.*s' at position %zu",
                        (int)(klen > SHOW_MAX ? SHOW_MAX : klen), rest, pos + n);
        a = pool_put(p->e, rest, klen);
        b = pool_put(p->e, slash + 1, rlen - klen - 1);
        break;
    }
    case 'c':
    case 'n':
        if ((r = check_label(p, tk == 'c' ? "cluster" : "namespace", tk, rest, rlen, rpos)) < 0)
            return r;
        a = pool_put(p->e, rest, rlen);
        break;
    }
    if ((r = new_node(p, N_TERM, &ni)) < 0)
        return r;
    nd = &p->e->nodes[ni];
    nd->tk = tk;
    nd->a = a;
    nd->b = b;
    p->e->n_terms++;
    *out = ni;
    return lex(p);
}

static int parse_or(struct parser *p, const char *after, int *out);

/* Report what stands where a term was expected; `after` names the token before it. */
static int expected_term(struct parser *p, const char *after)
{
    const struct tok *t = &p->cur;
    const char *txt = p->s + t->pos;

    switch (t->kind) {
    case T_NONE:
        return fail(p, -RE_EPARSE, t->pos,
                    "'%.*s' must be the whole expression at position %zu",
                    show_len(t), txt, t->pos);
    case T_BAD:
        return fail(p, -RE_EPARSE, t->pos,
                    "expected a term (/g/, /m/, /c/ or /n/), 'not' or '(' at position %zu, "
                    "found '%.*s'", t->pos, show_len(t), txt);
    case T_RP:
        if (!after)
            return fail(p, -RE_EPARSE, t->pos, "unbalanced ')' at position %zu", t->pos);
        break;
    case T_AND:
    case T_OR:
        if (!after)
            return fail(p, -RE_EPARSE, t->pos,
                        "unexpected '%.*s' at position %zu (expected a term, 'not' or '(')",
                        show_len(t), txt, t->pos);
        break;
    default:
        break;
    }
    return fail(p, -RE_EPARSE, t->pos, "expected a term after '%s' at position %zu",
                after ? after : "start", t->pos);
}

static int parse_primary(struct parser *p, const char *after, int *out)
{
    int r, inner = -1;
    size_t lp;

    if (p->cur.kind == T_TERM)
        return parse_term(p, out);
    if (p->cur.kind != T_LP)
        return expected_term(p, after);
    lp = p->cur.pos;
    if (++p->depth > EXPR_MAX_DEPTH)
        return fail(p, -RE_EDEPTH, lp, "parentheses nested deeper than %d at position %zu",
                    EXPR_MAX_DEPTH, lp);
    if ((r = lex(p)) < 0 || (r = parse_or(p, "(", &inner)) < 0)
        return r;
    if (p->cur.kind == T_END)
        return fail(p, -RE_EPARSE, p->cur.pos, "expected ')' at position %zu", p->cur.pos);
    if (p->cur.kind != T_RP)
        return fail(p, -RE_EPARSE, p->cur.pos,
                    "expected 'and', 'or' or ')' at position %zu, found '%.*s'",
                    p->cur.pos, show_len(&p->cur), p->s + p->cur.pos);
    p->depth--;
    *out = inner;
    return lex(p);
}

/* { not } primary, with runs of `not` folded: an even run cancels out. */
static int parse_unary(struct parser *p, const char *after, int *out)
{
    bool negate = false;
    int r, ni, child = -1;

    while (p->cur.kind == T_NOT) {
        negate = !negate;
        after = "not";
        if ((r = lex(p)) < 0)
            return r;
    }
    if ((r = parse_primary(p, after, &child)) < 0)
        return r;
    if (!negate) {
        *out = child;
        return 0;
    }
    if (p->e->nodes[child].kind == N_NOT) {     /* not (not x) */
        *out = p->e->nodes[child].first;
        return 0;
    }
    if ((r = new_node(p, N_NOT, &ni)) < 0)
        return r;
    append_child(p->e, ni, child);
    *out = ni;
    return 0;
}

/* One level of a left-to-right n-ary operator: sub { op sub }. */
static int parse_binary(struct parser *p, const char *after, enum tok_kind op,
                        enum node_kind kind, int *out)
{
    int r, first = -1, ni, child = -1;
    const char *opname = op == T_AND ? "and" : "or";

    r = op == T_AND ? parse_unary(p, after, &first) : parse_binary(p, after, T_AND, N_AND, &first);
    if (r < 0)
        return r;
    if (p->cur.kind != op) {
        *out = first;
        return 0;
    }
    if ((r = new_node(p, kind, &ni)) < 0)
        return r;
    append_flat(p->e, ni, first);
    while (p->cur.kind == op) {
        if ((r = lex(p)) < 0)
            return r;
        r = op == T_AND ? parse_unary(p, opname, &child)
                        : parse_binary(p, opname, T_AND, N_AND, &child);
        if (r < 0)
            return r;
        append_flat(p->e, ni, child);
    }
    *out = ni;
    return 0;
}

static int parse_or(struct parser *p, const char *after, int *out)
{
    return parse_binary(p, after, T_OR, N_OR, out);
}

static int parse_all(struct parser *p)
{
    int r, root = -1;

    if ((r = lex(p)) < 0)
        return r;
    if (p->cur.kind == T_END)
        return 0;
    if (p->cur.kind == T_NONE) {
        size_t npos = p->cur.pos;
        int nlen = show_len(&p->cur);
        if ((r = lex(p)) < 0)
            return r;
        if (p->cur.kind == T_END)
            return 0;
        return fail(p, -RE_EPARSE, p->cur.pos,
                    "expected end of expression after '%.*s' at position %zu",
                    nlen, p->s + npos, p->cur.pos);
    }
    if ((r = parse_or(p, NULL, &root)) < 0)
        return r;
    if (p->cur.kind == T_RP)
        return fail(p, -RE_EPARSE, p->cur.pos, "unbalanced ')' at position %zu", p->cur.pos);
    if (p->cur.kind != T_END)
        return fail(p, -RE_EPARSE, p->cur.pos,
                    "expected 'and' or 'or' at position %zu, found '%.*s'",
                    p->cur.pos, show_len(&p->cur), p->s + p->cur.pos);
    p->e->root = root;
    return 0;
}

int expr_parse(struct expr **out, const char *text, size_t len, struct expr_error *err)
{
    struct parser p = { .s = text ? text : "", .len = text ? len : 0, .err = err };
    struct expr *e = NULL;
    int r;

    if (p.len > EXPR_MAX_LEN)
        return fail(&p, -RE_ETOOBIG, EXPR_MAX_LEN,
                    "expression is longer than %d bytes", EXPR_MAX_LEN);
    e = calloc(1, sizeof(*e));
    if (!e)
        return -RE_ENOMEM;
    e->root = -1;
    /* Each term stores at most its own length (prefix dropped, NULs added). */
    e->pool = malloc(p.len + 1);
    if (!e->pool) {
        r = -RE_ENOMEM;
        goto out;
    }
    p.e = e;
    r = parse_all(&p);
    if (r < 0)
        goto out;
    *out = e;
    e = NULL;
out:
    if (r == -RE_ENOMEM && err)
        fail(&p, r, 0, "out of memory");
    expr_free(e);
    return r;
}

void expr_free(struct expr *e)
{
    if (!e)
        return;
    free(e->nodes);
    free(e->pool);
    free(e);
}

bool expr_is_none(const struct expr *e)
{
    return !e || e->root < 0;
}

size_t expr_term_count(const struct expr *e)
{
    return e ? e->n_terms : 0;
}

/* ---- evaluation over bit sets ---- */

static int eval_node(const struct expr *e, int ni, struct bitset *out,
                     const struct expr_resolver *r);

static int eval_term(const struct node *nd, struct bitset *out, const struct expr_resolver *r)
{
    bitset_clear(out);
    switch (nd->tk) {
    case 'g':
        return r->group ? r->group(r->ctx, nd->a, out) : -RE_EUNSUPP;
    case 'm':
        return r->meta ? r->meta(r->ctx, nd->a, nd->b, out) : -RE_EUNSUPP;
    case 'c':
        return r->cluster ? r->cluster(r->ctx, nd->a, out) : -RE_EUNSUPP;
    case 'n':
        return r->ns ? r->ns(r->ctx, nd->a, out) : -RE_EUNSUPP;
    }
    return -RE_EINVAL;
}

static int eval_and(const struct expr *e, const struct node *nd, struct bitset *out,
                    const struct expr_resolver *r)
{
    struct bitset tmp;
    int c, seed = -1, ret;

    /* Start from a positive operand so `not x` children become and-not, never a complement. */
    for (c = nd->first; c >= 0; c = e->nodes[c].next)
        if (e->nodes[c].kind != N_NOT) {
            seed = c;
            break;
        }
    if (seed >= 0)
        ret = eval_node(e, seed, out, r);
    else {
        bitset_fill(out);
        ret = 0;
    }
    if (ret < 0)
        return ret;
    if ((ret = bitset_init(&tmp, out->n)) < 0)
        return ret;
    for (c = nd->first; c >= 0 && ret == 0; c = e->nodes[c].next) {
        const struct node *cn = &e->nodes[c];
        if (c == seed)
            continue;
        if (bitset_empty(out))
            break;
        if (cn->kind == N_NOT) {
            ret = eval_node(e, cn->first, &tmp, r);
            if (ret == 0)
                bitset_andnot(out, &tmp);
        } else {
            ret = eval_node(e, c, &tmp, r);
            if (ret == 0)
                bitset_and(out, &tmp);
        }
    }
    bitset_release(&tmp);
    return ret;
}

static int eval_or(const struct expr *e, const struct node *nd, struct bitset *out,
                   const struct expr_resolver *r)
{
    struct bitset tmp;
    int c = nd->first, ret;

    if ((ret = eval_node(e, c, out, r)) < 0)
        return ret;
    if ((ret = bitset_init(&tmp, out->n)) < 0)
        return ret;
    for (c = e->nodes[c].next; c >= 0 && ret == 0; c = e->nodes[c].next) {
        ret = eval_node(e, c, &tmp, r);
        if (ret == 0)
            bitset_or(out, &tmp);
    }
    bitset_release(&tmp);
    return ret;
}

static int eval_node(const struct expr *e, int ni, struct bitset *out,
                     const struct expr_resolver *r)
{
    const struct node *nd = &e->nodes[ni];
    int ret;

    switch (nd->kind) {
    case N_TERM:
        return eval_term(nd, out, r);
    case N_NOT:
        if ((ret = eval_node(e, nd->first, out, r)) < 0)
            return ret;
        bitset_not(out);
        return 0;
    case N_AND:
        return eval_and(e, nd, out, r);
    case N_OR:
        return eval_or(e, nd, out, r);
    }
    return -RE_EINVAL;
}

int expr_eval(struct bitset *out, const struct expr *e, const struct expr_resolver *r)
{
    int ret;

    if (!out || !e || !r || out->n != r->n_clusters)
        return -RE_EINVAL;
    if (e->root < 0) {
        bitset_clear(out);
        return 0;
    }
    ret = eval_node(e, e->root, out, r);
    if (ret < 0)
        bitset_clear(out);
    return ret;
}

/* ---- evaluation for one cluster ---- */

struct match_ctx {
    int (*test)(void *ctx, char kind, const char *a, const char *b, bool *in);
    void *ctx;
};

static int match_node(const struct expr *e, int ni, const struct match_ctx *m, bool *out)
{
    const struct node *nd = &e->nodes[ni];
    bool v = false;
    int ret = 0;

    switch (nd->kind) {
    case N_TERM:
        ret = m->test(m->ctx, nd->tk, nd->a, nd->b, &v);
        break;
    case N_NOT:
        ret = match_node(e, nd->first, m, &v);
        v = !v;
        break;
    case N_AND:
    case N_OR:
        /* and: stop at the first false; or: stop at the first true. */
        v = nd->kind == N_AND;
        for (int c = nd->first; c >= 0; c = e->nodes[c].next) {
            bool cv;
            if ((ret = match_node(e, c, m, &cv)) < 0)
                break;
            if (cv != (nd->kind == N_AND)) {
                v = cv;
                break;
            }
        }
        break;
    }
    if (ret < 0)
        return ret;
    *out = v;
    return 0;
}

int expr_match(bool *out, const struct expr *e,
               int (*test)(void *ctx, char kind, const char *a, const char *b, bool *in),
               void *ctx)
{
    struct match_ctx m = { test, ctx };
    bool v = false;
    int ret;

    if (!e || !test)
        return -RE_EINVAL;
    if (e->root >= 0 && (ret = match_node(e, e->root, &m, &v)) < 0)
        return ret;
    *out = v;
    return 0;
}

/* ---- walking and printing ---- */

static int foreach_node(const struct expr *e, int ni,
                        int (*fn)(void *ctx, char kind, const char *a, const char *b),
                        void *ctx)
{
    const struct node *nd = &e->nodes[ni];
    int ret;

    if (nd->kind == N_TERM)
        return fn(ctx, nd->tk, nd->a, nd->b);
    for (int c = nd->first; c >= 0; c = e->nodes[c].next)
        if ((ret = foreach_node(e, c, fn, ctx)) != 0)
            return ret;
    return 0;
}

int expr_foreach_term(const struct expr *e,
                      int (*fn)(void *ctx, char kind, const char *a, const char *b),
                      void *ctx)
{
    if (!e || !fn)
        return -RE_EINVAL;
    return e->root < 0 ? 0 : foreach_node(e, e->root, fn, ctx);
}

static int print_node(const struct expr *e, int ni, struct re_buf *out)
{
    const struct node *nd = &e->nodes[ni];
    const char *sep = nd->kind == N_AND ? " and " : " or ";
    int ret = 0;

    switch (nd->kind) {
    case N_TERM:
        if (nd->tk == 'g')
            return re_buf_printf(out, "/g%s", nd->a);
        if (nd->tk == 'm')
            return re_buf_printf(out, "/m/%s/%s", nd->a, nd->b);
        return re_buf_printf(out, "/%c/%s", nd->tk, nd->a);
    case N_NOT: {
        bool paren = e->nodes[nd->first].kind != N_TERM;
        if ((ret = re_buf_append_str(out, paren ? "not (" : "not ")) < 0 ||
            (ret = print_node(e, nd->first, out)) < 0)
            return ret;
        return paren ? re_buf_append_str(out, ")") : 0;
    }
    case N_AND:
    case N_OR:
        for (int c = nd->first; c >= 0 && ret == 0; c = e->nodes[c].next) {
            /* Flattening leaves only an or inside an and needing parentheses. */
            bool paren = nd->kind == N_AND && e->nodes[c].kind == N_OR;
            if (c != nd->first && (ret = re_buf_append_str(out, sep)) < 0)
                break;
            if (paren && (ret = re_buf_append_str(out, "(")) < 0)
                break;
            if ((ret = print_node(e, c, out)) < 0)
                break;
            if (paren)
                ret = re_buf_append_str(out, ")");
        }
        return ret;
    }
    return -RE_EINVAL;
}

int expr_to_string(const struct expr *e, struct re_buf *out)
{
    if (!e || !out)
        return -RE_EINVAL;
    if (e->root < 0)
        return re_buf_append_str(out, "none");
    return print_node(e, e->root, out);
}
