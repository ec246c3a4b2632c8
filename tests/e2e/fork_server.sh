#!/usr/bin/env bash
# fork_server.sh: launcher.mode fork-server. The built-in worker and a
# Python script give, forked, the model they give spawned, byte for byte,
# and leave no process behind. A child that dies costs its task; a server
# that dies is started again and the job goes on; a program that cannot
# be a fork server, one that fails before cohort.init() and one that
# started CUDA before the fork point are refused with the reason.
. "$(dirname "$0")/lib/fake.sh"
src=${COHORT_SOURCE_DIR:?}
py=/usr/bin/python3
cd "$src"
quiet=(--set output.progress=never --set tracking.tensorboard=false --set tracking.report=false)

# Built-in worker and the Python example: fork-server = spawn.
for who in builtin python; do
	cfg=(--config configs/fedavg-mlp.json)
	[ $who = python ] && cfg=(--config examples/python-numpy/job.json)
	for mode in spawn fork-server; do
		"$orch" 4 4 4 2 "${cfg[@]}" --workspace-root "$tmp/$who-$mode" "${quiet[@]}" \
			--set launcher.mode=$mode >"$tmp/$who-$mode.out" 2>"$tmp/$who-$mode.err" ||
			fail "$who $mode: exit $?: $(tail -5 "$tmp/$who-$mode.err")"
		grep -q "round 2/2  sampled 4  ok 4  failed 0" "$tmp/$who-$mode.out" ||
			fail "$who $mode: $(cat "$tmp/$who-$mode.out")"
		check_clean "$tmp/$who-$mode"
	done
	cmp "$(model_of "$tmp/$who-spawn")" "$(model_of "$tmp/$who-fork-server")" ||
		fail "$who: fork-server gives another model than spawn"
	ws=$(ls -d "$tmp/$who-fork-server"/*/)
	[ -f "$ws/logs/clients/client-3.log" ] || fail "$who: no log of client 3"
	[ -f "$ws/logs/clients/fork-server.log" ] || fail "$who: no fork-server.log"
done
echo "fork-server = spawn (built-in and Python), nothing left behind"

bad_job() {
	local name=$1
	shift
	"$orch" 3 2 3 1 --workspace-root "$tmp/$name" "${quiet[@]}" --set launcher.mode=fork-server \
		--set worker.command="$py $src/tests/e2e/lib/bad_client.py" --set launcher.task_timeout_s=60 \
		"$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
}

# A child killed by a signal, a child printing on stdout.
BAD=kill9 BAD_CLIENT=1 bad_job kill9 || fail "kill9: exit $?: $(tail -3 "$tmp/kill9.err")"
grep -q "sampled 3  ok 2  failed 1" "$tmp/kill9.out" || fail "kill9: $(cat "$tmp/kill9.out")"
grep -q "client 1 task [0-9]* failed: worker killed by signal 9" "$tmp/kill9.err" ||
	fail "kill9: $(grep failed "$tmp/kill9.err")"
BAD=stdout BAD_CLIENT=1 bad_job stdout || fail "stdout: exit $?: $(tail -3 "$tmp/stdout.err")"
grep -q "sampled 3  ok 3  failed 0" "$tmp/stdout.out" || fail "stdout: $(cat "$tmp/stdout.out")"
grep -q "client 1 says hello on stdout" "$(ls "$tmp"/stdout/*/logs/clients/client-1.log)" ||
	fail "stdout: a child's print is not in its log"
echo "a child's death costs its task; its stdout is its log"

# The server killed by its child: that round's tasks of the server fail
# (its children die with it) or wait; the next attempt starts a new server.
BAD=killserver BAD_CLIENT=1 "$orch" 3 2 3 2 --workspace-root "$tmp/ks" "${quiet[@]}" \
	--set launcher.mode=fork-server --set worker.command="$py $src/tests/e2e/lib/bad_client.py" \
	--set launcher.max_concurrent=1 >"$tmp/ks.out" 2>"$tmp/ks.err" || fail "killserver: exit $?: $(tail -3 "$tmp/ks.err")"
grep -q "round 2/2  sampled 3  ok 2  failed 1" "$tmp/ks.out" || fail "killserver: $(cat "$tmp/ks.out")"
check_clean "$tmp/ks"
echo "a server that dies is started again"

# Refusals: each fails the job's tasks with a reason that says what to do.
"$orch" 2 2 2 1 --workspace-root "$tmp/fake" "${quiet[@]}" --set launcher.mode=fork-server \
	--set launcher.worker="$fake" >"$tmp/fake.out" 2>"$tmp/fake.err" && fail "fake worker in fork-server mode: exit 0"
grep -q "said hello as a worker: it does not run as a fork server" "$tmp/fake.err" ||
	fail "fake worker: $(tail -3 "$tmp/fake.err")"
printf 'import cohort\nraise SystemExit("no GPU here, says the script")\n' >"$tmp/early.py"
"$orch" 2 2 2 1 --workspace-root "$tmp/early" "${quiet[@]}" --set launcher.mode=fork-server \
	--set worker.command="$py $tmp/early.py" >"$tmp/early.out" 2>"$tmp/early.err" && fail "early exit: exit 0"
grep -q 'fork server exited with status 1; its log ends "no GPU here, says the script"' "$tmp/early.err" ||
	fail "early exit: $(tail -3 "$tmp/early.err")"
# CUDA started before cohort.init(): a stand-in torch whose CUDA is
# initialised (this machine has no GPU to start it for real).
mkdir -p "$tmp/fakecuda/torch"
printf 'class cuda:\n    @staticmethod\n    def is_initialized():\n        return True\n' >"$tmp/fakecuda/torch/__init__.py"
printf 'import torch\nimport cohort\ncohort.init()\n' >"$tmp/cuda.py"
PYTHONPATH=$tmp/fakecuda "$orch" 2 2 2 1 --workspace-root "$tmp/cuda" "${quiet[@]}" --set launcher.mode=fork-server \
	--set worker.command="$py $tmp/cuda.py" >"$tmp/cuda.out" 2>"$tmp/cuda.err" && fail "CUDA before the fork point: exit 0"
grep -q "cuda-before-fork: CUDA was initialised before cohort.init()" "$tmp/cuda.err" ||
	fail "CUDA before the fork point: $(tail -3 "$tmp/cuda.err")"
echo "fork_server: ok"
