#!/usr/bin/env bash
# End-to-end tests on a subset of the real MNIST (fetched by the fetch_mnist
# fixture, exactly as tools/fetch-mnist does for users):
#  - 2 ranks train 11,000 rows for 4 epochs (batch 64) and must reach >= 90%
#    test accuracy (92.9% seen); metrics.json holds every promised field;
#  - a run resumed from its epoch-2 checkpoint ends with the same weights and
#    Adam state, bit for bit, as the uninterrupted 4-epoch run (2 ranks);
#  - 3 ranks (oversubscribed) finish an epoch with uneven shards.
# usage: e2e_test.sh BUILD/mnist-dist DATA_DIR
set -uo pipefail
BIN=$1 DATA=$2
source "$(dirname "$0")/mpi.sh"
T=$(mktemp -d /tmp/mnist-e2e.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
run() { # ranks args... (output in $T/log)
  local np=$1
  shift
  timeout -k 5 300 "${MPIEXEC_N[@]}" "$np" "$BIN" "$@" >"$T/log" 2>&1
}

head -n 12000 "$DATA/mnist_train.csv" > "$T/train.csv"
head -n 2000 "$DATA/mnist_test.csv" > "$T/test.csv"
"$BIN" convert --quiet "$T/train.csv" "$T/train.h5" && "$BIN" convert --quiet "$T/test.csv" "$T/test.h5" \
  || { echo "FAIL  cannot convert the subset"; exit 1; }
COMMON=(--train "$T/train.h5" --test "$T/test.h5" --val-split 1000 --layers 256,128)

# --- accuracy and metrics.json ------------------------------------------------------
if run 2 "${COMMON[@]}" --epochs 4 --batch-size 64 --out "$T/acc"; then
  pass "2 ranks, 4 epochs on 11,000 rows"
  python3 - "$T/acc/report/metrics.json" <<'PY' && pass "metrics.json: fields and accuracy >= 0.90" || fail "metrics.json"
import json, math, sys
m = json.load(open(sys.argv[1]))
t = m["test"]
assert t["samples"] == 2000, t["samples"]
assert t["accuracy"] >= 0.90, f"test accuracy {t['accuracy']} < 0.90"
assert math.isfinite(t["loss"])
assert len(t["per_class"]) == 10
for c in t["per_class"]:
    for k in ("precision", "recall", "f1", "support"):
        assert k in c, k
assert sum(c["support"] for c in t["per_class"]) == 2000
for avg in ("macro_avg", "weighted_avg"):
    assert set(t[avg]) == {"precision", "recall", "f1"}, avg
cm = t["confusion_matrix"]
assert len(cm) == 10 and all(len(r) == 10 for r in cm)
assert sum(map(sum, cm)) == 2000 and sum(cm[i][i] for i in range(10)) == t["correct"]
h = m["history"]
assert [e["epoch"] for e in h] == [1, 2, 3, 4]
for e in h:
    for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "samples_per_s"):
        assert math.isfinite(e[k]), k
r = m["run"]
assert r["ranks"] == 2 and r["threads_per_rank"] >= 1 and r["layers"] == "784-256-128-10"
assert r["train_rows"] == 11000 and r["val_rows"] == 1000
assert m["config"]["batch-size"] == 64 and m["config"]["epochs"] == 4
print(f"      test accuracy {t['accuracy']:.4f}")
PY
  [[ -s $T/acc/report/report.md ]] && grep -q "Confusion matrix" "$T/acc/report/report.md" \
    && pass "report.md written" || fail "report.md"
  grep -Eq "^epoch +4/4 +train loss" "$T/log" && pass "one progress line per epoch" || fail "progress lines"
  # mpirun hands ranks a pseudo-terminal even when its own output is a file
  grep -q $'\r\|\033' "$T/log" && fail "control characters in a logged mpirun run" \
    || pass "a logged mpirun run has no control characters"
else
  fail "2-rank training run failed"; cat "$T/log"
fi

# --- exact resume -------------------------------------------------------------------
run 2 "${COMMON[@]}" --epochs 4 --checkpoint-every 2 --out "$T/full" || { fail "uninterrupted run"; cat "$T/log"; }
run 2 "${COMMON[@]}" --epochs 2 --out "$T/resumed" || { fail "first half"; cat "$T/log"; }
if run 2 "${COMMON[@]}" --epochs 4 --resume auto --out "$T/resumed"; then
  grep -q "resumed from .*epoch-0002.h5 after epoch 2" "$T/log" && pass "resume auto picks epoch 2" || fail "resume message"
  a=$T/full/checkpoints/epoch-0004.h5 b=$T/resumed/checkpoints/epoch-0004.h5
  if h5diff -r "$a" "$b" /model /model >"$T/diff" && h5diff -r "$a" "$b" /adam /adam >>"$T/diff"; then
    pass "resumed run ends bit-identical to the uninterrupted run (weights and Adam state)"
  else
    fail "resumed weights differ"; head -20 "$T/diff"
  fi
  python3 - "$T/full/report/metrics.json" "$T/resumed/report/metrics.json" <<'PY' \
    && pass "resumed history has all 4 epochs and the same test accuracy" || fail "resumed metrics"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert [e["epoch"] for e in b["history"]] == [1, 2, 3, 4]
assert a["test"]["accuracy"] == b["test"]["accuracy"]
assert [e["train_loss"] for e in a["history"]] == [e["train_loss"] for e in b["history"]]
PY
else
  fail "resume run failed"; cat "$T/log"
fi
# a requeued job that had already finished: nothing to do, and not a failure
before=$(stat -c %Y "$T/resumed/report/metrics.json")
run 2 "${COMMON[@]}" --epochs 4 --resume auto --out "$T/resumed"
[[ $? -eq 0 ]] && grep -q "has trained all 4 epochs .*nothing to do" "$T/log" \
  && ! grep -q "MPI_ABORT\|aborted" "$T/log" && [[ $(stat -c %Y "$T/resumed/report/metrics.json") == "$before" ]] \
  && pass "--resume auto of a finished run: nothing to do, exit 0, report untouched" \
  || { fail "resume of a finished run"; cat "$T/log"; }
run 2 "${COMMON[@]}" --epochs 4 --resume "$T/resumed/checkpoints/epoch-0004.h5" --out "$T/again"
[[ $? -eq 2 ]] && grep -q "already has 4 epochs; ask for more with --epochs" "$T/log" \
  && pass "--resume FILE with no epochs left is a bad command line (exit 2)" \
  || { fail "resume FILE of a finished run"; cat "$T/log"; }
run 2 "${COMMON[@]}" --layers 64 --epochs 6 --resume "$T/full/checkpoints/epoch-0002.h5" --out "$T/mismatch"
[[ $? -ne 0 ]] && grep -q "checkpoint has layers 784-256-128-10 but this run uses 784-64-10" "$T/log" \
  && pass "resume with other --layers is refused" || { fail "layer mismatch"; cat "$T/log"; }

# --- accuracy features: augmentation, standardisation, schedules, regularisers ---------------
FEAT=(--augment default --standardize --lr-schedule cosine --warmup-epochs 0.5 --weight-decay 1e-4
      --max-norm 3 --label-smoothing 0.05 --clip-grad-norm 5 --patience 3)
run 2 "${COMMON[@]}" "${FEAT[@]}" --epochs 4 --out "$T/feat" || { fail "training with every accuracy feature"; cat "$T/log"; }
python3 - "$T/feat/report/metrics.json" <<'PY' && pass "every accuracy feature together: trains, keeps best.h5, reports the best epoch" || fail "features run"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["test"]["accuracy"] > 0.85, m["test"]["accuracy"]
assert 1 <= m["run"]["best_epoch"] <= 4
assert m["config"]["augment"] == "default" and m["config"]["lr-schedule"] == "cosine"
PY
[[ -s $T/feat/checkpoints/best.h5 ]] && grep -q "augmentation" "$T/feat/report/report.md" \
  && pass "best.h5 kept; the report names the augmentation" || fail "best.h5 or report"
# the cosine schedule spans --epochs, so interrupt a 4-epoch run (SIGUSR1 to
# the launcher, forwarded to the ranks) rather than running 2 epochs then 2 more
timeout -k 5 300 "${MPIEXEC_N[@]}" 2 "$BIN" "${COMMON[@]}" "${FEAT[@]}" --epochs 4 \
  --out "$T/feat2" >"$T/log" 2>&1 &
mp=$!
for _ in $(seq 600); do grep -Eq "^epoch +2/4" "$T/log" 2>/dev/null && break; sleep 0.05; done
kill -USR1 "$(launcher_of "$mp")"
wait "$mp"
rc=$?
stop_status_ok "$rc" && grep -q "stopped by SIGUSR1 after" "$T/log" \
  || fail "the interrupted run did not stop with status 75 (exit $rc)"
run 2 "${COMMON[@]}" "${FEAT[@]}" --epochs 4 --resume auto --out "$T/feat2"
a=$T/feat/checkpoints/epoch-0004.h5 b=$T/feat2/checkpoints/epoch-0004.h5
if h5diff -r "$a" "$b" /model /model >/dev/null && h5diff "$a" "$b" /adam /adam >/dev/null; then
  pass "with augmentation and a cosine schedule, resume is still bit-identical"
else
  fail "resume with accuracy features differs"
fi
# early stopping: 1,000 rows overfit fast; validation loss turns up and training stops
head -n 2000 "$T/train.csv" > "$T/tiny.csv"
"$BIN" convert --quiet "$T/tiny.csv" "$T/tiny.h5"
run 1 --train "$T/tiny.h5" --test "$T/test.h5" --val-split 1000 --layers 256 --lr 0.003 \
  --dropout 0 --patience 2 --epochs 40 --out "$T/early"
if grep -q "^early stop: no better validation loss for 2 epochs; best epoch" "$T/log"; then
  python3 - "$T/early/report/metrics.json" <<'PY' && pass "early stopping stops after 2 epochs without improvement and tests the best epoch" || fail "early stopping metrics"
import json, sys
m = json.load(open(sys.argv[1]))
h, best = m["history"], m["run"]["best_epoch"]
assert len(h) < 40 and len(h) == best + 2, (len(h), best)
assert min(e["val_loss"] for e in h) == h[best - 1]["val_loss"]
PY
else
  fail "early stopping did not trigger"; tail -5 "$T/log"
fi

# --- 3 ranks, uneven shards -----------------------------------------------------------
if run 3 "${COMMON[@]}" --epochs 1 --batch-size 100 --out "$T/np3"; then
  grep -q "3 ranks" "$T/log" && [[ -s $T/np3/report/metrics.json ]] && pass "3 ranks finish an epoch" \
    || fail "3-rank output"
else
  fail "3-rank run failed"; cat "$T/log"
fi

echo "e2e_test: $fails failed"
exit $((fails > 0))
