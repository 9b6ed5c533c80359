# Shared set-up for the bats suite: a throwaway mail directory, a pam_matrix
# password database and PAM service, and a way to run one session through the
# handler with the replies captured.
#
# When the suite runs as root (CI does), the handler is started as the user
# "nobody" through setpriv, so it runs the unprivileged path; the root path has
# tests of its own (root.bats).

HANDLER="${HANDLER:-$BATS_TEST_DIRNAME/../pop3-handler}"
PAM_WRAPPER_LIB="$(find /usr/lib /usr/lib64 -name libpam_wrapper.so 2>/dev/null | head -n 1)"
PAM_MATRIX_MOD="$(find /usr/lib /usr/lib64 -name pam_matrix.so -path '*pam_wrapper*' 2>/dev/null | head -n 1)"

# Makes $T (a world-traversable scratch directory), $T/mail (the spool, owned
# by the user the handler runs as), a passdb and a PAM service "pop3", and
# points $HANDLER at a copy of the handler in $T/bin.
pop3_setup() {
	T="$(mktemp -d /tmp/pop3-test.XXXXXX)"
	chmod 755 "$T"
	mkdir -p "$T/mail" "$T/state" "$T/pam.d" "$T/bin"
	# The user a test runs the handler as (nobody, or one the test makes) may
	# not reach the checkout: a clone in root's mode-700 home is where a new
	# user on Debian has it. A copy in $T, under the same name, it can.
	cp "$HANDLER" "$T/bin/"
	HANDLER="$T/bin/${HANDLER##*/}"
	chmod 755 "$HANDLER"
	cat > "$T/passdb" <<-EOF
	alice:secret:pop3
	bob:hunter2:pop3
	carol:pass word:pop3
	EOF
	for t in auth account; do
		echo "$t required $PAM_MATRIX_MOD passdb=$T/passdb"
	done > "$T/pam.d/pop3"
	# libpam also loads "other"; one that lets nobody in keeps pam_wrapper quiet.
	for t in auth account; do
		echo "$t required $PAM_MATRIX_MOD passdb=$T/nobody"
	done > "$T/pam.d/other"
	if [ "$(id -u)" = 0 ]; then
		RUNAS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
	else
		RUNAS=()
	fi
	export T
}

pop3_teardown() {
	[ -n "${T:-}" ] && rm -rf "$T"
}

# Gives $T/mail and $T/state (the -D state directories) to the user the
# handler runs as.
pop3_own() {
	if [ "$(id -u)" = 0 ]; then
		chown -R nobody:nogroup "$T/mail" "$T/state"
	fi
}

# Runs the handler with its options ($@) on the input in $T/in and leaves the
# replies, with CR and NUL removed, in $output/$lines/$status as bats' run
# does ($lines has no empty lines: check those in $output or $T/out); the
# raw bytes stay in $T/out and the log (-d) in $T/err.
pop3_run() {
	pop3_own
	status=0
	env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
		"${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" "$@" \
		< "$T/in" > "$T/out" 2> "$T/err" || status=$?
	output="$(tr -d '\r\000' < "$T/out")"
	IFS=$'\n' read -r -d '' -a lines <<< "$output" || true
}

# pop3_session [options --] line...: sends each line with CRLF, then runs.
pop3_session() {
	local opts=()
	if [[ " $* " == *" -- "* ]]; then
		while [ "$1" != "--" ]; do opts+=("$1"); shift; done
		shift
	fi
	: > "$T/in"
	local l
	for l in "$@"; do printf '%s\r\n' "$l" >> "$T/in"; done
	pop3_run "${opts[@]}"
}

# Writes an mbox for user $1 from stdin.
mbox() {
	cat > "$T/mail/$1"
	chmod 600 "$T/mail/$1"
}

# pop3_listen [options]: serves the handler, set up as pop3_run does, on a
# loopback port ($PORT), one process per connection, for real clients; the
# log goes to $T/err. pop3_unlisten stops it (teardown does). LISTEN_ADDR=::1
# listens on IPv6 instead of 127.0.0.1.
pop3_listen() {
	pop3_own
	local addr="${LISTEN_ADDR:-127.0.0.1}"
	PORT="$(python3 -c 'import socket, sys; s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$addr")"
	[[ $addr != *:* ]] || addr="[$addr]"
	systemd-socket-activate -l "$addr:$PORT" --inetd -a \
		env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
		"${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" "$@" \
		2>> "$T/err" &
	LISTENER=$!
	local i
	for i in $(seq 50); do
		python3 -c 'import socket, sys; socket.create_connection((sys.argv[2], int(sys.argv[1])), 1).close()' "$PORT" "${LISTEN_ADDR:-127.0.0.1}" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

pop3_unlisten() {
	if [ -n "${LISTENER:-}" ]; then
		kill "$LISTENER" 2>/dev/null || true
		wait "$LISTENER" 2>/dev/null || true
		LISTENER=
	fi
}
