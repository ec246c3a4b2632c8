#!/usr/bin/env bash
# fresh-check.sh: the README's commands as a newcomer types them, on a
# brand-new Debian 12 (a `debootstrap --variant=minbase bookworm` root) that
# holds a clean export of this checkout (tracked files and untracked ones
# git does not ignore):
#   1. ./run.sh                    installs the run set and nothing else,
#                                  builds, runs the default job, prints its
#                                  summary
#   2. ./tools/test.sh --deps-only the test command's dependency step
#                                  (--full: the whole ./tools/test.sh)
#   3. cpack -G DEB                the package of that build, installed with
#                                  apt-get on a second fresh root, runs a job
#                                  from /usr with its workspace in the
#                                  current directory
# Needs root (chroot and mounts, in a mount and PID namespace of their own
# so nothing outlives the check), debootstrap, and Debian's package
# registry: without any of them it fails and says which.
#
#   tools/fresh-check.sh [--full] [--keep DIR]
#   --keep DIR           build the roots in DIR and leave them there
#   COHORT_FRESH_CACHE   cache directory (default /var/cache/cohort-fresh):
#                        the base root as a tarball, made again when older
#                        than 30 days, the .deb files apt downloaded, and
#                        the logs of the last run (last-logs/)
#   COHORT_FRESH_MIRROR  Debian mirror (default: the host's bookworm source)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${COHORT_FRESH_CACHE:-/var/cache/cohort-fresh}
full=0
keep=
while [ $# -gt 0 ]; do
	case "$1" in
	--full) full=1 ;;
	--keep)
		keep=${2:?--keep needs a directory}
		shift
		;;
	-h | --help)
		sed -n '3,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "fresh-check: unknown argument '$1'" >&2
		exit 2
		;;
	esac
	shift
done

say() { printf 'fresh-check: %s\n' "$*"; }
die() {
	printf 'fresh-check: FAILED: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts); run it as root or set COHORT_FRESH_CHECK=0 to skip it"
command -v debootstrap >/dev/null || die "debootstrap is not installed (tools/install-deps.sh test installs it)"
command -v unshare >/dev/null || die "unshare (util-linux) is missing"

# The host's Debian mirror for bookworm: a deb822 stanza of
# /etc/apt/sources.list.d, else a one-line entry of /etc/apt/sources.list.
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = "" }
			/Suites:[^\n]*bookworm/ && !/security/ && match($0, /URIs:[ \t]*[^ \t\n]+/) {
				u = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); print u; exit
			}' "$f"
	done
	[ -f /etc/apt/sources.list ] &&
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == "bookworm") { print $i; exit } break } }' /etc/apt/sources.list
	return 0
}
mirror=${COHORT_FRESH_MIRROR:-$(host_mirror | head -n 1)}

work=${keep:-$(mktemp -d /var/tmp/cohort-fresh.XXXXXX)}
mkdir -p "$work" "$cache/archives/partial"
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT
# The logs of the last run outlive the roots.
logs=$cache/last-logs
rm -rf "$logs"
mkdir -p "$logs"
t_start=$(date +%s)

# The base root, once: debootstrap into a scratch directory, kept as a
# tarball of the finished root (a fresh copy then costs seconds).
base=$cache/bookworm-minbase.tar
if [ -z "$(find "$base" -mtime -30 2>/dev/null)" ]; then
	say "debootstrap --variant=minbase bookworm ${mirror:-(the default mirror)} (cached in $base)"
	scratch=$work/debootstrap
	rm -rf "$scratch"
	if ! debootstrap --variant=minbase bookworm "$scratch" ${mirror:+"$mirror"} >"$logs/debootstrap.log" 2>&1; then
		tail -n 20 "$logs/debootstrap.log" >&2
		die "debootstrap failed: is Debian's package registry reachable? (log: $logs/debootstrap.log)"
	fi
	tar -C "$scratch" -cf "$base.tmp" . && mv "$base.tmp" "$base"
	rm -rf "$scratch"
fi

# A new root from the tarball, with the host's resolver and apt's download
# cache shared with later runs (the packages are still installed by apt).
new_root() {
	local r=$1
	rm -rf "$r"
	mkdir -p "$r"
	tar -C "$r" -xf "$base"
	cp /etc/resolv.conf "$r/etc/resolv.conf"
	# Services do not start inside a chroot (munge, slurmd): the policy
	# a container image has.
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	rm -f "$r/etc/apt/apt.conf.d/docker-clean"
	# No fsync per unpacked file: the root is thrown away anyway.
	echo force-unsafe-io >"$r/etc/dpkg/dpkg.cfg.d/cohort-fresh-unsafe-io"
}

# Run a shell command line as root inside root $1, in its own mount and PID
# namespaces: /proc, /dev, /dev/shm and /sys are mounted there only, and
# every process it started dies with it.
in_root() {
	local r=$1
	shift
	unshare --mount --pid --fork --kill-child bash -euc '
		r=$1 cache=$2 cmd=$3
		mount --make-rprivate /
		# The root a mount point of its own, as on a machine: tests
		# that make mount namespaces inside need it.
		mount --bind "$r" "$r"
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		mount -t tmpfs -o size=4g,mode=1777 tmpfs "$r/dev/shm"
		mount --rbind /sys "$r/sys"
		mount --bind "$cache/archives" "$r/var/cache/apt/archives"
		exec chroot "$r" /usr/bin/env -i HOME=/root TERM=dumb \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			LANG=C.UTF-8 bash -euc "$cmd"
	' in_root "$r" "$cache" "$*"
}

# 1. ./run.sh on the first root.
r1=$work/root1
new_root "$r1"
say "root $r1: copying a clean export of $root to /root/cohort"
mkdir -p "$r1/root/cohort"
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
	xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
	tar --null -T - -cf -) | tar -C "$r1/root/cohort" -xf -

say "./run.sh (as a newcomer: nothing installed but minbase)"
t0=$(date +%s)
if ! in_root "$r1" 'cd /root/cohort && ./run.sh' >"$logs/run.log" 2>&1; then
	tail -n 40 "$logs/run.log" >&2
	die "./run.sh failed in the fresh root (log: $logs/run.log)"
fi
grep -q '^done: 3 rounds, test_acc' "$logs/run.log" ||
	die "./run.sh printed no job summary (log: $logs/run.log)"
say "./run.sh: $(grep '^done:' "$logs/run.log" | cut -c1-60)... ($(($(date +%s) - t0)) s)"
test_only=$(grep -vxF -f <(bash "$root/tools/install-deps.sh" --list run) \
	<(bash "$root/tools/install-deps.sh" --list test) | tr '\n' ' ')
extra=$(dpkg-query --admindir="$r1/var/lib/dpkg" -W -f='${Package} ${Status}\n' $test_only 2>/dev/null |
	awk '$NF == "installed" {print $1}' || true)
[ -z "$extra" ] || die "./run.sh installed what only testing needs: $extra"
say "./run.sh installed the run set only"

# 2. The test command: its dependency step, or all of it.
t0=$(date +%s)
if [ $full -eq 1 ]; then
	say "./tools/test.sh (all of it)"
	in_root "$r1" 'cd /root/cohort && COHORT_FRESH_CHECK=0 ./tools/test.sh' >"$logs/test.log" 2>&1 ||
		{ tail -n 60 "$logs/test.log" >&2; die "./tools/test.sh failed in the fresh root (log: $logs/test.log)"; }
else
	say "./tools/test.sh --deps-only"
	in_root "$r1" 'cd /root/cohort && ./tools/test.sh --deps-only' >"$logs/test.log" 2>&1 ||
		{ tail -n 40 "$logs/test.log" >&2; die "./tools/test.sh --deps-only failed in the fresh root (log: $logs/test.log)"; }
	in_root "$r1" 'cd /root/cohort && tools/install-deps.sh --check test' >/dev/null ||
		die "after ./tools/test.sh --deps-only, packages of the test set are still missing"
fi
say "./tools/test.sh$([ $full -eq 1 ] || echo ' --deps-only'): passed ($(($(date +%s) - t0)) s)"

# 3. The .deb of the run.sh build, on a second root that has only it.
t0=$(date +%s)
in_root "$r1" 'cd /root/cohort/build-release && cpack -G DEB' >"$logs/cpack.log" 2>&1 ||
	{ tail -n 30 "$logs/cpack.log" >&2; die "cpack -G DEB failed (log: $logs/cpack.log)"; }
deb=$(ls "$r1"/root/cohort/build-release/cohort_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || die "cpack made no cohort_*.deb (log: $logs/cpack.log)"
r2=$work/root2
new_root "$r2"
cp "$deb" "$r2/root/"
say "$(basename "$deb") on a second fresh root: apt-get install, then a job from /usr"
in_root "$r2" "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q /root/$(basename "$deb")" \
	>"$logs/deb.log" 2>&1 || { tail -n 30 "$logs/deb.log" >&2; die "the .deb did not install (log: $logs/deb.log)"; }
in_root "$r2" 'cohort-orchestrator --version && mkdir -p /root/jobs && cd /root/jobs &&
	cohort-orchestrator 2 2 2 2 --config /usr/share/cohort/configs/fedavg-mlp.json &&
	ls -d workspaces/*/results/global_model.safetensors' >"$logs/deb-run.log" 2>&1 ||
	{ tail -n 30 "$logs/deb-run.log" >&2; die "the installed cohort-orchestrator did not run a job (log: $logs/deb-run.log)"; }
grep -q '^done: 2 rounds, test_acc' "$logs/deb-run.log" ||
	die "the installed job printed no summary (log: $logs/deb-run.log)"
say "installed package: $(head -n 1 "$logs/deb-run.log"), job done, workspace in the current directory ($(($(date +%s) - t0)) s)"

say "passed in $(($(date +%s) - t_start)) s"
