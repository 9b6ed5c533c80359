/*
 * Linked into pop3-handler-san only (make sanitize). The sanitizers read
 * these defaults before ASAN_OPTIONS/UBSAN_OPTIONS, so they hold also where
 * the environment does not reach the handler: systemd-socket-activate,
 * xinetd and stunnel start it with an environment of their own.
 *
 * Every report goes to SAN_LOG_DIR/asan.PID or ubsan.PID (a sticky,
 * world-writable directory that tests/sanitize.sh makes, since the handler
 * may run as nobody or as the test user), never to stderr, which tests
 * compare, and tests/sanitize.sh fails when any such file exists after the
 * suite: exit statuses alone can't tell a sanitizer abort from "EOF before
 * QUIT" (both are 1).
 *
 * verify_asan_link_order=0: the tests preload libpam_wrapper.so, which then
 * comes before libasan if it is linked dynamically (gcc; clang, which the
 * Makefile uses, links it statically).
 *
 * detect_leaks: LeakSanitizer stops the process's threads with ptrace at
 * exit, reading /proc/PID/task. That fails when a debugger already traces
 * the process (crash.bats runs the handler under strace to inject its
 * SIGKILLs): "LeakSanitizer has encountered a fatal error", exit status 1.
 * And it hangs for ever in the pre-auth child of a handler started as root,
 * which is chrooted to an empty directory without /proc. So leak checking is
 * on unless the handler starts as root or /proc/self/status shows a tracer.
 * Both are found with raw system calls and no string functions: this runs
 * while the sanitizer runtime initializes, before its interceptors may be
 * used. (A report from the chrooted child can't reach SAN_LOG_DIR either:
 * it goes to the child's stderr.)
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SAN_LOG_DIR
#define SAN_LOG_DIR "/tmp"
#endif

/* Nothing here may be instrumented: ASan's shadow memory does not exist yet. */
#define UNSANITIZED __attribute__((no_sanitize("address", "undefined")))

const char *__asan_default_options(void) UNSANITIZED;
const char *__ubsan_default_options(void) UNSANITIZED;
static int traced(void) UNSANITIZED;

static int traced(void)
{
	static const char key[] = "\nTracerPid:";
	static char buf[4096];
	long fd, n, got = 0, i, k;

	fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY);
	if (fd < 0)
		return 0;
	while (got < (long)sizeof(buf) &&
	    (n = syscall(SYS_read, fd, buf + got, sizeof(buf) - got)) > 0)
		got += n;
	syscall(SYS_close, fd);
	/* no strstr(): its interceptor is not ready yet */
	for (i = 0; i + (long)sizeof(key) - 1 <= got; i++) {
		for (k = 0; key[k] && buf[i + k] == key[k]; k++)
			;
		if (key[k])
			continue;
		for (i += k; i < got && (buf[i] == ' ' || buf[i] == '\t'); i++)
			;
		return i < got && buf[i] != '0';
	}
	return 0;
}

const char *__asan_default_options(void)
{
	return syscall(SYS_getuid) == 0 || traced() ?
	    "halt_on_error=1:detect_leaks=0:verify_asan_link_order=0:"
	    "log_path=" SAN_LOG_DIR "/asan" :
	    "halt_on_error=1:detect_leaks=1:verify_asan_link_order=0:"
	    "log_path=" SAN_LOG_DIR "/asan";
}

const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1:"
	    "log_path=" SAN_LOG_DIR "/ubsan";
}

/*
 * pam_wrapper (which the tests preload) dlopen()s libpam with RTLD_DEEPBIND,
 * and the sanitizer runtime refuses that: the handler would die at the
 * first PASS. pam_wrapper 1.1.4 leaves RTLD_DEEPBIND out when
 * UID_WRAPPER_DISABLE_DEEPBIND is set (the uid_wrapper name), and it looks
 * at it only when it first loads libpam, after this has run. Set here, not
 * only by tests/sanitize.sh, because systemd-socket-activate (pop3_listen)
 * and xinetd start the handler with an environment of their own.
 */
__attribute__((constructor)) static void no_deepbind(void)
{
	setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 0);
}
