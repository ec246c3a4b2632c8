#!/usr/bin/env bash
# fake_config_history.sh: what a job records about how it was started.
# --resume --set federation.rounds=3 runs round 3 and config.json then says
# 3 rounds (so the next resume starts from what ran); config-history.jsonl
# holds one line per start with the command line and the keys it changed.
# A --set of the strategy, model or partition shows in the workspace name
# (fedavg-mlp with strategy.name=fedprox is fedprox-mlp-*), unless job.name
# is set too.
. "$(dirname "$0")/lib/fake.sh"
cfg=$(dirname "$0")/../../configs/fedavg-mlp.json

run 3 3 3 2 --config "$cfg" --workspace-root "$tmp/r" >"$tmp/r1.out" || fail "first run: $(cat "$tmp/r1.out")"
ws=$(ls -d "$tmp"/r/*/)
case "$(basename "$ws")" in fedavg-mlp-*) ;; *) fail "workspace $(basename "$ws"), expected fedavg-mlp-*" ;; esac
run --resume "$ws" --set federation.rounds=3 >"$tmp/r2.out" || fail "resume: $(cat "$tmp/r2.out")"
grep -q "round 3/3" "$tmp/r2.out" || fail "round 3 did not run: $(cat "$tmp/r2.out")"
python3 - "$ws" <<'PY' || fail "config.json / config-history.jsonl wrong"
import json, sys
ws = sys.argv[1]
cfg = json.load(open(ws + "/config.json"))
assert cfg["federation"]["rounds"] == 3, cfg["federation"]
hist = [json.loads(l) for l in open(ws + "/config-history.jsonl")]
assert [h["start"] for h in hist] == ["new", "resume"], hist
assert hist[0]["command"][1:5] == ["3", "3", "3", "2"], hist[0]
assert hist[0]["changed"] == {}, hist[0]
assert hist[1]["after_round"] == 2, hist[1]
assert "federation.rounds=3" in hist[1]["command"], hist[1]
assert hist[1]["changed"] == {"federation.rounds": [2, 3]}, hist[1]
PY
# The next resume knows the job has 3 rounds and all ran.
run --resume "$ws" >"$tmp/r3.out" || fail "second resume: $(cat "$tmp/r3.out")"
grep -q "3 rounds" "$tmp/r3.out" || fail "second resume: $(cat "$tmp/r3.out")"
[ "$(grep -c '"key":"test_accuracy"' "$ws/metrics/metrics.jsonl")" -eq 3 ] || fail "not 3 rounds of metrics"

# A job under the default, relative job.workspace_root, resumed from
# elsewhere: the saved config is read as saved (not re-anchored to the
# workspace), so the resume changes only what its --set says.
mkdir -p "$tmp/cwd" "$tmp/other"
(cd "$tmp/cwd" && run 2 2 2 1 --config "$cfg" >"$tmp/cwd.out") || fail "relative root: $(cat "$tmp/cwd.out")"
ws=$(ls -d "$tmp"/cwd/workspaces/*/)
(cd "$tmp/other" && run --resume "$ws" --set federation.rounds=2 >"$tmp/other.out") ||
	fail "resume from elsewhere: $(cat "$tmp/other.out")"
python3 - "$ws" <<'PY' || fail "a resume from elsewhere changed more than its --set"
import json, sys
hist = [json.loads(l) for l in open(sys.argv[1] + "/config-history.jsonl")]
assert hist[-1]["changed"] == {"federation.rounds": [1, 2]}, hist[-1]
assert json.load(open(sys.argv[1] + "/config.json"))["job"]["workspace_root"] == "workspaces"
PY

run 2 2 2 1 --config "$cfg" --workspace-root "$tmp/n" --set strategy.name=fedprox --set train.mu=0.01 \
	--set data.partition=dirichlet >"$tmp/n.out" || fail "fedprox run: $(cat "$tmp/n.out")"
name=$(basename "$(ls -d "$tmp"/n/*/)")
case "$name" in fedprox-mlp-dirichlet-2*) ;; *) fail "workspace $name, expected fedprox-mlp-dirichlet-*" ;; esac
run 2 2 2 1 --config "$cfg" --workspace-root "$tmp/m" --set strategy.name=fedprox --set train.mu=0.01 \
	--set job.name=mine >"$tmp/m.out" || fail "named run: $(cat "$tmp/m.out")"
name=$(basename "$(ls -d "$tmp"/m/*/)")
case "$name" in mine-2*) ;; *) fail "workspace $name, expected mine-*" ;; esac
echo "fake_config_history: ok"
