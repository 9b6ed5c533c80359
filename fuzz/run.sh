#!/bin/sh
# Runs each harness named in "$@" for FUZZ_SECONDS (default 60), one after
# the other, on its seed corpus (tests/fuzz-corpus/NAME, never written to)
# plus a scratch corpus in fuzz/corpus/NAME that carries over between runs.
# A crash, a leak, a timeout or an out-of-memory fails the run; its input is
# left in fuzz/artifacts/. Prints one line per harness with the executions.
#
# FUZZ_JOBS=N runs N workers per harness (default 1: the CI machine is small).
# FUZZ_ARGS adds libFuzzer options, e.g. FUZZ_ARGS=-runs=1000000.
set -u
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
mkdir -p artifacts corpus logs
# Scratch files of the harnesses (mailboxes, secrets files): libFuzzer ends
# with _Exit(), which skips their own cleanup.
FUZZ_TMPDIR=$(mktemp -d /dev/shm/pop3-fuzz-run.XXXXXX 2>/dev/null ||
	mktemp -d /tmp/pop3-fuzz-run.XXXXXX)
export FUZZ_TMPDIR
trap 'rm -rf "$FUZZ_TMPDIR"' EXIT
failed=0
summary=""
for h in "$@"; do
	case $h in
	# With an 8-octet chunk, 2 KiB is 256 chunks: every path across a
	# chunk edge is reached, at four times the speed of 8 KiB.
	fuzz-mbox-chunk8) seeds=../tests/fuzz-corpus/fuzz-mbox; max_len=2048 ;;
	fuzz-mbox) seeds=../tests/fuzz-corpus/fuzz-mbox; max_len=8192 ;;
	fuzz-command) seeds=../tests/fuzz-corpus/fuzz-command; max_len=8192 ;;
	*) seeds=../tests/fuzz-corpus/$h; max_len=4096 ;;
	esac
	mkdir -p "corpus/$h"
	log="logs/$h.log"
	if [ "$jobs" -gt 1 ]; then
		par="-jobs=$jobs -workers=$jobs"
	else
		par=""
	fi
	start=$(date +%s)
	# shellcheck disable=SC2086
	"./$h" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="artifacts/$h-" $par ${FUZZ_ARGS:-} \
		"corpus/$h" "$seeds" > "$log" 2>&1
	rc=$?
	if [ "$jobs" -gt 1 ]; then
		cat fuzz-*.log >> "$log" 2>/dev/null
		rm -f fuzz-[0-9]*.log
	fi
	end=$(date +%s)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
		awk '{ s += $1 } END { print s + 0 }')
	if [ "$rc" -ne 0 ] || grep -q '^==[0-9]*==ERROR\|^SUMMARY: ' "$log"; then
		failed=1
		result="FAILED (exit $rc; see fuzz/$log and fuzz/artifacts/)"
		grep -m 3 'ERROR\|SUMMARY\|invariant\|Test unit written' "$log" >&2
	else
		result="ok"
	fi
	line="$h: $execs executions in $((end - start)) s: $result"
	echo "$line"
	summary="$summary$line
"
done
printf '\n%s' "$summary"
exit $failed
