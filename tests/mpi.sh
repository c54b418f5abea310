# Sourced by the shell tests: the suite's one MPI launcher, chosen in
# tests/CMakeLists.txt (Open MPI's mpirun or MPICH's mpiexec.hydra) and passed
# in MNIST_MPIEXEC and MNIST_MPIEXEC_FLAGS (what that launcher needs to
# oversubscribe 2 cores and leave threaded ranks unbound).
#   "${MPIEXEC_N[@]}" NP CMD...   CMD on NP ranks (usable after `timeout`);
#                     variables in the caller's environment reach every rank
#                     (both launchers start local ranks with their environment)
#   launcher_of PID   the launcher process started under PID (a `timeout`)
#   rank_of PID       the MPI rank of a running rank process, or nothing
#   stop_status_ok RC the launcher's exit status for ranks that all exited 75
#                     after a signal it forwarded: 75, or under MPICH 4.0's
#                     hydra also 0 (it loses forwarded-signal exit statuses
#                     at random: pmodels/mpich#7057, PR #5930)
read -ra MPIEXEC_FLAGS <<<"${MNIST_MPIEXEC_FLAGS-"--oversubscribe --bind-to none"}"
MPIEXEC_N=("${MNIST_MPIEXEC:-mpirun}" "${MPIEXEC_FLAGS[@]}" -n)
launcher_of() { pgrep -P "$1" | head -1; }
rank_of() {
  tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | sed -n 's/^\(OMPI_COMM_WORLD_RANK\|PMI_RANK\)=//p' | head -1
}
stop_status_ok() {
  [[ $1 -eq 75 ]] || [[ $1 -eq 0 && ${MNIST_MPIEXEC_KIND:-openmpi} == hydra ]]
}
