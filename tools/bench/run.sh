#!/usr/bin/env bash
# tools/bench/run.sh: build cohort in Release mode and run benchmark suites.
#
#   tools/bench/run.sh [--snapshot] [--out DIR] [--repeats N] [suite ...]
#
# Suites: overhead, scaling, scale, fidelity, standalone, engine, privacy,
# gpt2 (none named = all). Each prints a table and writes SUITE.csv,
# SUITE.md and SUITE.svg into DIR (default build-release/bench/). Numbers
# are medians of N repeats (default 3); BENCHMARKS.md says what each one
# counts. --snapshot benchmarks the committed HEAD (git archive into a
# temporary tree with its own build-release/) instead of the working tree,
# which may hold others' unfinished files. Job workspaces live in temporary
# directories that are removed after each job.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
root=$repo
out="$repo/build-release/bench"
snapshot=0
pass=()
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help)
		sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	--snapshot) snapshot=1 ;;
	--out)
		out=$(realpath -m "$2")
		shift
		;;
	*) pass+=("$1") ;;
	esac
	shift
done

if [ $snapshot -eq 1 ]; then
	root=$(mktemp -d /tmp/cohort-bench-src.XXXXXX)
	trap 'rm -rf "$root"' EXIT
	git -C "$repo" archive HEAD | tar -x -C "$root"
	echo "bench: snapshot of $(git -C "$repo" rev-parse --short HEAD) in $root" >&2
fi
build="$root/build-release"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
if ! cmake --build "$build" -j "$(nproc)" >"$build/bench-build.log" 2>&1; then
	tail -n 40 "$build/bench-build.log" >&2
	echo "bench: build failed (full log: $build/bench-build.log);" \
		"try --snapshot to benchmark the committed tree" >&2
	exit 1
fi

mkdir -p "$out"
what=$(git -C "$repo" rev-parse --short HEAD)
if [ $snapshot -eq 1 ]; then what="$what (snapshot)"; else what="$what + working tree"; fi
COHORT_BENCH_ROOT=$root COHORT_BENCH_COMMIT=$what \
	python3 "$repo/tools/bench/bench.py" --out "$out" ${pass[@]+"${pass[@]}"}
