#!/usr/bin/env bash
# Your own digits (issue 15's acceptance): MNIST test digits written as PNG
# files (by Python's zlib + struct here, independent of our code) and
# predicted through `predict --input DIR` get the same labels as through
# HDF5, alone and under mpirun -np 2; the same digits inverted (dark ink on
# white) and enlarged 3x onto a larger white canvas at random places - grey
# PNG, colour PNG, grey and colour JPEG (cjpeg) - are still >= 90% correct
# with the default model trained for one epoch. --save-preprocessed writes
# one 28x28 PNG per input; a directory's other files are skipped.
# usage: images_test.sh BUILD/mnist-dist DATA_DIR (mnist_{train,test}.h5)
set -uo pipefail
BIN=$1 DATA=$2
T=$(mktemp -d /tmp/mnist-images.XXXXXX)
trap 'rm -rf "$T"' EXIT
PY=${MNIST_PYTHON:-/usr/bin/python3}
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }
RUN=(timeout -k 5 300)
source "$(dirname "$0")/mpi.sh"
N=300
command -v cjpeg >/dev/null || { echo "FAIL  cjpeg not found (tools/install-deps: libjpeg-turbo-progs)"; exit 1; }

# the default model (784-512-512-10, dropout 0.2), one epoch: ~97%
started=$SECONDS
if ! "${RUN[@]}" "$BIN" --train "$DATA/mnist_train.h5" --test "$DATA/mnist_test.h5" --epochs 1 \
    --checkpoint-every 0 --quiet --out "$T/run" >"$T/train.out" 2>"$T/train.err"; then
  fail "training the default model"; sed 's/^/      /' "$T/train.err" | head; exit 1
fi
CKPT=$T/run/checkpoints/epoch-0001.h5
echo "      trained: $(grep -o 'test accuracy [0-9.]*%' "$T/train.out") in $((SECONDS - started)) s"

"$PY" - "$DATA/mnist_test.h5" "$T" "$N" <<'PY' || { echo "FAIL  could not write the images"; exit 1; }
import sys, os, struct, zlib, numpy as np, h5py
src, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(src, "r") as f:
    x = f["images"][:n].reshape(n, 28, 28)
    y = f["labels"][:n]
def png(path, a):  # 8-bit grey (H x W) or RGB (H x W x 3), filter 0, one IDAT
    h, w = a.shape[:2]
    raw = b"".join(b"\0" + a[i].tobytes() for i in range(h))
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if a.ndim == 2 else 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def pnm(path, a):  # for cjpeg
    with open(path, "wb") as f:
        f.write(b"P5\n" if a.ndim == 2 else b"P6\n")
        f.write(b"%d %d\n255\n" % (a.shape[1], a.shape[0]) + a.tobytes())
os.makedirs(f"{d}/mnist"); os.makedirs(f"{d}/own"); os.makedirs(f"{d}/pnm")
for i in range(n):
    png(f"{d}/mnist/{i:04d}.png", x[i])
open(f"{d}/mnist/README.txt", "w").write("not an image\n")
os.makedirs(f"{d}/mnist/sub.png")  # a directory with an image's name
with h5py.File(f"{d}/mnist.h5", "w") as f:
    f["images"] = x
np.savetxt(f"{d}/labels.txt", y, fmt="%d")
rng = np.random.default_rng(15)
for i in range(n):
    big = np.kron(x[i], np.ones((3, 3), np.uint8)).astype(np.float64)  # 84 x 84
    canvas = np.zeros((100, 120))
    oy, ox = rng.integers(0, 17), rng.integers(0, 37)
    canvas[oy:oy + 84, ox:ox + 84] = big
    paper = 255 - canvas  # dark ink on white
    kind = i % 4
    if kind in (1, 3):  # colour: blue-black ink on warm white paper
        t = canvas / 255.0
        rgb = np.stack([250 - t * 230, 245 - t * 215, 235 - t * 125], -1).round().astype(np.uint8)
        img = rgb
    else:
        img = paper.round().astype(np.uint8)
    if kind < 2:
        png(f"{d}/own/{i:04d}.png", img)
    else:
        pnm(f"{d}/pnm/{i:04d}.{'pgm' if img.ndim == 2 else 'ppm'}", img)
PY
for f in "$T"/pnm/*; do
  b=$(basename "$f")
  cjpeg -quality 90 "$f" >"$T/own/${b%.*}.jpg" || { fail "cjpeg $b"; break; }
done

# the same labels through a directory of PNGs as through HDF5
labels() { tail -n +2 "$1" | cut -d, -f2; }
"${RUN[@]}" "$BIN" predict --model "$CKPT" --input "$T/mnist.h5" --output "$T/h5.csv" --quiet
if "${RUN[@]}" "$BIN" predict --model "$CKPT" --input "$T/mnist" --output "$T/png.csv" >"$T/p.out" 2>"$T/p.err"; then
  if [[ $(wc -l <"$T/png.csv") -eq $((N + 1)) ]] && cmp -s <(labels "$T/png.csv") <(labels "$T/h5.csv")
  then
    pass "$N MNIST digits as PNG files: the labels of the HDF5 path, all $N"
  else
    fail "PNG directory and HDF5 labels differ: $(diff <(labels "$T/png.csv") <(labels "$T/h5.csv") | grep -c '^<') rows"
  fi
  [[ $(head -2 "$T/png.csv" | tr '\n' ' ') == "file,Label 0000.png,"* ]] || fail "CSV head: $(head -2 "$T/png.csv" | tr '\n' ' ')"
  grep -q "2 directory entries that are not .png/.jpg/.jpeg files skipped" "$T/p.out" \
    || fail "README.txt and sub.png/ not reported as skipped: $(cat "$T/p.out")"
else
  fail "predict --input DIR refused the PNGs"; sed 's/^/      /' "$T/p.err" | head
fi
if "${RUN[@]}" "${MPIEXEC_N[@]}" 2 "$BIN" predict --model "$CKPT" --input "$T/mnist" --output "$T/png2.csv" \
    --quiet 2>"$T/p2.err" && cmp -s "$T/png2.csv" "$T/png.csv"; then
  pass "np2: the same file"
else
  fail "np2 predict --input DIR differs or failed"; sed 's/^/      /' "$T/p2.err" | head -5
fi

# inverted, enlarged, moved, some in colour, some JPEG: >= 90% right
if "${RUN[@]}" "$BIN" predict --model "$CKPT" --input "$T/own" --probs --output "$T/own.csv" \
    --save-preprocessed "$T/seen" --quiet 2>"$T/o.err"; then
  right=$(labels "$T/own.csv" | paste -d' ' - "$T/labels.txt" | awk '$1 == $2' | wc -l)
  by_kind=$(labels "$T/own.csv" | paste -d' ' - "$T/labels.txt" |
    awk '{ k = (NR - 1) % 4; n[k]++; if ($1 == $2) r[k]++ } END { printf "grey PNG %d/%d, colour PNG %d/%d, grey JPEG %d/%d, colour JPEG %d/%d", r[0], n[0], r[1], n[1], r[2], n[2], r[3], n[3] }')
  if ((right * 100 >= 90 * N)); then
    pass "inverted, 3x on a 120x100 white canvas: $right/$N right ($by_kind)"
  else
    fail "inverted, 3x on a white canvas: only $right/$N right ($by_kind)"
  fi
  [[ $(head -1 "$T/own.csv") == "file,Label,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9" ]] || fail "--probs header: $(head -1 "$T/own.csv")"
  if "$PY" - "$T/seen" "$N" <<'PY'
import sys, os, struct
d, n = sys.argv[1], int(sys.argv[2])
names = sorted(os.listdir(d))
assert len(names) == n and names[0] == "0000.png", names[:3]
for name in names:
    b = open(os.path.join(d, name), "rb").read(33)
    assert b[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", b[16:24]) == (28, 28), name
PY
  then
    pass "--save-preprocessed: $N PNGs of 28x28"
  else
    fail "--save-preprocessed did not write $N 28x28 PNGs"
  fi
else
  fail "predict refused the enlarged digits"; sed 's/^/      /' "$T/o.err" | head
fi
echo "images_test: $fails failed ($((SECONDS - started)) s)"
exit $((fails > 0))
