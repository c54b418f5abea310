#!/usr/bin/env bash
# Faults during training, through the real binary:
#  - crash safety: rank 0 is SIGKILLed at random moments (some inside a
#    checkpoint write), again and again; every time the latest checkpoint
#    loads and `--resume auto` carries on; at the end the run finishes;
#  - graceful stop: SIGTERM to the ranks (what SLURM sends) and SIGUSR1 to
#    mpirun make the job checkpoint and exit 75; the resumed run ends
#    bit-identical to an uninterrupted one;
#  - a dying rank: SIGKILL on rank 2 of 3 ends the whole job, non-zero,
#    within seconds, with a message naming the rank;
#  - NaN: a poisoned step stops training naming epoch, step and tensor, and
#    the last checkpoint stays intact;
#  - replicas out of step: a perturbed rank is caught by the checksum
#    comparison, naming the rank;
#  - out of disk: checkpoint and report writes to a full filesystem fail with
#    a clear message and leave the previous checkpoint intact.
# usage: fault_test.sh BUILD/mnist-dist DATA_DIR   (root, for the tmpfs)
set -uo pipefail
BIN=$1 DATA=$2
source "$(dirname "$0")/mpi.sh"
T=$(mktemp -d /tmp/mnist-fault.XXXXXX)
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
cleanup() {
  for m in "$T"/full*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
  rm -rf "$T"
}
trap cleanup EXIT
MPI=(timeout -k 5 300 "${MPIEXEC_N[@]}")

head -n 11000 "$DATA/mnist_train.csv" > "$T/train.csv"
head -n 1000 "$DATA/mnist_test.csv" > "$T/test.csv"
"$BIN" convert --quiet "$T/train.csv" "$T/train.h5" && "$BIN" convert --quiet "$T/test.csv" "$T/test.h5" \
  || { echo "FAIL  convert"; exit 1; }
ARGS=(--train "$T/train.h5" --test "$T/test.h5" --val-split 1000)

# rank_pids RANK: PIDs of mnist-dist processes with that MPI rank
rank_pids() {
  for p in $(pgrep -x mnist-dist); do
    [[ $(rank_of "$p") == "$1" ]] && echo "$p"
  done
}
# loads CKPT: the checkpoint evaluates cleanly
loads() { "$BIN" evaluate --quiet --model "$1" --data "$T/test.h5" --out "$T/eval-$RANDOM" >/dev/null 2>&1; }

# --- crash safety: SIGKILL rank 0 at random points, repeatedly -----------------------------
RUN=$T/crash
KILLS=12 in_write=0 resumed_ok=0
for k in $(seq "$KILLS"); do
  "$BIN" "${ARGS[@]}" --layers 512,512 --epochs 60 --checkpoint-every 1 --resume auto --out "$RUN" \
    --quiet >"$T/crash.log" 2>&1 &
  pid=$!
  if ((k == 1)); then
    # let the first run write a complete checkpoint, so every later kill has
    # one to lose or keep
    for _ in $(seq 600); do ls "$RUN"/checkpoints/epoch-*.h5 >/dev/null 2>&1 && break; sleep 0.05; done
    sleep "0.$((RANDOM % 10))"
  elif ((k % 2)); then
    sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))" # a random moment
  else
    # aim for the inside of a checkpoint write: wait for its temp file
    for _ in $(seq 3000); do ls "$RUN"/checkpoints/*.tmp.* >/dev/null 2>&1 && break; sleep 0.001; done
  fi
  ls "$RUN"/checkpoints/*.tmp.* >/dev/null 2>&1 && in_write=$((in_write + 1))
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  latest=$(ls "$RUN"/checkpoints/epoch-*.h5 2>/dev/null | sort | tail -1)
  if [[ -n $latest ]] && loads "$latest"; then
    resumed_ok=$((resumed_ok + 1))
  else
    fail "after kill $k the latest checkpoint $latest does not load"
  fi
done
latest=$(ls "$RUN"/checkpoints/epoch-*.h5 2>/dev/null | sort | tail -1)
done_ckpts=0 # the epoch of the latest complete checkpoint
[[ $latest =~ epoch-0*([0-9]+)\.h5$ ]] && done_ckpts=${BASH_REMATCH[1]}
if ((done_ckpts >= 1)) &&
   "$BIN" "${ARGS[@]}" --layers 512,512 --epochs "$((done_ckpts + 2))" \
     --checkpoint-every 1 --resume auto --out "$RUN" >"$T/crash-final.log" 2>&1 &&
   grep -q "resumed from" "$T/crash-final.log" && [[ -s $RUN/report/metrics.json ]]; then
  pass "crash safety: $KILLS SIGKILLs of rank 0 ($in_write while a checkpoint was being written); every latest checkpoint loaded ($resumed_ok/$KILLS) and --resume auto finished the run from epoch $done_ckpts"
else
  fail "the run did not finish after the kills ($done_ckpts complete checkpoints)"; tail -5 "$T/crash-final.log"
fi
ls "$RUN"/checkpoints/*.tmp.* >/dev/null 2>&1 && fail "stale temp checkpoints left after resume" \
  || pass "stale temp files from killed writes are removed on resume"

# --- graceful stop: SIGTERM to the ranks, SIGUSR1 to the launcher ----------------------------------
G=(--layers 256 --epochs 4 --checkpoint-every 10)
"${MPI[@]}" 2 "$BIN" "${ARGS[@]}" "${G[@]}" --out "$T/whole" --quiet >/dev/null 2>&1 || fail "uninterrupted run"
for how in TERM-ranks USR1-launcher; do
  out=$T/stop-$how
  "${MPI[@]}" 2 "$BIN" "${ARGS[@]}" "${G[@]}" --out "$out" >"$out.log" 2>&1 &
  mp=$!
  for _ in $(seq 300); do grep -Eq "^epoch +1/4" "$out.log" 2>/dev/null && break; sleep 0.05; done
  if [[ $how == TERM-ranks ]]; then
    kill -TERM $(rank_pids 0) $(rank_pids 1) 2>/dev/null
  else
    kill -USR1 "$(launcher_of "$mp")" # the launcher forwards SIGUSR1 to every rank
  fi
  wait "$mp"
  rc=$?
  if { [[ $rc -eq 75 ]] || { [[ $how == USR1-launcher ]] && stop_status_ok "$rc"; }; } \
    && grep -Eq "stopped by SIG(TERM|USR1) after" "$out.log"; then
    pass "SIGTERM/SIGUSR1 ($how): checkpoint written, exit 75"
  else
    fail "graceful stop $how: exit $rc"; tail -5 "$out.log"
  fi
  "${MPI[@]}" 2 "$BIN" "${ARGS[@]}" "${G[@]}" --out "$out" --resume auto >>"$out.log" 2>&1
  a=$T/whole/checkpoints/epoch-0004.h5 b=$out/checkpoints/epoch-0004.h5
  if h5diff -r "$a" "$b" /model /model >/dev/null 2>&1 && h5diff "$a" "$b" /adam /adam >/dev/null 2>&1; then
    pass "resumed after $how: bit-identical to the uninterrupted run"
  else
    fail "resumed after $how differs from the uninterrupted run"
  fi
done

# the launcher's report of the killed rank: Open MPI's mpirun names its rank;
# MPICH's hydra prints a PID of the job (not always the dead one's) and the
# exit code, so there the report must say that a process was killed (signal 9)
names_dead_rank() {
  if [[ ${MNIST_MPIEXEC_KIND:-openmpi} == hydra ]]; then
    grep -q "BAD TERMINATION" "$T/dying.log" && grep -q "EXIT CODE: 9" "$T/dying.log"
  else
    grep -Eiq "rank 2" "$T/dying.log"
  fi
}
# --- a dying rank ------------------------------------------------------------------------------
"${MPI[@]}" 3 "$BIN" "${ARGS[@]}" --layers 512,512 --epochs 50 --out "$T/dying" >"$T/dying.log" 2>&1 &
mp=$!
for _ in $(seq 400); do grep -Eq "^epoch +1/50" "$T/dying.log" 2>/dev/null && break; sleep 0.05; done
victim=$(rank_pids 2)
others="$(rank_pids 0) $(rank_pids 1)"
t0=$(date +%s.%N)
kill -KILL $victim
wait "$mp"
rc=$?
secs=$(echo "$(date +%s.%N) - $t0" | bc)
if [[ $rc -ne 0 ]] && awk -v s="$secs" 'BEGIN { exit !(s < 10) }' && names_dead_rank; then
  pass "a killed rank 2 of 3 ended the job (exit $rc) in ${secs%???????} s, naming the rank (hydra: the signal)"
else
  fail "dying rank: exit $rc after ${secs} s (killed PID $victim)"; tail -8 "$T/dying.log"
fi
# the other ranks must be gone soon after mpirun returns: polled for up to
# 10 s, since a loaded machine may take a while to deliver mpirun's kills
# (zombies reparented to an init that does not reap them count as gone)
for _ in $(seq 100); do
  left=""
  for p in $others; do
    [[ -r /proc/$p/stat && $(awk '{print $3}' "/proc/$p/stat") != Z ]] && left+=" $p"
  done
  [[ -z $left ]] && break
  sleep 0.1
done
[[ -n $others && -z $left ]] && pass "no rank left running after the failure" \
  || { fail "ranks left behind:$left"; kill -KILL $left 2>/dev/null; }

# --- NaN -------------------------------------------------------------------------------------
# 10,000 rows at batch 128 are 78 steps an epoch: step 100 is in epoch 2.
MNIST_DIST_FAULT=nan@100 "${MPI[@]}" 2 "$BIN" "${ARGS[@]}" --layers 64 --epochs 3 \
  --checkpoint-every 1 --out "$T/nan" >"$T/nan.log" 2>&1
rc=$?
if [[ $rc -eq 1 ]] && grep -Eq "error: the gradient of dense0/W became NaN or infinite at epoch 2, step 22" "$T/nan.log"; then
  pass "NaN at step 100: stopped naming epoch, step and tensor"
else
  fail "NaN: exit $rc"; grep error "$T/nan.log"
fi
[[ -s $T/nan/checkpoints/epoch-0001.h5 && ! -e $T/nan/checkpoints/epoch-0002.h5 ]] && loads "$T/nan/checkpoints/epoch-0001.h5" \
  && pass "after the NaN the last good checkpoint is intact and loads" || fail "checkpoint after NaN"

# --- replicas out of step ---------------------------------------------------------------------
# (--shard-optimizer 0: every rank updates its own full copy of the
# parameters; with the sharded optimizer the allgather or the node-shared copy
# would overwrite the perturbation before it could drift)
MNIST_DIST_FAULT=diverge@30 "${MPI[@]}" 3 "$BIN" "${ARGS[@]}" --layers 64 --epochs 2 \
  --check-every 25 --shard-optimizer 0 --out "$T/div" >"$T/div.log" 2>&1
rc=$?
if [[ $rc -eq 1 ]] && grep -q "replicas diverged at epoch 1, step 50: the parameters of rank 2 differ" "$T/div.log"; then
  pass "a diverged replica is caught by the checksum comparison, naming rank 2"
else
  fail "replica check: exit $rc"; grep error "$T/div.log"
fi

# --- out of disk ------------------------------------------------------------------------------
mkdir -p "$T/full" "$T/full2"
if mount -t tmpfs -o size=20m tmpfs "$T/full" 2>/dev/null; then
  # each checkpoint of 784-512-512-10 is 8 MB: the third no longer fits
  "$BIN" "${ARGS[@]}" --layers 512,512 --epochs 4 --checkpoint-every 1 --out "$T/full/run" >"$T/full.log" 2>&1
  rc=$?
  if [[ $rc -eq 1 ]] && grep -Eq "error: .*epoch-0003.h5: write failed: No space left on device" "$T/full.log"; then
    pass "full disk: the checkpoint write fails with a clear message"
  else
    fail "full disk: exit $rc"; tail -3 "$T/full.log"
  fi
  ls "$T/full/run/checkpoints" | grep -q tmp && fail "a partial checkpoint was left behind" || true
  loads "$T/full/run/checkpoints/epoch-0002.h5" && pass "full disk: the previous checkpoint is intact and loads" \
    || fail "previous checkpoint after a full disk"
  # the report: evaluate into a filesystem with only a few KB left
  mount -t tmpfs -o size=1m tmpfs "$T/full2"
  head -c 1000000 /dev/zero > "$T/full2/filler" 2>/dev/null
  "$BIN" evaluate --model "$T/full/run/checkpoints/epoch-0002.h5" --data "$T/test.h5" --out "$T/full2/ev" >"$T/full2.log" 2>&1
  rc=$?
  if [[ $rc -eq 1 ]] && grep -Eq "error: .*$T/full2/ev/report/.*No space left on device" "$T/full2.log" &&
     [[ -z $(find "$T/full2/ev" -name '*.tmp.*' 2>/dev/null) && ! -e $T/full2/ev/report/report.html ]]; then
    pass "full disk: the report write fails with a clear message and leaves no partial files"
  else
    fail "report on a full disk: exit $rc"; cat "$T/full2.log"; find "$T/full2"
  fi
else
  fail "cannot mount a tmpfs (needs root)"
fi

echo "fault_test: $fails failed"
exit $((fails > 0))
