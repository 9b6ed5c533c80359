#!/usr/bin/env bats
# The message-table cache in the state directory: trusted for an unchanged
# mailbox, extended by a scan of only the mail appended since, and dropped
# for a full scan at any doubt. Whatever the cache holds, a session must
# answer exactly as one that scans the whole file (a state directory of its
# own, with no cache in it).

load helpers
load drive

setup() {
	pop3_setup
	GEN="$BATS_TEST_DIRNAME/gen-mbox.py"
	python3 "$GEN" --count 30 --seed 81 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	LISTING=("USER alice" "PASS secret" STAT LIST UIDL "RETR 1" "RETR 30" QUIT)
}

teardown() {
	pop3_teardown
}

# The replies of a session that uses the cache, and of one that cannot.
with_cache() {
	pop3_session "${LISTING[@]}"
	[ "$status" -eq 0 ]
	cp "$T/out" "$T/cached.out"
	cp "$T/err" "$T/cached.err"
}
without_cache() {
	rm -rf "$T/nocache"
	mkdir "$T/nocache"
	[ "$(id -u)" != 0 ] || chown nobody:nogroup "$T/nocache"
	pop3_session -D "$T/nocache/%u" -- "${LISTING[@]}"
	[ "$status" -eq 0 ]
	grep -q '0 messages from the cache\|read it all\|^' "$T/err"
	cp "$T/out" "$T/scanned.out"
}
same_answers() {
	with_cache
	without_cache
	cmp "$T/cached.out" "$T/scanned.out"
}

@test "the second session on an unchanged mailbox reads no byte of it: the table comes from the cache" {
	pop3_session "${LISTING[@]}"
	[ -f "$T/state/alice/cache" ]
	! grep -q 'from the cache' "$T/err" || false
	same_answers
	grep -q '30 messages from the cache, 0 bytes read' "$T/cached.err"
}

@test "mail appended since is the only part read, and the old messages keep their UIDL" {
	with_cache
	old_uidl=$(sed -n '/^+OK Unique-ID/,/^\.\r$/p' "$T/cached.out" | head -n 31)
	printf 'From zed@example.org Tue Jan  2 00:00:00 2024\nSubject: new\n\nnew mail\n\n' > "$T/new"
	locked_append "$T/mail/alice" < "$T/new"
	LISTING=("USER alice" "PASS secret" STAT LIST UIDL "RETR 31" QUIT)
	same_answers
	grep -q "30 messages from the cache, $(stat -c %s "$T/new") bytes read" "$T/cached.err"
	[ "$(sed -n '/^+OK Unique-ID/,/^\.\r$/p' "$T/cached.out" | head -n 31)" = "$old_uidl" ]
	grep -q $'^+OK 31 ' "$T/cached.out"
	# and the next session has the new message in the cache too
	with_cache
	grep -q '31 messages from the cache, 0 bytes read' "$T/cached.err"
}

@test "a mailbox edited in place (same size, new mtime) is read in full" {
	with_cache
	sed -i '0,/^Subject: /s//Subject: X/' "$T/mail/alice"
	truncate -s -1 "$T/mail/alice"	# same size as before the X
	same_answers
	! grep -q 'from the cache' "$T/cached.err"
}

@test "a mailbox written in place (same inode, same size, new mtime) away from its From_ lines and its end is read in full" {
	with_cache
	ino=$(stat -c %i "$T/mail/alice")
	# Two letters in mid-line, far from any From_ line and before the last
	# 4 KiB (both of which the cache samples), become two line ends: the
	# message grows by two octets on the wire.
	at=$(python3 - "$T/mail/alice" <<-'PY'
	import re, sys
	b = open(sys.argv[1], 'rb').read()
	froms = [m.start() for m in re.finditer(rb'(?m)^From ', b)]
	for m in re.finditer(rb'[a-z]{6}', b[len(b) // 3:]):
	    i = len(b) // 3 + m.start() + 2
	    if i < len(b) - 8192 and min(abs(i - f) for f in froms) > 1000:
	        print(i)
	        break
	PY
	)
	[ -n "$at" ]
	printf '\n\n' | dd of="$T/mail/alice" bs=1 seek="$at" conv=notrunc status=none
	[ "$(stat -c %i "$T/mail/alice")" = "$ino" ]
	! cmp -s "$T/mail/alice" <(python3 "$GEN" --count 30 --seed 81) || false
	same_answers
	! grep -q 'from the cache' "$T/cached.err"
}

@test "a mailbox that grew by an edit in the middle is read in full" {
	with_cache
	python3 - "$T/mail/alice" <<-'PY'
	import sys
	p = sys.argv[1]
	b = open(p, 'rb').read()
	i = b.index(b'\nSubject: ', len(b) // 2)
	open(p, 'r+b').write(b[:i] + b'\nStatus: RO' + b[i:])
	PY
	same_answers
	! grep -q 'from the cache' "$T/cached.err"
}

@test "mail appended without a From_ line after an empty line makes a full read" {
	with_cache
	printf 'not a From_ line\n' >> "$T/mail/alice"
	same_answers
	grep -q 'does not start with a From_ line' "$T/cached.err"
}

@test "a damaged cache is not used: a flipped byte, a truncation, garbage" {
	with_cache
	c="$T/state/alice/cache"
	cp "$c" "$T/cache.good"
	printf '\x01' | dd of="$c" bs=1 seek=300 conv=notrunc status=none
	same_answers
	! grep -q 'from the cache' "$T/cached.err" || false
	head -c 500 "$T/cache.good" > "$c"
	same_answers
	! grep -q 'from the cache' "$T/cached.err" || false
	head -c 100000 /dev/urandom > "$c"
	same_answers
	! grep -q 'from the cache' "$T/cached.err"
}

@test "a cache of another file is not used: the mailbox replaced by a copy" {
	with_cache
	cp "$T/mail/alice" "$T/mail/alice.new"
	mv "$T/mail/alice.new" "$T/mail/alice"
	same_answers
	! grep -q 'from the cache' "$T/cached.err"
}

# dele_then_open GEN-ARGS -- N...: a mailbox of GEN-ARGS, a session that
# deletes messages N..., then the next one, which must answer as a full scan.
dele_then_open() {
	local gen=() dele=() n
	while [ "$1" != -- ]; do gen+=("$1"); shift; done
	shift
	python3 "$GEN" "${gen[@]}" > "$T/mail/alice"
	for n; do dele+=("DELE $n"); done
	pop3_session "USER alice" "PASS secret" "${dele[@]}" QUIT
	[ "$status" -eq 0 ]
	python3 "$GEN" "${gen[@]}" --omit "$(IFS=,; echo "$*")" |
		cmp - "$T/mail/alice"
	LISTING=("USER alice" "PASS secret" STAT LIST UIDL "RETR 1" QUIT)
	same_answers
}

@test "after a QUIT that deletes, the next session takes the new table from the cache and answers as a full scan" {
	dele_then_open --count 30 --seed 81 -- 3
	grep -q '29 messages from the cache, 0 bytes read' "$T/cached.err"
	dele_then_open --count 30 --seed 81 -- 1 2
	grep -q '28 messages from the cache, 0 bytes read' "$T/cached.err"
	dele_then_open --count 30 --seed 81 -- 30
	grep -q '29 messages from the cache, 0 bytes read' "$T/cached.err"
	dele_then_open --count 30 --seed 81 --no-final-newline -- 29
	grep -q '29 messages from the cache, 0 bytes read' "$T/cached.err"
	dele_then_open --count 30 --seed 81 --no-final-newline -- 30
	grep -q '29 messages from the cache, 0 bytes read' "$T/cached.err"
	dele_then_open --count 30 --seed 81 --pseudo -- 1 17 30
	grep -q '28 messages from the cache, 0 bytes read' "$T/cached.err"
	# Mail appended to that cache is read alone, and starts a message.
	printf 'From zed@example.org Tue Jan  2 00:00:00 2024\nSubject: new\n\nnew\n\n' > "$T/new"
	locked_append "$T/mail/alice" < "$T/new"
	LISTING=("USER alice" "PASS secret" STAT LIST UIDL "RETR 28" QUIT)
	same_answers
	grep -q "28 messages from the cache, $(stat -c %s "$T/new") bytes read" "$T/cached.err"
}

@test "after a QUIT that deletes every message, or with mail that came during the session, the next session scans, and answers right" {
	dele_then_open --count 3 --seed 81 -- 1 2 3
	! grep -q 'from the cache' "$T/cached.err" || false
	[ ! -s "$T/mail/alice" ]
	python3 "$GEN" --count 30 --seed 81 > "$T/mail/alice"
	pop3_session "USER alice" "PASS secret" UIDL QUIT
	printf 'From zed@example.org Tue Jan  2 00:00:00 2024\nSubject: new\n\nnew\n\n' > "$T/new"
	# The delivery comes between DELE and QUIT.
	rm -f "$T/in"
	mkfifo "$T/in"
	{
		printf '%s\r\n' "USER alice" "PASS secret" "DELE 3"
		sleep 0.5
		locked_append "$T/mail/alice" < "$T/new"
		printf 'QUIT\r\n'
	} > "$T/in" &
	pop3_run
	wait
	[ "$status" -eq 0 ]
	rm -f "$T/in"
	LISTING=("USER alice" "PASS secret" STAT LIST UIDL "RETR 30" QUIT)
	same_answers
	! grep -q 'from the cache' "$T/cached.err" || false
	grep -q '^+OK maildrop has 30 messages' "$T/cached.out"
}

# A message whose X-UIDL gave way to an earlier one's gets it back when
# that one is deleted, as a scan gives it: the cache of that QUIT is not used.
@test "after a QUIT that deletes the first of two messages with one X-UIDL, the second has it again" {
	{
		printf 'From c@example.org Mon Jan  1 00:00:00 2024\nX-UIDL: twice\nSubject: c\n\nc\n\n'
		printf 'From d@example.org Mon Jan  1 00:00:00 2024\nX-UIDL: twice\nSubject: d\n\nd\n\n'
		printf 'From e@example.org Mon Jan  1 00:00:00 2024\nSubject: e\n\ne\n\n'
	} > "$T/mail/alice"
	pop3_session "USER alice" "PASS secret" "UIDL 1" "UIDL 2" "DELE 1" QUIT
	[ "${lines[3]}" = "+OK 1 twice" ]
	[[ "${lines[4]}" == "+OK 2 "* ]] && [ "${lines[4]}" != "+OK 2 twice" ]
	LISTING=("USER alice" "PASS secret" UIDL QUIT)
	same_answers
	! grep -q 'from the cache' "$T/cached.err" || false
	grep -q '^1 twice' "$T/cached.out"
}

@test "a symlink named cache in the state directory is not followed" {
	with_cache
	rm "$T/state/alice/cache"
	ln -s "$T/passdb" "$T/state/alice/cache"
	same_answers
	! grep -q 'from the cache' "$T/cached.err" || false
	[ -L "$T/state/alice/cache" ] || [ -f "$T/state/alice/cache" ]
	grep -q '^alice:secret' "$T/passdb"
}

# Ten messages whose unique-ids collide every way the numbering handles: five
# copies of one message, X-UIDL values that are that message's hash and one
# of its suffixes, an X-UIDL value given twice, and a copy of a message that
# gave its X-UIDL way. The listing is the one every release so far gave.
dup_mbox() {
	local a='From a@example.org Mon Jan  1 00:00:00 2024\nSubject: same\n\nbody\n\n'
	local h=a02117d1708bed0057ba60dd56000592 d
	d='From d@example.org Mon Jan  1 00:00:00 2024\nX-UIDL: twice\nSubject: d\n\nd\n\n'
	{
		printf "From f@example.org Mon Jan  1 00:00:00 2024\nX-UIDL: $h\nSubject: f\n\nf\n\n"
		printf "$a"
		printf "From b@example.org Mon Jan  1 00:00:00 2024\nX-UIDL: $h.3\nSubject: b\n\nb\n\n"
		printf "$a$a$a"
		printf 'From c@example.org Mon Jan  1 00:00:00 2024\nX-UIDL: twice\nSubject: c\n\nc\n\n'
		printf "$d$d$a"
	} | mbox alice
}
dup_uidls() {
	cat <<-EOF
	1 a02117d1708bed0057ba60dd56000592
	2 a02117d1708bed0057ba60dd56000592.2
	3 a02117d1708bed0057ba60dd56000592.3
	4 a02117d1708bed0057ba60dd56000592.4
	5 a02117d1708bed0057ba60dd56000592.5
	6 a02117d1708bed0057ba60dd56000592.6
	7 twice
	8 82d32b69274c1f5956a4c73660fe3ca6
	9 82d32b69274c1f5956a4c73660fe3ca6.2
	10 a02117d1708bed0057ba60dd56000592.7
	EOF
}

@test "duplicate messages keep the UIDLs they always had, scanned, cached and appended to" {
	dup_mbox
	pop3_session "USER alice" "PASS secret" UIDL QUIT
	[ "$status" -eq 0 ]
	[ "$(sed -n '/^+OK Unique-ID/,/^\.$/p' <<< "$output" | sed '1d;$d')" = "$(dup_uidls)" ]
	pop3_session "USER alice" "PASS secret" UIDL QUIT
	grep -q '10 messages from the cache, 0 bytes read' "$T/err"
	[ "$(sed -n '/^+OK Unique-ID/,/^\.$/p' <<< "$output" | sed '1d;$d')" = "$(dup_uidls)" ]
	printf 'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: same\n\nbody\n\n' |
		locked_append "$T/mail/alice"
	pop3_session "USER alice" "PASS secret" UIDL QUIT
	grep -q '10 messages from the cache, [0-9]* bytes read' "$T/err"
	[ "$(sed -n '/^+OK Unique-ID/,/^\.$/p' <<< "$output" | sed '1d;$d')" = \
	    "$(dup_uidls; echo 11 a02117d1708bed0057ba60dd56000592.8)" ]
}

@test "a million identical messages open in seconds, each with its own suffix" {
	python3 -c 'import sys; sys.stdout.write("From \n\n" * 1000000)' | mbox alice
	# No session may take a minute (the handler before this took hours).
	printf '#!/bin/sh\nexec timeout 60 "%s" "$@"\n' "$HANDLER" > "$T/bounded"
	chmod 755 "$T/bounded"
	HANDLER="$T/bounded" transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1000000 messages (0 octets)
	C: STAT
	S: +OK 1000000 0
	C: UIDL 1
	S~ \+OK 1 [0-9a-f]{32}
	C: UIDL 2
	S~ \+OK 2 [0-9a-f]{32}\.2
	C: UIDL 1000000
	S~ \+OK 1000000 [0-9a-f]{32}\.1000000
	C: QUIT
	S: +OK pop3-handler signing off (1000000 messages left)
	EOF
	[ "$status" -eq 0 ]
	# one id for all, the suffix apart
	[[ "${lines[4]}" =~ ^\+OK\ 1\ ([0-9a-f]{32})$ ]]
	h=${BASH_REMATCH[1]}
	[ "${lines[5]}" = "+OK 2 $h.2" ]
	[ "${lines[6]}" = "+OK 1000000 $h.1000000" ]
}

@test "a cache rewritten in place during a session changes no answer: the table was read, not mapped" {
	for i in $(seq 40); do
		printf 'From u@example.org Mon Jan  1 00:00:00 2024\nX-UIDL: uid-%d\nSubject: %d\n\nbody %d\n\n' "$i" "$i" "$i"
	done >> "$T/mail/alice"
	pop3_session "USER alice" "PASS secret" QUIT
	[ -f "$T/state/alice/cache" ]
	script() {
		printf 'C: USER alice\nC: PASS secret\n%s\nC: UIDL\nC: LIST\nC: RETR 1\nC: RETR 70\nC: UIDL 31\nC: QUIT\n' "$1"
	}
	pop3_drive < <(script '')
	[ "$status" -eq 0 ]
	grep -q '70 messages from the cache, 0 bytes read' "$T/err"
	cp "$T/out" "$T/before"
	# Every byte of the cache, the X-UIDL pool and the offsets too, made 'A'.
	pop3_drive < <(script "! python3 -c 'import os, sys; f = open(sys.argv[1], \"r+b\"); f.write(b\"A\" * os.path.getsize(sys.argv[1]))' $T/state/alice/cache")
	[ "$status" -eq 0 ]
	grep -q '70 messages from the cache, 0 bytes read' "$T/err"
	cmp "$T/before" "$T/out"
	[[ "$output" == *$'\n+OK 31 uid-1\n'* ]]
}
