#!/usr/bin/env bash
# --deterministic: the same seed, data, global batch and settings give
# bit-identical weights and Adam state (checkpoint tensors compared exactly)
# after training with 1, 2, 3, 4 and 8 ranks (8 oversubscribed) and 1 or 2
# OpenMP threads per rank, and after a run stopped at an epoch boundary and
# resumed with a different rank count; the same for a small CNN, and for
# both in bf16 (--precision bf16) where the CPU has it; also with augmentation,
# standardisation and the regularisers on. Without --deterministic the
# 1-rank and 2-rank weights differ (so the comparison can fail).
# Under the sanitizers (MNIST_TEST_SANITIZED=1) only 1-3 ranks run: the
# Release pass covers 4 and 8, and 8 ASan ranks on 2 cores add only minutes.
# MNIST_DET_RANKS="1 2 3" chooses the rank counts; MNIST_DET_OTHER_BIN names
# a binary of another build (MPI library, target) that must give the same bits.
# usage: det_test.sh BUILD/mnist-dist DATA_DIR
set -uo pipefail
BIN=$1 DATA=$2
source "$(dirname "$0")/mpi.sh"
T=$(mktemp -d /tmp/mnist-det.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }

head -n 8000 "$DATA/mnist_train.csv" > "$T/train.csv"
head -n 500 "$DATA/mnist_test.csv" > "$T/test.csv"
"$BIN" convert --quiet "$T/train.csv" "$T/train.h5" && "$BIN" convert --quiet "$T/test.csv" "$T/test.h5" \
  || { echo "FAIL  convert"; exit 1; }
A=(--train "$T/train.h5" --test "$T/test.h5" --val-split 1000 --layers 96,48 --quiet
   --augment default --standardize --warmup-epochs 0.5 --max-norm 3 --label-smoothing 0.05
   --clip-grad-norm 5 --weight-decay 1e-4)
train() { # NAME NP THREADS ARGS...
  local name=$1 np=$2 t=$3
  shift 3
  OMP_NUM_THREADS=$t timeout -k 5 300 "${MPIEXEC_N[@]}" "$np" \
    "$BIN" "${A[@]}" --threads "$t" --out "$T/$name" "$@" >"$T/$name.log" 2>&1 \
    || { fail "$name failed"; tail -5 "$T/$name.log"; }
}
same() { # A B EPOCH: weights and Adam state identical, bit for bit
  local a=$T/$1/checkpoints/epoch-000$3.h5 b=$T/$2/checkpoints/epoch-000$3.h5
  h5diff -q "$a" "$b" /model /model >/dev/null 2>&1 && h5diff -q "$a" "$b" /adam /adam >/dev/null 2>&1
}

train ref 1 1 --deterministic --epochs 2
ranks=(1 2 3 4 8)
[[ ${MNIST_TEST_SANITIZED:-0} == 1 ]] && ranks=(1 2 3)
[[ -n ${MNIST_DET_RANKS:-} ]] && read -ra ranks <<<"$MNIST_DET_RANKS"
# the same run by a binary of another build (MNIST_DET_OTHER_BIN: tools/test's
# MPICH + portable pass points it at the Open MPI + native build) gives the
# same bits: the exact mode depends on neither the MPI library nor the target
if [[ -n ${MNIST_DET_OTHER_BIN:-} ]]; then
  OMP_NUM_THREADS=1 timeout -k 5 300 "$MNIST_DET_OTHER_BIN" "${A[@]}" --threads 1 --out "$T/other" \
    --deterministic --epochs 2 >"$T/other.log" 2>&1 || { fail "the other build's run failed"; tail -5 "$T/other.log"; }
  build_of() { # the MPI library and the target a binary was built for
    "$1" --version | sed -n 's/^MPI: *//p; s/^target: *\([^,]*\).*/\1/p' | cut -d, -f1 | tr -s '\t' ' ' | paste -sd/
  }
  same ref other 2 && pass "1 x 1, builds $(build_of "$BIN") and $(build_of "$MNIST_DET_OTHER_BIN"): bit-identical" \
    || fail "the other build ($MNIST_DET_OTHER_BIN) differs"
fi
for np in "${ranks[@]}"; do
  for t in 1 2; do
    [[ $np == 1 && $t == 1 ]] && continue
    [[ $np == 8 && $t == 2 ]] && continue # 16 threads on 2 cores: slow, adds nothing
    train "r${np}t$t" "$np" "$t" --deterministic --epochs 2
    same ref "r${np}t$t" 2 && pass "$np rank(s) x $t thread(s): bit-identical to 1 x 1" \
      || fail "$np rank(s) x $t thread(s) differ from 1 x 1"
  done
done
# stopped after epoch 1 on 3 ranks, resumed on 2: the same as 1 rank straight through
train half 3 1 --deterministic --epochs 1
cp "$T/half/report/metrics.json" "$T/half-1.json"
train half 2 2 --deterministic --epochs 2 --resume auto
# a resumed run carries epoch 1's record (its timing) from the checkpoint
python3 -c 'import json,sys; a,b=(json.load(open(p))["history"][0]["seconds"] for p in sys.argv[1:]); sys.exit(a!=b)' \
  "$T/half-1.json" "$T/half/report/metrics.json" || fail "the second half did not resume from epoch 1"
same ref half 2 && pass "3 ranks for epoch 1, resumed on 2 ranks: bit-identical to 1 rank" \
  || fail "resume with a different rank count differs"
# a CNN (conv with stride and padding, pooling, dropout after pooling and in
# the dense part): the same bits at 1, 2 and 3 ranks and across a resume
cnn=(--model conv:4x3x3/p1,relu,maxpool:2,conv:8x3x3/s2,relu,dropout:0.1,flatten,dense:32,relu,dropout:0.2)
train cnnref 1 1 --deterministic --epochs 2 "${cnn[@]}"
for run in "1 2" "2 1" "3 1"; do
  read -r np t <<<"$run"
  train "cnn${np}t$t" "$np" "$t" --deterministic --epochs 2 "${cnn[@]}"
  same cnnref "cnn${np}t$t" 2 && pass "CNN, $np rank(s) x $t thread(s): bit-identical to 1 x 1" \
    || fail "CNN, $np rank(s) x $t thread(s) differ from 1 x 1"
done
train cnnhalf 3 1 --deterministic --epochs 1 "${cnn[@]}"
train cnnhalf 2 1 --deterministic --epochs 2 --resume auto "${cnn[@]}"
same cnnref cnnhalf 2 && pass "CNN, 3 ranks for epoch 1, resumed on 2 ranks: bit-identical to 1 rank" \
  || fail "CNN resume with a different rank count differs"
# bf16 products (--precision bf16): the same bits at 1 x 1, 1 x 2, 2 x 1 and
# 3 x 1 for the MLP and the CNN, and not the bits of fp32 (so bf16 really ran)
if "$BIN" --version | grep -q "bf16 native"; then
  train bf16ref 1 1 --deterministic --epochs 2 --precision bf16
  same ref bf16ref 2 && fail "bf16 gave fp32's bits (did it run in bf16?)" \
    || pass "bf16 differs from fp32, as it must"
  for run in "1 2" "2 1" "3 1"; do
    read -r np t <<<"$run"
    train "bf16r${np}t$t" "$np" "$t" --deterministic --epochs 2 --precision bf16
    same bf16ref "bf16r${np}t$t" 2 && pass "bf16, $np rank(s) x $t thread(s): bit-identical to 1 x 1" \
      || fail "bf16, $np rank(s) x $t thread(s) differ from 1 x 1"
  done
  train bf16cnnref 1 1 --deterministic --epochs 2 --precision bf16 "${cnn[@]}"
  train bf16cnn2 2 1 --deterministic --epochs 2 --precision bf16 "${cnn[@]}"
  same bf16cnnref bf16cnn2 2 && pass "bf16 CNN, 2 ranks: bit-identical to 1 rank" \
    || fail "bf16 CNN, 2 ranks differ from 1 rank"
else
  echo "skip  bf16 (no native bf16 on this CPU: $("$BIN" --version | grep oneDNN))"
fi
# the comparison can fail: the default mode sums in floating point
train fast1 1 1 --epochs 2
train fast2 2 1 --epochs 2
same fast1 fast2 2 && fail "without --deterministic 1 and 2 ranks agreed bit for bit (test too weak?)" \
  || pass "without --deterministic 1 and 2 ranks differ in the last bits, as expected"
# a rank count above the logical shards is refused up front
timeout -k 5 60 "${MPIEXEC_N[@]}" 3 "$BIN" "${A[@]}" --deterministic --logical-shards 2 \
  --epochs 1 --out "$T/toomany" >"$T/toomany.log" 2>&1
[[ $? -ne 0 ]] && grep -q "runs on at most 2 ranks, not 3" "$T/toomany.log" \
  && pass "more ranks than logical shards is refused" || fail "rank limit"

echo "det_test: $fails failed"
exit $((fails > 0))
