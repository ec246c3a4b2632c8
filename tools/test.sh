#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it. Installs what is missing,
# builds (warnings are errors), runs every test in the normal build, runs the
# unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer, runs
# each fuzzer for a bounded time, and fails if any cohort shared-memory
# segment is left behind.
#   COHORT_FUZZ_SECONDS  seconds per fuzz target (default 30; 0 skips fuzzing)
#   COHORT_JOBS          parallel build jobs (default: number of cores)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${COHORT_JOBS:-$(nproc)}
fuzz_seconds=${COHORT_FUZZ_SECONDS:-30}
failed=()

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
bash tools/install-deps.sh

shm_before=$(ls /dev/shm | grep -c '^cohort' || true)

step "build (warnings are errors)"
cmake -S . -B build -DCOHORT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

step "tests: unit + end to end"
if ! (cd build && ctest --output-on-failure --timeout 900 -j 1); then
	failed+=("ctest (normal build)")
fi

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCOHORT_WERROR=ON -DCOHORT_SANITIZE=ON -DCOHORT_CUDA=OFF \
	-DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j "$jobs"

step "tests: unit, sanitized"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if ! (cd build-asan && ctest --output-on-failure -L unit -E '^test_accuracy$' -j 1); then
	failed+=("ctest (sanitized unit tests)")
fi

if [ "$fuzz_seconds" -gt 0 ]; then
	step "fuzzing (${fuzz_seconds}s per target)"
	CC=clang cmake -S . -B build-fuzz -DCOHORT_FUZZ=ON -DCOHORT_SANITIZE=ON \
		-DCOHORT_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-fuzz -j "$jobs" --target all
	for fuzzer in build-fuzz/tests/fuzz_*; do
		[ -x "$fuzzer" ] || continue
		name=$(basename "$fuzzer")
		corpus_src="tests/fuzz/corpus/${name#fuzz_}"
		corpus=$(mktemp -d)
		[ -d "$corpus_src" ] && cp -r "$corpus_src"/. "$corpus"/
		log="build-fuzz/$name.log"
		if "$fuzzer" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
			-artifact_prefix="build-fuzz/$name-" "$corpus" >"$log" 2>&1; then
			execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
			echo "$name: ${execs:-?} executions, no crash"
		else
			echo "$name: FAILED (see $log)"
			tail -n 30 "$log"
			failed+=("$name")
		fi
		rm -rf "$corpus"
	done
fi

step "leaks of shared memory"
shm_after=$(ls /dev/shm | grep -c '^cohort' || true)
if [ "$shm_after" -gt "$shm_before" ]; then
	echo "cohort segments left in /dev/shm:"
	ls /dev/shm | grep '^cohort' | head
	failed+=("shared-memory leak")
else
	echo "none"
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
	echo "test.sh: FAILED: ${failed[*]}"
	exit 1
fi
echo "test.sh: all passed"
