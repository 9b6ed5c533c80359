#!/usr/bin/env bats
# Faults during QUIT: every system call of the commit path, from the lock
# QUIT takes to the reply, fails once with EIO and once with ENOSPC (strace's
# fault injection, one call at a time). The reply must be -ERR [SYS/TEMP]
# unless the call did not matter (then +OK, with the new mailbox); the mailbox
# is the old one or the new one, or one the journal finishes at the next
# login, never anything else; the next session recovers it or finds it as it
# was, with nothing of the journal left; and a reply that says "nothing
# deleted" keeps its word.

load helpers

COUNT=2000	# about 6 MB from gen-mbox.py: 46 chunks to copy
DELE_A=1
DELE_B=1000

setup_file() {
	BIG="$BATS_FILE_TMPDIR/box"
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count "$COUNT" --seed 64 > "$BIG.orig"
	python3 "$BATS_TEST_DIRNAME/gen-mbox.py" --count "$COUNT" --seed 64 \
		--omit "$DELE_A,$DELE_B" > "$BIG.final"
	export BIG
}

setup() {
	pop3_setup
	command -v strace >/dev/null || skip "strace is not installed"
	# strace -P: only the calls on the mailbox, its dotlock and directory,
	# the state directory and the journal's names, and the client's output.
	# pam_wrapper's own files vary from run to run; these do not, so the
	# Nth such call is the same call in every run.
	P=(-P "$T/mail" -P "$T/mail/alice" -P "$T/mail/alice.lock"
	   -P "$T/state/alice" -P "$T/state/alice/journal.new"
	   -P "$T/state/alice/journal" -P "$T/state/alice/journal.old"
	   -P "$T/out")
}

teardown() {
	pop3_teardown
}

fresh() {
	cp "$BIG.orig" "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	rm -rf "$T/state/alice"
	mkdir -m 700 "$T/state/alice"
	printf '%s\r\n' "USER alice" "PASS secret" "DELE $DELE_A" "DELE $DELE_B" QUIT > "$T/in"
	pop3_own
}

# traced STRACE-ARGS...: the DELE session under strace.
traced() {
	status=0
	env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" "${RUNAS[@]}" \
		strace -f -qq "${P[@]}" "$@" \
		"$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" \
		< "$T/in" > "$T/out" 2> "$T/err" || status=$?
}

# sig: a traced call as it reads whether it failed or not: without the pid
# and the result, liblockfile's temporary name (pid, time) made one, and only
# the arguments the kernel is given (a read's buffer is shown only filled).
sig() {
	sed -E 's/^[0-9]+ +//; s/ += .*//; s/\.lk[^"]*/.lk/
		s/^pread64\(([0-9]+), .*, ([0-9]+), ([0-9]+)\)$/pread64(\1, @, \2, \3)/
		s/(\{|0x[0-9a-f]).*//' | cut -c1-60
}

verdict() {
	if cmp -s "$BIG.orig" "$T/mail/alice"; then
		echo orig
	elif cmp -s "$BIG.final" "$T/mail/alice"; then
		echo final
	else
		echo DAMAGED
	fi
}

@test "EIO and ENOSPC at each system call of QUIT's commit: -ERR [SYS/TEMP], the old or the new mailbox, and the next session recovers" {
	fresh
	traced -o "$T/mail/trace"
	[ "$status" -eq 0 ]
	[ "$(verdict)" = final ]
	# The calls of the commit: from the fcntl lock QUIT takes to the reply
	# (the last write to the client). Each as "NAME N CALL": the Nth call
	# of NAME in the trace, and its text, to check the fault hit it. All of
	# them, but only 8 spread over the reads and over the writes.
	mapfile -t points < <(python3 - "$T/mail/trace" <<-'PY'
	import re, sys
	calls = []
	for l in open(sys.argv[1]).read().splitlines():
	    m = re.match(r"\d+\s+((\w+)\(.*)", l)
	    if m:
	        calls.append((m.group(2), m.group(1)))
	reply = max(i for i, c in enumerate(calls) if c[0] == "write" and c[1].startswith("write(1,"))
	journal = next(i for i, c in enumerate(calls) if '"journal.new"' in c[1] and "O_CREAT" in c[1])
	start = max(i for i in range(journal) if "F_WRLCK" in calls[i][1])
	seen, window = {}, {}
	for i, (sc, text) in enumerate(calls[:reply]):
	    seen[sc] = seen.get(sc, 0) + 1
	    if i >= start:
	        window.setdefault(sc, []).append((seen[sc], text))
	for sc, l in sorted(window.items()):
	    if len(l) > 8:
	        l = [l[(k * (len(l) - 1)) // 7] for k in range(8)]
	    for n, text in l:
	        print("%s %d %s" % (sc, n, text.replace(" ", "\x01")))
	PY
	)
	[ "${#points[@]}" -ge 25 ]

	local err ok=0 ko=0 harmless=()
	for err in EIO ENOSPC; do
		for p in "${points[@]}"; do
			set -- $p
			fresh
			traced -o "$T/mail/fault" -e trace="$1" -e inject="$1:error=$err:when=$2"
			# The fault hit the call it was meant for, and only it.
			[ "$(grep -c 'INJECTED' "$T/mail/fault")" -eq 1 ] || { echo "$err at $1 $2: $(grep -c INJECTED "$T/mail/fault") faults"; false; }
			[ "$(grep 'INJECTED' "$T/mail/fault" | sig)" = "$(echo "$3" | tr '\001' ' ' | sig)" ] || { echo "$err at $1 $2 hit: $(grep INJECTED "$T/mail/fault")"; false; }
			reply=$(tr -d '\r' < "$T/out" | tail -n 1)
			v=$(verdict)
			case $reply in
			"-ERR [SYS/TEMP] "*)
				ko=$((ko + 1))
				[ "$status" -eq 1 ]
				[ "$v" = orig ] || [[ "$reply" == *"finished at the next login"* ]] || { echo "$err at $p: $reply, mailbox $v"; false; } ;;
			"+OK "*)
				ok=$((ok + 1))
				harmless+=("$1")
				# Only where nothing depends on the call: a stat
				# that only forgoes the quick check, the close of a
				# synced file, a writeback hint, the locks' removal,
				# a retried link, a statfs (a shared spool then).
				# Or the writes after the update, of the cache
				# and of the updates noted, which only cost the
				# next session a scan and a second session's remap
				# its certainty, and say so in the log.
				case $1 in
				close|fcntl|link|newfstatat|statfs|sync_file_range|unlink|unlinkat) ;;
				*) grep -q 'state file updates: \|cannot write the cache: ' "$T/err" ||
					{ echo "$err at $p: $reply"; false; } ;;
				esac
				[ "$v" = final ] || { echo "$err at $p: $reply, mailbox $v"; false; } ;;
			*)
				echo "$err at $p: $reply"; cat "$T/err"; false ;;
			esac
			# The next session finds the old or the new mailbox; only a
			# reply that said it would finish the update may leave the new.
			pop3_session "USER alice" "PASS secret" STAT QUIT
			[ "$status" -eq 0 ] || { echo "after $err at $p:"; cat "$T/err"; false; }
			v=$(verdict)
			case $v in
			orig) [[ "${lines[2]}" == "+OK maildrop has $COUNT "* ]] ;;
			final) [[ "${lines[2]}" == "+OK maildrop has $((COUNT - 2)) "* ]] ;;
			*) echo "after $err at $p: mailbox $v"; false ;;
			esac
			if [[ "$reply" == *"nothing deleted"* ]]; then
				[ "$v" = orig ] || { echo "$err at $p: \"$reply\", yet the next session deleted"; false; }
			fi
			[ -z "$(left_over "$T/state/alice")" ] || { echo "after $err at $p:"; ls -la "$T/state/alice"; false; }
		done
	done
	echo "# EIO and ENOSPC at ${#points[@]} calls each: $ko -ERR [SYS/TEMP], $ok +OK (at $(printf '%s\n' "${harmless[@]}" | sort | uniq -c | awk '{printf "%s%s x%s", s, $2, $1; s=", "}')), 0 damaged" >&3
}
