#!/usr/bin/env bash
# gpu.sh: the GPU backend's acceptance run, for a machine with an NVIDIA GPU.
# Builds Release with CUDA, runs the GPU tests (a skip is a failure here),
# then measures through cohort-gpu-bench and prints one Markdown table:
#   - per-task cost in spawn mode (a fresh process per task: exec, context
#     creation, task, exit) against pool mode (one process, context kept);
#   - training throughput (samples/s) of mlp and cnn, GPU against CPU;
#   - peak GPU memory of one worker process, polled from nvidia-smi;
#   - a federated round of 500 clients (MLP and CNN, 120 Fashion-MNIST
#     samples each, 1 local epoch) through cohort-orchestrator with GPU
#     slots, spawn and pool mode: round wall time and peak GPU memory, which
#     must stay at or below workers-at-once x gpu.mem_per_worker_mb.
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

# Device memory in use (MiB), summed over every GPU.
used_all_mib() {
	nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | awk '{ s += $1 } END { print s }'
}

# Peak of used_all_mib over base while pid runs.
peak_memory_all() {
	local pid=$1 base=$2 peak=0 m
	while kill -0 "$pid" 2>/dev/null; do
		m=$(used_all_mib)
		if [[ -n "$m" && $((m - base)) -gt "$peak" ]]; then peak=$((m - base)); fi
		sleep 0.05
	done
	echo "$peak"
}

mem_per_worker=${COHORT_BENCH_MEM_PER_WORKER_MB:-2048}
step "federated round: 500 clients x 120 samples, 1 epoch, GPU slots of $mem_per_worker MiB"
for model in mlp cnn; do
	for mode in spawn pool; do
		ws=$build/gpu-bench-ws/$model-$mode
		rm -rf "$ws"
		mkdir -p "$ws"
		per=1
		[[ $mode == pool ]] && per=50
		base=$(used_all_mib)
		"$build/orchestrator/cohort-orchestrator" 500 500 500 1 \
			--set model.name="$model" --set worker.device=cuda \
			--set gpu.mem_per_worker_mb="$mem_per_worker" \
			--set launcher.tasks_per_worker="$per" --set output.progress=never \
			--set tracking.tensorboard=false --set tracking.report=false \
			--set job.workspace_root="$ws" >"$ws.log" 2>&1 &
		pid=$!
		peak=$(peak_memory_all "$pid" "$base")
		wait "$pid" || { cat "$ws.log" >&2; die "500-client $model $mode round failed (log $ws.log)"; }
		at_once=$(sed -n 's/^gpu: .*; \([0-9]*\) workers at once.*/\1/p' "$ws.log")
		[[ -n "$at_once" ]] || { cat "$ws.log" >&2; die "no GPU slot line: the round did not use GPU slots"; }
		secs=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    m = json.loads(l)
    if m.get("key") == "round_seconds": print("%.2f" % m["value"])' "$ws"/*/metrics/metrics.jsonl)
		acc=$(python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["final_test_accuracy"])' "$ws"/*/results/summary.json)
		limit=$((at_once * mem_per_worker))
		row "fl round cuda" "$model $mode, 500 clients x 120 samples" "$secs s" \
			"peak GPU $peak MiB (limit $at_once x $mem_per_worker = $limit MiB), test acc $acc"
		[[ "$peak" -le "$limit" ]] ||
			die "$model $mode: peak GPU memory $peak MiB above $at_once workers x $mem_per_worker MiB"
	done
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
