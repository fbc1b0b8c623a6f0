/* error.c - message and machine-code tables generated from RE_ERRNO_MAP. */
#include <errno.h>
#include "error.h"

static const char *const messages[] = {
    "success",
#define RE__MSG(name, code, msg) msg,
    RE_ERRNO_MAP(RE__MSG)
#undef RE__MSG
};

static const char *const codes[] = {
    "ok",
#define RE__CODE(name, code, msg) code,
    RE_ERRNO_MAP(RE__CODE)
#undef RE__CODE
};

static int index_of(int err)
{
    if (err < 0)
        err = -err;
    return err < RE_E_MAX ? err : -1;
}

const char *re_strerror(int err)
{
    int i = index_of(err);
    return i < 0 ? "unknown error" : messages[i];
}

const char *re_errcode(int err)
{
    int i = index_of(err);
    return i < 0 ? "internal" : codes[i];
}

int re_from_errno(int e)
{
    switch (e) {
    case 0: return 0;
    case ENOMEM: return -RE_ENOMEM;
    case ENOENT: return -RE_ENOENT;
    case EEXIST: return -RE_EEXIST;
    case ENOSPC: case EDQUOT: return -RE_ENOSPC;
    case EACCES: case EPERM: return -RE_EDENIED;
    case EINVAL: return -RE_EINVAL;
    case EAGAIN: return -RE_EAGAIN;
    case ETIMEDOUT: return -RE_ETIMEOUT;
    case EFBIG: case E2BIG: return -RE_ETOOBIG;
    default: return -RE_EIO;
    }
}

int re_err_status(int err)
{
    switch (err < 0 ? -err : err) {
    case RE_ENOENT:
        return 404;
    case RE_EEXIST:
    case RE_ECONFLICT:
        return 409;
    case RE_EINVAL:
    case RE_EPARSE:
    case RE_EDEPTH:
        return 400;
    case RE_ETOOBIG:
        return 413;
    case RE_ESTALE:
        return 412;
    case RE_EDENIED:
        return 403;
    case RE_EUNAUTH:
        return 401;
    case RE_EBUSY:
    case RE_EAGAIN:
    case RE_ELOCKED:
        return 503;
    case RE_EUNSUPP:
        return 501;
    case RE_ENOSPC:
        return 507; /* Insufficient Storage: the operator must free disk space */
    default:
        return 500;
    }
}
