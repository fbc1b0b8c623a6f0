/* test_git_wants.c - the upload-pack request checks: the v2 and v0 parsers
 * on well-formed, refused and broken bodies, and git_wants_check against a
 * real bare repository (built with the git command line) whose two
 * namespaces share history and an object store. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "api/git_wants.h"
#include "error.h"
#include "testlib.h"

static char dir[256];

static void sh_line(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs a shell command; its first output line (if out) without the newline. */
static void sh_line(char *out, size_t size, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    CHECK(f);
    if (out) {
        CHECK(fgets(out, (int)size, f));
        out[strcspn(out, "\n")] = '\0';
    }
    CHECK(pclose(f) == 0);
}

/* body = the pkt-lines of lines ("0000"/"0001" as they are), NULL-ended. */
static void pkts(struct re_buf *body, ...)
{
    va_list ap;
    const char *l;
    re_buf_reset(body);
    va_start(ap, body);
    while ((l = va_arg(ap, const char *))) {
        if (!strcmp(l, "0000") || !strcmp(l, "0001"))
            CHECK(re_buf_append_str(body, l) == 0);
        else
            CHECK(re_buf_printf(body, "%04zx%s\n", strlen(l) + 5, l) == 0);
    }
    va_end(ap);
}

#define OID "0123456789abcdef0123456789abcdef01234567"

static int v2(struct git_wants *r, struct re_buf *b, struct re_buf *why)
{
    return git_wants_parse_v2(r, re_buf_str(b), why);
}

static void parse_v2(void)
{
    static struct git_wants r;
    struct re_buf b, why;
    re_buf_init(&b, 1 << 20);
    re_buf_init(&why, 512);

    pkts(&b, "command=fetch", "agent=git/2.39.5", "object-format=sha1", "0001", "thin-pack",
         "ofs-delta", "want " OID, "want-ref refs/heads/main", "have " OID, "shallow " OID,
         "deepen 1", "done", "0000", NULL);
    CHECK_EQ_INT(v2(&r, &b, &why), 0);
    CHECK_EQ_INT(r.command, GIT_WANTS_FETCH);
    CHECK_EQ_INT(r.n_wants, 1);
    CHECK_EQ_INT(r.n_want_refs, 1);
    CHECK(re_str_eq_c(r.wants[0], OID));
    CHECK(re_str_eq_c(r.want_refs[0], "refs/heads/main"));
    pkts(&b, "command=ls-refs", "0001", "symrefs", "ref-prefix HEAD", "0000", NULL);
    CHECK_EQ_INT(v2(&r, &b, &why), 0);
    CHECK_EQ_INT(r.command, GIT_WANTS_LS_REFS);
    pkts(&b, "0000", NULL);
    CHECK_EQ_INT(v2(&r, &b, &why), 0);
    CHECK_EQ_INT(r.command, GIT_WANTS_EMPTY);

    /* refused: -RE_EDENIED with the reason */
    pkts(&b, "command=object-info", "0001", "size", "oid " OID, "0000", NULL);
    CHECK_EQ_INT(v2(&r, &b, &why), -RE_EDENIED);
    CHECK_EQ_STR(why.ptr, "command 'object-info' is not served by this hub");
    pkts(&b, "command=bundle-uri", "0000", NULL);
    CHECK_EQ_INT(v2(&r, &b, &why), -RE_EDENIED);
    const char *bad_args[] = { "deepen-not refs/heads/main", "filter blob:none",
                               "packfile-uris https", "want-ref refs/heads/../../x",
                               "want-ref refs/namespaces//x", "want-ref main",
                               "want-ref refs/heads/main^{}" };
    for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
        pkts(&b, "command=fetch", "0001", bad_args[i], "0000", NULL);
        CHECK_EQ_INT(v2(&r, &b, &why), -RE_EDENIED);
    }
    re_buf_reset(&b);
    CHECK(re_buf_append_str(&b, "0011command=fetch0001") == 0);
    for (int i = 0; i < GIT_WANTS_MAX + 1; i++)
        CHECK(re_buf_printf(&b, "0032want %s\n", OID) == 0);
    CHECK(re_buf_append_str(&b, "0000") == 0);
    CHECK_EQ_INT(v2(&r, &b, &why), -RE_EDENIED);
    CHECK_EQ_STR(why.ptr, "more than 256 wants in one fetch");

    /* broken: -RE_EPARSE */
    const char *broken[] = { "", "zzzz", "0100command=fetch\n0000", "0003", "0004",
                             "0011command=fetch", "0011command=fetch00000000",
                             "0009hello0000", "0011command=fetch0001" };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        CHECK_EQ_INT(git_wants_parse_v2(&r, re_str_c(broken[i]), &why), -RE_EPARSE);
    pkts(&b, "command=fetch", "0001", "want " OID "x", "0000", NULL);
    CHECK_EQ_INT(v2(&r, &b, &why), -RE_EPARSE);
    pkts(&b, "command=fetch", "0001", "want 0123456789ABCDEF0123456789abcdef01234567", "0000", NULL);
    CHECK_EQ_INT(v2(&r, &b, &why), -RE_EPARSE);
    pkts(&b, "command=fetch", "0001", "deepen x", "0000", NULL);
    CHECK_EQ_INT(v2(&r, &b, &why), -RE_EPARSE);
    re_buf_release(&b);
    re_buf_release(&why);
}

static void parse_v0(void)
{
    static struct git_wants r;
    struct re_buf b, why;
    re_buf_init(&b, 1 << 20);
    re_buf_init(&why, 512);

    pkts(&b, "want " OID " multi_ack_detailed side-band-64k", "want " OID, "shallow " OID,
         "deepen 2", "0000", "have " OID, "done", NULL);
    CHECK_EQ_INT(git_wants_parse_v0(&r, re_buf_str(&b), &why), 0);
    CHECK_EQ_INT(r.command, GIT_WANTS_FETCH);
    CHECK_EQ_INT(r.n_wants, 2);
    CHECK(re_str_eq_c(r.wants[0], OID));
    CHECK_EQ_INT(git_wants_parse_v0(&r, RE_STR_LIT("0000"), &why), 0);
    CHECK_EQ_INT(r.command, GIT_WANTS_EMPTY);
    pkts(&b, "want " OID "xyz", "0000", NULL);     /* git would read OID, caps "xyz" */
    CHECK_EQ_INT(git_wants_parse_v0(&r, re_buf_str(&b), &why), -RE_EPARSE);
    CHECK_EQ_INT(git_wants_parse_v0(&r, RE_STR_LIT("0032want"), &why), -RE_EPARSE);
    CHECK_EQ_INT(git_wants_parse_v0(&r, RE_STR_LIT("00000009done\nzz"), &why), -RE_EPARSE);
    re_buf_release(&b);
    re_buf_release(&why);
}

/* store-a: one..three on main; store-b: a fork of one with its own blob. */
static void check_repo(void)
{
    static struct git_wants r;
    git_repository *repo;
    struct re_buf b, why;
    char path[512], a_tip[64], a_old[64], a_tree[64], b_tip[64], b_blob[64], line[128];

    snprintf(dir, sizeof(dir), "%s/re-gitwants-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(dir));
    sh_line(NULL, 0, "cd %s && git init -q --bare git && git init -q w && cd w && "
            "c() { echo $1 >f && git add f && git -c user.name=t -c user.email=t@t commit -qm $1; } && "
            "c one && c two && c three && git push -q ../git HEAD:refs/namespaces/store-a/refs/heads/main && "
            "git --git-dir=../git symbolic-ref refs/namespaces/store-a/HEAD refs/namespaces/store-a/refs/heads/main && "
            "git checkout -q HEAD~2 && c bravo-secret && "
            "git push -q ../git HEAD:refs/namespaces/store-b/refs/heads/main", dir);
    sh_line(a_tip, sizeof(a_tip), "git --git-dir=%s/git rev-parse refs/namespaces/store-a/refs/heads/main", dir);
    sh_line(a_old, sizeof(a_old), "git --git-dir=%s/git rev-parse refs/namespaces/store-a/refs/heads/main~2", dir);
    sh_line(a_tree, sizeof(a_tree), "git --git-dir=%s/git rev-parse refs/namespaces/store-a/refs/heads/main^{tree}", dir);
    sh_line(b_tip, sizeof(b_tip), "git --git-dir=%s/git rev-parse refs/namespaces/store-b/refs/heads/main", dir);
    sh_line(b_blob, sizeof(b_blob), "git --git-dir=%s/git rev-parse refs/namespaces/store-b/refs/heads/main:f", dir);

    git_libgit2_init();
    snprintf(path, sizeof(path), "%s/git", dir);
    CHECK(git_repository_open_bare(&repo, path) == 0);
    re_buf_init(&b, 1 << 20);
    re_buf_init(&why, 512);
    struct { const char *oid; int rc; } cases[] = {
        { a_tip, 0 },                   /* the tip */
        { a_old, 0 },                   /* behind the tip: the branch moved */
        { a_tree, -RE_EDENIED },        /* reachable, but not a tip nor a commit */
        { b_tip, -RE_EDENIED },         /* another namespace's commit */
        { b_blob, -RE_EDENIED },        /* another namespace's blob */
        { OID, -RE_EDENIED },           /* missing: the same answer */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(line, sizeof(line), "want %s", cases[i].oid);
        pkts(&b, "command=fetch", "0001", line, "done", "0000", NULL);
        CHECK_EQ_INT(git_wants_parse_v2(&r, re_buf_str(&b), &why), 0);
        CHECK_EQ_INT(git_wants_check(repo, "store-a", &r, &why), cases[i].rc);
        if (cases[i].rc) {
            snprintf(line, sizeof(line), "want %s: not on the branch of cluster 'store-a'",
                     cases[i].oid);
            CHECK_EQ_STR(why.ptr, line);
        }
        /* the same through v0 */
        snprintf(line, sizeof(line), "want %s side-band-64k", cases[i].oid);
        pkts(&b, line, "0000", "done", NULL);
        CHECK_EQ_INT(git_wants_parse_v0(&r, re_buf_str(&b), &why), 0);
        CHECK_EQ_INT(git_wants_check(repo, "store-a", &r, &why), cases[i].rc);
    }
    CHECK_EQ_INT(git_wants_check(repo, "store-b", &r, &why), -RE_EDENIED);  /* OID */
    pkts(&b, "command=fetch", "0001", "want-ref refs/heads/main", "0000", NULL);
    CHECK_EQ_INT(git_wants_parse_v2(&r, re_buf_str(&b), &why), 0);
    CHECK_EQ_INT(git_wants_check(repo, "store-a", &r, &why), 0);
    pkts(&b, "command=fetch", "0001", "want-ref refs/heads/other", "0000", NULL);
    CHECK_EQ_INT(git_wants_parse_v2(&r, re_buf_str(&b), &why), 0);
    CHECK_EQ_INT(git_wants_check(repo, "store-a", &r, &why), -RE_EDENIED);
    CHECK_EQ_INT(git_wants_check(repo, "../x", &r, &why), -RE_EINVAL);

    re_buf_release(&b);
    re_buf_release(&why);
    git_repository_free(repo);
    sh_line(NULL, 0, "rm -rf %s", dir);
}

TEST_MAIN(T(parse_v2), T(parse_v0), T(check_repo))
