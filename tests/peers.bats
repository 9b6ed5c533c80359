#!/usr/bin/env bats
# The unique-id schemes against the real servers they copy, on the same
# files, byte for byte: popa3d 1.0.3 from Debian's package (never installed:
# it conflicts with dovecot-pop3d; quickstart.sh's test step unpacks it into
# $POPA3D_DIR, as bench/pop3bench.py does) and Dovecot 2.3's pop3 (the
# dovecot-pop3d package, its own master on a loopback port with a
# configuration of ours, as bench/pop3bench.py runs it). Each lists a
# mailbox of awkward messages (tests/gen-awkward.py) and a generated one of
# 3,000 (bench/gen-bench-mbox.py); pop3-handler, started as root as it is
# deployed, must list the same ids, with the differences README's
# "Migrating from ..." names: the pseudo-message hidden, a repeated popa3d id
# told apart by ".2", ".3".
#
# As root only: real users, /var/mail, PAM. Everything made is undone in
# teardown_file (e2e_cleanup, and popa3d's user, directory and PAM file when
# this file made them).

load helpers
load e2e

POPA3D_DIR="${POPA3D_DIR:-/var/cache/pop3-handler-peers/popa3d}"
POPA3D="$POPA3D_DIR/usr/sbin/popa3d"
BENCH_GEN="$BATS_TEST_DIRNAME/../bench/gen-bench-mbox.py"
AWK="$BATS_TEST_DIRNAME/gen-awkward.py"

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	e2e_begin || return 1
	e2e_user p3peer
	e2e_pam
	# popa3d's own pre-login user and directory and its PAM service, as
	# its package's postinst and conffile have them.
	if ! getent passwd popa3d > /dev/null; then
		useradd --system --home-dir /var/lib/popa3d --no-create-home \
			--user-group --shell /usr/sbin/nologin popa3d
		echo popa3d > "$R/made-popa3d-user"
	fi
	if [ ! -d /var/lib/popa3d ]; then
		mkdir -m 755 /var/lib/popa3d
		: > "$R/made-popa3d-dir"
	fi
	if [ ! -e /etc/pam.d/popa3d ] && [ -e "$POPA3D_DIR/etc/pam.d/popa3d" ]; then
		cp "$POPA3D_DIR/etc/pam.d/popa3d" /etc/pam.d/popa3d
		: > "$R/made-popa3d-pam"
	fi
	if command -v dovecot > /dev/null; then
		mkdir -m 755 "$R/dovecot"
		sed "s|@R@|$R|g; s|@SVC@|$SVC|g" > "$R/dovecot.tmpl" <<-'EOF'
		base_dir = @R@/dovecot/run
		state_dir = @R@/dovecot/state
		log_path = @R@/dovecot/dovecot.log
		protocols = pop3
		listen = 127.0.0.1
		ssl = no
		disable_plaintext_auth = no
		auth_mechanisms = plain
		mail_location = mbox:~/mail:INBOX=/var/mail/%u
		mail_privileged_group = mail
		default_internal_user = dovecot
		default_login_user = dovenull
		passdb {
		  driver = pam
		  args = @SVC@
		}
		userdb {
		  driver = passwd
		}
		service pop3-login {
		  inet_listener pop3 {
		    address = 127.0.0.1
		    port = @PORT@
		  }
		  inet_listener pop3s {
		    port = 0
		  }
		}
		EOF
		e2e_daemon dovecot dovecot -F -c "$R/dovecot.conf" || return 1
	fi
}

teardown_file() {
	[ -n "${R:-}" ] && [ -d "$R" ] || return 0
	[ ! -e "$R/made-popa3d-pam" ] || rm -f /etc/pam.d/popa3d
	[ ! -e "$R/made-popa3d-dir" ] || rmdir /var/lib/popa3d 2>/dev/null || true
	[ ! -e "$R/made-popa3d-user" ] || userdel popa3d 2>/dev/null || true
	e2e_cleanup
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root: makes system users, a /var/mail spool and PAM services"
}

need_popa3d() {
	[ -x "$POPA3D" ] || {
		echo "no popa3d at $POPA3D; as root, run sh quickstart.sh test, or:"
		echo "  mkdir -p $POPA3D_DIR.deb && cd $POPA3D_DIR.deb && apt-get download popa3d && dpkg-deb -x popa3d_*.deb $POPA3D_DIR"
		return 1
	}
}

need_dovecot() {
	[ -s "$R/dovecot.port" ] || {
		echo "no dovecot running; as root: apt-get install dovecot-pop3d (or sh quickstart.sh test)"
		return 1
	}
}

# The spool from the file $1, owned as Debian has it.
spool() {
	cp "$1" "/var/mail/$U"
	chown "$U:mail" "/var/mail/$U"
	chmod 600 "/var/mail/$U"
	rm -rf "/home/$U/mail" "/home/$U/.pop3-handler"
}

# USER, PASS, UIDL, QUIT on stdin of the server $@ (started as root, one
# session on stdin and stdout, as inetd runs it): its UIDL lines.
stdin_uidl() {
	printf 'USER %s\r\nPASS %s\r\nUIDL\r\nQUIT\r\n' "$U" "$(cat "$R/pass")" |
		timeout 120 "$@" | tr -d '\r' | awk 'NR > 4 && $0 == "." { exit } NR > 4'
}

popa3d_uidl() {
	stdin_uidl "$POPA3D"
}

ours_uidl() {
	stdin_uidl "$HANDLER" "${OPTS[@]}" "$@"
}

dovecot_uidl() {
	python3 - "$(cat "$R/dovecot.port")" "$U" "$R/pass" <<-'PY'
	import poplib, sys
	p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=120)
	p.user(sys.argv[2])
	p.pass_(open(sys.argv[3]).read().strip())
	for l in p.uidl()[1]:
	    print(l.decode())
	p.quit()
	PY
	# Dovecot's pop3 process, as the user, may still be writing the
	# mailbox after its last reply (as bench/pop3bench.py's settle says)
	local i
	for i in $(seq 200); do
		pgrep -u "$U" > /dev/null || return 0
		sleep 0.05
	done
	echo "a process of $U still runs 10 s after the Dovecot session" >&2
	return 1
}

# What we must list for the peer listing in $1 (drop: 1 when its first line
# is the pseudo-message, which we hide): renumbered, and every repeat of an
# id given ".2", ".3", ... in file order (README, "Unique-ids").
expected_from() {
	python3 - "$1" "${2:-0}" <<-'PY'
	import sys
	ids = [l.split(" ", 1)[1] for l in open(sys.argv[1]).read().splitlines()]
	ids = ids[int(sys.argv[2]):]
	seen = {}
	for n, i in enumerate(ids, 1):
	    seen[i] = seen.get(i, 0) + 1
	    print("%d %s" % (n, i if seen[i] == 1 else "%s.%d" % (i, seen[i])))
	PY
}

# Compares the listings $1 (expected) and $2 (ours), saying how many ids
# were compared and how many matched.
same_listing() {
	local n matched
	n=$(wc -l < "$1")
	matched=$(grep -cxFf "$1" "$2" || true)
	echo "$n ids compared, $matched matched"
	[ "$n" -gt 0 ]
	cmp "$1" "$2" || { diff "$1" "$2" | head -n 20; false; }
}

@test "popa3d 1.0.3 and -i popa3d list the awkward mailbox alike, byte for byte" {
	need_popa3d
	local v
	for v in "" --pseudo --no-final-newline; do
		python3 "$AWK" $v > "$R/box"
		spool "$R/box"
		popa3d_uidl > "$R/popa3d"
		expected_from "$R/popa3d" "$([ "$v" = --pseudo ] && echo 1 || echo 0)" > "$R/want"
		ours_uidl -i popa3d > "$R/ours"
		echo "gen-awkward.py $v:"
		same_listing "$R/want" "$R/ours"
		# two messages popa3d gives one id: we give the second ".2"
		grep -q '\.2$' "$R/ours"
		# and -M, run as root, reads the file as its owner and agrees
		"$HANDLER" -i popa3d -M "/var/mail/$U" | cmp - "$R/ours"
	done
}

@test "popa3d 1.0.3 and -i popa3d list a generated mailbox of 3,000 messages alike" {
	need_popa3d
	python3 "$BENCH_GEN" --count 3000 --size 20000000 --seed 14 -o "$R/box"
	spool "$R/box"
	popa3d_uidl > "$R/popa3d"
	[ "$(wc -l < "$R/popa3d")" -eq 3000 ]
	expected_from "$R/popa3d" > "$R/want"
	ours_uidl -i popa3d > "$R/ours"
	same_listing "$R/want" "$R/ours"
}

@test "Dovecot 2.3 and -i dovecot list the awkward mailbox alike once Dovecot has served it" {
	need_dovecot
	local v
	for v in "" --pseudo; do
		python3 "$AWK" $v > "$R/box"
		spool "$R/box"
		dovecot_uidl > "$R/dc.uidl"
		# it has written X-UID and X-IMAPbase into the mailbox, and lists
		# the same again
		grep -aq '^X-UID: ' "/var/mail/$U"
		dovecot_uidl | cmp - "$R/dc.uidl"
		ours_uidl -i dovecot > "$R/ours"
		echo "gen-awkward.py $v:"
		same_listing "$R/dc.uidl" "$R/ours"
		"$HANDLER" -i dovecot -M "/var/mail/$U" | cmp - "$R/ours"
	done
}

@test "Dovecot 2.3 and -i dovecot list a generated mailbox of 3,000 messages alike" {
	need_dovecot
	python3 "$BENCH_GEN" --count 3000 --size 20000000 --seed 15 -o "$R/box"
	spool "$R/box"
	dovecot_uidl > "$R/dc.uidl"
	[ "$(wc -l < "$R/dc.uidl")" -eq 3000 ]
	ours_uidl -i dovecot > "$R/ours"
	same_listing "$R/dc.uidl" "$R/ours"
}

@test "mail Dovecot never served has no X-UID: -i dovecot gives it its native id, and keeps the rest" {
	need_dovecot
	python3 "$AWK" > "$R/box"
	spool "$R/box"
	dovecot_uidl > "$R/dc.uidl"
	printf 'From late@example.org Mon Jan  5 11:00:00 2026\nSubject: after the switch\n\nlate\n\n' >> "/var/mail/$U"
	ours_uidl -i dovecot > "$R/ours"
	head -n -1 "$R/ours" | cmp - "$R/dc.uidl"
	[ "$(tail -n 1 "$R/ours")" = "$(ours_uidl -i native | tail -n 1)" ]
}

@test "on a mailbox Dovecot has stamped, popa3d and -i popa3d still agree; only the popa3d ids of messages with a CR LF empty line moved" {
	need_popa3d
	need_dovecot
	python3 "$AWK" > "$R/box"
	spool "$R/box"
	popa3d_uidl > "$R/before"
	dovecot_uidl > /dev/null
	grep -aq '^X-UID: ' "/var/mail/$U"
	popa3d_uidl > "$R/after"
	expected_from "$R/after" > "$R/want"
	ours_uidl -i popa3d > "$R/ours"
	same_listing "$R/want" "$R/ours"
	# Dovecot wrote the headers of messages 9 (CRLF) and 10 (a CR LF empty
	# line) back with a bare LF empty line, where popa3d's headers now end:
	# their body lines no longer count
	diff "$R/before" "$R/after" | grep '^[<>]' | cut -c3- | cut -d' ' -f1 | sort -nu > "$R/moved"
	echo "moved: $(tr "\n" " " < "$R/moved")"
	[ "$(tr "\n" " " < "$R/moved")" = "9 10 " ]
}
