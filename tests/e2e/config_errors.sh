#!/usr/bin/env bash
# config_errors.sh: what a new user sees for the first mistakes they make,
# each an exit 2 with one line naming the file, key and fix: a key in the
# wrong section or mistyped (with the key it most likely meant, or none when
# nothing is close), a config file that is missing or is not JSON (its line
# and column), --resume of a directory that is no workspace or is not there.
# No job starts: nothing is written under the workspace root.
. "$(dirname "$0")/lib/fake.sh"

# expect WANT ARGS...: cohort-orchestrator ARGS exits 2, stderr holds WANT.
expect() {
	local want=$1 rc=0
	shift
	"$orch" "$@" --workspace-root "$tmp/ws" >"$tmp/out" 2>"$tmp/err" || rc=$?
	[ $rc -eq 2 ] || fail "$*: exit $rc: $(cat "$tmp/err")"
	grep -qF -- "$want" "$tmp/err" || fail "$*: no '$want' in: $(cat "$tmp/err")"
}

echo '{"availability": {"p": 0.5}}' >"$tmp/avail.json"
expect "cohort-orchestrator: $tmp/avail.json: availability.p: unknown key; did you mean federation.availability?" \
	--config "$tmp/avail.json"
expect "cohort-orchestrator: --set: availability.p: unknown key; did you mean federation.availability?" \
	--set availability.p=0.5
expect "cohort-orchestrator: --set: federation.round: unknown key; did you mean federation.rounds?" \
	--set federation.round=3
expect "cohort-orchestrator: --set: nosuch.key: unknown key (cohort-orchestrator --help lists the keys)" \
	--set nosuch.key=1

expect "cohort-orchestrator: $tmp/none.json: cannot open: No such file or directory" --config "$tmp/none.json"
printf '{\n  "federation": {"rounds": 3,}\n}\n' >"$tmp/comma.json"
expect "cohort-orchestrator: $tmp/comma.json: invalid JSON at line 2, column 30: string or '}' expected near '}'" \
	--config "$tmp/comma.json"

mkdir "$tmp/notws"
expect "cohort-orchestrator: --resume $tmp/notws is not a cohort workspace (no $tmp/notws/config.json); give the directory a job printed at its start, e.g. workspaces/" \
	--resume "$tmp/notws"
expect "cohort-orchestrator: --resume $tmp/nowhere: No such file or directory; give the directory a job printed at its start, e.g. workspaces/" \
	--resume "$tmp/nowhere"

[ ! -e "$tmp/ws" ] || fail "a workspace was created: $(ls -R "$tmp/ws")"
echo "config_errors: ok"
