#!/usr/bin/env bats
# Two sessions of one user at once (README "Two clients at once"): a phone
# and a desktop that poll one mailbox, each deleting what it downloaded. The
# second QUIT, or a RETR after the first QUIT, finds the file rewritten; the
# session reads it again, finds its messages by what they are, and goes on.
# tests/twosessions.py drives two real handler processes through each
# interleaving and checks every message sent against the mailbox at login.

load helpers
load drive

setup() {
	pop3_setup
	GEN="$BATS_TEST_DIRNAME/gen-mbox.py"
	python3 "$GEN" --count 40 --seed 1515 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	cp "$T/mail/alice" "$T/alice.orig"
	pop3_own
}

teardown() {
	pop3_teardown
}

# two SCENARIO [APPEND]: runs the scenario (tests/twosessions.py), with the
# sessions' logs in $T/err.
two() {
	run python3 "$BATS_TEST_DIRNAME/twosessions.py" "$1" "$T/alice.orig" "${2:--}" "$T/err" -- \
		env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
		"${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u"
	echo "$output"
}

# left_without LIST: the mailbox is the one at login without those messages.
left_without() {
	python3 "$GEN" --count 40 --seed 1515 --omit "$1" > "$T/expected"
	cmp "$T/expected" "$T/mail/alice"
}

@test "the other session's QUIT before our RETR: 1-10 are gone from UIDL and RETR, 11-20 are sent as they were and deleted" {
	two before-retr
	[ "$status" -eq 0 ]
	[ "$output" = "ok A=20 B=30" ]
	left_without "$(seq -s, 1 20)"
	grep -q 'read again, 10 messages gone, 0 bytes of new mail' "$T/err"
}

@test "the other session's QUIT between our DELEs and our QUIT: both sets are deleted" {
	two before-quit
	[ "$status" -eq 0 ]
	[ "$output" = "ok A=20 B=30" ]
	left_without "$(seq -s, 1 20)"
}

@test "both QUITs at once: the locks order them, the second remaps, both sets are deleted" {
	two same-quit
	[ "$status" -eq 0 ]
	[[ "$output" == "ok A=20 B=30" || "$output" == "ok A=30 B=20" ]]
	left_without "$(seq -s, 1 20)"
}

@test "both sessions delete the same messages: the second QUIT succeeds and deletes nothing twice" {
	two same-messages
	[ "$status" -eq 0 ]
	[ "$output" = "ok A=30 B=30" ]
	left_without "$(seq -s, 1 10)"
}

@test "the issue's table: 1-10 by one session, 11-20 by another half a second later, at once: both +OK, 20 left" {
	two half-second
	[ "$status" -eq 0 ]
	[[ "$output" == "ok A=30 B=20" || "$output" == "ok A=20 B=30" ]]
	left_without "$(seq -s, 1 20)"
}

@test "mail delivered between the other QUIT and ours is kept, and not shown to this session" {
	new='From zed@example.org Tue Jan  2 00:00:00 2024\nFrom: Zed <zed@example.org>\nMessage-ID: <new@example.org>\n\nnew mail\n\n'
	two arrival "printf '$new' | dotlockfile -l -p -r 3 -P '$T/mail/alice.lock' sh -c 'cat >> \"$T/mail/alice\"'"
	[ "$status" -eq 0 ]
	[ "$output" = "ok A=20 B=30" ]
	{ python3 "$GEN" --count 40 --seed 1515 --omit "$(seq -s, 1 20)"; printf "$new"; } > "$T/expected"
	cmp "$T/expected" "$T/mail/alice"
	grep -q 'read again, 10 messages gone, 115 bytes of new mail kept' "$T/err"
}

@test "a message edited in place by another program while a session reads: RETR after it ends the session [SYS/TEMP], nothing deleted" {
	python3 - "$T/alice.orig" "$T/edited" <<-'EOF'
	import re, sys
	d = open(sys.argv[1], "rb").read()
	starts = [m.start() for m in re.finditer(rb"(?:\A|(?<=\n\n))From ", d)]
	i = d.index(b"\n\n", starts[9]) + 2
	d = d[:i] + b"edited " + d[i:]
	open(sys.argv[2], "wb").write(d)
	EOF
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 40 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	! locked_rewrite "$T/mail/alice" < "$T/edited"
	C: RETR 12
	S: -ERR [SYS/TEMP] Maildrop changed by another program; log in again
	EOF
	cmp "$T/edited" "$T/mail/alice"
	grep -q 'cannot be followed' "$T/err"
}

@test "the last message edited in place (its From_ line kept) is caught too, not taken for new mail" {
	python3 - "$T/alice.orig" "$T/edited" <<-'EOF'
	import re, sys
	d = open(sys.argv[1], "rb").read()
	starts = [m.start() for m in re.finditer(rb"(?:\A|(?<=\n\n))From ", d)]
	i = d.index(b"\n\n", starts[39]) + 2
	d = d[:i] + b"edited " + d[i:]
	open(sys.argv[2], "wb").write(d)
	EOF
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 40 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	! locked_rewrite "$T/mail/alice" < "$T/edited"
	C: QUIT
	S: -ERR [SYS/TEMP] Mailbox changed by another program, nothing deleted
	EOF
	cmp "$T/edited" "$T/mail/alice"
	grep -q 'was edited in place' "$T/err"
}

@test "two other sessions' QUITs during one session: two remaps, numbers and ids still those of login" {
	two twice
	[ "$status" -eq 0 ]
	[ "$output" = "ok A=20 B=35 C=30" ]
	left_without "$(seq -s, 1 20)"
	[ "$(grep -c 'read again, 5 messages gone' "$T/err")" -eq 2 ]
}

@test "mail delivered where the other session cut off the last message, with its very From_ line, is new mail, not an edit" {
	python3 - "$T/alice.orig" "$T/new" <<-'EOF'
	import re, sys
	d = open(sys.argv[1], "rb").read()
	starts = [m.start() for m in re.finditer(rb"(?:\A|(?<=\n\n))From ", d)]
	line = d[starts[39]:d.index(b"\n", starts[39]) + 1]
	open(sys.argv[2], "wb").write(line + b"From: Zed <zed@example.org>\nMessage-ID: <same-second@example.org>\n\nnew mail\n\n")
	EOF
	printf '%s\r\n' "USER alice" "PASS secret" "DELE 40" QUIT > "$T/in2"
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 40 messages *
	! env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" ${RUNAS[*]} "$HANDLER" -m "$T/mail/%u" -D "$T/state/%u" < "$T/in2" > "$T/out2"
	! locked_append "$T/mail/alice" < "$T/new"
	C: STAT
	S* +OK 39 *
	C: DELE 1
	S: +OK Message 1 deleted
	C: QUIT
	S: +OK pop3-handler signing off (38 messages left)
	EOF
	{ python3 "$GEN" --count 40 --seed 1515 --omit 1,40; cat "$T/new"; } > "$T/expected"
	cmp "$T/expected" "$T/mail/alice"
}

# feed MAILBOX NEW COMMAND...: what the client of another session of
# alice's sends: the login, the commands, then, after NEW is delivered to
# MAILBOX, QUIT. Exported, for a transcript's ! line (bash -c).
feed() {
	local mbox=$1 new=$2
	shift 2
	printf '%s\r\n' "USER alice" "PASS secret" "$@"
	sleep 0.5
	locked_append "$mbox" < "$new"
	printf 'QUIT\r\n'
}
export -f feed locked_append

# new_like N: $T/new is a message with message N's very From_ line (same
# sender, same second), as procmail writes for mail that comes at once.
new_like() {
	python3 - "$T/alice.orig" "$T/new" "$1" "${2:-same-second}" <<-'EOF'
	import re, sys
	d = open(sys.argv[1], "rb").read()
	starts = [m.start() for m in re.finditer(rb"(?:\A|(?<=\n\n))From ", d)]
	at = starts[int(sys.argv[3]) - 1]
	line = d[at:d.index(b"\n", at) + 1]
	open(sys.argv[2], "wb").write(line + b"From: Zed <zed@example.org>\nMessage-ID: <" + sys.argv[4].encode() + b"@example.org>\n\nnew mail\n\n")
	EOF
}

# other: the command line of another session of alice's, its script on stdin.
other() {
	echo "env LD_PRELOAD=$PAM_WRAPPER_LIB PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$T/pam.d ${RUNAS[*]} $HANDLER -m $T/mail/%u -D $T/state/%u"
}

# kept_through COMMAND...: our session of the 40 messages, with each COMMAND
# run (a transcript's ! line) after its login. Other sessions took message
# 40 meanwhile, and mail came: our session sees 39, deletes message 1, and
# leaves the rest of ours and $T/new.1, the new mail that was kept.
kept_through() {
	local c
	{
		printf '%s\n' "S: +OK pop3-handler ready" "C: USER alice" \
			"S: +OK Send PASS" "C: PASS secret" \
			"S* +OK maildrop has 40 messages *"
		for c; do
			printf '! %s\n' "$c"
		done
		printf '%s\n' "C: STAT" "S* +OK 39 *" "C: DELE 1" \
			"S: +OK Message 1 deleted" "C: QUIT" \
			"S: +OK pop3-handler signing off (38 messages left)"
	} | transcript
	{ python3 "$GEN" --count 40 --seed 1515 --omit 1,40; cat "$T/new.1"; } > "$T/expected"
	cmp "$T/expected" "$T/mail/alice"
	! grep -q 'edited in place' "$T/err" || false
}

@test "mail that came during the other session, moved by its QUIT to where our last message started, with its very From_ line, is new mail" {
	new_like 40
	cp "$T/new" "$T/new.1"
	kept_through "feed $T/mail/alice $T/new 'DELE 40' | $(other) > $T/out2"
	grep -q "^+OK pop3-handler signing off (39 messages left)" "$T/out2"
}

@test "two other sessions' QUITs: the first cut off our last message and mail with its From_ line came there, the second deleted after it: new mail" {
	new_like 40
	cp "$T/new" "$T/new.1"
	new_like 40 later
	cat "$T/new.1" "$T/new" > "$T/both"
	printf '%s\r\n' "USER alice" "PASS secret" "DELE 40" QUIT > "$T/in2"
	printf '%s\r\n' "USER alice" "PASS secret" "DELE 41" QUIT > "$T/in3"
	kept_through "$(other) < $T/in2 > $T/out2" \
		"locked_append $T/mail/alice < $T/both" \
		"$(other) < $T/in3 > $T/out3"
	grep -q '^+OK pop3-handler signing off (40 messages left)' "$T/out3"
	[ "$(wc -l < "$T/state/alice/updates")" -eq 3 ]
}

@test "more QUITs during a session than the 16 noted: what lies past the lowest offset kept is new mail too" {
	local i
	new_like 40
	cp "$T/new" "$T/new.1"
	for i in $(seq 1 17); do
		new_like 40 "later.$i"
		cat "$T/new"
	done > "$T/more"
	printf '%s\r\n' "USER alice" "PASS secret" "DELE 40" QUIT > "$T/in2"
	# 17 sessions after the first, each deleting the last message: the
	# first QUIT, which cut where the new mail starts, is no longer noted.
	cat > "$T/others" <<-EOF
	for i in \$(seq 1 17); do
		printf '%s\r\n' "USER alice" "PASS secret" "DELE \$((58 - i))" QUIT |
		$(other) > "$T/out3" || exit
	done
	EOF
	kept_through "$(other) < $T/in2 > $T/out2" \
		"cat $T/new.1 $T/more | locked_append $T/mail/alice" \
		"bash $T/others"
	grep -q "^+OK pop3-handler signing off (40 messages left)" "$T/out3"
	[ "$(wc -l < "$T/state/alice/updates")" -eq 16 ]
}
