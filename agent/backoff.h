/* backoff.h - retry timing: exponential backoff with full jitter, capped,
 * honouring Retry-After, and the ±20% jitter of the regular interval, so a
 * fleet never comes back in lock-step after a hub outage. */
#ifndef AGENT_BACKOFF_H
#define AGENT_BACKOFF_H

#include <stdint.h>

struct backoff {
    uint64_t base_ms;               /* first ceiling (default 1 s) */
    uint64_t cap_ms;                /* ceiling's maximum (default 10 min) */
    unsigned failures;              /* consecutive failures so far */
};

void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t cap_ms);
/* The ceiling for the current failure count: min(cap, base * 2^failures). */
uint64_t backoff_ceiling(const struct backoff *b);
/* Records a failure and returns the wait before the next attempt: uniform in
 * [0, ceiling] using rnd (any 64-bit random value), then at least
 * retry_after_ms (0: none) plus up to 20% more of it so clients told the
 * same Retry-After still spread out. */
uint64_t backoff_fail(struct backoff *b, uint64_t retry_after_ms, uint64_t rnd);
/* Success: the failure count starts over. */
void backoff_reset(struct backoff *b);

/* The regular interval with ±20% jitter: uniform in [0.8*i, 1.2*i]. */
uint64_t backoff_jitter_interval(uint64_t interval_ms, uint64_t rnd);
/* 64 random bits from the process's CSPRNG. */
uint64_t backoff_random(void);

#endif
