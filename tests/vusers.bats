#!/usr/bin/env bats
# Virtual users (-v, -U, -H): a passwd-style file of user:hash[:mailbox]
# lines checked with libxcrypt, the users all mapped to one system account.
# As in the rest of the suite the handler runs as nobody here, so -U is
# omitted (ourselves); the last tests run it as root, privileges separated,
# with a throwaway -U account.

load helpers

setup() {
	pop3_setup
	mbox vera <<'EOF2'
From bob@example.org Mon Jan  1 00:00:00 2024
From: Bob <bob@example.org>
Subject: for vera

Hello vera.

EOF2
	HASH="$(echo 'vera pass' | "$HANDLER" -H)"
}

teardown() {
	pop3_unlisten
	[ -n "${U:-}" ] && userdel "$U" 2>/dev/null || true
	pop3_teardown
}

b64() {
	printf '%b' "$1" | base64 -w0
}

# Writes the virtual users file from stdin as the handler's own: mode 600,
# owned by the user it runs as (root's when it runs as root).
vusers() {
	cat > "$T/vusers"
	chmod 600 "$T/vusers"
	if [ "$(id -u)" = 0 ] && [ "${#RUNAS[@]}" -gt 0 ]; then
		chown nobody:nogroup "$T/vusers"
	fi
}

# crypt_r (through Python's crypt module) of password $1 with setting $2.
pycrypt() {
	python3 -W ignore -c 'import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))' "$1" "$2"
}

@test "-H prints a yescrypt hash (\$y\$) of the stdin password that crypt_r verifies, a new salt each time" {
	[[ "$HASH" == '$y$'* ]]
	[ "$(pycrypt 'vera pass' "$HASH")" = "$HASH" ]
	[ "$(pycrypt 'vera pasS' "$HASH")" != "$HASH" ]
	run "$HANDLER" -H <<< 'vera pass'
	[ "$status" -eq 0 ]
	[ "$output" != "$HASH" ]
	[ "$(pycrypt 'vera pass' "$output")" = "$output" ]
	printf 'no newline' | "$HANDLER" -H | grep -q '^\$y\$'
}

@test "-H refuses an empty or overlong password, and extra arguments" {
	run "$HANDLER" -H < /dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"no password"* ]]
	run "$HANDLER" -H <<< ''
	[ "$status" -eq 1 ]
	[[ "$output" == *"empty password"* ]]
	run "$HANDLER" -H <<< "$(head -c 201 /dev/zero | tr '\0' x)"
	[ "$status" -eq 1 ]
	[[ "$output" == *"too long"* ]]
	run "$HANDLER" -H extra <<< 'x'
	[ "$status" -eq 2 ]
}

@test "a virtual user with a yescrypt hash logs in to the -m mailbox, %u its name" {
	vusers <<< "# virtual users
vera:$HASH

"
	transcript -v "$T/vusers" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER vera
	S: +OK Send PASS
	C: PASS vera pass
	S* +OK maildrop has 1 message*
	C: STAT
	S: +OK 1 63
	C: RETR 1
	S: +OK 63 octets
	S: From: Bob <bob@example.org>
	S: Subject: for vera
	S:
	S: Hello vera.
	S: .
	C: QUIT
	S* +OK pop3-handler signing off*
	EOF
	grep -q 'login: user=vera .*method=PASS' "$T/err"
	[ "$status" -eq 0 ]
}

@test "a wrong password gets -ERR [AUTH] Authentication failed" {
	vusers <<< "vera:$HASH"
	transcript -v "$T/vusers" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER vera
	S: +OK Send PASS
	C: PASS vera pasS
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	grep -q 'virtual users: wrong password' "$T/err"
	grep -q 'authentication failed: user=vera .*virtual user refused' "$T/err"
}

@test "with -v, a user not in the file gets -ERR [AUTH], and PAM is never asked" {
	vusers <<< "vera:$HASH"
	mbox alice < /dev/null
	# alice/secret is good in PAM's passdb: not here.
	transcript -v "$T/vusers" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: -ERR [AUTH] Authentication failed
	C: USER nobody2
	S: +OK Send PASS
	C: PASS x
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	[ "$(grep -c 'virtual users: no such user' "$T/err")" -eq 2 ]
	! grep -q 'PAM' "$T/err"
}

# The seconds from the start of a session to its "virtual users:" log line,
# which comes right after crypt_r and before the failure delay: startup, file
# and crypt, not the delay. $1: the user.
crypt_time() {
	printf 'USER %s\r\nPASS wrong\r\nQUIT\r\n' "$1" > "$T/in"
	python3 - "$T/in" "${RUNAS[@]}" "$HANDLER" -d -m "$T/mail/%u" -D "$T/state/%u" -v "$T/vusers" <<'EOF2'
import subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[2:], stdin=open(sys.argv[1]),
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
for line in p.stderr:
    if b"virtual users:" in line:
        print("%.6f" % (time.monotonic() - t0))
        break
p.kill()
p.wait()
EOF2
}

@test "an unknown user costs the same crypt_r as a known user's wrong password (0.5x to 2x)" {
	vusers <<< "vera:$HASH"
	pop3_own
	local i known=0 unknown=0 t
	for i in 1 2 3 4 5; do
		t="$(crypt_time vera)"
		known="$(python3 -c "print($known + $t)")"
		t="$(crypt_time nosuchuser)"
		unknown="$(python3 -c "print($unknown + $t)")"
	done
	echo "known $known unknown $unknown"
	python3 -c "import sys; r = $unknown / $known; print(r); sys.exit(not 0.5 <= r <= 2)"
}

@test "legacy hashes (DES, MD5) are refused with a log line naming crypt_checksalt, even with the right password" {
	vusers <<-EOF
	des:abNANd1rDfiNc
	md5:$(pycrypt secret '$1$saltsalt$')
	sha256:$(pycrypt secret '$5$saltsalt$')
	locked:!$HASH
	EOF
	for u in des md5 sha256 locked; do
		mbox "$u" < /dev/null
	done
	transcript -v "$T/vusers" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER des
	S: +OK Send PASS
	C: PASS secret
	S: -ERR [AUTH] Authentication failed
	C: USER md5
	S: +OK Send PASS
	C: PASS secret
	S: -ERR [AUTH] Authentication failed
	C: USER sha256
	S: +OK Send PASS
	C: PASS secret
	S: -ERR [AUTH] Too many failures
	C: QUIT
	EOF
	grep -q 'des: hash refused by crypt_checksalt: legacy method' "$T/err"
	grep -q 'md5: hash refused by crypt_checksalt: legacy method' "$T/err"
	grep -q 'sha256: hash refused by crypt_checksalt: legacy method' "$T/err"
	transcript -v "$T/vusers" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER locked
	S: +OK Send PASS
	C: PASS vera pass
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	grep -q 'locked: hash refused by crypt_checksalt: not a hash' "$T/err"
}

@test "a group-readable virtual users file, or a symlink to one, is refused with a log line" {
	vusers <<< "vera:$HASH"
	chmod 640 "$T/vusers"
	transcript -v "$T/vusers" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER vera
	S: +OK Send PASS
	C: PASS vera pass
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	grep -q "$T/vusers: refused: it must be a regular file owned by root or uid [0-9]*, mode 600 or less" "$T/err"
	chmod 600 "$T/vusers"
	ln -s "$T/vusers" "$T/link"
	transcript -v "$T/link" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER vera
	S: +OK Send PASS
	C: PASS vera pass
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	grep -q "$T/link: Too many levels of symbolic links" "$T/err"
}

@test "an entry's own mailbox template wins over -m" {
	mkdir "$T/mail/other"
	mv "$T/mail/vera" "$T/mail/other/vera.mbox"
	vusers <<< "vera:$HASH:$T/mail/other/%u.mbox"
	transcript -v "$T/vusers" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER vera
	S: +OK Send PASS
	C: PASS vera pass
	S* +OK maildrop has 1 message*
	C: STAT
	S: +OK 1 63
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	[ "$status" -eq 0 ]
	vusers <<< "vera:$HASH:$T/mail/%x"
	transcript -v "$T/vusers" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER vera
	S: +OK Send PASS
	C: PASS vera pass
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	grep -q 'bad mailbox template in the virtual users file' "$T/err"
}

@test "SASL PLAIN and LOGIN work for a virtual user" {
	vusers <<< "vera:$HASH"
	transcript -v "$T/vusers" <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(b64 '\0vera\0vera pass')
	S* +OK maildrop has 1 message*
	C: STAT
	S: +OK 1 63
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	grep -q 'login: user=vera .*method=PLAIN' "$T/err"
	transcript -v "$T/vusers" <<-EOF
	S: +OK pop3-handler ready
	C: AUTH LOGIN
	S: + VXNlcm5hbWU6
	C: $(b64 vera)
	S: + UGFzc3dvcmQ6
	C: $(b64 'vera pass')
	S* +OK maildrop has 1 message*
	C: STAT
	S: +OK 1 63
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
}

@test "curl --login-options AUTH=PLAIN fetches a virtual user's message" {
	vusers <<< "vera:$HASH"
	pop3_listen -v "$T/vusers"
	run curl -sS --max-time 30 --login-options AUTH=PLAIN -u 'vera:vera pass' "pop3://127.0.0.1:$PORT/1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Hello vera."* ]]
	grep -q 'login: user=vera .*method=PLAIN' "$T/err"
}

@test "-v refuses -a, a -D without %u, and -U without -v; as non-root -U must be ourselves" {
	vusers <<< "vera:$HASH"
	printf 'QUIT\r\n' > "$T/in"
	pop3_run -v "$T/vusers" -a "$T/vusers"
	[ "$status" -eq 2 ]
	grep -q -- '-v takes no -a' "$T/err"
	pop3_run -v "$T/vusers" -D "$T/state/shared"
	[ "$status" -eq 2 ]
	pop3_run -U nobody
	[ "$status" -eq 2 ]
	pop3_run -v "$T/vusers" -U root
	[ "$status" -eq 1 ]
	grep -q -- '-U root: not started as root' "$T/err"
	if [ "$(id -u)" = 0 ]; then me=nobody; else me="$(id -un)"; fi
	pop3_run -v "$T/vusers" -U "$me"
	[ "$status" -eq 0 ]
}

# Root, privileges separated: the root part reads the file (root's, 600) and
# checks the hash; the session runs as the -U account, %h its home.
root_setup() {
	[ "$(id -u)" = 0 ] || skip "privilege separation happens only when started as root"
	RUNAS=()
	U="p3v$$"
	U="${U:0:16}"
	useradd --system --no-create-home --home-dir "$T/home" --shell /usr/sbin/nologin "$U"
	mkdir -p "$T/home"
	mv "$T/mail/vera" "$T/home/vera.mbox"
	chown -R "$U" "$T/home" "$T/mail" "$T/state"
	vusers <<< "vera:$HASH:%h/%u.mbox"
	pop3_own() { :; }
}

@test "as root: a virtual user logs in through the root part, as the -U account, mailbox under its %h" {
	root_setup
	transcript -v "$T/vusers" -U "$U" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER vera
	S: +OK Send PASS
	C: PASS vera pass
	S* +OK maildrop has 1 message*
	C: STAT
	S: +OK 1 63
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	[ "$status" -eq 0 ]
	transcript -v "$T/vusers" -U "$U" <<-EOF
	S: +OK pop3-handler ready
	C: AUTH PLAIN $(b64 '\0vera\0vera pass')
	S: +OK maildrop has 1 message (63 octets)
	C: RETR 1
	S: +OK 63 octets
	S: From: Bob <bob@example.org>
	S: Subject: for vera
	S:
	S: Hello vera.
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (1 message left)
	EOF
	# The state directory (-D) is the account's, as is the mailbox.
	[ "$(stat -c %U "$T/state/vera")" = "$U" ]
	[ "$(stat -c %U "$T/home/vera.mbox")" = "$U" ]
	transcript -v "$T/vusers" -U "$U" <<-'EOF'
	S: +OK pop3-handler ready
	C: USER vera
	S: +OK Send PASS
	C: PASS wrong
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	grep -q 'virtual users: wrong password' "$T/err"
}

@test "as root: the default state directory is %h/.pop3-handler.%u; -v needs -U, and never uid 0" {
	root_setup
	printf 'USER vera\r\nPASS vera pass\r\nDELE 1\r\nQUIT\r\n' > "$T/in"
	"$HANDLER" -d -v "$T/vusers" -U "$U" < "$T/in" > "$T/out" 2> "$T/err"
	grep -q '^+OK maildrop has 1 message' "$T/out"
	[ -d "$T/home/.pop3-handler.vera" ]
	[ "$(stat -c %U "$T/home/.pop3-handler.vera")" = "$U" ]
	[ ! -s "$T/home/vera.mbox" ]
	printf 'QUIT\r\n' > "$T/in"
	pop3_run -v "$T/vusers"
	[ "$status" -eq 1 ]
	grep -q 'need a system account to map to (-U)' "$T/err"
	pop3_run -v "$T/vusers" -U root
	[ "$status" -eq 1 ]
	grep -q 'root: refused: uid 0 is never served' "$T/err"
}
