#!/usr/bin/env bash
# standalone_device.sh: cohort-worker --standalone --device: the default and
# --device cpu print the same numbers, auto on a machine without a usable
# GPU says why in one line and trains on the CPU with those numbers too, an
# unknown device is a usage error, and cuda either trains (a GPU machine:
# accuracy in the CPU's band) or fails naming the cause.
set -euo pipefail
build=${COHORT_BUILD_DIR:?}
worker=$build/worker/cohort-worker
. "$(dirname "$0")/lib/fmnist.sh"
sa() { "$worker" --standalone --epochs 1 --cache-dir "$tmp/cache" "$@"; }
numbers() { awk '$1 ~ /^[0-9]+$/ {print $1, $2, $3, $4, $5}' "$1"; }

sa >"$tmp/default.out" 2>"$tmp/default.err" || fail "default: $(cat "$tmp/default.err")"
sa --device cpu >"$tmp/cpu.out" 2>&1 || fail "cpu: $(cat "$tmp/cpu.out")"
grep -q "device cpu$" "$tmp/cpu.out" || fail "no device in the header"
[ -n "$(numbers "$tmp/cpu.out")" ] || fail "no epoch line"
[ "$(numbers "$tmp/default.out")" = "$(numbers "$tmp/cpu.out")" ] ||
	fail "default and --device cpu differ"

rc=0
sa --device gpu >"$tmp/bad.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--device gpu: exit $rc, want 2"
grep -q 'unknown device "gpu"' "$tmp/bad.out" || fail "no message: $(cat "$tmp/bad.out")"

sa --device auto >"$tmp/auto.out" 2>"$tmp/auto.err" || fail "auto: $(cat "$tmp/auto.err")"
if grep -q "device cpu$" "$tmp/auto.out"; then
	[ "$(grep -c "device auto: training on the CPU" "$tmp/auto.err")" = 1 ] ||
		fail "auto on the CPU without exactly one reason: $(cat "$tmp/auto.err")"
	[ "$(numbers "$tmp/auto.out")" = "$(numbers "$tmp/cpu.out")" ] ||
		fail "auto on the CPU differs from --device cpu"
	rc=0
	sa --device cuda >"$tmp/cuda.out" 2>&1 || rc=$?
	[ "$rc" = 1 ] || fail "--device cuda without a GPU: exit $rc, want 1"
	grep -q "cuda" "$tmp/cuda.out" || fail "no cause: $(cat "$tmp/cuda.out")"
	echo "no usable GPU: the cuda run was checked to fail with its cause"
else
	# A GPU: another shuffle per epoch, so a band rather than equality.
	grep -q "device cuda:0$" "$tmp/auto.out" || fail "auto: $(head -1 "$tmp/auto.out")"
	cpu=$(numbers "$tmp/cpu.out" | awk '{print $5}')
	gpu=$(numbers "$tmp/auto.out" | awk '{print $5}')
	awk -v a="$cpu" -v b="$gpu" 'BEGIN { d = a - b; exit !(d < 0.03 && d > -0.03) }' ||
		fail "test accuracy cpu $cpu vs gpu $gpu"
	echo "gpu: test_acc $gpu (cpu $cpu)"
fi
echo ok
