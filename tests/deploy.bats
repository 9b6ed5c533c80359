#!/usr/bin/env bats
# The shipped deployment files, each run by the real program on a loopback
# port with real clients, as root, with a real user and the shipped PAM file:
#
#   xinetd.d/pop3          xinetd -dontfork (only port, address, binary path
#                          rewritten)
#   systemd/pop3.socket,   systemd-analyze verify, and the same ExecStart run
#   systemd/pop3@.service  by systemd-socket-activate --inetd -a (Accept=yes)
#   stunnel/pop3s.conf     stunnel4 with a throwaway self-signed certificate:
#                          curl pop3s://, openssl s_client, mpop
#   stunnel/pop3-stls.conf the same with protocol = pop3: curl --ssl-reqd,
#                          openssl s_client -starttls pop3, mpop STLS
#
# Everything started or made here is stopped and removed in teardown_file.

load helpers
load e2e

COUNT=42
SEED=2595

# Rewrites a shipped stunnel config ($1) for the test: accept on 127.0.0.1:@PORT@,
# the throwaway certificate, the built handler, its log (-d) and -s SVC when
# the PAM service has a throwaway name; stunnel's own log to $2.
stunnel_conf() {
	{
		echo "syslog = no"
		echo "output = $2"
		sed -e "s|^accept = .*|accept = 127.0.0.1:@PORT@|" \
			-e "s|^cert = .*|cert = $R/cert.pem|" \
			-e "s|^key = .*|key = $R/key.pem|" \
			-e "s|^exec = .*|exec = $HANDLER|" \
			-e "s|^execArgs = .*|& -d ${OPTS[*]}|" "$1"
	}
}

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	e2e_begin || return 1
	e2e_user p3d
	e2e_spool "$COUNT" "$SEED"
	e2e_pam

	# xinetd with the shipped entry as its whole configuration; the PAM
	# service name only if it had to be a throwaway one.
	{
		printf 'defaults\n{\n}\n'
		awk -v h="$HANDLER" -v args="${OPTS[*]}" '
			/^[ \t]*server[ \t]*=/ {
				print "\tserver\t\t= " h
				if (args != "") print "\tserver_args\t= " args
				next
			}
			/^{/ { print; print "\ttype\t\t= UNLISTED"; print "\tport\t\t= @PORT@"; print "\tbind\t\t= 127.0.0.1"; next }
			{ print }' "$TOP/xinetd.d/pop3"
	} > "$R/xinetd.tmpl"
	e2e_daemon xinetd xinetd -dontfork -f "$R/xinetd.conf" -filelog "$R/xinetd.filelog"
	XPORT=$DPORT

	# The handler's command line exactly as pop3@.service has it.
	SA_EXEC="$(sed -n 's/^ExecStart=//p' "$TOP/systemd/pop3@.service")"
	[ -n "$SA_EXEC" ]
	SA_EXEC="${SA_EXEC//\/usr\/local\/sbin\/pop3-handler/$HANDLER}"
	export SA_EXEC
	local cmd
	read -r -a cmd <<< "$SA_EXEC"
	e2e_activate sa "${cmd[@]}" "${OPTS[@]}"

	# A throwaway self-signed certificate for 127.0.0.1 and localhost.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-days 1 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$R/key.pem" -out "$R/cert.pem" 2> "$R/openssl.log"
	chmod 600 "$R/key.pem"

	stunnel_conf "$TOP/stunnel/pop3s.conf" "$R/pop3s.stunnel.log" > "$R/pop3s.tmpl"
	e2e_daemon pop3s stunnel4 "$R/pop3s.conf"
	SPORT=$DPORT
	stunnel_conf "$TOP/stunnel/pop3-stls.conf" "$R/stls.stunnel.log" > "$R/stls.tmpl"
	e2e_daemon stls stunnel4 "$R/stls.conf"
	TPORT=$DPORT
	export XPORT SPORT TPORT
}

teardown_file() {
	e2e_cleanup
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root: makes a system user, a /var/mail spool and an /etc/pam.d service"
}

# Runs curl over TLS against PORT ($1) with the throwaway CA, fetching LIST
# and every message into $R/$2/, and compares them with the spool.
curl_all() {
	local port=$1 d="$R/$2" args=() i
	shift 2
	mkdir -p "$d"
	for i in $(seq "$COUNT"); do
		args+=("$SCHEME://127.0.0.1:$port/$i" -o "$d/$i")
	done
	run curl -sS --max-time 60 --cacert "$R/cert.pem" "$@" -u "$U:$(cat "$R/pass")" "$SCHEME://127.0.0.1:$port/"
	echo "$output"
	[ "$status" -eq 0 ]
	local want
	want="$(for i in $(seq "$COUNT"); do echo "$i $(wc -c < "$R/expect/$i")"; done)"
	[ "$(tr -d '\r' <<< "$output")" = "$want" ]
	curl -sS --max-time 120 --cacert "$R/cert.pem" "$@" -u "$U:$(cat "$R/pass")" "${args[@]}"
	run python3 "$E2E" compare exact "$R/expect" "$d"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "xinetd with the shipped xinetd.d/pop3 serves a whole session: poplib checks every message" {
	grep -q "Started working: 1 available service" "$R/xinetd.filelog"
	run python3 "$E2E" poplib 127.0.0.1 "$XPORT" "$U" "$R/pass" "$R/expect"
	echo "$output"
	[ "$status" -eq 0 ]
	cmp "$R/spool.orig" "/var/mail/$U"
}

@test "the shipped pop3.socket and pop3@.service pass systemd-analyze verify, and the socket has xinetd.d/pop3's limits" {
	local d="$R/units"
	mkdir -p "$d"
	cp "$TOP/systemd/pop3.socket" "$d/"
	sed "s|/usr/local/sbin/pop3-handler|$HANDLER|" "$TOP/systemd/pop3@.service" > "$d/pop3@.service"
	cd "$d"
	# Unknown keys are only warnings to verify: any output at all fails.
	run systemd-analyze verify --man=no "$d/pop3.socket" "$d/pop3@.service"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# What systemd-socket-activate --inetd -a stands in for below.
	grep -qx 'Accept=yes' "$TOP/systemd/pop3.socket"
	grep -qx 'ListenStream=110' "$TOP/systemd/pop3.socket"
	grep -qx 'StandardInput=socket' "$TOP/systemd/pop3@.service"
	grep -qx 'StandardOutput=socket' "$TOP/systemd/pop3@.service"
	# The same limits as xinetd.d/pop3, whose per_source a test below runs.
	grep -qx "MaxConnections=$(awk '$1 == "instances" { print $3 }' "$TOP/xinetd.d/pop3")" "$TOP/systemd/pop3.socket"
	grep -qx "MaxConnectionsPerSource=$(awk '$1 == "per_source" { print $3 }' "$TOP/xinetd.d/pop3")" "$TOP/systemd/pop3.socket"
}

@test "systemd-socket-activate runs pop3@.service's ExecStart per connection: poplib and curl sessions" {
	run python3 "$E2E" poplib 127.0.0.1 "$PORT" "$U" "$R/pass" "$R/expect"
	echo "$output"
	[ "$status" -eq 0 ]
	curl -sS --max-time 60 -u "$U:$(cat "$R/pass")" "pop3://127.0.0.1:$PORT/$COUNT" -o "$R/sa-last"
	cmp "$R/expect/$COUNT" "$R/sa-last"
	grep -q "^Spawned $HANDLER" "$R/sa.log"
	cmp "$R/spool.orig" "/var/mail/$U"
}

@test "under no_new_privs, as pop3@.service sets it, the dotlock keeper locks the spool: the session works" {
	grep -Eq '^NoNewPrivileges=yes$' "$TOP/systemd/pop3@.service"
	local cmd opts=()
	read -r -a cmd <<< "$SA_EXEC"
	[ "$SVC" = pop3 ] || opts=(-s "$SVC")
	e2e_daemon nnp systemd-socket-activate --inetd -a -l "127.0.0.1:@PORT@" \
		setpriv --no-new-privs "${cmd[@]}" -d "${opts[@]}"
	run python3 "$E2E" pass 127.0.0.1 "$DPORT" "$U" "$R/pass"
	kill "$(cat "$R/nnp.pid")"
	cat "$R/nnp.log"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "+OK"* ]]
	# The set-gid dotlockfile cannot work under no_new_privs: the keeper,
	# forked before the drop with group mail, made and removed the lock.
	grep -q "dotlock keeper for /var/mail/$U.lock" "$R/nnp.log"
	! grep -q 'cannot create the dotlock' "$R/nnp.log" || false
	[ ! -e "/var/mail/$U.lock" ]
	cmp "$R/spool.orig" "/var/mail/$U"
}

@test "stunnel pop3s.conf: curl pop3s:// LISTs and RETRs every message, verified against the CA" {
	SCHEME=pop3s curl_all "$SPORT" curl-pop3s
	grep -q "login: user=$U host=127.0.0.1 method=" "$R/pop3s.log"
}

@test "stunnel pop3s.conf: openssl s_client completes a session" {
	run bash -c "printf 'CAPA\nUSER %s\nPASS %s\nSTAT\nUIDL 1\nQUIT\n' '$U' '$(cat "$R/pass")' |
		timeout 30 openssl s_client -quiet -verify_return_error -CAfile '$R/cert.pem' \
			-connect 127.0.0.1:$SPORT -servername localhost 2>/dev/null"
	echo "$output"
	[ "$status" -eq 0 ]
	output="$(tr -d '\r' <<< "$output")"
	[[ "$output" == "+OK pop3-handler ready"* ]]
	grep -qx 'USER' <<< "$output"
	grep -qx "+OK maildrop has $COUNT messages .*" <<< "$output"
	grep -qx "+OK $COUNT $(cat "$R/expect"/* | wc -c)" <<< "$output"
	grep -qx "+OK pop3-handler signing off ($COUNT messages left)" <<< "$output"
	# The handler's log (-d) went to stunnel's stderr, not to the client.
	! grep -q 'pop3-handler\[' <<< "$output" || false
	grep -q "login: user=$U host=127.0.0.1 method=" "$R/pop3s.log"
}

@test "stunnel pop3s.conf: mpop over TLS keeps every message intact" {
	local d="$R/mpop-pop3s"
	mkdir -p "$d/Maildir/new" "$d/Maildir/cur" "$d/Maildir/tmp"
	run mpop --host=127.0.0.1 --port="$SPORT" --timeout=60 --tls=on --tls-starttls=off \
		--tls-trust-file="$R/cert.pem" --tls-host-override=localhost \
		--auth=user --user="$U" --passwordeval="cat $R/pass" \
		--keep=on --only-new=off --received-header=off \
		--uidls-file="$d/uidls" --delivery=maildir,"$d/Maildir" -Q
	echo "$output"
	[ "$status" -eq 0 ]
	run python3 "$E2E" compare lf "$R/expect" "$d/Maildir/new" --unordered
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "stunnel pop3-stls.conf: before STLS stunnel offers only STLS and drops USER; the handler never sees it" {
	run python3 "$E2E" stls-refuse 127.0.0.1 "$TPORT" "$U"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "+OK pop3-handler ready"*" + stunnel" ]]
	[ "${lines[1]}" = "CAPA: STLS" ]
	[ "${lines[2]}" = "USER: connection closed" ]
	sleep 0.2
	! grep -q "user=$U" "$R/stls.log" || false
}

@test "stunnel pop3-stls.conf: curl --ssl-reqd pop3:// LISTs and RETRs every message after STLS" {
	SCHEME=pop3 curl_all "$TPORT" curl-stls --ssl-reqd
	grep -q "login: user=$U host=127.0.0.1 method=" "$R/stls.log"
}

@test "stunnel pop3-stls.conf: openssl s_client -starttls pop3 completes a session, USER offered under -S -P" {
	run bash -c "printf 'CAPA\nUSER %s\nPASS %s\nSTAT\nQUIT\n' '$U' '$(cat "$R/pass")' |
		timeout 30 openssl s_client -quiet -starttls pop3 -verify_return_error -CAfile '$R/cert.pem' \
			-connect 127.0.0.1:$TPORT -servername localhost 2>/dev/null"
	echo "$output"
	[ "$status" -eq 0 ]
	output="$(tr -d '\r' <<< "$output")"
	# The handler's own CAPA, after TLS: -S lets -P offer USER.
	[[ "$output" == "+OK Capability list follows"* ]]
	grep -qx 'USER' <<< "$output"
	! grep -qx 'STLS' <<< "$output" || false
	grep -qx "+OK maildrop has $COUNT messages .*" <<< "$output"
	grep -qx "+OK pop3-handler signing off ($COUNT messages left)" <<< "$output"
	! grep -q 'pop3-handler\[' <<< "$output" || false
}

@test "stunnel pop3-stls.conf: mpop with STLS keeps every message intact" {
	local d="$R/mpop-stls"
	mkdir -p "$d/Maildir/new" "$d/Maildir/cur" "$d/Maildir/tmp"
	run mpop --host=127.0.0.1 --port="$TPORT" --timeout=60 --tls=on --tls-starttls=on \
		--tls-trust-file="$R/cert.pem" --tls-host-override=localhost \
		--auth=user --user="$U" --passwordeval="cat $R/pass" \
		--keep=on --only-new=off --received-header=off \
		--uidls-file="$d/uidls" --delivery=maildir,"$d/Maildir" -Q
	echo "$output"
	[ "$status" -eq 0 ]
	run python3 "$E2E" compare lf "$R/expect" "$d/Maildir/new" --unordered
	echo "$output"
	[ "$status" -eq 0 ]
	cmp "$R/spool.orig" "/var/mail/$U"
}

@test "the shipped xinetd.d/pop3 lets one address hold 5 connections before login, and refuses a 6th" {
	run python3 - "$XPORT" <<-'PY'
	import socket, sys
	port = int(sys.argv[1])
	def greeting(s):
	    try:
	        return s.recv(512).decode().strip() or "closed"
	    except OSError as e:
	        return "error %s" % e
	held = []
	for i in range(6):
	    s = socket.create_connection(("127.0.0.1", port), 5)
	    s.settimeout(10)
	    print("connection %d: %s" % (i + 1, greeting(s)))
	    held.append(s)
	for s in held:
	    try:
	        s.sendall(b"QUIT\r\n")
	        s.recv(512)
	    except OSError:
	        pass
	    s.close()
	PY
	echo "$output"
	[ "$(grep -c '^connection [1-5]: +OK pop3-handler ready' <<< "$output")" -eq 5 ]
	[ "${lines[5]}" = "connection 6: closed" ]
}
