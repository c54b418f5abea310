#!/usr/bin/env python3
"""Prints the scaling table of a sweep: one row per runs/<job>/np<P>/ with the
median training samples/s over epochs (the first epoch only when alone), the
speed-up over the smallest rank count, and the parallel efficiency
S(P) / (P/P0 * S(P0))."""
import json
import os
import re
import statistics
import sys


def main():
    kind, run_dir = sys.argv[1], sys.argv[2]
    rows = []
    for name in os.listdir(run_dir):
        m = re.fullmatch(r"np(\d+)", name)
        path = os.path.join(run_dir, name, "report", "metrics.json")
        if m and os.path.exists(path):
            metrics = json.load(open(path))
            rates = [e["samples_per_s"] for e in metrics["history"]]
            rate = statistics.median(rates[1:] if len(rates) > 1 else rates)
            rows.append((int(m.group(1)), metrics["config"]["batch-size"], rate,
                         metrics["test"]["accuracy"]))
    if not rows:
        sys.exit(f"scaling_table: no np*/report/metrics.json under {run_dir}")
    rows.sort()
    p0, rate0 = rows[0][0], rows[0][2]
    print(f"{kind} scaling ({run_dir})")
    print(f"{'ranks':>5} {'batch':>6} {'samples/s':>10} {'speed-up':>8} {'efficiency':>10} {'test acc':>8}")
    for p, batch, rate, acc in rows:
        speedup = rate / rate0
        print(f"{p:>5} {batch:>6} {rate:>10.0f} {speedup:>8.2f} {speedup * p0 / p:>10.2f} {acc:>8.4f}")


if __name__ == "__main__":
    main()
