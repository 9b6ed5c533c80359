#!/usr/bin/env bats
# The mbox as POP3 sees it: message boundaries, sizes, the bytes RETR sends,
# unique ids, the pseudo-message, and mailboxes that must be refused.

load helpers
load drive

setup() {
	pop3_setup
	GEN="$BATS_TEST_DIRNAME/gen-mbox.py"
}

teardown() {
	pop3_teardown
}

# retr_all N: one session that LISTs and RETRs messages 1..N of alice's
# maildrop, then checks in $T/out that each RETR starts "+OK S octets" with S
# the LIST size, that dot-stuffing was done, and that the payload after
# un-stuffing is S octets and equal to $T/split/I byte for byte.
retr_all() {
	local n=$1 args=("USER alice" "PASS secret" LIST) i
	for i in $(seq 1 "$n"); do args+=("RETR $i"); done
	pop3_session "${args[@]}" QUIT
	[ "$status" -eq 0 ]
	python3 - "$T/out" "$T/split" "$n" <<-'EOF'
	import os, sys
	raw = open(sys.argv[1], "rb").read()
	split, n = sys.argv[2], int(sys.argv[3])
	pos = 0
	def line():
	    global pos
	    e = raw.index(b"\r\n", pos)
	    l, pos = raw[pos:e], e + 2
	    return l
	def multi():
	    first = line()
	    assert first.startswith(b"+OK"), first
	    body = []
	    while True:
	        l = line()
	        if l == b".":
	            return first, body
	        body.append(l)
	line(); line(); line()
	_, lst = multi()
	sizes = dict((int(a), int(b)) for a, b in (l.split() for l in lst))
	bad = []
	if sorted(sizes) != list(range(1, n + 1)):
	    bad.append("LIST numbers %r" % sorted(sizes))
	for i in range(1, n + 1):
	    first, body = multi()
	    for l in body:
	        if l.startswith(b".") and not l.startswith(b".."):
	            bad.append("%d: line not dot-stuffed: %r" % (i, l[:40]))
	    got = b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in body)
	    exp = open(os.path.join(split, str(i)), "rb").read()
	    if first != b"+OK %d octets" % len(exp):
	        bad.append("%d: %r, expected %d octets" % (i, first, len(exp)))
	    if sizes.get(i) != len(got):
	        bad.append("%d: LIST says %r, RETR sent %d" % (i, sizes.get(i), len(got)))
	    if got != exp:
	        k = next((j for j in range(min(len(got), len(exp))) if got[j] != exp[j]), min(len(got), len(exp)))
	        bad.append("%d: payload differs at %d: %r vs %r" % (i, k, got[k:k+30], exp[k:k+30]))
	for b in bad:
	    print(b)
	sys.exit(1 if bad else 0)
	EOF
}

# uidl_list: the "n uid" lines of one UIDL session, in $uids.
uidl_list() {
	pop3_session "USER alice" "PASS secret" UIDL QUIT
	[ "$status" -eq 0 ]
	uids=$(printf '%s\n' "${lines[@]}" | sed -n '5,/^\.$/p' | sed '$d')
}

# payload FILE: FILE, a payload as gen-mbox.py --split writes it, as the
# transcript lines of RETR's multi-line reply: dot-stuffed, the CR before each
# LF and the final "." as transcript shows them (a NUL as \0).
payload() {
	sed 's/\r$//; s/^\./../; s/\x0/\\0/g; s/^/S: /' "$1"
	echo "S: ."
}

# --- sizes and the bytes on the wire --------------------------------------

@test "LIST size equals RETR octets and the payload matches the mbox, for all 60 generated messages" {
	python3 "$GEN" --count 60 --seed 1 --split "$T/split" > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	run retr_all 60
	[ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "the same holds with a pseudo-message first and no final newline" {
	python3 "$GEN" --count 25 --seed 2 --pseudo --no-final-newline --split "$T/split" > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	run retr_all 25
	[ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "STAT of a generated maildrop is the sum of its messages' sizes" {
	python3 "$GEN" --count 40 --seed 3 --split "$T/split" > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	total=$(cat "$T"/split/* | wc -c)
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 40 messages ($total octets)
	C: STAT
	S: +OK 40 $total
	C: QUIT
	S: +OK pop3-handler signing off (40 messages left)
	EOF
}

@test "a CRLF mailbox: an existing CRLF counts 2 octets and is sent once" {
	printf 'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: crlf\r\n\r\nbody 1\r\nbody 2\r\n\nFrom b@example.org Mon Jan  1 00:00:00 2024\nSubject: lf\n\nbody\n\n' > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	# "Subject: crlf" 13+2, "" 2, "body 1" 6+2, "body 2" 6+2
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 2 messages (54 octets)
	C: LIST
	S: +OK 2 messages (54 octets)
	S: 1 33
	S: 2 21
	S: .
	C: RETR 1
	S: +OK 33 octets
	S: Subject: crlf
	S:
	S: body 1
	S: body 2
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	grep -q $'^+OK 33 octets\r$' "$T/out"
	! grep -q $'\r\r' "$T/out" || false
	python3 -c 'import sys; sys.exit(b"Subject: crlf\r\n\r\nbody 1\r\nbody 2\r\n.\r\n" not in open(sys.argv[1], "rb").read())' "$T/out"
}

@test "lines starting with a dot are dot-stuffed on the wire and counted unstuffed" {
	mbox alice <<'EOF'
From a@example.org Mon Jan  1 00:00:00 2024
Subject: dots

.hidden
..
...
. space
end

EOF
	# 15 + 2 + 9 + 4 + 5 + 9 + 5
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (49 octets)
	C: LIST 1
	S: +OK 1 49
	C: RETR 1
	S: +OK 49 octets
	S: Subject: dots
	S:
	S: ..hidden
	S: ...
	S: ....
	S: .. space
	S: end
	S: .
	C: TOP 1 2
	S: +OK Top of message 1 follows
	S: Subject: dots
	S:
	S: ..hidden
	S: ...
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	# and in a message long enough for RETR's block-wise copy: lines
	# of every length up to 70 between the dots, bare LF and CR LF.
	python3 - > "$T/long" <<-'PY'
	import sys
	body = b"".join(b"." * (1 + i % 3) + b"x" * (i % 71) +
	                (b"\r\n" if i % 4 == 0 else b"\n") + b"y" * (i % 5) + b"\n"
	                for i in range(150))
	sys.stdout.buffer.write(b"From b@example.org Mon Jan  1 00:00:00 2024\n"
	                        b"Subject: many dots\n\n" + body + b"\n")
	PY
	cat "$T/long" >> "$T/mail/alice"
	python3 - "$T/long" > "$T/want" <<-'PY'
	import sys
	lines = open(sys.argv[1], "rb").read().split(b"\n")[1:-2]
	sys.stdout.buffer.write(b"".join(
	    (b"." if l.startswith(b".") else b"") + l.rstrip(b"\r") + b"\r\n"
	    for l in lines))
	PY
	{
		printf '%s\n' "S: +OK pop3-handler ready" "C: USER alice" "S: +OK Send PASS" \
			"C: PASS secret" "S* +OK maildrop has 2 messages *" "C: RETR 2" \
			"S: +OK $(( $(wc -c < "$T/want") - $(grep -c '^\.\.' "$T/want") )) octets"
		sed 's/\r$//; s/^/S: /' "$T/want"
		printf '%s\n' "S: ." "C: QUIT" "S: +OK pop3-handler signing off (2 messages left)"
	} > "$T/script"
	transcript < "$T/script"
	python3 -c 'import sys; o = open(sys.argv[1], "rb").read(); w = open(sys.argv[2], "rb").read(); sys.exit(b"octets\r\n" + w + b".\r\n+OK" not in o)' "$T/out" "$T/want"
}

@test "a line that is only a dot is sent as two dots and does not end the message" {
	mbox alice <<'EOF'
From a@example.org Mon Jan  1 00:00:00 2024
Subject: dot

before
.
after

From b@example.org Mon Jan  1 00:00:00 2024
Subject: last

.

EOF
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 2 messages (54 octets)
	C: LIST
	S: +OK 2 messages (54 octets)
	S: 1 34
	S: 2 20
	S: .
	C: RETR 1
	S: +OK 34 octets
	S: Subject: dot
	S:
	S: before
	S: ..
	S: after
	S: .
	C: RETR 2
	S: +OK 20 octets
	S: Subject: last
	S:
	S: ..
	S: .
	C: STAT
	S: +OK 2 54
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
}

@test "NUL bytes in a message pass through unchanged" {
	printf 'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: nul\n\na\0b\0\0c\n\0\n\n' > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	# 12+2, 2, 6+2, 1+2
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (27 octets)
	C: LIST 1
	S: +OK 1 27
	C: RETR 1
	S: +OK 27 octets
	S: Subject: nul
	S:
	S: a\0b\0\0c
	S: \0
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	printf 'Subject: nul\r\n\r\na\0b\0\0c\r\n\0\r\n.\r\n' > "$T/expected"
	python3 -c 'import sys; raw = open(sys.argv[1], "rb").read(); sys.exit(open(sys.argv[2], "rb").read() not in raw)' "$T/out" "$T/expected"
}

@test "lines over 64 KiB are sent whole and counted exactly" {
	{
		printf 'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: long\n\n'
		head -c 70000 /dev/zero | tr '\0' a; printf '\n'
		head -c 200000 /dev/zero | tr '\0' .; printf '\nshort\n\n'
	} > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	# the 200 000 dots dot-stuffed: 200 001
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (270028 octets)
	C: LIST 1
	S: +OK 1 $((15 + 2 + 70002 + 200002 + 7))
	C: RETR 1
	S: +OK 270028 octets
	S: Subject: long
	S:
	S: $(head -c 70000 /dev/zero | tr '\0' a)
	S: $(head -c 200001 /dev/zero | tr '\0' .)
	S: short
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "a last line without newline is sent with CRLF and counted so" {
	printf 'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: first\n\nbody\n\nFrom b@example.org Mon Jan  1 00:00:00 2024\nSubject: x\n\nlast' > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 2 messages (44 octets)
	C: LIST
	S: +OK 2 messages (44 octets)
	S: 1 24
	S: 2 20
	S: .
	C: RETR 2
	S: +OK 20 octets
	S: Subject: x
	S:
	S: last
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	grep -q $'^last\r$' "$T/out"
}

@test ">From lines are sent as stored" {
	mbox alice <<'EOF'
From a@example.org Mon Jan  1 00:00:00 2024
Subject: quoted

>From the archives
>>From deeper

>From after a blank line

EOF
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (82 octets)
	C: STAT
	S: +OK 1 82
	C: RETR 1
	S: +OK 82 octets
	S: Subject: quoted
	S:
	S: >From the archives
	S: >>From deeper
	S:
	S: >From after a blank line
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "a From line not after an empty line is part of the message" {
	mbox alice <<'EOF'
From a@example.org Mon Jan  1 00:00:00 2024
Subject: one

text
From x is not a new message
more

From b@example.org Mon Jan  1 00:00:00 2024
Subject: two

y

EOF
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 2 messages (76 octets)
	C: STAT
	S: +OK 2 76
	C: RETR 1
	S: +OK 57 octets
	S: Subject: one
	S:
	S: text
	S: From x is not a new message
	S: more
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
}

@test "a message with no body and one with an empty body" {
	mbox alice <<'EOF'
From a@example.org Mon Jan  1 00:00:00 2024
Subject: no body

From b@example.org Mon Jan  1 00:00:00 2024
Subject: empty body


From c@example.org Mon Jan  1 00:00:00 2024
Subject: last

z

EOF
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (61 octets)
	C: LIST
	S: +OK 3 messages (61 octets)
	S: 1 18
	S: 2 23
	S: 3 20
	S: .
	C: RETR 1
	S: +OK 18 octets
	S: Subject: no body
	S: .
	C: RETR 2
	S: +OK 23 octets
	S: Subject: empty body
	S:
	S: .
	C: TOP 1 0
	S* +OK*
	S: Subject: no body
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

@test "an empty message, its From_ line followed at once by the next message or the end, is sent as a lone ." {
	printf 'From a@example.org Mon Jan  1 00:00:00 2024\n\nFrom b@example.org Mon Jan  1 00:00:00 2024\nSubject: b\n\nbody\n\nFrom c@example.org Mon Jan  1 00:00:00 2024\n' | mbox alice
	# The whole transcript: a missing "." would leave a client waiting,
	# and here would run the next reply into the message.
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 3 messages (20 octets)
	C: LIST 1
	S: +OK 1 0
	C: LIST 3
	S: +OK 3 0
	C: RETR 1
	S: +OK 0 octets
	S: .
	C: TOP 1 0
	S: +OK Top of message 1 follows
	S: .
	C: RETR 3
	S: +OK 0 octets
	S: .
	C: TOP 3 5
	S: +OK Top of message 3 follows
	S: .
	C: RETR 2
	S: +OK 20 octets
	S: Subject: b
	S:
	S: body
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
}

# --- the pseudo-message -----------------------------------------------------

pseudo() {
	cat <<'EOF'
From MAILER-DAEMON Mon Jan  1 00:00:00 2024
Date: Mon, 01 Jan 2024 00:00:00 +0000
From: Mail System Internal Data <MAILER-DAEMON@example.org>
Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA
Message-ID: <1704067200@example.org>
X-IMAP: 1704067200 0000000002

This text is part of the internal format of your mail folder, and is not
a real message.  It is created automatically by the mail system software.

EOF
}

@test "the UW-IMAP pseudo-message is hidden from STAT, LIST and UIDL" {
	{ pseudo; python3 "$GEN" --count 3 --seed 4 --split "$T/split"; } > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	total=$(cat "$T"/split/* | wc -c)
	{
		cat <<-EOF
		S: +OK pop3-handler ready
		C: USER alice
		S: +OK Send PASS
		C: PASS secret
		S: +OK maildrop has 3 messages ($total octets)
		C: STAT
		S: +OK 3 $total
		C: LIST
		S: +OK 3 messages ($total octets)
		S: 1 $(wc -c < "$T/split/1")
		S: 2 $(wc -c < "$T/split/2")
		S: 3 $(wc -c < "$T/split/3")
		S: .
		C: UIDL
		S: +OK Unique-ID listing follows
		S~ 1 [!-~]{1,70}
		S~ 2 [!-~]{1,70}
		S~ 3 [!-~]{1,70}
		S: .
		C: RETR 1
		S: +OK $(wc -c < "$T/split/1") octets
		EOF
		payload "$T/split/1"
		printf '%s\n' "C: QUIT" "S: +OK pop3-handler signing off (3 messages left)"
	} > "$T/script"
	transcript < "$T/script"
	! grep -q "DON'T DELETE" "$T/out"
}

@test "the pseudo-message stays first in the file after a QUIT that deletes message 1" {
	{ pseudo; python3 "$GEN" --count 3 --seed 4; } > "$T/mail/alice"
	{ pseudo; python3 "$GEN" --count 3 --seed 4 --omit 1; } > "$T/expected"
	chmod 600 "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 3 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	C: QUIT
	S* *(2 messages left)
	EOF
	cmp "$T/expected" "$T/mail/alice"
}

@test "the pseudo-message with an X-IMAPbase header is hidden too" {
	{ pseudo | sed 's/^X-IMAP:/X-IMAPbase:/'; python3 "$GEN" --count 2 --seed 5; } > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages *
	C: STAT
	S* +OK 2 *
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
}

@test "a pseudo-message that is not first, or has no X-IMAP header, is an ordinary message" {
	{ python3 "$GEN" --count 1 --seed 5; pseudo; } > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages *
	C: STAT
	S* +OK 2 *
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	{ pseudo | grep -v '^X-IMAP:'; python3 "$GEN" --count 1 --seed 5; } > "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages *
	C: STAT
	S* +OK 2 *
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
}

# --- empty, missing and refused mailboxes --------------------------------

@test "an empty (0-byte) mailbox is an empty maildrop" {
	: > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 0 messages (0 octets)
	C: STAT
	S: +OK 0 0
	C: LIST
	S* +OK*
	S: .
	C: UIDL
	S* +OK*
	S: .
	C: RETR 1
	S: -ERR No such message
	C: QUIT
	S* *(0 messages left)
	EOF
	[ "$status" -eq 0 ]
	[ ! -s "$T/mail/alice" ]
}

@test "a missing mailbox is an empty maildrop" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 0 messages (0 octets)
	C: STAT
	S: +OK 0 0
	C: QUIT
	S* *(0 messages left)
	EOF
	[ "$status" -eq 0 ]
}

@test "a symlink mailbox is refused with -ERR [SYS/PERM] and the connection closes" {
	python3 "$GEN" --count 2 --seed 6 > "$T/mail/alice.real"
	chmod 600 "$T/mail/alice.real"
	ln -s alice.real "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* -ERR \[SYS/PERM]*
	# closed: the rest is never answered
	C: STAT
	C: QUIT
	EOF
	[ "$status" -eq 1 ]
}

@test "a mailbox not starting with From_ is refused with -ERR [SYS/PERM]" {
	printf 'Subject: not an mbox\n\nhello\n' > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	cp "$T/mail/alice" "$T/alice.orig"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* -ERR \[SYS/PERM]*
	# closed: the rest is never answered
	C: STAT
	C: QUIT
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "a directory as mailbox is refused with -ERR [SYS/PERM]" {
	mkdir "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* -ERR \[SYS/PERM]*
	# closed: the rest is never answered
	C: STAT
	C: QUIT
	EOF
}

# --- UIDL ---------------------------------------------------------------------

@test "UIDL ids are 1-70 characters of 0x21-0x7E and unique, for 60 generated messages" {
	python3 "$GEN" --count 60 --seed 1 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	uidl_list
	[ "$(wc -l <<< "$uids")" -eq 60 ]
	[ "$(cut -d' ' -f1 <<< "$uids" | tr '\n' ' ')" = "$(seq 1 60 | tr '\n' ' ')" ]
	! grep -vqE '^[0-9]+ [!-~]{1,70}$' <<< "$uids" || false
	[ "$(cut -d' ' -f2 <<< "$uids" | sort -u | wc -l)" -eq 60 ]
}

@test "UIDL is stable across two sessions" {
	python3 "$GEN" --count 20 --seed 7 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	uidl_list
	first=$uids
	uidl_list
	[ "$uids" = "$first" ]
	[ -n "$uids" ]
}

@test "UIDL is unchanged when another program adds or edits Status, X-Status, X-UID, X-Keywords, Content-Length" {
	python3 "$GEN" --count 20 --seed 8 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	uidl_list
	first=$uids
	grep -q '^Status: ' "$T/mail/alice"
	# After each From_ line, insert the headers a MUA or IMAP server writes;
	# change the existing Status: values.
	python3 - "$T/mail/alice" <<-'EOF'
	import re, sys
	p = sys.argv[1]
	d = open(p, "rb").read()
	d = re.sub(rb"^Status: RO$", b"Status: R", d, flags=re.M)
	d = re.sub(rb"^X-Status: A$", b"X-Status: AF", d, flags=re.M)
	n = [0]
	def add(m):
	    n[0] += 1
	    return m.group(0) + (b"Status: O\nX-Status: F\nX-UID: %d\nX-Keywords: $Label1 Junk\n"
	                         b"Content-Length: %d\n" % (n[0], 1000 + n[0]))
	d = re.sub(rb"(?:\A|(?<=\n\n))From [^\n]*\n", add, d)
	assert n[0] == 20
	open(p, "wb").write(d)
	EOF
	uidl_list
	[ "$uids" = "$first" ]
}

@test "UIDL changes when a message's Subject is edited" {
	mbox alice <<'EOF'
From a@example.org Mon Jan  1 00:00:00 2024
Subject: one

body

EOF
	uidl_list
	first=$uids
	sed -i 's/^Subject: one$/Subject: two/' "$T/mail/alice"
	uidl_list
	[ "$uids" != "$first" ]
}

@test "UIDL of the other messages is unchanged after one is deleted" {
	python3 "$GEN" --count 10 --seed 9 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	uidl_list
	expected=$(sed '3d' <<< "$uids" | cut -d' ' -f2)
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 10 messages *
	C: DELE 3
	S: +OK Message 3 deleted
	C: QUIT
	S* *(9 messages left)
	EOF
	uidl_list
	[ "$(cut -d' ' -f2 <<< "$uids")" = "$expected" ]
}

@test "an X-UIDL header gives the UIDL; a bad or duplicate one is not used" {
	mbox alice <<'EOF'
From a@example.org Mon Jan  1 00:00:00 2024
Subject: one
X-UIDL: abc-123_!~

1

From b@example.org Mon Jan  1 00:00:00 2024
Subject: two
X-UIDL: has space

2

From c@example.org Mon Jan  1 00:00:00 2024
Subject: three
X-UIDL: abc-123_!~

3

From d@example.org Mon Jan  1 00:00:00 2024
Subject: four
X-UIDL: 12345678901234567890123456789012345678901234567890123456789012345678901

4

From e@example.org Mon Jan  1 00:00:00 2024
Subject: five
X-UIDL: 1234567890123456789012345678901234567890123456789012345678901234567890

5

EOF
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 5 messages *
	C: UIDL 1
	S: +OK 1 abc-123_!~
	C: UIDL 2
	S~ \+OK 2 [0-9a-f]{32}
	C: UIDL 3
	S~ \+OK 3 [0-9a-f]{32}
	C: UIDL 4
	S~ \+OK 4 [0-9a-f]{32}
	C: UIDL 5
	S: +OK 5 1234567890123456789012345678901234567890123456789012345678901234567890
	C: QUIT
	S: +OK pop3-handler signing off (5 messages left)
	EOF
}

@test "the generator's X-UIDL header is used as UIDL" {
	python3 "$GEN" --count 60 --seed 1 --split "$T/split" > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	n=$(grep -l '^X-UIDL: ' "$T"/split/* | head -n 1 | xargs basename)
	want=$(sed -n 's/^X-UIDL: \(.*\)\r$/\1/p' "$T/split/$n")
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 60 messages *
	C: UIDL $n
	S: +OK $n $want
	C: QUIT
	S: +OK pop3-handler signing off (60 messages left)
	EOF
}

@test "identical messages get UIDL suffixes .2, .3 in file order" {
	msg=$'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: same\n\nsame body\n\n'
	printf '%s%s%s' "$msg" "$msg" "$msg" > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	uidl_list
	[[ "$(sed -n 1p <<< "$uids")" =~ ^1\ [0-9a-f]{32}$ ]]
	id=$(sed -n '1s/^1 //p' <<< "$uids")
	[ "$(sed -n 2p <<< "$uids")" = "2 $id.2" ]
	[ "$(sed -n 3p <<< "$uids")" = "3 $id.3" ]
}

# --- a session that changes nothing ------------------------------------------

@test "a session that deletes nothing leaves the file byte-identical" {
	python3 "$GEN" --count 30 --seed 10 --no-final-newline > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	cp "$T/mail/alice" "$T/alice.orig"
	args=("USER alice" "PASS secret" STAT LIST UIDL)
	for i in $(seq 1 30); do args+=("RETR $i" "TOP $i 1"); done
	pop3_session "${args[@]}" "DELE 1" "DELE 30" RSET QUIT
	[ "$status" -eq 0 ]
	[[ "${lines[-1]}" =~ \(30\ messages\ left\)$ ]]
	cmp "$T/alice.orig" "$T/mail/alice"
}
