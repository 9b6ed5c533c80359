#!/usr/bin/env bats
# PROXY protocol v1 and v2 (-X): behind a trusted load balancer the header
# names the client, for the logs and PAM_RHOST; a malformed one closes the
# connection before the greeting. The handler listens on a loopback port,
# so the "proxy" here is 127.0.0.1.

load helpers

setup() {
	pop3_setup
	mbox alice <<'EOF2'
From bob@example.org Mon Jan  1 00:00:00 2024
Subject: one

first

EOF2
}

teardown() {
	pop3_unlisten
	pop3_teardown
}

# client HEADER-PYTHON-EXPR [pop3 lines...]: connects (to $HOST, or
# 127.0.0.1), sends the header
# (a Python bytes expression) and the POP3 lines in one write, and prints
# every line the server sends until it closes.
client() {
	python3 - "${HOST:-127.0.0.1}" "$PORT" "$@" <<-'PY'
	import socket, struct, sys
	port, header, cmds = int(sys.argv[2]), eval(sys.argv[3]), sys.argv[4:]
	s = socket.create_connection((sys.argv[1], port), 10)
	s.settimeout(15)
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

SIG='b"\r\n\r\n\x00\r\nQUIT\n"'

@test "v1 TCP4: the header's source address is the client in the log" {
	pop3_listen -X 127.0.0.1
	transcript_via client 'b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 110\r\n"' <<-'EOF'
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
	grep -q 'login: user=alice host=192.0.2.1 ' "$T/err"
	grep -q 'proxy 127.0.0.1: client 192.0.2.1' "$T/err"
}

@test "v1 TCP6 names an IPv6 client" {
	pop3_listen -X 127.0.0.0/8
	transcript_via client 'b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 110\r\n"' <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 1 message*
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	grep -q 'login: user=alice host=2001:db8::7 ' "$T/err"
}

@test "v2 PROXY TCP4 with a TLV, and the client's pipelined commands in the same packet" {
	pop3_listen -X ::1,127.0.0.1/32
	transcript_via client "$SIG"' + b"\x21\x11" + struct.pack("!H", 12 + 7) + bytes([198, 51, 100, 9, 10, 0, 0, 1]) + struct.pack("!HH", 40000, 110) + b"\x04\x00\x04abcd"' <<-'EOF'
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
	grep -q 'login: user=alice host=198.51.100.9 ' "$T/err"
}

@test "v2 LOCAL (the proxy's health check) keeps the proxy's own address" {
	pop3_listen -X 127.0.0.1
	transcript_via client "$SIG"' + b"\x20\x00\x00\x00"' <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 1 message*
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	grep -q 'login: user=alice host=127.0.0.1 ' "$T/err"
}

@test "a malformed header, or none, from a trusted proxy closes the connection without a greeting" {
	pop3_listen -X 127.0.0.1
	for h in 'b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 110\n"' \
	    'b"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n"' \
	    'b"PROXY TCP4 300.0.2.1 192.0.2.2 1 2\r\n"' \
	    'b"PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n"' \
	    'b"PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n"' \
	    'b"PROXY " + b"x" * 120 + b"\r\n"' \
	    "$SIG"' + b"\x31\x11\x00\x0c" + bytes(12)' \
	    "$SIG"' + b"\x21\x12\x00\x0c" + bytes(12)' \
	    "$SIG"' + b"\x21\x11\x00\x08" + bytes(8)' \
	    "$SIG"' + b"\x21\x11\xff\xff"' \
	    'b""'; do
		run client "$h" "USER alice"
		echo "$h: $output"
		[ -z "$output" ]
	done
	[ "$(grep -c 'malformed PROXY header\|connection closed in the PROXY header' "$T/err")" -ge 11 ]
	! grep -q 'login:' "$T/err"
}

@test "a connection from an address not in -X is served as is: a PROXY line is just an unknown command" {
	pop3_listen -X 192.0.2.0/24
	transcript_via client 'b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 110\r\n"' <<-'EOF'
	S: +OK pop3-handler ready
	# the PROXY line, sent before the C: lines, is a command here
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "a malformed -X list is a usage error" {
	printf 'QUIT\r\n' > "$T/in"
	pop3_run -X 127.0.0.1,
	[ "$status" -eq 2 ]
	pop3_run -X 10.0.0.0/33
	[ "$status" -eq 2 ]
}

# trusted HOST NETS: whether -X NETS trusts a proxy at HOST (127.0.0.1 or
# ::1, where it connects from): "yes" when its PROXY line names the client,
# "no" when the line is taken for an unknown command.
trusted() {
	local HOST=$1
	PORT="$(python3 -c 'import socket, sys; s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$HOST")"
	pop3_own
	systemd-socket-activate -l "$([[ $HOST == *:* ]] && echo "[$HOST]" || echo "$HOST"):$PORT" --inetd -a \
		"${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" -X "$2" \
		2>> "$T/err" &
	LISTENER=$!
	local i out=
	for i in $(seq 50); do
		out=$(client 'b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 110\r\n"' QUIT 2>/dev/null) && [ -n "$out" ] && break
		sleep 0.1
	done
	pop3_unlisten
	case $out in
	$'+OK pop3-handler ready\n+OK pop3-handler signing off'*) echo yes ;;
	$'+OK pop3-handler ready\n-ERR Unknown command\n'*) echo no ;;
	*) echo "unexpected: $out" ;;
	esac
}

@test "-X networks whose prefix is no multiple of 8 trust the addresses just inside and no others, IPv4 and IPv6" {
	local want net host got bad=0
	while read -r want host net; do
		got=$(trusted "$host" "$net")
		echo "$host in -X $net: $got (want $want)"
		[ "$got" = "$want" ] || bad=$((bad + 1))
	done <<-EOF
	yes 127.0.0.1 127.0.0.0/25
	no  127.0.0.1 127.0.0.128/25
	no  127.0.0.1 127.0.0.129/25
	yes 127.0.0.1 127.0.0.0/31
	no  127.0.0.1 127.0.0.2/31
	yes 127.0.0.1 127.0.15.255/20
	no  127.0.0.1 127.0.16.0/20
	yes 127.0.0.1 127.0.0.31/27
	no  127.0.0.1 127.0.0.32/27
	yes 127.0.0.1 0.0.0.0/1
	no  127.0.0.1 128.0.0.0/1
	yes ::1 ::/127
	no  ::1 ::2/127
	yes ::1 ::7f/121
	no  ::1 ::80/121
	yes ::1 ::/9
	no  ::1 80::/9
	EOF
	[ "$bad" -eq 0 ]
}
