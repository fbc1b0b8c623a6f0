/* oid.c - object id checks (oid.h). */
#include "oid.h"

bool re_oid_prefix_is(const char *s)
{
    for (int i = 0; i < RE_OID_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;   /* a NUL stops here too */
    return true;
}

bool re_oid_is(const char *s)
{
    return re_oid_prefix_is(s) && s[RE_OID_HEX] == '\0';
}
