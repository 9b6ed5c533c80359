# Interactive sessions for the bats suite, on top of helpers.bash (load it
# first).  See tests/pop3drive.py for the script language.

# pop3_drive [handler options]: runs one session driven by the script on
# stdin, with the environment pop3_run builds, and leaves the server's lines in
# $output/$lines (as pop3_run does), the exit status in $status, the raw bytes
# in $T/out and the log, with the output of "!" lines, in $T/err.
pop3_drive() {
	pop3_own
	status=0
	output="$(python3 "$BATS_TEST_DIRNAME/pop3drive.py" --raw "$T/out" \
		env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
		"${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" "$@" 2> "$T/err")" || status=$?
	IFS=$'\n' read -r -d '' -a lines <<< "$output" || true
}

# locked_append FILE: appends stdin to FILE the way a delivery agent does:
# under FILE.lock (dotlockfile, liblockfile), an fcntl lock and a flock.
# Gives up after a few seconds when the handler holds the lock.
locked_append() {
	dotlockfile -l -p -r 3 -i 1 -P "$1.lock" python3 -c '
import fcntl, sys
with open(sys.argv[1], "ab") as f:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    f.write(sys.stdin.buffer.read())
    f.flush()
' "$1"
}

# locked_rewrite FILE: replaces FILE's content in place with stdin (same
# inode), under the same locks as locked_append.
locked_rewrite() {
	dotlockfile -l -p -r 3 -i 1 -P "$1.lock" python3 -c '
import fcntl, sys
with open(sys.argv[1], "r+b") as f:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    f.seek(0)
    f.write(sys.stdin.buffer.read())
    f.truncate()
    f.flush()
' "$1"
}

# So that "! locked_append ..." lines in a pop3drive script can call them.
export -f locked_append locked_rewrite
