# common.sh: sourced by the batch scripts in jobs/ (not run on its own).
# Checks that we are inside SLURM, derives threads and binding, prints what
# runs where, and launches mnist-dist with srun or mpirun, forwarding the
# time-limit signal and requeueing the job when the trainer stops to resume.
#
# Launchers with Open MPI 4.1 and Debian's Slurm 22.05:
#  - srun needs --mpi=pmix: Debian's Open MPI has no Slurm PMI-1/PMI-2
#    support, so --mpi=pmi2 or none fail in MPI_Init. srun starts the ranks
#    itself and --kill-on-bad-exit=1 ends the step when any rank fails.
#  - mpirun also works inside an allocation (it reads SLURM_* and launches
#    its daemons with srun); use it where srun lacks pmix. It binds ranks to
#    cores itself, so give each rank its cores with --map-by slot:PE=N.

if [[ -z ${SLURM_JOB_ID:-} ]]; then
  if [[ $MNIST_JOBS == "${SLURM_SUBMIT_DIR:-.}/jobs" ]]; then
    echo "mnist-dist job: error: not inside a SLURM job; submit from the repository root with: sbatch jobs/${0##*/}" >&2
  else
    echo "mnist-dist job: error: not inside a SLURM job; submit with: sbatch $MNIST_JOBS/${0##*/}" >&2
  fi
  exit 2
fi
cd "${SLURM_SUBMIT_DIR:-.}"
if [[ ! -x $MNIST_DIST ]]; then
  echo "mnist-dist job: error: $MNIST_DIST is not built (cmake -S . -B build && cmake --build build)" >&2
  exit 1
fi

# One OpenMP thread per CPU of the task. srun in Slurm >= 22.05 no longer
# inherits --cpus-per-task from the allocation, hence SRUN_CPUS_PER_TASK.
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export SRUN_CPUS_PER_TASK=$OMP_NUM_THREADS
# Pin threads only for multi-threaded ranks: where the cluster does not bind
# tasks (TaskPlugin=task/none), pinning would put every single-threaded rank
# on the same first core (6x slower, measured).
if ((OMP_NUM_THREADS > 1)); then
  export OMP_PLACES=cores OMP_PROC_BIND=close
fi
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

RUN_DIR="$RUNS/${SLURM_JOB_NAME}_${SLURM_JOB_ID}"

# launch NTASKS ARGS...: runs mnist-dist on NTASKS ranks of the allocation.
launch() {
  local ntasks=$1
  shift
  local cmd
  if [[ $LAUNCH == srun ]]; then
    cmd=(srun --mpi=pmix --kill-on-bad-exit=1 --ntasks="$ntasks" --cpus-per-task="$OMP_NUM_THREADS"
         --cpu-bind=cores "$MNIST_DIST" "$@")
  else
    cmd=(mpirun -np "$ntasks" --map-by "slot:PE=$OMP_NUM_THREADS" --bind-to core
         -x OMP_NUM_THREADS "$MNIST_DIST" "$@")
  fi
  echo "command: ${cmd[*]}"
  # The launcher runs in the background so this shell can catch SLURM's
  # signal (#SBATCH --signal=B:USR1@120) and pass it on; srun and mpirun both
  # forward SIGUSR1 to every rank, which then checkpoints and exits 75.
  "${cmd[@]}" &
  LAUNCHED=$!
  trap 'echo "job: signal received, asking mnist-dist to checkpoint and stop"; STOP_REQUESTED=1; kill -USR1 "$LAUNCHED" 2>/dev/null || true' USR1 TERM
  local rc
  while :; do
    wait "$LAUNCHED" && rc=0 || rc=$?
    kill -0 "$LAUNCHED" 2>/dev/null || break # wait was only interrupted by the trap
  done
  trap - USR1 TERM
  return "$rc"
}

# finish RC [EXPECTED_FILE]: requeues the job when the trainer stopped after
# a checkpoint (exit 75); the requeued job resumes with --resume auto. A
# launcher that reports success without the run's report (srun does, when a
# step fails to launch) is a failure.
finish() {
  local rc=$1 expected=${2:-}
  if ((rc == 0)) && [[ -n $expected && ! -s $expected ]]; then
    echo "job: error: the launcher reported success but $expected is missing" >&2
    exit 1
  fi
  # After a stop request, srun --kill-on-bad-exit counts the first rank's
  # exit 75 as a failure and ends the ranks still finishing (status 143 or
  # 137). The stop checkpoint is complete once it has its final name, and
  # --resume auto takes the latest one, so requeue all the same.
  if ((rc != 0 && rc != 75 && ${STOP_REQUESTED:-0} == 1)) &&
     compgen -G "$RUN_DIR/checkpoints/epoch-*.h5" >/dev/null; then
    echo "job: a stop was requested and the launcher ended with status $rc (the other ranks ended once the first exited 75)"
    rc=75
  fi
  if ((rc == 75)); then
    echo "job: mnist-dist checkpointed and stopped; requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
  fi
  echo "job: mnist-dist exited with status $rc"
  exit "$rc"
}

hosts=$(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null | paste -sd, - || echo "$SLURM_JOB_NODELIST")
echo "job ${SLURM_JOB_NAME} ${SLURM_JOB_ID} (restart ${SLURM_RESTART_COUNT:-0}) on $hosts"
echo "ranks x threads: ${SLURM_NTASKS:-1} x $OMP_NUM_THREADS"
echo "revision: $(git -C "${SLURM_SUBMIT_DIR:-.}" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "run directory: $RUN_DIR"
