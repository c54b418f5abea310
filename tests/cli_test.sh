#!/usr/bin/env bash
# Command-level tests of mnist-dist's error handling, run through the real
# binary (alone and under mpirun with 2 and 3 ranks): every bad command line
# or input exits non-zero on every rank, prints its message once, names the
# file (and line:column for CSV), never hangs, and leaves no output behind.
# usage: cli_test.sh BUILD/mnist-dist
set -uo pipefail
BIN=$1
T=$(mktemp -d /tmp/mnist-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
source "$(dirname "$0")/mpi.sh"
MPIRUN=(timeout -k 5 60 "${MPIEXEC_N[@]}")

# expect NAME STATUS STDERR-REGEX COMMAND...: status must match, stderr must
# hold exactly one line from mnist-dist (mpirun adds its own banner), and
# that line must match the regex.
expect() {
  local name=$1 want=$2 re=$3
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  local lines
  lines=$(grep -c "^mnist-dist:" "$T/err")
  if [[ $rc -ne $want ]]; then
    fail "$name: exit $rc, expected $want"; sed 's/^/      /' "$T/err"
  elif [[ $lines -ne 1 ]]; then
    fail "$name: $lines mnist-dist lines on stderr, expected 1"; sed 's/^/      /' "$T/err"
  elif ! grep -Eq -- "$re" "$T/err"; then
    fail "$name: message does not match /$re/"; sed 's/^/      /' "$T/err"
  else
    pass "$name"
  fi
}

# --- command line ------------------------------------------------------------
"$BIN" --help >"$T/out" 2>&1 && grep -q "usage: mnist-dist" "$T/out" && grep -q -- "--batch-size N" "$T/out" \
  && pass "--help" || fail "--help"
"$BIN" --version >"$T/out" 2>&1 && grep -q "mnist-dist 0" "$T/out" && grep -q "^MPI: .*[0-9]" "$T/out" \
  && grep -q "^BLAS: " "$T/out" && grep -q "^HDF5: *1\." "$T/out" && grep -q "^target: " "$T/out" \
  && grep -Eq "^oneDNN: *(oneDNN [0-9]|none)" "$T/out" \
  && pass "--version names the build's MPI, BLAS, oneDNN, HDF5 and target" || fail "--version: $(cat "$T/out")"
"$BIN" convert --help >"$T/out" 2>&1 && grep -q "usage: mnist-dist convert" "$T/out" \
  && pass "convert --help" || fail "convert --help"
expect "unknown flag" 2 "^mnist-dist: error: unknown option '--bogus'" "$BIN" --bogus
expect "unknown flag, 2 ranks: printed once" 2 "unknown option '--nope'" "${MPIRUN[@]}" 2 "$BIN" --nope
expect "bad value, 3 ranks: printed once" 2 "--lr: 'fast' is not a number" "${MPIRUN[@]}" 3 "$BIN" --lr fast
expect "missing value" 2 "--epochs needs a value" "$BIN" --epochs
# One exit-status rule (README): 2 for a bad command line, bad combinations
# included, whether found by the parser or once the ranks are known; 1 for
# bad data or a runtime failure; 75 for a stop (the fault test).
expect "--epochs 0" 2 "--epochs: 0 is outside" "$BIN" --epochs 0
expect "--layers 0" 2 "--layers '0': expected comma-separated widths" "$BIN" --layers 0
expect "--layers with a trailing comma" 2 "trailing comma" "$BIN" --layers 64,
expect "--model unknown layer, 3 ranks: printed once" 2 \
  "--model: token 2 'pool:2': unknown layer kind 'pool'" "${MPIRUN[@]}" 3 "$BIN" --model conv:8x3x3,pool:2
expect "--model conv without a kernel" 2 "token 1 'conv:8x3': conv takes FILTERSxKHxKW" "$BIN" --model conv:8x3
expect "--model stride 0" 2 "token 3 'maxpool:2/s0': maxpool takes SIZE" "$BIN" --model conv:8x3x3,relu,maxpool:2/s0
expect "--augment nonsense" 2 "--augment: " "$BIN" --augment wobble=3
expect "--deterministic --batch-size 5" 2 "--batch-size 5 is smaller than --logical-shards 8" \
  "$BIN" --deterministic --batch-size 5
expect "--overwrite with --resume" 2 "--overwrite starts afresh" "$BIN" --overwrite --resume auto --out "$T/x"
expect "--batch-size below the ranks, 3 ranks" 2 "--batch-size 2 is smaller than the 3 ranks" \
  "${MPIRUN[@]}" 3 "$BIN" --quiet --batch-size 2 --out "$T/run0"
expect "--deterministic on more ranks than shards" 2 "runs on at most 2 ranks, not 3" \
  "${MPIRUN[@]}" 3 "$BIN" --quiet --deterministic --logical-shards 2 --out "$T/run0"
expect "evaluate without --model" 2 "evaluate needs --model" "$BIN" evaluate
expect "convert with one file" 2 "convert needs" "$BIN" convert "$T/only.csv"
expect "missing train file, 2 ranks" 1 "error: .*$T/none.h5: cannot open" \
  "${MPIRUN[@]}" 2 "$BIN" --train "$T/none.h5" --out "$T/run1"
echo "5,0,0" > "$T/x.csv"
expect "csv given to train" 1 "x.csv: not an HDF5 file \(convert it first" "$BIN" --train "$T/x.csv" --out "$T/run2"
[[ -d $T/run1/report ]] && fail "a failed run wrote a report" || pass "a failed run wrote no report"

# --- convert: good inputs ------------------------------------------------------
row() { # label value -> a CSV row with 784 pixels of that value
  local label=$1 v=$2 line
  line=$(printf "$v,%.0s" $(seq 784)); line=${line%,}
  if [[ -n $label ]]; then printf '%s,%s' "$label" "$line"; else printf '%s' "$line"; fi
}
header=$(printf 'label'; for i in $(seq 0 783); do printf ',pixel%d' "$i"; done)
{ echo "$header"; row 3 0; echo; row 7 255; printf '\r\n'; row 0 12; } > "$T/good.csv" # no final newline
"$BIN" convert "$T/good.csv" "$T/good.h5" >"$T/out" 2>&1 && grep -q "3 rows with labels" "$T/out" \
  && pass "convert: header, CRLF, no final newline" || { fail "convert good.csv"; cat "$T/out"; }
if command -v h5dump >/dev/null; then
  h5dump -H "$T/good.h5" | grep -q "DATASPACE  SIMPLE { ( 3, 784 )" && h5dump -d labels "$T/good.h5" | grep -q "3, 7, 0" \
    && pass "convert: /images [3,784], /labels 3,7,0" || fail "convert: h5dump contents"
  h5dump -a rows "$T/good.h5" | grep -q "(0): 3" && h5dump -a source "$T/good.h5" | grep -q "good.csv" \
    && pass "convert: attributes rows and source" || fail "convert: attributes"
fi
{ row "" 1; echo; row "" 2; echo; } > "$T/kaggle_test.csv"
"$BIN" convert "$T/kaggle_test.csv" "$T/kaggle_test.h5" >"$T/out" 2>&1 && grep -q "2 rows, no labels" "$T/out" \
  && pass "convert: 784 columns -> no /labels" || fail "convert: unlabelled"
expect "train refuses unlabelled data" 1 "has no /labels" "$BIN" --train "$T/kaggle_test.h5" --val-split 0 --out "$T/run3"

# --- convert: bad inputs, each leaving nothing behind ----------------------------
bad() { # name csv-content regex
  local name=$1 content=$2 re=$3
  printf '%b' "$content" > "$T/bad.csv"
  rm -f "$T/bad.h5"
  expect "convert refuses $name" 1 "^mnist-dist: error: $T/bad.csv:$re" "$BIN" convert "$T/bad.csv" "$T/bad.h5"
  if ls "$T" | grep -q "^bad.h5"; then fail "convert $name left output behind"; fi
}
good=$(row 5 9)
bad "pixel > 255" "$good\n$(row 1 300)\n" "2:2: pixel value 300 is outside 0..255"
bad "label > 9" "$(row 12 0)\n" "1:1: label 12 is outside 0..9"
bad "non-integer" "$good\n${good/,9,/,ab,}\n" "2:[0-9]+: 'ab' is not an integer"
bad "short row" "$good\n5,1,2,3\n" "2:4: expected 785 fields, found 4"
bad "long row" "$good\n$good,7\n" "2:786: expected 785 fields"
bad "empty file" "" " file is empty"
expect "convert refuses unreadable file" 1 "$T/missing.csv: cannot open" "$BIN" convert "$T/missing.csv" "$T/m.h5"
expect "convert refuses unknown output type" 2 "must end in .h5" "$BIN" convert "$T/good.csv" "$T/out.txt"
# --- shapes and classes from the data: a 47-class EMNIST-style CSV -----------------
{ for i in $(seq 0 46); do row "$i" $((i * 5)); echo; row "$i" $((i * 5 + 1)); echo; done; } > "$T/emnist.csv"
bad "label 46 without --classes" "$(row 46 0)\n" "1:1: label 46 is outside 0..9"
"$BIN" convert --classes 47 "$T/emnist.csv" "$T/emnist.h5" >"$T/out" 2>&1 \
  && h5dump -a classes "$T/emnist.h5" | grep -q "(0): 47" \
  && pass "convert --classes 47: the class count is recorded" || { fail "convert --classes 47"; cat "$T/out"; }
expect "convert --classes 40 refuses label 46" 1 "emnist.csv:[0-9]+:1: label 4[0-6] is outside 0..39" \
  "$BIN" convert --classes 40 "$T/emnist.csv" "$T/e40.h5"
if "$BIN" --train "$T/emnist.h5" --test "$T/emnist.h5" --val-split 10 --layers 16 --epochs 1 \
     --batch-size 8 --quiet --out "$T/emnist-run" >"$T/out" 2>&1; then
  python3 - "$T/emnist-run/report/metrics.json" <<'PY' && pass "47 classes train: a 784-16-47 model, 47 per-class rows" || fail "47-class report"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["run"]["layers"] == "784-16-47", m["run"]["layers"]
assert len(m["test"]["per_class"]) == 47 and len(m["test"]["confusion_matrix"]) == 47
PY
else
  fail "47 classes train"; cat "$T/out"
fi
expect "--model kernel larger than the images, 2 ranks" 1 \
  "layer 1 \(conv\): a 29x29 kernel does not fit the 28x28x1 input" \
  "${MPIRUN[@]}" 2 "$BIN" --train "$T/good.h5" --test "$T/good.h5" --val-split 0 --quiet --batch-size 2 \
  --model conv:8x29x29 --out "$T/run-k29"
[[ ! -e $T/run-k29 ]] && pass "a refused --model leaves no run directory" || fail "run-k29 left behind"
# --precision: a bad value is a usage error; bf16 on a CPU without it (oneDNN's
# own DNNL_MAX_CPU_ISA caps the instruction set it may use, as on a CPU
# without AVX512_BF16) is refused on every rank, once, before any work
expect "--precision fp16" 2 "--precision: 'fp16' is not one of fp32, bf16" "$BIN" --precision fp16
if "$BIN" --version | grep -q "^oneDNN: *oneDNN"; then
  DNNL_MAX_CPU_ISA=AVX512_CORE expect "--precision bf16 without AVX512_BF16, 2 ranks: refused once" 1 \
    "--precision bf16 needs a CPU with AVX512_BF16 or AMX; oneDNN finds avx512_core here" \
    "${MPIRUN[@]}" 2 "$BIN" --train "$T/good.h5" --test "$T/good.h5" --val-split 0 --quiet \
    --batch-size 2 --precision bf16 --out "$T/run-nobf16"
  [[ ! -e $T/run-nobf16 ]] && pass "a refused --precision leaves no run directory" \
    || fail "run-nobf16 left behind"
else
  expect "--precision bf16 without oneDNN" 1 "this build has no oneDNN" \
    "$BIN" --train "$T/good.h5" --test "$T/good.h5" --val-split 0 --quiet --precision bf16 \
    --out "$T/run-nobf16"
fi
expect "a 47-class model refuses 10-class data" 1 "good.h5: the data declares 10 classes but the model .* has 47" \
  "$BIN" evaluate --model "$T/emnist-run/checkpoints/epoch-0001.h5" --data "$T/good.h5" --out "$T/ev47"

printf '%s\n%s\n' "$good" "$(row 1 300)" > "$T/bad.csv"
expect "convert under mpirun -np 2, printed once" 1 "pixel value 300" \
  "${MPIRUN[@]}" 2 "$BIN" convert "$T/bad.csv" "$T/bad.h5"

echo "cli_test: $fails failed"
exit $((fails > 0))
