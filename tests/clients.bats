#!/usr/bin/env bats
# Real clients against the handler as deployed (root, real user, shipped PAM
# file, one process per connection by systemd-socket-activate), beyond the
# ones root.bats runs: mpop with APOP from a secrets file (-a), leave-on-server
# with mpop and fetchmail (keep), fetchmail without keep, getmail6, two
# fetchmail runs at once, and procmail delivering while two clients fetch and
# delete.
#
# Each test starts from the generated spool (e2e_spool_reset). Everything is
# stopped and removed in teardown_file.

load helpers
load e2e

COUNT=45
SEED=8314

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	e2e_begin || return 1
	e2e_user p3c
	e2e_spool "$COUNT" "$SEED"
	e2e_pam
	# An APOP secrets file as the README asks: root's, mode 600.
	od -An -tx1 -N9 /dev/urandom | tr -d ' \n' > "$R/apop.secret"
	printf '# user:secret\n%s:%s\n' "$U" "$(cat "$R/apop.secret")" > "$R/apop"
	chmod 600 "$R/apop" "$R/apop.secret"
	e2e_activate sa "$HANDLER" -d -a "$R/apop" "${OPTS[@]}"
	e2e_store_script
	# One message to deliver while a client leaves mail on the server.
	python3 "$E2E" mkmsgs "$R/new" 1 new > /dev/null
}

teardown_file() {
	e2e_cleanup
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root: makes a system user, a /var/mail spool and an /etc/pam.d service"
	e2e_spool_reset
}

# Delivers the file $1 to the user's spool with procmail run as the user (as
# from ~/.forward), taking procmail's locks: the dotlock through its set-gid
# mail bit and an fcntl lock. -f -: write a From_ line (the file has none).
# LOCKSLEEP=1: retry a held lock every second, not every 8.
deliver() {
	runuser -u "$U" -- procmail -f - LOCKSLEEP=1 DEFAULT="/var/mail/$U" < "$1"
}

# mpop_run DIR [options]: mpop as root for the test user into DIR/Maildir,
# keeping mail on the server and remembering UIDs in DIR/uidls.
mpop_run() {
	local d=$1
	shift
	mkdir -p "$d/Maildir/new" "$d/Maildir/cur" "$d/Maildir/tmp"
	run mpop --host=127.0.0.1 --port="$PORT" --timeout=60 --tls=off \
		--user="$U" --keep=on --received-header=off \
		--uidls-file="$d/uidls" --delivery=maildir,"$d/Maildir" -Q "$@"
	echo "$output"
}

# fetchmail_run DIR SERVER-OPTS USER-OPTS: fetchmail as root for the test
# user, each message through store.sh into DIR/out/N, UIDs in
# DIR/home/.fetchids. "uidl" "keep" leaves mail on the server and fetches
# only what it has not seen; "" "fetchall" fetches everything, then deletes.
fetchmail_run() {
	local d=$1
	mkdir -p "$d/out" "$d/home"
	chmod 700 "$d/home"
	cat > "$d/rc" <<-EOF
	set no syslog
	poll 127.0.0.1 service $PORT protocol pop3 auth password timeout 60 $2
	  user "$U" there password "$(cat "$R/pass")" is root here
	  $3 no rewrite sslproto ''
	  mda "sh $R/store.sh $d/out"
	EOF
	chmod 600 "$d/rc"
	run env FETCHMAILHOME="$d/home" fetchmail --invisible --nosyslog -f "$d/rc"
	echo "$output"
}

# Neither a size warning nor any warning but the one for running as root.
fetchmail_quiet() {
	[ -z "$(grep -Ei 'expected length|actual != |mismatch|wrong size' <<< "$output")" ]
	[ -z "$(grep -i 'warning' <<< "$output" | grep -v 'Running as root is discouraged')" ]
}

@test "mpop --auth=apop against the -a secrets file fetches every message intact" {
	local d="$R/mpop-apop"
	mpop_run "$d" --auth=apop --passwordeval="cat $R/apop.secret" --only-new=off
	[ "$status" -eq 0 ]
	run python3 "$E2E" compare lf "$R/expect" "$d/Maildir/new" --unordered
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q "login: user=$U host=127.0.0.1 method=APOP messages=$COUNT" "$R/sa.log"
	cmp "$R/spool.orig" "/var/mail/$U"
}

@test "mpop leave-on-server: a second keep run fetches nothing, after one delivery exactly that one" {
	local d="$R/mpop-keep"
	mpop_run "$d" --auth=user --passwordeval="cat $R/pass"
	[ "$status" -eq 0 ]
	[ "$(ls "$d/Maildir/new" | wc -l)" -eq "$COUNT" ]
	run python3 "$E2E" compare lf "$R/expect" "$d/Maildir/new" --unordered
	[ "$status" -eq 0 ]

	mpop_run "$d" --auth=user --passwordeval="cat $R/pass"
	[ "$status" -eq 0 ]
	[[ "$output" == *"new: no messages"* ]]
	[ "$(ls "$d/Maildir/new" | wc -l)" -eq "$COUNT" ]

	ls "$d/Maildir/new" > "$R/before"
	deliver "$R/new/1"
	[ "$(mbox_count "/var/mail/$U")" -eq $((COUNT + 1)) ]
	mpop_run "$d" --auth=user --passwordeval="cat $R/pass"
	[ "$status" -eq 0 ]
	[[ "$output" == *"new: 1 message"* ]]
	local got
	got="$(ls "$d/Maildir/new" | grep -vxF -f "$R/before")"
	[ "$(wc -l <<< "$got")" -eq 1 ]
	cmp "$R/new/1" "$d/Maildir/new/$got"
}

@test "fetchmail leave-on-server (keep, uidl): a second run fetches nothing, after one delivery exactly that one" {
	local d="$R/fetchmail-keep"
	fetchmail_run "$d" uidl keep
	[ "$status" -eq 0 ]
	[[ "$output" == *"$COUNT messages for $U at 127.0.0.1"* ]]
	fetchmail_quiet
	run python3 "$E2E" compare fetchmail "$R/expect" "$d/out"
	echo "$output"
	[ "$status" -eq 0 ]

	fetchmail_run "$d" uidl keep
	# 1: no mail.
	[ "$status" -eq 1 ]
	[ "$(cat "$d/out/n")" -eq "$COUNT" ]

	deliver "$R/new/1"
	fetchmail_run "$d" uidl keep
	[ "$status" -eq 0 ]
	fetchmail_quiet
	[[ "$output" == *"$((COUNT + 1)) messages ($COUNT seen) for $U at 127.0.0.1"* ]]
	[ "$(cat "$d/out/n")" -eq $((COUNT + 1)) ]
	cmp "$R/new/1" "$d/out/$((COUNT + 1))"
	[ "$(mbox_count "/var/mail/$U")" -eq $((COUNT + 1)) ]
}

@test "fetchmail without keep fetches every message intact, with no size warning, and empties the spool" {
	local d="$R/fetchmail-flush"
	fetchmail_run "$d" "" fetchall
	[ "$status" -eq 0 ]
	[[ "$output" == *"$COUNT messages for $U at 127.0.0.1"* ]]
	[ "$(grep -c 'flushed' <<< "$output")" -eq "$COUNT" ]
	fetchmail_quiet
	run python3 "$E2E" compare fetchmail "$R/expect" "$d/out"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(mbox_count "/var/mail/$U")" -eq 0 ]
	[ "$(stat -c '%U:%G %a' "/var/mail/$U")" = "$U:mail 600" ]
	[ ! -e "/var/mail/$U.lock" ]
}

@test "getmail6 (SimplePOP3Retriever, read_all, no delete) fetches every message intact" {
	# getmail refuses to deliver as root: it runs as the test user.
	local d="$R/getmail"
	mkdir -p "$d/Maildir/new" "$d/Maildir/cur" "$d/Maildir/tmp" "$d/gm"
	cat > "$d/gm/getmailrc" <<-EOF
	[retriever]
	type = SimplePOP3Retriever
	server = 127.0.0.1
	port = $PORT
	username = $U
	password = $(cat "$R/pass")

	[destination]
	type = Maildir
	path = $d/Maildir/

	[options]
	read_all = true
	delete = false
	delivered_to = false
	received = false
	message_log_syslog = false
	verbose = 1
	EOF
	chmod 600 "$d/gm/getmailrc"
	chown -R "$U" "$d"
	run timeout 120 runuser -u "$U" -- getmail --getmaildir "$d/gm" --rcfile getmailrc
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$COUNT messages ("*" bytes) retrieved, 0 skipped"* ]]
	run python3 "$E2E" compare getmail "$R/expect" "$d/Maildir/new" --unordered
	echo "$output"
	[ "$status" -eq 0 ]
	cmp "$R/spool.orig" "/var/mail/$U"
}

@test "procmail delivers 1,000 messages while two clients run 50+ deleting sessions at once: 0 lost, 0 duplicated, no session refused" {
	local d="$R/conc" w
	: > "/var/mail/$U"
	python3 "$E2E" mkmsgs "$d/src" 1000 "conc$$" > /dev/null
	# Two clients, a phone and a desktop, each taking its share of the
	# mail (by unique-id) in sessions of RETR, check, DELE, QUIT, until
	# the deliveries are over and each has run at least 25.
	for w in 0 1; do
		python3 "$E2E" drain 127.0.0.1 "$PORT" "$U" "$R/pass" "$d/src" \
			"$d/out.$w" "$d/stop" 25 "$w" 2 > "$d/drain.$w" 2>&1 3>&- &
		echo $! > "$d/pid.drain.$w"
	done
	# The deliveries, one after another through procmail with its own
	# locks (deliver), as an MTA hands one user's mail to it. (Parallel
	# procmails mostly wait for each other: a busy dotlock costs one a
	# LOCKSLEEP second.)
	( for f in $(seq -f "$d/src/%g" 1 1000); do
		deliver "$f" || echo "procmail failed: $f"
	  done ) > "$d/deliver" 2>&1 3>&- &
	local rc=0 t0=$SECONDS
	wait $! || rc=1
	echo "1000 deliveries in $((SECONDS - t0)) s"
	touch "$d/stop"
	for w in 0 1; do
		wait "$(cat "$d/pid.drain.$w")" || rc=1
	done
	cat "$d"/deliver "$d"/drain.[01]
	grep -E 'died with code [^0]|UPDATE|failed|changed by another|cannot read it again|replaced by another' "$R/sa.log" | tail -n 20 || true
	[ "$rc" -eq 0 ]
	[ ! -s "$d/deliver" ]
	run python3 "$E2E" concurrent-check "$d/src" "/var/mail/$U" "$d"/out.*
	echo "$output"
	[ "$status" -eq 0 ]
	# At least 50 sessions, every one answered +OK at login and at QUIT,
	# and none cut off before it.
	local sessions committed
	sessions="$(sed -n 's/^sessions=\([0-9]*\) .*/\1/p' "$d"/drain.[01] | awk '{ s += $1 } END { print s }')"
	committed="$(sed -n 's/.* committed=\([0-9]*\) .*/\1/p' "$d"/drain.[01] | awk '{ s += $1 } END { print s }')"
	echo "sessions $sessions, committed $committed"
	[ "$sessions" -ge 50 ]
	[ "$committed" -eq "$sessions" ]
	! grep -E 'refused=[1-9]|aborted=[1-9]|quit-failed=[1-9]' "$d"/drain.[01]
	grep -q 'rewritten by another session or program: read again' "$R/sa.log"
	[ "$(stat -c '%U:%G %a' "/var/mail/$U")" = "$U:mail 600" ]
	[ ! -e "/var/mail/$U.lock" ]
}

@test "two fetchmail runs at once, neither keeping mail: both succeed, every message fetched, the spool emptied" {
	local a="$R/fetchmail-a" b="$R/fetchmail-b"
	fetchmail_run "$a" "" fetchall > "$R/fm-a.log" 2>&1 &
	local pa=$!
	sleep 0.3
	fetchmail_run "$b" "" fetchall > "$R/fm-b.log" 2>&1 &
	local pb=$! rc=0
	wait "$pa" || rc=1
	wait "$pb" || rc=1
	cat "$R/fm-a.log" "$R/fm-b.log"
	[ "$rc" -eq 0 ]
	! grep -Ei 'error|SYS/TEMP|IN-USE' "$R/fm-a.log" "$R/fm-b.log"
	run python3 "$E2E" union fetchmail "$R/expect" "$a/out" "$b/out"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(mbox_count "/var/mail/$U")" -eq 0 ]
}
