#!/usr/bin/env bats
# make install / make uninstall under a DESTDIR, and the man page linted the
# way Debian's lintian does. No root needed: nothing is written outside the
# scratch DESTDIR.

TOP="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"

# What make install puts under DESTDIR (PREFIX /usr/local), with modes.
EXPECTED="usr/local/sbin/pop3-handler 755
usr/local/sbin/pop3-handler-keeper 755
usr/local/share/doc/pop3-handler/examples/fail2ban/filter.d/pop3-handler.conf 644
usr/local/share/doc/pop3-handler/examples/fail2ban/jail.d/pop3-handler.conf 644
usr/local/share/doc/pop3-handler/examples/pam.d/pop3 644
usr/local/share/doc/pop3-handler/examples/stunnel/pop3-stls.conf 644
usr/local/share/doc/pop3-handler/examples/stunnel/pop3s.conf 644
usr/local/share/doc/pop3-handler/examples/systemd/pop3.socket 644
usr/local/share/doc/pop3-handler/examples/systemd/pop3@.service 644
usr/local/share/doc/pop3-handler/examples/xinetd.d/pop3 644
usr/local/share/man/man8/pop3-handler-keeper.8 644
usr/local/share/man/man8/pop3-handler.8 644"

setup() {
	D="$(mktemp -d /tmp/pop3-install.XXXXXX)"
}

teardown() {
	rm -rf "$D"
}

@test "make install DESTDIR puts the binary and its keeper, the man pages and every example under DESTDIR, unchanged" {
	run make -s -C "$TOP" install DESTDIR="$D"
	echo "$output"
	[ "$status" -eq 0 ]
	run bash -c "cd '$D' && find . -type f -printf '%P %m\n' | LC_ALL=C sort"
	echo "$output"
	[ "$output" = "$EXPECTED" ]
	# Nothing but directories and those files.
	[ -z "$(find "$D" ! -type f ! -type d)" ]
	cmp "$TOP/pop3-handler" "$D/usr/local/sbin/pop3-handler"
	cmp "$TOP/pop3-handler-keeper" "$D/usr/local/sbin/pop3-handler-keeper"
	cmp "$TOP/pop3-handler.8" "$D/usr/local/share/man/man8/pop3-handler.8"
	cmp "$TOP/pop3-handler-keeper.8" "$D/usr/local/share/man/man8/pop3-handler-keeper.8"
	local f
	for f in pam.d/pop3 xinetd.d/pop3 systemd/pop3.socket systemd/pop3@.service \
		stunnel/pop3s.conf stunnel/pop3-stls.conf \
		fail2ban/filter.d/pop3-handler.conf fail2ban/jail.d/pop3-handler.conf; do
		cmp "$TOP/$f" "$D/usr/local/share/doc/pop3-handler/examples/$f"
	done
}

@test "make install and uninstall name no path outside DESTDIR" {
	local t
	for t in install uninstall; do
		run make -n -C "$TOP" "$t" DESTDIR=/nonexistent-destdir
		[ "$status" -eq 0 ]
		# Every absolute path in the commands is under DESTDIR.
		run bash -c "grep -oE '(^|[[:space:]])/[^[:space:];]*' <<< \"\$1\" | sed 's/^[[:space:]]*//' | grep -v '^/nonexistent-destdir/'" _ "$output"
		echo "$output"
		[ -z "$output" ]
	done
}

@test "make uninstall DESTDIR removes every installed file and the examples directory" {
	make -s -C "$TOP" install DESTDIR="$D"
	run make -s -C "$TOP" uninstall DESTDIR="$D"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$(find "$D" -type f)" ]
	[ ! -e "$D/usr/local/share/doc/pop3-handler" ]
}

@test "groff -ww and man --warnings find nothing to warn about in pop3-handler.8 and pop3-handler-keeper.8" {
	local page
	for page in pop3-handler.8 pop3-handler-keeper.8; do
		run groff -ww -man -z "$TOP/$page"
		echo "$page: $output"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
			man --warnings -E UTF-8 -l -Tutf8 -Z "$TOP/$page" > "$D/page" 2> "$D/warnings"
		cat "$D/warnings"
		[ ! -s "$D/warnings" ]
	done
}

@test "man -l renders pop3-handler.8 without a warning, EXAMPLES naming every deployment file" {
	# lintian's check: warnings go to stderr, the page to stdout.
	LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
		man --warnings -E UTF-8 -l -Tutf8 -Z "$TOP/pop3-handler.8" > "$D/page" 2> "$D/warnings"
	cat "$D/warnings"
	[ ! -s "$D/warnings" ]
	LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$TOP/pop3-handler.8" > "$D/text" 2> "$D/warnings"
	[ ! -s "$D/warnings" ]
	sed -n '/^EXAMPLES/,/^SEE ALSO/p' "$D/text" > "$D/examples"
	local f
	for f in xinetd.d/pop3 systemd/pop3.socket systemd/pop3@.service \
		stunnel/pop3s.conf stunnel/pop3-stls.conf \
		fail2ban/filter.d/pop3-handler.conf fail2ban/jail.d/pop3-handler.conf; do
		grep -qF "$f" "$D/examples" || { echo "EXAMPLES does not name $f"; false; }
	done
}

# The binary the suite runs is the one make builds; readelf (binutils, which
# comes with gcc) reads what Debian's hardening-check looks for.
@test "the built binaries are hardened: PIE, full RELRO, stack protector, fortified calls, CET marks on x86" {
	local bin="$TOP/pop3-handler"
	readelf -hW "$bin" > "$D/header"
	readelf -lW "$bin" > "$D/segments"
	readelf -dW "$bin" > "$D/dynamic"
	nm -D "$bin" > "$D/symbols"
	grep -q 'Type: *DYN' "$D/header"
	grep -q 'GNU_RELRO' "$D/segments"
	grep -Eq 'FLAGS_1\).*NOW' "$D/dynamic"
	grep -Eq 'FLAGS_1\).*PIE' "$D/dynamic"
	grep -q ' U __stack_chk_fail' "$D/symbols"
	grep -q ' U __memcpy_chk' "$D/symbols"
	grep -q ' U __snprintf_chk' "$D/symbols"
	# The keeper's program: a static PIE, full RELRO, no library, no loader.
	bin="$TOP/pop3-handler-keeper"
	readelf -hW "$bin" | grep -q 'Type: *DYN'
	readelf -lW "$bin" > "$D/segments"
	readelf -dW "$bin" > "$D/dynamic"
	grep -q 'GNU_RELRO' "$D/segments"
	! grep -q 'INTERP' "$D/segments" || false
	grep -Eq 'FLAGS_1\).*NOW' "$D/dynamic"
	grep -Eq 'FLAGS_1\).*PIE' "$D/dynamic"
	! grep -q 'NEEDED' "$D/dynamic" || false
	# (static: its calls to the checked functions are linked in)
	nm "$bin" | grep -q ' T __stack_chk_fail$'
	nm "$bin" | grep -q ' T __snprintf_chk$'
	# Debian 12's own start files carry no CET marks, so the linked binary
	# has none to show; each of our objects must carry them.
	if grep -q 'Machine: *Advanced Micro Devices X86-64' "$D/header"; then
		local o
		for o in "$TOP"/*.o; do
			readelf -nW "$o" | grep -q 'x86 feature: IBT, SHSTK' ||
				{ echo "$o has no IBT/SHSTK mark"; false; }
		done
	fi
}

@test "CFLAGS and LDFLAGS given to make are added to the hardening flags, not put in their place" {
	run make -s -C "$TOP" -n -B pop3-handler CFLAGS=-O1 LDFLAGS=-Wl,--as-needed
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -F 'lines.c' | grep -F -- '-fstack-protector-strong' | grep -F -- '-D_FORTIFY_SOURCE=2' | grep -qF -- '-O1'
	echo "$output" | grep -F -- '-o pop3-handler ' | grep -F -- '-Wl,-z,now' | grep -qF -- '-Wl,--as-needed'
}
