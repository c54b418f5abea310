#!/usr/bin/env bash
# Image sets as h5py writes them by default (superblock 0: version-1 object
# headers, symbol-table groups, no metadata checksums - the format libhdf5
# 1.10 can crash on when damaged, so every HDF5 input is first read by a
# helper process) still train, evaluate and predict, alone and under
# mpirun -np 2: contiguous [N,28,28] (NumPy's MNIST shape), chunked+gzip
# [N,784] with a classes attribute on /labels, and an unlabelled predict set.
# The images are a learnable pattern (label k lights row band k), so the
# accuracy shows the pixels were read, not just opened.
# usage: h5py_test.sh BUILD/mnist-dist
set -uo pipefail
BIN=$1
T=$(mktemp -d /tmp/mnist-h5py.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
RUN=(timeout -k 5 120)
source "$(dirname "$0")/mpi.sh"
MPI2=(timeout -k 5 120 "${MPIEXEC_N[@]}" 2)

# Debian's python3-h5py lives in /usr/bin/python3 (a pyenv python first in PATH lacks it)
"${MNIST_PYTHON:-/usr/bin/python3}" - "$T" <<'PY' || { echo "FAIL  h5py could not write the files"; exit 1; }
import sys, numpy as np, h5py
d = sys.argv[1]
rng = np.random.default_rng(7)
def make(n):
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(y):
        x[i, 2 + 2 * k:4 + 2 * k, 4:24] = 255
    return x, y
x, y = make(600)
with h5py.File(f"{d}/train.h5", "w") as f:  # h5py defaults: contiguous, superblock 0
    f["images"] = x
    f["labels"] = y
x, y = make(200)
with h5py.File(f"{d}/test.h5", "w") as f:
    f.create_dataset("images", data=x.reshape(200, 784), chunks=(50, 784), compression="gzip")
    l = f.create_dataset("labels", data=y, chunks=(100,), compression="gzip")
    l.attrs["classes"] = np.int32(10)
with h5py.File(f"{d}/unlabelled.h5", "w") as f:
    f["images"] = x[:50]
np.savetxt(f"{d}/unlabelled.txt", y[:50], fmt="%d")
for name in ("train", "test", "unlabelled"):
    with open(f"{d}/{name}.h5", "rb") as f:
        head = f.read(9)
    assert head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] == 0, (name, head)
print("h5py %s wrote superblock-0 files" % h5py.__version__)
PY

ARGS=(--layers 32 --epochs 4 --batch-size 32 --val-split 100 --checkpoint-every 1 --quiet)
if "${RUN[@]}" "$BIN" --train "$T/train.h5" --test "$T/test.h5" "${ARGS[@]}" --out "$T/run" >"$T/train.out" 2>"$T/train.err"; then
  pass "train on h5py files"
else
  fail "train on h5py files"; sed 's/^/      /' "$T/train.err" | head
fi
CKPT=$(ls "$T"/run/checkpoints/epoch-*.h5 2>/dev/null | sort | tail -1)
[[ -n $CKPT ]] || { fail "no checkpoint written"; exit 1; }

# evaluate RUNNER...: accuracy on test.h5 must be high (the pattern is learnable)
evaluate() {
  local name=$1
  shift
  if "$@" "$BIN" evaluate --model "$CKPT" --data "$T/test.h5" --out "$T/eval-$name" >"$T/ev.out" 2>"$T/ev.err"; then
    local acc
    acc=$(grep -o 'accuracy [0-9.]*' "$T/ev.out" | head -1 | cut -d' ' -f2)
    if [[ -n $acc ]] && awk -v a="$acc" 'BEGIN { exit !(a >= 90) }'; then
      pass "evaluate ($name) on the h5py test set: $acc%"
    else
      fail "evaluate ($name): accuracy '$acc' below 90%"; sed 's/^/      /' "$T/ev.out" | head -3
    fi
  else
    fail "evaluate ($name) refused the h5py test set"; sed 's/^/      /' "$T/ev.err" | head
  fi
}
evaluate alone "${RUN[@]}"
evaluate np2 "${MPI2[@]}"

# predict on the unlabelled h5py set: one row per image, mostly right
if "${RUN[@]}" "$BIN" predict --model "$CKPT" --input "$T/unlabelled.h5" --output "$T/pred.csv" >"$T/p.out" 2>"$T/p.err"; then
  rows=$(($(wc -l <"$T/pred.csv") - 1))
  right=$(tail -n +2 "$T/pred.csv" | cut -d, -f2 | paste -d' ' - "$T/unlabelled.txt" | awk '$1 == $2' | wc -l)
  if [[ $rows -eq 50 && $right -ge 45 ]]; then
    pass "predict on the unlabelled h5py set: $rows rows, $right right"
  else
    fail "predict: $rows rows (expected 50), $right right (expected >= 45)"
  fi
else
  fail "predict refused the unlabelled h5py set"; sed 's/^/      /' "$T/p.err" | head
fi

# train under mpirun -np 2 on the same files, resumed from the checkpoint
if "${MPI2[@]}" "$BIN" --train "$T/train.h5" --test "$T/test.h5" "${ARGS[@]}" --epochs 5 \
  --resume "$CKPT" --out "$T/run2" >"$T/t2.out" 2>"$T/t2.err"; then
  pass "np2 train --resume on h5py files"
else
  fail "np2 train --resume on h5py files"; sed 's/^/      /' "$T/t2.err" | head
fi

echo "h5py_test: $fails failed"
exit $((fails > 0))
