#!/usr/bin/env bash
# Open MPI singletons started at the same instant on a machine with no
# session directory yet (issue 16): every one must start and finish, and none
# may leave a session directory behind. TMPDIR points at a fresh directory of
# the test's own, which is what "no Open MPI session directory" means for the
# processes started here, without touching other jobs' directories.
# Rounds of 8 at once: evaluations, short trainings, and refusals that exit
# right after MPI_Init; a barrier (a FIFO opened by all) lines up their starts.
# usage: session_test.sh BUILD/mnist-dist SRC/tests/data
set -uo pipefail
BIN=$1 DATA=$2
T=$(mktemp -d /tmp/mnist-session.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }

# a small image set: the golden checkpoint's own format (784 pixels, 10 classes)
python3 - "$T/set.csv" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for i in range(300):
        f.write(",".join([str(i % 10)] + [str(random.randrange(256)) for _ in range(784)]) + "\n")
PY
"$BIN" convert --quiet "$T/set.csv" "$T/set.h5" || { echo "FAIL  convert"; exit 1; }

rounds=4 n=8 bad=0 left=0
for r in $(seq 1 $rounds); do
  export TMPDIR=$T/tmp.$r
  mkdir -p "$TMPDIR"
  rm -f "$T/go" && mkfifo "$T/go"
  pids=()
  for i in $(seq 1 $n); do
    O=$T/o.$r.$i
    case $((i % 3)) in
      0) cmd=("$BIN" evaluate --model "$DATA/ckpt-v1-0.1.0.h5" --data "$T/set.h5" --out "$O" --quiet) want=0 ;;
      1) cmd=("$BIN" --train "$T/set.h5" --test "$T/set.h5" --val-split 50 --epochs 1 --layers 8
              --out "$O" --quiet) want=0 ;;
      2) cmd=("$BIN" evaluate --model "$T/missing.h5" --data "$T/set.h5" --out "$O" --quiet) want=1 ;;
    esac
    ( read -r _ <"$T/go"; timeout -k 5 120 "${cmd[@]}" >"$T/log.$r.$i" 2>&1; echo $? >"$T/rc.$r.$i"
      echo "$want" >"$T/want.$r.$i" ) &
    pids+=($!)
  done
  sleep 0.5
  exec 3>"$T/go"; exec 3>&- # every reader wakes at once
  wait "${pids[@]}"
  for i in $(seq 1 $n); do
    if [[ $(cat "$T/rc.$r.$i") != $(cat "$T/want.$r.$i") ]]; then
      bad=$((bad + 1))
      echo "  round $r process $i: exit $(cat "$T/rc.$r.$i"), expected $(cat "$T/want.$r.$i")"
      sed 's/^/    /' "$T/log.$r.$i" | head -n 8
    fi
  done
  left=$((left + $(find "$TMPDIR" -mindepth 1 | wc -l)))
done
unset TMPDIR
[[ $bad -eq 0 ]] && pass "$((rounds * n)) singletons started in rounds of $n at once, each exited as expected" \
  || fail "$bad of $((rounds * n)) singletons failed"
[[ $left -eq 0 ]] && pass "no session directory left behind" || fail "$left entries left in TMPDIR"
echo "session_test: $fails failed"
[[ $fails -eq 0 ]]
