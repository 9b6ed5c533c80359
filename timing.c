/*
 * The clock and the timers of a session (timing.h).
 */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

long long timing_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void timing_sleep_until(const struct timespec *until)
{
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, until, NULL)
	    == EINTR)
		;
}

unsigned timing_alarm(unsigned seconds)
{
	return alarm(seconds);
}
