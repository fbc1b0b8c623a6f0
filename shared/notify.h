/* notify.h - systemd's notify protocol (READY=1, WATCHDOG=1, STATUS=...):
 * one datagram to $NOTIFY_SOCKET; no libsystemd needed. */
#ifndef RE_NOTIFY_H
#define RE_NOTIFY_H

#include <stdint.h>

/* Sends state (e.g. "READY=1\nSTATUS=serving") when $NOTIFY_SOCKET is set;
 * 0 (doing nothing) when it is not. */
int re_notify(const char *state);
/* Half of $WATCHDOG_USEC in ms, or 0 when no watchdog is configured. */
uint64_t re_notify_watchdog_ms(void);

#endif
