/*
 * Linked into fuzz-command in place of the handler's timing.o (timing.h):
 * the same clock, except that a client that has gone silent makes a day
 * pass at each look, so that the session's -t deadline comes at once; no
 * failure delay; no alarm (the harness's client never stops reading for
 * long: writes cannot hang).
 */
#include <time.h>

#include "../timing.h"
#include "fuzz-command.h"

long long timing_now_ms(void)
{
	static long long skipped;
	struct timespec ts;

	if (fuzz_client_idle())
		skipped += 86400 * 1000LL;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + skipped;
}

void timing_sleep_until(const struct timespec *until)
{
	CHECK(until != NULL);
}

unsigned timing_alarm(unsigned seconds)
{
	(void)seconds;
	return 0;
}

/*
 * With no alarm, a SIGALRM could only be libFuzzer's own -timeout tick: the
 * session's handlers are not installed, since the open deadline's would
 * _exit() the fuzzer and the client's would swallow the timeouts.
 */
void timing_catch_alarm(void (*handler)(int), struct sigaction *prev)
{
	(void)handler;
	if (prev)
		sigaction(SIGALRM, NULL, prev);
}

void timing_restore_alarm(const struct sigaction *prev)
{
	(void)prev;
}
