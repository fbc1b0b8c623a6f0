/* oid.h - git object ids as the hub and the agent pass them around: 40
 * lowercase hex digits (SHA-1; what libgit2's git_oid_tostr writes). */
#ifndef RE_OID_H
#define RE_OID_H

#include <stdbool.h>

#define RE_OID_HEX 40                   /* digits of an object id */
#define RE_OID_BUF (RE_OID_HEX + 1)     /* with its NUL: char rev[RE_OID_BUF] */

/* s is exactly an object id: 40 lowercase hex digits, then the end. */
bool re_oid_is(const char *s);
/* s starts with 40 lowercase hex digits (what follows is the caller's:
 * a space in packed-refs, a newline in a ref file). */
bool re_oid_prefix_is(const char *s);

#endif
