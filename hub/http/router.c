/* router.c - matches method + path against the route tables, and names roles.
 *
 * Patterns are matched segment by segment ('/'-separated):
 *   literal        must be equal
 *   {name}         one non-empty segment, captured into x->params (raw, not
 *                  percent-decoded); literal text around it in the same
 *                  segment must match too: "{cluster}.git" captures "store-1"
 *                  from "store-1.git"
 *   {name*}        only as the last segment: the rest of the path, possibly
 *                  empty or holding further '/'
 * When several routes match, the one with the most literal segments wins,
 * then the first in table order. */
#include <string.h>
#include "routes.h"

#define MAX_PARAMS (sizeof(((struct http_exchange *)0)->params) / sizeof(struct re_str))

struct match {
    struct re_str params[MAX_PARAMS];
    size_t n_params;
    int literals;
};

/* Next segment of s starting at *pos (after a '/'); false when none left. */
static bool next_seg(struct re_str s, size_t *pos, struct re_str *seg)
{
    size_t i = *pos;
    if (i > s.len)
        return false;
    const char *slash = memchr(s.ptr + i, '/', s.len - i);
    size_t end = slash ? (size_t)(slash - s.ptr) : s.len;
    *seg = (struct re_str){ s.ptr + i, end - i };
    *pos = end + 1;
    return true;
}

static bool match_pattern(const char *pattern, struct re_str path, struct match *m)
{
    struct re_str pat = re_str_c(pattern);
    size_t pp = 1, sp = 1;
    struct re_str ps, ss;

    m->n_params = 0;
    m->literals = 0;
    if (pat.len == 0 || pat.ptr[0] != '/' || path.len == 0 || path.ptr[0] != '/')
        return false;
    while (next_seg(pat, &pp, &ps)) {
        const char *open = memchr(ps.ptr, '{', ps.len);
        const char *close = open ? memchr(open, '}', ps.len - (size_t)(open - ps.ptr)) : NULL;
        if (!open || !close) {
            if (!next_seg(path, &sp, &ss) || !re_str_eq(ps, ss))
                return false;
            m->literals++;
            continue;
        }
        if (m->n_params >= MAX_PARAMS)
            return false;
        bool rest = close > open + 1 && close[-1] == '*';
        if (rest) {
            /* the remainder of the path, from this segment on */
            if (pp <= pat.len)
                return false;                /* {x*} must be last */
            struct re_str r = sp <= path.len ? (struct re_str){ path.ptr + sp, path.len - sp }
                                             : (struct re_str){ path.ptr + path.len, 0 };
            m->params[m->n_params++] = r;
            sp = path.len + 1;
            continue;
        }
        if (!next_seg(path, &sp, &ss))
            return false;
        size_t pre = (size_t)(open - ps.ptr);
        size_t post = ps.len - (size_t)(close + 1 - ps.ptr);
        if (ss.len <= pre + post || memcmp(ss.ptr, ps.ptr, pre) != 0 ||
            memcmp(ss.ptr + ss.len - post, close + 1, post) != 0)
            return false;
        m->params[m->n_params++] = (struct re_str){ ss.ptr + pre, ss.len - pre - post };
    }
    /* the path must be used up as well */
    return sp > path.len;
}

const struct route *routes_match(const struct route *const *tables, struct http_exchange *x,
                                     int *path_matched)
{
    const struct route *best = NULL;
    struct match m, bm;
    int pm = 0;

    for (size_t t = 0; tables && tables[t]; t++) {
        for (const struct route *r = tables[t]; r->method; r++) {
            if (!match_pattern(r->pattern, x->req.path, &m))
                continue;
            if (!x->req.method_name || strcmp(r->method, x->req.method_name) != 0) {
                pm = 1;
                continue;
            }
            if (!best || m.literals > bm.literals) {
                best = r;
                bm = m;
            }
        }
    }
    if (path_matched)
        *path_matched = best ? 1 : pm;
    if (!best) {
        x->n_params = 0;
        return NULL;
    }
    memcpy(x->params, bm.params, sizeof(bm.params[0]) * bm.n_params);
    x->n_params = bm.n_params;
    x->route = best->pattern;
    return best;
}
