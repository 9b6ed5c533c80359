#!/bin/sh
# make sanitize: the bats suite (all but timing.bats, see below) against
# pop3-handler-san, the handler built by clang with AddressSanitizer (with
# LeakSanitizer) and UndefinedBehaviorSanitizer (every finding fatal). Not gcc: its UBSan
# ignores log_path and would report only to stderr, which tests swallow. A sanitizer report anywhere in the suite
# fails the run, even when the test around it passed: reports are written to
# files in $SAN_LOG_DIR (see tests/san-options.c), which must be empty at
# the end.
#
# Arguments, if any, name the .bats files to run (as for tests/run).
#
# The environment the tests pass on:
#   HANDLER                       the sanitized binary, for every test file
#   UID_WRAPPER_DISABLE_DEEPBIND  pam_wrapper dlopen()s libpam with
#                                 RTLD_DEEPBIND, which ASan refuses (it
#                                 aborts the handler at the first PASS);
#                                 pam_wrapper 1.1.4 reads this variable (the
#                                 uid_wrapper name) to leave it out
#   ASAN_OPTIONS, UBSAN_OPTIONS   as the built-in defaults, for the record;
#                                 detect_leaks is left to the built-in
#                                 default, which is off under a tracer
# LeakSanitizer runs for every handler started as another user than root
# (most tests: setpriv makes it nobody). tests/san-options.c turns it off
# under strace (crash.bats), where it can't stop the threads, and for a
# handler started as root, whose pre-auth child is chrooted without /proc,
# where it would hang at exit.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
: "${SAN_LOG_DIR:=$top/san-logs}"
HANDLER=${HANDLER:-$top/pop3-handler-san}
[ -x "$HANDLER" ] || { echo "no $HANDLER: run make sanitize" >&2; exit 1; }
rm -rf "$SAN_LOG_DIR"
mkdir -p "$SAN_LOG_DIR"
chmod 1777 "$SAN_LOG_DIR"
export HANDLER
export UID_WRAPPER_DISABLE_DEEPBIND=1
export ASAN_OPTIONS="halt_on_error=1:verify_asan_link_order=0:log_path=$SAN_LOG_DIR/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$SAN_LOG_DIR/ubsan"

# All of tests/ but timing.bats, unless files are named. timing.bats holds
# reply times to a median gap under 5 ms: ASan's own cost spread single pairs
# by 3 to 7 ms and put medians at 3 ms, so here it could fail with nothing
# wrong, and it would find no memory error the authority's other tests
# (limits, protocol, mechanisms, sasl) do not reach. It costs about 2.5
# minutes of a CI run held to 40; the plain build and the pristine root run it.
if [ $# -eq 0 ]; then
	for f in "$here"/*.bats; do
		[ "${f##*/}" = timing.bats ] || set -- "$@" "$f"
	done
fi

rc=0
sh "$here/run" "$@" || rc=$?
reports=$(find "$SAN_LOG_DIR" -type f | sort)
if [ -n "$reports" ]; then
	for f in $reports; do
		echo "=== $f"
		cat "$f"
	done
	echo "sanitizers: $(echo "$reports" | wc -l) report(s) in $SAN_LOG_DIR"
	rc=1
else
	echo "sanitizers: no reports (ASan, LSan, UBSan) from $HANDLER"
fi
exit $rc
