#!/usr/bin/env bash
# partial_sums_fmnist.sh: the built-in worker on Fashion-MNIST (MLP) with
# pool workers' partial sums (libcohort-client folds each fit into its
# worker's sum) gives the per-update path's model, and spawn mode's, up to
# float64 summation order: compared element by element (at most one
# float32 ulp apart; the count of differing elements is printed), in pool
# and in fork-server + pool mode, and every fit was folded.
. "$(dirname "$0")/lib/fake.sh"
src=${COHORT_SOURCE_DIR:?}
need_fashion_mnist
cd "$src"
quiet=(--set output.progress=never --set tracking.tensorboard=false --set tracking.report=false
	--set evaluate.central=false --set train.lr=0.01)
pool=(--set launcher.tasks_per_worker=10)
job() {
	local name=$1
	shift
	"$orch" 40 40 40 2 --config configs/fedavg-mlp.json --workspace-root "$tmp/$name" -v \
		"${quiet[@]}" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" ||
		fail "$name: exit $?: $(tail -5 "$tmp/$name.err")"
	grep -q "round 2/2  sampled 40  ok 40  failed 0" "$tmp/$name.out" || fail "$name: $(cat "$tmp/$name.out")"
	check_clean "$tmp/$name"
}
folded() { grep -c "folded into partial sum" "$tmp"/$1/*/logs/orchestrator.log || true; }
job spawn
job off "${pool[@]}" --set launcher.partial_sums=off
job on "${pool[@]}"
job forked "${pool[@]}" --set launcher.mode=fork-server
[ "$(folded off)" -eq 0 ] || fail "partial_sums=off folded"
[ "$(folded on)" -ge 70 ] || fail "pool: only $(folded on) of 80 fits folded"
[ "$(folded forked)" -ge 70 ] || fail "fork-server + pool: only $(folded forked) of 80 fits folded"
cmp "$(model_of "$tmp/spawn")" "$(model_of "$tmp/off")" || fail "pool without partial sums differs from spawn"
for r in on forked; do
	python3 - "$(model_of "$tmp/off")" "$(model_of "$tmp/$r")" "$r" <<'PY' || fail "$r: models differ"
import json, struct, sys

def tensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = struct.unpack("<%di" % ((e - b) // 4), body[b:e])
    return out

a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys()
total = differ = worst = 0
for name in a:
    for x, y in zip(a[name], b[name]):
        total += 1
        if x != y:
            differ += 1
            # float32 bit patterns of the same sign: their distance in ulps
            assert (x < 0) == (y < 0), (name, x, y)
            worst = max(worst, abs(x - y))
assert worst <= 1, (worst, differ)
print("%s: %d of %d weights identical to the per-update path's, %d one ulp apart"
      % (sys.argv[3], total - differ, total, differ))
PY
done
echo "partial sums on Fashion-MNIST: the per-update model up to summation order: ok"
