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

@test "before login the client is read by a child with the pre-auth uid in an empty chroot; the root part is root, and only it holds the dotlock keeper's program" {
	pop3_own() { :; }	# the files belong to $U
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN
	S: TOP
	S: UIDL
	S: RESP-CODES
	S: AUTH-RESP-CODE
	S: PIPELINING
	S: UTF8 USER
	S: LANG
	S* IMPLEMENTATION *
	S: .
	! child=\$(pgrep -u $(preauth_uid) -P \$HANDLER_PID); echo "child \$child" >&2; test -n "\$child"
	! child=\$(pgrep -u $(preauth_uid) -P \$HANDLER_PID); test "\$(awk '/^Uid:/ { print \$2, \$3, \$4, \$5 }' /proc/\$child/status)" = "$(preauth_uid) $(preauth_uid) $(preauth_uid) $(preauth_uid)"
	! child=\$(pgrep -u $(preauth_uid) -P \$HANDLER_PID); test "\$(readlink /proc/\$child/root)" = /var/empty
	! child=\$(pgrep -u $(preauth_uid) -P \$HANDLER_PID); test "\$(awk '/^Groups:/ { print \$2 }' /proc/\$child/status)" = ""
	! test "\$(awk '/^Uid:/ { print \$2 }' /proc/\$HANDLER_PID/status)" = 0
	! test -z "\$(ls -A /var/empty)"
	! test "\$(pgrep -P \$HANDLER_PID | wc -l)" = 1
	! ls -l /proc/\$HANDLER_PID/fd | grep -q '/pop3-handler-keeper\$'
	! child=\$(pgrep -u $(preauth_uid) -P \$HANDLER_PID); ! ls -l /proc/\$child/fd | grep -q pop3-handler-keeper
	C: USER $U
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 3 messages*
	! test -z "\$(pgrep -P \$HANDLER_PID)"
	! test "\$(awk '/^Uid:/ { print \$2, \$3, \$4, \$5 }' /proc/\$HANDLER_PID/status)" = "$(id -u "$U") $(id -u "$U") $(id -u "$U") $(id -u "$U")"
	C: STAT
	S* +OK 3 *
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	! grep -q '^! exit' <<< "$output" || { echo "$output"; cat "$T/err"; false; }
	[ "$status" -eq 0 ]
}

@test "pipelined commands sent with PASS reach the root part after the hand-over, in order" {
	pop3_own() { :; }
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER $U
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 3 messages*
	C: STAT
	S* +OK 3 *
	C: LIST 1
	S* +OK 1 *
	C: NOOP
	S: +OK
	C: QUIT
	S* +OK pop3-handler signing off*
	EOF
	[ "$status" -eq 0 ]
}

@test "three failures in the pre-auth child close the connection; the root part counts them" {
	pop3_own() { :; }
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER $U
	S: +OK Send PASS
	C: PASS a
	S: -ERR [AUTH] Authentication failed
	C: USER $U
	S: +OK Send PASS
	C: PASS b
	S: -ERR [AUTH] Authentication failed
	C: USER $U
	S: +OK Send PASS
	C: PASS c
	S: -ERR [AUTH] Too many failures
	# closed: the rest is never answered
	C: USER $U
	C: PASS secret
	C: STAT
	EOF
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
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(printf '\0%s\0secret' "$U" | base64 -w0)
	S* +OK maildrop has 3 messages*
	C: STAT
	S* +OK 3 *
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	grep -q "login: user=$U .*method=PLAIN" "$T/err"
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH LOGIN
	S: + VXNlcm5hbWU6
	C: $(printf %s "$U" | base64 -w0)
	S: + UGFzc3dvcmQ6
	C: $(printf secret | base64 -w0)
	S* +OK maildrop has 3 messages*
	C: STAT
	S* +OK 3 *
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	[ "$status" -eq 0 ]
}

@test "CRAM-MD5 through the root part: it checks the digest against its own challenge" {
	pop3_own() { :; }
	printf '%s:tanstaaf\n' "$U" > "$T/secrets"
	chmod 600 "$T/secrets"
	transcript -a "$T/secrets" <<-EOF
	S~ \+OK pop3-handler ready <[^<>]+>
	K: $U wrong
	S~ \+ [A-Za-z0-9+/]+=*
	S: -ERR [AUTH] Authentication failed
	K: $U tanstaaf
	S~ \+ [A-Za-z0-9+/]+=*
	S* +OK maildrop has 3 messages*
	C: STAT
	S* +OK 3 *
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
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
