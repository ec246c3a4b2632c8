#!/usr/bin/env bash
# fake_tracking.sh: a whole job through the orchestrator with MLflow on
# (the local test server), TensorBoard and the report: one run is created
# with the job's params, every round's metrics arrive with the round as step,
# the run is created as the job starts (before round 1's metrics) with the
# checkout's commit, it ends FINISHED, the event file and report.html are
# written; with the server down the job still succeeds and
# cohort-mlflow-sync WORKSPACE (no URI given: the job's own) delivers every
# point afterwards, exactly once.
. "$(dirname "$0")/lib/fake.sh"
server=$build/tests/cohort-test-mlflow-server
sync=$build/orchestrator/cohort-mlflow-sync
spid=
cleanup() {
	[ -z "$spid" ] || kill "$spid" 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
# Start the test server on port $2 (default: a free one); sets $port and
# $spid.
start_server() {
	"$server" --log "$tmp/requests-$1.jsonl" --db "$tmp/db.json" --idle-timeout 120 \
		--port "${2:-0}" >"$tmp/port-$1" &
	spid=$!
	for _ in $(seq 100); do [ -s "$tmp/port-$1" ] && break; sleep 0.05; done
	port=$(head -n1 "$tmp/port-$1")
	[ -n "$port" ] || fail "test server did not start"
}
stop_server() { kill "$spid"; wait "$spid" 2>/dev/null || true; spid=; }
run() {
	"$orch" 4 4 4 3 --workspace-root "$1" --set launcher.worker="$fake" \
		--set output.progress=never --set tracking.drain_s=5 "${@:2}"
}

start_server up
COHORT_FAKE_SLEEP_MS=300 COHORT_GIT_REVISION=0123abcd run "$tmp/up" --set tracking.mlflow_uri="http://127.0.0.1:$port" >"$tmp/up.out" ||
	fail "job with MLflow failed: $(cat "$tmp/up.out")"
stop_server
# What the server received, decoded: "path" lines, "param KEY", "metric
# KEY STEP" and "status STATUS" lines.
requests() {
	python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r["path"])
    try:
        b = json.loads(r.get("body") or "{}")
    except ValueError:
        continue  # an artifact upload
    for p in b.get("params", []):
        print("param", p["key"])
    for m in b.get("metrics", []):
        print("metric", m["key"], m["step"])
    if "status" in b:
        print("status", b["status"])
PY
}
requests "$tmp/requests-up.jsonl" >"$tmp/up.req"
grep -q 'runs/create$' "$tmp/up.req" || fail "no run created"
grep -qx 'param federation.clients' "$tmp/up.req" || fail "params not logged"
for r in 1 2 3; do
	grep -qx "metric test_accuracy $r" "$tmp/up.req" || fail "round $r test_accuracy not logged"
done
grep -qx 'status FINISHED' "$tmp/up.req" || fail "run not marked FINISHED"
ws=$(ls -d "$tmp"/up/*/)
python3 - "$tmp/requests-up.jsonl" "$ws/metrics/metrics.jsonl" <<'PY' || fail "the run was not created at the job's start"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
create = next(r for r in reqs if r["path"].endswith("runs/create"))
tags = {t["key"]: t["value"] for t in json.loads(create["body"])["tags"]}
assert tags.get("mlflow.source.git.commit") == "0123abcd", tags
first = json.loads(open(sys.argv[2]).readline())
assert create["time"] < first["time"], (create["time"], first)
PY
ls "$ws"/tensorboard/events.out.tfevents.* >/dev/null 2>&1 || fail "no TensorBoard event file"
[ -s "$ws/results/report.html" ] || fail "no report.html"
grep -q '<svg id="chart-accuracy"' "$ws/results/report.html" || fail "report without the accuracy chart"

# Server down: the job goes on; a later sync delivers everything once.
run "$tmp/down" --set tracking.mlflow_uri="http://127.0.0.1:$port" >"$tmp/down.out" 2>&1 ||
	fail "job failed while MLflow was down: $(cat "$tmp/down.out")"
ws=$(ls -d "$tmp"/down/*/)
grep -q "warning: mlflow: http://127.0.0.1:$port: not everything was acknowledged" "$ws/logs/orchestrator.log" ||
	fail "the MLflow warning is not in orchestrator.log: $(cat "$ws/logs/orchestrator.log")"
start_server sync "$port"
"$sync" "$ws" >"$tmp/sync.out" 2>&1 || fail "sync failed: $(cat "$tmp/sync.out")"
"$sync" "$ws" >>"$tmp/sync.out" 2>&1 || fail "second sync failed"
stop_server
requests "$tmp/requests-sync.jsonl" >"$tmp/sync.req"
for r in 1 2 3; do
	n=$(grep -cx "metric test_accuracy $r" "$tmp/sync.req" || true)
	[ "$n" -eq 1 ] || fail "after two syncs round $r test_accuracy was sent $n times, expected once"
done
grep -qx 'status FINISHED' "$tmp/sync.req" || fail "sync did not finish the run"
echo "fake_tracking: ok"
