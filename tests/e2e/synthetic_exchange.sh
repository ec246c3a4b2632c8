#!/usr/bin/env bash
# synthetic_exchange.sh: the synthetic model (tiny preset) through the shm
# and the stream transports gives, byte for byte, the closed-form FedAvg of
# its updates; a model over 16 MiB keeps the orchestrator's peak within
# 2.5x (shm) and 3.5x (stream) of the model, and the shm transport runs
# where /dev/shm cannot hold it (its segments are memfds); a streamed update cut off
# mid-tensor (worker killed) is not folded and the round goes on; a model
# too large for the machine is a clear error before round 1; nothing is
# left behind.
. "$(dirname "$0")/lib/fake.sh"
worker=$build/worker/cohort-worker
run() {
	"$orch" "$@" --set model.name=synthetic --set output.progress=never \
		--set tracking.tensorboard=false --set tracking.report=false
}
# The final model equals the closed form of docs/large-models.md over the
# clients that succeeded ($2, comma-separated), epochs 1, examples weighting.
check() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, struct, sys
path, rounds = sys.argv[1], int(sys.argv[3])
clients = [int(c) for c in sys.argv[2].split(',')]
f32 = lambda x: struct.unpack('<f', struct.pack('<f', x))[0]
data = open(path, 'rb').read()
n = struct.unpack('<Q', data[:8])[0]
hdr = json.loads(data[8:8 + n])
body = data[8 + n:]
names = [k for k in hdr if k != '__metadata__']
names.sort(key=lambda k: hdr[k]['data_offsets'][0])
assert names[0] == 'wte.weight' and hdr['wte.weight']['shape'] == [512, 32]
assert len(names) == 2 + 2 * 12 + 2, len(names)
k = 0
for name in names:
    b, e = hdr[name]['data_offsets']
    got = struct.unpack('<%df' % ((e - b) // 4), body[b:e])
    for g in got:
        x = f32(((k * 2654435761) % 257 - 128) * 2.0 ** -9)
        for r in range(1, rounds + 1):
            acc = wsum = 0.0
            for c in clients:
                w = c + 1
                d = (c + 1) * 2.0 ** -12 * (1 + (k + r) % 4)
                acc += w * f32(x + d)
                wsum += w
            x = f32(acc / wsum)
        assert g == x, (name, k, g, x)
        k += 1
print("closed form: ok (%d elements)" % k)
PY
}
for mode in shm stream; do
	run 3 3 3 2 --workspace-root "$tmp/$mode" --set transport.mode=$mode \
		--set transport.chunk_mb=1 >"$tmp/$mode.out"
	grep -q "round 2/2  sampled 3  ok 3  failed 0" "$tmp/$mode.out" || fail "$mode: $(cat "$tmp/$mode.out")"
	ws=$(ls -d "$tmp/$mode"/*/)
	grep -q "$mode transport" "$ws/logs/orchestrator.log" || fail "$mode: transport not logged"
	check "$ws/results/global_model.safetensors" 0,1,2 2
done
cmp "$tmp"/shm/*/results/global_model.safetensors "$tmp"/stream/*/results/global_model.safetensors || fail "shm and stream differ"

# Both transports in a pool (one worker runs every task, keeping the global
# model's mapping and its streamed-model buffer): the same model.
for mode in shm stream; do
	run 3 3 3 2 --workspace-root "$tmp/pool-$mode" --set transport.mode=$mode \
		--set transport.chunk_mb=1 --set launcher.tasks_per_worker=6 \
		--set launcher.max_concurrent=1 >"$tmp/pool-$mode.out"
	cmp "$tmp"/shm/*/results/global_model.safetensors "$tmp"/pool-$mode/*/results/global_model.safetensors || fail "pool $mode differs"
done

# A model over the 16 MiB at which mappings stay resident (128 MiB, 16
# tensors, from a sparse safetensors file): the orchestrator keeps the global
# model out of its resident set between uses and releases every window it
# reads or writes, so its peak is the float64 accumulator (2x) plus what is
# in flight: at most 2.5x the model through shm and 3.5x through stream
# (where the staged update adds 1x: with three workers at once, the
# launcher still lets one streamed update in at a time); both give the
# same model.
python3 - "$tmp/m128.safetensors" <<'PY'
import json, struct, sys
hdr, off, size = {}, 0, 8 << 20
for i in range(16):
    hdr["h.%d.weight" % i] = {"dtype": "F32", "shape": [2048, 1024],
                              "data_offsets": [off, off + size]}
    off += size
text = json.dumps(hdr).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    f.truncate(8 + len(text) + off)
PY
model_kb=$((128 * 1024))
for mode in shm stream; do
	run 3 3 3 2 --workspace-root "$tmp/big-$mode" --set transport.mode=$mode \
		--set model.file="$tmp/m128.safetensors" --set transport.chunk_mb=1 \
		--set launcher.max_concurrent=3 >"$tmp/big-$mode.out"
	grep -q "round 2/2  sampled 3  ok 3  failed 0" "$tmp/big-$mode.out" || fail "128 MiB $mode: $(cat "$tmp/big-$mode.out")"
	peak=$(sed -n 's/.*"orchestrator_peak_rss_kb": \([0-9]*\).*/\1/p' "$tmp"/big-$mode/*/results/summary.json)
	limit=$([ $mode = shm ] && echo $((model_kb * 5 / 2)) || echo $((model_kb * 7 / 2)))
	[ -n "$peak" ] && [ "$peak" -le "$limit" ] || fail "128 MiB $mode: orchestrator peak ${peak} kB over ${limit} kB"
	echo "128 MiB model, $mode: orchestrator peak $peak kB ($((peak * 100 / model_kb))% of the model)"
done
cmp "$tmp"/big-shm/*/results/global_model.safetensors "$tmp"/big-stream/*/results/global_model.safetensors || fail "128 MiB: shm and stream differ"

# Shared memory is memfds, not /dev/shm: with a 4 MiB /dev/shm (a mount
# namespace of its own; needs root, skipped otherwise) the 128 MiB model
# still goes through the shm transport (transport.mode=auto keeps it) and
# gives the same model.
if unshare -m --propagation private \
	sh -c 'mount -t tmpfs -o size=4m tmpfs /dev/shm' 2>/dev/null; then
	export -f run
	export orch
	unshare -m --propagation private bash -c \
		'mount -t tmpfs -o size=4m tmpfs /dev/shm && run "$@"' _ \
		3 3 3 2 --workspace-root "$tmp/small-shm" \
		--set model.file="$tmp/m128.safetensors" >"$tmp/small-shm.out" 2>&1 ||
		fail "4 MiB /dev/shm: $(cat "$tmp/small-shm.out")"
	grep -q "shm transport" "$tmp"/small-shm/*/logs/orchestrator.log || fail "4 MiB /dev/shm: shm transport not kept: $(cat "$tmp/small-shm.out")"
	cmp "$tmp"/big-shm/*/results/global_model.safetensors "$tmp"/small-shm/*/results/global_model.safetensors || fail "4 MiB /dev/shm: model differs"
	echo "4 MiB /dev/shm: shm transport, same model"
else
	echo "4 MiB /dev/shm: skipped (cannot mount a tmpfs in a mount namespace here)"
fi
rm -rf "$tmp"/big-shm "$tmp"/big-stream "$tmp"/small-shm "$tmp/m128.safetensors"

# Client 1's worker is killed in the middle of its streamed update (half of
# the first tensor sent): its update is dropped, the rounds go on with
# clients 0 and 2, and the result is their closed form.
COHORT_FAKE_EXEC=$worker COHORT_FAKE_FAULT=cutstream COHORT_FAKE_FAULT_CLIENT=1 \
	run 3 2 3 2 --workspace-root "$tmp/cut" --set transport.mode=stream \
	--set transport.chunk_mb=1 --set launcher.worker="$fake" \
	--set federation.min_fit=2 \
	>"$tmp/cut.out" 2>&1 || fail "cut stream: $(cat "$tmp/cut.out")"
for r in 1 2; do
	grep -q "round $r/2  sampled 3  ok 2  failed 1" "$tmp/cut.out" || fail "cut stream round $r: $(cat "$tmp/cut.out")"
done
ws=$(ls -d "$tmp/cut"/*/)
[ "$(grep -c "streamed update cut off; nothing of it was folded" "$ws/logs/orchestrator.log")" = 2 ] ||
	fail "cut stream not logged twice: $(cat "$ws/logs/orchestrator.log")"
check "$ws/results/global_model.safetensors" 0,2 2

# A streamed update waiting for another's upload does not spend its task's
# time meanwhile: two clients send 64 MiB updates in four quarters 1 s
# apart, at once, under a 5 s task timeout: the second waits ~4 s for the
# first (its socket takes a little of its update meanwhile, then it blocks),
# then needs ~2 s more of its own.
python3 - "$tmp/m64.safetensors" <<'PY'
import json, struct, sys
hdr = {"w": {"dtype": "F32", "shape": [4096, 4096],
             "data_offsets": [0, 64 << 20]}}
text = json.dumps(hdr).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    f.truncate(8 + len(text) + (64 << 20))
PY
COHORT_FAKE_EXEC=$worker COHORT_FAKE_FAULT=slowstream COHORT_FAKE_SLEEP_MS=1000 \
	run 2 2 2 1 --workspace-root "$tmp/wait" --set transport.mode=stream \
	--set model.file="$tmp/m64.safetensors" --set transport.chunk_mb=1 \
	--set launcher.worker="$fake" --set launcher.max_concurrent=2 \
	--set launcher.task_timeout_s=5 \
	>"$tmp/wait.out" 2>&1 || fail "waiting upload: $(cat "$tmp/wait.out")"
grep -q "round 1/1  sampled 2  ok 2  failed 0" "$tmp/wait.out" ||
	fail "waiting upload timed out: $(cat "$tmp/wait.out")"
echo "an upload waiting its turn keeps its task time"

# A worker whose whole streamed result waits in its socket for another's
# slow upload, and that exits meanwhile, still has its result taken (the
# exit's grace timer used to close the socket with the result unread).
COHORT_FAKE_EXEC=$worker COHORT_FAKE_FAULT=slowstream COHORT_FAKE_FAULT_CLIENT=0 \
	COHORT_FAKE_SLEEP_MS=1500 run 2 2 2 1 --workspace-root "$tmp/exited" \
	--set transport.mode=stream --set launcher.worker="$fake" \
	--set launcher.max_concurrent=2 --set launcher.kill_grace_s=1 \
	>"$tmp/exited.out" 2>&1 || fail "exited waiter: $(cat "$tmp/exited.out")"
grep -q "round 1/1  sampled 2  ok 2  failed 0" "$tmp/exited.out" ||
	fail "exited waiter's result lost: $(cat "$tmp/exited.out")"
echo "a waiting result outlives its worker"

# A model that cannot fit: a clear error before round 1.
if run 2 2 2 1 --workspace-root "$tmp/big" --set model.preset=gpt2-small \
	--set transport.mode=shm --set launcher.max_concurrent=100000 \
	--set federation.clients=100000 --set federation.fit_clients=100000 \
	--set federation.min_clients=2 >"$tmp/big.out" 2>&1; then
	fail "a job that cannot fit ran"
fi
grep -q "model too large for this machine.*Fix:" "$tmp/big.out" || fail "no capacity error: $(cat "$tmp/big.out")"
# ... said before the model is prepared (from the preset alone), so nothing
# was prepared.
! grep -q "preparing the data" "$tmp/big.out" || fail "a job that cannot fit was prepared first: $(cat "$tmp/big.out")"
ws=$(ls -d "$tmp"/big/*/)
[ ! -e "$ws/logs/prepare.log" ] && [ ! -e "$ws/checkpoints/initial.safetensors" ] || fail "the refused job prepared its model"
# A job refused after its preparation (stream with a strategy that needs
# every update in shared memory) keeps its config and logs, not its data.
if run 2 2 2 1 --workspace-root "$tmp/refused" --set model.preset=tiny \
	--set transport.mode=stream --set strategy.name=median >"$tmp/refused.out" 2>&1; then
	fail "stream with median ran"
fi
grep -q "keeps updates in shared memory" "$tmp/refused.out" || fail "no stream refusal: $(cat "$tmp/refused.out")"
grep -q "removed what the refused job prepared" "$tmp/refused.out" || fail "no cleanup said: $(cat "$tmp/refused.out")"
ws=$(ls -d "$tmp"/refused/*/)
[ ! -e "$ws/data" ] && [ ! -e "$ws/checkpoints" ] && [ -s "$ws/config.json" ] && [ -s "$ws/logs/orchestrator.log" ] ||
	fail "refused job's workspace: $(find "$ws")"

pids=$(grep -l "$tmp" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true)
[ -z "$pids" ] || fail "worker processes left: $pids"
for ws in "$tmp"/*/*/; do
	p=$(sed -n 's/.*job key \([0-9]*-[0-9a-f]*\),.*/\1/p' "$ws/logs/orchestrator.log" | head -1)
	[ -z "$p" ] || ! ls /dev/shm | grep -q "^cohort\.$p\." || fail "segments of $p left"
done
echo "synthetic exchange: ok"
