#!/usr/bin/env bash
# install-deps.sh: install cohort's build and run dependencies from Debian's
# packages. Idempotent: installs only what is missing and says what it does.
#   tools/install-deps.sh            build + run + test dependencies
#   tools/install-deps.sh --check    only report what is missing (exit 1 if any)
set -euo pipefail

packages=(
	build-essential cmake pkg-config git
	libevent-dev libmsgpack-dev libjansson-dev libcurl4-openssl-dev
	libopenblas-dev zlib1g-dev
	dataset-fashion-mnist
	clang libclang-rt-dev python3
	chromium
)

# One dpkg-query for every package: run.sh calls this on each start.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null |
	awk '$NF == "installed" {print $1}')
missing=()
for p in "${packages[@]}"; do
	if ! grep -qx "$p" <<<"$installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [ "${1:-}" = "--check" ]; then
	exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
	sudo_cmd=""
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo_cmd="sudo"
	else
		echo "install-deps: not root and no password-less sudo; run as root:" >&2
		echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
else
	sudo_cmd=""
fi

echo "install-deps: apt-get update"
$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -q
echo "install-deps: apt-get install ${missing[*]}"
$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
