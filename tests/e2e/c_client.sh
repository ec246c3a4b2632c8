#!/usr/bin/env bash
# c_client.sh: a user's own program in C on libcohort-client. The library,
# its header and pkg-config file installed by cmake --install compile
# examples/c-client/train.c as a user would; its job (model custom, the
# initial model from the program's init task) runs with spawn, fork-server
# and the stream transport to the same model, and the model learns; the
# shared library exports only the header's functions; a program that asks
# for the next task before reporting one costs that task with the reason.
. "$(dirname "$0")/lib/fake.sh"
src=${COHORT_SOURCE_DIR:?}
cd "$src"

p=$tmp/prefix
cmake --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 || fail "cmake --install: $(tail "$tmp/install.log")"
pc=$(find "$p" -name cohort-client.pc)
[ -n "$pc" ] && [ -f "$p/include/cohort/client.h" ] || fail "no cohort-client.pc or cohort/client.h under $p"
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir cohort-client)
cc -O2 -Wall -Wextra -Werror -o "$tmp/train" examples/c-client/train.c \
	$(pkg-config --cflags --libs cohort-client) -Wl,-rpath,"$libdir" -lm 2>"$tmp/cc.err" ||
	fail "the example does not compile against the installed library: $(cat "$tmp/cc.err")"
other=$(nm -D --defined-only "$libdir/libcohort-client.so" | awk '{print $3}' | grep -v '^cohort_' || true)
[ -z "$other" ] || fail "libcohort-client.so exports more than cohort_*: $(echo $other | head -c 300)"

for mode in spawn fork-server stream; do
	extra=(--set launcher.mode=spawn)
	[ $mode = fork-server ] && extra=(--set launcher.mode=fork-server)
	[ $mode = stream ] && extra=(--set transport.mode=stream)
	"$orch" 4 4 4 3 --config examples/c-client/job.json --workspace-root "$tmp/$mode" \
		--set worker.command="$tmp/train" --set output.progress=never "${extra[@]}" \
		>"$tmp/$mode.out" 2>"$tmp/$mode.err" || fail "$mode: exit $?: $(tail -5 "$tmp/$mode.err")"
	grep -q "round 3/3  sampled 4  ok 4  failed 0" "$tmp/$mode.out" || fail "$mode: $(cat "$tmp/$mode.out")"
done
first=$(sed -n 's/^round 1\/3 .*test_loss \([0-9.]*\).*/\1/p' "$tmp/spawn.out")
last=$(sed -n 's/^round 3\/3 .*test_loss \([0-9.]*\).*/\1/p' "$tmp/spawn.out")
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }' ||
	fail "test_loss went from $first to $last in 3 rounds: the model did not learn"
ref=$(ls "$tmp"/spawn/*/results/global_model.safetensors)
for mode in fork-server stream; do
	cmp "$ref" "$(ls "$tmp"/$mode/*/results/global_model.safetensors)" || fail "$mode gives another model than spawn"
done
[ -f "$(ls -d "$tmp"/spawn/*/)checkpoints/initial.safetensors" ] || fail "no initial model from the init task"

# A program that asks for the next task while one is open.
cat >"$tmp/rude.c" <<'C'
#include <cohort/client.h>
int main(void) {
	char err[256];
	struct cohort_client *cl = cohort_open(err, sizeof err);
	struct cohort_task *t;
	if (cl == 0) return 2;
	while (cohort_next(cl, &t) > 0)
		if (cohort_task_kind(t) == COHORT_INIT) {
			float w[8] = {0}, b = 0;
			struct cohort_tensor m[] = {{"w", COHORT_F32, 1, {8}, w, 0}, {"b", COHORT_F32, 1, {1}, &b, 0}};
			cohort_done_init(t, m, 2);
		}
	return cohort_close(cl);
}
C
cc -o "$tmp/rude" "$tmp/rude.c" $(pkg-config --cflags --libs cohort-client) -Wl,-rpath,"$libdir" || fail "rude.c does not compile"
"$orch" 2 2 2 1 --config examples/c-client/job.json --workspace-root "$tmp/rude-ws" --set worker.command="$tmp/rude" \
	--set launcher.tasks_per_worker=2 --set output.progress=never >"$tmp/rude.out" 2>&1 || true
grep -q "client 0 task 0 failed: worker error protocol: task 0: the program asked for the next task before reporting this one" "$tmp/rude.out" ||
	fail "the rude program's task did not fail with the reason: $(cat "$tmp/rude.out")"
echo "C client: $(tail -n 1 "$tmp/spawn.out" | cut -c1-40); spawn, fork-server and stream give one model"
