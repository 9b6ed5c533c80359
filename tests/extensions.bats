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
}

@test "-l 600 advertises LOGIN-DELAY 600; a second login within it gets [LOGIN-DELAY] and the maildrop is not opened" {
	transcript -l 600 <<-'EOF'
	S: +OK pop3-handler ready
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN
	S: TOP
	S: LOGIN-DELAY 600
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
	S* +OK maildrop has 2 messages*
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	[ -f "$T/state/alice/last-login" ]
	transcript -l 600 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* -ERR \[LOGIN-DELAY] Wait * more seconds
	# closed: STAT is never answered
	C: STAT
	EOF
	[ "$status" -eq 1 ]
	grep -q 'LOGIN-DELAY' "$T/err"
}

@test "[LOGIN-DELAY] comes only after a correct password: a wrong one is a plain [AUTH] failure" {
	pop3_session -l 600 -- "USER alice" "PASS secret" QUIT
	transcript -l 600 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "a login after the delay has passed is let in, and a refused one does not restart the clock" {
	pop3_session -l 2 -- "USER alice" "PASS secret" QUIT
	transcript -l 2 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* -ERR \[LOGIN-DELAY]*
	C: QUIT
	EOF
	sleep 2.2
	transcript -l 2 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages*
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
}

@test "-l 2 refuses a login 1.5 s after the last one, even when the clock's seconds turned over twice" {
	transcript -l 2 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages*
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	# Stamp the last login 1.5 s ago at an instant early in a second, so
	# that whole seconds would count 2 of them gone.
	python3 - "$T/state/alice/last-login" <<'PY'
import os, sys, time
while not 0.05 <= time.time() % 1 <= 0.3:
    time.sleep(0.01)
then = time.time_ns() - 1_500_000_000
os.utime(sys.argv[1], ns=(then, then))
PY
	transcript -l 2 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: -ERR [LOGIN-DELAY] Wait 1 more second
	C: QUIT
	EOF
}

@test "-l 0 advertises LOGIN-DELAY 0 and holds nobody off" {
	transcript -l 0 <<-'EOF'
	S: +OK pop3-handler ready
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN
	S: TOP
	S: LOGIN-DELAY 0
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
	S* +OK maildrop has 2 messages*
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	transcript -l 0 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages*
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
}

# --- EXPIRE ---------------------------------------------------------------

@test "-e 0 advertises EXPIRE 0 and deletes the RETR'd message at QUIT" {
	transcript -e 0 <<-'EOF'
	S: +OK pop3-handler ready
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN
	S: TOP
	S: EXPIRE 0
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
	S: +OK maildrop has 2 messages (47 octets)
	C: RETR 2
	S: +OK 24 octets
	S: Subject: two
	S:
	S: second
	S: .
	C: TOP 1 0
	S: +OK Top of message 1 follows
	S: Subject: one
	S:
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	grep -q 'Subject: one' "$T/mail/alice"
	! grep -q 'Subject: two' "$T/mail/alice"
}

@test "-e 0: RSET does not undo a retrieval; without QUIT nothing is deleted" {
	pop3_session -e 0 -- "USER alice" "PASS secret" "RETR 1" RSET
	cmp "$T/mail/alice" "$T/alice.orig"
	transcript -e 0 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 2 messages (47 octets)
	C: RETR 1
	S: +OK 23 octets
	S: Subject: one
	S:
	S: first
	S: .
	C: RSET
	S: +OK maildrop has 2 messages (47 octets)
	C: QUIT
	S* *(1 message left)
	EOF
	! grep -q 'Subject: one' "$T/mail/alice"
}

@test "-e 30 advertises EXPIRE 30 and deletes nothing by itself" {
	transcript -e 30 <<-'EOF'
	S: +OK pop3-handler ready
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN
	S: TOP
	S: EXPIRE 30
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
	S: +OK maildrop has 2 messages (47 octets)
	C: RETR 1
	S: +OK 23 octets
	S: Subject: one
	S:
	S: first
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	cmp "$T/mail/alice" "$T/alice.orig"
}

@test "-T drops TOP from CAPA and the command table" {
	transcript -T -e 0 <<-'EOF'
	S: +OK pop3-handler ready
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN
	S: EXPIRE 0
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
	S: +OK maildrop has 2 messages (47 octets)
	C: TOP 1 0
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
}

# --- one session per maildrop ---------------------------------------------

@test "-1: a second session while the first is logged in gets [IN-USE]" {
	transcript -1 <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages*
	! printf 'USER alice\r\nPASS secret\r\nSTAT\r\n' | env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" ${RUNAS[*]} "$HANDLER" -1 -m "$T/mail/%u" -D "$T/state/%u" > "$T/second"; test \$? = 1
	C: STAT
	S* +OK 2 *
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	[ "$status" -eq 0 ]
	[ "$(tr -d '\r' < "$T/second" | sed -n 3p)" = "-ERR [IN-USE] Another session is active" ]
	[ "$(wc -l < "$T/second")" -eq 3 ]
}

@test "-1: the lock of a killed session is gone at once" {
	transcript -1 <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages*
	! kill -9 \$HANDLER_PID
	EOF
	transcript -1 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages*
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	[ "$status" -eq 0 ]
}

@test "-1: sessions one after the other are fine" {
	pop3_session -1 -- "USER alice" "PASS secret" QUIT
	transcript -1 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages*
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
}

@test "-1 and -l need a state directory that is the user's: another owner's is [SYS/TEMP]" {
	[ "$(id -u)" = 0 ] || skip "needs root to give the directory away"
	mkdir -p "$T/state/alice"
	pop3_own
	chown root "$T/state/alice"
	pop3_own() { :; }
	chown -R nobody:nogroup "$T/mail"
	transcript -1 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: -ERR [SYS/TEMP] No state directory
	C: QUIT
	EOF
}
