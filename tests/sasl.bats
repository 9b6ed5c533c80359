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
	pop3_session CAPA QUIT
	grep -qx 'SASL PLAIN LOGIN' <<< "$output"
	secrets
	pop3_session -a "$T/secrets" -- CAPA QUIT
	grep -qx 'SASL PLAIN LOGIN CRAM-MD5' <<< "$output"
}

@test "-P without -S removes PLAIN and LOGIN from CAPA and refuses them with [AUTH]" {
	pop3_session -P -- CAPA "AUTH PLAIN $(b64 '\0alice\0secret')" "AUTH LOGIN" QUIT
	! grep -q '^SASL' <<< "$output" || false
	grep -qx -- '-ERR \[AUTH\] Plaintext authentication disallowed on non-secure connections' <<< "$output"
	[ "$(grep -c '^-ERR \[AUTH\] Plaintext' <<< "$output")" -eq 2 ]
	secrets
	pop3_session -P -a "$T/secrets" -- CAPA QUIT
	grep -qx 'SASL CRAM-MD5' <<< "$output"
	pop3_session -P -S -- CAPA "AUTH PLAIN $(b64 '\0alice\0secret')" QUIT
	grep -qx 'SASL PLAIN LOGIN' <<< "$output"
	grep -q '^+OK maildrop has 1 message' <<< "$output"
}

@test "bare AUTH lists the mechanisms as a multi-line +OK" {
	pop3_session AUTH QUIT
	[ "${lines[1]}" = "+OK Methods supported" ]
	[ "${lines[2]}" = "PLAIN" ]
	[ "${lines[3]}" = "LOGIN" ]
	[ "${lines[4]}" = "." ]
}

@test "AUTH PLAIN with an initial response logs in, and the log says method=PLAIN" {
	pop3_session "AUTH PLAIN $(b64 '\0alice\0secret')" STAT QUIT
	[ "${lines[1]}" = "+OK maildrop has 1 message (59 octets)" ]
	[ "${lines[2]}" = "+OK 1 59" ]
	grep -q 'login: user=alice .*method=PLAIN' "$T/err"
	[ "$status" -eq 0 ]
}

@test "AUTH PLAIN without an initial response gets an empty '+ ' and takes the continuation" {
	pop3_session "AUTH PLAIN" "$(b64 '\0alice\0secret')" QUIT
	[ "$(sed -n 2p "$T/out")" = $'+ \r' ]
	[ "${lines[2]}" = "+OK maildrop has 1 message (59 octets)" ]
}

@test "AUTH PLAIN with an authzid equal to the user logs in; another authzid is refused with [AUTH]" {
	pop3_session "AUTH PLAIN $(b64 'bob\0alice\0secret')" "AUTH PLAIN $(b64 'alice\0alice\0secret')" QUIT
	[ "${lines[1]}" = "-ERR [AUTH] Authorization identity refused" ]
	[ "${lines[2]}" = "+OK maildrop has 1 message (59 octets)" ]
}

@test "AUTH PLAIN: a wrong password fails like PASS, delayed and counted" {
	pop3_session "AUTH PLAIN $(b64 '\0alice\0wrong')" "AUTH PLAIN $(b64 '\0alice\0wrong')" "AUTH PLAIN $(b64 '\0alice\0wrong')"
	[ "${lines[1]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[3]}" = "-ERR [AUTH] Too many failures" ]
	[ "$status" -eq 1 ]
	grep -q 'authentication failed: user=alice .*method=PLAIN' "$T/err"
}

@test "AUTH PLAIN: '=' (empty), bad base64 and a message without two NULs are errors, not logins" {
	pop3_session "AUTH PLAIN =" "AUTH PLAIN AGFsaWNlAHNlY3JldA" "AUTH PLAIN YWxpY2U=" "AUTH PLAIN ===="  "AUTH PLAIN" "AGFsaWNl AHNlY3JldA==" QUIT
	[ "${lines[1]}" = "-ERR Malformed PLAIN message" ]
	[ "${lines[2]}" = "-ERR Invalid base64 in response" ]
	[ "${lines[3]}" = "-ERR Malformed PLAIN message" ]
	[ "${lines[4]}" = "-ERR Invalid base64 in response" ]
	[ "${lines[5]}" = "+ " ]
	[ "${lines[6]}" = "-ERR Invalid base64 in response" ]
	[[ "${lines[7]}" == "+OK pop3-handler signing off"* ]]
	! grep -q 'authentication failed' "$T/err"
}

@test "'*' cancels an exchange with -ERR, and the session goes on" {
	pop3_session "AUTH PLAIN" "*" "AUTH LOGIN" "*" "AUTH LOGIN $(b64 alice)" "*" "USER alice" "PASS secret" QUIT
	[ "${lines[1]}" = "+ " ]
	[ "${lines[2]}" = "-ERR Authentication cancelled" ]
	[ "${lines[3]}" = "+ VXNlcm5hbWU6" ]
	[ "${lines[4]}" = "-ERR Authentication cancelled" ]
	[ "${lines[5]}" = "+ UGFzc3dvcmQ6" ]
	[ "${lines[6]}" = "-ERR Authentication cancelled" ]
	[ "${lines[8]}" = "+OK maildrop has 1 message (59 octets)" ]
}

@test "a SASL response may be longer than 255 octets, up to 1024 with CRLF; a longer one is one -ERR" {
	long=$(head -c 700 /dev/zero | tr '\0' x)
	pop3_session "AUTH PLAIN" "$(b64 "\\0alice\\0$long")" "AUTH PLAIN" "$(head -c 1100 /dev/zero | tr '\0' A)" "AUTH PLAIN" "$(b64 '\0alice\0secret')" QUIT
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	grep -q 'password too long' "$T/err"
	[ "${lines[4]}" = "-ERR Line too long" ]
	[ "${lines[6]}" = "+OK maildrop has 1 message (59 octets)" ]
}

@test "AUTH LOGIN asks Username: and Password: and logs in" {
	pop3_session "AUTH LOGIN" "$(b64 alice)" "$(b64 secret)" QUIT
	[ "${lines[1]}" = "+ VXNlcm5hbWU6" ]
	[ "${lines[2]}" = "+ UGFzc3dvcmQ6" ]
	[ "${lines[3]}" = "+OK maildrop has 1 message (59 octets)" ]
	grep -q 'method=LOGIN' "$T/err"
}

@test "AUTH LOGIN with the user name as initial response asks only Password:" {
	pop3_session "AUTH LOGIN $(b64 alice)" "$(b64 secret)" QUIT
	[ "${lines[1]}" = "+ UGFzc3dvcmQ6" ]
	[ "${lines[2]}" = "+OK maildrop has 1 message (59 octets)" ]
}

@test "AUTH with an unknown mechanism, or CRAM-MD5 without -a, is -ERR Unrecognized" {
	pop3_session "AUTH GSSAPI" "AUTH CRAM-MD5" "AUTH PLAIN a b" QUIT
	[ "${lines[1]}" = "-ERR Unrecognized authentication type" ]
	[ "${lines[2]}" = "-ERR Unrecognized authentication type" ]
	[ "${lines[3]}" = "-ERR Syntax error" ]
}

@test "AUTH CRAM-MD5 with the secret from -a logs in; a wrong secret fails" {
	secrets
	pop3_drive -a "$T/secrets" <<-EOF
	K: alice wrong
	K: alice tanstaaf
	C: QUIT
	EOF
	[[ "${lines[1]}" == "+ "* ]]
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[4]}" = "+OK maildrop has 1 message (59 octets)" ]
	# the challenge is a msg-id, and differs from the APOP timestamp
	ch=$(echo "${lines[1]#+ }" | base64 -d)
	[[ "$ch" == "<"*"@"*">" ]]
	[[ "${lines[0]}" != *"$ch"* ]]
	grep -q 'method=CRAM-MD5' "$T/err"
}

@test "AUTH CRAM-MD5 refuses an initial response and a malformed answer" {
	secrets
	pop3_session -a "$T/secrets" -- "AUTH CRAM-MD5 $(b64 'alice 0123')" "AUTH CRAM-MD5" "$(b64 'alice')" QUIT
	[ "${lines[1]}" = "-ERR CRAM-MD5 takes no initial response" ]
	[ "${lines[3]}" = "-ERR Malformed CRAM-MD5 response" ]
}

@test "PLAIN credentials are SASLprep'd: a no-break space in the password maps to a space" {
	pop3_session "AUTH PLAIN $(b64 '\0carol\0pass\xc2\xa0word')" QUIT
	[ "${lines[1]}" = "+OK maildrop has 0 messages (0 octets)" ]
}

@test "PLAIN with invalid UTF-8 or a prohibited character fails like a wrong password" {
	pop3_session "AUTH PLAIN $(b64 '\0alice\0secr\xffet')" "AUTH PLAIN $(b64 '\0alice\0secret\x07')" QUIT
	[ "${lines[1]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
}

@test "SASL is only for AUTHORIZATION: AUTH after login is unknown" {
	pop3_session "USER alice" "PASS secret" "AUTH PLAIN $(b64 '\0alice\0secret')" QUIT
	[ "${lines[3]}" = "-ERR Unknown command" ]
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
