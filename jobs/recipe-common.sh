# recipe-common.sh: sourced by jobs/recipe-*.sh. Runs mnist-dist with a
# recipe's flags: under SLURM through srun (all tasks of the allocation),
# otherwise with mpirun on this machine (RANKS, default 1 rank using every
# core). Extra arguments are passed on (e.g. --epochs 5 for a quick look).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${MNIST_DIST:-build/mnist-dist}
[[ -x $BIN ]] || { echo "recipe: error: $BIN is not built" >&2; exit 1; }
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
recipe() { # NAME FLAGS...
  local name=$1
  shift
  local out="runs/recipe-$name-$(date +%Y%m%d-%H%M%S)"
  if [[ -n ${SLURM_JOB_ID:-} ]]; then
    exec srun --mpi=pmix --kill-on-bad-exit=1 "$BIN" "$@" --out "$out" "${EXTRA[@]}"
  fi
  exec mpirun -np "${RANKS:-1}" --bind-to none "$BIN" "$@" --out "$out" "${EXTRA[@]}"
}
EXTRA=("$@")
