#!/usr/bin/env bats
# Failed logins must not tell one kind of failure from another by their
# timing. As root, the way the handler is deployed: real system users with
# yescrypt hashes, the shipped pam.d/pop3 (pam_unix through common-auth), one
# handler per connection on a loopback port. Linux-PAM's own random failure
# delay is seeded with the second a run began, so two attempts whose PASS
# arrives in the same second get the same one; pairing attempts that way
# takes that noise out, and what is left is the server's own difference.
#
# Everything made here (users, PAM service, daemons, temp dir) is removed in
# teardown_file, whatever happened. Each test skips unless root.

load helpers
load e2e

PAIRS=15	# pairs per comparison; the median of their gaps is asserted

# bats 1.8 (Debian 12) cannot skip from setup_file: it sets nothing up, and
# setup skips each test.
setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	e2e_begin || return 1
	local who
	# known: a yescrypt user; expired: the same, with an account that
	# expired long ago (chage -E 0); apop: a user with an APOP secret.
	for who in known expired apop; do
		e2e_user p3m
		echo "$U:$(cat "$R/pass")" | chpasswd -c YESCRYPT
		mv "$R/pass" "$R/$who.pass"
		echo "$U" > "$R/$who.user"
	done
	chage -E 0 "$(cat "$R/expired.user")"
	# root2: a second account with uid 0, which PAM lets in and the
	# handler then refuses.
	fresh_name p3m0 > "$R/user0"
	useradd -o -u 0 -g 0 -M -N -d /nonexistent -s /usr/sbin/nologin "$(cat "$R/user0")"
	od -An -tx1 -N12 /dev/urandom | tr -d ' \n' > "$R/root2.pass"
	echo "$(cat "$R/user0"):$(cat "$R/root2.pass")" | chpasswd -c YESCRYPT
	echo wrong > "$R/wrong.pass"
	printf '%s:apop secret\n' "$(cat "$R/apop.user")" > "$R/secrets"
	chmod 600 "$R/secrets"
	e2e_pam
	# slow: a PAM service whose every run takes 1.5 s, longer than the
	# failure delay.
	fresh_name p3slow > "$R/slow.service"
	{
		echo "auth requisite pam_exec.so quiet /bin/sleep 1.5"
		cat "$TOP/pam.d/pop3"
	} > "/etc/pam.d/$(cat "$R/slow.service")"
	e2e_activate plain "$HANDLER" -d "${OPTS[@]}"
	echo "$PORT" > "$R/plain.port"
	e2e_activate apoponly "$HANDLER" -d "${OPTS[@]}" -a "$R/secrets" -A
	echo "$PORT" > "$R/apoponly.port"
}

teardown_file() {
	if [ -s "${R:-/nonexistent}/slow.service" ]; then
		rm -f "/etc/pam.d/$(cat "$R/slow.service")"
	fi
	e2e_cleanup
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root: makes system users and an /etc/pam.d service"
}

# pairs DAEMON USER-A PASS-A USER-B PASS-B: runs $PAIRS pairs against DAEMON
# (each PASS file a name under $R), shows each pair and the median gap on fd 3,
# and leaves the median's absolute value in microseconds in $gap.
pairs() {
	run python3 "$BATS_TEST_DIRNAME/timing.py" pairs 127.0.0.1 "$(cat "$R/$1.port")" \
		"$PAIRS" "$2" "$R/$3.pass" "$4" "$R/$5.pass"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
	gap=$(sed -n 's/^median A-B: -\{0,1\}\([0-9]*\)\.\([0-9]\) ms$/\1\200/p' <<< "$output")
	[ -n "$gap" ]
}

@test "a known user's wrong password is answered when an unknown user's is (median gap of paired tries under 5 ms)" {
	pairs plain "$(cat "$R/known.user")" wrong "nosuch$$$RANDOM" wrong
	[ "$gap" -lt 5000 ]
}

@test "an expired account's right password is answered when its wrong one is (median gap under 5 ms)" {
	local u
	u=$(cat "$R/expired.user")
	pairs plain "$u" expired "$u" wrong
	[ "$gap" -lt 5000 ]
	grep -q "authentication failed: user=$u .*PAM refused" "$R/plain.log"
}

@test "with -A, a password for an APOP user is answered when another user's wrong one is (median gap under 5 ms)" {
	local u
	u=$(cat "$R/apop.user")
	pairs apoponly "$u" apop "$(cat "$R/known.user")" wrong
	[ "$gap" -lt 5000 ]
	grep -q "authentication failed: user=$u .*APOP user (-A)" "$R/apoponly.log"
}

@test "a uid-0 account's right password is answered when its wrong one is (median gap under 5 ms)" {
	local u
	u=$(cat "$R/user0")
	pairs plain "$u" root2 "$u" wrong
	[ "$gap" -lt 5000 ]
	grep -q "$u: refused: uid 0 is never served" "$R/plain.log"
}

@test "a PAM run longer than the failure delay is answered when it ends, and a warning says its timing shows" {
	local t0 t1
	printf 'USER %s\r\nPASS wrong\r\nQUIT\r\n' "$(cat "$R/known.user")" > "$R/slow.in"
	t0=$(date +%s%N)
	"$HANDLER" -d -s "$(cat "$R/slow.service")" < "$R/slow.in" > "$R/slow.out" 2> "$R/slow.err" || true
	t1=$(date +%s%N)
	cat "$R/slow.err"
	grep -q -- '-ERR \[AUTH\] Authentication failed' "$R/slow.out"
	grep -q 'the credential check took longer than the failure delay (1000 ms)' "$R/slow.err"
	[ $(( (t1 - t0) / 1000000 )) -ge 1500 ]
}
