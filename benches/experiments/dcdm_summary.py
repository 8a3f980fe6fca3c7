#!/usr/bin/env python3
"""Summarises a DCDM study (benches/experiments/dcdm.sh) over its training seeds.

    python3 benches/experiments/dcdm_summary.py OUT [OUT2 ...]

Reads OUT/seed*/study.jsonl (one JSON line per solve) and prints a markdown table per study directory: for each
grid, tolerance and method, the iterations (mean over the test systems, then mean ± standard deviation over the
seeds), the ratio to CG's iterations on the same systems, and the mean setup and solve times. A solve that did
not converge counts as missing and is reported as such. A last table shows how DCDM's iterations change with the
grid, relative to the smallest grid.
"""

import glob
import json
import math
import os
import sys
from collections import defaultdict


def mean_sd(values):
    if not values:
        return float("nan"), float("nan")
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def summarise(out):
    rows = []
    seeds = sorted(glob.glob(os.path.join(out, "seed*", "study.jsonl")))
    if not seeds:
        print(f"{out}: no seed*/study.jsonl", file=sys.stderr)
        return 1
    for path in seeds:
        seed = os.path.basename(os.path.dirname(path))
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    r["seed"] = seed
                    rows.append(r)
    # per (n, tol, method, seed): iterations over systems; None if any failed
    per = defaultdict(list)
    cg = {}
    times = defaultdict(list)
    for r in rows:
        key = (r["n"], r["dims"], r["tol"], r["method"], r["seed"])
        per[key].append(r["iterations"])
        times[(r["n"], r["dims"], r["tol"], r["method"])].append((r["setup"], r["solve"]))
        if r["method"] == "CG":
            cg[(r["n"], r["dims"], r["tol"], r["seed"], r["system"])] = r["iterations"]
    ratios = defaultdict(list)
    for r in rows:
        c = cg.get((r["n"], r["dims"], r["tol"], r["seed"], r["system"]))
        if c and r["iterations"] is not None:
            ratios[(r["n"], r["dims"], r["tol"], r["method"], r["seed"])].append(r["iterations"] / c)
    methods = []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    grids = sorted({(r["n"], r["dims"]) for r in rows})
    tols = sorted({r["tol"] for r in rows}, reverse=True)
    names = sorted({r["seed"] for r in rows})
    print(f"### {out} ({len(names)} seeds: {', '.join(names)})")
    print()
    print("| grid | tol | method | iterations | ÷ CG | setup (s) | solve (s) |")
    print("|---|---|---|---|---|---|---|")
    dcdm = {}
    for n, d in grids:
        for tol in tols:
            for m in methods:
                its, rat, failed = [], [], 0
                for s in names:
                    v = per.get((n, d, tol, m, s), [])
                    if not v:
                        continue
                    if any(i is None for i in v):
                        failed += sum(1 for i in v if i is None)
                        continue
                    its.append(sum(v) / len(v))
                    rr = ratios.get((n, d, tol, m, s), [])
                    if rr:
                        rat.append(sum(rr) / len(rr))
                if not its and not failed:
                    continue
                mi, si = mean_sd(its)
                mr, sr = mean_sd(rat)
                t = times[(n, d, tol, m)]
                setup = sum(a for a, _ in t) / len(t)
                solve = sum(b for _, b in t) / len(t)
                it_s = f"{mi:.1f} ± {si:.1f}" if its else "–"
                if failed:
                    it_s += f" ({failed} not converged)"
                rat_s = f"{mr:.3f} ± {sr:.3f}" if rat else "–"
                print(f"| {n}^{d} | {tol:g} | {m} | {it_s} | {rat_s} | {setup:.4f} | {solve:.4f} |")
                if m == "DCDM" and its:
                    dcdm[(n, d, tol)] = (mi, its)
    print()
    print("DCDM's iterations against the smallest grid (mean over seeds):")
    print()
    print("| grid | tol | iterations | ÷ smallest grid |")
    print("|---|---|---|---|")
    for tol in tols:
        base = None
        for n, d in grids:
            if (n, d, tol) not in dcdm:
                continue
            mi, _ = dcdm[(n, d, tol)]
            if base is None:
                base = mi
            print(f"| {n}^{d} | {tol:g} | {mi:.1f} | {mi / base:.2f} |")
    print()
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    return max(summarise(out) for out in sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
