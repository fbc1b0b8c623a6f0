/* error.h - the one list of Res-Edge error codes (enum + message table). */
#ifndef RE_ERROR_H
#define RE_ERROR_H

/* X(NAME, machine-code, message). Functions return 0 or -RE_E<NAME>. */
#define RE_ERRNO_MAP(X)                                                       \
    X(NOMEM,     "no_memory",        "out of memory")                          \
    X(INVAL,     "invalid",          "invalid argument")                       \
    X(TOOBIG,    "too_large",        "too large")                              \
    X(IO,        "io_error",         "input/output error")                     \
    X(NOENT,     "not_found",        "not found")                              \
    X(EXIST,     "already_exists",   "already exists")                         \
    X(PARSE,     "parse_error",      "cannot parse")                           \
    X(DEPTH,     "too_deep",         "nesting too deep")                       \
    X(CRYPTO,    "crypto_error",     "cryptographic operation failed")         \
    X(BADSIG,    "bad_signature",    "signature does not verify")              \
    X(TLS,       "tls_error",        "TLS failure")                            \
    X(DB,        "database_error",   "database error")                         \
    X(CONFLICT,  "conflict",         "conflicting change")                     \
    X(STALE,     "precondition_failed", "version is stale")                    \
    X(DENIED,    "forbidden",        "permission denied")                      \
    X(UNAUTH,    "unauthenticated",  "client certificate required")            \
    X(EXPIRED,   "expired",          "expired")                                \
    X(LOCKED,    "locked",           "locked")                                 \
    X(BUSY,      "busy",             "resource busy")                          \
    X(TIMEOUT,   "timeout",          "timed out")                              \
    X(GIT,       "git_error",        "git operation failed")                   \
    X(AGAIN,     "try_again",        "try again")                              \
    X(NOSPC,     "no_space",         "no space left on device")                \
    X(UNSUPP,    "unsupported",      "not supported")

enum re_err {
    RE_OK = 0,
#define RE__ENUM(name, code, msg) RE_E##name,
    RE_ERRNO_MAP(RE__ENUM)
#undef RE__ENUM
    RE_E_MAX
};

/* Human message for a code (positive or negative); never NULL. */
const char *re_strerror(int err);
/* Stable machine code ("not_found") for the JSON error body; never NULL. */
const char *re_errcode(int err);
/* The HTTP status an error answers with (404 for RE_ENOENT, 507 for
 * RE_ENOSPC, ...; 500 for what is not the client's and has no better). */
int re_err_status(int err);
/* Map an errno value to a negative RE code. */
int re_from_errno(int e);

#endif
