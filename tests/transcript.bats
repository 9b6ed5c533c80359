#!/usr/bin/env bats
# The transcript helper (helpers.bash) itself: a right transcript passes; a
# different, a missing and an extra server line each fail and say where; the
# three S forms match what they say and no more.

load helpers

setup() {
	pop3_setup
	mbox alice <<'EOF'
From bob@example.org Mon Jan  1 00:00:00 2024
Subject: one

Hello alice.

EOF
}

teardown() {
	pop3_teardown
}

# APOP secrets, for the interactive (pop3drive.py) form.
secrets() {
	printf 'alice:tanstaaf\n' > "$T/secrets"
	chmod 600 "$T/secrets"
	if [ "$(id -u)" = 0 ]; then chown nobody:nogroup "$T/secrets"; fi
}

@test "a right transcript passes, and leaves \$status, \$lines and the log as pop3_run does" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (30 octets)
	C: RETR 1
	S: +OK 30 octets
	S: Subject: one
	S:
	S: Hello alice.
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	[ "$status" -eq 0 ]
	[ "${lines[3]}" = "+OK 30 octets" ]
	grep -q 'login: user=alice' "$T/err"
}

@test "a different line fails, marked, with the script and the server side by side" {
	run transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (31 octets)
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "transcript: server line 3 differs from script line 5" ]
	grep -qx '!  S: +OK maildrop has 1 message (31 octets) *| +OK maildrop has 1 message (30 octets)' <<< "$output"
	grep -qx '   C: PASS secret' <<< "$output"
	[ "$(grep -c '^!' <<< "$output")" -eq 1 ]
}

@test "a missing line fails: the server sent one the script does not have" {
	run transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "transcript: server line 3 differs from script line 6" ]
	grep -qx '!  (nothing) *| +OK pop3-handler signing off (1 message left)' <<< "$output"
}

@test "a missing last line fails: the script expects more than the server sent" {
	run transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: QUIT
	S: +OK pop3-handler signing off
	S: +OK
	EOF
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "transcript: the server sent 2 lines, script line 4 expects more" ]
	grep -qx '!  S: +OK *| (nothing)' <<< "$output"
}

@test "an extra line fails: the script stops before the server does" {
	run transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: NOOP
	C: QUIT
	S: -ERR Unknown command
	EOF
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "transcript: the server sent more than the script's 2 lines" ]
	grep -qx '!  (nothing) *| +OK pop3-handler signing off' <<< "$output"
}

@test "S: is exact: a * in it is a star, and an empty S: is an empty line only" {
	run transcript <<-'EOF'
	S: +OK*
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	[ "$status" -eq 1 ]
	run transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	C: PASS secret
	C: TOP 1 0
	C: QUIT
	S: +OK Send PASS
	S: +OK maildrop has 1 message (30 octets)
	S: +OK Top of message 1 follows
	S:
	S:
	S: .
	S: +OK pop3-handler signing off (1 message left)
	EOF
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "transcript: server line 5 differs from script line 9" ]
}

@test "S* is a glob on the whole line, S~ an ERE anchored at both ends" {
	transcript <<-'EOF'
	S* +OK pop3-handler *
	C: USER alice
	S~ \+OK( .*)?
	C: PASS secret
	S~ \+OK maildrop has [0-9]+ messages? \([0-9]+ octets\)
	C: QUIT
	S* +OK*(1 message left)
	EOF
	run transcript <<-'EOF'
	S* +OK pop3-handler
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	[ "$status" -eq 1 ]
	run transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: QUIT
	S~ \+OK pop3
	EOF
	[ "$status" -eq 1 ]
	run transcript <<-'EOF'
	S~ pop3-handler ready
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	[ "$status" -eq 1 ]
}

@test "W: sends bytes as they are, with escapes: a NUL, a bare LF" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	W: NO\0OP\r\nQUIT\n
	S: -ERR NUL byte in command
	S: +OK pop3-handler signing off
	EOF
	od -c "$T/in" | grep -q '\\0'
}

@test "a NUL byte the server sends, from a message, shows as \\0" {
	printf 'From bob@example.org Mon Jan  1 00:00:00 2024\nSubject: one\n\na\0b\n\n' > "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (21 octets)
	C: RETR 1
	S: +OK 21 octets
	S: Subject: one
	S:
	S: a\0b
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "an A: or ! line drives the session through pop3drive.py; its ! exit lines must be expected" {
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice tanstaaf
	S: +OK maildrop has 1 message (30 octets)
	! true
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	run transcript <<-'EOF'
	S: +OK pop3-handler ready
	! false
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	[ "$status" -eq 1 ]
	grep -qx '!  (nothing) *| +OK pop3-handler signing off' <<< "$output"
	grep -q '| ! exit 1$' <<< "$output"
}

@test "a script line of no known form is an error, not ignored" {
	run transcript <<-'EOF'
	S: +OK pop3-handler ready
	QUIT
	EOF
	[ "$status" -eq 2 ]
	[ "$output" = "transcript: bad script line: QUIT" ]
}

@test "in S*, a backslash quotes: \\[AUTH] is the text, [AUTH] a class of one character" {
	transcript <<-'EOF2'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong
	S* -ERR \[AUTH]*
	C: QUIT
	S: +OK pop3-handler signing off
	EOF2
	run transcript <<-'EOF2'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong
	S* -ERR [AUTH]*
	C: QUIT
	S: +OK pop3-handler signing off
	EOF2
	[ "$status" -eq 1 ]
}

@test "a line with a byte that is not UTF-8 stays one line, whatever the locale" {
	LC_ALL=C.UTF-8 transcript <<-EOF2
	S: +OK pop3-handler ready
	C: USER $(printf 'd\xe9')
	S: +OK Send PASS
	C: PASS x
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF2
	cmp "$T/in" <(printf 'USER d\351\r\nPASS x\r\nQUIT\r\n')
}

# A stand-in for a socket client: answers each line it is given with +OK.
echo_client() {
	echo "+OK hello"
	printf '+OK %s\n' "$@"
}

@test "transcript_via hands the client lines to a command and checks what it prints" {
	transcript_via echo_client <<-'EOF2'
	S: +OK hello
	C: USER alice
	S: +OK USER alice
	C: QUIT
	S* +OK Q*
	EOF2
	run transcript_via echo_client <<-'EOF2'
	S: +OK hello
	C: USER alice
	S: +OK USER bob
	EOF2
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "transcript: server line 2 differs from script line 3" ]
	run transcript_via echo_client <<-'EOF2'
	S: +OK hello
	W: USER alice\r\n
	EOF2
	[ "$status" -eq 2 ]
	[ "$output" = "transcript_via: not for a client line: W: USER alice\r\n" ]
}
