# Shared set-up for the end-to-end files that run as root (root.bats,
# deploy.bats, clients.bats): a real system user with a random password and a
# /var/mail spool in the Debian layout, the shipped pam.d/pop3 installed as a
# PAM service, daemons (systemd-socket-activate, xinetd, stunnel) started on
# free loopback ports, and one cleanup that undoes all of it. Load helpers
# first (it defines HANDLER).
#
# Everything made is recorded under $R, so that e2e_cleanup can undo it from
# any half-made state: $R/users (system users, one a line), $R/user0 (the
# uid-0 account root.bats makes), $R/service (the PAM service), $R/NAME.pid
# (daemons).

E2E="$BATS_TEST_DIRNAME/e2e.py"
GEN="$BATS_TEST_DIRNAME/gen-mbox.py"
TOP="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"

# A name no account or group has yet: PREFIX and digits.
fresh_name() {
	local n
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		n="$1$$$RANDOM"
		n="${n:0:16}"
		getent passwd "$n" >/dev/null || getent group "$n" >/dev/null || { echo "$n"; return 0; }
	done
	return 1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Counts the messages of an mbox as the README defines them.
mbox_count() {
	awk 'BEGIN { n = 0 } /^From / && (NR == 1 || prev == "") { n++ } { prev = $0 } END { print n }' "$1"
}

# e2e_begin: checks the handler is built and makes $R. Call first in
# setup_file, after the root check.
e2e_begin() {
	[ -x "$HANDLER" ] || { echo "no handler at $HANDLER (run make)" >&2; return 1; }
	R="$(mktemp -d /tmp/pop3-root.XXXXXX)"
	chmod 755 "$R"
	export R
}

# e2e_user PREFIX: makes a system user with a home and a random password,
# recorded in $R/users; sets and exports U, and leaves the password alone in
# $R/pass (mode 600).
e2e_user() {
	U="$(fresh_name "$1")"
	echo "$U" >> "$R/users"
	useradd -m -s /bin/sh "$U"
	local pw
	pw="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
	echo "$U:$pw" | chpasswd
	printf '%s\n' "$pw" > "$R/pass"
	chmod 600 "$R/pass"
	export U
}

# e2e_spool COUNT SEED: generates the user's spool in the Debian layout
# (/var/mail is root:mail 2775, the spool USER:mail 600), RETR's payload of
# each message in $R/expect/1..COUNT, and a copy of the spool in
# $R/spool.orig (e2e_spool_reset puts it back).
e2e_spool() {
	python3 "$GEN" --count "$1" --seed "$2" > "$R/spool.orig"
	rm -rf "$R/expect"
	python3 "$GEN" --count "$1" --seed "$2" --split "$R/expect" > /dev/null
	e2e_spool_reset
}

e2e_spool_reset() {
	rm -f "/var/mail/$U.lock"
	cp "$R/spool.orig" "/var/mail/$U"
	chown "$U:mail" "/var/mail/$U"
	chmod 600 "/var/mail/$U"
}

# e2e_pam: installs the shipped pam.d/pop3 as the default service "pop3", so
# that the handler runs with no options at all, as the shipped files do; where
# the machine has a pop3 service already, under a throwaway name. Sets SVC and
# the array OPTS (empty, or -s SVC) for the handler's command line.
e2e_pam() {
	OPTS=()
	if [ -e /etc/pam.d/pop3 ]; then
		SVC="$(fresh_name pop3t)"
		OPTS=(-s "$SVC")
	else
		SVC=pop3
	fi
	echo "$SVC" > "$R/service"
	cp "$TOP/pam.d/pop3" "/etc/pam.d/$SVC"
	export SVC
}

# Whether something listens on 127.0.0.1:$1 (TCP), from /proc/net/tcp, without
# connecting (a connection would start a session).
listening() {
	grep -q "^ *[0-9]*: 0100007F:$(printf '%04X' "$1") 00000000:0000 0A " /proc/net/tcp
}

# e2e_daemon NAME CMD...: starts CMD in the background on a free loopback port
# and waits until it listens there. Every "@PORT@" in CMD's arguments, and in
# $R/NAME.tmpl copied to $R/NAME.conf when that template exists, becomes the
# port. The pid goes to $R/NAME.pid, stdout and stderr to $R/NAME.log, and
# the port to $R/NAME.port and $DPORT. A port taken in the meantime (CMD
# dies) means another try, three in all.
e2e_daemon() {
	local name=$1 try i port
	shift
	for try in 1 2 3; do
		port="$(free_port)"
		if [ -e "$R/$name.tmpl" ]; then
			sed "s/@PORT@/$port/g" "$R/$name.tmpl" > "$R/$name.conf"
		fi
		"${@//@PORT@/$port}" < /dev/null > "$R/$name.log" 2>&1 3>&- &
		echo $! > "$R/$name.pid"
		for i in $(seq 100); do
			listening "$port" && break
			kill -0 "$(cat "$R/$name.pid")" 2>/dev/null || break
			sleep 0.05
		done
		if listening "$port" && kill -0 "$(cat "$R/$name.pid")" 2>/dev/null; then
			echo "$port" > "$R/$name.port"
			DPORT=$port
			return 0
		fi
		kill "$(cat "$R/$name.pid")" 2>/dev/null || true
		: > "$R/$name.pid"
	done
	echo "$name did not come up:" >&2
	cat "$R/$name.log" >&2
	return 1
}

# e2e_activate NAME HANDLER-ARGS...: one handler per connection, run the way
# systemd/pop3.socket and pop3@.service run it: systemd-socket-activate with
# Accept=yes semantics (--inetd -a). Sets and exports PORT.
e2e_activate() {
	local name=$1
	shift
	e2e_daemon "$name" systemd-socket-activate --inetd -a -l "127.0.0.1:@PORT@" "$@" || return 1
	PORT=$DPORT
	export PORT
}

# Writes $R/store.sh: stores stdin as the next numbered file in DIR ($1), an
# MDA for mpop and fetchmail that keeps messages in the order they came.
e2e_store_script() {
	cat > "$R/store.sh" <<-'EOF'
	d=$1
	n=$(( $(cat "$d/n" 2>/dev/null || echo 0) + 1 ))
	echo "$n" > "$d/n"
	exec cat > "$d/$n"
	EOF
}

# Undoes what the e2e_ functions recorded in $R, in reverse: daemons, the
# uid-0 user, users, PAM service, temp dir. Each step tolerates a half-made
# state.
e2e_cleanup() {
	if [ -z "${R:-}" ] || [ ! -d "$R" ]; then
		return 0
	fi
	local f u
	for f in "$R"/*.pid; do
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	if [ -s "$R/user0" ]; then
		userdel -f "$(cat "$R/user0")" 2>/dev/null || true
	fi
	if [ -s "$R/users" ]; then
		while read -r u; do
			[ -n "$u" ] || continue
			userdel -r -f "$u" 2>/dev/null || true
			rm -f "/var/mail/$u" "/var/mail/$u.lock"
		done < "$R/users"
	fi
	if [ -s "$R/service" ]; then
		rm -f "/etc/pam.d/$(cat "$R/service")"
	fi
	rm -rf "$R"
}
