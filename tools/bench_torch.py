#!/usr/bin/python3
"""bench_torch: the reference workloads (ref-mlp, ref-cnn) in PyTorch, for tools/bench.

784-512-512-10 (or --layers), ReLU, dropout 0.2, softmax cross-entropy, Adam
lr 1e-3, batch 128, float32, on the first --rows rows of the real MNIST
training IDX file (the rows mnist-dist trains on with its default
--val-split 5000). The images are converted to float once, before timing (the
usual few lines of PyTorch; the fastest layout for it). Each thread setting
runs in its own process with torch.set_num_threads(T); samples/s is the median
of epochs 2..E. With --ddp, also DistributedDataParallel over gloo, 2
processes x 1 thread, each pinned to its own core, global batch split in two.
With --model ref-cnn, the Keras mnist_cnn example instead (conv 3x3x32,
ReLU, conv 3x3x64, ReLU, max-pool 2, dropout 0.25, dense 128, ReLU, dropout
0.5, dense 10; images as N x 1 x 28 x 28), as mnist-dist's --model ref-cnn.
With --autocast bf16, the forward pass and the loss run under
torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch's mixed precision on
CPU; parameters, gradients and Adam stay float32), as mnist-dist's
--precision bf16. Prints one JSON object (last line of stdout). Needs /usr/bin/python3 with
python3-torch and numpy; uses no network.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def read_idx(raw_dir, rows, test=False):
    import numpy as np
    prefix = "t10k" if test else "train"
    with open(os.path.join(raw_dir, f"{prefix}-images-idx3-ubyte"), "rb") as f:
        magic, n, h, w = np.frombuffer(f.read(16), dtype=">u4")
        if magic != 0x803 or h * w != 784:
            raise SystemExit(f"bench_torch: error: {f.name}: not an IDX image file of 28x28")
        images = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 784)
    with open(os.path.join(raw_dir, f"{prefix}-labels-idx1-ubyte"), "rb") as f:
        magic, n2 = np.frombuffer(f.read(8), dtype=">u4")
        if magic != 0x801 or n2 != n:
            raise SystemExit(f"bench_torch: error: {f.name}: not the labels of {n} images")
        labels = np.frombuffer(f.read(), dtype=np.uint8)
    rows = min(rows, int(n)) if rows else int(n)
    return images[:rows], labels[:rows]


def build_model(torch, layers, dropout, model="ref-mlp"):
    nn = torch.nn
    if model == "ref-cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 10))
    mods, prev = [], 784
    for w in layers:
        mods += [nn.Linear(prev, w), nn.ReLU(), nn.Dropout(dropout)]
        prev = w
    mods.append(nn.Linear(prev, 10))
    return nn.Sequential(*mods)


def worker(args):
    """One measured configuration in this process; prints RESULT <json>."""
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        os.sched_setaffinity(0, {rank % os.cpu_count()})
    import numpy as np
    import torch
    torch.set_num_threads(args.worker_threads)
    torch.manual_seed(42)
    images, labels = read_idx(args.raw_dir, args.rows)
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    # Each rank trains on its contiguous shard, as mnist-dist does.
    n_all = x.shape[0]
    first, count = rank * n_all // world, (rank + 1) * n_all // world - rank * n_all // world
    x, y = x[first:first + count], y[first:first + count]
    b_local = args.batch_size // world + (1 if rank < args.batch_size % world else 0)
    model = build_model(torch, args.layers, args.dropout, args.model)
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    lossf = torch.nn.CrossEntropyLoss()
    steps = count // b_local
    if world > 1:
        t = torch.tensor([steps])
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        steps = int(t.item())
    per_epoch = []
    model.train()
    for epoch in range(args.epochs):
        g = torch.Generator().manual_seed(1000 * epoch + rank)
        perm = torch.randperm(count, generator=g)
        if world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        for s in range(steps):
            idx = perm[s * b_local:(s + 1) * b_local]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            if args.autocast == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = lossf(model(xb), yb)
            else:
                loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
        if world > 1:
            dist.barrier()
        dt = time.perf_counter() - t0
        per_epoch.append(steps * args.batch_size / dt)
    acc = None
    if rank == 0:
        model.eval()
        ti, tl = read_idx(args.raw_dir, 0, test=True)
        with torch.no_grad():
            xt = torch.from_numpy(ti.astype(np.float32) / 255.0)
            pred = model(xt).argmax(1).numpy()
        acc = float((pred == tl).mean())
    if world > 1:
        dist.destroy_process_group()
    if rank == 0:
        later = per_epoch[1:] if len(per_epoch) > 1 else per_epoch
        print("RESULT " + json.dumps({
            "processes": world, "threads": args.worker_threads,
            "precision": "bf16 autocast" if args.autocast == "bf16" else "fp32",
            "samples_per_s_median": statistics.median(later),
            "samples_per_s_per_epoch": per_epoch, "epochs": args.epochs,
            "steps_per_epoch": steps, "batch_per_process": b_local,
            "test_accuracy": acc}), flush=True)


def run_worker(args, threads, world, timeout):
    """Starts `world` worker processes with `threads` threads each; returns
    rank 0's result dict, or a dict with "error"."""
    base = [sys.executable, os.path.abspath(__file__), "--worker-threads", str(threads),
            "--raw-dir", args.raw_dir, "--rows", str(args.rows), "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size), "--layers", ",".join(map(str, args.layers)),
            "--dropout", str(args.dropout), "--lr", str(args.lr), "--model", args.model,
            "--autocast", args.autocast]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    procs = []
    if world > 1:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world))
    for r in range(world):
        procs.append(subprocess.Popen(base, env=dict(env, RANK=str(r)), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    result, errors = None, []
    for r, p in enumerate(procs):
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            return {"error": f"timed out after {timeout} s"}
        for line in out.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
        if p.returncode != 0:
            errors.append(f"rank {r} exit {p.returncode}: {err.strip()[-400:]}")
    if result is None or errors:
        return {"error": "; ".join(errors) or "no result"}
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw-dir", default="data/.raw-mnist",
                    help="directory with the MNIST IDX files [data/.raw-mnist]")
    ap.add_argument("--rows", type=int, default=55000, help="training rows [55000]")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per setting [4]")
    ap.add_argument("--threads", default="1,2", help="torch.set_num_threads settings [1,2]")
    ap.add_argument("--ddp", action="store_true", help="also DDP gloo, 2 processes x 1 thread")
    ap.add_argument("--batch-size", type=int, default=128, help="global batch [128]")
    ap.add_argument("--layers", default="512,512", help="hidden widths [512,512]")
    ap.add_argument("--model", default="ref-mlp", choices=["ref-mlp", "ref-cnn"],
                    help="the network [ref-mlp: --layers, --dropout]")
    ap.add_argument("--autocast", default="none", choices=["none", "bf16"],
                    help="forward and loss under torch.autocast(cpu, bfloat16) [none]")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per setting [900]")
    ap.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.layers = [int(w) for w in str(args.layers).split(",") if w]
    if args.worker_threads is not None:
        worker(args)
        return 0
    try:
        import torch
        version = torch.__version__
        torch_threads = torch.get_num_threads()
    except ImportError as e:
        print(json.dumps({"available": False, "error": f"import torch: {e}"}))
        return 0
    settings = []
    for t in [int(v) for v in args.threads.split(",") if v]:
        r = run_worker(args, t, 1, args.timeout)
        r.setdefault("threads", t)
        r.setdefault("processes", 1)
        r["label"] = f"torch{' bf16' if args.autocast == 'bf16' else ''} 1x{t}"
        settings.append(r)
        print(f"bench_torch: {r['label']}: "
              f"{r.get('samples_per_s_median', float('nan')):.0f} samples/s "
              f"{r.get('error', '')}", file=sys.stderr)
    ddp = None
    if args.ddp:
        ddp = run_worker(args, 1, 2, args.timeout)
        ddp.setdefault("threads", 1)
        ddp.setdefault("processes", 2)
        ddp["label"] = f"torch{' bf16' if args.autocast == 'bf16' else ''} DDP gloo 2x1"
        print(f"bench_torch: {ddp['label']}: "
              f"{ddp.get('samples_per_s_median', float('nan')):.0f} samples/s "
              f"{ddp.get('error', '')}", file=sys.stderr)
    candidates = [s for s in settings + ([ddp] if ddp else []) if "samples_per_s_median" in s]
    best = max(candidates, key=lambda s: s["samples_per_s_median"]) if candidates else None
    print(json.dumps({"available": True, "torch_version": version,
                      "default_threads": torch_threads, "rows": args.rows,
                      "epochs": args.epochs, "batch_size": args.batch_size,
                      "layers": args.layers, "model": args.model, "autocast": args.autocast,
                      "settings": settings, "ddp": ddp,
                      "best": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
