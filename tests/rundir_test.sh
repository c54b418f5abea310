#!/usr/bin/env bash
# Runs never mix or vanish (issue 19), through the real binary on a subset of
# the real MNIST:
#  - a fresh run into a directory that holds a stopped run is refused before
#    any work, naming the directory and the checkpoint, and the directory is
#    left byte for byte as it was;
#  - --overwrite clears it, but only once the new run has started (a new run
#    that fails to start leaves the old one intact);
#  - --resume auto refuses a directory holding checkpoints of two runs;
#  - SIGINT to a run started without mpirun stops it gracefully (exit 75, a
#    checkpoint, the message), and the resumed run ends bit-identical to the
#    uninterrupted one; a second SIGINT stops at once;
#  - tools/fetch-mnist --fashion installs dataset-fashion-mnist when its
#    files are missing (a dry run of tools/install-deps, pointed at a missing
#    path).
# usage: rundir_test.sh BUILD/mnist-dist DATA_DIR SOURCE_DIR
set -uo pipefail
BIN=$1 DATA=$2 SRC=$3
T=$(mktemp -d /tmp/mnist-rundir.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
snapshot() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

head -n 6000 "$DATA/mnist_train.csv" >"$T/train.csv"
head -n 500 "$DATA/mnist_test.csv" >"$T/test.csv"
"$BIN" convert --quiet "$T/train.csv" "$T/train.h5" && "$BIN" convert --quiet "$T/test.csv" "$T/test.h5" \
  || { echo "FAIL  convert"; exit 1; }
A=(--train "$T/train.h5" --test "$T/test.h5" --val-split 500 --layers 64 --batch-size 50
   --checkpoint-every 0 --threads 1)

# --- a stopped run in R ---------------------------------------------------------------
MNIST_DIST_FAULT=stop@150 "$BIN" "${A[@]}" --epochs 3 --out "$T/R" >"$T/stop.log" 2>&1
rc=$?
mid=$(ls "$T/R/checkpoints")
[[ $rc -eq 75 && $mid == epoch-0001-step-0000040.h5 ]] \
  && grep -q "stopped by SIGUSR1 after 1 epoch and 40 of the 110 steps of epoch 2; checkpoint .*epoch-0001-step-0000040.h5" "$T/stop.log" \
  && pass "a stop names the signal and numbers epochs as the file does" \
  || { fail "stopped run (exit $rc, $mid)"; cat "$T/stop.log"; }
before=$(snapshot "$T/R")

# --- a fresh run there is refused, the directory untouched -----------------------------
"$BIN" "${A[@]}" --epochs 1 --out "$T/R" >"$T/fresh.log" 2>&1
rc=$?
[[ $rc -eq 1 ]] && grep -q "$T/R holds another run (1 checkpoint, the latest checkpoints/epoch-0001-step-0000040.h5); continue it with --resume auto --out $T/R" "$T/fresh.log" \
  && pass "a fresh run into a directory holding a run is refused, naming it and its checkpoint" \
  || { fail "fresh run into R (exit $rc)"; cat "$T/fresh.log"; }
[[ $(snapshot "$T/R") == "$before" ]] && pass "the refused run left the directory byte-identical" \
  || fail "the refused run changed $T/R"

# --- --overwrite: nothing goes until the new run has started ---------------------------
"$BIN" "${A[@]}" --epochs 1 --out "$T/R" --overwrite --test "$T/missing.h5" >"$T/ow-bad.log" 2>&1
[[ $? -eq 1 && $(snapshot "$T/R") == "$before" ]] \
  && pass "--overwrite whose run cannot start leaves the old run intact" || fail "--overwrite with bad data"
"$BIN" "${A[@]}" --epochs 1 --out "$T/R" --overwrite >"$T/ow.log" 2>&1
rc=$?
[[ $rc -eq 0 && $(ls "$T/R/checkpoints") == epoch-0001.h5 ]] && grep -q "removed 1 checkpoint of the run that was in" "$T/ow.log" \
  && pass "--overwrite clears the old run once the new one has started" \
  || { fail "--overwrite (exit $rc): $(ls "$T/R/checkpoints")"; cat "$T/ow.log"; }

# --- --resume auto refuses checkpoints of two runs ---------------------------------------
"$BIN" "${A[@]}" --epochs 1 --out "$T/other" --seed 7 >/dev/null 2>&1
cp "$T/other/checkpoints/epoch-0001.h5" "$T/R/checkpoints/epoch-0002.h5"
"$BIN" "${A[@]}" --epochs 3 --out "$T/R" --resume auto >"$T/mixed.log" 2>&1
rc=$?
[[ $rc -eq 1 ]] && grep -q "checkpoints holds checkpoints of different runs (checkpoints/epoch-000[12].h5 and checkpoints/epoch-000[12].h5" "$T/mixed.log" \
  && pass "--resume auto refuses a directory holding two runs, naming both" \
  || { fail "mixed directory (exit $rc)"; cat "$T/mixed.log"; }

# --- SIGINT without mpirun ---------------------------------------------------------------
"$BIN" "${A[@]}" --epochs 2 --layers 512,512 --batch-size 10 --out "$T/straight" >/dev/null 2>&1 \
  || fail "uninterrupted run"
"$BIN" "${A[@]}" --epochs 2 --layers 512,512 --batch-size 10 --out "$T/int" --log-every 10 >"$T/int.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q "^epoch 1 step 20/" "$T/int.log" 2>/dev/null && break; sleep 0.05; done
kill -INT $pid
wait $pid
rc=$?
ck=$(ls "$T/int/checkpoints" 2>/dev/null)
# (mid-epoch as a rule; a fast machine may reach the end of epoch 1 first)
[[ $rc -eq 75 && ($ck == epoch-0000-step-* || $ck == epoch-0001.h5) ]] && grep -q "stopped by SIGINT after" "$T/int.log" \
  && pass "SIGINT to a lone process: checkpoint $ck, exit 75" \
  || { fail "SIGINT (exit $rc, '$ck')"; tail -3 "$T/int.log"; }
"$BIN" "${A[@]}" --epochs 2 --layers 512,512 --batch-size 10 --out "$T/int" --resume auto >"$T/int2.log" 2>&1 \
  || fail "resume after SIGINT"
a=$T/straight/checkpoints/epoch-0002.h5 b=$T/int/checkpoints/epoch-0002.h5
h5diff -q "$a" "$b" /model /model >/dev/null 2>&1 && h5diff -q "$a" "$b" /adam /adam >/dev/null 2>&1 \
  && pass "resumed after SIGINT: bit-identical to the uninterrupted run" || fail "resume after SIGINT differs"
# steps of about half a second: the second signal comes while the first waits
"$BIN" "${A[@]}" --epochs 2 --layers 4096,4096 --batch-size 500 --out "$T/int3" --log-every 1 \
  >"$T/int3.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q "^epoch 1 step 1/" "$T/int3.log" 2>/dev/null && break; sleep 0.05; done
kill -INT $pid
for _ in $(seq 100); do grep -q "stopping after this step" "$T/int3.log" && break; sleep 0.01; done
kill -INT $pid
wait $pid
rc=$?
[[ $rc -eq 130 ]] && grep -q "stopping after this step" "$T/int3.log" && [[ ! -e $T/int3/checkpoints/epoch-0001.h5 ]] \
  && pass "the first SIGINT is acknowledged; a second stops at once (killed by SIGINT)" \
  || { fail "second SIGINT: exit $rc"; tail -3 "$T/int3.log"; }

# --- fetch-mnist --fashion installs what it needs ----------------------------------------
MNIST_FASHION_DIR=$T/no-fashion MNIST_INSTALL_DRY_RUN=1 "$SRC/tools/fetch-mnist" --fashion \
  --dir "$T/fashion" --bin "$BIN" >"$T/fashion.log" 2>&1
rc=$?
if dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "install ok installed"; then
  want="already"  # installed: install-deps has nothing to do
  grep -q "installing Debian's dataset-fashion-mnist" "$T/fashion.log" && [[ $rc -eq 1 ]] \
    && grep -q "still missing after installing dataset-fashion-mnist" "$T/fashion.log" \
    && pass "fetch-mnist --fashion: a missing dataset asks install-deps for it ($want installed)" \
    || { fail "fetch-mnist --fashion (exit $rc)"; cat "$T/fashion.log"; }
else
  grep -q "installing Debian's dataset-fashion-mnist" "$T/fashion.log" \
    && grep -q "install-deps: installing dataset-fashion-mnist" "$T/fashion.log" && [[ $rc -eq 1 ]] \
    && pass "fetch-mnist --fashion: a missing dataset is installed through install-deps (dry run)" \
    || { fail "fetch-mnist --fashion (exit $rc)"; cat "$T/fashion.log"; }
fi

echo "rundir_test: $fails failed"
exit $((fails > 0))
