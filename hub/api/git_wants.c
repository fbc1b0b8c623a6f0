/* git_wants.c - parses git upload-pack requests (protocol v2 and v0/v1) and
 * admits only the wants a cluster's own refs reach. See git_wants.h. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "git_wants.h"
#include "oid.h"
#include "validate.h"

#define PKT_MAX          65520      /* git's LARGE_PACKET_MAX */
#define CAPS_MAX         64
#define SHOW_MAX         64         /* bytes of a refused line quoted back */

int git_wants_pkt_next(struct re_str *in, struct re_str *line)
{
    unsigned n = 0;

    if (in->len < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = in->ptr[i];
        if (c >= '0' && c <= '9')
            n = n * 16 + (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            n = n * 16 + (unsigned)(c - 'a' + 10);
        else
            return -1;
    }
    if (n == 0 || n == 1) {
        in->ptr += 4;
        in->len -= 4;
        return n == 0 ? 1 : 2;
    }
    if (n < 5 || n > PKT_MAX || n > in->len)
        return -1;
    *line = (struct re_str){ in->ptr + 4, (size_t)n - 4 };
    if (line->len && line->ptr[line->len - 1] == '\n')
        line->len--;
    in->ptr += n;
    in->len -= n;
    return 0;
}

static int say(struct re_buf *why, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the reason into why (when there is room) and returns rc. */
static int say(struct re_buf *why, int rc, const char *fmt, ...)
{
    va_list ap;
    if (why) {
        re_buf_reset(why);
        va_start(ap, fmt);
        (void)re_buf_vprintf(why, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static bool printable(struct re_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] < 0x20 || (unsigned char)s.ptr[i] > 0x7e)
            return false;
    return true;
}

/* A line quoted in a message: printable and short, or a placeholder. */
static struct re_str shown(struct re_str s)
{
    if (!printable(s))
        return RE_STR_LIT("(binary)");
    return (struct re_str){ s.ptr, s.len > SHOW_MAX ? SHOW_MAX : s.len };
}

/* git's get_oid_hex stops after 40 digits and ignores the rest: demand
 * exactly 40 lowercase digits so that what is checked is what git reads. */
static bool is_oid_hex(struct re_str s)
{
    return s.len == RE_OID_HEX && re_oid_prefix_is(s.ptr);
}

static bool is_decimal(struct re_str s)
{
    if (!s.len || s.len > 20)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
    return true;
}

/* A ref name that cannot step out of the namespace git prefixes it with. */
static bool plain_ref(struct re_str s)
{
    if (!s.len || s.len > 255 || !printable(s) || s.ptr[s.len - 1] == '/')
        return false;
    if (!re_str_eq_c(s, "HEAD") && !re_str_startswith_c(s, "refs/"))
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i], d = i + 1 < s.len ? s.ptr[i + 1] : '\0';
        if (c == ' ' || c == '\\' || c == '~' || c == '^' || c == ':' || c == '?' ||
            c == '*' || c == '[' || (c == '.' && d == '.') || (c == '/' && d == '/') ||
            (c == '/' && d == '.') || (c == '@' && d == '{'))
            return false;
    }
    return true;
}

/* The fetch arguments git 2.39's upload-pack knows that need no check of
 * their own: negotiation and output format. Not here, so refused: filter,
 * deepen-not (git resolves its ref outside the namespace), packfile-uris. */
static bool plain_fetch_arg(struct re_str a)
{
    static const char *const flags[] = {
        "done", "thin-pack", "ofs-delta", "no-progress", "include-tag",
        "wait-for-done", "sideband-all", "deepen-relative",
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (re_str_eq_c(a, flags[i]))
            return true;
    return false;
}

static int add_want(struct git_wants *r, struct re_str oid, struct re_buf *why)
{
    if (r->n_wants + r->n_want_refs >= GIT_WANTS_MAX)
        return say(why, -RE_EDENIED, "more than %d wants in one fetch", GIT_WANTS_MAX);
    if (!is_oid_hex(oid))
        return say(why, -RE_EPARSE, "want: expected 40 lowercase hex digits, got '%.*s'",
                   (int)shown(oid).len, shown(oid).ptr);
    r->wants[r->n_wants++] = oid;
    return 0;
}

static int fetch_arg(struct git_wants *r, struct re_str a, struct re_buf *why)
{
    struct re_str v;

    if (re_str_startswith_c(a, "want "))
        return add_want(r, (struct re_str){ a.ptr + 5, a.len - 5 }, why);
    if (re_str_startswith_c(a, "want-ref ")) {
        v = (struct re_str){ a.ptr + 9, a.len - 9 };
        if (r->n_wants + r->n_want_refs >= GIT_WANTS_MAX)
            return say(why, -RE_EDENIED, "more than %d wants in one fetch", GIT_WANTS_MAX);
        if (!plain_ref(v))
            return say(why, -RE_EDENIED, "want-ref '%.*s': not a ref name of this repository",
                       (int)shown(v).len, shown(v).ptr);
        r->want_refs[r->n_want_refs++] = v;
        return 0;
    }
    if (re_str_startswith_c(a, "have ") || re_str_startswith_c(a, "shallow ")) {
        size_t k = a.ptr[0] == 'h' ? 5 : 8;
        if (!is_oid_hex((struct re_str){ a.ptr + k, a.len - k }))
            return say(why, -RE_EPARSE, "%.*s: expected 40 lowercase hex digits",
                       (int)(k - 1), a.ptr);
        return 0;
    }
    if (re_str_startswith_c(a, "deepen ") || re_str_startswith_c(a, "deepen-since ")) {
        size_t k = a.ptr[6] == ' ' ? 7 : 13;
        if (!is_decimal((struct re_str){ a.ptr + k, a.len - k }))
            return say(why, -RE_EPARSE, "%.*s: expected a number", (int)(k - 1), a.ptr);
        return 0;
    }
    if (plain_fetch_arg(a))
        return 0;
    return say(why, -RE_EDENIED, "fetch argument '%.*s' is not served by this hub",
               (int)shown(a).len, shown(a).ptr);
}

static int command(struct git_wants *r, struct re_str line, struct re_buf *why)
{
    struct re_str name;

    if (!re_str_startswith_c(line, "command="))
        return say(why, -RE_EPARSE, "the request does not start with command=");
    name = (struct re_str){ line.ptr + 8, line.len - 8 };
    if (re_str_eq_c(name, "fetch"))
        r->command = GIT_WANTS_FETCH;
    else if (re_str_eq_c(name, "ls-refs"))
        r->command = GIT_WANTS_LS_REFS;
    else
        return say(why, -RE_EDENIED, "command '%.*s' is not served by this hub",
                   (int)shown(name).len, shown(name).ptr);
    return 0;
}

int git_wants_parse_v2(struct git_wants *out, struct re_str body, struct re_buf *why)
{
    struct git_wants *r = calloc(1, sizeof(*r));      /* ~8 KB: not on the stack */
    size_t total = body.len, n_caps = 0;
    struct re_str line;
    int k, rc = 0;

    if (!r)
        return say(why, -RE_ENOMEM, "out of memory");
    k = git_wants_pkt_next(&body, &line);
    if (k == 1 && body.len == 0) {
        r->command = GIT_WANTS_EMPTY;
        goto out;
    }
    if (k != 0) {
        rc = say(why, -RE_EPARSE, "malformed pkt-line at byte 0");
        goto out;
    }
    if ((rc = command(r, line, why)) < 0)
        goto out;
    while ((k = git_wants_pkt_next(&body, &line)) == 0) {       /* capabilities: git checks */
        if (++n_caps > CAPS_MAX || !printable(line)) {
            rc = say(why, -RE_EPARSE, "bad capability line at byte %zu", total - body.len);
            goto out;
        }
    }
    if (k == 2) {
        while ((k = git_wants_pkt_next(&body, &line)) == 0) {   /* arguments */
            if (r->command == GIT_WANTS_FETCH)
                rc = fetch_arg(r, line, why);
            else if (!printable(line))      /* ls-refs: namespaced by git */
                rc = say(why, -RE_EPARSE, "bad ls-refs argument at byte %zu", total - body.len);
            if (rc < 0)
                goto out;
        }
    }
    if (k != 1)
        rc = say(why, -RE_EPARSE, "malformed pkt-line at byte %zu", total - body.len);
    else if (body.len)
        rc = say(why, -RE_EPARSE, "%zu bytes after the request's flush-pkt", body.len);
out:
    if (rc == 0)
        *out = *r;
    free(r);
    return rc;
}

/* The want of a v0 line: git takes the 40 digits after "want " and reads
 * what follows as capabilities; demand a space there so nothing hides. */
static int v0_want(struct git_wants *r, struct re_str line, struct re_buf *why)
{
    struct re_str oid = { line.ptr + 5, line.len - 5 };

    if (oid.len > GIT_OID_HEXSZ && oid.ptr[GIT_OID_HEXSZ] == ' ')
        oid.len = GIT_OID_HEXSZ;
    return add_want(r, oid, why);
}

int git_wants_parse_v0(struct git_wants *out, struct re_str body, struct re_buf *why)
{
    struct git_wants *r = calloc(1, sizeof(*r));
    size_t total = body.len;
    struct re_str line;
    int k, rc = 0;

    if (!r)
        return say(why, -RE_ENOMEM, "out of memory");
    r->command = GIT_WANTS_FETCH;
    /* wants, shallow, deepen, filter up to the first flush; the rest
     * (have, done) only has to be well-formed: git reads no want there */
    while ((k = git_wants_pkt_next(&body, &line)) == 0)
        if (re_str_startswith_c(line, "want ") && (rc = v0_want(r, line, why)) < 0)
            goto out;
    if (k == 1 && body.len == 0 && total == 4) {
        r->command = GIT_WANTS_EMPTY;
        goto out;
    }
    while (k >= 0 && body.len)
        k = git_wants_pkt_next(&body, &line);
    if (k < 0)
        rc = say(why, -RE_EPARSE, "malformed pkt-line at byte %zu", total - body.len);
out:
    if (rc == 0)
        *out = *r;
    free(r);
    return rc;
}

/* ---- the repository side ---- */

struct tips {
    git_oid id[GIT_WANTS_TIPS_MAX];
    size_t n;
};

/* What the refs of refs/namespaces/<cluster>/ point at (symrefs resolved),
 * at most GIT_WANTS_TIPS_MAX: the writer keeps two (HEAD, refs/heads/main). */
static int collect_tips(struct tips *t, git_repository *repo, const char *cluster)
{
    git_reference_iterator *it = NULL;
    git_reference *ref;
    char glob[128];
    int rc, grc;

    t->n = 0;
    if ((rc = re_snprintf(glob, sizeof(glob), "refs/namespaces/%s/*", cluster)) < 0)
        return rc;
    if (git_reference_iterator_glob_new(&it, repo, glob) < 0)
        return -RE_EGIT;
    while (t->n < GIT_WANTS_TIPS_MAX && (grc = git_reference_next(&ref, it)) == 0) {
        git_reference *direct = NULL;
        if (git_reference_resolve(&direct, ref) == 0 && git_reference_target(direct))
            git_oid_cpy(&t->id[t->n++], git_reference_target(direct));
        git_reference_free(direct);     /* a dangling symref: no tip */
        git_reference_free(ref);
    }
    git_reference_iterator_free(it);
    return 0;
}

static bool is_tip(const struct tips *t, const git_oid *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (git_oid_equal(&t->id[i], id))
            return true;
    return false;
}

/* Clears pending[i] for each wants[i] among the GIT_WANTS_WALK_MAX newest
 * commits the tips reach. The walk never looks wants up, so a refusal
 * says nothing about what else the object store holds. */
static int walk_behind_tips(git_repository *repo, const struct tips *t, const git_oid *wants,
                            bool *pending, size_t n)
{
    git_revwalk *w = NULL;
    git_oid id;
    size_t left = 0, pushed = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        left += pending[i];
    if (!left)
        return 0;
    if (git_revwalk_new(&w, repo) < 0)
        return -RE_EGIT;
    git_revwalk_sorting(w, GIT_SORT_TIME);
    for (size_t i = 0; i < t->n; i++)
        pushed += git_revwalk_push(w, &t->id[i]) == 0;     /* a tag or tree: no history */
    for (unsigned walked = 0; pushed && left && walked < GIT_WANTS_WALK_MAX; walked++) {
        int grc = git_revwalk_next(&id, w);
        if (grc == GIT_ITEROVER)
            break;
        if (grc < 0) {
            rc = -RE_EGIT;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (pending[i] && git_oid_equal(&wants[i], &id)) {
                pending[i] = false;
                left--;
            }
    }
    git_revwalk_free(w);
    return rc;
}

static int check_want_refs(git_repository *repo, const char *cluster,
                           const struct git_wants *req, struct re_buf *why)
{
    for (size_t i = 0; i < req->n_want_refs; i++) {
        char name[512];
        git_oid id;
        struct re_str v = req->want_refs[i];
        if (re_snprintf(name, sizeof(name), "refs/namespaces/%s/%.*s", cluster, (int)v.len,
                        v.ptr) < 0 ||
            git_reference_name_to_id(&id, repo, name) < 0)
            return say(why, -RE_EDENIED, "want-ref %.*s: no such ref on the branch of '%s'",
                       (int)v.len, v.ptr, cluster);
    }
    return 0;
}

int git_wants_check(git_repository *repo, const char *cluster, const struct git_wants *req,
                 struct re_buf *why)
{
    struct tips t;
    git_oid *wants = NULL;
    bool *pending = NULL;
    int rc;

    if (validate_dns_label(re_str_c(cluster), NULL) < 0)
        return say(why, -RE_EINVAL, "invalid cluster name");
    if (req->command != GIT_WANTS_FETCH)
        return 0;
    if ((rc = check_want_refs(repo, cluster, req, why)) < 0 || req->n_wants == 0)
        return rc;
    if ((rc = collect_tips(&t, repo, cluster)) < 0)
        return say(why, rc, "cannot read the refs of '%s'", cluster);
    wants = calloc(req->n_wants, sizeof(*wants));
    pending = calloc(req->n_wants, sizeof(*pending));
    if (!wants || !pending) {
        rc = say(why, -RE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < req->n_wants; i++) {
        git_oid_fromstrn(&wants[i], req->wants[i].ptr, req->wants[i].len);  /* 40 hex: parsed */
        pending[i] = !is_tip(&t, &wants[i]);
    }
    if ((rc = walk_behind_tips(repo, &t, wants, pending, req->n_wants)) < 0) {
        rc = say(why, rc, "cannot read the history of '%s'", cluster);
        goto out;
    }
    for (size_t i = 0; i < req->n_wants; i++)
        if (pending[i]) {
            rc = say(why, -RE_EDENIED, "want %.40s: not on the branch of cluster '%s'",
                     req->wants[i].ptr, cluster);
            goto out;
        }
out:
    free(wants);
    free(pending);
    return rc;
}
