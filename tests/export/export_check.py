#!/usr/bin/python3
"""export_check: the Python side of tests/export_test.sh (Debian's python3
with python3-h5py, python3-onnx and, when installed, python3-torch).

  dump IMAGES.h5 OUT.u8
      the image set's pixels as "MNU8", N, H, W, C (uint32 LE), then bytes
      (each image channels-last), for ort_compare.js
  onnx MODEL.onnx CKPT.h5
      onnx.checker.check_model(full_check=True) accepts the file, and its
      input, output, opset and metadata are what the README promises
  safetensors FILE CKPT.h5
      a plain parser (struct + json, per the safetensors spec) reads FILE;
      every tensor equals the checkpoint's, bit for bit, in PyTorch's layout
      (recomputed here from the checkpoint with numpy, independently of
      the exporter), and the header's metadata matches the checkpoint
  torch FILE IMAGES.u8 PREDICTIONS.csv README.md
      the README's snippet loads FILE into a torch.nn.Sequential, whose
      probabilities on the images match predict --probs (1e-5, argmax)
Prints what it checked; exits non-zero with the reason on any mismatch.
"""
import json
import os
import re
import struct
import sys

import numpy as np


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def read_ckpt(path):
    import h5py
    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        tensors = {}
        for group in f["model"]:
            for leaf in f["model"][group]:
                tensors[f"{group}/{leaf}"] = f["model"][group][leaf][()]
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    return {
        "model": text(attrs["model"]),
        "input_shape": [int(v) for v in attrs["input_shape"]],  # H, W, C
        "classes": int(attrs["classes"]),
        "mean": np.float32(attrs.get("input_mean", 0.0)),
        "scale": np.float32(attrs.get("input_scale", 1.0)),
        "tensors": tensors,
    }


def dump(h5path, out):
    import h5py
    with h5py.File(h5path, "r") as f:
        images = f["images"][()]
        if images.ndim == 2:
            h, w, c = (int(f.attrs[k]) for k in ("height", "width", "channels"))
            images = images.reshape(len(images), h, w, c)
        elif images.ndim == 3:
            images = images[..., None]
    n, h, w, c = images.shape
    with open(out, "wb") as f:
        f.write(b"MNU8" + struct.pack("<4I", n, h, w, c) + images.astype(np.uint8).tobytes())
    print(f"dump: {n} images {h}x{w}x{c} -> {out}")


def check_onnx(path, ckpt_path):
    import onnx
    ck = read_ckpt(ckpt_path)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    h, w, c = ck["input_shape"]
    g = m.graph
    dims = lambda vi: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    if [i.name for i in g.input] != ["input"] or dims(g.input[0]) != ["N", c, h, w]:
        fail(f"input {[(i.name, dims(i)) for i in g.input]}, expected input [N, {c}, {h}, {w}]")
    if g.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        fail("input is not float32")
    if [o.name for o in g.output] != ["probabilities"] or dims(g.output[0]) != ["N", ck["classes"]]:
        fail(f"output {[(o.name, dims(o)) for o in g.output]}")
    if [(o.domain, o.version) for o in m.opset_import] != [("", 13)]:
        fail(f"opsets {m.opset_import}")
    meta = {p.key: p.value for p in m.metadata_props}
    if meta.get("model") != ck["model"]:
        fail(f"metadata model {meta.get('model')!r}, checkpoint {ck['model']!r}")
    ops = [n.op_type for n in g.node]
    standardised = ck["mean"] != 0 or ck["scale"] != 1
    if standardised != (ops[:2] == ["Sub", "Mul"]) or ops[-1] != "Softmax":
        fail(f"nodes {ops} (standardisation {ck['mean']}, {ck['scale']})")
    print(f"onnx: {path}: checker (full_check) accepts it; input [N,{c},{h},{w}], output "
          f"[N,{ck['classes']}], opset 13; nodes {' '.join(ops)}")


def parse_safetensors(path):
    """A reader written from the spec alone."""
    blob = open(path, "rb").read()
    if len(blob) < 8:
        fail("shorter than its length field")
    (n,) = struct.unpack("<Q", blob[:8])
    if (8 + n) % 8 or 8 + n > len(blob):
        fail(f"header length {n}: data does not start 8-byte aligned inside the file")
    raw = blob[8:8 + n]
    if not raw.startswith(b"{") or raw.rstrip(b" ") != raw.rstrip():
        fail("header is not JSON padded with spaces")
    header = json.loads(raw)
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail("__metadata__ holds a value that is not a string")
    spans, tensors = [], {}
    for name, t in header.items():
        if set(t) != {"dtype", "shape", "data_offsets"} or t["dtype"] != "F32":
            fail(f"{name}: entry {t}")
        b, e = t["data_offsets"]
        count = int(np.prod(t["shape"], dtype=np.int64))
        if e - b != 4 * count:
            fail(f"{name}: [{b}, {e}) holds {e - b} bytes for shape {t['shape']}")
        spans.append((b, e, name))
        tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=b).reshape(t["shape"])
    spans.sort()
    end = 0
    for b, e, name in spans:  # in offset order without gaps, covering the data
        if b != end:
            fail(f"{name} starts at {b}, not {end}: a gap or an overlap")
        end = e
    if end != len(data):
        fail(f"tensors end at {end} but the data section has {len(data)} bytes")
    if list(header) != [s[2] for s in spans]:
        fail("the header does not list the tensors in offset order")
    return tensors, meta


def expected_tensors(ck, modules):
    """The checkpoint's tensors in PyTorch's layout, keyed like the export."""
    h, w, c = ck["input_shape"]
    shape, flat_from, k, out = (c, h, w), None, 0, {}
    for i, mod in enumerate(modules):
        kind = mod["type"]
        if kind == "Conv2d":
            W, b = ck["tensors"][f"conv{k}/W"], ck["tensors"][f"conv{k}/b"]  # HWIO
            out[f"layers.{i}.weight"], out[f"layers.{i}.bias"] = W.transpose(3, 2, 0, 1), b
            (kh, kw), s, p = mod["kernel_size"], mod["stride"], mod["padding"]
            shape = (mod["out_channels"], (shape[1] + 2 * p - kh) // s + 1, (shape[2] + 2 * p - kw) // s + 1)
            k += 1
        elif kind == "MaxPool2d":
            kk, s = mod["kernel_size"], mod["stride"]
            shape = (shape[0], (shape[1] - kk) // s + 1, (shape[2] - kk) // s + 1)
        elif kind == "Flatten":
            flat_from, shape = shape, (shape[0] * shape[1] * shape[2],)
        elif kind == "Unflatten":
            shape, flat_from = tuple(mod["unflattened_size"]), None
        elif kind == "Linear":
            W, b = ck["tensors"][f"dense{k}/W"], ck["tensors"][f"dense{k}/b"]  # [in, out], NHWC rows
            C, H, Wd = flat_from if flat_from else (shape[0], 1, 1)
            if W.shape[0] != C * H * Wd or mod["in_features"] != C * H * Wd:
                fail(f"module {i}: Linear of {mod['in_features']} inputs after a {flat_from} tensor")
            torch_w = W.reshape(H, Wd, C, -1).transpose(3, 2, 0, 1).reshape(W.shape[1], -1)
            out[f"layers.{i}.weight"], out[f"layers.{i}.bias"] = torch_w, b
            shape, flat_from = (W.shape[1],), None
            k += 1
    if k != len(ck["tensors"]) // 2:
        fail(f"{k} parameter modules for {len(ck['tensors']) // 2} checkpoint layers")
    return out


def check_safetensors(path, ckpt_path):
    ck = read_ckpt(ckpt_path)
    tensors, meta = parse_safetensors(path)
    h, w, c = ck["input_shape"]
    want_meta = {"format": "pt", "model": ck["model"], "classes": str(ck["classes"]),
                 "input_shape": f"[{c}, {h}, {w}]"}
    for key, value in want_meta.items():
        if meta.get(key) != value:
            fail(f"__metadata__[{key!r}] = {meta.get(key)!r}, expected {value!r}")
    if np.float32(meta["input_mean"]) != ck["mean"] or np.float32(meta["input_scale"]) != ck["scale"]:
        fail(f"standardisation {meta['input_mean']}, {meta['input_scale']} is not the checkpoint's")
    modules = json.loads(meta["torch_layers"])
    want = expected_tensors(ck, modules)
    if sorted(want) != sorted(tensors):
        fail(f"tensors {sorted(tensors)}, expected {sorted(want)}")
    for name, value in want.items():
        got = tensors[name]
        value = np.ascontiguousarray(value, dtype=np.float32)
        if got.shape != value.shape or got.view(np.uint32).tolist() != value.view(np.uint32).tolist():
            fail(f"{name}: {got.shape} differs from the checkpoint's {value.shape} values")
    n = sum(t.size for t in tensors.values())
    print(f"safetensors: {path}: {len(tensors)} tensors, {n} floats, all bit-identical to "
          f"{os.path.basename(ckpt_path)} in PyTorch's layouts; modules "
          + " ".join(m["type"] for m in modules))


def readme_snippet(readme):
    text = open(readme).read()
    section = text[text.index("## Interoperability"):]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    code = [b for b in blocks if "load_state_dict" in b]
    if not code:
        fail("README's Interoperability section has no torch snippet")
    return code[0]


def check_torch(path, images, preds, readme):
    import torch
    code = readme_snippet(readme)
    defs = code[:code.index("\nnet, meta = ")]  # the functions; the example follows
    env = {}
    exec(defs, env)
    net, meta = env["load_exported"](path)
    blob = open(images, "rb").read()
    n, h, w, c = struct.unpack("<4I", blob[4:20])
    pixels = torch.frombuffer(bytearray(blob[20:]), dtype=torch.uint8).reshape(n, h, w, c)
    pixels = pixels.permute(0, 3, 1, 2)  # NCHW, as the README's example takes them
    x = (pixels.float() / 255 - float(meta["input_mean"])) * float(meta["input_scale"])
    with torch.no_grad():
        probs = net(x).numpy()
    rows = np.loadtxt(preds, delimiter=",", skiprows=1, ndmin=2)
    diff = float(np.abs(probs - rows[:, 2:]).max())
    differ = int((probs.argmax(1) != rows[:, 1]).sum())
    print(f"torch {torch.__version__}: the README's snippet loads {os.path.basename(path)} into "
          f"{len(net)} modules; {n} images: largest probability difference {diff:.2e}, "
          f"{differ} argmax differences")
    if diff > 1e-5 or differ:
        fail("torch's probabilities differ from predict --probs")
    if "\nnet, meta = " in code and (h, w, c) == (28, 28, 1):  # the example as written
        exec(code.replace('"model.safetensors"', repr(path)), {})


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    {"dump": dump, "onnx": check_onnx, "safetensors": check_safetensors, "torch": check_torch}[mode](*args)


if __name__ == "__main__":
    main()
