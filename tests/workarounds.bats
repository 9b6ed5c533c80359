#!/usr/bin/env bats
# Client workarounds (-W, Dovecot's pop3_workarounds names): NUL as 0x80 for
# Outlook, and the missing end-of-headers blank line for Outlook Express and
# Netscape. LIST must always say what RETR sends.

load helpers

setup() {
	pop3_setup
	{
		printf 'From a@example.org Mon Jan  1 00:00:00 2024\n'
		printf 'Subject: nul\n\nbefore\000after\n\n'
		printf 'From b@example.org Mon Jan  1 00:01:00 2024\n'
		printf 'Subject: headers only\nFrom: b@example.org\n\n'
		printf 'From c@example.org Mon Jan  1 00:02:00 2024\n'
		printf 'Subject: no newline at all'
	} > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
}

teardown() {
	pop3_teardown
}

# The bytes of the multi-line body that follows reply line $1 (1-based
# among "+OK" lines) in $T/out, up to the lone "." line, dot-stuffing kept.
body_of() {
	python3 - "$T/out" "$1" <<-'PY'
	import sys
	data = open(sys.argv[1], "rb").read()
	n = int(sys.argv[2])
	lines = data.split(b"\r\n")
	i = [k for k, l in enumerate(lines) if l.startswith(b"+OK")][n - 1]
	body = []
	for l in lines[i + 1:]:
	    if l == b".":
	        break
	    body.append(l + b"\r\n")
	sys.stdout.buffer.write(b"".join(body))
	PY
}

@test "without -W, a NUL goes out as a NUL and a message without a blank line is sent as it is" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (102 octets)
	C: RETR 1
	S: +OK 30 octets
	S: Subject: nul
	S:
	S: before\0after
	S: .
	C: RETR 2
	S: +OK 44 octets
	S: Subject: headers only
	S: From: b@example.org
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	body_of 4 | od -An -tx1 | grep -q '65 00 61'
	[ "$(body_of 5 | wc -c)" = 44 ]
	[ "$(body_of 5 | tail -c 3 | od -An -c | tr -d ' ')" = 'g\r\n' ]
}

@test "-W outlook-no-nuls sends each NUL as 0x80, and the size stays the same" {
	transcript -W outlook-no-nuls <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (102 octets)
	C: LIST 1
	S: +OK 1 30
	C: RETR 1
	S: +OK 30 octets
	S: Subject: nul
	S:
	S: before$(printf '\200')after
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	[ "$(body_of 5 | wc -c)" = 30 ]
	body_of 5 | od -An -tx1 | grep -q '65 80 61'
	! body_of 5 | od -An -tx1 | grep -q ' 00'
}

@test "-W oe-ns-eoh adds the blank line to a message without one, and LIST counts its 2 octets" {
	transcript -W oe-ns-eoh <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (106 octets)
	C: LIST
	S: +OK 3 messages (106 octets)
	S: 1 30
	S: 2 46
	S: 3 30
	S: .
	C: RETR 1
	S: +OK 30 octets
	S: Subject: nul
	S:
	S: before\0after
	S: .
	C: RETR 2
	S: +OK 46 octets
	S: Subject: headers only
	S: From: b@example.org
	S:
	S: .
	C: RETR 3
	S: +OK 30 octets
	S: Subject: no newline at all
	S:
	S: .
	C: TOP 2 0
	S: +OK Top of message 2 follows
	S: Subject: headers only
	S: From: b@example.org
	S:
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	[ "$(body_of 5 | wc -c)" = 30 ]
	[ "$(body_of 6 | wc -c)" = 46 ]
	[ "$(body_of 7 | wc -c)" = 30 ]
	[ "$(body_of 6 | tail -c 4 | od -An -c | tr -d ' ')" = '\r\n\r\n' ]
	[ "$(body_of 7 | od -An -c | tr -d ' \n')" = 'Subject:nonewlineatall\r\n\r\n' ]
	[ "$(body_of 8 | wc -c)" = 46 ]
}

@test "-W takes both, comma-separated; an unknown workaround is a usage error" {
	transcript -W outlook-no-nuls,oe-ns-eoh <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (106 octets)
	C: STAT
	S: +OK 3 106
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	pop3_session -W outlook-no-nulls -- QUIT
	[ "$status" -eq 2 ]
}

@test "Python poplib: RETR with both workarounds gives as many octets as LIST says, for every message" {
	pop3_session -W outlook-no-nuls,oe-ns-eoh -- "USER alice" "PASS secret" LIST "RETR 1" "RETR 2" "RETR 3" QUIT
	run python3 - "$T/out" <<-'PY'
	import sys
	data = open(sys.argv[1], "rb").read().split(b"\r\n")
	sizes = {}
	i = data.index(b"+OK 3 messages (106 octets)") + 1
	while data[i] != b".":
	    n, sz = data[i].split()
	    sizes[int(n)] = int(sz)
	    i += 1
	got = []
	for k, l in enumerate(data):
	    if l.endswith(b" octets") and l.startswith(b"+OK ") and b"messages" not in l:
	        body = []
	        for m in data[k + 1:]:
	            if m == b".":
	                break
	            body.append(m[1:] if m.startswith(b".") else m)
	        got.append((int(l.split()[1]), sum(len(b) + 2 for b in body)))
	print(sizes, got)
	assert [g[1] for g in got] == [sizes[1], sizes[2], sizes[3]] == [g[0] for g in got]
	PY
	echo "$output"
	[ "$status" -eq 0 ]
}
