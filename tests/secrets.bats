#!/usr/bin/env bats
# What the handler's memory and logs keep of secrets: no core dump from the
# start, and as root not dumpable either, no password hash left in a session's
# heap, and nothing in a log line that a terminal would obey or that is
# likely a password typed as a user name.
#
# The root tests make real users with yescrypt hashes and install the shipped
# pam.d/pop3; everything is removed in teardown, whatever happened.

load helpers
load e2e

SECRETS="$BATS_TEST_DIRNAME/secrets.py"

setup() {
	pop3_setup
	R=
}

teardown() {
	e2e_cleanup
	pop3_teardown
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root: makes system users and an /etc/pam.d service"
	e2e_begin
	e2e_pam
}

@test "a logged-in session holds no password hash in its memory, neither its user's nor another user's" {
	# What is checked is glibc's heap: AddressSanitizer brings an allocator
	# of its own, which keeps freed chunks in quarantine, and terabytes of
	# shadow mappings that cannot be read through.
	if grep -qa __asan_init "$HANDLER"; then
		skip "$HANDLER is built with AddressSanitizer"
	fi
	need_root
	e2e_user p3s
	echo "$U:$(cat "$R/pass")" | chpasswd -c YESCRYPT
	mv "$R/pass" "$R/other.pass"
	local other=$U
	e2e_user p3s
	echo "$U:$(cat "$R/pass")" | chpasswd -c YESCRYPT
	touch "/var/mail/$U"
	chown "$U:mail" "/var/mail/$U"
	chmod 600 "/var/mail/$U"
	{
		getent shadow "$U" | cut -d: -f2
		getent shadow "$other" | cut -d: -f2
		cat "$R/pass"
	} > "$R/needles"
	run python3 "$SECRETS" scan "$R/needles" "$U" "$R/pass" "$HANDLER" "${OPTS[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "needle 1: 0" ]	# the user's own hash
	[ "${lines[1]}" = "needle 2: 0" ]	# another user's, from the shadow file
	[ "${lines[2]}" = "needle 3: 0" ]	# the password
}

@test "started as root, the handler allows no core dump and is not dumpable before login" {
	need_root
	ulimit -S -c unlimited 2>/dev/null || skip "the hard core limit is 0 here"
	# Root with the group nogroup: /proc/PID/status of a process that is
	# not dumpable belongs to root:root, else to its uid and gid.
	run python3 "$SECRETS" process setpriv --regid=nogroup --clear-groups -- "$HANDLER" "${OPTS[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "core 0" ]
	[ "${lines[1]}" = "owner 0:0" ]
}

@test "started as another user, the handler allows no core dump from the greeting on, and stays dumpable" {
	ulimit -S -c unlimited 2>/dev/null || skip "the hard core limit is 0 here"
	pop3_own
	run python3 "$SECRETS" process "${RUNAS[@]}" "$HANDLER" -m "$T/mail/%u" -D "$T/state/%u"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "core 0" ]
	# but it stays dumpable, so that strace as the user still decodes it:
	# /proc/PID/status is the user's.
	if [ "$(id -u)" = 0 ]; then
		[ "${lines[1]}" = "owner $(id -u nobody):$(getent group nogroup | cut -d: -f3)" ]
	else
		[ "${lines[1]}" = "owner $(id -u):$(id -g)" ]
	fi
}

@test "a user name's C1 controls and invalid UTF-8 are logged as ?, its UTF-8 letters as they are" {
	# ESC [ as the C1 CSI (U+009B), a NEL (U+0085), a stray 0xff, an
	# overlong '/', then "jörg" and "日本".
	pop3_session "USER $(printf 'a\302\2332Jb\302\205c\377d\300\257e')" "PASS x" \
		"USER $(printf 'j\303\266rg\346\227\245\346\234\254')" "PASS x" QUIT
	cat "$T/err"
	grep -q 'authentication failed: user=a?2Jb?c?d??e host=' "$T/err"
	grep -q "authentication failed: user=$(printf 'j\303\266rg\346\227\245\346\234\254') host=" "$T/err"
	! LC_ALL=C grep -q "$(printf '\302')" "$T/err" || false
	! LC_ALL=C grep -q "$(printf '\377')" "$T/err" || false
}

@test "as root, a failed name that is no account is logged as (unknown); an account's name as it is" {
	need_root
	e2e_user p3s
	printf 'USER Tr0ub4dor-typed-as-user\r\nPASS x\r\nUSER %s\r\nPASS wrong\r\nQUIT\r\n' "$U" > "$R/in"
	"$HANDLER" -d "${OPTS[@]}" < "$R/in" > "$R/out" 2> "$R/err" || true
	cat "$R/err"
	grep -q 'authentication failed: user=(unknown) host=local method=PASS' "$R/err"
	grep -q "authentication failed: user=$U host=local method=PASS" "$R/err"
	! grep -q 'Tr0ub4dor' "$R/err" || false
}

@test "a user name's overlong, surrogate and past-U+10FFFF sequences are logged as ?, byte by byte" {
	# '/' in 3 and 4 bytes, the surrogate U+D800, and U+110000.
	pop3_session "USER $(printf 'a\340\200\257b\360\200\200\257c\355\240\200d\364\220\200\200e')" "PASS x" QUIT
	cat "$T/err"
	grep -q 'authentication failed: user=a???b????c???d????e host=' "$T/err"
	! LC_ALL=C grep -q "$(printf '[\200-\377]')" "$T/err" || false
}

@test "as root, a failed name that is no account but has an APOP secret (-a) is logged as it is" {
	need_root
	printf 'p3ghost:some secret\n' > "$R/secrets"
	chmod 600 "$R/secrets"
	printf 'USER p3ghost\r\nPASS wrong\r\nQUIT\r\n' > "$R/in"
	"$HANDLER" -d "${OPTS[@]}" -a "$R/secrets" < "$R/in" > "$R/out" 2> "$R/err" || true
	cat "$R/err"
	! getent passwd p3ghost || false
	grep -q 'authentication failed: user=p3ghost host=local method=PASS' "$R/err"
}
