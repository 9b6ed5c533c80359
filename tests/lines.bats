#!/usr/bin/env bats
# lines.c has a plain version of each loop over a message's bytes and vector
# ones (AVX2, AVX-512) picked by the CPU; a session runs only the best one the
# CPU has, so the other tests never reach the rest. tests/lines-check runs
# each version the CPU can run against a byte-at-a-time reference.

TOP="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"

setup() {
	make -s -C "$TOP" tests/lines-check
}

@test "every version of the body scan and the wire form this CPU runs matches the reference" {
	run "$TOP/tests/lines-check"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[[ "${lines[0]}" == "plain: ok "* ]]
	# Each vector version is checked, or named as skipped, never left out.
	[[ "${lines[1]}" == "avx2: ok "* || "${lines[1]}" == "avx2: skipped "* ]]
	[[ "${lines[2]}" == "avx512: ok "* || "${lines[2]}" == "avx512: skipped "* ]]
	# and where the CPU has one, it is checked.
	if grep -qw avx2 /proc/cpuinfo; then
		[[ "${lines[1]}" == "avx2: ok "* ]]
	fi
	if grep -qw avx512bw /proc/cpuinfo; then
		[[ "${lines[2]}" == "avx512: ok "* ]]
	fi
}
