#!/usr/bin/env bats
# Privilege separation before login. Started as root, the handler reads the
# client in a child that runs as the pre-auth user, chrooted to an empty
# directory; the root part only checks credentials, then becomes the user.
# PAM is pam_wrapper's pam_matrix here, so that only the account itself has
# to be real (the root part looks the user up in the password database).

load helpers
load drive

setup() {
	[ "$(id -u)" = 0 ] || skip "privilege separation happens only when started as root"
	pop3_setup
	U="p3s$$"
	U="${U:0:16}"
	useradd --system --no-create-home --shell /usr/sbin/nologin "$U"
	echo "$U:secret:pop3" >> "$T/passdb"
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count 3 --seed 71 > "$T/mail/$U"
	chown -R "$U" "$T/mail" "$T/state"
	chmod 600 "$T/mail/$U"
	RUNAS=()	# the handler itself starts as root
}

teardown() {
	[ -n "${U:-}" ] && userdel "$U" 2>/dev/null || true
	pop3_teardown
}

# The pre-auth user the handler falls back to when it has none of its own.
preauth_uid() {
	id -u pop3-handler 2>/dev/null || id -u nobody
}

@test "before login the client is read by a child with the pre-auth uid in an empty chroot; the root part is root" {
	pop3_own() { :; }	# the files belong to $U
	pop3_drive <<-EOF
	C: CAPA
	! child=\$(pgrep -P \$HANDLER_PID); echo "child \$child" >&2; test -n "\$child"
	! child=\$(pgrep -P \$HANDLER_PID); test "\$(awk '/^Uid:/ { print \$2, \$3, \$4, \$5 }' /proc/\$child/status)" = "$(preauth_uid) $(preauth_uid) $(preauth_uid) $(preauth_uid)"
	! child=\$(pgrep -P \$HANDLER_PID); test "\$(readlink /proc/\$child/root)" = /var/empty
	! child=\$(pgrep -P \$HANDLER_PID); test "\$(awk '/^Groups:/ { print \$2 }' /proc/\$child/status)" = ""
	! test "\$(awk '/^Uid:/ { print \$2 }' /proc/\$HANDLER_PID/status)" = 0
	! test -z "\$(ls -A /var/empty)"
	C: USER $U
	C: PASS secret
	! test -z "\$(pgrep -P \$HANDLER_PID)"
	! test "\$(awk '/^Uid:/ { print \$2, \$3, \$4, \$5 }' /proc/\$HANDLER_PID/status)" = "$(id -u "$U") $(id -u "$U") $(id -u "$U") $(id -u "$U")"
	C: STAT
	C: QUIT
	EOF
	! grep -q '^! exit' <<< "$output" || { echo "$output"; cat "$T/err"; false; }
	[[ "${lines[-3]}" == "+OK maildrop has 3 messages"* ]]
	[[ "${lines[-2]}" == "+OK 3 "* ]]
	[ "$status" -eq 0 ]
}

@test "pipelined commands sent with PASS reach the root part after the hand-over, in order" {
	pop3_own() { :; }
	pop3_session "USER $U" "PASS secret" STAT "LIST 1" NOOP QUIT
	[ "$status" -eq 0 ]
	[[ "${lines[2]}" == "+OK maildrop has 3 messages"* ]]
	[[ "${lines[3]}" == "+OK 3 "* ]]
	[[ "${lines[4]}" == "+OK 1 "* ]]
	[ "${lines[5]}" = "+OK" ]
	[[ "${lines[6]}" == "+OK pop3-handler signing off"* ]]
}

@test "three failures in the pre-auth child close the connection; the root part counts them" {
	pop3_own() { :; }
	pop3_session "USER $U" "PASS a" "USER $U" "PASS b" "USER $U" "PASS c" "USER $U" "PASS secret" STAT
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[4]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[6]}" = "-ERR [AUTH] Too many failures" ]
	[ "${#lines[@]}" -eq 7 ]
	[ "$status" -eq 1 ]
	[ "$(grep -c 'authentication failed' "$T/err")" -eq 3 ]
}

@test "a session that ends before login exits with the child's status" {
	pop3_own() { :; }
	pop3_session CAPA QUIT
	[ "$status" -eq 0 ]
	printf 'CAPA\r\n' > "$T/in"
	pop3_run
	[ "$status" -eq 1 ]
}

@test "SASL PLAIN and LOGIN are parsed in the child; the root part checks the password and logs in" {
	pop3_own() { :; }
	pop3_session "AUTH PLAIN $(printf '\0%s\0secret' "$U" | base64 -w0)" STAT QUIT
	[[ "${lines[1]}" == "+OK maildrop has 3 messages"* ]]
	[[ "${lines[2]}" == "+OK 3 "* ]]
	grep -q "login: user=$U .*method=PLAIN" "$T/err"
	pop3_session "AUTH LOGIN" "$(printf %s "$U" | base64 -w0)" "$(printf secret | base64 -w0)" STAT QUIT
	[[ "${lines[3]}" == "+OK maildrop has 3 messages"* ]]
	[ "$status" -eq 0 ]
}

@test "CRAM-MD5 through the root part: it checks the digest against its own challenge" {
	pop3_own() { :; }
	printf '%s:tanstaaf\n' "$U" > "$T/secrets"
	chmod 600 "$T/secrets"
	pop3_drive -a "$T/secrets" <<-EOF
	K: $U wrong
	K: $U tanstaaf
	C: STAT
	C: QUIT
	EOF
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	[[ "${lines[4]}" == "+OK maildrop has 3 messages"* ]]
	[[ "${lines[5]}" == "+OK 3 "* ]]
	grep -q 'CRAM-MD5: wrong digest' "$T/err"
	[ "$status" -eq 0 ]
}

@test "as root, on a socket, the -L timer ends with the login: a session idle past the deadline gets no SIGALRM" {
	command -v strace >/dev/null || skip "strace is not installed"
	pop3_own() { :; }	# the files belong to $U
	# On a pipe each write to the client sets an alarm of its own, which
	# would hide a login alarm left running; on a socket nothing does.
	RUNAS=(strace -ff -q -o "$T/trace" -e trace=alarm -e signal=SIGALRM --)
	pop3_listen -L 2
	run python3 - "$PORT" "$U" <<-'PY'
	import socket, sys, time
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
	s.settimeout(10)
	f = s.makefile("rb")
	print(f.readline().decode().rstrip("\r\n"))
	for cmd in ("USER " + sys.argv[2], "PASS secret", None, "STAT", "QUIT"):
	    if cmd is None:
	        time.sleep(3)	# past the -L deadline
	        continue
	    s.sendall(cmd.encode() + b"\r\n")
	    print(f.readline().decode().rstrip("\r\n"))
	PY
	pop3_unlisten
	echo "$output"
	cat "$T"/trace.*
	[[ "${lines[2]}" == "+OK maildrop has 3 messages"* ]]
	[[ "${lines[3]}" == "+OK 3 "* ]]
	[[ "${lines[4]}" == "+OK pop3-handler signing off"* ]]
	grep -q '^alarm(2)' "$T"/trace.*
	grep -q '^alarm(0)' "$T"/trace.*
	! grep -q 'SIGALRM' "$T"/trace.* || false
}
