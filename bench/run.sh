#!/bin/sh
# make bench / make bench-quick: as root, install what bench/packages.txt lists
# and is missing, then run bench/pop3bench.py, which prints one table.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: run as root: it installs Debian packages, makes a throwaway system user," >&2
	echo "       /var/mail spools and PAM services, and runs popa3d and Dovecot on loopback ports" >&2
	exit 1
fi

missing=
for p in $(grep -v '^#' bench/packages.txt); do
	case $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
if [ -n "$missing" ]; then
	echo "bench: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	# shellcheck disable=SC2086 # word splitting is wanted
	apt-get install -y --no-install-recommends $missing < /dev/null >&2
fi
exec python3 bench/pop3bench.py "$@"
