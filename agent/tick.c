/* tick.c - the watchdog hook for long blocking work. */
#include <stddef.h>
#include "tick.h"

static void (*tick_fn)(void);

void tick_set(void (*fn)(void))
{
    tick_fn = fn;
}

void tick(void)
{
    if (tick_fn)
        tick_fn();
}
