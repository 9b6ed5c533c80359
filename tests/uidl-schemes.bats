#!/usr/bin/env bats
# The unique-id schemes (-i) and the offline lister (-M): each scheme keeps
# the handler's promises (1 to 70 octets of 0x21-0x7E, unique, stable across
# sessions, the cache and deletions of other messages), -M prints exactly
# what a session's UIDL lists, and writes nothing. What the schemes must
# equal, the real popa3d's and Dovecot's listings, is in tests/peers.bats.

load helpers

SCHEMES=(native xuidl popa3d dovecot uw)

setup() {
	pop3_setup
	AWK="$BATS_TEST_DIRNAME/gen-awkward.py"
	GEN="$BATS_TEST_DIRNAME/gen-mbox.py"
	python3 "$AWK" --pseudo > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
}

teardown() {
	pop3_teardown
}

# The "n id" lines of a session's UIDL with options $@, in $T/uidl.
session_uidl() {
	pop3_session "$@" -- "USER alice" "PASS secret" UIDL QUIT
	[ "$status" -eq 0 ]
	tr -d '\r' < "$T/out" | sed -n '/^+OK Unique-ID/,/^\.$/p' | sed '1d;$d' > "$T/uidl"
}

# -M's listing of alice's mailbox with options $@, in $T/listed, run as the
# user the sessions run as.
lister() {
	pop3_own
	"${RUNAS[@]}" "$HANDLER" "$@" -M "$T/mail/alice" > "$T/listed" 2> "$T/listed.err"
}

# Fails unless every id in the "n id" file $1 is 1 to 70 octets of
# 0x21-0x7E, the numbers run 1, 2, ..., and no id comes twice.
ids_valid() {
	python3 - "$1" <<-'PY'
	import re, sys
	lines = open(sys.argv[1], "rb").read().decode("latin-1").splitlines()
	assert lines, "no ids"
	ids = []
	for n, l in enumerate(lines, 1):
	    num, uid = l.split(" ")
	    assert int(num) == n, l
	    assert re.fullmatch(r"[\x21-\x7e]{1,70}", uid), l
	    ids.append(uid)
	assert len(set(ids)) == len(ids), "an id comes twice"
	PY
}

# A UW c-client mailbox: the pseudo-message with X-IMAP (UIDVALIDITY 1767603600,
# last UID 4), X-UID on each message, as c-client's unix driver writes them.
uw_mbox() {
	mbox alice <<-'EOF'
	From MAILER-DAEMON Mon Jan  5 09:00:00 2026
	Date: Mon, 5 Jan 2026 09:00:00 +0000
	From: Mail System Internal Data <MAILER-DAEMON@example.net>
	Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA
	Message-ID: <1767603600@example.net>
	X-IMAP: 1767603600 0000000004 $Forwarded
	Status: RO

	This text is part of the internal format of your mail folder.

	From a@example.org Mon Jan  5 10:00:00 2026
	Subject: one
	Status: RO
	X-Status: A
	X-Keywords: $Forwarded
	X-UID: 1

	one

	From b@example.org Mon Jan  5 10:01:00 2026
	Subject: two
	X-UID: 3

	two

	From c@example.org Mon Jan  5 10:02:00 2026
	Subject: three, X-UID out of order
	X-UID: 2

	three

	From d@example.org Mon Jan  5 10:03:00 2026
	Subject: four, delivered since: no X-UID

	four

	EOF
}

@test "-M prints exactly what a session's UIDL lists, for every scheme" {
	local s f
	uw_mbox
	cp "$T/mail/alice" "$T/uw"
	python3 "$GEN" --count 40 --seed 14 > "$T/gen"
	python3 "$AWK" --pseudo > "$T/awkward"
	python3 "$AWK" --no-final-newline > "$T/awkward-noeol"
	for f in awkward awkward-noeol gen uw; do
		for s in "${SCHEMES[@]}" "dovecot:%v.%u"; do
			cp "$T/$f" "$T/mail/alice"
			chmod 600 "$T/mail/alice"
			session_uidl -i "$s"
			lister -i "$s"
			cmp "$T/uidl" "$T/listed" || { echo "$f, -i $s:"; diff "$T/uidl" "$T/listed"; false; }
			ids_valid "$T/listed"
		done
	done
}

@test "without -i, -M and UIDL list the native ids, and xuidl is the same scheme" {
	session_uidl
	lister
	cmp "$T/uidl" "$T/listed"
	lister -i xuidl
	cmp "$T/uidl" "$T/listed"
	lister -i native
	cmp "$T/uidl" "$T/listed"
	# the X-UIDL value is honoured there, and nowhere else
	grep -q ' qpopper-style-id-11$' "$T/listed"
	lister -i popa3d
	! grep -q 'qpopper' "$T/listed" || false
}

@test "-i popa3d: the pseudo-message is hidden, and a repeated popa3d id gets .2 in file order" {
	lister -i popa3d
	# popa3d lists both messages with no header it hashes as d98c1dd404b2008f
	# (the MD5 of nothing), and the exact copy of message 1 as 883168c843016ca2.
	sed -n '1p;4,6p' "$T/listed" > "$T/dups"
	diff - "$T/dups" <<-'EOF'
	1 883168c843016ca2
	4 d98c1dd404b2008f
	5 d98c1dd404b2008f.2
	6 883168c843016ca2.2
	EOF
	[ "$(wc -l < "$T/listed")" -eq 15 ]
}

@test "every scheme keeps the other ids when a message is deleted" {
	local s
	uw_mbox
	cp "$T/mail/alice" "$T/uw"
	python3 "$AWK" --pseudo > "$T/awkward"
	# (not popa3d on the UW mailbox, whose messages have no header popa3d
	# hashes: one id, told apart by suffixes in file order)
	for f in awkward uw; do
		for s in "${SCHEMES[@]}"; do
			[ "$f:$s" != uw:popa3d ] || continue
			cp "$T/$f" "$T/mail/alice"
			chmod 600 "$T/mail/alice"
			rm -rf "$T/state/alice"
			session_uidl -i "$s"
			# message 2 goes; what stays keeps its id, one number down
			awk 'NR != 2 { sub(/^[0-9]+ /, ""); print }' "$T/uidl" > "$T/want"
			pop3_session -i "$s" -- "USER alice" "PASS secret" "DELE 2" QUIT
			[ "$status" -eq 0 ]
			session_uidl -i "$s"
			sed 's/^[0-9]* //' "$T/uidl" > "$T/got"
			cmp "$T/want" "$T/got" || { echo "$f, -i $s:"; diff "$T/want" "$T/got"; false; }
		done
	done
}

@test "-i popa3d: once the first of two messages with one popa3d id is deleted, the second takes it" {
	lister -i popa3d
	grep -q '^4 d98c1dd404b2008f$' "$T/listed"
	pop3_session -i popa3d -- "USER alice" "PASS secret" "DELE 4" QUIT
	[ "$status" -eq 0 ]
	lister -i popa3d
	grep -q '^4 d98c1dd404b2008f$' "$T/listed"
	! grep -q 'd98c1dd404b2008f\.2' "$T/listed" || false
}

@test "-i uw: %08lx%08lx of UIDVALIDITY and X-UID; an unstamped message gets its native id" {
	uw_mbox
	lister -i native
	cp "$T/listed" "$T/native"
	lister -i uw
	# 1767603600 is 0x695b7d90
	diff - <(head -n 3 "$T/listed") <<-'EOF'
	1 695b7d9000000001
	2 695b7d9000000003
	3 695b7d9000000002
	EOF
	[ "$(sed -n 4p "$T/listed")" = "$(sed -n 4p "$T/native")" ]
	[ "$(wc -l < "$T/listed")" -eq 4 ]
}

@test "-i uw, dovecot: two messages with one X-UID get .2 in file order" {
	uw_mbox
	printf 'From e@example.org Mon Jan  5 10:04:00 2026\nSubject: copied in, X-UID and all\nX-UID: 1\n\ncopy\n\n' >> "$T/mail/alice"
	lister -i uw
	[ "$(sed -n 5p "$T/listed")" = "5 695b7d9000000001.2" ]
	lister -i dovecot
	[ "$(sed -n 5p "$T/listed")" = "5 00000001695b7d90.2" ]
}

@test "-i dovecot: deleting the message that carries X-IMAPbase keeps every id (the UIDVALIDITY is kept in the state directory)" {
	mbox alice <<-'EOF'
	From a@example.org Mon Jan  5 10:00:00 2026
	X-IMAPbase: 1796185312 0000000003
	Subject: one
	X-UID: 1

	one

	From b@example.org Mon Jan  5 10:01:00 2026
	Subject: two
	X-UID: 2

	two

	From c@example.org Mon Jan  5 10:02:00 2026
	Subject: three
	X-UID: 3

	three

	EOF
	session_uidl -i dovecot
	[ "$(cat "$T/state/alice/uidvalidity")" = 1796185312 ]
	sed -n '2,3s/^[0-9]* //p' "$T/uidl" > "$T/want"
	pop3_session -i dovecot -- "USER alice" "PASS secret" "DELE 1" QUIT
	[ "$status" -eq 0 ]
	! grep -q X-IMAPbase "$T/mail/alice" || false
	rm -f "$T/state/alice/cache"
	session_uidl -i dovecot
	sed 's/^[0-9]* //' "$T/uidl" | cmp - "$T/want"
	# -M reads the saved one from the state directory -D names
	lister -i dovecot -D "$T/state/alice"
	cmp "$T/uidl" "$T/listed"
	cp -a "$T/state/alice" "$T/state.before"
	lister -i dovecot -D "$T/state/alice"
	diff -r "$T/state.before" "$T/state/alice"
}

@test "-i dovecot: %08Xu%08Xv as Dovecot 2.3 prints it (lower-case hex), or the format after the colon" {
	uw_mbox
	lister -i dovecot
	[ "$(sed -n 1p "$T/listed")" = "1 00000001695b7d90" ]
	[ "$(sed -n 2p "$T/listed")" = "2 00000003695b7d90" ]
	lister -i 'dovecot:%v.%u'
	[ "$(sed -n 2p "$T/listed")" = "2 1767603600.3" ]
	lister -i 'dovecot:%08Xv%08Xu'
	[ "$(sed -n 2p "$T/listed")" = "2 695b7d9000000003" ]
	lister -i 'dovecot:%%%u'
	[ "$(sed -n 1p "$T/listed")" = "1 %1" ]
}

@test "-i dovecot: X-IMAPbase in the first message gives the UIDVALIDITY, as Dovecot writes it" {
	mbox alice <<-'EOF'
	From a@example.org Mon Jan  5 10:00:00 2026
	X-IMAPbase: 1796185312 0000000002
	Subject: one
	X-UID: 1                                                  

	one

	From b@example.org Mon Jan  5 10:01:00 2026
	Subject: two
	X-UID: 2

	two

	EOF
	lister -i dovecot
	diff - "$T/listed" <<-'EOF'
	1 000000016b0f9ce0
	2 000000026b0f9ce0
	EOF
}

@test "a bad -i, or a format we cannot print as Dovecot would, is a usage error" {
	local a
	for a in bogus dovecot: 'dovecot:%m' 'dovecot:%v' 'dovecot:%8u' 'dovecot:%u %v' \
	    "dovecot:%u$(printf 'x%.0s' $(seq 60))"; do
		run "$HANDLER" -i "$a" -V
		[ "$status" -eq 2 ] || { echo "-i $a: $status"; false; }
	done
}

@test "a cache made by another scheme is not used, and each scheme's own is" {
	session_uidl -i native
	cp "$T/uidl" "$T/native"
	[ -f "$T/state/alice/cache" ]
	session_uidl -i popa3d -d
	! grep -q 'from the cache' "$T/err" || false
	lister -i popa3d
	cmp "$T/uidl" "$T/listed"
	session_uidl -i popa3d
	grep -q '16 messages from the cache, 0 bytes read' "$T/err"
	cmp "$T/uidl" "$T/listed"
	session_uidl -i dovecot
	! grep -q 'from the cache' "$T/err" || false
	# dovecot and uw keep the same table: the cache serves both
	session_uidl -i uw
	grep -q '16 messages from the cache, 0 bytes read' "$T/err"
	session_uidl -i native
	! grep -q 'from the cache' "$T/err" || false
	cmp "$T/uidl" "$T/native"
}

@test "a stamped mailbox with mail appended since keeps its ids through the cache" {
	uw_mbox
	session_uidl -i dovecot
	cp "$T/uidl" "$T/before"
	printf 'From e@example.org Mon Jan  5 10:04:00 2026\nSubject: five\nX-UID: 9\n\nfive\n\n' >> "$T/mail/alice"
	session_uidl -i dovecot
	grep -q '5 messages from the cache, [0-9]* bytes read' "$T/err"
	head -n 4 "$T/uidl" | cmp - "$T/before"
	[ "$(sed -n 5p "$T/uidl")" = "5 00000009695b7d90" ]
	rm -rf "$T/state/alice"
	session_uidl -i dovecot
	[ "$(sed -n 5p "$T/uidl")" = "5 00000009695b7d90" ]
}

@test "-M writes nothing: no cache, no journal, no dotlock, the mailbox untouched" {
	local before
	before="$(stat -c '%s %Y %Z %i' "$T/mail/alice")"
	sum="$(md5sum < "$T/mail/alice")"
	lister -i popa3d
	[ -s "$T/listed" ]
	[ "$(stat -c '%s %Y %Z %i' "$T/mail/alice")" = "$before" ]
	[ "$(md5sum < "$T/mail/alice")" = "$sum" ]
	[ -z "$(ls -A "$T/state")" ]
	[ "$(ls -A "$T/mail")" = alice ]
}

@test "-M on a missing file, or on what is no mbox, fails and says why" {
	rm "$T/mail/alice"
	run "${RUNAS[@]}" "$HANDLER" -M "$T/mail/alice"
	[ "$status" -eq 1 ]
	[[ $output == *"no such file"* ]]
	echo "not a mailbox" > "$T/mail/alice"
	pop3_own
	run "${RUNAS[@]}" "$HANDLER" -M "$T/mail/alice"
	[ "$status" -eq 1 ]
	[[ $output == *"not in mbox format"* ]]
}

@test "-M as root reads the file as its owner, and refuses a file of uid 0" {
	[ "$(id -u)" = 0 ] || skip "needs root: -M drops to the file's owner"
	pop3_own
	"$HANDLER" -i popa3d -M "$T/mail/alice" > "$T/root-listed"
	lister -i popa3d
	cmp "$T/root-listed" "$T/listed"
	# the file as nobody reads it: a mode-000 copy nobody owns cannot be read
	cp "$T/mail/alice" "$T/mail/closed"
	chown nobody:nogroup "$T/mail/closed"
	chmod 000 "$T/mail/closed"
	run "$HANDLER" -M "$T/mail/closed"
	[ "$status" -eq 1 ]
	[[ $output == *"not accessible"* ]]
	cp "$T/mail/alice" "$T/mail/rootfile"
	chown root:root "$T/mail/rootfile"
	run "$HANDLER" -M "$T/mail/rootfile"
	[ "$status" -eq 1 ]
	[ -z "$(grep -v 'uid 0\|root' <<< "$output")" ]
}
