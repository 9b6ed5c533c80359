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
	pop3_session QUIT
	[ "${lines[0]}" = "+OK pop3-handler ready" ]
}

@test "greeting carries a <pid.time.random@host> timestamp with -a" {
	secrets
	pop3_session -a "$T/secrets" -- QUIT
	[[ "${lines[0]}" =~ ^\+OK\ pop3-handler\ ready\ \<[0-9]+\.[0-9]+\.[^@\<\>]+@[^\<\>]+\>$ ]]
}

@test "two sessions get different greeting timestamps" {
	secrets
	pop3_session -a "$T/secrets" -- QUIT
	first="${lines[0]}"
	pop3_session -a "$T/secrets" -- QUIT
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

# --- AUTHORIZATION ------------------------------------------------------

@test "USER then PASS logs in and reports the maildrop" {
	pop3_session "USER alice" "PASS secret" QUIT
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "+OK" ] || [[ "${lines[1]}" == "+OK "* ]]
	[ "${lines[2]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[[ "${lines[3]}" =~ ^\+OK\ .*\(3\ messages\ left\)$ ]]
	[ "${#lines[@]}" -eq 4 ]
}

@test "a password with a space logs in" {
	pop3_session "USER carol" "PASS pass word" QUIT
	[ "${lines[2]}" = "+OK maildrop has 0 messages (0 octets)" ]
}

@test "USER answers +OK for a user that does not exist" {
	pop3_session "USER nosuchuser" QUIT
	[[ "${lines[1]}" == "+OK"* ]]
	[[ "${lines[2]}" == "+OK"* ]]
}

@test "USER without a name is a syntax error" {
	pop3_session "USER" QUIT
	[ "${lines[1]}" = "-ERR Syntax error" ]
}

@test "a wrong password gets -ERR [AUTH] after at least 1 s, and a retry can log in" {
	start=$SECONDS
	pop3_session "USER alice" "PASS wrong" "USER alice" "PASS secret" QUIT
	# One failure: a delay of 1 to 3 s, nothing else slow.
	[ $((SECONDS - start)) -ge 1 ]
	[ $((SECONDS - start)) -le 4 ]
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[4]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[ "$status" -eq 0 ]
}

@test "the third failure answers Too many failures and closes the connection" {
	pop3_session "USER alice" "PASS wrong" "USER nosuchuser" "PASS secret" \
		"USER bob" "PASS secret" "USER alice" "PASS secret" NOOP QUIT
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[4]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[6]}" = "-ERR [AUTH] Too many failures" ]
	[ "${#lines[@]}" -eq 7 ]
	[ "$status" -eq 1 ]
}

@test "PASS without USER is an error and does not log in" {
	pop3_session "PASS secret" STAT QUIT
	[[ "${lines[1]}" == "-ERR"* ]]
	[ "${lines[2]}" = "-ERR Unknown command" ]
}

@test "PASS without a password after USER is an error" {
	pop3_session "USER alice" "PASS" STAT QUIT
	[[ "${lines[2]}" == "-ERR"* ]]
	[ "${lines[3]}" = "-ERR Unknown command" ]
}

# --- APOP -------------------------------------------------------------------

@test "APOP digest of the RFC 1939 example is c4c9334bac560ecc979e58001b3e22fb" {
	# The computation pop3drive.py uses for "A:" lines.
	run python3 -c 'import hashlib; print(hashlib.md5(b"<1896.697170952@dbc.mtview.ca.us>tanstaaf").hexdigest())'
	[ "$output" = "c4c9334bac560ecc979e58001b3e22fb" ]
}

@test "APOP with md5(greeting timestamp + secret) logs in" {
	secrets
	pop3_drive -a "$T/secrets" <<-'EOF'
	A: alice tanstaaf
	C: STAT
	C: QUIT
	EOF
	[ "${lines[1]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[ "${lines[2]}" = "+OK 3 340" ]
	[ "$status" -eq 0 ]
}

@test "APOP with the wrong secret fails with -ERR [AUTH]" {
	secrets
	pop3_drive -a "$T/secrets" <<-'EOF'
	A: alice wrongsecret
	C: STAT
	C: QUIT
	EOF
	[ "${lines[1]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[2]}" = "-ERR Unknown command" ]
}

@test "APOP with a digest wrong in one hex digit fails, whichever digit it is" {
	secrets
	local n
	for n in 0 15 16 17 30 31; do
		pop3_drive -a "$T/secrets" <<-EOF
		D: $n alice tanstaaf
		C: STAT
		EOF
		[ "${lines[1]}" = "-ERR [AUTH] Authentication failed" ] || { echo "digit $n: $output"; false; }
		[ "${lines[2]}" = "-ERR Unknown command" ]
	done
	# and the same digest with none changed logs in
	pop3_drive -a "$T/secrets" <<-EOF
	A: alice tanstaaf
	C: STAT
	EOF
	[ "${lines[2]}" = "+OK 3 340" ]
}

@test "APOP without -a is refused" {
	pop3_session "APOP alice c4c9334bac560ecc979e58001b3e22fb" STAT QUIT
	[[ "${lines[1]}" == "-ERR"* ]]
	[ "${lines[2]}" = "-ERR Unknown command" ]
}

@test "APOP with a digest that is not 32 hex digits is an error" {
	secrets
	pop3_session -a "$T/secrets" -- "APOP alice" "APOP alice xyz" STAT QUIT
	[[ "${lines[1]}" == "-ERR"* ]]
	[[ "${lines[2]}" == "-ERR"* ]]
	[ "${lines[3]}" = "-ERR Unknown command" ]
}

@test "-A refuses USER/PASS for a user with an APOP secret, not for others" {
	secrets
	pop3_session -a "$T/secrets" -A -- "USER alice" "PASS secret" "USER bob" "PASS hunter2" QUIT
	[[ "${lines[1]}" == "+OK"* ]]
	[[ "${lines[2]}" == "-ERR [AUTH]"* ]]
	[[ "${lines[3]}" == "+OK"* ]]
	[ "${lines[4]}" = "+OK maildrop has 0 messages (0 octets)" ]
}

@test "without -A an APOP user may still use USER/PASS" {
	secrets
	pop3_session -a "$T/secrets" -- "USER alice" "PASS secret" QUIT
	[ "${lines[2]}" = "+OK maildrop has 3 messages (340 octets)" ]
}

@test "a secrets file readable by group or others is refused" {
	secrets
	chmod 640 "$T/secrets"
	pop3_drive -a "$T/secrets" <<-'EOF'
	A: alice tanstaaf
	C: QUIT
	EOF
	[ "${lines[1]}" = "-ERR [AUTH] Authentication failed" ]
	chmod 604 "$T/secrets"
	pop3_drive -a "$T/secrets" <<-'EOF'
	A: alice tanstaaf
	C: USER alice
	C: PASS secret
	C: QUIT
	EOF
	[ "${lines[1]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[3]}" = "+OK maildrop has 3 messages (340 octets)" ]
}

@test "a secrets-file line with a NUL byte, or over 1023 octets, is dropped alone: the next line still counts" {
	secrets
	{ printf 'x\0y:z\n'; head -c 2000 /dev/zero | tr '\0' a; printf ':long\nalice:tanstaaf\n'; } > "$T/secrets"
	pop3_drive -a "$T/secrets" <<-'EOF'
	A: alice tanstaaf
	C: QUIT
	EOF
	[ "${lines[1]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[ "$(grep -c 'line too long or holding a NUL byte, ignored' "$T/err")" -eq 2 ]
}

@test "a symlink as secrets file is refused" {
	secrets
	ln -s "$T/secrets" "$T/secrets.link"
	pop3_drive -a "$T/secrets.link" <<-'EOF'
	A: alice tanstaaf
	C: QUIT
	EOF
	[ "${lines[1]}" = "-ERR [AUTH] Authentication failed" ]
}

# --- CAPA -------------------------------------------------------------------

@test "CAPA before login lists USER TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING IMPLEMENTATION" {
	pop3_session CAPA QUIT
	[[ "${lines[1]}" == "+OK"* ]]
	capa=$(printf '%s\n' "${lines[@]}" | sed -n '3,/^\.$/p')
	for c in USER TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING; do
		grep -qx "$c" <<< "$capa"
	done
	grep -q '^IMPLEMENTATION ' <<< "$capa"
	[[ "${lines[-2]}" == "." ]]
	[[ "${lines[-1]}" == "+OK"* ]]
}

@test "CAPA after login lists TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING IMPLEMENTATION" {
	pop3_session "USER alice" "PASS secret" CAPA QUIT
	[[ "${lines[3]}" == "+OK"* ]]
	capa=$(printf '%s\n' "${lines[@]}" | sed -n '5,/^\.$/p')
	for c in TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING; do
		grep -qx "$c" <<< "$capa"
	done
	grep -q '^IMPLEMENTATION ' <<< "$capa"
	[[ "${lines[-1]}" =~ \(3\ messages\ left\)$ ]]
}

@test "-P without -S: CAPA leaves out USER, USER is refused with [AUTH], APOP still logs in" {
	secrets
	pop3_session -P -a "$T/secrets" -- CAPA "USER alice" "PASS secret" QUIT
	capa=$(printf '%s\n' "${lines[@]}" | sed -n '3,/^\.$/p')
	! grep -qx USER <<< "$capa" || false
	grep -qx TOP <<< "$capa"
	grep -qx '\-ERR \[AUTH\] Plaintext authentication disallowed on non-secure connections' <<< "$output"
	grep -qx -- '-ERR Send USER first' <<< "$output"
	pop3_drive -P -a "$T/secrets" <<-'EOF'
	A: alice tanstaaf
	C: QUIT
	EOF
	[ "${lines[1]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[ "$status" -eq 0 ]
}

@test "-P with -S (under TLS): CAPA lists USER and USER/PASS logs in" {
	pop3_session -P -S -- CAPA "USER alice" "PASS secret" QUIT
	capa=$(printf '%s\n' "${lines[@]}" | sed -n '3,/^\.$/p')
	grep -qx USER <<< "$capa"
	grep -qx '+OK maildrop has 3 messages (340 octets)' <<< "$output"
	[ "$status" -eq 0 ]
}

@test "CAPA with an argument is a syntax error" {
	pop3_session "CAPA x" QUIT
	[ "${lines[1]}" = "-ERR Syntax error" ]
}

# --- TRANSACTION ----------------------------------------------------------

@test "STAT gives count and size" {
	pop3_session "USER alice" "PASS secret" STAT "STAT 1" QUIT
	[ "${lines[3]}" = "+OK 3 340" ]
	[ "${lines[4]}" = "-ERR Syntax error" ]
}

@test "LIST lists each message with its size" {
	pop3_session "USER alice" "PASS secret" LIST QUIT
	[[ "${lines[3]}" == "+OK"* ]]
	[ "${lines[4]}" = "1 111" ]
	[ "${lines[5]}" = "2 125" ]
	[ "${lines[6]}" = "3 104" ]
	[ "${lines[7]}" = "." ]
}

@test "LIST n gives one message's size; 0 and past the end are No such message" {
	pop3_session "USER alice" "PASS secret" "LIST 2" "LIST 3" "LIST 0" "LIST 4" QUIT
	[ "${lines[3]}" = "+OK 2 125" ]
	[ "${lines[4]}" = "+OK 3 104" ]
	[ "${lines[5]}" = "-ERR No such message" ]
	[ "${lines[6]}" = "-ERR No such message" ]
}

@test "message numbers are strict: LIST 4294967297, 1 2, -1, abc, +1, 1x are invalid" {
	pop3_session "USER alice" "PASS secret" "LIST 4294967297" "LIST 4294967296" \
		"LIST 99999999999999999999999" "LIST 1 2" "LIST -1" "LIST abc" "LIST +1" "LIST 1x" QUIT
	[ "${lines[3]}" = "-ERR Invalid message number" ]
	[ "${lines[4]}" = "-ERR Invalid message number" ]
	[ "${lines[5]}" = "-ERR Invalid message number" ]
	[ "${lines[6]}" = "-ERR Invalid message number" ]
	[ "${lines[7]}" = "-ERR Invalid message number" ]
	[ "${lines[8]}" = "-ERR Invalid message number" ]
	[ "${lines[9]}" = "-ERR Invalid message number" ]
	[ "${lines[10]}" = "-ERR Invalid message number" ]
	[[ "${lines[11]}" =~ \(3\ messages\ left\)$ ]]
	[ "${#lines[@]}" -eq 12 ]
}

@test "RETR sends +OK size octets, the message, and a dot" {
	pop3_session "USER alice" "PASS secret" "RETR 2" QUIT
	[ "${lines[3]}" = "+OK 125 octets" ]
	[ "${lines[4]}" = "From: Carol <carol@example.org>" ]
	[ "${lines[5]}" = "To: alice@example.org" ]
	[ "${lines[6]}" = "Subject: two" ]
	[ "${lines[7]}" = "Message-ID: <2@example.org>" ]
	[ "${lines[8]}" = "line 1" ]
	[ "${lines[9]}" = "line 2" ]
	[ "${lines[10]}" = "line 3" ]
	[ "${lines[11]}" = "." ]
	[[ "${lines[12]}" == "+OK"* ]]
	[[ "$output" == *$'Message-ID: <2@example.org>\n\nline 1\n'* ]]
}

@test "RETR without an argument, with two, or past the end is an error" {
	pop3_session "USER alice" "PASS secret" RETR "RETR 1 2" "RETR 4" "RETR 0" "RETR x" QUIT
	[ "${lines[3]}" = "-ERR Syntax error" ]
	[ "${lines[4]}" = "-ERR Invalid message number" ]
	[ "${lines[5]}" = "-ERR No such message" ]
	[ "${lines[6]}" = "-ERR No such message" ]
	[ "${lines[7]}" = "-ERR Invalid message number" ]
}

@test "TOP n 0 sends the headers and the blank line only" {
	pop3_session "USER alice" "PASS secret" "TOP 2 0" QUIT
	[[ "${lines[3]}" == "+OK"* ]]
	[ "${lines[4]}" = "From: Carol <carol@example.org>" ]
	[ "${lines[7]}" = "Message-ID: <2@example.org>" ]
	[ "${lines[8]}" = "." ]
	[[ "${lines[9]}" == "+OK"* ]]
	[[ "$output" == *$'Message-ID: <2@example.org>\n\n.\n'* ]]
}

@test "TOP n k sends k body lines; k past the end sends the whole body" {
	pop3_session "USER alice" "PASS secret" "TOP 2 2" "TOP 1 99" "TOP 2 4294967295" QUIT
	[ "${lines[8]}" = "line 1" ]
	[ "${lines[9]}" = "line 2" ]
	[ "${lines[10]}" = "." ]
	[[ "${lines[11]}" == "+OK"* ]]
	[ "${lines[16]}" = "Hello alice." ]
	[ "${lines[17]}" = "." ]
	[[ "${lines[18]}" == "+OK"* ]]
	[ "${lines[25]}" = "line 3" ]
	[ "${lines[26]}" = "." ]
	[[ "$output" == *$'<2@example.org>\n\nline 1\nline 2\n.\n'* ]]
}

@test "TOP with a missing or bad argument is an error" {
	pop3_session "USER alice" "PASS secret" "TOP 1" TOP "TOP 1 2 3" "TOP 4 1" "TOP 1 x" "TOP 1 -1" QUIT
	[ "${lines[3]}" = "-ERR Syntax error" ]
	[ "${lines[4]}" = "-ERR Syntax error" ]
	[[ "${lines[5]}" == "-ERR"* ]]
	[ "${lines[6]}" = "-ERR No such message" ]
	[[ "${lines[7]}" == "-ERR"* ]]
	[[ "${lines[8]}" == "-ERR"* ]]
	[[ "${lines[9]}" =~ \(3\ messages\ left\)$ ]]
}

@test "DELE marks a message: STAT and LIST leave it out, a second DELE and RETR say it is deleted" {
	pop3_session "USER alice" "PASS secret" "DELE 1" STAT LIST "DELE 1" "RETR 1" "LIST 1" \
		"TOP 1 0" "UIDL 1" "LIST 2" RSET
	[[ "${lines[3]}" == "+OK"* ]]
	[ "${lines[4]}" = "+OK 2 229" ]
	[[ "${lines[5]}" == "+OK"* ]]
	[ "${lines[6]}" = "2 125" ]
	[ "${lines[7]}" = "3 104" ]
	[ "${lines[8]}" = "." ]
	[ "${lines[9]}" = "-ERR Message 1 is deleted" ]
	[ "${lines[10]}" = "-ERR Message 1 is deleted" ]
	[ "${lines[11]}" = "-ERR Message 1 is deleted" ]
	[ "${lines[12]}" = "-ERR Message 1 is deleted" ]
	[ "${lines[13]}" = "-ERR Message 1 is deleted" ]
	[ "${lines[14]}" = "+OK 2 125" ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "DELE without an argument or past the end is an error" {
	pop3_session "USER alice" "PASS secret" DELE "DELE 4" "DELE 0" STAT
	[ "${lines[3]}" = "-ERR Syntax error" ]
	[ "${lines[4]}" = "-ERR No such message" ]
	[ "${lines[5]}" = "-ERR No such message" ]
	[ "${lines[6]}" = "+OK 3 340" ]
}

@test "DELE then RSET restores STAT" {
	pop3_session "USER alice" "PASS secret" "DELE 1" "DELE 3" STAT RSET STAT "RETR 1" QUIT
	[ "${lines[5]}" = "+OK 1 125" ]
	[[ "${lines[6]}" == "+OK"* ]]
	[ "${lines[7]}" = "+OK 3 340" ]
	[ "${lines[8]}" = "+OK 111 octets" ]
	[[ "${lines[-1]}" =~ \(3\ messages\ left\)$ ]]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "RSET with an argument is a syntax error" {
	pop3_session "USER alice" "PASS secret" "RSET 1" QUIT
	[ "${lines[3]}" = "-ERR Syntax error" ]
}

@test "NOOP answers +OK; with an argument it is a syntax error" {
	pop3_session "USER alice" "PASS secret" NOOP "NOOP 1" QUIT
	[ "${lines[3]}" = "+OK" ] || [[ "${lines[3]}" == "+OK "* ]]
	[ "${lines[4]}" = "-ERR Syntax error" ]
}

@test "UIDL lists a unique id per message and UIDL n gives the same one" {
	pop3_session "USER alice" "PASS secret" UIDL "UIDL 2" "UIDL 4" "UIDL 0" "UIDL x" QUIT
	[[ "${lines[3]}" == "+OK"* ]]
	[[ "${lines[4]}" =~ ^1\ [!-~]{1,70}$ ]]
	[[ "${lines[5]}" =~ ^2\ [!-~]{1,70}$ ]]
	[[ "${lines[6]}" =~ ^3\ [!-~]{1,70}$ ]]
	[ "${lines[7]}" = "." ]
	[ "${lines[8]}" = "+OK ${lines[5]}" ]
	[ "${lines[9]}" = "-ERR No such message" ]
	[ "${lines[10]}" = "-ERR No such message" ]
	[ "${lines[11]}" = "-ERR Invalid message number" ]
	[ "$(printf '%s\n' "${lines[4]#1 }" "${lines[5]#2 }" "${lines[6]#3 }" | sort -u | wc -l)" -eq 3 ]
}

@test "QUIT before login answers +OK and exits 0" {
	pop3_session QUIT NOOP
	[[ "${lines[1]}" == "+OK"* ]]
	[ "${#lines[@]}" -eq 2 ]
	[ "$status" -eq 0 ]
}

@test "QUIT after login answers +OK with the messages left and exits 0" {
	pop3_session "USER alice" "PASS secret" QUIT NOOP
	[[ "${lines[3]}" =~ ^\+OK\ .*\(3\ messages\ left\)$ ]]
	[ "${#lines[@]}" -eq 4 ]
	[ "$status" -eq 0 ]
}

@test "QUIT with an argument is a syntax error" {
	pop3_session "QUIT now" QUIT
	[ "${lines[1]}" = "-ERR Syntax error" ]
	[[ "${lines[2]}" == "+OK"* ]]
}

# --- wrong state, unknown commands, case --------------------------------

@test "an unknown command is -ERR Unknown command in both states" {
	pop3_session FOO "XTND XLST" "USER alice" "PASS secret" FOO "RETRX 1" QUIT
	[ "${lines[1]}" = "-ERR Unknown command" ]
	[ "${lines[2]}" = "-ERR Unknown command" ]
	[ "${lines[5]}" = "-ERR Unknown command" ]
	[ "${lines[6]}" = "-ERR Unknown command" ]
}

@test "TRANSACTION commands before login are -ERR Unknown command" {
	pop3_session STAT LIST "LIST 1" "RETR 1" "TOP 1 0" "DELE 1" RSET NOOP UIDL "UIDL 1" QUIT
	for i in $(seq 1 10); do
		[ "${lines[$i]}" = "-ERR Unknown command" ]
	done
	[[ "${lines[11]}" == "+OK"* ]]
	[ "${#lines[@]}" -eq 12 ]
}

@test "USER, PASS and APOP after login are -ERR Unknown command" {
	pop3_session "USER alice" "PASS secret" "USER bob" "PASS hunter2" \
		"APOP alice c4c9334bac560ecc979e58001b3e22fb" STAT QUIT
	[ "${lines[3]}" = "-ERR Unknown command" ]
	[ "${lines[4]}" = "-ERR Unknown command" ]
	[ "${lines[5]}" = "-ERR Unknown command" ]
	[ "${lines[6]}" = "+OK 3 340" ]
}

@test "keywords are case-insensitive: user, Pass, stat, LiSt, rEtR, quit" {
	pop3_session "user alice" "Pass secret" stat "LiSt 1" "rEtR 3" "uidl 1" capa quit
	[ "${lines[2]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[ "${lines[3]}" = "+OK 3 340" ]
	[ "${lines[4]}" = "+OK 1 111" ]
	[ "${lines[5]}" = "+OK 104 octets" ]
	[[ "${lines[-1]}" =~ \(3\ messages\ left\)$ ]]
}

@test "an empty line gets exactly one -ERR" {
	pop3_session "" "USER alice" "PASS secret" "" STAT
	[[ "${lines[1]}" == "-ERR"* ]]
	[[ "${lines[4]}" == "-ERR"* ]]
	[ "${lines[5]}" = "+OK 3 340" ]
	[ "${#lines[@]}" -eq 6 ]
}

# --- line discipline --------------------------------------------------------

@test "a bare LF ends a line as CRLF does" {
	printf 'USER alice\nPASS secret\nSTAT\r\nLIST 2\nQUIT\n' > "$T/in"
	pop3_run
	[ "${lines[2]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[ "${lines[3]}" = "+OK 3 340" ]
	[ "${lines[4]}" = "+OK 2 125" ]
	[[ "${lines[5]}" =~ \(3\ messages\ left\)$ ]]
	[ "$status" -eq 0 ]
}

@test "replies end in CRLF" {
	pop3_session "USER alice" "PASS secret" "LIST" QUIT
	# Every LF the handler sends is preceded by CR.
	[ "$(tr -cd '\n' < "$T/out" | wc -c)" -eq "$(grep -c $'\r$' "$T/out")" ]
}

@test "a line of 255 octets with CRLF is one line: NOOP plus padding is one syntax error" {
	pad=$(printf '%*s' 248 '' | tr ' ' x)
	pop3_session "USER alice" "PASS secret" "NOOP $pad" STAT
	[ "${#pad}" -eq 248 ]
	[ "${lines[3]}" = "-ERR Syntax error" ]
	[ "${lines[4]}" = "+OK 3 340" ]
	[ "${#lines[@]}" -eq 5 ]
}

@test "a line of 256 octets with CRLF is Line too long, once" {
	pad=$(printf '%*s' 249 '' | tr ' ' x)
	pop3_session "USER alice" "PASS secret" "NOOP $pad" STAT
	[ "${lines[3]}" = "-ERR Line too long" ]
	[ "${lines[4]}" = "+OK 3 340" ]
	[ "${#lines[@]}" -eq 5 ]
}

@test "an over-long line ending in NOOP is never split: one -ERR each, no +OK" {
	# "A"*k + "NOOP" for k = 250..320: whatever the reader's buffer size, one
	# of these would end in a bare "NOOP" after a split.
	# 18 a session, under the limit of 20 bad commands.
	for from in 250 268 286 304; do
		args=("USER alice" "PASS secret")
		to=$((from + 17)); [ "$to" -le 320 ] || to=320
		for k in $(seq "$from" "$to"); do
			args+=("$(printf '%*s' "$k" '' | tr ' ' A)NOOP")
		done
		n=$((to - from + 1))
		pop3_session "${args[@]}" STAT
		[ "${#lines[@]}" -eq $((3 + n + 1)) ]
		for i in $(seq 3 $((2 + n))); do
			[ "${lines[$i]}" = "-ERR Line too long" ]
		done
		[ "${lines[$((3 + n))]}" = "+OK 3 340" ]
	done
}

@test "a 100 000-octet line gets one Line too long and the session goes on" {
	{
		printf 'USER alice\r\nPASS secret\r\n'
		head -c 100000 /dev/zero | tr '\0' N
		printf '\r\nSTAT\r\nQUIT\r\n'
	} > "$T/in"
	pop3_run
	[ "${lines[3]}" = "-ERR Line too long" ]
	[ "${lines[4]}" = "+OK 3 340" ]
	[[ "${lines[5]}" =~ \(3\ messages\ left\)$ ]]
	[ "${#lines[@]}" -eq 6 ]
}

@test "a NUL byte in a line gets one -ERR NUL byte in command" {
	printf 'USER alice\r\nPASS secret\r\nNO\0OP\r\nSTAT\0\r\nSTAT\r\nQUIT\r\n' > "$T/in"
	pop3_run
	[ "${lines[3]}" = "-ERR NUL byte in command" ]
	[ "${lines[4]}" = "-ERR NUL byte in command" ]
	[ "${lines[5]}" = "+OK 3 340" ]
	[ "${#lines[@]}" -eq 7 ]
}

@test "a NUL byte in USER is refused before login" {
	printf 'USER ali\0ce\r\nPASS secret\r\nSTAT\r\nQUIT\r\n' > "$T/in"
	pop3_run
	[ "${lines[1]}" = "-ERR NUL byte in command" ]
	[[ "${lines[2]}" == "-ERR"* ]]
	[ "${lines[3]}" = "-ERR Unknown command" ]
}

@test "pipelined commands in one write are all answered, in order" {
	printf 'USER alice\r\nPASS secret\r\nSTAT\r\nLIST 3\r\nTOP 1 0\r\nDELE 2\r\nNOOP\r\nLIST\r\nRSET\r\nUIDL 3\r\nRETR 3\r\nQUIT\r\n' > "$T/in"
	pop3_run
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == "+OK"* ]]
	[ "${lines[2]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[ "${lines[3]}" = "+OK 3 340" ]
	[ "${lines[4]}" = "+OK 3 104" ]
	[[ "${lines[5]}" == "+OK"* ]]
	[ "${lines[6]}" = "From: Bob <bob@example.org>" ]
	[ "${lines[9]}" = "Message-ID: <1@example.org>" ]
	[ "${lines[10]}" = "." ]
	[[ "${lines[11]}" == "+OK"* ]]       # DELE 2
	[[ "${lines[12]}" == "+OK"* ]]       # NOOP
	[[ "${lines[13]}" == "+OK"* ]]       # LIST
	[ "${lines[14]}" = "1 111" ]
	[ "${lines[15]}" = "3 104" ]
	[ "${lines[16]}" = "." ]
	[[ "${lines[17]}" == "+OK"* ]]       # RSET
	[[ "${lines[18]}" =~ ^\+OK\ 3\ [!-~]+$ ]]
	[ "${lines[19]}" = "+OK 104 octets" ]
	[ "${lines[24]}" = "x" ]
	[ "${lines[25]}" = "." ]
	[[ "${lines[26]}" =~ \(3\ messages\ left\)$ ]]
	[ "${#lines[@]}" -eq 27 ]
}

@test "pipelined commands after a failed PASS are still answered" {
	printf 'USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n' > "$T/in"
	pop3_run
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[4]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[ "${lines[5]}" = "+OK 3 340" ]
	[ "${#lines[@]}" -eq 7 ]
}

# --- ending without QUIT -----------------------------------------------------

@test "EOF without QUIT deletes nothing and exits 1" {
	pop3_session "USER alice" "PASS secret" "DELE 1" "DELE 2"
	[[ "${lines[4]}" == "+OK"* ]]
	[ "${#lines[@]}" -eq 5 ]
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "EOF in the middle of a line without QUIT exits 1" {
	printf 'USER alice\r\nPASS secret\r\nDELE 1\r\nQUI' > "$T/in"
	pop3_run
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "an idle client is disconnected for inactivity after -t seconds and nothing is deleted" {
	pop3_drive -t 1 <<-'EOF'
	C: USER alice
	C: PASS secret
	C: DELE 1
	! sleep 3
	EOF
	[ "${lines[2]}" = "+OK maildrop has 3 messages (340 octets)" ]
	[[ "${lines[3]}" == "+OK"* ]]
	[ "${lines[4]}" = "-ERR Disconnected for inactivity" ]
	[ "${#lines[@]}" -eq 5 ]
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
