#!/usr/bin/env bats
# SASL AUTH (RFC 5034): PLAIN, LOGIN and CRAM-MD5, the exchange's edge cases,
# and real clients (curl, mpop) logging in with each mechanism.

load helpers
load drive

setup() {
	pop3_setup
	mbox alice <<'EOF2'
From bob@example.org Mon Jan  1 00:00:00 2024
From: Bob <bob@example.org>
Subject: one

Hello alice.

EOF2
}

teardown() {
	pop3_unlisten
	pop3_teardown
}

b64() {
	printf '%b' "$1" | base64 -w0
}

# An APOP/CRAM-MD5 secrets file the handler may read.
secrets() {
	printf 'alice:tanstaaf\n' > "$T/secrets"
	chmod 600 "$T/secrets"
	if [ "$(id -u)" = 0 ]; then chown nobody:nogroup "$T/secrets"; fi
}

@test "CAPA offers SASL PLAIN LOGIN, and CRAM-MD5 only with a secrets file (-a)" {
	transcript <<-'EOF'
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
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN CRAM-MD5
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
	S: +OK pop3-handler signing off
	EOF
}

@test "-P without -S removes PLAIN and LOGIN from CAPA and refuses them with [AUTH]" {
	transcript -P <<-EOF
	S: +OK pop3-handler ready
	C: CAPA
	S: +OK Capability list follows
	S: TOP
	S: UIDL
	S: RESP-CODES
	S: AUTH-RESP-CODE
	S: PIPELINING
	S: UTF8 USER
	S: LANG
	S* IMPLEMENTATION *
	S: .
	C: AUTH PLAIN $(b64 '\0alice\0secret')
	S: -ERR [AUTH] Plaintext authentication disallowed on non-secure connections
	C: AUTH LOGIN
	S: -ERR [AUTH] Plaintext authentication disallowed on non-secure connections
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
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
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	transcript -P -S <<-EOF
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
	C: AUTH PLAIN $(b64 '\0alice\0secret')
	S* +OK maildrop has 1 message*
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "bare AUTH lists the mechanisms as a multi-line +OK" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: AUTH
	S: +OK Methods supported
	S: PLAIN
	S: LOGIN
	S: .
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "AUTH PLAIN with an initial response logs in, and the log says method=PLAIN" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(b64 '\0alice\0secret')
	S: +OK maildrop has 1 message (59 octets)
	C: STAT
	S: +OK 1 59
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	grep -q 'login: user=alice .*method=PLAIN' "$T/err"
	[ "$status" -eq 0 ]
}

@test "AUTH PLAIN without an initial response gets an empty '+ ' and takes the continuation" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN
	S~ \+[ ]
	C: $(b64 '\0alice\0secret')
	S: +OK maildrop has 1 message (59 octets)
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	[ "$(sed -n 2p "$T/out")" = $'+ \r' ]
}

@test "AUTH PLAIN with an authzid equal to the user logs in; another authzid is refused with [AUTH]" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(b64 'bob\0alice\0secret')
	S: -ERR [AUTH] Authorization identity refused
	C: AUTH PLAIN $(b64 'alice\0alice\0secret')
	S: +OK maildrop has 1 message (59 octets)
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "AUTH PLAIN: a wrong password fails like PASS, delayed and counted" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(b64 '\0alice\0wrong')
	S: -ERR [AUTH] Authentication failed
	C: AUTH PLAIN $(b64 '\0alice\0wrong')
	S: -ERR [AUTH] Authentication failed
	C: AUTH PLAIN $(b64 '\0alice\0wrong')
	S: -ERR [AUTH] Too many failures
	EOF
	[ "$status" -eq 1 ]
	grep -q 'authentication failed: user=alice .*method=PLAIN' "$T/err"
}

@test "AUTH PLAIN: '=' (empty), bad base64 and a message without two NULs are errors, not logins" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: AUTH PLAIN =
	S: -ERR Malformed PLAIN message
	C: AUTH PLAIN AGFsaWNlAHNlY3JldA
	S: -ERR Invalid base64 in response
	C: AUTH PLAIN YWxpY2U=
	S: -ERR Malformed PLAIN message
	C: AUTH PLAIN ====
	S: -ERR Invalid base64 in response
	C: AUTH PLAIN
	S~ \+[ ]
	C: AGFsaWNl AHNlY3JldA==
	S: -ERR Invalid base64 in response
	C: QUIT
	S* +OK pop3-handler signing off*
	EOF
	! grep -q 'authentication failed' "$T/err"
}

@test "'*' cancels an exchange with -ERR, and the session goes on" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN
	S~ \+[ ]
	C: *
	S: -ERR Authentication cancelled
	C: AUTH LOGIN
	S: + VXNlcm5hbWU6
	C: *
	S: -ERR Authentication cancelled
	C: AUTH LOGIN $(b64 alice)
	S: + UGFzc3dvcmQ6
	C: *
	S: -ERR Authentication cancelled
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (59 octets)
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "a SASL response may be longer than 255 octets, up to 1024 with CRLF; a longer one is one -ERR" {
	long=$(head -c 700 /dev/zero | tr '\0' x)
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN
	S~ \+[ ]
	C: $(b64 "\\0alice\\0$long")
	S: -ERR [AUTH] Authentication failed
	C: AUTH PLAIN
	S~ \+[ ]
	C: $(head -c 1100 /dev/zero | tr '\0' A)
	S: -ERR Line too long
	C: AUTH PLAIN
	S~ \+[ ]
	C: $(b64 '\0alice\0secret')
	S: +OK maildrop has 1 message (59 octets)
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	grep -q 'password too long' "$T/err"
}

@test "AUTH LOGIN asks Username: and Password: and logs in" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH LOGIN
	S: + VXNlcm5hbWU6
	C: $(b64 alice)
	S: + UGFzc3dvcmQ6
	C: $(b64 secret)
	S: +OK maildrop has 1 message (59 octets)
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	grep -q 'method=LOGIN' "$T/err"
}

@test "AUTH LOGIN with the user name as initial response asks only Password:" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH LOGIN $(b64 alice)
	S: + UGFzc3dvcmQ6
	C: $(b64 secret)
	S: +OK maildrop has 1 message (59 octets)
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "AUTH with an unknown mechanism, or CRAM-MD5 without -a, is -ERR Unrecognized" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: AUTH GSSAPI
	S: -ERR Unrecognized authentication type
	C: AUTH CRAM-MD5
	S: -ERR Unrecognized authentication type
	C: AUTH PLAIN a b
	S: -ERR Syntax error
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "AUTH CRAM-MD5 with the secret from -a logs in; a wrong secret fails" {
	secrets
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	K: alice wrong
	S* + *
	S: -ERR [AUTH] Authentication failed
	K: alice tanstaaf
	S~ \+ [A-Za-z0-9+/]+=*
	S: +OK maildrop has 1 message (59 octets)
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	# the challenge is a msg-id, and differs from the APOP timestamp
	ch=$(echo "${lines[1]#+ }" | base64 -d)
	[[ "$ch" == "<"*"@"*">" ]]
	[[ "${lines[0]}" != *"$ch"* ]]
	grep -q 'method=CRAM-MD5' "$T/err"
}

@test "AUTH CRAM-MD5 refuses an initial response and a malformed answer" {
	secrets
	transcript -a "$T/secrets" <<-EOF
	S~ \+OK pop3-handler ready <[^<>]+>
	C: AUTH CRAM-MD5 $(b64 'alice 0123')
	S: -ERR CRAM-MD5 takes no initial response
	C: AUTH CRAM-MD5
	S~ \+ [A-Za-z0-9+/]+=*
	C: $(b64 'alice')
	S: -ERR Malformed CRAM-MD5 response
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "PLAIN credentials are SASLprep'd: a no-break space in the password maps to a space" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(b64 '\0carol\0pass\xc2\xa0word')
	S: +OK maildrop has 0 messages (0 octets)
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "PLAIN with invalid UTF-8 or a prohibited character fails like a wrong password" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(b64 '\0alice\0secr\xffet')
	S: -ERR [AUTH] Authentication failed
	C: AUTH PLAIN $(b64 '\0alice\0secret\x07')
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "SASL is only for AUTHORIZATION: AUTH after login is unknown" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (59 octets)
	C: AUTH PLAIN $(b64 '\0alice\0secret')
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "curl --login-options AUTH=PLAIN fetches the message" {
	pop3_listen
	run curl -sS --max-time 30 --login-options AUTH=PLAIN -u alice:secret "pop3://127.0.0.1:$PORT/1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Hello alice."* ]]
	grep -q 'method=PLAIN' "$T/err"
}

@test "curl --login-options AUTH=LOGIN fetches the message" {
	pop3_listen
	run curl -sS --max-time 30 --login-options AUTH=LOGIN -u alice:secret "pop3://127.0.0.1:$PORT/1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Hello alice."* ]]
	grep -q 'method=LOGIN' "$T/err"
}

@test "mpop --auth=plain and --auth=cram-md5 fetch the message" {
	secrets
	pop3_listen -a "$T/secrets"
	local m
	for m in plain cram-md5; do
		mkdir -p "$T/$m"
		if [ "$m" = plain ]; then pw=secret; else pw=tanstaaf; fi
		run mpop --host=127.0.0.1 --port="$PORT" --timeout=30 --tls=off \
			--auth="$m" --user=alice --passwordeval="echo $pw" --keep=on \
			--received-header=off --uidls-file="$T/$m/uidls" \
			--delivery=mbox,"$T/$m/mbox" -q
		echo "$output"
		[ "$status" -eq 0 ]
		grep -q 'Hello alice.' "$T/$m/mbox"
	done
	grep -q 'method=PLAIN' "$T/err"
	grep -q 'method=CRAM-MD5' "$T/err"
}
