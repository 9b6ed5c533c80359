/*
 * The clock and the timers of a session: the monotonic clock that line
 * deadlines are kept on, the failure delay's sleep, and the alarm that bounds
 * writes and the opening of the maildrop. One small object, so that a fuzz
 * harness can link its own in its place (fuzz/stub-timing.c) and run a
 * session without waiting.
 */
#ifndef POP3_TIMING_H
#define POP3_TIMING_H

#include <signal.h>
#include <time.h>

/* Milliseconds on the monotonic clock. */
long long timing_now_ms(void);

/* Sleeps until until on the monotonic clock (at once when it has passed),
 * through any signal. */
void timing_sleep_until(const struct timespec *until);

/* alarm(seconds): arms SIGALRM, or disarms it with 0. Returns the seconds
 * that were left of the previous alarm. */
unsigned timing_alarm(unsigned seconds);

/* Makes handler catch SIGALRM (no SA_RESTART, so that a blocked write ends),
 * keeping the handler it replaces in *prev unless prev is NULL. */
void timing_catch_alarm(void (*handler)(int), struct sigaction *prev);

/* Puts back the SIGALRM handler that timing_catch_alarm kept in *prev. */
void timing_restore_alarm(const struct sigaction *prev);

#endif
