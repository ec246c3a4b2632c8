#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it. Installs what is missing
# (tools/install-deps.sh test), checks the formatting (clang-format), builds
# (warnings are errors), runs every test in the normal build, runs the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer, runs each
# fuzzer for a bounded time, runs the README's commands on a fresh Debian 12
# root (tools/fresh-check.sh), and fails if any cohort shared-memory segment
# is left behind. A test that skips (exit 77) fails the run unless it is one
# of the GPU tests (ctest label "gpu").
#   ./tools/test.sh [--deps-only]   --deps-only: the dependency step alone
#   COHORT_FUZZ_SECONDS  seconds per fuzz target (default 30; 0 skips fuzzing)
#   COHORT_FRESH_CHECK   0 skips the fresh-root stage (default 1)
#   COHORT_JOBS          parallel build jobs (default: number of cores)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${COHORT_JOBS:-$(nproc)}
fuzz_seconds=${COHORT_FUZZ_SECONDS:-30}
failed=()

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
bash tools/install-deps.sh test
if [ "${1:-}" = "--deps-only" ]; then
	exit 0
fi

# ctest in build directory $1 with the rest as its arguments; a failed test
# fails the run, and so does a skipped one that is not a GPU test.
run_ctest() {
	local dir=$1 name=$2
	shift 2
	if ! (cd "$dir" && ctest --output-on-failure "$@") 2>&1 | tee "$dir/ctest.log"; then
		failed+=("$name")
	fi
	local allowed skipped t bad=()
	allowed=$(cd "$dir" && ctest -N -L gpu | sed -n 's/^ *Test *#[0-9]*: //p')
	skipped=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (Skipped)$/\1/p' "$dir/ctest.log")
	for t in $skipped; do
		grep -qx "$t" <<<"$allowed" || bad+=("$t")
	done
	if [ ${#bad[@]} -gt 0 ]; then
		echo "test.sh: skipped, and only the GPU tests may skip: ${bad[*]} (each one's reason is in its output above)"
		failed+=("skipped in $name: ${bad[*]}")
	fi
}

step "formatting (clang-format)"
if ! find ipc launcher orchestrator worker tests tools \( -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' \) -print0 |
	xargs -0 clang-format --dry-run -Werror; then
	echo "test.sh: run clang-format -i on the files named above"
	failed+=("formatting")
fi

shm_before=$(ls /dev/shm | grep -c '^cohort' || true)

step "build (warnings are errors)"
cmake -S . -B build -DCOHORT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

step "tests: unit + end to end"
run_ctest build "ctest (normal build)" --timeout 900 -j 1

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCOHORT_WERROR=ON -DCOHORT_SANITIZE=ON -DCOHORT_CUDA=OFF \
	-DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j "$jobs"

step "tests: unit, sanitized"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_ctest build-asan "ctest (sanitized unit tests)" -L unit -E '^test_accuracy$' -j 1

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

if [ "${COHORT_FRESH_CHECK:-1}" = 0 ]; then
	step "fresh Debian 12 root: skipped (COHORT_FRESH_CHECK=0)"
else
	step "fresh Debian 12 root: ./run.sh, the test dependencies, the .deb"
	if ! bash tools/fresh-check.sh; then
		failed+=("fresh-root check")
	fi
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
