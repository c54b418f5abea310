#!/usr/bin/env bash
# NumPy's own files through convert: .npz archives as np.savez writes them
# (stored members) and as np.savez_compressed does (deflated), with Keras's
# member names (x_train, y_train, x_test, y_test; --split) and others
# (--images-dataset/--labels-dataset), and .npy pairs (versions 1 and 2);
# each HDF5 written must equal the source arrays (float32 0..1 as
# round(255 v)). Then damaged archives (truncated, a flipped byte, a
# truncated deflate stream, a zip64 record missing) and unaccepted arrays
# (dtype, byte order, Fortran order, shape, N, labels, range, a missing
# member): each refused with exit 1 and one message naming the file, its
# shape and dtype, and no output left.
# usage: npz_test.sh BUILD/mnist-dist
set -uo pipefail
BIN=$1
T=$(mktemp -d /tmp/mnist-npz.XXXXXX)
trap 'rm -rf "$T"' EXIT
PY=${MNIST_PYTHON:-/usr/bin/python3}
fails=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; fails=$((fails + 1)); }

"$PY" - "$T" <<'PY' || { echo "FAIL  numpy could not write the files"; exit 1; }
import sys, struct, zlib, zipfile, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(15)
x = rng.integers(0, 256, (300, 28, 28)).astype(np.uint8)
y = rng.integers(0, 10, 300).astype(np.uint8)
xt, yt = x[:120] ^ 0x5a, y[:120][::-1].copy()
np.savez(f"{d}/stored.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
np.savez_compressed(f"{d}/deflated.npz", x_train=(x / 255.0).astype(np.float32).reshape(300, 784),
                    y_train=y.astype(np.int64), x_test=xt, y_test=yt.astype(np.int32))
np.savez_compressed(f"{d}/named.npz", images=x[..., None], labels=y.astype(np.int32))
np.save(f"{d}/x.npy", x[..., None])
with open(f"{d}/y.npy", "wb") as f:  # a version-2 header
    np.lib.format.write_array(f, y.astype(np.int32), version=(2, 0))
for name, method in (("stored", zipfile.ZIP_STORED), ("deflated", zipfile.ZIP_DEFLATED)):
    with zipfile.ZipFile(f"{d}/{name}.npz") as z:
        assert all(i.compress_type == method for i in z.infolist()), name
np.save(f"{d}/want_train.npy", x); np.save(f"{d}/want_test.npy", xt)
np.save(f"{d}/want_y.npy", y); np.save(f"{d}/want_yt.npy", yt)

# --- unaccepted arrays ---
np.save(f"{d}/f64.npy", x.astype(np.float64) / 255)
np.save(f"{d}/fortran.npy", np.asfortranarray(x))
np.save(f"{d}/big-labels.npy", y.astype(">i4"))
np.save(f"{d}/short-labels.npy", y[:299])
np.save(f"{d}/bad-shape.npy", np.ascontiguousarray(x.reshape(300, 784)[:, :783]))
y10 = y.copy(); y10[123] = 10
np.save(f"{d}/label-10.npy", y10)
xf = (x / 255.0).astype(np.float32); xf[7, 3, 4] = 1.5
np.save(f"{d}/range.npy", xf)
np.savez(f"{d}/float-labels.npz", x_train=x, y_train=y.astype(np.float32))

# --- damaged archives ---
good = open(f"{d}/stored.npz", "rb").read()
open(f"{d}/truncated.npz", "wb").write(good[: len(good) // 2])
with zipfile.ZipFile(f"{d}/stored.npz") as z:
    info = z.getinfo("x_train.npy")
flip = bytearray(good)
at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 500
flip[at] ^= 0x40
open(f"{d}/crc.npz", "wb").write(bytes(flip))

def zipfile_of(members, zip64_hint=False):
    """A ZIP of (name, method, data, csize_override) written by hand."""
    out, central = b"", b""
    for name, method, raw, cut in members:
        crc = zlib.crc32(raw) & 0xffffffff
        if method == 8:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            data = c.compress(raw) + c.flush()
        else:
            data = raw
        if cut:
            data = data[:cut]
        n = name.encode()
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, method, 0, 0, crc, len(data), len(raw), len(n), 0) + n + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0, method, 0, 0, crc, len(data), len(raw), len(n), 0, 0, 0, 0, 0, off) + n
    cd_off = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, len(members), len(members), len(central),
                       0xffffffff if zip64_hint else cd_off, 0)
    return out
def npy_bytes(a):
    import io
    b = io.BytesIO(); np.save(b, a); return b.getvalue()
open(f"{d}/cut-deflate.npz", "wb").write(zipfile_of([("x_train.npy", 8, npy_bytes(x), 2000), ("y_train.npy", 0, npy_bytes(y), 0)]))
open(f"{d}/zip64-missing.npz", "wb").write(zipfile_of([("x_train.npy", 0, npy_bytes(x), 0)], zip64_hint=True))
open(f"{d}/handmade-ok.npz", "wb").write(zipfile_of([("x_train.npy", 8, npy_bytes(x), 0), ("y_train.npy", 0, npy_bytes(y), 0)]))
PY

# same_as OUT.h5 WANT_IMAGES.npy WANT_LABELS.npy: the HDF5 holds exactly these arrays
same_as() {
  "$PY" - "$@" <<'PY'
import sys, numpy as np, h5py
out, wx, wy = sys.argv[1:4]
with h5py.File(out, "r") as f:
    x, y = f["images"][:], f["labels"][:]
    assert f.attrs["height"] == 28 and f.attrs["width"] == 28 and f.attrs["channels"] == 1
ex, ey = np.load(wx), np.load(wy)
assert x.shape == (len(ex), 784) and x.dtype == np.uint8, x.shape
assert (x == ex.reshape(len(ex), 784)).all(), "images differ"
assert y.dtype == np.uint8 and (y == ey).all(), "labels differ"
PY
}
accept() { # NAME WANT_X WANT_Y CONVERT-ARGS... (the last is the output)
  local name=$1 wx=$T/$2 wy=$T/$3
  shift 3
  local out=${*: -1}
  if ! "$BIN" convert --quiet "$@" 2>"$T/err"; then
    fail "$name: refused: $(head -1 "$T/err")"
  elif [[ $out == *.h5 ]] && ! same_as "$out" "$wx" "$wy" 2>"$T/err"; then
    fail "$name: the HDF5 differs from the arrays: $(tail -1 "$T/err")"
  else
    pass "$name"
  fi
}
accept "np.savez (stored), x_train/y_train" want_train.npy want_y.npy "$T/stored.npz" "$T/a.h5"
accept "np.savez (stored), --split test" want_test.npy want_yt.npy --split test "$T/stored.npz" "$T/b.h5"
accept "np.savez_compressed (deflated), float32 [N,784], int64" want_train.npy want_y.npy "$T/deflated.npz" "$T/c.h5"
accept "np.savez_compressed, --split test, int32 labels" want_test.npy want_yt.npy --split=test "$T/deflated.npz" "$T/d.h5"
accept "npz with its own names (--images-dataset/--labels-dataset)" want_train.npy want_y.npy \
  --images-dataset images --labels-dataset labels "$T/named.npz" "$T/e.h5"
accept ".npy pair: uint8 [N,28,28,1], int32 labels in a version-2 header" want_train.npy want_y.npy \
  "$T/x.npy" "$T/y.npy" "$T/f.h5"
accept "a ZIP made by hand (deflated + stored members)" want_train.npy want_y.npy "$T/handmade-ok.npz" "$T/g.h5"
accept "npz to CSV" want_train.npy want_y.npy "$T/stored.npz" "$T/h.csv"
if [[ -f $T/h.csv ]] && "$PY" -c "
import sys, numpy as np
a = np.loadtxt('$T/h.csv', delimiter=',', dtype=np.int64)
x, y = np.load('$T/want_train.npy'), np.load('$T/want_y.npy')
sys.exit(0 if (a[:, 0] == y).all() and (a[:, 1:] == x.reshape(300, 784)).all() else 1)"; then
  pass "the CSV holds the arrays"
else
  fail "the CSV does not hold the arrays"
fi

# refuse NAME FILE REGEX CONVERT-ARGS...: exit 1, one message naming FILE and
# matching REGEX, nothing at the output (the last argument) nor any temp file
refuse() {
  local name=$1 file=$2 re=$3
  shift 3
  local out=${*: -1}
  rm -f "$out"
  "$BIN" convert "$@" >"$T/out" 2>"$T/err"
  local rc=$? n msg
  n=$(grep -c '^mnist-dist:' "$T/err")
  msg=$(grep '^mnist-dist:' "$T/err")
  if [[ $rc -ne 1 ]]; then
    fail "$name: exit $rc, expected 1"; sed 's/^/      /' "$T/err" | head -3
  elif [[ $n -ne 1 || $msg != *"$file"* ]] || ! grep -Eq -- "$re" <<<"$msg"; then
    fail "$name: message '$msg' does not name $file and match /$re/"
  elif [[ -e $out ]] || compgen -G "$out.tmp.*" >/dev/null; then
    fail "$name: left $out behind"
  else
    pass "$name: ${msg#mnist-dist: error: }"
  fi
}
ACC_IMG="accepted are uint8 \(0..255\) or float32 \(0..1\) images"
refuse "truncated npz" truncated.npz "truncated.npz: not a complete ZIP archive" "$T/truncated.npz" "$T/r.h5"
refuse "a flipped byte in a stored member" crc.npz "member x_train.npy: CRC-32 mismatch" "$T/crc.npz" "$T/r.h5"
refuse "a truncated deflate stream" cut-deflate.npz "member x_train.npy: its deflate data ends early" "$T/cut-deflate.npz" "$T/r.h5"
refuse "zip64 record missing" zip64-missing.npz "needs a zip64 record that is missing" "$T/zip64-missing.npz" "$T/r.h5"
refuse "missing member (--split val)" stored.npz "no member x_val.npy \(it holds: x_train.npy, y_train.npy, x_test.npy, y_test.npy\)" \
  --split val "$T/stored.npz" "$T/r.h5"
refuse "float labels in an npz" float-labels.npz "member y_train.npy: labels of dtype '<f4' \(float32\) and shape \(300,\): accepted are uint8, int32 or int64" \
  "$T/float-labels.npz" "$T/r.h5"
refuse "float64 images" f64.npy "f64.npy: images of dtype '<f8' \(float64\) and shape \(300, 28, 28\): $ACC_IMG" "$T/f64.npy" "$T/y.npy" "$T/r.h5"
refuse "Fortran order" fortran.npy "fortran.npy: images of dtype '\|u1' \(uint8\) and shape \(300, 28, 28\) are stored in Fortran order" \
  "$T/fortran.npy" "$T/y.npy" "$T/r.h5"
refuse "big-endian labels" big-labels.npy "big-labels.npy: labels of dtype '>i4' \(int32, big-endian\) and shape \(300,\): accepted are .*little-endian" \
  "$T/x.npy" "$T/big-labels.npy" "$T/r.h5"
refuse "mismatched N" short-labels.npy "short-labels.npy: has 299 labels \(dtype '\|u1', shape \(299,\)\) but .*x.npy has 300 images \(dtype '\|u1', shape \(300, 28, 28, 1\)\)" \
  "$T/x.npy" "$T/short-labels.npy" "$T/r.h5"
refuse "images of shape (N, 783)" bad-shape.npy "bad-shape.npy: images of dtype '\|u1' \(uint8\) and shape \(300, 783\): $ACC_IMG" \
  "$T/bad-shape.npy" "$T/r.h5"
refuse "a label outside the class count" label-10.npy "label-10.npy: label 10 at index 123 is outside 0..9" "$T/x.npy" "$T/label-10.npy" "$T/r.h5"
refuse "float32 outside 0..1" range.npy "range.npy: float32 images must lie in 0..1, but element \[7, 3, 4\] is 1.5" "$T/range.npy" "$T/y.npy" "$T/r.h5"
refuse "npz given with a labels file" y.npy "a .npz holds images and labels both" "$T/stored.npz" "$T/y.npy" "$T/r.h5"
if "$BIN" convert --quiet --classes 11 "$T/x.npy" "$T/label-10.npy" "$T/r11.h5" 2>/dev/null; then
  pass "--classes 11 accepts label 10"
else
  fail "--classes 11 refused label 10"
fi
leftover=$(find "$T" -name '*.tmp.*' | head -3)
[[ -z $leftover ]] || fail "temp files left: $leftover"
echo "npz_test: $fails failed"
exit $((fails > 0))
