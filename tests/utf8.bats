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
	pop3_session CAPA "USER alice" "PASS secret" CAPA QUIT
	[ "$(grep -cx 'UTF8 USER' <<< "$output")" -eq 2 ]
	[ "$(grep -cx 'LANG' <<< "$output")" -eq 2 ]
}

@test "UTF8 is +OK in AUTHORIZATION, a syntax error with an argument, unknown after login" {
	pop3_session "UTF8 x" UTF8 "USER alice" "PASS secret" UTF8 QUIT
	[ "${lines[1]}" = "-ERR Syntax error" ]
	[ "${lines[2]}" = "+OK UTF8 enabled" ]
	[ "${lines[5]}" = "-ERR Unknown command" ]
}

@test "after UTF8, a password is SASLprep'd: a decomposed e + U+0301 matches the stored precomposed one" {
	pop3_session UTF8 "USER dora" "PASS $(printf 'cafe\xcc\x81')" QUIT
	[ "${lines[3]}" = "+OK maildrop has 0 messages (0 octets)" ]
}

@test "without UTF8, the same password is taken byte for byte and fails" {
	pop3_session "USER dora" "PASS $(printf 'cafe\xcc\x81')" "USER dora" "PASS $(printf 'caf\xc3\xa9')" QUIT
	[ "${lines[2]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[4]}" = "+OK maildrop has 0 messages (0 octets)" ]
}

@test "after UTF8, invalid UTF-8 in a name or password fails like a wrong password" {
	pop3_session UTF8 "USER dora" "PASS $(printf 'caf\xe9')" "USER $(printf 'd\xffra')" "PASS $(printf 'caf\xc3\xa9')" QUIT
	[ "${lines[3]}" = "-ERR [AUTH] Authentication failed" ]
	[ "${lines[5]}" = "-ERR [AUTH] Authentication failed" ]
	grep -q 'not a valid user name' "$T/err"
}

@test "LANG lists en; LANG en, en-GB and * select it; another language is refused" {
	pop3_session LANG "LANG en" "LANG en-GB" "LANG *" "LANG fr" "LANG 1x" "LANG en-" "LANG abcdefghi" QUIT
	[ "${lines[1]}" = "+OK Language listing follows" ]
	[ "${lines[2]}" = "en English" ]
	[ "${lines[3]}" = "." ]
	[ "${lines[4]}" = "+OK en Language is English" ]
	[ "${lines[5]}" = "+OK en Language is English" ]
	[ "${lines[6]}" = "+OK en Language is English" ]
	[ "${lines[7]}" = "-ERR en Unsupported language" ]
	[ "${lines[8]}" = "-ERR Syntax error" ]
	[ "${lines[9]}" = "-ERR Syntax error" ]
	[ "${lines[10]}" = "-ERR Syntax error" ]
}

@test "LANG works after login too" {
	pop3_session "USER alice" "PASS secret" "LANG en" QUIT
	[ "${lines[3]}" = "+OK en Language is English" ]
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
