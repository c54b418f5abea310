#!/usr/bin/env bash
# Training across separate hosts: Linux network namespaces h1..h3 made by
# tools/netns-hosts (own addresses, own hostnames, a bridge between them),
# Open MPI over TCP started through an rsh agent. Training with one rank on
# each of 2 and 3 hosts must give the same weights, bit for bit, as the same
# rank count on one host with the same transport and the same exchange
# (--shard-optimizer 2: reduce-scatter + allgather, so the same reduction
# order; by default one host would use the node-shared window instead, whose
# order differs for 3 ranks), and the traffic must really cross the wires
# between the namespaces. With --deterministic, 3 hosts must equal one host
# in its default exchange too.
# usage: netns_test.sh BUILD/mnist-dist DATA_DIR SOURCE_DIR   (as root)
set -uo pipefail
BIN=$1 DATA=$2 SRC=$3
# The namespace hosts start ranks through Open MPI's rsh agent (plm_rsh_agent):
# with another launcher this test has nothing to run.
if [[ ${MNIST_MPIEXEC_KIND:-openmpi} != openmpi ]]; then
  echo "SKIP  the namespace hosts are driven by Open MPI's mpirun (launcher: $MNIST_MPIEXEC_KIND)"
  exit 77
fi
export PREFIX=mnt$$ NHOSTS=3 WORK=/tmp/mnist-netns-$$
T=$(mktemp -d /tmp/mnist-netns-test.XXXXXX)
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
NS=$SRC/tools/netns-hosts
trap '"$NS" down; rm -rf "$T"' EXIT
if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null; then
  echo "FAIL  needs root and iproute2"
  exit 1
fi
"$NS" up || { echo "FAIL  cannot create the namespace hosts"; exit 1; }

head -n 6000 "$DATA/mnist_train.csv" > "$T/train.csv"
head -n 1000 "$DATA/mnist_test.csv" > "$T/test.csv"
"$BIN" convert --quiet "$T/train.csv" "$T/train.h5" && "$BIN" convert --quiet "$T/test.csv" "$T/test.h5" \
  || { echo "FAIL  convert"; exit 1; }
ARGS=(--train "$T/train.h5" --test "$T/test.h5" --val-split 500 --layers 128 --epochs 2 --quiet)

train() { # NAME HOSTS NP [EXTRA ARGS...]
  local name=$1 hosts=$2 np=$3
  shift 3
  timeout -k 10 300 "$NS" run -np "$np" --host "$hosts" --mca btl self,tcp -x OMP_NUM_THREADS=1 \
    "$BIN" "${ARGS[@]}" "$@" --out "$T/$name" >"$T/$name.log" 2>&1
}
same_weights() { # A B: the final checkpoints' tensors, compared exactly
  local a=$T/$1/checkpoints/epoch-0002.h5 b=$T/$2/checkpoints/epoch-0002.h5
  h5diff -r "$a" "$b" /model /model >"$T/diff" 2>&1 && h5diff "$a" "$b" /adam /adam >>"$T/diff" 2>&1
}

for np in 2 3; do
  hosts=$(seq -s, -f 'h%g' 1 "$np")
  before=$("$NS" rx 2)
  if train "across$np" "$hosts" "$np" --shard-optimizer 2; then
    after=$("$NS" rx 2)
    pass "$np ranks on $np hosts ($hosts) trained ($(((after - before) / 1024)) KiB reached h2 over its wire)"
    ((after - before > 1000000)) || fail "too little traffic crossed to h2: $((after - before)) bytes"
  else
    fail "$np ranks across hosts"; tail -20 "$T/across$np.log"
  fi
  if train "one$np" "h1:$np" "$np" --shard-optimizer 2; then
    pass "$np ranks on one host trained"
  else
    fail "$np ranks on one host"; tail -20 "$T/one$np.log"
  fi
  if same_weights "across$np" "one$np"; then
    pass "$np hosts give bit-identical weights and Adam state to one host"
  else
    fail "$np hosts vs one host: weights differ"; grep -m5 -v "^0 differences" "$T/diff"
  fi
done

# --deterministic: exact sums, so the exchange and the hosts cannot matter.
if train det-across "h1,h2,h3" 3 --deterministic && train det-one "h1:3" 3 --deterministic \
  && same_weights det-across det-one; then
  pass "--deterministic: 3 hosts give bit-identical weights and Adam state to one host's default exchange"
else
  fail "--deterministic: 3 hosts vs one host"; tail -5 "$T/det-across.log" "$T/det-one.log"
  grep -m5 -v "^0 differences" "$T/diff"
fi

echo "netns_test: $fails failed"
exit $((fails > 0))
