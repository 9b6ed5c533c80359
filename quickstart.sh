#!/bin/sh
# quickstart.sh: build pop3-handler on Debian 12 and either show it working or
# run its test suite.
#
#   sh quickstart.sh demo   build, then run one real POP3 session on the
#                           bundled tests/sample.mbox and print the transcript
#   sh quickstart.sh test   build with -Werror, then run the suite (make check)
#   sh quickstart.sh harden make fuzz (each libFuzzer harness for 20 s) and
#                           make sanitize (the suite against an ASan+UBSan
#                           build); .ci/run does this before "test"
#
# As root it installs whatever Debian packages are missing first; as another
# user it prints the apt-get line to run and stops.
set -eu

usage() {
	echo "usage: sh quickstart.sh demo|test|harden" >&2
	exit 2
}
[ $# -eq 1 ] || usage
mode=$1
case $mode in demo|test|harden) ;; *) usage ;; esac

cd "$(dirname "$0")"

# The one list of Debian packages the project needs.
# To build and run the demo: compiler, make, the libraries' headers,
# liblockfile's setgid dotlockfile helper, bats, pam_wrapper, python3.
PKGS_DEMO="gcc libc6-dev make libpam0g-dev liblockfile-dev libmd-dev libxxhash-dev nettle-dev libidn-dev libcrypt-dev liblockfile-bin bats libpam-wrapper python3"
# The suite also drives real clients against the handler behind
# systemd-socket-activate, as root with real system users (tests/root.bats),
# and runs the shipped deployment files with xinetd and stunnel4, getmail6 as
# one more client, and groff/man to lint the man page (tests/deploy.bats,
# tests/clients.bats, tests/install.bats). It measures peak memory with
# /usr/bin/time (time), finds child processes with pgrep (procps) and runs
# whole sessions under valgrind (tests/limits.bats, tests/privsep.bats,
# tests/valgrind.bats). A minbase Debian 12 has none of these three.
# fail2ban-regex checks the shipped fail2ban filter (tests/fail2ban.bats);
# mutt is the client that tries CRAM-MD5 and APOP before USER/PASS
# (tests/mechanisms.bats). dovecot-pop3d is the real Dovecot whose UIDL
# listings -i dovecot must equal (tests/peers.bats runs its own master on a
# loopback port); popa3d, the other peer, conflicts with it and is never
# installed: its package is unpacked into POPA3D_DIR instead (below).
PKGS_TEST="mpop fetchmail mutt curl systemd procmail openssl util-linux passwd strace xinetd stunnel4 getmail6 groff-base man-db time procps valgrind fail2ban dovecot-pop3d"

# Where tests/peers.bats finds popa3d 1.0.3, unpacked from Debian's package.
POPA3D_DIR=/var/cache/pop3-handler-peers/popa3d

# Flags for the test build: the Makefile's defaults plus -Werror, as CI builds.
WERROR_CFLAGS="-O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror"

# make fuzz and make sanitize: clang, and its sanitizer runtimes.
PKGS_HARDEN="clang libclang-rt-14-dev"

pkgs=$PKGS_DEMO
[ "$mode" = test ] && pkgs="$PKGS_DEMO $PKGS_TEST"
[ "$mode" = harden ] && pkgs="$PKGS_DEMO $PKGS_TEST $PKGS_HARDEN"

# --- 1. packages -----------------------------------------------------------
missing=
if command -v dpkg-query >/dev/null 2>&1; then
	for p in $pkgs; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case $st in
		*" installed") ;;
		*) missing="$missing $p" ;;
		esac
	done
else
	echo "quickstart: no dpkg-query here; not checking for packages: $pkgs" >&2
fi

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "quickstart: missing packages:$missing" >&2
		echo "Run as root:" >&2
		echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
		exit 1
	fi
	echo "quickstart: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	# shellcheck disable=SC2086 # word splitting is wanted
	apt-get install -y --no-install-recommends $missing < /dev/null
	case " $missing " in
	*" dovecot-pop3d "*)
		# Installed here for the tests, which run a master of their own:
		# the daemon the package starts and enables would listen on 110
		# and 995 as root, and outlive the run.
		echo "quickstart: stopping and disabling the dovecot service the package started"
		if [ -d /run/systemd/system ]; then
			systemctl disable --now dovecot.service dovecot.socket || true
		else
			invoke-rc.d dovecot stop || true
			update-rc.d dovecot disable || true
		fi
		;;
	esac
fi

# popa3d for tests/peers.bats (run by test, and by harden's make sanitize),
# as bench/pop3bench.py gets it: the package downloaded and unpacked, not
# installed.
if [ "$mode" != demo ] && [ ! -x "$POPA3D_DIR/usr/sbin/popa3d" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "quickstart: tests/peers.bats needs popa3d in $POPA3D_DIR; run as root: sh quickstart.sh test" >&2
	else
		echo "quickstart: unpacking popa3d into $POPA3D_DIR"
		deb=$(mktemp -d)
		if ! (cd "$deb" && apt-get -o APT::Sandbox::User=root download popa3d); then
			apt-get update
			(cd "$deb" && apt-get -o APT::Sandbox::User=root download popa3d)
		fi
		mkdir -p "$POPA3D_DIR"
		dpkg-deb -x "$deb"/popa3d_*.deb "$POPA3D_DIR"
		rm -rf "$deb"
	fi
fi

# --- 2. build and test -----------------------------------------------------
if [ "$mode" = harden ]; then
	make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
	make sanitize
	exit 0
fi
if [ "$mode" = test ]; then
	# -B: an earlier build without -Werror must not let warnings through.
	make -B CFLAGS="$WERROR_CFLAGS"
	# make check ends with tests/run's "N passed, N failed"; when tests fail,
	# make adds its own error line after it, so say the count again last.
	log=$(mktemp)
	trap 'rm -f "$log" "$log.rc"' EXIT
	{
		rc=0
		make CFLAGS="$WERROR_CFLAGS" check 2>&1 || rc=$?
		echo "$rc" > "$log.rc"
	} | tee "$log"
	status=$(cat "$log.rc")
	if [ "$status" -ne 0 ]; then
		summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
		[ -z "$summary" ] || echo "$summary"
	fi
	exit "$status"
fi

make

# --- 3. demo ---------------------------------------------------------------
pam_wrapper_lib=$(find /usr/lib /usr/lib64 -name libpam_wrapper.so 2>/dev/null | head -n 1)
pam_matrix=$(find /usr/lib /usr/lib64 -name pam_matrix.so -path '*pam_wrapper*' 2>/dev/null | head -n 1)
if [ -z "$pam_wrapper_lib" ] || [ -z "$pam_matrix" ]; then
	echo "quickstart: libpam_wrapper.so or pam_matrix.so not found (package libpam-wrapper)" >&2
	exit 1
fi

tmp=$(mktemp -d /tmp/pop3-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
chmod 755 "$tmp"
mkdir "$tmp/mail" "$tmp/state" "$tmp/pam.d"
cp tests/sample.mbox "$tmp/mail/demo"
chmod 600 "$tmp/mail/demo"

# A PAM service "pop3" that pam_wrapper loads instead of /etc/pam.d/pop3, with
# pam_matrix checking user "demo", password "demo" against a private passdb.
echo "demo:demo:pop3" > "$tmp/passdb"
for t in auth account; do
	echo "$t required $pam_matrix passdb=$tmp/passdb"
done > "$tmp/pam.d/pop3"
# libpam wants a fallback service "other": one that lets nobody in.
for t in auth account; do
	echo "$t required $pam_matrix passdb=$tmp/nobody"
done > "$tmp/pam.d/other"

# Started as root, the handler would serve only real system users; run it as
# nobody instead (as the suite does), which serves that user's own files.
if [ "$(id -u)" -eq 0 ]; then
	chown -R nobody:nogroup "$tmp/mail" "$tmp/state"
	set -- setpriv --reuid=nobody --regid=nogroup --clear-groups --
else
	set --
fi

count() {
	# Messages in an mbox: From_ lines at the start or after an empty line.
	if [ -f "$1" ]; then
		awk 'BEGIN { n = 0 } /^From / && (NR == 1 || prev == "") { n++ } { prev = $0 } END { print n }' "$1"
	else
		echo 0
	fi
}

printf '%s\r\n' "USER demo" "PASS demo" "CAPA" "STAT" "LIST" "UIDL" "TOP 1 0" \
	"RETR 2" "DELE 1" "QUIT" > "$tmp/in"

echo
echo "== mailbox before: $(count "$tmp/mail/demo") messages, $(wc -c < "$tmp/mail/demo") bytes ($tmp/mail/demo)"
echo "== session: ./pop3-handler -d -m $tmp/mail/%u -D $tmp/state/%u  (C: client, S: server)"
echo
rc=0
env LD_PRELOAD="$pam_wrapper_lib" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$tmp/pam.d" \
	"$@" ./pop3-handler -d -m "$tmp/mail/%u" -D "$tmp/state/%u" < "$tmp/in" > "$tmp/out" 2> "$tmp/err" || rc=$?

# Interleave the client's lines with the replies: a reply is one line, or for
# a multi-line command answered +OK, everything up to the lone ".".
tr -d '\r' < "$tmp/in" > "$tmp/in.lf"
tr -d '\r' < "$tmp/out" | awk -v cmds="$tmp/in.lf" '
	function reply(multi,   line) {
		if ((getline line) <= 0) { print "S: (connection closed)"; exit }
		print "S: " line
		if (!multi || line !~ /^\+OK/) return
		while ((getline line) > 0) {
			print "S: " line
			if (line == ".") return
		}
	}
	BEGIN {
		reply(0)
		while ((getline cmd < cmds) > 0) {
			print "C: " cmd
			n = split(cmd, w, " ")
			k = toupper(w[1])
			reply(k == "CAPA" || k == "TOP" || k == "RETR" || ((k == "LIST" || k == "UIDL") && n == 1))
		}
		while ((getline line) > 0) print "S: " line
	}'
echo
echo "== handler exit status: $rc"
if [ -s "$tmp/err" ]; then
	echo "== handler log (-d):"
	sed 's/^/   /' "$tmp/err"
fi
echo "== mailbox after: $(count "$tmp/mail/demo") messages, $(wc -c < "$tmp/mail/demo") bytes"
exit $rc
