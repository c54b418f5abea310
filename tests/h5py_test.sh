#!/usr/bin/env bash
# Image sets as h5py writes them by default (superblock 0: version-1 object
# headers, symbol-table groups, no metadata checksums - the format libhdf5
# 1.10 can crash on when damaged, so every HDF5 input is first read by a
# helper process) still train, evaluate and predict, alone and under
# mpirun -np 2: contiguous [N,28,28] (NumPy's MNIST shape), chunked+gzip
# [N,784] with a classes attribute on /labels, and an unlabelled predict set.
# The images are a learnable pattern (label k lights row band k), so the
# accuracy shows the pixels were read, not just opened. Then the matrix of
# shapes, types and dataset names h5py users write (issue 15).
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

# --- the shapes and types h5py users have (issue 15) --------------------------------
# Each accepted layout of the test set (images [N,784], [N,28,28] or
# [N,28,28,1], uint8 0..255 or float32 0..1, labels uint8, int32 or int64,
# under their own names) evaluates and predicts exactly as the canonical
# file does, and a training set as float32 + int64 trains to the same bits;
# each refused one is named with its shape and type.
"${MNIST_PYTHON:-/usr/bin/python3}" - "$T" <<'PY' || { echo "FAIL  h5py could not write the matrix"; exit 1; }
import sys, numpy as np, h5py
d = sys.argv[1]
with h5py.File(f"{d}/test.h5", "r") as f:
    x, y = f["images"][:].reshape(-1, 28, 28), f["labels"][:]
with h5py.File(f"{d}/train.h5", "r") as f:
    tx, ty = f["images"][:], f["labels"][:]
f32 = lambda a: (a / 255.0).astype(np.float32)
accepted = {  # name: (images, labels, images dataset, labels dataset)
    "u8-784-i32": (x.reshape(-1, 784), y.astype(np.int32), "x_test", "y_test"),
    "f32-28x28-i64": (f32(x), y.astype(np.int64), "images", "labels"),
    "u8-28x28x1-i64": (x[..., None], y.astype(np.int64), "x", "y"),
    "f32be-28x28x1-u8": (f32(x)[..., None].astype(">f4"), y, "data/images", "data/labels"),
    "f32-784-i32": (f32(x).reshape(-1, 784), y.astype(np.int32), "images", "labels"),
}
for name, (ix, ly, iname, lname) in accepted.items():
    with h5py.File(f"{d}/m-{name}.h5", "w") as f:
        f.create_dataset(iname, data=ix, chunks=True, compression="gzip") if "784" in name else f.create_dataset(iname, data=ix)
        f[lname] = ly
with h5py.File(f"{d}/m-train-f32.h5", "w") as f:
    f["x_train"] = f32(tx)[..., None]; f["y_train"] = ty.astype(np.int64)
with h5py.File(f"{d}/m-test-names.h5", "w") as f:
    f["x_train"] = x; f["y_train"] = y
bad = x.astype(np.float32) / 255; bad[150, 2, 3] = 2.0
refused = {  # name: (images, labels)
    "f64": (x.astype(np.float64) / 255, y),
    "i16": (x.astype(np.int16), y),
    "f32-range": (bad, y),
    "labels-f32": (x, y.astype(np.float32)),
    "labels-2d": (x, y[:, None]),
    "f32-783": (f32(x).reshape(-1, 784)[:, :783], y),
    "labels-bool": (x, y > 4),
}
for name, (ix, ly) in refused.items():
    with h5py.File(f"{d}/r-{name}.h5", "w") as f:
        f["images"] = ix; f["labels"] = ly
PY
names() { # the dataset options of matrix file $1
  case $1 in
    u8-784-i32) echo "--images-dataset x_test --labels-dataset y_test" ;;
    u8-28x28x1-i64) echo "--images-dataset x --labels-dataset y" ;;
    f32be-28x28x1-u8) echo "--images-dataset /data/images --labels-dataset data/labels" ;;
  esac
}
"${RUN[@]}" "$BIN" evaluate --model "$CKPT" --data "$T/test.h5" --out "$T/ev-canon" --quiet >"$T/canon.ev" 2>&1
"${RUN[@]}" "$BIN" predict --model "$CKPT" --input "$T/test.h5" --probs --output "$T/canon.csv" --quiet
for m in u8-784-i32 f32-28x28-i64 u8-28x28x1-i64 f32be-28x28x1-u8 f32-784-i32; do
  # shellcheck disable=SC2046 # the options split into words
  if ! "${RUN[@]}" "$BIN" evaluate --model "$CKPT" --data "$T/m-$m.h5" $(names $m) --out "$T/ev-$m" --quiet \
      >"$T/m.ev" 2>"$T/m.err"; then
    fail "matrix $m: evaluate refused it: $(head -1 "$T/m.err")"
  elif ! "${RUN[@]}" "$BIN" predict --model "$CKPT" --input "$T/m-$m.h5" $(names $m) --probs \
      --output "$T/m.csv" --quiet 2>"$T/m.err"; then
    fail "matrix $m: predict refused it: $(head -1 "$T/m.err")"
  elif ! cmp -s <(sed "s|$T/[^ ]*||g" "$T/m.ev") <(sed "s|$T/[^ ]*||g" "$T/canon.ev") ||
       ! cmp -s "$T/m.csv" "$T/canon.csv"; then
    fail "matrix $m: evaluate or predict differ from the canonical file"
  else
    pass "matrix $m: evaluate and predict --probs as the canonical file ($(grep -o 'accuracy [0-9.]*%' "$T/m.ev"))"
  fi
done
TA=(--layers 16 --epochs 2 --batch-size 32 --val-split 100 --checkpoint-every 0 --quiet)
"${RUN[@]}" "$BIN" --train "$T/train.h5" --test "$T/test.h5" "${TA[@]}" --out "$T/tc" >/dev/null 2>"$T/tc.err"
if "${RUN[@]}" "$BIN" --train "$T/m-train-f32.h5" --test "$T/m-test-names.h5" --images-dataset x_train \
    --labels-dataset y_train "${TA[@]}" --out "$T/tf" >/dev/null 2>"$T/tf.err" &&
   "${MNIST_PYTHON:-/usr/bin/python3}" - "$T/tc/checkpoints/epoch-0002.h5" "$T/tf/checkpoints/epoch-0002.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = []
a["model"].visit(lambda n: names.append(n) if isinstance(a["model"][n], h5py.Dataset) else None)
assert names and all(np.array_equal(a["model"][n][:], b["model"][n][:]) for n in names)
PY
then
  pass "train on float32 [N,28,28,1] + int64 under other names: the same weights, bit for bit"
else
  fail "train on float32 + int64: refused or other weights"; sed 's/^/      /' "$T/tf.err" "$T/tc.err" | head -4
fi
# refused: the message names the dataset, its shape and its type
rrefuse() { # NAME REGEX
  if "${RUN[@]}" "$BIN" evaluate --model "$CKPT" --data "$T/r-$1.h5" --out "$T/ev-r" >/dev/null 2>"$T/r.err"; then
    fail "refused $1: accepted"
  elif [[ $(grep -c '^mnist-dist:' "$T/r.err") -eq 1 ]] && grep -Eq "r-$1.h5: $2" "$T/r.err"; then
    pass "refused $1: $(sed -n 's/^mnist-dist: error: [^ ]*: //p' "$T/r.err" | cut -c1-150)"
  else
    fail "refused $1: message '$(head -1 "$T/r.err")' does not match /$2/"
  fi
}
rrefuse f64 "/images must hold uint8 \(0..255\) or float32 \(0..1\) values, found shape \[200,28,28\] of float64"
rrefuse i16 "/images must hold uint8 .* found shape \[200,28,28\] of int16"
rrefuse f32-range "/images\[150\] holds 2 at pixel 59 \(y 2, x 3\): float32 images must lie in 0..1"
rrefuse labels-f32 "/labels must be a 1-D dataset of uint8, int32 or int64 labels, found shape \[200\] of float32"
rrefuse labels-2d "/labels must be a 1-D dataset .* found shape \[200,1\] of uint8"
rrefuse f32-783 "/images must be .* found shape \[200,783\] of float32 \(accepted: uint8 0..255 or float32 0..1"
rrefuse labels-bool "/labels must be .* found shape \[200\] of an enum"
if "${RUN[@]}" "$BIN" evaluate --model "$CKPT" --data "$T/m-u8-28x28x1-i64.h5" --out "$T/ev-r" >/dev/null 2>"$T/r.err"; then
  fail "default names on a file without them: accepted"
elif grep -q "no /images dataset .*--images-dataset" "$T/r.err"; then
  pass "default names on a file without them: $(sed 's/^mnist-dist: error: [^ ]*: //' "$T/r.err")"
else
  fail "default names: $(head -1 "$T/r.err")"
fi

echo "h5py_test: $fails failed"
exit $((fails > 0))
