#!/usr/bin/env bats
# Hostile files in the state directory (-D): whatever the user leaves there
# under the names the handler uses (a FIFO, a second link, someone else's
# file, a forged cache of any size), a session neither hangs with the
# mailbox locked nor does work out of proportion to the mailbox.

load helpers
load drive

setup() {
	pop3_setup
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count 12 --seed 12 | mbox alice
	LISTING=("USER alice" "PASS secret" STAT UIDL "RETR 12" QUIT)
	# A first session makes the state directory and the cache.
	pop3_session "${LISTING[@]}"
	[ "$status" -eq 0 ]
	cp "$T/out" "$T/expected"
	S="$T/state/alice"
	[ -f "$S/cache" ]
	# Every session below is cut off after 20 s: the handlers before this
	# one waited for ever.
	printf '#!/bin/sh\nexec timeout 20 "%s" "$@"\n' "$HANDLER" > "$T/bounded"
	chmod 755 "$T/bounded"
}

teardown() {
	pop3_teardown
}

# as_user command...: runs it as the user the handler runs as.
as_user() {
	"${RUNAS[@]}" "$@"
}

# bounded_session line...: a session, within 20 s, that must answer as the
# first one did.
bounded_session() {
	HANDLER="$T/bounded" pop3_session "$@"
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/out"
}

@test "a FIFO as the cache is refused without blocking, and the mailbox is read" {
	rm "$S/cache"
	as_user mkfifo "$S/cache"
	bounded_session "${LISTING[@]}"
	grep -q 'cache not used: not a regular file' "$T/err"
	! grep -q 'from the cache' "$T/err"
}

@test "a FIFO as the journal is set aside without blocking, and the session goes on" {
	as_user mkfifo "$S/journal"
	bounded_session "${LISTING[@]}"
	grep -q 'update journal not used (not a regular file' "$T/err"
	[ ! -e "$S/journal" ]
	ls "$S" | grep -q '^journal\.bad\.'
}

@test "a FIFO as cache.new does not block: it is replaced by the new cache" {
	rm "$S/cache"
	as_user mkfifo "$S/cache.new"
	bounded_session "${LISTING[@]}"
	[ -f "$S/cache" ]
	[ ! -e "$S/cache.new" ]
}

@test "a cache with a second link is not used" {
	as_user ln "$S/cache" "$S/other"
	bounded_session "${LISTING[@]}"
	grep -q 'cache not used: not a regular file of the user.s with one link' "$T/err"
	! grep -q 'from the cache' "$T/err"
}

@test "as root, a cache that is not the user's is not used, though the user can read it" {
	[ "$(id -u)" = 0 ] || skip "only root gives the user's state directory a file of someone else's"
	pop3_own() { :; }	# the state stays as set up, but for the cache
	chown root "$S/cache"
	chmod 644 "$S/cache"
	bounded_session "${LISTING[@]}"
	grep -q 'cache not used: not a regular file of the user.s with one link' "$T/err"
	! grep -q 'from the cache' "$T/err" || false
}

@test "a cache.new with a second link is not written through: the cache is a new file" {
	rm "$S/cache"
	printf 'keep me\n' > "$S/keep"
	pop3_own
	as_user ln "$S/keep" "$S/cache.new"
	bounded_session "${LISTING[@]}"
	[ "$(cat "$S/keep")" = "keep me" ]
	[ "$(stat -c %h "$S/keep")" = 1 ]
	[ -f "$S/cache" ]
}

@test "a sparse cache that claims 2 GiB of table is refused before a byte of it is read" {
	# Its header says 2 GiB of entries and no pool, and the file is that
	# long (a hole): every other field is the good cache's.
	python3 - "$S/cache" <<-'PY'
	import struct, sys
	header, entry = 608, 56
	count = (2 << 30) // entry
	with open(sys.argv[1], "r+b") as f:
	    b = bytearray(f.read(header))
	    struct.pack_into("<QQ", b, 8 + 16 + 16 + 24 + 16 * 16, count, 0)
	    f.seek(0)
	    f.write(b)
	    f.truncate(header + count * entry)
	PY
	[ "$(stat -c %s "$S/cache")" -gt 2000000000 ]
	printf '#!/bin/sh\nexec /usr/bin/time -f %%M -o "%s" timeout 20 "%s" "$@"\n' \
	    "$T/mail/rss" "$HANDLER" > "$T/bounded"
	bounded_session "${LISTING[@]}"
	! grep -q 'from the cache' "$T/err" || false
	# Peak memory in KiB: the handler's usual few MB, not 2 GiB.
	[ "$(tail -n 1 "$T/mail/rss")" -lt 65536 ]
}

@test "opening the maildrop has a deadline: a session stopped during the scan ends, logged, when it runs again" {
	# Two million messages take a second or more to open; the session is
	# stopped during it for longer than the deadline (-t 1: 20 s at least).
	python3 -c 'import sys; sys.stdout.writelines("From \nN: %d\n\n" % i for i in range(2000000))' | mbox alice
	rm -f "$S/cache"
	pop3_drive -t 1 <<-'EOF2'
	C: USER alice
	S: PASS secret\r\n
	! sleep 0.5; kill -STOP $HANDLER_PID; sleep 22; kill -CONT $HANDLER_PID
	R:
	EOF2
	grep -q 'opening the maildrop took more than 20 s: session ended' "$T/err"
	[[ "$output" != *"+OK maildrop has"* ]]
	[ "$status" -eq 1 ]
}
