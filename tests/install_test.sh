#!/usr/bin/env bash
# cmake --install (issue 16): into a fresh prefix go the binary, its manual
# and the SLURM job scripts; the installed binary runs, the manual renders
# without a roff warning and lists every option of every command's --help,
# and an installed job script finds its common.sh and binary in the prefix
# from any directory (outside SLURM it refuses, naming its installed path).
# usage: install_test.sh BUILD_DIR
set -uo pipefail
BUILD=$1
T=$(mktemp -d /tmp/mnist-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
P=$T/prefix

cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 || { fail "cmake --install"; cat "$T/install.log"; exit 1; }
BIN=$P/bin/mnist-dist MAN=$P/share/man/man1/mnist-dist.1 JOBS=$P/share/mnist-dist/jobs
for f in "$BIN" "$MAN" "$JOBS"/{common.sh,hybrid.sbatch,openmp.sbatch,scaling-strong.sbatch,scaling-weak.sbatch,scaling_table.py}; do
  [[ -s $f ]] || fail "not installed: ${f#"$P"/}"
done
"$BIN" --version >"$T/version" 2>&1 && grep -q "^MPI:" "$T/version" && grep -q "^BLAS:" "$T/version" \
  && pass "the installed binary runs (--version names MPI, BLAS, HDF5, target)" || fail "installed --version"

# the manual: no roff warning, and every option of every command
groff -man -Tutf8 -ww -z "$MAN" 2>"$T/groff.log" && [[ ! -s $T/groff.log ]] \
  && pass "the manual renders without a warning" || { fail "groff warnings"; cat "$T/groff.log"; }
missing=""
for cmd in train convert evaluate predict export; do
  if [[ $cmd == train ]]; then help=$("$BIN" --help); else help=$("$BIN" "$cmd" --help); fi
  for opt in $(grep -oE '^  --[a-z0-9-]+' <<<"$help"); do
    grep -qF "\\fB${opt//-/\\-}\\fR" "$MAN" || missing+=" $cmd:$opt"
  done
done
[[ -z $missing ]] && pass "the manual lists every option of every command's --help" \
  || fail "options missing from the manual:$missing"
man -l "$MAN" 2>/dev/null | grep -q "EXIT STATUS" && pass "man -l shows it" || fail "man -l"

# the job scripts point into the prefix
for job in "$JOBS"/*.sbatch; do
  bash -n "$job" || fail "$(basename "$job"): syntax"
  grep -qF "MNIST_DIST=\${MNIST_DIST:-$P/bin/mnist-dist}" "$job" && grep -qF "MNIST_JOBS=\${MNIST_JOBS:-$JOBS}" "$job" \
    || fail "$(basename "$job") does not point into the prefix"
done
out=$(cd "$T" && env -u SLURM_JOB_ID bash "$JOBS/hybrid.sbatch" 2>&1)
[[ $? -eq 2 ]] && grep -qF "not inside a SLURM job; submit with: sbatch $JOBS/hybrid.sbatch" <<<"$out" \
  && pass "an installed job script runs from any directory, finds its common.sh and refuses outside SLURM" \
  || fail "installed hybrid.sbatch outside SLURM: $out"

echo "install_test: $fails failed"
exit $((fails > 0))
