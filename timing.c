/*
 * The clock and the timers of a session (timing.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
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

void timing_catch_alarm(void (*handler)(int), struct sigaction *prev)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigaction(SIGALRM, &sa, prev);
}

void timing_restore_alarm(const struct sigaction *prev)
{
	sigaction(SIGALRM, prev, NULL);
}
