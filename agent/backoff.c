/* backoff.c - full-jitter exponential backoff and interval jitter. */
#include "backoff.h"
#include "crypto.h"

void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t cap_ms)
{
    b->base_ms = base_ms ? base_ms : 1000;
    b->cap_ms = cap_ms ? cap_ms : 600000;
    if (b->cap_ms < b->base_ms)
        b->cap_ms = b->base_ms;
    b->failures = 0;
}

uint64_t backoff_ceiling(const struct backoff *b)
{
    uint64_t c = b->base_ms;
    for (unsigned i = 0; i < b->failures && c < b->cap_ms; i++)
        c *= 2;
    return c < b->cap_ms ? c : b->cap_ms;
}

uint64_t backoff_fail(struct backoff *b, uint64_t retry_after_ms, uint64_t rnd)
{
    uint64_t ceiling = backoff_ceiling(b);
    uint64_t wait = rnd % (ceiling + 1);
    if (b->failures < 64)
        b->failures++;
    if (retry_after_ms > 0) {
        uint64_t spread = retry_after_ms / 5;
        uint64_t honoured = retry_after_ms + (spread ? (rnd >> 20) % (spread + 1) : 0);
        if (wait < honoured)
            wait = honoured;
    }
    return wait;
}

void backoff_reset(struct backoff *b)
{
    b->failures = 0;
}

uint64_t backoff_jitter_interval(uint64_t interval_ms, uint64_t rnd)
{
    uint64_t span = interval_ms * 2 / 5;         /* 40% wide window */
    return interval_ms - interval_ms / 5 + (span ? rnd % (span + 1) : 0);
}

uint64_t backoff_random(void)
{
    uint64_t v = 0;
    if (re_random(&v, sizeof(v)) < 0)
        v = 0x9e3779b97f4a7c15ull; /* never fails in practice; any value is still bounded */
    return v;
}
