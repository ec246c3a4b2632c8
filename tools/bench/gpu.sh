#!/usr/bin/env bash
# gpu.sh: the GPU backend's acceptance run, for a machine with an NVIDIA GPU.
# Builds Release with CUDA, runs the GPU tests (a skip is a failure here),
# then measures through cohort-gpu-bench and prints one Markdown table:
#   - per-task cost in spawn mode (a fresh process per task: exec, context
#     creation, task, exit) against pool mode (one process, context kept);
#   - training throughput (samples/s) of mlp and cnn, GPU against CPU;
#   - peak GPU memory of one worker process, polled from nvidia-smi.
# usage: tools/bench/gpu.sh [BUILD_DIR]   (default build-gpu)
#   COHORT_BENCH_TASKS   tasks per overhead measurement (default 20)
#   COHORT_JOBS          parallel build jobs (default: number of cores)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-gpu}
tasks=${COHORT_BENCH_TASKS:-20}
jobs=${COHORT_JOBS:-$(nproc)}
bench=$build/worker/cohort-gpu-bench
out=$build/gpu-bench.md

step() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'gpu.sh: %s\n' "$*" >&2; exit 1; }

# The value of key in a "key=value ..." line.
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this script needs an NVIDIA GPU and driver"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader >&2 ||
	die "nvidia-smi cannot talk to the driver"

step "build (Release, CUDA on, warnings are errors)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCOHORT_CUDA=ON -DCOHORT_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs"

step "GPU tests (skipping counts as failing on a GPU machine)"
for t in test_backend test_gpu_layers test_gpu_train; do
	log=$build/$t.log
	if ! (cd "$build/tests" && COHORT_BUILD_DIR=$build "./$t") >"$log" 2>&1; then
		cat "$log" >&2
		die "$t failed (log: $log)"
	fi
	if grep -q "skipped: no CUDA device" "$log"; then
		cat "$log" >&2
		die "$t skipped its GPU tests on a GPU machine (log: $log)"
	fi
	tail -n 1 "$log" >&2
done

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }

step "per-task overhead: spawn vs pool ($tasks tasks, mlp, 600 samples)"
for dev in cuda cpu; do
	spawn=$("$bench" --device "$dev" --model mlp --samples 600 --spawn "$tasks" | grep '^summary')
	pool=$("$bench" --device "$dev" --model mlp --samples 600 --tasks "$tasks" | grep '^summary')
	s=$(field mean_process_wall_s <<<"$spawn")
	o=$(field open_s <<<"$pool")
	p=$(field mean_later_task_s <<<"$pool")
	row "overhead $dev" "spawn: wall per task (process + context + task)" "$s s" "mlp, 600 samples, 1 epoch"
	row "overhead $dev" "pool: backend_open (context creation), once" "$o s" ""
	row "overhead $dev" "pool: wall per later task" "$p s" ""
done

step "throughput: samples/s, 60000 samples, 1 epoch (second task of a pool)"
for model in mlp cnn; do
	for batch in 32 256; do
		for dev in cuda cpu; do
			line=$("$bench" --device "$dev" --model "$model" --samples 60000 --batch "$batch" --tasks 2 | grep '^task=1 ')
			row "throughput $dev" "$model batch $batch" "$(field samples_per_s <<<"$line") samples/s" \
				"$(field gflops <<<"$line") GFLOP/s, train acc $(field acc <<<"$line")"
		done
	done
done

# Device memory in use (MiB) on GPU 0.
used_mib() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | tr -d ' '; }

# Peak GPU memory (MiB) of pid while it runs: the device's used memory over
# its level before the process started (nvidia-smi's per-process list shows
# host pids, which a container's pid does not match), so run nothing else.
peak_memory() {
	local pid=$1 base=$2 peak=0 m
	while kill -0 "$pid" 2>/dev/null; do
		m=$(used_mib)
		if [[ -n "$m" && $((m - base)) -gt "$peak" ]]; then peak=$((m - base)); fi
		sleep 0.05
	done
	echo "$peak"
}

step "peak GPU memory of one worker process (nvidia-smi)"
for spec in "mlp 600" "cnn 600" "mlp 60000" "cnn 60000"; do
	read -r model samples <<<"$spec"
	base=$(used_mib)
	"$bench" --device cuda --model "$model" --samples "$samples" --tasks 5 >/dev/null &
	pid=$!
	peak=$(peak_memory "$pid" "$base")
	wait "$pid" || die "cohort-gpu-bench --model $model --samples $samples failed"
	row "memory cuda" "$model, $samples samples, 5 tasks" "$peak MiB" "context + cuBLAS + task buffers"
done

{
	echo "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)," \
		"CPU: $(nproc) cores, $(date -u +%Y-%m-%d)"
	echo
	echo "| what | measurement | value | notes |"
	echo "|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} | tee "$out"
echo >&2
echo "table written to $out" >&2
