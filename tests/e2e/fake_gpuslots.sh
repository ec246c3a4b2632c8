#!/usr/bin/env bash
# fake_gpuslots.sh: GPU slots through the orchestrator with the fake worker
# on a machine without NVML: gpu.devices and gpu.workers_per_gpu give two
# "GPUs" of two slots; every worker's environment carries one of them as
# CUDA_VISIBLE_DEVICES and COHORT_DEVICE=cuda, no GPU ever holds more than
# its slots (replayed from the workers' start/end trace) in spawn and pool
# mode, the result equals a CPU run's, worker.device=cpu passes the
# inherited CUDA_VISIBLE_DEVICES on untouched, and bad devices or lists are
# errors naming the key. Skipped where NVML is installed: there the real
# inventory is used (tools/bench/gpu.sh checks that path).
if ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml\.so\.1'; then
	echo "skipped: NVML is installed; this checks the NVML-less path"
	exit 77
fi
. "$(dirname "$0")/lib/fake.sh"
run() { "$orch" "$@" --set launcher.worker="$fake" --set output.progress=never \
	--set evaluate.central=false; }
# Replay a trace: args FILE WANT_DEVICE SLOTS_PER_GPU "ALLOWED VALUES".
check_trace() {
	python3 - "$@" <<'PY'
import sys
path, want, per, allowed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
alive, peak, starts, ends = {}, {}, 0, 0
for line in open(path):
    f = line.split()
    if f[0] == "start":
        starts += 1
        assert f[3] == want, line
        assert f[2] in allowed, line
        alive[f[2]] = alive.get(f[2], 0) + 1
        peak[f[2]] = max(peak.get(f[2], 0), alive[f[2]])
    else:
        ends += 1
        alive[f[2]] -= 1
assert starts == ends and starts > 0, (starts, ends)
assert all(p <= per for p in peak.values()), peak
assert sorted(peak) == sorted(allowed), peak  # every GPU was used
print("workers", starts, "peak per GPU", peak)
PY
}
gpu=(--set worker.device=cuda --set gpu.devices=0,1 --set gpu.workers_per_gpu=2
	--set launcher.max_concurrent=8)
export COHORT_FAKE_SLEEP_MS=100

# Spawn mode: 8 clients a round, 4 slots.
export COHORT_FAKE_TRACE=$tmp/spawn.trace
CUDA_VISIBLE_DEVICES=7 run 8 8 8 2 "${gpu[@]}" --set job.workspace_root="$tmp/spawn" \
	>"$tmp/spawn.out" 2>&1 || { cat "$tmp/spawn.out"; fail "gpu spawn run"; }
grep -q "gpu: 2 GPUs, slots 0: 2; 1: 2; 4 workers at once" "$tmp/spawn.out" ||
	fail "no slot line: $(cat "$tmp/spawn.out")"
check_trace "$tmp/spawn.trace" cuda 2 "0 1"
check_clean "$tmp/spawn"

# Pool mode keeps a worker on its GPU; launcher.max_concurrent 3 caps the
# 4 slots (the log says so).
export COHORT_FAKE_TRACE=$tmp/pool.trace
run 8 8 8 2 "${gpu[@]}" --set launcher.max_concurrent=3 \
	--set launcher.tasks_per_worker=4 --set job.workspace_root="$tmp/pool" \
	>"$tmp/pool.out" 2>&1 || { cat "$tmp/pool.out"; fail "gpu pool run"; }
grep -q "3 workers at once (launcher.max_concurrent)" "$tmp/pool.out" ||
	fail "no cap in the slot line: $(cat "$tmp/pool.out")"
check_trace "$tmp/pool.trace" cuda 2 "0 1"
check_clean "$tmp/pool"

# The same job on the CPU: same model; CUDA_VISIBLE_DEVICES passed on.
export COHORT_FAKE_TRACE=$tmp/cpu.trace
CUDA_VISIBLE_DEVICES=7 run 8 8 8 2 --set worker.device=cpu \
	--set job.workspace_root="$tmp/cpu" >"$tmp/cpu.out" 2>&1 ||
	{ cat "$tmp/cpu.out"; fail "cpu run"; }
check_trace "$tmp/cpu.trace" cpu 8 "7"
! grep -q "^gpu:" "$tmp/cpu.out" || fail "slot line on a CPU run"
cmp "$(ls "$tmp"/spawn/*/results/global_model.safetensors)" \
	"$(ls "$tmp"/cpu/*/results/global_model.safetensors)" ||
	fail "GPU-slot run and CPU run differ"
cmp "$(ls "$tmp"/pool/*/results/global_model.safetensors)" \
	"$(ls "$tmp"/cpu/*/results/global_model.safetensors)" ||
	fail "pool GPU-slot run and CPU run differ"
unset COHORT_FAKE_TRACE

# Device auto without NVML and without gpu.devices: no slots, as before.
run 2 2 2 1 --set job.workspace_root="$tmp/auto" >"$tmp/auto.out" 2>&1 ||
	{ cat "$tmp/auto.out"; fail "auto run"; }
grep -q "gpu: no GPU slots: gpuinfo: cannot load libnvidia-ml.so.1" \
	"$tmp"/auto/*/logs/orchestrator.log || fail "auto: no reason logged"

# Errors.
expect_error() { # STATUS MESSAGE ARGS...
	local want=$1 msg=$2 rc=0
	shift 2
	run 2 2 2 1 --set job.workspace_root="$tmp/err" "$@" >"$tmp/err.out" 2>&1 || rc=$?
	[ "$rc" = "$want" ] || fail "$*: exit $rc, want $want: $(cat "$tmp/err.out")"
	grep -qF "$msg" "$tmp/err.out" || fail "$*: no \"$msg\" in: $(cat "$tmp/err.out")"
}
expect_error 2 'worker.device: expected auto, cpu, cuda or cuda:N, got "gpu0"' \
	--set worker.device=gpu0
expect_error 1 'cannot list the GPUs without NVML: give them in gpu.devices' \
	--set worker.device=cuda
expect_error 1 'gpu.devices="0,x": entry "x" is neither a device index nor' \
	--set worker.device=cuda --set gpu.devices=0,x --set gpu.workers_per_gpu=1
expect_error 1 'no free-memory figure for GPU 0 without NVML: set gpu.workers_per_gpu' \
	--set gpu.devices=0
expect_error 1 'worker.device cuda:2: only 2 GPUs are visible' \
	--set worker.device=cuda:2 --set gpu.devices=0,1 --set gpu.workers_per_gpu=1
CUDA_VISIBLE_DEVICES= expect_error 1 \
	'worker.device cuda: no GPU visible (CUDA_VISIBLE_DEVICES="", NVML unavailable)' \
	--set worker.device=cuda
echo "ok"
