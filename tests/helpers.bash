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
# points $HANDLER at a copy of the handler (and its keeper) in $T/bin.
pop3_setup() {
	T="$(mktemp -d /tmp/pop3-test.XXXXXX)"
	chmod 755 "$T"
	mkdir -p "$T/mail" "$T/state" "$T/pam.d" "$T/bin"
	# The user a test runs the handler as (nobody, or one the test makes) may
	# not reach the checkout: a clone in root's mode-700 home is where a new
	# user on Debian has it. A copy in $T, under the same name, it can.
	# The dotlock keeper's program goes with it, where it was built beside it.
	cp "$HANDLER" "$T/bin/"
	[ ! -e "${HANDLER%/*}/pop3-handler-keeper" ] ||
		cp "${HANDLER%/*}/pop3-handler-keeper" "$T/bin/"
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

# left_over DIR: what of an update is left in the state directory DIR, one
# name a line: all but the cache and the updates noted, which stay.
left_over() {
	ls -A "$1" | grep -vx 'cache\|updates' || true
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

# transcript [handler options]: runs one session from the script on stdin and
# checks the whole exchange, as a POP3 transcript reads. One action a line:
#
#   C: text     the client sends "text" and CRLF
#   W: text     the client sends "text" as it is, no CRLF added, with the
#               escapes \r \n \0 \xHH decoded (printf %b; Python's in a driven
#               session): bare LFs, NULs, a cut line
#   S: text     the server's next line is exactly "text" ("S:" alone: an
#               empty line)
#   S* glob     the server's next line matches the shell pattern (* ? [...],
#               as in case; no extglob, so "(" and ")" are themselves, and a
#               backslash quotes: "S* -ERR \[AUTH]*")
#   S~ regex    the server's next line matches the bash ERE, which is
#               anchored at both ends
#   A: D: K: R: M: and "! command": pop3drive.py's actions (APOP, CRAM-MD5,
#               a command run mid-session, see tests/pop3drive.py); with one
#               of them the session is driven interactively by pop3drive.py,
#               each C: waiting for its reply; without, all the client lines
#               are piped in at once, as pop3_session does
#   # comment, or an empty line: ignored
#
# One space after the tag is part of it; leading blanks (<<- tabs) are not.
# The S lines are matched in order against every line the server sent, one
# line each, its CR LF or LF removed and a NUL shown as \0 (pop3drive.py's
# own "! exit N" and "pop3drive: timeout" lines count as server lines, so
# they fail a transcript that does not expect them); where an S line stands
# among the C lines is for the reader. A different, missing or extra line
# fails, after printing the script beside what the server sent, the first
# line that differs marked. Leaves $output, $lines, $status, $T/out and $T/err
# as pop3_run does, for the checks a transcript cannot make (the log, the
# mailbox, the exit status).
transcript() {
	local script=() drive=0 l rest
	_transcript_read || return
	if [ "$drive" = 1 ]; then
		# pop3drive.py spells "send as it is" S:, its output is the server's.
		for l in "${script[@]}"; do
			case "$l" in
			S:* | 'S*'* | S~*) ;;
			W:*) rest="${l#W:}"; printf 'S: %s\n' "${rest# }" ;;
			*) printf '%s\n' "$l" ;;
			esac
		done > "$T/drive"
		pop3_own
		status=0
		python3 "$BATS_TEST_DIRNAME/pop3drive.py" --raw "$T/out" \
			env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
			PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
			"${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" "$@" \
			< "$T/drive" > "$T/said" 2> "$T/err" || status=$?
		output="$(tr -d '\r\000' < "$T/said")"
		IFS=$'\n' read -r -d '' -a lines <<< "$output" || true
	else
		for l in "${script[@]}"; do
			case "$l" in
			C:*) rest="${l#C:}"; printf '%s\r\n' "${rest# }" ;;
			W:*) rest="${l#W:}"; printf '%b' "${rest# }" ;;
			esac
		done > "$T/in"
		pop3_run "$@"
		cp "$T/out" "$T/said"
	fi
	_transcript_match "${script[@]}"
}

# transcript_via COMMAND [ARGS...]: the same check for a session that runs
# another way, a client on a socket: runs COMMAND ARGS... with the script's
# client lines as further arguments, its stdout taken as the lines the server
# sent. Only C:, S*, S~, S: and # lines; the session is COMMAND's.
transcript_via() {
	local script=() drive=0 l rest sent=()
	_transcript_read || return
	for l in "${script[@]}"; do
		case "$l" in
		C:*) rest="${l#C:}"; sent+=("${rest# }") ;;
		S:* | 'S*'* | S~* | '#'* | '') ;;
		*) echo "transcript_via: not for a client line: $l"; return 2 ;;
		esac
	done
	status=0
	"$@" "${sent[@]}" > "$T/said" || status=$?
	output="$(tr -d '\r\000' < "$T/said")"
	IFS=$'\n' read -r -d '' -a lines <<< "$output" || true
	_transcript_match "${script[@]}"
}

# Reads transcript's script from stdin into its $script and $drive, byte by
# byte: in a UTF-8 locale bash's read takes an invalid byte and the LF after it
# for one character, and two lines become one.
_transcript_read() {
	local LC_ALL=C l
	while IFS= read -r l || [ -n "$l" ]; do
		l="${l#"${l%%[! $'\t']*}"}"
		script+=("$l")
		case "$l" in
		A:* | D:* | K:* | R:* | M:* | '!'*) drive=1 ;;
		C:* | W:* | S:* | 'S*'* | S~* | '#'* | '') ;;
		*) echo "transcript: bad script line: $l"; return 2 ;;
		esac
	done
}

# _transcript_match script-line...: checks $T/said against the script's S
# lines as transcript describes; prints both sides and returns 1 if they
# differ. Bytes, not characters: ? in a glob is one byte.
_transcript_match() {
	local LC_ALL=C said=() l
	while IFS= read -r l || [ -n "$l" ]; do
		said+=("${l%$'\r'}")
	done < <(sed 's/\x0/\\0/g' "$T/said")
	local i=0 first=-1 firstat=0 n=0 re want got ok m
	local marks=()
	for l in "$@"; do
		n=$((n + 1))
		case "$l" in
		S:* | 'S*'* | S~*) ;;
		*) continue ;;
		esac
		want="${l:2}" ok=0
		want="${want# }"
		if [ "$i" -lt "${#said[@]}" ]; then
			got="${said[$i]}"
			case "$l" in
			S:*) [[ "$got" == "$want" ]] && ok=1 ;;
			'S*'*) case "$got" in $want) ok=1 ;; esac ;;
			S~*) re="^($want)\$"; [[ "$got" =~ $re ]] && ok=1 ;;
			esac
		fi
		marks+=("$ok")
		if [ "$ok" = 0 ] && [ "$first" -lt 0 ]; then first=$i; firstat=$n; fi
		i=$((i + 1))
	done
	if [ "$first" -lt 0 ] && [ "$i" -eq "${#said[@]}" ]; then
		return 0
	fi
	if [ "$first" -lt 0 ]; then
		echo "transcript: the server sent more than the script's $i lines"
	elif [ "$first" -ge "${#said[@]}" ]; then
		echo "transcript: the server sent $first lines, script line $firstat expects more"
	else
		echo "transcript: server line $((first + 1)) differs from script line $firstat"
	fi
	printf '   %-50s| %s\n' "script" "server"
	local j=0
	for l in "$@"; do
		case "$l" in
		S:* | 'S*'* | S~*)
			if [ "$j" -lt "${#said[@]}" ]; then
				got="$(_transcript_short "${said[$j]}")"
			else
				got="(nothing)"
			fi
			if [ "${marks[$j]}" = 1 ]; then m=" "; else m="!"; fi
			printf '%s  %-50s| %s\n' "$m" "$(_transcript_short "$l")" "$got"
			j=$((j + 1))
			;;
		'') ;;
		*) printf '   %s\n' "$(_transcript_short "$l")" ;;
		esac
	done
	while [ "$j" -lt "${#said[@]}" ]; do
		printf '!  %-50s| %s\n' "(nothing)" "$(_transcript_short "${said[$j]}")"
		j=$((j + 1))
	done
	echo "exit status $status"
	return 1
}

# Shows a line of over 120 characters by its start and length.
_transcript_short() {
	if [ "${#1}" -gt 120 ]; then
		printf '%s... (%d characters)' "${1:0:60}" "${#1}"
	else
		printf '%s' "$1"
	fi
}
