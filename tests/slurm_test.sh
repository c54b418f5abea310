#!/usr/bin/env bash
# The batch scripts in jobs/ against a real SLURM (slurmctld, slurmd, munge
# from Debian's slurm-wlm), brought up on this machine by tools/slurm-local:
#  - one node: the OpenMP job, the hybrid job with srun and with mpirun, the
#    strong- and weak-scaling sweeps finish and leave their reports;
#  - requeue: a hybrid job signalled mid-run checkpoints, exits 75, requeues
#    itself, resumes and ends with the same weights (bit for bit) as the same
#    job left alone;
#  - two nodes (two slurmd with node names n1, n2): the hybrid job with
#    --nodes=2 runs one rank on each, with srun and with mpirun;
#  - the scripts refuse to run outside SLURM.
# usage: slurm_test.sh BUILD_DIR DATA_DIR SOURCE_DIR   (as root)
set -uo pipefail
BUILD=$1 DATA=$2 SRC=$3
BIN=$BUILD/mnist-dist
# jobs/common.sh launches with srun --mpi=pmix or Open MPI's mpirun, both of
# which need an Open MPI build: with another launcher there is nothing to run.
if [[ ${MNIST_MPIEXEC_KIND:-openmpi} != openmpi ]]; then
  echo "SKIP  the SLURM jobs launch Open MPI builds (launcher: $MNIST_MPIEXEC_KIND)"
  exit 77
fi
T=$(mktemp -d /tmp/mnist-slurm-test.XXXXXX)
chmod 755 "$T" # munged refuses a socket below a directory others cannot enter
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
cleanup() {
  WORK=$T/slurm tools_down
  rm -rf "$T"
}
tools_down() { "$SRC/tools/slurm-local" down 2>/dev/null || true; }
trap cleanup EXIT

if [[ $(id -u) -ne 0 ]] || ! command -v slurmctld >/dev/null; then
  echo "FAIL  needs root and slurm-wlm (tools/install-deps installs it)"
  exit 1
fi
cd "$SRC" # jobs are submitted from the repository root, as users do

# Outside SLURM every script refuses with a clear message.
for job in jobs/*.sbatch; do
  out=$(env -u SLURM_JOB_ID bash "$job" 2>&1)
  [[ $? -eq 2 ]] && grep -q "not inside a SLURM job; submit from the repository root with: sbatch $job" <<<"$out" && pass "$job refuses to run outside SLURM" \
    || { fail "$job outside SLURM"; echo "$out"; }
done

head -n 6000 "$DATA/mnist_train.csv" > "$T/train.csv"
head -n 2000 "$DATA/mnist_test.csv" > "$T/test.csv"
"$BIN" convert --quiet "$T/train.csv" "$T/train.h5" && "$BIN" convert --quiet "$T/test.csv" "$T/test.h5" \
  || { echo "FAIL  convert"; exit 1; }
SMALL=(--train "$T/train.h5" --test "$T/test.h5" --val-split 500 --layers 64)
ENV="ALL,MNIST_DIST=$BIN,RUNS=$T/runs,OMPI_MCA_btl_tcp_if_include=lo,OMPI_MCA_oob_tcp_if_include=lo"

# submit NAME SBATCH-OPTIONS... -- SCRIPT ARGS...: prints the job id
submit() {
  local opts=()
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  timeout 30 sbatch --parsable --output="$T/%x_%j.out" "${opts[@]}" "$@"
}
# wait_job ID [SECONDS]: until the job leaves the queue; prints its final state
wait_job() {
  local id=$1 limit=${2:-240} state
  [[ -n $id ]] || return 0
  for _ in $(seq $((limit * 4))); do
    state=$(squeue -h -j "$id" -o %T 2>/dev/null)
    [[ -z $state ]] && break
    sleep 0.25
  done
  scontrol show job "$id" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'
}
# check_job ID NAME: COMPLETED, and its run directory holds a report
check_job() {
  local id=$1 name=$2 state
  state=$(wait_job "$id")
  local out=$T/${name}_$id.out
  if [[ $state == COMPLETED && -s $T/runs/${name}_$id/report/metrics.json ]]; then
    pass "$name job $id completed with a report ($(grep -m1 '^ranks x threads' "$out"))"
  elif [[ $state == COMPLETED && -n ${3:-} && -s $T/runs/${name}_$id/$3 ]]; then
    pass "$name job $id completed ($3)"
  else
    fail "$name job $id: state $state"; tail -25 "$out"
  fi
}

# ---- one node ---------------------------------------------------------------------
conf=$(WORK=$T/slurm NODES=1 "$SRC/tools/slurm-local" up) || { echo "FAIL  slurm up"; exit 1; }
eval "$conf"
j=$(submit --cpus-per-task=2 --export="$ENV" -- jobs/openmp.sbatch "${SMALL[@]}" --epochs 2)
check_job "$j" mnist-openmp
grep -q "ranks x threads: 1 x 2" "$T/mnist-openmp_$j.out" && grep -q "^command: srun --mpi=pmix" "$T/mnist-openmp_$j.out" \
  && grep -q "^revision: " "$T/mnist-openmp_$j.out" && pass "the job prints ranks x threads, revision, command" \
  || fail "job header"
for launcher in srun mpirun; do
  j=$(submit --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --export="$ENV,LAUNCH=$launcher" -- \
        jobs/hybrid.sbatch "${SMALL[@]}" --epochs 2)
  check_job "$j" mnist-hybrid
  grep -q "^command: $launcher" "$T/mnist-hybrid_$j.out" || fail "hybrid job did not use $launcher"
done
j=$(submit --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --export="$ENV,BATCH=256,EPOCHS=2" -- \
      jobs/scaling-strong.sbatch "${SMALL[@]}")
check_job "$j" mnist-strong scaling.txt
grep -Eq "^ +2 +256 " "$T/runs/mnist-strong_$j/scaling.txt" && pass "strong sweep: same global batch at 2 ranks" \
  || { fail "strong scaling table"; cat "$T/runs/mnist-strong_$j/scaling.txt"; }
j=$(submit --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --export="$ENV,PER_RANK_BATCH=64,EPOCHS=2" -- \
      jobs/scaling-weak.sbatch "${SMALL[@]}")
check_job "$j" mnist-weak scaling.txt
grep -Eq "^ +2 +128 " "$T/runs/mnist-weak_$j/scaling.txt" && pass "weak sweep: global batch grows with ranks" \
  || { fail "weak scaling table"; cat "$T/runs/mnist-weak_$j/scaling.txt"; }

# ---- requeue after a signal, compared with the same job left alone ---------------------
LONG=(--train "$DATA/mnist_train.h5" --test "$T/test.h5" --layers 128 --epochs 3)
ref=$(submit --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --export="$ENV" -- jobs/hybrid.sbatch "${LONG[@]}")
[[ $(wait_job "$ref") == COMPLETED ]] || fail "reference job"
j=$(submit --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --export="$ENV" -- jobs/hybrid.sbatch "${LONG[@]}")
for _ in $(seq 600); do grep -Eq "^epoch +1/3" "$T/mnist-hybrid_$j.out" 2>/dev/null && break; sleep 0.1; done
scancel --batch --signal=USR1 "$j" # what #SBATCH --signal=B:USR1@120 does before a time limit
for _ in $(seq 600); do
  [[ $(scontrol show job "$j" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p') -ge 1 ]] && break
  sleep 0.1
done
# Slurm holds a requeued job for about two minutes while the node cleans up
# the old step; give it a few seconds, then release the job.
sleep 5
scontrol update JobId="$j" StartTime=now >/dev/null 2>&1
state=$(wait_job "$j")
out=$T/mnist-hybrid_$j.out
if [[ $state == COMPLETED ]] && grep -q "stopped by SIGUSR1 after [0-9]* epochs* and" "$out" &&
   grep -q "requeueing job $j" "$out" && grep -q "resumed from .*epoch-000[0-9]-step-" "$out"; then
  pass "signalled job checkpointed mid-epoch, exited 75, requeued and resumed"
else
  fail "requeue (state $state)"; tail -30 "$out"
fi
a=$T/runs/mnist-hybrid_$ref/checkpoints/epoch-0003.h5 b=$T/runs/mnist-hybrid_$j/checkpoints/epoch-0003.h5
if h5diff -r "$a" "$b" /model /model >/dev/null && h5diff "$a" "$b" /adam /adam >/dev/null; then
  pass "requeued job ends bit-identical to the uninterrupted job"
else
  fail "requeued weights differ from the uninterrupted job"
fi
WORK=$T/slurm tools_down

# ---- two nodes --------------------------------------------------------------------------
conf=$(WORK=$T/slurm NODES=2 "$SRC/tools/slurm-local" up) || { echo "FAIL  slurm up (2 nodes)"; exit 1; }
eval "$conf"
for launcher in srun mpirun; do
  j=$(submit --nodes=2 --ntasks-per-node=1 --cpus-per-task=1 --export="$ENV,LAUNCH=$launcher" -- \
        jobs/hybrid.sbatch "${SMALL[@]}" --epochs 2)
  check_job "$j" mnist-hybrid
  grep -q " on n1,n2$" "$T/mnist-hybrid_$j.out" && pass "two-node job ($launcher) ran on n1 and n2" \
    || fail "two-node job hosts"
done

echo "slurm_test: $fails failed"
exit $((fails > 0))
