#!/usr/bin/env bats
# The shipped fail2ban filter (fail2ban/filter.d/pop3-handler.conf) against
# the log lines that real sessions just wrote: each failed login counts once
# for the client's address, the session closed after the third failure once
# more, and nothing else. The handler listens on loopback ports, IPv4 and
# IPv6; behind a trusted proxy (-X) the address is the PROXY header's.
# Lines get the time stamp and host name that rsyslog puts before them in
# /var/log/mail.log (the handler's -d copy on stderr has neither).

load helpers

setup() {
	pop3_setup
	mbox alice <<-'EOF'
	From bob@example.org Mon Jan  1 00:00:00 2024
	Subject: one

	first

	EOF
	printf 'alice:tanstaaf\n' > "$T/secrets"
	chmod 600 "$T/secrets"
	if [ "$(id -u)" = 0 ]; then chown nobody:nogroup "$T/secrets"; fi
	# fail2ban-regex reads common.conf from the filter's own directory.
	mkdir -p "$T/f2b/filter.d"
	cp "$BATS_TEST_DIRNAME/../fail2ban/filter.d/pop3-handler.conf" "$T/f2b/filter.d/"
	cp /etc/fail2ban/filter.d/common.conf "$T/f2b/filter.d/"
}

teardown() {
	pop3_unlisten
	pop3_teardown
}

# client ADDR HEADER-PYTHON-EXPR [pop3 lines...]: connects to ADDR:$PORT,
# sends the header and the POP3 lines in one write (pipelined), and prints
# every line the server sends until it closes.
client() {
	python3 - "$1" "$PORT" "$2" "${@:3}" <<-'PY'
	import socket, sys
	addr, port, header, cmds = sys.argv[1], int(sys.argv[2]), eval(sys.argv[3]), sys.argv[4:]
	s = socket.create_connection((addr, port), 10)
	s.settimeout(30)
	s.sendall(header + b"".join(c.encode() + b"\r\n" for c in cmds))
	data = b""
	while True:
	    d = s.recv(65536)
	    if not d:
	        break
	    data += d
	sys.stdout.write(data.decode("latin-1").replace("\r", ""))
	PY
}

# The handler's lines in $T/err as rsyslog writes them to mail.log, in $T/mail.log.
syslogged() {
	grep '^pop3-handler\[' "$T/err" |
		sed "s/^/$(date -u +%Y-%m-%dT%H:%M:%S.000000+00:00) mx /" > "$T/mail.log"
}

# The address fail2ban takes from each matching line of $T/mail.log, in order.
banned() {
	fail2ban-regex -o ip "$T/mail.log" "$T/f2b/filter.d/pop3-handler.conf"
}

@test "fail2ban: failed PASS, APOP and AUTH PLAIN over IPv4 and IPv6 count once each for the client, and closing after three once more" {
	pop3_listen -a "$T/secrets"
	transcript_via client 127.0.0.1 'b""' <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong1
	S: -ERR [AUTH] Authentication failed
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong2
	S: -ERR [AUTH] Authentication failed
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong3
	S: -ERR [AUTH] Too many failures
	EOF
	transcript_via client 127.0.0.1 'b""' <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: APOP alice 0123456789abcdef0123456789abcdef
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	pop3_unlisten
	LISTEN_ADDR=::1 pop3_listen -a "$T/secrets"
	transcript_via client ::1 'b""' <<-EOF
	S~ \+OK pop3-handler ready <[^<>]+>
	C: AUTH PLAIN $(printf '\0alice\0wrong' | base64)
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	syslogged
	run banned
	[ "$output" = "$(printf '%s\n' 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 ::1)" ]
	grep -q 'host=127.0.0.1: 3 failed logins, closing' "$T/mail.log"
	grep -q 'authentication failed: user=alice host=127.0.0.1 method=APOP: ' "$T/mail.log"
	grep -q 'authentication failed: user=alice host=::1 method=PLAIN: ' "$T/mail.log"
}

@test "fail2ban: behind a trusted proxy the address is the PROXY header's, IPv4 or IPv6, never the proxy's" {
	pop3_listen -X 127.0.0.1
	transcript_via client 127.0.0.1 'b"PROXY TCP4 192.0.2.9 192.0.2.2 56324 110\r\n"' <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	transcript_via client 127.0.0.1 'b"PROXY TCP6 2001:db8::66 2001:db8::1 4000 110\r\n"' <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(printf '\0alice\0wrong' | base64)
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	syslogged
	run banned
	[ "$output" = "$(printf '%s\n' 192.0.2.9 2001:db8::66)" ]
}

@test "fail2ban: a good login matches nothing, one mistyped PASS in a pipelined retry matches once" {
	pop3_listen
	transcript_via client 127.0.0.1 'b""' <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (23 octets)
	C: STAT
	S: +OK 1 23
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	transcript_via client 127.0.0.1 'b""' <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secrte
	S: -ERR [AUTH] Authentication failed
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (23 octets)
	C: STAT
	S: +OK 1 23
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	syslogged
	[ "$(grep -c 'login: user=alice host=127.0.0.1 method=PASS' "$T/mail.log")" -eq 2 ]
	run banned
	[ "$output" = 127.0.0.1 ]
}

@test "fail2ban: a user name that holds host= or spaces cannot name the address banned" {
	pop3_listen
	transcript_via client 127.0.0.1 'b""' <<-'EOF'
	S: +OK pop3-handler ready
	C: USER host=203.0.113.5
	S: +OK Send PASS
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	transcript_via client 127.0.0.1 'b""' <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(printf '\0x host=203.0.113.6 method=PASS: PAM refused\0wrong' | base64 -w0)
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	syslogged
	grep -q 'user=host=203.0.113.5 host=127.0.0.1 method=PASS: ' "$T/mail.log"
	run banned
	[ "$output" = "$(printf '%s\n' 127.0.0.1 127.0.0.1)" ]
}
