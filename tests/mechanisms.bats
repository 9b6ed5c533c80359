#!/usr/bin/env bats
# Mechanisms that fail through no fault of the user: with a secrets file (-a),
# mutt tries CRAM-MD5, then APOP with the system password, then USER/PASS.
# Failures are counted by what they guessed at (the secrets file, the
# password), so those two cost no try of the password, and no time on it.

load helpers
load drive

setup() {
	pop3_setup
	mbox alice <<-'EOF'
	From a@example.org Mon Jan  1 00:00:00 2024
	Subject: hello

	body
	EOF
	# bob has a secret; alice has none.
	printf 'bob:bob apop secret\n' > "$T/secrets"
	chmod 600 "$T/secrets"
	[ "$(id -u)" != 0 ] || chown nobody "$T/secrets"
	mbox bob < /dev/null
}

teardown() {
	pop3_unlisten
	pop3_teardown
}

# mutt_fetch USER PASSWORD [muttrc lines...]: mutt opens the POP3 mailbox on
# $PORT as USER, under a pseudo-terminal, and quits; its time in ms goes to
# $took. The handler's log is in $T/err.
mutt_fetch() {
	local user=$1 pass=$2 t0
	shift 2
	command -v mutt >/dev/null || skip "mutt is not installed"
	mkdir -p "$T/mutt"
	{
		echo "set pop_user=$user"
		echo "set pop_pass=\"$pass\""
		echo "set spoolfile=pop://$user@127.0.0.1:$PORT/"
		echo "set folder=$T/mutt"
		echo "set ssl_starttls=no ssl_force_tls=no"
		echo 'set header_cache="" message_cachedir="" record="" postponed=""'
		echo "set quit=yes move=no pop_delete=no timeout=1 sleep_time=0"
		printf '%s\n' "$@"
	} > "$T/muttrc"
	t0=$(date +%s%N)
	(cd "$T/mutt" && HOME="$T/mutt" TERM=vt100 timeout 60 script -qfec \
		"mutt -n -F $T/muttrc -e 'push <quit>'" /dev/null > "$T/screen" 2>&1)
	took=$(( ($(date +%s%N) - t0) / 1000000 ))
	echo "# mutt took $took ms" >&3
}

@test "mutt's sequence with a mistyped password: after failed CRAM-MD5 and APOP, a wrong PASS is not the last try" {
	# What mutt sends for a user with no secret: CAPA, AUTH CRAM-MD5 (the
	# system password as the key), APOP, then USER/PASS.
	transcript -a "$T/secrets" <<-EOF
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
	C: AUTH CRAM-MD5
	S~ \+ [A-Za-z0-9+/]+=*
	C: $(printf 'alice 0123456789abcdef0123456789abcdef' | base64 -w0)
	S: -ERR [AUTH] Authentication failed
	C: APOP alice 0123456789abcdef0123456789abcdef
	S: -ERR [AUTH] Authentication failed
	C: USER alice
	S: +OK Send PASS
	! date +%s%N > "$T/t0"
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
	! date +%s%N > "$T/t1"
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 1 message*
	C: QUIT
	S* +OK pop3-handler signing off*
	EOF
	[ "$status" -eq 0 ]
	[ "$(grep -cx -- '-ERR \[AUTH\] Authentication failed' <<< "$output")" -eq 3 ]
	! grep -q 'Too many failures' <<< "$output" || false
	# The wrong PASS is the password's first failure: 1 s, not 3 s.
	took=$(( ($(cat "$T/t1") - $(cat "$T/t0")) / 1000000 ))
	echo "# wrong PASS answered in $took ms" >&3
	[ "$took" -lt 2000 ]
}

@test "three failed APOPs still close the connection" {
	transcript -a "$T/secrets" <<-'EOF'
	S~ \+OK pop3-handler ready <[^<>]+>
	C: APOP bob 0123456789abcdef0123456789abcdef
	S: -ERR [AUTH] Authentication failed
	C: APOP bob 0123456789abcdef0123456789abcdef
	S: -ERR [AUTH] Authentication failed
	C: APOP bob 0123456789abcdef0123456789abcdef
	S: -ERR [AUTH] Too many failures
	# closed: NOOP is never answered
	C: NOOP
	EOF
	[ "$status" -eq 1 ]
}

@test "mutt, with -a, logs in after failed CRAM-MD5 and APOP, which cost 1 s and 2 s" {
	pop3_listen -a "$T/secrets"
	mutt_fetch alice secret
	cat "$T/err"
	grep -q 'login: user=alice host=127.0.0.1 method=PASS messages=1' "$T/err"
	grep -q 'authentication failed: user=alice .*method=CRAM-MD5' "$T/err"
	grep -q 'authentication failed: user=alice .*method=APOP' "$T/err"
	# 1 s for CRAM-MD5 and 2 s for APOP here, none for the PASS that works;
	# mutt sleeps 2 s after each failed mechanism itself. That is the price
	# of offering them on a port (README: a port of their own).
	[ "$took" -ge 3000 ]
	[ "$took" -lt 10000 ]
}
