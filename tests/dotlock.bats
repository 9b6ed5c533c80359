#!/usr/bin/env bats
# Which dotlocks are stale (-F). liblockfile tells a stale MAILBOX.lock by the
# pid in it where the spool is local to this host; on a file system other hosts
# share (NFS, SMB, ...) that pid may be a live process elsewhere, so only a lock
# left untouched for 5 minutes is stale there, and the handler writes no pid.

load helpers
load e2e

setup() {
	pop3_setup
	mbox alice < "$BATS_TEST_DIRNAME/sample.mbox"
	cp "$T/mail/alice" "$T/alice.orig"
	# A pid no process here can have: above the kernel's pid_max.
	NOPID=$(( $(cat /proc/sys/kernel/pid_max) + 1000 ))
}

teardown() {
	pop3_teardown
	[ -z "${R:-}" ] || e2e_cleanup
}

# as_root OPTIONS...: as deployed, started as root with a real user and a
# /var/mail spool (root:mail 2775), so that the dotlock keeper makes the lock;
# one session with STAT, its replies in $output/$lines, its log in $R/err.
as_root() {
	e2e_begin
	e2e_user p3l
	e2e_spool 3 71
	e2e_pam
	printf 'USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n' "$U" "$(cat "$R/pass")" > "$R/in"
}

root_session() {
	status=0
	"$HANDLER" -d "${OPTS[@]}" "$@" < "$R/in" > "$R/out" 2> "$R/err" || status=$?
	output="$(tr -d '\r' < "$R/out")"
	IFS=$'\n' read -r -d '' -a lines <<< "$output" || true
}

# dotlock PID [touch-date]: a lock on alice's mailbox as another host's
# dotlockfile or procmail leaves it, holding PID.
dotlock() {
	echo "$1" > "$T/mail/alice.lock"
	[ -z "${2:-}" ] || touch -d "$2" "$T/mail/alice.lock"
	pop3_own
}

@test "-F shared: a fresh dotlock holding a pid of no process here is waited for, and left alone" {
	dotlock "$NOPID"
	local start=$SECONDS
	transcript -F shared <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* -ERR \[IN-USE]*
	# closed: the rest is never answered
	C: STAT
	C: QUIT
	EOF
	local took=$((SECONDS - start))
	echo "after ${took}s"
	[ "$status" -eq 1 ]
	[ "$took" -ge 9 ]
	# The other host's lock is still there, as it made it.
	[ "$(cat "$T/mail/alice.lock")" = "$NOPID" ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "-F shared: a dotlock untouched for 6 minutes is stale, whatever pid it holds" {
	# pid 1 lives here, but on a shared spool that says nothing.
	dotlock 1 "6 minutes ago"
	transcript -F shared <<-'EOF' || { cat "$T/err"; false; }
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK*
	C: STAT
	S: +OK 5 1864
	C: QUIT
	S: +OK pop3-handler signing off (5 messages left)
	EOF
	[ "$status" -eq 0 ]
	[ ! -e "$T/mail/alice.lock" ]
}

@test "-F shared: the handler's own dotlock holds no pid" {
	# liblockfile writes the lock's bytes into a temporary file it then
	# links to the lock's name: strace shows them.
	command -v strace >/dev/null || skip "strace is not installed"
	printf '%s\r\n' "USER alice" "PASS secret" "DELE 1" QUIT > "$T/in"
	pop3_own
	env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" "${RUNAS[@]}" \
		strace -f -qq -s 64 -e trace=write -o "$T/mail/trace" \
		"$HANDLER" -F shared -m "$T/mail/%u" -D "$T/state/%u" \
		< "$T/in" > "$T/out" 2> "$T/err" || { cat "$T/out" "$T/err"; false; }
	grep -q 'signing off' "$T/out"
	# liblockfile writes "0\n" into the lock where it writes no pid.
	[ "$(grep -c 'write([0-9]*, "0\\n", 2)' "$T/mail/trace")" -ge 2 ]
	! grep -q "write([0-9]*, \"[1-9][0-9]*\\\\n\"" "$T/mail/trace"
}

@test "-F shared: a dotlock held for over a minute is touched, so that nobody takes it as stale" {
	command -v strace >/dev/null || skip "strace is not installed"
	# Three chunks or more to scan; strace holds the second read of the
	# mailbox 61 s, as a slow file server would, with the lock held.
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count 100 --seed 72 > "$T/mail/alice"
	[ "$(stat -c %s "$T/mail/alice")" -gt 262144 ]
	printf '%s\r\n' "USER alice" "PASS secret" STAT QUIT > "$T/in"
	pop3_own
	env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" "${RUNAS[@]}" \
		strace -f -qq -o "$T/mail/trace" -P "$T/mail/alice" -P "$T/mail/alice.lock" \
		-e trace=pread64,utimensat,unlink \
		-e inject=pread64:delay_exit=61000000:when=2 \
		"$HANDLER" -F shared -m "$T/mail/%u" -D "$T/state/%u" \
		< "$T/in" > "$T/out" 2> "$T/err" || { cat "$T/out" "$T/err"; false; }
	grep -q '^+OK maildrop has 100 messages' "$T/out"
	# Touched once, after the slow read and before the lock went.
	grep -n "utimensat(AT_FDCWD, \"$T/mail/alice.lock\", NULL, 0) = 0" "$T/mail/trace"
	[ "$(grep -c 'utimensat(' "$T/mail/trace")" -eq 1 ]
	touch_at=$(grep -n 'utimensat(' "$T/mail/trace" | cut -d: -f1)
	unlock_at=$(grep -n "unlink(\"$T/mail/alice.lock\")" "$T/mail/trace" | head -n 1 | cut -d: -f1)
	[ "$touch_at" -lt "$unlock_at" ]
}

@test "-F local: a dotlock holding a pid of no process here is stale and removed at once" {
	dotlock "$NOPID"
	local start=$SECONDS
	transcript -F local <<-'EOF' || { cat "$T/err"; false; }
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK*
	C: STAT
	S: +OK 5 1864
	C: QUIT
	S: +OK pop3-handler signing off (5 messages left)
	EOF
	[ $((SECONDS - start)) -lt 5 ]
	[ ! -e "$T/mail/alice.lock" ]
}

@test "without -F a spool on a local file system is local: a dead pid's dotlock is removed at once" {
	dotlock "$NOPID"
	transcript <<-'EOF' || { cat "$T/err"; false; }
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK*
	C: STAT
	S: +OK 5 1864
	C: QUIT
	S: +OK pop3-handler signing off (5 messages left)
	EOF
	[ ! -e "$T/mail/alice.lock" ]
}

@test "as root, -F shared: the keeper waits for a fresh dotlock holding a pid of no process here, and leaves it" {
	[ "$(id -u)" = 0 ] || skip "needs root: makes a system user and a /var/mail spool"
	as_root
	echo "$NOPID" > "/var/mail/$U.lock"
	local start=$SECONDS
	root_session -F shared
	local took=$((SECONDS - start))
	echo "$output (after ${took}s)"
	grep -q "dotlock keeper for /var/mail/$U.lock" "$R/err"
	[[ "${lines[2]}" == "-ERR [IN-USE]"* ]]
	[ "$took" -ge 9 ]
	[ "$(cat "/var/mail/$U.lock")" = "$NOPID" ]
	cmp "$R/spool.orig" "/var/mail/$U"
}

@test "as root, -F local: the keeper removes a dotlock holding a pid of no process here at once" {
	[ "$(id -u)" = 0 ] || skip "needs root: makes a system user and a /var/mail spool"
	as_root
	echo "$NOPID" > "/var/mail/$U.lock"
	root_session -F local
	grep -q "dotlock keeper for /var/mail/$U.lock" "$R/err"
	[[ "${lines[2]}" == "+OK maildrop has 3 messages"* ]] || { echo "$output"; cat "$R/err"; false; }
	[ ! -e "/var/mail/$U.lock" ]
}

# as_root_traced: as_root, for a test that runs the session under strace; skips
# without root or strace.
as_root_traced() {
	[ "$(id -u)" = 0 ] || skip "needs root: makes a system user and a /var/mail spool"
	command -v strace >/dev/null || skip "strace is not installed"
	as_root
}

# traced [HANDLER]: root_session under strace -f (processes, files, links);
# leaves the trace in $R/trace and in $keeper the pid that made the lock.
traced() {
	local h=${1:-$HANDLER}
	status=0
	strace -f -qq -o "$R/trace" -e trace=execve,openat,link,unlink -e signal=none \
		"$h" -d "${OPTS[@]}" < "$R/in" > "$R/out" 2> "$R/err" || status=$?
	output="$(tr -d '\r' < "$R/out")"
	IFS=$'\n' read -r -d '' -a lines <<< "$output" || true
	keeper=$(grep -E "^[0-9]+ +link\(.*\"$U.lock\"\) += 0" "$R/trace" | head -1 | awk '{ print $1 }')
}

@test "as root, the keeper is its own static program from beside the handler: it loads no library and makes the lock" {
	as_root_traced
	traced
	[[ "${lines[2]}" == "+OK maildrop has 3 messages"* ]] || { echo "$output"; cat "$R/err"; false; }
	grep -q "dotlock keeper for /var/mail/$U.lock" "$R/err"
	[ -n "$keeper" ]
	# run as the checked file, by its descriptor, with nothing in its environment
	grep -E "^$keeper +execve\(\"/proc/self/fd/[0-9]+\", \[\"pop3-handler-keeper\"\], .*/\* 0 vars \*/\) = 0" "$R/trace"
	! grep -E "^$keeper +openat\(.*\.so" "$R/trace" || false
	grep -qE "^$keeper +unlink\(\"$U.lock\"\) += 0" "$R/trace"
	[ ! -e "/var/mail/$U.lock" ]
}

@test "as root, the keeper's program is run only for a login whose spool needs it: not for a failed one, nor a spool of the user's" {
	as_root_traced
	printf 'USER %s\r\nPASS wrong\r\nQUIT\r\n' "$U" > "$R/in"
	traced
	[[ "${lines[2]}" == "-ERR [AUTH]"* ]] || { echo "$output"; false; }
	[ "$(grep -c execve "$R/trace")" = 1 ]
	# A mailbox in a directory the user may write needs no helper.
	printf 'USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n' "$U" "$(cat "$R/pass")" > "$R/in"
	mkdir "$R/own"
	cp "$R/spool.orig" "$R/own/$U"
	chown -R "$U" "$R/own"
	OPTS+=(-m "$R/own/%u")
	traced
	[[ "${lines[2]}" == "+OK maildrop has 3 messages"* ]] || { echo "$output"; cat "$R/err"; false; }
	[ "$(grep -c execve "$R/trace")" = 1 ]
	! grep -q "dotlock keeper" "$R/err" || false
}

@test "as root, without its program beside the handler the keeper is a copy of the handler, and the session is the same" {
	as_root_traced
	mkdir "$R/alone"
	cp "$HANDLER" "$R/alone/pop3-handler"
	traced "$R/alone/pop3-handler"
	[[ "${lines[2]}" == "+OK maildrop has 3 messages"* ]] || { echo "$output"; cat "$R/err"; false; }
	[ -n "$keeper" ]
	[ "$(grep -c execve "$R/trace")" = 1 ]
	! grep -q "keeper.*not run\|keeper: .*pop3-handler-keeper" "$R/err" || false
	[ ! -e "/var/mail/$U.lock" ]
}

@test "as root, a keeper program that others may write is not run: it is logged, and a copy keeps the lock" {
	as_root_traced
	mkdir "$R/gw"
	cp "$HANDLER" "$R/gw/pop3-handler"
	cp "$(dirname "$HANDLER")/pop3-handler-keeper" "$R/gw/"
	chmod g+w "$R/gw/pop3-handler-keeper"
	traced "$R/gw/pop3-handler"
	[[ "${lines[2]}" == "+OK maildrop has 3 messages"* ]] || { echo "$output"; cat "$R/err"; false; }
	grep -q "dotlock keeper: $R/gw/pop3-handler-keeper is not a file of root's that only root may write: not run" "$R/err"
	[ "$(grep -c execve "$R/trace")" = 1 ]
	[ -n "$keeper" ]
	chmod g-w "$R/gw/pop3-handler-keeper"
	chown "$U" "$R/gw/pop3-handler-keeper"
	traced "$R/gw/pop3-handler"
	grep -q "pop3-handler-keeper is not a file of root's" "$R/err"
	[ "$(grep -c execve "$R/trace")" = 1 ]
}

@test "the keeper's program run by hand says who runs it, and exits 2" {
	run "$(dirname "$HANDLER")/pop3-handler-keeper"
	[ "$status" -eq 2 ]
	[[ "$output" == *"pop3-handler runs this, as root, with its socket on descriptor 3"* ]]
}

@test "-F takes only shared or local" {
	pop3_session -F nfs -- "USER alice"
	[ "$status" -eq 2 ]
	grep -q -- '-F shared|local' "$T/err"
}

@test "as root, -F shared: the keeper holding a lock without a pid wakes every 60 s to touch it" {
	as_root_traced
	# The keeper's wait on its socket while it holds the lock: a minute,
	# not for ever (the touch itself is what the test above sees happen).
	strace -f -qq -o "$R/trace" -e trace=poll,openat,unlink -e signal=none \
		"$HANDLER" -d -F shared "${OPTS[@]}" < "$R/in" > "$R/out" 2> "$R/err" || true
	cat "$R/out" "$R/err"
	grep -q "dotlock keeper for /var/mail/$U.lock" "$R/err"
	[[ "$(tr -d '\r' < "$R/out" | sed -n 3p)" == "+OK maildrop has 3 messages"* ]]
	grep -E 'poll\(\[\{fd=[0-9]+, events=POLLIN\}\], 1, 60000\)' "$R/trace"
}

@test "as root, -F shared: when the keeper's minute runs out it touches the lock, and goes on holding it" {
	as_root_traced
	# Each process's second poll returns at once, as if its time ran out:
	# the keeper's is its wait for 'U' with the lock held; the root
	# parent's a short wait it repeats; the pre-auth child reads the
	# whole input with its first.
	strace -f -qq -o "$R/trace" -e trace=poll,utimensat,unlink -e signal=none \
		-e inject=poll:retval=0:when=2 \
		"$HANDLER" -d -F shared "${OPTS[@]}" < "$R/in" > "$R/out" 2> "$R/err" || true
	cat "$R/out" "$R/err" "$R/trace"
	[[ "$(tr -d '\r' < "$R/out" | sed -n 3p)" == "+OK maildrop has 3 messages"* ]]
	[[ "$(tr -d '\r' < "$R/out" | sed -n 4p)" == "+OK 3 "* ]]
	grep -E 'poll\(.*, 1, 60000\) = 0 \(Timeout\) \(INJECTED\)' "$R/trace"
	# (the keeper works in /var/mail) touched, then removed when done
	touch_at=$(grep -n "utimensat(AT_FDCWD, \"$U.lock\", NULL, 0) = 0" "$R/trace" | cut -d: -f1)
	unlock_at=$(grep -n "unlink(\"$U.lock\")" "$R/trace" | cut -d: -f1)
	[ -n "$touch_at" ]
	[ -n "$unlock_at" ]
	[ "$touch_at" -lt "$unlock_at" ]
	[ ! -e "/var/mail/$U.lock" ]
}
