# lib/fmnist.sh: what the end-to-end tests on the real Fashion-MNIST share:
# a skip (exit 77) where Debian's dataset-fashion-mnist is not installed,
# then $tmp (removed on exit unless KEEP=1) and fail().
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
	echo "SKIPPED: Fashion-MNIST missing (apt-get install dataset-fashion-mnist)"
	exit 77
fi
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
