#!/usr/bin/env bash
# python_client.sh: a user's own Python script as the worker
# (worker.command, the package in python/cohort): the example's job runs in
# a process per task and in a pool with the same, exactly computed model;
# model.init starts from a file's weights by name; the stream transport
# gives what shared memory gives;
# a script that raises, sends a misnamed, mis-shaped or non-finite tensor,
# exits early or never sends costs one task with a reason naming it, and
# the job goes on.
. "$(dirname "$0")/lib/fake.sh"
src=${COHORT_SOURCE_DIR:?}
py=/usr/bin/python3
"$py" -c 'import numpy, msgpack' 2>/dev/null ||
	fail "$py cannot import numpy and msgpack (tools/install-deps.sh test installs python3-numpy python3-msgpack)"

cd "$src"
# The example, spawn and pool: exit 0, and the model is what FedAvg of its
# updates gives: each round w -> 0.5 w + 0.5 * sum(n_c t_c) / sum(n_c) with
# n_c the client's share of the iid partition (20,000 of Fashion-MNIST's
# 60,000 each, task.partition()) and targets t_c = (c + 1) / 10, so after
# two rounds of 3 clients w2 = 0.25 w0 + 0.75 * 0.2.
for mode in spawn pool; do
	extra=()
	[ $mode = pool ] && extra=(--set launcher.tasks_per_worker=4)
	"$orch" 3 3 3 2 --config examples/python-numpy/job.json --workspace-root "$tmp/$mode" \
		--set output.progress=never "${extra[@]}" >"$tmp/$mode.out" 2>"$tmp/$mode.err" ||
		fail "$mode: exit $?: $(tail -5 "$tmp/$mode.err")"
	grep -q "round 2/2  sampled 3  ok 3  failed 0" "$tmp/$mode.out" || fail "$mode: $(cat "$tmp/$mode.out")"
done
ws=$(ls -d "$tmp"/spawn/*/)
cmp "$ws/results/global_model.safetensors" "$(ls "$tmp"/pool/*/results/global_model.safetensors)" ||
	fail "pool and spawn give different models"
"$py" - "$ws/checkpoints/initial.safetensors" "$ws/results/global_model.safetensors" <<'PY' || fail "the model is not FedAvg's"
import json, struct, sys
import numpy as np
def read(path):
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    head = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in head.items() if k != "__metadata__"}
w0, w2 = read(sys.argv[1]), read(sys.argv[2])
assert sorted(w0) == sorted(w2)
for k in w0:
    want = 0.25 * w0[k].astype(np.float64) + 0.75 * 0.2
    err = np.abs(w2[k] - want).max()
    assert err < 1e-6, (k, err)
PY
grep -q "step_distance" "$ws/metrics/metrics.jsonl" || fail "cohort.log's metrics are not in metrics.jsonl"
grep -q '"key":"num_examples","value":20000,' "$ws/metrics/metrics.jsonl" ||
	fail "task.partition(): the clients did not report their 20,000 examples: $(grep num_examples "$ws/metrics/metrics.jsonl" | head -3)"
# The script's process is not dumpable once cohort.init() ran (another
# worker of the uid cannot ptrace it or read its memory).
[ "$(PYTHONPATH=$src/python "$py" -c 'import cohort, ctypes; cohort._keep_private(); print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))')" = 0 ] ||
	fail "cohort._keep_private() left the process dumpable"
[ "$(COHORT_DUMPABLE=1 PYTHONPATH=$src/python "$py" -c 'import cohort, ctypes; cohort._keep_private(); print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))')" = 1 ] ||
	fail "COHORT_DUMPABLE=1 did not keep the process dumpable"
echo "python example: spawn = pool = FedAvg"

# model.init: initial weights from a safetensors file whose tensors are in
# name order (as Hugging Face's writer leaves them, not the model's order),
# every weight 0.7: after two rounds every weight is 0.25 * 0.7 + 0.75 *
# 0.2 = 0.325. A file lacking a tensor is refused before round 1 naming
# it; model.file is for the synthetic model only.
"$py" - "$ws/checkpoints/initial.safetensors" "$tmp/init.safetensors" "$tmp/short.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", b[:8])
head = {k: v for k, v in json.loads(b[8:8 + n]).items() if k != "__metadata__"}
def write(path, names):
    out, data, at = {}, b"", 0
    for k in sorted(names):
        count = 1
        for d in head[k]["shape"]:
            count *= d
        blob = struct.pack("<%df" % count, *([0.7] * count))
        out[k] = {"dtype": "F32", "shape": head[k]["shape"], "data_offsets": [at, at + len(blob)]}
        data += blob
        at += len(blob)
    h = json.dumps(out).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
write(sys.argv[2], head)
write(sys.argv[3], sorted(head)[1:])
PY
"$orch" 3 3 3 2 --config examples/python-numpy/job.json --workspace-root "$tmp/init" --set output.progress=never \
	--set model.init="$tmp/init.safetensors" >"$tmp/init.out" 2>"$tmp/init.err" || fail "model.init: exit $?: $(tail -3 "$tmp/init.err")"
"$py" - "$(ls "$tmp"/init/*/results/global_model.safetensors)" <<'PY' || fail "model.init: the model did not start from the file's weights"
import json, struct, sys
import numpy as np
b = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", b[:8])
w = np.frombuffer(b[8 + n:], np.float32)
assert np.abs(w - 0.325).max() < 1e-6, np.abs(w - 0.325).max()
PY
set +e
"$orch" 3 3 3 1 --config examples/python-numpy/job.json --workspace-root "$tmp/short" --set output.progress=never \
	--set model.init="$tmp/short.safetensors" >/dev/null 2>"$tmp/short.err"
rc=$?
"$orch" 3 3 3 1 --workspace-root "$tmp/mf" --set model.file="$tmp/init.safetensors" >/dev/null 2>"$tmp/mf.err"
rc2=$?
set -e
[ $rc -eq 1 ] && grep -q "model.init: $tmp/short.safetensors: " "$tmp/short.err" ||
	fail "model.init lacking a tensor: exit $rc: $(cat "$tmp/short.err")"
[ $rc2 -eq 2 ] && grep -q "model.file: only the synthetic model" "$tmp/mf.err" || fail "model.file with mlp: exit $rc2: $(cat "$tmp/mf.err")"
echo "model.init: by name, any order; a short file and model.file refused"

# The stream transport: a 3 MiB synthetic model in 1 MiB chunk frames both
# ways gives the model the shared-memory transport gives, byte for byte.
"$py" - "$tmp/m3.safetensors" <<'PY'
import json, struct, sys
shapes = {"h.0.w": [768, 768], "h.1.w": [768, 256], "wte": [64, 768]}
out, at = {}, 0
for k in sorted(shapes):
    n = 4 * shapes[k][0] * shapes[k][1]
    out[k] = {"dtype": "F32", "shape": shapes[k], "data_offsets": [at, at + n]}
    at += n
h = json.dumps(out).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(at))
PY
for mode in shm stream; do
	BAD= "$orch" 3 3 3 2 --workspace-root "$tmp/tr-$mode" --set output.progress=never \
		--set model.name=synthetic --set model.file="$tmp/m3.safetensors" --set transport.mode=$mode \
		--set transport.chunk_mb=1 --set tracking.tensorboard=false --set tracking.report=false \
		--set worker.command="$py $src/tests/e2e/lib/bad_client.py" >"$tmp/tr-$mode.out" 2>"$tmp/tr-$mode.err" ||
		fail "$mode transport: exit $?: $(tail -3 "$tmp/tr-$mode.err")"
	grep -q "round 2/2  sampled 3  ok 3  failed 0" "$tmp/tr-$mode.out" || fail "$mode transport: $(cat "$tmp/tr-$mode.out")"
done
cmp "$(ls "$tmp"/tr-shm/*/results/global_model.safetensors)" "$(ls "$tmp"/tr-stream/*/results/global_model.safetensors)" ||
	fail "the stream transport gives another model than shm"
echo "python client: stream = shm"

# Broken scripts: client 1's task fails with the reason, the others' fold.
for bad in raise shape name nan exit nosend; do
	case $bad in
	raise) want="exception: RuntimeError: client 1 refuses to train" ;;
	shape) want="has shape \[3\], the model's is" ;;
	name) want="no.such.tensor is not a tensor of the model" ;;
	nan) want="is not finite" ;;
	exit) want="worker exited with status 3 before reporting a result" ;;
	nosend) want="cohort.receive() was called again before cohort.send() reported it" ;;
	esac
	BAD=$bad BAD_CLIENT=1 "$orch" 3 2 3 1 --workspace-root "$tmp/bad-$bad" --set output.progress=never \
		--set worker.command="$py $src/tests/e2e/lib/bad_client.py" --set tracking.tensorboard=false \
		--set tracking.report=false --set launcher.task_timeout_s=60 \
		>"$tmp/bad-$bad.out" 2>"$tmp/bad-$bad.err" || fail "$bad: exit $?: $(tail -3 "$tmp/bad-$bad.err")"
	grep -q "sampled 3  ok 2  failed 1" "$tmp/bad-$bad.out" || fail "$bad: $(cat "$tmp/bad-$bad.out")"
	grep -q "client 1 task [0-9]* failed: .*$want" "$tmp/bad-$bad.err" ||
		fail "$bad: no '$want' in: $(grep failed "$tmp/bad-$bad.err")"
done
grep -q "Traceback" "$(ls "$tmp"/bad-raise/*/logs/clients/client-1.log)" || fail "raise: no traceback in the client's log"
echo "python_client: ok"
