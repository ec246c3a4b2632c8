#!/usr/bin/env bash
# tools/bench/large.sh: the large-model benchmark (docs/large-models.md).
#
#   tools/bench/large.sh [suite ...]     suites: exact nvflare clients (default all)
#
# Builds Release into $COHORT_BUILD_DIR (default build-release/) and runs
# tools/bench/large.py: gpt2-small exactness through both transports, the
# NVFlare scenario (gpt2-large, 6 clients, exchange only, 3 rounds) through
# shm and stream, and gpt2-small with 10 and 100 sampled clients. Needs
# about 20 GiB of memory; run nothing else big meanwhile.
# Workspaces live in a temporary directory removed at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${COHORT_BUILD_DIR:-$repo/build-release}
case "${1:-}" in -h | --help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target cohort-orchestrator cohort-worker >/dev/null
free -g | sed -n 1,2p
df -h /dev/shm | tail -1
exec python3 "$repo/tools/bench/large.py" "$build" "$@"
