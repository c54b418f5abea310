#!/usr/bin/env bash
# The report, evaluate, predict and progress output, through the real binary
# on real MNIST rows (from the fetch_mnist fixture):
#  - a training run's report.html renders in headless Chromium to a
#    non-blank page of the expected size, with its charts present;
#  - `evaluate` of the final checkpoint (2 ranks) reproduces the training
#    run's test metrics exactly;
#  - `predict` writes a valid Kaggle submission for a 28,000-row, 784-column,
#    headed test.csv (3 ranks), identical to the single-process result;
#    --probs rows sum to 1 and agree with Label;
#  - a checkpoint written by an older build (tests/data/ckpt-v1-0.1.0.h5)
#    still loads;
#  - bad arguments and bad files give one message and no output;
#  - progress: plain lines without control characters when not a terminal,
#    a bar redrawn with \r on a terminal, --log-every and --quiet.
# usage: report_test.sh BUILD_DIR DATA_DIR SOURCE_DIR
set -uo pipefail
BUILD=$1 DATA=$2 SRC=$3
BIN=$BUILD/mnist-dist
T=$(mktemp -d /tmp/mnist-report.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
source "$(dirname "$0")/mpi.sh"
mpi() { local np=$1; shift; timeout -k 5 300 "${MPIEXEC_N[@]}" "$np" "$@"; }

head -n 12000 "$DATA/mnist_train.csv" > "$T/train.csv"
"$BIN" convert --quiet "$T/train.csv" "$T/train.h5" || { echo "FAIL  convert"; exit 1; }
TEST=$DATA/mnist_test.h5

# --- a training run and its report ---------------------------------------------------
if "$BIN" --train "$T/train.h5" --test "$TEST" --val-split 1000 --layers 128 --epochs 3 \
     --out "$T/run" >"$T/train.log" 2>&1; then
  pass "training run"
else
  fail "training run"; cat "$T/train.log"
fi
R=$T/run/report
for f in report.html report.md metrics.json curves.png confusion.png class_scores.png mistakes.png; do
  [[ -s $R/$f ]] || fail "report file $f missing"
done
if grep -q $'\r\|\033' "$T/train.log"; then fail "non-terminal output has control characters"
else pass "non-terminal output is plain lines"; fi
[[ $(grep -c "^epoch " "$T/train.log") -eq 3 ]] && pass "one line per epoch" || fail "epoch lines"

# The page in a real browser: Chromium renders it to a PNG that must be a
# full page (ink down the whole height), colourful (charts), of the asked size.
if command -v chromium >/dev/null; then
  timeout -k 5 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-quic \
    --user-data-dir="$T/profile" --hide-scrollbars --window-size=1280,3600 \
    --screenshot="$T/shot.png" "file://$R/report.html" >"$T/chromium.log" 2>&1
  if [[ -s $T/shot.png ]]; then
    read -r w h ink bands colours < <("$BUILD/tests/png_stats" "$T/shot.png")
    echo "      screenshot ${w}x${h}, ink $ink, bands $bands, colours $colours"
    [[ $w -eq 1280 && $h -eq 3600 ]] && pass "screenshot has the expected size" || fail "screenshot size ${w}x${h}"
    awk -v i="$ink" -v b="$bands" -v c="$colours" 'BEGIN { exit !(i > 0.03 && i < 0.6 && b > 0.8 && c > 40) }' \
      && pass "rendered page is non-blank, full and colourful" || fail "rendered page looks blank or broken"
    cp "$T/shot.png" "$BUILD/report-screenshot.png" 2>/dev/null || true
  else
    fail "chromium produced no screenshot"; tail -5 "$T/chromium.log"
  fi
else
  fail "chromium is not installed (tools/install-deps installs it)"
fi

# --- evaluate reproduces the training run's test metrics --------------------------
CKPT=$T/run/checkpoints/epoch-0003.h5
if mpi 2 "$BIN" evaluate --model "$CKPT" --data "$TEST" --out "$T/eval" >"$T/eval.log" 2>&1; then
  python3 - "$R/metrics.json" "$T/eval/report/metrics.json" <<'PY' \
    && pass "evaluate (2 ranks) reproduces the training run's test metrics" || fail "evaluate metrics differ"
import json, sys
a, b = (json.load(open(p))["test"] for p in sys.argv[1:])
assert a["confusion_matrix"] == b["confusion_matrix"], "confusion"
assert abs(a["loss"] - b["loss"]) < 1e-9 * max(1, a["loss"]), (a["loss"], b["loss"])
assert a["most_confident_mistakes"] == b["most_confident_mistakes"]
PY
  [[ -s $T/eval/report/report.html && -s $T/eval/report/curves.png ]] \
    && pass "evaluate writes report.html with the checkpoint's curves" || fail "evaluate report files"
else
  fail "evaluate"; cat "$T/eval.log"
fi

# --- predict: Kaggle layout ------------------------------------------------------------
{
  printf 'pixel0'; for i in $(seq 1 783); do printf ',pixel%d' "$i"; done; printf '\n'
  for k in 1 2 3; do cut -d, -f2- "$DATA/mnist_test.csv"; done | head -n 28000
} > "$T/kaggle_test.csv"
if mpi 3 "$BIN" predict --model "$CKPT" --input "$T/kaggle_test.csv" --output "$T/sub3.csv" >"$T/p.log" 2>&1 &&
   "$BIN" predict --model "$CKPT" --input "$T/kaggle_test.csv" --output "$T/sub1.csv" >>"$T/p.log" 2>&1; then
  python3 - "$T/sub3.csv" <<'PY' && pass "predict: valid Kaggle submission for 28,000 rows (3 ranks)" || fail "submission format"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["ImageId", "Label"], rows[0]
assert len(rows) == 28001, len(rows)
assert [int(r[0]) for r in rows[1:]] == list(range(1, 28001))
assert all(r[1] in "0123456789" and len(r[1]) == 1 for r in rows[1:])
assert len({r[1] for r in rows[1:]}) == 10
PY
  cmp -s "$T/sub1.csv" "$T/sub3.csv" && pass "predict: 3 ranks == 1 process" || fail "predict differs by rank count"
else
  fail "predict"; cat "$T/p.log"
fi
if "$BIN" predict --model "$CKPT" --input "$TEST" --output "$T/probs.csv" --probs >"$T/p2.log" 2>&1; then
  python3 - "$T/probs.csv" "$T/eval/report/metrics.json" "$(cat "$T/p2.log")" <<'PY' \
    && pass "predict --probs on .h5: rows sum to 1, argmax = Label, accuracy matches evaluate" || fail "predict --probs"
import csv, json, re, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["ImageId", "Label"] + [f"p{c}" for c in range(10)], rows[0]
for r in rows[1:]:
    p = list(map(float, r[2:]))
    assert abs(sum(p) - 1) < 1e-4, sum(p)
    assert max(range(10), key=lambda c: p[c]) == int(r[1])
acc = json.load(open(sys.argv[2]))["test"]["accuracy"]
m = re.search(r"accuracy against the file's labels: ([0-9.]+)%", sys.argv[3])
assert m and abs(float(m.group(1)) - 100 * acc) < 0.006, (m and m.group(1), acc)
PY
else
  fail "predict --probs"; cat "$T/p2.log"
fi

# --- a checkpoint from an older build of the same format version ----------------------
OLD=$SRC/tests/data/ckpt-v1-0.1.0.h5
if "$BIN" evaluate --model "$OLD" --data "$TEST" --out "$T/old" >"$T/old.log" 2>&1 &&
   "$BIN" predict --model "$OLD" --input "$TEST" --output "$T/old.csv" >>"$T/old.log" 2>&1; then
  grep -Eq "accuracy (8|9)[0-9]\.[0-9]+%" "$T/old.log" && pass "checkpoint from mnist-dist 0.1.0 loads and predicts" \
    || { fail "old checkpoint accuracy"; cat "$T/old.log"; }
else
  fail "old checkpoint"; cat "$T/old.log"
fi

# --- bad arguments and files -----------------------------------------------------------
expect() { # name regex command... : non-zero exit, one mnist-dist line matching regex
  local name=$1 re=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [[ $rc -ne 0 && $(grep -c "^mnist-dist:" "$T/err") -eq 1 ]] && grep -Eq -- "$re" "$T/err"; then
    pass "$name"
  else
    fail "$name (exit $rc)"; sed 's/^/      /' "$T/err"
  fi
}
expect "evaluate without --model" "evaluate needs --model" "$BIN" evaluate --data "$TEST"
expect "predict without --input" "predict needs --input" "$BIN" predict --model "$CKPT"
expect "predict: missing model (2 ranks)" "$T/none.h5: cannot open checkpoint" \
  mpi 2 "$BIN" predict --model "$T/none.h5" --input "$TEST" --output "$T/x.csv"
expect "evaluate: an image file is not a checkpoint" "not a mnist-dist checkpoint" \
  "$BIN" evaluate --model "$TEST" --data "$TEST" --out "$T/e2"
printf '1,2,3\n' > "$T/bad.csv"
expect "predict: bad CSV input names file:line:column" "$T/bad.csv:1:3: expected 784 or 785 fields|$T/bad.csv:1:[0-9]+:" \
  mpi 2 "$BIN" predict --model "$CKPT" --input "$T/bad.csv" --output "$T/bad-out.csv"
[[ -e $T/bad-out.csv ]] && fail "predict left output after an error" || pass "no output after a failed predict"
"$BIN" convert --quiet "$T/kaggle_test.csv" "$T/unlabelled.h5"
expect "evaluate: unlabelled data" "has no /labels" "$BIN" evaluate --model "$CKPT" --data "$T/unlabelled.h5" --out "$T/e3"
expect "predict: unwritable output" "/proc/nope.csv" "$BIN" predict --model "$CKPT" --input "$TEST" --output /proc/nope.csv

# --- progress ---------------------------------------------------------------------------
"$BIN" --train "$T/train.h5" --test "$TEST" --val-split 1000 --layers 32 --epochs 1 --log-every 20 \
  --out "$T/p1" >"$T/log20" 2>&1
n=$(grep -c "^epoch 1 step [0-9]*/85  loss" "$T/log20")
[[ $n -eq 4 ]] && pass "--log-every 20: 4 step lines in an 85-step epoch" || { fail "--log-every ($n lines)"; cat "$T/log20"; }
"$BIN" --train "$T/train.h5" --test "$TEST" --val-split 1000 --layers 32 --epochs 1 --quiet \
  --out "$T/p2" >"$T/quiet" 2>&1
[[ $(grep -c . "$T/quiet") -le 3 ]] && ! grep -q "^epoch" "$T/quiet" && pass "--quiet prints only the summary" \
  || { fail "--quiet"; cat "$T/quiet"; }
if command -v script >/dev/null; then
  script -qec "$BIN --train $T/train.h5 --test $TEST --val-split 1000 --layers 32 --epochs 1 --out $T/p3" \
    /dev/null >"$T/tty" 2>&1
  grep -q $'\r\033\[Kepoch 1/1 \[#' "$T/tty" && pass "on a terminal: a progress bar redrawn in place" \
    || { fail "terminal progress bar"; cat -v "$T/tty" | head -5; }
fi

echo "report_test: $fails failed"
exit $((fails > 0))
