/*
 * expr.h - the Res-Edge selection language ("included clusters expression"):
 * parse it once, then evaluate it over the whole fleet as bit sets.
 *
 * Grammar (keywords case-insensitive, tokens separated by whitespace; a term
 * runs until whitespace or a parenthesis):
 *
 *   expression := "" | "none" | "null" | or
 *   or         := and { "or" and }
 *   and        := unary { "and" unary }
 *   unary      := { "not" } primary
 *   primary    := "(" or ")" | term
 *   term       := /g/<group path>      the group and all its descendants' clusters
 *               | /m/<key>/<value>     clusters whose metadata has key = value
 *               | /c/<cluster name>    one cluster (a DNS-1123 label)
 *               | /n/<namespace>       clusters the namespace is deployed to
 *
 * Precedence: not > and > or. An empty (or all-whitespace) expression, or one
 * that is exactly `none` or `null`, selects nothing; `none`/`null` may not be
 * combined with anything else. Term prefixes are accepted in either case and
 * canonicalised to lowercase.
 *
 * Term rules: a group path has one or more non-empty segments, none of them
 * `.` or `..`, and no control characters (`/g/stores/central/tx`; the resolver
 * receives "/stores/central/tx"). A metadata term's key is the text up to the
 * next '/', its value everything after it (so the value may contain '/'); both
 * non-empty. Cluster and namespace names are DNS-1123 labels (1-63 characters
 * of a-z, 0-9, '-', beginning and ending with a letter or digit). Values
 * containing whitespace or parentheses cannot be written in an expression.
 *
 * Limits: EXPR_MAX_LEN bytes of text, EXPR_MAX_DEPTH nested parentheses,
 * EXPR_MAX_TERMS terms. Runs of `not` are folded (`not not x` is `x`).
 */
#ifndef RE_EXPR_H
#define RE_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include "bitset.h"
#include "buf.h"

#define EXPR_MAX_LEN   4096
#define EXPR_MAX_DEPTH 64
#define EXPR_MAX_TERMS 256

/* Term kinds passed to callbacks. */
#define EXPR_GROUP     'g'
#define EXPR_META      'm'
#define EXPR_CLUSTER   'c'
#define EXPR_NAMESPACE 'n'

struct expr;

/*
 * A syntax error: the 0-based byte position in the text and a message a
 * person can act on, which includes the position, e.g.
 *   "expected ')' at position 17"
 *   "unknown prefix '/x/' at position 0 (expected /g/, /m/, /c/ or /n/)"
 */
struct expr_error {
    size_t pos;
    char message[160];
};

/*
 * Parse text[0..len) (need not be NUL-terminated). On success *out owns a new
 * expression (free with expr_free). On failure *out is untouched, *err (if not
 * NULL) is filled in, and the return is:
 *   -RE_EPARSE   syntax error (including an invalid term)
 *   -RE_ETOOBIG  text longer than EXPR_MAX_LEN, or more than EXPR_MAX_TERMS terms
 *   -RE_EDEPTH   parentheses nested deeper than EXPR_MAX_DEPTH
 *   -RE_ENOMEM
 */
int expr_parse(struct expr **out, const char *text, size_t len, struct expr_error *err);
void expr_free(struct expr *e);                         /* NULL-safe */

/* True when the expression selects nothing by definition (empty, none, null). */
bool expr_is_none(const struct expr *e);
/* Number of terms in the expression (0 for none). */
size_t expr_term_count(const struct expr *e);

/*
 * What the evaluator asks of its caller: the set of clusters each term names,
 * as bits over a dense cluster index 0..n_clusters-1. Each callback receives
 * `out` already cleared and sized n_clusters, sets the bits of the clusters
 * the term names, and returns 0 or a negative RE code (which aborts the
 * evaluation and is returned by expr_eval). Something that does not exist (an
 * unknown group, key, cluster or namespace) is the empty set, not an error.
 *   group:   the group at `path` ("/stores/central") and all its descendants
 *   meta:    clusters whose metadata has key = value
 *   cluster: the cluster called `name`
 *   ns:      clusters the namespace `name` is deployed to
 */
struct expr_resolver {
    void *ctx;
    size_t n_clusters;
    int (*group)(void *ctx, const char *path, struct bitset *out);
    int (*meta)(void *ctx, const char *key, const char *value, struct bitset *out);
    int (*cluster)(void *ctx, const char *name, struct bitset *out);
    int (*ns)(void *ctx, const char *name, struct bitset *out);
};

/*
 * Evaluate e into out, which must be initialised with n == r->n_clusters
 * (-RE_EINVAL otherwise). Returns 0, -RE_ENOMEM, or a resolver's error; on
 * failure out is cleared. `a and not b` is computed without complementing b,
 * and an `and` stops asking the resolver once its result is empty.
 */
int expr_eval(struct bitset *out, const struct expr *e, const struct expr_resolver *r);

/*
 * Evaluate e for one cluster: `test` says whether that cluster is in the set
 * a term names (kind is EXPR_GROUP.., b is the metadata value for EXPR_META
 * and NULL otherwise) by writing *in and returning 0, or returns a negative
 * RE code, which is passed back. *out written only on success.
 */
int expr_match(bool *out, const struct expr *e,
               int (*test)(void *ctx, char kind, const char *a, const char *b, bool *in),
               void *ctx);

/*
 * Call fn for every term in text order (to learn which groups, metadata keys,
 * clusters and namespaces an expression depends on). kind is EXPR_GROUP..;
 * a is the group path ("/stores/central"), metadata key, cluster or namespace
 * name; b is the metadata value for EXPR_META and NULL otherwise. A non-zero
 * return from fn stops the walk and is returned; otherwise 0.
 */
int expr_foreach_term(const struct expr *e,
                      int (*fn)(void *ctx, char kind, const char *a, const char *b),
                      void *ctx);

/*
 * Append the canonical text form to out: lowercase keywords and prefixes,
 * single spaces, only the parentheses precedence needs, nested runs of the
 * same operator flattened, `none` for the empty selection. Parsing the result
 * gives the same expression. Returns 0, -RE_ETOOBIG or -RE_ENOMEM (out may
 * then hold a partial text).
 */
int expr_to_string(const struct expr *e, struct re_buf *out);

#endif
