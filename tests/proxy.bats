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

# client HEADER-PYTHON-EXPR [pop3 lines...]: connects, sends the header
# (a Python bytes expression) and the POP3 lines in one write, and prints
# every line the server sends until it closes.
client() {
	python3 - "$PORT" "$@" <<-'PY'
	import socket, struct, sys
	port, header, cmds = int(sys.argv[1]), eval(sys.argv[2]), sys.argv[3:]
	s = socket.create_connection(("127.0.0.1", port), 10)
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
	run client 'b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 110\r\n"' "USER alice" "PASS secret" STAT QUIT
	[ "${lines[0]}" = "+OK pop3-handler ready" ]
	[ "${lines[3]}" = "+OK 1 23" ]
	grep -q 'login: user=alice host=192.0.2.1 ' "$T/err"
	grep -q 'proxy 127.0.0.1: client 192.0.2.1' "$T/err"
}

@test "v1 TCP6 names an IPv6 client" {
	pop3_listen -X 127.0.0.0/8
	run client 'b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 110\r\n"' "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "+OK maildrop has 1 message"* ]]
	grep -q 'login: user=alice host=2001:db8::7 ' "$T/err"
}

@test "v2 PROXY TCP4 with a TLV, and the client's pipelined commands in the same packet" {
	pop3_listen -X ::1,127.0.0.1/32
	run client "$SIG"' + b"\x21\x11" + struct.pack("!H", 12 + 7) + bytes([198, 51, 100, 9, 10, 0, 0, 1]) + struct.pack("!HH", 40000, 110) + b"\x04\x00\x04abcd"' "USER alice" "PASS secret" STAT QUIT
	[ "${lines[3]}" = "+OK 1 23" ]
	grep -q 'login: user=alice host=198.51.100.9 ' "$T/err"
}

@test "v2 LOCAL (the proxy's health check) keeps the proxy's own address" {
	pop3_listen -X 127.0.0.1
	run client "$SIG"' + b"\x20\x00\x00\x00"' "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "+OK maildrop has 1 message"* ]]
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
	run client 'b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 110\r\n"' QUIT
	[ "${lines[0]}" = "+OK pop3-handler ready" ]
	[ "${lines[1]}" = "-ERR Unknown command" ]
}

@test "a malformed -X list is a usage error" {
	printf 'QUIT\r\n' > "$T/in"
	pop3_run -X 127.0.0.1,
	[ "$status" -eq 2 ]
	pop3_run -X 10.0.0.0/33
	[ "$status" -eq 2 ]
}
