#!/usr/bin/env bats
# End to end, as root, the way the handler is deployed: a real system user with
# a real /var/mail spool, the real PAM stack (pam.d/pop3 installed as the
# default service), and the handler started as root with no options, one
# process per connection, by systemd-socket-activate on a loopback port. Real
# clients (curl, poplib, mpop, fetchmail) fetch every message, and each one
# must match what the generator says RETR sends.
#
# Everything made here (users, spool, PAM service, daemon, temp dir) is
# removed in teardown_file, whatever happened. Each test skips unless root.

load helpers
load e2e

COUNT=48	# messages in the spool; the generator spreads its edge cases over them
SEED=1939

# bats 1.8 (Debian 12) cannot skip from setup_file: it sets nothing up, and
# setup skips each test.
setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	e2e_begin || return 1
	e2e_user p3t
	e2e_spool "$COUNT" "$SEED"
	# The shipped PAM file as the default service "pop3", so that the
	# handler runs with no options at all, as the inetd line ships.
	e2e_pam
	# One handler per connection, as root, with no options (or -s only).
	e2e_activate sa "$HANDLER" "${OPTS[@]}"
	e2e_store_script
}

teardown_file() {
	e2e_cleanup
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root: makes system users, a /var/mail spool and an /etc/pam.d service"
}

@test "curl LIST reports every generated message with its exact size" {
	run curl -sS --max-time 60 -u "$U:$(cat "$R/pass")" "pop3://127.0.0.1:$PORT/"
	[ "$status" -eq 0 ]
	local want i
	want="$(for i in $(seq "$COUNT"); do echo "$i $(wc -c < "$R/expect/$i")"; done)"
	[ "$(tr -d '\r' <<< "$output")" = "$want" ]
}

@test "curl RETRs every message byte for byte" {
	local d="$R/curl" args=() i
	mkdir -p "$d"
	for i in $(seq "$COUNT"); do
		args+=("pop3://127.0.0.1:$PORT/$i" -o "$d/$i")
	done
	curl -sS --max-time 120 -u "$U:$(cat "$R/pass")" "${args[@]}"
	run python3 "$E2E" compare exact "$R/expect" "$d"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "poplib: PASS, STAT, LIST, UIDL and RETR of every message agree with the spool" {
	run python3 "$E2E" poplib 127.0.0.1 "$PORT" "$U" "$R/pass" "$R/expect"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "mpop (USER/PASS, no TLS, keep) delivers every message intact to a maildir" {
	local d="$R/mpop"
	mkdir -p "$d/Maildir/new" "$d/Maildir/cur" "$d/Maildir/tmp"
	run mpop --host=127.0.0.1 --port="$PORT" --timeout=60 --tls=off \
		--auth=user --user="$U" --passwordeval="cat $R/pass" \
		--keep=on --only-new=off --received-header=off \
		--uidls-file="$d/uidls" --delivery=maildir,"$d/Maildir" -Q
	echo "$output"
	[ "$status" -eq 0 ]
	# A maildir's file names do not say which message is which: match by content.
	run python3 "$E2E" compare lf "$R/expect" "$d/Maildir/new" --unordered
	echo "$output"
	[ "$status" -eq 0 ]
	# mpop remembered every UID the handler gave.
	[ "$(wc -l < "$d/uidls")" -ge "$COUNT" ]
}

@test "fetchmail (keep, no TLS) delivers every message intact, with no size warning" {
	local d="$R/fetchmail"
	mkdir -p "$d/out" "$d/home"
	chmod 700 "$d/home"
	# fetchmail wants its rcfile owned by the caller (root here) and private.
	cat > "$d/rc" <<-EOF
	set no syslog
	poll 127.0.0.1 service $PORT protocol pop3 auth password timeout 60
	  user "$U" there password "$(cat "$R/pass")" is root here
	  keep fetchall no rewrite sslproto ''
	  mda "sh $R/store.sh $d/out"
	EOF
	chmod 600 "$d/rc"
	# --invisible: no Received header of fetchmail's own.
	run env FETCHMAILHOME="$d/home" fetchmail --invisible --nosyslog -f "$d/rc"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$COUNT messages for $U at 127.0.0.1"* ]]
	# fetchmail compares each RETR with LIST's size and says so when they differ.
	[ -z "$(grep -Ei 'expected length|actual != |mismatch|wrong size' <<< "$output")" ]
	# Apart from the one it prints for running as root, no warning at all.
	[ -z "$(grep -i 'warning' <<< "$output" | grep -v 'Running as root is discouraged')" ]
	run python3 "$E2E" compare fetchmail "$R/expect" "$d/out"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "sessions without DELE leave the spool byte-identical, owned by the user, mode 600" {
	cmp "$R/spool.orig" "/var/mail/$U"
	[ "$(stat -c '%U:%G %a' "/var/mail/$U")" = "$U:mail 600" ]
	[ ! -e "/var/mail/$U.lock" ]
}

@test "after PASS the handler runs as the user: uid, gid and groups all dropped" {
	run python3 "$E2E" whoami 127.0.0.1 "$PORT" "$U" "$R/pass" "$(cat "$R/sa.pid")"
	echo "$output"
	[ "$status" -eq 0 ]
	local uid gid groups
	uid="$(id -u "$U")"
	gid="$(id -g "$U")"
	groups="$(id -G "$U" | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')"
	[[ "${lines[0]}" == "PASS: +OK maildrop has $COUNT messages"* ]]
	[ "$(grep '^Uid:' <<< "$output")" = "Uid: $uid $uid $uid $uid" ]
	[ "$(grep '^Gid:' <<< "$output")" = "Gid: $gid $gid $gid $gid" ]
	local got
	got="$(grep '^Groups:' <<< "$output" | sed 's/^Groups: *//' | tr ' ' '\n' | sed '/^$/d' | sort -n | tr '\n' ' ' | sed 's/ $//')"
	[ "$got" = "$groups" ]
}

@test "an account with uid 0 is refused with the right password, and the refusal is logged" {
	local u0
	u0="$(fresh_name p3r)"
	echo "$u0" > "$R/user0"
	useradd -o -u 0 -g 0 -M -N -d /nonexistent -s /usr/sbin/nologin "$u0"
	local pw0
	pw0="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
	echo "$u0:$pw0" | chpasswd
	[ "$(id -u "$u0")" = 0 ]
	printf 'USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n' "$u0" "$pw0" > "$R/in0"
	# Straight to the handler as root, to see its log (-d) on stderr.
	"$HANDLER" -d -s "$SVC" < "$R/in0" > "$R/out0" 2> "$R/err0" || true
	userdel -f "$u0" 2>/dev/null
	: > "$R/user0"
	cat "$R/err0"
	output="$(tr -d '\r' < "$R/out0")"
	echo "$output"
	IFS=$'\n' read -r -d '' -a lines <<< "$output" || true
	[[ "${lines[0]}" == "+OK "* ]]
	[[ "${lines[1]}" == "+OK"* ]]
	[[ "${lines[2]}" == "-ERR [AUTH] "* ]]
	# Still not logged in: STAT is a command of the wrong state.
	[ "${lines[3]}" = "-ERR Unknown command" ]
	[ ! -e "/var/mail/$u0" ]
	# The log names the account it refused.
	grep -q "$u0" "$R/err0"
}

@test "a held dotlock on the spool keeps the user out with -ERR [IN-USE]" {
	# Taken as the delivery agent would, through liblockfile's dotlockfile.
	dotlockfile -l -r 0 "/var/mail/$U.lock"
	local start=$SECONDS
	run python3 "$E2E" pass 127.0.0.1 "$PORT" "$U" "$R/pass"
	local took=$((SECONDS - start))
	dotlockfile -u "/var/mail/$U.lock"
	echo "$output (after ${took}s)"
	[[ "$output" == "-ERR [IN-USE]"* ]]
	[ "$took" -ge 9 ]
	cmp "$R/spool.orig" "/var/mail/$U"
}

@test "DELE 1, DELE 2, QUIT as the user: spool rewritten without them, same owner, no lock left" {
	run python3 "$E2E" dele 127.0.0.1 "$PORT" "$U" "$R/pass" 1 2
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[2]}" == "+OK "*"($((COUNT - 2)) messages left)" ]]
	[ "$(stat -c '%U:%G %a' "/var/mail/$U")" = "$U:mail 600" ]
	[ ! -e "/var/mail/$U.lock" ]
	[ "$(mbox_count "/var/mail/$U")" -eq $((COUNT - 2)) ]
	# What is left is the old spool from message 3 on, byte for byte.
	python3 - "$R/spool.orig" "/var/mail/$U" <<-'EOF'
	import re, sys
	old = open(sys.argv[1], "rb").read()
	new = open(sys.argv[2], "rb").read()
	starts = [m.start() + 2 for m in re.finditer(rb"\n\nFrom ", old)]
	assert new == old[starts[1]:], "spool after DELE 1 2 is not the old one from message 3 on"
	EOF
	# A new session sees old message 3 as message 1.
	curl -sS --max-time 60 -u "$U:$(cat "$R/pass")" "pop3://127.0.0.1:$PORT/1" -o "$R/after1"
	cmp "$R/expect/3" "$R/after1"
}
