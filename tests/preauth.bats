#!/usr/bin/env bats
# Before login a client costs a connection slot and, as root, two processes:
# AUTHORIZATION has a fixed deadline (-L), kept by the root parent under
# privilege separation and by the one process without it; -t bounds each
# whole line, not each read; and a client gets a small budget of commands
# before it logs in.

load helpers
load drive

setup() {
	pop3_setup
}

teardown() {
	pop3_teardown
}

# dribble GAP SECONDS TEXT [handler options]: runs the handler as pop3_run
# does, and writes TEXT (with \r, \n escapes) to it one byte every GAP seconds,
# over and over, for at most SECONDS. Prints "exit N after S s", or "still
# running after S s" (the handler is then killed); the replies, CR removed,
# are left in $T/out, the log in $T/err. With STOP_CHILD=1 the pre-auth child
# is stopped (SIGSTOP) half a second in, as a compromised one might hang.
# (The dotlock keeper that waits beside it is not.)
dribble() {
	local gap="$1" secs="$2" text="$3"
	shift 3
	pop3_own
	python3 - "$gap" "$secs" "$text" env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
		"${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" "$@" <<-'PY'
	import os, signal, subprocess, sys, threading, time
	gap, secs = float(sys.argv[1]), float(sys.argv[2])
	text = sys.argv[3].replace("\\r", "\r").replace("\\n", "\n").encode()
	t = os.environ["T"]
	p = subprocess.Popen(sys.argv[4:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
	                     stderr=open(t + "/err", "w"))
	out = bytearray()
	def reader():
	    while True:
	        b = os.read(p.stdout.fileno(), 4096)
	        if not b:
	            return
	        out.extend(b)
	r = threading.Thread(target=reader)
	r.start()
	start = time.monotonic()
	i, stopped = 0, []
	while p.poll() is None and time.monotonic() - start < secs:
	    if os.environ.get("STOP_CHILD") and not stopped and time.monotonic() - start > 0.5:
	        # the handler is env's exec, so its pid is p.pid
	        # (not the dotlock keeper waiting beside it, which is root)
	        with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
	            stopped = [int(c) for c in f.read().split()
	                       if os.stat("/proc/" + c).st_uid != 0]
	        for c in stopped:
	            os.kill(c, signal.SIGSTOP)
	            print("stopped child %d" % c)
	        stopped = stopped or [0]
	    try:
	        p.stdin.write(text[i % len(text):i % len(text) + 1])
	        p.stdin.flush()
	    except BrokenPipeError:
	        break
	    i += 1
	    time.sleep(gap)
	try:
	    status = p.wait(max(0.1, secs - (time.monotonic() - start)))
	    print("exit %d after %.1f s" % (status, time.monotonic() - start))
	except subprocess.TimeoutExpired:
	    print("still running after %.1f s" % (time.monotonic() - start))
	    p.kill()
	    p.wait()
	for c in stopped:	# left behind, still stopped, if the handler did not kill it
	    try:
	        stat = open("/proc/%d/stat" % c).read()
	    except OSError:
	        continue
	    if "(pop3-handler) T " in stat:
	        os.kill(c, signal.SIGKILL)
	r.join(5)
	open(t + "/out", "wb").write(bytes(out).replace(b"\r", b""))
	PY
}

# The whole seconds of "exit N after S s" in $output.
took() {
	sed -n 's/^exit [0-9]* after \([0-9]*\)\..*/\1/p' <<< "$output"
}

@test "without privilege separation, a client that sends a CAPA every second is cut at the -L deadline" {
	run dribble 0.15 20 'CAPA\r\n' -L 3
	echo "$output"; cat "$T/out"; cat "$T/err"
	[[ "$output" == *"exit 1 after "* ]]
	[ "$(took)" -ge 3 ]
	[ "$(took)" -lt 6 ]
	grep -q '^+OK Capability list follows$' "$T/out"
	[ "$(tail -n 1 "$T/out")" = "-ERR No login within 3 seconds" ]
	grep -q 'session ended without QUIT (no login in time)' "$T/err"
}

@test "a line dribbled one byte at a time is cut after -t seconds, though no read waits that long" {
	run dribble 0.5 20 'CAPABILITIES-OF-A-SLOW-CLIENT\r\n' -t 2
	echo "$output"; cat "$T/out"; cat "$T/err"
	[[ "$output" == *"exit 1 after "* ]]
	[ "$(took)" -ge 2 ]
	[ "$(took)" -lt 5 ]
	[ "$(tail -n 1 "$T/out")" = "-ERR Disconnected for inactivity" ]
}

@test "as root, the root parent cuts a client that sends a CAPA every second at the -L deadline" {
	[ "$(id -u)" = 0 ] || skip "privilege separation happens only when started as root"
	RUNAS=()
	run dribble 0.15 20 'CAPA\r\n' -L 3
	echo "$output"; cat "$T/out"; cat "$T/err"
	[[ "$output" == *"exit 1 after "* ]]
	[ "$(took)" -ge 3 ]
	[ "$(took)" -lt 6 ]
	grep -q '^+OK Capability list follows$' "$T/out"
	[ "$(tail -n 1 "$T/out")" = "-ERR No login within 3 seconds" ]
	grep -q 'pre-auth: no login within 3 s, child killed' "$T/err"
}

@test "as root, the deadline holds though the pre-auth child hangs: the parent kills it" {
	[ "$(id -u)" = 0 ] || skip "privilege separation happens only when started as root"
	RUNAS=()
	STOP_CHILD=1 run dribble 0.15 20 'CAPA\r\n' -L 3
	echo "$output"; cat "$T/out"; cat "$T/err"
	child=$(sed -n 's/^stopped child //p' <<< "$output")
	[ -n "$child" ]
	[[ "$output" == *"exit 1 after "* ]]
	[ "$(took)" -ge 3 ]
	[ "$(took)" -lt 6 ]
	[ ! -e "/proc/$child" ]
	[ "$(tail -n 1 "$T/out")" = "-ERR No login within 3 seconds" ]
}

# capa_reply: the transcript lines of CAPA's reply before login.
capa_reply() {
	printf 'S: %s\n' "+OK Capability list follows" USER "SASL PLAIN LOGIN" TOP UIDL \
		RESP-CODES AUTH-RESP-CODE PIPELINING "UTF8 USER" LANG
	printf '%s\n' "S* IMPLEMENTATION *" "S: ."
}

# capa_budget: the transcript of 25 CAPAs before login: 20 answered, the 21st
# refused, and the connection closed.
capa_budget() {
	echo "S: +OK pop3-handler ready"
	for i in $(seq 20); do
		echo "C: CAPA"
		capa_reply
	done
	printf '%s\n' "C: CAPA" "S: -ERR Too many commands before login"
	echo "# closed: the rest is never answered"
	for i in $(seq 4); do echo "C: CAPA"; done
}

@test "the 21st command before login is refused with -ERR and the connection closes" {
	capa_budget > "$T/script"
	transcript < "$T/script"
	[ "$(grep -c '^+OK Capability list follows$' <<< "$output")" -eq 20 ]
	[ "$status" -eq 1 ]
	grep -q 'host=local: 20 commands before login, closing' "$T/err"
}

@test "cancelled SASL exchanges count against the budget before login" {
	{
		echo "S: +OK pop3-handler ready"
		for i in $(seq 20); do
			printf '%s\n' "C: AUTH PLAIN" "S~ \+[ ]" "C: *" "S: -ERR Authentication cancelled"
		done
		printf '%s\n' "C: AUTH PLAIN" "S: -ERR Too many commands before login"
		echo "# closed: the rest is never answered"
		echo "C: *"
		for i in $(seq 4); do printf '%s\n' "C: AUTH PLAIN" "C: *"; done
	} > "$T/script"
	transcript < "$T/script"
	[ "$(grep -c '^-ERR Authentication cancelled$' <<< "$output")" -eq 20 ]
	[ "$status" -eq 1 ]
}

@test "malformed SASL responses and PASS before USER count against the budget too" {
	{
		echo "S: +OK pop3-handler ready"
		for i in $(seq 10); do
			printf '%s\n' "C: AUTH PLAIN !!!!" "S: -ERR Invalid base64 in response" \
				"C: PASS x" "S: -ERR Send USER first"
		done
		printf '%s\n' "C: AUTH PLAIN !!!!" "S: -ERR Too many commands before login"
		echo "# closed: the rest is never answered"
		printf '%s\n' "C: PASS x" "C: AUTH PLAIN !!!!" "C: PASS x"
	} > "$T/script"
	transcript < "$T/script"
	[ "$(grep -c '^-ERR Invalid base64 in response$' <<< "$output")" -eq 10 ]
	[ "$(grep -c '^-ERR Send USER first$' <<< "$output")" -eq 10 ]
	[ "$status" -eq 1 ]
}

@test "as root, the budget holds in the pre-auth child" {
	[ "$(id -u)" = 0 ] || skip "privilege separation happens only when started as root"
	RUNAS=()
	capa_budget > "$T/script"
	transcript < "$T/script"
	[ "$(grep -c '^+OK Capability list follows$' <<< "$output")" -eq 20 ]
	[ "$status" -eq 1 ]
}

@test "a fumbling client fits the budget: CAPA, AUTH, UTF8, LANG, two wrong passwords, then a login" {
	echo 'From a@example.org Mon Jan  1 00:00:00 2024

hello
' | mbox alice
	{
		printf '%s\n' "S: +OK pop3-handler ready" "C: CAPA"
		capa_reply
		cat <<-'EOF'
		C: AUTH
		S: +OK Methods supported
		S: PLAIN
		S: LOGIN
		S: .
		C: UTF8
		S: +OK UTF8 enabled
		C: LANG
		S: +OK Language listing follows
		S: en English
		S: .
		C: USER alice
		S: +OK Send PASS
		C: PASS wrong
		S: -ERR [AUTH] Authentication failed
		C: USER alice
		S: +OK Send PASS
		C: PASS wrong
		S: -ERR [AUTH] Authentication failed
		C: USER alice
		S: +OK Send PASS
		C: PASS secret
		S* +OK maildrop has 1 message*
		C: STAT
		S: +OK 1 9
		EOF
		for i in $(seq 8); do printf '%s\n' "C: NOOP" "S: +OK"; done
		printf '%s\n' "C: QUIT" "S* +OK pop3-handler signing off*"
	} > "$T/script"
	transcript < "$T/script"
	[ "$status" -eq 0 ]
}

@test "-L takes 1 to 3600 seconds" {
	pop3_session -L 1 -- QUIT
	[ "$status" -eq 0 ]
	pop3_session -L 3600 -- QUIT
	[ "$status" -eq 0 ]
	for bad in 0 3601 -1 1x ""; do
		pop3_session -L "$bad" -- QUIT
		[ "$status" -eq 2 ]
	done
}

@test "after a login the budget no longer counts: 30 NOOPs, then QUIT signs off" {
	echo 'From a@example.org Mon Jan  1 00:00:00 2024

hello
' | mbox alice
	{
		printf '%s\n' "S: +OK pop3-handler ready" "C: USER alice" "S: +OK Send PASS" \
			"C: PASS secret" "S: +OK maildrop has 1 message (9 octets)"
		for i in $(seq 30); do printf '%s\n' "C: NOOP" "S: +OK"; done
		printf '%s\n' "C: QUIT" "S* +OK pop3-handler signing off*"
	} > "$T/script"
	transcript < "$T/script"
	[ "$(grep -c '^+OK$' <<< "$output")" -eq 30 ]
	[ "$status" -eq 0 ]
}

@test "without privilege separation, a session that has logged in outlives the -L deadline" {
	echo 'From a@example.org Mon Jan  1 00:00:00 2024

hello
' | mbox alice
	transcript -L 1 <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 1 message (9 octets)
	! sleep 2.5
	C: STAT
	S* +OK 1 *
	C: QUIT
	S* +OK pop3-handler signing off*
	EOF
	[ "$status" -eq 0 ]
}

@test "the -L deadline ends a SASL exchange left waiting, with the login deadline's reply" {
	transcript -L 2 <<-'EOF'
	S: +OK pop3-handler ready
	C: AUTH PLAIN
	S~ \+[ ]
	! sleep 3.5
	S: -ERR No login within 2 seconds
	EOF
	[ "$status" -eq 1 ]
}

@test "a client silent before login is cut at the -L deadline, though -t would wait longer" {
	transcript -L 2 -t 600 <<-'EOF'
	S* +OK pop3-handler ready*
	! sleep 4
	S: -ERR No login within 2 seconds
	EOF
	[ "$status" -eq 1 ]
}
