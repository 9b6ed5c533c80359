/*
 * Force-included (clang -include) before the handler's sources when they are
 * built into a fuzz harness: syslog() becomes a function that formats its
 * arguments, so the format strings and their arguments still run under the
 * sanitizers, but sends nothing, so that millions of executions do not flood
 * the system log (or stall on /dev/log).
 */
#ifndef POP3_FUZZ_QUIET_H
#define POP3_FUZZ_QUIET_H

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static inline void fuzz_syslog(int pri, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void fuzz_syslog(int pri, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	(void)pri;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
}

#define syslog fuzz_syslog
#define openlog(ident, opt, fac) ((void)(ident), (void)(opt), (void)(fac))

#endif
