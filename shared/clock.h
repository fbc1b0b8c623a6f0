/* clock.h - wall and monotonic clocks that tests can stub. */
#ifndef RE_CLOCK_H
#define RE_CLOCK_H

#include <stdint.h>

/* Wall-clock seconds since the epoch (stubbable). */
int64_t re_time(void);
/* Monotonic milliseconds (stubbable). */
uint64_t re_mono_ms(void);
/* Tests: pin the clocks; pass a negative wall to return to the real clocks. */
void re_clock_stub(int64_t wall, uint64_t mono_ms);
/* "2026-11-26T10:32:49Z" into out (at least 21 bytes). */
void re_time_iso(char *out, size_t size, int64_t t);

#endif
