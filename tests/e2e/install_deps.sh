#!/usr/bin/env bash
# install_deps.sh: tools/install-deps.sh against a stand-in dpkg-query and
# apt-get on PATH: with none, some or all of a set installed it names
# exactly what is missing (--check exits 1, or 0 when nothing is); as root
# it runs apt-get update and one apt-get install of just the missing
# packages and says so; not root, it prints the apt-get line to run and
# exits 1 without running anything; a failing apt-get update or install is
# an error that says what failed; the run set holds none of the test set's
# tools; a bad argument is a usage error.
set -euo pipefail
src=${COHORT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
deps=$src/tools/install-deps.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }

# dpkg-query -W: "NAME install ok installed" for each listed package that is
# in $tmp/installed, an error and exit 1 for any other (as dpkg does).
mkdir "$tmp/bin"
cat >"$tmp/bin/dpkg-query" <<'SH'
#!/bin/sh
rc=0
for a; do
	case "$a" in -*) continue ;; esac
	if grep -qx "$a" "$FAKE_DIR/installed" 2>/dev/null; then
		echo "$a install ok installed"
	else
		echo "dpkg-query: no packages found matching $a" >&2
		rc=1
	fi
done
exit $rc
SH
# apt-get: records its arguments; fails when $FAKE_DIR/fail-<verb> exists.
cat >"$tmp/bin/apt-get" <<'SH'
#!/bin/sh
echo "$*" >>"$FAKE_DIR/apt.log"
for a; do [ -e "$FAKE_DIR/fail-$a" ] && exit 100; done
exit 0
SH
chmod 755 "$tmp/bin/dpkg-query" "$tmp/bin/apt-get"
export FAKE_DIR=$tmp PATH="$tmp/bin:$PATH"
deps_run() { bash "$deps" "$@" >"$tmp/out" 2>&1; }

mapfile -t run_set < <(bash "$deps" --list run)
mapfile -t test_set < <(bash "$deps" --list test)
[ ${#run_set[@]} -ge 8 ] || fail "run set too small: ${run_set[*]}"
# Whether $1 is one of the rest. (Not printf | grep -q: grep's early exit
# can fail printf with SIGPIPE, and pipefail then fails the check.)
in_set() {
	local want=$1 p
	shift
	for p in "$@"; do [ "$p" = "$want" ] && return 0; done
	return 1
}
for p in clang chromium slurmd debootstrap python3-numpy python3-msgpack python3-torch; do
	in_set "$p" "${run_set[@]}" && fail "the run set holds $p, which only tests need"
	in_set "$p" "${test_set[@]}" || fail "the test set lacks $p"
done
# The python set: the run set and what a user's Python script needs.
mapfile -t python_set < <(bash "$deps" --list python)
for p in "${run_set[@]}" python3-numpy python3-msgpack python3-torch; do
	in_set "$p" "${python_set[@]}" || fail "the python set lacks $p"
done
for p in "${run_set[@]}"; do
	in_set "$p" "${test_set[@]}" || fail "the test set lacks the run set's $p"
done

# None installed.
: >"$tmp/installed"
if deps_run --check run; then fail "--check with nothing installed exited 0"; fi
grep -q "${#run_set[@]} of ${#run_set[@]} packages of the run set missing: ${run_set[*]}" "$tmp/out" ||
	fail "--check with nothing installed: $(cat "$tmp/out")"

# Some installed: only the others are named, and installed in one go.
printf '%s\n' "${run_set[@]:0:3}" >"$tmp/installed"
rest=("${run_set[@]:3}")
if deps_run --check; then fail "--check with some installed exited 0"; fi
grep -q "missing: ${rest[*]}\$" "$tmp/out" || fail "--check with some installed: $(cat "$tmp/out")"
if [ "$(id -u)" -eq 0 ]; then
	rm -f "$tmp/apt.log"
	deps_run run || fail "install as root exited $?: $(cat "$tmp/out")"
	[ "$(sed -n 1p "$tmp/apt.log")" = "update -q" ] || fail "first apt-get call: $(cat "$tmp/apt.log")"
	[ "$(sed -n 2p "$tmp/apt.log")" = "install -y -q --no-install-recommends ${rest[*]}" ] ||
		fail "apt-get install call: $(cat "$tmp/apt.log")"
	[ "$(wc -l <"$tmp/apt.log")" -eq 2 ] || fail "apt-get ran more than twice: $(cat "$tmp/apt.log")"
	grep -q "running: apt-get install -y --no-install-recommends ${rest[*]}" "$tmp/out" ||
		fail "the install command was not shown: $(cat "$tmp/out")"

	touch "$tmp/fail-update"
	if deps_run run; then fail "a failing apt-get update was not an error"; fi
	grep -q "apt-get update failed" "$tmp/out" || fail "failing update: $(cat "$tmp/out")"
	rm "$tmp/fail-update"
	touch "$tmp/fail-install"
	if deps_run run; then fail "a failing apt-get install was not an error"; fi
	grep -q "apt-get install failed" "$tmp/out" || fail "failing install: $(cat "$tmp/out")"
	rm "$tmp/fail-install"
fi

# Not root: the line to run, and nothing run.
as_user=()
if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv >/dev/null || fail "setpriv (util-linux) missing"
	as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups
		env FAKE_DIR="$tmp" PATH="$tmp/bin:/usr/bin:/bin")
fi
# A copy the other uid can read wherever the checkout is (/root is 0700).
cp "$deps" "$tmp/install-deps.sh"
chmod 755 "$tmp/install-deps.sh"
rm -f "$tmp/apt.log"
if "${as_user[@]}" bash "$tmp/install-deps.sh" run >"$tmp/out" 2>&1; then fail "not root with packages missing exited 0"; fi
grep -q "not root" "$tmp/out" && grep -q "apt-get install -y --no-install-recommends ${rest[*]}" "$tmp/out" ||
	fail "not root: $(cat "$tmp/out")"
[ ! -e "$tmp/apt.log" ] || fail "not root, yet apt-get ran: $(cat "$tmp/apt.log")"

# All installed: one line, exit 0, nothing run.
printf '%s\n' "${test_set[@]}" >"$tmp/installed"
deps_run test || fail "all installed exited $?: $(cat "$tmp/out")"
grep -q "all ${#test_set[@]} packages of the test set are installed" "$tmp/out" || fail "all installed: $(cat "$tmp/out")"
[ ! -e "$tmp/apt.log" ] || fail "nothing missing, yet apt-get ran: $(cat "$tmp/apt.log")"

if deps_run bogus; then fail "an unknown argument exited 0"; fi
grep -q "unknown argument 'bogus'" "$tmp/out" || fail "unknown argument: $(cat "$tmp/out")"
echo "install-deps: none/some/all installed, as root and not, failing apt-get: as expected"
