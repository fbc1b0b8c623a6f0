/* clock.c - real clocks, or pinned values for tests. */
#include <stdio.h>
#include <time.h>
#include "clock.h"

static int stubbed;
static int64_t stub_wall;
static uint64_t stub_mono;

int64_t re_time(void)
{
    return stubbed ? stub_wall : (int64_t)time(NULL);
}

uint64_t re_mono_ms(void)
{
    struct timespec ts;
    if (stubbed)
        return stub_mono;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void re_clock_stub(int64_t wall, uint64_t mono_ms)
{
    stubbed = wall >= 0;
    stub_wall = wall;
    stub_mono = mono_ms;
}

void re_time_iso(char *out, size_t size, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    if (strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && size)
        out[0] = '\0';
}
