#!/usr/bin/env bats
# The POP3 dialogue: every command in every state, good and bad forms, and
# hostile input.  Alice's maildrop holds three messages of 111, 125 and 104
# octets (340 in all).

load helpers
load drive

setup() {
	pop3_setup
	mbox alice <<'EOF'
From bob@example.org Mon Jan  1 00:00:00 2024
From: Bob <bob@example.org>
To: alice@example.org
Subject: one
Message-ID: <1@example.org>

Hello alice.

From carol@example.org Mon Jan  1 00:01:00 2024
From: Carol <carol@example.org>
To: alice@example.org
Subject: two
Message-ID: <2@example.org>

line 1
line 2
line 3

From dave@example.org Mon Jan  1 00:02:00 2024
From: Dave <dave@example.org>
To: alice@example.org
Subject: three
Message-ID: <3@example.org>

x

EOF
	cp "$T/mail/alice" "$T/alice.orig"
}

teardown() {
	pop3_teardown
}

# An APOP secrets file the handler may read: mode 600, owned by the user it
# runs as.
secrets() {
	printf '# user:secret\n\nalice:tanstaaf\n' > "$T/secrets"
	chmod 600 "$T/secrets"
	if [ "$(id -u)" = 0 ]; then chown nobody:nogroup "$T/secrets"; fi
}

# --- greeting and options -------------------------------------------------

@test "greeting is +OK pop3-handler ready, without a timestamp when there is no -a" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "greeting carries a <pid.time.random@host> timestamp with -a" {
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[0-9]+\.[0-9]+\.[^@<>]+@[^<>]+>
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "two sessions get different greeting timestamps" {
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	first="${lines[0]}"
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	[ "${lines[0]}" != "$first" ]
}

@test "-V prints the version and exits 0" {
	: > "$T/in"
	pop3_run -V
	[ "$status" -eq 0 ]
	[[ "$output" == *0.1* ]]
}

@test "a usage error exits 2: unknown option, -t 0, -t 86401, -t abc" {
	: > "$T/in"
	pop3_run -Z
	[ "$status" -eq 2 ]
	pop3_run -t 0
	[ "$status" -eq 2 ]
	pop3_run -t 86401
	[ "$status" -eq 2 ]
	pop3_run -t abc
	[ "$status" -eq 2 ]
}

@test "a bad option says which and what it takes, on stderr, before the usage, with nothing on stdout" {
	: > "$T/in"
	local a want
	while IFS='|' read -r a want; do
		# shellcheck disable=SC2086
		pop3_run $a
		[ "$status" -eq 2 ] || { echo "$a: exit $status"; false; }
		[ "$(head -n 1 "$T/err")" = "pop3-handler: $want" ] ||
			{ echo "$a:"; cat "$T/err"; false; }
		grep -q '^usage: pop3-handler ' "$T/err"
		[ ! -s "$T/out" ]
	done <<-'EOF'
	-t abc|-t abc: seconds, 1 to 86400
	-t 86401|-t 86401: seconds, 1 to 86400
	-L 0|-L 0: seconds, 1 to 3600
	-l 1x|-l 1x: seconds, 0 to 1000000
	-e -1|-e -1: days, 0 to 1000000
	-F nfs|-F nfs: shared or local
	-W outlook|-W outlook: outlook-no-nuls, oe-ns-eoh, or both with a comma
	-X 10.0.0.0/33|-X 10.0.0.0/33: IPv4 or IPv6 addresses, each with an optional /prefix, comma-separated
	-i bogus|-i bogus: native, xuidl, popa3d, dovecot, dovecot:FORMAT (one we can print as Dovecot would) or uw
	-s x -m /var/mail/%x|-m /var/mail/%x: a template takes only %u, %h and %%
	-U someone|-U is for -v
	stray|stray: no operand is taken
	EOF
}

# --- AUTHORIZATION ------------------------------------------------------

@test "USER then PASS logs in and reports the maildrop" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S~ \+OK( .*)?
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: QUIT
	S~ \+OK .*\(3 messages left\)
	EOF
	[ "$status" -eq 0 ]
}

@test "a password with a space logs in" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER carol
	S: +OK Send PASS
	C: PASS pass word
	S: +OK maildrop has 0 messages (0 octets)
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "USER answers +OK for a user that does not exist" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER nosuchuser
	S* +OK*
	C: QUIT
	S* +OK*
	EOF
}

@test "USER without a name is a syntax error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER
	S: -ERR Syntax error
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "a wrong password gets -ERR [AUTH] after at least 1 s, and a retry can log in" {
	start=$SECONDS
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	# One failure: a delay of 1 to 3 s, nothing else slow.
	[ $((SECONDS - start)) -ge 1 ]
	[ $((SECONDS - start)) -le 4 ]
	[ "$status" -eq 0 ]
}

@test "the third failure answers Too many failures and closes the connection" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
	C: USER nosuchuser
	S: +OK Send PASS
	C: PASS secret
	S: -ERR [AUTH] Authentication failed
	C: USER bob
	S: +OK Send PASS
	C: PASS secret
	S: -ERR [AUTH] Too many failures
	# closed: the rest is never answered
	C: USER alice
	C: PASS secret
	C: NOOP
	C: QUIT
	EOF
	[ "$status" -eq 1 ]
}

@test "PASS without USER is an error and does not log in" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: PASS secret
	S* -ERR*
	C: STAT
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "PASS without a password after USER is an error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS
	S* -ERR*
	C: STAT
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

# --- APOP -------------------------------------------------------------------

@test "APOP digest of the RFC 1939 example is c4c9334bac560ecc979e58001b3e22fb" {
	# The computation pop3drive.py uses for "A:" lines.
	run python3 -c 'import hashlib; print(hashlib.md5(b"<1896.697170952@dbc.mtview.ca.us>tanstaaf").hexdigest())'
	[ "$output" = "c4c9334bac560ecc979e58001b3e22fb" ]
}

@test "APOP with md5(greeting timestamp + secret) logs in" {
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice tanstaaf
	S: +OK maildrop has 3 messages (340 octets)
	C: STAT
	S: +OK 3 340
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	[ "$status" -eq 0 ]
}

@test "APOP with the wrong secret fails with -ERR [AUTH]" {
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice wrongsecret
	S: -ERR [AUTH] Authentication failed
	C: STAT
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "APOP with a digest wrong in one hex digit fails, whichever digit it is" {
	secrets
	local n
	for n in 0 15 16 17 30 31; do
		transcript -a "$T/secrets" <<-EOF
		# hex digit $n of the digest changed
		S~ \+OK pop3-handler ready <[^<>]+>
		D: $n alice tanstaaf
		S: -ERR [AUTH] Authentication failed
		C: STAT
		S: -ERR Unknown command
		EOF
	done
	# and the same digest with none changed logs in
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice tanstaaf
	S: +OK maildrop has 3 messages (340 octets)
	C: STAT
	S: +OK 3 340
	EOF
}

@test "APOP without -a is refused" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: APOP alice c4c9334bac560ecc979e58001b3e22fb
	S* -ERR*
	C: STAT
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "APOP with a digest that is not 32 hex digits is an error" {
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: APOP alice
	S* -ERR*
	C: APOP alice xyz
	S* -ERR*
	C: STAT
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "-A refuses USER/PASS for a user with an APOP secret, not for others" {
	secrets
	transcript -a "$T/secrets" -A <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: USER alice
	S* +OK*
	C: PASS secret
	S* -ERR \[AUTH]*
	C: USER bob
	S* +OK*
	C: PASS hunter2
	S: +OK maildrop has 0 messages (0 octets)
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "without -A an APOP user may still use USER/PASS" {
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "a secrets file readable by group or others is refused" {
	secrets
	chmod 640 "$T/secrets"
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice tanstaaf
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	chmod 604 "$T/secrets"
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice tanstaaf
	S: -ERR [AUTH] Authentication failed
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "a secrets-file line with a NUL byte, or over 1023 octets, is dropped alone: the next line still counts" {
	secrets
	{ printf 'x\0y:z\n'; head -c 2000 /dev/zero | tr '\0' a; printf ':long\nalice:tanstaaf\n'; } > "$T/secrets"
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice tanstaaf
	S: +OK maildrop has 3 messages (340 octets)
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	[ "$(grep -c 'line too long or holding a NUL byte, ignored' "$T/err")" -eq 2 ]
}

@test "a symlink as secrets file is refused" {
	secrets
	ln -s "$T/secrets" "$T/secrets.link"
	transcript -a "$T/secrets.link" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice tanstaaf
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

# --- CAPA -------------------------------------------------------------------

@test "CAPA before login lists USER TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING IMPLEMENTATION" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: CAPA
	S* +OK*
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
	C: QUIT
	S* +OK*
	EOF
}

@test "CAPA after login lists TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING IMPLEMENTATION" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: CAPA
	S* +OK*
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
	C: QUIT
	S* *(3 messages left)
	EOF
}

@test "-P without -S: CAPA leaves out USER, USER is refused with [AUTH], APOP still logs in" {
	secrets
	transcript -P -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: CAPA
	S: +OK Capability list follows
	S: SASL CRAM-MD5
	S: TOP
	S: UIDL
	S: RESP-CODES
	S: AUTH-RESP-CODE
	S: PIPELINING
	S: UTF8 USER
	S: LANG
	S* IMPLEMENTATION *
	S: .
	C: USER alice
	S: -ERR [AUTH] Plaintext authentication disallowed on non-secure connections
	C: PASS secret
	S: -ERR Send USER first
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	transcript -P -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	A: alice tanstaaf
	S: +OK maildrop has 3 messages (340 octets)
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	[ "$status" -eq 0 ]
}

@test "-P with -S (under TLS): CAPA lists USER and USER/PASS logs in" {
	transcript -P -S <<-'EOF'
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
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	[ "$status" -eq 0 ]
}

@test "CAPA with an argument is a syntax error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: CAPA x
	S: -ERR Syntax error
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

# --- TRANSACTION ----------------------------------------------------------

@test "STAT gives count and size" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: STAT
	S: +OK 3 340
	C: STAT 1
	S: -ERR Syntax error
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "LIST lists each message with its size" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: LIST
	S* +OK*
	S: 1 111
	S: 2 125
	S: 3 104
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "LIST n gives one message's size; 0 and past the end are No such message" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: LIST 2
	S: +OK 2 125
	C: LIST 3
	S: +OK 3 104
	C: LIST 0
	S: -ERR No such message
	C: LIST 4
	S: -ERR No such message
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "message numbers are strict: LIST 4294967297, 1 2, -1, abc, +1, 1x are invalid" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: LIST 4294967297
	S: -ERR Invalid message number
	C: LIST 4294967296
	S: -ERR Invalid message number
	C: LIST 99999999999999999999999
	S: -ERR Invalid message number
	C: LIST 1 2
	S: -ERR Invalid message number
	C: LIST -1
	S: -ERR Invalid message number
	C: LIST abc
	S: -ERR Invalid message number
	C: LIST +1
	S: -ERR Invalid message number
	C: LIST 1x
	S: -ERR Invalid message number
	C: QUIT
	S* *(3 messages left)
	EOF
}

@test "RETR sends +OK size octets, the message, and a dot" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: RETR 2
	S: +OK 125 octets
	S: From: Carol <carol@example.org>
	S: To: alice@example.org
	S: Subject: two
	S: Message-ID: <2@example.org>
	S:
	S: line 1
	S: line 2
	S: line 3
	S: .
	C: QUIT
	S* +OK*
	EOF
}

@test "RETR without an argument, with two, or past the end is an error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: RETR
	S: -ERR Syntax error
	C: RETR 1 2
	S: -ERR Invalid message number
	C: RETR 4
	S: -ERR No such message
	C: RETR 0
	S: -ERR No such message
	C: RETR x
	S: -ERR Invalid message number
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "TOP n 0 sends the headers and the blank line only" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: TOP 2 0
	S* +OK*
	S: From: Carol <carol@example.org>
	S: To: alice@example.org
	S: Subject: two
	S: Message-ID: <2@example.org>
	S:
	S: .
	C: QUIT
	S* +OK*
	EOF
}

@test "TOP n k sends k body lines; k past the end sends the whole body" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: TOP 2 2
	S: +OK Top of message 2 follows
	S: From: Carol <carol@example.org>
	S: To: alice@example.org
	S: Subject: two
	S: Message-ID: <2@example.org>
	S:
	S: line 1
	S: line 2
	S: .
	C: TOP 1 99
	S* +OK*
	S: From: Bob <bob@example.org>
	S: To: alice@example.org
	S: Subject: one
	S: Message-ID: <1@example.org>
	S:
	S: Hello alice.
	S: .
	C: TOP 2 4294967295
	S* +OK*
	S: From: Carol <carol@example.org>
	S: To: alice@example.org
	S: Subject: two
	S: Message-ID: <2@example.org>
	S:
	S: line 1
	S: line 2
	S: line 3
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "TOP with a missing or bad argument is an error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: TOP 1
	S: -ERR Syntax error
	C: TOP
	S: -ERR Syntax error
	C: TOP 1 2 3
	S* -ERR*
	C: TOP 4 1
	S: -ERR No such message
	C: TOP 1 x
	S* -ERR*
	C: TOP 1 -1
	S* -ERR*
	C: QUIT
	S* *(3 messages left)
	EOF
}

@test "DELE marks a message: STAT and LIST leave it out, a second DELE and RETR say it is deleted" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: DELE 1
	S* +OK*
	C: STAT
	S: +OK 2 229
	C: LIST
	S* +OK*
	S: 2 125
	S: 3 104
	S: .
	C: DELE 1
	S: -ERR Message 1 is deleted
	C: RETR 1
	S: -ERR Message 1 is deleted
	C: LIST 1
	S: -ERR Message 1 is deleted
	C: TOP 1 0
	S: -ERR Message 1 is deleted
	C: UIDL 1
	S: -ERR Message 1 is deleted
	C: LIST 2
	S: +OK 2 125
	C: RSET
	S: +OK maildrop has 3 messages (340 octets)
	EOF
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "DELE without an argument or past the end is an error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: DELE
	S: -ERR Syntax error
	C: DELE 4
	S: -ERR No such message
	C: DELE 0
	S: -ERR No such message
	C: STAT
	S: +OK 3 340
	EOF
}

@test "DELE then RSET restores STAT" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: DELE 1
	S: +OK Message 1 deleted
	C: DELE 3
	S: +OK Message 3 deleted
	C: STAT
	S: +OK 1 125
	C: RSET
	S* +OK*
	C: STAT
	S: +OK 3 340
	C: RETR 1
	S: +OK 111 octets
	S: From: Bob <bob@example.org>
	S: To: alice@example.org
	S: Subject: one
	S: Message-ID: <1@example.org>
	S:
	S: Hello alice.
	S: .
	C: QUIT
	S* *(3 messages left)
	EOF
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "RSET with an argument is a syntax error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: RSET 1
	S: -ERR Syntax error
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "NOOP answers +OK; with an argument it is a syntax error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: NOOP
	S~ \+OK( .*)?
	C: NOOP 1
	S: -ERR Syntax error
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "UIDL lists a unique id per message and UIDL n gives the same one" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: UIDL
	S* +OK*
	S~ 1 [!-~]{1,70}
	S~ 2 [!-~]{1,70}
	S~ 3 [!-~]{1,70}
	S: .
	C: UIDL 2
	S~ \+OK 2 [!-~]{1,70}
	C: UIDL 4
	S: -ERR No such message
	C: UIDL 0
	S: -ERR No such message
	C: UIDL x
	S: -ERR Invalid message number
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	# UIDL 2 gives the listing's id of message 2, and the three ids differ.
	[ "${lines[8]}" = "+OK ${lines[5]}" ]
	[ "$(printf '%s\n' "${lines[4]#1 }" "${lines[5]#2 }" "${lines[6]#3 }" | sort -u | wc -l)" -eq 3 ]
}

@test "QUIT before login answers +OK and exits 0" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: QUIT
	S* +OK*
	C: NOOP
	EOF
	[ "$status" -eq 0 ]
}

@test "QUIT after login answers +OK with the messages left and exits 0" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: QUIT
	S~ \+OK .*\(3 messages left\)
	C: NOOP
	EOF
	[ "$status" -eq 0 ]
}

@test "QUIT with an argument is a syntax error" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: QUIT now
	S: -ERR Syntax error
	C: QUIT
	S* +OK*
	EOF
}

# --- wrong state, unknown commands, case --------------------------------

@test "an unknown command is -ERR Unknown command in both states" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: FOO
	S: -ERR Unknown command
	C: XTND XLST
	S: -ERR Unknown command
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: FOO
	S: -ERR Unknown command
	C: RETRX 1
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "TRANSACTION commands before login are -ERR Unknown command" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: STAT
	S: -ERR Unknown command
	C: LIST
	S: -ERR Unknown command
	C: LIST 1
	S: -ERR Unknown command
	C: RETR 1
	S: -ERR Unknown command
	C: TOP 1 0
	S: -ERR Unknown command
	C: DELE 1
	S: -ERR Unknown command
	C: RSET
	S: -ERR Unknown command
	C: NOOP
	S: -ERR Unknown command
	C: UIDL
	S: -ERR Unknown command
	C: UIDL 1
	S: -ERR Unknown command
	C: QUIT
	S* +OK*
	EOF
}

@test "USER, PASS and APOP after login are -ERR Unknown command" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: USER bob
	S: -ERR Unknown command
	C: PASS hunter2
	S: -ERR Unknown command
	C: APOP alice c4c9334bac560ecc979e58001b3e22fb
	S: -ERR Unknown command
	C: STAT
	S: +OK 3 340
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "keywords are case-insensitive: user, Pass, stat, LiSt, rEtR, quit" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: user alice
	S: +OK Send PASS
	C: Pass secret
	S: +OK maildrop has 3 messages (340 octets)
	C: stat
	S: +OK 3 340
	C: LiSt 1
	S: +OK 1 111
	C: rEtR 3
	S: +OK 104 octets
	S: From: Dave <dave@example.org>
	S: To: alice@example.org
	S: Subject: three
	S: Message-ID: <3@example.org>
	S:
	S: x
	S: .
	C: uidl 1
	S~ \+OK 1 [!-~]{1,70}
	C: capa
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
	C: quit
	S* *(3 messages left)
	EOF
}

@test "an empty line gets exactly one -ERR" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C:
	S* -ERR*
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C:
	S* -ERR*
	C: STAT
	S: +OK 3 340
	EOF
}

# --- line discipline --------------------------------------------------------

@test "a bare LF ends a line as CRLF does" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	W: USER alice\n
	S: +OK Send PASS
	W: PASS secret\n
	S: +OK maildrop has 3 messages (340 octets)
	C: STAT
	S: +OK 3 340
	W: LIST 2\n
	S: +OK 2 125
	W: QUIT\n
	S* *(3 messages left)
	EOF
	[ "$status" -eq 0 ]
}

@test "replies end in CRLF" {
	pop3_session "USER alice" "PASS secret" "LIST" QUIT
	# Every LF the handler sends is preceded by CR.
	[ "$(tr -cd '\n' < "$T/out" | wc -c)" -eq "$(grep -c $'\r$' "$T/out")" ]
}

@test "a line of 255 octets with CRLF is one line: NOOP plus padding is one syntax error" {
	pad=$(printf '%*s' 248 '' | tr ' ' x)
	[ "${#pad}" -eq 248 ]
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: NOOP $pad
	S: -ERR Syntax error
	C: STAT
	S: +OK 3 340
	EOF
}

@test "a line of 256 octets with CRLF is Line too long, once" {
	pad=$(printf '%*s' 249 '' | tr ' ' x)
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: NOOP $pad
	S: -ERR Line too long
	C: STAT
	S: +OK 3 340
	EOF
}

@test "an over-long line ending in NOOP is never split: one -ERR each, no +OK" {
	# "A"*k + "NOOP" for k = 250..320: whatever the reader's buffer size, one
	# of these would end in a bare "NOOP" after a split.
	# 18 a session, under the limit of 20 bad commands.
	for from in 250 268 286 304; do
		to=$((from + 17)); [ "$to" -le 320 ] || to=320
		{
			echo "S: +OK pop3-handler ready"
			echo "C: USER alice"
			echo "S: +OK Send PASS"
			echo "C: PASS secret"
			echo "S: +OK maildrop has 3 messages (340 octets)"
			for k in $(seq "$from" "$to"); do
				echo "C: $(printf '%*s' "$k" '' | tr ' ' A)NOOP"
				echo "S: -ERR Line too long"
			done
			echo "C: STAT"
			echo "S: +OK 3 340"
		} > "$T/script"
		transcript < "$T/script"
	done
}

@test "a 100 000-octet line gets one Line too long and the session goes on" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: $(head -c 100000 /dev/zero | tr '\0' N)
	S: -ERR Line too long
	C: STAT
	S: +OK 3 340
	C: QUIT
	S* *(3 messages left)
	EOF
}

@test "a NUL byte in a line gets one -ERR NUL byte in command" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	W: NO\0OP\r\n
	S: -ERR NUL byte in command
	W: STAT\0\r\n
	S: -ERR NUL byte in command
	C: STAT
	S: +OK 3 340
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "a NUL byte in USER is refused before login" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	W: USER ali\0ce\r\n
	S: -ERR NUL byte in command
	C: PASS secret
	S* -ERR*
	C: STAT
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "pipelined commands in one write are all answered, in order" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S* +OK*
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: STAT
	S: +OK 3 340
	C: LIST 3
	S: +OK 3 104
	C: TOP 1 0
	S* +OK*
	S: From: Bob <bob@example.org>
	S: To: alice@example.org
	S: Subject: one
	S: Message-ID: <1@example.org>
	S:
	S: .
	C: DELE 2
	S* +OK*
	C: NOOP
	S* +OK*
	C: LIST
	S* +OK*
	S: 1 111
	S: 3 104
	S: .
	C: RSET
	S* +OK*
	C: UIDL 3
	S~ \+OK 3 [!-~]+
	C: RETR 3
	S: +OK 104 octets
	S: From: Dave <dave@example.org>
	S: To: alice@example.org
	S: Subject: three
	S: Message-ID: <3@example.org>
	S:
	S: x
	S: .
	C: QUIT
	S* *(3 messages left)
	EOF
	[ "$status" -eq 0 ]
}

@test "pipelined commands after a failed PASS are still answered" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: STAT
	S: +OK 3 340
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

# --- ending without QUIT -----------------------------------------------------

@test "EOF without QUIT deletes nothing and exits 1" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: DELE 1
	S: +OK Message 1 deleted
	C: DELE 2
	S* +OK*
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "EOF in the middle of a line without QUIT exits 1" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: DELE 1
	S: +OK Message 1 deleted
	W: QUI
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "an idle client is disconnected for inactivity after -t seconds and nothing is deleted" {
	transcript -t 1 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (340 octets)
	C: DELE 1
	S* +OK*
	! sleep 3
	S: -ERR Disconnected for inactivity
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "an idle client is disconnected before login too" {
	# stdin stays open (sleep holds the pipe) but says nothing.
	pop3_own
	run bash -c 'sleep 4 | env LD_PRELOAD="$1" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$2/pam.d" "${@:4}" "$3" -t 1 -m "$2/mail/%u" 2>/dev/null' \
		_ "$PAM_WRAPPER_LIB" "$T" "$HANDLER" "${RUNAS[@]}"
	[ "$status" -eq 1 ]
	[ "$(tr -d '\r' <<< "$output" | tail -n 1)" = "-ERR Disconnected for inactivity" ]
	[[ "$output" == "+OK pop3-handler ready"* ]]
}
