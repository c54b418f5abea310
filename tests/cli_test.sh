#!/usr/bin/env bash
# Command-level tests of mnist-dist's error handling, run through the real
# binary (alone and under mpirun with 2 and 3 ranks): every bad command line
# or input exits non-zero on every rank, prints its message once, names the
# file (and line:column for CSV), never hangs, and leaves no output behind.
# usage: cli_test.sh BUILD/mnist-dist
set -uo pipefail
BIN=$1
T=$(mktemp -d /tmp/mnist-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
MPIRUN=(timeout -k 5 60 mpirun --oversubscribe)

# expect NAME STATUS STDERR-REGEX COMMAND...: status must match, stderr must
# hold exactly one line from mnist-dist (mpirun adds its own banner), and
# that line must match the regex.
expect() {
  local name=$1 want=$2 re=$3
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  local lines
  lines=$(grep -c "^mnist-dist:" "$T/err")
  if [[ $rc -ne $want ]]; then
    fail "$name: exit $rc, expected $want"; sed 's/^/      /' "$T/err"
  elif [[ $lines -ne 1 ]]; then
    fail "$name: $lines mnist-dist lines on stderr, expected 1"; sed 's/^/      /' "$T/err"
  elif ! grep -Eq -- "$re" "$T/err"; then
    fail "$name: message does not match /$re/"; sed 's/^/      /' "$T/err"
  else
    pass "$name"
  fi
}

# --- command line ------------------------------------------------------------
"$BIN" --help >"$T/out" 2>&1 && grep -q "usage: mnist-dist" "$T/out" && grep -q -- "--batch-size N" "$T/out" \
  && pass "--help" || fail "--help"
"$BIN" --version >"$T/out" 2>&1 && grep -q "mnist-dist 0" "$T/out" && pass "--version" || fail "--version"
"$BIN" convert --help >"$T/out" 2>&1 && grep -q "usage: mnist-dist convert" "$T/out" \
  && pass "convert --help" || fail "convert --help"
expect "unknown flag" 2 "^mnist-dist: error: unknown option '--bogus'" "$BIN" --bogus
expect "unknown flag, 2 ranks: printed once" 2 "unknown option '--nope'" "${MPIRUN[@]}" -np 2 "$BIN" --nope
expect "bad value, 3 ranks: printed once" 2 "--lr: 'fast' is not a number" "${MPIRUN[@]}" -np 3 "$BIN" --lr fast
expect "missing value" 2 "--epochs needs a value" "$BIN" --epochs
expect "missing train file, 2 ranks" 1 "error: .*$T/none.h5: cannot open" \
  "${MPIRUN[@]}" -np 2 "$BIN" --train "$T/none.h5" --out "$T/run1"
echo "5,0,0" > "$T/x.csv"
expect "csv given to train" 1 "x.csv: not an HDF5 file \(convert it first" "$BIN" --train "$T/x.csv" --out "$T/run2"
[[ -d $T/run1/report ]] && fail "a failed run wrote a report" || pass "a failed run wrote no report"

# --- convert: good inputs ------------------------------------------------------
row() { # label value -> a CSV row with 784 pixels of that value
  local label=$1 v=$2 line
  line=$(printf "$v,%.0s" $(seq 784)); line=${line%,}
  if [[ -n $label ]]; then printf '%s,%s' "$label" "$line"; else printf '%s' "$line"; fi
}
header=$(printf 'label'; for i in $(seq 0 783); do printf ',pixel%d' "$i"; done)
{ echo "$header"; row 3 0; echo; row 7 255; printf '\r\n'; row 0 12; } > "$T/good.csv" # no final newline
"$BIN" convert "$T/good.csv" "$T/good.h5" >"$T/out" 2>&1 && grep -q "3 rows with labels" "$T/out" \
  && pass "convert: header, CRLF, no final newline" || { fail "convert good.csv"; cat "$T/out"; }
if command -v h5dump >/dev/null; then
  h5dump -H "$T/good.h5" | grep -q "DATASPACE  SIMPLE { ( 3, 784 )" && h5dump -d labels "$T/good.h5" | grep -q "3, 7, 0" \
    && pass "convert: /images [3,784], /labels 3,7,0" || fail "convert: h5dump contents"
  h5dump -a rows "$T/good.h5" | grep -q "(0): 3" && h5dump -a source "$T/good.h5" | grep -q "good.csv" \
    && pass "convert: attributes rows and source" || fail "convert: attributes"
fi
{ row "" 1; echo; row "" 2; echo; } > "$T/kaggle_test.csv"
"$BIN" convert "$T/kaggle_test.csv" "$T/kaggle_test.h5" >"$T/out" 2>&1 && grep -q "2 rows, no labels" "$T/out" \
  && pass "convert: 784 columns -> no /labels" || fail "convert: unlabelled"
expect "train refuses unlabelled data" 1 "has no /labels" "$BIN" --train "$T/kaggle_test.h5" --val-split 0 --out "$T/run3"

# --- convert: bad inputs, each leaving nothing behind ----------------------------
bad() { # name csv-content regex
  local name=$1 content=$2 re=$3
  printf '%b' "$content" > "$T/bad.csv"
  rm -f "$T/bad.h5"
  expect "convert refuses $name" 1 "^mnist-dist: error: $T/bad.csv:$re" "$BIN" convert "$T/bad.csv" "$T/bad.h5"
  if ls "$T" | grep -q "^bad.h5"; then fail "convert $name left output behind"; fi
}
good=$(row 5 9)
bad "pixel > 255" "$good\n$(row 1 300)\n" "2:2: pixel value 300 is outside 0..255"
bad "label > 9" "$(row 12 0)\n" "1:1: label 12 is outside 0..9"
bad "non-integer" "$good\n${good/,9,/,ab,}\n" "2:[0-9]+: 'ab' is not an integer"
bad "short row" "$good\n5,1,2,3\n" "2:4: expected 785 fields, found 4"
bad "long row" "$good\n$good,7\n" "2:786: expected 785 fields"
bad "empty file" "" " file is empty"
expect "convert refuses unreadable file" 1 "$T/missing.csv: cannot open" "$BIN" convert "$T/missing.csv" "$T/m.h5"
expect "convert refuses unknown output type" 1 "must end in .h5" "$BIN" convert "$T/good.csv" "$T/out.txt"
printf '%s\n%s\n' "$good" "$(row 1 300)" > "$T/bad.csv"
expect "convert under mpirun -np 2, printed once" 1 "pixel value 300" \
  "${MPIRUN[@]}" -np 2 "$BIN" convert "$T/bad.csv" "$T/bad.h5"

echo "cli_test: $fails failed"
exit $((fails > 0))
