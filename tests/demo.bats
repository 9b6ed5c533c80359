#!/usr/bin/env bats
# README's first command, "sh quickstart.sh demo", must keep working: a real
# session on the bundled sample mailbox that ends with a DELE committed.

@test "sh quickstart.sh demo runs a session on the sample mailbox and deletes one message" {
	cd "$BATS_TEST_DIRNAME/.."
	run sh quickstart.sh demo
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	grep -q '^S: +OK pop3-handler signing off (4 messages left)$' <<< "$output"
	grep -q '^== mailbox before: 5 messages' <<< "$output"
	grep -q '^== mailbox after: 4 messages' <<< "$output"
	grep -q '^S: \.\.hidden-file was not copied$' <<< "$output"
}
