/* tick.h - a hook long blocking work calls now and then (transfers, child
 * processes), so the daemon can keep the systemd watchdog fed. */
#ifndef AGENT_TICK_H
#define AGENT_TICK_H

void tick_set(void (*fn)(void));   /* NULL: no hook */
void tick(void);

#endif
