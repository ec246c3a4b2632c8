# lib/fake.sh: what the end-to-end tests that drive cohort-orchestrator with
# the fake worker share. Sourced by tests/e2e/*.sh (ctest runs only the
# scripts directly in tests/e2e/, not this one). A script may redefine run()
# after sourcing, e.g. to add --set options of its own. KEEP=1 keeps $tmp.
set -euo pipefail
build=${COHORT_BUILD_DIR:?set COHORT_BUILD_DIR to a cohort build directory}
orch=$build/orchestrator/cohort-orchestrator
fake=$build/tests/cohort-test-fake-worker
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# A job with the fake worker; "$@" are cohort-orchestrator's arguments.
run() { "$orch" "$@" --set launcher.worker="$fake" --set output.progress=never; }
# The same in the background; $! is the orchestrator's own pid.
run_bg() { "$orch" "$@" --set launcher.worker="$fake" --set output.progress=never & }
# Pids of workers of the workspace $1 or of any workspace under the root $1
# (every worker's environment carries COHORT_WORKSPACE).
workers_of() { grep -l "COHORT_WORKSPACE=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true; }
# Shared-memory segments of every job logged under $1 (a workspace or a
# workspace root).
segments_of() {
	local log k
	for log in $(find "$1" -maxdepth 3 -path '*/logs/orchestrator.log' 2>/dev/null); do
		for k in $(sed -n 's/.*job key \([0-9]*-[0-9a-f]*\),.*/\1/p' "$log"); do
			ls /dev/shm | grep "^cohort\.$k\." || true
		done
	done
}
# Fail unless every worker under $1 is gone and every segment unlinked.
check_clean() {
	[ -z "$(workers_of "$1")" ] || fail "$1: worker processes left: $(workers_of "$1")"
	[ -z "$(segments_of "$1")" ] || fail "$1: segments left: $(segments_of "$1")"
	return 0
}
# Skip the test (exit 77) unless Debian's Fashion-MNIST is installed.
need_fashion_mnist() {
	[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || {
		echo "SKIPPED: Fashion-MNIST missing (apt-get install dataset-fashion-mnist)"
		exit 77
	}
}
# The final model of the one job under workspace root $1.
model_of() { ls "$1"/*/results/global_model.safetensors; }
