#!/usr/bin/env bash
# install-deps.sh: install what cohort needs from Debian's packages.
# Idempotent: installs only what is missing and says what it runs.
#
#   tools/install-deps.sh [--check] [--list] [run | python | test | slurm]
#
#   run    building and running a job (./run.sh): compiler, CMake, the
#          libraries, Fashion-MNIST. The default.
#   python the run set and what your own Python training scripts and
#          examples/ need: python3 with numpy, msgpack and torch
#   test   everything tools/test.sh uses on top: clang and its sanitizer and
#          fuzzing runtime, clang-format, the python set (the Python
#          client's and the PyTorch examples' tests), chromium (the report's
#          screenshot test), Slurm and munge (the batch-script test),
#          debootstrap (the fresh-machine stage), file (cpack's .deb).
#   slurm  Slurm's controller, node daemon, client and munge alone
#          (tools/slurm/cluster.sh install).
#   --check  only say what is missing (exit 1 if anything is)
#   --list   print the set's packages, one a line, and exit
#
# Not root and something missing: prints the apt-get line to run as root
# and exits 1 (password-less sudo is used when there is one).
set -euo pipefail

run_set=(
	build-essential cmake pkg-config
	libevent-dev libmsgpack-dev libjansson-dev libcurl4-openssl-dev
	libopenblas-dev zlib1g-dev libsodium-dev libgfshare-dev libpcre2-dev
	dataset-fashion-mnist
)
python_set=(python3 python3-numpy python3-msgpack python3-torch)
test_set=(
	git ca-certificates
	clang libclang-rt-dev clang-format
	"${python_set[@]}"
	chromium
	debootstrap file
)
slurm_set=(slurmctld slurmd slurm-client munge)

check=0
list=0
set_name=run
for a in "$@"; do
	case "$a" in
	--check) check=1 ;;
	--list) list=1 ;;
	run | python | test | slurm) set_name=$a ;;
	-h | --help)
		sed -n '3,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "install-deps: unknown argument '$a' (expected run, python, test, slurm, --check or --list)" >&2
		exit 2
		;;
	esac
done
case $set_name in
run) packages=("${run_set[@]}") ;;
python) packages=("${run_set[@]}" "${python_set[@]}") ;;
test) packages=("${run_set[@]}" "${test_set[@]}" "${slurm_set[@]}") ;;
slurm) packages=("${slurm_set[@]}") ;;
esac

if [ $list -eq 1 ]; then
	printf '%s\n' "${packages[@]}"
	exit 0
fi

# One dpkg-query for every package (run.sh calls this on each start). It
# exits non-zero when any package is unknown to dpkg, which is exactly the
# case to handle: its output is read whatever its status.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
	if ! awk -v p="$p" '$1 == p && $NF == "installed" {found=1} END {exit !found}' <<<"$installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages of the $set_name set are installed"
	exit 0
fi

echo "install-deps: ${#missing[@]} of ${#packages[@]} packages of the $set_name set missing: ${missing[*]}"
if [ $check -eq 1 ]; then
	exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo_cmd=(sudo)
	else
		echo "install-deps: not root and no password-less sudo; as root, run:" >&2
		echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
		exit 1
	fi
fi

apt=("${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
echo "install-deps: running: ${sudo_cmd[*]}${sudo_cmd:+ }apt-get update"
if ! "${apt[@]}" update -q; then
	echo "install-deps: apt-get update failed: is Debian's package registry reachable? (see /etc/apt/sources.list*)" >&2
	exit 1
fi
echo "install-deps: running: ${sudo_cmd[*]}${sudo_cmd:+ }apt-get install -y --no-install-recommends ${missing[*]}"
if ! "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}"; then
	echo "install-deps: apt-get install failed (its messages are above)" >&2
	exit 1
fi
echo "install-deps: installed ${missing[*]}"
