#!/usr/bin/env bats
# RFC 2449 LOGIN-DELAY and EXPIRE, one session per maildrop ([IN-USE]), and
# the options behind them. Alice's maildrop holds two messages.

load helpers
load drive

setup() {
	pop3_setup
	mbox alice <<'EOF2'
From bob@example.org Mon Jan  1 00:00:00 2024
Subject: one

first

From bob@example.org Mon Jan  1 00:01:00 2024
Subject: two

second

EOF2
	cp "$T/mail/alice" "$T/alice.orig"
}

teardown() {
	pop3_unlisten
	pop3_teardown
}

# --- LOGIN-DELAY ----------------------------------------------------------

@test "without -l and -e, CAPA advertises neither LOGIN-DELAY nor EXPIRE" {
	pop3_session CAPA QUIT
	! grep -q 'LOGIN-DELAY\|EXPIRE' <<< "$output"
}

@test "-l 600 advertises LOGIN-DELAY 600; a second login within it gets [LOGIN-DELAY] and the maildrop is not opened" {
	pop3_session -l 600 -- CAPA "USER alice" "PASS secret" QUIT
	grep -qx 'LOGIN-DELAY 600' <<< "$output"
	grep -q '^+OK maildrop has 2 messages' <<< "$output"
	[ -f "$T/state/alice/last-login" ]
	pop3_session -l 600 -- "USER alice" "PASS secret" STAT
	[[ "${lines[2]}" == "-ERR [LOGIN-DELAY] Wait "*" more seconds" ]]
	[ "${#lines[@]}" -eq 3 ]
	[ "$status" -eq 1 ]
	grep -q 'LOGIN-DELAY' "$T/err"
}

@test "[LOGIN-DELAY] comes only after a correct password: a wrong one is a plain [AUTH] failure" {
	pop3_session -l 600 -- "USER alice" "PASS secret" QUIT
	pop3_session -l 600 -- "USER alice" "PASS wrong" QUIT
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
}

@test "a login after the delay has passed is let in, and a refused one does not restart the clock" {
	pop3_session -l 2 -- "USER alice" "PASS secret" QUIT
	pop3_session -l 2 -- "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "-ERR [LOGIN-DELAY]"* ]]
	sleep 2.2
	pop3_session -l 2 -- "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "+OK maildrop has 2 messages"* ]]
}

@test "-l 2 refuses a login 1.5 s after the last one, even when the clock's seconds turned over twice" {
	pop3_session -l 2 -- "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "+OK maildrop has 2 messages"* ]]
	# Stamp the last login 1.5 s ago at an instant early in a second, so
	# that whole seconds would count 2 of them gone.
	python3 - "$T/state/alice/last-login" <<'PY'
import os, sys, time
while not 0.05 <= time.time() % 1 <= 0.3:
    time.sleep(0.01)
then = time.time_ns() - 1_500_000_000
os.utime(sys.argv[1], ns=(then, then))
PY
	pop3_session -l 2 -- "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "-ERR [LOGIN-DELAY] Wait 1 more second" ]]
}

@test "-l 0 advertises LOGIN-DELAY 0 and holds nobody off" {
	pop3_session -l 0 -- CAPA "USER alice" "PASS secret" QUIT
	grep -qx 'LOGIN-DELAY 0' <<< "$output"
	pop3_session -l 0 -- "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "+OK maildrop has 2 messages"* ]]
}

# --- EXPIRE ---------------------------------------------------------------

@test "-e 0 advertises EXPIRE 0 and deletes the RETR'd message at QUIT" {
	pop3_session -e 0 -- CAPA "USER alice" "PASS secret" "RETR 2" "TOP 1 0" QUIT
	grep -qx 'EXPIRE 0' <<< "$output"
	[[ "$output" == *"(1 message left)"* ]]
	grep -q 'Subject: one' "$T/mail/alice"
	! grep -q 'Subject: two' "$T/mail/alice"
}

@test "-e 0: RSET does not undo a retrieval; without QUIT nothing is deleted" {
	pop3_session -e 0 -- "USER alice" "PASS secret" "RETR 1" RSET
	cmp "$T/mail/alice" "$T/alice.orig"
	pop3_session -e 0 -- "USER alice" "PASS secret" "RETR 1" RSET QUIT
	[[ "${lines[-1]}" == *"(1 message left)" ]]
	! grep -q 'Subject: one' "$T/mail/alice"
}

@test "-e 30 advertises EXPIRE 30 and deletes nothing by itself" {
	pop3_session -e 30 -- CAPA "USER alice" "PASS secret" "RETR 1" QUIT
	grep -qx 'EXPIRE 30' <<< "$output"
	cmp "$T/mail/alice" "$T/alice.orig"
}

@test "-T drops TOP from CAPA and the command table" {
	pop3_session -T -e 0 -- CAPA "USER alice" "PASS secret" "TOP 1 0" QUIT
	! grep -qx 'TOP' <<< "$output" || false
	grep -qx -- '-ERR Unknown command' <<< "$output"
}

# --- one session per maildrop ---------------------------------------------

@test "-1: a second session while the first is logged in gets [IN-USE]" {
	pop3_drive -1 <<-EOF
	C: USER alice
	C: PASS secret
	! printf 'USER alice\r\nPASS secret\r\nSTAT\r\n' | env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" ${RUNAS[*]} "$HANDLER" -1 -m "$T/mail/%u" -D "$T/state/%u" > "$T/second"; test \$? = 1
	C: STAT
	C: QUIT
	EOF
	[[ "${lines[2]}" == "+OK maildrop has 2 messages"* ]]
	[[ "${lines[3]}" == "+OK 2 "* ]]
	[ "$status" -eq 0 ]
	[ "$(tr -d '\r' < "$T/second" | sed -n 3p)" = "-ERR [IN-USE] Another session is active" ]
	[ "$(wc -l < "$T/second")" -eq 3 ]
}

@test "-1: the lock of a killed session is gone at once" {
	pop3_drive -1 <<-EOF
	C: USER alice
	C: PASS secret
	! kill -9 \$HANDLER_PID
	EOF
	pop3_session -1 -- "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "+OK maildrop has 2 messages"* ]]
	[ "$status" -eq 0 ]
}

@test "-1: sessions one after the other are fine" {
	pop3_session -1 -- "USER alice" "PASS secret" QUIT
	pop3_session -1 -- "USER alice" "PASS secret" QUIT
	[[ "${lines[2]}" == "+OK maildrop has 2 messages"* ]]
}

@test "-1 and -l need a state directory that is the user's: another owner's is [SYS/TEMP]" {
	[ "$(id -u)" = 0 ] || skip "needs root to give the directory away"
	mkdir -p "$T/state/alice"
	pop3_own
	chown root "$T/state/alice"
	pop3_own() { :; }
	chown -R nobody:nogroup "$T/mail"
	pop3_session -1 -- "USER alice" "PASS secret" QUIT
	[ "${lines[2]}" = "-ERR [SYS/TEMP] No state directory" ]
}
