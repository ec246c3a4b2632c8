#!/usr/bin/env bash
# fake_diskfull.sh: a workspace on a disk that fills up loses nothing. The
# workspace root is a small tmpfs of a mount namespace of its own (needs
# root; skipped otherwise). (a) The disk full from round 2 on: the job
# stops with a non-zero exit, says which file it could not write, prints no
# "done"; once space is back, --resume finishes it. (b) The disk full for
# 0.3 s in the middle of a round, while stdio writes per-task lines on
# its own: the job either finishes or stops as in (a), and after the resume
# that may need, metrics.jsonl holds every line of an undisturbed run
# exactly once, each a whole JSON object (the flush's result was ignored
# before: "done", exit 0, lines lost and run together).
set -euo pipefail
if [ "${1:-}" != inner ]; then
	if [ "$(id -u)" -ne 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
		echo "SKIPPED: needs root and mount namespaces (a tmpfs of the test's own)"
		exit 77
	fi
	exec unshare -m --propagation private bash "$0" inner
fi
. "$(dirname "$0")/lib/fake.sh"
trap 'umount "$tmp"/disk-* 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT

# Lines of metrics.jsonl with times dropped and values to 10 digits,
# sorted: what a run wrote.
lines_of() {
	python3 - "$1" <<'PY'
import json, sys
out = []
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        o = json.loads(line)
    except ValueError:
        sys.exit("line %d is not JSON: %r" % (n, line[:120]))
    o.pop("time", None)
    if o.get("key") == "round_seconds":
        o.pop("value", None)
    elif isinstance(o.get("value"), float):
        # A mean over clients is summed in arrival order: last bits vary.
        o["value"] = "%.10g" % o["value"]
    out.append(json.dumps(o, sort_keys=True))
print("\n".join(sorted(out)))
PY
}
# Fill the disk at $1 to the last byte.
fill() { dd if=/dev/zero of="$1/fill" bs=64k 2>/dev/null || true; }
wait_round() {
	for _ in $(seq 400); do
		grep -qs "\"round\": $2," "$1"/*/checkpoints/state.json && return 0
		sleep 0.025
	done
	fail "round $2 never checkpointed under $1"
}
# 200 short tasks a round: stdio writes their lines every ~0.1 s on its
# own, so a 0.3 s window of a full disk falls on some of its writes.
job=(200 2 200 3 --set launcher.max_concurrent=2)
export COHORT_FAKE_SLEEP_MS=10
run "${job[@]}" --workspace-root "$tmp/ref" >/dev/null 2>&1 || fail "reference run failed"
lines_of "$tmp"/ref/*/metrics/metrics.jsonl >"$tmp/ref.lines"

for case in stays window; do
	disk=$tmp/disk-$case
	mkdir -p "$disk"
	mount -t tmpfs -o size=24m tmpfs "$disk"
	run_bg "${job[@]}" --workspace-root "$disk" >"$tmp/$case.out" 2>"$tmp/$case.err"
	pid=$!
	wait_round "$disk" 1
	sleep 0.3
	fill "$disk"
	if [ $case = window ]; then
		sleep 0.3
		rm -f "$disk/fill"
	fi
	set +e
	wait $pid
	rc=$?
	set -e
	rm -f "$disk/fill"
	ws=$(ls -d "$disk"/*/)
	if [ $case = stays ]; then
		[ $rc -ne 0 ] || fail "$case: the job exited 0 on a full disk"
	fi
	if [ $rc -ne 0 ]; then
		! grep -q '^done:' "$tmp/$case.out" || fail "$case: exit $rc, yet it printed done"
		grep -q "cannot write\|No space left\|disk full" "$tmp/$case.err" ||
			fail "$case: exit $rc without naming the write that failed: $(cat "$tmp/$case.err")"
		run --resume "$ws" >"$tmp/$case.resume" 2>&1 || fail "$case: resume failed: $(cat "$tmp/$case.resume")"
	fi
	grep -q '^done: 3 rounds' "$tmp/$case.out" "$tmp/$case.resume" 2>/dev/null ||
		fail "$case: never done: $(cat "$tmp/$case.out" "$tmp/$case.err")"
	lines_of "$ws/metrics/metrics.jsonl" >"$tmp/$case.lines" || fail "$case: $(cat "$tmp/$case.lines")"
	diff "$tmp/ref.lines" "$tmp/$case.lines" >"$tmp/$case.diff" ||
		fail "$case: metrics.jsonl differs from an undisturbed run's (exit $rc): $(head -n 20 "$tmp/$case.diff")"
	echo "$case: exit $rc$([ $rc -eq 0 ] || echo ', resumed'), metrics.jsonl complete ($(wc -l <"$tmp/$case.lines") lines)"
	umount "$disk"
done
echo "fake_diskfull: ok"
