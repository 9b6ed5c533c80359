#!/usr/bin/env bats
# The UPDATE state: what QUIT writes, what every other ending leaves alone, and
# what happens when another program touches the mailbox during the session.
# Expected files come from gen-mbox.py --omit, which writes the same mbox
# without the given messages.

load helpers
load drive

setup() {
	pop3_setup
	GEN="$BATS_TEST_DIRNAME/gen-mbox.py"
}

teardown() {
	pop3_teardown
}

# gen ARGS...: alice's mailbox from the generator, and a copy in $T/alice.orig.
gen() {
	python3 "$GEN" "$@" > "$T/mail/alice"
	chmod 600 "$T/mail/alice"
	cp "$T/mail/alice" "$T/alice.orig"
}

# A message as a delivery agent appends it: From_ line, message, empty line.
new_message() {
	printf 'From zed@example.org Tue Jan  2 00:00:00 2024\nFrom: Zed <zed@example.org>\nTo: alice@example.org\nSubject: arrived during the session\nMessage-ID: <new@example.org>\n\nnew mail\n\n'
}

# --- QUIT ---------------------------------------------------------------------

@test "QUIT with deletions removes exactly those messages and leaves the rest byte-exact" {
	gen --count 12 --seed 11
	python3 "$GEN" --count 12 --seed 11 --omit 2,5,12 > "$T/expected"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 12 messages *
	C: DELE 2
	S: +OK Message 2 deleted
	C: DELE 5
	S: +OK Message 5 deleted
	C: DELE 12
	S: +OK Message 12 deleted
	C: QUIT
	S~ \+OK .*\(9 messages left\)
	EOF
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
}

@test "QUIT deleting the first and the last message of a file without final newline" {
	gen --count 8 --seed 12 --no-final-newline
	python3 "$GEN" --count 8 --seed 12 --no-final-newline --omit 1,8 > "$T/expected"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 8 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	C: DELE 8
	S: +OK Message 8 deleted
	C: QUIT
	S* *(6 messages left)
	EOF
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
}

@test "QUIT deleting a message before one without final newline keeps that one as it was" {
	gen --count 5 --seed 13 --no-final-newline
	python3 "$GEN" --count 5 --seed 13 --no-final-newline --omit 4 > "$T/expected"
	pop3_session "USER alice" "PASS secret" "DELE 4" QUIT
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
}

@test "QUIT deleting every message leaves an empty mailbox" {
	gen --count 3 --seed 14
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 3 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	C: DELE 2
	S: +OK Message 2 deleted
	C: DELE 3
	S: +OK Message 3 deleted
	C: QUIT
	S* *(0 messages left)
	EOF
	[ "$status" -eq 0 ]
	[ ! -s "$T/mail/alice" ]
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 0 messages (0 octets)
	C: STAT
	S: +OK 0 0
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "QUIT deleting every message keeps the pseudo-message" {
	gen --count 3 --seed 15 --pseudo
	python3 "$GEN" --count 3 --seed 15 --pseudo --omit 1,2,3 > "$T/expected"
	pop3_session "USER alice" "PASS secret" "DELE 1" "DELE 2" "DELE 3" QUIT
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
}

@test "QUIT with deletions keeps the mailbox's mode" {
	gen --count 4 --seed 16
	chmod 660 "$T/mail/alice"
	pop3_session "USER alice" "PASS secret" "DELE 2" QUIT
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$T/mail/alice")" = 660 ]
}

@test "the messages left after QUIT are served with the same sizes and UIDLs" {
	gen --count 10 --seed 17
	pop3_session "USER alice" "PASS secret" LIST UIDL QUIT
	before=$(printf '%s\n' "${lines[@]}" | sed -n '/^[0-9]/p' | grep -v '^[1357] ')
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 10 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	C: DELE 3
	S: +OK Message 3 deleted
	C: DELE 5
	S: +OK Message 5 deleted
	C: DELE 7
	S: +OK Message 7 deleted
	C: QUIT
	S* *(6 messages left)
	EOF
	pop3_session "USER alice" "PASS secret" LIST UIDL QUIT
	after=$(printf '%s\n' "${lines[@]}" | sed -n '/^[0-9]/p' | cut -d' ' -f2)
	[ "$after" = "$(cut -d' ' -f2 <<< "$before")" ]
}

@test "RSET then QUIT deletes nothing" {
	gen --count 6 --seed 18
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 6 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	C: DELE 6
	S: +OK Message 6 deleted
	C: RSET
	S* +OK maildrop has 6 messages *
	# the messages are back, not only the counts
	C: LIST 1
	S* +OK 1 *
	C: LIST 6
	S* +OK 6 *
	C: QUIT
	S* *(6 messages left)
	EOF
	[ "$status" -eq 0 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "DELE, RSET, then another DELE: QUIT deletes only the message marked after RSET" {
	gen --count 6 --seed 18
	python3 "$GEN" --count 6 --seed 18 --omit 3 > "$T/expected"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 6 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	C: DELE 6
	S: +OK Message 6 deleted
	C: RSET
	S* +OK maildrop has 6 messages *
	C: DELE 3
	S: +OK Message 3 deleted
	C: QUIT
	S* *(5 messages left)
	EOF
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
}

# --- endings without UPDATE ---------------------------------------------------

@test "EOF after DELE deletes nothing" {
	gen --count 6 --seed 19
	pop3_session "USER alice" "PASS secret" "DELE 1" "DELE 2"
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "the idle timeout after DELE deletes nothing" {
	gen --count 6 --seed 20
	transcript -t 1 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 6 messages *
	C: DELE 1
	S~ \+OK( .*)?
	! sleep 2.5
	S: -ERR Disconnected for inactivity
	C: QUIT
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "the third failed login ends the session without touching the mailbox" {
	gen --count 2 --seed 21
	pop3_session "USER alice" "PASS x" "USER alice" "PASS y" "USER alice" "PASS z"
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

# --- another program during the session -------------------------------------

@test "mail appended under the locks between login and QUIT is kept after QUIT" {
	gen --count 5 --seed 22
	new_message > "$T/new"
	{ python3 "$GEN" --count 5 --seed 22 --omit 1; cat "$T/new"; } > "$T/expected"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 5 messages (*
	C: DELE 1
	S: +OK Message 1 deleted
	! locked_append "$T/mail/alice" < "$T/new"
	C: QUIT
	S~ \+OK .*messages left\)
	EOF
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 5 messages *
	C: STAT
	S* +OK 5 *
	C: RETR 5
	S: +OK 132 octets
	S: From: Zed <zed@example.org>
	S: To: alice@example.org
	S: Subject: arrived during the session
	S: Message-ID: <new@example.org>
	S:
	S: new mail
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (5 messages left)
	EOF
}

@test "a message edited in place (same size) during the session makes QUIT -ERR [SYS/TEMP] and keeps the other program's version" {
	gen --count 6 --seed 24
	# Change one byte in message 3's body; the size stays the same.
	python3 - "$T/alice.orig" "$T/edited" <<-'EOF'
	import re, sys
	d = open(sys.argv[1], "rb").read()
	starts = [m.start() for m in re.finditer(rb"(?:\A|(?<=\n\n))From ", d)]
	body = d.index(b"\n\n", starts[2]) + 2
	i = body + 2
	d = d[:i] + (b"Z" if d[i:i+1] != b"Z" else b"Y") + d[i+1:]
	open(sys.argv[2], "wb").write(d)
	EOF
	[ "$(wc -c < "$T/edited")" -eq "$(wc -c < "$T/alice.orig")" ]
	! cmp -s "$T/edited" "$T/alice.orig" || false
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has * messages *
	C: DELE 1
	S: +OK Message 1 deleted
	! locked_rewrite "$T/mail/alice" < "$T/edited"
	C: QUIT
	S* -ERR \[SYS/TEMP]*
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/edited" "$T/mail/alice"
}

@test "an edit in place that puts the mtime back (as mutt does) is still caught: QUIT goes by the ctime, and deletes nothing" {
	gen --count 6 --seed 25
	python3 - "$T/alice.orig" "$T/edited" <<-'EOF'
	import re, sys
	d = open(sys.argv[1], "rb").read()
	starts = [m.start() for m in re.finditer(rb"(?:\A|(?<=\n\n))From ", d)]
	i = d.index(b"\n\n", starts[4]) + 3
	d = d[:i] + (b"Z" if d[i:i+1] != b"Z" else b"Y") + d[i+1:]
	open(sys.argv[2], "wb").write(d)
	EOF
	[ "$(wc -c < "$T/edited")" -eq "$(wc -c < "$T/alice.orig")" ]
	touch -r "$T/mail/alice" "$T/times"	# the mtime to the nanosecond
	transcript <<-EOF || { cat "$T/err"; false; }
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 6 messages *
	C: DELE 2
	S: +OK Message 2 deleted
	! locked_rewrite "$T/mail/alice" < "$T/edited" && touch -m -r "$T/times" "$T/mail/alice"
	C: QUIT
	S* -ERR \[SYS/TEMP]*
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/edited" "$T/mail/alice"
	# the size and the mtime were as at login: only the ctime told
	[ "$(stat -c %y "$T/mail/alice")" = "$(stat -c %y "$T/times")" ]
}

@test "a mailbox truncated during the session makes QUIT -ERR [SYS/TEMP] and stays truncated" {
	gen --count 6 --seed 25
	head -c $(( $(wc -c < "$T/alice.orig") - 50 )) "$T/alice.orig" > "$T/truncated"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has * messages *
	C: DELE 2
	S: +OK Message 2 deleted
	! locked_rewrite "$T/mail/alice" < "$T/truncated"
	C: QUIT
	S* -ERR \[SYS/TEMP]*
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/truncated" "$T/mail/alice"
}

@test "a mailbox whose deleted message was removed by another program meanwhile: QUIT +OK, that DELE a no-op, the rest as the other left it" {
	gen --count 4 --seed 26
	python3 "$GEN" --count 4 --seed 26 --omit 2 > "$T/other"
	python3 "$GEN" --count 4 --seed 26 --omit 2,3 > "$T/expected"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 4 messages *
	C: DELE 2
	S: +OK Message 2 deleted
	C: DELE 3
	S: +OK Message 3 deleted
	! locked_rewrite "$T/mail/alice" < "$T/other"
	C: QUIT
	S: +OK pop3-handler signing off (2 messages left)
	EOF
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
	grep -q 'rewritten by another session or program: read again, 1 message gone' "$T/err"
}

@test "a mailbox replaced by another file during the session makes QUIT -ERR [SYS/TEMP]" {
	gen --count 4 --seed 27
	python3 "$GEN" --count 4 --seed 28 > "$T/other"
	cp "$T/other" "$T/expected"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has * messages *
	C: DELE 1
	S: +OK Message 1 deleted
	! cp "$T/other" "$T/mail/alice.new" && chmod 600 "$T/mail/alice.new" && mv "$T/mail/alice.new" "$T/mail/alice"
	C: QUIT
	S* -ERR \[SYS/TEMP]*
	EOF
	cmp "$T/expected" "$T/mail/alice"
}

@test "QUIT's durable writes come in order: journal synced, renamed and its directory synced before the mailbox is written, the mailbox synced before the journal is retired" {
	command -v strace >/dev/null || skip "strace is not installed"
	gen --count 12 --seed 33
	python3 "$GEN" --count 12 --seed 33 --omit 2 > "$T/expected"
	printf '%s\r\n' "USER alice" "PASS secret" "DELE 2" QUIT > "$T/in"
	pop3_own
	env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" "${RUNAS[@]}" \
		strace -f -qq -y -o "$T/mail/trace" \
		-e trace=write,pwrite64,pwritev,pwritev2,fsync,fdatasync,ftruncate,rename,renameat,renameat2,unlinkat \
		"$HANDLER" -m "$T/mail/%u" -D "$T/state/%u" < "$T/in" > "$T/out" 2> "$T/err"
	cmp "$T/expected" "$T/mail/alice"
	# Each step at its first (or last) call in the trace of the session.
	python3 - "$T/mail/trace" "$T/mail/alice" "$T/state/alice" <<-'PY'
	import re, sys
	trace, mbox, state = sys.argv[1:]
	steps = {}
	def at(step, i, last=False):
	    if last or step not in steps:
	        steps[step] = i
	calls = [l for l in open(trace) if "<" in l or "rename" in l or "unlink" in l]
	for i, l in enumerate(calls):
	    m = re.match(r"\d+ +(\w+)\((?:\d+<([^>]*)>)?(.*)", l)
	    if not m:
	        continue
	    call, path, rest = m.groups()
	    if call in ("write", "pwrite64", "pwritev", "pwritev2"):
	        if path == state + "/journal.new":
	            at("journal written", i, last=True)
	        elif path == mbox:
	            at("mailbox first written", i)
	            at("mailbox last written", i, last=True)
	    elif call in ("fsync", "fdatasync"):
	        if path == state + "/journal.new":
	            at("journal synced", i, last=True)
	        elif path == state and "journal renamed" in steps:
	            at("directory synced", i)
	        elif path == mbox:
	            at("mailbox synced", i, last=True)
	    elif call == "ftruncate" and path == mbox:
	        at("mailbox last written", i, last=True)
	    elif call.startswith("rename") and '"journal.new"' in rest and '"journal"' in rest:
	        at("journal renamed", i)
	    elif call.startswith("rename") and '"journal"' in rest and '"journal.old"' in rest:
	        at("journal retired", i)
	order = [["journal written", "journal synced", "journal renamed",
	          "directory synced", "mailbox first written"],
	         ["mailbox last written", "mailbox synced", "journal retired"]]
	print("".join(calls[:200]))
	print(steps)
	ok = True
	for chain in order:
	    for a, b in zip(chain, chain[1:]):
	        if a not in steps or b not in steps or steps[a] >= steps[b]:
	            print("not in order: %s (call %s) before %s (call %s)" %
	                  (a, steps.get(a), b, steps.get(b)))
	            ok = False
	sys.exit(0 if ok else 1)
	PY
}

# --- locks ------------------------------------------------------------------

@test "a mailbox dot-locked by another program for 10 s is refused with -ERR [IN-USE]" {
	gen --count 2 --seed 29
	dotlockfile -l -p -r 0 "$T/mail/alice.lock"
	transcript <<-'EOF' || { dotlockfile -u "$T/mail/alice.lock"; false; }
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* -ERR \[IN-USE]*
	# closed: the rest is never answered
	C: STAT
	C: QUIT
	EOF
	dotlockfile -u "$T/mail/alice.lock"
	[ "$status" -eq 1 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

# fcntl_hold SECONDS: another program (no dotlock, as some MUAs and MDAs) holds
# an fcntl lock on alice's mailbox for SECONDS, from when this returns; its
# pid is $HOLDER.
fcntl_hold() {
	python3 -c '
import fcntl, os, sys, time
with open(sys.argv[1], "r+b") as f:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    open(sys.argv[2], "w").close()
    time.sleep(float(sys.argv[3]))
' "$T/mail/alice" "$T/held" "$1" > /dev/null 2>&1 3>&- &
	HOLDER=$!
	local i
	for i in $(seq 50); do
		[ ! -e "$T/held" ] || return 0
		sleep 0.1
	done
	return 1
}

@test "a mailbox fcntl-locked by another program is waited for and read once it is let go" {
	gen --count 3 --seed 31
	pop3_own
	fcntl_hold 2
	t0=$(date +%s%N)
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 3 messages*
	C: STAT
	S* +OK 3 *
	C: QUIT
	S: +OK pop3-handler signing off (3 messages left)
	EOF
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	wait "$HOLDER"
	echo "# logged in after $ms ms" >&3
	[ "$status" -eq 0 ]
	[ "$ms" -ge 1500 ]
	[ "$ms" -lt 9000 ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "a mailbox fcntl-locked by another program for over 10 s is refused with -ERR [IN-USE]" {
	gen --count 3 --seed 32
	pop3_own
	fcntl_hold 14
	t0=$(date +%s%N)
	transcript <<-'EOF' || { kill "$HOLDER"; false; }
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* -ERR \[IN-USE]*
	# closed: the rest is never answered
	C: STAT
	C: QUIT
	EOF
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	kill "$HOLDER"
	wait "$HOLDER" || true
	[ "$status" -eq 1 ]
	# LOCK_TIMEOUT counts whole seconds of time(): over 9 s, up to 10.
	echo "# refused after $ms ms" >&3
	[ "$ms" -ge 8500 ]
	[ ! -e "$T/mail/alice.lock" ]
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "the handler holds no lock between login and QUIT" {
	gen --count 2 --seed 30
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages *
	! dotlockfile -l -p -r 0 "$T/mail/alice.lock" && dotlockfile -u "$T/mail/alice.lock"
	! python3 -c 'import fcntl, sys; f = open(sys.argv[1], "r+b"); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)' "$T/mail/alice"
	C: QUIT
	S* +OK*
	EOF
	[[ "$output" != *"! exit"* ]]
}

# --- the state directory (-D) -------------------------------------------------

@test "the state directory is made mode 700 and holds only the cache between sessions, and the updates noted after an update" {
	gen --count 4 --seed 17
	pop3_session "USER alice" "PASS secret" STAT "RETR 1" QUIT
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$T/state/alice")" = 700 ]
	[ "$(ls -A "$T/state/alice")" = cache ]
	pop3_session "USER alice" "PASS secret" "DELE 1" QUIT
	[ "$status" -eq 0 ]
	[ "$(ls -A "$T/state/alice" | tr '\n' ' ')" = "cache updates " ]
	[ "$(stat -c %a "$T/state/alice/updates")" = 600 ]
}

@test "a state directory others may write is refused: QUIT deletes nothing and says -ERR [SYS/TEMP]" {
	gen --count 4 --seed 18
	mkdir "$T/state/alice"
	pop3_own
	chmod 777 "$T/state/alice"
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 4 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	C: QUIT
	S* -ERR \[SYS/TEMP] *
	EOF
	[ "$status" -eq 1 ]
	grep -q 'refused as state directory' "$T/err"
	cmp "$T/alice.orig" "$T/mail/alice"
}

@test "without a usable state directory, deleting only the last messages still works: one cut needs no journal" {
	gen --count 4 --seed 19
	python3 "$GEN" --count 4 --seed 19 --omit 3,4 > "$T/expected"
	pop3_session -D /nonexistent/%u -- "USER alice" "PASS secret" "DELE 3" "DELE 4" QUIT
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
	transcript -D /nonexistent/%u <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 2 messages *
	C: DELE 1
	S: +OK Message 1 deleted
	C: QUIT
	S* -ERR \[SYS/TEMP] *
	EOF
	[ "$status" -eq 1 ]
	cmp "$T/expected" "$T/mail/alice"
}

# --- other sessions and other lockers -------------------------------------------

@test "a second session's QUIT rewrites the mailbox under the first: STAT, RETR and QUIT follow the file as it is now" {
	gen --count 6 --seed 29
	python3 "$GEN" --count 6 --seed 29 --omit 1,2 > "$T/expected"
	printf '%s\r\n' "USER alice" "PASS secret" "DELE 1" QUIT > "$T/in2"
	pop3_own
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 6 messages *
	! env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" ${RUNAS[*]} "$HANDLER" -m "$T/mail/%u" -D "$T/state/%u" < "$T/in2" > "$T/out2"
	C: STAT
	S* +OK 5 *
	C: RETR 1
	S: -ERR Message 1 was removed by another session
	C: LIST 1
	S: -ERR Message 1 was removed by another session
	C: DELE 1
	S: +OK Message 1 deleted
	C: DELE 2
	S: +OK Message 2 deleted
	C: QUIT
	S: +OK pop3-handler signing off (4 messages left)
	EOF
	grep -q '(5 messages left)' "$T/out2"
	[ "$status" -eq 0 ]
	cmp "$T/expected" "$T/mail/alice"
}

@test "a deliverer that takes the dotlock first and then waits for fcntl (procmail's order) is not deadlocked by a login" {
	gen --count 3 --seed 30
	new_message > "$T/new"
	pop3_own
	# The deliverer: dotlock now, fcntl (blocking) after a second, append,
	# release both. The login comes while it holds only the dotlock.
	dotlockfile -l -p -r 1 -P "$T/mail/alice.lock" python3 -c '
import fcntl, sys, time
time.sleep(1.5)
with open(sys.argv[1], "ab") as f:
    fcntl.lockf(f, fcntl.LOCK_EX)
    f.write(open(sys.argv[2], "rb").read())
' "$T/mail/alice" "$T/new" &
	deliverer=$!
	sleep 0.5
	start=$(date +%s)
	# the delivered message is in
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S* +OK maildrop has 4 messages *
	C: STAT
	S* +OK 4 *
	C: QUIT
	S: +OK pop3-handler signing off (4 messages left)
	EOF
	took=$(( $(date +%s) - start ))
	wait "$deliverer"
	[ "$status" -eq 0 ]
	[ "$took" -lt 8 ]
}
