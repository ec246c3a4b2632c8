#!/usr/bin/env bash
# run.sh: run a federated job end to end.
#
#   ./run.sh [NBCLIENTS NBMINCLIENTS NBFITCLIENTS NBROUNDS] [--config FILE]
#            [--set key.path=value ...] [--workspace-root DIR | --workspace DIR]
#   ./run.sh --resume WORKSPACE
#   ./run.sh --help | --version
#
# No arguments runs the default job (2 2 2 3: MLP on Fashion-MNIST, FedAvg).
# On a fresh Debian machine it installs what running a job needs
# (tools/install-deps.sh run: as root; otherwise it prints the apt-get
# command to run), builds in build-release/ when needed, then starts
# cohort-orchestrator. Workspaces go to workspaces/ beside this
# script unless --workspace-root says otherwise; --workspace DIR is the job's
# own directory, continued when it already holds the same job (docs/hpc.md).
set -euo pipefail

root=$(cd "$(dirname "$0")" && pwd)
build="$root/build-release"

# The header comment above, from its third line to the first code line.
usage() {
	sed -n '3,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
--version)
	sed -n 's/^project(cohort VERSION \([^ ]*\).*/cohort \1/p' "$root/CMakeLists.txt"
	exit 0
	;;
esac

# Positional arguments must be four non-negative integers (or none).
positional=()
while [ $# -gt 0 ] && [[ "$1" != --* ]]; do
	positional+=("$1")
	shift
done
if [ ${#positional[@]} -ne 0 ] && [ ${#positional[@]} -ne 4 ]; then
	echo "run.sh: expected 4 numbers (NBCLIENTS NBMINCLIENTS NBFITCLIENTS NBROUNDS) or none, got ${#positional[@]}: ${positional[*]}" >&2
	usage >&2
	exit 2
fi
for n in "${positional[@]}"; do
	if ! [[ "$n" =~ ^[0-9]+$ ]]; then
		echo "run.sh: '$n' is not a non-negative integer" >&2
		usage >&2
		exit 2
	fi
done

# Dependencies: only the check runs when everything is there.
if ! bash "$root/tools/install-deps.sh" --check run >/dev/null 2>&1; then
	bash "$root/tools/install-deps.sh" run >&2
fi

# Build when missing or when a source is newer than the binaries (a no-op
# make pass alone would cost a third of a second on every start).
if [ ! -f "$build/CMakeCache.txt" ]; then
	echo "run.sh: configuring a release build in $build" >&2
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCOHORT_TESTS=OFF >/dev/null
fi
orchestrator="$build/orchestrator/cohort-orchestrator"
stale=1
if [ -x "$orchestrator" ] && [ -x "$build/worker/cohort-worker" ]; then
	newer=$(find "$root/CMakeLists.txt" "$root/ipc" "$root/worker" \
		"$root/launcher" "$root/orchestrator" -newer "$orchestrator" \
		\( -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' -o -name CMakeLists.txt \) \
		-print -quit)
	[ -z "$newer" ] && stale=0
fi
if [ $stale -eq 1 ] &&
	! cmake --build "$build" -j "$(nproc)" >"$build/last-build.log" 2>&1; then
	tail -n 40 "$build/last-build.log" >&2
	echo "run.sh: build failed (full log: $build/last-build.log)" >&2
	exit 1
fi

args=("${positional[@]}")
have_config=0
have_root=0
for a in "$@"; do
	case "$a" in
	--config) have_config=1 ;;
	--workspace-root | --workspace) have_root=1 ;;
	--resume) have_root=1 have_config=1 ;;
	esac
done
if [ $have_config -eq 0 ]; then
	args+=(--config "$root/configs/fedavg-mlp.json")
fi
if [ $have_root -eq 0 ]; then
	args+=(--workspace-root "$root/workspaces")
fi

# The checkout's commit, for the MLflow run's mlflow.source.git.commit tag,
# when this is a git checkout and the caller has not set one.
if [ -z "${COHORT_GIT_REVISION:-}" ] &&
	rev=$(git -C "$root" rev-parse HEAD 2>/dev/null); then
	export COHORT_GIT_REVISION=$rev
fi

exec "$orchestrator" "${args[@]}" "$@"
