/* notify.c - sd_notify without libsystemd: a datagram on an AF_UNIX socket. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "error.h"
#include "buf.h"
#include "notify.h"

int re_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t plen;
    int fd, r = 0;

    if (!path || !*path)
        return 0;
    plen = strlen(path);
    if (plen >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
        return -RE_EINVAL;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return re_from_errno(errno);
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen)) < 0)
        r = re_from_errno(errno);
    close(fd);
    return r;
}

uint64_t re_notify_watchdog_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    unsigned long long v;
    if (!usec || re_str_to_u64(&v, re_str_c(usec), ~0ULL >> 1) < 0)
        return 0;
    return v / 2000;
}
