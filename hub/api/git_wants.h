/* git_wants.h - checks what an upload-pack request wants before the hub
 * hands it to `git upload-pack`. Every cluster's branch lives in one object
 * store, and git 2.39 sends more than the namespace's refs reach: a v2
 * `fetch` any object it is asked for (v2 ignores uploadpack.allow*SHA1InWant),
 * a stateless v0 request any blob or tree (its reachability check, rev-list
 * without --objects, sees commits only). So the hub admits only wants that
 * the cluster's own refs reach.
 *
 * git_wants_parse_v2 and git_wants_parse_v0 read the pkt-lines (syntax and
 * limits, no repository); git_wants_check decides with libgit2. They write
 * the reason a client sees into why (one line, no trailing newline).
 */
#ifndef HUB_GIT_WANTS_H
#define HUB_GIT_WANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <git2.h>
#include "buf.h"

#define GIT_WANTS_MAX        256    /* want and want-ref lines of one request */
#define GIT_WANTS_WALK_MAX   1000   /* commits behind the tips a want may be */
#define GIT_WANTS_TIPS_MAX   16     /* refs of one cluster looked at */

enum git_wants_command {
    GIT_WANTS_EMPTY,                /* a lone flush-pkt: git answers nothing */
    GIT_WANTS_LS_REFS,
    GIT_WANTS_FETCH,
};

/* A parsed request; the strings point into the body given to the parser. */
struct git_wants {
    enum git_wants_command command;
    struct re_str wants[GIT_WANTS_MAX];      /* 40 hex digits each */
    size_t n_wants;
    struct re_str want_refs[GIT_WANTS_MAX];  /* as sent: "refs/heads/main" */
    size_t n_want_refs;
};

/* Next pkt-line of *in: 0 and *line (payload, one trailing '\n' dropped),
 * 1 for a flush-pkt, 2 for a delim-pkt, -1 when malformed or at the end. */
int git_wants_pkt_next(struct re_str *in, struct re_str *line);

/*
 * Parses body, a whole v2 request: command=..., capabilities, an optional
 * delim-pkt and arguments, a flush-pkt, nothing after. Returns 0 and fills
 * *out; -RE_EPARSE when the pkt-lines are malformed (the HTTP answer is
 * 400); -RE_EDENIED for a request the hub does not serve: a command other
 * than ls-refs and fetch (object-info, bundle-uri: agents never need them),
 * a fetch argument outside the allowed list, more than GIT_WANTS_MAX
 * wants, a want-ref that is not a plain ref name. why receives the reason.
 */
int git_wants_parse_v2(struct git_wants *out, struct re_str body, struct re_buf *why);

/*
 * Parses body, a whole protocol v0/v1 request as smart HTTP sends it: want
 * lines (the first may carry capabilities), shallow and deepen lines, a
 * flush-pkt, then haves and done (left to git). Returns 0 with command
 * GIT_WANTS_FETCH (GIT_WANTS_EMPTY for a lone flush-pkt), -RE_EPARSE for
 * broken pkt-lines or a want that is not 40 lowercase hex digits, -RE_EDENIED
 * beyond GIT_WANTS_MAX wants.
 */
int git_wants_parse_v0(struct git_wants *out, struct re_str body, struct re_buf *why);

/*
 * Whether cluster may have what req wants: each want must be the object a
 * ref of refs/namespaces/<cluster>/ points at, or one of the GIT_WANTS_WALK_MAX
 * newest commits those reach (the branch may move between a client's
 * ls-refs and its fetch); each want-ref must name an existing ref of that
 * namespace. Whether a refused object exists elsewhere is never told. Returns 0, -RE_EDENIED (why says which want), -RE_EINVAL
 * for a bad cluster name or -RE_EGIT.
 */
int git_wants_check(git_repository *repo, const char *cluster, const struct git_wants *req,
                 struct re_buf *why);

#endif
