#!/usr/bin/env bats
# RFC 6856: the UTF8 capability and command (UTF-8 names and passwords,
# SASLprep'd) and LANG, which knows English only.

load helpers

setup() {
	pop3_setup
	# café with a precomposed é (U+00E9)
	printf 'dora:caf\xc3\xa9:pop3\n' >> "$T/passdb"
}

teardown() {
	pop3_unlisten
	pop3_teardown
}

@test "CAPA advertises UTF8 USER and LANG in both states" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN
	S: TOP
	S: UIDL
	S: RESP-CODES
	S: AUTH-RESP-CODE
	S: PIPELINING
	S: UTF8 USER
	S: LANG
	S* IMPLEMENTATION *
	S: .
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 0 messages (0 octets)
	C: CAPA
	S: +OK Capability list follows
	S: USER
	S: SASL PLAIN LOGIN
	S: TOP
	S: UIDL
	S: RESP-CODES
	S: AUTH-RESP-CODE
	S: PIPELINING
	S: UTF8 USER
	S: LANG
	S* IMPLEMENTATION *
	S: .
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "UTF8 is +OK in AUTHORIZATION, a syntax error with an argument, unknown after login" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: UTF8 x
	S: -ERR Syntax error
	C: UTF8
	S: +OK UTF8 enabled
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 0 messages (0 octets)
	C: UTF8
	S: -ERR Unknown command
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "after UTF8, a password is SASLprep'd: a decomposed e + U+0301 matches the stored precomposed one" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: UTF8
	S: +OK UTF8 enabled
	C: USER dora
	S: +OK Send PASS
	C: PASS $(printf 'cafe\xcc\x81')
	S: +OK maildrop has 0 messages (0 octets)
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "without UTF8, the same password is taken byte for byte and fails" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: USER dora
	S: +OK Send PASS
	C: PASS $(printf 'cafe\xcc\x81')
	S: -ERR [AUTH] Authentication failed
	C: USER dora
	S: +OK Send PASS
	C: PASS $(printf 'caf\xc3\xa9')
	S: +OK maildrop has 0 messages (0 octets)
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "after UTF8, invalid UTF-8 in a name or password fails like a wrong password" {
	transcript <<-EOF
	S: +OK pop3-handler ready
	C: UTF8
	S: +OK UTF8 enabled
	C: USER dora
	S: +OK Send PASS
	C: PASS $(printf 'caf\xe9')
	S: -ERR [AUTH] Authentication failed
	C: USER $(printf 'd\xffra')
	S: +OK Send PASS
	C: PASS $(printf 'caf\xc3\xa9')
	S: -ERR [AUTH] Authentication failed
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
	grep -q 'not a valid user name' "$T/err"
}

@test "LANG lists en; LANG en, en-GB and * select it; another language is refused" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: LANG
	S: +OK Language listing follows
	S: en English
	S: .
	C: LANG en
	S: +OK en Language is English
	C: LANG en-GB
	S: +OK en Language is English
	C: LANG *
	S: +OK en Language is English
	C: LANG fr
	S: -ERR en Unsupported language
	C: LANG 1x
	S: -ERR Syntax error
	C: LANG en-
	S: -ERR Syntax error
	C: LANG abcdefghi
	S: -ERR Syntax error
	C: QUIT
	S: +OK pop3-handler signing off
	EOF
}

@test "LANG works after login too" {
	transcript <<-'EOF'
	S: +OK pop3-handler ready
	C: USER alice
	S: +OK Send PASS
	C: PASS secret
	S: +OK maildrop has 0 messages (0 octets)
	C: LANG en
	S: +OK en Language is English
	C: QUIT
	S: +OK pop3-handler signing off (0 messages left)
	EOF
}

@test "Python poplib: utf8(), then a UTF-8 password in another normal form logs in" {
	pop3_listen
	run python3 - "$PORT" <<-'PY'
	import poplib, sys
	p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
	caps = p.capa()
	assert "UTF8" in caps and caps["UTF8"] == ["USER"], caps
	print(p.utf8())
	p.user("dora")
	print(p.pass_("cafe\u0301"))
	print(p.stat())
	p.quit()
	PY
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "b'+OK UTF8 enabled'" ]
	[ "${lines[2]}" = "(0, 0)" ]
}
