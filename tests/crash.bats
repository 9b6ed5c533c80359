#!/usr/bin/env bats
# A crash-safe UPDATE: the handler is killed with SIGKILL at many instants of
# a QUIT that rewrites a 100 MB mailbox, and the next session must find the
# mailbox either as it was or as the QUIT meant to leave it, never anything
# else. strace injects the SIGKILL at the Nth call of the syscalls the update
# makes (pwrite64, fsync, renameat, ftruncate, unlinkat), so every instant is
# exact and the run repeatable (fallocate and sync_file_range are instants
# too). A full disk and a file size limit must make
# QUIT answer -ERR [SYS/TEMP] with the mailbox untouched.

load helpers
load drive

DELE_A=1
DELE_B=18000
COUNT=37000	# about 100 MB from gen-mbox.py

setup_file() {
	BIG="$BATS_FILE_TMPDIR/big"
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count "$COUNT" --seed 61 > "$BIG.orig"
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count "$COUNT" --seed 61 \
		--omit "$DELE_A,$DELE_B" > "$BIG.final"
	export BIG
}

setup() {
	pop3_setup
	command -v strace >/dev/null || skip "strace is not installed"
}

teardown() {
	if [ -n "${T:-}" ] && mountpoint -q "$T/state"; then
		umount "$T/state"
	fi
	pop3_teardown
}

# fresh: alice's mailbox is the original again, and the state directory empty.
fresh() {
	cp "$BIG.orig" "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	rm -rf "$T/state/alice"
	mkdir -m 700 "$T/state/alice"	# there for strace -P
	printf '%s\r\n' "USER alice" "PASS secret" "DELE $DELE_A" "DELE $DELE_B" QUIT > "$T/in"
	pop3_own
}

# traced STRACE-ARGS...: the DELE session under strace, as pop3_run runs it.
traced() {
	status=0
	env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" "${RUNAS[@]}" \
		strace -f -qq "$@" \
		"$HANDLER" -m "$T/mail/%u" -D "$T/state/%u" \
		< "$T/in" > "$T/out" 2> "$T/err" || status=$?
}

# Which state the mailbox is in: "orig", "final", or "DAMAGED".
verdict() {
	if cmp -s "$BIG.orig" "$T/mail/alice"; then
		echo orig
	elif cmp -s "$BIG.final" "$T/mail/alice"; then
		echo final
	else
		echo DAMAGED
	fi
}

@test "the crash test's mailbox is at least 100 MB" {
	[ "$(stat -c %s "$BIG.orig")" -ge 100000000 ]
}

@test "SIGKILL at 50 or more instants of a 100 MB QUIT: the next session finds the old or the new mailbox, never a damaged one" {
	# One clean run, traced, to count the calls where a kill can land.
	# The instants: the calls from the journal's creation (the start of the
	# UPDATE) to the reply to QUIT. Before it the handler only reads the
	# mailbox (and writes its cache); after it come the exit's clean-ups.
	# renameat and unlinkat are counted only in the state directory (-P):
	# pam_wrapper unlinks a varying number of stale files of its own.
	fresh
	traced -o "$T/mail/trace" -e trace=pwrite64,fsync,ftruncate,fallocate,sync_file_range,openat,write
	[ "$status" -eq 0 ]
	[ "$(verdict)" = final ]
	fresh
	traced -o "$T/mail/trace.state" -P "$T/state/alice" -e trace=renameat,unlinkat
	[ "$status" -eq 0 ]
	mapfile -t points < <(python3 - "$T/mail/trace" "$T/mail/trace.state" <<-'PY'
	import re, sys
	lines = open(sys.argv[1]).read().splitlines()
	last = max(i for i, l in enumerate(lines) if " write(1, " in l)
	start = next(i for i, l in enumerate(lines)
	             if "openat(" in l and '"journal.new"' in l and "O_CREAT" in l)
	seen, pwrites, rest = {}, [], []
	for i, l in enumerate(lines[:last]):
	    m = re.match(r"\d+\s+(\w+)\(", l)
	    if not m or m.group(1) in ("openat", "write"):
	        continue
	    sc = m.group(1)
	    seen[sc] = seen.get(sc, 0) + 1
	    if i < start:
	        continue
	    if sc == "pwrite64":
	        pwrites.append(seen[sc])
	    else:
	        rest.append("%s %d" % (sc, seen[sc]))
	# 45 spread over the pwrite64s (journal and mailbox, a MAILBOX_CHUNK each)
	n = len(pwrites)
	picked = sorted({pwrites[(k * n) // 45] for k in range(45)}) if n >= 45 else pwrites
	for w in picked:
	    print("pwrite64 %d" % w)
	for r in rest:
	    print(r)
	# In the state directory: the journal's renames (into place, and out
	# of the way once carried out), and the unlinks between them: not
	# the two at login (a stale journal.new and journal.old), nor the
	# removal of journal.old after the reply.
	seen, calls = {}, []
	for l in open(sys.argv[2]).read().splitlines():
	    m = re.match(r"\d+\s+(\w+)\(", l)
	    if not m:
	        continue
	    sc = m.group(1)
	    seen[sc] = seen.get(sc, 0) + 1
	    calls.append((sc, seen[sc], l))
	last = max(i for i, c in enumerate(calls) if c[0] == "renameat")
	for i, (sc, n, l) in enumerate(calls):
	    if "journal" in l and (sc == "renameat" or
	                           (sc == "unlinkat" and n > 2 and i < last)):
	        print("%s %d -P" % (sc, n))
	PY
	)
	[ "${#points[@]}" -ge 50 ]

	orig=0 final=0
	for p in "${points[@]}"; do
		set -- $p
		fresh
		traced -o /dev/null ${3:+-P "$T/state/alice"} -e trace="$1" -e inject="$1:signal=SIGKILL:when=$2"
		# Killed before it could say goodbye.
		! grep -q 'signing off' "$T/out" || { echo "not killed at $p"; false; }
		pop3_session "USER alice" "PASS secret" STAT QUIT
		[ "$status" -eq 0 ] || { echo "after a kill at $p:"; cat "$T/err"; false; }
		v=$(verdict)
		case $v in
		orig) orig=$((orig + 1)); [[ "${lines[3]}" == "+OK $COUNT "* ]] || { echo "$output"; false; } ;;
		final) final=$((final + 1)); [[ "${lines[3]}" == "+OK $((COUNT - 2)) "* ]] ;;
		*) echo "kill at $p left a damaged mailbox"; false ;;
		esac
		# Nothing of the journal is left behind.
		[ -z "$(left_over "$T/state/alice")" ] || { echo "after $p:"; ls -la "$T/state/alice"; false; }
	done
	echo "# SIGKILL at ${#points[@]} instants: $orig left the old mailbox, $final the new one, 0 damaged" >&3
	[ "$final" -gt 0 ]
	[ "$orig" -gt 0 ]
}

@test "mail delivered after a crash in mid-rewrite is kept when the next login finishes the update" {
	fresh
	traced -o "$T/mail/trace" -e trace=pwrite64
	n=$(grep -c ' pwrite64(' "$T/mail/trace")
	fresh
	# Three writes before the end: the mailbox is half rewritten.
	traced -o /dev/null -e trace=pwrite64 -e inject="pwrite64:signal=SIGKILL:when=$((n - 3))"
	v=$(verdict); [ "$v" = DAMAGED ] || { echo "verdict $v, n=$n"; cat "$T/out" "$T/err"; false; }	# as any crash here leaves it, until the next login
	new_message() {
		printf 'From zed@example.org Tue Jan  2 00:00:00 2024\nSubject: after the crash\nMessage-ID: <late@example.org>\n\nlate mail\n\n'
	}
	new_message > "$T/new"
	locked_append "$T/mail/alice" < "$T/new"
	pop3_session "USER alice" "PASS secret" STAT QUIT
	[ "$status" -eq 0 ]
	[[ "${lines[3]}" == "+OK $((COUNT - 1)) "* ]]
	cat "$BIG.final" "$T/new" | cmp - "$T/mail/alice"
	grep -q 'finished an interrupted update' "$T/err"
}

@test "a full disk during QUIT answers -ERR [SYS/TEMP] and leaves the mailbox as it was" {
	[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count 2000 --seed 62 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	cp "$T/mail/alice" "$T/alice.orig"
	mount -t tmpfs -o size=1m tmpfs "$T/state"
	pop3_session "USER alice" "PASS secret" "DELE 1" QUIT
	[ "$status" -eq 1 ]
	[[ "${lines[-1]}" == "-ERR [SYS/TEMP] "* ]]
	grep -q 'No space left on device' "$T/err"
	cmp "$T/alice.orig" "$T/mail/alice"
	[ -z "$(left_over "$T/state/alice")" ]
}

@test "a file size limit (RLIMIT_FSIZE) during QUIT answers -ERR [SYS/TEMP] and leaves the mailbox as it was" {
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count 2000 --seed 63 > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	cp "$T/mail/alice" "$T/alice.orig"
	printf '%s\r\n' "USER alice" "PASS secret" "DELE 1" QUIT > "$T/in"
	pop3_own
	status=0
	( ulimit -f 1024
	  env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
		"${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" \
		< "$T/in" > "$T/out" 2> "$T/err" ) || status=$?
	[ "$status" -eq 1 ]
	grep -q $'^-ERR \\[SYS/TEMP\\] ' "$T/out"
	cmp "$T/alice.orig" "$T/mail/alice"
}
