#!/usr/bin/env bats
# valgrind memcheck over whole sessions (issue 6): no invalid access, no use
# of uninitialized memory, no leak. Skipped when valgrind is missing, and for
# a handler built with ASan (make sanitize), which valgrind cannot run.

load helpers

setup() {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	if grep -qa __asan_init "$HANDLER"; then
		skip "$HANDLER is built with AddressSanitizer"
	fi
	pop3_setup
	# The handler runs as nobody (RUNAS), so valgrind's logs go to a
	# directory anyone may write.
	mkdir -m 1777 "$T/vg"
	cat > "$T/valgrind-handler" <<-EOF
	#!/bin/sh
	exec valgrind -q --tool=memcheck --error-exitcode=99 \\
		--leak-check=full --show-leak-kinds=definite,indirect \\
		--errors-for-leak-kinds=definite,indirect \\
		--log-file="$T/vg/log.%p" "$HANDLER" "\$@"
	EOF
	chmod 755 "$T/valgrind-handler"
	HANDLER="$T/valgrind-handler"
}

teardown() {
	if [ -n "${T:-}" ]; then	# not after a skip in setup
		pop3_teardown
	fi
}

# Every valgrind log must be empty (-q prints only errors).
vg_clean() {
	local f bad=0
	for f in "$T"/vg/log.*; do
		[ -e "$f" ] || { echo "no valgrind log" >&2; return 1; }
		if [ -s "$f" ]; then
			cat "$f" >&2
			bad=1
		fi
	done
	return $bad
}

@test "valgrind: USER, PASS, STAT, LIST, UIDL, RETR, TOP, DELE, QUIT on a generated mailbox: no errors, no leaks" {
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count 20 --seed 1939 --pseudo | mbox alice
	local cmds=("USER alice" "PASS secret" STAT LIST UIDL "LIST 3" "UIDL 4")
	local i
	for i in $(seq 1 20); do cmds+=("RETR $i"); done
	cmds+=("TOP 1 0" "TOP 2 3" "TOP 20 100000" "DELE 1" "DELE 7" "RSET" "DELE 2" "DELE 20" NOOP "RETR 2" QUIT)
	pop3_session "${cmds[@]}"
	vg_clean
	[ "$status" -eq 0 ] || { echo "$output" | tail -n 5; cat "$T/err"; false; }
	[[ "${lines[2]}" == "+OK maildrop has 20 messages"* ]]
	# the one -ERR: RETR of the message deleted just before
	[ "$(grep -c '^-ERR' <<< "$output")" -eq 1 ]
	grep -qx -- '-ERR Message 2 is deleted' <<< "$output"
	[[ "${lines[-1]}" == "+OK pop3-handler signing off"* ]]
	[ "$(grep -c '^From ' "$T/mail/alice")" -ge 19 ]
}

@test "valgrind: failed logins, bad commands, an over-long line and EOF before QUIT: no errors, no leaks" {
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count 3 --seed 7 | mbox alice
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
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
	C: STAT
	S: -ERR Unknown command
	C: $(printf 'X%.0s' $(seq 300))
	S: -ERR Line too long
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 3 messages *
	C: LIST 4294967297
	S: -ERR Invalid message number
	C: TOP 1
	S: -ERR Syntax error
	C: RETR 9
	S: -ERR No such message
	C: DELE 1
	S: +OK Message 1 deleted
	EOF
	vg_clean
	[ "$status" -eq 1 ]
}
