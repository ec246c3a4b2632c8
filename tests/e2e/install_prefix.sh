#!/usr/bin/env bash
# install_prefix.sh: `cmake --install BUILD --prefix P` lays cohort out as a
# packager expects (programs in bin, the worker in libexec/cohort, configs in
# share/cohort, documents in share/doc/cohort), every installed program
# answers --version with the project's version, and the installed
# orchestrator, started from another directory with the installed config,
# runs a job with the installed worker (not the build tree's) and puts the
# workspace in the current directory.
set -euo pipefail
build=${COHORT_BUILD_DIR:?}
. "$(dirname "$0")/lib/fmnist.sh"

p=$tmp/prefix
cmake --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 || fail "cmake --install: $(tail "$tmp/install.log")"
libexec=$p/libexec/cohort
for f in bin/cohort-orchestrator bin/cohort-partition bin/cohort-report \
	bin/cohort-mlflow-sync libexec/cohort/cohort-worker \
	share/cohort/configs/fedavg-mlp.json share/doc/cohort/README.md \
	share/cohort/python/cohort/__init__.py \
	share/doc/cohort/orchestrator.md; do
	[ -f "$p/$f" ] || fail "$f not installed (installed: $(cd "$p" && find . -type f | head -20))"
done
[ ! -e "$p/bin/cohort-worker" ] || fail "cohort-worker installed on PATH (bin/); it belongs in libexec/cohort"

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || fail "no CMAKE_PROJECT_VERSION in $build/CMakeCache.txt"
for exe in "$p"/bin/* "$libexec"/cohort-*; do
	name=$(basename "$exe")
	out=$("$exe" --version) || fail "$name --version exited $?"
	[ "$out" = "$name $version" ] || fail "$name --version printed '$out', expected '$name $version'"
done

mkdir "$tmp/jobs"
(cd "$tmp/jobs" && env -u COHORT_BUILD_DIR PATH=/usr/bin:/bin "$p/bin/cohort-orchestrator" 2 2 2 1 \
	--config "$p/share/cohort/configs/fedavg-mlp.json" --set output.progress=never \
	--set data.cache_dir="$tmp/cache") >"$tmp/job.out" 2>"$tmp/job.err" ||
	fail "installed job exited $?: $(cat "$tmp/job.err")"
grep -q '^done: 1 rounds, test_acc' "$tmp/job.out" || fail "no summary: $(cat "$tmp/job.out")"
ws=$(ls -d "$tmp"/jobs/workspaces/fedavg-mlp-* 2>/dev/null | head -n 1)
[ -n "$ws" ] && [ -f "$ws/results/global_model.safetensors" ] ||
	fail "no workspace with a model under the current directory: $(find "$tmp/jobs" -maxdepth 3 | head)"
grep -qF "worker $p/bin/../libexec/cohort/cohort-worker" "$ws/logs/orchestrator.log" || fail "the job did not use the installed worker: $(head -n 1 "$ws/logs/orchestrator.log")"
echo "installed under $p: $(cd "$p" && find . -type f | wc -l) files; job done with $libexec/cohort-worker"
