#!/usr/bin/env bats
# Brute force, bad input and resource bounds: the growing delay and the hard
# limit on failed logins, the limit on bad commands, the same cost for an
# unknown user as for a wrong password, no secret in any log line, constant
# memory for a huge message, and signals that must not cut an UPDATE short.

load helpers
load drive

setup() {
	pop3_setup
	echo 'dave:S3cr3t-Pw-Marker:pop3' >> "$T/passdb"
	GEN="$BATS_TEST_DIRNAME/gen-mbox.py"
	python3 "$GEN" --count 5 --seed 91 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
}

teardown() {
	pop3_teardown
}

now() { date +%s%N; }

@test "each failed login waits longer than the one before: 1 s, then 2 s, and the third closes" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	! date +%s%N > "$T/t0"
	C: PASS wrong1
	S: -ERR [AUTH] Authentication failed
	! date +%s%N > "$T/t1"
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong2
	S: -ERR [AUTH] Authentication failed
	! date +%s%N > "$T/t2"
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong3
	S: -ERR [AUTH] Too many failures
	EOF
	first=$(( ($(cat "$T/t1") - $(cat "$T/t0")) / 1000000 ))
	second=$(( ($(cat "$T/t2") - $(cat "$T/t1")) / 1000000 ))
	[ "$first" -ge 1000 ]
	[ "$first" -lt 2000 ]
	[ "$second" -ge 2000 ]
	[ "$second" -lt 3000 ]
	[ "$status" -eq 1 ]
	[ "$(grep -c 'authentication failed: user=alice host=local' "$T/err")" -eq 3 ]
}

@test "20 bad commands (unknown, malformed, too long, NUL) end the session with -ERR Too many bad commands" {
	{
		echo "S: +OK pop3-handler ready"
		for i in $(seq 1 16); do printf '%s\n' "C: BOGUS$i" "S: -ERR Unknown command"; done
		cat <<-EOF
		C: LIST abc
		S: -ERR Unknown command
		C: $(head -c 300 /dev/zero | tr '\0' x)
		S: -ERR Line too long
		C: USER
		S: -ERR Syntax error
		# 19 single -ERR lines, then the 20th bad command closes the session
		W: NO\x01OP\r\n
		S: -ERR Too many bad commands
		C: STAT
		C: QUIT
		W: X\0Y\r\nCAPA\r\n
		EOF
	} > "$T/script"
	transcript < "$T/script"
	[ "$status" -eq 1 ]
	[ "$(grep -c '^-ERR' <<< "$output")" -eq 20 ]
	grep -q 'host=local: 20 bad commands, closing' "$T/err"
}

@test "bad commands below the limit do not close the session" {
	{
		printf '%s\n' "S: +OK pop3-handler ready" "C: USER alice" "S: +OK Send PASS" \
			"C: PASS secret" "S* +OK maildrop has 5 messages *"
		for i in $(seq 1 19); do printf '%s\n' "C: LIST x$i" "S: -ERR Invalid message number"; done
		printf '%s\n' "C: STAT" "S* +OK 5 *" "C: QUIT" "S: +OK pop3-handler signing off (5 messages left)"
	} > "$T/script"
	transcript < "$T/script"
	[ "$status" -eq 0 ]
}

@test "no password reaches a log line: PASS, a failed PASS, and AUTH PLAIN" {
	pop3_session "USER dave" "PASS S3cr3t-Pw-Marker" QUIT
	[ "$status" -eq 0 ]
	cp "$T/err" "$T/log1"
	pop3_session "USER dave" "PASS S3cr3t-Pw-Marker-wrong" QUIT
	cp "$T/err" "$T/log2"
	plain=$(printf '\0dave\0S3cr3t-Pw-Marker' | base64)
	pop3_session "AUTH PLAIN $plain" QUIT
	cp "$T/err" "$T/log3"
	grep -q 'login: user=dave' "$T/log1"
	grep -q 'authentication failed: user=dave' "$T/log2"
	! grep -q 'S3cr3t' "$T/log1" "$T/log2" "$T/log3" || false
	! grep -qF "$plain" "$T/log3"
}

@test "RETR of a 256 MB message runs in constant memory" {
	{ printf 'From big@example.org Mon Jan  1 00:00:00 2024\nSubject: big\n\n'
	  yes 'The quick brown fox jumps over the lazy dog, again and again and again.' | head -c 268435456
	  printf '\n'; } > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	printf '%s\r\n' "USER alice" "PASS secret" "RETR 1" QUIT > "$T/in"
	pop3_own
	env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
		/usr/bin/time -f %M -o "$T/rss" "${RUNAS[@]}" "$HANDLER" -m "$T/mail/%u" -D "$T/state/%u" \
		< "$T/in" | tail -c 100 > "$T/tail"
	grep -q 'signing off' "$T/tail"
	rss=$(cat "$T/rss")
	echo "# peak RSS for a 256 MB RETR: $rss KiB" >&3
	[ "$rss" -lt 16384 ]
}

@test "SIGTERM and SIGHUP during the rewrite wait until the mailbox is consistent" {
	command -v strace >/dev/null || skip "strace is not installed"
	python3 "$GEN" --count 3000 --seed 92 > "$T/mail/alice"
	python3 "$GEN" --count 3000 --seed 92 --omit 1 > "$T/expected"
	cp "$T/mail/alice" "$T/alice.orig"
	for sig in SIGTERM SIGHUP; do
		cp "$T/alice.orig" "$T/mail/alice"
		printf '%s\r\n' "USER alice" "PASS secret" "DELE 1" QUIT > "$T/in"
		pop3_own
		status=0
		env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
			"${RUNAS[@]}" strace -f -qq -o /dev/null -e trace=ftruncate -e inject=ftruncate:signal=$sig:when=1 \
			"$HANDLER" -m "$T/mail/%u" -D "$T/state/%u" < "$T/in" > "$T/out" 2>&1 || status=$?
		# the signal arrived in the middle of the update, which finished first
		cmp "$T/expected" "$T/mail/alice"
		[ -z "$(left_over "$T/state/alice")" ]
	done
}

@test "a client that stops reading in mid-RETR is cut off after -t seconds, on a TCP socket" {
	{ printf 'From big@example.org Mon Jan  1 00:00:00 2024\nSubject: big\n\n'
	  yes 'A line of a message that the client will never read, again and again.' | head -c 33554432
	  printf '\n'; } > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	pop3_own
	# inetd's part in Python: the accepted TCP connection is the handler's
	# stdin and stdout; the client sends RETR and then reads nothing.
	run python3 - "$HANDLER" "$T" "$PAM_WRAPPER_LIB" "${RUNAS[@]}" <<-'PY'
	import os, socket, subprocess, sys, time
	handler, t, lib, runas = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
	ls = socket.socket()
	ls.bind(("127.0.0.1", 0))
	ls.listen(1)
	client = socket.socket()
	client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
	client.connect(ls.getsockname())
	conn, _ = ls.accept()
	env = dict(os.environ, LD_PRELOAD=lib, PAM_WRAPPER="1", PAM_WRAPPER_SERVICE_DIR=t + "/pam.d")
	err = open(t + "/err", "w")
	p = subprocess.Popen(runas + [handler, "-d", "-t", "2", "-m", t + "/mail/%u", "-D", t + "/state/%u"],
	                     stdin=conn, stdout=conn, stderr=err, env=env)
	conn.close()
	client.sendall(b"USER alice\r\nPASS secret\r\nRETR 1\r\n")
	start = time.monotonic()
	try:
	    status = p.wait(60)
	except subprocess.TimeoutExpired:
	    p.kill()
	    print("still writing after 60 s")
	    sys.exit(1)
	print("exit %d after %.1f s" % (status, time.monotonic() - start))
	PY
	echo "$output"
	cat "$T/err"
	[ "$status" -eq 0 ]
	grep -q 'write to client failed: timed out' "$T/err"
	secs=$(sed -n 's/^exit 1 after \([0-9]*\)\..*/\1/p' <<< "$output")
	[ -n "$secs" ]
	[ "$secs" -ge 2 ]
	[ "$secs" -lt 30 ]
}
