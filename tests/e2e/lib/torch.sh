# lib/torch.sh: what the PyTorch examples' end-to-end tests share, sourced
# after lib/fake.sh: Debian's python3 with torch, the source tree as the
# working directory, and the quiet options of their jobs.
src=${COHORT_SOURCE_DIR:?}
py=/usr/bin/python3
"$py" -c 'import torch' 2>/dev/null ||
	fail "$py cannot import torch (tools/install-deps.sh test installs Debian's python3-torch)"
cd "$src"
quiet=(--set output.progress=never --set tracking.tensorboard=false --set tracking.report=false)
