#!/usr/bin/env bash
# export (issue 15): checkpoints as ONNX and safetensors, checked by other
# readers than ours:
#  - four models: an MLP (standardised) and a CNN (conv with stride and
#    padding, maxpool, dropout, flatten, dense) trained for a moment on 3,000
#    real MNIST rows; an MLP and a CNN-with-a-conv-after-a-dense-layer on
#    synthetic 12x10 RGB images (the checkpoint's shape, not 28x28x1);
#  - ONNX Runtime 1.30 (onnxruntime-node from npm, tools/fetch-onnxruntime)
#    runs each ONNX file on the test images (MNIST's 10,000) and must give
#    predict --probs' probabilities within 1e-5 and every argmax the same;
#  - Debian's onnx.checker.check_model(full_check=True) accepts each file;
#  - a plain safetensors parser (struct + json) finds every tensor equal to
#    the checkpoint's (read with h5py), bit for bit, in PyTorch's layouts;
#  - the README's PyTorch and Node.js snippets run (PyTorch when Debian's
#    python3-torch is installed: it is not a test dependency; said so when
#    it is absent) and give predict's probabilities;
#  - a missing or damaged checkpoint, an unknown --format, an output in a
#    missing directory or on a directory: one message, non-zero, no file;
#    and under mpirun -np 2 one rank writes the file.
# No network but the npm registry, once per cache (an unreachable registry
# is a failure, not a skip).
# usage: export_test.sh BUILD/mnist-dist DATA_DIR SOURCE_DIR
set -uo pipefail
BIN=$1 DATA=$2 SRC=$3
T=$(mktemp -d /tmp/mnist-export.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
source "$(dirname "$0")/mpi.sh"
PY=${MNIST_PYTHON:-/usr/bin/python3} # Debian's, with python3-h5py and python3-onnx
CHECK=$SRC/tests/export/export_check.py
RUN=(timeout -k 5 300)
t0=$SECONDS

ORT=$("$SRC/tools/fetch-onnxruntime" 2>"$T/ort.log") \
  || { echo "FAIL  cannot install onnxruntime-node (npm registry?)"; cat "$T/ort.log"; exit 1; }
for m in onnx h5py; do
  "$PY" -c "import $m" 2>/dev/null || { echo "FAIL  $PY cannot import $m (tools/install-deps installs python3-$m)"; exit 1; }
done

# --- data: 3,000 MNIST training rows; synthetic RGB images --------------------------
head -n 3000 "$DATA/mnist_train.csv" >"$T/train.csv"
head -n 500 "$DATA/mnist_test.csv" >"$T/test.csv"
"$BIN" convert --quiet "$T/train.csv" "$T/train.h5" && "$BIN" convert --quiet "$T/test.csv" "$T/test.h5" \
  || { echo "FAIL  cannot convert the subset"; exit 1; }
"$PY" - "$T" <<'PY' || { echo "FAIL  h5py could not write the RGB set"; exit 1; }
import sys, numpy as np, h5py
rng = np.random.default_rng(15)
def make(n):  # 12 x 10 x 3; the class is the brightest channel, plus a bar per class
    y = rng.integers(0, 4, n).astype(np.uint8)
    x = rng.integers(0, 90, (n, 12, 10, 3)).astype(np.uint8)
    for i, k in enumerate(y):
        x[i, :, :, k % 3] += 120
        x[i, 2 * k:2 * k + 2, :, :] = 250
    return x, y
for name, n in (("rgb_train", 600), ("rgb_test", 300)):
    x, y = make(n)
    with h5py.File(f"{sys.argv[1]}/{name}.h5", "w") as f:
        f["images"] = x
        f["labels"] = y
        f["labels"].attrs["classes"] = np.int32(4)
PY
"$PY" "$CHECK" dump "$DATA/mnist_test.h5" "$T/mnist_test.u8" >/dev/null \
  && "$PY" "$CHECK" dump "$T/rgb_test.h5" "$T/rgb_test.u8" >/dev/null || { echo "FAIL  image dumps"; exit 1; }

# --- four models --------------------------------------------------------------------
train() { # name data model-args...
  local name=$1 set=$2
  shift 2
  "${RUN[@]}" "$BIN" --quiet --train "$T/${set}_train.h5" --test "$T/${set}_test.h5" --val-split 0 \
    --checkpoint-every 0 --batch-size 64 --lr 0.003 --seed 3 --out "$T/$name" "$@" >"$T/$name.log" 2>&1 \
    || { fail "training $name"; cat "$T/$name.log"; return 1; }
}
ln -s train.h5 "$T/mnist_train.h5" && ln -s test.h5 "$T/mnist_test.h5"
MODELS=()
train mlp mnist --epochs 2 --layers 64 --dropout 0.1 --standardize && MODELS+=(mlp:mnist)
train cnn mnist --epochs 2 --model conv:6x3x3/s2/p1,relu,maxpool:2,dropout:0.1,flatten,dense:32,relu,dropout:0.2 \
  && MODELS+=(cnn:mnist)
train rgb_mlp rgb --epochs 3 --layers 24 --standardize && MODELS+=(rgb_mlp:rgb)
train rgb_cnn rgb --epochs 3 --model conv:5x3x2/p1,relu,maxpool:3/s2,dense:12,relu,conv:6x1x1,relu,maxpool:1 \
  && MODELS+=(rgb_cnn:rgb)
echo "      trained ${#MODELS[@]} models in $((SECONDS - t0)) s"

for entry in "${MODELS[@]}"; do
  name=${entry%%:*} set=${entry#*:}
  ckpt=$T/$name/checkpoints/epoch-000$([[ $set == rgb ]] && echo 3 || echo 2).h5
  images=$T/${set}_test.u8 test_h5=$([[ $set == rgb ]] && echo "$T/rgb_test.h5" || echo "$DATA/mnist_test.h5")
  if ! "$BIN" export --quiet --model "$ckpt" --format onnx --output "$T/$name.onnx" 2>"$T/err" \
     || ! "$BIN" export --model "$ckpt" --format safetensors --output "$T/$name.safetensors" >"$T/out" 2>>"$T/err"; then
    fail "$name: export"; cat "$T/err"; continue
  fi
  grep -q "^export: .* -> $T/$name.safetensors (safetensors)" "$T/out" && [[ ! -s $T/err ]] \
    && pass "$name: exported as ONNX and safetensors ($(grep -o '[0-9]* parameters, input [0-9x]*' "$T/out"))" \
    || { fail "$name: export output"; cat "$T/out" "$T/err"; }
  ls "$T" | grep -q '\.tmp\.' && fail "$name: a temporary file was left"
  "${RUN[@]}" "$BIN" predict --quiet --probs --model "$ckpt" --input "$test_h5" --output "$T/$name.csv" \
    || { fail "$name: predict --probs"; continue; }
  out=$(cd "$T" && NODE_PATH=$ORT timeout -k 5 120 node "$SRC/tests/export/ort_compare.js" "$name.onnx" "$images" "$name.csv" 1e-5)
  [[ $? -eq 0 ]] && pass "ONNX Runtime: $out" || fail "ONNX Runtime: $out"
  out=$("$PY" "$CHECK" onnx "$T/$name.onnx" "$ckpt" 2>&1) && pass "$out" || fail "$name: $out"
  out=$("$PY" "$CHECK" safetensors "$T/$name.safetensors" "$ckpt" 2>&1) && pass "$out" || fail "$name: $out"
  if "$PY" -c "import torch" 2>/dev/null; then
    out=$("$PY" "$CHECK" torch "$T/$name.safetensors" "$images" "$T/$name.csv" "$SRC/README.md" 2>&1) \
      && pass "$name: $out" || fail "$name: $out"
  else
    torch_absent=1
  fi
done
((${torch_absent:-0})) && echo "skip  the README's PyTorch snippet: python3-torch is not installed (tools/install-deps python3-torch)"

# the README's Node.js snippet, as written, on the MNIST MLP
awk '/^## Interoperability/ {s = 1} s && /^```js$/ {c = 1; next} c && /^```$/ {exit} c' "$SRC/README.md" \
  | sed "s|'model.onnx'|'$T/mlp.onnx'|" >"$T/snippet.js"
out=$(NODE_PATH=$ORT timeout -k 5 60 node "$T/snippet.js" 2>&1)
node -e "const p = JSON.parse(process.argv[1]); if (p.length !== 10 || Math.abs(p.reduce((a, b) => a + b) - 1) > 1e-5) process.exit(1)" \
  "$out" 2>/dev/null && pass "the README's Node.js snippet prints 10 probabilities summing to 1" \
  || fail "the README's Node.js snippet: $out"

# --- bad cases: one message, non-zero, nothing left ---------------------------------
expect() { # name status regex output command...
  local name=$1 want=$2 re=$3 output=$4
  shift 4
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [[ $rc -ne $want ]]; then
    fail "$name: exit $rc, expected $want"; cat "$T/err"
  elif [[ $(grep -c "^mnist-dist:" "$T/err") -ne 1 ]] || ! grep -Eq -- "$re" "$T/err"; then
    fail "$name: message"; cat "$T/err"
  elif [[ -e $output ]] || compgen -G "$output.tmp.*" >/dev/null; then
    fail "$name: $output was left"
  else
    pass "$name: $(head -1 "$T/err")"
  fi
}
CKPT=$T/mlp/checkpoints/epoch-0002.h5
expect "missing checkpoint" 1 "$T/none.h5: " "$T/x.onnx" "$BIN" export --model "$T/none.h5" --format onnx --output "$T/x.onnx"
head -c 3000 "$CKPT" >"$T/cut.h5"
expect "truncated checkpoint" 1 "$T/cut.h5: " "$T/x.safetensors" \
  "$BIN" export --model "$T/cut.h5" --format safetensors --output "$T/x.safetensors"
expect "a CSV as the checkpoint" 1 "$T/train.csv: " "$T/x.onnx" "$BIN" export --model "$T/train.csv" --format onnx --output "$T/x.onnx"
expect "unknown --format" 2 "--format: 'tflite' is not one of onnx, safetensors" "$T/x.tflite" \
  "$BIN" export --model "$CKPT" --format tflite --output "$T/x.tflite"
expect "no --format" 2 "export needs --format" "$T/x.onnx" "$BIN" export --model "$CKPT" --output "$T/x.onnx"
expect "no --output" 2 "export needs --output" "$T/x.onnx" "$BIN" export --model "$CKPT" --format onnx
expect "output in a missing directory" 1 "$T/no/such/dir/m.onnx: cannot create" "$T/no/such/dir/m.onnx" \
  "$BIN" export --model "$CKPT" --format onnx --output "$T/no/such/dir/m.onnx"
mkdir "$T/adir"
"$BIN" export --model "$CKPT" --format safetensors --output "$T/adir" >"$T/out" 2>"$T/err"
[[ $? -eq 1 ]] && grep -q "^mnist-dist: error: $T/adir: " "$T/err" && [[ -d $T/adir ]] \
  && [[ -z $(ls "$T/adir") ]] && ! compgen -G "$T/adir.tmp.*" >/dev/null \
  && pass "output onto a directory: $(cat "$T/err")" || { fail "output onto a directory"; cat "$T/err"; }
out=$("$BIN" export --help) && grep -q "usage: mnist-dist export" <<<"$out" && grep -q -- "--format onnx|safetensors" <<<"$out" \
  && pass "export --help" || fail "export --help"

# --- under mpirun: rank 0 writes, once ----------------------------------------------
timeout -k 5 60 "${MPIEXEC_N[@]}" 2 "$BIN" export --model "$CKPT" --format onnx --output "$T/np2.onnx" >"$T/out" 2>"$T/err"
[[ $? -eq 0 ]] && [[ $(grep -c "^export: " "$T/out") -eq 1 ]] && cmp -s "$T/np2.onnx" "$T/mlp.onnx" \
  && pass "mpirun -np 2: one line, the same file as alone" || { fail "mpirun -np 2 export"; cat "$T/out" "$T/err"; }

echo "export_test: $fails failed ($((SECONDS - t0)) s)"
exit $((fails > 0))
