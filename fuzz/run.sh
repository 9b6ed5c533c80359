#!/bin/sh
# Runs each harness named in "$@" for FUZZ_SECONDS (default 60), one after
# the other, on its seed corpus (tests/fuzz-corpus/NAME, never written to)
# plus a scratch corpus in fuzz/corpus/NAME that carries over between runs.
# A crash, a leak, a timeout or an out-of-memory fails the run; its input is
# left in fuzz/artifacts/. Prints one line per harness with the executions.
#
# FUZZ_JOBS=N runs N workers per harness (default 1: the CI machine is small).
# FUZZ_ARGS adds libFuzzer options, e.g. FUZZ_ARGS=-runs=1000000.
# FUZZ_LIGHT=1 fuzzes with the light build (light/NAME: no ASan or UBSan,
# the same checks) and then replays every input of both corpora under the
# sanitized build, so that what the fast run reached is also checked for
# memory and undefined behaviour. A finding of either fails the run.
set -u
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
light=${FUZZ_LIGHT:-0}
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
	bin=./$h
	[ "$light" = 1 ] && bin=./light/$h
	start=$(date +%s)
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
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
	how=""
	if [ "$light" = 1 ] && [ "$result" = ok ]; then
		# -runs=0: every input of the corpora once, then stop.
		rlog="logs/$h.replay.log"
		"./$h" -runs=0 -max_len="$max_len" -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix="artifacts/$h-" \
			"corpus/$h" "$seeds" > "$rlog" 2>&1
		rc=$?
		replayed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$rlog")
		how=" (light build), ${replayed:-0} inputs replayed sanitized"
		if [ "$rc" -ne 0 ] ||
		    grep -q '^==[0-9]*==ERROR\|^SUMMARY: ' "$rlog"; then
			failed=1
			result="FAILED in the replay (exit $rc; see fuzz/$rlog and fuzz/artifacts/)"
			grep -m 3 'ERROR\|SUMMARY\|invariant\|Test unit written' \
				"$rlog" >&2
		fi
		end=$(date +%s)
	fi
	line="$h: $execs executions$how in $((end - start)) s: $result"
	echo "$line"
	summary="$summary$line
"
done
printf '\n%s' "$summary"
exit $failed
